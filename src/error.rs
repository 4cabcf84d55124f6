//! Internal error type. Converted once, at the napi edge, into JS errors carrying a stable `code`.

use std::io;

use crate::ids::RequestId;

#[derive(Debug, thiserror::Error)]
pub enum H3Error {
    #[error("invalid option: {0}")]
    InvalidArg(String),
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    #[error("could not bind UDP socket on {addr}: {source}")]
    Bind { addr: String, source: io::Error },
    #[error("invalid route: {0}")]
    Route(String),
    #[error("server is not running")]
    NotRunning,
    #[error("unknown or finished request {0}")]
    UnknownRequest(RequestId),
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    #[error("stream closed by peer")]
    StreamClosed,
    #[error("the peer reset the stream")]
    StreamReset,
    #[error("request body exceeds maxRequestBodySize ({0} bytes)")]
    BodyTooLarge(u64),
    #[error("connection lost")]
    ConnectionLost,
    #[error("the request was aborted")]
    Aborted,
    #[error("datagram of {0} bytes exceeds the current maximum of {1}")]
    DatagramTooLarge(usize, usize),
    #[error("datagrams are not enabled on this connection (or the peer does not accept them)")]
    DatagramUnsupported,
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("TLS handshake with {0} failed: {1}")]
    TlsHandshake(String, String),
    #[error("the WebTransport session is closed")]
    SessionClosed,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The JS runtime could not give us a Buffer.
    #[error("could not allocate a Buffer")]
    BufferAlloc,
    /// A task of ours failed (panicked or was cancelled) while JS waited on it.
    #[error("{0}")]
    Internal(String),
}

impl H3Error {
    /// Stable machine-readable code, documented in README.
    pub fn code(&self) -> &'static str {
        match self {
            H3Error::InvalidArg(_) => "ERR_H3_INVALID_ARG",
            H3Error::Tls(_) => "ERR_H3_TLS",
            H3Error::Bind { .. } => "ERR_H3_BIND",
            H3Error::Route(_) => "ERR_H3_ROUTE",
            H3Error::NotRunning => "ERR_H3_NOT_RUNNING",
            H3Error::UnknownRequest(_) => "ERR_H3_UNKNOWN_REQUEST",
            H3Error::InvalidResponse(_) => "ERR_H3_INVALID_RESPONSE",
            H3Error::StreamClosed => "ERR_H3_STREAM_CLOSED",
            H3Error::StreamReset => "ERR_H3_STREAM_RESET",
            H3Error::BodyTooLarge(_) => "ERR_H3_BODY_TOO_LARGE",
            H3Error::ConnectionLost => "ERR_H3_CONNECTION_LOST",
            H3Error::Aborted => "ERR_H3_ABORTED",
            H3Error::DatagramTooLarge(..) => "ERR_H3_DATAGRAM_TOO_LARGE",
            H3Error::DatagramUnsupported => "ERR_H3_DATAGRAM_UNSUPPORTED",
            H3Error::Connect(..) => "ERR_H3_CONNECT",
            H3Error::TlsHandshake(..) => "ERR_H3_TLS",
            H3Error::SessionClosed => "ERR_H3_SESSION_CLOSED",
            H3Error::Io(_) | H3Error::BufferAlloc => "ERR_H3_IO",
            H3Error::Internal(_) => "ERR_H3_INTERNAL",
        }
    }
}

pub type Result<T> = std::result::Result<T, H3Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_and_io_codes() {
        assert_eq!(H3Error::Internal("x".into()).code(), "ERR_H3_INTERNAL");
        assert_eq!(H3Error::BufferAlloc.code(), "ERR_H3_IO");
        assert_eq!(
            H3Error::BufferAlloc.to_string(),
            "could not allocate a Buffer"
        );
    }
}
