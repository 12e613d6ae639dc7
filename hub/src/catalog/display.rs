//! The catalogue as `gdx-hub catalog list` and `show` print it: a CJK-aware
//! table, and one entry with its items and freshness verdict.

use super::*;

/// The listing as a table.
pub fn table(entries: &[Listed]) -> String {
    if entries.is_empty() {
        return "no catalogue entries match\n".into();
    }
    let mut rows = vec![
        ["CODE", "NAME", "CLASS", "PROVIDER", "SHARING", "CYCLE", "VER", "DATA CHANGED", "FRESHNESS"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for l in entries {
        let e = &l.entry;
        rows.push(vec![
            e.code.clone(),
            e.name.clone(),
            e.class.label().trim_end_matches("信息资源").to_owned(),
            format!("{} {}", e.provider, e.provider_name),
            e.sharing_type.label().to_owned(),
            e.update_cycle.label().to_owned(),
            l.version.to_string(),
            l.freshness.last_change.map(format_time).unwrap_or_else(|| "never".into()),
            freshness_word(l),
        ]);
    }
    let mut out = render(&rows);
    out.push_str(&format!("{} entr{}\n", entries.len(), if entries.len() == 1 { "y" } else { "ies" }));
    out
}

pub(super) fn freshness_word(l: &Listed) -> String {
    if l.withdrawn {
        "withdrawn".into()
    } else if l.freshness.overdue {
        "OVERDUE".into()
    } else {
        "ok".into()
    }
}

/// One entry in full, with the standard's field names.
pub fn show(l: &Listed) -> String {
    let e = &l.entry;
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let mut lines = vec![
        format!("信息资源代码    {}", e.code),
        format!("信息资源名称    {}", e.name),
        format!("信息资源分类    {} / {}", e.class, e.classification.join(" / ")),
        format!("信息资源提供方  {} {} (resource {})", e.provider_name, e.provider, e.resource),
        format!("提供方代码      {}", e.provider_code),
        format!("信息资源摘要    {}", e.summary),
        format!("信息资源格式    {} ({})", e.format, e.format_type),
        format!("共享类型        {}", e.sharing_type),
        format!("共享条件        {}", opt(&e.sharing_condition)),
        format!("共享方式        {}", e.sharing_method),
        format!("法律依据        {}", opt(&e.legal_basis)),
        format!("是否向社会开放  {}", if e.open_to_public { "是" } else { "否" }),
        format!("开放条件        {}", opt(&e.open_condition)),
        format!("更新周期        {}", e.update_cycle),
        format!("发布日期        {}", e.published),
        format!("关联资源代码    {}", if e.related.is_empty() { "-".into() } else { e.related.join(", ") }),
        format!(
            "version         {}{}, recorded {}",
            l.version,
            if l.withdrawn { " (withdrawn)" } else { "" },
            format_time(l.version_at)
        ),
        format!(
            "data changed    {}",
            l.freshness.last_change.map(format_time).unwrap_or_else(|| "never (no data received yet)".into())
        ),
        format!(
            "freshness       {}{}",
            freshness_word(l),
            match l.freshness.due_by {
                Some(t) if l.freshness.overdue => format!(" since {}", format_date(t)),
                Some(t) => format!(", due an update by {}", format_date(t)),
                None => " (不定时: never overdue)".into(),
            }
        ),
        String::new(),
        "信息项:".into(),
    ];
    let mut items = vec![["#", "名称", "COLUMN", "数据类型", "数据长度"].map(str::to_owned).to_vec()];
    for (i, item) in e.items.iter().enumerate() {
        items.push(vec![
            (i + 1).to_string(),
            item.name.clone(),
            item.column().to_owned(),
            item.data_type.label().to_owned(),
            item.length.to_string(),
        ]);
    }
    lines.push(render(&items));
    lines.join("\n")
}
