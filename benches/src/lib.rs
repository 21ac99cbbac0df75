//! Benchmarks of the CFA hot paths: the shared fixtures (reference signatures, an
//! audit-sized event, generated bundles), the measured paths themselves, and the HDR
//! latency-gate runner behind `cargo xtask bench` (docs/architecture.md#performance-gates). This crate only
//! calls the public APIs of the other crates; it must not hold decision logic.

pub mod fixtures;
pub mod gates;
pub mod measure;
