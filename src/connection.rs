//! One task per QUIC connection: the h3 handshake, the request accept loop and graceful close.
//!
//! The driver owns the `h3::server::Connection`; the per-connection datagram reader and the
//! WebTransport registry (`WtConn`) hang off this task.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h3::error::Code;
use tokio::sync::Notify;

use crate::quic::{QuicConn, Stops};
use crate::server::{wait_state, RunState, Shared, H3_NO_ERROR};
use crate::stats::GaugeGuard;
use crate::webtransport::WtConn;

/// Per-connection context shared with its request tasks.
pub struct ConnCtx {
    pub id: u64,
    pub quic: quinn::Connection,
    /// STOP_SENDING watchers of this connection's request streams.
    pub stops: Arc<Stops>,
    /// Request streams that take HTTP datagrams.
    pub datagram_routes: Arc<crate::datagram::Routes>,
    /// WebTransport sessions of this connection (when the server takes WebTransport).
    pub wt: Option<Arc<WtConn>>,
    inflight: AtomicUsize,
    idle: Notify,
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

impl ConnCtx {
    async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.inflight.load(Relaxed) == 0 {
                return;
            }
            idle.await;
        }
    }
}

pub async fn serve(incoming: quinn::Incoming, shared: Arc<Shared>) {
    let conn = match incoming.await {
        Ok(c) => c,
        Err(_) => {
            shared.stats.connection_errors.fetch_add(1, Relaxed);
            return;
        }
    };
    let stats = &shared.stats;
    stats.connections_total.fetch_add(1, Relaxed);
    let _active = GaugeGuard::inc(&stats.connections_active);
    let id = shared.next_conn.fetch_add(1, Relaxed);
    shared.lock_conns().insert(id, conn.clone());
    let datagram_routes: Arc<crate::datagram::Routes> = Arc::default();
    let wt = shared
        .wt
        .as_ref()
        .map(|hub| WtConn::new(hub.clone(), conn.clone(), datagram_routes.clone()));
    let ctx = Arc::new(ConnCtx {
        id,
        quic: conn.clone(),
        stops: Arc::new(Stops::default()),
        datagram_routes,
        wt,
        inflight: AtomicUsize::new(0),
        idle: Notify::new(),
    });

    let datagrams =
        (shared.config.enable_datagram || shared.config.quic_datagram_handler).then(|| {
            tokio::spawn(crate::datagram::read_loop(
                shared.clone(),
                id,
                conn.clone(),
                ctx.datagram_routes.clone(),
            ))
        });

    drive(&shared, &ctx).await;
    if let Some(reader) = datagrams {
        reader.abort();
    }
    if let Some(wt) = &ctx.wt {
        wt.end_all(false);
    }

    shared.lock_conns().remove(&id);
    let s = conn.stats();
    stats.bytes_received.fetch_add(s.udp_rx.bytes, Relaxed);
    stats.bytes_sent.fetch_add(s.udp_tx.bytes, Relaxed);
    shared.conn_ended.notify_waiters();
}

async fn drive(shared: &Arc<Shared>, ctx: &Arc<ConnCtx>) {
    let cfg = &shared.config;
    let mut builder = h3::server::builder();
    builder
        .max_field_section_size(cfg.max_header_list_size)
        .enable_datagram(cfg.enable_datagram)
        .enable_extended_connect(cfg.enable_webtransport)
        .enable_webtransport(cfg.enable_webtransport)
        .max_webtransport_sessions(if cfg.enable_webtransport { 16 } else { 0 })
        .send_grease(true);
    // Non-DATA frames beyond this are refused before h3 buffers them (see guard.rs).
    let frame_limit = 4 * cfg.max_header_list_size + 64 * 1024;
    let quic = QuicConn::server(
        ctx.quic.clone(),
        frame_limit,
        ctx.stops.clone(),
        ctx.wt.clone(),
    );
    let mut h3conn: h3::server::Connection<QuicConn, Bytes> = match builder.build(quic).await {
        Ok(c) => c,
        Err(_) => {
            shared.stats.connection_errors.fetch_add(1, Relaxed);
            return;
        }
    };
    let mut state = shared.state.subscribe();
    let mut draining = false;
    let mut last_id: Option<u64> = None;
    // h3 counts its GOAWAY from the stream it accepted last, which is not the highest one when
    // streams were classified for WebTransport concurrently and came out of order.
    let mut recent_id: Option<u64> = None;
    let mut goaway: Option<u64> = None;
    loop {
        tokio::select! {
            accepted = h3conn.accept() => match accepted {
                Ok(Some(mut resolver)) => {
                    let id = resolver.frame_stream.id().into_inner();
                    if goaway.is_some_and(|g| id >= g) {
                        // Beyond our GOAWAY: the client treats it as unprocessed and retries.
                        h3::quic::SendStream::reset(&mut resolver.frame_stream, Code::H3_REQUEST_REJECTED.value());
                        continue;
                    }
                    last_id = Some(last_id.map_or(id, |l: u64| l.max(id)));
                    recent_id = Some(id);
                    let guard = InflightGuard::new(ctx.clone());
                    tokio::spawn(crate::request::handle(resolver, shared.clone(), ctx.clone(), guard));
                }
                // The peer sent GOAWAY and every request finished.
                Ok(None) => break,
                Err(e) => {
                    // Count only closes we made because the peer broke the protocol; a peer's
                    // own close or an idle timeout is ordinary.
                    if matches!(e, h3::error::ConnectionError::Local { .. }) && !e.is_h3_no_error() {
                        shared.stats.connection_errors.fetch_add(1, Relaxed);
                    }
                    return;
                }
            },
            _ = wait_state(&mut state, |s| s != RunState::Running), if !draining => {
                draining = true;
                // RFC 9114 §5.2: GOAWAY carries the first stream id we will NOT process, i.e.
                // the one after the last request accepted (h3's shutdown(1)); those at or
                // beyond it are refused above.
                goaway = Some(last_id.map_or(0, |l| l + 4));
                let ahead = match (last_id, recent_id) {
                    (Some(l), Some(r)) => ((l - r.min(l)) / 4) as usize,
                    _ => 0,
                };
                if h3conn.shutdown(1 + ahead).await.is_err() {
                    return;
                }
            },
            _ = ctx.wait_idle(), if draining => break,
        }
    }
    ctx.wait_idle().await;
    // close() drops whatever is still unacknowledged, so give the last responses a few round
    // trips to land (or the peer time to close first) before closing.
    let grace = (ctx.quic.rtt() * 4).clamp(Duration::from_millis(50), Duration::from_secs(2));
    let _ = tokio::time::timeout(grace, ctx.quic.closed()).await;
    ctx.quic.close(H3_NO_ERROR, b"");
}
