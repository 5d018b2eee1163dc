//! Per-key spending limits, enforced *before* a call. A request reserves an upper bound
//! of its cost (prompt bytes as tokens — a byte-level tokenizer never makes more tokens
//! than bytes — plus the completion limit, at the priciest candidate model), and settles
//! to the real cost afterwards. Reservations count against the budget while in flight,
//! so any number of concurrent requests cannot together spend more than the budget.

use crate::clock::{self, now_ms};
use crate::config::KeyConfig;
use std::collections::HashMap;
use std::sync::Mutex;

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
    accounts: Mutex<HashMap<String, Account>>,
}

/// Money set aside for one in-flight request; hand it back with [`Budgets::settle`].
#[derive(Debug)]
pub struct Reservation {
    key_id: String,
    amount: f64,
    period_start: i64,
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
        Budgets { accounts: Mutex::new(accounts) }
    }

    /// Sets aside `amount` for `key_id`, or refuses if that would exceed the budget.
    /// Keys without a budget always succeed.
    pub fn reserve(&self, key_id: &str, amount: f64) -> Result<Option<Reservation>, OverBudget> {
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
        Ok(Some(Reservation { key_id: key_id.to_string(), amount, period_start: a.period_start }))
    }

    /// Raises a reservation to `amount` (a pricier fallback model). On refusal the original
    /// reservation is handed back unchanged.
    #[allow(clippy::result_large_err)]
    pub fn top_up(&self, mut r: Reservation, amount: f64) -> Result<Reservation, (Option<Reservation>, OverBudget)> {
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

    /// Releases a reservation and books the actual cost.
    pub fn settle(&self, r: Reservation, actual: f64) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = accounts.get_mut(&r.key_id) {
            if a.period_start == r.period_start {
                a.reserved = (a.reserved - r.amount).max(0.0);
                a.spent += actual;
            }
        }
    }

    /// (spent, reserved, limit) of a key, for tests and `/metrics`.
    pub fn snapshot(&self) -> Vec<(String, f64, f64, f64)> {
        let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        accounts.iter().map(|(k, a)| (k.clone(), a.spent, a.reserved, a.limit)).collect()
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
            admin: false,
            log_prompts: true,
        }
    }

    #[test]
    fn reservations_cannot_overspend() {
        let b = Budgets::new(&[key(1.0)], |_, _| 0.25);
        let r1 = b.reserve("k", 0.5).unwrap().unwrap();
        assert!(b.reserve("k", 0.5).is_err(), "0.25 spent + 0.5 reserved leaves 0.25");
        b.settle(r1, 0.1);
        let r2 = b.reserve("k", 0.3).unwrap().unwrap();
        // 0.35 spent + 0.3 reserved: topping up to 0.6 fits, to 0.7 does not (and keeps 0.3).
        let (kept, o) = b.top_up(r2, 0.7).unwrap_err();
        assert!((o.remaining - 0.65).abs() < 1e-9, "{o:?}");
        let r2 = b.top_up(kept.unwrap(), 0.6).unwrap();
        assert_eq!(r2.amount(), 0.6);
        b.settle(r2, 0.6);
        assert!(b.reserve("k", 0.06).is_err(), "0.95 spent");
        assert!(b.reserve("other", 100.0).unwrap().is_none());
    }
}
