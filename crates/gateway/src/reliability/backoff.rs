//! Exponential backoff with ±50% jitter, so that many clients retrying the same failed
//! upstream do not come back in lockstep.

use rand::Rng;
use std::time::Duration;

/// Delay before retry number `attempt` (0-based): `base * 2^attempt`, capped at `max`,
/// times a random factor in [0.5, 1.5). An upstream's `Retry-After` wins if larger,
/// still capped at `max`.
pub fn delay(attempt: u32, base: Duration, max: Duration, retry_after: Option<Duration>) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16)).min(max);
    let jitter = rand::thread_rng().gen_range(0.5..1.5);
    let d = exp.mul_f64(jitter);
    match retry_after {
        Some(ra) if ra > d => ra.min(max),
        _ => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn grows_and_caps() {
        let b = Duration::from_millis(100);
        let m = Duration::from_millis(1000);
        for _ in 0..100 {
            let d0 = delay(0, b, m, None);
            assert!(d0 >= Duration::from_millis(50) && d0 < Duration::from_millis(150));
            assert!(delay(10, b, m, None) < Duration::from_millis(1500));
            assert_eq!(delay(0, b, m, Some(Duration::from_secs(60))), m);
        }
    }
}
