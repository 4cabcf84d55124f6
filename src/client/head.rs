//! Where a request's response head goes. The napi edge queues heads and hands JS every head
//! that arrived since its last turn in one threadsafe call, so a request costs JS no promise of
//! its own from the native side.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{H3Error, Result};
use crate::ids::RequestId;

/// A response head as handed to JS.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<String>,
    /// The whole body and trailers, when they had already arrived with the head (small
    /// responses): JS then builds the Response without pulling.
    pub complete: Option<(Vec<Bytes>, Vec<String>)>,
}

/// Receives the response head (or the failure) of every request of a client, exactly once each.
pub trait HeadSink: Send + Sync {
    fn deliver(&self, id: RequestId, head: Result<ResponseHead>);
}

/// The head slot of one request. Dropped unsent (the request task ended early: cancelled, the
/// client closed, the runtime shut down), it delivers a stream reset, so no caller waits forever.
pub struct HeadTx {
    id: RequestId,
    sink: Option<Arc<dyn HeadSink>>,
}

impl HeadTx {
    pub fn new(id: RequestId, sink: Arc<dyn HeadSink>) -> Self {
        HeadTx {
            id,
            sink: Some(sink),
        }
    }

    pub fn send(mut self, head: Result<ResponseHead>) {
        if let Some(sink) = self.sink.take() {
            sink.deliver(self.id, head);
        }
    }
}

impl Drop for HeadTx {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            sink.deliver(self.id, Err(H3Error::StreamReset));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(u64, bool)>>);

    impl HeadSink for Seen {
        fn deliver(&self, id: RequestId, head: Result<ResponseHead>) {
            if let Ok(mut v) = self.0.lock() {
                v.push((id.0, head.is_ok()));
            }
        }
    }

    #[test]
    fn a_head_is_delivered_once_and_a_dropped_slot_reports_a_reset() {
        let seen = Arc::new(Seen::default());
        let ok = HeadTx::new(RequestId(1), seen.clone());
        ok.send(Ok(ResponseHead {
            status: 200,
            headers: vec![],
            complete: None,
        }));
        drop(HeadTx::new(RequestId(2), seen.clone()));
        let v = seen.0.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(v, vec![(1, true), (2, false)]);
    }
}
