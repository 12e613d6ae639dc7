//! Records between hubs: which request records a hub takes from its parent
//! or a child hub, and how the provider's hub files again a request made
//! elsewhere. No hub decides for a provider not below it, nor takes another
//! hub's request ids.

use super::{Request, RequestRecord, Status};
use crate::DivisionCode;
use crate::catalog::CatalogEntry;
use crate::node::NodeId;
use crate::route::{Place, Router};

/// The side of a hub a record arrived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The hub above.
    Parent,
    /// The child hub of this division.
    Child(DivisionCode),
}

/// What a hub does with a record another hub sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Keep it as the newest news of a request decided elsewhere.
    Keep,
    /// The provider is attached here: file the request again against this
    /// hub's own catalogue entry, whatever the record says was decided.
    Refile,
}

/// Why a hub refuses a record another hub sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordRefused {
    #[error("request id {0:?} is not DIVISION-NUMBER")]
    BadId(String),
    #[error("request {id} names consumer {consumer}, who is outside division {filed_by} that filed it")]
    ConsumerOutsideItsHub { id: String, consumer: NodeId, filed_by: DivisionCode },
    #[error("request {id} was filed by the hub of {filed_by}, which is not on the side it came from")]
    IdOfAnotherHub { id: String, filed_by: DivisionCode },
    #[error("request {id} for consumer {consumer} came from a side where that consumer is not")]
    ConsumerNotOnThatSide { id: String, consumer: NodeId },
    #[error(
        "version {version} of request {id} decides for provider {provider}, whose hub is not on the side it came from"
    )]
    DecidedByAnotherHub { id: String, version: u64, provider: NodeId },
    #[error("request {id} has version 0")]
    NoVersion { id: String },
    #[error("request {id} changes who asked whom for what ({what}), which no later version may")]
    Rewritten { id: String, what: &'static str },
    #[error("version {version} of request {id} decides a request this hub never saw filed")]
    DecidedUnfiled { id: String, version: u64 },
}

/// Whether a hub whose division and children are `here` takes record `r`
/// that arrived from `from`, given the version it holds (`held`). A record
/// moves from the consumer's side while it is a new filing (version 1, its
/// id that of a hub on that side) and from the provider's side once decided
/// (version 2 on): no hub decides for a provider that is not below it, nor
/// takes another hub's request ids. What a request asks never changes; a
/// version no newer than the one held is old news, taken as nothing.
pub fn take_record(
    here: &Router,
    from: Side,
    held: Option<&RequestRecord>,
    r: &RequestRecord,
) -> Result<Taken, RecordRefused> {
    if held.is_some_and(|h| h.version >= r.version) {
        return Ok(Taken::Keep); // old news, stored nowhere
    }
    let id = r.id.clone();
    let filed_by =
        r.id.split_once('-')
            .filter(|(_, n)| n.parse::<u64>().is_ok_and(|n| n > 0))
            .and_then(|(d, _)| DivisionCode::parse(d).ok())
            .ok_or_else(|| RecordRefused::BadId(id.clone()))?;
    if !filed_by.contains(r.consumer.division()) {
        return Err(RecordRefused::ConsumerOutsideItsHub { id, consumer: r.consumer.clone(), filed_by });
    }
    let on_side = |d: DivisionCode| match from {
        Side::Parent => !here.division.contains(d),
        Side::Child(child) => child.contains(d),
    };
    match r.version {
        0 => return Err(RecordRefused::NoVersion { id }),
        1 if !on_side(filed_by) => return Err(RecordRefused::IdOfAnotherHub { id, filed_by }),
        1 if !on_side(r.consumer.division()) => {
            return Err(RecordRefused::ConsumerNotOnThatSide { id, consumer: r.consumer.clone() });
        }
        1 => {}
        version if !on_side(r.provider.division()) => {
            return Err(RecordRefused::DecidedByAnotherHub { id, version, provider: r.provider.clone() });
        }
        // a decision follows its filing everywhere, except back to the hub
        // that filed it and lost it: otherwise it would take the id
        version if held.is_none() && filed_by != here.division => {
            return Err(RecordRefused::DecidedUnfiled { id, version });
        }
        _ => {}
    }
    if let Some(h) = held {
        let changed = [
            ("consumer", h.consumer != r.consumer),
            ("provider", h.provider != r.provider),
            ("code", h.code != r.code),
            ("fields", h.fields != r.fields),
            ("purpose", h.purpose != r.purpose),
            ("until", h.until != r.until),
            ("filed_at", h.filed_at != r.filed_at),
        ];
        if let Some((what, _)) = changed.iter().find(|(_, c)| *c) {
            return Err(RecordRefused::Rewritten { id, what });
        }
    }
    Ok(match (r.version, here.place(&r.provider)) {
        (1, Place::Here) => Taken::Refile,
        _ => Taken::Keep,
    })
}

/// The record the provider's hub keeps for request `r` filed elsewhere:
/// the request filed again against its own catalogue `entry` (None when it
/// has none, or it was withdrawn), or refused; `r.id`, and what `r` asks, stay.
pub fn refile(r: &RequestRecord, entry: Option<&CatalogEntry>) -> RequestRecord {
    let req = Request {
        consumer: r.consumer.clone(),
        code: r.code.clone(),
        fields: r.fields.clone(),
        purpose: r.purpose.clone(),
        until: r.until,
        filed_at: r.filed_at,
    };
    match entry {
        // what was asked stays as asked, even where the entry no longer has a field
        Some(e) if e.provider == r.provider => {
            RequestRecord { fields: r.fields.clone(), ..RequestRecord::filed(r.id.clone(), e, &req, r.filed_at) }
        }
        _ => RequestRecord {
            status: Status::Refused {
                reason: format!(
                    "the catalogue of {}'s hub has no entry {} of that provider, or it was withdrawn",
                    r.provider, r.code
                ),
            },
            columns: Vec::new(),
            masked: Vec::new(),
            granted_until: None,
            decided_at: Some(r.filed_at),
            salt: String::new(),
            ..r.clone()
        },
    }
}
