//! Controlled exchange, the rules: what a request for another department's
//! data must say, what the sharing type of the catalogue entry decides on
//! filing, the provider's decision (approve, narrow, deny), what a grant
//! allows and until when, the 10-working-day answer deadline, and the
//! masking of sensitive fields.
//!
//! Pure: times are Unix seconds or day numbers passed in; the hubs and
//! agents that route requests and deliver rows build on these rules.

use serde::{Deserialize, Serialize};

use crate::DivisionCode;
use crate::catalog::{CatalogEntry, SharingType};
use crate::data::{Change, Changeset, Column, Value};
use crate::node::NodeId;
use crate::route::{Place, Router};
pub use crate::wire::{RequestRecord, Status};

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
    Refused(String),
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
                r.status = Status::Refused { reason };
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
    pub fn refusal(&self, now: i64) -> Option<String> {
        let what = format!("request {} ({} {} for {})", self.id, self.code, self.name, self.consumer);
        match &self.status {
            Status::Granted => self.granted_until.filter(|d| now.div_euclid(86_400) > *d).map(|d| {
                format!(
                    "the grant of {what} expired after {}; file a new request",
                    crate::units::format_date(d * 86_400)
                )
            }),
            Status::Pending { answer_by_day } => Some(format!(
                "{what} waits for the provider's decision (due by {})",
                crate::units::format_date(answer_by_day * 86_400)
            )),
            Status::Refused { reason } => Some(format!("{what} was refused: {reason}")),
            Status::Denied { reason } => Some(format!("{what} was denied by {}: {reason}", self.provider)),
            Status::Revoked { reason, at } => {
                Some(format!("the grant of {what} was revoked at {}: {reason}", crate::units::format_time(*at)))
            }
        }
    }

    /// Why `column` may not be delivered under this record at `now`, if it may not.
    pub fn refuse(&self, column: &str, now: i64) -> Option<String> {
        if let Some(r) = self.refusal(now) {
            return Some(r);
        }
        if !self.columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
            return Some(format!("{column} is not among the fields granted to {} for {}", self.consumer, self.code));
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

/// The column that addresses delivered rows when a key column is masked.
pub const PSEUDONYM_COLUMN: &str = "gdx_key";

/// The part of changeset `cs` that `record` lets travel, numbered `n`: the
/// granted columns, the sensitive ones masked; every other column stays
/// behind. Rows are addressed by their key when every key column is granted
/// in clear; otherwise by [`PSEUDONYM_COLUMN`], which `pseudonym` makes from
/// the key's text ([`key_text`]), so that the same row always gets the same
/// value without the key leaving the vault.
pub fn deliverable(cs: &Changeset, record: &RequestRecord, n: u64, pseudonym: &dyn Fn(&str) -> String) -> Changeset {
    let has = |list: &[String], name: &str| list.iter().any(|c| c.eq_ignore_ascii_case(name));
    let keep: Vec<usize> = (0..cs.columns.len()).filter(|i| has(&record.columns, &cs.columns[*i].name)).collect();
    let masked: Vec<bool> = keep.iter().map(|i| has(&record.masked, &cs.columns[*i].name)).collect();
    let hide_key = cs.key.iter().any(|k| !keep.contains(k) || has(&record.masked, &cs.columns[*k].name));
    let project = |row: &[Value]| -> Vec<Value> {
        keep.iter()
            .zip(&masked)
            .map(|(&i, &m)| match (&row[i], m) {
                (Value::Null, _) | (_, false) => row[i].clone(),
                (v, true) => Value::Text(mask(&value_text(v))),
            })
            .collect()
    };
    let changes = cs
        .changes
        .iter()
        .map(|c| {
            let key = || Value::Text(pseudonym(&key_text(&cs.key_of(c))));
            match (c, hide_key) {
                (Change::Upsert(row), false) => Change::Upsert(project(row)),
                (Change::Upsert(row), true) => Change::Upsert(std::iter::once(key()).chain(project(row)).collect()),
                (Change::Delete(k), false) => Change::Delete(k.clone()),
                (Change::Delete(_), true) => Change::Delete(vec![key()]),
            }
        })
        .collect();
    let mut columns: Vec<Column> = keep
        .iter()
        .zip(&masked)
        .map(|(&i, &m)| {
            let c = &cs.columns[i];
            Column { name: c.name.clone(), decl_type: if m { "TEXT".into() } else { c.decl_type.clone() } }
        })
        .collect();
    let key = if hide_key {
        columns.insert(0, Column { name: PSEUDONYM_COLUMN.into(), decl_type: "TEXT".into() });
        vec![0]
    } else {
        cs.key.iter().filter_map(|k| keep.iter().position(|i| i == k)).collect()
    };
    Changeset {
        origin: cs.origin.clone(),
        resource: cs.resource.clone(),
        seq: n,
        epoch: cs.epoch,
        columns,
        key,
        changes,
        created_at: cs.created_at,
    }
}

/// A value as text, for masking, key matching and listings.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// Key values joined as text, so that a key typed by a person matches.
pub fn key_text(values: &[&Value]) -> String {
    values.iter().map(|v| value_text(v)).collect::<Vec<_>>().join("\u{1f}")
}

/// A row as a JSON object of its columns.
pub fn row_json(columns: &[Column], row: &[Value]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (c, v) in columns.iter().zip(row) {
        let j = match v {
            Value::Null => serde_json::Value::Null,
            Value::Integer(i) => (*i).into(),
            Value::Real(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            other => value_text(other).into(),
        };
        map.insert(c.name.clone(), j);
    }
    serde_json::Value::Object(map)
}

/// The source columns a request names, resolved against the entry's 信息项
/// (by 信息项名称 or by column); the error names every unknown field.
pub fn resolve_fields(entry: &CatalogEntry, fields: &[String]) -> Result<Vec<String>, String> {
    if fields.is_empty() {
        return Err("name at least one field (信息项) to request".into());
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
        return Err(format!("{} has no field {}; its fields are {}", entry.code, unknown.join(", "), known.join(", ")));
    }
    Ok(columns)
}

/// What filing `req` against `entry` leads to, at `today` (days since 1970-01-01).
pub fn file(entry: &CatalogEntry, req: &Request, today: i64) -> Filing {
    if req.purpose.trim().is_empty() {
        return Filing::Refused("say what the data is for with --purpose".into());
    }
    if req.until.is_some_and(|d| d < today) {
        return Filing::Refused("the requested end date is in the past".into());
    }
    if req.consumer == entry.provider {
        return Filing::Refused(format!("{} is the provider of {}; it needs no grant", req.consumer, entry.code));
    }
    let columns = match resolve_fields(entry, &req.fields) {
        Ok(c) => c,
        Err(e) => return Filing::Refused(e),
    };
    match entry.sharing_type {
        SharingType::Unconditional => Filing::Granted { columns },
        SharingType::Conditional => Filing::Pending { answer_by_day: add_working_days(today, ANSWER_WORKING_DAYS) },
        SharingType::NotShared => Filing::Refused(format!(
            "{} {} is 不予共享 ({})",
            entry.code,
            entry.name,
            entry.legal_basis.as_deref().unwrap_or("no legal basis recorded")
        )),
    }
}

/// The provider's approval: the columns it grants, which must be among
/// those requested (an approval can narrow, never widen).
pub fn approve(requested: &[String], approved: Option<&[String]>) -> Result<Vec<String>, String> {
    let Some(approved) = approved else { return Ok(requested.to_vec()) };
    let wider: Vec<&str> =
        approved.iter().filter(|a| !requested.iter().any(|r| r.eq_ignore_ascii_case(a))).map(String::as_str).collect();
    if !wider.is_empty() {
        return Err(format!("{} were not requested; an approval can only narrow the fields", wider.join(", ")));
    }
    if approved.is_empty() {
        return Err("approve at least one field, or deny the request".into());
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

/// Masks a sensitive value for delivery: an 18-character ID number keeps its
/// first 6 and last 4 characters, a phone number its first 3 and last 4,
/// anything else its first and last character.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let (head, tail) = match chars.len() {
        18 | 15 => (6, 4),
        11 => (3, 4),
        0..=2 => return "*".repeat(chars.len()),
        _ => (1, 1),
    };
    let stars = chars.len() - head - tail;
    chars[..head].iter().collect::<String>()
        + &"*".repeat(stars)
        + &chars[chars.len() - tail..].iter().collect::<String>()
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::parse_date;

    fn entry(sharing: &str) -> CatalogEntry {
        serde_json::from_value(serde_json::json!({
            "code": "301001/000001", "resource": "dibao", "class": "部门信息资源", "classification": ["社会保障"],
            "name": "城乡低保对象信息", "provider": "630000/minzheng", "provider_name": "青海省民政厅",
            "provider_code": "11630000015600017P", "abstract": "低保对象", "format": "数据库", "format_type": "sqlite",
            "items": [
                { "name": "证件号码", "column": "id_number", "data_type": "C", "length": 18, "sensitive": true },
                { "name": "姓名", "column": "name", "data_type": "C", "length": 50 },
                { "name": "月保障金额", "column": "amount", "data_type": "Y", "length": 10 }
            ],
            "sharing_type": sharing, "sharing_condition": "仅限社会救助审核", "legal_basis": "《社会救助暂行办法》",
            "sharing_method": "接口", "open_to_public": false, "update_cycle": "每月", "published": "2026-11-01"
        }))
        .unwrap()
    }

    fn request(fields: &[&str]) -> Request {
        Request {
            consumer: NodeId::parse("632522/minzheng").unwrap(),
            code: "301001/000001".into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            purpose: "特困人员认定比对".into(),
            until: None,
            filed_at: 0,
        }
    }

    #[test]
    fn hubs_take_records_only_from_the_side_that_may_say_them() {
        let d = |c: &str| DivisionCode::parse(c).unwrap();
        let n = |s: &str| NodeId::parse(s).unwrap();
        let province = Router { division: d("630000"), children: vec![d("632500"), d("630100")] };
        let prefecture = Router { division: d("632500"), children: vec![] };
        let other_hub = Router { division: d("630100"), children: vec![] };
        // 632522/minzheng (below 632500) asks 630000/minzheng (at the province)
        let filed = RequestRecord::filed("632500-7".into(), &entry("无条件共享"), &request(&["姓名"]), 0);
        let with = |f: &dyn Fn(&mut RequestRecord)| {
            let mut r = filed.clone();
            f(&mut r);
            r
        };
        let decided = with(&|r| r.version = 2);
        let other_prefecture = with(&|r| r.provider = n("630102/minzheng"));
        let refused = |r: Result<Taken, RecordRefused>| {
            r.map_err(|e| format!("{e:?}").split([' ', '{', '(']).next().unwrap().to_owned())
        };
        type Case<'a> = (&'a str, &'a Router, Side, Option<&'a RequestRecord>, RequestRecord, Result<Taken, &'a str>);
        let cases: Vec<Case<'_>> = vec![
            (
                "a filing from the consumer's prefecture",
                &province,
                Side::Child(d("632500")),
                None,
                filed.clone(),
                Ok(Taken::Refile),
            ),
            (
                "a filing for a provider in another prefecture",
                &province,
                Side::Child(d("632500")),
                None,
                other_prefecture.clone(),
                Ok(Taken::Keep),
            ),
            (
                "that filing at the provider's prefecture",
                &other_hub,
                Side::Parent,
                None,
                other_prefecture.clone(),
                Ok(Taken::Refile),
            ),
            (
                "a filing news of which reaches the consumer's hub back",
                &prefecture,
                Side::Parent,
                Some(&filed),
                filed.clone(),
                Ok(Taken::Keep),
            ),
            (
                "a filing in the name of the consumer's hub, from above",
                &prefecture,
                Side::Parent,
                None,
                filed.clone(),
                Err("IdOfAnotherHub"),
            ),
            (
                "a decision by the provider's hub, at the consumer's hub",
                &prefecture,
                Side::Parent,
                Some(&filed),
                decided.clone(),
                Ok(Taken::Keep),
            ),
            (
                "a prefecture deciding for the province's provider",
                &province,
                Side::Child(d("632500")),
                Some(&filed),
                decided.clone(),
                Err("DecidedByAnotherHub"),
            ),
            (
                "a prefecture deciding for another prefecture's provider",
                &province,
                Side::Child(d("632500")),
                None,
                with(&|r| {
                    r.version = 2;
                    r.provider = n("630102/minzheng")
                }),
                Err("DecidedByAnotherHub"),
            ),
            (
                "the parent deciding for a provider below",
                &other_hub,
                Side::Parent,
                None,
                with(&|r| {
                    r.version = 2;
                    r.provider = n("630102/minzheng")
                }),
                Err("DecidedByAnotherHub"),
            ),
            (
                "a prefecture taking the province's ids",
                &province,
                Side::Child(d("632500")),
                None,
                with(&|r| r.id = "630000-7".into()),
                Err("IdOfAnotherHub"),
            ),
            (
                "a prefecture filing for a consumer outside it",
                &province,
                Side::Child(d("632500")),
                None,
                with(&|r| r.consumer = n("630102/gongan")),
                Err("ConsumerOutsideItsHub"),
            ),
            (
                "an id of the other prefecture",
                &province,
                Side::Child(d("632500")),
                None,
                with(&|r| {
                    r.id = "630100-1".into();
                    r.consumer = n("630102/gongan")
                }),
                Err("IdOfAnotherHub"),
            ),
            (
                "a consumer of the prefecture with a county's id",
                &province,
                Side::Child(d("632500")),
                None,
                with(&|r| r.id = "632522-1".into()),
                Ok(Taken::Refile),
            ),
            (
                "a malformed id",
                &province,
                Side::Child(d("632500")),
                None,
                with(&|r| r.id = "632500".into()),
                Err("BadId"),
            ),
            ("a zero id", &province, Side::Child(d("632500")), None, with(&|r| r.id = "632500-0".into()), Err("BadId")),
            ("version 0", &province, Side::Child(d("632500")), None, with(&|r| r.version = 0), Err("NoVersion")),
            (
                "a decision under another hub's id, never filed here",
                &province,
                Side::Child(d("632500")),
                None,
                with(&|r| {
                    r.version = 2;
                    r.id = "630100-1".into();
                    r.consumer = n("630102/gongan");
                    r.provider = n("632501/minzheng");
                }),
                Err("DecidedUnfiled"),
            ),
            (
                "a decision for a filing this hub made and lost",
                &prefecture,
                Side::Parent,
                None,
                decided.clone(),
                Ok(Taken::Keep),
            ),
            (
                "a later version that changes the fields",
                &prefecture,
                Side::Parent,
                Some(&filed),
                with(&|r| {
                    r.version = 2;
                    r.fields = vec!["id_number".into()]
                }),
                Err("Rewritten"),
            ),
            (
                "a later version that changes the consumer",
                &prefecture,
                Side::Parent,
                Some(&filed),
                with(&|r| {
                    r.version = 2;
                    r.consumer = n("632522/gongan")
                }),
                Err("Rewritten"),
            ),
        ];
        for (what, here, from, held, r, want) in cases {
            assert_eq!(refused(take_record(here, from, held, &r)), want.map_err(str::to_owned), "{what}");
        }
        let e = take_record(&province, Side::Child(d("632500")), Some(&filed), &decided).unwrap_err().to_string();
        assert_eq!(
            e,
            "version 2 of request 632500-7 decides for provider 630000/minzheng, whose hub is not on the side it came from"
        );
    }

    #[test]
    fn a_provider_hub_files_again_and_refuses_what_it_does_not_catalogue() {
        let e = entry("有条件共享");
        let mut forged = RequestRecord::filed("632500-7".into(), &e, &request(&["姓名"]), 0);
        forged.grant(&e, vec!["id_number".into(), "name".into()], &["id_number".into()], None, 0);
        let again = refile(&forged, Some(&e));
        assert!(matches!(again.status, Status::Pending { .. }), "{again:?}");
        assert!(again.columns.is_empty() && again.fields == forged.fields && again.id == forged.id);
        let mut other = e.clone();
        other.provider = NodeId::parse("630000/gongan").unwrap();
        for entry in [None, Some(&other)] {
            let r = refile(&forged, entry);
            assert!(
                matches!(&r.status, Status::Refused { reason } if reason.contains("has no entry 301001/000001")),
                "{r:?}"
            );
            assert!(r.columns.is_empty() && r.masked.is_empty() && !r.is_live(0));
        }
    }

    #[test]
    fn the_sharing_type_decides_on_filing() {
        let today = parse_date("2026-11-27").unwrap(); // a Friday
        assert_eq!(
            file(&entry("无条件共享"), &request(&["证件号码", "name"]), today),
            Filing::Granted { columns: vec!["id_number".into(), "name".into()] }
        );
        // 10 working days from Friday 2026-11-27: Friday 2026-12-11
        assert_eq!(
            file(&entry("有条件共享"), &request(&["姓名"]), today),
            Filing::Pending { answer_by_day: parse_date("2026-12-11").unwrap() }
        );
        match file(&entry("不予共享"), &request(&["姓名"]), today) {
            Filing::Refused(r) => assert!(r.contains("不予共享") && r.contains("《社会救助暂行办法》"), "{r}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let today = parse_date("2026-11-27").unwrap();
        let e = entry("无条件共享");
        let refused = |r: &Request| match file(&e, r, today) {
            Filing::Refused(why) => why,
            other => panic!("{other:?}"),
        };
        assert!(
            refused(&request(&["住址", "姓名"]))
                .contains("has no field 住址; its fields are 证件号码, 姓名, 月保障金额")
        );
        assert!(refused(&request(&[])).contains("at least one field"));
        let mut r = request(&["姓名"]);
        r.purpose = " ".into();
        assert!(refused(&r).contains("--purpose"));
        let mut r = request(&["姓名"]);
        r.until = Some(today - 1);
        assert!(refused(&r).contains("in the past"));
        let mut r = request(&["姓名"]);
        r.consumer = NodeId::parse("630000/minzheng").unwrap();
        assert!(refused(&r).contains("needs no grant"));
    }

    #[test]
    fn approvals_narrow_but_never_widen() {
        let asked = vec!["id_number".to_owned(), "name".to_owned()];
        assert_eq!(approve(&asked, None), Ok(asked.clone()));
        assert_eq!(approve(&asked, Some(&["name".to_owned()])), Ok(vec!["name".to_owned()]));
        assert!(approve(&asked, Some(&["amount".to_owned()])).unwrap_err().contains("only narrow"));
        assert!(approve(&asked, Some(&[])).is_err());
    }

    #[test]
    fn records_expire_are_revoked_and_cover_only_their_columns() {
        let now = parse_date("2026-11-27").unwrap() * 86_400;
        let mut req = request(&["证件号码", "姓名"]);
        req.until = Some(parse_date("2026-12-31").unwrap());
        let mut g = RequestRecord::filed("630000-1".into(), &entry("无条件共享"), &req, now);
        assert_eq!(g.status, Status::Granted);
        assert_eq!(g.masked, vec!["id_number".to_owned()], "sensitive items are masked by default");
        let end_of_day = parse_date("2026-12-31").unwrap() * 86_400 + 86_399;
        assert!(g.is_live(end_of_day) && g.refuse("NAME", end_of_day).is_none());
        assert!(g.refuse("amount", end_of_day).unwrap().contains("not among the fields"));
        assert!(!g.is_live(end_of_day + 1));
        assert_eq!(g.state(end_of_day + 1), "expired");
        assert!(g.refuse("name", end_of_day + 1).unwrap().contains("expired after 2026-12-31"));
        g.status = Status::Revoked { reason: "审核结束".into(), at: now };
        assert!(!g.is_live(now) && g.refuse("name", now).unwrap().contains("revoked"));
        let pending = RequestRecord::filed("630000-2".into(), &entry("有条件共享"), &req, now);
        assert_eq!(pending.state(now), "pending");
        assert_eq!(pending.state(now + 15 * 86_400), "OVERDUE");
        let mut approved = pending.clone();
        approved.grant(&entry("有条件共享"), vec!["id_number".into()], &["ID_NUMBER".into()], None, now);
        assert!(approved.masked.is_empty() && approved.is_live(now + 1000 * 86_400));
        let refused = RequestRecord::filed("630000-3".into(), &entry("不予共享"), &req, now);
        assert!(refused.refusal(now).unwrap().contains("不予共享"));
    }

    #[test]
    fn only_key_and_granted_columns_travel_and_sensitive_ones_are_masked() {
        let now = parse_date("2026-11-27").unwrap() * 86_400;
        let mut g =
            RequestRecord::filed("630000-1".into(), &entry("无条件共享"), &request(&["证件号码", "月保障金额"]), now);
        g.columns.push("phone".into());
        g.masked.push("phone".into());
        let col = |n: &str| Column { name: n.into(), decl_type: "TEXT".into() };
        let t = |s: &str| Value::Text(s.into());
        let cs = Changeset {
            origin: NodeId::parse("630000/minzheng").unwrap(),
            resource: crate::data::ResourceCode::parse("dibao").unwrap(),
            seq: 9,
            epoch: 1,
            columns: vec![col("case_no"), col("id_number"), col("name"), col("amount"), col("phone")],
            key: vec![0],
            changes: vec![
                Change::Upsert(vec![t("A1"), t("63252219800101001X"), t("卓玛"), Value::Integer(640), Value::Null]),
                Change::Upsert(vec![t("A2"), Value::Null, t("马秀兰"), Value::Integer(700), t("13907012345")]),
                Change::Delete(vec![t("A3")]),
            ],
            created_at: 5,
        };
        // the key case_no was not granted: rows travel under a pseudonym
        let d = deliverable(&cs, &g, 1, &|k| format!("p{k}"));
        let names: Vec<&str> = d.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["gdx_key", "id_number", "amount", "phone"], "name was not granted");
        assert_eq!((d.seq, d.key.clone()), (1, vec![0]));
        assert_eq!(
            d.changes[0],
            Change::Upsert(vec![t("pA1"), t("632522********001X"), Value::Integer(640), Value::Null])
        );
        assert_eq!(d.changes[1], Change::Upsert(vec![t("pA2"), Value::Null, Value::Integer(700), t("139****2345")]));
        assert_eq!(d.changes[2], Change::Delete(vec![t("pA3")]));
        assert!(d.validate().is_ok());
        // granted in clear, the key addresses the rows itself
        g.columns.push("case_no".into());
        let c = deliverable(&cs, &g, 2, &|k| format!("p{k}"));
        assert_eq!(c.columns[0].name, "case_no");
        assert_eq!(c.changes[2], Change::Delete(vec![t("A3")]));
        // granted but masked: masked, and rows travel under the pseudonym
        g.masked.push("case_no".into());
        let p = deliverable(&cs, &g, 3, &|k| format!("p{k}"));
        let names: Vec<&str> = p.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["gdx_key", "case_no", "id_number", "amount", "phone"]);
        assert_eq!(
            p.changes[0],
            Change::Upsert(vec![t("pA1"), t("**"), t("632522********001X"), Value::Integer(640), Value::Null])
        );
        assert!(p.validate().is_ok());
        assert_eq!(key_text(&[&t("A1"), &Value::Integer(7)]), "A1\u{1f}7");
        assert_eq!(row_json(&d.columns, &[t("A1"), Value::Null, Value::Integer(1), t("x")])["amount"], 1);
    }

    #[test]
    fn working_days_skip_weekends() {
        let fri = parse_date("2026-11-27").unwrap();
        assert!(is_working_day(fri));
        assert!(!is_working_day(fri + 1) && !is_working_day(fri + 2));
        assert_eq!(add_working_days(fri, 1), fri + 3);
        assert_eq!(add_working_days(fri + 1, 1), fri + 3, "from a Saturday, Monday is the first working day");
    }

    #[test]
    fn sensitive_values_are_masked() {
        assert_eq!(mask("11010519491231002X"), "110105********002X");
        assert_eq!(mask("13907012345"), "139****2345");
        assert_eq!(mask("卓玛"), "**");
        assert_eq!(mask("马秀兰"), "马*兰");
        assert_eq!(mask(""), "");
    }
}
