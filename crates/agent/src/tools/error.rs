//! How a tool call fails. The `Display` text goes back to the model as the call's result,
//! so each message says what went wrong and what to do instead, in words a small model
//! can act on; [`ToolError::kind`] is the stable name for traces and metrics.

use std::time::Duration;

#[derive(Debug, thiserror::Error, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ToolError {
    #[error("unknown tool `{name}`; the tools are: {}", known.join(", "))]
    UnknownTool { name: String, known: Vec<String> },
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// The call was understood but is not allowed: a path outside the workspace, a host
    /// not on the allowlist.
    #[error("refused: {0}")]
    Refused(String),
    #[error("timed out after {:.1} s; do less in one call, or try another way", *.ms as f64 / 1000.0)]
    TimedOut { ms: u64 },
    #[error("cancelled")]
    Cancelled,
    #[error("failed: {0}")]
    Failed(String),
}

impl ToolError {
    pub fn timed_out(after: Duration) -> Self {
        Self::TimedOut { ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX) }
    }

    /// Stable machine-readable name of the variant.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownTool { .. } => "unknown_tool",
            Self::BadArguments(_) => "bad_arguments",
            Self::Refused(_) => "refused",
            Self::TimedOut { .. } => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Failed(_) => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_way_out() {
        let e = ToolError::UnknownTool { name: "foo".into(), known: vec!["python".into(), "calculator".into()] };
        assert_eq!(e.to_string(), "unknown tool `foo`; the tools are: python, calculator");
        assert_eq!(e.kind(), "unknown_tool");
        let e = ToolError::timed_out(Duration::from_millis(1500));
        assert!(e.to_string().starts_with("timed out after 1.5 s"), "{e}");
    }

    #[test]
    fn round_trips_through_json() {
        for e in [
            ToolError::Cancelled,
            ToolError::Refused("x".into()),
            ToolError::TimedOut { ms: 3 },
            ToolError::UnknownTool { name: "a".into(), known: vec![] },
        ] {
            let text = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<ToolError>(&text).unwrap(), e, "{text}");
        }
    }
}
