//! Shared helpers for the napi-h3 benchmark binaries (`h3-hello`, `h3-load`, `dgram-load`, ...):
//! a tiny argument parser, a log-bucketed latency histogram and rustls/quinn configuration.
//!
//! Everything here is for loopback benchmarking only. In particular [`insecure_client_config`]
//! accepts any server certificate.

use std::sync::Arc;

// The tuned reference servers and the load generators allocate through mimalloc, as the addon
// does (the same crate and version, so the workspace builds it once).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod args {
    //! Hand-rolled `--key value` / `--key=value` / `--flag` parsing (no clap: keep builds light).

    use std::collections::HashMap;
    use std::str::FromStr;

    pub struct Args {
        values: HashMap<String, String>,
        flags: Vec<String>,
    }

    impl Args {
        /// Parses `std::env::args()`. `flag_names` are options that take no value.
        pub fn parse(flag_names: &[&str]) -> Result<Args, String> {
            Self::parse_from(std::env::args().skip(1), flag_names)
        }

        pub fn parse_from<I: Iterator<Item = String>>(
            mut it: I,
            flag_names: &[&str],
        ) -> Result<Args, String> {
            let mut values = HashMap::new();
            let mut flags = Vec::new();
            while let Some(arg) = it.next() {
                let Some(name) = arg.strip_prefix("--") else {
                    return Err(format!("unexpected argument {arg:?}"));
                };
                if let Some((k, v)) = name.split_once('=') {
                    values.insert(k.to_string(), v.to_string());
                } else if flag_names.contains(&name) {
                    flags.push(name.to_string());
                } else {
                    let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                    values.insert(name.to_string(), v);
                }
            }
            Ok(Args { values, flags })
        }

        pub fn flag(&self, name: &str) -> bool {
            self.flags.iter().any(|f| f == name)
        }

        pub fn str(&self, name: &str) -> Option<&str> {
            self.values.get(name).map(String::as_str)
        }

        /// Parses `--name`; `Ok(None)` when absent.
        pub fn get<T: FromStr>(&self, name: &str) -> Result<Option<T>, String> {
            match self.values.get(name) {
                None => Ok(None),
                Some(v) => v
                    .parse::<T>()
                    .map(Some)
                    .map_err(|_| format!("invalid value for --{name}: {v:?}")),
            }
        }

        pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
            Ok(self.get(name)?.unwrap_or(default))
        }

        /// Names of all options given, for rejecting unknown ones.
        pub fn names(&self) -> impl Iterator<Item = &str> {
            self.values
                .keys()
                .map(String::as_str)
                .chain(self.flags.iter().map(String::as_str))
        }
    }
}

pub mod hist {
    //! Log-bucketed histogram of nanosecond values: 64 linear sub-buckets per power of two,
    //! so any recorded value is reported within ~1.6 % (bucket midpoint). Fixed size, no allocation
    //! on record, mergeable.

    const SUB_BITS: u32 = 6;
    const SUB: u64 = 1 << SUB_BITS; // 64
    const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

    #[derive(Clone)]
    pub struct Histogram {
        counts: Vec<u64>,
        total: u64,
        max: u64,
        min: u64,
        sum: u128,
    }

    impl Default for Histogram {
        fn default() -> Self {
            Self::new()
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let e = 63 - v.leading_zeros(); // >= SUB_BITS
        let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
        ((e - SUB_BITS + 1) as u64 * SUB + sub) as usize
    }

    /// Midpoint of the values mapped to bucket `idx`.
    fn value_of(idx: usize) -> u64 {
        let idx = idx as u64;
        if idx < SUB {
            return idx;
        }
        let e = idx / SUB + SUB_BITS as u64 - 1;
        let sub = idx % SUB;
        let shift = e - SUB_BITS as u64;
        let low = (SUB + sub) << shift;
        low + ((1u64 << shift) >> 1)
    }

    impl Histogram {
        pub fn new() -> Self {
            Histogram {
                counts: vec![0; BUCKETS],
                total: 0,
                max: 0,
                min: u64::MAX,
                sum: 0,
            }
        }

        pub fn record(&mut self, v: u64) {
            self.counts[index(v)] += 1;
            self.total += 1;
            self.max = self.max.max(v);
            self.min = self.min.min(v);
            self.sum += v as u128;
        }

        pub fn merge(&mut self, other: &Histogram) {
            for (a, b) in self.counts.iter_mut().zip(&other.counts) {
                *a += *b;
            }
            self.total += other.total;
            self.max = self.max.max(other.max);
            self.min = self.min.min(other.min);
            self.sum += other.sum;
        }

        pub fn count(&self) -> u64 {
            self.total
        }

        pub fn max(&self) -> u64 {
            self.max
        }

        pub fn mean(&self) -> f64 {
            if self.total == 0 {
                0.0
            } else {
                self.sum as f64 / self.total as f64
            }
        }

        /// `q` in [0, 1]. Returns 0 for an empty histogram; clamps to the observed min/max.
        pub fn quantile(&self, q: f64) -> u64 {
            if self.total == 0 {
                return 0;
            }
            let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
            let mut seen = 0;
            for (i, c) in self.counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return value_of(i).clamp(self.min, self.max);
                }
            }
            self.max
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn index_roundtrip_is_close() {
            for v in [
                0u64,
                1,
                63,
                64,
                65,
                127,
                128,
                1000,
                123_456,
                9_876_543_210,
                u64::MAX / 3,
            ] {
                let m = value_of(index(v));
                let err = (m as f64 - v as f64).abs() / (v.max(1) as f64);
                assert!(err <= 1.0 / 64.0, "v={v} m={m}");
            }
            assert!(index(u64::MAX) < BUCKETS);
        }

        #[test]
        fn quantiles() {
            let mut h = Histogram::new();
            for v in 1..=10_000u64 {
                h.record(v * 1000);
            }
            let p50 = h.quantile(0.5) as f64;
            let p99 = h.quantile(0.99) as f64;
            assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.02, "{p50}");
            assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.02, "{p99}");
        }
    }
}

/// The ring crypto provider, TLS 1.3 only (QUIC requires it).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed ECDSA P-256 certificate for `localhost` / `127.0.0.1` / `::1`.
pub struct SelfSigned {
    pub cert_der: rustls::pki_types::CertificateDer<'static>,
    pub key_der: rustls::pki_types::PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn self_signed() -> Result<SelfSigned, String> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| format!("rcgen: {e}"))?;
    let key_der = rustls::pki_types::PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der());
    Ok(SelfSigned {
        cert_der: ck.cert.der().clone(),
        key_der: key_der.into(),
        cert_pem: ck.cert.pem(),
        key_pem: ck.key_pair.serialize_pem(),
    })
}

/// quinn server config: ALPN "h3", the given certificate, `max_concurrent_bidi_streams = streams`,
/// quinn defaults otherwise.
pub fn server_config(
    cert: &SelfSigned,
    streams: u32,
    tune: &server::Tune,
) -> Result<quinn::ServerConfig, String> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("rustls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert_der.clone()], cert.key_der.clone_key())
        .map_err(|e| format!("rustls cert: {e}"))?;
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| format!("quic tls: {e}"))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(quinn::VarInt::from_u32(streams));
    tune.transport(&mut transport);
    cfg.transport_config(Arc::new(transport));
    Ok(cfg)
}

/// Accepts every server certificate. For loopback benchmarking only.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// quinn client config: ALPN "h3", certificate verification DISABLED (loopback benchmarking only).
pub fn insecure_client_config() -> Result<quinn::ClientConfig, String> {
    let provider = provider();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("rustls: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| format!("quic tls: {e}"))?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// A JSON string literal (the bench binaries print one JSON line without a JSON crate).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A parsed `--url https://HOST:PORT/path`: the URI, the first address HOST resolves to, and HOST
/// (without brackets) for SNI.
pub struct Target {
    pub uri: http::Uri,
    pub addr: std::net::SocketAddr,
    pub host: String,
}

pub fn resolve_url(url: &str) -> Result<Target, String> {
    use std::net::ToSocketAddrs;
    let uri: http::Uri = url.parse().map_err(|e| format!("--url {url:?}: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err("--url must be https://HOST:PORT/path".into());
    }
    let authority = uri.authority().ok_or("--url needs a host")?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority.port_u16().unwrap_or(443);
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {host}: no address"))?;
    Ok(Target { uri, addr, host })
}

/// The wildcard address of `peer`'s family, port 0: where a client endpoint binds.
pub fn client_bind_addr(peer: std::net::SocketAddr) -> std::net::SocketAddr {
    if peer.is_ipv6() {
        std::net::SocketAddr::from(([0u16; 8], 0))
    } else {
        std::net::SocketAddr::from(([0u8; 4], 0))
    }
}

pub mod server {
    //! What the reference servers (`h3-hello`, `dgram-echo`, `wt-echo`) share: the common options,
    //! the runtime, binding + the `LISTENING <port>` line, the accept loop and a rate-limited
    //! error log.

    use std::future::Future;
    use std::io::Write;
    use std::net::{IpAddr, SocketAddr};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    use crate::args::Args;

    /// Logs errors to stderr: the first 20, then every power of two, so a benchmark that resets
    /// thousands of streams at its end does not drown the terminal.
    pub struct ErrorLog {
        name: &'static str,
        count: AtomicU64,
        quiet: AtomicBool,
    }

    impl ErrorLog {
        pub const fn new(name: &'static str) -> Self {
            ErrorLog {
                name,
                count: AtomicU64::new(0),
                quiet: AtomicBool::new(false),
            }
        }

        pub fn set_quiet(&self, quiet: bool) {
            self.quiet.store(quiet, Ordering::Relaxed);
        }

        pub fn log(&self, what: &str, err: &dyn std::fmt::Debug) {
            let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
            if !self.quiet.load(Ordering::Relaxed) && (n <= 20 || n.is_power_of_two()) {
                eprintln!("{}: {what}: {err:?} (error #{n})", self.name);
            }
        }

        /// Prints `msg` and the usage, exits with status 2.
        pub fn fail(&self, usage: &str, msg: &str) -> ! {
            eprintln!("{}: {msg}\n{usage}", self.name);
            std::process::exit(2);
        }
    }

    /// The options every reference server takes.
    pub struct Opts {
        pub addr: SocketAddr,
        pub threads: Option<usize>,
        pub tune: Tune,
        /// All parsed arguments, for the server's own options.
        pub args: Args,
    }

    /// How a reference server is tuned: runtime flavour, QUIC receive windows, UDP socket
    /// buffers. `--tuned` is the best configuration measured on the 2-core bench machine
    /// (bench/README.md); the defaults are quinn's and tokio's.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Tune {
        /// A current-thread runtime: one thread runs the endpoint, every connection and every
        /// request, so no task is ever handed to another thread.
        pub current_thread: bool,
        /// Stream and connection receive window, bytes (quinn's defaults otherwise).
        pub window: Option<u64>,
        /// SO_RCVBUF / SO_SNDBUF of the UDP socket, bytes (the kernel's default otherwise).
        pub udp_buffer: Option<usize>,
    }

    impl Tune {
        pub const TUNED: Tune = Tune {
            current_thread: true,
            window: Some(8 * 1024 * 1024),
            udp_buffer: Some(4 * 1024 * 1024),
        };

        /// `--tuned`, then `--runtime current|multi`, `--window BYTES`, `--udp-buffer BYTES`
        /// over it.
        fn parse(args: &Args) -> Result<Tune, String> {
            let mut t = if args.flag("tuned") {
                Tune::TUNED
            } else {
                Tune::default()
            };
            match args.str("runtime") {
                None => {}
                Some("current") => t.current_thread = true,
                Some("multi") => t.current_thread = false,
                Some(other) => return Err(format!("--runtime {other:?}: want current or multi")),
            }
            if let Some(w) = args.get("window")? {
                t.window = Some(w);
            }
            if let Some(b) = args.get("udp-buffer")? {
                t.udp_buffer = Some(b);
            }
            Ok(t)
        }

        /// quinn's transport settings with this tuning's windows.
        pub fn transport(&self, transport: &mut quinn::TransportConfig) {
            if let Some(w) = self.window {
                let w32 = u32::try_from(w).unwrap_or(u32::MAX);
                transport.stream_receive_window(quinn::VarInt::from_u32(w32));
                // The connection window carries every stream's window (64 streams in flight).
                transport.receive_window(
                    quinn::VarInt::from_u64(w.saturating_mul(4)).unwrap_or(quinn::VarInt::MAX),
                );
                transport.send_window(w.saturating_mul(4));
            }
        }

        /// A UDP socket bound to `addr` with this tuning's buffer sizes.
        pub fn bind(&self, addr: SocketAddr) -> Result<std::net::UdpSocket, String> {
            use socket2::{Domain, Protocol, Socket, Type};
            let err = |e: std::io::Error| format!("bind {addr}: {e}");
            let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
                .map_err(err)?;
            if let Some(b) = self.udp_buffer {
                socket.set_recv_buffer_size(b).map_err(err)?;
                socket.set_send_buffer_size(b).map_err(err)?;
            }
            socket.bind(&addr.into()).map_err(err)?;
            Ok(socket.into())
        }
    }

    /// Parses `--port N (0) --host IP (127.0.0.1) --threads N --quiet --help`, the tuning options
    /// ([`Tune`]: `--tuned --runtime --window --udp-buffer`) plus the server's
    /// own `extra` options (`extra_flags`: those without a value). Prints the usage and exits on
    /// `--help`; exits with status 2 on a bad option. Applies `--quiet` to `log`.
    pub fn opts(log: &ErrorLog, usage: &str, extra: &[&str], extra_flags: &[&str]) -> Opts {
        let mut flags = vec!["help", "quiet", "tuned"];
        flags.extend_from_slice(extra_flags);
        let args = Args::parse(&flags).unwrap_or_else(|e| log.fail(usage, &e));
        if args.flag("help") {
            println!("{usage}");
            std::process::exit(0);
        }
        let known = [
            "port",
            "host",
            "threads",
            "quiet",
            "tuned",
            "runtime",
            "window",
            "udp-buffer",
        ];
        if let Some(bad) = args
            .names()
            .find(|n| !known.contains(n) && !extra.contains(n) && !extra_flags.contains(n))
        {
            log.fail(usage, &format!("unknown option --{bad}"));
        }
        log.set_quiet(args.flag("quiet"));
        let port: u16 = args
            .get_or("port", 0)
            .unwrap_or_else(|e| log.fail(usage, &e));
        let host: IpAddr = args
            .get_or("host", IpAddr::from([127, 0, 0, 1]))
            .unwrap_or_else(|e| log.fail(usage, &e));
        let threads = args.get("threads").unwrap_or_else(|e| log.fail(usage, &e));
        let tune = Tune::parse(&args).unwrap_or_else(|e| log.fail(usage, &e));
        Opts {
            addr: SocketAddr::new(host, port),
            threads,
            tune,
            args,
        }
    }

    /// Runs `fut` on a current-thread runtime when tuned so, else on a multi-thread one
    /// (`threads` workers, default: one per core); an error ends the process with status 2.
    pub fn block_on<F>(log: &ErrorLog, usage: &str, o: &Opts, fut: F)
    where
        F: Future<Output = Result<(), String>>,
    {
        let mut rt = if o.tune.current_thread {
            tokio::runtime::Builder::new_current_thread()
        } else {
            tokio::runtime::Builder::new_multi_thread()
        };
        rt.enable_all();
        if let (Some(t), false) = (o.threads, o.tune.current_thread) {
            rt.worker_threads(t.max(1));
        }
        let rt = rt
            .build()
            .unwrap_or_else(|e| log.fail(usage, &format!("tokio runtime: {e}")));
        if let Err(e) = rt.block_on(fut) {
            log.fail(usage, &e);
        }
    }

    /// Binds a quinn server on `addr` (ALPN "h3", a fresh self-signed certificate,
    /// `max_concurrent_bidi_streams = streams`, quinn defaults otherwise, which include QUIC
    /// datagrams), prints `LISTENING <port>`, and runs `handle` in a task of its own for every
    /// connection that completes its handshake. Returns when the endpoint is closed.
    pub async fn serve<H, Fut>(
        log: &'static ErrorLog,
        addr: SocketAddr,
        tune: Tune,
        streams: u32,
        handle: H,
    ) -> Result<(), String>
    where
        H: Fn(quinn::Connection) -> Fut + Copy + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cert = crate::self_signed()?;
        let config = crate::server_config(&cert, streams, &tune)?;
        let socket = tune.bind(addr)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| format!("bind {addr}: {e}"))?;
        let port = endpoint
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "LISTENING {port}").map_err(|e| format!("stdout: {e}"))?;
            out.flush().map_err(|e| format!("stdout: {e}"))?;
        }
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(async move {
                match incoming.await {
                    Ok(conn) => handle(conn).await,
                    Err(e) => log.log("handshake", &e),
                }
            });
        }
        Ok(())
    }
}
