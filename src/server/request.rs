//! One task per request stream: read the head and body, hand them to JS, write what JS
//! answers (RFC 9114 §4.1).

use std::future::poll_fn;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use h3::error::{Code, StreamError};
use h3::frame::FrameStreamError;
use h3::server::RequestResolver;

use super::body_reader::{self, read_streaming_body, BodyOutcome};
use super::commands;
use super::conn_ctx::{ConnCtx, InflightGuard};
use super::early_data;
use super::responder;
use super::response::{send_full, send_plain, H3Stream};
use super::router::{BodyMode, RouteSpec};
use super::session;
use super::state::{ActiveRoutes, PendingRequest, RequestHead, RequestKind, ServerState};
use crate::config::ServerConfig;
use crate::ids::StreamId;
use crate::proto::headers::{path_and_query, request_headers, request_url};
use crate::stats::GaugeGuard;
use crate::transport::body::append;
use crate::transport::datagram::DatagramRoutes;
use crate::transport::quic::QuicConn;
use crate::transport::stops::StopFuture;

type Resolver = RequestResolver<QuicConn, Bytes>;

/// Unregisters a request stream from HTTP datagram routing when its task ends.
struct DatagramRoute<'a>(&'a DatagramRoutes, StreamId);

impl Drop for DatagramRoute<'_> {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

/// Serve one request stream on a task of its own. The request future is kilobytes (h3's head
/// decoding, then the response chain): boxed once here, tokio moves a pointer instead of copying
/// it on spawn, into the task cell and again when the task ends (perf: memcpy was 10 % of a
/// "hello" request's runtime-thread time).
pub(super) fn spawn(
    resolver: Resolver,
    server: Arc<ServerState>,
    ctx: Arc<ConnCtx>,
    inflight: InflightGuard,
) {
    tokio::spawn(Box::pin(handle(resolver, server, ctx, inflight)));
}

async fn handle(
    resolver: Resolver,
    server: Arc<ServerState>,
    ctx: Arc<ConnCtx>,
    _inflight: InflightGuard,
) {
    let stats = &server.stats;
    // Taken first so the watcher is dropped with this task whatever path it ends on.
    let stopped = ctx.stops.take(StreamId::from(resolver.frame_stream.id()));
    let early = server.config.allow_0rtt && ctx.early.take(resolver.frame_stream.id().into());
    let (req, mut stream) = match read_head(resolver).await {
        Ok(r) => r,
        // Malformed head, oversized header section (h3 answers 431 itself), or reset: the
        // stream is already dealt with; the connection lives on unless h3 closed it.
        Err(_) => {
            stats.requests_rejected.fetch_add(1, Relaxed);
            return;
        }
    };
    stats.requests_total.fetch_add(1, Relaxed);
    let (parts, ()) = req.into_parts();
    if early && !early_data::admit(&parts, &mut stream, stats).await {
        return;
    }
    match ctx.sessions.clone().filter(|_| is_webtransport(&parts)) {
        Some(sessions) => {
            // Boxed: a session's state is large and rare; requests should not carry its size.
            Box::pin(session::serve(
                stream, parts, &server, &ctx, sessions, stopped,
            ))
            .await
        }
        None => serve_request(stream, parts, &server, &ctx, stopped, early).await,
    }
}

/// Read the request head (h3's `resolve_request`, with one case of our own). A stream the client
/// reset before its head could be read gets a reset back, H3_REQUEST_REJECTED (RFC 9114
/// §4.1.1: the request was not processed, so it may be retried): h3 would only drop the stream,
/// and a dropped quinn send stream is finished, a response without HEADERS, which the client
/// must treat as H3_FRAME_UNEXPECTED (§4.1).
async fn read_head(mut resolver: Resolver) -> Result<(http::Request<()>, H3Stream), StreamError> {
    let frame = poll_fn(|cx| resolver.frame_stream.poll_next(cx)).await;
    if let Err(FrameStreamError::Quic(_)) = &frame {
        h3::quic::SendStream::reset(
            &mut resolver.frame_stream,
            Code::H3_REQUEST_REJECTED.value(),
        );
    }
    resolver.accept_with_frame(frame)?.resolve().await
}

fn is_webtransport(parts: &http::request::Parts) -> bool {
    parts.method == http::Method::CONNECT
        && parts.extensions.get::<h3::ext::Protocol>() == Some(&h3::ext::Protocol::WEB_TRANSPORT)
}

/// An ordinary request: answer it from Rust when we can (static route, 404, 413), else read
/// its body as its route wants and hand it to JS.
async fn serve_request(
    mut stream: H3Stream,
    parts: http::request::Parts,
    server: &Arc<ServerState>,
    ctx: &Arc<ConnCtx>,
    stopped: StopFuture,
    early: bool,
) {
    let stats = &server.stats;
    let _active = GaugeGuard::inc(&stats.requests_active);
    let head_only = parts.method == http::Method::HEAD;
    let path = path_and_query(&parts);
    let routes = server.routes();
    let matched = routes.table.lookup(parts.method.as_str(), path);
    let route = matched.as_ref().and_then(|m| routes.table.get(m.index));
    if answer_without_js(&mut stream, route, &routes, head_only).await {
        return;
    }

    let streaming = route.is_some_and(|r| r.mode == BodyMode::Streaming);
    let limit = body_limit(&server.config, streaming);
    let declared = declared_length(&parts);
    if declared.is_some_and(|n| limit.is_some_and(|l| n > l)) {
        stats.requests_rejected.fetch_add(1, Relaxed);
        return reject_too_large(&mut stream, head_only).await;
    }

    // Buffered routes: the whole body, bounded by maxRequestBodySize; over it → 413, JS not called.
    let mut body = None;
    if !streaming {
        match read_body(&mut stream, limit.unwrap_or(u64::MAX), declared).await {
            Ok(b) => body = (!b.is_empty()).then_some(b),
            Err(e) => {
                stats.requests_rejected.fetch_add(1, Relaxed);
                if let ReadError::TooLarge = e {
                    reject_too_large(&mut stream, head_only).await;
                }
                return;
            }
        }
    }

    let head = RequestHead {
        id: server.next_request_id(),
        conn_id: ctx.id,
        method: parts.method.as_str().to_owned(),
        url: request_url(&parts),
        headers: request_headers(&parts.headers),
        route: matched,
        generation: routes.generation,
        body,
        kind: if streaming {
            RequestKind::Streaming
        } else {
            RequestKind::Buffered
        },
        stream_id: StreamId::from(stream.id()),
    };
    let h3_datagram = route.is_some_and(|r| r.h3_datagram);
    drop(routes);
    let _early = early.then(|| server.early.mark(head.id));
    hand_to_js(
        stream,
        head,
        limit,
        h3_datagram,
        head_only,
        server,
        ctx,
        stopped,
    )
    .await;
}

/// maxRequestBodySize; streaming routes are only limited when the user set it.
fn body_limit(config: &ServerConfig, streaming: bool) -> Option<u64> {
    if streaming {
        config.streaming_body_limit
    } else {
        Some(config.max_request_body)
    }
}

/// The request's content-length, when it gave a valid one.
fn declared_length(parts: &http::request::Parts) -> Option<u64> {
    parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Static routes and unmatched requests without a fallback are answered here; true when the
/// request was.
async fn answer_without_js(
    stream: &mut H3Stream,
    route: Option<&RouteSpec>,
    routes: &ActiveRoutes,
    head_only: bool,
) -> bool {
    if let Some(sr) = route.and_then(|r| r.static_response.as_ref()) {
        finish_rejected_body(stream);
        let _ = send_full(stream, sr.status, &sr.headers, sr.body.clone(), head_only).await;
        return true;
    }
    if route.is_none() && !routes.has_fallback {
        finish_rejected_body(stream);
        send_plain(stream, 404, "Not Found", head_only).await;
        return true;
    }
    false
}

async fn reject_too_large(stream: &mut H3Stream, head_only: bool) {
    finish_rejected_body(stream);
    send_plain(stream, 413, "Payload Too Large", head_only).await;
}

/// Register the request, deliver its head to JS, then answer with what JS sends (reading a
/// streaming body alongside).
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename these.
async fn hand_to_js(
    stream: H3Stream,
    head: RequestHead,
    limit: Option<u64>,
    h3_datagram: bool,
    head_only: bool,
    server: &Arc<ServerState>,
    ctx: &Arc<ConnCtx>,
    stopped: StopFuture,
) {
    let (id, stream_id) = (head.id, head.stream_id);
    let (tx, rx) = commands::channel();
    let (mut send, recv) = stream.split();
    let mut body_reader = None;
    let body_pulls = if head.kind == RequestKind::Streaming {
        let (tap, feed) = body_reader::channel();
        // Boxed: the reader's state (~3.5 KB) would otherwise sit in every request's future,
        // buffered ones included, and be copied with it (the request future: 16.9 → 8.4 KB).
        body_reader = Some(Box::pin(read_streaming_body(
            recv,
            feed,
            limit,
            tx.clone(),
            ctx.quic.clone(),
        )));
        Some(tap)
    } else {
        // Whatever follows the body (trailers, nothing) is of no use: release the receive side.
        drop(recv);
        None
    };
    let pending = server.add_pending(
        id,
        PendingRequest {
            tx,
            conn_id: ctx.id,
            body: body_pulls,
        },
    );
    let _datagrams = h3_datagram.then(|| {
        ctx.datagram_routes.add(stream_id, id);
        DatagramRoute(&ctx.datagram_routes, stream_id)
    });
    // The connection's end sweeps its pending requests (abort_requests_of); one that ended
    // before this request was registered there must not reach JS at all.
    if ctx.ended() {
        return;
    }
    if !server.dispatcher.request(head) {
        send_plain(&mut send, 503, "Service Unavailable", head_only).await;
        return;
    }
    match body_reader {
        // The body reader runs beside the responder so a handler can stream its answer while
        // still reading (echo), and answer before reading at all.
        Some(reader) => {
            let server2 = server.clone();
            let reader = tokio::spawn(async move {
                if reader.await == BodyOutcome::PeerReset {
                    server2.dispatcher.abort(id);
                }
            });
            responder::respond(server, id, send, rx, head_only, stopped).await;
            drop(pending);
            let _ = reader.await;
        }
        None => responder::respond(server, id, send, rx, head_only, stopped).await,
    }
}

/// Stop reading a body we will not use (RFC 9114 §4.1.1: a complete response may precede the
/// end of the request; the client is told with STOP_SENDING H3_NO_ERROR).
fn finish_rejected_body(stream: &mut H3Stream) {
    stream.stop_sending(Code::H3_NO_ERROR);
}

/// Why a buffered body could not be read.
enum ReadError {
    TooLarge,
    Reset,
}

async fn read_body(
    stream: &mut H3Stream,
    limit: u64,
    declared: Option<u64>,
) -> Result<Vec<u8>, ReadError> {
    // Trust a declared length only as a capacity hint, never beyond the limit.
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit).min(1 << 20) as usize);
    loop {
        match stream.recv_data().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.remaining()) as u64 > limit {
                    return Err(ReadError::TooLarge);
                }
                append(&mut body, chunk);
            }
            Ok(None) => return Ok(body),
            Err(_) => return Err(ReadError::Reset),
        }
    }
}
