//! 企业信息: one enterprise's profile by its 统一社会信用代码, as the viewer
//! may see it (`crate::supervision`), and its JSON twin. A department's
//! look is in the audit log.

use super::*;
use crate::supervision::{Profile, Reader};

/// The profile of `code` for viewer `v`, the look logged for a department.
fn profile_for(p: &Portal, v: &Viewer, code: &str) -> Result<Profile, (StatusCode, String)> {
    let now = crate::exchange::clock();
    let (reader, grants) = match (v.role(), v.department()) {
        (Some(Role::Operator | Role::Auditor), _) => (Reader::Staff, Vec::new()),
        (Some(Role::Department), Some(me)) => {
            let grants = p
                .shared
                .exchange
                .lock()
                .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "the exchange store is unavailable".to_owned()))?
                .records_of(me)
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                .into_iter()
                .filter(|r| &r.consumer == me)
                .collect();
            (Reader::Department(me.clone()), grants)
        }
        _ => return Err((StatusCode::UNAUTHORIZED, "sign in first".to_owned())),
    };
    let vaults = p.shared.vaults.clone();
    let profile = {
        let catalog = p
            .shared
            .catalog
            .lock()
            .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "the catalogue is unavailable".to_owned()))?;
        crate::supervision::profile(&catalog, &vaults, code, &reader, &grants, now)
            .map_err(|e| (StatusCode::BAD_REQUEST, e))?
    };
    if matches!(reader, Reader::Department(_)) {
        let detail = serde_json::json!({
            "credit_code": profile.credit_code,
            "sections": profile.sections.iter().map(|s| s.code.clone()).collect::<Vec<_>>(),
            "restricted": profile.restricted.len(),
        });
        let store =
            p.store.lock().map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "hub.db is unavailable".to_owned()))?;
        store.note_portal(v, "enterprise", detail, now).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
    }
    Ok(profile)
}

/// `GET /enterprise?code=USCC`.
pub async fn enterprise_page(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if let Some(r) = need_session(&v) {
            return r;
        }
        let l = v.lang;
        let q = pairs(raw.as_deref());
        let code = param(&q, "code").unwrap_or_default().trim().to_owned();
        let mut body = format!(
            "<form method=\"get\" action=\"/enterprise\" class=\"card filters\"><label>{}<input type=\"search\" name=\"code\" value=\"{}\" size=\"24\" maxlength=\"18\"></label><button type=\"submit\">{}</button></form>",
            l.t("统一社会信用代码", "Unified social credit code"),
            esc(&code),
            l.t("查询", "Look up"),
        );
        if !code.is_empty() {
            match profile_for(p, &v, &code) {
                Ok(profile) => body.push_str(&render(&profile, l)),
                Err((status, e)) if status == StatusCode::BAD_REQUEST => body.push_str(&notice("error", &e)),
                Err((status, e)) => return error_page(status, &v, &e),
            }
        }
        page_response(StatusCode::OK, &v, "enterprise", l.t("企业信息", "Enterprise profile"), &body)
    })
    .await
}

fn render(p: &Profile, l: Lang) -> String {
    let mut out = format!(
        "<h2>{} {}</h2>",
        esc(p.name.as_deref().unwrap_or(l.t("（名称未见记录）", "(no name on record)"))),
        esc(&p.credit_code)
    );
    if p.sections.is_empty() && p.restricted.is_empty() {
        out.push_str(&notice(
            "empty",
            l.t("本平台保存的资源中没有该代码。", "No resource kept at this hub names this code."),
        ));
    }
    for s in &p.sections {
        out.push_str(&format!(
            "<h3><a href=\"/catalog/{}\">{}</a> {}</h3><p class=\"muted\">{} {} · {} {} · {} · {}</p>",
            esc(&s.code),
            esc(&s.code),
            esc(&s.name),
            esc(&s.provider),
            esc(&s.provider_name),
            l.t("变更集", "changeset"),
            s.changeset,
            time(Some(s.updated_at)),
            esc(&s.seen_under),
        ));
        let columns: Vec<String> = s.rows.first().map(|r| r.keys().cloned().collect()).unwrap_or_default();
        let head: Vec<&str> = columns.iter().map(String::as_str).collect();
        let rows: Vec<Vec<String>> = s
            .rows
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .map(|c| match r.get(c) {
                        Some(serde_json::Value::String(t)) => esc(t),
                        Some(serde_json::Value::Null) | None => "–".into(),
                        Some(x) => esc(&x.to_string()),
                    })
                    .collect()
            })
            .collect();
        out.push_str(&table(&head, &rows, "–"));
    }
    if !p.restricted.is_empty() {
        out.push_str(&format!("<h3>{}</h3>", l.t("无权查看的资源", "Held, but not yours to see")));
        let rows: Vec<Vec<String>> = p
            .restricted
            .iter()
            .map(|r| {
                vec![
                    format!("<a href=\"/catalog/{}\">{}</a> {}", esc(&r.code), esc(&r.code), esc(&r.name)),
                    esc(&r.provider),
                    r.rows.to_string(),
                    esc(&r.why),
                ]
            })
            .collect();
        out.push_str(&table(
            &[l.t("资源", "Entry"), l.t("提供方", "Provider"), l.t("行数", "Rows"), l.t("原因", "Why")],
            &rows,
            "–",
        ));
    }
    out
}

/// `GET /api/v1/enterprises/{code}`.
pub async fn enterprise_json(
    State(p): State<Arc<Portal>>,
    headers: HeaderMap,
    UrlPath(code): UrlPath<String>,
) -> Response {
    blocking(p, headers, move |p, v| match profile_for(p, &v, &code) {
        Ok(profile) => Json(profile).into_response(),
        Err((status, e)) => json_error(status, &e),
    })
    .await
}
