//! Turning a model's free-text answer into a runnable HumanEval program.

/// The code of the first fenced block (```python … ``` or ``` … ```), else the whole text.
pub fn extract(answer: &str) -> String {
    let Some(start) = answer.find("```") else { return answer.to_string() };
    let after = &answer[start + 3..];
    // Skip the info string (e.g. "python") up to the end of the line.
    let body = after.split_once('\n').map(|(_, b)| b).unwrap_or("");
    match body.find("```") {
        Some(end) => body[..end].to_string(),
        None => body.to_string(), // unterminated block (ran out of tokens): take the rest
    }
}

/// Program = completion (with the prompt's imports and signature if the model left them
/// out) + the task's tests + the call that runs them.
pub fn program(prompt: &str, answer: &str, test: &str, entry_point: &str) -> String {
    let code = extract(answer);
    let defines = code.lines().any(|l| l.trim_start().starts_with(&format!("def {entry_point}(")));
    let body = if defines {
        // Keep the prompt's imports and helper functions: models often drop them.
        format!("{prompt}\n    pass\n\n{code}")
    } else {
        // The model continued the body only.
        format!("{prompt}{code}")
    };
    format!("{body}\n\n{test}\n\ncheck({entry_point})\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_fenced_code() {
        assert_eq!(extract("Here:\n```python\ndef f():\n    return 1\n```\nDone"), "def f():\n    return 1\n");
        assert_eq!(extract("```\nx = 1\n```"), "x = 1\n");
        assert_eq!(extract("```python\ndef f():\n    return"), "def f():\n    return");
        assert_eq!(extract("    return 1\n"), "    return 1\n");
    }

    #[test]
    fn body_only_answers_are_appended_to_the_prompt() {
        let p =
            program("def f(x):\n    \"\"\"doc\"\"\"\n", "    return x\n", "def check(c):\n    assert c(1) == 1", "f");
        assert!(p.starts_with("def f(x):\n    \"\"\"doc\"\"\"\n    return x\n"), "{p}");
        assert!(p.ends_with("check(f)\n"));
    }
}
