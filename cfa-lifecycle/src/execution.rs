//! [`LifecycleExecution`]: cfa-sandbox's [`ExecutionPhase`] slot filled by the lifecycle.
//! The sandbox runs the artifact and says what its outcome means
//! ([`cfa_sandbox::RunOutcome::phase_faults`], [`cfa_sandbox::RunOutcome::phase_details`]);
//! this adds what only the lifecycle knows — the target lease (a held lease is a
//! blocking `STATE_TARGET_LEASED` and nothing runs), the state projection (the
//! `state_projected` details) and the skill state, reported in the details
//! (`lifecycle.skill_state`) and never applied to the decision (docs/differences.md#b1-lifecycle-never-changes-a-decision). Time and
//! registry version ids are injected or derived from the request ids.

use crate::lease::lease_fault;
use crate::service::{ExecutionService, ServiceError, ServiceRequest, ServiceResult};
use cfa_sandbox::{
    ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest, PublishState,
};
use cfa_types::canonical::sha256_hex;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

/// The injected clock of [`LifecycleExecution`] (leases, records and projections are
/// stamped with it).
pub type ExecutionClock = Box<dyn Fn() -> Timestamp + Send + Sync>;

/// The registry version id written for a decision: `v_` and the first 8 hex digits of
/// the SHA-256 of the decision id (deterministic, no randomness).
///
/// ```
/// assert_eq!(cfa_lifecycle::version_id_for("d-1").len(), 10);
/// assert!(cfa_lifecycle::version_id_for("d-1").starts_with("v_"));
/// ```
pub fn version_id_for(decision_id: &str) -> String {
    let hex = sha256_hex(decision_id.as_bytes());
    let digits = hex.get(..8).unwrap_or(&hex);
    let mut id = String::with_capacity(2 + digits.len());
    id.push_str("v_");
    id.push_str(digits);
    id
}

/// An [`ExecutionPhase`] that runs approved artifacts through an [`ExecutionService`]
/// (lease, sandbox run, projection, execution record, skill evaluation).
///
/// ```
/// use cfa_lifecycle::{ExecutionService, LifecycleExecution, MemoryStateStore, StateStore};
/// use cfa_plan::{ExecutionPlanner, Planner};
/// use cfa_sandbox::{
///     ExecutionConfig, ExecutionPhase, ExecutionRequest, GeneratedArtifact, PublishState,
///     SandboxOptions, SandboxRegistry,
/// };
/// use cfa_types::{Catalog, DecisionState, StateSignature};
/// use serde_json::json;
/// use std::sync::Arc;
///
/// let signature = StateSignature::from_value(&json!({
///     "domain": "fiscal", "intent": "persist", "target_layer": "silver",
///     "datasets": [{"name": "nfe", "size_gb": 1, "partition_column": "processing_date",
///                   "merge_keys": ["nfe_id"]}],
///     "constraints": {"merge_key_required": true, "partition_by": ["processing_date"]}
/// }))?;
/// let plan = ExecutionPlanner::default().plan(&signature, None)?;
/// // The mock sandbox does not read the artifact; the lifecycle only hands it on.
/// let artifact: GeneratedArtifact = serde_json::from_value(json!({
///     "backend": "sql", "language": "sql", "target": plan.target,
///     "plan_signature_hash": plan.signature_hash, "write_mode": "merge",
///     "consistency_unit": "dataset", "step_count": plan.steps.len(),
///     "files": [], "step_code": {}
/// }))?;
///
/// let sandbox = SandboxRegistry::with_builtins().create("mock", &SandboxOptions::default())?;
/// let store = Arc::new(MemoryStateStore::new(cfa_lifecycle::DEFAULT_HISTORY_CAP));
/// let service = ExecutionService::new(sandbox, ExecutionConfig::default(), store.clone());
/// let phase = LifecycleExecution::new(service, Box::new(|| jiff::Timestamp::UNIX_EPOCH));
///
/// let outcome = phase.execute(&ExecutionRequest {
///     intent_id: "i-1",
///     decision_id: "d-1",
///     signature: &signature,
///     signature_hash: None,
///     catalog: &Catalog::default(),
///     plan: &plan,
///     artifact: &artifact,
///     replan_count: 0,
///     policy_faults: &[],
/// })?;
/// assert_eq!(outcome.publish_state, PublishState::Published);
/// assert_eq!(outcome.decision_state(), DecisionState::Approved);
/// assert_eq!(outcome.details["final_state"], "approved");
/// // Projected into the state store under the decision's registry version.
/// assert!(outcome.projection.is_some());
/// assert_eq!(store.version_id()?, cfa_lifecycle::version_id_for("d-1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LifecycleExecution {
    service: ExecutionService,
    clock: ExecutionClock,
}

impl std::fmt::Debug for LifecycleExecution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LifecycleExecution")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl LifecycleExecution {
    /// Runs through `service`, stamping everything with `clock`.
    pub fn new(service: ExecutionService, clock: ExecutionClock) -> Self {
        LifecycleExecution { service, clock }
    }

    /// The wrapped service.
    pub fn service(&self) -> &ExecutionService {
        &self.service
    }
}

/// The sandbox's details, then the lifecycle's (`lifecycle.skill_state`, `scores`).
fn details(r: &ServiceResult) -> Map<String, Value> {
    // `phase_details` leaves room for this one more key (no regrowth of the map).
    static SKILL: OnceLock<Map<String, Value>> = OnceLock::new();
    static SKILL_AND_SCORES: OnceLock<Map<String, Value>> = OnceLock::new();
    let mut d = r.outcome.phase_details();
    let skill_state = r
        .skill_state
        .map_or(Value::Null, |s| Value::from(s.as_str()));
    let lifecycle = match &r.scores {
        Some(scores) => filled(
            SKILL_AND_SCORES.get_or_init(|| keyed(&["skill_state", "scores"])),
            [skill_state, json!(scores)],
        ),
        None => filled(SKILL.get_or_init(|| keyed(&["skill_state"])), [skill_state]),
    };
    d.insert("lifecycle".into(), Value::Object(lifecycle));
    d
}

/// A map of `keys` in that order, every value `null`: the template [`filled`] copies
/// (built once per process by its callers).
fn keyed(keys: &[&str]) -> Map<String, Value> {
    let mut m = Map::with_capacity(keys.len());
    for key in keys {
        m.insert((*key).to_owned(), Value::Null);
    }
    m
}

/// A copy of `template` (from [`keyed`], `N` keys) with `values` in its keys' order:
/// the map `insert` would give for the same keys and values, without hashing the
/// keys again (a copy keeps the template's hashes).
fn filled<const N: usize>(template: &Map<String, Value>, values: [Value; N]) -> Map<String, Value> {
    debug_assert_eq!(template.len(), N, "one value a key");
    let mut m = template.clone();
    for (slot, value) in m.values_mut().zip(values) {
        *slot = value;
    }
    m
}

fn projection(r: &ServiceResult) -> Option<Map<String, Value>> {
    let p = &r.projection;
    if !p.projected {
        return None;
    }
    // Built directly: the values `json!` gives for these fields, without serde.
    static KEYS: OnceLock<Map<String, Value>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        keyed(&[
            "version_id",
            "projection_type",
            "target_scope",
            "audit_only",
        ])
    });
    Some(filled(
        keys,
        [
            Value::from(p.version_id.as_str()),
            Value::from(p.projection_type.as_str()),
            Value::Array(
                p.target_scope
                    .iter()
                    .map(|t| Value::from(t.as_str()))
                    .collect(),
            ),
            Value::Bool(p.audit_only),
        ],
    ))
}

impl ExecutionPhase for LifecycleExecution {
    fn name(&self) -> &str {
        self.service.sandbox.name()
    }

    fn execute(&self, req: &ExecutionRequest<'_>) -> Result<ExecutionOutcome, ExecutionError> {
        let version_id = version_id_for(req.decision_id);
        let ctx = &req.signature.execution_context;
        let request = ServiceRequest {
            intent_id: req.intent_id,
            signature: req.signature,
            signature_hash: req.signature_hash,
            plan: req.plan,
            artifact: Some(req.artifact),
            version_id: &version_id,
            now: (self.clock)(),
            replan_count: req.replan_count,
            policy_faults: req.policy_faults,
            policy_bundle_version: &ctx.policy_bundle_version,
            catalog_snapshot_version: &ctx.catalog_snapshot_version,
        };
        match self.service.run(&request) {
            Ok(r) => {
                let details = details(&r);
                let projection = projection(&r);
                let faults = r.outcome.phase_faults();
                // The result is ours: its publish state moves, not copied.
                Ok(ExecutionOutcome {
                    publish_state: r.outcome.publish_state,
                    faults,
                    details,
                    projection,
                })
            }
            // Nothing ran and nothing was published: the blocking fault makes the kernel
            // block the intent (and audit it) with STATE_TARGET_LEASED.
            Err(ServiceError::Leased(held)) => {
                let mut d = Map::new();
                d.insert("executed".into(), Value::Bool(false));
                d.insert("lease_holder".into(), Value::from(held.holder.as_str()));
                d.insert("lease_target".into(), Value::from(held.target.as_str()));
                d.insert(
                    "lease_expires_at".into(),
                    Value::from(held.expires_at.as_str()),
                );
                Ok(ExecutionOutcome {
                    publish_state: PublishState::NotExecuted,
                    faults: vec![lease_fault(&held)],
                    details: d,
                    projection: None,
                })
            }
            Err(e) => Err(ExecutionError {
                phase: self.name().to_owned(),
                message: e.to_string(),
            }),
        }
    }
}
