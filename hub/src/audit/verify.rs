//! Offline verification of a bundle: entries re-hashed and chained,
//! checkpoints' signatures, roots and consistency, cosignatures.

use super::*;

/// What verification found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub checkpoints: u64,
    /// Checkpoints cosigned by the parent hub, with the cosigner's key as given.
    pub cosigned: u64,
    /// The first problem, naming the entry or checkpoint, if any.
    pub problem: Option<String>,
}

/// Verifies a bundle: every entry re-hashed and chained (index, previous
/// leaf), every checkpoint's signature and root, and each checkpoint
/// consistent with the one before (both are roots of the same entries).
pub fn verify(bundle: &Bundle) -> Verified {
    let mut out = Verified { entries: 0, checkpoints: 0, cosigned: 0, problem: None };
    let key = match unhex(&bundle.public_key) {
        Some(k) if k.len() == 32 => UnparsedPublicKey::new(&ED25519, k),
        _ => {
            out.problem = Some("the bundle's public key is not a 32-byte hex Ed25519 key".into());
            return out;
        }
    };
    let mut tree = merkle::Frontier::default();
    let mut roots: std::collections::BTreeMap<u64, Hash> = std::collections::BTreeMap::new();
    let wanted: std::collections::BTreeSet<u64> = bundle.checkpoints.iter().map(|c| c.size).collect();
    let mut prev = [0u8; 32];
    for (i, body) in bundle.entries.iter().enumerate() {
        let entry: Entry = match serde_json::from_str(body) {
            Ok(e) => e,
            Err(e) => {
                out.problem = Some(format!("entry {i} does not decode: {e}"));
                return out;
            }
        };
        if entry.index != i as u64 {
            out.problem = Some(format!(
                "entry {i} says it is entry {}: entries were deleted, inserted or swapped here",
                entry.index
            ));
            return out;
        }
        if entry.prev != hex(&prev) {
            out.problem = Some(format!(
                "entry {} was changed after it was logged (entry {i} records another hash for it)",
                i.saturating_sub(1)
            ));
            return out;
        }
        let leaf = merkle::leaf_hash(body.as_bytes());
        tree.push(leaf);
        prev = leaf;
        out.entries += 1;
        if wanted.contains(&out.entries) {
            roots.insert(out.entries, tree.root());
        }
    }
    let mut last: Option<&Checkpoint> = None;
    for cp in &bundle.checkpoints {
        let note = Checkpoint::note(&bundle.origin, cp.size, &cp.root, cp.at);
        let signed = unhex(&cp.signature).is_some_and(|s| key.verify(note.as_bytes(), &s).is_ok());
        if !signed || cp.origin != bundle.origin {
            out.problem = Some(format!("checkpoint of size {} is not signed by this hub's audit key", cp.size));
            return out;
        }
        if last.is_some_and(|l| l.size >= cp.size) {
            out.problem = Some(format!("checkpoint of size {} does not follow the one before", cp.size));
            return out;
        }
        match roots.get(&cp.size) {
            None => {
                out.problem = Some(format!(
                    "checkpoint of size {} covers entries that are missing: the log was truncated after entry {}",
                    cp.size,
                    out.entries.saturating_sub(1)
                ));
                return out;
            }
            Some(r) if hash_of(&cp.root) != Some(*r) => {
                let from = last.map_or(0, |l| l.size);
                out.problem = Some(format!(
                    "the entries do not give the root signed at size {}: an entry between {from} and {} was changed",
                    cp.size,
                    cp.size - 1
                ));
                return out;
            }
            Some(_) => {}
        }
        out.checkpoints += 1;
        last = Some(cp);
    }
    let by_size: std::collections::HashMap<u64, &Checkpoint> = bundle.checkpoints.iter().map(|c| (c.size, c)).collect();
    for c in &bundle.cosignatures {
        let Some(cp) = by_size.get(&c.size) else {
            out.problem = Some(format!("the cosignature of size {} matches no checkpoint in the bundle", c.size));
            return out;
        };
        let note = Checkpoint::note(&bundle.origin, cp.size, &cp.root, cp.at);
        let ok = unhex(&c.public_key)
            .zip(unhex(&c.signature))
            .is_some_and(|(k, s)| UnparsedPublicKey::new(&ED25519, k).verify(note.as_bytes(), &s).is_ok());
        if !ok {
            out.problem = Some(format!("the cosignature by {} of checkpoint {} does not verify", c.cosigner, c.size));
            return out;
        }
        out.cosigned += 1;
    }
    out
}
