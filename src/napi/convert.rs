//! Conversions between JS values and ours, in one place: errors, bytes (every unsafe N-API
//! call of the crate), header lists, PEM sources, peer addresses.

use std::net::SocketAddr;

use bytes::Bytes;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::H3Error;
use crate::ids::{ConnectionId, RequestId, SessionHandle, StreamHandle, StreamId};
use crate::tls::PemSource;

/// Converts an internal error into a JS error whose message starts with `[CODE] `;
/// index.js lifts that prefix into `err.code`. The only place errors cross into JS.
pub fn to_js(e: H3Error) -> Error {
    Error::new(Status::GenericFailure, error_message(&e))
}

/// The message of [`to_js`]'s error, for errors that reach JS as plain data (batches).
pub fn error_message(e: &H3Error) -> String {
    format!("[{}] {e}", e.code())
}

/// JS numbers name our ids; these are the only places they become typed again.
pub fn request_id(v: i64) -> RequestId {
    RequestId(v as u64)
}

pub fn connection_id(v: i64) -> ConnectionId {
    ConnectionId(v as u64)
}

/// A stream id JS passes where negative means "none" (a bare QUIC datagram).
pub fn stream_id(v: i64) -> Option<StreamId> {
    (v >= 0).then_some(StreamId(v as u64))
}

pub fn session_handle(v: i64) -> SessionHandle {
    SessionHandle(v as u64)
}

pub fn stream_handle(v: i64) -> StreamHandle {
    StreamHandle(v as u64)
}

/// Bytes copied into a JS-heap Buffer when they reach JS. An external buffer over Rust memory
/// would be zero-copy, but V8 does not count it towards GC pressure, so a fast upload would pile
/// up garbage buffers faster than they are collected.
pub struct JsBytes(pub Vec<Bytes>);

impl ToNapiValue for JsBytes {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let len: usize = val.0.iter().map(|b| b.len()).sum();
        let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
        let mut out = std::ptr::null_mut();
        let status = unsafe { napi::sys::napi_create_buffer(env, len, &mut data, &mut out) };
        if status != napi::sys::Status::napi_ok || (data.is_null() && len > 0) {
            return Err(to_js(H3Error::BufferAlloc));
        }
        let mut at = 0;
        for piece in &val.0 {
            // SAFETY: `data` points at `len` writable bytes owned by the new Buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    piece.as_ptr(),
                    (data as *mut u8).add(at),
                    piece.len(),
                )
            };
            at += piece.len();
        }
        // SAFETY: on the JS thread (a conversion), `out` was just created.
        unsafe { super::gc_hint::hint_garbage(env, out, len) };
        Ok(out)
    }
}

#[napi(object)]
pub struct PeerAddress {
    pub address: String,
    pub port: u32,
    pub family: String,
}

/// A socket address as JS describes peers (v4-mapped IPv6 shown as IPv4).
pub fn peer(addr: SocketAddr) -> PeerAddress {
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(std::net::IpAddr::V4)
            .unwrap_or(addr.ip()),
        ip => ip,
    };
    PeerAddress {
        address: ip.to_string(),
        port: addr.port().into(),
        family: if ip.is_ipv4() { "IPv4" } else { "IPv6" }.into(),
    }
}

pub fn pem(src: Either<String, Buffer>) -> PemSource {
    match src {
        Either::A(s) => PemSource::Text(s),
        Either::B(b) => PemSource::Bytes(b.to_vec()),
    }
}

/// Flat `[name, value, ...]` from JS into pairs.
pub fn header_pairs(flat: Vec<String>) -> Vec<(String, String)> {
    let mut it = flat.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// Body sent from JS: a string (UTF-8) or bytes. Copied into `Bytes` here, on the JS thread,
/// so JS-owned memory never reaches tokio.
pub fn body_bytes(body: Either<String, Buffer>) -> Bytes {
    match body {
        Either::A(s) => Bytes::from(s),
        Either::B(b) => Bytes::copy_from_slice(&b),
    }
}

/// A JS string, converted with one N-API call when it is short (header names and values
/// mostly are): napi-rs's `String` asks for the length first, then copies, two calls each.
pub fn short_string(value: Unknown<'_>) -> Result<String> {
    const ROOM: usize = 128;
    let (env, raw) = (value.env(), value.raw());
    let mut buf = [0u8; ROOM];
    let mut len = 0usize;
    // SAFETY: `value` is a live argument of the current call, on the JS thread; the call writes
    // at most ROOM bytes (NUL included) into `buf`.
    let status = unsafe {
        napi::sys::napi_get_value_string_utf8(env, raw, buf.as_mut_ptr().cast(), ROOM, &mut len)
    };
    if status != napi::sys::Status::napi_ok {
        return Err(Error::new(Status::StringExpected, "expected a string"));
    }
    // The engine cuts a string too long for `buf` before the first character that does not
    // fit, which leaves up to 3 bytes of room unused: only a string that left 4 or more bytes
    // (at most 4 per character, NUL aside) is known whole. Longer ones are converted whole.
    if len + 4 < ROOM {
        if let Ok(s) = std::str::from_utf8(&buf[..len]) {
            return Ok(s.to_owned());
        }
    }
    // SAFETY: as above.
    unsafe { String::from_napi_value(env, raw) }
}

/// A body cell of a batch: null/undefined, else as [`copy_bytes`].
pub fn body_cell(body: Unknown<'_>) -> Result<Option<Bytes>> {
    Ok(match body.get_type()? {
        ValueType::Null | ValueType::Undefined => None,
        ty => Some(copy_typed(body, ty)?),
    })
}

/// A JS string (UTF-8) or Buffer, copied into `Bytes`. Dispatches on the value's type and
/// borrows the bytes only for the copy: `Either<String, Buffer>` first tries a string (a failed
/// try formats an error) and takes a reference on every Buffer (perf, Node 24: ~3 % of the JS
/// thread in `respondBatch`). A large copied Buffer is garbage to JS from here on (gc_hint).
pub fn copy_bytes(value: Unknown<'_>) -> Result<Bytes> {
    let ty = value.get_type()?;
    copy_typed(value, ty)
}

fn copy_typed(value: Unknown<'_>, ty: ValueType) -> Result<Bytes> {
    let (env, raw) = (value.env(), value.raw());
    // SAFETY: `value` is a live argument of the current call, on the JS thread.
    unsafe {
        if ty == ValueType::String {
            return Ok(Bytes::from(String::from_napi_value(env, raw)?));
        }
        let copy = Bytes::copy_from_slice(&BufferSlice::from_napi_value(env, raw)?);
        super::gc_hint::hint_garbage(env, raw, copy.len());
        Ok(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_pairs_drop_an_odd_tail() {
        let pairs = header_pairs(vec!["a".into(), "1".into(), "b".into()]);
        assert_eq!(pairs, vec![("a".to_string(), "1".to_string())]);
    }
}
