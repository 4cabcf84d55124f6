//! `wt-echo`: the pure-Rust WebTransport echo server for the webtransport section of the
//! napi-h3 benchmark (the reference napi-h3's WebTransport server is compared with).
//!
//! quinn + h3 (extended CONNECT, HTTP datagrams and SETTINGS_ENABLE_WEBTRANSPORT on) +
//! h3-webtransport. An extended CONNECT with `:protocol webtransport` (any path) is accepted with
//! `WebTransportSession::accept`; every bidirectional stream the client opens in the session is
//! echoed back (bytes in → same bytes out, FIN when the client's side ends), and so is every
//! datagram of the session. Anything else is answered 404.
//!
//! Prints exactly one line `LISTENING <port>` on stdout once bound, then serves until killed.

use std::future::poll_fn;

use bytes::{Buf, Bytes};
use h3::quic::{BidiStream as _, RecvStream as _, SendStream as _, SendStreamUnframed as _};
use h3_webtransport::server::{AcceptedBi, WebTransportSession};
use http::{Method, Request, Response, StatusCode};
use napi_h3_bench::server::{self, ErrorLog};

const USAGE: &str =
    "usage: wt-echo [--port N (default 0)] [--host IP (default 127.0.0.1)] [--threads N] [--tuned] [--runtime current|multi] [--window BYTES] [--udp-buffer BYTES] [--quiet]";

type H3Conn = h3::server::Connection<h3_quinn::Connection, Bytes>;
type ReqStream = h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;
type WtBidi = h3_webtransport::stream::BidiStream<h3_quinn::BidiStream<Bytes>, Bytes>;

static LOG: ErrorLog = ErrorLog::new("wt-echo");

fn main() {
    let o = server::opts(&LOG, USAGE, &[], &[]);
    server::block_on(
        &LOG,
        USAGE,
        &o,
        server::serve(&LOG, o.addr, o.tune, 100, handle_connection),
    );
}

fn quiet_conn_error(e: &h3::error::ConnectionError) -> bool {
    e.is_h3_no_error()
        || matches!(
            e,
            h3::error::ConnectionError::Timeout
                | h3::error::ConnectionError::Remote(h3::quic::ConnectionErrorIncoming::Timeout)
        )
}

async fn handle_connection(conn: quinn::Connection) {
    let mut h3c: H3Conn = match h3::server::builder()
        .enable_webtransport(true)
        .enable_extended_connect(true)
        .enable_datagram(true)
        .max_webtransport_sessions(1)
        .send_grease(true)
        .build(h3_quinn::Connection::new(conn))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            if !quiet_conn_error(&e) {
                LOG.log("h3 connection setup", &e);
            }
            return;
        }
    };
    loop {
        let resolver = match h3c.accept().await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                if !quiet_conn_error(&e) {
                    LOG.log("connection", &e);
                }
                return;
            }
        };
        // Resolved inline: the CONNECT has to take over the connection (h3-webtransport's session
        // owns the h3::server::Connection).
        let (req, stream) = match resolver.resolve_request().await {
            Ok(x) => x,
            Err(e) => {
                if !e.is_h3_no_error() {
                    LOG.log("request headers", &e);
                }
                continue;
            }
        };
        let is_wt = req.method() == Method::CONNECT
            && req.extensions().get::<h3::ext::Protocol>()
                == Some(&h3::ext::Protocol::WEB_TRANSPORT);
        if !is_wt {
            tokio::spawn(not_found(req, stream));
            continue;
        }
        match WebTransportSession::accept(req, stream, h3c).await {
            Ok(session) => serve_session(session).await,
            Err(e) => LOG.log("webtransport accept", &e),
        }
        return;
    }
}

async fn not_found(_req: Request<()>, mut stream: ReqStream) {
    let resp = Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(())
        .unwrap_or_default();
    let r = async {
        stream.send_response(resp).await?;
        stream.finish().await
    }
    .await;
    if let Err(e) = r {
        if !e.is_h3_no_error() {
            LOG.log("404", &e);
        }
    }
}

async fn serve_session(session: WebTransportSession<h3_quinn::Connection, Bytes>) {
    // The session's datagrams are echoed too (the WebTransport datagram row of the benchmark).
    let mut reader = session.datagram_reader();
    let mut sender = session.datagram_sender();
    tokio::spawn(async move {
        while let Ok(d) = reader.read_datagram().await {
            // A full send buffer makes quinn drop the oldest queued datagram: loss, counted
            // by the client.
            if sender.send_datagram(d.into_payload()).is_err() {
                return;
            }
        }
    });
    loop {
        match session.accept_bi().await {
            Ok(Some(AcceptedBi::BidiStream(_, stream))) => {
                tokio::spawn(async move {
                    if let Err(e) = echo(stream).await {
                        LOG.log("echo stream", &e);
                    }
                });
            }
            Ok(Some(AcceptedBi::Request(req, stream))) => {
                tokio::spawn(not_found(req, stream));
            }
            Ok(None) => return,
            Err(e) => {
                let quiet = match &e {
                    h3::error::StreamError::ConnectionError(c) => quiet_conn_error(c),
                    other => other.is_h3_no_error(),
                };
                if !quiet {
                    LOG.log("session", &e);
                }
                return;
            }
        }
    }
}

/// Copies the stream's incoming bytes back out (chunks as quinn hands them over, no extra
/// buffering), then finishes the sending side.
async fn echo(stream: WtBidi) -> Result<(), h3::quic::StreamErrorIncoming> {
    let (mut send, mut recv) = stream.split();
    while let Some(mut chunk) = poll_fn(|cx| recv.poll_data(cx)).await? {
        while chunk.has_remaining() {
            poll_fn(|cx| send.poll_send(cx, &mut chunk)).await?;
        }
    }
    poll_fn(|cx| send.poll_finish(cx)).await
}
