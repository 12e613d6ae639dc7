//! The wire protocol: the messages nodes exchange and their frame codec.
//!
//! Only the types in this module are ever serialized for the network.
//! A frame is `[u32 length][u16 protocol version][bincode 2 payload]`, both
//! integers big-endian, the length counting the version and the payload. The
//! version travels in every frame, so a peer that speaks another version is
//! named precisely instead of failing with a decode error. The decoder never
//! panics: oversized, truncated and malformed frames are errors.
//!
//! Versions: this build speaks [`OLDEST_PROTOCOL_VERSION`] to
//! [`PROTOCOL_VERSION`]. A connection's version is the newest both sides
//! offer in ALPN (`gdx/3`, `gdx/2`, `gdx/1`), and a message new in a version is sent
//! only on connections of that version or later. A message kind never
//! changes its layout (a change is a new kind), and each frame carries the
//! version that introduced its kind ([`Message::since`]), so what an older
//! peer can read is byte for byte what it sent itself; stored frames (an
//! agent's outbox, the catalogue) stay valid across upgrades.

use serde::{Deserialize, Serialize};

use crate::data::ResourceCode;
use crate::discipline::Check;
use crate::node::{NodeId, Role};
use crate::notice::Notice;

mod exchange;
mod reports;

pub use exchange::*;
pub use reports::*;

/// The newest protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 3;
/// The oldest protocol version this build still speaks (version 1 stays
/// while nodes of its release remain in the field).
pub const OLDEST_PROTOCOL_VERSION: u16 = 1;
/// The version that brought `Observations` (考核), certificate renewal
/// (`Renew`, `RenewCa`) and root rollover (`AskRoots`); connections of
/// version 1 carry none of them.
pub const OBSERVATIONS_AND_RENEWAL: u16 = 2;
/// The version that brought `Watch` and `Ring`: a hub tells a waiting
/// agent or child hub at once that something arrived for it, instead of
/// being polled.
pub const PUSH: u16 = 3;
/// ALPN of the main protocol, one per version this build speaks, newest
/// first; requires a client certificate.
pub const ALPNS: [&[u8]; 3] = [b"gdx/3", b"gdx/2", b"gdx/1"];
/// ALPN of the newest version of the main protocol.
pub const ALPN: &[u8] = ALPNS[0];
/// ALPN of the enrolment service, for nodes that have no certificate yet.
pub const ALPN_ENROLL: &[u8] = b"gdx-enroll/1";
/// Largest frame body (version + payload) accepted, in bytes.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;
/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;
const VERSION_LEN: usize = 2;

/// Everything that travels between nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message of a connection, from the dialling node.
    Hello(Hello),
    /// The hub's answer to an accepted [`Hello`].
    Welcome(Welcome),
    /// A request was refused; the connection usually closes after this.
    Refused(Refusal),
    /// Enrolment: a CSR with the token's proof of possession.
    EnrollRequest(EnrollRequest),
    /// Enrolment succeeded: the certificate chain.
    Enrolled(Enrolled),
    /// A changeset for the receiver to apply (node → hub, on an upload stream).
    Upload(SignedChangeset),
    /// The changeset is committed (or was already); the sender may forget it.
    Ack(Ack),
    /// The receiver expects another sequence number; resend from `expected`.
    Gap(Gap),
    /// The changeset can never be applied (bad signature, inconsistent).
    Rejected(Rejected),
    /// A catalogue entry version for the receiver to record (on an upload stream).
    Publish(SignedEntry),
    /// The entry version is recorded (or a newer one already was).
    Catalogued(Catalogued),
    /// The entry version can never be recorded, with the reason.
    CatalogRefused(CatalogRefused),
    /// A child hub asks its parent for the catalogue recorded since `since`
    /// (answered by `Publish` frames, then `CatalogPulled`).
    CatalogPull(CatalogPull),
    /// The end of a pull: where to continue next time.
    CatalogPulled(CatalogPulled),
    /// A child hub reports its subtree: nodes, their state, revocations, backlog.
    NodeReport(NodeReport),
    /// The parent's answer: nodes of the child's subtree revoked above it.
    ReportAck(ReportAck),
    /// Agent → its hub: file a request for another department's data.
    FileRequest(RequestForm),
    /// Agent → its hub: the requests this node filed or must decide.
    ListRequests,
    /// The requests asked for, newest first.
    Requests(Vec<RequestRecord>),
    /// Provider agent → its hub: approve, deny or revoke a request.
    Decide(Decision),
    /// Answer to `FileRequest` and `Decide`: the record as it now stands.
    RequestAnswer(Box<RequestRecord>),
    /// Consumer agent → its hub: the deliveries of a grant after a number.
    Fetch(Fetch),
    /// The deliveries asked for, in order (none when nothing new arrived).
    Deliveries(Vec<SignedDelivery>),
    /// Consumer agent → its hub: one record under a grant.
    Lookup(LookupQuery),
    /// The record looked up, or none.
    LookupAnswer(LookupAnswer),
    /// Child hub → parent: requests, decisions, deliveries and progress
    /// recorded at the child since the last push.
    ExchangePush(ExchangeBatch),
    /// The parent stored everything in the push up to `upto`.
    ExchangePushed(u64),
    /// Child hub → parent: what concerns the child's subtree since `since`.
    ExchangePull(u64),
    /// The answer to a pull; ask from `upto` next time.
    ExchangePulled(ExchangeBatch),
    /// Child hub → parent: cosign this checkpoint of the child's audit log.
    Cosign(CosignRequest),
    /// The parent's cosignature.
    Cosigned(Cosignature),
    /// The parent needs the consistency proof from this size (the last it cosigned).
    CosignFrom(u64),
    /// Agent → its hub: the rows the last scan of a resource set aside.
    Quality(QualityReport),
    /// The hub recorded the report of this resource made at this time.
    QualityNoted(QualityNoted),
    /// Consumer agent → its hub: the records of a spatial resource whose
    /// bounding box meets a box, under a grant.
    Within(WithinQuery),
    /// The records found.
    WithinAnswer(WithinAnswer),
    /// Agent → its hub: the 双告知 notices sent to this department.
    ListNotices,
    /// The notices asked for, newest first.
    Notices(Vec<Notice>),
    /// Agent → its hub: claim a notice, or pass it on.
    ActOnNotice(NoticeAct),
    /// The notice as it now stands.
    NoticeAnswer(Box<Notice>),
    /// Agent → its hub: is this subject restricted for this kind of matter?
    Check(CheckQuery),
    /// The check as the hub recorded it (also the answer to `Feedback`).
    CheckAnswer(Box<Check>),
    /// Agent → its hub: what the department did after a check.
    Feedback(FeedbackForm),
    /// Child hub → parent: what it observed of its departments, per day, for 考核.
    Observations(Vec<crate::evaluation::DayFacts>),
    /// The parent took this many of the days (the rest it refused, and logged why).
    ObservationsTaken(u64),
    /// Node → its hub: certify this new key (a CSR) for the node of this
    /// connection; see `crate::renewal`.
    Renew(RenewRequest),
    /// The new certificate chain (the node's certificate first).
    Renewed(Renewed),
    /// Node → its hub: the roots this node trusts (DER, at most
    /// `gdx_certs::trust::MAX_ROOTS`); answered `Roots`.
    AskRoots(Vec<Vec<u8>>),
    /// The roots the hub trusts (DER), the one it issues under first; the
    /// node takes those a root it trusts vouches for (a root rollover).
    Roots(Vec<Vec<u8>>),
    /// Child hub → parent: certify a new key as the intermediate CA of the
    /// connection's division, replacing `current`; answered `Renewed`
    /// (the new CA certificate alone).
    RenewCa(RenewCaRequest),
    /// Agent or child hub → its hub: answer with `Ring` once a delivery was
    /// stored for this node (a child hub: for its subtree), at the latest
    /// after about 20 s; the number is the last `Ring` seen (0 at
    /// first), and a hub whose count differs answers at once.
    Watch(u64),
    /// Something may have arrived: the hub's count of arrivals for this node.
    Ring(u64),
}

/// The protocol versions this build speaks, for messages: `1 to 3`.
pub fn versions_spoken() -> String {
    format!("{OLDEST_PROTOCOL_VERSION} to {PROTOCOL_VERSION}")
}

/// The protocol version an ALPN of the main protocol names, if this build
/// speaks it.
pub fn alpn_version(alpn: &[u8]) -> Option<u16> {
    let version = std::str::from_utf8(alpn.strip_prefix(b"gdx/")?).ok()?.parse::<u16>().ok()?;
    (OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version).then_some(version)
}

impl Message {
    /// The protocol version that introduced this kind of message: a frame
    /// carries it, and a connection of an older version never sees it.
    pub fn since(&self) -> u16 {
        match self {
            Message::Observations(_)
            | Message::ObservationsTaken(_)
            | Message::Renew(_)
            | Message::Renewed(_)
            | Message::AskRoots(_)
            | Message::Roots(_)
            | Message::RenewCa(_) => OBSERVATIONS_AND_RENEWAL,
            Message::Watch(_) | Message::Ring(_) => PUSH,
            _ => 1,
        }
    }

    /// The message's kind, for an error that names what came instead of
    /// what was expected (never the whole message: it may be large or hold
    /// data).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "Hello",
            Message::Welcome(_) => "Welcome",
            Message::Refused(_) => "Refused",
            Message::EnrollRequest(_) => "EnrollRequest",
            Message::Enrolled(_) => "Enrolled",
            Message::Upload(_) => "Upload",
            Message::Ack(_) => "Ack",
            Message::Gap(_) => "Gap",
            Message::Rejected(_) => "Rejected",
            Message::Publish(_) => "Publish",
            Message::Catalogued(_) => "Catalogued",
            Message::CatalogRefused(_) => "CatalogRefused",
            Message::CatalogPull(_) => "CatalogPull",
            Message::CatalogPulled(_) => "CatalogPulled",
            Message::NodeReport(_) => "NodeReport",
            Message::ReportAck(_) => "ReportAck",
            Message::FileRequest(_) => "FileRequest",
            Message::ListRequests => "ListRequests",
            Message::Requests(_) => "Requests",
            Message::Decide(_) => "Decide",
            Message::RequestAnswer(_) => "RequestAnswer",
            Message::Fetch(_) => "Fetch",
            Message::Deliveries(_) => "Deliveries",
            Message::Lookup(_) => "Lookup",
            Message::LookupAnswer(_) => "LookupAnswer",
            Message::ExchangePush(_) => "ExchangePush",
            Message::ExchangePushed(_) => "ExchangePushed",
            Message::ExchangePull(_) => "ExchangePull",
            Message::ExchangePulled(_) => "ExchangePulled",
            Message::Cosign(_) => "Cosign",
            Message::Cosigned(_) => "Cosigned",
            Message::CosignFrom(_) => "CosignFrom",
            Message::Quality(_) => "Quality",
            Message::QualityNoted(_) => "QualityNoted",
            Message::Within(_) => "Within",
            Message::WithinAnswer(_) => "WithinAnswer",
            Message::ListNotices => "ListNotices",
            Message::Notices(_) => "Notices",
            Message::ActOnNotice(_) => "ActOnNotice",
            Message::NoticeAnswer(_) => "NoticeAnswer",
            Message::Check(_) => "Check",
            Message::CheckAnswer(_) => "CheckAnswer",
            Message::Feedback(_) => "Feedback",
            Message::Observations(_) => "Observations",
            Message::ObservationsTaken(_) => "ObservationsTaken",
            Message::Renew(_) => "Renew",
            Message::Renewed(_) => "Renewed",
            Message::AskRoots(_) => "AskRoots",
            Message::Roots(_) => "Roots",
            Message::RenewCa(_) => "RenewCa",
            Message::Watch(_) => "Watch",
            Message::Ring(_) => "Ring",
        }
    }
}

/// A changeset in transit: compressed body, the origin's signature over the
/// body, and the origin's certificate chain so that any hub on the way can
/// verify it without having enrolled the origin itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChangeset {
    pub origin: NodeId,
    pub resource: ResourceCode,
    pub seq: u64,
    /// Number of changes inside, for progress reporting.
    pub rows: u32,
    /// `zstd(bincode(Changeset))`, see [`crate::data::encode_changeset`].
    pub body: Vec<u8>,
    /// ECDSA P-256 SHA-256 (ASN.1) signature over `body` by the origin's key.
    pub signature: Vec<u8>,
    /// The origin's certificate, then its intermediates, DER.
    pub signer_chain: Vec<Vec<u8>>,
}

/// Acknowledgement of one changeset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub resource: ResourceCode,
    pub seq: u64,
    /// True when this sequence number had been applied before.
    pub duplicate: bool,
}

/// The receiver's expected next sequence number for a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub resource: ResourceCode,
    pub got: u64,
    pub expected: u64,
}

/// A changeset that will never be applied, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub resource: ResourceCode,
    pub seq: u64,
    pub reason: String,
}

/// The dialling node introduces itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The node id in the node's certificate.
    pub node: NodeId,
    /// The role in the node's certificate.
    pub role: Role,
    /// Software name and version, for logs (`gdx-agent 0.1.0`).
    pub software: String,
    /// A diagnostic probe (`gdx-agent doctor`): welcomed, but it does not
    /// replace the node's working connection.
    pub probe: bool,
}

/// The hub accepts the connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub hub: NodeId,
    pub hub_name: String,
    pub software: String,
    /// The hub's clock, Unix milliseconds, so nodes can detect skew.
    pub now_ms: i64,
}

/// Why a request was refused, with a sentence for the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: RefusalCode,
    /// One sentence saying what is wrong and what to do.
    pub message: String,
}

/// Machine-readable refusal causes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalCode {
    TokenUnknown,
    TokenUsed,
    TokenExpired,
    BadRequest,
    VersionMismatch,
    NotAuthorized,
    Revoked,
    Internal,
    /// An enrolment waits for the operator (the CA key is kept offline).
    Queued,
}

/// Enrolment request, sent over [`ALPN_ENROLL`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub token_id: [u8; 16],
    pub secret: [u8; 32],
    /// PKCS#10 certificate signing request, DER.
    pub csr_der: Vec<u8>,
    /// A joining hub's second CSR, for the intermediate CA of its division.
    pub ca_csr_der: Option<Vec<u8>>,
}

/// Enrolment answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    /// The node's certificate followed by any intermediate CA certificates, DER.
    pub chain_der: Vec<Vec<u8>>,
    /// The root CA certificate, DER.
    pub root_der: Vec<u8>,
    pub hub: NodeId,
    pub hub_name: String,
    /// For a joining hub: its intermediate CA certificate, DER.
    pub ca_der: Option<Vec<u8>>,
}

/// A renewal request: a CSR of a key the node made for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewRequest {
    pub csr_der: Vec<u8>,
}

/// A child hub's renewal of its intermediate CA: a CSR of the new CA key,
/// and the CA certificate it replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewCaRequest {
    pub csr_der: Vec<u8>,
    pub current_der: Vec<u8>,
}

/// A renewed certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renewed {
    /// The node's new certificate followed by any intermediate CA certificates, DER.
    pub chain_der: Vec<Vec<u8>>,
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The length prefix exceeds [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_LEN} bytes")]
    TooLarge(usize),
    /// The length prefix is too small to hold a version.
    #[error("frame of {0} bytes is too short to hold a protocol version")]
    TooShort(usize),
    /// The peer speaks another protocol version.
    #[error(
        "the peer speaks gdx protocol {theirs}, this program speaks gdx protocol {OLDEST_PROTOCOL_VERSION} to {ours}; upgrade the older of the two"
    )]
    Version { theirs: u16, ours: u16 },
    /// The payload does not decode, or has bytes left over.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A message too large to encode within [`MAX_FRAME_LEN`].
    #[error("message of {0} bytes is too large to send in one frame")]
    Encode(usize),
}

/// Encodes one message as a complete frame, stamped with the version that
/// introduced its kind (a frame may carry an older kind under a newer
/// version, never a newer kind under an older one).
pub fn encode_frame(msg: &Message) -> Result<Vec<u8>, WireError> {
    let mut out = vec![0u8; LENGTH_PREFIX];
    out.extend_from_slice(&msg.since().to_be_bytes());
    bincode::serde::encode_into_std_write(msg, &mut out, bincode::config::standard())
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    let body = out.len() - LENGTH_PREFIX;
    if body > MAX_FRAME_LEN {
        return Err(WireError::Encode(body));
    }
    out[..LENGTH_PREFIX].copy_from_slice(&(body as u32).to_be_bytes());
    Ok(out)
}

/// Reads a length prefix and checks it against the limits.
pub fn body_len(prefix: [u8; LENGTH_PREFIX]) -> Result<usize, WireError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME_LEN {
        return Err(WireError::TooLarge(len));
    }
    if len < VERSION_LEN {
        return Err(WireError::TooShort(len));
    }
    Ok(len)
}

/// Decodes a frame body (version + payload), as announced by [`body_len`].
pub fn decode_body(body: &[u8]) -> Result<Message, WireError> {
    let (version, payload) = body.split_at_checked(VERSION_LEN).ok_or(WireError::TooShort(body.len()))?;
    let theirs = u16::from_be_bytes([version[0], version[1]]);
    if !(OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&theirs) {
        return Err(WireError::Version { theirs, ours: PROTOCOL_VERSION });
    }
    let config = bincode::config::standard().with_limit::<MAX_FRAME_LEN>();
    let (msg, used): (Message, usize) =
        bincode::serde::decode_from_slice(payload, config).map_err(|e| WireError::Malformed(e.to_string()))?;
    if used != payload.len() {
        return Err(WireError::Malformed(format!("{} bytes left over after the message", payload.len() - used)));
    }
    if msg.since() > theirs {
        return Err(WireError::Malformed(format!(
            "{} is a message of gdx protocol {}, in a frame of protocol {theirs}",
            msg.kind(),
            msg.since()
        )));
    }
    Ok(msg)
}

/// Decodes the first frame of `buf`: `Ok(None)` when more bytes are needed,
/// otherwise the message and the number of bytes it took.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Message, usize)>, WireError> {
    let Some(prefix) = buf.first_chunk::<LENGTH_PREFIX>() else {
        return Ok(None);
    };
    let len = body_len(*prefix)?;
    let Some(body) = buf.get(LENGTH_PREFIX..LENGTH_PREFIX + len) else {
        return Ok(None);
    };
    Ok(Some((decode_body(body)?, LENGTH_PREFIX + len)))
}

/// Where a request stands. Expiry is not a state: it follows from
/// `RequestRecord::granted_until` and the clock of whoever checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// 有条件共享: waiting for the provider, who must answer by this day.
    Pending { answer_by_day: i64 },
    /// Granted (at filing for 无条件共享, or approved by the provider).
    Granted,
    /// Refused on filing (不予共享, or a request that breaks a rule).
    Refused { reason: String },
    /// Denied by the provider.
    Denied { reason: String },
    /// The provider revoked the grant at `at`.
    Revoked { reason: String, at: i64 },
}

/// A request and, once granted, the grant: who may receive which columns of
/// which resource, why, until when. The consumer's hub creates it (version
/// 1); after that only the provider's hub changes it, each change one
/// version up, so every hub keeps the highest version it has seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// `DIVISION-N`: the consumer's hub and its own counter, unique in the province.
    pub id: String,
    pub consumer: NodeId,
    pub provider: NodeId,
    /// 信息资源代码 and 信息资源名称 of the entry asked for.
    pub code: String,
    pub name: String,
    /// The provider's resource (its vault table).
    pub resource: String,
    /// Source columns asked for.
    pub fields: Vec<String>,
    pub purpose: String,
    /// Last day asked for (days since 1970-01-01), if limited.
    pub until: Option<i64>,
    pub filed_at: i64,
    pub status: Status,
    /// Source columns granted; the key columns always travel besides them.
    pub columns: Vec<String>,
    /// Granted columns the catalogue marks sensitive, delivered masked.
    pub masked: Vec<String>,
    /// Last day of validity (days since 1970-01-01), inclusive.
    pub granted_until: Option<i64>,
    pub decided_at: Option<i64>,
    pub version: u64,
    /// Hex secret of the grant, known to hubs only (cleared in answers to
    /// agents): when a key column is masked, rows travel under a salted
    /// digest of their key instead (see [`crate::grant::deliverable`]).
    #[serde(default)]
    pub salt: String,
}

#[cfg(test)]
mod tests;
