//! The napi edge for WebTransport sessions and streams, shared by servers and clients: both
//! hand JS a `NativeWt` over their [`HandleTable`], and index.js builds the W3C-shaped session
//! on it.

use std::sync::Arc;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::convert::{session_handle, stream_handle, to_js, JsBytes};
use super::datagram_batch::SessionDatagrams;
use super::wake::CellBatch;
use crate::ids::SessionHandle;
use crate::transport::classify::Dir;
use crate::webtransport::{
    DatagramWake, DatagramWant, HandleTable, PipeOutcome, ReadOutcome, WriteOutcome,
};

/// How a session ended.
#[napi(object)]
pub struct SessionCloseInfo {
    pub close_code: u32,
    pub reason: String,
    /// False when the session was cut off (connection lost, stream reset, rejected).
    pub clean: bool,
}

/// How a pipe between two streams ended: `end` (the source finished), `reset` (the peer reset
/// the source) or `stopped` (the peer stopped reading the destination), with the peer's
/// WebTransport error code where it gave one.
#[napi(object)]
pub struct PipeEnd {
    pub how: String,
    pub code: Option<u32>,
}

#[napi]
pub struct NativeWt {
    table: Arc<HandleTable>,
    /// Sessions whose datagrams JS waits for and that have some now (or ended).
    datagram_wakes: Arc<DatagramWakes>,
}

type DatagramWakes = CellBatch<SessionHandle>;

impl DatagramWake for DatagramWakes {
    fn ready(&self, session: SessionHandle) {
        self.push(session);
    }
}

fn session_cells(sessions: Vec<SessionHandle>) -> Vec<i64> {
    sessions.into_iter().map(|s| s.0 as i64).collect()
}

impl NativeWt {
    pub(crate) fn new(table: Arc<HandleTable>) -> Self {
        NativeWt {
            table,
            datagram_wakes: Arc::new(CellBatch::new(session_cells)),
        }
    }
}

fn dir(bidi: bool) -> Dir {
    if bidi {
        Dir::Bidi
    } else {
        Dir::Uni
    }
}

#[napi]
impl NativeWt {
    /// Next stream the peer opened (bidirectional or not), or null once the session is closed.
    #[napi]
    pub async fn accept(&self, session: i64, bidi: bool) -> Option<i64> {
        self.table
            .accept(session_handle(session), dir(bidi))
            .await
            .map(|h| h.0 as i64)
    }

    /// Open a stream on the session (its WebTransport header already written).
    #[napi]
    pub async fn open(&self, session: i64, bidi: bool) -> Result<i64> {
        let h = self
            .table
            .open(session_handle(session), dir(bidi))
            .await
            .map_err(to_js)?;
        Ok(h.0 as i64)
    }

    /// JS found no datagram for `session`: 0 when the `listenDatagrams` callback will name the
    /// session once one arrives (or it ends), 1 when some arrived meanwhile (take them now),
    /// 2 when the session is over. Replaces a native promise per wait.
    #[napi]
    pub fn want_datagrams(&self, session: i64) -> u32 {
        let Ok(s) = self.table.session(session_handle(session)) else {
            return 2;
        };
        match s.want_datagrams(self.datagram_wakes.clone()) {
            DatagramWant::Waiting => 0,
            DatagramWant::Ready => 1,
            DatagramWant::Closed => 2,
        }
    }

    /// Where `wantDatagrams` wake-ups go: `f(sessions)`, on the JS thread, with every session
    /// that has datagrams again (or ended) since JS last ran. Called once per NativeWt.
    #[napi(ts_args_type = "f: (sessions: number[]) => void")]
    pub fn listen_datagrams(&self, f: Function<'_, Vec<i64>, ()>) -> Result<()> {
        self.datagram_wakes.listen(f)
    }

    /// The datagrams waiting right now, packed as `[lengths, payloads]` (each payload's length,
    /// then the payloads back to back), or null when there are none (then `wantDatagrams`).
    #[napi(ts_return_type = "[Float64Array, Uint8Array] | null")]
    pub fn take_datagrams(&self, session: i64) -> Option<SessionDatagrams> {
        let s = self.table.session(session_handle(session)).ok()?;
        let v = s.take_datagrams();
        (!v.is_empty()).then(|| SessionDatagrams::new(v))
    }

    /// Send a datagram; a full send buffer drops it (counted). Throws
    /// ERR_H3_DATAGRAM_TOO_LARGE, ERR_H3_SESSION_CLOSED.
    #[napi]
    pub fn send_datagram(&self, session: i64, payload: Buffer) -> Result<()> {
        self.table
            .send_datagram(session_handle(session), &payload)
            .map_err(to_js)
    }

    /// Send the datagrams written in one JS turn: `payloads` back to back, cut at `lengths`.
    /// One that no longer fits is dropped and counted. Throws ERR_H3_SESSION_CLOSED.
    #[napi]
    pub fn send_datagrams(
        &self,
        session: i64,
        lengths: Float64Array,
        payloads: Buffer,
    ) -> Result<()> {
        self.table
            .send_datagrams(session_handle(session), &lengths, &payloads)
            .map_err(to_js)
    }

    #[napi]
    pub fn max_datagram_size(&self, session: i64) -> Option<u32> {
        self.table
            .max_datagram_size(session_handle(session))
            .map(|n| n as u32)
    }

    /// The dialect the session speaks: "draft02", "draft13" or "draft15" (null once released).
    #[napi]
    pub fn draft(&self, session: i64) -> Option<String> {
        self.table
            .session(session_handle(session))
            .ok()
            .map(|s| s.draft.name().to_string())
    }

    /// Close the session with a code and reason (CLOSE_WEBTRANSPORT_SESSION).
    #[napi]
    pub fn close(&self, session: i64, code: u32, reason: String) {
        if let Ok(s) = self.table.session(session_handle(session)) {
            s.request_close(code, reason);
        }
    }

    /// Settles when the session ends; the session is forgotten then (call once per session).
    #[napi]
    pub async fn closed(&self, session: i64) -> Result<SessionCloseInfo> {
        let info = self.table.closed(session_handle(session)).await;
        Ok(SessionCloseInfo {
            close_code: info.code,
            reason: info.reason,
            clean: info.clean,
        })
    }

    /// True once the session is asked to drain; false when it closed without that.
    #[napi]
    pub async fn draining(&self, session: i64) -> Result<bool> {
        Ok(match self.table.session(session_handle(session)) {
            Ok(s) => s.wait_draining().await,
            Err(_) => false,
        })
    }

    /// Next chunk of a stream: a Buffer, null at the end, or a number when the peer reset it
    /// (its WebTransport error code, -1 when it carried none).
    #[napi(ts_return_type = "Promise<Buffer | null | number>")]
    pub async fn read(&self, stream: i64) -> Result<Either3<JsBytes, Null, i64>> {
        match self
            .table
            .read(stream_handle(stream))
            .await
            .map_err(to_js)?
        {
            ReadOutcome::Data(pieces) => Ok(Either3::A(JsBytes(pieces))),
            ReadOutcome::End => Ok(Either3::B(Null)),
            ReadOutcome::Reset(code) => Ok(Either3::C(code.map_or(-1, i64::from))),
        }
    }

    /// Pipe what stream `from` receives into stream `to` (send half) until `from` ends, in Rust
    /// (`pipeTo` between two WebTransport streams of one server or client). Rejects when a
    /// stream or the session fails; neither stream is finished, reset or stopped here: JS does
    /// that as `pipeTo`'s options say.
    #[napi]
    pub async fn pipe(&self, from: i64, to: i64) -> Result<PipeEnd> {
        let out = self
            .table
            .pipe(stream_handle(from), stream_handle(to))
            .await
            .map_err(to_js)?;
        let (how, code) = match out {
            PipeOutcome::End => ("end", None),
            PipeOutcome::Reset(code) => ("reset", code),
            PipeOutcome::Stopped(code) => ("stopped", code),
        };
        Ok(PipeEnd {
            how: how.into(),
            code,
        })
    }

    /// Write a chunk; resolves once QUIC took it. Resolves null, or a number when the peer
    /// sent STOP_SENDING (its WebTransport error code, -1 when it carried none).
    #[napi(ts_return_type = "Promise<number | null>")]
    pub async fn write(&self, stream: i64, chunk: Buffer) -> Result<Option<i64>> {
        // Copied here, on the JS thread, so JS memory never reaches tokio.
        let chunk = Bytes::copy_from_slice(&chunk);
        match self
            .table
            .write(stream_handle(stream), chunk)
            .await
            .map_err(to_js)?
        {
            WriteOutcome::Written => Ok(None),
            WriteOutcome::Stopped(code) => Ok(Some(code.map_or(-1, i64::from))),
        }
    }

    /// End the stream's sending half.
    #[napi]
    pub async fn finish(&self, stream: i64) -> Result<()> {
        self.table
            .finish(stream_handle(stream))
            .await
            .map_err(to_js)
    }

    /// Reset the sending half with a WebTransport error code.
    #[napi]
    pub fn reset(&self, stream: i64, code: u32) {
        self.table.reset(stream_handle(stream), code)
    }

    /// Ask the peer to stop sending, with a WebTransport error code.
    #[napi]
    pub fn stop_sending(&self, stream: i64, code: u32) {
        self.table.stop_sending(stream_handle(stream), code)
    }

    /// Sessions and streams still tracked: `[sessions, streams]`.
    #[napi]
    pub fn counts(&self) -> Vec<u32> {
        let (a, b) = self.table.counts();
        vec![a as u32, b as u32]
    }
}
