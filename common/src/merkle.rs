//! The RFC 6962 Merkle tree of the audit log: leaf and node hashing with
//! the 0x00 / 0x01 prefixes over SHA-256 (ring), tree roots, inclusion and
//! consistency proofs, and their verification (RFC 9162 §2.1.3.2, §2.1.4.2).
//!
//! Trees are given as the slice of their leaf hashes; the functions are
//! pure and never panic on bad input (a proof that does not fit is false).

use ring::digest::{Context, SHA256};

/// A SHA-256 value.
pub type Hash = [u8; 32];

fn finish(ctx: Context) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0]);
    ctx.update(data);
    finish(ctx)
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[1]);
    ctx.update(left);
    ctx.update(right);
    finish(ctx)
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// A tree that only grows, kept as its right frontier: the roots of its
/// perfect subtrees (height, hash), largest first. Appending and the root
/// cost O(log n), whatever the size.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    nodes: Vec<(u32, Hash)>,
    size: u64,
    last: Hash,
}

impl Frontier {
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some((h, left)) = self.nodes.last().copied() {
            if h != node.0 {
                break;
            }
            self.nodes.pop();
            node = (h + 1, node_hash(&left, &node.1));
        }
        self.nodes.push(node);
        self.size += 1;
        self.last = leaf;
    }

    /// MTH of the leaves pushed so far (see [`root`]).
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some((_, last)) = it.next() else { return root(&[]) };
        it.fold(*last, |acc, (_, h)| node_hash(h, &acc))
    }

    /// Leaves pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The last leaf pushed (zeros for an empty tree).
    pub fn last(&self) -> Hash {
        self.last
    }
}

/// MTH: the root of the tree whose leaf hashes are `leaves`; SHA-256 of
/// nothing for the empty tree.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => finish(Context::new(&SHA256)),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the inclusion proof of leaf `index`; `None` when out of range.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(leaves, index, &mut proof);
    Some(proof)
}

fn path(leaves: &[Hash], m: usize, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(&leaves[..k], m, out);
        out.push(root(&leaves[k..]));
    } else {
        path(&leaves[k..], m - k, out);
        out.push(root(&leaves[..k]));
    }
}

/// PROOF(m, D[n]): the consistency proof from the tree of the first `m`
/// leaves to the tree of all of them; `None` unless 0 < m ≤ n.
pub fn consistency_proof(leaves: &[Hash], m: usize) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(leaves, m, true, &mut proof);
    Some(proof)
}

fn subproof(leaves: &[Hash], m: usize, whole: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(&leaves[..k], m, whole, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(&leaves[k..], m - k, false, out);
        out.push(root(&leaves[..k]));
    }
}

/// True when `proof` shows that `leaf` is leaf `index` of the tree of
/// `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && &r == root
}

/// True when `proof` shows that the tree of `size1` leaves with root
/// `root1` is a prefix of the tree of `size2` leaves with root `root2`.
pub fn verify_consistency(size1: u64, size2: u64, proof: &[Hash], root1: &Hash, root2: &Hash) -> bool {
    if size1 > size2 {
        return false;
    }
    if size1 == size2 {
        return proof.is_empty() && root1 == root2;
    }
    if size1 == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if size1.is_power_of_two() {
        path.insert(0, *root1);
    }
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut f_n, mut s_n) = (size1 - 1, size2 - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    &f_r == root1 && &s_r == root2 && s_n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_merkle::mem_backed_tree::MemoryBackedTree;

    fn data(i: usize) -> Vec<u8> {
        format!("entry {i}").into_bytes()
    }

    /// Every tree size up to 300: roots, every inclusion proof and every
    /// consistency proof equal those of the ct-merkle crate (an independent
    /// RFC 6962 implementation), and verify.
    #[test]
    fn roots_and_proofs_match_an_independent_rfc6962_implementation() {
        let mut reference = MemoryBackedTree::<sha2::Sha256, Vec<u8>>::new();
        let mut leaves: Vec<Hash> = Vec::new();
        assert_eq!(root(&leaves).as_slice(), reference.root().as_bytes().as_slice());
        let mut roots = vec![root(&leaves)];
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), root(&leaves));
        for n in 1..=300usize {
            reference.push(data(n - 1));
            leaves.push(leaf_hash(&data(n - 1)));
            frontier.push(leaf_hash(&data(n - 1)));
            let r = root(&leaves);
            assert_eq!(r.as_slice(), reference.root().as_bytes().as_slice(), "root of {n}");
            assert_eq!(frontier.root(), r, "frontier root of {n}");
            roots.push(r);
            // inclusion: all indices for small trees, a spread for large ones
            let step = if n <= 64 { 1 } else { 7 };
            for i in (0..n).step_by(step).chain([n - 1]) {
                let proof = inclusion_proof(&leaves, i).unwrap();
                let flat: Vec<u8> = proof.iter().flatten().copied().collect();
                assert_eq!(flat, reference.prove_inclusion(i).as_bytes(), "inclusion {i} of {n}");
                assert!(verify_inclusion(i as u64, n as u64, &leaves[i], &proof, &r));
                assert!(!verify_inclusion(i as u64, n as u64, &leaf_hash(b"other"), &proof, &r));
            }
            for m in (1..n).step_by(step).chain([n - 1]).filter(|m| *m >= 1) {
                let proof = consistency_proof(&leaves, m).unwrap();
                let flat: Vec<u8> = proof.iter().flatten().copied().collect();
                assert_eq!(flat, reference.prove_consistency(n - m).as_bytes(), "consistency {m} → {n}");
                assert!(verify_consistency(m as u64, n as u64, &proof, &roots[m], &r), "{m} → {n}");
                assert!(!verify_consistency(m as u64, n as u64, &proof, &roots[m], &roots[m]), "{m} → {n}");
            }
        }
    }

    #[test]
    fn bad_proofs_are_false_not_panics() {
        let leaves: Vec<Hash> = (0..5).map(|i| leaf_hash(&data(i))).collect();
        let r = root(&leaves);
        assert!(inclusion_proof(&leaves, 5).is_none() && consistency_proof(&leaves, 0).is_none());
        let proof = inclusion_proof(&leaves, 2).unwrap();
        assert!(!verify_inclusion(2, 5, &leaves[2], &proof[..1], &r));
        assert!(!verify_inclusion(7, 5, &leaves[2], &proof, &r));
        let mut longer = proof.clone();
        longer.push(r);
        assert!(!verify_inclusion(2, 5, &leaves[2], &longer, &r));
        assert!(!verify_consistency(4, 3, &[], &r, &r));
        assert!(!verify_consistency(3, 5, &[], &root(&leaves[..3]), &r));
    }
}
