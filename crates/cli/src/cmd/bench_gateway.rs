//! `conductor bench gateway`: what the gateway adds on top of an upstream. A static
//! OpenAI-compatible upstream (in this process, answers instantly) is called directly,
//! through `conductor serve`, and — side by side, same upstream, same load — through the
//! LiteLLM proxy. Reports p50/p99 latency added over the direct call (sequential
//! requests, one keep-alive connection) and maximum throughput (many concurrent
//! keep-alive connections, requests per second).
//!
//! "Added" latency is the proxied percentile minus the direct median: the upstream's
//! typical cost is subtracted, so the p99 column is what a slow request through the proxy
//! costs beyond a normal direct call (conservative: upstream jitter is charged to the proxy).
//!
//! Replicas: `--replicas 1,2,3` runs that many `conductor serve` processes and spreads the
//! load generator's connections over them round-robin (a load balancer's job), each with
//! its own books; with `--store-url` the same again sharing one PostgreSQL. `--budgeted`
//! sends every request on a key with a (large) budget, so each one reserves and settles —
//! the path where the store is on the request's critical path.
//!
//! Everything runs on loopback on the same machine, so the upstream and load generator
//! share the CPU with the proxy under test; the numbers compare proxies under equal
//! conditions rather than give absolute capacity.

use anyhow::{bail, Context};
use clap::Args;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Args, Debug)]
pub struct GatewayBenchArgs {
    /// Sequential requests for the latency measurement.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrent connections for the throughput measurement.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of load for the throughput measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// `litellm` executable (from `pip install 'litellm[proxy]'`); skipped when missing.
    #[arg(long, default_value = ".venv-bench/bin/litellm")]
    litellm: PathBuf,
    /// Also measure `model: "auto"` (router features + prediction on every request).
    #[arg(long)]
    auto: bool,
    /// Length of the user prompt in tokens (about 4 characters each); routing cost grows with it.
    #[arg(long, default_value_t = 8)]
    prompt_tokens: usize,
    /// Numbers of replicas to measure, e.g. `1,2,3`.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    replicas: Vec<usize>,
    /// A PostgreSQL the replicas share (`[store] url`); each replica count is then measured
    /// with its own books (SQLite) and with this store.
    #[arg(long)]
    store_url: Option<String>,
    /// Requests use a key with a budget (reserve before the call, settle durably after).
    #[arg(long)]
    budgeted: bool,
}

/// Key the load generator sends (LiteLLM refuses to start without a master key).
const BENCH_KEY: &str = "sk-bench-7f3c9a1e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a";

const BODY: &str = r#"{"model":"MODEL","messages":[{"role":"user","content":"PROMPT"}],"max_tokens":16}"#;

/// A prompt of about `tokens` tokens (4 characters each) of plain words.
fn prompt(tokens: usize) -> String {
    const WORDS: [&str; 8] = ["What", "is", "the", "capital", "of", "France", "and", "why?"];
    let mut s = String::new();
    let mut i = 0;
    while s.len() < tokens.max(1) * 4 {
        s.push_str(WORDS[i % WORDS.len()]);
        s.push(' ');
        i += 1;
    }
    s.trim_end().to_string()
}

const UPSTREAM_RESPONSE: &str = r#"{"id":"chatcmpl-static","object":"chat.completion","created":1,"model":"static","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":2,"total_tokens":16}}"#;

/// Reads one HTTP/1.1 message head + Content-Length body (or chunked body) from `buf`/`s`.
async fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Option<(String, Vec<u8>)>> {
    let mut tmp = [0u8; 16384];
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).to_string();
            let lower = head.to_ascii_lowercase();
            let start = pos + 4;
            if let Some(len) =
                lower.lines().find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
            {
                let len = len?;
                while buf.len() < start + len {
                    let n = s.read(&mut tmp).await?;
                    if n == 0 {
                        bail!("connection closed mid-body");
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                let body = buf[start..start + len].to_vec();
                buf.drain(..start + len);
                return Ok(Some((head, body)));
            }
            if lower.contains("transfer-encoding: chunked") {
                // Wait for the terminating chunk, then strip chunk framing.
                loop {
                    if let Some(end) = buf[start..].windows(5).position(|w| w == b"0\r\n\r\n") {
                        let raw = buf[start..start + end].to_vec();
                        buf.drain(..start + end + 5);
                        let mut body = Vec::new();
                        let mut i = 0;
                        while i < raw.len() {
                            let Some(eol) = raw[i..].windows(2).position(|w| w == b"\r\n") else { break };
                            let size = usize::from_str_radix(std::str::from_utf8(&raw[i..i + eol])?.trim(), 16)?;
                            i += eol + 2;
                            body.extend_from_slice(&raw[i..(i + size).min(raw.len())]);
                            i += size + 2;
                        }
                        return Ok(Some((head, body)));
                    }
                    let n = s.read(&mut tmp).await?;
                    if n == 0 {
                        bail!("connection closed mid-body");
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
            }
            let body = Vec::new();
            buf.drain(..start);
            return Ok(Some((head, body)));
        }
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// The static upstream: every request gets the same small completion, at once.
async fn static_upstream() -> anyhow::Result<String> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{UPSTREAM_RESPONSE}",
                    UPSTREAM_RESPONSE.len()
                );
                while let Ok(Some(_)) = read_message(&mut s, &mut buf).await {
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// One keep-alive client connection.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    req: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str, path: &str, model: &str, prompt_tokens: usize) -> anyhow::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let body = BODY.replace("MODEL", model).replace("PROMPT", &prompt(prompt_tokens));
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nauthorization: Bearer {BENCH_KEY}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        Ok(Conn { s, buf: Vec::new(), req: req.into_bytes() })
    }

    async fn call(&mut self) -> anyhow::Result<()> {
        self.s.write_all(&self.req).await?;
        let (head, body) = read_message(&mut self.s, &mut self.buf).await?.context("connection closed")?;
        if !head.starts_with("HTTP/1.1 200") {
            bail!("{} {}", head.lines().next().unwrap_or(""), String::from_utf8_lossy(&body));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Result1 {
    p50_ms: f64,
    p99_ms: f64,
    rps: f64,
    /// Latency percentiles of the requests made under the concurrent load.
    loaded_p50_ms: f64,
    loaded_p99_ms: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sequential latency against the first address; throughput with the connections spread
/// over all of them.
async fn measure(addrs: &[String], path: &str, model: &str, a: &GatewayBenchArgs) -> anyhow::Result<Result1> {
    let addr = addrs.first().context("no address to measure")?;
    let mut c = Conn::open(addr, path, model, a.prompt_tokens).await?;
    for _ in 0..100 {
        c.call().await?; // warm-up
    }
    let mut lat = Vec::with_capacity(a.requests);
    for _ in 0..a.requests {
        let t = Instant::now();
        c.call().await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let mut tasks = Vec::new();
    for i in 0..a.concurrency {
        let mut c = Conn::open(&addrs[i % addrs.len()], path, model, a.prompt_tokens).await?;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                if c.call().await.is_err() {
                    break;
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                done.fetch_add(1, Ordering::Relaxed);
            }
            lat
        }));
    }
    let t = Instant::now();
    let mut loaded = Vec::new();
    for t in tasks {
        loaded.extend(t.await?);
    }
    let rps = done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    loaded.sort_by(f64::total_cmp);
    anyhow::ensure!(!loaded.is_empty(), "no request succeeded under load");
    Ok(Result1 {
        p50_ms: pct(&lat, 0.5),
        p99_ms: pct(&lat, 0.99),
        rps,
        loaded_p50_ms: pct(&loaded, 0.5),
        loaded_p99_ms: pct(&loaded, 0.99),
    })
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the replicas share, and how requests pay.
#[derive(Clone, Copy)]
struct Setup<'a> {
    store_url: Option<&'a str>,
    budgeted: bool,
}

fn start_conductor(upstream: &str, dir: &std::path::Path, setup: Setup<'_>) -> anyhow::Result<(Kill, String)> {
    std::fs::create_dir_all(dir)?;
    let cfg = dir.join("conductor.toml");
    let mut extra = String::new();
    if let Some(url) = setup.store_url {
        extra.push_str(&format!("\n[store]\nurl = \"{url}\"\n"));
    }
    if setup.budgeted {
        extra.push_str(&format!(
            "\n[[keys]]\nid = \"bench\"\nkey = \"{BENCH_KEY}\"\nbudget_usd = 1000000000.0\nbudget_period = \"total\"\n"
        ));
    }
    std::fs::write(
        &cfg,
        extra
            + &format!(
            "[local]\nenabled = false\n[books]\npath = \"{}/books.sqlite\"\n\n[[models]]\nid = \"static\"\nprovider = \"openai\"\nbase_url = \"http://{upstream}/v1\"\ninput_usd_per_mtok = 1.0\noutput_usd_per_mtok = 2.0\nmax_concurrency = 1024\nmax_queue = 4096\n\n[[models]]\nid = \"static-large\"\nprovider = \"openai\"\nbase_url = \"http://{upstream}/v1\"\ninput_usd_per_mtok = 10.0\noutput_usd_per_mtok = 30.0\ntier = \"large\"\nmax_concurrency = 1024\nmax_queue = 4096\n",
            dir.display()
        ),
    )?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        // Warnings only: an access line per request would flood the terminal.
        .env("CONDUCTOR_LOG", std::env::var("CONDUCTOR_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let addr =
        line.trim().strip_prefix("conductor listening on http://").context("conductor did not start")?.to_string();
    Ok((Kill(child), addr))
}

fn start_litellm(exe: &std::path::Path, upstream: &str, dir: &std::path::Path) -> anyhow::Result<(Kill, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let cfg = dir.join("litellm.yaml");
    std::fs::write(
        &cfg,
        format!(
            "model_list:\n  - model_name: static\n    litellm_params:\n      model: openai/static\n      api_base: http://{upstream}/v1\n      api_key: sk-static\nlitellm_settings:\n  telemetry: false\n  set_verbose: false\ngeneral_settings:\n  master_key: {BENCH_KEY}\n"
        ),
    )?;
    let child = Command::new(exe)
        .args(["--config"])
        .arg(&cfg)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--num_workers", "1"])
        .env("LITELLM_LOG", "ERROR")
        .env("LITELLM_TELEMETRY", "False")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let child = Kill(child);
    let addr = format!("127.0.0.1:{port}");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(180) {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Ok((child, addr));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("LiteLLM did not start within 180 s")
}

pub fn run(a: GatewayBenchArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let dir = std::env::temp_dir().join(format!("conductor-bench-gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let upstream = rt.block_on(static_upstream())?;
    let path = "/v1/chat/completions";
    println!(
        "gateway overhead benchmark: {} sequential requests (latency), {} connections × {:.0} s (throughput and loaded latency), {}-token prompt, loopback",
        a.requests, a.concurrency, a.seconds, a.prompt_tokens
    );
    let direct = rt.block_on(measure(std::slice::from_ref(&upstream), path, "static", &a))?;
    let mut rows: Vec<(String, Result1)> = vec![("direct (no proxy)".into(), direct)];
    let header = || {
        println!(
            "{:<36} {:>10} {:>10} {:>14} {:>14} {:>12} {:>16} {:>16}",
            "target", "p50 ms", "p99 ms", "p50 added ms", "p99 added ms", "req/s", "loaded p50 ms", "loaded p99 ms"
        )
    };
    let row = |name: &str, r: &Result1| {
        println!(
            "{:<36} {:>10.3} {:>10.3} {:>14.3} {:>14.3} {:>12.0} {:>16.3} {:>16.3}",
            name,
            r.p50_ms,
            r.p99_ms,
            r.p50_ms - direct.p50_ms,
            r.p99_ms - direct.p50_ms,
            r.rps,
            r.loaded_p50_ms,
            r.loaded_p99_ms
        )
    };
    header();
    row(&rows[0].0, &rows[0].1);
    let stores: Vec<(&str, Option<&str>)> =
        std::iter::once(("sqlite", None)).chain(a.store_url.as_deref().map(|u| ("postgres", Some(u)))).collect();
    for &n in &a.replicas {
        for &(store, store_url) in &stores {
            let setup = Setup { store_url, budgeted: a.budgeted };
            let mut procs = Vec::new();
            let mut addrs = Vec::new();
            for i in 0..n.max(1) {
                let (p, addr) = start_conductor(&upstream, &dir.join(format!("{store}-{n}-{i}")), setup)?;
                procs.push(p);
                addrs.push(addr);
            }
            let label = |model: &str| format!("conductor ×{n} {store} ({model})");
            let r = rt.block_on(measure(&addrs, path, "static", &a))?;
            row(&label("model id"), &r);
            rows.push((label("model id"), r));
            if a.auto {
                let r = rt.block_on(measure(&addrs, path, "auto", &a))?;
                row(&label("auto"), &r);
                rows.push((label("auto"), r));
            }
        }
    }
    if a.litellm.is_file() {
        eprintln!("starting LiteLLM proxy ({}) ...", a.litellm.display());
        let (_l, addr) = start_litellm(&a.litellm, &upstream, &dir)?;
        // The first requests are slow while LiteLLM warms up.
        rt.block_on(async {
            let mut c = Conn::open(&addr, path, "static", a.prompt_tokens).await?;
            for _ in 0..50 {
                c.call().await?;
            }
            anyhow::Ok(())
        })?;
        let r = rt.block_on(measure(std::slice::from_ref(&addr), path, "static", &a))?;
        row("litellm proxy", &r);
        rows.push(("litellm proxy".into(), r));
    } else {
        eprintln!(
            "LiteLLM not found at {} — install with `pip install 'litellm[proxy]'` and pass --litellm",
            a.litellm.display()
        );
    }
    let mut out = std::io::stdout().lock();
    let conductor = rows.iter().find(|r| r.0.starts_with("conductor")).map(|r| r.1);
    let litellm = rows.iter().find(|r| r.0.starts_with("litellm")).map(|r| r.1);
    if let (Some(c), Some(l)) = (conductor, litellm) {
        writeln!(out, "throughput conductor / litellm: {:.1}×", c.rps / l.rps)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
