'use strict'
// napi-h3 demo: `npm start` (Node) or `bun examples/demo.js` (Bun).
//
//   PORT=4433 HOST=127.0.0.1 PAGE_PORT=8080 npm start
//
// Two servers:
//   - the HTTP/3 server (UDP, PORT): a few routes showing the server API, and a WebTransport
//     route, /wt: datagram echo, bidi stream echo, and a uni stream the server pushes;
//   - a plain HTTP server on localhost (TCP, PAGE_PORT or the next free port) serving the
//     WebTransport page (webtransport.html next to this file). The page trusts the HTTP/3 server's
//     self-signed certificate by its SHA-256 (`serverCertificateHashes`), so any recent Chrome,
//     Chromium or Firefox opens it with no flags.
//
// In your own code: `require('napi-h3')` / `import { createH3Server } from 'napi-h3'`.
// Streaming bodies, trailers and the h3Fetch client: see streaming.js next to this file.

const crypto = require('node:crypto')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { createH3Server } = require('..')

const PORT = process.env.PORT !== undefined && process.env.PORT !== '' ? Number(process.env.PORT) : 4433
const HOST = process.env.HOST || '127.0.0.1'
const PAGE_PORT = process.env.PAGE_PORT !== undefined && process.env.PAGE_PORT !== '' ? Number(process.env.PAGE_PORT) : 8080
const runtime = typeof Bun !== 'undefined' ? `Bun ${Bun.version}` : `Node.js ${process.version}`

const ROUTES = [
  ['GET', '/', 'this page'],
  ['GET', '/hello', 'a static Response, served from Rust without calling JS'],
  ['GET', '/json', 'request info as JSON: method, url, headers, peer address'],
  ['POST', '/echo', 'echoes the request body (up to 1 MiB)'],
  ['GET', '/users/:id', 'route parameters, e.g. /users/42'],
  ['GET', '/stream', 'a ReadableStream body, one chunk every 200 ms'],
  ['CONNECT', '/wt', 'WebTransport: datagram and stream echo, a server-pushed stream (open the page printed at start)'],
  ['*', '/anything-else', 'the fallback fetch handler: 404 JSON']
]

const escapeHtml = (s) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])

function homePage (req) {
  const rows = ROUTES.map(([m, p, what]) => {
    const link = m === 'GET' && !p.includes(':') ? `<a href="${p}">${p}</a>` : p === '/users/:id' ? `<a href="/users/42">${p}</a>` : escapeHtml(p)
    return `<tr><td><code>${m}</code></td><td><code>${link}</code></td><td>${escapeHtml(what)}</td></tr>`
  }).join('\n')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>napi-h3 demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}td{padding:.2rem .8rem .2rem 0;vertical-align:top}</style>
</head><body>
<h1>napi-h3 demo</h1>
<p>This page came over <strong>HTTP/3</strong> (QUIC) from a ${escapeHtml(runtime)} process.
napi-h3 is a Node-API addon written in Rust (quinn + h3): the protocol runs natively, route
handlers are plain JavaScript taking a WHATWG <code>Request</code> and returning a <code>Response</code>.</p>
<p>You asked for <code>${escapeHtml(req.method)} ${escapeHtml(new URL(req.url).pathname)}</code>.</p>
<h2>Routes</h2>
<table>${rows}</table>
<p>Try <code>POST /echo</code> with any body, for example from <code>bun</code> (see the console of the server).</p>
</body></html>`
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// --- WebTransport ------------------------------------------------------------------------------
// One call per session. The session is accepted on first use (here: the datagram pipe).
async function webtransport (session) {
  const from = session.request.headers.get('origin') || 'a client'
  console.log(`WebTransport session ${session.sessionId} opened by ${from}`)
  // Graceful stop (Ctrl-C) asks sessions to wind down: close ours then.
  session.draining.then(() => session.close({ closeCode: 0, reason: 'server stopping' }))

  // Datagrams: each one straight back.
  session.datagrams.readable.pipeTo(session.datagrams.writable).catch(() => {})

  // A stream the server opens: a greeting, then a line a second for ten seconds.
  pushTicks(session).catch(() => {}) // fails only if the session goes first

  // Bidirectional streams the page opens: each piped back to it.
  ;(async () => {
    for await (const { readable, writable } of session.incomingBidirectionalStreams) {
      readable.pipeTo(writable).catch(() => {})
    }
  })().catch(() => {})

  try {
    const { closeCode, reason } = await session.closed
    console.log(`WebTransport session ${session.sessionId} closed (code ${closeCode}${reason ? `, "${reason}"` : ''})`)
  } catch (err) {
    console.log(`WebTransport session ${session.sessionId} lost: ${err.message}`)
  }
}

async function pushTicks (session) {
  const writer = (await session.createUnidirectionalStream()).getWriter()
  await writer.write(`Hello from ${runtime}! The server opened this stream.\n`)
  for (let i = 1; i <= 10; i++) {
    await sleep(1000)
    await writer.write(`tick ${i} at ${new Date().toISOString()}\n`)
  }
  await writer.close()
}

const server = createH3Server({
  port: PORT,
  hostname: HOST,
  tls: 'self-signed', // ECDSA P-256, valid 13 days: what serverCertificateHashes accepts
  routes: [
    { method: 'GET', pattern: '/', fetch: (req) => new Response(homePage(req), { headers: { 'content-type': 'text/html; charset=utf-8' } }) },

    // A static Response: its body is read once, then Rust answers without calling JS.
    { pattern: '/hello', response: new Response('Hello over HTTP/3!\n', { headers: { 'content-type': 'text/plain; charset=utf-8' } }) },

    {
      pattern: '/json',
      fetch: (req, srv) => Response.json({
        method: req.method,
        url: req.url,
        headers: Object.fromEntries(req.headers),
        requestIP: srv.requestIP(req),
        runtime
      })
    },

    {
      method: 'POST',
      pattern: '/echo',
      fetch: async (req) => new Response(await req.arrayBuffer(), {
        headers: { 'content-type': req.headers.get('content-type') || 'application/octet-stream' }
      })
    },
    { pattern: '/echo', fetch: () => Response.json({ error: 'use POST' }, { status: 405, headers: { allow: 'POST' } }) },

    { method: 'GET', pattern: '/users/:id', fetch: (req) => Response.json({ id: req.params.id, params: req.params }) },

    {
      pattern: '/stream',
      fetch: (req) => {
        let i = 0
        const body = new ReadableStream({
          async pull (controller) {
            if (i === 0) controller.enqueue(`streaming 10 chunks from ${runtime}\n`)
            await sleep(200)
            if (req.signal.aborted) return controller.close()
            controller.enqueue(`chunk ${++i} at ${new Date().toISOString()}\n`)
            if (i === 10) controller.close()
          }
        })
        return new Response(body, { headers: { 'content-type': 'text/plain; charset=utf-8' } })
      }
    },

    { pattern: '/wt', webtransport }
  ],

  // Everything no route matches.
  fetch: (req) => Response.json({ error: 'not found', method: req.method, path: new URL(req.url).pathname }, { status: 404 }),

  error: (err) => {
    console.error('handler failed:', err)
    return Response.json({ error: 'internal error' }, { status: 500 })
  }
})

// --- how to reach it ------------------------------------------------------------------------
// server.url names 127.0.0.1 for a 0.0.0.0 bind. HOST=localhost binds 127.0.0.1 but the URL says
// `localhost`, which Bun's HTTP/3 fetch resolves to ::1 only: give clients the address instead.
const clientUrl = new URL(server.url)
if (server.hostname === 'localhost') clientUrl.hostname = '127.0.0.1'
const origin = clientUrl.origin // https://host:port
const authority = clientUrl.host // host:port, as Chromium's --origin-to-force-quic-on wants it
const certHash = Buffer.from(server.certificateHash)
// Chromium pins the SubjectPublicKeyInfo, not the certificate: a different hash.
const spkiHash = crypto.createHash('sha256')
  .update(new crypto.X509Certificate(server.certificatePem).publicKey.export({ type: 'spki', format: 'der' }))
  .digest('base64')

// --- the WebTransport page: plain HTTP on loopback ---------------------------------------------
// http://localhost is a secure context, so the page may use WebTransport; the certificate's hash
// goes into the page, and the browser trusts exactly that certificate for the session.
const wtUrl = `${origin}/wt`
const pageHtml = fs.readFileSync(path.join(__dirname, 'webtransport.html'), 'utf8').replace('/*CONFIG*/{}',
  JSON.stringify({ url: wtUrl, hash: Array.from(certHash) }).replace(/</g, '\\u003c'))

function pageRequest (req, res) {
  if (req.method !== 'GET' || new URL(req.url, 'http://localhost').pathname !== '/') {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
    return res.end('Not Found\n')
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
  res.end(pageHtml)
}

/** Listens on 127.0.0.1:port, or on the next free port (20 tries); resolves the server. */
function listenPage (port, tries = 20) {
  return new Promise((resolve, reject) => {
    const srv = http.createServer(pageRequest)
    srv.once('error', (err) => {
      if (err.code === 'EADDRINUSE' && port !== 0 && tries > 1) resolve(listenPage(port + 1, tries - 1))
      else reject(err)
    })
    srv.listen(port, '127.0.0.1', () => resolve(srv))
  })
}

let pageServer = null
listenPage(PAGE_PORT).then((srv) => {
  pageServer = srv
  return `http://localhost:${srv.address().port}/`
}, (err) => {
  console.error(`(no WebTransport page: ${err.message})`)
  return null
}).then((pageUrl) => console.log(`napi-h3 demo on ${runtime}

  url     ${clientUrl.href}
  port    ${server.port}/udp (bound to ${server.hostname})
  certificate (self-signed, ECDSA P-256, valid 13 days), SHA-256 of the DER:
    hex     ${certHash.toString('hex')}
    base64  ${certHash.toString('base64')}
    (WebTransport: serverCertificateHashes: [{ algorithm: 'sha-256', value: <these bytes> }])
  public key (SPKI) SHA-256, base64: ${spkiHash}
${pageUrl
? `
  WebTransport page  ${pageUrl}
    (plain HTTP on localhost; it opens ${wtUrl} with serverCertificateHashes:
     Chrome, Chromium, Edge or Firefox, no flags)
`
: ''}
Try it:
  Bun (HTTP/3 fetch):
    bun -e "const r = await fetch('${origin}/json', { protocol: 'http3', tls: { rejectUnauthorized: false } }); console.log(r.status, await r.text())"
    (no bun installed? use: npx bun -e "...")
  Chromium / Chrome, the HTTP/3 pages (fetch over QUIC needs these flags; WebTransport does not):
    chromium --user-data-dir=/tmp/napi-h3-demo-profile --origin-to-force-quic-on=${authority} --ignore-certificate-errors-spki-list=${spkiHash} ${clientUrl.href}

Ctrl-C stops gracefully (a second Ctrl-C forces).`))

// --- shutdown --------------------------------------------------------------------------------
let stopping = false
function shutdown (signal) {
  if (stopping) {
    console.log(`\n${signal} again: closing connections now`)
    server.stop(true)
    return
  }
  stopping = true
  console.log(`\n${signal}: stopping (GOAWAY, finishing in-flight requests, closing WebTransport sessions)...`)
  pageServer?.close()
  pageServer?.closeAllConnections?.()
  // Graceful, with a deadline: past 10 s the remaining connections are closed.
  server.stop({ timeout: 10 }).then(() => {
    console.log('stopped')
    const s = server.getStats()
    console.log(`served ${s.requestsTotal} requests over ${s.connectionsTotal} connections`)
  }, (err) => {
    console.error('stop failed:', err)
    process.exitCode = 1
  })
}
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('SIGTERM', () => shutdown('SIGTERM'))
