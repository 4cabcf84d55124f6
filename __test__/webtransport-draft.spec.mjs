// The newer WebTransport drafts beside draft-02 on the same port (README "Browsers and
// drafts"): draft-15/16 (`webtransport-h3`, SETTINGS_WT_ENABLED) and the draft-13 dialect, with
// their session flow control. Peers: pywebtransport 0.8.1 (an independent implementation of the
// draft-13 dialect, __test__/py/pywt_peer.py), shiguredo_http3 (an independent draft-15/16
// implementation, as the `wt-peer` binary of __test__/peer-wt/, built by scripts/test.js), aioquic
// driven by h3client.py --draft15 (written here from the draft text), and our own client.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { serve, aioquic, waitFor, root, makeCert, python, readAll, each, spawnServer } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { createH3Client } = require(root)

const enc = new TextEncoder()
const dec = new TextDecoder()
const peerPy = path.join(root, '__test__', 'py', 'pywt_peer.py')

/** Whether the venv has pywebtransport (README "Testing": __test__/py/requirements.txt). */
const hasPywt = await new Promise((resolve) => {
  execFile(python, ['-c', 'import pywebtransport'], (err) => resolve(!err))
})
if (!hasPywt) console.error('webtransport-draft: pywebtransport missing from the venv; its cases skip (pip install -r __test__/py/requirements.txt)')

/** The shiguredo_http3 peer (`cargo build --release -p napi-h3-wt-peer`, done by scripts/test.js). */
const wtPeer = path.join(process.env.CARGO_TARGET_DIR || path.join(root, 'target'), 'release', 'wt-peer')
const hasWtPeer = existsSync(wtPeer)
if (!hasWtPeer) console.error(`webtransport-draft: ${wtPeer} missing; the independent draft-15 peer's cases SKIP (cargo build --release -p napi-h3-wt-peer --bin wt-peer)`)

function wtPeerClient (port, args = []) {
  return new Promise((resolve, reject) => {
    execFile(wtPeer, ['client', '--port', String(port), ...args], { timeout: 30000 }, (err, stdout, stderr) => {
      try { resolve(JSON.parse(stdout)) } catch { reject(new Error(`wt-peer client failed: ${err?.message}\n${stderr}\n${stdout}`)) }
    })
  })
}

function pywtClient (port, args = []) {
  return new Promise((resolve, reject) => {
    execFile(python, [peerPy, 'client', '--port', String(port), ...args], { timeout: 40000 }, (err, stdout, stderr) => {
      try { resolve(JSON.parse(stdout)) } catch { reject(new Error(`pywt_peer client failed: ${err?.message}\n${stderr}\n${stdout}`)) }
    })
  })
}

/** The echo protocol of webtransport.spec.mjs, recording the session's draft. */
function echoSession (session, log) {
  const entry = { draft: session.draft, request: session.request, events: [] }
  log.push(entry)
  const ev = (e) => entry.events.push(e)
  each(session.datagrams.readable, (d) => session.sendDatagram(d)).catch((e) => ev({ datagramsError: String(e) }))
  each(session.incomingBidirectionalStreams, ({ readable, writable }) => readable.pipeTo(writable)).catch((e) => ev({ bidiError: String(e) }))
  each(session.incomingUnidirectionalStreams, async (readable) => {
    const data = await readAll(readable)
    ev({ uni: data.length })
    const w = (await session.createUnidirectionalStream()).getWriter()
    await w.write(data)
    await w.close()
  }).catch((e) => ev({ uniError: String(e) }))
  session.createBidirectionalStream().then(async ({ readable, writable }) => {
    const w = writable.getWriter()
    await w.write(enc.encode('hello from server'))
    await w.close()
    ev({ serverBidiReply: dec.decode(await readAll(readable)) })
  }).catch((e) => ev({ serverBidiError: String(e) }))
  session.closed.then((info) => { entry.closed = info }, (e) => { entry.closedError = e })
}

/**
 * Our client's half of an echo session: a datagram, a 200 kB bidirectional stream and a
 * unidirectional stream (`uniText`), each checked when it comes back.
 */
async function clientEchoes (s, uniText) {
  const dw = s.datagrams.writable.getWriter()
  const dr = s.datagrams.readable.getReader()
  await dw.write(enc.encode('ping'))
  assert.equal(dec.decode((await dr.read()).value), 'ping')
  const bidi = await s.createBidirectionalStream()
  const body = new Uint8Array(200000).map((_, i) => i % 251)
  const bw = bidi.writable.getWriter()
  await bw.write(body)
  await bw.close()
  assert.deepEqual(await readAll(bidi.readable), body)
  const uw = (await s.createUnidirectionalStream()).getWriter()
  await uw.write(enc.encode(uniText))
  await uw.close()
  const back = await s.incomingUnidirectionalStreams.getReader().read()
  assert.equal(dec.decode(await readAll(back.value)), uniText)
}

function routes (log) {
  return [
    { pattern: '/wt/echo', webtransport: (s) => echoSession(s, log) },
    {
      pattern: '/wt/close',
      webtransport (s) {
        log.push({ draft: s.draft, closing: true })
        s.accept()
        s.close({ closeCode: 7, reason: 'server-bye' })
      }
    },
    {
      // Accepts the session and never takes a stream: only the window's worth may come.
      pattern: '/wt/idle',
      webtransport (s) {
        const entry = { draft: s.draft, events: [] }
        log.push(entry)
        s.accept()
        s.closed.then((info) => { entry.closed = info }, (e) => { entry.closedError = e })
      }
    },
    {
      // Takes every stream it is given, reads it to the end, and counts.
      pattern: '/wt/count',
      webtransport (s) {
        const entry = { draft: s.draft, uni: 0 }
        log.push(entry)
        each(s.incomingUnidirectionalStreams, async (r) => { await readAll(r); entry.uni++ }).catch(() => {})
      }
    }
  ]
}

describe('WebTransport newer drafts: our server', () => {
  let server
  const log = []
  before(() => { server = serve({ routes: routes(log) }) })
  after(() => server.stop(true))

  test('draft-15 (aioquic --draft15): webtransport-h3 accepted, SETTINGS_WT_ENABLED sent, echoes and close code', async () => {
    const out = await aioquic(server, ['wt', '--draft15', '--path', '/wt/echo', '--datagrams', '10', '--datagram-interval-ms', '1',
      '--bidi-bytes', '100000', '--uni-bytes', '5000', '--server-bidi', '--close-code', '15', '--close-reason', 'draft15 bye'])
    assert.equal(out.status, 200, JSON.stringify(out).slice(0, 800))
    assert.deepEqual(out.errors, [])
    assert.equal(out.server_settings['0x2c7cf000'], 1, 'SETTINGS_WT_ENABLED')
    assert.equal(out.server_settings['0x2b64'], 64, 'SETTINGS_WT_INITIAL_MAX_STREAMS_UNI')
    assert.equal(out.server_settings['0x2b61'], 16 * 1024 * 1024, 'SETTINGS_WT_INITIAL_MAX_DATA')
    assert.equal(out.bidi.recv_sha, out.bidi.sent_sha)
    assert.equal(out.uni.recv_sha, out.uni.sent_sha)
    assert.ok(out.datagrams.received >= 8, JSON.stringify(out.datagrams))
    assert.equal(out.server_bidi.text, 'hello from server')
    const entry = log.find((e) => e.closed?.closeCode === 15)
    assert.ok(entry, JSON.stringify(log))
    assert.equal(entry.draft, 'draft15')
    assert.equal(entry.closed.reason, 'draft15 bye')
    // h3 saw `webtransport`, JS sees the request as sent apart from the token.
    assert.equal(entry.request.headers.get('sec-webtransport-http3-draft02'), null)
  })

  test('one port, three dialects: the draft header answers draft-02 only; our close reaches a draft-15 peer', async () => {
    const header = (out, name) => out.response_headers.find(([k]) => k === name)?.[1] ?? null
    const d02 = await aioquic(server, ['wt', '--path', '/wt/close', '--expect-close'])
    const d13 = await aioquic(server, ['wt', '--safari', '--path', '/wt/close', '--expect-close'])
    const d15 = await aioquic(server, ['wt', '--draft15', '--path', '/wt/close', '--expect-close'])
    assert.equal(header(d02, 'sec-webtransport-http3-draft'), 'draft02')
    assert.equal(header(d13, 'sec-webtransport-http3-draft'), null)
    assert.equal(header(d15, 'sec-webtransport-http3-draft'), null)
    for (const out of [d02, d13, d15]) assert.deepEqual(out.close.received, { code: 7, reason: 'server-bye' }, JSON.stringify(out).slice(0, 600))
    assert.deepEqual(log.filter((e) => e.closing).map((e) => e.draft), ['draft02', 'draft13', 'draft15'])
  })

  test('draft-15: a peer opening more streams than WT_MAX_STREAMS allows is closed with WT_FLOW_CONTROL_ERROR', async () => {
    const before = log.length
    const out = await aioquic(server, ['wt', '--draft15', '--path', '/wt/idle', '--flood-uni', '65'])
    assert.equal(out.status, 200, JSON.stringify(out).slice(0, 800))
    assert.equal(out.flood.connect_reset, 0x045d4487, JSON.stringify(out.flood))
    const entry = log.slice(before).find((e) => e.draft === 'draft15')
    await waitFor(() => entry.closedError !== undefined)
    assert.equal(entry.closedError.source, 'session')
    // 64 (the window) is within the limit.
    const ok = await aioquic(server, ['wt', '--draft15', '--path', '/wt/idle', '--flood-uni', '64', '--timeout', '2'])
    assert.equal(ok.flood.connect_reset, null, JSON.stringify(ok.flood))
    await waitFor(() => server.getStats().webtransportSessionsActive === 0)
  })

  test('draft-15: what we send stays within the peer\'s WT_MAX_DATA', async () => {
    // The peer allows 1000 bytes of stream data and never raises it: our echo of its 5000-byte
    // uni stream (and our 17-byte "hello from server") must stop at 1000 bytes in all.
    const out = await aioquic(server, ['wt', '--draft15', '--initial-max-data', '1000', '--path', '/wt/echo',
      '--uni-bytes', '5000', '--server-bidi', '--timeout', '2'])
    assert.equal(out.status, 200, JSON.stringify(out).slice(0, 800))
    const got = out.uni.recv_bytes + (out.server_bidi.text?.length ?? 0)
    assert.ok(out.uni.recv_bytes > 0 && got <= 1000, JSON.stringify({ uni: out.uni, serverBidi: out.server_bidi }))
    assert.equal(out.uni.fin, false)
    // §5.6.5: held back, we say so, once, with the limit: WT_DATA_BLOCKED(1000).
    const blocked = out.capsules.filter((c) => c.name === 'WT_DATA_BLOCKED')
    assert.deepEqual(blocked.map((c) => c.value), [1000], JSON.stringify(out.capsules))
  })

  test('draft-15: held at the peer\'s WT_MAX_STREAMS, we send WT_STREAMS_BLOCKED', async () => {
    // The peer allows 1 uni stream from us and never raises it; /wt/echo answers each of its two
    // uni streams with one of ours: the second waits, and we say so (§5.6.3).
    const out = await aioquic(server, ['wt', '--draft15', '--initial-max-streams-uni', '1', '--path', '/wt/echo',
      '--flood-uni', '2', '--timeout', '1'])
    assert.equal(out.status, 200, JSON.stringify(out).slice(0, 800))
    const blocked = out.capsules.filter((c) => c.name?.startsWith('WT_STREAMS_BLOCKED'))
    assert.deepEqual(blocked.map((c) => [c.name, c.value]), [['WT_STREAMS_BLOCKED_UNI', 1]], JSON.stringify(out.capsules))
  })

  test('draft-13 dialect from an independent peer (pywebtransport): echoes, server streams, clean close', { skip: !hasPywt && 'pywebtransport missing' }, async () => {
    const before = log.length
    const out = await pywtClient(server.port, ['--close-code', '13', '--close-reason', 'py bye'])
    assert.equal(out.fatal, undefined, JSON.stringify(out))
    assert.deepEqual(out.errors, [])
    assert.equal(out.datagram, 'dgram-1')
    assert.equal(out.bidi.recv, out.bidi.sent)
    assert.equal(out.bidi.len, 100000)
    assert.equal(out.uni.recv, out.uni.sent)
    assert.equal(out.server_bidi, 'hello from server')
    const entry = log.slice(before).find((e) => e.draft === 'draft13')
    assert.ok(entry, JSON.stringify(log.slice(before)))
    await waitFor(() => entry.closed !== undefined || entry.closedError !== undefined)
    // pywebtransport 0.8.1 writes its CLOSE capsule outside a DATA frame (pywt_peer.py): h3
    // skips it as an unknown frame type and the FIN alone ends the session, cleanly, code 0.
    assert.deepEqual(entry.closed, { closeCode: 0, reason: '' })
    await waitFor(() => entry.events.some((e) => e.serverBidiReply === 'reply:hello from server'))
  })

  test('draft-15 from an independent implementation (shiguredo_http3 wt-peer): echoes, server-opened stream, its close code', { skip: !hasWtPeer && 'wt-peer not built' }, async () => {
    const before = log.length
    const out = await wtPeerClient(server.port, ['--path', '/wt/echo', '--datagrams', '10', '--bidi-bytes', '100000',
      '--uni-bytes', '5000', '--server-bidi', '--close-code', '21', '--close-reason', 'wt-peer bye'])
    assert.equal(out.status, '200', JSON.stringify(out).slice(0, 800))
    assert.deepEqual(out.errors, [])
    // It read our SETTINGS as draft-15 (SETTINGS_WT_ENABLED = 1) with the initial limits.
    assert.equal(out.serverDraft, 'Some(Draft15)')
    assert.equal(out.serverWtEnabled, 1)
    assert.equal(out.serverInitialMaxData, 16 * 1024 * 1024)
    assert.equal(out.serverInitialMaxStreamsUni, 64)
    assert.equal(out.serverInitialMaxStreamsBidi, 64)
    assert.ok(out.datagrams.received >= 8, JSON.stringify(out.datagrams))
    assert.deepEqual(out.bidi, { sent: 100000, received: 100000, equal: true, fin: true })
    assert.deepEqual(out.uni, { sent: 5000, received: 5000, equal: true, fin: true })
    assert.equal(out.serverBidi, 'hello from server')
    const entry = log.slice(before).find((e) => e.request)
    assert.equal(entry?.draft, 'draft15', JSON.stringify(log.slice(before)))
    assert.equal(entry.request.headers.get('origin'), `https://localhost:${server.port}`)
    await waitFor(() => entry.closed !== undefined || entry.closedError !== undefined)
    assert.deepEqual(entry.closed, { closeCode: 21, reason: 'wt-peer bye' })
    await waitFor(() => entry.events.some((e) => e.serverBidiReply === 'hello from wt-peer'))
    assert.deepEqual(entry.events.filter((e) => /Error/.test(Object.keys(e)[0])), [])
  })

  test('draft-15 flow control with shiguredo_http3: its 1000-byte WT_MAX_DATA, raised as it reads, carries our 105 KB; we say where we are blocked', { skip: !hasWtPeer && 'wt-peer not built' }, async () => {
    const out = await wtPeerClient(server.port, ['--path', '/wt/echo', '--bidi-bytes', '100000', '--uni-bytes', '5000',
      '--initial-max-data', '1000', '--close-code', '4', '--close-reason', 'fc'])
    assert.deepEqual(out.errors, [])
    assert.deepEqual(out.bidi, { sent: 100000, received: 100000, equal: true, fin: true })
    assert.deepEqual(out.uni, { sent: 5000, received: 5000, equal: true, fin: true })
    // WT_DATA_BLOCKED at each limit it set, first at its initial 1000, never twice at one (§5.6.5).
    const limits = out.capsules.map((c) => Number(/^DataBlocked \{ maximum: (\d+) \}$/.exec(c)?.[1]))
    assert.equal(limits[0], 1000, JSON.stringify(out.capsules.slice(0, 5)))
    assert.ok(limits.every((l, i) => l > (limits[i - 1] ?? 0)), JSON.stringify(out.capsules))
  })

  test('draft-15, shiguredo_http3: our CLOSE capsule is the last thing on the CONNECT stream (§6)', { skip: !hasWtPeer && 'wt-peer not built' }, async () => {
    // Twice: the first session of a connection is its first request stream, the one h3 would
    // end with a reserved frame after our capsule (which the peer must refuse, §6).
    for (let i = 0; i < 2; i++) {
      const out = await wtPeerClient(server.port, ['--path', '/wt/close', '--expect-close', '--split-connect'])
      assert.equal(out.status, '200', JSON.stringify(out).slice(0, 800))
      assert.deepEqual(out.closed, { code: 7, reason: 'server-bye', streamErrorCode: 0x170d7b68 })
      assert.deepEqual(out.errors, [])
    }
  })

  test('our client picks draft-15 from our SETTINGS; WT_MAX_STREAMS keeps 150 streams going past the window of 64', async () => {
    const client = createH3Client({ tls: { serverCertificateHashes: [server.certificateHash] } })
    try {
      const s = await client.webtransport(`https://127.0.0.1:${server.port}/wt/count`)
      assert.equal(s.draft, 'draft15')
      const entry = log.at(-1)
      assert.equal(entry.draft, 'draft15')
      for (let i = 0; i < 150; i++) {
        const w = (await s.createUnidirectionalStream()).getWriter()
        await w.write(enc.encode(`stream ${i}`))
        await w.close()
      }
      await waitFor(() => entry.uni === 150)
      s.close({ closeCode: 1, reason: 'done' })
      await s.closed
    } finally {
      await client.close()
    }
  })
})

describe('WebTransport newer drafts: our client against pywebtransport', { skip: !hasPywt && 'pywebtransport missing' }, () => {
  let peer, port, cert
  const lines = []
  before(async () => {
    cert = await makeCert()
    peer = spawn(python, [peerPy, 'server', '--cert', cert.cert, '--key', cert.key], { stdio: ['ignore', 'pipe', 'inherit'] })
    const rl = createInterface({ input: peer.stdout })
    rl.on('line', (l) => { try { lines.push(JSON.parse(l)) } catch {} })
    await waitFor(() => lines.some((l) => l.port), { timeout: 20000 })
    port = lines.find((l) => l.port).port
  })
  after(() => { peer?.kill() })

  test('draft-13 chosen from its SETTINGS; datagram, bidi and uni echo; its close ends our session', async () => {
    const { createHash } = await import('node:crypto')
    const hash = createHash('sha256').update(Buffer.from(cert.certPem.split('\n').filter((l) => !l.startsWith('-----')).join(''), 'base64')).digest()
    const client = createH3Client({ tls: { serverCertificateHashes: [hash] } })
    try {
      // Its close capsule is unframed (see above): the FIN closes the session, code 0. First: our
      // CLOSE capsule (in a DATA frame, as RFC 9297 has it) makes pywebtransport close the
      // whole connection with H3_FRAME_UNEXPECTED, which the pooled connection would not survive.
      const c = await client.webtransport(`https://127.0.0.1:${port}/close`)
      assert.equal(c.draft, 'draft13')
      assert.deepEqual(await c.closed, { closeCode: 0, reason: '' })

      const s = await client.webtransport(`https://127.0.0.1:${port}/echo`)
      assert.equal(s.draft, 'draft13')
      await clientEchoes(s, 'uni to py')
      s.close({ closeCode: 5, reason: 'node bye' })
      await s.closed
      await waitFor(() => lines.some((l) => l.stream === 'bidi' && l.len === 200000) && lines.some((l) => l.stream === 'uni'))
    } finally {
      await client.close()
    }
  })
})

describe('WebTransport draft-15: our client against shiguredo_http3 (wt-peer server)', { skip: !hasWtPeer && 'wt-peer not built' }, () => {
  let peer, port, hash
  const lines = []
  before(async () => {
    peer = spawn(wtPeer, ['server'], { stdio: ['ignore', 'pipe', 'inherit'] })
    const rl = createInterface({ input: peer.stdout })
    rl.on('line', (l) => { try { lines.push(JSON.parse(l)) } catch {} })
    await waitFor(() => lines.some((l) => l.port), { timeout: 20000 })
    const first = lines.find((l) => l.port)
    port = first.port
    hash = Buffer.from(first.certHash, 'hex')
  })
  after(() => { peer?.kill() })

  test('draft-15 and WT-Protocol chosen; datagram, bidi, uni echo; its stream; close codes both ways', async () => {
    const client = createH3Client({ tls: { serverCertificateHashes: [hash] } })
    try {
      const s = await client.webtransport(`https://127.0.0.1:${port}/echo`, { protocols: ['chat-v2', 'chat-v1'] })
      assert.equal(s.draft, 'draft15')
      assert.equal(s.protocol, 'chat-v2')
      await waitFor(() => lines.some((l) => l.event === 'session' && l.path === '/echo'))
      const opened = lines.find((l) => l.event === 'session' && l.path === '/echo')
      assert.equal(opened.protocol, 'webtransport-h3')
      assert.deepEqual(opened.offered, ['chat-v2', 'chat-v1'])

      await clientEchoes(s, 'uni to wt-peer')

      // The stream it opened when the session began.
      const { value: theirs } = await s.incomingBidirectionalStreams.getReader().read()
      assert.equal(dec.decode(await readAll(theirs.readable)), 'hello from wt-peer server')
      const tw = theirs.writable.getWriter()
      await tw.write(enc.encode('reply from napi-h3'))
      await tw.close()
      await waitFor(() => lines.some((l) => l.event === 'serverBidiReply'))
      assert.equal(lines.find((l) => l.event === 'serverBidiReply').text, 'reply from napi-h3')

      s.close({ closeCode: 5, reason: 'node bye' })
      assert.deepEqual(await s.closed, { closeCode: 5, reason: 'node bye' })
      await waitFor(() => lines.some((l) => l.event === 'closed' && l.path === '/echo'))
      const closed = lines.find((l) => l.event === 'closed' && l.path === '/echo')
      assert.equal(closed.code, 5)
      assert.equal(closed.reason, 'node bye')

      // Its close reaches us, on a second session of the same connection.
      const c = await client.webtransport(`https://127.0.0.1:${port}/close`)
      assert.equal(c.draft, 'draft15')
      assert.equal(c.protocol, '')
      assert.deepEqual(await c.closed, { closeCode: 7, reason: 'server-bye' })
      assert.deepEqual(lines.filter((l) => l.event === 'error' || l.event === 'reset'), [])
    } finally {
      await client.close()
    }
  })
})

describe('WebTransport: a failed application protocol negotiation', () => {
  test('a WT-Protocol malformed or not offered: ERR_H3_WT_PROTOCOL, and the CONNECT stream reset with WT_ALPN_ERROR', async () => {
    const cert = await makeCert()
    const srv = await spawnServer(python, [path.join(root, '__test__', 'py', 'h3server.py'), '--port', '0', '--cert', cert.cert, '--key', cert.key, '--webtransport'])
    const c = createH3Client({ tls: { ca: cert.certPem } })
    try {
      const base = `https://127.0.0.1:${srv.port}`
      // h3server.py answers ?answer=X with the String "X": one not offered, then one that breaks
      // out of its quotes ("x" junk: not a String).
      for (const answer of ['moq-01', 'x" junk']) {
        await assert.rejects(c.webtransport(`${base}/wt/echo?answer=${encodeURIComponent(answer)}`, { protocols: ['moq-00'] }),
          { name: 'WebTransportError', code: 'ERR_H3_WT_PROTOCOL' }, answer)
      }
      // An offered answer still works on the same connection.
      const ok = await c.webtransport(`${base}/wt/echo?answer=moq-00`, { protocols: ['moq-00'] })
      assert.equal(ok.protocol, 'moq-00')
      ok.close()
      // draft-16 §3.3: the failed ones were closed with WT_ALPN_ERROR.
      const resets = await waitFor(async () => {
        const log = await (await c.fetch(`${base}/wt/log`)).json()
        const r = log.filter((e) => e.event === 'session_reset')
        return r.length >= 2 && r
      })
      assert.deepEqual(resets.map((e) => e.code), [0x0817b3dd, 0x0817b3dd])
    } finally {
      await c.close()
      await srv.kill()
    }
  })
})
