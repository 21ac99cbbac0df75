//! A write that fails part-way (disk full, file-size limit) leaves no torn line: the
//! store cuts the file back, every acknowledged event is there, and the chain verifies.
//! The child runs under `ulimit -f` with SIGXFSZ ignored, so writes past the limit
//! fail with EFBIG after writing what fits — the same shape as ENOSPC.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_audit::{AuditStore, Durability, JsonlStore, NewEvent, VerifyOptions, verify_file};
use std::path::Path;

const CHILD_ENV: &str = "CFA_AUDIT_DISKFULL_CHILD";
const TEST: &str = "a_partial_write_is_cut_back";

fn child(log: &Path) {
    let store = JsonlStore::open(log, Durability::Never).unwrap();
    let mut acknowledged = 0u64;
    for i in 0..10_000u64 {
        let batch: Vec<NewEvent> = (0..3)
            .map(|j| {
                NewEvent::new(
                    format!("intent-{i}"),
                    "govern",
                    "policy_evaluation",
                    "approve",
                    "2026-01-01T00:00:00+00:00",
                )
                .detail("padding", "x".repeat(90 + (j * 37) as usize))
            })
            .collect();
        let mut written = Vec::new();
        match store.append_batch(batch, &mut written) {
            Ok(()) => acknowledged += written.len() as u64,
            Err(e) => {
                println!("ACKED {acknowledged}");
                println!("ERROR {e}");
                // The store stays usable for reads and refuses nothing it can't write.
                return;
            }
        }
    }
    panic!("the file size limit was never reached");
}

#[test]
fn a_partial_write_is_cut_back() {
    if let Some(log) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&log));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let (stdout, acked) =
        crate::common::run_under_file_limit(module_path!(), TEST, CHILD_ENV, &log, 64);
    assert!(acked > 0, "{stdout}");
    assert!(stdout.contains("ERROR"), "{stdout}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'), "the log ends in a torn line");
    let report = verify_file(&log, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.first_bad.is_none(), "{:?}", report.first_bad);
    assert_eq!(
        report.events, acked,
        "acknowledged events must all be there, and nothing else"
    );
    // And the log keeps accepting appends once there is room again.
    let store = JsonlStore::open(&log, Durability::Always).unwrap();
    store
        .append(NewEvent::new(
            "after",
            "govern",
            "policy_evaluation",
            "approve",
            "2026-01-01T00:00:01+00:00",
        ))
        .unwrap();
    let report = verify_file(&log, &VerifyOptions::default(), &mut |_| {}).unwrap();
    assert!(report.first_bad.is_none());
    assert_eq!(report.events, acked + 1);
}
