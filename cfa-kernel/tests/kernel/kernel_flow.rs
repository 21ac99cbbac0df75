#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every end state of the governed flow, and every phase's failure injected.

use crate::common;

use cfa_audit::{AuditError, AuditEvent, AuditStore, NewEvent, VerifyOptions, VerifyReport};
use cfa_codegen::{
    Backend, BackendCapabilities, BackendRegistry, CodegenError, GeneratedArtifact, InvalidPlan,
    StaticValidationResult,
};
use cfa_kernel::testing;
use cfa_kernel::{
    ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest, Grounding, Kernel,
    KernelConfig, Phase, Phases, PublishState,
};
use cfa_plan::{ExecutionPlan, PlanError, Planner};
use cfa_resolve::{
    AlwaysReject, BackendError, ConfirmationAnswer, ConfirmationHandler, ConfirmationRequest,
    NormalizeError, Normalizer, NormalizerInput, Resolution,
};
use cfa_types::{Catalog, DecisionState, FaultSeverity, StateSignature};
use common::*;
use serde_json::{Map, json};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn assert_intact(k: &Kernel, store: &dyn AuditStore, r: &cfa_kernel::KernelResult) {
    testing::assert_audit_intact(store, r).unwrap();
    assert_eq!(events(store).len(), r.audit_event_hashes.len());
    assert!(k.audit_store().len().unwrap() > 0);
}

// ----- end states ---------------------------------------------------------------

#[test]
fn approved_run_writes_one_event_per_step_with_bundle_and_hashes() {
    let (k, store) = kernel("prod-v1");
    let r = k.process(APPROVE);
    assert_eq!(r.state, DecisionState::Approved, "{}", r.blocked_reason);
    assert!(r.is_executable());
    assert!(r.blocked_reason.is_empty());
    assert!(r.faults.is_empty(), "{:?}", r.fault_codes());
    assert_eq!(r.replan_count, 0);
    assert_eq!(
        types(store.as_ref()),
        [
            "environment_state_consulted",
            "semantic_resolution",
            "confirmation",
            "policy_evaluation",
            "plan_generated",
            "code_generated",
            "static_validation",
            "final_decision"
        ]
    );
    assert_eq!(
        r.phases_run,
        [
            Phase::Formalize,
            Phase::Govern,
            Phase::Generate,
            Phase::Validate
        ]
    );
    assert_eq!(r.phases_skipped.len(), 1);
    assert_eq!(r.phases_skipped[0].phase, Phase::Execute);
    let sig = r.signature.as_ref().unwrap();
    assert_eq!(r.signature_hash, sig.signature_hash());
    assert_eq!(r.content_hash, sig.content_hash());
    assert_eq!(sig.intent_id, r.intent_id);
    assert_eq!(r.policy_bundle, "prod-v1.0");
    let evs = events(store.as_ref());
    for e in &evs {
        assert_eq!(e.intent_id, r.intent_id);
        assert_eq!(e.policy_bundle_version, "prod-v1.0");
        assert_eq!(e.details["decision_id"], json!(r.decision_id));
        assert_eq!(e.details["policy_bundle_version"], json!("prod-v1.0"));
        assert!(e.details.contains_key("policy_bundle_hash"));
        assert!(e.details.contains_key("content_hash"));
    }
    let last = evs.last().unwrap();
    assert_eq!(last.stage, "validate");
    assert_eq!(last.outcome, "approved");
    assert_eq!(last.details["signature_hash"], json!(r.signature_hash));
    assert_eq!(last.details["content_hash"], json!(r.content_hash));
    let art = r.artifact.as_ref().unwrap();
    assert_eq!(art.backend, "pyspark");
    assert!(art.line_count > 0);
    assert_intact(&k, store.as_ref(), &r);
}

#[test]
fn replan_applies_the_bundles_patches_then_approves_with_warnings() {
    let (k, store) = kernel("prod-v1");
    let r = k.process(REPLAN);
    assert_eq!(
        r.state,
        DecisionState::ApprovedWithWarnings,
        "{}",
        r.blocked_reason
    );
    assert_eq!(r.replan_count, 1);
    assert_eq!(r.replan_history.len(), 1);
    let h = &r.replan_history[0];
    assert_eq!(h.fault_codes, ["FINOPS_MISSING_TEMPORAL_PREDICATE"]);
    assert_eq!(h.applied_patches[0].path, "constraints.partition_by");
    assert_eq!(h.applied_patches[0].value, json!(["processing_date"]));
    let sig = r.signature.as_ref().unwrap();
    assert_eq!(sig.constraints.partition_by, ["processing_date"]);
    let t = types(store.as_ref());
    assert_eq!(
        t[3..6],
        ["policy_evaluation", "replan_applied", "policy_evaluation"]
    );
    let evs = events(store.as_ref());
    assert_eq!(evs[3].outcome, "replan");
    assert_eq!(evs[4].details["replan_count"], json!(1));
    assert_eq!(evs[5].outcome, "approve");
    // the patched signature's hash is what the final decision records
    assert_eq!(
        evs.last().unwrap().details["signature_hash"],
        json!(sig.signature_hash())
    );
    assert_intact(&k, store.as_ref(), &r);
}

#[test]
fn policy_block_stops_in_govern_with_the_reasoning() {
    let (k, store) = kernel("prod-v1");
    let r = k.process(BLOCK);
    assert_eq!(r.state, DecisionState::Blocked);
    assert!(!r.is_executable());
    assert!(
        r.blocked_reason.contains("action=block"),
        "{}",
        r.blocked_reason
    );
    assert!(r.fault_codes().contains(&"GOVERNANCE_PII_WITHOUT_POLICY"));
    assert_eq!(
        r.policy_result.as_ref().unwrap().action,
        cfa_types::PolicyAction::Block
    );
    let s = steps(store.as_ref());
    assert_eq!(
        s[3],
        ("govern".into(), "policy_evaluation".into(), "block".into())
    );
    assert_eq!(
        s[4],
        ("govern".into(), "final_decision".into(), "blocked".into())
    );
    assert_eq!(s.len(), 5);
    assert_eq!(r.phases_run, [Phase::Formalize, Phase::Govern]);
    assert_intact(&k, store.as_ref(), &r);
}

#[test]
fn ungrounded_intent_blocks_by_default_and_lenient_lets_it_through() {
    let (k, store) = kernel("prod-v1");
    let r = k.process(UNGROUNDED);
    testing::assert_blocked_with(&r, "NORMALIZATION_NO_CATALOG_DATASET_MATCH").unwrap();
    assert!(
        r.blocked_reason
            .starts_with("NORMALIZATION_NO_CATALOG_DATASET_MATCH")
    );
    assert!(types(store.as_ref()).contains(&"strict_normalization".to_owned()));

    // no catalog at all: docs/differences.md#b2-fail-closed, not CATALOG_INVALID
    let (k2, _) = kernel_with(
        KernelConfig::new(cfa_policy::PolicyEngine::default(), Catalog::empty()),
        |b| b,
    );
    let r2 = k2.process(APPROVE);
    testing::assert_blocked_with(&r2, "NORMALIZATION_NO_CATALOG_DATASET_MATCH").unwrap();

    let mut cfg = config("prod-v1");
    cfg.grounding = Grounding::Lenient;
    let (k3, store3) = kernel_with(cfg, |b| b);
    let r3 = k3.process(UNGROUNDED);
    assert!(
        !r3.fault_codes()
            .contains(&"NORMALIZATION_NO_CATALOG_DATASET_MATCH")
    );
    // it reaches governance (and then the planner refuses a job without datasets)
    assert!(types(store3.as_ref()).contains(&"policy_evaluation".to_owned()));
    testing::assert_blocked_with(&r3, "KERNEL_PLANNER_FAILED").unwrap();
}

#[test]
fn low_confidence_blocks_in_strict_mode_only() {
    let mut cfg = config("prod-v1");
    cfg.min_confidence = 0.99;
    let (k, _) = kernel_with(cfg.clone(), |b| b);
    let r = k.process(APPROVE);
    testing::assert_blocked_with(&r, "NORMALIZATION_LOW_CONFIDENCE").unwrap();
    cfg.grounding = Grounding::DatasetsOnly;
    let (k2, _) = kernel_with(cfg, |b| b);
    assert!(k2.process(APPROVE).is_executable());
}

#[test]
fn invalid_catalog_blocks_in_strict_mode() {
    // the lenient reader accepts it; strict validation does not
    let v = json!({"datasets": {"nfe": {"size_gb": -1, "merge_keys": ["nfe_id"]}}});
    let cat = Catalog::from_value(&v).unwrap();
    let cfg = KernelConfig::new(cfa_policy::PolicyEngine::default(), cat);
    let (k, store) = kernel_with(cfg.clone(), |b| b);
    let r = k.process("ingest nfe into bronze");
    testing::assert_blocked_with(&r, "CATALOG_INVALID").unwrap();
    assert_eq!(r.blocked_reason, "Catalog validation failed.");
    assert_eq!(
        types(store.as_ref()),
        ["catalog_validation", "final_decision"]
    );
    assert_eq!(
        r.faults[0].remediation,
        [
            "Fix the catalog structure before evaluating governed transitions.",
            "datasets.nfe.size_gb: must be a non-negative number"
        ]
    );
    let mut lenient = cfg;
    lenient.grounding = Grounding::Lenient;
    let (k2, _) = kernel_with(lenient, |b| b);
    assert!(
        !k2.process("ingest nfe into bronze")
            .fault_codes()
            .contains(&"CATALOG_INVALID")
    );
}

#[test]
fn generate_disabled_skips_generate_and_execute_and_still_decides() {
    let mut cfg = config("prod-v1");
    cfg.phases = Phases {
        generate: false,
        execute: true,
    };
    let (k, store) = kernel_with(cfg, |b| b);
    let r = k.process(APPROVE);
    assert_eq!(r.state, DecisionState::Approved);
    assert!(r.artifact.is_none());
    let skipped: Vec<Phase> = r.phases_skipped.iter().map(|s| s.phase).collect();
    assert_eq!(skipped, [Phase::Generate, Phase::Execute]);
    assert!(!types(store.as_ref()).contains(&"plan_generated".to_owned()));
}

// ----- the replan loop ------------------------------------------------------------

const ACME: &str = r#"
policy_bundle:
  version: "acme-1"
  rules:
    - name: acme_no_raw_pii
      condition: pii_in_protected_layer
      action: replan
      fault_code: ACME_PII_LEAK
      severity: high
      family: semantic
      message: "raw PII would land in a protected layer"
      remediation: ["hash it"]
    - name: acme_partition
      condition: missing_partition
      action: replan
      fault_code: ACME_FULL_SCAN
      severity: high
      family: semantic
      message: "full scan"
      remediation: ["filter a partition"]
"#;

#[test]
fn any_bundle_replans_through_its_patches_design_b5() {
    let cfg = KernelConfig::new(custom_bundle(ACME), catalog());
    let (k, store) = kernel_with(cfg, |b| b);
    let r = k.process(BLOCK);
    assert_eq!(
        r.state,
        DecisionState::ApprovedWithWarnings,
        "{}",
        r.blocked_reason
    );
    assert_eq!(r.replan_count, 1);
    let h = &r.replan_history[0];
    assert_eq!(h.fault_codes, ["ACME_PII_LEAK", "ACME_FULL_SCAN"]);
    let paths: Vec<&str> = h.applied_patches.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"constraints.no_pii_raw"));
    assert!(paths.contains(&"constraints.partition_by"));
    let sig = r.signature.as_ref().unwrap();
    assert!(sig.constraints.no_pii_raw);
    assert_eq!(sig.constraints.partition_by, ["processing_date"]);
    assert_eq!(
        events(store.as_ref()).last().unwrap().details["policy_bundle_version"],
        json!("acme-1")
    );
}

#[test]
fn replan_with_a_manual_fix_blocks_naming_the_fault_and_the_change() {
    let yaml = r#"
policy_bundle:
  version: "budget-1"
  rules:
    - name: budget
      condition: cost_budget_exceeded
      max_dbu: 10.0
      action: replan
      fault_code: ACME_OVER_BUDGET
      severity: high
      family: semantic
      message: "over budget"
      remediation: ["lower the ceiling"]
"#;
    let cfg = KernelConfig::new(custom_bundle(yaml), catalog());
    let (k, store) = kernel_with(cfg, |b| b);
    let r = k.process("Join nfe with clientes daily, anonymize pii, into silver max 50 dbu");
    assert_eq!(r.state, DecisionState::Blocked);
    assert!(
        r.blocked_reason.contains("manual change"),
        "{}",
        r.blocked_reason
    );
    assert!(r.blocked_reason.contains("ACME_OVER_BUDGET"));
    assert!(r.blocked_reason.contains("max_cost_dbu"));
    assert_eq!(r.replan_count, 0);
    assert!(r.fault_codes().contains(&"ACME_OVER_BUDGET"));
    assert!(!types(store.as_ref()).contains(&"replan_applied".to_owned()));
}

/// Fires forever, and its patch does not make it stop.
#[derive(Debug)]
struct Stubborn;

impl cfa_policy::Condition for Stubborn {
    fn check(
        &self,
        _ctx: &cfa_policy::EvalContext<'_>,
    ) -> Result<cfa_policy::Verdict, cfa_policy::ConditionError> {
        Ok(cfa_policy::Verdict::Fire)
    }
    fn fix(&self, _ctx: &cfa_policy::EvalContext<'_>) -> cfa_types::Fix {
        cfa_types::Fix::Patches {
            patches: vec![cfa_types::Patch::set(
                "constraints.enforce_types",
                json!(true),
            )],
        }
    }
}

/// Panics when evaluated.
#[derive(Debug)]
struct Exploding;

impl cfa_policy::Condition for Exploding {
    fn check(
        &self,
        _ctx: &cfa_policy::EvalContext<'_>,
    ) -> Result<cfa_policy::Verdict, cfa_policy::ConditionError> {
        panic!("condition plugin exploded")
    }
}

fn plugin_engine(name: &'static str) -> cfa_policy::PolicyEngine {
    let mut reg = cfa_policy::ConditionRegistry::with_builtins();
    reg.register("stubborn", |_: &cfa_policy::RuleParams| {
        Ok(Box::new(Stubborn) as Box<dyn cfa_policy::Condition>)
    });
    reg.register("exploding", |_: &cfa_policy::RuleParams| {
        Ok(Box::new(Exploding) as Box<dyn cfa_policy::Condition>)
    });
    let yaml = format!(
        "policy_bundle:\n  version: plug\n  rules:\n    - name: r\n      condition: {name}\n      action: replan\n      fault_code: PLUG_FIRES\n      severity: high\n      family: semantic\n      message: m\n      remediation: [x]\n"
    );
    let b = cfa_policy::load_bundle_with(&yaml, cfa_policy::BundleFormat::Yaml, "p.yaml", &reg)
        .unwrap();
    cfa_policy::PolicyEngine::from_bundle_with(b, &reg).unwrap()
}

#[test]
fn replan_cap_blocks_with_max_replan_exceeded() {
    let cfg = KernelConfig::new(plugin_engine("stubborn"), catalog());
    let (k, store) = kernel_with(cfg, |b| b);
    let r = k.process(APPROVE);
    testing::assert_blocked_with(&r, "POLICY_MAX_REPLAN_EXCEEDED").unwrap();
    assert_eq!(r.replan_count, 3);
    assert_eq!(r.replan_history.len(), 3);
    assert!(
        r.blocked_reason.contains("Replan limit (3)"),
        "{}",
        r.blocked_reason
    );
    let t = types(store.as_ref());
    assert_eq!(t.iter().filter(|e| *e == "replan_applied").count(), 3);
    assert_eq!(t.iter().filter(|e| *e == "policy_evaluation").count(), 4);

    let mut cfg = KernelConfig::new(plugin_engine("stubborn"), catalog());
    cfg.max_replans = Some(1);
    let (k, _) = kernel_with(cfg, |b| b);
    let r = k.process(APPROVE);
    assert_eq!(r.replan_count, 1);
    testing::assert_blocked_with(&r, "POLICY_MAX_REPLAN_EXCEEDED").unwrap();
}

#[test]
fn panicking_condition_plugin_blocks_in_govern() {
    let cfg = KernelConfig::new(plugin_engine("exploding"), catalog());
    let (k, store) = kernel_with(cfg, |b| b);
    let r = k.process(APPROVE);
    assert_eq!(r.state, DecisionState::Blocked);
    let codes = r.fault_codes();
    // the engine may turn it into its own block, or the kernel catches the panic
    assert!(
        codes.contains(&"KERNEL_POLICY_FAILED")
            || codes.contains(&cfa_policy::CONDITION_ERROR_CODE),
        "{codes:?}"
    );
    assert!(!r.blocked_reason.is_empty());
    testing::assert_audit_intact(store.as_ref(), &r).unwrap();
}

// ----- formalize failures ----------------------------------------------------------

struct FailingNormalizer;
impl Normalizer for FailingNormalizer {
    fn normalize(&self, _input: &NormalizerInput<'_>) -> Result<Resolution, NormalizeError> {
        Err(NormalizeError::Backend(BackendError {
            backend: "llm".into(),
            message: "connection refused".into(),
        }))
    }
}

struct PanickingNormalizer;
impl Normalizer for PanickingNormalizer {
    fn normalize(&self, _input: &NormalizerInput<'_>) -> Result<Resolution, NormalizeError> {
        panic!("normaliser bug")
    }
}

#[test]
fn failing_normalizer_blocks_in_formalize() {
    let (k, store) = kernel_with(config("prod-v1"), |b| b.normalizer(FailingNormalizer));
    let r = k.process(APPROVE);
    testing::assert_blocked_with(&r, "KERNEL_NORMALIZER_FAILED").unwrap();
    assert!(r.blocked_reason.starts_with("Normalization failed:"));
    assert!(r.blocked_reason.contains("connection refused"));
    assert_eq!(r.faults[0].stage, "formalize");
    assert!(r.signature.is_none());
    let s = steps(store.as_ref());
    assert_eq!(
        s[1],
        (
            "formalize".into(),
            "normalization_error".into(),
            "error".into()
        )
    );
    assert_eq!(
        s[2],
        (
            "formalize".into(),
            "final_decision".into(),
            "blocked".into()
        )
    );
}

#[test]
fn panicking_normalizer_blocks_and_does_not_unwind() {
    let (k, store) = kernel_with(config("prod-v1"), |b| b.normalizer(PanickingNormalizer));
    let r = k.process(APPROVE);
    testing::assert_blocked_with(&r, "KERNEL_NORMALIZER_FAILED").unwrap();
    assert!(
        r.blocked_reason.contains("panicked: normaliser bug"),
        "{}",
        r.blocked_reason
    );
    testing::assert_audit_intact(store.as_ref(), &r).unwrap();
    // the kernel is still usable afterwards
    assert!(!k.process(APPROVE).is_executable());
}

#[test]
fn rejected_confirmation_blocks_with_the_reference_fault() {
    let (k, store) = kernel_with(config("prod-v1"), |b| b.confirmation(AlwaysReject));
    let r = k.process(APPROVE);
    testing::assert_blocked_with(&r, "CONFIRMATION_HARD_REJECTED").unwrap();
    assert!(
        r.blocked_reason.starts_with("Confirmation rejected (hard)"),
        "{}",
        r.blocked_reason
    );
    let evs = events(store.as_ref());
    assert_eq!(evs[2].event_type, "confirmation");
    assert_eq!(evs[2].outcome, "rejected");
    assert_eq!(evs[2].details["mode"], json!("hard"));
    assert!(!types(store.as_ref()).contains(&"policy_evaluation".to_owned()));

    // auto-mode intents never ask the handler
    let r2 = k.process(REPLAN);
    assert!(r2.is_executable(), "{}", r2.blocked_reason);
}

struct PanickingHandler;
impl ConfirmationHandler for PanickingHandler {
    fn confirm(&self, _r: &ConfirmationRequest) -> ConfirmationAnswer {
        panic!("handler bug")
    }
}

#[test]
fn panicking_confirmation_handler_blocks() {
    let (k, _) = kernel_with(config("prod-v1"), |b| b.confirmation(PanickingHandler));
    let r = k.process(APPROVE);
    testing::assert_blocked_with(&r, "KERNEL_CONFIRMATION_FAILED").unwrap();
    assert!(r.blocked_reason.contains("handler bug"));
}

// ----- generate failures ------------------------------------------------------------

struct FailingPlanner;
impl Planner for FailingPlanner {
    fn plan(&self, _s: &StateSignature, _c: Option<&Catalog>) -> Result<ExecutionPlan, PlanError> {
        Err(PlanError::AggregateWithoutGroupBy)
    }
}

#[test]
fn failing_planner_blocks_in_generate() {
    let (k, store) = kernel_with(config("prod-v1"), |b| b.planner(FailingPlanner));
    let r = k.process(APPROVE);
    testing::assert_blocked_with(&r, "KERNEL_PLANNER_FAILED").unwrap();
    assert!(r.blocked_reason.starts_with("Planning failed:"));
    let f = r
        .faults
        .iter()
        .find(|f| f.code == "KERNEL_PLANNER_FAILED")
        .unwrap();
    assert_eq!(f.stage, "generate");
    let s = steps(store.as_ref());
    let n = s.len();
    assert_eq!(
        s[n - 2],
        ("generate".into(), "plan_generated".into(), "error".into())
    );
    assert_eq!(s[n - 1].1, "final_decision");
}

/// A backend whose behaviour is chosen per test.
struct TestBackend {
    mode: &'static str,
}

impl Backend for TestBackend {
    fn name(&self) -> &str {
        "test"
    }
    fn capabilities(&self) -> BackendCapabilities {
        cfa_codegen::PySparkBackend::default().capabilities()
    }
    fn generate(
        &self,
        plan: &ExecutionPlan,
        signature: &StateSignature,
    ) -> Result<GeneratedArtifact, CodegenError> {
        match self.mode {
            "error" => Err(CodegenError::InvalidPlan(InvalidPlan {
                backend: "test".into(),
                reason: "refused on purpose".into(),
            })),
            "panic" => panic!("backend bug"),
            _ => cfa_codegen::PySparkBackend::default().generate(plan, signature),
        }
    }
    fn validate(
        &self,
        artifact: &GeneratedArtifact,
        signature: &StateSignature,
    ) -> StaticValidationResult {
        if self.mode == "static" {
            StaticValidationResult::from_faults(
                vec![cfa_codegen::validate::fault(
                    "STATIC_TEST_FAULT",
                    FaultSeverity::Critical,
                    "bad code",
                    &["fix it"],
                )],
                3,
            )
        } else {
            cfa_codegen::PySparkBackend::default().validate(artifact, signature)
        }
    }
}

fn with_backend(mode: &'static str) -> (Kernel, Arc<cfa_audit::MemoryStore>) {
    let mut cfg = config("prod-v1");
    cfg.backend = "test".into();
    let mut reg = BackendRegistry::with_builtins();
    reg.register(Box::new(TestBackend { mode })).unwrap();
    kernel_with(cfg, |b| b.backends(reg))
}

#[test]
fn backend_error_and_panic_block_in_generate() {
    for mode in ["error", "panic"] {
        let (k, store) = with_backend(mode);
        let r = k.process(APPROVE);
        testing::assert_blocked_with(&r, "KERNEL_CODEGEN_FAILED").unwrap();
        assert!(
            r.blocked_reason.starts_with("Code generation failed:"),
            "{}",
            r.blocked_reason
        );
        assert!(types(store.as_ref()).contains(&"plan_generated".to_owned()));
        testing::assert_audit_intact(store.as_ref(), &r).unwrap();
    }
}

#[test]
fn static_validation_failure_blocks_with_its_codes() {
    let (k, store) = with_backend("static");
    let r = k.process(APPROVE);
    assert_eq!(r.state, DecisionState::Blocked);
    assert_eq!(
        r.blocked_reason,
        "Static validation failed: STATIC_TEST_FAULT"
    );
    assert!(r.fault_codes().contains(&"STATIC_TEST_FAULT"));
    let evs = events(store.as_ref());
    let sv = evs
        .iter()
        .find(|e| e.event_type == "static_validation")
        .unwrap();
    assert_eq!(sv.outcome, "blocked");
    assert_eq!(sv.details["checks"], json!(3));
    assert_eq!(sv.details["faults"], json!(["STATIC_TEST_FAULT"]));
}

#[test]
fn unknown_backend_is_a_build_error() {
    let mut cfg = config("prod-v1");
    cfg.backend = "cobol".into();
    let err = Kernel::builder(cfg).build().unwrap_err();
    assert!(err.to_string().contains("cobol"), "{err}");
}

// ----- audit failures ------------------------------------------------------------------

/// Fails (or panics) from the n-th append on.
struct BrokenStore {
    inner: cfa_audit::MemoryStore,
    ok_appends: usize,
    panic: bool,
    seen: AtomicUsize,
}

impl BrokenStore {
    fn new(ok_appends: usize, panic: bool) -> Self {
        BrokenStore {
            inner: cfa_audit::MemoryStore::new(),
            ok_appends,
            panic,
            seen: AtomicUsize::new(0),
        }
    }
}

impl AuditStore for BrokenStore {
    fn append(&self, event: NewEvent) -> Result<AuditEvent, AuditError> {
        if self.seen.fetch_add(1, Ordering::SeqCst) >= self.ok_appends {
            if self.panic {
                panic!("store bug");
            }
            return Err(cfa_audit::error::IoError::new(
                "/audit.jsonl",
                "write",
                std::io::Error::other("disk full"),
            )
            .into());
        }
        self.inner.append(event)
    }
    fn tail_hash(&self) -> Result<String, AuditError> {
        self.inner.tail_hash()
    }
    fn len(&self) -> Result<u64, AuditError> {
        self.inner.len()
    }
    fn scan(&self, visit: &mut dyn FnMut(AuditEvent) -> ControlFlow<()>) -> Result<(), AuditError> {
        self.inner.scan(visit)
    }
    fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        self.inner.verify(opts)
    }
    fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

fn with_store(store: BrokenStore) -> (Kernel, Arc<BrokenStore>) {
    let store = Arc::new(store);
    let dyn_store: Arc<dyn AuditStore> = store.clone();
    let k = Kernel::builder(config("prod-v1"))
        .audit(dyn_store)
        .ids(cfa_kernel::SequentialIds::new())
        .build()
        .unwrap();
    (k, store)
}

#[test]
fn audit_write_failure_blocks_at_any_step_and_never_approves() {
    // 0: the first event fails; 7: only final_decision of an approved run fails
    for ok in 0..8 {
        let (k, store) = with_store(BrokenStore::new(ok, false));
        let r = k.process(APPROVE);
        assert_eq!(r.state, DecisionState::Blocked, "ok_appends={ok}");
        assert!(!r.is_executable());
        testing::assert_blocked_with(&r, "KERNEL_AUDIT_WRITE_FAILED").unwrap();
        assert!(
            r.blocked_reason.contains("disk full"),
            "{}",
            r.blocked_reason
        );
        assert_eq!(r.audit_event_hashes.len(), ok);
        assert_eq!(store.inner.len().unwrap(), ok as u64);
    }
    let (k, _) = with_store(BrokenStore::new(7, false));
    let r = k.process(APPROVE);
    assert!(
        r.blocked_reason.contains("final_decision"),
        "{}",
        r.blocked_reason
    );
    let f = r
        .faults
        .iter()
        .find(|f| f.code == "KERNEL_AUDIT_WRITE_FAILED")
        .unwrap();
    assert_eq!(f.stage, "validate");
}

#[test]
fn panicking_audit_store_blocks() {
    let (k, _) = with_store(BrokenStore::new(2, true));
    let r = k.process(APPROVE);
    testing::assert_blocked_with(&r, "KERNEL_AUDIT_WRITE_FAILED").unwrap();
    assert!(r.blocked_reason.contains("store bug"));
}

// ----- the execute slot ------------------------------------------------------------------

struct Exec(&'static str);

impl ExecutionPhase for Exec {
    fn name(&self) -> &str {
        "test-exec"
    }
    fn execute(&self, req: &ExecutionRequest<'_>) -> Result<ExecutionOutcome, ExecutionError> {
        assert!(!req.artifact.files.is_empty());
        assert_eq!(req.plan.signature_hash, req.signature.signature_hash());
        let mut out = ExecutionOutcome::published();
        match self.0 {
            "published" => {
                out.details.insert("rows_written".into(), json!(42));
                let mut p = Map::new();
                p.insert("snapshot_version".into(), json!("v2"));
                out.projection = Some(p);
            }
            "rolled_back" => out.publish_state = PublishState::RolledBack,
            "quarantined" => {
                out.publish_state = PublishState::Quarantined {
                    steps: vec!["load".into()],
                }
            }
            "partial" => out.publish_state = PublishState::CommittedNotPublished,
            "degraded" => {
                out.publish_state = PublishState::Degraded {
                    failed_steps: vec!["join".into()],
                }
            }
            "not_executed" => out.publish_state = PublishState::NotExecuted,
            "refused_warning" => {
                out.publish_state = PublishState::NotExecuted;
                out.faults.push(cfa_types::Fault {
                    code: "ENGINE_BUSY".into(),
                    family: cfa_types::FaultFamily::Environmental,
                    severity: FaultSeverity::Warning,
                    stage: "execution".into(),
                    message: "engine busy".into(),
                    mandatory_action: cfa_types::PolicyAction::Block,
                    remediation: Default::default(),
                    detected_before_execution: true,
                });
            }
            "runtime_fault" | "runtime_warning" => {
                let sev = if self.0 == "runtime_fault" {
                    FaultSeverity::Critical
                } else {
                    FaultSeverity::Warning
                };
                out.faults.push(cfa_types::Fault {
                    code: "RUNTIME_NULLS".into(),
                    family: cfa_types::FaultFamily::RuntimeBehavioral,
                    severity: sev,
                    stage: "runtime_validation".into(),
                    message: "too many nulls".into(),
                    mandatory_action: cfa_types::PolicyAction::Block,
                    remediation: Default::default(),
                    detected_before_execution: false,
                });
            }
            "error" => {
                return Err(ExecutionError {
                    phase: "test-exec".into(),
                    message: "sandbox unavailable".into(),
                });
            }
            _ => panic!("executor bug"),
        }
        Ok(out)
    }
}

fn exec_run(
    mode: &'static str,
    warnings_blocking: bool,
) -> (cfa_kernel::KernelResult, Vec<String>) {
    let mut cfg = config("prod-v1");
    cfg.warnings_are_blocking = warnings_blocking;
    let (k, store) = kernel_with(cfg, |b| b.executor(Exec(mode)));
    let r = k.process(APPROVE);
    testing::assert_audit_intact(store.as_ref(), &r).unwrap();
    (r, types(store.as_ref()))
}

#[test]
fn execute_slot_published_runs_validate_and_records_execution() {
    let (r, t) = exec_run("published", false);
    assert_eq!(r.state, DecisionState::Approved, "{}", r.blocked_reason);
    assert!(r.phases_run.contains(&Phase::Execute));
    assert!(r.phases_skipped.is_empty());
    assert_eq!(
        t[7..],
        ["execution_completed", "state_projected", "final_decision"]
    );
    assert_eq!(r.execution.as_ref().unwrap().executor, "test-exec");
}

#[test]
fn execute_slot_maps_publish_states_to_final_states() {
    let cases = [
        (
            "rolled_back",
            DecisionState::RolledBack,
            "Execution rolled back.",
        ),
        (
            "quarantined",
            DecisionState::Quarantined,
            "Steps quarantined: ['load']",
        ),
        (
            "partial",
            DecisionState::PartiallyCommitted,
            "Committed but not published.",
        ),
        (
            "degraded",
            DecisionState::Degraded,
            "Published degraded: steps failed: ['join']",
        ),
    ];
    for (mode, state, reason) in cases {
        let (r, t) = exec_run(mode, false);
        assert_eq!(r.state, state, "{mode}");
        assert_eq!(r.blocked_reason, reason);
        assert!(!r.is_executable());
        assert_eq!(t.last().unwrap(), "final_decision");
    }
}

#[test]
fn runtime_faults_block_and_warnings_follow_the_config() {
    let (r, _) = exec_run("runtime_fault", false);
    assert_eq!(r.state, DecisionState::Blocked);
    assert_eq!(r.blocked_reason, "Runtime validation failed: RUNTIME_NULLS");
    let (r, _) = exec_run("runtime_warning", false);
    assert_eq!(r.state, DecisionState::ApprovedWithWarnings);
    assert!(r.fault_codes().contains(&"RUNTIME_NULLS"));
    let (r, _) = exec_run("runtime_warning", true);
    assert_eq!(r.state, DecisionState::Blocked);
    assert_eq!(r.blocked_reason, "Warnings treated as blocking (config).");
}

#[test]
fn an_execution_that_did_not_run_blocks_whatever_its_faults_say() {
    // A refusal with only a warning still blocks: nothing ran, so nothing is approved.
    let (r, t) = exec_run("refused_warning", false);
    assert_eq!(r.state, DecisionState::Blocked);
    assert_eq!(r.blocked_reason, "Execution refused: ENGINE_BUSY");
    assert!(!r.is_executable());
    assert_eq!(
        r.execution.as_ref().unwrap().publish_state,
        PublishState::NotExecuted
    );
    assert_eq!(t[7..], ["execution_completed", "final_decision"]);
    // A refusal without any reason blocks with the kernel's own fault.
    let (r, _) = exec_run("not_executed", false);
    testing::assert_blocked_with(&r, "KERNEL_EXECUTION_FAILED").unwrap();
    assert_eq!(
        r.blocked_reason,
        "Execution phase 'test-exec' did not run and gave no reason."
    );
}

#[test]
fn executor_error_and_panic_block_in_execute() {
    for mode in ["error", "panic"] {
        let (r, t) = exec_run(mode, false);
        testing::assert_blocked_with(&r, "KERNEL_EXECUTION_FAILED").unwrap();
        assert!(r.blocked_reason.starts_with("Execution failed:"));
        assert!(t.contains(&"execution_completed".to_owned()));
        let f = r
            .faults
            .iter()
            .find(|f| f.code == "KERNEL_EXECUTION_FAILED")
            .unwrap();
        assert_eq!(f.stage, "execute");
    }
}

#[test]
fn result_serialises_with_every_field() {
    let (k, _) = kernel("prod-v1");
    let r = k.process(REPLAN);
    let v = serde_json::to_value(&r).unwrap();
    for key in [
        "intent_id",
        "decision_id",
        "state",
        "blocked_reason",
        "replan_count",
        "replan_history",
        "signature",
        "signature_hash",
        "content_hash",
        "resolution",
        "policy_result",
        "faults",
        "audit_event_hashes",
        "phases_run",
        "phases_skipped",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["state"], json!("approved_with_warnings"));
    assert_eq!(v["phases_run"][0], json!("formalize"));
    let back: cfa_kernel::KernelResult = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}
