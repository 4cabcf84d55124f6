// napi-h3 WebTransport echo server for the webtransport section of bench/run.js; run under Node
// or Bun. A `webtransport` route on /echo: every bidirectional stream the client opens in the
// session is piped straight back (`bidi.readable.pipeTo(bidi.writable)`), like wt-echo (the
// pure-Rust reference) does. The session's datagrams are echoed as well (W3C API: read
// `session.datagrams.readable`, write each back to `session.datagrams.writable`), for the
// WebTransport datagram rows.
//
// Prints `LISTENING <port>` once bound (createH3Server binds synchronously).
const { createH3Server } = require('../..')

async function echoDatagrams (session) {
  const reader = session.datagrams.readable.getReader()
  const writer = session.datagrams.writable.getWriter()
  const drop = () => {}
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      writer.write(value).catch(drop)
    }
  } catch {}
}

const s = createH3Server({
  port: 0,
  hostname: '127.0.0.1',
  routes: [
    {
      pattern: '/echo',
      async webtransport (session) {
        // The session is accepted implicitly; incomingBidirectionalStreams is a ReadableStream
        // of { readable, writable }.
        echoDatagrams(session)
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
