//! The judge scorer, for open-ended prompts with a reference answer: a judge model (any
//! model the collector reaches: a library model or one of the config) is shown the
//! question, the reference and the answer, and asked whether the answer is correct. Its
//! first word decides; a reply with no verdict scores 0 and says so.

use super::Verdict;
use crate::collect::Answerer;
use std::sync::atomic::AtomicBool;

/// The judge's instruction (written down so that grades are reproducible).
pub const PROMPT: &str = "You are grading an answer to a question against a reference answer. The answer \
is correct if it reaches the same result as the reference, whatever its wording or working.\n\n\
Question: {question}\n\nReference answer: {reference}\n\nAnswer to grade: {answer}\n\n\
Is the answer correct? Reply with one word: yes or no.";

/// The verdict is one word; a little room for a leading quote or a capital.
pub const MAX_TOKENS: usize = 8;

/// The judge's message for one answer.
pub fn prompt(question: &str, reference: &str, answer: &str) -> String {
    PROMPT.replace("{question}", question).replace("{reference}", reference).replace("{answer}", answer)
}

/// `yes`/`correct` → true, `no`/`incorrect` → false, read from the reply's first word.
pub fn verdict(reply: &str) -> Option<bool> {
    let first = reply.split_whitespace().next()?.trim_matches(|c: char| !c.is_alphanumeric()).to_ascii_lowercase();
    match first.as_str() {
        "yes" | "correct" => Some(true),
        "no" | "incorrect" => Some(false),
        _ => None,
    }
}

/// Asks `judge` about `answer`.
pub fn score(
    answerer: &dyn Answerer,
    judge: &str,
    question: &str,
    reference: &str,
    answer: &str,
    seed: u64,
    stop: &AtomicBool,
) -> anyhow::Result<Verdict> {
    let reply = answerer.answer(judge, &prompt(question, reference, answer), MAX_TOKENS, seed, stop)?;
    let said = reply.text.trim();
    Ok(match verdict(said) {
        Some(true) => Verdict { score: 1.0, detail: format!("judge {judge}: yes") },
        Some(false) => Verdict { score: 0.0, detail: format!("judge {judge}: no") },
        None => Verdict { score: 0.0, detail: format!("judge {judge} gave no verdict: {said:?}") },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_word_only() {
        assert_eq!(verdict("Yes."), Some(true));
        assert_eq!(verdict("\"no\" — the reference says 7"), Some(false));
        assert_eq!(verdict("Correct"), Some(true));
        assert_eq!(verdict("incorrect, because"), Some(false));
        assert_eq!(verdict("The answer is yes"), None, "a verdict comes first or not at all");
        assert_eq!(verdict(""), None);
        let p = prompt("2+2?", "4", "four");
        assert!(p.contains("Question: 2+2?") && p.contains("Reference answer: 4") && p.contains("grade: four"));
    }
}
