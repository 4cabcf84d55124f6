//! Datagrams to and from JS in packed batches. Received datagrams wait here until the JS thread
//! runs; one threadsafe call then hands over all of them as two values: a `Float64Array` of
//! [`DATAGRAM_BATCH_FIELDS`] numbers per datagram (`payload` is the payload's length) and one
//! Buffer holding the payloads back to back. The replies JS sends while handling a batch come
//! back the same way, in one call. A batch therefore costs a handful of N-API calls and two
//! copies of its bytes, however many datagrams it holds.

use std::sync::Mutex;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::convert::{connection_id, stream_id, to_js};
use super::wake::runtime;
use crate::error::H3Error;
use crate::ids::ConnectionId;
use crate::server::ServerState;
use crate::sync::lock;
use crate::transport::datagram::{Datagram, Outbox, Target, MAX_PENDING_TO_JS};

/// JS names of the numbers of one received datagram, in order. requestId and streamId are -1
/// for the server-level `quicDatagram` handler; payload is the byte length.
pub const DATAGRAM_BATCH_FIELDS: &[&str] = &["connectionId", "requestId", "streamId", "payload"];
const STRIDE: usize = DATAGRAM_BATCH_FIELDS.len();

/// Numbers of one reply in a send batch: connection id, stream id (-1: a bare QUIC
/// datagram), payload length.
const SEND_STRIDE: usize = 3;

/// Received datagrams, packed as JS will read them.
#[derive(Default)]
pub struct DatagramPack {
    meta: Vec<f64>,
    payloads: Vec<u8>,
}

impl DatagramPack {
    /// A session's datagrams: `meta` holds only each payload's length (JS knows the session).
    fn payloads_only(list: Vec<Bytes>) -> Self {
        let total = list.iter().map(|d| d.len()).sum();
        let mut pack = DatagramPack {
            meta: Vec::with_capacity(list.len()),
            payloads: Vec::with_capacity(total),
        };
        for d in list {
            pack.meta.push(d.len() as f64);
            pack.payloads.extend_from_slice(&d);
        }
        pack
    }

    fn len(&self) -> usize {
        self.meta.len() / STRIDE
    }

    fn push(&mut self, d: Datagram) {
        let (request_id, stream_id) = match d.target {
            Target::H3 {
                request_id,
                stream_id,
            } => (request_id.0 as f64, stream_id.0 as f64),
            // Session datagrams go to the session's queue, never through this batch.
            Target::Session(_) | Target::Quic => (-1.0, -1.0),
        };
        self.meta.extend([
            d.conn_id.0 as f64,
            request_id,
            stream_id,
            d.payload.len() as f64,
        ]);
        self.payloads.extend_from_slice(&d.payload);
    }
}

/// A new `ArrayBuffer` holding a copy of `bytes`.
unsafe fn array_buffer(env: napi::sys::napi_env, bytes: &[u8]) -> Result<napi::sys::napi_value> {
    let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
    let mut ab = std::ptr::null_mut();
    // SAFETY: plain N-API call on the JS thread; checked below.
    let status =
        unsafe { napi::sys::napi_create_arraybuffer(env, bytes.len(), &mut data, &mut ab) };
    if status != napi::sys::Status::napi_ok || (data.is_null() && !bytes.is_empty()) {
        return Err(to_js(H3Error::BufferAlloc));
    }
    if !bytes.is_empty() {
        // SAFETY: `data` points at `bytes.len()` writable bytes owned by the new ArrayBuffer.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), data as *mut u8, bytes.len()) };
    }
    Ok(ab)
}

impl ToNapiValue for DatagramPack {
    /// `[Float64Array meta, Buffer payloads]`.
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        // SAFETY: called by napi-rs on the JS thread.
        unsafe { pack_to_js(env, &val, Payloads::Buffer) }
    }
}

/// A session's datagrams (see [`DatagramPack::payloads_only`]), handed to JS as
/// `[Float64Array lengths, Uint8Array payloads]`. JS copies each datagram out with `slice`; a
/// plain Uint8Array spares it reading a native Buffer's `.buffer`, which costs V8 more than
/// the copies.
pub struct SessionDatagrams(DatagramPack);

impl SessionDatagrams {
    pub fn new(list: Vec<Bytes>) -> Self {
        SessionDatagrams(DatagramPack::payloads_only(list))
    }
}

impl ToNapiValue for SessionDatagrams {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        // SAFETY: called by napi-rs on the JS thread.
        unsafe { pack_to_js(env, &val.0, Payloads::Uint8Array) }
    }
}

/// What JS gets the payloads of a pack as.
enum Payloads {
    Buffer,
    Uint8Array,
}

/// `[Float64Array meta, payloads]`, both holding copies of the pack's bytes.
///
/// # Safety
/// On the JS thread, with `env` the current environment.
unsafe fn pack_to_js(
    env: napi::sys::napi_env,
    pack: &DatagramPack,
    kind: Payloads,
) -> Result<napi::sys::napi_value> {
    // SAFETY (whole block): N-API calls on the JS thread with values created just here.
    unsafe {
        let meta_bytes = std::slice::from_raw_parts(
            pack.meta.as_ptr() as *const u8,
            std::mem::size_of_val(pack.meta.as_slice()),
        );
        let meta = typed_array(
            env,
            meta_bytes,
            napi::sys::TypedarrayType::float64_array,
            pack.meta.len(),
        )?;
        let payloads = match kind {
            Payloads::Uint8Array => typed_array(
                env,
                &pack.payloads,
                napi::sys::TypedarrayType::uint8_array,
                pack.payloads.len(),
            )?,
            Payloads::Buffer => {
                let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
                let mut buf = std::ptr::null_mut();
                let len = pack.payloads.len();
                check(napi::sys::napi_create_buffer(env, len, &mut data, &mut buf))?;
                if len > 0 {
                    if data.is_null() {
                        return Err(to_js(H3Error::BufferAlloc));
                    }
                    std::ptr::copy_nonoverlapping(pack.payloads.as_ptr(), data as *mut u8, len);
                }
                buf
            }
        };
        let mut out = std::ptr::null_mut();
        check(napi::sys::napi_create_array_with_length(env, 2, &mut out))?;
        check(napi::sys::napi_set_element(env, out, 0, meta))?;
        check(napi::sys::napi_set_element(env, out, 1, payloads))?;
        Ok(out)
    }
}

/// A typed array of `kind` and `elements` elements over a new ArrayBuffer holding a copy of
/// `bytes` (exactly that many elements' worth).
///
/// # Safety
/// On the JS thread, with `env` the current environment.
unsafe fn typed_array(
    env: napi::sys::napi_env,
    bytes: &[u8],
    kind: napi::sys::napi_typedarray_type,
    elements: usize,
) -> Result<napi::sys::napi_value> {
    // SAFETY: as the caller promises; `ab` was just created.
    unsafe {
        let ab = array_buffer(env, bytes)?;
        let mut out = std::ptr::null_mut();
        check(napi::sys::napi_create_typedarray(
            env, kind, elements, ab, 0, &mut out,
        ))?;
        Ok(out)
    }
}

fn check(status: napi::sys::napi_status) -> Result<()> {
    if status == napi::sys::Status::napi_ok {
        Ok(())
    } else {
        Err(to_js(H3Error::BufferAlloc))
    }
}

/// Datagrams waiting for the JS thread (at most [`MAX_PENDING_TO_JS`]).
#[derive(Default)]
pub struct DatagramQueue(Mutex<DatagramPack>);

impl DatagramQueue {
    /// `Some(true)` when the queue was empty (a JS call must be scheduled); `None` when full
    /// (the datagram is dropped; the caller counts it).
    pub fn push(&self, d: Datagram) -> Option<bool> {
        let mut q = lock(&self.0);
        if q.len() >= MAX_PENDING_TO_JS {
            return None;
        }
        q.push(d);
        Some(q.len() == 1)
    }

    pub fn take(&self) -> DatagramPack {
        std::mem::take(&mut *lock(&self.0))
    }
}

/// Send the replies of one JS batch: [`SEND_STRIDE`] numbers per reply in `meta`, the payloads
/// back to back in `payloads`. JS checked the sizes; a reply that no longer fits, or whose
/// connection is gone, is dropped and counted.
pub fn send_batch(server: &ServerState, meta: &[f64], payloads: &[u8]) {
    // One copy of all payloads; each bare datagram is then a slice of it.
    let all = Bytes::copy_from_slice(payloads);
    let mut out = Outbox::default();
    let mut conn: Option<(ConnectionId, Option<quinn::Connection>)> = None;
    let mut at = 0usize;
    for m in meta.chunks_exact(SEND_STRIDE) {
        let (c, s, len) = (
            connection_id(m[0] as i64),
            stream_id(m[1] as i64),
            m[2] as usize,
        );
        let Some(payload) = all
            .get(at..at.saturating_add(len))
            .map(|_| all.slice(at..at + len))
        else {
            out.refuse();
            break;
        };
        at += len;
        if conn.as_ref().is_none_or(|(id, _)| *id != c) {
            conn = Some((c, server.conn(c)));
        }
        match conn.as_ref().and_then(|(_, q)| q.as_ref()) {
            Some(quic) => out.push(quic, s, payload),
            None => out.refuse(),
        }
    }
    out.send(runtime().as_ref(), server.stats.clone());
}

/// Names of the numbers of one datagram in the batches `createNativeServer`'s `onDatagram`
/// gets (the first of its two values).
#[napi]
pub fn datagram_batch_fields() -> Vec<String> {
    DATAGRAM_BATCH_FIELDS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{RequestId, StreamId};

    #[test]
    fn a_pack_follows_the_field_names() {
        let q = DatagramQueue::default();
        let d = |conn, target, p: &'static [u8]| Datagram {
            conn_id: ConnectionId(conn),
            target,
            payload: Bytes::from_static(p),
        };
        assert_eq!(q.push(d(4, Target::Quic, b"ab")), Some(true));
        let h3 = Target::H3 {
            request_id: RequestId(6),
            stream_id: StreamId(12),
        };
        assert_eq!(q.push(d(5, h3, b"xyz")), Some(false));
        let p = q.take();
        assert_eq!(p.meta, [4.0, -1.0, -1.0, 2.0, 5.0, 6.0, 12.0, 3.0]);
        assert_eq!(p.payloads, b"abxyz");
        assert_eq!(q.take().len(), 0);
    }
}
