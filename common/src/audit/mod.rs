//! The audit log's records and their offline verification: what an entry,
//! a checkpoint, a cosignature and a bundle are, the exact texts that get
//! signed, and [`verify`], which an auditor can run without the hub (entries
//! read strictly and re-hashed, chained into the RFC 6962 tree of
//! [`crate::merkle`], checkpoints' Ed25519 signatures and roots, the parent
//! hub's cosignatures against one key, pinned or not). [`verify_proof`]
//! checks one inclusion proof as `gdx-hub audit prove` prints it. The hub's
//! `audit` module keeps the log itself.
//!
//! Hex is lowercase only, everywhere: in bundles, in proofs and for the keys
//! an auditor pins ([`PublicKey::parse`]), so that one value has one
//! spelling and keys compare as text.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::merkle::Hash;

mod entry;
mod verify;

pub use verify::{Cosigned, Pins, Problem, Verified, verify, verify_proof};

/// The kinds of entries. An entry of any other kind does not parse
/// ([`Entry`]), so a hub logs an outbox event of another kind as
/// `unreadable` ([`Event::from_outbox`]).
pub const KINDS: &[&str] = &[
    "enrolled",
    "renewed",
    "rollover",
    "revoked",
    "changeset",
    "catalogued",
    "request",
    "decision",
    "delivered",
    "lookup",
    "merged",
    "notice",
    "check",
    "refused",
    "login",
    "portal",
    "cosigned",
    "equivocation",
    "unreadable",
];

/// The fields of an entry, in the order they are written and must be read.
pub const ENTRY_FIELDS: [&str; 8] = ["index", "prev", "kind", "at", "node", "resource", "request", "detail"];

/// The format of the cosignatures this build makes: version 2 signs the
/// cosigner's name with the checkpoint ([`cosignature_note`]).
pub const COSIGNATURE_VERSION: u32 = 2;

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
    /// Everything else, by kind: a JSON object.
    pub detail: serde_json::Value,
}

impl Event {
    /// The event an outbox row's text stands for. Text that does not parse
    /// as an event, names a kind not in [`KINDS`] or has a `detail` that is
    /// not an object becomes an `unreadable` event holding the text and why,
    /// so that every entry the log holds parses as an [`Entry`].
    pub fn from_outbox(text: &str) -> Event {
        let unreadable = |error: String| Event {
            kind: "unreadable".into(),
            detail: serde_json::json!({ "error": error, "text": text }),
            ..Event::default()
        };
        match serde_json::from_str::<Event>(text) {
            Err(e) => unreadable(e.to_string()),
            Ok(e) if !KINDS.contains(&e.kind.as_str()) => unreadable(format!("{:?} is not an entry kind", e.kind)),
            Ok(e) if !e.detail.is_object() => unreadable("the detail is not a JSON object".into()),
            Ok(e) => e,
        }
    }
}

/// One entry of the log: its index, the leaf hash before it, and the event
/// (its fields inline). Serialized in the order of [`ENTRY_FIELDS`]; the
/// bytes are what is hashed.
///
/// Reading is strict (see `entry.rs`): exactly the fields of
/// [`ENTRY_FIELDS`], each once and in that order; `prev` 64 lowercase hex
/// digits; `kind` one of [`KINDS`]; `detail` an object in which no key
/// appears twice (at any depth). Whitespace between JSON tokens is allowed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry {
    pub index: u64,
    /// Hex leaf hash of entry `index - 1` (64 zeros for the first).
    pub prev: String,
    #[serde(flatten)]
    pub event: Event,
}

/// A signed checkpoint: the log had `size` entries with this `root`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    /// Lowercase hex.
    pub root: String,
    pub at: i64,
    /// Lowercase hex Ed25519 signature over [`Checkpoint::note`].
    pub signature: String,
}

impl Checkpoint {
    /// The signed text: `gdx-audit-checkpoint/1`, origin, size, hex root and
    /// time, one per line, each line ending with a newline.
    pub fn note(origin: &str, size: u64, root: &str, at: i64) -> String {
        format!("gdx-audit-checkpoint/1\n{origin}\n{size}\n{root}\n{at}\n")
    }
}

/// The text a parent hub signs when it cosigns a checkpoint whose text is
/// `checkpoint_note`, in cosignature format `version`; `None` for a
/// version this build does not know.
///
/// - Version 1 (before `version` existed): the checkpoint's text itself.
///   The cosigner's name is not signed.
/// - Version 2: `gdx-audit-cosignature/2`, the cosigner's id, each on a
///   line ending with a newline, then the checkpoint's text.
pub fn cosignature_note(version: u32, cosigner: &str, checkpoint_note: &str) -> Option<String> {
    match version {
        1 => Some(checkpoint_note.to_owned()),
        2 => Some(format!("gdx-audit-cosignature/2\n{cosigner}\n{checkpoint_note}")),
        _ => None,
    }
}

/// Everything needed to verify a hub's log offline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub origin: String,
    /// Lowercase hex Ed25519 public key of the hub's audit key.
    pub public_key: String,
    /// The entries' exact bytes, as UTF-8 JSON text, in order.
    pub entries: Vec<String>,
    pub checkpoints: Vec<Checkpoint>,
    /// The parent hub's cosignatures of these checkpoints (none at the
    /// province; absent from bundles older than cosigning).
    #[serde(default)]
    pub cosignatures: Vec<BundleCosignature>,
}

/// A parent's cosignature of one checkpoint, in a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BundleCosignature {
    /// The format of the signed text ([`cosignature_note`]); 1 when absent,
    /// as in bundles written before the cosigner's name was signed.
    #[serde(default = "version_1")]
    pub version: u32,
    pub size: u64,
    /// The cosigning hub's id; signed from version 2 on.
    pub cosigner: String,
    /// Lowercase hex Ed25519 public key of the cosigner's audit key.
    pub public_key: String,
    /// Lowercase hex Ed25519 signature over the [`cosignature_note`].
    pub signature: String,
}

fn version_1() -> u32 {
    1
}

/// An inclusion proof as `gdx-hub audit prove` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    pub entry: u64,
    pub body: String,
    pub leaf: String,
    pub proof: Vec<String>,
    pub checkpoint: Checkpoint,
    pub public_key: String,
}

/// An Ed25519 audit public key (32 bytes), as an auditor pins it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

/// Why a text is not an audit public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The right length, but with uppercase hex digits.
    #[error(
        "{0} has uppercase hex digits, but audit keys are written in lowercase only so that one key has one spelling; give it in lowercase"
    )]
    Uppercase(String),
    /// Not 64 hex digits.
    #[error("{0} is not an audit public key; give its 64 lowercase hex digits, as `gdx-hub audit verify` prints them")]
    NotHex(String),
}

impl PublicKey {
    /// A key given as 64 lowercase hex digits; uppercase is refused.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if let Some(k) = hash_of(s) {
            return Ok(Self(k));
        }
        if hash_of(&s.to_ascii_lowercase()).is_some() {
            return Err(KeyError::Uppercase(s.to_owned()));
        }
        Err(KeyError::NotHex(s.to_owned()))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `signature` (lowercase hex) is this key's Ed25519 signature of `message`.
    pub fn verifies(&self, message: &str, signature: &str) -> bool {
        unhex(signature)
            .is_some_and(|s| UnparsedPublicKey::new(&ED25519, self.0).verify(message.as_bytes(), &s).is_ok())
    }

    /// The key as SubjectPublicKeyInfo PEM (RFC 8410), the form
    /// `openssl pkey -pubin` reads.
    pub fn to_pem(&self) -> String {
        // SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING { 0 unused bits, key } }
        let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        der.extend_from_slice(&self.0);
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(der))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::token::hex(&self.0))
    }
}

/// Bytes of lowercase hex, as [`crate::token::hex`] writes them; nothing
/// else is accepted.
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

/// A 32-byte value written as 64 lowercase hex digits.
pub fn hash_of(s: &str) -> Option<Hash> {
    unhex(s).and_then(|v| v.try_into().ok())
}

/// Whether `s` is an Ed25519 signature written as 128 lowercase hex digits.
fn is_signature(s: &str) -> bool {
    s.len() == 128 && unhex(s).is_some()
}

#[cfg(test)]
mod tests;
