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
