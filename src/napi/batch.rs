//! The flat batches handed to JS: many requests per threadsafe call, each a fixed run of
//! cells. Each layout is declared once, below, as an ordered list of field names; the same
//! declaration emits the cells, so names and order cannot drift. JS reads the names through
//! `requestBatchFields()`. (Datagrams travel packed: datagram_batch.rs.)

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::convert::JsBytes;
use crate::server::{RequestHead, RequestKind};
use crate::sync::lock;

/// One value of the flat batch handed to JS.
pub enum Cell {
    Int(i64),
    Str(String),
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
    /// when no route matched (the fallback handler).
    RequestRow,
    REQUEST_BATCH_FIELDS {
        request_id => "requestId",
        method => "method",
        url => "url",
        headers => "headers",
        body => "body",
        route_index => "routeIndex",
        params => "params",
        generation => "generation",
        body_mode => "bodyMode",
        connection_id => "connectionId",
        stream_id => "streamId",
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
            Some(m) if m.params.is_empty() => (m.index as i64, Cell::Null),
            Some(m) => (m.index as i64, Cell::Strs(m.params)),
            None => (-1, Cell::Null),
        };
        RequestRow {
            request_id: Cell::Int(h.id.0 as i64),
            method: Cell::Str(h.method),
            url: Cell::Str(h.url),
            headers: Cell::Strs(h.headers),
            body: h.body.map_or(Cell::Null, |b| Cell::Bytes(b.into())),
            route_index: Cell::Int(route_index),
            params,
            generation: Cell::Int(h.generation.into()),
            body_mode: Cell::Int(body_mode(h.kind)),
            connection_id: Cell::Int(h.conn_id.0 as i64),
            stream_id: Cell::Int(h.stream_id.0 as i64),
        }
    }
}

/// The flat cells of a request batch, [`REQUEST_BATCH_FIELDS`] per request.
pub fn request_cells(heads: Vec<RequestHead>) -> Vec<Cell> {
    let mut cells = Vec::with_capacity(heads.len() * REQUEST_BATCH_FIELDS.len());
    for h in heads {
        RequestRow::from(h).emit(&mut cells);
    }
    cells
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

    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *lock(&self.0))
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
                "headers",
                "body",
                "routeIndex",
                "params",
                "generation",
                "bodyMode",
                "connectionId",
                "streamId"
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
        let cells = request_cells(vec![head]);
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
}
