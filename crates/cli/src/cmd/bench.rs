//! `conductor bench local`: load time, prefill and decode speed, peak memory of every
//! library model, each measured in its own child process so peak memory is per model;
//! optionally side by side with llama.cpp on the same GGUF files and prompts.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use conductor_local::{Arch, ChatMessage, GenParams, Library};
use serde::{Deserialize, Serialize};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Speed and memory of the embedded model library.
    Local(LocalBenchArgs),
    /// Gateway overhead (p50/p99 added latency, throughput) vs. the LiteLLM proxy.
    Gateway(super::bench_gateway::GatewayBenchArgs),
}

#[derive(Args)]
pub struct LocalBenchArgs {
    /// Repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Tokens generated per decode run.
    #[arg(long, default_value_t = 64)]
    decode_tokens: usize,
    /// Only these model ids (comma-separated).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Also run llama.cpp (llama-cpp-python in .venv-bench; `bash scripts/setup-bench.sh`).
    #[arg(long)]
    llama_cpp: bool,
    /// Python with llama_cpp installed.
    #[arg(long, default_value = ".venv-bench/bin/python")]
    python: PathBuf,
    /// Skip the measurement with every model resident at once.
    #[arg(long)]
    no_resident: bool,
    /// Internal: measure one model in this process and print JSON.
    #[arg(long, hide = true)]
    child: Option<String>,
    /// Internal: load everything at once and print resident memory as JSON.
    #[arg(long, hide = true)]
    child_resident: bool,
}

#[derive(Serialize, Deserialize, Debug, Default)]
struct ModelBench {
    id: String,
    load_s: f64,
    prompt_tokens: usize,
    prefill_tps: f64,
    decode_tps: f64,
    peak_rss_mb: f64,
    llama_cpp: Option<LlamaCppBench>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct LlamaCppBench {
    load_s: f64,
    prompt_tokens: usize,
    prefill_tps: f64,
    decode_tps: f64,
}

/// A fixed prompt of a few hundred tokens for the prefill measurement.
const PREFILL_TEXT: &str = "Summarise the following passage in one sentence.\n\nThe history of computing is the history of \
trading one scarce resource for another. Early machines traded human time for vacuum tubes; mainframes traded floor space for \
shared terminals; personal computers traded central control for local autonomy; the web traded local state for global reach. \
Each transition looked wasteful to the people who had optimised for the previous constraint, and each was justified only when \
the new resource became cheap enough that squandering it saved something dearer. Language models repeat the pattern: a large \
model spends compute to save the effort of choosing a smaller one, and routing spends a little prediction to save most of the \
compute. Whether that trade pays depends on how often the small model is right and how well we can tell in advance.";

const DECODE_TEXT: &str = "Write the numbers from 1 to 300 in words, separated by commas.";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

/// (VmRSS, VmHWM) of this process in MB, from /proc.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn measure_one(lib: &Library, id: &str, runs: usize, decode_tokens: usize) -> anyhow::Result<ModelBench> {
    let spec = lib.specs().iter().find(|s| s.id == id).with_context(|| format!("unknown model {id}"))?;
    if spec.arch == Arch::Bert {
        let t = Instant::now();
        let e = lib.embedder()?;
        let load_s = t.elapsed().as_secs_f64();
        let texts: Vec<&str> = PREFILL_TEXT.split(". ").collect();
        let tokens: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
        let mut tps = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            e.embed(&texts)?;
            tps.push(tokens as f64 / t.elapsed().as_secs_f64());
        }
        return Ok(ModelBench {
            id: id.into(),
            load_s,
            prompt_tokens: tokens,
            prefill_tps: median(tps),
            peak_rss_mb: rss_mb().1,
            ..Default::default()
        });
    }
    let t = Instant::now();
    let model = lib.chat_model(id)?;
    let load_s = t.elapsed().as_secs_f64();
    let prefill_msgs = [ChatMessage::user(PREFILL_TEXT)];
    let prompt_tokens = model.count_prompt_tokens(&prefill_msgs)?;
    let one = GenParams { max_tokens: 1, ..Default::default() };
    let mut prefill = Vec::new();
    for _ in 0..runs {
        let g = model.generate(&prefill_msgs, &one, &mut |_| true)?;
        prefill.push(g.prompt_tokens as f64 / g.timings.prefill.as_secs_f64());
    }
    let long = GenParams { max_tokens: decode_tokens, ..Default::default() };
    let mut decode = Vec::new();
    for _ in 0..runs {
        let g = model.generate(&[ChatMessage::user(DECODE_TEXT)], &long, &mut |_| true)?;
        if g.completion_tokens > 1 {
            decode.push((g.completion_tokens - 1) as f64 / g.timings.decode.as_secs_f64());
        }
    }
    Ok(ModelBench {
        id: id.into(),
        load_s,
        prompt_tokens,
        prefill_tps: median(prefill),
        decode_tps: median(decode),
        peak_rss_mb: rss_mb().1,
        llama_cpp: None,
    })
}

fn llama_cpp(a: &LocalBenchArgs, lib: &Library, id: &str) -> anyhow::Result<LlamaCppBench> {
    let model = lib.chat_model(id)?;
    let prompt = model.render_prompt(&[ChatMessage::user(PREFILL_TEXT)])?;
    let dir = std::env::temp_dir().join(format!("conductor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let prompt_file = dir.join(format!("{id}.txt"));
    std::fs::write(&prompt_file, prompt)?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/bench_llama_cpp.py");
    let out = Command::new(&a.python)
        .args([script, &model.spec().file.to_string_lossy(), &prompt_file.to_string_lossy()])
        .args([a.runs.to_string(), a.decode_tokens.to_string(), num_threads().to_string()])
        .output()
        .with_context(|| format!("running {} (install with `bash scripts/setup-bench.sh`)", a.python.display()))?;
    if !out.status.success() {
        anyhow::bail!("llama.cpp bench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn num_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn child(args: &[String]) -> anyhow::Result<Vec<u8>> {
    let out = Command::new(std::env::current_exe()?).args(["bench", "local"]).args(args).output()?;
    if !out.status.success() {
        anyhow::bail!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out.stdout)
}

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    let a = match c {
        BenchCommand::Local(a) => a,
        BenchCommand::Gateway(g) => return super::bench_gateway::run(g),
    };
    let lib = Library::from_env();
    if let Some(id) = &a.child {
        let r = measure_one(&lib, id, a.runs, a.decode_tokens)?;
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    if a.child_resident {
        for id in lib.chat_ids() {
            lib.chat_model(&id)?.generate(
                &[ChatMessage::user("Hi")],
                &GenParams { max_tokens: 4, ..Default::default() },
                &mut |_| true,
            )?;
        }
        lib.embedder()?.embed(&["warm up"])?;
        let (rss, hwm) = rss_mb();
        println!("{}", serde_json::json!({"rss_mb": rss, "peak_rss_mb": hwm}));
        return Ok(());
    }
    let ids: Vec<String> =
        if a.models.is_empty() { lib.specs().iter().map(|s| s.id.clone()).collect() } else { a.models.clone() };
    println!(
        "conductor bench local — {} runs each (median), {} decode tokens, {} threads",
        a.runs,
        a.decode_tokens,
        num_threads()
    );
    println!(
        "{:<20} {:>7} {:>8} {:>12} {:>11} {:>10} | {:>12} {:>11} {:>8} {:>8}",
        "model",
        "load s",
        "prompt",
        "prefill t/s",
        "decode t/s",
        "peak RSS",
        "llama.cpp pf",
        "llama.cpp dc",
        "pf ratio",
        "dc ratio"
    );
    for id in &ids {
        let out = child(&[
            "--child".into(),
            id.clone(),
            "--runs".into(),
            a.runs.to_string(),
            "--decode-tokens".into(),
            a.decode_tokens.to_string(),
        ])?;
        let mut r: ModelBench = serde_json::from_slice(&out)?;
        let is_chat = lib.chat_ids().contains(id);
        if a.llama_cpp && is_chat {
            r.llama_cpp = Some(llama_cpp(&a, &lib, id)?);
        }
        let (lp, ld, rp, rd) = match &r.llama_cpp {
            Some(l) => (
                format!("{:.1}", l.prefill_tps),
                format!("{:.1}", l.decode_tps),
                format!("{:.2}x", r.prefill_tps / l.prefill_tps),
                format!("{:.2}x", r.decode_tps / l.decode_tps),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let decode = if is_chat { format!("{:.1}", r.decode_tps) } else { "-".into() };
        let unit = if is_chat { "" } else { " (embed)" };
        println!(
            "{:<20} {:>7.2} {:>8} {:>12.1} {:>11} {:>8.0}MB | {:>12} {:>11} {:>8} {:>8}{unit}",
            r.id, r.load_s, r.prompt_tokens, r.prefill_tps, decode, r.peak_rss_mb, lp, ld, rp, rd
        );
    }
    if !a.no_resident {
        let out = child(&["--child-resident".into()])?;
        let v: serde_json::Value = serde_json::from_slice(&out)?;
        println!(
            "all three chat models + embedder resident together: RSS {:.0} MB (peak {:.0} MB)",
            v["rss_mb"].as_f64().unwrap_or(0.0),
            v["peak_rss_mb"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}
