//! What the dashboard reads from the books: traffic over a window, one page of decisions
//! under filters, one decision with its feedback, and live quality (feedback per model,
//! predicted success against feedback). Every query is bounded by a time window or a page
//! size and walks an index (`VIEW_INDEXES`), so pages stay fast on large books.

use super::rollup::{self, Tally, TALLY_COLUMNS};
use super::{db, decision_from_row, BooksError, DecisionRow, Reader, DECISION_COLUMNS};
use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, OptionalExtension};
use serde::Serialize;
use std::collections::BTreeMap;

/// Traffic in one time bucket (its counts serialised beside `t_ms`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    pub t_ms: i64,
    #[serde(flatten)]
    pub tally: Tally,
}

/// One model's share of the window's traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelShare {
    pub model: String,
    pub requests: u64,
    pub cost_usd: f64,
}

/// Percentiles as upper bounds within 25% (the rollups' histogram bins).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub n: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    pub since_ms: i64,
    pub bucket_ms: i64,
    pub totals: Bucket,
    pub series: Vec<Bucket>,
    pub models: Vec<ModelShare>,
    /// Answered requests' latency, and streams' time to first token.
    pub latency: Percentiles,
    pub ttft: Percentiles,
}

/// Filters of the decisions table; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub model: Option<String>,
    pub key: Option<String>,
    pub policy: Option<String>,
    pub outcome: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Keyset cursor: rows strictly older than this `(ts_ms, rowid)`.
    pub before: Option<(i64, i64)>,
}

/// A page of decisions, newest first; `next` is the cursor of the page after it.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionPage {
    pub rows: Vec<DecisionRow>,
    pub next: Option<String>,
}

/// One rating of a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rating {
    pub ts_ms: i64,
    pub key_id: String,
    pub score: f64,
}

/// Mean feedback of one model in one bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackPoint {
    pub t_ms: i64,
    pub model: String,
    pub n: u64,
    pub mean_score: f64,
}

/// One bin of the reliability diagram: rated decisions whose chosen model's predicted
/// success fell in `[lo, hi)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReliabilityBin {
    pub lo: f64,
    pub hi: f64,
    pub n: u64,
    pub mean_predicted: f64,
    pub mean_feedback: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    pub since_ms: i64,
    pub bucket_ms: i64,
    pub ratings: u64,
    pub series: Vec<FeedbackPoint>,
    pub reliability: Vec<ReliabilityBin>,
    /// Expected calibration error and Brier score over the rated decisions (None: none).
    pub ece: Option<f64>,
    pub brier: Option<f64>,
}

/// Parses a cursor written by [`Reader::decisions`] (`"<ts_ms>.<rowid>"`).
pub fn parse_cursor(s: &str) -> Option<(i64, i64)> {
    let (t, r) = s.split_once('.')?;
    Some((t.parse().ok()?, r.parse().ok()?))
}

impl Reader {
    /// Traffic since `since_ms` in buckets of `bucket_ms`, from the rollups: per minute
    /// for buckets under an hour, else per hour (the window then starts on the hour).
    pub fn overview(&self, since_ms: i64, bucket_ms: i64) -> Result<Overview, BooksError> {
        let bucket_ms = bucket_ms.max(1);
        let grain = if bucket_ms >= rollup::HOUR_MS { rollup::HOUR_MS } else { rollup::MINUTE_MS };
        let since_ms = since_ms - since_ms.rem_euclid(grain);
        let sql = format!("SELECT t_ms, model, {TALLY_COLUMNS} FROM rollups WHERE grain_ms = ?1 AND t_ms >= ?2");
        let mut st = self.conn.prepare_cached(&sql).map_err(db)?;
        let mut rows = st.query(rusqlite::params![grain, since_ms]).map_err(db)?;
        let mut buckets: BTreeMap<i64, Tally> = BTreeMap::new();
        let mut models: BTreeMap<String, Tally> = BTreeMap::new();
        let mut total = Tally::default();
        while let Some(r) = rows.next().map_err(db)? {
            let t: i64 = r.get(0).map_err(db)?;
            let model: String = r.get(1).map_err(db)?;
            let tally = Tally::from_row(r, 2).map_err(db)?;
            buckets.entry(t - t.rem_euclid(bucket_ms)).or_default().merge(&tally);
            models.entry(model).or_default().merge(&tally);
            total.merge(&tally);
        }
        let mut models: Vec<ModelShare> = models
            .into_iter()
            .map(|(model, x)| ModelShare { model, requests: x.requests, cost_usd: x.cost_usd })
            .collect();
        models.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.model.cmp(&b.model)));
        let percentiles =
            |h: &rollup::Hist| Percentiles { n: h.count(), p50_ms: h.quantile(0.5), p99_ms: h.quantile(0.99) };
        let (latency, ttft) = (percentiles(&total.latency), percentiles(&total.ttft));
        Ok(Overview {
            since_ms,
            bucket_ms,
            totals: Bucket { t_ms: since_ms, tally: total },
            series: buckets.into_iter().map(|(t_ms, tally)| Bucket { t_ms, tally }).collect(),
            models,
            latency,
            ttft,
        })
    }

    /// One page of decisions under `f`, newest first.
    pub fn decisions(&self, f: &DecisionFilter, limit: usize) -> Result<DecisionPage, BooksError> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<Sql> = Vec::new();
        let mut eq = |clause: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                clauses.push(clause);
                args.push(Sql::Text(v.clone()));
            }
        };
        eq("chosen_model = ?", &f.model);
        eq("key_id = ?", &f.key);
        eq("policy = ?", &f.policy);
        eq("outcome = ?", &f.outcome);
        if let Some(t) = f.since_ms {
            clauses.push("ts_ms >= ?");
            args.push(Sql::Integer(t));
        }
        if let Some(t) = f.until_ms {
            clauses.push("ts_ms < ?");
            args.push(Sql::Integer(t));
        }
        if let Some((t, rowid)) = f.before {
            clauses.push("(ts_ms < ? OR (ts_ms = ? AND rowid < ?))");
            args.extend([Sql::Integer(t), Sql::Integer(t), Sql::Integer(rowid)]);
        }
        let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        args.push(Sql::Integer(limit as i64 + 1));
        let sql =
            format!("SELECT {DECISION_COLUMNS}, rowid FROM decisions {filter} ORDER BY ts_ms DESC, rowid DESC LIMIT ?");
        let mut st = self.conn.prepare_cached(&sql).map_err(db)?;
        let mut rows = st
            .query_map(params_from_iter(args), |r| Ok((decision_from_row(r)?, r.get::<_, i64>(20)?)))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|(d, rowid)| format!("{}.{rowid}", d.ts_ms))
        } else {
            None
        };
        Ok(DecisionPage { rows: rows.into_iter().map(|(d, _)| d).collect(), next })
    }

    /// One decision and its ratings.
    pub fn decision(&self, id: &str) -> Result<Option<(DecisionRow, Vec<Rating>)>, BooksError> {
        let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = ?1");
        let Some(row) = self.conn.query_row(&sql, [id], decision_from_row).optional().map_err(db)? else {
            return Ok(None);
        };
        let mut st = self
            .conn
            .prepare_cached("SELECT ts_ms, key_id, score FROM feedback WHERE decision_id = ?1 ORDER BY id")
            .map_err(db)?;
        let ratings = st
            .query_map([id], |r| Ok(Rating { ts_ms: r.get(0)?, key_id: r.get(1)?, score: r.get(2)? }))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(Some((row, ratings)))
    }

    /// Feedback given since `since_ms`: mean score per model per bucket, and the
    /// reliability diagram of the chosen model's predicted success against the score.
    pub fn quality(&self, since_ms: i64, bucket_ms: i64, bins: usize) -> Result<Quality, BooksError> {
        let bucket_ms = bucket_ms.max(1);
        let bins = bins.max(1);
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT f.ts_ms, COALESCE(d.chosen_model, '(none)'), f.score, d.candidates
                 FROM feedback f JOIN decisions d ON d.id = f.decision_id WHERE f.ts_ms >= ?1",
            )
            .map_err(db)?;
        let mut rows = st.query([since_ms]).map_err(db)?;
        let mut per: BTreeMap<(i64, String), (u64, f64)> = BTreeMap::new();
        let mut pairs: Vec<(f64, f64)> = Vec::new();
        let mut ratings = 0;
        while let Some(r) = rows.next().map_err(db)? {
            let ts: i64 = r.get(0).map_err(db)?;
            let model: String = r.get(1).map_err(db)?;
            let score: f64 = r.get(2).map_err(db)?;
            let candidates: Vec<conductor_core::router::Prediction> =
                serde_json::from_str(&r.get::<_, String>(3).map_err(db)?).unwrap_or_default();
            ratings += 1;
            let e = per.entry(((ts / bucket_ms) * bucket_ms, model.clone())).or_default();
            e.0 += 1;
            e.1 += score;
            // A direct request had no prediction: it has no place on the diagram.
            if let Some(p) = candidates.iter().find(|c| c.model == model) {
                pairs.push((p.p_success.clamp(0.0, 1.0), score));
            }
        }
        let series = per
            .into_iter()
            .map(|((t_ms, model), (n, sum))| FeedbackPoint { t_ms, model, n, mean_score: sum / n as f64 })
            .collect();
        let mut acc = vec![(0u64, 0.0, 0.0); bins];
        for &(p, s) in &pairs {
            let i = ((p * bins as f64) as usize).min(bins - 1);
            acc[i].0 += 1;
            acc[i].1 += p;
            acc[i].2 += s;
        }
        let reliability: Vec<ReliabilityBin> = acc
            .iter()
            .enumerate()
            .filter(|(_, a)| a.0 > 0)
            .map(|(i, &(n, sp, ss))| ReliabilityBin {
                lo: i as f64 / bins as f64,
                hi: (i + 1) as f64 / bins as f64,
                n,
                mean_predicted: sp / n as f64,
                mean_feedback: ss / n as f64,
            })
            .collect();
        let total = pairs.len() as f64;
        let ece = (!pairs.is_empty())
            .then(|| reliability.iter().map(|b| b.n as f64 / total * (b.mean_predicted - b.mean_feedback).abs()).sum());
        let brier = (!pairs.is_empty()).then(|| pairs.iter().map(|(p, s)| (p - s).powi(2)).sum::<f64>() / total);
        Ok(Quality { since_ms, bucket_ms, ratings, series, reliability, ece, brier })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::books::tests::row;
    use crate::books::Books;

    #[tokio::test]
    async fn views_read_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let (books, writer) = Books::open(&path).unwrap();
        for i in 0..5 {
            let mut r = row(&format!("d{i}"));
            r.ts_ms = 60_000 + i * 30_000; // minutes 1, 1, 2, 2, 3
            r.outcome = if i == 4 { "error".into() } else { "ok".into() };
            r.latency_ms = (i + 1) as f64 * 10.0;
            r.chosen_model = Some(if i % 2 == 0 { "m" } else { "n" }.into());
            books.record(r);
        }
        books.feedback("d0".into(), 1.0, "k".into()).await.unwrap();
        books.feedback("d2".into(), 0.0, "k".into()).await.unwrap();
        let r = Reader::open(&path).unwrap();

        let o = r.overview(0, 60_000).unwrap();
        assert_eq!(o.totals.tally.requests, 5);
        assert_eq!(o.totals.tally.errors, 1);
        assert_eq!(
            o.series.iter().map(|b| (b.t_ms, b.tally.requests)).collect::<Vec<_>>(),
            [(60_000, 2), (120_000, 2), (180_000, 1)]
        );
        assert_eq!(o.models[0], ModelShare { model: "m".into(), requests: 3, cost_usd: 1.5 });
        // Latencies 10, 20, 30, 40 ms on ok rows: p50 in 20's bin, p99 in 40's (upper edges).
        let (p50, p99) = (o.latency.p50_ms.unwrap(), o.latency.p99_ms.unwrap());
        assert_eq!(o.latency.n, 4, "ok rows only");
        assert!((20.0..25.0).contains(&p50) && (40.0..50.0).contains(&p99), "{p50} {p99}");
        assert_eq!(o.ttft.n, 5);
        assert_eq!(r.overview(120_000, 60_000).unwrap().totals.tally.requests, 3, "the window starts on its minute");
        let hourly = r.overview(0, rollup::HOUR_MS).unwrap();
        assert_eq!((hourly.series.len(), hourly.totals.tally.requests), (1, 5));
        assert!((o.totals.tally.routed_baseline_usd - 4.0).abs() < 1e-12, "4 answered routed rows at baseline 1.0");

        // Pages of 2, newest first, walked by cursor; filters narrow.
        let mut f = DecisionFilter::default();
        let p1 = r.decisions(&f, 2).unwrap();
        assert_eq!(p1.rows.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d4", "d3"]);
        f.before = parse_cursor(p1.next.as_deref().unwrap());
        let p2 = r.decisions(&f, 2).unwrap();
        assert_eq!(p2.rows.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d2", "d1"]);
        f.before = parse_cursor(p2.next.as_deref().unwrap());
        let p3 = r.decisions(&f, 2).unwrap();
        assert_eq!((p3.rows.len(), p3.next), (1, None));
        let only_n = DecisionFilter { model: Some("n".into()), ..Default::default() };
        assert_eq!(r.decisions(&only_n, 10).unwrap().rows.len(), 2);
        let errors = DecisionFilter { outcome: Some("error".into()), since_ms: Some(180_000), ..Default::default() };
        assert_eq!(r.decisions(&errors, 10).unwrap().rows[0].id, "d4");

        let (d, ratings) = r.decision("d2").unwrap().unwrap();
        assert_eq!((d.id.as_str(), ratings.len(), ratings[0].score), ("d2", 1, 0.0));
        assert!(r.decision("nope").unwrap().is_none());

        // Both rated decisions predicted 0.5 for their model: one bin, mean feedback 0.5.
        let q = r.quality(0, 1_000_000_000, 10).unwrap();
        assert_eq!(q.ratings, 2);
        assert_eq!(q.reliability.len(), 1);
        assert_eq!(
            (q.reliability[0].n, q.reliability[0].mean_predicted, q.reliability[0].mean_feedback),
            (2, 0.5, 0.5)
        );
        assert_eq!((q.ece, q.brier), (Some(0.0), Some(0.25)));
        assert_eq!(q.series.len(), 1);
        drop(books);
        writer.join();
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        assert_eq!(parse_cursor("1700000000000.42"), Some((1_700_000_000_000, 42)));
        for junk in ["", "12", "a.b", "1.2.3"] {
            assert_eq!(parse_cursor(junk), None, "{junk}");
        }
    }
}
