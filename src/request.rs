//! One task per request stream: read the head and body, hand them to JS, write what JS answers.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use h3::error::Code;
use h3::server::RequestResolver;
use tokio::sync::mpsc;

use crate::connection::{ConnCtx, InflightGuard};
use crate::guard::GuardedConnection;
use crate::response::{self, H3Stream, ResponseCmd};
use crate::server::{PendingRequest, RequestHead, Shared};
use crate::stats::GaugeGuard;

type Resolver = RequestResolver<GuardedConnection, Bytes>;

/// Removes the request from the pending table however its task ends.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock_pending().remove(&self.id);
    }
}

fn plain(status: u16, text: &'static str) -> (u16, Vec<(String, String)>, Bytes) {
    (
        status,
        vec![("content-type".into(), "text/plain;charset=utf-8".into())],
        Bytes::from_static(text.as_bytes()),
    )
}

pub async fn handle(
    resolver: Resolver,
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
    _inflight: InflightGuard,
) {
    let stats = &shared.stats;
    let (req, mut stream) = match resolver.resolve_request().await {
        Ok(r) => r,
        // Malformed head, oversized header section (h3 answers 431 itself), or reset: the
        // stream is already dealt with; the connection lives on unless h3 closed it.
        Err(_) => {
            stats.requests_rejected.fetch_add(1, Relaxed);
            return;
        }
    };
    stats.requests_total.fetch_add(1, Relaxed);
    let _active = GaugeGuard::inc(&stats.requests_active);

    let (parts, ()) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let head_only = parts.method == http::Method::HEAD;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("localhost");

    let routing = shared.routing();
    let matched = routing.table.lookup(&method, path);
    let route = matched.as_ref().and_then(|m| routing.table.get(m.index));
    if let Some(sr) = route.and_then(|r| r.static_response.as_ref()) {
        finish_rejected_body(&mut stream);
        let _ = response::send_full(
            &mut stream,
            sr.status,
            &sr.headers,
            sr.body.clone(),
            head_only,
        )
        .await;
        return;
    }
    if route.is_none() && !routing.has_fallback {
        finish_rejected_body(&mut stream);
        let (s, h, b) = plain(404, "Not Found");
        let _ = response::send_full(&mut stream, s, &h, b, head_only).await;
        return;
    }

    // Buffered body, bounded by maxRequestBodySize; over the limit → 413 without calling JS.
    let limit = shared.config.max_request_body;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = if declared.is_some_and(|n| n > limit) {
        None
    } else {
        read_body(&mut stream, limit, declared).await
    };
    let body = match body {
        Some(Ok(b)) => b,
        Some(Err(ReadError::Reset)) => {
            stats.requests_rejected.fetch_add(1, Relaxed);
            return;
        }
        None | Some(Err(ReadError::TooLarge)) => {
            stats.requests_rejected.fetch_add(1, Relaxed);
            finish_rejected_body(&mut stream);
            let (s, h, b) = plain(413, "Payload Too Large");
            let _ = response::send_full(&mut stream, s, &h, b, head_only).await;
            return;
        }
    };

    let mut headers = Vec::with_capacity(parts.headers.len() * 2);
    for (k, v) in parts.headers.iter() {
        headers.push(k.as_str().to_owned());
        headers.push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let id = shared.next_request.fetch_add(1, Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    shared.lock_pending().insert(
        id,
        PendingRequest {
            tx,
            conn_id: ctx.id,
        },
    );
    let _pending = PendingGuard {
        shared: &shared,
        id,
    };
    let head = RequestHead {
        id,
        conn_id: ctx.id,
        method,
        url: format!("https://{authority}{path}"),
        headers,
        route: matched,
        generation: routing.generation,
        body: if body.is_empty() { None } else { Some(body) },
    };
    drop(routing);
    if !shared.dispatcher.request(head) {
        let (s, h, b) = plain(503, "Service Unavailable");
        let _ = response::send_full(&mut stream, s, &h, b, head_only).await;
        return;
    }
    respond(&shared, &ctx, id, stream, rx, head_only).await;
}

/// Stop reading a body we will not use (RFC 9114 §4.1.1: a complete response may precede the
/// end of the request; the client is told with STOP_SENDING H3_NO_ERROR).
fn finish_rejected_body(stream: &mut H3Stream) {
    stream.stop_sending(Code::H3_NO_ERROR);
}

enum ReadError {
    TooLarge,
    Reset,
}

async fn read_body(
    stream: &mut H3Stream,
    limit: u64,
    declared: Option<u64>,
) -> Option<Result<Vec<u8>, ReadError>> {
    // Trust a declared length only as a capacity hint, never beyond the limit.
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit).min(1 << 20) as usize);
    loop {
        match stream.recv_data().await {
            Ok(Some(mut chunk)) => {
                if (body.len() + chunk.remaining()) as u64 > limit {
                    return Some(Err(ReadError::TooLarge));
                }
                while chunk.has_remaining() {
                    let c = chunk.chunk();
                    body.extend_from_slice(c);
                    let n = c.len();
                    chunk.advance(n);
                }
            }
            Ok(None) => return Some(Ok(body)),
            Err(_) => return Some(Err(ReadError::Reset)),
        }
    }
}

/// Wait for JS's answer and put it on the wire; tell JS if the peer goes away first.
async fn respond(
    shared: &Shared,
    ctx: &ConnCtx,
    id: u64,
    mut stream: H3Stream,
    mut rx: mpsc::UnboundedReceiver<ResponseCmd>,
    head_only: bool,
) {
    let closed = ctx.quic.closed();
    tokio::pin!(closed);
    let mut head_sent = false;
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = &mut closed => {
                shared.dispatcher.abort(id);
                return;
            }
        };
        let Some(cmd) = cmd else {
            // The server was torn down under this request.
            stream.stop_stream(Code::H3_INTERNAL_ERROR);
            return;
        };
        let result = match cmd {
            ResponseCmd::Head {
                status,
                headers,
                body,
                end: true,
            } => {
                let body = body.unwrap_or_default();
                match response::send_full(&mut stream, status, &headers, body, head_only).await {
                    Ok(_) => return,
                    Err(response::SendError::Invalid(_)) if !head_sent => {
                        let (s, h, b) = plain(500, "Internal Server Error");
                        let _ = response::send_full(&mut stream, s, &h, b, head_only).await;
                        return;
                    }
                    Err(_) => Err(()),
                }
            }
            ResponseCmd::Head {
                status,
                headers,
                body,
                end: false,
            } => {
                head_sent = true;
                match response::build_head(status, &headers, None) {
                    Ok(h) => match stream.send_response(h).await {
                        Ok(()) => match body {
                            Some(b) if !head_only && !b.is_empty() => {
                                stream.send_data(b).await.map_err(|_| ())
                            }
                            _ => Ok(()),
                        },
                        Err(_) => Err(()),
                    },
                    Err(_) => {
                        let (s, h, b) = plain(500, "Internal Server Error");
                        let _ = response::send_full(&mut stream, s, &h, b, head_only).await;
                        return;
                    }
                }
            }
            ResponseCmd::Data { chunk, ack } => {
                let r = if head_only || chunk.is_empty() {
                    Ok(())
                } else {
                    stream.send_data(chunk).await.map_err(|_| ())
                };
                let _ = ack.send(r.map_err(|_| crate::error::H3Error::StreamClosed));
                r
            }
            ResponseCmd::End { trailers } => {
                if !trailers.is_empty() {
                    if let Ok(map) = response::header_map(&trailers) {
                        let _ = stream.send_trailers(map).await;
                    }
                }
                let _ = stream.finish().await;
                return;
            }
            ResponseCmd::Abort => {
                stream.stop_stream(Code::H3_INTERNAL_ERROR);
                return;
            }
        };
        if result.is_err() {
            // The peer stopped reading or reset: JS must stop producing.
            shared.dispatcher.abort(id);
            return;
        }
    }
}
