//! Length and structure features: how long a prompt is and what it is made of (digits,
//! maths, code, listed options, questions). A difficulty signal no bag of words carries
//! well — long multi-step word problems and ten-option questions are harder for every
//! model — and it costs a single pass over the text.

use super::{SparseVec, Standardizer};
use serde::{Deserialize, Serialize};

/// Names of the raw features, in slot order (for documentation and debugging).
pub const NAMES: [&str; 14] = [
    "log chars",
    "log words",
    "log lines",
    "mean word length",
    "digit share",
    "upper-case share",
    "punctuation share",
    "non-ASCII share",
    "maths symbols per 100 chars",
    "code markers",
    "question marks",
    "option lines (A. … J.)",
    "log numbers",
    "sentences per line",
];

/// Raw features of one text (before standardisation).
pub fn raw(text: &str) -> [f32; 14] {
    let chars = text.chars().count().max(1) as f32;
    let words: Vec<&str> = text.split_whitespace().collect();
    let lines = text.lines().count().max(1) as f32;
    let share = |f: fn(&char) -> bool| text.chars().filter(f).count() as f32 / chars;
    let maths = text.chars().filter(|c| "=+^*/<>∫∑√π×÷≤≥".contains(*c)).count() as f32;
    let code = ["```", "def ", "return ", "{", "};", "import ", "#include", "=>", "()"]
        .iter()
        .filter(|m| text.contains(*m))
        .count() as f32;
    let options = text
        .lines()
        .filter(|l| {
            let b = l.trim_start().as_bytes();
            b.len() >= 2 && (b'A'..=b'J').contains(&b[0]) && (b[1] == b'.' || b[1] == b')')
        })
        .count() as f32;
    let numbers = text.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).count() as f32;
    let sentences = text.matches(['.', '?', '!']).count() as f32;
    [
        chars.ln_1p(),
        (words.len() as f32).ln_1p(),
        lines.ln_1p(),
        words.iter().map(|w| w.chars().count() as f32).sum::<f32>() / words.len().max(1) as f32,
        share(char::is_ascii_digit),
        share(|c| c.is_uppercase()),
        share(char::is_ascii_punctuation),
        share(|c| !c.is_ascii()),
        100.0 * maths / chars,
        code,
        text.matches('?').count() as f32,
        options,
        numbers.ln_1p(),
        sentences / lines,
    ]
}

/// Standardises each feature with the training prompts' mean and deviation, then scales
/// the vector to unit length so that it weighs like the other (L2-normalised) kinds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StructureScaler {
    #[serde(flatten)]
    scale: Standardizer,
}

impl StructureScaler {
    pub fn fit(texts: &[&str]) -> StructureScaler {
        let rows: Vec<[f32; 14]> = texts.iter().map(|t| raw(t)).collect();
        StructureScaler { scale: Standardizer::fit(&rows) }
    }

    pub fn dim(&self) -> usize {
        NAMES.len()
    }

    pub fn transform(&self, text: &str) -> SparseVec {
        SparseVec::from_dense(&self.scale.z(&raw(text))).normalized()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_it_says() {
        let r = raw("What is 12 + 30?\nA. 42\nB. 43\nC) 44");
        assert_eq!(r[10], 1.0, "one question mark");
        assert_eq!(r[11], 3.0, "three option lines");
        assert!(r[4] > 0.1, "digits");
        let code = raw("def f(x):\n    return x + 1\n");
        assert!(code[9] >= 2.0, "def and return are code markers: {}", code[9]);
        assert_eq!(raw("")[0], 1f32.ln_1p());
    }

    #[test]
    fn standardised_unit_vectors_and_constant_features_stay_finite() {
        let texts = ["short", "a much longer prompt with several words in it", "What is 2+2?"];
        let s = StructureScaler::fit(&texts);
        for t in texts {
            let v = s.transform(t);
            assert!(v.val.iter().all(|x| x.is_finite()));
            assert!((v.norm() - 1.0).abs() < 1e-4 || v.nnz() == 0);
        }
        // A different long prompt lands far from a short one.
        let a = s.transform("hi").to_dense(14);
        let b = s.transform(&"word ".repeat(200)).to_dense(14);
        let cos: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!(cos < 0.5, "{cos}");
    }
}
