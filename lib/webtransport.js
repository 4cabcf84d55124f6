'use strict'
// WebTransport sessions in the shape of the W3C `WebTransport` object (server and client share
// this code; the natives are NativeWt methods).

const { liftError, throwLifted, configError, WebTransportError } = require('./errors.js')
const { noop, toBuffer, withRoom, asUint8 } = require('./convert.js')
const { ANSWER_HEADER, parseOffer, serializeString } = require('./wt-protocols.js')

const MAX_WT_CODE = 0xffffffff
const kSettle = Symbol('napi-h3.settleSession')

function wtCode (reason) {
  const c = reason && reason.streamErrorCode
  return Number.isInteger(c) && c >= 0 && c <= MAX_WT_CODE ? c : 0
}

/** Our streams' native ends, for `pipeTo` between two of them (see WtReadableStream). */
const ends = new WeakMap()

/**
 * A WebTransport stream's receiving half. `pipeTo` another WebTransport stream of the same server
 * or client (an echo, a relay) runs in Rust, without a trip through JS per chunk, when nothing
 * was read from this stream yet, nothing is being written to the other, and no `signal` is
 * given; otherwise it is the standard pipe.
 */
class WtReadableStream extends ReadableStream {
  pipeTo (dest, options) {
    const src = ends.get(this)
    const dst = ends.get(dest)
    const direct = src && dst && src.wt === dst.wt && !src.pulled && dst.idle() && !this.locked && !dest.locked &&
      (options === undefined || (typeof options === 'object' && options !== null && options.signal == null))
    if (!direct) return super.pipeTo(dest, options)
    return nativePipe(this, dest, src, dst, options ?? {})
  }
}

/** Receiving half of a WebTransport stream: every pull is one QUIC read in Rust. */
function wtReadable (wt, h) {
  const end = { wt, h, pulled: false, controller: null }
  const stream = new WtReadableStream({
    start (c) { end.controller = c },
    pull (c) {
      end.pulled = true
      return wt.read(h).then((v) => {
        if (v === null) c.close()
        else if (typeof v === 'number') c.error(resetError(v))
        else c.enqueue(asUint8(v))
      }, (e) => c.error(liftError(e)))
    },
    cancel (reason) { wt.stopSending(h, wtCode(reason)) }
  }, { highWaterMark: 0 })
  ends.set(stream, end)
  return stream
}

/** Sending half: each write resolves once QUIC accepted the chunk (that is the backpressure). */
function wtWritable (wt, h) {
  let writing = 0
  let done = false
  const end = { wt, h, controller: null, idle: () => writing === 0 && !done }
  const stream = new WritableStream({
    start (c) { end.controller = c },
    write (chunk) {
      writing++
      return wt.write(h, toBuffer(chunk)).then((r) => {
        writing--
        if (r !== null) throw stoppedError(r)
      }, (e) => { writing--; throw liftError(e) })
    },
    close () { done = true; return wt.finish(h).catch(throwLifted) },
    abort (reason) { done = true; wt.reset(h, wtCode(reason)) }
  }, { highWaterMark: 1 })
  ends.set(stream, end)
  return stream
}

function resetError (code) {
  return new WebTransportError('the peer reset the stream', { streamErrorCode: code < 0 ? null : code })
}

function stoppedError (code) {
  return new WebTransportError('the peer stopped reading the stream', { streamErrorCode: code < 0 ? null : code })
}

/**
 * `readable.pipeTo(writable)` in Rust (NativeWt.pipe), then what the Streams standard's pipe
 * does when it ends: close the destination (unless preventClose), abort it with the source's
 * error (unless preventAbort), or cancel the source with the destination's (unless
 * preventCancel); both streams end up in the state a JS pipe would leave them in.
 */
async function nativePipe (readable, writable, src, dst, { preventClose = false, preventAbort = false, preventCancel = false }) {
  const reader = readable.getReader()
  const writer = writable.getWriter()
  // Reads now happen in Rust: the JS side of the source must never pull on its own again.
  src.pulled = true
  let end
  try {
    end = await src.wt.pipe(src.h, dst.h)
  } catch (e) {
    // The stream or session failed (which side, Rust does not say): as for a source error, the
    // destination is aborted unless preventAbort.
    const err = liftError(e)
    src.controller.error(err)
    if (!preventAbort) await writer.abort(err).catch(noop)
    release(reader, writer)
    throw err
  }
  if (end.how === 'end') {
    src.controller.close()
    try {
      if (!preventClose) await writer.close()
    } finally {
      release(reader, writer)
    }
    return
  }
  const err = end.how === 'reset' ? resetError(end.code ?? -1) : stoppedError(end.code ?? -1)
  if (end.how === 'reset') {
    src.controller.error(err)
    if (!preventAbort) await writer.abort(err).catch(noop)
  } else {
    dst.controller.error(err)
    if (!preventCancel) await reader.cancel(err).catch(noop)
  }
  release(reader, writer)
  throw err
}

function release (reader, writer) {
  reader.releaseLock()
  writer.releaseLock()
}

function wtIncoming (wt, id, bidi, use) {
  return new ReadableStream({
    pull (c) {
      use()
      return wt.accept(id, bidi).then((h) => {
        if (h === null) c.close()
        else c.enqueue(bidi ? { readable: wtReadable(wt, h), writable: wtWritable(wt, h) } : wtReadable(wt, h))
      }, (e) => c.error(liftError(e)))
    }
  }, { highWaterMark: 0 })
}

/**
 * Sends what is written to a session's `datagrams.writable`: the datagrams of one event loop
 * turn are copied into one Buffer and go to Rust in one call at its end, so a burst costs one native call
 * and one wake-up of the connection instead of one each. Sizes are checked at write time (a too
 * large one throws ERR_H3_DATAGRAM_TOO_LARGE, as `sendDatagram` does); a session found closed when
 * the batch goes out makes the next write throw. Without datagrams on the connection, writes go
 * through `send` one by one (which throws why).
 */
function datagramWriter (wt, id, send) {
  let bytes = Buffer.allocUnsafe(16 * 1024)
  let used = 0
  let lengths = []
  let max = null
  let failed = null
  const flush = () => {
    const l = lengths
    const n = used
    lengths = []
    used = 0
    max = null
    try {
      wt.sendDatagrams(id, Float64Array.from(l), bytes.subarray(0, n))
    } catch (e) {
      failed = liftError(e)
    }
  }
  return (chunk) => {
    if (failed) throw failed
    // A Uint8Array is copied in as it is: asking a small one for its `.buffer` (as a Buffer view
    // of it would) makes V8 move its bytes off the heap first, which costs more than the copy.
    const b = chunk instanceof Uint8Array ? chunk : toBuffer(chunk)
    if (lengths.length === 0) {
      max = wt.maxDatagramSize(id)
      if (max === null) return send(chunk)
      // After the event loop's current phase, not the next microtask: a pipe writes each
      // datagram in a microtask of its own, so a microtask flush would send them one by one.
      setImmediate(flush)
    }
    if (b.length > max) throw configError(`datagram of ${b.length} bytes exceeds the current maximum of ${max}`, 'ERR_H3_DATAGRAM_TOO_LARGE')
    bytes = withRoom(bytes, used, b.length)
    bytes.set(b, used)
    used += b.length
    lengths.push(b.length)
  }
}

/**
 * Enqueue a packed batch (`[lengths, payloads]`, from `takeDatagrams`): each
 * datagram a Uint8Array with an ArrayBuffer of its own, as a browser hands them out (copying a
 * datagram out costs less than a native Buffer per datagram).
 */
function enqueueDatagrams (c, [lengths, all]) {
  let at = 0
  for (let i = 0; i < lengths.length; i++) {
    const end = at + lengths[i]
    c.enqueue(all.slice(at, end))
    at = end
  }
}

/** wantDatagrams answers (src/napi/webtransport.rs). */
const WANT_WAITING = 0
const WANT_CLOSED = 2

/**
 * The sessions of one NativeWt whose datagram readable waits for Rust: each waits on a plain
 * promise, and Rust names the sessions that have datagrams again (or ended) in one call per
 * burst, instead of a native promise per wait.
 */
class DatagramWaits {
  /** session id -> resolve */
  #waiting = new Map()

  constructor (wt) {
    wt.listenDatagrams((ids) => {
      for (const id of ids) {
        const resolve = this.#waiting.get(id)
        if (resolve !== undefined) {
          this.#waiting.delete(id)
          resolve()
        }
      }
    })
  }

  wait (id) {
    return new Promise((resolve) => this.#waiting.set(id, resolve))
  }
}

const datagramWaits = new WeakMap()

function waitsOf (wt) {
  let w = datagramWaits.get(wt)
  if (w === undefined) datagramWaits.set(wt, w = new DatagramWaits(wt))
  return w
}

/** The session's datagrams into `c`: what is queued at once, else after Rust says there are some. */
function pullDatagrams (wt, id, c) {
  for (;;) {
    const ready = wt.takeDatagrams(id)
    if (ready !== null) return enqueueDatagrams(c, ready)
    // Listening before the first want: a wake always finds the callback in place.
    const waits = waitsOf(wt)
    const want = wt.wantDatagrams(id)
    if (want === WANT_CLOSED) return c.close()
    if (want === WANT_WAITING) return waits.wait(id).then(() => pullDatagrams(wt, id, c))
    // Some arrived meanwhile: take them.
  }
}

/** The session's `datagrams`: a readable of received ones, a writable that sends each chunk. */
function wtDatagrams (wt, id, use, send) {
  const write = datagramWriter(wt, id, send)
  return {
    readable: new ReadableStream({
      pull (c) {
        use()
        return pullDatagrams(wt, id, c)
      }
    }, { highWaterMark: 0 }),
    writable: new WritableStream({
      write (chunk) { use(); write(chunk) }
    }),
    /** Largest payload one datagram can carry right now (null when datagrams are off). */
    get maxDatagramSize () { return wt.maxDatagramSize(id) }
  }
}

/**
 * A WebTransport session in the shape of the W3C `WebTransport` object, on either side. On a
 * server it also has `request`, `sessionId`, `accept()` and `reject(status)`.
 */
class WebTransportSession {
  #wt
  #id
  #state = 'pending'
  #onAccept
  #onReject
  #ready
  #closed
  #draining
  #settleReady = { resolve: noop, reject: noop }
  #protocol
  #draft

  constructor (wt, id, { request, sessionId, onAccept, onReject, established = false, protocol = '' }) {
    this.#wt = wt
    this.#id = id
    this.#onAccept = onAccept
    this.#onReject = onReject
    this.#ready = new Promise((resolve, reject) => { this.#settleReady = { resolve, reject } })
    this.#ready.catch(noop)
    // Before wt.closed(): a session already over is released by it (on the native runtime,
    // possibly before the next line runs), and its dialect with it.
    this.#draft = wt.draft(id) ?? 'draft02'
    this.#closed = wt.closed(id).then((info) => {
      const wasPending = this.#state === 'pending'
      this.#state = 'closed'
      if (info.clean) {
        this.#settleReady.resolve()
        return { closeCode: info.closeCode, reason: info.reason }
      }
      const err = new WebTransportError(wasPending ? 'the WebTransport session was not established' : 'the WebTransport session was lost', { source: 'session' })
      this.#settleReady.reject(err)
      throw err
    }, throwLifted)
    // Settled either way, never an unhandled rejection: users who care await it.
    this.#closed.catch(noop)
    this.#draining = wt.draining(id).then((d) => { if (!d) return new Promise(noop) })
    this.#protocol = protocol
    this.request = request
    this.sessionId = sessionId
    if (request) {
      /** Server: the application protocols the client offered (WT-Available-Protocols), in its order of preference. */
      this.availableProtocols = parseOffer(request.headers.get('wt-available-protocols') ?? undefined)
    }
    const use = () => this.#use()
    this.datagrams = wtDatagrams(wt, id, use, (chunk) => this.sendDatagram(chunk))
    this.incomingBidirectionalStreams = wtIncoming(wt, id, true, use)
    this.incomingUnidirectionalStreams = wtIncoming(wt, id, false, use)
    if (established) {
      this.#state = 'open'
      this.#settleReady.resolve()
    }
  }

  /** Resolves once the session is established (server: accepted). */
  get ready () { this.#use(); return this.#ready }
  /** Resolves `{ closeCode, reason }` on a clean close; rejects (WebTransportError) when cut off. */
  get closed () { this.#use(); return this.#closed }
  /** Resolves when the peer (or our server's graceful stop) asks the session to wind down. */
  get draining () { return this.#draining }

  /** The negotiated application protocol (WT-Protocol); '' when none was. */
  get protocol () { return this.#protocol }
  /**
   * The WebTransport dialect of this session: 'draft02' (Chromium, Firefox), 'draft13'
   * (`:protocol = webtransport` without the draft-02 header: Safari, drafts 07-13) or 'draft15'
   * (`webtransport-h3`, drafts 15-16).
   */
  get draft () { return this.#draft }

  /**
   * Server: establish the session (200). Called implicitly on first use, see README.
   * `protocol`: one of `availableProtocols`, sent back as WT-Protocol.
   */
  accept ({ protocol } = {}) {
    if (this.#state !== 'pending' || !this.#onAccept) return
    const headers = []
    if (protocol !== undefined) {
      if (!this.availableProtocols?.includes(protocol)) throw configError(`accept: protocol ${JSON.stringify(protocol)} was not offered (availableProtocols: ${JSON.stringify(this.availableProtocols ?? [])})`)
      headers.push(ANSWER_HEADER, serializeString(protocol))
      this.#protocol = protocol
    }
    this.#state = 'open'
    this.#onAccept(headers)
    this.#settleReady.resolve()
  }

  /** Server: refuse the session with an HTTP status (default 403). */
  reject (status = 403) {
    if (this.#state !== 'pending' || !this.#onReject) return
    if (!Number.isInteger(status) || status < 300 || status > 599) throw configError('reject(status): status must be an integer in 300..599')
    this.#state = 'closed'
    this.#onReject(status)
  }

  #use () {
    if (this.#state === 'pending') this.accept()
  }

  /** Where the handler neither accepted nor rejected: accept (or refuse with 500 after a throw). */
  [kSettle] (failed) {
    if (this.#state !== 'pending') return
    if (failed) this.reject(500)
    else this.accept()
  }

  /** Opens a stream of ours; resolves its native handle. */
  async #open (bidi) {
    this.#use()
    try { return await this.#wt.open(this.#id, bidi) } catch (e) { throw liftError(e) }
  }

  async createBidirectionalStream () {
    const h = await this.#open(true)
    return { readable: wtReadable(this.#wt, h), writable: wtWritable(this.#wt, h) }
  }

  async createUnidirectionalStream () {
    return wtWritable(this.#wt, await this.#open(false))
  }

  /** Send one datagram (dropped and counted when the send queue is full). */
  sendDatagram (data) {
    this.#use()
    try { this.#wt.sendDatagram(this.#id, toBuffer(data)) } catch (e) { throw liftError(e) }
  }

  close ({ closeCode = 0, reason = '' } = {}) {
    if (!Number.isInteger(closeCode) || closeCode < 0 || closeCode > MAX_WT_CODE) throw configError('close: closeCode must be an integer in 0..4294967295')
    if (this.#state === 'pending' && this.#onReject) return this.reject()
    if (this.#state === 'closed') return
    this.#wt.close(this.#id, closeCode, String(reason))
  }
}

module.exports = { WebTransportSession, kSettle }
