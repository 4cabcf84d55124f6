'use strict'
// napi-h3 public entry. Thin by design: it turns native request heads into WHATWG `Request`s and
// `Response`s back into native calls. Routing, limits, TLS and the protocol live in Rust.

const native = require('./binding.js')

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']
const kId = Symbol('napi-h3.requestId')
const kTrailers = Symbol.for('napi-h3.trailers')
const noop = () => {}

/** Errors from Rust arrive as "[ERR_H3_X] message"; give them a `code` (and TypeError for bad input). */
function liftError (e) {
  if (!e || typeof e.message !== 'string') return e
  const m = /^\[(ERR_H3_[A-Z_]+)\] ?([\s\S]*)$/.exec(e.message)
  if (!m) return e
  const [, code, message] = m
  const err = code === 'ERR_H3_ROUTE' || code === 'ERR_H3_INVALID_ARG' ? new TypeError(message) : new Error(message)
  err.code = code
  return err
}

function configError (message, code = 'ERR_H3_INVALID_ARG') {
  // Bad shapes and values are TypeErrors; TLS material and state problems are plain Errors.
  const err = code === 'ERR_H3_INVALID_ARG' || code === 'ERR_H3_ROUTE' ? new TypeError(message) : new Error(message)
  err.code = code
  return err
}

function toPem (v, what) {
  if (typeof v === 'string') return v
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  if (v instanceof ArrayBuffer) return Buffer.from(v)
  throw configError(`tls.${what} must be PEM text, PEM bytes or a file path`, 'ERR_H3_TLS')
}

function flatHeaders (headers) {
  const out = []
  for (const [k, v] of headers) out.push(k, v)
  return out
}

/**
 * Normalises both route forms into one list:
 *   [{ method, pattern, mode, fetch, h3Datagram, webtransport, static?: Response }]
 */
function normaliseRoutes (routes) {
  if (routes == null) return []
  const list = []
  if (Array.isArray(routes)) {
    for (const r of routes) {
      if (!r || typeof r !== 'object') throw configError('each route must be an object { method, pattern, fetch }', 'ERR_H3_ROUTE')
      if (typeof r.pattern !== 'string' || !r.pattern.startsWith('/')) {
        throw configError(`route pattern must be a string starting with "/", got ${JSON.stringify(r.pattern)}`, 'ERR_H3_ROUTE')
      }
      const method = typeof r.method === 'string' ? r.method.toUpperCase() : '*'
      if (!r.fetch && !r.h3Datagram && !r.webtransport && !(r.response instanceof Response)) {
        throw configError(`route ${method} ${r.pattern} needs a fetch, h3Datagram or webtransport handler`, 'ERR_H3_ROUTE')
      }
      for (const k of ['fetch', 'h3Datagram', 'webtransport']) {
        if (r[k] != null && typeof r[k] !== 'function') throw configError(`route ${method} ${r.pattern}: ${k} must be a function`, 'ERR_H3_ROUTE')
      }
      if (r.webtransport && method !== '*' && method !== 'CONNECT') {
        throw configError(`route ${method} ${r.pattern}: a webtransport route must use method "*" or "CONNECT"`, 'ERR_H3_ROUTE')
      }
      if (r.mode != null && r.mode !== 'buffered' && r.mode !== 'streaming') {
        throw configError(`route ${method} ${r.pattern}: mode must be "buffered" or "streaming"`, 'ERR_H3_ROUTE')
      }
      list.push({ method, pattern: r.pattern, mode: r.mode || 'buffered', fetch: r.fetch, h3Datagram: r.h3Datagram, webtransport: r.webtransport, static: r.response instanceof Response ? r.response : undefined })
    }
    return list
  }
  if (typeof routes !== 'object') throw configError('routes must be an array of route definitions or an object map', 'ERR_H3_ROUTE')
  for (const [pattern, value] of Object.entries(routes)) {
    if (!pattern.startsWith('/')) throw configError(`route pattern must start with "/", got ${JSON.stringify(pattern)}`, 'ERR_H3_ROUTE')
    if (typeof value === 'function') {
      list.push({ method: '*', pattern, mode: 'buffered', fetch: value })
    } else if (value instanceof Response) {
      list.push({ method: '*', pattern, mode: 'buffered', static: value })
    } else if (value && typeof value === 'object') {
      for (const [m, h] of Object.entries(value)) {
        const method = m.toUpperCase()
        if (!METHODS.includes(method) && method !== '*') throw configError(`route ${pattern}: unknown method ${m}`, 'ERR_H3_ROUTE')
        if (h instanceof Response) list.push({ method, pattern, mode: 'buffered', static: h })
        else if (typeof h === 'function') list.push({ method, pattern, mode: 'buffered', fetch: h })
        else throw configError(`route ${method} ${pattern} must be a function or a Response`, 'ERR_H3_ROUTE')
      }
    } else {
      throw configError(`route ${pattern} must be a handler, a Response or a { METHOD: handler } object`, 'ERR_H3_ROUTE')
    }
  }
  return list
}

/** Native route descriptors; static responses whose bytes are known go to Rust whole. */
function nativeRoutes (list, staticBodies) {
  return list.map((r, i) => {
    const out = { method: r.method, pattern: r.pattern, mode: r.mode, h3Datagram: !!r.h3Datagram, webtransport: !!r.webtransport }
    const body = staticBodies && staticBodies[i]
    if (r.static && body !== undefined) {
      out.staticStatus = r.static.status
      out.staticHeaders = flatHeaders(r.static.headers)
      out.staticBody = body
    }
    return out
  })
}

function validateHandlers (options) {
  for (const k of ['fetch', 'error']) {
    if (options[k] != null && typeof options[k] !== 'function') throw configError(`${k} must be a function`)
  }
}

const kState = Symbol('napi-h3.requestState')

/**
 * A body pulled from Rust: each pull is one QUIC read there, so nothing is read from the
 * network before JS asks for it. `read()` resolves a Buffer, or at the end an array of trailer
 * name/value pairs; `trailers` settles with those as Headers. Used for streaming request bodies
 * (server) and response bodies (client).
 */
function pulledBody (read, { mapError = (e) => e, onCancel = noop, onDone = noop } = {}) {
  let settle
  const trailers = new Promise((resolve) => { settle = resolve })
  const stream = new ReadableStream({
    pull (controller) {
      return read().then((v) => {
        if (Array.isArray(v)) {
          const h = new Headers()
          for (let i = 0; i < v.length; i += 2) h.append(v[i], v[i + 1])
          settle(h)
          onDone()
          controller.close()
        } else {
          controller.enqueue(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
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

function routeParams (params) {
  const p = {}
  if (params) {
    for (let i = 0; i < params.length; i += 2) {
      let v = params[i + 1]
      try { v = decodeURIComponent(v) } catch {}
      p[params[i]] = v
    }
  }
  return p
}

function lazySignal () {
  const st = this[kState]
  if (!st.controller) {
    st.controller = new AbortController()
    if (st.aborted) st.controller.abort(new DOMException('The client went away', 'AbortError'))
  }
  return st.controller.signal
}
const signalProperty = { get: lazySignal, configurable: true, enumerable: false }

function requestInit (method, pairs, body) {
  const init = { method, headers: pairs }
  if (body && method !== 'GET' && method !== 'HEAD') {
    init.body = body
    init.duplex = 'half'
  }
  return init
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

/** Bytes of the quarter-stream-id prefix of an HTTP datagram on stream `streamId`. */
function prefixLength (streamId) {
  const q = Math.floor(streamId / 4)
  return q < 0x40 ? 1 : q < 0x4000 ? 2 : q < 0x40000000 ? 4 : 8
}

// ---------------------------------------------------------------------------------------------
// WebTransport sessions (server and client share this code; natives are NativeWt methods)

/** W3C WebTransportError: `source` is "stream" or "session"; `streamErrorCode` the peer's code. */
class WebTransportError extends Error {
  constructor (message = '', init = {}) {
    super(message)
    this.name = 'WebTransportError'
    this.source = init.source === 'session' ? 'session' : 'stream'
    this.streamErrorCode = init.streamErrorCode ?? null
  }
}

const MAX_WT_CODE = 0xffffffff
const kSettle = Symbol('napi-h3.settleSession')

function wtCode (reason) {
  const c = reason && reason.streamErrorCode
  return Number.isInteger(c) && c >= 0 && c <= MAX_WT_CODE ? c : 0
}

/** `asBytes`, with strings encoded too (for natives that take only a Buffer). */
function toBuffer (chunk) {
  return typeof chunk === 'string' ? Buffer.from(chunk) : asBytes(chunk)
}

/** Receiving half of a WebTransport stream: every pull is one QUIC read in Rust. */
function wtReadable (wt, h) {
  return new ReadableStream({
    pull (c) {
      return wt.read(h).then((v) => {
        if (v === null) c.close()
        else if (typeof v === 'number') c.error(new WebTransportError('the peer reset the stream', { streamErrorCode: v < 0 ? null : v }))
        else c.enqueue(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
      }, (e) => c.error(liftError(e)))
    },
    cancel (reason) { wt.stopSending(h, wtCode(reason)) }
  }, { highWaterMark: 0 })
}

/** Sending half: each write resolves once QUIC accepted the chunk (that is the backpressure). */
function wtWritable (wt, h) {
  return new WritableStream({
    write (chunk) {
      return wt.write(h, toBuffer(chunk)).then((r) => {
        if (r !== null) throw new WebTransportError('the peer stopped reading the stream', { streamErrorCode: r < 0 ? null : r })
      }, (e) => { throw liftError(e) })
    },
    close () { return wt.finish(h).catch((e) => { throw liftError(e) }) },
    abort (reason) { wt.reset(h, wtCode(reason)) }
  }, { highWaterMark: 1 })
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

  constructor (wt, id, { request, sessionId, onAccept, onReject, established = false }) {
    this.#wt = wt
    this.#id = id
    this.#onAccept = onAccept
    this.#onReject = onReject
    this.#ready = new Promise((resolve, reject) => { this.#settleReady = { resolve, reject } })
    this.#ready.catch(noop)
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
    }, (e) => { throw liftError(e) })
    // Settled either way, never an unhandled rejection: users who care await it.
    this.#closed.catch(noop)
    this.#draining = wt.draining(id).then((d) => { if (!d) return new Promise(noop) })
    this.request = request
    this.sessionId = sessionId
    const use = () => this.#use()
    const self = this
    this.datagrams = {
      readable: new ReadableStream({
        pull (c) {
          use()
          return wt.readDatagrams(id).then((list) => {
            if (list === null) return c.close()
            for (const d of list) c.enqueue(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))
          }, (e) => c.error(liftError(e)))
        }
      }, { highWaterMark: 0 }),
      writable: new WritableStream({
        write (chunk) { self.sendDatagram(chunk) }
      }),
      /** Largest payload one datagram can carry right now (null when datagrams are off). */
      get maxDatagramSize () { return wt.maxDatagramSize(id) }
    }
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

  /** Server: establish the session (200). Called implicitly on first use, see README. */
  accept () {
    if (this.#state !== 'pending' || !this.#onAccept) return
    this.#state = 'open'
    this.#onAccept()
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

  async createBidirectionalStream () {
    this.#use()
    let h
    try { h = await this.#wt.open(this.#id, true) } catch (e) { throw liftError(e) }
    return { readable: wtReadable(this.#wt, h), writable: wtWritable(this.#wt, h) }
  }

  async createUnidirectionalStream () {
    this.#use()
    let h
    try { h = await this.#wt.open(this.#id, false) } catch (e) { throw liftError(e) }
    return wtWritable(this.#wt, h)
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

class H3Server {
  #native
  #wt = null
  #gens = new Map()
  #gen = 1
  #inflight = new Map()
  #keepAlive
  #stopped = null
  #hostname
  #quicDatagram

  constructor (options) {
    if (options == null) options = {}
    if (typeof options !== 'object') throw configError('options must be an object')
    validateHandlers(options)
    const routes = normaliseRoutes(options.routes)
    let cert, key
    const tls = options.tls
    if (tls != null && tls !== 'self-signed') {
      if (typeof tls !== 'object' || tls.cert == null || tls.key == null) {
        throw configError('tls must be "self-signed" or { cert, key } (PEM text, PEM bytes or file paths)', 'ERR_H3_TLS')
      }
      cert = toPem(tls.cert, 'cert')
      key = toPem(tls.key, 'key')
    }
    for (const k of ['port', 'maxRequestBodySize', 'idleTimeout', 'maxConnections', 'maxConcurrentStreams', 'maxHeaderListSize']) {
      if (options[k] != null && typeof options[k] !== 'number') throw configError(`${k} must be a number`)
    }
    if (options.hostname != null && typeof options.hostname !== 'string') throw configError('hostname must be a string')
    if (options.reusePort != null && typeof options.reusePort !== 'boolean') throw configError('reusePort must be a boolean')
    this.#hostname = options.hostname || '0.0.0.0'
    if (options.quicDatagram != null && typeof options.quicDatagram !== 'function') throw configError('quicDatagram must be a function')
    this.#quicDatagram = options.quicDatagram
    this.#gens.set(1, { routes, fetch: options.fetch, error: options.error })
    try {
      this.#native = native.createNativeServer({
        port: options.port,
        hostname: options.hostname,
        cert,
        key,
        maxRequestBodySize: options.maxRequestBodySize,
        idleTimeout: options.idleTimeout,
        maxConnections: options.maxConnections,
        maxConcurrentStreams: options.maxConcurrentStreams,
        maxHeaderListSize: options.maxHeaderListSize,
        reusePort: options.reusePort,
        routes: nativeRoutes(routes),
        hasFallback: typeof options.fetch === 'function',
        quicDatagram: typeof options.quicDatagram === 'function'
      }, this.#onBatch.bind(this), this.#onAbort.bind(this), this.#onDatagrams.bind(this))
    } catch (e) {
      throw liftError(e)
    }
    this.#wt = this.#native.wt()
    // Native callbacks are weak; this handle is what keeps the process alive while serving.
    this.#keepAlive = setInterval(noop, 0x7fffffff)
    this.#materialiseStatic(1, routes)
  }

  get port () { return this.#native.port }
  get hostname () { return this.#hostname }
  get url () {
    let host = this.#hostname
    // A wildcard bind is reachable on loopback; name the IPv4 one (Bun resolves localhost to ::1).
    if (host === '0.0.0.0') host = '127.0.0.1'
    else if (host === '::') host = 'localhost'
    else if (host.includes(':')) host = `[${host}]`
    return new URL(`https://${host}:${this.port}/`)
  }

  /** SHA-256 of the certificate (DER): pass it to WebTransport `serverCertificateHashes`. */
  get certificateHash () {
    const h = this.#native.certificateHash
    return h ? new Uint8Array(h) : undefined
  }

  /** PEM of the generated self-signed certificate (undefined when you supplied one). */
  get certificatePem () { return this.#native.certificatePem ?? undefined }

  get pendingRequests () { return this.#native.stats().requestsActive }

  getStats () { return this.#native.stats() }

  requestIP (req) {
    const id = req && req[kId]
    if (id === undefined) return null
    return this.#native.requestIp(id) ?? null
  }

  ref () { this.#keepAlive?.ref?.() }
  unref () { this.#keepAlive?.unref?.() }

  reload (options = {}) {
    if (this.#stopped) throw configError('server is stopped', 'ERR_H3_NOT_RUNNING')
    validateHandlers(options)
    const cur = this.#gens.get(this.#gen)
    const routes = options.routes !== undefined ? normaliseRoutes(options.routes) : cur.routes
    const fetch = 'fetch' in options ? options.fetch : cur.fetch
    const error = 'error' in options ? options.error : cur.error
    let gen
    try {
      gen = this.#native.reload(nativeRoutes(routes), typeof fetch === 'function')
    } catch (e) {
      throw liftError(e)
    }
    this.#gens.set(gen, { routes, fetch, error })
    this.#gen = gen
    // Requests already matched against older tables may still be queued; keep a few.
    for (const g of this.#gens.keys()) if (g < gen - 4) this.#gens.delete(g)
    this.#materialiseStatic(gen, routes)
  }

  stop (force = false) {
    if (!this.#stopped) {
      this.#stopped = this.#native.stop(!!force).catch((e) => { throw liftError(e) }).finally(() => {
        clearInterval(this.#keepAlive)
        for (const [id, st] of this.#inflight) this.#onAbort(id, st)
      })
    } else if (force) {
      // A forced stop during a graceful one closes the remaining connections now.
      return this.#native.stop(true).then(() => this.#stopped)
    }
    return this.#stopped
  }

  /** Read static Responses once; then Rust serves them without calling JS. */
  #materialiseStatic (gen, routes) {
    if (!routes.some((r) => r.static)) return
    Promise.all(routes.map((r) => r.static ? r.static.clone().arrayBuffer().then((b) => Buffer.from(b)) : undefined))
      .then((bodies) => {
        if (this.#gen !== gen || this.#stopped) return
        const g = this.#gens.get(gen)
        const next = this.#native.reload(nativeRoutes(routes, bodies), typeof g.fetch === 'function')
        this.#gens.set(next, g)
        this.#gen = next
      })
      .catch(noop)
  }

  #onAbort (id) {
    const st = this.#inflight.get(id)
    if (!st) return
    this.#done(id)
    st.aborted = true
    if (st.controller) {
      try { st.controller.abort(new DOMException('The client went away', 'AbortError')) } catch {}
    }
  }

  /** Requests arrive in batches: 11 cells each (see create_native_server in Rust). */
  #onBatch (cells) {
    for (let i = 0; i < cells.length; i += 11) {
      this.#onRequest(cells[i], cells[i + 1], cells[i + 2], cells[i + 3], cells[i + 4], cells[i + 5], cells[i + 6], cells[i + 7], cells[i + 8], cells[i + 9], cells[i + 10])
    }
  }

  /** The request is answered or gone: forget its JS-side state. */
  #done (id) {
    this.#inflight.delete(id)
    if (this.#datagramRequests.size) this.#datagramRequests.delete(id)
  }

  #datagramRequests = new Map()

  /** Replies sent while a datagram batch is handled go back to Rust in one call at its end. */
  #dgOut = null
  /** Largest bare datagram per connection, looked up once per batch. */
  #dgMax = new Map()

  #sendDatagram = (conn, stream, data) => {
    const bytes = toBuffer(data)
    const out = this.#dgOut
    if (out) {
      let max = this.#dgMax.get(conn)
      if (max === undefined) this.#dgMax.set(conn, max = this.#native.maxDatagramSize(conn, null))
      if (max !== null) {
        const limit = stream === null ? max : max - prefixLength(stream)
        if (bytes.length > limit) throw configError(`datagram of ${bytes.length} bytes exceeds the current maximum of ${limit}`, 'ERR_H3_DATAGRAM_TOO_LARGE')
        out.push(conn, stream ?? -1, bytes)
        return
      }
    }
    // Outside a batch, or the connection has no datagrams: send now (errors as they come).
    try { this.#native.sendDatagram(conn, stream, bytes) } catch (e) { throw liftError(e) }
  }

  /** Datagrams arrive in batches: connId, requestId (-1: server level), streamId, payload. */
  #onDatagrams (cells) {
    const out = this.#dgOut = []
    try {
      for (let i = 0; i < cells.length; i += 4) {
        const connId = cells[i]
        const reqId = cells[i + 1]
        const payload = cells[i + 3]
        try {
          if (reqId >= 0) {
            const e = this.#datagramRequests.get(reqId)
            if (e) e.route.h3Datagram(payload, new H3DatagramContext(this.#native, connId, cells[i + 2], e.request, this.#sendDatagram))
          } else if (typeof this.#quicDatagram === 'function') {
            this.#quicDatagram(payload, new QUICDatagramContext(this.#native, connId, this.#sendDatagram))
          }
        } catch {
          // A throwing datagram handler loses that datagram only.
        }
      }
    } finally {
      this.#dgOut = null
      this.#dgMax.clear()
      if (out.length) {
        try { this.#native.sendDatagrams(out) } catch {}
      }
    }
  }

  /** Complete responses are queued and handed to Rust once per tick, in one call. */
  #respond (id, status, headers, body) {
    const q = this.#outbox
    q.push(id, status, headers, body)
    if (q.length === 4) queueMicrotask(this.#flush)
  }

  #outbox = []
  #respondFn = (id, status, headers, body) => this.#respond(id, status, headers, body)
  #flush = () => {
    const q = this.#outbox
    this.#outbox = []
    try { this.#native.respondBatch(q) } catch {}
  }

  #onRequest (id, method, url, headers, body, routeIdx, params, gen, streaming, connId, streamId) {
    try {
      const g = this.#gens.get(gen) || this.#gens.get(this.#gen)
      const route = routeIdx >= 0 ? g.routes[routeIdx] : undefined
      const handler = route ? (route.fetch || (route.static && (() => route.static.clone()))) : g.fetch
      const pairs = []
      for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i], headers[i + 1]])
      if (streaming === 2) return this.#onSession(id, url, pairs, params, route, streamId)
      const st = { aborted: false, controller: null }
      this.#inflight.set(id, st)
      let trailers
      if (streaming && (method === 'GET' || method === 'HEAD')) {
        // No body to stream (WHATWG forbids one here); whatever the peer sends is refused.
        trailers = Promise.resolve(new Headers())
      } else if (streaming) {
        const t = pulledBody(() => this.#native.readBody(id), {
          // Abort the signal before the body errors, so a handler catching the error sees both.
          mapError: (err) => {
            if (err.code === 'ERR_H3_STREAM_RESET' || err.code === 'ERR_H3_CONNECTION_LOST') this.#onAbort(id)
            return err
          },
          onCancel: () => this.#native.cancelBody(id)
        })
        body = t.stream
        trailers = t.trailers
      }
      const req = new Request(url, requestInit(method, pairs, body))
      req[kId] = id
      if (trailers) req.trailers = trailers
      req[kState] = st
      // An AbortController per request is the most expensive part of a Request in Node, so
      // `signal` is created on first access (an own getter shadowing Request.prototype.signal).
      Object.defineProperty(req, 'signal', signalProperty)
      req.params = routeParams(params)
      if (route && route.h3Datagram) this.#datagramRequests.set(id, { route, request: req })
      if (typeof handler !== 'function') {
        this.#send(id, new Response('Not Found', { status: 404 }), g.error)
        return
      }
      let res
      try {
        res = handler(req, this)
      } catch (e) {
        this.#fail(id, e, g.error)
        return
      }
      if (res && typeof res.then === 'function') {
        res.then((r) => this.#send(id, r, g.error), (e) => this.#fail(id, e, g.error))
      } else {
        this.#send(id, res, g.error)
      }
    } catch (e) {
      this.#done(id)
      this.#respond(id, 500, [], 'Internal Server Error')
    }
  }

  /** A WebTransport session request on a route with a `webtransport` handler. */
  #onSession (id, url, pairs, params, route, streamId) {
    const nat = this.#native
    const req = new Request(url, { headers: pairs })
    // WHATWG Request cannot carry CONNECT; the session's request says what it was.
    Object.defineProperty(req, 'method', { value: 'CONNECT', enumerable: true })
    req[kId] = id
    req.params = routeParams(params)
    const session = new WebTransportSession(this.#wt, id, {
      request: req,
      sessionId: BigInt(streamId),
      onAccept: () => nat.startResponse(id, 200, []),
      onReject: (status) => nat.respond(id, status, [], null)
    })
    if (typeof route?.webtransport !== 'function') return session.reject(404)
    let r
    try {
      r = route.webtransport(session, this)
    } catch {
      return session[kSettle](true)
    }
    if (r && typeof r.then === 'function') r.then(() => session[kSettle](false), () => session[kSettle](true))
    else session[kSettle](false)
  }

  #fail (id, err, errorHandler) {
    if (typeof errorHandler === 'function') {
      let r
      try {
        r = errorHandler(err)
      } catch {
        return this.#internalError(id)
      }
      if (r && typeof r.then === 'function') {
        r.then((res) => this.#send(id, res, null), () => this.#internalError(id))
        return
      }
      return this.#send(id, r, null)
    }
    this.#internalError(id)
  }

  #internalError (id) {
    this.#done(id)
    this.#respond(id, 500, ['content-type', 'text/plain;charset=utf-8'], 'Internal Server Error')
  }

  #send (id, res, errorHandler) {
    if (!(res instanceof Response)) {
      const err = new TypeError(`handler must return a Response, got ${res === null ? 'null' : typeof res}`)
      return this.#fail(id, err, errorHandler)
    }
    const st = this.#inflight.get(id)
    if (!st || st.aborted) {
      // The peer is gone or reset the request: release the stream instead of answering.
      res.body?.cancel().catch(noop)
      this.#native.abort(id)
      return
    }
    const headers = flatHeaders(res.headers)
    const body = res.body
    if (body === null) {
      this.#done(id)
      this.#respond(id, res.status, headers, null)
      return
    }
    pumpBody(this.#native, this.#respondFn, id, res.status, headers, body.getReader(), res[kTrailers])
      .catch(noop)
      .finally(() => this.#done(id))
  }
}

function asBytes (chunk) {
  if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  if (ArrayBuffer.isView(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  if (chunk instanceof ArrayBuffer) return Buffer.from(chunk)
  throw new TypeError('data must be bytes (Uint8Array, ArrayBuffer, any ArrayBufferView) or a string')
}

const NOT_YET = Symbol('not yet')

const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

/**
 * The read's result if the stream can produce it without waiting for anything outside (its
 * pull runs on microtasks, as for string/bytes/Blob bodies), else NOT_YET. Checked after one
 * microtask first, then after the event loop's next turn.
 */
async function readSoon (p) {
  let out = NOT_YET
  p.then((v) => { out = v }, noop)
  await undefined
  if (out === NOT_YET) await nextTurn()
  return out
}

/**
 * Streams a response body to Rust. A body whose data is at hand and ends after one chunk
 * (strings, bytes, small blobs) goes out in a single native call. A body with nothing ready yet
 * (a live stream, an echo) gets its head sent at once, then streams: each write waits for QUIC to
 * accept the chunk, so a slow client holds the producer instead of our memory.
 */
async function pumpBody (nat, respond, id, status, headers, reader, trailers) {
  let headSent = false
  const startHead = () => {
    headSent = true
    return nat.startResponse(id, status, headers)
  }
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
      if (!(await nat.write(id, asBytes(chunk.value)))) return reader.cancel().catch(noop)
      chunk = second === NOT_YET ? await p2 : second
    }
    while (!chunk.done) {
      if (!(await nat.write(id, asBytes(chunk.value)))) {
        await reader.cancel().catch(noop)
        return
      }
      chunk = await reader.read()
    }
    let trailerList = null
    if (trailers) {
      const t = await (typeof trailers === 'function' ? trailers() : trailers)
      trailerList = t ? flatHeaders(new Headers(t)) : null
    }
    nat.end(id, trailerList)
  } catch (e) {
    if (headSent) nat.abort(id)
    else respond(id, 500, [], 'Internal Server Error')
    await reader.cancel(e).catch(noop)
  }
}

function createH3Server (options) {
  return new H3Server(options)
}

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

// ---------------------------------------------------------------------------------------------
// Client: h3Fetch / createH3Client

const REDIRECTS = new Set([301, 302, 303, 307, 308])
const NULL_BODY = new Set([101, 103, 204, 205, 304])
const MAX_REDIRECTS = 20

function abortError (signal) {
  const r = signal && signal.reason
  if (r !== undefined) return r
  return new DOMException('This operation was aborted', 'AbortError')
}

function timeoutError (ms) {
  const err = new Error(`request timed out after ${ms} ms`)
  err.name = 'TimeoutError'
  err.code = 'ERR_H3_TIMEOUT'
  return err
}

/** The request body in the form Rust takes: whole bytes/string, or a stream to pump. */
async function prepareBody (body, headers) {
  if (body == null) return { bytes: null }
  if (typeof body === 'string') {
    if (!headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8')
    return { bytes: body }
  }
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return { bytes: asBytes(body) }
  if (body instanceof URLSearchParams) {
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8')
    return { bytes: body.toString() }
  }
  if (body instanceof ReadableStream) return { stream: body }
  if (typeof body[Symbol.asyncIterator] === 'function' && !(body instanceof Blob)) {
    const it = body[Symbol.asyncIterator]()
    return {
      stream: new ReadableStream({
        async pull (c) { const { done, value } = await it.next(); if (done) c.close(); else c.enqueue(typeof value === 'string' ? new TextEncoder().encode(value) : value) },
        async cancel (r) { await it.return?.(r) }
      }, { highWaterMark: 0 })
    }
  }
  // Blob (Bun.file too), FormData, and the rest: let a Response encode it (and name its type).
  const r = new Response(body)
  const type = r.headers.get('content-type')
  if (type && !headers.has('content-type')) headers.set('content-type', type)
  if (body instanceof Blob) {
    if (!headers.has('content-length')) headers.set('content-length', String(body.size))
    // Small blobs in one piece; big ones streamed with backpressure.
    return body.size <= 1024 * 1024 ? { bytes: Buffer.from(await r.arrayBuffer()) } : { stream: r.body }
  }
  return { stream: r.body }
}

/** Writes a request body stream chunk by chunk; each write waits for QUIC to take it. */
async function pumpUpload (nat, id, stream) {
  const reader = stream.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      if (!(await nat.write(id, asBytes(value)))) {
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

function clientOptions (tls = {}, extra = {}) {
  if (tls == null || typeof tls !== 'object') throw configError('tls must be an object')
  const hashes = tls.serverCertificateHashes
  if (hashes != null && !Array.isArray(hashes)) throw configError('tls.serverCertificateHashes must be an array')
  return {
    ca: tls.ca == null ? undefined : (Array.isArray(tls.ca) ? tls.ca : [tls.ca]).map((c) => toPem(c, 'ca')),
    rejectUnauthorized: tls.rejectUnauthorized,
    // Accept the WebTransport shape ({ algorithm, value }) as well as plain bytes.
    serverCertificateHashes: hashes?.map((h) => asBytes(h && h.value !== undefined ? h.value : h)),
    idleTimeout: extra.idleTimeout,
    connectTimeout: extra.connectTimeout
  }
}

class H3Client {
  #native
  #closed = false
  #options
  /** Clients for WebTransport sessions with their own serverCertificateHashes, by hash set. */
  #hashClients = new Map()
  #wts = new WeakMap()

  constructor (options = {}) {
    if (options == null || typeof options !== 'object') throw configError('options must be an object')
    this.#options = options
    try {
      this.#native = native.createNativeClient(clientOptions(options.tls ?? {}, options))
    } catch (e) {
      throw liftError(e)
    }
    this.fetch = this.fetch.bind(this)
  }

  /** Open QUIC connections (one per origin in use). */
  get connectionCount () { return this.#native.connectionCount() }

  /** QUIC connections opened over this client's life. */
  get connectionsOpened () { return this.#native.connectionsOpened() }

  fetch (input, init) {
    if (this.#closed) return Promise.reject(configError('client is closed', 'ERR_H3_NOT_RUNNING'))
    return clientFetch(this.#native, input, init)
  }

  /**
   * Open a WebTransport session. Resolves once the server accepted it; rejects with a
   * WebTransportError (code ERR_H3_WT_REJECTED, `status`) when it answered otherwise.
   * `serverCertificateHashes` (W3C shape or plain bytes) trusts a certificate by its hash.
   */
  async webtransport (url, opts = {}) {
    if (this.#closed) throw configError('client is closed', 'ERR_H3_NOT_RUNNING')
    if (opts == null || typeof opts !== 'object') throw configError('webtransport options must be an object')
    let u
    try {
      u = new URL(String(url))
    } catch {
      throw new TypeError(`webtransport: invalid URL ${JSON.stringify(String(url))}`)
    }
    if (u.protocol !== 'https:') throw new TypeError(`webtransport: needs an https: URL, got ${u.protocol}`)
    let nat = this.#native
    const hashes = opts.serverCertificateHashes
    if (hashes != null) {
      const tls = { ...(this.#options.tls ?? {}), serverCertificateHashes: hashes }
      const key = clientOptions(tls).serverCertificateHashes.map((h) => h.toString('hex')).join(',')
      nat = this.#hashClients.get(key)
      if (!nat) {
        try {
          nat = native.createNativeClient(clientOptions(tls, this.#options))
        } catch (e) {
          throw liftError(e)
        }
        this.#hashClients.set(key, nat)
      }
    }
    let open
    try {
      open = await nat.webtransport(u.href, flatHeaders(new Headers(opts.headers ?? {})))
    } catch (e) {
      throw liftError(e)
    }
    if (open.session == null) {
      const err = new WebTransportError(`the server refused the WebTransport session with status ${open.status}`, { source: 'session' })
      err.code = 'ERR_H3_WT_REJECTED'
      err.status = open.status
      throw err
    }
    let wt = this.#wts.get(nat)
    if (!wt) this.#wts.set(nat, wt = nat.wt())
    return new WebTransportSession(wt, open.session, { established: true })
  }

  close () {
    this.#closed = true
    const all = [this.#native, ...this.#hashClients.values()].map((n) => n.close())
    this.#hashClients.clear()
    return Promise.all(all).then(noop, (e) => { throw liftError(e) })
  }
}

async function clientFetch (nat, input, init = {}) {
  if (init === null || typeof init !== 'object') init = {}
  const isReq = input instanceof Request
  let url
  try {
    url = new URL(isReq ? input.url : String(input))
  } catch {
    throw new TypeError(`h3Fetch: invalid URL ${JSON.stringify(String(input))}`)
  }
  if (url.protocol !== 'https:') throw new TypeError(`h3Fetch: HTTP/3 needs an https: URL, got ${url.protocol}`)
  if (url.username || url.password) throw new TypeError('h3Fetch: URLs with credentials are not allowed')
  let method = String(init.method ?? (isReq ? input.method : 'GET'))
  if (/^(get|head|post|put|delete|options|patch)$/i.test(method)) method = method.toUpperCase()
  const headers = new Headers(init.headers ?? (isReq ? input.headers : undefined))
  let body = 'body' in init ? init.body : (isReq ? input.body : null)
  if (body != null && (method === 'GET' || method === 'HEAD')) throw new TypeError('h3Fetch: a GET or HEAD request cannot have a body')
  const signal = init.signal ?? (isReq ? input.signal : undefined)
  const redirect = init.redirect ?? (isReq ? input.redirect : 'follow')
  if (!['follow', 'manual', 'error'].includes(redirect)) throw new TypeError(`h3Fetch: invalid redirect mode ${redirect}`)
  const timeout = init.timeout
  if (timeout != null && !(typeof timeout === 'number' && timeout > 0)) throw new TypeError('h3Fetch: timeout must be a positive number of milliseconds')
  if (signal?.aborted) throw abortError(signal)

  let id = -1
  let timer
  let failed = null
  let rejectNow
  const stopped = new Promise((resolve, reject) => { rejectNow = reject })
  stopped.catch(noop)
  const fail = (err) => {
    if (failed) return
    failed = err
    if (id >= 0) nat.cancel(id)
    rejectNow(err)
  }
  const onAbort = () => fail(abortError(signal))
  signal?.addEventListener('abort', onAbort, { once: true })
  if (timeout != null) {
    timer = setTimeout(() => fail(timeoutError(timeout)), timeout)
    timer.unref?.()
  }
  const cleanup = () => {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }

  try {
    let prepared = await prepareBody(body, headers)
    for (let hop = 0; ; hop++) {
      if (failed) throw failed
      if (prepared.bytes != null && !headers.has('content-length')) {
        headers.set('content-length', String(typeof prepared.bytes === 'string' ? Buffer.byteLength(prepared.bytes) : prepared.bytes.byteLength))
      }
      try {
        id = nat.start(method, url.href, flatHeaders(headers), prepared.bytes ?? null, !!prepared.stream)
      } catch (e) {
        throw liftError(e)
      }
      const thisId = id
      if (prepared.stream) pumpUpload(nat, thisId, prepared.stream)
      const head = await Promise.race([nat.head(thisId).catch((e) => { throw failed || liftError(e) }), stopped])
      const status = head.status
      const resHeaders = new Headers()
      for (let i = 0; i < head.headers.length; i += 2) resHeaders.append(head.headers[i], head.headers[i + 1])

      if (REDIRECTS.has(status) && redirect !== 'manual' && resHeaders.has('location')) {
        nat.cancel(thisId)
        if (redirect === 'error') throw new TypeError(`h3Fetch: redirect to ${resHeaders.get('location')} with redirect: "error"`)
        if (hop >= MAX_REDIRECTS) throw new TypeError('h3Fetch: too many redirects')
        const next = new URL(resHeaders.get('location'), url)
        // Like fetch: credentials do not follow a redirect to another origin.
        if (next.origin !== url.origin) headers.delete('authorization')
        url = next
        if (url.protocol !== 'https:') throw new TypeError(`h3Fetch: redirect to a non-https URL ${url.href}`)
        if (status === 303 ? method !== 'HEAD' : ((status === 301 || status === 302) && method === 'POST')) {
          method = 'GET'
          prepared = { bytes: null }
          for (const h of ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']) headers.delete(h)
        } else if (prepared.stream) {
          throw new TypeError('h3Fetch: cannot follow a redirect with a streamed request body')
        }
        continue
      }

      const noBody = method === 'HEAD' || NULL_BODY.has(status)
      if (head.trailers) {
        // The whole (small) body came with the head: no body stream needed.
        cleanup()
        const t = new Headers()
        for (let i = 0; i < head.trailers.length; i += 2) t.append(head.trailers[i], head.trailers[i + 1])
        return finishResponse(noBody || !head.body.length ? null : head.body, status, resHeaders, url, hop, Promise.resolve(t))
      }
      const { stream, trailers } = pulledBody(() => nat.readBody(thisId), {
        mapError: (err) => failed || err,
        onCancel: () => nat.cancel(thisId),
        onDone: cleanup
      })
      if (noBody) {
        stream.cancel().catch(noop)
      }
      if (noBody) cleanup()
      try {
        return finishResponse(noBody ? null : stream, status, resHeaders, url, hop, trailers)
      } catch (e) {
        nat.cancel(thisId)
        throw e
      }
    }
  } catch (e) {
    cleanup()
    if (id >= 0) nat.cancel(id)
    throw e
  }
}

function finishResponse (body, status, headers, url, hops, trailers) {
  let res
  try {
    res = new Response(body, { status: status < 200 ? 200 : status, headers })
  } catch (e) {
    throw new TypeError(`h3Fetch: unusable response status ${status}: ${e.message}`)
  }
  Object.defineProperty(res, 'url', { value: url.href, enumerable: true })
  Object.defineProperty(res, 'redirected', { value: hops > 0, enumerable: true })
  Object.defineProperty(res, 'trailers', { value: trailers, enumerable: false })
  return res
}

let sharedClient = null
const tlsClients = new Map()

/**
 * fetch() over HTTP/3. Without `init.tls` it uses a shared client (connections are reused per
 * origin and never keep the process alive by themselves); with `init.tls` a client per distinct
 * TLS setting.
 */
function h3Fetch (input, init) {
  let client
  try {
    const tls = init?.tls
    if (tls == null) {
      client = sharedClient ??= new H3Client()
    } else {
      const key = JSON.stringify(clientOptions(tls), (k, v) => (v && v.type === 'Buffer') ? Buffer.from(v.data).toString('hex') : v)
      client = tlsClients.get(key)
      if (!client) {
        client = new H3Client({ tls })
        tlsClients.set(key, client)
      }
    }
  } catch (e) {
    return Promise.reject(e)
  }
  return client.fetch(input, init)
}

function createH3Client (options) {
  return new H3Client(options)
}

module.exports = { createH3Server, H3Server, withTrailers, trailersSymbol: kTrailers, h3Fetch, createH3Client, H3Client, WebTransportError }
