import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { serve, aioquic, waitFor } from './helpers.mjs'

describe('QUIC datagrams (server level)', () => {
  let server
  const seen = { ids: new Set(), n: 0, buffers: 0, held: [] }
  before(() => {
    server = serve({
      fetch: () => new Response('plain requests still work'),
      quicDatagram (payload, ctx) {
        seen.ids.add(ctx.connectionIdHex)
        seen.max = ctx.maxDatagramSize
        // Payloads are Buffers (views of their batch); replies take any byte shape.
        if (Buffer.isBuffer(payload)) seen.buffers++
        if (seen.held.length < 5) seen.held.push([payload, Buffer.from(payload)])
        const n = seen.n++
        ctx.sendReply(n % 3 === 0 ? payload : n % 3 === 1 ? new Uint8Array(payload) : new Uint8Array(payload).buffer)
      }
    })
  })
  after(() => server.stop(true))

  test('echo through quicDatagram, with stats', async () => {
    const s0 = server.getStats()
    const out = await aioquic(server, ['quic-datagram', '--count', '50', '--size', '200', '--interval-ms', '1'])
    assert.equal(out.sent, 50)
    assert.ok(out.echo_ok >= 45, JSON.stringify(out).slice(0, 400))
    assert.equal(seen.ids.size, 1)
    assert.match([...seen.ids][0], /^[0-9a-f]{16}$/)
    assert.ok(seen.max > 1000 && seen.max < 65536, `maxDatagramSize ${seen.max}`)
    assert.equal(seen.buffers, seen.n)
    // A payload kept past its batch still holds its own bytes.
    for (const [view, copy] of seen.held) assert.deepEqual(view, copy)
    const s1 = server.getStats()
    assert.ok(s1.datagramsReceived - s0.datagramsReceived >= out.echo_ok)
    assert.ok(s1.datagramsSent - s0.datagramsSent >= out.echo_ok)
    assert.equal(out.followup_status, 200)
  })

  test('a 1000-datagram burst: every datagram is echoed, dropped or lost, and accounted', async () => {
    const s0 = server.getStats()
    const out = await aioquic(server, ['quic-datagram', '--count', '1000', '--size', '100', '--wait', '3'])
    const s1 = server.getStats()
    const rx = s1.datagramsReceived - s0.datagramsReceived
    const tx = s1.datagramsSent - s0.datagramsSent
    const dropped = s1.datagramsDropped - s0.datagramsDropped
    assert.ok(rx <= 1000 && rx > 500, `received ${rx}`)
    assert.equal(tx + dropped, rx, `sent ${tx} + dropped ${dropped} != received ${rx}`)
    assert.ok(out.received <= tx)
  })
})

describe('HTTP datagrams (RFC 9297) on a route', () => {
  let server
  const seen = {}
  before(() => {
    server = serve({
      routes: [{
        method: 'POST',
        pattern: '/dg',
        mode: 'streaming',
        // The request stream stays open while datagrams flow; the response ends with it.
        fetch: (req) => new Response(req.body),
        h3Datagram (payload, ctx) {
          seen.streamId = ctx.streamId
          seen.flowId = ctx.flowId
          seen.url = ctx.request.url
          seen.max = ctx.maxDatagramSize
          try {
            ctx.sendReply(new Uint8Array(70000))
          } catch (e) {
            seen.tooLarge = e.code
          }
          ctx.sendReply(payload)
        }
      }],
      fetch: () => new Response('other routes work')
    })
  })
  after(() => server.stop(true))

  test('echo bound to the request stream; contexts carry stream, flow id and request', async () => {
    const out = await aioquic(server, ['h3-datagram', '--path', '/dg', '--method', 'POST', '--count', '20', '--size', '64', '--interval-ms', '2'])
    assert.equal(out.status, 200, JSON.stringify(out).slice(0, 500))
    assert.ok(out.echo_ok_same_stream >= 18, JSON.stringify(out).slice(0, 500))
    assert.deepEqual(out.received_stream_ids, [out.stream_id])
    assert.equal(seen.streamId, BigInt(out.stream_id))
    assert.equal(seen.flowId, BigInt(out.stream_id) / 4n)
    assert.match(seen.url, /\/dg$/)
    assert.equal(seen.tooLarge, 'ERR_H3_DATAGRAM_TOO_LARGE')
    assert.ok(seen.max > 1000)
    assert.equal(out.followup_status, 200)
  })

  test('datagrams naming no open stream are dropped and counted (no quicDatagram handler)', async () => {
    const s0 = server.getStats()
    const out = await aioquic(server, ['quic-datagram', '--count', '10', '--size', '50', '--interval-ms', '1'])
    assert.equal(out.received, 0)
    await waitFor(() => server.getStats().datagramsDropped - s0.datagramsDropped >= 8)
  })
})
