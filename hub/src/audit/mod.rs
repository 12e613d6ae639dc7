//! The hub's tamper-evident audit log (`audit.db`): an append-only list of
//! entries hashed into an RFC 6962 Merkle tree ([`gdx_common::merkle`]), with
//! checkpoints (origin, size, root) signed by the hub's Ed25519 key
//! (`audit.key`). The public half is also kept as `audit.pub`
//! (SubjectPublicKeyInfo PEM), which standard tools such as openssl read.
//!
//! An action and its entry are written in the same transaction: each store
//! that records actions (hub.db, catalog.db, exchange.db, every vault) has an
//! `audit_outbox` table, and [`note`] adds the event there inside the
//! action's own transaction. [`AuditLog::collect`] then appends outbox
//! events to the log in order, each under its source
//! (`exchange.db#17#DIGEST`), which is unique in the log: a kill after the
//! append but before the outbox row is deleted appends nothing twice. An
//! outbox event that is not a well-formed event of a known kind is logged
//! as `unreadable`, so every entry parses as an [`Entry`].
//!
//! An entry is the JSON object [`Entry`], stored as the exact bytes hashed.
//! It carries its own index and the leaf hash of the entry before it, so a
//! changed, deleted or swapped entry is named precisely by `verify`.
//!
//! `collect` moves the stores' outbox events into the log; `cosign` is the
//! parent's and child's side of cosigning checkpoints (the
//! parent signs its own id with the checkpoint; the child keeps only
//! cosignatures that verify, all under one parent key), `render` the
//! listings; the offline verification of a bundle is
//! [`gdx_common::audit::verify`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

pub use gdx_common::audit::{
    Bundle, BundleCosignature, COSIGNATURE_VERSION, Checkpoint, Entry, Event, KINDS, Pins, Problem, Proof, PublicKey,
    Verified, cosignature_note, hash_of, unhex, verify,
};
use gdx_common::merkle::{self, Hash};

use crate::args;
use crate::store::HubPaths;
use crate::store::db::{Db, Sql, Tx, Which};

/// The audit log's tables.
pub(crate) const TABLES: &str = "CREATE TABLE IF NOT EXISTS entries (
    idx    INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    node   TEXT,
    resource TEXT,
    request TEXT,
    source TEXT NOT NULL UNIQUE,
    body   TEXT NOT NULL,
    leaf   BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_at ON entries (at);
CREATE INDEX IF NOT EXISTS entries_kind ON entries (kind);
CREATE TABLE IF NOT EXISTS checkpoints (
    size      INTEGER PRIMARY KEY,
    root      TEXT NOT NULL,
    at        INTEGER NOT NULL,
    signature TEXT NOT NULL
);
-- at a parent: the children's checkpoints it cosigned
CREATE TABLE IF NOT EXISTS cosigned (
    origin     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    root       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL,
    PRIMARY KEY (origin, size)
);
-- at a parent: two checkpoints of a child that cannot both be true
CREATE TABLE IF NOT EXISTS evidence (
    id       INTEGER PRIMARY KEY,
    origin   TEXT NOT NULL,
    at       INTEGER NOT NULL,
    what     TEXT NOT NULL,
    held     TEXT NOT NULL,
    received TEXT NOT NULL
);
-- at a child: its parent's cosignatures of its checkpoints, with
-- the format of the text signed (gdx_common::audit::cosignature_note)
CREATE TABLE IF NOT EXISTS cosignatures (
    size       INTEGER PRIMARY KEY,
    cosigner   TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL,
    version    INTEGER NOT NULL DEFAULT 1
);";

/// At most this long between the last entry and a checkpoint covering it.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Why the audit log failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", crate::store::db::failed("audit", .0))]
    Db(#[from] crate::store::db::DbError),
    #[error("{0}")]
    Other(String),
}

/// The audit log of one hub.
pub struct AuditLog {
    db: Db,
    /// The outboxes of the stores on PostgreSQL (the files are read per pass).
    outboxes: Vec<(Which, Db)>,
    key: Ed25519KeyPair,
    origin: String,
    /// The tree of the entries so far: its size, root and last leaf.
    tree: merkle::Frontier,
    dir: PathBuf,
}

/// The error for a checkpoint of `size` whose stored root, signature or
/// entries do not fit together.
fn damaged(size: u64) -> AuditError {
    AuditError::Other(format!(
        "the stored checkpoint of size {size} or its entries are damaged; run `gdx-hub audit verify` to see where"
    ))
}

/// Events moved from one store's outbox in one pass.
const COLLECT_BATCH: usize = 5000;
/// Events moved in one pass (one transaction of the log) from all stores.
const PASS_LIMIT: usize = 50_000;
/// Stores read in one pass (each held open until the log commits).
const PASS_STORES: usize = 32;
/// Vaults on PostgreSQL read in one pass (one round trip).
const PASS_STORES_POSTGRES: usize = 256;

/// Events waiting in one store's outbox.
struct Waiting {
    path: PathBuf,
    /// The store's path within the hub's folder, naming each entry's source.
    name: String,
    db: Db,
    events: Vec<(i64, String)>,
}

use gdx_common::token::hex;

mod collect;
mod cosign;
pub use cosign::{CosignRefused, CosignatureRefused};
mod render;

pub use render::render;

impl AuditLog {
    /// Opens (creating if needed) `audit.db` and `audit.key` in `hub_dir`.
    pub fn open(hub_dir: &Path, origin: &str) -> Result<Self, AuditError> {
        let paths = HubPaths::new(hub_dir);
        let db = Db::open(&paths, Which::Audit, TABLES)?;
        // the other stores' outboxes, where they are on PostgreSQL too
        let mut outboxes = Vec::new();
        if matches!(db, Db::Postgres(_)) {
            // the bases bases.toml declares (a mistake in it is the merge's to report, not the log's to stop at)
            let bases = crate::base::BasesConfig::load(hub_dir).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the base databases' outboxes are not read until bases.toml reads");
                Default::default()
            });
            let bases = bases.bases.iter().map(|b| Which::base(&b.name));
            for which in [Which::Hub, Which::Catalog, Which::Exchange].into_iter().chain(bases) {
                outboxes.push((which, Db::open(&paths, which, &which.tables())?));
            }
        }
        add_cosignature_version(&db)?;
        let signed: i64 = db.query_row("SELECT count(*) FROM checkpoints", args![], |r| r.get(0))?;
        let key = load_or_make_key(&paths.audit_key(), signed > 0)?;
        keep_public_pem(&paths.audit_pub(), &public_of(&key).to_pem());
        let mut tree = merkle::Frontier::default();
        catch_up(&db, &mut tree)?;
        Ok(Self { db, outboxes, key, origin: origin.to_owned(), tree, dir: hub_dir.to_path_buf() })
    }

    /// Hex of the public key that verifies this hub's checkpoints.
    pub fn public_key(&self) -> String {
        public_of(&self.key).to_string()
    }

    /// Entries in the log.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Appends one event under `source` (unique); false when that source was appended before.
    pub fn append(&mut self, source: &str, event: &Event) -> Result<bool, AuditError> {
        let mut tree = self.tree.clone();
        let new = self.db.write(|tx| {
            catch_up(tx, &mut tree)?;
            Self::append_in(tx, &mut tree, source, event)
        })?;
        self.tree = tree;
        Ok(new)
    }

    /// Appends `event` as the next entry of `tree` (the caller's copy,
    /// caught up with the log in this transaction, kept once it commits);
    /// false when `source` was appended before. An event of a kind not in [`KINDS`], or whose
    /// detail is not an object, is refused: it would not parse as an entry.
    fn append_in(tx: &Tx<'_>, tree: &mut merkle::Frontier, source: &str, event: &Event) -> Result<bool, AuditError> {
        Ok(Self::append_all(tx, tree, &[(source.to_owned(), event.clone())])? == 1)
    }

    /// Appends `events` (each under its source) as the next entries of
    /// `tree`, as [`AuditLog::append_in`] does one, in a few statements:
    /// the sources appended before found in one query, the new entries
    /// inserted [`INSERT_ROWS`] at a time. Returns how many were new.
    fn append_all(tx: &Tx<'_>, tree: &mut merkle::Frontier, events: &[(String, Event)]) -> Result<usize, AuditError> {
        let mut seen = std::collections::HashSet::new();
        for chunk in events.chunks(SEEN_CHUNK) {
            let list = serde_json::to_string(&chunk.iter().map(|(source, _)| source).collect::<Vec<_>>())
                .map_err(|e| AuditError::Other(e.to_string()))?;
            let sql = format!("SELECT source FROM entries WHERE {}", crate::store::db::in_list(tx, "source", 1));
            seen.extend(tx.query(&sql, args![list], |r| r.get::<String>(0))?);
        }
        let mut rows: Vec<crate::store::db::Value> = Vec::new();
        let mut appended = 0;
        for (source, event) in events {
            // appended before, or twice in this pass: once
            if !seen.insert(source.clone()) {
                continue;
            }
            if !KINDS.contains(&event.kind.as_str()) || !event.detail.is_object() {
                return Err(AuditError::Other(format!(
                    "an event of kind {:?} with a detail that is {} cannot be logged: entries have a kind of gdx_common::audit::KINDS and an object as detail",
                    event.kind,
                    if event.detail.is_object() { "an object" } else { "not an object" }
                )));
            }
            let (index, prev) = (tree.size(), tree.last());
            let entry = Entry { index, prev: hex(&prev), event: event.clone() };
            let body = serde_json::to_string(&entry).map_err(|e| AuditError::Other(e.to_string()))?;
            let leaf = merkle::leaf_hash(body.as_bytes());
            rows.extend_from_slice(args![
                index as i64,
                event.at,
                event.kind,
                event.node,
                event.resource,
                event.request,
                source,
                body,
                leaf.as_slice()
            ]);
            tree.push(leaf);
            appended += 1;
            if rows.len() == INSERT_ROWS * ENTRY_COLUMNS {
                insert_entries(tx, &std::mem::take(&mut rows))?;
            }
        }
        insert_entries(tx, &rows)?;
        Ok(appended)
    }

    /// Signs a checkpoint of the current size if it is newer than the last one.
    pub fn checkpoint(&mut self, now: i64) -> Result<Option<Checkpoint>, AuditError> {
        let mut tree = self.tree.clone();
        let signed = self.db.write(|tx| {
            // the entries another hub process appended are signed too
            catch_up(tx, &mut tree)?;
            let last: Option<i64> = tx.query_row("SELECT max(size) FROM checkpoints", args![], |r| r.get(0))?;
            let size = tree.size();
            if last.is_some_and(|l| l as u64 >= size) || size == 0 {
                return Ok::<_, AuditError>(None);
            }
            let root = hex(&tree.root());
            let note = Checkpoint::note(&self.origin, size, &root, now);
            let signature = hex(self.key.sign(note.as_bytes()).as_ref());
            tx.execute(
                "INSERT INTO checkpoints (size, root, at, signature) VALUES (?1, ?2, ?3, ?4)",
                args![size as i64, root, now, signature],
            )?;
            Ok(Some(Checkpoint { origin: self.origin.clone(), size, root, at: now, signature }))
        })?;
        self.tree = tree;
        Ok(signed)
    }

    /// The whole log as a bundle that verifies offline.
    pub fn bundle(&self) -> Result<Bundle, AuditError> {
        let entries: Vec<String> = self.db.query("SELECT body FROM entries ORDER BY idx", args![], |r| r.get(0))?;
        let cosignatures = self.db.query(
            "SELECT size, cosigner, public_key, signature, version FROM cosignatures ORDER BY size",
            args![],
            |r| {
                Ok(BundleCosignature {
                    version: r.get(4)?,
                    size: r.get::<i64>(0)? as u64,
                    cosigner: r.get(1)?,
                    public_key: r.get(2)?,
                    signature: r.get(3)?,
                })
            },
        )?;
        Ok(Bundle {
            origin: self.origin.clone(),
            public_key: self.public_key(),
            entries,
            checkpoints: self.checkpoints()?,
            cosignatures,
        })
    }

    /// The newest checkpoint, if any.
    pub fn last_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        Ok(self.db.query_opt(
            "SELECT size, root, at, signature FROM checkpoints ORDER BY size DESC LIMIT 1",
            args![],
            |r| self.checkpoint_row(r),
        )?)
    }

    fn checkpoint_row(&self, r: &crate::store::db::Row) -> Result<Checkpoint, crate::store::db::DbError> {
        Ok(Checkpoint {
            origin: self.origin.clone(),
            size: r.get::<i64>(0)? as u64,
            root: r.get(1)?,
            at: r.get(2)?,
            signature: r.get(3)?,
        })
    }

    /// Every checkpoint, by size.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        Ok(self.db.query("SELECT size, root, at, signature FROM checkpoints ORDER BY size", args![], |r| {
            self.checkpoint_row(r)
        })?)
    }

    /// Entries matching `filter`, in order.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Entry>, AuditError> {
        let bodies: Vec<String> = self.db.query(
            "SELECT body FROM entries WHERE (CAST(?1 AS TEXT) IS NULL OR node = ?1)
             AND (CAST(?2 AS TEXT) IS NULL OR resource = ?2) AND (CAST(?3 AS TEXT) IS NULL OR kind = ?3)
             AND (CAST(?4 AS BIGINT) IS NULL OR at >= ?4) AND (CAST(?5 AS BIGINT) IS NULL OR at < ?5)
             AND (CAST(?6 AS TEXT) IS NULL OR request = ?6) ORDER BY idx",
            args![filter.node, filter.resource, filter.kind, filter.since, filter.until, filter.request],
            |r| r.get(0),
        )?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| AuditError::Other(format!("entry does not decode: {e}"))))
            .collect()
    }

    /// The inclusion proof of entry `index` against the latest checkpoint.
    pub fn prove(&self, index: u64) -> Result<Proof, AuditError> {
        let Some(cp) = self.last_checkpoint()? else {
            return Err(AuditError::Other(
                "the log has no checkpoint yet; wait a few seconds while the hub runs".into(),
            ));
        };
        if index >= cp.size {
            return Err(AuditError::Other(format!(
                "entry {index} is not covered by the latest checkpoint (size {}); entries are numbered from 0, and a checkpoint follows within seconds while the hub runs",
                cp.size
            )));
        }
        let leaves = self.leaves(cp.size)?;
        let body: String =
            self.db.query_row("SELECT body FROM entries WHERE idx = ?1", args![index as i64], |r| r.get(0))?;
        let proof = merkle::inclusion_proof(&leaves, index as usize).ok_or_else(|| damaged(cp.size))?;
        Ok(Proof {
            entry: index,
            leaf: hex(&merkle::leaf_hash(body.as_bytes())),
            body,
            proof: proof.iter().map(|h| hex(h)).collect(),
            checkpoint: cp,
            public_key: self.public_key(),
        })
    }

    fn leaves(&self, upto: u64) -> Result<Vec<Hash>, AuditError> {
        let rows: Vec<Vec<u8>> =
            self.db.query("SELECT leaf FROM entries WHERE idx < ?1 ORDER BY idx", args![upto as i64], |r| r.get(0))?;
        rows.into_iter()
            .map(|v| v.try_into().map_err(|_| AuditError::Other("a stored leaf is not 32 bytes".into())))
            .collect()
    }
}

/// A read-only look at `audit.db` for those who only read entries (the
/// 考核 observations): its own connection, so reading never holds the
/// log's lock, and queries the indexes serve (by index, time, kind).
pub struct Reader {
    db: Db,
}

impl Reader {
    pub fn open(hub_dir: &Path) -> Result<Self, AuditError> {
        let paths = HubPaths::new(hub_dir);
        if let Some(db) = Db::postgres_of(&paths, Which::Audit, TABLES)? {
            return Ok(Self { db });
        }
        let conn = gdx_files::open_read_only(&paths.audit_db()).map_err(crate::store::db::DbError::from)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(crate::store::db::DbError::from)?;
        Ok(Self { db: Db::Sqlite(conn) })
    }

    fn query(&self, sql: &str, args: &[crate::store::db::Value]) -> Result<Vec<Entry>, AuditError> {
        let bodies: Vec<String> = self.db.query(sql, args, |r| r.get(0))?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| AuditError::Other(format!("entry does not decode: {e}"))))
            .collect()
    }

    /// Up to `limit` entries from index `from` on, in order.
    pub fn entries_from(&self, from: u64, limit: usize) -> Result<Vec<Entry>, AuditError> {
        self.query("SELECT body FROM entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2", args![from as i64, limit as i64])
    }

    /// The entries logged at `since..until` (Unix seconds), in order.
    pub fn entries_during(&self, since: i64, until: i64) -> Result<Vec<Entry>, AuditError> {
        self.query("SELECT body FROM entries WHERE at >= ?1 AND at < ?2 ORDER BY idx", args![since, until])
    }

    /// The entries of one kind, in order.
    pub fn entries_of_kind(&self, kind: &str) -> Result<Vec<Entry>, AuditError> {
        self.query("SELECT body FROM entries WHERE kind = ?1 ORDER BY idx", args![kind])
    }
}

/// What `gdx-hub audit list` selects. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub node: Option<String>,
    pub resource: Option<String>,
    pub kind: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub request: Option<String>,
}

/// Brings an audit log made by an older gdx-hub to this layout.
pub(crate) fn upgrade(db: &Db) -> Result<(), AuditError> {
    add_cosignature_version(db)
}

/// Adds `cosignatures.version` to an `audit.db` made before it existed:
/// the cosignatures kept until then are of format 1.
fn add_cosignature_version(db: &Db) -> Result<(), AuditError> {
    if db.has_column("cosignatures", "version")? {
        return Ok(());
    }
    // in a write transaction, so that two processes opening the file at once add it once
    db.write(|tx| {
        if !db.has_column("cosignatures", "version")? {
            tx.execute_batch("ALTER TABLE cosignatures ADD COLUMN version INTEGER NOT NULL DEFAULT 1")?;
        }
        Ok(())
    })
}

/// Sources looked up in one query when appending.
const SEEN_CHUNK: usize = 1000;
/// Entries inserted by one statement.
const INSERT_ROWS: usize = 200;
/// The values of one entry's row.
const ENTRY_COLUMNS: usize = 9;

/// Inserts the entries whose values, [`ENTRY_COLUMNS`] a row, are `rows`.
fn insert_entries(tx: &Tx<'_>, rows: &[crate::store::db::Value]) -> Result<(), AuditError> {
    if rows.is_empty() {
        return Ok(());
    }
    let tuples: Vec<String> = (0..rows.len() / ENTRY_COLUMNS)
        .map(|r| {
            let cells: Vec<String> = (1..=ENTRY_COLUMNS).map(|c| format!("?{}", r * ENTRY_COLUMNS + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO entries (idx, at, kind, node, resource, request, source, body, leaf) VALUES {}",
            tuples.join(", ")
        ),
        rows,
    )?;
    Ok(())
}

/// Extends `tree` with the entries appended since it was read (by this
/// process before, or by another hub process sharing the database).
fn catch_up(db: &impl Sql, tree: &mut merkle::Frontier) -> Result<(), AuditError> {
    let size: i64 = db.query_row("SELECT coalesce(max(idx) + 1, 0) FROM entries", args![], |r| r.get(0))?;
    let held = tree.size();
    if (size as u64) < held {
        return Err(AuditError::Other(format!(
            "the audit log holds {size} entries, fewer than the {held} read before; run `gdx-hub audit verify`"
        )));
    }
    if size as u64 == held {
        return Ok(());
    }
    if held > 0 {
        // entries appended since (by another hub process): none may be missing in between
        let rows: i64 = db.query_row("SELECT count(*) FROM entries", args![], |r| r.get(0))?;
        if rows != size {
            return Err(damaged(size as u64));
        }
    }
    let leaves: Vec<Vec<u8>> =
        db.query("SELECT leaf FROM entries WHERE idx >= ?1 ORDER BY idx", args![held as i64], |r| r.get(0))?;
    // when the log is opened, one with an entry taken out is read as it is: `verify` says where
    for leaf in leaves {
        let leaf: Hash = leaf.try_into().map_err(|_| AuditError::Other("a stored leaf is not 32 bytes".into()))?;
        tree.push(leaf);
    }
    Ok(())
}

/// Forgets exactly the outbox events `read` (appended to the log now, or
/// before), a run of consecutive ids at a time: on PostgreSQL an id below
/// the last one read may belong to a transaction not yet committed when
/// they were read, and it must stay for the next pass.
fn forget(db: &impl Sql, read: &[(i64, String)]) -> Result<(), AuditError> {
    let mut ids = read.iter().map(|e| e.0).peekable();
    while let Some(first) = ids.next() {
        let mut last = first;
        while ids.peek() == Some(&(last + 1)) {
            last += 1;
            ids.next();
        }
        db.execute("DELETE FROM audit_outbox WHERE id >= ?1 AND id <= ?2", args![first, last])?;
    }
    Ok(())
}

/// Up to [`COLLECT_BATCH`] events waiting in a store's outbox, oldest first.
fn waiting(db: &impl Sql) -> Result<Vec<(i64, String)>, AuditError> {
    Ok(db.query("SELECT id, event FROM audit_outbox ORDER BY id LIMIT ?1", args![COLLECT_BATCH as i64], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?)
}

/// The public half of an audit key.
fn public_of(key: &Ed25519KeyPair) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(key.public_key().as_ref());
    PublicKey::from_bytes(bytes)
}

/// Keeps `audit.pub`, the public key as PEM for standard tools, equal to
/// `pem`. Only a convenience for the operator: the hub works without it, so
/// a failure to write it is logged, not returned.
fn keep_public_pem(path: &Path, pem: &str) {
    if std::fs::read_to_string(path).is_ok_and(|t| t == pem) {
        return;
    }
    if let Err(e) = std::fs::write(path, pem) {
        tracing::warn!(error = %e, path = %path.display(), "could not write the audit public key for standard tools");
    }
}

fn load_or_make_key(path: &Path, in_use: bool) -> Result<Ed25519KeyPair, AuditError> {
    let bad = |e: String| AuditError::Other(format!("{}: {e}; restore it from backup", path.display()));
    if path.exists() {
        gdx_files::check_private(path).map_err(|e| AuditError::Other(e.to_string()))?;
    }
    if let Ok(pkcs8) = std::fs::read(path) {
        return Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| bad(e.to_string()));
    }
    if in_use {
        // a new key would make every checkpoint signed so far unverifiable
        return Err(bad("the audit key is missing but checkpoints were signed with it".into()));
    }
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| bad(e.to_string()))?;
    gdx_files::write_new(path, pkcs8.as_ref(), true).map_err(|e| bad(e.to_string()))?;
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests;
