//! Base databases (基础信息资源库) at a hub: the population base keyed by
//! 公民身份号码, the legal-person base keyed by 统一社会信用代码, … each
//! merged from member resources that departments sync into their vaults.
//!
//! `bases.toml` declares each base: its key's value kind, its members
//! (node, resource, and the column holding the base key, which must be the
//! resource's key), and for each field its sources, the first the
//! authority and the others filling in when the authority is silent.
//!
//! How it stays exact: a member's vault logs the keys each applied
//! changeset touched (`_gdx_base_log`, in the changeset's own transaction).
//! The merge takes a batch of that log, recomputes each touched key from
//! the members' current rows, and commits the merged rows, every field's
//! provenance (department, resource, changeset number, time), the
//! disagreements between sources and how far it read the log, in one
//! transaction of `bases/NAME.db`; then it trims the log. Recomputing a key
//! from current rows gives the same answer however often it runs, so a kill
//! at any point loses nothing and doubles nothing.
//!
//! A base with a `[base.catalog]` entry is shared like any resource: this
//! hub is its provider, and the merge publishes each pass's recomputed rows
//! as the base's changesets, which the exchange delivers under grants, each
//! field with a `FIELD__source` column saying where it came from
//! (`merge`). `config` is `bases.toml`; this module opens a base's file and
//! answers the operator's views.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use gdx_common::NodeId;
use gdx_common::geometry::BBox;
use gdx_files::quote_ident;
use serde::Serialize;

use crate::args;
use crate::store::HubPaths;
use crate::store::db::{Db, Sql, Value, Which};
use crate::store::vault::Vaults;

mod config;
mod merge;

pub use config::{BaseConfig, BasesConfig, Field, Member};
pub use merge::{Context, Merged, Publisher, merge_all, merge_once, published_columns};

/// `NODE/RESOURCE`, as members are named in the base's tables.
fn member_name(m: &Member) -> String {
    format!("{}/{}", m.node, m.resource)
}

/// Page cache of an open base on SQLite (KiB), as a vault's.
const CACHE_KIB: i64 = 256 * 1024;

/// The column of the base table naming the member a field's value came
/// from (`NODE/RESOURCE`); the changeset and time are that member's row
/// version in `member_rows`.
fn from_column(field: &str) -> String {
    format!("{field}__from")
}

/// A base's tables (SQLite's words), before its fields' columns, which
/// [`open`] adds as bases.toml declares them. On SQLite the boxes of a
/// spatial base are indexed by an R-tree besides (`spatial_index`).
pub const TABLES: &str = "CREATE TABLE IF NOT EXISTS base (key TEXT PRIMARY KEY) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS member_rows (
         member TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
         PRIMARY KEY (member, key)) WITHOUT ROWID;
     CREATE INDEX IF NOT EXISTS member_rows_key ON member_rows (key);
     CREATE TABLE IF NOT EXISTS conflicts (
         key TEXT NOT NULL, field TEXT NOT NULL, a TEXT NOT NULL, a_value TEXT NOT NULL,
         b TEXT NOT NULL, b_value TEXT NOT NULL, seen_at INTEGER NOT NULL,
         PRIMARY KEY (key, field, a, b)) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS progress (member TEXT PRIMARY KEY, log_id INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS todo (key TEXT PRIMARY KEY) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS stale (member TEXT PRIMARY KEY);
     CREATE TABLE IF NOT EXISTS _gdx_resources (
         resource TEXT PRIMARY KEY, epoch INTEGER NOT NULL, last_seq INTEGER NOT NULL, updated_at INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS _gdx_changesets (
         resource TEXT NOT NULL, seq INTEGER NOT NULL, frame BLOB NOT NULL, PRIMARY KEY (resource, seq));
     CREATE TABLE IF NOT EXISTS invalid (
         key TEXT NOT NULL, field TEXT NOT NULL, member TEXT NOT NULL, reason TEXT NOT NULL,
         PRIMARY KEY (key, field)) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS spatial (
         id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
         west REAL NOT NULL, south REAL NOT NULL, east REAL NOT NULL, north REAL NOT NULL,
         area_m2 REAL NOT NULL, cx REAL NOT NULL, cy REAL NOT NULL);
     CREATE TABLE IF NOT EXISTS audit_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);";

/// Opens (creating) a base's store, with a column per field: its file
/// `bases/NAME.db`, or its schema on PostgreSQL when hub.toml keeps the
/// stores there. A field's column holds its values as the members gave
/// them on SQLite, and as their text on PostgreSQL.
pub fn open(hub_dir: &Path, base: &BaseConfig) -> Result<Db, String> {
    let paths = HubPaths::new(hub_dir);
    let which = Which::base(&base.name);
    let on_postgres = matches!(
        crate::config::store_in(&paths).map_err(|e| e.to_string())?,
        Some(crate::config::StoreConfig::Postgres { .. })
    );
    if !on_postgres {
        let dir = paths.bases();
        gdx_files::create_private_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let db = Db::open(&paths, which, &which.tables()).map_err(|e| e.to_string())?;
    prepare(&db, &field_columns(base))?;
    Ok(db)
}

/// The columns of the base table beside its key: the key's document kind,
/// then each field and the member it came from.
pub fn field_columns(base: &BaseConfig) -> Vec<String> {
    std::iter::once("key__kind".to_owned())
        .chain(base.fields.iter().flat_map(|f| [f.name.clone(), from_column(&f.name)]))
        .collect()
}

/// Makes what a base's store needs beyond [`TABLES`]: on SQLite the
/// R-tree of boxes, and the base table's `wanted` columns (a column added
/// queues every record to be merged again).
pub fn prepare(db: &Db, wanted: &[String]) -> Result<(), String> {
    if let Db::Sqlite(conn) = &db {
        conn.execute_batch(&format!(
            "CREATE VIRTUAL TABLE IF NOT EXISTS spatial_index USING rtree(id, west, east, south, north);
             -- a base of millions of records is written in key batches all over its tables
             PRAGMA cache_size = -{CACHE_KIB}"
        ))
        .map_err(|e| e.to_string())?;
    }
    let have = columns_of_base(db).map_err(|e| e.to_string())?;
    if wanted.iter().all(|c| have.contains(c)) {
        return Ok(());
    }
    db.write(|tx| {
        // looked at again under the store's lock: another process may have added them
        let have = columns_of_base(tx)?;
        let missing: Vec<&String> = wanted.iter().filter(|c| !have.contains(*c)).collect();
        for column in &missing {
            let kind = match tx.postgres() {
                true => " TEXT",
                false => "",
            };
            tx.execute_batch(&format!("ALTER TABLE base ADD COLUMN {}{kind}", quote_ident(column)))?;
        }
        if !missing.is_empty() {
            // a field declared since: every record is recomputed to fill it (and published again)
            tx.execute("INSERT INTO todo (key) SELECT key FROM base WHERE true ON CONFLICT DO NOTHING", args![])?;
        }
        Ok::<_, crate::store::db::DbError>(())
    })
    .map_err(|e| e.to_string())
}

/// The columns the base table has now.
pub fn columns_of_base(db: &impl Sql) -> Result<BTreeSet<String>, crate::store::db::DbError> {
    let sql = match db.postgres() {
        true => {
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'base'"
        }
        false => "SELECT name FROM pragma_table_info('base')",
    };
    Ok(db.query(sql, args![], |r| r.get(0))?.into_iter().collect())
}

/// When each shared base of the hub at `hub_dir` last changed (its name,
/// Unix seconds), from its schema on PostgreSQL; as the catalogue asks of
/// the files of a hub on SQLite (`crate::store::vault::last_changes`).
pub fn last_changes_on_postgres(hub_dir: &Path) -> HashMap<String, i64> {
    let paths = HubPaths::new(hub_dir);
    let read = |b: &BaseConfig| -> Result<Vec<(String, i64)>, String> {
        let which = Which::base(&b.name);
        let Some(db) = Db::postgres_of(&paths, which, &which.tables()).map_err(|e| e.to_string())? else {
            return Ok(Vec::new());
        };
        db.query("SELECT resource, updated_at FROM _gdx_resources", args![], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| e.to_string())
    };
    let bases = BasesConfig::load(hub_dir).unwrap_or_default();
    bases
        .bases
        .iter()
        .flat_map(|b| {
            read(b).unwrap_or_else(|e| {
                tracing::warn!(base = %b.name, error = %e, "cannot tell when the base on PostgreSQL last changed");
                Vec::new()
            })
        })
        .collect()
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Text(t) => Some(t.clone()),
        Value::Blob(b) => Some(gdx_common::token::hex(b)),
    }
}

/// A member's rows of a batch of keys: its columns by name, its rows by key.
#[derive(Default)]
struct Fetched {
    index: HashMap<String, usize>,
    rows: HashMap<String, Vec<Value>>,
}

/// Reads `member`'s rows of `keys` from its vault in one statement (none
/// when it holds no table yet).
fn fetch_rows(vaults: &Vaults, m: &Member, keys: &[String]) -> Result<Fetched, String> {
    let at_member = |e: crate::store::vault::VaultError| format!("{}: {e}", member_name(m));
    let Some((columns, rows)) =
        vaults.rows_of_keys(&m.node, &m.resource, &m.key, keys, false, None).map_err(at_member)?
    else {
        // no table yet, or (said, for the operator to mend) a table without the key column
        return match vaults.head_of(&m.node, &m.resource).map_err(at_member)? {
            Some(_) => Err(format!("{} has no column {}", member_name(m), m.key)),
            None => Ok(Fetched::default()),
        };
    };
    if rows.is_empty() {
        return Ok(Fetched::default());
    }
    let index: HashMap<String, usize> = columns.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
    let Some(&at) = index.get(&m.key) else {
        return Err(format!("{} has no column {}", member_name(m), m.key));
    };
    let rows = rows.into_iter().filter_map(|row| text_of(&row[at]).map(|k| (k, row))).collect();
    Ok(Fetched { index, rows })
}

/// A field of a merged record, with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct FieldValue {
    pub field: String,
    pub value: Option<String>,
    /// `NODE/RESOURCE` that gave it.
    pub from: Option<String>,
    pub changeset: Option<i64>,
    pub at: Option<i64>,
    /// Its department's certificates are all revoked: the value is no longer kept current.
    pub stale: bool,
    /// For a spatial base's geometry: its area, centroid and box.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measures: Option<Place>,
}

/// A record's geometry, measured.
#[derive(Debug, Clone, Serialize)]
pub struct Place {
    pub key: String,
    pub area_m2: f64,
    /// Longitude and latitude.
    pub centroid: (f64, f64),
    /// West, south, east, north.
    pub bbox: (f64, f64, f64, f64),
}

fn place_of(r: &crate::store::db::Row) -> Result<Place, crate::store::db::DbError> {
    Ok(Place {
        key: r.get(0)?,
        area_m2: r.get(5)?,
        centroid: (r.get(6)?, r.get(7)?),
        bbox: (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
    })
}

const PLACE_COLUMNS: &str = "key, west, south, east, north, area_m2, cx, cy";

/// The records of a spatial base whose geometry's box meets `bbox`, by key,
/// at most `limit`; true in second place when there are more.
pub fn within(hub_dir: &Path, base: &BaseConfig, bbox: &BBox, limit: usize) -> Result<(Vec<Place>, bool), String> {
    if base.geometry.is_none() {
        return Err(format!("base {} is not spatial: it declares no geometry field", base.name));
    }
    let db = open(hub_dir, base)?;
    // on SQLite the R-tree holds boxes rounded outwards, and the exact box decides
    let candidates = match db.postgres() {
        true => "",
        false => {
            "id IN (SELECT id FROM spatial_index WHERE west <= ?3 AND east >= ?1 AND south <= ?4 AND north >= ?2) AND"
        }
    };
    let mut found: Vec<Place> = db
        .query(
            &format!(
                "SELECT {PLACE_COLUMNS} FROM spatial WHERE {candidates}
                 west <= ?3 AND east >= ?1 AND south <= ?4 AND north >= ?2 ORDER BY key LIMIT ?5"
            ),
            args![bbox.west, bbox.south, bbox.east, bbox.north, limit + 1],
            place_of,
        )
        .map_err(|e| e.to_string())?;
    let more = found.len() > limit;
    found.truncate(limit);
    Ok((found, more))
}

/// One record of a base, field by field; `store` (`hub.db`) tells which
/// members' departments are revoked at `now`.
pub fn get(
    hub_dir: &Path,
    base: &BaseConfig,
    key: &str,
    store: &crate::store::Store,
    now: i64,
) -> Result<Option<Vec<FieldValue>>, String> {
    let revoked = |member: &str| {
        let node = member.rsplit_once('/').map_or(member, |(n, _)| n);
        NodeId::parse(node).is_ok_and(|n| store.revoked_node(&n, now).unwrap_or(false))
    };
    let e = |e: crate::store::db::DbError| e.to_string();
    let db = open(hub_dir, base)?;
    let kind: Option<Option<String>> =
        db.query_opt("SELECT key__kind FROM base WHERE key = ?1", args![key], |r| r.get(0)).map_err(e)?;
    let cols: Vec<String> =
        base.fields.iter().flat_map(|f| [quote_ident(&f.name), quote_ident(&from_column(&f.name))]).collect();
    let row: Option<Vec<Value>> = db
        .query_opt(&format!("SELECT {} FROM base WHERE key = ?1", cols.join(", ")), args![key], |r| {
            (0..cols.len()).map(|i| r.get(i)).collect()
        })
        .map_err(e)?;
    let Some(row) = row else { return Ok(None) };
    base.fields
        .iter()
        .zip(row.chunks(2))
        .map(|(f, pair)| {
            let v = &pair[0];
            let prov: Option<(String, i64, i64)> = match text_of(&pair[1]) {
                Some(member) => db
                    .query_opt(
                        "SELECT seq, at FROM member_rows WHERE member = ?1 AND key = ?2",
                        args![member, key],
                        |r| Ok((member.clone(), r.get(0)?, r.get(1)?)),
                    )
                    .map_err(e)?,
                None => None,
            };
            let stale = prov.as_ref().is_some_and(|(m, _, _)| revoked(m));
            let measures = match base.geometry.as_deref() == Some(f.name.as_str()) {
                true => db
                    .query_opt(&format!("SELECT {PLACE_COLUMNS} FROM spatial WHERE key = ?1"), args![key], place_of)
                    .map_err(e)?,
                false => None,
            };
            Ok(FieldValue {
                field: f.name.clone(),
                value: text_of(v),
                from: prov.as_ref().map(|p| p.0.clone()),
                changeset: prov.as_ref().map(|p| p.1),
                at: prov.as_ref().map(|p| p.2),
                stale,
                measures,
            })
        })
        .collect::<Result<Vec<FieldValue>, String>>()
        .map(|mut fields| {
            // an identity number's document, found when it was checked
            if let Some(Some(kind)) = kind {
                let field = format!("{}{}", base.key_column(), merge::KIND_SUFFIX);
                let value = Some(kind);
                fields.insert(
                    0,
                    FieldValue { field, value, from: None, changeset: None, at: None, stale: false, measures: None },
                );
            }
            Some(fields)
        })
}

/// A base at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub name: String,
    pub title: String,
    pub key: String,
    pub records: i64,
    /// Per member: rows taken, and when its last change was merged.
    pub members: Vec<(String, i64, Option<i64>)>,
    /// Per field: the share of records holding a value (0 to 1).
    pub coverage: Vec<(String, f64)>,
    pub conflicts: i64,
    /// Values not merged because they are not what their field holds (a
    /// spatial base's geometries), with the member and the reason.
    pub invalid: Vec<(String, String, String, String)>,
}

pub fn summary(hub_dir: &Path, base: &BaseConfig) -> Result<Summary, String> {
    let db = open(hub_dir, base)?;
    let e = |e: crate::store::db::DbError| e.to_string();
    let records: i64 = db.query_row("SELECT count(*) FROM base", args![], |r| r.get(0)).map_err(e)?;
    let members = base
        .members
        .iter()
        .map(|m| {
            let name = member_name(m);
            db.query_row("SELECT count(*), max(at) FROM member_rows WHERE member = ?1", args![name], |r| {
                Ok((name.clone(), r.get(0)?, r.get(1)?))
            })
            .map_err(e)
        })
        .collect::<Result<_, _>>()?;
    let coverage = base
        .fields
        .iter()
        .map(|f| {
            let n: i64 = db
                .query_row(
                    &format!("SELECT count(*) FROM base WHERE {} IS NOT NULL", quote_ident(&f.name)),
                    args![],
                    |r| r.get(0),
                )
                .map_err(e)?;
            Ok((f.name.clone(), if records == 0 { 0.0 } else { n as f64 / records as f64 }))
        })
        .collect::<Result<_, String>>()?;
    let conflicts: i64 = db.query_row("SELECT count(*) FROM conflicts", args![], |r| r.get(0)).map_err(e)?;
    let invalid = db
        .query("SELECT key, field, member, reason FROM invalid ORDER BY member, key LIMIT 100", args![], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(e)?;
    Ok(Summary {
        name: base.name.clone(),
        title: base.title.clone(),
        key: base.key.map_or_else(|| "-".to_owned(), |k| k.to_string()),
        records,
        members,
        coverage,
        conflicts,
        invalid,
    })
}

/// One disagreement between two sources.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub key: String,
    pub field: String,
    pub a: String,
    pub a_value: String,
    pub b: String,
    pub b_value: String,
}

/// The disagreements, by department pair then key (at most `limit`).
pub fn conflicts(hub_dir: &Path, base: &BaseConfig, limit: usize) -> Result<Vec<Conflict>, String> {
    let db = open(hub_dir, base)?;
    db.query(
        "SELECT key, field, a, a_value, b, b_value FROM conflicts ORDER BY a, b, key, field LIMIT ?1",
        args![limit],
        |r| {
            Ok(Conflict {
                key: r.get(0)?,
                field: r.get(1)?,
                a: r.get(2)?,
                a_value: r.get(3)?,
                b: r.get(4)?,
                b_value: r.get(5)?,
            })
        },
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[base]]
name = "renkou"
title = "人口基础信息库"
key = "公民身份号码"
[[base.member]]
node = "630000/gongan"
resource = "hukou"
key = "id_number"
[[base.field]]
name = "姓名"
from = ["630000/gongan/hukou.name"]
"#;

    fn load(text: &str) -> Result<BasesConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bases.toml"), text).unwrap();
        BasesConfig::load(dir.path())
    }

    #[test]
    fn declarations_load_and_mistakes_are_named() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.members(), vec![(NodeId::parse("630000/gongan").unwrap(), "hukou".to_owned())]);
        assert!(BasesConfig::load(tempfile::tempdir().unwrap().path()).unwrap().bases.is_empty(), "no file, no bases");
        let cases = [
            (GOOD.replace("hukou.name", "hunyin.name"), "630000/gongan/hunyin is not a [[base.member]]"),
            (GOOD.replace("/hukou.name", "/hukou"), "must be NODE/RESOURCE.column"),
            (GOOD.replace("name = \"renkou\"", "name = \"ren kou\""), "plain identifier"),
            (GOOD.replace("name = \"姓名\"", "name = \"key\""), "other than key and the key column"),
            (GOOD.replace("name = \"姓名\"", "name = \"name__source\""), "without \"__\""),
            (GOOD.replace("公民身份号码\"", "身份证\""), "unknown variant `身份证`, expected one of"),
            (format!("{GOOD}{GOOD}"), "two bases are named renkou"),
            (
                format!("{GOOD}{}", GOOD.replace("name = \"renkou\"", "name = \"other\"")),
                "630000/gongan/hukou is a member of two bases",
            ),
        ];
        for (text, want) in cases {
            let err = load(&text).unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn a_shared_bases_entry_is_checked_against_its_columns() {
        let hub = NodeId::parse("630000/hub").unwrap();
        let today = 20_500; // 2026-02-16
        let entry = |items: &str| {
            let text = GOOD.replace(
                "[[base.member]]",
                &format!(
                    r#"key_column = "id_number"
[base.catalog]
code = "101001/900001"
class = "基础信息资源"
classification = ["人口"]
name = "人口基础信息库"
provider_name = "青海省政务服务监督管理局"
provider_code = "11630000MB1234562X"
abstract = "全省人口"
format = "数据库"
format_type = "sqlite"
sharing_type = "无条件共享"
sharing_method = "接口"
open_to_public = false
update_cycle = "实时"
published = "2026-01-01"
items = [{items}]
[[base.member]]"#
                ),
            );
            load(&text).unwrap().bases[0].entry(&hub, today)
        };
        let key = r#"{ name = "公民身份号码", column = "id_number", data_type = "C", length = 18 }"#;
        let name = r#"{ name = "姓名", column = "姓名", data_type = "C", length = 50 }"#;
        let e = entry(&format!("{key}, {name}")).unwrap().unwrap();
        assert_eq!((e.provider.to_string(), e.resource.as_str()), ("630000/hub".to_owned(), "renkou"));
        assert!(entry(name).unwrap_err().contains("declare the key as a 信息项 with column = \"id_number\""));
        let stray = r#"{ name = "住址", column = "address", data_type = "C", length = 50 }"#;
        let err = entry(&format!("{key}, {stray}")).unwrap_err();
        assert!(err.contains("住址 names column \"address\", which the base does not have"), "{err}");
        assert_eq!(load(GOOD).unwrap().bases[0].entry(&hub, today).unwrap(), None, "not shared");
    }
}
