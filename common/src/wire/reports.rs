//! The messages hubs and agents report with (cosigned checkpoints, the
//! nodes below a child hub, quality reports) and those of the catalogue
//! (pulls, signed entries and their answers), in their own file of the wire
//! protocol.

use serde::{Deserialize, Serialize};

use crate::data::ResourceCode;
use crate::node::{NodeId, Role};

/// A child hub's audit checkpoint, with the proof that it extends the last
/// one its parent cosigned (`from_size`, 0 for the first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosignRequest {
    /// The child's Ed25519 audit public key (32 bytes).
    pub public_key: Vec<u8>,
    pub size: u64,
    pub root: Vec<u8>,
    pub at: i64,
    /// The child's Ed25519 signature over the checkpoint note.
    pub signature: Vec<u8>,
    pub from_size: u64,
    /// RFC 6962 consistency proof from `from_size` to `size`.
    pub proof: Vec<Vec<u8>>,
}

/// A parent's Ed25519 signature over a child's checkpoint note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cosignature {
    pub size: u64,
    pub cosigner: NodeId,
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

/// One node of a child hub's subtree, as the child sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedNode {
    pub node: NodeId,
    pub role: Role,
    /// The newest certificate's serial and expiry.
    pub serial: Option<String>,
    pub not_after: Option<i64>,
    pub revoked_at: Option<i64>,
    /// `connected`, `offline`, `revoked` or `expired`, at the child.
    pub state: String,
    pub last_seen: Option<i64>,
}

/// Most samples a quality report carries.
pub const QUALITY_SAMPLES: usize = 20;
/// Longest place or reason in a quality report, in characters.
pub const QUALITY_TEXT: usize = 1000;

/// What the last scan of a resource set aside (bad values, bad lines), for
/// the provider's hub: how many, and the first [`QUALITY_SAMPLES`] places
/// and reasons (never the rows themselves).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityReport {
    pub resource: ResourceCode,
    /// When the scan ran (Unix seconds).
    pub at: i64,
    pub quarantined: u64,
    pub scanned: u64,
    /// (place, reason), at most [`QUALITY_SAMPLES`].
    pub samples: Vec<(String, String)>,
}

impl QualityReport {
    /// Refuses a report beyond the bounds, before it is stored.
    pub fn check(&self) -> Result<(), String> {
        if self.samples.len() > QUALITY_SAMPLES {
            return Err(format!("a quality report carries at most {QUALITY_SAMPLES} samples"));
        }
        if self.samples.iter().any(|(p, r)| p.chars().count() > QUALITY_TEXT || r.chars().count() > QUALITY_TEXT) {
            return Err(format!("a quality report's places and reasons are at most {QUALITY_TEXT} characters"));
        }
        if (self.samples.len() as u64) > self.quarantined {
            return Err("a quality report carries more samples than rows set aside".into());
        }
        Ok(())
    }
}

/// The hub's answer to a [`QualityReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityNoted {
    pub resource: ResourceCode,
    pub at: i64,
}

/// A child hub's periodic report to its parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    pub nodes: Vec<ReportedNode>,
    /// Changesets accepted but not yet acknowledged by the parent.
    pub backlog: u64,
}

/// The parent's answer to a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAck {
    /// Nodes of the child's subtree that an operator above revoked, with
    /// when: certificates issued before that moment are revoked, so a node
    /// enrolled again afterwards is not.
    pub revoke: Vec<(NodeId, i64)>,
}

/// A child hub's catalogue pull, carrying when the data of its own
/// subtree's entries last changed (the parent holds only some of that data).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogPull {
    pub since: u64,
    /// (信息资源代码, Unix time of the last change of its data).
    pub changed: Vec<(String, i64)>,
}

/// The end of a catalogue pull.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogPulled {
    /// Ask from here next time.
    pub upto: u64,
    /// When the data of the entries sent last changed, where known.
    pub changed: Vec<(String, i64)>,
}

/// A catalogue publication in transit, signed by its provider like a
/// changeset; the same bytes travel up and down the hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEntry {
    pub origin: NodeId,
    /// 信息资源代码.
    pub code: String,
    pub version: u64,
    /// JSON of [`crate::catalog::Publication`].
    pub body: Vec<u8>,
    /// ECDSA P-256 SHA-256 (ASN.1) signature over `body` by the origin's key.
    pub signature: Vec<u8>,
    /// The origin's certificate, then its intermediates, DER.
    pub signer_chain: Vec<Vec<u8>>,
}

/// Answer to one catalogue publication that broke no rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogued {
    pub code: String,
    pub version: u64,
    /// The version the receiver now holds.
    pub held: u64,
    /// True when the receiver holds exactly the bytes sent (new or a
    /// duplicate). False when it already held this version with other
    /// contents, or a newer one: the provider lost track of its versions
    /// and must publish again above `held`.
    pub recorded: bool,
}

/// A catalogue publication that will never be recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRefused {
    pub code: String,
    pub version: u64,
    /// One message per field at fault, or the rule broken.
    pub reason: String,
}
