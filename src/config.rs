//! Validated server settings (napi-free; built from the JS options at the edge).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::error::{H3Error, Result};

pub const DEFAULT_PORT: u16 = 4433;
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 1024 * 1024;
pub const DEFAULT_IDLE_TIMEOUT_SECS: f64 = 30.0;
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;
pub const DEFAULT_MAX_HEADER_LIST_SIZE: u64 = 16 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;
/// Per-stream QUIC receive window: the most one request stream can make us buffer. 4 MiB keeps
/// a fast upload flowing while the JS thread is busy or descheduled (1 MiB held it back through
/// flow control: ~2000 STREAM_DATA_BLOCKED per GiB, 4 MiB ~600); 8 MiB gained a few percent
/// more but grew the server's RSS by 54-87 MiB over a 1 GiB upload against 46-60. The
/// connection window bounds the sum over streams.
pub const STREAM_RECEIVE_WINDOW: u32 = 4 * 1024 * 1024;
/// Per-connection QUIC receive window across all its streams.
pub const CONNECTION_RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;
/// Kernel send and receive buffer asked for on a server's UDP socket (the kernel may cap it):
/// a burst that arrives while the runtime thread is descheduled waits there instead of being
/// dropped (with 2 MiB, 512 MiB uploads on loopback lost 60-2150 packets; with 4 MiB, none).
pub const UDP_SOCKET_BUFFER: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub max_request_body: u64,
    /// `maxRequestBodySize` as given by the user: streaming routes are only limited when it is set.
    pub streaming_body_limit: Option<u64>,
    pub idle_timeout: Duration,
    pub max_connections: u32,
    pub max_concurrent_streams: u32,
    pub max_header_list_size: u64,
    pub reuse_port: bool,
    pub enable_datagram: bool,
    pub enable_webtransport: bool,
    /// A server-level `quicDatagram` handler exists (QUIC datagrams are enabled for it).
    pub quic_datagram_handler: bool,
    /// Write a qlog trace per connection into this directory (`qlogDir`).
    pub qlog_dir: Option<String>,
    /// Serve safe-method requests that arrive in 0-RTT (`allow0RTT`).
    pub allow_0rtt: bool,
}

/// Raw option values as they come from JS (all optional), validated by [`ServerConfig::build`].
#[derive(Debug, Default, Clone)]
pub struct RawOptions {
    pub port: Option<f64>,
    pub hostname: Option<String>,
    pub max_request_body_size: Option<f64>,
    pub idle_timeout: Option<f64>,
    pub max_connections: Option<f64>,
    pub max_concurrent_streams: Option<f64>,
    pub max_header_list_size: Option<f64>,
    pub reuse_port: Option<bool>,
}

fn whole(name: &str, v: f64, min: f64, max: f64) -> Result<f64> {
    if !v.is_finite() || v.fract() != 0.0 || v < min || v > max {
        return Err(H3Error::InvalidArg(format!(
            "{name} must be an integer between {min} and {max}, got {v}"
        )));
    }
    Ok(v)
}

impl ServerConfig {
    pub fn build(o: &RawOptions, enable_datagram: bool, enable_webtransport: bool) -> Result<Self> {
        let port = match o.port {
            Some(p) => whole("port", p, 0.0, 65535.0)? as u16,
            None => DEFAULT_PORT,
        };
        let host = o.hostname.as_deref().unwrap_or("0.0.0.0");
        let ip: IpAddr = match host {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            h => h
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| {
                    H3Error::InvalidArg(format!(
                        "hostname must be an IP address or \"localhost\", got {h:?}"
                    ))
                })?,
        };
        let idle = o.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS);
        if !idle.is_finite() || !(0.0..=600.0).contains(&idle) {
            return Err(H3Error::InvalidArg(format!(
                "idleTimeout must be seconds between 0 and 600, got {idle}"
            )));
        }
        let max_u32 = u32::MAX as f64;
        Ok(ServerConfig {
            addr: SocketAddr::new(ip, port),
            max_request_body: match o.max_request_body_size {
                Some(v) => whole("maxRequestBodySize", v, 0.0, 9.007_199_254_740_991e15)? as u64,
                None => DEFAULT_MAX_REQUEST_BODY,
            },
            streaming_body_limit: o
                .max_request_body_size
                .map(|v| v.clamp(0.0, 9.007_199_254_740_991e15) as u64),
            idle_timeout: Duration::from_secs_f64(idle),
            max_connections: match o.max_connections {
                Some(v) => whole("maxConnections", v, 1.0, max_u32)? as u32,
                None => DEFAULT_MAX_CONNECTIONS,
            },
            max_concurrent_streams: match o.max_concurrent_streams {
                Some(v) => whole("maxConcurrentStreams", v, 1.0, 10_000.0)? as u32,
                None => DEFAULT_MAX_CONCURRENT_STREAMS,
            },
            max_header_list_size: match o.max_header_list_size {
                Some(v) => whole("maxHeaderListSize", v, 1024.0, 1024.0 * 1024.0)? as u64,
                None => DEFAULT_MAX_HEADER_LIST_SIZE,
            },
            reuse_port: o.reuse_port.unwrap_or(false),
            enable_datagram,
            enable_webtransport,
            quic_datagram_handler: false,
            qlog_dir: None,
            allow_0rtt: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = ServerConfig::build(&RawOptions::default(), false, false).unwrap();
        assert_eq!(c.addr.port(), 4433);
        assert_eq!(c.max_request_body, 1 << 20);
        assert_eq!(c.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.max_header_list_size, 16 * 1024);
    }

    #[test]
    fn rejects_bad_values() {
        for o in [
            RawOptions {
                port: Some(70000.0),
                ..Default::default()
            },
            RawOptions {
                port: Some(-1.0),
                ..Default::default()
            },
            RawOptions {
                port: Some(1.5),
                ..Default::default()
            },
            RawOptions {
                hostname: Some("not a host".into()),
                ..Default::default()
            },
            RawOptions {
                idle_timeout: Some(f64::NAN),
                ..Default::default()
            },
            RawOptions {
                max_concurrent_streams: Some(0.0),
                ..Default::default()
            },
        ] {
            assert!(matches!(
                ServerConfig::build(&o, false, false),
                Err(H3Error::InvalidArg(_))
            ));
        }
        let v6 = RawOptions {
            hostname: Some("::".into()),
            ..Default::default()
        };
        assert!(ServerConfig::build(&v6, false, false)
            .unwrap()
            .addr
            .is_ipv6());
    }
}
