//! Automatic scoring: 1.0 for a right answer, 0.0 for a wrong one.

pub mod choice;
pub mod code;
pub mod judge;
pub mod number;
/// Generated code runs in the shared sandbox crate.
pub use conductor_sandbox as sandbox;

use crate::tasks::{Check, Task};

/// What the scorer decided and why (kept next to the record for auditing).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub score: f64,
    pub detail: String,
}

/// Score `answer` to `task` (a judged task is scored by [`judge::score`], which needs a model).
pub fn score(task: &Task, answer: &str, limits: &sandbox::Limits) -> anyhow::Result<Verdict> {
    match &task.check {
        Check::Judge { .. } => anyhow::bail!("{} is scored by a judge model: use score::judge", task.id),
        Check::Number(gold) => Ok(match number::final_number(answer) {
            Some(got) if number::same(got, *gold) => Verdict { score: 1.0, detail: format!("answer {got}") },
            Some(got) => Verdict { score: 0.0, detail: format!("answer {got}, expected {gold}") },
            None => Verdict { score: 0.0, detail: "no number in the answer".into() },
        }),
        Check::Choice(gold) => Ok(match choice::final_letter(answer) {
            Some(got) if got == *gold => Verdict { score: 1.0, detail: format!("answer {got}") },
            Some(got) => Verdict { score: 0.0, detail: format!("answer {got}, expected {gold}") },
            None => Verdict { score: 0.0, detail: "no answer letter".into() },
        }),
        Check::Python { prompt, test, entry_point } => {
            let program = code::program(prompt, answer, test, entry_point);
            let run = sandbox::run_python(&program, limits)?;
            Ok(Verdict { score: if run.passed() { 1.0 } else { 0.0 }, detail: run.summary() })
        }
    }
}
