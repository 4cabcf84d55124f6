'use strict'
// Loads the addon first inside worker threads (one after another, then several at once), then on
// the main thread. mimalloc 3.3 crashed the process with SIGSEGV on the second load (issue #10).
const { Worker } = require('node:worker_threads')
const path = require('node:path')
const root = path.join(__dirname, '..', '..')
const code = `require(${JSON.stringify(root)}).createH3Server; require('node:worker_threads').parentPort.postMessage('loaded')`

function once () {
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true })
    let loaded = false
    w.on('message', (m) => { loaded = m === 'loaded' })
    w.on('error', reject)
    w.on('exit', (code) => (loaded && code === 0 ? resolve() : reject(new Error(`worker exit ${code}, loaded ${loaded}`))))
  })
}

async function main () {
  for (let i = 0; i < 4; i++) await once()
  await Promise.all([once(), once(), once()])
  const { createH3Server } = require(root)
  const server = createH3Server({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('ok') })
  await server.stop(true)
  for (let i = 0; i < 2; i++) await once()
  console.log('ok')
}
main().catch((e) => { console.error(e); process.exit(1) })
