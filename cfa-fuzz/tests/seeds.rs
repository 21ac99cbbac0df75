//! The harness itself: unmutated seeds raise no finding (a finding on a seed would be
//! a false alarm, or a real bug in the seed's parser), every target has seeds, and
//! mutation is reproducible from its seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use cfa_fuzz::mutate::{Rng, mutate};
use cfa_fuzz::targets::{Fixtures, TARGETS};

#[test]
fn every_target_has_seeds_and_no_seed_is_a_finding() {
    let corpus = cfa_fuzz::corpus::load().unwrap();
    let fixtures = Fixtures::new(&corpus).unwrap();
    for target in TARGETS {
        let seeds = (target.seeds)(&corpus);
        assert!(!seeds.is_empty(), "target {} has no seeds", target.name);
        for (i, seed) in seeds.iter().enumerate() {
            if let Err(finding) = (target.run)(&fixtures, &seed.bytes) {
                panic!("target {} seed {i} is a finding: {finding}", target.name);
            }
        }
    }
}

#[test]
fn mutation_is_reproducible_from_its_seed() {
    let corpus = cfa_fuzz::corpus::load().unwrap();
    let target = &TARGETS[0];
    let seeds = (target.seeds)(&corpus);
    let run = |s: u64| {
        let mut rng = Rng::new(s);
        (0..64)
            .map(|i| mutate(&mut rng, &seeds[i % seeds.len()], &seeds, &[]))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}
