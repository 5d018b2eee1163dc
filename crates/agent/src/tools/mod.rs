//! What a model may call. A [`Tool`] names itself, describes itself and its arguments (a
//! JSON Schema, sent to the model as an OpenAI function), and runs one call. A [`ToolSet`]
//! is the ordered list a run offers; [`ToolSet::run`] is the one way a call happens: it
//! checks the arguments against the schema, then runs the tool under the context's timeout
//! and cancellation token and caps what comes back, so every tool gets those for free.

mod calculator;
mod error;
mod http_get;
mod list_dir;
mod python;
mod read_file;
mod schema;
mod workspace;
mod write_file;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use calculator::Calculator;
pub use error::ToolError;
pub use http_get::HttpGet;
pub use list_dir::ListDir;
pub use python::Python;
pub use read_file::ReadFile;
pub use write_file::WriteFile;

/// The most text one call hands back to the model; the rest is cut with a note saying so.
pub const MAX_OUTPUT_BYTES: usize = 8 << 10;
/// How long a tool gets to clean up (kill its process, say) once its call is cancelled or
/// timed out, before the caller stops waiting for it.
const SETTLE: Duration = Duration::from_millis(500);

/// What one call may touch and how long it may take.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The run's own directory (it exists); file tools cannot reach outside it.
    pub workspace: PathBuf,
    /// Host names `http_get` may fetch from, matched exactly; empty: none.
    pub http_allowlist: Vec<String>,
    pub timeout: Duration,
    /// Cancelled when the call should stop; [`ToolSet::run`] also cancels it at the timeout.
    pub cancel: CancellationToken,
}

pub trait Tool: Send + Sync {
    fn name(&self) -> &str;
    fn description(&self) -> &str;
    /// JSON Schema of the arguments object (OpenAI function `parameters`).
    fn parameters(&self) -> Value;
    /// Run one call with arguments already checked against [`Tool::parameters`]. A tool
    /// that starts work outside the future (a process, a thread) stops it when
    /// `ctx.cancel` fires.
    fn call(&self, args: Value, ctx: ToolContext) -> BoxFuture<'static, Result<String, ToolError>>;
}

impl std::fmt::Debug for dyn Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tool({})", self.name())
    }
}

/// The built-in tools, by name, in the order [`ToolSet::builtin`] lists them.
pub const BUILTIN: [&str; 6] = ["python", "calculator", "read_file", "write_file", "list_dir", "http_get"];

fn builtin(name: &str) -> Option<Arc<dyn Tool>> {
    Some(match name {
        "python" => Arc::new(Python::default()),
        "calculator" => Arc::new(Calculator),
        "read_file" => Arc::new(ReadFile),
        "write_file" => Arc::new(WriteFile),
        "list_dir" => Arc::new(ListDir),
        "http_get" => Arc::new(HttpGet),
        _ => return None,
    })
}

/// The tools a run offers, in the order they are offered.
#[derive(Clone, Default)]
pub struct ToolSet {
    tools: Vec<Arc<dyn Tool>>,
}

impl std::fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl ToolSet {
    /// The named built-in tools, or an error naming the unknown ones and the valid ones.
    pub fn builtin(names: &[&str]) -> Result<ToolSet, String> {
        let unknown: Vec<&str> = names.iter().copied().filter(|n| builtin(n).is_none()).collect();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown built-in tool{} {}; the built-in tools are: {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                BUILTIN.join(", ")
            ));
        }
        let mut set = ToolSet::default();
        for tool in names.iter().filter_map(|n| builtin(n)) {
            set.add(tool);
        }
        Ok(set)
    }

    /// Add `tool` at the end, or in place of the tool of the same name.
    pub fn add(&mut self, tool: Arc<dyn Tool>) {
        match self.tools.iter_mut().find(|t| t.name() == tool.name()) {
            Some(slot) => *slot = tool,
            None => self.tools.push(tool),
        }
    }

    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.name() == name).cloned()
    }

    /// The tools as OpenAI's `tools` request field lists them.
    pub fn specs(&self) -> Vec<Value> {
        self.tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name(), "description": t.description(), "parameters": t.parameters()
                }})
            })
            .collect()
    }

    /// The tool called `name` and its arguments parsed from `arguments_json` and checked
    /// against its schema.
    pub fn prepare(&self, name: &str, arguments_json: &str) -> Result<(Arc<dyn Tool>, Value), ToolError> {
        let tool = self.get(name).ok_or_else(|| ToolError::UnknownTool {
            name: name.to_string(),
            known: self.names().into_iter().map(String::from).collect(),
        })?;
        let args = schema::check(&tool.parameters(), arguments_json).map_err(ToolError::BadArguments)?;
        Ok((tool, args))
    }

    /// Check and run one call: [`ToolError::TimedOut`] after `ctx.timeout`,
    /// [`ToolError::Cancelled`] when `ctx.cancel` fires, output capped at [`MAX_OUTPUT_BYTES`].
    pub async fn run(&self, name: &str, arguments_json: &str, ctx: ToolContext) -> Result<String, ToolError> {
        let (tool, args) = self.prepare(name, arguments_json)?;
        let timeout = ctx.timeout;
        let caller = ctx.cancel.clone();
        // The tool sees a child token, so a timeout stops it the same way a cancel does.
        let stop = caller.child_token();
        let mut call = tool.call(args, ToolContext { cancel: stop.clone(), ..ctx });
        let raced = tokio::time::timeout(timeout, async {
            tokio::select! {
                biased;
                _ = caller.cancelled() => None,
                result = &mut call => Some(result),
            }
        })
        .await;
        let result = match raced {
            Ok(Some(finished)) => finished,
            unfinished => {
                stop.cancel();
                // Give the tool its moment to kill what it started; a tool that ignores its
                // token is dropped after that.
                let _ = tokio::time::timeout(SETTLE, call).await;
                match unfinished {
                    Err(_) => Err(ToolError::timed_out(timeout)),
                    _ => Err(ToolError::Cancelled),
                }
            }
        };
        tracing::debug!(tool = name, outcome = result.as_ref().err().map_or("ok", ToolError::kind), "tool call");
        result.map(|text| truncate(text, MAX_OUTPUT_BYTES))
    }
}

/// `text` cut to at most `max` bytes (on a character boundary) with a note saying so.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("\n[output truncated: showing the first {end} of {total} bytes]"));
    text
}

/// A tool's arguments as its own type; the schema check has run, so an error here is a
/// finer point (a value out of range) and goes back to the model as bad arguments.
fn parse_args<T: DeserializeOwned>(args: Value) -> Result<T, ToolError> {
    serde_json::from_value(args).map_err(|e| ToolError::BadArguments(e.to_string()))
}

/// Run blocking work (file system, a child process) off the async reactor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ToolError::Failed(format!("the tool crashed: {e}")))?
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn context(workspace: &std::path::Path) -> ToolContext {
        ToolContext {
            workspace: workspace.to_path_buf(),
            http_allowlist: vec![],
            timeout: Duration::from_secs(10),
            cancel: CancellationToken::new(),
        }
    }

    /// A tool that never finishes and never looks at its token.
    struct Hang;
    impl Tool for Hang {
        fn name(&self) -> &str {
            "hang"
        }
        fn description(&self) -> &str {
            "waits forever"
        }
        fn parameters(&self) -> Value {
            json!({"type": "object", "properties": {}, "additionalProperties": false})
        }
        fn call(&self, _: Value, _: ToolContext) -> BoxFuture<'static, Result<String, ToolError>> {
            Box::pin(futures::future::pending())
        }
    }

    /// A tool that echoes its text `times` times.
    struct Echo;
    impl Tool for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn description(&self) -> &str {
            "repeats text"
        }
        fn parameters(&self) -> Value {
            json!({"type": "object", "properties": {"text": {"type": "string"}, "times": {"type": "integer"}},
                   "required": ["text", "times"], "additionalProperties": false})
        }
        fn call(&self, args: Value, _: ToolContext) -> BoxFuture<'static, Result<String, ToolError>> {
            Box::pin(async move {
                let text = args["text"].as_str().unwrap_or_default();
                Ok(text.repeat(args["times"].as_u64().unwrap_or(0) as usize))
            })
        }
    }

    #[test]
    fn builtin_names_the_unknown_and_the_valid() {
        let set = ToolSet::builtin(&["python", "calculator"]).unwrap();
        assert_eq!(set.names(), ["python", "calculator"]);
        let err = ToolSet::builtin(&["python", "shell", "web"]).unwrap_err();
        assert_eq!(
            err,
            "unknown built-in tools `shell`, `web`; the built-in tools are: \
             python, calculator, read_file, write_file, list_dir, http_get"
        );
        assert_eq!(ToolSet::builtin(&BUILTIN).unwrap().names(), BUILTIN);
    }

    #[test]
    fn specs_are_openai_functions() {
        let set = ToolSet::builtin(&["calculator"]).unwrap();
        let specs = set.specs();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0]["type"], "function");
        assert_eq!(specs[0]["function"]["name"], "calculator");
        assert_eq!(specs[0]["function"]["parameters"]["required"], json!(["expression"]));
        assert!(specs[0]["function"]["description"].as_str().unwrap().len() > 10);
    }

    #[test]
    fn add_replaces_a_tool_of_the_same_name() {
        let mut set = ToolSet::builtin(&["python", "calculator"]).unwrap();
        set.add(Arc::new(Echo));
        set.add(Arc::new(Calculator));
        assert_eq!(set.names(), ["python", "calculator", "echo"]);
    }

    #[test]
    fn prepare_rejects_unknown_tools_and_mismatched_arguments() {
        let set = ToolSet::builtin(&["python", "calculator"]).unwrap();
        let err = set.prepare("foo", "{}").unwrap_err();
        assert_eq!(err.to_string(), "unknown tool `foo`; the tools are: python, calculator");
        let err = set.prepare("calculator", r#"{"expr": "1+1"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad arguments: missing required argument `expression` (the arguments are: expression)"
        );
        let err = set.prepare("calculator", r#"{"expression": 2}"#).unwrap_err();
        assert_eq!(err.to_string(), "bad arguments: argument `expression` must be string, not number");
        let err = set.prepare("python", "print(1)").unwrap_err();
        assert_eq!(err.kind(), "bad_arguments");
        let (tool, args) = set.prepare("calculator", r#"{"expression": "1+1"}"#).unwrap();
        assert_eq!((tool.name(), args), ("calculator", json!({"expression": "1+1"})));
    }

    #[tokio::test]
    async fn output_is_capped_with_a_note() {
        let mut set = ToolSet::default();
        set.add(Arc::new(Echo));
        let ws = tempfile::tempdir().unwrap();
        let out = set.run("echo", r#"{"text": "é", "times": 10000}"#, context(ws.path())).await.unwrap();
        assert!(out.ends_with("[output truncated: showing the first 8192 of 20000 bytes]"), "{}", &out[8000..]);
        let out = set.run("echo", r#"{"text": "ab", "times": 2}"#, context(ws.path())).await.unwrap();
        assert_eq!(out, "abab");
    }

    #[tokio::test]
    async fn a_tool_that_ignores_its_token_still_times_out_and_cancels() {
        let mut set = ToolSet::default();
        set.add(Arc::new(Hang));
        let ws = tempfile::tempdir().unwrap();
        let ctx = ToolContext { timeout: Duration::from_millis(100), ..context(ws.path()) };
        assert_eq!(set.run("hang", "{}", ctx).await, Err(ToolError::TimedOut { ms: 100 }));
        let ctx = context(ws.path());
        let cancel = ctx.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        });
        assert_eq!(set.run("hang", "{}", ctx).await, Err(ToolError::Cancelled));
    }
}
