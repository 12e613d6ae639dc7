//! What the hub reads of a department's resources for the features that
//! look into vaults, in its vault file or its schema alike: for the base
//! merge (`crate::base`) the log of the keys a member's changesets touched
//! (`_gdx_base_log`, written in each changeset's own transaction), trimmed
//! once a merge has taken it, and the rows of a batch of keys; for an
//! enterprise's profile and the 双随机 checks (`crate::supervision`) the
//! rows naming a credit code; for the items library (`crate::items`) the
//! vaults, their resources and a list's rows.

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
    /// of `keys` (as text), in one statement; None while it has no table or
    /// no such column. `index`: the column is indexed first (a column
    /// looked up again and again that is not the table's key); `limit`:
    /// at most so many rows.
    pub fn rows_of_keys(
        &self,
        node: &NodeId,
        resource: &str,
        key: &str,
        keys: &[String],
        index: bool,
        limit: Option<usize>,
    ) -> Result<Option<KeyRows>, VaultError> {
        if let Some(pg) = self.postgres() {
            return pg.rows_of_keys(node, resource, key, keys, index, limit);
        }
        if !self.path(node).exists() {
            return Ok(None);
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
        if !columns.iter().any(|c| c == key) {
            return Ok(None);
        }
        if index {
            let name = gdx_files::quote_ident(&format!("_gdx_uscc_{resource}"));
            conn.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})"))?;
        }
        let list = serde_json::to_string(keys)?;
        let rows = conn.query(
            &format!("SELECT * FROM {table} WHERE {column} IN (SELECT value FROM json_each(?1)){}", limited(limit)),
            args![list],
            |r| (0..r.len()).map(|i| r.get::<Value>(i)).collect::<Result<Vec<_>, _>>(),
        )?;
        Ok(Some((columns, rows)))
    }
}

/// A resource's number and when it last changed.
pub type Head = (i64, i64);

impl Vaults {
    /// The last applied number of `resource` in `node`'s vault and when it
    /// last changed; None when it holds no such resource.
    pub fn head_of(&self, node: &NodeId, resource: &str) -> Result<Option<Head>, VaultError> {
        if let Some(pg) = self.postgres() {
            return Ok(pg.head(node, resource)?.map(|(_, last, at)| (last, at)));
        }
        let Some(conn) = self.read_only(node)? else { return Ok(None) };
        Ok(Sql::query_opt(
            &conn,
            "SELECT last_seq, updated_at FROM _gdx_resources WHERE resource = ?1",
            args![resource],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// `node`'s vault file opened read-only, for reading beside the hub
    /// (whose own connections write); None when there is none.
    fn read_only(&self, node: &NodeId) -> Result<Option<rusqlite::Connection>, VaultError> {
        let path = self.path(node);
        if !path.exists() {
            return Ok(None);
        }
        let conn = gdx_files::open_read_only(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Some(conn))
    }

    /// Every department with a vault here, by name.
    pub fn departments(&self) -> Result<Vec<NodeId>, VaultError> {
        if let Some(pg) = self.postgres() {
            return pg.nodes();
        }
        Ok(departments_in(self.dir()))
    }

    /// The resources of `node`'s vault with their columns (`_gdx_resources.columns`, JSON), by name.
    pub fn resources_of(&self, node: &NodeId) -> Result<Vec<(String, String)>, VaultError> {
        if let Some(pg) = self.postgres() {
            return pg.resources_of(node);
        }
        let Some(conn) = self.read_only(node)? else { return Ok(Vec::new()) };
        Ok(conn.query("SELECT resource, columns FROM _gdx_resources ORDER BY resource", args![], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?)
    }

    /// `columns` of every row of `resource` in `node`'s vault, ordered by the first.
    pub fn all_rows(&self, node: &NodeId, resource: &str, columns: &[&str]) -> Result<Vec<Vec<Value>>, VaultError> {
        if let Some(pg) = self.postgres() {
            return pg.all_rows(node, resource, columns);
        }
        let Some(conn) = self.read_only(node)? else { return Ok(Vec::new()) };
        let list: Vec<String> = columns.iter().map(|c| gdx_files::quote_ident(c)).collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            list.join(", "),
            gdx_files::quote_ident(resource),
            list.first().map_or("1", String::as_str)
        );
        Ok(conn.query(&sql, args![], |r| (0..r.len()).map(|i| r.get::<Value>(i)).collect())?)
    }
}

/// `LIMIT n` for a query of at most `limit` rows, on either engine.
pub(crate) fn limited(limit: Option<usize>) -> String {
    limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default()
}

/// The departments with a vault file in `dir` (`DIVISION-ORG.db`), in order.
pub fn departments_in(dir: &std::path::Path) -> Vec<NodeId> {
    let mut out: Vec<NodeId> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let (division, org) = name.strip_suffix(".db")?.split_once('-')?;
                    NodeId::parse(&format!("{division}/{org}")).ok()
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(NodeId::to_string);
    out
}
