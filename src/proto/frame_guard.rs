//! Frame-length guard for incoming HTTP/3 streams.
//!
//! h3 buffers every non-DATA frame (HEADERS, SETTINGS, unknown/grease types) until the whole
//! payload has arrived, whatever length the peer claimed, and reading it hands flow-control
//! credit back to the peer — so a HEADERS frame claiming 2^40 bytes would make us buffer without
//! bound. This parser watches the byte stream on its way into h3 (see `transport/quic.rs`), which resets
//! the stream with H3_EXCESSIVE_LOAD as soon as a frame header claims more than the limit. DATA
//! payloads and WebTransport streams pass through untouched.

/// H3_EXCESSIVE_LOAD (RFC 9114 §8.1).
pub const H3_EXCESSIVE_LOAD: u64 = 0x107;
/// RFC 9114 §6.2.1: the control stream's type.
const UNI_CONTROL: u64 = 0x0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bidi stream, before its first frame type: WebTransport streams start with 0x41.
    FirstFrame,
    /// Uni stream, before its stream type.
    UniType,
    FrameHeader,
    Skip(u64),
    Passthrough,
    Violated,
}

/// A byte-level parser of frame headers (type varint, length varint).
#[derive(Debug, Clone)]
pub struct FrameGuard {
    state: State,
    limit: u64,
    header: FrameHeaderReader,
}

/// A frame claimed more than the limit.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    pub frame_type: u64,
    pub claimed: u64,
}

use super::frame_header::{FrameHeader, FrameHeaderReader, FRAME_DATA};

impl FrameGuard {
    /// For request (bidirectional) streams.
    pub fn request(limit: u64) -> Self {
        Self::with_state(State::FirstFrame, limit)
    }

    /// For peer-initiated unidirectional streams: only the control stream carries frames.
    pub fn uni(limit: u64) -> Self {
        Self::with_state(State::UniType, limit)
    }

    /// For streams we opened ourselves (WebTransport): no HTTP/3 framing to police.
    pub fn passthrough() -> Self {
        Self::with_state(State::Passthrough, 0)
    }

    fn with_state(state: State, limit: u64) -> Self {
        FrameGuard {
            state,
            limit,
            header: FrameHeaderReader::default(),
        }
    }

    /// Feed the next bytes of the stream. One function for the whole state machine: each arm
    /// is a state, and splitting them would only pass `data` and `self` around.
    pub fn observe(&mut self, mut data: &[u8]) -> Result<(), Violation> {
        while !data.is_empty() {
            match self.state {
                State::Passthrough => return Ok(()),
                State::Violated => {
                    return Err(Violation {
                        frame_type: 0,
                        claimed: 0,
                    })
                }
                State::Skip(n) => {
                    let take = n.min(data.len() as u64);
                    data = &data[take as usize..];
                    self.state = if take == n {
                        State::FrameHeader
                    } else {
                        State::Skip(n - take)
                    };
                }
                State::UniType => {
                    let Some(ty) = self.header.read_varint(&mut data) else {
                        return Ok(());
                    };
                    self.state = if ty == UNI_CONTROL {
                        State::FrameHeader
                    } else {
                        State::Passthrough
                    };
                }
                State::FirstFrame | State::FrameHeader => {
                    let first = self.state == State::FirstFrame;
                    match self.header.read(&mut data, first) {
                        None => return Ok(()),
                        Some(FrameHeader::WebTransport) => self.state = State::Passthrough,
                        Some(FrameHeader::Frame { ty, len }) => self.frame(ty, len)?,
                    }
                }
            }
        }
        Ok(())
    }

    /// A complete frame header: over the limit is a violation, else skip the payload.
    fn frame(&mut self, ty: u64, len: u64) -> Result<(), Violation> {
        if ty != FRAME_DATA && len > self.limit {
            self.state = State::Violated;
            return Err(Violation {
                frame_type: ty,
                claimed: len,
            });
        }
        self.state = if len == 0 {
            State::FrameHeader
        } else {
            State::Skip(len)
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ty: u8, len_varint: &[u8]) -> Vec<u8> {
        let mut v = vec![ty];
        v.extend_from_slice(len_varint);
        v
    }

    #[test]
    fn huge_headers_claim_is_caught_even_byte_by_byte() {
        // HEADERS, length 2^40 as an 8-byte varint.
        let bytes = frame(0x01, &[0xc0, 0, 0x01, 0, 0, 0, 0, 0]);
        let mut g = FrameGuard::request(1000);
        let mut res = Ok(());
        for b in &bytes {
            res = g.observe(std::slice::from_ref(b));
            if res.is_err() {
                break;
            }
        }
        assert_eq!(
            res,
            Err(Violation {
                frame_type: 1,
                claimed: 1 << 40
            })
        );
    }

    #[test]
    fn data_frames_and_small_headers_pass() {
        let mut g = FrameGuard::request(100);
        let mut s = frame(0x01, &[10]);
        s.extend_from_slice(&[0; 10]);
        // DATA of 2^30 bytes declared: fine, DATA is streamed.
        s.extend_from_slice(&[0x00, 0xc0, 0, 0, 0, 0x40, 0, 0, 0]);
        assert!(g.observe(&s).is_ok());
        assert!(g.observe(&vec![7u8; 4096]).is_ok());
    }

    #[test]
    fn frames_after_data_are_checked() {
        let mut g = FrameGuard::request(100);
        let mut s = frame(0x00, &[3]);
        s.extend_from_slice(b"abc");
        // Trailers HEADERS claiming 16383 bytes (2-byte varint).
        s.extend_from_slice(&[0x01, 0x7f, 0xff]);
        assert!(g.observe(&s).is_err());
    }

    #[test]
    fn webtransport_streams_pass_through() {
        let mut g = FrameGuard::request(10);
        // 0x41 encoded as a 2-byte varint, then raw application bytes.
        assert!(g
            .observe(&[0x40, 0x41, 0x04, 0x01, 0xc0, 0xff, 0xff])
            .is_ok());
        assert!(g.observe(&[0xff; 100]).is_ok());
    }

    #[test]
    fn control_stream_settings_limit() {
        let mut g = FrameGuard::uni(64);
        // Control stream type 0, SETTINGS (0x04) with length 1 MiB.
        assert!(g.observe(&[0x00, 0x04, 0x80, 0x10, 0x00, 0x00]).is_err());
        let mut q = FrameGuard::uni(64);
        // QPACK encoder stream: not framed.
        assert!(q.observe(&[0x02, 0xff, 0xff, 0xff]).is_ok());
    }

    #[test]
    fn two_byte_type_varints() {
        let mut g = FrameGuard::request(10);
        // Reserved/grease frame type 0x21 as a 2-byte varint, length 5, payload.
        assert!(g.observe(&[0x40, 0x21, 0x05, 1, 2, 3, 4, 5]).is_ok());
        assert!(g.observe(&[0x40, 0x21, 0x40, 0xff]).is_err());
    }
}
