// Type definitions for napi-h3 — HTTP/3 for Node.js (>= 20) and Bun (>= 1.2).
//
// `Request`, `Response` and `URL` are the runtime's global WHATWG types: they come from
// `lib: ["dom"]`, from `@types/node` or from `@types/bun`, whichever the project uses.

/** HTTP methods accepted as keys of a route's method map (case-insensitive at runtime). */
export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS' | 'CONNECT' | 'TRACE'

/**
 * A request as handlers see it: a WHATWG `Request` plus the route parameters.
 *
 * - `url` is `https://<authority><path>?<query>` (`:authority`, else `Host`, else `localhost`).
 * - Header names are lower-case; pseudo-headers are not included.
 * - `signal` aborts (reason: `DOMException` named `AbortError`) when the connection dies (peer
 *   closed it, idle timeout, forced stop) or the peer stops reading the response stream.
 * - `body` holds the whole request body, read before the handler is called (at most
 *   `maxRequestBodySize` bytes). `GET` and `HEAD` requests never have a body.
 */
export type H3Request = Request & {
  /**
   * Route parameters, decoded with `decodeURIComponent` (left raw if that throws).
   * `/users/:id` gives `{ id }`; a trailing `*` gives `{ "*": "rest/of/path" }`.
   * `{}` for the fallback `fetch` and for routes without parameters.
   */
  params: Record<string, string>
}

/**
 * A request handler. It must return (or resolve to) a `Response`; anything else, a throw or a
 * rejection goes to the server's `error` handler, else the client gets a 500.
 */
export type Handler = (req: H3Request, server: H3Server) => Response | Promise<Response>

/** A key of the method map in the object form of `routes`: a method (any case) or `"*"`. */
export type MethodKey = Method | Lowercase<Method> | '*'

/**
 * The object form of `routes` (like `Bun.serve`). Keys are patterns; a value is
 * - a handler, which answers every method,
 * - a static `Response`, served for every method (from Rust, without calling JS, once its body
 *   has been read),
 * - or a map from method (or `"*"`) to a handler or a static `Response`.
 */
export type RouteMap = Record<string, Handler | Response | Partial<Record<MethodKey, Handler | Response>>>

/**
 * Context of an HTTP datagram (RFC 9297) received for a request stream.
 *
 * **Planned — not yet delivered.** Declared so `RouteDefinition.h3Datagram` can be typed; the
 * server does not call `h3Datagram` handlers yet.
 */
export interface H3DatagramContext {
  /** The request stream the datagram names. */
  readonly streamId: bigint
  /** The quarter stream id carried in the datagram (`streamId / 4`). */
  readonly flowId: bigint
  /** The request that opened the stream. */
  readonly request: Request
  /** Send a datagram back on the same stream. */
  sendReply(data: Uint8Array): void
}

/**
 * A WebTransport session (draft-ietf-webtrans-http3), shaped like the W3C `WebTransport` object.
 *
 * **Planned — not yet delivered.** Declared so `RouteDefinition.webtransport` can be typed; the
 * server does not call `webtransport` handlers yet.
 */
export interface WebTransportSession {
  /** The extended CONNECT request that opened the session. */
  readonly request: Request
  /** The session id (the CONNECT stream id). */
  readonly sessionId: bigint
  /** Datagrams of this session. */
  readonly datagrams: { readonly readable: ReadableStream<Uint8Array>; readonly writable: WritableStream<Uint8Array> }
  /** Bidirectional streams the peer opened. */
  readonly incomingBidirectionalStreams: ReadableStream<{ readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }>
  /** Unidirectional streams the peer opened. */
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>
  /** Resolves when the session is closed. */
  readonly closed: Promise<{ closeCode: number; reason: string }>
  /** Accept the session (a handler that neither accepts nor rejects accepts). */
  accept(): void
  /** Refuse the session with an HTTP status. */
  reject(status?: number): void
  createBidirectionalStream(): Promise<{ readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }>
  createUnidirectionalStream(): Promise<WritableStream<Uint8Array>>
  close(info?: { closeCode?: number; reason?: string }): void
}

/** One route in the array form of `routes`. */
export interface RouteDefinition {
  /**
   * Upper-cased at runtime; any token of letters (`"PROPFIND"` works too) or `"*"` for every
   * method. Default `"*"`. `HEAD` requests fall back to `GET` routes.
   */
  method?: Method | '*' | (string & {})
  /**
   * Path pattern; must start with `/` (else `TypeError` `ERR_H3_ROUTE`). Segments: literals,
   * `:name` (letters, digits, `_`; one segment) and a final `*` (the rest of the path, also empty:
   * `/files/*` matches `/files/`). Two patterns that differ only in parameter names conflict.
   * The query string is ignored for matching.
   */
  pattern: string
  /**
   * How the request body reaches the handler. Default `"buffered"`: read whole (up to
   * `maxRequestBodySize`) before the handler is called.
   * `"streaming"` is accepted but **currently behaves like `"buffered"`** (true streaming bodies
   * are being built).
   */
  mode?: 'buffered' | 'streaming'
  /** The handler. A route needs `fetch`, `response`, `h3Datagram` or `webtransport`. */
  fetch?: Handler
  /**
   * A static response for this route, used when `fetch` is absent. Its body is read once; from
   * then on Rust answers without calling JS. Replace it with `server.reload()`.
   */
  response?: Response
  /**
   * HTTP datagram handler (RFC 9297). **Planned — not yet delivered**: a route with it turns on
   * HTTP datagram support in SETTINGS, but the handler is not called yet.
   */
  h3Datagram?: (payload: Uint8Array, ctx: H3DatagramContext) => void
  /**
   * WebTransport handler. **Planned — not yet delivered**: a route with it turns on extended
   * CONNECT, WebTransport and datagrams in SETTINGS, but the handler is not called yet.
   */
  webtransport?: (session: WebTransportSession) => void | Promise<void>
}

/** TLS material: PEM text, PEM bytes, or a path to a PEM file (a string without `-----BEGIN`). */
export type PemInput = string | Uint8Array | ArrayBuffer

export interface TLSOptions {
  /** Certificate chain, leaf first (PEM). */
  cert: PemInput
  /** Private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC). */
  key: PemInput
}

export interface ServeOptions {
  /**
   * UDP port. Default `4433`. Integer 0..65535; `0` picks a free port (read `server.port`).
   */
  port?: number
  /**
   * Local address to bind: an IPv4/IPv6 address or `"localhost"` (= 127.0.0.1); host names
   * are not resolved. Default `"0.0.0.0"`. `"::"` binds dual stack.
   */
  hostname?: string
  /**
   * Certificate and key, or `"self-signed"`. Default (omitted) is `"self-signed"`: a fresh
   * ECDSA P-256 certificate valid for 13 days for `localhost`, `127.0.0.1`, `::1` and
   * `hostname`, usable with WebTransport `serverCertificateHashes` (see `certificateHash`).
   * TLS 1.3 only, ALPN `h3`. Bad material throws `ERR_H3_TLS`.
   */
  tls?: TLSOptions | 'self-signed'
  /** Routes, as an array of definitions or a `Bun.serve`-style object map. Default none. */
  routes?: RouteDefinition[] | RouteMap
  /**
   * Fallback for requests no route matches. Without it they get `404 Not Found` from Rust.
   */
  fetch?: Handler
  /**
   * Called when a handler throws, rejects or returns something that is not a `Response`.
   * Its `Response` is sent; if it throws too (or is absent) the client gets a plain-text 500.
   */
  error?: (err: unknown) => Response | Promise<Response>
  /**
   * Largest request body in bytes. Default `1048576` (1 MiB). Integer 0..2^53-1. A larger body
   * (declared by `content-length` or counted as it arrives) is answered `413` by Rust; JS is
   * not called and the connection stays usable.
   */
  maxRequestBodySize?: number
  /**
   * Seconds without traffic before a connection is closed (QUIC max_idle_timeout). Default `30`.
   * 0..600, fractions allowed; `0` disables the timeout. Requests in flight on a closed
   * connection see their `signal` abort.
   */
  idleTimeout?: number
  /**
   * Most simultaneous QUIC connections. Default `10000`. Integer 1..4294967295. Newcomers beyond
   * it are refused (counted in `connectionErrors`).
   */
  maxConnections?: number
  /**
   * Most concurrent request streams per connection (QUIC MAX_STREAMS for bidirectional streams).
   * Default `100`. Integer 1..10000. A client that wants more waits for QUIC credit.
   */
  maxConcurrentStreams?: number
  /**
   * Largest request header section in bytes (HTTP/3 SETTINGS_MAX_FIELD_SECTION_SIZE). Default
   * `16384` (16 KiB). Integer 1024..1048576. Larger sections are rejected with `431`; the
   * connection survives.
   */
  maxHeaderListSize?: number
  /**
   * Set `SO_REUSEPORT` so several processes (or workers) can bind the same address and port;
   * on Linux the kernel spreads connections across them. Default `false`. Ignored on Windows.
   */
  reusePort?: boolean
}

/** What `server.reload()` can replace. */
export interface ReloadOptions {
  /** New route table; omitted → the current routes stay. */
  routes?: RouteDefinition[] | RouteMap
  /** New fallback; present with `undefined` → no fallback (unmatched requests get 404). */
  fetch?: Handler
  /** New error handler; present with `undefined` → none. */
  error?: (err: unknown) => Response | Promise<Response>
}

/** Counters returned by `server.getStats()`. All are plain numbers. */
export interface ServerStats {
  /** Connections that completed the QUIC handshake since start. */
  connectionsTotal: number
  /** Connections open now. */
  connectionsActive: number
  /** Requests whose header section was accepted since start. */
  requestsTotal: number
  /** Requests being handled now (reading the body, in JS, or sending the response). */
  requestsActive: number
  /** Milliseconds since the server started. */
  uptimeMs: number
  /** UDP payload bytes received (closed connections plus live ones). */
  bytesReceived: number
  /** UDP payload bytes sent (closed connections plus live ones). */
  bytesSent: number
  /** Datagrams received (stays 0 until datagram delivery ships). */
  datagramsReceived: number
  /** Datagrams sent (stays 0 until datagram delivery ships). */
  datagramsSent: number
  /** Datagrams dropped (stays 0 until datagram delivery ships). */
  datagramsDropped: number
  /** Open WebTransport sessions (stays 0 until WebTransport ships). */
  webtransportSessionsActive: number
  /**
   * Requests refused or lost before reaching JS: malformed or oversized header sections,
   * bodies over `maxRequestBodySize` (413), streams reset by the peer while the body was read.
   */
  requestsRejected: number
  /** Failed handshakes, refused connections (over `maxConnections`) and connections closed with an error code. */
  connectionErrors: number
}

/** The peer address of a request, from `server.requestIP()`. */
export interface SocketAddress {
  /** IP address; IPv4-mapped IPv6 addresses are shown as IPv4. */
  address: string
  port: number
  family: 'IPv4' | 'IPv6'
}

/**
 * A running HTTP/3 server. The UDP socket is bound when the constructor (or `createH3Server`)
 * returns; a running server keeps the process alive until `stop()` or `unref()`.
 */
export declare class H3Server {
  /** Same as `createH3Server(options)`. Throws `H3Error` on bad options, TLS material or bind failure. */
  constructor(options?: ServeOptions)
  /** The bound UDP port (the real one when `port: 0` was given). */
  readonly port: number
  /** The `hostname` option as given (default `"0.0.0.0"`). */
  readonly hostname: string
  /** `https://<host>:<port>/`; `localhost` when bound to `0.0.0.0` or `::`, brackets for IPv6. */
  readonly url: URL
  /**
   * SHA-256 of the leaf certificate (DER), 32 bytes — the value for WebTransport
   * `serverCertificateHashes`. Set for self-signed and supplied certificates.
   */
  readonly certificateHash: Uint8Array
  /** PEM of the generated self-signed certificate; `undefined` when `tls` supplied one. */
  readonly certificatePem: string | undefined
  /** Requests in flight right now (same as `getStats().requestsActive`). */
  readonly pendingRequests: number
  /**
   * Stop the server. Graceful (default): new connections are refused, every connection gets a
   * GOAWAY, in-flight requests finish, then connections close. `force: true` closes every
   * connection now; in-flight requests see their `signal` abort. Resolves when the socket is
   * closed; repeated calls return the same promise, and `stop(true)` during a graceful stop
   * finishes it at once. A graceful stop waits as long as requests keep running.
   */
  stop(force?: boolean): Promise<void>
  /**
   * Replace routes, `fetch` and/or `error` without dropping connections. Requests already
   * dispatched finish with the handlers they were matched against. Throws `ERR_H3_ROUTE` for bad
   * routes and `ERR_H3_NOT_RUNNING` after `stop()`.
   */
  reload(options?: ReloadOptions): void
  /** A snapshot of the server counters. */
  getStats(): ServerStats
  /**
   * The peer address of a request this server is still handling; `null` once the request
   * finished, its connection closed, or for a `Request` that did not come from this server.
   */
  requestIP(req: Request): SocketAddress | null
  /** Keep the process alive while the server runs (the default). */
  ref(): void
  /** Let the process exit even though the server is running. */
  unref(): void
}

/** Stable `code` values of errors thrown by napi-h3. */
export type H3ErrorCode =
  /** Invalid option value or type (`TypeError`). */
  | 'ERR_H3_INVALID_ARG'
  /** Certificate or key missing, unreadable, malformed or not matching. */
  | 'ERR_H3_TLS'
  /** The UDP socket could not be bound (address in use, permission, …). */
  | 'ERR_H3_BIND'
  /** Invalid route definition or pattern (`TypeError`). */
  | 'ERR_H3_ROUTE'
  /** The server was stopped (`reload()` after `stop()`). */
  | 'ERR_H3_NOT_RUNNING'
  /** Internal: the request is finished or unknown. */
  | 'ERR_H3_UNKNOWN_REQUEST'
  /** Internal: a response with an invalid status or header. */
  | 'ERR_H3_INVALID_RESPONSE'
  /** Internal: the peer closed the stream. */
  | 'ERR_H3_STREAM_CLOSED'
  /** An I/O error from the operating system. */
  | 'ERR_H3_IO'
  /** An internal failure (a bug). */
  | 'ERR_H3_INTERNAL'

/** Errors thrown by napi-h3 carry a stable `code`. */
export type H3Error = Error & { code: H3ErrorCode }

/**
 * Create an HTTP/3 server and bind its UDP socket (synchronously, like `Bun.serve`).
 * Throws an `H3Error`: `TypeError` with `ERR_H3_INVALID_ARG` / `ERR_H3_ROUTE` for bad options,
 * `ERR_H3_TLS` for bad certificates, `Error` with `ERR_H3_BIND` when the port is taken.
 */
export declare function createH3Server(options?: ServeOptions): H3Server
