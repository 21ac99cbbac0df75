//! [`ExecutionService`]: what the lifecycle does around one sandbox run of an approved
//! intent — take the target lease (I8), hand the run to cfa-sandbox's [`execute`]
//! (runtime validation and partial execution are the sandbox's), project the outcome
//! into the state store, record the execution, evaluate the skill (reported, never
//! applied to the decision: B1), release the lease. The decision state is the sandbox's
//! one mapping ([`RunOutcome::decision_state`]). Time and version ids are injected.

#[cfg(feature = "sqlite")]
use crate::db::LifecycleDb;
use crate::error::LifecycleError;
use crate::indices::IndexScores;
use crate::lease::{LeaseHeld, LeasePolicy, LeaseStore};
use crate::projection::{Projection, ProjectionInput, project};
use crate::promotion::{PromotionEngine, PromotionPolicy, SkillState};
use crate::store::StateStore;
use crate::time::isoformat;
use cfa_plan::ExecutionPlan;
use cfa_sandbox::{
    ExecutionConfig, GeneratedArtifact, RunContext, RunOutcome, Sandbox, SandboxError, execute,
};
use cfa_types::{DecisionState, Fault, StateSignature};
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
    /// `signature`'s `signature_hash` when the caller has it already; `None`: the
    /// service computes it.
    pub signature_hash: Option<&'a str>,
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
    /// The sandbox run.
    pub outcome: RunOutcome,
    /// The final decision state of the run (B6: degraded stays degraded).
    pub decision_state: DecisionState,
    /// The state projection.
    pub projection: Projection,
    /// The skill state after evaluation (report it beside the decision; B1).
    pub skill_state: Option<SkillState>,
    /// The skill's index scores.
    pub scores: Option<IndexScores>,
}

/// The lifecycle around a sandbox run. Build it with [`ExecutionService::new`] (no
/// lifecycle database) or as a struct; with the `sqlite` feature it has a `db` field.
pub struct ExecutionService {
    /// The sandbox.
    pub sandbox: Box<dyn Sandbox>,
    /// Failure/retry policy and runtime validator.
    pub config: ExecutionConfig,
    /// The context registry.
    pub store: Arc<dyn StateStore>,
    /// Leases, execution records and skills (none: no leases unless [`Self::leases`]
    /// names a table, no lifecycle).
    #[cfg(feature = "sqlite")]
    pub db: Option<Arc<LifecycleDb>>,
    /// Where target leases are taken (default: the lifecycle database's table) and
    /// whether each run holds its own.
    pub leases: LeasePolicy,
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

impl ExecutionService {
    /// A service over `sandbox` that projects into `store`, with no lifecycle database
    /// (no leases, no execution records, no skills), the default promotion policy, the
    /// lease holder `cfa` and a 600 s lease lifetime.
    pub fn new(
        sandbox: Box<dyn Sandbox>,
        config: ExecutionConfig,
        store: Arc<dyn StateStore>,
    ) -> Self {
        ExecutionService {
            sandbox,
            config,
            store,
            #[cfg(feature = "sqlite")]
            db: None,
            leases: LeasePolicy::default(),
            engine: PromotionEngine::new(PromotionPolicy::default(), env!("CARGO_PKG_VERSION")),
            holder: "cfa".to_owned(),
            lease_ttl_secs: 600,
        }
    }

    /// Runs `req` (see the module docs). A held lease is [`ServiceError::Leased`]; the
    /// lease is released whatever happens after it was taken.
    pub fn run(&self, req: &ServiceRequest<'_>) -> Result<ServiceResult, ServiceError> {
        let target = req.signature.target_dataset_name();
        let leases = self.lease_store();
        let holder = if self.leases.per_run {
            std::borrow::Cow::Owned(format!("{}/{}", self.holder, req.intent_id))
        } else {
            std::borrow::Cow::Borrowed(self.holder.as_str())
        };
        if let Some(leases) = leases {
            leases.acquire_lease(&target, &holder, req.now, self.lease_ttl_secs)?;
        }
        let result = self.run_leased(req, &target);
        if let Some(leases) = leases {
            let released = leases.release_lease(&target, &holder);
            if result.is_ok() {
                released?;
            }
        }
        result
    }

    /// The lease table runs take their lease in: [`Self::leases`]'s, else the
    /// lifecycle database's, else none.
    fn lease_store(&self) -> Option<&dyn LeaseStore> {
        if let Some(store) = &self.leases.store {
            return Some(store.as_ref());
        }
        #[cfg(feature = "sqlite")]
        if let Some(db) = &self.db {
            return Some(db.as_ref());
        }
        None
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
        let state = outcome.decision_state();
        let hash: std::borrow::Cow<'_, str> = match req.signature_hash {
            Some(h) => h.into(),
            None => req.signature.signature_hash().into(),
        };
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
        let (skill_state, scores) = self.record(req, &outcome, state, &hash)?;
        Ok(ServiceResult {
            outcome,
            decision_state: state,
            projection,
            skill_state,
            scores,
        })
    }
}

impl ExecutionService {
    /// Records the run and evaluates the skill (with a lifecycle database).
    #[cfg(feature = "sqlite")]
    fn record(
        &self,
        req: &ServiceRequest<'_>,
        outcome: &RunOutcome,
        state: DecisionState,
        hash: &str,
    ) -> Result<(Option<SkillState>, Option<IndexScores>), ServiceError> {
        use crate::promotion::SkillRecord;
        use crate::record::ExecutionRecord;
        let Some(db) = &self.db else {
            return Ok((None, None));
        };
        let faults: Vec<Fault> = req
            .policy_faults
            .iter()
            .chain(outcome.runtime_faults.iter())
            .cloned()
            .collect();
        db.execution_append(&ExecutionRecord::from_run(
            hash,
            req.now,
            state.as_str(),
            req.replan_count,
            outcome.metrics.cost_dbu,
            outcome.metrics.duration_seconds,
            &faults,
        ))?;
        let records = db.execution_load(Some(hash))?;
        let mut skill = db
            .skill_load_all()?
            .into_iter()
            .find(|s| s.signature_hash == hash)
            .unwrap_or_else(|| SkillRecord::new(hash));
        let scores = self.engine.evaluate(
            &mut skill,
            &records,
            req.now,
            req.policy_bundle_version,
            req.catalog_snapshot_version,
        );
        db.skill_upsert(&skill)?;
        Ok((Some(skill.state), Some(scores)))
    }

    /// Without a lifecycle database nothing is recorded and no skill is evaluated.
    #[cfg(not(feature = "sqlite"))]
    #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
    fn record(
        &self,
        _req: &ServiceRequest<'_>,
        _outcome: &RunOutcome,
        _state: DecisionState,
        _hash: &str,
    ) -> Result<(Option<SkillState>, Option<IndexScores>), ServiceError> {
        Ok((None, None))
    }
}
