//! What JS sends back for a request, and how it goes onto the wire.

use bytes::Bytes;
use h3::server::RequestStream;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::sync::oneshot;

use crate::error::{H3Error, Result};

pub type H3Stream = RequestStream<crate::quic::BidiStream<Bytes>, Bytes>;

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
    /// One body chunk; `ack` fires once QUIC took it, which is the backpressure JS waits on.
    Data {
        chunk: Bytes,
        ack: oneshot::Sender<Result<()>>,
    },
    /// End of body, with optional trailers.
    End { trailers: Vec<(String, String)> },
    /// The handler or its body stream failed after the head was sent: reset the stream.
    Abort,
    /// A streaming request body went over `maxRequestBodySize`: 413 if nothing was sent yet,
    /// else reset.
    BodyTooLarge,
}

/// HTTP/3 forbids connection-specific fields (RFC 9114 §4.2).
fn is_connection_specific(name: &str) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade"
    )
}

pub fn header_map(headers: &[(String, String)]) -> Result<HeaderMap> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| H3Error::InvalidResponse(format!("invalid header name {k:?}")))?;
        if is_connection_specific(name.as_str()) {
            continue;
        }
        let value = HeaderValue::from_str(v)
            .map_err(|_| H3Error::InvalidResponse(format!("invalid value for header {k:?}")))?;
        map.append(name, value);
    }
    Ok(map)
}

pub fn build_head(
    status: u16,
    headers: &[(String, String)],
    content_length: Option<usize>,
) -> Result<http::Response<()>> {
    let status = StatusCode::from_u16(status)
        .map_err(|_| H3Error::InvalidResponse(format!("invalid status {status}")))?;
    let mut map = header_map(headers)?;
    if let Some(len) = content_length {
        if !map.contains_key(http::header::CONTENT_LENGTH) {
            map.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
    let mut resp = http::Response::new(());
    *resp.status_mut() = status;
    *resp.headers_mut() = map;
    Ok(resp)
}

/// A complete response with a known body, as one unit. `head_only` for HEAD requests.
pub async fn send_full<S: h3::quic::SendStream<Bytes>>(
    stream: &mut RequestStream<S, Bytes>,
    status: u16,
    headers: &[(String, String)],
    body: Bytes,
    head_only: bool,
) -> std::result::Result<usize, SendError> {
    let no_body = head_only || status == 204 || status == 304;
    // No automatic content-length on HEAD: some clients (aioquic) hold the empty body against it.
    let len = if head_only || status == 204 || status == 304 {
        None
    } else {
        Some(body.len())
    };
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

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Invalid(H3Error),
    #[error("stream: {0}")]
    Stream(#[from] h3::error::StreamError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_filters_and_sets_length() {
        let h = build_head(
            200,
            &[
                ("connection".into(), "close".into()),
                ("x-a".into(), "1".into()),
                ("x-a".into(), "2".into()),
            ],
            Some(5),
        )
        .unwrap();
        assert!(h.headers().get("connection").is_none());
        assert_eq!(h.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(h.headers()["content-length"], "5");
        assert!(build_head(99, &[], None).is_err());
        assert!(build_head(200, &[("bad name".into(), "x".into())], None).is_err());
        assert!(build_head(200, &[("x".into(), "a\nb".into())], None).is_err());
    }
}
