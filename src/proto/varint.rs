//! The one QUIC variable-length integer codec (RFC 9000 §16): two high bits give the length
//! (1, 2, 4 or 8 bytes), the rest is the value, big-endian.

use bytes::{Buf, BufMut, BytesMut};

use crate::error::{H3Error, Result};

/// Largest value a varint holds (2^62 - 1).
pub const MAX: u64 = (1 << 62) - 1;

/// Length in bytes of the varint whose first byte is `first` (RFC 9000 §16, Table 4).
pub fn len_from_first(first: u8) -> usize {
    1 << (first >> 6)
}

/// Bytes `v` takes on the wire.
pub fn encoded_len(v: u64) -> usize {
    match v {
        0..=0x3f => 1,
        0x40..=0x3fff => 2,
        0x4000..=0x3fff_ffff => 4,
        _ => 8,
    }
}

/// Read one varint; `None` (consuming nothing) when `buf` does not hold all of it yet.
pub fn read(buf: &mut impl Buf) -> Option<u64> {
    if !buf.has_remaining() {
        return None;
    }
    let len = len_from_first(buf.chunk()[0]);
    if buf.remaining() < len {
        return None;
    }
    let mut v = u64::from(buf.get_u8() & 0x3f);
    for _ in 1..len {
        v = (v << 8) | u64::from(buf.get_u8());
    }
    Some(v)
}

/// Append `v`; values above [`MAX`] do not fit a varint.
pub fn write(buf: &mut BytesMut, v: u64) -> Result<()> {
    match v {
        0..=0x3f => buf.put_u8(v as u8),
        0x40..=0x3fff => buf.put_u16(0x4000 | v as u16),
        0x4000..=0x3fff_ffff => buf.put_u32(0x8000_0000 | v as u32),
        0x4000_0000..=MAX => buf.put_u64(0xc000_0000_0000_0000 | v),
        _ => {
            return Err(H3Error::InvalidArg(format!(
                "{v} does not fit a QUIC varint"
            )))
        }
    }
    Ok(())
}

/// Append a value known to fit (a protocol constant or a bounded length).
pub fn write_small(buf: &mut BytesMut, v: u64) {
    // Callers pass constants or lengths far below 2^62; nothing to report.
    let _ = write(buf, v.min(MAX));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn round_trip() {
        for v in [0u64, 63, 64, 16383, 16384, 1 << 30, MAX] {
            let mut b = BytesMut::new();
            write(&mut b, v).unwrap();
            assert_eq!(b.len(), encoded_len(v));
            assert_eq!(len_from_first(b[0]), encoded_len(v));
            let mut r = b.freeze();
            assert_eq!(read(&mut r), Some(v));
            assert!(!r.has_remaining());
        }
        assert!(write(&mut BytesMut::new(), 1 << 62).is_err());
        assert_eq!(read(&mut Bytes::from_static(&[0x40])), None);
    }
}
