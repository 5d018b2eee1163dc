//! Prometheus metrics, hand-rolled: a handful of labelled counters and histograms behind
//! one mutex each, rendered in the text exposition format on `GET /metrics`. Cheap
//! enough for the request path (a few uncontended lock/unlock pairs per request).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Latency buckets in seconds (local models take seconds, upstream overhead microseconds).
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

#[derive(Default)]
pub struct Metrics {
    /// (route, status) → requests
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// (model, kind: prompt|completion) → tokens
    tokens: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// model → USD
    cost: Mutex<BTreeMap<String, f64>>,
    /// (requested: auto|direct, model) → decisions
    decisions: Mutex<BTreeMap<(String, String), u64>>,
    /// (model, kind) → errors
    errors: Mutex<BTreeMap<(String, String), u64>>,
    /// model → request latency
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// model → time to first token (streams)
    ttft: Mutex<BTreeMap<String, Histogram>>,
    feedback: Mutex<u64>,
    /// (model, verdict: accepted|rejected|unchecked) → checked answers
    verdicts: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// model whose answer was withheld → "I don't know" answers
    abstentions: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Escapes a label value (backslash, double quote, newline), as the exposition format wants.
pub fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16) {
        *lock(&self.requests).entry((route.to_string(), status)).or_default() += 1;
    }

    pub fn completion(&self, model: &str, prompt_tokens: u64, completion_tokens: u64, cost: f64, latency_s: f64) {
        {
            let mut t = lock(&self.tokens);
            *t.entry((model.to_string(), "prompt")).or_default() += prompt_tokens;
            *t.entry((model.to_string(), "completion")).or_default() += completion_tokens;
        }
        *lock(&self.cost).entry(model.to_string()).or_default() += cost;
        lock(&self.latency).entry(model.to_string()).or_default().observe(latency_s);
    }

    pub fn first_token(&self, model: &str, secs: f64) {
        lock(&self.ttft).entry(model.to_string()).or_default().observe(secs);
    }

    pub fn decision(&self, mode: &str, model: &str) {
        *lock(&self.decisions).entry((mode.to_string(), model.to_string())).or_default() += 1;
    }

    pub fn error(&self, model: &str, kind: &str) {
        *lock(&self.errors).entry((model.to_string(), kind.to_string())).or_default() += 1;
    }

    pub fn feedback(&self) {
        *lock(&self.feedback) += 1;
    }

    /// One checked answer: `accepted`, `rejected` (checked, not trusted) or `unchecked`
    /// (no verifier or no log-probabilities).
    pub fn verdict(&self, model: &str, verdict: &'static str) {
        *lock(&self.verdicts).entry((model.to_string(), verdict)).or_default() += 1;
    }

    pub fn abstention(&self, model: &str) {
        *lock(&self.abstentions).entry(model.to_string()).or_default() += 1;
    }

    /// Text exposition format. `extra` appends gauges owned elsewhere (breakers, budgets).
    pub fn render(&self, extra: &str) -> String {
        let mut o = String::new();
        o.push_str("# HELP conductor_requests_total HTTP requests by route and status.\n# TYPE conductor_requests_total counter\n");
        for ((r, s), n) in lock(&self.requests).iter() {
            let _ = writeln!(o, "conductor_requests_total{{route=\"{}\",status=\"{s}\"}} {n}", esc(r));
        }
        o.push_str("# HELP conductor_tokens_total Tokens by model and kind.\n# TYPE conductor_tokens_total counter\n");
        for ((m, k), n) in lock(&self.tokens).iter() {
            let _ = writeln!(o, "conductor_tokens_total{{model=\"{}\",kind=\"{k}\"}} {n}", esc(m));
        }
        o.push_str("# HELP conductor_cost_usd_total Spend in USD by model.\n# TYPE conductor_cost_usd_total counter\n");
        for (m, c) in lock(&self.cost).iter() {
            let _ = writeln!(o, "conductor_cost_usd_total{{model=\"{}\"}} {c}", esc(m));
        }
        o.push_str("# HELP conductor_decisions_total Routing decisions by mode and chosen model.\n# TYPE conductor_decisions_total counter\n");
        for ((mode, m), n) in lock(&self.decisions).iter() {
            let _ = writeln!(o, "conductor_decisions_total{{mode=\"{}\",model=\"{}\"}} {n}", esc(mode), esc(m));
        }
        o.push_str("# HELP conductor_errors_total Failed model calls by model and error kind.\n# TYPE conductor_errors_total counter\n");
        for ((m, k), n) in lock(&self.errors).iter() {
            let _ = writeln!(o, "conductor_errors_total{{model=\"{}\",kind=\"{}\"}} {n}", esc(m), esc(k));
        }
        let _ = writeln!(
            o,
            "# HELP conductor_feedback_total Feedback accepted.\n# TYPE conductor_feedback_total counter\nconductor_feedback_total {}",
            *lock(&self.feedback)
        );
        o.push_str("# HELP conductor_verdicts_total Checked answers by model and verdict.\n# TYPE conductor_verdicts_total counter\n");
        for ((m, v), n) in lock(&self.verdicts).iter() {
            let _ = writeln!(o, "conductor_verdicts_total{{model=\"{}\",verdict=\"{v}\"}} {n}", esc(m));
        }
        o.push_str("# HELP conductor_abstentions_total Requests answered \"I don't know\", by the last model tried.\n# TYPE conductor_abstentions_total counter\n");
        for (m, n) in lock(&self.abstentions).iter() {
            let _ = writeln!(o, "conductor_abstentions_total{{model=\"{}\"}} {n}", esc(m));
        }
        for (name, help, h) in [
            ("conductor_request_duration_seconds", "Completed request latency by model.", &self.latency),
            ("conductor_time_to_first_token_seconds", "Streaming time to first token by model.", &self.ttft),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (m, h) in lock(h).iter() {
                let m = esc(m);
                for (b, c) in BUCKETS.iter().zip(h.counts.iter()) {
                    let _ = writeln!(o, "{name}_bucket{{model=\"{m}\",le=\"{b}\"}} {c}");
                }
                let _ = writeln!(o, "{name}_bucket{{model=\"{m}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(o, "{name}_sum{{model=\"{m}\"}} {}", h.sum);
                let _ = writeln!(o, "{name}_count{{model=\"{m}\"}} {}", h.count);
            }
        }
        o.push_str(extra);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.completion("we\"ird\\model\nx", 1, 2, 0.5, 0.1);
        m.error("we\"ird\\model\nx", "timeout");
        let text = m.render("");
        assert!(text.contains(r#"model="we\"ird\\model\nx""#), "{text}");
        // Every sample line stays on one line: no raw newline inside a label value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.matches('"').count() % 2 == 0 || line.contains("\\\""), "{line}");
        }
    }
}
