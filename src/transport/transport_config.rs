//! The QUIC transport parameters of both roles, built in one place.

use std::time::Duration;

use crate::config::{CONNECTION_RECEIVE_WINDOW, STREAM_RECEIVE_WINDOW};
use crate::error::{H3Error, Result};

/// Size of quinn's datagram send and receive buffers when datagrams are on.
const DATAGRAM_BUFFER: usize = 1024 * 1024;

/// What differs between a server's and a client's transport.
#[derive(Debug, Clone)]
pub struct TransportParams {
    /// Peer-opened bidirectional streams (request streams) at once; `None`: quinn's default.
    pub max_bidi_streams: Option<u32>,
    /// Peer-opened unidirectional streams: control, QPACK and, with WebTransport, its streams.
    pub max_uni_streams: u32,
    /// Zero: no idle timeout.
    pub idle_timeout: Duration,
    /// Take QUIC datagrams (else the receive buffer is off).
    pub datagrams: bool,
    /// Also bound the connection's send window to its receive window (servers).
    pub bounded_send_window: bool,
}

pub fn build(p: &TransportParams) -> Result<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    if let Some(n) = p.max_bidi_streams {
        t.max_concurrent_bidi_streams(n.into());
    }
    t.max_concurrent_uni_streams(p.max_uni_streams.into());
    t.stream_receive_window(STREAM_RECEIVE_WINDOW.into());
    t.receive_window(CONNECTION_RECEIVE_WINDOW.into());
    if p.bounded_send_window {
        t.send_window(CONNECTION_RECEIVE_WINDOW.into());
    }
    let idle = if p.idle_timeout.is_zero() {
        None
    } else {
        Some(
            quinn::IdleTimeout::try_from(p.idle_timeout)
                .map_err(|e| H3Error::InvalidArg(format!("idleTimeout: {e}")))?,
        )
    };
    t.max_idle_timeout(idle);
    if p.datagrams {
        t.datagram_receive_buffer_size(Some(DATAGRAM_BUFFER));
        t.datagram_send_buffer_size(DATAGRAM_BUFFER);
    } else {
        t.datagram_receive_buffer_size(None);
    }
    Ok(t)
}
