//! Per-key spending limits, enforced *before* a call. A request reserves an upper bound
//! of its cost (prompt bytes as tokens — a byte-level tokenizer never makes more tokens
//! than bytes — plus the completion limit, at the priciest candidate model), and settles
//! to the real cost afterwards. Reservations count against the budget while in flight,
//! so any number of concurrent requests cannot together spend more than the budget.
//!
//! One server keeps the accounts in memory (rebuilt from its books at start). Replicas
//! sharing a store keep them there instead (`store/budgets.rs`), where one statement
//! reserves for all of them.

use crate::clock::{self, now_ms};
use crate::config::KeyConfig;
use crate::store::{SharedStore, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How often a key's budget starts over (`budget_period`): each UTC day, each calendar
/// month, or never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    #[default]
    Month,
    Total,
}

impl Period {
    /// Start of the period containing `now_ms` (UTC), in ms since the epoch.
    pub fn start_ms(self, now_ms: i64) -> i64 {
        match self {
            Period::Total => 0,
            Period::Day => clock::day_start_ms(now_ms),
            Period::Month => clock::month_start_ms(now_ms),
        }
    }
}

#[derive(Debug)]
struct Account {
    limit: f64,
    period: Period,
    period_start: i64,
    spent: f64,
    reserved: f64,
}

/// Budgets of all keys that have one.
pub struct Budgets {
    /// Limit and period of every budgeted key; spent and reserved too when not shared.
    accounts: Mutex<HashMap<String, Account>>,
    shared: Option<Arc<SharedStore>>,
}

/// Money set aside for one in-flight request; hand it back with [`Budgets::settle`].
#[derive(Debug)]
pub struct Reservation {
    key_id: String,
    amount: f64,
    period_start: i64,
    /// Its row in the shared store, when budgets are shared.
    shared_id: Option<String>,
}

/// Why money could not be set aside.
#[derive(Debug)]
pub enum Refusal {
    Over(OverBudget),
    /// The shared store could not be asked: nothing was reserved.
    Store(StoreError),
}

impl Reservation {
    pub fn amount(&self) -> f64 {
        self.amount
    }
}

/// Refusal: how much was asked and how much is left.
#[derive(Debug)]
pub struct OverBudget {
    pub needed: f64,
    pub remaining: f64,
    pub limit: f64,
}

impl Budgets {
    /// `spent_since(key_id, period_start_ms)` returns what the books say was already spent,
    /// so a restart does not reset budgets.
    pub fn new(keys: &[KeyConfig], spent_since: impl Fn(&str, i64) -> f64) -> Budgets {
        let now = now_ms();
        let mut accounts = HashMap::new();
        for k in keys {
            if let Some(limit) = k.budget_usd {
                let period = k.budget_period;
                let start = period.start_ms(now);
                let spent = spent_since(&k.id, start);
                accounts.insert(k.id.clone(), Account { limit, period, period_start: start, spent, reserved: 0.0 });
            }
        }
        Budgets { accounts: Mutex::new(accounts), shared: None }
    }

    /// Budgets kept in the shared store (its accounts are the only truth; nothing is read
    /// from this replica's books).
    pub fn shared(keys: &[KeyConfig], store: Arc<SharedStore>) -> Budgets {
        let b = Budgets::new(keys, |_, _| 0.0);
        Budgets { shared: Some(store), ..b }
    }

    /// A key's limit and the start of its current period, when it has a budget.
    fn terms(&self, key_id: &str) -> Option<(f64, i64)> {
        let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        accounts.get(key_id).map(|a| (a.limit, a.period.start_ms(now_ms())))
    }

    /// Sets aside `amount` for `key_id`, or refuses if that would exceed the budget.
    /// Keys without a budget always succeed.
    pub async fn reserve(&self, key_id: &str, amount: f64) -> Result<Option<Reservation>, Refusal> {
        let Some(store) = &self.shared else { return self.reserve_here(key_id, amount).map_err(Refusal::Over) };
        let Some((limit, period_start)) = self.terms(key_id) else { return Ok(None) };
        match store.reserve(key_id, period_start, limit, amount).await {
            Ok(Ok(id)) => {
                Ok(Some(Reservation { key_id: key_id.to_string(), amount, period_start, shared_id: Some(id) }))
            }
            Ok(Err(over)) => Err(Refusal::Over(over)),
            Err(e) => Err(Refusal::Store(e)),
        }
    }

    /// Raises a reservation to `amount` (a pricier fallback model). On refusal the original
    /// reservation is handed back unchanged.
    #[allow(clippy::result_large_err)]
    pub async fn top_up(&self, mut r: Reservation, amount: f64) -> Result<Reservation, (Option<Reservation>, Refusal)> {
        let (Some(store), Some(id)) = (&self.shared, r.shared_id.clone()) else {
            return self.top_up_here(r, amount).map_err(|(kept, o)| (kept, Refusal::Over(o)));
        };
        let extra = amount - r.amount;
        if extra <= 0.0 {
            return Ok(r);
        }
        match store.top_up(&id, &r.key_id, r.period_start, r.amount, extra).await {
            Ok(Ok(())) => {
                r.amount = amount;
                Ok(r)
            }
            Ok(Err(over)) => Err((Some(r), Refusal::Over(over))),
            Err(e) => Err((Some(r), Refusal::Store(e))),
        }
    }

    fn reserve_here(&self, key_id: &str, amount: f64) -> Result<Option<Reservation>, OverBudget> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(a) = accounts.get_mut(key_id) else { return Ok(None) };
        let start = a.period.start_ms(now_ms());
        if start != a.period_start {
            a.period_start = start;
            a.spent = 0.0;
        }
        let remaining = a.limit - a.spent - a.reserved;
        if amount > remaining + 1e-12 {
            return Err(OverBudget { needed: amount, remaining: remaining.max(0.0), limit: a.limit });
        }
        a.reserved += amount;
        Ok(Some(Reservation { key_id: key_id.to_string(), amount, period_start: a.period_start, shared_id: None }))
    }

    #[allow(clippy::result_large_err)]
    fn top_up_here(&self, mut r: Reservation, amount: f64) -> Result<Reservation, (Option<Reservation>, OverBudget)> {
        let extra = amount - r.amount;
        if extra <= 0.0 {
            return Ok(r);
        }
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(a) = accounts.get_mut(&r.key_id) else { return Ok(r) };
        let remaining = a.limit - a.spent - a.reserved;
        if a.period_start != r.period_start || extra > remaining + 1e-12 {
            let left = (remaining + r.amount).max(0.0);
            return Err((Some(r), OverBudget { needed: amount, remaining: left, limit: a.limit }));
        }
        a.reserved += extra;
        r.amount = amount;
        Ok(r)
    }

    /// Releases a reservation and books the actual cost. A shared reservation is settled
    /// by the store's writer with the decision row: its id is returned for that.
    pub fn settle(&self, r: Reservation, actual: f64) -> Option<String> {
        if r.shared_id.is_some() {
            return r.shared_id;
        }
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = accounts.get_mut(&r.key_id) {
            if a.period_start == r.period_start {
                a.reserved = (a.reserved - r.amount).max(0.0);
                a.spent += actual;
            }
        }
        None
    }

    /// (key, spent, reserved, limit) of every budgeted key, for `/metrics` and the dashboard
    /// (from the shared store when there is one; empty if it cannot be read).
    pub async fn snapshot(&self) -> Vec<(String, f64, f64, f64)> {
        let Some(store) = &self.shared else {
            let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
            return accounts.iter().map(|(k, a)| (k.clone(), a.spent, a.reserved, a.limit)).collect();
        };
        let periods: Vec<(String, i64)> = {
            let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
            accounts.iter().map(|(k, a)| (k.clone(), a.period.start_ms(now_ms()))).collect()
        };
        store.budget_snapshot(&periods).await.unwrap_or_else(|e| {
            tracing::warn!("budgets not read from the shared store: {e}");
            Vec::new()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(budget: f64) -> KeyConfig {
        KeyConfig {
            id: "k".into(),
            key: Some("s".into()),
            key_sha256: None,
            key_env: None,
            allowed_models: vec![],
            budget_usd: Some(budget),
            budget_period: Period::Day,
            requests_per_minute: 0,
            admin: false,
            log_prompts: true,
        }
    }

    #[test]
    fn reservations_cannot_overspend() {
        let b = Budgets::new(&[key(1.0)], |_, _| 0.25);
        let r1 = b.reserve_here("k", 0.5).unwrap().unwrap();
        assert!(b.reserve_here("k", 0.5).is_err(), "0.25 spent + 0.5 reserved leaves 0.25");
        assert_eq!(b.settle(r1, 0.1), None);
        let r2 = b.reserve_here("k", 0.3).unwrap().unwrap();
        // 0.35 spent + 0.3 reserved: topping up to 0.6 fits, to 0.7 does not (and keeps 0.3).
        let (kept, o) = b.top_up_here(r2, 0.7).unwrap_err();
        assert!((o.remaining - 0.65).abs() < 1e-9, "{o:?}");
        let r2 = b.top_up_here(kept.unwrap(), 0.6).unwrap();
        assert_eq!(r2.amount(), 0.6);
        b.settle(r2, 0.6);
        assert!(b.reserve_here("k", 0.06).is_err(), "0.95 spent");
        assert!(b.reserve_here("other", 100.0).unwrap().is_none());
    }
}
