//! TLS secrets in the NSS key log format, for Wireshark and similar tools (`SSLKEYLOGFILE`).
//!
//! JS reads the variable and passes the path: a runtime's `process.env` is not always the C
//! environment (Bun, worker threads), so rustls's own `KeyLogFile` would miss it.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use crate::error::{H3Error, Result};
use crate::sync::lock;

#[derive(Debug)]
pub struct KeyLogTo {
    file: Mutex<File>,
}

impl KeyLogTo {
    /// Appends to `path` (created when missing).
    pub fn open(path: &str) -> Result<Arc<Self>> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| H3Error::Tls(format!("cannot open SSLKEYLOGFILE {path:?}: {e}")))?;
        Ok(Arc::new(KeyLogTo {
            file: Mutex::new(file),
        }))
    }
}

fn hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

impl rustls::KeyLog for KeyLogTo {
    /// One line per secret: `LABEL <client random hex> <secret hex>`.
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let mut line =
            String::with_capacity(label.len() + 2 * (client_random.len() + secret.len()) + 3);
        line.push_str(label);
        line.push(' ');
        hex(&mut line, client_random);
        line.push(' ');
        hex(&mut line, secret);
        line.push('\n');
        // One write per line keeps lines whole when several connections log at once.
        let _ = lock(&self.file).write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::KeyLog;

    #[test]
    fn writes_nss_lines() {
        let path = std::env::temp_dir().join(format!("napi-h3-keylog-{}", std::process::id()));
        let p = path.to_string_lossy().to_string();
        let log = KeyLogTo::open(&p).unwrap();
        log.log("CLIENT_TRAFFIC_SECRET_0", &[0xab, 0x01], &[0xff]);
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(text, "CLIENT_TRAFFIC_SECRET_0 ab01 ff\n");
        assert!(KeyLogTo::open("/nonexistent-dir/x").is_err());
    }
}
