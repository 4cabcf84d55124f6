//! 0-RTT on the client (`allow0RTT`): a connection resuming a session whose ticket allows early
//! data is used before its handshake ends, for safe-method requests only (RFC 8470 §4: "a
//! client ... MUST NOT send requests that are not safe in early data"); others wait for the
//! handshake. If the server refuses the early data (it lost the session, or turned 0-RTT off),
//! quinn fails everything opened in 0-RTT (h3's own streams too), so that connection is closed
//! and the next request opens a fresh one.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::proto::headers::H3_NO_ERROR;

/// How the client's 0-RTT attempts went, by connection.
#[derive(Debug, Default)]
pub struct EarlyCounts {
    /// Connections that resumed a session allowing 0-RTT and were used before the handshake.
    pub attempted: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
}

/// Where an origin connection's handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Resumed with 0-RTT; the handshake is still under way.
    Early,
    Accepted,
    Rejected,
    /// An ordinary handshake, complete before first use.
    Full,
}

#[derive(Clone)]
pub(super) struct Handshake(watch::Receiver<Phase>);

impl Handshake {
    pub(super) fn full() -> Self {
        Handshake(watch::channel(Phase::Full).1)
    }

    /// In 0-RTT until `accepted` resolves (true when the server took the early data);
    /// `forget_tickets` runs when it did not. A handshake not done within `timeout`
    /// (connectTimeout) closes the connection, as it would have failed the connect.
    pub(super) fn early(
        accepted: quinn::ZeroRttAccepted,
        quic: quinn::Connection,
        timeout: Duration,
        counts: Arc<EarlyCounts>,
        forget_tickets: impl FnOnce() + Send + 'static,
    ) -> Self {
        counts.attempted.fetch_add(1, Relaxed);
        let (tx, rx) = watch::channel(Phase::Early);
        tokio::spawn(async move {
            let Ok(accepted) = tokio::time::timeout(timeout, accepted).await else {
                quic.close(H3_NO_ERROR, b"handshake timed out");
                let _ = tx.send(Phase::Rejected);
                return;
            };
            let phase = if accepted {
                counts.accepted.fetch_add(1, Relaxed);
                Phase::Accepted
            } else {
                counts.rejected.fetch_add(1, Relaxed);
                forget_tickets();
                // h3's control and QPACK streams went out in 0-RTT and are gone.
                quic.close(H3_NO_ERROR, b"0-RTT rejected");
                Phase::Rejected
            };
            let _ = tx.send(phase);
        });
        Handshake(rx)
    }

    /// The phase once the handshake is complete.
    pub(super) async fn complete(&self) -> Phase {
        let mut rx = self.0.clone();
        let phase = match rx.wait_for(|p| *p != Phase::Early).await {
            Ok(p) => *p,
            // The watcher ended without an answer (runtime shutting down).
            Err(_) => Phase::Rejected,
        };
        phase
    }
}
