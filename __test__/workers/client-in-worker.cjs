'use strict'
// A worker whose HTTP/3 client keeps fetching from workerData.url until the worker is torn down.
const { parentPort, workerData } = require('node:worker_threads')
const path = require('node:path')
const { createH3Client } = require(path.join(__dirname, '..', '..'))

const client = createH3Client({ tls: { rejectUnauthorized: false } })
let n = 0
async function loop () {
  for (;;) {
    const r = await client.fetch(workerData.url)
    await r.arrayBuffer()
    if (++n === 5) parentPort.postMessage('busy')
  }
}
for (let i = 0; i < 4; i++) loop().catch(() => {})
