//! 考核督促: how departments share, per period, from what the platform
//! observed — indicators, a weighted score, rankings within each level.
//!
//! Pure code: the hub gathers the observations (audit entries, requests,
//! notices, checks, quality reports, connections, the items report) and
//! this module turns them into indicators, each with the audit entries it
//! counts, so that an auditor can check any figure. An indicator with
//! nothing observed is `None`, never 0 or 100; a department enrolled during
//! the period is scored on the part it was there and marked partial.

use serde::{Deserialize, Serialize};

use crate::{DivisionLevel, NodeId};

/// A month (`2026-11`) or a quarter (`2026-Q4`): days since 1970, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start_day: i64,
    pub end_day: i64,
}

impl Period {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("--period {text:?} is not a month (2026-11) or a quarter (2026-Q4)");
        let (y, rest) = text.trim().split_once('-').ok_or_else(bad)?;
        let y: i64 = y.parse().ok().filter(|y| (2000..=2100).contains(y)).ok_or_else(bad)?;
        let (first, months) = match rest.strip_prefix('Q').or_else(|| rest.strip_prefix('q')) {
            Some(q) => {
                let q: u32 = q.parse().ok().filter(|q| (1..=4).contains(q)).ok_or_else(bad)?;
                (3 * q - 2, 3)
            }
            None => (rest.parse().ok().filter(|m| (1..=12).contains(m)).ok_or_else(bad)?, 1),
        };
        let start = crate::units::days_from_civil(y, first, 1);
        let (ny, nm) = if first + months > 12 { (y + 1, first + months - 12) } else { (y, first + months) };
        Ok(Self { start_day: start, end_day: crate::units::days_from_civil(ny, nm, 1) })
    }

    /// The periods of the same kind before this one, oldest first, this one last.
    pub fn trail(self, n: usize) -> Vec<Period> {
        let mut out = vec![self];
        let mut p = self;
        while out.len() < n {
            let len = p.end_day - p.start_day;
            // step back by a month or a quarter: the period before ends where this starts
            let start = Self::month_start(p.start_day - if len > 40 { 80 } else { 20 });
            let start = if len > 40 { Self::quarter_start(start) } else { start };
            p = Period { start_day: start, end_day: p.start_day };
            out.push(p);
        }
        out.reverse();
        out
    }

    fn month_start(day: i64) -> i64 {
        let (y, m, _) = crate::units::civil_from_days(day);
        crate::units::days_from_civil(y, m, 1)
    }

    fn quarter_start(day: i64) -> i64 {
        let (y, m, _) = crate::units::civil_from_days(day);
        crate::units::days_from_civil(y, (m - 1) / 3 * 3 + 1, 1)
    }

    pub fn start(&self) -> i64 {
        self.start_day * 86_400
    }

    pub fn end(&self) -> i64 {
        self.end_day * 86_400
    }

    pub fn label(&self) -> String {
        let (y, m, _) = crate::units::civil_from_days(self.start_day);
        match self.end_day - self.start_day > 40 {
            true => format!("{y}-Q{}", (m - 1) / 3 + 1),
            false => format!("{y}-{m:02}"),
        }
    }
}

/// What a hub observed of one of its departments on one day, sent up to
/// its parent (`Message::Observations`) so that the province scores the
/// departments attached to the hubs below it on what those hubs saw. The
/// parent replaces a (node, day) whole with each report, and takes only
/// days of nodes in the sending hub's subtree ([`DayFacts::check`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayFacts {
    pub node: NodeId,
    /// Days since 1970 (UTC).
    pub day: i64,
    /// When the department first enrolled at that hub.
    pub enrolled_at: Option<i64>,
    /// The resources changed that day: the first changeset (when, its entry in the hub's log) and how many.
    pub changes: Vec<DayChange>,
    /// Seconds of the day the hub's connection log covered, and of those connected (None: not logged).
    pub connected: Option<(i64, i64)>,
    /// The day's last quality report of each resource: (resource, at, scanned, quarantined).
    pub quality: Vec<(String, i64, u64, u64)>,
    /// Deliveries this department received that day: (request, from, to, rows, entry).
    pub deliveries: Vec<(String, u64, u64, u64, u64)>,
    /// Lookups answered to it that day that found records: (request, entry).
    pub lookups: Vec<(String, u64)>,
}

/// One resource's changes on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayChange {
    pub resource: String,
    pub first_at: i64,
    pub entry: u64,
    pub count: u64,
}

/// At most this many days of facts in one `Observations` message, and this
/// many items in any list of one day (the rest of a busy day is cut, and
/// the figures built from it say fewer than happened, never more).
pub const MAX_FACTS: usize = 2_000;
pub const MAX_DAY_ITEMS: usize = 500;
/// A parent takes no day older than this, and no count of rows above `MAX_ROWS`.
pub const MAX_AGE_DAYS: i64 = 800;
pub const MAX_ROWS: u64 = 1 << 40;

impl DayFacts {
    /// Whether a parent takes these facts from the child hub `via`: a
    /// department (not a hub) of the child's own subtree, a day not after
    /// `today`, lists within bounds and figures that add up.
    pub fn check(&self, via: &NodeId, today: i64) -> Result<(), String> {
        let node = &self.node;
        if node == via || !via.division().contains(node.division()) {
            return Err(format!("{via} reported observations of {node}, which is not in its subtree"));
        }
        if node.is_hub_id() {
            return Err(format!("{via} reported observations of a hub, {node}"));
        }
        if self.day > today + 1 {
            return Err(format!("{via} reported observations of {node} for a day that has not come"));
        }
        if self.day < today - MAX_AGE_DAYS {
            return Err(format!("{via} reported observations of {node} older than {MAX_AGE_DAYS} days"));
        }
        let lists = [self.changes.len(), self.quality.len(), self.deliveries.len(), self.lookups.len()];
        if lists.iter().any(|n| *n > MAX_DAY_ITEMS) {
            return Err(format!("{via} reported more than {MAX_DAY_ITEMS} items of one day of {node}"));
        }
        let names = self.changes.iter().map(|c| &c.resource).chain(self.quality.iter().map(|q| &q.0));
        let requests = self.deliveries.iter().map(|d| &d.0).chain(self.lookups.iter().map(|l| &l.0));
        if names.chain(requests).any(|n| n.is_empty() || n.len() > 64) {
            return Err(format!("{via} reported a resource or request name of {node} that is empty or too long"));
        }
        let in_day = |at: i64| at.div_euclid(86_400) == self.day;
        if self.changes.iter().any(|c| !in_day(c.first_at) || c.count == 0)
            || self.connected.is_some_and(|(seen, on)| !(0..=86_400).contains(&seen) || on < 0 || on > seen)
            || self.quality.iter().any(|q| q.3 > q.2 || q.2 > MAX_ROWS)
            || self.deliveries.iter().any(|d| d.1 > d.2 || d.3 > MAX_ROWS)
        {
            return Err(format!("{via} reported observations of {node} on day {} that do not add up", self.day));
        }
        Ok(())
    }
}

/// The indicators of one department in one period. Each share is 0..=1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Indicators {
    /// Catalogue entries it declared (at the period's end) and versions published in the period.
    pub resources_declared: u64,
    pub entries_changed: u64,
    /// Share of resource-days not overdue against each resource's 更新周期.
    pub freshness: Option<f64>,
    /// Share of rows read that were not set aside (1 - quarantined share).
    pub quality: Option<f64>,
    /// Resources whose forwarding is held.
    pub held: u64,
    /// Share of the period its agent was connected.
    pub availability: Option<f64>,
    /// Share of 有条件共享 requests answered within 10 working days, and the median answer in days.
    pub responsiveness: Option<f64>,
    pub median_answer_days: Option<f64>,
    /// Grants it served, rows delivered from it, lookups answered from its data.
    pub grants_served: u64,
    pub rows_delivered: u64,
    pub lookups_answered: u64,
    /// Share of 双告知 notices claimed in time; share of 联合惩戒 checks with feedback.
    pub notices_in_time: Option<f64>,
    pub checks_with_feedback: Option<f64>,
    /// Share of its service items consistent with the provincial library.
    pub items_consistent: Option<f64>,
}

/// What each scored indicator weighs, and the bands of the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub freshness: f64,
    pub quality: f64,
    pub availability: f64,
    pub responsiveness: f64,
    pub notices: f64,
    pub checks: f64,
    pub items: f64,
    /// A score at or above it is 优秀, 良好, 合格; below `pass` 不合格.
    #[serde(default = "default_excellent")]
    pub excellent: f64,
    #[serde(default = "default_good")]
    pub good: f64,
    #[serde(default = "default_pass")]
    pub pass: f64,
}

fn default_excellent() -> f64 {
    90.0
}
fn default_good() -> f64 {
    75.0
}
fn default_pass() -> f64 {
    60.0
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            freshness: 25.0,
            quality: 15.0,
            availability: 15.0,
            responsiveness: 20.0,
            notices: 10.0,
            checks: 5.0,
            items: 10.0,
            excellent: default_excellent(),
            good: default_good(),
            pass: default_pass(),
        }
    }
}

impl Weights {
    /// `evaluation.toml`'s `[weights]`, checked: no negative weight, bands in order.
    pub fn parse(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            weights: Weights,
        }
        let w = toml::from_str::<File>(text).map_err(|e| format!("not valid: {}", e.message()))?.weights;
        let all = [w.freshness, w.quality, w.availability, w.responsiveness, w.notices, w.checks, w.items];
        if all.iter().any(|x| !x.is_finite() || *x < 0.0) || all.iter().sum::<f64>() <= 0.0 {
            return Err("weights must be numbers of 0 or more, not all 0".into());
        }
        if !(w.pass <= w.good && w.good <= w.excellent && w.excellent <= 100.0 && w.pass >= 0.0) {
            return Err("the bands must rise: 0 ≤ pass ≤ good ≤ excellent ≤ 100".into());
        }
        Ok(w)
    }

    /// The scored indicators: (name, weight, value).
    pub fn parts(&self, i: &Indicators) -> [(&'static str, f64, Option<f64>); 7] {
        [
            ("freshness", self.freshness, i.freshness),
            ("quality", self.quality, i.quality),
            ("availability", self.availability, i.availability),
            ("responsiveness", self.responsiveness, i.responsiveness),
            ("notices", self.notices, i.notices_in_time),
            ("checks", self.checks, i.checks_with_feedback),
            ("items", self.items, i.items_consistent),
        ]
    }

    /// The score (0–100) over the indicators observed, and those not
    /// observed; None when nothing weighed was observed.
    pub fn score(&self, i: &Indicators) -> (Option<f64>, Vec<&'static str>) {
        let parts = self.parts(i);
        let missing: Vec<&'static str> =
            parts.iter().filter(|(_, w, v)| *w > 0.0 && v.is_none()).map(|(n, _, _)| *n).collect();
        let (sum, weight) = parts
            .iter()
            .filter_map(|(_, w, v)| v.map(|v| (w * v.clamp(0.0, 1.0), *w)))
            .fold((0.0, 0.0), |(s, t), (x, w)| (s + x, t + w));
        let score = (weight > 0.0).then(|| (sum / weight * 1000.0).round() / 10.0);
        (score, missing)
    }

    pub fn band(&self, score: f64) -> &'static str {
        if score >= self.excellent {
            "优秀"
        } else if score >= self.good {
            "良好"
        } else if score >= self.pass {
            "合格"
        } else {
            "不合格"
        }
    }
}

/// One department's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub node: NodeId,
    pub indicators: Indicators,
    pub score: Option<f64>,
    pub band: Option<String>,
    /// Indicators weighed but not observed.
    pub not_observed: Vec<String>,
    /// Share of the period the department was enrolled (1: all of it).
    pub coverage: f64,
    /// Its rank within its level (province, prefecture, county departments), 1 first.
    pub rank_in_level: Option<u32>,
    /// Its rank within its prefecture (county and prefecture departments of it).
    pub rank_in_division: Option<u32>,
}

impl Scored {
    /// Enrolled for part of the period only.
    pub fn partial(&self) -> bool {
        self.coverage < 1.0
    }
}

/// Scores every department and ranks them: within each level, and within
/// each prefecture; ties share a rank; departments with no score are not ranked.
pub fn rank(weights: &Weights, departments: Vec<(NodeId, Indicators, f64)>) -> Vec<Scored> {
    let mut out: Vec<Scored> = departments
        .into_iter()
        .map(|(node, indicators, coverage)| {
            let (score, missing) = weights.score(&indicators);
            Scored {
                band: score.map(|s| weights.band(s).to_owned()),
                node,
                indicators,
                score,
                not_observed: missing.into_iter().map(str::to_owned).collect(),
                coverage,
                rank_in_level: None,
                rank_in_division: None,
            }
        })
        .collect();
    let level = |n: &NodeId| n.division().level();
    let prefecture = |n: &NodeId| (level(n) != DivisionLevel::Province).then(|| n.division().prefecture());
    let ranks = |same: &dyn Fn(&Scored, &Scored) -> bool, out: &[Scored]| -> Vec<Option<u32>> {
        out.iter()
            .map(|a| {
                let s = a.score?;
                Some(1 + out.iter().filter(|b| same(a, b) && b.score.is_some_and(|t| t > s)).count() as u32)
            })
            .collect()
    };
    let by_level = ranks(&|a, b| level(&a.node) == level(&b.node), &out);
    let by_division = ranks(&|a, b| prefecture(&a.node).is_some() && prefecture(&a.node) == prefecture(&b.node), &out);
    for ((s, l), d) in out.iter_mut().zip(by_level).zip(by_division) {
        s.rank_in_level = l;
        s.rank_in_division = d.filter(|_| prefecture(&s.node).is_some());
    }
    out.sort_by(|a, b| {
        (level(&a.node) as u8, a.rank_in_level.unwrap_or(u32::MAX), a.node.to_string()).cmp(&(
            level(&b.node) as u8,
            b.rank_in_level.unwrap_or(u32::MAX),
            b.node.to_string(),
        ))
    });
    out
}

/// The median of `values` (None when empty).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 })
}

/// `part / whole` as a share, None when `whole` is 0 (nothing observed).
pub fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The share of resource-days in `period` not overdue, for resources with
/// a cycle of `allowed` days and their change times (Unix seconds, any
/// order, from before the period too), counted from each resource's first
/// change (before it existed it cannot be overdue).
pub fn freshness(period: Period, resources: &[(i64, Vec<i64>)]) -> Option<f64> {
    let (mut fresh, mut days) = (0u64, 0u64);
    for (allowed, changes) in resources {
        let mut changes: Vec<i64> = changes.iter().map(|t| t.div_euclid(86_400)).collect();
        changes.sort_unstable();
        let Some(first) = changes.first().copied() else { continue };
        for day in period.start_day.max(first)..period.end_day {
            let last = changes.iter().rev().find(|c| **c <= day).copied().unwrap_or(first);
            days += 1;
            fresh += u64::from(day - last <= *allowed);
        }
    }
    share(fresh, days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::parse_date;

    fn node(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    #[test]
    fn periods_read_as_months_and_quarters() {
        let nov = Period::parse("2026-11").unwrap();
        assert_eq!(
            (nov.start_day, nov.end_day),
            (parse_date("2026-11-01").unwrap(), parse_date("2026-12-01").unwrap())
        );
        let q4 = Period::parse("2026-Q4").unwrap();
        assert_eq!((q4.start_day, q4.end_day), (parse_date("2026-10-01").unwrap(), parse_date("2027-01-01").unwrap()));
        assert_eq!(q4.label(), "2026-Q4");
        let trail: Vec<String> = nov.trail(3).iter().map(Period::label).collect();
        assert_eq!(trail, ["2026-09", "2026-10", "2026-11"]);
        let quarters: Vec<String> = q4.trail(2).iter().map(Period::label).collect();
        assert_eq!(quarters, ["2026-Q3", "2026-Q4"]);
        assert!(Period::parse("2026-13").unwrap_err().contains("not a month"));
    }

    #[test]
    fn freshness_counts_resource_days_within_the_cycle() {
        let nov = Period::parse("2026-11").unwrap();
        let at = |d: &str| parse_date(d).unwrap() * 86_400 + 3600;
        // daily (3 days allowed), changed 10-30 and 11-20 only: fresh 11-01, 11-02 and 11-20..11-23
        let daily = (3, vec![at("2026-10-30"), at("2026-11-20")]);
        assert_eq!(freshness(nov, std::slice::from_ref(&daily)), Some(6.0 / 30.0));
        // a resource first seen on 11-21 counts from then: 11-21..11-24 fresh of 10 days
        let new = (3, vec![at("2026-11-21")]);
        assert_eq!(freshness(nov, std::slice::from_ref(&new)), Some(0.4));
        assert_eq!(freshness(nov, &[daily, new]), Some(10.0 / 40.0));
        assert_eq!(freshness(nov, &[]), None, "nothing observed is not 0");
    }

    #[test]
    fn a_parent_takes_a_child_hubs_facts_only_of_its_subtree_and_when_they_add_up() {
        let xining = node("630100/hub");
        let day = 20_000;
        let facts = DayFacts {
            node: node("630121/scjg"),
            day,
            enrolled_at: Some(day * 86_400 - 100),
            changes: vec![DayChange { resource: "r".into(), first_at: day * 86_400 + 5, entry: 7, count: 3 }],
            connected: Some((86_400, 40_000)),
            quality: vec![("r".into(), day * 86_400 + 9, 10, 2)],
            deliveries: vec![],
            lookups: vec![],
        };
        assert_eq!(facts.check(&xining, day), Ok(()));
        let bad = |f: &dyn Fn(&mut DayFacts)| {
            let mut d = facts.clone();
            f(&mut d);
            d.check(&xining, day).unwrap_err()
        };
        assert!(bad(&|d| d.node = node("632522/scjg")).contains("not in its subtree"));
        assert!(bad(&|d| d.node = node("630121/hub")).contains("a hub"));
        assert!(bad(&|d| d.node = xining.clone()).contains("not in its subtree"));
        assert!(bad(&|d| d.day = day + 2).contains("has not come"));
        assert!(bad(&|d| d.day = day - 900).contains("older than"));
        assert!(bad(&|d| d.changes[0].resource = "x".repeat(65)).contains("too long"));
        assert!(bad(&|d| d.deliveries = vec![("r".into(), 5, 4, 1, 1)]).contains("do not add up"));
        assert!(bad(&|d| d.changes[0].first_at += 86_400).contains("do not add up"));
        assert!(bad(&|d| d.connected = Some((86_400, 90_000))).contains("do not add up"));
        assert!(bad(&|d| d.quality[0].3 = 11).contains("do not add up"));
        assert!(bad(&|d| d.lookups = vec![("x".into(), 1); MAX_DAY_ITEMS + 1]).contains("more than"));
    }

    #[test]
    fn a_score_weighs_only_what_was_observed_and_ranks_within_levels() {
        let w = Weights::default();
        let full = Indicators {
            freshness: Some(1.0),
            quality: Some(1.0),
            availability: Some(1.0),
            responsiveness: Some(0.5),
            notices_in_time: Some(1.0),
            checks_with_feedback: Some(1.0),
            items_consistent: Some(1.0),
            ..Indicators::default()
        };
        assert_eq!(w.score(&full), (Some(90.0), vec![]));
        let little = Indicators { freshness: Some(0.5), ..Indicators::default() };
        let (score, missing) = w.score(&little);
        assert_eq!(score, Some(50.0));
        assert_eq!(missing.len(), 6);
        assert_eq!(w.score(&Indicators::default()).0, None);
        let ranked = rank(
            &w,
            vec![
                (node("630121/scjg"), little.clone(), 1.0),
                (node("630102/minzheng"), full.clone(), 0.5),
                (node("630000/gongan"), full.clone(), 1.0),
                (node("632521/jiaoyu"), Indicators::default(), 1.0),
                (node("630100/weijian"), little, 1.0),
            ],
        );
        let order: Vec<(String, Option<u32>, Option<u32>)> =
            ranked.iter().map(|s| (s.node.to_string(), s.rank_in_level, s.rank_in_division)).collect();
        assert_eq!(
            order,
            [
                ("630000/gongan".into(), Some(1), None),
                ("630100/weijian".into(), Some(1), Some(2)),
                ("630102/minzheng".into(), Some(1), Some(1)),
                ("630121/scjg".into(), Some(2), Some(2)), // a tie shares its rank
                ("632521/jiaoyu".into(), None, None),
            ]
        );
        assert!(ranked[2].partial(), "enrolled half the month");
        // a weight change re-ranks: freshness alone now decides
        let only_fresh = Weights {
            quality: 0.0,
            availability: 0.0,
            responsiveness: 0.0,
            notices: 0.0,
            checks: 0.0,
            items: 0.0,
            ..Weights::default()
        };
        let a = Indicators { freshness: Some(0.9), responsiveness: Some(0.0), ..Indicators::default() };
        let b = Indicators { freshness: Some(0.6), responsiveness: Some(1.0), ..Indicators::default() };
        let before = rank(&w, vec![(node("630121/scjg"), a.clone(), 1.0), (node("630122/scjg"), b.clone(), 1.0)]);
        let after = rank(&only_fresh, vec![(node("630121/scjg"), a, 1.0), (node("630122/scjg"), b, 1.0)]);
        assert_eq!(before[0].node.to_string(), "630122/scjg");
        assert_eq!(after[0].node.to_string(), "630121/scjg");
    }

    #[test]
    fn weights_are_checked() {
        let text = "[weights]\nfreshness = 25\nquality = 15\navailability = 15\nresponsiveness = 20\nnotices = 10\nchecks = 5\nitems = 10\n";
        assert_eq!(Weights::parse(text).unwrap(), Weights::default());
        assert!(Weights::parse(&text.replace("quality = 15", "quality = -1")).unwrap_err().contains("0 or more"));
        assert!(Weights::parse(&format!("{text}pass = 95\n")).unwrap_err().contains("bands must rise"));
        assert!(Weights::parse("[weights]\nfreshnes = 1").unwrap_err().contains("unknown field"));
    }
}
