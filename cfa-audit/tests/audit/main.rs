//! The integration tests of cfa-audit,
//! as one test binary (one link instead of one per file): each former
//! `tests/<name>.rs` is the module `<name>` here, so a test is named `<name>::<test>`
//! (`cargo nextest run -p cfa-audit -E 'test(/^<name>::/)'`). To add a file: put it in
//! this directory and add `mod <name>;` below (behind `#[cfg(feature = "sqlite")]` when
//! it needs the SQLite store).

#[cfg(feature = "sqlite")]
mod batch;
mod common;
mod conformance_audit;
mod disk_full;
mod fast_slow_agree;
mod group_commit;
mod parallel_agree;
#[cfg(feature = "postgres")]
mod pg_store;
#[cfg(feature = "sqlite")]
mod processes;
mod props;
#[cfg(feature = "sqlite")]
mod read_only;
#[cfg(feature = "sqlite")]
mod retention_sqlite;
#[cfg(feature = "sqlite")]
mod tamper_matrix;
mod trust_whitespace;
