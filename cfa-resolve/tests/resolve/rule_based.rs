//! Behaviour of the rule-based normaliser beyond the conformance corpus: the
//! reference's observed table (docs/compatibility.md#normaliser), the substring traps that whole-word
//! matching fixes (B12), grounded constraints (B2), packs, strict mode and the
//! environment (B13).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_resolve::{
    DatasetState, KeywordPack, Normalizer, NormalizerInput, Resolution, RuleBasedNormalizer,
};
use cfa_types::{AmbiguityLevel, Catalog, ConfirmationMode, ExecutionContext, Patch, TargetLayer};
use serde_json::{Value, json};

fn catalog() -> Catalog {
    Catalog::from_value(&json!({"datasets": {
        "nfe":      {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
        "clientes": {"classification": "sensitive",   "size_gb": 0.5,  "pii_columns": ["cpf","email"], "partition_column": "processing_date", "merge_keys": ["cliente_id"]},
        "produtos": {"classification": "internal",    "size_gb": 0.1,  "pii_columns": [], "merge_keys": ["produto_id"]}
    }}))
    .unwrap()
}

fn resolve(text: &str, cat: &Catalog) -> Resolution {
    RuleBasedNormalizer::default().resolve(&NormalizerInput::new(text, cat, "id-1"))
}

fn names(r: &Resolution) -> Vec<&str> {
    r.signature
        .datasets
        .iter()
        .map(|d| d.name.as_str())
        .collect()
}

/// text, catalog, layer, datasets, intent, confidence, ambiguity, mode
type Row<'a> = (
    &'a str,
    &'a Catalog,
    TargetLayer,
    &'a [&'a str],
    &'a str,
    f64,
    AmbiguityLevel,
    ConfirmationMode,
);

#[test]
fn reference_observed_table() {
    let cat = catalog();
    let empty = Catalog::from_value(&json!({})).unwrap();
    use AmbiguityLevel::*;
    use ConfirmationMode::*;
    let rows: [Row<'_>; 7] = [
        (
            "Join NFe with Clientes and persist to Silver",
            &cat,
            TargetLayer::Silver,
            &["nfe", "clientes"],
            "reconciliation_and_persist",
            0.75,
            Medium,
            Hard,
        ),
        (
            "Join NFe with Clientes and persist to Gold",
            &cat,
            TargetLayer::Gold,
            &["nfe", "clientes"],
            "reconciliation_and_persist",
            0.75,
            Medium,
            HumanEscalation,
        ),
        (
            "ingest nfe raw into bronze",
            &cat,
            TargetLayer::Bronze,
            &["nfe"],
            "ingest",
            0.85,
            Low,
            Auto,
        ),
        (
            "aggregate produtos monthly",
            &cat,
            TargetLayer::Silver,
            &["produtos"],
            "aggregate_and_persist",
            0.85,
            Low,
            Auto,
        ),
        (
            "do something with unknown table",
            &cat,
            TargetLayer::Silver,
            &[],
            "transform_and_persist",
            0.30,
            High,
            Soft,
        ),
        (
            "load clientes into the final curated table",
            &cat,
            TargetLayer::Gold,
            &["clientes"],
            "ingest",
            0.75,
            Medium,
            HumanEscalation,
        ),
        (
            "Join NFe with Clientes and persist to Silver",
            &empty,
            TargetLayer::Silver,
            &[],
            "reconciliation_and_persist",
            0.15,
            High,
            Soft,
        ),
    ];
    for (text, c, layer, ds, intent, conf, amb, mode) in rows {
        let r = resolve(text, c);
        assert_eq!(r.signature.target_layer, layer, "{text}");
        assert_eq!(names(&r), ds, "{text}");
        assert_eq!(r.signature.intent, intent, "{text}");
        assert_eq!(r.confidence, conf, "{text}");
        assert_eq!(r.ambiguity, amb, "{text}");
        assert_eq!(r.confirmation_mode, mode, "{text}");
        assert_eq!(r.signature.domain, "general");
        assert_eq!(r.signature.intent_id, "id-1");
        assert_eq!(r.signature.source_intent_raw, text);
    }
    assert!(
        !resolve("ingest nfe raw into bronze", &cat)
            .signature
            .constraints
            .merge_key_required
    );
}

#[test]
fn reference_hash_vectors() {
    // No catalog: every constraint agrees with the reference, so the hash does too.
    let empty = Catalog::from_value(&json!({"datasets": {}})).unwrap();
    let r = resolve("Join NFe with Clientes and persist to Silver", &empty);
    assert_eq!(
        r.signature.signature_hash(),
        "e11371b9052b4e6c830063d7d0c28d5f73371765b1792bb727410c2fa42a130e"
    );
    assert_eq!(r.competing_interpretations.len(), 1);
    // With catalog.json the grounded constraints differ (PII without anonymisation,
    // no time scope); with the reference's safe constraints patched in, the hash is
    // the reference's, so everything else is identical.
    let r = resolve("Join NFe with Clientes and persist to Silver", &catalog());
    let c = &r.signature.constraints;
    assert!(!c.no_pii_raw && c.partition_by.is_empty() && c.merge_key_required);
    let patched = r
        .signature
        .apply_patches(&[
            Patch::set("constraints.no_pii_raw", json!(true)),
            Patch::set("constraints.partition_by", json!(["processing_date"])),
        ])
        .unwrap();
    assert_eq!(
        patched.signature_hash(),
        "5bcb79cd94249a7b9d6b39b621c3b9802b557b1f30849b39e0406299ee4ad76e"
    );
    assert_eq!(
        r.reasoning,
        "Rule-based resolution: layer=silver, datasets=['nfe', 'clientes'], pii=True."
    );
}

#[test]
fn substring_traps_do_not_fire() {
    let cat = catalog();
    let r = resolve("book the conference room for produtos", &cat);
    assert_eq!(names(&r), ["produtos"], "conference must not match nfe");
    let r = resolve("use the drawing tool on produtos", &cat);
    assert_eq!(
        r.signature.target_layer,
        TargetLayer::Silver,
        "drawing is not raw"
    );
    let r = resolve("finally load nfe", &cat);
    assert_eq!(
        r.signature.target_layer,
        TargetLayer::Gold,
        "finally starts with final"
    );
    let r = resolve("summer sales of produtos", &cat);
    assert_eq!(
        r.signature.intent, "aggregate_and_persist",
        "summer starts with summ"
    );
    let r = resolve("copy nfe_backup to silver", &cat);
    assert!(names(&r).is_empty(), "nfe_backup is one word");
    assert_eq!(r.confidence, 0.30);
    let r = resolve("UNJOINED rawhide", &cat);
    assert_eq!(
        r.signature.target_layer,
        TargetLayer::Bronze,
        "rawhide starts with raw"
    );
    assert_eq!(
        r.signature.intent, "transform_and_persist",
        "unjoined does not start with join"
    );
    // Order in the text does not matter: catalog key order.
    let r = resolve("produtos then clientes then NFE", &cat);
    assert_eq!(names(&r), ["nfe", "clientes", "produtos"]);
}

#[test]
fn grounded_constraints() {
    let cat = catalog();
    let c = |t: &str| resolve(t, &cat).signature.constraints;
    // PII asked to be anonymised → true; PII alone → false; no PII → vacuously true.
    assert!(!c("join nfe with clientes into silver").no_pii_raw);
    assert!(c("join nfe with clientes into silver, anonymise emails").no_pii_raw);
    assert!(c("join nfe with clientes, hashed cpf").no_pii_raw);
    assert!(c("join nfe with clientes and drop PII").no_pii_raw);
    assert!(c("join nfe with produtos").no_pii_raw);
    // Time scope → the datasets' own partition columns (produtos has none).
    assert_eq!(
        c("daily join of nfe and produtos").partition_by,
        ["processing_date"]
    );
    assert_eq!(
        c("load produtos for the last 7 days").partition_by,
        Vec::<String>::new()
    );
    assert_eq!(
        c("join nfe and produtos").partition_by,
        Vec::<String>::new()
    );
    // Append/overwrite → no merge key; bronze never needs one.
    assert!(!c("append nfe to silver").merge_key_required);
    assert!(!c("full refresh of nfe in gold").merge_key_required);
    assert!(c("merge nfe into silver").merge_key_required);
    assert!(!c("ingest nfe into bronze").merge_key_required);
    // Budgets.
    assert_eq!(c("join nfe, budget 20 dbu").max_cost_dbu_f64(), Some(20.0));
    assert_eq!(c("join nfe max 20 DBU").max_cost_dbu_f64(), Some(20.0));
    assert_eq!(c("join nfe with 3 retries").max_cost_dbu, None);
    let v = serde_json::to_value(c("join nfe, budget 20 dbu")).unwrap();
    assert_eq!(serde_json::to_string(&v["max_cost_dbu"]).unwrap(), "20.0");
    let own = Catalog::from_value(&json!({"datasets": {
        "orders": {"partition_column": "dt"}, "events": {"partition_column": "event_day"},
        "more_orders": {"partition_column": "dt"}
    }}))
    .unwrap();
    let r = resolve("incremental load of orders, events and more_orders", &own);
    assert_eq!(r.signature.constraints.partition_by, ["dt", "event_day"]);
    assert!(r.signature.constraints.enforce_types && r.signature.constraints.custom.is_empty());
}

#[test]
fn portuguese_and_combined_packs() {
    let cat = catalog();
    let pt = RuleBasedNormalizer::new(vec![KeywordPack::portuguese()]);
    let both = RuleBasedNormalizer::english_and_portuguese();
    let run = |n: &RuleBasedNormalizer, t: &str| n.resolve(&NormalizerInput::new(t, &cat, "x"));
    let r = run(&pt, "Carregar NFe na camada ouro, diário, custo máximo 20");
    assert_eq!(r.signature.target_layer, TargetLayer::Gold);
    assert_eq!(r.signature.intent, "ingest");
    assert_eq!(r.signature.domain, "fiscal_data_processing");
    assert_eq!(r.signature.constraints.partition_by, ["processing_date"]);
    assert_eq!(r.signature.constraints.max_cost_dbu_f64(), Some(20.0));
    let r = run(&pt, "conciliar clientes na prata e anonimizar cpf");
    assert_eq!(r.signature.target_layer, TargetLayer::Silver);
    assert_eq!(r.signature.intent, "reconciliation_and_persist");
    assert_eq!(r.signature.domain, "customer_data");
    assert!(r.signature.constraints.no_pii_raw);
    // English words are unknown to the Portuguese pack, known to the combination.
    assert_eq!(
        run(&pt, "aggregate produtos").signature.intent,
        "transform_and_persist"
    );
    assert_eq!(
        run(&both, "aggregate produtos").signature.intent,
        "aggregate_and_persist"
    );
    assert_eq!(
        run(&both, "agrupar produtos").signature.intent,
        "aggregate_and_persist"
    );
    assert_eq!(
        run(&both, "pagamentos de produtos").signature.domain,
        "financial_data"
    );
    // A user pack from JSON adds an intent after the built-in ones.
    let user = KeywordPack::from_value(&json!({"intents": {"deduplicate": ["dedup"]}})).unwrap();
    let n = RuleBasedNormalizer::new(vec![KeywordPack::english(), user]);
    assert_eq!(run(&n, "dedupe produtos").signature.intent, "deduplicate");
    assert_eq!(
        run(&n, "dedupe and load produtos").signature.intent,
        "ingest"
    );
    assert!(
        RuleBasedNormalizer::new(vec![])
            .resolve(&NormalizerInput::new("gold join", &cat, "x"))
            .signature
            .target_layer
            == TargetLayer::Silver
    );
}

#[test]
fn strict_mode_and_environment() {
    let cat = catalog();
    let env = [
        DatasetState {
            name: "nfe".into(),
            state: "committed_not_published".into(),
        },
        DatasetState {
            name: "clientes".into(),
            state: "published".into(),
        },
        DatasetState {
            name: "produtos".into(),
            state: "partially_committed".into(),
        },
    ];
    let ctx = ExecutionContext {
        policy_bundle_version: "prod-v1".into(),
        catalog_snapshot_version: "cat-1".into(),
        context_registry_version_id: "v_initial".into(),
    };
    let input = NormalizerInput::new("join nfe with clientes", &cat, "id-9")
        .with_environment(&env)
        .with_context(ctx.clone())
        .strict(0.80);
    let r = RuleBasedNormalizer::default().normalize(&input).unwrap();
    assert_eq!(r.confidence, 0.75);
    assert_eq!(r.ambiguity, AmbiguityLevel::High);
    assert_eq!(
        r.competing_interpretations,
        ["Confidence 0.75 is below the minimum 0.80; the intent may mean something else."]
    );
    assert_eq!(r.signature.execution_context, ctx);
    assert_eq!(
        r.environment_constraints,
        [
            "nfe.state=committed_not_published -> publish_allowed=false",
            "produtos.state=partially_committed -> publish_allowed=false"
        ]
    );
    // Non-strict, the same intent is medium.
    let r = resolve("join nfe with clientes", &cat);
    assert_eq!(r.ambiguity, AmbiguityLevel::Medium);
    assert!(r.competing_interpretations.is_empty());
}

#[test]
fn cli_shape_and_determinism() {
    let cat = catalog();
    let a = resolve("Join NFe with Clientes and persist to Gold", &cat);
    let b = resolve("Join NFe with Clientes and persist to Gold", &cat);
    assert_eq!(a, b);
    let v = a.to_cli_value();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["signature", "resolution"]);
    let rkeys: Vec<&String> = v["resolution"].as_object().unwrap().keys().collect();
    assert_eq!(
        rkeys,
        [
            "confidence",
            "ambiguity",
            "confirmation_mode",
            "competing_interpretations",
            "reasoning"
        ]
    );
    assert_eq!(v["resolution"]["confidence"], json!(0.75));
    assert_eq!(v["resolution"]["confirmation_mode"], "human_escalation");
    assert_eq!(v["signature"]["datasets"][0]["size_gb"], json!(4000));
    let back: Resolution = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
    assert_eq!(back, a);
    assert!(serde_json::to_value(&a).unwrap().get("llm").is_none());
    let _: &Value = &v;
}
