//! A WebTransport stream as JS holds it: two halves, each usable from JS calls that may
//! overlap (a read racing a stop), and the read and write operations on them.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::sync::Notify;

use crate::error::{H3Error, Result};
use crate::ids::SessionHandle;
use crate::proto::wt_wire::from_http_code;
use crate::transport::body::{gather, PULL_BYTES};
use crate::transport::classify::PrefixedRecv;

/// Most bytes one read hands to JS.
const READ_BYTES: usize = PULL_BYTES;

/// One half of a stream, usable from JS calls that may overlap (a read and a stop).
pub(super) struct Half<T> {
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
    pub(super) async fn run<R, F>(&self, op: F) -> Result<R>
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
    pub(super) fn abort_with(
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

    pub(super) fn set_done(&self) {
        self.done.store(true, Relaxed);
    }

    fn is_done(&self) -> bool {
        self.done.load(Relaxed)
    }
}

/// A WebTransport stream as JS holds it (either half may be absent: uni streams).
pub struct WtStream {
    pub(super) session: SessionHandle,
    pub(super) send: Option<Arc<Half<quinn::SendStream>>>,
    pub(super) recv: Option<Arc<Half<PrefixedRecv>>>,
}

impl WtStream {
    pub(super) fn new(
        session: SessionHandle,
        send: Option<quinn::SendStream>,
        recv: Option<PrefixedRecv>,
    ) -> Self {
        WtStream {
            session,
            send: send.map(|s| Arc::new(Half::new(s))),
            recv: recv.map(|r| Arc::new(Half::new(r))),
        }
    }

    /// Both halves are finished (an absent half counts as finished).
    pub(super) fn is_settled(&self) -> bool {
        self.send.as_ref().is_none_or(|h| h.is_done())
            && self.recv.as_ref().is_none_or(|h| h.is_done())
    }

    /// Reset the sending half and stop the receiving half with HTTP/3 error `code`.
    pub(super) fn abort(&self, rt: &tokio::runtime::Handle, code: u64) {
        if let Some(h) = &self.send {
            h.abort_with(rt, move |w| {
                let _ = w.reset(quic_code(code));
            });
        }
        if let Some(h) = &self.recv {
            h.abort_with(rt, move |r| {
                let _ = r.stream.stop(quic_code(code));
            });
        }
    }
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

/// How a pipe from one stream into another ended (when it did not fail).
#[derive(Debug, PartialEq, Eq)]
pub enum PipeOutcome {
    /// The source ended (FIN); everything read was written.
    End,
    /// The peer reset the source; its WebTransport error code if it carried one.
    Reset(Option<u32>),
    /// The peer stopped reading the destination; its WebTransport error code if any.
    Stopped(Option<u32>),
}

/// What a write yields when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The peer sent STOP_SENDING; its WebTransport error code if it carried one.
    Stopped(Option<u32>),
}

/// An error code as quinn takes it (codes beyond 2^62 cannot occur; saturate rather than fail).
pub(super) fn quic_code(v: u64) -> quinn::VarInt {
    quinn::VarInt::from_u64(v).unwrap_or(quinn::VarInt::MAX)
}

/// Read the next piece: waits for data, then [`gather`]s whatever else already arrived.
pub(super) async fn read_gathered(r: &mut PrefixedRecv) -> Result<ReadOutcome> {
    if let Some(p) = r.prefix.take() {
        return Ok(ReadOutcome::Data(vec![p]));
    }
    match r.stream.read_chunk(READ_BYTES, true).await {
        Ok(Some(c)) => Ok(ReadOutcome::Data(gather(c.bytes, |room| {
            match r.stream.read_chunk(room, true).now_or_never() {
                Some(Ok(Some(c))) => Some(c.bytes),
                _ => None,
            }
        }))),
        Ok(None) => Ok(ReadOutcome::End),
        Err(quinn::ReadError::Reset(code)) => {
            Ok(ReadOutcome::Reset(from_http_code(code.into_inner())))
        }
        Err(quinn::ReadError::ConnectionLost(_)) => Err(H3Error::ConnectionLost),
        Err(_) => Err(H3Error::StreamClosed),
    }
}

/// Write pieces in one go (no copy: quinn takes the `Bytes` as they are), reporting a peer's
/// STOP_SENDING as an outcome rather than an error.
pub(super) async fn write_pieces(
    w: &mut quinn::SendStream,
    mut pieces: Vec<Bytes>,
) -> Result<WriteOutcome> {
    match w.write_all_chunks(&mut pieces).await {
        Ok(()) => Ok(WriteOutcome::Written),
        Err(quinn::WriteError::Stopped(code)) => {
            Ok(WriteOutcome::Stopped(from_http_code(code.into_inner())))
        }
        Err(quinn::WriteError::ConnectionLost(_)) => Err(H3Error::ConnectionLost),
        Err(_) => Err(H3Error::StreamClosed),
    }
}
