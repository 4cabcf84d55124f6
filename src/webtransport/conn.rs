//! The WebTransport state of one QUIC connection: its sessions by session id, where peer
//! streams naming a session are delivered (the [`StreamClassifier`] the QUIC adapter calls).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::flow::Flow;
use super::handles::HandleTable;
use super::session::{CloseInfo, Session, SessionRx};
use super::stream::quic_code;
use crate::ids::{SessionHandle, SessionId, StreamId};
use crate::proto::wt_draft::{Draft, PeerLimits};
use crate::proto::wt_wire::BUFFERED_STREAM_REJECTED;
use crate::sync::lock;
use crate::transport::classify::{Dir, PrefixedRecv, StreamClassifier};
use crate::transport::datagram::DatagramRoutes;

/// The SETTINGS a peer sent, in order.
pub type PeerSettings = Arc<Vec<(u64, u64)>>;

/// The sessions of one QUIC connection, by session id.
pub struct ConnSessions {
    pub handles: Arc<HandleTable>,
    pub quic: quinn::Connection,
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    /// Where this connection's datagram reader looks up session datagrams.
    pub datagrams: Arc<DatagramRoutes>,
    /// The peer's SETTINGS, once its control stream delivered them.
    peer_settings: watch::Sender<Option<PeerSettings>>,
    /// Server: CONNECT streams whose `:protocol` was `webtransport-h3`.
    h3_tokens: Mutex<HashSet<u64>>,
    /// Client: our CONNECTs carry `webtransport-h3` (the server offered draft-15).
    send_h3_token: AtomicBool,
}

impl ConnSessions {
    pub fn new(
        handles: Arc<HandleTable>,
        quic: quinn::Connection,
        datagrams: Arc<DatagramRoutes>,
    ) -> Arc<Self> {
        Arc::new(ConnSessions {
            handles,
            quic,
            sessions: Mutex::default(),
            datagrams,
            peer_settings: watch::channel(None).0,
            h3_tokens: Mutex::default(),
            send_h3_token: AtomicBool::new(false),
        })
    }

    /// The peer's SETTINGS, waiting up to `wait` for them; `None` if they did not come.
    pub async fn peer_settings(&self, wait: Duration) -> Option<PeerSettings> {
        let mut rx = self.peer_settings.subscribe();
        let got = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        #[allow(clippy::let_and_return)] // the guard borrows `rx`: clone before it drops
        let settings = got.ok()?.ok()?.clone();
        settings
    }

    /// Server: whether the CONNECT on `stream` asked for `webtransport-h3` (asked once).
    pub fn took_h3_token(&self, stream: StreamId) -> bool {
        lock(&self.h3_tokens).remove(&stream.0)
    }

    /// Client: make our CONNECTs on this connection carry `webtransport-h3`.
    pub fn use_h3_token(&self) {
        self.send_h3_token.store(true, Relaxed);
    }

    /// Create a session (not yet established) speaking `draft`: JS finds it by `handle`, its
    /// streams and datagrams find it by `session_id`. Flow control is on when the draft has it
    /// and the peer's SETTINGS turned it on (draft-15 §5.1).
    pub fn create_session(
        &self,
        handle: SessionHandle,
        session_id: SessionId,
        draft: Draft,
        peer: Option<&[(u64, u64)]>,
    ) -> (Arc<Session>, SessionRx) {
        let flow = peer
            .filter(|_| draft.has_flow_control())
            .and_then(PeerLimits::from_settings)
            .map(Flow::new);
        let (session, rx) = Session::new(handle, session_id, self.quic.clone(), draft, flow);
        self.handles.insert_session(session.clone());
        lock(&self.sessions).insert(session_id, session.clone());
        self.datagrams
            .add_session(StreamId::from(session_id), session.clone());
        (session, rx)
    }

    /// The session is over: settle it, reset its streams, forget it on this connection. JS
    /// still finds it by handle until it calls [`HandleTable::release`].
    pub fn end_session(&self, session: &Session, info: CloseInfo) {
        session.set_closed(info);
        {
            let mut map = lock(&self.sessions);
            if map
                .get(&session.session_id)
                .is_some_and(|s| s.handle == session.handle)
            {
                map.remove(&session.session_id);
            }
        }
        self.datagrams.remove(StreamId::from(session.session_id));
        self.handles.abort_streams_of(session);
    }

    /// Close every session of the connection (it is going away).
    pub fn end_all(&self, clean: bool) {
        let all: Vec<Arc<Session>> = lock(&self.sessions).values().cloned().collect();
        for s in all {
            self.end_session(&s, CloseInfo::ended(clean));
        }
    }
}

impl StreamClassifier for ConnSessions {
    fn incoming(
        &self,
        session_id: SessionId,
        dir: Dir,
        send: Option<quinn::SendStream>,
        mut recv: PrefixedRecv,
    ) {
        let session = lock(&self.sessions).get(&session_id).cloned();
        match session {
            Some(s) if s.peer_opened(dir) => self.handles.incoming(&s, dir, send, recv),
            _ => {
                // Unknown session (never existed, or already gone), or over its stream limit.
                let _ = recv.stream.stop(quic_code(BUFFERED_STREAM_REJECTED));
                if let Some(mut send) = send {
                    let _ = send.reset(quic_code(BUFFERED_STREAM_REJECTED));
                }
            }
        }
    }

    fn peer_settings(&self, settings: Vec<(u64, u64)>) {
        self.peer_settings.send_replace(Some(Arc::new(settings)));
    }

    fn h3_token(&self, id: u64) {
        lock(&self.h3_tokens).insert(id);
    }

    fn sends_h3_token(&self) -> bool {
        self.send_h3_token.load(Relaxed)
    }
}
