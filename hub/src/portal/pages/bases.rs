//! The base databases for the centre: summaries, one base's members and
//! coverage, a record with its provenance, the conflicts.

use super::*;

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

/// One record of `base`, with its provenance (stale where its department is revoked).
fn record(
    p: &Portal,
    base: &crate::base::BaseConfig,
    key: &str,
) -> Result<Option<Vec<crate::base::FieldValue>>, String> {
    let store = p.store.lock().map_err(|_| "the hub's database is unavailable".to_owned())?;
    crate::base::get(&p.dir, base, key, &store, now())
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
                esc(base.key.map_or_else(|| base.key_column().to_owned(), |k| k.to_string()).as_str()),
                esc(param(&q, "key").unwrap_or_default()),
                l.t("查询", "Look up"),
            ));
            if let Some(key) = param(&q, "key") {
                match record(p, &base, key) {
                    Ok(Some(fields)) => {
                        let rows: Vec<Vec<String>> = fields
                            .iter()
                            .map(|f| {
                                // a geometry comes with its area and centroid
                                let measured = f.measures.as_ref().map_or(String::new(), |m| {
                                    format!(
                                        "<br><span class=\"muted\">{} {:.1} m² · {} {:.6}, {:.6}</span>",
                                        l.t("面积", "area"),
                                        m.area_m2,
                                        l.t("中心点", "centroid"),
                                        m.centroid.0,
                                        m.centroid.1
                                    )
                                });
                                vec![
                                    esc(&f.field),
                                    format!("{}{measured}", esc(f.value.as_deref().unwrap_or("–"))),
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
        if let Some(r) = staff_only(&v, "the base databases") {
            return r;
        }
        let base = match base_named(p, &name) {
            Ok(b) => b,
            Err(e) => return json_error(StatusCode::NOT_FOUND, &e),
        };
        match record(p, &base, &key) {
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
        if let Some(r) = staff_only(&v, "the base databases") {
            return r;
        }
        match base_named(p, &name).and_then(|b| crate::base::conflicts(&p.dir, &b, 1000)) {
            Ok(list) => Json(serde_json::json!({ "count": list.len(), "conflicts": list })).into_response(),
            Err(e) => json_error(StatusCode::NOT_FOUND, &e),
        }
    })
    .await
}
