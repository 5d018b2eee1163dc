//! Finding the final number of a free-text math answer, robustly: the `#### n` line the
//! template asks for, else "the answer is n", else a boxed answer, else the last number.

/// Parse a number as people write it: `1,234`, `$18`, `-3.5`, `42.`, `7%`.
pub fn parse_number(s: &str) -> Option<f64> {
    let cleaned: String = s.trim().chars().filter(|c| !matches!(c, ',' | '$' | '€' | '£' | '%' | '*')).collect();
    let cleaned = cleaned.trim().trim_end_matches('.');
    let token = cleaned.split_whitespace().next()?;
    token.trim_end_matches(['.', ':', ';', ')']).parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Every number in `text`, in order (commas inside digits are thousands separators).
fn numbers(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            || (chars[i] == '-'
                && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
                && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()));
        if !starts {
            i += 1;
            continue;
        }
        let mut s = String::new();
        if chars[i] == '-' {
            s.push('-');
            i += 1;
        }
        while i < chars.len() {
            let c = chars[i];
            let next_digit = chars.get(i + 1).is_some_and(|c| c.is_ascii_digit());
            if c.is_ascii_digit() {
                s.push(c);
            } else if c == ','
                && next_digit
                && chars.get(i + 2).is_some_and(|c| c.is_ascii_digit())
                && chars.get(i + 3).is_some_and(|c| c.is_ascii_digit())
            {
                // thousands separator: skip
            } else if c == '.' && next_digit && !s.contains('.') {
                s.push(c);
            } else {
                break;
            }
            i += 1;
        }
        if let Ok(v) = s.parse::<f64>() {
            out.push(v);
        }
    }
    out
}

/// The answer's final number, if any.
pub fn final_number(text: &str) -> Option<f64> {
    // 1. The format we asked for.
    if let Some(after) = text.rsplit("####").next().filter(|_| text.contains("####")) {
        if let Some(v) = numbers(after).first() {
            return Some(*v);
        }
    }
    let lower = text.to_lowercase();
    // 2. A LaTeX box.
    if let Some(pos) = lower.rfind("\\boxed{") {
        if let Some(v) = numbers(&text[pos..]).first() {
            return Some(*v);
        }
    }
    // 3. "the answer is …" / "final answer: …".
    for cue in ["final answer", "the answer is", "answer:"] {
        if let Some(pos) = lower.rfind(cue) {
            if let Some(v) = numbers(&text[pos + cue.len()..]).first() {
                return Some(*v);
            }
        }
    }
    // 4. The last number anywhere.
    numbers(text).last().copied()
}

/// Numeric equality with a tolerance for float formatting (`18` == `18.00`).
pub fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_numbers() {
        assert_eq!(parse_number(" 1,234 "), Some(1234.0));
        assert_eq!(parse_number("$18."), Some(18.0));
        assert_eq!(parse_number("-3.5"), Some(-3.5));
        assert_eq!(parse_number("abc"), None);
    }

    #[test]
    fn prefers_the_requested_format() {
        assert_eq!(final_number("16 - 3 - 4 = 9 eggs, 9 * 2 = 18\n#### 18"), Some(18.0));
        assert_eq!(final_number("So she makes $1,250.\n#### $1,250"), Some(1250.0));
        assert_eq!(final_number("#### -7 degrees"), Some(-7.0));
    }

    #[test]
    fn falls_back_to_cues_then_last_number() {
        assert_eq!(final_number("There are 3 cats and 4 dogs. The answer is 7 pets in total, not 8."), Some(7.0));
        assert_eq!(final_number("Final answer: 42"), Some(42.0));
        assert_eq!(final_number("so $\\boxed{12}$ apples; check 3+9"), Some(12.0));
        assert_eq!(final_number("5 apples plus 6 apples gives 11"), Some(11.0));
        assert_eq!(final_number("I don't know."), None);
    }

    #[test]
    fn decimals_and_hyphens() {
        assert_eq!(final_number("It costs 2.50 dollars."), Some(2.5));
        assert_eq!(final_number("a 3-year-old and 12"), Some(12.0));
        assert_eq!(final_number("Sentence ends with 15."), Some(15.0));
        assert!(same(18.0, 18.000000001));
        assert!(!same(18.0, 18.5));
    }
}
