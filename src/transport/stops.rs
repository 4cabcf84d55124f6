//! STOP_SENDING from the peer, observable while a request waits for JS: h3 never writes then,
//! so nothing else would notice the client cancelled (RFC 9114 §4.1.1).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use crate::ids::StreamId;
use crate::sync::lock;

pub type StopFuture = Pin<Box<dyn Future<Output = Option<u64>> + Send + Sync>>;

/// For each accepted request stream, a future that resolves with the peer's STOP_SENDING
/// code. The request task takes its entry by stream id.
#[derive(Default)]
pub struct Stops(Mutex<HashMap<StreamId, StopFuture>>);

impl Stops {
    pub(super) fn put(&self, id: StreamId, send: &quinn::SendStream) {
        let stopped = send.stopped();
        let fut: StopFuture = Box::pin(async move {
            match stopped.await {
                Ok(Some(code)) => Some(code.into_inner()),
                // Finished and acknowledged, or the connection went: not a peer cancel.
                _ => std::future::pending().await,
            }
        });
        lock(&self.0).insert(id, fut);
    }

    /// Resolves with the peer's STOP_SENDING code; never resolves if there is none to watch.
    pub fn take(&self, id: StreamId) -> StopFuture {
        lock(&self.0)
            .remove(&id)
            .unwrap_or_else(|| Box::pin(std::future::pending()))
    }
}
