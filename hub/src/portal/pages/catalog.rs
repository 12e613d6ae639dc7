//! The catalogue with its filters, and one entry with its 信息项 and,
//! for another department's entry, the request form.

use super::*;

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

/// The division tree as a select: the province, each prefecture, and its
/// counties indented below it (current divisions only).
pub(super) fn division_select(label: &str, chosen: Option<&str>, any: &str) -> String {
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
