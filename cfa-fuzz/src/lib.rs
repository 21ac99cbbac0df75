//! A fuzzer that runs on the stable toolchain: structure-aware mutation of the
//! conformance inputs (JSON/YAML/JSONL/text aware edits, edge-case values, splices,
//! byte havoc) fed to every parser and protocol entry point of the workspace, each
//! input under `catch_unwind`. There is no coverage feedback (that needs compiler
//! instrumentation that stable Rust does not offer here); the mutators are seeded
//! and deterministic, so any batch can be replayed exactly.
//!
//! In-process targets live in [`targets`]; the `cfa mcp`, `cfa serve` and CLI file
//! targets, which drive the real binary, live in [`process`].
//!
//! ```
//! use cfa_fuzz::mutate::{Kind, Rng, Seed, mutate};
//!
//! let seed = Seed::new(Kind::Json, r#"{"intent_id": "i", "domain": "fiscal"}"#);
//! // The same seed and RNG state give the same mutant: any batch replays exactly.
//! let a = mutate(&mut Rng::new(7), &seed, &[], &[]);
//! let b = mutate(&mut Rng::new(7), &seed, &[], &[]);
//! assert_eq!(a, b);
//! assert_eq!(cfa_fuzz::fnv(b"cfa"), cfa_fuzz::fnv(b"cfa"));
//! ```

pub mod corpus;
pub mod mutate;
pub mod process;
pub mod targets;

/// FNV-1a over bytes (target names into seeds, inputs into file names).
pub fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
