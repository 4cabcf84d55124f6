//! Body plumbing shared by the server (streaming request bodies) and the client (response
//! bodies): JS pulls a chunk at a time, each pull is one gathered QUIC read.

use std::future::poll_fn;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::FutureExt;
use h3::client::RequestStream as ClientStream;
use h3::error::StreamError;
use h3::quic::RecvStream;
use h3::server::RequestStream as ServerStream;
use http::HeaderMap;

use crate::error::H3Error;
use crate::proto::headers::flat_headers;

/// Most a single pull hands to JS.
pub const PULL_BYTES: usize = 512 * 1024;

/// What a pull on a body yields.
#[derive(Debug)]
pub enum BodyEvent {
    /// Pieces as QUIC delivered them (zero-copy); copied once, into JS memory, at the edge.
    Chunk(Vec<Bytes>),
    /// End of body, with the trailers (flat name/value list, possibly empty).
    End(Vec<String>),
    Error(H3Error),
}

pub type BodyPull = tokio::sync::oneshot::Sender<BodyEvent>;

/// Copy a `Buf` onto the end of a Vec.
pub fn append(dst: &mut Vec<u8>, mut src: impl Buf) {
    while src.has_remaining() {
        let c = src.chunk();
        dst.extend_from_slice(c);
        let n = c.len();
        src.advance(n);
    }
}

/// The two h3 stream types we read bodies from (server request, client response) expose the
/// same calls under different types; this is the common face.
pub trait BodySource {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, StreamError>>;
    fn poll_trailers(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, StreamError>>;
}

macro_rules! body_source {
    ($ty:ident) => {
        impl<S: RecvStream, B: Buf> BodySource for $ty<S, B> {
            fn poll_chunk(
                &mut self,
                cx: &mut Context<'_>,
            ) -> Poll<Result<Option<Bytes>, StreamError>> {
                self.poll_recv_data(cx)
                    .map_ok(|o| o.map(|mut b| b.copy_to_bytes(b.remaining())))
            }
            fn poll_trailers(
                &mut self,
                cx: &mut Context<'_>,
            ) -> Poll<Result<Option<HeaderMap>, StreamError>> {
                self.poll_recv_trailers(cx)
            }
        }
    };
}
body_source!(ServerStream);
body_source!(ClientStream);

/// Read the next piece of body: waits for data, then takes whatever else is already buffered
/// (up to [`PULL_BYTES`]) so JS sees large chunks. `Ok(None)` at the end.
pub async fn next_chunk<R: BodySource>(recv: &mut R) -> Result<Option<Vec<Bytes>>, StreamError> {
    let first = poll_fn(|cx| recv.poll_chunk(cx)).await?;
    let Some(first) = first else { return Ok(None) };
    let mut pieces = Vec::new();
    let mut len = 0;
    let mut next = Some(first);
    while let Some(b) = next.take() {
        len += b.len();
        pieces.push(b);
        if len >= PULL_BYTES {
            break;
        }
        // End, error or nothing ready: the next pull sees it.
        if let Some(Ok(Some(more))) = poll_fn(|cx| recv.poll_chunk(cx)).now_or_never() {
            next = Some(more);
        }
    }
    Ok(Some(pieces))
}

/// The trailers after the end of a body, flattened (empty when there are none).
pub async fn end_trailers<R: BodySource>(recv: &mut R) -> Vec<String> {
    match poll_fn(|cx| recv.poll_trailers(cx)).await {
        Ok(Some(t)) => flat_headers(&t),
        _ => Vec::new(),
    }
}
