//! `list_dir`: the entries of a directory in the run's workspace, sorted, directories
//! marked with a trailing `/` and files with their size.

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::workspace::{display, resolve};
use super::{blocking, parse_args, Tool, ToolContext, ToolError};

/// More entries than this are counted, not listed.
const MAX_ENTRIES: usize = 500;

/// The `list_dir` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListDir;

#[derive(serde::Deserialize)]
struct Args {
    #[serde(default)]
    path: Option<String>,
}

impl Tool for ListDir {
    fn name(&self) -> &str {
        "list_dir"
    }

    fn description(&self) -> &str {
        "List the files and directories in a directory of your workspace (the workspace itself if no path is given)."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"path": {"type": "string", "description": "Directory relative to the workspace; default `.`."}},
            "additionalProperties": false
        })
    }

    fn call(&self, args: Value, ctx: ToolContext) -> BoxFuture<'static, Result<String, ToolError>> {
        Box::pin(async move {
            let Args { path } = parse_args(args)?;
            blocking(move || list(&ctx, path.as_deref().unwrap_or("."))).await
        })
    }
}

fn list(ctx: &ToolContext, requested: &str) -> Result<String, ToolError> {
    let path = resolve(&ctx.workspace, requested)?;
    let shown = display(&ctx.workspace, &path);
    if path.is_file() {
        return Err(ToolError::BadArguments(format!("`{shown}` is a file; call read_file to read it")));
    }
    let entries = std::fs::read_dir(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ToolError::Failed(format!("there is no directory `{shown}`")),
        _ => ToolError::Failed(format!("cannot list `{shown}`: {e}")),
    })?;
    let mut lines: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            match entry.metadata() {
                Ok(m) if m.is_dir() => format!("{name}/"),
                Ok(m) => format!("{name}  ({} bytes)", m.len()),
                Err(_) => name,
            }
        })
        .collect();
    if lines.is_empty() {
        return Ok(format!("`{shown}` is empty"));
    }
    lines.sort();
    let total = lines.len();
    if total > MAX_ENTRIES {
        lines.truncate(MAX_ENTRIES);
        lines.push(format!("[{} more entries not shown]", total - MAX_ENTRIES));
    }
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::context;
    use super::super::ToolSet;

    #[tokio::test]
    async fn lists_the_workspace_and_refuses_outside() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir(ws.path().join("src")).unwrap();
        std::fs::write(ws.path().join("b.txt"), "abc").unwrap();
        let set = ToolSet::builtin(&["list_dir"]).unwrap();
        assert_eq!(set.run("list_dir", "{}", context(ws.path())).await.unwrap(), "b.txt  (3 bytes)\nsrc/");
        assert_eq!(set.run("list_dir", r#"{"path": "src"}"#, context(ws.path())).await.unwrap(), "`src` is empty");
        let err = set.run("list_dir", r#"{"path": ".."}"#, context(ws.path())).await.unwrap_err();
        assert_eq!(err.kind(), "refused");
        let err = set.run("list_dir", r#"{"path": "/"}"#, context(ws.path())).await.unwrap_err();
        assert_eq!(err.kind(), "refused");
    }
}
