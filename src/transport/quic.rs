//! h3's QUIC traits implemented directly on quinn.
//!
//! Our own adapter rather than h3-quinn's, for three reasons: every incoming stream passes a
//! [`FrameGuard`] before h3 sees it (bounded memory whatever frame length a peer claims);
//! STOP_SENDING from the peer is observable while a request waits for JS (h3 never writes then,
//! so nothing else would notice), through [`Stops`]; and no call here can panic (h3-quinn's
//! `stop_sending`/`recv_id` unwrap while a read is in flight). With WebTransport on it also
//! carries what h3 cannot: our extra SETTINGS out and the peer's in (`wt_settings.rs`), and
//! draft-15's `webtransport-h3` token swapped for h3's `webtransport` (`wt_token.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::stream::{self, BoxStream, FuturesUnordered, StreamExt};
use h3::quic::{self, ConnectionErrorIncoming, StreamErrorIncoming, StreamId, WriteBuf};
use h3_datagram::quic_traits::DatagramConnectionExt;
use quinn::VarInt;

use super::classify::{classify_bidi, classify_uni, StreamClassifier};
use super::early::EarlyStreams;
use super::stops::Stops;
use crate::proto::frame_guard::{FrameGuard, H3_EXCESSIVE_LOAD};
use crate::proto::request_rules::{RequestRules, H3_MESSAGE_ERROR};
use crate::proto::wt_settings::{append_to_control, SettingsSniffer};
use crate::proto::wt_token::{self, FirstFrame, H3_TOKEN, TOKEN};
use crate::proto::wt_wire;

fn conn_error(e: quinn::ConnectionError) -> ConnectionErrorIncoming {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => ConnectionErrorIncoming::ApplicationClose {
            error_code: c.error_code.into_inner(),
        },
        quinn::ConnectionError::TimedOut => ConnectionErrorIncoming::Timeout,
        other => ConnectionErrorIncoming::Undefined(Arc::new(other)),
    }
}

fn stream_conn_error(e: quinn::ConnectionError) -> StreamErrorIncoming {
    StreamErrorIncoming::ConnectionErrorIncoming {
        connection_error: conn_error(e),
    }
}

fn stream_id(id: quinn::StreamId) -> StreamId {
    // A QUIC stream id is a 62-bit varint, exactly h3's StreamId range.
    let v = u64::from(VarInt::from(id)) & ((1 << 62) - 1);
    match StreamId::try_from(v) {
        Ok(s) => s,
        Err(_) => unreachable!("62-bit value rejected as stream id"), // ok: masked to 62 bits above
    }
}

fn varint(code: u64) -> VarInt {
    VarInt::from_u64(code).unwrap_or(VarInt::MAX)
}

/// Receiving half, with the frame guard in front of h3.
pub struct RecvStream {
    stream: quinn::RecvStream,
    guard: FrameGuard,
    /// Bytes read ahead while classifying the stream (WebTransport or not), handed to h3 first.
    prefix: Option<Bytes>,
    /// RFC 9114 message rules h3 does not enforce; on server request streams only.
    rules: Option<RequestRules>,
    /// Peer uni streams with WebTransport on: the SETTINGS a control stream starts with go to
    /// the classifier (h3 keeps the ones it does not know to itself).
    sniffer: Option<(SettingsSniffer, Arc<dyn StreamClassifier>)>,
    /// Server request streams with WebTransport on: the first HEADERS frame is held whole so a
    /// `webtransport-h3` token can be swapped for one h3 knows (`proto/wt_token.rs`).
    token: Option<TokenGate>,
}

/// A request stream's first bytes, held until its first frame is whole.
struct TokenGate {
    buf: bytes::BytesMut,
    /// Frames above this are not held (the frame guard refuses them).
    limit: u64,
    classifier: Arc<dyn StreamClassifier>,
}

impl RecvStream {
    fn new(stream: quinn::RecvStream, guard: FrameGuard, prefix: Option<Bytes>) -> Self {
        RecvStream {
            stream,
            guard,
            prefix,
            rules: None,
            sniffer: None,
            token: None,
        }
    }

    /// The next bytes QUIC delivered (those read while classifying first).
    fn poll_raw(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, quinn::ReadError>> {
        // read_chunk is cancel-safe: a fresh future per poll loses nothing and keeps the
        // stream ours between polls (so stop_sending is always possible).
        if let Some(p) = self.prefix.take() {
            return Poll::Ready(Ok(Some(p)));
        }
        let fut = self.stream.read_chunk(usize::MAX, true);
        Poll::Ready(ready!(std::pin::pin!(fut).poll(cx)).map(|c| c.map(|c| c.bytes)))
    }

    /// [`Self::poll_raw`], with the first frame of a gated stream held until it is whole, and
    /// a draft-15 token in it swapped for h3's.
    fn poll_gated(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, quinn::ReadError>> {
        if self.token.is_none() {
            return self.poll_raw(cx);
        }
        loop {
            let chunk = match ready!(self.poll_raw(cx)) {
                Ok(c) => c,
                Err(e) => {
                    self.token = None;
                    return Poll::Ready(Err(e));
                }
            };
            let Some(gate) = self.token.as_mut() else {
                return Poll::Ready(Ok(chunk));
            };
            let held = match chunk {
                // Usually the first chunk holds the whole frame: no copy.
                Some(c)
                    if gate.buf.is_empty()
                        && wt_token::first_frame(&c, gate.limit) == FirstFrame::Ready =>
                {
                    c
                }
                Some(c) => {
                    gate.buf.extend_from_slice(&c);
                    if wt_token::first_frame(&gate.buf, gate.limit) == FirstFrame::Incomplete {
                        continue;
                    }
                    std::mem::take(&mut gate.buf).freeze()
                }
                None => std::mem::take(&mut gate.buf).freeze(),
            };
            let Some(gate) = self.token.take() else {
                return Poll::Ready(Ok(Some(held)));
            };
            if held.is_empty() {
                return Poll::Ready(Ok(None));
            }
            let out = match wt_token::swap_token(&held, H3_TOKEN, TOKEN) {
                Some(swapped) => {
                    gate.classifier
                        .h3_token(u64::from(VarInt::from(self.stream.id())));
                    swapped
                }
                None => held,
            };
            return Poll::Ready(Ok(Some(out)));
        }
    }

    /// A malformed request (RFC 9114 §4.1.2): stream error H3_MESSAGE_ERROR.
    fn malformed(&mut self) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        let _ = self.stream.stop(varint(H3_MESSAGE_ERROR));
        Poll::Ready(Err(StreamErrorIncoming::StreamTerminated {
            error_code: H3_MESSAGE_ERROR,
        }))
    }
}

impl quic::RecvStream for RecvStream {
    type Buf = Bytes;

    fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        let chunk = match ready!(self.poll_gated(cx)) {
            Ok(c) => c,
            Err(quinn::ReadError::Reset(code)) => {
                return Poll::Ready(Err(StreamErrorIncoming::StreamTerminated {
                    error_code: code.into_inner(),
                }))
            }
            Err(quinn::ReadError::ConnectionLost(e)) => {
                return Poll::Ready(Err(stream_conn_error(e)))
            }
            Err(e) => return Poll::Ready(Err(StreamErrorIncoming::Unknown(Box::new(e)))),
        };
        let Some(chunk) = chunk else {
            if let Some(Err(_)) = self.rules.as_mut().map(RequestRules::finish) {
                return self.malformed();
            }
            return Poll::Ready(Ok(None));
        };
        if let Some((sniffer, classifier)) = self.sniffer.as_mut() {
            if let Some(settings) = sniffer.observe(&chunk) {
                classifier.peer_settings(settings);
            }
            if sniffer.is_done() {
                self.sniffer = None;
            }
        }
        if self.guard.observe(&chunk).is_err() {
            let _ = self.stream.stop(varint(H3_EXCESSIVE_LOAD));
            return Poll::Ready(Err(StreamErrorIncoming::StreamTerminated {
                error_code: H3_EXCESSIVE_LOAD,
            }));
        }
        if let Some(Err(_)) = self.rules.as_mut().map(|r| r.observe(&chunk)) {
            return self.malformed();
        }
        Poll::Ready(Ok(Some(chunk)))
    }

    fn stop_sending(&mut self, error_code: u64) {
        let _ = self.stream.stop(varint(error_code));
    }

    fn recv_id(&self) -> StreamId {
        stream_id(self.stream.id())
    }
}

/// Sending half.
pub struct SendStream<B: Buf> {
    stream: quinn::SendStream,
    writing: Option<WriteBuf<B>>,
    /// Our control stream only: settings to add to the SETTINGS frame h3 writes first.
    settings_extra: Option<Vec<(u64, u64)>>,
    /// Bytes to write before `writing` (that rewritten first write).
    raw: Option<Bytes>,
    /// Client request streams with WebTransport on: asked on the first write whether a
    /// `webtransport` token must become draft-15's `webtransport-h3`.
    token: Option<Arc<dyn StreamClassifier>>,
    /// Request streams with WebTransport on: h3's reserved frame is left out (it would follow a
    /// CLOSE capsule, `wt_wire::is_reserved_frame`).
    no_reserved: bool,
}

impl<B: Buf> SendStream<B> {
    fn new(stream: quinn::SendStream) -> Self {
        SendStream {
            stream,
            writing: None,
            settings_extra: None,
            raw: None,
            token: None,
            no_reserved: false,
        }
    }
}

fn write_error(e: quinn::WriteError) -> StreamErrorIncoming {
    match e {
        quinn::WriteError::Stopped(code) => StreamErrorIncoming::StreamTerminated {
            error_code: code.into_inner(),
        },
        quinn::WriteError::ConnectionLost(e) => stream_conn_error(e),
        other => StreamErrorIncoming::Unknown(Box::new(other)),
    }
}

impl<B: Buf> quic::SendStream<B> for SendStream<B> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        if let Some(raw) = self.raw.as_mut() {
            while !raw.is_empty() {
                let n =
                    ready!(Pin::new(&mut self.stream).poll_write(cx, raw)).map_err(write_error)?;
                raw.advance(n);
            }
        }
        self.raw = None;
        if let Some(data) = self.writing.as_mut() {
            while data.has_remaining() {
                let n = ready!(Pin::new(&mut self.stream).poll_write(cx, data.chunk()))
                    .map_err(write_error)?;
                data.advance(n);
            }
        }
        self.writing = None;
        Poll::Ready(Ok(()))
    }

    fn send_data<T: Into<WriteBuf<B>>>(&mut self, data: T) -> Result<(), StreamErrorIncoming> {
        if let Some(extra) = self.settings_extra.take() {
            let mut first: WriteBuf<B> = data.into();
            let bytes = first.copy_to_bytes(first.remaining());
            self.raw = Some(append_to_control(&bytes, &extra).unwrap_or(bytes));
            return Ok(());
        }
        if self.token.take().is_some_and(|c| c.sends_h3_token()) {
            // The request's HEADERS frame, whole (h3 writes it in one piece).
            let mut first: WriteBuf<B> = data.into();
            let bytes = first.copy_to_bytes(first.remaining());
            self.raw = Some(wt_token::swap_token(&bytes, TOKEN, H3_TOKEN).unwrap_or(bytes));
            return Ok(());
        }
        if self.writing.is_some() || self.raw.is_some() {
            // h3 always waits for poll_ready first; anything else is a bug, not a peer's doing.
            return Err(StreamErrorIncoming::ConnectionErrorIncoming {
                connection_error: ConnectionErrorIncoming::InternalError(
                    "send_data while a write is pending".into(),
                ),
            });
        }
        let data: WriteBuf<B> = data.into();
        if self.no_reserved && wt_wire::is_reserved_frame(data.chunk()) {
            return Ok(());
        }
        self.writing = Some(data);
        Ok(())
    }

    fn poll_finish(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        Poll::Ready(
            self.stream
                .finish()
                .map_err(|e| StreamErrorIncoming::Unknown(Box::new(e))),
        )
    }

    fn reset(&mut self, reset_code: u64) {
        let _ = self.stream.reset(varint(reset_code));
    }

    fn send_id(&self) -> StreamId {
        stream_id(self.stream.id())
    }
}

impl<B: Buf> quic::SendStreamUnframed<B> for SendStream<B> {
    fn poll_send<D: Buf>(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut D,
    ) -> Poll<Result<usize, StreamErrorIncoming>> {
        // Finish any framed write first, so bytes never interleave.
        ready!(quic::SendStream::<B>::poll_ready(self, cx))?;
        let n =
            ready!(Pin::new(&mut self.stream).poll_write(cx, buf.chunk())).map_err(write_error)?;
        buf.advance(n);
        Poll::Ready(Ok(n))
    }
}

/// Both halves of a bidirectional stream.
pub struct BidiStream<B: Buf> {
    send: SendStream<B>,
    recv: RecvStream,
}

impl<B: Buf> BidiStream<B> {
    fn new(
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        guard: FrameGuard,
        prefix: Option<Bytes>,
    ) -> Self {
        BidiStream {
            send: SendStream::new(send),
            recv: RecvStream::new(recv, guard, prefix),
        }
    }
}

impl<B: Buf> quic::BidiStream<B> for BidiStream<B> {
    type SendStream = SendStream<B>;
    type RecvStream = RecvStream;

    fn split(self) -> (SendStream<B>, RecvStream) {
        (self.send, self.recv)
    }
}

impl<B: Buf> quic::RecvStream for BidiStream<B> {
    type Buf = Bytes;
    fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, StreamErrorIncoming>> {
        let polled = self.recv.poll_data(cx);
        // A stream error closes both directions: reset our half of a malformed request too.
        if self.recv.rules.as_ref().is_some_and(RequestRules::rejected) {
            let _ = self.send.stream.reset(varint(H3_MESSAGE_ERROR));
        }
        polled
    }
    fn stop_sending(&mut self, error_code: u64) {
        self.recv.stop_sending(error_code)
    }
    fn recv_id(&self) -> StreamId {
        self.recv.recv_id()
    }
}

impl<B: Buf> quic::SendStream<B> for BidiStream<B> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        self.send.poll_ready(cx)
    }
    fn send_data<T: Into<WriteBuf<B>>>(&mut self, data: T) -> Result<(), StreamErrorIncoming> {
        self.send.send_data(data)
    }
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        self.send.poll_finish(cx)
    }
    fn reset(&mut self, reset_code: u64) {
        quic::SendStream::<B>::reset(&mut self.send, reset_code)
    }
    fn send_id(&self) -> StreamId {
        quic::SendStream::<B>::send_id(&self.send)
    }
}

impl<B: Buf> quic::SendStreamUnframed<B> for BidiStream<B> {
    fn poll_send<D: Buf>(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut D,
    ) -> Poll<Result<usize, StreamErrorIncoming>> {
        self.send.poll_send(cx, buf)
    }
}

type Opening<T> = Pin<Box<dyn Future<Output = Result<T, quinn::ConnectionError>> + Send + Sync>>;

/// Opens streams on our side.
pub struct Opener {
    conn: quinn::Connection,
    /// Guard for the incoming half of bidi streams we open: clients open request streams
    /// (framed responses); a server opens only WebTransport streams (raw bytes).
    local_bidi: FrameGuard,
    opening_bi: Option<Opening<(quinn::SendStream, quinn::RecvStream)>>,
    opening_uni: Option<Opening<quinn::SendStream>>,
    /// Client with WebTransport on: set on the request streams it opens (see `SendStream`).
    token: Option<Arc<dyn StreamClassifier>>,
}

impl Clone for Opener {
    fn clone(&self) -> Self {
        Opener {
            conn: self.conn.clone(),
            local_bidi: self.local_bidi.clone(),
            opening_bi: None,
            opening_uni: None,
            token: self.token.clone(),
        }
    }
}

/// Poll the stream opening in `slot`, starting one with `start` if none is under way; the slot
/// is emptied once it resolves.
fn poll_opening<T>(
    slot: &mut Option<Opening<T>>,
    cx: &mut Context<'_>,
    start: impl FnOnce() -> Opening<T>,
) -> Poll<Result<T, StreamErrorIncoming>> {
    let fut = slot.get_or_insert_with(start);
    let res = ready!(fut.as_mut().poll(cx));
    *slot = None;
    Poll::Ready(res.map_err(stream_conn_error))
}

impl<B: Buf> quic::OpenStreams<B> for Opener {
    type BidiStream = BidiStream<B>;
    type SendStream = SendStream<B>;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<BidiStream<B>, StreamErrorIncoming>> {
        let conn = &self.conn;
        let (send, recv) = ready!(poll_opening(&mut self.opening_bi, cx, || {
            let c = conn.clone();
            Box::pin(async move { c.open_bi().await })
        }))?;
        let mut stream = BidiStream::new(send, recv, self.local_bidi.clone(), None);
        stream.send.no_reserved = self.token.is_some();
        stream.send.token = self.token.clone();
        Poll::Ready(Ok(stream))
    }

    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<SendStream<B>, StreamErrorIncoming>> {
        let conn = &self.conn;
        let stream = ready!(poll_opening(&mut self.opening_uni, cx, || {
            let c = conn.clone();
            Box::pin(async move { c.open_uni().await })
        }))?;
        Poll::Ready(Ok(SendStream::new(stream)))
    }

    fn close(&mut self, code: h3::error::Code, reason: &[u8]) {
        self.conn.close(varint(code.value()), reason);
    }
}

type Incoming<T> = BoxStream<'static, Result<T, quinn::ConnectionError>>;

/// A peer stream being classified: `Some` (with the bytes read so far) when it is for h3,
/// `None` when it went to WebTransport.
type Classifying<T> = Pin<Box<dyn Future<Output = Option<(T, Option<Bytes>)>> + Send + Sync>>;

/// A quinn connection as h3 sees it.
pub struct QuicConn {
    conn: quinn::Connection,
    limit: u64,
    incoming_bi: Incoming<(quinn::SendStream, quinn::RecvStream)>,
    incoming_uni: Incoming<quinn::RecvStream>,
    opener: Opener,
    stops: Option<Arc<Stops>>,
    /// Server with 0-RTT on: where request streams opened in 0-RTT are noted.
    early: Option<Arc<EarlyStreams>>,
    /// Only for its datagram handlers (its own stream acceptors are never polled).
    datagrams: h3_quinn::Connection,
    /// With WebTransport on, peer streams are classified before h3 sees them: streams whose
    /// header names a session go to it, the rest to h3 with the bytes read so far.
    classifier: Option<Arc<dyn StreamClassifier>>,
    is_client: bool,
    /// Streams whose first bytes are awaited, concurrently (a stream whose header is slow to
    /// arrive must not hold up the others), at most [`MAX_CLASSIFYING`] at a time.
    classifying_bi: FuturesUnordered<Classifying<(quinn::SendStream, quinn::RecvStream)>>,
    classifying_uni: FuturesUnordered<Classifying<quinn::RecvStream>>,
    /// Settings h3 cannot send, added to its SETTINGS frame on the first stream it opens (its
    /// control stream: h3 0.0.8 opens that one first).
    settings_extra: Option<Vec<(u64, u64)>>,
}

/// Peer streams being classified at once per direction; beyond this, new ones wait in QUIC.
const MAX_CLASSIFYING: usize = 64;

fn acceptor_ended() -> ConnectionErrorIncoming {
    ConnectionErrorIncoming::InternalError("acceptor ended".into())
}

impl QuicConn {
    fn new(
        conn: quinn::Connection,
        limit: u64,
        local_bidi: FrameGuard,
        stops: Option<Arc<Stops>>,
        classifier: Option<Arc<dyn StreamClassifier>>,
        is_client: bool,
    ) -> Self {
        let bi = conn.clone();
        let uni = conn.clone();
        QuicConn {
            incoming_bi: stream::unfold(bi, |c| async { Some((c.accept_bi().await, c)) }).boxed(),
            incoming_uni: stream::unfold(uni, |c| async { Some((c.accept_uni().await, c)) })
                .boxed(),
            opener: Opener {
                conn: conn.clone(),
                local_bidi,
                opening_bi: None,
                opening_uni: None,
                token: classifier.clone().filter(|_| is_client),
            },
            datagrams: h3_quinn::Connection::new(conn.clone()),
            conn,
            limit,
            stops,
            early: None,
            classifier,
            is_client,
            classifying_bi: FuturesUnordered::new(),
            classifying_uni: FuturesUnordered::new(),
            settings_extra: None,
        }
    }

    /// Adds `extra` to the SETTINGS h3 sends (see `proto/wt_settings.rs`).
    pub fn with_settings(mut self, extra: Vec<(u64, u64)>) -> Self {
        self.settings_extra = Some(extra).filter(|e| !e.is_empty());
        self
    }

    /// Server with 0-RTT on: note request streams opened in 0-RTT in `early`.
    pub fn with_early(mut self, early: Arc<EarlyStreams>) -> Self {
        self.early = Some(early);
        self
    }

    /// Server side: request streams are guarded and their STOP_SENDING watched via `stops`.
    pub fn server(
        conn: quinn::Connection,
        limit: u64,
        stops: Arc<Stops>,
        classifier: Option<Arc<dyn StreamClassifier>>,
    ) -> Self {
        Self::new(
            conn,
            limit,
            FrameGuard::passthrough(),
            Some(stops),
            classifier,
            false,
        )
    }

    /// Client side: responses on the request streams we open are guarded.
    pub fn client(
        conn: quinn::Connection,
        limit: u64,
        classifier: Option<Arc<dyn StreamClassifier>>,
    ) -> Self {
        Self::new(
            conn,
            limit,
            FrameGuard::request(limit),
            None,
            classifier,
            true,
        )
    }
}

impl QuicConn {
    fn request_stream<B: Buf>(
        &self,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        prefix: Option<Bytes>,
    ) -> BidiStream<B> {
        let id = crate::ids::StreamId(u64::from(VarInt::from(send.id())));
        if let Some(stops) = &self.stops {
            stops.put(id, &send);
        }
        if let Some(early) = self.early.as_ref().filter(|_| recv.is_0rtt()) {
            early.mark(id);
        }
        let mut stream = BidiStream::new(send, recv, FrameGuard::request(self.limit), prefix);
        if !self.is_client {
            stream.send.no_reserved = self.classifier.is_some();
            stream.recv.rules = Some(RequestRules::new(self.limit));
            stream.recv.token = self.classifier.clone().map(|classifier| TokenGate {
                buf: bytes::BytesMut::new(),
                limit: self.limit,
                classifier,
            });
        }
        stream
    }
}

impl<B: Buf> quic::OpenStreams<B> for QuicConn {
    type BidiStream = BidiStream<B>;
    type SendStream = SendStream<B>;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<BidiStream<B>, StreamErrorIncoming>> {
        quic::OpenStreams::<B>::poll_open_bidi(&mut self.opener, cx)
    }
    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<SendStream<B>, StreamErrorIncoming>> {
        let mut stream = ready!(quic::OpenStreams::<B>::poll_open_send(&mut self.opener, cx))?;
        stream.settings_extra = self.settings_extra.take();
        Poll::Ready(Ok(stream))
    }
    fn close(&mut self, code: h3::error::Code, reason: &[u8]) {
        self.conn.close(varint(code.value()), reason);
    }
}

impl<B: Buf> quic::Connection<B> for QuicConn {
    type RecvStream = RecvStream;
    type OpenStreams = Opener;

    fn poll_accept_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<RecvStream, ConnectionErrorIncoming>> {
        loop {
            while self.classifying_uni.len() < MAX_CLASSIFYING {
                let stream = match self.incoming_uni.poll_next_unpin(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Some(Ok(stream))) => stream,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(conn_error(e))),
                    Poll::Ready(None) => return Poll::Ready(Err(acceptor_ended())),
                };
                match &self.classifier {
                    Some(c) => self
                        .classifying_uni
                        .push(Box::pin(classify_uni(c.clone(), stream))),
                    None => {
                        return Poll::Ready(Ok(RecvStream::new(
                            stream,
                            FrameGuard::uni(self.limit),
                            None,
                        )))
                    }
                }
            }
            match self.classifying_uni.poll_next_unpin(cx) {
                Poll::Ready(Some(Some((stream, prefix)))) => {
                    let mut recv = RecvStream::new(stream, FrameGuard::uni(self.limit), prefix);
                    recv.sniffer = self
                        .classifier
                        .clone()
                        .map(|c| (SettingsSniffer::default(), c));
                    return Poll::Ready(Ok(recv));
                }
                // Went to WebTransport: look for the next.
                Poll::Ready(Some(None)) => continue,
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_accept_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<BidiStream<B>, ConnectionErrorIncoming>> {
        loop {
            while self.classifying_bi.len() < MAX_CLASSIFYING {
                let (send, recv) = match self.incoming_bi.poll_next_unpin(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Some(Ok(s))) => s,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(conn_error(e))),
                    Poll::Ready(None) => return Poll::Ready(Err(acceptor_ended())),
                };
                match &self.classifier {
                    // A client has no use for server-opened bidi streams other than
                    // WebTransport ones: classify each on its own task, hand none to h3.
                    Some(c) if self.is_client => {
                        let c = c.clone();
                        tokio::spawn(async move {
                            if let Some(((mut send, mut recv), _)) =
                                classify_bidi(c, send, recv).await
                            {
                                let code =
                                    varint(h3::error::Code::H3_STREAM_CREATION_ERROR.value());
                                let _ = send.reset(code);
                                let _ = recv.stop(code);
                            }
                        });
                    }
                    Some(c) => {
                        self.classifying_bi
                            .push(Box::pin(classify_bidi(c.clone(), send, recv)))
                    }
                    None => return Poll::Ready(Ok(self.request_stream(send, recv, None))),
                }
            }
            match self.classifying_bi.poll_next_unpin(cx) {
                Poll::Ready(Some(Some(((send, recv), prefix)))) => {
                    return Poll::Ready(Ok(self.request_stream(send, recv, prefix)))
                }
                Poll::Ready(Some(None)) => continue,
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn opener(&self) -> Opener {
        self.opener.clone()
    }
}

impl<B: Buf> DatagramConnectionExt<B> for QuicConn {
    type SendDatagramHandler =
        <h3_quinn::Connection as DatagramConnectionExt<B>>::SendDatagramHandler;
    type RecvDatagramHandler =
        <h3_quinn::Connection as DatagramConnectionExt<B>>::RecvDatagramHandler;

    fn send_datagram_handler(&self) -> Self::SendDatagramHandler {
        DatagramConnectionExt::<B>::send_datagram_handler(&self.datagrams)
    }
    fn recv_datagram_handler(&self) -> Self::RecvDatagramHandler {
        DatagramConnectionExt::<B>::recv_datagram_handler(&self.datagrams)
    }
}
