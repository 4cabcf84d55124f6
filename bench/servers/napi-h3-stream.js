// napi-h3 streaming server for the throughput section of bench/run.js; run under Node or Bun.
//
//   POST /upload             streaming route: SHA-256 over the request body as it arrives,
//                            answers `bytes=N sha256=HEX` (same as h3-hello's POST)
//   GET  /download?bytes=N   N bytes of 'x' from a pull-based ReadableStream (highWaterMark 0),
//                            64 KiB chunks, all views of one preallocated buffer
//   GET  /download?bytes=N&fresh=1   the same, with a newly allocated chunk per pull (as user
//                            code that builds its chunks does)
//
// Prints `LISTENING <port>` once bound (createH3Server binds synchronously).
const { createHash } = require('node:crypto')
const { createH3Server } = require('../..')

const CHUNK = 64 * 1024
const chunkBuf = new Uint8Array(CHUNK).fill(0x78) // 'x', like h3-hello's /download

function bytesParam (params) {
  const v = params.get('bytes')
  const n = Number(v)
  return v !== null && Number.isSafeInteger(n) && n >= 0 ? n : null
}

const s = createH3Server({
  port: 0,
  hostname: '127.0.0.1',
  maxRequestBodySize: 2 ** 40,
  routes: [
    {
      method: 'POST',
      pattern: '/upload',
      mode: 'streaming',
      fetch: async (req) => {
        const h = createHash('sha256')
        let n = 0
        for await (const c of req.body) {
          h.update(c)
          n += c.byteLength
        }
        return new Response(`bytes=${n} sha256=${h.digest('hex')}`)
      }
    },
    {
      method: 'GET',
      pattern: '/download',
      fetch: (req) => {
        const params = new URL(req.url).searchParams
        const total = bytesParam(params)
        if (total === null) return new Response('need ?bytes=N\n', { status: 400 })
        const chunk = params.get('fresh') === '1' ? (n) => new Uint8Array(n).fill(0x78) : (n) => new Uint8Array(chunkBuf.buffer, 0, n)
        let left = total
        const body = new ReadableStream(
          {
            pull (controller) {
              if (left === 0) {
                controller.close()
                return
              }
              const n = Math.min(left, CHUNK)
              left -= n
              controller.enqueue(chunk(n))
            }
          },
          { highWaterMark: 0 }
        )
        return new Response(body, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(total) } })
      }
    }
  ]
})
console.log('LISTENING ' + s.port)
