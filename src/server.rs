//! The QUIC endpoint, its accept loop, shared server state and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};

use crate::config::{ServerConfig, CONNECTION_RECEIVE_WINDOW, STREAM_RECEIVE_WINDOW};
use crate::error::{H3Error, Result};
use crate::response::ResponseCmd;
use crate::router::{RouteMatch, RouteTable};
use crate::stats::Stats;
use crate::tls::Identity;

/// HTTP/3 H3_NO_ERROR, used for orderly closes.
pub const H3_NO_ERROR: quinn::VarInt = quinn::VarInt::from_u32(0x100);

/// A request head as handed to JS.
#[derive(Debug)]
pub struct RequestHead {
    pub id: u64,
    pub conn_id: u64,
    pub method: String,
    /// `https://authority/path?query`
    pub url: String,
    /// Flat `[name, value, ...]`, names lower-case.
    pub headers: Vec<String>,
    pub route: Option<RouteMatch>,
    pub generation: u32,
    /// The whole body for buffered routes (`None` when empty).
    pub body: Option<Vec<u8>>,
    /// Streaming route: the body is pulled with [`Shared::pull_body`].
    pub streaming: bool,
    /// QUIC stream id of the request (HTTP datagrams name it).
    pub stream_id: u64,
    /// A WebTransport session request (extended CONNECT): JS accepts or rejects it.
    pub webtransport: bool,
}

/// How the protocol side reaches the JS side. Implemented at the napi edge with
/// threadsafe functions; kept as a trait so the protocol code has no napi types.
pub trait Dispatcher: Send + Sync + 'static {
    /// Deliver a request; false when JS can no longer be reached.
    fn request(&self, head: RequestHead) -> bool;
    /// The peer went away (stream reset or connection closed) before JS answered.
    fn abort(&self, id: u64);
    /// Deliver a datagram; false when it was dropped (JS is behind or unreachable).
    fn datagram(&self, d: crate::datagram::Datagram) -> bool;
}

/// Routes plus the handler generation JS uses to find the matching handler array.
pub struct Routing {
    pub table: RouteTable,
    pub generation: u32,
    /// A top-level `fetch` exists: unmatched requests go to JS instead of a 404.
    pub has_fallback: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Draining,
    Closed,
}

pub(crate) struct PendingRequest {
    pub tx: mpsc::UnboundedSender<ResponseCmd>,
    pub conn_id: u64,
    /// Streaming routes: where JS asks for the next body chunk. Dropping it tells the body
    /// reader that JS is done with the body (STOP_SENDING goes to the peer if it was not read).
    pub body: Option<mpsc::UnboundedSender<BodyPull>>,
}

pub use crate::body::{BodyEvent, BodyPull};

pub struct Shared {
    pub config: ServerConfig,
    pub routing: RwLock<Arc<Routing>>,
    pub stats: Arc<Stats>,
    /// WebTransport sessions and streams (when any route takes WebTransport).
    pub wt: Option<Arc<crate::webtransport::Hub>>,
    pub dispatcher: Box<dyn Dispatcher>,
    pub(crate) pending: Mutex<HashMap<u64, PendingRequest>>,
    pub(crate) conns: Mutex<HashMap<u64, quinn::Connection>>,
    pub(crate) next_request: AtomicU64,
    pub(crate) next_conn: AtomicU64,
    next_generation: AtomicU32,
    pub(crate) state: watch::Sender<RunState>,
    /// Signalled whenever a connection ends, so a graceful stop can wait for the last one.
    pub(crate) conn_ended: Notify,
}

impl Shared {
    pub fn routing(&self) -> Arc<Routing> {
        match self.routing.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set_routes(&self, table: RouteTable, has_fallback: bool) -> u32 {
        let generation = self.next_generation.fetch_add(1, Relaxed) + 1;
        let routing = Arc::new(Routing {
            table,
            generation,
            has_fallback,
        });
        match self.routing.write() {
            Ok(mut r) => *r = routing,
            Err(poisoned) => *poisoned.into_inner() = routing,
        }
        generation
    }

    pub(crate) fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, PendingRequest>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lock_conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, quinn::Connection>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send a command from JS to the task that owns request `id`.
    pub fn command(&self, id: u64, cmd: ResponseCmd) -> Result<()> {
        let pending = self.lock_pending();
        let p = pending.get(&id).ok_or(H3Error::UnknownRequest(id))?;
        p.tx.send(cmd).map_err(|_| H3Error::UnknownRequest(id))
    }

    /// Ask for the next chunk of a streaming request body.
    pub fn pull_body(&self, id: u64) -> Result<tokio::sync::oneshot::Receiver<BodyEvent>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pending = self.lock_pending();
        let body = pending
            .get(&id)
            .and_then(|p| p.body.as_ref())
            .ok_or(H3Error::UnknownRequest(id))?;
        body.send(tx).map_err(|_| H3Error::UnknownRequest(id))?;
        Ok(rx)
    }

    /// JS cancelled the body stream: stop reading, tell the peer to stop sending.
    pub fn cancel_body(&self, id: u64) {
        if let Some(p) = self.lock_pending().get_mut(&id) {
            p.body = None;
        }
    }

    /// Remote address of the connection that carried request `id`.
    pub fn request_peer(&self, id: u64) -> Option<SocketAddr> {
        let conn_id = self.lock_pending().get(&id).map(|p| p.conn_id)?;
        self.connection_peer(conn_id)
    }

    pub fn connection_peer(&self, conn_id: u64) -> Option<SocketAddr> {
        self.lock_conns().get(&conn_id).map(|c| c.remote_address())
    }

    pub fn state(&self) -> RunState {
        *self.state.borrow()
    }
}

/// A running server: the endpoint plus the shared state its tasks use.
pub struct Server {
    pub shared: Arc<Shared>,
    /// Taken by `stop()`, so the UDP socket is released as soon as the server is stopped
    /// rather than when JS garbage-collects the server object.
    endpoint: Mutex<Option<quinn::Endpoint>>,
    pub local_addr: SocketAddr,
}

fn bind_socket(cfg: &ServerConfig) -> Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let bind_err = |source| H3Error::Bind {
        addr: cfg.addr.to_string(),
        source,
    };
    let socket = Socket::new(
        Domain::for_address(cfg.addr),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(bind_err)?;
    if cfg.addr.is_ipv6() {
        // "::" means dual stack.
        socket.set_only_v6(false).map_err(bind_err)?;
    }
    if cfg.reuse_port {
        #[cfg(unix)]
        socket.set_reuse_port(true).map_err(bind_err)?;
    }
    // Larger kernel buffers absorb bursts; failure here is not fatal.
    let _ = socket.set_recv_buffer_size(2 * 1024 * 1024);
    let _ = socket.set_send_buffer_size(2 * 1024 * 1024);
    socket.bind(&cfg.addr.into()).map_err(bind_err)?;
    Ok(socket.into())
}

fn transport_config(cfg: &ServerConfig) -> Result<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(cfg.max_concurrent_streams.into());
    // Control, QPACK encoder/decoder and a few extension streams.
    t.max_concurrent_uni_streams(
        if cfg.enable_webtransport {
            100u32
        } else {
            8u32
        }
        .into(),
    );
    t.stream_receive_window(STREAM_RECEIVE_WINDOW.into());
    t.receive_window(CONNECTION_RECEIVE_WINDOW.into());
    t.send_window(CONNECTION_RECEIVE_WINDOW.into());
    let idle = if cfg.idle_timeout.is_zero() {
        None
    } else {
        Some(
            quinn::IdleTimeout::try_from(cfg.idle_timeout)
                .map_err(|e| H3Error::InvalidArg(format!("idleTimeout: {e}")))?,
        )
    };
    t.max_idle_timeout(idle);
    if cfg.enable_datagram || cfg.quic_datagram_handler {
        t.datagram_receive_buffer_size(Some(1024 * 1024));
        t.datagram_send_buffer_size(1024 * 1024);
    } else {
        t.datagram_receive_buffer_size(None);
    }
    Ok(t)
}

impl Server {
    /// Bind synchronously (must run inside the tokio runtime context) and start accepting.
    pub fn start(
        config: ServerConfig,
        identity: &Identity,
        routing: Routing,
        dispatcher: Box<dyn Dispatcher>,
    ) -> Result<Server> {
        let crypto = crate::tls::server_crypto(identity)?;
        let mut server_config = quinn::ServerConfig::with_crypto(crypto);
        server_config.transport_config(Arc::new(transport_config(&config)?));
        let socket = bind_socket(&config)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| H3Error::Bind {
            addr: config.addr.to_string(),
            source,
        })?;
        let local_addr = endpoint.local_addr()?;
        let (state, _) = watch::channel(RunState::Running);
        let generation = routing.generation;
        let stats = Arc::new(Stats::default());
        let wt = if config.enable_webtransport {
            Some(crate::webtransport::Hub::new(stats.clone())?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            config,
            routing: RwLock::new(Arc::new(routing)),
            stats,
            wt,
            dispatcher,
            pending: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            next_conn: AtomicU64::new(1),
            next_generation: AtomicU32::new(generation),
            state,
            conn_ended: Notify::new(),
        });
        tokio::spawn(accept_loop(endpoint.clone(), shared.clone()));
        Ok(Server {
            shared,
            endpoint: Mutex::new(Some(endpoint)),
            local_addr,
        })
    }

    /// Graceful: GOAWAY every connection, let in-flight requests finish, then close.
    /// Forced: close every connection now (in-flight requests are aborted).
    pub async fn stop(&self, force: bool) {
        let shared = &self.shared;
        if shared.state() == RunState::Closed {
            return;
        }
        shared.state.send_replace(RunState::Draining);
        if !force {
            loop {
                let ended = shared.conn_ended.notified();
                if shared.lock_conns().is_empty() {
                    break;
                }
                ended.await;
            }
        }
        shared.state.send_replace(RunState::Closed);
        let endpoint = self
            .endpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(endpoint) = endpoint {
            endpoint.close(H3_NO_ERROR, b"server stopped");
            // Flush the CONNECTION_CLOSE frames; bounded so a stop never hangs.
            let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
            drop(endpoint);
            self.wait_port_released().await;
        }
        // Anything JS still holds can no longer be answered.
        let ids: Vec<u64> = shared.lock_pending().keys().copied().collect();
        for id in ids {
            shared.dispatcher.abort(id);
        }
    }
}

/// Wait until the run state satisfies `f` (or the server is gone). Returns no guard, so the
/// future stays `Send` across the caller's awaits.
pub(crate) async fn wait_state(rx: &mut watch::Receiver<RunState>, f: impl Fn(RunState) -> bool) {
    let _ = rx.wait_for(|s| f(*s)).await;
}

impl Server {
    /// quinn's endpoint driver lets go of the socket a moment after the last handle; wait for
    /// that (bounded), so a server started on the same port right after `stop()` can bind.
    async fn wait_port_released(&self) {
        if self.shared.config.reuse_port {
            return;
        }
        for _ in 0..50 {
            if std::net::UdpSocket::bind(self.local_addr).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    let mut state = shared.state.subscribe();
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => i,
            _ = wait_state(&mut state, |s| s != RunState::Running) => None,
        };
        let Some(incoming) = incoming else { break };
        let active = shared.stats.connections_active.load(Relaxed);
        if active >= u64::from(shared.config.max_connections) {
            shared.stats.connection_errors.fetch_add(1, Relaxed);
            incoming.refuse();
            continue;
        }
        tokio::spawn(crate::connection::serve(incoming, shared.clone()));
    }
    // While draining, refuse newcomers instead of letting them time out.
    while shared.state() == RunState::Draining {
        tokio::select! {
            i = endpoint.accept() => match i {
                Some(incoming) => incoming.refuse(),
                None => break,
            },
            _ = wait_state(&mut state, |s| s == RunState::Closed) => break,
        }
    }
}
