//! The harness's own checks: every in-process target takes its unmutated seeds
//! without a finding (no false alarms from the invariants), and mutation is
//! deterministic per batch seed.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use cfa_fuzz::corpus;
use cfa_fuzz::mutate::{Rng, mutate};
use cfa_fuzz::targets::{Fixtures, TARGETS};

#[test]
fn every_target_takes_its_seeds_without_a_finding() {
    let corpus = corpus::load().unwrap();
    let fx = Fixtures::new(&corpus).unwrap();
    for t in TARGETS {
        let seeds = (t.seeds)(&corpus);
        assert!(!seeds.is_empty(), "{} has no seeds", t.name);
        for (i, s) in seeds.iter().enumerate().take(40) {
            if let Err(e) = (t.run)(&fx, &s.bytes) {
                panic!("{} seed {i}: {e}", t.name);
            }
        }
    }
}

#[test]
fn the_signed_seeds_verify_with_the_fixture_key() {
    let corpus = corpus::load().unwrap();
    let fx = Fixtures::new(&corpus).unwrap();
    assert!(!corpus.proofs.is_empty());
    for p in &corpus.proofs {
        let proof = cfa_audit::OfflineProof::parse(std::str::from_utf8(&p.bytes).unwrap()).unwrap();
        proof.verify(&fx.vkey, true).unwrap();
    }
}

#[test]
fn mutants_of_every_target_are_reproducible() {
    let corpus = corpus::load().unwrap();
    for t in TARGETS {
        let seeds = (t.seeds)(&corpus);
        let run = || {
            let mut rng = Rng::new(99);
            (0..50)
                .map(|_| {
                    let s = rng.pick(&seeds).unwrap().clone();
                    mutate(&mut rng, &s, &seeds, &[])
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run(), "{}", t.name);
    }
}
