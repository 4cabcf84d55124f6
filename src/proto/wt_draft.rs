//! Which WebTransport dialect a session speaks, chosen per session from the client's request
//! (server) or the server's SETTINGS (client). The stream headers, datagrams, CLOSE and DRAIN
//! capsules are the same in all three; what differs is the upgrade token, the draft-02
//! headers, and the newer drafts' session flow control.

use super::wt_settings::{self, ENABLE_WEBTRANSPORT_DRAFT02, WT_ENABLED, WT_MAX_SESSIONS};

/// The dialects we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draft {
    /// draft-ietf-webtrans-http3-02: `:protocol = webtransport` and the
    /// `sec-webtransport-http3-draft02` header (Chromium, Firefox).
    Draft02,
    /// drafts 07 to 13: `:protocol = webtransport` without the draft-02 header,
    /// SETTINGS_WT_MAX_SESSIONS, capsule flow control (Safari as reported, pywebtransport 0.8).
    Draft13,
    /// drafts 15 and 16: `:protocol = webtransport-h3` (§3.2), SETTINGS_WT_ENABLED (§3.1).
    Draft15,
}

impl Draft {
    /// The name JS sees (`session.draft`).
    pub fn name(self) -> &'static str {
        match self {
            Draft::Draft02 => "draft02",
            Draft::Draft13 => "draft13",
            Draft::Draft15 => "draft15",
        }
    }

    /// Whether the newer drafts' session flow control can apply (draft-15 §5); draft-02 has none.
    pub fn has_flow_control(self) -> bool {
        self != Draft::Draft02
    }

    /// Server: the dialect of a CONNECT request. `h3_token`: its `:protocol` was
    /// `webtransport-h3`; `draft02_header`: it carried `sec-webtransport-http3-draft02`.
    pub fn of_request(h3_token: bool, draft02_header: bool) -> Draft {
        match (h3_token, draft02_header) {
            (true, _) => Draft::Draft15,
            (false, true) => Draft::Draft02,
            (false, false) => Draft::Draft13,
        }
    }

    /// Client: the newest dialect the server's SETTINGS offer. draft-15 §3.1: "Clients MUST NOT
    /// attempt to establish WebTransport sessions with the "webtransport-h3" token until they
    /// have received the setting indicating WebTransport support from the server."
    pub fn for_server(settings: &[(u64, u64)]) -> Draft {
        let has = |id| wt_settings::get(settings, id).is_some_and(|v| v > 0);
        if wt_settings::get(settings, WT_ENABLED) == Some(1) {
            Draft::Draft15
        } else if has(WT_MAX_SESSIONS) && !has(ENABLE_WEBTRANSPORT_DRAFT02) {
            Draft::Draft13
        } else {
            Draft::Draft02
        }
    }
}

/// The peer's initial limits on what we may open and send (draft-15 §5.5), or `None` when flow
/// control is off for this connection: §5.1, "Flow control is enabled when both endpoints
/// declare their intent to use flow control" by sending any of the three with a non-zero value
/// (we always do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLimits {
    pub max_data: u64,
    pub max_streams_bidi: u64,
    pub max_streams_uni: u64,
}

impl PeerLimits {
    pub fn from_settings(settings: &[(u64, u64)]) -> Option<PeerLimits> {
        let get = |id| wt_settings::get(settings, id).unwrap_or(0);
        let limits = PeerLimits {
            max_data: get(wt_settings::WT_INITIAL_MAX_DATA),
            max_streams_bidi: get(wt_settings::WT_INITIAL_MAX_STREAMS_BIDI),
            max_streams_uni: get(wt_settings::WT_INITIAL_MAX_STREAMS_UNI),
        };
        (limits.max_data > 0 || limits.max_streams_bidi > 0 || limits.max_streams_uni > 0)
            .then_some(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_decides_on_the_server() {
        assert_eq!(Draft::of_request(true, false), Draft::Draft15);
        assert_eq!(Draft::of_request(true, true), Draft::Draft15);
        assert_eq!(Draft::of_request(false, true), Draft::Draft02);
        assert_eq!(Draft::of_request(false, false), Draft::Draft13);
        assert!(!Draft::Draft02.has_flow_control());
        assert_eq!(Draft::Draft15.name(), "draft15");
    }

    #[test]
    fn server_settings_decide_on_the_client() {
        assert_eq!(Draft::for_server(&[(WT_ENABLED, 1)]), Draft::Draft15);
        // Ours: everything at once, draft-15 wins.
        assert_eq!(
            Draft::for_server(&wt_settings::server_settings(16)),
            Draft::Draft15
        );
        assert_eq!(Draft::for_server(&[(WT_MAX_SESSIONS, 4)]), Draft::Draft13);
        assert_eq!(
            Draft::for_server(&[(WT_MAX_SESSIONS, 4), (ENABLE_WEBTRANSPORT_DRAFT02, 1)]),
            Draft::Draft02
        );
        assert_eq!(Draft::for_server(&[]), Draft::Draft02);
        // A value other than 1 is not this draft's support (§3.1).
        assert_eq!(Draft::for_server(&[(WT_ENABLED, 2)]), Draft::Draft02);
    }

    #[test]
    fn flow_control_needs_a_non_zero_limit() {
        assert_eq!(PeerLimits::from_settings(&[]), None);
        assert_eq!(
            PeerLimits::from_settings(&[(wt_settings::WT_INITIAL_MAX_DATA, 0)]),
            None
        );
        let l = PeerLimits::from_settings(&[(wt_settings::WT_INITIAL_MAX_STREAMS_UNI, 3)]);
        assert_eq!(
            l,
            Some(PeerLimits {
                max_data: 0,
                max_streams_bidi: 0,
                max_streams_uni: 3
            })
        );
    }
}
