//! A session's received datagrams waiting for JS: one bounded queue and the wake of a JS read
//! that found it empty, under one lock. The runtime pushes datagram by datagram; JS takes all
//! that are queued in one call, so a burst costs it one lock, not one channel receive each.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::ids::SessionHandle;
use crate::sync::lock;

/// Told when a session JS waits on has datagrams again, or ended (implemented at the napi edge).
pub trait DatagramWake: Send + Sync {
    fn ready(&self, session: SessionHandle);
}

/// What [`DatagramQueue::want`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramWant {
    /// Nothing yet: the wake comes with the next datagram or the session's end.
    Waiting,
    /// Datagrams arrived meanwhile: take them now (no wake comes for them).
    Ready,
    /// The session is over.
    Closed,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Bytes>,
    /// Who to tell when a datagram arrives (or the session ends) while JS waits for one.
    waiter: Option<Arc<dyn DatagramWake>>,
    closed: bool,
}

/// Bounded: beyond `cap` waiting datagrams, new ones are refused (the caller counts them).
pub struct DatagramQueue {
    session: SessionHandle,
    cap: usize,
    inner: Mutex<Inner>,
}

impl DatagramQueue {
    pub fn new(session: SessionHandle, cap: usize) -> Self {
        DatagramQueue {
            session,
            cap,
            inner: Mutex::default(),
        }
    }

    /// Queue a datagram; false when the queue is full or closed. Wakes a waiting JS read.
    pub fn push(&self, payload: Bytes) -> bool {
        let waiter = {
            let mut q = lock(&self.inner);
            if q.closed || q.queue.len() >= self.cap {
                return false;
            }
            q.queue.push_back(payload);
            q.waiter.take()
        };
        // Outside the lock: the wake may call into the napi edge.
        if let Some(w) = waiter {
            w.ready(self.session);
        }
        true
    }

    /// Up to `max` queued datagrams, oldest first (empty when none are, or it is closed).
    pub fn take(&self, max: usize) -> Vec<Bytes> {
        let mut q = lock(&self.inner);
        if q.closed {
            return Vec::new();
        }
        let n = q.queue.len().min(max);
        q.queue.drain(..n).collect()
    }

    /// JS found nothing: have `wake` told when a datagram arrives or the queue closes (once).
    /// Checked under the lock the pushing side takes, so no datagram is left without a wake.
    pub fn want(&self, wake: Arc<dyn DatagramWake>) -> DatagramWant {
        let mut q = lock(&self.inner);
        if q.closed {
            DatagramWant::Closed
        } else if q.queue.is_empty() {
            q.waiter = Some(wake);
            DatagramWant::Waiting
        } else {
            DatagramWant::Ready
        }
    }

    /// The session ended: drop what is queued, refuse more, wake a waiting read.
    pub fn close(&self) {
        let waiter = {
            let mut q = lock(&self.inner);
            q.closed = true;
            q.queue.clear();
            q.waiter.take()
        };
        if let Some(w) = waiter {
            w.ready(self.session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl DatagramWake for Count {
        fn ready(&self, _: SessionHandle) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn takes_in_order_up_to_max_and_refuses_past_the_bound() {
        let q = DatagramQueue::new(SessionHandle(1), 3);
        for b in [&b"a"[..], b"b", b"c"] {
            assert!(q.push(Bytes::copy_from_slice(b)));
        }
        assert!(!q.push(Bytes::from_static(b"d")));
        assert_eq!(
            q.take(2),
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
        assert_eq!(q.take(8), vec![Bytes::from_static(b"c")]);
        assert!(q.take(8).is_empty());
    }

    #[test]
    fn a_waiting_read_is_woken_once_by_a_push_or_the_close() {
        let q = DatagramQueue::new(SessionHandle(1), 8);
        let c = Arc::new(Count::default());
        assert_eq!(q.want(c.clone()), DatagramWant::Waiting);
        assert!(q.push(Bytes::from_static(b"x")));
        assert!(q.push(Bytes::from_static(b"y")));
        assert_eq!(c.0.load(SeqCst), 1);
        assert_eq!(q.want(c.clone()), DatagramWant::Ready);
        assert_eq!(q.take(8).len(), 2);
        assert_eq!(q.want(c.clone()), DatagramWant::Waiting);
        q.close();
        assert_eq!(c.0.load(SeqCst), 2);
        assert_eq!(q.want(c.clone()), DatagramWant::Closed);
        assert!(!q.push(Bytes::from_static(b"z")));
    }
}
