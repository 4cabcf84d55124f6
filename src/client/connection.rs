//! A client's QUIC connections: one per origin, resolved, handshaken and set up for HTTP/3
//! (and WebTransport) on first use.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;

use super::early_data::{Handshake, Phase};
use super::Client;
use crate::error::{H3Error, Result};
use crate::proto::safe_method::is_safe;
use crate::proto::wt_settings;
use crate::sync::lock;
use crate::transport::classify::StreamClassifier;
use crate::transport::quic::{Opener, QuicConn};
use crate::transport::transport_config::{self, TransportParams};
use crate::webtransport::ConnSessions;

pub(super) type SendRequest = h3::client::SendRequest<Opener, Bytes>;

/// Non-DATA frames of a response beyond this are refused before h3 buffers them.
const RESPONSE_FRAME_LIMIT: u64 = 4 * 64 * 1024 + 64 * 1024;

/// An origin's connection, as the pool holds it.
#[derive(Clone)]
pub(super) struct OriginConn {
    pub(super) quic: quinn::Connection,
    pub(super) send: SendRequest,
    pub(super) sessions: Arc<ConnSessions>,
    /// The connection's datagram reader runs once a WebTransport session exists on it.
    pub(super) datagram_reader: Arc<AtomicBool>,
    /// Whether it is still in 0-RTT.
    handshake: Handshake,
}

/// Classify a failed connection attempt for JS: TLS problems vs. everything else.
pub(super) fn connect_error(e: quinn::ConnectionError, authority: &str) -> H3Error {
    use quinn::ConnectionError as E;
    match &e {
        E::TransportError(t) if is_crypto(u64::from(t.code)) => {
            H3Error::TlsHandshake(authority.to_string(), e.to_string())
        }
        E::ConnectionClosed(c) if is_crypto(u64::from(c.error_code)) => {
            H3Error::TlsHandshake(authority.to_string(), e.to_string())
        }
        _ => H3Error::Connect(authority.to_string(), e.to_string()),
    }
}

/// A step after the handshake failed (`e`): a TLS error when the connection was closed by a TLS
/// alert (a server refusing our client certificate does so once our side of the handshake is
/// done), else a connection error.
pub(super) fn setup_error(
    quic: &quinn::Connection,
    authority: &str,
    e: impl std::fmt::Display,
) -> H3Error {
    match quic.close_reason().map(|c| connect_error(c, authority)) {
        Some(tls @ H3Error::TlsHandshake(..)) => tls,
        _ => H3Error::Connect(authority.to_string(), e.to_string()),
    }
}

/// TLS alerts travel as QUIC CRYPTO_ERROR codes 0x100..=0x1ff.
fn is_crypto(code: u64) -> bool {
    (0x100..=0x1ff).contains(&code)
}

impl Client {
    fn transport(&self) -> Result<quinn::TransportConfig> {
        transport_config::build(&TransportParams {
            max_bidi_streams: None,
            // Room for a server's WebTransport streams.
            max_uni_streams: 100,
            idle_timeout: self.config.idle_timeout,
            // For WebTransport sessions.
            datagrams: true,
            bounded_send_window: false,
        })
    }

    /// Resolve, handshake, and set up HTTP/3 on a new connection to `authority`.
    async fn connect(&self, authority: &str, host: &str, port: u16) -> Result<OriginConn> {
        let host_bare = host.trim_start_matches('[').trim_end_matches(']');
        // Name resolution counts against connectTimeout too.
        let resolved = tokio::time::timeout(
            self.config.connect_timeout,
            tokio::net::lookup_host((host_bare, port)),
        )
        .await
        .map_err(|_| H3Error::Connect(authority.into(), "name resolution timed out".into()))?;
        let addr = self.pick_address(authority, resolved)?;
        let (quic, handshake) = self.handshake(authority, host_bare, addr).await?;
        self.connections_opened.fetch_add(1, Relaxed);
        self.start_h3(authority, quic, handshake).await
    }

    /// One address of those resolved: IPv4 first, v4-mapped when our socket is IPv6.
    fn pick_address(
        &self,
        authority: &str,
        resolved: std::io::Result<impl Iterator<Item = SocketAddr>>,
    ) -> Result<SocketAddr> {
        let addrs: Vec<SocketAddr> = resolved
            .map_err(|e| H3Error::Connect(authority.into(), format!("cannot resolve host: {e}")))?
            .collect();
        // Prefer IPv4 on a socket bound to "::" (v4-mapped works everywhere we run).
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| H3Error::Connect(authority.into(), "host has no address".into()))?;
        let addr = match (addr, self.endpoint.local_addr()) {
            (SocketAddr::V4(v4), Ok(SocketAddr::V6(_))) => {
                SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
            }
            (a, _) => a,
        };
        Ok(addr)
    }

    /// The QUIC handshake, bounded by connectTimeout; with `allow0RTT` and a session ticket
    /// allowing early data, the connection comes back at once, still in 0-RTT.
    async fn handshake(
        &self,
        authority: &str,
        host: &str,
        addr: SocketAddr,
    ) -> Result<(quinn::Connection, Handshake)> {
        let mut cfg = quinn::ClientConfig::new(self.crypto.clone());
        cfg.transport_config(Arc::new(self.transport()?));
        let name = self.config.server_name.as_deref().unwrap_or(host);
        let connecting = self
            .endpoint
            .connect_with(cfg, addr, name)
            .map_err(|e| H3Error::Connect(authority.into(), e.to_string()))?;
        let connecting = if self.config.tls.early_data {
            match connecting.into_0rtt() {
                Ok((quic, accepted)) => {
                    let (tickets, name) = (self.tickets.clone(), name.to_string());
                    let forget = move || crate::tls::forget_tickets(&tickets, &name);
                    let early = Handshake::early(
                        accepted,
                        quic.clone(),
                        self.config.connect_timeout,
                        self.early.clone(),
                        forget,
                    );
                    return Ok((quic, early));
                }
                // No ticket allowing early data for this server yet.
                Err(connecting) => connecting,
            }
        } else {
            connecting
        };
        match tokio::time::timeout(self.config.connect_timeout, connecting).await {
            Ok(Ok(c)) => Ok((c, Handshake::full())),
            Ok(Err(e)) => Err(connect_error(e, authority)),
            Err(_) => Err(H3Error::Connect(
                authority.into(),
                format!("no answer within {:?}", self.config.connect_timeout),
            )),
        }
    }

    /// HTTP/3 on an established connection; its driver runs on its own task.
    async fn start_h3(
        &self,
        authority: &str,
        quic: quinn::Connection,
        handshake: Handshake,
    ) -> Result<OriginConn> {
        let sessions = ConnSessions::new(self.sessions.clone(), quic.clone(), Arc::default());
        let classifier: Arc<dyn StreamClassifier> = sessions.clone();
        let guarded = QuicConn::client(quic.clone(), RESPONSE_FRAME_LIMIT, Some(classifier))
            .with_settings(wt_settings::client_settings());
        let (mut driver, send) = h3::client::builder()
            .send_grease(true)
            .enable_extended_connect(true)
            .enable_datagram(true)
            .build::<_, _, Bytes>(guarded)
            .await
            .map_err(|e| setup_error(&quic, authority, format!("HTTP/3 setup failed: {e}")))?;
        let ended = sessions.clone();
        tokio::spawn(async move {
            let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
            ended.end_all(false);
        });
        Ok(OriginConn {
            quic,
            send,
            sessions,
            datagram_reader: Arc::default(),
            handshake,
        })
    }

    /// A request sender on the origin's connection, connecting (once) if needed. On a
    /// connection still in 0-RTT, only safe methods go at once; others wait for the handshake,
    /// and for a fresh connection if the server refused the early data.
    pub(super) async fn sender(
        &self,
        uri: &http::Uri,
        method: &http::Method,
    ) -> Result<(SendRequest, quinn::Connection)> {
        let o = if is_safe(method) {
            self.origin(uri).await?
        } else {
            self.established(uri).await?
        };
        Ok((o.send, o.quic))
    }

    /// The origin's connection once its handshake is complete: a fresh one when the server
    /// refused the early data of the one in 0-RTT (that one is closed by then).
    pub(super) async fn established(&self, uri: &http::Uri) -> Result<OriginConn> {
        let o = self.origin(uri).await?;
        if o.handshake.complete().await != Phase::Rejected {
            return Ok(o);
        }
        self.origin(uri).await
    }

    /// The origin's connection, connecting (once, whoever asks first) if there is none open.
    pub(super) async fn origin(&self, uri: &http::Uri) -> Result<OriginConn> {
        let host = uri
            .host()
            .ok_or_else(|| H3Error::InvalidArg("URL has no host".into()))?;
        let port = uri.port_u16().unwrap_or(443);
        let authority = format!("{host}:{port}");
        let slot = {
            let mut pool = lock(&self.pool);
            pool.entry(authority.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.quic.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        // Boxed: a handshake future is kilobytes, and every request's future would carry (and
        // copy) that space inline although only the first request of an origin connects.
        let conn = Box::pin(self.connect(&authority, host, port)).await?;
        let out = conn.clone();
        *slot = Some(conn);
        Ok(out)
    }
}
