//! Peer streams are classified before h3 sees them: a stream whose header names a WebTransport
//! session (draft-ietf-webtrans-http3-02 §4) goes to a [`StreamClassifier`], the rest to h3
//! with the bytes read so far.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use crate::ids::SessionId;
use crate::proto::wt_wire::{self, StreamHeader};

/// Which kind of stream JS asked for or is handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Bidi,
    Uni,
}

/// Receiving half of a peer stream whose first bytes were read while classifying it: those
/// bytes (past the WebTransport header) come first.
pub struct PrefixedRecv {
    pub prefix: Option<Bytes>,
    pub stream: quinn::RecvStream,
}

/// Takes the peer streams whose header names a WebTransport session. Implemented a layer up
/// (by the connection's session table), so this adapter needs no WebTransport types.
pub trait StreamClassifier: Send + Sync + 'static {
    /// A peer-opened stream whose header named `session`.
    fn incoming(
        &self,
        session: SessionId,
        dir: Dir,
        send: Option<quinn::SendStream>,
        recv: PrefixedRecv,
    );

    /// The SETTINGS the peer's control stream started with.
    fn peer_settings(&self, _settings: Vec<(u64, u64)>) {}

    /// Server: the request on stream `id` asked for `:protocol = webtransport-h3` (rewritten to
    /// `webtransport` for h3, see `proto/wt_token.rs`).
    fn h3_token(&self, _id: u64) {}

    /// Client: whether the CONNECTs we send must carry `webtransport-h3`.
    fn sends_h3_token(&self) -> bool {
        false
    }
}

/// Read a stream's WebTransport header (draft-ietf-webtrans-http3-02 §4). Returns the session
/// id for a WebTransport stream and whatever was read (past the header for WebTransport,
/// everything for other streams, so the caller can hand it on untouched).
async fn read_header(
    recv: &mut quinn::RecvStream,
    wt_type: u64,
) -> (Option<SessionId>, Option<Bytes>) {
    let mut buf = BytesMut::new();
    loop {
        match wt_wire::parse_stream_header(&buf, wt_type) {
            StreamHeader::WebTransport { session, len } => {
                buf.advance(len);
                return (Some(session), (!buf.is_empty()).then(|| buf.freeze()));
            }
            StreamHeader::Other => break,
            StreamHeader::Incomplete => {}
        }
        match recv.read_chunk(64 * 1024, true).await {
            Ok(Some(c)) => buf.extend_from_slice(&c.bytes),
            _ => break,
        }
    }
    (None, (!buf.is_empty()).then(|| buf.freeze()))
}

/// Read a peer bidi stream's first bytes: a WebTransport stream goes to its session.
pub(super) async fn classify_bidi(
    classifier: Arc<dyn StreamClassifier>,
    send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Option<((quinn::SendStream, quinn::RecvStream), Option<Bytes>)> {
    match read_header(&mut recv, wt_wire::BIDI_TYPE).await {
        (Some(session), prefix) => {
            classifier.incoming(
                session,
                Dir::Bidi,
                Some(send),
                PrefixedRecv {
                    prefix,
                    stream: recv,
                },
            );
            None
        }
        (None, read) => Some(((send, recv), read)),
    }
}

pub(super) async fn classify_uni(
    classifier: Arc<dyn StreamClassifier>,
    mut recv: quinn::RecvStream,
) -> Option<(quinn::RecvStream, Option<Bytes>)> {
    match read_header(&mut recv, wt_wire::UNI_TYPE).await {
        (Some(session), prefix) => {
            classifier.incoming(
                session,
                Dir::Uni,
                None,
                PrefixedRecv {
                    prefix,
                    stream: recv,
                },
            );
            None
        }
        (None, read) => Some((recv, read)),
    }
}
