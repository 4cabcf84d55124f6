'use strict'
// Body chunks JS writes to Rust (streamed server responses, client uploads) and their
// acknowledgements. Rust hands the acknowledgements over in batches (one threadsafe call for
// every chunk QUIC took since JS last ran; src/napi/write_acks.rs), so a chunk costs one plain
// promise here instead of a native promise and threadsafe function of its own.

const { LoopHold } = require('./loop-hold.js')

/** Bytes queued in Rust beyond what QUIC took before a writer waits (per body). */
const WRITE_AHEAD = 256 * 1024

/** The `write` of a native server or client, answered through its batched acknowledgements. */
class AckedWrites {
  #native
  /** requestId -> resolvers of its unacknowledged writes, oldest first (acks come in order). */
  #waiting = new Map()
  /** Keeps the process alive while a write is unacknowledged (the native callback is weak). */
  #hold = new LoopHold()

  constructor (nat) {
    this.#native = nat
    nat.listenAcks((cells) => this.#onAcks(cells))
  }

  /**
   * Queue a chunk of request `id`; resolves true once QUIC took it, false when it cannot be
   * sent (the peer stopped reading, the request is gone). Throws at once for a chunk that is
   * not bytes.
   */
  write (id, chunk) {
    this.#native.write(id, chunk)
    return new Promise((resolve) => {
      if (this.#waiting.size === 0) this.#hold.hold()
      const q = this.#waiting.get(id)
      if (q === undefined) this.#waiting.set(id, [resolve])
      else q.push(resolve)
    })
  }

  #onAcks (cells) {
    for (let i = 0; i + 1 < cells.length; i += 2) {
      const id = cells[i]
      const q = this.#waiting.get(id)
      if (q === undefined) continue
      const resolve = q.shift()
      if (q.length === 0) this.#waiting.delete(id)
      resolve(cells[i + 1] === 1)
    }
    if (this.#waiting.size === 0) this.#hold.release()
  }
}

/**
 * One body's writes with a bounded write-ahead: up to WRITE_AHEAD bytes wait in Rust for QUIC
 * while JS produces the next chunk; beyond that `write` waits for QUIC to take the oldest, so a
 * slow peer holds the producer instead of our memory.
 */
class WriteAhead {
  #writes
  #id
  /** Unacknowledged writes: promise, byte count, ... (acks come in order). */
  #queued = []
  #inFlight = 0
  /** Set once a chunk could not be sent, so a producer that never fills the write-ahead stops too. */
  #failed = false

  constructor (writes, id) {
    this.#writes = writes
    this.#id = id
  }

  /** Queue `bytes`; false once the body cannot be sent (then stop producing). */
  async write (bytes) {
    if (this.#failed) return false
    const p = this.#writes.write(this.#id, bytes)
    p.then((ok) => { if (!ok) this.#failed = true })
    this.#queued.push(p, bytes.byteLength)
    this.#inFlight += bytes.byteLength
    while (this.#inFlight > WRITE_AHEAD) {
      if (!(await this.#queued.shift())) return false
      this.#inFlight -= this.#queued.shift()
    }
    return true
  }

  /** Wait until QUIC took everything queued; false when some chunk could not be sent. */
  async flush () {
    while (this.#queued.length > 0) {
      if (!(await this.#queued.shift())) return false
      this.#inFlight -= this.#queued.shift()
    }
    return true
  }
}

const byNative = new WeakMap()

/** The AckedWrites of native server or client `nat` (made on its first streamed body). */
function ackedWrites (nat) {
  let w = byNative.get(nat)
  if (w === undefined) byNative.set(nat, w = new AckedWrites(nat))
  return w
}

module.exports = { ackedWrites, WriteAhead }
