//! Vaults on PostgreSQL (hub.toml `store = { kind = "postgres", … }`).
//!
//! Each department's vault is a schema of its own (`v_DIVISION_ORG`) owned
//! by a role of its own (`gdx_HUB_DIVISION_ORG`, NOLOGIN), and everything
//! done in it runs under that role (`SET LOCAL ROLE` in the transaction),
//! so one department's data cannot be reached through another's. The hub
//! logs in as a role that may create roles but inherits the rights of none
//! (NOINHERIT, not a superuser): outside a department's transaction it
//! reaches no vault. `gdx_hub.vaults` names each department's schema and
//! role.
//!
//! A changeset is applied as in a SQLite vault ([`super::vault`]): its
//! rows, the resource's sequence number, the changeset's digest and its
//! audit event in one transaction, so exactly once; a kill at any line
//! before the commit leaves nothing, after it everything. One writer per
//! vault at a time, across hub processes: a transaction-scoped advisory
//! lock on the schema. A commit is durable when it returns
//! (`synchronous_commit = on`), so no answer waits for a flush of files;
//! small changesets waiting for the same connection commit together in
//! one transaction ([`fast`]), each answered after that commit.
//!
//! Column types follow SQLite's affinities, converting as SQLite does
//! (a number into a text column becomes its text, a numeric text into an
//! integer column its number); a value PostgreSQL cannot hold (text into
//! an integer column, a NUL in text) refuses the changeset, which the agent
//! holds with the reason.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use gdx_common::data::Changeset;
use gdx_common::{DivisionCode, NodeId};
use postgres::{Client, Transaction};

use super::vault::{Applied, Head, ResourceSummary, VaultError};

mod apply;
mod fast;
mod import;
pub mod pool;
mod reads;
use apply::{Failed, apply};
pub use import::{FileResource, Imported, check_file, file_resources};
use pool::{PgPool, describe};

/// Connections open at most; a use beyond waits for one to come back (a
/// small changeset for the one its department's schema names).
const POOL: usize = 16;
/// PostgreSQL cuts longer identifiers short (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// The vaults of one hub in one PostgreSQL database.
pub struct PgVaults {
    pool: PgPool,
    /// `PostgreSQL USER@HOST:PORT/DATABASE`, for messages.
    pub where_: String,
    hub: DivisionCode,
    names: Mutex<HashMap<NodeId, Names>>,
    /// A head this process wrote of each (department, resource) it
    /// applied to, for the one-round-trip path ([`fast`]); one entry per
    /// resource of a department, as many as the catalogue holds.
    heads: Mutex<HashMap<(NodeId, String), Head>>,
    /// Changesets applied in one round trip.
    one_trip: std::sync::atomic::AtomicU64,
    /// Changesets waiting to be sent in one round trip.
    batches: fast::Batches,
}

/// A department's schema and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub schema: String,
    pub role: String,
}

impl Names {
    /// The names of `node`'s vault at the hub of `hub` (roles are the
    /// cluster's, so the hub is in the role's name).
    pub fn of(node: &NodeId, hub: DivisionCode) -> Self {
        Self {
            schema: format!("v_{}_{}", node.division(), node.org()),
            role: format!("gdx_{hub}_{}_{}", node.division(), node.org()),
        }
    }
}

/// A vault's audit outbox: the events read from it.
pub struct Outbox {
    pub node: NodeId,
    pub names: Names,
    /// (id, event), oldest first.
    pub events: Vec<(i64, String)>,
}

impl PgVaults {
    /// Connects with the URL in `url_file` (0600), checks the hub's role
    /// keeps departments apart, and makes the registry if it is missing.
    pub fn open(url_file: &Path, ca_file: Option<&Path>, hub: DivisionCode) -> Result<Self, VaultError> {
        let pool = PgPool::new(url_file, ca_file, POOL).map_err(VaultError::Postgres)?;
        let batches = fast::Batches::new(&pool);
        let vaults = Self {
            where_: pool.where_.clone(),
            pool,
            hub,
            names: Mutex::new(HashMap::new()),
            heads: Mutex::new(HashMap::new()),
            one_trip: Default::default(),
            batches,
        };
        let mut conn = vaults.pool.take().map_err(VaultError::Postgres)?;
        let client = &mut conn.client;
        let row = client
            .query_one(
                "SELECT rolsuper, rolinherit, rolcreaterole, current_user::text FROM pg_catalog.pg_roles
                 WHERE rolname = current_user",
                &[],
            )
            .map_err(|e| vaults.error(e))?;
        let (superuser, inherits, creates, user): (bool, bool, bool, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let refused = if superuser {
            Some(format!(
                "{user} is a superuser, which reaches every department's schema; log in as a role made for the hub"
            ))
        } else if inherits {
            Some(format!(
                "{user} inherits the rights of the departments' roles, so every vault would be reachable through it; run ALTER ROLE {user} NOINHERIT"
            ))
        } else if !creates {
            Some(format!("{user} may not create the departments' roles; run ALTER ROLE {user} CREATEROLE"))
        } else {
            None
        };
        if let Some(why) = refused {
            return Err(VaultError::Postgres(format!(
                "{}: {why} (docs/operator.md, \"Vaults on PostgreSQL\")",
                vaults.where_
            )));
        }
        client
            .batch_execute(
                "CREATE SCHEMA IF NOT EXISTS gdx_hub;
                 CREATE TABLE IF NOT EXISTS gdx_hub.vaults (
                     node        TEXT PRIMARY KEY,
                     schema_name TEXT NOT NULL UNIQUE,
                     role_name   TEXT NOT NULL UNIQUE
                 )",
            )
            .map_err(|e| vaults.error(e))?;
        vaults.pool.give_back(conn);
        Ok(vaults)
    }

    /// Runs `f` on a connection, returning it to the pool after.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, VaultError>) -> Result<T, VaultError> {
        let mut conn = self.pool.take().map_err(VaultError::Postgres)?;
        // a panic's connection is in an unknown state: closed, its slot freed
        let out = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut conn.client))) {
            Ok(out) => out,
            Err(panic) => {
                self.pool.discard(conn);
                std::panic::resume_unwind(panic)
            }
        };
        self.pool.give_back(conn);
        out
    }

    /// `e` as this store's error: refusals of the data final, the rest this hub's trouble.
    fn error(&self, e: postgres::Error) -> VaultError {
        let said = describe(&e);
        match e.code().map(|c| c.code()) {
            // data exceptions, integrity violations, one row twice in a statement, a key too long
            // to index: this changeset can never be applied
            Some(c) if c.starts_with("22") || c.starts_with("23") || c == "21000" || c == "54000" => {
                VaultError::Schema(format!("the vault's database cannot hold this changeset: {said}"))
            }
            Some("53100") => VaultError::Postgres(format!(
                "the disk of the hub's database server ({}) is full: {said}; it will be retried once space is freed",
                self.where_
            )),
            Some("42501") => VaultError::Postgres(format!(
                "{}: the hub's database role lacks a right it needs: {said} (docs/operator.md, \"Vaults on PostgreSQL\")",
                self.where_
            )),
            _ => VaultError::Postgres(format!("{}: {said}", self.where_)),
        }
    }

    /// The schema and role of `node`'s vault, made on first use.
    pub fn names(&self, node: &NodeId) -> Result<Names, VaultError> {
        if let Some(n) = self.names.lock().ok().and_then(|n| n.get(node).cloned()) {
            return Ok(n);
        }
        let names = self.with(|c| self.provision(c, node))?;
        if let Ok(mut known) = self.names.lock() {
            known.insert(node.clone(), names.clone());
        }
        Ok(names)
    }

    /// Makes `node`'s role, its schema owned by it, and the vault's own
    /// tables in it, in one transaction (a kill leaves none of it).
    fn provision(&self, client: &mut Client, node: &NodeId) -> Result<Names, VaultError> {
        let pg = |e| self.error(e);
        let mut tx = client.transaction().map_err(pg)?;
        // two hub processes never make the same vault at once
        tx.execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('gdx_hub.vaults'))", &[])
            .map_err(pg)?;
        if let Some(row) = tx
            .query_opt("SELECT schema_name, role_name FROM gdx_hub.vaults WHERE node = $1", &[&node.to_string()])
            .map_err(pg)?
        {
            return Ok(Names { schema: row.get(0), role: row.get(1) });
        }
        let names = Names::of(node, self.hub);
        let (s, r) = (ident(&names.schema)?, ident(&names.role)?);
        let exists = tx
            .query_opt("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = $1", &[&names.role])
            .map_err(pg)?;
        match exists.map(|r| r.get::<_, bool>(0)) {
            None => tx.batch_execute(&format!("CREATE ROLE {r} NOLOGIN")).map_err(pg)?,
            Some(false) => {}
            Some(true) => {
                return Err(VaultError::Postgres(format!(
                    "{}: a role named {} already exists and may log in, so it cannot hold {node}'s vault; the database's administrator renames or drops it",
                    self.where_, names.role
                )));
            }
        }
        // the hub may take the role on (SET ROLE) but never holds its rights otherwise
        // (PostgreSQL 16 gives each membership an INHERIT option of its own)
        let version: i32 =
            tx.query_one("SELECT pg_catalog.current_setting('server_version_num')::int", &[]).map_err(pg)?.get(0);
        let grant = if version >= 160_000 { " WITH INHERIT FALSE, SET TRUE" } else { "" };
        tx.batch_execute(&format!(
            "GRANT {r} TO CURRENT_USER{grant};
             CREATE SCHEMA IF NOT EXISTS {s} AUTHORIZATION {r};
             SET LOCAL ROLE {r};
             REVOKE ALL ON SCHEMA {s} FROM PUBLIC;
             CREATE TABLE IF NOT EXISTS {s}._gdx_resources (
                 resource      TEXT PRIMARY KEY,
                 columns       TEXT NOT NULL,
                 key           TEXT NOT NULL,
                 last_seq      BIGINT NOT NULL,
                 updated_at    BIGINT NOT NULL,
                 epoch         BIGINT NOT NULL DEFAULT 0,
                 forwarded_seq BIGINT NOT NULL DEFAULT 0,
                 forward_error TEXT
             );
             CREATE TABLE IF NOT EXISTS {s}._gdx_changesets (
                 resource TEXT NOT NULL,
                 seq      BIGINT NOT NULL,
                 digest   BYTEA NOT NULL,
                 frame    BYTEA,
                 PRIMARY KEY (resource, seq)
             );
             CREATE TABLE IF NOT EXISTS {s}.audit_outbox (id BIGSERIAL PRIMARY KEY, event TEXT NOT NULL);
             {log};
             RESET ROLE",
            log = base_log_table(s.as_str()),
        ))
        .map_err(pg)?;
        tx.execute(
            "INSERT INTO gdx_hub.vaults (node, schema_name, role_name) VALUES ($1, $2, $3)",
            &[&node.to_string(), &names.schema, &names.role],
        )
        .map_err(pg)?;
        tx.commit().map_err(pg)?;
        Ok(names)
    }

    /// The schema and role of `node`'s vault, if it has one (none is made).
    pub fn known(&self, node: &NodeId) -> Result<Option<Names>, VaultError> {
        if let Some(n) = self.names.lock().ok().and_then(|n| n.get(node).cloned()) {
            return Ok(Some(n));
        }
        let row = self.with(|c| {
            c.query_opt("SELECT schema_name, role_name FROM gdx_hub.vaults WHERE node = $1", &[&node.to_string()])
                .map_err(|e| self.error(e))
        })?;
        let names = row.map(|r| Names { schema: r.get(0), role: r.get(1) });
        if let (Some(n), Ok(mut known)) = (&names, self.names.lock()) {
            known.insert(node.clone(), n.clone());
        }
        Ok(names)
    }

    /// Every node with a vault here.
    pub fn nodes(&self) -> Result<Vec<NodeId>, VaultError> {
        let rows =
            self.with(|c| c.query("SELECT node FROM gdx_hub.vaults ORDER BY node", &[]).map_err(|e| self.error(e)))?;
        Ok(rows.iter().filter_map(|r| NodeId::parse(&r.get::<_, String>(0)).ok()).collect())
    }

    /// Runs `f` in a transaction under the role of `names`' department,
    /// committing if it succeeds.
    fn as_department<T>(
        &self,
        names: &Names,
        f: impl FnOnce(&mut Transaction<'_>, &str) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        let schema = ident(&names.schema)?;
        self.with(|client| {
            let mut tx = client.transaction().map_err(|e| self.error(e))?;
            tx.batch_execute(&as_writer(names)?).map_err(|e| self.error(e))?;
            let out = f(&mut tx, &schema)?;
            tx.commit().map_err(|e| self.error(e))?;
            Ok(out)
        })
    }

    /// Applies a changeset to its origin's vault, exactly once (as
    /// [`super::vault::Vaults::apply`]); `member`: its resource is a member
    /// of a base database, so the keys it touches are logged for the merge.
    pub fn apply(
        &self,
        cs: &Changeset,
        digest: &[u8; 32],
        frame: Option<&[u8]>,
        member: bool,
        now: i64,
    ) -> Result<Applied, VaultError> {
        let names = self.names(&cs.origin)?;
        let at = (cs.origin.clone(), cs.resource.as_str().to_owned());
        let heads = || self.heads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // on the head this process last wrote, in one round trip (a member's keys are logged the ordinary way)
        let head = if member { None } else { heads().get(&at).cloned() };
        // in a group with the others waiting for the connection its schema names (`fast::Batches`)
        if let Some((sql, next)) = head.and_then(|h| fast::statements(&names, &h, cs, digest, frame, now))
            && self.batches.commit(&self.pool, &names.schema, sql)
        {
            heads().insert(at, next);
            self.one_trip.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(Applied::Applied);
        }
        let applied = self
            .as_department(&names, |tx, s| apply(tx, s, cs, digest, frame, member, now).map_err(|e| self.failed(e)));
        match &applied {
            Ok((Applied::Applied, Some(head))) => heads().insert(at, head.clone()),
            _ => heads().remove(&at),
        };
        applied.map(|(applied, _)| applied)
    }

    /// How many changesets this process applied in one round trip.
    pub fn applied_in_one_round_trip(&self) -> u64 {
        self.one_trip.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many transactions of the one-round-trip path this process sent
    /// (each for a group of changesets, committed or rolled back), and how
    /// many changesets wait to be sent.
    pub fn group_commits(&self) -> (u64, usize) {
        self.batches.counts()
    }

    /// Which of the pool's connections `node`'s small changesets go
    /// through (its vault need not exist yet).
    pub fn connection_of(&self, node: &NodeId) -> Result<usize, VaultError> {
        let names = self.known(node)?.unwrap_or_else(|| Names::of(node, self.hub));
        Ok(self.pool.slot_of(&names.schema))
    }

    fn failed(&self, e: Failed) -> VaultError {
        match e {
            Failed::Pg(e) => self.error(e),
            Failed::Vault(e) => e,
        }
    }

    /// Up to `limit` audit events waiting in the vault of each of `nodes`
    /// (those that have one), oldest first: every vault read under its own
    /// role, all in one transaction of one round trip.
    pub fn waiting(&self, nodes: &[NodeId], limit: usize) -> Result<Vec<Outbox>, VaultError> {
        let mut boxes = Vec::new();
        for node in nodes {
            if let Some(names) = self.known(node)? {
                boxes.push(Outbox { node: node.clone(), names, events: Vec::new() });
            }
        }
        if boxes.is_empty() {
            return Ok(boxes);
        }
        let mut sql = String::new();
        for (k, b) in boxes.iter().enumerate() {
            sql += &format!(
                "SET LOCAL ROLE {}; SELECT {k}, id, event FROM {}.audit_outbox ORDER BY id LIMIT {limit};\n",
                ident(&b.names.role)?,
                ident(&b.names.schema)?
            );
        }
        let rows = self.in_one_transaction(&sql)?;
        for row in rows {
            let (Some(k), Some(id), Some(event)) = (row.first(), row.get(1), row.get(2)) else { continue };
            let (Ok(k), Ok(id)) = (k.parse::<usize>(), id.parse::<i64>()) else { continue };
            if let Some(b) = boxes.get_mut(k) {
                b.events.push((id, event.clone()));
            }
        }
        Ok(boxes)
    }

    /// Forgets each outbox's events (by their ids), once the log holds them:
    /// one transaction, one round trip.
    pub fn forget(&self, boxes: &[Outbox]) -> Result<(), VaultError> {
        let mut sql = String::new();
        for b in boxes.iter().filter(|b| !b.events.is_empty()) {
            let ids: Vec<String> = b.events.iter().map(|(id, _)| id.to_string()).collect();
            sql += &format!(
                "SET LOCAL ROLE {}; DELETE FROM {}.audit_outbox WHERE id IN ({});\n",
                ident(&b.names.role)?,
                ident(&b.names.schema)?,
                ids.join(",")
            );
        }
        if !sql.is_empty() {
            self.in_one_transaction(&sql)?;
        }
        Ok(())
    }

    /// Runs `sql` (statements, no parameters) in one transaction, sent at
    /// once; returns the rows it gave, as text.
    fn in_one_transaction(&self, sql: &str) -> Result<Vec<Vec<String>>, VaultError> {
        self.with(|client| {
            let mut tx = client.transaction().map_err(|e| self.error(e))?;
            let said = tx.simple_query(sql).map_err(|e| self.error(e))?;
            tx.commit().map_err(|e| self.error(e))?;
            Ok(said
                .into_iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).unwrap_or_default().to_owned()).collect())
                    }
                    _ => None,
                })
                .collect())
        })
    }

    /// When each resource of `node`'s vault last changed (resource, Unix seconds).
    pub fn last_changes(&self, node: &NodeId) -> Result<HashMap<String, i64>, VaultError> {
        let Some(names) = self.known(node)? else { return Ok(HashMap::new()) };
        self.as_department(&names, |tx, s| {
            let rows = tx
                .query(&format!("SELECT resource, updated_at FROM {s}._gdx_resources"), &[])
                .map_err(|e| self.error(e))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Every resource of `node`'s vault, with its rows.
    pub fn summaries(&self, node: &NodeId) -> Result<Vec<ResourceSummary>, VaultError> {
        let Some(names) = self.known(node)? else { return Ok(Vec::new()) };
        self.as_department(&names, |tx, s| {
            let pg = |e| self.error(e);
            let list = tx
                .query(&format!("SELECT resource, last_seq, updated_at FROM {s}._gdx_resources ORDER BY resource"), &[])
                .map_err(pg)?;
            let mut out = Vec::new();
            for r in list {
                let resource: String = r.get(0);
                let rows: i64 =
                    tx.query_one(&format!("SELECT count(*) FROM {s}.{}", ident(&resource)?), &[]).map_err(pg)?.get(0);
                out.push(ResourceSummary { resource, rows, last_seq: r.get(1), updated_at: r.get(2) });
            }
            Ok(out)
        })
    }
}

impl PgVaults {
    /// The epoch, last applied number and time of change of `resource` in
    /// `node`'s schema, if it has any.
    pub fn head(&self, node: &NodeId, resource: &str) -> Result<Option<(i64, i64, i64)>, VaultError> {
        let Some(names) = self.known(node)? else { return Ok(None) };
        self.as_department(&names, |tx, s| {
            let row = tx
                .query_opt(
                    &format!("SELECT epoch, last_seq, updated_at FROM {s}._gdx_resources WHERE resource = $1"),
                    &[&resource],
                )
                .map_err(|e| self.error(e))?;
            Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
        })
    }

    /// The signed frame of changeset `seq` of `resource` in `node`'s vault:
    /// None when there is no such changeset, Some(None) when it was kept without its frame.
    pub fn frame(&self, node: &NodeId, resource: &str, seq: i64) -> Result<Option<Option<Vec<u8>>>, VaultError> {
        let Some(names) = self.known(node)? else { return Ok(None) };
        self.as_department(&names, |tx, s| {
            let row = tx
                .query_opt(
                    &format!("SELECT frame FROM {s}._gdx_changesets WHERE resource = $1 AND seq = $2"),
                    &[&resource, &seq],
                )
                .map_err(|e| self.error(e))?;
            Ok(row.map(|r| r.get(0)))
        })
    }
}

/// The log of the keys a base database's member resources changed (see
/// [`super::vault::Vaults::base_log`]), in schema `s` (quoted).
pub(super) fn base_log_table(s: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {s}._gdx_base_log (
             id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
             resource TEXT NOT NULL, seq BIGINT NOT NULL, at BIGINT NOT NULL, key TEXT)"
    )
}

/// The statements that begin a write to the vault of `names`, inside its
/// transaction: the department's role, and the vault's lock (one writer per
/// vault whichever hub process; every path to a vault takes this one).
pub(super) fn as_writer(names: &Names) -> Result<String, VaultError> {
    let (schema, role) = (ident(&names.schema)?, ident(&names.role)?);
    Ok(format!(
        "SET LOCAL ROLE {role}; SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext({}))",
        literal(&schema)
    ))
}

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `name` quoted as an SQL identifier; a name PostgreSQL would cut short
/// is refused.
pub fn ident(name: &str) -> Result<String, VaultError> {
    if name.len() > MAX_IDENTIFIER || name.is_empty() || name.contains('\0') {
        return Err(VaultError::Schema(format!(
            "the name {name:?} cannot be a PostgreSQL table or column name (1 to {MAX_IDENTIFIER} bytes, no NUL); rename it at the source"
        )));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_bounded() {
        assert_eq!(ident("姓名").unwrap(), "\"姓名\"");
        assert_eq!(ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert!(ident(&"名".repeat(22)).is_err(), "66 bytes are cut short by PostgreSQL");
        assert!(ident("").is_err());
        let n = Names::of(&NodeId::parse("632522/gongan").unwrap(), DivisionCode::parse("630000").unwrap());
        assert_eq!(n, Names { schema: "v_632522_gongan".into(), role: "gdx_630000_632522_gongan".into() });
    }
}
