//! The integration tests of cfa-lifecycle,
//! as one test binary (one link instead of one per file): each former
//! `tests/<name>.rs` is the module `<name>` here, so a test is named `<name>::<test>`
//! (`cargo nextest run -p cfa-lifecycle -E 'test(/^<name>::/)'`). To add a file: put it in
//! this directory and add `mod <name>;` below. Every module needs the SQLite lifecycle
//! database (feature `sqlite`, on by default).

#[cfg(feature = "sqlite")]
mod lifecycle;
#[cfg(feature = "postgres")]
mod pg_leases;
#[cfg(feature = "sqlite")]
mod read_only;
#[cfg(feature = "sqlite")]
mod service;
#[cfg(feature = "sqlite")]
mod state;
