// Loads the installed napi-h3 (a bare import, as a user's project does), serves HTTP/3 on
// 127.0.0.1 port 0, and fetches from it with h3Fetch: a GET, a POST echo and a route param.
// Run by the install test and the cross-platform smoke tests under Node, Bun and Deno; prints one
// `smoke ok <runtime> <platform>` line, or throws (non-zero exit).
import { createH3Server, h3Fetch } from 'napi-h3'

const runtime = globalThis.Deno ? `deno ${globalThis.Deno.version.deno}` : globalThis.Bun ? `bun ${globalThis.Bun.version}` : `node ${process.version}`
const server = createH3Server({
  hostname: '127.0.0.1',
  port: 0,
  routes: {
    '/hello/:name': { GET: (req) => new Response(`hello ${req.params.name}`) },
    '/echo': { POST: async (req) => new Response(await req.arrayBuffer(), { headers: { 'x-len': req.headers.get('content-length') ?? '' } }) }
  }
})
const tls = { serverCertificateHashes: [server.certificateHash] }
function check (what, got, want) {
  if (got !== want) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
}
try {
  const a = await h3Fetch(`${server.url}hello/h3`, { tls })
  check('GET status', a.status, 200)
  check('GET body', await a.text(), 'hello h3')
  const payload = new Uint8Array(200000).map((_, i) => i % 251)
  const b = await h3Fetch(`${server.url}echo`, { method: 'POST', body: payload, tls })
  const back = new Uint8Array(await b.arrayBuffer())
  check('POST length', back.length, payload.length)
  check('POST bytes', back.every((v, i) => v === payload[i]), true)
  const c = await h3Fetch(`${server.url}missing`, { tls })
  check('404 status', c.status, 404)
  await c.arrayBuffer()
} finally {
  await server.stop()
}
console.log(`smoke ok ${runtime} ${process.platform}-${process.arch}`)
