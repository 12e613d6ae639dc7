//! The 政务服务事项库 at a hub: every department's `[[items]]` lists this
//! hub keeps (its own departments', and at the province every list the
//! prefecture hubs forward), searched and compared by 基本编码
//! (`gdx_common::items::consistency`), listed and exported as XLSX.
//!
//! A list is a resource `items_NAME` of the department's vault: its rows
//! arrive as signed, numbered changesets like any data (exactly once, a
//! changeset number only forward), and a prefecture hub forwards them to
//! the province like base resources (`net::parent`).

use std::path::Path;

use gdx_common::items::{Consistency, Held, Item, Levels, TimeLimit, consistency, normalize};
use gdx_common::{DivisionCode, NodeId};
use serde::Serialize;

use crate::store::db::Value;
use crate::store::vault::Vaults;

pub mod export;

/// The prefix of the vault resources holding item lists.
pub const PREFIX: &str = "items_";

/// One item as the library holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub node: NodeId,
    /// The list's name (its resource without the prefix).
    pub list: String,
    /// The changeset the list is at here.
    pub changeset: i64,
    pub updated_at: i64,
    pub item: Item,
}

/// Narrows a listing.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub division: Option<DivisionCode>,
    pub category: Option<String>,
    /// Words that must all appear in the name, basis, code or department.
    pub q: Option<String>,
}

impl Filter {
    fn keeps(&self, l: &Listed) -> bool {
        gdx_common::items::within(self.division, &l.node)
            && self.category.as_ref().is_none_or(|c| same_category(c, &l.item.category))
            && self.q.as_ref().is_none_or(|q| {
                let hay = normalize(&format!(
                    "{} {} {} {} {}",
                    l.item.name, l.item.basis, l.item.basic_code, l.item.subject, l.node
                ));
                q.split_whitespace().all(|w| hay.contains(&normalize(w)))
            })
    }
}

/// `a` and `b` name the same category (行政征用 and 行政征收(征用), say).
fn same_category(a: &str, b: &str) -> bool {
    match (gdx_common::items::category_code(a), gdx_common::items::category_code(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => normalize(a) == normalize(b),
    }
}

/// The resources of a vault that are item lists: named `items_…` and kept
/// with exactly the columns of a list (another resource so named is not
/// one, and is neither forwarded nor read as one).
fn item_lists(conn: &rusqlite::Connection) -> Vec<String> {
    let found: rusqlite::Result<Vec<(String, String)>> = conn
        .prepare("SELECT resource, columns FROM _gdx_resources WHERE substr(resource, 1, 6) = ?1 ORDER BY resource")
        .and_then(|mut s| s.query_map([PREFIX], |r| Ok((r.get(0)?, r.get(1)?)))?.collect());
    found.unwrap_or_default().into_iter().filter(|(r, columns)| is_list(r, columns)).map(|(r, _)| r).collect()
}

/// True for a resource that is an item list: named `items_…`, with exactly
/// a list's columns (`columns`: `_gdx_resources.columns`).
fn is_list(resource: &str, columns: &str) -> bool {
    let names: Vec<String> = serde_json::from_str::<Vec<gdx_common::data::Column>>(columns)
        .map(|c| c.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    resource.starts_with(PREFIX) && names == gdx_common::items::COLUMNS
}

/// Every list this hub keeps: (department, vault resource).
pub fn lists(vault_dir: &Path) -> Vec<(NodeId, String)> {
    let mut out = Vec::new();
    for node in crate::store::vault::departments_in(vault_dir) {
        let path = crate::store::vault::vault_path(vault_dir, &node);
        let Ok(conn) = gdx_files::open_read_only(&path) else { continue };
        out.extend(item_lists(&conn).into_iter().map(|r| (node.clone(), r)));
    }
    out
}

/// A list as read: its number and when it changed, then its rows.
type Read = ((i64, i64), Vec<Vec<Value>>);

/// Every item this hub keeps, by department and code, from the vault
/// files or the schemas on PostgreSQL.
pub fn library(vaults: &Vaults) -> Result<Vec<Listed>, String> {
    let mut out = Vec::new();
    for node in vaults.departments().map_err(|e| e.to_string())? {
        // a vault that cannot be read, or a list that does not read, is left out and logged, not fatal to the library
        let resources = match vaults.resources_of(&node) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%node, error = %e, "a vault cannot be read; its lists are left out of the library");
                continue;
            }
        };
        for resource in resources.into_iter().filter(|(r, columns)| is_list(r, columns)).map(|(r, _)| r) {
            let read = || -> Result<Option<Read>, crate::store::vault::VaultError> {
                let Some(head) = vaults.head_of(&node, &resource)? else { return Ok(None) };
                Ok(Some((head, vaults.all_rows(&node, &resource, &gdx_common::items::COLUMNS)?)))
            };
            let ((changeset, updated_at), rows) = match read() {
                Ok(Some(read)) => read,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(%node, %resource, error = %e, "a list does not read; left out of the library");
                    continue;
                }
            };
            let list = resource.strip_prefix(PREFIX).unwrap_or(&resource).to_owned();
            out.extend(rows.iter().map(|r| {
                let text = |i: usize| match r.get(i) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::Text(t)) => t.clone(),
                    Some(Value::Integer(x)) => x.to_string(),
                    Some(Value::Real(x)) => x.to_string(),
                    Some(Value::Blob(b)) => String::from_utf8_lossy(b).into_owned(),
                };
                Listed {
                    node: node.clone(),
                    list: list.clone(),
                    changeset,
                    updated_at,
                    item: Item {
                        basic_code: text(0),
                        name: text(1),
                        category: text(2),
                        basis: text(3),
                        subject: text(4),
                        levels: Levels::parse(&text(5), node.division().level()).unwrap_or_default(),
                        time_limit: TimeLimit::parse(&text(6)).ok().flatten(),
                        duties: text(7),
                        accountability: text(8),
                    },
                }
            }));
        }
    }
    Ok(out)
}

/// The items `filter` keeps.
pub fn list(vaults: &Vaults, filter: &Filter) -> Result<Vec<Listed>, String> {
    Ok(library(vaults)?.into_iter().filter(|l| filter.keeps(l)).collect())
}

/// The consistency report with its summary per department, from one read
/// of the library; `reference`: the library holds a province department's
/// list (a prefecture hub's does not, and its report has nothing to
/// compare with).
pub struct Analysis {
    pub report: Consistency,
    pub summary: Vec<Summary>,
    pub reference: bool,
}

/// The [`Analysis`] of the library under `filter` (its words are ignored).
pub fn analyse(vaults: &Vaults, filter: &Filter) -> Result<Analysis, String> {
    let all = library(vaults)?;
    let reference = all.iter().any(|l| l.node.division().level() == gdx_common::DivisionLevel::Province);
    let report = report_of(&all, filter);
    let kept = Filter { q: None, ..filter.clone() };
    let listed: Vec<Listed> = all.into_iter().filter(|l| kept.keeps(l)).collect();
    let summary = summaries(&listed, &report);
    Ok(Analysis { report, summary, reference })
}

/// The consistency report of the whole library, narrowed to the
/// departments of `filter.division` and the items of `filter.category`
/// (the province's items are always the reference).
fn report_of(all: &[Listed], filter: &Filter) -> Consistency {
    let category_ok = |i: &Item| filter.category.as_ref().is_none_or(|c| same_category(c, &i.category));
    let held: Vec<Held> = all
        .iter()
        .filter(|l| category_ok(&l.item))
        // the division's departments, and those above it (a county is compared within its prefecture too)
        .filter(|l| {
            gdx_common::items::within(filter.division, &l.node)
                || filter.division.is_some_and(|d| l.node.division().contains(d))
        })
        .map(|l| Held { node: l.node.clone(), item: l.item.clone() })
        .collect();
    let mut r = consistency(&held);
    let mine = |n: &NodeId| gdx_common::items::within(filter.division, n);
    r.deviations.retain(|d| mine(&d.node));
    r.without_province.retain(|h| mine(&h.node));
    r.compared.retain(|(n, _)| mine(n));
    r.consistent.retain(|(n, _)| mine(n));
    r
}

/// Per department: items registered, compared with the province, consistent.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub node: String,
    pub items: u64,
    pub compared: u64,
    pub consistent: u64,
    /// consistent / compared, in percent; None when nothing was compared
    /// (the province's own departments, the reference).
    pub consistent_pct: Option<f64>,
}

pub fn summaries(listed: &[Listed], report: &Consistency) -> Vec<Summary> {
    let nodes: std::collections::BTreeSet<String> = listed.iter().map(|l| l.node.to_string()).collect();
    nodes
        .into_iter()
        .map(|node| {
            let items = listed.iter().filter(|l| l.node.to_string() == node).count() as u64;
            let find = |v: &[(NodeId, u64)]| v.iter().find(|(n, _)| n.to_string() == node).map_or(0, |(_, k)| *k);
            let (compared, consistent) = (find(&report.compared), find(&report.consistent));
            let pct = (compared > 0).then(|| (consistent as f64 * 1000.0 / compared as f64).round() / 10.0);
            Summary { node, items, compared, consistent, consistent_pct: pct }
        })
        .collect()
}

/// `--division` and `--category` of `gdx-hub items`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Departments in this division or below it (GB/T 2260 code).
    #[arg(long)]
    pub division: Option<String>,
    /// One of the 11+X categories, such as 行政许可.
    #[arg(long)]
    pub category: Option<String>,
}

impl FilterArgs {
    /// The filter, or the mistake in a sentence.
    pub fn filter(&self, q: Option<String>) -> Result<Filter, String> {
        let division = self
            .division
            .as_deref()
            .map(|d| DivisionCode::parse(d).map_err(|e| format!("--division {d:?}: {e}")))
            .transpose()?;
        if let Some(c) = &self.category {
            gdx_common::items::category_code(c)?;
        }
        Ok(Filter { division, category: self.category.clone(), q })
    }
}

/// `gdx-hub items list|search`.
pub fn print_list(hub_dir: &Path, filter: &Filter, json: bool) -> anyhow::Result<()> {
    let found = list(&Vaults::at(hub_dir)?, filter).map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    if found.is_empty() {
        println!("no item kept at this hub matches; departments declare their lists as [[items]] in agent.toml");
        return Ok(());
    }
    let mut rows =
        vec![["基本编码", "事项名称", "类别", "部门", "层级", "办理时限", "实施依据"].map(String::from).to_vec()];
    for l in &found {
        let basis: String = l.item.basis.chars().take(30).collect();
        rows.push(vec![
            l.item.basic_code.clone(),
            l.item.name.clone(),
            l.item.category.clone(),
            l.node.to_string(),
            l.item.levels.label(),
            l.item.time_limit.map(|t| t.label()).unwrap_or_else(|| "-".into()),
            if basis.len() < l.item.basis.len() { format!("{basis}…") } else { basis },
        ]);
    }
    print!("{}", gdx_common::table::render(&rows));
    println!("{} items", found.len());
    Ok(())
}

/// `gdx-hub items show CODE`: every department's item of that 基本编码, in full.
pub fn print_show(hub_dir: &Path, code: &str, json: bool) -> anyhow::Result<()> {
    let found: Vec<Listed> = library(&Vaults::at(hub_dir)?)
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .filter(|l| l.item.basic_code == normalize(code))
        .collect();
    if found.is_empty() {
        return Err(crate::cli::Usage(format!("no department's list kept here has 基本编码 {code}")).into());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    for l in &found {
        let i = &l.item;
        println!(
            "{} {} — {} (list {}, changeset {})\n  类别 {}  层级 {}  办理时限 {}\n  实施主体 {}\n  实施依据 {}",
            i.basic_code,
            i.name,
            l.node,
            l.list,
            l.changeset,
            i.category,
            i.levels.label(),
            i.time_limit.map(|t| t.label()).unwrap_or_else(|| "-".into()),
            i.subject,
            i.basis
        );
        if !i.duties.is_empty() || !i.accountability.is_empty() {
            println!("  责任事项 {}\n  追责情形 {}", i.duties, i.accountability);
        }
    }
    Ok(())
}

/// `gdx-hub items consistency`: the deviations, the items without
/// counterpart, the summary; `out`: the XLSX workbook instead.
pub fn print_consistency(hub_dir: &Path, filter: &Filter, out: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let Analysis { report: r, summary, reference } =
        analyse(&Vaults::at(hub_dir)?, filter).map_err(anyhow::Error::msg)?;
    if let Some(path) = out {
        let title = format!(
            "政务服务事项一致性报告{}（{}）",
            filter.division.map(|d| format!(" · {}", d.name())).unwrap_or_default(),
            gdx_common::units::format_time(crate::util::now())
        );
        let bytes = export::workbook(&r, &summary, &title).map_err(anyhow::Error::msg)?;
        // written beside, then renamed: a reader never sees half a workbook
        let partial = path.with_extension("xlsx.partial");
        std::fs::write(&partial, &bytes)
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        println!(
            "wrote {}: {} deviations, {} items without a provincial counterpart, {} provincial items no lower level lists",
            path.display(),
            r.deviations.len(),
            r.without_province.len(),
            r.not_below.len()
        );
        return Ok(());
    }
    if json {
        println!("{}", serde_json::json!({ "report": r, "summary": summary }));
        return Ok(());
    }
    if !reference {
        println!("this hub keeps no list of a province department: the report is made at the province hub");
    }
    let mut rows = vec![["基本编码", "部门", "字段", "省级", "本级"].map(String::from).to_vec()];
    rows.extend(r.deviations.iter().map(|d| {
        vec![d.basic_code.clone(), d.node.to_string(), d.field.clone(), d.province.clone(), d.theirs.clone()]
    }));
    println!("Deviations from the province ({}):", r.deviations.len());
    print!("{}", gdx_common::table::render(&rows));
    for (what, list) in [
        ("Items with no provincial counterpart", &r.without_province),
        ("Provincial items no lower level lists", &r.not_below),
    ] {
        println!("\n{what} ({}):", list.len());
        for h in list {
            println!("  {} {} — {} ({})", h.item.basic_code, h.item.name, h.node, h.item.levels.label());
        }
    }
    let mut rows = vec![["部门", "事项", "比对", "一致", "一致率"].map(String::from).to_vec()];
    rows.extend(summary.iter().map(|s| {
        vec![
            s.node.clone(),
            s.items.to_string(),
            s.compared.to_string(),
            s.consistent.to_string(),
            s.consistent_pct.map_or("reference".into(), |p| format!("{p}%")),
        ]
    }));
    println!("\nPer department:");
    print!("{}", gdx_common::table::render(&rows));
    Ok(())
}
