//! The client's 0-RTT figures at the napi edge (`client.earlyData`).

use std::sync::atomic::Ordering::Relaxed;

use napi_derive::napi;

use super::client::NativeClient;

/// How this client's 0-RTT attempts went, counted by connection.
#[napi(object, object_from_js = false)]
pub struct NativeEarlyData {
    /// Connections that resumed a session allowing 0-RTT and sent requests before the
    /// handshake completed.
    pub attempted: f64,
    /// Of those, the ones whose early data the server accepted.
    pub accepted: f64,
    /// The ones whose early data the server refused (the connection was replaced).
    pub rejected: f64,
}

#[napi]
impl NativeClient {
    #[napi]
    pub fn early_data(&self) -> NativeEarlyData {
        let c = &self.inner.early;
        NativeEarlyData {
            attempted: c.attempted.load(Relaxed) as f64,
            accepted: c.accepted.load(Relaxed) as f64,
            rejected: c.rejected.load(Relaxed) as f64,
        }
    }
}
