//! A bounded queue in front of each model: at most `concurrency` calls run, at most
//! `max_waiting` more wait; beyond that the request is refused at once (429 with
//! `Retry-After`) instead of piling up until every client times out. The queue times its
//! own calls, so a refusal can say how long the work ahead of it will take.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Weight of the newest call in the moving average of call durations.
const EWMA_ALPHA: f64 = 0.2;

pub struct Queue {
    sem: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    concurrency: usize,
    /// Moving average of how long a slot is held, in microseconds (0 = no call yet).
    service_us: Arc<AtomicU64>,
}

/// Queue full: how many wait, and how long the work ahead would take at the recent pace.
#[derive(Debug, Clone, Copy)]
pub struct Full {
    pub waiting: usize,
    pub expected_wait: Duration,
}

/// A running slot; dropping it lets the next waiter in and records how long it was held.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    started: Instant,
    service_us: Arc<AtomicU64>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let took = self.started.elapsed().as_micros() as f64;
        let _ = self.service_us.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |old| {
            let avg = if old == 0 { took } else { EWMA_ALPHA * took + (1.0 - EWMA_ALPHA) * old as f64 };
            Some(avg.max(1.0) as u64)
        });
    }
}

impl Queue {
    pub fn new(concurrency: usize, max_waiting: usize) -> Queue {
        let concurrency = concurrency.max(1);
        Queue {
            sem: Arc::new(Semaphore::new(concurrency)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
            concurrency,
            service_us: Arc::new(AtomicU64::new(0)),
        }
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        Slot { _permit: permit, started: Instant::now(), service_us: self.service_us.clone() }
    }

    /// How long `waiting` requests ahead take to clear: they and the running calls drain
    /// `concurrency` at a time at the recent mean call duration (1 s before any call).
    pub fn expected_wait(&self, waiting: usize) -> Duration {
        let mean = match self.service_us.load(Ordering::SeqCst) {
            0 => Duration::from_secs(1),
            us => Duration::from_micros(us),
        };
        let rounds = (waiting + self.concurrency) as f64 / self.concurrency as f64;
        mean.mul_f64(rounds)
    }

    pub async fn acquire(&self) -> Result<Slot, Full> {
        if let Ok(p) = self.sem.clone().try_acquire_owned() {
            return Ok(self.slot(p));
        }
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        struct Waiting(Arc<AtomicUsize>);
        impl Drop for Waiting {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _w = Waiting(self.waiting.clone());
        let full = || Full { waiting: before, expected_wait: self.expected_wait(before) };
        if before >= self.max_waiting {
            return Err(full());
        }
        self.sem.clone().acquire_owned().await.map(|p| self.slot(p)).map_err(|_| full())
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_when_full() {
        let q = Arc::new(Queue::new(1, 1));
        let running = q.acquire().await.unwrap();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.acquire().await.map(|_| ()) });
        while q.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(q.acquire().await.is_err(), "one running, one waiting: third refused");
        drop(running);
        assert!(waiter.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn the_expected_wait_follows_the_recent_call_duration() {
        let q = Queue::new(1, 0);
        {
            let _s = q.acquire().await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _running = q.acquire().await.unwrap();
        let full = q.acquire().await.map(|_| ()).unwrap_err();
        // Nothing waits, one call runs: about one call duration.
        assert!(full.expected_wait >= Duration::from_millis(190), "{full:?}");
        assert!(q.expected_wait(40) >= Duration::from_secs(8), "40 ahead at 0.2 s each");
    }
}
