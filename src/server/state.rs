//! What every task of a server shares: settings, the active routes, pending requests and
//! connections by id, the run state, and the [`Dispatcher`] that reaches JS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use tokio::sync::{oneshot, watch, Notify};

use super::body_reader::BodyTap;
use super::commands::CommandSender;
use super::response::ResponseCmd;
use super::router::{RouteMatch, RouteTable};
use crate::config::ServerConfig;
use crate::error::{H3Error, Result};
use crate::ids::{ConnectionId, RequestId, StreamId};
use crate::stats::Stats;
use crate::sync::{self, lock};
use crate::transport::body::BodyEvent;
use crate::transport::datagram::Datagram;
use crate::webtransport::HandleTable;

/// How a request's body reaches JS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// The whole body arrives with the head.
    Buffered,
    /// JS pulls the body with [`ServerState::pull_body`].
    Streaming,
    /// A WebTransport session request (extended CONNECT): JS accepts or rejects it.
    WebTransport,
}

/// A request head as handed to JS.
#[derive(Debug)]
pub struct RequestHead {
    pub id: RequestId,
    pub conn_id: ConnectionId,
    pub method: String,
    /// `https://authority/path?query`
    pub url: String,
    /// Flat `[name, value, ...]`, names lower-case.
    pub headers: Vec<String>,
    pub route: Option<RouteMatch>,
    pub generation: u32,
    /// The whole body for buffered routes (`None` when empty).
    pub body: Option<Vec<u8>>,
    pub kind: RequestKind,
    /// QUIC stream id of the request (HTTP datagrams name it).
    pub stream_id: StreamId,
}

/// How the protocol side reaches the JS side. Implemented at the napi edge with
/// threadsafe functions; kept as a trait so the protocol code has no napi types.
pub trait Dispatcher: Send + Sync + 'static {
    /// Deliver a request; false when JS can no longer be reached.
    fn request(&self, head: RequestHead) -> bool;
    /// The peer went away (stream reset or connection closed) before JS answered.
    fn abort(&self, id: RequestId);
    /// Deliver a datagram; false when it was dropped (JS is behind or unreachable).
    fn datagram(&self, d: Datagram) -> bool;
}

/// The route table in use, plus the handler generation JS uses to find the matching handler
/// array.
pub struct ActiveRoutes {
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

/// Wait until the run state satisfies `f` (or the server is gone). Returns no guard, so the
/// future stays `Send` across the caller's awaits.
pub(crate) async fn wait_state(rx: &mut watch::Receiver<RunState>, f: impl Fn(RunState) -> bool) {
    let _ = rx.wait_for(|s| f(*s)).await;
}

pub(crate) struct PendingRequest {
    pub tx: CommandSender,
    pub conn_id: ConnectionId,
    /// Streaming routes: where JS asks for the next body chunk. Dropping it tells the body
    /// reader that JS is done with the body (STOP_SENDING goes to the peer if it was not read).
    pub body: Option<BodyTap>,
}

/// Removes a request from the pending table however its task ends.
pub(crate) struct PendingGuard<'a> {
    state: &'a ServerState,
    id: RequestId,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.state.lock_pending().remove(&self.id);
    }
}

pub struct ServerState {
    pub config: ServerConfig,
    routes: RwLock<Arc<ActiveRoutes>>,
    pub stats: Arc<Stats>,
    /// WebTransport sessions and streams (when any route takes WebTransport).
    pub webtransport: Option<Arc<HandleTable>>,
    pub dispatcher: Box<dyn Dispatcher>,
    pending: Mutex<HashMap<RequestId, PendingRequest>>,
    conns: Mutex<HashMap<ConnectionId, quinn::Connection>>,
    next_request: AtomicU64,
    next_conn: AtomicU64,
    next_generation: AtomicU32,
    pub(crate) run_state: watch::Sender<RunState>,
    /// Signalled whenever a connection ends, so a graceful stop can wait for the last one.
    pub(crate) conn_ended: Notify,
    /// Requests being served that arrived in 0-RTT.
    pub early: super::early_data::EarlyRequests,
}

impl ServerState {
    pub(crate) fn new(
        config: ServerConfig,
        routes: ActiveRoutes,
        stats: Arc<Stats>,
        webtransport: Option<Arc<HandleTable>>,
        dispatcher: Box<dyn Dispatcher>,
    ) -> Self {
        let generation = routes.generation;
        ServerState {
            config,
            routes: RwLock::new(Arc::new(routes)),
            stats,
            webtransport,
            dispatcher,
            pending: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            next_conn: AtomicU64::new(1),
            next_generation: AtomicU32::new(generation),
            run_state: watch::channel(RunState::Running).0,
            conn_ended: Notify::new(),
            early: Default::default(),
        }
    }

    pub fn routes(&self) -> Arc<ActiveRoutes> {
        sync::read(&self.routes).clone()
    }

    pub fn set_routes(&self, table: RouteTable, has_fallback: bool) -> u32 {
        let generation = self.next_generation.fetch_add(1, Relaxed) + 1;
        *sync::write(&self.routes) = Arc::new(ActiveRoutes {
            table,
            generation,
            has_fallback,
        });
        generation
    }

    pub(crate) fn next_request_id(&self) -> RequestId {
        RequestId(self.next_request.fetch_add(1, Relaxed))
    }

    pub(crate) fn lock_pending(&self) -> MutexGuard<'_, HashMap<RequestId, PendingRequest>> {
        lock(&self.pending)
    }

    /// Register a request JS will answer; it is forgotten when the guard drops.
    pub(crate) fn add_pending(&self, id: RequestId, p: PendingRequest) -> PendingGuard<'_> {
        self.lock_pending().insert(id, p);
        PendingGuard { state: self, id }
    }

    pub(crate) fn lock_conns(&self) -> MutexGuard<'_, HashMap<ConnectionId, quinn::Connection>> {
        lock(&self.conns)
    }

    /// Register a connection under a fresh id.
    pub(crate) fn add_conn(&self, conn: quinn::Connection) -> ConnectionId {
        let id = ConnectionId(self.next_conn.fetch_add(1, Relaxed));
        self.lock_conns().insert(id, conn);
        id
    }

    /// The connection `id`, if it is still open.
    pub fn conn(&self, id: ConnectionId) -> Option<quinn::Connection> {
        self.lock_conns().get(&id).cloned()
    }

    /// The connection `conn` closed: every request of it still waiting for JS is told so, and
    /// JS is told the client went away. One sweep per closed connection instead of a
    /// `closed()` watcher per request (perf: ~0.6 µs of a "hello" request's runtime time).
    pub(crate) fn abort_requests_of(&self, conn: ConnectionId) {
        let gone: Vec<RequestId> = self
            .lock_pending()
            .iter()
            .filter(|(_, p)| p.conn_id == conn)
            .map(|(id, p)| {
                let _ = p.tx.send(ResponseCmd::Abort);
                *id
            })
            .collect();
        for id in gone {
            self.dispatcher.abort(id);
        }
    }

    /// Send a command from JS to the task that owns request `id`.
    pub fn command(&self, id: RequestId, cmd: ResponseCmd) -> Result<()> {
        let pending = self.lock_pending();
        let p = pending.get(&id).ok_or(H3Error::UnknownRequest(id))?;
        p.tx.send(cmd).map_err(|_| H3Error::UnknownRequest(id))
    }

    /// Ask for the next chunk of a streaming request body.
    pub fn pull_body(&self, id: RequestId) -> Result<oneshot::Receiver<BodyEvent>> {
        let pending = self.lock_pending();
        let body = pending
            .get(&id)
            .and_then(|p| p.body.as_ref())
            .ok_or(H3Error::UnknownRequest(id))?;
        body.pull().ok_or(H3Error::UnknownRequest(id))
    }

    /// The next chunk of a streaming request body if it was already read ahead (`None`: pull).
    pub fn ready_body(&self, id: RequestId) -> Option<Vec<Bytes>> {
        self.lock_pending().get(&id)?.body.as_ref()?.take_ready()
    }

    /// JS cancelled the body stream: stop reading, tell the peer to stop sending.
    pub fn cancel_body(&self, id: RequestId) {
        if let Some(p) = self.lock_pending().get_mut(&id) {
            p.body = None;
        }
    }

    /// Remote address of the connection that carried request `id`.
    pub fn request_peer(&self, id: RequestId) -> Option<SocketAddr> {
        let conn_id = self.lock_pending().get(&id).map(|p| p.conn_id)?;
        self.connection_peer(conn_id)
    }

    pub fn connection_peer(&self, conn_id: ConnectionId) -> Option<SocketAddr> {
        self.lock_conns().get(&conn_id).map(|c| c.remote_address())
    }

    /// UDP bytes (received, sent) of the connections still open.
    pub fn live_udp_bytes(&self) -> (u64, u64) {
        self.lock_conns().values().fold((0, 0), |(rx, tx), c| {
            let s = c.stats();
            (rx + s.udp_rx.bytes, tx + s.udp_tx.bytes)
        })
    }

    pub fn run_state(&self) -> RunState {
        *self.run_state.borrow()
    }
}
