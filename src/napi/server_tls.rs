//! The server's TLS operations at the napi edge: live certificate reload, per-connection figures
//! (`server.connections()`) and the client certificate of a request (mutual TLS).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::convert::{peer, request_id, to_js, PeerAddress};
use super::server::NativeServer;
use super::tls_options::{cert_set, NativeCertEntry};
use crate::error::H3Error;
use crate::server::conn_info::ConnInfo;

/// One open connection, as `server.connections()` lists it.
#[napi(object, object_from_js = false)]
pub struct NativeConnectionInfo {
    pub id: f64,
    pub remote: PeerAddress,
    pub server_name: Option<String>,
    pub rtt_ms: f64,
    pub min_rtt_ms: f64,
    pub congestion_window: f64,
    pub mtu: u32,
    pub congestion_events: f64,
    pub packets_sent: f64,
    pub packets_lost: f64,
    pub bytes_lost: f64,
    pub bytes_sent: f64,
    pub bytes_received: f64,
    pub datagrams_sent: f64,
    pub datagrams_received: f64,
    pub client_certificate: bool,
}

fn conn_info(c: ConnInfo) -> NativeConnectionInfo {
    NativeConnectionInfo {
        id: c.id.0 as f64,
        remote: peer(c.remote),
        server_name: c.server_name,
        rtt_ms: c.rtt.as_secs_f64() * 1000.0,
        min_rtt_ms: c.min_rtt.as_secs_f64() * 1000.0,
        congestion_window: c.cwnd as f64,
        mtu: c.mtu.into(),
        congestion_events: c.congestion_events as f64,
        packets_sent: c.sent_packets as f64,
        packets_lost: c.lost_packets as f64,
        bytes_lost: c.lost_bytes as f64,
        bytes_sent: c.bytes_sent as f64,
        bytes_received: c.bytes_received as f64,
        datagrams_sent: c.datagrams_sent as f64,
        datagrams_received: c.datagrams_received as f64,
        client_certificate: c.client_certificate,
    }
}

#[napi]
impl NativeServer {
    /// New certificates for new handshakes; open connections keep theirs. On any error the
    /// current certificates stay.
    #[napi]
    pub fn reload_tls(&self, certs: Vec<NativeCertEntry>) -> Result<()> {
        if certs.is_empty() {
            return Err(to_js(H3Error::Tls(
                "reload({ tls }) needs at least one { cert, key }".into(),
            )));
        }
        let set = cert_set(certs).map_err(to_js)?;
        self.certs.replace(set);
        Ok(())
    }

    /// The connections open now, with quinn's figures for each.
    #[napi]
    pub fn connections(&self) -> Vec<NativeConnectionInfo> {
        self.inner
            .state
            .connection_infos()
            .into_iter()
            .map(conn_info)
            .collect()
    }

    /// The client certificate chain (DER, leaf first) of the connection carrying request `id`;
    /// null without mutual TLS or when the request is gone.
    #[napi]
    pub fn peer_certificate(&self, id: i64) -> Option<Vec<Buffer>> {
        let chain = self.inner.state.request_peer_chain(request_id(id))?;
        Some(chain.iter().map(|c| Buffer::from(c.to_vec())).collect())
    }

    /// Whether request `id` arrived in 0-RTT (`allow0RTT`); false once it is answered.
    #[napi]
    pub fn is_early_data(&self, id: i64) -> bool {
        self.inner.state.early.contains(request_id(id))
    }
}
