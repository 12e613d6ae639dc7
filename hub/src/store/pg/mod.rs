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

use gdx_common::data::Changeset;
use gdx_common::{DivisionCode, NodeId};
use postgres::{Client, Transaction};

use super::vault::{Applied, ResourceSummary, VaultError};

mod apply;
use apply::{Failed, apply};

/// Connections open at most; a use beyond waits for one to come back.
const POOL: usize = 16;
/// How long a use waits for a connection before answering "retry".
const POOL_WAIT: Duration = Duration::from_secs(30);
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
}
