'use strict'
// `npm test`: cargo test, then every __test__ spec under Node (this Node, and Node 22 and 24 from
// the node22/node24 dev dependencies) and under Bun, the install test, and a subset under Deno.
// Sets up what the specs need first (the addon, the native test tools, the aioquic venv). Prints a
// closing "N passed, N failed, N skipped" line.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const only = process.env.H3_TEST_RUNTIMES ? process.env.H3_TEST_RUNTIMES.split(',') : null
const fileFilter = process.env.H3_TEST_FILTER ? new RegExp(process.env.H3_TEST_FILTER) : null
const timeoutMs = Number(process.env.H3_TEST_TIMEOUT_MS || 20 * 60 * 1000)

const built = spawnSync(process.execPath, [path.join(__dirname, 'ensure-built.js')], { cwd: root, stdio: 'inherit' })
if (built.status !== 0) process.exit(1)

// The native transfer client (bench/, quinn + h3 client) drives the large streaming tests; wt-peer
// (__test__/peer-wt/, shiguredo_http3 over quinn) is the independent draft-15 WebTransport peer.
// One build, so both share quinn/tokio/rustls.
const tool = spawnSync('cargo', ['build', '--release', '--quiet', '-p', 'napi-h3-bench', '--bin', 'h3-transfer', '--bin', 'udp-relay', '-p', 'napi-h3-wt-peer', '--bin', 'wt-peer'], { cwd: root, stdio: 'inherit' })
if (tool.status !== 0) process.exit(1)

// aioquic, the independent HTTP/3 peer, and pywebtransport, the independent newer-draft
// WebTransport peer, live in a venv pinned by __test__/py/requirements.txt.
function ensureVenv () {
  if (process.env.H3_PYTHON) return
  const py = path.join(root, '.venv', 'bin', 'python')
  const reqs = path.join(root, '__test__', 'py', 'requirements.txt')
  const ready = fs.existsSync(py) && spawnSync(py, ['-c', 'import aioquic, pywebtransport'], { stdio: 'ignore' }).status === 0
  if (ready) return
  console.log('napi-h3: creating the aioquic venv (.venv) for the interop tests…')
  const steps = [['python3', ['-m', 'venv', path.join(root, '.venv')]], [py, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', '-r', reqs]]]
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
    if (r.status !== 0) {
      console.error(`napi-h3: \`${path.basename(cmd)} ${args.join(' ')}\` failed; install python3 with venv and pip (Debian: python3-venv), or point H3_PYTHON at a Python with aioquic ${reqs}`)
      process.exit(1)
    }
  }
}
ensureVenv()

const specs = fs.readdirSync(path.join(root, '__test__'))
  .filter((f) => f.endsWith('.spec.mjs') && (!fileFilter || fileFilter.test(f)))
  .sort()
  .map((f) => path.join('__test__', f))

const results = []
function run (name, cmd, args, parse, env = {}) {
  if (only && !only.includes(name)) return
  console.log(`\n=== ${name}: ${[path.basename(cmd), ...args].join(' ')}`)
  const t0 = Date.now()
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', ...env } })
  const out = (r.stdout || '') + (r.stderr || '')
  process.stdout.write(out)
  let { passed, failed, skipped = 0 } = parse(out)
  if (r.status !== 0 && failed === 0) failed = 1 // crashed, timed out or failed to start
  if (r.error) console.log(`${name}: ${r.error.message}`)
  results.push({ name, passed, failed, skipped, seconds: ((Date.now() - t0) / 1000).toFixed(1) })
}

const num = (re, s) => { let n = 0; for (const m of s.matchAll(re)) n += Number(m[1]); return n }

run('cargo', 'cargo', ['test', '--lib', '--quiet'], (o) => ({
  passed: num(/test result: \w+\. (\d+) passed/g, o),
  failed: num(/test result: \w+\. \d+ passed; (\d+) failed/g, o)
}))

const nodeParse = (o) => ({ passed: num(/^[#ℹ] pass (\d+)/gm, o), failed: num(/^[#ℹ] fail (\d+)/gm, o), skipped: num(/^[#ℹ] skipped (\d+)/gm, o) })
// `npm test` puts node_modules/.bin first on PATH, and the node24 dev dependency installs a
// `node` there; the machine's own Node is the first `node` on PATH outside node_modules.
function systemNode () {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir || dir.includes('node_modules')) continue
    const bin = path.join(dir, 'node')
    try { fs.accessSync(bin, fs.constants.X_OK); return bin } catch {}
  }
  return process.execPath
}
const nodeVersion = (bin) => spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim()
// Node 22 (maintenance LTS) and Node 24 come from the node22/node24 dev dependencies (npm's `node`
// package). Node 20 is past end of life (April 2026) and stays while it costs little.
const nodes = [['node', systemNode()]]
for (const name of ['node22', 'node24']) {
  const bin = path.join(root, 'node_modules', name, 'bin', 'node')
  if (fs.existsSync(bin)) nodes.push([name, bin])
  else console.log(`${name} not installed (npm install adds it as a dev dependency); skipping`)
}
// The lossy-path spec moves 16 MiB each way per runtime; the first Node run moves the full 64 MiB
// (about two minutes a direction at 2 % loss: congestion control, not CPU, sets the pace).
const lossyBytes = { H3_LOSSY_BYTES: process.env.H3_LOSSY_BYTES || String(64 * 1024 * 1024) }
nodes.forEach(([name, bin], i) => {
  console.log(`${name}: ${bin} ${nodeVersion(bin)}`)
  run(name, bin, ['--test', '--test-reporter=spec', '--test-concurrency=1', ...specs], nodeParse, i === 0 ? lossyBytes : {})
})
const bun = path.join(root, 'node_modules', '.bin', 'bun')
run('bun', bun, ['test', '--timeout', '240000', ...specs.map((s) => './' + s)], (o) => ({
  passed: num(/^\s*(\d+) pass$/gm, o),
  failed: num(/^\s*(\d+) fail$/gm, o),
  skipped: num(/^\s*(\d+) skip$/gm, o)
}))

// The install test: the packed package installed as a user gets it (npm and bun, no Rust on PATH),
// run under Node 20, 22, 24, Bun and Deno. Once, under the machine's Node.
run('install', systemNode(), ['--test', '--test-reporter=spec', path.join('scripts', 'dist', 'install.test.mjs')], nodeParse)

// Deno 2 (the deno dev dependency) runs a subset through its node:test compatibility: server
// basics, the client, datagrams and WebTransport. TAP output: a leaf test is an `ok` line not
// closing a list of subtests (a `1..N` plan line just above it).
const denoSpecs = ['server-routes', 'client', 'datagram', 'webtransport']
  .map((n) => path.join('__test__', `${n}.spec.mjs`))
  .filter((f) => !fileFilter || fileFilter.test(path.basename(f)))
const deno = path.join(root, 'node_modules', 'deno', 'deno')
function tapParse (o) {
  let passed = 0; let failed = 0; let skipped = 0; let prev = ''
  for (const line of o.split('\n')) {
    const m = /^\s*(not )?ok \d+ - .*?( # (SKIP|TODO).*)?$/.exec(line)
    if (m && !/^\s+1\.\.\d+$/.test(prev)) {
      if (m[2]) skipped++
      else if (m[1]) failed++
      else passed++
    }
    if (line.trim() !== '') prev = line
  }
  return { passed, failed, skipped }
}
if (!fs.existsSync(deno)) console.log('deno not installed (npm install adds it as a dev dependency); skipping')
else if (denoSpecs.length > 0) run('deno', deno, ['test', '-A', '--no-check', '--reporter=tap', ...denoSpecs], tapParse)

console.log('\n=== summary')
for (const r of results) console.log(`${r.name.padEnd(8)} ${String(r.passed).padStart(4)} passed ${String(r.failed).padStart(3)} failed ${String(r.skipped).padStart(3)} skipped  (${r.seconds}s)`)
const total = (k) => results.reduce((a, r) => a + r[k], 0)
const [passed, failed, skipped] = [total('passed'), total('failed'), total('skipped')]
if (skipped > 0) console.log(`\n!!! ${skipped} tests SKIPPED (see the reasons above: e.g. no Chromium or Firefox: apt-get install chromium firefox-esr, or set H3_CHROMIUM / H3_FIREFOX)`)
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed === 0 && passed > 0 ? 0 : 1)
