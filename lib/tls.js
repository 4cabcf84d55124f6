'use strict'
// TLS options as Rust takes them (certificates by SNI, mutual TLS, key logs), and the Alt-Svc
// header that points browsers from a TCP origin to the HTTP/3 one.

const { configError } = require('./errors.js')
const { toPem } = require('./convert.js')

const TLS_SHAPE = 'tls must be "self-signed", { cert, key } or an array of { cert, key, serverName } (PEM text, PEM bytes or file paths)'

/** `SSLKEYLOGFILE` as this runtime sees it (Rust cannot: Bun and workers keep their own env). */
function keyLogFile () {
  const f = typeof process !== 'undefined' ? process.env.SSLKEYLOGFILE : undefined
  return f ? String(f) : undefined
}

/** One `{ cert, key, serverName? }`; `where` names it in errors. */
function certEntry (e, where) {
  if (e == null || typeof e !== 'object' || e.cert == null || e.key == null) throw configError(`${where}: ${TLS_SHAPE}`, 'ERR_H3_TLS')
  if (e.serverName != null && (typeof e.serverName !== 'string' || e.serverName === '')) {
    throw configError(`${where}.serverName must be a non-empty string`, 'ERR_H3_TLS')
  }
  return { cert: toPem(e.cert, 'cert'), key: toPem(e.key, 'key'), serverName: e.serverName ?? undefined }
}

/** The certificate entries of a `tls` value: one object or an array of them. */
function certEntries (tls) {
  if (Array.isArray(tls)) {
    if (tls.length === 0) throw configError('tls is an empty array', 'ERR_H3_TLS')
    return tls.map((e, i) => certEntry(e, `tls[${i}]`))
  }
  return [certEntry(tls, 'tls')]
}

/**
 * Mutual TLS settings: `requestCert: true` asks clients for a certificate that `ca` vouches
 * for; `rejectUnauthorized: false` lets clients without one in. Read from the object form, or
 * from the array's default entry (the one without serverName, else the first).
 */
function clientAuth (tls) {
  const src = Array.isArray(tls) ? (tls.find((e) => e && e.serverName == null) ?? tls[0]) : tls
  if (!src || !src.requestCert) return {}
  if (src.ca == null) throw configError('tls.requestCert needs tls.ca (the CA client certificates must chain to)', 'ERR_H3_TLS')
  if (src.rejectUnauthorized != null && typeof src.rejectUnauthorized !== 'boolean') throw configError('tls.rejectUnauthorized must be a boolean', 'ERR_H3_TLS')
  const ca = (Array.isArray(src.ca) ? src.ca : [src.ca]).map((c) => toPem(c, 'ca'))
  return { ca, rejectUnauthorized: src.rejectUnauthorized }
}

/** `allow0RTT` (server and client): accept / send early data on resumed sessions. */
function allow0RTT (v) {
  if (v != null && typeof v !== 'boolean') throw configError('allow0RTT must be a boolean')
  return v === true
}

/**
 * The server's `tls` option as Rust takes it (no certificates: a self-signed one), with the
 * server option `allow0RTT`.
 */
function serverTls (tls, early) {
  const base = { keyLogFile: keyLogFile(), allow0RTT: allow0RTT(early) }
  if (tls == null || tls === 'self-signed') return { certs: [], ...base }
  if (typeof tls !== 'object') throw configError(TLS_SHAPE, 'ERR_H3_TLS')
  return { certs: certEntries(tls), ...clientAuth(tls), ...base }
}

/** `reload({ tls })`: certificates only (mutual TLS settings are fixed at start). */
function reloadCerts (tls) {
  if (tls == null || typeof tls !== 'object') throw configError(`reload: ${TLS_SHAPE}`, 'ERR_H3_TLS')
  return certEntries(tls)
}

/** Client-side extras of `tls`: SNI name override, client certificate, key log. */
function clientTlsExtras (tls) {
  if (tls.serverName != null && (typeof tls.serverName !== 'string' || tls.serverName === '')) {
    throw configError('tls.serverName must be a non-empty string')
  }
  if ((tls.cert == null) !== (tls.key == null)) throw configError('a client certificate needs both tls.cert and tls.key', 'ERR_H3_TLS')
  return {
    serverName: tls.serverName ?? undefined,
    cert: tls.cert == null ? undefined : toPem(tls.cert, 'cert'),
    key: tls.key == null ? undefined : toPem(tls.key, 'key'),
    keyLogFile: keyLogFile()
  }
}

/** Seconds browsers keep an Alt-Svc entry unless told otherwise (RFC 7838 §3.1 default). */
const ALT_SVC_MAX_AGE = 86400

/**
 * The Alt-Svc value (RFC 7838 §3) announcing `server` as HTTP/3 on the same host:
 * `h3=":PORT"; ma=SECONDS`. Send it on the TCP (HTTP/1.1 or HTTP/2) responses of the origin.
 */
function altSvcHeader (server, options = {}) {
  const port = typeof server === 'number' ? server : server?.port
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw configError('altSvcHeader: needs a listening server or a port number')
  if (options == null || typeof options !== 'object') throw configError('altSvcHeader: options must be an object')
  const { maxAge = ALT_SVC_MAX_AGE } = options
  if (!Number.isInteger(maxAge) || maxAge < 0) throw configError('altSvcHeader: maxAge must be a whole number of seconds')
  return `h3=":${port}"; ma=${maxAge}`
}

/**
 * A verified client certificate chain (DER buffers, leaf first) as `server.peerCertificate`
 * returns it: the leaf's DER, PEM, subject, issuer and SHA-256 fingerprint (via
 * `node:crypto`'s X509Certificate, which Node and Bun both have), plus the whole chain.
 */
function peerCertificateOf (chain) {
  if (!chain || chain.length === 0) return null
  const raw = chain[0]
  const { X509Certificate } = require('node:crypto')
  const x509 = new X509Certificate(raw)
  return {
    raw,
    pem: x509.toString(),
    subject: x509.subject,
    issuer: x509.issuer,
    fingerprint256: x509.fingerprint256,
    validTo: x509.validTo,
    chain
  }
}

module.exports = { serverTls, reloadCerts, clientTlsExtras, allow0RTT, altSvcHeader, peerCertificateOf }
