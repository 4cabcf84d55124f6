// Diagnostic, not a spec (issue #10 item 8): many fresh QUIC handshakes from Chromium at once, against
// servers started just before, while the JS thread is blocked (BUSY_MS, default 300). A failed fetch
// or a server-side connectionErrors > 0 means a handshake failed; H3_CHROMIUM_NETLOG=DIR says why.
// Usage: bun|node __test__/browser-handshake-stress.mjs [rounds=5] [servers=12]
import { serve } from './helpers.mjs'
import { launchChromium, spkiHash, startPageServer } from './browser.mjs'

const rounds = Number(process.argv[2] || 5)
const n = Number(process.argv[3] || 12)
const busy = (ms) => { const end = Date.now() + ms; while (Date.now() < end); }
const cors = { 'access-control-allow-origin': '*' }
let failures = 0; let total = 0
for (let r = 0; r < rounds; r++) {
  const servers = Array.from({ length: n }, () => serve({ routes: { '/hello': { GET: () => new Response('hi', { headers: cors }) } } }))
  const page = await startPageServer()
  const browser = await launchChromium({ quicOrigins: servers.map((s) => `127.0.0.1:${s.port}`), spkiHashes: servers.map((s) => spkiHash(s.certificatePem)) })
  try {
    await browser.goto(page.url)
    const urls = servers.map((s) => `https://127.0.0.1:${s.port}/hello`)
    const p = browser.evaluate(`Promise.all(${JSON.stringify(urls)}.map((u) => fetch(u, { cache: 'no-store' }).then((r) => r.text(), (e) => 'failed: ' + e)))`, { timeout: 30000 })
    busy(Number(process.env.BUSY_MS || 300))
    const res = await p
    const bad = res.filter((t) => t !== 'hi')
    const errs = servers.reduce((a, s) => a + s.getStats().connectionErrors, 0)
    total += res.length; failures += bad.length + errs
    console.log(`round ${r}: ${res.length - bad.length}/${res.length} ok, server connectionErrors ${errs} ${bad.length ? JSON.stringify(bad) : ''}`)
  } finally {
    await browser.close(); await page.close()
    await Promise.all(servers.map((s) => s.stop(true)))
  }
}
console.log(`TOTAL fetches=${total} failures=${failures}`)
process.exit(failures ? 1 : 0)
