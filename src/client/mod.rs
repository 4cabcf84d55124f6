//! HTTP/3 client: one QUIC connection per origin, many requests multiplexed on it.

mod connection;
mod early_data;
mod head;
mod request;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{H3Error, Result};
use crate::ids::RequestId;
use crate::proto::headers::H3_NO_ERROR;
use crate::sync::lock;
use crate::tls::{client_crypto, ticket_store, ClientTls, TicketStore};
use crate::transport::body::{BodyEvent, BodyPull};
use crate::transport::close_settle;
use crate::webtransport::HandleTable;
use connection::OriginConn;

pub use early_data::EarlyCounts;
pub use head::{HeadSink, ResponseHead};
pub use request::{RequestSpec, UploadCmd};
pub use session::SessionOpen;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub tls: ClientTls,
    /// The name sent in SNI and checked against the certificate instead of the URL's host.
    pub server_name: Option<String>,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
}

/// Per-request handles JS reaches by id.
struct Handle {
    upload: Option<mpsc::UnboundedSender<UploadCmd>>,
    body: Option<mpsc::UnboundedSender<BodyPull>>,
    cancel: Option<watch::Sender<bool>>,
}

/// One slot per origin; its lock is held while connecting, so concurrent requests share one
/// handshake.
type OriginSlot = Arc<tokio::sync::Mutex<Option<OriginConn>>>;

pub struct Client {
    config: ClientConfig,
    endpoint: quinn::Endpoint,
    crypto: Arc<quinn::crypto::rustls::QuicClientConfig>,
    /// Session tickets of every connection of this client.
    tickets: TicketStore,
    pool: Mutex<HashMap<String, OriginSlot>>,
    handles: Mutex<HashMap<RequestId, Handle>>,
    next_id: AtomicU64,
    pub connections_opened: AtomicU64,
    /// 0-RTT attempts (`allow0RTT`) and how servers answered them.
    pub early: Arc<EarlyCounts>,
    /// WebTransport sessions and streams of this client.
    pub sessions: Arc<HandleTable>,
    /// Request tasks on their way into the runtime (see [`starter`]).
    starts: mpsc::UnboundedSender<RequestTask>,
}

/// A request's whole life, boxed.
type RequestTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Spawns the request tasks JS starts. A spawn from the JS thread wakes a runtime worker
/// each time; through this channel only the first request of a burst does (the rest queue up
/// behind the one wake-up), and the spawns happen on the runtime, into the worker's own queue.
///
/// Each request first runs here, up to its first wait (its HEADERS written, usually its FIN),
/// and is spawned only if it has more to do. Spawned at once, every request task woke quinn's
/// connection driver, which tokio then ran next (the woken task goes first), so each request
/// left in a UDP datagram of its own: one `sendmsg` per request, ~15 µs of the ~50 µs of client
/// CPU a small fetch cost. Run here, a burst's requests are all written before the driver runs,
/// and leave together.
fn starter() -> Result<mpsc::UnboundedSender<RequestTask>> {
    // Never tokio::spawn outside the runtime: that panics.
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|e| H3Error::Internal(format!("no runtime for the client: {e}")))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<RequestTask>();
    rt.spawn(async move {
        while let Some(mut task) = rx.recv().await {
            // A poll here leaves the starter's waker with whatever the request waits on; the
            // spawned task's own first poll (scheduled by the spawn) registers its own, so at
            // worst the starter is woken once for nothing.
            let first = std::future::poll_fn(|cx| Poll::Ready(task.as_mut().poll(cx))).await;
            if first.is_pending() {
                tokio::spawn(task);
            }
        }
    });
    Ok(tx)
}

impl Client {
    /// Needs the tokio runtime context (binds a UDP socket).
    pub fn new(config: ClientConfig) -> Result<Client> {
        let tickets = ticket_store();
        let crypto = client_crypto(&config.tls, tickets.clone())?;
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
            tickets,
            pool: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            connections_opened: AtomicU64::new(0),
            early: Arc::default(),
            sessions: HandleTable::new(Arc::default())?,
            starts: starter()?,
        })
    }

    fn lock_handles(&self) -> MutexGuard<'_, HashMap<RequestId, Handle>> {
        lock(&self.handles)
    }

    pub fn pull_body(&self, id: RequestId) -> Result<oneshot::Receiver<BodyEvent>> {
        let (tx, rx) = oneshot::channel();
        let handles = self.lock_handles();
        let h = handles
            .get(&id)
            .and_then(|h| h.body.as_ref())
            .ok_or(H3Error::UnknownRequest(id))?;
        h.send(tx).map_err(|_| H3Error::UnknownRequest(id))?;
        Ok(rx)
    }

    pub fn upload(&self, id: RequestId, cmd: UploadCmd) -> Result<()> {
        let handles = self.lock_handles();
        let h = handles
            .get(&id)
            .and_then(|h| h.upload.as_ref())
            .ok_or(H3Error::UnknownRequest(id))?;
        h.send(cmd).map_err(|_| H3Error::UnknownRequest(id))
    }

    /// Abort a request (any stage): its streams are reset, pending pulls fail.
    pub fn cancel(&self, id: RequestId) {
        if let Some(mut h) = self.lock_handles().remove(&id) {
            if let Some(c) = h.cancel.take() {
                let _ = c.send(true);
            }
        }
    }

    /// How long cancelled requests get to reset their streams before the connections close
    /// (see [`close_settle`]).
    fn reset_settle_time(&self) -> Duration {
        let pool = lock(&self.pool);
        let rtts = pool
            .values()
            .filter_map(|slot| slot.try_lock().ok()?.as_ref().map(|c| c.quic.rtt()));
        close_settle::settle_time(rtts)
    }

    pub fn open_connections(&self) -> usize {
        let pool = lock(&self.pool);
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
        let ids: Vec<RequestId> = self.lock_handles().keys().copied().collect();
        let cancelled = !ids.is_empty();
        for id in ids {
            self.cancel(id);
        }
        if cancelled {
            tokio::time::sleep(self.reset_settle_time()).await;
        }
        lock(&self.pool).clear();
        self.endpoint.close(H3_NO_ERROR, b"client closed");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}
