//! `conductor store check` for the shared store: read-only, and a list of problems when
//! the books do not add up.

use super::{schema, StoreError};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: i32,
    pub latest_version: i32,
    pub decisions: i64,
    pub feedback: i64,
    pub budget_accounts: i64,
    pub open_reservations: i64,
    /// Replicas heard from within `replica_timeout_ms`.
    pub live_replicas: i64,
    pub problems: Vec<String>,
}

pub async fn check(c: &tokio_postgres::Client, replica_timeout_ms: i64) -> Result<Report, StoreError> {
    let schema_version = schema::current(c).await?;
    let latest_version = schema::latest();
    let mut problems = Vec::new();
    if schema_version != latest_version {
        problems.push(format!(
            "schema version {schema_version}, this conductor's is {latest_version} (`conductor store migrate`)"
        ));
    }
    if schema_version < 3 {
        return Ok(Report {
            schema_version,
            latest_version,
            decisions: 0,
            feedback: 0,
            budget_accounts: 0,
            open_reservations: 0,
            live_replicas: 0,
            problems,
        });
    }
    let count = |sql: &'static str| async move { c.query_one(sql, &[]).await.map(|r| r.get::<_, i64>(0)) };
    let decisions = count("SELECT COUNT(*) FROM decisions").await?;
    let feedback = count("SELECT COUNT(*) FROM feedback").await?;
    let budget_accounts = count("SELECT COUNT(*) FROM budget_accounts").await?;
    let open_reservations = count("SELECT COUNT(*) FROM reservations").await?;
    let live_replicas = c
        .query_one(
            &format!("SELECT COUNT(*) FROM replicas WHERE seen_ms >= {} - $1", super::budgets::DB_NOW_MS),
            &[&replica_timeout_ms],
        )
        .await?
        .get(0);
    // Every account's reserved money is exactly its open reservations.
    for r in c
        .query(
            "SELECT a.key_id, a.period_start_ms, a.reserved_usd, COALESCE(SUM(r.amount_usd), 0)
               FROM budget_accounts a LEFT JOIN reservations r
                 ON r.key_id = a.key_id AND r.period_start_ms = a.period_start_ms
              GROUP BY 1, 2, 3
             HAVING ABS(a.reserved_usd - COALESCE(SUM(r.amount_usd), 0)) > 1e-9",
            &[],
        )
        .await?
    {
        let (key, start, held, open): (String, i64, f64, f64) = (r.get(0), r.get(1), r.get(2), r.get(3));
        problems
            .push(format!("key {key} (period from {start}): {held} reserved, but its open reservations hold {open}"));
    }
    for r in c
        .query(
            "SELECT key_id, period_start_ms, spent_usd, limit_usd FROM budget_accounts
              WHERE spent_usd > limit_usd + 1e-9 OR spent_usd < 0 OR reserved_usd < 0",
            &[],
        )
        .await?
    {
        let (key, start, spent, limit): (String, i64, f64, f64) = (r.get(0), r.get(1), r.get(2), r.get(3));
        problems.push(format!("key {key} (period from {start}): spent {spent} of a {limit} limit"));
    }
    Ok(Report {
        schema_version,
        latest_version,
        decisions,
        feedback,
        budget_accounts,
        open_reservations,
        live_replicas,
        problems,
    })
}
