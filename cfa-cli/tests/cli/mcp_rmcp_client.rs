//! `cfa mcp` driven by the official Rust SDK's client (rmcp) over a child process:
//! handshake, tool list and schemas, every tool on real data, and the agent loop
//! replan → apply patches → approve.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;

/// The datasets list their columns, so the planner can ground the nfe/clientes join
/// on the key both have (cliente_id).
const CATALOG: &str = r#"{"datasets": {
  "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [],
          "partition_column": "processing_date", "merge_keys": ["nfe_id"],
          "columns": ["nfe_id", "cliente_id", "valor", "processing_date"]},
  "clientes": {"classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"],
               "partition_column": "processing_date", "merge_keys": ["cliente_id"],
               "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]}}}"#;

fn signature(no_pii_raw: bool, enforce_types: bool, partition_by: &[&str]) -> Value {
    json!({
        "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
        "datasets": [
            {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [],
             "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
            {"name": "clientes", "classification": "sensitive", "size_gb": 0.5,
             "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
             "merge_keys": ["cliente_id"]}
        ],
        "constraints": {"no_pii_raw": no_pii_raw, "merge_key_required": true,
                        "enforce_types": enforce_types, "partition_by": partition_by,
                        "max_cost_dbu": 20.0, "custom": {}},
        "execution_context": {"policy_bundle_version": "prod-v1.0",
                              "catalog_snapshot_version": "cat-2026-01",
                              "context_registry_version_id": "v_initial"},
        "intent_id": cfa_test_support::REFERENCE_INTENT_ID,
        "source_intent_raw": "Join NFe with Clientes"
    })
}

async fn connect(dir: &Path, extra: &[&str]) -> RunningService<RoleClient, ()> {
    let catalog = dir.join("catalog.json");
    std::fs::write(&catalog, CATALOG).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cfa"));
    cmd.arg("mcp")
        .arg("--catalog")
        .arg(&catalog)
        .arg("--audit-log")
        .arg(dir.join("audit.jsonl"))
        .args(extra)
        .env_remove("CFA_MCP_API_KEY")
        .env_remove("CFA_POLICY_BUNDLE")
        .env_remove("CFA_MCP_RATE_LIMIT");
    let (transport, _stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ().serve(transport).await.unwrap()
}

async fn call(client: &RunningService<RoleClient, ()>, name: &str, args: Value) -> CallToolResult {
    let params = CallToolRequestParams::new(name.to_owned())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    client.call_tool(params).await.unwrap()
}

fn structured(r: &CallToolResult) -> Value {
    r.structured_content.clone().expect("structuredContent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_tool_list() {
    let dir = tempfile::tempdir().unwrap();
    let client = connect(dir.path(), &[]).await;
    let info = client.peer_info().expect("server info");
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server.name, "cfa-mcp");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.tools.is_some());

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "cfa_evaluate_signature",
        "cfa_evaluate_intent",
        "cfa_describe_rules",
        "cfa_explain_fault",
        "cfa_audit_check",
        "cfa_list_backends",
        "cfa_compliance_check",
        "cfa_lifecycle_status",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let schema = |name: &str| -> Value {
        let t = tools.iter().find(|t| t.name == name).unwrap();
        Value::Object((*t.input_schema).clone())
    };
    let sig = schema("cfa_evaluate_signature");
    assert_eq!(sig["type"], "object");
    assert_eq!(sig["properties"]["signature"]["type"], "object");
    assert_eq!(sig["required"], json!(["signature"]));
    assert!(sig["properties"]["policy_bundle"].is_object());
    assert!(
        sig["properties"]["signature"]["description"]
            .as_str()
            .unwrap()
            .contains("StateSignature")
    );
    assert_eq!(
        schema("cfa_explain_fault")["required"],
        json!(["fault_code"])
    );
    assert_eq!(
        schema("cfa_compliance_check")["required"],
        json!(["intent"])
    );
    assert_eq!(schema("cfa_evaluate_intent")["required"], json!(["intent"]));
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_loop_replan_patch_approve_and_block() {
    let dir = tempfile::tempdir().unwrap();
    let client = connect(dir.path(), &[]).await;

    // replan: no partition filter and type enforcement off.
    let r = call(
        &client,
        "cfa_evaluate_signature",
        json!({"signature": signature(true, false, &[])}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "replan is an error result");
    let s = structured(&r);
    assert_eq!(s["action"], "replan");
    let codes: Vec<&str> = s["decision"]["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"FINOPS_MISSING_TEMPORAL_PREDICATE"),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"CONTRACT_TYPE_ENFORCEMENT_DISABLED"),
        "{codes:?}"
    );
    assert_eq!(s["decision"]["faults"][0]["family"], "semantic_faults");
    assert!(!s["audit_event_hash"].as_str().unwrap().is_empty());

    // The agent applies the patches it was given and retries.
    let patches: Vec<cfa_types::Patch> =
        serde_json::from_value(s["decision"]["patches"].clone()).unwrap();
    assert!(!patches.is_empty());
    let sig = cfa_types::StateSignature::from_value(&signature(true, false, &[])).unwrap();
    let fixed = sig.apply_patches(&patches).unwrap();
    let r = call(
        &client,
        "cfa_evaluate_signature",
        json!({"signature": fixed.to_value(), "replan_count": 1}),
    )
    .await;
    let s = structured(&r);
    assert_eq!(s["action"], "approve", "{s}");
    assert_eq!(r.is_error, Some(false));
    assert_eq!(s["passed"], true);
    // The server read the whole signature, merge_keys included (B12): its content
    // hash equals ours, and differs once merge_keys are dropped.
    assert_eq!(s["content_hash"], fixed.content_hash());
    let mut no_keys = fixed.clone();
    no_keys.datasets[0].merge_keys.clear();
    assert_ne!(s["content_hash"], no_keys.content_hash());

    // block: raw PII in silver.
    let r = call(
        &client,
        "cfa_evaluate_signature",
        json!({"signature": signature(false, true, &["processing_date"])}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let s = structured(&r);
    assert_eq!(s["action"], "block");
    assert_eq!(
        s["decision"]["faults"][1]["code"],
        "GOVERNANCE_PII_WITHOUT_POLICY"
    );

    // A bundle by name is really used.
    let r = call(
        &client,
        "cfa_evaluate_signature",
        json!({"signature": signature(true, true, &["processing_date"]), "policy_bundle": "finops-strict-v1"}),
    )
    .await;
    assert!(
        structured(&r)["policy_bundle"]
            .as_str()
            .unwrap()
            .starts_with("finops-strict-v1")
    );

    // Invalid signature: a tool error naming the issue, not a protocol error.
    let r = call(
        &client,
        "cfa_evaluate_signature",
        json!({"signature": {"domain": "d"}}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(structured(&r)["error"]["code"], "invalid_signature");

    // The audit log holds the four decisions and verifies.
    let r = call(&client, "cfa_audit_check", json!({})).await;
    let s = structured(&r);
    assert_eq!(s["chain_intact"], true, "{s}");
    assert_eq!(s["total_events"], 4);
    let r = call(
        &client,
        "cfa_audit_check",
        json!({"intent_id": cfa_test_support::REFERENCE_INTENT_ID}),
    )
    .await;
    let s = structured(&r);
    assert_eq!(s["event_count"], 4);
    assert_eq!(s["total_events"], 4);
    client.cancel().await.unwrap();
    let report = cfa_audit::verify_file(
        &dir.path().join("audit.jsonl"),
        &cfa_audit::VerifyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert!(report.intact());
    assert_eq!(report.events, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_faults_backends_intents() {
    let dir = tempfile::tempdir().unwrap();
    let client = connect(dir.path(), &["--policy-bundle", "compliance-strict-v1"]).await;

    let s = structured(&call(&client, "cfa_describe_rules", json!({})).await);
    assert!(
        s["policy_bundle"]
            .as_str()
            .unwrap()
            .starts_with("compliance-strict-v1"),
        "{s}"
    );
    assert!(s["rules"][0]["family"].is_string());
    let n = s["rule_count"].as_u64().unwrap();
    let s = structured(
        &call(
            &client,
            "cfa_describe_rules",
            json!({"policy_bundle": "default"}),
        )
        .await,
    );
    assert_eq!(s["rule_count"], 7);
    assert_ne!(n, 0);

    let code = {
        let s = structured(&call(&client, "cfa_describe_rules", json!({})).await);
        s["rules"][0]["fault_code"].as_str().unwrap().to_owned()
    };
    let r = call(&client, "cfa_explain_fault", json!({"fault_code": code})).await;
    assert_eq!(r.is_error, Some(false));
    assert_eq!(structured(&r)["fault_code"], code.as_str());
    let r = call(&client, "cfa_explain_fault", json!({"fault_code": "NOPE"})).await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(structured(&r)["error"]["code"], "unknown_fault_code");

    let s = structured(&call(&client, "cfa_list_backends", json!({})).await);
    let names: Vec<&str> = s["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"sql") && names.contains(&"dbt") && names.contains(&"pyspark"));

    // An intent grounded in the catalog is decided; one naming no dataset blocks (B2).
    let r = call(
        &client,
        "cfa_evaluate_intent",
        json!({"intent": "daily join of nfe with clientes into silver, anonymize pii", "policy_bundle": "default"}),
    )
    .await;
    let s = structured(&r);
    assert!(s["state"].as_str().unwrap().starts_with("approved"), "{s}");
    assert_eq!(s["executable"], true);
    assert_eq!(r.is_error, Some(false));
    // The kernel wrote its events into the server's audit log.
    assert!(
        !s["audit_event_hashes"].as_array().unwrap().is_empty(),
        "{s}"
    );
    let r = call(
        &client,
        "cfa_evaluate_intent",
        json!({"intent": "make me a sandwich"}),
    )
    .await;
    let s = structured(&r);
    assert_eq!(r.is_error, Some(true));
    assert_eq!(s["state"], "blocked");
    assert_eq!(
        s["faults"][0]["code"], "NORMALIZATION_NO_CATALOG_DATASET_MATCH",
        "{s}"
    );

    // compliance_check loads the bundle by name.
    let r = call(
        &client,
        "cfa_compliance_check",
        json!({"intent": "daily join of nfe with clientes into silver, anonymize pii", "bundle": "lgpd-v1"}),
    )
    .await;
    let s = structured(&r);
    assert!(
        s["policy_bundle"].as_str().unwrap().starts_with("lgpd-v1"),
        "{s}"
    );
    assert!(["APPROVED", "BLOCKED", "REPLAN_REQUIRED"].contains(&s["decision"].as_str().unwrap()));
    let r = call(
        &client,
        "cfa_compliance_check",
        json!({"intent": "x", "bundle": "no-such-bundle"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_status_reads_the_real_database() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("lifecycle.db");
    {
        let db = cfa_lifecycle::LifecycleDb::open(&db_path).unwrap();
        db.skill_upsert(&cfa_lifecycle::SkillRecord::new("aaaa1111"))
            .unwrap();
        db.skill_upsert(&cfa_lifecycle::SkillRecord::new("bbbb2222"))
            .unwrap();
    }
    let db_arg = db_path.display().to_string();
    let client = connect(dir.path(), &["--lifecycle-db", &db_arg]).await;
    let r = call(&client, "cfa_lifecycle_status", json!({})).await;
    let s = structured(&r);
    assert_eq!(r.is_error, Some(false), "{s}");
    assert_eq!(s["skill_count"], 2);
    assert_eq!(s["skills"][0]["state"], "candidate");
    let s = structured(
        &call(
            &client,
            "cfa_lifecycle_status",
            json!({"signature_hash": "bbbb"}),
        )
        .await,
    );
    assert_eq!(s["skill_count"], 1);
    assert_eq!(s["skills"][0]["signature_hash"], "bbbb2222");
    let r = call(
        &client,
        "cfa_lifecycle_status",
        json!({"db_path": dir.path().join("missing.db").display().to_string()}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(structured(&r)["error"]["code"], "no_lifecycle_db");
    client.cancel().await.unwrap();
}
