import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { serve, aioquic, request, transfer, patternSha, patternStream, patternBytes, sha256, rssWatch, waitFor, sleep, root } from './helpers.mjs'

const { withTrailers } = createRequire(import.meta.url)(root)
const MiB = 1024 * 1024
const BIG = Number(process.env.H3_BIG_TRANSFER || 256 * MiB)

describe('streaming bodies', () => {
  let server
  const seen = {}
  let releaseStall
  const stallGate = new Promise((resolve) => { releaseStall = resolve })
  let releaseStall2
  const stallGate2 = new Promise((resolve) => { releaseStall2 = resolve })
  before(() => {
    server = serve({
      maxRequestBodySize: 1024 * MiB,
      routes: [
        {
          method: 'POST',
          pattern: '/hash',
          mode: 'streaming',
          fetch: async (req) => {
            const h = createHash('sha256')
            let n = 0
            let chunks = 0
            for await (const c of req.body) { h.update(c); n += c.length; chunks++ }
            return Response.json({ n, sha: h.digest('hex'), chunks, trailers: Object.fromEntries(await req.trailers) })
          }
        },
        { method: 'POST', pattern: '/echo', mode: 'streaming', fetch: (req) => new Response(req.body) },
        // GET has no body stream: its trailers promise is an empty Headers at once.
        { method: 'GET', pattern: '/get-trailers', mode: 'streaming', fetch: async (req) => Response.json({ body: req.body, trailers: [...await req.trailers] }) },
        { method: 'GET', pattern: '/download', fetch: (req) => new Response(patternStream(Number(new URL(req.url).searchParams.get('n')))) },
        { method: 'POST', pattern: '/early', mode: 'streaming', fetch: () => new Response('early') },
        { method: 'POST', pattern: '/stall', mode: 'streaming', fetch: async () => { seen.stalled = true; await stallGate; return new Response('released') } },
        {
          method: 'POST',
          pattern: '/stall-after-one',
          mode: 'streaming',
          fetch: async (req) => {
            const reader = req.body.getReader()
            const first = await reader.read()
            seen.stalledAfter = first.value.byteLength
            await stallGate2
            let n = first.value.byteLength
            for (;;) { const { done, value } = await reader.read(); if (done) break; n += value.byteLength }
            return new Response(String(n))
          }
        },
        {
          method: 'POST',
          pattern: '/abort-up',
          mode: 'streaming',
          fetch: async (req) => {
            let n = 0
            try {
              for await (const c of req.body) n += c.length
              seen.abortUp = { ok: true, n }
            } catch (e) {
              seen.abortUp = { code: e.code, n, aborted: req.signal.aborted }
            }
            return new Response('x')
          }
        },
        {
          method: 'GET',
          pattern: '/endless',
          fetch: () => new Response(new ReadableStream({
            pull (c) { seen.endlessPulls = (seen.endlessPulls || 0) + 1; c.enqueue(new Uint8Array(64 * 1024)) },
            cancel () { seen.endlessCancelled = true }
          }, { highWaterMark: 0 }))
        },
        { method: 'GET', pattern: '/trailers', fetch: () => withTrailers(new Response(patternStream(100000)), () => ({ 'x-checksum': patternSha(100000) })) }
      ]
    })
  })
  after(async () => { releaseStall(); releaseStall2(); await server.stop(true) })

  test('5 MiB in 64 KiB chunks arrives in order: SHA-256 of what JS read equals what was sent', async () => {
    const r = await transfer(server, '/hash', { upload: 5 * MiB, chunk: 64 * 1024 })
    assert.equal(r.status, 200, JSON.stringify(r))
    const j = JSON.parse(r.body)
    assert.equal(j.n, 5 * MiB)
    assert.equal(j.sha, patternSha(5 * MiB))
    assert.ok(j.chunks > 1, 'the body was delivered in pieces')
  })

  test('a streaming GET has no body and empty trailers at once', async () => {
    const r = await request(server, { path: '/get-trailers' })
    assert.equal(r.status, 200)
    assert.deepEqual(JSON.parse(r.body_text), { body: null, trailers: [] })
  })
  test('hash route with aioquic as the client', async () => {
    const r = await request(server, { method: 'POST', path: '/hash', bodySize: 300000 })
    const j = JSON.parse(r.body_text)
    assert.equal(j.n, 300000)
    assert.equal(j.sha, sha256(patternBytes(300000)))
  })

  test(`${BIG / MiB} MiB upload: SHA-256 matches, RSS growth < 64 MiB`, async () => {
    const w = rssWatch()
    const r = await transfer(server, '/hash', { upload: BIG })
    const growth = w.stop()
    assert.equal(r.status, 200, JSON.stringify(r))
    const j = JSON.parse(r.body)
    assert.equal(j.n, BIG)
    assert.equal(j.sha, patternSha(BIG))
    console.log(`# ${BIG / MiB} MiB upload: RSS growth ${(growth / MiB).toFixed(1)} MiB`)
    assert.ok(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`)
  })

  test(`${BIG / MiB} MiB download from a ReadableStream: SHA-256 matches, RSS growth < 64 MiB`, async () => {
    const w = rssWatch()
    const r = await transfer(server, `/download?n=${BIG}`)
    const growth = w.stop()
    assert.equal(r.status, 200)
    assert.equal(r.received, BIG)
    assert.equal(r.sha256, patternSha(BIG))
    console.log(`# ${BIG / MiB} MiB download: RSS growth ${(growth / MiB).toFixed(1)} MiB`)
    assert.ok(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`)
  })

  test('echo streams its input back while still reading', async () => {
    const r = await transfer(server, '/echo', { upload: 16 * MiB })
    assert.equal(r.received, 16 * MiB)
    assert.equal(r.sha256, patternSha(16 * MiB))
  })

  test('3 parallel 2 MiB uploads on one connection and across connections', async () => {
    const one = await aioquic(server, ['request', '--method', 'POST', '--path', '/hash', '--body-size', String(2 * MiB), '--repeat', '3', '--concurrency', '3', '--connections', '1'], { timeout: 60 })
    for (const r of one.results) {
      const j = JSON.parse(r.body_text)
      assert.equal(j.n, 2 * MiB)
      assert.equal(j.sha, patternSha(2 * MiB))
    }
    const many = await Promise.all([0, 1, 2].map(() => transfer(server, '/echo', { upload: 2 * MiB })))
    for (const r of many) assert.equal(r.sha256, patternSha(2 * MiB))
  })

  test('early response before the body is consumed: client told to stop, connection fine', async () => {
    const out = await aioquic(server, ['request', '--method', 'POST', '--path', '/early', '--body-size', String(3 * MiB)], { timeout: 60 })
    assert.equal(out.results[0].status, 200)
    assert.equal(out.results[0].body_text, 'early')
    assert.equal((await request(server, { method: 'POST', path: '/hash', bodySize: 10 })).status, 200)
  })

  test('a handler that never reads holds the sender, not our memory', async () => {
    const w = rssWatch()
    const p = transfer(server, '/stall', { upload: 64 * MiB, timeout: 20 })
    await waitFor(() => seen.stalled, { timeout: 5000 })
    await sleep(1000)
    const growth = w.stop()
    releaseStall()
    const r = await p
    assert.equal(r.status, 200)
    assert.ok(r.sent < 64 * MiB, `sender was never held: sent ${r.sent}`)
    assert.ok(growth < 16 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB while stalled`)
  })

  test('a handler that reads once then stalls: one chunk read ahead, the sender is held', async () => {
    const w = rssWatch()
    const p = transfer(server, '/stall-after-one', { upload: 64 * MiB, timeout: 20 })
    await waitFor(() => seen.stalledAfter, { timeout: 5000 })
    await sleep(1000)
    const growth = w.stop()
    releaseStall2()
    const r = await p
    assert.equal(r.status, 200)
    assert.equal(r.body, String(64 * MiB), 'every byte reached the handler, in one piece')
    // Sent while stalled: the first read, at most one chunk (512 KiB) read ahead, and the windows.
    assert.ok(growth < 16 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB while stalled`)
  })

  test('client reset mid-upload: the body stream errors and req.signal aborts', async () => {
    // 24 MiB cannot go out before the handler reads (the stream window is 4 MiB), so the reset
    // comes while the handler is reading.
    seen.abortUp = null
    const r = await transfer(server, '/abort-up', { upload: 64 * MiB, abortAfter: 24 * MiB })
    assert.equal(r.aborted, true)
    await waitFor(() => seen.abortUp, { timeout: 5000 })
    assert.equal(seen.abortUp.code, 'ERR_H3_STREAM_RESET', JSON.stringify(seen.abortUp))
    assert.equal(seen.abortUp.aborted, true)
    assert.ok(seen.abortUp.n < 64 * MiB)
  })

  test('a request reset before its head was read is answered with a reset (H3_REQUEST_REJECTED), not an empty response', async () => {
    // The client buffers 1 MiB (within the window) and resets at once: quinn drops what was
    // not sent yet, often the HEADERS frame too. A stream finished without HEADERS would be
    // H3_FRAME_UNEXPECTED to the client (RFC 9114 §4.1).
    for (let i = 0; i < 3; i++) {
      seen.abortUp = null
      const r = await transfer(server, '/abort-up', { upload: 8 * MiB, abortAfter: MiB })
      assert.equal(r.aborted, true)
      if (r.status === 200) {
        // The head got through first: the handler saw the reset.
        await waitFor(() => seen.abortUp, { timeout: 5000 })
        assert.equal(seen.abortUp.code, 'ERR_H3_STREAM_RESET', JSON.stringify(seen.abortUp))
      } else {
        assert.match(String(r.error), /H3_REQUEST_REJECTED/)
      }
    }
  })

  test('client stops mid-download: the response stream is cancelled, no more is read', async () => {
    const r = await transfer(server, '/endless', { abortAfter: 2 * MiB, timeout: 20 })
    assert.equal(r.aborted, true)
    await waitFor(() => seen.endlessCancelled, { timeout: 5000 })
    const pulls = seen.endlessPulls
    await sleep(300)
    assert.equal(seen.endlessPulls, pulls, 'the body was still being pulled after cancel')
  })

  test('trailers both ways', async () => {
    const up = await transfer(server, '/hash', { upload: 100000, trailers: ['x-sum: 12345', 'x-other: yes'] })
    assert.equal(up.status, 200)
    assert.deepEqual(JSON.parse(up.body).trailers, { 'x-sum': '12345', 'x-other': 'yes' })
    const down = await transfer(server, '/trailers')
    assert.equal(down.sha256, patternSha(100000))
    assert.deepEqual(down.trailers, [['x-checksum', patternSha(100000)]])
    const aio = await request(server, { path: '/trailers' })
    assert.deepEqual(aio.trailers, [['x-checksum', patternSha(100000)]])
  })

  test('streaming body over maxRequestBodySize → 413 or reset, server fine', async () => {
    const s = serve({ maxRequestBodySize: 1 * MiB, routes: [{ method: 'POST', pattern: '/up', mode: 'streaming', fetch: async (req) => { await req.arrayBuffer(); return new Response('read all') } }] })
    try {
      const r = await transfer(s, '/up', { upload: 4 * MiB, timeout: 20 })
      assert.ok(r.status === 413 || r.error, JSON.stringify(r))
      assert.equal((await request(s, { method: 'POST', path: '/up', bodySize: 1000 })).body_text, 'read all')
    } finally { await s.stop(true) }
  })
})
