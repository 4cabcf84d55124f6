// Shared test helpers: start servers on 127.0.0.1:0 and talk real QUIC to them with independent
// clients (aioquic from the repo's venv; Bun's HTTP/3 fetch where the runtime is Bun).
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
export const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
export const { createH3Server } = require(root)
export const isBun = typeof globalThis.Bun !== 'undefined'

export const python = process.env.H3_PYTHON || path.join(root, '.venv', 'bin', 'python')
const clientPy = path.join(root, '__test__', 'py', 'h3client.py')
if (!existsSync(python)) throw new Error(`aioquic venv missing at ${python}: run .ci/run or create it (see README "Testing")`)

export function sha256 (data) {
  return createHash('sha256').update(data).digest('hex')
}

/** The bytes h3client.py sends for --body-size N. */
export function patternBytes (n) {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = i % 251
  return b
}

export function serve (options = {}) {
  return createH3Server({ port: 0, hostname: '127.0.0.1', ...options })
}

/** Runs one h3client.py scenario against the server; resolves its JSON report. */
export function aioquic (server, args, { timeout = 30 } = {}) {
  const port = typeof server === 'number' ? server : server.port
  return new Promise((resolve, reject) => {
    execFile(python, [clientPy, args[0], '--port', String(port), '--timeout', String(Math.min(timeout, 15)), ...args.slice(1)],
      { timeout: timeout * 1000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        let json
        try { json = JSON.parse(stdout) } catch {
          return reject(new Error(`h3client.py ${args.join(' ')} failed: ${err?.message}\n${stderr}\n${stdout}`))
        }
        resolve(json)
      })
  })
}

/** One request through aioquic; returns its single result object. */
export async function request (server, { method = 'GET', path: p = '/', headers = {}, body, bodySize } = {}) {
  const args = ['request', '--method', method, '--path', p]
  for (const [k, v] of Object.entries(headers)) args.push('--header', `${k}: ${v}`)
  if (body !== undefined) args.push('--body', body)
  if (bodySize !== undefined) args.push('--body-size', String(bodySize))
  const out = await aioquic(server, args)
  if (!out.results) throw new Error(`no results: ${JSON.stringify(out)}`)
  const r = out.results[0]
  r.header = (name) => { const h = r.headers.find(([k]) => k === name); return h ? h[1] : null }
  return r
}

/** A whole ReadableStream of bytes as one Uint8Array. */
export async function readAll (readable) {
  return new Uint8Array(await new Response(readable).arrayBuffer())
}

/** Calls (and awaits) `fn` on every value a ReadableStream yields, until it ends. */
export async function each (readable, fn) {
  const reader = readable.getReader()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    await fn(value)
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export async function waitFor (fn, { timeout = 5000, interval = 20 } = {}) {
  const t0 = Date.now()
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() - t0 > timeout) throw new Error('waitFor timed out')
    await sleep(interval)
  }
}

const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target')
export const transferBin = path.join(targetDir, 'release', 'h3-transfer')

/**
 * One large transfer with the native Rust client from bench/ (quinn + h3, not our server code):
 * `upload` bytes of the i % 251 pattern, response hashed as it arrives. See h3-transfer.rs.
 */
export function transfer (server, urlPath, { upload, chunk, trailers = [], abortAfter, timeout = 120, method } = {}) {
  const args = ['--url', `https://127.0.0.1:${server.port}${urlPath}`, '--timeout', String(timeout)]
  if (method) args.push('--method', method)
  if (upload !== undefined) args.push('--upload', String(upload))
  if (chunk !== undefined) args.push('--chunk', String(chunk))
  if (abortAfter !== undefined) args.push('--abort-after', String(abortAfter))
  for (const t of trailers) args.push('--trailer', t)
  return new Promise((resolve, reject) => {
    execFile(transferBin, args, { timeout: (timeout + 10) * 1000, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      try { resolve(JSON.parse(stdout)) } catch { reject(new Error(`h3-transfer failed: ${err?.message}\n${stderr}`)) }
    })
  })
}

// The i % 251 pattern, served from one precomputed buffer (the period is 251 bytes).
const PERIOD = 251
const patternBase = patternBytes(64 * 1024 + PERIOD)
export function patternSlice (offset, len) {
  const start = offset % PERIOD
  return patternBase.subarray(start, start + len)
}

export function patternSha (n, chunk = 64 * 1024) {
  const h = createHash('sha256')
  for (let off = 0; off < n; off += chunk) h.update(patternSlice(off, Math.min(chunk, n - off)))
  return h.digest('hex')
}

/** A ReadableStream of n pattern bytes, produced only as fast as it is read. */
export function patternStream (n, chunk = 64 * 1024, onCancel) {
  let off = 0
  return new ReadableStream({
    pull (c) {
      if (off >= n) return c.close()
      const len = Math.min(chunk, n - off)
      c.enqueue(new Uint8Array(patternSlice(off, len)))
      off += len
    },
    cancel (reason) { onCancel?.(reason) }
  }, { highWaterMark: 0 })
}

/** Samples this process's RSS until stopped; returns the growth over the starting value. */
export function rssWatch (intervalMs = 25) {
  const base = process.memoryUsage().rss
  let peak = base
  const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, intervalMs)
  return { stop () { clearInterval(t); peak = Math.max(peak, process.memoryUsage().rss); return peak - base } }
}

/** A throwaway ECDSA P-256 certificate for 127.0.0.1/localhost, via openssl. */
export async function makeCert () {
  const { execFileSync } = await import('node:child_process')
  const { mkdtempSync, readFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(path.join(tmpdir(), 'napi-h3-cert-'))
  const cert = path.join(dir, 'cert.pem')
  const key = path.join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', key, '-out', cert,
    '-days', '10', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-addext', 'basicConstraints=critical,CA:FALSE'], { stdio: 'ignore' })
  return { dir, cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') }
}

/** Starts a server process that prints `LISTENING <port>`; resolves { port, kill() }. */
export async function spawnServer (cmd, args, { timeout = 15000, env } = {}) {
  const { spawn } = await import('node:child_process')
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let out = ''
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} did not start: ${out}`)) }, timeout)
    const onData = (d) => {
      out += d
      const m = /LISTENING (\d+)/.exec(out)
      if (m) { clearTimeout(timer); resolve(Number(m[1])) }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', (d) => { out += d })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${cmd} exited (${code}): ${out}`)) })
  })
  return {
    port,
    kill () {
      if (child.exitCode !== null) return Promise.resolve()
      return new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGKILL') })
    }
  }
}

export const bunBin = path.join(root, 'node_modules', '.bin', 'bun')
