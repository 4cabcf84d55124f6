//! Closing connections whose streams still have data queued.
//!
//! quinn 0.11 holds a CONNECTION_CLOSE behind congestion control while stream data is still
//! queued on the connection (quinn-rs/quinn#2785, fixed upstream after quinn-proto 0.11.19),
//! and a closed connection no longer takes the ACKs that would free its window. Closed in the
//! middle of a transfer, the close often never left, and the peer kept the connection until
//! its idle timeout: a client closed mid-upload in 13 of 290 rounds here, clients of a
//! `stop(true)` mid-download in 11 of 20. Resetting the streams first drops their queued data;
//! the resets then need to go out and be acknowledged before the close is no longer held back.

use std::time::Duration;

/// At least a scheduler turn or two for the tasks that own the streams to see their cancel.
const MIN: Duration = Duration::from_millis(5);
/// At most what a close may add before it goes ahead regardless.
const MAX: Duration = Duration::from_millis(100);

/// How long to wait between resetting the streams of these connections and closing them: two
/// round trips of the slowest one, within [`MIN`, `MAX`].
pub fn settle_time(rtts: impl Iterator<Item = Duration>) -> Duration {
    (rtts.max().unwrap_or_default() * 2).clamp(MIN, MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_round_trips_of_the_slowest_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(settle_time([ms(10), ms(30)].into_iter()), ms(60));
        assert_eq!(settle_time(std::iter::empty()), MIN);
        assert_eq!(settle_time([Duration::from_micros(300)].into_iter()), MIN);
        assert_eq!(settle_time([ms(400)].into_iter()), MAX);
    }
}
