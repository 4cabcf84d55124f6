//! The server's `tls` option as lib/tls.js normalises it, turned into rustls settings:
//! certificates by SNI, mutual TLS, the key log.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::convert::pem;
use crate::error::H3Error;
use crate::tls::{CertEntry, CertResolver, CertSet, ClientAuth, Identity, ServerTls};

/// One `{ cert, key, serverName }` of the `tls` option.
#[napi(object)]
pub struct NativeCertEntry {
    pub cert: Either<String, Buffer>,
    pub key: Either<String, Buffer>,
    pub server_name: Option<String>,
}

/// The `tls` option as lib/tls.js normalises it.
#[napi(object)]
pub struct NativeServerTls {
    /// Empty: a fresh self-signed certificate.
    pub certs: Vec<NativeCertEntry>,
    /// CA certificates client certificates must chain to (mutual TLS).
    pub ca: Option<Vec<Either<String, Buffer>>>,
    /// false: clients without a certificate are let in too.
    pub reject_unauthorized: Option<bool>,
    /// `SSLKEYLOGFILE`, read by JS.
    pub key_log_file: Option<String>,
    /// The server option `allow0RTT`: accept early data on resumed connections.
    #[napi(js_name = "allow0RTT")]
    pub allow_0rtt: Option<bool>,
}

pub fn cert_set(entries: Vec<NativeCertEntry>) -> std::result::Result<CertSet, H3Error> {
    let mut parsed = Vec::with_capacity(entries.len());
    for e in entries {
        parsed.push(CertEntry {
            identity: Identity::from_pem(&pem(e.cert), &pem(e.key))?,
            server_name: e.server_name,
        });
    }
    CertSet::build(&parsed)
}

/// The server's TLS settings, and the PEM of the certificate when it generated one.
pub fn server_tls(
    tls: NativeServerTls,
    hostname: Option<String>,
) -> std::result::Result<(ServerTls, Option<String>), H3Error> {
    let (set, generated) = if tls.certs.is_empty() {
        let id = Identity::self_signed(&hostname.into_iter().collect::<Vec<_>>())?;
        let pem = id.leaf_pem();
        let set = CertSet::build(&[CertEntry {
            server_name: None,
            identity: id,
        }])?;
        (set, Some(pem))
    } else {
        (cert_set(tls.certs)?, None)
    };
    let client_auth = tls.ca.map(|ca| ClientAuth {
        ca: ca.into_iter().map(pem).collect(),
        require: tls.reject_unauthorized.unwrap_or(true),
    });
    Ok((
        ServerTls {
            certs: CertResolver::new(set),
            client_auth,
            key_log: tls.key_log_file,
            early_data: tls.allow_0rtt.unwrap_or(false),
        },
        generated,
    ))
}

/// The certificates a server presents now.
pub fn current_hash(certs: &Arc<CertResolver>) -> Buffer {
    Buffer::from(certs.current().default_sha256().to_vec())
}
