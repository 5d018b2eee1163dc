//! The books: every decision and every piece of feedback in one SQLite file (WAL).
//!
//! One writer thread owns the write connection. Decisions are queued to it and written
//! in batches (one transaction per batch) so logging never sits on the request path.
//! Feedback is different: the HTTP handler waits until its row is committed with
//! `synchronous=FULL` before answering 2xx, so acknowledged feedback survives a SIGKILL
//! or power loss. Requests that spend from a budget wait the same way for their decision
//! row (via [`Books::flush`]), so a crash cannot forget spend. Because the queue is FIFO, a decision answered to a client is always
//! written before any feedback about it.

use conductor_core::distill::{DistillMeta, DistillRow};
use conductor_core::router::Prediction;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::{broadcast, oneshot};

pub mod check;
pub mod migrations;
pub mod rollup;
pub mod views;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    chosen_model TEXT,
    policy TEXT NOT NULL,
    reason TEXT NOT NULL,
    candidates TEXT NOT NULL,   -- JSON [{model, p_success, est_cost_usd}]
    attempts TEXT NOT NULL,     -- JSON [{model, outcome, error}]
    prompt TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    baseline_cost_usd REAL NOT NULL DEFAULT 0, -- same tokens at the largest model's price
    latency_ms REAL NOT NULL DEFAULT 0,
    stream INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL,      -- ok | abstained | error | client_disconnected
    error TEXT,
    verification TEXT,          -- JSON {strategy, max_risk, abstain, verified, abstained, ...}; NULL when unchecked
    ttft_ms REAL                -- time to first token (streams); NULL for whole answers
);
CREATE INDEX IF NOT EXISTS decisions_key_ts ON decisions(key_id, ts_ms);
CREATE INDEX IF NOT EXISTS decisions_ts ON decisions(ts_ms);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    decision_id TEXT NOT NULL REFERENCES decisions(id),
    score REAL NOT NULL,
    key_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_decision ON feedback(decision_id);
";

/// Indexes for the dashboard's filters (`views.rs`); created after the column migrations,
/// since older books gain some of their columns there.
const VIEW_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS decisions_model_ts ON decisions(chosen_model, ts_ms);
CREATE INDEX IF NOT EXISTS decisions_outcome_ts ON decisions(outcome, ts_ms);
CREATE INDEX IF NOT EXISTS feedback_ts ON feedback(ts_ms);
";

/// One rating per decision per key: books written before this rule keep each key's latest
/// rating of a decision, then a unique index makes the rule part of the schema.
const FEEDBACK_ONE_PER_KEY: &str = "
DELETE FROM feedback WHERE id NOT IN (SELECT MAX(id) FROM feedback GROUP BY decision_id, key_id);
CREATE UNIQUE INDEX IF NOT EXISTS feedback_decision_key ON feedback(decision_id, key_id);
";

/// How one model call of a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    Ok,
    Error,
    /// Not called: breaker open or queue full.
    Skipped,
    /// Answered, but the answer was not trusted: the request went on to the next model.
    Rejected,
}

/// One model call tried for a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub model: String,
    pub outcome: AttemptOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the answer checker said (checked requests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<crate::verification::Verdict>,
    /// What an answer that was not kept cost (it is paid all the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// When the call began, in ms after the request arrived, and how long it took (attempts
    /// run one after another, so each starts where the previous one ended; a streamed answer
    /// lasts until its stream ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
}

/// One routed request, as written to the books and read back by `conductor logs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRow {
    pub id: String,
    pub ts_ms: i64,
    pub key_id: String,
    pub requested_model: String,
    pub chosen_model: Option<String>,
    pub policy: String,
    pub reason: String,
    /// Every candidate's predicted success and estimated cost (empty for a direct request).
    pub candidates: Vec<Prediction>,
    pub attempts: Vec<Attempt>,
    /// The routed text, when `books.log_prompts` is on.
    pub prompt: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub baseline_cost_usd: f64,
    pub latency_ms: f64,
    pub stream: bool,
    pub outcome: String,
    pub error: Option<String>,
    /// How the answer was checked, when it was (see `verification.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<serde_json::Value>,
    /// Time to the first streamed token (streams only).
    pub ttft_ms: Option<f64>,
}

/// What the feedback handler needs back to teach the router.
#[derive(Debug, Clone)]
pub struct FeedbackTarget {
    pub prompt: Option<String>,
    pub chosen_model: Option<String>,
    /// This key had rated this decision before; the new score replaced the old one.
    pub replaced: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BooksError {
    #[error("unknown decision_id {0}")]
    UnknownDecision(String),
    #[error("books database error: {0}")]
    Db(String),
    #[error("books writer stopped")]
    Closed,
}

enum Cmd {
    Decision(Box<DecisionRow>),
    Feedback { decision_id: String, score: f64, key_id: String, reply: FeedbackReply },
    Flush(oneshot::Sender<()>),
}

/// Handle to the books; cheap to clone.
#[derive(Clone)]
pub struct Books {
    tx: mpsc::Sender<Cmd>,
    path: PathBuf,
    /// Each decision once it is committed (the dashboard's live view).
    committed: broadcast::Sender<Arc<DecisionRow>>,
}

/// Keeps the writer thread; dropping all [`Books`] handles and then calling
/// [`BooksWriter::join`] flushes everything.
pub struct BooksWriter {
    handle: JoinHandle<()>,
}

impl BooksWriter {
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

/// Opens (creating if needed) a books database with WAL and FULL sync, at the newest schema.
pub fn open_connection(path: &Path) -> Result<Connection, BooksError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| BooksError::Db(format!("cannot create {}: {e}", dir.display())))?;
    }
    // Every failure names the file: "file is not a database" alone does not say which.
    let at = |e| in_file(path, e);
    let mut conn = Connection::open(path).map_err(|e| at(db(e)))?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| at(db(e)))?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(|e| at(db(e)))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| at(db(e)))?;
    let applied = migrations::apply(&mut conn).map_err(at)?;
    if !applied.is_empty() {
        tracing::info!(path = %path.display(), steps = ?applied, "books schema migrated");
    }
    Ok(conn)
}

/// A database error that names its file.
pub(crate) fn in_file(path: &Path, e: BooksError) -> BooksError {
    match e {
        BooksError::Db(m) => BooksError::Db(format!("{}: {m}", path.display())),
        other => other,
    }
}

fn add_column_if_missing(conn: &Connection, column: &str, sql_type: &str) -> Result<(), BooksError> {
    let has: bool = conn
        .query_row("SELECT 1 FROM pragma_table_info('decisions') WHERE name = ?1", [column], |_| Ok(()))
        .optional()
        .map_err(db)?
        .is_some();
    if !has {
        conn.execute_batch(&format!("ALTER TABLE decisions ADD COLUMN {column} {sql_type}")).map_err(db)?;
    }
    Ok(())
}

fn db(e: rusqlite::Error) -> BooksError {
    BooksError::Db(e.to_string())
}

impl Books {
    /// Opens the database and starts the writer thread.
    pub fn open(path: &Path) -> Result<(Books, BooksWriter), BooksError> {
        let mut conn = open_connection(path)?;
        // Decisions written before rollups existed (or by another tool) are folded in once.
        let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
        let folded = rollup::catch_up(&txn)?;
        txn.commit().map_err(db)?;
        if folded > 0 {
            tracing::info!(decisions = folded, "books: traffic rollups brought up to date");
        }
        let (tx, rx) = mpsc::channel::<Cmd>();
        // A slow watcher misses rows (and is told so), it never holds the writer up.
        let (committed, _) = broadcast::channel(1024);
        let published = committed.clone();
        let handle = std::thread::Builder::new()
            .name("books-writer".into())
            .spawn(move || writer_loop(conn, rx, published))
            .map_err(|e| BooksError::Db(e.to_string()))?;
        Ok((Books { tx, path: path.to_path_buf(), committed }, BooksWriter { handle }))
    }

    /// Decisions as they are committed, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DecisionRow>> {
        self.committed.subscribe()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a decision row (returns at once).
    pub fn record(&self, row: DecisionRow) {
        if self.tx.send(Cmd::Decision(Box::new(row))).is_err() {
            tracing::error!("books writer stopped; a decision was not recorded");
        }
    }

    /// Writes feedback durably; resolves once committed.
    pub async fn feedback(
        &self,
        decision_id: String,
        score: f64,
        key_id: String,
    ) -> Result<FeedbackTarget, BooksError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Cmd::Feedback { decision_id, score, key_id, reply }).map_err(|_| BooksError::Closed)?;
        rx.await.map_err(|_| BooksError::Closed)?
    }

    /// Queues a flush; its receiver fires once everything queued before it is committed
    /// (None: the writer is gone).
    fn queue_flush(&self) -> Option<oneshot::Receiver<()>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Cmd::Flush(reply)).ok().map(|_| rx)
    }

    /// Whether the writer commits: true once a flush came back within `within`.
    pub async fn responsive(&self, within: std::time::Duration) -> bool {
        match self.queue_flush() {
            Some(rx) => matches!(tokio::time::timeout(within, rx).await, Ok(Ok(()))),
            None => false,
        }
    }

    /// Resolves once everything queued before it is committed.
    pub async fn flush(&self) {
        if let Some(rx) = self.queue_flush() {
            let _ = rx.await;
        }
    }
}

/// Where a rating's outcome goes once its batch is committed (or not).
type FeedbackReply = oneshot::Sender<Result<FeedbackTarget, BooksError>>;

/// How long the writer waits before retrying a batch that could not be committed.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// What a batch that could not be committed leaves to retry: its decisions (already answered
/// to clients, so never dropped) and the flushes waiting for them.
struct Unwritten {
    error: BooksError,
    decisions: Vec<DecisionRow>,
    flushes: Vec<oneshot::Sender<()>>,
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Cmd>, committed: broadcast::Sender<Arc<DecisionRow>>) {
    let mut carried: Option<Unwritten> = None;
    // Said once per outage, not once per retry.
    let mut failing = false;
    loop {
        // Whatever the last batch could not write goes first, in its order.
        let mut batch: Vec<Cmd> = Vec::new();
        if let Some(u) = carried.take() {
            batch.extend(u.decisions.into_iter().map(|d| Cmd::Decision(Box::new(d))));
            batch.extend(u.flushes.into_iter().map(Cmd::Flush));
        }
        let closed = if batch.is_empty() {
            match rx.recv() {
                Ok(c) => {
                    batch.push(c);
                    false
                }
                Err(_) => true,
            }
        } else {
            match rx.recv_timeout(RETRY) {
                Ok(c) => {
                    batch.push(c);
                    false
                }
                Err(mpsc::RecvTimeoutError::Timeout) => false,
                Err(mpsc::RecvTimeoutError::Disconnected) => true,
            }
        };
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            return;
        }
        match write_batch(&mut conn, batch, &committed) {
            Ok(()) if failing => {
                failing = false;
                tracing::warn!("books writable again; the decisions kept meanwhile are written");
            }
            Ok(()) => {}
            Err(u) if closed => {
                tracing::error!(
                    "books write failed at shutdown: {}; {} decisions could not be recorded",
                    u.error,
                    u.decisions.len()
                );
                return;
            }
            Err(u) => {
                if !failing {
                    tracing::error!(
                        "books write failed: {}; {} decisions kept and retried every {} s",
                        u.error,
                        u.decisions.len(),
                        RETRY.as_secs()
                    );
                }
                failing = true;
                carried = Some(u);
            }
        }
        // Disconnected means the queue is drained too: that was the last batch.
        if closed {
            return;
        }
    }
}

/// Writes one batch in one transaction, in queue order. Feedback is answered only after the
/// commit (2xx means durable); if the commit fails it is refused (its caller may retry),
/// while decisions and flushes come back to be retried.
fn write_batch(
    conn: &mut Connection,
    batch: Vec<Cmd>,
    committed: &broadcast::Sender<Arc<DecisionRow>>,
) -> Result<(), Unwritten> {
    let mut error: Option<BooksError> = None;
    let txn = conn.transaction().map_err(|e| error = Some(db(e))).ok();
    let mut decisions: Vec<DecisionRow> = Vec::new();
    let mut rated: Vec<(FeedbackReply, Option<FeedbackTarget>)> = Vec::new();
    let mut flushes = Vec::new();
    for cmd in batch {
        match (cmd, &txn) {
            (Cmd::Decision(row), Some(t)) if error.is_none() => {
                if let Err(e) = insert_decision(t, &row) {
                    error = Some(e);
                }
                decisions.push(*row);
            }
            (Cmd::Decision(row), _) => decisions.push(*row),
            (Cmd::Feedback { decision_id, score, key_id, reply }, Some(t)) if error.is_none() => {
                match record_feedback(t, &decision_id, score, &key_id) {
                    Ok(None) => {
                        let _ = reply.send(Err(BooksError::UnknownDecision(decision_id)));
                    }
                    Ok(Some(target)) => rated.push((reply, Some(target))),
                    Err(e) => {
                        error = Some(e);
                        rated.push((reply, None));
                    }
                }
            }
            (Cmd::Feedback { reply, .. }, _) => rated.push((reply, None)),
            (Cmd::Flush(reply), _) => flushes.push(reply),
        }
    }
    if let Some(t) = txn {
        if error.is_none() && !decisions.is_empty() {
            error = rollup::catch_up(&t).err();
        }
        if error.is_none() {
            error = t.commit().map_err(db).err();
        }
    }
    match error {
        None => {
            for row in decisions {
                // No watcher is not an error.
                let _ = committed.send(Arc::new(row));
            }
            for (reply, target) in rated {
                let _ = reply.send(target.ok_or_else(|| BooksError::Db("not written".into())));
            }
            for f in flushes {
                let _ = f.send(());
            }
            Ok(())
        }
        Some(e) => {
            for (reply, _) in rated {
                let _ = reply.send(Err(BooksError::Db(e.to_string())));
            }
            Err(Unwritten { error: e, decisions, flushes })
        }
    }
}

/// One rating, inside the batch's transaction: `None` when the decision is unknown or not
/// the key's own (a key may only rate its own decisions; "unknown" leaks nothing).
fn record_feedback(
    txn: &Connection,
    decision_id: &str,
    score: f64,
    key_id: &str,
) -> Result<Option<FeedbackTarget>, BooksError> {
    let Some(mut t) = feedback_target(txn, decision_id)?.filter(|(_, owner)| owner == key_id).map(|(t, _)| t) else {
        return Ok(None);
    };
    t.replaced = txn
        .query_row(
            "SELECT 1 FROM feedback WHERE decision_id = ?1 AND key_id = ?2",
            params![decision_id, key_id],
            |_| Ok(()),
        )
        .optional()
        .map_err(db)?
        .is_some();
    // One rating per decision per key: a later one replaces it.
    txn.execute(
        "INSERT INTO feedback (ts_ms, decision_id, score, key_id) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(decision_id, key_id) DO UPDATE SET score = excluded.score, ts_ms = excluded.ts_ms",
        params![crate::clock::now_ms(), decision_id, score, key_id],
    )
    .map_err(db)?;
    Ok(Some(t))
}

fn insert_decision(c: &Connection, r: &DecisionRow) -> Result<(), BooksError> {
    c.execute(
        "INSERT OR REPLACE INTO decisions (id, ts_ms, key_id, requested_model, chosen_model, policy, reason, candidates,
            attempts, prompt, prompt_tokens, completion_tokens, cost_usd, baseline_cost_usd, latency_ms, stream, outcome, error,
            verification, ttft_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        params![
            r.id,
            r.ts_ms,
            r.key_id,
            r.requested_model,
            r.chosen_model,
            r.policy,
            r.reason,
            json(&r.candidates),
            json(&r.attempts),
            r.prompt,
            r.prompt_tokens as i64,
            r.completion_tokens as i64,
            r.cost_usd,
            r.baseline_cost_usd,
            r.latency_ms,
            r.stream as i64,
            r.outcome,
            r.error,
            r.verification.as_ref().map(|v| v.to_string()),
            r.ttft_ms
        ],
    )
    .map_err(db)?;
    Ok(())
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// The decision's prompt and model, and the key that made it.
fn feedback_target(c: &Connection, id: &str) -> Result<Option<(FeedbackTarget, String)>, BooksError> {
    c.query_row("SELECT prompt, chosen_model, key_id FROM decisions WHERE id = ?1", [id], |row| {
        Ok((FeedbackTarget { prompt: row.get(0)?, chosen_model: row.get(1)?, replaced: false }, row.get(2)?))
    })
    .optional()
    .map_err(db)
}

/// The columns [`decision_from_row`] reads, in its order.
const DECISION_COLUMNS: &str = "id, ts_ms, key_id, requested_model, chosen_model, policy, reason, candidates, attempts,
    prompt, prompt_tokens, completion_tokens, cost_usd, baseline_cost_usd, latency_ms, stream, outcome, error, verification,
    ttft_ms";

/// One decision read back as written (`conductor logs`, the dashboard).
fn decision_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DecisionRow> {
    Ok(DecisionRow {
        id: r.get(0)?,
        ts_ms: r.get(1)?,
        key_id: r.get(2)?,
        requested_model: r.get(3)?,
        chosen_model: r.get(4)?,
        policy: r.get(5)?,
        reason: r.get(6)?,
        candidates: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
        attempts: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
        prompt: r.get(9)?,
        prompt_tokens: r.get::<_, i64>(10)? as u64,
        completion_tokens: r.get::<_, i64>(11)? as u64,
        cost_usd: r.get(12)?,
        baseline_cost_usd: r.get(13)?,
        latency_ms: r.get(14)?,
        stream: r.get::<_, i64>(15)? != 0,
        outcome: r.get(16)?,
        error: r.get(17)?,
        verification: r.get::<_, Option<String>>(18)?.and_then(|v| serde_json::from_str(&v).ok()),
        ttft_ms: r.get(19)?,
    })
}

/// Read-only queries (start-up replay, budgets, `conductor logs`, the dashboard).
pub struct Reader {
    conn: Connection,
}

/// One feedback row joined with its decision.
#[derive(Debug, Clone, Serialize)]
pub struct FeedbackRecord {
    pub decision_id: String,
    /// The key that gave the rating.
    pub key_id: String,
    pub ts_ms: i64,
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub score: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub latency_ms: f64,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, BooksError> {
        Ok(Reader { conn: open_connection(path)? })
    }

    /// USD spent by a key since `since_ms`.
    pub fn spent_since(&self, key_id: &str, since_ms: i64) -> f64 {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM decisions WHERE key_id = ?1 AND ts_ms >= ?2",
                params![key_id, since_ms],
                |r| r.get(0),
            )
            .unwrap_or(0.0)
    }

    /// All feedback in the order it was given, with its decision.
    pub fn feedback(&self) -> Result<Vec<FeedbackRecord>, BooksError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT f.decision_id, f.ts_ms, d.prompt, d.chosen_model, f.score, d.prompt_tokens, d.completion_tokens,
                        d.cost_usd, d.latency_ms, f.key_id
                 FROM feedback f JOIN decisions d ON d.id = f.decision_id ORDER BY f.id",
            )
            .map_err(db)?;
        let rows = st
            .query_map([], |r| {
                Ok(FeedbackRecord {
                    decision_id: r.get(0)?,
                    ts_ms: r.get(1)?,
                    prompt: r.get(2)?,
                    model: r.get(3)?,
                    score: r.get(4)?,
                    prompt_tokens: r.get::<_, i64>(5)? as u64,
                    completion_tokens: r.get::<_, i64>(6)? as u64,
                    cost_usd: r.get(7)?,
                    latency_ms: r.get(8)?,
                    key_id: r.get(9)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    /// Distillation rows (see `conductor_core::distill`): checked requests since `since_ms`
    /// whose accepted answer came after a cheaper model's answer was rejected, with prompt
    /// and answer kept (a key that opted out of logging never has them).
    pub fn distill(&self, since_ms: i64) -> Result<Vec<DistillRow>, BooksError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, prompt, chosen_model, attempts, verification FROM decisions
                 WHERE verification IS NOT NULL AND prompt IS NOT NULL AND ts_ms >= ?1 ORDER BY ts_ms, rowid",
            )
            .map_err(db)?;
        let rows = st
            .query_map([since_ms], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, prompt, model, attempts, verification) = row.map_err(db)?;
            let v: serde_json::Value = serde_json::from_str(&verification).unwrap_or_default();
            let attempts: Vec<Attempt> = serde_json::from_str(&attempts).unwrap_or_default();
            let replaces: Vec<String> =
                attempts.iter().filter(|a| a.outcome == AttemptOutcome::Rejected).map(|a| a.model.clone()).collect();
            let (Some(answer), Some(model), true) = (v["answer"].as_str(), model, v["verified"] == true) else {
                continue;
            };
            if replaces.is_empty() {
                continue;
            }
            let confidence = v["confidence"].as_f64().unwrap_or(0.0);
            let meta = DistillMeta { source: "books", id, model, confidence, replaces };
            out.push(DistillRow::new(&prompt, answer, meta));
        }
        Ok(out)
    }

    pub fn feedback_count(&self) -> Result<u64, BooksError> {
        self.conn.query_row("SELECT COUNT(*) FROM feedback", [], |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(db)
    }

    /// The most recent decisions at or after `since_ms`, newest first.
    pub fn recent(&self, limit: usize, since_ms: i64) -> Result<Vec<DecisionRow>, BooksError> {
        let sql = format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE ts_ms >= ?2 ORDER BY ts_ms DESC, rowid DESC LIMIT ?1"
        );
        let mut st = self.conn.prepare(&sql).map_err(db)?;
        let rows = st.query_map(params![limit as i64, since_ms], decision_from_row).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    /// Requests, tokens and spend since `since_ms`, grouped by `key_id` or `chosen_model`,
    /// largest spend first.
    pub fn spend_by(&self, column: SpendBy, since_ms: i64) -> Result<Vec<SpendRow>, BooksError> {
        let col = match column {
            SpendBy::Key => "key_id",
            SpendBy::Model => "COALESCE(chosen_model, '(none)')",
        };
        let sql = format!(
            "SELECT {col}, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd), SUM(baseline_cost_usd)
             FROM decisions WHERE ts_ms >= ?1 GROUP BY 1 ORDER BY 5 DESC"
        );
        let mut st = self.conn.prepare(&sql).map_err(db)?;
        let rows = st
            .query_map([since_ms], |r| {
                Ok(SpendRow {
                    group: r.get(0)?,
                    requests: r.get::<_, i64>(1)? as u64,
                    prompt_tokens: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
                    completion_tokens: r.get::<_, Option<i64>>(3)?.unwrap_or(0) as u64,
                    cost_usd: r.get::<_, Option<f64>>(4)?.unwrap_or(0.0),
                    largest_model_cost_usd: r.get::<_, Option<f64>>(5)?.unwrap_or(0.0),
                })
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    /// For the answered requests the router decided (`auto`) since `since_ms`: how many,
    /// their actual cost, and the cost of the same tokens at the largest model's price.
    /// Requests that named a model are left out: the router saved nothing on them.
    pub fn savings(&self, since_ms: i64) -> Result<(u64, f64, f64), BooksError> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(cost_usd),0), COALESCE(SUM(baseline_cost_usd),0) FROM decisions
                 WHERE outcome = 'ok' AND (requested_model = 'auto' OR requested_model LIKE 'auto:%') AND ts_ms >= ?1",
                [since_ms],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)),
            )
            .map_err(db)
    }
}

/// Spend of one key or model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendRow {
    pub group: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    /// The same tokens at the largest model's price.
    pub largest_model_cost_usd: f64,
}

#[derive(Debug, Clone, Copy)]
pub enum SpendBy {
    Key,
    Model,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn row(id: &str) -> DecisionRow {
        DecisionRow {
            id: id.into(),
            ts_ms: 1,
            key_id: "k".into(),
            requested_model: "auto".into(),
            chosen_model: Some("m".into()),
            policy: "quality".into(),
            reason: "r".into(),
            candidates: vec![Prediction { model: "m".into(), p_success: 0.5, est_cost_usd: 0.25 }],
            attempts: vec![Attempt {
                model: "m".into(),
                outcome: AttemptOutcome::Ok,
                error: None,
                verdict: None,
                cost_usd: None,
                start_ms: Some(0.5),
                duration_ms: Some(1.5),
            }],
            prompt: Some("hello".into()),
            prompt_tokens: 3,
            completion_tokens: 4,
            cost_usd: 0.5,
            baseline_cost_usd: 1.0,
            latency_ms: 2.0,
            stream: false,
            outcome: "ok".into(),
            error: None,
            verification: Some(serde_json::json!({"strategy": "verify", "verified": true})),
            ttft_ms: Some(1.25),
        }
    }

    #[tokio::test]
    async fn feedback_after_decision_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let (books, writer) = Books::open(&path).unwrap();
        books.record(row("d1"));
        let t = books.feedback("d1".into(), 0.75, "k".into()).await.unwrap();
        assert_eq!(t.chosen_model.as_deref(), Some("m"));
        assert!(matches!(books.feedback("nope".into(), 1.0, "k".into()).await, Err(BooksError::UnknownDecision(_))));
        assert!(
            matches!(books.feedback("d1".into(), 1.0, "other-key".into()).await, Err(BooksError::UnknownDecision(_))),
            "another key cannot rate this decision"
        );
        // The same key rating again replaces its rating; another key would add its own.
        let again = books.feedback("d1".into(), 0.25, "k".into()).await.unwrap();
        assert!(again.replaced && !t.replaced);
        let r = Reader::open(&path).unwrap();
        let fb = r.feedback().unwrap();
        assert_eq!(fb.len(), 1);
        assert_eq!(fb[0].score, 0.25);
        assert_eq!(r.spent_since("k", 0), 0.5);
        assert_eq!(r.savings(0).unwrap(), (1, 0.5, 1.0));
        assert_eq!(r.savings(2).unwrap(), (0, 0.0, 0.0), "since excludes older rows");
        assert_eq!(r.recent(5, 0).unwrap(), vec![row("d1")], "rows read back as written");
        assert!(r.recent(5, 2).unwrap().is_empty());
        assert_eq!(r.spend_by(SpendBy::Model, 0).unwrap()[0].group, "m");
        drop(books);
        writer.join();
    }
}

#[cfg(test)]
mod outage_tests {
    use super::tests::row;
    use super::*;

    /// Another process holds the books' write lock past the busy timeout: feedback is refused
    /// (not recorded, so its caller can retry), the decision answered meanwhile is kept and
    /// written once the lock is gone, and a flush waits for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_store_refuses_feedback_and_loses_no_decision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let (books, writer) = Books::open(&path).unwrap();
        books.record(row("before"));
        books.flush().await;
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        books.record(row("during"));
        let refused = books.feedback("before".into(), 1.0, "k".into()).await;
        assert!(matches!(refused, Err(BooksError::Db(_))), "{refused:?}");
        let flushed = tokio::spawn({
            let b = books.clone();
            async move { b.flush().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!flushed.is_finished(), "a flush waits for the kept decision");
        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        tokio::time::timeout(std::time::Duration::from_secs(30), flushed).await.unwrap().unwrap();
        let r = Reader::open(&path).unwrap();
        let ids: Vec<String> = r.recent(10, 0).unwrap().into_iter().map(|d| d.id).collect();
        assert!(ids.contains(&"during".to_string()) && ids.contains(&"before".to_string()), "{ids:?}");
        assert!(r.feedback().unwrap().is_empty(), "the refused rating was not recorded");
        assert!(books.feedback("before".into(), 1.0, "k".into()).await.is_ok(), "writable again");
        drop(books);
        writer.join();
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    #[test]
    fn older_books_keep_each_keys_latest_rating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            // Books as written before one-rating-per-key: three ratings by one key.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute(
                "INSERT INTO decisions (id, ts_ms, key_id, requested_model, policy, reason, candidates, attempts, outcome)
                 VALUES ('d', 1, 'k', 'auto', 'quality', 'r', '[]', '[]', 'ok')",
                [],
            )
            .unwrap();
            for s in [0.1, 0.9, 0.4] {
                c.execute("INSERT INTO feedback (ts_ms, decision_id, score, key_id) VALUES (1, 'd', ?1, 'k')", [s])
                    .unwrap();
            }
        }
        let r = Reader::open(&path).unwrap();
        let fb = r.feedback().unwrap();
        assert_eq!(fb.len(), 1);
        assert_eq!(fb[0].score, 0.4);
    }

    #[test]
    fn books_from_before_answer_checking_and_ttft_gain_their_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            // The decisions table as written before answer checking and time to first token.
            c.execute_batch(
                "CREATE TABLE decisions (id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL, key_id TEXT NOT NULL,
                    requested_model TEXT NOT NULL, chosen_model TEXT, policy TEXT NOT NULL, reason TEXT NOT NULL,
                    candidates TEXT NOT NULL, attempts TEXT NOT NULL, prompt TEXT, prompt_tokens INTEGER NOT NULL DEFAULT 0,
                    completion_tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0,
                    baseline_cost_usd REAL NOT NULL DEFAULT 0, latency_ms REAL NOT NULL DEFAULT 0,
                    stream INTEGER NOT NULL DEFAULT 0, outcome TEXT NOT NULL, error TEXT);",
            )
            .unwrap();
            c.execute(
                "INSERT INTO decisions (id, ts_ms, key_id, requested_model, policy, reason, candidates, attempts, outcome)
                 VALUES ('d', 1, 'k', 'auto', 'quality', 'r', '[]', '[]', 'ok')",
                [],
            )
            .unwrap();
            let cols: usize =
                c.query_row("SELECT COUNT(*) FROM pragma_table_info('decisions')", [], |r| r.get(0)).unwrap();
            assert_eq!(cols, 18, "the old schema, without the column");
        }
        let r = Reader::open(&path).unwrap();
        let rows = r.recent(5, 0).unwrap();
        assert_eq!((rows.len(), rows[0].verification.clone()), (1, None), "old rows read back unchecked");
        assert_eq!(rows[0].ttft_ms, None);
        assert!(r.distill(0).unwrap().is_empty());
    }
}
