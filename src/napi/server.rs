//! The napi edge for the server: JS options in, threadsafe calls out, errors converted once.

use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::answer_batch::{complete_cmd, respond_batch_fn};
use super::batch::{request_args, request_cells, Batch, Spread, MAX_ARGS};
use super::convert::{
    body_bytes, connection_id, copy_bytes, header_pairs, peer, request_id, to_js, JsBytes,
    PeerAddress,
};
use super::datagram_batch::{send_batch, DatagramPack, DatagramQueue};
use super::server_options::{route_table, NativeRoute, NativeServerOptions};
use super::teardown::{run_blocking, stop_on_teardown, EXIT_WAIT};
use super::tls_options::{current_hash, server_tls};
use super::wake::call_after_this_tick;
use super::webtransport::NativeWt;
use super::write_acks::{ack_batch, AckBatch};
use crate::config::ServerConfig;
use crate::error::H3Error;
use crate::ids::{RequestId, StreamId};
use crate::server::response::ResponseCmd;
use crate::server::{datagrams, ActiveRoutes, Dispatcher, RequestHead, Server};
use crate::tls::CertResolver;
use crate::transport::body::BodyEvent;
use crate::transport::datagram::Datagram;
use crate::transport::write_ack::WriteAck;

/// Weak (never keeps the process alive by itself; index.js holds a ref'able handle instead),
/// not callee-handled, unbounded queue (bounded upstream by stream limits).
type BatchTsfn = ThreadsafeFunction<(), (), Spread, Status, false, true, 0>;
/// Received datagrams, packed (see datagram_batch.rs).
type DatagramTsfn = ThreadsafeFunction<(), (), DatagramPack, Status, false, true, 0>;
type AbortTsfn = ThreadsafeFunction<i64, (), i64, Status, false, true, 0>;

struct JsDispatcher {
    requests: Arc<Batch<RequestHead>>,
    on_batch: Arc<BatchTsfn>,
    on_abort: AbortTsfn,
    datagrams: Arc<DatagramQueue>,
    on_datagrams: Option<Arc<DatagramTsfn>>,
}

impl Dispatcher for JsDispatcher {
    fn request(&self, head: RequestHead) -> bool {
        if self.on_batch.aborted() {
            return false;
        }
        // Requests are bounded upstream (streams per connection × connections).
        if self.requests.push(head, usize::MAX) == Some(true) {
            let tsfn = self.on_batch.clone();
            call_after_this_tick(move || {
                tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
            });
        }
        true
    }
    fn abort(&self, id: RequestId) {
        let _ = self
            .on_abort
            .call(id.0 as i64, ThreadsafeFunctionCallMode::NonBlocking);
    }
    fn datagram(&self, d: Datagram) -> bool {
        let Some(tsfn) = &self.on_datagrams else {
            return false;
        };
        // A burst of packets carries many datagrams: one JS call after the burst takes them all.
        let Some(first) = self.datagrams.push(d) else {
            return false;
        };
        if first {
            if tsfn.aborted() {
                return false;
            }
            let tsfn = tsfn.clone();
            call_after_this_tick(move || {
                tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
            });
        }
        true
    }
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
    /// Requests that arrived in 0-RTT (`allow0RTT`): served, or answered 425 when unsafe.
    pub early_requests: f64,
}

#[napi]
pub struct NativeServer {
    pub(super) inner: Arc<Server>,
    /// The certificates by SNI; `reloadTls` swaps them.
    pub(super) certs: Arc<CertResolver>,
    certificate_pem: Option<String>,
    /// Where `write`'s acknowledgements gather for JS.
    acks: Arc<AckBatch>,
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
        Some(current_hash(&self.certs))
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
        self.complete(id, status, headers, body.map(body_bytes))
    }

    fn complete(&self, id: i64, status: u32, headers: Vec<String>, body: Option<Bytes>) -> bool {
        let cmd = complete_cmd(status, headers, body);
        self.inner.state.command(request_id(id), cmd).is_ok()
    }

    /// The function that takes many complete responses in one call (answer_batch.rs); JS
    /// fetches it once per server.
    #[napi(ts_return_type = "(...cells: unknown[]) => void")]
    pub fn respond_batch_fn<'env>(&self, env: &'env Env) -> Result<Function<'env, (), ()>> {
        respond_batch_fn(env, Arc::downgrade(&self.inner))
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
        self.inner.state.command(request_id(id), cmd).is_ok()
    }

    /// Queue one chunk of a streamed response. Its acknowledgement goes to the `listenAcks`
    /// callback once QUIC took it (ok 1), or when it cannot be sent (ok 0: the peer stopped
    /// reading, or the request is gone): exactly one per call, in call order per request. The
    /// chunk is copied and queued before this returns, so chunks go out in call order.
    #[napi(ts_args_type = "id: number, chunk: string | Buffer")]
    pub fn write(&self, id: i64, chunk: Unknown<'_>) -> Result<()> {
        let chunk = copy_bytes(chunk)?;
        let id = request_id(id);
        let ack = WriteAck::new(id, self.acks.clone());
        // A request already gone drops the command, and with it the ack: reported as failed.
        let _ = self
            .inner
            .state
            .command(id, ResponseCmd::Data { chunk, ack });
        Ok(())
    }

    /// Where the acknowledgements of `write` go: `f(cells)` with `requestId, ok` pairs, on the
    /// JS thread, for all that came in since JS last ran. Called once, right after creation.
    #[napi(ts_args_type = "f: (cells: number[]) => void")]
    pub fn listen_acks(&self, f: Function<'_, Vec<i64>, ()>) -> Result<()> {
        self.acks.listen(f)
    }

    /// End a streamed response, with optional trailers (flat name/value list).
    #[napi]
    pub fn end(&self, id: i64, trailers: Option<Vec<String>>) -> bool {
        let cmd = ResponseCmd::End {
            trailers: header_pairs(trailers.unwrap_or_default()),
        };
        self.inner.state.command(request_id(id), cmd).is_ok()
    }

    /// Next chunk of a streaming request body: a Buffer, then at the end an array of trailer
    /// name/value pairs (possibly empty). Rejects with ERR_H3_STREAM_RESET,
    /// ERR_H3_BODY_TOO_LARGE or ERR_H3_CONNECTION_LOST.
    #[napi(ts_return_type = "Promise<Buffer | string[]>")]
    pub async fn read_body(&self, id: i64) -> Result<Either<JsBytes, Vec<String>>> {
        let rx = self.inner.state.pull_body(request_id(id)).map_err(to_js)?;
        match rx.await {
            Ok(BodyEvent::Chunk(pieces)) => Ok(Either::A(JsBytes(pieces))),
            Ok(BodyEvent::End(trailers)) => Ok(Either::B(trailers)),
            Ok(BodyEvent::Error(e)) => Err(to_js(e)),
            Err(_) => Err(to_js(H3Error::UnknownRequest(request_id(id)))),
        }
    }

    /// The next chunk of a streaming request body if Rust already read it ahead, else null (then
    /// `readBody`): no promise and no wait for the runtime thread.
    #[napi]
    pub fn read_body_ready(&self, id: i64) -> Option<JsBytes> {
        self.inner.state.ready_body(request_id(id)).map(JsBytes)
    }

    /// The handler gave up on a streaming body: stop reading it (the peer gets STOP_SENDING).
    #[napi]
    pub fn cancel_body(&self, id: i64) {
        self.inner.state.cancel_body(request_id(id))
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
        datagrams::send(
            &self.inner.state,
            connection_id(conn_id),
            stream_id.map(|s| StreamId(s as u64)),
            &payload,
        )
        .map_err(to_js)
    }

    /// Replies collected while JS handled a datagram batch: `meta` holds `connId, streamId
    /// (-1: bare QUIC datagram), length` per reply, `payloads` the payloads back to back. JS
    /// checked the sizes; a datagram that no longer fits, or whose connection is gone, is
    /// dropped and counted.
    #[napi]
    pub fn send_datagrams(&self, meta: Float64Array, payloads: Buffer) {
        send_batch(&self.inner.state, &meta, &payloads)
    }

    /// Largest datagram payload the connection accepts right now (null when it has none).
    #[napi]
    pub fn max_datagram_size(&self, conn_id: i64, stream_id: Option<i64>) -> Option<u32> {
        datagrams::max_size(
            &self.inner.state,
            connection_id(conn_id),
            stream_id.map(|s| StreamId(s as u64)),
        )
        .map(|n| n as u32)
    }

    /// Reset the response stream (the handler's body stream failed mid-way).
    #[napi]
    pub fn abort(&self, id: i64) -> bool {
        self.inner
            .state
            .command(request_id(id), ResponseCmd::Abort)
            .is_ok()
    }

    /// WebTransport sessions and streams of this server (null when no route takes WebTransport).
    #[napi]
    pub fn wt(&self) -> Option<NativeWt> {
        self.inner.state.webtransport.clone().map(NativeWt::new)
    }

    /// Swap the route table; returns the new handler generation.
    #[napi]
    pub fn reload(&self, routes: Vec<NativeRoute>, has_fallback: bool) -> Result<u32> {
        let table = route_table(routes).map_err(to_js)?;
        Ok(self.inner.state.set_routes(table, has_fallback))
    }

    #[napi]
    pub fn request_ip(&self, id: i64) -> Option<PeerAddress> {
        self.inner.state.request_peer(request_id(id)).map(peer)
    }

    #[napi]
    pub fn stats(&self) -> ServerStats {
        let state = &self.inner.state;
        let s = state.stats.snapshot();
        let (live_rx, live_tx) = state.live_udp_bytes();
        let (rx, tx) = (s.bytes_received + live_rx, s.bytes_sent + live_tx);
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
            webtransport_streams_active: state.webtransport.as_ref().map_or(0, |t| t.counts().1)
                as f64,
            requests_rejected: s.requests_rejected as f64,
            connection_errors: s.connection_errors as f64,
            early_requests: s.early_requests as f64,
        }
    }

    /// Forced stop for `process.exit()`, which skips environment teardown: waits only until the
    /// CONNECTION_CLOSE frames are out (see lib/exit.js).
    #[napi]
    pub fn close_now(&self) {
        let server = self.inner.clone();
        run_blocking(async move { server.stop(true).await }, EXIT_WAIT);
    }

    /// Graceful stop (GOAWAY, drain, close) or, with `force`, close everything now.
    #[napi]
    pub async fn stop(&self, force: bool) -> Result<()> {
        let server = self.inner.clone();
        // Run on the runtime so a stop never depends on the caller's executor.
        tokio::spawn(async move { server.stop(force).await })
            .await
            .map_err(|e| to_js(H3Error::Internal(format!("stop failed: {e}"))))
    }
}

impl JsDispatcher {
    /// Threadsafe functions over the JS callbacks; each drains its batch when it runs.
    fn new(
        on_request: Function<'_, Spread, ()>,
        on_abort: Function<'_, i64, ()>,
        on_datagram: Option<Function<'_, DatagramPack, ()>>,
    ) -> Result<Self> {
        let requests = Arc::new(Batch::default());
        let drain = requests.clone();
        // A batch over MAX_ARGS is delivered in several calls: the callback asks for the next.
        let again: Arc<OnceLock<Weak<BatchTsfn>>> = Arc::default();
        let next = again.clone();
        let on_batch: BatchTsfn = on_request
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_| {
                let (heads, more) = drain.take_within(MAX_ARGS, request_args);
                if let Some(tsfn) = more.then(|| next.get().and_then(Weak::upgrade)).flatten() {
                    tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
                }
                Ok(request_cells(heads))
            })?;
        let on_batch = Arc::new(on_batch);
        let _ = again.set(Arc::downgrade(&on_batch));
        let datagrams = Arc::new(DatagramQueue::default());
        let drain = datagrams.clone();
        let on_datagrams: Option<Arc<DatagramTsfn>> = match on_datagram {
            Some(f) => Some(Arc::new(
                f.build_threadsafe_function::<()>()
                    .weak::<true>()
                    .callee_handled::<false>()
                    .build_callback(move |_| Ok(drain.take()))?,
            )),
            None => None,
        };
        let on_abort: AbortTsfn = on_abort
            .build_threadsafe_function::<i64>()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        Ok(JsDispatcher {
            requests,
            on_batch,
            on_abort,
            datagrams,
            on_datagrams,
        })
    }
}

/// Create and bind a server. `on_request(...cells)` gets a batch as its arguments, the cells
/// named by `requestBatchFields()` per request (lists spread behind their length); `on_datagram(batch)` the cells named by
/// `datagramBatchFields()` per datagram; `on_abort(id)` the id of a request the peer gave up
/// on. All run on the JS thread; none may throw (index.js guards them).
#[napi]
pub fn create_native_server(
    env: Env,
    options: NativeServerOptions,
    #[napi(ts_arg_type = "(...cells: unknown[]) => void")] on_request: Function<'_, Spread, ()>,
    on_abort: Function<'_, i64, ()>,
    on_datagram: Option<Function<'_, DatagramPack, ()>>,
) -> Result<NativeServer> {
    let raw = options.raw();
    let table = route_table(options.routes).map_err(to_js)?;
    let mut config =
        ServerConfig::build(&raw, table.any_datagram(), table.any_webtransport()).map_err(to_js)?;
    config.quic_datagram_handler = options.quic_datagram.unwrap_or(false);
    config.qlog_dir = options.qlog_dir.clone();
    let (tls, generated_pem) = server_tls(options.tls, options.hostname).map_err(to_js)?;
    let dispatcher = Box::new(JsDispatcher::new(on_request, on_abort, on_datagram)?);
    let routes = ActiveRoutes {
        table,
        generation: 1,
        has_fallback: options.has_fallback,
    };
    let server = napi::bindgen_prelude::within_runtime_if_available(|| {
        Server::start(config, &tls, routes, dispatcher)
    })
    .map_err(to_js)?;
    let server = Arc::new(server);
    stop_on_teardown(
        &env,
        &server,
        |server| async move { server.stop(true).await },
    )?;
    Ok(NativeServer {
        inner: server,
        certs: tls.certs,
        certificate_pem: generated_pem,
        acks: Arc::new(ack_batch()),
    })
}
