//! Per-key rate limits shared by every replica: a counter per key, purpose and minute,
//! raised and read in one statement, so N replicas together let through exactly the limit
//! each minute (a fixed window: up to twice the limit can pass around a minute's turn).

use super::{SharedStore, StoreError};
use std::time::Duration;

const WINDOW_MS: i64 = 60_000;

impl SharedStore {
    /// Counts one use of `scope` by `key_id`; `Ok(Err(wait))` when over `per_minute`
    /// (0: no limit, nothing counted).
    pub async fn rate_check(
        &self,
        key_id: &str,
        scope: &str,
        per_minute: u32,
    ) -> Result<Result<(), Duration>, StoreError> {
        if per_minute == 0 {
            return Ok(Ok(()));
        }
        let now = crate::clock::now_ms();
        let window = now - now.rem_euclid(WINDOW_MS);
        let c = self.client().await?;
        let count: i32 = c
            .query_one(
                "INSERT INTO rate_windows (key_id, scope, window_start_ms, count) VALUES ($1, $2, $3, 1)
                 ON CONFLICT (key_id, scope, window_start_ms) DO UPDATE SET count = rate_windows.count + 1
                 RETURNING count",
                &[&key_id, &scope, &window],
            )
            .await?
            .get(0);
        if count as i64 > per_minute as i64 {
            return Ok(Err(Duration::from_millis((window + WINDOW_MS - now).max(1) as u64)));
        }
        Ok(Ok(()))
    }
}
