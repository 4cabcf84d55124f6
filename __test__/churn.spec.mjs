import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import { root, waitFor } from './helpers.mjs'

const { createH3Client } = createRequire(import.meta.url)(root)
const tls = { rejectUnauthorized: false }
const MiB = 1024 * 1024

/** Starts fixtures/churn-server.cjs in its own process (this runtime, GC exposed). */
function startServer () {
  const args = typeof Bun === 'undefined' ? ['--expose-gc'] : []
  // mimalloc returns freed pages to the OS at once, so RSS follows live memory rather than the
  // allocator's retention (which moves it by several MiB either way).
  const env = { ...process.env, MIMALLOC_PURGE_DELAY: '0' }
  const child = spawn(process.execPath, [...args, path.join(root, '__test__', 'fixtures', 'churn-server.cjs')], { stdio: ['pipe', 'pipe', 'inherit'], env })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      const m = /LISTENING (\d+)/.exec(out)
      if (m) resolve({ child, port: Number(m[1]) })
    })
    child.once('exit', (code) => reject(new Error(`churn server exited (${code})`)))
  })
}

/** Connect, one request, close: `n` times, `parallel` at once, each on a fresh client. */
async function shortConnections (url, n, parallel = 8) {
  let next = 0
  async function lane () {
    while (next < n) {
      next++
      const client = createH3Client({ tls })
      try {
        const r = await client.fetch(url)
        assert.equal(await r.text(), 'hello')
      } finally {
        await client.close()
      }
    }
  }
  await Promise.all(Array.from({ length: parallel }, lane))
}

/** `n` WebTransport sessions opened and closed, each waiting for its `closed`. */
async function sessions (client, url, n, parallel = 8) {
  let next = 0
  async function lane () {
    while (next < n) {
      next++
      const s = await client.webtransport(url)
      await s.ready
      s.close({ closeCode: 0, reason: 'churn' })
      await s.closed
    }
  }
  await Promise.all(Array.from({ length: parallel }, lane))
}

// Issue #10: connection and session churn must not grow memory or leak descriptors, and every
// gauge in getStats() returns to zero.
describe('churn', () => {
  let server
  let stats
  before(async () => {
    server = await startServer()
    const statsClient = createH3Client({ tls })
    stats = async () => {
      const r = await statsClient.fetch(`https://127.0.0.1:${server.port}/stats`)
      return r.json()
    }
    stats.close = () => statsClient.close()
  })
  after(async () => {
    await stats.close()
    server.child.stdin.end()
    await new Promise((resolve) => server.child.once('exit', resolve))
  })

  /** Waits for the gauges to fall back: only `connections` (the stats client's and any still
   * open client's) and the stats request itself may remain. */
  async function settled (connections) {
    return waitFor(async () => {
      const s = await stats()
      return s.stats.connectionsActive === connections && s.stats.requestsActive === 1 &&
        s.stats.webtransportSessionsActive === 0 && s.stats.webtransportStreamsActive === 0 && s
    }, { timeout: 10_000, interval: 100 })
  }

  /**
   * RSS moves by several MiB either way as the allocator takes and returns whole segments, so a
   * single before/after pair says little. Warm up in `rounds` steps and take the highest RSS
   * seen; then run the measured steps and take the lowest of the last two readings. A leak lifts
   * every later reading; allocator noise does not lift the lowest of them above the highest before.
   */
  async function churn (label, step, { warmup, measured, limit = 4 * MiB, connections = 1 }) {
    const before = []
    for (let i = 0; i < warmup; i++) { await step(); before.push(await settled(connections)) }
    const after = []
    for (let i = 0; i < measured; i++) { await step(); after.push(await settled(connections)) }
    const high = Math.max(...before.map((s) => s.rss))
    const low = Math.min(...after.slice(-2).map((s) => s.rss))
    const mib = (b) => (b / MiB).toFixed(1)
    console.log(`${label}: RSS warm-up ${before.map((s) => mib(s.rss)).join(' ')} MiB, measured ${after.map((s) => mib(s.rss)).join(' ')} MiB; fds ${before[0].fds} → ${after.at(-1).fds}`)
    assert.ok(low - high <= limit, `${label}: RSS grew ${mib(low - high)} MiB`)
    assert.equal(after.at(-1).fds, before[0].fds, `${label}: file descriptors`)
  }

  test('2,000 short connections: RSS within 4 MiB of warm-up, fds unchanged, gauges back to zero', async () => {
    const url = `https://127.0.0.1:${server.port}/`
    await churn('connections', () => shortConnections(url, 500), { warmup: 4, measured: 4 })
  })

  test('500 WebTransport sessions on one connection', async () => {
    const url = `https://127.0.0.1:${server.port}/wt`
    const client = createH3Client({ tls })
    try {
      await churn('sessions, one connection', () => sessions(client, url, 250), { warmup: 4, measured: 2, connections: 2 })
    } finally {
      await client.close()
    }
  })

  test('500 WebTransport sessions on as many connections', async () => {
    const url = `https://127.0.0.1:${server.port}/wt`
    const oneEach = async (n) => {
      let next = 0
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (next < n) {
          next++
          const client = createH3Client({ tls })
          try { await sessions(client, url, 1, 1) } finally { await client.close() }
        }
      }))
    }
    await churn('sessions, many connections', () => oneEach(250), { warmup: 2, measured: 2 })
  })
})
