import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { serve, aioquic, request } from './helpers.mjs'

// Hostile peers (aioquic speaking raw frames): the stream or connection is closed with a proper
// code, memory stays bounded, and the server keeps answering afterwards.
describe('hostile inputs', () => {
  let server
  before(() => { server = serve({ fetch: async (req) => new Response('ok ' + (await req.arrayBuffer()).byteLength) }) })
  after(() => server.stop(true))

  async function stillServing () {
    const r = await request(server, { path: '/' })
    assert.equal(r.status, 200)
  }

  test('oversized header section → 431, connection survives', async () => {
    const out = await aioquic(server, ['oversized-headers', '--size', String(32 * 1024)])
    assert.equal(out.status, 431)
    assert.equal(out.followup_status, 200)
    assert.equal(out.followup_connection, 'same')
  })
  test('absurd header section (256 KiB) → stream refused with H3_EXCESSIVE_LOAD', async () => {
    const out = await aioquic(server, ['oversized-headers', '--size', String(256 * 1024)])
    assert.ok(out.status === 431 || out.stop_sending === 0x107 || out.stream_reset === 0x107, JSON.stringify(out))
    await stillServing()
  })
  test('HEADERS frame claiming 2^40 bytes: STOP_SENDING H3_EXCESSIVE_LOAD, little buffered', async () => {
    const out = await aioquic(server, ['huge-headers-frame', '--claimed-length', String(2 ** 40), '--send', String(4 * 1024 * 1024)])
    assert.equal(out.stop_sending, 0x107, JSON.stringify(out))
    assert.ok(out.bytes_accepted <= 1024 * 1024 + 64 * 1024, `server let ${out.bytes_accepted} bytes in`)
    assert.equal(out.followup_status, 200)
  })
  test('reset mid-request body: connection stays usable', async () => {
    const out = await aioquic(server, ['reset-mid-request', '--path', '/up', '--body-size', '200000'])
    assert.equal(out.followup_status, 200)
    assert.equal(out.followup_connection, 'same')
  })
  test('DATA before HEADERS → connection error H3_FRAME_UNEXPECTED, server keeps serving', async () => {
    const out = await aioquic(server, ['raw-stream', '--hex', '000568656c6c6f', '--fin'])
    assert.ok(out.connection_closed || out.followup_error === 'connection_closed', JSON.stringify(out))
    if (out.connection_closed) assert.equal(out.error_code, 0x105, JSON.stringify(out))
    assert.equal(out.followup_new_connection_status ?? out.followup_status, 200)
    await stillServing()
  })
  test('garbage and truncated frames do not hurt other connections', async () => {
    for (const hex of ['ffffffffffffffff', '01', '0140']) {
      await aioquic(server, ['raw-stream', '--hex', hex, '--fin'])
    }
    await stillServing()
    assert.equal(server.getStats().requestsActive, 0)
  })
})
