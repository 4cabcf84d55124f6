import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { serve, request, aioquic, sha256, patternBytes, waitFor, root } from './helpers.mjs'

describe('routing, params, methods, fallback', () => {
  let server
  before(() => {
    server = serve({
      routes: [
        { method: 'GET', pattern: '/users/:id', fetch: (req) => Response.json({ id: req.params.id, m: req.method }) },
        { method: 'POST', pattern: '/users/:id', fetch: async (req) => Response.json({ id: req.params.id, m: 'POST', body: await req.text() }) },
        { method: '*', pattern: '/files/*', fetch: (req) => new Response(`file:${req.params['*']}:${req.method}`) },
        { method: 'GET', pattern: '/users/me', fetch: () => new Response('me') },
        { method: 'GET', pattern: '/static', response: new Response('static body', { status: 201, headers: { 'x-static': 'yes' } }) }
      ],
      fetch: (req) => new Response(`fallback ${new URL(req.url).pathname}`, { status: 418 })
    })
  })
  after(() => server.stop(true))

  test('params are decoded into req.params', async () => {
    const r = await request(server, { path: '/users/a%20b' })
    assert.equal(r.status, 200)
    assert.deepEqual(JSON.parse(r.body_text), { id: 'a b', m: 'GET' })
  })
  test('method-specific routes', async () => {
    const r = await request(server, { method: 'POST', path: '/users/7', body: 'hi' })
    assert.deepEqual(JSON.parse(r.body_text), { id: '7', m: 'POST', body: 'hi' })
  })
  test('static segment beats parameter', async () => {
    assert.equal((await request(server, { path: '/users/me' })).body_text, 'me')
  })
  test('wildcard with any method', async () => {
    assert.equal((await request(server, { method: 'DELETE', path: '/files/a/b.txt' })).body_text, 'file:a/b.txt:DELETE')
  })
  test('unmatched method falls back to fetch', async () => {
    const r = await request(server, { method: 'PUT', path: '/users/1' })
    assert.equal(r.status, 418)
    assert.equal(r.body_text, 'fallback /users/1')
  })
  test('static Response route keeps status, headers and body (repeatedly)', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await request(server, { path: '/static' })
      assert.equal(r.status, 201)
      assert.equal(r.header('x-static'), 'yes')
      assert.equal(r.body_text, 'static body')
    }
  })
})

describe('object-map routes (Bun style) and 404', () => {
  let server
  before(() => {
    server = serve({
      routes: {
        '/hello': new Response('hello'),
        '/fn/:x': (req) => new Response('fn ' + req.params.x),
        '/api/item': { GET: () => new Response('get item'), DELETE: () => new Response(null, { status: 204 }) }
      }
    })
  })
  after(() => server.stop(true))

  test('static, function and per-method entries', async () => {
    assert.equal((await request(server, { path: '/hello' })).body_text, 'hello')
    assert.equal((await request(server, { path: '/fn/9' })).body_text, 'fn 9')
    assert.equal((await request(server, { path: '/api/item' })).body_text, 'get item')
    const del = await request(server, { method: 'DELETE', path: '/api/item' })
    assert.equal(del.status, 204)
    assert.equal(del.body_len, 0)
  })
  test('404 without a fallback, from Rust', async () => {
    const r = await request(server, { path: '/nope' })
    assert.equal(r.status, 404)
    const r2 = await request(server, { method: 'POST', path: '/api/item', body: 'x' })
    assert.equal(r2.status, 404)
  })
})

const LONG_HEADERS = {
  'x-short': 'v',
  'x-edge-1': 'a'.repeat(122) + 'é',
  'x-edge-2': 'a'.repeat(124) + 'é',
  'x-edge-3': 'a'.repeat(126) + 'é',
  'x-edge-4': 'a'.repeat(127),
  'x-long': 'b'.repeat(300) + 'é'
}

describe('requests and responses', () => {
  let server
  let seen
  before(() => {
    server = serve({
      routes: {
        '/echo': async (req) => {
          const body = new Uint8Array(await req.arrayBuffer())
          seen = { url: req.url, method: req.method, headers: Object.fromEntries(req.headers), ip: server.requestIP(req), aborted: req.signal.aborted }
          return new Response(body, { headers: { 'x-len': String(body.length), 'x-multi': 'a', 'set-cookie': 'a=1' } })
        },
        '/types/:kind': (req) => {
          const k = req.params.kind
          if (k === 'string') return new Response('text body')
          if (k === 'bytes') return new Response(new Uint8Array([1, 2, 3, 4]))
          if (k === 'arraybuffer') return new Response(new Uint8Array([5, 6, 7]).buffer)
          if (k === 'blob') return new Response(new Blob(['blob ', 'body']))
          if (k === 'null') return new Response(null, { status: 200, headers: { 'x-null': '1' } })
          if (k === 'stream') {
            let i = 0
            return new Response(new ReadableStream({
              pull (c) { if (i < 10) c.enqueue(new TextEncoder().encode(`chunk${i++};`)); else c.close() }
            }))
          }
          if (k === 'iterable') {
            async function * gen () { for (let i = 0; i < 5; i++) yield new TextEncoder().encode(`it${i}`) }
            return new Response(gen())
          }
          if (k === 'big') return new Response(new Uint8Array(3 * 1024 * 1024).fill(7))
          return new Response('?', { status: 400 })
        },
        '/head': () => new Response('body that HEAD must not carry', { headers: { 'x-h': '1' } }),
        // Header strings reach Rust through a 128-byte buffer first (src/napi/convert.rs
        // short_string): values around and past its edge, with a two-byte character at the cut.
        '/long-headers': () => new Response('ok', { headers: LONG_HEADERS }),
        // More header strings than one respondBatch call spreads: this answer goes on its own.
        '/many-headers': () => new Response('many', { headers: Array.from({ length: 1100 }, (_, i) => [`x-m-${i}`, String(i)]) })
      }
    })
  })
  after(() => server.stop(true))

  test('cookie field lines a client split are joined with "; " (RFC 9114 §4.2.1)', async () => {
    const out = await aioquic(server, ['request', '--method', 'POST', '--path', '/echo', '--header', 'cookie: a=1', '--header', 'x-c: 1', '--header', 'cookie: b=2; c=3', '--body', 'x'])
    assert.equal(out.results[0].status, 200)
    assert.equal(seen.headers.cookie, 'a=1; b=2; c=3')
    assert.equal(seen.headers['x-c'], '1')
  })
  test('a response with 1100 headers arrives whole', async () => {
    const r = await request(server, { path: '/many-headers' })
    assert.equal(r.status, 200)
    assert.equal(r.body_text, 'many')
    const got = r.headers.filter(([k]) => k.startsWith('x-m-'))
    assert.equal(got.length, 1100)
    got.forEach(([k, v]) => assert.equal(k, `x-m-${v}`))
  })
  test('response header values of any length arrive whole (UTF-8 at the conversion buffer edge)', async () => {
    const r = await request(server, { path: '/long-headers' })
    assert.equal(r.status, 200)
    // h3client.py reads header bytes as Latin-1; the server sent UTF-8.
    for (const [k, v] of Object.entries(LONG_HEADERS)) assert.equal(Buffer.from(r.header(k), 'latin1').toString('utf8'), v, k)
  })
  test('request head: url, method, lowercase headers, no pseudo-headers, requestIP', async () => {
    const r = await request(server, { method: 'POST', path: '/echo?q=1', headers: { 'X-Custom': 'Value' }, body: 'abc' })
    assert.equal(r.status, 200)
    assert.equal(r.body_text, 'abc')
    assert.equal(seen.url, `https://localhost:${server.port}/echo?q=1`)
    assert.equal(seen.method, 'POST')
    assert.equal(seen.headers['x-custom'], 'Value')
    assert.ok(!Object.keys(seen.headers).some((k) => k.startsWith(':')))
    assert.equal(seen.ip.address, '127.0.0.1')
    assert.equal(seen.ip.family, 'IPv4')
    assert.ok(seen.ip.port > 0)
    assert.equal(seen.aborted, false)
    assert.equal(r.header('x-len'), '3')
    assert.equal(r.header('set-cookie'), 'a=1')
  })

  for (const size of [0, 1024, 512 * 1024]) {
    test(`buffered body of ${size} bytes arrives byte-exact`, async () => {
      const r = await request(server, { method: 'POST', path: '/echo', bodySize: size })
      assert.equal(r.status, 200)
      assert.equal(r.body_len, size)
      assert.equal(r.body_sha256, sha256(patternBytes(size)))
    })
  }

  const expected = {
    string: 'text body',
    bytes: '\u0001\u0002\u0003\u0004',
    arraybuffer: '\u0005\u0006\u0007',
    blob: 'blob body',
    null: '',
    stream: Array.from({ length: 10 }, (_, i) => `chunk${i};`).join(''),
    iterable: 'it0it1it2it3it4'
  }
  for (const [kind, text] of Object.entries(expected)) {
    test(`response body type: ${kind}`, async () => {
      const r = await request(server, { path: `/types/${kind}` })
      assert.equal(r.status, 200)
      assert.equal(r.body_text, text)
      if (kind === 'null') assert.equal(r.header('x-null'), '1')
    })
  }

  test('3 MiB response body arrives byte-exact', async () => {
    const r = await request(server, { path: '/types/big' })
    assert.equal(r.body_len, 3 * 1024 * 1024)
    assert.equal(r.body_sha256, sha256(new Uint8Array(3 * 1024 * 1024).fill(7)))
  })

  test('HEAD sends headers but no body', async () => {
    const r = await request(server, { method: 'HEAD', path: '/head' })
    assert.equal(r.status, 200)
    assert.equal(r.header('x-h'), '1')
    assert.equal(r.body_len, 0)
  })
})

describe("the handler's Request is a whole WHATWG Request", () => {
  let server, upstream
  const held = { started: false, closed: false }
  before(async () => {
    // An HTTP/1.1 upstream for `fetch(new Request(url, req))`: echoes method, a header and the body.
    const http = await import('node:http')
    upstream = http.createServer((req, res) => {
      if (req.url === '/hold') {
        // Never answers: the test aborts the client and expects this request to go away too.
        held.started = true
        res.on('close', () => { held.closed = true })
        return
      }
      const parts = []
      req.on('data', (d) => parts.push(d))
      req.on('end', () => res.end(JSON.stringify({ m: req.method, t: req.headers['x-t'] ?? null, body: Buffer.concat(parts).toString() })))
    })
    await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    const upstreamUrl = `http://127.0.0.1:${upstream.address().port}/echo`
    server = serve({
      routes: {
        '/inspect': async (req) => {
          const seen = {
            instance: req instanceof Request,
            method: req.method,
            url: req.url,
            header: req.headers.get('x-t'),
            signal: req.signal instanceof AbortSignal && !req.signal.aborted
          }
          const cloneBody = await req.clone().text()
          // new Request(req) takes the body over (Fetch: "creating a proxy" of input's body).
          const copy = new Request(req)
          return Response.json({ ...seen, cloneBody, copy: [copy.method, copy.url, copy.headers.get('x-t'), await copy.text()] })
        },
        '/proxy': (req) => fetch(new Request(upstreamUrl, req)),
        '/proxy-hold': (req) => fetch(new Request(upstreamUrl.replace('/echo', '/hold'), req))
      },
      fetch: (req) => new Response(`${req.method} ${req.url}`)
    })
  })
  after(async () => {
    await server.stop(true)
    await new Promise((resolve) => upstream.close(resolve))
  })

  test('read, copied with new Request(req), cloned, body read once', async () => {
    const r = await request(server, { method: 'POST', path: '/inspect?q=1', headers: { 'x-t': 'v' }, body: 'payload' })
    const seen = JSON.parse(r.body_text)
    assert.match(seen.url, /^https:\/\/[^/]+:\d+\/inspect\?q=1$/)
    assert.deepEqual(seen, {
      instance: true,
      method: 'POST',
      url: seen.url,
      header: 'v',
      signal: true,
      cloneBody: 'payload',
      copy: ['POST', seen.url, 'v', 'payload']
    })
  })
  test('passed to fetch as the init of an upstream Request (method, headers, streamed body)', async () => {
    const r = await request(server, { method: 'PUT', path: '/proxy', headers: { 'x-t': 'up' }, body: 'to upstream' })
    assert.equal(r.status, 200)
    assert.deepEqual(JSON.parse(r.body_text), { m: 'PUT', t: 'up', body: 'to upstream' })
  })
  test('an upstream fetch made with req as its init is aborted when the client goes away', async () => {
    const { createH3Client } = createRequire(import.meta.url)(root)
    const client = createH3Client({ tls: { rejectUnauthorized: false } })
    const ac = new AbortController()
    try {
      const p = client.fetch(`https://127.0.0.1:${server.port}/proxy-hold`, { signal: ac.signal })
      await waitFor(() => held.started)
      ac.abort()
      await assert.rejects(p, { name: 'AbortError' })
      await waitFor(() => held.closed, { timeout: 5000 })
    } finally {
      await client.close()
    }
  })
  test('url is the parsed URL (dot segments resolved), other methods kept', async () => {
    const get = await request(server, { path: '/a/../b/./c?x=1' })
    assert.match(get.body_text, /^GET https:\/\/[^/]+:\d+\/b\/c\?x=1$/)
    const other = await request(server, { method: 'PROPFIND', path: '/dav' })
    assert.match(other.body_text, /^PROPFIND https:\/\/[^/]+:\d+\/dav$/)
  })
})
