//! 监管 at the agent: the department's 双告知 notices (list, claim, pass
//! on) and its 联合惩戒 checks and feedback, each one request to its hub,
//! and how they are printed.

use std::path::Path;
use std::time::Duration;

use gdx_common::NodeId;
use gdx_common::discipline::{Action, Check};
use gdx_common::notice::Notice;
use gdx_common::units::{format_date, format_time};
use gdx_common::wire::{CheckQuery, FeedbackForm, Message, NoticeAct, PassOn};

use crate::exchange::ask;

/// The notices sent to this department, newest first.
pub async fn notices(dir: &Path, timeout: Duration) -> anyhow::Result<Vec<Notice>> {
    match ask(dir, Message::ListNotices, timeout).await? {
        Message::Notices(n) => Ok(n),
        other => anyhow::bail!("the hub answered with {}", other.kind()),
    }
}

/// Claims notice `id` (`pass` None) or passes it on.
pub async fn act(dir: &Path, id: String, pass: Option<PassOn>, timeout: Duration) -> anyhow::Result<Notice> {
    match ask(dir, Message::ActOnNotice(NoticeAct { id, pass }), timeout).await? {
        Message::NoticeAnswer(n) => Ok(*n),
        other => anyhow::bail!("the hub answered with {}", other.kind()),
    }
}

/// Asks the hub whether `subject` is restricted for `matter`.
pub async fn check(dir: &Path, subject: String, matter: String, timeout: Duration) -> anyhow::Result<Check> {
    checked(ask(dir, Message::Check(CheckQuery { subject, matter }), timeout).await?)
}

/// Reports what the department did after check `id`.
pub async fn feedback(
    dir: &Path,
    id: String,
    action: &str,
    reason: String,
    timeout: Duration,
) -> anyhow::Result<Check> {
    let action = Action::parse(action).map_err(anyhow::Error::msg)?;
    checked(ask(dir, Message::Feedback(FeedbackForm { id, action, reason }), timeout).await?)
}

fn checked(answer: Message) -> anyhow::Result<Check> {
    match answer {
        Message::CheckAnswer(c) => Ok(*c),
        other => anyhow::bail!("the hub answered with {}", other.kind()),
    }
}

/// `gdx-agent notices`: one line each, the state as of `now`.
pub fn notices_table(list: &[Notice], now: i64) -> String {
    if list.is_empty() {
        return "no 双告知 notice has been sent to this department\n".into();
    }
    let mut rows =
        vec![["ID", "STATE", "MATTER", "CREDIT CODE", "ENTERPRISE", "CLAIM BY", "SCOPE"].map(String::from).to_vec()];
    for n in list {
        let scope: String = n.scope.chars().take(24).collect();
        rows.push(vec![
            n.id.clone(),
            n.state_at(now).to_owned(),
            n.matter.clone(),
            n.credit_code.clone(),
            n.enterprise.clone(),
            format_date(n.claim_by_day.saturating_mul(86_400)),
            if scope.len() < n.scope.len() { format!("{scope}…") } else { scope },
        ]);
    }
    let mut out = gdx_common::table::render(&rows);
    let open = list.iter().filter(|n| matches!(n.state_at(now), "pending" | "OVERDUE")).count();
    if open > 0 {
        out.push_str(&format!(
            "{open} to claim: gdx-agent claim ID, or gdx-agent pass ID --to DIVISION/ORG --reason \"…\"\n"
        ));
    }
    out
}

/// What `claim` and `pass` print.
pub fn acted(n: &Notice, now: i64) -> String {
    match &n.state {
        gdx_common::notice::NoticeState::Passed { to, .. } => {
            format!("passed notice {} ({} for {}) on to {to}\n", n.id, n.matter, n.enterprise)
        }
        _ => format!("notice {} is {}: {} for {} {}\n", n.id, n.state_at(now), n.matter, n.credit_code, n.enterprise),
    }
}

/// The department a notice is passed on to.
pub fn pass_on(to: &str, reason: String) -> anyhow::Result<PassOn> {
    let to = NodeId::parse(to)
        .map_err(|e| anyhow::anyhow!("--to {to:?}: {e}; give DIVISION/ORG, such as 630121/jiaotong"))?;
    Ok(PassOn { to, reason })
}

/// `gdx-agent check` and `feedback`: the answer, each restriction with its
/// memorandum, measure and end, then what was not read and why.
pub fn check_report(c: &Check) -> String {
    let mut out = format!("check {}: {} for {} — {}\n", c.id, c.subject.as_str(), c.matter, c.verdict());
    for h in &c.finding.hits {
        let l = &h.listing;
        out.push_str(&format!(
            "  {}: {} → {}, {} ({}{})\n",
            l.list,
            l.memorandum,
            h.measure,
            l.until.map_or("no end date".to_owned(), |u| format!("until {}", format_date(u.saturating_mul(86_400)))),
            l.reason.as_deref().map(|r| format!("{r}; ")).unwrap_or_default(),
            l.source
        ));
    }
    for (l, why) in &c.finding.other {
        out.push_str(&format!("  listed but not restricting: {}: {} — {why} ({})\n", l.list, l.memorandum, l.source));
    }
    for u in &c.unread {
        out.push_str(&format!("  not read: {u}\n"));
    }
    if c.verdict() == "UNKNOWN" {
        out.push_str("  a list not read cannot clear the subject: get the grant, then check again\n");
    }
    match &c.feedback {
        Some(f) => out.push_str(&format!("feedback: {} — {} ({})\n", f.action.label(), f.reason, format_time(f.at))),
        None => out.push_str(&format!(
            "report what you did: gdx-agent feedback {} --action {} --reason \"…\"\n",
            c.id,
            if c.restricted() { "限制" } else { "未限制" }
        )),
    }
    out
}
