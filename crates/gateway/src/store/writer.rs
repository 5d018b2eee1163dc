//! The shared store's one writer task: decisions (and the settlements that go with them)
//! are committed in batches, one transaction each. A batch that cannot be committed is kept
//! and retried every second, in order, until it is: those decisions were already answered.

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
                for cmd in batch {
                    if let Cmd::Flush(reply) = cmd {
                        let _ = reply.send(());
                    }
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
        txn.execute(
            &insert,
            &[
                &r.id,
                &r.ts_ms,
                &r.key_id,
                &r.requested_model,
                &r.chosen_model,
                &r.policy,
                &r.reason,
                &json(&r.candidates),
                &json(&r.attempts),
                &r.prompt,
                &(r.prompt_tokens as i64),
                &(r.completion_tokens as i64),
                &r.cost_usd,
                &r.baseline_cost_usd,
                &r.latency_ms,
                &r.stream,
                &r.outcome,
                &r.error,
                &r.verification,
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

/// A JSON column's value (candidates, attempts) as a JSONB parameter.
fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
