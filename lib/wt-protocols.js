'use strict'
// WebTransport application protocol negotiation (draft-ietf-webtrans-http3-15 §3.4, the W3C
// `protocols` option and `protocol` attribute): the client offers `WT-Available-Protocols`, a
// Structured Field List of Strings (RFC 9651 §3.1, §3.3.3) in order of preference; the server
// answers with the one it picked in `WT-Protocol`, a String. Both are plain headers of the
// CONNECT request and its 2xx response, so draft-02 peers (Chromium sends the offer) carry them too.

const { configError } = require('./errors.js')

const OFFER_HEADER = 'wt-available-protocols'
const ANSWER_HEADER = 'wt-protocol'

/** RFC 9651 §3.3.3: a String holds printable ASCII (0x20-0x7E) only. */
function isSfStringValue (s) {
  return typeof s === 'string' && /^[\x20-\x7e]*$/.test(s)
}

/** RFC 9651 §4.1.6: quoted, with `"` and `\` escaped. */
function serializeString (s) {
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"'
}

/**
 * The client's `protocols` option, checked as the W3C constructor does: an array of non-empty,
 * distinct Strings. Returns the header value to send, or null for none.
 */
function offerHeader (protocols) {
  if (protocols == null) return null
  if (!Array.isArray(protocols)) throw configError('webtransport: protocols must be an array of strings')
  const seen = new Set()
  for (const p of protocols) {
    if (!isSfStringValue(p) || p === '') throw configError(`webtransport: protocol ${JSON.stringify(p)} is not a non-empty printable ASCII string`)
    if (seen.has(p)) throw configError(`webtransport: protocol ${JSON.stringify(p)} is offered twice`)
    seen.add(p)
  }
  return protocols.length ? protocols.map(serializeString).join(', ') : null
}

/**
 * Parses a String (RFC 9651 §4.2.5) at `at`; returns [value, next index] or null. Parameters
 * after it (`;key=value`) are skipped: the drafts give them no meaning here.
 */
function parseString (text, at) {
  if (text[at] !== '"') return null
  let out = ''
  for (let i = at + 1; i < text.length; i++) {
    const c = text[i]
    if (c === '\\') {
      const n = text[++i]
      if (n !== '"' && n !== '\\') return null
      out += n
    } else if (c === '"') {
      let j = i + 1
      while (text[j] === ';') { // parameters: key[=bare item], skipped without judging them
        j++
        while (j < text.length && text[j] !== ';' && text[j] !== ',') j++
      }
      return [out, j]
    } else if (c < ' ' || c > '~') {
      return null
    } else {
      out += c
    }
  }
  return null
}

/**
 * The protocols a `WT-Available-Protocols` value offers, in order; [] when it is absent or not a
 * List of Strings (the draft: a malformed field is ignored).
 */
function parseOffer (value) {
  if (typeof value !== 'string' || value.trim() === '') return []
  const out = []
  let i = 0
  const skipSpace = () => { while (value[i] === ' ' || value[i] === '\t') i++ }
  skipSpace()
  while (i < value.length) {
    const item = parseString(value, i)
    if (!item) return []
    out.push(item[0])
    i = item[1]
    skipSpace()
    if (i >= value.length) break
    if (value[i] !== ',') return []
    i++
    skipSpace()
    if (i >= value.length) return [] // a trailing comma
  }
  return out
}

/** The protocol a `WT-Protocol` value names, or null when absent or not a single String. */
function parseAnswer (value) {
  if (typeof value !== 'string') return null
  const list = parseOffer(value)
  return list.length === 1 ? list[0] : null
}

module.exports = { OFFER_HEADER, ANSWER_HEADER, offerHeader, parseOffer, parseAnswer, serializeString }
