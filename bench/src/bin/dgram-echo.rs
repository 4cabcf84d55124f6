//! `dgram-echo`: the pure-Rust reference for the datagram section of the napi-h3 benchmark.
//!
//! A quinn server (self-signed certificate, ALPN "h3", QUIC datagrams on) that sends every QUIC
//! DATAGRAM it receives straight back on the same connection. No HTTP/3 at all: `dgram-load`
//! opens no streams either, so this is "the same echo" the napi-h3 server's server-level
//! `quicDatagram` handler does, minus the trip through JS.
//!
//! Prints exactly one line `LISTENING <port>` on stdout once bound, then serves until killed.

use napi_h3_bench::server::{self, ErrorLog};

const USAGE: &str =
    "usage: dgram-echo [--port N (default 0)] [--host IP (default 127.0.0.1)] [--threads N] [--tuned] [--runtime current|multi] [--window BYTES] [--udp-buffer BYTES] [--quiet]";

static LOG: ErrorLog = ErrorLog::new("dgram-echo");

fn main() {
    let o = server::opts(&LOG, USAGE, &[], &[]);
    // quinn enables datagrams by default (1.25 MB receive buffer, 1 MiB send buffer).
    server::block_on(
        &LOG,
        USAGE,
        &o,
        server::serve(&LOG, o.addr, o.tune, 100, echo),
    );
}

async fn echo(conn: quinn::Connection) {
    loop {
        match conn.read_datagram().await {
            Ok(d) => {
                // A full send buffer makes quinn drop the oldest queued datagram: that is loss,
                // which dgram-load measures. Only a dead connection ends the loop.
                if let Err(e) = conn.send_datagram(d) {
                    if matches!(e, quinn::SendDatagramError::ConnectionLost(_)) {
                        return;
                    }
                    LOG.log("send_datagram", &e);
                }
            }
            Err(quinn::ConnectionError::ApplicationClosed(_))
            | Err(quinn::ConnectionError::LocallyClosed)
            | Err(quinn::ConnectionError::TimedOut) => return,
            Err(e) => {
                LOG.log("connection", &e);
                return;
            }
        }
    }
}
