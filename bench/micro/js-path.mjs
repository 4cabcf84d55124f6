// Per-request cost of the JS-thread stages of a "hello" request, without the network: what
// lib/server.js does between a native request batch and the response handed back. Run under
// each runtime: `node bench/micro/js-path.mjs`, `bun bench/micro/js-path.mjs`.
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const { serverRequest } = require('../../lib/request.js')
const { headerPairs, flatHeaders } = require('../../lib/convert.js')
const { pumpBody, bodyAtHand = () => undefined } = require('../../lib/response.js')

const N = Number(process.env.N || 200000)
const flat = ['user-agent', 'h3-load', 'accept', '*/*']
const url = 'https://127.0.0.1:4433/'
const fakeNative = { startResponse: () => true, write: async () => true, end: () => true, abort: () => true }
let sink = 0
const respond = (id, status, headers, body) => { sink += status + headers.length + (body ? body.length : 0) }

const ONLY = process.env.ONLY ? new RegExp(process.env.ONLY) : null
async function time (name, fn, batch = 64) {
  if (ONLY && !ONLY.test(name)) return
  for (let i = 0; i < Number(process.env.WARM || 2000); i++) await fn(i) // warm up the JIT
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i += batch) {
    const ps = []
    for (let j = 0; j < batch; j++) ps.push(fn(i + j))
    await Promise.all(ps)
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / N
  console.log(`${name.padEnd(44)} ${us.toFixed(2)} µs`)
  return us
}

const st = () => ({ aborted: false, controller: null })
await time('headerPairs', (i) => { sink += headerPairs(flat).length })
await time('new Request(url, {method, headers})', () => { sink += new Request(url, { method: 'GET', headers: headerPairs(flat) }).method.length })
await time('serverRequest (ours)', (i) => { sink += serverRequest(i, 'GET', url, headerPairs(flat), null, undefined, null, st()).method.length })
await time('new Response("hello")', () => { sink += new Response('hello').status })
await time('Response + flatHeaders', () => { sink += flatHeaders(new Response('hello').headers).length })
await time('Response + .body', () => { sink += new Response('hello').body ? 1 : 0 })
await time('Response + pumpBody', (i) => {
  const res = new Response('hello')
  return pumpBody(fakeNative, respond, i, res.status, flatHeaders(res.headers), res.body.getReader(), undefined)
})
await time('Response + text()', async () => { sink += (await new Response('hello').text()).length })
await time('Response + arrayBuffer()', async () => { sink += (await new Response('hello').arrayBuffer()).byteLength })
await time('whole path (request+handler+pump)', (i) => {
  const req = serverRequest(i, 'GET', url, headerPairs(flat), null, undefined, null, st())
  const res = new Response('hello')
  sink += req.method.length
  const headers = flatHeaders(res.headers)
  const src = bodyAtHand(res)
  if (src !== undefined) return respond(i, res.status, headers, src)
  return pumpBody(fakeNative, respond, i, res.status, headers, res.body.getReader(), undefined)
})
console.log(sink > 0 ? '' : 'x')
