//! The portal's HTML: escaping, the page layout (header, navigation, the
//! language switch, the signed-in person), and the two languages. Pages
//! are server-rendered text; every value from a store or a visitor goes
//! through [`esc`].

use super::{Lang, Viewer};

/// `s` safe inside HTML text and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as a URL query value.
pub fn url(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Lang {
    /// The text in this language: Chinese, or English.
    pub fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// The style sheet, served at `/assets/portal.css`.
pub const CSS: &str = include_str!("portal.css");

/// A whole page: `title`, the navigation with `here` marked, and `body`.
pub fn page(v: &Viewer, here: &str, title: &str, body: &str) -> String {
    let l = v.lang;
    let mut nav = String::new();
    let items: [(&str, &str, &str, bool); 10] = [
        ("/catalog", l.t("资源目录", "Catalogue"), "catalog", true),
        ("/requests", l.t("申请与授权", "Requests"), "requests", v.session.is_some()),
        ("/tree", l.t("节点", "Nodes"), "tree", v.is_staff()),
        ("/bases", l.t("基础库", "Bases"), "bases", v.is_staff()),
        ("/enterprise", l.t("企业信息", "Enterprises"), "enterprise", v.session.is_some()),
        ("/supervision", l.t("监管协同", "Supervision"), "supervision", v.session.is_some()),
        ("/items", l.t("事项库", "Service items"), "items", true),
        ("/evaluation", l.t("考核", "Evaluation"), "evaluation", v.session.is_some()),
        ("/audit", l.t("审计", "Audit"), "audit", v.is_staff()),
        ("/charts", l.t("统计", "Charts"), "charts", v.is_staff()),
    ];
    for (href, label, key, shown) in items {
        if shown {
            let current = if key == here { " aria-current=\"page\"" } else { "" };
            nav.push_str(&format!("<a href=\"{href}\"{current}>{label}</a>"));
        }
    }
    let who = match &v.session {
        Some(s) => {
            let role = match s.role {
                crate::store::Role::Operator => l.t("运维人员", "operator"),
                crate::store::Role::Auditor => l.t("审计人员", "auditor"),
                crate::store::Role::Department => l.t("部门", "department"),
            };
            let name = s.node.as_ref().map(|n| n.to_string()).unwrap_or_else(|| v.hub.to_string());
            format!(
                "<span class=\"who\">{} · {}</span><form method=\"post\" action=\"/logout\" class=\"inline\">{}<button type=\"submit\" class=\"link\">{}</button></form>",
                esc(&name),
                role,
                csrf_field(v),
                l.t("退出", "Log out")
            )
        }
        None => format!(
            "<span class=\"who\">{}</span>",
            l.t("未登录：仅显示向社会开放的资源", "Not signed in: only entries open to the public")
        ),
    };
    let other = match l {
        Lang::Zh => "<a href=\"/lang?to=en\" lang=\"en\">English</a>",
        Lang::En => "<a href=\"/lang?to=zh\" lang=\"zh\">中文</a>",
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · {}</title><link rel=\"stylesheet\" href=\"/assets/portal.css\"></head><body>\
         <a class=\"skip\" href=\"#main\">{}</a>\
         <header><div class=\"brand\"><strong>{}</strong><span>{}</span></div><nav aria-label=\"{}\">{nav}</nav>\
         <div class=\"account\">{who} {other}</div></header><main id=\"main\"><h1>{}</h1>{body}</main>\
         <footer>{} · {}</footer></body></html>",
        match l {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        },
        esc(title),
        l.t("政务数据共享门户", "Data sharing portal"),
        l.t("跳到正文", "Skip to content"),
        l.t("政务数据共享门户", "Government data sharing portal"),
        esc(&v.hub_name),
        l.t("主导航", "Main"),
        esc(title),
        esc(&v.hub.to_string()),
        l.t("GDX 政务数据共享交换平台", "GDX government data sharing and exchange"),
    )
}

/// The hidden field every form carries (none without a session).
pub fn csrf_field(v: &Viewer) -> String {
    match &v.session {
        Some(s) => format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&s.csrf)),
        None => String::new(),
    }
}

/// A message box: `kind` is `ok`, `error` or `empty`.
pub fn notice(kind: &str, text: &str) -> String {
    let role = if kind == "error" { " role=\"alert\"" } else { "" };
    format!("<p class=\"notice {kind}\"{role}>{}</p>", esc(text))
}

/// A table with `head` cells and `rows` of already-escaped cells, or
/// `empty` when there are no rows.
pub fn table(head: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return notice("empty", empty);
    }
    let mut out = String::from("<div class=\"scroll\"><table><thead><tr>");
    for h in head {
        out.push_str(&format!("<th scope=\"col\">{}</th>", esc(h)));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{c}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A date (`YYYY-MM-DD`) of Unix seconds, or a dash.
pub fn date(t: Option<i64>) -> String {
    t.map(gdx_common::units::format_date).unwrap_or_else(|| "–".into())
}

/// A time of Unix seconds (kept on one line), or a dash.
pub fn time(t: Option<i64>) -> String {
    t.map(|t| format!("<span class=\"t\">{}</span>", gdx_common::units::format_time(t))).unwrap_or_else(|| "–".into())
}

/// A state word as a coloured badge.
pub fn badge(state: &str, l: Lang) -> String {
    let (class, label) = match state {
        "granted" | "connected" | "ok" => ("good", state),
        "pending" => ("wait", state),
        "OVERDUE" | "overdue" | "offline" => ("bad", state),
        _ => ("muted", state),
    };
    let label = match (l, label) {
        (Lang::Zh, "granted") => "已授权",
        (Lang::Zh, "pending") => "待答复",
        (Lang::Zh, "OVERDUE") => "逾期未答复",
        (Lang::Zh, "denied") => "已拒绝",
        (Lang::Zh, "revoked") => "已撤销",
        (Lang::Zh, "refused") => "不予受理",
        (Lang::Zh, "expired") => "已到期",
        (Lang::Zh, "connected") => "在线",
        (Lang::Zh, "offline") => "离线",
        (Lang::Zh, "revoked-node") => "已吊销",
        (Lang::Zh, "ok") => "正常",
        (Lang::Zh, "overdue") => "超期未更新",
        (Lang::Zh, "stale") => "已失效（部门已吊销）",
        (_, other) => other,
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            esc("<a href=\"x\" onclick='y'>&</a>"),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(esc("人口 信息"), "人口 信息");
        assert_eq!(url("人口 & x"), "%E4%BA%BA%E5%8F%A3+%26+x");
    }
}
