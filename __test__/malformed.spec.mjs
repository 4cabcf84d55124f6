import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { serve, aioquic, request } from './helpers.mjs'

// Malformed requests (RFC 9114 §4.1.2, §4.2, §4.3, §4.3.1, §4.4): the stream is closed with
// H3_MESSAGE_ERROR (0x10e) before the handler runs, requestsRejected counts it, and the
// connection keeps serving. aioquic sends each HEADERS frame with exactly the field lines listed
// (QPACK literals, names as written), which h3 alone would accept: it keeps one value per
// pseudo-header and lower-cases names.
const H3_MESSAGE_ERROR = 0x10e

const head = (method = 'GET', path = '/') => [`:method: ${method}`, ':scheme: https', ':authority: localhost', `:path: ${path}`]

const cases = [
  ['duplicated :method', [':method: GET', ...head()]],
  ['duplicated :method with different values', [':method: POST', ...head()]],
  ['duplicated :path', [...head(), ':path: /again']],
  ['duplicated :authority', [...head(), ':authority: other']],
  ['connection: keep-alive', [...head(), 'connection: keep-alive']],
  ['keep-alive field', [...head(), 'keep-alive: timeout=5']],
  ['proxy-connection field', [...head(), 'proxy-connection: keep-alive']],
  ['transfer-encoding field', [...head('POST'), 'transfer-encoding: chunked']],
  ['upgrade field', [...head(), 'upgrade: websocket']],
  ['te other than trailers', [...head(), 'te: gzip']],
  ['upper-case field name', [...head(), 'User-Agent: x']],
  ['pseudo-header after a regular field', [':method: GET', ':scheme: https', 'x-a: 1', ':authority: localhost', ':path: /']],
  [':status in a request', [...head(), ':status: 200']],
  ['unknown pseudo-header', [':foo: bar', ...head()]],
  ['missing :path', [':method: GET', ':scheme: https', ':authority: localhost']],
  ['empty :path', head('GET', '')],
  ['missing :scheme', [':method: GET', ':authority: localhost', ':path: /']],
  [':protocol without CONNECT', [...head(), ':protocol: websocket']],
  ['CONNECT with :path and no :protocol', [':method: CONNECT', ':scheme: https', ':authority: localhost:443', ':path: /']],
  ['invalid content-length', [...head('POST'), 'content-length: 1x']],
  ['content-length above the DATA received (checked at FIN)', [...head('POST'), 'content-length: 5'], ['--data', 'abc']],
  ['DATA beyond content-length', [...head('POST'), 'content-length: 2'], ['--data', 'abcdef', '--no-fin']],
  ['DATA beyond content-length across frames', [...head('POST'), 'content-length: 4'], ['--data', 'abc', '--data', 'de']],
  ['content-length short of the DATA before trailers', [...head('POST'), 'content-length: 5'], ['--data', 'abc', '--trailer', 'x-sum: 1']],
  ['pseudo-header in trailers', head('POST'), ['--data', 'abc', '--trailer', ':path: /x']],
  ['upper-case name in trailers', head('POST'), ['--data', 'abc', '--trailer', 'X-Sum: 1']],
  ['connection-specific field in trailers', head('POST'), ['--data', 'abc', '--trailer', 'connection: close']]
]

function rawHeaders (server, fields, extra = []) {
  return aioquic(server, ['raw-headers', ...fields.flatMap((f) => ['--field', f]), ...extra])
}

describe('malformed requests', () => {
  let server
  let calls = 0
  before(() => {
    server = serve({
      fetch: async (req) => {
        calls++
        return new Response('ok ' + (await req.arrayBuffer()).byteLength)
      }
    })
  })
  after(() => server.stop(true))

  for (const [name, fields, extra] of cases) {
    test(`${name} → H3_MESSAGE_ERROR, handler not called, connection survives`, async () => {
      const rejected = server.getStats().requestsRejected
      const before = calls
      const out = await rawHeaders(server, fields, extra)
      assert.equal(out.stream_reset, H3_MESSAGE_ERROR, JSON.stringify(out))
      // STOP_SENDING too, unless the whole request had already arrived (a FIN-time verdict).
      assert.ok(out.stop_sending === H3_MESSAGE_ERROR || (out.stop_sending === null && !extra?.includes('--no-fin')), JSON.stringify(out))
      assert.equal(out.followup_status, 200, JSON.stringify(out))
      assert.equal(out.followup_connection, 'same')
      // The follow-up is the only request that reached the handler.
      assert.equal(calls, before + 1, `handler called for: ${name}`)
      assert.equal(server.getStats().requestsRejected, rejected + 1)
    })
  }

  test('well-formed raw requests still get 200: te: trailers, matching content-length, trailers', async () => {
    const before = calls
    const rejected = server.getStats().requestsRejected
    for (const [fields, extra, len] of [
      [[...head('POST'), 'te: trailers', 'content-length: 5', 'x-lower: a'], ['--data', 'ab', '--data', 'cde'], 5],
      [[...head('POST'), 'content-length: 3'], ['--data', 'abc', '--trailer', 'x-sum: 1'], 3],
      [[...head('POST'), 'content-length: 0'], [], 0],
      [[...head('POST'), 'content-length: 3, 3'], ['--data', 'abc'], 3],
      [[...head('OPTIONS', '*')], [], 0],
      [head('POST'), ['--data', 'no length given'], 15]
    ]) {
      const out = await rawHeaders(server, fields, extra)
      assert.equal(out.status, 200, JSON.stringify(out))
      assert.equal(out.stream_reset, null, JSON.stringify(out))
      assert.equal(out.body_len, `ok ${len}`.length, JSON.stringify(out))
    }
    assert.equal(server.getStats().requestsRejected, rejected)
    assert.ok(calls >= before + 6)
  })

  test('well-formed requests from aioquic\'s own encoder (static table, Huffman) get 200', async () => {
    const rejected = server.getStats().requestsRejected
    const r = await request(server, { method: 'POST', path: '/x?y=1', headers: { te: 'trailers', 'content-type': 'text/plain', accept: '*/*', 'user-agent': 'malformed-spec/1.0' }, body: 'hello' })
    assert.equal(r.status, 200)
    assert.equal(r.body_text, 'ok 5')
    const g = await request(server, { path: '/' })
    assert.equal(g.status, 200)
    assert.equal(server.getStats().requestsRejected, rejected)
  })
})
