//! The driver: shiguredo_http3's sans-I/O connection fed from quinn, and its output written back.
//! WebTransport data streams are written straight to quinn (the library frames only the CONNECT
//! stream and the HTTP/3 streams); what arrives on them goes through the library, which counts it
//! against the session's flow control and emits WT_MAX_* capsules as we report it consumed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use shiguredo_http3::webtransport::{Capsule, StreamHeader};
use shiguredo_http3::{ClientConnection, Event, ServerConnection, WebTransportEvent};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::io::{spawn_acceptors, spawn_reader, stream_id, Input, Writers};

pub enum H3 {
    Client(ClientConnection),
    Server(ServerConnection),
}

macro_rules! both {
    ($h:expr, $c:ident => $e:expr) => {
        match $h {
            H3::Client($c) => $e,
            H3::Server($c) => $e,
        }
    };
}

type R<T> = Result<T, String>;

fn err<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

pub struct Peer {
    pub h3: H3,
    pub quic: quinn::Connection,
    writers: Writers,
    tx: UnboundedSender<Input>,
    rx: UnboundedReceiver<Input>,
    /// WebTransport stream → its session, to report consumed bytes.
    stream_session: HashMap<u64, u64>,
    pub sessions: HashSet<u64>,
    pub gone: Option<String>,
    /// A stream whose bytes are fed one at a time.
    pub split: Option<u64>,
}

impl Peer {
    /// Opens the control and QPACK streams, sends SETTINGS, and starts reading the connection.
    pub async fn start(mut h3: H3, quic: quinn::Connection) -> R<Self> {
        let mut writers = Writers::default();
        let mut ids = [0u64; 3];
        let mut sends = Vec::new();
        for id in ids.iter_mut() {
            let s = quic.open_uni().await.map_err(err("open_uni"))?;
            *id = stream_id(s.id());
            sends.push(s);
        }
        let init = both!(&mut h3, c => c.init_h3_streams(ids[0], ids[1], ids[2]))
            .map_err(err("init_h3_streams"))?;
        let datas = [init.control_data, init.encoder_data, init.decoder_data];
        if std::env::var_os("WT_PEER_DEBUG").is_some() {
            eprintln!("wt-peer init: streams {ids:?} {:02x?}", datas);
        }
        for (s, data) in sends.into_iter().zip(datas) {
            let id = stream_id(s.id());
            writers.start(s);
            writers.write(id, data, false);
        }
        // quinn negotiates max_datagram_frame_size; it has no reset_stream_at (see README).
        let dgram = quic.max_datagram_size().is_some();
        both!(&mut h3, c => c.set_webtransport_transport_verified(dgram, true))
            .map_err(err("transport"))?;
        let (tx, rx) = unbounded_channel();
        spawn_acceptors(quic.clone(), tx.clone());
        Ok(Self {
            h3,
            quic,
            writers,
            tx,
            rx,
            stream_session: HashMap::new(),
            sessions: HashSet::new(),
            gone: None,
            split: None,
        })
    }

    /// Waits for input (at most `wait`), feeds it to the library, flushes what it wants sent, and
    /// returns its events. An HTTP/3 connection error is returned as Err.
    pub async fn step(&mut self, wait: Duration) -> R<Vec<Event>> {
        let input = tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or(Input::Tick);
        self.feed(input)?;
        let mut events = Vec::new();
        loop {
            match both!(&mut self.h3, c => c.poll_event()) {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => return Err(format!("poll_event: {e:?}")),
            }
        }
        for ev in &events {
            if std::env::var_os("WT_PEER_DEBUG").is_some() {
                eprintln!("wt-peer event: {ev:?}");
            }
            self.track(ev);
        }
        self.flush();
        Ok(events)
    }

    fn feed(&mut self, input: Input) -> R<()> {
        if std::env::var_os("WT_PEER_DEBUG").is_some() {
            if let Input::Data { id, data, fin } = &input {
                eprintln!(
                    "wt-peer in: stream {id} {} bytes fin={fin} {:02x?}",
                    data.len(),
                    &data[..data.len().min(40)]
                );
            }
        }
        let r = match input {
            // One byte at a time on the stream asked for: the library then sees each frame end
            // on its own, as it would if the bytes came in separate packets.
            Input::Data { id, data, fin } if self.split == Some(id) && data.len() > 1 => {
                let last = data.len() - 1;
                data.iter().enumerate().try_for_each(|(i, b)| {
                    both!(&mut self.h3, c => c.feed_stream(id, std::slice::from_ref(b), fin && i == last))
                })
            }
            Input::Data { id, data, fin } => {
                both!(&mut self.h3, c => c.feed_stream(id, &data, fin))
            }
            Input::Reset { id, code } => both!(&mut self.h3, c => c.stream_reset(id, code, 0)),
            Input::PeerBi(send, recv) => {
                self.writers.park(send);
                spawn_reader(recv, self.tx.clone());
                Ok(())
            }
            Input::PeerUni(recv) => {
                spawn_reader(recv, self.tx.clone());
                Ok(())
            }
            Input::Datagram(d) => both!(&mut self.h3, c => c.feed_datagram(&d)),
            Input::Gone(why) => {
                self.gone = Some(why);
                Ok(())
            }
            Input::Tick => Ok(()),
        };
        r.map_err(err("feed"))
    }

    /// Stream/session bookkeeping, and data counted as consumed at once (the app takes it all).
    fn track(&mut self, ev: &Event) {
        let Event::WebTransport(wt) = ev else { return };
        match wt {
            WebTransportEvent::SessionEstablished { session_id, .. } => {
                self.sessions.insert(*session_id);
            }
            WebTransportEvent::BidiStreamOpen {
                stream_id,
                session_id,
            }
            | WebTransportEvent::UniStreamOpen {
                stream_id,
                session_id,
            } => {
                self.stream_session.insert(*stream_id, *session_id);
            }
            WebTransportEvent::BidiStreamData { stream_id, data }
            | WebTransportEvent::UniStreamData { stream_id, data } => {
                if let Some(s) = self.stream_session.get(stream_id) {
                    both!(&mut self.h3, c => c.wt_data_consumed(*s, data.len() as u64));
                }
            }
            _ => {}
        }
    }

    /// Sends the flow-control capsules the library queued and everything it has buffered.
    pub fn flush(&mut self) {
        let sessions: Vec<u64> = self.sessions.iter().copied().collect();
        for sid in sessions {
            for capsule in both!(&mut self.h3, c => c.take_wt_pending_capsules(sid)) {
                let mut buf = Vec::new();
                capsule.encode(&mut buf);
                let _ = both!(&mut self.h3, c => c.send_body(sid, &buf, false));
            }
        }
        let ids: Vec<u64> = both!(&self.h3, c => c.writable_streams().collect());
        for id in ids {
            while let Some((data, fin)) = both!(&mut self.h3, c => c.take_stream_data(id)) {
                if std::env::var_os("WT_PEER_DEBUG").is_some() {
                    eprintln!(
                        "wt-peer out: stream {id} {} bytes fin={fin} {:02x?}",
                        data.len(),
                        &data[..data.len().min(60)]
                    );
                }
                let empty = data.is_empty();
                self.writers.write(id, data, fin);
                if fin || empty {
                    break;
                }
            }
        }
    }

    /// Opens a WebTransport stream (draft-15 §4.2/§4.3 header first), writes `payload` and the FIN.
    pub async fn open_stream(&mut self, session: u64, bidi: bool, payload: Vec<u8>) -> R<u64> {
        let header = StreamHeader::new(session).map_err(err("stream header"))?;
        let mut buf = Vec::new();
        let send = if bidi {
            let (s, r) = self.quic.open_bi().await.map_err(err("open_bi"))?;
            header.encode_bidirectional(&mut buf);
            let id = stream_id(s.id());
            both!(&mut self.h3, c => c.register_local_wt_stream(session, id))
                .map_err(err("register"))?;
            self.stream_session.insert(id, session);
            spawn_reader(r, self.tx.clone());
            s
        } else {
            let s = self.quic.open_uni().await.map_err(err("open_uni"))?;
            header.encode_unidirectional(&mut buf);
            both!(&mut self.h3, c => c.register_local_wt_stream(session, stream_id(s.id())))
                .map_err(err("register"))?;
            s
        };
        let id = stream_id(send.id());
        buf.extend_from_slice(&payload);
        self.writers.start(send);
        self.writers.write(id, buf, true);
        Ok(id)
    }

    pub fn session_of(&self, stream: u64) -> Option<u64> {
        self.stream_session.get(&stream).copied()
    }

    /// A stream we opened for the library (the CONNECT stream): its writer and its reader.
    pub fn adopt(&mut self, send: quinn::SendStream, recv: quinn::RecvStream) {
        self.writers.start(send);
        spawn_reader(recv, self.tx.clone());
    }

    /// Writes on the send half of a stream the peer opened (no header on this side).
    pub fn write(&mut self, id: u64, data: Vec<u8>, fin: bool) -> bool {
        self.writers.write(id, data, fin)
    }

    pub fn datagram(&mut self, session: u64, payload: &[u8]) -> R<()> {
        let d = both!(&self.h3, c => c.send_datagram(session, payload))
            .map_err(err("send_datagram"))?;
        self.quic
            .send_datagram(d.into())
            .map_err(err("quic datagram"))
    }

    /// WT_CLOSE_SESSION (draft-15 §6) in a DATA frame on the CONNECT stream, then its FIN.
    pub fn close_session(&mut self, session: u64, code: u32, reason: &str) -> R<()> {
        let mut buf = Vec::new();
        Capsule::CloseSession {
            error_code: code,
            message: reason.to_string(),
        }
        .encode(&mut buf);
        both!(&mut self.h3, c => c.send_body(session, &buf, true)).map_err(err("close capsule"))?;
        self.flush();
        Ok(())
    }
}
