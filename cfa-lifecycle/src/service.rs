//! [`ExecutionService`]: the whole Ω+Σ path for one approved intent, ready for the
//! kernel's execution slot — take the target lease (I8), execute through a sandbox with
//! runtime validation and partial execution, project the outcome into the state store,
//! record the execution, evaluate the skill (reported, never applied to the decision:
//! B1), release the lease. Time and version ids are injected.

use crate::db::LifecycleDb;
use crate::error::LifecycleError;
use crate::indices::IndexScores;
use crate::lease::LeaseHeld;
use crate::projection::{Projection, ProjectionInput, project};
use crate::promotion::{PromotionEngine, SkillRecord, SkillState};
use crate::record::ExecutionRecord;
use crate::store::StateStore;
use crate::time::isoformat;
use cfa_codegen::GeneratedArtifact;
use cfa_plan::ExecutionPlan;
use cfa_sandbox::{
    ExecutionConfig, ExecutionOutcome, PublishState, RunContext, Sandbox, SandboxError, execute,
};
use cfa_types::{DecisionState, Fault, FaultSeverity, StateSignature};
use jiff::Timestamp;
use std::sync::Arc;

/// Why the service could not run an intent.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Another holder writes the target: block with [`crate::lease_fault`].
    #[error(transparent)]
    Leased(LeaseHeld),
    /// The sandbox could not start (or the plan cannot be ordered).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The state store failed.
    #[error(transparent)]
    State(LifecycleError),
}

impl From<LifecycleError> for ServiceError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Leased(h) => ServiceError::Leased(h),
            other => ServiceError::State(other),
        }
    }
}

/// One approved intent to run.
#[derive(Debug, Clone, Copy)]
pub struct ServiceRequest<'a> {
    /// Intent id.
    pub intent_id: &'a str,
    /// The approved signature.
    pub signature: &'a StateSignature,
    /// Its plan.
    pub plan: &'a ExecutionPlan,
    /// The statically validated artifact (required by `postgres`).
    pub artifact: Option<&'a GeneratedArtifact>,
    /// Registry version id to write (injected, e.g. `v_1a2b3c4d`).
    pub version_id: &'a str,
    /// Now (injected).
    pub now: Timestamp,
    /// Replans the decision needed.
    pub replan_count: u32,
    /// Policy faults of the decision (they count in the execution record).
    pub policy_faults: &'a [Fault],
    /// Policy bundle version (recorded on promotion).
    pub policy_bundle_version: &'a str,
    /// Catalog snapshot version (recorded on promotion).
    pub catalog_snapshot_version: &'a str,
}

/// What the service did.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceResult {
    /// The execution outcome.
    pub outcome: ExecutionOutcome,
    /// The final decision state of the run (B6: degraded stays degraded).
    pub decision_state: DecisionState,
    /// The state projection.
    pub projection: Projection,
    /// The skill state after evaluation (report it beside the decision; B1).
    pub skill_state: Option<SkillState>,
    /// The skill's index scores.
    pub scores: Option<IndexScores>,
}

/// The Ω+Σ service.
pub struct ExecutionService {
    /// The sandbox.
    pub sandbox: Box<dyn Sandbox>,
    /// Failure/retry policy and runtime validator.
    pub config: ExecutionConfig,
    /// The context registry.
    pub store: Arc<dyn StateStore>,
    /// Leases, execution records and skills (none: no leases, no lifecycle).
    pub db: Option<Arc<LifecycleDb>>,
    /// Promotion engine.
    pub engine: PromotionEngine,
    /// This kernel instance's lease holder id.
    pub holder: String,
    /// Lease lifetime, seconds.
    pub lease_ttl_secs: u32,
}

impl std::fmt::Debug for ExecutionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionService")
            .field("sandbox", &self.sandbox.name())
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// The decision state of an approved run that ended with `o`: published runs are
/// `approved` (or `approved_with_warnings` with warning faults); others map through
/// [`PublishState::decision_state`].
pub fn final_state(o: &ExecutionOutcome) -> DecisionState {
    if o.publish_state == PublishState::Published {
        if o.runtime_faults
            .iter()
            .any(|f| f.severity != FaultSeverity::Info)
        {
            DecisionState::ApprovedWithWarnings
        } else {
            DecisionState::Approved
        }
    } else {
        o.publish_state.decision_state()
    }
}

impl ExecutionService {
    /// Runs `req` (see the module docs). A held lease is [`ServiceError::Leased`]; the
    /// lease is released whatever happens after it was taken.
    pub fn run(&self, req: &ServiceRequest<'_>) -> Result<ServiceResult, ServiceError> {
        let target = req.signature.target_dataset_name();
        if let Some(db) = &self.db {
            db.acquire_lease(&target, &self.holder, req.now, self.lease_ttl_secs)?;
        }
        let result = self.run_leased(req, &target);
        if let Some(db) = &self.db {
            let released = db.release_lease(&target, &self.holder);
            if result.is_ok() {
                released?;
            }
        }
        result
    }

    fn run_leased(
        &self,
        req: &ServiceRequest<'_>,
        target: &str,
    ) -> Result<ServiceResult, ServiceError> {
        let ctx = RunContext {
            plan: req.plan,
            artifact: req.artifact,
            signature: req.signature,
        };
        let outcome = execute(self.sandbox.as_ref(), &ctx, &self.config)?;
        let state = final_state(&outcome);
        let hash = req.signature.signature_hash();
        let projection = project(
            self.store.as_ref(),
            &ProjectionInput {
                intent_id: req.intent_id,
                target,
                signature_hash: &hash,
                target_layer: req.signature.target_layer.as_str(),
                outcome: &outcome,
            },
            req.version_id,
            &isoformat(req.now),
        )?;
        let (mut skill_state, mut scores) = (None, None);
        if let Some(db) = &self.db {
            let faults: Vec<Fault> = req
                .policy_faults
                .iter()
                .chain(outcome.runtime_faults.iter())
                .cloned()
                .collect();
            db.execution_append(&ExecutionRecord::from_run(
                &hash,
                req.now,
                state.as_str(),
                req.replan_count,
                outcome.metrics.cost_dbu,
                outcome.metrics.duration_seconds,
                &faults,
            ))?;
            let records = db.execution_load(Some(&hash))?;
            let mut skill = db
                .skill_load_all()?
                .into_iter()
                .find(|s| s.signature_hash == hash)
                .unwrap_or_else(|| SkillRecord::new(&hash));
            scores = Some(self.engine.evaluate(
                &mut skill,
                &records,
                req.now,
                req.policy_bundle_version,
                req.catalog_snapshot_version,
            ));
            db.skill_upsert(&skill)?;
            skill_state = Some(skill.state);
        }
        Ok(ServiceResult {
            outcome,
            decision_state: state,
            projection,
            skill_state,
            scores,
        })
    }
}
