//! A QPACK field-section decoder for the static table only (RFC 9204).
//!
//! h3 decodes field sections itself, but privately: it keeps one value per pseudo-header (a
//! duplicated `:method` silently overwrites the first) and hands names on through the `http`
//! crate, which lower-cases them. The request rules (`request_rules.rs`) need the section exactly
//! as sent, in order, so they decode it again here from the raw HEADERS payload.
//!
//! h3 advertises `SETTINGS_QPACK_MAX_TABLE_CAPACITY` 0, so a conforming peer encodes with the
//! static table and literals only. Anything else (a dynamic-table reference, a truncated or
//! otherwise invalid encoding) comes back as [`Undecodable`]; callers must then leave the section
//! to h3, which reports its own errors. Nothing here panics or allocates beyond a small multiple
//! of the input length.

use std::borrow::Cow;

/// One field line: name and value as sent (Huffman-decoded, case untouched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: Cow<'a, [u8]>,
    pub value: Cow<'a, [u8]>,
}

impl<'a> Field<'a> {
    fn new(name: impl Into<Cow<'a, [u8]>>, value: impl Into<Cow<'a, [u8]>>) -> Self {
        Field {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Why a field section was not decoded. Either way, it is h3's to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undecodable {
    /// References the dynamic table (or a non-zero Required Insert Count).
    DynamicTable,
    /// Not a valid encoding: truncated, bad integer, bad Huffman code, index out of range.
    Invalid,
}

/// RFC 9204 Appendix A: the static table, 99 entries, indexed from 0.
static STATIC_TABLE: [(&[u8], &[u8]); 99] = [
    (b":authority", b""),
    (b":path", b"/"),
    (b"age", b"0"),
    (b"content-disposition", b""),
    (b"content-length", b"0"),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"referer", b""),
    (b"set-cookie", b""),
    (b":method", b"CONNECT"),
    (b":method", b"DELETE"),
    (b":method", b"GET"),
    (b":method", b"HEAD"),
    (b":method", b"OPTIONS"),
    (b":method", b"POST"),
    (b":method", b"PUT"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"103"),
    (b":status", b"200"),
    (b":status", b"304"),
    (b":status", b"404"),
    (b":status", b"503"),
    (b"accept", b"*/*"),
    (b"accept", b"application/dns-message"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"accept-ranges", b"bytes"),
    (b"access-control-allow-headers", b"cache-control"),
    (b"access-control-allow-headers", b"content-type"),
    (b"access-control-allow-origin", b"*"),
    (b"cache-control", b"max-age=0"),
    (b"cache-control", b"max-age=2592000"),
    (b"cache-control", b"max-age=604800"),
    (b"cache-control", b"no-cache"),
    (b"cache-control", b"no-store"),
    (b"cache-control", b"public, max-age=31536000"),
    (b"content-encoding", b"br"),
    (b"content-encoding", b"gzip"),
    (b"content-type", b"application/dns-message"),
    (b"content-type", b"application/javascript"),
    (b"content-type", b"application/json"),
    (b"content-type", b"application/x-www-form-urlencoded"),
    (b"content-type", b"image/gif"),
    (b"content-type", b"image/jpeg"),
    (b"content-type", b"image/png"),
    (b"content-type", b"text/css"),
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-type", b"text/plain"),
    (b"content-type", b"text/plain;charset=utf-8"),
    (b"range", b"bytes=0-"),
    (b"strict-transport-security", b"max-age=31536000"),
    (
        b"strict-transport-security",
        b"max-age=31536000; includesubdomains",
    ),
    (
        b"strict-transport-security",
        b"max-age=31536000; includesubdomains; preload",
    ),
    (b"vary", b"accept-encoding"),
    (b"vary", b"origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-xss-protection", b"1; mode=block"),
    (b":status", b"100"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"302"),
    (b":status", b"400"),
    (b":status", b"403"),
    (b":status", b"421"),
    (b":status", b"425"),
    (b":status", b"500"),
    (b"accept-language", b""),
    (b"access-control-allow-credentials", b"FALSE"),
    (b"access-control-allow-credentials", b"TRUE"),
    (b"access-control-allow-headers", b"*"),
    (b"access-control-allow-methods", b"get"),
    (b"access-control-allow-methods", b"get, post, options"),
    (b"access-control-allow-methods", b"options"),
    (b"access-control-expose-headers", b"content-length"),
    (b"access-control-request-headers", b"content-type"),
    (b"access-control-request-method", b"get"),
    (b"access-control-request-method", b"post"),
    (b"alt-svc", b"clear"),
    (b"authorization", b""),
    (
        b"content-security-policy",
        b"script-src 'none'; object-src 'none'; base-uri 'none'",
    ),
    (b"early-data", b"1"),
    (b"expect-ct", b""),
    (b"forwarded", b""),
    (b"if-range", b""),
    (b"origin", b""),
    (b"purpose", b"prefetch"),
    (b"server", b""),
    (b"timing-allow-origin", b"*"),
    (b"upgrade-insecure-requests", b"1"),
    (b"user-agent", b""),
    (b"x-forwarded-for", b""),
    (b"x-frame-options", b"deny"),
    (b"x-frame-options", b"sameorigin"),
];

fn static_entry(index: u64) -> Result<(&'static [u8], &'static [u8]), Undecodable> {
    usize::try_from(index)
        .ok()
        .and_then(|i| STATIC_TABLE.get(i))
        .copied()
        .ok_or(Undecodable::Invalid)
}

/// A cursor over the encoded section.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Result<u8, Undecodable> {
        self.buf.get(self.pos).copied().ok_or(Undecodable::Invalid)
    }

    fn byte(&mut self) -> Result<u8, Undecodable> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Undecodable> {
        let n = usize::try_from(n).map_err(|_| Undecodable::Invalid)?;
        let end = self.pos.checked_add(n).ok_or(Undecodable::Invalid)?;
        let s = self.buf.get(self.pos..end).ok_or(Undecodable::Invalid)?;
        self.pos = end;
        Ok(s)
    }

    /// RFC 7541 §5.1 prefixed integer (RFC 9204 §4.1.1), the prefix being the low `bits` bits
    /// of the current byte. Values beyond 2^62 are refused (no QUIC quantity is larger).
    fn int(&mut self, bits: u32) -> Result<u64, Undecodable> {
        let mask = ((1u16 << bits) - 1) as u8;
        let first = self.byte()? & mask;
        if first < mask {
            return Ok(u64::from(first));
        }
        let mut value = u64::from(mask);
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift > 55 {
                return Err(Undecodable::Invalid);
            }
            value = value
                .checked_add(u64::from(b & 0x7f) << shift)
                .ok_or(Undecodable::Invalid)?;
            if value > 1 << 62 {
                return Err(Undecodable::Invalid);
            }
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// RFC 9204 §4.1.2 string literal: H flag at `h_bit` of the current byte, then a length with
    /// a `bits`-bit prefix, then the octets (Huffman-coded when H is set, RFC 7541 §5.2).
    fn string(&mut self, h_bit: u8, bits: u32) -> Result<Cow<'a, [u8]>, Undecodable> {
        let huffman = self.peek()? & h_bit != 0;
        let len = self.int(bits)?;
        let raw = self.take(len)?;
        if !huffman {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = Vec::with_capacity(raw.len() * 8 / 5 + 1);
        httlib_huffman::decode(raw, &mut out, httlib_huffman::DecoderSpeed::FourBits)
            .map_err(|_| Undecodable::Invalid)?;
        if !padding_is_eos_prefix(raw, &out) {
            return Err(Undecodable::Invalid);
        }
        Ok(Cow::Owned(out))
    }
}

/// RFC 7541 §5.2: "A padding strictly longer than 7 bits MUST be treated as a decoding error.
/// A padding not corresponding to the most significant bits of the code for the EOS symbol MUST
/// be treated as a decoding error." The decoder lets zero-bit padding through; the bits left
/// after the decoded symbols' codes (RFC 7541 Appendix B lengths) must be at most 7 ones.
fn padding_is_eos_prefix(raw: &[u8], decoded: &[u8]) -> bool {
    let table = &httlib_huffman::encoder::table::ENCODE_TABLE;
    let bits: usize = decoded
        .iter()
        .map(|&b| {
            table
                .get(usize::from(b))
                .map_or(0, |&(len, _)| usize::from(len))
        })
        .sum();
    let Some(pad) = (raw.len() * 8).checked_sub(bits) else {
        return false;
    };
    let ones = (1u16 << pad.min(8)) - 1;
    pad <= 7
        && raw
            .last()
            .map_or(pad == 0, |&last| u16::from(last) & ones == ones)
}

/// Decode an encoded field section (a HEADERS frame payload) into its field lines, in order.
/// Never panics on any input (the entry point for fuzzing).
pub fn decode(section: &[u8]) -> Result<Vec<Field<'_>>, Undecodable> {
    let mut r = Reader {
        buf: section,
        pos: 0,
    };
    // RFC 9204 §4.5.1: Encoded Field Section Prefix. With a zero Required Insert Count the
    // section references no dynamic-table entry, whatever the Delta Base says.
    if r.int(8)? != 0 {
        return Err(Undecodable::DynamicTable);
    }
    r.int(7)?;
    let mut fields = Vec::new();
    while r.pos < section.len() {
        let b = r.peek()?;
        if b & 0x80 != 0 {
            // §4.5.2 Indexed Field Line: 1 T index(6+).
            if b & 0x40 == 0 {
                return Err(Undecodable::DynamicTable);
            }
            let (name, value) = static_entry(r.int(6)?)?;
            fields.push(Field::new(name, value));
        } else if b & 0x40 != 0 {
            // §4.5.4 Literal Field Line with Name Reference: 01 N T index(4+), value.
            if b & 0x10 == 0 {
                return Err(Undecodable::DynamicTable);
            }
            let (name, _) = static_entry(r.int(4)?)?;
            let value = r.string(0x80, 7)?;
            fields.push(Field::new(name, value));
        } else if b & 0x20 != 0 {
            // §4.5.6 Literal Field Line with Literal Name: 001 N H name-length(3+), value.
            let name = r.string(0x08, 3)?;
            let value = r.string(0x80, 7)?;
            fields.push(Field { name, value });
        } else {
            // §4.5.3 Indexed Field Line with Post-Base Index (0001) and §4.5.5 Literal Field
            // Line with Post-Base Name Reference (0000): dynamic table only.
            return Err(Undecodable::DynamicTable);
        }
    }
    Ok(fields)
}

/// RFC 9204 §4.5.6 Literal Field Line with Literal Name: `001N H` + name length (3-bit prefix),
/// name, then `H` + value length (7-bit prefix), value; no Huffman, N = 0.
pub fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    prefix_int(out, 0x20, 3, name.len() as u64);
    out.extend_from_slice(name);
    prefix_int(out, 0x00, 7, value.len() as u64);
    out.extend_from_slice(value);
}

/// RFC 7541 §5.1 integer with an N-bit prefix, `flags` in the bits above it.
fn prefix_int(out: &mut Vec<u8>, flags: u8, bits: u32, mut v: u64) {
    let max = (1u64 << bits) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    v -= max;
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(name: &[u8], value: &[u8]) -> Vec<u8> {
        // Literal name, no Huffman; lengths under the prefix limits.
        assert!(name.len() < 7 && value.len() < 127);
        let mut v = vec![0x20 | name.len() as u8];
        v.extend_from_slice(name);
        v.push(value.len() as u8);
        v.extend_from_slice(value);
        v
    }

    fn pairs(fields: &[Field<'_>]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(&f.name).into_owned(),
                    String::from_utf8_lossy(&f.value).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn static_table_spot_checks() {
        assert_eq!(STATIC_TABLE[0], (&b":authority"[..], &b""[..]));
        assert_eq!(STATIC_TABLE[17], (&b":method"[..], &b"GET"[..]));
        assert_eq!(STATIC_TABLE[25], (&b":status"[..], &b"200"[..]));
        assert_eq!(STATIC_TABLE[63], (&b":status"[..], &b"100"[..]));
        assert_eq!(
            STATIC_TABLE[98],
            (&b"x-frame-options"[..], &b"sameorigin"[..])
        );
    }

    #[test]
    fn indexed_and_literals_in_order_with_duplicates_and_case_kept() {
        // :method GET (17), :scheme https (23), :path / (1), :method GET again,
        // :authority (0) with literal value "a.b", literal "Conn" = "x".
        let mut s = vec![0x00, 0x00, 0xc0 | 17, 0xc0 | 23, 0xc0 | 1, 0xc0 | 17];
        s.extend_from_slice(&[0x50, 3]);
        s.extend_from_slice(b"a.b");
        s.extend(lit(b"Conn", b"x"));
        assert_eq!(
            decode(&s).map(|f| pairs(&f)),
            Ok(vec![
                (":method".into(), "GET".into()),
                (":scheme".into(), "https".into()),
                (":path".into(), "/".into()),
                (":method".into(), "GET".into()),
                (":authority".into(), "a.b".into()),
                ("Conn".into(), "x".into()),
            ])
        );
    }

    #[test]
    fn huffman_values_rfc7541_c4() {
        // RFC 7541 C.4.1: "www.example.com" Huffman-coded.
        let huff = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut s = vec![0x00, 0x00, 0x50, 0x80 | huff.len() as u8];
        s.extend_from_slice(&huff);
        // Literal name, Huffman-coded too: "no-cache" (RFC 7541 C.4.2) as a name.
        let name = [0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];
        s.push(0x28 | name.len() as u8);
        s.extend_from_slice(&name);
        s.push(0);
        assert_eq!(
            decode(&s).map(|f| pairs(&f)),
            Ok(vec![
                (":authority".into(), "www.example.com".into()),
                ("no-cache".into(), "".into()),
            ])
        );
    }

    #[test]
    fn multi_byte_integers() {
        // A 200-byte value: 7-bit prefix full (127), then 73.
        let value = vec![b'v'; 200];
        let mut s = vec![0x00, 0x00, 0x23, b'a', b'b', b'c', 0x7f, 73];
        s.extend_from_slice(&value);
        let lens: Result<Vec<usize>, _> =
            decode(&s).map(|f| f.iter().map(|f| f.value.len()).collect());
        assert_eq!(lens, Ok(vec![200]));
    }

    #[test]
    fn dynamic_references_are_not_decoded() {
        assert_eq!(decode(&[0x01, 0x00]), Err(Undecodable::DynamicTable));
        assert_eq!(decode(&[0x00, 0x00, 0x80]), Err(Undecodable::DynamicTable));
        assert_eq!(
            decode(&[0x00, 0x00, 0x40, 0x00]),
            Err(Undecodable::DynamicTable)
        );
        assert_eq!(decode(&[0x00, 0x00, 0x10]), Err(Undecodable::DynamicTable));
        assert_eq!(decode(&[0x00, 0x00, 0x00]), Err(Undecodable::DynamicTable));
    }

    #[test]
    fn invalid_encodings() {
        assert_eq!(decode(&[]), Err(Undecodable::Invalid));
        assert_eq!(decode(&[0x00]), Err(Undecodable::Invalid));
        // Static index 99 is past the table.
        assert_eq!(decode(&[0x00, 0x00, 0xff, 0x24]), Err(Undecodable::Invalid));
        // Literal longer than the section.
        assert_eq!(decode(&[0x00, 0x00, 0x25, b'a']), Err(Undecodable::Invalid));
        // Integer continuation that never ends / overflows.
        let mut s = vec![0x00, 0x00, 0xff];
        s.extend_from_slice(&[0xff; 20]);
        assert_eq!(decode(&s), Err(Undecodable::Invalid));
        // Huffman padding of zero bits is not an EOS prefix.
        assert!(decode(&[0x00, 0x00, 0x50, 0x81, 0x00]).is_err());
    }

    /// xorshift64*: deterministic, dependency-free randomness.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    #[test]
    fn random_and_mutated_inputs_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut valid = vec![0x00, 0x00, 0xd1, 0xd7, 0xc1, 0x50, 0x8c];
        valid.extend_from_slice(&[
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ]);
        valid.extend(lit(b"te", b"trailers"));
        assert!(decode(&valid).is_ok());
        let mut decoded = 0;
        for _ in 0..200_000 {
            let mut s = if rng.below(3) == 0 {
                let n = rng.below(64) as usize;
                (0..n).map(|_| rng.next() as u8).collect::<Vec<_>>()
            } else {
                let mut s = valid.clone();
                for _ in 0..=rng.below(4) {
                    if s.is_empty() {
                        break;
                    }
                    let i = rng.below(s.len() as u64) as usize;
                    match rng.below(3) {
                        0 => s[i] = rng.next() as u8,
                        1 => s[i] ^= 1 << rng.below(8),
                        _ => s.truncate(i),
                    }
                }
                s
            };
            if rng.below(2) == 0 {
                // Keep a zero prefix so the field-line decoder is reached.
                s.splice(0..0, [0u8, 0u8]);
            }
            if let Ok(f) = decode(&s) {
                decoded += 1;
                let out: usize = f.iter().map(|f| f.name.len() + f.value.len()).sum();
                // Output is bounded: static entries are short, Huffman expands at most 8/5.
                assert!(out <= s.len() * 64 + 64);
            }
        }
        assert!(decoded > 0);
    }
}
