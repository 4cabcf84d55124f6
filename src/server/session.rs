//! A WebTransport session request (extended CONNECT, RFC 9220 + draft-ietf-webtrans-http3-02
//! §3 / -15 §3.2): pick its dialect, hand it to the route's `webtransport` handler, wait for JS
//! to accept or reject it, then drive the session until it ends.

use std::sync::Arc;
use std::time::Duration;

use h3::error::Code;

use super::commands;
use super::conn_ctx::ConnCtx;
use super::response::{send_full, send_plain, H3Stream, ResponseCmd};
use super::state::{wait_state, PendingRequest, RequestHead, RequestKind, RunState, ServerState};
use crate::ids::{RequestId, SessionHandle, SessionId, StreamId};
use crate::proto::headers::{build_head, path_and_query, request_headers, request_url};
use crate::proto::wt_draft::Draft;
use crate::transport::stops::StopFuture;
use crate::webtransport::{run_session, CloseInfo, ConnSessions, Session, SessionRx};

/// How long a newer-draft CONNECT waits for the client's SETTINGS (draft-15 §7.1: "the server
/// MUST NOT process any incoming WebTransport requests until the client's SETTINGS have been
/// received"); without them the session runs without flow control.
const SETTINGS_WAIT: Duration = Duration::from_secs(2);

/// JS could not be reached with the session request.
struct Unreachable;

pub(super) async fn serve(
    mut stream: H3Stream,
    parts: http::request::Parts,
    server: &Arc<ServerState>,
    ctx: &Arc<ConnCtx>,
    sessions: Arc<ConnSessions>,
    stopped: StopFuture,
) {
    let stream_id = StreamId::from(stream.id());
    let draft = Draft::of_request(
        sessions.took_h3_token(stream_id),
        parts.headers.contains_key("sec-webtransport-http3-draft02"),
    );
    let peer = match draft.has_flow_control() {
        true => sessions.peer_settings(SETTINGS_WAIT).await,
        false => None,
    };
    let path = path_and_query(&parts);
    let routes = server.routes();
    let matched = routes
        .table
        .lookup("CONNECT", path)
        .filter(|m| routes.table.get(m.index).is_some_and(|r| r.webtransport));
    let Some(matched) = matched else {
        send_plain(&mut stream, 404, "No WebTransport endpoint here", false).await;
        return;
    };
    let id = server.next_request_id();
    let (session, rx) = sessions.create_session(
        SessionHandle::from(id),
        SessionId::from(stream_id),
        draft,
        peer.as_deref().map(Vec::as_slice),
    );
    let head = RequestHead {
        id,
        conn_id: ctx.id,
        method: "CONNECT".into(),
        url: request_url(&parts),
        headers: request_headers(&parts.headers),
        route: Some(matched),
        generation: routes.generation,
        body: None,
        kind: RequestKind::WebTransport,
        stream_id,
    };
    drop(routes);
    let offered = Offered {
        server,
        sessions: &sessions,
        session,
        id,
    };
    match offer(server, ctx, head, stopped).await {
        Err(Unreachable) => offered.unreachable(stream).await,
        Ok(Some(ResponseCmd::Head {
            status,
            headers,
            end: false,
            ..
        })) if (200..300).contains(&status) => offered.accept(stream, status, headers, rx).await,
        // Rejected (any other status, or a body).
        Ok(Some(ResponseCmd::Head {
            status,
            headers,
            body,
            ..
        })) => offered.reject(stream, status, &headers, body).await,
        // The peer went away or cancelled, or JS sent something other than a head.
        Ok(_) => offered.cancel(stream),
    }
}

/// Hand the session request to JS and wait for its answer; `None` when the connection closed
/// or the peer cancelled first.
async fn offer(
    server: &ServerState,
    ctx: &ConnCtx,
    head: RequestHead,
    mut stopped: StopFuture,
) -> Result<Option<ResponseCmd>, Unreachable> {
    let id = head.id;
    let (tx, mut rx) = commands::channel();
    let _pending = server.add_pending(
        id,
        PendingRequest {
            tx,
            conn_id: ctx.id,
            body: None,
        },
    );
    if !server.dispatcher.request(head) {
        return Err(Unreachable);
    }
    let closed = ctx.quic.closed();
    tokio::pin!(closed);
    Ok(tokio::select! {
        cmd = rx.recv() => cmd,
        _ = &mut closed => None,
        _ = &mut stopped => None,
    })
}

/// A session offered to JS, and what each of its answers does.
struct Offered<'a> {
    server: &'a ServerState,
    sessions: &'a ConnSessions,
    session: Arc<Session>,
    id: RequestId,
}

impl Offered<'_> {
    fn end(&self) {
        self.sessions
            .end_session(&self.session, CloseInfo::ended(false));
    }

    /// JS could not be told: 503, and forget the session (JS never saw its handle).
    async fn unreachable(self, mut stream: H3Stream) {
        self.end();
        self.sessions.handles.release(SessionHandle::from(self.id));
        send_plain(&mut stream, 503, "Service Unavailable", false).await;
    }

    async fn reject(
        self,
        mut stream: H3Stream,
        status: u16,
        headers: &[(String, String)],
        body: Option<bytes::Bytes>,
    ) {
        self.end();
        // A 2xx with a body is no acceptance: the handler failed to answer properly.
        let status = if (200..300).contains(&status) {
            500
        } else {
            status
        };
        let _ = send_full(
            &mut stream,
            status,
            headers,
            body.unwrap_or_default(),
            false,
        )
        .await;
    }

    fn cancel(self, mut stream: H3Stream) {
        self.end();
        stream.stop_stream(Code::H3_REQUEST_CANCELLED);
        self.server.dispatcher.abort(self.id);
    }

    /// Send the 2xx head, then drive the session until it ends.
    async fn accept(
        self,
        mut stream: H3Stream,
        status: u16,
        mut headers: Vec<(String, String)>,
        rx: SessionRx,
    ) {
        // draft-ietf-webtrans-http3-02 §3.3: the server names the draft it speaks (the newer
        // drafts have no such header).
        if self.session.draft == Draft::Draft02 {
            headers.push(("sec-webtransport-http3-draft".into(), "draft02".into()));
        }
        let sent = match build_head(status, &headers, None) {
            Ok(h) => stream.send_response(h).await.is_ok(),
            Err(_) => false,
        };
        if !sent {
            self.end();
            self.server.dispatcher.abort(self.id);
            return;
        }
        let (send, recv) = stream.split();
        let mut state = self.server.run_state.subscribe();
        let drain = wait_state(&mut state, |s| s != RunState::Running);
        run_session(self.sessions, &self.session, send, recv, rx, drain).await;
    }
}
