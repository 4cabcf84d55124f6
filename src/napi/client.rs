//! The napi edge for the client (`h3Fetch`, `createH3Client`).

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::client_heads::{HeadBatch, HeadCell, HEAD_FIELDS};
use super::convert::{body_bytes, header_pairs, pem, request_id, to_js, JsBytes};
use super::teardown::{run_blocking, stop_on_teardown, EXIT_WAIT};
use super::webtransport::NativeWt;
use super::write_acks::{ack_batch, AckBatch};
use crate::client::{Client, ClientConfig, RequestSpec, UploadCmd};
use crate::error::{H3Error, Result as H3Result};
use crate::tls::{ClientTls, Identity, Trust};
use crate::transport::body::BodyEvent;
use crate::transport::write_ack::WriteAck;

#[napi(object)]
pub struct NativeClientOptions {
    /// PEM CA certificates to trust instead of the system roots.
    pub ca: Option<Vec<Either<String, Buffer>>>,
    /// false: accept any certificate (tests only).
    pub reject_unauthorized: Option<bool>,
    /// SHA-256 hashes of acceptable server certificates (DER), as WebTransport uses them.
    pub server_certificate_hashes: Option<Vec<Buffer>>,
    /// Seconds an idle connection stays open (default 30).
    pub idle_timeout: Option<f64>,
    /// Seconds to wait for a QUIC handshake (default 10).
    pub connect_timeout: Option<f64>,
    /// The name sent in SNI and checked against the certificate instead of the URL's host.
    pub server_name: Option<String>,
    /// Mutual TLS: the client certificate chain and its key (PEM).
    pub cert: Option<Either<String, Buffer>>,
    pub key: Option<Either<String, Buffer>>,
    /// `SSLKEYLOGFILE`, read by JS.
    pub key_log_file: Option<String>,
    /// Send safe-method requests in 0-RTT when resuming a session that allows it.
    #[napi(js_name = "allow0RTT")]
    pub allow_0rtt: Option<bool>,
}

/// The answer to a WebTransport session request.
#[napi(object, object_from_js = false)]
pub struct NativeSessionOpen {
    /// Session handle for `NativeWt` calls; absent when the server refused (non-2xx).
    pub session: Option<i64>,
    pub status: u32,
    pub headers: Vec<String>,
}

#[napi]
pub struct NativeClient {
    pub(super) inner: Arc<Client>,
    heads: Arc<HeadBatch>,
    /// Where `write`'s acknowledgements gather for JS.
    acks: Arc<AckBatch>,
}

fn seconds(v: Option<f64>, default: f64, name: &str) -> H3Result<Duration> {
    let s = v.unwrap_or(default);
    if !s.is_finite() || s <= 0.0 || s > 3600.0 {
        return Err(H3Error::InvalidArg(format!(
            "{name} must be seconds in (0, 3600], got {s}"
        )));
    }
    Ok(Duration::from_secs_f64(s))
}

fn https_uri(url: &str) -> H3Result<http::Uri> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| H3Error::InvalidArg(format!("invalid URL {url:?}: {e}")))?;
    if uri.scheme_str() != Some("https") {
        return Err(H3Error::InvalidArg("HTTP/3 needs an https: URL".into()));
    }
    Ok(uri)
}

fn config(o: NativeClientOptions) -> H3Result<ClientConfig> {
    let trust = if let Some(hashes) = o.server_certificate_hashes.filter(|h| !h.is_empty()) {
        let mut out = Vec::with_capacity(hashes.len());
        for h in hashes {
            let arr: [u8; 32] = h.as_ref().try_into().map_err(|_| {
                H3Error::InvalidArg(
                    "serverCertificateHashes entries must be 32-byte SHA-256 digests".into(),
                )
            })?;
            out.push(arr);
        }
        Trust::Hashes(out)
    } else if o.reject_unauthorized == Some(false) {
        Trust::Insecure
    } else {
        Trust::Roots {
            ca: o.ca.map(|list| list.into_iter().map(pem).collect()),
        }
    };
    let identity = match (o.cert, o.key) {
        (Some(c), Some(k)) => Some(Arc::new(Identity::from_pem(&pem(c), &pem(k))?)),
        (None, None) => None,
        _ => {
            return Err(H3Error::Tls(
                "a client certificate needs both tls.cert and tls.key".into(),
            ))
        }
    };
    Ok(ClientConfig {
        tls: ClientTls {
            trust,
            identity,
            key_log: o.key_log_file,
            early_data: o.allow_0rtt.unwrap_or(false),
        },
        server_name: o.server_name,
        idle_timeout: seconds(o.idle_timeout, 30.0, "idleTimeout")?,
        connect_timeout: seconds(o.connect_timeout, 10.0, "connectTimeout")?,
    })
}

#[napi]
impl NativeClient {
    /// Open a WebTransport session (extended CONNECT) to `url`.
    #[napi]
    pub async fn webtransport(
        &self,
        url: String,
        headers: Vec<String>,
    ) -> Result<NativeSessionOpen> {
        let uri = https_uri(&url).map_err(to_js)?;
        let open = self
            .inner
            .webtransport(uri, header_pairs(headers))
            .await
            .map_err(to_js)?;
        Ok(NativeSessionOpen {
            session: open.session.map(|s| s.0 as i64),
            status: open.status.into(),
            headers: open.headers,
        })
    }

    /// This client's WebTransport sessions and streams.
    #[napi]
    pub fn wt(&self) -> NativeWt {
        NativeWt::new(self.inner.sessions.clone())
    }

    /// Where response heads go: `cb(cells)` gets [`HEAD_FIELDS`] cells per request (see
    /// `clientHeadFields()`), on the JS thread, for every head that arrived since its last call.
    /// Set once, before the first `start`; `cb` must not throw.
    #[napi]
    pub fn listen(&self, cb: Function<'_, Vec<HeadCell>, ()>) -> Result<()> {
        self.heads.listen(cb)
    }

    /// Start a request. `body` is the whole body; `streamed` means chunks follow via `write`
    /// and `endUpload`. Returns the request id; its head (with the whole body when it is small
    /// and complete) reaches the `listen` callback.
    #[napi]
    pub fn start(
        &self,
        method: String,
        url: String,
        headers: Vec<String>,
        body: Option<Either<String, Buffer>>,
        streamed: bool,
    ) -> Result<i64> {
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| to_js(H3Error::InvalidArg(format!("invalid method {method:?}"))))?;
        let uri = https_uri(&url).map_err(to_js)?;
        let body = body.map(body_bytes);
        let spec = RequestSpec {
            method,
            uri,
            headers: header_pairs(headers),
            body,
            streamed,
        };
        let heads = self.heads.clone();
        let id =
            napi::bindgen_prelude::within_runtime_if_available(|| self.inner.start(spec, heads));
        Ok(id.0 as i64)
    }

    /// Queue one chunk of a streamed upload. Its acknowledgement goes to the `listenAcks`
    /// callback once QUIC took it (ok 1), or when it cannot be sent (ok 0: the stream is gone):
    /// exactly one per call, in call order per request.
    #[napi]
    pub fn write(&self, id: i64, chunk: Either<String, Buffer>) {
        let id = request_id(id);
        let ack = WriteAck::new(id, self.acks.clone());
        // A request already gone drops the command, and with it the ack: reported as failed.
        let _ = self
            .inner
            .upload(id, UploadCmd::Data(body_bytes(chunk), ack));
    }

    /// Where the acknowledgements of `write` go: `f(cells)` with `requestId, ok` pairs, on the
    /// JS thread, for all that came in since JS last ran. Called once, right after creation.
    #[napi(ts_args_type = "f: (cells: number[]) => void")]
    pub fn listen_acks(&self, f: Function<'_, Vec<i64>, ()>) -> Result<()> {
        self.acks.listen(f)
    }

    /// End a streamed upload, with optional trailers (flat name/value list).
    #[napi]
    pub fn end_upload(&self, id: i64, trailers: Option<Vec<String>>) -> bool {
        self.inner
            .upload(
                request_id(id),
                UploadCmd::End(header_pairs(trailers.unwrap_or_default())),
            )
            .is_ok()
    }

    /// Next chunk of the response body: a Buffer, then an array of trailers at the end.
    #[napi(ts_return_type = "Promise<Buffer | string[]>")]
    pub async fn read_body(&self, id: i64) -> Result<Either<JsBytes, Vec<String>>> {
        let rx = self.inner.pull_body(request_id(id)).map_err(to_js)?;
        match rx.await {
            Ok(BodyEvent::Chunk(pieces)) => Ok(Either::A(JsBytes(pieces))),
            Ok(BodyEvent::End(trailers)) => Ok(Either::B(trailers)),
            Ok(BodyEvent::Error(e)) => Err(to_js(e)),
            Err(_) => Err(to_js(H3Error::StreamReset)),
        }
    }

    /// Abort request `id` at any stage: its streams are reset.
    #[napi]
    pub fn cancel(&self, id: i64) {
        self.inner.cancel(request_id(id))
    }

    /// Open QUIC connections (one per origin in use).
    #[napi]
    pub fn connection_count(&self) -> u32 {
        self.inner.open_connections() as u32
    }

    /// QUIC connections opened since the client was created.
    #[napi]
    pub fn connections_opened(&self) -> f64 {
        self.inner
            .connections_opened
            .load(std::sync::atomic::Ordering::Relaxed) as f64
    }

    /// `close()` for `process.exit()`, which skips environment teardown: waits only until the
    /// CONNECTION_CLOSE frames are out (see lib/exit.js).
    #[napi]
    pub fn close_now(&self) {
        let client = self.inner.clone();
        run_blocking(async move { client.close().await }, EXIT_WAIT);
    }

    /// Close every connection; in-flight requests fail.
    #[napi]
    pub async fn close(&self) -> Result<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.close().await })
            .await
            .map_err(|e| to_js(H3Error::Internal(format!("close failed: {e}"))))
    }
}

#[napi]
pub fn create_native_client(env: Env, options: NativeClientOptions) -> Result<NativeClient> {
    let cfg = config(options).map_err(to_js)?;
    let client =
        napi::bindgen_prelude::within_runtime_if_available(|| Client::new(cfg)).map_err(to_js)?;
    let client = Arc::new(client);
    stop_on_teardown(&env, &client, |client| async move { client.close().await })?;
    Ok(NativeClient {
        inner: client,
        heads: Arc::default(),
        acks: Arc::new(ack_batch()),
    })
}

/// Names of the cells of one response head in the batches `NativeClient.listen`'s callback gets.
#[napi]
pub fn client_head_fields() -> Vec<String> {
    HEAD_FIELDS.iter().map(|s| s.to_string()).collect()
}
