//! When to renew an automatic certificate and when to retry a failed order. The CA's
//! suggested window (ACME Renewal Information, RFC 9773) wins when the CA offers one: a
//! uniformly random time inside it, kept while the window stays the same, the window
//! re-fetched at the CA's `Retry-After` (no sooner than `ACME_RETRY_BASE`, no later than
//! 6 hours). Otherwise a third of the lifetime before the end (half for lifetimes under
//! 10 days). Failures are retried after 1, 10 and 100 × `ACME_RETRY_BASE`, then daily.

use std::time::Duration;

/// The longest wait between retries, and between checks of a certificate far from renewal.
pub const DAY: Duration = Duration::from_hours(24);

/// The longest wait between two fetches of the renewal window, whatever the CA's
/// `Retry-After` says: a window moved early (a revocation, an incident) is seen within it.
pub const ARI_MAX_POLL: Duration = Duration::from_hours(6);

/// When to renew a certificate valid from `before` to `after` (seconds since the epoch): a
/// third of its lifetime before the end, half for lifetimes under 10 days.
#[must_use]
pub fn renewal_time(before: i64, after: i64) -> i64 {
    let lifetime = after.saturating_sub(before).max(0);
    let left = if lifetime < 10 * 86_400 {
        lifetime / 2
    } else {
        lifetime / 3
    };
    after - left
}

/// Whether the CA's window `[start, end]` can be followed for a certificate expiring at
/// `not_after`: one that ends after the expiry would let the certificate lapse.
#[must_use]
pub fn window_usable(start: i64, end: i64, not_after: i64) -> bool {
    start <= end && end <= not_after
}

/// How long to wait before fetching the window again, from the CA's `Retry-After`.
#[must_use]
pub fn poll_interval(retry_after: Duration, base: Duration) -> Duration {
    retry_after.clamp(base.min(ARI_MAX_POLL), ARI_MAX_POLL)
}

/// The renewal time picked inside the CA's window, kept while the window does not change so
/// that re-fetching it does not drift the time towards the window's start.
#[derive(Debug, Default)]
pub struct AriPick {
    window: Option<(i64, i64)>,
    at: i64,
}

impl AriPick {
    /// The time for `[start, end]`: the earlier pick for the same window, else `start` plus
    /// `random` modulo the window's length.
    pub fn at(&mut self, start: i64, end: i64, random: u64) -> i64 {
        if self.window != Some((start, end)) {
            let span = u64::try_from(end.saturating_sub(start)).unwrap_or(0);
            let offset = random.checked_rem(span.saturating_add(1)).unwrap_or(0);
            self.window = Some((start, end));
            self.at = start.saturating_add(i64::try_from(offset).unwrap_or(0));
        }
        self.at
    }
}

/// The wait after the `failures`-th consecutive failure (0-based): `base`, 10 × `base`,
/// 100 × `base`, then daily.
#[must_use]
pub fn retry_delay(failures: u32, base: Duration) -> Duration {
    match failures {
        0 => base,
        1 => base * 10,
        2 => base * 100,
        _ => DAY,
    }
    .min(DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_at_a_third_or_half_of_the_lifetime() {
        let day = 86_400;
        assert_eq!(renewal_time(0, 90 * day), 60 * day);
        assert_eq!(renewal_time(0, 60), 30);
        assert_eq!(renewal_time(0, 6 * day), 3 * day);
    }

    #[test]
    fn retry_schedule_is_lets_encrypts() {
        let m = Duration::from_mins(1);
        let got: Vec<u64> = (0..5).map(|n| retry_delay(n, m).as_secs()).collect();
        assert_eq!(got, [60, 600, 6000, 86_400, 86_400]);
    }

    #[test]
    fn the_pick_stays_inside_the_window_and_only_moves_with_it() {
        let mut pick = AriPick::default();
        assert_eq!(pick.at(100, 200, 50), 150);
        // The same window again keeps the time whatever the new random number.
        assert_eq!(pick.at(100, 200, 7), 150);
        assert_eq!(pick.at(100, 200, u64::MAX), 150);
        // A moved window gets a new time, inside it (both ends included).
        assert_eq!(pick.at(300, 310, 21), 310);
        assert_eq!(pick.at(300, 300, 5), 300);
        let mut fresh = AriPick::default();
        assert_eq!(fresh.at(5, 4, 9), 5);
    }

    #[test]
    fn windows_past_the_expiry_are_refused_and_polls_are_clamped() {
        assert!(window_usable(10, 20, 20));
        assert!(!window_usable(10, 21, 20));
        assert!(!window_usable(20, 10, 30));
        let base = Duration::from_mins(1);
        assert_eq!(poll_interval(Duration::ZERO, base), base);
        assert_eq!(poll_interval(Duration::from_hours(1), base).as_secs(), 3600);
        assert_eq!(poll_interval(Duration::from_hours(30), base), ARI_MAX_POLL);
    }
}
