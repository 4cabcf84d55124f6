'use strict'
// The response heads of a native client's requests. Rust hands them over in batches (one
// threadsafe call for every head that arrived since JS last ran; src/napi/client_heads.rs), a
// flat array of HEAD_FIELDS cells per request; a small response comes with its whole body and
// trailers in the same row. Each fetch waits on one promise here, and nothing else native.

const { liftError } = require('./errors.js')
const { LoopHold } = require('./loop-hold.js')

/** status -1: the request failed and `headers` is the error message ("[CODE] text"). */
const HEAD_FIELDS = Object.freeze(['requestId', 'status', 'headers', 'body', 'trailers'])
const HEAD_STRIDE = HEAD_FIELDS.length

class HeadWaiters {
  /** requestId -> [resolve, reject] */
  #waiting = new Map()
  /** Keeps the process alive while a head is awaited (the native callback is weak). */
  #hold = new LoopHold()

  /** Takes over the head deliveries of native client `nat`. */
  constructor (nat) {
    nat.listen((cells) => this.#onBatch(cells))
  }

  /** The head of request `id`: { status, headers (flat), body, trailers (flat) }. */
  wait (id) {
    return new Promise((resolve, reject) => {
      if (this.#waiting.size === 0) this.#hold.hold()
      this.#waiting.set(id, [resolve, reject])
    })
  }

  /** Fails the wait for request `id` with `err` (abort, timeout); a no-op once it settled. */
  reject (id, err) {
    const w = this.#take(id)
    if (w) w[1](err)
  }

  #take (id) {
    const w = this.#waiting.get(id)
    if (w === undefined) return undefined
    this.#waiting.delete(id)
    if (this.#waiting.size === 0) this.#hold.release()
    return w
  }

  #onBatch (cells) {
    for (let i = 0; i + HEAD_STRIDE <= cells.length; i += HEAD_STRIDE) {
      const w = this.#take(cells[i])
      if (w === undefined) continue
      const status = cells[i + 1]
      if (status < 0) w[1](liftError(new Error(cells[i + 2])))
      else w[0]({ status, headers: cells[i + 2], body: cells[i + 3], trailers: cells[i + 4] })
    }
  }
}

module.exports = { HeadWaiters, HEAD_FIELDS }
