//! A circuit breaker per model: after `threshold` consecutive failures the model is
//! skipped (the router's next choice answers instead) for `cooldown`; then one probe
//! request is let through, and its outcome closes or re-opens the breaker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// Cooldown over; one probe is in flight. If its outcome never comes back (the
    /// caller gave up before calling the model), another probe is admitted after
    /// `until`, so the breaker cannot stay stuck half-open.
    HalfOpen {
        until: Instant,
    },
}

pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker { state: Mutex::new(State::Closed { failures: 0 }), threshold: threshold.max(1), cooldown }
    }

    /// Whether the breaker is closed (normal operation). A pure predicate: use it for
    /// decisions that must not change state, such as whether to retry.
    pub fn is_closed(&self) -> bool {
        matches!(*self.state.lock().unwrap_or_else(|p| p.into_inner()), State::Closed { .. })
    }

    /// May a request go to this model now? Moving from open to half-open admits exactly
    /// one caller (the probe), so call this once per request, right before calling.
    pub fn try_acquire(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *s {
            State::Closed { .. } => true,
            State::Open { until } | State::HalfOpen { until } => {
                let now = Instant::now();
                if now >= until {
                    *s = State::HalfOpen { until: now + self.cooldown };
                    true
                } else {
                    false
                }
            }
        }
    }

    /// How long until an open breaker lets a probe through (zero when closed or due).
    pub fn reopens_in(&self) -> Duration {
        match *self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Open { until } | State::HalfOpen { until } => until.saturating_duration_since(Instant::now()),
            State::Closed { .. } => Duration::ZERO,
        }
    }

    /// A call ended without saying anything against the model (a 429, a rejected request):
    /// a half-open probe counts as proof the model is up; a closed breaker is unchanged.
    pub fn release(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let State::HalfOpen { .. } = *s {
            *s = State::Closed { failures: 0 };
        }
    }

    pub fn success(&self) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = State::Closed { failures: 0 };
    }

    pub fn failure(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *s = match *s {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed { failures: failures + 1 },
            _ => State::Open { until: Instant::now() + self.cooldown },
        };
    }

    /// 0 closed, 1 open, 2 half-open (for `/metrics`).
    pub fn gauge(&self) -> u8 {
        match *self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Closed { .. } => 0,
            State::Open { .. } => 1,
            State::HalfOpen { .. } => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let b = Breaker::new(2, Duration::from_millis(50));
        b.failure();
        assert!(b.try_acquire());
        b.failure();
        assert!(!b.try_acquire(), "open");
        std::thread::sleep(Duration::from_millis(60));
        // Cooldown over: the next caller is the probe, the one after it waits.
        assert!(b.try_acquire());
        assert!(!b.try_acquire());
        b.success();
        assert!(b.try_acquire());
        let b = Breaker::new(1, Duration::from_secs(3600));
        b.failure();
        assert!(!b.try_acquire());
    }

    #[test]
    fn asking_whether_to_retry_does_not_use_up_the_probe() {
        let b = Breaker::new(1, Duration::from_millis(20));
        b.failure();
        std::thread::sleep(Duration::from_millis(30));
        // A retry check on an open breaker whose cooldown is over must leave the probe for
        // the next request (the old retry condition called the state-changing check).
        for _ in 0..3 {
            assert!(!b.is_closed());
        }
        assert_eq!(b.gauge(), 1, "still open: nobody has taken the probe");
        assert!(b.try_acquire(), "the probe is still available");
        assert_eq!(b.gauge(), 2);
    }
}
