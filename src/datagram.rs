//! QUIC DATAGRAM frames and RFC 9297 HTTP datagrams: one reader per connection that
//! demultiplexes, and a bounded send path.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{H3Error, Result};
use crate::server::Shared;
use crate::stats::Stats;
use crate::webtransport::Session;

/// Most datagrams waiting for the JS thread; beyond this they are dropped and counted.
pub const MAX_PENDING_TO_JS: usize = 4096;

/// Where an incoming datagram goes.
#[derive(Debug)]
pub enum Target {
    /// RFC 9297 datagram for the request `request_id` on stream `stream_id`.
    H3 { request_id: u64, stream_id: u64 },
    /// A WebTransport session's datagram (delivered to the session's own queue).
    Session(Arc<Session>),
    /// Everything else: the server-level `quicDatagram` handler.
    Quic,
}

/// A datagram on its way to JS.
#[derive(Debug)]
pub struct Datagram {
    pub conn_id: u64,
    pub target: Target,
    pub payload: Bytes,
}

#[derive(Debug, Clone)]
enum Route {
    Request(u64),
    Session(Arc<Session>),
}

/// Request streams of one connection that take HTTP datagrams: a request with an
/// `h3Datagram` handler or a WebTransport session, by stream id.
#[derive(Default)]
pub struct Routes(Mutex<HashMap<u64, Route>>);

impl Routes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Route>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn add(&self, stream_id: u64, request_id: u64) {
        self.lock().insert(stream_id, Route::Request(request_id));
    }
    pub fn add_session(&self, stream_id: u64, session: Arc<Session>) {
        self.lock().insert(stream_id, Route::Session(session));
    }
    pub fn remove(&self, stream_id: u64) {
        self.lock().remove(&stream_id);
    }
    fn get(&self, stream_id: u64) -> Option<Route> {
        self.lock().get(&stream_id).cloned()
    }
}

/// QUIC variable-length integer (RFC 9000 §16).
pub fn read_varint(buf: &mut impl Buf) -> Option<u64> {
    if !buf.has_remaining() {
        return None;
    }
    let first = buf.chunk()[0];
    let len = 1usize << (first >> 6);
    if buf.remaining() < len {
        return None;
    }
    let mut v = u64::from(buf.get_u8() & 0x3f);
    for _ in 1..len {
        v = (v << 8) | u64::from(buf.get_u8());
    }
    Some(v)
}

pub fn put_varint(buf: &mut BytesMut, v: u64) -> Result<()> {
    match v {
        0..=0x3f => buf.put_u8(v as u8),
        0x40..=0x3fff => buf.put_u16(0x4000 | v as u16),
        0x4000..=0x3fff_ffff => buf.put_u32(0x8000_0000 | v as u32),
        0x4000_0000..=0x3fff_ffff_ffff_ffff => buf.put_u64(0xc000_0000_0000_0000 | v),
        _ => {
            return Err(H3Error::InvalidArg(format!(
                "{v} does not fit a QUIC varint"
            )))
        }
    }
    Ok(())
}

/// Decide where a received datagram goes. With HTTP datagrams on, a payload whose quarter
/// stream id names a request stream with a datagram handler is an HTTP datagram for it.
pub fn classify(h3_enabled: bool, routes: &Routes, data: &Bytes) -> (Target, Bytes) {
    if h3_enabled {
        let mut b = data.clone();
        if let Some(quarter) = read_varint(&mut b) {
            if let Some(stream_id) = quarter.checked_mul(4) {
                match routes.get(stream_id) {
                    Some(Route::Request(request_id)) => {
                        return (
                            Target::H3 {
                                request_id,
                                stream_id,
                            },
                            b,
                        )
                    }
                    Some(Route::Session(s)) => return (Target::Session(s), b),
                    None => {}
                }
            }
        }
    }
    (Target::Quic, data.clone())
}

/// Reads every datagram of a connection until it closes. One reader per connection: quinn
/// hands each datagram to exactly one `read_datagram` caller.
pub async fn read_loop(
    shared: Arc<Shared>,
    conn_id: u64,
    quic: quinn::Connection,
    routes: Arc<Routes>,
) {
    let h3_enabled = shared.config.enable_datagram;
    let stats = &shared.stats;
    while let Ok(data) = quic.read_datagram().await {
        stats.datagrams_received.fetch_add(1, Relaxed);
        let (target, payload) = classify(h3_enabled, &routes, &data);
        match &target {
            Target::Quic if !shared.config.quic_datagram_handler => {
                stats.datagrams_dropped.fetch_add(1, Relaxed);
                continue;
            }
            Target::Session(s) => {
                if !s.push_datagram(payload) {
                    stats.datagrams_dropped.fetch_add(1, Relaxed);
                }
                continue;
            }
            _ => {}
        }
        if !shared.dispatcher.datagram(Datagram {
            conn_id,
            target,
            payload,
        }) {
            stats.datagrams_dropped.fetch_add(1, Relaxed);
        }
    }
}

/// Send a datagram on connection `conn_id`, as an HTTP datagram of `stream_id` when given.
pub fn send(shared: &Shared, conn_id: u64, stream_id: Option<u64>, payload: &[u8]) -> Result<()> {
    let quic = shared
        .lock_conns()
        .get(&conn_id)
        .cloned()
        .ok_or(H3Error::ConnectionLost)?;
    send_on(&quic, &shared.stats, stream_id, payload)
}

/// Send a datagram on `quic`, as an HTTP datagram of `stream_id` when given. A full send
/// buffer drops this datagram (counted) rather than growing memory.
pub fn send_on(
    quic: &quinn::Connection,
    stats: &Stats,
    stream_id: Option<u64>,
    payload: &[u8],
) -> Result<()> {
    let mut buf = BytesMut::with_capacity(payload.len() + 8);
    if let Some(s) = stream_id {
        put_varint(&mut buf, s / 4)?;
    }
    buf.extend_from_slice(payload);
    let max = quic
        .max_datagram_size()
        .ok_or(H3Error::DatagramUnsupported)?;
    if buf.len() > max {
        return Err(H3Error::DatagramTooLarge(
            payload.len(),
            max.saturating_sub(buf.len() - payload.len()),
        ));
    }
    if buf.len() > quic.datagram_send_buffer_space() {
        stats.datagrams_dropped.fetch_add(1, Relaxed);
        return Ok(());
    }
    match quic.send_datagram(buf.freeze()) {
        Ok(()) => {
            stats.datagrams_sent.fetch_add(1, Relaxed);
            Ok(())
        }
        Err(quinn::SendDatagramError::TooLarge) => {
            Err(H3Error::DatagramTooLarge(payload.len(), max))
        }
        Err(quinn::SendDatagramError::ConnectionLost(_)) => Err(H3Error::ConnectionLost),
        Err(_) => Err(H3Error::DatagramUnsupported),
    }
}

/// Largest payload that fits one datagram now (HTTP datagrams lose their prefix to this).
pub fn max_size(shared: &Shared, conn_id: u64, stream_id: Option<u64>) -> Option<usize> {
    let quic = shared.lock_conns().get(&conn_id).cloned()?;
    max_size_on(&quic, stream_id)
}

pub fn max_size_on(quic: &quinn::Connection, stream_id: Option<u64>) -> Option<usize> {
    let max = quic.max_datagram_size()?;
    let prefix = match stream_id.map(|s| s / 4) {
        None => 0,
        Some(0..=0x3f) => 1,
        Some(0x40..=0x3fff) => 2,
        Some(0x4000..=0x3fff_ffff) => 4,
        Some(_) => 8,
    };
    Some(max.saturating_sub(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [0u64, 63, 64, 16383, 16384, 1 << 30, (1 << 62) - 1] {
            let mut b = BytesMut::new();
            put_varint(&mut b, v).unwrap();
            let mut r = b.freeze();
            assert_eq!(read_varint(&mut r), Some(v));
            assert!(!r.has_remaining());
        }
        assert!(put_varint(&mut BytesMut::new(), 1 << 62).is_err());
        assert_eq!(read_varint(&mut Bytes::from_static(&[0x40])), None);
    }

    #[test]
    fn classify_routes_by_quarter_stream_id() {
        let routes = Routes::default();
        routes.add(8, 77);
        let d = Bytes::from_static(&[2, b'h', b'i']);
        let (t, p) = classify(true, &routes, &d);
        assert!(matches!(
            t,
            Target::H3 {
                request_id: 77,
                stream_id: 8
            }
        ));
        assert_eq!(p, Bytes::from_static(b"hi"));
        // Unknown stream or H3 datagrams off: the whole payload goes to quicDatagram.
        assert!(matches!(
            classify(true, &routes, &Bytes::from_static(&[1, 1])).0,
            Target::Quic
        ));
        let (t, p) = classify(false, &routes, &d);
        assert!(matches!(t, Target::Quic));
        assert_eq!(p, d);
    }
}
