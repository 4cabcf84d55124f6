//! Acknowledgements of streamed body chunks (server responses, client uploads), handed to JS in
//! batches: every chunk QUIC took (or that failed) since JS last ran goes over in one threadsafe
//! call, as flat `requestId, ok` pairs, instead of a promise and a threadsafe function per chunk
//! (napi-rs's `spawn_future`, the larger part of a 64 KiB chunk's JS-thread cost).

use super::wake::CellBatch;
use crate::ids::RequestId;
use crate::transport::write_ack::AckSink;

/// The acknowledgements waiting for JS (`listen` once per server or client; the server handle,
/// or a client's wait for the response head, keeps the process alive meanwhile).
pub type AckBatch = CellBatch<(RequestId, bool)>;

pub fn ack_batch() -> AckBatch {
    CellBatch::new(ack_cells)
}

impl AckSink for AckBatch {
    fn ack(&self, id: RequestId, ok: bool) {
        self.push((id, ok));
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
