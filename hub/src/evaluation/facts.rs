//! What this hub observed of its own departments, day by day, sent up to
//! its parent so that the province scores the departments attached below
//! it (`Message::Observations`): the changesets of each resource, the time
//! connected, the last quality report of each resource, the deliveries
//! and lookups a consumer received — each with its entry in this hub's
//! log, so that an auditor can check it here.
//!
//! Two cursors in `hub.db` say what is sent: the audit log up to an index
//! (a day an entry touched is sent again whole), and a day from which
//! every department's days are sent again (today and yesterday always,
//! while connections and late quality reports still change them). Both
//! move only after the parent answered, so a report lost to a crash or a
//! dropped link is made again; the parent replaces each (node, day), so
//! sending a day twice counts it once.

use std::collections::{BTreeMap, BTreeSet};

use gdx_common::NodeId;
use gdx_common::evaluation::{DayChange, DayFacts, MAX_DAY_ITEMS, MAX_FACTS};

use crate::audit::{AuditLog, Filter};
use crate::store::Store;

/// Audit entries read per report, at most.
const ENTRIES_PER_REPORT: usize = 1_000;
/// A new hub's first report goes back at most this many days.
const FIRST_DAYS: i64 = 400;

/// The days to send (in messages of at most `MAX_FACTS`), and where the
/// cursors move once the parent took them.
pub struct Pending {
    pub days: Vec<DayFacts>,
    next_index: u64,
    next_day: i64,
}

const INDEX_KEY: &str = "observations_index";
const DAY_KEY: &str = "observations_day";

/// The days to report now (none when nothing changed since the last report
/// but today and yesterday, which are always sent again).
pub fn pending(store: &Store, audit: &AuditLog, now: i64) -> anyhow::Result<Pending> {
    let today = now.div_euclid(86_400);
    let agents: Vec<(NodeId, i64)> = store
        .nodes()?
        .into_iter()
        .filter(|n| n.role == "agent" && n.revoked_at.is_none_or(|r| r > now - FIRST_DAYS * 86_400))
        .filter_map(|n| Some((NodeId::parse(&n.node).ok()?, n.enrolled_at)))
        .collect();
    let enrolled = first_enrolments(audit, &agents)?;
    let mine: BTreeMap<String, (NodeId, i64)> =
        agents.iter().map(|(n, _)| (n.to_string(), (n.clone(), enrolled[&n.to_string()]))).collect();

    // days touched by entries logged since the last report
    let from_index: u64 = store.meta(INDEX_KEY)?.and_then(|v| v.parse().ok()).unwrap_or(0);
    let entries = audit.entries_from(from_index, ENTRIES_PER_REPORT)?;
    let next_index = entries.last().map_or(from_index, |e| e.index + 1);
    let mut dirty: BTreeSet<(i64, String)> = BTreeSet::new();
    for e in &entries {
        if let Some(n) = e.event.node.as_deref().filter(|n| mine.contains_key(*n))
            && matches!(e.event.kind.as_str(), "changeset" | "delivered" | "lookup" | "enrolled")
        {
            dirty.insert((e.event.at.div_euclid(86_400), n.to_owned()));
        }
    }
    // every department's days from the day cursor, as many days as fit
    let first_day = mine.values().map(|(_, t)| t.div_euclid(86_400)).min().unwrap_or(today);
    let from_day: i64 =
        store.meta(DAY_KEY)?.and_then(|v| v.parse().ok()).unwrap_or(first_day).max(today - FIRST_DAYS).min(today - 1);
    let per_report = ((MAX_FACTS / 2) / mine.len().max(1)).max(2) as i64;
    let to_day = (from_day + per_report - 1).min(today);
    for day in from_day..=to_day {
        for (name, (_, enrolled_at)) in &mine {
            if day >= enrolled_at.div_euclid(86_400) {
                dirty.insert((day, name.clone()));
            }
        }
    }
    let next_day = if to_day >= today - 1 { today - 1 } else { to_day + 1 };
    let mut days = Vec::new();
    for (day, name) in dirty {
        let (node, enrolled_at) = &mine[&name];
        days.push(day_facts(store, audit, node, *enrolled_at, day, now)?);
    }
    Ok(Pending { days, next_index, next_day })
}

/// The parent answered: move the cursors.
pub fn sent(store: &Store, p: &Pending) -> anyhow::Result<()> {
    store.set_meta(INDEX_KEY, &p.next_index.to_string())?;
    store.set_meta(DAY_KEY, &p.next_day.to_string())?;
    Ok(())
}

/// Each department's first enrolment here: its first `enrolled` entry, or the node's row.
fn first_enrolments(audit: &AuditLog, agents: &[(NodeId, i64)]) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, i64> = agents.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    let filter = Filter { kind: Some("enrolled".into()), ..Filter::default() };
    for e in audit.list(&filter)? {
        if let Some(t) = e.event.node.as_deref().and_then(|n| out.get_mut(n)) {
            *t = (*t).min(e.event.at);
        }
    }
    Ok(out)
}

/// What this hub observed of `node` on `day`.
fn day_facts(
    store: &Store,
    audit: &AuditLog,
    node: &NodeId,
    enrolled_at: i64,
    day: i64,
    now: i64,
) -> anyhow::Result<DayFacts> {
    let (start, end) = (day * 86_400, ((day + 1) * 86_400).min(now));
    let filter = Filter { node: Some(node.to_string()), since: Some(start), until: Some(end), ..Filter::default() };
    let entries = audit.list(&filter)?;
    let mut changes: BTreeMap<&str, DayChange> = BTreeMap::new();
    let (mut deliveries, mut lookups) = (Vec::new(), Vec::new());
    for e in &entries {
        match e.event.kind.as_str() {
            "changeset" => {
                let Some(resource) = e.event.resource.as_deref() else { continue };
                changes.entry(resource).and_modify(|c| c.count += 1).or_insert(DayChange {
                    resource: resource.into(),
                    first_at: e.event.at,
                    entry: e.index,
                    count: 1,
                });
            }
            "delivered" => {
                let d = &e.event.detail;
                if let (Some(r), Some(from), Some(to)) = (&e.event.request, d["from"].as_u64(), d["to"].as_u64()) {
                    deliveries.push((r.clone(), from, to, d["rows"].as_u64().unwrap_or(0), e.index));
                }
            }
            "lookup" if super::found(e) => lookups.extend(e.event.request.clone().map(|r| (r, e.index))),
            _ => {}
        }
    }
    let observed_from = start.max(enrolled_at);
    let connected = match store.connected_during(node, observed_from, end)? {
        Some((from, spans)) if end > from => {
            Some((end - from, spans.iter().map(|(a, b)| (b - a).max(0)).sum::<i64>().min(end - from)))
        }
        _ => None,
    };
    let mut quality = store.quality_during(&node.to_string(), start, (day + 1) * 86_400)?;
    let mut changes: Vec<DayChange> = changes.into_values().collect();
    changes.truncate(MAX_DAY_ITEMS);
    quality.truncate(MAX_DAY_ITEMS);
    deliveries.truncate(MAX_DAY_ITEMS);
    lookups.truncate(MAX_DAY_ITEMS);
    Ok(DayFacts {
        node: node.clone(),
        day,
        enrolled_at: Some(enrolled_at),
        changes,
        connected,
        quality,
        deliveries,
        lookups,
    })
}
