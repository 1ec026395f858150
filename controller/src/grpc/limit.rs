//! A small fixed-window rate limit per key: per peer address for the one
//! call a caller without a certificate may make (joining), so tokens cannot
//! be guessed at speed and failed joins cost bounded work; per app for
//! deployment triggers.

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
        if entry.1 >= self.limit {
            return Err(self.window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
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
}
