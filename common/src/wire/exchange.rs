//! The messages of controlled exchange (requests, decisions, deliveries,
//! lookups, the batches hubs pass each other) and of 监管 (notices,
//! checks, feedback), in their own file of the wire protocol.

use serde::{Deserialize, Serialize};

use super::RequestRecord;
use crate::discipline::Check;
use crate::node::NodeId;
use crate::notice::Notice;

/// What a consumer asks for; its hub files it against the catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestForm {
    /// 信息资源代码.
    pub code: String,
    /// 信息项, by name or source column.
    pub fields: Vec<String>,
    pub purpose: String,
    /// Last day wanted, days since 1970-01-01.
    pub until: Option<i64>,
}

/// A provider's decision on request `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub id: String,
    pub verdict: Verdict,
}

/// Approve (possibly narrower, shorter, with sensitive fields in clear), deny, or revoke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Approve { fields: Option<Vec<String>>, until: Option<i64>, clear: Vec<String> },
    Deny { reason: String },
    Revoke { reason: String },
}

/// The consumer asks for grant `id`'s deliveries numbered above `after`,
/// which also tells its hub that it applied everything up to `after`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    pub id: String,
    pub after: u64,
}

/// One key of a granted resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupQuery {
    /// 信息资源代码.
    pub code: String,
    /// The key's values, in key order, as text.
    pub key: Vec<String>,
}

/// A bounding-box query: the records of `code` whose geometry's box meets
/// `bbox` (`west,south,east,north` in CGCS2000 degrees), at most `limit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithinQuery {
    /// 信息资源代码.
    pub code: String,
    pub bbox: String,
    pub limit: u32,
}

/// The answer to a bounding-box query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithinAnswer {
    /// The grant it was answered under.
    pub id: String,
    /// JSON objects of the granted (and masked) columns, by key.
    pub rows: Vec<String>,
    /// More records meet the box than the limit let through.
    pub more: bool,
    pub served_by: NodeId,
    pub as_of: u64,
}

/// The answer to a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupAnswer {
    /// The grant it was answered under.
    pub id: String,
    /// JSON object of the granted (and masked) columns, or none for an unknown key.
    pub row: Option<String>,
    /// The hub that answered and the delivery its copy is at.
    pub served_by: NodeId,
    pub as_of: u64,
}

/// Granted columns of one changeset, filtered and masked by the provider's
/// hub, numbered per grant from 1 without gaps, and signed by that hub.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDelivery {
    /// The request id of the grant.
    pub grant: String,
    pub n: u64,
    /// True when the consumer must first empty its copy (first delivery,
    /// or the provider sent its resource again in full).
    pub replace: bool,
    pub rows: u32,
    /// `zstd(bincode(Changeset))` of the granted columns.
    pub body: Vec<u8>,
    /// ECDSA P-256 signature by the producing hub over [`SignedDelivery::signed_bytes`].
    pub signature: Vec<u8>,
    /// The producing hub's certificate, then its intermediates, DER.
    pub signer_chain: Vec<Vec<u8>>,
}

impl SignedDelivery {
    /// What the signature covers: grant id, number, replace flag and body.
    pub fn signed_bytes(grant: &str, n: u64, replace: bool, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + grant.len() + 16);
        out.extend_from_slice(&(grant.len() as u32).to_be_bytes());
        out.extend_from_slice(grant.as_bytes());
        out.extend_from_slice(&n.to_be_bytes());
        out.push(u8::from(replace));
        out.extend_from_slice(body);
        out
    }
}

/// How far a consumer has applied a grant's deliveries, as its hub knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub grant: String,
    pub n: u64,
    pub rows: u64,
    pub at: i64,
}

/// Exchange state moving between a child hub and its parent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeBatch {
    pub records: Vec<RequestRecord>,
    pub deliveries: Vec<SignedDelivery>,
    pub progress: Vec<Progress>,
    /// 双告知 notices: new ones towards their department, claims back up.
    pub notices: Vec<Notice>,
    /// 联合惩戒 checks and their feedback, up to the province only.
    pub checks: Vec<Check>,
    /// The sender's change counter this batch reaches.
    pub upto: u64,
}

impl ExchangeBatch {
    /// True when it carries no item (only, perhaps, a new `upto`).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.deliveries.is_empty()
            && self.progress.is_empty()
            && self.notices.is_empty()
            && self.checks.is_empty()
    }
}

/// Claim a notice (`pass` None), or pass it on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeAct {
    pub id: String,
    pub pass: Option<PassOn>,
}

/// Passing a notice on to another department.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassOn {
    pub to: NodeId,
    pub reason: String,
}

/// A 联合惩戒 check: a credit code or ID number, and the kind of matter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckQuery {
    pub subject: String,
    pub matter: String,
}

/// What the department did after check `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackForm {
    pub id: String,
    pub action: crate::discipline::Action,
    pub reason: String,
}
