//! `conductor models`, `conductor chat`, `conductor embed`: the embedded model library
//! from the terminal.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use conductor_local::{ChatMessage, GenParams, Library};

#[derive(Args)]
pub struct ModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ChatArgs {
    /// Library model id (see `conductor models`).
    #[arg(long, short)]
    model: String,
    /// The user message.
    prompt: String,
    /// Optional system message (otherwise the model's default).
    #[arg(long)]
    system: Option<String>,
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long)]
    top_p: Option<f64>,
    #[arg(long, default_value_t = 299_792_458)]
    seed: u64,
    /// Stop sequence (repeatable).
    #[arg(long)]
    stop: Vec<String>,
}

#[derive(Args)]
pub struct EmbedArgs {
    /// Texts to embed.
    #[arg(required = true)]
    texts: Vec<String>,
}

fn human_bytes(b: u64) -> String {
    if b == 0 {
        "-".into()
    } else if b >= 1 << 30 {
        format!("{:.2} GB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MB", b as f64 / (1u64 << 20) as f64)
    }
}

pub fn models(a: ModelsArgs) -> anyhow::Result<()> {
    let lib = Library::from_env();
    if a.json {
        let rows: Vec<_> = lib
            .specs()
            .iter()
            .map(|s| serde_json::json!({"id": s.id, "arch": s.arch, "params": s.params, "quant": s.quant,
                "tier": s.tier.map_or("embedding", |t| t.as_str()), "context_length": s.context_length, "file": s.file, "file_size": s.file_size(), "present": s.present()}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<20} {:<6} {:>7} {:<7} {:<10} {:>8} {:>9}  status",
        "id", "arch", "params", "quant", "tier", "context", "size"
    );
    for s in lib.specs() {
        let status = if s.present() { "present".to_string() } else { format!("MISSING ({})", s.file.display()) };
        println!(
            "{:<20} {:<6} {:>6.0}M {:<7} {:<10} {:>8} {:>9}  {}",
            s.id,
            s.arch.as_str(),
            s.params as f64 / 1e6,
            s.quant,
            s.tier.map_or("embedding", |t| t.as_str()),
            s.context_length,
            human_bytes(s.file_size()),
            status
        );
    }
    if lib.specs().iter().any(|s| !s.present()) {
        println!("\nmissing models: run `bash scripts/setup.sh` (models dir: {})", lib.dir().display());
    }
    Ok(())
}

pub fn chat(a: ChatArgs) -> anyhow::Result<()> {
    let lib = Library::from_env();
    let model = lib.chat_model(&a.model)?;
    let mut messages = Vec::new();
    if let Some(s) = a.system {
        messages.push(ChatMessage::system(s));
    }
    messages.push(ChatMessage::user(a.prompt));
    let params = GenParams {
        max_tokens: a.max_tokens,
        temperature: a.temperature,
        top_p: a.top_p,
        seed: a.seed,
        stop: a.stop,
        ..Default::default()
    };
    let mut out = std::io::stdout().lock();
    let g = model.generate(&messages, &params, &mut |piece| {
        // A closed pipe (e.g. `| head`) cancels the generation instead of panicking.
        out.write_all(piece.as_bytes()).and_then(|_| out.flush()).is_ok()
    })?;
    let _ = writeln!(out);
    let decode_tps = if g.completion_tokens > 1 && !g.timings.decode.is_zero() {
        (g.completion_tokens - 1) as f64 / g.timings.decode.as_secs_f64()
    } else {
        0.0
    };
    eprintln!(
        "[{}] prompt {} tokens, completion {} tokens, finish_reason={}, load {:.2}s, prefill {:.2}s, decode {:.1} tok/s",
        model.id(), g.prompt_tokens, g.completion_tokens, g.finish_reason.as_str(),
        model.load_time().as_secs_f64(), g.timings.prefill.as_secs_f64(), decode_tps
    );
    Ok(())
}

pub fn embed(a: EmbedArgs) -> anyhow::Result<()> {
    let lib = Library::from_env();
    let e = lib.embedder()?;
    let texts: Vec<&str> = a.texts.iter().map(String::as_str).collect();
    let vecs = e.embed(&texts).context("embedding")?;
    for (t, v) in texts.iter().zip(&vecs) {
        println!("{}", serde_json::json!({"text": t, "dim": v.len(), "embedding": v}));
    }
    Ok(())
}
