//! Constraints grounded in the intent's words and the catalog (docs/differences.md#grounded-constraints): the
//! rule-based normaliser states what the text asks for, so that policy rules can fire
//! and replan with the catalog's own values. The rules are listed in the crate docs.

use crate::compiled::CompiledPacks;
use crate::words::{Words, is_number_word};
use cfa_types::{DatasetRef, SignatureConstraints, TargetLayer};
use serde_json::{Map, Number};

/// What the constraint rules read of the intent's words: whether each cue list
/// matches, and the stated budget. A pure function of the text and the packs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConstraintCues {
    /// An anonymisation keyword matches.
    pub anonymize: bool,
    /// A time-scope keyword matches.
    pub time_scope: bool,
    /// A no-merge keyword matches.
    pub no_merge: bool,
    /// The cost ceiling the text states ([`budget`]).
    pub budget: Option<Number>,
}

impl ConstraintCues {
    /// Reads the cues of `words`.
    pub(crate) fn read(words: &Words, packs: &CompiledPacks) -> Self {
        ConstraintCues {
            anonymize: words.any(&packs.anonymize),
            time_scope: words.any(&packs.time_scope),
            no_merge: words.any(&packs.no_merge),
            budget: budget(words, packs),
        }
    }
}

/// Derives the constraints for matched `datasets` written to `layer`.
#[cfg_attr(not(feature = "llm"), allow(dead_code))]
pub fn constraints(
    words: &Words,
    packs: &CompiledPacks,
    datasets: &[DatasetRef],
    layer: TargetLayer,
) -> SignatureConstraints {
    constraints_from(&ConstraintCues::read(words, packs), datasets, layer)
}

/// [`constraints`] from cues already read.
pub(crate) fn constraints_from(
    cues: &ConstraintCues,
    datasets: &[DatasetRef],
    layer: TargetLayer,
) -> SignatureConstraints {
    let has_pii = datasets.iter().any(DatasetRef::contains_pii);
    let no_pii_raw = !has_pii || cues.anonymize;
    let has_partition = datasets.iter().any(|d| d.partition_column.is_some());
    let partition_by = if has_partition && cues.time_scope {
        let mut cols: Vec<String> = Vec::new();
        for col in datasets.iter().filter_map(|d| d.partition_column.as_ref()) {
            if !col.trim().is_empty() && !cols.contains(col) {
                cols.push(col.clone());
            }
        }
        cols
    } else {
        Vec::new()
    };
    SignatureConstraints {
        no_pii_raw,
        merge_key_required: layer.is_protected() && !cues.no_merge,
        enforce_types: true,
        partition_by,
        max_cost_dbu: cues.budget.clone(),
        custom: Map::new(),
    }
}

/// The cost ceiling the text states: first `<number> <unit>` (`20 dbu`), else the
/// first `<budget word> [up to 2 words] <number>` (`budget of 20`).
pub fn budget(words: &Words, packs: &CompiledPacks) -> Option<Number> {
    if !words.iter().any(is_number_word) {
        return None;
    }
    for i in 0..words.len() {
        if let Some((value, n)) = number_at(words, i)
            && packs.cost_unit.iter().any(|u| words.matches_at(i + n, u))
        {
            return to_number(value);
        }
    }
    for i in 0..words.len() {
        for cue in &packs.budget {
            if words.matches_at(i, cue) {
                let start = i + cue.len();
                for j in start..start + 3 {
                    if let Some((value, _)) = number_at(words, j) {
                        return to_number(value);
                    }
                }
            }
        }
    }
    None
}

fn to_number(value: f64) -> Option<Number> {
    if value.is_finite() && value >= 0.0 {
        Number::from_f64(value)
    } else {
        None
    }
}

/// Reads a number starting at word `i`: digits, `,`-separated groups of exactly 3
/// digits (thousands), then an optional decimal part after `.` or after `,` with 1–2
/// digits (`20.5`, `1,000`, `12,5`). Returns the value and the words used. A word
/// that continues a number to its left is not a start.
fn number_at(words: &Words, i: usize) -> Option<(f64, usize)> {
    let first = words.get(i).filter(|w| is_number_word(w))?;
    if i > 0 {
        let joined = matches!(words.gap_after(i - 1), Some("." | ","));
        if joined && words.get(i - 1).is_some_and(is_number_word) {
            return None;
        }
    }
    let mut text = first.to_owned();
    let mut n = 1;
    while words.gap_after(i + n - 1) == Some(",") {
        match words.get(i + n) {
            Some(w) if is_number_word(w) && w.len() == 3 => {
                text.push_str(w);
                n += 1;
            }
            _ => break,
        }
    }
    let decimal = match (words.gap_after(i + n - 1), words.get(i + n)) {
        (Some("."), Some(w)) if is_number_word(w) => Some(w),
        (Some(","), Some(w)) if is_number_word(w) && w.len() <= 2 => Some(w),
        _ => None,
    };
    if let Some(d) = decimal {
        text.push('.');
        text.push_str(d);
        n += 1;
    }
    text.parse::<f64>().ok().map(|v| (v, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::KeywordPack;

    fn cost(text: &str) -> Option<f64> {
        let packs = CompiledPacks::new(&[KeywordPack::english(), KeywordPack::portuguese()]);
        budget(&Words::new(text), &packs).and_then(|n| n.as_f64())
    }

    #[test]
    fn budgets() {
        assert_eq!(cost("join a with b, budget 20 dbu"), Some(20.0));
        assert_eq!(cost("max 20 DBU please"), Some(20.0));
        assert_eq!(cost("custo máximo 20"), Some(20.0));
        assert_eq!(cost("budget of 12.5"), Some(12.5));
        assert_eq!(cost("orçamento de 12,5 dbu"), Some(12.5));
        assert_eq!(cost("budget: 1,000 DBUs"), Some(1000.0));
        assert_eq!(cost("run 3 times"), None);
        assert_eq!(cost("budget is tight this quarter"), None);
        assert_eq!(cost("v2.20 dbu"), Some(20.0));
    }
}
