//! The audit log: entries filtered, the latest checkpoint, the verify
//! button and the bundle download.

use super::*;

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
        let body = match serde_json::to_vec(&bundle) {
            Ok(b) => b,
            Err(e) => {
                let why = format!("the audit bundle could not be encoded ({e}); use `gdx-hub audit export`");
                return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &why);
            }
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
            body,
        )
            .into_response()
    })
    .await
}

/// `GET /api/v1/audit`: entries (newest first, at most 200) and the latest checkpoint.
pub async fn audit_json(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if let Some(r) = staff_only(&v, "the audit log") {
            return r;
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
