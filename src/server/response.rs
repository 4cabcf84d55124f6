//! What JS sends back for a request, and how a whole response goes onto the wire.

use bytes::Bytes;
use h3::server::RequestStream;

use crate::error::H3Error;
use crate::proto::headers::build_head;
use crate::transport::quic::BidiStream;
use crate::transport::write_ack::WriteAck;

/// A server request stream as h3 hands it to us.
pub type H3Stream = RequestStream<BidiStream<Bytes>, Bytes>;

/// Commands from JS to the task that owns a request stream.
#[derive(Debug)]
pub enum ResponseCmd {
    /// Status and headers; `body` is the whole body when `end` is set, else a first chunk.
    Head {
        status: u16,
        headers: Vec<(String, String)>,
        body: Option<Bytes>,
        end: bool,
    },
    /// One body chunk; `ack` reports once QUIC took it, which is the backpressure JS waits on.
    Data { chunk: Bytes, ack: WriteAck },
    /// End of body, with optional trailers.
    End { trailers: Vec<(String, String)> },
    /// The handler or its body stream failed after the head was sent: reset the stream.
    Abort,
    /// A streaming request body went over `maxRequestBodySize`: 413 if nothing was sent yet,
    /// else reset.
    BodyTooLarge,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Invalid(H3Error),
    #[error("stream: {0}")]
    Stream(#[from] h3::error::StreamError),
}

/// A complete response with a known body, as one unit. `head_only` for HEAD requests.
pub async fn send_full<S: h3::quic::SendStream<Bytes>>(
    stream: &mut RequestStream<S, Bytes>,
    status: u16,
    headers: &[(String, String)],
    body: Bytes,
    head_only: bool,
) -> std::result::Result<usize, SendError> {
    // RFC 9110 §6.4.1: no content in responses to HEAD, 204 and 304. No automatic
    // content-length on those either: some clients (aioquic) hold the empty body against it.
    let no_body = head_only || status == 204 || status == 304;
    let len = (!no_body).then_some(body.len());
    let head = build_head(status, headers, len).map_err(SendError::Invalid)?;
    stream.send_response(head).await?;
    let mut sent = 0;
    if !no_body && !body.is_empty() {
        sent = body.len();
        stream.send_data(body).await?;
    }
    stream.finish().await?;
    Ok(sent)
}

/// A short plain-text response we make ourselves (404, 413, 500, 503). Best effort: the
/// stream may already be gone, and there is no one left to tell.
pub async fn send_plain<S: h3::quic::SendStream<Bytes>>(
    stream: &mut RequestStream<S, Bytes>,
    status: u16,
    text: &'static str,
    head_only: bool,
) {
    let headers = [("content-type".into(), "text/plain;charset=utf-8".into())];
    let body = Bytes::from_static(text.as_bytes());
    let _ = send_full(stream, status, &headers, body, head_only).await;
}
