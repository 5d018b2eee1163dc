//! A judge's confidence as a signal: a library model is shown the question and the answer
//! and asked whether the answer is correct; its probability of saying "yes" (from the
//! log-probabilities of its first token, normalised over yes and no) is the signal — the
//! judge model of the book's agent chapter, read as a number instead of a word.

use crate::collect::Answerer;
use std::sync::atomic::AtomicBool;

/// The judge's instruction (written down so that signals are reproducible).
pub const PROMPT: &str = "Here is a question and a proposed answer.\n\nQuestion: {question}\n\n\
Proposed answer: {answer}\n\nIs the proposed answer correct? Reply with one word: yes or no.";

/// Only the end of a long answer is shown: it carries the result, and the judge's prompt
/// stays short enough to read quickly on a CPU.
pub const ANSWER_TAIL_CHARS: usize = 1200;

/// Alternatives asked for at the first token.
pub const TOP_K: usize = 20;

/// The judge's message for one answer.
pub fn prompt(question: &str, answer: &str) -> String {
    let start = answer.char_indices().rev().nth(ANSWER_TAIL_CHARS).map_or(0, |(i, _)| i);
    let tail = if start > 0 { format!("…{}", &answer[start..]) } else { answer.to_string() };
    PROMPT.replace("{question}", question).replace("{answer}", &tail)
}

/// P(yes) / (P(yes) + P(no)) from the first token's alternatives (any case, any leading
/// space); none when neither word is among them.
pub fn p_yes(alternatives: &[(String, f32)]) -> Option<f64> {
    let mass = |word: &str| -> f64 {
        alternatives
            .iter()
            .filter(|(t, _)| t.trim().trim_matches(|c: char| !c.is_alphanumeric()).eq_ignore_ascii_case(word))
            .map(|(_, lp)| f64::from(*lp).exp())
            .sum()
    };
    let (yes, no) = (mass("yes"), mass("no"));
    (yes + no > 0.0).then(|| yes / (yes + no))
}

/// Asks `judge` about `answer`; none when it said neither yes nor no.
pub fn judge(
    answerer: &dyn Answerer,
    judge: &str,
    question: &str,
    answer: &str,
    seed: u64,
    stop: &AtomicBool,
) -> anyhow::Result<Option<f64>> {
    let alternatives = answerer.first_token_alternatives(judge, &prompt(question, answer), TOP_K, seed, stop)?;
    Ok(p_yes(&alternatives))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_against_no_whatever_the_spelling() {
        let alt = |v: &[(&str, f32)]| v.iter().map(|(t, p)| (t.to_string(), p.ln())).collect::<Vec<_>>();
        let p = p_yes(&alt(&[("Yes", 0.6), (" yes", 0.1), ("No", 0.2), ("Maybe", 0.1)])).unwrap();
        assert!((p - 0.7 / 0.9).abs() < 1e-6, "{p}");
        assert_eq!(p_yes(&alt(&[("The", 0.9)])), None);
        let long = "x".repeat(5000) + "#### 42";
        let pr = prompt("q?", &long);
        assert!(pr.contains("…") && pr.contains("#### 42") && pr.len() < 1500, "{}", pr.len());
        assert!(prompt("q?", "short").contains("Proposed answer: short\n"));
    }
}
