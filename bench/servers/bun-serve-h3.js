// Bun.serve with HTTP/3 (lsquic inside Bun): the native baseline for `napi-h3 (bun)`.
// Usage: bun bench/servers/bun-serve-h3.js CERT.pem KEY.pem   (run.js writes a throwaway pair)
// Prints `LISTENING <port>` once bound. Binds 127.0.0.1, ephemeral port (TCP + UDP, same number).
const fs = require('node:fs')

const [certPath, keyPath] = process.argv.slice(2)
if (!certPath || !keyPath) {
  console.error('usage: bun bench/servers/bun-serve-h3.js CERT.pem KEY.pem')
  process.exit(2)
}
const server = Bun.serve({
  port: Number(process.env.PORT || 0),
  hostname: '127.0.0.1',
  http3: true,
  tls: { cert: fs.readFileSync(certPath, 'utf8'), key: fs.readFileSync(keyPath, 'utf8') },
  fetch: () => new Response('hello')
})
console.log('LISTENING ' + server.port)
