//! RFC 6962 Merkle tree over event hashes: incremental root, inclusion and consistency proofs.
//!
//! Leaf input: the event hash DECODED FROM HEX (32 raw bytes for a full SHA-256 hash;
//! 8 bytes for a legacy 16-hex hash; the UTF-8 text itself if it is not lowercase hex),
//! so `leaf = SHA-256(0x00 ‖ raw event hash)` and `node = SHA-256(0x01 ‖ left ‖ right)`.

use crate::error::ProofError;
use sha2::{Digest, Sha256};

/// A 32-byte tree hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// The leaf hash of an audit event, from its `event_hash` text.
pub fn event_leaf(event_hash: &str) -> Hash {
    let is_lower_hex = event_hash.len().is_multiple_of(2)
        && event_hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match (is_lower_hex, hex::decode(event_hash)) {
        (true, Ok(raw)) => leaf_hash(&raw),
        _ => leaf_hash(event_hash.as_bytes()),
    }
}

/// The right edge of a growing tree: one perfect-subtree root per set bit of the size.
/// O(log n) state; `push` is amortised O(1) hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range from its size and peaks (largest subtree first).
    pub fn from_parts(size: u64, peaks: Vec<Hash>) -> Result<Self, ProofError> {
        if u64::from(size.count_ones()) != peaks.len() as u64 {
            return Err(ProofError::new(format!(
                "a tree of size {size} has {} peaks, not {}",
                size.count_ones(),
                peaks.len()
            )));
        }
        Ok(Self { size, peaks })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Peaks, largest subtree first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            match self.peaks.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break,
            }
            s >>= 1;
        }
        self.peaks.push(h);
        self.size += 1;
    }

    /// The RFC 6962 root of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        let Some(mut acc) = iter.next().copied() else {
            return empty_root();
        };
        for p in iter {
            acc = node_hash(p, &acc);
        }
        acc
    }
}

/// Largest power of two strictly less than `n` (n ≥ 2).
fn split_point(n: usize) -> usize {
    let mut k = 1usize;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH(D[n]) over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let k = split_point(leaves.len());
            let (l, r) = leaves.split_at(k);
            node_hash(&root(l), &root(r))
        }
    }
}

/// RFC 6962 §2.1.1 audit path for leaf `index` in a tree of `leaves`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let idx = usize::try_from(index).map_err(|_| ProofError::new("index too large"))?;
    if idx >= leaves.len() {
        return Err(ProofError::new(format!(
            "leaf index {index} is outside a tree of size {}",
            leaves.len()
        )));
    }
    let mut out = Vec::new();
    path(idx, leaves, &mut out);
    Ok(out)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    if d.len() <= 1 {
        return;
    }
    let k = split_point(d.len());
    let (l, r) = d.split_at(k);
    if m < k {
        path(m, l, out);
        out.push(root(r));
    } else {
        path(m - k, r, out);
        out.push(root(l));
    }
}

/// RFC 6962 §2.1.2 consistency proof from the first `old_size` leaves to all `leaves`.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let m = usize::try_from(old_size).map_err(|_| ProofError::new("size too large"))?;
    if m > leaves.len() {
        return Err(ProofError::new(format!(
            "old size {old_size} is larger than the tree ({})",
            leaves.len()
        )));
    }
    let mut out = Vec::new();
    if m > 0 && m < leaves.len() {
        subproof(m, leaves, true, &mut out);
    }
    Ok(out)
}

fn subproof(m: usize, d: &[Hash], b: bool, out: &mut Vec<Hash>) {
    if m == d.len() {
        if !b {
            out.push(root(d));
        }
        return;
    }
    let k = split_point(d.len());
    let (l, r) = d.split_at(k);
    if m <= k {
        subproof(m, l, b, out);
        out.push(root(r));
    } else {
        subproof(m - k, r, false, out);
        out.push(root(l));
    }
}

/// RFC 9162 §2.1.3.2: checks that `leaf` is at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    expected_root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::new(format!(
            "leaf index {index} is outside a tree of size {size}"
        )));
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::new("inclusion proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::new("inclusion proof is too short"));
    }
    if &r != expected_root {
        return Err(ProofError::new(format!(
            "inclusion proof for leaf {index} does not lead to the checkpoint root"
        )));
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: checks that the tree of `old_size`/`old_root` is a prefix of
/// the tree of `new_size`/`new_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::new(format!(
            "the log shrank from {old_size} to {new_size} events"
        )));
    }
    if old_size == new_size {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::new(format!(
                "the root at size {old_size} differs from the checkpoint root"
            )))
        };
    }
    if old_size == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::new("a proof from the empty tree must be empty"))
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::new("consistency proof is empty"));
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::new("consistency proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::new("consistency proof is too short"));
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::new(format!(
            "the first {old_size} events no longer match the checkpoint (truncated or rewritten)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn compact_range_matches_recursive_root() {
        let all = leaves(70);
        let mut cr = CompactRange::new();
        assert_eq!(cr.root(), empty_root());
        for (i, l) in all.iter().enumerate() {
            cr.push(*l);
            assert_eq!(cr.root(), root(&all[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn inclusion_and_consistency_round_trip() {
        let all = leaves(37);
        for n in 1..=all.len() {
            let r = root(&all[..n]);
            for i in 0..n {
                let p = inclusion_proof(&all[..n], i as u64).unwrap();
                verify_inclusion(&all[i], i as u64, n as u64, &p, &r).unwrap();
                let wrong = leaf_hash(b"x");
                assert!(verify_inclusion(&wrong, i as u64, n as u64, &p, &r).is_err());
            }
            for m in 0..=n {
                let p = consistency_proof(&all[..n], m as u64).unwrap();
                let old = root(&all[..m]);
                verify_consistency(m as u64, n as u64, &old, &r, &p).unwrap();
                if m > 0 && m < n {
                    let bad = leaf_hash(b"bad");
                    assert!(verify_consistency(m as u64, n as u64, &bad, &r, &p).is_err());
                }
            }
        }
    }

    #[test]
    fn known_rfc6962_empty_and_single() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 6962 test vector: leaf "" → 6e340b9c…
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }
}
