//! Dev-only test support: the one fixture set every crate's tests load instead of pasting
//! copies — the reference signature (`examples/signatures/ok.json`), its intent id, and
//! the paths of `examples/` and of the conformance corpus — and [`pg`], the throwaway
//! PostgreSQL cluster the PostgreSQL tests start.
//!
//! Owns: locating and reading shared fixture files, starting and driving a throwaway
//! PostgreSQL cluster (`initdb`, `pg_ctl`, `psql`). Must NOT know: any CFA crate (it
//! depends on `serde_json` only, so every crate can dev-depend on it without a cycle),
//! nor what a test asserts. Used as a `[dev-dependencies]` entry (and by the benches'
//! `cfa-scale` runner, which starts a cluster).
//!
//! ```
//! let sig = cfa_test_support::ok_signature();
//! assert_eq!(sig["intent_id"], cfa_test_support::REFERENCE_INTENT_ID);
//! ```
// Test helpers fail the calling test with a message when a fixture is missing or broken.
#![allow(clippy::expect_used, clippy::panic)]

pub mod pg;

use serde_json::Value;
use std::path::PathBuf;

/// The reference signature's `intent_id` (the one in `examples/signatures/ok.json`).
pub const REFERENCE_INTENT_ID: &str = "11111111-2222-3333-4444-555555555555";

/// The text of `examples/signatures/ok.json`, embedded at build time.
const OK_JSON: &str = include_str!("../../examples/signatures/ok.json");

/// The reference signature, `examples/signatures/ok.json` (the reference's `sigs/ok.json`),
/// as a JSON value with its keys in file order. Panics if the file's `intent_id` is not
/// [`REFERENCE_INTENT_ID`].
pub fn ok_signature() -> Value {
    let v: Value = serde_json::from_str(OK_JSON).expect("examples/signatures/ok.json is JSON");
    assert_eq!(
        v.get("intent_id").and_then(Value::as_str),
        Some(REFERENCE_INTENT_ID),
        "examples/signatures/ok.json changed its intent_id"
    );
    v
}

/// [`ok_signature`] without the given top-level keys (the order of the rest is kept).
pub fn ok_signature_without(keys: &[&str]) -> Value {
    let mut v = ok_signature();
    if let Some(map) = v.as_object_mut() {
        for k in keys {
            map.shift_remove(*k);
        }
    }
    v
}

/// The workspace root (the directory holding `examples/` and `scripts/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `examples/<rel>` in the workspace.
pub fn example(rel: &str) -> PathBuf {
    workspace_root().join("examples").join(rel)
}

/// `examples/<rel>` as a string argument for a command line.
pub fn example_arg(rel: &str) -> String {
    example(rel).display().to_string()
}

/// The conformance corpus: `CFA_CONFORMANCE_DIR`, else `../shared/conformance` beside the
/// workspace.
pub fn conformance_dir() -> PathBuf {
    std::env::var_os("CFA_CONFORMANCE_DIR").map_or_else(
        || workspace_root().join("../shared/conformance"),
        PathBuf::from,
    )
}

/// `<conformance corpus>/<rel>`.
pub fn conformance(rel: &str) -> PathBuf {
    conformance_dir().join(rel)
}

/// The name the test harness gives test `test` of the module `module_path` (pass
/// `module_path!()`): the module path without the test binary's crate name, then `test`.
/// A test that re-runs its own binary (`current_exe() --exact <name>`) needs it, because
/// a test in a merged test binary (`tests/<crate>/main.rs` with one `mod` per file) is
/// named `<module>::<test>`.
pub fn test_path(module_path: &str, test: &str) -> String {
    match module_path.split_once("::") {
        Some((_, module)) => format!("{module}::{test}"),
        None => test.to_owned(),
    }
}
