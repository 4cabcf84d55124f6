// TLS operations: certificates by SNI, live certificate reload, key logs, per-connection
// figures, mutual TLS and Alt-Svc. Peers: our own client and aioquic, both verifying the
// certificate against a CA made at test time, so a wrong certificate fails the handshake.
import { describe, test, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { serve, aioquic, root } from './helpers.mjs'
import { makeCA } from './tls-certs.mjs'

const require = createRequire(import.meta.url)
const { createH3Client, altSvcHeader } = require(root)

/** GET `/` through a fresh client trusting `ca` and sending SNI `serverName`. */
async function fetchWith (server, tls) {
  const client = createH3Client({ tls })
  try {
    const res = await client.fetch(`https://127.0.0.1:${server.port}/`)
    return { status: res.status, text: await res.text() }
  } finally { await client.close() }
}

/** aioquic, verifying against `cafile` with SNI `name`: the status, or the handshake error. */
async function aioquicWith (server, name, cafile, extra = []) {
  const out = await aioquic(server, ['request', '--verify', '--cafile', cafile, '--server-name', name, '--no-followup', ...extra])
  return out.results ? out.results[0].status : `error: ${out.error}`
}

describe('certificates by SNI', () => {
  let ca, a, wild, def
  before(() => {
    ca = makeCA()
    a = ca.issue(['a.example.test'])
    wild = ca.issue(['*.wild.test'])
    def = ca.issue(['localhost', '127.0.0.1'])
  })

  test('exact names, wildcards and the default, with our client and aioquic', async () => {
    const s = serve({
      tls: [
        { cert: a.cert, key: a.key, serverName: 'a.example.test' },
        { cert: wild.certFile, key: wild.keyFile, serverName: '*.wild.test' },
        { cert: Buffer.from(def.cert), key: Buffer.from(def.key) }
      ],
      fetch: () => new Response('ok')
    })
    try {
      // Each certificate is valid for its own names only: a handshake verifies only if the
      // server picked the right one.
      for (const serverName of ['a.example.test', 'x.wild.test', 'localhost']) {
        assert.deepEqual(await fetchWith(s, { ca: ca.certPem, serverName }), { status: 200, text: 'ok' }, serverName)
      }
      // No SNI (an IP literal): the default.
      assert.equal((await fetchWith(s, { ca: ca.certPem })).status, 200)
      // A name nobody configured gets the default, which does not cover it.
      for (const serverName of ['b.example.test', 'x.y.wild.test', 'wild.test']) {
        await assert.rejects(fetchWith(s, { ca: ca.certPem, serverName }), { code: 'ERR_H3_TLS' }, serverName)
      }
      // The default certificate's hash.
      const { X509Certificate, createHash } = await import('node:crypto')
      const der = new X509Certificate(def.cert).raw
      assert.equal(Buffer.from(s.certificateHash).toString('hex'), createHash('sha256').update(der).digest('hex'))
      // aioquic, an independent TLS stack.
      assert.equal(await aioquicWith(s, 'a.example.test', ca.certFile), 200)
      assert.equal(await aioquicWith(s, 'Q.Wild.Test', ca.certFile), 200)
      assert.match(String(await aioquicWith(s, 'b.example.test', ca.certFile)), /^error/)
    } finally { await s.stop(true) }
  })

  test('the first entry is the default when every entry has a serverName', async () => {
    const s = serve({ tls: [{ cert: def.cert, key: def.key, serverName: 'localhost' }, { cert: a.cert, key: a.key, serverName: 'a.example.test' }], fetch: () => new Response('ok') })
    try {
      assert.equal((await fetchWith(s, { ca: ca.certPem, serverName: '127.0.0.1' })).status, 200)
      const { X509Certificate, createHash } = await import('node:crypto')
      assert.equal(Buffer.from(s.certificateHash).toString('hex'), createHash('sha256').update(new X509Certificate(def.cert).raw).digest('hex'))
    } finally { await s.stop(true) }
  })

  test('a self-signed server reloaded with certificates by SNI', async () => {
    const s = serve({ fetch: () => new Response('ok') })
    try {
      assert.match(s.certificatePem, /BEGIN CERTIFICATE/)
      s.reload({ tls: [{ cert: a.cert, key: a.key, serverName: 'a.example.test' }, { cert: def.cert, key: def.key }] })
      assert.equal(s.certificatePem, undefined)
      assert.equal((await fetchWith(s, { ca: ca.certPem, serverName: 'a.example.test' })).status, 200)
      assert.equal((await fetchWith(s, { ca: ca.certPem })).status, 200)
    } finally { await s.stop(true) }
  })

  test('bad tls arrays throw ERR_H3_TLS', () => {
    const bad = [
      [],
      [{ cert: def.cert }],
      [{ cert: def.cert, key: def.key, serverName: '' }],
      [{ cert: def.cert, key: def.key }, { cert: a.cert, key: a.key }],
      [{ cert: a.cert, key: a.key, serverName: 'a.test' }, { cert: a.cert, key: a.key, serverName: 'A.TEST' }],
      [{ cert: a.cert, key: a.key, serverName: 'bad name' }],
      [{ cert: a.cert, key: def.key, serverName: 'a.test' }]
    ]
    for (const tls of bad) assert.throws(() => serve({ tls, fetch: () => new Response('x') }), { code: 'ERR_H3_TLS' }, JSON.stringify(tls).slice(0, 80))
  })
})

describe('live certificate reload', () => {
  test('new handshakes get the new certificate; open connections keep working; bad PEM keeps the old', async () => {
    const ca1 = makeCA('first CA')
    const ca2 = makeCA('second CA')
    const one = ca1.issue(['localhost', '127.0.0.1'])
    const two = ca2.issue(['localhost', '127.0.0.1'])
    const s = serve({ tls: { cert: one.cert, key: one.key }, fetch: () => new Response('ok') })
    const old = createH3Client({ tls: { ca: ca1.certPem } })
    try {
      const url = `https://127.0.0.1:${s.port}/`
      assert.equal((await old.fetch(url)).status, 200)
      const hash1 = Buffer.from(s.certificateHash).toString('hex')

      s.reload({ tls: { cert: two.cert, key: two.key } })
      assert.notEqual(Buffer.from(s.certificateHash).toString('hex'), hash1)
      // The open connection is unaffected.
      assert.equal((await old.fetch(url)).status, 200)
      assert.equal(old.connectionsOpened, 1)
      // New handshakes see the second certificate.
      assert.equal((await fetchWith(s, { ca: ca2.certPem })).status, 200)
      await assert.rejects(fetchWith(s, { ca: ca1.certPem }), { code: 'ERR_H3_TLS' })
      assert.equal(await aioquicWith(s, 'localhost', ca2.certFile), 200)

      // Bad material throws and leaves the second certificate in place.
      assert.throws(() => s.reload({ tls: { cert: '-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n', key: two.key } }), { code: 'ERR_H3_TLS' })
      assert.throws(() => s.reload({ tls: { cert: one.cert, key: two.key } }), { code: 'ERR_H3_TLS' })
      assert.throws(() => s.reload({ tls: [] }), { code: 'ERR_H3_TLS' })
      assert.throws(() => s.reload({ tls: 'self-signed' }), { code: 'ERR_H3_TLS' })
      assert.equal((await fetchWith(s, { ca: ca2.certPem })).status, 200)
      // Routes are untouched by a tls-only reload; a reload with both swaps both.
      s.reload({ tls: [{ cert: one.cert, key: one.key }], fetch: () => new Response('swapped') })
      assert.deepEqual(await fetchWith(s, { ca: ca1.certPem }), { status: 200, text: 'swapped' })
    } finally {
      await old.close()
      await s.stop(true)
    }
  })
})

describe('debugging: SSLKEYLOGFILE and server.connections()', () => {
  test('server and client append the same TLS secrets; aioquic agrees', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'napi-h3-keylog-'))
    const serverLog = path.join(dir, 'server.log')
    const clientLog = path.join(dir, 'client.log')
    const peerLog = path.join(dir, 'aioquic.log')
    const prev = process.env.SSLKEYLOGFILE
    let s, client
    try {
      process.env.SSLKEYLOGFILE = serverLog
      s = serve({ fetch: () => new Response('ok') })
      process.env.SSLKEYLOGFILE = clientLog
      client = createH3Client({ tls: { ca: s.certificatePem } })
    } finally {
      if (prev === undefined) delete process.env.SSLKEYLOGFILE
      else process.env.SSLKEYLOGFILE = prev
    }
    try {
      assert.equal((await client.fetch(`https://127.0.0.1:${s.port}/`)).status, 200)
      assert.equal((await aioquic(s, ['request', '--no-followup', '--secrets-log', peerLog])).results[0].status, 200)
      const lines = (f) => new Set(readFileSync(f, 'utf8').trim().split('\n'))
      const server = lines(serverLog)
      const ours = lines(clientLog)
      const theirs = lines(peerLog)
      for (const label of ['CLIENT_HANDSHAKE_TRAFFIC_SECRET', 'SERVER_HANDSHAKE_TRAFFIC_SECRET', 'CLIENT_TRAFFIC_SECRET_0', 'SERVER_TRAFFIC_SECRET_0']) {
        const mine = [...ours].filter((l) => l.startsWith(label + ' '))
        assert.equal(mine.length, 1, label)
        assert.match(mine[0], /^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]{64,96}$/)
        // Both ends derived the same secret: the server logged the client's line verbatim.
        assert.ok(server.has(mine[0]), `server lacks ${label}`)
        const peer = [...theirs].filter((l) => l.startsWith(label + ' '))
        assert.equal(peer.length, 1, `aioquic ${label}`)
        assert.ok(server.has(peer[0]), `server lacks aioquic's ${label}`)
      }
      assert.throws(() => { process.env.SSLKEYLOGFILE = path.join(dir, 'no', 'such', 'dir'); try { serve({}) } finally { delete process.env.SSLKEYLOGFILE; if (prev !== undefined) process.env.SSLKEYLOGFILE = prev } }, { code: 'ERR_H3_TLS' })
    } finally {
      await client.close()
      await s.stop(true)
    }
  })

  test('connections() lists each open connection with quinn figures', async () => {
    const s = serve({ fetch: () => new Response('x'.repeat(100000)) })
    const client = createH3Client({ tls: { ca: s.certificatePem, serverName: 'localhost' } })
    try {
      assert.deepEqual(s.connections(), [])
      const res = await client.fetch(`https://127.0.0.1:${s.port}/`)
      assert.equal((await res.arrayBuffer()).byteLength, 100000)
      const list = s.connections()
      assert.equal(list.length, 1)
      const c = list[0]
      assert.equal(c.remote.address, '127.0.0.1')
      assert.ok(c.remote.port > 0)
      assert.equal(c.serverName, 'localhost')
      assert.ok(c.rttMs > 0 && c.rttMs < 1000, `rtt ${c.rttMs}`)
      assert.ok(c.congestionWindow > 0)
      assert.ok(c.bytesSent > 100000, `sent ${c.bytesSent}`)
      assert.ok(c.bytesReceived > 0 && c.bytesReceived < c.bytesSent)
      assert.ok(c.packetsSent > 50)
      assert.equal(typeof c.packetsLost, 'number')
      assert.equal(c.clientCertificate, false)
      // A second peer: aioquic, no SNI name of ours.
      const out = await aioquic(s, ['request', '--no-followup', '--server-name', 'peer.test'])
      assert.equal(out.results[0].status, 200)
      await client.close()
      // aioquic closed its connection; ours closes with the client.
      await new Promise((resolve) => setTimeout(resolve, 200))
      assert.deepEqual(s.connections(), [])
    } finally {
      await client.close()
      await s.stop(true)
    }
  })
})

describe('qlog', () => {
  test('qlogDir: one JSON-SEQ trace per connection, named by its original destination connection id', async () => {
    const { readdirSync } = await import('node:fs')
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'napi-h3-qlog-')), 'traces')
    const s = serve({ qlogDir: dir, fetch: () => new Response('x'.repeat(20000)) })
    const client = createH3Client({ tls: { ca: s.certificatePem } })
    try {
      assert.equal((await (await client.fetch(`https://127.0.0.1:${s.port}/`)).text()).length, 20000)
      assert.equal((await aioquic(s, ['request', '--no-followup'])).results[0].status, 200)
      await client.close()
      // Records are written a line at a time; wait for both connections' packets.
      const traces = () => readdirSync(dir).map((f) => ({ f, text: readFileSync(path.join(dir, f), 'utf8') }))
      const deadline = Date.now() + 10000
      while (Date.now() < deadline && !(traces().length === 2 && traces().every((t) => t.text.includes('packet_sent')))) {
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      const all = traces()
      assert.equal(all.length, 2, all.map((t) => t.f).join())
      for (const { f, text } of all) {
        assert.match(f, /^[0-9a-f]{16,40}\.qlog$/)
        // JSON text sequences (RFC 7464): each record starts with RS (0x1e).
        const records = text.split('\x1e').filter((r) => r.trim()).map((r) => JSON.parse(r))
        assert.ok(records[0].qlog_version, JSON.stringify(records[0]).slice(0, 200))
        const names = new Set(records.slice(1).map((r) => r.name))
        assert.ok(names.has('transport:packet_sent') && names.has('transport:packet_received'), [...names].join())
      }
    } finally {
      await client.close()
      await s.stop(true)
    }
    assert.throws(() => serve({ qlogDir: '/dev/null/traces' }), { code: 'ERR_H3_INVALID_ARG' })
    assert.throws(() => serve({ qlogDir: 5 }), TypeError)
  })
})

describe('mutual TLS', () => {
  let serverCA, clientCA, otherCA, serverCert, alice, mallory
  before(() => {
    serverCA = makeCA('server CA')
    clientCA = makeCA('client CA')
    otherCA = makeCA('other CA')
    serverCert = serverCA.issue(['localhost', '127.0.0.1'])
    alice = clientCA.issue(['alice.test'], { cn: 'alice' })
    mallory = otherCA.issue(['mallory.test'], { cn: 'mallory' })
  })

  const handler = (req, server) => {
    const peer = server.peerCertificate(req)
    return Response.json(peer ? { subject: peer.subject, issuer: peer.issuer, der: peer.raw.length, chain: peer.chain.length, pem: peer.pem.startsWith('-----BEGIN CERTIFICATE') } : null)
  }

  test('a required client certificate: verified, readable per request, missing or foreign ones fail', async () => {
    const s = serve({ tls: { cert: serverCert.cert, key: serverCert.key, ca: clientCA.certPem, requestCert: true }, fetch: handler })
    try {
      const res = await fetchWith(s, { ca: serverCA.certPem, cert: alice.cert, key: alice.key })
      assert.equal(res.status, 200)
      const body = JSON.parse(res.text)
      assert.match(body.subject, /CN=alice/)
      assert.match(body.issuer, /CN=client CA/)
      assert.ok(body.der > 100 && body.pem)
      await assert.rejects(fetchWith(s, { ca: serverCA.certPem }), { code: 'ERR_H3_TLS' })
      await assert.rejects(fetchWith(s, { ca: serverCA.certPem, cert: mallory.cert, key: mallory.key }), { code: 'ERR_H3_TLS' })
      assert.equal(s.connections().length, 0)
      // aioquic with and without a certificate.
      const ok = await aioquic(s, ['request', '--no-followup', '--verify', '--cafile', serverCA.certFile, '--certfile', alice.certFile, '--keyfile', alice.keyFile])
      assert.equal(ok.results[0].status, 200)
      assert.match(JSON.parse(ok.results[0].body_text).subject, /CN=alice/)
      const no = await aioquic(s, ['request', '--no-followup', '--verify', '--cafile', serverCA.certFile])
      assert.ok(!no.results || no.results[0].status !== 200, JSON.stringify(no).slice(0, 200))
    } finally { await s.stop(true) }
  })

  test('WebTransport sessions present the client certificate too; the handler can check it', async () => {
    const s = serve({
      tls: { cert: serverCert.cert, key: serverCert.key, ca: clientCA.certPem, requestCert: true },
      routes: [{
        pattern: '/wt',
        webtransport (session, server) {
          const peer = server.peerCertificate(session.request)
          if (!peer || !/CN=alice/.test(peer.subject)) return session.reject(403)
          session.accept()
          session.close({ closeCode: 7, reason: peer.subject })
        }
      }]
    })
    const client = createH3Client({ tls: { ca: serverCA.certPem, cert: alice.cert, key: alice.key } })
    const anonymous = createH3Client({ tls: { ca: serverCA.certPem } })
    try {
      const wt = await client.webtransport(`https://127.0.0.1:${s.port}/wt`)
      const closed = await wt.closed
      assert.equal(closed.closeCode, 7)
      assert.match(closed.reason, /CN=alice/)
      // Without a certificate: the server's alert comes back as a TLS error, not a connect error.
      await assert.rejects(anonymous.webtransport(`https://127.0.0.1:${s.port}/wt`), { code: 'ERR_H3_TLS', message: /no certificates/ })
    } finally {
      await anonymous.close()
      await client.close()
      await s.stop(true)
    }
  })

  test('rejectUnauthorized: false lets clients without a certificate in', async () => {
    const s = serve({ tls: { cert: serverCert.cert, key: serverCert.key, ca: [clientCA.certFile], requestCert: true, rejectUnauthorized: false }, fetch: handler })
    try {
      assert.equal((await fetchWith(s, { ca: serverCA.certPem })).text, 'null')
      assert.match(JSON.parse((await fetchWith(s, { ca: serverCA.certPem, cert: alice.certFile, key: alice.keyFile })).text).subject, /CN=alice/)
      // A certificate from an unknown CA still fails.
      await assert.rejects(fetchWith(s, { ca: serverCA.certPem, cert: mallory.cert, key: mallory.key }), { code: 'ERR_H3_TLS' })
    } finally { await s.stop(true) }
  })

  test('without requestCert no certificate is asked for; bad options throw', async () => {
    const s = serve({ tls: { cert: serverCert.cert, key: serverCert.key, ca: clientCA.certPem }, fetch: handler })
    try {
      assert.equal((await fetchWith(s, { ca: serverCA.certPem, cert: alice.cert, key: alice.key })).text, 'null')
      assert.equal(s.peerCertificate(new Request('https://x/')), null)
    } finally { await s.stop(true) }
    assert.throws(() => serve({ tls: { cert: serverCert.cert, key: serverCert.key, requestCert: true } }), { code: 'ERR_H3_TLS' })
    assert.throws(() => serve({ tls: { cert: serverCert.cert, key: serverCert.key, requestCert: true, ca: 'not pem and no such file' } }), { code: 'ERR_H3_TLS' })
    assert.throws(() => createH3Client({ tls: { cert: alice.cert } }), { code: 'ERR_H3_TLS' })
    assert.throws(() => createH3Client({ tls: { cert: alice.cert, key: mallory.key } }), { code: 'ERR_H3_TLS' })
    assert.throws(() => createH3Client({ tls: { serverName: 5 } }), TypeError)
  })
})

describe('Alt-Svc', () => {
  test('altSvcHeader and server.altSvc', async () => {
    const s = serve({ fetch: () => new Response('ok') })
    try {
      assert.equal(s.altSvc, `h3=":${s.port}"; ma=86400`)
      assert.equal(altSvcHeader(s, { maxAge: 60 }), `h3=":${s.port}"; ma=60`)
      assert.equal(altSvcHeader(443), 'h3=":443"; ma=86400')
      for (const bad of [[0], [70000], [s, { maxAge: -1 }], [s, { maxAge: 1.5 }], [{}]]) assert.throws(() => altSvcHeader(...bad), TypeError)
    } finally { await s.stop(true) }
  })
})
