//! Lock-free server counters, read by `getStats()`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

#[derive(Debug)]
pub struct Stats {
    pub started: Instant,
    pub connections_total: AtomicU64,
    pub connections_active: AtomicU64,
    pub requests_total: AtomicU64,
    pub requests_active: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub datagrams_received: AtomicU64,
    pub datagrams_sent: AtomicU64,
    pub datagrams_dropped: AtomicU64,
    pub webtransport_sessions_active: AtomicU64,
    /// Requests refused before reaching JS (413, 431, malformed) and stream resets by peers.
    pub requests_rejected: AtomicU64,
    pub connection_errors: AtomicU64,
    /// Requests that arrived in 0-RTT (`allow0RTT`), served or answered 425.
    pub early_requests: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            connections_total: AtomicU64::new(0),
            connections_active: AtomicU64::new(0),
            requests_total: AtomicU64::new(0),
            requests_active: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            datagrams_received: AtomicU64::new(0),
            datagrams_sent: AtomicU64::new(0),
            datagrams_dropped: AtomicU64::new(0),
            webtransport_sessions_active: AtomicU64::new(0),
            requests_rejected: AtomicU64::new(0),
            connection_errors: AtomicU64::new(0),
            early_requests: AtomicU64::new(0),
        }
    }
}

/// A plain copy of the counters at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    pub connections_total: u64,
    pub connections_active: u64,
    pub requests_total: u64,
    pub requests_active: u64,
    pub uptime_ms: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    pub datagrams_dropped: u64,
    pub webtransport_sessions_active: u64,
    pub requests_rejected: u64,
    pub connection_errors: u64,
    pub early_requests: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections_total: self.connections_total.load(Relaxed),
            connections_active: self.connections_active.load(Relaxed),
            requests_total: self.requests_total.load(Relaxed),
            requests_active: self.requests_active.load(Relaxed),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            bytes_received: self.bytes_received.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            datagrams_received: self.datagrams_received.load(Relaxed),
            datagrams_sent: self.datagrams_sent.load(Relaxed),
            datagrams_dropped: self.datagrams_dropped.load(Relaxed),
            webtransport_sessions_active: self.webtransport_sessions_active.load(Relaxed),
            requests_rejected: self.requests_rejected.load(Relaxed),
            connection_errors: self.connection_errors.load(Relaxed),
            early_requests: self.early_requests.load(Relaxed),
        }
    }
}

/// Decrements a gauge when dropped, so every exit path of a task keeps the gauge exact.
pub struct GaugeGuard<'a>(&'a AtomicU64);

impl<'a> GaugeGuard<'a> {
    pub fn inc(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}
