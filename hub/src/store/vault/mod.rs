//! Vaults: one SQLite file per providing department, holding its resources.
//!
//! `vaults/632522-gongan.db` holds one table per resource of 632522/gongan,
//! named by the resource code, keyed by the resource's key columns, plus
//! `_gdx_resources` with each resource's columns, key and last applied
//! sequence number. A changeset is applied in **one transaction** that also
//! advances the sequence number, so it is applied exactly once: a duplicate
//! is recognised by its number, a gap is refused with the number expected,
//! and a kill before the commit leaves nothing behind. Commits are made
//! durable in groups ([`super::group_sync`]): whoever acknowledges a
//! changeset first waits for [`Vaults::synced`]. The rules themselves
//! (epoch, duplicate, gap, key) are [`plan`]'s, shared with the vaults on
//! PostgreSQL ([`super::pg`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::HubPaths;
use gdx_common::NodeId;
use gdx_common::data::Changeset;
use gdx_files::tables;
use rusqlite::{Connection, OptionalExtension, params};

mod plan;
mod reads;
pub(crate) use plan::{Head, Then, changeset_event, duplicate, plan};
pub(crate) use reads::limited;
pub use reads::{KeyRows, LogEntry, departments_in};

/// Vaults kept open at once (three file descriptors each); beyond, the
/// least recently used are closed, without a checkpoint, and opened again
/// when needed.
pub const MAX_OPEN: usize = 8192;

/// Vaults whose page cache is kept; the cache of a vault not used among the
/// last `2 × HOT` vault uses is given back (`PRAGMA shrink_memory`): an
/// idle vault then costs about 100 KiB (its connection and WAL index)
/// instead of everything it once read, and pages it needs again come from
/// the kernel's file cache.
const HOT: u64 = 256;

#[derive(Default)]
struct OpenVaults {
    conns: HashMap<NodeId, OpenVault>,
    uses: u64,
}

struct OpenVault {
    conn: Arc<Mutex<Connection>>,
    used: u64,
    cooled: bool,
}

/// Page cache per open vault (negative: KiB).
const CACHE_KIB: i64 = 256 * 1024;

/// The outcome of applying one changeset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Applied,
    Duplicate,
    Gap { expected: u64 },
}

/// Why a changeset was not applied. Only [`VaultError::Schema`] is final
/// (the changeset can never be applied: the sender is told and holds the
/// resource); the others are this hub's trouble (a full disk, a locked
/// file), answered "retry later", never turned into a refusal.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the vault database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", crate::store::db::failed("vault", .0))]
    Db(#[from] crate::store::db::DbError),
    #[error("cannot create the vault folder {path}: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error("{0}")]
    Schema(String),
    /// The PostgreSQL store failed (unreachable, a right missing, its disk full).
    #[error("{0}")]
    Postgres(String),
    /// hub.toml does not load, for a command that reads the vaults.
    #[error("{0}")]
    Config(String),
    /// A resource's columns could not be written as text: nothing was stored.
    #[error("a resource's columns could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One resource in a vault, for listings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResourceSummary {
    pub resource: String,
    pub rows: i64,
    pub last_seq: i64,
    pub updated_at: i64,
}

/// All vaults of a hub.
pub struct Vaults {
    dir: PathBuf,
    /// The vaults open now, with when each was last used; at most
    /// `max_open` ([`MAX_OPEN`]; the least recently used idle one is closed).
    open: Mutex<OpenVaults>,
    max_open: usize,
    /// Woken when a changeset is applied, so the link to the parent
    /// forwards it at once instead of at its next pass.
    pub applied: tokio::sync::Notify,
    /// Woken too when a changeset is applied, so deliveries are made from
    /// it at once instead of at the producer's next second.
    pub deliverable: tokio::sync::Notify,
    /// Vault files written (and committed) since the audit collector last
    /// looked, so it opens only those.
    written: Mutex<std::collections::BTreeSet<PathBuf>>,
    /// Resources that are members of a base database (`crate::base`):
    /// the keys their changesets touch are logged for the merge.
    members: Mutex<std::collections::HashSet<(NodeId, String)>>,
    /// Flushes the vaults' commits to disk in groups.
    sync: super::group_sync::GroupSync,
    /// The vaults on PostgreSQL instead of in files, if hub.toml says so.
    pg: Option<Arc<super::pg::PgVaults>>,
    /// The PostgreSQL vaults written since the audit log last looked.
    pg_written: Mutex<std::collections::HashSet<NodeId>>,
}

impl Vaults {
    pub fn new(hub_dir: &Path) -> Self {
        let dir = HubPaths::new(hub_dir).vaults();
        Self {
            sync: super::group_sync::GroupSync::new(&dir),
            dir,
            open: Mutex::new(OpenVaults::default()),
            max_open: MAX_OPEN,
            applied: tokio::sync::Notify::new(),
            deliverable: tokio::sync::Notify::new(),
            written: Mutex::new(Default::default()),
            members: Mutex::new(Default::default()),
            pg: None,
            pg_written: Mutex::new(Default::default()),
        }
    }

    /// The vaults of the hub in `hub_dir` as hub.toml's `store` says: files
    /// there, or a PostgreSQL database (connected and checked now).
    pub fn for_hub(hub_dir: &Path, config: &crate::config::HubConfig) -> Result<Self, VaultError> {
        let mut vaults = Self::new(hub_dir);
        if let Some(crate::config::StoreConfig::Postgres { url_file, ca_file }) = config.postgres() {
            vaults.pg = Some(Arc::new(super::pg::PgVaults::open(url_file, ca_file.as_deref(), config.division)?));
        }
        Ok(vaults)
    }

    /// The vaults of the hub in `hub_dir` for a command that reads them:
    /// [`Vaults::for_hub`] as its hub.toml says, or the files when there is
    /// no hub.toml. A hub.toml that does not load (its at-rest key file
    /// unreadable, say) is the command's error, not a reason to read
    /// nothing.
    pub fn at(hub_dir: &Path) -> Result<Self, VaultError> {
        match crate::config::HubConfig::load(&HubPaths::new(hub_dir)) {
            Ok(config) => Self::for_hub(hub_dir, &config),
            Err(crate::config::ConfigError::Missing(_)) => Ok(Self::new(hub_dir)),
            Err(e) => Err(VaultError::Config(e.to_string())),
        }
    }

    /// The PostgreSQL store, when the vaults are there.
    pub fn postgres(&self) -> Option<&Arc<super::pg::PgVaults>> {
        self.pg.as_ref()
    }

    /// When each resource of `node` last changed (resource, Unix seconds),
    /// in its vault here (a file, or PostgreSQL), or for the hub's own node
    /// in its base databases; empty when there is none.
    pub fn last_changes(&self, node: &NodeId) -> HashMap<String, i64> {
        match &self.pg {
            Some(pg) if !node.is_hub_id() => pg.last_changes(node).unwrap_or_else(|e| {
                tracing::warn!(%node, error = %e, "cannot tell when the vault on PostgreSQL last changed");
                HashMap::new()
            }),
            Some(_) => self.dir.parent().map(crate::base::last_changes_on_postgres).unwrap_or_default(),
            None => last_changes(&self.dir, node),
        }
    }

    /// Every resource of `node`'s vault here with its rows (empty when there is none).
    pub fn summaries(&self, node: &NodeId) -> Vec<ResourceSummary> {
        match &self.pg {
            Some(pg) => pg.summaries(node).unwrap_or_else(|e| {
                tracing::warn!(%node, error = %e, "cannot list the resources of the vault on PostgreSQL");
                Vec::new()
            }),
            None => summaries(&self.dir, node),
        }
    }

    /// The PostgreSQL vaults written since the last call.
    pub fn take_written_pg(&self) -> Vec<NodeId> {
        std::mem::take(&mut *self.pg_written.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            .into_iter()
            .collect()
    }

    /// Marks PostgreSQL vaults to be looked at again (events left in them).
    pub fn mark_written_pg(&self, nodes: Vec<NodeId>) {
        self.pg_written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(nodes);
    }

    /// The resources whose changed keys are logged for the base databases.
    pub fn set_members(&self, members: impl IntoIterator<Item = (NodeId, String)>) {
        *self.members.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = members.into_iter().collect();
    }

    /// The folder of the vault files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The vault file of a node.
    pub fn path(&self, node: &NodeId) -> PathBuf {
        vault_path(&self.dir, node)
    }

    fn conn(&self, node: &NodeId) -> Result<Arc<Mutex<Connection>>, VaultError> {
        if let Some(pg) = &self.pg {
            // never a vault file beside the PostgreSQL store
            return Err(VaultError::Postgres(format!(
                "this is not yet done with the vaults on {} (docs/operator.md, \"Vaults on PostgreSQL\")",
                pg.where_
            )));
        }
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        open.uses += 1;
        let now = open.uses;
        let (c, closed) = match open.conns.get_mut(node) {
            Some(v) => {
                (v.used, v.cooled) = (now, false);
                (v.conn.clone(), Vec::new())
            }
            None => {
                create_private_dir(&self.dir)
                    .map_err(|source| VaultError::Folder { path: self.dir.display().to_string(), source })?;
                let c = Arc::new(Mutex::new(open_vault(&self.path(node))?));
                open.conns.insert(node.clone(), OpenVault { conn: c.clone(), used: now, cooled: false });
                (c, open.evict(self.max_open))
            }
        };
        // after this use, so the vault asked for is never among the cold
        let cool = if now.is_multiple_of(HOT) { open.cool_down(now) } else { Vec::new() };
        drop(open);
        // closed and shrunk outside the lock: both touch the files
        drop(closed);
        for v in cool {
            // one in use now is not cold after all
            if let Ok(conn) = v.try_lock() {
                let _ = conn.execute_batch("PRAGMA shrink_memory");
            }
        }
        Ok(c)
    }

    /// Applies a changeset to its origin's vault, exactly once.
    /// `digest` is the SHA-256 of the signed body, kept per number to tell a
    /// true duplicate from a different changeset under a reused number.
    /// `frame`, kept at a child hub, is the signed Upload frame to forward.
    pub fn apply(
        &self,
        cs: &Changeset,
        digest: &[u8; 32],
        frame: Option<&[u8]>,
        now: i64,
    ) -> Result<Applied, VaultError> {
        let member = self
            .members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&(cs.origin.clone(), cs.resource.as_str().to_owned()));
        if let Some(pg) = &self.pg {
            let applied = pg.apply(cs, digest, frame, member, now);
            // whatever the answer (a commit whose answer was lost is committed all the same), the
            // collector looks
            self.pg_written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(cs.origin.clone());
            // a duplicate too: it may be this process's own commit whose answer was lost
            if matches!(applied, Ok(Applied::Applied | Applied::Duplicate)) {
                self.applied.notify_one();
                self.deliverable.notify_one();
            }
            return applied;
        }
        let conn = self.conn(&cs.origin)?;
        // A panic while applying rolled its transaction back; the connection is usable.
        let mut conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let applied = apply(&mut conn, cs, digest, frame, member, now);
        // whatever the answer, it speaks of what the vault holds: it waits for the flush
        self.sync.mark(&self.path(&cs.origin));
        if matches!(applied, Ok(Applied::Applied)) {
            // after the commit: a collector that misses it now finds it next time
            self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(self.path(&cs.origin));
            self.applied.notify_one();
            self.deliverable.notify_one();
        }
        applied
    }

    /// The group of flushes that holds every commit made so far; answers
    /// about them wait for [`Vaults::synced`] of it.
    pub fn ticket(&self) -> u64 {
        self.sync.ticket()
    }

    /// Waits until the commits of `ticket` are on disk.
    pub async fn synced(&self, ticket: u64) {
        self.sync.wait(ticket).await
    }

    /// Like [`Vaults::synced`], blocking the thread.
    pub fn synced_blocking(&self, ticket: u64) {
        self.sync.wait_blocking(ticket)
    }

    /// The vault files written since the last call.
    pub fn take_written(&self) -> Vec<PathBuf> {
        std::mem::take(&mut *self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            .into_iter()
            .collect()
    }

    /// Marks vault files to be looked at again (events left in them).
    pub fn mark_written(&self, paths: Vec<PathBuf>) {
        self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(paths);
    }

    /// Up to `limit` stored frames of `resource` above the number the parent
    /// acknowledged, in order, unless forwarding it is held.
    pub fn to_forward(&self, node: &NodeId, resource: &str, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, VaultError> {
        let conn = self.conn(node)?;
        let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut stmt = conn.prepare_cached(
            "SELECT c.seq, c.frame FROM _gdx_changesets c JOIN _gdx_resources r ON r.resource = c.resource
             WHERE c.resource = ?1 AND c.seq > r.forwarded_seq AND r.forward_error IS NULL AND c.frame IS NOT NULL
             ORDER BY c.seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![resource, limit as i64], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records the parent's answer: it holds everything up to `seq`.
    pub fn forwarded(&self, node: &NodeId, resource: &str, seq: u64) -> Result<(), VaultError> {
        let conn = self.conn(node)?;
        let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.execute(
            "UPDATE _gdx_resources SET forwarded_seq = ?2 WHERE resource = ?1",
            params![resource, seq as i64],
        )?;
        Ok(())
    }

    /// Stops forwarding `resource` after the parent rejected one of its changesets.
    pub fn hold_forwarding(&self, node: &NodeId, resource: &str, reason: &str) -> Result<(), VaultError> {
        let conn = self.conn(node)?;
        let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.execute("UPDATE _gdx_resources SET forward_error = ?2 WHERE resource = ?1", params![resource, reason])?;
        Ok(())
    }

    /// Why forwarding `resource` to the parent is held, if it is.
    pub fn forward_error(&self, node: &NodeId, resource: &str) -> Result<Option<String>, VaultError> {
        let conn = self.conn(node)?;
        let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let e: Option<Option<String>> = conn
            .query_row("SELECT forward_error FROM _gdx_resources WHERE resource = ?1", [resource], |r| r.get(0))
            .optional()?;
        Ok(e.flatten())
    }

    /// Changesets of `resource` the parent has not acknowledged yet.
    pub fn forward_backlog(&self, node: &NodeId, resource: &str) -> Result<u64, VaultError> {
        let conn = self.conn(node)?;
        let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n: Option<i64> = conn
            .query_row("SELECT last_seq - forwarded_seq FROM _gdx_resources WHERE resource = ?1", [resource], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }
}

impl OpenVaults {
    /// Takes out the least recently used vaults not in use until at most
    /// `max` are open (fewer cannot be: those in use stay), to be closed.
    fn evict(&mut self, max: usize) -> Vec<Arc<Mutex<Connection>>> {
        let mut closed = Vec::new();
        while self.conns.len() > max {
            let idle = self.conns.iter().filter(|(_, v)| Arc::strong_count(&v.conn) == 1).min_by_key(|(_, v)| v.used);
            let Some(node) = idle.map(|(n, _)| n.clone()) else { break };
            if let Some(v) = self.conns.remove(&node) {
                closed.push(v.conn);
            }
        }
        closed
    }

    /// The vaults gone cold (not used among the last `2 × HOT` uses, not
    /// in use) whose caches are still held, marked as given back.
    fn cool_down(&mut self, now: u64) -> Vec<Arc<Mutex<Connection>>> {
        self.conns
            .values_mut()
            .filter(|v| !v.cooled && v.used + 2 * HOT < now && Arc::strong_count(&v.conn) == 1)
            .map(|v| {
                v.cooled = true;
                v.conn.clone()
            })
            .collect()
    }
}

/// Creates the vault directory readable by the hub's user only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if !dir.is_dir() {
        gdx_files::create_private_dir(dir)?;
        // the folder's own entry survives a power cut (group commit flushes what is inside it)
        if let Some(parent) = dir.parent() {
            gdx_files::sync_dir(parent)?;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// `vaults/DIVISION-ORG.db`.
pub fn vault_path(vault_dir: &Path, node: &NodeId) -> PathBuf {
    vault_dir.join(format!("{}-{}.db", node.division(), node.org()))
}

pub(crate) fn open_vault(path: &Path) -> Result<Connection, VaultError> {
    let conn = gdx_files::open_sqlite(
        path,
        "CREATE TABLE IF NOT EXISTS _gdx_resources (
            resource   TEXT PRIMARY KEY,
            columns    TEXT NOT NULL,
            key        TEXT NOT NULL,
            last_seq   INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            epoch      INTEGER NOT NULL DEFAULT 0,
            -- at a child hub: the highest number the parent acknowledged
            forwarded_seq INTEGER NOT NULL DEFAULT 0,
            -- at a child hub: why the parent rejected a forwarded changeset
            forward_error TEXT
        );
        CREATE TABLE IF NOT EXISTS _gdx_changesets (
            resource TEXT NOT NULL,
            seq      INTEGER NOT NULL,
            digest   BLOB NOT NULL,
            -- at a child hub: the Upload frame as the origin signed it, to forward
            frame    BLOB,
            PRIMARY KEY (resource, seq)
        ) WITHOUT ROWID;
        -- for resources that are members of a base database: the keys each
        -- changeset touched (NULL: all of them), until the merge took them
        -- (AUTOINCREMENT: ids never return once the merge trimmed the log)
        CREATE TABLE IF NOT EXISTS _gdx_base_log (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            resource TEXT NOT NULL,
            seq      INTEGER NOT NULL,
            at       INTEGER NOT NULL,
            key      TEXT
        )",
    )?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    // closing a vault to make room leaves its WAL file for the next opening
    // (a checkpoint, with its flushes, on every closing would cost more)
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    // commits are flushed in groups by `GroupSync`, before anything is acknowledged
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(crate::store::outbox::OUTBOX_SQL)?;
    Ok(conn)
}

/// When each resource in a node's vault last changed (resource, Unix
/// seconds); empty when it has none. Cheap: no row counts.
pub fn last_changes(vault_dir: &Path, node: &NodeId) -> HashMap<String, i64> {
    let files: Vec<PathBuf> = match node.is_hub_id() {
        // a hub publishes its shared base databases, one file each
        true => std::fs::read_dir(bases_dir(vault_dir))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "db"))
                    .collect()
            })
            .unwrap_or_default(),
        false => vec![vault_path(vault_dir, node)],
    };
    let read = |path: &Path| -> rusqlite::Result<Vec<(String, i64)>> {
        let conn = gdx_files::open_read_only(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mut stmt = conn.prepare("SELECT resource, updated_at FROM _gdx_resources")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    };
    files.iter().filter(|p| p.exists()).flat_map(|p| read(p).unwrap_or_default()).collect()
}

/// The bases folder beside the vaults folder.
fn bases_dir(vault_dir: &Path) -> PathBuf {
    vault_dir.with_file_name("bases")
}

/// The file holding what `node` publishes as `resource`, in the vault
/// layout (`_gdx_resources`, `_gdx_changesets`): its vault, or for a hub's
/// own node the file of its base database `resource`.
pub fn published_path(vault_dir: &Path, node: &NodeId, resource: &str) -> PathBuf {
    match node.is_hub_id() {
        true => bases_dir(vault_dir).join(format!("{resource}.db")),
        false => vault_path(vault_dir, node),
    }
}

/// Summaries of every resource in a node's vault (empty when it has none).
pub fn summaries(vault_dir: &Path, node: &NodeId) -> Vec<ResourceSummary> {
    let path = vault_path(vault_dir, node);
    if !path.exists() {
        return Vec::new();
    }
    let read = || -> rusqlite::Result<Vec<ResourceSummary>> {
        let conn = gdx_files::open_read_only(&path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mut stmt = conn.prepare("SELECT resource, last_seq, updated_at FROM _gdx_resources ORDER BY resource")?;
        let list: Vec<(String, i64, i64)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
        list.into_iter()
            .map(|(resource, last_seq, updated_at)| {
                let rows = conn.query_row(&format!("SELECT count(*) FROM \"{resource}\""), [], |r| r.get(0))?;
                Ok(ResourceSummary { resource, rows, last_seq, updated_at })
            })
            .collect()
    };
    read().unwrap_or_default()
}

fn apply(
    conn: &mut Connection,
    cs: &Changeset,
    digest: &[u8; 32],
    frame: Option<&[u8]>,
    member: bool,
    now: i64,
) -> Result<Applied, VaultError> {
    let table = cs.resource.as_str();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let meta: Option<(String, String, i64, i64)> = tx
        .query_row("SELECT columns, key, last_seq, epoch FROM _gdx_resources WHERE resource = ?1", [table], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let step = plan(meta.as_ref(), cs)?;
    if step.reset {
        tx.execute_batch(&format!("DELETE FROM \"{table}\""))?;
        tx.execute("DELETE FROM _gdx_changesets WHERE resource = ?1", [table])?;
        if member {
            // every key the base took from this resource is looked at again
            tx.execute(
                "INSERT INTO _gdx_base_log (resource, seq, at, key) VALUES (?1, ?2, ?3, NULL)",
                params![table, cs.seq as i64, now],
            )?;
        }
    }
    let known = match step.then {
        Then::Apply { known } => known,
        Then::Gap { expected } => return Ok(Applied::Gap { expected }),
        Then::Duplicate => {
            let seen: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT digest FROM _gdx_changesets WHERE resource = ?1 AND seq = ?2",
                    params![table, cs.seq as i64],
                    |r| r.get(0),
                )
                .optional()?;
            return duplicate(seen.as_deref(), digest, cs);
        }
    };
    let key_names: Vec<String> = cs.key.iter().map(|&i| cs.columns[i].name.clone()).collect();
    let columns = tables::apply(&tx, table, known, cs).map_err(|e| match e {
        tables::TableError::Schema(m) => VaultError::Schema(m),
        tables::TableError::Sqlite(e) => VaultError::Sqlite(e),
    })?;
    tx.execute(
        "INSERT INTO _gdx_resources (resource, columns, key, last_seq, updated_at, epoch) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(resource) DO UPDATE SET columns = excluded.columns, last_seq = excluded.last_seq,
             updated_at = excluded.updated_at, epoch = excluded.epoch,
             forwarded_seq = CASE WHEN epoch <> excluded.epoch THEN 0 ELSE forwarded_seq END,
             forward_error = CASE WHEN epoch <> excluded.epoch THEN NULL ELSE forward_error END",
        params![
            table,
            serde_json::to_string(&columns)?,
            serde_json::to_string(&key_names)?,
            cs.seq as i64,
            now,
            cs.epoch as i64
        ],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO _gdx_changesets (resource, seq, digest, frame) VALUES (?1, ?2, ?3, ?4)",
        params![table, cs.seq as i64, digest.as_slice(), frame],
    )?;
    if member {
        // the keys this changeset touched, for the base merge, committed with it
        let first_key = cs.key.first().copied().unwrap_or(0);
        let mut log =
            tx.prepare_cached("INSERT INTO _gdx_base_log (resource, seq, at, key) VALUES (?1, ?2, ?3, ?4)")?;
        for change in &cs.changes {
            let key = match change {
                gdx_common::data::Change::Upsert(values) => values.get(first_key),
                gdx_common::data::Change::Delete(values) => values.first(),
            };
            log.execute(params![table, cs.seq as i64, now, key.map(gdx_common::grant::value_text)])?;
        }
    }
    crate::store::outbox::note(&tx, &changeset_event(cs, digest, now))?;
    tx.commit()?;
    Ok(Applied::Applied)
}

#[cfg(test)]
mod tests;
