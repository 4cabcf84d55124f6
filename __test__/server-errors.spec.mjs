import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { serve, request } from './helpers.mjs'

describe('handler failures', () => {
  let plain, withError
  const routes = {
    '/throw': () => { throw new Error('boom') },
    '/reject': async () => { throw new Error('async boom') },
    '/not-response': () => 'a string',
    '/ok': () => new Response('still serving'),
    '/stream-error': () => new Response(new ReadableStream({
      start (c) { c.enqueue(new TextEncoder().encode('partial')) },
      pull () { throw new Error('stream broke') }
    }))
  }
  before(() => {
    plain = serve({ routes })
    withError = serve({ routes, error: (err) => new Response(`handled: ${err.message}`, { status: 599 - 97 }) })
  })
  after(async () => { await plain.stop(true); await withError.stop(true) })

  for (const p of ['/throw', '/reject', '/not-response']) {
    test(`${p} → 500 without error(), server keeps serving`, async () => {
      const r = await request(plain, { path: p })
      assert.equal(r.status, 500)
      assert.equal((await request(plain, { path: '/ok' })).body_text, 'still serving')
    })
  }
  test('error() turns a throw into its Response', async () => {
    const r = await request(withError, { path: '/throw' })
    assert.equal(r.status, 502)
    assert.equal(r.body_text, 'handled: boom')
    const r2 = await request(withError, { path: '/reject' })
    assert.equal(r2.body_text, 'handled: async boom')
    const r3 = await request(withError, { path: '/not-response' })
    assert.match(r3.body_text, /handled: handler must return a Response/)
  })
  test('error() that throws itself → 500', async () => {
    const s = serve({ fetch: () => { throw new Error('x') }, error: () => { throw new Error('y') } })
    try {
      assert.equal((await request(s, { path: '/' })).status, 500)
    } finally { await s.stop(true) }
  })
  test('a body stream that errors mid-way resets the stream; server keeps serving', async () => {
    const r = await request(plain, { path: '/stream-error' })
    assert.ok(r.stream_reset !== null || r.complete === false || r.status === 500, JSON.stringify(r))
    assert.equal((await request(plain, { path: '/ok' })).status, 200)
  })
})

describe('limits', () => {
  let server
  let calls = 0
  before(() => {
    server = serve({ maxRequestBodySize: 64 * 1024, fetch: async (req) => { calls++; return new Response(String((await req.arrayBuffer()).byteLength)) } })
  })
  after(() => server.stop(true))

  test('body over maxRequestBodySize → 413 from Rust, JS not called, connection usable', async () => {
    const before = calls
    const out = await (await import('./helpers.mjs')).aioquic(server, ['request', '--method', 'POST', '--path', '/up', '--body-size', String(200 * 1024)])
    assert.equal(out.results[0].status, 413)
    assert.equal(calls, before)
    const ok = await request(server, { method: 'POST', path: '/up', bodySize: 64 * 1024 })
    assert.equal(ok.status, 200)
    assert.equal(ok.body_text, String(64 * 1024))
    assert.ok(server.getStats().requestsRejected >= 1)
  })
  test('declared content-length over the limit → 413 before any body is read', async () => {
    const r = await request(server, { method: 'POST', path: '/up', headers: { 'content-length': String(10 * 1024 * 1024) }, body: 'tiny' })
    assert.equal(r.status, 413)
  })
})
