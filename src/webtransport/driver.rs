//! The CONNECT stream of an established session: capsules in and out
//! (draft-ietf-webtrans-http3-02 §5, RFC 9297 §3), until the session ends.

use std::future::Future;
use std::sync::Arc;

use super::conn::ConnSessions;
use super::session::{CloseInfo, Ctl, Session, SessionRx};
use crate::proto::wt_wire::{
    close_capsule, drain_capsule, Capsule, CapsuleReader, MalformedCapsule,
};
use crate::stats::GaugeGuard;
use crate::transport::body::BodySource;
use crate::transport::classify::Dir;
use bytes::Bytes;
use futures_util::FutureExt;

/// Sending side of a CONNECT stream (server request stream or client request stream).
pub trait CapsuleSink: Send {
    fn send(&mut self, data: Bytes) -> impl Future<Output = bool> + Send;
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
    /// Reset the stream with HTTP/3 error `code`.
    fn abort(&mut self, code: u64);
}

macro_rules! capsule_sink {
    ($ty:ty) => {
        impl<S: h3::quic::SendStream<Bytes> + Send> CapsuleSink for $ty {
            async fn send(&mut self, data: Bytes) -> bool {
                self.send_data(data).await.is_ok()
            }
            async fn finish(&mut self) {
                let _ = <$ty>::finish(self).await;
            }
            fn abort(&mut self, code: u64) {
                self.stop_stream(h3::error::Code::from(code));
            }
        }
    };
}
capsule_sink!(h3::server::RequestStream<S, Bytes>);
capsule_sink!(h3::client::RequestStream<S, Bytes>);

/// What the capsules of one read ask for.
enum CapsuleOutcome {
    Continue,
    Close(CloseInfo),
}

/// Apply the capsules the peer sent: DRAIN marks the session draining, CLOSE ends it, the
/// flow-control ones go to the session's accounting (which ignores them without flow control,
/// draft-15 §5.1).
fn apply_capsules(session: &Session, capsules: Vec<Capsule>) -> CapsuleOutcome {
    let mut closing = None;
    for c in capsules {
        match c {
            Capsule::Drain => session.set_draining(),
            Capsule::Close(code, reason) => closing = Some((code, reason)),
            Capsule::MaxData(max) => session.peer_raised(|f| f.peer_max_data(max)),
            Capsule::MaxStreams { bidi, max } => {
                let dir = if bidi { Dir::Bidi } else { Dir::Uni };
                session.peer_raised(|f| f.peer_max_streams(dir, max))
            }
            Capsule::Blocked => {}
            // draft-15 §5.4: a session error, for the newer drafts only.
            Capsule::Forbidden if session.draft.has_flow_control() => {
                session.flow_error(super::flow::FlowError("WT_MAX_STREAM_DATA on HTTP/3"))
            }
            Capsule::Forbidden => {}
        }
    }
    match closing {
        Some((code, reason)) => CapsuleOutcome::Close(CloseInfo {
            code,
            reason,
            clean: true,
        }),
        None => CapsuleOutcome::Continue,
    }
}

/// The connection is gone: a CLOSE capsule that arrived with its last packets may still sit
/// unread in the CONNECT stream. Read what is buffered (never waiting) and return the close it
/// carries, if any: draft-ietf-webtrans-http3-02 §5 makes the capsule, not the connection's end,
/// the session's close code and reason.
fn buffered_close<R: BodySource>(
    session: &Session,
    recv: &mut R,
    capsules: &mut CapsuleReader,
) -> Option<CloseInfo> {
    loop {
        let next = std::future::poll_fn(|cx| recv.poll_chunk(cx)).now_or_never()?;
        let Ok(Some(bytes)) = next else { return None };
        match capsules.push(bytes) {
            Ok(caps) => {
                if let CapsuleOutcome::Close(info) = apply_capsules(session, caps) {
                    return Some(info);
                }
            }
            Err(MalformedCapsule) => return None,
        }
    }
}

/// Drive an established session's CONNECT stream until the session ends: read capsules from
/// the peer, send ours when JS closes, follow `drain` (server going away), and settle
/// everything at the end. `send` and `recv` are the two halves of the CONNECT stream. Kept
/// whole: it is one `select!` over the session's five event sources.
pub async fn run_session<W, R>(
    conn: &ConnSessions,
    session: &Arc<Session>,
    mut send: W,
    mut recv: R,
    rx: SessionRx,
    drain: impl Future<Output = ()>,
) where
    W: CapsuleSink,
    R: BodySource,
{
    let _active = GaugeGuard::inc(&conn.handles.stats.webtransport_sessions_active);
    let SessionRx {
        close: mut close_rx,
        mut ctl,
    } = rx;
    let mut capsules = CapsuleReader::default();
    let closed = conn.quic.closed();
    tokio::pin!(closed, drain);
    let mut drained = false;
    let info = loop {
        tokio::select! {
            data = std::future::poll_fn(|cx| recv.poll_chunk(cx)) => match data {
                Ok(Some(bytes)) => match capsules.push(bytes) {
                    Ok(caps) => {
                        if let CapsuleOutcome::Close(info) = apply_capsules(session, caps) {
                            send.finish().await;
                            break info;
                        }
                    }
                    // A malformed CLOSE capsule: end the session abruptly.
                    Err(MalformedCapsule) => break CloseInfo::ended(false),
                },
                // FIN without a capsule: closed with code 0.
                Ok(None) => {
                    send.finish().await;
                    break CloseInfo::ended(true);
                }
                Err(_) => break CloseInfo::ended(false),
            },
            req = &mut close_rx => {
                let (code, reason) = req.unwrap_or((0, String::new()));
                let capsule = close_capsule(code, &reason);
                if send.send(capsule).await {
                    send.finish().await;
                }
                break CloseInfo { code, reason, clean: true };
            }
            Some(c) = ctl.recv() => match c {
                Ctl::Capsule(c) => {
                    let _ = send.send(c).await;
                }
                // draft-15 §5.6.2 / §5.6.4: "it MUST close the WebTransport session with a
                // WT_FLOW_CONTROL_ERROR error code": the CONNECT stream is reset with it.
                Ctl::Abort(code) => {
                    send.abort(code);
                    break CloseInfo::ended(false);
                }
            },
            _ = &mut drain, if !drained => {
                drained = true;
                session.set_draining();
                let _ = send.send(drain_capsule()).await;
            }
            // A peer may send its CLOSE capsule and close the connection at once (Firefox does
            // when the session was the connection's last use): both arms are then ready, and
            // the capsule must still decide how the session ended.
            _ = &mut closed => break buffered_close(session, &mut recv, &mut capsules)
                .unwrap_or_else(|| CloseInfo::ended(false)),
        }
    };
    let clean = info.clean;
    conn.end_session(session, info);
    if clean {
        // Let the peer's FIN arrive before the receive half is dropped: dropping it sends
        // STOP_SENDING, which Chromium may process before our capsule and report the session as
        // lost instead of closed.
        let fin = async {
            while let Ok(Some(_)) = std::future::poll_fn(|cx| recv.poll_chunk(cx)).await {}
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), fin).await;
    }
}
