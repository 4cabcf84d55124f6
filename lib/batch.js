'use strict'
// The layout of the flat batches Rust hands to JS (src: request_cells / datagram_cells). Defined
// once here by field name; the readers use the derived offsets (plain indexed reads, constant
// offsets). The native side exports the same lists (requestBatchFields() / datagramBatchFields())
// so that a test can check the two sides agree.

/**
 * One request head, as arguments of the batch call: bodyMode is 0 buffered, 1 streaming, 2
 * WebTransport session; routeIndex -1 when no route matched; body null or a Buffer. The last
 * two fields are lists, each spread as its length then its strings: headers (flat name/value)
 * and params (flat name/value, length 0 when the route has none).
 */
const REQUEST_FIELDS = Object.freeze(['requestId', 'method', 'url', 'body', 'routeIndex', 'generation', 'bodyMode', 'connectionId', 'streamId', 'headers', 'params'])

/**
 * One received HTTP or QUIC datagram, as numbers in the batch's Float64Array (lib/datagram.js):
 * requestId and streamId are -1 for a bare QUIC datagram; payload is the payload's byte length.
 */
const DATAGRAM_FIELDS = Object.freeze(['connectionId', 'requestId', 'streamId', 'payload'])

/** { fieldName: offset within one item } */
function offsets (fields) {
  const o = {}
  fields.forEach((name, i) => { o[name] = i })
  return Object.freeze(o)
}

const REQUEST = offsets(REQUEST_FIELDS)
const DATAGRAM = offsets(DATAGRAM_FIELDS)

module.exports = {
  REQUEST_FIELDS,
  DATAGRAM_FIELDS,
  /** Offsets of the request fields within one request's cells. */
  REQUEST,
  /** Offsets of the datagram fields within one datagram's cells. */
  DATAGRAM,
  /** Cells before a request's lists (headers, then params). */
  REQUEST_FIXED: REQUEST_FIELDS.indexOf('headers'),
  /** Cells per datagram. */
  DATAGRAM_STRIDE: DATAGRAM_FIELDS.length
}
