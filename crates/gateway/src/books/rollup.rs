//! Traffic rolled up per minute and per hour and model, so the dashboard's overview reads a
//! few thousand rows whatever the size of the books. Latency and time to first token are
//! kept as histograms with log-spaced bins (each 25% wider than the last), so percentiles
//! come back as the upper edge of their bin: an upper bound within 25%.
//!
//! One function keeps the rollups current: [`catch_up`] folds in every decision after the
//! last one folded (by rowid). The writer calls it inside each batch's transaction, so
//! rollups and decisions commit together; opening the books calls it too, so books written
//! before rollups existed (or rows added by other tools) are folded in once.

use super::{db, BooksError};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rollups (
    grain_ms INTEGER NOT NULL,      -- 60000 (minute) or 3600000 (hour)
    t_ms INTEGER NOT NULL,          -- start of the minute or hour
    model TEXT NOT NULL,            -- chosen model, '(none)' when none answered
    requests INTEGER NOT NULL,
    answered INTEGER NOT NULL,      -- outcome ok
    tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    routed_cost_usd REAL NOT NULL,  -- answered routed (auto) requests only
    routed_baseline_usd REAL NOT NULL,
    errors INTEGER NOT NULL,
    fallbacks INTEGER NOT NULL,     -- more than one model call
    abstained INTEGER NOT NULL,
    latency BLOB NOT NULL,          -- histogram of answered requests' latency (u32 LE per bin)
    ttft BLOB NOT NULL,             -- histogram of streams' time to first token
    PRIMARY KEY (grain_ms, t_ms, model)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_rowid INTEGER NOT NULL
);
";

/// Histogram bins: bin 0 holds ≤ 0.5 ms, bin i holds (0.5·1.25^(i-1), 0.5·1.25^i] ms; the
/// last one everything above (0.5·1.25^78 ms ≈ 2.9 h).
pub const BINS: usize = 80;

pub fn bin_of(ms: f64) -> usize {
    if ms.is_nan() || ms <= 0.5 {
        return 0;
    }
    (((ms / 0.5).ln() / 1.25f64.ln()).ceil() as usize).min(BINS - 1)
}

/// The upper edge of bin `i`, in ms.
pub fn bin_upper_ms(i: usize) -> f64 {
    0.5 * 1.25f64.powi(i as i32)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hist(pub Vec<u32>);

impl Default for Hist {
    fn default() -> Self {
        Hist(vec![0; BINS])
    }
}

impl Hist {
    pub fn add(&mut self, ms: f64) {
        self.0[bin_of(ms)] += 1;
    }

    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|&n| n as u64).sum()
    }

    /// The upper edge of the bin holding the `p`-quantile (nearest rank); None when empty.
    pub fn quantile(&self, p: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((p * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, &c) in self.0.iter().enumerate() {
            seen += c as u64;
            if seen >= rank {
                return Some(bin_upper_ms(i));
            }
        }
        None
    }

    pub fn to_blob(&self) -> Vec<u8> {
        self.0.iter().flat_map(|n| n.to_le_bytes()).collect()
    }

    pub fn from_blob(b: &[u8]) -> Hist {
        let mut h = Hist::default();
        for (i, c) in b.chunks_exact(4).take(BINS).enumerate() {
            h.0[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        h
    }
}

/// One rollup row's numbers (and, summed, a window's or a bucket's).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Tally {
    pub requests: u64,
    /// Outcome ok.
    pub answered: u64,
    pub tokens: u64,
    pub cost_usd: f64,
    /// Routed (`auto`) answered requests: what they cost, and the same tokens at the
    /// largest model's price.
    pub routed_cost_usd: f64,
    pub routed_baseline_usd: f64,
    pub errors: u64,
    /// Requests that needed more than one model call.
    pub fallbacks: u64,
    pub abstained: u64,
    /// Answered requests' latency and streams' time to first token (served as percentiles).
    #[serde(skip)]
    pub latency: Hist,
    #[serde(skip)]
    pub ttft: Hist,
}

impl Tally {
    pub fn merge(&mut self, o: &Tally) {
        self.requests += o.requests;
        self.answered += o.answered;
        self.tokens += o.tokens;
        self.cost_usd += o.cost_usd;
        self.routed_cost_usd += o.routed_cost_usd;
        self.routed_baseline_usd += o.routed_baseline_usd;
        self.errors += o.errors;
        self.fallbacks += o.fallbacks;
        self.abstained += o.abstained;
        self.latency.merge(&o.latency);
        self.ttft.merge(&o.ttft);
    }

    /// Reads the numbers of a `SELECT` of the rollup columns starting at `at`.
    pub fn from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Tally> {
        Ok(Tally {
            requests: r.get::<_, i64>(at)? as u64,
            answered: r.get::<_, i64>(at + 1)? as u64,
            tokens: r.get::<_, i64>(at + 2)? as u64,
            cost_usd: r.get(at + 3)?,
            routed_cost_usd: r.get(at + 4)?,
            routed_baseline_usd: r.get(at + 5)?,
            errors: r.get::<_, i64>(at + 6)? as u64,
            fallbacks: r.get::<_, i64>(at + 7)? as u64,
            abstained: r.get::<_, i64>(at + 8)? as u64,
            latency: Hist::from_blob(&r.get::<_, Vec<u8>>(at + 9)?),
            ttft: Hist::from_blob(&r.get::<_, Vec<u8>>(at + 10)?),
        })
    }
}

/// The rollup columns, in [`Tally::from_row`]'s order.
pub const TALLY_COLUMNS: &str = "requests, answered, tokens, cost_usd, routed_cost_usd, routed_baseline_usd, errors, \
                                 fallbacks, abstained, latency, ttft";

/// Folds every decision not yet rolled up into the rollups; returns how many. Call inside
/// a transaction (the writer does), or on its own at start-up.
pub fn catch_up(c: &Connection) -> Result<u64, BooksError> {
    let last: i64 = c
        .query_row("SELECT last_rowid FROM rollup_progress WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(db)?
        .unwrap_or(0);
    let mut st = c
        .prepare_cached(
            "SELECT rowid, ts_ms, COALESCE(chosen_model, '(none)'), requested_model, outcome,
                    prompt_tokens + completion_tokens, cost_usd, baseline_cost_usd, latency_ms, ttft_ms,
                    json_array_length(attempts)
             FROM decisions WHERE rowid > ?1 ORDER BY rowid",
        )
        .map_err(db)?;
    let mut rows = st.query([last]).map_err(db)?;
    let mut acc: HashMap<(i64, i64, String), Tally> = HashMap::new();
    let (mut folded, mut max_rowid) = (0u64, last);
    while let Some(r) = rows.next().map_err(db)? {
        let rowid: i64 = r.get(0).map_err(db)?;
        let ts: i64 = r.get(1).map_err(db)?;
        let model: String = r.get(2).map_err(db)?;
        let requested: String = r.get(3).map_err(db)?;
        let outcome: String = r.get(4).map_err(db)?;
        let mut t = Tally {
            requests: 1,
            tokens: r.get::<_, i64>(5).map_err(db)? as u64,
            cost_usd: r.get(6).map_err(db)?,
            fallbacks: (r.get::<_, Option<i64>>(10).map_err(db)?.unwrap_or(0) > 1) as u64,
            ..Tally::default()
        };
        match outcome.as_str() {
            "ok" => {
                t.answered = 1;
                t.latency.add(r.get(8).map_err(db)?);
                if requested == "auto" || requested.starts_with("auto:") {
                    t.routed_cost_usd = t.cost_usd;
                    t.routed_baseline_usd = r.get(7).map_err(db)?;
                }
            }
            "error" => t.errors = 1,
            "abstained" => t.abstained = 1,
            _ => {}
        }
        if let Some(ttft) = r.get::<_, Option<f64>>(9).map_err(db)? {
            t.ttft.add(ttft);
        }
        for grain in [MINUTE_MS, HOUR_MS] {
            acc.entry((grain, ts - ts.rem_euclid(grain), model.clone())).or_default().merge(&t);
        }
        folded += 1;
        max_rowid = rowid;
    }
    drop(rows);
    if folded == 0 {
        return Ok(0);
    }
    let mut read = c
        .prepare_cached(&format!(
            "SELECT {TALLY_COLUMNS} FROM rollups WHERE grain_ms = ?1 AND t_ms = ?2 AND model = ?3"
        ))
        .map_err(db)?;
    let mut write = c
        .prepare_cached(&format!(
            "INSERT OR REPLACE INTO rollups (grain_ms, t_ms, model, {TALLY_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ))
        .map_err(db)?;
    for ((grain, t, model), add) in acc {
        let mut tally = read
            .query_row(params![grain, t, model], |r| Tally::from_row(r, 0))
            .optional()
            .map_err(db)?
            .unwrap_or_default();
        tally.merge(&add);
        write
            .execute(params![
                grain,
                t,
                model,
                tally.requests as i64,
                tally.answered as i64,
                tally.tokens as i64,
                tally.cost_usd,
                tally.routed_cost_usd,
                tally.routed_baseline_usd,
                tally.errors as i64,
                tally.fallbacks as i64,
                tally.abstained as i64,
                tally.latency.to_blob(),
                tally.ttft.to_blob(),
            ])
            .map_err(db)?;
    }
    c.execute(
        "INSERT INTO rollup_progress (id, last_rowid) VALUES (1, ?1)
         ON CONFLICT(id) DO UPDATE SET last_rowid = excluded.last_rowid",
        [max_rowid],
    )
    .map_err(db)?;
    Ok(folded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_grow_by_a_quarter_and_quantiles_are_upper_bounds() {
        assert_eq!(bin_of(0.1), 0);
        assert_eq!(bin_of(0.5), 0);
        assert_eq!(bin_of(0.6), 1);
        assert_eq!(bin_of(f64::INFINITY), BINS - 1);
        for ms in [0.7, 3.0, 42.0, 999.0, 65_000.0] {
            let i = bin_of(ms);
            assert!(bin_upper_ms(i) >= ms && bin_upper_ms(i) < ms * 1.25 + 1e-9, "{ms} → bin {i}");
        }
        let mut h = Hist::default();
        for v in 1..=100 {
            h.add(v as f64);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((50.0..62.5).contains(&p50), "{p50}");
        assert!((99.0..123.75).contains(&p99), "{p99}");
        assert_eq!(Hist::from_blob(&h.to_blob()), h);
        assert_eq!(Hist::default().quantile(0.5), None);
    }

    #[test]
    fn books_written_before_rollups_are_folded_in_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        {
            let c = super::super::open_connection(&path).unwrap();
            for (i, outcome) in ["ok", "ok", "error"].iter().enumerate() {
                c.execute(
                    "INSERT INTO decisions (id, ts_ms, key_id, requested_model, chosen_model, policy, reason, candidates,
                        attempts, outcome, latency_ms, cost_usd)
                     VALUES (?1, ?2, 'k', 'auto', 'm', 'quality', 'r', '[]', '[{},{}]', ?3, 12.0, 0.5)",
                    params![format!("d{i}"), 1000 * i as i64, outcome],
                )
                .unwrap();
            }
        }
        // Opened twice: folded in the first time only.
        for _ in 0..2 {
            let (books, writer) = super::super::Books::open(&path).unwrap();
            drop(books);
            writer.join();
        }
        let o = super::super::Reader::open(&path).unwrap().overview(0, MINUTE_MS).unwrap();
        let t = &o.totals.tally;
        assert_eq!((t.requests, t.errors, t.fallbacks, o.latency.n), (3, 1, 3, 2));
        assert!((t.routed_cost_usd - 1.0).abs() < 1e-12);
    }
}
