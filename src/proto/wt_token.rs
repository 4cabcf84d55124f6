//! The upgrade token of draft-ietf-webtrans-http3-15/16 (`:protocol = webtransport-h3`, §3.2),
//! which h3 0.0.8 cannot carry: its `:protocol` type knows only `webtransport` and
//! `connect-udp`, and it refuses a request with any other value before we see it.
//!
//! So the token is swapped in the request's HEADERS frame below h3: on the way in, a server
//! turns `webtransport-h3` into `webtransport` (and notes the stream); on the way out, a client
//! turns `webtransport` into `webtransport-h3`. The field section is decoded with
//! [`qpack_fields`] (static table and literals: h3 advertises no dynamic table) and re-encoded
//! with literals only (RFC 9204 §4.5.6, no Huffman), which any QPACK decoder reads.

use bytes::{Bytes, BytesMut};

use super::qpack_fields;
use super::varint;

/// draft-15 §9.1: the upgrade token of WebTransport over HTTP/3.
pub const H3_TOKEN: &[u8] = b"webtransport-h3";
/// The token h3 knows (draft-02 to draft-13).
pub const TOKEN: &[u8] = b"webtransport";

/// `:protocol` as a QPACK string literal is either these bytes or their Huffman code (RFC 7541
/// Appendix B; a whole string's code starts on a byte edge, so it is always these 7 bytes).
const PROTOCOL_NAME: &[u8] = b":protocol";
const PROTOCOL_NAME_HUFFMAN: [u8; 7] = [0xb9, 0x5d, 0x87, 0x49, 0xc8, 0x7a, 0x3f];

/// RFC 9114 §7.2.2: HEADERS frame type.
const FRAME_HEADERS: u64 = 0x01;

/// Whether `buf` (a request stream's first bytes) holds the whole first frame yet.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstFrame {
    /// More bytes needed.
    Incomplete,
    /// Whole (or not worth waiting for: over `limit`, or not HEADERS): decide now.
    Ready,
}

/// How far `buf` is from holding the stream's first frame whole.
pub fn first_frame(buf: &[u8], limit: u64) -> FirstFrame {
    let mut rest = buf;
    let (Some(ty), Some(len)) = (varint::read(&mut rest), varint::read(&mut rest)) else {
        // A frame header is at most 16 bytes.
        return if buf.len() >= 16 {
            FirstFrame::Ready
        } else {
            FirstFrame::Incomplete
        };
    };
    if ty != FRAME_HEADERS || len > limit || rest.len() as u64 >= len {
        FirstFrame::Ready
    } else {
        FirstFrame::Incomplete
    }
}

/// `stream` (starting with a HEADERS frame) with its `:protocol` value `from` replaced by `to`,
/// the bytes after the frame kept; `None` when there is no such field or the section cannot be
/// decoded (it then goes on untouched).
pub fn swap_token(stream: &[u8], from: &[u8], to: &[u8]) -> Option<Bytes> {
    let mut rest = stream;
    if varint::read(&mut rest)? != FRAME_HEADERS {
        return None;
    }
    let len = usize::try_from(varint::read(&mut rest)?).ok()?;
    let section = rest.get(..len)?;
    let after = &rest[len..];
    // `:protocol` is in no static table entry, so a section without its literal name has none:
    // most requests are passed over without decoding.
    let has = |needle: &[u8]| section.windows(needle.len()).any(|w| w == needle);
    if !has(PROTOCOL_NAME) && !has(&PROTOCOL_NAME_HUFFMAN) {
        return None;
    }
    let fields = qpack_fields::decode(section).ok()?;
    let at = fields
        .iter()
        .position(|f| &*f.name == b":protocol" && &*f.value == from)?;
    let mut payload = Vec::with_capacity(section.len() + to.len() + 16);
    // Field section prefix (RFC 9204 §4.5.1): Required Insert Count 0, Delta Base 0.
    payload.extend_from_slice(&[0, 0]);
    for (i, f) in fields.iter().enumerate() {
        let value: &[u8] = if i == at { to } else { &f.value };
        qpack_fields::encode_literal(&mut payload, &f.name, value);
    }
    let mut out = BytesMut::with_capacity(payload.len() + after.len() + 16);
    varint::write_small(&mut out, FRAME_HEADERS);
    varint::write(&mut out, payload.len() as u64).ok()?;
    out.extend_from_slice(&payload);
    out.extend_from_slice(after);
    Some(out.freeze())
}

/// The fields of the HEADERS frame `stream` starts with (tests).
#[cfg(test)]
fn fields_of(stream: &[u8]) -> Vec<(String, String)> {
    let mut rest = stream;
    let _ = varint::read(&mut rest);
    let len = varint::read(&mut rest).unwrap_or(0) as usize;
    qpack_fields::decode(&rest[..len])
        .unwrap_or_default()
        .iter()
        .map(|f: &qpack_fields::Field<'_>| {
            (
                String::from_utf8_lossy(&f.name).into_owned(),
                String::from_utf8_lossy(&f.value).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_frame(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut p = vec![0, 0];
        for (n, v) in fields {
            qpack_fields::encode_literal(&mut p, n.as_bytes(), v.as_bytes());
        }
        let mut out = BytesMut::new();
        varint::write_small(&mut out, FRAME_HEADERS);
        varint::write_small(&mut out, p.len() as u64);
        out.extend_from_slice(&p);
        out.to_vec()
    }

    const CONNECT: [(&str, &str); 5] = [
        (":method", "CONNECT"),
        (":protocol", "webtransport-h3"),
        (":scheme", "https"),
        (":authority", "localhost"),
        (":path", "/wt"),
    ];

    #[test]
    fn swaps_the_token_and_keeps_what_follows() {
        let mut wire = headers_frame(&CONNECT);
        wire.extend_from_slice(b"\x00\x03abc");
        let out = swap_token(&wire, H3_TOKEN, TOKEN).unwrap_or_default();
        let fields = fields_of(&out);
        assert_eq!(fields[1], (":protocol".into(), "webtransport".into()));
        assert_eq!(fields.len(), 5);
        assert_eq!(fields[4], (":path".into(), "/wt".into()));
        assert!(out.ends_with(b"\x00\x03abc"));
        // And back, as a client does.
        let back = swap_token(&out, TOKEN, H3_TOKEN).unwrap_or_default();
        assert_eq!(fields_of(&back), fields_of(&wire));
    }

    #[test]
    fn leaves_other_requests_alone() {
        let get = headers_frame(&[(":method", "GET"), (":path", "/")]);
        assert_eq!(swap_token(&get, H3_TOKEN, TOKEN), None);
        let other = headers_frame(&[(":method", "CONNECT"), (":protocol", "connect-udp")]);
        assert_eq!(swap_token(&other, H3_TOKEN, TOKEN), None);
        // Not HEADERS, truncated, undecodable.
        assert_eq!(swap_token(&[0x00, 0x01, 0x00], H3_TOKEN, TOKEN), None);
        let wire = headers_frame(&CONNECT);
        assert_eq!(swap_token(&wire[..wire.len() - 1], H3_TOKEN, TOKEN), None);
        assert_eq!(swap_token(&[0x01, 0x02, 0xff, 0xff], H3_TOKEN, TOKEN), None);
    }

    #[test]
    fn first_frame_readiness() {
        let wire = headers_frame(&CONNECT);
        assert_eq!(first_frame(&wire[..1], 1 << 20), FirstFrame::Incomplete);
        assert_eq!(
            first_frame(&wire[..wire.len() - 1], 1 << 20),
            FirstFrame::Incomplete
        );
        assert_eq!(first_frame(&wire, 1 << 20), FirstFrame::Ready);
        // Over the limit, or not HEADERS: nothing to wait for.
        assert_eq!(first_frame(&wire[..3], 2), FirstFrame::Ready);
        assert_eq!(first_frame(&[0x00, 0x40], 1 << 20), FirstFrame::Incomplete);
        assert_eq!(first_frame(&[0x00, 0x05], 1 << 20), FirstFrame::Ready);
    }

    #[test]
    fn huffman_coded_names_are_found() {
        // The section an encoder that Huffman-codes everything writes (pylsqpack's bytes).
        let section = [
            0x00, 0x00, 0x2f, 0x00, 0xb9, 0x5d, 0x87, 0x49, 0xc8, 0x7a, 0x3f, 0x8b, 0xf0, 0x58,
            0xd3, 0x60, 0xea, 0x45, 0x67, 0xb1, 0x2b, 0x4e, 0xcf,
        ];
        let mut wire = vec![0x01, section.len() as u8];
        wire.extend_from_slice(&section);
        let out = swap_token(&wire, H3_TOKEN, TOKEN).unwrap_or_default();
        assert_eq!(
            fields_of(&out),
            [(":protocol".to_string(), "webtransport".to_string())]
        );
    }

    #[test]
    fn long_values_use_multi_byte_lengths() {
        let long = "x".repeat(300);
        let wire = headers_frame(&[
            (":method", "CONNECT"),
            (":protocol", "webtransport"),
            ("a", &long),
        ]);
        let out = swap_token(&wire, TOKEN, H3_TOKEN).unwrap_or_default();
        assert_eq!(fields_of(&out)[2].1.len(), 300);
    }
}
