//! What servers and clients share below HTTP semantics: h3's QUIC traits on quinn, pulled
//! bodies, and the per-connection datagram reader.

pub mod body;
pub mod classify;
pub mod close_settle;
pub mod datagram;
pub mod early;
pub mod quic;
pub mod stops;
pub mod transport_config;
pub mod write_ack;
