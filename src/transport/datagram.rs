//! QUIC DATAGRAM frames and RFC 9297 HTTP datagrams: the one reader per connection that
//! demultiplexes by quarter stream id, and a bounded send path. Servers and clients share both.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

use crate::error::{H3Error, Result};
use crate::ids::{ConnectionId, RequestId, StreamId};
use crate::proto::varint;
use crate::stats::Stats;
use crate::sync::lock;

/// Most datagrams waiting for the JS thread; beyond this they are dropped and counted.
pub const MAX_PENDING_TO_JS: usize = 4096;

/// Where the datagrams of a WebTransport session go (implemented by the session, above this
/// layer).
pub trait DatagramSink: Send + Sync {
    /// Queue a datagram; false when it was dropped (queue full or session closed).
    fn push_datagram(&self, payload: Bytes) -> bool;
}

/// Where an incoming datagram goes.
pub enum Target {
    /// RFC 9297 datagram for the request `request_id` on stream `stream_id`.
    H3 {
        request_id: RequestId,
        stream_id: StreamId,
    },
    /// A WebTransport session's datagram (delivered to the session's own queue).
    Session(Arc<dyn DatagramSink>),
    /// Everything else: the server-level `quicDatagram` handler.
    Quic,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::H3 {
                request_id,
                stream_id,
            } => write!(f, "H3({request_id}, stream {stream_id})"),
            Target::Session(_) => f.write_str("Session"),
            Target::Quic => f.write_str("Quic"),
        }
    }
}

/// A datagram on its way to JS.
#[derive(Debug)]
pub struct Datagram {
    pub conn_id: ConnectionId,
    pub target: Target,
    pub payload: Bytes,
}

#[derive(Clone)]
enum Route {
    Request(RequestId),
    Session(Arc<dyn DatagramSink>),
}

/// Request streams of one connection that take HTTP datagrams: a request with an
/// `h3Datagram` handler or a WebTransport session, by stream id.
#[derive(Default)]
pub struct DatagramRoutes(Mutex<HashMap<StreamId, Route>>);

impl DatagramRoutes {
    pub fn add(&self, stream_id: StreamId, request_id: RequestId) {
        lock(&self.0).insert(stream_id, Route::Request(request_id));
    }
    pub fn add_session(&self, stream_id: StreamId, session: Arc<dyn DatagramSink>) {
        lock(&self.0).insert(stream_id, Route::Session(session));
    }
    pub fn remove(&self, stream_id: StreamId) {
        lock(&self.0).remove(&stream_id);
    }
    fn get(&self, stream_id: StreamId) -> Option<Route> {
        lock(&self.0).get(&stream_id).cloned()
    }
}

/// Largest quarter stream id (RFC 9297 §2.1: stream ids stop at 2^62 - 1).
pub const MAX_QUARTER: u64 = (1 << 60) - 1;

/// Why a datagram carries no usable quarter stream id prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixError {
    /// Empty, or ends inside the varint.
    Truncated,
    /// Above [`MAX_QUARTER`]: names no stream that can exist.
    TooLarge(u64),
}

/// Split an HTTP datagram (RFC 9297 §2.1) into the request stream its quarter stream id names
/// and the payload after it.
pub fn parse_prefix(data: &Bytes) -> std::result::Result<(StreamId, Bytes), PrefixError> {
    let mut payload = data.clone();
    let quarter = varint::read(&mut payload).ok_or(PrefixError::Truncated)?;
    if quarter > MAX_QUARTER {
        return Err(PrefixError::TooLarge(quarter));
    }
    Ok((StreamId(quarter * 4), payload))
}

/// Append the quarter stream id prefix of an HTTP datagram for request stream `stream_id`.
pub fn write_prefix(buf: &mut BytesMut, stream_id: StreamId) -> Result<()> {
    varint::write(buf, stream_id.quarter())
}

/// Decide where a received datagram goes. With HTTP datagrams on, a payload whose quarter
/// stream id (RFC 9297 §2.1) names a routed request stream is an HTTP datagram for it.
pub fn classify(h3_enabled: bool, routes: &DatagramRoutes, data: &Bytes) -> (Target, Bytes) {
    if h3_enabled {
        if let Ok((stream_id, b)) = parse_prefix(data) {
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
    (Target::Quic, data.clone())
}

/// Reads every datagram of a connection until it closes. One reader per connection: quinn
/// hands each datagram to exactly one `read_datagram` caller. Session datagrams go to their
/// session; the rest to `deliver`, which says whether it took them (else they count as
/// dropped).
pub async fn read_loop(
    quic: &quinn::Connection,
    h3_enabled: bool,
    routes: &DatagramRoutes,
    stats: &Stats,
    mut deliver: impl FnMut(Target, Bytes) -> bool,
) {
    while let Ok(data) = quic.read_datagram().await {
        stats.datagrams_received.fetch_add(1, Relaxed);
        let delivered = match classify(h3_enabled, routes, &data) {
            (Target::Session(s), payload) => s.push_datagram(payload),
            (target, payload) => deliver(target, payload),
        };
        if !delivered {
            stats.datagrams_dropped.fetch_add(1, Relaxed);
        }
    }
}

/// Send a datagram on `quic`, as an HTTP datagram of `stream_id` when given. A full send
/// buffer drops this datagram (counted) rather than growing memory.
pub fn send_on(
    quic: &quinn::Connection,
    stats: &Stats,
    stream_id: Option<StreamId>,
    payload: &[u8],
) -> Result<()> {
    send_bytes_on(quic, stats, stream_id, Bytes::copy_from_slice(payload))
}

/// [`send_on`] for bytes we already own: a bare QUIC datagram goes out without another copy
/// (a slice of a whole batch's payloads, say); an HTTP datagram is copied behind its prefix.
pub fn send_bytes_on(
    quic: &quinn::Connection,
    stats: &Stats,
    stream_id: Option<StreamId>,
    payload: Bytes,
) -> Result<()> {
    BatchSender::new(quic, stats).send(stream_id, payload)
}

/// Sends datagrams on one connection, looking at the send buffer's free room once and then
/// counting it down, instead of once per datagram (each look takes quinn's connection lock):
/// a batch of replies then costs one lock per datagram. quinn's `send_datagram` would make
/// room by dropping the *oldest* queued datagram; we drop (and count) the new one instead.
pub struct BatchSender<'a> {
    quic: &'a quinn::Connection,
    stats: &'a Stats,
    /// Free bytes in quinn's datagram send buffer, as last seen minus what we queued since
    /// (the connection's driver only ever frees more meanwhile).
    room: usize,
}

impl<'a> BatchSender<'a> {
    pub fn new(quic: &'a quinn::Connection, stats: &'a Stats) -> Self {
        let room = quic.datagram_send_buffer_space();
        BatchSender { quic, stats, room }
    }

    /// Send one datagram, as an HTTP datagram of `stream_id` when given. A full send buffer
    /// drops it (counted).
    pub fn send(&mut self, stream_id: Option<StreamId>, payload: Bytes) -> Result<()> {
        match stream_id {
            None => self.send_framed(payload, 0),
            Some(s) => {
                let mut buf = BytesMut::with_capacity(payload.len() + 8);
                write_prefix(&mut buf, s)?;
                let prefix = buf.len();
                buf.extend_from_slice(&payload);
                self.send_framed(buf.freeze(), prefix)
            }
        }
    }

    /// Send `data`, whose first `prefix` bytes are its HTTP datagram framing.
    pub fn send_framed(&mut self, data: Bytes, prefix: usize) -> Result<()> {
        let len = data.len() - prefix;
        let too_large = |max: usize| H3Error::DatagramTooLarge(len, max.saturating_sub(prefix));
        if data.len() > self.room {
            // Our count says full: look again (the driver may have sent some since).
            self.room = self.quic.datagram_send_buffer_space();
        }
        if data.len() > self.room {
            // Full: drop and count, unless it could never have fitted (then say so, as before).
            return match self.quic.max_datagram_size() {
                None => Err(H3Error::DatagramUnsupported),
                Some(max) if data.len() > max => Err(too_large(max)),
                Some(_) => {
                    self.stats.datagrams_dropped.fetch_add(1, Relaxed);
                    Ok(())
                }
            };
        }
        let size = data.len();
        // quinn checks the size against the path's current limit itself (one lock, not two).
        match self.quic.send_datagram(data) {
            Ok(()) => {
                self.room -= size;
                self.stats.datagrams_sent.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(quinn::SendDatagramError::TooLarge) => {
                Err(too_large(self.quic.max_datagram_size().unwrap_or(0)))
            }
            Err(quinn::SendDatagramError::ConnectionLost(_)) => Err(H3Error::ConnectionLost),
            Err(_) => Err(H3Error::DatagramUnsupported),
        }
    }
}

/// The datagrams JS sent in one batch, framed on the JS thread (the one copy of their bytes)
/// and handed to quinn on the runtime. Sent from the JS thread, each `send_datagram` takes
/// quinn's connection lock while the connection's driver, woken by the first of them, takes it
/// on a runtime worker: perf of a Bun echo at ~200k datagrams/s counted ~1,300 contended-lock
/// futex waits a second on each side. From the runtime the whole batch is queued before the
/// driver builds packets, and the JS thread takes no quinn lock at all. Each batch is a task
/// of its own: on a multi-worker runtime two batches sent back to back may interleave, which
/// datagrams allow (RFC 9221 promises them no order).
#[derive(Default)]
pub struct Outbox {
    /// Consecutive datagrams of one connection: `(framed datagram, framing bytes)`.
    runs: Vec<(quinn::Connection, Vec<(Bytes, usize)>)>,
    /// Datagrams refused while framing (their connection gone, lengths past the payloads).
    dropped: u64,
}

impl Outbox {
    /// Queue `payload` for `quic`, as an HTTP datagram of `stream_id` when given (copied behind
    /// its prefix; a bare one goes as it is).
    pub fn push(&mut self, quic: &quinn::Connection, stream_id: Option<StreamId>, payload: Bytes) {
        let framed = match stream_id {
            None => Some((payload, 0)),
            Some(s) => {
                let mut buf = BytesMut::with_capacity(payload.len() + 8);
                write_prefix(&mut buf, s).ok().map(|()| {
                    let prefix = buf.len();
                    buf.extend_from_slice(&payload);
                    (buf.freeze(), prefix)
                })
            }
        };
        match framed {
            Some(d) => self.run_for(quic).push(d),
            None => self.dropped += 1,
        }
    }

    /// Queue `payloads`, cut at `lengths` (JS numbers), all as HTTP datagrams of `stream_id` or
    /// all bare: framed into one allocation, each datagram a slice of it. Lengths that overrun
    /// `payloads` are dropped and counted.
    pub fn push_all(
        &mut self,
        quic: &quinn::Connection,
        stream_id: Option<StreamId>,
        lengths: &[f64],
        payloads: &[u8],
    ) {
        let mut prefix = BytesMut::new();
        if let Some(s) = stream_id {
            if write_prefix(&mut prefix, s).is_err() {
                self.dropped += lengths.len() as u64;
                return;
            }
        }
        let mut all = BytesMut::with_capacity(payloads.len() + prefix.len() * lengths.len());
        let run = self.run_for(quic);
        let mut refused = 0;
        let mut at = 0usize;
        for &len in lengths {
            let end = at.saturating_add(len as usize);
            match payloads.get(at..end) {
                Some(payload) => {
                    all.extend_from_slice(&prefix);
                    all.extend_from_slice(payload);
                    run.push((all.split().freeze(), prefix.len()));
                }
                None => refused += 1,
            }
            at = end;
        }
        self.dropped += refused;
    }

    /// Count one datagram that cannot be queued (its connection is gone, say).
    pub fn refuse(&mut self) {
        self.dropped += 1;
    }

    fn run_for(&mut self, quic: &quinn::Connection) -> &mut Vec<(Bytes, usize)> {
        let same = self
            .runs
            .last()
            .is_some_and(|(q, _)| q.stable_id() == quic.stable_id());
        if !same {
            self.runs.push((quic.clone(), Vec::new()));
        }
        let last = self.runs.len() - 1;
        &mut self.runs[last].1
    }

    /// Hand everything to quinn on `rt` (here and now without one). A datagram that no longer
    /// fits its connection's send buffer is dropped and counted there.
    pub fn send(self, rt: Option<&tokio::runtime::Handle>, stats: Arc<Stats>) {
        if self.runs.is_empty() && self.dropped == 0 {
            return;
        }
        match rt {
            Some(rt) => {
                rt.spawn(async move { self.send_now(&stats) });
            }
            None => self.send_now(&stats),
        }
    }

    fn send_now(self, stats: &Stats) {
        let mut dropped = self.dropped;
        for (quic, items) in self.runs {
            let mut sender = BatchSender::new(&quic, stats);
            for (data, prefix) in items {
                if sender.send_framed(data, prefix).is_err() {
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            stats.datagrams_dropped.fetch_add(dropped, Relaxed);
        }
    }
}

/// Largest payload that fits one datagram now (HTTP datagrams lose their prefix to this).
pub fn max_size_on(quic: &quinn::Connection, stream_id: Option<StreamId>) -> Option<usize> {
    let max = quic.max_datagram_size()?;
    let prefix = stream_id.map_or(0, |s| varint::encoded_len(s.quarter()));
    Some(max.saturating_sub(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_routes_by_quarter_stream_id() {
        let routes = DatagramRoutes::default();
        routes.add(StreamId(8), RequestId(77));
        let d = Bytes::from_static(&[2, b'h', b'i']);
        let (t, p) = classify(true, &routes, &d);
        assert!(matches!(
            t,
            Target::H3 {
                request_id: RequestId(77),
                stream_id: StreamId(8)
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
