//! WebTransport over HTTP/3 wire formats (draft-ietf-webtrans-http3-02, the dialect browsers
//! speak): stream headers, the session capsules (RFC 9297 §3.2 framing) and the mapping between
//! WebTransport application error codes and HTTP/3 error codes.

use bytes::{Buf, Bytes, BytesMut};

use super::varint;
use crate::error::Result;
use crate::ids::SessionId;

/// First byte-pair of a WebTransport bidirectional stream (frame type 0x41).
pub const BIDI_TYPE: u64 = 0x41;
/// Stream type of a WebTransport unidirectional stream.
pub const UNI_TYPE: u64 = 0x54;
/// CLOSE_WEBTRANSPORT_SESSION capsule type.
pub const CLOSE_CAPSULE: u64 = 0x2843;
/// DRAIN_WEBTRANSPORT_SESSION capsule type.
pub const DRAIN_CAPSULE: u64 = 0x78ae;
/// Streams of a session that is gone are reset / stopped with this code.
pub const SESSION_GONE: u64 = 0x170d_7b68;
/// A stream named a session we do not have (or whose queue is full).
pub const BUFFERED_STREAM_REJECTED: u64 = 0x3994_bd84;
const APP_CODE_FIRST: u64 = 0x52e4_a40f_a8db;
const APP_CODE_LAST: u64 = 0x52e5_ac98_3162;
/// draft-15 §5.6.4: WT_MAX_DATA capsule type.
pub const MAX_DATA_CAPSULE: u64 = 0x190b_4d3d;
/// draft-15 §5.6.2: WT_MAX_STREAMS, bidirectional then unidirectional.
pub const MAX_STREAMS_BIDI_CAPSULE: u64 = 0x190b_4d3f;
pub const MAX_STREAMS_UNI_CAPSULE: u64 = 0x190b_4d40;
/// draft-15 §5.6.5 WT_DATA_BLOCKED and §5.6.3 WT_STREAMS_BLOCKED (bidi, uni): advisory.
pub const DATA_BLOCKED_CAPSULE: u64 = 0x190b_4d41;
pub const STREAMS_BLOCKED_BIDI_CAPSULE: u64 = 0x190b_4d43;
pub const STREAMS_BLOCKED_UNI_CAPSULE: u64 = 0x190b_4d44;
/// WT_MAX_STREAM_DATA and WT_STREAM_DATA_BLOCKED of the HTTP/2 draft: draft-15 §5.4 "Endpoints
/// MUST treat receipt of a WT_MAX_STREAM_DATA or a WT_STREAM_DATA_BLOCKED capsule as a session
/// error."
pub const MAX_STREAM_DATA_CAPSULE: u64 = 0x190b_4d3e;
pub const STREAM_DATA_BLOCKED_CAPSULE: u64 = 0x190b_4d42;
/// draft-15 §9.5: WT_FLOW_CONTROL_ERROR, the HTTP/3 error a session ends with when its peer
/// breaks the session flow-control rules.
pub const FLOW_CONTROL_ERROR: u64 = 0x045d_4487;
/// Longest close reason the draft allows.
pub const MAX_REASON: usize = 1024;
/// Capsules we buffer whole (CLOSE is at most 4 + 1024 bytes); larger unknown ones are skipped.
pub const MAX_CAPSULE: u64 = 4 + MAX_REASON as u64;

/// HTTP/3 error code carrying WebTransport application error `n` (draft-ietf-webtrans-http3-02
/// §4.3: the 0x52e4a40fa8db range, skipping the 0x1f * N + 0x21 grease points).
pub fn to_http_code(n: u32) -> u64 {
    APP_CODE_FIRST + u64::from(n) + u64::from(n) / 0x1e
}

/// The WebTransport application error code inside an HTTP/3 error code, if it carries one.
pub fn from_http_code(h: u64) -> Option<u32> {
    if !(APP_CODE_FIRST..=APP_CODE_LAST).contains(&h) || h.wrapping_sub(0x21).is_multiple_of(0x1f) {
        return None;
    }
    let shifted = h - APP_CODE_FIRST;
    u32::try_from(shifted - shifted / 0x1f).ok()
}

/// Whether `frame` (the start of one HTTP/3 frame) has a reserved type (RFC 9114 §7.2.8: "Frame
/// types of the format 0x1f * N + 0x21 ... are reserved"). h3 ends the first request stream of
/// each connection with one; on a CONNECT stream it would follow our WT_CLOSE_SESSION, which
/// draft-ietf-webtrans-http3-15 §6 forbids: "An endpoint that sends a WT_CLOSE_SESSION capsule
/// MUST immediately send a FIN", and "If any additional stream data is received on the CONNECT
/// stream after receiving a WT_CLOSE_SESSION capsule, the stream MUST be reset with code
/// H3_MESSAGE_ERROR". So our QUIC adapter leaves these out of request streams.
pub fn is_reserved_frame(mut frame: &[u8]) -> bool {
    varint::read(&mut frame).is_some_and(|ty| ty >= 0x21 && (ty - 0x21).is_multiple_of(0x1f))
}

/// The header a stream we open starts with.
/// draft-ietf-webtrans-http3-02 §4.1 (unidirectional: 0x54, session id) and §4.2
/// (bidirectional: 0x41, session id).
pub fn stream_header(bidi: bool, session: SessionId) -> Result<Bytes> {
    let mut b = BytesMut::with_capacity(10);
    varint::write_small(&mut b, if bidi { BIDI_TYPE } else { UNI_TYPE });
    varint::write(&mut b, session.0)?;
    Ok(b.freeze())
}

/// What the first bytes of a peer stream say.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamHeader {
    /// A WebTransport stream of this session; its header took `len` bytes.
    WebTransport { session: SessionId, len: usize },
    /// Not a WebTransport stream (another type, or no header within 16 bytes).
    Other,
    /// Too few bytes yet to tell.
    Incomplete,
}

/// Parse the header a peer stream starts with (`wt_type`: [`BIDI_TYPE`] or [`UNI_TYPE`]).
pub fn parse_stream_header(buf: &[u8], wt_type: u64) -> StreamHeader {
    let mut peek = buf;
    match varint::read(&mut peek) {
        Some(ty) if ty != wt_type => return StreamHeader::Other,
        Some(_) => {
            if let Some(session) = varint::read(&mut peek) {
                return StreamHeader::WebTransport {
                    session: SessionId(session),
                    len: buf.len() - peek.len(),
                };
            }
        }
        None => {}
    }
    // A header is at most 16 bytes: more means it was not one.
    if buf.len() > 16 {
        StreamHeader::Other
    } else {
        StreamHeader::Incomplete
    }
}

/// CLOSE_WEBTRANSPORT_SESSION capsule (draft-ietf-webtrans-http3-02 §5, RFC 9297 §3.2 framing) (reason cut to the draft's 1024 bytes, on a char edge).
pub fn close_capsule(code: u32, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut b = BytesMut::with_capacity(16 + reason.len());
    varint::write_small(&mut b, CLOSE_CAPSULE);
    varint::write_small(&mut b, 4 + reason.len() as u64);
    b.extend_from_slice(&code.to_be_bytes());
    b.extend_from_slice(reason);
    b.freeze()
}

/// DRAIN_WEBTRANSPORT_SESSION capsule (draft-ietf-webtrans-http3-02 §4.6).
pub fn drain_capsule() -> Bytes {
    let mut b = BytesMut::with_capacity(5);
    varint::write_small(&mut b, DRAIN_CAPSULE);
    varint::write_small(&mut b, 0);
    b.freeze()
}

/// A flow-control capsule carrying one value (draft-15 §5.6.2 and §5.6.4).
pub fn flow_capsule(ty: u64, value: u64) -> Result<Bytes> {
    let mut b = BytesMut::with_capacity(16);
    varint::write(&mut b, ty)?;
    varint::write_small(&mut b, varint::encoded_len(value) as u64);
    varint::write(&mut b, value)?;
    Ok(b.freeze())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Capsule {
    Close(u32, String),
    Drain,
    /// WT_MAX_DATA: the peer's new limit on the stream body bytes we send.
    MaxData(u64),
    /// WT_MAX_STREAMS: the peer's new limit on the streams we open (bidi or uni).
    MaxStreams {
        bidi: bool,
        max: u64,
    },
    /// WT_DATA_BLOCKED / WT_STREAMS_BLOCKED: the peer is waiting for credit.
    Blocked,
    /// A capsule the newer drafts forbid on HTTP/3 (a session error).
    Forbidden,
}

/// The capsule types decoded here and the longest body each may have.
fn known(ty: u64) -> Option<u64> {
    match ty {
        CLOSE_CAPSULE | DRAIN_CAPSULE => Some(MAX_CAPSULE),
        MAX_DATA_CAPSULE
        | MAX_STREAMS_BIDI_CAPSULE
        | MAX_STREAMS_UNI_CAPSULE
        | DATA_BLOCKED_CAPSULE
        | STREAMS_BLOCKED_BIDI_CAPSULE
        | STREAMS_BLOCKED_UNI_CAPSULE => Some(8),
        MAX_STREAM_DATA_CAPSULE | STREAM_DATA_BLOCKED_CAPSULE => Some(16),
        _ => None,
    }
}

/// A whole capsule of a [`known`] type.
fn decode(ty: u64, mut body: BytesMut) -> std::result::Result<Capsule, MalformedCapsule> {
    let one_value = |body: &BytesMut| {
        let mut b = &body[..];
        let v = varint::read(&mut b).ok_or(MalformedCapsule)?;
        if b.is_empty() {
            Ok(v)
        } else {
            Err(MalformedCapsule)
        }
    };
    Ok(match ty {
        DRAIN_CAPSULE => Capsule::Drain,
        CLOSE_CAPSULE => {
            if body.len() < 4 {
                return Err(MalformedCapsule);
            }
            let code = body.get_u32();
            Capsule::Close(code, String::from_utf8_lossy(&body).into_owned())
        }
        MAX_DATA_CAPSULE => Capsule::MaxData(one_value(&body)?),
        MAX_STREAMS_BIDI_CAPSULE | MAX_STREAMS_UNI_CAPSULE => Capsule::MaxStreams {
            bidi: ty == MAX_STREAMS_BIDI_CAPSULE,
            max: one_value(&body)?,
        },
        MAX_STREAM_DATA_CAPSULE | STREAM_DATA_BLOCKED_CAPSULE => Capsule::Forbidden,
        _ => {
            one_value(&body)?;
            Capsule::Blocked
        }
    })
}

/// A capsule on the CONNECT stream broke the draft's rules.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedCapsule;

/// Incremental capsule parser for the CONNECT stream's data. Unknown capsules are skipped
/// without buffering; a CLOSE capsule longer than the draft allows is a protocol error.
#[derive(Default)]
pub struct CapsuleReader {
    buf: BytesMut,
    skip: u64,
}

impl CapsuleReader {
    /// Bytes held between pushes: at most a capsule header (16) plus [`MAX_CAPSULE`].
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, mut data: Bytes) -> std::result::Result<Vec<Capsule>, MalformedCapsule> {
        let mut out = Vec::new();
        loop {
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64) as usize;
                data.advance(n);
                self.skip -= n as u64;
                if self.skip > 0 {
                    return Ok(out);
                }
            }
            self.buf.extend_from_slice(&std::mem::take(&mut data));
            let mut peek = &self.buf[..];
            let (Some(ty), Some(len)) = (varint::read(&mut peek), varint::read(&mut peek)) else {
                return Ok(out);
            };
            let head = self.buf.len() - peek.len();
            let limit = known(ty);
            if limit.is_some_and(|max| len > max) {
                return Err(MalformedCapsule);
            }
            if limit.is_none() {
                // Drop the header and whatever of the body we hold; skip the rest as it comes.
                let have = (self.buf.len() - head) as u64;
                let take = have.min(len);
                self.buf.advance(head + take as usize);
                self.skip = len - take;
                data = self.buf.split().freeze();
                continue;
            }
            if ((self.buf.len() - head) as u64) < len {
                return Ok(out);
            }
            self.buf.advance(head);
            let body = self.buf.split_to(len as usize);
            out.push(decode(ty, body)?);
            data = self.buf.split().freeze();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reserved_frame_types() {
        use super::is_reserved_frame;
        // 0x21 (one byte), 0x21 + 0x1f * 7 (two bytes), and h3's 8-byte grease type.
        assert!(is_reserved_frame(&[0x21, 0x00]));
        assert!(is_reserved_frame(&[0x40, 0xfa, 0x00]));
        assert!(is_reserved_frame(&[
            0xf3, 0x1e, 0x47, 0xc3, 0x04, 0xd7, 0x2f, 0xe9, 0x06
        ]));
        // DATA, HEADERS, SETTINGS, a reserved type's neighbour, nothing.
        for f in [
            &[0x00, 0x01][..],
            &[0x01, 0x00],
            &[0x04, 0x00],
            &[0x22, 0x00],
            &[],
        ] {
            assert!(!is_reserved_frame(f), "{f:?}");
        }
    }

    use super::*;

    #[test]
    fn app_codes_round_trip_and_skip_grease() {
        for n in [0u32, 1, 29, 30, 31, 1000, 0xffff, u32::MAX] {
            assert_eq!(from_http_code(to_http_code(n)), Some(n), "code {n}");
        }
        assert_eq!(to_http_code(0), APP_CODE_FIRST);
        assert_eq!(to_http_code(u32::MAX), APP_CODE_LAST);
        // A grease code point inside the range carries no application code.
        let grease = (APP_CODE_FIRST..APP_CODE_LAST)
            .find(|h| (h - 0x21) % 0x1f == 0)
            .unwrap();
        assert_eq!(from_http_code(grease), None);
        assert_eq!(from_http_code(0x100), None);
    }

    /// The capsules of `wire`, fed to a reader `step` bytes at a time.
    fn read_in_steps(wire: &[u8], step: usize) -> Vec<Capsule> {
        let mut r = CapsuleReader::default();
        let mut got = Vec::new();
        for piece in wire.chunks(step) {
            got.extend(r.push(Bytes::copy_from_slice(piece)).unwrap());
        }
        got
    }

    #[test]
    fn capsules_parse_across_chunks_and_skip_unknown() {
        let mut wire = BytesMut::new();
        // An unknown capsule of 300 bytes first.
        varint::write(&mut wire, 0x1234).unwrap();
        varint::write(&mut wire, 300).unwrap();
        wire.extend_from_slice(&[7; 300]);
        wire.extend_from_slice(&drain_capsule());
        wire.extend_from_slice(&close_capsule(4242, "bye ✓"));
        let wire = wire.freeze();
        for step in [1usize, 3, 7, 1000] {
            assert_eq!(
                read_in_steps(&wire, step),
                vec![Capsule::Drain, Capsule::Close(4242, "bye ✓".into())],
                "step {step}"
            );
        }
    }

    #[test]
    fn flow_capsules_round_trip() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&flow_capsule(MAX_DATA_CAPSULE, 1 << 40).unwrap());
        wire.extend_from_slice(&flow_capsule(MAX_STREAMS_BIDI_CAPSULE, 7).unwrap());
        wire.extend_from_slice(&flow_capsule(MAX_STREAMS_UNI_CAPSULE, 300).unwrap());
        wire.extend_from_slice(&flow_capsule(STREAMS_BLOCKED_UNI_CAPSULE, 300).unwrap());
        wire.extend_from_slice(&flow_capsule(MAX_STREAM_DATA_CAPSULE, 1).unwrap());
        let wire = wire.freeze();
        for step in [1usize, 5, 100] {
            assert_eq!(
                read_in_steps(&wire, step),
                vec![
                    Capsule::MaxData(1 << 40),
                    Capsule::MaxStreams { bidi: true, max: 7 },
                    Capsule::MaxStreams {
                        bidi: false,
                        max: 300
                    },
                    Capsule::Blocked,
                    Capsule::Forbidden,
                ]
            );
        }
        // The type takes 4 bytes (0x190b4d3d needs the 4-byte form), the value its own.
        assert_eq!(
            &flow_capsule(MAX_DATA_CAPSULE, 5).unwrap()[..],
            &[0x99, 0x0b, 0x4d, 0x3d, 0x01, 0x05]
        );
    }

    #[test]
    fn malformed_flow_capsules() {
        // A value with bytes after it, and an empty body.
        let mut wire = BytesMut::new();
        varint::write(&mut wire, MAX_DATA_CAPSULE).unwrap();
        wire.extend_from_slice(&[0x02, 0x05, 0x00]);
        assert!(CapsuleReader::default().push(wire.freeze()).is_err());
        let mut wire = BytesMut::new();
        varint::write(&mut wire, MAX_STREAMS_UNI_CAPSULE).unwrap();
        wire.extend_from_slice(&[0x00]);
        assert!(CapsuleReader::default().push(wire.freeze()).is_err());
        // Longer than any varint.
        let mut wire = BytesMut::new();
        varint::write(&mut wire, MAX_DATA_CAPSULE).unwrap();
        wire.extend_from_slice(&[0x09]);
        assert!(CapsuleReader::default().push(wire.freeze()).is_err());
    }

    #[test]
    fn oversized_close_capsule_is_an_error() {
        let mut wire = BytesMut::new();
        varint::write(&mut wire, CLOSE_CAPSULE).unwrap();
        varint::write(&mut wire, 1 << 20).unwrap();
        assert!(CapsuleReader::default().push(wire.freeze()).is_err());
    }

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        let long = "é".repeat(600);
        let c = close_capsule(1, &long);
        let mut r = CapsuleReader::default();
        let got = r.push(c).unwrap();
        let Capsule::Close(1, reason) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(reason.len(), 1024);
    }

    #[test]
    fn stream_headers_parse() {
        let h = stream_header(false, SessionId(4)).unwrap();
        assert_eq!(
            parse_stream_header(&h, UNI_TYPE),
            StreamHeader::WebTransport {
                session: SessionId(4),
                len: 3
            }
        );
        assert_eq!(
            parse_stream_header(&h[..1], UNI_TYPE),
            StreamHeader::Incomplete
        );
        assert_eq!(parse_stream_header(&[0x00], UNI_TYPE), StreamHeader::Other);
    }

    #[test]
    fn headers_encode_type_and_session() {
        assert_eq!(
            &stream_header(true, SessionId(0)).unwrap()[..],
            &[0x40, 0x41, 0x00]
        );
        assert_eq!(
            &stream_header(false, SessionId(4)).unwrap()[..],
            &[0x40, 0x54, 0x04]
        );
    }
}
