//! One task per request stream: read the head and body, hand them to JS, write what JS answers.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use h3::error::Code;
use h3::server::RequestResolver;
use tokio::sync::mpsc;

use crate::body::{self, append, BodyEvent};
use crate::connection::{ConnCtx, InflightGuard};
use crate::error::H3Error;
use crate::quic::QuicConn;
use crate::response::{self, H3Stream, ResponseCmd};
use crate::router::BodyMode;
use crate::server::{wait_state, PendingRequest, RequestHead, RunState, Shared};
use crate::stats::GaugeGuard;
use crate::webtransport::{self, CloseInfo, WtConn};
use h3::server::RequestStream;

type Resolver = RequestResolver<QuicConn, Bytes>;

/// Unregisters a request stream from HTTP datagram routing when its task ends.
struct DatagramRoute<'a>(&'a crate::datagram::Routes, u64);

impl Drop for DatagramRoute<'_> {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

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
    // Taken first so the watcher is dropped with this task whatever path it ends on.
    let stopped = ctx.stops.take(resolver.frame_stream.id().into_inner());
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
    let (parts, ()) = req.into_parts();
    if let Some(wt) = ctx.wt.clone().filter(|_| is_webtransport(&parts)) {
        return serve_session(stream, parts, &shared, &ctx, wt, stopped).await;
    }
    let _active = GaugeGuard::inc(&stats.requests_active);

    let method = parts.method.as_str().to_owned();
    let head_only = parts.method == http::Method::HEAD;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let authority = authority(&parts);

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

    let streaming = route.is_some_and(|r| r.mode == BodyMode::Streaming);
    let limit = if streaming {
        shared.config.streaming_body_limit
    } else {
        Some(shared.config.max_request_body)
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| limit.is_some_and(|l| n > l)) {
        stats.requests_rejected.fetch_add(1, Relaxed);
        finish_rejected_body(&mut stream);
        let (s, h, b) = plain(413, "Payload Too Large");
        let _ = response::send_full(&mut stream, s, &h, b, head_only).await;
        return;
    }

    // Buffered routes: the whole body, bounded by maxRequestBodySize; over it → 413, JS not called.
    let mut body = None;
    if !streaming {
        match read_body(&mut stream, limit.unwrap_or(u64::MAX), declared).await {
            Ok(b) => body = (!b.is_empty()).then_some(b),
            Err(ReadError::Reset) => {
                stats.requests_rejected.fetch_add(1, Relaxed);
                return;
            }
            Err(ReadError::TooLarge) => {
                stats.requests_rejected.fetch_add(1, Relaxed);
                finish_rejected_body(&mut stream);
                let (s, h, b) = plain(413, "Payload Too Large");
                let _ = response::send_full(&mut stream, s, &h, b, head_only).await;
                return;
            }
        }
    }

    let headers = body::flat_headers(&parts.headers);
    let id = shared.next_request.fetch_add(1, Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    let (send, recv) = stream.split();
    let mut body_reader = None;
    let body_pulls = if streaming {
        let (pull_tx, pull_rx) = mpsc::unbounded_channel();
        body_reader = Some(read_streaming_body(
            recv,
            pull_rx,
            limit,
            tx.clone(),
            ctx.quic.clone(),
        ));
        Some(pull_tx)
    } else {
        // Whatever follows the body (trailers, nothing) is of no use: release the receive side.
        drop(recv);
        None
    };
    shared.lock_pending().insert(
        id,
        PendingRequest {
            tx,
            conn_id: ctx.id,
            body: body_pulls,
        },
    );
    let _pending = PendingGuard {
        shared: &shared,
        id,
    };
    let stream_id = send.send_id().into_inner();
    let _datagrams = route.filter(|r| r.h3_datagram).map(|_| {
        ctx.datagram_routes.add(stream_id, id);
        DatagramRoute(&ctx.datagram_routes, stream_id)
    });
    let head = RequestHead {
        id,
        conn_id: ctx.id,
        method,
        url: format!("https://{authority}{path}"),
        headers,
        route: matched,
        generation: routing.generation,
        body,
        streaming,
        stream_id,
        webtransport: false,
    };
    drop(routing);
    let mut send = send;
    if !shared.dispatcher.request(head) {
        let (s, h, b) = plain(503, "Service Unavailable");
        let _ = response::send_full(&mut send, s, &h, b, head_only).await;
        return;
    }
    match body_reader {
        // The body reader runs beside the responder so a handler can stream its answer while
        // still reading (echo), and answer before reading at all.
        Some(reader) => {
            let shared2 = shared.clone();
            let reader = tokio::spawn(async move {
                if reader.await == BodyOutcome::PeerReset {
                    shared2.dispatcher.abort(id);
                }
            });
            respond(&shared, &ctx, id, send, rx, head_only, stopped).await;
            drop(_pending);
            let _ = reader.await;
        }
        None => respond(&shared, &ctx, id, send, rx, head_only, stopped).await,
    }
}

fn authority(parts: &http::request::Parts) -> &str {
    parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("localhost")
}

fn is_webtransport(parts: &http::request::Parts) -> bool {
    parts.method == http::Method::CONNECT
        && parts.extensions.get::<h3::ext::Protocol>() == Some(&h3::ext::Protocol::WEB_TRANSPORT)
}

/// An extended CONNECT for WebTransport: hand the session to the route's `webtransport`
/// handler, wait for JS to accept or reject it, then drive the session until it ends.
async fn serve_session(
    mut stream: H3Stream,
    parts: http::request::Parts,
    shared: &Arc<Shared>,
    ctx: &Arc<ConnCtx>,
    wt: Arc<WtConn>,
    mut stopped: crate::quic::StopFuture,
) {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let routing = shared.routing();
    let matched = routing
        .table
        .lookup("CONNECT", path)
        .filter(|m| routing.table.get(m.index).is_some_and(|r| r.webtransport));
    let Some(matched) = matched else {
        let (s, h, b) = plain(404, "No WebTransport endpoint here");
        let _ = response::send_full(&mut stream, s, &h, b, false).await;
        return;
    };
    let id = shared.next_request.fetch_add(1, Relaxed);
    let stream_id = stream.id().into_inner();
    let (session, close_rx) = wt.hub.create_session(id, stream_id, &wt);
    let ended = |clean| CloseInfo {
        code: 0,
        reason: String::new(),
        clean,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared.lock_pending().insert(
        id,
        PendingRequest {
            tx,
            conn_id: ctx.id,
            body: None,
        },
    );
    let pending = PendingGuard { shared, id };
    let head = RequestHead {
        id,
        conn_id: ctx.id,
        method: "CONNECT".into(),
        url: format!("https://{}{path}", authority(&parts)),
        headers: body::flat_headers(&parts.headers),
        route: Some(matched),
        generation: routing.generation,
        body: None,
        streaming: false,
        stream_id,
        webtransport: true,
    };
    drop(routing);
    if !shared.dispatcher.request(head) {
        wt.hub.end_session(&session, &wt, ended(false));
        wt.hub.release(id);
        let (s, h, b) = plain(503, "Service Unavailable");
        let _ = response::send_full(&mut stream, s, &h, b, false).await;
        return;
    }
    let closed = ctx.quic.closed();
    tokio::pin!(closed);
    let cmd = tokio::select! {
        cmd = rx.recv() => cmd,
        _ = &mut closed => None,
        _ = &mut stopped => None,
    };
    drop(pending);
    match cmd {
        Some(ResponseCmd::Head {
            status,
            mut headers,
            end: false,
            ..
        }) if (200..300).contains(&status) => {
            headers.push(("sec-webtransport-http3-draft".into(), "draft02".into()));
            let sent = match response::build_head(status, &headers, None) {
                Ok(h) => stream.send_response(h).await.is_ok(),
                Err(_) => false,
            };
            if !sent {
                wt.hub.end_session(&session, &wt, ended(false));
                shared.dispatcher.abort(id);
                return;
            }
            let (send, recv) = stream.split();
            let mut state = shared.state.subscribe();
            let drain = wait_state(&mut state, |s| s != RunState::Running);
            webtransport::run_session(&wt, &session, send, recv, close_rx, drain).await;
        }
        // Rejected (any other status, or a body).
        Some(ResponseCmd::Head {
            status,
            headers,
            body,
            ..
        }) => {
            wt.hub.end_session(&session, &wt, ended(false));
            let status = if (200..300).contains(&status) {
                500
            } else {
                status
            };
            let _ = response::send_full(
                &mut stream,
                status,
                &headers,
                body.unwrap_or_default(),
                false,
            )
            .await;
        }
        _ => {
            wt.hub.end_session(&session, &wt, ended(false));
            stream.stop_stream(Code::H3_REQUEST_CANCELLED);
            shared.dispatcher.abort(id);
        }
    }
}

type RecvHalf = RequestStream<crate::quic::RecvStream, Bytes>;

#[derive(Debug, PartialEq, Eq)]
enum BodyOutcome {
    Complete,
    /// JS stopped pulling (responded or cancelled) before the end: the peer was told to stop.
    Abandoned,
    PeerReset,
    TooLarge,
}

/// Serves JS's pulls on a streaming body: one QUIC read per pull, so the QUIC receive window
/// (not our memory) absorbs a sender that is faster than the handler.
async fn read_streaming_body(
    mut recv: RecvHalf,
    mut pulls: mpsc::UnboundedReceiver<body::BodyPull>,
    limit: Option<u64>,
    responder: mpsc::UnboundedSender<ResponseCmd>,
    quic: quinn::Connection,
) -> BodyOutcome {
    let mut total: u64 = 0;
    let closed = quic.closed();
    tokio::pin!(closed);
    while let Some(reply) = pulls.recv().await {
        let event = tokio::select! {
            r = body::next_chunk(&mut recv) => r,
            _ = &mut closed => {
                let _ = reply.send(BodyEvent::Error(H3Error::ConnectionLost));
                return BodyOutcome::PeerReset;
            }
        };
        match event {
            Ok(Some(pieces)) => {
                total += pieces.iter().map(|p| p.len() as u64).sum::<u64>();
                if let Some(l) = limit.filter(|l| total > *l) {
                    recv.stop_sending(Code::H3_REQUEST_REJECTED);
                    let _ = responder.send(ResponseCmd::BodyTooLarge);
                    let _ = reply.send(BodyEvent::Error(H3Error::BodyTooLarge(l)));
                    return BodyOutcome::TooLarge;
                }
                let _ = reply.send(BodyEvent::Chunk(pieces));
            }
            Ok(None) => {
                let _ = reply.send(BodyEvent::End(body::end_trailers(&mut recv).await));
                return BodyOutcome::Complete;
            }
            Err(_) => {
                let _ = reply.send(BodyEvent::Error(H3Error::StreamReset));
                return BodyOutcome::PeerReset;
            }
        }
    }
    // RFC 9114 §4.1.1: a response may complete before the request; ask the peer to stop.
    recv.stop_sending(Code::H3_NO_ERROR);
    BodyOutcome::Abandoned
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

/// Wait for JS's answer and put it on the wire; tell JS if the peer goes away first.
async fn respond<S: h3::quic::SendStream<Bytes>>(
    shared: &Shared,
    ctx: &ConnCtx,
    id: u64,
    mut stream: RequestStream<S, Bytes>,
    mut rx: mpsc::UnboundedReceiver<ResponseCmd>,
    head_only: bool,
    mut stopped: crate::quic::StopFuture,
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
            // The client cancelled (STOP_SENDING) while JS was still working on it.
            _ = &mut stopped => {
                stream.stop_stream(Code::H3_REQUEST_CANCELLED);
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
                let _ = ack.send(r.map_err(|_| H3Error::StreamClosed));
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
            ResponseCmd::BodyTooLarge => {
                if head_sent {
                    stream.stop_stream(Code::H3_REQUEST_REJECTED);
                } else {
                    let (s, h, b) = plain(413, "Payload Too Large");
                    let _ = response::send_full(&mut stream, s, &h, b, head_only).await;
                }
                shared.dispatcher.abort(id);
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
