//! The task half that writes JS's answer to a request stream, command by command, and tells
//! JS when the peer goes away first.

use bytes::Bytes;
use h3::error::Code;
use h3::server::RequestStream;

use super::commands::CommandReceiver;
use super::response::{send_full, send_plain, ResponseCmd, SendError};
use super::state::ServerState;
use crate::error::{H3Error, Result};
use crate::ids::RequestId;
use crate::proto::headers::{build_head, header_map};
use crate::transport::stops::StopFuture;

/// What the responder does after a command.
enum Step {
    Continue,
    Finished,
    /// The peer stopped reading or reset (or the body was too large): JS must stop producing.
    AbortJs,
}

/// Writes JS's commands onto one request stream.
struct Responder<S: h3::quic::SendStream<Bytes>> {
    stream: RequestStream<S, Bytes>,
    head_only: bool,
    head_sent: bool,
}

impl<S: h3::quic::SendStream<Bytes>> Responder<S> {
    async fn apply(&mut self, cmd: ResponseCmd) -> Step {
        match cmd {
            ResponseCmd::Head {
                status,
                headers,
                body,
                end: true,
            } => {
                self.complete(status, &headers, body.unwrap_or_default())
                    .await
            }
            ResponseCmd::Head {
                status,
                headers,
                body,
                end: false,
            } => self.start(status, &headers, body).await,
            ResponseCmd::Data { chunk, ack } => {
                let failed = self.data(chunk).await.is_err();
                ack.send(!failed);
                if failed {
                    Step::AbortJs
                } else {
                    Step::Continue
                }
            }
            ResponseCmd::End { trailers } => {
                self.end(&trailers).await;
                Step::Finished
            }
            ResponseCmd::Abort => {
                self.stream.stop_stream(Code::H3_INTERNAL_ERROR);
                Step::Finished
            }
            ResponseCmd::BodyTooLarge => {
                if self.head_sent {
                    self.stream.stop_stream(Code::H3_REQUEST_REJECTED);
                } else {
                    send_plain(&mut self.stream, 413, "Payload Too Large", self.head_only).await;
                }
                Step::AbortJs
            }
        }
    }

    /// A whole response at once; an invalid one becomes a 500 while nothing was sent yet.
    async fn complete(&mut self, status: u16, headers: &[(String, String)], body: Bytes) -> Step {
        match send_full(&mut self.stream, status, headers, body, self.head_only).await {
            Ok(_) => Step::Finished,
            Err(SendError::Invalid(_)) if !self.head_sent => {
                self.internal_error().await;
                Step::Finished
            }
            Err(_) => Step::AbortJs,
        }
    }

    /// The head of a streamed response, with its first chunk.
    async fn start(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        first: Option<Bytes>,
    ) -> Step {
        self.head_sent = true;
        let Ok(head) = build_head(status, headers, None) else {
            self.internal_error().await;
            return Step::Finished;
        };
        if self.stream.send_response(head).await.is_err() {
            return Step::AbortJs;
        }
        match first {
            Some(b) if !self.head_only && !b.is_empty() => self
                .data(b)
                .await
                .map_or(Step::AbortJs, |()| Step::Continue),
            _ => Step::Continue,
        }
    }

    async fn data(&mut self, chunk: Bytes) -> Result<()> {
        if self.head_only || chunk.is_empty() {
            return Ok(());
        }
        self.stream
            .send_data(chunk)
            .await
            .map_err(|_| H3Error::StreamClosed)
    }

    async fn end(&mut self, trailers: &[(String, String)]) {
        if !trailers.is_empty() {
            if let Ok(map) = header_map(trailers) {
                let _ = self.stream.send_trailers(map).await;
            }
        }
        let _ = self.stream.finish().await;
    }

    async fn internal_error(&mut self) {
        send_plain(
            &mut self.stream,
            500,
            "Internal Server Error",
            self.head_only,
        )
        .await;
    }
}

/// Wait for JS's answer and put it on the wire; tell JS if the peer goes away first.
pub(super) async fn respond<S: h3::quic::SendStream<Bytes>>(
    server: &ServerState,
    id: RequestId,
    stream: RequestStream<S, Bytes>,
    mut rx: CommandReceiver,
    head_only: bool,
    mut stopped: StopFuture,
) {
    let mut out = Responder {
        stream,
        head_only,
        head_sent: false,
    };
    loop {
        let cmd = tokio::select! {
            // A closed connection sends Abort here (ServerState::abort_requests_of).
            cmd = rx.recv() => cmd,
            // The client cancelled (STOP_SENDING) while JS was still working on it.
            _ = &mut stopped => {
                out.stream.stop_stream(Code::H3_REQUEST_CANCELLED);
                server.dispatcher.abort(id);
                return;
            }
        };
        let Some(cmd) = cmd else {
            // The server was torn down under this request.
            out.stream.stop_stream(Code::H3_INTERNAL_ERROR);
            return;
        };
        match out.apply(cmd).await {
            Step::Continue => {}
            Step::Finished => return,
            Step::AbortJs => {
                server.dispatcher.abort(id);
                return;
            }
        }
    }
}
