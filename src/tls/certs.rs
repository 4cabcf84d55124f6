//! The server's certificates by SNI name, swappable while serving (`server.reload({ tls })`).
//!
//! A handshake takes the set current at its ClientHello; a reload publishes a new set for later
//! handshakes and leaves established connections alone (their keys are already derived).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::Identity;
use crate::error::{H3Error, Result};
use crate::sync::{read, write};

/// One certificate and the host name it serves (`None`: the default).
pub struct CertEntry {
    pub server_name: Option<String>,
    pub identity: Identity,
}

/// An immutable set of certificates, looked up by the ClientHello's server name.
pub struct CertSet {
    default: Arc<CertifiedKey>,
    default_sha256: [u8; 32],
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` is stored under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

/// Lower case without a trailing dot: DNS names compare case-insensitively (RFC 4343).
fn canonical(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn valid_dns(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn certified(identity: &Identity) -> Result<Arc<CertifiedKey>> {
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(identity.chain.clone(), identity.key.clone_key(), &provider)
        .map(Arc::new)
        .map_err(|e| H3Error::Tls(format!("certificate and key do not fit together: {e}")))
}

impl CertSet {
    /// The default is the entry without `serverName`, else the first one.
    pub fn build(entries: &[CertEntry]) -> Result<CertSet> {
        let unnamed: Vec<&CertEntry> = entries.iter().filter(|e| e.server_name.is_none()).collect();
        if unnamed.len() > 1 {
            return Err(H3Error::Tls(
                "only one tls entry may omit serverName (it is the default certificate)".into(),
            ));
        }
        let first = unnamed
            .first()
            .copied()
            .or(entries.first())
            .ok_or_else(|| H3Error::Tls("tls is an empty array".into()))?;
        let mut set = CertSet {
            default: certified(&first.identity)?,
            default_sha256: first.identity.leaf_sha256,
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        };
        for entry in entries {
            let key = certified(&entry.identity)?;
            if let Some(name) = &entry.server_name {
                set.add(name, key)?;
            }
        }
        Ok(set)
    }

    fn add(&mut self, name: &str, key: Arc<CertifiedKey>) -> Result<()> {
        let name = canonical(name);
        let (map, host) = match name.strip_prefix("*.") {
            Some(rest) => (&mut self.wildcard, rest.to_string()),
            None => (&mut self.exact, name.clone()),
        };
        if !valid_dns(&host) {
            return Err(H3Error::Tls(format!(
                "tls serverName {name:?} is not a host name or a *.host wildcard"
            )));
        }
        if map.insert(host, key).is_some() {
            return Err(H3Error::Tls(format!(
                "tls serverName {name:?} is given twice"
            )));
        }
        Ok(())
    }

    /// Exact name first, then a wildcard covering exactly one more label (RFC 6125 §6.4.3),
    /// else the default: a handshake naming no configured host still completes.
    pub fn pick(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni.map(canonical) else {
            return self.default.clone();
        };
        if let Some(k) = self.exact.get(&name) {
            return k.clone();
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
            .clone()
    }

    pub fn default_sha256(&self) -> [u8; 32] {
        self.default_sha256
    }
}

/// The certificate source rustls asks on every handshake; `replace` is the reload.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertSet>>,
}

impl std::fmt::Debug for CertSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertSet")
            .field("exact", &self.exact.keys().collect::<Vec<_>>())
            .field("wildcard", &self.wildcard.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CertResolver {
    pub fn new(set: CertSet) -> Arc<Self> {
        Arc::new(CertResolver {
            current: RwLock::new(Arc::new(set)),
        })
    }

    pub fn current(&self) -> Arc<CertSet> {
        read(&self.current).clone()
    }

    pub fn replace(&self, set: CertSet) {
        *write(&self.current) = Arc::new(set);
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().pick(hello.server_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: Option<&str>) -> CertEntry {
        CertEntry {
            server_name: name.map(String::from),
            identity: Identity::self_signed(&[]).unwrap(),
        }
    }

    fn leaf(k: &CertifiedKey) -> Vec<u8> {
        k.cert[0].to_vec()
    }

    #[test]
    fn picks_exact_then_wildcard_then_default() {
        let entries = vec![
            entry(Some("a.example.com")),
            entry(Some("*.example.com")),
            entry(None),
        ];
        let set = CertSet::build(&entries).unwrap();
        let der = |i: usize| entries[i].identity.chain[0].to_vec();
        assert_eq!(leaf(&set.pick(Some("A.Example.COM."))), der(0));
        assert_eq!(leaf(&set.pick(Some("b.example.com"))), der(1));
        // A wildcard covers one label only, and not the bare parent.
        assert_eq!(leaf(&set.pick(Some("x.b.example.com"))), der(2));
        assert_eq!(leaf(&set.pick(Some("example.com"))), der(2));
        assert_eq!(leaf(&set.pick(None)), der(2));
        assert_eq!(set.default_sha256(), entries[2].identity.leaf_sha256);
    }

    #[test]
    fn first_entry_is_default_when_all_are_named() {
        let entries = vec![entry(Some("a.test")), entry(Some("b.test"))];
        let set = CertSet::build(&entries).unwrap();
        assert_eq!(
            leaf(&set.pick(Some("other.test"))),
            entries[0].identity.chain[0].to_vec()
        );
    }

    #[test]
    fn rejects_bad_sets() {
        assert!(CertSet::build(&[]).is_err());
        assert!(CertSet::build(&[entry(None), entry(None)]).is_err());
        assert!(CertSet::build(&[entry(Some("a.test")), entry(Some("A.test"))]).is_err());
        for bad in ["", "*.", "a..b", "*.*.a", "a b", "x.*.a"] {
            assert!(CertSet::build(&[entry(Some(bad))]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replace_swaps_the_current_set() {
        let first = vec![entry(None)];
        let second = vec![entry(None)];
        let r = CertResolver::new(CertSet::build(&first).unwrap());
        assert_eq!(r.current().default_sha256(), first[0].identity.leaf_sha256);
        r.replace(CertSet::build(&second).unwrap());
        assert_eq!(r.current().default_sha256(), second[0].identity.leaf_sha256);
    }
}
