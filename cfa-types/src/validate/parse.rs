//! The strict fast path: JSON text → strict validation → typed signature.

use super::Issue;
use super::sig::{signature, unwrap_signature};
use crate::signature::{SignatureError, StateSignature};
use serde_json::Value;
use std::fmt;

/// Why [`StateSignature::parse_validated`] rejected its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not JSON.
    #[error(transparent)]
    Syntax(#[from] JsonSyntaxError),
    /// The JSON is not a valid signature.
    #[error(transparent)]
    Invalid(#[from] InvalidSignature),
}

impl ParseError {
    /// The validation issues, or none for a syntax error.
    pub fn issues(&self) -> &[Issue] {
        match self {
            ParseError::Syntax(_) => &[],
            ParseError::Invalid(inv) => &inv.issues,
        }
    }
}

/// A JSON syntax error, with its 1-based position in the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature is not valid JSON: {message} at line {line}, column {column}")]
pub struct JsonSyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (the parser's column 0, at the start of a
    /// line, is reported as 1).
    pub column: usize,
    /// What the parser expected or found, e.g. `expected value`.
    pub message: String,
}

impl From<serde_json::Error> for JsonSyntaxError {
    fn from(e: serde_json::Error) -> Self {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        JsonSyntaxError {
            line,
            column,
            message,
        }
    }
}

/// Strict validation failed; `issues` is in the reference's order and never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidSignature {
    /// Every issue, rendered `{path}: {message}` by [`Issue`]'s `Display`.
    pub issues: Vec<Issue>,
}

impl fmt::Display for InvalidSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid signature: ")?;
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// Parse → validate → read: the path that reports every issue.
fn general_path(text: &str, require_datasets: bool) -> Result<StateSignature, ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // Position in characters (never column 0) and the error in the user's terms.
        let info = crate::json_error::describe(text, &e);
        JsonSyntaxError {
            line: info.line,
            column: info.column,
            message: info.message,
        }
    })?;
    StateSignature::from_validated_value(&value, require_datasets)
}

impl StateSignature {
    /// Parses JSON text, validates it strictly ([`crate::validate::signature`], with
    /// the `signature`/`state_signature` unwrapping) and reads the unwrapped object.
    ///
    /// Text that is empty or only whitespace gives the issue `signature: file is
    /// empty`, like a `null` document. A signature that passes here always reads:
    /// every field the typed reader needs is covered by validation.
    pub fn parse_validated(text: &str, require_datasets: bool) -> Result<Self, ParseError> {
        if text.trim().is_empty() {
            return Err(InvalidSignature {
                issues: vec![Issue::new("signature", "file is empty")],
            }
            .into());
        }
        if let Some(sig) = super::fast::parse(text, require_datasets) {
            return Ok(sig);
        }
        general_path(text, require_datasets)
    }

    /// The fast path of [`StateSignature::parse_validated`] over any serde
    /// [`Deserializer`](serde::Deserializer) that presents one JSON value (a
    /// `&serde_json::Value`, a host language's objects read in place): `Some` only when
    /// the value is a valid, unwrapped signature whose every field has its expected
    /// type, and then it is exactly the signature
    /// [`StateSignature::from_validated_value`] reads from that value; `None` for
    /// anything else, the deserializer's own errors included (the caller then asks
    /// `from_validated_value` for the verdict and every issue).
    ///
    /// The deserializer must behave like a JSON value: no duplicate keys, only string
    /// keys for struct fields (a key that is not a string fails, it is never read as a
    /// field index), and it must fail, not skip, whatever its value conversion refuses
    /// (unknown keys are read with `deserialize_ignored_any`, which must walk them).
    pub fn read_well_formed<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
        require_datasets: bool,
    ) -> Option<Self> {
        super::fast::read(deserializer, require_datasets)
    }

    /// The signature `fields` denote (a reader of a host language's objects filled them
    /// as [`SignatureFields`](super::SignatureFields) describes): `Some` exactly when
    /// [`StateSignature::read_well_formed`] over a deserializer presenting the same
    /// object would give `Some`, and then the same signature (both share the checks:
    /// non-blank strings, non-negative sizes and costs, the defaults of absent keys).
    pub fn from_well_formed_fields(
        fields: super::SignatureFields,
        require_datasets: bool,
    ) -> Option<Self> {
        super::fast::build_fields(fields, require_datasets)
    }

    /// [`StateSignature::parse_validated`] for an already parsed value.
    pub fn from_validated_value(value: &Value, require_datasets: bool) -> Result<Self, ParseError> {
        let issues = signature(value, require_datasets);
        if !issues.is_empty() {
            return Err(InvalidSignature { issues }.into());
        }
        StateSignature::from_value(unwrap_signature(value)).map_err(|e| {
            let issue = match e {
                SignatureError::Field(f) => Issue::new(f.path, f.message),
                other => Issue::new("signature", other.to_string()),
            };
            InvalidSignature {
                issues: vec![issue],
            }
            .into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn ok() -> Value {
        json!({
          "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
          "datasets": [
            {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [],
             "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
            {"name": "clientes", "classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"],
             "partition_column": null, "merge_keys": ["cliente_id"], "extra": [1, {"x": null}]}
          ],
          "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
                          "partition_by": ["processing_date"], "max_cost_dbu": 20.0, "custom": {"a": [1.5]}},
          "execution_context": {"policy_bundle_version": "prod-v1.0", "catalog_snapshot_version": "cat-2026-01",
                                "context_registry_version_id": "v_initial"},
          "intent_id": "11111111-2222-3333-4444-555555555555",
          "source_intent_raw": "Join NFe with Clientes"
        })
    }

    #[test]
    fn fast_path_takes_valid_signatures() {
        let text = ok().to_string();
        let fast = super::super::fast::parse(&text, true).unwrap();
        assert_eq!(Ok(fast), general_path(&text, true));
        let minimal = r#"{"domain":"d","intent":"i","target_layer":"gold","datasets":null,
            "execution_context":{"policy_bundle_version":"a","catalog_snapshot_version":"b",
            "context_registry_version_id":"c"}}"#;
        assert!(super::super::fast::parse(minimal, false).is_some());
        assert!(super::super::fast::parse(minimal, true).is_none());
        let v = ok();
        assert_eq!(
            StateSignature::read_well_formed(&v, true),
            StateSignature::from_validated_value(&v, true).ok()
        );
        assert!(StateSignature::read_well_formed(json!({"signature": v}), true).is_none());
        assert!(StateSignature::read_well_formed(json!([1]), false).is_none());
        for bad in [
            r#"{"signature": null}"#,
            r#"{"domain":"d","domain":"e"}"#,
            "[1]",
        ] {
            assert!(super::super::fast::parse(bad, false).is_none(), "{bad}");
        }
    }

    fn ok_fields() -> crate::validate::SignatureFields {
        use crate::enums::{DatasetClassification, TargetLayer};
        use crate::validate::{ConstraintFields, ContextFields, DatasetFields, SignatureFields};
        let s = |x: &str| Some(x.to_owned());
        let list = |xs: &[&str]| Some(xs.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
        SignatureFields {
            domain: s("fiscal"),
            intent: s("reconciliation_and_persist"),
            target_layer: Some(TargetLayer::Silver),
            datasets: Some(vec![
                DatasetFields {
                    name: s("nfe"),
                    classification: Some(DatasetClassification::HighVolume),
                    size_gb: Some(4000.into()),
                    pii_columns: list(&[]),
                    partition_column: s("processing_date"),
                    merge_keys: list(&["nfe_id"]),
                },
                DatasetFields {
                    name: s("clientes"),
                    classification: Some(DatasetClassification::Sensitive),
                    size_gb: serde_json::Number::from_f64(0.5),
                    pii_columns: list(&["cpf", "email"]),
                    partition_column: None,
                    merge_keys: list(&["cliente_id"]),
                },
            ]),
            constraints: Some(ConstraintFields {
                no_pii_raw: Some(true),
                merge_key_required: Some(true),
                enforce_types: Some(true),
                partition_by: list(&["processing_date"]),
                max_cost_dbu: serde_json::Number::from_f64(20.0),
                custom: json!({"a": [1.5]}).as_object().cloned(),
            }),
            execution_context: Some(ContextFields {
                policy_bundle_version: s("prod-v1.0"),
                catalog_snapshot_version: s("cat-2026-01"),
                context_registry_version_id: s("v_initial"),
            }),
            intent_id: s("11111111-2222-3333-4444-555555555555"),
            source_intent_raw: s("Join NFe with Clientes"),
        }
    }

    #[test]
    fn well_formed_fields_build_what_the_value_path_reads() {
        let mut v = ok();
        // `ok()` has an unknown key in a dataset: a host reader skips it the same way
        v["datasets"][1].as_object_mut().unwrap().remove("extra");
        let want = StateSignature::from_validated_value(&v, true).unwrap();
        assert_eq!(
            StateSignature::from_well_formed_fields(ok_fields(), true),
            Some(want)
        );
        // the checks the fast path makes: blank strings, negative sizes, no context,
        // no datasets when they are required
        let mut blank = ok_fields();
        blank.domain = Some(" \u{1c}".into());
        assert!(StateSignature::from_well_formed_fields(blank, false).is_none());
        let mut negative = ok_fields();
        if let Some(ds) = negative.datasets.as_mut() {
            ds[0].size_gb = Some((-1).into());
        }
        assert!(StateSignature::from_well_formed_fields(negative, false).is_none());
        let mut no_context = ok_fields();
        no_context.execution_context = None;
        assert!(StateSignature::from_well_formed_fields(no_context, false).is_none());
        let mut no_datasets = ok_fields();
        no_datasets.datasets = None;
        assert!(StateSignature::from_well_formed_fields(no_datasets, true).is_none());
        let mut no_datasets = ok_fields();
        no_datasets.datasets = None;
        assert!(StateSignature::from_well_formed_fields(no_datasets, false).is_some());
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop::sample::select(vec![
            Value::Null,
            json!(true),
            json!(false),
            json!(0),
            json!(-1),
            json!(-0.0),
            json!(2.5),
            json!(""),
            json!(" \u{1c}"),
            json!("x"),
            json!("silver"),
            json!("public"),
            json!("high_volume"),
            json!([]),
            json!(["a"]),
            json!([""]),
            json!([1]),
            json!({}),
            json!({"public": null}),
            json!({"a": 1}),
            json!([true, false, true, [], null, {}]),
        ])
    }

    /// Every path into `v` (object keys and array indices).
    fn pointers(v: &Value, base: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = format!("{base}/{k}");
                    out.push(p.clone());
                    pointers(x, p, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let p = format!("{base}/{i}");
                    out.push(p.clone());
                    pointers(x, p, out);
                }
            }
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// The fast path never disagrees with parse → validate → read.
        #[test]
        fn fast_path_agrees_with_general_path(
            edits in prop::collection::vec((any::<prop::sample::Index>(), leaf(), any::<bool>()), 0..4),
            require in any::<bool>(),
            wrap in 0u8..4,
        ) {
            let mut v = ok();
            for (idx, new, delete) in edits {
                let mut ps = Vec::new();
                pointers(&v, String::new(), &mut ps);
                if ps.is_empty() { break; }
                let p = idx.get(&ps).clone();
                let (parent, key) = p.rsplit_once('/').unwrap_or(("", ""));
                match v.pointer_mut(parent) {
                    Some(Value::Object(m)) if delete => { m.remove(key); }
                    Some(_) => { if let Some(slot) = v.pointer_mut(&p) { *slot = new; } }
                    None => {}
                }
            }
            let v = match wrap {
                1 => json!({"signature": v}),
                2 => json!({"state_signature": v}),
                _ => v,
            };
            let text = v.to_string();
            let general = general_path(&text, require);
            if let Some(fast) = super::super::fast::parse(&text, require) {
                prop_assert_eq!(Ok(fast), general);
            }
            prop_assert_eq!(StateSignature::parse_validated(&text, require), general_path(&text, require));
            // Read in place from the value: never a different signature, never one the
            // value path refuses.
            let read = StateSignature::read_well_formed(&v, require);
            prop_assert_eq!(read.is_some(), super::super::fast::parse(&text, require).is_some());
            if let Some(read) = read {
                prop_assert_eq!(Ok(read), StateSignature::from_validated_value(&v, require));
            }
        }
    }
}
