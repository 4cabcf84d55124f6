//! The reader of a streaming request body, with one chunk of read-ahead: while JS consumes a
//! chunk, the next one is gathered into a slot, so JS's next pull takes it at once (even
//! synchronously, [`BodyTap::take_ready`]) instead of waiting for a round trip to this task.
//!
//! Backpressure stays real: nothing is read before JS's first pull, and after that at most one
//! gathered chunk (≤ [`PULL_BYTES`](crate::transport::body::PULL_BYTES)) is read beyond what
//! JS has asked for; the QUIC receive window absorbs the rest of a faster sender.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use h3::error::Code;
use h3::server::RequestStream;
use tokio::sync::{mpsc, oneshot, Notify};

use super::commands::CommandSender;
use super::response::ResponseCmd;
use crate::error::H3Error;
use crate::sync::lock;
use crate::transport::body::{self, BodyEvent, BodyPull};
use crate::transport::quic::RecvStream;

/// The receiving half of a request stream, once the response half is split off.
pub(super) type RequestBodyStream = RequestStream<RecvStream, Bytes>;

/// What JS's side and the reader share: the read-ahead slot and the pulls waiting on it.
struct Shared {
    /// A chunk (or the end, or an error) read ahead of JS's next pull.
    ready: Mutex<Option<BodyEvent>>,
    /// Signalled when JS empties the slot, so the reader gathers the next chunk.
    taken: Notify,
}

/// JS's handle on a streaming body (kept in the pending-request table). Dropping it tells the
/// reader JS is done with the body.
pub(crate) struct BodyTap {
    pulls: mpsc::UnboundedSender<BodyPull>,
    shared: Arc<Shared>,
}

/// The reader's ends of a [`BodyTap`].
pub(super) struct BodyFeed {
    pulls: mpsc::UnboundedReceiver<BodyPull>,
    shared: Arc<Shared>,
}

pub(super) fn channel() -> (BodyTap, BodyFeed) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        ready: Mutex::new(None),
        taken: Notify::new(),
    });
    let tap = BodyTap {
        pulls: tx,
        shared: shared.clone(),
    };
    (tap, BodyFeed { pulls: rx, shared })
}

impl BodyTap {
    /// The next event: at once when it was read ahead, else when the reader has it. `None`
    /// when the reader is gone.
    pub(crate) fn pull(&self) -> Option<oneshot::Receiver<BodyEvent>> {
        let (tx, rx) = oneshot::channel();
        // Under the slot lock, so the reader (which looks for waiting pulls under it before
        // filling the slot) cannot miss this pull.
        let mut ready = lock(&self.shared.ready);
        match ready.take() {
            Some(event) => {
                drop(ready);
                self.shared.taken.notify_one();
                let _ = tx.send(event);
            }
            None => self.pulls.send(tx).ok()?,
        }
        Some(rx)
    }

    /// A chunk already read ahead, without waiting (the end and errors go through [`pull`]).
    pub(crate) fn take_ready(&self) -> Option<Vec<Bytes>> {
        let mut ready = lock(&self.shared.ready);
        if !matches!(*ready, Some(BodyEvent::Chunk(_))) {
            return None;
        }
        let Some(BodyEvent::Chunk(pieces)) = ready.take() else {
            return None;
        };
        drop(ready);
        self.shared.taken.notify_one();
        Some(pieces)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum BodyOutcome {
    Complete,
    /// JS stopped pulling (responded or cancelled) before the end: the peer was told to stop.
    Abandoned,
    PeerReset,
    TooLarge,
}

/// Where the reader is between chunks.
enum Wait {
    /// A pull is waiting for the next chunk.
    Pull(BodyPull),
    /// The slot is empty: read ahead.
    Room,
}

/// Serves JS's pulls on a streaming body with one chunk of read-ahead (see the module docs).
pub(super) async fn read_streaming_body(
    mut recv: RequestBodyStream,
    feed: BodyFeed,
    limit: Option<u64>,
    responder: CommandSender,
    quic: quinn::Connection,
) -> BodyOutcome {
    let BodyFeed { mut pulls, shared } = feed;
    let mut total: u64 = 0;
    let closed = quic.closed();
    tokio::pin!(closed);
    // Nothing is read before JS first asks.
    let Some(first) = pulls.recv().await else {
        return abandon(&mut recv);
    };
    let mut waiter = Some(first);
    loop {
        let event = loop {
            tokio::select! {
                r = body::next_chunk(&mut recv) => break r,
                p = pulls.recv(), if waiter.is_none() => match p {
                    Some(tx) => waiter = Some(tx),
                    None => return abandon(&mut recv),
                },
                _ = &mut closed => {
                    deliver(&shared, &mut pulls, waiter.take(), BodyEvent::Error(H3Error::ConnectionLost));
                    return BodyOutcome::PeerReset;
                }
            }
        };
        let (event, outcome) = match event {
            Ok(Some(pieces)) => {
                total += pieces.iter().map(|p| p.len() as u64).sum::<u64>();
                match limit.filter(|l| total > *l) {
                    Some(l) => {
                        recv.stop_sending(Code::H3_REQUEST_REJECTED);
                        let _ = responder.send(ResponseCmd::BodyTooLarge);
                        (
                            BodyEvent::Error(H3Error::BodyTooLarge(l)),
                            Some(BodyOutcome::TooLarge),
                        )
                    }
                    None => (BodyEvent::Chunk(pieces), None),
                }
            }
            Ok(None) => (
                BodyEvent::End(body::end_trailers(&mut recv).await),
                Some(BodyOutcome::Complete),
            ),
            Err(_) => (
                BodyEvent::Error(H3Error::StreamReset),
                Some(BodyOutcome::PeerReset),
            ),
        };
        deliver(&shared, &mut pulls, waiter.take(), event);
        if let Some(outcome) = outcome {
            return outcome;
        }
        match wait_for_room(&shared, &mut pulls).await {
            Some(Wait::Pull(tx)) => waiter = Some(tx),
            Some(Wait::Room) => {}
            None => return abandon(&mut recv),
        }
    }
}

/// RFC 9114 §4.1.1: a response may complete before the request; ask the peer to stop.
fn abandon(recv: &mut RequestBodyStream) -> BodyOutcome {
    recv.stop_sending(Code::H3_NO_ERROR);
    BodyOutcome::Abandoned
}

/// Hand `event` to the waiting pull (ours, or one that came meanwhile), else park it in the slot.
fn deliver(
    shared: &Shared,
    pulls: &mut mpsc::UnboundedReceiver<BodyPull>,
    waiter: Option<BodyPull>,
    event: BodyEvent,
) {
    let mut ready = lock(&shared.ready);
    match waiter.or_else(|| pulls.try_recv().ok()) {
        Some(tx) => {
            let _ = tx.send(event);
        }
        None => *ready = Some(event),
    }
}

/// Wait until the slot is empty or a pull waits; `None` when JS let go of the body.
async fn wait_for_room(
    shared: &Shared,
    pulls: &mut mpsc::UnboundedReceiver<BodyPull>,
) -> Option<Wait> {
    loop {
        if lock(&shared.ready).is_none() {
            return Some(Wait::Room);
        }
        tokio::select! {
            // A pull only queues while the slot is empty (it takes a full slot itself).
            p = pulls.recv() => return p.map(Wait::Pull),
            _ = shared.taken.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn chunk(b: &'static [u8]) -> BodyEvent {
        BodyEvent::Chunk(vec![Bytes::from_static(b)])
    }

    #[test]
    fn a_chunk_read_ahead_waits_in_the_slot_and_is_taken_without_a_round_trip() {
        let (tap, mut feed) = channel();
        assert!(tap.take_ready().is_none());
        deliver(&feed.shared, &mut feed.pulls, None, chunk(b"a"));
        // Full slot: the reader waits for room.
        assert!(wait_for_room(&feed.shared, &mut feed.pulls)
            .now_or_never()
            .is_none());
        assert_eq!(tap.take_ready(), Some(vec![Bytes::from_static(b"a")]));
        assert!(matches!(
            wait_for_room(&feed.shared, &mut feed.pulls).now_or_never(),
            Some(Some(Wait::Room))
        ));
    }

    #[test]
    fn a_pull_takes_a_full_slot_at_once_and_else_waits_for_the_reader() {
        let (tap, mut feed) = channel();
        deliver(&feed.shared, &mut feed.pulls, None, chunk(b"a"));
        let got = tap.pull().and_then(|rx| rx.now_or_never());
        assert!(matches!(got, Some(Ok(BodyEvent::Chunk(_)))));
        // Empty slot: the pull queues, and the next delivery goes to it, not the slot.
        let mut rx = tap.pull().expect("reader alive");
        assert!((&mut rx).now_or_never().is_none());
        deliver(
            &feed.shared,
            &mut feed.pulls,
            None,
            BodyEvent::End(Vec::new()),
        );
        assert!(matches!(rx.now_or_never(), Some(Ok(BodyEvent::End(_)))));
        assert!(lock(&feed.shared.ready).is_none());
    }

    #[test]
    fn the_end_and_errors_are_not_taken_synchronously() {
        let (tap, mut feed) = channel();
        deliver(
            &feed.shared,
            &mut feed.pulls,
            None,
            BodyEvent::End(Vec::new()),
        );
        assert!(tap.take_ready().is_none());
        let got = tap.pull().and_then(|rx| rx.now_or_never());
        assert!(matches!(got, Some(Ok(BodyEvent::End(_)))));
    }

    #[test]
    fn dropping_the_tap_lets_the_reader_go() {
        let (tap, mut feed) = channel();
        deliver(&feed.shared, &mut feed.pulls, None, chunk(b"a"));
        drop(tap);
        assert!(matches!(
            wait_for_room(&feed.shared, &mut feed.pulls).now_or_never(),
            Some(None)
        ));
    }
}
