//! The integration tests of cfa-audit,
//! as one test binary (one link instead of one per file): each former
//! `tests/<name>.rs` is the module `<name>` here, so a test is named `<name>::<test>`
//! (`cargo nextest run -p cfa-audit -E 'test(/^<name>::/)'`). To add a file: put it in
//! this directory and add `mod <name>;` below.

mod batch;
mod common;
mod conformance_audit;
mod disk_full;
mod processes;
mod props;
mod read_only;
mod retention_sqlite;
mod tamper_matrix;
mod trust_whitespace;
