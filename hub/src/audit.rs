//! The hub's tamper-evident audit log (`audit.db`): an append-only list of
//! entries hashed into an RFC 6962 Merkle tree ([`crate::merkle`]), with
//! checkpoints (origin, size, root) signed by the hub's Ed25519 key
//! (`audit.key`).
//!
//! An action and its entry are written in the same transaction: each store
//! that records actions (hub.db, catalog.db, exchange.db, every vault) has an
//! `audit_outbox` table, and [`note`] adds the event there inside the
//! action's own transaction. [`AuditLog::collect`] then appends outbox
//! events to the log in order, each under its source (`exchange.db#17`),
//! which is unique in the log: a kill after the append but before the
//! outbox row is deleted appends nothing twice.
//!
//! An entry is the JSON object [`Entry`], stored as the exact bytes hashed.
//! It carries its own index and the leaf hash of the entry before it, so a
//! changed, deleted or swapped entry is named precisely by `verify`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::merkle::{self, Hash};

/// The outbox table every recording store creates.
pub const OUTBOX_SQL: &str =
    "CREATE TABLE IF NOT EXISTS audit_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);";

/// The kinds of entries, for `gdx-hub audit list --kind`.
pub const KINDS: &[&str] = &[
    "enrolled",
    "revoked",
    "changeset",
    "catalogued",
    "request",
    "decision",
    "delivered",
    "lookup",
    "cosigned",
    "equivocation",
    "unreadable",
];

/// At most this long between the last entry and a checkpoint covering it.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Why the audit log failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Other(String),
}

/// Something that moved or governed data, as the action's store records it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// One of [`KINDS`].
    pub kind: String,
    /// Unix seconds.
    pub at: i64,
    /// The node that acted or is concerned.
    pub node: Option<String>,
    /// Resource or 信息资源代码 concerned.
    pub resource: Option<String>,
    /// Request (grant) id concerned.
    pub request: Option<String>,
    /// Everything else, by kind.
    pub detail: serde_json::Value,
}

/// One entry of the log: its index, the leaf hash before it, and the event
/// (its fields inline). Serialized in this field order; the bytes are what
/// is hashed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub index: u64,
    /// Hex leaf hash of entry `index - 1` (64 zeros for the first).
    pub prev: String,
    #[serde(flatten)]
    pub event: Event,
}

/// Records `event` in the outbox of the store whose transaction `conn` is in.
pub fn note(conn: &Connection, event: &Event) -> rusqlite::Result<()> {
    conn.execute("INSERT INTO audit_outbox (event) VALUES (?1)", [serde_json::to_string(event).unwrap_or_default()])?;
    Ok(())
}

/// A signed checkpoint: the log had `size` entries with this `root`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    /// Hex.
    pub root: String,
    pub at: i64,
    /// Hex Ed25519 signature over [`Checkpoint::note`].
    pub signature: String,
}

impl Checkpoint {
    /// The signed text: `gdx-audit-checkpoint/1`, origin, size, hex root and
    /// time, one per line, each line ending with a newline.
    pub fn note(origin: &str, size: u64, root: &str, at: i64) -> String {
        format!("gdx-audit-checkpoint/1\n{origin}\n{size}\n{root}\n{at}\n")
    }
}

/// Everything needed to verify a hub's log offline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    pub origin: String,
    /// Hex Ed25519 public key of the hub's audit key.
    pub public_key: String,
    /// The entries' exact bytes, as UTF-8 JSON text, in order.
    pub entries: Vec<String>,
    pub checkpoints: Vec<Checkpoint>,
    /// The parent hub's cosignatures of these checkpoints (none at the province).
    #[serde(default)]
    pub cosignatures: Vec<BundleCosignature>,
}

/// A parent's cosignature of one checkpoint, in a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleCosignature {
    pub size: u64,
    pub cosigner: String,
    /// Hex Ed25519 public key of the cosigner's audit key.
    pub public_key: String,
    /// Hex Ed25519 signature over the checkpoint's note.
    pub signature: String,
}

/// The audit log of one hub.
pub struct AuditLog {
    conn: Connection,
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

/// Events moved from one store's outbox in one transaction.
const COLLECT_BATCH: usize = 5000;

use gdx_common::token::hex;

/// Bytes of lowercase hex, as [`hex`] writes them; nothing else is accepted.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

fn hash_of(s: &str) -> Option<Hash> {
    unhex(s).and_then(|v| v.try_into().ok())
}

impl AuditLog {
    /// Opens (creating if needed) `audit.db` and `audit.key` in `hub_dir`.
    pub fn open(hub_dir: &Path, origin: &str) -> Result<Self, AuditError> {
        let conn = gdx_certs::files::open_sqlite(
            &hub_dir.join("audit.db"),
            "CREATE TABLE IF NOT EXISTS entries (
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
            -- at a child: its parent's cosignatures of its checkpoints
            CREATE TABLE IF NOT EXISTS cosignatures (
                size       INTEGER PRIMARY KEY,
                cosigner   TEXT NOT NULL,
                public_key TEXT NOT NULL,
                signature  TEXT NOT NULL
            );",
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let signed: i64 = conn.query_row("SELECT count(*) FROM checkpoints", [], |r| r.get(0))?;
        let key = load_or_make_key(&hub_dir.join("audit.key"), signed > 0)?;
        let mut log = Self {
            conn,
            key,
            origin: origin.to_owned(),
            tree: merkle::Frontier::default(),
            dir: hub_dir.to_path_buf(),
        };
        {
            let mut stmt = log.conn.prepare("SELECT leaf FROM entries ORDER BY idx")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let leaf: Vec<u8> = row.get(0)?;
                let leaf: Hash =
                    leaf.try_into().map_err(|_| AuditError::Other("a stored leaf is not 32 bytes".into()))?;
                log.tree.push(leaf);
            }
        }
        Ok(log)
    }

    /// Hex of the public key that verifies this hub's checkpoints.
    pub fn public_key(&self) -> String {
        hex(self.key.public_key().as_ref())
    }

    /// Entries in the log.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Appends one event under `source` (unique); false when that source was appended before.
    pub fn append(&mut self, source: &str, event: &Event) -> Result<bool, AuditError> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(leaf) = Self::append_in(&tx, &self.tree, source, event)? else { return Ok(false) };
        tx.commit()?;
        self.tree.push(leaf);
        Ok(true)
    }

    /// Appends `event` as the next entry of `tree` (which the caller
    /// extends once the transaction commits); None when `source` was
    /// appended before.
    fn append_in(
        tx: &rusqlite::Transaction<'_>,
        tree: &merkle::Frontier,
        source: &str,
        event: &Event,
    ) -> Result<Option<Hash>, AuditError> {
        let seen: Option<i64> = tx
            .prepare_cached("SELECT idx FROM entries WHERE source = ?1")?
            .query_row([source], |r| r.get(0))
            .optional()?;
        if seen.is_some() {
            return Ok(None);
        }
        let (index, prev) = (tree.size(), tree.last());
        let entry = Entry { index, prev: hex(&prev), event: event.clone() };
        let body = serde_json::to_string(&entry).map_err(|e| AuditError::Other(e.to_string()))?;
        let leaf = merkle::leaf_hash(body.as_bytes());
        tx.prepare_cached(
            "INSERT INTO entries (idx, at, kind, node, resource, request, source, body, leaf) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![index as i64, event.at, event.kind, event.node, event.resource, event.request, source, body, leaf.as_slice()],
        )?;
        Ok(Some(leaf))
    }

    /// Moves the events waiting in every store's outbox into the log, in
    /// order per store; returns how many were appended.
    pub fn collect(&mut self) -> Result<usize, AuditError> {
        Ok(self.collect_from_vaults(&self.vault_files())?.0)
    }

    /// Every vault file of this hub, in name order.
    pub fn vault_files(&self) -> Vec<PathBuf> {
        let mut vaults: Vec<PathBuf> = match std::fs::read_dir(self.dir.join("vaults")) {
            Ok(dir) => dir
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "db"))
                .collect(),
            Err(_) => Vec::new(),
        };
        vaults.sort();
        vaults
    }

    /// Like [`AuditLog::collect`], but of the vaults only those in `vaults`
    /// (those written since the last look; see `Vaults::take_written`).
    /// Returns how many were appended, and the vaults that still hold
    /// events (more than one batch was waiting).
    pub fn collect_from_vaults(&mut self, vaults: &[PathBuf]) -> Result<(usize, Vec<PathBuf>), AuditError> {
        let mut appended = 0;
        let mut more = Vec::new();
        for path in [self.dir.join("hub.db"), self.dir.join("catalog.db"), self.dir.join("exchange.db")]
            .iter()
            .chain(vaults)
            .filter(|p| p.exists())
        {
            let (n, full) = self.collect_from(path)?;
            appended += n;
            if full {
                more.push(path.clone());
            }
        }
        more.retain(|p| vaults.contains(p));
        Ok((appended, more))
    }

    /// Appends up to [`COLLECT_BATCH`] events of one store; true in second
    /// place when that many were waiting (there may be more).
    fn collect_from(&mut self, path: &Path) -> Result<(usize, bool), AuditError> {
        let name = path.strip_prefix(&self.dir).unwrap_or(path).display().to_string();
        let src = Connection::open(path)?;
        src.busy_timeout(Duration::from_secs(10))?;
        let has_outbox: bool = src
            .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_outbox'", [], |_| Ok(()))
            .optional()?
            .is_some();
        if !has_outbox {
            return Ok((0, false));
        }
        let waiting: Vec<(i64, String)> = {
            let mut stmt = src.prepare("SELECT id, event FROM audit_outbox ORDER BY id LIMIT ?1")?;
            stmt.query_map([COLLECT_BATCH as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
        };
        let Some(last) = waiting.last().map(|w| w.0) else { return Ok((0, false)) };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut tree = self.tree.clone();
        let mut appended = 0;
        for (id, text) in &waiting {
            let event: Event = serde_json::from_str(text).unwrap_or_else(|e| Event {
                kind: "unreadable".into(),
                detail: serde_json::json!({ "error": e.to_string(), "text": text }),
                ..Event::default()
            });
            // the event's digest is part of its source: a store restored from
            // an older copy reuses outbox ids, but not with the same events
            let digest = hex(&gdx_certs::pki::sha256(text.as_bytes())[..8]);
            if let Some(leaf) = Self::append_in(&tx, &tree, &format!("{name}#{id}#{digest}"), &event)? {
                tree.push(leaf);
                appended += 1;
            }
        }
        tx.commit()?;
        self.tree = tree;
        // appended (or appended before): the outbox may forget them
        src.execute("DELETE FROM audit_outbox WHERE id <= ?1", [last])?;
        Ok((appended, waiting.len() == COLLECT_BATCH))
    }

    /// Signs a checkpoint of the current size if it is newer than the last one.
    pub fn checkpoint(&mut self, now: i64) -> Result<Option<Checkpoint>, AuditError> {
        let last: Option<i64> = self.conn.query_row("SELECT max(size) FROM checkpoints", [], |r| r.get(0))?;
        let size = self.tree.size();
        if last.is_some_and(|l| l as u64 >= size) || size == 0 {
            return Ok(None);
        }
        let root = hex(&self.tree.root());
        let note = Checkpoint::note(&self.origin, size, &root, now);
        let signature = hex(self.key.sign(note.as_bytes()).as_ref());
        self.conn.execute(
            "INSERT INTO checkpoints (size, root, at, signature) VALUES (?1, ?2, ?3, ?4)",
            params![size as i64, root, now, signature],
        )?;
        Ok(Some(Checkpoint { origin: self.origin.clone(), size, root, at: now, signature }))
    }

    /// The whole log as a bundle that verifies offline.
    pub fn bundle(&self) -> Result<Bundle, AuditError> {
        let mut stmt = self.conn.prepare("SELECT body FROM entries ORDER BY idx")?;
        let entries: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let mut stmt =
            self.conn.prepare("SELECT size, cosigner, public_key, signature FROM cosignatures ORDER BY size")?;
        let cosignatures = stmt
            .query_map([], |r| {
                Ok(BundleCosignature {
                    size: r.get::<_, i64>(0)? as u64,
                    cosigner: r.get(1)?,
                    public_key: r.get(2)?,
                    signature: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
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
        Ok(self
            .conn
            .query_row("SELECT size, root, at, signature FROM checkpoints ORDER BY size DESC LIMIT 1", [], |r| {
                self.checkpoint_row(r)
            })
            .optional()?)
    }

    fn checkpoint_row(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
        Ok(Checkpoint {
            origin: self.origin.clone(),
            size: r.get::<_, i64>(0)? as u64,
            root: r.get(1)?,
            at: r.get(2)?,
            signature: r.get(3)?,
        })
    }

    /// Every checkpoint, by size.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        let mut stmt = self.conn.prepare("SELECT size, root, at, signature FROM checkpoints ORDER BY size")?;
        let list = stmt.query_map([], |r| self.checkpoint_row(r))?.collect::<Result<_, _>>()?;
        Ok(list)
    }

    /// Entries matching `filter`, in order.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Entry>, AuditError> {
        let mut stmt = self.conn.prepare(
            "SELECT body FROM entries WHERE (?1 IS NULL OR node = ?1) AND (?2 IS NULL OR resource = ?2)
             AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5)
             AND (?6 IS NULL OR request = ?6) ORDER BY idx",
        )?;
        let bodies: Vec<String> = stmt
            .query_map(
                params![filter.node, filter.resource, filter.kind, filter.since, filter.until, filter.request],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
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
            self.conn.query_row("SELECT body FROM entries WHERE idx = ?1", [index as i64], |r| r.get(0))?;
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
        let mut stmt = self.conn.prepare("SELECT leaf FROM entries WHERE idx < ?1 ORDER BY idx")?;
        let rows: Vec<Vec<u8>> = stmt.query_map([upto as i64], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|v| v.try_into().map_err(|_| AuditError::Other("a stored leaf is not 32 bytes".into())))
            .collect()
    }
}

impl AuditLog {
    /// The parent's side of cosigning: checks a checkpoint of child hub
    /// `origin` (signature, and consistency with the last one cosigned for
    /// it), then cosigns it and records that in this log, in one
    /// transaction. Two checkpoints that cannot both be true are kept as
    /// evidence, logged as `equivocation`, and refused.
    pub fn cosign(
        &mut self,
        origin: &str,
        req: &gdx_common::wire::CosignRequest,
        now: i64,
    ) -> Result<Result<gdx_common::wire::Message, String>, AuditError> {
        use gdx_common::wire::{Cosignature, Message};
        let root = hex(&req.root);
        let note = Checkpoint::note(origin, req.size, &root, req.at);
        if UnparsedPublicKey::new(&ED25519, &req.public_key).verify(note.as_bytes(), &req.signature).is_err() {
            return Ok(Err(format!("checkpoint {} of {origin} is not signed by the key it names", req.size)));
        }
        let received = serde_json::json!({ "size": req.size, "root": root, "at": req.at,
            "public_key": hex(&req.public_key), "signature": hex(&req.signature),
            "from_size": req.from_size, "proof": req.proof.iter().map(|p| hex(p)).collect::<Vec<_>>() });
        let last: Option<(i64, String, String)> = self
            .conn
            .query_row(
                "SELECT size, root, public_key FROM cosigned WHERE origin = ?1 ORDER BY size DESC LIMIT 1",
                [origin],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let same: Option<String> = self
            .conn
            .query_row(
                "SELECT root FROM cosigned WHERE origin = ?1 AND size = ?2",
                params![origin, req.size as i64],
                |r| r.get(0),
            )
            .optional()?;
        let conflict = |what: &str, held: serde_json::Value| (what.to_owned(), held);
        let problem = match (&last, &same) {
            (Some((_, _, key)), _) if *key != hex(&req.public_key) => {
                Some(conflict("its audit key changed", serde_json::json!({ "public_key": key })))
            }
            (_, Some(r)) if *r != root => Some(conflict(
                "two different roots for the same size",
                serde_json::json!({ "size": req.size, "root": r }),
            )),
            (_, Some(_)) => None,
            (Some((size0, _, _)), None) if req.size < *size0 as u64 => {
                return Ok(Err(format!(
                    "checkpoint {} of {origin} is older than the newest cosigned ({size0})",
                    req.size
                )));
            }
            (Some((size0, _, _)), None) if req.from_size != *size0 as u64 => {
                return Ok(Ok(Message::CosignFrom(*size0 as u64)));
            }
            (Some((size0, root0, _)), None) => {
                let proof: Vec<Hash> = req.proof.iter().filter_map(|p| p.clone().try_into().ok()).collect();
                let ok = proof.len() == req.proof.len()
                    && hash_of(root0).zip(req.root.clone().try_into().ok()).is_some_and(|(r0, r1): (Hash, Hash)| {
                        merkle::verify_consistency(*size0 as u64, req.size, &proof, &r0, &r1)
                    });
                (!ok).then(|| {
                    conflict(
                        "the new checkpoint does not extend the last one cosigned",
                        serde_json::json!({ "size": size0, "root": root0 }),
                    )
                })
            }
            (None, None) => None,
        };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let event = |kind: &str, detail: serde_json::Value| Event {
            kind: kind.into(),
            at: now,
            node: Some(origin.to_owned()),
            detail,
            ..Event::default()
        };
        if let Some((what, held)) = problem {
            let refused = format!(
                "checkpoint {} of {origin} refused: {what}; the evidence is kept in the parent's audit log",
                req.size
            );
            let known: Option<i64> = tx
                .query_row(
                    "SELECT id FROM evidence WHERE origin = ?1 AND json_extract(received, '$.size') = ?2
                     AND json_extract(received, '$.root') = ?3",
                    params![origin, req.size as i64, root],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_some() {
                // kept already: a child that keeps sending it is not logged again
                return Ok(Err(refused));
            }
            tx.execute(
                "INSERT INTO evidence (origin, at, what, held, received) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![origin, now, what, held.to_string(), received.to_string()],
            )?;
            let id = tx.last_insert_rowid();
            let detail = serde_json::json!({ "what": what, "held": held, "received": received });
            let leaf = Self::append_in(&tx, &self.tree, &format!("evidence#{id}"), &event("equivocation", detail))?;
            tx.commit()?;
            self.appended(leaf);
            return Ok(Err(refused));
        }
        let signature = self.key.sign(note.as_bytes()).as_ref().to_vec();
        if same.is_none() {
            tx.execute(
                "INSERT INTO cosigned (origin, size, root, at, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![origin, req.size as i64, root, req.at, hex(&req.public_key), hex(&req.signature)],
            )?;
            let detail = serde_json::json!({ "size": req.size, "root": root, "at": req.at });
            let leaf =
                Self::append_in(&tx, &self.tree, &format!("cosign:{origin}#{}", req.size), &event("cosigned", detail))?;
            tx.commit()?;
            self.appended(leaf);
        }
        let me = gdx_common::NodeId::parse(&self.origin).map_err(|e| AuditError::Other(e.to_string()))?;
        Ok(Ok(Message::Cosigned(Cosignature {
            size: req.size,
            cosigner: me,
            public_key: self.key.public_key().as_ref().to_vec(),
            signature,
        })))
    }

    fn appended(&mut self, leaf: Option<Hash>) {
        if let Some(leaf) = leaf {
            self.tree.push(leaf);
        }
    }

    /// The child's side: its newest checkpoint, if no cosignature covers it
    /// yet, as a request with the consistency proof from `from_size`.
    pub fn cosign_request(
        &self,
        from_size: Option<u64>,
    ) -> Result<Option<gdx_common::wire::CosignRequest>, AuditError> {
        let Some(cp) = self.last_checkpoint()? else { return Ok(None) };
        let done: Option<i64> = self.conn.query_row("SELECT max(size) FROM cosignatures", [], |r| r.get(0))?;
        let done = done.unwrap_or(0) as u64;
        if done >= cp.size {
            return Ok(None);
        }
        let from = from_size.unwrap_or(done).min(cp.size);
        let leaves = self.leaves(cp.size)?;
        let proof = if from == 0 {
            Vec::new()
        } else {
            merkle::consistency_proof(&leaves, from as usize).ok_or_else(|| damaged(cp.size))?
        };
        Ok(Some(gdx_common::wire::CosignRequest {
            public_key: self.key.public_key().as_ref().to_vec(),
            size: cp.size,
            root: hash_of(&cp.root).ok_or_else(|| damaged(cp.size))?.to_vec(),
            at: cp.at,
            signature: unhex(&cp.signature).ok_or_else(|| damaged(cp.size))?,
            from_size: from,
            proof: proof.iter().map(|h| h.to_vec()).collect(),
        }))
    }

    /// Keeps the parent's cosignature of a checkpoint.
    pub fn keep_cosignature(&self, c: &gdx_common::wire::Cosignature) -> Result<(), AuditError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO cosignatures (size, cosigner, public_key, signature) VALUES (?1, ?2, ?3, ?4)",
            params![c.size as i64, c.cosigner.to_string(), hex(&c.public_key), hex(&c.signature)],
        )?;
        Ok(())
    }

    /// The evidence of equivocation kept here, as JSON lines.
    pub fn evidence(&self) -> Result<Vec<serde_json::Value>, AuditError> {
        let mut stmt = self.conn.prepare("SELECT origin, at, what, held, received FROM evidence ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(serde_json::json!({ "origin": r.get::<_, String>(0)?, "at": r.get::<_, i64>(1)?,
                "what": r.get::<_, String>(2)?, "held": r.get::<_, String>(3)?, "received": r.get::<_, String>(4)? }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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

/// An inclusion proof as `gdx-hub audit prove` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proof {
    pub entry: u64,
    pub body: String,
    pub leaf: String,
    pub proof: Vec<String>,
    pub checkpoint: Checkpoint,
    pub public_key: String,
}

/// What verification found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub checkpoints: u64,
    /// Checkpoints cosigned by the parent hub, with the cosigner's key as given.
    pub cosigned: u64,
    /// The first problem, naming the entry or checkpoint, if any.
    pub problem: Option<String>,
}

/// Verifies a bundle: every entry re-hashed and chained (index, previous
/// leaf), every checkpoint's signature and root, and each checkpoint
/// consistent with the one before (both are roots of the same entries).
pub fn verify(bundle: &Bundle) -> Verified {
    let mut out = Verified { entries: 0, checkpoints: 0, cosigned: 0, problem: None };
    let key = match unhex(&bundle.public_key) {
        Some(k) if k.len() == 32 => UnparsedPublicKey::new(&ED25519, k),
        _ => {
            out.problem = Some("the bundle's public key is not a 32-byte hex Ed25519 key".into());
            return out;
        }
    };
    let mut tree = merkle::Frontier::default();
    let mut roots: std::collections::BTreeMap<u64, Hash> = std::collections::BTreeMap::new();
    let wanted: std::collections::BTreeSet<u64> = bundle.checkpoints.iter().map(|c| c.size).collect();
    let mut prev = [0u8; 32];
    for (i, body) in bundle.entries.iter().enumerate() {
        let entry: Entry = match serde_json::from_str(body) {
            Ok(e) => e,
            Err(e) => {
                out.problem = Some(format!("entry {i} does not decode: {e}"));
                return out;
            }
        };
        if entry.index != i as u64 {
            out.problem = Some(format!(
                "entry {i} says it is entry {}: entries were deleted, inserted or swapped here",
                entry.index
            ));
            return out;
        }
        if entry.prev != hex(&prev) {
            out.problem = Some(format!(
                "entry {} was changed after it was logged (entry {i} records another hash for it)",
                i.saturating_sub(1)
            ));
            return out;
        }
        let leaf = merkle::leaf_hash(body.as_bytes());
        tree.push(leaf);
        prev = leaf;
        out.entries += 1;
        if wanted.contains(&out.entries) {
            roots.insert(out.entries, tree.root());
        }
    }
    let mut last: Option<&Checkpoint> = None;
    for cp in &bundle.checkpoints {
        let note = Checkpoint::note(&bundle.origin, cp.size, &cp.root, cp.at);
        let signed = unhex(&cp.signature).is_some_and(|s| key.verify(note.as_bytes(), &s).is_ok());
        if !signed || cp.origin != bundle.origin {
            out.problem = Some(format!("checkpoint of size {} is not signed by this hub's audit key", cp.size));
            return out;
        }
        if last.is_some_and(|l| l.size >= cp.size) {
            out.problem = Some(format!("checkpoint of size {} does not follow the one before", cp.size));
            return out;
        }
        match roots.get(&cp.size) {
            None => {
                out.problem = Some(format!(
                    "checkpoint of size {} covers entries that are missing: the log was truncated after entry {}",
                    cp.size,
                    out.entries.saturating_sub(1)
                ));
                return out;
            }
            Some(r) if hash_of(&cp.root) != Some(*r) => {
                let from = last.map_or(0, |l| l.size);
                out.problem = Some(format!(
                    "the entries do not give the root signed at size {}: an entry between {from} and {} was changed",
                    cp.size,
                    cp.size - 1
                ));
                return out;
            }
            Some(_) => {}
        }
        out.checkpoints += 1;
        last = Some(cp);
    }
    let by_size: std::collections::HashMap<u64, &Checkpoint> = bundle.checkpoints.iter().map(|c| (c.size, c)).collect();
    for c in &bundle.cosignatures {
        let Some(cp) = by_size.get(&c.size) else {
            out.problem = Some(format!("the cosignature of size {} matches no checkpoint in the bundle", c.size));
            return out;
        };
        let note = Checkpoint::note(&bundle.origin, cp.size, &cp.root, cp.at);
        let ok = unhex(&c.public_key)
            .zip(unhex(&c.signature))
            .is_some_and(|(k, s)| UnparsedPublicKey::new(&ED25519, k).verify(note.as_bytes(), &s).is_ok());
        if !ok {
            out.problem = Some(format!("the cosignature by {} of checkpoint {} does not verify", c.cosigner, c.size));
            return out;
        }
        out.cosigned += 1;
    }
    out
}

/// Entries as `gdx-hub audit list` prints them: `table`, `jsonl` or `csv`.
pub fn render(entries: &[Entry], format: &str) -> Result<String, String> {
    let detail = |e: &Event| e.detail.to_string();
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let mut out = String::new();
    match format {
        "jsonl" => {
            for e in entries {
                out += &serde_json::to_string(e).unwrap_or_default();
                out.push('\n');
            }
        }
        "csv" => {
            out += "index,time,kind,node,resource,request,detail\n";
            let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            for entry in entries {
                let e = &entry.event;
                out += &format!(
                    "{},{},{},{},{},{},{}\n",
                    entry.index,
                    gdx_common::units::format_time(e.at),
                    q(&e.kind),
                    q(&opt(&e.node)),
                    q(&opt(&e.resource)),
                    q(&opt(&e.request)),
                    q(&detail(e))
                );
            }
        }
        "table" => {
            out += &format!(
                "{:>7} {:<23} {:<10} {:<20} {:<16} {:<11} DETAIL\n",
                "INDEX", "TIME", "KIND", "NODE", "RESOURCE", "REQUEST"
            );
            for entry in entries {
                let e = &entry.event;
                out += &format!(
                    "{:>7} {:<23} {:<10} {:<20} {:<16} {:<11} {}\n",
                    entry.index,
                    gdx_common::units::format_time(e.at),
                    e.kind,
                    opt(&e.node),
                    opt(&e.resource),
                    opt(&e.request),
                    detail(e)
                );
            }
            if entries.is_empty() {
                out += "no entries match\n";
            }
        }
        other => return Err(format!("--format {other:?} is not known; use table, jsonl or csv")),
    }
    Ok(out)
}

fn load_or_make_key(path: &Path, in_use: bool) -> Result<Ed25519KeyPair, AuditError> {
    let bad = |e: String| AuditError::Other(format!("{}: {e}; restore it from backup", path.display()));
    if let Ok(pkcs8) = std::fs::read(path) {
        return Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| bad(e.to_string()));
    }
    if in_use {
        // a new key would make every checkpoint signed so far unverifiable
        return Err(bad("the audit key is missing but checkpoints were signed with it".into()));
    }
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| bad(e.to_string()))?;
    gdx_certs::files::write_new(path, pkcs8.as_ref(), true).map_err(|e| bad(e.to_string()))?;
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: usize) -> Event {
        Event {
            kind: "request".into(),
            at: 1_800_000_000 + i as i64,
            node: Some("630102/minzheng".into()),
            resource: Some("301001/000001".into()),
            request: Some(format!("630100-{i}")),
            detail: serde_json::json!({ "n": i }),
        }
    }

    fn log_with(n: usize) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path(), "630000/hub").unwrap();
        for i in 0..n {
            log.append(&format!("test#{i}"), &event(i)).unwrap();
            if i % 10 == 9 {
                log.checkpoint(1_800_000_000 + i as i64).unwrap();
            }
        }
        log.checkpoint(1_800_000_100).unwrap();
        (dir, log)
    }

    #[test]
    fn a_clean_log_verifies_and_proves_inclusion() {
        let (dir, log) = log_with(37);
        let v = verify(&log.bundle().unwrap());
        assert_eq!(v, Verified { entries: 37, checkpoints: 4, cosigned: 0, problem: None });
        let p = log.prove(20).unwrap();
        let proof: Vec<Hash> = p.proof.iter().map(|h| hash_of(h).unwrap()).collect();
        assert!(merkle::verify_inclusion(
            20,
            37,
            &merkle::leaf_hash(p.body.as_bytes()),
            &proof,
            &hash_of(&p.checkpoint.root).unwrap()
        ));
        // reopened, the frontier is rebuilt and appends continue the same tree
        drop(log);
        let mut again = AuditLog::open(dir.path(), "630000/hub").unwrap();
        assert!(!again.append("test#3", &event(3)).unwrap(), "a source appends once");
        again.append("test#37", &event(37)).unwrap();
        again.checkpoint(1_800_000_200).unwrap();
        assert_eq!(verify(&again.bundle().unwrap()).problem, None);
    }

    #[test]
    fn verify_names_what_was_tampered_with() {
        let (_dir, log) = log_with(30);
        let clean = log.bundle().unwrap();
        let problem = |f: &dyn Fn(&mut Bundle)| {
            let mut b = clean.clone();
            f(&mut b);
            verify(&b).problem.unwrap_or_default()
        };
        // one byte of an entry changed
        let changed = problem(&|b| b.entries[12] = b.entries[12].replace("630100-12", "630100-92"));
        assert!(changed.contains("entry 12 was changed"), "{changed}");
        // the last entry changed: no entry follows it, the checkpoint catches it
        let last = problem(&|b| b.entries[29] = b.entries[29].replace("630100-29", "630100-99"));
        assert!(last.contains("root signed at size 30") && last.contains("between 20 and 29"), "{last}");
        // an entry deleted
        let deleted = problem(&|b| {
            b.entries.remove(7);
        });
        assert!(deleted.contains("entry 7 says it is entry 8"), "{deleted}");
        // two entries swapped
        let swapped = problem(&|b| b.entries.swap(3, 4));
        assert!(swapped.contains("entry 3 says it is entry 4"), "{swapped}");
        // truncated
        let truncated = problem(&|b| b.entries.truncate(25));
        assert!(truncated.contains("truncated after entry 24"), "{truncated}");
        // a checkpoint replaced (root of another log, or re-signed by another key)
        let replaced = problem(&|b| b.checkpoints[1].root = b.checkpoints[2].root.clone());
        assert!(replaced.contains("checkpoint of size 20 is not signed"), "{replaced}");
        let other = log_with(30).1.bundle().unwrap();
        let foreign = problem(&|b| b.checkpoints[2] = other.checkpoints[2].clone());
        assert!(foreign.contains("checkpoint of size 30 is not signed"), "{foreign}");
    }

    #[test]
    fn a_parent_cosigns_consistent_checkpoints_and_keeps_evidence_of_a_fork() {
        use gdx_common::wire::Message;
        let parent_dir = tempfile::tempdir().unwrap();
        let mut parent = AuditLog::open(parent_dir.path(), "630000/root").unwrap();
        let (child_dir, mut child) = log_with(5);
        let cosign = |parent: &mut AuditLog, child: &AuditLog, from: Option<u64>| {
            let req = child.cosign_request(from).unwrap().unwrap();
            parent.cosign("630000/hub", &req, 1_900_000_000).unwrap()
        };
        let Ok(Message::Cosigned(c)) = cosign(&mut parent, &child, None) else { panic!("first checkpoint") };
        child.keep_cosignature(&c).unwrap();
        assert!(child.cosign_request(None).unwrap().is_none(), "nothing new to cosign");
        for i in 5..12 {
            child.append(&format!("test#{i}"), &event(i)).unwrap();
        }
        child.checkpoint(1_800_000_300).unwrap();
        // a proof from the wrong size is answered with the size the parent holds
        assert_eq!(cosign(&mut parent, &child, Some(3)).unwrap(), Message::CosignFrom(5));
        let Ok(Message::Cosigned(c)) = cosign(&mut parent, &child, None) else { panic!("extension") };
        child.keep_cosignature(&c).unwrap();
        // the parent logged what it cosigned
        let cosigned = parent.list(&Filter { kind: Some("cosigned".into()), ..Filter::default() }).unwrap();
        assert_eq!(cosigned.iter().map(|e| e.event.detail["size"].as_u64().unwrap()).collect::<Vec<_>>(), [5, 12]);
        // a fork: the same key, another history of the same length and beyond
        let fork_dir = tempfile::tempdir().unwrap();
        std::fs::copy(child_dir.path().join("audit.key"), fork_dir.path().join("audit.key")).unwrap();
        let mut fork = AuditLog::open(fork_dir.path(), "630000/hub").unwrap();
        for i in 0..14 {
            fork.append(&format!("fork#{i}"), &Event { kind: "lookup".into(), ..event(i) }).unwrap();
        }
        fork.checkpoint(1_800_000_400).unwrap();
        let refused = cosign(&mut parent, &fork, Some(12)).unwrap_err();
        assert!(refused.contains("does not extend the last one cosigned"), "{refused}");
        assert_eq!(parent.evidence().unwrap().len(), 1);
        let logged = parent.list(&Filter { kind: Some("equivocation".into()), ..Filter::default() }).unwrap();
        assert_eq!(logged.len(), 1);
        assert_eq!(verify(&parent.bundle().unwrap()).problem, None, "the parent's own log stays valid");
        // the child's bundle carries the parent's cosignatures, which verify offline
        let mut b = child.bundle().unwrap();
        assert_eq!(verify(&b).cosigned, 2);
        b.cosignatures[1].signature = b.cosignatures[0].signature.clone();
        assert!(verify(&b).problem.unwrap().contains("cosignature by 630000/root of checkpoint 12 does not verify"));
        drop(child_dir);
    }

    /// The test vector of docs/auditor-guide.md (computed there with an
    /// independent implementation) gives the same leaves, root and signature here.
    #[test]
    fn the_auditor_guide_test_vector_holds() {
        let guide = include_str!("../../docs/auditor-guide.md");
        let at = guide.find("## Appendix A").unwrap();
        let block = &guide[at..];
        let start = block.find("```\n").unwrap() + 4;
        let end = start + block[start..].find("```").unwrap();
        let entries: Vec<&str> = block[start..end].lines().collect();
        assert_eq!(entries.len(), 3);
        for line in &entries {
            let entry: Entry = serde_json::from_str(line).unwrap();
            assert_eq!(&serde_json::to_string(&entry).unwrap(), line, "this hub writes exactly these bytes");
        }
        let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e.as_bytes())).collect();
        assert_eq!(hex(&leaves[0]), "3cc377892e5b8773c114d4d101ee8b3e61fb33eff16fd2985c03c427b0ef44c0");
        assert_eq!(hex(&leaves[2]), "41e89a8c949e30f78f54014c199bb2bc0e953576e4180008503593207e2ee45b");
        let root = hex(&merkle::root(&leaves));
        assert_eq!(root, "3b0ab8a36cc716681a1aac200e74d113522df68dc319dc7f7a42fab5999a800a");
        let seed: Vec<u8> = (0u8..32).collect();
        let key = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        assert_eq!(hex(key.public_key().as_ref()), "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
        let note = Checkpoint::note("630000/hub", 3, &root, 1_795_767_302);
        assert_eq!(note.len(), 112);
        assert_eq!(
            hex(key.sign(note.as_bytes()).as_ref()),
            "45d4fe1cd7c0c6c395936fd3510db5ea94a48ee5a1c52a232f1483c2848da6407e882d9966687e51b242c8ca213dabc9902096358e498267fc2b110b93c6ca0b"
        );
        // and the bundle of these entries and that checkpoint verifies
        let bundle = Bundle {
            origin: "630000/hub".into(),
            public_key: hex(key.public_key().as_ref()),
            entries: entries.iter().map(|e| (*e).to_owned()).collect(),
            checkpoints: vec![Checkpoint {
                origin: "630000/hub".into(),
                size: 3,
                root,
                at: 1_795_767_302,
                signature: hex(key.sign(note.as_bytes()).as_ref()),
            }],
            cosignatures: vec![],
        };
        assert_eq!(verify(&bundle).problem, None);
    }
}
