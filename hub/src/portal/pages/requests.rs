//! Requests and decisions: a department's own and those asked of it
//! (approve narrowed, deny, revoke), every request for the centre.

use super::*;

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
                .or_else(|| rec.refusal(now).map(|c| c.to_string()))
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
                // the operator decides for this hub's own resources (its shared base databases)
                let operator = matches!(v.role(), Some(Role::Operator));
                let all: Vec<Vec<String>> = list
                    .iter()
                    .map(|r| {
                        let ours = operator && r.record.provider == v.hub;
                        row(r, if ours { decide_form(&v, r) } else { String::new() })
                    })
                    .collect();
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
            Ok(Err(why)) => refused_page(&v, &why),
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
        // a department for its own data; the operator for this hub's (exchange.decide checks the provider)
        let me = match (v.department(), v.role()) {
            (Some(d), _) => d.clone(),
            (None, Some(Role::Operator)) => v.hub.clone(),
            _ => {
                return error_page(
                    StatusCode::FORBIDDEN,
                    &v,
                    v.lang.t(
                        "只有提供数据的部门可以批准、拒绝或撤销申请。",
                        "Only the providing department can approve, deny or revoke a request.",
                    ),
                );
            }
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
            Ok(Err(why)) => refused_page(&v, &why),
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
