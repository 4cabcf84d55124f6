'use strict'
// The Responses h3Fetch resolves with. `FetchResponse` carries what a fetch adds to a Response
// (`url`, `redirected`, and our `trailers`) in private fields behind getters: three
// `Object.defineProperty` calls on every response cost about as much as the Response itself in
// Bun (~1 µs). `BufferedResponse` is the Response of a fetch whose whole (small) body arrived
// with its head. Node's Response (undici) builds a ReadableStream for any body it is given,
// ~12-18 µs a response, more than the rest of a small fetch's JS; this subclass keeps the
// bytes, answers text(), json(), arrayBuffer(), bytes() and blob() from them, and makes the
// stream only when `body` is read. Bun's own Response is cheap (< 1 µs): Bun does not need it.

const BaseResponse = globalThis.Response
const utf8 = new TextDecoder()

/**
 * A Response with a fetch's `url` and `redirected`, and `trailers`: a promise of the response
 * trailers, or a function that makes it (called once, on first read).
 */
class FetchResponse extends BaseResponse {
  #url
  #redirected
  #trailers

  constructor (body, init, url, redirected, trailers) {
    super(body, init)
    this.#url = url
    this.#redirected = redirected
    this.#trailers = trailers
  }

  get url () { return this.#url }
  get redirected () { return this.#redirected }

  /** Settles with the response trailers (empty `Headers` when there were none). */
  get trailers () {
    if (typeof this.#trailers === 'function') this.#trailers = this.#trailers()
    return this.#trailers
  }

  clone () {
    const c = super.clone()
    // The runtime's clone is a plain Response: give it the fetch's fields as own properties.
    Object.defineProperties(c, {
      url: { value: this.#url, enumerable: true },
      redirected: { value: this.#redirected, enumerable: true },
      trailers: { value: this.trailers, enumerable: false }
    })
    return c
  }
}

/** A FetchResponse over `bytes` (a Buffer) whose stream is made on demand. */
class BufferedResponse extends FetchResponse {
  #bytes
  #stream = null
  #used = false

  constructor (bytes, init, url, redirected, trailers) {
    super(null, init, url, redirected, trailers)
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
      return sibling(this, b)
    }
    return sibling(this, this.#bytes)
  }
}

/** A fetch Response over `body` (a stream or a Buffer) with `res`'s head and fetch fields. */
function sibling (res, body) {
  const init = { status: res.status, statusText: res.statusText, headers: res.headers }
  return body instanceof ReadableStream
    ? new FetchResponse(body, init, res.url, res.redirected, res.trailers)
    : new BufferedResponse(body, init, res.url, res.redirected, res.trailers)
}

function copy (buf) {
  const out = new Uint8Array(buf.length)
  out.set(buf)
  return out
}

/**
 * The Response of a fetch: `body` a ReadableStream, the whole body in memory (a Buffer), or
 * null; the rest as FetchResponse takes them.
 */
const fetchResponse = typeof Bun === 'object'
  ? (body, init, url, redirected, trailers) => new FetchResponse(body, init, url, redirected, trailers)
  : (body, init, url, redirected, trailers) => body === null || body instanceof ReadableStream
      ? new FetchResponse(body, init, url, redirected, trailers)
      : new BufferedResponse(body, init, url, redirected, trailers)

module.exports = { fetchResponse }
