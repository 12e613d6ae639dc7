//! Why the exchange refuses what a department asked: each a kind a caller
//! can match on, said in one sentence that tells the department what to do.
//! A refusal holds nothing and is never a store failure (`ExchangeError`).

use gdx_common::NodeId;
use gdx_common::discipline::ReportRefused;
use gdx_common::grant::{self, Closed};
use gdx_common::notice::NoticeRefused;
use gdx_common::units::format_date;
use gdx_common::wire::RefusalCode;

/// A refusal of the exchange, answered to the department that asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A filing or approval rule of the grant (`gdx_common::grant`).
    #[error(transparent)]
    Rule(#[from] grant::Refused),
    /// The record allows no delivery (pending, expired, denied, revoked…).
    #[error(transparent)]
    Closed(#[from] Closed),
    #[error(transparent)]
    Notice(#[from] NoticeRefused),
    #[error(transparent)]
    Report(#[from] ReportRefused),
    /// The question itself cannot be read (a box, a subject, a matter).
    #[error("{0}")]
    Question(String),
    #[error(
        "the catalogue has no entry {code}; check the code; the hub operator can search the catalogue with `gdx-hub catalog search`"
    )]
    NoEntry { code: String },
    #[error("catalogue entry {code} {name} was withdrawn by its provider")]
    Withdrawn { code: String, name: String },
    #[error("the catalogue here has no entry {code} any more")]
    EntryGone { code: String },
    #[error("request {id} for {code} is already {state}; see `gdx-agent requests`")]
    AlreadyOpen { id: String, code: String, state: &'static str },
    #[error("no request {id} has reached this hub; `gdx-agent requests` lists the requests you can decide")]
    NotArrived { id: String },
    #[error("no request {id} is known at this hub")]
    UnknownRequest { id: String },
    #[error("request {id} asks {provider} for {code}; only that provider can decide it")]
    NotTheProvider { id: String, provider: NodeId, code: String },
    #[error("request {id} was filed by {filed_by}, not by {consumer}")]
    NotTheConsumer { id: String, filed_by: NodeId, consumer: NodeId },
    #[error("say why with --reason")]
    NoReason,
    #[error("request {id} is {state}; only a pending request can be {verb}")]
    NotPending { id: String, state: &'static str, verb: &'static str },
    #[error("request {id} is {state}; only a grant can be revoked")]
    NotAGrant { id: String, state: &'static str },
    #[error(
        "request {id} asked for data until {}, which has passed; deny it and let the consumer file a new one",
        format_date(.asked * 86_400)
    )]
    AskedUntilPassed { id: String, asked: i64 },
    #[error("the end date of the grant is in the past")]
    GrantEndsInPast,
    #[error("the request asked for data until {}; an approval can shorten that, not extend it", format_date(.asked * 86_400))]
    Extends { asked: i64 },
    #[error(
        "{consumer} holds no grant for {code}; file a request with `gdx-agent request --resource {code} --fields … --purpose …`"
    )]
    NoGrant { consumer: NodeId, code: String },
    #[error(
        "grant {id} allows {limit} lookups a minute at {hub}; wait {wait} s and try again, or fetch the deliveries instead"
    )]
    RateLimited { id: String, limit: u32, hub: NodeId, wait: i64 },
    #[error("nothing of {code} has been delivered to this hub under grant {id} yet; try again in a few seconds")]
    NothingYet { code: String, id: String },
    #[error(
        "{code} holds no geometries under grant {id}: a box query needs a spatial resource whose geometry field is granted in clear"
    )]
    NotSpatial { code: String, id: String },
    #[error(
        "grant {id} delivers {code} under a pseudonym of each row's key ({column}), because the key is masked or not granted; look up a row by its {column} value, or ask {provider} to grant the key in clear to look up by the key itself",
        column = grant::PSEUDONYM_COLUMN
    )]
    NotAPseudonym { id: String, code: String, provider: NodeId },
    #[error("no notice {id} has reached this hub; `gdx-agent notices` lists those sent to you")]
    NoNotice { id: String },
    #[error("no check {id} was made at this hub; `gdx-agent check` prints each check's id")]
    NoCheck { id: String },
    #[error("this hub knows no dishonest list; its operator names them as [[list]] in supervision.toml")]
    NoLists,
}

impl Refusal {
    /// The code an agent is answered with: `NotAuthorized` when the asker
    /// may not have what it asked for, `BadRequest` when the question is
    /// wrong (an unknown id, a state that does not allow it, a missing reason).
    pub fn code(&self) -> RefusalCode {
        match self {
            Refusal::Closed(_)
            | Refusal::NotTheProvider { .. }
            | Refusal::NotTheConsumer { .. }
            | Refusal::NoGrant { .. }
            | Refusal::RateLimited { .. }
            | Refusal::NotAPseudonym { .. }
            | Refusal::Notice(NoticeRefused::NotYours { .. })
            | Refusal::Report(ReportRefused::NotYours { .. })
            | Refusal::Rule(grant::Refused::NotShared { .. }) => RefusalCode::NotAuthorized,
            _ => RefusalCode::BadRequest,
        }
    }

    /// The refusal as the answer to an agent.
    pub fn to_wire(&self) -> gdx_common::wire::Refusal {
        gdx_common::wire::Refusal { code: self.code(), message: self.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_reads_as_one_sentence() {
        let id = "630000-7".to_owned();
        let dated = Refusal::AskedUntilPassed { id: id.clone(), asked: 20_453 };
        assert_eq!(
            dated.to_string(),
            "request 630000-7 asked for data until 2025-12-31, which has passed; deny it and let the consumer file a new one"
        );
        let limited = Refusal::RateLimited { id, limit: 600, hub: NodeId::parse("630000/hub").unwrap(), wait: 12 };
        assert!(limited.to_string().starts_with("grant 630000-7 allows 600 lookups a minute at 630000/hub; wait 12 s"));
        let rule: Refusal = grant::Refused::NoPurpose.into();
        assert_eq!(rule.to_string(), "say what the data is for with --purpose");
        assert_eq!(rule.code(), RefusalCode::BadRequest);
    }

    #[test]
    fn who_may_not_have_it_is_told_so_apart_from_a_wrong_question() {
        let node = |s: &str| NodeId::parse(s).unwrap();
        let not_yours = Refusal::NotTheConsumer {
            id: "630000-1".into(),
            filed_by: node("630000/minzheng"),
            consumer: node("630000/gongan"),
        };
        assert_eq!(not_yours.code(), RefusalCode::NotAuthorized);
        let claimed: Refusal = NoticeRefused::NotYours { id: "630000-2".into(), to: node("630121/scjg") }.into();
        assert_eq!(claimed.code(), RefusalCode::NotAuthorized);
        assert_eq!(Refusal::UnknownRequest { id: "x".into() }.code(), RefusalCode::BadRequest);
        assert_eq!(Refusal::Notice(NoticeRefused::NoReason).code(), RefusalCode::BadRequest);
    }
}
