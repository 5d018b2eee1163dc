//! The model catalogue: which models exist, what they cost and how big they are.
//!
//! Stored as TOML (`[[models]]` tables) so that prices can be read and reviewed by people;
//! the order of models in the file is the order of columns in every score matrix.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// A model's size class: the prior for cold start and the "largest model" share. One
/// vocabulary everywhere (catalogues, the gateway config, the library manifest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Small,
    #[default]
    Medium,
    Large,
}

impl Tier {
    pub const NAMES: &'static str = "small, medium, large";

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Small => "small",
            Tier::Medium => "medium",
            Tier::Large => "large",
        }
    }

    /// Small 0, medium 1, large 2.
    pub fn rank(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Tier, String> {
        match s {
            "small" => Ok(Tier::Small),
            "medium" => Ok(Tier::Medium),
            "large" => Ok(Tier::Large),
            other => Err(format!("unknown tier `{other}` (expected one of: {})", Tier::NAMES)),
        }
    }
}

/// One model the router may choose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    pub provider: String,
    /// US dollars per million prompt tokens.
    pub input_usd_per_mtok: f64,
    /// US dollars per million completion tokens.
    pub output_usd_per_mtok: f64,
    pub context_length: usize,
    pub tier: Tier,
}

impl ModelEntry {
    /// Cost of one call in US dollars.
    pub fn cost_usd(&self, prompt_tokens: usize, completion_tokens: usize) -> f64 {
        (prompt_tokens as f64 * self.input_usd_per_mtok + completion_tokens as f64 * self.output_usd_per_mtok) / 1e6
    }

    /// Rank of the tier (small 0, medium 1, large 2).
    pub fn tier_rank(&self) -> u8 {
        self.tier.rank()
    }
}

/// Errors a caller may want to tell apart (a missing model is a data error, not I/O).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalogue {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("catalogue {path} is not valid TOML: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("catalogue {path} is invalid: {reason}")]
    Invalid { path: String, reason: String },
    #[error("model `{0}` is not in the catalogue")]
    UnknownModel(String),
}

/// The list of models, in a stable order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Catalog {
    pub models: Vec<ModelEntry>,
}

impl Catalog {
    /// Reads and validates a TOML catalogue.
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io { path: p.clone(), source })?;
        let cat: Catalog = toml::from_str(&text).map_err(|source| CatalogError::Parse { path: p.clone(), source })?;
        cat.validate().map_err(|reason| CatalogError::Invalid { path: p, reason })?;
        Ok(cat)
    }

    /// Writes the catalogue as TOML.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, toml::to_string_pretty(self)?)?;
        Ok(())
    }

    /// Checks ids are unique and non-empty and prices are finite and non-negative.
    pub fn validate(&self) -> Result<(), String> {
        if self.models.is_empty() {
            return Err("no models".into());
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.models {
            if m.id.is_empty() {
                return Err("a model has an empty id".into());
            }
            if !seen.insert(m.id.as_str()) {
                return Err(format!("model `{}` is listed twice", m.id));
            }
            for (what, v) in [("input", m.input_usd_per_mtok), ("output", m.output_usd_per_mtok)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!("model `{}` has an invalid {what} price {v}", m.id));
                }
            }
        }
        Ok(())
    }

    /// Position of a model in the catalogue.
    pub fn index_of(&self, id: &str) -> Result<usize, CatalogError> {
        self.models.iter().position(|m| m.id == id).ok_or_else(|| CatalogError::UnknownModel(id.to_string()))
    }

    /// The model entry with this id.
    pub fn get(&self, id: &str) -> Result<&ModelEntry, CatalogError> {
        self.index_of(id).map(|i| &self.models[i])
    }

    /// A sub-catalogue with only these models, in catalogue order.
    pub fn restricted_to(&self, ids: &[String]) -> Catalog {
        Catalog { models: self.models.iter().filter(|m| ids.contains(&m.id)).cloned().collect() }
    }

    /// Index of the "largest" model: highest tier, then highest output price. The share of
    /// calls sent to it is the headline cost number.
    pub fn largest(&self) -> usize {
        self.argmax_by(|m| (m.tier_rank() as f64, m.output_usd_per_mtok + m.input_usd_per_mtok))
    }

    /// Index of the cheapest model (by input + output price, tier breaks ties).
    pub fn cheapest(&self) -> usize {
        self.argmax_by(|m| (-(m.output_usd_per_mtok + m.input_usd_per_mtok), -(m.tier_rank() as f64)))
    }

    fn argmax_by(&self, key: impl Fn(&ModelEntry) -> (f64, f64)) -> usize {
        let mut best = 0;
        for (i, m) in self.models.iter().enumerate() {
            if key(m).partial_cmp(&key(&self.models[best])) == Some(std::cmp::Ordering::Greater) {
                best = i;
            }
        }
        best
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn two_models() -> Catalog {
        let m = |id: &str, i, o, tier: Tier| ModelEntry {
            id: id.into(),
            provider: "test".into(),
            input_usd_per_mtok: i,
            output_usd_per_mtok: o,
            context_length: 8192,
            tier,
        };
        Catalog { models: vec![m("weak", 0.6, 0.6, Tier::Small), m("strong", 10.0, 30.0, Tier::Large)] }
    }

    #[test]
    fn toml_round_trip_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let c = two_models();
        c.save(&p).unwrap();
        let back = Catalog::load(&p).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.largest(), 1);
        assert_eq!(back.cheapest(), 0);
        assert!(matches!(back.index_of("nope"), Err(CatalogError::UnknownModel(_))));
        assert!((c.models[1].cost_usd(1000, 100) - 0.013).abs() < 1e-12);
    }

    #[test]
    fn unknown_tier_is_refused_with_the_accepted_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[[models]]\nid='a'\nprovider='x'\ninput_usd_per_mtok=1\noutput_usd_per_mtok=1\ncontext_length=8\ntier='huge'\n").unwrap();
        let e = Catalog::load(&p).unwrap_err().to_string();
        assert!(e.contains("huge") && e.contains("small") && e.contains("large"), "{e}");
    }

    #[test]
    fn duplicate_ids_rejected() {
        let mut c = two_models();
        c.models[1].id = "weak".into();
        assert!(c.validate().unwrap_err().contains("twice"));
    }
}
