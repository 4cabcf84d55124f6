//! HTTP/3 frame headers read incrementally (RFC 9114 §7.1: a Type and a Length varint), fed the
//! stream's bytes as they arrive. Shared by the frame-length guard and the request rules, which
//! watch the same bytes for different reasons.

use super::varint;

/// RFC 9114 §7.2.1.
pub const FRAME_DATA: u64 = 0x0;
/// RFC 9114 §7.2.2.
pub const FRAME_HEADERS: u64 = 0x1;
/// draft-ietf-webtrans-http3-02 §4.2: a bidirectional stream whose first varint is this signal
/// value is a WebTransport stream, not a request; what follows is not framed.
pub const WEBTRANSPORT_BI_STREAM: u64 = super::wt_wire::BIDI_TYPE;

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameHeader {
    Frame {
        ty: u64,
        len: u64,
    },
    /// The stream's first varint was [`WEBTRANSPORT_BI_STREAM`].
    WebTransport,
}

/// Holds the bytes of one header (two varints: at most 16 bytes) until it is complete.
#[derive(Debug, Clone, Default)]
pub struct FrameHeaderReader {
    buf: [u8; 16],
    len: usize,
}

impl FrameHeaderReader {
    /// Takes header bytes from the front of `data`; `None` when `data` ran out first (the bytes
    /// taken are kept for the next call). `first`: this is the stream's first frame, where a
    /// WebTransport signal value ends the framing.
    pub fn read(&mut self, data: &mut &[u8], first: bool) -> Option<FrameHeader> {
        let ty_len = self.varint_len_at(data, 0)?;
        let ty = self.value(0, ty_len);
        if first && ty == WEBTRANSPORT_BI_STREAM {
            self.len = 0;
            return Some(FrameHeader::WebTransport);
        }
        let len_len = self.varint_len_at(data, ty_len)?;
        let len = self.value(ty_len, len_len);
        self.len = 0;
        Some(FrameHeader::Frame { ty, len })
    }

    /// One varint alone (a unidirectional stream's type, RFC 9114 §6.2), taken as `read` does.
    pub fn read_varint(&mut self, data: &mut &[u8]) -> Option<u64> {
        let n = self.varint_len_at(data, 0)?;
        let v = self.value(0, n);
        self.len = 0;
        Some(v)
    }

    /// True between headers: no partial header is held.
    pub fn is_between_headers(&self) -> bool {
        self.len == 0
    }

    /// Fills the varint starting at `at`; its length once all its bytes are held.
    fn varint_len_at(&mut self, data: &mut &[u8], at: usize) -> Option<usize> {
        if !self.fill(data, at + 1) {
            return None;
        }
        let n = varint::len_from_first(self.buf[at]);
        self.fill(data, at + n).then_some(n)
    }

    fn value(&self, at: usize, n: usize) -> u64 {
        let mut b = &self.buf[at..at + n];
        varint::read(&mut b).unwrap_or(0)
    }

    /// Buffers bytes until `want` are held; false when the input ran out first.
    fn fill(&mut self, data: &mut &[u8], want: usize) -> bool {
        while self.len < want {
            let Some((first, rest)) = data.split_first() else {
                return false;
            };
            self.buf[self.len] = *first;
            self.len += 1;
            *data = rest;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_split_anywhere_reads_the_same() {
        // HEADERS (0x01), length 300 as a 2-byte varint (0x41 0x2c), then a payload byte.
        let bytes = [0x01, 0x41, 0x2c, 0xff];
        for cut in 0..=3 {
            let mut r = FrameHeaderReader::default();
            let (a, b) = bytes.split_at(cut);
            let mut a = a;
            let mut b = b;
            let got = r.read(&mut a, true).or_else(|| r.read(&mut b, true));
            assert_eq!(
                got,
                Some(FrameHeader::Frame { ty: 1, len: 300 }),
                "cut at {cut}"
            );
            assert_eq!(b, &[0xff], "cut at {cut}");
        }
    }

    #[test]
    fn webtransport_signal_only_on_the_first_frame() {
        let mut data: &[u8] = &[0x40, 0x41, 0x00];
        assert_eq!(
            FrameHeaderReader::default().read(&mut data, true),
            Some(FrameHeader::WebTransport)
        );
        let mut data: &[u8] = &[0x40, 0x41, 0x00];
        assert_eq!(
            FrameHeaderReader::default().read(&mut data, false),
            Some(FrameHeader::Frame { ty: 0x41, len: 0 })
        );
    }
}
