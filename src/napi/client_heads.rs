//! Response heads of a client's requests, handed to JS in batches: every head that arrived
//! since JS last ran goes over in one threadsafe call, as a flat array of [`HEAD_FIELDS`] cells
//! per request. A request's head and, when it is small and complete, its whole body and
//! trailers come in one row, so a small fetch costs one native call (`start`) and a share of
//! one threadsafe call.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};

use super::convert::{error_message, JsBytes};
use super::wake::{call_after_this_tick, Pending};
use crate::client::{HeadSink, ResponseHead};
use crate::error::Result as H3Result;
use crate::ids::RequestId;

/// JS names of the cells of one row, in order. `status` is -1 when the request failed; then
/// `headers` is the error message (`[CODE] text`, as errors read everywhere else).
pub const HEAD_FIELDS: &[&str] = &["requestId", "status", "headers", "body", "trailers"];

/// One cell of a head batch.
pub enum HeadCell {
    Int(i64),
    Str(String),
    Strs(Vec<String>),
    /// The pieces of a complete body, copied into one JS-heap Buffer.
    Body(Vec<Bytes>),
    Null,
}

impl ToNapiValue for HeadCell {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        match val {
            HeadCell::Int(v) => i64::to_napi_value(env, v),
            HeadCell::Str(v) => String::to_napi_value(env, v),
            HeadCell::Strs(v) => Vec::<String>::to_napi_value(env, v),
            HeadCell::Body(v) => JsBytes::to_napi_value(env, JsBytes(v)),
            HeadCell::Null => Null::to_napi_value(env, Null),
        }
    }
}

/// Weak (the JS side keeps the process alive while requests are pending), not callee-handled.
type HeadTsfn = ThreadsafeFunction<(), (), Vec<HeadCell>, Status, false, true, 0>;

/// Heads waiting for the JS thread, and the threadsafe function that drains them.
#[derive(Default)]
pub struct HeadBatch {
    queue: Pending<(RequestId, H3Result<ResponseHead>)>,
    tsfn: OnceLock<Arc<HeadTsfn>>,
}

impl HeadBatch {
    /// Route heads to `f` (once per client).
    pub fn listen(self: &Arc<Self>, f: Function<'_, Vec<HeadCell>, ()>) -> Result<()> {
        let drain = self.clone();
        let tsfn: HeadTsfn = f
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_| Ok(head_cells(drain.queue.take())))?;
        self.tsfn
            .set(Arc::new(tsfn))
            .map_err(|_| Error::new(Status::InvalidArg, "heads are already delivered elsewhere"))
    }
}

impl HeadSink for HeadBatch {
    fn deliver(&self, id: RequestId, head: H3Result<ResponseHead>) {
        let first = self.queue.push((id, head));
        // The queue was empty: nothing is scheduled yet. The call waits until the runtime has
        // run what is ready, so heads that come in one burst of packets share one JS wake-up.
        // A failed call means the environment is going away; nobody is left to answer.
        if let (true, Some(tsfn)) = (first, self.tsfn.get()) {
            let tsfn = tsfn.clone();
            call_after_this_tick(move || {
                let _ = tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
            });
        }
    }
}

/// The flat cells of a batch, [`HEAD_FIELDS`] per head.
pub fn head_cells(heads: Vec<(RequestId, H3Result<ResponseHead>)>) -> Vec<HeadCell> {
    let mut cells = Vec::with_capacity(heads.len() * HEAD_FIELDS.len());
    for (id, head) in heads {
        cells.push(HeadCell::Int(id.0 as i64));
        match head {
            Ok(h) => {
                let (body, trailers) = match h.complete {
                    Some((pieces, t)) => (HeadCell::Body(pieces), HeadCell::Strs(t)),
                    None => (HeadCell::Null, HeadCell::Null),
                };
                cells.extend([
                    HeadCell::Int(h.status.into()),
                    HeadCell::Strs(h.headers),
                    body,
                    trailers,
                ]);
            }
            Err(e) => cells.extend([
                HeadCell::Int(-1),
                HeadCell::Str(error_message(&e)),
                HeadCell::Null,
                HeadCell::Null,
            ]),
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::H3Error;

    #[test]
    fn rows_follow_the_field_names() {
        let ok = ResponseHead {
            status: 200,
            headers: vec!["a".into(), "1".into()],
            complete: Some((vec![Bytes::from_static(b"hi")], vec![])),
        };
        let cells = head_cells(vec![
            (RequestId(3), Ok(ok)),
            (RequestId(4), Err(H3Error::StreamReset)),
        ]);
        assert_eq!(cells.len(), 2 * HEAD_FIELDS.len());
        assert!(matches!(cells[0], HeadCell::Int(3)));
        assert!(matches!(cells[1], HeadCell::Int(200)));
        assert!(matches!(&cells[2], HeadCell::Strs(h) if h.len() == 2));
        assert!(matches!(&cells[3], HeadCell::Body(b) if b[0] == "hi"));
        assert!(matches!(&cells[4], HeadCell::Strs(t) if t.is_empty()));
        assert!(matches!(cells[6], HeadCell::Int(-1)));
        assert!(matches!(&cells[7], HeadCell::Str(m) if m.starts_with("[ERR_H3_")));
    }
}
