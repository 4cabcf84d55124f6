import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { serve, aioquic, request, waitFor, root } from './helpers.mjs'

const { createH3Client } = createRequire(import.meta.url)(root)

describe('concurrency and stats', () => {
  let server
  before(() => {
    server = serve({
      fetch: async (req) => {
        const u = new URL(req.url)
        if (u.pathname === '/slow') await new Promise((resolve) => setTimeout(resolve, 50))
        return new Response(`ok ${u.searchParams.get('i') ?? ''}`)
      }
    })
  })
  after(() => server.stop(true))

  test('50 concurrent requests on one connection', async () => {
    const out = await aioquic(server, ['request', '--path', '/slow', '--repeat', '50', '--concurrency', '50', '--connections', '1'])
    assert.equal(out.results.length, 50)
    assert.ok(out.results.every((r) => r.status === 200 && r.body_text.startsWith('ok')))
  })
  test('concurrent requests across 4 connections, stats add up', async () => {
    const s0 = server.getStats()
    const out = await aioquic(server, ['request', '--path', '/', '--repeat', '40', '--concurrency', '10', '--connections', '4'])
    assert.equal(out.results.filter((r) => r.status === 200).length, 40)
    const s1 = await waitFor(() => { const s = server.getStats(); return s.connectionsActive === 0 && s }, { timeout: 5000 })
    assert.equal(s1.requestsTotal - s0.requestsTotal, 40)
    assert.equal(s1.connectionsTotal - s0.connectionsTotal, 4)
    assert.equal(s1.requestsActive, 0)
    assert.ok(s1.bytesReceived > s0.bytesReceived)
    assert.ok(s1.bytesSent > s0.bytesSent)
    assert.ok(s1.uptimeMs >= s0.uptimeMs)
    for (const k of ['datagramsReceived', 'datagramsSent', 'datagramsDropped', 'webtransportSessionsActive']) assert.equal(typeof s1[k], 'number')
  })
  test('more streams than maxConcurrentStreams are flow-controlled, all succeed', async () => {
    const out = await aioquic(server, ['many-streams', '--count', '250'])
    assert.equal(out.ok, 250)
    assert.equal(out.peer_initial_max_streams_bidi, 100)
  })
  test('a burst of requests with many headers and params: every head reaches its handler whole, every response head its client', async () => {
    // Heads reach JS as the arguments of one call, at most a few thousand per call: a burst of
    // 60-header requests spans several calls, and no head may be lost, cut or shifted. The
    // responses go back the same way (70 headers each, so one tick's answers span several calls).
    const s = serve({
      routes: [{
        method: 'GET',
        pattern: '/item/:a/:b',
        fetch: (req) => {
          const headers = {}
          for (let k = 0; k < 70; k++) headers[`x-r-${k}`] = `${req.params.a}-${k}`
          return Response.json({ a: req.params.a, b: req.params.b, h0: req.headers.get('x-h-0'), h59: req.headers.get('x-h-59'), n: [...req.headers.keys()].filter((k) => k.startsWith('x-h-')).length }, { headers })
        }
      }]
    })
    const client = createH3Client({ tls: { rejectUnauthorized: false } })
    try {
      const one = async (i) => {
        const headers = {}
        for (let k = 0; k < 60; k++) headers[`x-h-${k}`] = `${i}-${k}`
        const res = await client.fetch(`https://127.0.0.1:${s.port}/item/${i}/b${i}`, { headers })
        const back = [...res.headers].filter(([k]) => k.startsWith('x-r-'))
        assert.equal(back.length, 70)
        for (const [k, v] of back) assert.equal(v, `${i}-${k.slice(4)}`)
        return res.json()
      }
      const out = await Promise.all(Array.from({ length: 300 }, (_, i) => one(i)))
      out.forEach((r, i) => assert.deepEqual(r, { a: String(i), b: `b${i}`, h0: `${i}-0`, h59: `${i}-59`, n: 60 }))
    } finally {
      await client.close()
      await s.stop(true)
    }
  })
  test('pendingRequests counts in-flight requests', async () => {
    let release
    const gate = new Promise((resolve) => { release = resolve })
    const s = serve({ fetch: async () => { await gate; return new Response('done') } })
    try {
      const p = aioquic(s, ['request', '--path', '/', '--repeat', '3', '--concurrency', '3'])
      await waitFor(() => s.pendingRequests === 3)
      release()
      const out = await p
      assert.equal(out.results.filter((r) => r.status === 200).length, 3)
      await waitFor(() => s.pendingRequests === 0)
    } finally { await s.stop(true) }
  })
  test('idle connections are counted until they close', async () => {
    const r = await request(server, { path: '/' })
    assert.equal(r.status, 200)
    await waitFor(() => server.getStats().connectionsActive === 0)
  })
})
