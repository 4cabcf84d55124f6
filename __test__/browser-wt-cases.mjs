// The WebTransport cases every browser runs (./browser-webtransport.spec.mjs for Chromium,
// ./browser-webtransport-firefox.spec.mjs for Firefox): a page served over HTTP/1.1 from 127.0.0.1 (a
// secure context: loopback) opens sessions to our server with `new WebTransport(url, {
// serverCertificateHashes })` and the hash from `server.certificateHash` as the only trust there is.
// webTransportSuites({ name, skip, launch, launchForFetch, closesOnTeardown }) declares the suites:
// launch() starts a browser with no QUIC or certificate settings at all; launchForFetch(server) one
// that also fetches over HTTP/3 from that server (group (i)). Both return ./browser.mjs's page API
// (goto, evaluate, newPage, close). closesOnTeardown: false for a browser that keeps a session open
// after its page is gone (see afterTeardown). slowStart: ms added to each suite's time limit for a
// browser slow to start.
import { describe, test, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, X509Certificate } from 'node:crypto'
import { serve, waitFor } from './helpers.mjs'
import { startPageServer } from './browser.mjs'

// ---------------------------------------------------------------------------------------------
// The page: a few helpers as `window.T`, used by the evaluated snippets below.
const pageHtml = `<!doctype html><meta charset="utf-8"><title>napi-h3 WebTransport test</title><p>napi-h3 WebTransport
<script>
window.T = {
  enc: new TextEncoder(),
  dec: new TextDecoder(),
  sessions: [],
  // Every wait in the page is bounded, with a message that says which one ran out.
  within (p, ms, what) {
    let t
    return Promise.race([p, new Promise((resolve, reject) => { t = setTimeout(() => reject(new Error(what + ': timed out after ' + ms + ' ms')), ms) })])
      .finally(() => clearTimeout(t))
  },
  // A session trusted by exactly this certificate hash (an array of 32 byte values).
  connect (url, hash) {
    const wt = new WebTransport(url, { serverCertificateHashes: [{ algorithm: 'sha-256', value: new Uint8Array(hash) }] })
    wt.ready.catch(() => {})
    wt.closed.catch(() => {})
    T.sessions.push(wt)
    return wt
  },
  async open (url, hash) {
    const wt = T.connect(url, hash)
    await T.within(wt.ready, 5000, 'WebTransport ready ' + url)
    return wt
  },
  pattern (n, seed = 0) {
    const b = new Uint8Array(n)
    for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) % 251
    return b
  },
  async sha (bytes) {
    return Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('')
  },
  async readAll (readable, what = 'stream') {
    const r = readable.getReader()
    const parts = []
    let n = 0
    for (;;) {
      const { value, done } = await T.within(r.read(), 8000, 'reading ' + what)
      if (done) break
      parts.push(value)
      n += value.byteLength
    }
    const out = new Uint8Array(n)
    let off = 0
    for (const p of parts) { out.set(p, off); off += p.byteLength }
    return out
  },
  async writeAll (writable, bytes, chunk = 16384) {
    const w = writable.getWriter()
    for (let off = 0; off < bytes.byteLength; off += chunk) await w.write(bytes.subarray(off, off + chunk))
    await w.close()
  },
  // Settles to a plain object, whichever way the promise goes.
  outcome (p, ms, what) {
    return T.within(p, ms, what).then((v) => ({ ok: true, value: v ?? null }), (e) => ({ ok: false, name: e.name, message: e.message, source: e.source ?? null }))
  }
}
</script>`

// ---------------------------------------------------------------------------------------------
// Server side: every session is tracked under the `t` query parameter of its URL.
const sessions = new Map()
const sha256 = (b) => createHash('sha256').update(b).digest('hex')
const withinMs = (p, ms, what) => {
  let t
  return Promise.race([p, new Promise((resolve, reject) => { t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms) })])
    .finally(() => clearTimeout(t))
}

function track (session) {
  const url = new URL(session.request.url)
  const rec = {
    tag: url.searchParams.get('t'),
    session,
    path: url.pathname,
    method: session.request.method,
    origin: session.request.headers.get('origin'),
    sessionId: session.sessionId,
    datagrams: 0,
    maxDatagramSize: null,
    bidi: [],
    uni: [],
    errors: [],
    closed: null // { ok: true, closeCode, reason } or { ok: false, name, source }
  }
  sessions.set(rec.tag, rec)
  return rec
}

/** Watches session.closed (which, read first, also accepts the session). */
function watchClosed (session, rec) {
  rec.closedPromise = session.closed.then(
    (info) => { rec.closed = { ok: true, ...info } },
    (e) => { rec.closed = { ok: false, name: e.name, source: e.source, message: e.message } })
  return rec.closedPromise
}

/** Calls fn for each value of a ReadableStream until it ends or errors. */
async function each (readable, fn, rec) {
  const r = readable.getReader()
  try {
    for (;;) {
      const { value, done } = await r.read()
      if (done) return
      fn(value)
    }
  } catch (e) {
    // The session ending errors the incoming queues; only a live session's errors matter.
    if (!rec.closed) rec.errors.push(`${e.name}: ${e.message}`)
  }
}

async function readAll (readable) {
  const parts = []
  const r = readable.getReader()
  for (;;) {
    const { value, done } = await r.read()
    if (done) return Buffer.concat(parts)
    parts.push(value)
  }
}

/** A pass-through that hashes what flows by; `result()` once flushed. */
function hashTap () {
  const h = createHash('sha256')
  let length = 0
  let result = null
  const stream = new TransformStream({
    transform (chunk, c) { h.update(chunk); length += chunk.byteLength; c.enqueue(chunk) },
    flush () { result = { length, sha: h.digest('hex') } }
  })
  return { stream, result: () => result }
}

const routes = [
  {
    // A plain route; it says how many WebTransport sessions were live when it ran.
    pattern: '/hello',
    fetch: (req, srv) => new Response('hello from napi-h3', {
      headers: { 'access-control-allow-origin': '*', 'timing-allow-origin': '*', 'access-control-expose-headers': 'x-wt-active', 'x-wt-active': String(active(srv)) }
    })
  },
  {
    // Echo: datagrams back as they come, bidi streams piped back, uni streams read whole and sent
    // back on a server-initiated uni stream.
    pattern: '/wt/echo',
    async webtransport (session) {
      const rec = track(session)
      const closed = watchClosed(session, rec)
      rec.maxDatagramSize = session.datagrams.maxDatagramSize
      each(session.datagrams.readable, (d) => { rec.datagrams++; session.sendDatagram(d) }, rec)
      each(session.incomingBidirectionalStreams, ({ readable, writable }) => {
        const tap = hashTap()
        readable.pipeThrough(tap.stream).pipeTo(writable).then(() => rec.bidi.push(tap.result()), (e) => rec.errors.push(`bidi: ${e}`))
      }, rec)
      each(session.incomingUnidirectionalStreams, async (readable) => {
        try {
          const bytes = await readAll(readable)
          rec.uni.push({ length: bytes.length, sha: sha256(bytes), head: bytes.subarray(0, 32).toString('latin1') })
          const w = (await session.createUnidirectionalStream()).getWriter()
          await w.write(bytes)
          await w.close()
        } catch (e) { rec.errors.push(`uni: ${e}`) }
      }, rec)
      await closed
    }
  },
  {
    // The server opens a bidi stream, says hello, and records the page's reply.
    pattern: '/wt/push',
    async webtransport (session) {
      const rec = track(session)
      const closed = watchClosed(session, rec)
      try {
        const { readable, writable } = await session.createBidirectionalStream()
        const w = writable.getWriter()
        await w.write(new TextEncoder().encode('hello from the server'))
        await w.close()
        rec.reply = (await readAll(readable)).toString()
        const uni = (await session.createUnidirectionalStream()).getWriter()
        await uni.write(new TextEncoder().encode('pushed on a uni stream'))
        await uni.close()
        rec.pushedUni = true
      } catch (e) { rec.errors.push(`push: ${e}`) }
      await closed
    }
  },
  {
    // Closes the session with the code and reason the page sends on a bidi stream ("code reason").
    pattern: '/wt/close-me',
    async webtransport (session) {
      const rec = track(session)
      const closed = watchClosed(session, rec)
      try {
        const { value } = await session.incomingBidirectionalStreams.getReader().read()
        const text = (await readAll(value.readable)).toString()
        const [code, ...reason] = text.split(' ')
        rec.asked = text
        session.close({ closeCode: Number(code), reason: reason.join(' ') })
      } catch (e) { rec.errors.push(`close-me: ${e}`) }
      await closed
    }
  },
  {
    pattern: '/wt/reject',
    webtransport (session) {
      const rec = track(session)
      session.reject(403)
      rec.rejected = true
      watchClosed(session, rec)
    }
  },
  {
    // Accepts with the last protocol offered (the page's least preferred: the choice is ours).
    pattern: '/wt/proto',
    webtransport (session) {
      const rec = track(session)
      rec.offered = session.availableProtocols
      const pick = session.availableProtocols.at(-1)
      session.accept(pick === undefined ? {} : { protocol: pick })
      rec.protocol = session.protocol
      watchClosed(session, rec)
    }
  },
  {
    // Holds the session open until the page goes.
    pattern: '/wt/hold',
    async webtransport (session) {
      const rec = track(session)
      await watchClosed(session, rec)
    }
  }
]

const active = (server) => server.getStats().webtransportSessionsActive
const settle = (rec, ms = 8000) => withinMs(rec.closedPromise, ms, `server session.closed (${rec.tag})`)
const sessionFor = (tag) => waitFor(() => sessions.get(tag), { timeout: 5000 }).catch(() => { throw new Error(`the server saw no session for t=${tag}`) })

export function webTransportSuites ({ name, skip, launch, launchForFetch, closesOnTeardown = true, slowStart = 0 }) {
  /**
   * After the page that held `rec`'s session went away: the browser ends the session itself
   * (closesOnTeardown), or, for a browser known to keep it (Firefox 153 sends nothing when the
   * document goes, and keeps the connection alive), it is still open 2 s later and our server
   * closes it: the close must still reach the browser's side and settle both gauges.
   */
  async function afterTeardown (rec, what) {
    if (closesOnTeardown) {
      await settle(rec)
    } else {
      const alone = await settle(rec, 2000).then(() => true, () => false)
      assert.equal(alone, false, `${name} ended the session itself after ${what}: set closesOnTeardown (and update the README)`)
      console.log(`# ${name} kept the session open after ${what} (known); the server closes it`)
      rec.session.close({ closeCode: 7, reason: 'orphaned' })
      await settle(rec)
      assert.deepEqual(rec.closed, { ok: true, closeCode: 7, reason: 'orphaned' })
    }
  }

  describe(`${name} WebTransport (serverCertificateHashes, no flags)`, { skip, timeout: 60000 + slowStart }, () => {
    let server, page, browser, base, hash

    before(async () => {
      server = serve({ routes })
      base = `https://127.0.0.1:${server.port}`
      hash = JSON.stringify(Array.from(server.certificateHash))
      page = await startPageServer(pageHtml)
      browser = await launch() // no QUIC or certificate flags, prefs or exceptions
      await browser.goto(page.url)
    })

    after(async () => {
      await browser?.close()
      await page?.close()
      await server?.stop(true)
    })

    afterEach(async () => {
    // Whatever a test did, the page's sessions go, and the server's gauge returns to 0.
      await browser?.evaluate('Promise.all(T.sessions.splice(0).map((wt) => { try { wt.close() } catch {} return wt.closed.catch(() => {}) }))', { timeout: 5000 }).catch(() => {})
      if (server) await waitFor(() => active(server) === 0, { timeout: 5000 }).catch(() => { throw new Error(`webtransportSessionsActive stayed at ${active(server)}`) })
    })

    // Runs an async function body in the page, with `base` (the server's origin) and `hash` in scope.
    const inPage = (body, target = browser, timeout = 15000) =>
      target.evaluate(`(async () => { const base = ${JSON.stringify(base)}; const hash = ${hash}; ${body} })()`, { timeout })

    test('the certificate fits serverCertificateHashes: ECDSA P-256, valid < 14 days, SHA-256 of the DER', () => {
      assert.equal(server.certificateHash.length, 32)
      const cert = new X509Certificate(server.certificatePem)
      assert.equal(sha256(cert.raw), Buffer.from(server.certificateHash).toString('hex'))
      assert.equal(cert.publicKey.asymmetricKeyType, 'ec')
      assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve ?? 'prime256v1', 'prime256v1')
      const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86400e3
      assert.ok(days > 0 && days < 14, `valid for ${days} days`)
    })

    test('(a) datagrams: several sent, all echoed back', async () => {
      const stats = server.getStats()
      const r = await inPage(`
      const wt = await T.open(base + '/wt/echo?t=a', hash)
      const max = wt.datagrams.maxDatagramSize
      const writer = wt.datagrams.writable.getWriter()
      const reader = wt.datagrams.readable.getReader()
      const want = []
      for (let i = 0; i < 20; i++) want.push('dgram ' + i + ' ' + 'x'.repeat(i * 50))
      const got = new Set()
      // Read all along: Chromium drops datagrams that arrive while its small incoming queue is full.
      const reading = (async () => { for (;;) { const { value, done } = await reader.read(); if (done) return; got.add(T.dec.decode(value)) } })()
      reading.catch(() => {})
      // Datagrams are unreliable: resend what has not come back, a few rounds at most.
      let rounds = 0
      for (; rounds < 5 && got.size < want.length; rounds++) {
        for (const s of want) if (!got.has(s)) await writer.write(T.enc.encode(s))
        for (const deadline = Date.now() + 1000; got.size < want.length && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 10))
      }
      return { sent: want.slice().sort(), got: [...got].sort(), max, rounds }`)
      const rounds = r.rounds
      delete r.rounds
      if (rounds > 1) console.log(`# datagram echo needed ${rounds} rounds`)
      assert.deepEqual(r.got, r.sent)
      assert.equal(typeof r.max, 'number')
      assert.ok(r.max >= 1000, `page maxDatagramSize ${r.max}`)
      const rec = sessions.get('a')
      assert.ok(rec, 'the server saw the session')
      assert.equal(rec.method, 'CONNECT')
      assert.equal(rec.path, '/wt/echo')
      assert.equal(rec.origin, page.url.replace(/\/$/, ''))
      assert.equal(typeof rec.sessionId, 'bigint')
      assert.ok(rec.datagrams >= 20, `server received ${rec.datagrams} datagrams`)
      const now = server.getStats()
      assert.ok(now.datagramsReceived - stats.datagramsReceived >= 20, 'counted as received')
      assert.ok(now.datagramsSent - stats.datagramsSent >= 20, 'counted as sent')
      assert.ok(rec.maxDatagramSize >= 1000, `server maxDatagramSize ${rec.maxDatagramSize}`)
      assert.deepEqual(rec.errors, [])
    })

    test('(b) bidi stream: 256 KiB echoed, SHA-256 equal on both sides', async () => {
      const n = 256 * 1024
      const r = await inPage(`
      const wt = await T.open(base + '/wt/echo?t=b', hash)
      const { readable, writable } = await wt.createBidirectionalStream()
      const data = T.pattern(${n}, 3)
      const [, back] = await Promise.all([T.writeAll(writable, data), T.readAll(readable, 'bidi echo')])
      return { sent: await T.sha(data), back: await T.sha(back), length: back.byteLength }`)
      assert.equal(r.length, n)
      assert.equal(r.back, r.sent)
      const rec = sessions.get('b')
      await waitFor(() => rec.bidi.length === 1, { timeout: 3000 })
      assert.deepEqual(rec.bidi[0], { length: n, sha: r.sent })
      assert.deepEqual(rec.errors, [])
    })

    test('(c) uni stream from the page: the server reads it and sends it back on a uni stream of its own', async () => {
      const r = await inPage(`
      const wt = await T.open(base + '/wt/echo?t=c', hash)
      const incoming = wt.incomingUnidirectionalStreams.getReader()
      const data = T.enc.encode('uni from the page ' + 'u'.repeat(40000))
      await T.writeAll(await wt.createUnidirectionalStream(), data)
      const { value } = await T.within(incoming.read(), 3000, 'incoming uni stream (the echo)')
      const back = await T.readAll(value, 'server uni stream')
      return { sent: await T.sha(data), back: await T.sha(back), length: back.byteLength, sentLength: data.byteLength }`)
      assert.equal(r.length, r.sentLength)
      assert.equal(r.back, r.sent)
      const rec = sessions.get('c')
      assert.equal(rec.uni.length, 1)
      assert.deepEqual({ length: rec.uni[0].length, sha: rec.uni[0].sha }, { length: r.sentLength, sha: r.sent })
      assert.equal(rec.uni[0].head, 'uni from the page uuuuuuuuuuuuuu')
      assert.deepEqual(rec.errors, [])
    })

    test('(d) server-initiated streams: the page receives a bidi stream (and answers on it), then a uni stream', async () => {
      const r = await inPage(`
      const wt = await T.open(base + '/wt/push?t=d', hash)
      const unis = wt.incomingUnidirectionalStreams.getReader()
      const { value: stream, done } = await T.within(wt.incomingBidirectionalStreams.getReader().read(), 5000, 'incoming bidi stream')
      const text = T.dec.decode(await T.readAll(stream.readable, 'server bidi'))
      await T.writeAll(stream.writable, T.enc.encode('reply: ' + text))
      const { value: uni } = await T.within(unis.read(), 5000, 'incoming uni stream')
      return { text, done, uni: T.dec.decode(await T.readAll(uni, 'server uni')) }`)
      assert.deepEqual(r, { text: 'hello from the server', done: false, uni: 'pushed on a uni stream' })
      const rec = sessions.get('d')
      await waitFor(() => rec.pushedUni || rec.errors.length, { timeout: 3000 })
      assert.deepEqual(rec.errors, [])
      assert.equal(rec.reply, 'reply: hello from the server')
    })

    test('(e) the page closes with a code and reason: the server\'s session.closed resolves with them', async () => {
      const r = await inPage(`
      const wt = await T.open(base + '/wt/echo?t=e', hash)
      wt.close({ closeCode: 4242, reason: 'bye' })
      return T.outcome(wt.closed, 5000, 'page closed')`)
      assert.deepEqual(r, { ok: true, value: { closeCode: 4242, reason: 'bye' } })
      const rec = await sessionFor('e')
      await settle(rec)
      assert.deepEqual(rec.closed, { ok: true, closeCode: 4242, reason: 'bye' })
    })

    // The page asks the server (on a bidi stream) to close the session with this code and reason.
    const serverClose = (tag) => inPage(`
    const wt = await T.open(base + '/wt/close-me?t=${tag}', hash)
    const { readable, writable } = await wt.createBidirectionalStream()
    readable.cancel().catch(() => {})
    await T.writeAll(writable, T.enc.encode('3054 server says bye'))
    return T.outcome(wt.closed, 5000, 'page closed')`)

    test('(f) the server closes: its session.closed resolves with its code and reason, the page\'s wt.closed settles', async () => {
      const r = await serverClose('f1')
      assert.ok(r.ok || r.name === 'WebTransportError', `wt.closed settled: ${JSON.stringify(r)}`)
      const rec = await sessionFor('f1')
      assert.equal(rec.asked, '3054 server says bye')
      await settle(rec)
      assert.deepEqual(rec.closed, { ok: true, closeCode: 3054, reason: 'server says bye' })
    })

    test('(f) the server closes with a code and reason: the page\'s wt.closed resolves with them', async () => {
      const r = await serverClose('f2')
      assert.deepEqual(r, { ok: true, value: { closeCode: 3054, reason: 'server says bye' } })
    })

    test('(g) session.reject(403): the page\'s wt.ready and wt.closed reject; the server\'s session.closed rejects', async () => {
      const r = await inPage(`
      const wt = T.connect(base + '/wt/reject?t=g', hash)
      return { ready: await T.outcome(wt.ready, 5000, 'ready'), closed: await T.outcome(wt.closed, 5000, 'closed') }`)
      assert.equal(r.ready.ok, false)
      assert.equal(r.ready.name, 'WebTransportError', r.ready.message)
      assert.equal(r.closed.ok, false)
      const rec = await sessionFor('g')
      assert.equal(rec.rejected, true)
      await settle(rec, 3000)
      assert.equal(rec.closed.ok, false)
      assert.equal(rec.closed.name, 'WebTransportError')
      assert.equal(active(server), 0)
    })

    test('(j) application protocols: the page offers (W3C protocols), the server picks, wt.protocol says which', async () => {
      const r = await inPage(`
        const supported = 'protocol' in WebTransport.prototype
        const wt = new WebTransport(base + '/wt/proto?t=j', { protocols: ['chat-v2', 'chat-v1'], serverCertificateHashes: [{ algorithm: 'sha-256', value: new Uint8Array(hash) }] })
        T.sessions.push(wt)
        wt.closed.catch(() => {})
        await T.within(wt.ready, 5000, 'ready')
        return { supported, protocol: wt.protocol ?? null }`)
      const rec = await sessionFor('j')
      if (!r.supported) {
        // Firefox 153 has no `protocols` option: it sends no offer, and the session is plain.
        console.log(`# ${name} has no WebTransport protocols option (no WT-Available-Protocols sent)`)
        assert.deepEqual(rec.offered, [])
        assert.equal(rec.protocol, '')
        return
      }
      assert.deepEqual(rec.offered, ['chat-v2', 'chat-v1'])
      assert.equal(rec.protocol, 'chat-v1')
      assert.equal(r.protocol, 'chat-v1')
    })

    test('a path with no webtransport route: the page\'s wt.ready rejects', async () => {
      const r = await inPage(`
      const wt = T.connect(base + '/wt/nowhere', hash)
      return T.outcome(wt.ready, 5000, 'ready')`)
      assert.equal(r.ok, false)
      assert.equal(r.name, 'WebTransportError', r.message)
    })

    test('a wrong certificate hash: the page cannot connect, the server gets no session', async () => {
      const before = server.getStats().requestsTotal
      const r = await inPage(`
      const wt = new WebTransport(base + '/wt/echo?t=wrong', { serverCertificateHashes: [{ algorithm: 'sha-256', value: new Uint8Array(32).fill(7) }] })
      wt.closed.catch(() => {})
      return T.outcome(wt.ready, 5000, 'ready')`)
      assert.equal(r.ok, false)
      assert.equal(r.name, 'WebTransportError', r.message)
      assert.equal(sessions.get('wrong'), undefined)
      assert.equal(server.getStats().requestsTotal, before)
    })

    test('(h) the tab closes mid-session: the server\'s session.closed settles, the gauge returns to 0', async () => {
      const tab = await browser.newPage(page.url)
      try {
        await inPage(`
        const wt = await T.open(base + '/wt/hold?t=h-close', hash)
        const { readable, writable } = await wt.createBidirectionalStream()
        T.writeAll(writable, T.pattern(1000)).catch(() => {})
        return 'open'`, tab)
        const rec = await sessionFor('h-close')
        assert.equal(active(server), 1)
        assert.equal(rec.closed, null)
      } finally {
        await tab.close()
      }
      const rec = sessions.get('h-close')
      await afterTeardown(rec, 'the tab closed')
      assert.ok(rec.closed, 'settled')
      if (process.env.H3_WT_DEBUG) console.log('# tab closed:', JSON.stringify(rec.closed))
      await waitFor(() => active(server) === 0, { timeout: 5000 })
    })

    test('(h) the page navigates away mid-session: the server\'s session.closed settles, the gauge returns to 0', async () => {
      const tab = await browser.newPage(page.url)
      try {
        await inPage(`
        await T.open(base + '/wt/hold?t=h-nav', hash)
        return 'open'`, tab)
        const rec = await sessionFor('h-nav')
        assert.equal(active(server), 1)
        await tab.goto(page.url + 'elsewhere')
        await afterTeardown(rec, 'the page navigated away')
        assert.ok(rec.closed, 'settled')
        if (process.env.H3_WT_DEBUG) console.log('# navigated away:', JSON.stringify(rec.closed))
        await waitFor(() => active(server) === 0, { timeout: 5000 })
      } finally {
        await tab.close()
      }
    })
  })

  // (i) A browser sends fetch() over HTTP/3 only when told to (no Alt-Svc over TCP here) and trusts our
  // certificate for it only when told to: a second browser set up for that (launchForFetch), same
  // server, same page.
  describe(`${name} WebTransport and fetch over HTTP/3 to the same server`, { skip, timeout: 30000 + slowStart }, () => {
    let server, page, browser, base, hash

    before(async () => {
      server = serve({ routes })
      base = `https://127.0.0.1:${server.port}`
      hash = JSON.stringify(Array.from(server.certificateHash))
      page = await startPageServer(pageHtml)
      browser = await launchForFetch(server)
      await browser.goto(page.url)
    })

    after(async () => {
      await browser?.close()
      await page?.close()
      await server?.stop(true)
    })

    test('(i) an ordinary fetch over h3 works while a WebTransport session is open', async () => {
      const requests = server.getStats().requestsTotal
      const r = await browser.evaluate(`(async () => {
      const base = ${JSON.stringify(base)}
      const wt = await T.open(base + '/wt/echo?t=i', ${hash})
      const res = await T.within(fetch(base + '/hello', { cache: 'no-store' }), 5000, 'fetch')
      const text = await res.text()
      const protocol = performance.getEntriesByName(res.url, 'resource').at(-1)?.nextHopProtocol
      // The session still works after the fetch.
      const { readable, writable } = await wt.createBidirectionalStream()
      const [, back] = await Promise.all([T.writeAll(writable, T.enc.encode('still here')), T.readAll(readable)])
      wt.close({ closeCode: 1, reason: 'done' })
      return { status: res.status, text, protocol, wtActive: res.headers.get('x-wt-active'), echo: T.dec.decode(back), closed: await T.outcome(wt.closed, 5000, 'closed') }
    })()`, { timeout: 15000 })
      assert.deepEqual(r, { status: 200, text: 'hello from napi-h3', protocol: 'h3', wtActive: '1', echo: 'still here', closed: { ok: true, value: { closeCode: 1, reason: 'done' } } })
      assert.ok(server.getStats().requestsTotal > requests, 'the fetch reached our server')
      const rec = await sessionFor('i')
      await settle(rec)
      assert.deepEqual(rec.closed, { ok: true, closeCode: 1, reason: 'done' })
      assert.deepEqual(rec.bidi, [{ length: 10, sha: sha256('still here') }])
      await waitFor(() => active(server) === 0, { timeout: 5000 })
    })
  })
}
