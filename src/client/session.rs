//! Client WebTransport sessions: the extended CONNECT (RFC 9220, draft-ietf-webtrans-http3-02
//! §3) and the per-connection datagram reader sessions need.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use h3::error::Code;

use super::connection::{setup_error, OriginConn};
use super::Client;
use crate::error::{H3Error, Result};
use crate::ids::{SessionHandle, SessionId, StreamId};
use crate::proto::headers::{flat_headers, header_map};
use crate::proto::wt_draft::Draft;
use crate::proto::wt_protocols;
use crate::transport::datagram;
use crate::webtransport::{run_session, CloseInfo};

/// A WebTransport session request's outcome.
pub struct SessionOpen {
    /// Handle of the established session (`None` when the server refused it).
    pub session: Option<SessionHandle>,
    pub status: u16,
    pub headers: Vec<String>,
}

/// The extended CONNECT that opens a session (RFC 9220 §3; draft-ietf-webtrans-http3-02 §3.2
/// asks for the draft02 header, the newer drafts for none). h3 writes `:protocol =
/// webtransport`; for draft-15 our QUIC adapter turns it into `webtransport-h3`.
fn connect_request(
    uri: http::Uri,
    headers: &[(String, String)],
    draft: Draft,
) -> Result<http::Request<()>> {
    let mut req = http::Request::new(());
    *req.method_mut() = http::Method::CONNECT;
    *req.uri_mut() = uri;
    *req.headers_mut() = header_map(headers).map_err(|e| H3Error::InvalidArg(e.to_string()))?;
    if draft == Draft::Draft02 {
        req.headers_mut().insert(
            "sec-webtransport-http3-draft02",
            http::HeaderValue::from_static("1"),
        );
    }
    req.extensions_mut()
        .insert(h3::ext::Protocol::WEB_TRANSPORT);
    Ok(req)
}

impl Client {
    /// Open a WebTransport session (extended CONNECT) to `uri`. Resolves once the server
    /// answered: with the session when it accepted (2xx), else with its status.
    pub async fn webtransport(
        self: &Arc<Self>,
        uri: http::Uri,
        headers: Vec<(String, String)>,
    ) -> Result<SessionOpen> {
        let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        // Extended CONNECT is not safe: never in 0-RTT.
        let origin = self.established(&uri).await?;
        let (mut send_request, sessions) = (origin.send.clone(), origin.sessions.clone());
        // draft-15 §4.6: "the client MUST wait for receipt of the server's SETTINGS frame
        // before establishing any WebTransport sessions"; a server that sends none in time
        // gets draft-02.
        let peer = sessions.peer_settings(self.config.connect_timeout).await;
        let draft = peer
            .as_deref()
            .map_or(Draft::Draft02, |p| Draft::for_server(p));
        if draft == Draft::Draft15 {
            sessions.use_h3_token();
        }
        let offer = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(wt_protocols::OFFER_HEADER))
            .map(|(_, v)| v.clone());
        let req = connect_request(uri, &headers, draft)?;
        let mut stream = send_request
            .send_request(req)
            .await
            .map_err(|e| setup_error(&origin.quic, &authority, e))?;
        let handle = self.sessions.next_session_handle();
        let session_id = SessionId::from(StreamId::from(stream.id()));
        // Registered before the answer arrives: the server may open streams right after it.
        let (session, rx) = sessions.create_session(
            handle,
            session_id,
            draft,
            peer.as_deref().map(Vec::as_slice),
        );
        self.start_datagram_reader(&origin);
        let not_clean = || CloseInfo::ended(false);
        let resp =
            match tokio::time::timeout(self.config.connect_timeout, stream.recv_response()).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    sessions.end_session(&session, not_clean());
                    return Err(setup_error(&origin.quic, &authority, e));
                }
                Err(_) => {
                    sessions.end_session(&session, not_clean());
                    stream.stop_stream(Code::H3_REQUEST_CANCELLED);
                    return Err(H3Error::Connect(
                        authority,
                        "no answer to the WebTransport request in time".into(),
                    ));
                }
            };
        let status = resp.status().as_u16();
        let headers = flat_headers(resp.headers());
        if !resp.status().is_success() {
            sessions.end_session(&session, not_clean());
            stream.stop_stream(Code::H3_NO_ERROR);
            return Ok(SessionOpen {
                session: None,
                status,
                headers,
            });
        }
        let answer = resp.headers().get(wt_protocols::ANSWER_HEADER);
        if wt_protocols::answer_fails(offer.as_deref(), answer.map(|v| v.to_str().unwrap_or(""))) {
            // The session JS gets is over; lib/client.js throws ERR_H3_WT_PROTOCOL for it.
            sessions.end_session(&session, not_clean());
            stream.stop_sending(Code::from(wt_protocols::ALPN_ERROR));
            stream.stop_stream(Code::from(wt_protocols::ALPN_ERROR));
            return Ok(SessionOpen {
                session: Some(handle),
                status,
                headers,
            });
        }
        let (send, recv) = stream.split();
        tokio::spawn(async move {
            run_session(&sessions, &session, send, recv, rx, std::future::pending()).await;
        });
        Ok(SessionOpen {
            session: Some(handle),
            status,
            headers,
        })
    }

    /// One datagram reader per connection, started with its first WebTransport session.
    fn start_datagram_reader(&self, c: &OriginConn) {
        if c.datagram_reader.swap(true, Relaxed) {
            return;
        }
        let (quic, routes, stats) = (
            c.quic.clone(),
            c.sessions.datagrams.clone(),
            self.sessions.stats.clone(),
        );
        // A client takes only session datagrams; anything else is dropped (and counted).
        tokio::spawn(async move {
            datagram::read_loop(&quic, true, &routes, &stats, |_, _| false).await;
        });
    }
}
