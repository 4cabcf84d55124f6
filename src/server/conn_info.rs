//! What `server.connections()` and `server.peerCertificate(req)` read from live connections.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use super::ServerState;
use crate::ids::{ConnectionId, RequestId};
use crate::tls::peer_chain;

/// One open connection's figures, from quinn's path and UDP counters.
pub struct ConnInfo {
    pub id: ConnectionId,
    pub remote: SocketAddr,
    /// The SNI name the client asked for, if any.
    pub server_name: Option<String>,
    pub rtt: Duration,
    pub min_rtt: Duration,
    pub cwnd: u64,
    pub mtu: u16,
    pub congestion_events: u64,
    pub sent_packets: u64,
    pub lost_packets: u64,
    pub lost_bytes: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    /// The client presented a certificate the server verified (mutual TLS).
    pub client_certificate: bool,
}

fn info(id: ConnectionId, conn: &quinn::Connection) -> ConnInfo {
    let s = conn.stats();
    let server_name = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.server_name);
    ConnInfo {
        id,
        remote: conn.remote_address(),
        server_name,
        rtt: s.path.rtt,
        min_rtt: s.path.min_rtt,
        cwnd: s.path.cwnd,
        mtu: s.path.current_mtu,
        congestion_events: s.path.congestion_events,
        sent_packets: s.path.sent_packets,
        lost_packets: s.path.lost_packets,
        lost_bytes: s.path.lost_bytes,
        bytes_sent: s.udp_tx.bytes,
        bytes_received: s.udp_rx.bytes,
        datagrams_sent: s.udp_tx.datagrams,
        datagrams_received: s.udp_rx.datagrams,
        client_certificate: conn.peer_identity().is_some(),
    }
}

impl ServerState {
    /// The connections open now, oldest first.
    pub fn connection_infos(&self) -> Vec<ConnInfo> {
        // Clone the handles out so quinn's per-connection locks are not taken under ours.
        let conns: Vec<(ConnectionId, quinn::Connection)> = self
            .lock_conns()
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect();
        let mut out: Vec<ConnInfo> = conns.iter().map(|(id, c)| info(*id, c)).collect();
        out.sort_by_key(|i| i.id.0);
        out
    }

    /// The verified client certificate chain of the connection that carried request `id`.
    pub fn request_peer_chain(&self, id: RequestId) -> Option<Vec<CertificateDer<'static>>> {
        let conn_id = self.lock_pending().get(&id).map(|p| p.conn_id)?;
        let conn = self.lock_conns().get(&conn_id).cloned()?;
        peer_chain(&conn)
    }
}
