//! The handle table JS uses: every WebTransport session and stream of one server or client,
//! by numeric handle. Every operation is a pull or an awaited write, so nothing is pushed at JS
//! faster than it reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::session::{CloseInfo, Session};
use super::stream::{self, quic_code, PipeOutcome, ReadOutcome, WriteOutcome, WtStream};
use crate::error::{H3Error, Result};
use crate::ids::{SessionHandle, StreamHandle, StreamId};
use crate::proto::wt_wire::{self, to_http_code, BUFFERED_STREAM_REJECTED, SESSION_GONE};
use crate::stats::Stats;
use crate::sync::lock;
use crate::transport::classify::{Dir, PrefixedRecv};
use crate::transport::datagram;

/// Sessions and streams of one server or client, by handle.
pub struct HandleTable {
    next_stream: AtomicU64,
    next_session: AtomicU64,
    sessions: Mutex<HashMap<SessionHandle, Arc<Session>>>,
    streams: Mutex<HashMap<StreamHandle, Arc<WtStream>>>,
    pub stats: Arc<Stats>,
    /// Resets and stops requested from the JS thread run here.
    rt: tokio::runtime::Handle,
}

impl HandleTable {
    /// Needs the tokio runtime context.
    pub fn new(stats: Arc<Stats>) -> Result<Arc<HandleTable>> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| H3Error::InvalidArg(format!("no async runtime: {e}")))?;
        Ok(Arc::new(HandleTable {
            rt,
            next_stream: AtomicU64::new(1),
            next_session: AtomicU64::new(1),
            sessions: Mutex::default(),
            streams: Mutex::default(),
            stats,
        }))
    }

    /// A fresh session handle (clients; a server names sessions by their request id).
    pub fn next_session_handle(&self) -> SessionHandle {
        SessionHandle(self.next_session.fetch_add(1, Relaxed))
    }

    pub fn session(&self, handle: SessionHandle) -> Result<Arc<Session>> {
        lock(&self.sessions)
            .get(&handle)
            .cloned()
            .ok_or(H3Error::SessionClosed)
    }

    fn stream(&self, handle: StreamHandle) -> Result<Arc<WtStream>> {
        lock(&self.streams)
            .get(&handle)
            .cloned()
            .ok_or(H3Error::StreamClosed)
    }

    pub(super) fn insert_session(&self, session: Arc<Session>) {
        lock(&self.sessions).insert(session.handle, session);
    }

    /// The session is over: reset its streams. JS still finds the session by handle (to learn
    /// how it ended) until it calls [`HandleTable::release`].
    pub(super) fn abort_streams_of(&self, session: &Session) {
        let handles: Vec<StreamHandle> = lock(&session.streams).drain().collect();
        let mut table = lock(&self.streams);
        for h in handles {
            if let Some(s) = table.remove(&h) {
                s.abort(&self.rt, SESSION_GONE);
            }
        }
    }

    /// JS learnt how the session ended: forget it.
    pub fn release(&self, handle: SessionHandle) {
        lock(&self.sessions).remove(&handle);
    }

    /// Wait for the session to end, then forget it (JS calls this once per session).
    pub async fn closed(&self, handle: SessionHandle) -> CloseInfo {
        let Ok(s) = self.session(handle) else {
            return CloseInfo::ended(false);
        };
        let info = s.wait_closed().await;
        self.release(handle);
        info
    }

    fn add_stream(
        &self,
        session: &Session,
        send: Option<quinn::SendStream>,
        recv: Option<PrefixedRecv>,
    ) -> StreamHandle {
        let handle = StreamHandle(self.next_stream.fetch_add(1, Relaxed));
        let s = Arc::new(WtStream::new(session.handle, send, recv));
        lock(&self.streams).insert(handle, s);
        lock(&session.streams).insert(handle);
        handle
    }

    /// Forget a stream once both of its halves are finished.
    fn settle_stream(&self, handle: StreamHandle, s: &WtStream) {
        if s.is_settled() {
            lock(&self.streams).remove(&handle);
            if let Ok(sess) = self.session(s.session) {
                lock(&sess.streams).remove(&handle);
            }
        }
    }

    /// A stream the peer opened for `session` (already past its header).
    pub(super) fn incoming(
        &self,
        session: &Arc<Session>,
        dir: Dir,
        send: Option<quinn::SendStream>,
        recv: PrefixedRecv,
    ) {
        let handle = self.add_stream(session, send, Some(recv));
        let queue = session.incoming_queue(dir);
        if !session.is_open() || queue.tx.try_send(handle).is_err() {
            if let Some(s) = lock(&self.streams).remove(&handle) {
                lock(&session.streams).remove(&handle);
                s.abort(&self.rt, BUFFERED_STREAM_REJECTED);
            }
        }
    }

    /// Next stream the peer opened, or `None` once the session is closed (or unknown).
    pub async fn accept(&self, session: SessionHandle, dir: Dir) -> Option<StreamHandle> {
        let s = self.session(session).ok()?;
        let stream = s.pull(s.incoming_queue(dir)).await?;
        s.accepted(dir);
        Some(stream)
    }

    /// Open a stream on `session`, header written.
    pub async fn open(&self, session: SessionHandle, dir: Dir) -> Result<StreamHandle> {
        let s = self.session(session)?;
        if !s.is_open() {
            return Err(H3Error::SessionClosed);
        }
        let header = wt_wire::stream_header(dir == Dir::Bidi, s.session_id)?;
        tokio::select! {
            _ = s.open_credit(dir) => {}
            _ = s.wait_closed() => return Err(H3Error::SessionClosed),
        }
        let (send, recv) = tokio::select! {
            r = open_with_header(&s.quic, dir, header) => r?,
            _ = s.wait_closed() => return Err(H3Error::SessionClosed),
        };
        if !s.is_open() {
            return Err(H3Error::SessionClosed);
        }
        Ok(self.add_stream(
            &s,
            Some(send),
            recv.map(|stream| PrefixedRecv {
                prefix: None,
                stream,
            }),
        ))
    }

    pub async fn read(&self, handle: StreamHandle) -> Result<ReadOutcome> {
        let s = self.stream(handle)?;
        let half = s
            .recv
            .clone()
            .ok_or_else(|| H3Error::InvalidArg("this WebTransport stream cannot be read".into()))?;
        let out = half.run(stream::read_gathered).await;
        if let Ok(ReadOutcome::Data(d)) = &out {
            let n = d.iter().map(Bytes::len).sum();
            if let Ok(sess) = self.session(s.session) {
                if !sess.read(n) {
                    return Err(H3Error::SessionClosed);
                }
            }
        }
        if !matches!(out, Ok(ReadOutcome::Data(_))) {
            half.set_done();
            self.settle_stream(handle, &s);
        }
        out
    }

    /// Write a chunk; a peer's STOP_SENDING is an outcome, not an error.
    pub async fn write(&self, handle: StreamHandle, chunk: Bytes) -> Result<WriteOutcome> {
        self.write_pieces(handle, vec![chunk]).await
    }

    /// Move what `from` receives into `to` until `from` ends, without a trip through JS: each
    /// gathered read is written as it came (its pieces handed to QUIC uncopied). Backpressure
    /// stays real: the next read waits until QUIC took the previous one.
    pub async fn pipe(&self, from: StreamHandle, to: StreamHandle) -> Result<PipeOutcome> {
        loop {
            match self.read(from).await? {
                ReadOutcome::Data(pieces) => {
                    if let WriteOutcome::Stopped(code) = self.write_pieces(to, pieces).await? {
                        return Ok(PipeOutcome::Stopped(code));
                    }
                }
                ReadOutcome::End => return Ok(PipeOutcome::End),
                ReadOutcome::Reset(code) => return Ok(PipeOutcome::Reset(code)),
            }
        }
    }

    /// Write `pieces` in order; a peer's STOP_SENDING is an outcome, not an error.
    async fn write_pieces(&self, handle: StreamHandle, pieces: Vec<Bytes>) -> Result<WriteOutcome> {
        let s = self.stream(handle)?;
        let half = s.send.clone().ok_or_else(|| {
            H3Error::InvalidArg("this WebTransport stream cannot be written".into())
        })?;
        let out = self.write_in_credit(&s, &half, pieces).await;
        if !matches!(out, Ok(WriteOutcome::Written)) {
            half.set_done();
            self.settle_stream(handle, &s);
        }
        out
    }

    /// Write `rest` in the amounts the session's flow control allows (the newer drafts: the
    /// peer's WT_MAX_DATA), waiting for credit between them.
    async fn write_in_credit(
        &self,
        s: &WtStream,
        half: &Arc<stream::Half<quinn::SendStream>>,
        mut rest: Vec<Bytes>,
    ) -> Result<WriteOutcome> {
        let session = self.session(s.session).ok();
        loop {
            let want: usize = rest.iter().map(Bytes::len).sum();
            let n = match &session {
                Some(sess) => tokio::select! {
                    n = sess.data_credit(want) => n,
                    _ = sess.wait_closed() => return Err(H3Error::SessionClosed),
                },
                None => want,
            };
            let now = take_bytes(&mut rest, n);
            let out = half
                .run(async |w: &mut quinn::SendStream| stream::write_pieces(w, now).await)
                .await;
            if rest.is_empty() || !matches!(out, Ok(WriteOutcome::Written)) {
                return out;
            }
        }
    }

    /// End the sending half (FIN).
    pub async fn finish(&self, handle: StreamHandle) -> Result<()> {
        let s = self.stream(handle)?;
        let Some(half) = s.send.clone() else {
            return Ok(());
        };
        let r = half
            .run(async |w: &mut quinn::SendStream| w.finish().map_err(|_| H3Error::StreamClosed))
            .await;
        half.set_done();
        self.settle_stream(handle, &s);
        r
    }

    /// Reset the sending half with WebTransport error `code`.
    pub fn reset(&self, handle: StreamHandle, code: u32) {
        if let Ok(s) = self.stream(handle) {
            if let Some(h) = &s.send {
                h.abort_with(&self.rt, move |w| {
                    let _ = w.reset(quic_code(to_http_code(code)));
                });
            }
            self.settle_stream(handle, &s);
        }
    }

    /// Ask the peer to stop sending, with WebTransport error `code`.
    pub fn stop_sending(&self, handle: StreamHandle, code: u32) {
        if let Ok(s) = self.stream(handle) {
            if let Some(h) = &s.recv {
                h.abort_with(&self.rt, move |r| {
                    let _ = r.stream.stop(quic_code(to_http_code(code)));
                });
            }
            self.settle_stream(handle, &s);
        }
    }

    /// Send a datagram on `session`.
    pub fn send_datagram(&self, session: SessionHandle, payload: &[u8]) -> Result<()> {
        let s = self.session(session)?;
        datagram::send_on(
            &s.quic,
            &self.stats,
            Some(StreamId::from(s.session_id)),
            payload,
        )
    }

    /// Send several datagrams on `session` in one go: `payloads` back to back, cut at
    /// `lengths`. One that no longer fits is dropped and counted (the caller checked sizes).
    pub fn send_datagrams(
        &self,
        session: SessionHandle,
        lengths: &[f64],
        payloads: &[u8],
    ) -> Result<()> {
        let s = self.session(session)?;
        let mut out = datagram::Outbox::default();
        out.push_all(
            &s.quic,
            Some(StreamId::from(s.session_id)),
            lengths,
            payloads,
        );
        out.send(Some(&self.rt), self.stats.clone());
        Ok(())
    }

    pub fn max_datagram_size(&self, session: SessionHandle) -> Option<usize> {
        let s = self.session(session).ok()?;
        datagram::max_size_on(&s.quic, Some(StreamId::from(s.session_id)))
    }

    /// Sessions and streams currently tracked (tests check that both return to zero).
    pub fn counts(&self) -> (usize, usize) {
        (lock(&self.sessions).len(), lock(&self.streams).len())
    }
}

/// Open a QUIC stream and write its WebTransport header.
async fn open_with_header(
    quic: &quinn::Connection,
    dir: Dir,
    header: Bytes,
) -> Result<(quinn::SendStream, Option<quinn::RecvStream>)> {
    let (mut send, recv) = match dir {
        Dir::Bidi => {
            let (send, recv) = quic.open_bi().await.map_err(|_| H3Error::ConnectionLost)?;
            (send, Some(recv))
        }
        Dir::Uni => (
            quic.open_uni().await.map_err(|_| H3Error::ConnectionLost)?,
            None,
        ),
    };
    send.write_chunk(header)
        .await
        .map_err(|_| H3Error::ConnectionLost)?;
    Ok((send, recv))
}

/// The first `n` bytes of `pieces` (a piece split where `n` falls), leaving the rest in place.
fn take_bytes(pieces: &mut Vec<Bytes>, n: usize) -> Vec<Bytes> {
    let mut left = n;
    let mut whole = 0;
    while whole < pieces.len() && pieces[whole].len() <= left {
        left -= pieces[whole].len();
        whole += 1;
    }
    let mut rest = pieces.split_off(whole);
    if let (true, Some(first)) = (left > 0, rest.first_mut()) {
        pieces.push(first.split_to(left));
    }
    std::mem::replace(pieces, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn take_bytes_splits_where_the_credit_ends() {
        let mut p = vec![b("abc"), b("de"), b("fgh")];
        assert_eq!(take_bytes(&mut p, 4), vec![b("abc"), b("d")]);
        assert_eq!(p, vec![b("e"), b("fgh")]);
        assert_eq!(take_bytes(&mut p, 4), vec![b("e"), b("fgh")]);
        assert!(p.is_empty());
        let mut q = vec![b("ab")];
        assert!(take_bytes(&mut q, 0).is_empty());
        assert_eq!(q, vec![b("ab")]);
    }
}
