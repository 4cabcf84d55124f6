//! The kinds of id that cross the crate, each its own type so they cannot be mixed up. They
//! become JS numbers only at the napi edge.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A request as JS knows it (server: also the handle of a WebTransport session it opened).
    RequestId
);
id_type!(
    /// A QUIC connection of a server.
    ConnectionId
);
id_type!(
    /// A QUIC stream id (RFC 9000 §2.1); HTTP datagrams name request streams by it.
    StreamId
);
id_type!(
    /// A WebTransport session id: the stream id of its CONNECT request
    /// (draft-ietf-webtrans-http3-02 §2).
    SessionId
);
id_type!(
    /// The handle JS holds for a WebTransport session.
    SessionHandle
);
id_type!(
    /// The handle JS holds for a WebTransport stream.
    StreamHandle
);

impl StreamId {
    /// The quarter stream id that prefixes an HTTP datagram (RFC 9297 §2.1).
    pub fn quarter(self) -> u64 {
        self.0 / 4
    }
}

impl From<StreamId> for SessionId {
    fn from(s: StreamId) -> Self {
        SessionId(s.0)
    }
}

impl From<SessionId> for StreamId {
    fn from(s: SessionId) -> Self {
        StreamId(s.0)
    }
}

impl From<RequestId> for SessionHandle {
    /// A server names each session by the id of the request that opened it.
    fn from(r: RequestId) -> Self {
        SessionHandle(r.0)
    }
}

impl From<h3::quic::StreamId> for StreamId {
    fn from(s: h3::quic::StreamId) -> Self {
        StreamId(s.into_inner())
    }
}
