//! A bounded queue in front of each model: at most `concurrency` calls run, at most
//! `max_waiting` more wait; beyond that the request is refused at once (429 with
//! `Retry-After`) instead of piling up until every client times out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Queue {
    sem: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// Queue full.
#[derive(Debug, Clone, Copy)]
pub struct Full {
    pub waiting: usize,
}

/// A running slot; dropping it lets the next waiter in.
pub type Slot = OwnedSemaphorePermit;

impl Queue {
    pub fn new(concurrency: usize, max_waiting: usize) -> Queue {
        Queue { sem: Arc::new(Semaphore::new(concurrency.max(1))), waiting: Arc::new(AtomicUsize::new(0)), max_waiting }
    }

    pub async fn acquire(&self) -> Result<Slot, Full> {
        if let Ok(p) = self.sem.clone().try_acquire_owned() {
            return Ok(p);
        }
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        struct Waiting(Arc<AtomicUsize>);
        impl Drop for Waiting {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _w = Waiting(self.waiting.clone());
        if before >= self.max_waiting {
            return Err(Full { waiting: before });
        }
        self.sem.clone().acquire_owned().await.map_err(|_| Full { waiting: before })
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
}
