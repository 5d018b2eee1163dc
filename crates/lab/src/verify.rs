//! `lab verify`: route-then-verify, cascades and abstention, evaluated from records that
//! carry answer signals (`conductor collect` writes them). Per fold (keyed by prompt id, as
//! everywhere in the lab): a prompt-only router is trained on training prompts; each
//! model's answer confidence is fitted on training prompts and calibrated on validation
//! prompts; thresholds are set on validation prompts with a finite-sample promise
//! ([`conductor_core::risk`]); held-out prompts are then run through every policy with
//! every attempt paid and its latency added.

use conductor_core::calibration::{auroc, ece, ECE_BINS};
use conductor_core::catalog::Catalog;
use conductor_core::dataset::Dataset;
use conductor_core::embedder::TextEmbedder;
use conductor_core::features::{EmbeddingCache, FeatureKind};
use conductor_core::metrics;
use conductor_core::policy::{decide, Constraints, Policy, DEFAULT_LAMBDA};
use conductor_core::predictors::PredictorKind;
use conductor_core::records::Record;
use conductor_core::risk;
use conductor_core::router::Router;
use conductor_core::split;
use conductor_core::verify::{answer_features, run_ladder, AnswerModel, Attempt, LadderOutcome, SignalSet};
use serde::Serialize;
use std::collections::HashMap;

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub predictor: PredictorKind,
    pub features: FeatureKind,
    pub folds: usize,
    pub seed: u64,
    /// Share of each fold's non-test prompts kept for validation (calibration, thresholds).
    pub val_frac: f64,
    /// Promise for abstention: selective error at most this.
    pub alpha: f64,
    /// Promise for verify and cascade: at most this share of requests reach the largest model.
    pub beta: f64,
    /// Each promise may fail with probability at most this.
    pub delta: f64,
    /// What the answer models read beyond the token probabilities.
    pub signals: SignalSet,
}

/// One policy on the held-out prompts of every fold, pooled.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyRow {
    pub policy: String,
    /// Mean score, an abstention scoring 0.
    pub quality: f64,
    pub cost_usd: f64,
    pub latency_ms: f64,
    /// Requests that tried the largest model.
    pub share_largest: f64,
    pub abstention: f64,
    /// Wrong answers among those given.
    pub selective_error: f64,
    /// Wrong answers given, as a share of all requests ("confident errors").
    pub error_rate: f64,
    /// The promise made on validation prompts, if any.
    pub promise: Option<String>,
    /// Folds in which the held-out result kept the promise, of those where one was made.
    pub promise_held: Option<(usize, usize)>,
}

/// Discrimination of one model's correctness on held-out prompts.
#[derive(Debug, Clone, Serialize)]
pub struct AurocRow {
    pub model: String,
    pub prompts: usize,
    pub prompt_only: f64,
    pub answer_level: f64,
    /// Expected calibration error (15 bins) of each prediction.
    pub prompt_only_ece: f64,
    pub answer_level_ece: f64,
    /// Area under the risk–coverage curve (lower is better).
    pub prompt_only_aurc: f64,
    pub answer_level_aurc: f64,
}

/// Risk (error among answers kept) against coverage (share kept) when answers are kept in
/// order of confidence, for one model on the held-out prompts.
#[derive(Debug, Clone, Serialize)]
pub struct RiskCoverage {
    pub model: String,
    /// (coverage, risk), ranking by the prompt-only router's predicted success.
    pub prompt_only: Vec<(f64, f64)>,
    /// The same, ranking by the answer-level confidence.
    pub answer_level: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub dataset: String,
    pub prompts: usize,
    /// Prompts left out because some model's record has no signals.
    pub without_signals: usize,
    pub protocol: String,
    pub ladder: Vec<String>,
    pub policies: Vec<PolicyRow>,
    pub auroc: Vec<AurocRow>,
    pub risk_coverage: Vec<RiskCoverage>,
}

/// One prompt as the policies see it: every model's answer (as an attempt), the prompt-only
/// router's predictions and its choice.
struct Case {
    attempts: Vec<Attempt>,
    prompt_p: Vec<f64>,
    chosen: usize,
}

/// Held-out outcomes of one policy, and whether its promise held per fold.
#[derive(Default)]
struct Tally {
    outcomes: Vec<LadderOutcome>,
    promise: Option<String>,
    held: Vec<bool>,
}

impl Tally {
    fn row(&self, policy: &str, largest: usize) -> PolicyRow {
        let n = self.outcomes.len().max(1) as f64;
        let mean = |f: &dyn Fn(&LadderOutcome) -> f64| self.outcomes.iter().map(f).sum::<f64>() / n;
        let answered = self.outcomes.iter().filter(|o| !o.abstained).count();
        let errors = self.outcomes.iter().filter(|o| o.error).count();
        PolicyRow {
            policy: policy.to_string(),
            quality: mean(&|o| o.score),
            cost_usd: mean(&|o| o.cost),
            latency_ms: mean(&|o| o.latency_ms),
            share_largest: mean(&|o| f64::from(u8::from(o.model == largest))),
            abstention: mean(&|o| f64::from(u8::from(o.abstained))),
            selective_error: errors as f64 / answered.max(1) as f64,
            error_rate: errors as f64 / n,
            promise: self.promise.clone(),
            promise_held: self.promise.as_ref().map(|_| (self.held.iter().filter(|h| **h).count(), self.held.len())),
        }
    }
}

/// Runs the evaluation. Records must cover every catalogue model on the prompts used.
pub fn evaluate(
    records: &[Record],
    catalog: &Catalog,
    cfg: &VerifyConfig,
    embedder: Option<&dyn TextEmbedder>,
    cache: Option<&EmbeddingCache>,
) -> anyhow::Result<VerifyReport> {
    let features: HashMap<(&str, &str), Vec<f32>> = records
        .iter()
        .filter_map(|r| Some(((r.prompt_id.as_str(), r.model.as_str()), answer_features(r, cfg.signals)?)))
        .collect();
    let all = Dataset::from_records(records, catalog)?.complete();
    let with_signals: Vec<usize> = (0..all.rows.len())
        .filter(|&i| {
            catalog.models.iter().all(|m| features.contains_key(&(all.rows[i].prompt_id.as_str(), m.id.as_str())))
        })
        .collect();
    let without_signals = all.rows.len() - with_signals.len();
    let data = all.subset(&with_signals);
    let n = data.rows.len();
    anyhow::ensure!(
        cfg.folds >= 2,
        "--folds must be at least 2 (every prompt is tested once, by a router not trained on it), got {}",
        cfg.folds
    );
    anyhow::ensure!(
        n >= 3 * cfg.folds.max(2),
        "{n} prompts have answer signals from every model ({without_signals} do not): too few for {} folds \
         — collect with `conductor collect`, which records them",
        cfg.folds
    );
    let m = data.n_models();
    let keys: Vec<&str> = data.rows.iter().map(|r| r.prompt_id.as_str()).collect();
    let splits = split::k_fold_by_key(&keys, cfg.folds, cfg.val_frac, cfg.seed);
    // Cheapest first, by mean cost over every prompt (prices, not outcomes).
    let mean_cost: Vec<f64> = (0..m).map(|j| data.rows.iter().map(|r| r.costs[j]).sum::<f64>() / n as f64).collect();
    let mut ladder: Vec<usize> = (0..m).collect();
    ladder.sort_by(|&a, &b| mean_cost[a].total_cmp(&mean_cost[b]));
    let largest = ladder[m - 1];
    let names = [
        "largest alone",
        "router (prompt only)",
        "verify",
        "cascade",
        "largest + abstain",
        "verify + abstain",
        "cascade from the cheapest checked model",
    ];
    let mut tallies: Vec<Tally> = names.iter().map(|_| Tally::default()).collect();
    let (mut prompt_p, mut answer_p, mut truth) = (vec![Vec::new(); m], vec![Vec::new(); m], vec![Vec::new(); m]);

    for s in &splits {
        let (train, val) = (data.subset(&s.train), data.subset(&s.val));
        let router = Router::train(&train, &val, cfg.predictor, cfg.features, embedder, cache, cfg.seed)?;
        let answer = |ds: &Dataset, i: usize, j: usize| -> Vec<f32> {
            features[&(ds.rows[i].prompt_id.as_str(), catalog.models[j].id.as_str())].clone()
        };
        let pairs = |ds: &Dataset, j: usize| -> Vec<(Vec<f32>, f64)> {
            (0..ds.rows.len()).filter_map(|i| ds.rows[i].scores[j].map(|y| (answer(ds, i, j), y))).collect()
        };
        let models: Vec<Option<AnswerModel>> =
            (0..m).map(|j| AnswerModel::fit(&pairs(&train, j), &pairs(&val, j), cfg.seed)).collect();
        let base_rate: Vec<f64> = train.mean_scores();
        // Per prompt: attempts, the prompt-only predictions and the router's choice.
        let prepare = |ds: &Dataset| -> anyhow::Result<Vec<Case>> {
            let x = router.featurize_batch(&ds.texts(), embedder, cache)?;
            Ok((0..ds.rows.len())
                .map(|i| {
                    let row = &ds.rows[i];
                    let preds = router.predict(&x[i], row.prompt_tokens);
                    let p: Vec<f64> = preds.iter().map(|p| p.p_success).collect();
                    let d = decide(&preds, &Policy::CostTradeoff { lambda: DEFAULT_LAMBDA }, &Constraints::default());
                    let chosen = d.chosen.and_then(|c| catalog.index_of(&c).ok()).unwrap_or(largest);
                    let attempts = (0..m)
                        .map(|j| Attempt {
                            score: row.scores[j].unwrap_or(0.0),
                            cost: row.costs[j],
                            latency_ms: row.latencies_ms[j].unwrap_or(0.0),
                            confidence: models[j].as_ref().map_or(base_rate[j], |a| a.confidence(&answer(ds, i, j))),
                        })
                        .collect();
                    Case { attempts, prompt_p: p, chosen }
                })
                .collect())
        };
        let (val_cases, test_cases) = (prepare(&val)?, prepare(&data.subset(&s.test))?);
        let pos = |j: usize| ladder.iter().position(|&l| l == j).unwrap_or(m - 1);
        let verify_start = |c: &Case| pos(c.chosen);
        // Cascade: the cheapest model the prompt-only router finds adequate (p ≥ ½).
        let cascade_start = |c: &Case| ladder.iter().position(|&j| c.prompt_p[j] >= 0.5).unwrap_or(m - 1);
        // Whatever the prompt: the cheapest model whose answers can be checked (one never
        // right in training has no answer model and is skipped).
        let first_checked = ladder.iter().position(|&j| models[j].is_some()).unwrap_or(m - 1);
        let cheapest_start = |_: &Case| first_checked;
        // τ_accept: the highest threshold that keeps "reaches the largest" within β. A prompt
        // reaches it when every rung below the largest on its path is below τ.
        let accept_tau = |start: &dyn Fn(&Case) -> usize| {
            let best_below: Vec<f64> = val_cases
                .iter()
                .map(|c| (start(c)..m - 1).map(|p| c.attempts[ladder[p]].confidence).fold(f64::NEG_INFINITY, f64::max))
                .collect();
            risk::rate_threshold(&best_below, cfg.beta, cfg.delta).map(|t| t.tau)
        };
        let run = |cases: &[Case], start: &dyn Fn(&Case) -> usize, accept: f64, abstain: f64| -> Vec<LadderOutcome> {
            cases.iter().map(|c| run_ladder(&c.attempts, &ladder, start(c), accept, abstain)).collect()
        };
        let never = f64::NEG_INFINITY;
        let top = |_: &Case| m - 1;
        tallies[0].outcomes.extend(run(&test_cases, &top, never, never));
        // The router alone: its choice, never escalated.
        tallies[1].outcomes.extend(run(&test_cases, &verify_start, never, never));
        let promise_rate = format!("≤ {:.0}% reach the largest (δ = {})", 100.0 * cfg.beta, cfg.delta);
        // Set once per fold: verify's τ_accept serves the abstaining verify below too.
        let verify_tau = accept_tau(&verify_start);
        for (t, start, tau) in [
            (2usize, &verify_start as &dyn Fn(&_) -> usize, verify_tau),
            (3, &cascade_start, accept_tau(&cascade_start)),
            (6, &cheapest_start, accept_tau(&cheapest_start)),
        ] {
            // No promise possible: accept every first answer (nothing escalates).
            let out = run(&test_cases, start, tau.unwrap_or(never), never);
            let share = out.iter().filter(|o| o.model == largest).count() as f64 / out.len().max(1) as f64;
            tallies[t].promise = Some(promise_rate.clone());
            if tau.is_some() {
                tallies[t].held.push(share <= cfg.beta);
            }
            tallies[t].outcomes.extend(out);
        }
        // Abstention, with τ_abstain set on validation for selective error ≤ α.
        let promise_err = format!("selective error ≤ {:.0}% (δ = {})", 100.0 * cfg.alpha, cfg.delta);
        let verify_accept = verify_tau.unwrap_or(never);
        for (t, start, accept) in [(4usize, &top as &dyn Fn(&_) -> usize, never), (5, &verify_start, verify_accept)] {
            let val_out = run(&val_cases, start, accept, never);
            let conf: Vec<f64> = val_cases.iter().zip(&val_out).map(|(c, o)| c.attempts[o.model].confidence).collect();
            let right: Vec<bool> = val_out.iter().map(|o| o.score >= 0.5).collect();
            let tau = risk::selective_threshold(&conf, &right, cfg.alpha, cfg.delta).map(|t| t.tau);
            // No threshold keeps the promise: abstain on everything (the honest answer).
            let out = run(&test_cases, start, accept, tau.unwrap_or(f64::INFINITY));
            let answered = out.iter().filter(|o| !o.abstained).count();
            let errors = out.iter().filter(|o| o.error).count();
            tallies[t].promise = Some(promise_err.clone());
            tallies[t].held.push(errors as f64 <= cfg.alpha * answered as f64);
            tallies[t].outcomes.extend(out);
        }
        for c in &test_cases {
            for j in 0..m {
                prompt_p[j].push(c.prompt_p[j]);
                answer_p[j].push(c.attempts[j].confidence);
                truth[j].push(c.attempts[j].score);
            }
        }
    }
    let policies = names.iter().zip(&tallies).map(|(name, t)| t.row(name, largest)).collect();
    let auroc = (0..m)
        .filter(|&j| truth[j].iter().any(|y| *y >= 0.5) && truth[j].iter().any(|y| *y < 0.5))
        .map(|j| AurocRow {
            model: catalog.models[j].id.clone(),
            prompts: truth[j].len(),
            prompt_only: auroc(&prompt_p[j], &truth[j]),
            answer_level: auroc(&answer_p[j], &truth[j]),
            prompt_only_ece: ece(&prompt_p[j], &truth[j], ECE_BINS),
            answer_level_ece: ece(&answer_p[j], &truth[j], ECE_BINS),
            prompt_only_aurc: metrics::risk_coverage(&prompt_p[j], &truth[j]).1,
            answer_level_aurc: metrics::risk_coverage(&answer_p[j], &truth[j]).1,
        })
        .collect();
    let risk_coverage = (0..m)
        .filter(|&j| truth[j].iter().any(|y| *y >= 0.5))
        .map(|j| RiskCoverage {
            model: catalog.models[j].id.clone(),
            prompt_only: metrics::risk_coverage(&prompt_p[j], &truth[j]).0,
            answer_level: metrics::risk_coverage(&answer_p[j], &truth[j]).0,
        })
        .collect();
    let mut datasets: Vec<&str> = data.rows.iter().map(|r| r.dataset.as_str()).collect();
    datasets.sort_unstable();
    datasets.dedup();
    Ok(VerifyReport {
        dataset: datasets.join("+"),
        prompts: n,
        without_signals,
        protocol: format!(
            "{}-fold CV by prompt id (seed {}), {} on {} features for the prompt-only router, answers read by {}",
            cfg.folds,
            cfg.seed,
            cfg.predictor,
            cfg.features,
            cfg.signals.describe()
        ),
        ladder: ladder.iter().map(|&j| catalog.models[j].id.clone()).collect(),
        policies,
        auroc,
        risk_coverage,
    })
}

/// The report as Markdown tables.
pub fn markdown(r: &VerifyReport) -> String {
    let mut s = format!(
        "### {} — {} prompts ({} without signals left out), {}\n\nLadder (cheapest first): {}\n\n",
        r.dataset,
        r.prompts,
        r.without_signals,
        r.protocol,
        r.ladder.join(" → ")
    );
    s.push_str("| policy | quality | cost ($/req) | latency (ms) | reach largest | abstain | selective error | confident errors | promise | held in folds |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for p in &r.policies {
        let held = match p.promise_held {
            None => "–".to_string(),
            Some((_, 0)) => "no threshold could promise it on validation".to_string(),
            Some((h, n)) => format!("{h}/{n}"),
        };
        s.push_str(&format!(
            "| {} | {:.4} | {:.6} | {:.0} | {:.1}% | {:.1}% | {:.1}% | {:.1}% | {} | {} |\n",
            p.policy,
            p.quality,
            p.cost_usd,
            p.latency_ms,
            100.0 * p.share_largest,
            100.0 * p.abstention,
            100.0 * p.selective_error,
            100.0 * p.error_rate,
            p.promise.as_deref().unwrap_or("–"),
            held
        ));
    }
    s.push_str("\n| model | held-out prompts | AUROC prompt only | AUROC answer level | ECE prompt only | ECE answer level | AURC prompt only | AURC answer level |\n|---|---|---|---|---|---|---|---|\n");
    for a in &r.auroc {
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            a.model,
            a.prompts,
            a.prompt_only,
            a.answer_level,
            a.prompt_only_ece,
            a.answer_level_ece,
            a.prompt_only_aurc,
            a.answer_level_aurc
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use conductor_core::catalog::{ModelEntry, Tier};
    use conductor_core::signals::AnswerSignals;

    fn two_models() -> Catalog {
        let m = |id: &str, price: f64, tier: Tier| ModelEntry {
            id: id.into(),
            provider: "t".into(),
            input_usd_per_mtok: price,
            output_usd_per_mtok: price,
            context_length: 4096,
            tier,
        };
        Catalog { models: vec![m("weak", 0.5, Tier::Small), m("strong", 10.0, Tier::Large)] }
    }

    /// Synthetic records where the small model's hesitation (low mean log-probability)
    /// predicts its errors and the large model is always right: answer-level AUROC beats
    /// the prompt's, verification escalates the hesitant answers, and every attempt is paid.
    #[test]
    fn verification_reads_the_answer_and_pays_every_attempt() {
        let catalog = two_models();
        let (small, large) = (catalog.models[0].id.clone(), catalog.models[1].id.clone());
        let mut records = Vec::new();
        for i in 0..300 {
            let hesitant = (i * 37) % 10 < 4;
            let lp = if hesitant { -1.5 - (i % 7) as f64 / 10.0 } else { -0.1 - (i % 5) as f64 / 50.0 };
            for (model, score, lp) in [(&small, if hesitant { 0.0 } else { 1.0 }, lp), (&large, 1.0, -0.05)] {
                records.push(Record {
                    prompt_id: format!("p{i}"),
                    dataset: "toy".into(),
                    prompt: format!("question number {i} about topic {}", i % 13),
                    model: model.clone(),
                    score,
                    prompt_tokens: Some(20),
                    completion_tokens: Some(30),
                    signals: Some(AnswerSignals {
                        tokens: 30,
                        logprob_mean: lp,
                        logprob_min: 3.0 * lp,
                        tail_mass: -lp / 3.0,
                    }),
                    finish_reason: Some("stop".into()),
                    ..Default::default()
                });
            }
        }
        let cfg = VerifyConfig {
            predictor: PredictorKind::LogReg,
            features: FeatureKind::Ngram,
            folds: 5,
            seed: 1,
            val_frac: 0.25,
            alpha: 0.1,
            beta: 0.6,
            delta: 0.1,
            signals: SignalSet::default(),
        };
        let r = evaluate(&records, &catalog, &cfg, None, None).unwrap();
        assert_eq!(r.prompts, 300);
        let small_auroc = r.auroc.iter().find(|a| a.model == small).unwrap();
        assert!(small_auroc.answer_level > 0.95, "{small_auroc:?}");
        let row = |name: &str| r.policies.iter().find(|p| p.policy == name).unwrap().clone();
        let (largest, verify, cascade) = (row("largest alone"), row("verify"), row("cascade"));
        assert_eq!(largest.quality, 1.0);
        assert!(verify.quality > 0.95, "hesitant answers escalated: {verify:?}");
        assert!(cascade.share_largest < 0.6 && cascade.quality > 0.95, "{cascade:?}");
        // A cascade that escalates pays for both answers: dearer than the largest alone per
        // escalated request, cheaper overall.
        assert!(cascade.cost_usd < largest.cost_usd, "{cascade:?} vs {largest:?}");
        assert!(cascade.latency_ms >= 0.0);
        assert!(markdown(&r).contains("| verify |"));
        // Without signals the command says what is missing.
        let bare: Vec<Record> = records.iter().map(|r| Record { signals: None, ..r.clone() }).collect();
        let e = evaluate(&bare, &catalog, &cfg, None, None).unwrap_err().to_string();
        assert!(e.contains("answer signals") && e.contains("conductor collect"), "{e}");
    }
}
