//! The WebTransport SETTINGS of the drafts after draft-02, which h3 0.0.8 cannot send (its
//! SETTINGS frame holds eight known identifiers): appended to the SETTINGS frame h3 writes on
//! its control stream, on the way out (our QUIC adapter calls [`append_to_control`]); and the
//! peer's SETTINGS, read on the way in by [`SettingsSniffer`] (h3 keeps unknown ones to itself).
//!
//! Why: Safari (26.4+) does not speak draft-02. Reports from other servers (quic-go/webtransport-go
//! #261 and #355, aiortc/aioquic #633 and #644, hyperium/h3 #347 and #363, ngtcp2/nghttp3 #442)
//! agree that it abandons the session unless the server's SETTINGS carry a WebTransport max-sessions
//! setting, disagree on which codepoint (draft-07's or draft-13/14's), and report that with a
//! value above 1 it also wants the draft-13/14 initial flow-control limits. We send both
//! codepoints and the limits.

use bytes::{Bytes, BytesMut};

use super::varint;

/// SETTINGS_WEBTRANSPORT_MAX_SESSIONS, draft-ietf-webtrans-http3-07 §8.2 (to draft-12).
pub const WT_MAX_SESSIONS_DRAFT07: u64 = 0xc671_706a;
/// SETTINGS_WT_MAX_SESSIONS, draft-ietf-webtrans-http3-13 and -14 §9.2.
pub const WT_MAX_SESSIONS: u64 = 0x14e9_cd29;
/// SETTINGS_WT_INITIAL_MAX_DATA, draft-ietf-webtrans-http3-13/14 §9.2: the session's initial
/// WT_MAX_DATA.
pub const WT_INITIAL_MAX_DATA: u64 = 0x2b61;
/// SETTINGS_WT_INITIAL_MAX_STREAMS_UNI, draft-ietf-webtrans-http3-13/14 §9.2.
pub const WT_INITIAL_MAX_STREAMS_UNI: u64 = 0x2b64;
/// SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI, draft-ietf-webtrans-http3-13/14 §9.2.
pub const WT_INITIAL_MAX_STREAMS_BIDI: u64 = 0x2b65;

/// SETTINGS_WT_ENABLED, draft-ietf-webtrans-http3-15/16 §3.1, §9.2: "A value of "1" indicates
/// support for the variant of WebTransport that is described in this document".
pub const WT_ENABLED: u64 = 0x2c7c_f000;
/// SETTINGS_ENABLE_WEBTRANSPORT of draft-02 (h3 sends it; a draft-02 peer sends it).
pub const ENABLE_WEBTRANSPORT_DRAFT02: u64 = 0x2b60_3742;

/// The session flow-control limits we give a peer (draft-15 §5.5, sent as the initial values and
/// kept ahead of what JS consumed by WT_MAX_STREAMS / WT_MAX_DATA): streams per direction
/// (below QUIC's 100 concurrent streams, so a peer can exceed it while the QUIC limit still
/// lets it open streams), and stream body bytes.
pub const STREAMS_WINDOW: u64 = 64;
pub const DATA_WINDOW: u64 = 16 << 20;

/// HTTP/3 control stream type (RFC 9114 §6.2.1) and SETTINGS frame type (§7.2.4).
const CONTROL_STREAM: u64 = 0x00;
const FRAME_SETTINGS: u64 = 0x04;

/// What a WebTransport server adds to h3's SETTINGS. `max_sessions` is what h3 already sends
/// as the draft-02 WEBTRANSPORT_MAX_SESSIONS; draft-15's WT_ENABLED and the initial
/// flow-control limits follow (non-zero limits turn flow control on, draft-15 §5.1).
pub fn server_settings(max_sessions: u64) -> Vec<(u64, u64)> {
    let mut out = vec![
        (WT_MAX_SESSIONS_DRAFT07, max_sessions),
        (WT_MAX_SESSIONS, max_sessions),
        (WT_ENABLED, 1),
    ];
    out.extend(initial_limits());
    out
}

/// What our client adds: draft-15 §3.1 "For draft versions of WebTransport only, clients MUST
/// also send SETTINGS_WT_ENABLED", and our limits for the streams and data a server sends us.
pub fn client_settings() -> Vec<(u64, u64)> {
    let mut out = vec![(WT_ENABLED, 1)];
    out.extend(initial_limits());
    out
}

fn initial_limits() -> [(u64, u64); 3] {
    [
        (WT_INITIAL_MAX_DATA, DATA_WINDOW),
        (WT_INITIAL_MAX_STREAMS_UNI, STREAMS_WINDOW),
        (WT_INITIAL_MAX_STREAMS_BIDI, STREAMS_WINDOW),
    ]
}

/// The value of setting `id` in `settings`, if sent.
pub fn get(settings: &[(u64, u64)], id: u64) -> Option<u64> {
    settings.iter().find(|s| s.0 == id).map(|s| s.1)
}

/// The largest SETTINGS frame we read from a peer's control stream.
pub const MAX_SNIFFED: usize = 16 * 1024;

/// Reads the SETTINGS frame a peer's control stream starts with (RFC 9114 §6.2.1: "Each side
/// MUST initiate a single control stream [...] and MUST send a SETTINGS frame as the first
/// frame"), from the bytes as they pass to h3. Gives up on any other stream.
#[derive(Default)]
pub struct SettingsSniffer {
    buf: Vec<u8>,
    done: bool,
}

impl SettingsSniffer {
    /// True once it found the settings or knows it never will.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feed the stream's next bytes; returns the settings once the frame is whole.
    pub fn observe(&mut self, data: &[u8]) -> Option<Vec<(u64, u64)>> {
        if self.done {
            return None;
        }
        self.buf.extend_from_slice(data);
        let mut rest = &self.buf[..];
        let ty = varint::read(&mut rest)?;
        let frame = varint::read(&mut rest);
        let len = varint::read(&mut rest);
        let settings = match (ty, frame, len) {
            (CONTROL_STREAM, Some(FRAME_SETTINGS), Some(len)) => {
                let Some(payload) = usize::try_from(len).ok().and_then(|l| rest.get(..l)) else {
                    self.done = self.buf.len() > MAX_SNIFFED;
                    return None;
                };
                parse_settings(payload)
            }
            (CONTROL_STREAM, None, _) | (CONTROL_STREAM, Some(FRAME_SETTINGS), None) => {
                return None
            }
            _ => None,
        };
        self.done = true;
        self.buf = Vec::new();
        settings
    }
}

/// `first` is the first write on our control stream: the stream type, then the whole SETTINGS
/// frame (h3 writes them as one buffer). Returns it with `extra` appended to the frame, or
/// `None` when it is not that shape (it is then sent as it is).
pub fn append_to_control(first: &[u8], extra: &[(u64, u64)]) -> Option<Bytes> {
    let mut rest = first;
    if varint::read(&mut rest)? != CONTROL_STREAM || varint::read(&mut rest)? != FRAME_SETTINGS {
        return None;
    }
    let len = usize::try_from(varint::read(&mut rest)?).ok()?;
    if rest.len() != len {
        return None;
    }
    let mut payload = BytesMut::from(rest);
    for &(id, value) in extra {
        varint::write(&mut payload, id).ok()?;
        varint::write(&mut payload, value).ok()?;
    }
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    varint::write_small(&mut out, CONTROL_STREAM);
    varint::write_small(&mut out, FRAME_SETTINGS);
    varint::write_small(&mut out, payload.len() as u64);
    out.extend_from_slice(&payload);
    Some(out.freeze())
}

/// The settings in a SETTINGS frame payload, in order; `None` if it is malformed.
pub fn parse_settings(mut payload: &[u8]) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    while !payload.is_empty() {
        let id = varint::read(&mut payload)?;
        let value = varint::read(&mut payload)?;
        out.push((id, value));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(settings: &[(u64, u64)]) -> Vec<u8> {
        let mut payload = BytesMut::new();
        for &(i, v) in settings {
            varint::write_small(&mut payload, i);
            varint::write_small(&mut payload, v);
        }
        let mut b = BytesMut::new();
        varint::write_small(&mut b, 0);
        varint::write_small(&mut b, 4);
        varint::write_small(&mut b, payload.len() as u64);
        b.extend_from_slice(&payload);
        b.to_vec()
    }

    #[test]
    fn appends_after_h3s_settings() {
        let h3s = [(0x6, 16384), (0x33, 1), (0x2b60_3742, 1), (0x2b60_3743, 16)];
        let extra = server_settings(16);
        let out = append_to_control(&control(&h3s), &extra).unwrap_or_default();
        let mut all = h3s.to_vec();
        all.extend_from_slice(&extra);
        assert_eq!(out.to_vec(), control(&all));
        let mut rest = &out[..];
        assert_eq!(varint::read(&mut rest), Some(0));
        assert_eq!(varint::read(&mut rest), Some(4));
        let len = varint::read(&mut rest).unwrap_or(0);
        assert_eq!(len as usize, rest.len());
        assert_eq!(parse_settings(rest), Some(all));
    }

    #[test]
    fn leaves_anything_else_alone() {
        let extra = server_settings(1);
        // Not a control stream, not SETTINGS, a length that disagrees, a truncated varint.
        assert_eq!(append_to_control(&[0x02], &extra), None);
        assert_eq!(append_to_control(&[0x00, 0x07, 0x00], &extra), None);
        assert_eq!(
            append_to_control(&[0x00, 0x04, 0x05, 0x06, 0x00], &extra),
            None
        );
        assert_eq!(append_to_control(&[0x00, 0x04, 0x40], &extra), None);
        assert_eq!(append_to_control(&[], &extra), None);
        // An empty SETTINGS frame gets just ours.
        let out = append_to_control(&[0x00, 0x04, 0x00], &extra).unwrap_or_default();
        assert_eq!(out.to_vec(), control(&extra));
    }

    #[test]
    fn sniffs_the_peer_settings_byte_by_byte() {
        let wire = control(&[(0x6, 100), (WT_ENABLED, 1), (WT_INITIAL_MAX_DATA, 5)]);
        let mut s = SettingsSniffer::default();
        let mut got = None;
        for b in &wire {
            if let Some(v) = s.observe(&[*b]) {
                got = Some(v);
            }
        }
        assert!(s.is_done());
        let got = got.unwrap_or_default();
        assert_eq!(get(&got, WT_ENABLED), Some(1));
        assert_eq!(get(&got, WT_INITIAL_MAX_DATA), Some(5));
        // Another stream type, or another first frame: given up at once.
        let mut s = SettingsSniffer::default();
        assert_eq!(s.observe(&[0x02, 0x00]), None);
        assert!(s.is_done());
        let mut s = SettingsSniffer::default();
        assert_eq!(s.observe(&[0x00, 0x07, 0x01, 0x00]), None);
        assert!(s.is_done());
    }

    #[test]
    fn codepoints() {
        let ids: Vec<u64> = server_settings(16).iter().map(|s| s.0).collect();
        assert_eq!(
            ids,
            [0xc671706a, 0x14e9cd29, 0x2c7cf000, 0x2b61, 0x2b64, 0x2b65]
        );
        let ids: Vec<u64> = client_settings().iter().map(|s| s.0).collect();
        assert_eq!(ids, [0x2c7cf000, 0x2b61, 0x2b64, 0x2b65]);
        assert_eq!(parse_settings(&[0x40]), None);
    }
}
