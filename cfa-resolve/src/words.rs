//! Whole-word reading of intent text (docs/differences.md#whole-word-keyword-matching): lowercase, split on every char
//! that is not a letter, digit or `_`, and match keywords as word prefixes and dataset
//! names as whole words. No regex, no allocation beyond one lowercased copy and the
//! word spans.

use std::ops::Range;

/// True for the chars that make up a word: Unicode letters and digits, and `_`.
pub fn is_word_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// A lowercased text and its words, in order.
#[derive(Debug, Clone)]
pub struct Words {
    text: String,
    spans: Vec<Range<usize>>,
}

impl Words {
    /// Lowercases `raw` and splits it into words.
    pub fn new(raw: &str) -> Self {
        let text = raw.to_lowercase();
        let spans = split_spans(&text);
        Words { text, spans }
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// The `i`-th word, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.spans.get(i).and_then(|r| self.text.get(r.clone()))
    }

    /// The words, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.spans.iter().filter_map(|r| self.text.get(r.clone()))
    }

    /// The raw text between word `i` and word `i + 1` (`None` when either is missing).
    pub fn gap_after(&self, i: usize) -> Option<&str> {
        let a = self.spans.get(i)?;
        let b = self.spans.get(i + 1)?;
        self.text.get(a.end..b.start)
    }

    /// True when `phrase` matches starting at word `i` (see [`Phrase`]).
    pub fn matches_at(&self, i: usize, phrase: &Phrase) -> bool {
        let n = phrase.parts.len();
        n > 0
            && i.checked_add(n)
                .and_then(|end| self.spans.get(i..end))
                .is_some_and(|spans| self.matches_spans(spans, phrase))
    }

    /// True when every part of `phrase` matches the word of the span beside it
    /// (`spans` has exactly one span per part).
    fn matches_spans(&self, spans: &[Range<usize>], phrase: &Phrase) -> bool {
        phrase.parts.iter().zip(spans).all(|(part, r)| {
            self.text.get(r.clone()).is_some_and(|w| match part {
                // The first byte decides most comparisons without a memcmp call.
                Part::Prefix(p) => {
                    w.as_bytes().first() == p.as_bytes().first() && w.starts_with(p.as_str())
                }
                Part::Number => is_number_word(w),
            })
        })
    }

    /// The first word index where `phrase` matches.
    pub fn find(&self, phrase: &Phrase) -> Option<usize> {
        let n = phrase.parts.len();
        if n == 0 {
            return None;
        }
        // Only the windows of `n` consecutive words can match.
        self.spans
            .windows(n)
            .position(|spans| self.matches_spans(spans, phrase))
    }

    /// True when any of `phrases` matches anywhere.
    pub fn any(&self, phrases: &[Phrase]) -> bool {
        phrases.iter().any(|p| self.find(p).is_some())
    }

    /// True when `name` (already lowercased) occurs as whole words: a single-word
    /// name must equal a word; a name with separators (`sales.orders`) must occur
    /// with a word boundary on each side. An empty name never matches.
    pub fn contains_name(&self, name: &str) -> bool {
        if name.is_empty() {
            return false;
        }
        if name.chars().all(is_word_char) {
            return self.iter().any(|w| w == name);
        }
        let text = self.text.as_str();
        text.match_indices(name).any(|(start, m)| {
            let end = start + m.len();
            let before_ok = !name.starts_with(is_word_char)
                || text
                    .get(..start)
                    .and_then(|s| s.chars().next_back())
                    .is_none_or(|c| !is_word_char(c));
            let after_ok = !name.ends_with(is_word_char)
                || text
                    .get(end..)
                    .and_then(|s| s.chars().next())
                    .is_none_or(|c| !is_word_char(c));
            before_ok && after_ok
        })
    }
}

fn split_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        match (is_word_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push(s..text.len());
    }
    spans
}

/// True for a word made only of ASCII digits.
pub fn is_number_word(w: &str) -> bool {
    !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit())
}

/// One part of a [`Phrase`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A word that starts with this (lowercased) text.
    Prefix(String),
    /// `#` in a keyword: any word made of digits.
    Number,
}

/// A compiled keyword: its words, each matched as a prefix of consecutive words in
/// the text. `"drop pii"` matches "dropping PII"; `"last # day"` matches "last 7 days".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    parts: Vec<Part>,
}

impl Phrase {
    /// Number of words in the phrase.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Compiles a keyword. `None` when it has no word at all (it would match everything).
    pub fn compile(keyword: &str) -> Option<Self> {
        let lowered = keyword.to_lowercase();
        let mut parts = Vec::new();
        for token in lowered.split(|c: char| c != '#' && !is_word_char(c)) {
            if token.is_empty() {
                continue;
            }
            if token == "#" {
                parts.push(Part::Number);
            } else if token.contains('#') {
                for piece in token.split('#') {
                    if !piece.is_empty() {
                        parts.push(Part::Prefix(piece.to_owned()));
                    }
                }
            } else {
                parts.push(Part::Prefix(token.to_owned()));
            }
        }
        if parts.iter().any(|p| matches!(p, Part::Prefix(_))) {
            Some(Phrase { parts })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ph(s: &str) -> Phrase {
        Phrase::compile(s).unwrap()
    }

    #[test]
    fn splits_on_non_word_chars_and_keeps_underscore() {
        let w = Words::new("Join NFe/clientes's nfe_backup, über-Data 2024");
        let v: Vec<&str> = w.iter().collect();
        assert_eq!(
            v,
            [
                "join",
                "nfe",
                "clientes",
                "s",
                "nfe_backup",
                "über",
                "data",
                "2024"
            ]
        );
    }

    #[test]
    fn prefix_and_whole_word_rules() {
        let w = Words::new("the conference drawing finally summer nfe_backup");
        assert!(!w.contains_name("nfe"));
        assert!(w.find(&ph("raw")).is_none());
        assert!(w.find(&ph("final")).is_some());
        assert!(w.find(&ph("summ")).is_some());
        assert!(w.contains_name("nfe_backup"));
        assert!(!w.contains_name(""));
    }

    #[test]
    fn phrases_and_numbers() {
        let w = Words::new("only the last 7 days, dropping PII");
        assert!(w.any(&[ph("last # day")]));
        assert!(w.any(&[ph("drop pii")]));
        assert!(!w.any(&[ph("last # week")]));
        assert!(Phrase::compile(" - ").is_none());
        assert!(Phrase::compile("#").is_none());
    }

    #[test]
    fn find_gives_the_first_window_and_stops_at_the_end() {
        let w = Words::new("drop pii then drop pii again, last 7");
        assert_eq!(w.find(&ph("drop pii")), Some(0));
        assert_eq!(w.find(&ph("pii again")), Some(4));
        assert_eq!(w.find(&ph("last #")), Some(6));
        // A phrase that would run past the last word never matches.
        assert_eq!(w.find(&ph("7 day")), None);
        assert!(w.matches_at(6, &ph("last #")));
        assert!(!w.matches_at(7, &ph("7 day")));
        assert!(!w.matches_at(usize::MAX, &ph("drop")));
        // A phrase longer than the whole text.
        let short = Words::new("last");
        assert_eq!(short.find(&ph("last # day")), None);
        assert!(!Words::new("").any(&[ph("last")]));
    }

    #[test]
    fn dotted_names_need_boundaries() {
        let w = Words::new("join sales.orders with xsales.orders2");
        assert!(w.contains_name("sales.orders"));
        let w = Words::new("join xsales.orders2");
        assert!(!w.contains_name("sales.orders"));
    }
}
