//! Stop-sequence handling for streamed text: text is released only once it can no
//! longer turn out to be the start of a stop sequence, so a client never sees part of
//! a stop string.

/// Accumulates generated text and decides what may be emitted.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    text: String,
    emitted: usize,
}

/// Result of feeding a piece of text.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed<'a> {
    /// Safe text to emit now (may be empty).
    Emit(&'a str),
    /// A stop sequence matched: emit this final text, then stop.
    Stopped(&'a str),
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> Self {
        Self { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), ..Default::default() }
    }

    /// Add newly decoded text.
    pub fn feed(&mut self, piece: &str) -> Fed<'_> {
        // Search only where a new match could start: just before the emitted boundary.
        let start = self.emitted;
        self.text.push_str(piece);
        let earliest = self.stops.iter().filter_map(|s| self.text[start..].find(s.as_str()).map(|i| start + i)).min();
        if let Some(end) = earliest {
            self.text.truncate(end);
            let out = &self.text[start..];
            self.emitted = end;
            return Fed::Stopped(out);
        }
        // Hold back the longest suffix that is a prefix of some stop sequence.
        let mut hold = 0;
        for s in &self.stops {
            for (i, _) in s.char_indices().skip(1) {
                if i > hold && self.text.ends_with(&s[..i]) {
                    hold = i;
                }
            }
        }
        let safe = self.text.len() - hold;
        let out = &self.text[start..safe.max(start)];
        self.emitted = safe.max(start);
        Fed::Emit(out)
    }

    /// Text held back at the end of generation (no stop matched): release it.
    pub fn finish(&mut self) -> &str {
        let out = &self.text[self.emitted..];
        self.emitted = self.text.len();
        out
    }

    /// Everything generated so far, without any stop sequence.
    #[cfg(test)]
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = String::new();
        for p in pieces {
            match m.feed(p) {
                Fed::Emit(s) => out.push_str(s),
                Fed::Stopped(s) => {
                    out.push_str(s);
                    assert_eq!(out, m.text());
                    return (out, true);
                }
            }
        }
        out.push_str(m.finish());
        assert_eq!(out, m.text());
        (out, false)
    }

    #[test]
    fn stop_split_across_pieces_is_never_emitted() {
        assert_eq!(run(&["END"], &["hello E", "N", "D more"]), ("hello ".into(), true));
    }

    #[test]
    fn partial_prefix_is_released_when_it_diverges() {
        assert_eq!(run(&["END"], &["a EN", "x"]), ("a ENx".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(run(&["cd", "b"], &["abcd"]), ("a".into(), true));
    }

    #[test]
    fn no_stops_passes_everything() {
        assert_eq!(run(&[], &["x", "y"]), ("xy".into(), false));
    }

    #[test]
    fn multibyte_stop_prefixes_respect_char_boundaries() {
        assert_eq!(run(&["é!"], &["caf", "é", "?"]), ("café?".into(), false));
        assert_eq!(run(&["é!"], &["café", "!"]), ("caf".into(), true));
    }
}
