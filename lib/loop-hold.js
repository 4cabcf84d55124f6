'use strict'
// Keeps the event loop alive while JS waits on a weak native callback (heads, write
// acknowledgements): those threadsafe functions never hold the process by themselves.

function noop () {}

class LoopHold {
  #timer = null

  /** Keep the process alive until `release`. */
  hold () {
    if (this.#timer === null) this.#timer = setInterval(noop, 0x7fffffff)
    else this.#timer.ref()
  }

  release () {
    if (typeof this.#timer?.unref === 'function') {
      this.#timer.unref()
    } else {
      clearInterval(this.#timer)
      this.#timer = null
    }
  }
}

module.exports = { LoopHold }
