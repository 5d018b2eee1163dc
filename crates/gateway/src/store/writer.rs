//! The shared store's one writer task: decisions (and the settlements that go with them)
//! are committed in batches, one transaction each. A batch that cannot be committed because
//! the store is away is kept and retried every second, in order, until it is: those
//! decisions were already answered. A batch the database refuses for its content is written
//! again one decision at a time, so one bad row cannot hold up the others or their spend.

use super::budgets::SETTLE;
use super::StoreError;
use crate::books::DecisionRow;
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub enum Cmd {
    /// A decision, and the reservation its cost settles.
    Decision(Box<DecisionRow>, Option<String>),
    Flush(oneshot::Sender<()>),
}

const RETRY: Duration = Duration::from_secs(1);
const BATCH: usize = 256;

pub async fn run(pool: Pool, replica: String, mut rx: mpsc::UnboundedReceiver<Cmd>) {
    let mut carried: Vec<Cmd> = Vec::new();
    let mut failing = false;
    loop {
        let mut batch = std::mem::take(&mut carried);
        let closed = if batch.is_empty() {
            match rx.recv().await {
                Some(c) => {
                    batch.push(c);
                    false
                }
                None => return,
            }
        } else {
            tokio::time::sleep(RETRY).await;
            rx.is_closed() && rx.is_empty()
        };
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        match write(&pool, &replica, &batch).await {
            Ok(()) => {
                if failing {
                    failing = false;
                    tracing::warn!("shared store writable again; the decisions kept meanwhile are written");
                }
                answer_flushes(batch);
            }
            Err(StoreError::Db(e)) => {
                tracing::error!("the shared store refused a batch of decisions ({e}); writing them one by one");
                match write_each(&pool, &replica, &batch).await {
                    Ok(()) => answer_flushes(batch),
                    Err(_) => carried = batch,
                }
            }
            Err(e) => {
                let decisions = batch.iter().filter(|c| matches!(c, Cmd::Decision(..))).count();
                if closed {
                    tracing::error!("shared store write failed at shutdown: {e}; {decisions} decisions not recorded");
                    return;
                }
                if !failing {
                    tracing::error!(
                        "shared store write failed: {e}; {decisions} decisions kept and retried every {} s",
                        RETRY.as_secs()
                    );
                }
                failing = true;
                carried = batch;
            }
        }
    }
}

fn answer_flushes(batch: Vec<Cmd>) {
    for cmd in batch {
        if let Cmd::Flush(reply) = cmd {
            let _ = reply.send(());
        }
    }
}

/// Each decision in its own transaction. One the database refuses is logged and left out,
/// but its reservation is still settled at its cost. Fails only when the store is away.
async fn write_each(pool: &Pool, replica: &str, batch: &[Cmd]) -> Result<(), StoreError> {
    for cmd in batch {
        let Cmd::Decision(row, settles) = cmd else { continue };
        match write(pool, replica, std::slice::from_ref(cmd)).await {
            Ok(()) => {}
            Err(StoreError::Db(e)) => {
                tracing::error!(decision = %row.id, "decision not written to the shared store: {e}");
                if let Some(id) = settles {
                    let settled = vec![id.as_str()];
                    let client = pool.get().await?;
                    if let Err(e) = client.execute(SETTLE, &[&settled, &vec![row.cost_usd]]).await {
                        tracing::error!(decision = %row.id, "its spend not settled either: {e}");
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn write(pool: &Pool, replica: &str, batch: &[Cmd]) -> Result<(), StoreError> {
    if !batch.iter().any(|c| matches!(c, Cmd::Decision(..))) {
        return Ok(());
    }
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let insert = txn
        .prepare_cached(
            "INSERT INTO decisions (id, ts_ms, key_id, requested_model, chosen_model, policy, reason, candidates,
                attempts, prompt, prompt_tokens, completion_tokens, cost_usd, baseline_cost_usd, latency_ms, stream,
                outcome, error, verification, ttft_ms, replica)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
             ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    let (mut settled, mut costs): (Vec<&str>, Vec<f64>) = (Vec::new(), Vec::new());
    for cmd in batch {
        let Cmd::Decision(r, settles) = cmd else { continue };
        let text = |s: &str| s.replace('\0', "\u{fffd}");
        let maybe = |s: &Option<String>| s.as_deref().map(text);
        txn.execute(
            &insert,
            &[
                &r.id,
                &r.ts_ms,
                &r.key_id,
                &text(&r.requested_model),
                &maybe(&r.chosen_model),
                &text(&r.policy),
                &text(&r.reason),
                &json(&r.candidates),
                &json(&r.attempts),
                &maybe(&r.prompt),
                &(r.prompt_tokens as i64),
                &(r.completion_tokens as i64),
                &r.cost_usd,
                &r.baseline_cost_usd,
                &r.latency_ms,
                &r.stream,
                &r.outcome,
                &maybe(&r.error),
                &r.verification.as_ref().map(json),
                &r.ttft_ms,
                &replica,
            ],
        )
        .await?;
        if let Some(id) = settles {
            settled.push(id);
            costs.push(r.cost_usd);
        }
    }
    if !settled.is_empty() {
        txn.execute(SETTLE, &[&settled, &costs]).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// A JSON column's value (candidates, attempts, verification) as a JSONB parameter.
fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    strip_nul(&mut v);
    v
}

/// PostgreSQL's text and JSONB cannot hold U+0000 (SQLite's can, and a prompt or an
/// upstream's error may contain one): it becomes U+FFFD.
fn strip_nul(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{fffd}"),
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nul),
        serde_json::Value::Object(o) => o.values_mut().for_each(strip_nul),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nul_characters_are_replaced_everywhere() {
        let v = super::json(&serde_json::json!({"a": ["x\0y", {"b": "\0"}], "n": 1}));
        assert!(!v.to_string().contains("\\u0000"), "{v}");
        assert_eq!(v["a"][0], "x\u{fffd}y");
        assert_eq!(v["a"][1]["b"], "\u{fffd}");
    }
}
