//! Long-term memory per agent: facts a run chose to remember, embedded with the gateway's
//! MiniLM model and kept in the run store; a later run of the same agent recalls the most
//! similar ones. Offered as two tools, `remember` and `recall`, when a run names its agent
//! (`RunSpec::memory`).

use crate::backend::Backend;
use crate::store::Store;
use crate::tools::{Tool, ToolContext, ToolError};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Value};
use std::sync::Arc;

/// Facts recalled when the model does not say how many.
const DEFAULT_K: usize = 3;

/// What both memory tools need: whose memory, where it lives, how to embed.
#[derive(Clone)]
pub struct Memory {
    pub agent: String,
    pub store: Arc<Store>,
    pub backend: Arc<dyn Backend>,
    pub authorization: Option<String>,
}

impl Memory {
    async fn embed(&self, text: &str) -> Result<Vec<f32>, ToolError> {
        let mut v = self
            .backend
            .embed(vec![text.to_string()], self.authorization.clone())
            .await
            .map_err(|e| ToolError::Failed(format!("embedding: {e}")))?;
        v.pop().ok_or_else(|| ToolError::Failed("embedding: no vector came back".into()))
    }

    /// The two tools over this memory.
    pub fn tools(&self) -> [Arc<dyn Tool>; 2] {
        [Arc::new(Remember(self.clone())), Arc::new(Recall(self.clone()))]
    }
}

struct Remember(Memory);
struct Recall(Memory);

impl Tool for Remember {
    fn name(&self) -> &str {
        "remember"
    }
    fn description(&self) -> &str {
        "Store a fact in your long-term memory, for later runs."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"fact": {"type": "string"}}, "required": ["fact"], "additionalProperties": false})
    }
    fn call(&self, args: Value, _ctx: ToolContext) -> BoxFuture<'static, Result<String, ToolError>> {
        let m = self.0.clone();
        async move {
            let fact = args["fact"].as_str().unwrap_or_default().trim().to_string();
            if fact.is_empty() {
                return Err(ToolError::BadArguments("`fact` must not be empty".into()));
            }
            let v = m.embed(&fact).await?;
            let total = m.store.remember(&m.agent, &fact, &v).map_err(|e| ToolError::Failed(format!("{e:#}")))?;
            Ok(format!("remembered ({total} facts in memory)"))
        }
        .boxed()
    }
}

impl Tool for Recall {
    fn name(&self) -> &str {
        "recall"
    }
    fn description(&self) -> &str {
        "Recall the facts in your long-term memory most related to a query."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
               "required": ["query"], "additionalProperties": false})
    }
    fn call(&self, args: Value, _ctx: ToolContext) -> BoxFuture<'static, Result<String, ToolError>> {
        let m = self.0.clone();
        async move {
            let query = args["query"].as_str().unwrap_or_default().to_string();
            let k = args["k"].as_u64().map_or(DEFAULT_K, |k| k.clamp(1, 20) as usize);
            let v = m.embed(&query).await?;
            let hits = m.store.recall(&m.agent, &v, k).map_err(|e| ToolError::Failed(format!("{e:#}")))?;
            if hits.is_empty() {
                return Ok("nothing in memory yet".into());
            }
            Ok(hits.iter().map(|(fact, sim)| format!("- {fact} (similarity {sim:.2})")).collect::<Vec<_>>().join("\n"))
        }
        .boxed()
    }
}

/// Cosine similarity (0 for a zero vector).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_ranks_by_similarity_within_one_agent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.sqlite")).unwrap();
        store.remember("ann", "the sky is blue", &[1.0, 0.0, 0.0]).unwrap();
        store.remember("ann", "grass is green", &[0.0, 1.0, 0.0]).unwrap();
        store.remember("bob", "bob's secret", &[1.0, 0.0, 0.0]).unwrap();
        let hits = store.recall("ann", &[0.9, 0.1, 0.0], 5).unwrap();
        assert_eq!(hits.len(), 2, "another agent's facts stay his");
        assert_eq!(hits[0].0, "the sky is blue");
        assert!(hits[0].1 > hits[1].1);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
