//! The kernel: built once, then [`Kernel::process`] runs the governed flow for one
//! intent through the injected phase implementations.

use crate::config::KernelConfig;
use crate::control::ControlPlane;
use crate::error::BuildError;
use crate::ids::{IdSource, UuidIds};
use crate::result::KernelResult;
use crate::run::Run;
use cfa_audit::{AuditStore, Clock, ContentStore, MemoryStore, SystemClock};
use cfa_codegen::BackendRegistry;
use cfa_plan::{ExecutionPlanner, Planner};
use cfa_resolve::{AutoApprove, ConfirmationHandler, Normalizer, RuleBasedNormalizer};
use cfa_sandbox::ExecutionPhase;
use cfa_types::validate::Issue;
use std::sync::Arc;

/// A normaliser the kernel can share across threads.
pub type SharedNormalizer = Box<dyn Normalizer + Send + Sync>;
/// A confirmation handler the kernel can share across threads.
pub type SharedConfirmation = Box<dyn ConfirmationHandler + Send + Sync>;

/// The orchestrator. Holds only immutable configuration and trait objects, so one
/// kernel serves any number of threads through `&self`, and keeps no per-call history
/// (docs/differences.md#b10-bounded-memory-per-call): audit events go to the store, nothing else is retained.
pub struct Kernel {
    pub(crate) config: KernelConfig,
    pub(crate) catalog_hash: String,
    pub(crate) catalog_issues: Vec<Issue>,
    pub(crate) normalizer: SharedNormalizer,
    pub(crate) confirmation: SharedConfirmation,
    pub(crate) planner: Box<dyn Planner>,
    pub(crate) backends: BackendRegistry,
    pub(crate) audit: Arc<dyn AuditStore>,
    pub(crate) ids: Box<dyn IdSource>,
    pub(crate) clock: Box<dyn Clock>,
    pub(crate) executor: Option<Box<dyn ExecutionPhase>>,
    pub(crate) budgets: Option<crate::run::Budgets>,
    pub(crate) control: Option<ControlPlane>,
    pub(crate) inputs: Option<Arc<ContentStore>>,
    /// The policy bundle's version and hash as canonical JSON strings, written once:
    /// every event of every run carries both.
    pub(crate) quoted_bundle: [cfa_audit::QuotedStr; 2],
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("policy_bundle", &self.config.policy.version())
            .field("backend", &self.config.backend)
            .field("grounding", &self.config.grounding)
            .field(
                "executor",
                &self.executor.as_ref().map(|e| e.name().to_owned()),
            )
            .finish_non_exhaustive()
    }
}

impl Kernel {
    /// A builder over `config` with the default parts: the English rule-based
    /// normaliser, auto-approve confirmation, the built-in planner and backends, an
    /// in-memory audit store, UUID v4 ids, the system clock and no execution phase.
    ///
    /// ```
    /// use cfa_kernel::{Kernel, KernelConfig, Phase};
    /// use cfa_types::{Catalog, DecisionState};
    ///
    /// let catalog: serde_json::Value =
    ///     serde_json::from_str(include_str!("../../examples/catalog.json"))?;
    /// let config = KernelConfig::new(cfa_policy::PolicyEngine::default(), Catalog::from_value(&catalog)?);
    /// let kernel = Kernel::builder(config).build()?;
    /// let r = kernel.process("Join nfe with clientes daily, anonymize pii, into silver");
    /// assert_eq!(r.state, DecisionState::Approved, "{}", r.blocked_reason);
    /// // No execution phase was given: execute is skipped, and the result says so.
    /// assert_eq!(r.phases_skipped[0].phase, Phase::Execute);
    /// // A bare table name grounds nothing: blocked, with the reason.
    /// let r = kernel.process("do something with unknown table");
    /// assert_eq!(r.state, DecisionState::Blocked);
    /// assert!(!r.blocked_reason.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(config: KernelConfig) -> KernelBuilder {
        KernelBuilder {
            config,
            normalizer: None,
            confirmation: None,
            planner: None,
            backends: None,
            audit: None,
            ids: None,
            clock: None,
            executor: None,
            budgets: None,
            control: None,
            inputs: None,
        }
    }

    /// Runs the governed flow for `intent` and returns the decision. Never panics and
    /// never errors: any failure ends in `blocked` with a fault naming the phase.
    pub fn process(&self, intent: &str) -> KernelResult {
        Run::start(self, intent)
    }

    /// The configuration.
    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// The audit store events are written to.
    pub fn audit_store(&self) -> &Arc<dyn AuditStore> {
        &self.audit
    }
}

/// Builds a [`Kernel`]; every part is optional and has a default (see [`Kernel::builder`]).
///
/// ```
/// use cfa_audit::{AuditStore, MemoryStore};
/// use cfa_kernel::{Kernel, KernelConfig, SequentialIds, TickClock};
/// use std::sync::Arc;
///
/// let audit = Arc::new(MemoryStore::new());
/// let store: Arc<dyn AuditStore> = audit.clone();
/// let kernel = Kernel::builder(KernelConfig::default())
///     .audit(store)
///     .ids(SequentialIds::new())
///     .clock(TickClock::new(1_767_225_600))
///     .build()?;
/// let r = kernel.process("ingest nfe raw into bronze");
/// // One audit event per step, the final decision last, all in the injected store.
/// assert_eq!(r.audit_event_hashes.len() as u64, audit.len()?);
/// assert_eq!(r.created_at, "2026-01-01T00:00:00+00:00");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct KernelBuilder {
    config: KernelConfig,
    normalizer: Option<SharedNormalizer>,
    confirmation: Option<SharedConfirmation>,
    planner: Option<Box<dyn Planner>>,
    backends: Option<BackendRegistry>,
    audit: Option<Arc<dyn AuditStore>>,
    ids: Option<Box<dyn IdSource>>,
    clock: Option<Box<dyn Clock>>,
    executor: Option<Box<dyn ExecutionPhase>>,
    budgets: Option<crate::run::Budgets>,
    control: Option<ControlPlane>,
    inputs: Option<Arc<ContentStore>>,
}

impl KernelBuilder {
    /// Where each policy evaluation's signature (and the catalog) is stored, by the
    /// `content_hash` its `policy_evaluation` event carries, before the event is
    /// written, so `cfa policy backtest` can replay governed runs (see
    /// [`crate::replay::record_run_inputs`]); the store beside the audit log
    /// (`<log>.signatures/`). Without one nothing is stored. A store that fails
    /// blocks the run with `AUDIT_WRITE_FAILED`.
    #[must_use]
    pub fn inputs(mut self, store: Option<Arc<ContentStore>>) -> Self {
        self.inputs = store;
        self
    }

    /// The control plane applied after every policy evaluation of the govern phase
    /// (kill switches, approval tickets; see [`crate::control`]). Without one the
    /// policy's answer is the decision.
    pub fn control(mut self, control: ControlPlane) -> Self {
        self.control = Some(control);
        self
    }

    /// The normaliser (Φ).
    #[must_use]
    pub fn normalizer(mut self, n: impl Normalizer + Send + Sync + 'static) -> Self {
        self.normalizer = Some(Box::new(n));
        self
    }

    /// The normaliser, already boxed.
    #[must_use]
    pub fn normalizer_boxed(mut self, n: SharedNormalizer) -> Self {
        self.normalizer = Some(n);
        self
    }

    /// The confirmation handler.
    #[must_use]
    pub fn confirmation(mut self, h: impl ConfirmationHandler + Send + Sync + 'static) -> Self {
        self.confirmation = Some(Box::new(h));
        self
    }

    /// The planner (Π).
    #[must_use]
    pub fn planner(mut self, p: impl Planner + 'static) -> Self {
        self.planner = Some(Box::new(p));
        self
    }

    /// The backend registry; the configured backend must be registered.
    #[must_use]
    pub fn backends(mut self, r: BackendRegistry) -> Self {
        self.backends = Some(r);
        self
    }

    /// The audit store (Σ).
    #[must_use]
    pub fn audit(mut self, store: Arc<dyn AuditStore>) -> Self {
        self.audit = Some(store);
        self
    }

    /// The id source.
    #[must_use]
    pub fn ids(mut self, ids: impl IdSource + 'static) -> Self {
        self.ids = Some(Box::new(ids));
        self
    }

    /// The clock for audit timestamps.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Box::new(clock));
        self
    }

    /// The execution phase (Ω). Without one the execute phase is skipped and the
    /// result says so in `phases_skipped`.
    #[must_use]
    pub fn executor(mut self, e: impl ExecutionPhase + 'static) -> Self {
        self.executor = Some(Box::new(e));
        self
    }

    /// The budgets an approved run is charged to before it executes
    /// (docs/architecture.md#budgets): its `domain:`, `target:` and, with `agent`, its
    /// `agent:` scope. A run that does not fit blocks with `BUDGET_EXCEEDED`; the
    /// reservation is reconciled with the sandbox's metrics or released on rollback.
    /// Without an execution phase (the caller runs the approved work) the run is charged
    /// its estimate.
    #[must_use]
    pub fn budgets(
        mut self,
        ledger: std::sync::Arc<dyn cfa_control::budget::BudgetLedger>,
        agent: Option<String>,
    ) -> Self {
        self.budgets = Some(crate::run::Budgets { ledger, agent });
        self
    }

    /// Builds the kernel; fails when the configured backend is not registered.
    pub fn build(self) -> Result<Kernel, BuildError> {
        let mut config = self.config;
        if let Some(max) = config.max_replans {
            config.policy = config.policy.with_max_replan_attempts(max);
        }
        let backends = self.backends.unwrap_or_else(BackendRegistry::with_builtins);
        backends.get(&config.backend)?;
        let raw = config.catalog.raw();
        let catalog_issues = cfa_types::validate::catalog(raw, !config.catalog.is_empty());
        let catalog_hash = config.catalog.hash();
        let quoted_bundle = [
            cfa_audit::QuotedStr::new(config.policy.version()),
            cfa_audit::QuotedStr::new(&config.policy_bundle_hash),
        ];
        Ok(Kernel {
            catalog_hash,
            catalog_issues,
            normalizer: self
                .normalizer
                .unwrap_or_else(|| Box::new(RuleBasedNormalizer::default())),
            confirmation: self.confirmation.unwrap_or_else(|| Box::new(AutoApprove)),
            planner: self
                .planner
                .unwrap_or_else(|| Box::new(ExecutionPlanner::default())),
            backends,
            audit: self.audit.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            ids: self.ids.unwrap_or_else(|| Box::new(UuidIds)),
            clock: self.clock.unwrap_or_else(|| Box::new(SystemClock)),
            executor: self.executor,
            budgets: self.budgets,
            control: self.control,
            inputs: self.inputs,
            quoted_bundle,
            config,
        })
    }
}
