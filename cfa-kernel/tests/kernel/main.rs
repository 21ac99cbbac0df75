//! The integration tests of cfa-kernel, as one test binary (one link instead of one per
//! file): each former `tests/<name>.rs` is the module `<name>` here, so a test is named
//! `<name>::<test>` (`cargo nextest run -p cfa-kernel -E 'test(/^<name>::/)'`). To add a
//! file: put it in this directory and add `mod <name>;` below. The release memory soak
//! stays its own binary (`tests/memory_flat.rs`), which `cargo xtask ci` builds in release.

mod audit_batch;
mod budgets;
mod common;
mod execution_sandbox;
mod kernel_concurrency;
mod kernel_flow;
mod kernel_gate;
mod light;
mod trust_join;
