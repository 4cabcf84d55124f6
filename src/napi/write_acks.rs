//! Acknowledgements of streamed body chunks (server responses, client uploads), handed to JS in batches: every chunk QUIC took
//! (or that failed) since JS last ran goes over in one threadsafe call, as flat
//! `requestId, ok` pairs, instead of a promise and a threadsafe function per chunk (napi-rs's
//! `spawn_future`, the larger part of a 64 KiB chunk's JS-thread cost).

use std::sync::{Arc, OnceLock};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};

use super::wake::{call_after_this_tick, Pending};
use crate::ids::RequestId;
use crate::transport::write_ack::AckSink;

/// Weak (the server handle, or a client's wait for the response head, keeps the process alive), not
/// callee-handled.
type AckTsfn = ThreadsafeFunction<(), (), Vec<i64>, Status, false, true, 0>;

/// Acknowledgements waiting for the JS thread, and the threadsafe function that drains them.
#[derive(Default)]
pub struct AckBatch {
    queue: Pending<(RequestId, bool)>,
    tsfn: OnceLock<Arc<AckTsfn>>,
}

impl AckBatch {
    /// Route acknowledgements to `f` (once per server or client).
    pub fn listen(self: &Arc<Self>, f: Function<'_, Vec<i64>, ()>) -> Result<()> {
        let drain = self.clone();
        let tsfn: AckTsfn = f
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_| Ok(ack_cells(drain.queue.take())))?;
        self.tsfn
            .set(Arc::new(tsfn))
            .map_err(|_| Error::new(Status::InvalidArg, "acks are already delivered elsewhere"))
    }
}

impl AckSink for AckBatch {
    fn ack(&self, id: RequestId, ok: bool) {
        let first = self.queue.push((id, ok));
        // As for request batches: one JS wake-up for what one burst of the runtime acknowledged.
        // A failed call means the environment is going away; nobody is left to answer.
        if let (true, Some(tsfn)) = (first, self.tsfn.get()) {
            let tsfn = tsfn.clone();
            call_after_this_tick(move || {
                let _ = tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
            });
        }
    }
}

/// `requestId, ok (1 or 0)` per acknowledgement, in the order they came.
fn ack_cells(acks: Vec<(RequestId, bool)>) -> Vec<i64> {
    acks.into_iter()
        .flat_map(|(id, ok)| [id.0 as i64, i64::from(ok)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_go_over_as_pairs_in_order() {
        let acks = vec![
            (RequestId(7), true),
            (RequestId(7), false),
            (RequestId(9), true),
        ];
        assert_eq!(ack_cells(acks), vec![7, 1, 7, 0, 9, 1]);
    }
}
