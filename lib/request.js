'use strict'
// Server requests: the WHATWG Request a handler gets for a native request head.

const { clientGoneError } = require('./errors.js')
const { routeParams } = require('./routes.js')

const kId = Symbol('napi-h3.requestId')
const kState = Symbol('napi-h3.requestState')

function lazySignal () {
  const st = this[kState]
  if (!st.controller) {
    st.controller = new AbortController()
    if (st.aborted) st.controller.abort(clientGoneError())
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

/**
 * The Request for request `id`. `st` is its JS-side state ({ aborted, controller }): `signal`
 * reads it. `trailers` (a promise of Headers) is set for streamed bodies only.
 */
function serverRequest (id, method, url, pairs, body, trailers, params, st) {
  const req = new Request(url, requestInit(method, pairs, body))
  req[kId] = id
  if (trailers) req.trailers = trailers
  req[kState] = st
  // An AbortController per request is the most expensive part of a Request in Node, so
  // `signal` is created on first access (an own getter shadowing Request.prototype.signal).
  Object.defineProperty(req, 'signal', signalProperty)
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
  return req && req[kId]
}

module.exports = { serverRequest, sessionRequest, requestId }
