//! Property checks of our own wire parsers, shared by the cargo-fuzz targets (`fuzz/`) and the
//! proptest tests below. Each check takes arbitrary bytes, derives its parameters (limits, how to
//! split the input into chunks) from the first of them, and panics when a property fails:
//!
//! - a small reference model, written from the RFC and independent of the parser, gives the
//!   verdict on the whole input, and the parser must agree (right error for truncated vs
//!   oversized input);
//! - incremental parsers give the same verdict whatever the chunk splits (chunking invariance);
//! - buffering stays bounded; encoders and decoders round-trip.
//!
//! Compiled for `cargo test` and with the `fuzzing` feature (which only `fuzz/` turns on); the
//! addon never contains it. To add a parser: a `pub fn` here, a target in `fuzz/fuzz_targets/`
//! calling it, and a proptest in `tests` below (see "Pending parsers").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Buf, Bytes, BytesMut};

use crate::ids::{SessionId, StreamId};
use crate::proto::frame_guard::{FrameGuard, Violation};
use crate::proto::qpack_fields;
use crate::proto::varint;
use crate::proto::wt_settings::{SettingsSniffer, MAX_SNIFFED};
use crate::proto::wt_token::{self, H3_TOKEN, TOKEN};
use crate::proto::wt_wire::{self, Capsule, CapsuleReader, StreamHeader};
use crate::transport::datagram::{self, DatagramRoutes, PrefixError, Target};

/// Reference varint decoder (RFC 9000 §16), deliberately separate from `proto::varint`:
/// the value and the bytes it took, or `None` when `b` ends first.
fn model_varint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(..len)?;
    let v = bytes[1..]
        .iter()
        .fold(u64::from(first & 0x3f), |v, &x| (v << 8) | u64::from(x));
    Some((v, len))
}

/// Split `data` into chunks whose sizes come from `seed` (1 to 64 bytes, some empty chunks).
fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed).wrapping_mul(0x9e37_79b9) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = match state % 8 {
            0 => 0,
            1..=4 => 1 + (state >> 8) as usize % 4,
            _ => 1 + (state >> 8) as usize % 64,
        }
        .min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// Split off `n` control bytes (zeros when the input is shorter).
fn control<const N: usize>(data: &[u8]) -> ([u8; N], &[u8]) {
    let mut ctl = [0u8; N];
    let n = data.len().min(N);
    ctl[..n].copy_from_slice(&data[..n]);
    (ctl, &data[n..])
}

// ---------------------------------------------------------------------------------------------
// varint (proto/varint.rs)

/// Decoding agrees with the model and consumes exactly the varint (nothing when truncated);
/// decoding does not depend on how the bytes are split across a chained `Buf`; every value
/// round-trips through `write` in `encoded_len` bytes, and values past 2^62 - 1 are refused.
pub fn varint(data: &[u8]) {
    let mut buf = data;
    let got = varint::read(&mut buf);
    match model_varint(data) {
        Some((v, len)) => {
            assert_eq!(got, Some(v));
            assert_eq!(buf.len(), data.len() - len, "consumed the varint exactly");
            assert_eq!(varint::len_from_first(data[0]), len);
            assert!(v <= varint::MAX);
            // Minimal encodings re-encode to the same bytes; longer ones still decode the same.
            let mut enc = BytesMut::new();
            varint::write(&mut enc, v).unwrap(); // ok: fuzz/test-only code (cfg(test) or feature "fuzzing"): a broken property must abort
            assert!(enc.len() <= len);
            if enc.len() == len {
                assert_eq!(&enc[..], &data[..len]);
            }
        }
        None => {
            assert_eq!(got, None);
            assert_eq!(buf.len(), data.len(), "a truncated varint consumes nothing");
        }
    }
    // The same bytes split across two chunks of a Buf chain.
    for split in 0..=data.len().min(9) {
        let mut chain = Buf::chain(&data[..split], &data[split..]);
        assert_eq!(varint::read(&mut chain), got, "split at {split}");
        assert_eq!(chain.remaining(), buf.len());
    }
    // Encoding: the first 8 bytes as a value.
    let (raw, _) = control::<8>(data);
    let x = u64::from_be_bytes(raw);
    let mut enc = BytesMut::new();
    match varint::write(&mut enc, x) {
        Ok(()) => {
            assert!(x <= varint::MAX);
            assert_eq!(enc.len(), varint::encoded_len(x));
            assert_eq!(varint::len_from_first(enc[0]), enc.len());
            assert_eq!(model_varint(&enc), Some((x, enc.len())));
            for cut in 0..enc.len() {
                assert_eq!(
                    varint::read(&mut &enc[..cut]),
                    None,
                    "prefix of {cut} bytes"
                );
            }
        }
        Err(_) => assert!(x > varint::MAX),
    }
    let mut small = BytesMut::new();
    varint::write_small(&mut small, x);
    assert_eq!(
        model_varint(&small),
        Some((x.min(varint::MAX), small.len()))
    );
}

// ---------------------------------------------------------------------------------------------
// Frame guard (proto/frame_guard.rs)

const FRAME_LIMITS: [u64; 8] = [0, 1, 63, 64, 1000, 16383, 16384, varint::MAX];

/// What the guard must say about a whole stream: `Some((violation, end of its frame header))`
/// for the first non-DATA frame claiming more than `limit`, `None` when the stream is fine so
/// far (including a stream that ends inside a frame header: that is "wait", not an error).
fn model_frame_guard(stream: &[u8], uni: bool, limit: u64) -> Option<(Violation, usize)> {
    let mut at = 0;
    let mut first = true;
    if uni {
        let (ty, n) = model_varint(stream)?;
        if ty != 0x00 {
            return None; // not the control stream: no framing to police
        }
        at = n;
        first = false;
    }
    loop {
        let (ty, tn) = model_varint(&stream[at..])?;
        if first && ty == 0x41 {
            return None; // WebTransport bidi stream
        }
        first = false;
        let (len, ln) = model_varint(&stream[at + tn..])?;
        at += tn + ln;
        if ty != 0x00 && len > limit {
            let v = Violation {
                frame_type: ty,
                claimed: len,
            };
            return Some((v, at));
        }
        at = at.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        if at >= stream.len() {
            return None;
        }
    }
}

/// Input: `[flags, limit index, chunk seed, stream...]`; flags bit 0 picks a control (uni)
/// stream over a request stream. The guard agrees with the model fed whole, chunked and byte by
/// byte; it reports a violation in the very chunk that completes the offending frame header, so
/// no byte of an oversized frame reaches h3; once violated it stays violated.
pub fn frame_guard(data: &[u8]) {
    let ([flags, limit, seed], stream) = control::<3>(data);
    let uni = flags & 1 == 1;
    let limit = FRAME_LIMITS[usize::from(limit) % FRAME_LIMITS.len()];
    let new = || {
        if uni {
            FrameGuard::uni(limit)
        } else {
            FrameGuard::request(limit)
        }
    };
    let want = model_frame_guard(stream, uni, limit);

    let mut whole = new();
    match &want {
        Some((v, _)) => assert_eq!(whole.observe(stream).as_ref(), Err(v)),
        None => assert_eq!(whole.observe(stream), Ok(())),
    }

    let byte_chunks: Vec<&[u8]> = stream.chunks(1).collect();
    for pieces in [chunks(stream, seed), byte_chunks] {
        let mut g = new();
        let mut at = 0;
        let mut verdict = None;
        for piece in pieces {
            if let Err(v) = g.observe(piece) {
                verdict = Some((v, at, at + piece.len()));
                break;
            }
            at += piece.len();
        }
        match (&want, verdict) {
            (None, None) => {}
            (Some((want, end)), Some((got, from, to))) => {
                assert_eq!(&got, want);
                assert!(
                    from < *end && *end <= to,
                    "header ends at {end}, caught in {from}..{to}"
                );
                assert!(g.observe(b"x").is_err(), "a violated guard stays violated");
            }
            (want, got) => panic!("chunked verdict {got:?}, whole stream {want:?}"), // ok: fuzz/test-only code (cfg(test) or feature "fuzzing"): a broken property must abort
        }
    }

    assert_eq!(FrameGuard::passthrough().observe(stream), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Capsules (proto/wt_wire.rs)

/// Most bytes a `CapsuleReader` may hold between pushes: a capsule header and the largest
/// capsule it buffers whole.
pub const MAX_CAPSULE_BUFFER: usize = 16 + wt_wire::MAX_CAPSULE as usize;

/// The capsules of a whole CONNECT-stream byte stream (RFC 9297 §3.2 framing), or `Err` for
/// one that breaks the drafts: a CLOSE/DRAIN capsule longer than `MAX_CAPSULE`, a complete
/// CLOSE shorter than its 4-byte code, a flow-control capsule (draft-15 §5.6) longer than 8
/// bytes or whose body is not exactly one varint, a WT_MAX_STREAM_DATA / WT_STREAM_DATA_BLOCKED
/// longer than 16. A stream ending inside a capsule is not an error.
fn model_capsules(mut s: &[u8]) -> Result<Vec<Capsule>, wt_wire::MalformedCapsule> {
    use wt_wire::*;
    let mut out = Vec::new();
    loop {
        let Some((ty, tn)) = model_varint(s) else {
            return Ok(out);
        };
        let Some((len, ln)) = model_varint(&s[tn..]) else {
            return Ok(out);
        };
        s = &s[tn + ln..];
        let flow = [
            MAX_DATA_CAPSULE,
            MAX_STREAMS_BIDI_CAPSULE,
            MAX_STREAMS_UNI_CAPSULE,
            DATA_BLOCKED_CAPSULE,
            STREAMS_BLOCKED_BIDI_CAPSULE,
            STREAMS_BLOCKED_UNI_CAPSULE,
        ];
        let forbidden = [MAX_STREAM_DATA_CAPSULE, STREAM_DATA_BLOCKED_CAPSULE];
        let max = if ty == CLOSE_CAPSULE || ty == DRAIN_CAPSULE {
            MAX_CAPSULE
        } else if flow.contains(&ty) {
            8
        } else if forbidden.contains(&ty) {
            16
        } else {
            let skip = usize::try_from(len).unwrap_or(usize::MAX).min(s.len());
            s = &s[skip..];
            continue;
        };
        if len > max {
            return Err(MalformedCapsule);
        }
        let len = len as usize;
        if s.len() < len {
            return Ok(out);
        }
        let (body, rest) = s.split_at(len);
        s = rest;
        let value = || match model_varint(body) {
            Some((v, n)) if n == body.len() => Ok(v),
            _ => Err(MalformedCapsule),
        };
        out.push(match ty {
            DRAIN_CAPSULE => Capsule::Drain,
            CLOSE_CAPSULE if len < 4 => return Err(MalformedCapsule),
            CLOSE_CAPSULE => Capsule::Close(
                u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                String::from_utf8_lossy(&body[4..]).into_owned(),
            ),
            MAX_DATA_CAPSULE => Capsule::MaxData(value()?),
            MAX_STREAMS_BIDI_CAPSULE => Capsule::MaxStreams {
                bidi: true,
                max: value()?,
            },
            MAX_STREAMS_UNI_CAPSULE => Capsule::MaxStreams {
                bidi: false,
                max: value()?,
            },
            t if forbidden.contains(&t) => Capsule::Forbidden,
            _ => {
                value()?;
                Capsule::Blocked
            }
        });
    }
}

/// Input: `[chunk seed, stream...]`. The reader agrees with the model fed whole and chunked
/// (chunked, the capsules returned before an error are a prefix of the model's), holds at most
/// `MAX_CAPSULE_BUFFER` bytes between pushes however long the capsules claimed, and a CLOSE
/// capsule we encode (the input as reason, cut to 1024 bytes on a char edge) reads back.
pub fn capsule(data: &[u8]) {
    let ([seed], stream) = control::<1>(data);
    let want = model_capsules(stream);

    let mut whole = CapsuleReader::default();
    assert_eq!(whole.push(Bytes::copy_from_slice(stream)), want);

    let mut r = CapsuleReader::default();
    let mut got = Vec::new();
    let mut failed = false;
    for piece in chunks(stream, seed) {
        match r.push(Bytes::copy_from_slice(piece)) {
            Ok(caps) => got.extend(caps),
            Err(_) => {
                failed = true;
                break;
            }
        }
        assert!(
            r.buffered() <= MAX_CAPSULE_BUFFER,
            "holds {} bytes",
            r.buffered()
        );
    }
    match want {
        Ok(caps) => {
            assert!(!failed, "chunked failed, whole parsed {caps:?}");
            assert_eq!(got, caps);
        }
        Err(_) => {
            assert!(failed, "whole failed, chunked parsed {got:?}");
            // (The model stops at its error; everything before it was valid.)
        }
    }

    // Round trip through the encoders.
    let reason = String::from_utf8_lossy(stream);
    let code = u32::from(seed).wrapping_mul(0x0101_0101);
    let mut wire = BytesMut::new();
    wire.extend_from_slice(&wt_wire::drain_capsule());
    wire.extend_from_slice(&wt_wire::close_capsule(code, &reason));
    let mut r = CapsuleReader::default();
    let mut got = Vec::new();
    for piece in chunks(&wire, seed.wrapping_add(1)) {
        got.extend(r.push(Bytes::copy_from_slice(piece)).unwrap()); // ok: fuzz/test-only code (cfg(test) or feature "fuzzing"): a broken property must abort
    }
    let [Capsule::Drain, Capsule::Close(c, text)] = &got[..] else {
        panic!("encoded DRAIN + CLOSE read back as {got:?}"); // ok: fuzz/test-only code (cfg(test) or feature "fuzzing"): a broken property must abort
    };
    assert_eq!(*c, code);
    assert!(reason.starts_with(text.as_str()));
    if reason.len() <= wt_wire::MAX_REASON {
        assert_eq!(text, &reason);
    } else {
        // Cut on the last char edge at or before 1024 bytes.
        assert!(text.len() <= wt_wire::MAX_REASON && text.len() + 4 > wt_wire::MAX_REASON);
    }
}

// ---------------------------------------------------------------------------------------------
// The draft-15 token swap and the peer SETTINGS sniffer (proto/wt_token.rs, proto/wt_settings.rs)

/// Field lines as (name, value).
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The fields of the HEADERS frame `s` starts with, and the bytes after it.
fn headers_frame(mut s: &[u8]) -> Option<(Fields, Vec<u8>)> {
    let (ty, n) = model_varint(s)?;
    s = &s[n..];
    let (len, n) = model_varint(s)?;
    s = &s[n..];
    let len = usize::try_from(len).ok().filter(|l| *l <= s.len())?;
    let fields = qpack_fields::decode(&s[..len]).ok()?;
    (ty == 1).then(|| {
        let fields = fields
            .iter()
            .map(|f| (f.name.to_vec(), f.value.to_vec()))
            .collect();
        (fields, s[len..].to_vec())
    })
}

/// Input: `[chunk seed, stream...]`. Nothing panics; a swap changes the first `:protocol` field
/// of that value and nothing else (other fields, their order, the bytes after the frame), and
/// swapping back restores the fields; the sniffer finds the same settings fed whole or chunk by
/// chunk (for streams within the 16 KiB it reads).
pub fn wt_token(data: &[u8]) {
    let ([seed], stream) = control::<1>(data);
    let _ = wt_token::first_frame(stream, 1 << 16);
    for (from, to) in [(H3_TOKEN, TOKEN), (TOKEN, H3_TOKEN)] {
        let Some(out) = wt_token::swap_token(stream, from, to) else {
            continue;
        };
        let (mut want, rest) = headers_frame(stream).expect("swapped an undecodable frame"); // ok: fuzz property, never in the addon; the panic is the finding
        let at = want
            .iter()
            .position(|(n, v)| n == b":protocol" && v == from)
            .expect("swapped without the token"); // ok: fuzz property, never in the addon; the panic is the finding
        want[at].1 = to.to_vec();
        let (got, got_rest) = headers_frame(&out).expect("swap output does not decode"); // ok: fuzz property, never in the addon; the panic is the finding
        assert_eq!(got, want);
        assert_eq!(got_rest, rest);
        let back = wt_token::swap_token(&out, to, from).expect("no swap back"); // ok: fuzz property, never in the addon; the panic is the finding
        want[at].1 = from.to_vec();
        assert_eq!(headers_frame(&back).map(|f| f.0), Some(want));
    }
    let mut whole = SettingsSniffer::default();
    let once = whole.observe(stream);
    let mut chunked = SettingsSniffer::default();
    let mut found = None;
    for piece in chunks(stream, seed) {
        if let Some(v) = chunked.observe(piece) {
            assert!(found.is_none(), "settings found twice");
            found = Some(v);
        }
    }
    if stream.len() <= MAX_SNIFFED {
        assert_eq!(found, once);
    }
}

// WebTransport stream headers (proto/wt_wire.rs, read by transport/classify.rs)

fn model_stream_header(buf: &[u8], wt_type: u64) -> StreamHeader {
    match model_varint(buf) {
        Some((ty, _)) if ty != wt_type => StreamHeader::Other,
        Some((_, tn)) => match model_varint(&buf[tn..]) {
            Some((session, sn)) => StreamHeader::WebTransport {
                session: SessionId(session),
                len: tn + sn,
            },
            None => StreamHeader::Incomplete,
        },
        None => StreamHeader::Incomplete,
    }
}

/// Input: `[flags, chunk seed, stream...]`; flags bit 0 picks a bidi stream (type 0x41) over a
/// uni one (0x54). The classification agrees with the model; "incomplete" is only ever said of
/// fewer than 16 bytes (so the classifier buffers at most 16 bytes plus one read); reading
/// chunk by chunk as `classify.rs` does, the first verdict is the whole stream's and never
/// changes with more bytes; headers we encode classify as themselves.
pub fn wt_stream_header(data: &[u8]) {
    let ([flags, seed], stream) = control::<2>(data);
    let bidi = flags & 1 == 1;
    let wt_type = if bidi {
        wt_wire::BIDI_TYPE
    } else {
        wt_wire::UNI_TYPE
    };
    let whole = wt_wire::parse_stream_header(stream, wt_type);
    assert_eq!(whole, model_stream_header(stream, wt_type));
    if whole == StreamHeader::Incomplete {
        assert!(stream.len() < 16, "undecided after {} bytes", stream.len());
    }

    // classify.rs's loop: accumulate chunks until the header decides.
    let mut buf = Vec::new();
    let mut decided = None;
    for piece in chunks(stream, seed) {
        buf.extend_from_slice(piece);
        match wt_wire::parse_stream_header(&buf, wt_type) {
            StreamHeader::Incomplete => {}
            verdict => {
                decided = Some(verdict);
                break;
            }
        }
    }
    match decided {
        Some(v) => assert_eq!(v, whole, "decided early on {} bytes", buf.len()),
        None => assert_eq!(whole, StreamHeader::Incomplete),
    }

    // Our own headers, for a session id taken from the input.
    let (raw, _) = control::<8>(stream);
    let session = u64::from_be_bytes(raw) >> (flags >> 2);
    match wt_wire::stream_header(bidi, SessionId(session)) {
        Ok(h) => {
            assert!(session <= varint::MAX);
            let mut wire = h.to_vec();
            wire.extend_from_slice(stream);
            assert_eq!(
                wt_wire::parse_stream_header(&wire, wt_type),
                StreamHeader::WebTransport {
                    session: SessionId(session),
                    len: h.len()
                }
            );
            for cut in 0..h.len() {
                assert_eq!(
                    wt_wire::parse_stream_header(&h[..cut], wt_type),
                    StreamHeader::Incomplete
                );
            }
            // The other direction's type is not a WebTransport stream of this kind.
            let other = if bidi {
                wt_wire::UNI_TYPE
            } else {
                wt_wire::BIDI_TYPE
            };
            assert_eq!(wt_wire::parse_stream_header(&h, other), StreamHeader::Other);
        }
        Err(_) => assert!(session > varint::MAX),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP datagram prefix (transport/datagram.rs)

/// Input: the datagram. `parse_prefix` agrees with the model: `Truncated` for an empty datagram
/// or one that ends inside the varint, `TooLarge` above 2^60 - 1, else the request stream
/// (a multiple of 4) and exactly the bytes after the prefix; `classify` routes by it; a prefix
/// we write reads back.
pub fn datagram_prefix(data: &[u8]) {
    let d = Bytes::copy_from_slice(data);
    let got = datagram::parse_prefix(&d);
    match model_varint(data) {
        None => assert_eq!(got, Err(PrefixError::Truncated)),
        Some((q, _)) if q > datagram::MAX_QUARTER => assert_eq!(got, Err(PrefixError::TooLarge(q))),
        Some((q, n)) => {
            let (stream_id, payload) = got.unwrap(); // ok: fuzz/test-only code (cfg(test) or feature "fuzzing"): a broken property must abort
            assert_eq!(stream_id, StreamId(q * 4));
            assert_eq!(stream_id.quarter(), q);
            assert_eq!(&payload[..], &data[n..]);

            let routes = DatagramRoutes::default();
            routes.add(stream_id, crate::ids::RequestId(1));
            let (target, p) = datagram::classify(true, &routes, &d);
            assert!(matches!(target, Target::H3 { stream_id: s, .. } if s == stream_id));
            assert_eq!(p, payload);
            routes.remove(stream_id);
            let (target, p) = datagram::classify(true, &routes, &d);
            assert!(matches!(target, Target::Quic));
            assert_eq!(p, d);
        }
    }
    let (target, p) = datagram::classify(false, &DatagramRoutes::default(), &d);
    assert!(matches!(target, Target::Quic));
    assert_eq!(p, d);

    // Round trip: the first 8 bytes as a stream id, the rest as payload.
    let (raw, rest) = control::<8>(data);
    let stream_id = StreamId(u64::from_be_bytes(raw));
    let mut wire = BytesMut::new();
    datagram::write_prefix(&mut wire, stream_id).unwrap(); // ok: fuzz/test-only code (cfg(test) or feature "fuzzing"): a broken property must abort
    wire.extend_from_slice(rest);
    let wire = wire.freeze();
    let quarter = stream_id.quarter();
    match datagram::parse_prefix(&wire) {
        Ok((s, p)) => {
            assert_eq!(s, StreamId(quarter * 4));
            assert_eq!(&p[..], rest);
        }
        Err(e) => assert_eq!(e, PrefixError::TooLarge(quarter)),
    }
}

// ---------------------------------------------------------------------------------------------
/// QPACK field sections (RFC 9204 §4.5, static table and literals only): never panics; each
/// decoded field took at least one input byte, and Huffman (at most 30 bits a byte, RFC 7541
/// Appendix B) plus static-table names bound what comes out.
pub fn qpack_fields(data: &[u8]) {
    use crate::proto::qpack_fields::decode;
    if let Ok(fields) = decode(data) {
        assert!(
            fields.len() <= data.len(),
            "{} fields from {} bytes",
            fields.len(),
            data.len()
        );
        let out: usize = fields.iter().map(|f| f.name.len() + f.value.len()).sum();
        assert!(
            out <= 8 * data.len() + 128 * fields.len(),
            "{out} bytes out of {} in",
            data.len()
        );
    }
}

/// The request-stream watcher (RFC 9114 §4.1.2): the same verdict fed whole, byte by byte and
/// in chunks cut where the input says.
pub fn request_rules(data: &[u8]) {
    use crate::proto::request_rules::{check_request_stream, RequestRules};
    let whole = check_request_stream(data).is_ok();
    let fed = |cuts: &mut dyn Iterator<Item = usize>| {
        let mut rules = RequestRules::new(data.len() as u64);
        let mut rest = data;
        for n in cuts {
            let (chunk, tail) = rest.split_at(n.min(rest.len()));
            if rules.observe(chunk).is_err() {
                return false;
            }
            rest = tail;
            if rest.is_empty() {
                break;
            }
        }
        rules.observe(rest).is_ok() && rules.finish().is_ok()
    };
    assert_eq!(fed(&mut std::iter::repeat(1)), whole, "byte by byte");
    let sizes: Vec<usize> = data.iter().map(|b| usize::from(b % 7) + 1).collect();
    assert_eq!(fed(&mut sizes.into_iter()), whole, "chunked");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut b = BytesMut::new();
        varint::write_small(&mut b, v);
        b.to_vec()
    }

    /// Values near the edges that parsers care about.
    fn interesting() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..70,
            Just(0x41),
            Just(0x54),
            Just(wt_wire::CLOSE_CAPSULE),
            Just(wt_wire::DRAIN_CAPSULE),
            Just(wt_wire::MAX_CAPSULE),
            Just(wt_wire::MAX_CAPSULE + 1),
            Just(16383),
            Just(16384),
            Just(1 << 30),
            Just(datagram::MAX_QUARTER),
            Just(datagram::MAX_QUARTER + 1),
            Just(varint::MAX),
            any::<u64>().prop_map(|v| v & varint::MAX),
        ]
    }

    /// A stream of (type, length, payload) records, the length mostly the payload's, sometimes
    /// an edge value, then mutated: a few bytes overwritten and the end cut, so inputs sit close
    /// to the valid ones.
    fn mutated_records(ctl: usize) -> impl Strategy<Value = Vec<u8>> {
        let record = (
            interesting(),
            0usize..40,
            any::<u8>(),
            prop::option::weighted(0.2, interesting()),
        );
        (
            vec(any::<u8>(), ctl),
            vec(record, 0..6),
            vec((any::<usize>(), any::<u8>()), 0..3),
            any::<usize>(),
        )
            .prop_map(|(ctl, records, edits, cut)| {
                let mut out = ctl;
                for (ty, len, fill, claim) in records {
                    out.extend(enc(ty));
                    out.extend(enc(claim.unwrap_or(len as u64)));
                    out.extend(std::iter::repeat_n(fill, len));
                }
                let n = out.len();
                for (at, b) in edits {
                    if n > 0 {
                        out[at % n] = b;
                    }
                }
                out.truncate(n - cut % (n / 4 + 1));
                out
            })
    }

    fn random() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..200)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn varint_random(data in random()) { varint(&data) }
        #[test]
        fn qpack_fields_random(data in random()) { qpack_fields(&data) }
        #[test]
        fn qpack_fields_section(body in vec(any::<u8>(), 0..96)) {
            // A zero Required Insert Count and Delta Base, then random representations.
            let mut data = vec![0, 0];
            data.extend(body);
            qpack_fields(&data)
        }
        #[test]
        fn request_rules_random(data in random()) { request_rules(&data) }
        #[test]
        fn request_rules_headers_then_data(fields in vec(any::<u8>(), 0..60), data in vec(any::<u8>(), 0..16)) {
            // HEADERS (RFC 9114 §7.2.2) around a section with a valid prefix, then one DATA frame.
            let mut s = vec![0x01, (fields.len() + 2) as u8, 0, 0];
            s.extend(&fields);
            s.extend([0x00, data.len() as u8]);
            s.extend(&data);
            request_rules(&s)
        }
        #[test]
        fn varint_values(v in interesting(), extra in vec(any::<u8>(), 0..4)) {
            let mut data = v.to_be_bytes().to_vec();
            data.extend(extra);
            varint(&data);
            varint(&enc(v));
        }

        #[test]
        fn frame_guard_random(data in random()) { frame_guard(&data) }
        #[test]
        fn frame_guard_mutated(data in mutated_records(3)) { frame_guard(&data) }

        #[test]
        fn frame_guard_at_the_limit(uni: bool, limit in 0..FRAME_LIMITS.len(), ty in 1u64..70, delta in 0u64..3) {
            // A non-DATA frame claiming limit - 1, limit or limit + 1 bytes.
            let claim = (FRAME_LIMITS[limit] + delta).saturating_sub(1).min(varint::MAX);
            let mut data = vec![u8::from(uni), limit as u8, 0];
            if uni {
                data.push(0x00);
            }
            data.extend(enc(ty));
            data.extend(enc(claim));
            frame_guard(&data);
        }

        #[test]
        fn capsule_random(data in random()) { capsule(&data) }
        #[test]
        fn capsule_mutated(data in mutated_records(1)) { capsule(&data) }

        #[test]
        fn wt_token_random(data in random()) { wt_token(&data) }
        #[test]
        fn wt_token_connect(seed: u8, proto in 0u8..3, extra in vec(any::<u8>(), 0..6)) {
            // A CONNECT HEADERS frame with one of the tokens (or another), literal fields.
            let value: &[u8] = [H3_TOKEN, TOKEN, b"connect-udp".as_slice()][proto as usize];
            // Prefix, then `:method CONNECT` indexed (static 15, RFC 9204 §4.5.2).
            let mut section = vec![0u8, 0, 0xc0 | 15];
            for (n, v) in [(&b":protocol"[..], value), (b":path", b"/wt")] {
                // §4.5.6 literal name, 3-bit length prefix (continued past 7).
                if n.len() < 7 {
                    section.push(0x20 | n.len() as u8);
                } else {
                    section.extend([0x20 | 7, (n.len() - 7) as u8]);
                }
                section.extend_from_slice(n);
                section.push(v.len() as u8);
                section.extend_from_slice(v);
            }
            let mut data = vec![seed, 0x01];
            data.extend(enc(section.len() as u64));
            data.extend(section);
            data.extend(extra);
            if proto < 2 {
                let to = if proto == 0 { TOKEN } else { H3_TOKEN };
                prop_assert!(wt_token::swap_token(&data[1..], value, to).is_some());
            }
            wt_token(&data);
        }

        #[test]
        fn wt_stream_header_random(data in random()) { wt_stream_header(&data) }
        #[test]
        fn wt_stream_header_mutated(data in mutated_records(2)) { wt_stream_header(&data) }

        #[test]
        fn datagram_prefix_random(data in random()) { datagram_prefix(&data) }
        #[test]
        fn datagram_prefix_values(q in interesting(), payload in vec(any::<u8>(), 0..8)) {
            let mut data = enc(q);
            data.extend(payload);
            datagram_prefix(&data);
        }
    }

    #[test]
    fn model_agrees_on_the_unit_test_cases() {
        // HEADERS claiming 2^40: caught at the end of its 9-byte header.
        let s = [0x01, 0xc0, 0, 0x01, 0, 0, 0, 0, 0];
        assert_eq!(
            model_frame_guard(&s, false, 1000),
            Some((
                Violation {
                    frame_type: 1,
                    claimed: 1 << 40
                },
                9
            ))
        );
        frame_guard(&[0, 4, 0, 0x01, 0xc0, 0, 0x01, 0, 0, 0, 0, 0]);
    }
}
