//! qlog traces, one file per connection (`qlogDir`), for qvis and similar tools.
//!
//! quinn takes a qlog stream per transport config, so a server tracing connections gives each
//! accepted connection its own copy of the server config whose transport writes to
//! `<dir>/<original destination connection id>.qlog` (the name qlog tools expect; the client
//! chose it, so it matches the client's own trace). Written a record (line) at a time, so a
//! trace can be read while its connection lives.

use std::fs::File;
use std::io::LineWriter;
use std::path::PathBuf;
use std::sync::Arc;

use super::transport;
use crate::config::ServerConfig;
use crate::error::{H3Error, Result};

pub struct Qlog {
    dir: PathBuf,
    base: quinn::ServerConfig,
    settings: ServerConfig,
}

impl Qlog {
    /// `None` unless the server was given a qlog directory; creates the directory.
    pub fn new(settings: &ServerConfig, base: &quinn::ServerConfig) -> Result<Option<Arc<Qlog>>> {
        let Some(dir) = &settings.qlog_dir else {
            return Ok(None);
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| H3Error::InvalidArg(format!("qlogDir {dir:?} cannot be created: {e}")))?;
        Ok(Some(Arc::new(Qlog {
            dir: PathBuf::from(dir),
            base: base.clone(),
            settings: settings.clone(),
        })))
    }

    /// The server config for `incoming`, tracing into its own file. On any failure (disk full,
    /// directory gone) the connection goes on untraced rather than being refused.
    pub fn config_for(&self, incoming: &quinn::Incoming) -> Arc<quinn::ServerConfig> {
        let mut cfg = self.base.clone();
        if let Some(transport) = self.traced_transport(incoming) {
            cfg.transport_config(Arc::new(transport));
        }
        Arc::new(cfg)
    }

    fn traced_transport(&self, incoming: &quinn::Incoming) -> Option<quinn::TransportConfig> {
        let odcid: String = incoming
            .orig_dst_cid()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let file = File::create(self.dir.join(format!("{odcid}.qlog"))).ok()?;
        let mut q = quinn::QlogConfig::default();
        q.writer(Box::new(LineWriter::new(file)))
            .title(Some(format!(
                "napi-h3 server, peer {}",
                incoming.remote_address()
            )))
            .description(Some(format!("odcid {odcid}")));
        let stream = q.into_stream()?;
        let mut t = transport(&self.settings).ok()?;
        t.qlog_stream(Some(stream));
        Some(t)
    }
}
