'use strict'
// Route definitions: validation of both route forms, the descriptors Rust matches against, and
// the params Rust hands back with a matched request.

const { configError } = require('./errors.js')
const { flatHeaders } = require('./convert.js')

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']
const HANDLER_KEYS = ['fetch', 'h3Datagram', 'webtransport']

function routeError (message) {
  return configError(message, 'ERR_H3_ROUTE')
}

/** One entry of the array form: { method, pattern, fetch | h3Datagram | webtransport | response, mode }. */
function arrayRoute (r) {
  if (!r || typeof r !== 'object') throw routeError('each route must be an object { method, pattern, fetch }')
  if (typeof r.pattern !== 'string' || !r.pattern.startsWith('/')) {
    throw routeError(`route pattern must be a string starting with "/", got ${JSON.stringify(r.pattern)}`)
  }
  const method = typeof r.method === 'string' ? r.method.toUpperCase() : '*'
  if (!r.fetch && !r.h3Datagram && !r.webtransport && !(r.response instanceof Response)) {
    throw routeError(`route ${method} ${r.pattern} needs a fetch, h3Datagram or webtransport handler`)
  }
  for (const k of HANDLER_KEYS) {
    if (r[k] != null && typeof r[k] !== 'function') throw routeError(`route ${method} ${r.pattern}: ${k} must be a function`)
  }
  if (r.webtransport && method !== '*' && method !== 'CONNECT') {
    throw routeError(`route ${method} ${r.pattern}: a webtransport route must use method "*" or "CONNECT"`)
  }
  if (r.mode != null && r.mode !== 'buffered' && r.mode !== 'streaming') {
    throw routeError(`route ${method} ${r.pattern}: mode must be "buffered" or "streaming"`)
  }
  return { method, pattern: r.pattern, mode: r.mode || 'buffered', fetch: r.fetch, h3Datagram: r.h3Datagram, webtransport: r.webtransport, static: r.response instanceof Response ? r.response : undefined }
}

/** The entries of one pattern of the object form: a handler, a Response or { METHOD: either }. */
function mapRoutes (pattern, value, list) {
  if (!pattern.startsWith('/')) throw routeError(`route pattern must start with "/", got ${JSON.stringify(pattern)}`)
  if (typeof value === 'function') {
    list.push({ method: '*', pattern, mode: 'buffered', fetch: value })
  } else if (value instanceof Response) {
    list.push({ method: '*', pattern, mode: 'buffered', static: value })
  } else if (value && typeof value === 'object') {
    for (const [m, h] of Object.entries(value)) {
      const method = m.toUpperCase()
      if (!METHODS.includes(method) && method !== '*') throw routeError(`route ${pattern}: unknown method ${m}`)
      if (h instanceof Response) list.push({ method, pattern, mode: 'buffered', static: h })
      else if (typeof h === 'function') list.push({ method, pattern, mode: 'buffered', fetch: h })
      else throw routeError(`route ${method} ${pattern} must be a function or a Response`)
    }
  } else {
    throw routeError(`route ${pattern} must be a handler, a Response or a { METHOD: handler } object`)
  }
}

/**
 * Normalises both route forms into one list:
 *   [{ method, pattern, mode, fetch, h3Datagram, webtransport, static?: Response }]
 */
function normaliseRoutes (routes) {
  if (routes == null) return []
  const list = []
  if (Array.isArray(routes)) {
    for (const r of routes) list.push(arrayRoute(r))
    return list
  }
  if (typeof routes !== 'object') throw routeError('routes must be an array of route definitions or an object map')
  for (const [pattern, value] of Object.entries(routes)) mapRoutes(pattern, value, list)
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

/** Matched params from Rust (flat name/value list, or null) as `req.params`, percent-decoded. */
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

module.exports = { normaliseRoutes, nativeRoutes, validateHandlers, routeParams }
