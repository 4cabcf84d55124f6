'use strict'
// `npm run fuzz`: runs every cargo-fuzz target in fuzz/ (nightly toolchain, cargo-fuzz) one
// after the other for FUZZ_SECONDS each (default 120), prints each target's executions and
// coverage, then a summary; exits non-zero when a target crashed (a panic is a failed property:
// see src/fuzz_checks.rs) or could not run. See fuzz/README.md.
//
//   FUZZ_SECONDS=300 npm run fuzz            longer runs
//   FUZZ_TARGETS=capsule,varint npm run fuzz  some targets only
//   FUZZ_SANITIZER=none npm run fuzz          ~2x the executions, without AddressSanitizer
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const fuzzDir = path.join(__dirname, '..', 'fuzz')
const seconds = Number(process.env.FUZZ_SECONDS || 120)
const sanitizer = process.env.FUZZ_SANITIZER || 'address'
const rssLimitMb = Number(process.env.FUZZ_RSS_LIMIT_MB || 1024)
// Per input: far above what any check allocates (a few KiB), so a hit means unbounded buffering.
const mallocLimitMb = Number(process.env.FUZZ_MALLOC_LIMIT_MB || 64)
// Inputs just long enough to reach every branch: 16-byte headers, 1028-byte capsules.
const maxLen = { varint: 32, wt_stream_header: 64, datagram_prefix: 64, frame_guard: 4096, capsule: 4096, qpack_fields: 1024, request_rules: 2048 }
const defaultMaxLen = 4096

const cargo = (args, opts = {}) => spawnSync('cargo', ['+nightly', 'fuzz', ...args], {
  cwd: fuzzDir, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts
})

const listed = cargo(['list'])
if (listed.status !== 0) {
  console.error(listed.stderr || listed.error?.message)
  console.error('cargo-fuzz and a nightly toolchain are needed: rustup toolchain install nightly && cargo install cargo-fuzz')
  process.exit(1)
}
let targets = listed.stdout.split('\n').map((s) => s.trim()).filter(Boolean)
if (process.env.FUZZ_TARGETS) {
  const want = process.env.FUZZ_TARGETS.split(',')
  const unknown = want.filter((t) => !targets.includes(t))
  if (unknown.length) { console.error(`unknown fuzz targets: ${unknown.join(', ')} (have ${targets.join(', ')})`); process.exit(1) }
  targets = want
}

const common = ['--sanitizer', sanitizer]
console.log(`=== building ${targets.length} fuzz targets (sanitizer ${sanitizer}, debug assertions on)`)
const built = cargo(['build', ...common], { stdio: 'inherit' })
if (built.status !== 0) process.exit(1)

const results = []
for (const t of targets) {
  const corpus = path.join(fuzzDir, 'corpus', t)
  const seeds = path.join(fuzzDir, 'seeds', t)
  fs.mkdirSync(corpus, { recursive: true })
  const dirs = [corpus, ...(fs.existsSync(seeds) ? [seeds] : [])]
  const flags = [
    `-max_total_time=${seconds}`,
    `-max_len=${maxLen[t] || defaultMaxLen}`,
    `-rss_limit_mb=${rssLimitMb}`,
    `-malloc_limit_mb=${mallocLimitMb}`,
    '-print_final_stats=1'
  ]
  console.log(`\n=== ${t}: ${seconds}s, ${flags.slice(1).join(' ')}`)
  const t0 = Date.now()
  const r = cargo(['run', ...common, t, ...dirs, '--', ...flags], { timeout: (seconds + 300) * 1000 })
  const out = (r.stdout || '') + (r.stderr || '')
  const last = (re) => { let m = null; for (const x of out.matchAll(re)) m = x; return m }
  const execs = Number(last(/stat::number_of_executed_units:\s*(\d+)/g)?.[1] ?? last(/Done (\d+) runs/g)?.[1] ?? 0)
  const cov = last(/#\d+\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/g)
  const artifact = last(/Test unit written to (\S+)/g)?.[1]
  const ok = r.status === 0 && !artifact
  const res = {
    target: t,
    ok,
    execs,
    seconds: ((Date.now() - t0) / 1000).toFixed(0),
    cov: cov ? Number(cov[1]) : null,
    features: cov ? Number(cov[2]) : null,
    corpus: cov ? Number(cov[3]) : null,
    artifact
  }
  results.push(res)
  if (!ok) {
    // The failed property (the panic message) sits above the sanitizer's stack trace; the input
    // and the reproduction command are at the end.
    const lines = out.split('\n')
    const panic = lines.findIndex((l) => /panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer/.test(l))
    if (panic >= 0) console.log(lines.slice(panic, panic + 6).join('\n') + '\n...')
    console.log(lines.slice(-30).join('\n'))
    if (r.error) console.log(`${t}: ${r.error.message}`)
  }
  console.log(`${t}: ${ok ? 'ok' : 'CRASH'}, ${execs} executions in ${res.seconds}s` +
    (cov ? `, cov ${res.cov}, features ${res.features}, corpus ${res.corpus}` : '') +
    (artifact ? `, input saved to ${artifact}` : ''))
}

console.log('\n=== fuzz summary')
for (const r of results) {
  console.log(`${r.ok ? 'ok   ' : 'CRASH'} ${r.target.padEnd(18)} ${String(r.execs).padStart(12)} executions` +
    (r.cov !== null ? `  cov ${r.cov}  ft ${r.features}  corpus ${r.corpus}` : '') +
    (r.artifact ? `  reproduce: cd fuzz && cargo +nightly fuzz run ${r.target} ${path.relative(fuzzDir, path.resolve(fuzzDir, r.artifact))}` : ''))
}
const total = results.reduce((n, r) => n + r.execs, 0)
const crashed = results.filter((r) => !r.ok).length
console.log(`${results.length} targets, ${total} executions, ${crashed} crashed`)
process.exit(crashed ? 1 : 0)
