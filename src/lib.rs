//! napi-h3: HTTP/3 for Node.js and Bun. quinn + h3 on one tokio runtime, bridged by napi-rs.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod body;
pub mod client;
pub mod config;
pub mod connection;
pub mod datagram;
pub mod error;
pub mod guard;
pub mod quic;
pub mod request;
pub mod response;
pub mod router;
pub mod server;
pub mod stats;
pub mod tls;
pub mod webtransport;

mod napi_client;
mod napi_server;
mod napi_wt;

pub use error::H3Error;
pub use napi_client::{create_native_client, NativeClient};
pub use napi_server::{create_native_server, NativeServer};
pub use napi_wt::NativeWt;

/// One tokio runtime per process, shared by every server and client. Worker threads default to
/// `available_parallelism - 1` (at least 1), leaving a core for the JS thread; `NAPI_H3_THREADS`
/// overrides it.
#[napi_derive::module_init]
fn init_runtime() {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let workers = std::env::var("NAPI_H3_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(cores.saturating_sub(1).max(1));
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
// avoid glibc's arena contention on that path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
