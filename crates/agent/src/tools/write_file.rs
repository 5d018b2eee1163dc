//! `write_file`: create or replace a file in the run's workspace (parent directories
//! included), up to [`MAX_WRITE_BYTES`].

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::workspace::{display, resolve};
use super::{blocking, parse_args, Tool, ToolContext, ToolError};

pub const MAX_WRITE_BYTES: usize = 1 << 20;

/// The `write_file` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteFile;

#[derive(serde::Deserialize)]
struct Args {
    path: String,
    content: String,
}

impl Tool for WriteFile {
    fn name(&self) -> &str {
        "write_file"
    }

    fn description(&self) -> &str {
        "Write text to a file in your workspace, replacing it if it exists; missing directories are created."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "Path relative to the workspace, e.g. `src/main.py`."},
                "content": {"type": "string", "description": "The whole new content of the file."}
            },
            "required": ["path", "content"],
            "additionalProperties": false
        })
    }

    fn call(&self, args: Value, ctx: ToolContext) -> BoxFuture<'static, Result<String, ToolError>> {
        Box::pin(async move {
            let Args { path, content } = parse_args(args)?;
            blocking(move || write(&ctx, &path, &content)).await
        })
    }
}

fn write(ctx: &ToolContext, requested: &str, content: &str) -> Result<String, ToolError> {
    if content.len() > MAX_WRITE_BYTES {
        return Err(ToolError::Refused(format!(
            "the content is {} bytes, more than the {MAX_WRITE_BYTES}-byte write limit; write it in several files",
            content.len()
        )));
    }
    let path = resolve(&ctx.workspace, requested)?;
    let shown = display(&ctx.workspace, &path);
    if path.is_dir() {
        return Err(ToolError::BadArguments(format!("`{shown}` is a directory; give a file name inside it")));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| ToolError::Failed(format!("cannot create the directory for `{shown}`: {e}")))?;
    }
    std::fs::write(&path, content).map_err(|e| ToolError::Failed(format!("cannot write `{shown}`: {e}")))?;
    Ok(format!("wrote {} bytes to `{shown}`", content.len()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::context;
    use super::super::ToolSet;
    use super::*;

    #[tokio::test]
    async fn writes_inside_creating_directories() {
        let ws = tempfile::tempdir().unwrap();
        let set = ToolSet::builtin(&["write_file"]).unwrap();
        let out = set.run("write_file", r#"{"path": "a/b/c.txt", "content": "hi"}"#, context(ws.path())).await;
        assert_eq!(out.unwrap(), "wrote 2 bytes to `a/b/c.txt`");
        assert_eq!(std::fs::read_to_string(ws.path().join("a/b/c.txt")).unwrap(), "hi");
    }

    #[tokio::test]
    async fn escapes_and_oversized_content_are_refused() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.path().join("out")).unwrap();
        let set = ToolSet::builtin(&["write_file"]).unwrap();
        for bad in ["../escape.txt", "/tmp/escape.txt", "out/escape.txt", "out/new/escape.txt"] {
            let args = json!({"path": bad, "content": "x"}).to_string();
            let err = set.run("write_file", &args, context(ws.path())).await.unwrap_err();
            assert_eq!(err.kind(), "refused", "{bad}: {err}");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        let args = json!({"path": "big", "content": "x".repeat(MAX_WRITE_BYTES + 1)}).to_string();
        let err = set.run("write_file", &args, context(ws.path())).await.unwrap_err();
        assert!(err.to_string().contains("write limit"), "{err}");
    }
}
