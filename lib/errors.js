'use strict'
// Every error JS code creates or lifts: native "[ERR_H3_X] message" errors get a `code`, bad
// input is a TypeError, WebTransport failures are W3C WebTransportErrors.

/** Codes whose errors are TypeErrors (a bad shape or value); the rest are plain Errors. */
function isTypeCode (code) {
  return code === 'ERR_H3_INVALID_ARG' || code === 'ERR_H3_ROUTE'
}

/** Errors from Rust arrive as "[ERR_H3_X] message"; give them a `code` (and TypeError for bad input). */
function liftError (e) {
  if (!e || typeof e.message !== 'string') return e
  const m = /^\[(ERR_H3_[A-Z_]+)\] ?([\s\S]*)$/.exec(e.message)
  if (!m) return e
  const [, code, message] = m
  const err = isTypeCode(code) ? new TypeError(message) : new Error(message)
  err.code = code
  return err
}

/** `liftError` for promise chains: `.catch(throwLifted)`. */
function throwLifted (e) {
  throw liftError(e)
}

function configError (message, code = 'ERR_H3_INVALID_ARG') {
  // Bad shapes and values are TypeErrors; TLS material and state problems are plain Errors.
  const err = isTypeCode(code) ? new TypeError(message) : new Error(message)
  err.code = code
  return err
}

/** Why a server request's `signal` aborts when the client goes away (reset, lost, stopped). */
function clientGoneError () {
  return new DOMException('The client went away', 'AbortError')
}

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

/** W3C WebTransportError: `source` is "stream" or "session"; `streamErrorCode` the peer's code. */
class WebTransportError extends Error {
  constructor (message = '', init = {}) {
    super(message)
    this.name = 'WebTransportError'
    this.source = init.source === 'session' ? 'session' : 'stream'
    this.streamErrorCode = init.streamErrorCode ?? null
  }
}

module.exports = { liftError, throwLifted, configError, clientGoneError, abortError, timeoutError, WebTransportError }
