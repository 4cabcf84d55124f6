'use strict'
// Server responses: trailers attached to a Response, and streaming a Response body to Rust.

const { configError } = require('./errors.js')
const { noop, asBytes, flatHeaders } = require('./convert.js')
const { ackedWrites, WriteAhead } = require('./write-acks.js')

const kTrailers = Symbol.for('napi-h3.trailers')

/**
 * Attach HTTP trailers to a response (our extension; WHATWG has none). `trailers` is a
 * HeadersInit, a promise of one, or a function called once the body has been sent (so a
 * checksum of the body can go in a trailer). Returns the same Response.
 */
function withTrailers (response, trailers) {
  if (!(response instanceof Response)) throw configError('withTrailers: expected a Response')
  response[kTrailers] = trailers
  return response
}

const NOT_YET = Symbol('not yet')

const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

/** Microtasks a read of an in-memory body takes to settle: 1 in Bun and Node 24, 2 in Node 20. */
const SOON_TICKS = 3

/** Bun's synchronous look at a promise: its value if already fulfilled, else NOT_YET. */
const peek = typeof Bun === 'object' && typeof Bun.peek?.status === 'function'
  ? (p) => (Bun.peek.status(p) === 'fulfilled' ? Bun.peek(p) : NOT_YET)
  : () => NOT_YET

/**
 * The read's result if the stream can produce it without waiting for anything outside (its
 * pull runs on microtasks, as for string/bytes/Blob bodies), else NOT_YET. Looked at at once
 * (Bun), then after each of a few microtasks, then after the event loop's next turn.
 */
async function readSoon (p) {
  let out = peek(p)
  if (out !== NOT_YET) return out
  const settled = () => out !== NOT_YET
  p.then((v) => { out = v }, noop)
  for (let i = 0; i < SOON_TICKS && !settled(); i++) await undefined
  if (!settled()) await nextTurn()
  return out
}

/**
 * The body of a Response made from a string or bytes, without going through its ReadableStream,
 * where the runtime keeps it beside the stream (undici in Node 20 does); else undefined. The
 * layout is checked once against a probe Response, so any other runtime or undici version
 * simply takes the stream path.
 */
const bodyAtHand = (() => {
  const probe = new Response('probe')
  const kState = Object.getOwnPropertySymbols(probe).find((s) => s.description === 'state')
  const body = (res) => res[kState]?.body
  if (!kState || body(probe)?.source !== 'probe' || typeof body(probe).stream?.locked !== 'boolean') return () => undefined
  const untouched = untouchedCheck(body(probe).stream, body(new Response('probe')).stream)
  return (res) => {
    const b = body(res)
    if (!b || !untouched(b.stream, res)) return undefined
    const src = b.source
    return typeof src === 'string' || src instanceof Uint8Array ? src : undefined
  }
})()

/**
 * Whether a body stream was never locked nor read. `locked` and `bodyUsed` say so, at ~1 µs a
 * response in Node 20 (brand checks, a generic isDisturbed); Node's own stream state says the same
 * in two property reads, where its layout is what a probe shows (else the getters answer).
 */
function untouchedCheck (fresh, locked) {
  const byGetters = (stream, res) => !stream.locked && !res.bodyUsed
  const k = Object.getOwnPropertySymbols(fresh).find((s) => s.description === 'kState')
  const st = (stream) => stream[k]
  if (!k || st(fresh)?.reader !== undefined || st(fresh).disturbed !== false) return byGetters
  locked.getReader()
  if (st(locked).reader === undefined) return byGetters
  return (stream) => {
    const s = st(stream)
    return s.reader === undefined && s.disturbed === false
  }
}

/** The trailers given to withTrailers, resolved, as a flat list (or null). */
async function trailerList (trailers) {
  const t = await (typeof trailers === 'function' ? trailers() : trailers)
  return t ? flatHeaders(new Headers(t)) : null
}

/**
 * Streams a response body to Rust. A body whose data is at hand and ends after one chunk
 * (strings, bytes, small blobs) goes out in a single native call. A body with nothing ready yet
 * (a live stream, an echo) gets its head sent at once, then streams with a bounded write-ahead
 * (WriteAhead), so a slow client holds the producer instead of our memory.
 */
async function pumpBody (nat, respond, id, status, headers, reader, trailers) {
  let headSent = false
  const startHead = () => {
    headSent = true
    return nat.startResponse(id, status, headers)
  }
  const out = new WriteAhead(ackedWrites(nat), id)
  let chunk
  try {
    const p1 = reader.read()
    chunk = await readSoon(p1)
    if (chunk === NOT_YET) {
      if (!startHead()) return reader.cancel().catch(noop)
      chunk = await p1
    }
    if (!headSent) {
      if (chunk.done) return respond(id, status, headers, null)
      const p2 = reader.read()
      const second = await readSoon(p2)
      if (second !== NOT_YET && second.done && !trailers) return respond(id, status, headers, asBytes(chunk.value))
      if (!startHead()) return reader.cancel().catch(noop)
      if (!(await out.write(asBytes(chunk.value)))) return reader.cancel().catch(noop)
      chunk = second === NOT_YET ? await p2 : second
    }
    while (!chunk.done) {
      if (!(await out.write(asBytes(chunk.value)))) return reader.cancel().catch(noop)
      chunk = await reader.read()
    }
    if (!(await out.flush())) return
    nat.end(id, trailers ? await trailerList(trailers) : null)
  } catch (e) {
    if (headSent) nat.abort(id)
    else respond(id, 500, [], 'Internal Server Error')
    await reader.cancel(e).catch(noop)
  }
}

module.exports = { kTrailers, withTrailers, pumpBody, bodyAtHand }
