//! The pages and their files, compiled in; the login form and logout.

use super::session::{self, Viewer, COOKIE};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

const INDEX: &str = include_str!("ui/index.html");
const LOGIN: &str = include_str!("ui/login.html");
const APP_JS: &str = include_str!("ui/app.js");
const CHARTS_JS: &str = include_str!("ui/charts.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// Only this server's own files run, and no other site may frame the pages.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

fn page(status: StatusCode, html: String) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `GET /ui`: the app for a viewer, the login form for anyone else.
pub async fn index(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session::viewer(&state, &state.dashboard.sessions, &headers) {
        Ok(v) => page(StatusCode::OK, INDEX.replace("{{viewer}}", &escape(&v.key_id))),
        Err(_) => Redirect::to("/ui/login").into_response(),
    }
}

fn login_form(status: StatusCode, message: &str) -> Response {
    let note = if message.is_empty() { String::new() } else { format!("<p class=\"error\">{}</p>", escape(message)) };
    page(status, LOGIN.replace("{{message}}", &note))
}

pub async fn login_page(State(state): State<Arc<AppState>>) -> Response {
    if state.keys.is_open() {
        return Redirect::to("/ui").into_response();
    }
    login_form(StatusCode::OK, "")
}

/// `POST /ui/login` (form field `key`): an admin key opens a session.
pub async fn login(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    if state.keys.is_open() {
        return Redirect::to("/ui").into_response();
    }
    // Guessing keys at the form is slowed for everyone alike (scripts can still send an admin
    // key as a header, which the form's limit does not touch).
    if let Err(wait) = state.dashboard.logins.check("login", super::LOGINS_PER_MINUTE) {
        let secs = wait.as_secs().max(1);
        let mut r =
            login_form(StatusCode::TOO_MANY_REQUESTS, &format!("too many sign-in attempts: try again in {secs} s"));
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let key = form_urlencoded::parse(&body).find(|(k, _)| k == "key").map(|(_, v)| v.trim().to_string());
    let authorization = format!("Bearer {}", key.unwrap_or_default());
    match state.keys.authenticate_admin(Some(&authorization)) {
        Ok(k) => {
            let token = state.dashboard.sessions.create(Viewer { key_id: k.id, authorization: Some(authorization) });
            let cookie =
                format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={}", session::TTL.as_secs());
            let mut r = Redirect::to("/ui").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => login_form(e.status, &e.message),
    }
}

/// `POST /ui/logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(t) = session::cookie_token(&headers) {
        state.dashboard.sessions.remove(&t);
    }
    let mut r = Redirect::to("/ui/login").into_response();
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /ui/assets/{name}`: the style sheet for anyone (the login form wears it); the
/// scripts only for a viewer.
pub async fn asset(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let (body, kind, public) = match name.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8", true),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8", false),
        "charts.js" => (CHARTS_JS, "text/javascript; charset=utf-8", false),
        _ => return crate::routes::info::not_found(format!("/ui/assets/{name}").parse().unwrap_or_default()).await,
    };
    if !public {
        if let Err(e) = session::viewer(&state, &state.dashboard.sessions, &headers) {
            return e.into_response();
        }
    }
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
