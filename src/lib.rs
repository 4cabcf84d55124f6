//! napi-h3: HTTP/3 for Node.js and Bun. quinn + h3 on one tokio runtime, bridged by napi-rs.
//!
//! Layers, each using only those below it (no import cycles):
//!
//! ```text
//! napi/                      the only module with napi types: JS in, JS out
//! server/   client/          roles: the tasks that serve and connect
//! webtransport/              sessions, streams, their handle table, the CONNECT driver
//! transport/                 h3's QUIC traits on quinn, pulled bodies, datagram demux
//! proto/  config  tls        wire formats, validated settings, certificates
//! ids  stats  error  sync    leaves
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Unit tests may unwrap: a panic there is a failed test, not a crashed host.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod client;
pub mod config;
pub mod error;
/// Property checks of the wire parsers, for `cargo test` and the fuzz targets in `fuzz/`.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_checks;
pub mod ids;
// Named `js` in code because a module named `napi` would shadow the napi crate inside the
// napi-derive macro expansions; the files live in src/napi/.
#[path = "napi/mod.rs"]
mod js;
pub mod proto;
pub mod server;
pub mod stats;
mod sync;
pub mod tls;
pub mod transport;
pub mod webtransport;

pub use error::H3Error;
pub use js::batch::request_batch_fields;
pub use js::client::{client_head_fields, create_native_client, NativeClient};
pub use js::datagram_batch::datagram_batch_fields;
pub use js::server::{create_native_server, NativeServer};
pub use js::webtransport::NativeWt;

/// The JS thread, not the runtime, limits a JS handler's request rate: on 16 cores (Bun, "hello",
/// 48 connections) 4 workers served as many requests per second as 15 (90k) at 23% less CPU per
/// request, and 3 workers 96% of it. More workers only add hand-offs and idle spinning.
const DEFAULT_MAX_WORKERS: usize = 4;

/// One tokio runtime per process, shared by every server and client. Worker threads default to
/// `available_parallelism - 1`, at least 1 (a core for the JS thread) and at most
/// [`DEFAULT_MAX_WORKERS`]; `NAPI_H3_THREADS` overrides it.
#[napi_derive::module_init]
fn init_runtime() {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let workers = std::env::var("NAPI_H3_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(cores.saturating_sub(1).clamp(1, DEFAULT_MAX_WORKERS));
    if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("napi-h3")
        .enable_all()
        .build()
    {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}

// Requests hop between the JS thread and tokio workers; mimalloc's thread-local free lists
// avoid glibc's arena contention on that path. (Not in fuzz builds: libFuzzer's malloc limit
// only sees libc malloc.)
#[cfg(not(feature = "fuzzing"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
