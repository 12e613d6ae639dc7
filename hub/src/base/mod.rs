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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use gdx_common::NodeId;
use gdx_common::catalog::ValueKind;
use gdx_common::catalog::kinds::check_value;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::store::vault::Vaults;

/// Log entries taken per member per pass.
const BATCH: i64 = 5_000;

/// `bases.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasesConfig {
    #[serde(default, rename = "base")]
    pub bases: Vec<BaseConfig>,
}

/// One base database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseConfig {
    /// Its name: a plain identifier (`renkou`), its file `bases/NAME.db`.
    pub name: String,
    /// What people call it (人口基础信息库).
    pub title: String,
    /// The kind of its key (公民身份号码, 统一社会信用代码, …); keys that are
    /// not valid values of it are not merged.
    pub key: ValueKind,
    #[serde(rename = "member")]
    pub members: Vec<Member>,
    #[serde(rename = "field")]
    pub fields: Vec<Field>,
}

/// A member resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub node: NodeId,
    pub resource: String,
    /// The column holding the base's key: the resource's key column.
    pub key: String,
}

/// A field of the base: its sources, `NODE/RESOURCE.column`, the first the
/// authority, the others filling in, in order, when it is silent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    pub from: Vec<String>,
}

/// A field's source, resolved: which member, which column.
#[derive(Debug, Clone)]
struct Source {
    member: usize,
    column: String,
}

fn plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.starts_with("_gdx")
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

impl BasesConfig {
    /// Reads `bases.toml` in `hub_dir`; no file, no bases.
    pub fn load(hub_dir: &Path) -> Result<Self, String> {
        let path = hub_dir.join("bases.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let config: Self =
            toml::from_str(&text).map_err(|e| format!("{} is not valid: {}", path.display(), e.message()))?;
        for b in &config.bases {
            b.sources().map_err(|e| format!("{}: base {}: {e}", path.display(), b.name))?;
        }
        let mut names = BTreeSet::new();
        if let Some(b) = config.bases.iter().find(|b| !names.insert(&b.name)) {
            return Err(format!("{}: two bases are named {}", path.display(), b.name));
        }
        Ok(config)
    }

    /// Every member resource of every base, for the vaults' log.
    pub fn members(&self) -> Vec<(NodeId, String)> {
        self.bases.iter().flat_map(|b| b.members.iter().map(|m| (m.node.clone(), m.resource.clone()))).collect()
    }
}

impl BaseConfig {
    /// Each field's sources, resolved, or what is wrong with the declaration.
    fn sources(&self) -> Result<Vec<Vec<Source>>, String> {
        if !plain(&self.name) {
            return Err("the name must be a plain identifier such as renkou".into());
        }
        if self.members.is_empty() || self.fields.is_empty() {
            return Err("declare at least one [[base.member]] and one [[base.field]]".into());
        }
        for m in &self.members {
            if !plain(&m.resource) || !plain(&m.key) {
                return Err(format!("member {}/{}: resource and key must be plain names", m.node, m.resource));
            }
        }
        self.fields
            .iter()
            .map(|f| {
                if !plain(&f.name) || f.name == "key" {
                    return Err(format!("field {:?} must be a plain name other than key", f.name));
                }
                if f.from.is_empty() {
                    return Err(format!("field {} names no source", f.name));
                }
                f.from
                    .iter()
                    .map(|s| {
                        let (member, column) = s.rsplit_once('.').ok_or_else(|| {
                            format!(
                                "field {}: source {s:?} must be NODE/RESOURCE.column, such as 630000/gongan/hukou.name",
                                f.name
                            )
                        })?;
                        let at = self
                            .members
                            .iter()
                            .position(|m| format!("{}/{}", m.node, m.resource) == member)
                            .ok_or_else(|| format!("field {}: {member} is not a [[base.member]]", f.name))?;
                        Ok(Source { member: at, column: column.to_owned() })
                    })
                    .collect()
            })
            .collect()
    }
}

/// `NODE/RESOURCE`, as members are named in the base's tables.
fn member_name(m: &Member) -> String {
    format!("{}/{}", m.node, m.resource)
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The file of base `name`.
pub fn path(hub_dir: &Path, name: &str) -> PathBuf {
    hub_dir.join("bases").join(format!("{name}.db"))
}

/// Opens (creating) a base's database, with a column per field.
pub fn open(hub_dir: &Path, base: &BaseConfig) -> Result<Connection, String> {
    let dir = hub_dir.join("bases");
    gdx_files::create_private_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let conn = gdx_files::open_sqlite(
        &path(hub_dir, &base.name),
        "CREATE TABLE IF NOT EXISTS base (key TEXT PRIMARY KEY) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS provenance (
             key TEXT NOT NULL, field TEXT NOT NULL, member TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
             PRIMARY KEY (key, field)) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS member_rows (
             member TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
             PRIMARY KEY (member, key)) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS member_rows_key ON member_rows (key);
         CREATE TABLE IF NOT EXISTS conflicts (
             key TEXT NOT NULL, field TEXT NOT NULL, a TEXT NOT NULL, a_value TEXT NOT NULL,
             b TEXT NOT NULL, b_value TEXT NOT NULL, seen_at INTEGER NOT NULL,
             PRIMARY KEY (key, field, a, b)) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS progress (member TEXT PRIMARY KEY, log_id INTEGER NOT NULL);",
    )
    .map_err(|e| e.to_string())?;
    let have: BTreeSet<String> = conn
        .prepare("SELECT name FROM pragma_table_info('base')")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e: rusqlite::Error| e.to_string())?;
    for f in &base.fields {
        if !have.contains(&f.name) {
            conn.execute_batch(&format!("ALTER TABLE base ADD COLUMN {}", quote(&f.name)))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(conn)
}

/// One member's row for a key: column → value.
type Row = HashMap<String, rusqlite::types::Value>;

fn text_of(v: &rusqlite::types::Value) -> Option<String> {
    use rusqlite::types::Value as V;
    match v {
        V::Null => None,
        V::Integer(i) => Some(i.to_string()),
        V::Real(f) => Some(f.to_string()),
        V::Text(t) => Some(t.clone()),
        V::Blob(b) => Some(gdx_common::token::hex(b)),
    }
}

/// True when `member`'s vault holds its table yet.
fn member_table_exists(vaults: &Vaults, m: &Member) -> Result<bool, String> {
    let conn = vaults.open(&m.node).map_err(|e| e.to_string())?;
    let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [&m.resource], |r| {
        r.get::<_, i64>(0).map(|n| n > 0)
    })
    .map_err(|e| e.to_string())
}

/// Reads `member`'s row with base key `key` from its vault (None: it holds none).
fn member_row(vaults: &Vaults, m: &Member, key: &str) -> Result<Option<Row>, String> {
    let conn = vaults.open(&m.node).map_err(|e| e.to_string())?;
    let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let sql = format!("SELECT * FROM {} WHERE {} = ?1", quote(&m.resource), quote(&m.key));
    let mut stmt = conn.prepare_cached(&sql).map_err(|e| format!("{}: {e}", member_name(m)))?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    stmt.query_row([key], |r| {
        let mut row = Row::new();
        for (i, n) in names.iter().enumerate() {
            row.insert(n.clone(), r.get::<_, rusqlite::types::Value>(i)?);
        }
        Ok(row)
    })
    .optional()
    .map_err(|e| e.to_string())
}

/// What one merge pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Merged {
    pub entries: usize,
    pub keys: usize,
}

/// Takes one batch of every member's log into the base; returns what it did.
pub fn merge_once(hub_dir: &Path, vaults: &Vaults, base: &BaseConfig, now: i64) -> Result<Merged, String> {
    let sources = base.sources()?;
    let mut conn = open(hub_dir, base)?;
    let mut done = Merged::default();
    for m in &base.members {
        let name = member_name(m);
        let from: i64 = conn
            .query_row("SELECT log_id FROM progress WHERE member = ?1", [&name], |r| r.get(0))
            .optional()
            .map_err(|e| e.to_string())?
            .unwrap_or(0);
        let entries: Vec<(i64, i64, i64, Option<String>)> = {
            let vault = vaults.open(&m.node).map_err(|e| e.to_string())?;
            let vault = vault.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut stmt = vault
                .prepare_cached(
                    "SELECT id, seq, at, key FROM _gdx_base_log WHERE resource = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                )
                .map_err(|e| e.to_string())?;
            stmt.query_map(params![m.resource, from, BATCH], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| e.to_string())?
        };
        let Some(last) = entries.last().map(|e| e.0) else { continue };
        // the keys to recompute, and the member's row versions they were at
        let mut touched: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let mut all = false;
        for (_, seq, at, key) in &entries {
            match key {
                Some(k) => {
                    touched.insert(k.clone(), (*seq, *at));
                }
                None => all = true,
            }
        }
        let mut keys: BTreeSet<String> = touched.keys().cloned().collect();
        if all {
            // a new epoch replaced the resource: everything it gave, and everything it holds now
            let held: Vec<String> = conn
                .prepare("SELECT key FROM member_rows WHERE member = ?1")
                .and_then(|mut s| s.query_map([&name], |r| r.get(0))?.collect())
                .map_err(|e: rusqlite::Error| e.to_string())?;
            keys.extend(held);
        }
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        let exists: Vec<bool> =
            base.members.iter().map(|mm| member_table_exists(vaults, mm)).collect::<Result<_, _>>()?;
        for key in &keys {
            let rows: Vec<Option<Row>> = base
                .members
                .iter()
                .zip(&exists)
                .map(|(mm, there)| if *there { member_row(vaults, mm, key) } else { Ok(None) })
                .collect::<Result<_, _>>()?;
            // this member's row of the key: gone, or as of the changeset that touched it
            let mine = base.members.iter().position(|x| member_name(x) == name).and_then(|i| rows[i].as_ref());
            match mine {
                None => {
                    tx.prepare_cached("DELETE FROM member_rows WHERE member = ?1 AND key = ?2")
                        .and_then(|mut s| s.execute(params![name, key]))
                        .map_err(|e| e.to_string())?;
                }
                Some(_) => {
                    let (seq, at) = touched.get(key).copied().unwrap_or((entries[0].1, entries[0].2));
                    tx.prepare_cached(
                        "INSERT INTO member_rows (member, key, seq, at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(member, key) DO UPDATE SET seq = excluded.seq, at = excluded.at",
                    )
                    .and_then(|mut s| s.execute(params![name, key, seq, at]))
                    .map_err(|e| e.to_string())?;
                }
            }
            write_key(&tx, base, &sources, key, &rows, now)?;
        }
        tx.execute(
            "INSERT INTO progress (member, log_id) VALUES (?1, ?2) ON CONFLICT(member) DO UPDATE SET log_id = excluded.log_id",
            params![name, last],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        // taken: the log may shrink (a kill before this only means reading it again)
        if let Ok(vault) = vaults.open(&m.node) {
            let vault = vault.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ =
                vault.execute("DELETE FROM _gdx_base_log WHERE resource = ?1 AND id <= ?2", params![m.resource, last]);
        }
        done.entries += entries.len();
        done.keys += keys.len();
    }
    Ok(done)
}

/// Writes the merged row of `key` from the members' current `rows`: each
/// field from its authority, or the first filler holding a value; its
/// provenance; the disagreements between its sources.
fn write_key(
    tx: &rusqlite::Transaction<'_>,
    base: &BaseConfig,
    sources: &[Vec<Source>],
    key: &str,
    rows: &[Option<Row>],
    now: i64,
) -> Result<(), String> {
    let e = |e: rusqlite::Error| e.to_string();
    let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| tx.prepare_cached(sql).and_then(|mut s| s.execute(p)).map_err(e);
    run("DELETE FROM conflicts WHERE key = ?1", &[&key])?;
    let valid = check_value(base.key, key, false, now.div_euclid(86_400)).is_ok();
    if !valid || rows.iter().all(Option::is_none) {
        run("DELETE FROM base WHERE key = ?1", &[&key])?;
        run("DELETE FROM provenance WHERE key = ?1", &[&key])?;
        return Ok(());
    }
    // the version of each member's row of the key, as merged so far
    let versions: HashMap<String, (i64, i64)> = tx
        .prepare_cached("SELECT member, seq, at FROM member_rows WHERE key = ?1")
        .and_then(|mut s| s.query_map([key], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?.collect())
        .map_err(e)?;
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    for (f, srcs) in base.fields.iter().zip(sources) {
        let found: Vec<(&Source, &rusqlite::types::Value)> = srcs
            .iter()
            .filter_map(|s| rows[s.member].as_ref().and_then(|r| r.get(&s.column)).map(|v| (s, v)))
            .filter(|(_, v)| text_of(v).is_some_and(|t| !t.trim().is_empty()))
            .collect();
        // until a member's own log is merged, its version is not known: no provenance yet
        let chosen = found.first().map(|(s, v)| (member_name(&base.members[s.member]), *v));
        values.push(chosen.as_ref().map_or(rusqlite::types::Value::Null, |(_, v)| (*v).clone()));
        match chosen.as_ref().and_then(|(m, _)| versions.get(m).map(|ver| (m, ver))) {
            Some((m, (seq, at))) => run(
                "INSERT OR REPLACE INTO provenance (key, field, member, seq, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                &[&key, &f.name, m, seq, at],
            )?,
            None => run("DELETE FROM provenance WHERE key = ?1 AND field = ?2", &[&key, &f.name])?,
        };
        // every pair of sources that disagree
        for (i, (a, av)) in found.iter().enumerate() {
            for (b, bv) in &found[i + 1..] {
                let (at, bt) = (text_of(av).unwrap_or_default(), text_of(bv).unwrap_or_default());
                if at.trim() != bt.trim() {
                    let (am, bm) = (member_name(&base.members[a.member]), member_name(&base.members[b.member]));
                    run(
                        "INSERT OR REPLACE INTO conflicts (key, field, a, a_value, b, b_value, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        &[&key, &f.name, &am, &at, &bm, &bt, &now],
                    )?;
                }
            }
        }
    }
    let cols: Vec<String> = base.fields.iter().map(|f| quote(&f.name)).collect();
    let marks: Vec<String> = (2..=cols.len() + 1).map(|i| format!("?{i}")).collect();
    let sql = format!("INSERT OR REPLACE INTO base (key, {}) VALUES (?1, {})", cols.join(", "), marks.join(", "));
    let mut all: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Text(key.to_owned())];
    all.extend(values);
    tx.prepare_cached(&sql).and_then(|mut s| s.execute(rusqlite::params_from_iter(all))).map_err(e)?;
    Ok(())
}

/// Merges every base until their logs are read, in passes; for `gdx-hub run`.
pub fn merge_all(hub_dir: &Path, vaults: &Vaults, config: &BasesConfig, now: i64) -> Result<usize, String> {
    let mut total = 0;
    for b in &config.bases {
        loop {
            let m = merge_once(hub_dir, vaults, b, now)?;
            total += m.entries;
            if m.entries == 0 {
                break;
            }
        }
    }
    Ok(total)
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
    let conn = open(hub_dir, base)?;
    let cols: Vec<String> = base.fields.iter().map(|f| quote(&f.name)).collect();
    let row: Option<Vec<rusqlite::types::Value>> = conn
        .query_row(&format!("SELECT {} FROM base WHERE key = ?1", cols.join(", ")), [key], |r| {
            (0..cols.len()).map(|i| r.get(i)).collect()
        })
        .optional()
        .map_err(|e| e.to_string())?;
    let Some(row) = row else { return Ok(None) };
    base.fields
        .iter()
        .zip(row)
        .map(|(f, v)| {
            let prov: Option<(String, i64, i64)> = conn
                .query_row(
                    "SELECT member, seq, at FROM provenance WHERE key = ?1 AND field = ?2",
                    [key, &f.name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(|e| e.to_string())?;
            let stale = prov.as_ref().is_some_and(|(m, _, _)| revoked(m));
            Ok(FieldValue {
                field: f.name.clone(),
                value: text_of(&v),
                from: prov.as_ref().map(|p| p.0.clone()),
                changeset: prov.as_ref().map(|p| p.1),
                at: prov.as_ref().map(|p| p.2),
                stale,
            })
        })
        .collect::<Result<_, String>>()
        .map(Some)
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
}

pub fn summary(hub_dir: &Path, base: &BaseConfig) -> Result<Summary, String> {
    let conn = open(hub_dir, base)?;
    let e = |e: rusqlite::Error| e.to_string();
    let records: i64 = conn.query_row("SELECT count(*) FROM base", [], |r| r.get(0)).map_err(e)?;
    let members = base
        .members
        .iter()
        .map(|m| {
            let name = member_name(m);
            conn.query_row("SELECT count(*), max(at) FROM member_rows WHERE member = ?1", [&name], |r| {
                Ok((name.clone(), r.get(0)?, r.get(1)?))
            })
            .map_err(e)
        })
        .collect::<Result<_, _>>()?;
    let coverage = base
        .fields
        .iter()
        .map(|f| {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM base WHERE {} IS NOT NULL", quote(&f.name)), [], |r| r.get(0))
                .map_err(e)?;
            Ok((f.name.clone(), if records == 0 { 0.0 } else { n as f64 / records as f64 }))
        })
        .collect::<Result<_, String>>()?;
    let conflicts: i64 = conn.query_row("SELECT count(*) FROM conflicts", [], |r| r.get(0)).map_err(e)?;
    Ok(Summary {
        name: base.name.clone(),
        title: base.title.clone(),
        key: base.key.to_string(),
        records,
        members,
        coverage,
        conflicts,
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
    let conn = open(hub_dir, base)?;
    let mut stmt = conn
        .prepare("SELECT key, field, a, a_value, b, b_value FROM conflicts ORDER BY a, b, key, field LIMIT ?1")
        .map_err(|e| e.to_string())?;
    stmt.query_map([limit as i64], |r| {
        Ok(Conflict {
            key: r.get(0)?,
            field: r.get(1)?,
            a: r.get(2)?,
            a_value: r.get(3)?,
            b: r.get(4)?,
            b_value: r.get(5)?,
        })
    })
    .and_then(|rows| rows.collect())
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
            (GOOD.replace("name = \"姓名\"", "name = \"key\""), "a plain name other than key"),
            (GOOD.replace("公民身份号码\"", "身份证\""), "unknown variant `身份证`, expected one of"),
            (format!("{GOOD}{GOOD}"), "two bases are named renkou"),
        ];
        for (text, want) in cases {
            let err = load(&text).unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
    }
}
