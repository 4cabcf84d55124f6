'use strict'
// Conversions between JS values and the shapes the native side takes: bytes, PEM, flat header
// lists ([name, value, name, value, ...]).

const { configError } = require('./errors.js')

const noop = () => {}

/** Bytes as a Buffer (sharing memory, no copy) or the string itself; TypeError otherwise. */
function asBytes (chunk) {
  if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  if (ArrayBuffer.isView(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  if (chunk instanceof ArrayBuffer) return Buffer.from(chunk)
  throw new TypeError('data must be bytes (Uint8Array, ArrayBuffer, any ArrayBufferView) or a string')
}

/** `asBytes`, with strings encoded too (for natives that take only a Buffer). */
function toBuffer (chunk) {
  return typeof chunk === 'string' ? Buffer.from(chunk) : asBytes(chunk)
}

/**
 * `buf` when it has room for `need` more bytes after its first `used`, else a Buffer at least
 * twice as large holding those `used` bytes (for packs that grow as they fill).
 */
function withRoom (buf, used, need) {
  if (used + need <= buf.length) return buf
  const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, used + need))
  buf.copy(bigger, 0, 0, used)
  return bigger
}

/** A Buffer-from-Rust as a plain Uint8Array view (no copy). */
function asUint8 (v) {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
}

function toPem (v, what) {
  if (typeof v === 'string') return v
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  if (v instanceof ArrayBuffer) return Buffer.from(v)
  throw configError(`tls.${what} must be PEM text, PEM bytes or a file path`, 'ERR_H3_TLS')
}

/** Headers (or any iterable of pairs) as the flat list Rust takes. */
function flatHeaders (headers) {
  const out = []
  for (const [k, v] of headers) out.push(k, v)
  return out
}

/**
 * A flat list from Rust as [[name, value], ...]: a HeadersInit that `new Request()` and
 * `new Headers()` take directly (appending each pair, so repeated names are kept).
 */
function headerPairs (flat) {
  const pairs = []
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]])
  return pairs
}

/** The value of header `name` (lower-case) in a flat list from Rust, as Headers.get gives it. */
function flatGet (flat, name) {
  let out = null
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i] === name) out = out === null ? flat[i + 1] : `${out}, ${flat[i + 1]}`
  }
  return out
}

/** A flat list from Rust as Headers. */
function headersFromFlat (flat) {
  return new Headers(headerPairs(flat))
}

module.exports = { noop, asBytes, toBuffer, withRoom, asUint8, toPem, flatHeaders, headerPairs, headersFromFlat, flatGet }
