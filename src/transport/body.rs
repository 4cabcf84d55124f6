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

/// `first`, then whatever else is ready without waiting (`more(room)` yields a ready piece of
/// at most `room` bytes, or `None`), up to [`PULL_BYTES`] in all: QUIC hands out about a packet
/// per read, and JS is better served by few large chunks. Shared by HTTP bodies and
/// WebTransport streams.
pub fn gather(first: Bytes, mut more: impl FnMut(usize) -> Option<Bytes>) -> Vec<Bytes> {
    let mut len = first.len();
    let mut pieces = vec![first];
    while len < PULL_BYTES {
        match more(PULL_BYTES - len) {
            Some(b) => {
                len += b.len();
                pieces.push(b);
            }
            // End, error or nothing ready: the next pull sees it.
            None => break,
        }
    }
    pieces
}

/// Read the next piece of body: waits for data, then [`gather`]s what else is buffered.
/// `Ok(None)` at the end.
pub async fn next_chunk<R: BodySource>(recv: &mut R) -> Result<Option<Vec<Bytes>>, StreamError> {
    let first = poll_fn(|cx| recv.poll_chunk(cx)).await?;
    let Some(first) = first else { return Ok(None) };
    Ok(Some(gather(first, |_| {
        match poll_fn(|cx| recv.poll_chunk(cx)).now_or_never() {
            Some(Ok(Some(more))) => Some(more),
            _ => None,
        }
    })))
}

/// The trailers after the end of a body, flattened (empty when there are none).
pub async fn end_trailers<R: BodySource>(recv: &mut R) -> Vec<String> {
    match poll_fn(|cx| recv.poll_trailers(cx)).await {
        Ok(Some(t)) => flat_headers(&t),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_stops_at_the_pull_size_or_when_nothing_is_ready() {
        let mut ready = vec![Bytes::from(vec![0; PULL_BYTES]), Bytes::from_static(b"b")];
        let got = gather(Bytes::from_static(b"a"), |_| ready.pop());
        assert_eq!(got.len(), 3);
        let got = gather(Bytes::from_static(b"a"), |_| None);
        assert_eq!(got, vec![Bytes::from_static(b"a")]);
    }
}
