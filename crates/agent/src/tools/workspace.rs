//! Confinement of the file tools to a run's workspace. A path from the model is taken
//! relative to the workspace (or, if absolute, must lie inside it); `.` and `..` are
//! resolved by text, and a `..` that climbs above the workspace is refused. Symlinks are
//! then resolved on disk: the deepest part of the path that exists is canonicalised and
//! must still be inside the canonical workspace, so a link pointing outside is refused
//! whether it is the file itself or a directory on the way.
//!
//! The check and the later open are not atomic: a process that swaps a directory for a
//! symlink in between could escape. The workspace belongs to one run, whose only writers
//! are its own tools, so that race is not defended against here.

use std::path::{Component, Path, PathBuf};

use super::ToolError;

/// The path inside `workspace` that `requested` names, or `Refused` naming it.
pub fn resolve(workspace: &Path, requested: &str) -> Result<PathBuf, ToolError> {
    let root = workspace
        .canonicalize()
        .map_err(|e| ToolError::Failed(format!("the workspace {} is not usable: {e}", workspace.display())))?;
    let outside = || {
        ToolError::Refused(format!(
            "`{requested}` is outside the workspace; use a path relative to the workspace, like `notes.txt` or `src/main.py`"
        ))
    };
    let requested_path = Path::new(requested);
    // An absolute path is accepted only when it lies in the workspace, under either spelling.
    let relative = if requested_path.is_absolute() {
        requested_path.strip_prefix(&root).or_else(|_| requested_path.strip_prefix(workspace)).map_err(|_| outside())?
    } else {
        requested_path
    };
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop().ok_or_else(outside)?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    let path: PathBuf = parts.iter().fold(root.clone(), |p, part| p.join(part));
    // Symlinks: the deepest part of the path that exists (a dangling link counts: writing
    // through it would create its target) must resolve to somewhere inside.
    let mut existing = path.as_path();
    while existing.symlink_metadata().is_err() {
        existing = match existing.parent() {
            Some(parent) if existing != root => parent,
            _ => return Err(outside()),
        };
    }
    match existing.canonicalize() {
        Ok(real) if real.starts_with(&root) => Ok(path),
        _ => Err(outside()),
    }
}

/// `path` as the model should see it: relative to the workspace, `.` for the workspace itself.
pub fn display(workspace: &Path, path: &Path) -> String {
    let root = workspace.canonicalize().unwrap_or_else(|_| workspace.to_path_buf());
    match path.strip_prefix(&root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_resolve() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().canonicalize().unwrap();
        assert_eq!(resolve(ws.path(), "a/b.txt").unwrap(), root.join("a/b.txt"));
        assert_eq!(resolve(ws.path(), "./a/../c").unwrap(), root.join("c"));
        assert_eq!(resolve(ws.path(), ".").unwrap(), root);
        let absolute = root.join("x").display().to_string();
        assert_eq!(resolve(ws.path(), &absolute).unwrap(), root.join("x"));
    }

    #[test]
    fn escapes_are_refused_naming_the_path() {
        let ws = tempfile::tempdir().unwrap();
        for bad in ["../x", "a/../../x", "/etc/passwd", ".."] {
            let err = resolve(ws.path(), bad).unwrap_err();
            assert!(matches!(&err, ToolError::Refused(m) if m.contains(&format!("`{bad}`"))), "{bad}: {err:?}");
        }
    }

    #[test]
    fn symlinks_leading_outside_are_refused() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), ws.path().join("file-link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.path().join("dir-link")).unwrap();
        std::fs::write(ws.path().join("inside"), "i").unwrap();
        std::os::unix::fs::symlink(ws.path().join("inside"), ws.path().join("ok-link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("not-yet"), ws.path().join("dangling")).unwrap();
        for bad in ["file-link", "dir-link", "dir-link/secret", "dir-link/new/file", "dangling"] {
            assert!(matches!(resolve(ws.path(), bad), Err(ToolError::Refused(_))), "{bad}");
        }
        assert!(resolve(ws.path(), "ok-link").is_ok());
    }
}
