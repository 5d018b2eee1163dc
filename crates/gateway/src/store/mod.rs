//! The shared store: PostgreSQL, for several replicas behind one load balancer
//! (`[store] url`). Budgets and reservations, per-key rate limits, decisions and feedback
//! live there, so every replica sees the same ones; each replica still keeps its own books
//! (SQLite) as a local journal for its dashboard and `conductor logs`.
//!
//! Writes follow the books' rules: decisions are queued to one writer task and committed in
//! batches, kept and retried while the store is away (they were already answered), and a
//! budgeted request's settlement is committed in the same transaction as its decision row
//! before the client gets its answer. Feedback is committed before its 2xx. What needs the
//! store to decide (a reservation, a rating, a rate check) fails with
//! [`StoreError::Unavailable`] while it is away, which the handlers turn into 503s.

use crate::books::DecisionRow;
use crate::config::StoreConfig;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::NoTls;

pub mod budgets;
pub mod check;
pub mod limits;
pub mod listen;
pub mod schema;
mod writer;

pub use listen::SharedRating;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Cannot reach the database (down, restarting, pool exhausted past the timeout).
    #[error("the shared store is unavailable: {0}")]
    Unavailable(String),
    #[error("shared store error: {0}")]
    Db(String),
    /// The store cannot be set up as configured: a bad URL, a schema newer than this build.
    #[error("shared store: {0}")]
    Setup(String),
    #[error("unknown decision_id {0}")]
    UnknownDecision(String),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // A server-side error that will not go away by itself (constraint, bad data, syntax)
        // is `Db`; a closed connection, I/O, a timeout or a passing condition is the store
        // being unavailable, worth a retry.
        match e.as_db_error() {
            Some(d) if !is_passing(d.code().code()) => StoreError::Db(d.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

/// SQLSTATEs that pass: connection exceptions (08), deadlocks and serialization failures
/// (40), insufficient resources such as too many connections (53), shutdowns and restarts
/// (57), and a read-only server during a failover (25006).
fn is_passing(code: &str) -> bool {
    ["08", "40", "53", "57"].iter().any(|class| code.starts_with(class)) || code == "25006"
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// One replica's handle on the shared store; cheap to clone behind its `Arc`.
pub struct SharedStore {
    pool: Pool,
    pg: tokio_postgres::Config,
    replica: String,
    writes: mpsc::UnboundedSender<writer::Cmd>,
    replica_timeout_ms: i64,
}

/// Hides the password when a URL is echoed in an error.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// One connection (its driver runs on the runtime until the client is dropped).
pub async fn connect(
    url: &str,
    timeout: Duration,
) -> Result<(tokio_postgres::Client, tokio_postgres::Config), StoreError> {
    let mut pg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Setup(format!("`store.url` {} is not a PostgreSQL URL: {e}", redacted(url))))?;
    pg.connect_timeout(timeout);
    pg.application_name("conductor");
    // A half-open connection (a database host that vanished) is noticed in about a minute.
    pg.keepalives_idle(Duration::from_secs(30));
    let (client, conn) = pg
        .connect(NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to {}: {e}", redacted(url))))?;
    tokio::spawn(conn);
    Ok((client, pg))
}

impl SharedStore {
    /// Connects, brings the schema up to date and starts the writer and the heartbeat.
    /// Must run inside the tokio runtime.
    pub async fn open(cfg: &StoreConfig, url: &str) -> Result<Arc<SharedStore>, StoreError> {
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let (mut client, pg) = connect(url, timeout).await?;
        let applied = schema::apply(&mut client).await?;
        if !applied.is_empty() {
            tracing::info!(steps = ?applied, "shared store schema migrated");
        }
        drop(client);

        let manager =
            Manager::from_config(pg.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(cfg.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| StoreError::Setup(e.to_string()))?;
        let replica = cfg.replica.clone().unwrap_or_else(default_replica_name);
        let (writes, rx) = mpsc::unbounded_channel();
        let store =
            Arc::new(SharedStore { pool, pg, replica, writes, replica_timeout_ms: cfg.replica_timeout_ms as i64 });
        store.register().await?;
        tokio::spawn(writer::run(store.pool.clone(), store.replica.clone(), rx));
        tokio::spawn(budgets::heartbeat(Arc::downgrade(&store)));
        tracing::info!(replica = %store.replica, "shared store connected");
        Ok(store)
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Queues a decision row; `settles` names the reservation it settles (its cost is then
    /// booked as spent in the same transaction).
    pub fn record(&self, row: DecisionRow, settles: Option<String>) {
        if self.writes.send(writer::Cmd::Decision(Box::new(row), settles)).is_err() {
            tracing::error!("shared store writer stopped; a decision was not recorded");
        }
    }

    /// Resolves once everything queued before it is committed.
    pub async fn flush(&self) {
        let (reply, rx) = oneshot::channel();
        if self.writes.send(writer::Cmd::Flush(reply)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Whether the store answers a query and the writer commits, both within `within`.
    pub async fn responsive(&self, within: Duration) -> bool {
        let check = async {
            let c = self.client().await.ok()?;
            c.query_one("SELECT 1", &[]).await.ok()?;
            drop(c);
            self.flush().await;
            Some(())
        };
        matches!(tokio::time::timeout(within, check).await, Ok(Some(())))
    }

    /// Records a rating durably and tells the other replicas. The decision may have been
    /// answered by another replica a moment ago and still sit in its writer's queue, so an
    /// id not found yet is looked for again for up to two seconds.
    pub async fn feedback(
        &self,
        decision_id: &str,
        score: f64,
        key_id: &str,
    ) -> Result<crate::books::FeedbackTarget, StoreError> {
        // This replica's own decisions are written before the lookup; a writer that cannot
        // write now means the store is away, not that the decision is unknown.
        if tokio::time::timeout(Duration::from_secs(2), self.flush()).await.is_err() {
            return Err(StoreError::Unavailable("this replica's decisions are not written yet".into()));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let mut c = self.client().await?;
            let txn = c.transaction().await?;
            let found = txn
                .query_opt("SELECT prompt, chosen_model, key_id FROM decisions WHERE id = $1", &[&decision_id])
                .await?;
            let Some(row) = found else {
                drop(txn);
                drop(c);
                if tokio::time::Instant::now() >= deadline {
                    return Err(StoreError::UnknownDecision(decision_id.to_string()));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            // A key may only rate its own decisions; "unknown" leaks nothing.
            if row.get::<_, String>(2) != key_id {
                return Err(StoreError::UnknownDecision(decision_id.to_string()));
            }
            let written = txn
                .query_one(
                    "INSERT INTO feedback (decision_id, key_id, score, ts_ms, replica) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (decision_id, key_id) DO UPDATE
                        SET score = EXCLUDED.score, ts_ms = EXCLUDED.ts_ms, replica = EXCLUDED.replica,
                            version = nextval('feedback_version')
                     RETURNING version, (xmax <> 0) AS replaced",
                    &[&decision_id, &key_id, &score, &crate::clock::now_ms(), &self.replica],
                )
                .await?;
            let version: i64 = written.get(0);
            // Delivered to every listening replica when (and only if) this commits.
            txn.execute("SELECT pg_notify($1, $2)", &[&listen::CHANNEL, &format!("{version} {}", self.replica)])
                .await?;
            txn.commit().await?;
            return Ok(crate::books::FeedbackTarget {
                prompt: row.get(0),
                chosen_model: row.get(1),
                replaced: written.get(1),
            });
        }
    }

    /// Every rating with its decision's prompt and model, oldest first (a replica's start).
    pub async fn all_ratings(&self) -> Result<(Vec<SharedRating>, i64), StoreError> {
        let c = self.client().await?;
        listen::ratings_since(&c, 0, i64::MAX).await
    }
}

/// The host's name and this process's id: unique among replicas, readable in the store.
fn default_replica_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let host = if host.is_empty() { "replica".to_string() } else { host };
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_conditions_are_unavailability() {
        for code in ["08006", "40P01", "40001", "53300", "57P01", "25006"] {
            assert!(is_passing(code), "{code}");
        }
        for code in ["23505", "22021", "42601"] {
            assert!(!is_passing(code), "{code}");
        }
    }

    #[test]
    fn passwords_are_not_echoed() {
        assert_eq!(redacted("postgres://app:s3cret@db:5432/conductor"), "postgres://…@db:5432/conductor");
        assert_eq!(redacted("postgres://db/conductor"), "postgres://db/conductor");
    }
}
