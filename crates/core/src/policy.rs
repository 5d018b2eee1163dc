//! Policies: turning per-model predictions into a decision — a model, a fallback order,
//! or an honest abstention when nothing is predicted to answer well enough.

use crate::router::Prediction;
use serde::{Deserialize, Serialize};

/// Default λ for `cost` (quality points per US dollar): paying one extra cent must buy
/// ≥ 0.1 predicted success. At RouteLLM-era prices this sends roughly the hardest half of
/// prompts to GPT-4-class models.
pub const DEFAULT_LAMBDA: f64 = 10.0;
/// Default τ for `threshold`: the cheapest model at least this likely to succeed.
pub const DEFAULT_TAU: f64 = 0.7;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Policy {
    /// Highest predicted success (ties go to the cheaper model).
    MaxQuality,
    /// Highest p_success − λ · est_cost_usd.
    CostTradeoff { lambda: f64 },
    /// Cheapest model with p_success ≥ τ; if none, the most likely to succeed.
    Threshold { tau: f64 },
}

impl std::str::FromStr for Policy {
    type Err = anyhow::Error;
    /// `quality`, `cost`, `cost:<λ>`, `threshold`, `threshold:<τ>` (the gateway's
    /// `auto:<policy>` model names).
    fn from_str(s: &str) -> anyhow::Result<Policy> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let num = |default: f64| -> anyhow::Result<f64> {
            match arg {
                None => Ok(default),
                Some(a) => a
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| anyhow::anyhow!("policy `{s}`: `{a}` is not a non-negative number")),
            }
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "quality" | "max-quality" | "max_quality" | "best" => Ok(Policy::MaxQuality),
            "cost" | "tradeoff" | "cost-tradeoff" | "balanced" => {
                Ok(Policy::CostTradeoff { lambda: num(DEFAULT_LAMBDA)? })
            }
            "threshold" | "cheapest" => {
                let tau = num(DEFAULT_TAU)?;
                anyhow::ensure!(tau <= 1.0, "policy `{s}`: τ must be in [0, 1]");
                Ok(Policy::Threshold { tau })
            }
            other => anyhow::bail!("unknown policy `{other}` (expected quality, cost[:λ] or threshold[:τ])"),
        }
    }
}

/// Limits that apply whatever the policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// Models whose estimated cost exceeds this are not chosen.
    pub max_cost_usd: Option<f64>,
    /// Abstain when no eligible model reaches this predicted success.
    pub min_quality: Option<f64>,
    /// Only these model ids may be chosen.
    pub allowed_models: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// `None` = abstain: no eligible model reaches `min_quality` (or none is eligible).
    pub chosen: Option<String>,
    /// Eligible models in fallback order, best first by the policy's objective.
    pub ranked: Vec<String>,
    pub reason: String,
}

/// The policy's preference between two candidates given as (p_success, cost):
/// `Less` means `a` is preferred. Ties always go to the cheaper model.
fn prefer(policy: &Policy, a: (f64, f64), b: (f64, f64)) -> std::cmp::Ordering {
    let cheaper = a.1.total_cmp(&b.1);
    match policy {
        Policy::MaxQuality => b.0.total_cmp(&a.0).then(cheaper),
        Policy::CostTradeoff { lambda } => {
            let u = |x: (f64, f64)| x.0 - lambda * x.1;
            u(b).total_cmp(&u(a)).then(cheaper)
        }
        Policy::Threshold { tau } => {
            // Models reaching τ, cheapest first; then the rest, most likely first.
            let (ra, rb) = (a.0 >= *tau, b.0 >= *tau);
            rb.cmp(&ra).then(if ra && rb { cheaper } else { b.0.total_cmp(&a.0).then(cheaper) })
        }
    }
}

/// Index of the model the policy picks from per-model success probabilities and costs,
/// without constraints: the hot path of the lab's policy sweeps.
pub fn choose_index(p: &[f64], cost: &[f64], policy: &Policy) -> usize {
    (0..p.len()).min_by(|&a, &b| prefer(policy, (p[a], cost[a]), (p[b], cost[b]))).unwrap_or(0)
}

/// Applies the constraints, ranks eligible models by the policy, and abstains when
/// the best available prediction is below `min_quality`.
pub fn decide(preds: &[Prediction], policy: &Policy, c: &Constraints) -> Decision {
    let eligible: Vec<&Prediction> = preds
        .iter()
        .filter(|p| c.allowed_models.as_ref().is_none_or(|a| a.iter().any(|m| m == &p.model)))
        .filter(|p| c.max_cost_usd.is_none_or(|m| p.est_cost_usd <= m))
        .collect();
    if eligible.is_empty() {
        return Decision {
            chosen: None,
            ranked: Vec::new(),
            reason: "no model satisfies the constraints (allowed models / max cost)".into(),
        };
    }
    let mut ranked = eligible.clone();
    ranked.sort_by(|a, b| prefer(policy, (a.p_success, a.est_cost_usd), (b.p_success, b.est_cost_usd)));
    let best_p = eligible.iter().map(|p| p.p_success).fold(f64::NEG_INFINITY, f64::max);
    let names: Vec<String> = ranked.iter().map(|p| p.model.clone()).collect();
    if let Some(minq) = c.min_quality.filter(|&m| best_p < m) {
        return Decision {
            chosen: None,
            ranked: names,
            reason: format!("abstain: best predicted success {best_p:.3} is below the minimum {minq:.3}"),
        };
    }
    // Under min_quality, skip models predicted below it when a better one exists.
    let top = ranked.iter().find(|p| c.min_quality.is_none_or(|m| p.p_success >= m)).unwrap_or(&ranked[0]);
    let reason = match policy {
        Policy::MaxQuality => format!("highest predicted success ({:.3})", top.p_success),
        Policy::CostTradeoff { lambda } => {
            format!("best p − λ·cost with λ={lambda}: p={:.3}, est. cost ${:.6}", top.p_success, top.est_cost_usd)
        }
        Policy::Threshold { tau } if top.p_success >= *tau => {
            format!("cheapest model with predicted success ≥ {tau} (p={:.3}, ${:.6})", top.p_success, top.est_cost_usd)
        }
        Policy::Threshold { tau } => {
            format!("no model reaches τ={tau}; most likely to succeed (p={:.3})", top.p_success)
        }
    };
    let chosen = top.model.clone();
    let mut ranked_names = vec![chosen.clone()];
    ranked_names.extend(names.into_iter().filter(|m| m != &chosen));
    Decision { chosen: Some(chosen), ranked: ranked_names, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preds() -> Vec<Prediction> {
        let p = |m: &str, p: f64, c: f64| Prediction { model: m.into(), p_success: p, est_cost_usd: c };
        vec![p("small", 0.6, 0.0001), p("medium", 0.75, 0.001), p("large", 0.9, 0.01)]
    }

    fn chosen(p: &Policy, c: &Constraints) -> Option<String> {
        decide(&preds(), p, c).chosen
    }

    #[test]
    fn policies_choose_as_defined() {
        let none = Constraints::default();
        assert_eq!(chosen(&Policy::MaxQuality, &none).as_deref(), Some("large"));
        // λ=10: utilities 0.599, 0.74, 0.8 → large; λ=20: 0.598, 0.73, 0.7 → medium.
        assert_eq!(chosen(&Policy::CostTradeoff { lambda: 10.0 }, &none).as_deref(), Some("large"));
        assert_eq!(chosen(&Policy::CostTradeoff { lambda: 20.0 }, &none).as_deref(), Some("medium"));
        assert_eq!(chosen(&Policy::Threshold { tau: 0.7 }, &none).as_deref(), Some("medium"));
        assert_eq!(chosen(&Policy::Threshold { tau: 0.5 }, &none).as_deref(), Some("small"));
        assert_eq!(chosen(&Policy::Threshold { tau: 0.95 }, &none).as_deref(), Some("large"));
        let d = decide(&preds(), &Policy::Threshold { tau: 0.7 }, &none);
        assert_eq!(d.ranked, vec!["medium", "large", "small"]);
    }

    #[test]
    fn constraints_and_abstention() {
        let cheap = Constraints { max_cost_usd: Some(0.005), ..Default::default() };
        assert_eq!(chosen(&Policy::MaxQuality, &cheap).as_deref(), Some("medium"));
        let only_small = Constraints { allowed_models: Some(vec!["small".into()]), ..Default::default() };
        assert_eq!(chosen(&Policy::MaxQuality, &only_small).as_deref(), Some("small"));
        let strict = Constraints { min_quality: Some(0.95), ..Default::default() };
        let d = decide(&preds(), &Policy::MaxQuality, &strict);
        assert_eq!(d.chosen, None);
        assert!(d.reason.starts_with("abstain"));
        assert_eq!(d.ranked.len(), 3);
        // min_quality skips the cheap model the threshold policy would pick.
        let floor = Constraints { min_quality: Some(0.7), ..Default::default() };
        assert_eq!(chosen(&Policy::Threshold { tau: 0.5 }, &floor).as_deref(), Some("medium"));
    }

    #[test]
    fn parses_gateway_names() {
        assert_eq!("quality".parse::<Policy>().unwrap(), Policy::MaxQuality);
        assert_eq!("cost".parse::<Policy>().unwrap(), Policy::CostTradeoff { lambda: DEFAULT_LAMBDA });
        assert_eq!("cost:2.5".parse::<Policy>().unwrap(), Policy::CostTradeoff { lambda: 2.5 });
        assert_eq!("threshold:0.8".parse::<Policy>().unwrap(), Policy::Threshold { tau: 0.8 });
        assert!("threshold:2".parse::<Policy>().is_err());
        assert!("cost:abc".parse::<Policy>().is_err());
        assert!("fastest".parse::<Policy>().is_err());
    }
}
