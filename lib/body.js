'use strict'
// Bodies that cross to Rust in pieces: bodies pulled from Rust (server request bodies, client
// response bodies) and client request bodies (whole, or pumped with backpressure).

const { liftError } = require('./errors.js')
const { noop, asBytes, asUint8, headersFromFlat } = require('./convert.js')
const { ackedWrites, WriteAhead } = require('./write-acks.js')

/**
 * A body pulled from Rust: each pull is one gathered QUIC read there, so nothing is read from
 * the network before JS asks for it (beyond, with `ready`, one chunk Rust reads ahead once JS
 * has pulled). `read()` resolves a Buffer, or at the end an array of trailer name/value pairs;
 * `ready()`, when given, returns a chunk already read ahead (or null) synchronously. `trailers`
 * settles with those as Headers. Used for streaming request bodies (server) and response
 * bodies (client).
 */
function pulledBody (read, { ready = null, mapError = (e) => e, onCancel = noop, onDone = noop } = {}) {
  let settle
  const trailers = new Promise((resolve) => { settle = resolve })
  const stream = new ReadableStream({
    pull (controller) {
      // A chunk Rust already read ahead: enqueued at once, without a promise.
      const now = ready && ready()
      if (now) {
        controller.enqueue(asUint8(now))
        return
      }
      return read().then((v) => {
        if (Array.isArray(v)) {
          settle(headersFromFlat(v))
          onDone()
          controller.close()
        } else {
          controller.enqueue(asUint8(v))
        }
      }, (e) => {
        settle(new Headers())
        onDone()
        controller.error(mapError(liftError(e)))
      })
    },
    cancel () {
      settle(new Headers())
      onDone()
      onCancel()
    }
  }, { highWaterMark: 0 })
  return { stream, trailers }
}

/** An async iterable as a byte stream (strings UTF-8 encoded), pulled one item at a time. */
function iterableStream (iterable) {
  const it = iterable[Symbol.asyncIterator]()
  return new ReadableStream({
    async pull (c) { const { done, value } = await it.next(); if (done) c.close(); else c.enqueue(typeof value === 'string' ? new TextEncoder().encode(value) : value) },
    async cancel (r) { await it.return?.(r) }
  }, { highWaterMark: 0 })
}

/** Sets a content-type the caller did not set. */
function defaultType (headers, type) {
  if (!headers.has('content-type')) headers.set('content-type', type)
}

/**
 * A client request body in the form Rust takes: `{ bytes }` (whole bytes or a string, or null)
 * or `{ stream }` (to pump). Sets content-type (and content-length for a Blob) where known.
 */
async function prepareBody (body, headers) {
  if (body == null) return { bytes: null }
  if (typeof body === 'string') {
    defaultType(headers, 'text/plain;charset=UTF-8')
    return { bytes: body }
  }
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return { bytes: asBytes(body) }
  if (body instanceof URLSearchParams) {
    defaultType(headers, 'application/x-www-form-urlencoded;charset=UTF-8')
    return { bytes: body.toString() }
  }
  if (body instanceof ReadableStream) return { stream: body }
  if (typeof body[Symbol.asyncIterator] === 'function' && !(body instanceof Blob)) return { stream: iterableStream(body) }
  // Blob (Bun.file too), FormData, and the rest: let a Response encode it (and name its type).
  const r = new Response(body)
  const type = r.headers.get('content-type')
  if (type) defaultType(headers, type)
  if (body instanceof Blob) {
    if (!headers.has('content-length')) headers.set('content-length', String(body.size))
    // Small blobs in one piece; big ones streamed with backpressure.
    return body.size <= 1024 * 1024 ? { bytes: Buffer.from(await r.arrayBuffer()) } : { stream: r.body }
  }
  return { stream: r.body }
}

/**
 * Writes a request body stream chunk by chunk, reading the next while earlier ones wait for QUIC
 * (a bounded write-ahead: a slow server holds the stream's producer).
 */
async function pumpUpload (nat, id, stream) {
  const reader = stream.getReader()
  const out = new WriteAhead(ackedWrites(nat), id)
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      if (!(await out.write(asBytes(value)))) {
        await reader.cancel().catch(noop)
        return
      }
    }
    nat.endUpload(id, null)
  } catch (e) {
    nat.cancel(id)
    await reader.cancel(e).catch(noop)
  }
}

module.exports = { pulledBody, prepareBody, pumpUpload }
