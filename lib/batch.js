'use strict'
// The layout of the flat batches Rust hands to JS (src: request_cells / datagram_cells). Defined
// once here by field name; the readers use the derived offsets (plain indexed reads, constant
// offsets). The native side exports the same lists (requestBatchFields() / datagramBatchFields())
// so that a test can check the two sides agree.

/**
 * One request head: bodyMode is 0 buffered, 1 streaming, 2 WebTransport session; routeIndex -1
 * when no route matched; params null or a flat name/value list; body null or a Buffer.
 */
const REQUEST_FIELDS = Object.freeze(['requestId', 'method', 'url', 'headers', 'body', 'routeIndex', 'params', 'generation', 'bodyMode', 'connectionId', 'streamId'])

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
  /** Cells per request. */
  REQUEST_STRIDE: REQUEST_FIELDS.length,
  /** Cells per datagram. */
  DATAGRAM_STRIDE: DATAGRAM_FIELDS.length
}
