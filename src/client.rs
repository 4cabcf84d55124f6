//! HTTP/3 client: one QUIC connection per origin, many requests multiplexed on it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use h3::error::Code;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::sync::{mpsc, oneshot, watch};

use crate::body::{self, BodyEvent, BodyPull};
use crate::error::{H3Error, Result};
use crate::quic::QuicConn;
use crate::tls::{sha256, PemSource};
use crate::webtransport::{self, CloseInfo, Hub, WtConn};

type SendRequest = h3::client::SendRequest<crate::quic::Opener, Bytes>;

/// How the client checks the server's certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The system's root store (or only `ca`, when given).
    Roots { ca: Option<Vec<PemSource>> },
    /// Accept any certificate (tests only).
    Insecure,
    /// Accept a certificate whose DER SHA-256 is one of these (the WebTransport rule).
    Hashes(Vec<[u8; 32]>),
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub trust: Trust,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
}

/// A response head as handed to JS.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<String>,
    /// The whole body and trailers, when they had already arrived with the head (small
    /// responses): JS then builds the Response without pulling.
    pub complete: Option<(Vec<Bytes>, Vec<String>)>,
}

/// Largest body handed over together with the head.
const INLINE_BODY: usize = 64 * 1024;

/// Upload commands from JS for a request with a streamed body.
pub enum UploadCmd {
    Data(Bytes, oneshot::Sender<bool>),
    End(Vec<(String, String)>),
}

/// Per-request handles JS reaches by id.
struct Handle {
    upload: Option<mpsc::UnboundedSender<UploadCmd>>,
    body: Option<mpsc::UnboundedSender<BodyPull>>,
    cancel: Option<watch::Sender<bool>>,
}

pub struct RequestSpec {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: Vec<(String, String)>,
    /// Whole body, or `None` with `streamed` for a body written chunk by chunk.
    pub body: Option<Bytes>,
    pub streamed: bool,
}

#[derive(Clone)]
struct Conn {
    quic: quinn::Connection,
    send: SendRequest,
    wt: Arc<WtConn>,
    /// The connection's datagram reader runs once a WebTransport session exists on it.
    datagram_reader: Arc<std::sync::atomic::AtomicBool>,
}

/// A WebTransport session request's outcome.
pub struct SessionOpen {
    /// Hub handle of the established session (`None` when the server refused it).
    pub session: Option<u64>,
    pub status: u16,
    pub headers: Vec<String>,
}

pub struct Client {
    config: ClientConfig,
    endpoint: quinn::Endpoint,
    crypto: Arc<quinn::crypto::rustls::QuicClientConfig>,
    pool: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Conn>>>>>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_id: AtomicU64,
    pub connections_opened: AtomicU64,
    /// WebTransport sessions and streams of this client.
    pub hub: Arc<Hub>,
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

fn client_crypto(trust: &Trust) -> Result<Arc<quinn::crypto::rustls::QuicClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| H3Error::Tls(e.to_string()))?;
    let mut cfg = match trust {
        Trust::Roots { ca } => {
            let mut roots = rustls::RootCertStore::empty();
            match ca {
                Some(list) => {
                    for src in list {
                        let pem = src.load("ca")?;
                        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                            let cert =
                                cert.map_err(|e| H3Error::Tls(format!("invalid tls.ca PEM: {e}")))?;
                            roots.add(cert).map_err(|e| {
                                H3Error::Tls(format!("unusable tls.ca certificate: {e}"))
                            })?;
                        }
                    }
                    if roots.is_empty() {
                        return Err(H3Error::Tls("tls.ca holds no certificate".into()));
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(found.certs);
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny))
            .with_no_client_auth(),
        Trust::Hashes(hashes) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(HashVerifier {
                hashes: hashes.clone(),
                inner: AcceptAny,
            }))
            .with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h3".to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(cfg)
        .map_err(|e| H3Error::Tls(e.to_string()))?;
    Ok(Arc::new(quic))
}

/// Runs `f` unless the request is cancelled first (then `None`).
async fn until_cancelled<F: std::future::Future>(
    cancel: &mut watch::Receiver<bool>,
    f: F,
) -> Option<F::Output> {
    tokio::select! {
        v = f => Some(v),
        _ = async { let _ = cancel.wait_for(|c| *c).await; } => None,
    }
}

/// Classify a failed connection attempt for JS: TLS problems vs. everything else.
fn connect_error(e: quinn::ConnectionError, authority: &str) -> H3Error {
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

/// TLS alerts travel as QUIC CRYPTO_ERROR codes 0x100..=0x1ff.
fn is_crypto(code: u64) -> bool {
    (0x100..=0x1ff).contains(&code)
}

impl Client {
    /// Needs the tokio runtime context (binds a UDP socket).
    pub fn new(config: ClientConfig) -> Result<Client> {
        let crypto = client_crypto(&config.trust)?;
        let bind: SocketAddr = SocketAddr::from(([0u16; 8], 0));
        let endpoint = match quinn::Endpoint::client(bind) {
            Ok(e) => e,
            // No IPv6 on this host: an IPv4-only socket.
            Err(_) => {
                quinn::Endpoint::client(SocketAddr::from(([0u8; 4], 0))).map_err(|source| {
                    H3Error::Bind {
                        addr: "0.0.0.0:0".into(),
                        source,
                    }
                })?
            }
        };
        Ok(Client {
            config,
            endpoint,
            crypto,
            pool: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            connections_opened: AtomicU64::new(0),
            hub: Hub::new(Arc::default())?,
        })
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Handle>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn transport(&self) -> quinn::TransportConfig {
        let mut t = quinn::TransportConfig::default();
        t.max_idle_timeout(quinn::IdleTimeout::try_from(self.config.idle_timeout).ok());
        t.stream_receive_window(crate::config::STREAM_RECEIVE_WINDOW.into());
        t.receive_window(crate::config::CONNECTION_RECEIVE_WINDOW.into());
        // Room for a server's WebTransport streams; datagrams for WebTransport sessions.
        t.max_concurrent_uni_streams(100u32.into());
        t.datagram_receive_buffer_size(Some(1024 * 1024));
        t.datagram_send_buffer_size(1024 * 1024);
        t
    }

    async fn connect(&self, authority: &str, host: &str, port: u16) -> Result<Conn> {
        let host_bare = host.trim_start_matches('[').trim_end_matches(']');
        // Name resolution counts against connectTimeout too.
        let resolved = tokio::time::timeout(
            self.config.connect_timeout,
            tokio::net::lookup_host((host_bare, port)),
        )
        .await
        .map_err(|_| H3Error::Connect(authority.into(), "name resolution timed out".into()))?;
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
        let mut cfg = quinn::ClientConfig::new(self.crypto.clone());
        cfg.transport_config(Arc::new(self.transport()));
        let connecting = self
            .endpoint
            .connect_with(cfg, addr, host_bare)
            .map_err(|e| H3Error::Connect(authority.into(), e.to_string()))?;
        let quic = match tokio::time::timeout(self.config.connect_timeout, connecting).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(connect_error(e, authority)),
            Err(_) => {
                return Err(H3Error::Connect(
                    authority.into(),
                    format!("no answer within {:?}", self.config.connect_timeout),
                ))
            }
        };
        self.connections_opened.fetch_add(1, Relaxed);
        let wt = WtConn::new(self.hub.clone(), quic.clone(), Arc::default());
        let guarded = QuicConn::client(quic.clone(), 4 * 64 * 1024 + 64 * 1024, Some(wt.clone()));
        let (mut driver, send) = h3::client::builder()
            .send_grease(true)
            .enable_extended_connect(true)
            .enable_datagram(true)
            .build::<_, _, Bytes>(guarded)
            .await
            .map_err(|e| H3Error::Connect(authority.into(), format!("HTTP/3 setup failed: {e}")))?;
        let ended = wt.clone();
        tokio::spawn(async move {
            let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
            ended.end_all(false);
        });
        Ok(Conn {
            quic,
            send,
            wt,
            datagram_reader: Arc::default(),
        })
    }

    /// A request sender on the origin's connection, connecting (once) if needed.
    async fn sender(&self, uri: &http::Uri) -> Result<(SendRequest, quinn::Connection)> {
        let o = self.origin(uri).await?;
        Ok((o.send, o.quic))
    }

    async fn origin(&self, uri: &http::Uri) -> Result<Conn> {
        let host = uri
            .host()
            .ok_or_else(|| H3Error::InvalidArg("URL has no host".into()))?;
        let port = uri.port_u16().unwrap_or(443);
        let authority = format!("{host}:{port}");
        let slot = {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.entry(authority.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.quic.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        let conn = self.connect(&authority, host, port).await?;
        let out = conn.clone();
        *slot = Some(conn);
        Ok(out)
    }

    /// Open a WebTransport session (extended CONNECT) to `uri`. Resolves once the server
    /// answered: with the session when it accepted (2xx), else with its status.
    pub async fn webtransport(
        self: &Arc<Self>,
        uri: http::Uri,
        headers: Vec<(String, String)>,
    ) -> Result<SessionOpen> {
        let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        let origin = self.origin(&uri).await?;
        let (mut send_request, wt) = (origin.send.clone(), origin.wt.clone());
        let mut req = http::Request::new(());
        *req.method_mut() = http::Method::CONNECT;
        *req.uri_mut() = uri;
        *req.headers_mut() = crate::response::header_map(&headers)
            .map_err(|e| H3Error::InvalidArg(e.to_string()))?;
        req.headers_mut().insert(
            "sec-webtransport-http3-draft02",
            http::HeaderValue::from_static("1"),
        );
        req.extensions_mut()
            .insert(h3::ext::Protocol::WEB_TRANSPORT);
        let mut stream = send_request
            .send_request(req)
            .await
            .map_err(|e| H3Error::Connect(authority.clone(), e.to_string()))?;
        let handle = self.hub.next_session_handle();
        let session_id = stream.id().into_inner();
        // Registered before the answer arrives: the server may open streams right after it.
        let (session, close_rx) = self.hub.create_session(handle, session_id, &wt);
        self.start_datagram_reader(&origin);
        let not_clean = CloseInfo {
            code: 0,
            reason: String::new(),
            clean: false,
        };
        let resp =
            match tokio::time::timeout(self.config.connect_timeout, stream.recv_response()).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    self.hub.end_session(&session, &wt, not_clean);
                    return Err(H3Error::Connect(authority, e.to_string()));
                }
                Err(_) => {
                    self.hub.end_session(&session, &wt, not_clean);
                    stream.stop_stream(Code::H3_REQUEST_CANCELLED);
                    return Err(H3Error::Connect(
                        authority,
                        "no answer to the WebTransport request in time".into(),
                    ));
                }
            };
        let status = resp.status().as_u16();
        let headers = crate::body::flat_headers(resp.headers());
        if !resp.status().is_success() {
            self.hub.end_session(&session, &wt, not_clean);
            stream.stop_stream(Code::H3_NO_ERROR);
            return Ok(SessionOpen {
                session: None,
                status,
                headers,
            });
        }
        let (send, recv) = stream.split();
        tokio::spawn(async move {
            webtransport::run_session(&wt, &session, send, recv, close_rx, std::future::pending())
                .await;
        });
        Ok(SessionOpen {
            session: Some(handle),
            status,
            headers,
        })
    }

    /// One datagram reader per connection, started with its first WebTransport session.
    fn start_datagram_reader(&self, c: &Conn) {
        if c.datagram_reader.swap(true, Relaxed) {
            return;
        }
        let (quic, routes, stats) = (
            c.quic.clone(),
            c.wt.datagrams.clone(),
            self.hub.stats.clone(),
        );
        tokio::spawn(async move {
            while let Ok(data) = quic.read_datagram().await {
                stats.datagrams_received.fetch_add(1, Relaxed);
                let delivered = match crate::datagram::classify(true, &routes, &data) {
                    (crate::datagram::Target::Session(s), payload) => s.push_datagram(payload),
                    _ => false,
                };
                if !delivered {
                    stats.datagrams_dropped.fetch_add(1, Relaxed);
                }
            }
        });
    }

    /// Start a request; the response head arrives on the returned receiver.
    pub fn start(
        self: &Arc<Self>,
        spec: RequestSpec,
    ) -> (u64, oneshot::Receiver<Result<ResponseHead>>) {
        let id = self.next_id.fetch_add(1, Relaxed);
        let (head_tx, head_rx) = oneshot::channel();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let (upload_tx, upload_rx) = if spec.streamed {
            let (t, r) = mpsc::unbounded_channel();
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let (pull_tx, pull_rx) = mpsc::unbounded_channel();
        self.lock_handles().insert(
            id,
            Handle {
                upload: upload_tx,
                body: Some(pull_tx),
                cancel: Some(cancel_tx),
            },
        );
        let client = self.clone();
        tokio::spawn(async move {
            client
                .run(spec, head_tx, upload_rx, pull_rx, cancel_rx)
                .await;
            client.lock_handles().remove(&id);
        });
        (id, head_rx)
    }

    async fn run(
        &self,
        spec: RequestSpec,
        head_tx: oneshot::Sender<Result<ResponseHead>>,
        upload: Option<mpsc::UnboundedReceiver<UploadCmd>>,
        mut pulls: mpsc::UnboundedReceiver<BodyPull>,
        cancel: watch::Receiver<bool>,
    ) {
        let mut cancel_up = cancel.clone();
        let mut cancel_down = cancel.clone();
        let mut cancel = cancel;
        let (mut send_request, quic) =
            match until_cancelled(&mut cancel, self.sender(&spec.uri)).await {
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    let _ = head_tx.send(Err(e));
                    return;
                }
                None => return,
            };
        let mut req = http::Request::new(());
        *req.method_mut() = spec.method.clone();
        *req.uri_mut() = spec.uri.clone();
        match crate::response::header_map(&spec.headers) {
            Ok(h) => *req.headers_mut() = h,
            Err(e) => {
                let _ = head_tx.send(Err(H3Error::InvalidArg(e.to_string())));
                return;
            }
        }
        let stream = match until_cancelled(&mut cancel, send_request.send_request(req)).await {
            None => return,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                let _ = head_tx.send(Err(H3Error::Connect(
                    spec.uri
                        .authority()
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    e.to_string(),
                )));
                return;
            }
        };
        let (mut send, mut recv) = stream.split();
        // Every wait below also watches for cancellation (abort, timeout), which resets the
        // request stream both ways so the server sees it.
        let uploader = async move {
            let c = &mut cancel_up;
            let cancelled = |send: &mut h3::client::RequestStream<_, Bytes>| {
                send.stop_stream(Code::H3_REQUEST_CANCELLED)
            };
            if let Some(b) = spec.body.filter(|b| !b.is_empty()) {
                match until_cancelled(c, send.send_data(b)).await {
                    Some(Ok(())) => {}
                    Some(Err(_)) => return,
                    None => return cancelled(&mut send),
                }
            }
            if let Some(mut up) = upload {
                loop {
                    let Some(cmd) = until_cancelled(c, up.recv()).await else {
                        return cancelled(&mut send);
                    };
                    match cmd {
                        Some(UploadCmd::Data(chunk, ack)) => {
                            let Some(r) = until_cancelled(c, send.send_data(chunk)).await else {
                                let _ = ack.send(false);
                                return cancelled(&mut send);
                            };
                            let _ = ack.send(r.is_ok());
                            if r.is_err() {
                                return;
                            }
                        }
                        Some(UploadCmd::End(trailers)) => {
                            if !trailers.is_empty() {
                                if let Ok(map) = crate::response::header_map(&trailers) {
                                    let _ = until_cancelled(c, send.send_trailers(map)).await;
                                }
                            }
                            let _ = until_cancelled(c, send.finish()).await;
                            return;
                        }
                        // JS dropped the upload without ending it: reset, don't truncate silently.
                        None => return cancelled(&mut send),
                    }
                }
            }
            let _ = until_cancelled(c, send.finish()).await;
        };
        let downloader = async move {
            let c = &mut cancel_down;
            let head = match until_cancelled(c, recv.recv_response()).await {
                None => return recv.stop_sending(Code::H3_REQUEST_CANCELLED),
                Some(Ok(r)) => ResponseHead {
                    status: r.status().as_u16(),
                    headers: body::flat_headers(r.headers()),
                    complete: None,
                },
                Some(Err(_)) => {
                    let lost = quic.close_reason().is_some();
                    let _ = head_tx.send(Err(if lost {
                        H3Error::ConnectionLost
                    } else {
                        H3Error::StreamReset
                    }));
                    return;
                }
            };
            // A small response usually arrives with its head: if all of it is here already,
            // send it along and spare JS the body stream. Else keep what was read for the
            // first pull.
            let mut head = head;
            let mut prefetched = None;
            let mut ended = false;
            let mut held = 0;
            while held <= INLINE_BODY {
                match body::next_chunk(&mut recv).now_or_never() {
                    Some(Ok(Some(pieces))) => {
                        held += pieces.iter().map(|p| p.len()).sum::<usize>();
                        prefetched.get_or_insert_with(Vec::new).extend(pieces);
                    }
                    Some(Ok(None)) => {
                        ended = true;
                        break;
                    }
                    _ => break,
                }
            }
            if ended && held <= INLINE_BODY {
                if let Some(trailers) = body::end_trailers(&mut recv).now_or_never() {
                    head.complete = Some((prefetched.take().unwrap_or_default(), trailers));
                    let _ = head_tx.send(Ok(head));
                    return;
                }
            }
            if head_tx.send(Ok(head)).is_err() {
                return;
            }
            if let Some(pieces) = prefetched {
                let Some(Some(reply)) = until_cancelled(c, pulls.recv()).await else {
                    return recv.stop_sending(Code::H3_REQUEST_CANCELLED);
                };
                let _ = reply.send(BodyEvent::Chunk(pieces));
            }
            if ended {
                if let Some(Some(reply)) = until_cancelled(c, pulls.recv()).await {
                    let _ = reply.send(BodyEvent::End(body::end_trailers(&mut recv).await));
                }
                return;
            }
            loop {
                let Some(Some(reply)) = until_cancelled(c, pulls.recv()).await else {
                    // Cancelled, or JS dropped the body without reading it to the end.
                    return recv.stop_sending(Code::H3_REQUEST_CANCELLED);
                };
                let Some(next) = until_cancelled(c, body::next_chunk(&mut recv)).await else {
                    let _ = reply.send(BodyEvent::Error(H3Error::Aborted));
                    return recv.stop_sending(Code::H3_REQUEST_CANCELLED);
                };
                match next {
                    Ok(Some(pieces)) => {
                        let _ = reply.send(BodyEvent::Chunk(pieces));
                    }
                    Ok(None) => {
                        let _ = reply.send(BodyEvent::End(body::end_trailers(&mut recv).await));
                        return;
                    }
                    Err(_) => {
                        let lost = quic.close_reason().is_some();
                        let _ = reply.send(BodyEvent::Error(if lost {
                            H3Error::ConnectionLost
                        } else {
                            H3Error::StreamReset
                        }));
                        return;
                    }
                }
            }
        };
        // The response may start (and even end) before the upload is done.
        tokio::join!(uploader, downloader);
    }

    pub fn pull_body(&self, id: u64) -> Result<oneshot::Receiver<BodyEvent>> {
        let (tx, rx) = oneshot::channel();
        let handles = self.lock_handles();
        let h = handles
            .get(&id)
            .and_then(|h| h.body.as_ref())
            .ok_or(H3Error::UnknownRequest(id))?;
        h.send(tx).map_err(|_| H3Error::UnknownRequest(id))?;
        Ok(rx)
    }

    pub fn upload(&self, id: u64, cmd: UploadCmd) -> Result<()> {
        let handles = self.lock_handles();
        let h = handles
            .get(&id)
            .and_then(|h| h.upload.as_ref())
            .ok_or(H3Error::UnknownRequest(id))?;
        h.send(cmd).map_err(|_| H3Error::UnknownRequest(id))
    }

    /// Abort a request (any stage): its streams are reset, pending pulls fail.
    pub fn cancel(&self, id: u64) {
        if let Some(mut h) = self.lock_handles().remove(&id) {
            if let Some(c) = h.cancel.take() {
                let _ = c.send(true);
            }
        }
    }

    pub fn open_connections(&self) -> usize {
        let pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.values()
            .filter(|slot| {
                slot.try_lock()
                    .map(|c| c.as_ref().is_some_and(|c| c.quic.close_reason().is_none()))
                    .unwrap_or(true)
            })
            .count()
    }

    /// Close every connection; in-flight requests fail.
    pub async fn close(&self) {
        let ids: Vec<u64> = self.lock_handles().keys().copied().collect();
        for id in ids {
            self.cancel(id);
        }
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.endpoint
            .close(crate::server::H3_NO_ERROR, b"client closed");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}
