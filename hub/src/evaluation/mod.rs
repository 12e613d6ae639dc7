//! 考核督促 at a hub: the indicators of every department for a period,
//! from what this hub observed — its audit log (catalogue versions,
//! changesets, requests and decisions, deliveries, lookups, notices,
//! checks, enrolments), its connection log, the agents' quality reports,
//! the exchange store and the items library — scored and ranked by
//! `gdx_common::evaluation` with the weights of `evaluation.toml`.
//!
//! Each figure keeps the audit entries it counts (`events`), so an auditor
//! can check it against the log (`gdx-hub audit list`, `audit prove`).
//! The departments attached to a child hub are scored on what that hub
//! observed and reported up (`facts`: changesets, connections, quality,
//! deliveries and lookups per day, each with its entry in the child's
//! log, `elsewhere`). What no hub observed is reported as not observed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use gdx_common::audit::Entry;
use gdx_common::catalog::CatalogEntry;
use gdx_common::evaluation::{DayFacts, Indicators, Period, Scored, Weights, freshness, median, rank, share};
use gdx_common::grant::{Status, add_working_days};
use gdx_common::{DivisionCode, NodeId};
use serde::Serialize;

use crate::audit::{AuditLog, Filter as AuditFilter};
use crate::catalog::{Catalog, Filter as CatalogFilter};
use crate::exchange::Exchange;
use crate::store::{HubPaths, Store};

pub mod facts;
pub mod render;

/// Working days a 有条件共享 request may wait for its answer.
const ANSWER_WITHIN_WORKING_DAYS: i64 = 10;

/// One department's line, with the audit entries behind its figures.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    #[serde(flatten)]
    pub scored: Scored,
    /// When it enrolled, if this hub saw it.
    pub enrolled_at: Option<i64>,
    /// Per indicator, the audit entries (indexes in this hub's log) it counts.
    pub events: BTreeMap<&'static str, Vec<u64>>,
    /// Per indicator, the entries it counts in a child hub's log (`HUB#INDEX`).
    pub elsewhere: BTreeMap<&'static str, Vec<String>>,
}

/// A period's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub period: String,
    pub hub: String,
    pub division: Option<String>,
    pub weights: Weights,
    pub lines: Vec<Line>,
    /// Each department's score in the periods before, oldest first (for trends).
    pub trend: BTreeMap<String, Vec<(String, Option<f64>)>>,
}

/// The weights: `evaluation.toml` in the hub's directory, or the defaults.
pub fn weights(hub_dir: &Path) -> Result<Weights, String> {
    let path = HubPaths::new(hub_dir).dir.join("evaluation.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => Weights::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Weights::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// A delivery or a found lookup logged at a child hub: (hub, the consumer
/// it was logged for, day, the delivery range or None for a lookup, rows,
/// its entry in the hub's log).
type RemoteDelivery = (String, NodeId, i64, Option<(u64, u64)>, u64, u64);

/// What the report is made from, read once.
struct Observed {
    /// (department, enrolled here at, revoked at)
    departments: Vec<(NodeId, Option<i64>, Option<i64>)>,
    entries: Vec<Entry>,
    catalogue: Vec<CatalogEntry>,
    records: Vec<gdx_common::grant::RequestRecord>,
    notices: Vec<gdx_common::notice::Notice>,
    checks: Vec<gdx_common::discipline::Check>,
    items: Option<gdx_common::items::Consistency>,
    /// What child hubs observed of their departments, by department.
    remote: HashMap<String, Vec<(String, DayFacts)>>,
    /// Deliveries and found lookups logged at child hubs, by request:
    /// (hub, day, from, to, rows, entry); a lookup has no range.
    remote_deliveries: HashMap<String, Vec<RemoteDelivery>>,
}

fn observe(hub_dir: &Path, hub: &NodeId, division: Option<DivisionCode>, from_day: i64) -> anyhow::Result<Observed> {
    let paths = HubPaths::new(hub_dir);
    let store = Store::open(&paths)?;
    let within = |n: &NodeId| division.is_none_or(|d| d.contains(n.division()));
    let mut departments: BTreeMap<String, (NodeId, Option<i64>, Option<i64>)> = BTreeMap::new();
    for n in store.nodes()? {
        if n.role == "agent"
            && let Ok(node) = NodeId::parse(&n.node)
            && within(&node)
        {
            departments.insert(n.node.clone(), (node, Some(n.enrolled_at), n.revoked_at));
        }
    }
    for r in store.remote_nodes()? {
        if r.role == "agent"
            && let Ok(node) = NodeId::parse(&r.node)
            && within(&node)
        {
            departments.entry(r.node.clone()).or_insert((node, None, r.revoked_at));
        }
    }
    let log = AuditLog::open(hub_dir, &hub.to_string())?;
    let entries = log.list(&AuditFilter::default())?;
    let catalog = Catalog::open_as_configured(hub_dir)?;
    let catalogue: Vec<CatalogEntry> = catalog
        .list(&CatalogFilter::default(), crate::util::now())?
        .into_iter()
        .filter(|l| !l.withdrawn)
        .map(|l| l.entry)
        .collect();
    let exchange = Exchange::open(hub_dir, hub.clone())?;
    let records = exchange.list(crate::exchange::clock())?.into_iter().map(|l| l.record).collect();
    let mut remote: HashMap<String, Vec<(String, DayFacts)>> = HashMap::new();
    let mut remote_deliveries: HashMap<String, Vec<_>> = HashMap::new();
    for (via, f) in store.observations_from(from_day)? {
        for (r, from, to, rows, entry) in &f.deliveries {
            remote_deliveries.entry(r.clone()).or_default().push((
                via.clone(),
                f.node.clone(),
                f.day,
                Some((*from, *to)),
                *rows,
                *entry,
            ));
        }
        for (r, entry) in &f.lookups {
            remote_deliveries.entry(r.clone()).or_default().push((via.clone(), f.node.clone(), f.day, None, 0, *entry));
        }
        remote.entry(f.node.to_string()).or_default().push((via, f));
    }
    let items = crate::store::vault::Vaults::at(hub_dir)
        .ok()
        .and_then(|v| crate::items::analyse(&v, &crate::items::Filter::default()).ok())
        .filter(|a| a.reference)
        .map(|a| a.report);
    Ok(Observed {
        departments: departments.into_values().collect(),
        entries,
        catalogue,
        records,
        notices: exchange.notices(None)?,
        checks: exchange.checks(None)?,
        items,
        remote,
        remote_deliveries,
    })
}

/// The report of `period` for the departments of `division` (all when None).
pub fn report(hub_dir: &Path, period: Period, division: Option<DivisionCode>, trail: usize) -> anyhow::Result<Report> {
    let config = crate::config::HubConfig::load(&HubPaths::new(hub_dir))?;
    let hub = config.hub_id();
    let weights = weights(hub_dir).map_err(anyhow::Error::msg)?;
    // ranks are among all the departments; --division only narrows what is shown
    // the facts of child hubs from before the first period of the trend by
    // the longest 更新周期 (a yearly resource's last change counts in it)
    let first_day = period.trail(trail).first().map_or(period.start_day, |p| p.start_day) - 400;
    let seen = observe(hub_dir, &hub, None, first_day)?;
    let store = Store::open(&HubPaths::new(hub_dir))?;
    let quality =
        |node: &NodeId, from: i64, to: i64| store.quality_during(&node.to_string(), from, to).unwrap_or_default();
    let now = crate::exchange::clock();
    if period.start() > now {
        return Err(crate::cli::Usage(format!("period {} has not begun", period.label())).into());
    }
    let spans = |n: &NodeId, a: i64, b: i64| store.connected_during(n, a, b).ok().flatten();
    let shown = |l: &Line| division.is_none_or(|d| d.contains(l.scored.node.division()));
    let mut lines = score_period(&seen, period, &weights, &quality, &spans, now);
    lines.retain(shown);
    let mut trend: BTreeMap<String, Vec<(String, Option<f64>)>> = BTreeMap::new();
    for p in period.trail(trail) {
        let mut past =
            if p == period { lines.clone() } else { score_period(&seen, p, &weights, &quality, &spans, now) };
        past.retain(shown);
        for l in past {
            trend.entry(l.scored.node.to_string()).or_default().push((p.label(), l.scored.score));
        }
    }
    Ok(Report {
        period: period.label(),
        hub: hub.to_string(),
        division: division.map(|d| d.to_string()),
        weights,
        lines,
        trend,
    })
}

/// Each resource's last quality report in a window: (resource, at, scanned, quarantined).
type Reports<'a> = &'a dyn Fn(&NodeId, i64, i64) -> Vec<(String, i64, u64, u64)>;

type Spans<'a> = &'a dyn Fn(&NodeId, i64, i64) -> Option<(i64, Vec<(i64, i64)>)>;

/// Every department's line for one period.
fn score_period(
    seen: &Observed,
    period: Period,
    weights: &Weights,
    quality: Reports<'_>,
    spans: Spans<'_>,
    now: i64,
) -> Vec<Line> {
    // a period still running is observed up to now, and scored on that
    let start = period.start();
    let end = period.end().min(now.max(start + 1));
    let observed = Period { start_day: period.start_day, end_day: period.end_day.min(now.div_euclid(86_400) + 1) };
    let in_period = |at: i64| at >= start && at < end;
    let mut events: BTreeMap<String, BTreeMap<&'static str, Vec<u64>>> = BTreeMap::new();
    let mut departments = Vec::new();
    let mut enrolled: BTreeMap<String, i64> = BTreeMap::new();
    for e in seen.entries.iter().filter(|e| e.event.kind == "enrolled") {
        if let Some(n) = &e.event.node {
            let first = enrolled.entry(n.clone()).or_insert(e.event.at);
            *first = (*first).min(e.event.at);
        }
    }
    // the log read once into what each department and each request concerns
    let mut by_node: HashMap<&str, Vec<&Entry>> = HashMap::new();
    let mut by_request: HashMap<&str, Vec<&Entry>> = HashMap::new();
    for e in &seen.entries {
        if let Some(n) = e.event.node.as_deref() {
            by_node.entry(n).or_default().push(e);
        }
        if let Some(r) = e.event.request.as_deref() {
            by_request.entry(r).or_default().push(e);
        }
    }
    let of_request = |id: &str| by_request.get(id).into_iter().flatten().copied();
    let mut elsewhere: BTreeMap<String, BTreeMap<&'static str, Vec<String>>> = BTreeMap::new();
    let period_day = |day: i64| day >= period.start_day && day < observed.end_day;
    for (node, enrolled_at, revoked_at) in &seen.departments {
        let me = node.to_string();
        // what a child hub observed of it, if it is attached below
        let remote: &[(String, DayFacts)] = seen.remote.get(&me).map_or(&[], Vec::as_slice);
        let enrolled_at = enrolled
            .get(&me)
            .copied()
            .or(*enrolled_at)
            .or_else(|| remote.iter().filter_map(|(_, f)| f.enrolled_at).min());
        if enrolled_at.is_some_and(|t| t > end) || revoked_at.is_some_and(|t| t <= start) {
            continue; // not a department in this period
        }
        let (from, until) = (enrolled_at.map_or(start, |t| t.max(start)), revoked_at.map_or(end, |t| t.min(end)));
        let coverage = ((until - from).max(0) as f64 / (end - start) as f64).min(1.0);
        let ev = events.entry(me.clone()).or_default();
        let there = elsewhere.entry(me.clone()).or_default();
        let cite = |via: &str, entry: u64| format!("{via}#{entry}");
        let mut i = Indicators::default();
        let mine: &[&Entry] = by_node.get(me.as_str()).map_or(&[], Vec::as_slice);

        // catalogue
        let own: Vec<&CatalogEntry> = seen.catalogue.iter().filter(|c| &c.provider == node).collect();
        i.resources_declared = own.len() as u64;
        let catalogued: Vec<&Entry> =
            mine.iter().copied().filter(|e| e.event.kind == "catalogued" && in_period(e.event.at)).collect();
        i.entries_changed = catalogued.len() as u64;
        ev.insert("catalogue", catalogued.iter().map(|e| e.index).collect());

        // freshness: each resource with a cycle, its changesets observed here
        let (mut fresh_events, mut fresh_elsewhere) = (Vec::new(), Vec::new());
        let resources: Vec<(i64, Vec<i64>)> = own
            .iter()
            .filter_map(|c| {
                let allowed = c.update_cycle.overdue_after_days()?;
                let changes: Vec<&Entry> = mine
                    .iter()
                    .copied()
                    .filter(|e| e.event.kind == "changeset" && e.event.at < end)
                    .filter(|e| e.event.resource.as_deref() == Some(c.resource.as_str()))
                    .collect();
                fresh_events.extend(changes.iter().filter(|e| in_period(e.event.at)).map(|e| e.index));
                let mut times: Vec<i64> = changes.iter().map(|e| e.event.at).collect();
                for (via, f) in remote.iter().filter(|(_, f)| f.day < observed.end_day) {
                    for ch in f.changes.iter().filter(|ch| ch.resource == c.resource.as_str()) {
                        times.push(ch.first_at);
                        if period_day(f.day) {
                            fresh_elsewhere.push(cite(via, ch.entry));
                        }
                    }
                }
                (!times.is_empty()).then_some((allowed, times))
            })
            .collect();
        i.freshness = freshness(observed, &resources);
        ev.insert("freshness", fresh_events);
        there.insert("freshness", fresh_elsewhere);

        // quality: the last report of each resource made in the period
        let mut reports = quality(node, start, end);
        if reports.is_empty() {
            // as a child hub reported them: each resource's last of the period
            let mut last: BTreeMap<&str, &(String, i64, u64, u64)> = BTreeMap::new();
            for q in remote.iter().filter(|(_, f)| period_day(f.day)).flat_map(|(_, f)| &f.quality) {
                if q.1 >= start && q.1 < end && last.get(q.0.as_str()).is_none_or(|l| l.1 <= q.1) {
                    last.insert(&q.0, q);
                }
            }
            reports = last.into_values().cloned().collect();
        }
        let (scanned, set_aside) =
            reports.iter().fold((0u64, 0u64), |(s, q), r| (s.saturating_add(r.2), q.saturating_add(r.3)));
        i.quality = share(scanned.saturating_sub(set_aside), scanned);

        // availability: the stretches it was connected here
        // from its enrolment, or from when this hub began logging connections
        i.availability = spans(node, from, until).map(|(observed_from, s)| {
            s.iter().map(|(a, b)| (b - a).max(0)).sum::<i64>() as f64 / (until - observed_from).max(1) as f64
        });
        if i.availability.is_none() {
            let (seen_s, on) = remote
                .iter()
                .filter(|(_, f)| period_day(f.day) && f.day * 86_400 < until)
                .filter_map(|(_, f)| f.connected)
                .fold((0, 0), |(s, o), (a, b)| (s + a, o + b));
            i.availability = (seen_s > 0).then(|| on as f64 / seen_s as f64);
        }

        // responsiveness: 有条件共享 requests to it due in the period (or answered in it)
        let mut answered_in_time = 0;
        let mut due = 0;
        let mut days = Vec::new();
        let mut resp_events = Vec::new();
        // the record says when it was filed and answered (both on the exchange's clock), wherever
        // the request and the decision entries were logged (the consumer's and the provider's hub)
        for r in seen.records.iter().filter(|r| &r.provider == node) {
            // only 有条件共享 waits for an answer (无条件共享 is granted, 不予共享 refused, at filing)
            let conditional = seen
                .catalogue
                .iter()
                .find(|c| c.code == r.code)
                .is_some_and(|c| c.sharing_type == gdx_common::catalog::SharingType::Conditional);
            if !conditional || matches!(r.status, Status::Refused { .. }) {
                continue;
            }
            let answered_at = match r.status {
                Status::Pending { .. } => None,
                _ => r.decided_at,
            };
            let deadline = add_working_days(r.filed_at.div_euclid(86_400), ANSWER_WITHIN_WORKING_DAYS);
            let counted = match answered_at {
                Some(at) => in_period(at),
                None => (deadline + 1) * 86_400 > start && (deadline + 1) * 86_400 <= end,
            };
            if !counted {
                continue;
            }
            due += 1;
            resp_events.extend(
                of_request(&r.id).filter(|e| matches!(e.event.kind.as_str(), "request" | "decision")).map(|e| e.index),
            );
            if let Some(at) = answered_at {
                days.push((at - r.filed_at) as f64 / 86_400.0);
                answered_in_time += u64::from(at.div_euclid(86_400) <= deadline);
            }
        }
        i.responsiveness = share(answered_in_time, due);
        i.median_answer_days = median(days).map(|d| (d * 10.0).round() / 10.0);
        ev.insert("responsiveness", resp_events);

        // sharing
        i.grants_served = seen
            .records
            .iter()
            .filter(|r| &r.provider == node && r.status == Status::Granted && r.decided_at.is_some_and(|t| t < end))
            .count() as u64;
        let (mut share_events, mut share_elsewhere) = (Vec::new(), Vec::new());
        let mut looked_up = BTreeSet::new();
        // a re-fetch of the same deliveries is logged again: each range counts once
        let mut ranges = BTreeSet::new();
        let served = seen.records.iter().filter(|r| &r.provider == node);
        for (r, e) in served.flat_map(|r| of_request(&r.id).filter(|e| in_period(e.event.at)).map(move |e| (r, e))) {
            match e.event.kind.as_str() {
                "delivered" => {
                    let d = &e.event.detail;
                    if ranges.insert((r.id.clone(), d["from"].as_u64(), d["to"].as_u64())) {
                        i.rows_delivered += d["rows"].as_u64().unwrap_or(0);
                        share_events.push(e.index);
                    }
                }
                "lookup" if found(e) => {
                    i.lookups_answered += 1;
                    share_events.push(e.index);
                }
                _ => {}
            }
        }
        // and those logged at a child hub where the consumer is attached
        for r in seen.records.iter().filter(|r| &r.provider == node) {
            for (via, consumer, day, range, rows, entry) in seen.remote_deliveries.get(&r.id).into_iter().flatten() {
                // a child hub speaks of what it served its own departments under this request only
                if !period_day(*day) || consumer != &r.consumer {
                    continue;
                }
                match range {
                    Some((a, b)) if ranges.insert((r.id.clone(), Some(*a), Some(*b))) => {
                        i.rows_delivered = i.rows_delivered.saturating_add(*rows);
                        share_elsewhere.push(cite(via, *entry));
                    }
                    None if looked_up.insert((via.as_str(), *entry)) => {
                        i.lookups_answered += 1;
                        share_elsewhere.push(cite(via, *entry));
                    }
                    _ => {}
                }
            }
        }
        ev.insert("sharing", share_events);
        there.insert("sharing", share_elsewhere);

        // supervision: notices due in the period, checks made in it
        let notices: Vec<&gdx_common::notice::Notice> = seen
            .notices
            .iter()
            .filter(|n| &n.to == node && n.claim_by_day >= period.start_day && n.claim_by_day < period.end_day)
            .collect();
        // a notice still pending before its day is not yet due: it counts once settled or late
        let settled = |n: &&gdx_common::notice::Notice| match &n.state {
            gdx_common::notice::NoticeState::Passed { at, .. } => at.div_euclid(86_400) <= n.claim_by_day,
            _ => n.state_at(end) == "claimed",
        };
        let due: Vec<&&gdx_common::notice::Notice> = notices.iter().filter(|n| n.state_at(end) != "pending").collect();
        i.notices_in_time = share(due.iter().filter(|n| settled(n)).count() as u64, due.len() as u64);
        let checks: Vec<&gdx_common::discipline::Check> =
            seen.checks.iter().filter(|c| &c.node == node && in_period(c.at)).collect();
        i.checks_with_feedback =
            share(checks.iter().filter(|c| c.feedback.is_some()).count() as u64, checks.len() as u64);
        let linked = |kind: &str, ids: Vec<&str>| -> Vec<u64> {
            ids.into_iter().flat_map(|id| of_request(id).filter(|e| e.event.kind == kind).map(|e| e.index)).collect()
        };
        ev.insert("notices", linked("notice", notices.iter().map(|n| n.id.as_str()).collect()));
        ev.insert("checks", linked("check", checks.iter().map(|c| c.id.as_str()).collect()));

        // service items, as the library stands
        i.items_consistent = seen.items.as_ref().and_then(|r| {
            let find = |v: &[(NodeId, u64)]| v.iter().find(|(n, _)| n == node).map(|(_, k)| *k);
            share(find(&r.consistent)?, find(&r.compared)?)
        });
        departments.push((node.clone(), i, coverage));
    }
    rank(weights, departments)
        .into_iter()
        .map(|scored| {
            let me = scored.node.to_string();
            Line {
                enrolled_at: enrolled
                    .get(&me)
                    .copied()
                    .or_else(|| seen.departments.iter().find(|(n, _, _)| n == &scored.node).and_then(|(_, t, _)| *t))
                    .or_else(|| seen.remote.get(&me).and_then(|r| r.iter().filter_map(|(_, f)| f.enrolled_at).min())),
                events: events.remove(&me).unwrap_or_default(),
                elsewhere: elsewhere
                    .remove(&me)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .collect(),
                scored,
            }
        })
        .collect()
}

/// A lookup that found its record, or a box query that found some.
fn found(e: &Entry) -> bool {
    e.event.detail["found"] == true || e.event.detail["found"].as_u64().is_some_and(|n| n > 0)
}

/// Trend points shown: this period and the 11 before it.
pub const TREND: usize = 12;

/// `gdx-hub report`: on the terminal, as JSON, or into `out` (`.xlsx`,
/// `.html`, or `.pdf` through headless Chromium).
pub fn print(
    hub_dir: &Path,
    period: &str,
    division: Option<&str>,
    out: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let period = Period::parse(period).map_err(crate::cli::Usage)?;
    let division = division
        .map(|d| DivisionCode::parse(d).map_err(|e| crate::cli::Usage(format!("--division {d:?}: {e}"))))
        .transpose()?;
    let r = report(hub_dir, period, division, TREND)?;
    let Some(path) = out else {
        match json {
            true => println!("{}", serde_json::to_string_pretty(&r)?),
            false => print!("{}", render::text(&r)),
        }
        return Ok(());
    };
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("xlsx") => render::xlsx(&r).map_err(anyhow::Error::msg)?,
        Some("html") => render::html(&r).into_bytes(),
        Some("pdf") => pdf(&render::html(&r))?,
        _ => {
            return Err(crate::cli::Usage(format!("--out {}: name a .xlsx, .html or .pdf file", path.display())).into());
        }
    };
    let partial = path.with_extension("partial");
    std::fs::write(&partial, &bytes)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    println!("wrote {} ({} departments, period {})", path.display(), r.lines.len(), r.period);
    Ok(())
}

/// The page printed to PDF by headless Chromium (the Debian package).
fn pdf(html: &str) -> anyhow::Result<Vec<u8>> {
    let chromium = ["chromium", "chromium-browser"]
        .iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .ok_or_else(|| anyhow::anyhow!("a PDF is printed by headless Chromium, which is not installed: `apt install chromium`, or write .html or .xlsx"))?;
    // a private folder of this run, removed after
    let dir = std::env::temp_dir().join(format!("gdx-report-{}-{}", std::process::id(), crate::util::now_ms()));
    gdx_files::create_private_dir(&dir)?;
    let printed = print_pdf(chromium, &dir, html);
    let _ = std::fs::remove_dir_all(&dir);
    printed
}

fn print_pdf(chromium: &str, dir: &Path, html: &str) -> anyhow::Result<Vec<u8>> {
    let page = dir.join("report.html");
    let out = dir.join("report.pdf");
    std::fs::write(&page, html)?;
    let status = std::process::Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--print-to-pdf={}", out.display()))
        .arg(format!("file://{}", page.display()))
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() || !out.exists() {
        anyhow::bail!("headless Chromium did not print the report ({status}); write .html and print it from a browser");
    }
    Ok(std::fs::read(&out)?)
}
