//! CFA for embedders: one crate for the governed flow. A [`Kernel`] turns an intent
//! into a decision — formalize (ground the intent in a [`Catalog`] as a
//! [`StateSignature`]), govern (a [`PolicyEngine`] approves, replans or blocks), generate
//! (plan and code) and an optional execute slot — and writes one hash-chained audit event
//! per step to the [`AuditStore`] you choose. A [`Gate`] runs your own work only when
//! the decision is executable.
//!
//! The root holds the small surface most programs need: the kernel and its builder,
//! the gate, the decision types, the audit and lifecycle stores an embedder may pick,
//! and id/clock injection. The advanced surfaces live in namespaced modules, each with
//! an explicit item list: [`kernel`] (the flow in depth), [`types`] (signatures,
//! catalogs, faults, validation, schemas, canonical hashing), [`policy`] (rules and
//! bundles), [`resolve`] (intent normalisation), [`plan`], [`codegen`], [`execute`]
//! (sandboxes and the execution slot), [`lifecycle`] (state projection, skills,
//! leases), [`audit`] (stores, verification, checkpoints), `report` (self-contained HTML
//! reports from the audit log and lifecycle database; feature `sqlite`) and [`testing`].
//!
//! This crate owns no behaviour: every item is a re-export of the crate that owns it
//! (cfa-kernel, cfa-types, cfa-policy, cfa-resolve, cfa-plan, cfa-codegen, cfa-sandbox,
//! cfa-lifecycle, cfa-audit, cfa-report), so a decision made through the facade is byte-for-byte the
//! decision of those crates. It must not know about the CLI, servers or file formats of
//! its own, and it must not grow logic: new surface is a new re-export.
//!
//! # Example
//!
//! Build a kernel on the default rules and a small catalog, decide two intents, and
//! verify the audit chain they wrote:
//!
//! ```
//! use cfa::{
//!     AuditStore, Catalog, DecisionState, Kernel, KernelConfig, MemoryStore, PolicyEngine,
//!     SequentialIds, TickClock, VerifyOptions,
//! };
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = Catalog::from_value(&serde_json::json!({
//!     "datasets": {
//!         "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [],
//!                 "partition_column": "processing_date", "merge_keys": ["nfe_id"],
//!                 "columns": ["nfe_id", "cliente_id", "valor", "processing_date"]},
//!         "clientes": {"classification": "sensitive", "size_gb": 0.5,
//!                      "pii_columns": ["cpf", "email"],
//!                      "partition_column": "processing_date", "merge_keys": ["cliente_id"],
//!                      "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]}
//!     }
//! }))?;
//! let audit = Arc::new(MemoryStore::new());
//! let kernel = Kernel::builder(KernelConfig::new(PolicyEngine::default(), catalog))
//!     .audit(audit.clone())
//!     .ids(SequentialIds::new())
//!     .clock(TickClock::new(1_767_225_600))
//!     .build()?;
//!
//! let ok = kernel.process("Join nfe with clientes daily, anonymize pii, into silver");
//! assert!(ok.is_executable());
//! assert_eq!(ok.state, DecisionState::Approved);
//!
//! let raw_pii = kernel.process("Join NFe with Clientes and persist to Silver");
//! assert!(!raw_pii.is_executable());
//! assert_eq!(raw_pii.state, DecisionState::Blocked);
//! assert!(raw_pii.fault_codes().contains(&"GOVERNANCE_PII_WITHOUT_POLICY"));
//!
//! let report = audit.verify(&VerifyOptions::default())?;
//! assert!(report.intact());
//! assert_eq!(report.events, audit.len()?);
//! assert_eq!(report.tail_hash, *raw_pii.audit_event_hashes.last().unwrap_or(&String::new()));
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! The facade builds the crates it re-exports with their default features (SQLite stores
//! and the PostgreSQL sandbox included).

pub mod audit;
pub mod codegen;
pub mod execute;
pub mod kernel;
pub mod lifecycle;
pub mod plan;
pub mod policy;
#[cfg(feature = "sqlite")]
pub mod report;
pub mod resolve;
pub mod testing;
pub mod types;

// --- the governed flow -----------------------------------------------------------------
pub use cfa_kernel::{BuildError, GateError, Grounding, KernelBuilder, KernelResult, Phases};

/// The orchestrator: built once from a [`KernelConfig`] (rules and catalog) and injected
/// parts, then [`Kernel::process`] decides any number of intents, from any number of
/// threads. It never panics and never errors at decision time: any failure blocks.
///
/// ```
/// use cfa::{Catalog, Kernel, KernelConfig, PolicyEngine, PolicyAction};
///
/// let catalog = Catalog::from_value(&serde_json::json!({"datasets": {
///     "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [],
///             "partition_column": "processing_date", "merge_keys": ["nfe_id"]}
/// }}))?;
/// let kernel = Kernel::builder(KernelConfig::new(PolicyEngine::default(), catalog)).build()?;
/// let r = kernel.process("ingest nfe raw into bronze");
/// assert!(r.is_executable());
/// // approved after the bundle's own fixes were applied (a bounded replan)
/// assert_eq!(r.policy_result.map(|p| p.action), Some(PolicyAction::Approve));
/// assert!(r.replan_count >= 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use cfa_kernel::Kernel;

/// What a kernel is built from: the compiled rules ([`PolicyEngine`]), the [`Catalog`]
/// intents are grounded in, the backend, the grounding mode and the phase switches.
///
/// ```
/// use cfa::{Catalog, Grounding, KernelConfig, PolicyEngine};
///
/// let mut config = KernelConfig::new(PolicyEngine::builtin("prod-v1")?, Catalog::empty());
/// config.grounding = Grounding::Lenient;
/// config.phases.execute = false;
/// assert_eq!(config.backend, "pyspark");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use cfa_kernel::KernelConfig;

/// Runs a piece of work only after the kernel approves the intent behind it; otherwise
/// the work is not called and a [`GateError`] says why.
///
/// ```
/// use cfa::{Catalog, DecisionState, Gate, Kernel, KernelConfig, PolicyEngine};
///
/// let catalog = Catalog::from_value(&serde_json::json!({"datasets": {
///     "clientes": {"classification": "sensitive", "pii_columns": ["cpf"],
///                  "merge_keys": ["cliente_id"]}
/// }}))?;
/// let gate = Gate::new(Kernel::builder(KernelConfig::new(PolicyEngine::default(), catalog)).build()?);
///
/// let mut ran = false;
/// let err = gate
///     .run("Load clientes raw into silver", || ran = true)
///     .expect_err("raw PII into silver is blocked");
/// assert!(!ran);
/// assert_eq!(err.state, DecisionState::Blocked);
/// assert!(err.faults.iter().any(|f| f.code == "GOVERNANCE_PII_WITHOUT_POLICY"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use cfa_kernel::Gate;
pub use cfa_policy::PolicyEngine;

/// The audited policy check of a ready signature: the one route a stand-alone decision
/// (`cfa policy check`, the HTTP and MCP decide calls) and its `policy_check` audit
/// event take.
pub use cfa_kernel::{CheckError, Decision, PolicyCheck};

// --- the decision types ----------------------------------------------------------------
pub use cfa_types::{
    Catalog, CatalogEntry, DecisionState, Fault, FaultFamily, FaultSeverity, Fix, PolicyAction,
    PolicyResult, StateSignature,
};

// --- the stores an embedder may choose -------------------------------------------------
/// The SQLite audit store (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub use cfa_audit::SqliteStore;
pub use cfa_audit::{
    AuditError, AuditEvent, AuditStore, Durability, MemoryStore, VerifyOptions, VerifyReport,
};
pub use cfa_kernel::storage::{StorageError, StorageRegistry};

/// The audit log as a JSONL file: one hash-chained event per line, appends locked across
/// processes, a torn tail repaired on open. Hand it to [`KernelBuilder::audit`].
///
/// ```
/// use cfa::{AuditStore, Catalog, Durability, JsonlStore, Kernel, KernelConfig, VerifyOptions};
/// use std::sync::Arc;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.jsonl");
/// let store = Arc::new(JsonlStore::open(&path, Durability::Always)?);
/// let kernel = Kernel::builder(KernelConfig::default()).audit(store.clone()).build()?;
/// let r = kernel.process("anything");
/// assert_eq!(store.len()?, r.audit_event_hashes.len() as u64);
/// let report = cfa::audit::verify_file(&path, &VerifyOptions::default(), &mut |_| {})?;
/// assert!(report.intact());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use cfa_audit::JsonlStore;
/// The SQLite lifecycle database (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub use cfa_lifecycle::LifecycleDb;
pub use cfa_lifecycle::{MemoryStateStore, StateStore};

// --- ids and clocks --------------------------------------------------------------------
pub use cfa_audit::{Clock, FixedClock, SystemClock};
pub use cfa_kernel::{IdKind, IdSource, SequentialIds, TickClock, UuidIds};
