//! Intent text → governed, audited decision for the faces (`cfa_evaluate_intent`,
//! `cfa_compliance_check`, `POST /v1/evaluate`) through `cfa-kernel`: strict grounding
//! (an ungrounded intent blocks, docs/differences.md#b2-fail-closed), the bounded patch-driven replan loop,
//! generation and static validation, and, when the face was started with `--sandbox`,
//! execution under the target lease ([`crate::face_exec`]); one audit event per step
//! into the face's log. Kernels are built once per bundle and reused.

use super::decide::Governance;
use super::error::FaceError;
use cfa::execute::{ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest};
use cfa::{AuditStore, MemoryStore};
use cfa::{Catalog, PolicyAction, PolicyResult};
use cfa::{Kernel, KernelConfig, KernelResult, UuidIds};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The outcome of one intent.
#[derive(Debug, Clone)]
pub struct IntentOutcome {
    /// The intent text.
    pub intent: String,
    /// The kernel's result.
    pub result: KernelResult,
}

impl IntentOutcome {
    /// The kernel's final state (`approved`, `blocked`, …).
    pub fn state(&self) -> &'static str {
        self.result.state.as_str()
    }

    /// Why the run did not end approved (`""` when approved).
    pub fn blocked_reason(&self) -> &str {
        &self.result.blocked_reason
    }

    /// Approve when the work may run, block otherwise, with every phase's faults and
    /// the last evaluation's patches: the shape metrics and tool results use.
    pub fn as_policy_result(&self) -> PolicyResult {
        let last = self.result.policy_result.clone();
        let executable = self.result.is_executable();
        PolicyResult {
            action: if executable {
                PolicyAction::Approve
            } else {
                PolicyAction::Block
            },
            faults: self.result.faults.clone().into(),
            interventions: last
                .as_ref()
                .map(|p| p.interventions.clone())
                .unwrap_or_default(),
            replan_count: self.result.replan_count,
            reasoning: last
                .as_ref()
                .map(|p| p.reasoning.clone())
                .unwrap_or_default(),
            patches: last.as_ref().map(|p| p.patches.clone()).unwrap_or_default(),
            manual_fixes: last.map(|p| p.manual_fixes).unwrap_or_default(),
        }
    }

    /// The kernel result as JSON plus `intent`.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.result).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("intent".into(), Value::from(self.intent.clone()));
            o.insert(
                "executable".into(),
                Value::Bool(self.result.is_executable()),
            );
        }
        v
    }
}

/// Kernels by bundle name, sharing the face's catalog, audit log, budgets and execute
/// phase.
#[derive(Default)]
pub struct Kernels {
    by_bundle: Mutex<HashMap<String, Arc<Kernel>>>,
    budgets: Option<Arc<dyn cfa_control::budget::BudgetLedger>>,
    executor: Option<Arc<dyn ExecutionPhase>>,
}

impl Kernels {
    /// Kernels whose approved intents are charged to the budgets of `ledger` (their
    /// estimate, unless they execute: then what the run measured).
    pub fn with_budgets(ledger: Option<Arc<dyn cfa_control::budget::BudgetLedger>>) -> Self {
        Kernels {
            by_bundle: Mutex::default(),
            budgets: ledger,
            executor: None,
        }
    }

    /// The same kernels executing their approved intents through `executor` (the
    /// faces' `--sandbox`: each run under its target lease); `None`: they stop after
    /// static validation, as by default.
    #[must_use]
    pub fn with_executor(mut self, executor: Option<Arc<dyn ExecutionPhase>>) -> Self {
        self.executor = executor;
        self
    }
}

/// One execute phase shared by the kernels of every bundle.
struct SharedPhase(Arc<dyn ExecutionPhase>);

impl ExecutionPhase for SharedPhase {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn execute(&self, request: &ExecutionRequest<'_>) -> Result<ExecutionOutcome, ExecutionError> {
        self.0.execute(request)
    }
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels").finish_non_exhaustive()
    }
}

fn build(
    gov: &Governance,
    kernels: &Kernels,
    bundle: Option<&str>,
    catalog: Catalog,
) -> Result<Kernel, FaceError> {
    let policy = gov.policy(bundle)?;
    let mut config = KernelConfig::new(policy.engine.clone(), catalog);
    config.policy_bundle_hash = policy.hash.clone();
    let store: Arc<dyn AuditStore> = match gov.audit() {
        Some(a) => a.store(),
        None => Arc::new(MemoryStore::new()),
    };
    // What `cfa policy backtest` replays the run's decisions from.
    let inputs = gov.audit().and_then(|a| a.inputs_shared());
    let mut builder = Kernel::builder(config)
        .audit(store)
        .inputs(inputs)
        .ids(UuidIds);
    if let Some(ledger) = &kernels.budgets {
        builder = builder.budgets(Arc::clone(ledger), None);
    }
    if let Some(control) = gov.control() {
        builder = builder.control(control.plane().clone());
    }
    if let Some(executor) = &kernels.executor {
        builder = builder.executor(SharedPhase(Arc::clone(executor)));
    }
    builder
        .build()
        .map_err(|e| FaceError::new("kernel_error", format!("cannot build the kernel: {e}")))
}

/// Runs `intent` through the kernel for the named (or active) bundle, over `catalog`
/// (or the configured one).
pub fn evaluate_intent(
    gov: &Governance,
    kernels: &Kernels,
    intent: &str,
    bundle: Option<&str>,
    catalog_override: Option<Catalog>,
) -> Result<IntentOutcome, FaceError> {
    if intent.trim().is_empty() {
        return Err(FaceError::new("invalid_intent", "the intent text is empty"));
    }
    let no_catalog = catalog_override.is_none() && gov.catalog().is_none();
    let kernel = match catalog_override {
        Some(catalog) => Arc::new(build(gov, kernels, bundle, catalog)?),
        None => {
            let key = bundle.map(str::trim).unwrap_or("").to_owned();
            let mut map = kernels
                .by_bundle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match map.get(&key) {
                Some(k) => Arc::clone(k),
                None => {
                    let catalog = gov
                        .catalog()
                        .map(|c| c.catalog.clone())
                        .unwrap_or_else(Catalog::empty);
                    let k = Arc::new(build(gov, kernels, bundle, catalog)?);
                    map.insert(key, Arc::clone(&k));
                    k
                }
            }
        }
    };
    let mut result = kernel.process(intent);
    gov.shadow_run(&result, &kernel.config().catalog);
    if no_catalog {
        crate::kernel_render::explain_missing_catalog(
            &mut result,
            "the server was started without -c/--catalog or a cfa.yaml catalog",
        );
    }
    if let Some(a) = gov.audit() {
        a.note_appended(result.audit_event_hashes.len() as u64);
    }
    Ok(IntentOutcome {
        intent: intent.to_owned(),
        result,
    })
}

/// Reads a catalog given inline (MCP `cfa_compliance_check`), validating it first.
pub fn inline_catalog(value: &Value) -> Result<Catalog, FaceError> {
    let issues = cfa::types::validate::catalog(value, false);
    if !issues.is_empty() {
        let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
        return Err(FaceError::new(
            "invalid_catalog",
            format!("invalid catalog: {}", text.join("; ")),
        ));
    }
    Catalog::from_value(value)
        .map_err(|e| FaceError::new("invalid_catalog", format!("invalid catalog: {e}")))
}

/// `{intent, bundle, policy_bundle, decision: STATE, faults, blocked_reason,
/// signature_hash, patches, audit_event_hashes}` for `cfa_compliance_check`.
pub fn compliance_json(o: &IntentOutcome, bundle: &str) -> Value {
    let faults: Vec<Value> = o
        .result
        .faults
        .iter()
        .map(|f| json!({"code": f.code, "severity": f.severity, "family": f.family, "message": f.message}))
        .collect();
    json!({
        "intent": o.intent,
        "bundle": bundle,
        "policy_bundle": o.result.policy_bundle,
        "decision": o.state().to_uppercase(),
        "faults": faults,
        "blocked_reason": o.blocked_reason(),
        "signature_hash": o.result.signature_hash,
        "patches": o.as_policy_result().patches,
        "audit_event_hashes": o.result.audit_event_hashes,
    })
}
