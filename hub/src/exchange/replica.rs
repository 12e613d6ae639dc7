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

use gdx_common::data::{Change, Changeset};
use gdx_common::geometry::BBox;
use gdx_common::grant;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::ExchangeError;

pub(super) const REPLICA_SQL: &str = "
-- at the consumer's hub: the columns of each grant delivered here, and its rows, for lookups
CREATE TABLE IF NOT EXISTS replica_grants (
    no       INTEGER PRIMARY KEY,
    grant_id TEXT NOT NULL UNIQUE,
    columns  TEXT NOT NULL
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

/// The stored row (a JSON array) as the JSON object a lookup answers: the
/// values under `columns` (a JSON array of names); a row shorter than the
/// columns (kept before a column was added) has nulls for the rest.
fn object(columns: &[String], row: &str) -> serde_json::Map<String, serde_json::Value> {
    let values: Vec<serde_json::Value> = serde_json::from_str(row).unwrap_or_default();
    columns.iter().enumerate().map(|(i, c)| (c.clone(), values.get(i).cloned().unwrap_or_default())).collect()
}

fn names(columns: &str) -> Vec<String> {
    serde_json::from_str(columns).unwrap_or_default()
}

/// The number and columns of `grant`'s copy, if any is kept here.
fn grant_of(conn: &Connection, grant: &str) -> rusqlite::Result<Option<(i64, Vec<String>)>> {
    conn.prepare_cached("SELECT no, columns FROM replica_grants WHERE grant_id = ?1")?
        .query_row([grant], |r| Ok((r.get::<_, i64>(0)?, names(&r.get::<_, String>(1)?))))
        .optional()
}

/// The number of `grant`'s copy, its columns now `columns`: made at the
/// first delivery; when the delivered columns changed, the rows kept are
/// rewritten in the new order (a schema change, rare).
fn number(tx: &Transaction<'_>, grant: &str, columns: &[String]) -> rusqlite::Result<i64> {
    let wanted = serde_json::Value::from(columns.to_vec()).to_string();
    let Some((no, old)) = grant_of(tx, grant)? else {
        tx.execute("INSERT INTO replica_grants (grant_id, columns) VALUES (?1, ?2)", params![grant, wanted])?;
        return Ok(tx.last_insert_rowid());
    };
    if old == columns {
        return Ok(no);
    }
    let rows: Vec<(String, String)> = tx
        .prepare("SELECT key, row FROM replica_rows WHERE no = ?1")?
        .query_map([no], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = tx.prepare("UPDATE replica_rows SET row = ?3 WHERE no = ?1 AND key = ?2")?;
    for (key, row) in rows {
        let was = object(&old, &row);
        let now: Vec<serde_json::Value> = columns.iter().map(|c| was.get(c).cloned().unwrap_or_default()).collect();
        update.execute(params![no, key, serde_json::Value::from(now).to_string()])?;
    }
    tx.execute("UPDATE replica_grants SET columns = ?2 WHERE no = ?1", params![no, wanted])?;
    Ok(no)
}

/// Applies a delivered changeset to `grant`'s copy (`replace`: a whole
/// copy, the rows kept before go).
pub(super) fn apply(tx: &Transaction<'_>, grant: &str, replace: bool, cs: &Changeset) -> Result<(), ExchangeError> {
    let columns: Vec<String> = cs.columns.iter().map(|c| c.name.clone()).collect();
    let no = number(tx, grant, &columns)?;
    if replace {
        tx.execute("DELETE FROM replica_rows WHERE no = ?1", [no])?;
        tx.execute("DELETE FROM replica_box WHERE grant_id = ?1", [grant])?;
    }
    let mut upsert = tx.prepare_cached("INSERT OR REPLACE INTO replica_rows (no, key, row) VALUES (?1, ?2, ?3)")?;
    let mut delete = tx.prepare_cached("DELETE FROM replica_rows WHERE no = ?1 AND key = ?2")?;
    let mut boxed = tx.prepare_cached(
        "INSERT OR REPLACE INTO replica_box (grant_id, key, west, south, east, north) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut unboxed = tx.prepare_cached("DELETE FROM replica_box WHERE grant_id = ?1 AND key = ?2")?;
    // a spatial base's geometry travels with its box (FIELD__bbox), which box queries use
    let bbox_at = cs.columns.iter().position(|c| c.name.ends_with(BBOX_SUFFIX));
    for c in &cs.changes {
        let key = grant::key_text(&cs.key_of(c));
        unboxed.execute(params![grant, key])?;
        match c {
            Change::Upsert(row) => {
                let values: Vec<serde_json::Value> = row.iter().map(grant::value_json).collect();
                upsert.execute(params![no, key, serde_json::Value::from(values).to_string()])?;
                let b = bbox_at.and_then(|i| match row.get(i) {
                    Some(gdx_common::data::Value::Text(t)) => BBox::parse(t).ok(),
                    _ => None,
                });
                if let Some(b) = b {
                    boxed.execute(params![grant, key, b.west, b.south, b.east, b.north])?;
                }
            }
            Change::Delete(_) => {
                delete.execute(params![no, key])?;
            }
        }
    }
    Ok(())
}

/// The row of `grant`'s copy under `key`, as a JSON object.
pub(super) fn row(conn: &Connection, grant: &str, key: &str) -> rusqlite::Result<Option<String>> {
    let found: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT g.columns, p.row FROM replica_grants g JOIN replica_rows p ON p.no = g.no
             WHERE g.grant_id = ?1 AND p.key = ?2",
        )?
        .query_row(params![grant, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(found.map(|(columns, row)| serde_json::Value::Object(object(&names(&columns), &row)).to_string()))
}

/// Up to `limit` rows of `grant`'s copy whose geometry's box meets `b`, in key order, as JSON objects.
pub(super) fn rows_in_box(conn: &Connection, grant: &str, b: &BBox, limit: i64) -> rusqlite::Result<Vec<String>> {
    let Some((no, columns)) = grant_of(conn, grant)? else { return Ok(Vec::new()) };
    let rows: Vec<String> = conn
        .prepare_cached(
            "SELECT p.row FROM replica_box b JOIN replica_rows p ON p.no = ?1 AND p.key = b.key
             WHERE b.grant_id = ?2 AND b.west <= ?5 AND b.east >= ?3 AND b.south <= ?6 AND b.north >= ?4
             ORDER BY b.key LIMIT ?7",
        )?
        .query_map(params![no, grant, b.west, b.south, b.east, b.north, limit], |x| x.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows.iter().map(|r| serde_json::Value::Object(object(&columns, r)).to_string()).collect())
}

/// True when `grant`'s copy kept here holds any geometry's box.
pub(super) fn spatial(conn: &Connection, grant: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM replica_box WHERE grant_id = ?1 LIMIT 1", [grant], |_| Ok(()))
        .optional()?
        .is_some())
}

/// True when `grant`'s copy kept here holds rows, and they travel under a
/// pseudonym of their key.
pub(super) fn pseudonymised(conn: &Connection, grant: &str) -> rusqlite::Result<bool> {
    let columns: Option<String> = conn
        .query_row(
            "SELECT g.columns FROM replica_grants g
             WHERE g.grant_id = ?1 AND EXISTS (SELECT 1 FROM replica_rows p WHERE p.no = g.no)",
            [grant],
            |r| r.get(0),
        )
        .optional()?;
    Ok(columns.is_some_and(|c| names(&c).iter().any(|n| n == grant::PSEUDONYM_COLUMN)))
}

/// Up to `limit` rows of `grant`'s copy whose `column` is `value`, as JSON objects.
pub(super) fn rows_where(
    conn: &Connection,
    grant: &str,
    column: &str,
    value: &str,
    limit: usize,
) -> rusqlite::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let Some((no, columns)) = grant_of(conn, grant)? else { return Ok(Vec::new()) };
    let Some(at) = columns.iter().position(|c| c == column) else { return Ok(Vec::new()) };
    let rows: Vec<String> = conn
        .prepare_cached("SELECT row FROM replica_rows WHERE no = ?1 AND json_extract(row, ?2) = ?3 LIMIT ?4")?
        .query_map(params![no, format!("$[{at}]"), value, limit as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows.iter().map(|r| object(&columns, r)).collect())
}

/// Converts a copy kept in the layout before this one (`replica`: each row
/// a JSON object under the grant's id), in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut conn = store();
        let tx = conn.transaction().unwrap_or_else(|e| panic!("{e}"));
        let no = number(&tx, "G1", &["编号".into(), "姓名".into()]).unwrap_or_else(|e| panic!("{e}"));
        tx.execute("INSERT INTO replica_rows VALUES (?1, 'a', '[\"a\",\"甲\"]')", [no])
            .unwrap_or_else(|e| panic!("{e}"));
        let again = number(&tx, "G1", &["姓名".into(), "住址".into(), "编号".into()]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(no, again);
        tx.commit().unwrap_or_else(|e| panic!("{e}"));
        let stored: String = conn
            .query_row("SELECT row FROM replica_rows WHERE key = 'a'", [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored, r#"["甲",null,"a"]"#);
        assert_eq!(
            row(&conn, "G1", "a").unwrap_or_else(|e| panic!("{e}")).as_deref(),
            Some(r#"{"住址":null,"姓名":"甲","编号":"a"}"#)
        );
    }
}
