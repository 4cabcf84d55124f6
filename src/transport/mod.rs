//! What servers and clients share below HTTP semantics: h3's QUIC traits on quinn, pulled
//! bodies, and the per-connection datagram reader.

pub mod body;
pub mod datagram;
pub mod quic;
pub mod transport_config;
