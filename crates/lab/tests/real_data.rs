//! Every predictor on real RouteLLM outcomes (a subset of MMLU subjects, for speed):
//! each must route clearly better than random and be calibrated on held-out prompts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

use conductor_core::catalog::Catalog;
use conductor_core::features::FeatureKind;
use conductor_core::predictors::PredictorKind;
use conductor_lab::convert::mmlu;
use conductor_lab::eval::{run_eval, EvalConfig};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Subjects where GPT-4 and Mixtral differ a lot and ones where they do not: a subset
/// with enough signal to learn in a test-sized run.
const SUBJECTS: [&str; 10] = [
    "abstract_algebra",
    "college_mathematics",
    "high_school_mathematics",
    "elementary_mathematics",
    "formal_logic",
    "marketing",
    "sociology",
    "high_school_government_and_politics",
    "us_foreign_policy",
    "management",
];

#[test]
fn every_predictor_beats_random_on_real_mmlu_subset() {
    let data = root().join("data/routellm/mmlu");
    let c = mmlu::convert_subjects(&data, |s| SUBJECTS.contains(&s)).unwrap();
    assert!(c.prompts > 1500, "{}", c.prompts);
    let catalog = Catalog::load(&root().join("catalog/routellm.toml")).unwrap();
    for predictor in [PredictorKind::Knn, PredictorKind::LogReg, PredictorKind::Mf] {
        let cfg = EvalConfig { predictor, features: FeatureKind::Ngram, ..EvalConfig::default() };
        let r = run_eval(&c.records, &catalog, &cfg, None, None).unwrap();
        let apgr = r.apgr.unwrap();
        eprintln!("{predictor}: APGR {apgr:.3} on {} test prompts", r.test_prompts);
        assert!(apgr > 0.55, "{predictor}: APGR {apgr:.3} is not clearly above random (0.5)");
        // On two models the data-chosen references are RouteLLM's strong and weak.
        assert_eq!((r.best_name(), r.cheapest_name()), ("gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"));
        assert!(r.oracle.quality >= r.singles[r.references.best].quality);
        for m in &r.calibration {
            // ~400 test prompts in 15 bins: sampling noise alone gives ECE of a few points.
            assert!(m.calibrated.ece < 0.1, "{predictor} {}: ECE {:.3}", m.model, m.calibrated.ece);
            assert!(m.calibrated.auroc > 0.6, "{predictor} {}: AUROC {:.3}", m.model, m.calibrated.auroc);
        }
        // The threshold policy's τ, calibrated on validation, lands near its target share.
        let t = r.thresholds.iter().find(|t| t.target_share == 0.3).unwrap();
        assert!((t.test.strong_share - 0.3).abs() < 0.12, "{predictor}: {:?}", t);
    }
}
