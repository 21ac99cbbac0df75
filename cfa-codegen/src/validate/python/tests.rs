//! The fast tokenizer and checks against the reference implementation, and the cache:
//! a hit is what the uncached path returns, other inputs miss, hostile code is refused,
//! and the cache stays bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::{Backend, GeneratedArtifact, Provenance, PySparkBackend};
use cfa_plan::{ExecutionPlanner, Planner};
use cfa_types::Catalog;
use proptest::prelude::*;
use serde_json::{Value, json};

fn sig(v: &Value) -> StateSignature {
    StateSignature::from_value(v).unwrap()
}

fn ok_sig() -> Value {
    cfa_test_support::ok_signature()
}

/// Signatures exercising every input of the checks: PII protection on and off,
/// partition filters, protected and unprotected layers.
fn signatures() -> Vec<StateSignature> {
    let ok = ok_sig();
    let mut raw_ok = ok.clone();
    raw_ok["constraints"]["no_pii_raw"] = json!(false);
    let mut gold = ok.clone();
    gold["intent"] = json!("aggregate_and_persist");
    gold["target_layer"] = json!("gold");
    let mut upper = ok.clone();
    upper["constraints"]["partition_by"] = json!(["Processing_Date"]);
    let bronze = json!({"domain": "fiscal", "intent": "ingest", "target_layer": "bronze",
        "datasets": [{"name": "clientes", "pii_columns": ["cpf", "Email"], "merge_keys": ["cliente_id"]}],
        "constraints": {"no_pii_raw": true, "merge_key_required": true, "partition_by": []}});
    let silver_no_merge = json!({"domain": "fiscal", "intent": "ingest", "target_layer": "silver",
        "datasets": [{"name": "clientes", "pii_columns": ["cpf"], "merge_keys": ["cliente_id"]}],
        "constraints": {"no_pii_raw": true, "merge_key_required": false, "partition_by": ["dt"]}});
    [ok, raw_ok, gold, upper, bronze, silver_no_merge]
        .iter()
        .map(sig)
        .collect()
}

fn contracts() -> Vec<Option<SchemaContract>> {
    vec![
        None,
        Some(SchemaContract::default()),
        Some(SchemaContract {
            forbidden_columns: vec!["NOME".into(), "valor".into(), "nome".into()],
        }),
    ]
}

fn catalog() -> Catalog {
    Catalog::from_value(&json!({"datasets": {
      "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date",
              "merge_keys": ["nfe_id"], "columns": ["nfe_id", "cliente_id", "produto_id", "valor", "processing_date"]},
      "clientes": {"classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
                   "merge_keys": ["cliente_id"], "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]}
    }}))
    .unwrap()
}

/// Generated scripts (with and without catalog columns) and the signature of each.
fn generated() -> Vec<(StateSignature, GeneratedArtifact)> {
    let cat = catalog();
    let mut out = Vec::new();
    for s in signatures() {
        for c in [Some(&cat), None] {
            let Ok(plan) = ExecutionPlanner::default().plan(&s, c) else {
                continue;
            };
            if let Ok(a) = PySparkBackend::default().generate(&plan, &s) {
                out.push((s.clone(), a));
            }
        }
    }
    assert!(out.len() >= 6, "only {} scripts generated", out.len());
    out
}

fn provenance(n: usize) -> Provenance {
    Provenance {
        decision_id: format!("dec-{n}"),
        content_hash: format!("{n:064x}"),
        policy_bundle: "v1.0 | evil\nimport os".into(),
        policy_bundle_hash: if n.is_multiple_of(2) {
            String::new()
        } else {
            "ab".repeat(32)
        },
    }
}

fn main_src(a: &GeneratedArtifact) -> &str {
    &a.main_file().unwrap().content
}

/// Whether `cache` holds an entry for exactly this source and context.
fn holds<const N: usize>(cache: &SlotCache<Entry, N>, src: &str, context: &Context) -> bool {
    let body = after_leading_comments(src);
    cache
        .get(hash_of(&(body, context)), |e| {
            *e.body == *body && e.context == *context
        })
        .is_some()
}

/// Every path (reference, uncached, cached cold and warm, the global cache) agrees.
fn assert_all_paths_agree(src: &str, s: &StateSignature, contract: Option<&SchemaContract>) {
    let want = reference::validate_pyspark_with(src, s, contract);
    assert_eq!(validate_pyspark_uncached(src, s, contract), want, "{src}");
    let local: SlotCache<Entry, 4> = SlotCache::new();
    let cx = Context::new(s, contract);
    assert_eq!(validate_cached(&local, src, cx.clone()), want, "{src}");
    assert_eq!(validate_cached(&local, src, cx), want, "{src}");
    assert_eq!(validate_pyspark_with(src, s, contract), want, "{src}");
}

#[test]
fn tokenizer_matches_the_reference_on_known_inputs() {
    let cases = [
        "",
        "x = 'a # not comment' # real comment\ny = \"\"\"multi\nline\"\"\" + r'\\d' + f\"{z}\"\n",
        "x = 'unterminated",
        "x = 'new\nline'",
        "'\\x63pf' b'\\u00e9' Rb'\\n' fR\"\\t\" u'\\\n' '\\",
        "'''a''' \"\"\"\"\"\" '' \"\" ''''",
        "é = ñ + 日本 ‿x \u{a0}\u{2028}y € 1.5e3_0 0x1F",
        "a\\\nb # é\n\r\n\t\u{b}\u{c}",
        "s = '\\é' + \"\\日\" + 'ok'",
        "ǅx İ K",
    ];
    for src in cases {
        let fast = lex(src).map(|t| t.into_iter().map(Tok::into_owned).collect::<Vec<_>>());
        assert_eq!(fast, reference::tokenize(src), "{src:?}");
        assert_eq!(tokenize(src), reference::tokenize(src), "{src:?}");
    }
}

/// Fragments of Python touching every check, to be glued together at random.
const FRAGMENTS: &[&str] = &[
    "df",
    ".",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    " ",
    "\n",
    "# comment\n",
    "#",
    "F.col(\"cpf\")",
    "F.sha2(F.col(\"cpf\"), 256)",
    ".drop(\"cpf\")",
    ".alias(\"cpf\")",
    "\"d1.cpf\"",
    "\"t.`cpf` = s.`cpf`\"",
    "F.expr(\"upper(CPF)\")",
    "f\"{cpf}\"",
    "f'x'",
    ".cpf",
    ".Cpf",
    ".nome",
    ".NOME",
    "\"Nome\"",
    "\"valor\"",
    "collect",
    "toPandas",
    "crossJoin",
    "eval",
    "exec",
    "__import__",
    "importlib",
    "compile",
    "import",
    "from",
    "os",
    "subprocess",
    "path",
    ".merge",
    ".whenMatchedUpdateAll",
    ".whenMatchedUpdate",
    ".insertInto",
    "\"append\"",
    "'APPEND'",
    ".mode",
    ".save",
    ".saveAsTable",
    ".option",
    ".filter",
    ".where",
    "\"processing_date >= x\"",
    "'Processing_Date'",
    "\"dt\"",
    "how",
    "\"inner\"",
    "sha2",
    "'''cpf\n'''",
    "r'\\cpf'",
    "'\\x63pf'",
    "\"İ\"",
    "\"K\"",
    "é",
    "'unterminated",
    "\"é.cpf\"",
    "get",
    "table",
    "cast",
    "1.5",
];

/// Every call name a check looks at, and arguments it cares about.
const CALLS: &[&str] = &[
    "sha2",
    "drop",
    "alias",
    "format",
    "mode",
    "option",
    "cast",
    "table",
    "saveAsTable",
    "forName",
    "tableExists",
    "get",
    "save",
    "insertInto",
    "filter",
    "where",
    "select",
];
const ARGS: &[&str] = &[
    "\"cpf\"",
    "\"append\"",
    "\"processing_date\"",
    "\"nome\"",
    "\"d0.Email\"",
    "f\"{x}cpf\"",
];

fn fragments() -> impl Strategy<Value = String> {
    let call = (prop::sample::select(CALLS), prop::sample::select(ARGS))
        .prop_map(|(c, a)| format!(".{c}({a})"));
    let piece = prop_oneof![
        prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
        call
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn tokenizer_matches_the_reference(src in "[a-zA-Z_0-9 \n\r\t'\"#\\\\.(){}=,fFrRbBuUéİ€\u{a0}\u{2028}]{0,80}") {
        let fast = lex(&src).map(|t| t.into_iter().map(Tok::into_owned).collect::<Vec<_>>());
        prop_assert_eq!(fast, reference::tokenize(&src));
    }

    #[test]
    fn tokenizer_matches_the_reference_on_any_text(src in "\\PC{0,80}") {
        prop_assert_eq!(tokenize(&src), reference::tokenize(&src));
    }

    #[test]
    fn checks_match_the_reference(src in fragments(), si in 0usize..6, ci in 0usize..3) {
        let sigs = signatures();
        let contracts = contracts();
        assert_all_paths_agree(&src, &sigs[si], contracts[ci].as_ref());
    }
}

#[test]
fn generated_scripts_agree_on_every_path_stamped_or_not() {
    for (s, a) in generated() {
        for contract in contracts() {
            assert_all_paths_agree(main_src(&a), &s, contract.as_ref());
            for n in 0..3 {
                let mut stamped = a.clone();
                stamped.stamp(&provenance(n));
                assert_ne!(main_src(&stamped), main_src(&a));
                assert_all_paths_agree(main_src(&stamped), &s, contract.as_ref());
            }
        }
    }
}

#[test]
fn a_stamped_copy_hits_the_entry_of_its_script_and_returns_the_uncached_result() {
    let cache: SlotCache<Entry, 64> = SlotCache::new();
    for (s, a) in generated() {
        let cx = Context::new(&s, None);
        let first = validate_cached(&cache, main_src(&a), cx.clone());
        assert!(holds(&cache, main_src(&a), &cx));
        let mut stamped = a.clone();
        stamped.stamp(&provenance(7));
        let src = main_src(&stamped);
        // The header is leading comment lines: same body, so the entry is shared.
        assert!(holds(&cache, src, &cx));
        let hit = validate_cached(&cache, src, cx);
        assert_eq!(hit, first);
        assert_eq!(hit, validate_pyspark_uncached(src, &s, None));
        assert_eq!(hit, reference::validate_pyspark_with(src, &s, None));
    }
}

#[test]
fn other_inputs_miss() {
    let cache: SlotCache<Entry, 64> = SlotCache::new();
    let (s, a) = generated().into_iter().next().unwrap();
    let src = main_src(&a).to_owned();
    let cx = Context::new(&s, None);
    validate_cached(&cache, &src, cx.clone());
    assert!(holds(&cache, &src, &cx));

    // A different body.
    let edited = format!("{src}x = 1\n");
    assert!(!holds(&cache, &edited, &cx));
    // A different signature or contract.
    for other in signatures() {
        let ocx = Context::new(&other, None);
        if ocx != cx {
            assert!(!holds(&cache, &src, &ocx));
            let got = validate_cached(&cache, &src, ocx);
            assert_eq!(got, reference::validate_pyspark_with(&src, &other, None));
        }
    }
    for contract in contracts().into_iter().skip(1) {
        let ccx = Context::new(&s, contract.as_ref());
        assert_ne!(ccx, cx, "{contract:?}");
        assert!(!holds(&cache, &src, &ccx));
        let got = validate_cached(&cache, &src, ccx);
        assert_eq!(
            got,
            reference::validate_pyspark_with(&src, &s, contract.as_ref())
        );
    }
    // A leading space makes a line code, not a header: not the same body.
    let indented = format!(" {src}");
    assert_ne!(
        after_leading_comments(&indented),
        after_leading_comments(&src)
    );
}

#[test]
fn hostile_code_is_refused_after_its_clean_script_was_cached() {
    let cache: SlotCache<Entry, 64> = SlotCache::new();
    for (s, a) in generated() {
        let src = main_src(&a);
        let cx = Context::new(&s, None);
        let clean = validate_cached(&cache, src, cx.clone());
        let hostile = [
            format!("{src}import os\n"),
            format!("# approved by decision x\nimport subprocess\n{src}"),
            format!("# header\n{src}rows = df_joined.collect()\n"),
            src.replacen("import datetime", "import datetime, os", 1),
            src.replacen(
                "from pyspark.sql import SparkSession",
                "from os import path",
                1,
            ),
            format!("{src}spark.sql(\"x\").crossJoin(y)\n"),
        ];
        for h in hostile {
            if h == src {
                continue;
            }
            let got = validate_cached(&cache, &h, cx.clone());
            assert!(!got.passed, "{h}");
            assert_ne!(got, clean);
            assert_eq!(got, reference::validate_pyspark_with(&h, &s, None));
            // And again, now from the cache.
            assert_eq!(validate_cached(&cache, &h, cx.clone()), got);
        }
    }
}

#[test]
fn sources_that_do_not_tokenize_are_never_cached() {
    let cache: SlotCache<Entry, 64> = SlotCache::new();
    let s = signatures().remove(0);
    let cx = Context::new(&s, None);
    let one = "# h\nx = 'unterminated";
    let two = "# h\n# h2\nx = 'unterminated";
    assert_eq!(after_leading_comments(one), after_leading_comments(two));
    let r1 = validate_cached(&cache, one, cx.clone());
    let r2 = validate_cached(&cache, two, cx.clone());
    assert_eq!(r1, reference::validate_pyspark_with(one, &s, None));
    assert_eq!(r2, reference::validate_pyspark_with(two, &s, None));
    // The message names the line, which the header moves.
    assert!(r1.faults[0].message.contains("line 2"), "{:?}", r1.faults);
    assert!(r2.faults[0].message.contains("line 3"), "{:?}", r2.faults);
    assert_eq!(cache.occupied(), 0);
}

#[test]
fn leading_comment_lines_are_all_that_is_skipped() {
    assert_eq!(after_leading_comments(""), "");
    assert_eq!(after_leading_comments("# a"), "");
    assert_eq!(after_leading_comments("# a\n#b\n\nx\n"), "\nx\n");
    assert_eq!(after_leading_comments("# a\nx # b\n# c\n"), "x # b\n# c\n");
    assert_eq!(after_leading_comments(" # a\n"), " # a\n");
    assert_eq!(
        after_leading_comments("x = '''\n# a\n'''"),
        "x = '''\n# a\n'''"
    );
    assert_eq!(after_leading_comments("#a\r# b\nimport os"), "import os");
}

#[test]
fn the_cache_stays_bounded() {
    let s = signatures().remove(0);
    let small: SlotCache<Entry, 8> = SlotCache::new();
    for n in 0..2_000 {
        let src = format!("x_{n} = spark.read.table(\"t\")\n");
        let cx = Context::new(&s, None);
        let got = validate_cached(&small, &src, cx);
        if n % 250 == 0 {
            assert_eq!(got, reference::validate_pyspark_with(&src, &s, None));
        }
        assert!(small.occupied() <= 8);
    }
    // Too large to keep: validated, not cached.
    let big_cache: SlotCache<Entry, 8> = SlotCache::new();
    let big = "x = 1\n".repeat(MAX_CACHED_SOURCE / 6 + 1);
    let got = validate_cached(&big_cache, &big, Context::new(&s, None));
    assert_eq!(got, reference::validate_pyspark_with(&big, &s, None));
    assert_eq!(big_cache.occupied(), 0);
    // The shared cache, after many distinct sources.
    for n in 0..5_000 {
        validate_pyspark(&format!("y_{n} = 1\n"), &s);
    }
    assert!(CACHE.occupied() <= 64);
}

#[test]
fn the_shared_cache_is_consistent_across_threads() {
    let scripts = generated();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let scripts = &scripts;
            scope.spawn(move || {
                for round in 0..20 {
                    for (i, (s, a)) in scripts.iter().enumerate() {
                        let mut stamped = a.clone();
                        stamped.stamp(&provenance(t * 1000 + round + i));
                        let src = main_src(&stamped);
                        assert_eq!(
                            validate_pyspark(src, s),
                            validate_pyspark_uncached(src, s, None)
                        );
                    }
                }
            });
        }
    });
    for (s, a) in &scripts {
        assert_eq!(
            validate_pyspark(main_src(a), s),
            reference::validate_pyspark_with(main_src(a), s, None)
        );
    }
}

#[test]
fn results_remembered_by_handle_are_the_artifacts_own() {
    // Every generated script under every signature, through handles: each result is the
    // reference's for that script and signature, whether the handle was just remembered
    // (same handle, another signature: its own context), an equal artifact behind another
    // handle, or a handle seen again after more artifacts than the memo keeps.
    let all = generated();
    let sigs = signatures();
    let handles: Vec<Arc<GeneratedArtifact>> =
        all.iter().map(|(_, a)| Arc::new(a.clone())).collect();
    assert!(handles.len() > BY_HANDLE);
    for round in 0..3 {
        for h in &handles {
            for s in &sigs {
                let want = reference::validate_pyspark_with(main_src(h), s, None);
                assert_eq!(validate_pyspark_shared(h, s), want, "round {round}");
                assert_eq!(validate_pyspark_shared(h, s), want, "round {round}, again");
                let copy = Arc::new(GeneratedArtifact::clone(h));
                assert_eq!(
                    validate_pyspark_shared(&copy, s),
                    want,
                    "round {round}, a copy"
                );
            }
        }
    }
    // A hostile artifact behind a fresh handle is refused even after its clean twin was
    // remembered (the memo never answers for another handle).
    let (s, clean) = all.first().unwrap();
    let clean = Arc::new(clean.clone());
    assert!(validate_pyspark_shared(&clean, s).passed);
    let mut hostile = GeneratedArtifact::clone(&clean);
    hostile
        .files
        .first_mut()
        .unwrap()
        .content
        .push_str("import os\n");
    let hostile = Arc::new(hostile);
    let got = validate_pyspark_shared(&hostile, s);
    assert!(!got.passed);
    assert_eq!(
        got,
        reference::validate_pyspark_with(main_src(&hostile), s, None)
    );
    // The memo stays bounded.
    HANDLES.with(|c| assert!(c.borrow().0.len() <= BY_HANDLE));
}

#[test]
fn a_context_is_of_exactly_the_signatures_that_build_it() {
    // The test signatures plus names that differ only in case, repeat, are non-ASCII
    // (a final sigma lowercases by its position), or are missing or extra.
    let mut sigs = signatures();
    let base = ok_sig();
    let variants = [
        json!(["Processing_Date", "dt"]),
        json!(["processing_date", "DT"]),
        json!(["ΟΔΟΣ"]),
        json!(["οδος"]),
        json!(["οδοσ"]),
    ];
    for p in variants {
        let mut v = base.clone();
        v["constraints"]["partition_by"] = p.clone();
        sigs.push(sig(&v));
        v["datasets"][0]["pii_columns"] = p;
        sigs.push(sig(&v));
    }
    let mut v = base.clone();
    v["datasets"][0]["pii_columns"] = json!(["cpf", "CPF", "Email", "cpf"]);
    sigs.push(sig(&v));
    v["datasets"][0]["pii_columns"] = json!(["cpf", "email"]);
    sigs.push(sig(&v));
    v["datasets"][0]["pii_columns"] = json!(["email", "cpf"]);
    sigs.push(sig(&v));
    v["constraints"]["no_pii_raw"] = json!(false);
    sigs.push(sig(&v));
    let mut matches = 0;
    for a in &sigs {
        let cx = Context::new(a, None);
        assert!(cx.is_of(a));
        for b in &sigs {
            assert_eq!(cx.is_of(b), cx == Context::new(b, None));
            matches += usize::from(cx.is_of(b));
        }
        for c in contracts().iter().flatten() {
            assert!(!Context::new(a, Some(c)).is_of(a));
        }
    }
    assert!(
        matches > sigs.len(),
        "some distinct signatures share a context"
    );
}
