//! JSON Lines, read and written in one place: records, benchmark tasks, contamination lists
//! and exports all go through here, so every malformed line is reported the same way —
//! file, 1-based line number and what was wrong — and `.gz` files are read transparently.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Why a JSONL file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}:{line}: malformed line: {reason}")]
    Malformed { path: String, line: usize, reason: String },
}

impl JsonlError {
    /// An error about one line of `path`, for checks beyond JSON syntax (ranges, references).
    pub fn at(path: &Path, line: usize, reason: impl Into<String>) -> JsonlError {
        JsonlError::Malformed { path: path.display().to_string(), line, reason: reason.into() }
    }
}

fn open(path: &Path) -> Result<Box<dyn BufRead>, JsonlError> {
    let io = |source| JsonlError::Io { path: path.display().to_string(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::new(reader)))
}

/// Calls `f(line_number, value)` for every non-blank line of `path`, stopping at the first
/// error (a line that is not a `T`, or an error `f` returns).
pub fn for_each<T: DeserializeOwned>(
    path: &Path,
    mut f: impl FnMut(usize, T) -> Result<(), JsonlError>,
) -> Result<(), JsonlError> {
    for (i, line) in open(path)?.lines().enumerate() {
        let line = line.map_err(|source| JsonlError::Io { path: path.display().to_string(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(&line).map_err(|e| JsonlError::at(path, i + 1, e.to_string()))?;
        f(i + 1, value)?;
    }
    Ok(())
}

/// Every non-blank line of `path` as a `T`.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, JsonlError> {
    let mut out = Vec::new();
    for_each(path, |_, v| {
        out.push(v);
        Ok(())
    })?;
    Ok(out)
}

/// Like [`read`], but a missing file is an empty list (optional lists such as contamination).
pub fn read_optional<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, JsonlError> {
    if path.exists() {
        read(path)
    } else {
        Ok(Vec::new())
    }
}

/// Writes `items` to `path` (replacing it), one JSON object per line; creates parent folders.
pub fn write<T: Serialize>(path: &Path, items: impl IntoIterator<Item = T>) -> anyhow::Result<usize> {
    let mut w = Appender::create(path)?;
    let mut n = 0;
    for item in items {
        w.push(&item)?;
        n += 1;
    }
    w.finish()?;
    Ok(n)
}

/// Writes items one line at a time to a file or to stdout.
pub struct Appender {
    out: Box<dyn Write>,
    file: Option<std::fs::File>,
    path: Option<PathBuf>,
    /// Sync each line to disk (resumable collection: nothing written is lost on a crash).
    durable: bool,
}

impl Appender {
    /// A new (truncated) file.
    pub fn create(path: &Path) -> anyhow::Result<Appender> {
        Self::open(path, false, false)
    }

    /// Appends to `path` (created if missing); with `durable`, every line is synced to disk.
    pub fn append(path: &Path, durable: bool) -> anyhow::Result<Appender> {
        Self::open(path, true, durable)
    }

    /// Lines to standard output.
    pub fn stdout() -> Appender {
        Appender { out: Box::new(std::io::stdout()), file: None, path: None, durable: false }
    }

    fn open(path: &Path, append: bool, durable: bool) -> anyhow::Result<Appender> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot open {} for writing: {e}", path.display()))?;
        let out = Box::new(std::io::BufWriter::new(file.try_clone()?));
        Ok(Appender { out, file: Some(file), path: Some(path.to_path_buf()), durable })
    }

    /// Writes one item as one line.
    pub fn push<T: Serialize + ?Sized>(&mut self, item: &T) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, item)?;
        self.out.write_all(b"\n")?;
        if self.durable {
            self.out.flush()?;
            if let Some(f) = &self.file {
                f.sync_data()?;
            }
        }
        Ok(())
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.out.flush().map_err(|e| match &self.path {
            Some(p) => anyhow::anyhow!("writing {}: {e}", p.display()),
            None => anyhow::anyhow!("writing: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Row {
        a: u32,
    }

    #[test]
    fn round_trip_and_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl");
        assert_eq!(write(&p, [Row { a: 1 }, Row { a: 2 }]).unwrap(), 2);
        assert_eq!(read::<Row>(&p).unwrap(), vec![Row { a: 1 }, Row { a: 2 }]);
        std::fs::write(&p, "{\"a\":1}\n\n{\"a\":\"x\"}\n").unwrap();
        let e = read::<Row>(&p).unwrap_err().to_string();
        assert!(e.contains("x.jsonl:3:"), "{e}");
        assert!(read::<Row>(&dir.path().join("missing.jsonl")).unwrap_err().to_string().contains("cannot read"));
        assert!(read_optional::<Row>(&dir.path().join("missing.jsonl")).unwrap().is_empty());
    }

    #[test]
    fn reads_gzip_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("x.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(b"{\"a\":7}\n").unwrap();
        enc.finish().unwrap();
        assert_eq!(read::<Row>(&gz).unwrap(), vec![Row { a: 7 }]);

        let p = dir.path().join("sub/y.jsonl");
        let mut w = Appender::append(&p, true).unwrap();
        w.push(&Row { a: 1 }).unwrap();
        w.finish().unwrap();
        let mut w = Appender::append(&p, false).unwrap();
        w.push(&Row { a: 2 }).unwrap();
        w.finish().unwrap();
        assert_eq!(read::<Row>(&p).unwrap().len(), 2);
    }
}
