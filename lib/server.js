'use strict'
// The server: options, reload and stop, and the per-request path: a native request head becomes
// a WHATWG Request, the handler's Response goes back to Rust (whole, batched per tick, or
// streamed).

const { closeOnExit, forget } = require('./exit.js')
const native = require('../binding.js')
const { liftError, throwLifted, configError, clientGoneError } = require('./errors.js')
const { noop, asBytes, flatHeaders } = require('./convert.js')
const { normaliseRoutes, nativeRoutes, validateHandlers } = require('./routes.js')
const { REQUEST, REQUEST_FIXED } = require('./batch.js')
const { pulledBody } = require('./body.js')
const { serverRequest, sessionRequest, requestId } = require('./request.js')
const { kTrailers, pumpBody, bodyAtHand } = require('./response.js')
const { DatagramDispatcher } = require('./datagram.js')
const { WebTransportSession, kSettle } = require('./webtransport.js')
const { serverTls, reloadCerts, altSvcHeader, peerCertificateOf } = require('./tls.js')

const {
  requestId: R_ID,
  method: R_METHOD,
  url: R_URL,
  body: R_BODY,
  routeIndex: R_ROUTE,
  generation: R_GEN,
  bodyMode: R_MODE,
  connectionId: R_CONN,
  streamId: R_STREAM
} = REQUEST

/** Arguments of one respondBatch call, at most (a batch call's, src/napi/batch.rs MAX_ARGS). */
const MAX_RESPOND_ARGS = 4096

/** `bodyMode` of a request head. */
const STREAMING = 1
const SESSION = 2

const NUMBER_OPTIONS = ['port', 'maxRequestBodySize', 'idleTimeout', 'maxConnections', 'maxConcurrentStreams', 'maxHeaderListSize']

/** Type checks of the options Rust validates further (ranges, limits). */
function validateOptions (options) {
  for (const k of NUMBER_OPTIONS) {
    if (options[k] != null && typeof options[k] !== 'number') throw configError(`${k} must be a number`)
  }
  if (options.hostname != null && typeof options.hostname !== 'string') throw configError('hostname must be a string')
  if (options.reusePort != null && typeof options.reusePort !== 'boolean') throw configError('reusePort must be a boolean')
  if (options.quicDatagram != null && typeof options.quicDatagram !== 'function') throw configError('quicDatagram must be a function')
  if (options.qlogDir != null && (typeof options.qlogDir !== 'string' || options.qlogDir === '')) throw configError('qlogDir must be a directory path')
}

/** `stop()`'s argument: a boolean (force) or `{ force?, timeout? }` (timeout in seconds). */
function stopOptions (options) {
  if (typeof options === 'boolean' || options == null) return { force: !!options, timeout: undefined }
  if (typeof options !== 'object') throw configError('stop() takes a boolean or { force, timeout }')
  const { force = false, timeout } = options
  if (typeof force !== 'boolean') throw configError('stop(): force must be a boolean')
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout >= 0 && timeout <= 2147483)) {
    throw configError('stop(): timeout must be a number of seconds in [0, 2147483]')
  }
  return { force, timeout }
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
  #datagrams
  /** `reload({ tls })` replaced the generated certificate. */
  #ownCerts = false

  constructor (options) {
    if (options == null) options = {}
    if (typeof options !== 'object') throw configError('options must be an object')
    validateHandlers(options)
    const routes = normaliseRoutes(options.routes)
    const tls = serverTls(options.tls, options.allow0RTT)
    validateOptions(options)
    this.#hostname = options.hostname || '0.0.0.0'
    this.#gens.set(1, { routes, fetch: options.fetch, error: options.error })
    try {
      this.#native = native.createNativeServer({
        port: options.port,
        hostname: options.hostname,
        tls,
        maxRequestBodySize: options.maxRequestBodySize,
        idleTimeout: options.idleTimeout,
        maxConnections: options.maxConnections,
        maxConcurrentStreams: options.maxConcurrentStreams,
        maxHeaderListSize: options.maxHeaderListSize,
        reusePort: options.reusePort,
        routes: nativeRoutes(routes),
        hasFallback: typeof options.fetch === 'function',
        quicDatagram: typeof options.quicDatagram === 'function',
        qlogDir: options.qlogDir ?? undefined
      }, (...cells) => this.#onBatch(cells), this.#onAbort.bind(this), this.#onDatagrams.bind(this))
    } catch (e) {
      throw liftError(e)
    }
    closeOnExit(this.#native)
    this.#datagrams = new DatagramDispatcher(this.#native, this, options.quicDatagram)
    this.#wt = this.#native.wt()
    this.#respondBatch = this.#native.respondBatchFn()
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
  get certificatePem () { return this.#ownCerts ? undefined : (this.#native.certificatePem ?? undefined) }

  /** `Alt-Svc` value announcing this server: `h3=":PORT"; ma=86400` (see altSvcHeader). */
  get altSvc () { return altSvcHeader(this) }

  /** The open QUIC connections, with quinn's figures (RTT, congestion window, losses, bytes). */
  connections () { return this.#native.connections() }

  /** The verified client certificate of the connection carrying `req` (mutual TLS), or null. */
  peerCertificate (req) {
    const id = requestId(req)
    return id === undefined ? null : peerCertificateOf(this.#native.peerCertificate(id))
  }

  /** Whether `req` arrived in 0-RTT early data (`allow0RTT`): it may be a replay. */
  isEarlyData (req) {
    const id = requestId(req)
    return id !== undefined && this.#native.isEarlyData(id)
  }

  get pendingRequests () { return this.#native.stats().requestsActive }

  getStats () { return this.#native.stats() }

  requestIP (req) {
    const id = requestId(req)
    if (id === undefined) return null
    return this.#native.requestIp(id) ?? null
  }

  ref () { this.#keepAlive?.ref?.() }
  unref () { this.#keepAlive?.unref?.() }

  reload (options = {}) {
    if (this.#stopped) throw configError('server is stopped', 'ERR_H3_NOT_RUNNING')
    validateHandlers(options)
    if (options.tls !== undefined) {
      // First, so bad certificates throw before anything else changes.
      try {
        this.#native.reloadTls(reloadCerts(options.tls))
        this.#ownCerts = true
      } catch (e) {
        throw liftError(e)
      }
      if (Object.keys(options).every((k) => k === 'tls')) return
    }
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

  /**
   * Graceful stop, forced stop, or graceful with a deadline: `stop()`, `stop(true)`,
   * `stop({ force, timeout })` (`timeout` in seconds, after which the stop is forced).
   */
  stop (options = false) {
    const { force, timeout } = stopOptions(options)
    if (!this.#stopped) {
      this.#stopped = this.#native.stop(force).catch(throwLifted).finally(() => {
        forget(this.#native)
        clearInterval(this.#keepAlive)
        for (const [id, st] of this.#inflight) this.#onAbort(id, st)
      })
    } else if (force) {
      // A forced stop during a graceful one closes the remaining connections now.
      return this.#native.stop(true).then(() => this.#stopped)
    }
    if (!force && timeout !== undefined) this.#forceAfter(timeout)
    return this.#stopped
  }

  /** The deadline of a graceful stop: past it, the remaining connections are closed. */
  #forceAfter (seconds) {
    const timer = setTimeout(() => { this.#native.stop(true).catch(noop) }, seconds * 1000)
    this.#stopped.then(() => clearTimeout(timer), () => clearTimeout(timer))
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
      try { st.controller.abort(clientGoneError()) } catch {}
    }
  }

  /**
   * Requests arrive in batches, as the call's arguments: REQUEST_FIELDS per request, its
   * headers and params spread behind their lengths (lib/batch.js).
   */
  #onBatch (cells) {
    for (let i = 0; i < cells.length;) {
      let j = i + REQUEST_FIXED
      const nHeaders = cells[j++]
      const pairs = []
      for (let end = j + nHeaders; j < end; j += 2) pairs.push([cells[j], cells[j + 1]])
      const nParams = cells[j++]
      const params = nParams ? cells.slice(j, j + nParams) : null
      this.#onRequest(cells[i + R_ID], cells[i + R_METHOD], cells[i + R_URL], pairs, cells[i + R_BODY], cells[i + R_ROUTE], params, cells[i + R_GEN], cells[i + R_MODE], cells[i + R_CONN], cells[i + R_STREAM])
      i = j + nParams
    }
  }

  /** Datagrams arrive in batches too: DATAGRAM_FIELDS per datagram (lib/batch.js). */
  #onDatagrams (cells) {
    this.#datagrams.onBatch(cells)
  }

  /** The request is answered or gone: forget its JS-side state. */
  #done (id) {
    this.#inflight.delete(id)
    this.#datagrams.forget(id)
  }

  /**
   * Complete responses are queued and handed to Rust once per tick, in one call whose arguments
   * are, per response, `id, status, body, headers.length, ...headers` (src/napi/answer_batch.rs).
   */
  #respond (id, status, headers, body) {
    // A head too long to spread goes alone, as an array (guarded like #flush: a throw here
    // would reject the handler's promise chain instead of answering).
    if (headers.length > MAX_RESPOND_ARGS / 2) {
      try { this.#native.respond(id, status, headers, body) } catch {}
      return
    }
    const q = this.#outbox
    if (q.length === 0) queueMicrotask(this.#flush)
    q.push(id, status, body, headers.length)
    for (let i = 0; i < headers.length; i++) q.push(headers[i])
    // Engines bound a call's argument count; a huge tick goes out in several calls.
    if (q.length >= MAX_RESPOND_ARGS) this.#flush()
  }

  #outbox = []
  #respondBatch = null
  #respondFn = (id, status, headers, body) => this.#respond(id, status, headers, body)
  #flush = () => {
    const q = this.#outbox
    if (q.length === 0) return
    this.#outbox = []
    // Rows are checked one by one natively (a bad one is answered 500); this only guards a
    // native side already torn down.
    try { this.#respondBatch(...q) } catch {}
  }

  #onRequest (id, method, url, pairs, body, routeIdx, params, gen, bodyMode, connId, streamId) {
    try {
      const g = this.#gens.get(gen) || this.#gens.get(this.#gen)
      const route = routeIdx >= 0 ? g.routes[routeIdx] : undefined
      if (bodyMode === SESSION) return this.#onSession(id, url, pairs, params, route, streamId)
      const st = { aborted: false, controller: null }
      this.#inflight.set(id, st)
      let trailers
      if (bodyMode === STREAMING && (method === 'GET' || method === 'HEAD')) {
        // No body to stream (WHATWG forbids one here); whatever the peer sends is refused.
        trailers = Promise.resolve(new Headers())
      } else if (bodyMode === STREAMING) {
        const t = this.#streamedBody(id)
        body = t.stream
        trailers = t.trailers
      }
      const req = serverRequest(id, method, url, pairs, body, trailers, params, st)
      if (route && route.h3Datagram) this.#datagrams.register(id, route, req)
      this.#handle(id, req, route, g)
    } catch (e) {
      this.#done(id)
      this.#respond(id, 500, [], 'Internal Server Error')
    }
  }

  /** A streamed request body: pulled from Rust as the handler reads it. */
  #streamedBody (id) {
    return pulledBody(() => this.#native.readBody(id), {
      ready: () => this.#native.readBodyReady(id),
      // Abort the signal before the body errors, so a handler catching the error sees both.
      mapError: (err) => {
        if (err.code === 'ERR_H3_STREAM_RESET' || err.code === 'ERR_H3_CONNECTION_LOST') this.#onAbort(id)
        return err
      },
      onCancel: () => this.#native.cancelBody(id)
    })
  }

  /** Calls the route's handler (or the fallback) and sends what it returns. */
  #handle (id, req, route, g) {
    const handler = route ? (route.fetch || (route.static && (() => route.static.clone()))) : g.fetch
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
  }

  /** A WebTransport session request on a route with a `webtransport` handler. */
  #onSession (id, url, pairs, params, route, streamId) {
    const nat = this.#native
    const session = new WebTransportSession(this.#wt, id, {
      request: sessionRequest(id, url, pairs, params),
      sessionId: BigInt(streamId),
      onAccept: (headers) => nat.startResponse(id, 200, headers),
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
    // A string or bytes body the runtime hands over as is: no ReadableStream read at all.
    const atHand = res[kTrailers] === undefined ? bodyAtHand(res) : undefined
    const body = atHand === undefined ? res.body : null
    if (body === null) {
      this.#done(id)
      this.#respond(id, res.status, headers, atHand === undefined ? null : asBytes(atHand))
      return
    }
    pumpBody(this.#native, this.#respondFn, id, res.status, headers, body.getReader(), res[kTrailers])
      .catch(noop)
      .finally(() => this.#done(id))
  }
}

function createH3Server (options) {
  return new H3Server(options)
}

module.exports = { H3Server, createH3Server }
