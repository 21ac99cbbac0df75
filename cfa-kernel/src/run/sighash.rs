//! The two hashes of a run's signature, remembered for the thread's last few
//! signatures.
//!
//! `signature_hash` and `content_hash` are pure functions of the signature that do not
//! read its `intent_id` (docs/compatibility.md#signature_hash; `content_payload` leaves
//! it out), and every run has a new intent id, so both are remembered under every field
//! of the signature but `intent_id`, compared in full ([`StateSignature::eq_but_intent_id`]'s
//! destructuring is exhaustive: a new field has to be placed on one side or the other).
//! Bound: [`RECENT`] signatures per thread, replaced round robin, and only signatures
//! of at most 16 datasets, 16 scalar custom constraints and a raw intent of at most
//! 4 KiB ([`small`]); the others are hashed every time.

use cfa_types::StateSignature;
use serde_json::Value;
use std::cell::RefCell;

/// Signatures remembered per thread.
const RECENT: usize = 4;

/// One remembered signature and its `(signature_hash, content_hash)`.
type Hashed = (StateSignature, String, String);

thread_local! {
    /// At most [`RECENT`] signatures and the slot the next one replaces; on the heap, so
    /// the thread local stays a few words (the Python extension's thread locals share
    /// the small static TLS block of a `dlopen`ed library).
    static HASHES: RefCell<(Vec<Hashed>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

/// Whether `sig` is small enough to remember.
fn small(sig: &StateSignature) -> bool {
    sig.datasets.len() <= 16
        && sig.source_intent_raw.len() <= 4096
        && sig.constraints.custom.len() <= 16
        && sig
            .constraints
            .custom
            .values()
            .all(|v| !matches!(v, Value::Array(_) | Value::Object(_)))
}

/// `(sig.signature_hash(), sig.content_hash())`.
pub(crate) fn signature_hashes(sig: &StateSignature) -> (String, String) {
    let compute = || (sig.signature_hash(), sig.content_hash());
    if !small(sig) {
        return compute();
    }
    HASHES
        .try_with(|cell| {
            let Ok(mut recent) = cell.try_borrow_mut() else {
                return compute();
            };
            let (entries, next) = &mut *recent;
            if let Some((_, s, c)) = entries
                .iter()
                .find(|(known, _, _)| known.eq_but_intent_id(sig))
            {
                return (s.clone(), c.clone());
            }
            let (s, c) = compute();
            let remembered = (sig.clone(), s.clone(), c.clone());
            if entries.len() < RECENT {
                entries.push(remembered);
            } else {
                if let Some(slot) = entries.get_mut(*next) {
                    *slot = remembered;
                }
                *next = (*next + 1) % RECENT;
            }
            (s, c)
        })
        .unwrap_or_else(|_| compute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signature(intent_id: &str) -> StateSignature {
        let mut v = cfa_test_support::ok_signature();
        v["intent_id"] = json!(intent_id);
        StateSignature::from_value(&v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn direct(sig: &StateSignature) -> (String, String) {
        (sig.signature_hash(), sig.content_hash())
    }

    #[test]
    fn remembered_hashes_are_the_signatures_own() {
        let a = signature("i-1");
        assert_eq!(signature_hashes(&a), direct(&a));
        let b = signature("i-2");
        assert_eq!(signature_hashes(&b), direct(&b));
        assert_eq!(signature_hashes(&b), direct(&a));
        // Any other field is another signature, more of them than the memo keeps.
        for n in 0..RECENT * 2 {
            let mut other = signature("i-3");
            other.domain = format!("d{n}");
            assert_eq!(signature_hashes(&other), direct(&other));
            let mut other = signature("i-3");
            other.constraints.no_pii_raw = !other.constraints.no_pii_raw;
            other.constraints.partition_by.push(format!("p{n}"));
            assert_eq!(signature_hashes(&other), direct(&other));
            assert_ne!(signature_hashes(&other), direct(&a));
        }
        let mut big = signature("i-4");
        big.constraints
            .custom
            .insert("list".into(), json!([1, 2, 3]));
        assert!(!small(&big));
        assert_eq!(signature_hashes(&big), direct(&big));
        let mut raw = signature("i-5");
        raw.source_intent_raw = "another text".into();
        assert!(!a.eq_but_intent_id(&raw));
        assert!(a.eq_but_intent_id(&b));
    }
}
