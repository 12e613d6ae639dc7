//! The audit log's records and their offline verification: what an entry,
//! a checkpoint, a cosignature and a bundle are, and [`verify`], which an
//! auditor can run without the hub (entries re-hashed and chained into the
//! RFC 6962 tree of [`crate::merkle`], checkpoints' Ed25519 signatures,
//! roots and consistency, cosignatures). The hub's `audit` module keeps
//! the log itself.

use ring::signature::{ED25519, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::merkle::{self, Hash};
use crate::token::hex;

/// The kinds of entries, for `gdx-hub audit list --kind`.
pub const KINDS: &[&str] = &[
    "enrolled",
    "revoked",
    "changeset",
    "catalogued",
    "request",
    "decision",
    "delivered",
    "lookup",
    "refused",
    "cosigned",
    "equivocation",
    "unreadable",
];

/// Something that moved or governed data, as the action's store records it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// One of [`KINDS`].
    pub kind: String,
    /// Unix seconds.
    pub at: i64,
    /// The node that acted or is concerned.
    pub node: Option<String>,
    /// Resource or 信息资源代码 concerned.
    pub resource: Option<String>,
    /// Request (grant) id concerned.
    pub request: Option<String>,
    /// Everything else, by kind.
    pub detail: serde_json::Value,
}

/// One entry of the log: its index, the leaf hash before it, and the event
/// (its fields inline). Serialized in this field order; the bytes are what
/// is hashed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub index: u64,
    /// Hex leaf hash of entry `index - 1` (64 zeros for the first).
    pub prev: String,
    #[serde(flatten)]
    pub event: Event,
}

/// A signed checkpoint: the log had `size` entries with this `root`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    /// Hex.
    pub root: String,
    pub at: i64,
    /// Hex Ed25519 signature over [`Checkpoint::note`].
    pub signature: String,
}

impl Checkpoint {
    /// The signed text: `gdx-audit-checkpoint/1`, origin, size, hex root and
    /// time, one per line, each line ending with a newline.
    pub fn note(origin: &str, size: u64, root: &str, at: i64) -> String {
        format!("gdx-audit-checkpoint/1\n{origin}\n{size}\n{root}\n{at}\n")
    }
}

/// Everything needed to verify a hub's log offline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    pub origin: String,
    /// Hex Ed25519 public key of the hub's audit key.
    pub public_key: String,
    /// The entries' exact bytes, as UTF-8 JSON text, in order.
    pub entries: Vec<String>,
    pub checkpoints: Vec<Checkpoint>,
    /// The parent hub's cosignatures of these checkpoints (none at the province).
    #[serde(default)]
    pub cosignatures: Vec<BundleCosignature>,
}

/// A parent's cosignature of one checkpoint, in a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleCosignature {
    pub size: u64,
    pub cosigner: String,
    /// Hex Ed25519 public key of the cosigner's audit key.
    pub public_key: String,
    /// Hex Ed25519 signature over the checkpoint's note.
    pub signature: String,
}

/// An inclusion proof as `gdx-hub audit prove` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proof {
    pub entry: u64,
    pub body: String,
    pub leaf: String,
    pub proof: Vec<String>,
    pub checkpoint: Checkpoint,
    pub public_key: String,
}

/// Bytes of lowercase hex, as [`hex`] writes them; nothing else is accepted.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

pub fn hash_of(s: &str) -> Option<Hash> {
    unhex(s).and_then(|v| v.try_into().ok())
}

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
