//! Complete responses from JS, a batch at a time: one hand-off to the runtime per batch, and
//! from there each response goes to its request task. Sending to every task straight from the
//! JS thread cost a cross-thread wake per response (tokio's inject queue, its lock contended by
//! the busy runtime thread, and often an eventfd write); perf, Node 24 "hello": the batch call
//! was ~12 % of the JS thread.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::response::ResponseCmd;
use super::state::ServerState;
use crate::ids::RequestId;

/// Responses for several requests, in the order JS gave them.
pub type AnswerBatch = Vec<(RequestId, ResponseCmd)>;

/// Where JS's response batches go; the router task ends when this is dropped.
pub struct Answers(mpsc::UnboundedSender<AnswerBatch>);

impl Answers {
    /// Start the router task (call inside the runtime).
    pub(super) fn start(state: Arc<ServerState>) -> Answers {
        let (tx, mut rx) = mpsc::unbounded_channel::<AnswerBatch>();
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                for (id, cmd) in batch {
                    // A request that is gone (peer left, server stopped) needs no answer.
                    let _ = state.command(id, cmd);
                }
            }
        });
        Answers(tx)
    }

    /// Hand a batch over; dropped silently once the server is torn down.
    pub fn send(&self, batch: AnswerBatch) {
        if !batch.is_empty() {
            let _ = self.0.send(batch);
        }
    }
}
