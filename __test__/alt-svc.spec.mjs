// Alt-Svc discovery in a real browser: headless Chromium loads a page from a node:https server
// that sends `Alt-Svc: h3=":PORT"`, then reaches the same origin over HTTP/3 (our server on the
// same port number, UDP). Without the header it stays on TCP.
//
// Chromium refuses QUIC to certificates that do not chain to a built-in public root, whatever
// --ignore-certificate-errors-spki-list says, except for hosts named in --origin-to-force-quic-on.
// Forcing QUIC on the real origin would skip discovery, so the test forces it on a port nobody
// uses (h3.test:1): that lifts the root rule for the host name while the origin under test is
// still found through Alt-Svc alone.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:https'
import { createRequire } from 'node:module'
import { root } from './helpers.mjs'
import { chromiumPath, haveChromium, launchChromium, spkiHash } from './browser.mjs'
import { makeCA } from './tls-certs.mjs'

const require = createRequire(import.meta.url)
const { createH3Server, altSvcHeader } = require(root)
const skip = haveChromium ? false : `Chromium not installed at ${chromiumPath} (apt-get install chromium, or set H3_CHROMIUM)`
const HOST = 'h3.test'

/** An HTTP/3 server and a node:https server on the same port number; `altSvc` or not. */
async function pair (leaf, withAltSvc) {
  for (let attempt = 0; ; attempt++) {
    const h3 = createH3Server({ port: 0, hostname: '127.0.0.1', tls: { cert: leaf.cert, key: leaf.key }, fetch: () => new Response('over h3') })
    const tcpHits = []
    const tcp = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
      tcpHits.push(req.url)
      if (withAltSvc) res.setHeader('alt-svc', altSvcHeader(h3, { maxAge: 600 }))
      res.setHeader('content-type', 'text/html; charset=utf-8')
      res.end('<!doctype html><title>tcp</title><p>over TCP')
    })
    try {
      await new Promise((resolve, reject) => { tcp.once('error', reject); tcp.listen(h3.port, '127.0.0.1', resolve) })
      return { h3, tcp, tcpHits, origin: `https://${HOST}:${h3.port}` }
    } catch (e) {
      // The TCP port of that number is taken: try another.
      await h3.stop(true)
      if (attempt >= 5) throw e
    }
  }
}

describe('Alt-Svc: Chromium moves from node:https to HTTP/3', { skip, timeout: 90000 }, () => {
  let leaf, browser, withHeader, without
  before(async () => {
    leaf = makeCA().issue([HOST])
    withHeader = await pair(leaf, true)
    without = await pair(leaf, false)
    browser = await launchChromium({
      spkiHashes: [spkiHash(leaf.cert)],
      args: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`, `--origin-to-force-quic-on=${HOST}:1`]
    })
  })
  after(async () => {
    await browser?.close()
    for (const p of [withHeader, without]) {
      p?.tcp.close()
      await p?.h3.stop(true)
    }
  })

  /** Navigates to `origin`, then fetches until a response came over h3 (at most 10 tries). */
  async function visit (origin) {
    await browser.goto(origin + '/')
    const page = await browser.evaluate('performance.getEntriesByType("navigation")[0].nextHopProtocol')
    const fetched = []
    for (let i = 0; i < 10 && !fetched.includes('h3'); i++) {
      fetched.push(await browser.evaluate(`(async () => {
        const res = await fetch('/r${i}', { cache: 'no-store' })
        await res.text()
        return performance.getEntriesByName(res.url, 'resource').at(-1)?.nextHopProtocol
      })()`))
      if (fetched.at(-1) !== 'h3') await new Promise((resolve) => setTimeout(resolve, 200))
    }
    return { page, fetched }
  }

  test('with the header: the page over HTTP/1.1, then the same origin over h3', async () => {
    const { page, fetched } = await visit(withHeader.origin)
    assert.equal(page, 'http/1.1')
    assert.deepEqual(withHeader.tcpHits.slice(0, 1), ['/'])
    assert.equal(fetched.at(-1), 'h3', `protocols: ${fetched}`)
    const stats = withHeader.h3.getStats()
    assert.ok(stats.requestsTotal >= 1 && stats.connectionsTotal >= 1, JSON.stringify(stats))
    assert.equal(withHeader.h3.connections()[0]?.serverName, HOST)
  })

  test('without the header: TCP only, the HTTP/3 server is never contacted', async () => {
    await browser.goto(without.origin + '/')
    const fetched = []
    for (let i = 0; i < 3; i++) {
      fetched.push(await browser.evaluate(`(async () => {
        const res = await fetch('/n${i}', { cache: 'no-store' })
        await res.text()
        return performance.getEntriesByName(res.url, 'resource').at(-1)?.nextHopProtocol
      })()`))
    }
    assert.deepEqual(fetched, ['http/1.1', 'http/1.1', 'http/1.1'])
    assert.equal(without.h3.getStats().connectionsTotal, 0)
  })
})
