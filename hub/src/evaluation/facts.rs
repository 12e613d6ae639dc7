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
use gdx_common::audit::Entry;
use gdx_common::evaluation::{DayChange, DayFacts, MAX_DAY_ITEMS, MAX_FACTS};

use crate::audit::Reader;
use crate::store::Store;

/// Audit entries read per report, at most (in chunks of a thousand).
const ENTRIES_PER_REPORT: usize = 20_000;
/// A new hub's first report goes back at most this many days.
const FIRST_DAYS: i64 = 400;

/// The days to send (in messages of at most `MAX_FACTS` days), and where
/// the cursors move once the parent answered.
pub struct Pending {
    pub days: Vec<DayFacts>,
    next_index: u64,
    next_day: i64,
}

const INDEX_KEY: &str = "observations_index";
const DAY_KEY: &str = "observations_day";

/// The days to report now: those touched by entries logged since the last
/// report, and every department's days from the day cursor (today and
/// yesterday at least). Reads the log through its own read-only connection.
pub fn pending(store: &Store, audit: &Reader, now: i64) -> anyhow::Result<Pending> {
    let today = now.div_euclid(86_400);
    // (enrolled, revoked) of each department attached here
    let mut mine: BTreeMap<String, (NodeId, i64, Option<i64>)> = BTreeMap::new();
    for n in store.nodes()?.into_iter().filter(|n| n.role == "agent") {
        if let Ok(node) = NodeId::parse(&n.node) {
            mine.insert(n.node.clone(), (node, n.enrolled_at, n.revoked_at));
        }
    }
    for e in audit.entries_of_kind("enrolled")? {
        if let Some(m) = e.event.node.as_deref().and_then(|n| mine.get_mut(n)) {
            m.1 = m.1.min(e.event.at);
        }
    }
    let lives = |name: &str, day: i64| {
        mine.get(name).is_some_and(|(_, enrolled, revoked)| {
            day >= enrolled.div_euclid(86_400) && revoked.is_none_or(|r| day <= r.div_euclid(86_400))
        })
    };

    // days touched by entries logged since the last report
    let from_index: u64 = store.meta(INDEX_KEY)?.and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut next_index = from_index;
    let mut dirty: BTreeSet<(i64, String)> = BTreeSet::new();
    while next_index - from_index < ENTRIES_PER_REPORT as u64 {
        let entries = audit.entries_from(next_index, 1_000)?;
        let Some(last) = entries.last() else { break };
        next_index = last.index + 1;
        for e in &entries {
            if let Some(n) = e.event.node.as_deref().filter(|n| mine.contains_key(*n))
                && matches!(e.event.kind.as_str(), "changeset" | "delivered" | "lookup" | "enrolled")
            {
                dirty.insert((e.event.at.div_euclid(86_400), n.to_owned()));
            }
        }
    }
    // every department's days from the day cursor, as many days as fit
    let first_day = mine.values().map(|(_, t, _)| t.div_euclid(86_400)).min().unwrap_or(today);
    let from_day: i64 =
        store.meta(DAY_KEY)?.and_then(|v| v.parse().ok()).unwrap_or(first_day).max(today - FIRST_DAYS).min(today - 1);
    let per_report = ((MAX_FACTS / 2) / mine.len().max(1)).max(2) as i64;
    let to_day = (from_day + per_report - 1).min(today);
    // and yesterday and today while connections and late quality reports change them
    for day in (from_day..=to_day).chain([today - 1, today]) {
        for name in mine.keys() {
            dirty.insert((day, name.clone()));
        }
    }
    let next_day = if to_day >= today - 1 { today - 1 } else { to_day + 1 };
    dirty.retain(|(day, name)| lives(name, *day));

    // each day's entries read once, by time (indexed), and grouped by department
    let mut days = Vec::new();
    let mut by_day: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (day, name) in dirty {
        by_day.entry(day).or_default().push(name);
    }
    for (day, names) in by_day {
        let entries = audit.entries_during(day * 86_400, ((day + 1) * 86_400).min(now))?;
        let mut of: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
        for e in &entries {
            if let Some(n) = e.event.node.as_deref() {
                of.entry(n).or_default().push(e);
            }
        }
        for name in names {
            let (node, enrolled_at, _) = &mine[&name];
            let entries = of.get(name.as_str()).map_or(&[][..], Vec::as_slice);
            days.push(day_facts(store, entries, node, *enrolled_at, day, now)?);
        }
    }
    Ok(Pending { days, next_index, next_day })
}

/// The parent answered every message (days it refused can never be taken,
/// so they are not sent again): move the cursors.
pub fn sent(store: &Store, p: &Pending) -> anyhow::Result<()> {
    store.set_meta(INDEX_KEY, &p.next_index.to_string())?;
    store.set_meta(DAY_KEY, &p.next_day.to_string())?;
    Ok(())
}

/// What this hub observed of `node` on `day`, from the day's entries of it.
fn day_facts(
    store: &Store,
    entries: &[&Entry],
    node: &NodeId,
    enrolled_at: i64,
    day: i64,
    now: i64,
) -> anyhow::Result<DayFacts> {
    let (start, end) = (day * 86_400, ((day + 1) * 86_400).min(now));
    let mut changes: BTreeMap<&str, DayChange> = BTreeMap::new();
    let (mut deliveries, mut lookups) = (Vec::new(), Vec::new());
    for e in entries {
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
