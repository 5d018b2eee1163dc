//! `read_file`: a text file from the run's workspace, up to [`MAX_READ_BYTES`].

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::workspace::{display, resolve};
use super::{blocking, parse_args, Tool, ToolContext, ToolError};

/// Larger files are refused rather than read in part: a silent prefix reads as the whole.
pub const MAX_READ_BYTES: u64 = 1 << 20;

/// The `read_file` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadFile;

#[derive(serde::Deserialize)]
struct Args {
    path: String,
}

impl Tool for ReadFile {
    fn name(&self) -> &str {
        "read_file"
    }

    fn description(&self) -> &str {
        "Read a text file from your workspace and return its content."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"path": {"type": "string", "description": "Path relative to the workspace, e.g. `notes.txt`."}},
            "required": ["path"],
            "additionalProperties": false
        })
    }

    fn call(&self, args: Value, ctx: ToolContext) -> BoxFuture<'static, Result<String, ToolError>> {
        Box::pin(async move {
            let Args { path } = parse_args(args)?;
            blocking(move || read(&ctx, &path)).await
        })
    }
}

fn read(ctx: &ToolContext, requested: &str) -> Result<String, ToolError> {
    let path = resolve(&ctx.workspace, requested)?;
    let shown = display(&ctx.workspace, &path);
    let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            ToolError::Failed(format!("there is no file `{shown}`; call list_dir to see what there is"))
        }
        _ => ToolError::Failed(format!("cannot read `{shown}`: {e}")),
    })?;
    if meta.is_dir() {
        return Err(ToolError::BadArguments(format!("`{shown}` is a directory; call list_dir to see inside it")));
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(ToolError::Refused(format!(
            "`{shown}` is {} bytes, more than the {MAX_READ_BYTES}-byte read limit; read it with python in parts",
            meta.len()
        )));
    }
    let bytes = std::fs::read(&path).map_err(|e| ToolError::Failed(format!("cannot read `{shown}`: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::super::tests::context;
    use super::super::ToolSet;
    use super::*;

    #[tokio::test]
    async fn reads_inside_and_refuses_outside() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir(ws.path().join("d")).unwrap();
        std::fs::write(ws.path().join("d/a.txt"), "hello").unwrap();
        let set = ToolSet::builtin(&["read_file"]).unwrap();
        let run = |path: &str| {
            let (set, args, ctx) = (set.clone(), json!({ "path": path }).to_string(), context(ws.path()));
            async move { set.run("read_file", &args, ctx).await }
        };
        assert_eq!(run("d/a.txt").await.unwrap(), "hello");
        assert_eq!(run("d/../d/./a.txt").await.unwrap(), "hello");
        for bad in ["../x", "/etc/passwd"] {
            let err = run(bad).await.unwrap_err();
            assert_eq!(err.kind(), "refused", "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), ws.path().join("link")).unwrap();
        assert_eq!(run("link").await.unwrap_err().kind(), "refused");
        assert!(run("missing.txt").await.unwrap_err().to_string().contains("list_dir"));
        assert_eq!(run("d").await.unwrap_err().kind(), "bad_arguments");
    }

    #[tokio::test]
    async fn large_files_are_refused() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("big"), vec![b'x'; MAX_READ_BYTES as usize + 1]).unwrap();
        let set = ToolSet::builtin(&["read_file"]).unwrap();
        let err = set.run("read_file", r#"{"path": "big"}"#, context(ws.path())).await.unwrap_err();
        assert!(matches!(&err, ToolError::Refused(m) if m.contains("read limit")), "{err:?}");
    }
}
