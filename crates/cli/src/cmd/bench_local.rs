//! `conductor bench local`: for every library model, in its own child process (so peak
//! memory is per model): load time, prefill and decode speed, time to first token for a
//! ~500-token prompt, and aggregate decode throughput at 1, 2, 4 and 8 concurrent requests
//! through the batching engine; optionally side by side with llama.cpp (llama-cpp-python)
//! on the same GGUF files, prompt and thread count, runs interleaved so both see the same
//! machine. Then the memory of the whole library resident at once.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use conductor_local::{ChatMessage, EngineOptions, GenParams, Kind, Library};
use serde::{Deserialize, Serialize};

#[derive(Args)]
pub struct LocalBenchArgs {
    /// Repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Tokens generated per decode run (end of turn is suppressed so every run decodes this many).
    #[arg(long, default_value_t = 64)]
    decode_tokens: usize,
    /// Concurrency levels for the aggregate decode throughput.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    concurrency: Vec<usize>,
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
    /// Time to first token for a ~500-token prompt, alone.
    ttft_500_s: f64,
    /// (concurrent requests, aggregate decode tokens/s).
    concurrency: Vec<(usize, f64)>,
    /// Of 8 greedy requests decoded together, how many said exactly what they say alone,
    /// and after how many characters each other one diverged.
    batched_identical: usize,
    diverged_after_chars: Vec<usize>,
    peak_rss_mb: f64,
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

/// Greedy, exactly `n` tokens: end-of-turn tokens are banned, as in llama.cpp's loop.
fn fixed_length(model: &conductor_local::ChatModel, n: usize) -> anyhow::Result<GenParams> {
    let mut bias = Vec::new();
    for eot in ["<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"] {
        if let [t] = model.encode(eot)?.as_slice() {
            bias.push((*t, -100.0));
        }
    }
    Ok(GenParams { max_tokens: n, logit_bias: bias, ..Default::default() })
}

fn measure_one(lib: &Library, id: &str, runs: usize, a: &LocalBenchArgs) -> anyhow::Result<ModelBench> {
    let spec = lib.specs().iter().find(|s| s.id == id).with_context(|| format!("unknown model {id}"))?;
    if spec.kind == Kind::Embedder {
        let t = Instant::now();
        let e = lib.embedder()?;
        let load_s = t.elapsed().as_secs_f64();
        let texts: Vec<&str> = PREFILL_TEXT.split(". ").collect();
        let tokens: usize = e.token_counts(&texts)?.iter().sum();
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
    let fixed = fixed_length(&model, a.decode_tokens)?;
    let (mut prefill, mut decode) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let g = model.generate(&prefill_msgs, &one, &mut |_| true)?;
        prefill.push(g.prompt_tokens as f64 / g.timings.prefill.as_secs_f64());
        let g = model.generate(&[ChatMessage::user(DECODE_TEXT)], &fixed, &mut |_| true)?;
        if g.completion_tokens > 1 {
            decode.push((g.completion_tokens - 1) as f64 / g.timings.decode.as_secs_f64());
        }
    }
    // A ~500-token prompt, answered with one token: its time to first token.
    let long = [ChatMessage::user(format!("{PREFILL_TEXT}\n\n{PREFILL_TEXT}\n\n{PREFILL_TEXT}"))];
    let g = model.generate(&long, &one, &mut |_| true)?;
    let ttft_500_s = (g.timings.queued + g.timings.prefill).as_secs_f64();
    // Concurrent requests decode together; aggregate tokens/s over the whole wall time
    // (a short prompt each, so prefill is a small part of it).
    let mut concurrency = Vec::new();
    for &n in &a.concurrency {
        let t = Instant::now();
        let total: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..n)
                .map(|i| {
                    let (m, p) = (model.clone(), fixed.clone());
                    s.spawn(move || {
                        let ask = [ChatMessage::user(format!("{DECODE_TEXT} Start at {}.", i + 1))];
                        m.generate(&ask, &p, &mut |_| true).map(|g| g.completion_tokens)
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().map_err(|_| anyhow::anyhow!("bench thread panicked"))?)
                .sum::<anyhow::Result<usize, _>>()
        })?;
        concurrency.push((n, total as f64 / t.elapsed().as_secs_f64()));
    }
    let (batched_identical, diverged_after_chars) = batched_vs_alone(&model)?;
    Ok(ModelBench {
        id: id.into(),
        load_s,
        prompt_tokens,
        prefill_tps: median(prefill),
        decode_tps: median(decode),
        ttft_500_s,
        concurrency,
        batched_identical,
        diverged_after_chars,
        peak_rss_mb: rss_mb().1,
    })
}

/// Eight greedy requests alone, then all at once: how many answers are identical, and
/// where the others first differ (llama.cpp's batched kernels are not bit-identical).
fn batched_vs_alone(model: &std::sync::Arc<conductor_local::ChatModel>) -> anyhow::Result<(usize, Vec<usize>)> {
    const ASK: [&str; 8] = [
        "Name a fruit.",
        "Name a planet.",
        "Name a river.",
        "Name a colour.",
        "Name a city.",
        "Name a tree.",
        "Name a fish.",
        "Name a king.",
    ];
    let p = GenParams { max_tokens: 32, ..Default::default() };
    let alone: Vec<String> = ASK
        .iter()
        .map(|q| model.generate(&[ChatMessage::user(*q)], &p, &mut |_| true).map(|g| g.text))
        .collect::<Result<_, _>>()?;
    let together: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = ASK
            .iter()
            .map(|q| {
                let (m, p) = (model.clone(), p.clone());
                s.spawn(move || m.generate(&[ChatMessage::user(*q)], &p, &mut |_| true).map(|g| g.text))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("bench thread panicked"))?.map_err(anyhow::Error::from))
            .collect::<anyhow::Result<_>>()
    })?;
    let mut same = 0;
    let mut after = Vec::new();
    for (a, b) in alone.iter().zip(&together) {
        if a == b {
            same += 1;
        } else {
            after.push(a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count());
        }
    }
    Ok((same, after))
}

/// One llama-cpp-python run on the same file, prompt text and thread count.
fn llama_cpp(a: &LocalBenchArgs, lib: &Library, id: &str) -> anyhow::Result<LlamaCppBench> {
    let spec = lib.spec(id)?;
    let model = lib.chat_model(id)?;
    let prompt = model.render_prompt(&[ChatMessage::user(PREFILL_TEXT)])?;
    let dir = std::env::temp_dir().join(format!("conductor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let prompt_file = dir.join(format!("{id}.txt"));
    std::fs::write(&prompt_file, prompt)?;
    let script = conductor_core::install::shipped("scripts/bench_llama_cpp.py");
    let out = Command::new(&a.python)
        .arg(&script)
        .arg(&spec.file)
        .arg(&prompt_file)
        .args(["1".to_string(), a.decode_tokens.to_string(), num_threads().to_string()])
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

fn mean_of<T>(v: &[T], f: impl Fn(&T) -> f64) -> f64 {
    median(v.iter().map(f).collect())
}

pub fn run(a: LocalBenchArgs) -> anyhow::Result<()> {
    let parallel = a.concurrency.iter().copied().max().unwrap_or(1);
    let lib = Library::with_options(
        conductor_core::install::models_dir(),
        EngineOptions { parallel, threads: num_threads(), ..Default::default() },
    );
    if let Some(id) = &a.child {
        let r = measure_one(&lib, id, 1, &a)?;
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    if a.child_resident {
        // The library as `conductor serve` runs it (default engine options).
        let lib = Library::from_env();
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
        "conductor bench local — {} runs each (median), interleaved with llama.cpp: {}; {} decode tokens, {} threads",
        a.runs,
        if a.llama_cpp { "yes" } else { "no" },
        a.decode_tokens,
        num_threads()
    );
    println!(
        "{:<20} {:>6} {:>7} {:>10} {:>10} {:>8} {:>9} | {:>10} {:>10} {:>7} {:>7} | aggregate decode tok/s by concurrency",
        "model", "load s", "prompt", "prefill/s", "decode/s", "TTFT500", "peak RSS", "l.cpp pf/s", "l.cpp dc/s", "pf ×", "dc ×"
    );
    let child_args = |id: &str| {
        vec![
            "--child".into(),
            id.to_string(),
            "--decode-tokens".into(),
            a.decode_tokens.to_string(),
            "--concurrency".into(),
            a.concurrency.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
        ]
    };
    for id in &ids {
        let is_chat = lib.chat_ids().contains(id);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..a.runs.max(1) {
            let r: ModelBench = serde_json::from_slice(&child(&child_args(id))?)?;
            ours.push(r);
            if a.llama_cpp && is_chat {
                theirs.push(llama_cpp(&a, &lib, id)?);
            }
        }
        let Some(first) = ours.first() else { continue };
        let pf = mean_of(&ours, |r| r.prefill_tps);
        let dc = mean_of(&ours, |r| r.decode_tps);
        let (lp, ld, rp, rd) = if theirs.is_empty() {
            ("-".into(), "-".into(), "-".into(), "-".into())
        } else {
            let (l_pf, l_dc) = (mean_of(&theirs, |l| l.prefill_tps), mean_of(&theirs, |l| l.decode_tps));
            (format!("{l_pf:.1}"), format!("{l_dc:.1}"), format!("{:.2}", pf / l_pf), format!("{:.2}", dc / l_dc))
        };
        let identical: usize = ours.iter().map(|r| r.batched_identical).sum();
        let diverged: Vec<usize> = ours.iter().flat_map(|r| r.diverged_after_chars.clone()).collect();
        let curve: Vec<String> = first
            .concurrency
            .iter()
            .enumerate()
            .map(|(i, (n, _))| format!("{n}: {:.1}", mean_of(&ours, |r| r.concurrency.get(i).map_or(0.0, |c| c.1))))
            .collect();
        if is_chat {
            println!(
                "{:<20} {:>6.2} {:>7} {:>10.1} {:>10.1} {:>7.2}s {:>7.0}MB | {:>10} {:>10} {:>7} {:>7} | {}",
                id,
                mean_of(&ours, |r| r.load_s),
                first.prompt_tokens,
                pf,
                dc,
                mean_of(&ours, |r| r.ttft_500_s),
                mean_of(&ours, |r| r.peak_rss_mb),
                lp,
                ld,
                rp,
                rd,
                curve.join(", ")
            );
            println!(
                "{:<20} batched greedy vs alone: {identical}/{} identical; the others diverged after {:?} characters",
                "",
                8 * ours.len(),
                diverged
            );
        } else {
            println!(
                "{:<20} {:>6.2} {:>7} {:>10.1} {:>10} {:>8} {:>7.0}MB | (embedding tokens/s)",
                id,
                mean_of(&ours, |r| r.load_s),
                first.prompt_tokens,
                pf,
                "-",
                "-",
                mean_of(&ours, |r| r.peak_rss_mb)
            );
        }
    }
    if !a.no_resident {
        let out = child(&["--child-resident".into()])?;
        let v: serde_json::Value = serde_json::from_slice(&out)?;
        println!(
            "all three chat models + embedder resident together (serve's defaults): RSS {:.0} MB (peak {:.0} MB)",
            v["rss_mb"].as_f64().unwrap_or(0.0),
            v["peak_rss_mb"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}
