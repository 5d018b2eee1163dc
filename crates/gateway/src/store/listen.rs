//! Shared learning: a rating committed by any replica is announced with `NOTIFY` (sent
//! only when its transaction commits) and every other replica, listening on a connection
//! of its own, fetches it and teaches its router. Notifications are not kept for a
//! listener that is away, so after every (re)connection the listener also fetches what
//! changed meanwhile; applying a rating twice is harmless (the second replaces the first).

use super::{SharedStore, StoreError};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

pub const CHANNEL: &str = "conductor_feedback";

/// One rating to apply to a router: the decision's prompt and model, and the score.
#[derive(Debug, Clone)]
pub struct SharedRating {
    /// `decision_id/key_id`: a later rating with the same name replaces this one.
    pub rating: String,
    pub prompt: String,
    pub model: String,
    pub score: f64,
}

const SELECT: &str = "SELECT f.decision_id, f.key_id, f.score, d.prompt, d.chosen_model, f.version
    FROM feedback f JOIN decisions d ON d.id = f.decision_id";

/// A rating the router can use: its decision kept the prompt and has a model.
fn rating(r: &tokio_postgres::Row) -> Option<SharedRating> {
    let (decision, key): (String, String) = (r.try_get(0).ok()?, r.try_get(1).ok()?);
    Some(SharedRating {
        rating: format!("{decision}/{key}"),
        score: r.try_get(2).ok()?,
        prompt: r.try_get::<_, Option<String>>(3).ok()??,
        model: r.try_get::<_, Option<String>>(4).ok()??,
    })
}

/// Ratings changed after `version` or at/after `since_ms`, oldest first, and the highest
/// version seen (`version` when none).
pub async fn ratings_since(
    c: &tokio_postgres::Client,
    version: i64,
    since_ms: i64,
) -> Result<(Vec<SharedRating>, i64), StoreError> {
    let rows = c
        .query(&format!("{SELECT} WHERE f.version > $1 OR f.ts_ms >= $2 ORDER BY f.version"), &[&version, &since_ms])
        .await?;
    let top = rows.iter().map(|r| r.get::<_, i64>(5)).max().unwrap_or(version).max(version);
    Ok((rows.iter().filter_map(rating).collect(), top))
}

/// How far back a reconnecting listener looks besides the versions it has not seen: a
/// rating's version is taken before its transaction commits, so a slow commit can land
/// behind a higher version already seen.
const OVERLAP_MS: i64 = 10_000;

impl SharedStore {
    /// Starts listening; ratings from other replicas (and any missed while away) arrive on
    /// the returned channel. `seen` is the highest version already applied.
    pub fn listen(self: &Arc<SharedStore>, seen: i64) -> mpsc::Receiver<SharedRating> {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(listen_loop(Arc::downgrade(self), seen, tx));
        rx
    }
}

async fn listen_loop(store: std::sync::Weak<SharedStore>, mut seen: i64, tx: mpsc::Sender<SharedRating>) {
    let mut since = crate::clock::now_ms() - OVERLAP_MS;
    let mut failing = false;
    loop {
        let Some(s) = store.upgrade() else { return };
        let (pg, me) = (s.pg.clone(), s.replica.clone());
        drop(s);
        match pg.connect(NoTls).await {
            Ok((client, mut conn)) => {
                let (ntx, mut nrx) = mpsc::unbounded_channel::<String>();
                let driver = tokio::spawn(async move {
                    let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
                    while let Some(Ok(m)) = messages.next().await {
                        if let AsyncMessage::Notification(n) = m {
                            if ntx.send(n.payload().to_string()).is_err() {
                                return;
                            }
                        }
                    }
                });
                let caught_up = async {
                    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
                    ratings_since(&client, seen, since).await
                };
                match caught_up.await {
                    Ok((missed, top)) => {
                        if failing {
                            tracing::warn!(missed = missed.len(), "listening to shared feedback again");
                        }
                        failing = false;
                        seen = top;
                        for r in missed {
                            if tx.send(r).await.is_err() {
                                return;
                            }
                        }
                        // Until the connection drops: fetch each announced rating by its version.
                        while let Some(payload) = nrx.recv().await {
                            let mut parts = payload.split(' ');
                            let Some(version) = parts.next().and_then(|v| v.parse::<i64>().ok()) else { continue };
                            seen = seen.max(version);
                            if parts.next() == Some(me.as_str()) {
                                continue; // this replica applied it when it took the rating
                            }
                            match client.query(&format!("{SELECT} WHERE f.version = $1"), &[&version]).await {
                                Ok(rows) => {
                                    for r in rows.iter().filter_map(rating) {
                                        if tx.send(r).await.is_err() {
                                            return;
                                        }
                                    }
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!("cannot listen to shared feedback: {e}; retrying");
                        }
                        failing = true;
                    }
                }
                driver.abort();
                since = crate::clock::now_ms() - OVERLAP_MS;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("cannot listen to shared feedback: {e}; retrying");
                }
                failing = true;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
