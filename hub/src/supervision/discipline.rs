//! 联合惩戒 at a hub: a department's check of a credit code or ID number
//! for a kind of matter, answered from the dishonest lists it may read
//! here — its own (the provider's vault) or another's under a live grant
//! (the rows delivered to this hub) — and the measures table in
//! `supervision.toml`. Each check and its feedback is kept and logged.

use gdx_common::NodeId;
use gdx_common::catalog::CatalogEntry;
use gdx_common::discipline::{Check, Listing, Subject, Table, decide, parse_until};
use gdx_common::wire::CheckQuery;

use crate::exchange::{Exchange, ExchangeError, Refusal};
use crate::store::vault::Vaults;

/// Rows of one list read per check at most.
const ROWS_PER_LIST: usize = 200;

/// Answers `node`'s check: Ok(Err) for a mistake in the question (said
/// to the department), Err when a store failed. `entries` gives this hub's
/// catalogue entry of a code.
pub fn check(
    table: &Table,
    entries: &dyn Fn(&str) -> Option<CatalogEntry>,
    vaults: &Vaults,
    exchange: &mut Exchange,
    node: &NodeId,
    q: &CheckQuery,
    now: i64,
) -> Result<Result<Check, Refusal>, ExchangeError> {
    let today = now.div_euclid(86_400);
    let subject = match Subject::parse(&q.subject, today) {
        Ok(s) => s,
        Err(e) => return Ok(Err(Refusal::Question(e))),
    };
    let matter = match table.matter(&q.matter) {
        Ok(m) => m.to_owned(),
        Err(e) => return Ok(Err(Refusal::Question(e))),
    };
    if table.lists.is_empty() {
        return Ok(Err(Refusal::NoLists));
    }
    let mut listings = Vec::new();
    let mut unread = Vec::new();
    for list in &table.lists {
        let Some(entry) = entries(&list.code) else {
            unread.push(format!("{} ({}): the catalogue here has no such entry", list.name, list.code));
            continue;
        };
        let (rows, source) = if &entry.provider == node {
            match crate::supervision::rows_naming(vaults, &entry, &list.subject, subject.as_str()) {
                Ok(Some((rows, changeset, _))) => (rows, format!("{node} (own data, changeset {changeset})")),
                Ok(None) => {
                    unread.push(format!("{} ({}): not kept at this hub", list.name, list.code));
                    continue;
                }
                Err(e) => return Err(ExchangeError::Damaged(e)),
            }
        } else {
            let grants = exchange.live_grants(node, &list.code, now)?;
            // the columns a list needs, as the grant spells them, each granted in clear
            let needed: Vec<&String> =
                [Some(&list.subject), Some(&list.memorandum), list.until.as_ref()].into_iter().flatten().collect();
            let clear = |g: &gdx_common::wire::RequestRecord, col: &str| {
                g.columns.iter().any(|c| c.eq_ignore_ascii_case(col))
                    && !g.masked.iter().any(|c| c.eq_ignore_ascii_case(col))
            };
            let Some(g) = grants.iter().find(|g| needed.iter().all(|c| clear(g, c))) else {
                let wanted: Vec<&str> = needed.iter().map(|c| c.as_str()).collect();
                unread.push(match grants.first() {
                    None => format!(
                        "{} ({}): you hold no live grant of it; request one with `gdx-agent request --resource {} --fields {}`",
                        list.name,
                        list.code,
                        list.code,
                        wanted.join(",")
                    ),
                    Some(g) => format!("{} ({}): grant {} does not give {} in clear", list.name, list.code, g.id, wanted.join(", ")),
                });
                continue;
            };
            let subject_column =
                g.columns.iter().find(|c| c.eq_ignore_ascii_case(&list.subject)).unwrap_or(&list.subject);
            let rows = exchange.replica_rows_where(&g.id, subject_column, subject.as_str(), ROWS_PER_LIST)?;
            (rows, format!("grant {} from {}", g.id, g.provider))
        };
        let mut found = Vec::new();
        for row in &rows {
            // a row that does not say under which memorandum, or until when, cannot clear anyone
            let memorandum = field(row, &list.memorandum).filter(|m| !m.trim().is_empty());
            let until_text = match &list.until {
                Some(col) => field(row, col),
                None => Some(String::new()),
            };
            let (Some(memorandum), Some(until_text)) = (memorandum, until_text) else {
                found.clear();
                unread.push(format!(
                    "{} ({}): a row naming the subject has no {} value; check [[list]] in supervision.toml",
                    list.name,
                    list.code,
                    if field(row, &list.memorandum).is_none() {
                        &list.memorandum
                    } else {
                        list.until.as_deref().unwrap_or_default()
                    }
                ));
                break;
            };
            // an end date that does not read keeps the listing in force, and says so
            let (until, bad_until) = match parse_until(&until_text) {
                Ok(u) => (u, None),
                Err(_) => (None, Some(until_text)),
            };
            let mut reason = list.reason.as_ref().and_then(|c| field(row, c));
            if let Some(bad) = bad_until {
                reason = Some(format!("{} (end date {bad:?} unreadable: taken as no end)", reason.unwrap_or_default()));
            }
            found.push(Listing { list: list.name.clone(), memorandum, until, reason, source: source.clone() });
        }
        listings.extend(found);
    }
    let finding = decide(table, &matter, listings, today);
    let made =
        Check { id: String::new(), node: node.clone(), subject, matter, at: now, finding, unread, feedback: None };
    exchange.record_check(made).map(Ok)
}

/// The value of `column` in `row` (its name compared without case), as
/// text; None when the row has no such column or it is NULL.
fn field(row: &serde_json::Map<String, serde_json::Value>, column: &str) -> Option<String> {
    match row.iter().find(|(k, _)| k.eq_ignore_ascii_case(column)).map(|(_, v)| v)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(t) => Some(t.clone()),
        other => Some(other.to_string()),
    }
}
