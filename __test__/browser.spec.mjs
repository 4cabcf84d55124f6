// Headless Chromium as a third independent HTTP/3 client (Chromium's own QUIC stack), driven over the
// DevTools protocol by ./browser.mjs (no npm dependency). QUIC stays enabled: Chromium is told to go
// straight to QUIC for our origin (--origin-to-force-quic-on) and to trust our self-signed certificate
// by its public key (--ignore-certificate-errors-spki-list). Skipped when Chromium is not installed
// (.ci/run installs Debian's `chromium`).
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { serve, waitFor } from './helpers.mjs'
import { chromiumPath, haveChromium, launchChromium, spkiHash, startPageServer } from './browser.mjs'

const skip = haveChromium ? false : `Chromium not installed at ${chromiumPath} (apt-get install chromium, or set H3_CHROMIUM)`

// Cross-origin fetches from the HTTP/1.1 test page: CORS to read the response, Timing-Allow-Origin so
// the Resource Timing entry exposes nextHopProtocol (Chromium reports '' cross-origin without it).
const cors = { 'access-control-allow-origin': '*', 'timing-allow-origin': '*' }

describe('Chromium fetch over HTTP/3', { skip, timeout: 60000 }, () => {
  let server, draining, page, browser, origin
  const seen = []
  let slowStarted = 0

  before(async () => {
    server = serve({
      routes: {
        '/': { GET: () => new Response('<!doctype html><title>served over h3</title><p>napi-h3', { headers: { 'content-type': 'text/html; charset=utf-8' } }) },
        '/hello': { GET: (req) => { seen.push(`${req.method} /hello`); return new Response('hello from napi-h3', { headers: cors }) } },
        '/echo': {
          POST: async (req) => {
            const body = new Uint8Array(await req.arrayBuffer())
            seen.push(`POST /echo ${body.length} ${req.headers.get('content-type') ?? ''}`)
            return new Response(body, { headers: { ...cors, 'content-type': 'application/octet-stream', 'x-len': String(body.length), 'access-control-expose-headers': 'x-len' } })
          },
          OPTIONS: (req) => {
            seen.push(`OPTIONS /echo ${req.headers.get('access-control-request-method')}`)
            return new Response(null, {
              status: 204,
              headers: { ...cors, 'access-control-allow-methods': 'POST', 'access-control-allow-headers': 'content-type, x-napi-h3', 'access-control-max-age': '0' }
            })
          }
        }
      }
    })
    // A second server, stopped gracefully in the middle of a request (see the GOAWAY test).
    draining = serve({
      routes: { '/slow': { GET: async () => { slowStarted++; await new Promise((resolve) => setTimeout(resolve, 1000)); return new Response('slow done', { headers: cors }) } } }
    })
    origin = `https://127.0.0.1:${server.port}`
    page = await startPageServer()
    browser = await launchChromium({
      quicOrigins: [server, draining].map((s) => `127.0.0.1:${s.port}`),
      spkiHashes: [spkiHash(server.certificatePem), spkiHash(draining.certificatePem)]
    })
    await browser.goto(page.url)
  })

  after(async () => {
    if (process.env.H3_BROWSER_DEBUG) for (const [name, s] of [['server', server], ['draining', draining]]) { const st = s?.getStats(); console.log(`# ${name} stats: connectionsTotal=${st?.connectionsTotal} connectionErrors=${st?.connectionErrors}`) }
    await browser?.close()
    await page?.close()
    await server?.stop(true)
    await draining?.stop(true)
  })

  // Runs `body` (an async function body using `origin`) in the page; returns its value.
  const inPage = (body) => browser.evaluate(`(async () => { const origin = ${JSON.stringify(origin)}; ${body} })()`)

  test('GET: text arrives, and Resource Timing says h3', async () => {
    const before = server.getStats().requestsTotal
    const r = await inPage(`
      const res = await fetch(origin + '/hello', { cache: 'no-store' })
      const text = await res.text()
      const entries = performance.getEntriesByName(res.url, 'resource')
      return { status: res.status, text, protocols: entries.map((e) => e.nextHopProtocol), pageProtocol: location.protocol }`)
    assert.equal(r.status, 200)
    assert.equal(r.text, 'hello from napi-h3')
    assert.equal(r.pageProtocol, 'http:') // the page itself came from the plain HTTP/1.1 server
    assert.ok(r.protocols.length >= 1, 'a resource timing entry for the fetch')
    assert.equal(r.protocols.at(-1), 'h3')
    assert.ok(server.getStats().requestsTotal > before, 'the request reached our server')
    assert.ok(seen.includes('GET /hello'))
    assert.ok(server.getStats().connectionsTotal >= 1)
  })

  test('POST 100 KB (simple request, no preflight): echoed byte-exact over h3', async () => {
    const before = server.getStats().requestsTotal
    const r = await inPage(`
      const n = 100 * 1024
      const body = new Uint8Array(n).map((_, i) => i % 251)
      const res = await fetch(origin + '/echo', { method: 'POST', body, cache: 'no-store' })
      const got = new Uint8Array(await res.arrayBuffer())
      let same = got.length === n
      for (let i = 0; same && i < n; i++) same = got[i] === i % 251
      const e = performance.getEntriesByName(res.url, 'resource').at(-1)
      return { status: res.status, length: got.length, xLen: res.headers.get('x-len'), same, protocol: e?.nextHopProtocol }`)
    assert.equal(r.status, 200)
    assert.equal(r.length, 100 * 1024)
    assert.equal(r.xLen, String(100 * 1024))
    assert.equal(r.same, true)
    assert.equal(r.protocol, 'h3')
    assert.ok(server.getStats().requestsTotal > before)
    assert.ok(seen.includes(`POST /echo ${100 * 1024} `))
  })

  test('CORS preflight: OPTIONS then POST, both over h3', async () => {
    const r = await inPage(`
      const res = await fetch(origin + '/echo', { method: 'POST', body: 'preflighted', headers: { 'content-type': 'application/json', 'x-napi-h3': '1' }, cache: 'no-store' })
      return { status: res.status, text: await res.text() }`)
    assert.equal(r.status, 200)
    assert.equal(r.text, 'preflighted')
    const i = seen.indexOf('OPTIONS /echo POST')
    assert.ok(i >= 0, `preflight reached the server: ${JSON.stringify(seen)}`)
    assert.ok(seen.indexOf('POST /echo 11 application/json') > i)
  })

  test('graceful stop: an in-flight request from Chromium still completes', async () => {
    const o = `https://127.0.0.1:${draining.port}`
    const result = browser.evaluate(`fetch(${JSON.stringify(o + '/slow')}, { cache: 'no-store' }).then((r) => r.text(), (e) => 'failed: ' + e)`)
    await waitFor(() => slowStarted === 1, { timeout: 10000 })
    const stopped = draining.stop(false)
    assert.equal(await result, 'slow done')
    await stopped
  })

  // Last: it navigates the page away from the HTTP/1.1 origin.
  test('a page navigated to over h3; same-origin fetches, including a 404 from Rust (no CORS headers needed)', async () => {
    await browser.goto(`${origin}/`)
    const r = await inPage(`
      const nav = performance.getEntriesByType('navigation')[0]
      const res = await fetch('/hello', { cache: 'no-store' })
      const missing = await fetch('/nope', { cache: 'no-store' })
      return {
        title: document.title, nav: nav.nextHopProtocol, text: await res.text(),
        fetched: performance.getEntriesByName(res.url, 'resource').at(-1)?.nextHopProtocol,
        missing: [missing.status, await missing.text()]
      }`)
    assert.deepEqual(r, { title: 'served over h3', nav: 'h3', text: 'hello from napi-h3', fetched: 'h3', missing: [404, 'Not Found'] })
  })
})
