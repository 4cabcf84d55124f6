//! `h3-hello`: the pure-Rust quinn + h3 reference server for the napi-h3 benchmark.
//!
//! Routes:
//! - `GET /download?bytes=N` → N bytes, streamed in 64 KiB chunks
//! - `POST /upload` (any POST) → reads the whole body, SHA-256 over it, replies `bytes=N sha256=HEX`
//!   (no trailing newline: byte-identical to bench/servers/napi-h3-stream.js)
//! - any other `GET` / `HEAD` → 200 `hello` (text/plain)
//!
//! Prints exactly one line `LISTENING <port>` on stdout once bound, then serves until killed.
//! `--write-cert DIR` instead writes a throwaway self-signed `DIR/cert.pem` + `DIR/key.pem` and exits.

use bytes::{Buf, Bytes};
use http::{Method, Request, Response, StatusCode};
use napi_h3_bench::server::{self, ErrorLog};
use sha2::{Digest, Sha256};

const CHUNK: usize = 64 * 1024;

const USAGE: &str = "usage: h3-hello [--port N (default 0)] [--host IP (default 127.0.0.1)] \
[--streams N (max concurrent bidi streams per connection, default 100)] [--threads N] [--tuned] [--runtime current|multi] [--window BYTES] [--udp-buffer BYTES] [--quiet]
       h3-hello --write-cert DIR";

type ReqStream = h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

static LOG: ErrorLog = ErrorLog::new("h3-hello");

fn main() {
    let o = server::opts(&LOG, USAGE, &["streams", "write-cert"], &[]);
    if let Some(dir) = o.args.str("write-cert") {
        if let Err(e) = write_cert(dir) {
            LOG.fail(USAGE, &e);
        }
        return;
    }
    let streams: u32 = o
        .args
        .get_or("streams", 100)
        .unwrap_or_else(|e| LOG.fail(USAGE, &e));
    server::block_on(
        &LOG,
        USAGE,
        &o,
        server::serve(&LOG, o.addr, o.tune, streams, handle_connection),
    );
}

fn write_cert(dir: &str) -> Result<(), String> {
    let cert = napi_h3_bench::self_signed()?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
    let cert_path = std::path::Path::new(dir).join("cert.pem");
    let key_path = std::path::Path::new(dir).join("key.pem");
    std::fs::write(&cert_path, cert.cert_pem).map_err(|e| format!("{cert_path:?}: {e}"))?;
    std::fs::write(&key_path, cert.key_pem).map_err(|e| format!("{key_path:?}: {e}"))?;
    println!("{} {}", cert_path.display(), key_path.display());
    Ok(())
}

async fn handle_connection(conn: quinn::Connection) {
    let mut h3c: h3::server::Connection<h3_quinn::Connection, Bytes> =
        match h3::server::Connection::new(h3_quinn::Connection::new(conn)).await {
            Ok(c) => c,
            Err(e) => {
                if !e.is_h3_no_error() {
                    LOG.log("h3 connection setup", &e);
                }
                return;
            }
        };
    loop {
        match h3c.accept().await {
            Ok(Some(resolver)) => {
                tokio::spawn(async move {
                    match resolver.resolve_request().await {
                        Ok((req, stream)) => {
                            if let Err(e) = handle_request(req, stream).await {
                                if !e.is_h3_no_error() {
                                    LOG.log("request", &e);
                                }
                            }
                        }
                        Err(e) => {
                            if !e.is_h3_no_error() {
                                LOG.log("request headers", &e);
                            }
                        }
                    }
                });
            }
            Ok(None) => return,
            Err(e) => {
                if !e.is_h3_no_error() && !is_peer_gone(&e) {
                    LOG.log("connection", &e);
                }
                return;
            }
        }
    }
}

/// A client that closes its connection with H3_NO_ERROR (or one that just times out at the end of
/// a benchmark) is not worth a log line.
fn is_peer_gone(e: &h3::error::ConnectionError) -> bool {
    matches!(
        e,
        h3::error::ConnectionError::Timeout
            | h3::error::ConnectionError::Remote(h3::quic::ConnectionErrorIncoming::Timeout)
    )
}

fn query_bytes(req: &Request<()>) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("bytes="))
        .and_then(|v| v.parse().ok())
}

fn head(status: StatusCode, content_length: Option<u64>) -> Response<()> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "text/plain");
    if let Some(n) = content_length {
        b = b.header("content-length", n);
    }
    // Static status + valid static header values: cannot fail.
    b.body(()).unwrap_or_default()
}

async fn handle_request(
    req: Request<()>,
    mut stream: ReqStream,
) -> Result<(), h3::error::StreamError> {
    static HELLO: &[u8] = b"hello";
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/download") => {
            let Some(total) = query_bytes(&req) else {
                stream
                    .send_response(head(StatusCode::BAD_REQUEST, None))
                    .await?;
                stream
                    .send_data(Bytes::from_static(b"need ?bytes=N\n"))
                    .await?;
                return stream.finish().await;
            };
            stream
                .send_response(head(StatusCode::OK, Some(total)))
                .await?;
            let chunk = Bytes::from(vec![b'x'; CHUNK]);
            let mut left = total;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                stream.send_data(chunk.slice(..n)).await?;
                left -= n as u64;
            }
            stream.finish().await
        }
        (&Method::POST, _) => {
            let mut hasher = Sha256::new();
            let mut count: u64 = 0;
            while let Some(mut buf) = stream.recv_data().await? {
                while buf.has_remaining() {
                    let c = buf.chunk();
                    hasher.update(c);
                    count += c.len() as u64;
                    let n = c.len();
                    buf.advance(n);
                }
            }
            let digest = hasher.finalize();
            let mut body = format!("bytes={count} sha256=");
            for b in digest {
                body.push_str(&format!("{b:02x}"));
            }
            stream
                .send_response(head(StatusCode::OK, Some(body.len() as u64)))
                .await?;
            stream.send_data(Bytes::from(body)).await?;
            stream.finish().await
        }
        (&Method::GET, _) => {
            stream
                .send_response(head(StatusCode::OK, Some(HELLO.len() as u64)))
                .await?;
            stream.send_data(Bytes::from_static(HELLO)).await?;
            stream.finish().await
        }
        (&Method::HEAD, _) => {
            stream
                .send_response(head(StatusCode::OK, Some(HELLO.len() as u64)))
                .await?;
            stream.finish().await
        }
        _ => {
            stream
                .send_response(head(StatusCode::METHOD_NOT_ALLOWED, Some(0)))
                .await?;
            stream.finish().await
        }
    }
}
