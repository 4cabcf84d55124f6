'use strict'
// A worker that starts an HTTP/3 server and reports its port. With argv "stream" its handler
// answers GET /hang with a body that never ends (an in-flight request at teardown).
const { parentPort, workerData } = require('node:worker_threads')
const path = require('node:path')
const { createH3Server } = require(path.join(__dirname, '..', '..'))

const server = createH3Server({
  port: workerData?.port ?? 0,
  hostname: '127.0.0.1',
  fetch (req) {
    if (new URL(req.url).pathname === '/hang') {
      return new Response(new ReadableStream({ start (c) { c.enqueue(new TextEncoder().encode('partial')) } }))
    }
    return new Response('from worker')
  }
})
parentPort.postMessage({ port: server.port })
if (workerData?.exitAfterListen) setTimeout(() => process.exit(0), 50)
