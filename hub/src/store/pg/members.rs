//! The base merge's reads of a member resource in its department's schema
//! (as `crate::store::vault::Vaults::base_log` and its neighbours read a
//! vault file), each under the department's role.

use gdx_common::NodeId;
use postgres::types::Type;

use super::{PgVaults, ident};
use crate::store::db::Value;
use crate::store::vault::{KeyRows, LogEntry, VaultError};

impl PgVaults {
    /// Up to `limit` entries of `resource`'s log in `node`'s schema after `after`, oldest first.
    pub fn base_log(&self, node: &NodeId, resource: &str, after: i64, limit: i64) -> Result<Vec<LogEntry>, VaultError> {
        let Some(names) = self.known(node)? else { return Ok(Vec::new()) };
        self.as_department(&names, |tx, s| {
            // a vault made by an earlier version has its log from the first member changeset
            let log = tx.query_one("SELECT to_regclass($1)::text", &[&format!("{s}._gdx_base_log")]);
            if log.map_err(|e| self.error(e))?.get::<_, Option<String>>(0).is_none() {
                return Ok(Vec::new());
            }
            let rows = tx
                .query(
                    &format!(
                        "SELECT id, seq, at, key FROM {s}._gdx_base_log WHERE resource = $1 AND id > $2 ORDER BY id LIMIT $3"
                    ),
                    &[&resource, &after, &limit],
                )
                .map_err(|e| self.error(e))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
        })
    }

    /// Forgets `resource`'s log in `node`'s schema up to `upto`.
    pub fn trim_base_log(&self, node: &NodeId, resource: &str, upto: i64) -> Result<(), VaultError> {
        let Some(names) = self.known(node)? else { return Ok(()) };
        self.as_department(&names, |tx, s| {
            tx.execute(&format!("DELETE FROM {s}._gdx_base_log WHERE resource = $1 AND id <= $2"), &[&resource, &upto])
                .map_err(|e| self.error(e))?;
            Ok(())
        })
    }

    /// The rows of `resource` in `node`'s schema whose column `key` holds one
    /// of `keys` (as their text), in one statement; None while it has no table.
    pub fn rows_of_keys(
        &self,
        node: &NodeId,
        resource: &str,
        key: &str,
        keys: &[String],
    ) -> Result<Option<KeyRows>, VaultError> {
        let Some(names) = self.known(node)? else { return Ok(None) };
        let (table, column) = (ident(resource)?, ident(key)?);
        self.as_department(&names, |tx, s| {
            let pg = |e| self.error(e);
            let kept = tx
                .query_opt(
                    "SELECT data_type FROM information_schema.columns
                     WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
                    &[&names.schema, &resource, &key],
                )
                .map_err(pg)?;
            let Some(kept) = kept.map(|r| r.get::<_, String>(0)) else { return Ok(None) };
            // compared in the key column's own type, so that its index is used
            let rows = match kept.as_str() {
                "bigint" => {
                    let numbers: Vec<i64> = keys.iter().filter_map(|k| k.parse().ok()).collect();
                    tx.query_typed(
                        &format!("SELECT * FROM {s}.{table} WHERE {column} = ANY($1)"),
                        &[(&numbers, Type::INT8_ARRAY)],
                    )
                }
                "text" => tx.query_typed(
                    &format!("SELECT * FROM {s}.{table} WHERE {column} = ANY($1)"),
                    &[(&keys, Type::TEXT_ARRAY)],
                ),
                "bytea" => tx.query_typed(
                    &format!("SELECT * FROM {s}.{table} WHERE encode({column}, 'hex') = ANY($1)"),
                    &[(&keys, Type::TEXT_ARRAY)],
                ),
                _ => tx.query_typed(
                    &format!("SELECT * FROM {s}.{table} WHERE {column}::text = ANY($1)"),
                    &[(&keys, Type::TEXT_ARRAY)],
                ),
            }
            .map_err(pg)?;
            let columns: Vec<String> = match rows.first() {
                Some(r) => r.columns().iter().map(|c| c.name().to_owned()).collect(),
                None => Vec::new(),
            };
            let rows = rows
                .iter()
                .map(|r| (0..r.len()).map(|i| r.try_get::<_, Value>(i)).collect::<Result<Vec<_>, _>>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(pg)?;
            Ok(Some((columns, rows)))
        })
    }
}
