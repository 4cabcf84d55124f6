//! The flat batches handed to JS: many requests per threadsafe call, each a run of cells
//! passed as the call's arguments ([`Spread`]). Each layout is declared once, below, as an
//! ordered list of field names; the same declaration emits the cells, so names and order cannot
//! drift. JS reads the names through `requestBatchFields()`. (Datagrams travel packed:
//! datagram_batch.rs.)

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use super::convert::JsBytes;
use crate::server::{RequestHead, RequestKind};
use crate::sync::lock;

/// One value of the flat batch handed to JS.
pub enum Cell {
    Int(i64),
    Str(String),
    /// A list: spread as its length, then its items (see [`Spread`]).
    Strs(Vec<String>),
    /// Copied into a JS-heap Buffer (cheaper than an external one with a finalizer).
    Bytes(Bytes),
    Null,
}

impl ToNapiValue for Cell {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        match val {
            Cell::Int(v) => i64::to_napi_value(env, v),
            Cell::Str(v) => String::to_napi_value(env, v),
            Cell::Strs(v) => Vec::<String>::to_napi_value(env, v),
            Cell::Bytes(v) => JsBytes::to_napi_value(env, JsBytes(vec![v])),
            Cell::Null => Null::to_napi_value(env, Null),
        }
    }
}

/// Cells as the arguments of one JS call (`onBatch(...cells)`), lists spread behind their
/// length. Engines take an argument list in one step, where filling a JS array costs a generic
/// property store per element (perf, Node 24 "hello": `napi_set_element` under the batch's
/// conversion was about 6 % of the JS thread).
pub struct Spread(pub Vec<Cell>);

impl Spread {
    /// Arguments a cell becomes.
    pub fn args(cell: &Cell) -> usize {
        match cell {
            Cell::Strs(v) => 1 + v.len(),
            _ => 1,
        }
    }
}

impl JsValuesTupleIntoVec for Spread {
    fn into_vec(self, env: sys::napi_env) -> Result<Vec<sys::napi_value>> {
        let mut out = Vec::with_capacity(self.0.iter().map(Spread::args).sum());
        for cell in self.0 {
            match cell {
                Cell::Strs(items) => {
                    out.push(unsafe { u32::to_napi_value(env, items.len() as u32)? });
                    for s in items {
                        out.push(unsafe { String::to_napi_value(env, s)? });
                    }
                }
                c => out.push(unsafe { Cell::to_napi_value(env, c)? }),
            }
        }
        Ok(out)
    }
}

/// Most arguments one call carries; the rest of a batch follows in another call (engines cap
/// argument counts and each argument takes stack).
pub const MAX_ARGS: usize = 4096;

/// Declares a batch row: a struct with one `Cell` per field, the JS names of the fields in
/// order, and the emitter that appends the cells in that same order.
macro_rules! batch_row {
    ($(#[$doc:meta])* $row:ident, $names:ident { $($field:ident => $js:literal),+ $(,)? }) => {
        $(#[$doc])*
        struct $row {
            $($field: Cell),+
        }

        /// JS names of the cells of one row, in batch order.
        pub const $names: &[&str] = &[$($js),+];

        impl $row {
            fn emit(self, out: &mut Vec<Cell>) {
                out.extend([$(self.$field),+]);
            }
        }
    };
}

batch_row!(
    /// One request. bodyMode: 0 buffered, 1 streaming, 2 WebTransport session; routeIndex -1
    /// when no route matched (the fallback handler). The two lists come last, each spread as
    /// its length then its strings: headers (flat name/value), params (flat name/value, often
    /// empty).
    RequestRow,
    REQUEST_BATCH_FIELDS {
        request_id => "requestId",
        method => "method",
        url => "url",
        body => "body",
        route_index => "routeIndex",
        generation => "generation",
        body_mode => "bodyMode",
        connection_id => "connectionId",
        stream_id => "streamId",
        headers => "headers",
        params => "params",
    }
);

fn body_mode(kind: RequestKind) -> i64 {
    match kind {
        RequestKind::Buffered => 0,
        RequestKind::Streaming => 1,
        RequestKind::WebTransport => 2,
    }
}

impl From<RequestHead> for RequestRow {
    fn from(h: RequestHead) -> Self {
        let (route_index, params) = match h.route {
            Some(m) => (m.index as i64, m.params),
            None => (-1, Vec::new()),
        };
        RequestRow {
            request_id: Cell::Int(h.id.0 as i64),
            method: Cell::Str(h.method),
            url: Cell::Str(h.url),
            headers: Cell::Strs(h.headers),
            body: h.body.map_or(Cell::Null, |b| Cell::Bytes(b.into())),
            route_index: Cell::Int(route_index),
            params: Cell::Strs(params),
            generation: Cell::Int(h.generation.into()),
            body_mode: Cell::Int(body_mode(h.kind)),
            connection_id: Cell::Int(h.conn_id.0 as i64),
            stream_id: Cell::Int(h.stream_id.0 as i64),
        }
    }
}

/// The flat cells of a request batch, [`REQUEST_BATCH_FIELDS`] per request.
pub fn request_cells(heads: Vec<RequestHead>) -> Spread {
    let mut cells = Vec::with_capacity(heads.len() * REQUEST_BATCH_FIELDS.len());
    for h in heads {
        RequestRow::from(h).emit(&mut cells);
    }
    Spread(cells)
}

/// Arguments one request head becomes in a [`Spread`] batch.
pub fn request_args(h: &RequestHead) -> usize {
    let params = h.route.as_ref().map_or(0, |m| m.params.len());
    REQUEST_BATCH_FIELDS.len() + h.headers.len() + params
}

/// Names of the cells of one request in the batch `createNativeServer`'s `onRequest` gets.
#[napi]
pub fn request_batch_fields() -> Vec<String> {
    REQUEST_BATCH_FIELDS.iter().map(|s| s.to_string()).collect()
}

/// Items wait here until the JS thread runs; one threadsafe call drains them all, so a busy
/// server wakes JS once per batch rather than once per request or datagram.
pub struct Batch<T>(std::sync::Mutex<Vec<T>>);

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Batch(std::sync::Mutex::new(Vec::new()))
    }
}

impl<T> Batch<T> {
    /// `Some(true)` when the batch was empty (a JS call must be scheduled); `None` when full.
    pub fn push(&self, item: T, cap: usize) -> Option<bool> {
        let mut q = lock(&self.0);
        if q.len() >= cap {
            return None;
        }
        q.push(item);
        Some(q.len() == 1)
    }

    /// The oldest items whose `weight` adds up to at most `budget` (always at least one), and
    /// whether any are left behind.
    pub fn take_within(&self, budget: usize, weight: impl Fn(&T) -> usize) -> (Vec<T>, bool) {
        let mut q = lock(&self.0);
        let mut used = 0;
        let n = q
            .iter()
            .take_while(|item| {
                used += weight(item);
                used <= budget
            })
            .count()
            .max(1)
            .min(q.len());
        let rest = q.split_off(n);
        let taken = std::mem::replace(&mut *q, rest);
        (taken, !q.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConnectionId, RequestId, StreamId};
    use crate::server::router::RouteMatch;

    /// The contract index.js codes against.
    #[test]
    fn field_names_are_the_contract() {
        assert_eq!(
            REQUEST_BATCH_FIELDS,
            [
                "requestId",
                "method",
                "url",
                "body",
                "routeIndex",
                "generation",
                "bodyMode",
                "connectionId",
                "streamId",
                "headers",
                "params"
            ]
        );
    }

    fn int(c: &Cell) -> i64 {
        match c {
            Cell::Int(v) => *v,
            _ => i64::MIN,
        }
    }

    #[test]
    fn request_cells_follow_the_names() {
        let head = RequestHead {
            id: RequestId(7),
            conn_id: ConnectionId(3),
            method: "POST".into(),
            url: "https://x/a".into(),
            headers: vec!["a".into(), "1".into()],
            route: Some(RouteMatch {
                index: 2,
                params: vec!["id".into(), "9".into()],
            }),
            generation: 5,
            body: Some(b"hi".to_vec()),
            kind: RequestKind::Streaming,
            stream_id: StreamId(8),
        };
        assert_eq!(request_args(&head), REQUEST_BATCH_FIELDS.len() + 4);
        let Spread(cells) = request_cells(vec![head]);
        assert_eq!(cells.len(), REQUEST_BATCH_FIELDS.len());
        let at = |name: &str| {
            let i = REQUEST_BATCH_FIELDS.iter().position(|n| *n == name);
            &cells[i.unwrap_or(usize::MAX)]
        };
        assert_eq!(int(at("requestId")), 7);
        assert!(matches!(at("method"), Cell::Str(m) if m == "POST"));
        assert!(matches!(at("url"), Cell::Str(u) if u == "https://x/a"));
        assert!(matches!(at("headers"), Cell::Strs(h) if h.len() == 2));
        assert!(matches!(at("body"), Cell::Bytes(b) if &b[..] == b"hi"));
        assert_eq!(int(at("routeIndex")), 2);
        assert!(matches!(at("params"), Cell::Strs(p) if p[1] == "9"));
        assert_eq!(int(at("generation")), 5);
        assert_eq!(int(at("bodyMode")), 1);
        assert_eq!(int(at("connectionId")), 3);
        assert_eq!(int(at("streamId")), 8);
    }

    #[test]
    fn take_within_keeps_the_budget_and_takes_at_least_one() {
        let b = Batch::default();
        for w in [3usize, 3, 3, 10] {
            b.push(w, usize::MAX);
        }
        assert_eq!(b.take_within(7, |w| *w), (vec![3, 3], true));
        assert_eq!(b.take_within(7, |w| *w), (vec![3], true));
        // An item over the budget on its own still goes, alone.
        assert_eq!(b.take_within(7, |w| *w), (vec![10], false));
        assert_eq!(b.take_within(7, |w| *w), (vec![], false));
    }
}
