//! The fast path of `parse_validated` gives the general path's answer on text whose
//! unknown keys hold what only a full `Value` parse rejects: a lone surrogate escape,
//! nesting past 128 (found by `cfa-fuzz`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use cfa_types::StateSignature;
use cfa_types::validate::ParseError;

fn ok_text() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/signatures/ok.json"
    );
    std::fs::read_to_string(path).unwrap()
}

/// `ok.json` with `member` added as the first key of the signature object.
fn with_member(member: &str) -> String {
    let text = ok_text();
    let open = text.find('{').unwrap();
    format!("{}{{{member}, {}", &text[..open], &text[open + 1..])
}

/// The general path: parse a `Value`, validate strictly, read.
fn general(text: &str) -> Result<StateSignature, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    StateSignature::from_validated_value(&v, false).map_err(|e| e.to_string())
}

#[test]
fn a_lone_surrogate_escape_in_an_unknown_key_is_a_syntax_error_on_both_paths() {
    for member in [r#""\ud800x": 1"#, r#""x": "\uDFFF""#, r#""x": ["\udbff"]"#] {
        let text = with_member(member);
        assert!(general(&text).is_err(), "{member}");
        match StateSignature::parse_validated(&text, false) {
            Err(ParseError::Syntax(e)) => assert!(e.message.contains("escape"), "{e}"),
            other => panic!("{member}: expected a JSON syntax error, got {other:?}"),
        }
    }
}

#[test]
fn unknown_keys_nested_past_the_json_depth_limit_are_rejected_on_both_paths() {
    let deep = format!("\"extra\": {}{}", "[".repeat(200), "]".repeat(200));
    let text = with_member(&deep);
    assert!(general(&text).unwrap_err().contains("recursion limit"));
    match StateSignature::parse_validated(&text, false) {
        Err(ParseError::Syntax(e)) => assert!(e.message.contains("nesting is too deep"), "{e}"),
        other => panic!("expected a JSON syntax error, got {other:?}"),
    }
}

#[test]
fn unknown_keys_in_nested_objects_get_the_general_paths_answer() {
    let text = ok_text().replacen(
        "\"size_gb\"",
        r#""unknown": {"deep": "\udc00"}, "size_gb""#,
        1,
    );
    assert!(general(&text).is_err());
    assert!(matches!(
        StateSignature::parse_validated(&text, false),
        Err(ParseError::Syntax(_))
    ));
    let text = ok_text().replacen(
        "\"size_gb\"",
        r#""unknown": [1, {"a": null}], "size_gb""#,
        1,
    );
    assert_eq!(
        StateSignature::parse_validated(&text, false).unwrap(),
        general(&text).unwrap()
    );
}

#[test]
fn surrogate_pairs_and_moderate_nesting_still_read_as_before() {
    let plain = StateSignature::parse_validated(&ok_text(), false).unwrap();
    for member in [
        r#""\ud83d\ude80": 1"#.to_owned(),
        format!("\"extra\": {}{}", "[".repeat(100), "]".repeat(100)),
    ] {
        let text = with_member(&member);
        let fast = StateSignature::parse_validated(&text, false).unwrap();
        assert_eq!(fast, plain);
        assert_eq!(general(&text).unwrap(), fast);
    }
    let text = ok_text().replacen("\"fiscal\"", r#""fiscal \ud83d\ude80""#, 1);
    assert_eq!(
        StateSignature::parse_validated(&text, false)
            .unwrap()
            .domain,
        "fiscal 🚀"
    );
}
