//! Budgets exact across replicas. A reservation is one statement: the account row is
//! updated only if spent + reserved + amount still fits the limit, and the reservation row
//! is inserted only if that update happened. Concurrent reservations of one key queue on the
//! account's row lock and each re-checks the condition against the row the previous one
//! left, so no interleaving of any number of replicas can reserve past the limit.
//! Settling (in the writer's transaction, with the decision row) moves the reservation to
//! spent. A replica that dies holding reservations is found by its stale heartbeat; what it
//! held is counted as spent, since it may have paid an upstream before dying.

use super::{SharedStore, StoreError};
use crate::budget::OverBudget;
use crate::clock::now_ms;
use std::sync::Weak;
use std::time::Duration;

/// Moves reservations ($1, ids) to spent at their actual costs ($2, in the same order), one
/// update per account: the writer runs it last in its transaction, so an account's row is
/// locked only from there to the commit.
pub const SETTLE: &str = "
WITH s AS (SELECT * FROM unnest($1::text[], $2::float8[]) AS t(id, cost)),
     r AS (DELETE FROM reservations USING s WHERE reservations.id = s.id
           RETURNING reservations.key_id, reservations.period_start_ms, reservations.amount_usd, s.cost),
     g AS (SELECT key_id, period_start_ms, SUM(amount_usd) AS amount, SUM(cost) AS cost FROM r GROUP BY 1, 2)
UPDATE budget_accounts a
   SET reserved_usd = GREATEST(a.reserved_usd - g.amount, 0), spent_usd = a.spent_usd + g.cost
  FROM g WHERE a.key_id = g.key_id AND a.period_start_ms = g.period_start_ms";

/// Charges the reservations chosen by `$1` (the condition's parameter) as spent.
fn charge_abandoned(condition: &str) -> String {
    format!(
        "WITH gone AS (DELETE FROM reservations r WHERE {condition} RETURNING key_id, period_start_ms, amount_usd),
              sums AS (SELECT key_id, period_start_ms, SUM(amount_usd) AS amount FROM gone GROUP BY 1, 2)
         UPDATE budget_accounts a
            SET reserved_usd = GREATEST(a.reserved_usd - s.amount, 0), spent_usd = a.spent_usd + s.amount
           FROM sums s WHERE a.key_id = s.key_id AND a.period_start_ms = s.period_start_ms"
    )
}

/// The database's clock in ms: heartbeats are written and judged by one clock, so replicas'
/// clocks may disagree.
pub(super) const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Slack for floating-point sums, far below a cent.
const EPSILON: f64 = 1e-12;

impl SharedStore {
    /// Sets aside `amount` of `key_id`'s budget for this period; `Ok(Err(..))` is a refusal.
    pub async fn reserve(
        &self,
        key_id: &str,
        period_start_ms: i64,
        limit: f64,
        amount: f64,
    ) -> Result<Result<String, OverBudget>, StoreError> {
        let c = self.client().await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        // Twice at most: the period's account is created by its first reservation (so the
        // usual request costs one statement); the limit follows the config.
        for _ in 0..2 {
            let reserved = c
                .query_opt(
                    "WITH a AS (
                        UPDATE budget_accounts SET reserved_usd = reserved_usd + $3::float8, limit_usd = $4::float8
                         WHERE key_id = $1 AND period_start_ms = $2
                           AND spent_usd + reserved_usd + $3::float8 <= $4::float8 + $7::float8
                         RETURNING key_id)
                     INSERT INTO reservations (id, key_id, period_start_ms, amount_usd, replica, ts_ms)
                     SELECT $5, $1, $2, $3::float8, $6, $8 FROM a RETURNING id",
                    &[&key_id, &period_start_ms, &amount, &limit, &id, &self.replica, &EPSILON, &now_ms()],
                )
                .await?;
            if reserved.is_some() {
                return Ok(Ok(id));
            }
            let created = c
                .execute(
                    "INSERT INTO budget_accounts (key_id, period_start_ms, limit_usd) VALUES ($1, $2, $3)
                     ON CONFLICT (key_id, period_start_ms) DO NOTHING",
                    &[&key_id, &period_start_ms, &limit],
                )
                .await?;
            if created == 0 {
                break; // the account was there: a refusal
            }
        }
        let (remaining, _) = self.account(&c, key_id, period_start_ms).await?;
        Ok(Err(OverBudget { needed: amount, remaining: remaining.max(0.0), limit }))
    }

    /// Raises reservation `id` by `extra`; `Ok(Err(..))` is a refusal (the reservation is
    /// unchanged). `held` is what it holds now, to report what would be left without it.
    /// The reservation is locked first, then its account: the order settling uses too.
    pub async fn top_up(
        &self,
        id: &str,
        key_id: &str,
        period_start_ms: i64,
        held: f64,
        extra: f64,
    ) -> Result<Result<(), OverBudget>, StoreError> {
        let mut c = self.client().await?;
        let txn = c.transaction().await?;
        if txn.query_opt("SELECT 1 FROM reservations WHERE id = $1 FOR UPDATE", &[&id]).await?.is_none() {
            return Err(StoreError::Db(format!(
                "reservation {id} is gone: this replica was taken for dead and its reservations charged"
            )));
        }
        let raised = txn
            .query_opt(
                "UPDATE budget_accounts SET reserved_usd = reserved_usd + $3::float8
                  WHERE key_id = $1 AND period_start_ms = $2
                    AND spent_usd + reserved_usd + $3::float8 <= limit_usd + $4::float8
                 RETURNING key_id",
                &[&key_id, &period_start_ms, &extra, &EPSILON],
            )
            .await?;
        if raised.is_none() {
            drop(txn);
            let (remaining, limit) = self.account(&c, key_id, period_start_ms).await?;
            return Ok(Err(OverBudget { needed: held + extra, remaining: (remaining + held).max(0.0), limit }));
        }
        txn.execute("UPDATE reservations SET amount_usd = amount_usd + $2::float8 WHERE id = $1", &[&id, &extra])
            .await?;
        txn.commit().await?;
        Ok(Ok(()))
    }

    /// (what is left, the limit) of a key's account this period.
    async fn account(&self, c: &tokio_postgres::Client, key_id: &str, period: i64) -> Result<(f64, f64), StoreError> {
        let row = c
            .query_opt(
                "SELECT limit_usd - spent_usd - reserved_usd, limit_usd FROM budget_accounts
                 WHERE key_id = $1 AND period_start_ms = $2",
                &[&key_id, &period],
            )
            .await?;
        Ok(row.map_or((0.0, 0.0), |r| (r.get(0), r.get(1))))
    }

    /// (key, spent, reserved, limit) of every account in its current period.
    pub async fn budget_snapshot(&self, periods: &[(String, i64)]) -> Result<Vec<(String, f64, f64, f64)>, StoreError> {
        let c = self.client().await?;
        let (keys, starts): (Vec<&str>, Vec<i64>) = periods.iter().map(|(k, s)| (k.as_str(), *s)).unzip();
        let rows = c
            .query(
                "SELECT a.key_id, a.spent_usd, a.reserved_usd, a.limit_usd
                   FROM budget_accounts a JOIN unnest($1::text[], $2::bigint[]) AS p(key_id, start)
                     ON a.key_id = p.key_id AND a.period_start_ms = p.start",
                &[&keys, &starts],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
    }

    /// Announces this replica and charges what an earlier process of the same name left
    /// reserved when it died.
    pub(super) async fn register(&self) -> Result<(), StoreError> {
        let c = self.client().await?;
        let recent = c
            .query_opt(
                &format!("SELECT {DB_NOW_MS} - seen_ms FROM replicas WHERE id = $1 AND seen_ms >= {DB_NOW_MS} - $2"),
                &[&self.replica, &self.replica_timeout_ms],
            )
            .await?;
        if let Some(r) = recent {
            // A crash moments ago, or two live processes with one name (which would charge
            // each other's reservations): say so.
            tracing::warn!(
                replica = %self.replica,
                seen_ms_ago = r.get::<_, i64>(0),
                "a replica of this name was alive moments ago; each process needs its own `store.replica`"
            );
        }
        c.execute(
            &format!(
                "INSERT INTO replicas (id, started_ms, seen_ms) VALUES ($1, {DB_NOW_MS}, {DB_NOW_MS})
                 ON CONFLICT (id) DO UPDATE SET started_ms = EXCLUDED.started_ms, seen_ms = EXCLUDED.seen_ms"
            ),
            &[&self.replica],
        )
        .await?;
        c.execute(&charge_abandoned("r.replica = $1"), &[&self.replica]).await?;
        Ok(())
    }

    /// One heartbeat on its own connection `c` (a saturated pool must not make this replica
    /// look dead): this replica is alive; with `sweep`, replicas silent for too long are dead
    /// and their reservations charged; rate windows older than two minutes are dropped.
    async fn beat(&self, c: &tokio_postgres::Client, sweep: bool) -> Result<(), StoreError> {
        c.execute(&format!("UPDATE replicas SET seen_ms = {DB_NOW_MS} WHERE id = $1"), &[&self.replica]).await?;
        if !sweep {
            return Ok(());
        }
        let charged = c
            .execute(
                &charge_abandoned(&format!(
                    "NOT EXISTS (SELECT 1 FROM replicas p WHERE p.id = r.replica AND p.seen_ms >= {DB_NOW_MS} - $1)"
                )),
                &[&self.replica_timeout_ms],
            )
            .await?;
        if charged > 0 {
            tracing::warn!(accounts = charged, "charged the reservations of replicas that stopped answering");
        }
        c.execute("DELETE FROM rate_windows WHERE window_start_ms < $1", &[&(now_ms() - 120_000)]).await?;
        Ok(())
    }
}

/// Beats every two seconds until the store is dropped. Others are judged only after this
/// replica has itself been in touch for a whole timeout: after an outage every replica's
/// heartbeat is stale, and the live ones need a moment to show it.
pub(super) async fn heartbeat(store: Weak<SharedStore>) {
    let mut in_touch_since: Option<std::time::Instant> = Some(std::time::Instant::now());
    let mut conn: Option<tokio_postgres::Client> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(s) = store.upgrade() else { return };
        let timeout = Duration::from_millis(s.replica_timeout_ms.max(0) as u64);
        let sweep = in_touch_since.is_some_and(|t| t.elapsed() >= timeout);
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            conn = s.pg.connect(tokio_postgres::NoTls).await.ok().map(|(client, connection)| {
                tokio::spawn(connection);
                client
            });
        }
        let beaten = match &conn {
            Some(c) => s.beat(c, sweep).await,
            None => Err(StoreError::Unavailable("cannot connect for the heartbeat".into())),
        };
        match beaten {
            Ok(()) => {
                in_touch_since.get_or_insert_with(std::time::Instant::now);
            }
            Err(e) => {
                if in_touch_since.take().is_some() {
                    tracing::warn!("shared store heartbeat failed: {e}");
                }
            }
        }
    }
}
