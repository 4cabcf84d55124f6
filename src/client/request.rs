//! One client request: open its stream on the origin's connection, then upload the body and
//! download the response side by side (the response may start, and even end, before the
//! upload is done). Every wait also watches for cancellation (abort, timeout), which resets
//! the request stream both ways so the server sees it.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use h3::client::RequestStream;
use h3::error::Code;
use tokio::sync::{mpsc, watch};

use super::connection::{connect_error, setup_error};
use super::head::{HeadSink, HeadTx, ResponseHead};
use super::{Client, Handle};
use crate::error::{H3Error, Result};
use crate::ids::RequestId;
use crate::proto::headers::{flat_headers, header_map};
use crate::transport::body::{self, BodyEvent, BodyPull};
use crate::transport::quic::{BidiStream, RecvStream, SendStream};
use crate::transport::write_ack::WriteAck;

type ClientStream = RequestStream<BidiStream<Bytes>, Bytes>;
type UploadStream = RequestStream<SendStream<Bytes>, Bytes>;
type ResponseStream = RequestStream<RecvStream, Bytes>;

/// Largest body handed over together with the head.
const INLINE_BODY: usize = 64 * 1024;

/// A request as JS describes it.
pub struct RequestSpec {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: Vec<(String, String)>,
    /// Whole body, or `None` with `streamed` for a body written chunk by chunk.
    pub body: Option<Bytes>,
    pub streamed: bool,
}

/// Upload commands from JS for a request with a streamed body.
pub enum UploadCmd {
    Data(Bytes, WriteAck),
    End(Vec<(String, String)>),
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

/// A response stream failed: the connection went, or the server reset the stream. A TLS alert
/// after our side finished the handshake (a server refusing our client certificate: TLS 1.3
/// checks it last) is a TLS error.
fn stream_failure(quic: &quinn::Connection) -> H3Error {
    match quic.close_reason() {
        Some(e) => match connect_error(e, &quic.remote_address().to_string()) {
            tls @ H3Error::TlsHandshake(..) => tls,
            _ => H3Error::ConnectionLost,
        },
        None => H3Error::StreamReset,
    }
}

impl Client {
    /// Start a request; its response head goes to `heads`, tagged with the returned id.
    pub fn start(self: &Arc<Self>, spec: RequestSpec, heads: Arc<dyn HeadSink>) -> RequestId {
        let id = RequestId(self.next_id.fetch_add(1, Relaxed));
        let head_tx = HeadTx::new(id, heads);
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
        // Boxed: the request future is kilobytes (h3 streams, the upload and download halves
        // side by side), and an unboxed one is copied whole on every move into the task.
        let task = Box::pin(async move {
            client
                .run(spec, head_tx, upload_rx, pull_rx, cancel_rx)
                .await;
            client.lock_handles().remove(&id);
        });
        // The starter is gone only while the runtime shuts down; the dropped task then
        // reports a reset through its head slot.
        let _ = self.starts.send(task);
        id
    }

    async fn run(
        &self,
        spec: RequestSpec,
        head_tx: HeadTx,
        upload: Option<mpsc::UnboundedReceiver<UploadCmd>>,
        pulls: mpsc::UnboundedReceiver<BodyPull>,
        cancel: watch::Receiver<bool>,
    ) {
        let mut opening = cancel.clone();
        let (stream, quic) = match until_cancelled(&mut opening, self.open_stream(&spec)).await {
            None => return,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                head_tx.send(Err(e));
                return;
            }
        };
        let (send, recv) = stream.split();
        tokio::join!(
            upload_body(send, spec.body, upload, cancel.clone()),
            download(recv, quic, head_tx, pulls, cancel),
        );
    }

    /// Send the request head on the origin's connection (connecting first if needed).
    async fn open_stream(&self, spec: &RequestSpec) -> Result<(ClientStream, quinn::Connection)> {
        let (mut send_request, quic) = self.sender(&spec.uri, &spec.method).await?;
        let mut req = http::Request::new(());
        *req.method_mut() = spec.method.clone();
        *req.uri_mut() = spec.uri.clone();
        *req.headers_mut() =
            header_map(&spec.headers).map_err(|e| H3Error::InvalidArg(e.to_string()))?;
        let stream = send_request.send_request(req).await.map_err(|e| {
            let authority = spec.uri.authority().map(|a| a.to_string());
            setup_error(&quic, &authority.unwrap_or_default(), e)
        })?;
        Ok((stream, quic))
    }
}

/// The request body: the whole `body`, then (streamed uploads) what JS writes, then FIN.
async fn upload_body(
    mut send: UploadStream,
    body: Option<Bytes>,
    upload: Option<mpsc::UnboundedReceiver<UploadCmd>>,
    mut cancel: watch::Receiver<bool>,
) {
    let c = &mut cancel;
    if let Some(b) = body.filter(|b| !b.is_empty()) {
        match until_cancelled(c, send.send_data(b)).await {
            Some(Ok(())) => {}
            Some(Err(_)) => return,
            None => return send.stop_stream(Code::H3_REQUEST_CANCELLED),
        }
    }
    if let Some(up) = upload {
        return upload_streamed(send, up, c).await;
    }
    let _ = until_cancelled(c, send.finish()).await;
}

/// A body JS writes chunk by chunk; each chunk is acknowledged once QUIC took it.
async fn upload_streamed(
    mut send: UploadStream,
    mut up: mpsc::UnboundedReceiver<UploadCmd>,
    c: &mut watch::Receiver<bool>,
) {
    loop {
        let Some(cmd) = until_cancelled(c, up.recv()).await else {
            return send.stop_stream(Code::H3_REQUEST_CANCELLED);
        };
        match cmd {
            Some(UploadCmd::Data(chunk, ack)) => {
                let Some(r) = until_cancelled(c, send.send_data(chunk)).await else {
                    ack.send(false);
                    return send.stop_stream(Code::H3_REQUEST_CANCELLED);
                };
                ack.send(r.is_ok());
                if r.is_err() {
                    return;
                }
            }
            Some(UploadCmd::End(trailers)) => {
                if !trailers.is_empty() {
                    if let Ok(map) = header_map(&trailers) {
                        let _ = until_cancelled(c, send.send_trailers(map)).await;
                    }
                }
                let _ = until_cancelled(c, send.finish()).await;
                return;
            }
            // JS dropped the upload without ending it: reset, don't truncate silently.
            None => return send.stop_stream(Code::H3_REQUEST_CANCELLED),
        }
    }
}

/// Body bytes that were already buffered when the head arrived.
#[derive(Default)]
struct Prefetched {
    pieces: Option<Vec<Bytes>>,
    held: usize,
    ended: bool,
}

/// Take what of the body is already here (up to about [`INLINE_BODY`]), without waiting.
fn prefetch(recv: &mut ResponseStream) -> Prefetched {
    let mut p = Prefetched::default();
    while p.held <= INLINE_BODY {
        match body::next_chunk(recv).now_or_never() {
            Some(Ok(Some(pieces))) => {
                p.held += pieces.iter().map(|p| p.len()).sum::<usize>();
                p.pieces.get_or_insert_with(Vec::new).extend(pieces);
            }
            Some(Ok(None)) => {
                p.ended = true;
                break;
            }
            _ => break,
        }
    }
    p
}

/// The response: its head (with the whole body when it came along), then the body a pull at
/// a time.
async fn download(
    mut recv: ResponseStream,
    quic: quinn::Connection,
    head_tx: HeadTx,
    mut pulls: mpsc::UnboundedReceiver<BodyPull>,
    mut cancel: watch::Receiver<bool>,
) {
    let c = &mut cancel;
    let mut head = match until_cancelled(c, recv.recv_response()).await {
        None => return recv.stop_sending(Code::H3_REQUEST_CANCELLED),
        Some(Ok(r)) => ResponseHead {
            status: r.status().as_u16(),
            headers: flat_headers(r.headers()),
            complete: None,
        },
        Some(Err(_)) => {
            head_tx.send(Err(stream_failure(&quic)));
            return;
        }
    };
    // A small response usually arrives with its head: if all of it is here already, send it
    // along and spare JS the body stream. Else keep what was read for the first pull.
    let mut early = prefetch(&mut recv);
    if early.ended && early.held <= INLINE_BODY {
        if let Some(trailers) = body::end_trailers(&mut recv).now_or_never() {
            head.complete = Some((early.pieces.take().unwrap_or_default(), trailers));
            head_tx.send(Ok(head));
            return;
        }
    }
    head_tx.send(Ok(head));
    if let Some(pieces) = early.pieces {
        let Some(Some(reply)) = until_cancelled(c, pulls.recv()).await else {
            return recv.stop_sending(Code::H3_REQUEST_CANCELLED);
        };
        let _ = reply.send(BodyEvent::Chunk(pieces));
    }
    if early.ended {
        if let Some(Some(reply)) = until_cancelled(c, pulls.recv()).await {
            let _ = reply.send(BodyEvent::End(body::end_trailers(&mut recv).await));
        }
        return;
    }
    serve_pulls(recv, &quic, pulls, c).await;
}

/// Answer JS's body pulls, one gathered read each, until the end of the body.
async fn serve_pulls(
    mut recv: ResponseStream,
    quic: &quinn::Connection,
    mut pulls: mpsc::UnboundedReceiver<BodyPull>,
    c: &mut watch::Receiver<bool>,
) {
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
                let _ = reply.send(BodyEvent::Error(stream_failure(quic)));
                return;
            }
        }
    }
}
