//! 事项库: the 政务服务事项 library, searchable in Chinese (open to anyone,
//! as 权责清单 are published), and for a signed-in viewer the consistency
//! report per division, the deviations highlighted, the summary per
//! department, and the report as XLSX. JSON twins: `/api/v1/items`,
//! `/api/v1/items/consistency`.

use gdx_common::items::{CATEGORIES, Held};

use super::catalog::division_select;
use super::*;
use crate::items::{Analysis, Filter, FilterArgs, Listed};

/// The query's filter, or the mistake.
fn filter(q: &[(String, String)]) -> Result<Filter, String> {
    FilterArgs { division: param(q, "division").map(str::to_owned), category: param(q, "category").map(str::to_owned) }
        .filter(param(q, "q").map(str::to_owned))
}

fn form(q: &[(String, String)], action: &str, l: Lang, search: bool) -> String {
    let categories: Vec<&str> = CATEGORIES.iter().map(|(_, n)| *n).collect();
    let text = match search {
        true => format!(
            "<label>{}<input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"食品 许可\"></label>",
            l.t("搜索", "Search"),
            esc(param(q, "q").unwrap_or_default())
        ),
        false => String::new(),
    };
    format!(
        "<form method=\"get\" action=\"{action}\" class=\"card filters\">{text}{}{}<button type=\"submit\">{}</button></form>",
        division_select(l.t("区划", "Division"), param(q, "division"), l.t("全部", "all")),
        select("category", l.t("类别", "Category"), &categories, param(q, "category"), l.t("全部", "all")),
        l.t("查询", "Show"),
    )
}

/// `GET /items`.
pub async fn items_page(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        let l = v.lang;
        let q = pairs(raw.as_deref());
        let mut body = form(&q, "/items", l, true);
        if v.session.is_some() {
            body.push_str(&format!(
                "<p><a href=\"/items/consistency\">{}</a></p>",
                l.t("查看一致性报告 →", "The consistency report →")
            ));
        }
        match filter(&q).map(|f| crate::items::list(&p.shared.vaults, &f)) {
            Ok(Ok(found)) => body.push_str(&library_table(&found[..found.len().min(ITEMS_SHOWN)], found.len(), l)),
            Ok(Err(_)) => body.push_str(&notice(
                "error",
                l.t("事项库暂时无法读取，请稍后再试。", "The library cannot be read now; try again."),
            )),
            Err(e) => body.push_str(&notice("error", &e)),
        }
        page_response(StatusCode::OK, &v, "items", l.t("政务服务事项库", "Service items"), &body)
    })
    .await
}

fn library_table(found: &[Listed], total: usize, l: Lang) -> String {
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|x| {
            vec![
                format!("<span class=\"t\">{}</span>", esc(&x.item.basic_code)),
                esc(&x.item.name),
                esc(&x.item.category),
                esc(&x.node.to_string()),
                esc(&x.item.levels.label()),
                esc(&x.item.time_limit.map(|t| t.label()).unwrap_or_else(|| "–".into())),
                esc(&x.item.basis),
            ]
        })
        .collect();
    let more = match total > found.len() {
        true => format!(" · {} {}", found.len(), l.t("项已显示，请缩小查询范围", "shown; narrow the search")),
        false => String::new(),
    };
    format!("<p class=\"muted\">{total} {}{more}</p>", l.t("项", "items"))
        + &table(
            &[
                l.t("基本编码", "Basic code"),
                l.t("事项名称", "Name"),
                l.t("类别", "Category"),
                l.t("部门", "Department"),
                l.t("层级", "Levels"),
                l.t("办理时限", "Time limit"),
                l.t("实施依据", "Legal basis"),
            ],
            &rows,
            l.t("没有符合条件的事项。", "No item matches."),
        )
}

/// The report and summary under the query's filter.
fn consistency(p: &Portal, q: &[(String, String)]) -> Result<(Analysis, Filter), String> {
    let f = filter(q)?;
    Ok((crate::items::analyse(&p.shared.vaults, &f)?, f))
}

/// `GET /items/consistency`.
pub async fn consistency_page(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if let Some(r) = need_session(&v) {
            return r;
        }
        let l = v.lang;
        let q = pairs(raw.as_deref());
        let mut body = form(&q, "/items/consistency", l, false);
        let (Analysis { report, summary, reference }, _) = match consistency(p, &q) {
            Ok(x) => x,
            Err(e) => {
                body.push_str(&notice("error", &e));
                return page_response(StatusCode::BAD_REQUEST, &v, "items", l.t("一致性报告", "Consistency"), &body);
            }
        };
        if !reference {
            body.push_str(&notice(
                "empty",
                l.t(
                    "本平台没有省级部门的清单：一致性报告在省级平台生成。",
                    "This hub keeps no province department's list: the report is made at the province hub.",
                ),
            ));
        }
        let query = raw.as_deref().map(|r| format!("?{r}")).unwrap_or_default();
        body.push_str(&format!(
            "<p><a href=\"/items/consistency.xlsx{}\">{}</a></p>",
            esc(&query),
            l.t("下载 XLSX（Excel、WPS 可打开）", "Download as XLSX (Excel, WPS)")
        ));
        body.push_str(&format!(
            "<h2>{} ({})</h2>",
            l.t("与省级不一致", "Deviations from the province"),
            report.deviations.len()
        ));
        let rows: Vec<Vec<String>> = report
            .deviations
            .iter()
            .map(|d| {
                vec![
                    format!("<span class=\"t\">{}</span>", esc(&d.basic_code)),
                    esc(&d.node.to_string()),
                    esc(&d.field),
                    esc(&d.province),
                    format!("<mark class=\"deviation\">{}</mark>", esc(&d.theirs)),
                ]
            })
            .collect();
        body.push_str(&table(
            &[
                l.t("基本编码", "Basic code"),
                l.t("部门", "Department"),
                l.t("字段", "Field"),
                l.t("省级", "Province"),
                l.t("本级", "Theirs"),
            ],
            &rows,
            l.t("没有不一致的事项。", "No deviation."),
        ));
        for (title, list) in [
            (l.t("无省级对应的事项", "Items with no provincial counterpart"), &report.without_province),
            (l.t("下级未实施的省级事项", "Provincial items no lower level lists"), &report.not_below),
        ] {
            body.push_str(&format!("<h2>{title} ({})</h2>", list.len()));
            body.push_str(&held_table(list, l));
        }
        body.push_str(&format!("<h2>{}</h2>", l.t("各部门汇总", "Per department")));
        let rows: Vec<Vec<String>> = summary
            .iter()
            .map(|s| {
                let pct = match s.consistent_pct {
                    None => l.t("省级基准", "reference").to_owned(),
                    Some(p) if p < 100.0 => format!("<mark class=\"deviation\">{p}%</mark>"),
                    Some(p) => format!("{p}%"),
                };
                vec![esc(&s.node), s.items.to_string(), s.compared.to_string(), s.consistent.to_string(), pct]
            })
            .collect();
        body.push_str(&table(
            &[
                l.t("部门", "Department"),
                l.t("事项", "Items"),
                l.t("比对", "Compared"),
                l.t("一致", "Consistent"),
                l.t("一致率", "Share"),
            ],
            &rows,
            l.t("暂无事项。", "No item yet."),
        ));
        page_response(StatusCode::OK, &v, "items", l.t("事项一致性报告", "Consistency of service items"), &body)
    })
    .await
}

fn held_table(list: &[Held], l: Lang) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|h| {
            vec![
                format!("<span class=\"t\">{}</span>", esc(&h.item.basic_code)),
                esc(&h.node.to_string()),
                esc(&h.item.name),
                esc(&h.item.levels.label()),
            ]
        })
        .collect();
    table(
        &[l.t("基本编码", "Basic code"), l.t("部门", "Department"), l.t("事项名称", "Name"), l.t("层级", "Levels")],
        &rows,
        "–",
    )
}

/// `GET /items/consistency.xlsx`.
pub async fn consistency_xlsx(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if v.session.is_none() {
            return json_error(StatusCode::UNAUTHORIZED, "sign in first");
        }
        let q = pairs(raw.as_deref());
        let built = consistency(p, &q).and_then(|(Analysis { report, summary, .. }, f)| {
            let title =
                format!("政务服务事项一致性报告{}", f.division.map(|d| format!(" · {}", d.name())).unwrap_or_default());
            crate::items::export::workbook(&report, &summary, &title)
        });
        match built {
            Ok(bytes) => (
                [
                    (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"items-consistency.xlsx\""),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => json_error(StatusCode::BAD_REQUEST, &e),
        }
    })
    .await
}

/// Items shown per answer at most; narrow with `q`, `division`, `category`.
const ITEMS_SHOWN: usize = 500;

/// `GET /api/v1/items`: the library (anyone), under `q`, `division`,
/// `category`; a visitor gets the items without the hub's changeset and times.
pub async fn items_json(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        let q = pairs(raw.as_deref());
        let found = match filter(&q) {
            Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
            Ok(f) => crate::items::list(&p.shared.vaults, &f),
        };
        let Ok(found) = found else {
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "the library cannot be read now; try again");
        };
        let count = found.len();
        let shown: Vec<serde_json::Value> = found
            .into_iter()
            .take(ITEMS_SHOWN)
            .map(|l| match v.session {
                Some(_) => serde_json::to_value(&l).unwrap_or_default(),
                None => serde_json::json!({ "node": l.node, "list": l.list, "item": l.item }),
            })
            .collect();
        Json(serde_json::json!({ "count": count, "truncated": count > ITEMS_SHOWN, "items": shown })).into_response()
    })
    .await
}

/// `GET /api/v1/items/consistency`: the report and the summary (a session).
pub async fn consistency_json(State(p): State<Arc<Portal>>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    blocking(p, headers, move |p, v| {
        if v.session.is_none() {
            return json_error(StatusCode::UNAUTHORIZED, "sign in first: `gdx-agent login` or `gdx-hub login`");
        }
        match consistency(p, &pairs(raw.as_deref())) {
            Ok((a, _)) => Json(serde_json::json!({ "report": a.report, "summary": a.summary })).into_response(),
            Err(e) => json_error(StatusCode::BAD_REQUEST, &e),
        }
    })
    .await
}
