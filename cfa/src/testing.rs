//! Helpers for an embedder's own tests: decide an intent on a fresh in-memory kernel,
//! assert on the decision and on the real audit chain, and run approved work on the mock
//! sandbox. Re-exported from cfa-kernel's `testing` module.
//!
//! ```
//! use cfa::testing;
//! use cfa::{Catalog, KernelConfig, PolicyEngine};
//!
//! let catalog = Catalog::from_value(&serde_json::json!({"datasets": {
//!     "clientes": {"classification": "sensitive", "pii_columns": ["cpf"],
//!                  "columns": ["cliente_id", "cpf"]}
//! }}))
//! .map_err(|e| e.to_string())?;
//! let config = KernelConfig::new(PolicyEngine::default(), catalog);
//! let ev = testing::evaluate("Load clientes raw into silver", config)?;
//! testing::assert_blocked_with(&ev.result, "GOVERNANCE_PII_WITHOUT_POLICY")?;
//! testing::assert_audit_intact(ev.audit.as_ref(), &ev.result)?;
//! # Ok::<(), String>(())
//! ```

pub use cfa_kernel::testing::{
    Evaluation, assert_approved, assert_audit_intact, assert_blocked_with, evaluate,
    mock_execution, resident_kb,
};
