#!/usr/bin/env node
// napi-h3 benchmark driver: `npm run bench` (= `node bench/run.js`) from the repository root.
//
// Builds the native tools (bench/: h3-hello = pure-Rust quinn+h3 server, h3-load = HTTP/3 load
// generator), then for BENCH_ROUNDS interleaved rounds starts each server target on 127.0.0.1,
// hammers it with h3-load and samples the server's own CPU time (/proc/<pid>/stat utime+stime)
// exactly at the load generator's MEASURE_START / MEASURE_END markers. Prints a table with medians
// over rounds plus ratios. Then the client section: clients/fetch-load.mjs drives napi-h3's
// client (createH3Client().fetch under Node, Node 24 and Bun) and Bun's own fetch(protocol:
// 'http3') against a fresh h3-hello, interleaved, and prints req/s, latency and client/server CPU
// per request with ratios vs Bun's fetch (BENCH_SKIP_CLIENT=1 skips it). Then the throughput section: BENCH_BYTES (1 GiB) uploads into and
// downloads from each streaming server (pure-Rust h3-hello vs servers/napi-h3-stream.js under
// Node, Node 24 and Bun), one fresh server per transfer, client h3-transfer (SHA-256 checked),
// server VmRSS sampled every 50 ms; prints MB/s, ratio vs rust, RSS growth and PASS/MISS against
// the issue's targets. Then the datagram section: dgram-load (QUIC DATAGRAM echo load, bounded
// window in flight, loss counted) against dgram-echo (pure-Rust quinn echo) and
// servers/napi-h3-dgram.js (server-level quicDatagram handler) under Node, Node 24 and Bun: echoes/s,
// server CPU per datagram, loss, ratios vs rust. Then the webtransport section: wt-transfer (one
// WebTransport session, BENCH_WT_BYTES through one bidirectional stream and back, SHA-256 checked)
// against wt-echo (pure-Rust h3-webtransport echo) and servers/napi-h3-wt.js under the three
// runtimes: MB/s and server CPU, ratios vs rust. Writes everything to bench/results/latest.json.
// See bench/README.md for the columns and the environment knobs.
'use strict'

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const ROOT = path.resolve(__dirname, '..')
const TARGET_DIR = process.env.CARGO_TARGET_DIR
  ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR)
  : path.join(ROOT, 'target')
const BIN = (name) => path.join(TARGET_DIR, 'release', name)

// ---------------------------------------------------------------------------------------------
// Configuration (environment knobs; documented in bench/README.md)
// ---------------------------------------------------------------------------------------------
/** CPU seconds per unit of work, scaled (1e6: µs per unit); null when either is unknown. */
function perUnit (cpuS, units, scale) {
  return cpuS != null && units ? (cpuS * scale) / units : null
}

/** CPU seconds over wall seconds: how many cores were busy. */
function cores (cpuS, wallS) {
  return cpuS != null && wallS ? cpuS / wallS : null
}

function envNum (name, def, { min = 0, max = Infinity, int = false } = {}) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return def
  const v = Number(raw)
  if (!Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v))) {
    console.error(`bench: ignoring ${name}=${JSON.stringify(raw)} (want ${int ? 'an integer' : 'a number'} in [${min}, ${max}]); using ${def}`)
    return def
  }
  return v
}

const CFG = {
  rounds: envNum('BENCH_ROUNDS', 3, { min: 1, max: 50, int: true }),
  duration: envNum('BENCH_DURATION', 5, { min: 0.5, max: 600 }),
  warmup: envNum('BENCH_WARMUP', 1, { min: 0, max: 60 }),
  connections: envNum('BENCH_CONNECTIONS', 4, { min: 1, max: 1000, int: true }),
  streams: envNum('BENCH_STREAMS', 32, { min: 1, max: 10000, int: true }),
  loadThreads: envNum('BENCH_LOAD_THREADS', 0, { min: 0, max: 256, int: true }), // 0 = tokio default
  bytes: envNum('BENCH_BYTES', 1024 * 1024 * 1024, { min: 1, max: 64 * 1024 ** 3, int: true }),
  // Rounds of the throughput section; defaults to BENCH_ROUNDS.
  throughputRounds: envNum('BENCH_THROUGHPUT_ROUNDS', 0, { min: 0, max: 50, int: true }),
  skipThroughput: process.env.BENCH_SKIP_THROUGHPUT === '1',
  skipClient: process.env.BENCH_SKIP_CLIENT === '1',
  // In-flight requests (JS loops) of bench/clients/fetch-load.mjs in the client section.
  clientConcurrency: envNum('BENCH_CLIENT_CONCURRENCY', 64, { min: 1, max: 10000, int: true }),
  // Datagram section: seconds measured per run, datagrams in flight per connection, payload
  // bytes, QUIC connections of dgram-load.
  dgramDuration: envNum('BENCH_DGRAM_DURATION', 3, { min: 0.5, max: 600 }),
  dgramWindow: envNum('BENCH_DGRAM_WINDOW', 256, { min: 1, max: 100000, int: true }),
  dgramSize: envNum('BENCH_DGRAM_SIZE', 64, { min: 16, max: 1100, int: true }),
  dgramConnections: envNum('BENCH_DGRAM_CONNECTIONS', 1, { min: 1, max: 64, int: true }),
  // WebTransport section: bytes echoed through one WebTransport bidirectional stream per run.
  wtBytes: envNum('BENCH_WT_BYTES', 128 * 1024 * 1024, { min: 1, max: 64 * 1024 ** 3, int: true }),
  // Comma-separated sections to run: rate, client, throughput, datagram, webtransport (default: all).
  sections: (process.env.BENCH_ONLY || '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean),
  noBuild: process.env.BENCH_NO_BUILD === '1',
  // Comma-separated, case-insensitive substrings of target names, e.g. "rust,bun.serve".
  only: (process.env.BENCH_TARGETS || '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean),
  // Open-loop latency runs at half the rust row's rate (0 turns them off); seconds each.
  latencyRounds: envNum('BENCH_LATENCY_ROUNDS', 2, { min: 0, max: 50, int: true }),
  latencyDuration: envNum('BENCH_LATENCY_DURATION', 4, { min: 0.5, max: 600 }),
  startTimeoutMs: 10_000
}
if (!CFG.throughputRounds) CFG.throughputRounds = CFG.rounds
const SECTIONS = ['rate', 'client', 'throughput', 'datagram', 'webtransport']
for (const s of CFG.sections) {
  if (!SECTIONS.includes(s)) console.error(`bench: BENCH_ONLY: unknown section ${JSON.stringify(s)} (want ${SECTIONS.join(', ')})`)
}
const runSection = (name) => CFG.sections.length === 0 || CFG.sections.includes(name)

// Issue targets for the streaming rows (napi-h3 vs the pure-Rust server).
const GOAL_RATIO = 0.8 // ≥ 0.8x the pure-Rust MB/s
const GOAL_RSS_GROWTH_MIB = 64 // server RSS growth during the transfer ≤ 64 MiB
// Latency target: p99 at half the rust server's maximum rate ≤ 1.5x the rust server's p99 there.
const GOAL_P99_RATIO = 1.5
const RSS_SAMPLE_MS = 50

const RESULTS_DIR = path.join(__dirname, 'results')
const RESULTS_FILE = path.join(RESULTS_DIR, 'latest.json')

// ---------------------------------------------------------------------------------------------
// Child process bookkeeping: every child is killed on exit, exceptions and signals.
// ---------------------------------------------------------------------------------------------
const children = new Set()
let tmpDir = null

function killAll () {
  for (const c of children) {
    try {
      c.kill('SIGKILL')
    } catch {}
  }
  children.clear()
  if (tmpDir) {
    try {
      fs.rmSync(tmpDir, { recursive: true, force: true })
    } catch {}
    tmpDir = null
  }
}
process.on('exit', killAll)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\nbench: ${sig}, stopping servers`)
    killAll()
    process.exit(130)
  })
}
process.on('uncaughtException', (err) => {
  console.error('bench: fatal:', err && err.stack ? err.stack : err)
  killAll()
  process.exit(1)
})
process.on('unhandledRejection', (err) => {
  console.error('bench: fatal (unhandled rejection):', err && err.stack ? err.stack : err)
  killAll()
  process.exit(1)
})

function track (child) {
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// /proc sampling
// ---------------------------------------------------------------------------------------------
const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const v = Number((r.stdout || '').trim())
  return Number.isFinite(v) && v > 0 ? v : 100
})()

/** utime+stime of a process (all its threads), in seconds; null if gone. */
function procCpu (pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ') // f[0] is field 3 (state)
    return (Number(f[11]) + Number(f[12])) / CLK_TCK
  } catch {
    return null
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineBusy () {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] // "cpu  user nice system idle iowait irq softirq steal ..."
    const v = line.trim().split(/\s+/).slice(1).map(Number)
    const idle = v[3] + (v[4] || 0)
    const total = v.slice(0, 8).reduce((a, b) => a + (b || 0), 0)
    return (total - idle) / CLK_TCK
  } catch {
    return null
  }
}

/** Peak resident set size in MiB (VmHWM). */
function procPeakRssMiB (pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : null
  } catch {
    return null
  }
}

/** Current resident set size in KiB (VmRSS); null if gone. */
function procRssKiB (pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// Tools and runtimes
// ---------------------------------------------------------------------------------------------
function exists (p) {
  try {
    fs.accessSync(p, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The system `node`: under `npm run`, PATH starts with node_modules/.bin, whose `node` is the
 * node24 devDependency. The "napi-h3 (node)" row should be the machine's own Node, so skip
 * node_modules directories. BENCH_NODE overrides.
 */
function systemNode () {
  if (process.env.BENCH_NODE) return process.env.BENCH_NODE
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir || dir.split(path.sep).includes('node_modules')) continue
    const p = path.join(dir, 'node')
    if (exists(p)) return p
  }
  return process.execPath
}

function versionOf (bin, args = ['--version']) {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 10_000 })
  return r.status === 0 ? r.stdout.trim() : null
}

function build () {
  if (CFG.noBuild) {
    console.log('bench: BENCH_NO_BUILD=1, using existing binaries')
  } else {
    console.log('bench: cargo build --release -p napi-h3-bench')
    const r = spawnSync('cargo', ['build', '--release', '-p', 'napi-h3-bench'], {
      cwd: ROOT,
      stdio: 'inherit'
    })
    if (r.error || r.status !== 0) {
      console.error(`bench: cargo build failed (${r.error ? r.error.message : 'exit ' + r.status})`)
      process.exit(1)
    }
  }
  for (const b of ['h3-hello', 'h3-load', 'h3-transfer', 'dgram-echo', 'dgram-load', 'wt-echo', 'wt-transfer']) {
    if (!exists(BIN(b))) {
      console.error(`bench: ${BIN(b)} missing; build with: cargo build --release -p napi-h3-bench`)
      process.exit(1)
    }
  }
}

/** Can `node` load the addon (require('..').createH3Server)? Returns null or the reason. */
function addonProblem (node) {
  const code =
    `const m = require(${JSON.stringify(ROOT)});` +
    'if (typeof m.createH3Server !== \'function\') { console.error(\'index.js does not export createH3Server\'); process.exit(3); }'
  const r = spawnSync(node, ['-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 })
  if (r.error) return r.error.message
  if (r.status === 0) return null
  const msg = (r.stderr || '').split('\n').find((l) => /Error|error|Cannot/.test(l)) || (r.stderr || '').trim()
  return msg.slice(0, 300) || `exit ${r.status}`
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------
/**
 * Starts a server and waits (CFG.startTimeoutMs) for its `LISTENING <port>` line.
 * Resolves { child, port, pid, stderrTail() }; rejects with a readable reason.
 */
function startServer (target) {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = target.cmd
    const child = track(spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...target.env } }))
    let stderr = ''
    const tail = () => stderr.split('\n').filter((l) => l.trim()).slice(-8).join('\n')
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-8192)
    })
    let done = false
    const finish = (err, port) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err) {
        stopServer({ child })
        reject(new Error(err + (tail() ? `\n      stderr: ${tail().replace(/\n/g, '\n              ')}` : '')))
      } else {
        resolve({ child, port, pid: child.pid, stderrTail: tail })
      }
    }
    const timer = setTimeout(() => finish(`no "LISTENING <port>" within ${CFG.startTimeoutMs / 1000} s`), CFG.startTimeoutMs)
    child.on('error', (e) => finish(`cannot start ${cmd}: ${e.message}`))
    child.on('exit', (code, sig) => finish(`exited early (${sig || 'code ' + code})`))
    const rl = readline.createInterface({ input: child.stdout })
    rl.on('line', (line) => {
      const m = /^LISTENING (\d+)\s*$/.exec(line)
      if (m) finish(null, Number(m[1]))
    })
  })
}

async function stopServer (server) {
  const { child } = server
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  try {
    child.kill('SIGTERM')
  } catch {}
  const t = await Promise.race([exited.then(() => true), sleep(2000).then(() => false)])
  if (!t) {
    try {
      child.kill('SIGKILL')
    } catch {}
    await Promise.race([exited, sleep(2000)])
  }
}

// ---------------------------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------------------------
/**
 * Runs h3-load (or `cmd`: any load generator with the same protocol, i.e. MEASURE_START /
 * MEASURE_END lines on stderr and one JSON line on stdout, such as clients/fetch-load.mjs) against a
 * started server. Samples server CPU, load-generator CPU and whole-machine busy time at
 * MEASURE_START / MEASURE_END. Resolves the parsed JSON plus the samples.
 */
function runLoad (server, loadArgs, { timeoutMs, cmd = BIN('h3-load'), label = 'h3-load' }) {
  return new Promise((resolve) => {
    const child = track(spawn(cmd, loadArgs, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }))
    let stdout = ''
    let stderr = ''
    const samples = {}
    const sample = () => ({
      t: process.hrtime.bigint(),
      server: procCpu(server.pid),
      client: procCpu(child.pid),
      machine: machineBusy()
    })
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d) => (stdout += d))
    const rl = readline.createInterface({ input: child.stderr })
    rl.on('line', (line) => {
      if (line === 'MEASURE_START') samples.start = sample()
      else if (line === 'MEASURE_END') samples.end = sample()
      else stderr = (stderr + line + '\n').slice(-4096)
    })
    const timer = setTimeout(() => {
      stderr += `\n(${label} killed after ${timeoutMs / 1000} s)`
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', (e) => {
      clearTimeout(timer)
      resolve({ error: `cannot run ${label}: ${e.message}` })
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()
      let json = null
      try {
        json = line ? JSON.parse(line) : null
      } catch {}
      if (!json) {
        resolve({ error: `${label} exit ${code}, no JSON${stderr.trim() ? ': ' + stderr.trim().slice(-400) : ''}` })
        return
      }
      const r = { json, exitCode: code }
      const { start, end } = samples
      if (start && end && start.server !== null && end.server !== null) {
        const wall = Number(end.t - start.t) / 1e9
        r.wall_s = wall
        r.server_cpu_s = end.server - start.server
        r.client_cpu_s = start.client !== null && end.client !== null ? end.client - start.client : null
        r.other_cpu_s =
          start.machine !== null && end.machine !== null
            ? Math.max(0, end.machine - start.machine - r.server_cpu_s - (r.client_cpu_s || 0))
            : null
      } else {
        r.cpuMissing = true
      }
      resolve(r)
    })
  })
}

/**
 * Runs h3-transfer (one request on one connection, response hashed with SHA-256) against a started
 * server. From just before the client starts until it has exited, samples the server's VmRSS every
 * RSS_SAMPLE_MS ms; also server CPU (start/end), client CPU (last sample while it ran) and
 * whole-machine busy time. Resolves { json, wall_s, server_cpu_s, client_cpu_s, other_cpu_s,
 * rss_before_kib, rss_peak_kib, rss_samples } or { error }.
 */
function runTransfer (server, args, { timeoutMs }) {
  return new Promise((resolve) => {
    const rssBefore = procRssKiB(server.pid)
    const cpu0 = procCpu(server.pid)
    const busy0 = machineBusy()
    const t0 = process.hrtime.bigint()
    const child = track(spawn(BIN('h3-transfer'), args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }))
    let rssPeak = rssBefore
    let rssSamples = 0
    let clientCpu = null
    const sample = () => {
      const r = procRssKiB(server.pid)
      if (r !== null) {
        rssSamples++
        if (rssPeak === null || r > rssPeak) rssPeak = r
      }
      const c = procCpu(child.pid)
      if (c !== null) clientCpu = c
    }
    const iv = setInterval(sample, RSS_SAMPLE_MS)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4096)))
    const timer = setTimeout(() => {
      stderr += `\n(h3-transfer killed after ${timeoutMs / 1000} s)`
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', (e) => {
      clearInterval(iv)
      clearTimeout(timer)
      resolve({ error: `cannot run h3-transfer: ${e.message}` })
    })
    child.on('close', (code) => {
      clearInterval(iv)
      clearTimeout(timer)
      const rssEnd = procRssKiB(server.pid) // the last word: RSS right after the transfer
      if (rssEnd !== null && (rssPeak === null || rssEnd > rssPeak)) rssPeak = rssEnd
      const wall = Number(process.hrtime.bigint() - t0) / 1e9
      const cpu1 = procCpu(server.pid)
      const busy1 = machineBusy()
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()
      let json = null
      try {
        json = line ? JSON.parse(line) : null
      } catch {}
      if (!json) {
        resolve({ error: `h3-transfer exit ${code}, no JSON${stderr.trim() ? ': ' + stderr.trim().slice(-400) : ''}` })
        return
      }
      const serverCpu = cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null
      resolve({
        json,
        exitCode: code,
        wall_s: wall,
        server_cpu_s: serverCpu,
        client_cpu_s: clientCpu,
        other_cpu_s:
          busy0 !== null && busy1 !== null && serverCpu !== null ? Math.max(0, busy1 - busy0 - serverCpu - (clientCpu || 0)) : null,
        rss_before_kib: rssBefore,
        rss_peak_kib: rssPeak,
        rss_samples: rssSamples
      })
    })
  })
}

/** SHA-256 (hex) of the first n bytes of `block` repeated. */
function hashRepeated (block, n) {
  const h = require('node:crypto').createHash('sha256')
  for (let left = n; left > 0;) {
    const k = Math.min(left, block.length)
    h.update(k === block.length ? block : block.subarray(0, k))
    left -= k
  }
  return h.digest('hex')
}

/** SHA-256 of n bytes of the pattern byte[i] = i % 251 (what h3-transfer uploads and wt-transfer sends). */
function patternSha256 (n) {
  const pattern = Buffer.allocUnsafe(251 * 4096) // a whole number of periods, so copies continue it
  for (let i = 0; i < pattern.length; i++) pattern[i] = i % 251
  return hashRepeated(pattern, n)
}

/**
 * SHA-256 of what h3-transfer uploads (the i % 251 pattern) and of what both servers' /download
 * send (N bytes of 'x'), for N bytes. ~1-3 s per GiB each.
 */
function expectedHashes (n) {
  return { upload: patternSha256(n), download: hashRepeated(Buffer.alloc(1024 * 1024, 0x78), n) }
}

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------
function rateTargets (ctx) {
  const hello = path.join(__dirname, 'servers', 'napi-h3-hello.js')
  const bunServe = path.join(__dirname, 'servers', 'bun-serve-h3.js')
  const node24 = path.join(ROOT, 'node_modules', 'node24', 'bin', 'node')
  const bun = path.join(ROOT, 'node_modules', '.bin', 'bun')
  const list = [
    // The reference: the same crates at their best here (bench/README.md: "The Rust baseline").
    { name: 'rust', cmd: [BIN('h3-hello'), '--tuned'] },
    // Weaker configurations, kept because they show what the tuning is worth.
    { name: 'rust (multi-thread, defaults)', cmd: [BIN('h3-hello')] },
    { name: 'rust (multi-thread x1, tuned)', cmd: [BIN('h3-hello'), '--tuned', '--runtime', 'multi', '--threads', '1'] },
    // Where cores are to spare (≥ 8), what the stack does with 4 threads beside the 1-thread row.
    ...(os.cpus().length >= 8 ? [{ name: 'rust (multi-thread x4, tuned)', cmd: [BIN('h3-hello'), '--tuned', '--runtime', 'multi', '--threads', '4'] }] : []),
    { name: 'napi-h3 (node)', cmd: [ctx.node, hello], addon: true, runtime: ctx.node },
    { name: 'napi-h3 (node24)', cmd: [node24, hello], addon: true, runtime: node24, need: [node24, 'node_modules/node24 not installed'] },
    { name: 'napi-h3 (bun)', cmd: [bun, hello], addon: true, runtime: bun, need: [bun, 'node_modules/.bin/bun not installed'] },
    { name: 'Bun.serve h3', cmd: [bun, bunServe, ctx.certPath, ctx.keyPath], need: [bun, 'node_modules/.bin/bun not installed'] }
  ]
  return list
}

/**
 * ---- THROUGHPUT TARGETS -------------------------------------------------------------------
 * Servers for the upload/download section. Each must serve `GET /download?bytes=N` (N bytes of
 * 'x') and `POST /upload` (hash the whole body, answer exactly `bytes=<N> sha256=<hex>`), which
 * run.js checks against h3-transfer's output. `rust` is the reference the napi-h3 rows are
 * compared with; the napi-h3 rows use a `mode: "streaming"` route for /upload and a pull-based
 * ReadableStream for /download (servers/napi-h3-stream.js).
 */
function throughputTargets (ctx) {
  return [{ name: 'rust', cmd: [BIN('h3-hello'), '--tuned'] }, ...napiRows(ctx, 'napi-h3-stream.js')]
}

/** The `napi-h3 (node)`, `(node24)` and `(bun)` rows running servers/<script>. */
function napiRows (ctx, script) {
  const file = path.join(__dirname, 'servers', script)
  const node24 = path.join(ROOT, 'node_modules', 'node24', 'bin', 'node')
  const bun = path.join(ROOT, 'node_modules', '.bin', 'bun')
  return [
    { name: 'napi-h3 (node)', cmd: [ctx.node, file], addon: true, runtime: ctx.node },
    { name: 'napi-h3 (node24)', cmd: [node24, file], addon: true, runtime: node24, need: [node24, 'node_modules/node24 not installed'] },
    { name: 'napi-h3 (bun)', cmd: [bun, file], addon: true, runtime: bun, need: [bun, 'node_modules/.bin/bun not installed'] }
  ]
}

/**
 * ---- DATAGRAM TARGETS ---------------------------------------------------------------------
 * QUIC DATAGRAM echo servers for the datagram section: every datagram dgram-load sends on a
 * connection (which opens no streams) comes back unchanged. `rust` (dgram-echo: quinn only) is the
 * reference; the napi-h3 rows echo from the server-level `quicDatagram` handler
 * (servers/napi-h3-dgram.js).
 */
function datagramTargets (ctx) {
  const wt = (t) => ({ ...t, name: `wt ${t.name}`, wt: true })
  return [
    { name: 'rust', cmd: [BIN('dgram-echo'), '--tuned'] },
    ...napiRows(ctx, 'napi-h3-dgram.js'),
    // WebTransport session datagrams (draft-02 HTTP datagrams on the CONNECT stream), driven by
    // `wt-transfer --datagrams`: wt-echo vs servers/napi-h3-wt.js (W3C `datagrams` streams).
    ...webtransportTargets(ctx).map(wt)
  ]
}

/**
 * ---- WEBTRANSPORT TARGETS -----------------------------------------------------------------
 * WebTransport echo servers for the webtransport section: an extended CONNECT to /echo opens a
 * session; every bidirectional stream of it is echoed back. `rust` (wt-echo: h3-webtransport) is
 * the reference; the napi-h3 rows pipe each stream's readable into its writable
 * (servers/napi-h3-wt.js).
 */
function webtransportTargets (ctx) {
  return [{ name: 'rust', cmd: [BIN('wt-echo'), '--tuned'] }, ...napiRows(ctx, 'napi-h3-wt.js')]
}

/**
 * ---- CLIENT TARGETS -----------------------------------------------------------------------
 * HTTP/3 clients driven from JS by clients/fetch-load.mjs, all against the same pure-Rust
 * h3-hello server (a fresh one per run). `Bun fetch h3` (Bun's own fetch with
 * `protocol: 'http3'`) is the reference the napi-h3 client rows are compared with.
 */
function clientTargets (ctx) {
  const load = path.join(__dirname, 'clients', 'fetch-load.mjs')
  const node24 = path.join(ROOT, 'node_modules', 'node24', 'bin', 'node')
  const bun = path.join(ROOT, 'node_modules', '.bin', 'bun')
  return [
    { name: 'napi-h3 client (node)', cmd: [ctx.node, load, '--impl', 'napi'], addon: true, runtime: ctx.node },
    { name: 'napi-h3 client (node24)', cmd: [node24, load, '--impl', 'napi'], addon: true, runtime: node24, need: [node24, 'node_modules/node24 not installed'] },
    { name: 'napi-h3 client (bun)', cmd: [bun, load, '--impl', 'napi'], addon: true, runtime: bun, need: [bun, 'node_modules/.bin/bun not installed'] },
    { name: 'Bun fetch h3', cmd: [bun, load, '--impl', 'bun'], runtime: bun, need: [bun, 'node_modules/.bin/bun not installed'] }
  ]
}

function selected (t) {
  return CFG.only.length === 0 || CFG.only.some((s) => t.name.toLowerCase().includes(s))
}

/** Returns null if the target can run, else why not. Caches the addon check per runtime. */
function whyUnavailable (t, ctx) {
  if (t.need && !exists(t.need[0])) return t.need[1]
  if (t.addon) {
    if (!(t.runtime in ctx.addonChecks)) ctx.addonChecks[t.runtime] = addonProblem(t.runtime)
    const p = ctx.addonChecks[t.runtime]
    if (p) return `cannot load the napi-h3 addon (require('..') failed: ${p}); build it with \`npm run build\``
  }
  return null
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting
// ---------------------------------------------------------------------------------------------
function median (xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const m = v.length >> 1
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}

/** Per-key medians of a list of run records. */
function medians (runs, keys) {
  return Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]))]))
}

const fmt = (x, digits = 0) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }))
const ratio = (a, b) => (a === null || b === null || !b ? '-' : (a / b).toFixed(2) + 'x')

function table (headers, rows, align) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (cells) => cells.map((c, i) => (align[i] === 'l' ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ')
  return [line(headers), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n')
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
async function main () {
  const t0 = Date.now()
  build()

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'napi-h3-bench-'))
  const cert = spawnSync(BIN('h3-hello'), ['--write-cert', tmpDir], { encoding: 'utf8' })
  if (cert.status !== 0) {
    console.error(`bench: h3-hello --write-cert failed: ${cert.stderr}`)
    process.exit(1)
  }
  const bunBin = path.join(ROOT, 'node_modules', '.bin', 'bun')
  const ctx = {
    node: systemNode(),
    certPath: path.join(tmpDir, 'cert.pem'),
    keyPath: path.join(tmpDir, 'key.pem'),
    addonChecks: {}
  }
  const meta = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, cpuModel: (os.cpus()[0] || {}).model, loadavg: os.loadavg(), kernel: os.release() },
    runtimes: {
      node: { path: ctx.node, version: versionOf(ctx.node) },
      node24: { version: versionOf(path.join(ROOT, 'node_modules', 'node24', 'bin', 'node')) },
      bun: { version: exists(bunBin) ? versionOf(bunBin) : null }
    },
    config: CFG
  }
  console.log(
    `bench: ${CFG.rounds} rounds x ${CFG.warmup}+${CFG.duration} s, ${CFG.connections} connections x ${CFG.streams} streams; ` +
      `${meta.host.cpus} CPUs; node ${meta.runtimes.node.version} (${ctx.node}), bun ${meta.runtimes.bun.version}`
  )
  const busy0 = machineBusy()
  await sleep(1000)
  const busyNow = busy0 !== null ? machineBusy() - busy0 : null
  meta.host.busy_cores_before = busyNow
  if (busyNow > 0.3) {
    console.log(`bench: note: other processes keep ${busyNow.toFixed(2)} cores busy; numbers will be noisy (see the "other cores" column)`)
  }

  // ---- request-rate section -----------------------------------------------------------------
  const skipped = {}
  const targets = []
  if (!runSection('rate')) console.log('bench: request-rate section skipped (BENCH_ONLY)')
  for (const t of runSection('rate') ? rateTargets(ctx).filter(selected) : []) {
    const why = whyUnavailable(t, ctx)
    if (why) {
      skipped[t.name] = why
      console.log(`bench: skipping ${t.name}: ${why}`)
    } else targets.push(t)
  }
  const rate = Object.fromEntries(targets.map((t) => [t.name, { runs: [], failures: [] }]))
  const loadArgs = (port) => {
    const a = ['--url', `https://127.0.0.1:${port}/`, '--connections', String(CFG.connections), '--streams', String(CFG.streams), '--duration', String(CFG.duration), '--warmup', String(CFG.warmup)]
    if (CFG.loadThreads) a.push('--threads', String(CFG.loadThreads))
    return a
  }
  for (let round = 1; round <= CFG.rounds; round++) {
    for (const t of targets) {
      if (skipped[t.name]) continue
      let server
      try {
        server = await startServer(t)
      } catch (e) {
        skipped[t.name] = `server failed to start: ${e.message}`
        console.log(`bench: skipping ${t.name}: ${skipped[t.name]}`)
        continue
      }
      const r = await runLoad(server, loadArgs(server.port), { timeoutMs: (CFG.warmup + CFG.duration + 30) * 1000 })
      const died = server.child.exitCode !== null || server.child.signalCode !== null
      const peakRss = procPeakRssMiB(server.pid)
      await stopServer(server)
      if (r.error || died) {
        const why = r.error || `server died during the run${server.stderrTail() ? ': ' + server.stderrTail() : ''}`
        rate[t.name].failures.push({ round, error: why })
        console.log(`  round ${round}  ${t.name.padEnd(18)} FAILED: ${why}`)
        continue
      }
      const j = r.json
      const run = {
        round,
        rps: j.rps,
        requests: j.requests,
        errors: j.errors,
        p50_us: j.p50_us,
        p99_us: j.p99_us,
        max_us: j.max_us,
        first_error: j.first_error,
        wall_s: r.wall_s ?? null,
        server_cpu_s: r.server_cpu_s ?? null,
        server_cpu_us_per_req: perUnit(r.server_cpu_s, j.requests, 1e6),
        server_cores: cores(r.server_cpu_s, r.wall_s),
        client_cpu_us_per_req: perUnit(r.client_cpu_s, j.requests, 1e6),
        other_cores: cores(r.other_cpu_s, r.wall_s),
        server_peak_rss_mib: peakRss,
        h3load: j
      }
      rate[t.name].runs.push(run)
      console.log(
        `  round ${round}  ${t.name.padEnd(18)} ${fmt(run.rps).padStart(8)} req/s  p50 ${fmt(run.p50_us).padStart(6)} µs  p99 ${fmt(run.p99_us).padStart(6)} µs  ` +
          `server ${fmt(run.server_cpu_us_per_req, 2).padStart(6)} µs/req  (${fmt(run.server_cores, 2)} cores)` +
          (run.errors ? `  errors ${run.errors} (${run.first_error})` : '')
      )
    }
  }
  for (const [name, v] of Object.entries(rate)) {
    v.median = {
      ...medians(v.runs, ['rps', 'p50_us', 'p99_us', 'server_cpu_us_per_req', 'server_cores', 'client_cpu_us_per_req', 'other_cores', 'server_peak_rss_mib']),
      errors: v.runs.reduce((a, r) => a + r.errors, 0),
      rounds: v.runs.length
    }
    if (v.runs.length === 0) skipped[name] = skipped[name] || `all ${v.failures.length} runs failed: ${v.failures[0] && v.failures[0].error}`
  }

  // ---- latency at half the rust server's maximum rate ---------------------------------------
  // h3-load --rate: an open-loop schedule at half the `rust` row's median req/s, the same for
  // every server, so p99 compares queueing at equal load (a server that cannot keep up shows
  // it in its p99). The extra rust rows are left out.
  const latency = {}
  const refRps = rate.rust && rate.rust.runs.length ? rate.rust.median.rps : null
  const latencyTargets = targets.filter((t) => !skipped[t.name] && (t.name === 'rust' || !t.name.startsWith('rust (')))
  if (refRps && CFG.latencyRounds > 0) {
    const target = Math.round(refRps / 2)
    console.log(`bench: latency: ${CFG.latencyRounds} rounds x ${latencyTargets.length} targets, open loop at ${fmt(target)} req/s (half the rust row's), ${CFG.latencyDuration} s each`)
    for (const t of latencyTargets) latency[t.name] = { target_rps: target, runs: [], failures: [] }
    for (let round = 1; round <= CFG.latencyRounds; round++) {
      for (const t of latencyTargets) {
        let server
        try {
          server = await startServer(t)
        } catch (e) {
          latency[t.name].failures.push({ round, error: `server failed to start: ${e.message}` })
          continue
        }
        const args = ['--url', `https://127.0.0.1:${server.port}/`, '--connections', String(CFG.connections), '--streams', String(CFG.streams), '--duration', String(CFG.latencyDuration), '--warmup', String(CFG.warmup), '--rate', String(target)]
        const r = await runLoad(server, args, { timeoutMs: (CFG.warmup + CFG.latencyDuration + 30) * 1000 })
        await stopServer(server)
        if (r.error) {
          latency[t.name].failures.push({ round, error: r.error })
          console.log(`  latency ${round}  ${t.name.padEnd(18)} FAILED: ${r.error}`)
          continue
        }
        const j = r.json
        const run = { round, rps: j.rps, p50_us: j.p50_us, p99_us: j.p99_us, max_us: j.max_us, errors: j.errors, server_cpu_us_per_req: perUnit(r.server_cpu_s, j.requests, 1e6), other_cores: cores(r.other_cpu_s, r.wall_s) }
        latency[t.name].runs.push(run)
        console.log(`  latency ${round}  ${t.name.padEnd(18)} ${fmt(run.rps).padStart(8)} req/s  p50 ${fmt(run.p50_us).padStart(6)} µs  p99 ${fmt(run.p99_us).padStart(6)} µs  server ${fmt(run.server_cpu_us_per_req, 2)} µs/req`)
      }
    }
    for (const v of Object.values(latency)) v.median = medians(v.runs, ['rps', 'p50_us', 'p99_us', 'server_cpu_us_per_req', 'other_cores'])
    const refP99 = latency.rust && latency.rust.runs.length ? latency.rust.median.p99_us : null
    for (const [n, v] of Object.entries(latency)) {
      v.p99_ratio = n !== 'rust' && refP99 && v.median.p99_us != null ? v.median.p99_us / refP99 : null
      v.p99_goal = v.p99_ratio === null ? null : v.p99_ratio <= GOAL_P99_RATIO
    }
  }

  // ---- client section -----------------------------------------------------------------------
  // clients/fetch-load.mjs (CFG.clientConcurrency JS loops of `await (await fetch(url)).text()`)
  // against a fresh h3-hello per run; rounds interleaved like above. Server CPU, client CPU and
  // machine busy time are sampled at fetch-load's MEASURE_START / MEASURE_END, like for h3-load.
  const client = {}
  const clientRatios = []
  if (CFG.skipClient || !runSection('client')) {
    console.log(`bench: client section skipped (${CFG.skipClient ? 'BENCH_SKIP_CLIENT=1' : 'BENCH_ONLY'})`)
  } else {
    const cTargets = []
    for (const t of clientTargets(ctx).filter(selected)) {
      const why = whyUnavailable(t, ctx)
      if (why) {
        skipped[t.name] = why
        console.log(`bench: skipping ${t.name}: ${why}`)
      } else {
        cTargets.push(t)
        client[t.name] = { runtime: t.runtime, runs: [], failures: [] }
      }
    }
    const helloServer = { name: 'h3-hello', cmd: [BIN('h3-hello')] }
    if (cTargets.length) {
      console.log(
        `bench: client section: ${CFG.rounds} rounds x ${cTargets.length} clients x ${CFG.warmup}+${CFG.duration} s, ` +
          `${CFG.clientConcurrency} concurrent fetch loops, server h3-hello`
      )
    }
    for (let round = 1; round <= CFG.rounds; round++) {
      for (const t of cTargets) {
        const label = `  round ${round}  ${t.name.padEnd(24)}`
        let server
        try {
          server = await startServer(helloServer)
        } catch (e) {
          client[t.name].failures.push({ round, error: `h3-hello failed to start: ${e.message}` })
          console.log(`${label} FAILED: h3-hello failed to start: ${e.message}`)
          continue
        }
        const [cmd, ...fixed] = t.cmd
        const args = [
          ...fixed,
          '--url', `https://127.0.0.1:${server.port}/`,
          '--concurrency', String(CFG.clientConcurrency),
          '--duration', String(CFG.duration),
          '--warmup', String(CFG.warmup)
        ]
        const r = await runLoad(server, args, { timeoutMs: (CFG.warmup + CFG.duration + 30) * 1000, cmd, label: 'fetch-load' })
        const died = server.child.exitCode !== null || server.child.signalCode !== null
        await stopServer(server)
        const j = r.json
        const why = r.error || (died ? `h3-hello died during the run${server.stderrTail() ? ': ' + server.stderrTail() : ''}` : null) ||
          (j.requests > 0 ? null : `no request succeeded (${j.errors} errors, first: ${j.first_error})`)
        if (why) {
          client[t.name].failures.push({ round, error: why })
          console.log(`${label} FAILED: ${why}`)
          continue
        }
        const run = {
          round,
          rps: j.rps,
          requests: j.requests,
          errors: j.errors,
          p50_ms: j.p50_ms,
          p99_ms: j.p99_ms,
          max_ms: j.max_ms,
          first_error: j.first_error,
          // fetch-load's own process.cpuUsage() (user + system) per request, in µs (= ms per 1k).
          client_cpu_us_per_req: j.cpu_ms_per_1k,
          // The same from /proc, sampled by run.js at the markers (cross-check) and as cores.
          client_cpu_us_per_req_proc: perUnit(r.client_cpu_s, j.requests, 1e6),
          client_cores: cores(r.client_cpu_s, r.wall_s),
          server_cpu_us_per_req: perUnit(r.server_cpu_s, j.requests, 1e6),
          server_cores: cores(r.server_cpu_s, r.wall_s),
          other_cores: cores(r.other_cpu_s, r.wall_s),
          wall_s: r.wall_s ?? null,
          runtime: j.runtime,
          connections_opened: j.connections_opened,
          fetch_load: j
        }
        client[t.name].runs.push(run)
        console.log(
          `${label} ${fmt(run.rps).padStart(7)} req/s  p50 ${fmt(run.p50_ms, 2).padStart(6)} ms  p99 ${fmt(run.p99_ms, 2).padStart(6)} ms  ` +
            `client ${fmt(run.client_cpu_us_per_req, 1).padStart(6)} µs/req (${fmt(run.client_cores, 2)} cores)  ` +
            `server ${fmt(run.server_cpu_us_per_req, 1)} µs/req (${fmt(run.server_cores, 2)} cores)` +
            (run.errors ? `  errors ${run.errors} (${run.first_error})` : '')
        )
      }
    }
    for (const [name, v] of Object.entries(client)) {
      v.median = {
        ...medians(v.runs, ['rps', 'p50_ms', 'p99_ms', 'client_cpu_us_per_req', 'client_cpu_us_per_req_proc', 'client_cores', 'server_cpu_us_per_req', 'server_cores', 'other_cores']),
        errors: v.runs.reduce((a, r) => a + r.errors, 0),
        rounds: v.runs.length
      }
      if (v.runs.length === 0) skipped[name] = skipped[name] || `all ${v.failures.length} runs failed: ${v.failures[0] && v.failures[0].error}`
    }
    const ref = client['Bun fetch h3']
    for (const [name, v] of Object.entries(client)) {
      if (!name.startsWith('napi-h3') || !v.runs.length || !ref || !ref.runs.length) continue
      const q = (k) => (v.median[k] != null && ref.median[k] ? v.median[k] / ref.median[k] : null)
      clientRatios.push({
        row: name,
        vs: 'Bun fetch h3',
        rps_ratio: q('rps'),
        client_cpu_ratio: q('client_cpu_us_per_req'),
        server_cpu_ratio: q('server_cpu_us_per_req')
      })
    }
  }

  // ---- throughput section -------------------------------------------------------------------
  // One BENCH_BYTES transfer per (target, direction, round), a fresh server each time, rounds
  // interleaved like the rate section. Client: h3-transfer, which hashes what it receives; the
  // result is checked against the expected SHA-256 (download) or the server's
  // `bytes=N sha256=HEX` answer (upload).
  const throughput = {}
  // `download-fresh`: the napi-h3 servers' ReadableStream allocates a new chunk per pull, as
  // user code does (`download` enqueues views of one buffer); the rust server ignores `fresh`.
  const DIRS = ['upload', 'download', 'download-fresh']
  let expected = null
  if (CFG.skipThroughput || !runSection('throughput')) {
    console.log(`bench: throughput section skipped (${CFG.skipThroughput ? 'BENCH_SKIP_THROUGHPUT=1' : 'BENCH_ONLY'})`)
  } else {
    const tTargets = throughputTargets(ctx).filter(selected)
    for (const t of tTargets) {
      const why = whyUnavailable(t, ctx)
      if (why) {
        skipped[`${t.name} (throughput)`] = why
        console.log(`bench: skipping throughput ${t.name}: ${why}`)
        continue
      }
      throughput[t.name] = Object.fromEntries(DIRS.map((d) => [d, []]))
    }
    const mib = CFG.bytes / (1024 * 1024)
    if (Object.keys(throughput).length) {
      const th = Date.now()
      expected = expectedHashes(CFG.bytes)
      console.log(
        `bench: throughput: ${CFG.throughputRounds} rounds x ${Object.keys(throughput).length} targets x ${DIRS.length} directions (${DIRS.join(', ')}), ` +
          `${fmt(mib)} MiB each (expected SHA-256 computed in ${((Date.now() - th) / 1000).toFixed(1)} s)`
      )
    }
    // Generous: 10 MB/s would still finish. A stuck transfer is killed and counted as failed.
    const timeoutS = Math.max(60, Math.ceil(CFG.bytes / 10e6))
    for (let round = 1; round <= CFG.throughputRounds; round++) {
      for (const name of Object.keys(throughput)) {
        const t = tTargets.find((x) => x.name === name)
        for (const dir of DIRS) {
          const label = `  round ${round}  ${name.padEnd(18)} ${dir.padEnd(8)}`
          let server
          try {
            server = await startServer(t)
          } catch (e) {
            console.log(`${label} server failed to start: ${e.message}`)
            throughput[name][dir].push({ round, error: `server failed to start: ${e.message}` })
            continue
          }
          const base = `https://127.0.0.1:${server.port}`
          // Fixed cost of one h3-transfer run (process start, handshake, close): subtracted from
          // the big transfer's time. Also wakes the server up (first request, JIT).
          const probe = await runTransfer(server, ['--url', `${base}/download?bytes=1`, '--timeout', '10'], { timeoutMs: 15_000 })
          const probeMs = probe.json && !probe.json.error && probe.json.status === 200 ? probe.json.ms : null
          await sleep(100) // let the server settle before the RSS baseline
          const url = {
            upload: `${base}/upload`,
            download: `${base}/download?bytes=${CFG.bytes}`,
            'download-fresh': `${base}/download?bytes=${CFG.bytes}&fresh=1`
          }[dir]
          const args = ['--tuned', '--url', url, '--timeout', String(timeoutS)]
          if (dir === 'upload') args.push('--upload', String(CFG.bytes))
          const r = await runTransfer(server, args, { timeoutMs: (timeoutS + 15) * 1000 })
          const died = server.child.exitCode !== null || server.child.signalCode !== null
          const hwm = procPeakRssMiB(server.pid)
          await stopServer(server)
          const j = r.json
          let why = r.error || null
          if (!why && j.error) why = j.error
          if (!why && j.status !== 200) why = `status ${j.status}: ${String(j.body).slice(0, 200)}`
          if (!why && dir === 'upload') {
            const want = `bytes=${CFG.bytes} sha256=${expected.upload}`
            if (j.sent !== CFG.bytes) why = `sent ${j.sent} of ${CFG.bytes} bytes`
            else if (String(j.body).trim() !== want) why = `server answered ${JSON.stringify(String(j.body).slice(0, 120))}, expected ${JSON.stringify(want)}`
          }
          if (!why && dir !== 'upload') {
            if (j.received !== CFG.bytes) why = `received ${j.received} of ${CFG.bytes} bytes`
            else if (j.sha256 !== expected.download) why = `sha256 ${j.sha256} != expected ${expected.download}`
          }
          if (!why && died) why = `server died during the transfer${server.stderrTail() ? ': ' + server.stderrTail() : ''}`
          if (why) {
            console.log(`${label} FAILED: ${why}`)
            throughput[name][dir].push({ round, error: why })
            continue
          }
          const ms = probeMs !== null && j.ms - probeMs > 0 ? j.ms - probeMs : j.ms
          const kib2mib = (x) => (x === null ? null : x / 1024)
          const run = {
            round,
            mb_per_s: CFG.bytes / 1e6 / (ms / 1000),
            mb_per_s_raw: CFG.bytes / 1e6 / (j.ms / 1000),
            transfer_ms: j.ms,
            probe_ms: probeMs,
            server_cpu_s: r.server_cpu_s,
            server_cpu_ms_per_mib: perUnit(r.server_cpu_s, mib, 1000),
            client_cpu_s: r.client_cpu_s,
            // h3-transfer's own figure (exact, to its exit) over the sampled one.
            client_cpu_ms_per_mib: typeof j.cpu_ms === 'number' ? j.cpu_ms / mib : perUnit(r.client_cpu_s, mib, 1000),
            other_cores: cores(r.other_cpu_s, r.wall_s),
            rss_before_mib: kib2mib(r.rss_before_kib),
            rss_peak_mib: kib2mib(r.rss_peak_kib),
            rss_growth_mib: r.rss_peak_kib != null && r.rss_before_kib != null ? (r.rss_peak_kib - r.rss_before_kib) / 1024 : null,
            rss_samples: r.rss_samples,
            server_vmhwm_mib: hwm,
            sha256: j.sha256,
            reply: dir === 'upload' ? String(j.body).trim() : undefined
          }
          throughput[name][dir].push(run)
          console.log(
            `${label} ${fmt(run.mb_per_s, 1).padStart(7)} MB/s  server ${fmt(run.server_cpu_ms_per_mib, 2)} ms CPU/MiB  client ${fmt(run.client_cpu_ms_per_mib, 2)}  ` +
              `RSS ${fmt(run.rss_before_mib, 1)} -> peak ${fmt(run.rss_peak_mib, 1)} MiB (+${fmt(run.rss_growth_mib, 1)}, ${run.rss_samples} samples)  ` +
              `other cores ${fmt(run.other_cores, 2)}  sha256 ok`
          )
        }
      }
    }
    for (const v of Object.values(throughput)) {
      for (const dir of DIRS) {
        const ok = v[dir].filter((r) => !r.error)
        v[`${dir}_median`] = {
          ...medians(ok, ['mb_per_s', 'server_cpu_ms_per_mib', 'client_cpu_ms_per_mib', 'rss_before_mib', 'rss_peak_mib', 'rss_growth_mib']),
          rss_growth_max_mib: ok.length ? Math.max(...ok.map((r) => r.rss_growth_mib ?? -Infinity)) : null,
          other_cores: median(ok.map((r) => r.other_cores)),
          rounds: ok.length,
          failures: v[dir].length - ok.length
        }
      }
    }
    // Issue targets: napi-h3 rows vs rust, per direction.
    for (const [n, v] of Object.entries(throughput)) {
      for (const dir of DIRS) {
        const md = v[`${dir}_median`]
        const ref = throughput.rust && throughput.rust[`${dir}_median`].mb_per_s
        md.ratio_vs_rust = n !== 'rust' && ref && md.mb_per_s !== null ? md.mb_per_s / ref : null
        md.rate_goal = n === 'rust' ? null : md.ratio_vs_rust === null ? null : md.ratio_vs_rust >= GOAL_RATIO
        md.rss_goal = md.rss_growth_mib === null ? null : md.rss_growth_mib <= GOAL_RSS_GROWTH_MIB
      }
    }
  }

  // ---- datagram section ---------------------------------------------------------------------
  // dgram-load (CFG.dgramWindow sequence-numbered datagrams in flight per connection, each echo
  // checked byte for byte, loss = no echo within its loss timeout) against a fresh echo server
  // per run; rounds interleaved like the rate section; server CPU sampled at the markers.
  const datagram = {}
  const datagramRatios = []
  if (!runSection('datagram')) {
    console.log('bench: datagram section skipped (BENCH_ONLY)')
  } else {
    const dTargets = []
    for (const t of datagramTargets(ctx).filter(selected)) {
      const why = whyUnavailable(t, ctx)
      if (why) {
        skipped[`${t.name} (datagram)`] = why
        console.log(`bench: skipping datagram ${t.name}: ${why}`)
      } else {
        dTargets.push(t)
        datagram[t.name] = { runs: [], failures: [] }
      }
    }
    if (dTargets.length) {
      console.log(
        `bench: datagram section: ${CFG.rounds} rounds x ${dTargets.length} targets x ${CFG.warmup}+${CFG.dgramDuration} s, ` +
          `${CFG.dgramConnections} connection(s) x ${CFG.dgramWindow} datagrams of ${CFG.dgramSize} bytes in flight`
      )
    }
    const wtArgs = (port) => [
      '--url', `https://127.0.0.1:${port}/echo`,
      '--datagrams', String(CFG.dgramDuration),
      '--warmup', String(CFG.warmup),
      '--window', String(CFG.dgramWindow),
      '--size', String(CFG.dgramSize)
    ]
    /** wt-transfer's datagram report in dgram-load's shape (one connection, no RTT). */
    const wtJson = (j) => {
      const d = j.datagrams || {}
      return { ...j, eps: d.eps, echoes: d.echoes ?? 0, sent: d.sent, lost: d.lost, loss_pct: d.sent ? (100 * d.lost) / d.sent : null, late: 0, corrupt: d.corrupt, p50_us: null, p99_us: null, sent_total: d.sent, first_error: j.error }
    }
    const args = (port) => [
      '--url', `https://127.0.0.1:${port}/`,
      '--connections', String(CFG.dgramConnections),
      '--window', String(CFG.dgramWindow),
      '--size', String(CFG.dgramSize),
      '--duration', String(CFG.dgramDuration),
      '--warmup', String(CFG.warmup)
    ]
    for (let round = 1; round <= CFG.rounds; round++) {
      for (const t of dTargets) {
        const label = `  round ${round}  ${t.name.padEnd(18)}`
        if (skipped[`${t.name} (datagram)`]) continue
        let server
        try {
          server = await startServer(t)
        } catch (e) {
          skipped[`${t.name} (datagram)`] = `server failed to start: ${e.message}`
          console.log(`${label} skipped: server failed to start: ${e.message}`)
          continue
        }
        const load = t.wt
          ? { args: wtArgs(server.port), cmd: BIN('wt-transfer'), label: 'wt-transfer' }
          : { args: args(server.port), cmd: BIN('dgram-load'), label: 'dgram-load' }
        const r = await runLoad(server, load.args, { timeoutMs: (CFG.warmup + CFG.dgramDuration + 30) * 1000, cmd: load.cmd, label: load.label })
        const died = server.child.exitCode !== null || server.child.signalCode !== null
        const peakRss = procPeakRssMiB(server.pid)
        await stopServer(server)
        const j = t.wt && r.json ? wtJson(r.json) : r.json
        const why = r.error || (died ? `server died during the run${server.stderrTail() ? ': ' + server.stderrTail() : ''}` : null) ||
          (j.echoes > 0 ? null : `no echo came back (sent ${j.sent_total}; ${j.first_error || 'no error reported'})`)
        if (why) {
          datagram[t.name].failures.push({ round, error: why })
          console.log(`${label} FAILED: ${why}`)
          continue
        }
        const run = {
          round,
          eps: j.eps,
          echoes: j.echoes,
          sent: j.sent,
          lost: j.lost,
          loss_pct: j.loss_pct,
          late: j.late,
          corrupt: j.corrupt,
          p50_us: j.p50_us,
          p99_us: j.p99_us,
          wall_s: r.wall_s ?? null,
          server_cpu_s: r.server_cpu_s ?? null,
          server_cpu_us_per_dgram: perUnit(r.server_cpu_s, j.echoes, 1e6),
          server_cores: cores(r.server_cpu_s, r.wall_s),
          client_cpu_us_per_dgram: perUnit(r.client_cpu_s, j.echoes, 1e6),
          other_cores: cores(r.other_cpu_s, r.wall_s),
          server_peak_rss_mib: peakRss,
          dgram_load: j
        }
        datagram[t.name].runs.push(run)
        console.log(
          `${label} ${fmt(run.eps).padStart(9)} echoes/s  loss ${fmt(run.loss_pct, 2)} %  rtt p50 ${fmt(run.p50_us).padStart(5)} µs  ` +
            `server ${fmt(run.server_cpu_us_per_dgram, 2).padStart(6)} µs/dgram (${fmt(run.server_cores, 2)} cores)` +
            (run.corrupt ? `  CORRUPT ${run.corrupt}` : '')
        )
      }
    }
    for (const [name, v] of Object.entries(datagram)) {
      v.median = {
        ...medians(v.runs, ['eps', 'loss_pct', 'p50_us', 'p99_us', 'server_cpu_us_per_dgram', 'server_cores', 'client_cpu_us_per_dgram', 'other_cores', 'server_peak_rss_mib']),
        lost: v.runs.reduce((a, r) => a + r.lost, 0),
        corrupt: v.runs.reduce((a, r) => a + r.corrupt, 0),
        rounds: v.runs.length
      }
      if (v.runs.length === 0) skipped[`${name} (datagram)`] = skipped[`${name} (datagram)`] || `all ${v.failures.length} runs failed: ${v.failures[0] && v.failures[0].error}`
    }
    for (const [name, v] of Object.entries(datagram)) {
      // QUIC rows against `rust`, WebTransport rows against `wt rust`.
      const refName = name.startsWith('wt ') ? 'wt rust' : 'rust'
      const ref = datagram[refName]
      if (name === refName || !v.runs.length || !ref || !ref.runs.length) continue
      const q = (k) => (v.median[k] != null && ref.median[k] ? v.median[k] / ref.median[k] : null)
      datagramRatios.push({ row: name, vs: refName, eps_ratio: q('eps'), cpu_ratio: q('server_cpu_us_per_dgram') })
    }
  }

  // ---- webtransport section -----------------------------------------------------------------
  // wt-transfer (one WebTransport session, CFG.wtBytes through one bidirectional stream and back,
  // SHA-256 checked) against a fresh echo server per run; rounds interleaved. Server CPU is sampled
  // at wt-transfer's MEASURE_START / MEASURE_END (around the transfer, setup excluded).
  const webtransport = {}
  const webtransportRatios = []
  let wtExpected = null
  if (!runSection('webtransport')) {
    console.log('bench: webtransport section skipped (BENCH_ONLY)')
  } else {
    const wTargets = []
    for (const t of webtransportTargets(ctx).filter(selected)) {
      const why = whyUnavailable(t, ctx)
      if (why) {
        skipped[`${t.name} (webtransport)`] = why
        console.log(`bench: skipping webtransport ${t.name}: ${why}`)
      } else {
        wTargets.push(t)
        webtransport[t.name] = { runs: [], failures: [] }
      }
    }
    const mib = CFG.wtBytes / 1048576
    if (wTargets.length) {
      wtExpected = patternSha256(CFG.wtBytes)
      console.log(`bench: webtransport section: ${CFG.rounds} rounds x ${wTargets.length} targets, ${fmt(mib)} MiB echoed through one WebTransport stream each`)
    }
    const timeoutS = Math.max(60, Math.ceil(CFG.wtBytes / 5e6)) // 5 MB/s would still finish
    for (let round = 1; round <= CFG.rounds; round++) {
      for (const t of wTargets) {
        const label = `  round ${round}  ${t.name.padEnd(18)}`
        if (skipped[`${t.name} (webtransport)`]) continue
        let server
        try {
          server = await startServer(t)
        } catch (e) {
          skipped[`${t.name} (webtransport)`] = `server failed to start: ${e.message}`
          console.log(`${label} skipped: server failed to start: ${e.message}`)
          continue
        }
        const args = ['--url', `https://127.0.0.1:${server.port}/echo`, '--bytes', String(CFG.wtBytes), '--timeout', String(timeoutS)]
        const r = await runLoad(server, args, { timeoutMs: (timeoutS + 15) * 1000, cmd: BIN('wt-transfer'), label: 'wt-transfer' })
        const died = server.child.exitCode !== null || server.child.signalCode !== null
        const peakRss = procPeakRssMiB(server.pid)
        await stopServer(server)
        const j = r.json
        let why = r.error || j.error || null
        if (!why && (j.sent !== CFG.wtBytes || j.received !== CFG.wtBytes)) why = `sent ${j.sent}, echoed ${j.received} of ${CFG.wtBytes} bytes`
        if (!why && (j.sha256_sent !== wtExpected || j.sha256_received !== wtExpected)) why = `sha256 sent ${j.sha256_sent} / echoed ${j.sha256_received} != expected ${wtExpected}`
        if (!why && died) why = `server died during the transfer${server.stderrTail() ? ': ' + server.stderrTail() : ''}`
        if (why) {
          webtransport[t.name].failures.push({ round, error: why, status: j ? j.status : null })
          console.log(`${label} FAILED: ${why}`)
          // No session (CONNECT refused or never answered): later rounds would fail the same way.
          if (!j || j.status !== 200) {
            skipped[`${t.name} (webtransport)`] = `no WebTransport session: ${why}`
          }
          continue
        }
        const run = {
          round,
          mb_per_s: j.mb_per_s,
          transfer_ms: j.transfer_ms,
          setup_ms: j.setup_ms,
          wall_s: r.wall_s ?? null,
          server_cpu_s: r.server_cpu_s ?? null,
          server_cpu_ms_per_mib: perUnit(r.server_cpu_s, mib, 1000),
          server_cores: cores(r.server_cpu_s, r.wall_s),
          client_cores: cores(r.client_cpu_s, r.wall_s),
          other_cores: cores(r.other_cpu_s, r.wall_s),
          server_peak_rss_mib: peakRss,
          wt_transfer: j
        }
        webtransport[t.name].runs.push(run)
        console.log(
          `${label} ${fmt(run.mb_per_s, 1).padStart(7)} MB/s  server ${fmt(run.server_cpu_ms_per_mib, 2)} ms CPU/MiB (${fmt(run.server_cores, 2)} cores)  ` +
            `setup ${fmt(run.setup_ms, 1)} ms  peak RSS ${fmt(peakRss, 1)} MiB  sha256 ok`
        )
      }
    }
    for (const [name, v] of Object.entries(webtransport)) {
      v.median = {
        ...medians(v.runs, ['mb_per_s', 'server_cpu_ms_per_mib', 'server_cores', 'client_cores', 'other_cores', 'setup_ms', 'server_peak_rss_mib']),
        rounds: v.runs.length,
        failures: v.failures.length
      }
      if (v.runs.length === 0) skipped[`${name} (webtransport)`] = skipped[`${name} (webtransport)`] || `all ${v.failures.length} runs failed: ${v.failures[0] && v.failures[0].error}`
    }
    const ref = webtransport.rust
    for (const [name, v] of Object.entries(webtransport)) {
      if (name === 'rust' || !v.runs.length || !ref || !ref.runs.length) continue
      const q = (k) => (v.median[k] != null && ref.median[k] ? v.median[k] / ref.median[k] : null)
      webtransportRatios.push({ row: name, vs: 'rust', mb_per_s_ratio: q('mb_per_s'), cpu_ratio: q('server_cpu_ms_per_mib') })
    }
  }

  // ---- report -------------------------------------------------------------------------------
  const names = Object.keys(rate).filter((n) => rate[n].runs.length)
  const m = (n, k) => (rate[n] && rate[n].runs.length ? rate[n].median[k] : null)
  if (Object.keys(rate).length) console.log(`\nHTTP/3 "hello" request rate: medians over ${CFG.rounds} rounds (${CFG.connections} conns x ${CFG.streams} streams, ${CFG.duration} s each)\n`)
  if (Object.keys(rate).length) {
    console.log(
      table(
        ['target', 'req/s', 'p50 µs', 'p99 µs', 'server CPU µs/req', 'server cores', 'load-gen µs/req', 'other cores', 'peak RSS MiB', 'errors'],
        names.map((n) => [
          n,
          fmt(m(n, 'rps')),
          fmt(m(n, 'p50_us')),
          fmt(m(n, 'p99_us')),
          fmt(m(n, 'server_cpu_us_per_req'), 2),
          fmt(m(n, 'server_cores'), 2),
          fmt(m(n, 'client_cpu_us_per_req'), 2),
          fmt(m(n, 'other_cores'), 2),
          fmt(m(n, 'server_peak_rss_mib'), 1),
          fmt(m(n, 'errors'))
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
      )
    )
  }

  const ratios = []
  const addRatio = (a, b) => {
    if (!names.includes(a) || !names.includes(b)) return
    ratios.push({
      row: a,
      vs: b,
      rps_ratio: m(b, 'rps') ? m(a, 'rps') / m(b, 'rps') : null,
      cpu_ratio: m(b, 'server_cpu_us_per_req') ? m(a, 'server_cpu_us_per_req') / m(b, 'server_cpu_us_per_req') : null
    })
  }
  for (const n of names) if (n.startsWith('napi-h3')) addRatio(n, 'rust')
  addRatio('napi-h3 (bun)', 'Bun.serve h3')
  addRatio('Bun.serve h3', 'rust')
  if (ratios.length) {
    console.log('\nRatios (req/s: higher is better; server CPU per request: lower is better)\n')
    console.log(
      table(
        ['row', 'vs', 'req/s ratio', 'CPU/req ratio'],
        ratios.map((r) => [r.row, r.vs, ratio(r.rps_ratio, 1), ratio(r.cpu_ratio, 1)]),
        ['l', 'l', 'r', 'r']
      )
    )
  }

  const lNames = Object.keys(latency).filter((n) => latency[n].runs.length)
  if (lNames.length) {
    console.log(`\nLatency at half the rust server's maximum rate: open loop, ${fmt(latency[lNames[0]].target_rps)} req/s, medians over ${CFG.latencyRounds} rounds\n`)
    const lm = (n, k) => latency[n].median[k]
    console.log(
      table(
        ['target', 'req/s', 'p50 µs', 'p99 µs', 'p99 vs rust', `≤${GOAL_P99_RATIO}x`, 'server CPU µs/req', 'other cores'],
        lNames.map((n) => [
          n,
          fmt(lm(n, 'rps')),
          fmt(lm(n, 'p50_us')),
          fmt(lm(n, 'p99_us')),
          n === 'rust' ? 'ref' : ratio(latency[n].p99_ratio, 1),
          latency[n].p99_goal === null ? '' : latency[n].p99_goal ? 'PASS' : 'MISS',
          fmt(lm(n, 'server_cpu_us_per_req'), 2),
          fmt(lm(n, 'other_cores'), 2)
        ]),
        ['l', 'r', 'r', 'r', 'r', 'l', 'r', 'r']
      )
    )
  }

  const cNames = Object.keys(client).filter((n) => client[n].runs.length)
  const cm = (n, k) => client[n].median[k]
  if (Object.keys(client).length) {
    console.log(
      `\nHTTP/3 client request rate: JS fetch loops against h3-hello (GET / -> "hello"), ${CFG.clientConcurrency} concurrent, ` +
        `medians over ${CFG.rounds} rounds of ${CFG.duration} s\n`
    )
    console.log(
      table(
        ['client', 'runtime', 'req/s', 'p50 ms', 'p99 ms', 'client CPU µs/req', 'client cores', 'server CPU µs/req', 'server cores', 'other cores', 'errors'],
        cNames.map((n) => [
          n,
          client[n].runs[0].runtime || '-',
          fmt(cm(n, 'rps')),
          fmt(cm(n, 'p50_ms'), 2),
          fmt(cm(n, 'p99_ms'), 2),
          fmt(cm(n, 'client_cpu_us_per_req'), 1),
          fmt(cm(n, 'client_cores'), 2),
          fmt(cm(n, 'server_cpu_us_per_req'), 2),
          fmt(cm(n, 'server_cores'), 2),
          fmt(cm(n, 'other_cores'), 2),
          fmt(cm(n, 'errors'))
        ]),
        ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
      )
    )
    if (clientRatios.length) {
      console.log('\nClient ratios vs Bun fetch(http3) (req/s: higher is better; CPU per request: lower is better)\n')
      console.log(
        table(
          ['row', 'vs', 'req/s ratio', 'client CPU/req ratio', 'server CPU/req ratio'],
          clientRatios.map((r) => [r.row, r.vs, ratio(r.rps_ratio, 1), ratio(r.client_cpu_ratio, 1), ratio(r.server_cpu_ratio, 1)]),
          ['l', 'l', 'r', 'r', 'r']
        )
      )
    }
    const noisyC = cNames.filter((n) => (cm(n, 'other_cores') || 0) > 0.2)
    if (noisyC.length) console.log(`note: other processes used > 0.2 cores during: ${noisyC.join(', ')}; treat those numbers with care.`)
  }

  if (Object.keys(throughput).length) {
    console.log(
      `\nThroughput: one ${fmt(CFG.bytes / 1048576)} MiB transfer on one connection (h3-transfer, SHA-256 checked), ` +
        `fresh server per transfer, medians over ${CFG.throughputRounds} rounds\n`
    )
    const pf = (b) => (b === null || b === undefined ? '-' : b ? 'PASS' : 'MISS')
    const rows = []
    for (const dir of DIRS) {
      for (const [n, v] of Object.entries(throughput)) {
        const md = v[`${dir}_median`]
        rows.push([
          n,
          dir,
          fmt(md.mb_per_s, 1),
          n === 'rust' ? 'ref' : ratio(md.ratio_vs_rust, 1),
          n === 'rust' ? '' : pf(md.rate_goal),
          fmt(md.server_cpu_ms_per_mib, 2),
          fmt(md.client_cpu_ms_per_mib, 2),
          fmt(md.rss_before_mib, 1),
          fmt(md.rss_peak_mib, 1),
          fmt(md.rss_growth_mib, 1),
          pf(md.rss_goal),
          fmt(md.other_cores, 2),
          `${md.rounds}/${CFG.throughputRounds}`
        ])
      }
    }
    console.log(
      table(
        ['target', 'direction', 'MB/s', 'vs rust', `≥${GOAL_RATIO}x`, 'server CPU ms/MiB', 'client CPU ms/MiB', 'RSS before MiB', 'peak RSS MiB', 'RSS growth MiB', `≤${GOAL_RSS_GROWTH_MIB} MiB`, 'other cores', 'ok'],
        rows,
        ['l', 'l', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'r']
      )
    )
    const napiRows = []
    for (const [n, v] of Object.entries(throughput)) if (n !== 'rust') for (const dir of DIRS) napiRows.push(v[`${dir}_median`])
    const pass = napiRows.filter((md) => md.rate_goal && md.rss_goal).length
    console.log(
      `\nIssue target (napi-h3 ≥ ${GOAL_RATIO}x the rust MB/s and server RSS growth ≤ ${GOAL_RSS_GROWTH_MIB} MiB): ` +
        `${pass} of ${napiRows.length} napi-h3 rows meet both` +
        (throughput.rust ? '' : ' (no rust reference row: ratios unavailable)')
    )
    const noisyT = []
    for (const [n, v] of Object.entries(throughput)) for (const dir of DIRS) if ((v[`${dir}_median`].other_cores || 0) > 0.2) noisyT.push(`${n} ${dir}`)
    if (noisyT.length) console.log(`note: other processes used > 0.2 cores during: ${noisyT.join(', ')}; treat those MB/s with care.`)
  }

  const dNames = Object.keys(datagram).filter((n) => datagram[n].runs.length)
  if (Object.keys(datagram).length) {
    const dm = (n, k) => datagram[n].median[k]
    console.log(
      `\nQUIC datagram echo: ${CFG.dgramConnections} connection(s) x ${CFG.dgramWindow} x ${CFG.dgramSize}-byte datagrams in flight (dgram-load), ` +
        `medians over ${CFG.rounds} rounds of ${CFG.dgramDuration} s; \`wt\` rows: one WebTransport session's datagrams, ${CFG.dgramWindow} in flight (wt-transfer --datagrams; no RTT), vs \`wt rust\`\n`
    )
    console.log(
      table(
        ['target', 'datagrams/s', 'vs rust', 'loss %', 'rtt p50 µs', 'rtt p99 µs', 'server CPU µs/dgram', 'CPU vs rust', 'server cores', 'load-gen µs/dgram', 'other cores', 'peak RSS MiB', 'ok'],
        dNames.map((n) => {
          const rr = datagramRatios.find((x) => x.row === n)
          return [
            n,
            fmt(dm(n, 'eps')),
            n === 'rust' || n === 'wt rust' ? 'ref' : rr ? ratio(rr.eps_ratio, 1) : '-',
            fmt(dm(n, 'loss_pct'), 2),
            fmt(dm(n, 'p50_us')),
            fmt(dm(n, 'p99_us')),
            fmt(dm(n, 'server_cpu_us_per_dgram'), 2),
            n === 'rust' || n === 'wt rust' ? 'ref' : rr ? ratio(rr.cpu_ratio, 1) : '-',
            fmt(dm(n, 'server_cores'), 2),
            fmt(dm(n, 'client_cpu_us_per_dgram'), 2),
            fmt(dm(n, 'other_cores'), 2),
            fmt(dm(n, 'server_peak_rss_mib'), 1),
            `${datagram[n].runs.length}/${CFG.rounds}`
          ]
        }),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
      )
    )
    const corrupt = dNames.filter((n) => datagram[n].median.corrupt > 0)
    if (corrupt.length) console.log(`WARNING: echoes that differ from what was sent: ${corrupt.map((n) => `${n} (${datagram[n].median.corrupt})`).join(', ')}`)
    const noisyD = dNames.filter((n) => (dm(n, 'other_cores') || 0) > 0.2)
    if (noisyD.length) console.log(`note: other processes used > 0.2 cores during: ${noisyD.join(', ')}; treat those numbers with care.`)
  }

  const wNames = Object.keys(webtransport).filter((n) => webtransport[n].runs.length)
  if (Object.keys(webtransport).length) {
    const wm = (n, k) => webtransport[n].median[k]
    console.log(
      `\nWebTransport echo: ${fmt(CFG.wtBytes / 1048576)} MiB out and back through one bidirectional stream (wt-transfer, SHA-256 checked), ` +
        `fresh server per run, medians over ${CFG.rounds} rounds\n`
    )
    console.log(
      table(
        ['target', 'MB/s', 'vs rust', 'server CPU ms/MiB', 'CPU vs rust', 'server cores', 'client cores', 'other cores', 'setup ms', 'peak RSS MiB', 'ok'],
        wNames.map((n) => {
          const rr = webtransportRatios.find((x) => x.row === n)
          return [
            n,
            fmt(wm(n, 'mb_per_s'), 1),
            n === 'rust' ? 'ref' : rr ? ratio(rr.mb_per_s_ratio, 1) : '-',
            fmt(wm(n, 'server_cpu_ms_per_mib'), 2),
            n === 'rust' ? 'ref' : rr ? ratio(rr.cpu_ratio, 1) : '-',
            fmt(wm(n, 'server_cores'), 2),
            fmt(wm(n, 'client_cores'), 2),
            fmt(wm(n, 'other_cores'), 2),
            fmt(wm(n, 'setup_ms'), 1),
            fmt(wm(n, 'server_peak_rss_mib'), 1),
            `${webtransport[n].runs.length}/${CFG.rounds}`
          ]
        }),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
      )
    )
    const noisyW = wNames.filter((n) => (wm(n, 'other_cores') || 0) > 0.2)
    if (noisyW.length) console.log(`note: other processes used > 0.2 cores during: ${noisyW.join(', ')}; treat those MB/s with care.`)
  }

  if (Object.keys(skipped).length) {
    console.log('\nSkipped:')
    for (const [n, why] of Object.entries(skipped)) console.log(`  ${n}: ${why}`)
  }
  const noisy = names.filter((n) => (m(n, 'other_cores') || 0) > 0.2)
  if (noisy.length) console.log(`\nnote: other processes used > 0.2 cores during: ${noisy.join(', ')}; treat those numbers with care.`)

  fs.mkdirSync(RESULTS_DIR, { recursive: true })
  const out = {
    meta: { ...meta, elapsed_s: (Date.now() - t0) / 1000, throughput_expected_sha256: expected, webtransport_expected_sha256: wtExpected },
    rate,
    ratios,
    latency,
    client,
    client_ratios: clientRatios,
    throughput,
    datagram,
    datagram_ratios: datagramRatios,
    webtransport,
    webtransport_ratios: webtransportRatios,
    skipped
  }
  fs.writeFileSync(RESULTS_FILE, JSON.stringify(out, null, 2) + '\n')
  console.log(`\nbench: raw results in ${path.relative(ROOT, RESULTS_FILE)} (${((Date.now() - t0) / 1000).toFixed(0)} s total)`)
}

main().then(
  () => {
    killAll()
    process.exit(0)
  },
  (err) => {
    console.error('bench: fatal:', err && err.stack ? err.stack : err)
    killAll()
    process.exit(1)
  }
)
