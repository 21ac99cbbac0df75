//! Criterion benchmarks of the CFA hot paths (`cargo bench -p cfa-benches`, or
//! `cargo xtask bench --criterion`). The gates themselves live in `cfa-gates`.
#![allow(clippy::expect_used, missing_docs)]

use cfa_benches::fixtures;
use cfa_policy::PolicyEngine;
use cfa_types::{StateSignature, canonical};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn types(c: &mut Criterion) {
    let sig = fixtures::approve_signature().expect("ok signature reads");
    let event = fixtures::audit_event();
    c.bench_function("signature_hash", |b| {
        b.iter(|| black_box(&sig).signature_hash());
    });
    c.bench_function("canonical_string/audit_event", |b| {
        b.iter(|| canonical::canonical_string(black_box(&event)));
    });
    c.bench_function("parse_validated/ok", |b| {
        b.iter(|| StateSignature::parse_validated(black_box(fixtures::OK_SIGNATURE), false));
    });
}

fn policy(c: &mut Criterion) {
    let engine = PolicyEngine::default();
    let cases = [
        (
            "approve",
            fixtures::approve_signature().expect("approve fixture"),
        ),
        (
            "replan",
            fixtures::replan_signature().expect("replan fixture"),
        ),
        ("block", fixtures::block_signature().expect("block fixture")),
    ];
    for (name, sig) in &cases {
        c.bench_function(&format!("evaluate/default/{name}"), |b| {
            b.iter(|| engine.evaluate(black_box(sig), 0));
        });
    }
    c.bench_function("json_to_decision/ok", |b| {
        b.iter(|| {
            let sig = StateSignature::parse_validated(black_box(fixtures::OK_SIGNATURE), false)
                .expect("ok signature validates");
            engine.evaluate(&sig, 0)
        });
    });
    let big = PolicyEngine::from_bundle(cfa_policy::synth::generated_bundle(1000))
        .expect("generated bundle compiles");
    let approve = &cases[0].1;
    c.bench_function("evaluate/bundle_1000/approve", |b| {
        b.iter(|| big.evaluate(black_box(approve), 0));
    });
}

criterion_group!(benches, types, policy);
criterion_main!(benches);
