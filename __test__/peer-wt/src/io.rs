//! QUIC under the sans-I/O HTTP/3 connection: every receive half is read by its own task that
//! forwards chunks to the driver; every send half is written by its own task fed in order.

use std::collections::HashMap;

use quinn::{RecvStream, SendStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// What the QUIC side hands the driver.
pub enum Input {
    Data { id: u64, data: Vec<u8>, fin: bool },
    Reset { id: u64, code: u64 },
    PeerBi(SendStream, RecvStream),
    PeerUni(RecvStream),
    Datagram(Vec<u8>),
    Gone(String),
    Tick,
}

pub fn stream_id(id: quinn::StreamId) -> u64 {
    quinn::VarInt::from(id).into_inner()
}

/// Forwards a receive half to the driver until its end or reset.
pub fn spawn_reader(mut recv: RecvStream, tx: UnboundedSender<Input>) {
    let id = stream_id(recv.id());
    tokio::spawn(async move {
        loop {
            match recv.read_chunk(64 * 1024, true).await {
                Ok(Some(chunk)) => {
                    let _ = tx.send(Input::Data {
                        id,
                        data: chunk.bytes.to_vec(),
                        fin: false,
                    });
                }
                Ok(None) => {
                    let _ = tx.send(Input::Data {
                        id,
                        data: Vec::new(),
                        fin: true,
                    });
                    return;
                }
                Err(quinn::ReadError::Reset(code)) => {
                    let _ = tx.send(Input::Reset {
                        id,
                        code: code.into_inner(),
                    });
                    return;
                }
                Err(_) => return,
            }
        }
    });
}

/// The connection-wide readers: peer-opened streams and datagrams.
pub fn spawn_acceptors(conn: quinn::Connection, tx: UnboundedSender<Input>) {
    let (c, t) = (conn.clone(), tx.clone());
    tokio::spawn(async move {
        loop {
            match c.accept_bi().await {
                Ok((s, r)) => {
                    let _ = t.send(Input::PeerBi(s, r));
                }
                Err(e) => {
                    let _ = t.send(Input::Gone(e.to_string()));
                    return;
                }
            }
        }
    });
    let (c, t) = (conn.clone(), tx.clone());
    tokio::spawn(async move {
        while let Ok(r) = c.accept_uni().await {
            let _ = t.send(Input::PeerUni(r));
        }
    });
    tokio::spawn(async move {
        while let Ok(d) = conn.read_datagram().await {
            let _ = tx.send(Input::Datagram(d.to_vec()));
        }
    });
}

/// Ordered writers, one per send half, keyed by stream id.
#[derive(Default)]
pub struct Writers {
    idle: HashMap<u64, SendStream>,
    running: HashMap<u64, UnboundedSender<(Vec<u8>, bool)>>,
}

impl Writers {
    /// A send half nobody writes yet (a peer-opened bidi stream's).
    pub fn park(&mut self, send: SendStream) {
        self.idle.insert(stream_id(send.id()), send);
    }

    /// Queues bytes (and the FIN) on a stream; false when the stream is unknown.
    pub fn write(&mut self, id: u64, data: Vec<u8>, fin: bool) -> bool {
        if !self.running.contains_key(&id) {
            let Some(send) = self.idle.remove(&id) else {
                return false;
            };
            self.start(send);
        }
        match self.running.get(&id) {
            Some(tx) => tx.send((data, fin)).is_ok(),
            None => false,
        }
    }

    pub fn start(&mut self, mut send: SendStream) {
        let id = stream_id(send.id());
        let (tx, mut rx) = unbounded_channel::<(Vec<u8>, bool)>();
        self.running.insert(id, tx);
        tokio::spawn(async move {
            while let Some((data, fin)) = rx.recv().await {
                if send.write_all(&data).await.is_err() {
                    return;
                }
                if fin {
                    let _ = send.finish();
                    let _ = send.stopped().await;
                    return;
                }
            }
        });
    }
}
