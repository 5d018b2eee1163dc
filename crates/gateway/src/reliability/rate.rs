//! A token bucket per key: `per_minute` requests refill evenly over a minute, up to a burst
//! of the same size. Bounds how fast one key can send requests or feedback, and the
//! dashboard's sign-in attempts, within one process (replicas count in the shared store).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes one token for `key` at `per_minute` (0 never limits), or says how long until
    /// one is available.
    pub fn check(&self, key: &str, per_minute: u32) -> Result<(), Duration> {
        if per_minute == 0 {
            return Ok(());
        }
        let cap = per_minute as f64;
        let per_sec = cap / 60.0;
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = b.entry(key.to_string()).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * per_sec).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses_per_key() {
        let r = RateLimiter::default();
        for _ in 0..3 {
            assert!(r.check("a", 3).is_ok());
        }
        let wait = r.check("a", 3).unwrap_err();
        assert!(wait > Duration::from_secs(10) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(r.check("b", 3).is_ok(), "buckets are per key");
        assert!(RateLimiter::default().check("a", 0).is_ok());
    }
}
