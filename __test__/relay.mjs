// The lossy UDP relay (bench/src/bin/udp-relay.rs) for tests: loss per direction, delay and
// reordering between a client and a server on 127.0.0.1, seeded so runs repeat.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { root } from './helpers.mjs'

const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target')
export const relayBin = path.join(targetDir, 'release', 'udp-relay')

const flags = { lossUp: 'loss-up', lossDown: 'loss-down', delayMs: 'delay-ms', reorder: 'reorder', reorderMs: 'reorder-ms', seed: 'seed', big: 'big', bigMax: 'big-max', queue: 'queue', maxSeconds: 'max-seconds' }

/**
 * Starts a relay in front of `upstreamPort`; resolves `{ port, stats(), close() }`.
 * `stats()` resolves the relay's counters now (`{ up, down, ... }`, see udp-relay.rs);
 * `close()` stops it and resolves the final counters.
 */
export async function startRelay (upstreamPort, options = {}) {
  if (!existsSync(relayBin)) throw new Error(`${relayBin} missing: cargo build --release -p napi-h3-bench --bin udp-relay`)
  const args = ['--upstream', `127.0.0.1:${upstreamPort}`]
  for (const [k, flag] of Object.entries(flags)) {
    if (options[k] !== undefined) args.push(`--${flag}`, String(options[k]))
  }
  if (options.spareLong) args.push('--spare-long')
  if (options.trace) args.push('--trace') // one stderr line per packet, passed through
  const child = spawn(relayBin, args, { stdio: ['pipe', 'pipe', options.trace ? 'inherit' : 'pipe'] })
  let buf = ''
  let stderr = ''
  const waiting = [] // resolvers of stats lines, in order
  let finalStats = null
  const exited = new Promise((resolve) => child.once('exit', resolve))
  let onListening, timer
  const listening = new Promise((resolve, reject) => {
    onListening = resolve
    timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`udp-relay did not start: ${stderr}`)) }, 10000)
    exited.then((code) => reject(new Error(`udp-relay exited (${code}): ${stderr}`)))
  })
  child.stderr?.on('data', (d) => { stderr += d })
  child.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      const m = /^LISTENING (\d+)$/.exec(line)
      if (m) { onListening(Number(m[1])); continue }
      let s
      try { s = JSON.parse(line) } catch { continue }
      if (s.final) finalStats = s
      waiting.shift()?.(s)
    }
  })
  const port = await listening.finally(() => clearTimeout(timer))
  return {
    port,
    stats () {
      if (child.exitCode !== null || finalStats) return Promise.resolve(finalStats)
      return new Promise((resolve) => { waiting.push(resolve); child.stdin.write('stats\n') })
    },
    async close () {
      if (child.exitCode === null && !finalStats) {
        const done = new Promise((resolve) => waiting.push(resolve))
        child.stdin.end()
        await Promise.race([done, exited])
      }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))])
      if (child.exitCode === null) child.kill('SIGKILL')
      while (waiting.length) waiting.shift()(finalStats)
      return finalStats
    }
  }
}
