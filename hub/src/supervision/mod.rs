//! Supervision information sharing (监管信息共享) at a hub: everything the
//! hub holds about one market entity, gathered by its 统一社会信用代码.
//! [`config`] reads `supervision.toml`; [`discipline`] answers 联合惩戒
//! checks; [`listing`] lists notices and checks and counts them per
//! department. Notices and checks are kept and carried by the exchange
//! store (`crate::exchange`), with the other items hubs pass on.
//!
//! An enterprise profile takes, from every catalogued resource whose
//! 信息项 hold credit codes (the item's `kind` is 统一社会信用代码, or it is
//! named so) and whose vault this hub keeps, the rows naming the code: its
//! registration, its administrative licences and penalties (双公示), the
//! abnormal-operation and dishonest lists, inspections. Each section says
//! where it comes from: the provider, the catalogue entry, and the
//! changeset its vault is at. Who reads decides what is shown: the centre's
//! operators and auditors everything; a department its own resources in
//! full, others' only as far as a live grant of it lets (the granted
//! columns, masked as delivered), and of the rest only that they exist.

pub mod config;
pub mod discipline;
pub mod listing;

use std::path::Path;

use gdx_common::NodeId;
use gdx_common::catalog::{CatalogEntry, ValueKind};
use gdx_common::creditcode::CreditCode;
use gdx_common::wire::RequestRecord;
use serde::Serialize;

use crate::catalog::{Catalog, Filter};
use crate::store::db::Value;
use crate::store::vault::Vaults;

/// Rows shown per section at most.
const ROWS_PER_SECTION: usize = 200;

/// Who reads a profile.
#[derive(Debug, Clone)]
pub enum Reader {
    /// The centre's operator or an auditor: everything.
    Staff,
    /// A department: its own resources, and others' under its live grants.
    Department(NodeId),
}

/// One enterprise's profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub credit_code: String,
    /// Its name, as the first section naming it gives it.
    pub name: Option<String>,
    pub sections: Vec<Section>,
    /// Resources that hold rows of it which this reader may not see, and why.
    pub restricted: Vec<Restricted>,
}

/// What one catalogued resource holds about the enterprise.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// 信息资源代码 and 信息资源名称.
    pub code: String,
    pub name: String,
    pub provider: String,
    pub provider_name: String,
    /// The changeset the provider's vault here is at, and when it was applied.
    pub changeset: i64,
    pub updated_at: i64,
    /// `all`, or the grant under which the reader sees it.
    pub seen_under: String,
    /// The rows, as JSON objects of the columns shown.
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// A resource holding rows about the enterprise that the reader may not see.
#[derive(Debug, Clone, Serialize)]
pub struct Restricted {
    pub code: String,
    pub name: String,
    pub provider: String,
    pub rows: usize,
    pub why: String,
}

/// One row as a JSON object of its columns.
type Row = serde_json::Map<String, serde_json::Value>;

/// The rows a table holds of a code, and the changeset and time its vault is at.
type Held = (Vec<Row>, i64, i64);

/// The column of `entry` holding credit codes, if it has one.
fn credit_column(entry: &CatalogEntry) -> Option<String> {
    entry
        .items
        .iter()
        .find(|i| i.kind == Some(ValueKind::CreditCode) || i.name == "统一社会信用代码")
        .map(|i| i.column().to_owned())
}

/// The rows of `entry`'s table in its provider's vault naming `code` in
/// `column`, and the changeset and time the vault is at; None when this hub
/// keeps no such table. The column is indexed the first time.
pub(crate) fn rows_naming(
    vaults: &Vaults,
    entry: &CatalogEntry,
    column: &str,
    code: &str,
) -> Result<Option<Held>, String> {
    let at = |e: crate::store::vault::VaultError| e.to_string();
    let table = entry.resource.as_str();
    let Some((changeset, updated_at)) = vaults.head_of(&entry.provider, table).map_err(at)? else { return Ok(None) };
    // a profile looks a code up in every such table: each gets an index on its credit-code column
    let found = vaults
        .rows_of_keys(&entry.provider, table, column, &[code.to_owned()], true, Some(ROWS_PER_SECTION))
        .map_err(at)?;
    let Some((names, found)) = found else { return Ok(None) };
    let rows = found
        .into_iter()
        .map(|values| {
            names
                .iter()
                .zip(values)
                .map(|(n, v)| {
                    let v = match v {
                        Value::Null => serde_json::Value::Null,
                        Value::Integer(x) => x.into(),
                        Value::Real(x) => x.into(),
                        Value::Text(t) => t.into(),
                        Value::Blob(b) => gdx_common::token::hex(&b).into(),
                    };
                    (n.clone(), v)
                })
                .collect()
        })
        .collect();
    Ok(Some((rows, changeset, updated_at)))
}

/// The part of `row` that grant `g` lets its consumer see: the granted
/// columns, the masked ones masked.
fn as_granted(
    row: serde_json::Map<String, serde_json::Value>,
    g: &RequestRecord,
) -> serde_json::Map<String, serde_json::Value> {
    let has = |list: &[String], name: &str| list.iter().any(|c| c.eq_ignore_ascii_case(name));
    row.into_iter()
        .filter(|(k, _)| has(&g.columns, k))
        .map(|(k, v)| {
            let v = match (&v, has(&g.masked, &k)) {
                (serde_json::Value::Null, _) | (_, false) => v,
                (serde_json::Value::String(s), true) => gdx_common::grant::mask(s).into(),
                (other, true) => gdx_common::grant::mask(&other.to_string()).into(),
            };
            (k, v)
        })
        .collect()
}

/// The profile of the enterprise with credit code `code`, as `reader` may
/// see it; `grants`: the reader's records (a department's), for what others
/// granted it.
pub fn profile(
    catalog: &Catalog,
    vaults: &Vaults,
    code: &str,
    reader: &Reader,
    grants: &[RequestRecord],
    now: i64,
) -> Result<Profile, String> {
    let code = CreditCode::parse(code.trim())
        .map_err(|e| format!("{e}; give the enterprise's 18-character 统一社会信用代码"))?
        .as_str()
        .to_owned();
    let entries = catalog.list(&Filter::default(), now).map_err(|e| e.to_string())?;
    let mut profile = Profile { credit_code: code.clone(), name: None, sections: Vec::new(), restricted: Vec::new() };
    for listed in entries.iter().filter(|l| !l.withdrawn) {
        let entry = &listed.entry;
        let Some(column) = credit_column(entry) else { continue };
        let Some((rows, changeset, updated_at)) = rows_naming(vaults, entry, &column, &code)? else { continue };
        if rows.is_empty() {
            continue;
        }
        let grant = match reader {
            Reader::Staff => Ok(None),
            Reader::Department(me) if &entry.provider == me => Ok(None),
            Reader::Department(_) => {
                let has = |list: &[String]| list.iter().any(|c| c.eq_ignore_ascii_case(&column));
                match grants.iter().find(|g| g.code == entry.code && g.is_live(now)) {
                    None => Err(format!("no live grant of {}: request it to see these rows", entry.code)),
                    // a grant that hides the credit code cannot be searched by it (as lookups cannot)
                    Some(g) if !has(&g.columns) || has(&g.masked) => Err(format!(
                        "grant {} does not give the credit code ({column}) in clear, so it cannot be searched by it",
                        g.id
                    )),
                    Some(g) => Ok(Some(g)),
                }
            }
        };
        let grant = match grant {
            Ok(g) => g,
            Err(why) => {
                profile.restricted.push(Restricted {
                    code: entry.code.clone(),
                    name: entry.name.clone(),
                    provider: entry.provider.to_string(),
                    rows: rows.len(),
                    why,
                });
                continue;
            }
        };
        let rows: Vec<Row> = match grant {
            Some(g) => rows.into_iter().map(|r| as_granted(r, g)).collect(),
            None => rows,
        };
        // the name as this reader sees it (not masked, not withheld)
        if profile.name.is_none() {
            let named = entry.items.iter().find(|i| i.name.ends_with("名称") && i.name != "信息资源名称");
            let masked = grant.is_some_and(|g| named.is_some_and(|i| g.masked.iter().any(|m| m == i.column())));
            if !masked {
                profile.name = named.and_then(|i| rows[0].get(i.column())).and_then(|v| v.as_str()).map(str::to_owned);
            }
        }
        profile.sections.push(Section {
            code: entry.code.clone(),
            name: entry.name.clone(),
            provider: entry.provider.to_string(),
            provider_name: entry.provider_name.clone(),
            changeset,
            updated_at,
            seen_under: grant.map_or_else(|| "all".to_owned(), |g| format!("grant {}", g.id)),
            rows,
        });
    }
    Ok(profile)
}

/// `gdx-hub enterprise USCC`: the profile as the centre's operator sees it.
pub fn print(hub_dir: &Path, code: &str, json: bool) -> anyhow::Result<()> {
    let catalog = Catalog::open_as_configured(hub_dir)?;
    let config = crate::config::HubConfig::load(&crate::store::HubPaths::new(hub_dir))?;
    let vaults = Vaults::for_hub(hub_dir, &config)?;
    let p = profile(&catalog, &vaults, code, &Reader::Staff, &[], crate::util::now()).map_err(crate::cli::Usage)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    println!("{} {}", p.credit_code, p.name.as_deref().unwrap_or("(no name on record)"));
    if p.sections.is_empty() {
        println!("no resource kept at this hub names {}", p.credit_code);
    }
    for s in &p.sections {
        println!(
            "\n{} {} — {} {} (changeset {}, {})",
            s.code,
            s.name,
            s.provider,
            s.provider_name,
            s.changeset,
            gdx_common::units::format_time(s.updated_at)
        );
        let columns: Vec<String> = s.rows.first().map(|r| r.keys().cloned().collect()).unwrap_or_default();
        let mut table = vec![columns.iter().map(|c| c.to_uppercase()).collect::<Vec<_>>()];
        for r in &s.rows {
            table.push(
                columns
                    .iter()
                    .map(|c| match r.get(c) {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(serde_json::Value::Null) | None => "-".into(),
                        Some(v) => v.to_string(),
                    })
                    .collect(),
            );
        }
        print!("{}", gdx_common::table::render(&table));
    }
    Ok(())
}
