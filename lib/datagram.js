'use strict'
// HTTP datagrams (RFC 9297) and bare QUIC datagrams on the server: the contexts handlers get,
// and the per-server dispatcher that reads a datagram batch and sends the replies back in one call.
// Both directions are packed (src/napi/datagram_batch.rs): numbers in a Float64Array, the
// payloads back to back in one Buffer, so a batch costs a few native calls however big it is.

const { liftError, configError } = require('./errors.js')
const { toBuffer, withRoom } = require('./convert.js')
const { DATAGRAM, DATAGRAM_STRIDE } = require('./batch.js')

/** Offsets in the numbers of one received datagram; `payload` holds its length. */
const { connectionId: D_CONN, requestId: D_REQUEST, streamId: D_STREAM, payload: D_LENGTH } = DATAGRAM
/** Numbers per reply in a send batch: connection id, stream id (-1: bare), payload length. */
const SEND_STRIDE = 3

/**
 * The replies of one batch, packed as Rust reads them. The arrays are kept and reused (grown
 * when a batch needs more), so a steady echo allocates nothing here.
 */
class ReplyPack {
  meta = new Float64Array(SEND_STRIDE * 256)
  bytes = Buffer.allocUnsafe(64 * 1024)
  count = 0
  used = 0

  add (conn, stream, data) {
    const at = this.count * SEND_STRIDE
    const len = data.length
    if (at + SEND_STRIDE > this.meta.length) {
      const m = new Float64Array(this.meta.length * 2)
      m.set(this.meta)
      this.meta = m
    }
    this.bytes = withRoom(this.bytes, this.used, len)
    this.meta[at] = conn
    this.meta[at + 1] = stream
    this.meta[at + 2] = len
    this.bytes.set(data, this.used)
    this.used += len
    this.count++
  }

  /** Hands the replies to `nat` and empties the pack. */
  flush (nat) {
    if (this.count === 0) return
    const meta = this.meta.subarray(0, this.count * SEND_STRIDE)
    const bytes = this.bytes.subarray(0, this.used)
    this.count = this.used = 0
    nat.sendDatagrams(meta, bytes)
  }
}

/** Server-level QUIC datagram context (SPEC `QUICDatagramContext`). */
class QUICDatagramContext {
  #native
  #conn
  #send
  constructor (nat, connId, send) { this.#native = nat; this.#conn = connId; this.#send = send }
  /** Server-local, stable id of the QUIC connection (8 bytes, big-endian; not the wire CID). */
  get connectionId () {
    const b = new Uint8Array(8)
    new DataView(b.buffer).setBigUint64(0, BigInt(this.#conn))
    return b
  }

  get connectionIdHex () { return Buffer.from(this.connectionId).toString('hex') }
  /** Largest payload sendReply() accepts right now, or null. */
  get maxDatagramSize () { return this.#native.maxDatagramSize(this.#conn, null) }
  sendReply (data) { this.#send(this.#conn, null, data) }
}

/** RFC 9297 datagram context of one request stream (SPEC `H3DatagramContext`). */
class H3DatagramContext {
  #native
  #conn
  #stream
  #send
  constructor (nat, connId, streamId, request, send) {
    this.#native = nat
    this.#conn = connId
    this.#stream = streamId
    this.request = request
    this.#send = send
  }

  get streamId () { return BigInt(this.#stream) }
  /** The quarter stream id that prefixes the datagram on the wire. */
  get flowId () { return BigInt(this.#stream) / 4n }
  get maxDatagramSize () { return this.#native.maxDatagramSize(this.#conn, this.#stream) }
  sendReply (data) { this.#send(this.#conn, this.#stream, data) }
}

/**
 * Buffer views of one batch's payloads, made the cheapest way each runtime has (per datagram
 * this is the largest piece of the JS work of an echo). Bun: `subarray`, its fast path. Node:
 * `Buffer.from(arrayBuffer, offset, length)`; `subarray` and `slice` cost more there, and a
 * Uint8Array subclass, though half the price, is not a Buffer to `assert.deepStrictEqual`.
 */
const payloadViews = typeof Bun === 'object'
  ? (batch) => (at, len) => batch.subarray(at, at + len)
  : (batch) => {
      const ab = batch.buffer
      const base = batch.byteOffset
      return (at, len) => Buffer.from(ab, base + at, len)
    }

/** Bytes of the quarter-stream-id prefix of an HTTP datagram on stream `streamId`. */
function prefixLength (streamId) {
  const q = Math.floor(streamId / 4)
  return q < 0x40 ? 1 : q < 0x4000 ? 2 : q < 0x40000000 ? 4 : 8
}

/**
 * Hands a server's received datagrams to their handlers: HTTP datagrams to the `h3Datagram`
 * handler of the request's route, bare QUIC datagrams to `quicDatagram`.
 */
class DatagramDispatcher {
  #native
  #server
  #quicDatagram
  /** Requests on routes with an h3Datagram handler: requestId -> { route, request }. */
  #requests = new Map()
  /** Replies sent while a datagram batch is handled go back to Rust in one call at its end. */
  #out = null
  #pack = new ReplyPack()
  /** Largest bare datagram per connection, looked up once per batch. */
  #max = new Map()
  /** One `QUICDatagramContext` per connection per batch (it holds nothing but the connection). */
  #contexts = new Map()
  /** The last of them, looked up without the map (a batch mostly comes from one connection). */
  #lastConn = -1
  #lastCtx = null

  /** `quicDatagram` is called with `this` = `server` (as it always was). */
  constructor (nat, server, quicDatagram) {
    this.#native = nat
    this.#server = server
    this.#quicDatagram = quicDatagram
  }

  /** Datagrams for request `id` go to `route.h3Datagram` until `forget(id)`. */
  register (id, route, request) { this.#requests.set(id, { route, request }) }

  forget (id) {
    if (this.#requests.size) this.#requests.delete(id)
  }

  #send = (conn, stream, data) => {
    const out = this.#out
    if (out) {
      // Any Uint8Array (Buffers included) is copied into the pack as it is.
      const bytes = data instanceof Uint8Array ? data : toBuffer(data)
      let max = this.#max.get(conn)
      if (max === undefined) this.#max.set(conn, max = this.#native.maxDatagramSize(conn, null))
      if (max !== null) {
        const limit = stream === null ? max : max - prefixLength(stream)
        if (bytes.length > limit) throw configError(`datagram of ${bytes.length} bytes exceeds the current maximum of ${limit}`, 'ERR_H3_DATAGRAM_TOO_LARGE')
        out.add(conn, stream ?? -1, bytes)
        return
      }
    }
    // Outside a batch, or the connection has no datagrams: send now (errors as they come).
    try { this.#native.sendDatagram(conn, stream, toBuffer(data)) } catch (e) { throw liftError(e) }
  }

  #quicContext (connId) {
    if (connId === this.#lastConn) return this.#lastCtx
    let ctx = this.#contexts.get(connId)
    if (ctx === undefined) this.#contexts.set(connId, ctx = new QUICDatagramContext(this.#native, connId, this.#send))
    this.#lastConn = connId
    this.#lastCtx = ctx
    return ctx
  }

  /**
   * One batch from Rust: `[meta, payloads]`, DATAGRAM_FIELDS numbers per datagram in `meta`
   * (requestId -1: server level; payload: its length in `payloads`).
   */
  onBatch ([meta, payloads]) {
    const out = this.#out = this.#pack
    const quicDatagram = typeof this.#quicDatagram === 'function' ? this.#quicDatagram : null
    const view = payloadViews(payloads)
    let at = 0
    try {
      for (let i = 0; i + DATAGRAM_STRIDE <= meta.length; i += DATAGRAM_STRIDE) {
        const connId = meta[i + D_CONN]
        const reqId = meta[i + D_REQUEST]
        const len = meta[i + D_LENGTH]
        const payload = view(at, len)
        at += len
        try {
          if (reqId >= 0) {
            const e = this.#requests.get(reqId)
            if (e) e.route.h3Datagram(payload, new H3DatagramContext(this.#native, connId, meta[i + D_STREAM], e.request, this.#send))
          } else if (quicDatagram !== null) {
            quicDatagram.call(this.#server, payload, this.#quicContext(connId))
          }
        } catch {
          // A throwing datagram handler loses that datagram only.
        }
      }
    } finally {
      this.#out = null
      this.#max.clear()
      this.#contexts.clear()
      this.#lastConn = -1
      this.#lastCtx = null
      try { out.flush(this.#native) } catch {}
    }
  }
}

module.exports = { DatagramDispatcher }
