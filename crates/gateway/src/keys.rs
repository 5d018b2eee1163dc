//! API keys. Keys are held only as SHA-256 hashes: the clear-text key from the config
//! (or its environment variable) is hashed at load and dropped, and the books record
//! the key's *id*, never the key.

use crate::config::KeyConfig;
use crate::error::ApiError;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// One configured key, as the request pipeline sees it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: String,
    /// None: every model.
    pub allowed_models: Option<HashSet<String>>,
}

impl KeyInfo {
    pub fn may_use(&self, model: &str) -> bool {
        self.allowed_models.as_ref().is_none_or(|s| s.contains(model))
    }
}

/// Key id used in the books when the server runs without keys (open access).
pub const ANONYMOUS: &str = "anonymous";

pub struct KeyStore {
    by_hash: HashMap<String, KeyInfo>,
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl KeyStore {
    pub fn from_config(keys: &[KeyConfig]) -> KeyStore {
        let mut by_hash = HashMap::new();
        for k in keys {
            let hash = if let Some(clear) = &k.key {
                sha256_hex(clear)
            } else if let Some(h) = &k.key_sha256 {
                h.to_ascii_lowercase()
            } else {
                sha256_hex(&std::env::var(k.key_env.as_deref().unwrap_or_default()).unwrap_or_default())
            };
            let allowed = (!k.allowed_models.is_empty()).then(|| k.allowed_models.iter().cloned().collect());
            by_hash.insert(hash, KeyInfo { id: k.id.clone(), allowed_models: allowed });
        }
        KeyStore { by_hash }
    }

    /// Open access: no keys configured.
    pub fn is_open(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Checks an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<KeyInfo, ApiError> {
        if self.is_open() {
            return Ok(KeyInfo { id: ANONYMOUS.into(), allowed_models: None });
        }
        let Some(h) = authorization else {
            return Err(ApiError::unauthorized("missing API key: send `Authorization: Bearer <key>`"));
        };
        let key = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).unwrap_or(h).trim();
        self.by_hash.get(&sha256_hex(key)).cloned().ok_or_else(|| ApiError::unauthorized("invalid API key"))
    }
}
