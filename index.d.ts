// Type definitions for napi-h3 — HTTP/3 for Node.js (>= 20) and Bun (>= 1.2).
//
// `Request`, `Response`, `Headers`, `URL`, `ReadableStream` and `RequestInit` are the runtime's
// global WHATWG types: they come from `lib: ["dom"]`, from `@types/node` or from `@types/bun`,
// whichever the project uses.

/** HTTP methods accepted as keys of a route's method map (case-insensitive at runtime). */
export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS' | 'CONNECT' | 'TRACE'

// ---------------------------------------------------------------------------------------------
// Server

/**
 * A request as handlers see it: a WHATWG `Request` plus the route parameters (and, on streaming
 * routes, the request trailers).
 *
 * - `url` is `https://<authority><path>?<query>` (`:authority`, else `Host`, else `localhost`).
 * - Header names are lower-case; pseudo-headers are not included.
 * - `body`: on buffered routes (the default) the whole body, read before the handler is called
 *   (at most `maxRequestBodySize` bytes). On `mode: "streaming"` routes a `ReadableStream`
 *   pulled from QUIC as the handler reads it (see {@link H3StreamingRequest}). `GET` and `HEAD`
 *   requests never have a body (`null`).
 * - `signal` aborts (reason: a `DOMException` named `AbortError`) when the client cancels the
 *   request (STOP_SENDING) while the handler runs or while a streamed response is being sent,
 *   when the connection dies (peer closed it, idle timeout, `stop(true)`),
 *   and on streaming routes when the upload is reset or exceeds `maxRequestBodySize`. It is
 *   created on first access; an abort that happened earlier is reflected then.
 */
export type H3Request = Request & {
  /**
   * Route parameters, decoded with `decodeURIComponent` (left raw if that throws).
   * `/users/:id` gives `{ id }`; a trailing `*` gives `{ "*": "rest/of/path" }`.
   * `{}` for the fallback `fetch` and for routes without parameters.
   */
  params: Record<string, string>
  /**
   * Streaming routes only (`undefined` on buffered routes): settles with the request trailers
   * once the body stream has ended — an empty `Headers` when there were none, or when the body
   * errored or was cancelled. It settles only after the body was read to its end or cancelled
   * (for `GET`/`HEAD`, which have no body stream, it is an empty `Headers` at once).
   */
  trailers?: Promise<Headers>
}

/**
 * The request of a `mode: "streaming"` route. The handler is called as soon as the request
 * headers arrive:
 *
 * - `body` is a `ReadableStream<Uint8Array>` pulled from QUIC on demand: each read gets up to
 *   ~512 KiB of what has arrived; once reading has started, one such chunk is kept read ahead and
 *   no more, so a slow handler holds the sender through QUIC flow control (the per-stream window,
 *   4 MiB, plus that chunk bounds what is buffered).
 * - `maxRequestBodySize` applies only if it was set explicitly; going over it errors the stream
 *   with `ERR_H3_BODY_TOO_LARGE` and the client gets `413` (or, once a response has started, a
 *   reset with H3_REQUEST_REJECTED).
 * - A client reset mid-upload errors the stream with `ERR_H3_STREAM_RESET`
 *   (`ERR_H3_CONNECTION_LOST` if the connection died); `signal` aborts before the error is seen.
 * - The handler may respond before reading the body (the rest is refused with STOP_SENDING
 *   H3_NO_ERROR) or stream its response while reading (`new Response(req.body)` echoes).
 */
export type H3StreamingRequest = H3Request & {
  /** Settles with the request trailers once the body ended (empty `Headers` if none, on error or cancel). */
  trailers: Promise<Headers>
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
 *
 * Routes of the object form are always buffered; use the array form for `mode: "streaming"`.
 */
export type RouteMap = Record<string, Handler | Response | Partial<Record<MethodKey, Handler | Response>>>

/**
 * Context of an HTTP datagram (RFC 9297) received for an open request stream of the route.
 */
export interface H3DatagramContext {
  /** The request stream the datagram names. */
  readonly streamId: bigint
  /** The quarter stream id carried in the datagram (`streamId / 4`). */
  readonly flowId: bigint
  /** The request that opened the stream. */
  readonly request: Request
  /** Largest payload `sendReply` accepts right now (prefix excluded), or null. */
  readonly maxDatagramSize: number | null
  /**
   * Send a datagram back on the same stream (the quarter-stream-id prefix is added). Throws
   * `ERR_H3_DATAGRAM_TOO_LARGE` above `maxDatagramSize`; dropped (and counted) when the send
   * buffer is full.
   */
  sendReply(data: Uint8Array | ArrayBuffer | string): void
}

/** Context of a server-level QUIC datagram (`quicDatagram` option). */
export interface QUICDatagramContext {
  /** Server-local stable id of the QUIC connection (8 bytes, big-endian); not the wire CID. */
  readonly connectionId: Uint8Array
  /** `connectionId` as 16 hex digits. */
  readonly connectionIdHex: string
  /** Largest payload `sendReply` accepts right now, or null. */
  readonly maxDatagramSize: number | null
  /** Send a QUIC datagram on the same connection (same errors and dropping as H3 datagrams). */
  sendReply(data: Uint8Array | ArrayBuffer | string): void
}

/** Both halves of a WebTransport bidirectional stream. */
export interface WebTransportBidirectionalStream {
  /** Bytes from the peer; pulled from QUIC on demand. `cancel(new WebTransportError(msg, { streamErrorCode }))` sends STOP_SENDING with that code (else 0). */
  readonly readable: ReadableStream<Uint8Array>
  /** Bytes to the peer; each write resolves once QUIC took the chunk (backpressure). `close()` sends FIN; `abort(new WebTransportError(msg, { streamErrorCode }))` resets with that code (else 0). */
  readonly writable: WritableStream<Uint8Array | ArrayBufferView | ArrayBuffer | string>
}

/** How a session ended cleanly (CLOSE_WEBTRANSPORT_SESSION capsule, or a FIN: code 0). */
export interface WebTransportCloseInfo {
  closeCode: number
  reason: string
}

/**
 * A WebTransport session (draft-ietf-webtrans-http3-02, what browsers speak), shaped like the
 * W3C `WebTransport` object. Servers get one per accepted extended CONNECT on a route with a
 * `webtransport` handler; clients get one from `H3Client.webtransport()`.
 *
 * Server sessions are **accepted** when the handler calls `accept()`, when it first uses the
 * session (datagrams, streams, `ready`, `closed`), or when it returns (an async handler: when its
 * promise settles) — whichever comes first. `reject(status)` before that refuses it; a handler
 * that throws before accepting refuses with 500. So an async handler can `await` an auth check
 * and then `reject(401)`, as long as it does not touch the session first.
 *
 * Limits: 256 incoming streams per direction may wait for JS (more are refused with
 * WEBTRANSPORT_BUFFERED_STREAM_REJECTED); 1024 datagrams may wait for JS (more are dropped and
 * counted in `datagramsDropped`); close reasons are cut to 1024 bytes. Newer-draft sessions
 * (`draft` `"draft13"` / `"draft15"`, when the peer turned flow control on) also give the peer 64
 * streams per direction and 16 MiB of stream data beyond what JS accepted and read (raised with
 * WT_MAX_STREAMS / WT_MAX_DATA); a peer past them has the session reset with
 * WT_FLOW_CONTROL_ERROR (`closed` rejects), and our streams and writes wait for the peer's credit.
 */
/** A WebTransport dialect (see {@link WebTransportSession.draft}). */
export type WebTransportDraft = 'draft02' | 'draft13' | 'draft15'

export interface WebTransportSession {
  /** Server: the extended CONNECT request (`method` is `"CONNECT"`, `params` as for routes). */
  readonly request?: H3Request
  /** Server: the session id (the CONNECT stream id). */
  readonly sessionId?: bigint
  /**
   * Server: the application protocols the client offered (`WT-Available-Protocols`, the W3C
   * `protocols` option), in its order of preference; `[]` when it offered none (or sent a
   * malformed list).
   */
  readonly availableProtocols?: string[]
  /**
   * The negotiated application protocol (`WT-Protocol`): on a server, the one `accept({ protocol })`
   * chose; on a client, the one the server answered with. `""` when none was.
   */
  readonly protocol: string
  /**
   * The WebTransport dialect this session speaks, chosen per session: `"draft02"` (the
   * `sec-webtransport-http3-draft02` header: Chromium, Firefox), `"draft13"` (`:protocol =
   * webtransport` without that header: drafts 07-13, Safari as reported) or `"draft15"`
   * (`:protocol = webtransport-h3`, drafts 15-16). A server takes it from the request, a client
   * from the server's SETTINGS (`SETTINGS_WT_ENABLED`, then `SETTINGS_WT_MAX_SESSIONS`, else
   * draft-02). The newer two have session flow control (`WT_MAX_DATA` / `WT_MAX_STREAMS`).
   */
  readonly draft: WebTransportDraft
  /** Resolves once the session is established (server: accepted); rejects if it never is. */
  readonly ready: Promise<void>
  /**
   * Resolves with `{ closeCode, reason }` when either side closed the session cleanly; rejects
   * with a `WebTransportError` (`source: "session"`) when it was cut off (connection lost,
   * CONNECT stream reset). Never an unhandled rejection: await it only if you care.
   */
  readonly closed: Promise<WebTransportCloseInfo>
  /** Resolves when the session is asked to wind down (DRAIN_WEBTRANSPORT_SESSION, or our server's graceful `stop()`). */
  readonly draining: Promise<void>
  /** Datagrams of this session (RFC 9297 datagrams on the CONNECT stream). */
  readonly datagrams: {
    /** Incoming datagrams, each a Uint8Array over an ArrayBuffer of its own; those arriving
     * while JS is 1024 behind are dropped (counted). */
    readonly readable: ReadableStream<Uint8Array>
    /** Each write sends one datagram (see `sendDatagram`). */
    readonly writable: WritableStream<Uint8Array | ArrayBufferView | ArrayBuffer | string>
    /** Largest payload one datagram can carry right now, or null. */
    readonly maxDatagramSize: number | null
  }
  /** Bidirectional streams the peer opened. Ends when the session closes. */
  readonly incomingBidirectionalStreams: ReadableStream<WebTransportBidirectionalStream>
  /** Unidirectional streams the peer opened. Ends when the session closes. */
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>
  /**
   * Server: establish the session now (`200`, with `sec-webtransport-http3-draft: draft02`).
   * `protocol` must be one of `availableProtocols` (else a `TypeError` with `ERR_H3_INVALID_ARG`);
   * it is sent back as `WT-Protocol` and becomes `protocol`.
   */
  accept(options?: { protocol?: string }): void
  /** Server: refuse the session with an HTTP status in 300..599 (default 403). */
  reject(status?: number): void
  /** Open a bidirectional stream. Rejects with `ERR_H3_SESSION_CLOSED` on a closed session. */
  createBidirectionalStream(): Promise<WebTransportBidirectionalStream>
  /** Open a unidirectional stream. Rejects with `ERR_H3_SESSION_CLOSED` on a closed session. */
  createUnidirectionalStream(): Promise<WritableStream<Uint8Array | ArrayBufferView | ArrayBuffer | string>>
  /**
   * Send one datagram now. Throws `ERR_H3_DATAGRAM_TOO_LARGE` (over `datagrams.maxDatagramSize`)
   * or `ERR_H3_SESSION_CLOSED`; when the send buffer is full the datagram is dropped (counted).
   */
  sendDatagram(data: Uint8Array | ArrayBufferView | ArrayBuffer | string): void
  /**
   * Close the session with a code (0..2^32-1, default 0) and a reason (default ""): sends
   * CLOSE_WEBTRANSPORT_SESSION, ends the CONNECT stream and resets every stream of the session.
   * On a server session not yet accepted, this rejects it (403).
   */
  close(info?: { closeCode?: number; reason?: string }): void
}

/**
 * The W3C `WebTransportError`: stream errors carry the peer's `streamErrorCode` (null when the
 * peer used a code outside the WebTransport range); pass one to `writable.abort()` /
 * `readable.cancel()` to send that code.
 */
export declare class WebTransportError extends Error {
  constructor(message?: string, init?: { source?: 'stream' | 'session'; streamErrorCode?: number | null })
  readonly name: 'WebTransportError'
  readonly source: 'stream' | 'session'
  readonly streamErrorCode: number | null
  /**
   * `ERR_H3_WT_REJECTED` when a client session was refused (then `status` is set);
   * `ERR_H3_WT_PROTOCOL` when the server answered with a protocol the client did not offer, or a
   * malformed `WT-Protocol` (the session is then closed with `WT_ALPN_ERROR`).
   */
  code?: H3ErrorCode
  status?: number
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
   * How the request body reaches the handler.
   * - `"buffered"` (default): read whole (up to `maxRequestBodySize`, default 1 MiB; more → `413`
   *   from Rust, JS not called) before the handler is called.
   * - `"streaming"`: the handler is called when the headers arrive; `req.body` is a
   *   `ReadableStream` pulled from QUIC on demand and `req.trailers` settles at its end (see
   *   {@link H3StreamingRequest}). No size limit unless `maxRequestBodySize` is set explicitly.
   */
  mode?: 'buffered' | 'streaming'
  /**
   * The handler. A route needs `fetch`, `response`, `h3Datagram` or `webtransport`. On a
   * streaming route the request may be annotated as {@link H3StreamingRequest}.
   */
  fetch?(req: H3Request, server: H3Server): Response | Promise<Response>
  /**
   * A static response for this route, used when `fetch` is absent. Its body is read once; from
   * then on Rust answers without calling JS. Replace it with `server.reload()`.
   */
  response?: Response
  /**
   * HTTP datagram handler (RFC 9297): called for datagrams naming one of this route's open
   * request streams. A route with it enables QUIC datagrams and SETTINGS_H3_DATAGRAM.
   */
  h3Datagram?: (payload: Uint8Array, ctx: H3DatagramContext) => void
  /**
   * WebTransport handler, called for each extended CONNECT (`:protocol = webtransport`, or
   * draft-15's `webtransport-h3`) on this
   * pattern (see {@link WebTransportSession} for when the session counts as accepted). The
   * route's method must be `"*"` (default) or `"CONNECT"`; the same route may also have `fetch`
   * for ordinary requests. Any such route in the initial options turns on extended CONNECT,
   * SETTINGS_ENABLE_WEBTRANSPORT and datagrams for the server (`reload()` cannot turn them on
   * later). An extended CONNECT on a path without such a route gets `404`.
   */
  webtransport?: (session: WebTransportSession & { request: H3Request; sessionId: bigint }, server: H3Server) => void | Promise<void>
}

/** TLS material: PEM text, PEM bytes, or a path to a PEM file (a string without `-----BEGIN`). */
export type PemInput = string | Uint8Array | ArrayBuffer

export interface TLSOptions {
  /** Certificate chain, leaf first (PEM). */
  cert: PemInput
  /** Private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC). */
  key: PemInput
  /**
   * In an array of certificates: the host name this one serves, exact (`"api.example.com"`) or a
   * wildcard of one label (`"*.example.com"`, which does not cover `example.com` or
   * `a.b.example.com`), compared case-insensitively with the handshake's SNI. The entry without
   * it (at most one), else the first entry, is the default: handshakes naming no configured host
   * get it, and `certificateHash` is its hash.
   */
  serverName?: string
  /**
   * Mutual TLS: `true` asks every client for a certificate that `ca` vouches for. Read from the
   * object form or the array's default entry; fixed for the server's life (not reloadable).
   */
  requestCert?: boolean
  /** CA certificates client certificates must chain to (needed with `requestCert`). */
  ca?: PemInput | PemInput[]
  /**
   * With `requestCert`: `false` lets clients without a certificate in too (`peerCertificate()` is
   * then `null`); a certificate `ca` does not vouch for still fails the handshake. Default `true`.
   */
  rejectUnauthorized?: boolean
}

/** Certificates by SNI, like `Bun.serve`'s `tls` array: see {@link TLSOptions.serverName}. */
export type TLSCertificates = TLSOptions[]

/** One open QUIC connection, from `server.connections()`. Figures are quinn's, at call time. */
export interface ConnectionInfo {
  /** The server's id for the connection (increasing). */
  id: number
  remote: SocketAddress
  /** The SNI host name the client sent, if any. */
  serverName?: string
  /** Smoothed round-trip time, milliseconds. */
  rttMs: number
  /** Smallest round-trip time seen, milliseconds. */
  minRttMs: number
  /** Congestion window, bytes. */
  congestionWindow: number
  /** Largest UDP payload the path carries now, bytes. */
  mtu: number
  congestionEvents: number
  packetsSent: number
  packetsLost: number
  bytesLost: number
  /** UDP payload bytes sent / received on this connection. */
  bytesSent: number
  bytesReceived: number
  /** UDP datagrams sent / received on this connection. */
  datagramsSent: number
  datagramsReceived: number
  /** The client presented a certificate the server verified (mutual TLS). */
  clientCertificate: boolean
}

/** A verified client certificate, from `server.peerCertificate(req)`. */
export interface PeerCertificate {
  /** The leaf certificate's DER. */
  raw: Buffer
  /** The leaf as PEM. */
  pem: string
  /** Subject and issuer as `node:crypto`'s `X509Certificate` prints them (`"CN=alice"`). */
  subject: string
  issuer: string
  /** SHA-256 of the DER, colon-separated upper-case hex. */
  fingerprint256: string
  validTo: string
  /** The whole chain the client sent, DER, leaf first. */
  chain: Buffer[]
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
   * An array of `{ cert, key, serverName }` picks the certificate by SNI. TLS 1.3 only, ALPN
   * `h3`. Bad material throws `ERR_H3_TLS`. `SSLKEYLOGFILE` (read from `process.env` at
   * creation) appends the session secrets to that file.
   */
  tls?: TLSOptions | TLSCertificates | 'self-signed'
  /** Routes, as an array of definitions or a `Bun.serve`-style object map. Default none. */
  routes?: RouteDefinition[] | RouteMap
  /**
   * Fallback for requests no route matches (buffered). Without it they get `404 Not Found` from
   * Rust.
   */
  fetch?: Handler
  /**
   * Called when a handler throws, rejects or returns something that is not a `Response`.
   * Its `Response` is sent; if it throws too (or is absent) the client gets a plain-text 500.
   */
  error?: (err: unknown) => Response | Promise<Response>
  /**
   * Largest request body in bytes. Integer 0..2^53-1.
   * - Buffered routes: default `1048576` (1 MiB). A larger body (declared by `content-length` or
   *   counted as it arrives) is answered `413` by Rust; JS is not called and the connection stays
   *   usable.
   * - Streaming routes: no limit unless this option is set. When set, a larger `content-length`
   *   gets `413` without calling JS, and a body that grows past it errors `req.body` with
   *   `ERR_H3_BODY_TOO_LARGE` (the client gets `413`, or a reset once a response has started).
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
  /**
   * Receives QUIC DATAGRAM frames that are not HTTP datagrams of a route's open request stream
   * (or every datagram from peers that did not negotiate HTTP datagrams). Its presence enables
   * QUIC datagrams; without it such datagrams are dropped and counted.
   */
  quicDatagram?: (payload: Uint8Array, ctx: QUICDatagramContext) => void
  /**
   * Directory (created if missing) for one qlog trace per connection:
   * `<qlogDir>/<original destination connection id>.qlog`, JSON text sequences of quinn's qlog
   * events, written as they happen. For debugging. Default: no traces.
   */
  qlogDir?: string
  /**
   * Accept 0-RTT early data from clients resuming a session. Early requests with a safe method
   * (GET, HEAD, OPTIONS, TRACE) reach JS, flagged by {@link H3Server.isEarlyData}; any other
   * method is answered `425 Too Early` (RFC 8470) without calling JS. Early data can be
   * replayed: see the README. Default `false`.
   */
  allow0RTT?: boolean
}

/** What `server.reload()` can replace. */
export interface ReloadOptions {
  /** New route table; omitted → the current routes stay. */
  routes?: RouteDefinition[] | RouteMap
  /** New fallback; present with `undefined` → no fallback (unmatched requests get 404). */
  fetch?: Handler | undefined
  /** New error handler; present with `undefined` → none. */
  error?: ((err: unknown) => Response | Promise<Response>) | undefined
  /**
   * New certificates (`{ cert, key }` or an array by SNI) for handshakes from now on; open
   * connections keep theirs. Bad material throws `ERR_H3_TLS` and keeps the current ones. Mutual
   * TLS settings (`ca`, `requestCert`) are not reloaded.
   */
  tls?: TLSOptions | TLSCertificates
}

/** Options of {@link H3Server.stop}. */
export interface StopOptions {
  /** Close every connection now (same as `stop(true)`). Default `false`. */
  force?: boolean
  /**
   * Seconds a graceful stop may take; past it the stop is forced (in-flight requests see their
   * `signal` abort). Default: no deadline. [0, 2147483].
   */
  timeout?: number
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
  /** QUIC DATAGRAM frames received (HTTP datagrams included). */
  datagramsReceived: number
  /** QUIC DATAGRAM frames sent. */
  datagramsSent: number
  /** Datagrams dropped: no handler, JS more than 4096 behind, or a full send buffer. */
  datagramsDropped: number
  /** Established WebTransport sessions now. */
  webtransportSessionsActive: number
  /** WebTransport streams open now (all sessions, either direction). */
  webtransportStreamsActive: number
  /**
   * Requests refused or lost before reaching JS: malformed or oversized header sections,
   * `413`s decided before JS (buffered bodies over `maxRequestBodySize`, too large
   * `content-length`), streams reset by the peer while a buffered body was read.
   */
  requestsRejected: number
  /** Failed handshakes, refused connections (over `maxConnections`) and connections we closed for a protocol error. */
  connectionErrors: number
  /**
   * Requests that arrived in 0-RTT early data (`allow0RTT`): served (safe methods) or answered
   * `425` (the others, also counted in `requestsRejected`).
   */
  earlyRequests: number
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
  /**
   * `https://<host>:<port>/`: `127.0.0.1` when bound to `0.0.0.0`, `localhost` when bound to
   * `::`, brackets around other IPv6 addresses, else the `hostname` as given.
   */
  readonly url: URL
  /**
   * SHA-256 of the leaf certificate (DER), 32 bytes — the value for WebTransport
   * `serverCertificateHashes` (and `h3Fetch`'s `tls.serverCertificateHashes`). Set for
   * self-signed and supplied certificates; with certificates by SNI, the default one's; follows
   * `reload({ tls })`.
   */
  readonly certificateHash: Uint8Array
  /** PEM of the generated self-signed certificate (a client can trust it as `tls.ca`); `undefined` when `tls` supplied one or `reload({ tls })` replaced it. */
  readonly certificatePem: string | undefined
  /** Requests in flight right now (same as `getStats().requestsActive`). */
  readonly pendingRequests: number
  /** `Alt-Svc` value announcing this server over HTTP/3: `h3=":<port>"; ma=86400` (see {@link altSvcHeader}). */
  readonly altSvc: string
  /** The QUIC connections open now, with quinn's figures for each (RTT, congestion window, losses, bytes). */
  connections(): ConnectionInfo[]
  /**
   * The verified client certificate of the connection that carried `req` (mutual TLS, see
   * {@link TLSOptions.requestCert}); `null` without one, once the request finished, or for a
   * `Request` that did not come from this server.
   */
  peerCertificate(req: Request): PeerCertificate | null
  /**
   * Whether `req` arrived in 0-RTT early data (`allow0RTT`), so it may be a replay: refuse
   * side effects (answer `425`). `false` once the request finished or for a `Request` that did
   * not come from this server.
   */
  isEarlyData(req: Request): boolean
  /**
   * Stop the server. Graceful (default): new connections are refused; every connection gets a
   * GOAWAY naming the first request stream that was not processed (later requests are refused
   * with H3_REQUEST_REJECTED, which clients may safely retry elsewhere); in-flight requests
   * finish; then connections close. `force: true` closes every connection now (the streams of
   * requests in flight are reset first, the connections close 5–100 ms later); in-flight requests
   * see their `signal` abort. Resolves when the socket is closed and (without `reusePort`) the
   * port can be bound again. Repeated calls return the same promise, and `stop(true)` during a
   * graceful stop finishes it at once. A graceful stop waits as long as requests keep running,
   * unless given a deadline: `stop({ timeout: 10 })` stops gracefully and forces the stop after
   * 10 seconds. Throws `ERR_H3_INVALID_ARG` (`TypeError`) for a bad argument.
   */
  stop(force?: boolean | StopOptions): Promise<void>
  /**
   * Replace routes, `fetch`, `error` and/or the certificates (`tls`) without dropping
   * connections. Requests already dispatched finish with the handlers they were matched against.
   * Throws `ERR_H3_ROUTE` for bad routes, `ERR_H3_TLS` for bad certificates (nothing changes
   * then) and `ERR_H3_NOT_RUNNING` after `stop()`.
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

/**
 * Create an HTTP/3 server and bind its UDP socket (synchronously, like `Bun.serve`).
 * Throws an `H3Error`: `TypeError` with `ERR_H3_INVALID_ARG` / `ERR_H3_ROUTE` for bad options,
 * `ERR_H3_TLS` for bad certificates, `Error` with `ERR_H3_BIND` when the port is taken.
 */
export declare function createH3Server(options?: ServeOptions): H3Server

/** Options of {@link altSvcHeader}. */
export interface AltSvcOptions {
  /** Seconds browsers may remember the alternative (`ma`). Default `86400`. */
  maxAge?: number
}

/**
 * The `Alt-Svc` header value (RFC 7838) that points browsers from a TCP origin (node:https,
 * node:http2, Bun.serve) to this HTTP/3 server on the same host: `h3=":<port>"; ma=<maxAge>`.
 * Takes the server or a port number. Throws `ERR_H3_INVALID_ARG` (`TypeError`) for a bad port or
 * `maxAge`.
 */
export declare function altSvcHeader(server: H3Server | number, options?: AltSvcOptions): string

// ---------------------------------------------------------------------------------------------
// Response trailers

/** Anything `new Headers()` accepts (`HeadersInit`), or nothing (no trailers). */
export type TrailersValue = ConstructorParameters<typeof Headers>[0] | null

/**
 * Trailers for {@link withTrailers}: headers, a promise of them, or a function (sync or async)
 * called once the whole body has been written — so a trailer can carry e.g. a checksum of the
 * body.
 */
export type ResponseTrailers = TrailersValue | Promise<TrailersValue> | (() => TrailersValue | Promise<TrailersValue>)

/**
 * Attach HTTP trailers to a `Response` a handler returns (an extension; WHATWG `Response` has
 * none). They are sent as a trailing HEADERS frame after the body; the response always takes the
 * streamed path. Returns the same `Response`. If the trailers function throws or its promise
 * rejects, the response stream is reset. A response with a `null` or empty body currently sends no
 * trailers. Throws `TypeError` (`ERR_H3_INVALID_ARG`) if `response` is not a `Response`.
 */
export declare function withTrailers<R extends Response>(response: R, trailers: ResponseTrailers): R

/**
 * `Symbol.for('napi-h3.trailers')`: the property {@link withTrailers} sets on a `Response`.
 * `response[trailersSymbol] = trailers` is equivalent to `withTrailers(response, trailers)`.
 */
export declare const trailersSymbol: unique symbol

// ---------------------------------------------------------------------------------------------
// Client

/** How an HTTP/3 client checks the server's certificate. Default: the system root store. */
export interface ClientTlsOptions {
  /**
   * CA certificates to trust **instead of** the system roots: PEM text, PEM bytes, a PEM file
   * path, or an array of them (e.g. `server.certificatePem`). The host name is verified.
   */
  ca?: PemInput | PemInput[]
  /** `false`: accept any certificate (tests only). Default `true`. */
  rejectUnauthorized?: boolean
  /**
   * Accept exactly the certificates whose SHA-256 (of the DER) is listed, as W3C WebTransport
   * does — plain 32-byte digests or `{ algorithm: "sha-256", value }` objects (e.g.
   * `server.certificateHash`). No CA or host-name check; unlike browsers, the validity-period
   * and ECDSA rules are not enforced, only the hash. When non-empty it takes precedence over
   * `rejectUnauthorized` and `ca`.
   */
  serverCertificateHashes?: Array<ArrayBuffer | ArrayBufferView | { algorithm?: string; value: ArrayBuffer | ArrayBufferView }>
  /**
   * The host name sent in SNI and verified against the certificate instead of the URL's host
   * (connect to an IP address, ask for a named certificate).
   */
  serverName?: string
  /** Mutual TLS: the client certificate chain (PEM, leaf first), sent when a server asks. Needs `key`. */
  cert?: PemInput
  /** The client certificate's private key (PEM). Needs `cert`. */
  key?: PemInput
}

/** Options of {@link createH3Client}. */
export interface H3ClientOptions {
  /** Certificate checks, see {@link ClientTlsOptions}. */
  tls?: ClientTlsOptions
  /** Seconds before an idle connection is closed (QUIC max_idle_timeout). Default `30`; (0, 3600]. */
  idleTimeout?: number
  /**
   * Seconds each for the name lookup and the QUIC + TLS handshake of a new connection.
   * Default `10`; (0, 3600]. QUIC ignores ICMP errors, so an unreachable port takes the full
   * timeout before `ERR_H3_CONNECT`.
   */
  connectTimeout?: number
  /**
   * Send safe-method requests (GET, HEAD, OPTIONS, TRACE) in 0-RTT when a new connection
   * resumes a session whose ticket allows early data; other requests wait for the handshake.
   * See {@link H3Client.earlyData}. Default `false`.
   */
  allow0RTT?: boolean
}

/** How a client's 0-RTT attempts went, counted by connection (`client.earlyData`). */
export interface EarlyDataStats {
  /** Connections that resumed a session allowing 0-RTT and sent requests before the handshake completed. */
  attempted: number
  /** Of those, the ones whose early data the server accepted. */
  accepted: number
  /**
   * The ones whose early data the server refused: that connection was closed, requests
   * already sent in it failed with `ERR_H3_CONNECTION_LOST`, the others went on a fresh one.
   */
  rejected: number
}

/**
 * Request bodies the client accepts: everything `fetch` takes (strings, `ArrayBuffer` and views,
 * `Blob`, `URLSearchParams`, `FormData`, `ReadableStream`) plus async iterables of bytes or strings.
 */
export type H3BodyInit = NonNullable<RequestInit['body']> | AsyncIterable<Uint8Array | string>

/** `fetch`'s `RequestInit` as `H3Client.fetch` reads it. */
export interface H3RequestInit extends Omit<RequestInit, 'body'> {
  /**
   * The request body (not for `GET`/`HEAD`: `TypeError`). Strings, bytes, `URLSearchParams` and
   * `Blob`s up to 1 MiB are sent in one piece with `content-length`; bigger `Blob`s, `FormData`,
   * `ReadableStream`s and async iterables are streamed with backpressure (and cannot be re-sent
   * on a 307/308 redirect). `content-type` defaults like `fetch`'s.
   */
  body?: H3BodyInit | null
  /** Accepted for compatibility with `fetch`; streamed bodies do not need it. */
  duplex?: 'half'
  /**
   * Milliseconds for the whole request, including reading the response body (the timer stops
   * when the body has been read to its end or cancelled). On expiry the request is reset and the
   * fetch or the body read rejects with an `Error` named `TimeoutError`, code `ERR_H3_TIMEOUT`.
   */
  timeout?: number
}

/** `init` of {@link h3Fetch}: {@link H3RequestInit} plus the TLS settings. */
export interface H3FetchInit extends H3RequestInit {
  /**
   * Certificate checks for this request. Requests with equal `tls` settings share a client (and
   * its connections) kept for the life of the process; without `tls` a shared default client
   * (system roots) is used.
   */
  tls?: ClientTlsOptions
}

/**
 * A response from the HTTP/3 client: a WHATWG `Response` (with `url`, `redirected`, a streamed
 * `body`) plus the response trailers.
 */
export type H3Response = Response & {
  /**
   * Settles with the trailers once the body has been read to its end (an empty `Headers` when
   * there were none, for responses without body, on error and on cancel).
   */
  readonly trailers: Promise<Headers>
}

/**
 * An HTTP/3 client: one QUIC connection per origin (`host:port`), shared by all its requests
 * (multiplexed). Idle connections close after `idleTimeout`; a dead one is replaced on the next
 * request. A client never keeps the process alive by itself; a pending request does.
 */
export declare class H3Client {
  /** Same as `createH3Client(options)`. Throws `ERR_H3_INVALID_ARG` (`TypeError`) or `ERR_H3_TLS` (unusable `ca`) on bad options. */
  constructor(options?: H3ClientOptions)
  /**
   * `fetch` over HTTP/3 on this client's connections (already bound: can be passed around).
   * `https:` URLs only. See {@link h3Fetch} for the semantics and errors. Rejects with
   * `ERR_H3_NOT_RUNNING` after `close()`.
   */
  readonly fetch: (input: string | URL | Request, init?: H3RequestInit) => Promise<H3Response>
  /**
   * Open a WebTransport session (extended CONNECT) on this client's connection to the origin
   * (shared with its `fetch`es). Resolves once the server accepted (2xx). Rejects with a
   * `WebTransportError` with `code: "ERR_H3_WT_REJECTED"` and `status` when the server answered
   * otherwise, `ERR_H3_CONNECT` / `ERR_H3_TLS` when it could not connect, `TypeError` for a
   * non-`https:` URL. `serverCertificateHashes` (W3C `{ algorithm, value }` or plain 32-byte
   * digests) trusts the server's certificate by its SHA-256, as browsers do. `protocols` (W3C):
   * application protocols to offer in `WT-Available-Protocols`, most preferred first (distinct,
   * non-empty, printable ASCII; else `ERR_H3_INVALID_ARG`); the server's pick is the session's
   * `protocol`, and a pick that was not offered (or malformed) rejects with `ERR_H3_WT_PROTOCOL`.
   */
  webtransport(url: string | URL, options?: {
    headers?: ConstructorParameters<typeof Headers>[0]
    protocols?: string[]
    serverCertificateHashes?: Array<Uint8Array | ArrayBuffer | { algorithm?: string; value: Uint8Array | ArrayBuffer }>
  }): Promise<WebTransportSession>
  /** Close every connection; in-flight requests and body reads fail (their streams are reset first, the connections close 5–100 ms later), later `fetch`es reject with `ERR_H3_NOT_RUNNING`. */
  close(): Promise<void>
  /** QUIC connections open now (one per origin in use). */
  readonly connectionCount: number
  /** QUIC connections opened over the client's life. */
  readonly connectionsOpened: number
  /** 0-RTT attempts (`allow0RTT`) and how servers answered them. */
  readonly earlyData: EarlyDataStats
}

/**
 * Create an HTTP/3 client with its own connection pool and TLS settings. Close it with
 * `close()` when done.
 */
export declare function createH3Client(options?: H3ClientOptions): H3Client

/**
 * `fetch()` over HTTP/3 (`https:` URLs only, else `TypeError`).
 *
 * - `input`: a URL string, `URL` or `Request` (its method, headers, body, signal and redirect
 *   mode are used unless `init` overrides them).
 * - Redirects: `"follow"` (default; at most 20; `303`, and `301`/`302` after `POST`, become
 *   `GET` without body; a streamed body cannot be re-sent → `TypeError`), `"manual"` (the 3xx
 *   response is returned), `"error"` (`TypeError`).
 * - `signal` aborts at any stage — connecting, waiting for headers, uploading, reading the body —
 *   with the signal's reason (an `AbortError` by default) and resets the stream.
 * - No cookies, cache, CORS or content decoding.
 *
 * Rejects with: `TypeError` for bad input; `ERR_H3_CONNECT` (the host name does not resolve, no
 * handshake within `connectTimeout`, or the connection/stream failed before the response head);
 * `ERR_H3_TLS` (certificate rejected); `TimeoutError`/`ERR_H3_TIMEOUT`; the abort reason. Body
 * reads fail with `ERR_H3_STREAM_RESET` (the server reset the stream) or `ERR_H3_CONNECTION_LOST`.
 */
export declare function h3Fetch(input: string | URL | Request, init?: H3FetchInit): Promise<H3Response>

// ---------------------------------------------------------------------------------------------
// Errors

/** Stable `code` values of errors thrown by napi-h3. */
export type H3ErrorCode =
  /** Invalid option value or type (`TypeError`). */
  | 'ERR_H3_INVALID_ARG'
  /** Certificate or key missing, unreadable, malformed or not matching; client: the server's certificate was rejected. */
  | 'ERR_H3_TLS'
  /** The UDP socket could not be bound (address in use, permission, …). */
  | 'ERR_H3_BIND'
  /** Invalid route definition or pattern (`TypeError`). */
  | 'ERR_H3_ROUTE'
  /** `reload()` after `stop()`; `fetch()` on a closed client. */
  | 'ERR_H3_NOT_RUNNING'
  /** A streaming request body grew past `maxRequestBodySize` (the `req.body` stream errors). */
  | 'ERR_H3_BODY_TOO_LARGE'
  /** The peer reset the stream: a client aborting an upload (server), the server resetting a response (client). */
  | 'ERR_H3_STREAM_RESET'
  /** The connection died while a body was being read. */
  | 'ERR_H3_CONNECTION_LOST'
  /** Client: the host name did not resolve, no handshake within `connectTimeout`, or the connection or stream failed before the response head. */
  | 'ERR_H3_CONNECT'
  /** Client: the `timeout` option expired (the error's `name` is `TimeoutError`). */
  | 'ERR_H3_TIMEOUT'
  /** Client: a request cancelled inside the addon while a body read was pending (e.g. by `close()`). */
  | 'ERR_H3_ABORTED'
  /** The WebTransport session is closed (opening a stream, sending a datagram). */
  | 'ERR_H3_SESSION_CLOSED'
  /** Client: the server answered a WebTransport session request with a non-2xx status (`err.status`). */
  | 'ERR_H3_WT_REJECTED'
  /** Client: the server's `WT-Protocol` names a protocol the client did not offer (the session is closed). */
  | 'ERR_H3_WT_PROTOCOL'
  | 'ERR_H3_DATAGRAM_TOO_LARGE'
  | 'ERR_H3_DATAGRAM_UNSUPPORTED'
  /** The request is finished or unknown: reading a streaming `req.body` after the response was sent, or a client body after `close()`. */
  | 'ERR_H3_UNKNOWN_REQUEST'
  /** Internal: a response with an invalid status or header (turned into a 500). */
  | 'ERR_H3_INVALID_RESPONSE'
  /** Internal: the peer closed the stream (seen as a cancelled response body). */
  | 'ERR_H3_STREAM_CLOSED'
  /** An I/O error from the operating system. */
  | 'ERR_H3_IO'
  /** An internal failure (a bug). */
  | 'ERR_H3_INTERNAL'

/** Errors thrown by napi-h3 carry a stable `code`. */
export type H3Error = Error & { code: H3ErrorCode }
