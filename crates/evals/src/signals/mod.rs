//! Answer signals beyond the answering model's own token probabilities, computed after
//! collection and stored with each record (`Record::judge_p_yes`,
//! `Record::examples_pass`): a judge model's P("yes") that the answer is correct, and —
//! for code — whether the answer passes the examples in the prompt's docstring.

pub mod examples;
pub mod judge;

use crate::collect::Answerer;
use crate::score::sandbox::Limits;
use crate::tasks::{Check, Task};
use conductor_core::records::Record;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which signals to add.
pub struct Wanted<'a> {
    /// The library model asked for P("yes").
    pub judge: Option<&'a str>,
    /// Run code answers on their prompt's docstring examples.
    pub examples: bool,
    /// Only records of these answering models (empty: all).
    pub models: &'a [String],
}

/// Adds the wanted signals to every record that lacks them and has an answer
/// (`response`); returns how many records changed. `tasks` give code prompts' entry points.
/// Stops between records when `stop` is raised; what was done stays in `records`.
pub fn add(
    records: &mut [Record],
    tasks: &[Task],
    want: &Wanted<'_>,
    answerer: &dyn Answerer,
    limits: &Limits,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<usize> {
    let by_id: HashMap<&str, &Task> = tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let todo: Vec<usize> = (0..records.len())
        .filter(|&i| want.models.is_empty() || want.models.contains(&records[i].model))
        .filter(|&i| records[i].response.is_some())
        .collect();
    let mut changed = 0;
    for (k, &i) in todo.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let r = &mut records[i];
        let answer = r.response.clone().unwrap_or_default();
        let mut touched = false;
        if want.examples && r.examples_pass.is_none() {
            if let Some(Check::Python { prompt, entry_point, .. }) = by_id.get(r.prompt_id.as_str()).map(|t| &t.check) {
                r.examples_pass = examples::check(prompt, &answer, entry_point, limits)?;
                touched |= r.examples_pass.is_some();
            }
        }
        if let (Some(j), None) = (want.judge, r.judge_p_yes) {
            r.judge_p_yes = judge::judge(answerer, j, &r.prompt, &answer, 0, stop)?;
            touched |= r.judge_p_yes.is_some();
        }
        changed += usize::from(touched);
        on_progress(k + 1, todo.len());
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Answer;

    /// A judge that is sure of answers containing "42".
    struct Judge;
    impl Answerer for Judge {
        fn check(&self, _: &str) -> anyhow::Result<()> {
            Ok(())
        }
        fn answer(&self, _: &str, _: &str, _: usize, _: u64, _: &AtomicBool) -> anyhow::Result<Answer> {
            anyhow::bail!("not used")
        }
        fn first_token_alternatives(
            &self,
            _: &str,
            prompt: &str,
            _: usize,
            _: u64,
            _: &AtomicBool,
        ) -> anyhow::Result<Vec<(String, f32)>> {
            let p_yes: f32 = if prompt.contains("Proposed answer: 42") { 0.9 } else { 0.2 };
            Ok(vec![("Yes".into(), p_yes.ln()), ("No".into(), (1.0 - p_yes).ln())])
        }
    }

    fn rec(id: &str, model: &str, response: Option<&str>) -> Record {
        Record {
            prompt_id: id.into(),
            model: model.into(),
            response: response.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn adds_what_is_missing_to_the_chosen_models() {
        let task = Task {
            id: "humaneval/0".into(),
            dataset: "humaneval".into(),
            question: String::new(),
            check: Check::Python {
                prompt: "def one():\n    \"\"\"\n    >>> one()\n    1\n    \"\"\"\n".into(),
                test: String::new(),
                entry_point: "one".into(),
            },
        };
        let mut rs = vec![
            rec("gsm8k/1", "a", Some("42")),
            rec("gsm8k/2", "a", Some("41")),
            rec("gsm8k/3", "a", None),
            rec("gsm8k/1", "b", Some("42")),
            rec("humaneval/0", "a", Some("```python\ndef one():\n    return 1\n```")),
        ];
        let want = Wanted { judge: Some("j"), examples: true, models: &["a".to_string()] };
        let stop = AtomicBool::new(false);
        let n = add(&mut rs, &[task], &want, &Judge, &Limits::default(), &stop, &mut |_, _| {}).unwrap();
        assert_eq!(n, 3, "three answers of model a");
        assert!((rs[0].judge_p_yes.unwrap() - 0.9).abs() < 1e-6 && (rs[1].judge_p_yes.unwrap() - 0.2).abs() < 1e-6);
        assert_eq!((rs[2].judge_p_yes, rs[3].judge_p_yes), (None, None), "no answer; another model");
        assert_eq!(rs[4].examples_pass, Some(1.0));
        assert_eq!(rs[0].examples_pass, None, "not code");
    }
}
