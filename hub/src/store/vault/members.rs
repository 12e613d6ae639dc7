//! What the base merge (`crate::base`) reads of a member resource, in its
//! department's vault file or schema alike: the log of the keys its
//! changesets touched (`_gdx_base_log`, written in each changeset's own
//! transaction), trimmed once a merge has taken it, and the current rows
//! of a batch of keys.

use gdx_common::NodeId;

use super::{VaultError, Vaults};
use crate::args;
use crate::store::db::{Sql, Value};

/// One entry of a member's log: its id, the changeset and its time, and
/// the key it touched (None: all of them, a new epoch).
pub type LogEntry = (i64, i64, i64, Option<String>);

/// A member's rows of a batch of keys: its columns' names, then the rows.
pub type KeyRows = (Vec<String>, Vec<Vec<Value>>);

impl Vaults {
    /// Up to `limit` entries of `resource`'s log in `node`'s vault after `after`, oldest first.
    pub fn base_log(&self, node: &NodeId, resource: &str, after: i64, limit: i64) -> Result<Vec<LogEntry>, VaultError> {
        if let Some(pg) = self.postgres() {
            return pg.base_log(node, resource, after, limit);
        }
        let conn = self.conn(node)?;
        let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(conn.query(
            "SELECT id, seq, at, key FROM _gdx_base_log WHERE resource = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            args![resource, after, limit],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?)
    }

    /// Forgets `resource`'s log in `node`'s vault up to `upto`, which a merge has taken.
    pub fn trim_base_log(&self, node: &NodeId, resource: &str, upto: i64) -> Result<(), VaultError> {
        if let Some(pg) = self.postgres() {
            return pg.trim_base_log(node, resource, upto);
        }
        let conn = self.conn(node)?;
        let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Sql::execute(&*conn, "DELETE FROM _gdx_base_log WHERE resource = ?1 AND id <= ?2", args![resource, upto])?;
        Ok(())
    }

    /// The rows of `resource` in `node`'s vault whose column `key` holds one
    /// of `keys` (as text), in one statement; None while it has no table.
    pub fn rows_of_keys(
        &self,
        node: &NodeId,
        resource: &str,
        key: &str,
        keys: &[String],
    ) -> Result<Option<KeyRows>, VaultError> {
        if let Some(pg) = self.postgres() {
            return pg.rows_of_keys(node, resource, key, keys);
        }
        let conn = self.conn(node)?;
        let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let there: i64 = Sql::query_row(
            &*conn,
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            args![resource],
            |r| r.get(0),
        )?;
        if there == 0 {
            return Ok(None);
        }
        let (table, column) = (gdx_files::quote_ident(resource), gdx_files::quote_ident(key));
        let columns: Vec<String> =
            conn.query("SELECT name FROM pragma_table_info(?1) ORDER BY cid", args![resource], |r| r.get(0))?;
        let list = serde_json::to_string(keys)?;
        let rows = conn.query(
            &format!("SELECT * FROM {table} WHERE {column} IN (SELECT value FROM json_each(?1))"),
            args![list],
            |r| (0..r.len()).map(|i| r.get::<Value>(i)).collect::<Result<Vec<_>, _>>(),
        )?;
        Ok(Some((columns, rows)))
    }
}
