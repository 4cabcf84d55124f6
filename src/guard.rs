//! Frame-length guard for incoming HTTP/3 streams.
//!
//! h3 buffers every non-DATA frame (HEADERS, SETTINGS, unknown/grease types) until the whole
//! payload has arrived, whatever length the peer claimed, and reading it hands flow-control
//! credit back to the peer — so a HEADERS frame claiming 2^40 bytes would make us buffer without
//! bound. This module watches the byte stream on its way into h3 and resets the stream with
//! H3_EXCESSIVE_LOAD as soon as a frame header claims more than the limit. DATA payloads and
//! WebTransport streams pass through untouched.

use std::task::{Context, Poll};

use bytes::Buf;
use h3::quic::{self, ConnectionErrorIncoming, StreamErrorIncoming, StreamId, WriteBuf};
use h3_datagram::quic_traits::DatagramConnectionExt;

/// H3_EXCESSIVE_LOAD (RFC 9114 §8.1).
pub const H3_EXCESSIVE_LOAD: u64 = 0x107;
const FRAME_DATA: u64 = 0x0;
const WEBTRANSPORT_BI_STREAM: u64 = 0x41;
const UNI_CONTROL: u64 = 0x0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bidi stream, before its first frame type: WebTransport streams start with 0x41.
    FirstFrame,
    /// Uni stream, before its stream type.
    UniType,
    FrameHeader,
    Skip(u64),
    Passthrough,
    Violated,
}

/// A byte-level parser of frame headers (type varint, length varint).
#[derive(Debug)]
pub struct FrameGuard {
    state: State,
    limit: u64,
    hdr: [u8; 16],
    hdr_len: usize,
}

/// A frame claimed more than the limit.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    pub frame_type: u64,
    pub claimed: u64,
}

fn varint_len(first: u8) -> usize {
    1 << (first >> 6)
}

fn varint(b: &[u8]) -> u64 {
    let mut v = u64::from(b[0] & 0x3f);
    for x in &b[1..] {
        v = (v << 8) | u64::from(*x);
    }
    v
}

impl FrameGuard {
    /// For request (bidirectional) streams.
    pub fn request(limit: u64) -> Self {
        Self::with_state(State::FirstFrame, limit)
    }

    /// For peer-initiated unidirectional streams: only the control stream carries frames.
    pub fn uni(limit: u64) -> Self {
        Self::with_state(State::UniType, limit)
    }

    /// For streams we opened ourselves (WebTransport): no HTTP/3 framing to police.
    pub fn passthrough() -> Self {
        Self::with_state(State::Passthrough, 0)
    }

    fn with_state(state: State, limit: u64) -> Self {
        FrameGuard {
            state,
            limit,
            hdr: [0; 16],
            hdr_len: 0,
        }
    }

    /// Feed the next bytes of the stream.
    pub fn observe(&mut self, mut data: &[u8]) -> Result<(), Violation> {
        while !data.is_empty() {
            match self.state {
                State::Passthrough => return Ok(()),
                State::Violated => {
                    return Err(Violation {
                        frame_type: 0,
                        claimed: 0,
                    })
                }
                State::Skip(n) => {
                    let take = n.min(data.len() as u64);
                    data = &data[take as usize..];
                    self.state = if take == n {
                        State::FrameHeader
                    } else {
                        State::Skip(n - take)
                    };
                }
                State::UniType => {
                    if !self.fill(&mut data, 1) || !self.fill(&mut data, varint_len(self.hdr[0])) {
                        return Ok(());
                    }
                    let ty = varint(&self.hdr[..self.hdr_len]);
                    self.hdr_len = 0;
                    self.state = if ty == UNI_CONTROL {
                        State::FrameHeader
                    } else {
                        State::Passthrough
                    };
                }
                State::FirstFrame | State::FrameHeader => {
                    // Type varint, then (unless a WebTransport stream) the length varint.
                    if !self.fill(&mut data, 1) {
                        return Ok(());
                    }
                    let tlen = varint_len(self.hdr[0]);
                    if !self.fill(&mut data, tlen) {
                        return Ok(());
                    }
                    let ty = varint(&self.hdr[..tlen]);
                    if self.state == State::FirstFrame && ty == WEBTRANSPORT_BI_STREAM {
                        self.state = State::Passthrough;
                        return Ok(());
                    }
                    if !self.fill(&mut data, tlen + 1) {
                        return Ok(());
                    }
                    let llen = varint_len(self.hdr[tlen]);
                    if !self.fill(&mut data, tlen + llen) {
                        return Ok(());
                    }
                    let len = varint(&self.hdr[tlen..tlen + llen]);
                    self.hdr_len = 0;
                    if ty != FRAME_DATA && len > self.limit {
                        self.state = State::Violated;
                        return Err(Violation {
                            frame_type: ty,
                            claimed: len,
                        });
                    }
                    self.state = if len == 0 {
                        State::FrameHeader
                    } else {
                        State::Skip(len)
                    };
                }
            }
        }
        Ok(())
    }

    /// Buffer header bytes until `want` are held; false when the input ran out first.
    fn fill(&mut self, data: &mut &[u8], want: usize) -> bool {
        while self.hdr_len < want && !data.is_empty() {
            self.hdr[self.hdr_len] = data[0];
            self.hdr_len += 1;
            *data = &data[1..];
        }
        self.hdr_len >= want
    }
}

/// A stream whose incoming bytes pass through a [`FrameGuard`].
///
/// It also shields h3-quinn's receive stream, which panics in `stop_sending`/`recv_id` while a
/// read is in flight (it moves the quinn stream into the read future): the id is cached, and a
/// STOP_SENDING asked for mid-read is left to quinn, which sends one when the stream is dropped.
pub struct Guarded<S> {
    inner: S,
    guard: FrameGuard,
    id: StreamId,
    reading: bool,
}

impl<S: quic::RecvStream> Guarded<S> {
    pub fn new(inner: S, guard: FrameGuard) -> Self {
        let id = inner.recv_id();
        Guarded {
            inner,
            guard,
            id,
            reading: false,
        }
    }
}

fn excessive() -> StreamErrorIncoming {
    StreamErrorIncoming::StreamTerminated {
        error_code: H3_EXCESSIVE_LOAD,
    }
}

impl<S: quic::RecvStream> quic::RecvStream for Guarded<S> {
    type Buf = S::Buf;

    fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Self::Buf>, StreamErrorIncoming>> {
        let polled = self.inner.poll_data(cx);
        self.reading = polled.is_pending();
        if let Poll::Ready(Ok(Some(buf))) = &polled {
            if self.guard.observe(buf.chunk()).is_err() {
                self.inner.stop_sending(H3_EXCESSIVE_LOAD);
                return Poll::Ready(Err(excessive()));
            }
        }
        polled
    }

    fn stop_sending(&mut self, error_code: u64) {
        if !self.reading {
            self.inner.stop_sending(error_code)
        }
    }

    fn recv_id(&self) -> StreamId {
        self.id
    }
}

impl<S: quic::SendStream<B> + quic::RecvStream, B: Buf> quic::SendStream<B> for Guarded<S> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        self.inner.poll_ready(cx)
    }
    fn send_data<T: Into<WriteBuf<B>>>(&mut self, data: T) -> Result<(), StreamErrorIncoming> {
        self.inner.send_data(data)
    }
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        self.inner.poll_finish(cx)
    }
    fn reset(&mut self, reset_code: u64) {
        self.inner.reset(reset_code)
    }
    fn send_id(&self) -> StreamId {
        self.inner.send_id()
    }
}

impl<S: quic::SendStreamUnframed<B> + quic::RecvStream, B: Buf> quic::SendStreamUnframed<B>
    for Guarded<S>
{
    fn poll_send<D: Buf>(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut D,
    ) -> Poll<Result<usize, StreamErrorIncoming>> {
        self.inner.poll_send(cx, buf)
    }
}

impl<S: quic::BidiStream<B>, B: Buf> quic::BidiStream<B> for Guarded<S> {
    type SendStream = S::SendStream;
    type RecvStream = Guarded<S::RecvStream>;

    fn split(self) -> (Self::SendStream, Self::RecvStream) {
        let (send, recv) = self.inner.split();
        let recv = Guarded {
            inner: recv,
            guard: self.guard,
            id: self.id,
            reading: self.reading,
        };
        (send, recv)
    }
}

/// `h3_quinn::Connection` with every incoming stream guarded.
pub struct GuardedConnection {
    inner: h3_quinn::Connection,
    limit: u64,
    /// Clients open request streams, whose responses are framed and policed; a server opens
    /// only WebTransport streams, which carry raw bytes.
    client: bool,
}

impl GuardedConnection {
    pub fn server(conn: quinn::Connection, limit: u64) -> Self {
        GuardedConnection {
            inner: h3_quinn::Connection::new(conn),
            limit,
            client: false,
        }
    }

    pub fn client(conn: quinn::Connection, limit: u64) -> Self {
        GuardedConnection {
            inner: h3_quinn::Connection::new(conn),
            limit,
            client: true,
        }
    }

    fn local_guard(&self) -> FrameGuard {
        if self.client {
            FrameGuard::request(self.limit)
        } else {
            FrameGuard::passthrough()
        }
    }
}

/// Opener for locally initiated streams.
#[derive(Clone)]
pub struct GuardedOpener(h3_quinn::OpenStreams, u64, bool);

impl GuardedOpener {
    fn guard(&self) -> FrameGuard {
        if self.2 {
            FrameGuard::request(self.1)
        } else {
            FrameGuard::passthrough()
        }
    }
}

impl<B: Buf> quic::OpenStreams<B> for GuardedOpener {
    type BidiStream = Guarded<h3_quinn::BidiStream<B>>;
    type SendStream = h3_quinn::SendStream<B>;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, StreamErrorIncoming>> {
        let guard = self.guard();
        quic::OpenStreams::<B>::poll_open_bidi(&mut self.0, cx).map_ok(|s| Guarded::new(s, guard))
    }
    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::SendStream, StreamErrorIncoming>> {
        quic::OpenStreams::<B>::poll_open_send(&mut self.0, cx)
    }
    fn close(&mut self, code: h3::error::Code, reason: &[u8]) {
        quic::OpenStreams::<B>::close(&mut self.0, code, reason)
    }
}

impl<B: Buf> quic::OpenStreams<B> for GuardedConnection {
    type BidiStream = Guarded<h3_quinn::BidiStream<B>>;
    type SendStream = h3_quinn::SendStream<B>;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, StreamErrorIncoming>> {
        let guard = self.local_guard();
        quic::OpenStreams::<B>::poll_open_bidi(&mut self.inner, cx)
            .map_ok(|s| Guarded::new(s, guard))
    }
    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::SendStream, StreamErrorIncoming>> {
        quic::OpenStreams::<B>::poll_open_send(&mut self.inner, cx)
    }
    fn close(&mut self, code: h3::error::Code, reason: &[u8]) {
        quic::OpenStreams::<B>::close(&mut self.inner, code, reason)
    }
}

impl<B: Buf> quic::Connection<B> for GuardedConnection {
    type RecvStream = Guarded<h3_quinn::RecvStream>;
    type OpenStreams = GuardedOpener;

    fn poll_accept_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::RecvStream, ConnectionErrorIncoming>> {
        let limit = self.limit;
        quic::Connection::<B>::poll_accept_recv(&mut self.inner, cx)
            .map_ok(|s| Guarded::new(s, FrameGuard::uni(limit)))
    }
    fn poll_accept_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, ConnectionErrorIncoming>> {
        let limit = self.limit;
        quic::Connection::<B>::poll_accept_bidi(&mut self.inner, cx)
            .map_ok(|s| Guarded::new(s, FrameGuard::request(limit)))
    }
    fn opener(&self) -> Self::OpenStreams {
        GuardedOpener(
            quic::Connection::<B>::opener(&self.inner),
            self.limit,
            self.client,
        )
    }
}

impl<B: Buf> DatagramConnectionExt<B> for GuardedConnection {
    type SendDatagramHandler =
        <h3_quinn::Connection as DatagramConnectionExt<B>>::SendDatagramHandler;
    type RecvDatagramHandler =
        <h3_quinn::Connection as DatagramConnectionExt<B>>::RecvDatagramHandler;

    fn send_datagram_handler(&self) -> Self::SendDatagramHandler {
        DatagramConnectionExt::<B>::send_datagram_handler(&self.inner)
    }
    fn recv_datagram_handler(&self) -> Self::RecvDatagramHandler {
        DatagramConnectionExt::<B>::recv_datagram_handler(&self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ty: u8, len_varint: &[u8]) -> Vec<u8> {
        let mut v = vec![ty];
        v.extend_from_slice(len_varint);
        v
    }

    #[test]
    fn huge_headers_claim_is_caught_even_byte_by_byte() {
        // HEADERS, length 2^40 as an 8-byte varint.
        let bytes = frame(0x01, &[0xc0, 0, 0x01, 0, 0, 0, 0, 0]);
        let mut g = FrameGuard::request(1000);
        let mut res = Ok(());
        for b in &bytes {
            res = g.observe(std::slice::from_ref(b));
            if res.is_err() {
                break;
            }
        }
        assert_eq!(
            res,
            Err(Violation {
                frame_type: 1,
                claimed: 1 << 40
            })
        );
    }

    #[test]
    fn data_frames_and_small_headers_pass() {
        let mut g = FrameGuard::request(100);
        let mut s = frame(0x01, &[10]);
        s.extend_from_slice(&[0; 10]);
        // DATA of 2^30 bytes declared: fine, DATA is streamed.
        s.extend_from_slice(&[0x00, 0xc0, 0, 0, 0, 0x40, 0, 0, 0]);
        assert!(g.observe(&s).is_ok());
        assert!(g.observe(&vec![7u8; 4096]).is_ok());
    }

    #[test]
    fn frames_after_data_are_checked() {
        let mut g = FrameGuard::request(100);
        let mut s = frame(0x00, &[3]);
        s.extend_from_slice(b"abc");
        // Trailers HEADERS claiming 16383 bytes (2-byte varint).
        s.extend_from_slice(&[0x01, 0x7f, 0xff]);
        assert!(g.observe(&s).is_err());
    }

    #[test]
    fn webtransport_streams_pass_through() {
        let mut g = FrameGuard::request(10);
        // 0x41 encoded as a 2-byte varint, then raw application bytes.
        assert!(g
            .observe(&[0x40, 0x41, 0x04, 0x01, 0xc0, 0xff, 0xff])
            .is_ok());
        assert!(g.observe(&[0xff; 100]).is_ok());
    }

    #[test]
    fn control_stream_settings_limit() {
        let mut g = FrameGuard::uni(64);
        // Control stream type 0, SETTINGS (0x04) with length 1 MiB.
        assert!(g.observe(&[0x00, 0x04, 0x80, 0x10, 0x00, 0x00]).is_err());
        let mut q = FrameGuard::uni(64);
        // QPACK encoder stream: not framed.
        assert!(q.observe(&[0x02, 0xff, 0xff, 0xff]).is_ok());
    }

    #[test]
    fn two_byte_type_varints() {
        let mut g = FrameGuard::request(10);
        // Reserved/grease frame type 0x21 as a 2-byte varint, length 5, payload.
        assert!(g.observe(&[0x40, 0x21, 0x05, 1, 2, 3, 4, 5]).is_ok());
        assert!(g.observe(&[0x40, 0x21, 0x40, 0xff]).is_err());
    }
}
