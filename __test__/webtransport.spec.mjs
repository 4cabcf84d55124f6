import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import path from 'node:path'
import { serve, aioquic, waitFor, root, sha256, patternBytes, sleep, makeCert, spawnServer, python, readAll, each } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { createH3Client, WebTransportError } = require(root)

const enc = new TextEncoder()
const dec = new TextDecoder()

/**
 * The echo protocol every test peer speaks (see __test__/py/h3client.py `wt`): datagrams and
 * bidi streams echoed, uni streams answered on a server-opened uni stream, one server-opened
 * bidi stream carrying "hello from server" whose reply is recorded.
 */
function echoSession (session, log) {
  const entry = { sessionId: session.sessionId, request: session.request, events: [] }
  log.push(entry)
  const ev = (e) => entry.events.push(e)
  const catchTo = (what) => (e) => ev({ [what]: String(e) })
  each(session.datagrams.readable, (d) => { try { session.sendDatagram(d) } catch (e) { ev({ datagramError: e.code }) } }).catch(catchTo('datagramsError'))
  each(session.incomingBidirectionalStreams, ({ readable, writable }) => {
    readable.pipeTo(writable).catch(catchTo('pipeError'))
  }).catch(catchTo('bidiError'))
  each(session.incomingUnidirectionalStreams, async (readable) => {
    const data = await readAll(readable)
    ev({ uni: data.length })
    const w = (await session.createUnidirectionalStream()).getWriter()
    await w.write(data)
    await w.close()
  }).catch(catchTo('uniError'))
  session.createBidirectionalStream().then(async ({ readable, writable }) => {
    const w = writable.getWriter()
    await w.write(enc.encode('hello from server'))
    await w.close()
    ev({ serverBidiReply: dec.decode(await readAll(readable)) })
  }).catch(catchTo('serverBidiError'))
  session.closed.then((info) => { entry.closed = info }, (e) => { entry.closedError = e })
}

function wtRoutes (log) {
  return [
    { pattern: '/plain', fetch: () => new Response('plain over the same connection') },
    { pattern: '/wt/echo', webtransport: (s) => echoSession(s, log) },
    {
      pattern: '/wt/close',
      webtransport (s) {
        s.accept()
        s.close({ closeCode: 7, reason: 'server-bye' })
      }
    },
    { pattern: '/wt/reject', webtransport: (s) => s.reject(403) },
    {
      // Picks the last protocol offered (the client's least preferred: proves the choice is ours).
      pattern: '/wt/proto',
      webtransport (s) {
        const entry = { offered: s.availableProtocols, events: [] }
        log.push(entry)
        try { s.accept({ protocol: 'never-offered' }) } catch (e) { entry.refused = e.code }
        const pick = s.availableProtocols.at(-1)
        s.accept(pick === undefined ? {} : { protocol: pick })
        entry.protocol = s.protocol
      }
    },
    { pattern: '/wt/throws', webtransport () { throw new Error('handler bug') } },
    {
      // The README example.
      pattern: '/wt/readme',
      async webtransport (session) {
        session.datagrams.readable.pipeTo(session.datagrams.writable).catch(() => {})
        for await (const { readable, writable } of session.incomingBidirectionalStreams) {
          readable.pipeTo(writable).catch(() => {})
        }
      }
    },
    {
      pattern: '/wt/auth/:token',
      async webtransport (s) {
        await sleep(20) // an asynchronous check before deciding
        if (s.request.params.token !== 'good') return s.reject(401)
        s.accept()
        echoSession(s, log)
      }
    },
    {
      // Waits for a datagram that never comes; the session's end must finish the read.
      pattern: '/wt/dgwait',
      async webtransport (s) {
        const entry = { dgwait: true }
        log.push(entry)
        const r = await s.datagrams.readable.getReader().read().catch((e) => ({ error: String(e) }))
        entry.serverRead = r
      }
    },
    {
      // pipeTo between our own streams runs in Rust; each incoming bidi stream tries one ending.
      pattern: '/wt/pipes',
      webtransport (s) {
        const entry = { pipes: [] }
        log.push(entry)
        let n = 0
        const note = (i) => [() => { entry.pipes[i] = 'ok' }, (e) => { entry.pipes[i] = { code: e.streamErrorCode, name: e.name } }]
        each(s.incomingBidirectionalStreams, async ({ readable, writable }) => {
          const i = n++
          if (i === 0) {
            // preventClose: the destination stays open for more.
            await readable.pipeTo(writable, { preventClose: true }).then(...note(i))
            const w = writable.getWriter()
            await w.write(enc.encode('|tail'))
            await w.close()
          } else if (i === 3) {
            // Read once first: the pipe then takes the standard path, in order.
            const r = readable.getReader()
            const { value } = await r.read()
            r.releaseLock()
            const w = writable.getWriter()
            await w.write(value)
            w.releaseLock()
            await readable.pipeTo(writable).then(...note(i))
          } else {
            await readable.pipeTo(writable).then(...note(i))
          }
        }).catch(() => {})
      }
    },
    {
      pattern: '/wt/codes',
      webtransport (s) {
        const entry = { events: [] }
        log.push(entry)
        let n = 0
        each(s.incomingBidirectionalStreams, async ({ readable, writable }) => {
          if (n++ === 0) {
            // First stream: read until the client aborts it, and note the code.
            try {
              await readAll(readable)
              entry.events.push({ aborted: null })
            } catch (e) {
              entry.events.push({ aborted: e.streamErrorCode, name: e.name })
            }
          } else {
            // Second stream: refuse to read it (STOP_SENDING with our code).
            await readable.cancel(new WebTransportError('no thanks', { streamErrorCode: 99 }))
            writable.abort(new WebTransportError('nor write', { streamErrorCode: 98 })).catch(() => {})
          }
        }).catch(() => {})
        s.createUnidirectionalStream().then(async (w) => {
          const writer = w.getWriter()
          await writer.write(enc.encode('partial'))
          await writer.abort(new WebTransportError('server gave up', { streamErrorCode: 5 }))
        }).catch(() => {})
      }
    }
  ]
}

describe('WebTransport: our client and server', () => {
  let server, client
  const log = []
  before(() => {
    server = serve({ routes: wtRoutes(log) })
    client = createH3Client({ tls: { serverCertificateHashes: [server.certificateHash] } })
  })
  after(async () => {
    await client.close()
    await server.stop(true)
  })
  const url = (p) => `https://127.0.0.1:${server.port}${p}`

  test('datagrams, bidi and uni streams, a server-opened stream, close with a code', async () => {
    const s = await client.webtransport(url('/wt/echo'))
    await s.ready
    const entry = await waitFor(() => log.find((e) => e.request?.url.endsWith('/wt/echo') && !e.done))
    entry.done = true
    assert.equal(entry.request.method, 'CONNECT')
    assert.equal(typeof entry.sessionId, 'bigint')
    assert.ok(s.datagrams.maxDatagramSize > 1000)

    // Datagrams (loopback rarely loses any; a few may be).
    const got = new Set()
    const dgReader = s.datagrams.readable.getReader()
    for (let i = 0; i < 20; i++) s.sendDatagram(enc.encode(`dgram ${i}`))
    const deadline = Date.now() + 3000
    while (got.size < 20 && Date.now() < deadline) {
      const r = await Promise.race([dgReader.read(), sleep(500).then(() => null)])
      if (r && !r.done) got.add(dec.decode(r.value))
    }
    assert.ok(got.size >= 18, `echoed ${got.size}/20`)
    assert.ok([...got].every((d) => /^dgram \d+$/.test(d)))

    // A 1 MiB bidi echo, byte-exact.
    const data = patternBytes(1024 * 1024)
    const { readable, writable } = await s.createBidirectionalStream()
    const echoed = readAll(readable)
    const w = writable.getWriter()
    for (let off = 0; off < data.length; off += 64 * 1024) await w.write(data.subarray(off, off + 64 * 1024))
    await w.close()
    assert.equal(sha256(await echoed), sha256(data))

    // Uni out, uni back.
    const incomingUni = s.incomingUnidirectionalStreams.getReader()
    const uw = (await s.createUnidirectionalStream()).getWriter()
    await uw.write(enc.encode('one way'))
    await uw.close()
    const { value: back } = await incomingUni.read()
    assert.equal(dec.decode(await readAll(back)), 'one way')

    // The server opened a bidi stream right after accepting.
    const { value: sb } = await s.incomingBidirectionalStreams.getReader().read()
    const text = dec.decode(await readAll(sb.readable))
    assert.equal(text, 'hello from server')
    const sw = sb.writable.getWriter()
    await sw.write(enc.encode('reply:' + text))
    await sw.close()
    await waitFor(() => entry.events.find((e) => e.serverBidiReply))
    assert.ok(entry.events.some((e) => e.serverBidiReply === 'reply:hello from server'))

    // Ordinary requests share the connection.
    const res = await client.fetch(url('/plain'))
    assert.equal(await res.text(), 'plain over the same connection')
    assert.equal(client.connectionCount, 1)

    assert.equal(server.getStats().webtransportSessionsActive, 1)
    s.close({ closeCode: 4242, reason: 'bye' })
    assert.deepEqual(await s.closed, { closeCode: 4242, reason: 'bye' })
    await waitFor(() => entry.closed)
    assert.deepEqual(entry.closed, { closeCode: 4242, reason: 'bye' })
    await waitFor(() => server.getStats().webtransportSessionsActive === 0 && server.getStats().webtransportStreamsActive === 0)
  })

  test('a datagram read waiting when the session closes ends (done), on both sides', async () => {
    const s = await client.webtransport(url('/wt/dgwait'))
    const entry = await waitFor(() => log.find((e) => e.dgwait && !e.seen))
    entry.seen = true
    const pending = s.datagrams.readable.getReader().read()
    await sleep(100)
    s.close()
    const r = await Promise.race([pending, sleep(3000).then(() => 'still waiting')])
    assert.deepEqual(r, { done: true, value: undefined })
    await waitFor(() => entry.serverRead, { timeout: 3000 })
    assert.deepEqual(entry.serverRead, { done: true, value: undefined })
  })

  test('the server closes the session with a code and reason', async () => {
    const s = await client.webtransport(url('/wt/close'))
    assert.deepEqual(await s.closed, { closeCode: 7, reason: 'server-bye' })
    // Streams of a closed session cannot be opened.
    await assert.rejects(s.createBidirectionalStream(), { code: 'ERR_H3_SESSION_CLOSED' })
  })

  test('reject(status) refuses the session; an async handler may decide later', async () => {
    await assert.rejects(client.webtransport(url('/wt/reject')), (e) => e.code === 'ERR_H3_WT_REJECTED' && e.status === 403 && e instanceof WebTransportError)
    await assert.rejects(client.webtransport(url('/wt/auth/bad')), { status: 401 })
    const s = await client.webtransport(url('/wt/auth/good'))
    s.sendDatagram(enc.encode('ok?'))
    const { value } = await s.datagrams.readable.getReader().read()
    assert.equal(dec.decode(value), 'ok?')
    s.close()
    assert.deepEqual(await s.closed, { closeCode: 0, reason: '' })
    // A handler that throws before accepting refuses with 500.
    await assert.rejects(client.webtransport(url('/wt/throws')), { status: 500 })
    // The README example echoes.
    const r = await client.webtransport(url('/wt/readme'))
    const { readable, writable } = await r.createBidirectionalStream()
    const w = writable.getWriter()
    await w.write(enc.encode('readme'))
    await w.close()
    assert.equal(dec.decode(await readAll(readable)), 'readme')
    r.close()
    await r.closed
    // A path without a webtransport route is a 404.
    await assert.rejects(client.webtransport(url('/plain')), { status: 404 })
  })

  test('datagrams.writable: a burst written in one turn goes out together, sizes checked at write', async () => {
    // /wt/readme pipes the server's datagrams.readable into its datagrams.writable (batched).
    const s = await client.webtransport(url('/wt/readme'))
    await s.ready
    const reader = s.datagrams.readable.getReader()
    const writer = s.datagrams.writable.getWriter()
    const writes = []
    for (let i = 0; i < 36; i++) writes.push(writer.write(enc.encode(`w${i}`)))
    // Every byte shape a write takes: a view into the middle of a larger buffer, a DataView,
    // an ArrayBuffer, a Buffer.
    writes.push(writer.write(enc.encode('..w36..').subarray(2, 5)))
    writes.push(writer.write(new DataView(enc.encode('w37').buffer)))
    writes.push(writer.write(enc.encode('w38').buffer))
    writes.push(writer.write(Buffer.from('w39')))
    await Promise.all(writes)
    const got = new Set()
    const deadline = Date.now() + 3000
    while (got.size < 40 && Date.now() < deadline) {
      const r = await Promise.race([reader.read(), sleep(500).then(() => null)])
      if (r && !r.done) {
        // Each datagram arrives as a Uint8Array over an ArrayBuffer of its own, as in browsers.
        assert.ok(r.value instanceof Uint8Array)
        assert.equal(r.value.byteOffset, 0)
        assert.equal(r.value.buffer.byteLength, r.value.byteLength)
        got.add(dec.decode(r.value))
      }
    }
    assert.ok(got.size >= 36, `echoed ${got.size}/40`)
    assert.ok([...got].every((d) => /^w\d+$/.test(d)), [...got].join())
    const big = new Uint8Array(s.datagrams.maxDatagramSize + 1)
    await assert.rejects(writer.write(big), { code: 'ERR_H3_DATAGRAM_TOO_LARGE' })
    s.close()
    await s.closed
  })

  test('stream resets and STOP_SENDING carry their codes both ways', async () => {
    const s = await client.webtransport(url('/wt/codes'))
    const entry = log[log.length - 1]
    // Client aborts its writable with 77: the server's read fails with 77.
    const a = await s.createBidirectionalStream()
    const aw = a.writable.getWriter()
    await aw.write(enc.encode('some bytes'))
    await aw.abort(new WebTransportError('client gave up', { streamErrorCode: 77 }))
    await waitFor(() => entry.events.length > 0)
    assert.deepEqual(entry.events[0], { aborted: 77, name: 'WebTransportError' })
    // The server cancels reading with 99: the client's writes fail with 99; its read with 98.
    const b = await s.createBidirectionalStream()
    const bw = b.writable.getWriter()
    const err = await (async () => {
      for (let i = 0; i < 200; i++) await bw.write(new Uint8Array(16 * 1024))
    })().then(() => null, (e) => e)
    assert.ok(err instanceof WebTransportError, String(err))
    assert.equal(err.streamErrorCode, 99)
    await assert.rejects(readAll(b.readable), (e) => e.streamErrorCode === 98)
    // A server uni stream reset with 5.
    const { value: u } = await s.incomingUnidirectionalStreams.getReader().read()
    await assert.rejects(readAll(u), (e) => e.streamErrorCode === 5)
    s.close()
    await s.closed
  })

  test('pipeTo between two WebTransport streams: preventClose, resets and STOP_SENDING pass through, a read first', async () => {
    const s = await client.webtransport(url('/wt/pipes'))
    const entry = log[log.length - 1]
    // 0: echoed whole (SHA-256 over 4 MiB), then the server's own tail after the pipe.
    const a = await s.createBidirectionalStream()
    const big = patternBytes(4 * 1024 * 1024)
    const echoed = readAll(a.readable)
    const aw = a.writable.getWriter()
    await aw.write(big)
    await aw.close()
    const got = await echoed
    assert.equal(got.length, big.length + 5)
    assert.equal(sha256(got.subarray(0, big.length)), sha256(big))
    assert.equal(dec.decode(got.subarray(big.length)), '|tail')
    await waitFor(() => entry.pipes[0])
    assert.equal(entry.pipes[0], 'ok')
    // 1: the client resets its side with 41: the pipe fails with 41 and resets ours with 41 too.
    const b = await s.createBidirectionalStream()
    const bw = b.writable.getWriter()
    await bw.write(enc.encode('x'))
    const bRead = readAll(b.readable).then(() => null, (e) => e)
    await bw.abort(new WebTransportError('client reset', { streamErrorCode: 41 }))
    await waitFor(() => entry.pipes[1])
    assert.deepEqual(entry.pipes[1], { code: 41, name: 'WebTransportError' })
    assert.equal((await bRead)?.streamErrorCode, 41)
    // 2: the client stops reading with 42: the pipe fails with 42 and stops the source with 42.
    const c = await s.createBidirectionalStream()
    await c.readable.cancel(new WebTransportError('client stop', { streamErrorCode: 42 }))
    const cw = c.writable.getWriter()
    const err = await (async () => {
      for (let i = 0; i < 400; i++) await cw.write(new Uint8Array(16 * 1024))
    })().then(() => null, (e) => e)
    assert.equal(err?.streamErrorCode, 42, String(err))
    await waitFor(() => entry.pipes[2])
    assert.deepEqual(entry.pipes[2], { code: 42, name: 'WebTransportError' })
    // 3: a read before the pipe: the standard pipe, everything back in order.
    const d = await s.createBidirectionalStream()
    const dw = d.writable.getWriter()
    const dEcho = readAll(d.readable)
    await dw.write(enc.encode('first'))
    await sleep(50)
    await dw.write(enc.encode('-second'))
    await dw.close()
    assert.equal(dec.decode(await dEcho), 'first-second')
    await waitFor(() => entry.pipes[3])
    assert.equal(entry.pipes[3], 'ok')
    s.close()
    await s.closed
  })

  test('several sessions on one connection, plus a 1000-datagram burst with loss accounting', async () => {
    const sessions = await Promise.all([1, 2, 3].map(() => client.webtransport(url('/wt/echo'))))
    const ids = new Set(log.slice(-3).map((e) => e.sessionId))
    assert.equal(ids.size, 3)
    await waitFor(() => server.getStats().webtransportSessionsActive === 3)
    // Each session's datagrams come back to that session only.
    await Promise.all(sessions.map(async (s, i) => {
      s.sendDatagram(enc.encode(`session ${i}`))
      const r = s.datagrams.readable.getReader()
      const { value } = await r.read()
      r.releaseLock()
      assert.equal(dec.decode(value), `session ${i}`)
    }))
    const s0 = server.getStats()
    const [s] = sessions
    const reader = s.datagrams.readable.getReader()
    let echoed = 0
    const counting = (async () => { for (;;) { const r = await reader.read(); if (r.done) return; echoed++ } })()
    for (let i = 0; i < 1000; i++) s.sendDatagram(new Uint8Array(100).fill(i & 0xff))
    await sleep(1500)
    const s1 = server.getStats()
    const rx = s1.datagramsReceived - s0.datagramsReceived
    const tx = s1.datagramsSent - s0.datagramsSent
    const dropped = s1.datagramsDropped - s0.datagramsDropped
    assert.ok(rx > 500 && rx <= 1000, `received ${rx}`)
    assert.equal(tx + dropped, rx, `sent ${tx} + dropped ${dropped} != received ${rx}`)
    assert.ok(echoed <= tx && echoed > 0, `echoed ${echoed} of ${tx}`)
    for (const x of sessions) x.close()
    await Promise.all(sessions.map((x) => x.closed))
    await counting
    await waitFor(() => server.getStats().webtransportSessionsActive === 0)
  })
})

describe('WebTransport: application protocols (WT-Available-Protocols / WT-Protocol)', () => {
  let server, client
  const log = []
  before(() => {
    server = serve({ routes: wtRoutes(log) })
    client = createH3Client({ tls: { serverCertificateHashes: [server.certificateHash] } })
  })
  after(async () => {
    await client.close()
    await server.stop(true)
  })
  const url = (p) => `https://127.0.0.1:${server.port}${p}`

  test('the client offers, the server picks one of them, both sessions report it', async () => {
    const offered = ['chat-v2', 'chat "quoted" \\ v1.5', 'chat-v1']
    const s = await client.webtransport(url('/wt/proto'), { protocols: offered })
    assert.equal(s.protocol, 'chat-v1')
    const entry = log.at(-1)
    assert.deepEqual(entry.offered, offered)
    assert.equal(entry.refused, 'ERR_H3_INVALID_ARG', 'accept() with a protocol not offered throws')
    assert.equal(entry.protocol, 'chat-v1')
    s.close()
    await s.closed
  })

  test('no offer: no protocol on either side', async () => {
    const s = await client.webtransport(url('/wt/proto'))
    assert.equal(s.protocol, '')
    assert.deepEqual(log.at(-1).offered, [])
    assert.equal(log.at(-1).protocol, '')
    s.close()
    await s.closed
  })

  test('our client against aioquic\'s server: its pick becomes session.protocol; a pick not offered fails', async () => {
    const cert = await makeCert()
    const srv = await spawnServer(python, [path.join(root, '__test__', 'py', 'h3server.py'), '--port', '0', '--cert', cert.cert, '--key', cert.key, '--webtransport'])
    const c = createH3Client({ tls: { ca: cert.certPem } })
    try {
      const base = `https://127.0.0.1:${srv.port}`
      const s = await c.webtransport(`${base}/wt/echo`, { protocols: ['moq-00', 'moq "draft" \\ 01'] })
      assert.equal(s.protocol, 'moq-00')
      const { readable, writable } = await s.createBidirectionalStream()
      const w = writable.getWriter()
      await w.write(enc.encode('still a session'))
      await w.close()
      assert.equal(dec.decode(await readAll(readable)), 'still a session')
      s.close()
      const quoted = await c.webtransport(`${base}/wt/echo?answer=${encodeURIComponent('moq \\"draft\\" \\\\ 01')}`, { protocols: ['moq-00', 'moq "draft" \\ 01'] })
      assert.equal(quoted.protocol, 'moq "draft" \\ 01')
      quoted.close()
      await assert.rejects(c.webtransport(`${base}/wt/echo?answer=not-offered`, { protocols: ['moq-00'] }), { name: 'WebTransportError', code: 'ERR_H3_WT_PROTOCOL' })
      const none = await c.webtransport(`${base}/wt/echo`)
      assert.equal(none.protocol, '')
      none.close()
    } finally {
      await c.close()
      await srv.kill()
    }
  })

  test('protocols must be distinct, non-empty printable ASCII strings', async () => {
    for (const protocols of [['a', 'a'], [''], ['é'], 'a', [1]]) {
      await assert.rejects(client.webtransport(url('/wt/proto'), { protocols }), { code: 'ERR_H3_INVALID_ARG' }, JSON.stringify(protocols))
    }
  })
})

describe('WebTransport: the connection going away', () => {
  test('client connection dies: the server session settles, streams and stats return to zero', async () => {
    const log = []
    const server = serve({ routes: wtRoutes(log) })
    const client = createH3Client({ tls: { rejectUnauthorized: false } })
    try {
      const s = await client.webtransport(`https://127.0.0.1:${server.port}/wt/echo`)
      const { writable } = await s.createBidirectionalStream()
      await writable.getWriter().write(enc.encode('pending'))
      await waitFor(() => server.getStats().webtransportStreamsActive >= 2)
      await client.close()
      await waitFor(() => log[0]?.closedError)
      assert.ok(log[0].closedError instanceof WebTransportError)
      assert.equal(log[0].closedError.source, 'session')
      await assert.rejects(s.closed, { source: 'session' })
      await waitFor(() => server.getStats().webtransportSessionsActive === 0 && server.getStats().webtransportStreamsActive === 0)
    } finally {
      await server.stop(true)
    }
  })

  test('graceful stop: sessions are told to drain, stop waits for them to close', async () => {
    const drained = []
    const server = serve({
      routes: [{
        pattern: '/wt',
        webtransport (s) {
          s.draining.then(() => {
            drained.push('server')
            s.close({ closeCode: 1, reason: 'going away' })
          })
        }
      }]
    })
    const client = createH3Client({ tls: { rejectUnauthorized: false } })
    try {
      const s = await client.webtransport(`https://127.0.0.1:${server.port}/wt`)
      s.draining.then(() => drained.push('client'))
      await server.stop()
      assert.deepEqual(await s.closed, { closeCode: 1, reason: 'going away' })
      await waitFor(() => drained.includes('server') && drained.includes('client'))
    } finally {
      await client.close()
      await server.stop(true)
    }
  })
})

describe('WebTransport: aioquic as the client', () => {
  let server
  const log = []
  before(() => { server = serve({ routes: wtRoutes(log) }) })
  after(() => server.stop(true))

  test('datagram echo, bidi and uni echo, server-opened stream, close capsule', async () => {
    const out = await aioquic(server, ['wt', '--path', '/wt/echo', '--datagrams', '20', '--datagram-interval-ms', '1',
      '--bidi-bytes', '300000', '--uni-bytes', '5000', '--server-bidi', '--close-code', '4242', '--close-reason', 'bye'])
    assert.equal(out.status, 200, JSON.stringify(out).slice(0, 600))
    assert.deepEqual(out.errors, [])
    assert.ok(out.datagrams.received >= 18 && out.datagrams.mismatched === 0, JSON.stringify(out.datagrams))
    assert.equal(out.bidi.recv_sha, out.bidi.sent_sha)
    assert.equal(out.bidi.recv_bytes, 300000)
    assert.equal(out.uni.recv_sha, out.uni.sent_sha)
    assert.equal(out.server_bidi.text, 'hello from server')
    assert.equal(out.close.server_fin, true)
    const entry = log.find((e) => e.closed?.closeCode === 4242)
    assert.ok(entry, JSON.stringify(log.map((e) => e.events)))
    assert.equal(entry.closed.reason, 'bye')
    await waitFor(() => entry.events.some((e) => e.serverBidiReply === 'reply:hello from server'))
    await waitFor(() => server.getStats().webtransportSessionsActive === 0)
  })

  test('server-initiated close and reject', async () => {
    const closed = await aioquic(server, ['wt', '--path', '/wt/close', '--expect-close'])
    assert.deepEqual(closed.close.received, { code: 7, reason: 'server-bye' })
    assert.equal(closed.close.fin, true)
    const rejected = await aioquic(server, ['wt', '--path', '/wt/reject'])
    assert.equal(rejected.status, 403)
  })

  test('streams naming no session are refused; the connection keeps serving', async () => {
    const REJECTED = 0x3994bd84 // WEBTRANSPORT_BUFFERED_STREAM_REJECTED
    for (const uni of [false, true]) {
      const hex = (uni ? '4054' : '4041') + '3c' + '68656c6c6f' // session 60 does not exist
      const out = await aioquic(server, ['raw-stream', '--hex', hex, ...(uni ? ['--uni'] : []), '--fin', '--followup-path', '/plain'])
      assert.ok(out.stop_sending === REJECTED || uni, JSON.stringify(out))
      assert.ok(!out.connection_closed, JSON.stringify(out))
      assert.equal(out.followup_status, 200)
    }
    assert.equal(server.getStats().webtransportStreamsActive, 0)
  })

  test('concurrent sessions on one connection', async () => {
    const out = await aioquic(server, ['wt', '--path', '/wt/echo', '--concurrent-sessions', '4'])
    assert.equal(out.ok_sessions, 4, JSON.stringify(out).slice(0, 800))
    assert.deepEqual(out.errors, [])
  })
})

// Safari (26.4+) cannot run here: aioquic plays its part as public reports describe it (README
// "Safari"): SETTINGS with the newer drafts' max-sessions and limits and without draft-02's
// ENABLE_WEBTRANSPORT, `:protocol = webtransport`, no sec-webtransport-http3-draft02 header.
// h3client.py --safari also checks our SETTINGS against what Safari is reported to require.
describe('WebTransport: a Safari-style handshake (aioquic --safari)', () => {
  let server
  const log = []
  before(() => { server = serve({ routes: wtRoutes(log) }) })
  after(() => server.stop(true))

  test('our SETTINGS carry what Safari needs; the session is accepted and served', async () => {
    const out = await aioquic(server, ['wt', '--safari', '--path', '/wt/echo', '--origin', 'https://example.test',
      '--datagrams', '20', '--datagram-interval-ms', '1', '--bidi-bytes', '100000', '--uni-bytes', '5000',
      '--server-bidi', '--close-code', '77', '--close-reason', 'safari bye'])
    assert.equal(out.status, 200, JSON.stringify(out).slice(0, 600))
    assert.deepEqual(out.errors, [])
    assert.equal(out.safari_would_refuse, null)
    const s = out.server_settings
    assert.equal(s['0xc671706a'], 16, 'draft-07 SETTINGS_WEBTRANSPORT_MAX_SESSIONS')
    assert.equal(s['0x14e9cd29'], 16, 'draft-13/14 SETTINGS_WT_MAX_SESSIONS')
    // The newer drafts' initial flow-control limits (draft-15 §5.5), enforced since draft-13 sessions got flow control.
    assert.equal(s['0x2b61'], 16 * 1024 * 1024, 'SETTINGS_WT_INITIAL_MAX_DATA')
    for (const id of ['0x2b64', '0x2b65']) assert.equal(s[id], 64, `${id} (initial max streams)`)
    assert.equal(s['0x2c7cf000'], 1, 'draft-15 SETTINGS_WT_ENABLED')
    assert.equal(s.ENABLE_WEBTRANSPORT, 1, 'draft-02 setting still there for Chromium and Firefox')
    assert.equal(s.H3_DATAGRAM, 1)
    assert.equal(s.ENABLE_CONNECT_PROTOCOL, 1)
    assert.ok(out.datagrams.received >= 18 && out.datagrams.mismatched === 0, JSON.stringify(out.datagrams))
    assert.equal(out.bidi.recv_sha, out.bidi.sent_sha)
    assert.equal(out.uni.recv_sha, out.uni.sent_sha)
    assert.equal(out.server_bidi.text, 'hello from server')
    const entry = log.find((e) => e.closed?.closeCode === 77)
    assert.ok(entry, JSON.stringify(log.map((e) => e.events)))
    assert.equal(entry.closed.reason, 'safari bye')
    assert.equal(entry.request.headers.get('origin'), 'https://example.test')
    assert.equal(entry.request.headers.get('sec-webtransport-http3-draft02'), null)
    await waitFor(() => entry.events.some((e) => e.serverBidiReply === 'reply:hello from server'))
    await waitFor(() => server.getStats().webtransportSessionsActive === 0)
  })

  test('server close and reject reach a Safari-style client', async () => {
    const closed = await aioquic(server, ['wt', '--safari', '--path', '/wt/close', '--expect-close'])
    assert.deepEqual(closed.close.received, { code: 7, reason: 'server-bye' })
    assert.equal(closed.close.fin, true)
    const rejected = await aioquic(server, ['wt', '--safari', '--path', '/wt/reject'])
    assert.equal(rejected.status, 403)
  })

  test('the check can fail: a server without WebTransport routes lacks what Safari needs', async () => {
    const plain = serve({ routes: { '/': { GET: () => new Response('no wt') } } })
    try {
      const out = await aioquic(plain, ['wt', '--safari', '--path', '/'])
      assert.match(out.safari_would_refuse ?? '', /no SETTINGS_WT_MAX_SESSIONS/, JSON.stringify(out).slice(0, 600))
    } finally {
      await plain.stop(true)
    }
  })
})
