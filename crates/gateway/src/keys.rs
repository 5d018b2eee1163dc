//! API keys. Keys are held only as SHA-256 hashes: the clear-text key from the config
//! (or its environment variable) is hashed at load and dropped, and the books record
//! the key's *id*, never the key. Config validation has already refused empty and
//! shared secrets, so every hash here names exactly one key.

use crate::config::KeyConfig;
use crate::error::ApiError;
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// One configured key, as the request pipeline sees it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: String,
    /// None: every model.
    pub allowed_models: Option<HashSet<String>>,
    /// May read operator endpoints (`/metrics`, full `/healthz`).
    pub admin: bool,
    /// Its prompts and answers may be kept in the books.
    pub log_prompts: bool,
    /// Chat and embedding requests per minute (0: unlimited).
    pub requests_per_minute: u32,
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
            // Validation refused empty secrets; skip defensively rather than accept "".
            let Some(hash) = k.secret_hash() else { continue };
            let allowed = (!k.allowed_models.is_empty()).then(|| k.allowed_models.iter().cloned().collect());
            by_hash.insert(
                hash,
                KeyInfo {
                    id: k.id.clone(),
                    allowed_models: allowed,
                    admin: k.admin,
                    log_prompts: k.log_prompts,
                    requests_per_minute: k.requests_per_minute,
                },
            );
        }
        KeyStore { by_hash }
    }

    /// Open access: no keys configured.
    pub fn is_open(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Checks an `Authorization` header value. Open access lets everyone in as
    /// [`ANONYMOUS`] (an admin: there is nobody to protect the operator pages from).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<KeyInfo, ApiError> {
        if self.is_open() {
            return Ok(KeyInfo {
                id: ANONYMOUS.into(),
                allowed_models: None,
                admin: true,
                log_prompts: true,
                requests_per_minute: 0,
            });
        }
        let h = authorization.unwrap_or("").trim();
        let key = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).unwrap_or(h).trim();
        if key.is_empty() {
            return Err(ApiError::unauthorized("missing API key: send `Authorization: Bearer <key>`"));
        }
        self.by_hash.get(&sha256_hex(key)).cloned().ok_or_else(|| ApiError::unauthorized("invalid API key"))
    }

    /// [`KeyStore::authenticate`], then require an admin key.
    pub fn authenticate_admin(&self, authorization: Option<&str>) -> Result<KeyInfo, ApiError> {
        let k = self.authenticate(authorization)?;
        if !k.admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                "admin_key_required",
                format!("API key `{}` is not an admin key (set `admin = true` on it in the config)", k.id),
            ));
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, secret: &str, admin: bool) -> KeyConfig {
        KeyConfig {
            id: id.into(),
            key: Some(secret.into()),
            key_sha256: None,
            key_env: None,
            allowed_models: vec![],
            budget_usd: None,
            budget_period: Default::default(),
            requests_per_minute: 0,
            admin,
            log_prompts: true,
        }
    }

    #[test]
    fn empty_and_wrong_keys_are_refused() {
        let ks = KeyStore::from_config(&[key("a", "sk-a", false), key("ops", "sk-ops", true)]);
        for h in [None, Some(""), Some("Bearer "), Some("Bearer    "), Some("Bearer sk-b")] {
            assert_eq!(ks.authenticate(h).unwrap_err().status, StatusCode::UNAUTHORIZED, "{h:?}");
        }
        assert_eq!(ks.authenticate(Some("Bearer sk-a")).unwrap().id, "a");
        assert_eq!(ks.authenticate_admin(Some("Bearer sk-a")).unwrap_err().status, StatusCode::FORBIDDEN);
        assert!(ks.authenticate_admin(Some("Bearer sk-ops")).is_ok());
    }
}
