//! SQLite tables that mirror a resource: created from a changeset's columns
//! and key, widened when new columns arrive, changed row by row. The hub's
//! vaults and the agent's received database both apply changesets here.

use gdx_common::data::{Change, Changeset, Column, Value, cmp_change_keys};
use rusqlite::types::ToSqlOutput;
use rusqlite::{ToSql, Transaction, params_from_iter};

/// Why a changeset could not be applied to its table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("the database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Schema(String),
}

/// Applies `cs` to `table` inside `tx`: creates the table when `known` is
/// `None` (the columns it already has otherwise), adds new columns, then
/// upserts and deletes in key order. Returns the table's columns after it.
pub fn apply(
    tx: &Transaction<'_>,
    table: &str,
    known: Option<Vec<Column>>,
    cs: &Changeset,
) -> Result<Vec<Column>, TableError> {
    let key_names: Vec<&str> = cs.key.iter().map(|&i| cs.columns[i].name.as_str()).collect();
    let mut columns = match known {
        None => {
            let defs: Vec<String> =
                cs.columns.iter().map(|c| format!("\"{}\" {}", c.name, affinity(&c.decl_type))).collect();
            let pk: Vec<String> = key_names.iter().map(|k| format!("\"{k}\"")).collect();
            tx.execute_batch(&format!(
                "CREATE TABLE \"{table}\" ({}, PRIMARY KEY ({})) WITHOUT ROWID",
                defs.join(", "),
                pk.join(", ")
            ))
            .map_err(|e| TableError::Schema(format!("cannot create table {table}: {e}")))?;
            cs.columns.clone()
        }
        Some(columns) => columns,
    };
    for c in &cs.columns {
        // SQLite names are case-insensitive
        if !columns.iter().any(|x| x.name.to_lowercase() == c.name.to_lowercase()) {
            tx.execute_batch(&format!("ALTER TABLE \"{table}\" ADD COLUMN \"{}\" {}", c.name, affinity(&c.decl_type)))
                .map_err(|e| TableError::Schema(format!("cannot add column {} to {table}: {e}", c.name)))?;
            columns.push(c.clone());
        }
    }
    let names: Vec<String> = cs.columns.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let upsert_sql = |rows: usize| {
        let n = cs.columns.len();
        let tuples: Vec<String> = (0..rows)
            .map(|r| format!("({})", (1..=n).map(|i| format!("?{}", r * n + i)).collect::<Vec<_>>().join(", ")))
            .collect();
        format!("INSERT OR REPLACE INTO \"{table}\" ({}) VALUES {}", names.join(", "), tuples.join(", "))
    };
    let mut upsert = tx.prepare_cached(&upsert_sql(1))?;
    // runs of upserts go UPSERT_ROWS to a statement (one statement's overhead for many rows)
    let per_statement = (MAX_PARAMETERS / cs.columns.len().max(1)).clamp(1, UPSERT_ROWS);
    let mut upsert_many = tx.prepare_cached(&upsert_sql(per_statement))?;
    let cond: Vec<String> = key_names.iter().enumerate().map(|(i, k)| format!("\"{k}\" = ?{}", i + 1)).collect();
    let mut delete = tx.prepare_cached(&format!("DELETE FROM \"{table}\" WHERE {}", cond.join(" AND ")))?;
    let mut changes: Vec<&Change> = cs.changes.iter().collect();
    changes.sort_by(|a, b| cmp_change_keys(a, b, &cs.key));
    let mut run: Vec<&[Value]> = Vec::with_capacity(per_statement);
    for change in changes {
        match change {
            Change::Upsert(row) => {
                run.push(row);
                if run.len() == per_statement {
                    upsert_many.execute(params_from_iter(run.iter().flat_map(|r| r.iter().map(Sql))))?;
                    run.clear();
                }
            }
            Change::Delete(key) => {
                // the upserts before it first: the changes apply in their order
                for row in run.drain(..) {
                    upsert.execute(params_from_iter(row.iter().map(Sql)))?;
                }
                delete.execute(params_from_iter(key.iter().map(Sql)))?;
            }
        }
    }
    for row in run {
        upsert.execute(params_from_iter(row.iter().map(Sql)))?;
    }
    Ok(columns)
}

/// Rows an upsert statement carries at most.
const UPSERT_ROWS: usize = 32;

/// SQLite's limit on a statement's parameters (`SQLITE_MAX_VARIABLE_NUMBER`
/// since 3.32), kept well below.
const MAX_PARAMETERS: usize = 16_000;

/// A declared type reduced to a SQLite affinity, so that nothing from the
/// source is pasted into SQL.
pub fn affinity(decl: &str) -> &'static str {
    let d = decl.to_ascii_uppercase();
    if d.contains("INT") {
        "INTEGER"
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        "TEXT"
    } else if d.contains("BLOB") {
        "BLOB"
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        "REAL"
    } else if d.is_empty() {
        ""
    } else {
        "NUMERIC"
    }
}

/// A [`Value`] bound as an SQL parameter.
pub struct Sql<'a>(pub &'a Value);

impl ToSql for Sql<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef;
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinities_never_echo_the_source() {
        assert_eq!(affinity("varchar(20)"), "TEXT");
        assert_eq!(affinity("BIGINT"), "INTEGER");
        assert_eq!(affinity("INT); DROP TABLE x; --"), "INTEGER");
        assert_eq!(affinity("DECIMAL(10,2)"), "NUMERIC");
        assert_eq!(affinity(""), "");
    }

    /// Upserts go many to a statement; a delete among them, a key upserted
    /// twice, and a remainder shorter than a statement all end as applied
    /// one by one would.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn runs_of_upserts_apply_as_one_by_one_would() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        let row = |k: i64, v: &str| Change::Upsert(vec![Value::Integer(k), Value::Text(v.into())]);
        let mut changes: Vec<Change> = (0..100).map(|k| row(k, "a")).collect();
        changes.push(Change::Delete(vec![Value::Integer(40)]));
        changes.push(row(41, "b"));
        changes.push(Change::Delete(vec![Value::Integer(99)]));
        changes.push(row(200, "c"));
        let cs = Changeset {
            origin: gdx_common::NodeId::parse("630000/gongan").unwrap(),
            resource: gdx_common::data::ResourceCode::try_from("people".to_owned()).unwrap(),
            seq: 1,
            epoch: 1,
            columns: vec![
                Column { name: "id".into(), decl_type: "INTEGER".into() },
                Column { name: "name".into(), decl_type: "TEXT".into() },
            ],
            key: vec![0],
            changes,
            created_at: 0,
        };
        let tx = conn.transaction().unwrap();
        apply(&tx, "people", None, &cs).unwrap();
        tx.commit().unwrap();
        let rows: Vec<(i64, String)> = conn
            .prepare("SELECT id, name FROM people ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut want: Vec<(i64, String)> = (0..99).filter(|&k| k != 40).map(|k| (k, "a".to_owned())).collect();
        want.iter_mut().find(|r| r.0 == 41).unwrap().1 = "b".into();
        want.push((200, "c".into()));
        assert_eq!(rows, want);
    }
}
