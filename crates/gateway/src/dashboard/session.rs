//! Who may look. Without keys the dashboard is open, like the API. With keys it wants an
//! admin key: the browser hands it once to the login form and gets back an opaque session
//! token in an `HttpOnly`, `SameSite=Strict` cookie (page scripts cannot read it, other
//! sites cannot send it). The key itself stays in server memory, never in a page; it is
//! what a run resumed from the dashboard sends with its model calls. Scripts may send
//! `Authorization: Bearer <admin key>` instead of a cookie.

use crate::error::ApiError;
use crate::keys::sha256_hex;
use crate::state::AppState;
use axum::http::{header, HeaderMap};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "conductor_ui";
/// A session lasts a working day.
pub const TTL: Duration = Duration::from_secs(12 * 3600);

/// The person looking, as far as the dashboard needs to know.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub key_id: String,
    /// What model calls made on this viewer's behalf send (None in open mode).
    pub authorization: Option<String>,
}

struct Session {
    viewer: Viewer,
    expires: Instant,
}

/// Live sessions by the SHA-256 of their token (a memory dump shows no usable token).
#[derive(Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `viewer`; returns its token.
    pub fn create(&self, viewer: Viewer) -> String {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        map.insert(sha256_hex(&token), Session { viewer, expires: now + TTL });
        token
    }

    pub fn get(&self, token: &str) -> Option<Viewer> {
        let map = self.lock();
        map.get(&sha256_hex(token)).filter(|s| s.expires > Instant::now()).map(|s| s.viewer.clone())
    }

    pub fn remove(&self, token: &str) {
        self.lock().remove(&sha256_hex(token));
    }
}

/// The session token in a request's cookies, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The viewer of a request: anyone in open mode; otherwise an admin key or a session.
pub fn viewer(state: &AppState, sessions: &Sessions, headers: &HeaderMap) -> Result<Viewer, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    // Open mode lets everyone in, as the API does; a header must be an admin key.
    if state.keys.is_open() || authorization.is_some() {
        let key = state.keys.authenticate_admin(authorization)?;
        return Ok(Viewer { key_id: key.id, authorization: authorization.map(str::to_string) });
    }
    cookie_token(headers)
        .and_then(|t| sessions.get(&t))
        .ok_or_else(|| ApiError::unauthorized("sign in with an admin key at /ui/login"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn sessions_are_found_by_token_only_and_can_end() {
        let s = Sessions::default();
        let t = s.create(Viewer { key_id: "ops".into(), authorization: Some("Bearer sk".into()) });
        assert_eq!(t.len(), 64);
        assert_eq!(s.get(&t).unwrap().key_id, "ops");
        assert!(s.get("0".repeat(64).as_str()).is_none());
        let other = s.create(Viewer { key_id: "ops".into(), authorization: None });
        assert_ne!(t, other, "every session its own token");
        s.remove(&t);
        assert!(s.get(&t).is_none() && s.get(&other).is_some());
    }

    #[test]
    fn the_session_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; conductor_ui=abc; b=2"));
        assert_eq!(cookie_token(&h).as_deref(), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("not_conductor_ui=x"));
        assert_eq!(cookie_token(&h), None);
    }
}
