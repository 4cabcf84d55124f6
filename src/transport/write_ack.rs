//! Acknowledgements of body chunks JS writes (server responses, client uploads). JS waits for
//! QUIC to take them (that is a streamed body's backpressure); instead of a promise and a
//! threadsafe call per chunk, each chunk carries a [`WriteAck`] that reports to one [`AckSink`]
//! per server or client, which hands JS every acknowledgement of a burst at once.

use std::sync::Arc;

use crate::ids::RequestId;

/// Where acknowledgements go (implemented at the napi edge).
pub trait AckSink: Send + Sync {
    /// A chunk of request `id` was taken by QUIC (`ok`), or not (the stream or request is gone).
    fn ack(&self, id: RequestId, ok: bool);
}

/// The acknowledgement of one chunk: reported exactly once, as sent, or as failed when the
/// chunk is dropped unsent (its request ended first), so JS never waits on a lost chunk.
pub struct WriteAck {
    id: RequestId,
    sink: Option<Arc<dyn AckSink>>,
}

impl WriteAck {
    pub fn new(id: RequestId, sink: Arc<dyn AckSink>) -> Self {
        WriteAck {
            id,
            sink: Some(sink),
        }
    }

    pub fn send(mut self, ok: bool) {
        if let Some(sink) = self.sink.take() {
            sink.ack(self.id, ok);
        }
    }
}

impl Drop for WriteAck {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            sink.ack(self.id, false);
        }
    }
}

impl std::fmt::Debug for WriteAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WriteAck({})", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<(u64, bool)>>);

    impl AckSink for Log {
        fn ack(&self, id: RequestId, ok: bool) {
            self.0.lock().unwrap().push((id.0, ok));
        }
    }

    #[test]
    fn every_chunk_is_acknowledged_once_sent_or_dropped() {
        let log = Arc::new(Log::default());
        WriteAck::new(RequestId(1), log.clone()).send(true);
        WriteAck::new(RequestId(2), log.clone()).send(false);
        drop(WriteAck::new(RequestId(3), log.clone()));
        // Queued in a channel whose receiver goes away: failed, not lost.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tx.send(WriteAck::new(RequestId(4), log.clone())).unwrap();
        drop(rx);
        assert_eq!(
            *log.0.lock().unwrap(),
            vec![(1, true), (2, false), (3, false), (4, false)]
        );
    }
}
