//! One WebTransport session, server or client side: its phase (open, draining, closed), the
//! bounded queues of incoming streams and datagrams JS pulls from, and its close request.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use super::flow::{Blocked, Flow, FlowError, Grant};
use crate::ids::{SessionHandle, SessionId, StreamHandle};
use crate::proto::wt_draft::Draft;
use crate::proto::wt_wire::{
    flow_capsule, DATA_BLOCKED_CAPSULE, FLOW_CONTROL_ERROR, MAX_DATA_CAPSULE,
    MAX_STREAMS_BIDI_CAPSULE, MAX_STREAMS_UNI_CAPSULE, STREAMS_BLOCKED_BIDI_CAPSULE,
    STREAMS_BLOCKED_UNI_CAPSULE,
};
use crate::sync::lock;
use crate::transport::classify::Dir;
use crate::transport::datagram::DatagramSink;

use super::datagram_queue::{DatagramQueue, DatagramWake, DatagramWant};

/// Incoming streams waiting for JS per session (per direction); beyond this they are refused.
pub const MAX_PENDING_STREAMS: usize = 256;
/// Datagrams waiting for JS per session; beyond this they are dropped and counted.
pub const MAX_PENDING_DATAGRAMS: usize = 1024;
/// Most datagrams one JS pull takes.
const DATAGRAMS_PER_PULL: usize = 256;

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    pub code: u32,
    pub reason: String,
    /// Closed with a CLOSE capsule or a FIN on the CONNECT stream (else: reset, connection
    /// lost, rejected).
    pub clean: bool,
}

impl CloseInfo {
    /// Ended without a CLOSE capsule: code 0, no reason.
    pub fn ended(clean: bool) -> Self {
        CloseInfo {
            code: 0,
            reason: String::new(),
            clean,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Open,
    Draining,
    Closed(CloseInfo),
}

/// One direction's queue of items waiting for a JS pull.
pub(super) struct Queue<T> {
    pub(super) tx: mpsc::Sender<T>,
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

/// What JS asked to close a session with: code and reason of the CLOSE capsule.
pub type CloseRequest = (u32, String);

/// What the session asks of the task driving its CONNECT stream, besides closing.
#[derive(Debug)]
pub enum Ctl {
    /// Send this capsule (a flow-control raise).
    Capsule(Bytes),
    /// End the session abruptly: reset the CONNECT stream with this HTTP/3 error code.
    Abort(u64),
}

/// Where the task driving the CONNECT stream hears from the session.
pub struct SessionRx {
    pub close: oneshot::Receiver<CloseRequest>,
    pub ctl: mpsc::UnboundedReceiver<Ctl>,
}

/// A WebTransport session, server or client side.
pub struct Session {
    pub handle: SessionHandle,
    /// The CONNECT stream's id, which every stream and datagram of the session names.
    pub session_id: SessionId,
    pub quic: quinn::Connection,
    phase: watch::Sender<Phase>,
    incoming_bidi: Queue<StreamHandle>,
    incoming_uni: Queue<StreamHandle>,
    datagrams: DatagramQueue,
    /// JS asked to close: the task driving the CONNECT stream sends the capsule.
    close_request: Mutex<Option<oneshot::Sender<CloseRequest>>>,
    /// Streams of this session JS holds handles for.
    pub(super) streams: Mutex<HashSet<StreamHandle>>,
    /// Set once draining began, so a drain followed at once by a close is still reported.
    drained: AtomicBool,
    /// The dialect this session speaks.
    pub draft: Draft,
    /// The newer drafts' flow control, when both sides turned it on.
    flow: Option<Mutex<Flow>>,
    /// Woken when the peer gives us more stream credit.
    credit: tokio::sync::Notify,
    ctl: mpsc::UnboundedSender<Ctl>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({}, stream {})", self.handle, self.session_id)
    }
}

impl Session {
    /// A new open session, and where its close requests arrive.
    pub(super) fn new(
        handle: SessionHandle,
        session_id: SessionId,
        quic: quinn::Connection,
        draft: Draft,
        flow: Option<Flow>,
    ) -> (Arc<Session>, SessionRx) {
        let (close_tx, close_rx) = oneshot::channel();
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let session = Arc::new(Session {
            handle,
            session_id,
            quic,
            phase: watch::channel(Phase::Open).0,
            incoming_bidi: Queue::new(MAX_PENDING_STREAMS),
            incoming_uni: Queue::new(MAX_PENDING_STREAMS),
            datagrams: DatagramQueue::new(handle, MAX_PENDING_DATAGRAMS),
            close_request: Mutex::new(Some(close_tx)),
            streams: Mutex::default(),
            drained: AtomicBool::new(false),
            draft,
            flow: flow.map(Mutex::new),
            credit: tokio::sync::Notify::new(),
            ctl,
        });
        let rx = SessionRx {
            close: close_rx,
            ctl: ctl_rx,
        };
        (session, rx)
    }

    fn closed_info(&self) -> Option<CloseInfo> {
        match &*self.phase.borrow() {
            Phase::Closed(i) => Some(i.clone()),
            _ => None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.closed_info().is_none()
    }

    /// Mark the session closed with `info`; false when it already was.
    pub(super) fn set_closed(&self, info: CloseInfo) -> bool {
        let closed = self.phase.send_if_modified(|p| {
            let open = !matches!(p, Phase::Closed(_));
            if open {
                *p = Phase::Closed(info);
            }
            open
        });
        if closed {
            self.datagrams.close();
        }
        closed
    }

    /// Resolves once the session is closed.
    pub async fn wait_closed(&self) -> CloseInfo {
        let mut rx = self.phase.subscribe();
        loop {
            if let Phase::Closed(i) = &*rx.borrow_and_update() {
                return i.clone();
            }
            if rx.changed().await.is_err() {
                return CloseInfo::ended(false);
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

    pub(super) fn incoming_queue(&self, dir: Dir) -> &Queue<StreamHandle> {
        match dir {
            Dir::Bidi => &self.incoming_bidi,
            Dir::Uni => &self.incoming_uni,
        }
    }

    /// Next item of `queue`, or `None` once the session is closed (what is still queued then
    /// belongs to a closed session: its streams were reset).
    pub(super) async fn pull<T>(&self, queue: &Queue<T>) -> Option<T> {
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

    /// JS found no datagram: have `wake` told when one arrives or the session ends (once).
    pub fn want_datagrams(&self, wake: Arc<dyn DatagramWake>) -> DatagramWant {
        self.datagrams.want(wake)
    }

    /// The datagrams waiting now (at most [`DATAGRAMS_PER_PULL`]), without waiting: empty when
    /// there are none or the session is closed (then JS asks [`Self::want_datagrams`]).
    pub fn take_datagrams(&self) -> Vec<Bytes> {
        self.datagrams.take(DATAGRAMS_PER_PULL)
    }

    /// Ask the task driving the CONNECT stream to close the session.
    pub fn request_close(&self, code: u32, reason: String) {
        if let Some(tx) = lock(&self.close_request).take() {
            let _ = tx.send((code, reason));
        }
    }
}

/// Flow control (draft-15 §5); every method is a no-op for sessions without it.
impl Session {
    /// Send the capsule a raise of ours asks for.
    fn grant(&self, grant: Option<Grant>) {
        let capsule = match grant {
            Some(Grant::MaxData(max)) => flow_capsule(MAX_DATA_CAPSULE, max),
            Some(Grant::MaxStreams(Dir::Bidi, max)) => flow_capsule(MAX_STREAMS_BIDI_CAPSULE, max),
            Some(Grant::MaxStreams(Dir::Uni, max)) => flow_capsule(MAX_STREAMS_UNI_CAPSULE, max),
            None => return,
        };
        if let Ok(c) = capsule {
            let _ = self.ctl.send(Ctl::Capsule(c));
        }
    }

    /// Tell the peer what limit holds us back (WT_DATA_BLOCKED / WT_STREAMS_BLOCKED).
    fn blocked(&self, blocked: Option<Blocked>) {
        let capsule = match blocked {
            Some(Blocked::Data(max)) => flow_capsule(DATA_BLOCKED_CAPSULE, max),
            Some(Blocked::Streams(Dir::Bidi, max)) => {
                flow_capsule(STREAMS_BLOCKED_BIDI_CAPSULE, max)
            }
            Some(Blocked::Streams(Dir::Uni, max)) => flow_capsule(STREAMS_BLOCKED_UNI_CAPSULE, max),
            None => return,
        };
        if let Ok(c) = capsule {
            let _ = self.ctl.send(Ctl::Capsule(c));
        }
    }

    /// The peer broke a flow-control rule: end the session with WT_FLOW_CONTROL_ERROR.
    pub(super) fn flow_error(&self, _e: FlowError) {
        let _ = self.ctl.send(Ctl::Abort(FLOW_CONTROL_ERROR));
    }

    fn with_flow<R>(&self, f: impl FnOnce(&mut Flow) -> R) -> Option<R> {
        self.flow.as_ref().map(|m| f(&mut lock(m)))
    }

    /// A peer stream arrived; false when it broke the stream limit (the session is ending).
    pub(super) fn peer_opened(&self, dir: Dir) -> bool {
        match self.with_flow(|f| f.peer_opened(dir)) {
            Some(Err(e)) => {
                self.flow_error(e);
                false
            }
            _ => true,
        }
    }

    /// JS accepted a peer stream.
    pub(super) fn accepted(&self, dir: Dir) {
        self.grant(self.with_flow(|f| f.accepted(dir)).flatten());
    }

    /// JS read `n` stream body bytes; false when the peer overran WT_MAX_DATA.
    pub(super) fn read(&self, n: usize) -> bool {
        match self.with_flow(|f| f.read(n as u64)) {
            Some(Err(e)) => {
                self.flow_error(e);
                false
            }
            Some(Ok(g)) => {
                self.grant(g);
                true
            }
            None => true,
        }
    }

    /// Wait for the peer's credit to open a stream (§5.6.2 "An endpoint MUST NOT open more
    /// streams than permitted by the current stream limit set by its peer").
    pub(super) async fn open_credit(&self, dir: Dir) {
        loop {
            let woken = self.credit.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self.with_flow(|f| f.try_open(dir)) {
                None | Some(Ok(())) => return,
                Some(Err(blocked)) => self.blocked(blocked),
            }
            woken.await;
        }
    }

    /// Wait for the peer's data credit and take up to `want` bytes of it (all of `want` without
    /// flow control; 0 only for `want` 0).
    pub(super) async fn data_credit(&self, want: usize) -> usize {
        loop {
            let woken = self.credit.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self.with_flow(|f| f.take_data(want as u64)) {
                None => return want,
                Some(Ok(n)) => return n as usize,
                Some(Err(blocked)) => self.blocked(blocked),
            }
            woken.await;
        }
    }

    /// The peer sent WT_MAX_STREAMS or WT_MAX_DATA (ignored without flow control, §5.1).
    pub(super) fn peer_raised(&self, r: impl FnOnce(&mut Flow) -> Result<(), FlowError>) {
        match self.with_flow(r) {
            Some(Err(e)) => self.flow_error(e),
            Some(Ok(())) => self.credit.notify_waiters(),
            None => {}
        }
    }
}

impl DatagramSink for Session {
    /// Queue a datagram for JS; false when the queue is full or the session is closed.
    fn push_datagram(&self, payload: Bytes) -> bool {
        self.datagrams.push(payload)
    }
}
