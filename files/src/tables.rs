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
    let marks: Vec<String> = (1..=cs.columns.len()).map(|i| format!("?{i}")).collect();
    let mut upsert = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO \"{table}\" ({}) VALUES ({})",
        names.join(", "),
        marks.join(", ")
    ))?;
    let cond: Vec<String> = key_names.iter().enumerate().map(|(i, k)| format!("\"{k}\" = ?{}", i + 1)).collect();
    let mut delete = tx.prepare_cached(&format!("DELETE FROM \"{table}\" WHERE {}", cond.join(" AND ")))?;
    let mut changes: Vec<&Change> = cs.changes.iter().collect();
    changes.sort_by(|a, b| cmp_change_keys(a, b, &cs.key));
    for change in changes {
        match change {
            Change::Upsert(row) => upsert.execute(params_from_iter(row.iter().map(Sql)))?,
            Change::Delete(key) => delete.execute(params_from_iter(key.iter().map(Sql)))?,
        };
    }
    Ok(columns)
}

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
}
