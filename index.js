'use strict'
// napi-h3 public entry: re-exports only. Native request heads become WHATWG `Request`s and
// `Response`s go back as native calls in lib/ (one file per concern); routing, limits, TLS and
// the protocol live in Rust.

const { createH3Server, H3Server } = require('./lib/server.js')
const { withTrailers, kTrailers } = require('./lib/response.js')
const { h3Fetch, createH3Client, H3Client } = require('./lib/client.js')
const { WebTransportError } = require('./lib/errors.js')
const { altSvcHeader } = require('./lib/tls.js')

module.exports = { createH3Server, H3Server, withTrailers, trailersSymbol: kTrailers, h3Fetch, createH3Client, H3Client, WebTransportError, altSvcHeader }
