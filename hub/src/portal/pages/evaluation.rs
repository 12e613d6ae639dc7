//! 考核: the evaluation report of a period (`crate::evaluation`). The
//! centre's operators and auditors see the ranking, the scores and each
//! department's trend over the last 12 periods; a department sees its own
//! line, its trend and what to fix first. JSON twin: `/api/v1/evaluation`.

use super::*;
use crate::evaluation::{Report, TREND, render};

/// This month, as a period.
fn this_month() -> String {
    let (y, m, _) = gdx_common::units::civil_from_days(crate::exchange::clock().div_euclid(86_400));
    format!("{y}-{m:02}")
}

fn report_for(p: &Portal, q: &[(String, String)]) -> Result<Report, String> {
    let period = param(q, "period").map(str::to_owned).unwrap_or_else(this_month);
    let period = gdx_common::evaluation::Period::parse(&period)?;
    let division = param(q, "division").map(gdx_common::DivisionCode::parse).transpose().map_err(|e| e.to_string())?;
    crate::evaluation::report(&p.dir, period, division, TREND).map_err(|e| e.to_string())
}

/// `GET /evaluation?period=2026-11[&division=…]`.
pub async fn evaluation_page(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if let Some(r) = need_session(&v) {
            return r;
        }
        let l = v.lang;
        let q = pairs(raw.as_deref());
        let mut body = format!(
            "<style>{}</style><form method=\"get\" action=\"/evaluation\" class=\"card filters\"><label>{}<input name=\"period\" value=\"{}\" size=\"10\" placeholder=\"2026-11\"></label><button type=\"submit\">{}</button></form>",
            render::style(),
            l.t("考核期（月或季度）", "Period (month or quarter)"),
            esc(param(&q, "period").unwrap_or(&this_month())),
            l.t("查看", "Show"),
        );
        let r = match report_for(p, &q) {
            Ok(r) => r,
            Err(e) => {
                body.push_str(&notice("error", &e));
                return page_response(StatusCode::BAD_REQUEST, &v, "evaluation", l.t("考核", "Evaluation"), &body);
            }
        };
        let shown: Vec<&crate::evaluation::Line> = match v.department() {
            Some(me) => r.lines.iter().filter(|x| &x.scored.node == me).collect(),
            None => r.lines.iter().collect(),
        };
        body.push_str(&format!(
            "<p class=\"muted\">{} {} · {}</p>",
            esc(&r.period),
            esc(&r.hub),
            l.t(
                "指标只取平台观测到的事实；未观测的不计分，期中接入的部门按接入后的时段计分。",
                "Indicators use only what the platform observed; what it did not observe is not scored, and a department enrolled mid-period is scored on the part it was there."
            )
        ));
        body.push_str(&render::table_html(&r, &shown));
        if let Some(me) = v.department()
            && let Some(line) = shown.first()
        {
            body.push_str(&format!("<h2>{}</h2><ol>", l.t("优先改进", "What to fix first")));
            for item in render::to_fix(&r, line) {
                body.push_str(&format!("<li>{}</li>", esc(&item)));
            }
            body.push_str("</ol>");
            body.push_str(&format!("<h2>{}</h2>", l.t("近 12 期趋势", "The last 12 periods")));
            body.push_str(&render::trends_html(&r, &[me.to_string()]));
        } else if v.is_staff() {
            body.push_str(&format!("<h2>{}</h2>{}", l.t("得分", "Scores"), render::bars_svg(&r, &shown)));
            let nodes: Vec<String> = shown.iter().map(|x| x.scored.node.to_string()).collect();
            body.push_str(&format!("<h2>{}</h2>{}", l.t("近 12 期趋势", "The last 12 periods"), render::trends_html(&r, &nodes)));
        }
        page_response(StatusCode::OK, &v, "evaluation", l.t("考核", "Evaluation"), &body)
    })
    .await
}

/// `GET /api/v1/evaluation?period=…`: the report (a department: its own line).
pub async fn evaluation_json(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if v.session.is_none() {
            return json_error(StatusCode::UNAUTHORIZED, "sign in first: `gdx-agent login` or `gdx-hub login`");
        }
        match report_for(p, &pairs(raw.as_deref())) {
            Ok(mut r) => {
                if let Some(me) = v.department() {
                    r.lines.retain(|x| &x.scored.node == me);
                    r.trend.retain(|n, _| n == &me.to_string());
                }
                Json(r).into_response()
            }
            Err(e) => json_error(StatusCode::BAD_REQUEST, &e),
        }
    })
    .await
}
