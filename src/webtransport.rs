//! WebTransport over HTTP/3 (draft-ietf-webtrans-http3-02, the dialect browsers speak).
//!
//! Sessions are extended-CONNECT request streams that stay open; their streams are plain QUIC
//! streams that start with a short header naming the session, and their datagrams are RFC 9297
//! datagrams on the CONNECT stream. We classify incoming streams ourselves (see `quic.rs`) rather
//! than through h3-webtransport, whose session takes over the whole h3 connection and whose
//! datagram reader would steal every datagram of the connection.
//!
//! Everything JS touches goes through a [`Hub`] (one per server or client): sessions and streams
//! are named by numeric handles, and every operation is a pull or an awaited write, so nothing
//! is pushed at JS faster than it reads.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::datagram::{put_varint, read_varint};
use crate::error::{H3Error, Result};
use crate::stats::{GaugeGuard, Stats};

/// First byte-pair of a WebTransport bidirectional stream (frame type 0x41).
pub const BIDI_TYPE: u64 = 0x41;
/// Stream type of a WebTransport unidirectional stream.
pub const UNI_TYPE: u64 = 0x54;
const CLOSE_CAPSULE: u64 = 0x2843;
const DRAIN_CAPSULE: u64 = 0x78ae;
/// Streams of a session that is gone are reset / stopped with this code.
pub const SESSION_GONE: u64 = 0x170d_7b68;
/// A stream named a session we do not have (or whose queue is full).
pub const BUFFERED_STREAM_REJECTED: u64 = 0x3994_bd84;
const APP_CODE_FIRST: u64 = 0x52e4_a40f_a8db;
const APP_CODE_LAST: u64 = 0x52e5_ac98_3162;
/// Longest close reason the draft allows.
pub const MAX_REASON: usize = 1024;
/// Capsules we buffer whole (CLOSE is at most 4 + 1024 bytes); larger unknown ones are skipped.
const MAX_CAPSULE: u64 = 4 + MAX_REASON as u64;

/// Incoming streams waiting for JS per session (per direction); beyond this they are refused.
pub const MAX_PENDING_STREAMS: usize = 256;
/// Datagrams waiting for JS per session; beyond this they are dropped and counted.
pub const MAX_PENDING_DATAGRAMS: usize = 1024;
/// Most bytes one read hands to JS.
const READ_BYTES: usize = crate::body::PULL_BYTES;

/// HTTP/3 error code carrying WebTransport application error `n`.
pub fn to_http_code(n: u32) -> u64 {
    APP_CODE_FIRST + u64::from(n) + u64::from(n) / 0x1e
}

/// The WebTransport application error code inside an HTTP/3 error code, if it carries one.
pub fn from_http_code(h: u64) -> Option<u32> {
    if !(APP_CODE_FIRST..=APP_CODE_LAST).contains(&h) || h.wrapping_sub(0x21).is_multiple_of(0x1f) {
        return None;
    }
    let shifted = h - APP_CODE_FIRST;
    u32::try_from(shifted - shifted / 0x1f).ok()
}

/// The header a stream we open starts with.
pub fn stream_header(bidi: bool, session_id: u64) -> Result<Bytes> {
    let mut b = BytesMut::with_capacity(10);
    put_varint(&mut b, if bidi { BIDI_TYPE } else { UNI_TYPE })?;
    put_varint(&mut b, session_id)?;
    Ok(b.freeze())
}

/// CLOSE_WEBTRANSPORT_SESSION capsule (reason cut to the draft's 1024 bytes, on a char edge).
pub fn close_capsule(code: u32, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut b = BytesMut::with_capacity(16 + reason.len());
    // Both varints are small constants or bounded lengths: they always fit.
    let _ = put_varint(&mut b, CLOSE_CAPSULE);
    let _ = put_varint(&mut b, 4 + reason.len() as u64);
    b.extend_from_slice(&code.to_be_bytes());
    b.extend_from_slice(reason);
    b.freeze()
}

pub fn drain_capsule() -> Bytes {
    let mut b = BytesMut::with_capacity(5);
    let _ = put_varint(&mut b, DRAIN_CAPSULE);
    let _ = put_varint(&mut b, 0);
    b.freeze()
}

#[derive(Debug, PartialEq, Eq)]
pub enum Capsule {
    Close(u32, String),
    Drain,
}

/// A capsule on the CONNECT stream broke the draft's rules.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedCapsule;

/// Incremental capsule parser for the CONNECT stream's data. Unknown capsules are skipped
/// without buffering; a CLOSE capsule longer than the draft allows is a protocol error.
#[derive(Default)]
pub struct CapsuleReader {
    buf: BytesMut,
    skip: u64,
}

impl CapsuleReader {
    pub fn push(&mut self, mut data: Bytes) -> std::result::Result<Vec<Capsule>, MalformedCapsule> {
        let mut out = Vec::new();
        loop {
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64) as usize;
                data.advance(n);
                self.skip -= n as u64;
                if self.skip > 0 {
                    return Ok(out);
                }
            }
            self.buf.extend_from_slice(&std::mem::take(&mut data));
            let mut peek = &self.buf[..];
            let (Some(ty), Some(len)) = (read_varint(&mut peek), read_varint(&mut peek)) else {
                return Ok(out);
            };
            let head = self.buf.len() - peek.len();
            let known = ty == CLOSE_CAPSULE || ty == DRAIN_CAPSULE;
            if known && len > MAX_CAPSULE {
                return Err(MalformedCapsule);
            }
            if !known {
                // Drop the header and whatever of the body we hold; skip the rest as it comes.
                let have = (self.buf.len() - head) as u64;
                let take = have.min(len);
                self.buf.advance(head + take as usize);
                self.skip = len - take;
                data = self.buf.split().freeze();
                continue;
            }
            if ((self.buf.len() - head) as u64) < len {
                return Ok(out);
            }
            self.buf.advance(head);
            let mut body = self.buf.split_to(len as usize);
            if ty == DRAIN_CAPSULE {
                out.push(Capsule::Drain);
            } else {
                if body.len() < 4 {
                    return Err(MalformedCapsule);
                }
                let code = body.get_u32();
                out.push(Capsule::Close(
                    code,
                    String::from_utf8_lossy(&body).into_owned(),
                ));
            }
            data = self.buf.split().freeze();
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    pub code: u32,
    pub reason: String,
    /// Closed with a CLOSE capsule or a FIN on the CONNECT stream (else: reset, connection
    /// lost, rejected).
    pub clean: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Open,
    Draining,
    Closed(CloseInfo),
}

/// One direction's queue of items waiting for a JS pull.
struct Queue<T> {
    tx: mpsc::Sender<T>,
    rx: tokio::sync::Mutex<mpsc::Receiver<T>>,
}

impl<T> Queue<T> {
    fn new(cap: usize) -> Self {
        let (tx, rx) = mpsc::channel(cap);
        Queue {
            tx,
            rx: tokio::sync::Mutex::new(rx),
        }
    }
}

/// A WebTransport session, server or client side.
pub struct Session {
    pub handle: u64,
    /// The CONNECT stream's id, which every stream and datagram of the session names.
    pub session_id: u64,
    pub quic: quinn::Connection,
    phase: watch::Sender<Phase>,
    incoming_bidi: Queue<u64>,
    incoming_uni: Queue<u64>,
    datagrams: Queue<Bytes>,
    /// JS asked to close: the task driving the CONNECT stream sends the capsule.
    close_request: Mutex<Option<oneshot::Sender<(u32, String)>>>,
    streams: Mutex<HashSet<u64>>,
    /// Set once draining began, so a drain followed at once by a close is still reported.
    drained: AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({}, stream {})", self.handle, self.session_id)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    fn closed_info(&self) -> Option<CloseInfo> {
        match &*self.phase.borrow() {
            Phase::Closed(i) => Some(i.clone()),
            _ => None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.closed_info().is_none()
    }

    /// Resolves once the session is closed.
    pub async fn wait_closed(&self) -> CloseInfo {
        let mut rx = self.phase.subscribe();
        loop {
            if let Phase::Closed(i) = &*rx.borrow_and_update() {
                return i.clone();
            }
            if rx.changed().await.is_err() {
                return CloseInfo {
                    code: 0,
                    reason: String::new(),
                    clean: false,
                };
            }
        }
    }

    /// True once the session is draining (the peer or our server is going away); false if it
    /// closed without draining first.
    pub async fn wait_draining(&self) -> bool {
        let mut rx = self.phase.subscribe();
        loop {
            match &*rx.borrow_and_update() {
                Phase::Draining => return true,
                Phase::Closed(_) => return self.drained.load(Relaxed),
                Phase::Open => {}
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    }

    pub fn set_draining(&self) {
        self.drained.store(true, Relaxed);
        self.phase.send_if_modified(|p| {
            let open = *p == Phase::Open;
            if open {
                *p = Phase::Draining;
            }
            open
        });
    }

    /// Queue a datagram for JS; false when the queue is full or the session is closed.
    pub fn push_datagram(&self, payload: Bytes) -> bool {
        self.is_open() && self.datagrams.tx.try_send(payload).is_ok()
    }

    /// Next item of `queue`, or `None` once the session is closed (what is still queued then
    /// belongs to a closed session: its streams were reset).
    async fn pull<T>(&self, queue: &Queue<T>) -> Option<T> {
        let mut rx = queue.rx.lock().await;
        if !self.is_open() {
            return None;
        }
        if let Ok(v) = rx.try_recv() {
            return Some(v);
        }
        tokio::select! {
            v = rx.recv() => v,
            _ = self.wait_closed() => None,
        }
    }

    /// Every datagram waiting (at least one), or `None` once the session is closed.
    pub async fn pull_datagrams(&self) -> Option<Vec<Bytes>> {
        let first = self.pull(&self.datagrams).await?;
        let mut out = vec![first];
        let mut rx = self.datagrams.rx.lock().await;
        while out.len() < 256 {
            match rx.try_recv() {
                Ok(d) => out.push(d),
                Err(_) => break,
            }
        }
        Some(out)
    }

    /// Ask the task driving the CONNECT stream to close the session.
    pub fn request_close(&self, code: u32, reason: String) {
        if let Some(tx) = lock(&self.close_request).take() {
            let _ = tx.send((code, reason));
        }
    }
}

/// Receiving half of a WebTransport stream: bytes already read past the header come first.
pub struct RecvHalf {
    pub prefix: Option<Bytes>,
    pub stream: quinn::RecvStream,
}

/// One half of a stream, usable from JS calls that may overlap (a read and a stop).
struct Half<T> {
    io: tokio::sync::Mutex<T>,
    abort: Notify,
    aborted: AtomicBool,
    done: AtomicBool,
}

impl<T> Half<T> {
    fn new(io: T) -> Self {
        Half {
            io: tokio::sync::Mutex::new(io),
            abort: Notify::new(),
            aborted: AtomicBool::new(false),
            done: AtomicBool::new(false),
        }
    }

    /// Run `op` on the half unless (or until) it is aborted.
    async fn run<R, F>(&self, op: F) -> Result<R>
    where
        F: AsyncFnOnce(&mut T) -> Result<R>,
    {
        let aborted = self.abort.notified();
        tokio::pin!(aborted);
        aborted.as_mut().enable();
        if self.aborted.load(Relaxed) {
            return Err(H3Error::StreamClosed);
        }
        tokio::select! {
            r = async { let mut g = self.io.lock().await; op(&mut g).await } => r,
            _ = aborted => Err(H3Error::StreamClosed),
        }
    }

    /// Abort pending operations, then apply `f` once the half is free.
    fn abort_with(
        self: &Arc<Self>,
        rt: &tokio::runtime::Handle,
        f: impl FnOnce(&mut T) + Send + 'static,
    ) where
        T: Send + 'static,
    {
        if self.aborted.swap(true, Relaxed) {
            return;
        }
        self.done.store(true, Relaxed);
        self.abort.notify_waiters();
        let me = self.clone();
        rt.spawn(async move { f(&mut *me.io.lock().await) });
    }
}

/// A WebTransport stream as JS holds it (either half may be absent: uni streams).
pub struct WtStream {
    session: u64,
    send: Option<Arc<Half<quinn::SendStream>>>,
    recv: Option<Arc<Half<RecvHalf>>>,
}

/// What a read yields.
#[derive(Debug)]
pub enum ReadOutcome {
    /// Pieces as QUIC delivered them (copied once, into JS memory, at the edge).
    Data(Vec<Bytes>),
    End,
    /// The peer reset the stream; its WebTransport error code if it carried one.
    Reset(Option<u32>),
}

/// Which kind of stream JS asked for or is handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Bidi,
    Uni,
}

/// Sessions and streams of one server or client, by handle.
pub struct Hub {
    next_stream: AtomicU64,
    next_session: AtomicU64,
    sessions: Mutex<HashMap<u64, Arc<Session>>>,
    streams: Mutex<HashMap<u64, Arc<WtStream>>>,
    pub stats: Arc<Stats>,
    /// Resets and stops requested from the JS thread run here.
    rt: tokio::runtime::Handle,
}

impl Hub {
    /// Needs the tokio runtime context.
    pub fn new(stats: Arc<Stats>) -> Result<Arc<Hub>> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| H3Error::InvalidArg(format!("no async runtime: {e}")))?;
        Ok(Arc::new(Hub {
            rt,
            next_stream: AtomicU64::new(1),
            next_session: AtomicU64::new(1),
            sessions: Mutex::default(),
            streams: Mutex::default(),
            stats,
        }))
    }

    /// A fresh session handle (clients; a server names sessions by their request id).
    pub fn next_session_handle(&self) -> u64 {
        self.next_session.fetch_add(1, Relaxed)
    }

    pub fn session(&self, handle: u64) -> Result<Arc<Session>> {
        lock(&self.sessions)
            .get(&handle)
            .cloned()
            .ok_or(H3Error::SessionClosed)
    }

    fn stream(&self, handle: u64) -> Result<Arc<WtStream>> {
        lock(&self.streams)
            .get(&handle)
            .cloned()
            .ok_or(H3Error::StreamClosed)
    }

    /// Create a session (not yet established) and register it with the connection.
    pub fn create_session(
        &self,
        handle: u64,
        session_id: u64,
        conn: &Arc<WtConn>,
    ) -> (Arc<Session>, oneshot::Receiver<(u32, String)>) {
        let (close_tx, close_rx) = oneshot::channel();
        let session = Arc::new(Session {
            handle,
            session_id,
            quic: conn.quic.clone(),
            phase: watch::channel(Phase::Open).0,
            incoming_bidi: Queue::new(MAX_PENDING_STREAMS),
            incoming_uni: Queue::new(MAX_PENDING_STREAMS),
            datagrams: Queue::new(MAX_PENDING_DATAGRAMS),
            close_request: Mutex::new(Some(close_tx)),
            streams: Mutex::default(),
            drained: AtomicBool::new(false),
        });
        lock(&self.sessions).insert(handle, session.clone());
        lock(&conn.sessions).insert(session_id, session.clone());
        conn.datagrams.add_session(session_id, session.clone());
        (session, close_rx)
    }

    /// The session is over: settle it, reset its streams, forget it on its connection. JS
    /// still finds it by handle (to learn how it ended) until it calls [`Hub::release`].
    pub fn end_session(&self, session: &Session, conn: &WtConn, info: CloseInfo) {
        session.phase.send_if_modified(|p| {
            let open = !matches!(p, Phase::Closed(_));
            if open {
                *p = Phase::Closed(info);
            }
            open
        });
        {
            let mut map = lock(&conn.sessions);
            if map
                .get(&session.session_id)
                .is_some_and(|s| s.handle == session.handle)
            {
                map.remove(&session.session_id);
            }
        }
        conn.datagrams.remove(session.session_id);
        let handles: Vec<u64> = lock(&session.streams).drain().collect();
        let mut table = lock(&self.streams);
        for h in handles {
            if let Some(s) = table.remove(&h) {
                abort_stream(&self.rt, &s, SESSION_GONE);
            }
        }
    }

    /// JS learnt how the session ended: forget it.
    pub fn release(&self, handle: u64) {
        lock(&self.sessions).remove(&handle);
    }

    /// Wait for the session to end, then forget it (JS calls this once per session).
    pub async fn closed(&self, handle: u64) -> CloseInfo {
        let Ok(s) = self.session(handle) else {
            return CloseInfo {
                code: 0,
                reason: String::new(),
                clean: false,
            };
        };
        let info = s.wait_closed().await;
        self.release(handle);
        info
    }

    fn add_stream(
        &self,
        session: &Session,
        send: Option<quinn::SendStream>,
        recv: Option<RecvHalf>,
    ) -> u64 {
        let handle = self.next_stream.fetch_add(1, Relaxed);
        let s = Arc::new(WtStream {
            session: session.handle,
            send: send.map(|s| Arc::new(Half::new(s))),
            recv: recv.map(|r| Arc::new(Half::new(r))),
        });
        lock(&self.streams).insert(handle, s);
        lock(&session.streams).insert(handle);
        handle
    }

    /// Forget a stream once both of its halves are finished.
    fn settle_stream(&self, handle: u64, s: &WtStream) {
        let done = |h: Option<bool>| h.unwrap_or(true);
        if done(s.send.as_ref().map(|h| h.done.load(Relaxed)))
            && done(s.recv.as_ref().map(|h| h.done.load(Relaxed)))
        {
            lock(&self.streams).remove(&handle);
            if let Ok(sess) = self.session(s.session) {
                lock(&sess.streams).remove(&handle);
            }
        }
    }

    /// A stream the peer opened for `session` (already past its header).
    fn incoming(
        &self,
        session: &Arc<Session>,
        dir: Dir,
        send: Option<quinn::SendStream>,
        recv: RecvHalf,
    ) {
        let handle = self.add_stream(session, send, Some(recv));
        let queue = match dir {
            Dir::Bidi => &session.incoming_bidi,
            Dir::Uni => &session.incoming_uni,
        };
        if !session.is_open() || queue.tx.try_send(handle).is_err() {
            if let Some(s) = lock(&self.streams).remove(&handle) {
                lock(&session.streams).remove(&handle);
                abort_stream(&self.rt, &s, BUFFERED_STREAM_REJECTED);
            }
        }
    }

    /// Next stream the peer opened, or `None` once the session is closed (or unknown).
    pub async fn accept(&self, session: u64, dir: Dir) -> Option<u64> {
        let s = self.session(session).ok()?;
        let queue = match dir {
            Dir::Bidi => &s.incoming_bidi,
            Dir::Uni => &s.incoming_uni,
        };
        s.pull(queue).await
    }

    /// Open a stream on `session`, header written.
    pub async fn open(&self, session: u64, dir: Dir) -> Result<u64> {
        let s = self.session(session)?;
        if !s.is_open() {
            return Err(H3Error::SessionClosed);
        }
        let header = stream_header(dir == Dir::Bidi, s.session_id)?;
        let opened = async {
            let (mut send, recv) = match dir {
                Dir::Bidi => {
                    let (send, recv) = s.quic.open_bi().await.map_err(|_| ())?;
                    (send, Some(recv))
                }
                Dir::Uni => (s.quic.open_uni().await.map_err(|_| ())?, None),
            };
            send.write_chunk(header).await.map_err(|_| ())?;
            Ok::<_, ()>((send, recv))
        };
        let (send, recv) = tokio::select! {
            r = opened => r.map_err(|_| H3Error::ConnectionLost)?,
            _ = s.wait_closed() => return Err(H3Error::SessionClosed),
        };
        if !s.is_open() {
            return Err(H3Error::SessionClosed);
        }
        Ok(self.add_stream(
            &s,
            Some(send),
            recv.map(|stream| RecvHalf {
                prefix: None,
                stream,
            }),
        ))
    }

    pub async fn read(&self, handle: u64) -> Result<ReadOutcome> {
        let s = self.stream(handle)?;
        let half = s
            .recv
            .clone()
            .ok_or_else(|| H3Error::InvalidArg("this WebTransport stream cannot be read".into()))?;
        let out = half
            .run(async |r: &mut RecvHalf| {
                if let Some(p) = r.prefix.take() {
                    return Ok(ReadOutcome::Data(vec![p]));
                }
                match r.stream.read_chunk(READ_BYTES, true).await {
                    Ok(Some(c)) => {
                        // Take whatever else already arrived (QUIC hands out about a packet per
                        // chunk), so JS sees few large chunks rather than many small ones.
                        let mut pieces = vec![c.bytes];
                        let mut len = pieces[0].len();
                        while len < READ_BYTES {
                            match r.stream.read_chunk(READ_BYTES - len, true).now_or_never() {
                                Some(Ok(Some(c))) => {
                                    len += c.bytes.len();
                                    pieces.push(c.bytes);
                                }
                                // End, reset or nothing ready: the next read sees it.
                                _ => break,
                            }
                        }
                        Ok(ReadOutcome::Data(pieces))
                    }
                    Ok(None) => Ok(ReadOutcome::End),
                    Err(quinn::ReadError::Reset(code)) => {
                        Ok(ReadOutcome::Reset(from_http_code(code.into_inner())))
                    }
                    Err(quinn::ReadError::ConnectionLost(_)) => Err(H3Error::ConnectionLost),
                    Err(_) => Err(H3Error::StreamClosed),
                }
            })
            .await;
        if !matches!(out, Ok(ReadOutcome::Data(_))) {
            half.done.store(true, Relaxed);
            self.settle_stream(handle, &s);
        }
        out
    }

    /// Write a chunk; `Ok(Some(code))` when the peer sent STOP_SENDING (with its WebTransport
    /// code, if any: `Ok(Some(None))`).
    pub async fn write(&self, handle: u64, chunk: Bytes) -> Result<Option<Option<u32>>> {
        let s = self.stream(handle)?;
        let half = s.send.clone().ok_or_else(|| {
            H3Error::InvalidArg("this WebTransport stream cannot be written".into())
        })?;
        let out = half
            .run(
                async |w: &mut quinn::SendStream| match w.write_chunk(chunk).await {
                    Ok(()) => Ok(None),
                    Err(quinn::WriteError::Stopped(code)) => {
                        Ok(Some(from_http_code(code.into_inner())))
                    }
                    Err(quinn::WriteError::ConnectionLost(_)) => Err(H3Error::ConnectionLost),
                    Err(_) => Err(H3Error::StreamClosed),
                },
            )
            .await;
        if !matches!(out, Ok(None)) {
            half.done.store(true, Relaxed);
            self.settle_stream(handle, &s);
        }
        out
    }

    /// End the sending half (FIN).
    pub async fn finish(&self, handle: u64) -> Result<()> {
        let s = self.stream(handle)?;
        let Some(half) = s.send.clone() else {
            return Ok(());
        };
        let r = half
            .run(async |w: &mut quinn::SendStream| w.finish().map_err(|_| H3Error::StreamClosed))
            .await;
        half.done.store(true, Relaxed);
        self.settle_stream(handle, &s);
        r
    }

    /// Reset the sending half with WebTransport error `code`.
    pub fn reset(&self, handle: u64, code: u32) {
        if let Ok(s) = self.stream(handle) {
            if let Some(h) = &s.send {
                h.abort_with(&self.rt, move |w| {
                    let _ = w.reset(varint(to_http_code(code)));
                });
            }
            self.settle_stream(handle, &s);
        }
    }

    /// Ask the peer to stop sending, with WebTransport error `code`.
    pub fn stop_sending(&self, handle: u64, code: u32) {
        if let Ok(s) = self.stream(handle) {
            if let Some(h) = &s.recv {
                h.abort_with(&self.rt, move |r| {
                    let _ = r.stream.stop(varint(to_http_code(code)));
                });
            }
            self.settle_stream(handle, &s);
        }
    }

    /// Send a datagram on `session`.
    pub fn send_datagram(&self, session: u64, payload: &[u8]) -> Result<()> {
        let s = self.session(session)?;
        crate::datagram::send_on(&s.quic, &self.stats, Some(s.session_id), payload)
    }

    pub fn max_datagram_size(&self, session: u64) -> Option<usize> {
        let s = self.session(session).ok()?;
        crate::datagram::max_size_on(&s.quic, Some(s.session_id))
    }

    /// Sessions and streams currently tracked (tests check that both return to zero).
    pub fn counts(&self) -> (usize, usize) {
        (lock(&self.sessions).len(), lock(&self.streams).len())
    }
}

fn varint(v: u64) -> quinn::VarInt {
    quinn::VarInt::from_u64(v).unwrap_or(quinn::VarInt::MAX)
}

fn abort_stream(rt: &tokio::runtime::Handle, s: &WtStream, code: u64) {
    if let Some(h) = &s.send {
        h.abort_with(rt, move |w| {
            let _ = w.reset(varint(code));
        });
    }
    if let Some(h) = &s.recv {
        h.abort_with(rt, move |r| {
            let _ = r.stream.stop(varint(code));
        });
    }
}

/// The WebTransport state of one QUIC connection: its sessions by CONNECT stream id.
pub struct WtConn {
    pub hub: Arc<Hub>,
    pub quic: quinn::Connection,
    sessions: Mutex<HashMap<u64, Arc<Session>>>,
    /// Where this connection's datagram reader looks up session datagrams.
    pub datagrams: Arc<crate::datagram::Routes>,
}

impl WtConn {
    pub fn new(
        hub: Arc<Hub>,
        quic: quinn::Connection,
        datagrams: Arc<crate::datagram::Routes>,
    ) -> Arc<Self> {
        Arc::new(WtConn {
            hub,
            quic,
            sessions: Mutex::default(),
            datagrams,
        })
    }

    /// A peer-opened stream whose header named `session_id`.
    pub fn incoming(
        &self,
        session_id: u64,
        dir: Dir,
        send: Option<quinn::SendStream>,
        mut recv: RecvHalf,
    ) {
        let session = lock(&self.sessions).get(&session_id).cloned();
        match session {
            Some(s) => self.hub.incoming(&s, dir, send, recv),
            None => {
                // Unknown session (never existed, or already gone).
                let _ = recv.stream.stop(varint(BUFFERED_STREAM_REJECTED));
                if let Some(mut send) = send {
                    let _ = send.reset(varint(BUFFERED_STREAM_REJECTED));
                }
            }
        }
    }

    /// Close every session of the connection (it is going away).
    pub fn end_all(&self, clean: bool) {
        let all: Vec<Arc<Session>> = lock(&self.sessions).values().cloned().collect();
        for s in all {
            self.hub.end_session(
                &s,
                self,
                CloseInfo {
                    code: 0,
                    reason: String::new(),
                    clean,
                },
            );
        }
    }
}

/// Sending side of a CONNECT stream (server request stream or client request stream).
pub trait CapsuleSink: Send {
    fn send(&mut self, data: Bytes) -> impl Future<Output = bool> + Send;
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
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
        }
    };
}
capsule_sink!(h3::server::RequestStream<S, Bytes>);
capsule_sink!(h3::client::RequestStream<S, Bytes>);

/// Drive an established session's CONNECT stream until the session ends: read capsules from
/// the peer, send ours when JS closes, follow `drain` (server going away), and settle
/// everything at the end. `send` and `recv` are the two halves of the CONNECT stream.
pub async fn run_session<W, R>(
    conn: &WtConn,
    session: &Arc<Session>,
    mut send: W,
    mut recv: R,
    mut close_rx: oneshot::Receiver<(u32, String)>,
    drain: impl Future<Output = ()>,
) where
    W: CapsuleSink,
    R: crate::body::BodySource,
{
    let _active = GaugeGuard::inc(&conn.hub.stats.webtransport_sessions_active);
    let mut capsules = CapsuleReader::default();
    let closed = conn.quic.closed();
    tokio::pin!(closed, drain);
    let mut drained = false;
    let info = loop {
        tokio::select! {
            data = std::future::poll_fn(|cx| recv.poll_chunk(cx)) => match data {
                Ok(Some(bytes)) => match capsules.push(bytes) {
                    Ok(caps) => {
                        let mut closing = None;
                        for c in caps {
                            match c {
                                Capsule::Drain => session.set_draining(),
                                Capsule::Close(code, reason) => closing = Some((code, reason)),
                            }
                        }
                        if let Some((code, reason)) = closing {
                            send.finish().await;
                            break CloseInfo { code, reason, clean: true };
                        }
                    }
                    Err(MalformedCapsule) => {
                        // A malformed CLOSE capsule: end the session abruptly.
                        break CloseInfo { code: 0, reason: String::new(), clean: false };
                    }
                },
                // FIN without a capsule: closed with code 0.
                Ok(None) => {
                    send.finish().await;
                    break CloseInfo { code: 0, reason: String::new(), clean: true };
                }
                Err(_) => break CloseInfo { code: 0, reason: String::new(), clean: false },
            },
            req = &mut close_rx => {
                let (code, reason) = req.unwrap_or((0, String::new()));
                let capsule = close_capsule(code, &reason);
                if send.send(capsule).await {
                    send.finish().await;
                }
                break CloseInfo { code, reason, clean: true };
            }
            _ = &mut drain, if !drained => {
                drained = true;
                session.set_draining();
                let _ = send.send(drain_capsule()).await;
            }
            _ = &mut closed => break CloseInfo { code: 0, reason: String::new(), clean: false },
        }
    };
    let clean = info.clean;
    conn.hub.end_session(session, conn, info);
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

/// Read a stream's WebTransport header. Returns the session id for a WebTransport stream and
/// whatever was read (past the header for WebTransport, everything for other streams, so the
/// caller can hand it on untouched).
pub async fn read_header(
    recv: &mut quinn::RecvStream,
    wt_type: u64,
) -> (Option<u64>, Option<Bytes>) {
    let mut buf = BytesMut::new();
    loop {
        let mut peek = &buf[..];
        match read_varint(&mut peek) {
            Some(ty) if ty != wt_type => break,
            Some(_) => {
                if let Some(session) = read_varint(&mut peek) {
                    let used = buf.len() - peek.len();
                    buf.advance(used);
                    return (Some(session), (!buf.is_empty()).then(|| buf.freeze()));
                }
            }
            None => {}
        }
        // A header is at most 16 bytes: more means it was not one (or the peer is stalling).
        if buf.len() > 16 {
            break;
        }
        match recv.read_chunk(64 * 1024, true).await {
            Ok(Some(c)) => buf.extend_from_slice(&c.bytes),
            _ => break,
        }
    }
    (None, (!buf.is_empty()).then(|| buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_codes_round_trip_and_skip_grease() {
        for n in [0u32, 1, 29, 30, 31, 1000, 0xffff, u32::MAX] {
            assert_eq!(from_http_code(to_http_code(n)), Some(n), "code {n}");
        }
        assert_eq!(to_http_code(0), APP_CODE_FIRST);
        assert_eq!(to_http_code(u32::MAX), APP_CODE_LAST);
        // A grease code point inside the range carries no application code.
        let grease = (APP_CODE_FIRST..APP_CODE_LAST)
            .find(|h| (h - 0x21) % 0x1f == 0)
            .unwrap();
        assert_eq!(from_http_code(grease), None);
        assert_eq!(from_http_code(0x100), None);
    }

    #[test]
    fn capsules_parse_across_chunks_and_skip_unknown() {
        let mut wire = BytesMut::new();
        // An unknown capsule of 300 bytes first.
        put_varint(&mut wire, 0x1234).unwrap();
        put_varint(&mut wire, 300).unwrap();
        wire.extend_from_slice(&[7; 300]);
        wire.extend_from_slice(&drain_capsule());
        wire.extend_from_slice(&close_capsule(4242, "bye ✓"));
        let wire = wire.freeze();
        for step in [1usize, 3, 7, 1000] {
            let mut r = CapsuleReader::default();
            let mut got = Vec::new();
            for piece in wire.chunks(step) {
                got.extend(r.push(Bytes::copy_from_slice(piece)).unwrap());
            }
            assert_eq!(
                got,
                vec![Capsule::Drain, Capsule::Close(4242, "bye ✓".into())],
                "step {step}"
            );
        }
    }

    #[test]
    fn oversized_close_capsule_is_an_error() {
        let mut wire = BytesMut::new();
        put_varint(&mut wire, CLOSE_CAPSULE).unwrap();
        put_varint(&mut wire, 1 << 20).unwrap();
        assert!(CapsuleReader::default().push(wire.freeze()).is_err());
    }

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        let long = "é".repeat(600);
        let c = close_capsule(1, &long);
        let mut r = CapsuleReader::default();
        let got = r.push(c).unwrap();
        let Capsule::Close(1, reason) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(reason.len(), 1024);
    }

    #[test]
    fn headers_encode_type_and_session() {
        assert_eq!(&stream_header(true, 0).unwrap()[..], &[0x40, 0x41, 0x00]);
        assert_eq!(&stream_header(false, 4).unwrap()[..], &[0x40, 0x54, 0x04]);
    }
}
