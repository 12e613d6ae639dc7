//! `hub.db`: the hub's SQLite record of enrolment tokens, nodes and the
//! certificates issued to them.
//!
//! The database is shared by `gdx-hub run` and the operator's commands
//! (`token`, `revoke`, `nodes`), so it runs in WAL mode with a busy timeout.
//! Every change is one transaction: a kill at any point leaves either the
//! old or the new state. Token secrets are stored only as SHA-256 hashes.

use super::HubPaths;
use super::db::{Db, DbError, Sql, Tx, Which};
use crate::args;
use gdx_common::{NodeId, Role};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    id            TEXT PRIMARY KEY,
    secret_sha256 BLOB NOT NULL,
    node          TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    -- the public key the token was spent on, and the certificate issued,
    -- so a node that lost the answer can fetch the same certificate again
    spent_key     BLOB,
    issued_cert   BLOB,
    -- for a child hub: the intermediate CA certificate issued with it
    issued_ca     BLOB,
    -- a request waiting for an offline CA key
    pending_csr   BLOB
);
CREATE TABLE IF NOT EXISTS nodes (
    node        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL,
    connected   INTEGER NOT NULL DEFAULT 0,
    peer_addr   TEXT,
    last_seen   INTEGER
);
CREATE TABLE IF NOT EXISTS certs (
    serial     TEXT PRIMARY KEY,
    node       TEXT NOT NULL,
    role       TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS certs_node ON certs(node);
-- nodes of child hubs' subtrees, as the child last reported them
CREATE TABLE IF NOT EXISTS remote_nodes (
    node        TEXT PRIMARY KEY,
    via         TEXT NOT NULL,
    role        TEXT NOT NULL,
    serial      TEXT,
    not_after   INTEGER,
    revoked_at  INTEGER,
    state       TEXT NOT NULL,
    last_seen   INTEGER,
    reported_at INTEGER NOT NULL
);
-- certificates revoked below, as child hubs report them: refused here too
CREATE TABLE IF NOT EXISTS remote_revocations (
    serial TEXT PRIMARY KEY,
    via    TEXT NOT NULL
);
-- nodes of a child's subtree revoked here, to be passed down to the child
CREATE TABLE IF NOT EXISTS revoke_below (
    node       TEXT PRIMARY KEY,
    revoked_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- each stretch of time a node was connected here (until NULL: still is), for evaluation
CREATE TABLE IF NOT EXISTS connections (
    node  TEXT NOT NULL,
    since INTEGER NOT NULL,
    until INTEGER
);
CREATE INDEX IF NOT EXISTS connections_node ON connections (node, since);
";

/// A hub's heartbeat older than this means `gdx-hub run` is not running.
pub const HEARTBEAT_STALE_SECS: i64 = 10;

/// Failures of the hub database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite or PostgreSQL failed.
    #[error("{}", crate::store::db::failed("hub", .0))]
    Db(#[from] DbError),
}

/// One row of `tokens`.
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub secret_sha256: Vec<u8>,
    pub node: String,
    pub role: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub spent_key: Option<Vec<u8>>,
    pub issued_cert: Option<Vec<u8>>,
    pub issued_ca: Option<Vec<u8>>,
}

/// One node with its newest certificate, for listings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeRow {
    pub node: String,
    pub role: String,
    pub division: String,
    pub division_name: String,
    pub enrolled_at: i64,
    pub cert_serial: Option<String>,
    pub cert_not_after: Option<i64>,
    pub revoked_at: Option<i64>,
    pub connected: bool,
    pub peer_addr: Option<String>,
    pub last_seen: Option<i64>,
}

/// A node of a child hub's subtree, as last reported.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RemoteNode {
    pub node: String,
    pub via: String,
    pub role: String,
    pub serial: Option<String>,
    pub not_after: Option<i64>,
    pub revoked_at: Option<i64>,
    pub state: String,
    pub last_seen: Option<i64>,
    pub reported_at: i64,
}

/// The hub database.
pub struct Store {
    pub(super) db: Db,
}

impl Store {
    /// Opens (creating if needed) the hub database where hub.toml keeps
    /// the hub's stores: `hub.db`, or the schema `gdx_hub` on PostgreSQL.
    pub fn open(paths: &HubPaths) -> Result<Self, StoreError> {
        Self::made(Db::open(paths, Which::Hub, &Self::schema())?)
    }

    /// Opens (creating if needed) the SQLite database at `path`.
    pub fn open_file(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::made(Db::sqlite(path, &Self::schema())?)
    }

    /// Every table of the hub database.
    pub(crate) fn schema() -> String {
        [
            SCHEMA,
            crate::store::outbox::OUTBOX_SQL,
            super::sessions::SESSIONS_SQL,
            super::quality::QUALITY_SQL,
            super::observations::OBSERVATIONS_SQL,
            super::renewals::RENEWALS_SQL,
        ]
        .concat()
    }

    fn made(db: Db) -> Result<Self, StoreError> {
        // a hub.db made before requests could wait for an offline CA key
        if !db.has_column("tokens", "pending_csr")? {
            db.execute_batch("ALTER TABLE tokens ADD COLUMN pending_csr BLOB")?;
        }
        // child hubs joined before their intermediate CA was recorded: record it now, from the token spent
        let missing: Vec<(String, Vec<u8>, i64)> = db.query(
            "SELECT node, issued_ca, used_at FROM tokens WHERE issued_ca IS NOT NULL AND used_at IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM certs c WHERE c.node = tokens.node AND c.role = 'ca')",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        for (node, ca, at) in missing {
            record_ca(&db, &node, &ca, at)?;
        }
        Ok(Self { db })
    }

    /// True when every certificate of `node` issued here is revoked or
    /// expired (a node never enrolled here is not revoked).
    pub fn revoked_node(&self, node: &NodeId, now: i64) -> Result<bool, StoreError> {
        let (all, live): (i64, i64) = self.db.query_row(
            "SELECT count(*), count(*) FILTER (WHERE revoked_at IS NULL AND not_after > ?2) FROM certs WHERE node = ?1",
            args![node.to_string(), now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(all > 0 && live == 0)
    }

    /// Records a new token.
    pub fn add_token(
        &self,
        id: &str,
        secret_sha256: &[u8],
        node: &NodeId,
        role: Role,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO tokens (id, secret_sha256, node, role, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args![id, secret_sha256, node.to_string(), role.as_str(), now, expires_at],
        )?;
        Ok(())
    }

    /// Keeps the request that spends token `id` until the CA key is brought
    /// in; a later request with the token replaces it.
    pub fn queue_request(tx: &Tx<'_>, id: &str, csr_der: &[u8]) -> Result<(), StoreError> {
        tx.execute("UPDATE tokens SET pending_csr = ?2 WHERE id = ?1 AND used_at IS NULL", args![id, csr_der])?;
        Ok(())
    }

    /// The requests waiting for the CA key: token id and CSR.
    pub fn queued_requests(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self.db.query(
            "SELECT id, pending_csr FROM tokens WHERE pending_csr IS NOT NULL AND used_at IS NULL ORDER BY created_at",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Runs `f` in a write transaction (one writer at a time).
    pub fn transaction<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.db.write(f)
    }

    /// Looks a token up by id.
    pub fn token(tx: &Tx<'_>, id: &str) -> Result<Option<TokenRow>, StoreError> {
        Ok(tx.query_opt(
                "SELECT secret_sha256, node, role, expires_at, used_at, spent_key, issued_cert, issued_ca FROM tokens WHERE id = ?1",
                args![id],
                |r| {
                    Ok(TokenRow {
                        secret_sha256: r.get(0)?,
                        node: r.get(1)?,
                        role: r.get(2)?,
                        expires_at: r.get(3)?,
                        used_at: r.get(4)?,
                        spent_key: r.get(5)?,
                        issued_cert: r.get(6)?,
                        issued_ca: r.get(7)?,
                    })
                },
            )?)
    }

    /// Marks a token spent and records the node and its new certificate.
    #[allow(clippy::too_many_arguments)]
    pub fn record_enrolment(
        tx: &Tx<'_>,
        token_id: &str,
        public_key: &[u8],
        cert_der: &[u8],
        ca_der: Option<&[u8]>,
        node: &NodeId,
        role: Role,
        serial: &str,
        not_after: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        tx.execute(
            "UPDATE tokens SET used_at = ?2, spent_key = ?3, issued_cert = ?4, issued_ca = ?5 WHERE id = ?1",
            args![token_id, now, public_key, cert_der, ca_der],
        )?;
        tx.execute(
            "INSERT INTO nodes (node, role, enrolled_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(node) DO UPDATE SET role = excluded.role, enrolled_at = excluded.enrolled_at",
            args![node.to_string(), role.as_str(), now],
        )?;
        tx.execute(
            "INSERT INTO certs (serial, node, role, issued_at, not_after) VALUES (?1, ?2, ?3, ?4, ?5)",
            args![serial, node.to_string(), role.as_str(), now, not_after],
        )?;
        if let Some(ca) = ca_der {
            record_ca(tx, &node.to_string(), ca, now)?;
        }
        crate::store::outbox::note(
            tx,
            &gdx_common::audit::Event {
                kind: "enrolled".into(),
                at: now,
                node: Some(node.to_string()),
                detail: serde_json::json!({ "role": role.as_str(), "serial": serial, "not_after": not_after }),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Revokes every unrevoked certificate of `node`; returns how many.
    pub fn revoke(&self, node: &NodeId, now: i64) -> Result<usize, StoreError> {
        self.db.write(|tx| {
            let n = tx.execute(
                "UPDATE certs SET revoked_at = ?2 WHERE node = ?1 AND revoked_at IS NULL",
                args![node.to_string(), now],
            )?;
            note_revoked(tx, node, n, "by this hub's operator", now)?;
            super::renewals::revoke_renewed(tx, now)?;
            Ok(n)
        })
    }

    /// True when the node has ever been enrolled here.
    pub fn knows_node(&self, node: &NodeId) -> Result<bool, StoreError> {
        Ok(self.db.query_opt("SELECT 1 FROM nodes WHERE node = ?1", args![node.to_string()], |_| Ok(()))?.is_some())
    }

    /// Serials of every revoked certificate: issued here, or reported revoked
    /// by a child hub, or the one a child hub reported for a node when it
    /// was revoked here (those issued to it before are refused by time:
    /// [`Store::revoked_below_all`]).
    pub fn revoked_serials(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.db.query(
            "SELECT serial FROM certs WHERE revoked_at IS NOT NULL UNION SELECT serial FROM remote_revocations",
            args![],
            |r| r.get(0),
        )?)
    }

    /// Records a child hub's report of its subtree.
    pub fn record_report(
        &self,
        via: &NodeId,
        report: &gdx_common::wire::NodeReport,
        now: i64,
    ) -> Result<(), StoreError> {
        self.db.write(|tx| {
        for n in &report.nodes {
            if !via.division().contains(n.node.division()) {
                continue;
            }
            tx.execute(
                "INSERT INTO remote_nodes (node, via, role, serial, not_after, revoked_at, state, last_seen, reported_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(node) DO UPDATE SET via = excluded.via, role = excluded.role, serial = excluded.serial,
                    not_after = excluded.not_after, revoked_at = excluded.revoked_at, state = excluded.state,
                    last_seen = excluded.last_seen, reported_at = excluded.reported_at",
                args![
                    n.node.to_string(),
                    via.to_string(),
                    n.role.as_str(),
                    n.serial,
                    n.not_after,
                    n.revoked_at,
                    n.state,
                    n.last_seen,
                    now
                ],
            )?;
        }
        // only the revoked certificates of nodes in the child's own subtree
        for n in report.nodes.iter().filter(|n| n.revoked_at.is_some() && via.division().contains(n.node.division())) {
            if let Some(serial) = &n.serial {
                tx.execute(
                    "INSERT INTO remote_revocations (serial, via) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    args![serial, via.to_string()],
                )?;
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            args![format!("backlog {via}"), report.backlog.to_string()],
        )?;
            Ok(())
        })
    }

    /// Every node of a child hub's subtree revoked here, with when: a
    /// certificate issued to it up to then is revoked, one issued after (a
    /// new enrolment at the child) is not.
    pub fn revoked_below_all(&self) -> Result<Vec<(NodeId, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            self.db.query("SELECT node, revoked_at FROM revoke_below", args![], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.into_iter().filter_map(|(n, at)| Some((NodeId::parse(&n).ok()?, at))).collect())
    }

    /// Nodes of `child`'s subtree revoked here, with when, to pass down.
    pub fn revoked_below(&self, child: &NodeId) -> Result<Vec<(NodeId, i64)>, StoreError> {
        let mut all = self.revoked_below_all()?;
        all.retain(|(n, _)| child.division().contains(n.division()) && n != child);
        Ok(all)
    }

    /// Revokes the certificates of `node` issued at or before `at` (a
    /// revocation made above applies to what existed then, not to a later
    /// enrolment); returns how many.
    pub fn revoke_issued_before(&self, node: &NodeId, at: i64, now: i64) -> Result<usize, StoreError> {
        self.db.write(|tx| {
            let n = tx.execute(
                "UPDATE certs SET revoked_at = ?3 WHERE node = ?1 AND issued_at <= ?2 AND revoked_at IS NULL",
                args![node.to_string(), at, now],
            )?;
            note_revoked(tx, node, n, "by the parent hub's operator", now)?;
            super::renewals::revoke_renewed(tx, now)?;
            Ok(n)
        })
    }

    /// Serials of the unrevoked hub certificates issued here: those a child hub may connect with.
    pub fn hub_serials(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .db
            .query("SELECT serial FROM certs WHERE role = 'hub' AND revoked_at IS NULL", args![], |r| r.get(0))?)
    }

    /// Divisions of the child hubs enrolled here and not revoked.
    pub fn child_hubs(&self) -> Result<Vec<gdx_common::DivisionCode>, StoreError> {
        let rows: Vec<String> = self.db.query(
            "SELECT n.node FROM nodes n WHERE n.role = 'hub'
             AND EXISTS (SELECT 1 FROM certs c WHERE c.node = n.node AND c.revoked_at IS NULL)",
            args![],
            |r| r.get(0),
        )?;
        Ok(rows.iter().filter_map(|n| NodeId::parse(n).ok()).map(|n| n.division()).collect())
    }

    /// The child hub that reported `node`, if any.
    pub fn remote_via(&self, node: &NodeId) -> Result<Option<String>, StoreError> {
        Ok(self.db.query_opt("SELECT via FROM remote_nodes WHERE node = ?1", args![node.to_string()], |r| r.get(0))?)
    }

    /// Revokes a node of a child hub's subtree: refused here at once, and
    /// passed down to the child with its next report.
    pub fn revoke_below(&self, node: &NodeId, now: i64) -> Result<bool, StoreError> {
        self.db.write(|tx| {
            let n = tx.execute(
                // revoked again (after a new enrolment below): from now, covering that one too
                "INSERT INTO revoke_below (node, revoked_at) VALUES (?1, ?2)
                 ON CONFLICT(node) DO UPDATE SET revoked_at = excluded.revoked_at",
                args![node.to_string(), now],
            )?;
            // the certificate the child last reported for it, refused by its serial too
            tx.execute(
                "INSERT INTO remote_revocations (serial, via) SELECT serial, via FROM remote_nodes
                 WHERE node = ?1 AND serial IS NOT NULL ON CONFLICT DO NOTHING",
                args![node.to_string()],
            )?;
            note_revoked(tx, node, n, "by this hub's operator, for the child hub below", now)?;
            Ok(n > 0)
        })
    }

    /// The nodes child hubs reported, by node id.
    pub fn remote_nodes(&self) -> Result<Vec<RemoteNode>, StoreError> {
        Ok(self.db.query(
            // revoked: as the child reports it, or the certificate it reported when the node was revoked
            // here (a certificate issued to the node since, a new enrolment below, is not)
            "SELECT r.node, r.via, r.role, r.serial, r.not_after,
                    coalesce(r.revoked_at, CASE WHEN r.serial IN (SELECT serial FROM remote_revocations) THEN b.revoked_at END),
                    r.state, r.last_seen, r.reported_at
             FROM remote_nodes r LEFT JOIN revoke_below b ON b.node = r.node ORDER BY r.node",
            args![],
            |r| {
                Ok(RemoteNode {
                    node: r.get(0)?,
                    via: r.get(1)?,
                    role: r.get(2)?,
                    serial: r.get(3)?,
                    not_after: r.get(4)?,
                    revoked_at: r.get(5)?,
                    state: r.get(6)?,
                    last_seen: r.get(7)?,
                    reported_at: r.get(8)?,
                })
            },
        )?)
    }

    /// Records that `node` connected from `addr` or went away.
    pub fn set_connected(
        &self,
        node: &NodeId,
        connected: bool,
        addr: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE nodes SET connected = ?2, peer_addr = COALESCE(?3, peer_addr), last_seen = ?4 WHERE node = ?1",
            args![node.to_string(), connected, addr, now],
        )?;
        match connected {
            true => self.db.execute(
                "INSERT INTO connections (node, since) SELECT CAST(?1 AS TEXT), CAST(?2 AS BIGINT)
                 WHERE NOT EXISTS (SELECT 1 FROM connections WHERE node = ?1 AND until IS NULL)",
                args![node.to_string(), now],
            )?,
            false => self.db.execute(
                "UPDATE connections SET until = ?2 WHERE node = ?1 AND until IS NULL",
                args![node.to_string(), now],
            )?,
        };
        Ok(())
    }

    /// The stretches `node` was connected here that overlap `from..to`
    /// (Unix seconds), each cut to it (one still open runs to `to`), and
    /// where the observed window starts: `from`, or later when this hub
    /// began logging connections later. None when nothing of the window was
    /// observed: the node never connected here, or the log began after it.
    #[allow(clippy::type_complexity)]
    pub fn connected_during(
        &self,
        node: &NodeId,
        from: i64,
        to: i64,
    ) -> Result<Option<(i64, Vec<(i64, i64)>)>, StoreError> {
        let (logged, began): (i64, Option<i64>) = self.db.query_row(
            "SELECT (SELECT count(*) FROM connections WHERE node = ?1), (SELECT min(since) FROM connections)",
            args![node.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let Some(began) = began.filter(|b| logged > 0 && *b < to) else { return Ok(None) };
        let from = from.max(began);
        let rows = self.db.query(
            "SELECT CASE WHEN since > ?2 THEN since ELSE ?2 END, CASE WHEN coalesce(until, ?3) < ?3 THEN until ELSE ?3 END
             FROM connections WHERE node = ?1 AND since < ?3 AND coalesce(until, ?3) > ?2 ORDER BY since",
            args![node.to_string(), from, to],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Some((from, rows)))
    }

    /// Refreshes `last_seen` of every connected node.
    pub fn touch_connected(&self, nodes: &[NodeId], now: i64) -> Result<(), StoreError> {
        for n in nodes {
            self.db.execute("UPDATE nodes SET last_seen = ?2 WHERE node = ?1", args![n.to_string(), now])?;
        }
        Ok(())
    }

    /// Marks every node disconnected (at start-up: no connection survives a restart).
    pub fn reset_connections(&self) -> Result<(), StoreError> {
        self.db.execute("UPDATE nodes SET connected = 0", args![])?;
        // the hub stopped: what was open ended at its last heartbeat, as far as anyone can tell
        self.db.execute(
            "UPDATE connections SET until = CASE WHEN beat.at > since THEN beat.at ELSE since END
             FROM (SELECT coalesce((SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'heartbeat'), 0) AS at) AS beat
             WHERE until IS NULL",
            args![],
        )?;
        Ok(())
    }

    /// Writes the running hub's heartbeat.
    pub fn heartbeat(&self, now: i64) -> Result<(), StoreError> {
        self.set_meta("heartbeat", &now.to_string())
    }

    /// True when `gdx-hub run` wrote a heartbeat recently.
    pub fn hub_running(&self, now: i64) -> Result<bool, StoreError> {
        let beat: Option<i64> = self.meta("heartbeat")?.and_then(|v| v.parse().ok());
        Ok(beat.is_some_and(|b| now - b <= HEARTBEAT_STALE_SECS))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            args![key, value],
        )?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.db.query_opt("SELECT value FROM meta WHERE key = ?1", args![key], |r| r.get(0))?)
    }

    /// Every enrolled node with its newest certificate, by node id.
    pub fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        Ok(self.db.query(
            "SELECT n.node, n.role, n.enrolled_at, c.serial, c.not_after, c.revoked_at, n.connected, n.peer_addr, n.last_seen
             FROM nodes n
             LEFT JOIN certs c ON c.serial = (SELECT serial FROM certs WHERE node = n.node AND role != 'ca'
                                              ORDER BY issued_at DESC, not_after DESC, serial DESC LIMIT 1)
             ORDER BY n.node",
            args![],
            |r| {
            let node: String = r.get(0)?;
            let division = node.split('/').next().unwrap_or_default().to_owned();
            let division_name = gdx_common::DivisionCode::parse(&division).map(|d| d.name()).unwrap_or_default();
            Ok(NodeRow {
                node,
                role: r.get(1)?,
                division,
                division_name,
                enrolled_at: r.get(2)?,
                cert_serial: r.get(3)?,
                cert_not_after: r.get(4)?,
                revoked_at: r.get(5)?,
                connected: r.get(6)?,
                peer_addr: r.get(7)?,
                last_seen: r.get(8)?,
                })
            },
        )?)
    }
}

/// Records a revocation in the audit outbox (when it revoked anything).
fn note_revoked(tx: &Tx<'_>, node: &NodeId, n: usize, by: &str, now: i64) -> Result<(), DbError> {
    if n == 0 {
        return Ok(());
    }
    crate::store::outbox::note(
        tx,
        &gdx_common::audit::Event {
            kind: "revoked".into(),
            at: now,
            node: Some(node.to_string()),
            detail: serde_json::json!({ "certificates": n, "by": by }),
            ..Default::default()
        },
    )
}

/// Records the intermediate CA issued to child hub `node`, so that revoking
/// the hub revokes it too (and everything it issued is refused).
pub(super) fn record_ca(db: &impl Sql, node: &str, ca_der: &[u8], at: i64) -> Result<(), StoreError> {
    if let Ok(gdx_certs::Identity::Ca { serial, not_after, .. }) = gdx_certs::Identity::of(ca_der) {
        db.execute(
            "INSERT INTO certs (serial, node, role, issued_at, not_after) VALUES (?1, ?2, 'ca', ?3, ?4)
             ON CONFLICT DO NOTHING",
            args![serial, node, at, not_after],
        )?;
    }
    Ok(())
}
