//! Entries as `gdx-hub audit list` prints them: table, JSON lines or CSV.

use super::*;

/// Entries as `gdx-hub audit list` prints them: `table`, `jsonl` or `csv`.
pub fn render(entries: &[Entry], format: &str) -> Result<String, String> {
    let detail = |e: &Event| e.detail.to_string();
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let mut out = String::new();
    match format {
        "jsonl" => {
            for e in entries {
                out += &serde_json::to_string(e).unwrap_or_default();
                out.push('\n');
            }
        }
        "csv" => {
            out += "index,time,kind,node,resource,request,detail\n";
            let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            for entry in entries {
                let e = &entry.event;
                out += &format!(
                    "{},{},{},{},{},{},{}\n",
                    entry.index,
                    gdx_common::units::format_time(e.at),
                    q(&e.kind),
                    q(&opt(&e.node)),
                    q(&opt(&e.resource)),
                    q(&opt(&e.request)),
                    q(&detail(e))
                );
            }
        }
        "table" => {
            let head = ["INDEX", "TIME", "KIND", "NODE", "RESOURCE", "REQUEST", "DETAIL"];
            let mut rows: Vec<Vec<String>> = vec![head.iter().map(|h| (*h).to_owned()).collect()];
            for entry in entries {
                let e = &entry.event;
                rows.push(vec![
                    entry.index.to_string(),
                    gdx_common::units::format_time(e.at),
                    e.kind.clone(),
                    opt(&e.node),
                    opt(&e.resource),
                    opt(&e.request),
                    detail(e),
                ]);
            }
            out += &gdx_common::table::render(&rows);
            if entries.is_empty() {
                out += "no entries match\n";
            }
        }
        other => return Err(format!("--format {other:?} is not known; use table, jsonl or csv")),
    }
    Ok(out)
}
