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
//! (`synchronous_commit = on`), so nothing waits for a group flush.
//!
//! Column types follow SQLite's affinities, converting as SQLite does
//! (a number into a text column becomes its text, a numeric text into an
//! integer column its number); a value PostgreSQL cannot hold (text into
//! an integer column, a NUL in text) refuses the changeset, which the agent
//! holds with the reason.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use gdx_common::data::{Change, Changeset, Column, Value, cmp_change_keys};
use gdx_common::{DivisionCode, NodeId};
use postgres::types::{ToSql, Type};
use postgres::{Client, Transaction};

use super::vault::{Applied, Head, ResourceSummary, Then, VaultError, duplicate, plan};

/// Connections open at most; a use beyond waits for one to come back.
const POOL: usize = 16;
/// How long a use waits for a connection before answering "retry".
const POOL_WAIT: Duration = Duration::from_secs(30);
/// A run of upserts this long goes through `COPY` rather than statements.
const COPY_FROM: usize = 512;
/// Rows an upsert statement carries at most.
const UPSERT_ROWS: usize = 32;
/// PostgreSQL's limit on a statement's parameters is 65,535; kept below.
const MAX_PARAMETERS: usize = 60_000;
/// PostgreSQL cuts longer identifiers short (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// The vaults of one hub in one PostgreSQL database.
pub struct PgVaults {
    config: postgres::Config,
    /// None: `sslmode=disable`.
    tls: Option<rustls::ClientConfig>,
    /// `PostgreSQL USER@HOST:PORT/DATABASE`, for messages.
    pub where_: String,
    hub: DivisionCode,
    pool: Mutex<Pool>,
    returned: std::sync::Condvar,
    names: Mutex<HashMap<NodeId, Names>>,
}

/// The idle connections, and how many are open (idle or in use).
#[derive(Default)]
struct Pool {
    idle: Vec<Client>,
    open: usize,
}

impl Drop for PgVaults {
    /// A `postgres::Client` closes itself on a runtime of its own, which
    /// panics on a thread that drives the hub's runtime: they go on a
    /// thread of their own.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.pool.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).idle);
        if !idle.is_empty() {
            let _ = std::thread::Builder::new().name("gdx-pg-close".into()).spawn(move || drop(idle));
        }
    }
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

impl PgVaults {
    /// Connects with the URL in `url_file` (0600), checks the hub's role
    /// keeps departments apart, and makes the registry if it is missing.
    pub fn open(url_file: &Path, ca_file: Option<&Path>, hub: DivisionCode) -> Result<Self, VaultError> {
        let url = gdx_files::read_private(url_file).map_err(|e| {
            VaultError::Postgres(format!("cannot read the database URL from {}: {e}", url_file.display()))
        })?;
        let mut config: postgres::Config = url.trim().parse().map_err(|e| {
            VaultError::Postgres(format!(
                "{} does not hold a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE): {e}",
                url_file.display()
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // a cut to the server ends a connection within about a minute, never holds a lock for ever
        config.keepalives(true).keepalives_idle(Duration::from_secs(20)).tcp_user_timeout(Duration::from_secs(60));
        config.application_name("gdx-hub");
        let tls = match config.get_ssl_mode() {
            postgres::config::SslMode::Disable => None,
            _ => {
                let roots = ca_file.map(read_ca).transpose()?;
                Some(
                    gdx_certs::tls::database_client_config(roots.as_deref())
                        .map_err(|e| VaultError::Postgres(e.to_string()))?,
                )
            }
        };
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_default();
        let where_ = format!(
            "PostgreSQL {}@{host}:{}/{}",
            config.get_user().unwrap_or(""),
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().unwrap_or("")
        );
        let vaults = Self {
            config,
            tls,
            where_,
            hub,
            pool: Mutex::new(Pool::default()),
            returned: std::sync::Condvar::new(),
            names: Mutex::new(HashMap::new()),
        };
        let mut client = vaults.client()?;
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
        vaults.give_back(client);
        Ok(vaults)
    }

    fn connect(&self) -> Result<Client, VaultError> {
        let connected = match &self.tls {
            None => self.config.connect(postgres::NoTls),
            Some(tls) => self.config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls.clone())),
        };
        let mut client = connected.map_err(|e| VaultError::Postgres(format!("{}: {}", self.where_, describe(&e))))?;
        // a commit is on the server's disk when it returns; names resolve only where written out
        client
            .batch_execute(
                "SET synchronous_commit = on; SET client_encoding = 'UTF8'; SET search_path = '';
                 SET TIME ZONE 'UTC'",
            )
            .map_err(|e| self.error(e))?;
        Ok(client)
    }

    /// An idle connection, a new one while fewer than [`POOL`] are open,
    /// or the next given back; given back with [`PgVaults::give_back`].
    fn client(&self) -> Result<Client, VaultError> {
        let mut pool = self.pool();
        let deadline = std::time::Instant::now() + POOL_WAIT;
        loop {
            while let Some(c) = pool.idle.pop() {
                if !c.is_closed() {
                    return Ok(c);
                }
                pool.open -= 1;
            }
            if pool.open < POOL {
                pool.open += 1;
                drop(pool);
                let connected = self.connect();
                if connected.is_err() {
                    self.pool().open -= 1;
                    self.returned.notify_one();
                }
                return connected;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(VaultError::Postgres(format!(
                    "{}: all {POOL} of the hub's connections stayed busy for {} s",
                    self.where_,
                    POOL_WAIT.as_secs()
                )));
            }
            pool = self.returned.wait_timeout(pool, left).map(|(p, _)| p).unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `client` for the next use, unless its connection broke.
    fn give_back(&self, client: Client) {
        let mut pool = self.pool();
        if client.is_closed() {
            pool.open -= 1;
        } else {
            pool.idle.push(client);
        }
        drop(pool);
        self.returned.notify_one();
    }

    /// Runs `f` on a connection, returning it to the pool after.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, VaultError>) -> Result<T, VaultError> {
        let mut client = self.client()?;
        let out = f(&mut client);
        self.give_back(client);
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
             RESET ROLE"
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
        let (schema, role) = (ident(&names.schema)?, ident(&names.role)?);
        self.with(|client| {
            let mut tx = client.transaction().map_err(|e| self.error(e))?;
            // the department's role, and one writer per vault whichever hub process (one round trip)
            tx.batch_execute(&format!(
                "SET LOCAL ROLE {role}; SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext({}))",
                literal(&schema)
            ))
            .map_err(|e| self.error(e))?;
            let out = f(&mut tx, &schema)?;
            tx.commit().map_err(|e| self.error(e))?;
            Ok(out)
        })
    }

    /// Applies a changeset to its origin's vault, exactly once (as
    /// [`super::vault::Vaults::apply`]).
    pub fn apply(
        &self,
        cs: &Changeset,
        digest: &[u8; 32],
        frame: Option<&[u8]>,
        now: i64,
    ) -> Result<Applied, VaultError> {
        let names = self.names(&cs.origin)?;
        self.as_department(&names, |tx, s| apply(tx, s, cs, digest, frame, now).map_err(|e| self.failed(e)))
    }

    fn failed(&self, e: Failed) -> VaultError {
        match e {
            Failed::Pg(e) => self.error(e),
            Failed::Vault(e) => e,
        }
    }

    /// Up to `limit` audit events waiting in `node`'s vault, oldest first.
    pub fn waiting(&self, node: &NodeId, limit: usize) -> Result<Vec<(i64, String)>, VaultError> {
        let Some(names) = self.known(node)? else { return Ok(Vec::new()) };
        self.as_department(&names, |tx, s| {
            let rows = tx
                .query(&format!("SELECT id, event FROM {s}.audit_outbox ORDER BY id LIMIT $1"), &[&(limit as i64)])
                .map_err(|e| self.error(e))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Forgets the events `ids` of `node`'s vault, once the log holds them.
    pub fn forget(&self, node: &NodeId, ids: &[i64]) -> Result<(), VaultError> {
        let Some(names) = self.known(node)? else { return Ok(()) };
        self.as_department(&names, |tx, s| {
            tx.execute(&format!("DELETE FROM {s}.audit_outbox WHERE id = ANY($1)"), &[&ids])
                .map_err(|e| self.error(e))?;
            Ok(())
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
    /// The epoch and last applied number of `resource` in `node`'s vault, if any.
    pub fn head(&self, node: &NodeId, resource: &str) -> Result<Option<(i64, i64)>, VaultError> {
        let Some(names) = self.known(node)? else { return Ok(None) };
        self.as_department(&names, |tx, s| {
            let row = tx
                .query_opt(&format!("SELECT epoch, last_seq FROM {s}._gdx_resources WHERE resource = $1"), &[&resource])
                .map_err(|e| self.error(e))?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
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

/// A failure inside a vault's transaction.
enum Failed {
    Pg(postgres::Error),
    Vault(VaultError),
}

impl From<postgres::Error> for Failed {
    fn from(e: postgres::Error) -> Self {
        Failed::Pg(e)
    }
}

impl From<VaultError> for Failed {
    fn from(e: VaultError) -> Self {
        Failed::Vault(e)
    }
}

fn apply(
    tx: &mut Transaction<'_>,
    s: &str,
    cs: &Changeset,
    digest: &[u8; 32],
    frame: Option<&[u8]>,
    now: i64,
) -> Result<Applied, Failed> {
    let table = cs.resource.as_str();
    let meta = tx.query_typed_opt(
        &format!("SELECT columns, key, last_seq, epoch FROM {s}._gdx_resources WHERE resource = $1"),
        &[(&table, Type::TEXT)],
    )?;
    let meta: Option<Head> = meta.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)));
    let t = format!("{s}.{}", ident(table)?);
    let step = plan(meta.as_ref(), cs)?;
    if step.reset {
        tx.batch_execute(&format!("DELETE FROM {t}"))?;
        tx.execute(&format!("DELETE FROM {s}._gdx_changesets WHERE resource = $1"), &[&table])?;
    }
    let known = match step.then {
        Then::Apply { known } => known,
        Then::Gap { expected } => return Ok(Applied::Gap { expected }),
        Then::Duplicate => {
            let seen = tx.query_opt(
                &format!("SELECT digest FROM {s}._gdx_changesets WHERE resource = $1 AND seq = $2"),
                &[&table, &(cs.seq as i64)],
            )?;
            return Ok(duplicate(seen.map(|r| r.get::<_, Vec<u8>>(0)).as_deref(), digest, cs)?);
        }
    };
    let key_names: Vec<String> = cs.key.iter().map(|&i| cs.columns[i].name.clone()).collect();
    let columns = apply_rows(tx, &t, known, cs)?;
    let json = |e: serde_json::Error| VaultError::Schema(format!("{table}: {e}"));
    let (columns_json, key_json) =
        (serde_json::to_string(&columns).map_err(json)?, serde_json::to_string(&key_names).map_err(json)?);
    let event = gdx_common::audit::Event {
        kind: "changeset".into(),
        at: now,
        node: Some(cs.origin.to_string()),
        resource: Some(table.to_owned()),
        detail: serde_json::json!({
            "seq": cs.seq, "epoch": cs.epoch, "rows": cs.changes.len(),
            "sha256": gdx_common::token::hex(digest),
        }),
        ..Default::default()
    };
    let event = serde_json::to_string(&event).map_err(|e| VaultError::Schema(format!("{table}: {e}")))?;
    // the resource's number, the changeset's digest and frame, and its audit event: one statement
    tx.execute_typed(
        &format!(
            "WITH resource AS (
                 INSERT INTO {s}._gdx_resources AS r (resource, columns, key, last_seq, updated_at, epoch)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (resource) DO UPDATE SET columns = excluded.columns, last_seq = excluded.last_seq,
                     updated_at = excluded.updated_at, epoch = excluded.epoch,
                     forwarded_seq = CASE WHEN r.epoch <> excluded.epoch THEN 0 ELSE r.forwarded_seq END,
                     forward_error = CASE WHEN r.epoch <> excluded.epoch THEN NULL ELSE r.forward_error END
             ), changeset AS (
                 INSERT INTO {s}._gdx_changesets (resource, seq, digest, frame) VALUES ($1, $4, $7, $8)
                 ON CONFLICT (resource, seq) DO UPDATE SET digest = excluded.digest, frame = excluded.frame
             )
             INSERT INTO {s}.audit_outbox (event) VALUES ($9)"
        ),
        &[
            (&table, Type::TEXT),
            (&columns_json, Type::TEXT),
            (&key_json, Type::TEXT),
            (&(cs.seq as i64), Type::INT8),
            (&now, Type::INT8),
            (&(cs.epoch as i64), Type::INT8),
            (&digest.as_slice(), Type::BYTEA),
            (&frame, Type::BYTEA),
            (&event, Type::TEXT),
        ],
    )?;
    Ok(Applied::Applied)
}

/// How a column is kept in PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kept {
    Bigint,
    Double,
    Bytes,
    /// Everything else, dates and decimals too: as the text SQLite would
    /// give back, so that nothing the source sends is refused for its form.
    Text,
}

impl Kept {
    /// From a declared type, by SQLite's affinity.
    fn of(decl: &str) -> Self {
        match gdx_files::tables::affinity(decl) {
            "INTEGER" => Kept::Bigint,
            "REAL" => Kept::Double,
            "BLOB" => Kept::Bytes,
            _ => Kept::Text,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Kept::Bigint => "BIGINT",
            Kept::Double => "DOUBLE PRECISION",
            Kept::Bytes => "BYTEA",
            Kept::Text => "TEXT",
        }
    }

    /// The placeholder for parameter `n`: bytes as they are, everything
    /// else sent as text and converted by the server.
    fn placeholder(self, n: usize) -> String {
        match self {
            Kept::Bytes => format!("${n}"),
            Kept::Text => format!("${n}::text"),
            _ => format!("CAST(${n}::text AS {})", self.sql()),
        }
    }
}

/// A value made ready for its column: what is compared to find one key
/// twice in a statement, and what is sent.
#[derive(Clone, Debug, PartialEq)]
enum Param {
    Null,
    Text(String),
    Bytes(Vec<u8>),
}

impl Param {
    fn boxed(&self) -> Box<dyn ToSql + Sync> {
        match self {
            Param::Null => Box::new(None::<String>),
            Param::Text(t) => Box::new(t.clone()),
            Param::Bytes(b) => Box::new(b.clone()),
        }
    }

    fn null_as(kept: Kept) -> Box<dyn ToSql + Sync> {
        if kept == Kept::Bytes { Box::new(None::<Vec<u8>>) } else { Box::new(None::<String>) }
    }
}

/// `v` made ready for column `name` kept as `kept`, converting as SQLite's
/// affinity does (an integral real or a numeric text into an integer
/// column becomes the integer, a number into a text column its text); a
/// value that has no form there refuses the changeset, saying which.
fn param(v: &Value, kept: Kept, name: &str) -> Result<Param, VaultError> {
    let refused = |what: &str| {
        VaultError::Schema(format!(
            "column {name} is kept as {} but a value is {what}; declare the column's type at the source as what it holds",
            kept.sql()
        ))
    };
    Ok(match (kept, v) {
        (_, Value::Null) => Param::Null,
        (Kept::Bytes, Value::Blob(b)) => Param::Bytes(b.clone()),
        (Kept::Bytes, Value::Text(t)) => Param::Bytes(t.as_bytes().to_vec()),
        (Kept::Bytes, _) => return Err(refused("a number")),
        (_, Value::Blob(_)) => return Err(refused("binary")),
        (Kept::Text, Value::Text(t)) => Param::Text(t.clone()),
        (Kept::Text, Value::Integer(i)) => Param::Text(i.to_string()),
        (Kept::Text, Value::Real(f)) => Param::Text(real_text(*f)),
        (Kept::Bigint, Value::Integer(i)) => Param::Text(i.to_string()),
        (Kept::Bigint, Value::Real(f)) => {
            Param::Text(integral(*f).ok_or_else(|| refused(&format!("{f}")))?.to_string())
        }
        (Kept::Bigint, Value::Text(t)) => {
            let t = t.trim();
            let n = t.parse::<i64>().ok().or_else(|| t.parse::<f64>().ok().and_then(integral));
            Param::Text(n.ok_or_else(|| refused(&format!("the text {t:?}")))?.to_string())
        }
        (Kept::Double, Value::Integer(i)) => Param::Text(real_text(*i as f64)),
        (Kept::Double, Value::Real(f)) => Param::Text(real_text(*f)),
        (Kept::Double, Value::Text(t)) => {
            Param::Text(real_text(t.trim().parse::<f64>().map_err(|_| refused(&format!("the text {t:?}")))?))
        }
    })
}

/// `row` as a line of `COPY`'s text format: tab-separated, `\N` for NULL,
/// backslash escapes, bytes as bytea's `\x` hex.
fn copy_line(row: &[Param], out: &mut Vec<u8>) {
    for (i, p) in row.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match p {
            Param::Null => out.extend_from_slice(b"\\N"),
            Param::Text(t) => {
                for &b in t.as_bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        _ => out.push(b),
                    }
                }
            }
            Param::Bytes(bytes) => {
                out.extend_from_slice(b"\\\\x");
                for b in bytes {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
            }
        }
    }
    out.push(b'\n');
}

/// `f` as an integer, when it is one.
fn integral(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}

/// A real number as PostgreSQL reads it back exactly.
fn real_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        format!("{f:?}")
    }
}

/// Applies `cs`'s rows to table `t` (schema-qualified): creates it when
/// `known` is None, adds new columns (a name the table has in another case
/// is the same column, as in SQLite), upserts and deletes in key order.
/// Returns the table's columns after it.
fn apply_rows(
    tx: &mut Transaction<'_>,
    t: &str,
    known: Option<Vec<Column>>,
    cs: &Changeset,
) -> Result<Vec<Column>, Failed> {
    let kept: Vec<Kept> = cs.columns.iter().map(|c| Kept::of(&c.decl_type)).collect();
    let mut columns = match known {
        None => {
            let defs: Vec<String> = cs
                .columns
                .iter()
                .zip(&kept)
                .map(|(c, k)| Ok(format!("{} {}", ident(&c.name)?, k.sql())))
                .collect::<Result<_, VaultError>>()?;
            let pk: Vec<String> = cs.key.iter().map(|&i| ident(&cs.columns[i].name)).collect::<Result<_, _>>()?;
            tx.batch_execute(&format!("CREATE TABLE {t} ({}, PRIMARY KEY ({}))", defs.join(", "), pk.join(", ")))?;
            cs.columns.clone()
        }
        Some(columns) => columns,
    };
    // each of the changeset's columns by the table's own spelling
    let mut names: Vec<String> = Vec::with_capacity(cs.columns.len());
    for (c, k) in cs.columns.iter().zip(&kept) {
        match columns.iter().find(|x| x.name.to_lowercase() == c.name.to_lowercase()) {
            Some(x) => names.push(x.name.clone()),
            None => {
                tx.batch_execute(&format!("ALTER TABLE {t} ADD COLUMN {} {}", ident(&c.name)?, k.sql()))?;
                columns.push(c.clone());
                names.push(c.name.clone());
            }
        }
    }
    let quoted: Vec<String> = names.iter().map(|n| ident(n)).collect::<Result<_, _>>()?;
    let keys: Vec<String> = cs.key.iter().map(|&i| quoted[i].clone()).collect();
    // an upsert replaces the whole row, as SQLite's INSERT OR REPLACE: columns it does not carry become NULL
    let key_lower: Vec<String> = cs.key.iter().map(|&i| names[i].to_lowercase()).collect();
    let others: Vec<String> = columns
        .iter()
        .filter(|c| !key_lower.contains(&c.name.to_lowercase()))
        .map(|c| ident(&c.name).map(|q| format!("{q} = excluded.{q}")))
        .collect::<Result<_, _>>()?;
    let on_conflict = if others.is_empty() {
        format!("ON CONFLICT ({}) DO NOTHING", keys.join(", "))
    } else {
        format!("ON CONFLICT ({}) DO UPDATE SET {}", keys.join(", "), others.join(", "))
    };
    let n = cs.columns.len();
    let upsert_sql = |rows: usize| {
        let tuples: Vec<String> = (0..rows)
            .map(|r| {
                let cells: Vec<String> = kept.iter().enumerate().map(|(i, k)| k.placeholder(r * n + i + 1)).collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        format!("INSERT INTO {t} ({}) VALUES {} {on_conflict}", quoted.join(", "), tuples.join(", "))
    };
    let per_statement = (MAX_PARAMETERS / n.max(1)).clamp(1, UPSERT_ROWS);
    let (one, many) = (upsert_sql(1), upsert_sql(per_statement));
    let cond: Vec<String> =
        cs.key.iter().enumerate().map(|(i, &k)| format!("{} = {}", quoted[k], kept[k].placeholder(i + 1))).collect();
    let delete = format!("DELETE FROM {t} WHERE {}", cond.join(" AND "));
    // each value with its type on the wire: a statement is one round trip, nothing prepared
    let send = |row: &[Param], kept_of: &dyn Fn(usize) -> Kept| -> Vec<(Box<dyn ToSql + Sync>, Type)> {
        row.iter()
            .enumerate()
            .map(|(i, p)| {
                let k = kept_of(i);
                let ty = if k == Kept::Bytes { Type::BYTEA } else { Type::TEXT };
                (if *p == Param::Null { Param::null_as(k) } else { p.boxed() }, ty)
            })
            .collect()
    };
    let execute = |tx: &mut Transaction<'_>, sql: &str, params: &[(Box<dyn ToSql + Sync>, Type)]| {
        let refs: Vec<(&(dyn ToSql + Sync), Type)> = params.iter().map(|(p, t)| (p.as_ref(), t.clone())).collect();
        tx.execute_typed(sql, &refs)
    };
    let by_column = |i: usize| kept[i];
    let mut changes: Vec<&Change> = cs.changes.iter().collect();
    changes.sort_by(|a, b| cmp_change_keys(a, b, &cs.key));
    let flush = |tx: &mut Transaction<'_>, run: &mut Vec<Vec<Param>>| -> Result<(), Failed> {
        let rows = std::mem::take(run);
        if rows.len() >= COPY_FROM {
            // many rows (a first sync): copied into a scratch table, then upserted in one statement
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS pg_temp._gdx_in; CREATE TEMP TABLE _gdx_in (LIKE {t}) ON COMMIT DROP"
            ))?;
            let mut writer = tx.copy_in(&format!("COPY pg_temp._gdx_in ({}) FROM STDIN", quoted.join(", ")))?;
            let mut line = Vec::new();
            for row in &rows {
                line.clear();
                copy_line(row, &mut line);
                std::io::Write::write_all(&mut writer, &line).map_err(|e| VaultError::Postgres(e.to_string()))?;
            }
            writer.finish()?;
            tx.batch_execute(&format!(
                "INSERT INTO {t} ({cols}) SELECT {cols} FROM pg_temp._gdx_in {on_conflict}",
                cols = quoted.join(", ")
            ))?;
            return Ok(());
        }
        let mut chunks = rows.chunks_exact(per_statement);
        for chunk in chunks.by_ref() {
            let params: Vec<_> = chunk.iter().flat_map(|r| send(r, &by_column)).collect();
            execute(tx, &many, &params)?;
        }
        for row in chunks.remainder() {
            execute(tx, &one, &send(row, &by_column))?;
        }
        Ok(())
    };
    let mut run: Vec<Vec<Param>> = Vec::new();
    for change in changes {
        match change {
            Change::Upsert(row) => {
                let row: Vec<Param> = row
                    .iter()
                    .zip(cs.columns.iter().zip(&kept))
                    .map(|(v, (c, k))| param(v, *k, &c.name))
                    .collect::<Result<_, _>>()?;
                // one statement may not touch a row twice: of a key's upserts in a row, the last,
                // the key compared as it is sent (1 and "1" are one key of an integer column)
                if run.last().is_some_and(|l| cs.key.iter().all(|&k| l[k] == row[k])) {
                    run.pop();
                }
                run.push(row);
            }
            Change::Delete(key) => {
                // the upserts before it first: the changes apply in their order
                flush(tx, &mut run)?;
                let key: Vec<Param> = key
                    .iter()
                    .zip(&cs.key)
                    .map(|(v, &k)| param(v, kept[k], &cs.columns[k].name))
                    .collect::<Result<_, _>>()?;
                execute(tx, &delete, &send(&key, &|i| kept[cs.key[i]]))?;
            }
        }
    }
    flush(tx, &mut run)?;
    Ok(columns)
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

fn read_ca(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, VaultError> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| VaultError::Postgres(format!("cannot read ca_file {}: {e}", path.display())))?;
    let certs: Vec<_> = gdx_certs::pki::pem_blocks(&pem, "CERTIFICATE")
        .into_iter()
        .map(rustls::pki_types::CertificateDer::from)
        .collect();
    if certs.is_empty() {
        return Err(VaultError::Postgres(format!("ca_file {} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

/// The server's message, or the client's, in one line.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => {
            let mut said = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                said = format!("{said}: {s}");
                source = s.source();
            }
            said
        }
    }
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

    #[test]
    fn values_convert_as_sqlite_affinities_do() {
        assert_eq!(Kept::of("VARCHAR(18)"), Kept::Text);
        assert_eq!(Kept::of("bigint"), Kept::Bigint);
        assert_eq!(Kept::of("DATE"), Kept::Text, "dates are kept as the text the source sent");
        assert_eq!(Kept::of("DECIMAL(10,2)"), Kept::Text);
        assert_eq!(Kept::of("BLOB"), Kept::Bytes);
        assert_eq!(Kept::Bigint.placeholder(3), "CAST($3::text AS BIGINT)");
        let int = |v: Value| param(&v, Kept::Bigint, "n");
        assert_eq!(int(Value::Real(3.0)).unwrap(), Param::Text("3".into()));
        assert_eq!(int(Value::Text(" 3.0".into())).unwrap(), Param::Text("3".into()));
        assert_eq!(int(Value::Text("1".into())).unwrap(), int(Value::Integer(1)).unwrap(), "one key");
        assert!(int(Value::Text("三".into())).unwrap_err().to_string().contains("column n is kept as BIGINT"));
        assert!(int(Value::Real(2.5)).is_err());
        let text = |v: Value| param(&v, Kept::Text, "t").unwrap();
        assert_ne!(text(Value::Integer(1)), text(Value::Real(1.0)), "1 and 1.0 are two texts, as in SQLite");
        assert_eq!(real_text(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(param(&Value::Null, Kept::Bytes, "b").unwrap(), Param::Null);
        let mut line = Vec::new();
        copy_line(&[Param::Text("a\tb\\c\n".into()), Param::Null, Param::Bytes(vec![0, 255])], &mut line);
        assert_eq!(line, b"a\\tb\\\\c\\n\t\\N\t\\\\x00ff\n");
    }
}
