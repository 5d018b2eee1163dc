//! Where conductor's shipped files are: the model library, the router trained on our own
//! measurements and the local catalogue. They belong to the installation (the checkout
//! the binary was built in), not to whatever folder the user runs it from, so they are
//! found relative to the executable; `$CONDUCTOR_MODELS` (or `--models-dir`) and
//! `$CONDUCTOR_HOME` override.

use std::path::{Path, PathBuf};

/// Environment variable naming the models directory.
pub const MODELS_ENV: &str = "CONDUCTOR_MODELS";
/// Environment variable naming the installation root (the folder holding `catalog/`).
pub const HOME_ENV: &str = "CONDUCTOR_HOME";

/// A file every installation has, marking its root.
const MARKER: &str = "catalog/local.toml";

fn is_root(p: &Path) -> bool {
    p.join(MARKER).is_file()
}

/// The installation root: `$CONDUCTOR_HOME`, else the nearest folder above the running
/// executable that holds `catalog/local.toml` (a checkout's `target/release/conductor`
/// finds its checkout), else the current folder if it is one.
pub fn root() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os(HOME_ENV) {
        return Some(PathBuf::from(h));
    }
    let exe = std::env::current_exe().ok().and_then(|e| e.canonicalize().ok());
    if let Some(found) = exe.as_deref().and_then(|e| e.ancestors().skip(1).find(|a| is_root(a))) {
        return Some(found.to_path_buf());
    }
    std::env::current_dir().ok().filter(|d| is_root(d))
}

/// A shipped file (`routers/local.router`, `catalog/local.toml`) in the installation, or
/// relative to the current folder when there is no installation root.
pub fn shipped(rel: &str) -> PathBuf {
    match root() {
        Some(r) => r.join(rel),
        None => PathBuf::from(rel),
    }
}

/// The models directory: `$CONDUCTOR_MODELS`, else `<installation>/models`, else `./models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os(MODELS_ENV) {
        Some(d) => PathBuf::from(d),
        None => shipped("models"),
    }
}

/// Says where a models directory came from, for error messages.
pub fn models_dir_help(dir: &Path) -> String {
    let fetch = match root() {
        Some(r) => format!("run `bash scripts/setup.sh` in {}", r.display()),
        None => "run `bash scripts/setup.sh` in the conductor checkout".into(),
    };
    format!(
        "looked in {} (set with --models-dir or ${MODELS_ENV}; default: the installation's models/ folder); {fetch} to fetch the library, or point --models-dir at an existing copy",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_finds_its_checkout() {
        // Test binaries live under the checkout's target/ folder, like the real binary.
        let r = root().expect("an installation root above target/");
        assert!(r.join("catalog/local.toml").is_file());
        assert_eq!(shipped("routers/local.router"), r.join("routers/local.router"));
    }
}
