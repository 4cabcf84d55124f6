import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { createRequire } from 'node:module'
import { serve, aioquic, request, waitFor, root, sleep } from './helpers.mjs'

const { createH3Client } = createRequire(import.meta.url)(root)

function runChild (code, timeoutMs = 15000) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    const t0 = Date.now()
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, ms: Date.now() - t0 }) })
  })
}

const entry = JSON.stringify(path.join(root, 'index.js'))

describe('lifecycle', () => {
  test('stop(true) mid-download ends the client\'s read at once, not at its idle timeout (10 rounds)', async () => {
    // quinn 0.11 held the CONNECTION_CLOSE behind the download's queued data, so in about half
    // the rounds the client only noticed at its idle timeout (10 s here).
    const chunk = new Uint8Array(64 * 1024)
    for (let round = 0; round < 10; round++) {
      const server = serve({ fetch: () => new Response(new ReadableStream({ pull (c) { c.enqueue(chunk.slice()) } }, { highWaterMark: 0 })) })
      const client = createH3Client({ tls: { rejectUnauthorized: false }, idleTimeout: 10 })
      try {
        const reader = (await client.fetch(`https://127.0.0.1:${server.port}/`)).body.getReader()
        for (let got = 0; got < 2 * 1024 * 1024;) got += (await reader.read()).value.length
        const t0 = Date.now()
        const stopped = server.stop(true)
        await assert.rejects((async () => { for (;;) if ((await reader.read()).done) return })())
        const ms = Date.now() - t0
        assert.ok(ms < 2000, `round ${round}: the client's read ended ${ms} ms after stop(true)`)
        await stopped
      } finally {
        await client.close()
        await server.stop(true)
      }
    }
  })

  test('graceful stop lets the in-flight request finish, then resolves', async () => {
    let release
    const gate = new Promise((resolve) => { release = resolve })
    let signalAborted = null
    const server = serve({ fetch: async (req) => { await gate; signalAborted = req.signal.aborted; return new Response('finished') } })
    const pending = aioquic(server, ['request', '--path', '/'])
    await waitFor(() => server.pendingRequests === 1)
    let stopped = false
    const stopping = server.stop().then(() => { stopped = true })
    await sleep(200)
    assert.equal(stopped, false, 'stop() must wait for the in-flight request')
    release()
    const out = await pending
    assert.equal(out.results[0].status, 200)
    assert.equal(out.results[0].body_text, 'finished')
    await stopping
    assert.equal(signalAborted, false)
    assert.equal(server.getStats().connectionsActive, 0)
  })

  test('forced stop closes now and aborts the handler signal', async () => {
    let sawAbort
    const aborted = new Promise((resolve) => { sawAbort = resolve })
    const server = serve({
      fetch: (req) => new Promise((resolve) => {
        req.signal.addEventListener('abort', () => { sawAbort(true); resolve(new Response('late')) })
      })
    })
    const pending = aioquic(server, ['request', '--path', '/'])
    await waitFor(() => server.pendingRequests === 1)
    await server.stop(true)
    assert.equal(await Promise.race([aborted, sleep(3000).then(() => false)]), true)
    const out = await pending
    assert.notEqual(out.results[0].status, 200)
  })

  test('stop({ timeout }): a response that never ends cannot hold a graceful stop past its deadline', async () => {
    let signalAborted = false
    const server = serve({
      fetch: (req) => {
        req.signal.addEventListener('abort', () => { signalAborted = true })
        // Streams forever: one chunk now, then nothing and no end.
        return new Response(new ReadableStream({ start (c) { c.enqueue(new TextEncoder().encode('partial')) } }))
      }
    })
    const pending = aioquic(server, ['request', '--path', '/forever'])
    await waitFor(() => server.pendingRequests === 1)
    const t0 = Date.now()
    await server.stop({ timeout: 0.5 })
    const took = Date.now() - t0
    assert.ok(took >= 450, `stopped after ${took} ms, before its deadline`)
    assert.ok(took < 5000, `stop took ${took} ms`)
    assert.equal(signalAborted, true)
    assert.equal(server.getStats().connectionsActive, 0)
    const out = await pending
    assert.equal(out.results[0].complete, false, JSON.stringify(out))
    // The forced stop resets the response (H3_INTERNAL_ERROR, 0x102) before the connection closes.
    const r = out.results[0]
    assert.ok(r.error === 'connection_closed' || (r.error === 'stream_reset' && r.stream_reset === 0x102), JSON.stringify(out))
  })

  test('stop({ timeout }) ends as soon as the work does when that comes first', async () => {
    const server = serve({ fetch: async () => { await sleep(100); return new Response('done') } })
    const pending = aioquic(server, ['request', '--path', '/'])
    await waitFor(() => server.pendingRequests === 1)
    const t0 = Date.now()
    await server.stop({ timeout: 30 })
    assert.ok(Date.now() - t0 < 5000)
    assert.equal((await pending).results[0].status, 200)
  })

  test('stop() rejects bad arguments with ERR_H3_INVALID_ARG', async () => {
    const server = serve({ fetch: () => new Response('x') })
    try {
      for (const bad of ['now', 5, { timeout: -1 }, { timeout: 'soon' }, { force: 'yes' }]) {
        assert.throws(() => server.stop(bad), (e) => e instanceof TypeError && e.code === 'ERR_H3_INVALID_ARG', JSON.stringify(bad))
      }
    } finally {
      await server.stop(true)
    }
  })

  test('process.exit() with a server running: its peers see the connection close at once', async () => {
    // The child answers /exit with a body that never ends, then exits.
    const code = `const s = require(${entry}).createH3Server({ port: 0, hostname: '127.0.0.1', idleTimeout: 60, fetch: () => {
      setTimeout(() => process.exit(0), 100)
      return new Response(new ReadableStream({ start (c) { c.enqueue(new Uint8Array(5)) } }))
    } }); console.log('PORT ' + s.port)`
    const child = spawn(process.execPath, ['-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
    const port = await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => { const m = /PORT (\d+)/.exec(String(d)); if (m) resolve(m[1]) })
      child.once('exit', (c) => reject(new Error(`child exited (${c})`)))
    })
    const client = createH3Client({ tls: { rejectUnauthorized: false }, idleTimeout: 60 })
    try {
      const res = await client.fetch(`https://127.0.0.1:${port}/exit`)
      const t0 = Date.now()
      const err = await res.arrayBuffer().then(() => null, (e) => e)
      assert.ok(err, 'the body of a response that never ends cannot complete')
      assert.ok(Date.now() - t0 < 10_000, `the client learnt after ${Date.now() - t0} ms (idle timeout: 60 s)`)
    } finally {
      await client.close()
      child.kill()
    }
  })

  test('stop() is idempotent and new connections are refused afterwards', async () => {
    const server = serve({ fetch: () => new Response('x') })
    const port = server.port
    await Promise.all([server.stop(), server.stop()])
    const out = await aioquic(port, ['request', '--path', '/', '--timeout', '2'], { timeout: 20 }).catch((e) => ({ failed: e.message }))
    assert.ok(out.failed || out.error || out.results?.[0]?.status == null, JSON.stringify(out).slice(0, 300))
  })

  test('reload swaps fetch and routes without dropping the server', async () => {
    const server = serve({ fetch: () => new Response('v1') })
    try {
      assert.equal((await request(server, { path: '/' })).body_text, 'v1')
      server.reload({ fetch: () => new Response('v2') })
      assert.equal((await request(server, { path: '/' })).body_text, 'v2')
      server.reload({ routes: { '/r/:x': (req) => new Response('route ' + req.params.x) } })
      assert.equal((await request(server, { path: '/r/5' })).body_text, 'route 5')
      assert.equal((await request(server, { path: '/other' })).body_text, 'v2')
      assert.throws(() => server.reload({ routes: [{ method: 'GET', pattern: 'bad', fetch () {} }] }), { name: 'TypeError', code: 'ERR_H3_ROUTE' })
      assert.equal((await request(server, { path: '/r/6' })).body_text, 'route 6')
    } finally { await server.stop(true) }
  })

  test('the process exits on its own after stop()', async () => {
    const r = await runChild(`const s = require(${entry}).createH3Server({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('x') });
      setTimeout(() => s.stop().then(() => console.log('stopped')), 100)`)
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /stopped/)
  })

  test('a running server keeps the process alive; unref() lets it exit, ref() holds it again', async () => {
    const alive = await runChild(`const s = require(${entry}).createH3Server({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('x') });
      setTimeout(() => { console.log('still alive'); process.exit(3) }, 700)`)
    assert.equal(alive.code, 3, alive.out)
    const unref = await runChild(`const s = require(${entry}).createH3Server({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('x') }); s.unref()`)
    assert.equal(unref.code, 0, unref.out)
    assert.ok(unref.ms < 5000)
    const reref = await runChild(`const s = require(${entry}).createH3Server({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('x') }); s.unref(); s.ref();
      setTimeout(() => { process.exit(4) }, 500).unref()`)
    assert.equal(reref.code, 4, reref.out)
  })
})

describe('connection limits', () => {
  test('idleTimeout closes a silent connection; its requests see signal abort; stats settle', async () => {
    let aborted = false
    const server = serve({
      idleTimeout: 1,
      fetch: (req) => new Promise((resolve) => {
        req.signal.addEventListener('abort', () => { aborted = true; resolve(new Response('late')) })
      })
    })
    try {
      const t0 = Date.now()
      const out = await aioquic(server, ['request', '--path', '/', '--timeout', '8'])
      assert.notEqual(out.results[0].status, 200)
      await waitFor(() => aborted, { timeout: 5000 })
      assert.ok(Date.now() - t0 < 6000)
      await waitFor(() => server.getStats().connectionsActive === 0 && server.getStats().requestsActive === 0)
    } finally { await server.stop(true) }
  })

  test('maxConnections refuses connections beyond the limit', async () => {
    let release
    const gate = new Promise((resolve) => { release = resolve })
    const server = serve({ maxConnections: 1, fetch: async () => { await gate; return new Response('ok') } })
    try {
      const first = aioquic(server, ['request', '--path', '/'])
      await waitFor(() => server.pendingRequests === 1)
      const second = await aioquic(server, ['request', '--path', '/', '--timeout', '2'], { timeout: 20 }).catch((e) => ({ failed: e.message }))
      assert.ok(second.failed || second.error || second.results?.[0]?.status == null, JSON.stringify(second).slice(0, 300))
      release()
      assert.equal((await first).results[0].status, 200)
      assert.ok(server.getStats().connectionErrors >= 1)
    } finally { await server.stop(true) }
  })
})
