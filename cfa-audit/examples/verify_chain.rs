//! Verifies one JSONL chain file as `cfa audit verify --file CHAIN` does
//! ([`cfa_audit::verify_file`], default options, every core), for callgrind A/B runs
//! of the verifier without building the CLI (docs/development.md):
//! `cargo build --release -p cfa-audit --example verify_chain`, then
//! `valgrind --tool=callgrind target/release/examples/verify_chain CHAIN`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() {
    let path = std::env::args().nth(1).expect("usage: verify_chain CHAIN");
    let opts = cfa_audit::VerifyOptions::default();
    let report = cfa_audit::verify_file(std::path::Path::new(&path), &opts, &mut |_| {})
        .expect("the chain cannot be read");
    println!(
        "events {} intact {} first_bad {:?} tail {}",
        report.events,
        report.intact(),
        report.first_bad,
        report.tail_hash
    );
}
