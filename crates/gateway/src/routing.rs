//! From a request to a ranked list of models. `model: "auto"` (or `auto:<policy>`, or
//! the `conductor` body field) asks the router: features → per-model predicted success
//! and cost → the policy's ranking, which is also the fallback order. A concrete model
//! id skips the router and goes straight there (no fallback: the client chose).
//!
//! The router sits behind a `RwLock` so that feedback changes it while it serves.

use crate::error::ApiError;
use crate::keys::KeyInfo;
use crate::registry::Registry;
use axum::http::StatusCode;
use conductor_core::embedder::TextEmbedder;
use conductor_core::policy::{decide, Constraints, Policy};
use conductor_core::router::{Prediction, Router};
use serde_json::{json, Value};
use std::sync::{Arc, RwLock};

/// The router in use, shared and updated live.
pub struct LiveRouter {
    router: RwLock<Router>,
    embedder: Option<Arc<dyn TextEmbedder>>,
    /// Where the router came from: an artifact path, or "cold start".
    source: String,
}

impl LiveRouter {
    pub fn new(router: Router, embedder: Option<Arc<dyn TextEmbedder>>, source: String) -> LiveRouter {
        LiveRouter { router: RwLock::new(router), embedder, source }
    }

    /// Which router is serving and how it was trained (for `/healthz`).
    pub fn summary(&self) -> Value {
        let r = self.read();
        let i = r.info();
        json!({
            "source": self.source,
            "predictor": i.predictor,
            "features": r.feature_kind().to_string(),
            "hyperparameters": i.hyperparameters,
            "train_prompts": i.train_prompts,
            "models": r.catalog().models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Router> {
        self.router.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn featurize(&self, text: &str) -> anyhow::Result<Vec<f32>> {
        self.read().featurize(text, self.embedder.as_deref())
    }

    pub fn predict(&self, text: &str, prompt_tokens: usize) -> anyhow::Result<Vec<Prediction>> {
        let r = self.read();
        let x = r.featurize(text, self.embedder.as_deref())?;
        Ok(r.predict(&x, prompt_tokens))
    }

    /// Teaches the router one outcome; later requests see it at once.
    pub fn add_feedback(&self, text: &str, model: &str, score: f64) -> anyhow::Result<()> {
        let x = self.featurize(text)?;
        self.router.write().unwrap_or_else(|p| p.into_inner()).add_feedback(&x, model, score);
        Ok(())
    }
}

/// What the router decided for one request.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `auto` or `direct`.
    pub mode: &'static str,
    /// Policy in words, e.g. `threshold:0.7` or `direct`.
    pub policy: String,
    pub reason: String,
    /// Models to try, in order.
    pub ranked: Vec<String>,
    pub candidates: Vec<Prediction>,
}

impl Plan {
    pub fn candidates_json(&self) -> Value {
        json!(self
            .candidates
            .iter()
            .map(|p| json!({"model": p.model, "p_success": p.p_success, "est_cost_usd": p.est_cost_usd}))
            .collect::<Vec<_>>())
    }
}

fn policy_name(p: &Policy) -> String {
    match p {
        Policy::MaxQuality => "quality".into(),
        Policy::CostTradeoff { lambda } => format!("cost:{lambda}"),
        Policy::Threshold { tau } => format!("threshold:{tau}"),
    }
}

/// Routing knobs of one request: `auto:<policy>` in the model name and/or the
/// `conductor` body field (`policy`, `lambda`, `tau`, `max_cost_usd`, `min_quality`).
fn knobs(
    model: &str,
    extra: Option<&Value>,
    default_policy: &str,
    defaults: &Constraints,
) -> Result<(Policy, Constraints), ApiError> {
    let bad = |param: &str, m: String| ApiError::bad_request("invalid_routing_option", m).with_param(param);
    let mut spec = match model.strip_prefix("auto:") {
        Some(p) => p.to_string(),
        None => default_policy.to_string(),
    };
    let mut c = defaults.clone();
    if let Some(Value::Object(o)) = extra {
        for k in o.keys() {
            if !["policy", "lambda", "tau", "max_cost_usd", "min_quality"].contains(&k.as_str()) {
                return Err(bad(
                    &format!("conductor.{k}"),
                    format!("unknown routing option `conductor.{k}` (policy, lambda, tau, max_cost_usd, min_quality)"),
                ));
            }
        }
        let num = |k: &str| -> Result<Option<f64>, ApiError> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_f64().filter(|x| x.is_finite() && *x >= 0.0).map(Some).ok_or_else(|| {
                    bad(&format!("conductor.{k}"), format!("`conductor.{k}` must be a non-negative number"))
                }),
            }
        };
        if let Some(p) = o.get("policy") {
            spec = p
                .as_str()
                .ok_or_else(|| bad("conductor.policy", "`conductor.policy` must be a string".into()))?
                .to_string();
        }
        let base = spec.split(':').next().unwrap_or("").to_string();
        if let Some(l) = num("lambda")? {
            spec = format!("{base}:{l}");
        }
        if let Some(t) = num("tau")? {
            spec = format!("{base}:{t}");
        }
        if let Some(m) = num("max_cost_usd")? {
            c.max_cost_usd = Some(m);
        }
        if let Some(q) = num("min_quality")? {
            if q > 1.0 {
                return Err(bad("conductor.min_quality", "`conductor.min_quality` must be in [0, 1]".into()));
            }
            c.min_quality = Some(q);
        }
    }
    let policy: Policy = spec.parse().map_err(|e: anyhow::Error| bad("model", e.to_string()))?;
    Ok((policy, c))
}

pub fn is_auto(model: &str) -> bool {
    model == "auto" || model.starts_with("auto:")
}

/// Decides which models to try for a request.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    registry: &Registry,
    router: &LiveRouter,
    key: &KeyInfo,
    model: &str,
    extra: Option<&Value>,
    routing_text: &str,
    prompt_tokens: usize,
    default_policy: &str,
    defaults: &Constraints,
) -> Result<Plan, ApiError> {
    if !is_auto(model) {
        if extra.is_some() {
            // Knobs make no sense for a fixed model, but validate them so typos surface.
            knobs("auto", extra, default_policy, defaults)?;
        }
        if registry.get(model).is_none() {
            let known: Vec<&str> = registry.all().iter().map(|m| m.entry.id.as_str()).collect();
            return Err(ApiError::not_found(
                "model_not_found",
                format!("model `{model}` does not exist; use \"auto\" or one of: {}", known.join(", ")),
            )
            .with_param("model"));
        }
        if !key.may_use(model) {
            return Err(ApiError::forbidden(format!("API key `{}` may not use model `{model}`", key.id)));
        }
        return Ok(Plan {
            mode: "direct",
            policy: "direct".into(),
            reason: "model requested by the client".into(),
            ranked: vec![model.to_string()],
            candidates: Vec::new(),
        });
    }
    let (policy, mut constraints) = knobs(model, extra, default_policy, defaults)?;
    let preds =
        router.predict(routing_text, prompt_tokens).map_err(|e| ApiError::internal(format!("router failed: {e:#}")))?;
    // Only models served here (an artifact may know more) and allowed for this key.
    let allowed: Vec<String> = registry
        .all()
        .iter()
        .map(|m| m.entry.id.clone())
        .filter(|id| key.may_use(id))
        .filter(|id| constraints.allowed_models.as_ref().is_none_or(|a| a.contains(id)))
        .collect();
    if allowed.is_empty() {
        return Err(ApiError::forbidden(format!("API key `{}` may not use any served model", key.id)));
    }
    constraints.allowed_models = Some(allowed);
    let d = decide(&preds, &policy, &constraints);
    if d.chosen.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            "no_confident_model",
            d.reason,
        ));
    }
    let mut ranked = d.ranked;
    if let Some(c) = &d.chosen {
        // The chosen model goes first even when min_quality skipped the policy's top pick.
        ranked.retain(|m| m != c);
        ranked.insert(0, c.clone());
    }
    Ok(Plan { mode: "auto", policy: policy_name(&policy), reason: d.reason, ranked, candidates: preds })
}
