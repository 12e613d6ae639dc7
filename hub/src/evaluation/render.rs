//! The evaluation report as people read it, in Chinese: a table for the
//! terminal, an XLSX workbook (排名, 指标, 依据), and an HTML page with the
//! ranking, a bar chart of the scores and each department's trend, which
//! headless Chromium prints to PDF.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_xlsxwriter::{Color, Format, FormatBorder, Workbook, XlsxError};

use super::{Line, Report};

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "未观测".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

fn score(l: &Line) -> String {
    l.scored.score.map_or_else(|| "—".to_owned(), |s| format!("{s:.1}"))
}

fn level(l: &Line) -> &'static str {
    match l.scored.node.division().level() {
        gdx_common::DivisionLevel::Province => "省级部门",
        gdx_common::DivisionLevel::Prefecture => "市州部门",
        gdx_common::DivisionLevel::County => "县级部门",
    }
}

fn rank(r: Option<u32>) -> String {
    r.map_or_else(|| "—".into(), |r| r.to_string())
}

/// An indicator's name in the report.
fn label(name: &str) -> &str {
    match name {
        "freshness" => "数据及时率",
        "quality" => "数据质量",
        "availability" => "在线率",
        "responsiveness" => "按时答复率",
        "notices" => "告知按时认领率",
        "checks" => "核查反馈率",
        "items" => "事项一致率",
        other => other,
    }
}

/// The note on a line: partial, and what was not observed.
fn note(l: &Line) -> String {
    let mut parts = Vec::new();
    if l.scored.partial() {
        parts.push(format!("本期仅覆盖 {:.0}%（期中接入）", l.scored.coverage * 100.0));
    }
    if !l.scored.not_observed.is_empty() {
        let names: Vec<&str> = l.scored.not_observed.iter().map(|n| label(n)).collect();
        parts.push(format!("未观测：{}", names.join("、")));
    }
    parts.join("；")
}

/// The columns of the indicator table: (header, cell).
type Column = (&'static str, fn(&Line) -> String);
const COLUMNS: [Column; 16] = [
    ("部门", |l| l.scored.node.to_string()),
    ("层级", |l| level(l).to_owned()),
    ("得分", score),
    ("等级", |l| l.scored.band.clone().unwrap_or_else(|| "—".into())),
    ("层级排名", |l| rank(l.scored.rank_in_level)),
    ("市州内排名", |l| rank(l.scored.rank_in_division)),
    ("目录资源数", |l| l.scored.indicators.resources_declared.to_string()),
    ("数据及时率", |l| pct(l.scored.indicators.freshness)),
    ("数据质量", |l| pct(l.scored.indicators.quality)),
    ("在线率", |l| pct(l.scored.indicators.availability)),
    ("按时答复率", |l| pct(l.scored.indicators.responsiveness)),
    ("答复中位天数", |l| l.scored.indicators.median_answer_days.map_or("—".into(), |d| format!("{d}"))),
    ("交付行数", |l| l.scored.indicators.rows_delivered.to_string()),
    ("告知按时认领率", |l| pct(l.scored.indicators.notices_in_time)),
    ("核查反馈率", |l| pct(l.scored.indicators.checks_with_feedback)),
    ("事项一致率", |l| pct(l.scored.indicators.items_consistent)),
];

/// `gdx-hub report` on the terminal.
pub fn text(r: &Report) -> String {
    let mut rows = vec![COLUMNS.iter().map(|(h, _)| (*h).to_owned()).collect::<Vec<_>>()];
    rows.extend(r.lines.iter().map(|l| COLUMNS.iter().map(|(_, f)| f(l)).collect()));
    let mut out = format!(
        "考核督促月报 {} · {}{}\n\n",
        r.period,
        r.hub,
        r.division.as_deref().map(|d| format!(" · {d}")).unwrap_or_default()
    );
    out.push_str(&gdx_common::table::render(&rows));
    for l in r.lines.iter().filter(|l| !note(l).is_empty()) {
        let _ = writeln!(out, "{}: {}", l.scored.node, note(l));
    }
    out
}

/// The workbook: 排名 (the table), 依据 (each figure's audit entries).
pub fn xlsx(r: &Report) -> Result<Vec<u8>, String> {
    build(r).map_err(|e| format!("the workbook cannot be written: {e}"))
}

fn build(r: &Report) -> Result<Vec<u8>, XlsxError> {
    let head = Format::new().set_bold().set_background_color(Color::RGB(0xD9E1F2)).set_border(FormatBorder::Thin);
    let cell = Format::new().set_border(FormatBorder::Thin);
    let low = Format::new().set_border(FormatBorder::Thin).set_background_color(Color::RGB(0xFFC7CE));
    let titled = Format::new().set_bold().set_font_size(14);
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("排名")?;
    sheet.write_string_with_format(0, 0, format!("考核督促报告 {} · {}", r.period, r.hub), &titled)?;
    for (c, (h, _)) in COLUMNS.iter().enumerate() {
        sheet.write_string_with_format(1, c as u16, *h, &head)?;
        sheet.set_column_width(c as u16, if c == 0 { 18 } else { 12 })?;
    }
    sheet.write_string_with_format(1, COLUMNS.len() as u16, "说明", &head)?;
    sheet.set_column_width(COLUMNS.len() as u16, 40)?;
    sheet.set_freeze_panes(2, 1)?;
    for (i, l) in r.lines.iter().enumerate() {
        let row = i as u32 + 2;
        for (c, (_, f)) in COLUMNS.iter().enumerate() {
            let v = f(l);
            let fmt = if c == 2 && l.scored.score.is_some_and(|s| s < r.weights.pass) { &low } else { &cell };
            match (c, l.scored.score) {
                (2, Some(s)) => sheet.write_number_with_format(row, c as u16, s, fmt)?,
                _ => sheet.write_string_with_format(row, c as u16, v, fmt)?,
            };
        }
        sheet.write_string_with_format(row, COLUMNS.len() as u16, note(l), &cell)?;
    }
    let sheet = book.add_worksheet();
    sheet.set_name("依据")?;
    for (c, h) in ["部门", "指标", "日志", "审计日志条目"].iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &head)?;
    }
    sheet.set_column_width(0, 18)?;
    sheet.set_column_width(2, 14)?;
    sheet.set_column_width(3, 80)?;
    let mut row = 1;
    for l in &r.lines {
        // the entries of this hub's log, then those of each child hub's log (HUB#INDEX)
        let here = l.events.iter().map(|(k, idx)| (*k, r.hub.clone(), idx.iter().map(u64::to_string).collect()));
        let mut there: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for (k, cited) in &l.elsewhere {
            for c in cited {
                if let Some((hub, idx)) = c.split_once('#') {
                    there.entry((*k, hub)).or_default().push(idx.to_owned());
                }
            }
        }
        let there = there.into_iter().map(|((k, hub), idx)| (k, hub.to_owned(), idx));
        for (k, hub, list) in here.chain(there).filter(|(_, _, v): &(_, _, Vec<String>)| !v.is_empty()) {
            // a cell holds at most 32,767 characters: long lists go on as many rows as they need
            for part in list.chunks(2_000) {
                sheet.write_string(row, 0, l.scored.node.to_string())?;
                sheet.write_string(row, 1, k)?;
                sheet.write_string(row, 2, &hub)?;
                sheet.write_string(row, 3, part.join(", "))?;
                row += 1;
            }
        }
    }
    book.save_to_buffer()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The ranking and indicators as an HTML table (`lines`: those shown).
pub fn table_html(r: &Report, lines: &[&Line]) -> String {
    let mut rows = String::new();
    for l in lines {
        rows.push_str("<tr>");
        for (c, (_, f)) in COLUMNS.iter().enumerate() {
            let low = c == 2 && l.scored.score.is_some_and(|s| s < r.weights.pass);
            let _ = write!(rows, "<td{}>{}</td>", if low { " class=\"low\"" } else { "" }, esc(&f(l)));
        }
        let _ = write!(rows, "<td class=\"note\">{}</td></tr>", esc(&note(l)));
    }
    let head: String = COLUMNS.iter().map(|(h, _)| format!("<th>{h}</th>")).collect::<String>() + "<th>说明</th>";
    format!(
        "<div class=\"report-wrap\"><table class=\"report\"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
    )
}

/// A bar per scored department (an SVG).
pub fn bars_svg(r: &Report, lines: &[&Line]) -> String {
    let scored: Vec<&&Line> = lines.iter().filter(|l| l.scored.score.is_some()).collect();
    let bar_h = 22;
    let mut bars =
        format!("<svg width=\"760\" height=\"{}\" role=\"img\" aria-label=\"得分\">", scored.len() * bar_h + 10);
    for (i, l) in scored.iter().enumerate() {
        let s = l.scored.score.unwrap_or(0.0);
        let y = i * bar_h + 4;
        let _ = write!(
            bars,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"170\" y=\"{y}\" width=\"{:.0}\" height=\"16\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{}\">{s:.1}</text>",
            y + 13,
            esc(&l.scored.node.to_string()),
            s * 5.0,
            if s < r.weights.pass { "#c0392b" } else { "#2e6da4" },
            175.0 + s * 5.0,
            y + 13
        );
    }
    bars.push_str("</svg>");
    bars
}

/// Each department's score over the trail of periods, as small lines.
pub fn trends_html(r: &Report, nodes: &[String]) -> String {
    let mut trends = String::new();
    for (node, points) in r.trend.iter().filter(|(n, _)| nodes.contains(n)) {
        let known: Vec<(usize, f64)> = points.iter().enumerate().filter_map(|(i, (_, s))| s.map(|s| (i, s))).collect();
        if known.is_empty() {
            continue;
        }
        let step = 160.0 / points.len().max(2).saturating_sub(1) as f64;
        let path: String =
            known.iter().map(|(i, s)| format!("{:.1},{:.1} ", *i as f64 * step, 40.0 - s * 0.4)).collect();
        let labels = format!(
            "{} … {}",
            points.first().map(|p| p.0.as_str()).unwrap_or(""),
            points.last().map(|p| p.0.as_str()).unwrap_or("")
        );
        let _ = write!(
            trends,
            "<figure><figcaption>{}</figcaption><svg width=\"170\" height=\"44\"><polyline points=\"{path}\" fill=\"none\" stroke=\"#2e6da4\" stroke-width=\"2\"/></svg><small>{labels}</small></figure>",
            esc(node)
        );
    }
    format!("<div class=\"trends\">{trends}</div>")
}

/// What a department should fix first: its indicators by the points they
/// cost (weight × the share missed), then those not observed.
pub fn to_fix(r: &Report, l: &Line) -> Vec<String> {
    let mut costs: Vec<(f64, String)> = r
        .weights
        .parts(&l.scored.indicators)
        .into_iter()
        .filter_map(|(n, weight, v)| {
            v.map(|v| (weight * (1.0 - v), format!("{}：{}（权重 {weight}）", label(n), pct(Some(v)))))
        })
        .filter(|(cost, _)| *cost > 0.0)
        .collect();
    costs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out: Vec<String> = costs.into_iter().map(|(_, s)| s).collect();
    out.extend(l.scored.not_observed.iter().map(|n| format!("{}：本期未观测", label(n))));
    out
}

const STYLE: &str = "table.report{border-collapse:collapse;font-size:12px}table.report th,table.report td{border:1px solid #c8d1dc;padding:4px 6px;text-align:left}\
table.report th{background:#d9e1f2}table.report td.low{background:#ffc7ce}table.report td.note{color:#52606d;min-width:22em}\
table.report td:first-child,table.report th{white-space:nowrap}.report-wrap{overflow-x:auto}svg text{font-size:12px}\
.trends{display:flex;flex-wrap:wrap;gap:12px}.trends figure{margin:0}.trends figcaption{font-size:12px}";

/// The style the report's parts need (the portal includes it too).
pub fn style() -> &'static str {
    STYLE
}

/// A self-contained HTML page: the table, a bar per department's score,
/// and each department's trend as a small line.
pub fn html(r: &Report) -> String {
    let lines: Vec<&Line> = r.lines.iter().collect();
    let nodes: Vec<String> = r.lines.iter().map(|l| l.scored.node.to_string()).collect();
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>考核督促报告 {period}</title>\
         <style>body{{font-family:\"Noto Sans CJK SC\",\"Source Han Sans SC\",sans-serif;margin:24px;color:#1f2933}}{style}</style></head><body>\
         <h1>考核督促报告 {period}</h1><p>{hub}{division} · 权重：及时 {wf}、质量 {wq}、在线 {wa}、答复 {wr}、告知 {wn}、核查 {wc}、事项 {wi}；\
         未观测的指标不计分，期中接入的部门按接入后的时段计分并标注。</p>\
         <h2>排名与指标</h2>{table}<h2>得分</h2>{bars}<h2>近期趋势</h2>{trends}</body></html>",
        period = esc(&r.period),
        hub = esc(&r.hub),
        division = r.division.as_deref().map(|d| format!(" · {}", esc(d))).unwrap_or_default(),
        style = STYLE,
        table = table_html(r, &lines),
        bars = bars_svg(r, &lines),
        trends = trends_html(r, &nodes),
        wf = r.weights.freshness,
        wq = r.weights.quality,
        wa = r.weights.availability,
        wr = r.weights.responsiveness,
        wn = r.weights.notices,
        wc = r.weights.checks,
        wi = r.weights.items,
    )
}
