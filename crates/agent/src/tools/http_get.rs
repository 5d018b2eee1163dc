//! `http_get`: fetch a URL over http(s) from a host on the run's allowlist (exact host
//! name, case-insensitive; redirects are followed only to allowed hosts). The body comes
//! back as text, cut at [`MAX_BODY_BYTES`].

use futures::future::BoxFuture;
use reqwest::Url;
use serde_json::{json, Value};

use super::{parse_args, Tool, ToolContext, ToolError, MAX_OUTPUT_BYTES};

/// More body than the model is shown is not worth downloading.
const MAX_BODY_BYTES: usize = MAX_OUTPUT_BYTES;
const MAX_REDIRECTS: usize = 5;

/// The `http_get` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpGet;

#[derive(serde::Deserialize)]
struct Args {
    url: String,
}

impl Tool for HttpGet {
    fn name(&self) -> &str {
        "http_get"
    }

    fn description(&self) -> &str {
        "Fetch a web page or API response with an HTTP GET and return its status, content type and body (truncated). \
         Only some hosts are allowed."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"url": {"type": "string", "description": "An http:// or https:// URL."}},
            "required": ["url"],
            "additionalProperties": false
        })
    }

    fn call(&self, args: Value, ctx: ToolContext) -> BoxFuture<'static, Result<String, ToolError>> {
        Box::pin(async move {
            let Args { url } = parse_args(args)?;
            let url = checked(&url, &ctx.http_allowlist)?;
            tokio::select! {
                result = fetch(url, &ctx) => result,
                _ = ctx.cancel.cancelled() => Err(ToolError::Cancelled),
            }
        })
    }
}

/// `text` parsed as a URL the allowlist lets through.
fn checked(text: &str, allowlist: &[String]) -> Result<Url, ToolError> {
    let url = Url::parse(text).map_err(|e| ToolError::BadArguments(format!("`{text}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ToolError::BadArguments(format!("`{text}` is not an http:// or https:// URL")));
    }
    allowed(&url, allowlist).map_err(ToolError::Refused)?;
    Ok(url)
}

fn allowed(url: &Url, allowlist: &[String]) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default();
    if allowlist.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Ok(());
    }
    Err(if allowlist.is_empty() {
        format!(
            "host `{host}` is not allowed: no host is (an operator can allow hosts under `[agent] http_allowlist`); \
             answer without fetching"
        )
    } else {
        format!("host `{host}` is not allowed; the allowed hosts are: {}", allowlist.join(", "))
    })
}

async fn fetch(url: Url, ctx: &ToolContext) -> Result<String, ToolError> {
    let allowlist = ctx.http_allowlist.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if let Err(why) = allowed(attempt.url(), &allowlist) {
            attempt.error(format!("redirected: {why}"))
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .timeout(ctx.timeout)
        .redirect(redirects)
        .user_agent("conductor-agent")
        .build()
        .map_err(|e| ToolError::Failed(format!("cannot build an HTTP client: {e}")))?;
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            ToolError::timed_out(ctx.timeout)
        } else {
            // The chain names the cause (refused connection, DNS, a refused redirect).
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message = format!("{message}: {s}");
                source = s.source();
            }
            ToolError::Failed(message)
        }
    };
    let mut response = client.get(url).send().await.map_err(failed)?;
    let mut head = format!("HTTP {}", response.status());
    if let Some(kind) = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        head.push_str(&format!("\ncontent-type: {kind}"));
    }
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY_BYTES {
            body.truncate(MAX_BODY_BYTES);
            truncated = true;
            break;
        }
    }
    let mut text = format!("{head}\n\n{}", String::from_utf8_lossy(&body));
    if truncated {
        text.push_str(&format!("\n[body truncated after {MAX_BODY_BYTES} bytes]"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::tests::context;
    use super::super::ToolSet;
    use super::*;

    /// A real HTTP server on loopback answering every request with `response`; its address.
    async fn serve(response: &'static str) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        addr
    }

    fn get(url: &str) -> String {
        json!({ "url": url }).to_string()
    }

    #[tokio::test]
    async fn fetches_from_an_allowed_host_only() {
        let addr =
            serve("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello")
                .await;
        let set = ToolSet::builtin(&["http_get"]).unwrap();
        let ws = tempfile::tempdir().unwrap();
        let url = format!("http://{addr}/page");
        let allowed = ToolContext { http_allowlist: vec!["127.0.0.1".into()], ..context(ws.path()) };
        let out = set.run("http_get", &get(&url), allowed).await.unwrap();
        assert_eq!(out, "HTTP 200 OK\ncontent-type: text/plain\n\nhello");

        let err = set.run("http_get", &get(&url), context(ws.path())).await.unwrap_err();
        assert!(
            matches!(&err, ToolError::Refused(m) if m.contains("`127.0.0.1`") && m.contains("[agent] http_allowlist"))
        );
        let other = ToolContext { http_allowlist: vec!["example.com".into()], ..context(ws.path()) };
        let err = set.run("http_get", &get(&url), other).await.unwrap_err();
        assert_eq!(err.to_string(), "refused: host `127.0.0.1` is not allowed; the allowed hosts are: example.com");
    }

    #[tokio::test]
    async fn redirects_to_other_hosts_are_refused() {
        let addr = serve("HTTP/1.1 302 Found\r\nlocation: http://localhost:1/\r\ncontent-length: 0\r\n\r\n").await;
        let set = ToolSet::builtin(&["http_get"]).unwrap();
        let ws = tempfile::tempdir().unwrap();
        let ctx = ToolContext { http_allowlist: vec!["127.0.0.1".into()], ..context(ws.path()) };
        let err = set.run("http_get", &get(&format!("http://{addr}/")), ctx).await.unwrap_err();
        assert!(matches!(&err, ToolError::Failed(m) if m.contains("host `localhost` is not allowed")), "{err:?}");
    }

    #[tokio::test]
    async fn non_http_urls_are_bad_arguments() {
        let set = ToolSet::builtin(&["http_get"]).unwrap();
        let ws = tempfile::tempdir().unwrap();
        let ctx = ToolContext { http_allowlist: vec!["127.0.0.1".into()], ..context(ws.path()) };
        for bad in ["file:///etc/passwd", "not a url"] {
            assert_eq!(set.run("http_get", &get(bad), ctx.clone()).await.unwrap_err().kind(), "bad_arguments", "{bad}");
        }
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let set = ToolSet::builtin(&["http_get"]).unwrap();
        let ws = tempfile::tempdir().unwrap();
        let ctx = ToolContext {
            http_allowlist: vec!["127.0.0.1".into()],
            timeout: Duration::from_millis(300),
            ..context(ws.path())
        };
        let err = set.run("http_get", &get(&format!("http://{addr}/")), ctx).await.unwrap_err();
        assert_eq!(err.kind(), "timed_out");
        drop(listener);
    }
}
