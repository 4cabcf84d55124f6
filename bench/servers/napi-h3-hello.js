// napi-h3 "hello" server, run under Node or Bun by bench/run.js.
// Prints `LISTENING <port>` once bound (createH3Server binds synchronously).
const { createH3Server } = require('../..')

const s = createH3Server({
  port: 0,
  hostname: '127.0.0.1',
  fetch: () => new Response('hello')
})
console.log('LISTENING ' + s.port)
