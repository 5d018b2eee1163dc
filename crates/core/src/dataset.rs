//! Records grouped into a prompt × model score matrix: the shape every predictor and
//! metric works on. Building it is where bad data is caught (unknown models, empty data,
//! a single model — with one model there is nothing to route).

use crate::catalog::{Catalog, CatalogError};
use crate::records::Record;
use crate::tokens::{estimate_tokens, DEFAULT_COMPLETION_TOKENS};
use std::collections::HashMap;

/// One prompt with its outcome (if observed) and cost for every model.
#[derive(Debug, Clone)]
pub struct PromptRow {
    pub prompt_id: String,
    pub dataset: String,
    pub text: String,
    pub prompt_tokens: usize,
    /// Score per model (catalogue order); `None` where no record exists.
    pub scores: Vec<Option<f64>>,
    /// Cost in USD per model: the record's own cost, else catalogue price × tokens.
    pub costs: Vec<f64>,
    /// Completion tokens per model (measured, else [`DEFAULT_COMPLETION_TOKENS`]).
    pub completion_tokens: Vec<usize>,
    /// Measured wall-clock latency per model, where the record has one.
    pub latencies_ms: Vec<Option<f64>>,
}

/// Why records cannot be used for routing.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("the dataset is empty: no records to learn from or evaluate on")]
    Empty,
    #[error("the dataset has a single model (`{0}`): routing needs at least two models to choose between")]
    SingleModel(String),
    #[error("record for prompt `{prompt_id}` names model `{model}`, which is not in the catalogue (known: {known})")]
    UnknownModel { prompt_id: String, model: String, known: String },
}

/// Prompts × models, with the catalogue restricted to the models that occur.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub catalog: Catalog,
    pub rows: Vec<PromptRow>,
}

impl Dataset {
    /// Groups records by `prompt_id` (first-seen order). Models keep catalogue order.
    pub fn from_records(records: &[Record], catalog: &Catalog) -> Result<Dataset, DatasetError> {
        if records.is_empty() {
            return Err(DatasetError::Empty);
        }
        for r in records {
            if let Err(CatalogError::UnknownModel(m)) = catalog.index_of(&r.model) {
                let known = catalog.models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ");
                return Err(DatasetError::UnknownModel { prompt_id: r.prompt_id.clone(), model: m, known });
            }
        }
        let present: Vec<String> =
            catalog.models.iter().filter(|m| records.iter().any(|r| r.model == m.id)).map(|m| m.id.clone()).collect();
        if present.len() < 2 {
            return Err(DatasetError::SingleModel(present.into_iter().next().unwrap_or_default()));
        }
        let catalog = catalog.restricted_to(&present);
        let col: HashMap<&str, usize> = present.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
        let n = present.len();
        let mut rows: Vec<PromptRow> = Vec::new();
        let mut row_of: HashMap<&str, usize> = HashMap::new();
        for r in records {
            let i = *row_of.entry(r.prompt_id.as_str()).or_insert_with(|| {
                let prompt_tokens = r.prompt_tokens.unwrap_or_else(|| estimate_tokens(&r.prompt));
                let costs =
                    catalog.models.iter().map(|m| m.cost_usd(prompt_tokens, DEFAULT_COMPLETION_TOKENS)).collect();
                rows.push(PromptRow {
                    prompt_id: r.prompt_id.clone(),
                    dataset: r.dataset.clone(),
                    text: r.prompt.clone(),
                    prompt_tokens,
                    scores: vec![None; n],
                    costs,
                    completion_tokens: vec![DEFAULT_COMPLETION_TOKENS; n],
                    latencies_ms: vec![None; n],
                });
                rows.len() - 1
            });
            let j = col[r.model.as_str()];
            let row = &mut rows[i];
            row.scores[j] = Some(r.score);
            row.latencies_ms[j] = r.latency_ms;
            let m = &catalog.models[j];
            let ct = r.completion_tokens.unwrap_or(DEFAULT_COMPLETION_TOKENS);
            row.completion_tokens[j] = ct;
            row.costs[j] = r.cost_usd.unwrap_or_else(|| m.cost_usd(r.prompt_tokens.unwrap_or(row.prompt_tokens), ct));
        }
        Ok(Dataset { catalog, rows })
    }

    pub fn n_models(&self) -> usize {
        self.catalog.models.len()
    }

    /// Only the prompts with an outcome for every model (what evaluations compare on).
    pub fn complete(&self) -> Dataset {
        let idx: Vec<usize> =
            (0..self.rows.len()).filter(|&i| self.rows[i].scores.iter().all(Option::is_some)).collect();
        self.subset(&idx)
    }

    /// A dataset with only the given rows (by index), same catalogue.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        Dataset { catalog: self.catalog.clone(), rows: idx.iter().map(|&i| self.rows[i].clone()).collect() }
    }

    /// Mean completion length of each model (what serving assumes when estimating cost).
    pub fn mean_completion_tokens(&self) -> Vec<f64> {
        (0..self.n_models())
            .map(|j| {
                self.rows.iter().map(|r| r.completion_tokens[j] as f64).sum::<f64>() / self.rows.len().max(1) as f64
            })
            .collect()
    }

    /// Score targets in the shape predictors take.
    pub fn targets(&self) -> Vec<Vec<Option<f64>>> {
        self.rows.iter().map(|r| r.scores.clone()).collect()
    }

    /// Scores with missing entries as 0 (for evaluation sets, which keep complete rows only).
    pub fn targets_complete(&self) -> Vec<Vec<f64>> {
        self.rows.iter().map(|r| r.scores.iter().map(|s| s.unwrap_or(0.0)).collect()).collect()
    }

    /// Realised cost per prompt and model (USD).
    pub fn costs(&self) -> Vec<Vec<f64>> {
        self.rows.iter().map(|r| r.costs.clone()).collect()
    }

    /// Measured latencies, prompts × models (`None` where a record has none).
    pub fn latencies(&self) -> Vec<Vec<Option<f64>>> {
        self.rows.iter().map(|r| r.latencies_ms.clone()).collect()
    }

    pub fn texts(&self) -> Vec<&str> {
        self.rows.iter().map(|r| r.text.as_str()).collect()
    }

    /// Mean observed score of each model (missing entries skipped; 0 if none observed).
    pub fn mean_scores(&self) -> Vec<f64> {
        (0..self.n_models())
            .map(|j| {
                let v: Vec<f64> = self.rows.iter().filter_map(|r| r.scores[j]).collect();
                if v.is_empty() {
                    0.0
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                }
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::tests::two_models;

    pub fn rec(id: &str, model: &str, score: f64) -> Record {
        Record {
            prompt_id: id.into(),
            dataset: "t".into(),
            prompt: format!("prompt text {id}"),
            model: model.into(),
            score,
            prompt_tokens: Some(100),
            completion_tokens: Some(10),
            ..Default::default()
        }
    }

    #[test]
    fn groups_by_prompt_and_prices_from_catalogue() {
        let rs = vec![rec("a", "strong", 1.0), rec("a", "weak", 0.0), rec("b", "weak", 1.0)];
        let d = Dataset::from_records(&rs, &two_models()).unwrap();
        assert_eq!(d.rows.len(), 2);
        assert_eq!(d.rows[0].scores, vec![Some(0.0), Some(1.0)]);
        assert_eq!(d.rows[1].scores, vec![Some(1.0), None]);
        assert!((d.rows[0].costs[1] - (100.0 * 10.0 + 10.0 * 30.0) / 1e6).abs() < 1e-12);
        assert_eq!(d.mean_scores(), vec![0.5, 1.0]);
    }

    #[test]
    fn refuses_bad_inputs() {
        let c = two_models();
        assert!(matches!(Dataset::from_records(&[], &c), Err(DatasetError::Empty)));
        let e = Dataset::from_records(&[rec("a", "weak", 1.0)], &c).unwrap_err();
        assert!(e.to_string().contains("single model"), "{e}");
        let e = Dataset::from_records(&[rec("a", "gpt-9", 1.0)], &c).unwrap_err();
        assert!(e.to_string().contains("`gpt-9`") && e.to_string().contains("not in the catalogue"), "{e}");
    }
}
