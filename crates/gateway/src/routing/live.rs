//! The router in use, shared by every request and taught live by feedback.
//!
//! Featurising a prompt (a MiniLM embedding takes milliseconds) and running the predictor
//! (a kNN scan over a large memory) are CPU work, so they never run on the async reactor:
//! a fixed set of worker threads takes jobs from a bounded channel and answers over a
//! oneshot channel; handlers only wait (text-embeddings-inference's tokenization
//! pattern). A full channel is back-pressure, answered at once instead of queued forever.
//!
//! The fitted feature extractor never changes after training, so workers featurise
//! outside any lock; only the short predict (read) and learn (write) steps take the lock.

use conductor_core::embedder::TextEmbedder;
use conductor_core::features::{Featurizer, SparseVec};
use conductor_core::router::{featurize_one, FeedbackSlot, Prediction, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::oneshot;

/// Why a routing job did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("the router has {0} prompts waiting; retry shortly")]
    Busy(usize),
    #[error("router failed: {0}")]
    Failed(String),
    #[error("router workers stopped")]
    Stopped,
}

struct Shared {
    featurizer: Featurizer,
    router: RwLock<Router>,
    embedder: Option<Arc<dyn TextEmbedder>>,
    /// Where each rating (decision id + key id) sits in the router's memory, so that a new
    /// rating of the same decision by the same key replaces the old one.
    ratings: Mutex<HashMap<String, FeedbackSlot>>,
}

impl Shared {
    fn features(&self, text: &str) -> Result<SparseVec, RoutingError> {
        featurize_one(&self.featurizer, text, self.embedder.as_deref())
            .map_err(|e| RoutingError::Failed(format!("{e:#}")))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Router> {
        self.router.read().unwrap_or_else(|p| p.into_inner())
    }

    fn predict(&self, text: &str, prompt_tokens: usize) -> Result<Vec<Prediction>, RoutingError> {
        let x = self.features(text)?;
        Ok(self.read().predict(&x, prompt_tokens))
    }

    fn learn(&self, rating: &str, text: &str, model: &str, score: f64) -> Result<(), RoutingError> {
        let known = self.ratings.lock().unwrap_or_else(|p| p.into_inner()).get(rating).copied();
        if let Some(slot) = known {
            self.router.write().unwrap_or_else(|p| p.into_inner()).replace_feedback(slot, score);
            return Ok(());
        }
        let x = self.features(text)?;
        let slot = self.router.write().unwrap_or_else(|p| p.into_inner()).add_feedback(&x, model, score);
        if let Some(slot) = slot {
            self.ratings.lock().unwrap_or_else(|p| p.into_inner()).insert(rating.to_string(), slot);
        }
        Ok(())
    }
}

enum Job {
    Predict { text: String, prompt_tokens: usize, reply: oneshot::Sender<Result<Vec<Prediction>, RoutingError>> },
    Learn { rating: String, text: String, model: String, score: f64, reply: oneshot::Sender<Result<(), RoutingError>> },
}

/// The serving router and its worker threads (they stop when this is dropped).
pub struct LiveRouter {
    shared: Arc<Shared>,
    jobs: SyncSender<Job>,
    capacity: usize,
    /// Where the router came from: an artifact path, or "cold start".
    source: String,
}

impl LiveRouter {
    /// Starts `workers` threads (at least one) behind a channel of `queue` waiting jobs.
    pub fn new(
        router: Router,
        embedder: Option<Arc<dyn TextEmbedder>>,
        source: String,
        workers: usize,
        queue: usize,
    ) -> anyhow::Result<LiveRouter> {
        let shared = Arc::new(Shared {
            featurizer: router.featurizer().clone(),
            router: RwLock::new(router),
            embedder,
            ratings: Mutex::new(HashMap::new()),
        });
        let (jobs, rx) = sync_channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let (shared, rx) = (shared.clone(), rx.clone());
            std::thread::Builder::new().name(format!("router-{i}")).spawn(move || work(&shared, &rx))?;
        }
        Ok(LiveRouter { shared, jobs, capacity: queue.max(1), source })
    }

    fn submit(&self, job: Job) -> Result<(), RoutingError> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => RoutingError::Busy(self.capacity),
            TrySendError::Disconnected(_) => RoutingError::Stopped,
        })
    }

    /// Every model's predicted success and cost for one prompt.
    pub async fn predict(&self, text: &str, prompt_tokens: usize) -> Result<Vec<Prediction>, RoutingError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Predict { text: text.to_string(), prompt_tokens, reply })?;
        rx.await.map_err(|_| RoutingError::Stopped)?
    }

    /// Teaches the router one outcome; later requests see it at once. `rating` identifies
    /// who rated what (decision and key): a second rating with the same id replaces the first.
    pub async fn learn(&self, rating: &str, text: &str, model: &str, score: f64) -> Result<(), RoutingError> {
        let (reply, rx) = oneshot::channel();
        let (rating, text, model) = (rating.to_string(), text.to_string(), model.to_string());
        self.submit(Job::Learn { rating, text, model, score, reply })?;
        rx.await.map_err(|_| RoutingError::Stopped)?
    }

    /// [`LiveRouter::learn`] on the calling thread (start-up replay, before serving).
    pub fn learn_now(&self, rating: &str, text: &str, model: &str, score: f64) -> Result<(), RoutingError> {
        self.shared.learn(rating, text, model, score)
    }

    /// Which router is serving and how it was trained (for `/healthz`).
    pub fn summary(&self) -> Value {
        let r = self.shared.read();
        let i = r.info();
        json!({
            "source": self.source,
            "predictor": i.predictor,
            "features": r.feature_kind().to_string(),
            "hyperparameters": i.hyperparameters,
            "train_prompts": i.train_prompts,
            "models": r.catalog().models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        })
    }
}

fn work(shared: &Shared, rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(j) => j,
            Err(_) => return, // every sender gone: the server is shutting down
        };
        match job {
            Job::Predict { text, prompt_tokens, reply } => {
                // A client that went away dropped the receiver; skip work nobody waits for.
                if !reply.is_closed() {
                    let _ = reply.send(shared.predict(&text, prompt_tokens));
                }
            }
            Job::Learn { rating, text, model, score, reply } => {
                let _ = reply.send(shared.learn(&rating, &text, &model, score));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_core::catalog::{Catalog, ModelEntry, Tier};
    use conductor_core::features::FeatureKind;

    fn catalog() -> Catalog {
        let m = |id: &str, p: f64, tier| ModelEntry {
            id: id.into(),
            provider: "test".into(),
            input_usd_per_mtok: p,
            output_usd_per_mtok: p,
            context_length: 8192,
            tier,
        };
        Catalog { models: vec![m("small", 0.1, Tier::Small), m("large", 10.0, Tier::Large)] }
    }

    #[tokio::test]
    async fn predicts_and_learns_on_worker_threads() {
        let live = LiveRouter::new(Router::cold_start(catalog(), FeatureKind::Ngram), None, "t".into(), 2, 8).unwrap();
        let before = live.predict("translate to french", 10).await.unwrap();
        for i in 0..10 {
            live.learn(&format!("d{i}/k"), "translate to french", "large", 0.0).await.unwrap();
        }
        let after = live.predict("translate to french", 10).await.unwrap();
        assert!(after[1].p_success < before[1].p_success - 0.3, "{before:?} → {after:?}");
        // The same rater re-rating one decision many times moves nothing further.
        for _ in 0..50 {
            live.learn("d0/k", "translate to french", "large", 0.0).await.unwrap();
        }
        assert_eq!(live.predict("translate to french", 10).await.unwrap(), after);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_not_queued() {
        // One worker blocked behind the router's write lock; the channel holds one job.
        let live = LiveRouter::new(Router::cold_start(catalog(), FeatureKind::Ngram), None, "t".into(), 1, 1).unwrap();
        let guard = live.shared.router.write().unwrap();
        let first = {
            let (reply, rx) = oneshot::channel();
            let (rating, text, model) = ("d/k".into(), "a".into(), "small".into());
            live.submit(Job::Learn { rating, text, model, score: 1.0, reply }).unwrap();
            rx
        };
        // The worker took the first job and waits for the lock; fill the channel.
        let mut refused = false;
        for _ in 0..100 {
            let (reply, _rx) = oneshot::channel();
            if let Err(RoutingError::Busy(_)) = live.submit(Job::Predict { text: "b".into(), prompt_tokens: 1, reply })
            {
                refused = true;
                break;
            }
        }
        assert!(refused, "a bounded queue must refuse once full");
        drop(guard);
        first.await.unwrap().unwrap();
    }
}
