//! The server options and routes as index.js passes them, turned into validated settings.

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::convert::header_pairs;
use super::tls_options::NativeServerTls;
use crate::config::RawOptions;
use crate::error::H3Error;
use crate::server::router::{BodyMode, RouteSpec, RouteTable, StaticResponse};

/// One route as index.js describes it to Rust.
#[napi(object)]
pub struct NativeRoute {
    pub method: String,
    pub pattern: String,
    /// "buffered" (default) or "streaming".
    pub mode: Option<String>,
    /// Set for static `Response` routes, answered without calling JS.
    pub static_status: Option<u32>,
    pub static_headers: Option<Vec<String>>,
    pub static_body: Option<Buffer>,
    pub h3_datagram: Option<bool>,
    pub webtransport: Option<bool>,
}

/// Options as index.js passes them after normalising the user's `ServeOptions`.
#[napi(object)]
pub struct NativeServerOptions {
    pub port: Option<f64>,
    pub hostname: Option<String>,
    pub tls: NativeServerTls,
    pub max_request_body_size: Option<f64>,
    pub idle_timeout: Option<f64>,
    pub max_connections: Option<f64>,
    pub max_concurrent_streams: Option<f64>,
    pub max_header_list_size: Option<f64>,
    pub reuse_port: Option<bool>,
    pub routes: Vec<NativeRoute>,
    pub has_fallback: bool,
    /// A server-level `quicDatagram` handler exists.
    pub quic_datagram: Option<bool>,
    /// Directory for one qlog trace per connection.
    pub qlog_dir: Option<String>,
}

impl NativeServerOptions {
    /// The raw values [`crate::config::ServerConfig::build`] validates.
    pub fn raw(&self) -> RawOptions {
        RawOptions {
            port: self.port,
            hostname: self.hostname.clone(),
            max_request_body_size: self.max_request_body_size,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            max_concurrent_streams: self.max_concurrent_streams,
            max_header_list_size: self.max_header_list_size,
            reuse_port: self.reuse_port,
        }
    }
}

/// The route table from index.js's description.
pub fn route_table(routes: Vec<NativeRoute>) -> std::result::Result<RouteTable, H3Error> {
    let specs = routes
        .into_iter()
        .map(|r| {
            let mode = match r.mode.as_deref() {
                None | Some("buffered") => BodyMode::Buffered,
                Some("streaming") => BodyMode::Streaming,
                Some(m) => {
                    return Err(H3Error::Route(format!(
                        "{} {}: mode must be \"buffered\" or \"streaming\", got {m:?}",
                        r.method, r.pattern
                    )))
                }
            };
            let static_response = r.static_status.map(|status| StaticResponse {
                status: status.min(999) as u16,
                headers: header_pairs(r.static_headers.unwrap_or_default()),
                body: r
                    .static_body
                    .map(|b| Bytes::copy_from_slice(&b))
                    .unwrap_or_default(),
            });
            Ok(RouteSpec {
                method: r.method,
                pattern: r.pattern,
                mode,
                static_response,
                h3_datagram: r.h3_datagram.unwrap_or(false),
                webtransport: r.webtransport.unwrap_or(false),
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RouteTable::new(specs)
}
