//! Benchmarks of the CFA hot paths: the shared fixtures (reference signatures, an
//! audit-sized event, generated bundles), the measured paths (in-process, audited,
//! whole processes, HTTP under load), the HDR latency-gate runner behind
//! `cargo xtask bench` (docs/architecture.md#performance-gates), the loopback HTTP
//! load generator `cfa-load`, and the side-by-side report against the Python
//! reference. This crate only calls the public APIs of the other crates; it must not
//! hold decision logic.
//!
//! ```
//! use cfa_benches::fixtures;
//! use cfa_policy::PolicyEngine;
//! use cfa_types::PolicyAction;
//!
//! // The three measured decisions are what their names say under the default rules.
//! let engine = PolicyEngine::default();
//! let decide = |sig| engine.evaluate_with_catalog(&sig, None, 0).action;
//! assert_eq!(decide(fixtures::approve_signature()?), PolicyAction::Approve);
//! assert_eq!(decide(fixtures::replan_signature()?), PolicyAction::Replan);
//! assert_eq!(decide(fixtures::block_signature()?), PolicyAction::Block);
//! # Ok::<(), cfa_types::SignatureError>(())
//! ```

pub mod audited;
pub mod fixtures;
pub mod gates;
pub mod load;
pub mod measure;
pub mod report;
pub mod scale;
