//! Controlled exchange, the rules: what a request for another department's
//! data must say, what the sharing type of the catalogue entry decides on
//! filing, the provider's decision (approve, narrow, deny), what a grant
//! allows and until when, the 10-working-day answer deadline, and the
//! masking of sensitive fields. `deliver` is what of a changeset travels
//! under a grant; `hubs` which records a hub takes from its neighbours.
//!
//! Pure: times are Unix seconds or day numbers passed in; the hubs and
//! agents that route requests and deliver rows build on these rules.

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogEntry, SharingType};
use crate::node::NodeId;
pub use crate::wire::{RequestRecord, Status};

mod deliver;
mod hubs;

pub use deliver::{
    COMPANION, PROVENANCE_SUFFIX, PSEUDONYM_COLUMN, deliverable, key_text, mask, row_json, value_json, value_text,
};
pub use hubs::{RecordRefused, Side, Taken, refile, take_record};

/// Working days a provider has to answer a 有条件共享 request (国发〔2016〕51号).
pub const ANSWER_WORKING_DAYS: i64 = 10;

/// Days that are not working days besides Saturdays and Sundays, as days
/// since 1970-01-01. (unconfirmed) The State Council publishes the holiday
/// calendar each year; keep it in this one table.
pub const HOLIDAYS: &[i64] = &[];

/// A department's request for fields of a catalogued resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The consuming node.
    pub consumer: NodeId,
    /// 信息资源代码 of the entry asked for.
    pub code: String,
    /// 信息项 asked for, by name or source column.
    pub fields: Vec<String>,
    /// What the data is for, in a sentence.
    pub purpose: String,
    /// Last day (days since 1970-01-01) the grant should last, if limited.
    pub until: Option<i64>,
    /// When it was filed, Unix seconds.
    pub filed_at: i64,
}

/// What filing a request leads to, decided by the entry's 共享类型.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filing {
    /// 无条件共享: granted at once, for these columns.
    Granted { columns: Vec<String> },
    /// 有条件共享: waits for the provider, who must answer by this day.
    Pending { answer_by_day: i64 },
    /// 不予共享 (or a bad request): refused, with the reason.
    Refused(Refused),
}

/// Why a request cannot be filed or approved as asked: said to the
/// department, never kept as a decision.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("name at least one field (信息项) to request")]
    NoFields,
    #[error("{code} has no field {unknown}; its fields are {known}")]
    UnknownFields { code: String, unknown: String, known: String },
    #[error("say what the data is for with --purpose")]
    NoPurpose,
    #[error("the requested end date is in the past")]
    EndInPast,
    #[error("{consumer} is the provider of {code}; it needs no grant")]
    OwnData { consumer: NodeId, code: String },
    #[error("{code} {name} is 不予共享 ({basis})")]
    NotShared { code: String, name: String, basis: String },
    #[error("{wider} were not requested; an approval can only narrow the fields")]
    Wider { wider: String },
    #[error("approve at least one field, or deny the request")]
    NoneApproved,
}

/// Why nothing, or not a column, may be delivered under a record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Closed {
    #[error("the grant of {what} expired after {}; file a new request", crate::units::format_date(.until * 86_400))]
    Expired { what: String, until: i64 },
    #[error("{what} waits for the provider's decision (due by {})", crate::units::format_date(.due * 86_400))]
    Pending { what: String, due: i64 },
    #[error("{what} was refused: {reason}")]
    Refused { what: String, reason: String },
    #[error("{what} was denied by {provider}: {reason}")]
    Denied { what: String, provider: NodeId, reason: String },
    #[error("the grant of {what} was revoked at {}: {reason}", crate::units::format_time(*.at))]
    Revoked { what: String, reason: String, at: i64 },
    #[error("{column} is not among the fields granted to {consumer} for {code}")]
    NotGranted { column: String, consumer: NodeId, code: String },
}

impl RequestRecord {
    /// A record for `req` as filed against `entry` at Unix time `now`.
    pub fn filed(id: String, entry: &CatalogEntry, req: &Request, now: i64) -> Self {
        let today = now.div_euclid(86_400);
        let fields = resolve_fields(entry, &req.fields).unwrap_or_default();
        let mut r = RequestRecord {
            id,
            consumer: req.consumer.clone(),
            provider: entry.provider.clone(),
            code: entry.code.clone(),
            name: entry.name.clone(),
            resource: entry.resource.to_string(),
            fields: fields.clone(),
            purpose: req.purpose.clone(),
            until: req.until,
            filed_at: now,
            status: Status::Refused { reason: String::new() },
            columns: Vec::new(),
            masked: Vec::new(),
            granted_until: None,
            decided_at: None,
            version: 1,
            salt: String::new(),
        };
        match file(entry, req, today) {
            Filing::Granted { columns } => r.grant(entry, columns, &[], req.until, now),
            Filing::Pending { answer_by_day } => r.status = Status::Pending { answer_by_day },
            Filing::Refused(reason) => {
                r.status = Status::Refused { reason: reason.to_string() };
                r.decided_at = Some(now);
            }
        }
        r
    }

    /// Grants `columns`, delivering the sensitive ones masked except `clear`.
    pub fn grant(
        &mut self,
        entry: &CatalogEntry,
        columns: Vec<String>,
        clear: &[String],
        until: Option<i64>,
        now: i64,
    ) {
        self.masked = entry
            .items
            .iter()
            .filter(|i| i.sensitive && columns.iter().any(|c| c.eq_ignore_ascii_case(i.column())))
            .map(|i| i.column().to_owned())
            .filter(|c| !clear.iter().any(|x| x.eq_ignore_ascii_case(c)))
            .collect();
        self.columns = columns;
        self.granted_until = until;
        self.status = Status::Granted;
        self.decided_at = Some(now);
    }

    /// The record as an agent may see it: without the hubs' secret.
    pub fn for_agent(mut self) -> Self {
        self.salt.clear();
        self
    }

    /// True while the grant is granted and not expired at Unix time `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.status == Status::Granted && self.granted_until.is_none_or(|d| now.div_euclid(86_400) <= d)
    }

    /// Why nothing may be delivered under this record at `now`, if nothing may.
    pub fn refusal(&self, now: i64) -> Option<Closed> {
        let what = format!("request {} ({} {} for {})", self.id, self.code, self.name, self.consumer);
        match &self.status {
            Status::Granted => {
                self.granted_until.filter(|d| now.div_euclid(86_400) > *d).map(|until| Closed::Expired { what, until })
            }
            Status::Pending { answer_by_day } => Some(Closed::Pending { what, due: *answer_by_day }),
            Status::Refused { reason } => Some(Closed::Refused { what, reason: reason.clone() }),
            Status::Denied { reason } => {
                Some(Closed::Denied { what, provider: self.provider.clone(), reason: reason.clone() })
            }
            Status::Revoked { reason, at } => Some(Closed::Revoked { what, reason: reason.clone(), at: *at }),
        }
    }

    /// Why `column` may not be delivered under this record at `now`, if it may not.
    pub fn refuse(&self, column: &str, now: i64) -> Option<Closed> {
        if let Some(r) = self.refusal(now) {
            return Some(r);
        }
        if !self.columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
            return Some(Closed::NotGranted {
                column: column.to_owned(),
                consumer: self.consumer.clone(),
                code: self.code.clone(),
            });
        }
        None
    }

    /// One word for listings: pending, OVERDUE, granted, expired, refused, denied, revoked.
    pub fn state(&self, now: i64) -> &'static str {
        match &self.status {
            Status::Pending { answer_by_day } if now.div_euclid(86_400) > *answer_by_day => "OVERDUE",
            Status::Pending { .. } => "pending",
            Status::Granted if self.is_live(now) => "granted",
            Status::Granted => "expired",
            Status::Refused { .. } => "refused",
            Status::Denied { .. } => "denied",
            Status::Revoked { .. } => "revoked",
        }
    }
}

/// The source columns a request names, resolved against the entry's 信息项
/// (by 信息项名称 or by column); the error names every unknown field.
pub fn resolve_fields(entry: &CatalogEntry, fields: &[String]) -> Result<Vec<String>, Refused> {
    if fields.is_empty() {
        return Err(Refused::NoFields);
    }
    let mut columns = Vec::new();
    let mut unknown = Vec::new();
    for f in fields {
        match entry.items.iter().find(|i| &i.name == f || i.column().eq_ignore_ascii_case(f)) {
            Some(i) if !columns.contains(&i.column().to_owned()) => columns.push(i.column().to_owned()),
            Some(_) => {}
            None => unknown.push(f.as_str()),
        }
    }
    if !unknown.is_empty() {
        let known: Vec<&str> = entry.items.iter().map(|i| i.name.as_str()).collect();
        return Err(Refused::UnknownFields {
            code: entry.code.clone(),
            unknown: unknown.join(", "),
            known: known.join(", "),
        });
    }
    Ok(columns)
}

/// What filing `req` against `entry` leads to, at `today` (days since 1970-01-01).
pub fn file(entry: &CatalogEntry, req: &Request, today: i64) -> Filing {
    if req.purpose.trim().is_empty() {
        return Filing::Refused(Refused::NoPurpose);
    }
    if req.until.is_some_and(|d| d < today) {
        return Filing::Refused(Refused::EndInPast);
    }
    if req.consumer == entry.provider {
        return Filing::Refused(Refused::OwnData { consumer: req.consumer.clone(), code: entry.code.clone() });
    }
    let columns = match resolve_fields(entry, &req.fields) {
        Ok(c) => c,
        Err(e) => return Filing::Refused(e),
    };
    match entry.sharing_type {
        SharingType::Unconditional => Filing::Granted { columns },
        SharingType::Conditional => Filing::Pending { answer_by_day: add_working_days(today, ANSWER_WORKING_DAYS) },
        SharingType::NotShared => Filing::Refused(Refused::NotShared {
            code: entry.code.clone(),
            name: entry.name.clone(),
            basis: entry.legal_basis.clone().unwrap_or_else(|| "no legal basis recorded".into()),
        }),
    }
}

/// The provider's approval: the columns it grants, which must be among
/// those requested (an approval can narrow, never widen).
pub fn approve(requested: &[String], approved: Option<&[String]>) -> Result<Vec<String>, Refused> {
    let Some(approved) = approved else { return Ok(requested.to_vec()) };
    let wider: Vec<&str> =
        approved.iter().filter(|a| !requested.iter().any(|r| r.eq_ignore_ascii_case(a))).map(String::as_str).collect();
    if !wider.is_empty() {
        return Err(Refused::Wider { wider: wider.join(", ") });
    }
    if approved.is_empty() {
        return Err(Refused::NoneApproved);
    }
    Ok(approved.to_vec())
}

/// True for Monday to Friday that are not in [`HOLIDAYS`].
pub fn is_working_day(day: i64) -> bool {
    // 1970-01-01 was a Thursday
    let weekday = (day + 3).rem_euclid(7); // 0 = Monday
    weekday < 5 && !HOLIDAYS.contains(&day)
}

/// The day `n` working days after `day`.
pub fn add_working_days(day: i64, n: i64) -> i64 {
    let mut d = day;
    let mut left = n;
    while left > 0 {
        d += 1;
        if is_working_day(d) {
            left -= 1;
        }
    }
    d
}

#[cfg(test)]
mod tests;
