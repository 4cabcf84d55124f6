// napi-h3 QUIC datagram echo server for the datagram section of bench/run.js; run under Node or
// Bun. The server-level `quicDatagram` handler gets every QUIC DATAGRAM of a connection that is
// not an RFC 9297 HTTP datagram of a request stream (dgram-load opens no streams at all) and
// sends the payload straight back on the same connection.
//
// Prints `LISTENING <port>` once bound (createH3Server binds synchronously).
const { createH3Server } = require('../..')

const s = createH3Server({
  port: 0,
  hostname: '127.0.0.1',
  quicDatagram (payload, ctx) {
    ctx.sendReply(payload)
  }
})
console.log('LISTENING ' + s.port)
