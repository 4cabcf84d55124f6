//! The napi edge for the server: JS options in, threadsafe calls out, errors converted once.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tokio::sync::oneshot;

use crate::body::BodyEvent;
use crate::config::{RawOptions, ServerConfig};
use crate::datagram::{Datagram, Target};
use crate::error::H3Error;
use crate::response::ResponseCmd;
use crate::router::{BodyMode, RouteSpec, RouteTable, StaticResponse};
use crate::server::{Dispatcher, RequestHead, Routing, Server};
use crate::tls::{Identity, PemSource};

/// One value of the flat batch handed to JS.
pub enum Cell {
    Int(i64),
    Str(String),
    Strs(Vec<String>),
    /// Copied into a JS-heap Buffer (cheaper than an external one with a finalizer).
    Bytes(Bytes),
    Null,
}

impl ToNapiValue for Cell {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        match val {
            Cell::Int(v) => i64::to_napi_value(env, v),
            Cell::Str(v) => String::to_napi_value(env, v),
            Cell::Strs(v) => Vec::<String>::to_napi_value(env, v),
            Cell::Bytes(v) => JsBytes::to_napi_value(env, JsBytes(vec![v])),
            Cell::Null => Null::to_napi_value(env, Null),
        }
    }
}

/// Cells per request in a batch:
/// id, method, url, headers, body, routeIndex, params, generation, streaming, connId, streamId.
const CELLS_PER_REQUEST: usize = 11;

/// Weak (never keeps the process alive by itself; index.js holds a ref'able handle instead),
/// not callee-handled, unbounded queue (bounded upstream by stream limits).
type BatchTsfn = ThreadsafeFunction<(), (), Vec<Cell>, Status, false, true, 0>;
type AbortTsfn = ThreadsafeFunction<i64, (), i64, Status, false, true, 0>;

/// Converts an internal error into a JS error whose message starts with `[CODE]`;
/// index.js lifts that prefix into `err.code`.
pub(crate) fn to_js(e: H3Error) -> Error {
    Error::new(Status::GenericFailure, format!("[{}] {e}", e.code()))
}

/// Items wait here until the JS thread runs; one threadsafe call drains them all, so a busy
/// server wakes JS once per batch rather than once per request or datagram.
struct Batch<T>(std::sync::Mutex<Vec<T>>);

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Batch(std::sync::Mutex::new(Vec::new()))
    }
}

impl<T> Batch<T> {
    /// `Some(true)` when the batch was empty (a JS call must be scheduled); `None` when full.
    fn push(&self, item: T, cap: usize) -> Option<bool> {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= cap {
            return None;
        }
        q.push(item);
        Some(q.len() == 1)
    }

    fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn request_cells(heads: Vec<RequestHead>) -> Vec<Cell> {
    let mut cells = Vec::with_capacity(heads.len() * CELLS_PER_REQUEST);
    for h in heads {
        let (route, params) = match h.route {
            Some(m) if m.params.is_empty() => (m.index as i64, Cell::Null),
            Some(m) => (m.index as i64, Cell::Strs(m.params)),
            None => (-1, Cell::Null),
        };
        cells.extend([
            Cell::Int(h.id as i64),
            Cell::Str(h.method),
            Cell::Str(h.url),
            Cell::Strs(h.headers),
            h.body.map_or(Cell::Null, |b| Cell::Bytes(b.into())),
            Cell::Int(route),
            params,
            Cell::Int(h.generation.into()),
            // Body mode: 0 buffered, 1 streaming, 2 WebTransport session.
            Cell::Int(if h.webtransport {
                2
            } else {
                h.streaming.into()
            }),
            Cell::Int(h.conn_id as i64),
            Cell::Int(h.stream_id as i64),
        ]);
    }
    cells
}

/// Cells per datagram: connId, requestId (-1: server-level quicDatagram), streamId, payload.
fn datagram_cells(items: Vec<Datagram>) -> Vec<Cell> {
    let mut cells = Vec::with_capacity(items.len() * 4);
    for d in items {
        let (req, stream) = match d.target {
            Target::H3 {
                request_id,
                stream_id,
            } => (request_id as i64, stream_id as i64),
            // Session datagrams go to the session's queue, never through this batch.
            Target::Session(_) | Target::Quic => (-1, -1),
        };
        cells.extend([
            Cell::Int(d.conn_id as i64),
            Cell::Int(req),
            Cell::Int(stream),
            Cell::Bytes(d.payload),
        ]);
    }
    cells
}

struct JsDispatcher {
    requests: Arc<Batch<RequestHead>>,
    on_batch: BatchTsfn,
    on_abort: AbortTsfn,
    datagrams: Arc<Batch<Datagram>>,
    on_datagrams: Option<BatchTsfn>,
}

impl Dispatcher for JsDispatcher {
    fn request(&self, head: RequestHead) -> bool {
        // Requests are bounded upstream (streams per connection × connections).
        if self.requests.push(head, usize::MAX) == Some(true) {
            return self
                .on_batch
                .call((), ThreadsafeFunctionCallMode::NonBlocking)
                == Status::Ok;
        }
        true
    }
    fn abort(&self, id: u64) {
        let _ = self
            .on_abort
            .call(id as i64, ThreadsafeFunctionCallMode::NonBlocking);
    }
    fn datagram(&self, d: Datagram) -> bool {
        let Some(tsfn) = &self.on_datagrams else {
            return false;
        };
        match self.datagrams.push(d, crate::datagram::MAX_PENDING_TO_JS) {
            None => false,
            Some(true) => tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok,
            Some(false) => true,
        }
    }
}

/// Bytes copied into a JS-heap Buffer when they reach JS. An external buffer over Rust memory
/// would be zero-copy, but V8 does not count it towards GC pressure, so a fast upload would pile
/// up garbage buffers faster than they are collected.
pub struct JsBytes(pub(crate) Vec<bytes::Bytes>);

/// Chunks smaller than this are not worth a finalizer.
const GC_HINT_MIN_BYTES: usize = 16 * 1024;
/// Extra external memory reported per chunk byte (see `JsBytes`).
const GC_HINT_FACTOR: usize = 2;

unsafe extern "C" fn release_gc_hint(
    env: napi::sys::napi_env,
    data: *mut std::ffi::c_void,
    _hint: *mut std::ffi::c_void,
) {
    let mut adjusted = 0i64;
    // SAFETY: called by the runtime on the JS thread; `data` carries the reported byte count.
    unsafe { napi::sys::napi_adjust_external_memory(env, -(data as usize as i64), &mut adjusted) };
}

impl ToNapiValue for JsBytes {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let len: usize = val.0.iter().map(|b| b.len()).sum();
        let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
        let mut out = std::ptr::null_mut();
        let status = unsafe { napi::sys::napi_create_buffer(env, len, &mut data, &mut out) };
        if status != napi::sys::Status::napi_ok || (data.is_null() && len > 0) {
            return Err(Error::new(
                Status::GenericFailure,
                "[ERR_H3_IO] could not allocate a Buffer",
            ));
        }
        let mut at = 0;
        for piece in &val.0 {
            // SAFETY: `data` points at `len` writable bytes owned by the new Buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    piece.as_ptr(),
                    (data as *mut u8).add(at),
                    piece.len(),
                )
            };
            at += piece.len();
        }
        // Body chunks are garbage as soon as JS has consumed them, and V8 only collects
        // Buffer memory after ~64 MiB of it has accumulated. Report each chunk twice more as
        // external memory (undone when it is collected) so GC comes at about a third of that,
        // which keeps a streaming transfer's footprint well under 64 MiB.
        if len >= GC_HINT_MIN_BYTES {
            let mut adjusted = 0i64;
            let hint = (len * GC_HINT_FACTOR) as i64;
            // SAFETY: plain N-API calls on the JS thread with a live env and value.
            unsafe {
                if napi::sys::napi_adjust_external_memory(env, hint, &mut adjusted)
                    == napi::sys::Status::napi_ok
                {
                    napi::sys::napi_add_finalizer(
                        env,
                        out,
                        hint as usize as *mut std::ffi::c_void,
                        Some(release_gc_hint),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    );
                }
            }
        }
        Ok(out)
    }
}

/// One route as index.js describes it to Rust.
#[napi(object)]
pub struct NativeRoute {
    pub method: String,
    pub pattern: String,
    /// "buffered" (default) or "streaming".
    pub mode: Option<String>,
    /// Set for static `Response` routes, answered without calling JS.
    pub static_status: Option<u32>,
    pub static_headers: Option<Vec<String>>,
    pub static_body: Option<Buffer>,
    pub h3_datagram: Option<bool>,
    pub webtransport: Option<bool>,
}

/// Options as index.js passes them after normalising the user's `ServeOptions`.
#[napi(object)]
pub struct NativeServerOptions {
    pub port: Option<f64>,
    pub hostname: Option<String>,
    pub cert: Option<Either<String, Buffer>>,
    pub key: Option<Either<String, Buffer>>,
    pub max_request_body_size: Option<f64>,
    pub idle_timeout: Option<f64>,
    pub max_connections: Option<f64>,
    pub max_concurrent_streams: Option<f64>,
    pub max_header_list_size: Option<f64>,
    pub reuse_port: Option<bool>,
    pub routes: Vec<NativeRoute>,
    pub has_fallback: bool,
    /// A server-level `quicDatagram` handler exists.
    pub quic_datagram: Option<bool>,
}

/// Server counters (SPEC `ServerStats`, plus rejection counters).
#[napi(object)]
pub struct ServerStats {
    pub connections_total: f64,
    pub connections_active: f64,
    pub requests_total: f64,
    pub requests_active: f64,
    pub uptime_ms: f64,
    /// UDP payload bytes received, summed over closed connections plus live ones.
    pub bytes_received: f64,
    /// UDP payload bytes sent, summed over closed connections plus live ones.
    pub bytes_sent: f64,
    pub datagrams_received: f64,
    pub datagrams_sent: f64,
    pub datagrams_dropped: f64,
    pub webtransport_sessions_active: f64,
    /// WebTransport streams open on this server (both directions, all sessions).
    pub webtransport_streams_active: f64,
    /// Requests answered or dropped before JS saw them (413, 431, malformed, reset early).
    pub requests_rejected: f64,
    /// Connections that failed their handshake or closed with a protocol error.
    pub connection_errors: f64,
}

#[napi(object)]
pub struct PeerAddress {
    pub address: String,
    pub port: u32,
    pub family: String,
}

fn peer(addr: SocketAddr) -> PeerAddress {
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(std::net::IpAddr::V4)
            .unwrap_or(addr.ip()),
        ip => ip,
    };
    PeerAddress {
        address: ip.to_string(),
        port: addr.port().into(),
        family: if ip.is_ipv4() { "IPv4" } else { "IPv6" }.into(),
    }
}

pub(crate) fn pem(src: Either<String, Buffer>) -> PemSource {
    match src {
        Either::A(s) => PemSource::Text(s),
        Either::B(b) => PemSource::Bytes(b.to_vec()),
    }
}

pub(crate) fn header_pairs(flat: Vec<String>) -> Vec<(String, String)> {
    let mut it = flat.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

fn route_table(routes: Vec<NativeRoute>) -> std::result::Result<RouteTable, H3Error> {
    let specs = routes
        .into_iter()
        .map(|r| {
            let mode = match r.mode.as_deref() {
                None | Some("buffered") => BodyMode::Buffered,
                Some("streaming") => BodyMode::Streaming,
                Some(m) => {
                    return Err(H3Error::Route(format!(
                        "{} {}: mode must be \"buffered\" or \"streaming\", got {m:?}",
                        r.method, r.pattern
                    )))
                }
            };
            let static_response = r.static_status.map(|status| StaticResponse {
                status: status.min(999) as u16,
                headers: header_pairs(r.static_headers.unwrap_or_default()),
                body: r
                    .static_body
                    .map(|b| Bytes::copy_from_slice(&b))
                    .unwrap_or_default(),
            });
            Ok(RouteSpec {
                method: r.method,
                pattern: r.pattern,
                mode,
                static_response,
                h3_datagram: r.h3_datagram.unwrap_or(false),
                webtransport: r.webtransport.unwrap_or(false),
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RouteTable::new(specs)
}

/// Body sent from JS: a string (UTF-8) or bytes. Copied into `Bytes` here, on the JS thread,
/// so JS-owned memory never reaches tokio.
pub(crate) fn body_bytes(body: Either<String, Buffer>) -> Bytes {
    match body {
        Either::A(s) => Bytes::from(s),
        Either::B(b) => Bytes::copy_from_slice(&b),
    }
}

#[napi]
pub struct NativeServer {
    inner: Arc<Server>,
    certificate_hash: Option<Vec<u8>>,
    certificate_pem: Option<String>,
}

#[napi]
impl NativeServer {
    #[napi(getter)]
    pub fn port(&self) -> u32 {
        self.inner.local_addr.port().into()
    }

    #[napi(getter)]
    pub fn address(&self) -> String {
        self.inner.local_addr.ip().to_string()
    }

    /// SHA-256 of the leaf certificate (DER).
    #[napi(getter)]
    pub fn certificate_hash(&self) -> Option<Buffer> {
        self.certificate_hash.clone().map(Buffer::from)
    }

    /// PEM of the self-signed certificate, when the server generated one.
    #[napi(getter)]
    pub fn certificate_pem(&self) -> Option<String> {
        self.certificate_pem.clone()
    }

    /// A complete response. Returns false when the request is gone (peer left, server stopped).
    #[napi]
    pub fn respond(
        &self,
        id: i64,
        status: u32,
        headers: Vec<String>,
        body: Option<Either<String, Buffer>>,
    ) -> bool {
        let cmd = ResponseCmd::Head {
            status: status.min(999) as u16,
            headers: header_pairs(headers),
            body: body.map(body_bytes),
            end: true,
        };
        self.inner.shared.command(id as u64, cmd).is_ok()
    }

    /// Many complete responses at once: `batch` is flat, 4 cells per response
    /// (`id, status, headers, body`). index.js collects a tick's responses into one call.
    #[napi]
    pub fn respond_batch(&self, batch: Vec<Unknown<'_>>) -> Result<()> {
        let mut it = batch.into_iter();
        while let (Some(id), Some(status), Some(headers), Some(body)) =
            (it.next(), it.next(), it.next(), it.next())
        {
            // Each cell is type-checked by its FromNapiValue conversion; a wrong shape is an Err.
            let id: i64 = id.coerce_to_number()?.get_int64()?;
            let status: u32 = status.coerce_to_number()?.get_uint32()?;
            let headers: Vec<String> =
                unsafe { Vec::<String>::from_napi_value(headers.env(), headers.raw())? };
            let body: Option<Either<String, Buffer>> = match body.get_type()? {
                ValueType::Null | ValueType::Undefined => None,
                _ => Some(unsafe {
                    Either::<String, Buffer>::from_napi_value(body.env(), body.raw())?
                }),
            };
            self.respond(id, status, headers, body);
        }
        Ok(())
    }

    /// Status and headers of a streamed response; body chunks follow with `write`.
    #[napi]
    pub fn start_response(&self, id: i64, status: u32, headers: Vec<String>) -> bool {
        let cmd = ResponseCmd::Head {
            status: status.min(999) as u16,
            headers: header_pairs(headers),
            body: None,
            end: false,
        };
        self.inner.shared.command(id as u64, cmd).is_ok()
    }

    /// Queue one chunk; the promise settles when QUIC accepted it (that is the backpressure).
    /// Resolves false when the peer stopped reading or the request is gone.
    #[napi]
    pub async fn write(&self, id: i64, chunk: Either<String, Buffer>) -> Result<bool> {
        let (ack, done) = oneshot::channel();
        let cmd = ResponseCmd::Data {
            chunk: body_bytes(chunk),
            ack,
        };
        if self.inner.shared.command(id as u64, cmd).is_err() {
            return Ok(false);
        }
        Ok(matches!(done.await, Ok(Ok(()))))
    }

    /// End a streamed response, with optional trailers (flat name/value list).
    #[napi]
    pub fn end(&self, id: i64, trailers: Option<Vec<String>>) -> bool {
        let cmd = ResponseCmd::End {
            trailers: header_pairs(trailers.unwrap_or_default()),
        };
        self.inner.shared.command(id as u64, cmd).is_ok()
    }

    /// Next chunk of a streaming request body: a Buffer, then at the end an array of trailer
    /// name/value pairs (possibly empty). Rejects with ERR_H3_STREAM_RESET,
    /// ERR_H3_BODY_TOO_LARGE or ERR_H3_CONNECTION_LOST.
    #[napi(ts_return_type = "Promise<Buffer | string[]>")]
    pub async fn read_body(&self, id: i64) -> Result<Either<JsBytes, Vec<String>>> {
        let rx = self.inner.shared.pull_body(id as u64).map_err(to_js)?;
        match rx.await {
            Ok(BodyEvent::Chunk(pieces)) => Ok(Either::A(JsBytes(pieces))),
            Ok(BodyEvent::End(trailers)) => Ok(Either::B(trailers)),
            Ok(BodyEvent::Error(e)) => Err(to_js(e)),
            Err(_) => Err(to_js(H3Error::UnknownRequest(id as u64))),
        }
    }

    /// The handler gave up on a streaming body: stop reading it (the peer gets STOP_SENDING).
    #[napi]
    pub fn cancel_body(&self, id: i64) {
        self.inner.shared.cancel_body(id as u64)
    }

    /// Send a datagram on connection `conn_id`: an HTTP datagram of request stream `stream_id`
    /// when given (RFC 9297), else a bare QUIC datagram. A full send buffer drops it (counted).
    #[napi]
    pub fn send_datagram(
        &self,
        conn_id: i64,
        stream_id: Option<i64>,
        payload: Buffer,
    ) -> Result<()> {
        crate::datagram::send(
            &self.inner.shared,
            conn_id as u64,
            stream_id.map(|s| s as u64),
            &payload,
        )
        .map_err(to_js)
    }

    /// Replies collected while JS handled a datagram batch, flat: `connId, streamId (-1: bare
    /// QUIC datagram), payload` per datagram. JS checked the sizes; a datagram that no longer
    /// fits, or whose connection is gone, is dropped and counted.
    #[napi]
    pub fn send_datagrams(&self, batch: Vec<Unknown<'_>>) -> Result<()> {
        let shared = &self.inner.shared;
        let mut conn: Option<(i64, quinn::Connection)> = None;
        let mut it = batch.into_iter();
        while let (Some(c), Some(s), Some(p)) = (it.next(), it.next(), it.next()) {
            let c: i64 = c.coerce_to_number()?.get_int64()?;
            let s: i64 = s.coerce_to_number()?.get_int64()?;
            let payload = unsafe { Buffer::from_napi_value(p.env(), p.raw())? };
            if conn.as_ref().is_none_or(|(id, _)| *id != c) {
                conn = shared
                    .lock_conns()
                    .get(&(c as u64))
                    .cloned()
                    .map(|q| (c, q));
            }
            let sent = conn.as_ref().is_some_and(|(_, quic)| {
                crate::datagram::send_on(
                    quic,
                    &shared.stats,
                    (s >= 0).then_some(s as u64),
                    &payload,
                )
                .is_ok()
            });
            if !sent {
                shared
                    .stats
                    .datagrams_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Largest datagram payload the connection accepts right now (null when it has none).
    #[napi]
    pub fn max_datagram_size(&self, conn_id: i64, stream_id: Option<i64>) -> Option<u32> {
        crate::datagram::max_size(
            &self.inner.shared,
            conn_id as u64,
            stream_id.map(|s| s as u64),
        )
        .map(|n| n as u32)
    }

    /// Reset the response stream (the handler's body stream failed mid-way).
    #[napi]
    pub fn abort(&self, id: i64) -> bool {
        self.inner
            .shared
            .command(id as u64, ResponseCmd::Abort)
            .is_ok()
    }

    /// WebTransport sessions and streams of this server (null when no route takes WebTransport).
    #[napi]
    pub fn wt(&self) -> Option<crate::napi_wt::NativeWt> {
        self.inner
            .shared
            .wt
            .clone()
            .map(crate::napi_wt::NativeWt::new)
    }

    /// Swap the route table; returns the new handler generation.
    #[napi]
    pub fn reload(&self, routes: Vec<NativeRoute>, has_fallback: bool) -> Result<u32> {
        let table = route_table(routes).map_err(to_js)?;
        Ok(self.inner.shared.set_routes(table, has_fallback))
    }

    #[napi]
    pub fn request_ip(&self, id: i64) -> Option<PeerAddress> {
        self.inner.shared.request_peer(id as u64).map(peer)
    }

    #[napi]
    pub fn stats(&self) -> ServerStats {
        let s = self.inner.shared.stats.snapshot();
        let (mut rx, mut tx) = (s.bytes_received, s.bytes_sent);
        for c in self.inner.shared.lock_conns().values() {
            let cs = c.stats();
            rx += cs.udp_rx.bytes;
            tx += cs.udp_tx.bytes;
        }
        ServerStats {
            connections_total: s.connections_total as f64,
            connections_active: s.connections_active as f64,
            requests_total: s.requests_total as f64,
            requests_active: s.requests_active as f64,
            uptime_ms: s.uptime_ms as f64,
            bytes_received: rx as f64,
            bytes_sent: tx as f64,
            datagrams_received: s.datagrams_received as f64,
            datagrams_sent: s.datagrams_sent as f64,
            datagrams_dropped: s.datagrams_dropped as f64,
            webtransport_sessions_active: s.webtransport_sessions_active as f64,
            webtransport_streams_active: self
                .inner
                .shared
                .wt
                .as_ref()
                .map_or(0, |hub| hub.counts().1) as f64,
            requests_rejected: s.requests_rejected as f64,
            connection_errors: s.connection_errors as f64,
        }
    }

    /// Graceful stop (GOAWAY, drain, close) or, with `force`, close everything now.
    #[napi]
    pub async fn stop(&self, force: bool) -> Result<()> {
        let server = self.inner.clone();
        // Run on the runtime so a stop never depends on the caller's executor.
        tokio::spawn(async move { server.stop(force).await })
            .await
            .map_err(|e| Error::from_reason(format!("[ERR_H3_INTERNAL] stop failed: {e}")))
    }
}

/// Create and bind a server. `on_request(batch)` gets a flat array, 11 cells per request:
/// `id, method, url, headers, body, routeIndex, params, generation, streaming (0/1), connId,
/// streamId`; `on_datagram(batch)` 4 cells per datagram: `connId, requestId (-1 for
/// quicDatagram), streamId, payload`;
/// and `on_abort(id)` are called on the JS thread; neither may throw (index.js guards them).
#[napi]
pub fn create_native_server(
    options: NativeServerOptions,
    on_request: Function<'_, Vec<Cell>, ()>,
    on_abort: Function<'_, i64, ()>,
    on_datagram: Option<Function<'_, Vec<Cell>, ()>>,
) -> Result<NativeServer> {
    let table = route_table(options.routes).map_err(to_js)?;
    let raw = RawOptions {
        port: options.port,
        hostname: options.hostname.clone(),
        max_request_body_size: options.max_request_body_size,
        idle_timeout: options.idle_timeout,
        max_connections: options.max_connections,
        max_concurrent_streams: options.max_concurrent_streams,
        max_header_list_size: options.max_header_list_size,
        reuse_port: options.reuse_port,
    };
    let mut config =
        ServerConfig::build(&raw, table.any_datagram(), table.any_webtransport()).map_err(to_js)?;
    config.quic_datagram_handler = options.quic_datagram.unwrap_or(false);
    let (identity, generated) = match (options.cert, options.key) {
        (Some(c), Some(k)) => (Identity::from_pem(&pem(c), &pem(k)).map_err(to_js)?, false),
        (None, None) => {
            let names: Vec<String> = options.hostname.into_iter().collect();
            (Identity::self_signed(&names).map_err(to_js)?, true)
        }
        _ => {
            return Err(to_js(H3Error::Tls(
                "tls needs both cert and key (or omit tls for a self-signed certificate)".into(),
            )))
        }
    };
    let requests = Arc::new(Batch::default());
    let drain = requests.clone();
    let on_batch: BatchTsfn = on_request
        .build_threadsafe_function::<()>()
        .weak::<true>()
        .callee_handled::<false>()
        .build_callback(move |_| Ok(request_cells(drain.take())))?;
    let datagrams = Arc::new(Batch::default());
    let drain = datagrams.clone();
    let on_datagrams: Option<BatchTsfn> = match on_datagram {
        Some(f) => Some(
            f.build_threadsafe_function::<()>()
                .weak::<true>()
                .callee_handled::<false>()
                .build_callback(move |_| Ok(datagram_cells(drain.take())))?,
        ),
        None => None,
    };
    let on_abort: AbortTsfn = on_abort
        .build_threadsafe_function::<i64>()
        .weak::<true>()
        .callee_handled::<false>()
        .build()?;
    let routing = Routing {
        table,
        generation: 1,
        has_fallback: options.has_fallback,
    };
    let dispatcher = Box::new(JsDispatcher {
        requests,
        on_batch,
        on_abort,
        datagrams,
        on_datagrams,
    });
    let server = napi::bindgen_prelude::within_runtime_if_available(|| {
        Server::start(config, &identity, routing, dispatcher)
    })
    .map_err(to_js)?;
    Ok(NativeServer {
        inner: Arc::new(server),
        certificate_hash: Some(identity.leaf_sha256.to_vec()),
        certificate_pem: generated.then(|| identity.leaf_pem()),
    })
}
