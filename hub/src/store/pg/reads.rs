//! What the hub reads of a department's resources in its schema, as
//! `crate::store::vault::reads` reads a vault file (for the base merge,
//! enterprise profiles and 双随机 checks, the items library), each under the
//! department's role.

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
        index: bool,
        limit: Option<usize>,
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
            if index {
                // named by a digest: a table's name and its column may be long
                let digest = gdx_certs::pki::sha256(format!("{resource}\u{1f}{key}").as_bytes());
                let name = format!("_gdx_idx_{}", gdx_common::token::hex(&digest[..12]));
                tx.batch_execute(&format!("CREATE INDEX IF NOT EXISTS {name} ON {s}.{table} ({column})"))
                    .map_err(pg)?;
            }
            // compared in the key column's own type, so that its index is used
            let limit = crate::store::vault::limited(limit);
            let rows = match kept.as_str() {
                "bigint" => {
                    let numbers: Vec<i64> = keys.iter().filter_map(|k| k.parse().ok()).collect();
                    tx.query_typed(
                        &format!("SELECT * FROM {s}.{table} WHERE {column} = ANY($1){limit}"),
                        &[(&numbers, Type::INT8_ARRAY)],
                    )
                }
                "double precision" => {
                    let numbers: Vec<f64> = keys.iter().filter_map(|k| k.parse().ok()).collect();
                    tx.query_typed(
                        &format!("SELECT * FROM {s}.{table} WHERE {column} = ANY($1){limit}"),
                        &[(&numbers, Type::FLOAT8_ARRAY)],
                    )
                }
                "text" => tx.query_typed(
                    &format!("SELECT * FROM {s}.{table} WHERE {column} = ANY($1){limit}"),
                    &[(&keys, Type::TEXT_ARRAY)],
                ),
                "bytea" => tx.query_typed(
                    &format!("SELECT * FROM {s}.{table} WHERE encode({column}, 'hex') = ANY($1){limit}"),
                    &[(&keys, Type::TEXT_ARRAY)],
                ),
                // anything else by its text
                _ => tx.query_typed(
                    &format!("SELECT * FROM {s}.{table} WHERE {column}::text = ANY($1){limit}"),
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

impl PgVaults {
    /// The resources of `node`'s schema with their columns (JSON), by name.
    pub fn resources_of(&self, node: &NodeId) -> Result<Vec<(String, String)>, VaultError> {
        let Some(names) = self.known(node)? else { return Ok(Vec::new()) };
        self.as_department(&names, |tx, s| {
            let rows = tx
                .query(&format!("SELECT resource, columns FROM {s}._gdx_resources ORDER BY resource"), &[])
                .map_err(|e| self.error(e))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// `columns` of every row of `resource` in `node`'s schema, ordered by the first.
    pub fn all_rows(&self, node: &NodeId, resource: &str, columns: &[&str]) -> Result<Vec<Vec<Value>>, VaultError> {
        let Some(names) = self.known(node)? else { return Ok(Vec::new()) };
        let list: Vec<String> = columns.iter().map(|c| ident(c)).collect::<Result<_, _>>()?;
        let table = ident(resource)?;
        self.as_department(&names, |tx, s| {
            let pg = |e| self.error(e);
            let order = list.first().map_or("1", String::as_str);
            let rows =
                tx.query(&format!("SELECT {} FROM {s}.{table} ORDER BY {order}", list.join(", ")), &[]).map_err(pg)?;
            rows.iter()
                .map(|r| (0..r.len()).map(|i| r.try_get::<_, Value>(i)).collect::<Result<Vec<_>, _>>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(pg)
        })
    }
}
