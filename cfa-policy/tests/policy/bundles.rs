//! Bundle loading: built-in bundles, YAML/JSON with and without the wrapper, parse
//! errors and validation issues located at line and column.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_policy::{
    BundleError, BundleFormat, PolicyEngine, Position, builtin, load_bundle, validate_bundle_value,
    yaml,
};
use cfa_types::{FaultFamily, FaultSeverity, PolicyAction};

#[test]
fn every_builtin_validates_and_compiles() {
    let names: Vec<&str> = builtin::names().collect();
    assert_eq!(
        names,
        [
            "compliance-strict-v1",
            "eu-ai-act-v1",
            "finops-strict-v1",
            "lgpd-v1",
            "prod-v1"
        ]
    );
    for name in names {
        let text = builtin::source(name).unwrap();
        let value = yaml::parse_value(text).unwrap();
        assert!(validate_bundle_value(&value).is_empty(), "{name}");
        let e = PolicyEngine::builtin(name).unwrap();
        assert_eq!(e.version(), format!("{name}.0"));
    }
    let err = PolicyEngine::builtin("prod-v2").unwrap_err().to_string();
    assert!(
        err.contains("unknown built-in policy bundle 'prod-v2'"),
        "{err}"
    );
    assert!(err.contains("compliance-strict-v1, eu-ai-act-v1"), "{err}");
    assert!(builtin::source("nope").is_none());
}

type Row = (
    &'static str,
    &'static str,
    PolicyAction,
    &'static str,
    FaultSeverity,
);

fn check_table(name: &str, rows: &[Row]) {
    let e = PolicyEngine::builtin(name).unwrap();
    let got: Vec<_> = e
        .rules()
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.condition.as_str(),
                r.action,
                r.fault_code.as_str(),
                r.severity,
            )
        })
        .collect();
    let want: Vec<_> = rows
        .iter()
        .map(|(a, b, c, d, s)| (*a, *b, *c, *d, *s))
        .collect();
    assert_eq!(got, want, "{name}");
}

#[test]
fn builtins_match_the_reference_tables() {
    use FaultSeverity::{Critical, High, Warning};
    use PolicyAction::{Block, Replan};
    check_table(
        "prod-v1",
        &[
            (
                "forbid_raw_pii_in_silver_or_gold",
                "pii_in_protected_layer",
                Replan,
                "GOVERNANCE_RAW_PII_IN_PROTECTED_LAYER",
                Critical,
            ),
            (
                "require_pii_anonymization_declaration",
                "pii_without_policy",
                Block,
                "GOVERNANCE_PII_WITHOUT_POLICY",
                Critical,
            ),
            (
                "require_partition_filter_for_high_volume",
                "missing_partition",
                Replan,
                "FINOPS_MISSING_TEMPORAL_PREDICATE",
                High,
            ),
            (
                "warn_on_sensitive_without_partition",
                "sensitive_without_partition",
                Replan,
                "FINOPS_SENSITIVE_WITHOUT_PARTITION",
                Warning,
            ),
            (
                "require_merge_key_for_silver_gold",
                "missing_merge_key",
                Block,
                "CONTRACT_MISSING_MERGE_KEY",
                Critical,
            ),
            (
                "enforce_type_checking",
                "enforce_types_disabled",
                Replan,
                "CONTRACT_TYPE_ENFORCEMENT_DISABLED",
                High,
            ),
            (
                "enforce_cost_ceiling",
                "cost_budget_exceeded",
                Block,
                "FINOPS_INVALID_COST_CEILING",
                High,
            ),
        ],
    );
    check_table(
        "finops-strict-v1",
        &[
            (
                "require_partition_filter_for_high_volume",
                "missing_partition",
                Block,
                "FINOPS_MISSING_TEMPORAL_PREDICATE",
                Critical,
            ),
            (
                "warn_on_sensitive_without_partition",
                "sensitive_without_partition",
                Block,
                "FINOPS_SENSITIVE_WITHOUT_PARTITION",
                High,
            ),
            (
                "enforce_cost_ceiling_strict",
                "cost_budget_exceeded",
                Block,
                "FINOPS_COST_CEILING_EXCEEDED",
                Critical,
            ),
            (
                "forbid_raw_pii_in_silver_or_gold",
                "pii_in_protected_layer",
                Replan,
                "GOVERNANCE_RAW_PII_IN_PROTECTED_LAYER",
                Critical,
            ),
            (
                "require_merge_key_for_silver_gold",
                "missing_merge_key",
                Block,
                "CONTRACT_MISSING_MERGE_KEY",
                Critical,
            ),
        ],
    );
    check_table(
        "compliance-strict-v1",
        &[
            (
                "forbid_raw_pii_in_silver_or_gold",
                "pii_in_protected_layer",
                Block,
                "GOVERNANCE_RAW_PII_IN_PROTECTED_LAYER",
                Critical,
            ),
            (
                "require_pii_anonymization_declaration",
                "pii_without_policy",
                Block,
                "GOVERNANCE_PII_WITHOUT_POLICY",
                Critical,
            ),
            (
                "forbid_pii_in_gold_any_circumstance",
                "pii_in_protected_layer",
                Block,
                "GOVERNANCE_PII_IN_GOLD_FORBIDDEN",
                Critical,
            ),
            (
                "require_merge_key_for_silver_gold",
                "missing_merge_key",
                Block,
                "CONTRACT_MISSING_MERGE_KEY",
                Critical,
            ),
            (
                "enforce_type_checking",
                "enforce_types_disabled",
                Block,
                "CONTRACT_TYPE_ENFORCEMENT_DISABLED",
                Critical,
            ),
            (
                "require_partition_for_any_sensitive",
                "sensitive_without_partition",
                Block,
                "FINOPS_SENSITIVE_WITHOUT_PARTITION",
                High,
            ),
            (
                "enforce_cost_ceiling",
                "cost_budget_exceeded",
                Block,
                "FINOPS_INVALID_COST_CEILING",
                High,
            ),
        ],
    );
    let prod = PolicyEngine::builtin("prod-v1").unwrap();
    assert_eq!(prod.rules()[2].params.min_size_gb, Some(1.0));
    let fin = PolicyEngine::builtin("finops-strict-v1").unwrap();
    assert_eq!(fin.rules()[0].params.min_size_gb, Some(0.5));
    assert_eq!(fin.rules()[2].params.max_dbu, Some(25.0));
    let cs = PolicyEngine::builtin("compliance-strict-v1").unwrap();
    assert_eq!(
        cs.rules()[2].params.target_layer,
        Some(cfa_types::TargetLayer::Gold)
    );

    let eu = PolicyEngine::builtin("eu-ai-act-v1").unwrap();
    let eu_rows: Vec<_> = eu
        .rules()
        .iter()
        .map(|r| (r.fault_code.as_str(), r.condition.as_str(), r.action))
        .collect();
    assert_eq!(
        eu_rows,
        [
            (
                "EU_AI_ACT_ART9_RISK_MGMT_PII",
                "pii_in_protected_layer",
                Block
            ),
            (
                "EU_AI_ACT_ART9_RISK_MGMT_PARTITION",
                "missing_partition",
                Replan
            ),
            ("EU_AI_ACT_ART10_DATA_GOV_PII", "pii_without_policy", Block),
            (
                "EU_AI_ACT_ART10_DATA_GOV_SCHEMA",
                "enforce_types_disabled",
                Replan
            ),
            ("EU_AI_ACT_ART12_RECORD_KEEPING", "missing_merge_key", Block),
            (
                "EU_AI_ACT_ART13_TRANSPARENCY",
                "sensitive_without_partition",
                Replan
            ),
            ("EU_AI_ACT_ART15_ACCURACY", "schema_mismatch", Block),
            (
                "EU_AI_ACT_ART17_QUALITY_COST",
                "cost_budget_exceeded",
                Replan
            ),
        ]
    );
    let lgpd = PolicyEngine::builtin("lgpd-v1").unwrap();
    assert!(
        lgpd.rules()
            .iter()
            .all(|r| r.fault_code.starts_with("LGPD_"))
    );
    for c in [
        "pii_without_policy",
        "sensitive_without_partition",
        "missing_merge_key",
        "unauthorized_gold_write",
    ] {
        assert!(lgpd.rules().iter().any(|r| r.condition == c), "{c}");
    }
}

#[test]
fn builtin_texts_are_our_own_where_rules_differ() {
    // compliance-strict's rule 1 differs from the default (block, own remediation)
    let cs = PolicyEngine::builtin("compliance-strict-v1").unwrap();
    assert_ne!(
        cs.rules()[0].message,
        "PII detected without treatment in write to protected layer."
    );
    assert!(
        cs.describe_rules()
            .iter()
            .all(|d| d.family == FaultFamily::Semantic)
    );
}

const GOOD_JSON: &str = r#"{
  "version": "j-1",
  "rules": [
    {"name": "a", "condition": "missing_merge_key", "action": "block",
     "fault_code": "A", "severity": "high", "message": "m"}
  ]
}"#;

#[test]
fn formats_and_wrappers() {
    assert_eq!(BundleFormat::from_path_str("x/p.YML"), BundleFormat::Yaml);
    assert_eq!(BundleFormat::from_path_str("p.yaml"), BundleFormat::Yaml);
    assert_eq!(BundleFormat::from_path_str("p.json"), BundleFormat::Json);
    assert_eq!(BundleFormat::from_path_str("p.txt"), BundleFormat::Json);
    let j = load_bundle(GOOD_JSON, BundleFormat::Json, "g.json").unwrap();
    let with_bom = format!("\u{feff}{GOOD_JSON}");
    assert_eq!(
        load_bundle(&with_bom, BundleFormat::Json, "bom.json").unwrap(),
        j
    );
    let wrapped = format!("{{\"policy_bundle\": {GOOD_JSON}}}");
    assert_eq!(
        load_bundle(&wrapped, BundleFormat::Json, "w.json").unwrap(),
        j
    );
    let y = "policy_bundle:\n  version: j-1\n  rules:\n    - {name: a, condition: missing_merge_key, action: block, fault_code: A, severity: high, message: m}\n";
    assert_eq!(load_bundle(y, BundleFormat::Yaml, "y.yaml").unwrap(), j);
    // an empty file is the reference's "file is empty"
    let err = load_bundle("", BundleFormat::Yaml, "e.yaml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid policy bundle in e.yaml: policy_bundle: file is empty"
    );
}

#[test]
fn bad_yaml_reports_line_and_column() {
    let text = "version: v\nrules:\n  - name: a\n    message: \"unterminated\n";
    let BundleError::Parse(e) = load_bundle(text, BundleFormat::Yaml, "bad.yaml").unwrap_err()
    else {
        panic!("expected a parse error")
    };
    let p = e.position.unwrap();
    assert!(p.line >= 4, "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "cannot parse policy bundle bad.yaml:{}:{}: ",
            p.line, p.column
        )),
        "{e}"
    );
    // a simple key with a colon inside plain text, as in the reference's broken lgpd file
    let text = "version: v\nrules:\n  - name: a\n    message: a: b: c\n";
    let e = yaml::parse_value(text).unwrap_err();
    assert_eq!(e.position.map(|p| p.line), Some(4), "{e}");
}

#[test]
fn duplicate_yaml_key_is_rejected() {
    let text = "version: v\nrules:\n  - name: a\n    name: b\n";
    let BundleError::Parse(e) = load_bundle(text, BundleFormat::Yaml, "dup.yaml").unwrap_err()
    else {
        panic!("expected a parse error")
    };
    assert_eq!(e.position.map(|p| p.line), Some(4), "{e}");
    assert!(e.message.to_lowercase().contains("duplicate"), "{e}");
}

#[test]
fn bad_json_reports_line_and_column() {
    let BundleError::Parse(e) =
        load_bundle("{\n  \"version\": ,\n}", BundleFormat::Json, "b.json").unwrap_err()
    else {
        panic!("expected a parse error")
    };
    assert_eq!(
        e.position,
        Some(Position {
            line: 2,
            column: 14
        })
    );
    assert!(!e.message.contains(" at line "), "{}", e.message);
}

#[test]
fn validation_issues_are_located_in_yaml() {
    let text = "\
# comment
policy_bundle:
  version: v
  rules:
    - name: a
      condition: missing_merge_key
      action: BLOCK
      fault_code: A
      severity: high
      message: m
    - name: a
      condition: nope
      action: block
      fault_code: B
      message: m
      min_size_gb: -1
";
    let BundleError::Invalid(inv) = load_bundle(text, BundleFormat::Yaml, "v.yaml").unwrap_err()
    else {
        panic!("expected an invalid bundle")
    };
    let got: Vec<(String, Option<Position>)> = inv
        .issues
        .iter()
        .map(|i| (i.issue.path.clone(), i.position))
        .collect();
    let at = |line, column| Some(Position { line, column });
    assert_eq!(
        got,
        vec![
            ("policy_bundle.rules[0].action".to_owned(), at(7, 15)),
            ("policy_bundle.rules[1].name".to_owned(), at(11, 13)),
            ("policy_bundle.rules[1].condition".to_owned(), at(12, 18)),
            // a missing key points at the rule that lacks it
            ("policy_bundle.rules[1].severity".to_owned(), at(11, 7)),
            ("policy_bundle.rules[1].min_size_gb".to_owned(), at(16, 20)),
        ]
    );
    let msg = BundleError::Invalid(inv).to_string();
    assert!(msg.starts_with("invalid policy bundle in v.yaml: policy_bundle.rules[0].action: must be one of ['approve', 'block', 'replan'] (line 7, column 15); "), "{msg}");
}

#[test]
fn validation_issues_are_located_in_json() {
    let text = "{\"policy_bundle\": {\n  \"version\": \"\",\n  \"rules\": [\n    {\"name\": \"a\", \"condition\": \"missing_merge_key\", \"action\": \"block\",\n     \"fault_code\": \"A\", \"severity\": [1], \"message\": \"m\"}\n  ]\n}}";
    let BundleError::Invalid(inv) = load_bundle(text, BundleFormat::Json, "v.json").unwrap_err()
    else {
        panic!("expected an invalid bundle")
    };
    let got: Vec<(String, Option<Position>)> = inv
        .issues
        .iter()
        .map(|i| (i.issue.path.clone(), i.position))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "policy_bundle.version".to_owned(),
                Some(Position {
                    line: 2,
                    column: 14
                })
            ),
            (
                "policy_bundle.rules[0].severity".to_owned(),
                Some(Position {
                    line: 5,
                    column: 37
                })
            ),
        ]
    );
    assert_eq!(
        inv.issues[1].issue.message,
        "must be one of ['critical', 'high', 'info', 'warning']"
    );
}

#[test]
fn yaml_reader_is_reusable() {
    let v = yaml::parse_value("datasets:\n  nfe: {size_gb: 4000, ratio: 0.5}\n").unwrap();
    assert!(v["datasets"]["nfe"]["size_gb"].is_u64());
    assert!(v["datasets"]["nfe"]["ratio"].is_f64());
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    assert!(yaml::parse_value(bomb).is_err(), "alias budgets are on");
    assert!(yaml::parse_value("x: !!python/object:os.system ls\n").is_err());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [100, 100_000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(load_bundle(&text, BundleFormat::Yaml, "deep.yaml").is_err());
        assert!(load_bundle(&text, BundleFormat::Json, "deep.json").is_err());
        let mapping = format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth));
        assert!(yaml::parse_value(&mapping).is_err());
    }
}

#[test]
fn synthetic_bundle_is_valid_and_sized() {
    let b = cfa_policy::synth::generated_bundle(1000);
    assert_eq!(b.rules.len(), 1000);
    let e = PolicyEngine::from_bundle(b).unwrap();
    assert_eq!(e.rules().len(), 1000);
    let mut codes: Vec<&str> = e.rules().iter().map(|r| r.fault_code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 1000, "fault codes are unique");
}

#[test]
fn require_approval_is_a_block_an_approval_lifts() {
    let text = "version: appr\nrules:\n  - {name: a, condition: missing_merge_key, action: require_approval, fault_code: NEEDS_OK, severity: high, message: m}\n  - {name: b, condition: enforce_types_disabled, action: block, require_approval: true, fault_code: FLAGGED, severity: high, message: m}\n  - {name: c, condition: unauthorized_gold_write, action: block, fault_code: GOLD, severity: critical, message: m}\n  - {name: d, condition: pii_without_policy, action: block, fault_code: PLAIN, severity: high, message: m}\n";
    let bundle = load_bundle(text, BundleFormat::Yaml, "appr.yaml").unwrap();
    assert_eq!(bundle.rules[0].action, PolicyAction::Block);
    let flags: Vec<bool> = bundle.rules.iter().map(|r| r.requires_approval()).collect();
    assert_eq!(flags, [true, true, true, false]);
    let engine = PolicyEngine::from_bundle(bundle).unwrap();
    assert!(engine.requires_approval("NEEDS_OK"));
    assert!(engine.requires_approval("GOLD"));
    assert!(!engine.requires_approval("PLAIN"));
    assert!(!engine.requires_approval("NOPE"));
    // any other action word is still refused with the reference's message
    let bad = text.replace(
        "require_approval, fault_code: NEEDS_OK",
        "hold, fault_code: NEEDS_OK",
    );
    let msg = load_bundle(&bad, BundleFormat::Yaml, "appr.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("must be one of ['approve', 'block', 'replan']"),
        "{msg}"
    );
}
