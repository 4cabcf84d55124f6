//! The WebTransport state of one QUIC connection: its sessions by session id, where peer
//! streams naming a session are delivered (the [`StreamClassifier`] the QUIC adapter calls).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::handles::HandleTable;
use super::session::{CloseInfo, CloseRequest, Session};
use super::stream::quic_code;
use crate::ids::{SessionHandle, SessionId, StreamId};
use crate::proto::wt_wire::BUFFERED_STREAM_REJECTED;
use crate::sync::lock;
use crate::transport::classify::{Dir, PrefixedRecv, StreamClassifier};
use crate::transport::datagram::DatagramRoutes;

/// The sessions of one QUIC connection, by session id.
pub struct ConnSessions {
    pub handles: Arc<HandleTable>,
    pub quic: quinn::Connection,
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    /// Where this connection's datagram reader looks up session datagrams.
    pub datagrams: Arc<DatagramRoutes>,
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
        })
    }

    /// Create a session (not yet established): JS finds it by `handle`, its streams and
    /// datagrams find it by `session_id`.
    pub fn create_session(
        &self,
        handle: SessionHandle,
        session_id: SessionId,
    ) -> (Arc<Session>, oneshot::Receiver<CloseRequest>) {
        let (session, close_rx) = Session::new(handle, session_id, self.quic.clone());
        self.handles.insert_session(session.clone());
        lock(&self.sessions).insert(session_id, session.clone());
        self.datagrams
            .add_session(StreamId::from(session_id), session.clone());
        (session, close_rx)
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
            Some(s) => self.handles.incoming(&s, dir, send, recv),
            None => {
                // Unknown session (never existed, or already gone).
                let _ = recv.stream.stop(quic_code(BUFFERED_STREAM_REJECTED));
                if let Some(mut send) = send {
                    let _ = send.reset(quic_code(BUFFERED_STREAM_REJECTED));
                }
            }
        }
    }
}
