//! 联合惩戒 (joint discipline of dishonest market actors), the rules: which
//! resources are dishonest lists, what each memorandum (备忘录) restricts
//! for each kind of matter (政府采购, 财政资金, 行政许可, …), whether a
//! subject found on the lists is restricted for a matter today, and what a
//! department reports it did.
//!
//! Pure code, `today` passed in. The lists and measures are data the
//! operator edits (`[[list]]` and `[[measure]]` in the hub's
//! `supervision.toml`); the hub reads the lists' rows where the asking
//! department may read them and keeps each check and its feedback.

use serde::{Deserialize, Serialize};

use crate::creditcode::CreditCode;
use crate::idnumber::IdNumber;

/// A catalogued resource that is a dishonest list, and which of its
/// columns say who is listed, under which memorandum, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    /// 严重违法失信主体名单, 失信被执行人名单, …
    pub name: String,
    /// Its 信息资源代码 in the catalogue.
    pub code: String,
    /// The column holding the 统一社会信用代码 or 公民身份号码.
    pub subject: String,
    /// The column naming the memorandum it is listed under.
    pub memorandum: String,
    /// The column of the day it leaves the list (empty: no end).
    #[serde(default)]
    pub until: Option<String>,
    /// The column saying why it is listed.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a memorandum restricts for one kind of matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    pub memorandum: String,
    /// 政府采购, 财政资金, 行政许可, …
    pub matter: String,
    /// 限制参加政府采购活动, …
    pub measure: String,
}

/// The lists and the measures table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub lists: Vec<List>,
    pub measures: Vec<Measure>,
}

impl Table {
    /// Checks the table; the error names the entry at fault.
    pub fn check(&self) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        for (i, l) in self.lists.iter().enumerate() {
            let at = format!("list {} ({:?})", i + 1, l.name);
            if l.name.trim().is_empty() {
                return Err(format!("{at}: give it a name, such as 严重违法失信主体名单"));
            }
            if !names.insert(l.name.as_str()) {
                return Err(format!("{at}: two lists are named {}", l.name));
            }
            if let Err(e) = crate::catalog::check_code(&l.code) {
                return Err(format!("{at}: code = {:?}: {e}", l.code));
            }
            for (what, col) in [("subject", Some(&l.subject)), ("memorandum", Some(&l.memorandum))]
                .into_iter()
                .chain([("until", l.until.as_ref()), ("reason", l.reason.as_ref())])
            {
                if col.is_some_and(|c| c.trim().is_empty()) {
                    return Err(format!("{at}: {what} must name one of the resource's columns"));
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in self.measures.iter().enumerate() {
            let at = format!("measure {} ({} / {})", i + 1, m.memorandum, m.matter);
            if m.memorandum.trim().is_empty() || m.matter.trim().is_empty() || m.measure.trim().is_empty() {
                return Err(format!("{at}: give its memorandum, matter and measure, none empty"));
            }
            if !seen.insert((m.memorandum.as_str(), m.matter.as_str())) {
                return Err(format!("{at}: that memorandum already has a measure for that matter"));
            }
        }
        Ok(())
    }

    /// The kinds of matter the measures table knows, in the table's order.
    pub fn matters(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for m in &self.measures {
            if !out.contains(&m.matter.as_str()) {
                out.push(&m.matter);
            }
        }
        out
    }

    /// `matter` as the table spells it, or an error listing those it knows.
    pub fn matter<'a>(&'a self, matter: &str) -> Result<&'a str, String> {
        let known = self.matters();
        known.iter().find(|m| **m == matter.trim()).copied().ok_or_else(|| match known.is_empty() {
            true => "this hub's measures table is empty; the operator adds [[measure]] entries to supervision.toml"
                .to_owned(),
            false => format!("--matter {matter:?} is not in the measures table; give one of: {}", known.join(", ")),
        })
    }
}

/// Whom a check is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subject {
    /// A market entity by its 统一社会信用代码.
    Entity(String),
    /// A person by 公民身份号码.
    Person(String),
}

impl Subject {
    /// A credit code or an ID number; the error says which check failed.
    pub fn parse(text: &str, today: i64) -> Result<Self, String> {
        let t = text.trim();
        if let Ok(c) = CreditCode::parse(t) {
            return Ok(Self::Entity(c.as_str().to_owned()));
        }
        match IdNumber::parse(t, today) {
            Ok((id, _)) => Ok(Self::Person(id.as_str().to_owned())),
            Err(id_err) => Err(match CreditCode::parse(t) {
                Err(e) if t.len() == 18 && t.bytes().any(|b| b.is_ascii_alphabetic() && b != b'X') => {
                    format!("{e}; give an 18-character 统一社会信用代码 or 公民身份号码")
                }
                _ => format!("{id_err}; give an 18-character 统一社会信用代码 or 公民身份号码"),
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Entity(s) | Self::Person(s) => s,
        }
    }
}

/// One row of a list naming the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub list: String,
    pub memorandum: String,
    /// The last day (days since 1970) it is listed; None: no end.
    pub until: Option<i64>,
    pub reason: Option<String>,
    /// Where the row was read: `PROVIDER` (own data) or `grant ID`, and the changeset.
    pub source: String,
}

/// A restriction that applies: the listing and the measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    pub listing: Listing,
    pub measure: String,
}

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The measures that apply today for the matter.
    pub hits: Vec<Hit>,
    /// Listings that do not restrict this matter, or that have ended.
    pub other: Vec<(Listing, String)>,
}

/// Which of `listings` restrict `matter` on `today`, under which measure.
pub fn decide(table: &Table, matter: &str, listings: Vec<Listing>, today: i64) -> Finding {
    let mut f = Finding::default();
    for l in listings {
        if let Some(until) = l.until.filter(|u| *u < today) {
            let why = format!("listed until {}, which has passed", crate::units::format_date(until * 86_400));
            f.other.push((l, why));
            continue;
        }
        let measures: Vec<&Measure> =
            table.measures.iter().filter(|m| m.memorandum == l.memorandum && m.matter == matter).collect();
        if measures.is_empty() {
            let why = format!("the measures table has no measure of {} for {matter}", l.memorandum);
            f.other.push((l, why));
            continue;
        }
        for m in measures {
            f.hits.push(Hit { listing: l.clone(), measure: m.measure.clone() });
        }
    }
    f
}

/// A list's date column: `YYYY-MM-DD` or `YYYYMMDD`; empty means no end.
pub fn parse_until(text: &str) -> Result<Option<i64>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let dashed = match t.len() {
        8 if t.bytes().all(|b| b.is_ascii_digit()) => format!("{}-{}-{}", &t[..4], &t[4..6], &t[6..]),
        _ => t.get(..10).unwrap_or(t).to_owned(),
    };
    crate::units::parse_date(&dashed).map(Some)
}

/// What the department did after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// 限制: it applied the restriction.
    Restricted,
    /// 未限制: it did not, saying why.
    NotRestricted,
}

impl Action {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "限制" | "restricted" => Ok(Self::Restricted),
            "未限制" | "not-restricted" => Ok(Self::NotRestricted),
            other => Err(format!("--action {other:?} is not 限制 or 未限制")),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Restricted => "限制",
            Self::NotRestricted => "未限制",
        }
    }
}

/// A department's report on a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    pub action: Action,
    pub reason: String,
    pub at: i64,
}

/// One check a department made, as its hub keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `DIVISION-CN`, numbered by the hub that answered it.
    pub id: String,
    pub node: crate::NodeId,
    pub subject: Subject,
    pub matter: String,
    pub at: i64,
    pub finding: Finding,
    /// Lists the department could not read (no grant, or none kept here), and why.
    pub unread: Vec<String>,
    pub feedback: Option<Feedback>,
}

impl Check {
    pub fn restricted(&self) -> bool {
        !self.finding.hits.is_empty()
    }

    /// `RESTRICTED`; `not restricted` when every list was read; `UNKNOWN`
    /// when a list could not be read (a list not read cannot clear anyone).
    pub fn verdict(&self) -> &'static str {
        match (self.restricted(), self.unread.is_empty()) {
            (true, _) => "RESTRICTED",
            (false, true) => "not restricted",
            (false, false) => "UNKNOWN",
        }
    }

    /// `by` reports what it did; once, with a reason.
    pub fn report(&mut self, by: &crate::NodeId, action: Action, reason: &str, now: i64) -> Result<(), ReportRefused> {
        if by != &self.node {
            return Err(ReportRefused::NotYours { id: self.id.clone(), node: self.node.clone() });
        }
        if let Some(f) = &self.feedback {
            return Err(ReportRefused::Reported { id: self.id.clone(), action: f.action.label(), at: f.at });
        }
        if reason.trim().is_empty() {
            return Err(ReportRefused::NoReason);
        }
        self.feedback = Some(Feedback { action, reason: reason.trim().to_owned(), at: now });
        Ok(())
    }
}

/// Why a department may not report on a check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportRefused {
    #[error("check {id} was made by {node}; only it can report on it")]
    NotYours { id: String, node: crate::NodeId },
    #[error("check {id} already has feedback ({action} at {})", crate::units::format_time(*.at))]
    Reported { id: String, action: &'static str, at: i64 },
    #[error("say what was done and why with --reason")]
    NoReason,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::parse_date;

    const SHIXIN: &str = "关于对失信被执行人实施联合惩戒的合作备忘录";
    const ZHONGDA: &str = "关于对重大税收违法案件当事人实施联合惩戒措施的合作备忘录";

    fn table() -> Table {
        let m = |memorandum: &str, matter: &str, measure: &str| Measure {
            memorandum: memorandum.into(),
            matter: matter.into(),
            measure: measure.into(),
        };
        Table {
            lists: vec![List {
                name: "严重失信主体名单".into(),
                code: "104002/000001".into(),
                subject: "credit_code".into(),
                memorandum: "memorandum".into(),
                until: Some("until".into()),
                reason: None,
            }],
            measures: vec![
                m(SHIXIN, "政府采购", "限制参加政府采购活动"),
                m(SHIXIN, "财政资金", "限制申请财政性资金项目"),
                m(ZHONGDA, "行政许可", "从严审核行政许可审批项目"),
            ],
        }
    }

    fn listing(memorandum: &str, until: Option<&str>) -> Listing {
        Listing {
            list: "严重失信主体名单".into(),
            memorandum: memorandum.into(),
            until: until.map(|u| parse_date(u).unwrap()),
            reason: None,
            source: "630000/fgw".into(),
        }
    }

    #[test]
    fn a_listing_restricts_the_matters_its_memorandum_names_until_its_end() {
        let t = table();
        let today = parse_date("2026-12-05").unwrap();
        let f = decide(&t, "政府采购", vec![listing(SHIXIN, Some("2027-06-30"))], today);
        assert_eq!(f.hits.len(), 1);
        assert_eq!(f.hits[0].measure, "限制参加政府采购活动");
        let f = decide(&t, "行政许可", vec![listing(SHIXIN, None)], today);
        assert!(f.hits.is_empty());
        assert!(f.other[0].1.contains("no measure of"), "{:?}", f.other);
        let f = decide(&t, "政府采购", vec![listing(SHIXIN, Some("2026-12-04"))], today);
        assert!(f.hits.is_empty());
        assert!(f.other[0].1.contains("2026-12-04, which has passed"));
        let f = decide(&t, "政府采购", vec![listing(SHIXIN, Some("2026-12-05"))], today);
        assert_eq!(f.hits.len(), 1, "restricted through its last day");
    }

    #[test]
    fn matters_subjects_dates_and_actions_are_checked() {
        let t = table();
        assert_eq!(t.matters(), ["政府采购", "财政资金", "行政许可"]);
        assert!(t.matter("工程招标").unwrap_err().contains("give one of: 政府采购, 财政资金, 行政许可"));
        let today = parse_date("2026-12-05").unwrap();
        assert!(matches!(Subject::parse(" 91630100MA7G00012C ", today), Ok(Subject::Entity(_))));
        assert!(matches!(Subject::parse("11010519491231002X", today), Ok(Subject::Person(_))));
        assert!(Subject::parse("91630100MA7G00012X", today).unwrap_err().contains("统一社会信用代码 or 公民身份号码"));
        assert!(Subject::parse("110105194912310021", today).unwrap_err().contains("公民身份号码"));
        assert_eq!(parse_until("20270630").unwrap(), Some(parse_date("2027-06-30").unwrap()));
        assert_eq!(parse_until("2027-06-30 00:00:00").unwrap(), Some(parse_date("2027-06-30").unwrap()));
        assert_eq!(parse_until(" ").unwrap(), None);
        assert!(parse_until("明年").is_err());
        assert_eq!(Action::parse("未限制"), Ok(Action::NotRestricted));
        assert!(Action::parse("警告").unwrap_err().contains("not 限制 or 未限制"));
    }

    #[test]
    fn mistakes_in_the_table_are_named() {
        let mut t = table();
        t.measures.push(t.measures[0].clone());
        assert!(t.check().unwrap_err().contains("already has a measure for that matter"));
        let mut t = table();
        t.lists[0].code = "104002".into();
        assert!(t.check().unwrap_err().contains("code = \"104002\""));
        let mut t = table();
        t.lists[0].until = Some(" ".into());
        assert!(t.check().unwrap_err().contains("until must name one of the resource's columns"));
        assert!(table().check().is_ok());
    }

    #[test]
    fn feedback_comes_once_from_the_department_that_checked() {
        let me = crate::NodeId::parse("630000/fgw").unwrap();
        let mut c = Check {
            id: "630000-C1".into(),
            node: me.clone(),
            subject: Subject::Entity("91630100MA7G00012C".into()),
            matter: "政府采购".into(),
            at: 0,
            finding: Finding::default(),
            unread: vec![],
            feedback: None,
        };
        let other = crate::NodeId::parse("630000/scjg").unwrap();
        assert!(c.report(&other, Action::Restricted, "x", 1).unwrap_err().to_string().contains("only it can report"));
        assert!(c.report(&me, Action::Restricted, " ", 1).unwrap_err().to_string().contains("--reason"));
        c.report(&me, Action::Restricted, "已取消其投标资格", 1).unwrap();
        assert!(
            c.report(&me, Action::Restricted, "again", 2).unwrap_err().to_string().contains("already has feedback")
        );
    }
}
