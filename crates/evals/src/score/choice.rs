//! Multiple-choice answers: the letter on the `#### X` line the template asks for, else
//! "the answer is (X)" / "Answer: X", else the last standalone capital letter A–J.

/// The chosen letter of a free-text answer, if any.
pub fn final_letter(text: &str) -> Option<char> {
    let letter = |s: &str| {
        let t = s.trim().trim_start_matches(['(', '*', ' ']).trim();
        t.chars()
            .next()
            .filter(|c| ('A'..='J').contains(c) && t[1..].chars().next().is_none_or(|n| !n.is_alphanumeric()))
    };
    if let Some(l) = text.rsplit("####").next().filter(|_| text.contains("####")).and_then(letter) {
        return Some(l);
    }
    let lower = text.to_lowercase();
    for marker in ["the answer is", "answer:"] {
        if let Some(pos) = lower.rfind(marker) {
            if let Some(l) = text.get(pos + marker.len()..).and_then(letter) {
                return Some(l);
            }
        }
    }
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    words
        .iter()
        .rev()
        .find_map(|w| (w.len() == 1).then(|| w.chars().next()).flatten().filter(|c| ('A'..='J').contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_letter_however_it_is_written() {
        assert_eq!(final_letter("Reasoning...\n#### C"), Some('C'));
        assert_eq!(final_letter("so the answer is (B)."), Some('B'));
        assert_eq!(final_letter("Answer: D"), Some('D'));
        assert_eq!(final_letter("I think it is E, since A fails"), Some('A'));
        assert_eq!(final_letter("no idea"), None);
        assert_eq!(final_letter("#### Because"), None, "a word is not a letter");
    }
}
