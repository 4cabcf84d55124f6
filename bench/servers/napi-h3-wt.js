// napi-h3 WebTransport echo server for the webtransport section of bench/run.js; run under Node
// or Bun. A `webtransport` route on /echo: every bidirectional stream the client opens in the
// session is piped straight back (`bidi.readable.pipeTo(bidi.writable)`), like wt-echo (the
// pure-Rust reference) does.
//
// Prints `LISTENING <port>` once bound (createH3Server binds synchronously).
const { createH3Server } = require('../..')

const s = createH3Server({
  port: 0,
  hostname: '127.0.0.1',
  routes: [
    {
      pattern: '/echo',
      async webtransport (session) {
        // The session is accepted implicitly; incomingBidirectionalStreams is a ReadableStream
        // of { readable, writable }.
        const reader = session.incomingBidirectionalStreams.getReader()
        for (;;) {
          const { value: bidi, done } = await reader.read()
          if (done) break
          bidi.readable.pipeTo(bidi.writable).catch(() => {})
        }
      }
    }
  ]
})
console.log('LISTENING ' + s.port)
