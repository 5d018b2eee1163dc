//! Disk cache of embeddings keyed by SHA-256 of (embedder id, text), so a second lab run
//! does not re-embed 14k prompts. One append-only binary file per embedder:
//! repeated `[32-byte key][u32 dim][dim × f32]` entries, little-endian.

use crate::embedder::TextEmbedder;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct EmbeddingCache {
    dir: PathBuf,
    /// Per embedder id: key → vector; loaded lazily from disk.
    loaded: Mutex<HashMap<String, HashMap<[u8; 32], Vec<f32>>>>,
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
        let safe: String = embedder_id.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
        self.dir.join(format!("{safe}.emb"))
    }

    /// Reads a cache file; a truncated tail (e.g. an interrupted write) is ignored.
    fn read_file(path: &Path) -> HashMap<[u8; 32], Vec<f32>> {
        let mut map = HashMap::new();
        let Ok(bytes) = std::fs::read(path) else { return map };
        let mut p = 0;
        while p + 36 <= bytes.len() {
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes[p..p + 32]);
            let dim = u32::from_le_bytes([bytes[p + 32], bytes[p + 33], bytes[p + 34], bytes[p + 35]]) as usize;
            let end = p + 36 + dim * 4;
            if end > bytes.len() {
                break;
            }
            let v = bytes[p + 36..end].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            map.insert(k, v);
            p = end;
        }
        map
    }

    /// Embeddings for `texts`, computing (and appending to disk) only the ones not cached.
    pub fn embed(&self, embedder: &dyn TextEmbedder, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let id = embedder.id().to_string();
        let mut loaded = self.loaded.lock().map_err(|_| anyhow::anyhow!("embedding cache lock poisoned"))?;
        let map = loaded.entry(id.clone()).or_insert_with(|| Self::read_file(&self.file(&id)));
        let keys: Vec<[u8; 32]> = texts.iter().map(|t| key(&id, t)).collect();
        let mut seen = std::collections::HashSet::new();
        let missing: Vec<usize> =
            (0..texts.len()).filter(|&i| !map.contains_key(&keys[i]) && seen.insert(keys[i])).collect();
        if !missing.is_empty() {
            std::fs::create_dir_all(&self.dir)?;
            let mut f = std::io::BufWriter::new(std::fs::OpenOptions::new().create(true).append(true).open(self.file(&id))?);
            for chunk in missing.chunks(64) {
                let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
                let vecs = embedder.embed_batch(&batch)?;
                anyhow::ensure!(vecs.len() == batch.len(), "embedder returned {} vectors for {} texts", vecs.len(), batch.len());
                for (&i, v) in chunk.iter().zip(vecs) {
                    f.write_all(&keys[i])?;
                    f.write_all(&(v.len() as u32).to_le_bytes())?;
                    for x in &v {
                        f.write_all(&x.to_le_bytes())?;
                    }
                    map.insert(keys[i], v);
                }
            }
            f.flush()?;
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
}
