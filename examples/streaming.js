'use strict'
// Streaming bodies both ways, trailers, and the HTTP/3 client — in one self-contained script:
// it starts a server on a free port, talks to it with h3Fetch, prints what happened and stops.
//
//   node examples/streaming.js          (or: bun examples/streaming.js)
//   MIB=256 node examples/streaming.js  (size of the upload/download, default 64 MiB)

const crypto = require('node:crypto')
const { createH3Server, h3Fetch, withTrailers } = require('..')

const MiB = 1024 * 1024
const SIZE = Number(process.env.MIB || 64) * MiB
const CHUNK = 64 * 1024

/** SIZE bytes of a repeating pattern, produced only as fast as they are consumed. */
async function * pattern (size) {
  const block = new Uint8Array(CHUNK).map((_, i) => i % 251)
  for (let sent = 0; sent < size; sent += CHUNK) yield block.subarray(0, Math.min(CHUNK, size - sent))
}

const server = createH3Server({
  port: 0,
  hostname: '127.0.0.1',
  routes: [
    // Streaming upload: the handler runs when the headers arrive and reads the body as it comes.
    // No size limit here (maxRequestBodySize is not set, so streaming routes are unbounded).
    {
      method: 'POST',
      pattern: '/sha256',
      mode: 'streaming',
      fetch: async (req) => {
        const hash = crypto.createHash('sha256')
        let bytes = 0
        for await (const chunk of req.body) {
          hash.update(chunk)
          bytes += chunk.length
        }
        const trailers = await req.trailers // settled now that the body has ended
        return Response.json({ bytes, sha256: hash.digest('hex'), clientSays: trailers.get('x-note') })
      }
    },
    // Echo: the response streams back while the request is still being read.
    { method: 'POST', pattern: '/echo', mode: 'streaming', fetch: (req) => new Response(req.body) },
    // Streaming download with a trailer computed after the last byte was sent.
    {
      method: 'GET',
      pattern: '/download',
      fetch: (req) => {
        const hash = crypto.createHash('sha256')
        const source = pattern(SIZE)
        const body = new ReadableStream({
          async pull (controller) {
            const { done, value } = await source.next()
            if (done) return controller.close()
            hash.update(value)
            controller.enqueue(value)
          },
          // Runs when the client stops reading or resets (req.signal aborts too).
          cancel () { console.log('  server: download cancelled by the client') }
        }, { highWaterMark: 0 })
        return withTrailers(new Response(body), () => ({ 'x-sha256': hash.digest('hex') }))
      }
    },
    // Never answers on its own: shows the client's timeout and req.signal.
    {
      method: 'GET',
      pattern: '/slow',
      fetch: (req) => new Promise((resolve) => {
        req.signal.addEventListener('abort', () => {
          console.log('  server: req.signal aborted (the client gave up)')
          resolve(new Response(null, { status: 499 }))
        })
      })
    }
  ]
})

// Trust exactly this server's certificate, as WebTransport's serverCertificateHashes does.
const tls = { serverCertificateHashes: [server.certificateHash] }
const url = (p) => new URL(p, server.url)
const mib = (n) => `${(n / MiB).toFixed(0)} MiB`

async function main () {
  const expected = crypto.createHash('sha256')
  for await (const c of pattern(SIZE)) expected.update(c)
  const want = expected.digest('hex')

  console.log(`server on ${server.url} (${typeof Bun !== 'undefined' ? 'Bun ' + Bun.version : 'Node.js ' + process.version})`)

  let t0 = Date.now()
  const up = await h3Fetch(url('/sha256'), { method: 'POST', body: pattern(SIZE), tls })
  const upResult = await up.json()
  console.log(`upload   ${mib(upResult.bytes)} in ${Date.now() - t0} ms, hash ${upResult.sha256 === want ? 'matches' : 'DIFFERS'}`)

  t0 = Date.now()
  const echo = await h3Fetch(url('/echo'), { method: 'POST', body: pattern(SIZE), tls })
  const echoHash = crypto.createHash('sha256')
  let echoed = 0
  for await (const c of echo.body) { echoHash.update(c); echoed += c.length }
  console.log(`echo     ${mib(echoed)} in ${Date.now() - t0} ms, hash ${echoHash.digest('hex') === want ? 'matches' : 'DIFFERS'}`)

  t0 = Date.now()
  const down = await h3Fetch(url('/download'), { tls })
  const downHash = crypto.createHash('sha256')
  let received = 0
  for await (const c of down.body) { downHash.update(c); received += c.length }
  const trailers = await down.trailers
  const got = downHash.digest('hex')
  console.log(`download ${mib(received)} in ${Date.now() - t0} ms, hash ${got === want ? 'matches' : 'DIFFERS'}, trailer x-sha256 ${trailers.get('x-sha256') === got ? 'matches' : 'DIFFERS'}`)

  // Stop reading half-way: the server's body stream is cancelled.
  const part = await h3Fetch(url('/download'), { tls })
  const reader = part.body.getReader()
  for (let n = 0; n < SIZE / 2;) n += (await reader.read()).value.length
  await reader.cancel()
  console.log('cancel   stopped reading half-way')

  try {
    await h3Fetch(url('/slow'), { tls, timeout: 500 })
  } catch (e) {
    console.log(`timeout  ${e.name} ${e.code}`)
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
}

main()
  .catch((e) => { console.error(e); process.exitCode = 1 })
  .finally(() => server.stop())
