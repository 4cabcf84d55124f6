//! Which peer request streams were opened in 0-RTT (early data), noted when quinn hands them
//! over (`RecvStream::is_0rtt`, fixed at accept time) and taken by the request task, which
//! cannot reach the quinn stream through h3.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::ids::StreamId;
use crate::sync::lock;

/// Per connection: request streams that arrived before the handshake completed.
#[derive(Default)]
pub struct EarlyStreams(Mutex<HashSet<StreamId>>);

impl EarlyStreams {
    pub(super) fn mark(&self, id: StreamId) {
        lock(&self.0).insert(id);
    }

    /// Whether stream `id` arrived in 0-RTT; forgets it.
    pub fn take(&self, id: StreamId) -> bool {
        lock(&self.0).remove(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_once() {
        let e = EarlyStreams::default();
        e.mark(StreamId(4));
        assert!(!e.take(StreamId(0)));
        assert!(e.take(StreamId(4)));
        assert!(!e.take(StreamId(4)));
    }
}
