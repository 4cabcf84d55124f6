//! `wt-peer`: an independent WebTransport draft-15/16 peer for napi-h3's tests, built on
//! shiguredo_http3 (sans-I/O HTTP/3 + WebTransport, `:protocol = webtransport-h3`,
//! SETTINGS_WT_ENABLED, capsule flow control) over quinn.
//!
//! `wt-peer client --port P [--path /p] [--datagrams N] [--bidi-bytes N] [--uni-bytes N]
//!   [--server-bidi] [--close-code C --close-reason R] [--expect-close] [--protocols a,b]
//!   [--timeout S] [--split-connect] [--initial-max-data B] [--initial-max-streams-uni N]` prints
//!   one JSON object with what happened.
//! `wt-peer server` prints `{"port":…,"certHash":…}`, then one JSON line per session event; it
//! echoes datagrams and streams, opens a bidi stream of its own, and on path `/close` closes the
//! session with code 7, reason "server-bye".

mod client;
mod io;
mod json;
mod peer;
mod server;
mod tls;

use std::time::Duration;

pub struct Args(Vec<String>);

impl Args {
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = self.0.iter().position(|a| a == name)?;
        self.0.get(i + 1).map(String::as_str)
    }
    pub fn num(&self, name: &str, default: u64) -> u64 {
        self.get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.num("--timeout", 10))
    }
}

fn main() {
    let args = Args(std::env::args().skip(1).collect());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wt-peer: runtime: {e}");
            std::process::exit(2);
        }
    };
    let r = rt.block_on(async {
        match args.0.first().map(String::as_str) {
            Some("client") => client::run(&args).await,
            Some("server") => server::run(&args).await,
            _ => Err("usage: wt-peer client|server [options]".to_string()),
        }
    });
    if let Err(e) = r {
        eprintln!("wt-peer: {e}");
        std::process::exit(1);
    }
}
