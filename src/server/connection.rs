//! One task per QUIC connection: the h3 handshake, the request accept loop and graceful close
//! (RFC 9114 §5.2).
//!
//! The driver owns the `h3::server::Connection`; the per-connection datagram reader and the
//! WebTransport session table ([`ConnSessions`]) hang off this task.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h3::error::Code;

use super::conn_ctx::{ConnCtx, InflightGuard};
use super::state::{wait_state, RunState, ServerState};
use super::{datagrams, request};
use crate::proto::headers::H3_NO_ERROR;
use crate::proto::wt_settings;
use crate::stats::GaugeGuard;
use crate::transport::classify::StreamClassifier;
use crate::transport::datagram::DatagramRoutes;
use crate::transport::quic::QuicConn;
use crate::webtransport::ConnSessions;

/// WebTransport sessions per connection we advertise (every dialect's max-sessions setting).
const WT_MAX_SESSIONS: u64 = 16;

/// Which request streams a draining connection still serves. h3 counts its GOAWAY from the
/// stream it accepted last, which is not the highest one when streams were classified for
/// WebTransport concurrently and came out of order; this tracks both.
#[derive(Default)]
struct Goaway {
    /// Highest request stream accepted.
    last: Option<u64>,
    /// Request stream accepted most recently.
    recent: Option<u64>,
    /// First stream id we will not process, once GOAWAY went out.
    sent: Option<u64>,
}

impl Goaway {
    /// Stream `id` arrived: false when it is beyond our GOAWAY.
    fn accept(&mut self, id: u64) -> bool {
        if self.sent.is_some_and(|g| id >= g) {
            return false;
        }
        self.last = Some(self.last.map_or(id, |l| l.max(id)));
        self.recent = Some(id);
        true
    }

    /// RFC 9114 §5.2: GOAWAY carries the first stream id we will NOT process, i.e. the one
    /// after the last request accepted. Returns the count to hand h3's `shutdown`, which
    /// counts from the stream it accepted last.
    fn start(&mut self) -> usize {
        self.sent = Some(self.last.map_or(0, |l| l + 4));
        let ahead = match (self.last, self.recent) {
            (Some(l), Some(r)) => ((l - r.min(l)) / 4) as usize,
            _ => 0,
        };
        1 + ahead
    }
}

pub async fn serve(connecting: quinn::Connecting, server: Arc<ServerState>) {
    let Some(conn) = established(connecting, &server).await else {
        server.stats.connection_errors.fetch_add(1, Relaxed);
        return;
    };
    let stats = &server.stats;
    stats.connections_total.fetch_add(1, Relaxed);
    let _active = GaugeGuard::inc(&stats.connections_active);
    let id = server.add_conn(conn.clone());
    let datagram_routes: Arc<DatagramRoutes> = Arc::default();
    let sessions = server
        .webtransport
        .as_ref()
        .map(|t| ConnSessions::new(t.clone(), conn.clone(), datagram_routes.clone()));
    let ctx = Arc::new(ConnCtx::new(id, conn.clone(), datagram_routes, sessions));

    let datagrams = (server.config.enable_datagram || server.config.quic_datagram_handler)
        .then(|| tokio::spawn(datagrams::read_loop(server.clone(), ctx.clone())));

    drive(&server, &ctx).await;
    ctx.end();
    server.abort_requests_of(id);
    if let Some(reader) = datagrams {
        reader.abort();
    }
    if let Some(sessions) = &ctx.sessions {
        sessions.end_all(false);
    }

    server.lock_conns().remove(&id);
    let s = conn.stats();
    stats.bytes_received.fetch_add(s.udp_rx.bytes, Relaxed);
    stats.bytes_sent.fetch_add(s.udp_tx.bytes, Relaxed);
    server.conn_ended.notify_waiters();
}

/// The connection once its handshake is done; with `allow0RTT`, at once (quinn's 0.5-RTT), so
/// request streams a resuming client sends in 0-RTT are served before the handshake ends.
/// quinn: for incoming connections `into_0rtt` "will always fully succeed".
async fn established(
    connecting: quinn::Connecting,
    server: &ServerState,
) -> Option<quinn::Connection> {
    if !server.config.allow_0rtt {
        return connecting.await.ok();
    }
    match connecting.into_0rtt() {
        Ok((conn, handshake)) => {
            // Counted like a failed handshake without 0-RTT. quinn resolves this false when
            // the connection ends before its handshake does.
            let stats = server.stats.clone();
            tokio::spawn(async move {
                if !handshake.await {
                    stats.connection_errors.fetch_add(1, Relaxed);
                }
            });
            Some(conn)
        }
        Err(connecting) => connecting.await.ok(),
    }
}

/// The h3 connection from handshake to close. Kept whole: one `select!` over accept, drain
/// and idle, whose state (draining, GOAWAY) the arms share.
async fn drive(server: &Arc<ServerState>, ctx: &Arc<ConnCtx>) {
    let cfg = &server.config;
    let mut builder = h3::server::builder();
    builder
        .max_field_section_size(cfg.max_header_list_size)
        .enable_datagram(cfg.enable_datagram)
        .enable_extended_connect(cfg.enable_webtransport)
        .enable_webtransport(cfg.enable_webtransport)
        .max_webtransport_sessions(if cfg.enable_webtransport {
            WT_MAX_SESSIONS
        } else {
            0
        })
        .send_grease(true);
    // Non-DATA frames beyond this are refused before h3 buffers them (see frame_guard.rs).
    let frame_limit = 4 * cfg.max_header_list_size + 64 * 1024;
    let classifier = ctx.sessions.clone().map(|s| s as Arc<dyn StreamClassifier>);
    let quic = QuicConn::server(ctx.quic.clone(), frame_limit, ctx.stops.clone(), classifier)
        .with_early(ctx.early.clone())
        .with_settings(if cfg.enable_webtransport {
            wt_settings::server_settings(WT_MAX_SESSIONS)
        } else {
            Vec::new()
        });
    let mut h3conn: h3::server::Connection<QuicConn, Bytes> = match builder.build(quic).await {
        Ok(c) => c,
        Err(_) => {
            server.stats.connection_errors.fetch_add(1, Relaxed);
            return;
        }
    };
    let mut state = server.run_state.subscribe();
    let mut draining = false;
    let mut goaway = Goaway::default();
    loop {
        tokio::select! {
            accepted = h3conn.accept() => match accepted {
                Ok(Some(mut resolver)) => {
                    let id = resolver.frame_stream.id().into_inner();
                    if !goaway.accept(id) {
                        // Beyond our GOAWAY: the client treats it as unprocessed and retries.
                        h3::quic::SendStream::reset(&mut resolver.frame_stream, Code::H3_REQUEST_REJECTED.value());
                        continue;
                    }
                    let guard = InflightGuard::new(ctx.clone());
                    request::spawn(resolver, server.clone(), ctx.clone(), guard);
                }
                // The peer sent GOAWAY and every request finished.
                Ok(None) => break,
                Err(e) => {
                    // Count only closes we made because the peer broke the protocol; a peer's
                    // own close or an idle timeout is ordinary.
                    if matches!(e, h3::error::ConnectionError::Local { .. }) && !e.is_h3_no_error() {
                        server.stats.connection_errors.fetch_add(1, Relaxed);
                    }
                    return;
                }
            },
            _ = wait_state(&mut state, |s| s != RunState::Running), if !draining => {
                draining = true;
                // Streams at or beyond the GOAWAY id are refused above.
                if h3conn.shutdown(goaway.start()).await.is_err() {
                    return;
                }
            },
            _ = ctx.wait_idle(), if draining => break,
        }
    }
    // A connection that closes meanwhile ends here; serve() tells its requests.
    tokio::select! {
        _ = ctx.wait_idle() => {}
        _ = ctx.quic.closed() => return,
    }
    // close() drops whatever is still unacknowledged, so give the last responses a few round
    // trips to land (or the peer time to close first) before closing.
    let grace = (ctx.quic.rtt() * 4).clamp(Duration::from_millis(50), Duration::from_secs(2));
    let _ = tokio::time::timeout(grace, ctx.quic.closed()).await;
    ctx.quic.close(H3_NO_ERROR, b"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goaway_names_the_stream_after_the_highest_accepted() {
        let mut g = Goaway::default();
        assert!(g.accept(0));
        assert!(g.accept(8));
        // Classified out of order: 4 came last, 8 is the highest.
        assert!(g.accept(4));
        // h3 counts from stream 4: one more to reach 8, then the first refused.
        assert_eq!(g.start(), 2);
        assert_eq!(g.sent, Some(12));
        assert!(!g.accept(12));
        assert!(g.accept(8));
    }

    #[test]
    fn goaway_before_any_request_refuses_all() {
        let mut g = Goaway::default();
        assert_eq!(g.start(), 1);
        assert!(!g.accept(0));
    }
}
