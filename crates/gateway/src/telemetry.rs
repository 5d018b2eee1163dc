//! OpenTelemetry traces over OTLP/HTTP (protobuf), following the GenAI semantic
//! conventions: one span per request (`chat <requested model>`, kind server) with the
//! routing decision as attributes, and one child span per model call (`chat <model>`, kind
//! client) with its outcome. Spans are built from the request's row in the books when the
//! request is booked, so a trace says exactly what the books say. Off unless
//! `[telemetry] otlp_endpoint` is set; exports run on the SDK's own batch thread.

use crate::books::{AttemptOutcome, DecisionRow};
use crate::config::TelemetryConfig;
use anyhow::Context as _;
use conductor_agent::run::{RunState, Status as RunStatus, Step, StepKind};
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::time::{Duration, UNIX_EPOCH};

pub struct Telemetry {
    exporting: Option<(SdkTracerProvider, SdkTracer)>,
}

/// The collector URL for traces: the base URL with `/v1/traces`, unless already there.
fn traces_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/traces") {
        e.to_string()
    } else {
        format!("{e}/v1/traces")
    }
}

impl Telemetry {
    pub fn off() -> Telemetry {
        Telemetry { exporting: None }
    }

    pub fn from_config(c: &TelemetryConfig) -> anyhow::Result<Telemetry> {
        let Some(endpoint) = c.otlp_endpoint.as_deref() else {
            return Ok(Telemetry::off());
        };
        let url = traces_url(endpoint);
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "config key `telemetry.otlp_endpoint`: `{endpoint}` is not an http(s) URL (OTLP over HTTP, e.g. http://127.0.0.1:4318)"
        );
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(&url)
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(Duration::from_millis(c.timeout_ms))
            .with_headers(c.headers.clone())
            .build()
            .with_context(|| format!("config key `telemetry.otlp_endpoint`: {endpoint}"))?;
        let batch = BatchConfigBuilder::default().with_scheduled_delay(Duration::from_millis(c.batch_delay_ms)).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).with_batch_config(batch).build())
            .with_resource(Resource::builder().with_service_name(c.service_name.clone()).build())
            .build();
        let tracer = provider.tracer("conductor");
        tracing::info!(endpoint = %url, "exporting traces over OTLP");
        Ok(Telemetry { exporting: Some((provider, tracer)) })
    }

    /// The trace of one booked request; `provider` names the provider of a model id.
    pub fn request(&self, row: &DecisionRow, provider: impl Fn(&str) -> Option<String>) {
        let Some((_, tracer)) = &self.exporting else { return };
        let start = UNIX_EPOCH + Duration::from_millis(row.ts_ms.max(0) as u64);
        let at = |ms: f64| start + Duration::from_secs_f64(ms.max(0.0) / 1000.0);
        let root = tracer
            .span_builder(format!("chat {}", row.requested_model))
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes(request_attributes(row))
            .start(tracer);
        let cx = Context::new().with_span(root);
        for (i, a) in row.attempts.iter().enumerate() {
            let mut attrs = vec![
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.request.model", a.model.clone()),
                KeyValue::new("conductor.attempt.index", i as i64),
                KeyValue::new("conductor.attempt.outcome", outcome(a.outcome)),
            ];
            if let Some(p) = provider(&a.model) {
                attrs.push(KeyValue::new("gen_ai.provider.name", p));
            }
            if let Some(e) = &a.error {
                attrs.push(KeyValue::new("error.type", e.clone()));
            }
            if let Some(v) = &a.verdict {
                attrs.push(KeyValue::new("conductor.verdict.accepted", v.accepted));
                if let Some(c) = v.confidence {
                    attrs.push(KeyValue::new("conductor.verdict.confidence", c));
                }
            }
            if let Some(c) = a.cost_usd {
                attrs.push(KeyValue::new("conductor.cost_usd", c));
            }
            let begin = at(a.start_ms.unwrap_or(0.0));
            let mut span = tracer
                .span_builder(format!("chat {}", a.model))
                .with_kind(SpanKind::Client)
                .with_start_time(begin)
                .with_attributes(attrs)
                .start_with_context(tracer, &cx);
            if a.outcome == AttemptOutcome::Error {
                span.set_status(Status::error(a.error.clone().unwrap_or_default()));
            }
            span.end_with_timestamp(begin + Duration::from_secs_f64(a.duration_ms.unwrap_or(0.0).max(0.0) / 1000.0));
        }
        let root = cx.span();
        if row.outcome == "error" {
            root.set_status(Status::error(row.error.clone().unwrap_or_default()));
        }
        root.end_with_timestamp(at(row.latency_ms));
    }

    /// One session of an agent run: an `invoke_agent` span, with a `chat` span per model
    /// call (naming the gateway decision, whose own trace has the routing) and an
    /// `execute_tool` span per tool call. Steps are logged when they end, with how long
    /// they took, so each span ends at its step's time.
    pub fn agent_session(&self, run: &RunState, steps: &[Step], session_start_ms: i64) {
        let Some((_, tracer)) = &self.exporting else { return };
        let at = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
        let name = run.spec.memory.clone().unwrap_or_else(|| "conductor".into());
        let strategy = serde_json::to_value(run.spec.strategy).ok().and_then(|v| v.as_str().map(str::to_string));
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", "invoke_agent"),
            KeyValue::new("gen_ai.agent.id", run.id.clone()),
            KeyValue::new("gen_ai.agent.name", name.clone()),
            KeyValue::new("conductor.agent.status", run.status.as_str()),
            KeyValue::new("conductor.agent.steps", run.steps as i64),
            KeyValue::new("conductor.agent.tokens", run.tokens as i64),
            KeyValue::new("conductor.cost_usd", run.cost_usd),
        ];
        if let Some(s) = strategy {
            attrs.push(KeyValue::new("conductor.agent.strategy", s));
        }
        let root = tracer
            .span_builder(format!("invoke_agent {name}"))
            .with_kind(SpanKind::Internal)
            .with_start_time(at(session_start_ms))
            .with_attributes(attrs)
            .start(tracer);
        let cx = Context::new().with_span(root);
        for step in steps {
            let (span_name, kind, latency_ms, attrs) = match &step.kind {
                StepKind::Model { role, routing, prompt_tokens, completion_tokens, cost_usd, latency_ms, .. } => (
                    format!("chat {}", routing.model),
                    SpanKind::Client,
                    *latency_ms,
                    vec![
                        KeyValue::new("gen_ai.operation.name", "chat"),
                        KeyValue::new("gen_ai.response.model", routing.model.clone()),
                        KeyValue::new("gen_ai.usage.input_tokens", *prompt_tokens as i64),
                        KeyValue::new("gen_ai.usage.output_tokens", *completion_tokens as i64),
                        KeyValue::new("conductor.agent.role", role.as_str()),
                        KeyValue::new("conductor.decision_id", routing.decision_id.clone()),
                        KeyValue::new("conductor.policy", routing.policy.clone()),
                        KeyValue::new("conductor.cost_usd", *cost_usd),
                    ],
                ),
                StepKind::Tool { call, ok, latency_ms, approval, .. } => (
                    format!("execute_tool {}", call.name),
                    SpanKind::Internal,
                    *latency_ms,
                    vec![
                        KeyValue::new("gen_ai.operation.name", "execute_tool"),
                        KeyValue::new("gen_ai.tool.name", call.name.clone()),
                        KeyValue::new("gen_ai.tool.call.id", call.id.clone()),
                        KeyValue::new("conductor.tool.ok", *ok),
                        KeyValue::new("conductor.tool.approval", approval.clone()),
                    ],
                ),
                _ => continue,
            };
            let end = at(step.at_ms);
            let mut span = tracer
                .span_builder(span_name)
                .with_kind(kind)
                .with_start_time(end - Duration::from_millis(latency_ms))
                .with_attributes(attrs)
                .start_with_context(tracer, &cx);
            if matches!(step.kind, StepKind::Tool { ok: false, .. }) {
                span.set_status(Status::error("tool call failed"));
            }
            span.end_with_timestamp(end);
        }
        let root = cx.span();
        if let RunStatus::Stopped { kind, reason } = &run.status {
            root.set_attribute(KeyValue::new("error.type", kind.clone()));
            root.set_status(Status::error(reason.clone()));
        }
        root.end();
    }

    /// Sends what is still batched (at shutdown).
    pub fn shutdown(&self) {
        if let Some((provider, _)) = &self.exporting {
            if let Err(e) = provider.shutdown() {
                tracing::warn!("OTLP trace export at shutdown: {e}");
            }
        }
    }
}

fn outcome(o: AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Ok => "ok",
        AttemptOutcome::Error => "error",
        AttemptOutcome::Skipped => "skipped",
        AttemptOutcome::Rejected => "rejected",
    }
}

fn strings(v: impl Iterator<Item = String>) -> Value {
    Value::Array(Array::String(v.map(StringValue::from).collect()))
}

/// The request span's attributes: GenAI conventions where they have a name for the fact,
/// `conductor.*` for the routing decision.
fn request_attributes(row: &DecisionRow) -> Vec<KeyValue> {
    let mut a = vec![
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.request.model", row.requested_model.clone()),
        KeyValue::new("gen_ai.response.id", format!("chatcmpl-{}", row.id)),
        KeyValue::new("gen_ai.usage.input_tokens", row.prompt_tokens as i64),
        KeyValue::new("gen_ai.usage.output_tokens", row.completion_tokens as i64),
        KeyValue::new("conductor.decision_id", row.id.clone()),
        KeyValue::new("conductor.key_id", row.key_id.clone()),
        KeyValue::new("conductor.policy", row.policy.clone()),
        KeyValue::new("conductor.reason", row.reason.clone()),
        KeyValue::new("conductor.outcome", row.outcome.clone()),
        KeyValue::new("conductor.cost_usd", row.cost_usd),
        KeyValue::new("conductor.baseline_cost_usd", row.baseline_cost_usd),
        KeyValue::new("conductor.stream", row.stream),
        KeyValue::new("conductor.attempts", row.attempts.len() as i64),
        KeyValue::new("conductor.candidate.models", strings(row.candidates.iter().map(|c| c.model.clone()))),
        KeyValue::new(
            "conductor.candidate.p_success",
            Value::Array(Array::F64(row.candidates.iter().map(|c| c.p_success).collect())),
        ),
        KeyValue::new(
            "conductor.candidate.est_cost_usd",
            Value::Array(Array::F64(row.candidates.iter().map(|c| c.est_cost_usd).collect())),
        ),
    ];
    if let Some(m) = &row.chosen_model {
        a.push(KeyValue::new("gen_ai.response.model", m.clone()));
    }
    if let Some(t) = row.ttft_ms {
        a.push(KeyValue::new("conductor.time_to_first_token_ms", t));
    }
    if let Some(e) = &row.error {
        a.push(KeyValue::new("error.type", e.clone()));
    }
    if let Some(v) = &row.verification {
        a.push(KeyValue::new("conductor.verified", v["verified"] == true));
        a.push(KeyValue::new("conductor.abstained", v["abstained"] == true));
    }
    a
}

/// Agent sessions as traces (the runner's observer).
pub struct AgentTraces(pub std::sync::Arc<Telemetry>);

impl conductor_agent::runner::RunObserver for AgentTraces {
    fn session_ended(&self, run: &RunState, steps: &[Step], session_start_ms: i64) {
        self.0.agent_session(run, steps, session_start_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("https://c/otlp/v1/traces"), "https://c/otlp/v1/traces");
    }

    #[test]
    fn a_non_http_endpoint_is_a_start_up_error() {
        let c = TelemetryConfig { otlp_endpoint: Some("grpc://c:4317".into()), ..Default::default() };
        let e = Telemetry::from_config(&c).err().unwrap().to_string();
        assert!(e.contains("telemetry.otlp_endpoint"), "{e}");
        assert!(Telemetry::from_config(&TelemetryConfig::default()).unwrap().exporting.is_none());
    }
}
