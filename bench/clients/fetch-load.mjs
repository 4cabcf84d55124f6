// fetch-load: request-rate load generator for HTTP/3 *clients* written in JS, run by bench/run.js
// (client section) under Node, Node 24 or Bun.
//
//   node bench/clients/fetch-load.mjs --impl napi --url https://127.0.0.1:4433/ [--concurrency 64] [--duration 5] [--warmup 0]
//   bun  bench/clients/fetch-load.mjs --impl bun  --url https://127.0.0.1:4433/
//
// --impl napi: napi-h3's client, one `createH3Client({ tls: { rejectUnauthorized: false } })` (one
//              QUIC connection, reused by every request), closed at the end.
// --impl bun:  Bun's own `fetch(url, { protocol: 'http3', tls: { rejectUnauthorized: false } })`
//              (only under Bun).
//
// Runs `concurrency` loops, each doing `await (await fetch(url)).text()` back to back until the
// deadline. The first `warmup` seconds are not counted; then it prints MEASURE_START on stderr,
// counts the requests that complete inside the next `duration` seconds (a non-2xx status or a
// thrown error counts as an error), records each one's latency (fetch call → body read), and
// prints MEASURE_END on stderr (run.js samples the server's CPU at the two markers). After waiting
// for the in-flight requests (max 5 s) it prints one JSON line on stdout:
//   {impl, runtime, requests, errors, duration_s, rps, p50_ms, p99_ms, max_ms, cpu_ms_per_1k,
//    concurrency, first_error, connections_opened}
// cpu_ms_per_1k = this process's CPU time (process.cpuUsage(), user + system, all threads) during
// the measurement window, per 1000 requests (= µs per request).
// Exit status 0 when at least one request succeeded. Does not verify the server certificate.
import { createRequire } from 'node:module'

function parseArgs (argv) {
  const out = { impl: null, url: null, concurrency: 64, duration: 5, warmup: 0 }
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]
    const v = argv[i + 1]
    if (!k.startsWith('--') || v === undefined) usage(`bad argument ${JSON.stringify(k)}`)
    const key = k.slice(2)
    if (!(key in out)) usage(`unknown option ${k}`)
    out[key] = key === 'impl' || key === 'url' ? v : Number(v)
    i++
  }
  if (out.impl !== 'napi' && out.impl !== 'bun') usage('--impl must be napi or bun')
  if (!out.url) usage('--url is required')
  if (!(Number.isInteger(out.concurrency) && out.concurrency >= 1)) usage('--concurrency must be a positive integer')
  if (!(out.duration > 0)) usage('--duration must be > 0')
  if (!(out.warmup >= 0)) usage('--warmup must be >= 0')
  return out
}

function usage (msg) {
  console.error(`fetch-load: ${msg}\nusage: fetch-load.mjs --impl napi|bun --url URL [--concurrency 64] [--duration 5] [--warmup 0]`)
  process.exit(2)
}

const args = parseArgs(process.argv.slice(2))
const isBun = typeof globalThis.Bun !== 'undefined'
const runtime = isBun ? `bun ${globalThis.Bun.version}` : `node ${process.version}`

let doFetch
let client = null
if (args.impl === 'napi') {
  const { createH3Client } = createRequire(import.meta.url)('../..')
  client = createH3Client({ tls: { rejectUnauthorized: false } })
  doFetch = client.fetch
} else {
  if (!isBun) usage('--impl bun needs the Bun runtime')
  const init = { protocol: 'http3', tls: { rejectUnauthorized: false } }
  doFetch = (url) => fetch(url, init)
}

const now = () => performance.now()
const t0 = now()
const measureStart = t0 + args.warmup * 1000
const measureEnd = measureStart + args.duration * 1000

let requests = 0
let errors = 0
let firstError = null
let latencies = new Float64Array(1 << 16)
let cpuStart = null
let cpuEnd = null

function recordLatency (ms) {
  if (requests >= latencies.length) {
    const bigger = new Float64Array(latencies.length * 2)
    bigger.set(latencies)
    latencies = bigger
  }
  latencies[requests] = ms
}

// Exact marker timing: timers fire in the event loop, which the loops below yield to constantly.
const markStart = setTimeout(() => {
  cpuStart = process.cpuUsage()
  process.stderr.write('MEASURE_START\n')
}, Math.max(0, measureStart - now()))
const markEnd = setTimeout(() => {
  cpuEnd = process.cpuUsage()
  process.stderr.write('MEASURE_END\n')
}, Math.max(0, measureEnd - now()))

async function loop () {
  const url = args.url
  for (;;) {
    const start = now()
    if (start >= measureEnd) return
    let ok = false
    let err = null
    try {
      const res = await doFetch(url)
      await res.text()
      ok = res.status >= 200 && res.status < 300
      if (!ok) err = `status ${res.status}`
    } catch (e) {
      err = (e && (e.code ? `${e.code}: ` : '') + (e.message || e)) || String(e)
    }
    const end = now()
    if (end < measureStart || end > measureEnd) continue // warm-up, or finished after the window
    if (ok) {
      recordLatency(end - start)
      requests++
    } else {
      errors++
      if (firstError === null) firstError = String(err).slice(0, 300)
    }
  }
}

const loops = []
for (let i = 0; i < args.concurrency; i++) loops.push(loop())
// Let the in-flight requests finish (they are not counted), but do not wait forever.
let stuck = false
let giveUp
await Promise.race([
  Promise.all(loops),
  new Promise((resolve) => {
    giveUp = setTimeout(() => {
      stuck = true
      resolve()
    }, Math.max(0, measureEnd + 5000 - now()))
  })
])
clearTimeout(giveUp)
clearTimeout(markStart)
clearTimeout(markEnd)
if (!cpuEnd) {
  cpuEnd = process.cpuUsage()
  process.stderr.write('MEASURE_END\n')
}
if (!cpuStart) cpuStart = { user: 0, system: 0 }

const lat = latencies.subarray(0, requests).sort()
const pct = (p) => (requests ? lat[Math.min(requests - 1, Math.floor((p / 100) * requests))] : null)
const cpuUs = cpuEnd.user - cpuStart.user + (cpuEnd.system - cpuStart.system)
const round = (x, d = 3) => (x === null ? null : Number(x.toFixed(d)))
let connectionsOpened = null
if (client) {
  connectionsOpened = client.connectionsOpened
  try {
    await client.close()
  } catch {}
}
if (stuck && firstError === null) firstError = 'requests still in flight 5 s after the end'
console.log(
  JSON.stringify({
    impl: args.impl,
    runtime,
    requests,
    errors,
    duration_s: args.duration,
    rps: round(requests / args.duration, 1),
    p50_ms: round(pct(50)),
    p99_ms: round(pct(99)),
    max_ms: round(requests ? lat[requests - 1] : null),
    cpu_ms_per_1k: requests ? round(cpuUs / requests, 2) : null, // µs/request = ms per 1000 requests
    concurrency: args.concurrency,
    first_error: firstError,
    connections_opened: connectionsOpened
  })
)
process.exit(requests > 0 ? 0 : 1)
