//! The one storage layer of the hub's own databases (`hub.db`, the
//! catalogue, the exchange, the audit log and the base databases): the same SQL
//! on SQLite, the embedded default, or on PostgreSQL (hub.toml `store`),
//! so a store's rules never ask which engine holds them.
//!
//! A store writes its SQL once, in the common dialect: `?N` parameters,
//! `ON CONFLICT` upserts, `RETURNING`, `CAST(… AS BIGINT)` around a `sum`;
//! its tables in SQLite's words (`INTEGER`, `BLOB`, `INTEGER PRIMARY KEY
//! AUTOINCREMENT`), which [`postgres`] translates. Values travel as
//! [`Value`]s, SQLite's five kinds, on both engines.
//!
//! Writes go through [`Db::write`]: one transaction, and one writer per
//! store at a time: SQLite's write lock (`BEGIN IMMEDIATE`), or on
//! PostgreSQL a transaction-scoped advisory lock named for the store, so
//! two hub processes sharing the database take turns exactly as two
//! processes sharing a file do. A kill at any line leaves the transaction
//! whole or not at all, on either engine.

use std::path::PathBuf;

pub mod migrate;
mod postgres;
mod value;

pub use postgres::{PgStore, PgTx};
pub use value::{FromValue, Row, ToValue, Value};

use super::HubPaths;

/// Values for a statement's `?1`, `?2`, …: `args![a, b]`.
#[macro_export]
macro_rules! args {
    () => { &[] as &[$crate::store::db::Value] };
    ($($x:expr),+ $(,)?) => { &[$($crate::store::db::ToValue::to_value(&$x)),+][..] };
}

/// Failures of a hub database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// What PostgreSQL said, with where the server is.
    #[error("{0}")]
    Postgres(String),
    /// A statement meant to find one row found none.
    #[error("no row was found where one was expected")]
    NoRows,
    /// Refused, with what to do (one sentence for the operator).
    #[error("{0}")]
    Refused(String),
    /// A value could not be encoded for storing.
    #[error("cannot encode a value to store: {0}")]
    Encode(String),
    /// A column's value is not of the kind asked for.
    #[error("column {column} holds {found}, not {wanted}")]
    Kind { column: usize, wanted: &'static str, found: &'static str },
}

/// `column IN` the texts of the JSON array in parameter `param`, on either engine.
pub fn in_list(on: &impl Sql, column: &str, param: usize) -> String {
    match on.postgres() {
        true => format!("{column} IN (SELECT json_array_elements_text(CAST(?{param} AS json)))"),
        false => format!("{column} IN (SELECT value FROM json_each(?{param}))"),
    }
}

/// The words of a failure of the `store` database (hub, catalogue, …): a
/// refusal as it is (it says what to do), anything else after
/// "the STORE database failed".
pub fn failed(store: &str, e: &DbError) -> String {
    match e {
        DbError::Refused(why) => why.clone(),
        e => format!("the {store} database failed: {e}"),
    }
}

/// What a statement is run on: a database, or a transaction in one.
pub trait Sql {
    /// Runs one statement; the number of rows it changed.
    fn execute(&self, sql: &str, args: &[Value]) -> Result<usize, DbError>;
    /// Runs one query, `f` turning each row into a `T`.
    fn query<T>(&self, sql: &str, args: &[Value], f: impl FnMut(&Row) -> Result<T, DbError>)
    -> Result<Vec<T>, DbError>;
    /// Runs statements without parameters, separated by `;`.
    fn execute_batch(&self, sql: &str) -> Result<(), DbError>;

    /// True on PostgreSQL, for the few statements each engine words its own way.
    fn postgres(&self) -> bool {
        false
    }

    /// `sql`, to be run several times.
    fn prepare(&self, sql: &str) -> Result<Statement<'_, Self>, DbError>
    where
        Self: Sized,
    {
        Ok(Statement { on: self, sql: sql.to_owned() })
    }

    /// The first row of a query, [`DbError::NoRows`] when there is none.
    fn query_row<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, args, f)?.ok_or(DbError::NoRows)
    }

    /// The first row of a query, if any.
    fn query_opt<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut f = Some(f);
        let mut first = self.query(sql, args, |r| Ok(f.take().map(|f| f(r))))?;
        match first.drain(..).next().flatten() {
            Some(r) => r.map(Some),
            None => Ok(None),
        }
    }
}

/// `.optional()` on a [`Sql::query_row`]: no row is `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>, DbError>;
}

impl<T> OptionalExtension<T> for Result<T, DbError> {
    fn optional(self) -> Result<Option<T>, DbError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A statement run several times ([`Sql::prepare`]); each engine keeps it
/// prepared per connection.
pub struct Statement<'a, S: Sql> {
    on: &'a S,
    sql: String,
}

impl<S: Sql> Statement<'_, S> {
    pub fn execute(&mut self, args: &[Value]) -> Result<usize, DbError> {
        self.on.execute(&self.sql, args)
    }

    /// Every row, each turned into a `T` by `f`.
    pub fn query_map<T>(
        &mut self,
        args: &[Value],
        mut f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<std::vec::IntoIter<Result<T, DbError>>, DbError> {
        Ok(self.on.query(&self.sql, args, |r| Ok(f(r)))?.into_iter())
    }
}

/// Which of the hub's databases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Which {
    /// `hub.db`: tokens, nodes, certificates, logins, observations.
    Hub,
    /// `catalog.db`: the catalogue's entries.
    Catalog,
    /// `audit.db`: the audit log's entries, checkpoints and cosignatures.
    Audit,
    /// `exchange.db`: requests, grants, deliveries, notices, checks, lookup copies.
    Exchange,
    /// `bases/NAME.db`: base database NAME (`crate::base`), made with [`Which::base`].
    Base(&'static str),
}

impl Which {
    /// Base database `name` (a plain identifier from bases.toml).
    pub fn base(name: &str) -> Self {
        Which::Base(intern(name))
    }

    /// Its SQLite file.
    pub fn file(self, paths: &HubPaths) -> PathBuf {
        match self {
            Which::Hub => paths.db(),
            Which::Catalog => paths.catalog_db(),
            Which::Audit => paths.audit_db(),
            Which::Exchange => paths.exchange_db(),
            Which::Base(name) => paths.bases().join(format!("{name}.db")),
        }
    }

    /// Its schema on PostgreSQL.
    pub fn schema(self) -> &'static str {
        match self {
            Which::Hub => "gdx_hub",
            Which::Catalog => "gdx_catalog",
            Which::Audit => "gdx_audit",
            Which::Exchange => "gdx_exchange",
            Which::Base(name) => intern(&base_schema(name)),
        }
    }

    /// The file name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Which::Hub => "hub.db",
            Which::Catalog => "catalog.db",
            Which::Audit => "audit.db",
            Which::Exchange => "exchange.db",
            Which::Base(name) => intern(&format!("bases/{name}.db")),
        }
    }

    /// Its tables (SQLite's words).
    pub fn tables(self) -> String {
        match self {
            Which::Hub => crate::store::Store::schema(),
            Which::Catalog => crate::catalog::Catalog::tables(),
            Which::Audit => crate::audit::TABLES.to_owned(),
            Which::Exchange => crate::exchange::Exchange::tables(),
            Which::Base(_) => crate::base::TABLES.to_owned(),
        }
    }
}

/// The schema of base database `name` on PostgreSQL: `gdx_base_NAME`, or
/// for a name that is not lowercase ASCII or would be cut short,
/// `gdx_base_` and a digest of the name (a schema is named without quotes).
fn base_schema(name: &str) -> String {
    let plain = name.len() <= 48 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    match plain {
        true => format!("gdx_base_{name}"),
        false => format!("gdx_base_{}", gdx_common::token::hex(&gdx_certs::pki::sha256(name.as_bytes())[..12])),
    }
}

/// `text` kept for the life of the process, once per distinct text: the
/// names of the base databases, few and from bases.toml.
fn intern(text: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static KEPT: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut kept = KEPT.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(&k) = kept.get(text) {
        return k;
    }
    let k: &'static str = Box::leak(text.to_owned().into_boxed_str());
    kept.insert(k);
    k
}

/// One of the hub's databases, on SQLite or on PostgreSQL.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(PgStore),
}

/// A write transaction (see [`Db::write`]).
pub enum Tx<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres(PgTx<'a>),
}

impl Db {
    /// Opens `which` where hub.toml keeps the hub's stores (a data
    /// directory without hub.toml yet, during `init`, on SQLite), making
    /// its tables from `schema` if they are missing. On PostgreSQL, a
    /// SQLite file of the store that still holds rows is refused: they
    /// would be left behind (`gdx-hub migrate --to postgres` moves them).
    pub fn open(paths: &HubPaths, which: Which, schema: &str) -> Result<Self, DbError> {
        match Self::postgres_of(paths, which, schema)? {
            Some(db) => {
                let file = which.file(paths);
                if migrate::holds_rows(&file)? {
                    return Err(DbError::Refused(format!(
                        "hub.toml keeps this hub's stores on PostgreSQL, but {} still holds records; run `gdx-hub --data {} migrate --to postgres` to move them (docs/operator.md, \"Moving a hub to PostgreSQL\")",
                        file.display(),
                        paths.dir.display()
                    )));
                }
                Ok(db)
            }
            None => Self::sqlite(&which.file(paths), schema),
        }
    }

    /// `which` on PostgreSQL when hub.toml keeps the stores there.
    pub fn postgres_of(paths: &HubPaths, which: Which, schema: &str) -> Result<Option<Self>, DbError> {
        match crate::config::store_in(paths).map_err(|e| DbError::Refused(e.to_string()))? {
            Some(crate::config::StoreConfig::Postgres { url_file, ca_file }) => {
                Ok(Some(Db::Postgres(PgStore::open(&url_file, ca_file.as_deref(), which.schema(), schema)?)))
            }
            _ => Ok(None),
        }
    }

    /// Opens (creating if needed) the SQLite database at `path`.
    pub fn sqlite(path: &std::path::Path, schema: &str) -> Result<Self, DbError> {
        Ok(Db::Sqlite(gdx_files::open_sqlite(path, schema)?))
    }

    /// Runs `f` in a write transaction, committing when it succeeds; one
    /// writer per store at a time on either engine.
    pub fn write<T, E: From<DbError>>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        let tx = self.begin()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// A write transaction, held until [`Tx::commit`] (dropped, it rolls
    /// back); one writer per store at a time on either engine.
    pub fn begin(&self) -> Result<Tx<'_>, DbError> {
        Ok(match self {
            Db::Sqlite(conn) => {
                Tx::Sqlite(rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?)
            }
            Db::Postgres(pg) => Tx::Postgres(pg.begin()?),
        })
    }

    /// A read transaction: its statements all see the store as one commit
    /// left it, whatever commits meanwhile; it waits for no writer and
    /// holds none back (SQLite's WAL; a read-only snapshot on PostgreSQL).
    /// Dropped, it ends.
    pub fn snapshot(&self) -> Result<Tx<'_>, DbError> {
        Ok(match self {
            Db::Sqlite(conn) => {
                Tx::Sqlite(rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Deferred)?)
            }
            Db::Postgres(pg) => Tx::Postgres(pg.begin_read()?),
        })
    }

    /// True when `table` has a column `column` (for adding columns newer
    /// than a table).
    pub fn has_column(&self, table: &str, column: &str) -> Result<bool, DbError> {
        match self {
            Db::Sqlite(conn) => Ok(conn.query_row(
                "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
                [table, column],
                |r| r.get::<_, i64>(0),
            )? > 0),
            Db::Postgres(pg) => pg.has_column(table, column),
        }
    }
}

impl Tx<'_> {
    /// Commits the transaction.
    pub fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.commit()?),
            Tx::Postgres(tx) => tx.commit(),
        }
    }
}

/// What a statement runs on underneath: a SQLite connection (in a
/// transaction or not), a store on PostgreSQL, or a transaction there.
pub enum On<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a dyn postgres::PgRun),
}

/// Whatever statements run on ([`Db`], [`Tx`], a plain SQLite connection
/// or transaction, for the stores not yet moved onto [`Db`]); each is
/// [`Sql`].
pub trait Engine {
    fn on(&self) -> On<'_>;
}

impl Engine for Db {
    fn on(&self) -> On<'_> {
        match self {
            Db::Sqlite(c) => On::Sqlite(c),
            Db::Postgres(p) => On::Postgres(p),
        }
    }
}

impl Engine for Tx<'_> {
    fn on(&self) -> On<'_> {
        match self {
            Tx::Sqlite(c) => On::Sqlite(c),
            Tx::Postgres(p) => On::Postgres(p),
        }
    }
}

impl Engine for rusqlite::Connection {
    fn on(&self) -> On<'_> {
        On::Sqlite(self)
    }
}

impl Engine for rusqlite::Transaction<'_> {
    fn on(&self) -> On<'_> {
        On::Sqlite(self)
    }
}

impl<E: Engine> Sql for E {
    fn postgres(&self) -> bool {
        matches!(self.on(), On::Postgres(_))
    }
    fn execute(&self, sql: &str, args: &[Value]) -> Result<usize, DbError> {
        match self.on() {
            On::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(args.iter()))?),
            On::Postgres(p) => p.run(&mut |pool, c| postgres::execute(pool, c, sql, args)),
        }
    }
    fn query<T>(
        &self,
        sql: &str,
        args: &[Value],
        mut f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        match self.on() {
            On::Sqlite(c) => value::query_sqlite(c, sql, args, f),
            On::Postgres(p) => {
                let mut rows = Vec::new();
                p.run(&mut |pool, c| {
                    rows = postgres::query(pool, c, sql, args)?;
                    Ok(0)
                })?;
                rows.iter().map(&mut f).collect()
            }
        }
    }
    fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        match self.on() {
            On::Sqlite(c) => Ok(c.execute_batch(sql)?),
            On::Postgres(p) => {
                let sql = postgres::ddl_for_postgres(sql);
                p.run(&mut |pool, c| postgres::batch(pool, c, &sql).map(|()| 0)).map(|_| ())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(on: &impl Sql) -> i64 {
        on.query_row("SELECT count(*) FROM t", args![], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_snapshot_sees_one_commit_and_waits_for_no_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let schema = "CREATE TABLE IF NOT EXISTS t (n INTEGER);";
        let writer = Db::sqlite(&path, schema).unwrap();
        writer.execute("INSERT INTO t VALUES (1)", args![]).unwrap();
        let reader = Db::sqlite(&path, schema).unwrap();
        let snap = reader.snapshot().unwrap();
        assert_eq!(count(&snap), 1);
        // a writer commits meanwhile, and does not wait for the reader
        let tx = writer.begin().unwrap();
        tx.execute("INSERT INTO t VALUES (2)", args![]).unwrap();
        tx.commit().unwrap();
        assert_eq!(count(&snap), 1, "the snapshot still sees the commit it started from");
        drop(snap);
        assert_eq!(count(&reader), 2);
    }
}
