//! Static validation works on parsed forms: each fault code fires on code that has the
//! problem, and text inside comments or strings does not count as code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use cfa_codegen::validate::jinja::{ConfigValue, compile};
use cfa_codegen::validate::python::{Token, tokenize, validate_pyspark};
use cfa_codegen::validate::sql::{validate_dbt_model, validate_sql};
use cfa_codegen::{StaticValidationResult, validate_artifact};
use cfa_types::{FaultFamily, StateSignature};
use common::*;
use serde_json::json;

fn silver() -> StateSignature {
    sig(&ok_sig())
}

fn bronze_plain() -> StateSignature {
    sig(
        &json!({"domain": "d", "intent": "i", "target_layer": "bronze",
                "datasets": [{"name": "t", "pii_columns": ["cpf"]}],
                "constraints": {"partition_by": []}}),
    )
}

fn codes(r: &StaticValidationResult) -> Vec<String> {
    r.faults.iter().map(|f| f.code.to_string()).collect()
}

fn has(r: &StaticValidationResult, code: &str) -> bool {
    r.faults.iter().any(|f| f.code == code)
}

#[test]
fn sql_forbidden_statements() {
    let s = bronze_plain();
    let cases = [
        ("DROP TABLE t;", "STATIC_SQL_DROP_TABLE"),
        ("DROP SCHEMA s CASCADE;", "STATIC_SQL_DROP_DATABASE"),
        ("DROP DATABASE d;", "STATIC_SQL_DROP_DATABASE"),
        ("TRUNCATE t;", "STATIC_SQL_TRUNCATE"),
        ("DELETE FROM t;", "STATIC_SQL_DELETE_WITHOUT_WHERE"),
        ("ALTER TABLE t ADD COLUMN x INT;", "STATIC_SQL_ALTER_TABLE"),
        (
            "GRANT SELECT ON t TO bob;",
            "STATIC_SQL_FORBIDDEN_STATEMENT",
        ),
        ("SELECT 1; DROP TABLE x", "STATIC_SQL_DROP_TABLE"),
    ];
    for (sql, code) in cases {
        let r = validate_sql(sql, &s);
        assert!(!r.passed, "{sql}");
        assert!(has(&r, code), "{sql}: {:?}", codes(&r));
        assert!(
            r.faults
                .iter()
                .all(|f| f.family == FaultFamily::StaticSafety)
        );
    }
    let ok = validate_sql(
        "DELETE FROM t WHERE id = 1; SELECT sha256(convert_to(cpf, 'UTF8')) FROM t;",
        &s,
    );
    assert!(ok.passed, "{:?}", codes(&ok));
}

#[test]
fn sql_text_in_comments_and_strings_is_not_code() {
    let s = bronze_plain();
    let r = validate_sql(
        "-- DROP TABLE t; cpf\nSELECT 'DROP TABLE t; TRUNCATE cpf' AS note /* DELETE FROM t */;",
        &s,
    );
    assert!(r.passed, "{:?}", codes(&r));
}

#[test]
fn sql_parse_errors_block() {
    let r = validate_sql("SELEC 1 FROM", &bronze_plain());
    assert_eq!(codes(&r), ["STATIC_SQL_PARSE_ERROR"]);
}

#[test]
fn sql_raw_pii_and_wildcards() {
    let s = bronze_plain();
    let r = validate_sql("SELECT \"cpf\" FROM t;", &s);
    assert_eq!(codes(&r), ["STATIC_RAW_PII_REFERENCE_CPF"]);
    let r = validate_sql("SELECT id FROM t WHERE CPF = '1';", &s);
    assert_eq!(codes(&r), ["STATIC_RAW_PII_REFERENCE_CPF"]);
    let r = validate_sql("SELECT * FROM t;", &s);
    assert_eq!(codes(&r), ["STATIC_PII_WILDCARD_SELECT"]);
    let r = validate_sql(
        "SELECT encode(sha256(convert_to(CAST(t.cpf AS TEXT), 'UTF8')), 'hex') AS cpf_hash FROM t;",
        &s,
    );
    assert!(r.passed, "{:?}", codes(&r));
    // no_pii_raw off: nothing to protect.
    let mut raw = ok_sig();
    raw["constraints"]["no_pii_raw"] = json!(false);
    raw["target_layer"] = json!("bronze");
    raw["constraints"]["partition_by"] = json!([]);
    assert!(validate_sql("SELECT cpf FROM t;", &sig(&raw)).passed);
}

#[test]
fn sql_missing_merge_and_partition() {
    let s = silver();
    let r = validate_sql("INSERT INTO x SELECT a FROM y;", &s);
    assert!(has(&r, "STATIC_MISSING_MERGE_OPERATION"));
    assert!(has(&r, "STATIC_MISSING_PARTITION_FILTER"));
    let r = validate_sql(
        "MERGE INTO x USING y ON x.a = y.a WHEN NOT MATCHED THEN INSERT (a) VALUES (y.a); SELECT a FROM y WHERE processing_date >= '2026-01-01';",
        &s,
    );
    assert!(r.passed, "{:?}", codes(&r));
}

#[test]
fn every_backend_catches_a_tampered_raw_pii_reference() {
    for backend in ["sql", "dbt", "pyspark"] {
        let (s, mut a) = generate(backend, &ok_sig(), true);
        assert!(validate_artifact(&a, &s).passed);
        let main = &mut a.files[0].content;
        *main = match backend {
            "pyspark" => main.replace(
                ".withColumn(\"cpf_hash\", F.sha2(F.col(\"cpf\").cast(\"string\"), 256))",
                ".withColumn(\"cpf_hash\", F.col(\"cpf\"))",
            ),
            _ => main.replace(
                "encode(sha256(convert_to(CAST(\"cpf\" AS TEXT), 'UTF8')), 'hex') AS \"cpf_hash\"",
                "\"cpf\" AS \"cpf_hash\"",
            ),
        };
        let r = validate_artifact(&a, &s);
        assert_eq!(codes(&r), ["STATIC_RAW_PII_REFERENCE_CPF"], "{backend}");
    }
}

#[test]
fn every_backend_catches_a_removed_partition_filter() {
    for backend in ["sql", "dbt", "pyspark"] {
        let (s, mut a) = generate(backend, &ok_sig(), true);
        let main = &mut a.files[0].content;
        let kept: Vec<&str> = main
            .lines()
            .filter(|l| {
                !l.contains("WHERE \"processing_date\"")
                    && !l.contains(".filter(F.col(\"processing_date\")")
            })
            .collect();
        *main = kept.join("\n");
        let r = validate_artifact(&a, &s);
        assert_eq!(codes(&r), ["STATIC_MISSING_PARTITION_FILTER"], "{backend}");
    }
}

#[test]
fn dbt_models_compile_then_parse() {
    let s = silver();
    let (_, a) = generate("dbt", &ok_sig(), true);
    let c = compile(&a.files[0].content).unwrap();
    assert!(c.sql.contains("FROM \"cfa_sources\".\"clientes\""));
    assert!(c.sql.contains("CAST('1970-01-01' AS DATE)"));
    assert!(!c.sql.contains("{{"));
    assert_eq!(c.config_str("materialized"), Some("incremental"));
    assert_eq!(c.config_list("unique_key"), Some(vec!["nfe_id".to_owned()]));
    assert!(c.config.contains(&(
        "incremental_strategy".into(),
        ConfigValue::Str("merge".into())
    )));

    let table = a.files[0].content.replace(
        "materialized='incremental', incremental_strategy='merge'",
        "materialized='table'",
    );
    assert!(has(
        &validate_dbt_model(&table, &s),
        "STATIC_MISSING_MERGE_OPERATION"
    ));
    for bad in [
        "{% if is_incremental() %}select 1{% endif %}",
        "{{ run_query('drop table x') }}",
        "{{ source('a', 'b; drop') }}",
        "{{ config(materialized='table') }",
        "select 1 }}",
        "{{ var('unknown_var') }}",
    ] {
        let r = validate_dbt_model(bad, &s);
        assert_eq!(codes(&r), ["STATIC_DBT_TEMPLATE_ERROR"], "{bad}");
    }
    let r = validate_dbt_model("select 1 as a; drop table x", &bronze_plain());
    assert!(has(&r, "STATIC_DBT_DROP_TABLE") && has(&r, "STATIC_DBT_FORBIDDEN_STATEMENT"));
    let r = validate_dbt_model("delete from x where a = 1", &bronze_plain());
    assert!(has(&r, "STATIC_DBT_DELETE"));
}

#[test]
fn dbt_yaml_files_are_valid_yaml() {
    for v in [ok_sig(), three_sig(), aggregate_sig(), bronze_sig()] {
        let (_, a) = generate("dbt", &v, true);
        for f in a.files.iter().filter(|f| f.path.ends_with(".yml")) {
            let parsed: serde_json::Value = serde_saphyr::from_str(&f.content)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", f.path));
            assert_eq!(
                parsed.get("version").and_then(|x| x.as_i64()).unwrap_or(2),
                2
            );
        }
        let schema: serde_json::Value =
            serde_saphyr::from_str(&a.file("models/schema.yml").unwrap().content).unwrap();
        let cols = schema["models"][0]["columns"].as_array().unwrap();
        for key in cols.iter().filter(|c| c.get("data_tests").is_some()) {
            assert_eq!(key["data_tests"][0], "not_null");
        }
    }
}

#[test]
fn python_tokenizer_understands_strings_and_comments() {
    let toks = tokenize(
        "x = 'a # not comment' # real comment\ny = \"\"\"multi\nline\"\"\" + r'\\d' + f\"{z}\"\n",
    )
    .unwrap();
    assert!(toks.contains(&Token::Str {
        value: "a # not comment".into(),
        formatted: false
    }));
    assert!(toks.contains(&Token::Str {
        value: "multi\nline".into(),
        formatted: false
    }));
    assert!(toks.contains(&Token::Str {
        value: "\\d".into(),
        formatted: false
    }));
    assert!(toks.contains(&Token::Str {
        value: "{z}".into(),
        formatted: true
    }));
    assert!(
        !toks
            .iter()
            .any(|t| matches!(t, Token::Name(n) if n == "comment"))
    );
    assert!(tokenize("x = 'unterminated").is_err());
    assert_eq!(
        tokenize("'\\x63pf'").unwrap(),
        [Token::Str {
            value: "cpf".into(),
            formatted: false
        }]
    );
}

#[test]
fn pyspark_forbidden_calls_and_imports() {
    let s = bronze_plain();
    let cases = [
        ("rows = df.collect()", "STATIC_FORBIDDEN_COLLECT"),
        ("pdf = df.toPandas()", "STATIC_FORBIDDEN_TOPANDAS"),
        ("x = a.crossJoin(b)", "STATIC_FORBIDDEN_CROSSJOIN"),
        ("import os", "STATIC_FORBIDDEN_IMPORT_OS"),
        ("import sys, os.path", "STATIC_FORBIDDEN_IMPORT_OS"),
        (
            "from subprocess import run",
            "STATIC_FORBIDDEN_IMPORT_SUBPROCESS",
        ),
        ("m = __import__('os')", "STATIC_FORBIDDEN_DYNAMIC_CODE"),
        ("x = 'unterminated", "STATIC_PYTHON_TOKENIZE_ERROR"),
    ];
    for (code, expected) in cases {
        let r = validate_pyspark(code, &s);
        assert!(has(&r, expected), "{code}: {:?}", codes(&r));
    }
    let r = validate_pyspark(
        "# df.collect() import os\nx = 'df.toPandas() crossJoin'\n",
        &s,
    );
    assert!(r.passed, "{:?}", codes(&r));
}

#[test]
fn pyspark_pii_append_merge_partition() {
    let s = bronze_plain();
    assert_eq!(
        codes(&validate_pyspark("df.select(F.col(\"cpf\"))", &s)),
        ["STATIC_RAW_PII_REFERENCE_CPF"]
    );
    assert_eq!(
        codes(&validate_pyspark("df.select(df.cpf)", &s)),
        ["STATIC_RAW_PII_REFERENCE_CPF"]
    );
    assert_eq!(
        codes(&validate_pyspark("df.select(df[\"CPF\"])", &s)),
        ["STATIC_RAW_PII_REFERENCE_CPF"]
    );
    assert_eq!(
        codes(&validate_pyspark("q = f\"select {cpf} from t\"", &s)),
        ["STATIC_RAW_PII_REFERENCE_CPF"]
    );
    for qualified in [
        "df.select(F.col(\"d1.cpf\"))",
        "t.merge(s, \"t.`cpf` = s.`cpf`\")",
        "df.selectExpr(\"upper(cpf) AS x\")",
    ] {
        assert_eq!(
            codes(&validate_pyspark(qualified, &s)),
            ["STATIC_RAW_PII_REFERENCE_CPF"],
            "{qualified}"
        );
    }
    assert!(validate_pyspark("df.select(F.col(\"d1.cpf_hash\").alias(\"cpf\"))", &s).passed);
    assert!(
        validate_pyspark(
            "df.withColumn(\"h\", F.sha2(F.col(\"cpf\").cast(\"string\"), 256)).drop(\"cpf\")",
            &s
        )
        .passed
    );

    let silver = silver();
    let r = validate_pyspark(
        "df.filter(F.col(\"processing_date\") >= x)\ndf.write.mode(\"append\").saveAsTable(\"silver_x\")",
        &silver,
    );
    assert!(has(&r, "STATIC_APPEND_TO_PROTECTED"));
    assert!(has(&r, "STATIC_MISSING_MERGE_OPERATION"));
    let r = validate_pyspark("t.merge(s, 'c').whenMatchedUpdateAll().execute()", &silver);
    assert_eq!(codes(&r), ["STATIC_MISSING_PARTITION_FILTER"]);
    // A partition name in a comment or outside filter()/where() does not count.
    let r = validate_pyspark(
        "# .filter(F.col(\"processing_date\"))\ndf.select(\"processing_date\")\nt.merge(s, 'c').whenMatchedUpdateAll()",
        &silver,
    );
    assert_eq!(codes(&r), ["STATIC_MISSING_PARTITION_FILTER"]);
}

#[test]
fn schema_contract_forbidden_columns_ignore_their_own_hashing() {
    use cfa_codegen::{SchemaContract, validate_artifact_with};
    for backend in ["sql", "dbt", "pyspark"] {
        let (s, a) = generate(backend, &ok_sig(), true);
        let hashed_only = SchemaContract {
            forbidden_columns: vec!["cpf".into()],
        };
        let r = validate_artifact_with(&a, &s, Some(&hashed_only));
        assert!(r.passed, "{backend}: {:?}", codes(&r));
        assert_eq!(
            r.checks_performed,
            validate_artifact(&a, &s).checks_performed + 1
        );
        let used = SchemaContract {
            forbidden_columns: vec!["NOME".into()],
        };
        let r = validate_artifact_with(&a, &s, Some(&used));
        assert_eq!(codes(&r), ["STATIC_FORBIDDEN_COLUMN_NOME"], "{backend}");
    }
}

#[test]
fn dbt_composite_merge_key_gets_a_singular_uniqueness_test() {
    let v = json!({"domain": "fiscal", "intent": "persist", "target_layer": "silver",
        "datasets": [{"name": "nfe", "merge_keys": ["nfe_id", "item"]}],
        "constraints": {"partition_by": []}});
    let cat = cfa_types::Catalog::from_value(
        &json!({"datasets": {"nfe": {"columns": ["nfe_id", "item", "valor"]}}}),
    )
    .unwrap();
    let s = sig(&v);
    let p = plan(&s, Some(&cat));
    let reg = cfa_codegen::BackendRegistry::with_builtins();
    let (a, r) = cfa_codegen::generate_validated(reg.get("dbt").unwrap(), &p, &s).unwrap();
    assert!(r.passed, "{:?}", codes(&r));
    let t = a.file("tests/silver_nfe_unique_key.sql").unwrap();
    assert!(t.content.contains("GROUP BY \"nfe_id\", \"item\""));
    let compiled = compile(&t.content).unwrap();
    assert!(compiled.sql.contains("FROM \"silver_nfe\""));
    let schema = &a.file("models/schema.yml").unwrap().content;
    assert!(!schema.contains("- unique"), "{schema}");
    assert!(a.files[0].content.contains("unique_key=['nfe_id', 'item']"));
}
