//! `gdx-hub notices`, `gdx-hub checks` and `gdx-hub supervision`: the
//! 双告知 notices and 联合惩戒 checks this hub knows, and per department
//! how many notices it claimed in time and how many checks it reported on
//! (the figures evaluation draws on). The portal shows the same.

use std::collections::BTreeMap;
use std::path::Path;

use gdx_common::discipline::Check;
use gdx_common::notice::Notice;
use gdx_common::units::{format_date, format_time};
use serde::Serialize;

use crate::exchange::Exchange;

/// One department's 监管 figures, as known at this hub.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub node: String,
    pub notices: u64,
    pub claimed_in_time: u64,
    pub claimed_late: u64,
    pub passed_on: u64,
    pub pending: u64,
    pub overdue: u64,
    pub checks: u64,
    pub restricted: u64,
    pub with_feedback: u64,
}

/// Per department, in node order.
pub fn counts(notices: &[Notice], checks: &[Check], now: i64) -> Vec<Counts> {
    fn of(by: &mut BTreeMap<String, Counts>, node: String) -> &mut Counts {
        by.entry(node.clone()).or_insert_with(|| Counts { node, ..Counts::default() })
    }
    let mut by = BTreeMap::new();
    for n in notices {
        let c = of(&mut by, n.to.to_string());
        c.notices += 1;
        match n.state_at(now) {
            "claimed" => c.claimed_in_time += 1,
            "claimed late" => c.claimed_late += 1,
            "passed on" => c.passed_on += 1,
            "OVERDUE" => c.overdue += 1,
            _ => c.pending += 1,
        }
    }
    for k in checks {
        let c = of(&mut by, k.node.to_string());
        c.checks += 1;
        c.restricted += u64::from(k.restricted());
        c.with_feedback += u64::from(k.feedback.is_some());
    }
    by.into_values().collect()
}

/// The notices as a table, the state as of `now`.
pub fn notices_table(list: &[Notice], now: i64) -> String {
    let mut rows = vec![
        ["ID", "TO", "STATE", "MATTER", "CREDIT CODE", "ENTERPRISE", "ISSUED", "CLAIM BY", "FROM"]
            .map(String::from)
            .to_vec(),
    ];
    for n in list {
        rows.push(vec![
            n.id.clone(),
            n.to.to_string(),
            n.state_at(now).to_owned(),
            n.matter.clone(),
            n.credit_code.clone(),
            n.enterprise.clone(),
            format_time(n.issued_at),
            format_date(n.claim_by_day.saturating_mul(86_400)),
            n.passed_from.clone().unwrap_or_else(|| n.source.clone()),
        ]);
    }
    gdx_common::table::render(&rows)
}

/// The checks as a table.
pub fn checks_table(list: &[Check]) -> String {
    let mut rows = vec![["ID", "BY", "AT", "MATTER", "SUBJECT", "ANSWER", "FEEDBACK"].map(String::from).to_vec()];
    for c in list {
        rows.push(vec![
            c.id.clone(),
            c.node.to_string(),
            format_time(c.at),
            c.matter.clone(),
            subject_shown(c),
            c.verdict().to_owned(),
            c.feedback.as_ref().map_or("-".into(), |f| format!("{}: {}", f.action.label(), f.reason)),
        ]);
    }
    gdx_common::table::render(&rows)
}

/// A credit code in full; an ID number with its middle eight digits hidden.
pub fn subject_shown(c: &Check) -> String {
    match &c.subject {
        gdx_common::discipline::Subject::Entity(code) => code.clone(),
        gdx_common::discipline::Subject::Person(id) => gdx_common::grant::mask(id),
    }
}

/// The counts as a table.
pub fn counts_table(list: &[Counts]) -> String {
    let mut rows = vec![
        [
            "DEPARTMENT",
            "NOTICES",
            "IN TIME",
            "LATE",
            "PASSED ON",
            "PENDING",
            "OVERDUE",
            "CHECKS",
            "RESTRICTED",
            "WITH FEEDBACK",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for c in list {
        rows.push(vec![
            c.node.clone(),
            c.notices.to_string(),
            c.claimed_in_time.to_string(),
            c.claimed_late.to_string(),
            c.passed_on.to_string(),
            c.pending.to_string(),
            c.overdue.to_string(),
            c.checks.to_string(),
            c.restricted.to_string(),
            c.with_feedback.to_string(),
        ]);
    }
    gdx_common::table::render(&rows)
}

/// What `gdx-hub notices|checks|supervision` print.
pub enum Listing {
    Notices,
    Checks,
    Counts,
}

pub fn print(hub_dir: &Path, hub: gdx_common::NodeId, what: Listing, json: bool) -> anyhow::Result<()> {
    let x = Exchange::open(hub_dir, hub)?;
    let now = crate::exchange::clock();
    let notices = x.notices(None)?;
    let checks = x.checks(None)?;
    let out = match (what, json) {
        (Listing::Notices, true) => serde_json::to_string_pretty(&notices)? + "\n",
        (Listing::Notices, false) if notices.is_empty() => "no 双告知 notice is kept at this hub\n".into(),
        (Listing::Notices, false) => notices_table(&notices, now),
        (Listing::Checks, true) => serde_json::to_string_pretty(&checks)? + "\n",
        (Listing::Checks, false) if checks.is_empty() => "no 联合惩戒 check is kept at this hub\n".into(),
        (Listing::Checks, false) => checks_table(&checks),
        (Listing::Counts, true) => serde_json::to_string_pretty(&counts(&notices, &checks, now))? + "\n",
        (Listing::Counts, false) => counts_table(&counts(&notices, &checks, now)),
    };
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdx_common::NodeId;
    use gdx_common::creditcode::CreditCode;
    use gdx_common::discipline::{Action, Finding, Subject};
    use gdx_common::notice::Rules;

    #[test]
    fn counts_tell_claims_in_time_from_late_ones_and_checks_with_feedback() {
        let rules =
            Rules::parse("[[matter]]\nname = \"食品经营许可\"\nkeywords = [\"食品\"]\nlicensing = \"scjg\"").unwrap();
        let firm = CreditCode::parse("91630121MA7G00012R").unwrap();
        let to = NodeId::parse("630121/scjg").unwrap();
        let day = 86_400;
        let t0 = 20_424 * day; // a Monday
        let issue = |id: &str| Notice::issued(id.into(), &firm, "x", &rules.matters[0], to.clone(), t0);
        let mut in_time = issue("630000-1");
        in_time.claim(&to, t0 + day).unwrap();
        let mut late = issue("630000-2");
        late.claim(&to, t0 + 10 * day).unwrap();
        let open = issue("630000-3");
        let mut check = Check {
            id: "630000-C1".into(),
            node: NodeId::parse("630000/fgw").unwrap(),
            subject: Subject::Entity(firm.as_str().into()),
            matter: "政府采购".into(),
            at: t0,
            finding: Finding::default(),
            unread: vec![],
            feedback: None,
        };
        let unreported = check.clone();
        check.report(&check.node.clone(), Action::NotRestricted, "未列入名单", t0).unwrap();
        let c = counts(&[in_time, late, open], &[check, unreported], t0 + 20 * day);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[1].node.as_str(), c[1].notices, c[1].claimed_in_time, c[1].claimed_late, c[1].overdue),
            ("630121/scjg", 3, 1, 1, 1)
        );
        assert_eq!((c[0].node.as_str(), c[0].checks, c[0].with_feedback), ("630000/fgw", 2, 1));
    }
}
