//! The integration tests of cfa-types,
//! as one test binary (one link instead of one per file): each former
//! `tests/<name>.rs` is the module `<name>` here, so a test is named `<name>::<test>`
//! (`cargo nextest run -p cfa-types -E 'test(/^<name>::/)'`). To add a file: put it in
//! this directory and add `mod <name>;` below.

mod common;
mod conformance_hash;
mod properties;
mod schema;
mod trust_fast_path;
mod validation_conformance;
mod validation_messages;
