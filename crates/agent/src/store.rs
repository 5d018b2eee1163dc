//! Durable runs: each run's whole state (conversation, plan, results so far, guard counts,
//! spend) and its activity log, in SQLite. Every step is one transaction that appends the
//! step and replaces the state, so a run killed at any moment resumes from its last
//! completed step with every earlier step intact.

use crate::run::{RunState, Step};
use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

pub struct Store {
    conn: Mutex<Connection>,
}

/// One run as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub id: String,
    pub goal: String,
    pub status: String,
    pub steps: u32,
    pub cost_usd: f64,
    pub updated_ms: i64,
}

impl Store {
    /// Opens (creating) the run store at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = Connection::open(path).with_context(|| format!("opening the agent store {}", path.display()))?;
        // WAL + synchronous=FULL: a committed step survives kill -9 and power loss alike.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS agent_runs (
                id TEXT PRIMARY KEY, goal TEXT NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL,
                created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS agent_steps (
                run_id TEXT NOT NULL, n INTEGER NOT NULL, step TEXT NOT NULL, at_ms INTEGER NOT NULL,
                PRIMARY KEY (run_id, n));
             CREATE INDEX IF NOT EXISTS agent_runs_updated ON agent_runs(updated_ms);
             CREATE TABLE IF NOT EXISTS agent_memory (
                agent TEXT NOT NULL, fact TEXT NOT NULL, vector BLOB NOT NULL, at_ms INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS agent_memory_agent ON agent_memory(agent);",
        )
        .context("creating the agent store's tables")?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves a run's state, with the step that led to it when there is one, atomically.
    pub fn save(&self, state: &RunState, step: Option<&Step>) -> anyhow::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let now = now_ms();
        if let Some(s) = step {
            tx.execute(
                "INSERT OR REPLACE INTO agent_steps (run_id, n, step, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![state.id, s.n, serde_json::to_string(s)?, now],
            )?;
        }
        tx.execute(
            "INSERT INTO agent_runs (id, goal, status, state, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, state = excluded.state, updated_ms = excluded.updated_ms",
            params![state.id, state.spec.goal, state.status.as_str(), serde_json::to_string(state)?, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn load(&self, id: &str) -> anyhow::Result<Option<RunState>> {
        let text: Option<String> =
            self.conn().query_row("SELECT state FROM agent_runs WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        text.map(|t| serde_json::from_str(&t).with_context(|| format!("run {id}: stored state does not parse")))
            .transpose()
    }

    /// The run's activity log, in order.
    pub fn steps(&self, id: &str) -> anyhow::Result<Vec<Step>> {
        let conn = self.conn();
        let mut q = conn.prepare("SELECT step FROM agent_steps WHERE run_id = ?1 ORDER BY n")?;
        let rows = q.query_map([id], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(serde_json::from_str(&r?)?);
        }
        Ok(out)
    }

    /// The most recently updated runs.
    pub fn list(&self, limit: usize) -> anyhow::Result<Vec<RunSummary>> {
        let conn = self.conn();
        let mut q = conn.prepare("SELECT state, updated_ms FROM agent_runs ORDER BY updated_ms DESC LIMIT ?1")?;
        let rows = q.query_map([limit as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (text, updated_ms) = r?;
            let s: RunState = serde_json::from_str(&text)?;
            out.push(RunSummary {
                id: s.id.clone(),
                goal: s.spec.goal.clone(),
                status: s.status.as_str().to_string(),
                steps: s.steps,
                cost_usd: s.cost_usd,
                updated_ms,
            });
        }
        Ok(out)
    }
}

impl Store {
    /// Stores a fact with its embedding in `agent`'s memory; returns how many it holds.
    pub fn remember(&self, agent: &str, fact: &str, vector: &[f32]) -> anyhow::Result<u64> {
        let blob: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO agent_memory (agent, fact, vector, at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![agent, fact, blob, now_ms()],
        )?;
        Ok(conn.query_row("SELECT COUNT(*) FROM agent_memory WHERE agent = ?1", [agent], |r| r.get(0))?)
    }

    /// `agent`'s `k` facts most similar (cosine) to `vector`, best first.
    pub fn recall(&self, agent: &str, vector: &[f32], k: usize) -> anyhow::Result<Vec<(String, f32)>> {
        let conn = self.conn();
        let mut q = conn.prepare("SELECT fact, vector FROM agent_memory WHERE agent = ?1")?;
        let rows = q.query_map([agent], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        let mut hits = Vec::new();
        for r in rows {
            let (fact, blob) = r?;
            let v: Vec<f32> = blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            hits.push((fact, crate::memory::cosine(vector, &v)));
        }
        hits.sort_by(|a, b| b.1.total_cmp(&a.1));
        hits.truncate(k);
        Ok(hits)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
