//! WebTransport over HTTP/3: draft-ietf-webtrans-http3-02 (the dialect Chromium and Firefox
//! speak), the draft-07..13 dialect (Safari as reported) and draft-15/16, chosen per session
//! (`proto/wt_draft.rs`); the newer drafts' session flow control is in `flow.rs`.
//!
//! Sessions are extended-CONNECT request streams that stay open; their streams are plain QUIC
//! streams that start with a short header naming the session, and their datagrams are RFC 9297
//! datagrams on the CONNECT stream. We classify incoming streams ourselves (the QUIC adapter in
//! `transport/quic.rs` calls [`ConnSessions`] as its stream classifier) rather than through
//! h3-webtransport, whose session takes over the whole h3 connection and whose datagram reader
//! would steal every datagram of the connection.
//!
//! Everything JS touches goes through a [`HandleTable`] (one per server or client): sessions
//! and streams are named by numeric handles.

mod conn;
mod datagram_queue;
mod driver;
mod flow;
mod handles;
mod session;
mod stream;

pub use conn::ConnSessions;
pub use datagram_queue::{DatagramWake, DatagramWant};
pub use driver::{run_session, CapsuleSink};
pub use handles::HandleTable;
pub use session::{
    CloseInfo, CloseRequest, Session, SessionRx, MAX_PENDING_DATAGRAMS, MAX_PENDING_STREAMS,
};
pub use stream::{PipeOutcome, ReadOutcome, WriteOutcome};
