//! The project's one YAML reader: YAML text to `serde_json::Value` through
//! serde-saphyr, with duplicate keys rejected, alias budgets on, and ints kept apart
//! from floats. Also builds the position tree that [`crate::PositionMap`] walks to put a
//! line and column on a validation issue.

use crate::locate::{PosKind, PosNode, Position};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// A YAML text that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.message, .position))]
pub struct YamlError {
    /// What the parser reported (without a source snippet).
    pub message: String,
    /// Where, 1-based line and column, when the parser knows.
    pub position: Option<Position>,
}

fn render(message: &str, position: &Option<Position>) -> String {
    match position {
        Some(p) => format!("line {}, column {}: {message}", p.line, p.column),
        None => message.to_owned(),
    }
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        reject_unsupported_tags: true,
        with_snippet: false,
    }
}

fn to_error(e: &serde_saphyr::Error) -> YamlError {
    let position = e.location().and_then(|l| {
        let (line, column) = (l.line(), l.column());
        (line > 0).then(|| Position {
            line: line as usize,
            column: column.max(1) as usize,
        })
    });
    YamlError {
        message: clean_message(&e.to_string()),
        position,
    }
}

/// The parser's first line, without its position suffix (carried separately) and
/// without hints about serde-saphyr's API that mean nothing to a bundle author.
fn clean_message(raw: &str) -> String {
    let mut msg = raw.lines().next().unwrap_or_default().trim();
    if let Some(i) = msg.rfind(" at line ") {
        let tail = msg.get(i + 9..).unwrap_or_default();
        if tail
            .split(", column ")
            .all(|n| n.chars().all(|c| c.is_ascii_digit()))
        {
            msg = msg.get(..i).unwrap_or(msg);
        }
    }
    for hint in [", set DuplicateKeyPolicy", "; use from_str_multiple"] {
        if let Some(i) = msg.find(hint) {
            msg = msg.get(..i).unwrap_or(msg);
        }
    }
    in_user_terms(msg)
}

/// Rewrites the parser's messages that name its internals (Rust types, budget
/// structs) into what is wrong in the document.
fn in_user_terms(msg: &str) -> String {
    if msg.starts_with("cannot deserialize null into string") {
        // The only strings a JSON value asks for are mapping keys.
        return "a mapping key is null (`null`, `~` or an empty key); keys must be strings: \
                quote it (\"null\") or rename it"
            .to_owned();
    }
    if msg == "expected string scalar" {
        // A key that is itself a list or a mapping (`[1, 2]: x`, `{a: 1}: x`).
        return "a mapping key must be a plain value (text or a number), not a list or a mapping"
            .to_owned();
    }
    if msg.starts_with("recursive references require") {
        return "an alias (`*name`) refers to the node that defines its anchor (`&name`): \
                a recursive document cannot be read"
            .to_owned();
    }
    if msg == "recursion limit exceeded" {
        return "nesting is too deep (too many levels of lists and mappings)".to_owned();
    }
    if let Some(breach) = msg.strip_prefix("budget breached: ") {
        let name = breach
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or_default();
        let number = breach
            .split(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())
            .and_then(|n| n.parse::<usize>().ok());
        return match (name, number) {
            ("Depth", Some(d)) => format!(
                "nesting is too deep (more than {} levels of lists and mappings)",
                d.saturating_sub(1)
            ),
            ("Depth", None) => {
                "nesting is too deep (too many levels of lists and mappings)".to_owned()
            }
            ("Aliases" | "AliasAnchorRatio", _) => {
                "too many aliases (`*name`): the document expands beyond the reader's limit"
                    .to_owned()
            }
            ("Anchors", _) => "too many anchors (`&name`) for the reader's limit".to_owned(),
            ("Documents", _) => "too many YAML documents in one file".to_owned(),
            ("MergeKeys", _) => "too many merge keys (`<<`) for the reader's limit".to_owned(),
            ("Events" | "Nodes", _) => {
                "the document has too many nodes for the reader's limit".to_owned()
            }
            ("ScalarBytes" | "InputBytes", _) => {
                "the document is too large for the reader's limit".to_owned()
            }
            _ => format!("the document exceeds a reader limit ({breach})"),
        };
    }
    msg.to_owned()
}

/// True when the text holds no YAML node (only whitespace, comments or markers).
fn is_blank_document(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// Parses one YAML document into a JSON value. Ints stay ints and floats stay
/// floats (`10` vs `10.0`); mapping keys become strings; duplicate keys, unsupported
/// tags and alias bombs are errors. An empty document is `null`.
pub fn parse_value(text: &str) -> Result<Value, YamlError> {
    if is_blank_document(text) {
        return Ok(Value::Null);
    }
    serde_saphyr::from_str_with_options::<Value>(text, options()).map_err(|e| to_error(&e))
}

/// Deserializes one YAML document straight into `T` with the options of
/// [`parse_value`], so that an error (a wrong type, an unknown key under
/// `deny_unknown_fields`) carries the line and column of the offending node. An empty
/// document deserializes from `null`.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    if is_blank_document(text) {
        return T::deserialize(serde_json::Value::Null).map_err(|e| YamlError {
            message: e.to_string(),
            position: None,
        });
    }
    serde_saphyr::from_str_with_options::<T>(text, options()).map_err(|e| to_error(&e))
}

/// Parses the position tree of a YAML document that [`parse_value`] accepted.
pub(crate) fn parse_positions(text: &str) -> Option<PosNode> {
    if is_blank_document(text) {
        return None;
    }
    serde_saphyr::from_str_with_options::<SpannedNode>(text, options())
        .ok()
        .map(|n| n.0)
}

/// A [`PosNode`] read through `serde_saphyr::Spanned`.
struct SpannedNode(PosNode);

impl<'de> Deserialize<'de> for SpannedNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<KindOnly>::deserialize(d)?;
        let loc = s.referenced;
        Ok(SpannedNode(PosNode {
            position: Position {
                line: loc.line() as usize,
                column: loc.column() as usize,
            },
            kind: s.value.0,
        }))
    }
}

struct KindOnly(PosKind);

impl<'de> Deserialize<'de> for KindOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor).map(KindOnly)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = PosKind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<PosKind, E> {
        Ok(PosKind::Leaf)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<PosKind, E> {
        Ok(PosKind::Leaf)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<PosKind, E> {
        Ok(PosKind::Leaf)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<PosKind, E> {
        Ok(PosKind::Leaf)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<PosKind, E> {
        Ok(PosKind::Leaf)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<PosKind, E> {
        Ok(PosKind::Leaf)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<PosKind, E> {
        Ok(PosKind::Leaf)
    }
    fn visit_unit<E: de::Error>(self) -> Result<PosKind, E> {
        Ok(PosKind::Leaf)
    }
    fn visit_none<E: de::Error>(self) -> Result<PosKind, E> {
        Ok(PosKind::Leaf)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<PosKind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PosKind, A::Error> {
        let mut items = Vec::new();
        while let Some(SpannedNode(n)) = seq.next_element::<SpannedNode>()? {
            items.push(n);
        }
        Ok(PosKind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PosKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(Key(k)) = map.next_key::<Key>()? {
            let SpannedNode(n) = map.next_value::<SpannedNode>()?;
            entries.push((k, n));
        }
        Ok(PosKind::Map(entries))
    }
}

/// A mapping key read as text (as `serde_json::Value` reads it).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
                Ok(v.to_string())
            }
        }
        d.deserialize_str(KeyVisitor).map(Key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_int_float_and_strings() {
        let v = parse_value("a: 10\nb: 10.0\nc: \"x\"\nd: [1, 2.5]\ne: ~\nf: true\n").unwrap();
        assert_eq!(
            v,
            json!({"a": 10, "b": 10.0, "c": "x", "d": [1, 2.5], "e": null, "f": true})
        );
        assert!(v["a"].is_u64());
        assert!(v["b"].is_f64());
    }

    #[test]
    fn null_keys_are_named_in_the_users_terms() {
        for text in ["null: 1\n", "~: x\n", "a:\n  null: 1\n"] {
            let e = parse_value(text).unwrap_err();
            assert!(
                e.message.starts_with("a mapping key is null"),
                "{text}: {e:?}"
            );
            assert!(!e.message.contains("Option<"), "{e:?}");
            assert!(e.position.is_some(), "{e:?}");
        }
    }

    #[test]
    fn complex_keys_and_recursive_aliases_are_named() {
        for text in ["[1, 2]: x\n", "{a: 1}: x\n"] {
            let e = parse_value(text).unwrap_err();
            assert!(
                e.message.starts_with("a mapping key must be a plain value"),
                "{e:?}"
            );
        }
        let e = parse_value("a: &x [*x]\n").unwrap_err();
        assert!(e.message.contains("recursive document"), "{e:?}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for text in [
            "[".repeat(100_000),
            "- ".repeat(100_000) + "x",
            "{a: ".repeat(100_000),
        ] {
            let e = parse_value(&text).unwrap_err();
            assert!(e.message.starts_with("nesting is too deep"), "{e:?}");
            assert!(!e.message.contains("budget"), "{e:?}");
        }
    }

    #[test]
    fn empty_is_null() {
        assert_eq!(parse_value("").unwrap(), Value::Null);
        assert_eq!(parse_value("# only a comment\n\n").unwrap(), Value::Null);
    }

    #[test]
    fn duplicate_keys_are_rejected_with_position() {
        let e = parse_value("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
        let p = e.position.unwrap();
        assert_eq!(p.line, 4, "{e}");
    }

    #[test]
    fn messages_drop_position_suffix_and_api_hints() {
        let e = parse_value("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.message, "duplicate mapping key: a");
        assert_eq!(e.to_string(), "line 2, column 1: duplicate mapping key: a");
        let e = parse_value("--- a\n--- b\n").unwrap_err();
        assert_eq!(e.message, "multiple YAML documents detected");
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse_value("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.position.is_some(), "{e}");
        assert!(e.to_string().starts_with("line "), "{e}");
    }

    #[test]
    fn positions_follow_nodes() {
        let tree = parse_positions("top:\n  items:\n    - name: x\n      n: 3\n").unwrap();
        let PosKind::Map(entries) = &tree.kind else {
            panic!("not a map")
        };
        let (k, items) = &entries[0];
        assert_eq!(k, "top");
        assert_eq!(items.position.line, 2);
    }
}
