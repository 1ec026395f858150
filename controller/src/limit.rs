//! A small fixed-window rate limit per key: per peer address for the
//! failed attempts of the one call a caller without a certificate may make
//! (joining), so tokens cannot be guessed at speed while a fleet behind one
//! address enrolls at any pace; per app for deployment triggers; per user
//! and per address for failed web sign-ins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows `limit` calls per `window` for one key.
pub struct RateLimit<K = IpAddr> {
    limit: u32,
    window: Duration,
    seen: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: std::hash::Hash + Eq> RateLimit<K> {
    pub fn new(limit: u32, window: Duration) -> RateLimit<K> {
        RateLimit {
            limit,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Calls allowed per window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts a call for `peer`; `Err` with the wait when over the limit.
    pub fn check(&self, peer: K, now: Instant) -> Result<(), Duration> {
        self.admit(&peer, now)?;
        self.count(peer, now);
        Ok(())
    }

    /// `Err` with the wait when `peer` already used up its window; counts
    /// nothing (see [`RateLimit::count`]).
    pub fn admit(&self, peer: &K, now: Instant) -> Result<(), Duration> {
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.get(peer) {
            Some((start, count))
                if now.duration_since(*start) < self.window && *count >= self.limit =>
            {
                Err(self.window.saturating_sub(now.duration_since(*start)))
            }
            _ => Ok(()),
        }
    }

    /// Counts one event (a call, or a failed one) for `peer`.
    pub fn count(&self, peer: K, now: Instant) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget old windows so the map stays bounded by recent callers.
        if seen.len() > 10_000 {
            let window = self.window;
            seen.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = seen.entry(peer).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_address_per_window() {
        let limit = RateLimit::new(2, Duration::from_secs(60));
        let (one, two): (IpAddr, IpAddr) = (
            "127.0.0.1".parse().expect("ip"),
            "127.0.0.2".parse().expect("ip"),
        );
        let start = Instant::now();
        assert!(limit.check(one, start).is_ok());
        assert!(limit.check(one, start).is_ok());
        let wait = limit
            .check(one, start + Duration::from_secs(10))
            .expect_err("third call refused");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(
            limit.check(two, start).is_ok(),
            "other addresses are not affected"
        );
        assert!(
            limit.check(one, start + Duration::from_secs(61)).is_ok(),
            "a new window starts"
        );
    }

    #[test]
    fn only_counted_events_use_up_the_window() {
        let limit = RateLimit::new(2, Duration::from_secs(60));
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        let start = Instant::now();
        for _ in 0..30 {
            assert!(limit.admit(&peer, start).is_ok(), "nothing counted yet");
        }
        limit.count(peer, start);
        assert!(limit.admit(&peer, start).is_ok());
        limit.count(peer, start);
        let wait = limit
            .admit(&peer, start + Duration::from_secs(15))
            .expect_err("two failures use up the window");
        assert_eq!(wait, Duration::from_secs(45));
        assert!(limit.admit(&peer, start + Duration::from_secs(60)).is_ok());
    }
}
