//! [`SandboxExecution`]: the kernel's execution slot filled by cfa-lifecycle's
//! [`ExecutionService`] (lease, sandbox run with runtime validation and partial
//! execution, state projection, execution record, skill evaluation). It only translates:
//! the sandbox outcome becomes the kernel's [`ExecutionOutcome`], a held lease becomes a
//! blocking `STATE_TARGET_LEASED` fault, and the skill state is reported in the details
//! (`lifecycle.skill_state`), never applied to the decision (design.md B1). Time and
//! registry version ids are injected or derived from the request ids.

use crate::execute::{
    ExecutionError, ExecutionOutcome, ExecutionPhase, ExecutionRequest, PublishState,
};
use cfa_lifecycle::{ExecutionService, ServiceError, ServiceRequest, ServiceResult, lease_fault};
use cfa_sandbox::{PublishState as SandboxPublish, StepStatus};
use cfa_types::canonical::sha256_hex;
use cfa_types::{Fault, FaultSeverity};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// The injected clock of [`SandboxExecution`] (leases, records and projections are
/// stamped with it).
pub type ExecutionClock = Box<dyn Fn() -> Timestamp + Send + Sync>;

/// The registry version id written for a decision: `v_` and the first 8 hex digits of
/// the SHA-256 of the decision id (deterministic, no randomness).
pub fn version_id_for(decision_id: &str) -> String {
    let hex = sha256_hex(decision_id.as_bytes());
    format!("v_{}", hex.get(..8).unwrap_or(&hex))
}

/// An [`ExecutionPhase`] that runs approved artifacts through an [`ExecutionService`].
pub struct SandboxExecution {
    service: ExecutionService,
    clock: ExecutionClock,
}

impl std::fmt::Debug for SandboxExecution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxExecution")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl SandboxExecution {
    /// Runs through `service`, stamping everything with `clock`.
    pub fn new(service: ExecutionService, clock: ExecutionClock) -> Self {
        SandboxExecution { service, clock }
    }

    /// The wrapped service.
    pub fn service(&self) -> &ExecutionService {
        &self.service
    }
}

fn publish_state(r: &ServiceResult) -> PublishState {
    let o = &r.outcome;
    match o.publish_state {
        SandboxPublish::Published => PublishState::Published,
        SandboxPublish::RolledBack => PublishState::RolledBack,
        SandboxPublish::CommittedNotPublished => PublishState::CommittedNotPublished,
        SandboxPublish::Quarantined => PublishState::Quarantined {
            steps: o.quarantined_steps.clone(),
        },
        SandboxPublish::Degraded => {
            let mut failed: Vec<String> = Vec::new();
            for s in &o.step_results {
                if s.status != StepStatus::Succeeded && !failed.contains(&s.step_id) {
                    failed.push(s.step_id.clone());
                }
            }
            failed.retain(|id| !o.committed_steps.contains(id));
            PublishState::Degraded {
                failed_steps: failed,
            }
        }
    }
}

/// Runtime faults for the kernel. A published outcome passed runtime validation (the
/// sandbox rolls back otherwise), so its remaining faults come from attempts that were
/// retried successfully: they are reported as warnings, matching the lifecycle's own
/// final state (`approved_with_warnings`).
fn kernel_faults(r: &ServiceResult) -> Vec<Fault> {
    let published = r.outcome.publish_state == SandboxPublish::Published;
    r.outcome
        .runtime_faults
        .iter()
        .map(|f| {
            let mut f = f.clone();
            if published && matches!(f.severity, FaultSeverity::High | FaultSeverity::Critical) {
                f.severity = FaultSeverity::Warning;
            }
            f
        })
        .collect()
}

fn details(r: &ServiceResult) -> Map<String, Value> {
    let o = &r.outcome;
    let mut d = Map::new();
    d.insert("executed".into(), Value::Bool(true));
    d.insert("sandbox".into(), Value::from(o.sandbox.as_str()));
    d.insert("sandbox_status".into(), json!(o.sandbox_status));
    d.insert("retries".into(), Value::from(o.retries));
    d.insert("metrics".into(), o.metrics.snapshot());
    d.insert("runtime_validation".into(), json!(o.runtime_validation));
    d.insert("committed_steps".into(), json!(o.committed_steps));
    d.insert("skipped_steps".into(), json!(o.skipped_steps));
    d.insert("final_state".into(), Value::from(r.decision_state.as_str()));
    let mut lifecycle = Map::new();
    lifecycle.insert(
        "skill_state".into(),
        r.skill_state
            .map_or(Value::Null, |s| Value::from(s.as_str())),
    );
    if let Some(scores) = &r.scores {
        lifecycle.insert("scores".into(), json!(scores));
    }
    d.insert("lifecycle".into(), Value::Object(lifecycle));
    d
}

fn projection(r: &ServiceResult) -> Option<Map<String, Value>> {
    let p = &r.projection;
    if !p.projected {
        return None;
    }
    let mut m = Map::new();
    m.insert("version_id".into(), Value::from(p.version_id.as_str()));
    m.insert("projection_type".into(), json!(p.projection_type));
    m.insert("target_scope".into(), json!(p.target_scope));
    m.insert("audit_only".into(), Value::Bool(p.audit_only));
    Some(m)
}

impl ExecutionPhase for SandboxExecution {
    fn name(&self) -> &str {
        self.service.sandbox.name()
    }

    fn execute(&self, req: &ExecutionRequest<'_>) -> Result<ExecutionOutcome, ExecutionError> {
        let version_id = version_id_for(req.decision_id);
        let ctx = &req.signature.execution_context;
        let request = ServiceRequest {
            intent_id: req.intent_id,
            signature: req.signature,
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
            Ok(r) => Ok(ExecutionOutcome {
                publish_state: publish_state(&r),
                faults: kernel_faults(&r),
                details: details(&r),
                projection: projection(&r),
            }),
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
