'use strict'
// The Response of a fetch whose whole (small) body arrived with its head. Node's Response
// (undici) builds a ReadableStream for any body it is given, ~12-18 µs a response, more than
// the rest of a small fetch's JS; this subclass keeps the bytes, answers text(), json(),
// arrayBuffer(), bytes() and blob() from them, and makes the stream only when `body` is read.
// Bun's own Response is cheap (< 1 µs), so Bun gets a plain one.

const BaseResponse = globalThis.Response
const utf8 = new TextDecoder()

/** A Response over `bytes` (a Buffer) whose stream is made on demand. */
class Response extends BaseResponse {
  #bytes
  #stream = null
  #used = false

  constructor (bytes, init) {
    super(null, init)
    this.#bytes = bytes
  }

  get body () {
    if (this.#stream === null) {
      const bytes = this.#used ? null : this.#bytes
      this.#stream = new ReadableStream({
        type: 'bytes',
        pull: (c) => {
          this.#used = true
          if (bytes !== null) c.enqueue(new Uint8Array(bytes))
          c.close()
        }
      })
    }
    return this.#stream
  }

  get bodyUsed () { return this.#used }

  /** The bytes, once: a second read fails as fetch's does. */
  #take () {
    if (this.#used || this.#stream?.locked) return Promise.reject(new TypeError('Body is unusable: Body has already been read'))
    this.#used = true
    return null
  }

  #read (convert) {
    if (this.#stream !== null && !this.#used && !this.#stream.locked) {
      // Someone holds the stream: read through it, like a plain Response.
      return new BaseResponse(this.#stream, { headers: this.headers })[convert]()
    }
    return this.#take() ?? Promise.resolve(this.#bytes)
  }

  text () { return this.#read('text').then((b) => typeof b === 'string' ? b : utf8.decode(b)) }
  json () { return this.text().then(JSON.parse) }
  arrayBuffer () { return this.#read('arrayBuffer').then((b) => b instanceof ArrayBuffer ? b : copy(b).buffer) }
  bytes () { return this.#read('arrayBuffer').then((b) => b instanceof ArrayBuffer ? new Uint8Array(b) : copy(b)) }
  blob () { return this.#read('arrayBuffer').then((b) => new Blob([b], { type: this.headers.get('content-type') ?? '' })) }
  formData () { return this.#read('arrayBuffer').then((b) => new BaseResponse(b, { headers: this.headers }).formData()) }

  clone () {
    if (this.#used || this.#stream?.locked) throw new TypeError('Response.clone: Body has already been consumed.')
    if (this.#stream !== null) {
      const [a, b] = this.#stream.tee()
      this.#stream = a
      return new BaseResponse(b, { status: this.status, statusText: this.statusText, headers: this.headers })
    }
    return new Response(this.#bytes, { status: this.status, statusText: this.statusText, headers: this.headers })
  }
}

function copy (buf) {
  const out = new Uint8Array(buf.length)
  out.set(buf)
  return out
}

/** A Response with the in-memory body `bytes` (a Buffer, or null). */
const bufferedResponse = typeof Bun === 'object'
  ? (bytes, init) => new BaseResponse(bytes, init)
  : (bytes, init) => bytes === null ? new BaseResponse(null, init) : new Response(bytes, init)

module.exports = { bufferedResponse }
