//! Certificates and rustls configurations for server and client (ALPN `h3`, TLS 1.3 only, as
//! QUIC requires), and the certificate-hash verifier WebTransport uses.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::{H3Error, Result};

mod certs;
mod client_auth;
mod keylog;

pub use certs::{CertEntry, CertResolver, CertSet};
pub use client_auth::{peer_chain, ClientAuth};
pub use keylog::KeyLogTo;

/// Where PEM material comes from: text, bytes, or a path to a file.
#[derive(Debug, Clone)]
pub enum PemSource {
    Text(String),
    Bytes(Vec<u8>),
}

impl PemSource {
    /// A string that does not look like PEM is taken as a file path.
    pub(crate) fn load(&self, what: &str) -> Result<Vec<u8>> {
        match self {
            PemSource::Bytes(b) => Ok(b.clone()),
            PemSource::Text(t) if t.contains("-----BEGIN") => Ok(t.as_bytes().to_vec()),
            PemSource::Text(path) => std::fs::read(path)
                .map_err(|e| H3Error::Tls(format!("cannot read {what} file {path:?}: {e}"))),
        }
    }
}

/// The certificate chain and key the server presents.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of the leaf certificate's DER, as WebTransport `serverCertificateHashes` wants it.
    pub leaf_sha256: [u8; 32],
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn from_pem(cert: &PemSource, key: &PemSource) -> Result<Self> {
        let cert_pem = cert.load("certificate")?;
        let key_pem = key.load("key")?;
        let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| H3Error::Tls(format!("invalid certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(H3Error::Tls(
                "no CERTIFICATE block found in tls.cert".into(),
            ));
        }
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .map_err(|e| H3Error::Tls(format!("invalid private key PEM: {e}")))?
            .ok_or_else(|| H3Error::Tls("no PRIVATE KEY block found in tls.key".into()))?;
        let leaf_sha256 = sha256(chain[0].as_ref());
        Ok(Identity {
            chain,
            key,
            leaf_sha256,
        })
    }

    /// ECDSA P-256, valid for less than 14 days so browsers accept it through
    /// `serverCertificateHashes` (the WebTransport rule).
    pub fn self_signed(extra_names: &[String]) -> Result<Self> {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        for n in extra_names {
            if !n.is_empty() && n != "0.0.0.0" && n != "::" && !names.contains(n) {
                names.push(n.clone());
            }
        }
        let tls_err = |e: rcgen::Error| H3Error::Tls(format!("self-signed certificate: {e}"));
        let mut params = rcgen::CertificateParams::new(names).map_err(tls_err)?;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(13);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "napi-h3 self-signed");
        let key_pair =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(tls_err)?;
        let cert = params.self_signed(&key_pair).map_err(tls_err)?;
        let der = cert.der().clone();
        let leaf_sha256 = sha256(der.as_ref());
        let key = PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
        Ok(Identity {
            chain: vec![der],
            key,
            leaf_sha256,
        })
    }

    /// PEM text of the leaf certificate, so tests and demos can hand it to a client as a CA.
    pub fn leaf_pem(&self) -> String {
        pem_encode("CERTIFICATE", self.chain[0].as_ref())
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der))
}

/// Everything TLS a server is started with.
pub struct ServerTls {
    /// Certificates by SNI, replaceable while serving.
    pub certs: Arc<CertResolver>,
    /// Mutual TLS: ask clients for a certificate this CA vouches for.
    pub client_auth: Option<ClientAuth>,
    /// `SSLKEYLOGFILE`: where to append the session secrets.
    pub key_log: Option<String>,
    /// `allow0RTT`: session tickets allow early data.
    pub early_data: bool,
}

/// rustls config for an HTTP/3 server: TLS 1.3, ALPN h3.
pub fn server_crypto(tls: &ServerTls) -> Result<Arc<quinn::crypto::rustls::QuicServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| H3Error::Tls(e.to_string()))?;
    let builder = match &tls.client_auth {
        Some(auth) => builder.with_client_cert_verifier(auth.verifier(provider)?),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(tls.certs.clone());
    cfg.alpn_protocols = vec![b"h3".to_vec()];
    // RFC 9001 §4.6.1: a ticket allowing 0-RTT in QUIC carries max_early_data_size 0xffffffff
    // (the QUIC stream limits bound early data instead); rustls and quinn insist on it.
    // rustls' default stateful ticket store hands each ticket out once for 0-RTT, which stops
    // a replay to this server process (RFC 8446 §8.1).
    cfg.max_early_data_size = if tls.early_data { u32::MAX } else { 0 };
    if let Some(path) = &tls.key_log {
        cfg.key_log = KeyLogTo::open(path)?;
    }
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(cfg)
        .map_err(|e| H3Error::Tls(e.to_string()))?;
    Ok(Arc::new(quic))
}

/// How a client checks the server's certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The system's root store (or only `ca`, when given).
    Roots { ca: Option<Vec<PemSource>> },
    /// Accept any certificate (tests only).
    Insecure,
    /// Accept a certificate whose DER SHA-256 is one of these (the WebTransport rule).
    Hashes(Vec<[u8; 32]>),
}

#[derive(Debug)]
struct AcceptAny;

#[derive(Debug)]
struct HashVerifier {
    hashes: Vec<[u8; 32]>,
    inner: AcceptAny,
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ServerCertVerifier for HashVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if self.hashes.contains(&sha256(end_entity.as_ref())) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The CA certificates in `list` (PEM), as a root store; `what` names the option in errors.
pub(crate) fn roots_from(list: &[PemSource], what: &str) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for src in list {
        let pem = src.load(what)?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| H3Error::Tls(format!("invalid {what} PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| H3Error::Tls(format!("unusable {what} certificate: {e}")))?;
        }
    }
    if roots.is_empty() {
        return Err(H3Error::Tls(format!("{what} holds no certificate")));
    }
    Ok(roots)
}

/// Everything TLS a client connects with.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub trust: Trust,
    /// Mutual TLS: the certificate and key presented when a server asks for one.
    pub identity: Option<Arc<Identity>>,
    /// `SSLKEYLOGFILE`: where to append the session secrets.
    pub key_log: Option<String>,
    /// `allow0RTT`: send early data when resuming a session whose ticket allows it.
    pub early_data: bool,
}

impl Default for Trust {
    fn default() -> Self {
        Trust::Roots { ca: None }
    }
}

/// Session tickets a client keeps for resumption (and 0-RTT), shared by its connections.
pub type TicketStore = Arc<rustls::client::ClientSessionMemoryCache>;

pub fn ticket_store() -> TicketStore {
    Arc::new(rustls::client::ClientSessionMemoryCache::new(256))
}

/// Drop every ticket kept for `name`: after a server refused 0-RTT they are from a session it
/// no longer knows (it restarted), and each would cost a failed 0-RTT attempt.
pub fn forget_tickets(store: &TicketStore, name: &str) {
    use rustls::client::ClientSessionStore;
    let Ok(name) = ServerName::try_from(name.to_string()) else {
        return;
    };
    while store.take_tls13_ticket(&name).is_some() {}
}

/// rustls config for an HTTP/3 client: TLS 1.3, ALPN h3, the given trust; sessions resume
/// from `tickets`.
pub fn client_crypto(
    tls: &ClientTls,
    tickets: TicketStore,
) -> Result<Arc<quinn::crypto::rustls::QuicClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| H3Error::Tls(e.to_string()))?;
    let builder = match &tls.trust {
        Trust::Roots { ca: Some(list) } => {
            builder.with_root_certificates(roots_from(list, "tls.ca")?)
        }
        Trust::Roots { ca: None } => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            builder.with_root_certificates(roots)
        }
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny)),
        Trust::Hashes(hashes) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(HashVerifier {
                hashes: hashes.clone(),
                inner: AcceptAny,
            })),
    };
    let mut cfg = match &tls.identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| {
                H3Error::Tls(format!(
                    "client certificate and key do not fit together: {e}"
                ))
            })?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h3".to_vec()];
    cfg.resumption = rustls::client::Resumption::store(tickets);
    cfg.enable_early_data = tls.early_data;
    if let Some(path) = &tls.key_log {
        cfg.key_log = KeyLogTo::open(path)?;
    }
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(cfg)
        .map_err(|e| H3Error::Tls(e.to_string()))?;
    Ok(Arc::new(quic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(id: &Identity) -> ServerTls {
        let entry = CertEntry {
            server_name: None,
            identity: Identity {
                chain: id.chain.clone(),
                key: id.key.clone_key(),
                leaf_sha256: id.leaf_sha256,
            },
        };
        ServerTls {
            certs: CertResolver::new(CertSet::build(&[entry]).unwrap()),
            client_auth: None,
            key_log: None,
            early_data: false,
        }
    }

    #[test]
    fn self_signed_is_short_lived_p256() {
        let id = Identity::self_signed(&["example.test".into()]).unwrap();
        assert_eq!(id.chain.len(), 1);
        assert_eq!(id.leaf_sha256, sha256(id.chain[0].as_ref()));
        assert!(server_crypto(&single(&id)).is_ok());
        let pem = id.leaf_pem();
        let back = Identity::from_pem(
            &PemSource::Text(pem),
            &PemSource::Bytes(pem_encode("PRIVATE KEY", id.key.secret_der()).into_bytes()),
        )
        .unwrap();
        assert_eq!(back.leaf_sha256, id.leaf_sha256);
    }

    #[test]
    fn mismatched_key_is_rejected() {
        let a = Identity::self_signed(&[]).unwrap();
        let b = Identity::self_signed(&[]).unwrap();
        let mixed = Identity {
            chain: a.chain.clone(),
            key: b.key.clone_key(),
            leaf_sha256: a.leaf_sha256,
        };
        let set = CertSet::build(&[CertEntry {
            server_name: None,
            identity: mixed,
        }]);
        assert!(matches!(set, Err(H3Error::Tls(_))));
    }

    #[test]
    fn missing_file_is_tls_error() {
        let r = Identity::from_pem(
            &PemSource::Text("/nonexistent/cert.pem".into()),
            &PemSource::Text("/nonexistent/key.pem".into()),
        );
        assert!(matches!(r, Err(H3Error::Tls(_))));
    }
}
