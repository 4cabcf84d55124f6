import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import { root, serve, request, waitFor, sleep } from './helpers.mjs'

const { createH3Client } = createRequire(import.meta.url)(root)
const fixture = (name) => path.join(root, '__test__', 'workers', name)

/** Starts fixture `name` in a worker; resolves the worker and its first message. */
function startWorker (name, workerData) {
  const worker = new Worker(fixture(name), { workerData })
  const first = new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`worker exited (${code}) before reporting`)))
  })
  return first.then((msg) => ({ worker, msg }))
}

const exited = (worker) => new Promise((resolve) => worker.once('exit', resolve))

/** A server on `port` in this thread: binding proves the worker released the UDP port. */
async function bindsAgain (port) {
  const s = serve({ port, fetch: () => new Response('main') })
  try {
    assert.equal(s.port, port)
    const r = await request(s)
    assert.equal(r.status, 200)
  } finally {
    await s.stop(true)
  }
}

// Issue #10: worker pools load the addon in workers first; every server and client a worker made
// is force-stopped, and its socket released, when the worker goes away.
describe('worker threads', () => {
  test('loading the addon first in workers, then on the main thread, does not crash', async () => {
    const out = await new Promise((resolve) => {
      execFile(process.execPath, [fixture('load-in-workers.cjs')], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr }))
    })
    assert.equal(out.code, 0, `exit ${out.code}\n${out.stderr}`)
    assert.match(out.stdout, /^ok$/m)
  })

  test('terminate() force-stops the worker\'s server: in-flight requests end, the port is free', async () => {
    const { worker, msg } = await startWorker('serve-in-worker.cjs')
    const { port } = msg
    const client = createH3Client({ tls: { rejectUnauthorized: false }, idleTimeout: 60 })
    try {
      const ok = await client.fetch(`https://127.0.0.1:${port}/`)
      assert.equal(await ok.text(), 'from worker')
      const hanging = await client.fetch(`https://127.0.0.1:${port}/hang`)
      const body = hanging.arrayBuffer().then(() => 'ended', (e) => e)
      const t0 = Date.now()
      await worker.terminate()
      const end = await Promise.race([body, sleep(10_000).then(() => 'still hanging')])
      assert.ok(end instanceof Error, `body of the in-flight request: ${end}`)
      assert.ok(Date.now() - t0 < 10_000)
      await bindsAgain(port)
    } finally {
      await client.close()
    }
  })

  test('a worker restarted on the same port binds it again', async () => {
    const first = await startWorker('serve-in-worker.cjs')
    const port = first.msg.port
    await first.worker.terminate()
    const second = await startWorker('serve-in-worker.cjs', { port })
    try {
      assert.equal(second.msg.port, port)
      const r = await request(port)
      assert.equal(r.status, 200)
    } finally {
      await second.worker.terminate()
    }
  })

  test('process.exit() inside a worker releases its server', async () => {
    const { worker, msg } = await startWorker('serve-in-worker.cjs', { exitAfterListen: true })
    await exited(worker)
    await bindsAgain(msg.port)
  })

  test('a worker torn down while its client has requests in flight leaves this thread unharmed', async () => {
    const server = serve({ fetch: () => new Response('x'.repeat(1000)) })
    try {
      const url = `https://127.0.0.1:${server.port}/`
      const { worker } = await startWorker('client-in-worker.cjs', { url })
      await worker.terminate()
      // The worker's connection is closed, not left to the idle timeout.
      await waitFor(() => server.getStats().connectionsActive === 0, { timeout: 5000 })
      const r = await request(server)
      assert.equal(r.status, 200)
    } finally {
      await server.stop(true)
    }
  })
})
