// 0-RTT (allow0RTT): a resumed client sends safe requests before the handshake completes; the
// server serves them flagged (server.isEarlyData) and answers unsafe ones 425 Too Early
// (RFC 8470 §5.2) without calling JS. Peers: our own client and aioquic (session ticket reuse).
// quinn flags a stream as 0-RTT when it is accepted before the handshake completes, so the
// early cases run through a relay adding 100 ms each way: the client's Finished lands 200 ms
// after its early request, however slowly a loaded machine schedules the server.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { serve, aioquic, root, waitFor } from './helpers.mjs'
import { startRelay } from './relay.mjs'

const require = createRequire(import.meta.url)
const { createH3Client } = require(root)

/** A server recording, per request, its method, path and whether it arrived early. */
function recordingServer (options) {
  const seen = []
  const server = serve({
    ...options,
    fetch (req, srv) {
      seen.push({ method: req.method, path: new URL(req.url).pathname, early: srv.isEarlyData(req) })
      return new Response(`${req.method} ok`)
    }
  })
  return { server, seen }
}

/** The server behind a relay delaying each packet 100 ms. */
const slowPath = (server) => startRelay(server.port, { delayMs: 100 })

/** aioquic: get a ticket, then resume and send `method /early` right away. */
async function resumed (port, method, body) {
  const out = await aioquic(port, ['resume', '--method', method, '--path', '/early', ...(body ? ['--body', body] : [])])
  assert.equal(out.error, undefined, JSON.stringify(out))
  assert.equal(out.ticket, true, 'aioquic got a session ticket')
  assert.equal(out.session_resumed, true, 'the session resumed')
  return out
}

/** A client whose connections close after 300 ms idle, so the next request resumes. */
function resumingClient (extra = {}) {
  return createH3Client({ allow0RTT: true, idleTimeout: 1.5, tls: { rejectUnauthorized: false }, ...extra })
}

async function text (client, url, init) {
  const res = await client.fetch(url, init)
  return `${res.status} ${await res.text()}`
}

describe('0-RTT with our client', { timeout: 120000 }, () => {
  test('a resumed connection sends GET in 0-RTT; POST waits for the handshake', async () => {
    const { server, seen } = recordingServer({ allow0RTT: true })
    const client = resumingClient()
    let relay
    try {
      relay = await slowPath(server)
      const url = `https://127.0.0.1:${relay.port}/early`
      assert.equal(await text(client, url), '200 GET ok')
      assert.deepEqual(client.earlyData, { attempted: 0, accepted: 0, rejected: 0 })
      await waitFor(() => client.connectionCount === 0)
      const [get, post] = await Promise.all([text(client, url), text(client, url, { method: 'POST', body: 'x' })])
      assert.deepEqual([get, post], ['200 GET ok', '200 POST ok'])
      assert.deepEqual(seen.map((r) => [r.method, r.early]), [['GET', false], ['GET', true], ['POST', false]])
      assert.deepEqual(client.earlyData, { attempted: 1, accepted: 1, rejected: 0 })
      assert.equal(client.connectionsOpened, 2)
      assert.equal(server.getStats().earlyRequests, 1)
    } finally {
      await client.close()
      await relay?.close()
      await server.stop()
    }
  })

  test('without allow0RTT on the server the ticket allows no early data', async () => {
    const { server, seen } = recordingServer({})
    const client = resumingClient()
    const url = `https://127.0.0.1:${server.port}/`
    try {
      assert.equal(await text(client, url), '200 GET ok')
      await waitFor(() => client.connectionCount === 0)
      assert.equal(await text(client, url), '200 GET ok')
      assert.deepEqual(seen.map((r) => r.early), [false, false])
      assert.deepEqual(client.earlyData, { attempted: 0, accepted: 0, rejected: 0 })
      assert.equal(server.getStats().earlyRequests, 0)
    } finally {
      await client.close()
      await server.stop()
    }
  })

  test('a restarted server refuses the early data: the connection is replaced', async () => {
    const first = recordingServer({ allow0RTT: true })
    const port = first.server.port
    const client = resumingClient()
    const url = `https://127.0.0.1:${port}/`
    let second
    try {
      assert.equal(await text(client, url), '200 GET ok')
      await waitFor(() => client.connectionCount === 0)
      await first.server.stop()
      // Same port, new process state: the client's tickets name a session it never saw.
      second = recordingServer({ allow0RTT: true, port })
      // Not safe: waits for the handshake, sees the refusal and goes on a fresh connection.
      assert.equal(await text(client, url, { method: 'POST', body: 'x' }), '200 POST ok')
      assert.deepEqual(client.earlyData, { attempted: 1, accepted: 0, rejected: 1 })
      // The stale tickets were dropped: the next connection makes no 0-RTT attempt.
      assert.equal(await text(client, url), '200 GET ok')
      assert.deepEqual(second.seen.map((r) => [r.method, r.early]), [['POST', false], ['GET', false]])
      assert.equal(client.connectionsOpened, 3)
    } finally {
      await client.close()
      await second?.server.stop()
    }
  })

  test('allow0RTT must be a boolean', () => {
    assert.throws(() => serve({ allow0RTT: 'yes', fetch: () => new Response('') }), { code: 'ERR_H3_INVALID_ARG' })
    assert.throws(() => createH3Client({ allow0RTT: 1 }), { code: 'ERR_H3_INVALID_ARG' })
  })
})

describe('0-RTT with aioquic', { timeout: 120000 }, () => {
  test('GET in 0-RTT is served flagged; POST in 0-RTT gets 425 without the handler', async () => {
    const { server, seen } = recordingServer({ allow0RTT: true })
    let relay
    try {
      relay = await slowPath(server)
      const get = await resumed(relay.port, 'GET')
      assert.equal(get.ticket_allows_early_data, true)
      assert.equal(get.early_data_accepted, true)
      assert.equal(get.result.status, 200)
      assert.equal(get.result.body_text, 'GET ok')
      const post = await resumed(relay.port, 'POST', 'pay me')
      assert.equal(post.early_data_accepted, true)
      assert.equal(post.result.status, 425)
      assert.equal(post.result.body_text, 'Too Early')
      // Each run first GETs / on a full handshake; only the resumed GET was early, and the
      // POST never reached the handler.
      assert.deepEqual(seen.filter((r) => r.path === '/early'), [{ method: 'GET', path: '/early', early: true }])
      assert.deepEqual(seen.filter((r) => r.path === '/').map((r) => r.early), [false, false])
      const stats = server.getStats()
      assert.equal(stats.earlyRequests, 2)
      assert.equal(stats.requestsRejected, 1)
    } finally {
      await relay?.close()
      await server.stop()
    }
  })

  test('without allow0RTT nothing is early: the ticket allows none, POST is served', async () => {
    const { server, seen } = recordingServer({})
    try {
      for (const method of ['GET', 'POST']) {
        const out = await resumed(server.port, method, method === 'POST' ? 'x' : undefined)
        assert.equal(out.ticket_allows_early_data, false)
        assert.equal(out.early_data_accepted, false)
        assert.equal(out.result.status, 200, method)
      }
      assert.ok(seen.every((r) => r.early === false))
      assert.deepEqual(seen.filter((r) => r.path === '/early').map((r) => r.method), ['GET', 'POST'])
      assert.equal(server.getStats().earlyRequests, 0)
    } finally {
      await server.stop()
    }
  })
})
