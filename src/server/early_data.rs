//! Requests that arrived in 0-RTT (early data, `allow0RTT`): which may reach JS, the `425 Too
//! Early` answer for the rest, and the table `server.isEarlyData(req)` reads.
//!
//! 0-RTT data can be replayed by an attacker (RFC 8446 §8), so only safe methods are served
//! from it. RFC 9110 §9.2.1: "the GET, HEAD, OPTIONS, and TRACE methods are defined to be
//! safe". RFC 8470 §5.2: "A 425 (Too Early) status code indicates that the server is unwilling
//! to risk processing a request that might be replayed"; the client retries it after the
//! handshake.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use h3::error::Code;

use super::response::{send_plain, H3Stream};
use crate::ids::RequestId;
use crate::proto::safe_method::is_safe;
use crate::stats::Stats;
use crate::sync::lock;

/// What to do with a request, by whether it arrived in 0-RTT and its method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not early: as usual.
    Normal,
    /// Early and safe: to JS, flagged.
    Early,
    /// Early and not safe: 425 without calling JS.
    TooEarly,
}

pub fn verdict(early: bool, method: &http::Method) -> Verdict {
    match (early, is_safe(method)) {
        (false, _) => Verdict::Normal,
        (true, true) => Verdict::Early,
        (true, false) => Verdict::TooEarly,
    }
}

/// Count a request that arrived early and answer it with 425 when it may not be served.
/// Returns whether it goes on to JS (false: answered here).
pub(super) async fn admit(
    parts: &http::request::Parts,
    stream: &mut H3Stream,
    stats: &Stats,
) -> bool {
    stats.early_requests.fetch_add(1, Relaxed);
    if verdict(true, &parts.method) == Verdict::Early {
        return true;
    }
    stats.requests_rejected.fetch_add(1, Relaxed);
    // Whatever body follows is of no use (RFC 9114 §4.1.1).
    stream.stop_sending(Code::H3_NO_ERROR);
    send_plain(stream, 425, "Too Early", false).await;
    false
}

/// The requests being served that arrived in 0-RTT, for `server.isEarlyData(req)`.
#[derive(Default)]
pub struct EarlyRequests(Mutex<HashSet<RequestId>>);

/// Keeps a request in [`EarlyRequests`] while it is served.
pub struct EarlyMark<'a>(&'a EarlyRequests, RequestId);

impl EarlyRequests {
    /// Note `id` as early until the returned mark is dropped.
    pub fn mark(&self, id: RequestId) -> EarlyMark<'_> {
        lock(&self.0).insert(id);
        EarlyMark(self, id)
    }

    pub fn contains(&self, id: RequestId) -> bool {
        lock(&self.0).contains(&id)
    }
}

impl Drop for EarlyMark<'_> {
    fn drop(&mut self) {
        lock(&self.0 .0).remove(&self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn safe_methods_pass_early_others_are_too_early() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert_eq!(verdict(true, &m), Verdict::Early, "{m}");
            assert_eq!(verdict(false, &m), Verdict::Normal, "{m}");
        }
        let custom = Method::from_bytes(b"PROPFIND").unwrap();
        for m in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::CONNECT,
            custom,
        ] {
            assert_eq!(verdict(true, &m), Verdict::TooEarly, "{m}");
            assert_eq!(verdict(false, &m), Verdict::Normal, "{m}");
        }
    }

    #[test]
    fn mark_lasts_while_held() {
        let t = EarlyRequests::default();
        {
            let _m = t.mark(RequestId(7));
            assert!(t.contains(RequestId(7)));
            assert!(!t.contains(RequestId(8)));
        }
        assert!(!t.contains(RequestId(7)));
    }
}
