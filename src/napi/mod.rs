//! The napi edge: the only module with napi types. Everything below it is plain Rust that
//! `cargo test` covers; ids, bytes and errors become JS values here and nowhere else.

pub mod answer_batch;
pub mod batch;
pub mod client;
pub mod client_early;
pub mod client_heads;
pub mod convert;
pub mod datagram_batch;
pub mod gc_hint;
pub mod server;
pub mod server_options;
pub mod server_tls;
pub mod teardown;
pub mod tls_options;
pub mod wake;
pub mod webtransport;
pub mod write_acks;
