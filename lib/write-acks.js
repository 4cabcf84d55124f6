'use strict'
// The native calls a streamed server response makes, with `write` answered in JS: Rust hands
// over the acknowledgements of written chunks in batches (one threadsafe call for all that QUIC
// took since JS last ran; src/napi/write_acks.rs), so a chunk costs one plain promise here
// instead of a native promise and threadsafe function of its own.

class ResponseWriter {
  #native
  /** requestId -> resolvers of its unacknowledged writes, oldest first (acks come in order). */
  #waiting = new Map()

  constructor (nat) {
    this.#native = nat
    nat.listenAcks((cells) => this.#onAcks(cells))
  }

  startResponse (id, status, headers) { return this.#native.startResponse(id, status, headers) }
  end (id, trailers) { return this.#native.end(id, trailers) }
  abort (id) { return this.#native.abort(id) }

  /**
   * Queue a chunk; resolves true once QUIC took it, false when it cannot be sent (the peer
   * stopped reading, the request is gone). Throws at once for a chunk that is not bytes.
   */
  write (id, chunk) {
    this.#native.write(id, chunk)
    return new Promise((resolve) => {
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
  }
}

module.exports = { ResponseWriter }
