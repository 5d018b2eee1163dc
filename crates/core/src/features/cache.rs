//! Disk cache of embeddings keyed by SHA-256 of (embedder id, text), so a second lab run
//! does not re-embed 14k prompts. One append-only binary file per embedder:
//! repeated `[32-byte key][u32 dim][dim × f32]` entries, little-endian.

use crate::embedder::TextEmbedder;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Text hash → embedding.
type Vectors = HashMap<[u8; 32], Vec<f32>>;

pub struct EmbeddingCache {
    dir: PathBuf,
    /// Per embedder id: key → vector; loaded lazily from disk.
    loaded: Mutex<HashMap<String, Vectors>>,
}

fn key(embedder_id: &str, text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(embedder_id.as_bytes());
    h.update([0u8]);
    h.update(text.as_bytes());
    h.finalize().into()
}

impl EmbeddingCache {
    pub fn new(dir: &Path) -> EmbeddingCache {
        EmbeddingCache { dir: dir.to_path_buf(), loaded: Mutex::new(HashMap::new()) }
    }

    fn file(&self, embedder_id: &str) -> PathBuf {
        let safe: String =
            embedder_id.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
        self.dir.join(format!("{safe}.emb"))
    }

    /// Reads a cache file and the length of its valid prefix: an interrupted write leaves
    /// a partial last entry, which is ignored (and cut off before the next append, so
    /// that later entries stay aligned).
    fn read_file(path: &Path) -> (Vectors, u64) {
        let mut map = HashMap::new();
        let Ok(bytes) = std::fs::read(path) else { return (map, 0) };
        let mut p = 0;
        let mut first_dim = None;
        while p + 36 <= bytes.len() {
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes[p..p + 32]);
            let dim = u32::from_le_bytes([bytes[p + 32], bytes[p + 33], bytes[p + 34], bytes[p + 35]]) as usize;
            let end = p + 36 + dim * 4;
            if end > bytes.len() || *first_dim.get_or_insert(dim) != dim {
                break;
            }
            let v = bytes[p + 36..end].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            map.insert(k, v);
            p = end;
        }
        (map, p as u64)
    }

    /// Embeddings for `texts`, computing (and appending to disk) only the ones not cached.
    pub fn embed(&self, embedder: &dyn TextEmbedder, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let id = embedder.id().to_string();
        let mut loaded = self.loaded.lock().map_err(|_| anyhow::anyhow!("embedding cache lock poisoned"))?;
        let file = self.file(&id);
        let map = match loaded.entry(id.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let (map, valid) = Self::read_file(&file);
                if std::fs::metadata(&file).is_ok_and(|m| m.len() > valid) {
                    std::fs::OpenOptions::new().write(true).open(&file)?.set_len(valid)?;
                }
                e.insert(map)
            }
        };
        let keys: Vec<[u8; 32]> = texts.iter().map(|t| key(&id, t)).collect();
        let mut seen = std::collections::HashSet::new();
        let mut missing: Vec<usize> =
            (0..texts.len()).filter(|&i| !map.contains_key(&keys[i]) && seen.insert(keys[i])).collect();
        // Embedders pad a batch to its longest text: batching texts of similar length
        // avoids computing on padding (several times faster on mixed-length prompts).
        missing.sort_by_key(|&i| texts[i].len());
        if !missing.is_empty() {
            std::fs::create_dir_all(&self.dir)?;
            // One write per entry on an O_APPEND file: concurrent runs sharing the cache
            // interleave whole entries, never parts of them.
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&file)?;
            for chunk in missing.chunks(64) {
                let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
                let vecs = embedder.embed_batch(&batch)?;
                anyhow::ensure!(
                    vecs.len() == batch.len(),
                    "embedder returned {} vectors for {} texts",
                    vecs.len(),
                    batch.len()
                );
                for (&i, v) in chunk.iter().zip(vecs) {
                    let mut entry = Vec::with_capacity(36 + 4 * v.len());
                    entry.extend_from_slice(&keys[i]);
                    entry.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    for x in &v {
                        entry.extend_from_slice(&x.to_le_bytes());
                    }
                    f.write_all(&entry)?;
                    map.insert(keys[i], v);
                }
            }
        }
        Ok(keys.iter().map(|k| map[k].clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::tests::LetterEmbedder;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);
    impl TextEmbedder for Counting {
        fn id(&self) -> &str {
            "letters"
        }
        fn dim(&self) -> usize {
            26
        }
        fn kind(&self) -> crate::embedder::EmbedderKind {
            crate::embedder::EmbedderKind::MiniLm
        }
        fn embed_batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
            self.0.fetch_add(texts.len(), Ordering::SeqCst);
            LetterEmbedder.embed_batch(texts)
        }
    }

    #[test]
    fn second_run_reads_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let e = Counting(AtomicUsize::new(0));
        let first = EmbeddingCache::new(dir.path()).embed(&e, &["abc", "xyz", "abc"]).unwrap();
        assert_eq!(e.0.load(Ordering::SeqCst), 2);
        let second = EmbeddingCache::new(dir.path()).embed(&e, &["xyz", "abc"]).unwrap();
        assert_eq!(e.0.load(Ordering::SeqCst), 2, "nothing re-embedded");
        assert_eq!(second[1], first[0]);
    }

    #[test]
    fn interrupted_write_is_cut_off_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let e = Counting(AtomicUsize::new(0));
        EmbeddingCache::new(dir.path()).embed(&e, &["abc"]).unwrap();
        let f = dir.path().join("letters.emb");
        let mut bytes = std::fs::read(&f).unwrap();
        bytes.extend_from_slice(&[7u8; 50]); // a partial entry
        std::fs::write(&f, &bytes).unwrap();
        EmbeddingCache::new(dir.path()).embed(&e, &["xyz"]).unwrap();
        let again = EmbeddingCache::new(dir.path()).embed(&e, &["abc", "xyz"]).unwrap();
        assert_eq!(e.0.load(Ordering::SeqCst), 2, "both entries readable after the repair");
        assert_eq!(again.len(), 2);
    }
}
