//! napi-h3: HTTP/3 for Node.js and Bun. quinn + h3 on one tokio runtime, bridged by napi-rs.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod config;
pub mod connection;
pub mod error;
pub mod guard;
pub mod request;
pub mod response;
pub mod router;
pub mod server;
pub mod stats;
pub mod tls;

mod napi_server;

pub use error::H3Error;
pub use napi_server::{create_native_server, NativeServer};
