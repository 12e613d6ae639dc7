//! The lookup copy a consumer's hub keeps of each grant delivered to a
//! department attached to it: each grant's delivered columns once
//! (`replica_grants`, under a small number), each row as a JSON array of
//! its values in that order (`replica_rows`), and each geometry's bounding
//! box (`replica_box`) for box queries. A lookup answers a row as the JSON
//! object of the delivered columns, rebuilt from the two.
//!
//! Stores made before this layout kept each row as a JSON object with the
//! column names, under the grant's id (`replica`), which took 2.2 times the
//! granted columns' size; [`migrate`] converts them when the store opens,
//! in one transaction (a kill during it leaves the old table whole, and
//! the next open converts again).

use crate::args;
use crate::store::db::{DbError, Sql, Tx};
use gdx_common::data::{Change, Changeset, Value};
use gdx_common::geometry::BBox;
use gdx_common::grant;

use super::ExchangeError;

pub(super) const REPLICA_SQL: &str = "
-- at the consumer's hub: the columns of each grant delivered here, and its rows, for lookups
CREATE TABLE IF NOT EXISTS replica_grants (
    no       INTEGER PRIMARY KEY,
    grant_id TEXT NOT NULL UNIQUE,
    columns  TEXT NOT NULL,
    key      TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS replica_rows (
    no  INTEGER NOT NULL,
    key TEXT NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (no, key)
) WITHOUT ROWID;
-- and the bounding box of each delivered geometry, for box queries
CREATE TABLE IF NOT EXISTS replica_box (
    grant_id TEXT NOT NULL,
    key      TEXT NOT NULL,
    west REAL NOT NULL, south REAL NOT NULL, east REAL NOT NULL, north REAL NOT NULL,
    PRIMARY KEY (grant_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replica_box_west ON replica_box (grant_id, west);";

/// The suffix of the column carrying a geometry's bounding box.
const BBOX_SUFFIX: &str = "__bbox";

/// How `grant`'s rows are kept: its number, its columns, and the positions
/// of its key columns.
struct Layout {
    no: i64,
    columns: Vec<String>,
    key: Vec<usize>,
}

/// The stored row (a JSON array) under `key` as the JSON object a lookup
/// answers: the values under the columns' names. At a key column, `true` or
/// `false` stands for that part of the row's key (kept once, as the row's
/// key), as a number or as text. A row shorter than the columns (kept
/// before a column was added) has nulls for the rest.
fn object(l: &Layout, key: &str, row: &str) -> serde_json::Map<String, serde_json::Value> {
    let values: Vec<serde_json::Value> = serde_json::from_str(row).unwrap_or_default();
    let parts: Vec<&str> = key.split(KEY_SEPARATOR).collect();
    let part = |i: usize| l.key.iter().position(|&p| p == i).and_then(|j| parts.get(j)).copied().unwrap_or_default();
    let value = |i: usize| match values.get(i) {
        Some(serde_json::Value::Bool(true)) => part(i).parse::<i64>().map_or_else(|_| part(i).into(), Into::into),
        Some(serde_json::Value::Bool(false)) => part(i).into(),
        Some(v) => v.clone(),
        None => serde_json::Value::Null,
    };
    l.columns.iter().enumerate().map(|(i, c)| (c.clone(), value(i))).collect()
}

/// What joins the parts of a composite key ([`grant::key_text`]).
const KEY_SEPARATOR: char = '\u{1f}';

fn json<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

/// How `grant`'s copy is kept, if any is kept here.
fn layout(conn: &impl Sql, grant: &str) -> Result<Option<Layout>, DbError> {
    conn.query_opt("SELECT no, columns, key FROM replica_grants WHERE grant_id = ?1", args![grant], |r| {
        Ok(Layout { no: r.get(0)?, columns: json(&r.get::<String>(1)?), key: json(&r.get::<String>(2)?) })
    })
}

/// The number of `grant`'s copy, its columns and key now `columns` and
/// `key`: made at the first delivery; when they changed, the rows kept are
/// rewritten in full in the new order (a schema change, rare).
fn number(tx: &Tx<'_>, grant: &str, columns: &[String], key: &[usize]) -> Result<i64, DbError> {
    let (wanted, wanted_key) =
        (serde_json::Value::from(columns.to_vec()).to_string(), serde_json::Value::from(key.to_vec()).to_string());
    let Some(old) = layout(tx, grant)? else {
        return tx.query_row(
            "INSERT INTO replica_grants (grant_id, columns, key) VALUES (?1, ?2, ?3) RETURNING no",
            args![grant, wanted, wanted_key],
            |r| r.get(0),
        );
    };
    if old.columns == columns && old.key == key {
        return Ok(old.no);
    }
    let rows: Vec<(String, String)> =
        tx.query("SELECT key, row FROM replica_rows WHERE no = ?1", args![old.no], |r| Ok((r.get(0)?, r.get(1)?)))?;
    for (k, row) in rows {
        let was = object(&old, &k, &row);
        let now: Vec<serde_json::Value> = columns.iter().map(|c| was.get(c).cloned().unwrap_or_default()).collect();
        tx.execute(
            "UPDATE replica_rows SET row = ?3 WHERE no = ?1 AND key = ?2",
            args![old.no, k, serde_json::Value::from(now).to_string()],
        )?;
    }
    tx.execute("UPDATE replica_grants SET columns = ?2, key = ?3 WHERE no = ?1", args![old.no, wanted, wanted_key])?;
    Ok(old.no)
}

/// Applies a delivered changeset to `grant`'s copy (`replace`: a whole
/// copy, the rows kept before go).
pub(super) fn apply(tx: &Tx<'_>, grant: &str, replace: bool, cs: &Changeset) -> Result<(), ExchangeError> {
    if replace {
        // before the layout is looked at: rows about to go are not rewritten
        tx.execute(
            "DELETE FROM replica_rows WHERE no = (SELECT no FROM replica_grants WHERE grant_id = ?1)",
            args![grant],
        )?;
        tx.execute("DELETE FROM replica_box WHERE grant_id = ?1", args![grant])?;
    }
    let columns: Vec<String> = cs.columns.iter().map(|c| c.name.clone()).collect();
    let no = number(tx, grant, &columns, &cs.key)?;
    // a spatial base's geometry travels with its box (FIELD__bbox), which box queries use
    let bbox_at = cs.columns.iter().position(|c| c.name.ends_with(BBOX_SUFFIX));
    // a grant without geometry has no boxes to take away (one look per delivery, not one per row)
    let may_have_boxes = bbox_at.is_some()
        || tx.query_opt("SELECT 1 FROM replica_box WHERE grant_id = ?1 LIMIT 1", args![grant], |_| Ok(()))?.is_some();
    for c in &cs.changes {
        let key = grant::key_text(&cs.key_of(c));
        if may_have_boxes {
            tx.execute("DELETE FROM replica_box WHERE grant_id = ?1 AND key = ?2", args![grant, key])?;
        }
        match c {
            Change::Upsert(row) => {
                let mut values: Vec<serde_json::Value> = row.iter().map(grant::value_json).collect();
                // the key's values are kept once, as the row's key: a marker stands in for each
                // (unless a part holds the separator, and so could not be told apart)
                if key.split(KEY_SEPARATOR).count() == cs.key.len() {
                    for &p in &cs.key {
                        match row.get(p) {
                            Some(Value::Integer(_)) => values[p] = true.into(),
                            Some(Value::Text(_) | Value::Blob(_)) => values[p] = false.into(),
                            _ => {}
                        }
                    }
                }
                tx.execute(
                    "INSERT INTO replica_rows (no, key, row) VALUES (?1, ?2, ?3)
                     ON CONFLICT (no, key) DO UPDATE SET row = excluded.row",
                    args![no, key, serde_json::Value::from(values).to_string()],
                )?;
                let b = bbox_at.and_then(|i| match row.get(i) {
                    Some(Value::Text(t)) => BBox::parse(t).ok(),
                    _ => None,
                });
                if let Some(b) = b {
                    tx.execute(
                        "INSERT INTO replica_box (grant_id, key, west, south, east, north) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (grant_id, key) DO UPDATE SET west = excluded.west, south = excluded.south,
                            east = excluded.east, north = excluded.north",
                        args![grant, key, b.west, b.south, b.east, b.north],
                    )?;
                }
            }
            Change::Delete(_) => {
                tx.execute("DELETE FROM replica_rows WHERE no = ?1 AND key = ?2", args![no, key])?;
            }
        }
    }
    Ok(())
}

/// The row of `grant`'s copy under `key`, as a JSON object.
pub(super) fn row(conn: &impl Sql, grant: &str, key: &str) -> Result<Option<String>, DbError> {
    let Some(l) = layout(conn, grant)? else { return Ok(None) };
    let row: Option<String> =
        conn.query_opt("SELECT row FROM replica_rows WHERE no = ?1 AND key = ?2", args![l.no, key], |r| r.get(0))?;
    Ok(row.map(|row| serde_json::Value::Object(object(&l, key, &row)).to_string()))
}

/// Up to `limit` rows of `grant`'s copy whose geometry's box meets `b`, in key order, as JSON objects.
pub(super) fn rows_in_box(conn: &impl Sql, grant: &str, b: &BBox, limit: i64) -> Result<Vec<String>, DbError> {
    let Some(l) = layout(conn, grant)? else { return Ok(Vec::new()) };
    let rows: Vec<(String, String)> = conn.query(
        "SELECT p.key, p.row FROM replica_box b JOIN replica_rows p ON p.no = ?1 AND p.key = b.key
         WHERE b.grant_id = ?2 AND b.west <= ?5 AND b.east >= ?3 AND b.south <= ?6 AND b.north >= ?4
         ORDER BY b.key LIMIT ?7",
        args![l.no, grant, b.west, b.south, b.east, b.north, limit],
        |x| Ok((x.get(0)?, x.get(1)?)),
    )?;
    Ok(rows.iter().map(|(k, r)| serde_json::Value::Object(object(&l, k, r)).to_string()).collect())
}

/// True when `grant`'s copy kept here holds any geometry's box.
pub(super) fn spatial(conn: &impl Sql, grant: &str) -> Result<bool, DbError> {
    Ok(conn.query_opt("SELECT 1 FROM replica_box WHERE grant_id = ?1 LIMIT 1", args![grant], |_| Ok(()))?.is_some())
}

/// True when `grant`'s copy kept here holds rows, and they travel under a
/// pseudonym of their key.
pub(super) fn pseudonymised(conn: &impl Sql, grant: &str) -> Result<bool, DbError> {
    let columns: Option<String> = conn.query_opt(
        "SELECT g.columns FROM replica_grants g
         WHERE g.grant_id = ?1 AND EXISTS (SELECT 1 FROM replica_rows p WHERE p.no = g.no)",
        args![grant],
        |r| r.get(0),
    )?;
    Ok(columns.is_some_and(|c| json::<Vec<String>>(&c).iter().any(|n| n == grant::PSEUDONYM_COLUMN)))
}

/// Up to `limit` rows of `grant`'s copy whose `column` is `value`, as JSON objects.
pub(super) fn rows_where(
    conn: &impl Sql,
    grant: &str,
    column: &str,
    value: &str,
    limit: usize,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, DbError> {
    let Some(l) = layout(conn, grant)? else { return Ok(Vec::new()) };
    let Some(at) = l.columns.iter().position(|c| c == column) else { return Ok(Vec::new()) };
    let pair = |r: &crate::store::db::Row| Ok((r.get::<String>(0)?, r.get::<String>(1)?));
    let rows: Vec<(String, String)> = if l.key == [at] {
        // the whole key: the row under it
        conn.query("SELECT key, row FROM replica_rows WHERE no = ?1 AND key = ?2", args![l.no, value], pair)?
    } else if l.key.contains(&at) {
        // a part of a composite key, kept only in the key: the rows looked at until enough match (rare)
        let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        let all = conn.query("SELECT key, row FROM replica_rows WHERE no = ?1", args![l.no], pair)?;
        all.into_iter()
            .filter(|(k, r)| object(&l, k, r).get(column).is_some_and(|v| text(v) == value))
            .take(limit)
            .collect()
    } else if conn.postgres() {
        conn.query(
            "SELECT key, row FROM replica_rows WHERE no = ?1 AND (row::jsonb ->> CAST(?2 AS INTEGER)) = ?3 LIMIT ?4",
            args![l.no, at as i64, value, limit as i64],
            pair,
        )?
    } else {
        conn.query(
            "SELECT key, row FROM replica_rows WHERE no = ?1 AND json_extract(row, ?2) = ?3 LIMIT ?4",
            args![l.no, format!("$[{at}]"), value, limit as i64],
            pair,
        )?
    };
    Ok(rows.iter().map(|(k, r)| object(&l, k, r)).collect())
}

pub(super) use legacy::migrate;

/// The layout before this one, read with SQLite's own calls (no store
/// made since has it).
mod legacy {
    use rusqlite::{Connection, params};

    /// Converts a copy kept in the layout before this one (`replica`: each row
    /// a JSON object under the grant's id), in one transaction.
    pub(in crate::exchange) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
        // a store made between the two steps of this layout lacks the key positions (none held then)
        let has_key: i64 =
            conn.query_row("SELECT count(*) FROM pragma_table_info('replica_grants') WHERE name = 'key'", [], |r| {
                r.get(0)
            })?;
        if has_key == 0 {
            conn.execute("ALTER TABLE replica_grants ADD COLUMN key TEXT NOT NULL DEFAULT '[]'", [])?;
        }
        const OLD: &str = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'replica'";
        if conn.query_row(OLD, [], |r| r.get::<_, i64>(0))? == 0 {
            return Ok(());
        }
        // looked for again inside the transaction: two processes opening the store at once convert it once
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if tx.query_row(OLD, [], |r| r.get::<_, i64>(0))? == 0 {
            return Ok(());
        }
        {
            let mut grants: std::collections::HashMap<String, (i64, Vec<String>)> = std::collections::HashMap::new();
            let mut read = tx.prepare("SELECT grant_id, key, row FROM replica")?;
            let mut rows = read.query([])?;
            let mut insert = tx.prepare("INSERT OR REPLACE INTO replica_rows (no, key, row) VALUES (?1, ?2, ?3)")?;
            while let Some(r) = rows.next()? {
                let (grant, key, row): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row).unwrap_or_default();
                if !grants.contains_key(&grant) {
                    tx.execute("INSERT OR IGNORE INTO replica_grants (grant_id, columns) VALUES (?1, '[]')", [&grant])?;
                    let no: i64 =
                        tx.query_row("SELECT no FROM replica_grants WHERE grant_id = ?1", [&grant], |r| r.get(0))?;
                    grants.insert(grant.clone(), (no, Vec::new()));
                }
                let Some((no, columns)) = grants.get_mut(&grant) else { continue };
                // a row with a column the ones before lacked (added later): it goes at the end
                for name in object.keys() {
                    if !columns.contains(name) {
                        columns.push(name.clone());
                    }
                }
                let values: Vec<serde_json::Value> =
                    columns.iter().map(|c| object.get(c).cloned().unwrap_or_default()).collect();
                insert.execute(params![*no, key, serde_json::Value::from(values).to_string()])?;
            }
            for (no, columns) in grants.values() {
                tx.execute(
                    "UPDATE replica_grants SET columns = ?2 WHERE no = ?1",
                    params![no, serde_json::Value::from(columns.clone()).to_string()],
                )?;
            }
        }
        tx.execute("DROP TABLE replica", [])?;
        tx.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn store() -> Connection {
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(REPLICA_SQL).unwrap_or_else(|e| panic!("{e}"));
        conn
    }

    #[test]
    fn an_old_copy_is_converted_and_answers_as_before() {
        let mut conn = store();
        conn.execute_batch(
            r#"CREATE TABLE replica (grant_id TEXT NOT NULL, key TEXT NOT NULL, row TEXT NOT NULL, PRIMARY KEY (grant_id, key)) WITHOUT ROWID;
               INSERT INTO replica VALUES ('G1', 'a', '{"姓名":"甲","编号":"a"}');
               INSERT INTO replica VALUES ('G1', 'b', '{"住址":"西宁","姓名":"乙","编号":"b"}');
               INSERT INTO replica VALUES ('G2', 'x', '{"编号":"x","数量":3}');"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        migrate(&mut conn).unwrap_or_else(|e| panic!("{e}"));
        // again: nothing left to convert
        migrate(&mut conn).unwrap_or_else(|e| panic!("{e}"));
        let get = |g: &str, k: &str| row(&conn, g, k).unwrap_or_else(|e| panic!("{e}"));
        // the row kept before 住址 was added answers it as null
        assert_eq!(get("G1", "a").as_deref(), Some(r#"{"住址":null,"姓名":"甲","编号":"a"}"#));
        assert_eq!(get("G1", "b").as_deref(), Some(r#"{"住址":"西宁","姓名":"乙","编号":"b"}"#));
        assert_eq!(get("G2", "x").as_deref(), Some(r#"{"数量":3,"编号":"x"}"#));
        assert_eq!(get("G2", "a"), None);
        let found = rows_where(&conn, "G1", "姓名", "乙", 10).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["编号"], "b");
        let gone: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'replica'", [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(gone, 0);
    }

    #[test]
    fn new_columns_rewrite_the_rows_kept() {
        let conn = crate::store::db::Db::Sqlite(store());
        let tx = conn.begin().unwrap_or_else(|e| panic!("{e}"));
        // the key (编号) kept once, as the row's key: a marker (false: as text) in its place
        let no = number(&tx, "G1", &["编号".into(), "姓名".into()], &[0]).unwrap_or_else(|e| panic!("{e}"));
        tx.execute("INSERT INTO replica_rows VALUES (?1, 'a', '[false,\"甲\"]')", args![no])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            row(&tx, "G1", "a").unwrap_or_else(|e| panic!("{e}")).as_deref(),
            Some(r#"{"姓名":"甲","编号":"a"}"#)
        );
        let again =
            number(&tx, "G1", &["姓名".into(), "住址".into(), "编号".into()], &[2]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(no, again);
        tx.commit().unwrap_or_else(|e| panic!("{e}"));
        let stored: String = conn
            .query_row("SELECT row FROM replica_rows WHERE key = 'a'", args![], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored, r#"["甲",null,"a"]"#);
        assert_eq!(
            row(&conn, "G1", "a").unwrap_or_else(|e| panic!("{e}")).as_deref(),
            Some(r#"{"住址":null,"姓名":"甲","编号":"a"}"#)
        );
        let found = rows_where(&conn, "G1", "编号", "a", 10).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn a_composite_key_is_kept_once_and_answered_whole() {
        let conn = crate::store::db::Db::Sqlite(store());
        let tx = conn.begin().unwrap_or_else(|e| panic!("{e}"));
        // key (县, 序号), in that order, with 序号 before 县 among the columns
        let no =
            number(&tx, "G1", &["序号".into(), "县".into(), "姓名".into()], &[1, 0]).unwrap_or_else(|e| panic!("{e}"));
        tx.execute("INSERT INTO replica_rows VALUES (?1, '632522\u{1f}7', '[true,false,\"甲\"]')", args![no])
            .unwrap_or_else(|e| panic!("{e}"));
        tx.commit().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            row(&conn, "G1", "632522\u{1f}7").unwrap_or_else(|e| panic!("{e}")).as_deref(),
            Some(r#"{"县":"632522","姓名":"甲","序号":7}"#)
        );
        let found = rows_where(&conn, "G1", "县", "632522", 10).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["序号"], 7);
    }
}
