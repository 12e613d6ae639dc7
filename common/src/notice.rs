//! 双告知 (dual notification), the rules: when a registration shows a new
//! enterprise or a change of business scope, every matter in the scope
//! that needs a later licence (后置审批) is notified to the department that
//! licenses it, at the enterprise's division; that department claims the
//! notice, or passes it on with a reason; unclaimed after 5 working days
//! it is overdue.
//!
//! Pure code, `now` passed in: the matters table (operator-edited data,
//! `supervision.toml` at the hub), which matters a scope change brings,
//! where a notice goes, and the life of a notice. The hub's store keeps
//! and carries notices.

use serde::{Deserialize, Serialize};

use crate::creditcode::CreditCode;
use crate::grant::{Side, add_working_days};
use crate::{DivisionCode, NodeId};

/// Working days a notice may wait for its claim.
pub const CLAIM_WITHIN_WORKING_DAYS: i64 = 5;

/// At which level a matter is licensed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The enterprise's county (or the division that registered it).
    #[default]
    County,
    Prefecture,
    Province,
}

/// One matter needing a later licence: the business-scope words that name
/// it and the department (the org part of its node id) that licenses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matter {
    /// 食品经营许可, 道路运输经营许可, …
    pub name: String,
    pub keywords: Vec<String>,
    /// `scjg`, `jiaotong`, `weijian`, …
    pub licensing: String,
    #[serde(default)]
    pub level: Level,
}

/// The matters table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default, rename = "matter")]
    pub matters: Vec<Matter>,
}

impl Rules {
    /// Reads and checks the table (TOML `[[matter]]` entries); the error
    /// names the matter at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rules: Self =
            toml::from_str(text).map_err(|e| format!("the matters table is not valid: {}", e.message()))?;
        rules.check()?;
        Ok(rules)
    }

    /// Checks the table; the error names the matter at fault.
    pub fn check(&self) -> Result<(), String> {
        let rules = self;
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in rules.matters.iter().enumerate() {
            let at = format!("matter {} ({:?})", i + 1, m.name);
            if m.name.trim().is_empty() {
                return Err(format!("{at}: give it a name, such as 食品经营许可"));
            }
            if !seen.insert(m.name.as_str()) {
                return Err(format!("{at}: two matters are named {}", m.name));
            }
            if m.keywords.is_empty() || m.keywords.iter().any(|k| k.trim().is_empty()) {
                return Err(format!("{at}: list the business-scope words that name it, none empty"));
            }
            let org_ok = !m.licensing.is_empty()
                && m.licensing.len() <= 32
                && m.licensing.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !org_ok || m.licensing == "hub" {
                return Err(format!(
                    "{at}: licensing = {:?} must be a department's org name as in its node id, such as jiaotong",
                    m.licensing
                ));
            }
        }
        Ok(())
    }

    /// The matters `scope` names.
    pub fn matters_in<'a>(&'a self, scope: &str) -> Vec<&'a Matter> {
        self.matters.iter().filter(|m| m.keywords.iter().any(|k| scope.contains(k.trim()))).collect()
    }

    /// The matters to notify when an enterprise's scope becomes `new`
    /// (`old`: its scope before, None for a new enterprise): those the new
    /// scope names and the old did not.
    pub fn to_notify<'a>(&'a self, old: Option<&str>, new: &str) -> Vec<&'a Matter> {
        let before: Vec<&str> =
            old.map(|o| self.matters_in(o).iter().map(|m| m.name.as_str()).collect()).unwrap_or_default();
        self.matters_in(new).into_iter().filter(|m| !before.contains(&m.name.as_str())).collect()
    }
}

/// The department a notice of `matter` goes to, for the enterprise with
/// credit code `code`: the licensing department at the enterprise's
/// registering division, raised to the matter's level.
pub fn route(matter: &Matter, code: &CreditCode) -> Result<NodeId, String> {
    let registered = DivisionCode::parse(code.division())
        .map_err(|e| format!("{} names no registering division ({e})", code.as_str()))?;
    let n: u32 = registered.to_string().parse().unwrap_or(0);
    let at = match matter.level {
        Level::County => n,
        Level::Prefecture => n / 100 * 100,
        Level::Province => n / 10_000 * 10_000,
    };
    let division = DivisionCode::parse(&format!("{at:06}")).map_err(|e| e.to_string())?;
    NodeId::parse(&format!("{division}/{}", matter.licensing)).map_err(|e| e.to_string())
}

/// Where a notice stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeState {
    Pending,
    Claimed {
        at: i64,
    },
    /// Passed on to another department, which gets a notice of its own.
    Passed {
        to: NodeId,
        reason: String,
        at: i64,
    },
}

/// One notice to one department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// `DIVISION-N`, numbered by the hub that issued it.
    pub id: String,
    pub credit_code: String,
    pub enterprise: String,
    pub matter: String,
    pub to: NodeId,
    /// The business scope that brought it.
    pub scope: String,
    /// Where the hub saw it: `PROVIDER RESOURCE changeset N`.
    pub source: String,
    /// The notice this one continues, when a department passed that one on.
    pub passed_from: Option<String>,
    pub issued_at: i64,
    /// The last day (days since 1970) to claim it.
    pub claim_by_day: i64,
    pub state: NoticeState,
}

impl Notice {
    /// A new notice issued at `now`, due within [`CLAIM_WITHIN_WORKING_DAYS`].
    pub fn issued(id: String, code: &CreditCode, enterprise: &str, matter: &Matter, to: NodeId, now: i64) -> Self {
        Self {
            id,
            credit_code: code.as_str().to_owned(),
            enterprise: enterprise.to_owned(),
            matter: matter.name.clone(),
            to,
            scope: String::new(),
            source: String::new(),
            passed_from: None,
            issued_at: now,
            claim_by_day: add_working_days(now.div_euclid(86_400), CLAIM_WITHIN_WORKING_DAYS),
            state: NoticeState::Pending,
        }
    }

    /// The notice that continues this one at `to`, passed on at `now`
    /// (numbered `id` by the hub of the department that passed it on).
    pub fn passed_on(&self, id: String, to: NodeId, now: i64) -> Self {
        Self {
            id,
            to,
            passed_from: Some(self.id.clone()),
            issued_at: now,
            claim_by_day: add_working_days(now.div_euclid(86_400), CLAIM_WITHIN_WORKING_DAYS),
            state: NoticeState::Pending,
            ..self.clone()
        }
    }

    /// 1 while pending, 2 once claimed or passed on: hubs keep the higher.
    pub fn version(&self) -> u64 {
        match self.state {
            NoticeState::Pending => 1,
            _ => 2,
        }
    }

    /// The division of the hub that issued it (the `DIVISION` of its id).
    pub fn issuer(&self) -> Option<DivisionCode> {
        self.id
            .split_once('-')
            .filter(|(_, n)| n.parse::<u64>().is_ok_and(|n| n > 0))
            .and_then(|(d, _)| DivisionCode::parse(d).ok())
    }

    /// `pending`, `OVERDUE` (pending past its day), `claimed`, `claimed late` or `passed on`.
    pub fn state_at(&self, now: i64) -> &'static str {
        let late = |day: i64| day > self.claim_by_day;
        match &self.state {
            NoticeState::Pending if late(now.div_euclid(86_400)) => "OVERDUE",
            NoticeState::Pending => "pending",
            NoticeState::Claimed { at } if late(at.div_euclid(86_400)) => "claimed late",
            NoticeState::Claimed { .. } => "claimed",
            NoticeState::Passed { .. } => "passed on",
        }
    }

    /// `by` claims it: the department it was sent to, while pending.
    pub fn claim(&mut self, by: &NodeId, now: i64) -> Result<(), NoticeRefused> {
        self.check_open(by)?;
        self.state = NoticeState::Claimed { at: now };
        Ok(())
    }

    /// `by` passes it on to department `to`, saying why.
    pub fn pass(&mut self, by: &NodeId, to: NodeId, reason: &str, now: i64) -> Result<(), NoticeRefused> {
        self.check_open(by)?;
        if reason.trim().is_empty() {
            return Err(NoticeRefused::NoReason);
        }
        if &to == by {
            return Err(NoticeRefused::ToItself);
        }
        if to.is_hub_id() {
            return Err(NoticeRefused::ToAHub { to });
        }
        self.state = NoticeState::Passed { to, reason: reason.trim().to_owned(), at: now };
        Ok(())
    }

    fn check_open(&self, by: &NodeId) -> Result<(), NoticeRefused> {
        if by != &self.to {
            return Err(NoticeRefused::NotYours { id: self.id.clone(), to: self.to.clone() });
        }
        match &self.state {
            NoticeState::Pending => Ok(()),
            NoticeState::Claimed { .. } => Err(NoticeRefused::Claimed { id: self.id.clone() }),
            NoticeState::Passed { .. } => Err(NoticeRefused::Passed { id: self.id.clone() }),
        }
    }
}

/// Why a department may not claim or pass on a notice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoticeRefused {
    #[error("notice {id} is for {to}; only that department can claim or pass it on")]
    NotYours { id: String, to: NodeId },
    #[error("notice {id} is already claimed")]
    Claimed { id: String },
    #[error("notice {id} was passed on")]
    Passed { id: String },
    #[error("say why with --reason")]
    NoReason,
    #[error("a notice cannot be passed on to the department that holds it")]
    ToItself,
    #[error("{to} is a hub; pass the notice on to a department, DIVISION/ORG")]
    ToAHub { to: NodeId },
}

/// How far ahead of the receiving hub's clock another hub's times may be.
const CLOCK_SKEW: i64 = 86_400;

/// Whether a hub of division `here` stores `sent`, a notice another hub
/// sent it from `from`, holding `held` (and `continued`: the notice
/// `sent.passed_from` names, if held), at `now`: Ok(true) to store it,
/// Ok(false) for old news, Err with the reason to refuse (and log) it.
///
/// - Times must be sane: issued not in the future, the claim day 5
///   working days after, a claim or pass-on between the issue and now.
/// - A new notice comes only from the side of the hub that issued it (its
///   id's division). From a child hub, it must also be about an
///   enterprise registered in the child's area by a registration kept
///   there, or continue a notice passed on, there, to the department it
///   names: a child cannot notify for enterprises elsewhere.
/// - A claim or a pass-on comes only from the side of the department the
///   notice was sent to, unchanged but for its state; without the pending
///   notice held, only when the notice was also issued on that side.
pub fn take(
    here: DivisionCode,
    from: Side,
    held: Option<&Notice>,
    continued: Option<&Notice>,
    sent: &Notice,
    now: i64,
) -> Result<bool, String> {
    if held.is_some_and(|h| h.version() >= sent.version()) {
        return Ok(false);
    }
    let id = &sent.id;
    let Some(issuer) = sent.issuer() else {
        return Err(format!("notice id {id:?} is not DIVISION-N"));
    };
    let on_side = |d: DivisionCode| match from {
        Side::Parent => !here.contains(d),
        Side::Child(child) => child.contains(d),
    };
    if sent.issued_at > now + CLOCK_SKEW
        || sent.claim_by_day != add_working_days(sent.issued_at.div_euclid(86_400), CLAIM_WITHIN_WORKING_DAYS)
    {
        return Err(format!("notice {id} has an issue time or claim day that cannot be true"));
    }
    match &sent.state {
        NoticeState::Pending => {}
        NoticeState::Claimed { at } | NoticeState::Passed { at, .. }
            if *at < sent.issued_at || *at > now + CLOCK_SKEW =>
        {
            return Err(format!("notice {id} was claimed or passed on at a time that cannot be true"));
        }
        NoticeState::Passed { to, reason, .. } if reason.trim().is_empty() || to == &sent.to || to.is_hub_id() => {
            return Err(format!("notice {id} was passed on without a reason, or to its own department"));
        }
        _ => {}
    }
    let Some(h) = held else {
        if !on_side(issuer) {
            return Err(format!("notice {id} was issued by the hub of {issuer}, which is not on that side"));
        }
        if sent.version() > 1 && !on_side(sent.to.division()) {
            return Err(format!("notice {id} was claimed or passed on before it reached this hub"));
        }
        if let Side::Child(child) = from {
            match (&sent.passed_from, continued) {
                (Some(first), Some(c)) => {
                    let passed_here = matches!(&c.state, NoticeState::Passed { to: t, .. } if t == &sent.to);
                    let same = c.credit_code == sent.credit_code && c.matter == sent.matter && c.scope == sent.scope;
                    if !passed_here || !same || !child.contains(c.to.division()) {
                        return Err(format!("notice {id} does not continue notice {first} as it was passed on"));
                    }
                }
                (Some(first), None) => {
                    return Err(format!("notice {id} continues notice {first}, which this hub does not hold"));
                }
                (None, _) => {
                    let registered =
                        CreditCode::parse(&sent.credit_code).ok().and_then(|c| DivisionCode::parse(c.division()).ok());
                    let kept_by = sent.source.split_whitespace().next().and_then(|n| NodeId::parse(n).ok());
                    if !registered.is_some_and(|d| child.contains(d))
                        || !kept_by.is_some_and(|n| child.contains(n.division()))
                    {
                        return Err(format!(
                            "notice {id} is about an enterprise not registered in the area of the hub of {child}"
                        ));
                    }
                }
            }
        }
        return Ok(true);
    };
    if !on_side(sent.to.division()) {
        return Err(format!("notice {id} is for {}; its claim cannot come from that side", sent.to));
    }
    let same = Notice { state: h.state.clone(), ..sent.clone() };
    if &same != h {
        return Err(format!("notice {id} came back changed in more than its state"));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::parse_date;

    const RULES: &str = r#"
[[matter]]
name = "食品经营许可"
keywords = ["食品销售", "预包装食品", "餐饮服务"]
licensing = "scjg"

[[matter]]
name = "道路运输经营许可"
keywords = ["道路普通货物运输", "道路旅客运输"]
licensing = "jiaotong"
level = "prefecture"
"#;

    fn code(s: &str) -> CreditCode {
        CreditCode::parse(s).unwrap()
    }

    #[test]
    fn a_scope_brings_the_matters_it_newly_names() {
        let r = Rules::parse(RULES).unwrap();
        let names = |ms: Vec<&Matter>| ms.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        let scope = "预包装食品销售；道路普通货物运输（不含危险货物）";
        assert_eq!(names(r.to_notify(None, scope)), ["食品经营许可", "道路运输经营许可"], "a new enterprise");
        assert_eq!(names(r.to_notify(Some("预包装食品销售"), scope)), ["道路运输经营许可"], "a scope widened");
        assert!(r.to_notify(Some(scope), "预包装食品销售").is_empty(), "a scope narrowed brings nothing");
        assert!(r.to_notify(None, "日用百货销售").is_empty());
    }

    #[test]
    fn a_notice_goes_to_the_licensing_department_at_the_matters_level() {
        let r = Rules::parse(RULES).unwrap();
        // registered by 大通县 (630121)
        let firm = code("91630121MA7G00012R");
        assert_eq!(route(&r.matters[0], &firm).unwrap().to_string(), "630121/scjg");
        assert_eq!(route(&r.matters[1], &firm).unwrap().to_string(), "630100/jiaotong");
    }

    #[test]
    fn mistakes_in_the_table_are_named() {
        for (text, want) in [
            (RULES.replace("licensing = \"scjg\"", "licensing = \"市场监管\""), "must be a department's org name"),
            (RULES.replace("食品经营许可", "道路运输经营许可"), "two matters are named"),
            (
                RULES.replace("keywords = [\"食品销售\", \"预包装食品\", \"餐饮服务\"]", "keywords = []"),
                "list the business-scope words",
            ),
            (RULES.replace("level = \"prefecture\"", "level = \"village\""), "unknown variant `village`"),
        ] {
            let err = Rules::parse(&text).unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn a_notice_is_claimed_or_passed_on_by_its_department_and_is_overdue_after_five_working_days() {
        let r = Rules::parse(RULES).unwrap();
        let firm = code("91630121MA7G00012R");
        let to = route(&r.matters[0], &firm).unwrap();
        // issued on Friday 2026-11-27: due the next Friday, 2026-12-04
        let now = parse_date("2026-11-27").unwrap() * 86_400 + 3_600;
        let mut n = Notice::issued("630000-1".into(), &firm, "青海昆仑食品有限公司", &r.matters[0], to.clone(), now);
        assert_eq!(n.claim_by_day, parse_date("2026-12-04").unwrap());
        assert_eq!(n.state_at(parse_date("2026-12-04").unwrap() * 86_400 + 80_000), "pending");
        assert_eq!(n.state_at(parse_date("2026-12-05").unwrap() * 86_400), "OVERDUE");
        let stranger = NodeId::parse("630121/jiaotong").unwrap();
        assert!(n.claim(&stranger, now).unwrap_err().to_string().contains("only that department"));
        assert!(n.pass(&to, stranger.clone(), " ", now).unwrap_err().to_string().contains("--reason"));
        assert!(
            n.pass(&to, to.clone(), "x", now)
                .unwrap_err()
                .to_string()
                .contains("cannot be passed on to the department")
        );
        let hub = NodeId::parse("630121/hub").unwrap();
        assert!(n.pass(&to, hub, "x", now).unwrap_err().to_string().contains("is a hub"));
        let mut claimed = n.clone();
        claimed.claim(&to, parse_date("2026-12-07").unwrap() * 86_400).unwrap();
        assert_eq!(claimed.state_at(now), "claimed late");
        assert!(claimed.claim(&to, now).unwrap_err().to_string().contains("already claimed"));
        n.pass(&to, stranger.clone(), "经营范围属道路运输，非本部门许可事项", now).unwrap();
        assert_eq!(n.state_at(now), "passed on");
        assert!(n.claim(&to, now).unwrap_err().to_string().contains("was passed on"));
    }

    #[test]
    fn hubs_take_a_notice_from_its_issuers_side_and_its_claim_from_its_departments_side() {
        let r = Rules::parse(RULES).unwrap();
        let firm = code("91630121MA7G00012R");
        let to = route(&r.matters[0], &firm).unwrap(); // 630121/scjg, under the 630100 hub
        let now = 1_800_000_000;
        let mut n = Notice::issued("630000-7".into(), &firm, "青海昆仑食品有限公司", &r.matters[0], to.clone(), now);
        n.source = "630000/scjg faren changeset 3".into();
        let div = |s: &str| DivisionCode::parse(s).unwrap();
        let xining = Side::Child(div("630100"));
        let take = |here: &str, from: Side, held: Option<&Notice>, sent: &Notice| {
            take(div(here), from, held, None, sent, now + 120)
        };
        // the prefecture hub takes it from its parent, the province
        assert_eq!(take("630100", Side::Parent, None, &n), Ok(true));
        assert_eq!(take("630100", Side::Parent, Some(&n), &n), Ok(false), "old news");
        // a child hub cannot issue in the province's name
        assert!(take("630000", xining, None, &n).unwrap_err().contains("issued by the hub of 630000"));
        let mut claimed = n.clone();
        claimed.claim(&to, now + 60).unwrap();
        // the claim goes back up from the department's side only
        assert_eq!(take("630000", xining, Some(&n), &claimed), Ok(true));
        assert!(
            take("630000", Side::Child(div("632500")), Some(&n), &claimed).unwrap_err().contains("for 630121/scjg")
        );
        assert!(take("630000", xining, None, &claimed).unwrap_err().contains("issued by the hub of 630000"));
        let mut forged = claimed.clone();
        forged.matter = "道路运输经营许可".into();
        assert!(take("630000", xining, Some(&n), &forged).unwrap_err().contains("changed in more than its state"));
        // times that cannot be true: a claim before the issue, a claim day moved
        let mut backdated = n.clone();
        backdated.claim(&to, now - 60).unwrap();
        assert!(take("630000", xining, Some(&n), &backdated).unwrap_err().contains("cannot be true"));
        let mut later = n.clone();
        later.claim_by_day += 30;
        assert!(take("630100", Side::Parent, None, &later).unwrap_err().contains("cannot be true"));
        // a claimed notice stays claimed
        assert_eq!(take("630100", Side::Parent, Some(&claimed), &n), Ok(false));
        // a child may notify only for enterprises registered in its area, by a registration kept there
        let mut own = n.clone();
        own.id = "630100-1".into();
        assert!(take("630000", xining, None, &own).unwrap_err().contains("not registered in the area"));
        own.source = "630100/scjg qiye changeset 1".into();
        assert_eq!(take("630000", xining, None, &own), Ok(true));
        let mut far = own.clone();
        far.credit_code = CreditCode::compose("91632522", "MA7G0001").unwrap().as_str().to_owned();
        assert!(take("630000", xining, None, &far).unwrap_err().contains("not registered in the area"));
        // issued and claimed inside a child before its push: taken whole
        let mut inside = own.clone();
        inside.claim(&to, now + 60).unwrap();
        assert_eq!(take("630000", xining, None, &inside), Ok(true));
        // passed on, it continues under the passing hub's number, and the parent checks it against the pass-on
        let jiaotong = NodeId::parse("630100/jiaotong").unwrap();
        let mut passed = n.clone();
        passed.pass(&to, jiaotong.clone(), "市级许可", now + 60).unwrap();
        let next = passed.passed_on("630100-3".into(), jiaotong.clone(), now + 60);
        assert_eq!(next.passed_from.as_deref(), Some("630000-7"));
        assert_eq!((next.version(), next.issuer()), (1, Some(div("630100"))));
        let here = div("630000");
        assert_eq!(super::take(here, xining, None, Some(&passed), &next, now + 120), Ok(true));
        assert!(super::take(here, xining, None, None, &next, now + 120).unwrap_err().contains("does not hold"));
        let elsewhere = passed.passed_on("630100-4".into(), NodeId::parse("632500/jiaotong").unwrap(), now + 60);
        assert!(
            super::take(here, xining, None, Some(&passed), &elsewhere, now + 120)
                .unwrap_err()
                .contains("as it was passed on")
        );
    }
}
