//! Benchmark tasks read from the repository's `data/` folder: each is a prompt plus what is needed to
//! score an answer automatically.

pub mod custom;
pub mod gsm8k;
pub mod humaneval;

/// How an answer to a task is judged.
#[derive(Debug, Clone)]
pub enum Check {
    /// The final number of the answer must equal this.
    Number(f64),
    /// The chosen letter (A–J) must be this one.
    Choice(char),
    /// The completed function must pass these unit tests (HumanEval format).
    Python { prompt: String, test: String, entry_point: String },
    /// A judge model decides whether the answer agrees with this reference answer.
    Judge { reference: String },
}

/// One benchmark prompt.
#[derive(Debug, Clone)]
pub struct Task {
    /// Stable id, e.g. `gsm8k/17`, `humaneval/HumanEval/0`.
    pub id: String,
    pub dataset: String,
    /// The problem as a user would pose it (what the router sees).
    pub question: String,
    pub check: Check,
}

/// Load a task set: a bundled benchmark by name from the data folder, or `file:<path>` for
/// the user's own prompts (see [`custom`]).
pub fn load(name: &str, data_dir: &std::path::Path) -> anyhow::Result<Vec<Task>> {
    match name {
        "gsm8k" => gsm8k::load(data_dir),
        "humaneval" => humaneval::load(data_dir),
        other => match other.strip_prefix("file:") {
            Some(path) => custom::load(std::path::Path::new(path)),
            None => anyhow::bail!("unknown task set '{other}' (known: gsm8k, humaneval, file:<prompts.jsonl>)"),
        },
    }
}
