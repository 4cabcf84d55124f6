//! Mutual TLS on the server side: which client certificates a handshake asks for and accepts,
//! and reading the verified chain back from a connection.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;

use super::{roots_from, PemSource};
use crate::error::{H3Error, Result};

/// `tls.ca` with `requestCert` / `rejectUnauthorized`.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub ca: Vec<PemSource>,
    /// false: a client without a certificate is let in too (one with a certificate the CA
    /// does not vouch for still fails the handshake).
    pub require: bool,
}

impl ClientAuth {
    pub(super) fn verifier(
        &self,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ClientCertVerifier>> {
        let roots = Arc::new(roots_from(&self.ca, "tls.ca")?);
        let builder = WebPkiClientVerifier::builder_with_provider(roots, provider);
        let builder = if self.require {
            builder
        } else {
            builder.allow_unauthenticated()
        };
        builder
            .build()
            .map_err(|e| H3Error::Tls(format!("tls.ca: {e}")))
    }
}

/// The certificate chain the peer presented and rustls verified (leaf first), if any.
pub fn peer_chain(conn: &quinn::Connection) -> Option<Vec<CertificateDer<'static>>> {
    conn.peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()
        .map(|b| *b)
}
