//! The integration tests of cfa-policy,
//! as one test binary (one link instead of one per file): each former
//! `tests/<name>.rs` is the module `<name>` here, so a test is named `<name>::<test>`
//! (`cargo nextest run -p cfa-policy -E 'test(/^<name>::/)'`). To add a file: put it in
//! this directory and add `mod <name>;` below.

mod bundles;
mod conditions;
mod conformance_policy;
mod decision_path;
mod properties;
