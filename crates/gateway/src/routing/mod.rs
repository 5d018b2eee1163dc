//! From a request to a ranked list of models. `model: "auto"` (or `auto:<policy>`, or
//! the `conductor` body field) asks the router: features → per-model predicted success
//! and cost → the policy's ranking, which is also the fallback order. A concrete model
//! id skips the router and goes straight there (no fallback: the client chose).

mod live;

pub use live::{LiveRouter, RoutingError};

use crate::error::ApiError;
use crate::keys::KeyInfo;
use crate::registry::{Registry, Served};
use crate::verification::{Check, Strategy};
use axum::http::StatusCode;
use conductor_core::policy::{decide, Constraints, Policy};
use conductor_core::router::Prediction;
use conductor_providers::Requirement;
use std::sync::Arc;

/// Where the client asked a request to go (parsed once, at the edge: see `request.rs`).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Let the router choose under this policy and these limits; with a check, the answer
    /// is verified and escalated up the ladder of cheaper-to-dearer models when doubtful.
    Auto { policy: Policy, constraints: Constraints, check: Option<Check> },
    /// This model id, as the client named it.
    Direct(String),
}

/// Everything the router needs to decide one request.
pub struct RoutingRequest<'a> {
    pub key: &'a KeyInfo,
    pub target: &'a Target,
    /// The text the router reads (see `ChatInput::routing_text`).
    pub text: &'a str,
    pub prompt_tokens: usize,
    /// What the request needs beyond plain chat; only models that honour all of it qualify.
    pub requires: &'a [Requirement],
}

/// The 400 for a model that cannot honour a field of the request.
fn cannot_honour(model: &str, r: &Requirement) -> ApiError {
    ApiError::bad_request(
        "unsupported_parameter",
        format!(
            "model `{model}` cannot honour `{}` (neither its provider nor its configured `capabilities` include `{}`)",
            r.field, r.capability
        ),
    )
    .with_param(r.field.clone())
}

/// Whether the router chose or the client did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Direct,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Direct => "direct",
        }
    }
}

/// What the router decided for one request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    /// Policy in words, e.g. `threshold:0.7` or `direct`.
    pub policy: String,
    pub reason: String,
    /// Models to try, in order.
    pub ranked: Vec<String>,
    /// Every served candidate's prediction (empty for a direct request).
    pub candidates: Vec<Prediction>,
    /// Verify each answer before accepting it; `ranked` is then the ladder, cheapest first.
    pub check: Option<Check>,
}

fn policy_name(p: &Policy) -> String {
    match p {
        Policy::MaxQuality => "quality".into(),
        Policy::CostTradeoff { lambda } => format!("cost:{lambda}"),
        Policy::Threshold { tau } => format!("threshold:{tau}"),
    }
}

/// Decides which models to try for a request.
pub async fn plan(registry: &Registry, router: &LiveRouter, req: RoutingRequest<'_>) -> Result<Plan, ApiError> {
    let key = req.key;
    let (policy, constraints, check) = match req.target {
        Target::Direct(model) => return direct(registry, key, model, req.requires),
        Target::Auto { policy, constraints, check } => (policy, constraints, check),
    };
    // A cascade starts at the cheapest model predicted adequate: the threshold policy.
    let cascade;
    let policy = match check {
        Some(Check { strategy: Strategy::Cascade, .. }) => {
            cascade = match policy {
                Policy::Threshold { .. } => policy.clone(),
                _ => Policy::Threshold { tau: conductor_core::policy::DEFAULT_TAU },
            };
            &cascade
        }
        _ => policy,
    };
    // Only models served here (an artifact may know more) and allowed for this key.
    let permitted: Vec<&Arc<Served>> = registry
        .all()
        .iter()
        .filter(|m| key.may_use(&m.entry.id))
        .filter(|m| constraints.allowed_models.as_ref().is_none_or(|a| a.contains(&m.entry.id)))
        .collect();
    if permitted.is_empty() {
        return Err(ApiError::forbidden(format!("API key `{}` may not use any served model", key.id)));
    }
    // ... and able to honour everything the request asks for.
    let allowed: Vec<String> =
        permitted.iter().filter(|m| m.unsupported(req.requires).is_none()).map(|m| m.entry.id.clone()).collect();
    if allowed.is_empty() {
        let r = permitted.iter().find_map(|m| m.unsupported(req.requires));
        let field = r.map_or(String::new(), |r| r.field.clone());
        return Err(ApiError::bad_request(
            "unsupported_parameter",
            format!("no model this key may use can honour `{field}`; send it to a model whose provider supports it"),
        )
        .with_param(field));
    }
    let preds = router.predict(req.text, req.prompt_tokens).await.map_err(|e| match e {
        RoutingError::Busy(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "router_busy", e.to_string())
                .with_retry_after(1)
        }
        other => ApiError::internal(other.to_string()),
    })?;
    let constraints = Constraints { allowed_models: Some(allowed), ..constraints.clone() };
    let d = decide(&preds, policy, &constraints);
    let Some(chosen) = d.chosen else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            "no_confident_model",
            d.reason,
        ));
    };
    let ranked = match check {
        // Checked answers climb a ladder: from the chosen model to every dearer one.
        Some(_) => ladder(&preds, &d.ranked, &chosen),
        None => {
            // The chosen model goes first even when min_quality skipped the policy's top pick.
            let mut ranked = d.ranked;
            ranked.retain(|m| *m != chosen);
            ranked.insert(0, chosen);
            ranked
        }
    };
    let name = match check {
        Some(c) => format!("{}+{}", c.strategy.as_str(), policy_name(policy)),
        None => policy_name(policy),
    };
    // Candidates are what this gateway serves (an artifact may know more models).
    let candidates = preds.into_iter().filter(|p| registry.get(&p.model).is_some()).collect();
    Ok(Plan { mode: Mode::Auto, policy: name, reason: d.reason, ranked, candidates, check: *check })
}

/// The models a checked request may climb: those the policy ranked, cheapest first by
/// estimated cost, from the chosen one up (cheaper ones are not tried: the router did
/// not expect them to do).
fn ladder(preds: &[Prediction], ranked: &[String], chosen: &str) -> Vec<String> {
    let cost = |m: &str| preds.iter().find(|p| p.model == m).map_or(f64::INFINITY, |p| p.est_cost_usd);
    let mut by_cost: Vec<String> = ranked.to_vec();
    by_cost.sort_by(|a, b| cost(a).total_cmp(&cost(b)).then_with(|| a.cmp(b)));
    let start = by_cost.iter().position(|m| m == chosen).unwrap_or(0);
    by_cost.split_off(start)
}

fn direct(registry: &Registry, key: &KeyInfo, model: &str, requires: &[Requirement]) -> Result<Plan, ApiError> {
    let Some(m) = registry.get(model) else {
        // Name only what this key may use; echo at most a short prefix of the request.
        let known: Vec<&str> =
            registry.all().iter().map(|m| m.entry.id.as_str()).filter(|id| key.may_use(id)).collect();
        return Err(ApiError::not_found(
            "model_not_found",
            format!(
                "model `{}` does not exist; use \"auto\" or one of: {}",
                crate::error::truncate(model),
                known.join(", ")
            ),
        )
        .with_param("model"));
    };
    if !key.may_use(model) {
        return Err(ApiError::forbidden(format!("API key `{}` may not use model `{model}`", key.id)));
    }
    if let Some(r) = m.unsupported(requires) {
        return Err(cannot_honour(model, r));
    }
    Ok(Plan {
        mode: Mode::Direct,
        policy: "direct".into(),
        reason: "model requested by the client".into(),
        ranked: vec![model.to_string()],
        candidates: Vec::new(),
        check: None,
    })
}
