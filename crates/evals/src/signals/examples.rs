//! The task-native check a deployed system can run without the hidden tests: the `>>>`
//! examples in a code prompt's docstring, run against the generated function in the
//! sandbox with Python's `doctest`.

use crate::score::code;
use crate::score::sandbox::{self, Limits, Outcome};

/// Exit codes of the doctest harness: all examples passed, some failed, none to run.
const ALL_PASSED: i32 = 0;
const SOME_FAILED: i32 = 3;
const NO_EXAMPLES: i32 = 4;

/// The docstring examples (`>>> call` lines and their expected output) of the prompt's
/// function; none when the prompt has no `>>>` example.
pub fn docstring_examples(prompt: &str) -> Option<String> {
    let lines: Vec<&str> = prompt.lines().collect();
    let first = lines.iter().position(|l| l.trim_start().starts_with(">>>"))?;
    let mut out = Vec::new();
    for l in &lines[first..] {
        let t = l.trim();
        // The docstring ends at its closing quotes (alone or after the last output).
        match t.find("\"\"\"").or_else(|| t.find("'''")) {
            Some(end) => {
                out.push(t[..end].to_string());
                break;
            }
            None => out.push(t.to_string()),
        }
    }
    Some(out.join("\n").trim_end().to_string() + "\n")
}

/// The program: the answer's code (completed as the scorer completes it) followed by a
/// doctest run of the examples; its exit code says how they went.
pub fn program(prompt: &str, answer: &str, entry_point: &str, examples: &str) -> String {
    let body = code::program(prompt, answer, "def check(candidate):\n    pass", entry_point);
    let quoted = serde_json::to_string(examples).unwrap_or_else(|_| "\"\"".into());
    format!(
        "{body}\nimport doctest as _dt, sys as _sys\n\
         _t = _dt.DocTestParser().get_doctest({quoted}, dict(globals()), 'examples', None, 0)\n\
         _r = _dt.DocTestRunner(optionflags=_dt.ELLIPSIS | _dt.NORMALIZE_WHITESPACE)\n\
         _r.run(_t, out=lambda s: None)\n\
         _sys.exit({NO_EXAMPLES} if _r.tries == 0 else ({ALL_PASSED} if _r.failures == 0 else {SOME_FAILED}))\n"
    )
}

/// 1 when the answer passes every docstring example, 0 when it fails one (or does not
/// run); none when the prompt has no examples to run.
pub fn check(prompt: &str, answer: &str, entry_point: &str, limits: &Limits) -> anyhow::Result<Option<f64>> {
    let Some(examples) = docstring_examples(prompt) else { return Ok(None) };
    let run = sandbox::run_python(&program(prompt, answer, entry_point, &examples), limits)?;
    Ok(match run.outcome {
        Outcome::Passed => Some(1.0),
        Outcome::Failed { code, .. } if code == NO_EXAMPLES => None,
        _ => Some(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = "def add(a, b):\n    \"\"\" Add two numbers.\n    >>> add(2, 3)\n    5\n    >>> add(-1, 1)\n    0\n    \"\"\"\n";

    #[test]
    fn finds_the_examples() {
        assert_eq!(docstring_examples(PROMPT).unwrap(), ">>> add(2, 3)\n5\n>>> add(-1, 1)\n0\n");
        assert_eq!(docstring_examples("def f():\n    \"\"\"No examples.\"\"\"\n"), None);
    }

    #[test]
    fn runs_them_against_the_answer() {
        let limits = Limits::default();
        let right = "```python\ndef add(a, b):\n    return a + b\n```";
        let wrong = "```python\ndef add(a, b):\n    return a - b\n```";
        let broken = "```python\ndef add(a, b):\n    return a +\n```";
        assert_eq!(check(PROMPT, right, "add", &limits).unwrap(), Some(1.0));
        assert_eq!(check(PROMPT, wrong, "add", &limits).unwrap(), Some(0.0));
        assert_eq!(check(PROMPT, broken, "add", &limits).unwrap(), Some(0.0));
        assert_eq!(check("def add(a, b):\n    \"\"\"Adds.\"\"\"\n", right, "add", &limits).unwrap(), None);
    }
}
