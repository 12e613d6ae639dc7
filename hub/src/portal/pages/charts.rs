//! The charts' figures, from the audit log, the exchange and the
//! catalogue, drawn as SVG.

use super::*;

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
