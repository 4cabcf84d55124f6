// Bun's own HTTP/3 client (lsquic inside Bun) as a second independent client. Node has no
// HTTP/3 client, so under Node these tests are skipped (aioquic covers Node everywhere else).
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { serve, isBun, sha256 } from './helpers.mjs'

const h3 = (server, p, init = {}) =>
  fetch(`https://127.0.0.1:${server.port}${p}`, { ...init, protocol: 'http3', tls: { rejectUnauthorized: false } })

describe('Bun fetch over HTTP/3', { skip: isBun ? false : 'Bun-only client' }, () => {
  let server
  before(() => {
    server = serve({
      routes: {
        '/hello': new Response('hello static'),
        '/echo': async (req) => new Response(await req.arrayBuffer(), { headers: { 'x-got': req.headers.get('x-send') ?? '' } }),
        '/big': () => new Response(new Uint8Array(2 * 1024 * 1024).fill(9)),
        '/stream': () => new Response(new ReadableStream({
          async pull (c) { await new Promise((resolve) => setTimeout(resolve, 5)); c.enqueue('part;'); if (++this.n >= 20) c.close() },
          n: 0
        }))
      },
      fetch: (req) => new Response('fallback ' + req.method)
    })
  })
  after(() => server.stop(true))

  test('GET static and fallback', async () => {
    const r = await h3(server, '/hello')
    assert.equal(r.status, 200)
    assert.equal(await r.text(), 'hello static')
    assert.equal(await (await h3(server, '/zzz', { method: 'DELETE' })).text(), 'fallback DELETE')
  })
  test('POST echo with headers both ways, 512 KiB byte-exact', async () => {
    const body = new Uint8Array(512 * 1024).map((_, i) => i % 253)
    const r = await h3(server, '/echo', { method: 'POST', body, headers: { 'x-send': 'v1' } })
    assert.equal(r.headers.get('x-got'), 'v1')
    assert.equal(sha256(new Uint8Array(await r.arrayBuffer())), sha256(body))
  })
  test('2 MiB download and a streamed body', async () => {
    const big = new Uint8Array(await (await h3(server, '/big')).arrayBuffer())
    assert.equal(big.length, 2 * 1024 * 1024)
    assert.equal(await (await h3(server, '/stream')).text(), 'part;'.repeat(20))
  })
  test('20 concurrent requests', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => h3(server, `/echo?i=${i}`, { method: 'POST', body: `n${i}` }).then((r) => r.text())))
    assert.deepEqual(rs, Array.from({ length: 20 }, (_, i) => `n${i}`))
  })
  test('413 for an oversized buffered body', async () => {
    const r = await h3(server, '/echo', { method: 'POST', body: new Uint8Array(2 * 1024 * 1024) })
    assert.equal(r.status, 413)
  })
})
