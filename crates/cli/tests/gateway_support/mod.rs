//! Shared by the `gateway_*` integration tests: start the real `conductor` binary on an
//! ephemeral port with a given config, and a deliberately misbehaving OpenAI-compatible
//! upstream (raw TCP, so it can hang, reset connections or cut streams mid-way).
#![allow(dead_code)]

pub mod postgres;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("CONDUCTOR_MODELS").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("models"))
}

/// A running `conductor serve`; killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `conductor serve` with `config` (TOML, `{dir}` replaced by its temp dir).
    pub fn start(config: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Server::start_in(config, dir)
    }

    pub fn start_in(config: &str, dir: tempfile::TempDir) -> Server {
        let cfg = dir.path().join("conductor.toml");
        std::fs::write(&cfg, config.replace("{dir}", &dir.path().display().to_string())).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_conductor"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&cfg)
            .env("CONDUCTOR_MODELS", models_dir())
            // Tests run two at a time, each with its own server: one engine thread each
            // keeps the two cores from being oversubscribed.
            .env("CONDUCTOR_THREADS", "1")
            .env("CONDUCTOR_LOG", std::env::var("CONDUCTOR_LOG").unwrap_or_else(|_| "error".into()))
            .current_dir(workspace_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start conductor");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("conductor listening on ").unwrap_or_else(|| {
            let _ = child.kill();
            panic!("conductor did not start; stdout: {line:?}")
        });
        Server { child, base: addr.to_string(), dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn books(&self) -> PathBuf {
        self.dir.path().join("books.sqlite")
    }

    /// Sends a signal (e.g. "TERM", "KILL") and waits for exit.
    pub fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap()
    }

    /// Stops the server gracefully (SIGTERM: in-flight work finishes, the books are
    /// flushed) and gives back its temp dir (to read the books or restart on them).
    pub fn stop(mut self) -> tempfile::TempDir {
        let status = self.signal("TERM");
        assert!(status.success(), "conductor exited with {status:?} after SIGTERM");
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Server {
    /// SIGKILL (no chance to flush anything) and give back the temp dir.
    pub fn crash(mut self) -> tempfile::TempDir {
        self.signal("KILL");
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `conductor logs ...` on a books file and returns stdout.
pub fn logs(books: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .arg("logs")
        .arg("--books")
        .arg(books)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "conductor logs failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The project's Python with the official `openai` package (made by `scripts/setup.sh`).
pub fn python() -> PathBuf {
    let p = workspace_root().join(".venv/bin/python");
    assert!(
        p.is_file(),
        "{} missing: run `bash scripts/setup.sh` (creates .venv with the openai package)",
        p.display()
    );
    p
}

/// What a script under `tests/python/` did.
pub struct ScriptRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptRun {
    /// The JSON objects it printed, one per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// Runs `tests/python/<script>` with the project's Python, off the async threads.
pub async fn python_script(script: &str, args: Vec<String>) -> ScriptRun {
    let script = workspace_root().join("tests/python").join(script);
    let out = tokio::task::spawn_blocking(move || Command::new(python()).arg(script).args(args).output().unwrap())
        .await
        .unwrap();
    ScriptRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// The model `auto` picks for `prompt` on `s`, and the predicted success of `small`.
pub async fn routed(http: &reqwest::Client, s: &Server, prompt: &str) -> (String, f64) {
    let r = http.post(s.url("/v1/chat/completions")).json(&chat_body("auto", prompt, false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let small = v["conductor"]["candidates"].as_array().unwrap().iter().find(|c| c["model"] == "small").unwrap();
    (v["model"].as_str().unwrap().to_string(), small["p_success"].as_f64().unwrap())
}

pub fn chat_body(model: &str, prompt: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 5, "stream": stream})
}

/// Asserts an OpenAI-shaped error body and returns it.
pub fn assert_error_shape(body: &serde_json::Value) -> &serde_json::Value {
    let e = &body["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "error.message missing: {body}");
    assert!(e["type"].as_str().is_some_and(|m| !m.is_empty()), "error.type missing: {body}");
    assert!(e.get("code").is_some(), "error.code missing: {body}");
    e
}

/// How the fake upstream behaves; chosen by the first path segment
/// (`http://addr/<behaviour>/v1/chat/completions`).
#[derive(Default)]
pub struct Upstream {
    pub addr: String,
    hits: Mutex<HashMap<String, usize>>,
    bodies: Mutex<HashMap<String, Vec<String>>>,
    pub total: AtomicUsize,
}

impl Upstream {
    pub fn base(&self, behaviour: &str) -> String {
        format!("http://{}/{behaviour}/v1", self.addr)
    }
    pub fn hits(&self, behaviour: &str) -> usize {
        *self.hits.lock().unwrap().get(behaviour).unwrap_or(&0)
    }
    /// The request bodies a behaviour received, in order (the `record` behaviour answers
    /// like `ok`, so a test can check exactly what conductor forwarded).
    pub fn bodies(&self, behaviour: &str) -> Vec<serde_json::Value> {
        let b = self.bodies.lock().unwrap();
        b.get(behaviour).map_or_else(Vec::new, |v| v.iter().map(|s| serde_json::from_str(s).unwrap()).collect())
    }
}

/// Starts the fake upstream on the current tokio runtime.
///
/// Behaviours: `ok` (valid completion, 10+10 tokens; SSE when `"stream":true`), `solver`
/// (answers "#### 42", not streamed), `flaky` (like solver, but each distinct request is a 429 the first time it comes),
/// `sure` / `unsure` (answer "#### 42" / "#### 41" whole, with 20 tokens at p = 0.95 / 0.3
/// when log-probabilities are asked for), `mute` (like sure, never with log-probabilities),
/// `grader` (a judge: "yes" when the answer to grade contains the reference answer, else "no"),
/// `slow` (like ok, after 300 ms; streams send one chunk per 100 ms), `hang` (never
/// answers), `400`, `500`, `429` (Retry-After: 0), `garbage` (200 with invalid JSON), `reset`
/// (TCP RST), `cut` (non-stream: short body; stream: two chunks then close), `tools` /
/// `anthropic_tools` (a scripted tool user, OpenAI's and Anthropic's API: see [`tool_reply`]),
/// `agent` (an agent model following the script in its goal: see [`agent_reply`]).
pub async fn start_upstream() -> Arc<Upstream> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = Arc::new(Upstream { addr: listener.local_addr().unwrap().to_string(), ..Default::default() });
    let up2 = up.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { continue };
            let up = up2.clone();
            tokio::spawn(async move {
                let _ = serve_conn(sock, up).await;
            });
        }
    });
    up
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<(String, String, String)>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < pos + 4 + len {
                let n = sock.read(&mut tmp).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let body = String::from_utf8_lossy(&buf[pos + 4..pos + 4 + len]).to_string();
            buf.drain(..pos + 4 + len);
            return Ok(Some((path, head.to_ascii_lowercase(), body)));
        }
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn completion(model: &str) -> String {
    completion_saying(model, "fake answer")
}

fn completion_saying(model: &str, content: &str) -> String {
    serde_json::json!({
        "id": "up-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    })
    .to_string()
}

fn chunk(content: Option<&str>, finish: Option<&str>, usage: bool) -> String {
    let mut c = serde_json::json!({
        "id": "up-1", "object": "chat.completion.chunk", "created": 1, "model": "fake",
        "choices": [{"index": 0, "delta": content.map(|c| serde_json::json!({"content": c})).unwrap_or(serde_json::json!({})), "finish_reason": finish}]
    });
    if usage {
        c["choices"] = serde_json::json!([]);
        c["usage"] = serde_json::json!({"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20});
    }
    format!("data: {c}\n\n")
}

#[allow(deprecated)] // set_linger(0): the point is to send a TCP RST
async fn serve_conn(mut sock: TcpStream, up: Arc<Upstream>) -> std::io::Result<()> {
    while let Some((path, head, body)) = read_request(&mut sock).await? {
        let behaviour = path.trim_start_matches('/').split('/').next().unwrap_or("").to_string();
        *up.hits.lock().unwrap().entry(behaviour.clone()).or_default() += 1;
        up.bodies.lock().unwrap().entry(behaviour.clone()).or_default().push(body.clone());
        up.total.fetch_add(1, Ordering::SeqCst);
        let stream = body.contains("\"stream\":true");
        let json = |status: &str, extra: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        match behaviour.as_str() {
            // A solver that always answers 42; `flaky` is the same behind one 429 per request.
            "solver" | "flaky" => {
                // Each distinct request is refused the first time it comes (and every other
                // time after): one retry per request, however many run at once.
                let seen = up.bodies.lock().unwrap()[&behaviour].iter().filter(|b| **b == body).count();
                if behaviour == "flaky" && seen % 2 == 1 {
                    let body = r#"{"error":{"message":"slow down","type":"rate_limit","code":"rate_limited"}}"#;
                    sock.write_all(json("429 Too Many Requests", "retry-after: 0\r\n", body).as_bytes()).await?;
                } else {
                    let mut answer: serde_json::Value =
                        serde_json::from_str(&completion_saying("fake", "Let me think. 6 times 7.\n#### 42")).unwrap();
                    // Token log-probabilities when asked for (two tokens: p = 0.9, 0.5).
                    if body.contains("\"logprobs\":true") {
                        answer["choices"][0]["logprobs"] = serde_json::json!({"content": [
                            {"token": "####", "logprob": 0.9f32.ln(), "top_logprobs": []},
                            {"token": " 42", "logprob": 0.5f32.ln(), "top_logprobs": []}
                        ]});
                    }
                    sock.write_all(json("200 OK", "", &answer.to_string()).as_bytes()).await?;
                }
            }
            // Scripted confidence: what an answer checker reads.
            "sure" | "unsure" | "mute" => {
                let (text, p) = if behaviour == "unsure" { ("#### 41", 0.3f32) } else { ("#### 42", 0.95) };
                let mut answer: serde_json::Value = serde_json::from_str(&completion_saying("fake", text)).unwrap();
                if body.contains("\"logprobs\":true") && behaviour != "mute" {
                    let tokens: Vec<serde_json::Value> = (0..20)
                        .map(|_| serde_json::json!({"token": "t", "logprob": p.ln(), "top_logprobs": []}))
                        .collect();
                    answer["choices"][0]["logprobs"] = serde_json::json!({ "content": tokens });
                }
                sock.write_all(json("200 OK", "", &answer.to_string()).as_bytes()).await?;
            }
            // A judge that checks whether the graded answer contains the reference.
            "grader" => {
                let req: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let text = req["messages"][0]["content"].as_str().unwrap_or("").to_string();
                let part = |after: &str| text.split(after).nth(1).and_then(|s| s.split("\n\n").next()).unwrap_or("");
                let (reference, answer) = (part("Reference answer: "), part("Answer to grade: "));
                let yes = !reference.is_empty() && answer.contains(reference);
                let reply = completion_saying("fake", if yes { "Yes." } else { "No." });
                sock.write_all(json("200 OK", "", &reply).as_bytes()).await?;
            }
            "ok" | "slow" | "record" => {
                let slow = behaviour == "slow";
                if !stream {
                    if slow {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    sock.write_all(json("200 OK", "", &completion("fake")).as_bytes()).await?;
                } else {
                    sock.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                    )
                    .await?;
                    let parts = [
                        chunk(Some("fake"), None, false),
                        chunk(Some(" answer"), None, false),
                        chunk(None, Some("stop"), false),
                        chunk(None, None, true),
                        "data: [DONE]\n\n".to_string(),
                    ];
                    for p in parts {
                        if slow {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        sock.write_all(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes()).await?;
                        sock.flush().await?;
                    }
                    sock.write_all(b"0\r\n\r\n").await?;
                }
            }
            "anthropic" => {
                // A fake Anthropic Messages API that checks the request's shape.
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let well_formed = path.ends_with("/v1/messages")
                    && head.contains("anthropic-version:")
                    && head.contains("x-api-key: sk-fake-anthropic")
                    && v["max_tokens"].is_u64()
                    && v["system"].is_string()
                    && v["messages"].as_array().is_some_and(|m| m.iter().all(|m| m["role"] != "system"));
                if !well_formed {
                    sock.write_all(json("400 Bad Request", "", r#"{"type":"error","error":{"type":"invalid_request_error","message":"malformed request"}}"#).as_bytes()).await?;
                } else if !stream {
                    let msg = r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hello from claude"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":4}}"#;
                    sock.write_all(json("200 OK", "", msg).as_bytes()).await?;
                } else {
                    sock.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                    )
                    .await?;
                    let events = [
                        r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":12,"output_tokens":1}}}"#,
                        r#"event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                        r#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello from"}}"#,
                        r#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" claude"}}"#,
                        r#"event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":4}}"#,
                        r#"event: message_stop
data: {"type":"message_stop"}"#,
                    ];
                    for e in events {
                        let p = format!("{e}\n\n");
                        sock.write_all(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes()).await?;
                    }
                    sock.write_all(b"0\r\n\r\n").await?;
                }
            }
            // The scripted tool user, on OpenAI's API or Anthropic's.
            "tools" | "anthropic_tools" => {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let (reply, pieces) = if behaviour == "tools" {
                    let r = tool_reply(&v);
                    let p = tool_reply_chunks(&r);
                    (r, p)
                } else {
                    let r = anthropic_tool_reply(&v);
                    let p = anthropic_tool_events(&r).into_iter().map(|e| format!("event: x\ndata: {e}\n\n")).collect();
                    (r, p)
                };
                if !stream {
                    sock.write_all(json("200 OK", "", &reply.to_string()).as_bytes()).await?;
                } else {
                    sock.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                    )
                    .await?;
                    for p in pieces {
                        sock.write_all(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes()).await?;
                    }
                    sock.write_all(b"0\r\n\r\n").await?;
                }
            }
            "agent" => {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                sock.write_all(json("200 OK", "", &agent_reply(&v).to_string()).as_bytes()).await?;
            }
            "hang" => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            "500" => {
                sock.write_all(
                    json("500 Internal Server Error", "", r#"{"error":{"message":"boom","type":"server_error"}}"#)
                        .as_bytes(),
                )
                .await?;
            }
            "400" => {
                sock.write_all(
                    json(
                        "400 Bad Request",
                        "",
                        r#"{"error":{"message":"prompt too long for this model","type":"invalid_request_error"}}"#,
                    )
                    .as_bytes(),
                )
                .await?;
            }
            "429" => {
                sock.write_all(
                    json(
                        "429 Too Many Requests",
                        "retry-after: 0\r\n",
                        r#"{"error":{"message":"slow down","type":"rate_limit"}}"#,
                    )
                    .as_bytes(),
                )
                .await?;
            }
            "garbage" => {
                sock.write_all(json("200 OK", "", "{\"choices\": [ this is not json").as_bytes()).await?;
            }
            "reset" => {
                sock.set_linger(Some(Duration::ZERO))?;
                return Ok(()); // dropping with linger 0 sends RST
            }
            "cut" => {
                if !stream {
                    let full = completion("fake");
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        full.len()
                    );
                    sock.write_all(head.as_bytes()).await?;
                    sock.write_all(&full.as_bytes()[..full.len() / 2]).await?;
                } else {
                    sock.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                    )
                    .await?;
                    for p in [chunk(Some("fake"), None, false), chunk(Some(" answ"), None, false)] {
                        sock.write_all(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes()).await?;
                    }
                    sock.flush().await?;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                sock.set_linger(Some(Duration::ZERO))?;
                return Ok(());
            }
            _ => {
                sock.write_all(json("404 Not Found", "", r#"{"error":{"message":"no such behaviour"}}"#).as_bytes())
                    .await?;
            }
        }
    }
    Ok(())
}

/// A scripted agent model. The goal (the first user message) holds `SCRIPT: <json>` —
/// either a list of calls (`{"name", "arguments"}`), made one per turn in order, then a
/// final answer quoting the last tool result; or `{"repeat": <call>}`, the same call
/// forever (a model stuck in a loop).
fn agent_reply(req: &serde_json::Value) -> serde_json::Value {
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let goal = messages.iter().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or("");
    // The script is the first JSON value after `SCRIPT:` (text may follow it).
    let script: serde_json::Value = goal
        .split_once("SCRIPT:")
        .and_then(|(_, s)| serde_json::Deserializer::from_str(s.trim()).into_iter().next()?.ok())
        .unwrap_or_default();
    // ReWOO's planner asks for a plan (the script's calls) and its judge for a grade
    // (`GRADE: x` in the goal); its solver gets the results as text.
    let format = req["response_format"]["json_schema"]["name"].as_str();
    let whole = messages.iter().map(|m| m["content"].as_str().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let content = match format {
        Some("plan") => {
            let steps: Vec<serde_json::Value> = script
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|c| serde_json::json!({"tool": c["name"], "args": c["arguments"], "note": "scripted"}))
                .collect();
            Some(serde_json::json!({"steps": steps}).to_string())
        }
        Some("grade") => {
            let g: f64 = whole
                .split("GRADE:")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|x| x.parse().ok())
                .unwrap_or(1.0);
            Some(serde_json::json!({"score": g, "reason": "scripted grade"}).to_string())
        }
        _ if req["tools"].is_null() => {
            let last = whole.rsplit("Result: ").next().and_then(|r| r.lines().next()).unwrap_or("");
            Some(format!("solved: {last}"))
        }
        _ => None,
    };
    if let Some(content) = content {
        return serde_json::json!({
            "id": "up-a", "object": "chat.completion", "created": 1, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
        });
    }
    let done = messages.iter().filter(|m| m["role"] == "tool").count();
    let call = match (&script["repeat"], script.as_array()) {
        (c, _) if c.is_object() => Some(c.clone()),
        (_, Some(list)) => list.get(done).cloned(),
        _ => None,
    };
    let message = match call {
        Some(c) => serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": format!("call_{done}"), "type": "function",
            "function": {"name": c["name"], "arguments": c["arguments"].to_string()}}]}),
        None => {
            let last = messages.iter().rev().find(|m| m["role"] == "tool").and_then(|m| m["content"].as_str());
            serde_json::json!({"role": "assistant", "content": format!("done: {}", last.unwrap_or("no tools").trim())})
        }
    };
    let finish = if message["tool_calls"].is_array() { "tool_calls" } else { "stop" };
    serde_json::json!({
        "id": "up-a", "object": "chat.completion", "created": 1, "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    })
}

/// A scripted tool user: with `tools` and no tool result yet, it calls the first tool with
/// `{"expression": "6*7"}` (a calculator); after a tool result, it answers with that result.
fn tool_reply(req: &serde_json::Value) -> serde_json::Value {
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or_default();
    let message = if last["role"] == "tool" {
        serde_json::json!({"role": "assistant", "content": format!("The answer is {}.", last["content"].as_str().unwrap_or(""))})
    } else if let Some(name) = req["tools"][0]["function"]["name"].as_str() {
        serde_json::json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_up1", "type": "function", "function": {"name": name, "arguments": "{\"expression\": \"6*7\"}"}}]})
    } else {
        serde_json::json!({"role": "assistant", "content": "no tools offered"})
    };
    let finish = if message["tool_calls"].is_array() { "tool_calls" } else { "stop" };
    serde_json::json!({
        "id": "up-t", "object": "chat.completion", "created": 1, "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    })
}

/// [`tool_reply`] as OpenAI streams it: a call's id and name first, its arguments in pieces.
fn tool_reply_chunks(reply: &serde_json::Value) -> Vec<String> {
    let m = &reply["choices"][0]["message"];
    let finish = reply["choices"][0]["finish_reason"].as_str().unwrap();
    let wrap = |delta: serde_json::Value, finish: Option<&str>| {
        let c = serde_json::json!({"id": "up-t", "object": "chat.completion.chunk", "created": 1, "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let mut out = vec![wrap(serde_json::json!({"role": "assistant"}), None)];
    if let Some(calls) = m["tool_calls"].as_array() {
        for (i, c) in calls.iter().enumerate() {
            out.push(wrap(serde_json::json!({"tool_calls": [{"index": i, "id": c["id"], "type": "function", "function": {"name": c["function"]["name"], "arguments": ""}}]}), None));
            let args = c["function"]["arguments"].as_str().unwrap();
            let (a, b) = args.split_at(args.len() / 2);
            for piece in [a, b] {
                out.push(wrap(
                    serde_json::json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                    None,
                ));
            }
        }
    } else {
        out.push(wrap(serde_json::json!({"content": m["content"]}), None));
    }
    out.push(wrap(serde_json::json!({}), Some(finish)));
    out.push(chunk(None, None, true));
    out.push("data: [DONE]\n\n".into());
    out
}

/// The same script on Anthropic's Messages API: a `tool_use` block, then, once a
/// `tool_result` block came back, text with its content.
fn anthropic_tool_reply(req: &serde_json::Value) -> serde_json::Value {
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or_default();
    let result = last["content"].as_array().and_then(|b| b.iter().find(|b| b["type"] == "tool_result").cloned());
    let (content, stop) = match (result, req["tools"][0]["name"].as_str()) {
        (Some(r), _) => (
            serde_json::json!([{"type": "text", "text": format!("The answer is {}.", r["content"].as_str().unwrap_or(""))}]),
            "end_turn",
        ),
        (None, Some(name)) => (
            serde_json::json!([{"type": "tool_use", "id": "toolu_1", "name": name, "input": {"expression": "6*7"}}]),
            "tool_use",
        ),
        (None, None) => (serde_json::json!([{"type": "text", "text": "no tools offered"}]), "end_turn"),
    };
    serde_json::json!({"id": "msg_t", "type": "message", "role": "assistant", "content": content, "stop_reason": stop,
        "usage": {"input_tokens": 10, "output_tokens": 10}})
}

fn anthropic_tool_events(reply: &serde_json::Value) -> Vec<String> {
    let mut out = vec![serde_json::json!({"type": "message_start", "message": {"id": "msg_t", "usage": {"input_tokens": 10, "output_tokens": 1}}}).to_string()];
    let block = &reply["content"][0];
    if block["type"] == "tool_use" {
        out.push(serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}).to_string());
        let args = block["input"].to_string();
        let (a, b) = args.split_at(args.len() / 2);
        for piece in [a, b] {
            out.push(serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}).to_string());
        }
    } else {
        out.push(serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}).to_string());
        out.push(serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": block["text"]}}).to_string());
    }
    out.push(serde_json::json!({"type": "content_block_stop", "index": 0}).to_string());
    out.push(serde_json::json!({"type": "message_delta", "delta": {"stop_reason": reply["stop_reason"]}, "usage": {"output_tokens": 10}}).to_string());
    out.push(serde_json::json!({"type": "message_stop"}).to_string());
    out
}

/// Config declaring one upstream model per (id, behaviour, tier); local models off.
pub fn upstream_config(up: &Upstream, models: &[(&str, &str, &str)], extra: &str) -> String {
    let mut s = String::from("[local]\nenabled = false\n[books]\npath = \"{dir}/books.sqlite\"\n[reliability]\nretry_base_ms = 5\nretry_max_ms = 20\n");
    s.push_str(extra);
    for (id, behaviour, tier) in models {
        s.push_str(&format!(
            "\n[[models]]\nid = \"{id}\"\nprovider = \"openai\"\nbase_url = \"{}\"\nupstream_model = \"fake\"\ninput_usd_per_mtok = {}\noutput_usd_per_mtok = {}\ntier = \"{tier}\"\nfirst_token_timeout_ms = 700\ntotal_timeout_ms = 1500\nmax_retries = 1\n",
            up.base(behaviour),
            if *tier == "large" { 10.0 } else { 1.0 },
            if *tier == "large" { 30.0 } else { 2.0 },
        ));
    }
    s
}
