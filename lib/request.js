'use strict'
// Server requests: the WHATWG Request a handler gets for a native request head.

const { clientGoneError } = require('./errors.js')
const { routeParams } = require('./routes.js')

const kId = Symbol('napi-h3.requestId')
const kState = Symbol('napi-h3.requestState')

/**
 * The signal of a request whose JS-side state is `st` ({ aborted, controller }). An
 * AbortController per request is the most expensive part of a Request in Node, so it is made on
 * first access.
 */
function signalOf (st) {
  if (!st.controller) {
    st.controller = new AbortController()
    if (st.aborted) st.controller.abort(clientGoneError())
  }
  return st.controller.signal
}
function lazySignal () { return signalOf(this[kState]) }
const signalProperty = { get: lazySignal, configurable: true, enumerable: false }

/**
 * The Request a handler gets where it is built at once (Node 24, Bun, Deno): a subclass whose
 * id and state are private fields and whose `signal` is a prototype getter. Per-instance
 * `Object.defineProperty` of `signal` and symbol-keyed properties cost ~2 µs a request in
 * Node 24 (V8 reshapes the object; `ObjectDefineProperty` was 7.5 % of its JS thread).
 * `instanceof Request`, `new Request(req)`, `req.clone()` and `fetch(req)` are the runtime's
 * own; the class is named Request, as it prints.
 */
const BuiltRequest = class Request extends globalThis.Request {
  #id
  #state
  constructor (id, url, init, st, params) {
    super(url, init)
    this.#id = id
    this.#state = st
    this.params = params
  }

  get signal () { return signalOf(this.#state) }

  /** The native request id of a BuiltRequest, else undefined. */
  static idOf (req) { return #id in req ? req.#id : undefined }
}

function requestInit (method, pairs, body) {
  const init = { method, headers: pairs }
  if (body && method !== 'GET' && method !== 'HEAD') {
    init.body = body
    init.duplex = 'half'
  }
  return init
}

/** Request head fields a handler may read without the whole undici Request being built. */
const kHead = Symbol('napi-h3.requestHead')
const kReal = Symbol('napi-h3.request')
const kHref = Symbol('napi-h3.href')

/** Methods undici keeps as given (no case folding, not forbidden). */
const PLAIN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])

/** A value undici's Headers takes as is: a ByteString (no code point above U+00FF). */
const NOT_BYTES = /[^\x00-\xff]/ // eslint-disable-line no-control-regex

/** The undici Request behind a deferred one, built on first need. */
function realRequest (req) {
  let real = req[kReal]
  if (real === undefined) {
    const h = req[kHead]
    const init = requestInit(h.method, h.pairs, h.body)
    // Built now, it still follows the client going away (fetch(req) to an upstream aborts).
    init.signal = req.signal
    real = req[kReal] = new Request(h.url, init)
    req[kHead] = null
  }
  return real
}

/**
 * Node 20 and 22 (undici 6) keep a Request's state under symbol-keyed properties; building one
 * costs 3.5–7.5 µs (an AbortController, webidl conversions, a URL parse, a header list). There a
 * handler gets a deferred Request instead: an object whose prototype chain holds
 * Request.prototype (so `instanceof Request` holds and every method and getter is undici's own)
 * and whose undici state properties build the real Request on first read. `method`, `url` and
 * `signal` are answered without building it. Where the state is private (undici 7, Node 24) or
 * elsewhere (Bun, Deno), or the self-check below fails, requests are built at once.
 */
const deferredProto = (() => {
  let undiciKeys
  try {
    undiciKeys = Object.getOwnPropertySymbols(new Request('https://probe.invalid/'))
  } catch {
    return null
  }
  if (!undiciKeys.some((s) => s.description === 'state')) return null
  const props = {
    method: { get () { return this[kHead] ? this[kHead].method : this[kReal].method }, configurable: true },
    url: { get () { return this[kHref] ?? (this[kHref] = this[kHead] ? new URL(this[kHead].url).href : this[kReal].url) }, configurable: true },
    signal: signalProperty
  }
  for (const k of undiciKeys) {
    props[k] = {
      get () { return realRequest(this)[k] },
      set (v) { realRequest(this)[k] = v },
      configurable: true
    }
  }
  const proto = Object.create(Request.prototype, props)
  return selfCheck(proto) ? proto : null
})()

/** The deferred Request works with this undici: read, rebuilt, cloned, with a body. */
function selfCheck (proto) {
  try {
    const st = { aborted: false, controller: null }
    const mk = () => deferred(proto, 'POST', 'https://a.invalid:8443/p?q', [['x-a', '1']], Buffer.from('body'), st)
    const req = mk()
    if (!(req instanceof Request) || req.method !== 'POST' || req.url !== 'https://a.invalid:8443/p?q') return false
    const copy = new Request(mk())
    if (copy.headers.get('x-a') !== '1' || copy.method !== 'POST' || !copy.body) return false
    const c = mk().clone()
    return c.headers.get('x-a') === '1' && req.headers.get('x-a') === '1' && req.signal instanceof AbortSignal
  } catch {
    return false
  }
}

function deferred (proto, method, url, pairs, body, st) {
  const req = Object.create(proto)
  req[kHead] = { method, url, pairs, body }
  req[kState] = st
  return req
}

/** Whether undici would take this head as is, so building it later cannot throw. */
function deferrable (method, url, pairs) {
  if (!PLAIN_METHODS.has(method) || !URL.canParse(url)) return false
  for (let i = 0; i < pairs.length; i++) if (NOT_BYTES.test(pairs[i][1])) return false
  return true
}

/**
 * The Request for request `id`. `st` is its JS-side state ({ aborted, controller }): `signal`
 * reads it. `trailers` (a promise of Headers) is set for streamed bodies only.
 */
function serverRequest (id, method, url, pairs, body, trailers, params, st) {
  if (deferredProto === null || !deferrable(method, url, pairs)) {
    const req = new BuiltRequest(id, url, requestInit(method, pairs, body), st, routeParams(params))
    if (trailers) req.trailers = trailers
    return req
  }
  const req = deferred(deferredProto, method, url, pairs, body, st)
  req[kId] = id
  if (trailers) req.trailers = trailers
  req.params = routeParams(params)
  return req
}

/** The Request of a WebTransport session (extended CONNECT). */
function sessionRequest (id, url, pairs, params) {
  const req = new Request(url, { headers: pairs })
  // WHATWG Request cannot carry CONNECT; the session's request says what it was.
  Object.defineProperty(req, 'method', { value: 'CONNECT', enumerable: true })
  req[kId] = id
  req.params = routeParams(params)
  return req
}

/** The native request id of a Request made here, or undefined. */
function requestId (req) {
  if (req === null || typeof req !== 'object') return undefined
  return BuiltRequest.idOf(req) ?? req[kId]
}

module.exports = { serverRequest, sessionRequest, requestId }
