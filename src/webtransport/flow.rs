//! Session flow control of the newer drafts (draft-ietf-webtrans-http3-15 §5): the credit we
//! give the peer (streams it may open, stream body bytes it may send) and the credit it gives
//! us (streams we may open, bytes we may send). Pure accounting; the session sends the capsules
//! it returns.
//!
//! §5.6: "Endpoints SHOULD send WT_MAX_DATA and WT_MAX_STREAMS capsules as they consume data or
//! close streams". Here a stream is consumed when JS accepts it and data when JS reads it; the
//! limit is raised to consumed + window once half a window was consumed since the last raise.

use crate::proto::wt_draft::PeerLimits;
use crate::proto::wt_settings::{DATA_WINDOW, STREAMS_WINDOW};
use crate::transport::classify::Dir;

/// draft-15 §5.6.2: "This value cannot exceed 2^60".
const MAX_STREAMS_LIMIT: u64 = 1 << 60;

/// The peer broke a flow-control rule: the session ends with WT_FLOW_CONTROL_ERROR.
#[derive(Debug, PartialEq, Eq)]
pub struct FlowError(pub &'static str);

/// Credit we give the peer for one resource.
#[derive(Debug)]
pub(super) struct RecvCredit {
    /// What we advertised (cumulative).
    limit: u64,
    /// What the peer used.
    used: u64,
    /// What JS consumed.
    consumed: u64,
    window: u64,
}

impl RecvCredit {
    fn new(window: u64) -> Self {
        RecvCredit {
            limit: window,
            used: 0,
            consumed: 0,
            window,
        }
    }

    /// The peer used `n` more. §5.6.2: "If an endpoint receives an incoming stream for a
    /// session that would exceed the advertised Maximum Streams value, it MUST close the
    /// WebTransport session with a WT_FLOW_CONTROL_ERROR error code"; §5.6.4 likewise for data.
    fn use_(&mut self, n: u64, what: &'static str) -> Result<(), FlowError> {
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            return Err(FlowError(what));
        }
        Ok(())
    }

    /// JS consumed `n` more: the new limit to advertise, if it is time to.
    fn consume(&mut self, n: u64) -> Option<u64> {
        self.consumed = self.consumed.saturating_add(n);
        let target = self.consumed.saturating_add(self.window);
        (target >= self.limit.saturating_add(self.window / 2)).then(|| {
            self.limit = target;
            target
        })
    }
}

/// Credit the peer gives us for opening streams of one direction.
#[derive(Debug)]
struct SendCredit {
    limit: u64,
    opened: u64,
    /// The limit our last WT_STREAMS_BLOCKED named (one capsule per limit value).
    blocked_at: Option<u64>,
}

impl SendCredit {
    /// §5.6.2: "If an endpoint receives a WT_MAX_STREAMS capsule that does not increase the
    /// Maximum Streams value previously received, it MUST close the WebTransport session with a
    /// WT_FLOW_CONTROL_ERROR error code", and values above 2^60 likewise.
    fn raise(&mut self, max: u64) -> Result<(), FlowError> {
        if max <= self.limit || max > MAX_STREAMS_LIMIT {
            return Err(FlowError("WT_MAX_STREAMS did not increase the limit"));
        }
        self.limit = max;
        Ok(())
    }
}

/// What a raise of ours asks the session to send.
#[derive(Debug, PartialEq, Eq)]
pub enum Grant {
    MaxData(u64),
    MaxStreams(Dir, u64),
}

/// What being held back by the peer's limit asks the session to send: the limit at which we
/// are blocked.
#[derive(Debug, PartialEq, Eq)]
pub enum Blocked {
    /// draft-15 §5.6.5: "A sender SHOULD send a WT_DATA_BLOCKED capsule (type=0x190B4D41) when
    /// it wishes to send data but is unable to do so due to WebTransport session-level flow
    /// control."
    Data(u64),
    /// draft-15 §5.6.3: "A sender SHOULD send a WT_STREAMS_BLOCKED capsule (type=0x190B4D43 or
    /// 0x190B4D44) when it wishes to open a stream but is unable to do so due to the maximum
    /// stream limit set by its peer."
    Streams(Dir, u64),
}

/// The flow-control state of one session.
#[derive(Debug)]
pub struct Flow {
    data: RecvCredit,
    bidi: RecvCredit,
    uni: RecvCredit,
    send_bidi: SendCredit,
    send_uni: SendCredit,
    /// The peer's data limit on us (§5.6.4), and what we sent against it.
    peer_max_data: u64,
    sent_data: u64,
    /// The data limit our last WT_DATA_BLOCKED named.
    data_blocked_at: Option<u64>,
}

/// Once per limit value: a sender blocked again at the same limit has said so already.
fn once_at(sent: &mut Option<u64>, limit: u64) -> Option<u64> {
    (*sent != Some(limit)).then(|| {
        *sent = Some(limit);
        limit
    })
}

impl Flow {
    pub fn new(peer: PeerLimits) -> Self {
        Flow {
            data: RecvCredit::new(DATA_WINDOW),
            bidi: RecvCredit::new(STREAMS_WINDOW),
            uni: RecvCredit::new(STREAMS_WINDOW),
            send_bidi: SendCredit {
                limit: peer.max_streams_bidi,
                opened: 0,
                blocked_at: None,
            },
            send_uni: SendCredit {
                limit: peer.max_streams_uni,
                opened: 0,
                blocked_at: None,
            },
            peer_max_data: peer.max_data,
            sent_data: 0,
            data_blocked_at: None,
        }
    }

    fn streams(&mut self, dir: Dir) -> &mut RecvCredit {
        match dir {
            Dir::Bidi => &mut self.bidi,
            Dir::Uni => &mut self.uni,
        }
    }

    fn send(&mut self, dir: Dir) -> &mut SendCredit {
        match dir {
            Dir::Bidi => &mut self.send_bidi,
            Dir::Uni => &mut self.send_uni,
        }
    }

    /// The peer opened a stream.
    pub fn peer_opened(&mut self, dir: Dir) -> Result<(), FlowError> {
        self.streams(dir)
            .use_(1, "the peer opened more streams than WT_MAX_STREAMS allows")
    }

    /// JS accepted a peer stream.
    pub fn accepted(&mut self, dir: Dir) -> Option<Grant> {
        self.streams(dir)
            .consume(1)
            .map(|max| Grant::MaxStreams(dir, max))
    }

    /// JS read `n` stream body bytes: they count as sent by the peer and as consumed.
    pub fn read(&mut self, n: u64) -> Result<Option<Grant>, FlowError> {
        self.data
            .use_(n, "the peer sent more stream data than WT_MAX_DATA allows")?;
        Ok(self.data.consume(n).map(Grant::MaxData))
    }

    /// Take credit to open a stream: `Err` when the peer's limit is reached, with the
    /// WT_STREAMS_BLOCKED to send (`None` when one was sent for this limit already).
    pub fn try_open(&mut self, dir: Dir) -> Result<(), Option<Blocked>> {
        let c = self.send(dir);
        if c.opened < c.limit {
            c.opened += 1;
            Ok(())
        } else {
            Err(once_at(&mut c.blocked_at, c.limit).map(|max| Blocked::Streams(dir, max)))
        }
    }

    /// Take up to `want` bytes of the peer's data credit (§5.6.4: "The sum of the lengths of
    /// Stream Body data sent on all streams associated with this session MUST NOT exceed the
    /// Maximum Data value advertised by a receiver"). `Err` when there is none left and `want`
    /// is not 0, with the WT_DATA_BLOCKED to send (once per limit).
    pub fn take_data(&mut self, want: u64) -> Result<u64, Option<Blocked>> {
        let n = want.min(self.peer_max_data.saturating_sub(self.sent_data));
        if n == 0 && want > 0 {
            return Err(once_at(&mut self.data_blocked_at, self.peer_max_data).map(Blocked::Data));
        }
        self.sent_data += n;
        Ok(n)
    }

    /// The peer sent WT_MAX_STREAMS.
    pub fn peer_max_streams(&mut self, dir: Dir, max: u64) -> Result<(), FlowError> {
        self.send(dir).raise(max)
    }

    /// The peer sent WT_MAX_DATA. §5.6.4: "If an endpoint receives a WT_MAX_DATA capsule with a
    /// Maximum Data value that does not increase the Maximum Data value previously received, it
    /// MUST close the WebTransport session with a WT_FLOW_CONTROL_ERROR error code."
    pub fn peer_max_data(&mut self, max: u64) -> Result<(), FlowError> {
        if max <= self.peer_max_data {
            return Err(FlowError("WT_MAX_DATA did not increase the limit"));
        }
        self.peer_max_data = max;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow {
        Flow::new(PeerLimits {
            max_data: 100,
            max_streams_bidi: 2,
            max_streams_uni: 1,
        })
    }

    #[test]
    fn peer_streams_beyond_the_window_are_an_error() {
        let mut f = flow();
        for _ in 0..STREAMS_WINDOW {
            assert_eq!(f.peer_opened(Dir::Uni), Ok(()));
        }
        assert!(f.peer_opened(Dir::Uni).is_err());
        // The other direction has its own count.
        assert_eq!(f.peer_opened(Dir::Bidi), Ok(()));
    }

    #[test]
    fn accepting_streams_raises_the_limit_by_half_windows() {
        let mut f = flow();
        let half = STREAMS_WINDOW / 2;
        for i in 1..half {
            f.peer_opened(Dir::Bidi).unwrap();
            assert_eq!(f.accepted(Dir::Bidi), None, "accept {i}");
        }
        f.peer_opened(Dir::Bidi).unwrap();
        assert_eq!(
            f.accepted(Dir::Bidi),
            Some(Grant::MaxStreams(Dir::Bidi, half + STREAMS_WINDOW))
        );
        // The peer may now open up to the new limit, and no further.
        for _ in half..half + STREAMS_WINDOW {
            f.peer_opened(Dir::Bidi).unwrap();
        }
        assert!(f.peer_opened(Dir::Bidi).is_err());
    }

    #[test]
    fn data_is_counted_and_credited_as_read() {
        let mut f = flow();
        assert_eq!(f.read(DATA_WINDOW / 2 - 1), Ok(None));
        assert_eq!(
            f.read(1),
            Ok(Some(Grant::MaxData(DATA_WINDOW / 2 + DATA_WINDOW)))
        );
        assert!(f.read(DATA_WINDOW + 1).is_err());
    }

    #[test]
    fn our_streams_wait_for_the_peers_credit() {
        let mut f = flow();
        assert_eq!(f.try_open(Dir::Uni), Ok(()));
        // Blocked at the peer's limit of 1: WT_STREAMS_BLOCKED(1), once.
        assert_eq!(
            f.try_open(Dir::Uni),
            Err(Some(Blocked::Streams(Dir::Uni, 1)))
        );
        assert_eq!(f.try_open(Dir::Uni), Err(None));
        assert!(f.peer_max_streams(Dir::Uni, 1).is_err());
        assert_eq!(f.peer_max_streams(Dir::Uni, 3), Ok(()));
        assert_eq!(f.try_open(Dir::Uni), Ok(()));
        assert_eq!(f.try_open(Dir::Uni), Ok(()));
        // A new limit, a new capsule.
        assert_eq!(
            f.try_open(Dir::Uni),
            Err(Some(Blocked::Streams(Dir::Uni, 3)))
        );
        assert!(f.peer_max_streams(Dir::Uni, (1 << 60) + 1).is_err());
        assert_eq!(f.try_open(Dir::Bidi), Ok(()));
        assert_eq!(f.try_open(Dir::Bidi), Ok(()));
        assert_eq!(
            f.try_open(Dir::Bidi),
            Err(Some(Blocked::Streams(Dir::Bidi, 2)))
        );
    }

    #[test]
    fn peer_data_limit_must_grow() {
        let mut f = flow();
        assert!(f.peer_max_data(100).is_err());
        assert_eq!(f.peer_max_data(101), Ok(()));
    }

    #[test]
    fn our_data_stays_within_the_peers_credit() {
        let mut f = flow();
        assert_eq!(f.take_data(60), Ok(60));
        assert_eq!(f.take_data(60), Ok(40));
        // Blocked at 100: WT_DATA_BLOCKED(100), once.
        assert_eq!(f.take_data(1), Err(Some(Blocked::Data(100))));
        assert_eq!(f.take_data(1), Err(None));
        assert_eq!(f.take_data(0), Ok(0));
        f.peer_max_data(150).unwrap();
        assert_eq!(f.take_data(1000), Ok(50));
        assert_eq!(f.take_data(0), Ok(0));
        assert_eq!(f.take_data(1), Err(Some(Blocked::Data(150))));
    }
}
