// Type-checks the ESM entry (`import` condition of the exports map; types: index.d.ts).
// Compiled by __test__/types.spec.mjs with `tsc -p __test__/types`; never run.
import h3, { createH3Server, h3Fetch, createH3Client, withTrailers, trailersSymbol, WebTransportError, H3Server, H3Client } from 'napi-h3'
import type { H3Request, ServerStats, WebTransportSession } from 'napi-h3'

const server: H3Server = createH3Server({
  port: 0,
  routes: {
    '/hello/:name': (req: H3Request) => withTrailers(new Response(`hi ${req.params.name}`), { 'x-t': '1' }),
    '/wt': { GET: new Response('use CONNECT') }
  }
})
const same: H3Server = h3.createH3Server({ port: 0 })
const stats: ServerStats = server.getStats()
const res = await h3Fetch(new URL('/hello/x', server.url), { tls: { ca: server.certificatePem ?? '' } })
console.log(stats.requestsTotal, await res.text(), await res.trailers, typeof trailersSymbol)

const client: H3Client = createH3Client({ tls: { serverCertificateHashes: [server.certificateHash] } })
const wt: WebTransportSession = await client.webtransport(new URL('/wt', server.url))
wt.close({ closeCode: 0 })
const err = new WebTransportError('x', { streamErrorCode: 1 })
console.log(err.streamErrorCode, h3.trailersSymbol === trailersSymbol, h3.H3Client === client.constructor)

// @ts-expect-error: the default export is the CommonJS module, not a function
h3()
// @ts-expect-error: stop takes a boolean or StopOptions
await server.stop('now')
await same.stop({ timeout: 1 })
await client.close()
