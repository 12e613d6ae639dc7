//! The portal's pages, each with its JSON twin: the catalogue and an
//! entry (with the request form), requests and decisions, the tree of
//! nodes, the audit log (filters, the latest checkpoint, verification, the
//! bundle), and charts. Who sees what: visitors the entries open to the
//! public; a department the whole catalogue and its own requests and
//! grants; operators and auditors everything of this hub's subtree, and
//! only operators and departments act.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gdx_common::NodeId;
use gdx_common::catalog::{CatalogClass, SharingType, UpdateCycle};
use gdx_common::wire::{Decision, RequestForm, Verdict};

use super::charts::{Bar, hbars};
use super::html::{badge, csrf_field, date, esc, notice, table, time, url};
use super::{Lang, Portal, Viewer, blocking, checked_form, error_page, page_response, redirect};
use crate::catalog::{FilterArgs, Listed};
use crate::store::{HubPaths, Role, Store};
use crate::util::now;

/// The query string's pairs, empty values dropped.
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------- catalogue

/// The entries a viewer may see under the query's filters.
fn catalogue(p: &Portal, v: &Viewer, q: &[(String, String)]) -> Result<Vec<Listed>, String> {
    let args = FilterArgs {
        q: param(q, "q").map(str::to_owned),
        class: param(q, "class").map(str::to_owned),
        provider: param(q, "provider").map(str::to_owned),
        division: param(q, "division").map(str::to_owned),
        sharing: param(q, "sharing").map(str::to_owned),
        cycle: param(q, "cycle").map(str::to_owned),
        overdue: param(q, "overdue").is_some(),
        withdrawn: false,
        as_of: None,
    };
    let (filter, at) = args.to_filter(now())?;
    let mut entries = p
        .shared
        .catalog
        .lock()
        .map_err(|_| "the catalogue is unavailable".to_owned())?
        .list(&filter, at)
        .map_err(|e| e.to_string())?;
    if v.session.is_none() {
        entries.retain(|l| l.entry.open_to_public);
    }
    Ok(entries)
}

fn select(name: &str, label: &str, options: &[&str], chosen: Option<&str>, any: &str) -> String {
    let mut out = format!("<label>{}<select name=\"{name}\"><option value=\"\">{}</option>", esc(label), esc(any));
    for o in options {
        let sel = if Some(*o) == chosen { " selected" } else { "" };
        out.push_str(&format!("<option{sel}>{}</option>", esc(o)));
    }
    out.push_str("</select></label>");
    out
}

/// The division tree as a select: the province, each prefecture, and its
/// counties indented below it (current divisions only).
fn division_select(label: &str, chosen: Option<&str>, any: &str) -> String {
    use gdx_common::division::DivisionLevel;
    let mut out = format!("<label>{}<select name=\"division\"><option value=\"\">{}</option>", esc(label), esc(any));
    for d in gdx_common::division::divisions().into_iter().filter(|d| d.retired.is_none()) {
        let code = d.code.to_string();
        let indent = match d.code.level() {
            DivisionLevel::Province => "",
            DivisionLevel::Prefecture => "\u{3000}",
            DivisionLevel::County => "\u{3000}\u{3000}",
        };
        let sel = if chosen == Some(code.as_str()) { " selected" } else { "" };
        out.push_str(&format!("<option value=\"{code}\"{sel}>{indent}{} {code}</option>", esc(&d.name)));
    }
    out.push_str("</select></label>");
    out
}

fn freshness(l: &Listed, lang: Lang) -> String {
    if l.freshness.overdue { badge("overdue", lang) } else { badge("ok", lang) }
}

/// `GET /catalog`.
pub async fn catalog_page(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        let l = v.lang;
        let q = pairs(raw.as_deref());
        let classes: Vec<&str> = CatalogClass::ALL.iter().map(|c| c.label()).collect();
        let sharing: Vec<&str> = SharingType::ALL.iter().map(|c| c.label()).collect();
        let cycles: Vec<&str> = UpdateCycle::ALL.iter().map(|c| c.label()).collect();
        let any = l.t("全部", "Any");
        let mut body = format!(
            "<form method=\"get\" action=\"/catalog\" class=\"card filters\" role=\"search\">\
             <label>{}<input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"{}\"></label>{}{}{}\
             {}\
             <label>{}<input type=\"text\" name=\"provider\" value=\"{}\" size=\"16\" placeholder=\"630000/gongan\"></label>\
             <label class=\"checks\"><span><input type=\"checkbox\" name=\"overdue\" value=\"1\"{}> {}</span></label>\
             <button type=\"submit\">{}</button></form>",
            l.t("关键词", "Search"),
            esc(param(&q, "q").unwrap_or_default()),
            l.t("如：人口、法人、婚姻", "e.g. 人口, 法人"),
            select("class", l.t("资源分类", "Class"), &classes, param(&q, "class"), any),
            select("sharing", l.t("共享类型", "Sharing"), &sharing, param(&q, "sharing"), any),
            select("cycle", l.t("更新周期", "Update cycle"), &cycles, param(&q, "cycle"), any),
            division_select(l.t("行政区划", "Division"), param(&q, "division"), any),
            l.t("提供方", "Provider"),
            esc(param(&q, "provider").unwrap_or_default()),
            if param(&q, "overdue").is_some() { " checked" } else { "" },
            l.t("仅超期未更新", "Overdue only"),
            l.t("查询", "Search"),
        );
        match catalogue(p, &v, &q) {
            Err(e) => body.push_str(&notice("error", &e)),
            Ok(entries) => {
                body.push_str(&format!("<p class=\"muted\">{} {}</p>", entries.len(), l.t("条资源", "entries")));
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        vec![
                            format!("<a href=\"/catalog/{}\">{}</a>", esc(&e.entry.code), esc(&e.entry.code)),
                            esc(&e.entry.name),
                            esc(e.entry.class.label()),
                            format!("{}<br><span class=\"muted\">{}</span>", esc(&e.entry.provider_name), esc(&e.entry.provider.to_string())),
                            esc(e.entry.sharing_type.label()),
                            esc(e.entry.update_cycle.label()),
                            time(e.freshness.last_change),
                            freshness(e, l),
                        ]
                    })
                    .collect();
                let head = [
                    l.t("信息资源代码", "Code"),
                    l.t("名称", "Name"),
                    l.t("分类", "Class"),
                    l.t("提供方", "Provider"),
                    l.t("共享类型", "Sharing"),
                    l.t("更新周期", "Cycle"),
                    l.t("数据更新", "Data changed"),
                    l.t("时效", "Freshness"),
                ];
                body.push_str(&table(
                    &head,
                    &rows,
                    l.t("没有符合条件的资源。试试更短的关键词（两个汉字即可），或清除筛选条件。", "No entry matches. Try a shorter term (two characters will do), or clear the filters."),
                ));
            }
        }
        page_response(StatusCode::OK, &v, "catalog", l.t("政务信息资源目录", "Catalogue of government data"), &body)
    })
    .await
}

/// `GET /catalog/{前段码}/{后段码}`: one entry, and for a department the request form.
pub async fn entry_page(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    UrlPath((front, back)): UrlPath<(String, String)>,
) -> Response {
    blocking(p, headers, move |p, v| {
        let l = v.lang;
        let code = format!("{front}/{back}");
        let found = gdx_common::catalog::check_code(&code)
            .ok()
            .and_then(|_| p.shared.catalog.lock().ok().and_then(|c| c.get(&code, now()).ok().flatten()));
        let Some(e) = found.filter(|e| v.session.is_some() || e.entry.open_to_public) else {
            return error_page(
                StatusCode::NOT_FOUND,
                &v,
                &format!(
                    "{} {code}",
                    l.t("目录中没有（或不向社会开放）资源", "The catalogue holds no entry open to you with the code")
                ),
            );
        };
        let en = &e.entry;
        let fact = |k: &str, val: String| format!("<dt>{}</dt><dd>{val}</dd>", esc(k));
        let mut body = String::from("<div class=\"card\"><dl class=\"facts\">");
        body.push_str(&fact(l.t("信息资源代码", "Code"), esc(&en.code)));
        body.push_str(&fact(
            l.t("信息资源分类", "Class"),
            format!("{} · {}", esc(en.class.label()), esc(&en.classification.join(" / "))),
        ));
        body.push_str(&fact(
            l.t("提供方", "Provider"),
            format!("{} ({}) {}", esc(&en.provider_name), esc(&en.provider.to_string()), esc(&en.provider_code)),
        ));
        body.push_str(&fact(l.t("摘要", "Summary"), esc(&en.summary)));
        let mut sharing = esc(en.sharing_type.label());
        if let Some(c) = &en.sharing_condition {
            sharing.push_str(&format!(" — {}", esc(c)));
        }
        if let Some(b) = &en.legal_basis {
            sharing.push_str(&format!("<br><span class=\"muted\">{}</span>", esc(b)));
        }
        body.push_str(&fact(l.t("共享类型", "Sharing"), sharing));
        body.push_str(&fact(l.t("共享方式", "Method"), esc(en.sharing_method.label())));
        body.push_str(&fact(l.t("更新周期", "Update cycle"), esc(en.update_cycle.label())));
        body.push_str(&fact(
            l.t("向社会开放", "Open to the public"),
            esc(l.t(if en.open_to_public { "是" } else { "否" }, if en.open_to_public { "yes" } else { "no" })),
        ));
        body.push_str(&fact(l.t("发布日期", "Published"), esc(&en.published)));
        body.push_str(&fact(l.t("版本", "Version"), format!("{} ({})", e.version, time(Some(e.version_at)))));
        body.push_str(&fact(
            l.t("时效", "Freshness"),
            format!("{} {} {}", freshness(&e, l), l.t("数据更新于", "data changed"), time(e.freshness.last_change)),
        ));
        body.push_str("</dl></div>");
        body.push_str(&format!("<h2>{}</h2>", l.t("信息项", "Items (信息项)")));
        let rows: Vec<Vec<String>> = en
            .items
            .iter()
            .map(|i| {
                vec![
                    esc(&i.name),
                    esc(i.column()),
                    esc(i.data_type.label()),
                    i.length.to_string(),
                    esc(l.t(
                        if i.sensitive { "敏感（脱敏交付）" } else { "" },
                        if i.sensitive { "sensitive (masked)" } else { "" },
                    )),
                ]
            })
            .collect();
        body.push_str(&table(
            &[
                l.t("名称", "Name"),
                l.t("字段", "Column"),
                l.t("数据类型", "Type"),
                l.t("长度", "Length"),
                l.t("说明", "Note"),
            ],
            &rows,
            "–",
        ));
        // a department may ask for another's data
        if let Some(me) = v.department()
            && me != &en.provider
            && en.sharing_type != SharingType::NotShared
        {
            let checks: String = en
                .items
                .iter()
                .map(|i| {
                    format!(
                        "<label><input type=\"checkbox\" name=\"fields\" value=\"{}\" checked> {}</label>",
                        esc(&i.name),
                        esc(&i.name)
                    )
                })
                .collect();
            let answer = match en.sharing_type {
                SharingType::Unconditional => l.t("无条件共享：提交后即授权。", "Unconditional: granted when filed."),
                _ => l.t(
                    "有条件共享：提供方须在10个工作日内答复。",
                    "Conditional: the provider answers within 10 working days.",
                ),
            };
            body.push_str(&format!(
                "<h2>{}</h2><form method=\"post\" action=\"/requests\" class=\"card\">{}\
                 <input type=\"hidden\" name=\"code\" value=\"{}\">\
                 <fieldset><legend>{}</legend><div class=\"checks\">{checks}</div></fieldset>\
                 <div class=\"field\"><label>{}<textarea name=\"purpose\" required></textarea></label></div>\
                 <div class=\"field\"><label>{}<input type=\"date\" name=\"until\"></label></div>\
                 <p class=\"muted\">{answer}</p><button type=\"submit\">{}</button></form>",
                l.t("申请使用", "Request this data"),
                csrf_field(&v),
                esc(&en.code),
                l.t("申请的信息项", "Fields"),
                l.t("用途（必填）", "Purpose (required)"),
                l.t("使用截止日期（可选）", "Until (optional)"),
                l.t("提交申请", "File the request"),
            ));
        } else if v.session.is_none() {
            body.push_str(&notice(
                "empty",
                l.t(
                    "部门申请使用数据，请先在本部门的前置机上运行 gdx-agent login 登录。",
                    "To request data, sign in with the link `gdx-agent login` prints on your department's agent.",
                ),
            ));
        }
        page_response(StatusCode::OK, &v, "catalog", &en.name, &body)
    })
    .await
}

// ---------------------------------------------------------------- requests

/// The requests a viewer may see: a department those it filed or must
/// decide; operators and auditors all this hub holds.
fn requests_of(p: &Portal, v: &Viewer) -> Result<Vec<crate::exchange::Listed>, String> {
    let all = p
        .shared
        .exchange
        .lock()
        .map_err(|_| "the exchange store is unavailable".to_owned())?
        .list(crate::exchange::clock())
        .map_err(|e| e.to_string())?;
    Ok(match (v.role(), v.department()) {
        (Some(Role::Department), Some(me)) => {
            all.into_iter().filter(|r| &r.record.consumer == me || &r.record.provider == me).collect()
        }
        (Some(Role::Operator | Role::Auditor), _) => all,
        _ => Vec::new(),
    })
}

fn need_session(v: &Viewer) -> Option<Response> {
    v.session.is_none().then(|| {
        error_page(
            StatusCode::UNAUTHORIZED,
            v,
            v.lang.t(
                "请先登录：部门在前置机上运行 gdx-agent login，运维和审计人员在平台上运行 gdx-hub login。",
                "Sign in first: departments with `gdx-agent login` on their agent, the centre with `gdx-hub login`.",
            ),
        )
    })
}

fn need_staff(v: &Viewer) -> Option<Response> {
    need_session(v).or_else(|| {
        (!v.is_staff()).then(|| {
            error_page(
                StatusCode::FORBIDDEN,
                v,
                v.lang.t("此页面仅供平台运维和审计人员使用。", "This page is for the centre's operators and auditors."),
            )
        })
    })
}

/// `GET /requests`.
pub async fn requests_page(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if let Some(r) = need_session(&v) {
            return r;
        }
        let l = v.lang;
        let q = pairs(raw.as_deref());
        let mut body = String::new();
        if let Some(done) = param(&q, "done") {
            body.push_str(&notice("ok", done));
        }
        let list = match requests_of(p, &v) {
            Ok(x) => x,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e),
        };
        let now = crate::exchange::clock();
        let me = v.department().cloned();
        let row = |r: &crate::exchange::Listed, actions: String| -> Vec<String> {
            let rec = &r.record;
            let why = r
                .error
                .clone()
                .or_else(|| rec.refusal(now))
                .map(|w| format!("<br><span class=\"muted\">{}</span>", esc(&w)))
                .unwrap_or_default();
            // a pending request shows the day its answer is due (10 working days)
            let due = match &rec.status {
                gdx_common::wire::Status::Pending { answer_by_day } => {
                    format!(
                        "<br><span class=\"muted\">{} {}</span>",
                        l.t("答复期限", "answer by"),
                        date(Some(answer_by_day * 86_400))
                    )
                }
                _ => String::new(),
            };
            let granted = if rec.columns.is_empty() {
                "–".to_owned()
            } else {
                let masked = if rec.masked.is_empty() {
                    String::new()
                } else {
                    format!(
                        "<br><span class=\"muted\">{}: {}</span>",
                        l.t("脱敏", "masked"),
                        esc(&rec.masked.join(", "))
                    )
                };
                format!("{}{masked}", esc(&rec.columns.join(", ")))
            };
            vec![
                esc(&rec.id),
                format!("<a href=\"/catalog/{}\">{}</a><br>{}", esc(&rec.code), esc(&rec.code), esc(&rec.name)),
                format!("{} → {}", esc(&rec.provider.to_string()), esc(&rec.consumer.to_string())),
                format!("{}<br><span class=\"muted\">{}</span>", esc(&rec.fields.join(", ")), esc(&rec.purpose)),
                format!("{}{due}{why}", badge(&r.state, l)),
                granted,
                format!("{} / {}", date(rec.granted_until.map(|d| d * 86_400)), r.rows_delivered),
                actions,
            ]
        };
        let head = [
            l.t("编号", "Id"),
            l.t("资源", "Entry"),
            l.t("提供方 → 使用方", "Provider → consumer"),
            l.t("申请的信息项与用途", "Fields asked, purpose"),
            l.t("状态", "State"),
            l.t("授权的信息项", "Granted"),
            l.t("截止 / 已交付行数", "Until / rows delivered"),
            l.t("操作", "Actions"),
        ];
        let can_act = matches!(v.role(), Some(Role::Department));
        match &me {
            Some(me) => {
                let mine: Vec<Vec<String>> =
                    list.iter().filter(|r| &r.record.consumer == me).map(|r| row(r, String::new())).collect();
                body.push_str(&format!("<h2>{}</h2>", l.t("我的申请", "My requests")));
                body.push_str(&table(
                    &head,
                    &mine,
                    l.t(
                        "还没有申请。在资源目录中打开一条资源即可申请使用。",
                        "No requests yet. Open an entry in the catalogue to request it.",
                    ),
                ));
                let theirs: Vec<Vec<String>> = list
                    .iter()
                    .filter(|r| &r.record.provider == me)
                    .map(|r| row(r, if can_act { decide_form(&v, r) } else { String::new() }))
                    .collect();
                body.push_str(&format!("<h2>{}</h2>", l.t("向我申请的（待我决定）", "Asked of me (to decide)")));
                body.push_str(&table(
                    &head,
                    &theirs,
                    l.t("没有其他部门申请本部门的数据。", "No department has asked for your data."),
                ));
            }
            None => {
                let all: Vec<Vec<String>> = list.iter().map(|r| row(r, String::new())).collect();
                body.push_str(&table(&head, &all, l.t("本平台还没有申请。", "No requests at this hub yet.")));
            }
        }
        page_response(StatusCode::OK, &v, "requests", l.t("申请与授权", "Requests and grants"), &body)
    })
    .await
}

/// The provider's forms for one request: approve (narrowed) or deny a
/// pending one, revoke a grant.
fn decide_form(v: &Viewer, r: &crate::exchange::Listed) -> String {
    let l = v.lang;
    let rec = &r.record;
    let action = format!("/requests/{}/decide", url(&rec.id));
    let reason = |verdict: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"{action}\">{}<input type=\"hidden\" name=\"verdict\" value=\"{verdict}\">\
             <label>{}<input type=\"text\" name=\"reason\" required></label> <button type=\"submit\" class=\"secondary\">{}</button></form>",
            csrf_field(v),
            l.t("理由", "Reason"),
            esc(label)
        )
    };
    match r.state.as_str() {
        "pending" | "OVERDUE" => {
            let checks: String = rec
                .fields
                .iter()
                .map(|f| {
                    format!(
                        "<label><input type=\"checkbox\" name=\"fields\" value=\"{}\" checked> {}</label>",
                        esc(f),
                        esc(f)
                    )
                })
                .collect();
            let clear: String = rec
                .fields
                .iter()
                .map(|f| {
                    format!("<label><input type=\"checkbox\" name=\"clear\" value=\"{}\"> {}</label>", esc(f), esc(f))
                })
                .collect();
            format!(
                "<div class=\"decide\"><details><summary>{}</summary><form method=\"post\" action=\"{action}\">{}\
                 <input type=\"hidden\" name=\"verdict\" value=\"approve\"><fieldset><legend>{}</legend><div class=\"checks\">{checks}</div></fieldset>\
                 <fieldset><legend>{}</legend><div class=\"checks\">{clear}</div></fieldset>\
                 <label>{}<input type=\"date\" name=\"until\"></label> <button type=\"submit\">{}</button></form></details>\
                 <details><summary>{}</summary>{}</details></div>",
                l.t("批准…", "Approve…"),
                csrf_field(v),
                l.t("批准的信息项（可减少）", "Fields granted (may be fewer)"),
                l.t("敏感信息项明文交付（默认脱敏）", "Sensitive fields delivered in clear (masked unless ticked)"),
                l.t("截止日期", "Until"),
                l.t("批准", "Approve"),
                l.t("拒绝…", "Deny…"),
                reason("deny", l.t("拒绝", "Deny")),
            )
        }
        "granted" => format!(
            "<details><summary>{}</summary>{}</details>",
            l.t("撤销…", "Revoke…"),
            reason("revoke", l.t("撤销授权", "Revoke"))
        ),
        _ => String::new(),
    }
}

/// `POST /requests`: a department files a request.
pub async fn file_request(State(p): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    blocking(p, headers, move |p, v| {
        let form = match checked_form(&v, &body) {
            Ok(f) => f,
            Err(r) => return *r,
        };
        let Some(me) = v.department().cloned() else {
            return error_page(
                StatusCode::FORBIDDEN,
                &v,
                v.lang.t("只有部门可以申请使用数据。", "Only a department can request data."),
            );
        };
        let until = match form.get("until").map(gdx_common::units::parse_date).transpose() {
            Ok(d) => d,
            Err(e) => return error_page(StatusCode::BAD_REQUEST, &v, &e),
        };
        let request = RequestForm {
            code: form.get("code").unwrap_or_default().to_owned(),
            fields: form.all("fields"),
            purpose: form.get("purpose").unwrap_or_default().to_owned(),
            until,
        };
        let now = crate::exchange::clock();
        let entry = p
            .shared
            .catalog
            .lock()
            .ok()
            .and_then(|c| c.get(&request.code, now).ok().flatten())
            .map(|l| (l.entry, l.withdrawn));
        let filed = match p.shared.exchange.lock() {
            Ok(mut x) => x.file(&me, &request, entry, now),
            Err(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, "the exchange store is unavailable"),
        };
        match filed {
            Ok(Ok(r)) => {
                let done = format!("{} {} {}: {}", v.lang.t("已提交申请", "Filed request"), r.id, r.code, r.state(now));
                redirect(&format!("/requests?done={}", url(&done)))
            }
            Ok(Err(why)) => error_page(StatusCode::BAD_REQUEST, &v, &why),
            Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e.to_string()),
        }
    })
    .await
}

/// `POST /requests/{id}/decide`: the provider approves, denies or revokes.
pub async fn decide(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    blocking(p, headers, move |p, v| {
        let form = match checked_form(&v, &body) {
            Ok(f) => f,
            Err(r) => return *r,
        };
        let Some(me) = v.department().cloned() else {
            return error_page(
                StatusCode::FORBIDDEN,
                &v,
                v.lang.t(
                    "只有提供数据的部门可以批准、拒绝或撤销申请。",
                    "Only the providing department can approve, deny or revoke a request.",
                ),
            );
        };
        let reason = form.get("reason").unwrap_or_default().to_owned();
        let verdict = match form.get("verdict") {
            Some("approve") => {
                let until = match form.get("until").map(gdx_common::units::parse_date).transpose() {
                    Ok(d) => d,
                    Err(e) => return error_page(StatusCode::BAD_REQUEST, &v, &e),
                };
                Verdict::Approve { fields: Some(form.all("fields")), until, clear: form.all("clear") }
            }
            Some("deny") => Verdict::Deny { reason },
            Some("revoke") => Verdict::Revoke { reason },
            _ => return error_page(StatusCode::BAD_REQUEST, &v, "the form names no verdict; use the portal's buttons"),
        };
        let now = crate::exchange::clock();
        let catalog = p.shared.catalog.clone();
        let decided = match p.shared.exchange.lock() {
            Ok(mut x) => x.decide(
                &me,
                &Decision { id: id.clone(), verdict },
                |code| catalog.lock().ok().and_then(|c| c.get(code, now).ok().flatten()).map(|l| l.entry),
                now,
            ),
            Err(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, "the exchange store is unavailable"),
        };
        match decided {
            Ok(Ok(r)) => {
                let done = format!("{} {}: {}", v.lang.t("已处理申请", "Decided request"), r.id, r.state(now));
                redirect(&format!("/requests?done={}", url(&done)))
            }
            Ok(Err(why)) => error_page(StatusCode::BAD_REQUEST, &v, &why),
            Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e.to_string()),
        }
    })
    .await
}

/// `GET /api/v1/requests`.
pub async fn requests_json(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    blocking(p, headers, |p, v| {
        if v.session.is_none() {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "sign in through a login link first (`gdx-agent login` or `gdx-hub login`)",
            );
        }
        match requests_of(p, &v) {
            Ok(list) => Json(serde_json::json!({ "count": list.len(), "requests": strip_salt(list) })).into_response(),
            Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    })
    .await
}

/// The records without the hubs' grant secrets.
fn strip_salt(list: Vec<crate::exchange::Listed>) -> Vec<crate::exchange::Listed> {
    list.into_iter()
        .map(|mut l| {
            l.record.salt.clear();
            l
        })
        .collect()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

// ---------------------------------------------------------------- tree

/// The tree, problems first: nodes not connected, then by node.
fn tree(p: &Portal) -> Result<Vec<crate::nodes::NodeStatus>, String> {
    let paths = HubPaths::new(&p.dir);
    let store = Store::open(&paths.db()).map_err(|e| e.to_string())?;
    let mut list = crate::nodes::list(&store, Some(&paths.vaults()), now()).map_err(|e| e.to_string())?;
    // problems first: not connected, then rows quarantined, then the rest, each by node
    let fine = |n: &crate::nodes::NodeStatus| (n.state == "connected", n.quality.iter().all(|q| q.quarantined == 0));
    list.sort_by(|a, b| (fine(a), &a.row.node).cmp(&(fine(b), &b.row.node)));
    Ok(list)
}

/// `GET /tree`.
pub async fn tree_page(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    blocking(p, headers, |p, v| {
        if let Some(r) = need_staff(&v) {
            return r;
        }
        let l = v.lang;
        let list = match tree(p) {
            Ok(x) => x,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e),
        };
        let overdue: Vec<(NodeId, String)> = p
            .shared
            .catalog
            .lock()
            .ok()
            .and_then(|c| c.list(&crate::catalog::Filter { overdue: true, ..Default::default() }, now()).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.entry.provider, e.entry.name))
            .collect();
        let quarantines = list.iter().flat_map(|n| &n.quality).filter(|q| q.quarantined > 0).count();
        let problems = list.iter().filter(|n| n.state != "connected").count() + overdue.len() + quarantines;
        let mut body = if problems == 0 {
            notice(
                "ok",
                l.t(
                    "所有节点在线，所有资源按更新周期更新。",
                    "Every node is connected and every resource is up to date.",
                ),
            )
        } else {
            notice(
                "error",
                &format!(
                    "{problems} {}",
                    l.t(
                        "个问题（离线节点、超期未更新的资源）排在最前。",
                        "problems (offline nodes, overdue resources) are listed first."
                    )
                ),
            )
        };
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|n| {
                let res: Vec<String> = n
                    .resources
                    .iter()
                    .map(|r| {
                        format!(
                            "{} · {} {} · #{} · {}",
                            esc(&r.resource),
                            r.rows,
                            l.t("行", "rows"),
                            r.last_seq,
                            time(Some(r.updated_at))
                        )
                    })
                    .collect();
                let quarantined: Vec<String> = n
                    .quality
                    .iter()
                    .filter(|q| q.quarantined > 0)
                    .map(|q| {
                        let first = q.samples.first().map(|(p, r)| format!("{p}: {r}")).unwrap_or_default();
                        format!(
                            "<span class=\"badge bad\">{} {} {}</span> {} <span class=\"muted\">{}</span>",
                            esc(&q.resource),
                            q.quarantined,
                            l.t("行被隔离", "rows quarantined"),
                            time(Some(q.at)),
                            esc(&first)
                        )
                    })
                    .collect();
                let late: Vec<String> = overdue
                    .iter()
                    .filter(|(prov, _)| prov.to_string() == n.row.node)
                    .map(|(_, name)| format!("{} {}", badge("overdue", l), esc(name)))
                    .collect();
                vec![
                    esc(&n.row.node),
                    esc(&n.row.role),
                    format!("{} {}", esc(&n.row.division), esc(&n.row.division_name)),
                    esc(n.via.as_deref().unwrap_or("–")),
                    badge(&n.state, l),
                    n.backlog.map(|b| b.to_string()).unwrap_or_else(|| "–".into()),
                    date(n.row.cert_not_after),
                    time(n.row.last_seen),
                    [res, quarantined, late].concat().join("<br>"),
                ]
            })
            .collect();
        let head = [
            l.t("节点", "Node"),
            l.t("角色", "Role"),
            l.t("行政区划", "Division"),
            l.t("经由", "Via"),
            l.t("状态", "State"),
            l.t("积压", "Backlog"),
            l.t("证书到期", "Certificate expires"),
            l.t("最近连接", "Last seen"),
            l.t("资源（行数 · 最近变更集 · 时间）", "Resources (rows · last changeset · time)"),
        ];
        body.push_str(&table(
            &head,
            &rows,
            l.t(
                "还没有节点注册。用 gdx-hub token 为部门生成注册令牌。",
                "No node has enrolled yet. Make a token with `gdx-hub token`.",
            ),
        ));
        page_response(StatusCode::OK, &v, "tree", l.t("节点与连接", "Nodes and connections"), &body)
    })
    .await
}

/// `GET /api/v1/tree`.
pub async fn tree_json(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    staff_json(p, headers, "the tree", |p| {
        tree(p).map(|list| serde_json::json!({ "count": list.len(), "nodes": list }))
    })
    .await
}

/// A JSON twin for operators and auditors only: `what`, made by `f`.
async fn staff_json<T: serde::Serialize + 'static>(
    p: Arc<Portal>,
    headers: HeaderMap,
    what: &'static str,
    f: fn(&Portal) -> Result<T, String>,
) -> Response {
    blocking(p, headers, move |p, v| {
        if !v.is_staff() {
            let why = format!("{what} is for the centre's operators and auditors; sign in with `gdx-hub login`");
            return json_error(StatusCode::FORBIDDEN, &why);
        }
        match f(p) {
            Ok(x) => Json(x).into_response(),
            Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    })
    .await
}

// ---------------------------------------------------------------- audit

/// The audit filter of a query string.
fn audit_filter(q: &[(String, String)]) -> Result<crate::audit::Filter, String> {
    let day = |name: &str, end: bool| -> Result<Option<i64>, String> {
        param(q, name).map(|d| gdx_common::units::parse_date(d).map(|day| (day + i64::from(end)) * 86_400)).transpose()
    };
    let kind = param(q, "kind").map(str::to_owned);
    if let Some(k) = kind.as_deref().filter(|k| !crate::audit::KINDS.contains(k)) {
        return Err(format!("{k:?} is not an entry kind; use one of {}", crate::audit::KINDS.join(", ")));
    }
    Ok(crate::audit::Filter {
        node: param(q, "node").map(str::to_owned),
        resource: param(q, "resource").map(str::to_owned),
        kind,
        since: day("since", false)?,
        until: day("until", true)?,
        request: param(q, "request").map(str::to_owned),
    })
}

/// Entries shown on a page, newest first.
const AUDIT_PAGE: usize = 200;

/// `GET /audit`.
pub async fn audit_page(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if let Some(r) = need_staff(&v) {
            return r;
        }
        let l = v.lang;
        let q = pairs(raw.as_deref());
        let mut body = String::new();
        if let Some(verdict) = param(&q, "verdict") {
            let kind = if param(&q, "ok").is_some() { "ok" } else { "error" };
            body.push_str(&format!("<div class=\"notice {kind} verdict\" role=\"status\">{}</div>", esc(verdict)));
        }
        let kinds: Vec<&str> = crate::audit::KINDS.to_vec();
        body.push_str(&format!(
            "<form method=\"get\" action=\"/audit\" class=\"card filters\">{}\
             <label>{}<input type=\"text\" name=\"node\" value=\"{}\" size=\"16\"></label>\
             <label>{}<input type=\"text\" name=\"resource\" value=\"{}\" size=\"14\"></label>\
             <label>{}<input type=\"text\" name=\"request\" value=\"{}\" size=\"10\"></label>\
             <label>{}<input type=\"date\" name=\"since\" value=\"{}\"></label>\
             <label>{}<input type=\"date\" name=\"until\" value=\"{}\"></label>\
             <button type=\"submit\">{}</button></form>",
            select("kind", l.t("类型", "Kind"), &kinds, param(&q, "kind"), l.t("全部", "Any")),
            l.t("节点", "Node"),
            esc(param(&q, "node").unwrap_or_default()),
            l.t("资源", "Resource"),
            esc(param(&q, "resource").unwrap_or_default()),
            l.t("申请编号", "Request"),
            esc(param(&q, "request").unwrap_or_default()),
            l.t("起", "Since"),
            esc(param(&q, "since").unwrap_or_default()),
            l.t("止", "Until"),
            esc(param(&q, "until").unwrap_or_default()),
            l.t("筛选", "Filter"),
        ));
        let filter = match audit_filter(&q) {
            Ok(f) => f,
            Err(e) => return error_page(StatusCode::BAD_REQUEST, &v, &e),
        };
        let Ok(log) = p.shared.audit.lock() else {
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, "the audit log is unavailable");
        };
        let checkpoint = log.last_checkpoint().ok().flatten();
        let cosigned = log.evidence().unwrap_or_default();
        let entries = match log.list(&filter) {
            Ok(e) => e,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e.to_string()),
        };
        drop(log);
        body.push_str(&format!("<h2>{}</h2><div class=\"card\">", l.t("最新检查点", "Latest checkpoint")));
        match &checkpoint {
            Some(c) => body.push_str(&format!(
                "<dl class=\"facts\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd><code>{}</code></dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
                l.t("条目数", "Entries"),
                c.size,
                l.t("默克尔根", "Merkle root"),
                esc(&c.root),
                l.t("签署时间", "Signed at"),
                time(Some(c.at)),
                l.t("上级联署", "Cosignatures"),
                cosigned.len()
            )),
            None => body.push_str(&notice("empty", l.t("还没有检查点；平台每分钟签署一次。", "No checkpoint yet; the hub signs one every minute."))),
        }
        body.push_str(&format!(
            "<form method=\"post\" action=\"/audit/verify\" class=\"inline\">{}<button type=\"submit\">{}</button></form> \
             <a class=\"button\" href=\"/audit/bundle\" download>{}</a></div>",
            csrf_field(&v),
            l.t("验证审计日志", "Verify the log"),
            l.t("导出审计包", "Export a bundle"),
        ));
        let shown: Vec<Vec<String>> = entries
            .iter()
            .rev()
            .take(AUDIT_PAGE)
            .map(|e| {
                let ev = &e.event;
                vec![
                    e.index.to_string(),
                    time(Some(ev.at)),
                    esc(&ev.kind),
                    esc(ev.node.as_deref().unwrap_or("–")),
                    esc(ev.resource.as_deref().unwrap_or("–")),
                    esc(ev.request.as_deref().unwrap_or("–")),
                    format!("<code>{}</code>", esc(&ev.detail.to_string())),
                ]
            })
            .collect();
        body.push_str(&format!(
            "<h2>{} <span class=\"muted\">({} {})</span></h2>",
            l.t("审计条目", "Entries"),
            entries.len(),
            l.t("条，显示最新的200条", "in all; the newest 200 shown")
        ));
        body.push_str(&table(
            &[l.t("序号", "#"), l.t("时间", "Time"), l.t("类型", "Kind"), l.t("节点", "Node"), l.t("资源", "Resource"), l.t("申请", "Request"), l.t("详情", "Detail")],
            &shown,
            l.t("没有符合条件的审计条目。", "No entry matches."),
        ));
        page_response(StatusCode::OK, &v, "audit", l.t("审计日志", "Audit log"), &body)
    })
    .await
}

/// The bundle of this hub's audit log, as `gdx-hub audit export` writes it.
fn audit_bundle(p: &Portal) -> Result<crate::audit::Bundle, String> {
    let log = p.shared.audit.lock().map_err(|_| "the audit log is unavailable".to_owned())?;
    log.bundle().map_err(|e| e.to_string())
}

/// `POST /audit/verify`: the verification `gdx-hub audit verify` runs, its verdict shown.
pub async fn verify(State(p): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    blocking(p, headers, move |p, v| {
        if let Err(r) = checked_form(&v, &body) {
            return *r;
        }
        if let Some(r) = need_staff(&v) {
            return r;
        }
        let bundle = match audit_bundle(p) {
            Ok(b) => b,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e),
        };
        let what = format!("the audit log of {}", bundle.origin);
        let (ok, verdict) = match crate::audit::verify(&bundle, &crate::audit::Pins::default()) {
            Ok(found) => (true, format!("{}{}", v.lang.t("验证通过：", "Verified: "), found.summary(&what))),
            Err(problem) => {
                (false, format!("{}{what} does not verify: {problem}", v.lang.t("验证失败：", "Verification failed: ")))
            }
        };
        if let Ok(store) = p.store.lock() {
            let _ = store.note_portal(
                &v,
                "verify",
                serde_json::json!({ "ok": ok, "entries": bundle.entries.len() }),
                now(),
            );
        }
        let ok = if ok { "&ok=1" } else { "" };
        redirect(&format!("/audit?verdict={}{ok}", url(&verdict)))
    })
    .await
}

/// `GET /audit/bundle`: the bundle `gdx-hub audit export` writes, as a download.
pub async fn bundle(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    blocking(p, headers, |p, v| {
        if let Some(r) = need_staff(&v) {
            return r;
        }
        let bundle = match audit_bundle(p) {
            Ok(b) => b,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e),
        };
        if let Ok(store) = p.store.lock() {
            let _ = store.note_portal(&v, "export", serde_json::json!({ "entries": bundle.entries.len() }), now());
        }
        let name = format!("audit-{}-{}.json", bundle.origin.replace('/', "-"), gdx_common::units::format_date(now()));
        (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            ],
            serde_json::to_vec(&bundle).unwrap_or_default(),
        )
            .into_response()
    })
    .await
}

/// `GET /api/v1/audit`: entries (newest first, at most 200) and the latest checkpoint.
pub async fn audit_json(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if !v.is_staff() {
            return json_error(StatusCode::FORBIDDEN, "the audit log is for the centre's operators and auditors; sign in with `gdx-hub login`");
        }
        let filter = match audit_filter(&pairs(raw.as_deref())) {
            Ok(f) => f,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
        };
        let Ok(log) = p.shared.audit.lock() else { return json_error(StatusCode::INTERNAL_SERVER_ERROR, "the audit log is unavailable") };
        match log.list(&filter) {
            Ok(entries) => {
                let count = entries.len();
                let newest: Vec<_> = entries.into_iter().rev().take(AUDIT_PAGE).collect();
                Json(serde_json::json!({ "count": count, "entries": newest, "checkpoint": log.last_checkpoint().ok().flatten() })).into_response()
            }
            Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    })
    .await
}

// ---------------------------------------------------------------- charts

/// The figures the charts draw.
#[derive(serde::Serialize)]
struct Figures {
    /// Changesets and rows accepted per department over the last 14 days.
    changesets: Vec<(String, u64, u64)>,
    /// Changesets per day over the last 14 days.
    per_day: Vec<(String, u64)>,
    /// Requests by state.
    requests: Vec<(String, u64)>,
    /// Median days from filing to decision, of decided requests.
    median_answer_days: Option<f64>,
    /// Catalogue entries up to date and overdue, per provider.
    freshness: Vec<(String, u64, u64)>,
}

fn figures(p: &Portal) -> Result<Figures, String> {
    use std::collections::BTreeMap;
    let now = now();
    let since = (now.div_euclid(86_400) - 13) * 86_400;
    let filter = crate::audit::Filter { kind: Some("changeset".into()), since: Some(since), ..Default::default() };
    let entries = p
        .shared
        .audit
        .lock()
        .map_err(|_| "the audit log is unavailable".to_owned())?
        .list(&filter)
        .map_err(|e| e.to_string())?;
    let mut by_node: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut by_day: BTreeMap<String, u64> = BTreeMap::new();
    for d in 0..14 {
        by_day.insert(gdx_common::units::format_date(since + d * 86_400), 0);
    }
    for e in &entries {
        let rows = e.event.detail.get("rows").and_then(|r| r.as_u64()).unwrap_or(0);
        let n = by_node.entry(e.event.node.clone().unwrap_or_default()).or_default();
        n.0 += 1;
        n.1 += rows;
        *by_day.entry(gdx_common::units::format_date(e.event.at)).or_default() += 1;
    }
    let mut changesets: Vec<(String, u64, u64)> = by_node.into_iter().map(|(k, (c, r))| (k, c, r)).collect();
    changesets.sort_by_key(|c| std::cmp::Reverse(c.1));
    let list = p
        .shared
        .exchange
        .lock()
        .map_err(|_| "the exchange store is unavailable".to_owned())?
        .list(crate::exchange::clock())
        .map_err(|e| e.to_string())?;
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    let mut answers: Vec<f64> = Vec::new();
    for r in &list {
        *states.entry(r.state.clone()).or_default() += 1;
        if let Some(d) = r.record.decided_at {
            answers.push((d - r.record.filed_at) as f64 / 86_400.0);
        }
    }
    answers.sort_by(|a, b| a.total_cmp(b));
    let median_answer_days = (!answers.is_empty()).then(|| answers[answers.len() / 2]);
    let entries = p
        .shared
        .catalog
        .lock()
        .map_err(|_| "the catalogue is unavailable".to_owned())?
        .list(&Default::default(), now)
        .map_err(|e| e.to_string())?;
    let mut fresh: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for e in &entries {
        let f = fresh.entry(e.entry.provider_name.clone()).or_default();
        if e.freshness.overdue { f.1 += 1 } else { f.0 += 1 }
    }
    Ok(Figures {
        changesets,
        per_day: by_day.into_iter().collect(),
        requests: states.into_iter().collect(),
        median_answer_days,
        freshness: fresh.into_iter().map(|(k, (a, b))| (k, a, b)).collect(),
    })
}

/// `GET /charts`.
pub async fn charts_page(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    blocking(p, headers, |p, v| {
        if let Some(r) = need_staff(&v) {
            return r;
        }
        let l = v.lang;
        let f = match figures(p) {
            Ok(f) => f,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e),
        };
        let bars = |items: Vec<(String, f64, f64)>| -> Vec<Bar> {
            items.into_iter().map(|(label, value, second)| Bar { label, value, second }).collect()
        };
        let mut body = String::from("<div class=\"charts\">");
        body.push_str(&hbars(
            l.t("近14天各部门变更集数", "Changesets per department, last 14 days"),
            &bars(f.changesets.iter().map(|(n, c, _)| (n.clone(), *c as f64, 0.0)).collect()),
            None,
        ));
        body.push_str(&hbars(
            l.t("近14天各部门变更行数", "Rows changed per department, last 14 days"),
            &bars(f.changesets.iter().map(|(n, _, r)| (n.clone(), *r as f64, 0.0)).collect()),
            None,
        ));
        body.push_str(&hbars(
            l.t("每日变更集数", "Changesets per day"),
            &bars(f.per_day.iter().map(|(d, c)| (d[5..].to_owned(), *c as f64, 0.0)).collect()),
            None,
        ));
        let median = f.median_answer_days.map(|d| format!("{d:.1}")).unwrap_or_else(|| "–".into());
        body.push_str(&hbars(
            &format!(
                "{} ({} {median} {})",
                l.t("申请按状态", "Requests by state"),
                l.t("答复用时中位数", "median answer"),
                l.t("天", "days")
            ),
            &bars(f.requests.iter().map(|(s, c)| (s.clone(), *c as f64, 0.0)).collect()),
            None,
        ));
        body.push_str(&hbars(
            l.t("各部门资源时效", "Freshness by department"),
            &bars(f.freshness.iter().map(|(n, ok, late)| (n.clone(), *ok as f64, *late as f64)).collect()),
            Some((l.t("按时更新", "up to date"), l.t("超期", "overdue"))),
        ));
        body.push_str("</div>");
        page_response(StatusCode::OK, &v, "charts", l.t("统计图表", "Charts"), &body)
    })
    .await
}

/// `GET /api/v1/charts`.
pub async fn charts_json(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    staff_json(p, headers, "the charts", figures).await
}

// ---------------------------------------------------------------- base databases

/// The bases declared at this hub.
fn bases(p: &Portal) -> Result<crate::base::BasesConfig, String> {
    crate::base::BasesConfig::load(&p.dir)
}

fn base_named(p: &Portal, name: &str) -> Result<crate::base::BaseConfig, String> {
    bases(p)?
        .bases
        .into_iter()
        .find(|b| b.name == name)
        .ok_or_else(|| format!("this hub keeps no base database {name:?}"))
}

/// `GET /bases`, and `/bases?name=NAME[&key=KEY]` for one base and one record.
pub async fn bases_page(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if let Some(r) = need_staff(&v) {
            return r;
        }
        let l = v.lang;
        let q = pairs(raw.as_deref());
        let all = match bases(p) {
            Ok(b) => b,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e),
        };
        let mut body = String::new();
        let rows: Vec<Vec<String>> = all
            .bases
            .iter()
            .filter_map(|b| crate::base::summary(&p.dir, b).ok())
            .map(|s| {
                vec![
                    format!("<a href=\"/bases?name={}\">{}</a>", url(&s.name), esc(&s.name)),
                    esc(&s.title),
                    esc(&s.key),
                    s.records.to_string(),
                    s.members.len().to_string(),
                    s.conflicts.to_string(),
                ]
            })
            .collect();
        body.push_str(&table(
            &[l.t("名称", "Name"), l.t("基础库", "Base"), l.t("主键", "Key"), l.t("记录数", "Records"), l.t("成员资源", "Members"), l.t("不一致", "Conflicts")],
            &rows,
            l.t("本平台没有声明基础库（bases.toml）。", "This hub declares no base database (bases.toml)."),
        ));
        if let Some(name) = param(&q, "name") {
            let base = match base_named(p, name) {
                Ok(b) => b,
                Err(e) => return error_page(StatusCode::NOT_FOUND, &v, &e),
            };
            let s = match crate::base::summary(&p.dir, &base) {
                Ok(s) => s,
                Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e),
            };
            body.push_str(&format!("<h2>{} {}</h2>", esc(&s.title), esc(&s.name)));
            let members: Vec<Vec<String>> =
                s.members.iter().map(|(m, n, at)| vec![esc(m), n.to_string(), time(*at)]).collect();
            body.push_str(&table(&[l.t("成员资源", "Member"), l.t("采用行数", "Rows taken"), l.t("最近合并的变更", "Last merged change")], &members, "–"));
            let bars: Vec<Bar> = s.coverage.iter().map(|(f, share)| Bar { label: f.clone(), value: (share * 1000.0).round() / 10.0, second: 0.0 }).collect();
            body.push_str(&format!("<div class=\"charts\">{}</div>", hbars(l.t("各字段覆盖率（%）", "Coverage per field (%)"), &bars, None)));
            body.push_str(&format!(
                "<form method=\"get\" action=\"/bases\" class=\"card filters\"><input type=\"hidden\" name=\"name\" value=\"{}\">\
                 <label>{}<input type=\"search\" name=\"key\" value=\"{}\" size=\"24\"></label><button type=\"submit\">{}</button></form>",
                esc(name),
                esc(&s.key),
                esc(param(&q, "key").unwrap_or_default()),
                l.t("查询", "Look up"),
            ));
            if let Some(key) = param(&q, "key") {
                let store = Store::open(&HubPaths::new(&p.dir).db());
                let revoked = |node: &str| {
                    store.as_ref().is_ok_and(|s| NodeId::parse(node).is_ok_and(|n| s.revoked_node(&n, now()).unwrap_or(false)))
                };
                match crate::base::get(&p.dir, &base, key, &revoked) {
                    Ok(Some(fields)) => {
                        let rows: Vec<Vec<String>> = fields
                            .iter()
                            .map(|f| {
                                vec![
                                    esc(&f.field),
                                    esc(f.value.as_deref().unwrap_or("–")),
                                    esc(f.from.as_deref().unwrap_or("–")),
                                    f.changeset.map(|c| c.to_string()).unwrap_or_else(|| "–".into()),
                                    time(f.at),
                                    if f.stale { badge("stale", l) } else { String::new() },
                                ]
                            })
                            .collect();
                        body.push_str(&table(&[l.t("字段", "Field"), l.t("值", "Value"), l.t("来源", "From"), l.t("变更集", "Changeset"), l.t("时间", "At"), ""], &rows, "–"));
                    }
                    Ok(None) => body.push_str(&notice("empty", &format!("{} {key}", l.t("基础库中没有此记录：", "No record with the key")))),
                    Err(e) => body.push_str(&notice("error", &e)),
                }
            }
            let list = crate::base::conflicts(&p.dir, &base, 200).unwrap_or_default();
            body.push_str(&format!("<h2>{}</h2>", l.t("来源不一致", "Where the sources disagree")));
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|c| vec![esc(&c.a), esc(&c.b), format!("<a href=\"/bases?name={}&key={}\">{}</a>", url(name), url(&c.key), esc(&c.key)), esc(&c.field), esc(&c.a_value), esc(&c.b_value)])
                .collect();
            body.push_str(&table(
                &[l.t("来源甲", "Source A"), l.t("来源乙", "Source B"), l.t("主键", "Key"), l.t("字段", "Field"), l.t("甲", "A says"), l.t("乙", "B says")],
                &rows,
                l.t("各来源一致。", "The sources agree."),
            ));
        }
        page_response(StatusCode::OK, &v, "bases", l.t("基础信息资源库", "Base databases"), &body)
    })
    .await
}

/// `GET /api/v1/bases`: every base's summary.
pub async fn bases_json(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    staff_json(p, headers, "the base databases", |p| {
        bases(p)?.bases.iter().map(|b| crate::base::summary(&p.dir, b)).collect::<Result<Vec<_>, _>>()
    })
    .await
}

/// `GET /api/v1/bases/{name}/{key}`: one record with every field's provenance.
pub async fn base_record_json(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    UrlPath((name, key)): UrlPath<(String, String)>,
) -> Response {
    blocking(p, headers, move |p, v| {
        if !v.is_staff() {
            return json_error(
                StatusCode::FORBIDDEN,
                "the base databases are for the centre's operators and auditors; sign in with `gdx-hub login`",
            );
        }
        let base = match base_named(p, &name) {
            Ok(b) => b,
            Err(e) => return json_error(StatusCode::NOT_FOUND, &e),
        };
        let store = Store::open(&HubPaths::new(&p.dir).db());
        let revoked = |node: &str| {
            store.as_ref().is_ok_and(|s| NodeId::parse(node).is_ok_and(|n| s.revoked_node(&n, now()).unwrap_or(false)))
        };
        match crate::base::get(&p.dir, &base, &key, &revoked) {
            Ok(Some(fields)) => Json(serde_json::json!({ "key": key, "fields": fields })).into_response(),
            Ok(None) => json_error(StatusCode::NOT_FOUND, &format!("base {name} holds no record with key {key}")),
            Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    })
    .await
}

/// `GET /api/v1/bases/{name}/conflicts`.
pub async fn base_conflicts_json(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Response {
    blocking(p, headers, move |p, v| {
        if !v.is_staff() {
            return json_error(
                StatusCode::FORBIDDEN,
                "the base databases are for the centre's operators and auditors; sign in with `gdx-hub login`",
            );
        }
        match base_named(p, &name).and_then(|b| crate::base::conflicts(&p.dir, &b, 1000)) {
            Ok(list) => Json(serde_json::json!({ "count": list.len(), "conflicts": list })).into_response(),
            Err(e) => json_error(StatusCode::NOT_FOUND, &e),
        }
    })
    .await
}
