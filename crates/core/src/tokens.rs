//! Token-count estimation for when records carry no measured counts.
//!
//! Rule (stated so that costs are reproducible): one token per 4 characters of text,
//! rounded up, at least 1 — OpenAI's published rule of thumb for English text. It
//! overestimates a little for code and underestimates for non-Latin scripts; prices only
//! need the right order of magnitude to rank models.

/// Estimated number of tokens in `text` (`ceil(chars / 4)`, at least 1).
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4).max(1)
}

/// Completion length assumed when neither a measurement nor a response text exists.
pub const DEFAULT_COMPLETION_TOKENS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn four_chars_per_token_rounded_up() {
        assert_eq!(estimate_tokens(""), 1);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("ééééé"), 2);
    }
}
