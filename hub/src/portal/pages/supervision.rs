//! 监管协同: a department's 双告知 notices to claim or pass on, the
//! 联合惩戒 check form with its answer and the feedback form, its own
//! checks; for the centre every notice and check kept here and the counts
//! per department. JSON twins: `/api/v1/notices`, `/api/v1/checks`,
//! `/api/v1/supervision`. Every act is logged by the exchange store.

use gdx_common::discipline::{Action, Check};
use gdx_common::notice::Notice;
use gdx_common::wire::{CheckQuery, NoticeAct, PassOn};

use super::*;
use crate::exchange::{Exchange, ExchangeError, Refusal};
use crate::supervision::config::SupervisionConfig;
use crate::supervision::listing::{Counts, counts, subject_shown};

/// What the viewer may see: a department its own, the centre everything.
fn kept(p: &Portal, v: &Viewer) -> Result<(Vec<Notice>, Vec<Check>), String> {
    let x = p.shared.exchange.lock().map_err(|_| "the exchange store is unavailable".to_owned())?;
    let mine = if v.is_staff() { None } else { v.department() };
    Ok((x.notices(mine).map_err(|e| e.to_string())?, x.checks(mine).map_err(|e| e.to_string())?))
}

/// `GET /supervision`.
pub async fn supervision_page(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if let Some(r) = need_session(&v) {
            return r;
        }
        let l = v.lang;
        let now = crate::exchange::clock();
        let q = pairs(raw.as_deref());
        let (notices, checks) = match kept(p, &v) {
            Ok(x) => x,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e),
        };
        let mut body = String::new();
        if let Some(done) = param(&q, "done") {
            body.push_str(&notice("ok", done));
        }
        if let Some(id) = param(&q, "check")
            && let Some(c) = checks.iter().find(|c| c.id == id)
        {
            body.push_str(&check_card(c, &v));
        }
        let department = v.department().is_some();
        body.push_str(&format!("<h2>{}</h2>", l.t("双告知", "Dual notification (双告知)")));
        body.push_str(&notices_table(&notices, &v, now));
        body.push_str(&format!("<h2>{}</h2>", l.t("联合惩戒核查", "Joint discipline checks (联合惩戒)")));
        if department {
            let table = SupervisionConfig::load(&p.dir).map(|c| c.table).unwrap_or_default();
            body.push_str(&check_form(&table.matters(), &v));
        }
        body.push_str(&checks_table(&checks, l));
        if v.is_staff() {
            body.push_str(&format!("<h2>{}</h2>", l.t("各部门情况", "Per department")));
            body.push_str(&counts_table(&counts(&notices, &checks, now), l));
        }
        page_response(StatusCode::OK, &v, "supervision", l.t("监管协同", "Supervision"), &body)
    })
    .await
}

fn notices_table(list: &[Notice], v: &Viewer, now: i64) -> String {
    let l = v.lang;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|n| {
            let state = n.state_at(now);
            let act = match (state, v.department()) {
                ("pending" | "OVERDUE", Some(me)) if me == &n.to => notice_forms(n, v),
                _ => String::new(),
            };
            vec![
                format!("<span class=\"t\">{}</span>", esc(&n.id)),
                esc(&n.to.to_string()),
                notice_badge(state, l),
                esc(&n.matter),
                format!(
                    "<a href=\"/enterprise?code={}\">{}</a> {}",
                    url(&n.credit_code),
                    esc(&n.credit_code),
                    esc(&n.enterprise)
                ),
                esc(&n.scope),
                format!("<span class=\"t\">{}</span>", date(Some(n.claim_by_day.saturating_mul(86_400)))),
                act,
            ]
        })
        .collect();
    table(
        &[
            l.t("编号", "Id"),
            l.t("告知部门", "To"),
            l.t("状态", "State"),
            l.t("许可事项", "Matter"),
            l.t("企业", "Enterprise"),
            l.t("经营范围", "Business scope"),
            l.t("认领期限", "Claim by"),
            "",
        ],
        &rows,
        l.t("暂无告知。", "No notice yet."),
    )
}

/// A notice's state as a coloured badge.
fn notice_badge(state: &str, l: Lang) -> String {
    let (class, zh) = match state {
        "pending" => ("wait", "待认领"),
        "OVERDUE" => ("bad", "逾期未认领"),
        "claimed" => ("good", "已认领"),
        "claimed late" => ("muted", "逾期认领"),
        _ => ("muted", "已移交"),
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(l.t(zh, state)))
}

fn notice_forms(n: &Notice, v: &Viewer) -> String {
    let l = v.lang;
    let action = format!("/supervision/notices/{}", url(&n.id));
    format!(
        "<div class=\"decide\"><form method=\"post\" action=\"{action}\" class=\"inline\">{csrf}<input type=\"hidden\" name=\"act\" value=\"claim\"><button type=\"submit\">{}</button></form>\
         <details><summary>{}</summary><form method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"act\" value=\"pass\">\
         <label>{}<input name=\"to\" placeholder=\"630121/jiaotong\" size=\"18\" required></label><label>{}<input name=\"reason\" required size=\"30\"></label> <button type=\"submit\">{}</button></form></details></div>",
        l.t("认领", "Claim"),
        l.t("移交…", "Pass on…"),
        l.t("移交部门", "To department"),
        l.t("理由", "Reason"),
        l.t("移交", "Pass on"),
        csrf = csrf_field(v),
    )
}

fn check_form(matters: &[&str], v: &Viewer) -> String {
    let l = v.lang;
    format!(
        "<form method=\"post\" action=\"/supervision/check\" class=\"card filters\">{}<label>{}<input name=\"subject\" size=\"22\" maxlength=\"18\" required></label>{}<button type=\"submit\">{}</button></form>",
        csrf_field(v),
        l.t("统一社会信用代码或公民身份号码", "Credit code or ID number"),
        select("matter", l.t("事项类型", "Kind of matter"), matters, None, l.t("（选择）", "(choose)")),
        l.t("核查", "Check"),
    )
}

fn check_card(c: &Check, v: &Viewer) -> String {
    let l = v.lang;
    let mut out = format!(
        "<div class=\"card\"><h3>{} {} · {} · {}</h3>",
        esc(&c.id),
        esc(&subject_shown(c)),
        esc(&c.matter),
        verdict_badge(c, l),
    );
    let mut rows: Vec<Vec<String>> = c
        .finding
        .hits
        .iter()
        .map(|h| {
            vec![
                esc(&h.listing.list),
                esc(&h.listing.memorandum),
                format!("<strong>{}</strong>", esc(&h.measure)),
                date(h.listing.until.map(|d| d.saturating_mul(86_400))),
                esc(h.listing.reason.as_deref().unwrap_or("–")),
                esc(&h.listing.source),
            ]
        })
        .collect();
    rows.extend(c.finding.other.iter().map(|(li, why)| {
        vec![
            esc(&li.list),
            esc(&li.memorandum),
            esc(why),
            date(li.until.map(|d| d.saturating_mul(86_400))),
            esc(li.reason.as_deref().unwrap_or("–")),
            esc(&li.source),
        ]
    }));
    out.push_str(&table(
        &[
            l.t("名单", "List"),
            l.t("备忘录", "Memorandum"),
            l.t("惩戒措施", "Measure"),
            l.t("有效期至", "Until"),
            l.t("原因", "Reason"),
            l.t("来源", "Source"),
        ],
        &rows,
        l.t("所查名单中没有该主体。", "The lists read do not name the subject."),
    ));
    for u in &c.unread {
        out.push_str(&notice("error", &format!("{}{u}", l.t("未能读取：", "Not read: "))));
    }
    match (&c.feedback, v.department()) {
        (Some(f), _) => out.push_str(&notice("ok", &format!("{} {} — {}", l.t("已反馈：", "Feedback:"), f.action.label(), f.reason))),
        (None, Some(me)) if me == &c.node => out.push_str(&format!(
            "<form method=\"post\" action=\"/supervision/checks/{}/feedback\">{}<label>{}<select name=\"action\"><option>限制</option><option>未限制</option></select></label><label>{}<input name=\"reason\" required size=\"40\"></label> <button type=\"submit\">{}</button></form>",
            url(&c.id),
            csrf_field(v),
            l.t("处理结果", "Action"),
            l.t("说明", "Reason"),
            l.t("反馈", "Report"),
        )),
        _ => {}
    }
    out.push_str("</div>");
    out
}

fn verdict_badge(c: &Check, l: Lang) -> String {
    let class = match c.verdict() {
        "RESTRICTED" => "bad",
        "not restricted" => "good",
        _ => "wait",
    };
    let label = match (l, c.verdict()) {
        (Lang::Zh, "RESTRICTED") => "受限",
        (Lang::Zh, "not restricted") => "未受限",
        (Lang::Zh, _) => "无法确定（有名单未能读取）",
        (_, v) => v,
    };
    format!("<span class=\"badge {class}\">{label}</span>")
}

fn checks_table(list: &[Check], l: Lang) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                format!("<a href=\"/supervision?check={}\">{}</a>", url(&c.id), esc(&c.id)),
                esc(&c.node.to_string()),
                time(Some(c.at)),
                esc(&c.matter),
                esc(&subject_shown(c)),
                verdict_badge(c, l),
                c.feedback.as_ref().map_or("–".into(), |f| esc(&format!("{}: {}", f.action.label(), f.reason))),
            ]
        })
        .collect();
    table(
        &[
            l.t("编号", "Id"),
            l.t("核查部门", "By"),
            l.t("时间", "At"),
            l.t("事项", "Matter"),
            l.t("主体", "Subject"),
            l.t("结论", "Answer"),
            l.t("反馈", "Feedback"),
        ],
        &rows,
        l.t("暂无核查。", "No check yet."),
    )
}

fn counts_table(list: &[Counts], l: Lang) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let n = |x: u64| x.to_string();
            vec![
                esc(&c.node),
                n(c.notices),
                n(c.claimed_in_time),
                n(c.claimed_late),
                n(c.passed_on),
                n(c.pending),
                if c.overdue > 0 { format!("<strong>{}</strong>", c.overdue) } else { "0".into() },
                n(c.checks),
                n(c.restricted),
                n(c.with_feedback),
            ]
        })
        .collect();
    table(
        &[
            l.t("部门", "Department"),
            l.t("告知", "Notices"),
            l.t("按时认领", "Claimed in time"),
            l.t("逾期认领", "Claimed late"),
            l.t("移交", "Passed on"),
            l.t("待认领", "Pending"),
            l.t("逾期未认领", "Overdue"),
            l.t("核查", "Checks"),
            l.t("受限", "Restricted"),
            l.t("已反馈", "With feedback"),
        ],
        &rows,
        l.t("暂无数据。", "Nothing yet."),
    )
}

/// The department the viewer acts for, or the page refusing.
fn acting(v: &Viewer) -> Result<NodeId, Box<Response>> {
    v.department().cloned().ok_or_else(|| {
        Box::new(error_page(
            StatusCode::FORBIDDEN,
            v,
            v.lang.t("只有部门可以认领、移交告知和核查。", "Only a department can claim, pass on and check."),
        ))
    })
}

/// A department's form: checked (session, CSRF, a department), then `f`
/// with the exchange store. `Ok(Ok(address))` redirects there,
/// `Ok(Err(why))` shows the mistake, `Err` the store's failure.
fn department_act(
    p: &Portal,
    v: &Viewer,
    body: &[u8],
    f: impl FnOnce(&Form, &NodeId, &mut Exchange) -> Result<Result<String, Refusal>, ExchangeError>,
) -> Response {
    let form = match checked_form(v, body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let me = match acting(v) {
        Ok(me) => me,
        Err(r) => return *r,
    };
    let Ok(mut x) = p.shared.exchange.lock() else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, v, "the exchange store is unavailable");
    };
    match f(&form, &me, &mut x) {
        Ok(Ok(to)) => redirect(&to),
        Ok(Err(why)) => refused_page(v, &why),
        Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, v, &e.to_string()),
    }
}

/// `POST /supervision/notices/{id}`: claim or pass on.
pub async fn act_on_notice(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    blocking(p, headers, move |p, v| {
        let lang = v.lang;
        department_act(p, &v, &body, |form, me, x| {
            let pass = match form.get("act") {
                Some("claim") => None,
                Some("pass") => match NodeId::parse(form.get("to").unwrap_or_default().trim()) {
                    Ok(to) => Some(PassOn { to, reason: form.get("reason").unwrap_or_default().to_owned() }),
                    Err(e) => {
                        return Ok(Err(Refusal::Question(format!("{e}; give DIVISION/ORG, such as 630121/jiaotong"))));
                    }
                },
                _ => return Ok(Err(Refusal::Question("the form names no act; use the portal's buttons".into()))),
            };
            let now = crate::exchange::clock();
            Ok(x.act_on_notice(me, &NoticeAct { id, pass }, now)?.map(|n| {
                let done = format!("{} {}: {}", lang.t("告知", "Notice"), n.id, n.state_at(now));
                format!("/supervision?done={}", url(&done))
            }))
        })
    })
    .await
}

/// `POST /supervision/check`: a department checks a subject.
pub async fn check(State(p): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    blocking(p, headers, move |p, v| {
        department_act(p, &v, &body, |form, me, x| {
            let table = match SupervisionConfig::load(&p.dir) {
                Ok(c) => c.table,
                Err(e) => return Err(ExchangeError::Damaged(e)),
            };
            let q = CheckQuery {
                subject: form.get("subject").unwrap_or_default().to_owned(),
                matter: form.get("matter").unwrap_or_default().to_owned(),
            };
            let now = crate::exchange::clock();
            let entries = |code: &str| {
                let c = p.shared.catalog.lock().ok()?;
                c.get(code, now).ok().flatten().filter(|l| !l.withdrawn).map(|l| l.entry)
            };
            let vaults = p.shared.vaults.clone();
            Ok(crate::supervision::discipline::check(&table, &entries, &vaults, x, me, &q, now)?
                .map(|c| format!("/supervision?check={}", url(&c.id))))
        })
    })
    .await
}

/// `POST /supervision/checks/{id}/feedback`.
pub async fn feedback(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    blocking(p, headers, move |p, v| {
        department_act(p, &v, &body, |form, me, x| {
            let action = match Action::parse(form.get("action").unwrap_or_default()) {
                Ok(a) => a,
                Err(e) => return Ok(Err(Refusal::Question(e))),
            };
            let now = crate::exchange::clock();
            Ok(x.feedback(me, &id, action, form.get("reason").unwrap_or_default(), now)?
                .map(|c| format!("/supervision?check={}", url(&c.id))))
        })
    })
    .await
}

/// `GET /api/v1/notices`, `/api/v1/checks`, `/api/v1/supervision`: as the page shows them.
pub async fn supervision_json(State(p): State<Arc<Portal>>, headers: HeaderMap, what: &'static str) -> Response {
    blocking(p, headers, move |p, v| {
        if v.session.is_none() {
            return json_error(StatusCode::UNAUTHORIZED, "sign in first: `gdx-agent login` or `gdx-hub login`");
        }
        let (notices, checks) = match kept(p, &v) {
            Ok(x) => x,
            Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        match what {
            "notices" => Json(notices).into_response(),
            "checks" => Json(checks).into_response(),
            _ => Json(counts(&notices, &checks, crate::exchange::clock())).into_response(),
        }
    })
    .await
}
