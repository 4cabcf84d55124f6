//! What one connection's request tasks share, and the in-flight count a graceful close waits
//! on.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::ids::ConnectionId;
use crate::transport::datagram::DatagramRoutes;
use crate::transport::early::EarlyStreams;
use crate::transport::stops::Stops;
use crate::webtransport::ConnSessions;

/// Per-connection context shared with its request tasks.
pub struct ConnCtx {
    pub id: ConnectionId,
    pub quic: quinn::Connection,
    /// STOP_SENDING watchers of this connection's request streams.
    pub stops: Arc<Stops>,
    /// Request streams opened in 0-RTT (filled only with `allow0RTT`).
    pub early: Arc<EarlyStreams>,
    /// Request streams that take HTTP datagrams.
    pub datagram_routes: Arc<DatagramRoutes>,
    /// WebTransport sessions of this connection (when the server takes WebTransport).
    pub sessions: Option<Arc<ConnSessions>>,
    inflight: AtomicUsize,
    idle: Notify,
    /// Set when the connection's task has ended, just before it sweeps the pending requests.
    ended: AtomicBool,
}

impl ConnCtx {
    pub fn new(
        id: ConnectionId,
        quic: quinn::Connection,
        datagram_routes: Arc<DatagramRoutes>,
        sessions: Option<Arc<ConnSessions>>,
    ) -> Self {
        ConnCtx {
            id,
            quic,
            stops: Arc::new(Stops::default()),
            early: Arc::default(),
            datagram_routes,
            sessions,
            inflight: AtomicUsize::new(0),
            idle: Notify::new(),
            ended: AtomicBool::new(false),
        }
    }

    /// The connection's task ended: its pending requests are (about to be) swept. A request
    /// registers in the pending table (under its mutex) before it looks here, and the sweep
    /// sets this before it takes that mutex, so each request is either swept or sees this.
    pub fn end(&self) {
        self.ended.store(true, Relaxed);
    }

    pub fn ended(&self) -> bool {
        self.ended.load(Relaxed)
    }

    /// Resolves once no request of this connection is in flight.
    pub async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.inflight.load(Relaxed) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Counts a request as in flight on its connection for as long as it lives.
pub struct InflightGuard(Arc<ConnCtx>);

impl InflightGuard {
    pub fn new(ctx: Arc<ConnCtx>) -> Self {
        ctx.inflight.fetch_add(1, Relaxed);
        InflightGuard(ctx)
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Relaxed) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
