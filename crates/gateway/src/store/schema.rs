//! The shared store's schema as numbered migrations, applied at start-up and recorded in
//! `schema_migrations`. Replicas starting together take a transaction-scoped advisory lock
//! first, so each step runs once; a store from a newer conductor is refused.

use super::StoreError;
use tokio_postgres::Client;

pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "decisions and feedback",
        sql: "
CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    chosen_model TEXT,
    policy TEXT NOT NULL,
    reason TEXT NOT NULL,
    candidates JSONB NOT NULL,
    attempts JSONB NOT NULL,
    prompt TEXT,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    baseline_cost_usd DOUBLE PRECISION NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    stream BOOLEAN NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    verification JSONB,
    ttft_ms DOUBLE PRECISION,
    replica TEXT NOT NULL
);
CREATE INDEX decisions_key_ts ON decisions(key_id, ts_ms);
CREATE INDEX decisions_ts ON decisions(ts_ms);
-- `version` grows on every insert and every replacement, so a replica that was told of
-- version v (or was away) can fetch exactly what changed.
CREATE SEQUENCE feedback_version;
CREATE TABLE feedback (
    decision_id TEXT NOT NULL REFERENCES decisions(id),
    key_id TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    ts_ms BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT nextval('feedback_version'),
    replica TEXT NOT NULL,
    PRIMARY KEY (decision_id, key_id)
);
CREATE INDEX feedback_version_idx ON feedback(version);
",
    },
    Migration {
        version: 2,
        name: "budgets, reservations and replicas",
        sql: "
CREATE TABLE budget_accounts (
    key_id TEXT NOT NULL,
    period_start_ms BIGINT NOT NULL,
    limit_usd DOUBLE PRECISION NOT NULL,
    spent_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    reserved_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period_start_ms)
);
CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    period_start_ms BIGINT NOT NULL,
    amount_usd DOUBLE PRECISION NOT NULL,
    replica TEXT NOT NULL,
    ts_ms BIGINT NOT NULL
);
CREATE INDEX reservations_replica ON reservations(replica);
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    started_ms BIGINT NOT NULL,
    seen_ms BIGINT NOT NULL
);
",
    },
    Migration {
        version: 3,
        name: "shared rate limits",
        sql: "
CREATE TABLE rate_windows (
    key_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key_id, scope, window_start_ms)
);
",
    },
];

/// The newest schema this build knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Any number for the advisory lock, the same in every replica.
const MIGRATION_LOCK: i64 = 0x636f_6e64_7563_746f;

/// Brings the store to the newest schema; returns the steps applied.
pub async fn apply(client: &mut Client) -> Result<Vec<&'static str>, StoreError> {
    let txn = client.transaction().await?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
    )
    .await?;
    let current: i32 = txn.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.get(0);
    if current > latest() {
        return Err(StoreError::Setup(format!(
            "the store is at schema version {current}, newer than this conductor knows ({}); upgrade conductor",
            latest()
        )));
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        txn.batch_execute(m.sql).await?;
        txn.execute(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &crate::clock::now_ms()],
        )
        .await?;
        applied.push(m.name);
    }
    txn.commit().await?;
    Ok(applied)
}

/// The schema version the store is at (0: none).
pub async fn current(client: &Client) -> Result<i32, StoreError> {
    let exists: bool = client.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.get(0))
}
