//! The napi edge for WebTransport sessions and streams, shared by servers and clients: both
//! hand JS a `NativeWt` over their [`Hub`], and index.js builds the W3C-shaped session on it.

use std::sync::Arc;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::napi_server::{to_js, JsBytes};
use crate::webtransport::{Dir, Hub, ReadOutcome};

/// How a session ended.
#[napi(object)]
pub struct SessionCloseInfo {
    pub close_code: u32,
    pub reason: String,
    /// False when the session was cut off (connection lost, stream reset, rejected).
    pub clean: bool,
}

#[napi]
pub struct NativeWt {
    hub: Arc<Hub>,
}

impl NativeWt {
    pub(crate) fn new(hub: Arc<Hub>) -> Self {
        NativeWt { hub }
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
        self.hub
            .accept(session as u64, dir(bidi))
            .await
            .map(|h| h as i64)
    }

    /// Open a stream on the session (its WebTransport header already written).
    #[napi]
    pub async fn open(&self, session: i64, bidi: bool) -> Result<i64> {
        let h = self
            .hub
            .open(session as u64, dir(bidi))
            .await
            .map_err(to_js)?;
        Ok(h as i64)
    }

    /// Every datagram waiting (at least one), or null once the session is closed.
    #[napi(ts_return_type = "Promise<Buffer[] | null>")]
    pub async fn read_datagrams(&self, session: i64) -> Result<Option<Vec<JsBytes>>> {
        let s = match self.hub.session(session as u64) {
            Ok(s) => s,
            Err(_) => return Ok(None),
        };
        Ok(s.pull_datagrams()
            .await
            .map(|v| v.into_iter().map(|d| JsBytes(vec![d])).collect()))
    }

    /// Send a datagram; a full send buffer drops it (counted). Throws
    /// ERR_H3_DATAGRAM_TOO_LARGE, ERR_H3_SESSION_CLOSED.
    #[napi]
    pub fn send_datagram(&self, session: i64, payload: Buffer) -> Result<()> {
        self.hub
            .send_datagram(session as u64, &payload)
            .map_err(to_js)
    }

    #[napi]
    pub fn max_datagram_size(&self, session: i64) -> Option<u32> {
        self.hub.max_datagram_size(session as u64).map(|n| n as u32)
    }

    /// Close the session with a code and reason (CLOSE_WEBTRANSPORT_SESSION).
    #[napi]
    pub fn close(&self, session: i64, code: u32, reason: String) {
        if let Ok(s) = self.hub.session(session as u64) {
            s.request_close(code, reason);
        }
    }

    /// Settles when the session ends; the session is forgotten then (call once per session).
    #[napi]
    pub async fn closed(&self, session: i64) -> Result<SessionCloseInfo> {
        let info = self.hub.closed(session as u64).await;
        Ok(SessionCloseInfo {
            close_code: info.code,
            reason: info.reason,
            clean: info.clean,
        })
    }

    /// True once the session is asked to drain; false when it closed without that.
    #[napi]
    pub async fn draining(&self, session: i64) -> Result<bool> {
        Ok(match self.hub.session(session as u64) {
            Ok(s) => s.wait_draining().await,
            Err(_) => false,
        })
    }

    /// Next chunk of a stream: a Buffer, null at the end, or a number when the peer reset it
    /// (its WebTransport error code, -1 when it carried none).
    #[napi(ts_return_type = "Promise<Buffer | null | number>")]
    pub async fn read(&self, stream: i64) -> Result<Either3<JsBytes, Null, i64>> {
        match self.hub.read(stream as u64).await.map_err(to_js)? {
            ReadOutcome::Data(pieces) => Ok(Either3::A(JsBytes(pieces))),
            ReadOutcome::End => Ok(Either3::B(Null)),
            ReadOutcome::Reset(code) => Ok(Either3::C(code.map_or(-1, i64::from))),
        }
    }

    /// Write a chunk; resolves once QUIC took it. Resolves null, or a number when the peer
    /// sent STOP_SENDING (its WebTransport error code, -1 when it carried none).
    #[napi(ts_return_type = "Promise<number | null>")]
    pub async fn write(&self, stream: i64, chunk: Buffer) -> Result<Option<i64>> {
        // Copied here, on the JS thread, so JS memory never reaches tokio.
        let chunk = Bytes::copy_from_slice(&chunk);
        let r = self.hub.write(stream as u64, chunk).await.map_err(to_js)?;
        Ok(r.map(|code| code.map_or(-1, i64::from)))
    }

    /// End the stream's sending half.
    #[napi]
    pub async fn finish(&self, stream: i64) -> Result<()> {
        self.hub.finish(stream as u64).await.map_err(to_js)
    }

    /// Reset the sending half with a WebTransport error code.
    #[napi]
    pub fn reset(&self, stream: i64, code: u32) {
        self.hub.reset(stream as u64, code)
    }

    /// Ask the peer to stop sending, with a WebTransport error code.
    #[napi]
    pub fn stop_sending(&self, stream: i64, code: u32) {
        self.hub.stop_sending(stream as u64, code)
    }

    /// Sessions and streams still tracked: `[sessions, streams]`.
    #[napi]
    pub fn counts(&self) -> Vec<u32> {
        let (a, b) = self.hub.counts();
        vec![a as u32, b as u32]
    }
}
