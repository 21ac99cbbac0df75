//! Criterion benchmarks of the CFA hot paths; see `cargo xtask bench`.
