//! Offline verification: [`verify`] checks a bundle in the order
//! docs/auditor-guide.md §5 lists and stops at the first [`Problem`];
//! [`verify_proof`] checks one inclusion proof. Neither trusts a key, an
//! origin or a count the bundle or proof gives about itself beyond what its
//! signatures cover: pin what you obtained independently in [`Pins`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Bundle, Checkpoint, Entry, Proof, PublicKey, cosignature_note, hash_of, is_signature};
use crate::merkle::{self, Hash};

/// What the auditor obtained independently of the bundle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pins {
    /// The hub's audit key (`--key`). Without it the bundle's own key is
    /// taken as given, and a bundle made up with a fresh key verifies.
    pub key: Option<PublicKey>,
    /// The parent hub's audit key (`--parent-key`): every cosignature must
    /// be under it, and at least one must be there. Without it, every
    /// cosignature must be under one and the same key, which the summary
    /// names for the auditor to compare.
    pub parent_key: Option<PublicKey>,
}

/// What a bundle that verifies holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub origin: String,
    /// The hub's audit key, which signed every checkpoint.
    pub key: PublicKey,
    pub entries: u64,
    pub checkpoints: u64,
    /// Entries after the last checkpoint, which no signature covers yet.
    pub unsigned: u64,
    /// The parent's cosignatures, if any.
    pub cosigned: Option<Cosigned>,
}

/// The cosignatures of a bundle that verifies: all under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// Checkpoints cosigned (one cosignature each).
    pub checkpoints: u64,
    /// The largest size cosigned.
    pub last: u64,
    /// The one key every cosignature is under.
    pub key: PublicKey,
    /// Whether that key is the one given as [`Pins::parent_key`].
    pub pinned: bool,
    /// The cosigner's id, as the cosignatures of format version 2 sign it;
    /// `None` when every cosignature is of version 1.
    pub cosigner: Option<String>,
    /// Cosignatures of format version 1, whose cosigner's id is not signed.
    pub unnamed: u64,
}

impl Verified {
    /// The line `gdx-hub audit verify` prints, for `what` (a bundle's path,
    /// or `the audit log of ORIGIN`).
    pub fn summary(&self, what: &str) -> String {
        let mut out = format!(
            "{what}: {} entries and {} checkpoints verify (origin {}, key {})",
            self.entries, self.checkpoints, self.origin, self.key
        );
        match &self.cosigned {
            None => out += "; 0 checkpoints cosigned",
            Some(c) => {
                let pin = if c.pinned {
                    "the parent key you gave"
                } else {
                    "not pinned: compare it with the parent hub's audit key, or give that as --parent-key"
                };
                match &c.cosigner {
                    Some(name) => {
                        out += &format!(
                            "; {} checkpoints cosigned by {name} (key {}, {pin}), the last at size {}",
                            c.checkpoints, c.key, c.last
                        );
                        if c.unnamed > 0 {
                            out += &format!(
                                "; {} of them in cosignature format 1, which does not sign the cosigner's id",
                                c.unnamed
                            );
                        }
                    }
                    None => {
                        out += &format!(
                            "; {} checkpoints cosigned under key {} ({pin}), the last at size {}, in cosignature format 1, which does not sign the cosigner's id",
                            c.checkpoints, c.key, c.last
                        );
                    }
                }
            }
        }
        if self.unsigned > 0 {
            out += &format!("; the last {} entries are not covered by a checkpoint yet", self.unsigned);
        }
        out
    }
}

/// Why a bundle or a proof does not verify: the first problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The bundle's `public_key` is not 64 lowercase hex digits.
    #[error(
        "the bundle's public key is not 64 lowercase hex digits (a 32-byte Ed25519 key); export the bundle again with `gdx-hub audit export`"
    )]
    BundleKey,
    /// The bundle's key is not the one pinned.
    #[error("it is signed with key {key}, not with the key {pinned} you gave: it does not come from that hub")]
    NotPinnedKey { key: String, pinned: PublicKey },
    /// The bytes at this position do not parse as an entry.
    #[error("entry {index} does not decode: {error}")]
    Entry { index: u64, error: String },
    /// An entry is not where its `index` says.
    #[error("entry {index} says it is entry {says}: entries were deleted, inserted or swapped here")]
    Index { index: u64, says: u64 },
    /// An entry's `prev` is not the leaf hash of the entry before.
    #[error(
        "entry {} was changed after it was logged (entry {index} records another hash for it)",
        .index.saturating_sub(1)
    )]
    Chain { index: u64 },
    /// Neither entries nor checkpoints.
    #[error(
        "it holds no entries and no checkpoint, so there is nothing to verify; let the hub run until it logs something and signs a checkpoint, then try again"
    )]
    Empty,
    /// Entries, but no checkpoint.
    #[error(
        "it has {entries} entries but no signed checkpoint, so nothing in it is vouched for; let the hub run a few seconds, then try again"
    )]
    NoCheckpoint { entries: u64 },
    /// A checkpoint names another origin.
    #[error("checkpoint of size {size} names the origin {origin}, but {expected} is expected")]
    CheckpointOrigin { size: u64, origin: String, expected: String },
    /// A checkpoint's root or signature is not lowercase hex of its length.
    #[error(
        "checkpoint of size {size} has a root or signature that is not lowercase hex of the right length (64 and 128 digits); export the bundle again with `gdx-hub audit export`"
    )]
    CheckpointHex { size: u64 },
    /// A checkpoint's signature does not verify.
    #[error("checkpoint of size {size} is not signed by this hub's audit key")]
    Unsigned { size: u64 },
    /// Checkpoints not in strictly increasing size.
    #[error("checkpoint of size {size} does not follow the one before")]
    Order { size: u64 },
    /// A checkpoint covers more entries than there are.
    #[error(
        "checkpoint of size {size} covers entries that are missing: the log holds only {entries} entries, so it was truncated"
    )]
    Truncated { size: u64, entries: u64 },
    /// The entries do not give a checkpoint's root.
    #[error(
        "the entries do not give the root signed at size {size}: an entry between {from} and {} was changed",
        .size.saturating_sub(1)
    )]
    Root { size: u64, from: u64 },
    /// A cosignature in a format this build does not know.
    #[error(
        "the cosignature of checkpoint {size} is in format version {version}, which this gdx-hub does not know; verify with a newer gdx-hub"
    )]
    CosignatureVersion { size: u64, version: u32 },
    /// A cosignature of a size no checkpoint has.
    #[error("the cosignature of size {size} matches no checkpoint in the bundle")]
    CosignatureOrphan { size: u64 },
    /// Two cosignatures of one checkpoint.
    #[error(
        "checkpoint {size} has two cosignatures, but `gdx-hub audit export` writes one per checkpoint: the bundle was edited"
    )]
    CosignatureTwice { size: u64 },
    /// A cosignature's key or signature is not lowercase hex of its length.
    #[error(
        "the cosignature of checkpoint {size} has a key or signature that is not lowercase hex of the right length (64 and 128 digits); export the bundle again with `gdx-hub audit export`"
    )]
    CosignatureHex { size: u64 },
    /// A cosignature under the hub's own key.
    #[error(
        "the cosignature of checkpoint {size} is under this hub's own audit key, but a hub cannot cosign itself: it was forged"
    )]
    CosignedBySelf { size: u64 },
    /// A cosignature under another key than the pinned parent key.
    #[error(
        "the cosignature of checkpoint {size} is under key {key}, not under the parent key {parent} you gave: that parent did not make it"
    )]
    NotParentKey { size: u64, key: PublicKey, parent: PublicKey },
    /// Cosignatures under two keys, none pinned.
    #[error(
        "the cosignatures are under two keys, {first} and {other}, but a parent hub has one audit key; give the parent's key as --parent-key to see which are genuine"
    )]
    CosignerKeys { first: PublicKey, other: PublicKey },
    /// Signed cosigner ids that differ, under one key.
    #[error("the cosignatures under key {key} name two cosigners, {first} and {other}, but a parent hub has one id")]
    CosignerIds { key: PublicKey, first: String, other: String },
    /// A cosignature's signature does not verify.
    #[error(
        "the cosignature by {cosigner} of checkpoint {size} does not verify under its key {key}: the signature, the checkpoint or (from cosignature format 2 on) the cosigner's id was altered"
    )]
    CosignatureBad { size: u64, cosigner: String, key: PublicKey },
    /// `--parent-key` given, but nothing is cosigned.
    #[error(
        "no checkpoint in it is cosigned, so --parent-key checks nothing; the parent hub has not cosigned this hub yet, or the cosignatures were removed"
    )]
    NoCosignature,
    /// A proof's body is of another entry.
    #[error("the proof is of entry {entry}, but its body says it is entry {says}")]
    ProofEntry { entry: u64, says: u64 },
    /// A proof holds a hash that is not lowercase hex.
    #[error("the proof holds a hash that is not 64 lowercase hex digits; print it again with `gdx-hub audit prove`")]
    ProofHex,
    /// The proof does not lead to the checkpoint's root.
    #[error(
        "the proof does not lead from entry {entry} to the root signed at size {size}: the entry, the proof or the checkpoint was altered"
    )]
    ProofPath { entry: u64, size: u64 },
}

/// Verifies a bundle against what was pinned: every entry read strictly,
/// re-hashed and chained (index, previous leaf); every checkpoint's origin,
/// signature and root, sizes strictly increasing; every cosignature of a
/// checkpoint in the bundle, one per checkpoint, all under one key (the
/// pinned parent key if given, never the hub's own), in a known format.
/// A bundle without a checkpoint does not verify.
pub fn verify(bundle: &Bundle, pins: &Pins) -> Result<Verified, Problem> {
    let key = PublicKey::parse(&bundle.public_key).map_err(|_| Problem::BundleKey)?;
    if let Some(pinned) = pins.key.filter(|p| *p != key) {
        return Err(Problem::NotPinnedKey { key: bundle.public_key.clone(), pinned });
    }
    let wanted: BTreeSet<u64> = bundle.checkpoints.iter().map(|c| c.size).collect();
    let mut roots: BTreeMap<u64, Hash> = BTreeMap::new();
    let mut tree = merkle::Frontier::default();
    let mut prev = [0u8; 32];
    for (index, body) in (0u64..).zip(&bundle.entries) {
        let entry: Entry = serde_json::from_str(body).map_err(|e| Problem::Entry { index, error: e.to_string() })?;
        if entry.index != index {
            return Err(Problem::Index { index, says: entry.index });
        }
        if hash_of(&entry.prev) != Some(prev) {
            return Err(Problem::Chain { index });
        }
        prev = merkle::leaf_hash(body.as_bytes());
        tree.push(prev);
        if wanted.contains(&tree.size()) {
            roots.insert(tree.size(), tree.root());
        }
    }
    let entries = tree.size();
    if bundle.checkpoints.is_empty() {
        return Err(if entries == 0 { Problem::Empty } else { Problem::NoCheckpoint { entries } });
    }
    let mut last = 0;
    for cp in &bundle.checkpoints {
        let size = cp.size;
        if cp.origin != bundle.origin {
            return Err(Problem::CheckpointOrigin { size, origin: cp.origin.clone(), expected: bundle.origin.clone() });
        }
        if hash_of(&cp.root).is_none() || !is_signature(&cp.signature) {
            return Err(Problem::CheckpointHex { size });
        }
        if !key.verifies(&Checkpoint::note(&bundle.origin, size, &cp.root, cp.at), &cp.signature) {
            return Err(Problem::Unsigned { size });
        }
        if size <= last {
            return Err(Problem::Order { size });
        }
        match roots.get(&size) {
            None => return Err(Problem::Truncated { size, entries }),
            Some(r) if hash_of(&cp.root) != Some(*r) => return Err(Problem::Root { size, from: last }),
            Some(_) => {}
        }
        last = size;
    }
    let cosigned = cosignatures(bundle, &key, pins)?;
    if pins.parent_key.is_some() && cosigned.is_none() {
        return Err(Problem::NoCosignature);
    }
    Ok(Verified {
        origin: bundle.origin.clone(),
        key,
        entries,
        checkpoints: bundle.checkpoints.len() as u64,
        unsigned: entries - last,
        cosigned,
    })
}

/// The cosignatures of a bundle whose checkpoints verified under `key`.
fn cosignatures(bundle: &Bundle, key: &PublicKey, pins: &Pins) -> Result<Option<Cosigned>, Problem> {
    let by_size: HashMap<u64, &Checkpoint> = bundle.checkpoints.iter().map(|c| (c.size, c)).collect();
    let mut seen = BTreeSet::new();
    let mut out: Option<Cosigned> = None;
    for c in &bundle.cosignatures {
        let size = c.size;
        let Some(cp) = by_size.get(&size) else { return Err(Problem::CosignatureOrphan { size }) };
        let checkpoint = Checkpoint::note(&bundle.origin, size, &cp.root, cp.at);
        let Some(text) = cosignature_note(c.version, &c.cosigner, &checkpoint) else {
            return Err(Problem::CosignatureVersion { size, version: c.version });
        };
        if !seen.insert(size) {
            return Err(Problem::CosignatureTwice { size });
        }
        let cosigner = match PublicKey::parse(&c.public_key) {
            Ok(k) if is_signature(&c.signature) => k,
            _ => return Err(Problem::CosignatureHex { size }),
        };
        if cosigner == *key {
            return Err(Problem::CosignedBySelf { size });
        }
        let expected = pins.parent_key.or(out.as_ref().map(|o| o.key));
        match (expected, pins.parent_key) {
            (Some(parent), Some(_)) if parent != cosigner => {
                return Err(Problem::NotParentKey { size, key: cosigner, parent });
            }
            (Some(first), None) if first != cosigner => {
                return Err(Problem::CosignerKeys { first, other: cosigner });
            }
            _ => {}
        }
        if !cosigner.verifies(&text, &c.signature) {
            return Err(Problem::CosignatureBad { size, cosigner: c.cosigner.clone(), key: cosigner });
        }
        let o = out.get_or_insert(Cosigned {
            checkpoints: 0,
            last: 0,
            key: cosigner,
            pinned: pins.parent_key.is_some(),
            cosigner: None,
            unnamed: 0,
        });
        o.checkpoints += 1;
        o.last = o.last.max(size);
        if c.version == 1 {
            o.unnamed += 1;
            continue;
        }
        match &o.cosigner {
            Some(first) if *first != c.cosigner => {
                return Err(Problem::CosignerIds { key: cosigner, first: first.clone(), other: c.cosigner.clone() });
            }
            Some(_) => {}
            None => o.cosigner = Some(c.cosigner.clone()),
        }
    }
    Ok(out)
}

/// Verifies an inclusion proof as `gdx-hub audit prove` prints it, against
/// the key and origin the auditor pinned (never those printed with it): the
/// body parses as the entry named; the checkpoint is of `origin` and signed
/// by `key` over its text built with `origin`; the path leads from the
/// body's leaf hash to the checkpoint's root. The printed `leaf` and
/// `public_key` are not used.
pub fn verify_proof(proof: &Proof, key: &PublicKey, origin: &str) -> Result<(), Problem> {
    let entry: Entry =
        serde_json::from_str(&proof.body).map_err(|e| Problem::Entry { index: proof.entry, error: e.to_string() })?;
    if entry.index != proof.entry {
        return Err(Problem::ProofEntry { entry: proof.entry, says: entry.index });
    }
    let cp = &proof.checkpoint;
    let size = cp.size;
    if cp.origin != origin {
        return Err(Problem::CheckpointOrigin { size, origin: cp.origin.clone(), expected: origin.to_owned() });
    }
    let root = match hash_of(&cp.root) {
        Some(r) if is_signature(&cp.signature) => r,
        _ => return Err(Problem::CheckpointHex { size }),
    };
    if !key.verifies(&Checkpoint::note(origin, size, &cp.root, cp.at), &cp.signature) {
        return Err(Problem::Unsigned { size });
    }
    let path: Vec<Hash> = proof.proof.iter().map(|h| hash_of(h)).collect::<Option<_>>().ok_or(Problem::ProofHex)?;
    let leaf = merkle::leaf_hash(proof.body.as_bytes());
    if !merkle::verify_inclusion(proof.entry, size, &leaf, &path, &root) {
        return Err(Problem::ProofPath { entry: proof.entry, size });
    }
    Ok(())
}
