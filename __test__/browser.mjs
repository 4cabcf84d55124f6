// Headless Chromium driven over the DevTools protocol (CDP), with no npm dependency: Chromium is
// launched with --remote-debugging-port=0, the "DevTools listening on ws://..." line is read from its
// stderr, and CDP is spoken over the runtime's WebSocket (global `WebSocket` in Node 22+ and Bun; a
// minimal client over node:net below for Node 20, which only has it behind --experimental-websocket).
// Every wait is bounded; close() kills Chromium's whole process group and removes its profile dir.
import { spawn } from 'node:child_process'
import { randomBytes, X509Certificate, createHash } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

export const chromiumPath = process.env.H3_CHROMIUM || '/usr/bin/chromium'
export const haveChromium = existsSync(chromiumPath)

/** base64 SHA-256 of the certificate's SubjectPublicKeyInfo DER: the form --ignore-certificate-errors-spki-list takes. */
export function spkiHash (certPem) {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(spki).digest('base64')
}

export function withTimeout (promise, ms, what) {
  let t
  return Promise.race([
    promise,
    new Promise((resolve, reject) => { t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms) })
  ]).finally(() => clearTimeout(t))
}

// ---------------------------------------------------------------------------------------------
// WebSocket: { send(text), close(), onmessage(text), onclose() } over either implementation.

export function connectWebSocket (url, timeoutMs) {
  if (typeof globalThis.WebSocket === 'function' && !process.env.H3_BROWSER_OWN_WS) return connectBuiltin(url, timeoutMs)
  return connectMinimal(url, timeoutMs)
}

function connectBuiltin (url, timeoutMs) {
  const ws = new globalThis.WebSocket(url)
  const conn = {
    kind: 'builtin',
    onmessage: null,
    onclose: null,
    send: (text) => ws.send(text),
    close: () => { try { ws.close() } catch {} }
  }
  ws.onmessage = (ev) => conn.onmessage?.(typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data).toString('utf8'))
  ws.onclose = () => conn.onclose?.()
  return withTimeout(new Promise((resolve, reject) => {
    ws.onopen = () => resolve(conn)
    ws.onerror = (ev) => reject(new Error(`WebSocket ${url}: ${ev?.message || 'error'}`))
  }), timeoutMs, `WebSocket connect ${url}`).catch((e) => { conn.close(); throw e })
}

/** RFC 6455 client, just enough for CDP: text frames (fragmented or not), ping/pong, close. */
function connectMinimal (url, timeoutMs) {
  const u = new URL(url)
  const socket = net.connect({ host: u.hostname, port: Number(u.port) })
  const key = randomBytes(16).toString('base64')
  const expectAccept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
  let buf = Buffer.alloc(0)
  let open = false
  let closed = false
  let fragments = []
  const conn = {
    kind: 'minimal',
    onmessage: null,
    onclose: null,
    send: (text) => writeFrame(0x1, Buffer.from(text, 'utf8')),
    close: () => {
      if (closed) return
      try { writeFrame(0x8, Buffer.alloc(0)) } catch {}
      socket.end()
      setTimeout(() => socket.destroy(), 200).unref?.()
    }
  }
  function writeFrame (opcode, payload) {
    const n = payload.length
    const head = n < 126
      ? Buffer.from([0x80 | opcode, 0x80 | n])
      : n < 65536
        ? Buffer.from([0x80 | opcode, 0x80 | 126, n >> 8, n & 0xff])
        : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b })()])
    const mask = randomBytes(4)
    const masked = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) masked[i] = payload[i] ^ mask[i & 3]
    socket.write(Buffer.concat([head, mask, masked]))
  }
  function parseFrames () {
    for (;;) {
      if (buf.length < 2) return
      const fin = buf[0] & 0x80
      const opcode = buf[0] & 0x0f
      const masked = buf[1] & 0x80
      let len = buf[1] & 0x7f
      let off = 2
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4 } else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10 }
      const maskKey = masked ? buf.subarray(off, off + 4) : null
      if (masked) off += 4
      if (buf.length < off + len) return
      let payload = buf.subarray(off, off + len)
      if (maskKey) payload = Buffer.from(payload.map((b, i) => b ^ maskKey[i & 3]))
      buf = buf.subarray(off + len)
      if (opcode === 0x8) { closed = true; socket.end(); return }
      if (opcode === 0x9) { writeFrame(0xa, payload); continue }
      if (opcode === 0xa) continue
      if (opcode === 0x1 || opcode === 0x0) {
        fragments.push(Buffer.from(payload))
        if (fin) { const text = Buffer.concat(fragments).toString('utf8'); fragments = []; conn.onmessage?.(text) }
      }
    }
  }
  return withTimeout(new Promise((resolve, reject) => {
    socket.on('error', (e) => { if (!open) reject(e) })
    socket.on('close', () => { closed = true; if (!open) reject(new Error('WebSocket closed during handshake')); else conn.onclose?.() })
    socket.on('connect', () => {
      socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    })
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      if (!open) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.subarray(0, end).toString('latin1')
        buf = buf.subarray(end + 4)
        const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1]
        if (!/^HTTP\/1\.1 101/.test(head) || accept !== expectAccept) {
          socket.destroy()
          return reject(new Error(`WebSocket handshake refused: ${head.split('\r\n')[0]}`))
        }
        open = true
        resolve(conn)
      }
      parseFrames()
    })
  }), timeoutMs, `WebSocket connect ${url}`).catch((e) => { socket.destroy(); throw e })
}

// ---------------------------------------------------------------------------------------------
// Chromium

const live = new Set() // launched browsers not yet closed, killed on process exit whatever happens
const killAll = () => { for (const b of live) b.killNow(); live.clear() }
process.on('exit', killAll)

/** Keeps a launched browser ({ killNow() }) on the kill-on-exit list until forget(). Shared with ./firefox.mjs. */
export function trackBrowser (browser) {
  live.add(browser)
  hookSignals()
  return { forget: () => live.delete(browser), tracked: () => live.has(browser) }
}

// A browser runs in its own process group, so it would outlive a test process stopped by a signal (a
// runner's timeout): kill it first, then let the signal do what it would have done without us.
let signalsHooked = false
function hookSignals () {
  if (signalsHooked) return
  signalsHooked = true
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const onSignal = () => {
      killAll()
      if (process.listenerCount(sig) === 1) { process.removeListener(sig, onSignal); process.kill(process.pid, sig) }
    }
    process.on(sig, onSignal)
  }
}

/**
 * Launches headless Chromium with a fresh profile and one page (about:blank).
 * quicOrigins: ['127.0.0.1:PORT', ...] → --origin-to-force-quic-on (HTTP/3 without Alt-Svc discovery)
 * spkiHashes: [base64 SHA-256 of SPKI, ...] → --ignore-certificate-errors-spki-list (trust our self-signed cert)
 * Returns { evaluate(expr), goto(url), send(method, params), newPage(url), stderr(), close() }: the first
 * three act on the first tab; newPage opens another, with the same three and its own close().
 */
export async function launchChromium ({ quicOrigins = [], spkiHashes = [], args = [], timeout = 15000 } = {}) {
  if (!haveChromium) throw new Error(`Chromium not found at ${chromiumPath}`)
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'napi-h3-chromium-'))
  const flags = [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
    '--mute-audio', `--user-data-dir=${userDataDir}`, '--remote-debugging-port=0',
    '--remote-allow-origins=*',
    ...(quicOrigins.length ? [`--origin-to-force-quic-on=${quicOrigins.join(',')}`] : []),
    ...(spkiHashes.length ? [`--ignore-certificate-errors-spki-list=${spkiHashes.join(',')}`] : []),
    ...args,
    // H3_CHROMIUM_NETLOG=DIR: Chromium writes its net log (every QUIC packet, handshake and close
    // reason) to DIR/chromium-<time>-<rand>.json; kept after close() for diagnosis.
    ...(process.env.H3_CHROMIUM_NETLOG ? [`--log-net-log=${path.join(process.env.H3_CHROMIUM_NETLOG, `chromium-${Date.now()}-${randomBytes(3).toString('hex')}.json`)}`, '--net-log-capture-mode=Everything'] : []),
    'about:blank'
  ]
  // Own process group, so close() can take the zygote, renderer and network processes down with it.
  const child = spawn(chromiumPath, flags, { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  let stderrText = ''
  let exited = false
  const exitPromise = new Promise((resolve) => child.once('exit', (code, signal) => { exited = true; resolve({ code, signal }) }))
  child.on('error', () => {})
  let ws = null
  const browser = {
    pid: child.pid,
    userDataDir,
    flags,
    stderr: () => stderrText,
    killNow () {
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
      try { child.kill('SIGKILL') } catch {}
      try { rmSync(userDataDir, { recursive: true, force: true, maxRetries: 3 }) } catch {}
    }
  }
  live.add(browser)
  hookSignals()

  try {
    const wsUrl = await withTimeout(new Promise((resolve, reject) => {
      child.stderr.setEncoding('utf8')
      child.stderr.on('data', (s) => {
        stderrText = (stderrText + s).slice(-64 * 1024) // keep draining, keep the tail for diagnostics
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderrText)
        if (m) resolve(m[1])
      })
      child.once('error', reject)
      exitPromise.then(({ code, signal }) => reject(new Error(`Chromium exited (${code ?? signal}) before DevTools was up:\n${stderrText}`)))
    }), timeout, 'Chromium start')

    ws = await connectWebSocket(wsUrl, timeout)
    browser.webSocket = ws.kind // 'builtin' (global WebSocket) or 'minimal' (the node:net client above)
    let nextId = 1
    const pending = new Map()
    const listeners = new Set()
    ws.onmessage = (text) => {
      let msg
      try { msg = JSON.parse(text) } catch { return }
      if (msg.id !== undefined && pending.has(msg.id)) {
        const p = pending.get(msg.id)
        pending.delete(msg.id)
        if (msg.error) p.reject(new Error(`CDP ${p.method}: ${msg.error.message}${msg.error.data ? ' ' + msg.error.data : ''}`))
        else p.resolve(msg.result)
      } else if (msg.method) {
        for (const l of listeners) l(msg)
      }
    }
    ws.onclose = () => { for (const p of pending.values()) p.reject(new Error(`CDP ${p.method}: connection closed`)); pending.clear() }

    const send = (method, params = {}, sessionId, ms = timeout) => {
      const id = nextId++
      const p = new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }))
      ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }))
      return withTimeout(p, ms, `CDP ${method}`).finally(() => pending.delete(id))
    }
    const waitEvent = (method, sessionId, ms) => {
      let l
      return withTimeout(new Promise((resolve) => {
        l = (msg) => { if (msg.method === method && (!sessionId || msg.sessionId === sessionId)) resolve(msg.params) }
        listeners.add(l)
      }), ms, `waiting for ${method}`).finally(() => listeners.delete(l))
    }

    /** A page (tab) API over one attached target: evaluate, goto, send, close. */
    const attachPage = async (targetId) => {
      const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true })
      await send('Page.enable', {}, sessionId)
      await send('Runtime.enable', {}, sessionId)
      return {
        targetId,
        sessionId,
        /** Raw CDP call on the page's session (or the browser's with sessionId null). */
        send: (method, params, sid = sessionId, ms) => send(method, params, sid, ms),
        /** Navigates the page and waits for its load event. */
        async goto (url, { timeout: ms = timeout } = {}) {
          const loaded = waitEvent('Page.loadEventFired', sessionId, ms)
          loaded.catch(() => {})
          let r = await send('Page.navigate', { url }, sessionId, ms)
          if (r.errorText === 'net::ERR_QUIC_HANDSHAKE_FAILED') {
            // Seen once (issue #10 item 8, Bun, never reproduced since: 0 in 42 runs, every server
            // handshake counted, none failed). One retry, said out loud; a second failure is real.
            // Rerun with H3_CHROMIUM_NETLOG=DIR for Chromium's reason (QUIC_SESSION_CLOSED details).
            console.log(`# navigating to ${url}: ${r.errorText}, retrying once (set H3_CHROMIUM_NETLOG=DIR for the reason)`)
            r = await send('Page.navigate', { url }, sessionId, ms)
          }
          if (r.errorText) throw new Error(`navigating to ${url}: ${r.errorText}`)
          await loaded
        },
        /** Evaluates an expression in the page; awaits a returned promise; returns the value (JSON-able). */
        async evaluate (expression, { timeout: ms = timeout } = {}) {
          const r = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true, userGesture: true }, sessionId, ms)
          if (r.exceptionDetails) {
            const d = r.exceptionDetails
            throw new Error(`in page: ${d.exception?.description || d.exception?.value || d.text}`)
          }
          return r.result.value
        },
        /** Closes the tab (Target.closeTarget): its page is torn down as when a user closes it. */
        async close () {
          await send('Target.closeTarget', { targetId }).catch(() => {})
        }
      }
    }

    const { targetId } = await send('Target.createTarget', { url: 'about:blank' })
    const first = await attachPage(targetId)

    Object.assign(browser, {
      send: first.send,
      goto: first.goto,
      evaluate: first.evaluate,
      /**
       * Opens another tab at `url` (waits for its load event); returns { evaluate, goto, send, close }
       * for it. close() closes just that tab; browser.close() takes any still open down with it.
       */
      async newPage (url = 'about:blank', { timeout: ms = timeout } = {}) {
        const { targetId: id } = await send('Target.createTarget', { url: 'about:blank' })
        const page = await attachPage(id)
        if (url !== 'about:blank') await page.goto(url, { timeout: ms })
        return page
      },
      /** Browser.close, then SIGKILL to the process group if it has not gone within 3 s; removes the profile. */
      async close () {
        if (!live.has(browser)) return
        live.delete(browser)
        if (!exited) {
          try { await send('Browser.close', {}, undefined, 2000) } catch {}
          await withTimeout(exitPromise, 3000, 'Chromium exit').catch(() => {})
        }
        try { ws.close() } catch {}
        browser.killNow() // the rest of the process group, whatever remains
        await withTimeout(exitPromise, 3000, 'Chromium exit after SIGKILL').catch(() => {})
        child.stderr?.destroy()
        rmSync(userDataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 })
      }
    })
    return browser
  } catch (e) {
    live.delete(browser)
    try { ws?.close() } catch {}
    browser.killNow()
    child.stderr?.destroy()
    e.message += `\n--- Chromium stderr (tail) ---\n${stderrText.slice(-4000)}`
    throw e
  }
}

/** A plain HTTP/1.1 server on 127.0.0.1:0 serving one tiny HTML page: an origin for the page's fetches. */
export async function startPageServer (html = '<!doctype html><meta charset="utf-8"><title>napi-h3 browser test</title><p>napi-h3') {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    res.end(html)
  })
  await withTimeout(new Promise((resolve, reject) => { srv.once('error', reject); srv.listen(0, '127.0.0.1', resolve) }), 5000, 'page server listen')
  const { port } = srv.address()
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => withTimeout(new Promise((resolve) => { srv.closeAllConnections?.(); srv.close(() => resolve()) }), 3000, 'page server close').catch(() => {})
  }
}
