//! The PostgreSQL engine of the storage layer: each store a schema of its
//! own (`gdx_hub`, …) in the hub's database, reached through one pool per
//! database URL in the process; the common dialect translated (`?N` to
//! `$N`, SQLite's column types to PostgreSQL's); statements prepared once
//! per connection; [`Value`]s converted to and from the column's type.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::value::{Row, Value};
use super::{DbError, Engine, On, Sql};
use crate::store::pg::pool::{PgConn, PgPool, describe, off_runtime};

/// Connections the hub's stores share (the vaults keep their own).
const POOL: usize = 8;
/// Statements kept prepared per connection; more and the cache starts over.
const PREPARED: usize = 512;

/// A store's schema in the hub's PostgreSQL database.
pub struct PgStore {
    pool: Arc<PgPool>,
    schema: &'static str,
}

/// The pools of this process, by URL file, and the schemas it made.
#[derive(Default)]
struct Shared {
    pools: HashMap<PathBuf, Weak<PgPool>>,
    made: HashSet<(PathBuf, &'static str)>,
}

fn shared() -> std::sync::MutexGuard<'static, Shared> {
    static SHARED: OnceLock<Mutex<Shared>> = OnceLock::new();
    SHARED.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn pg_error(pool: &PgPool, e: &postgres::Error) -> DbError {
    DbError::Postgres(format!("{}: {}", pool.where_, describe(e)))
}

impl PgStore {
    /// The store `schema`, its tables made from `ddl` (SQLite's words)
    /// under an advisory lock when this process has not made them yet.
    pub fn open(url_file: &Path, ca_file: Option<&Path>, schema: &'static str, ddl: &str) -> Result<Self, DbError> {
        let mut guard = shared();
        let pool = match guard.pools.get(url_file).and_then(Weak::upgrade) {
            Some(p) => p,
            None => {
                let p = Arc::new(PgPool::new(url_file, ca_file, POOL).map_err(DbError::Postgres)?);
                guard.pools.insert(url_file.to_path_buf(), Arc::downgrade(&p));
                p
            }
        };
        let made = guard.made.contains(&(url_file.to_path_buf(), schema));
        drop(guard);
        let store = Self { pool, schema };
        if !made {
            let tx = store.begin()?;
            tx.execute_batch(&format!("CREATE SCHEMA IF NOT EXISTS {schema}; {ddl}"))?;
            tx.commit()?;
            shared().made.insert((url_file.to_path_buf(), schema));
        }
        Ok(store)
    }

    /// The schema's name.
    pub fn schema(&self) -> &'static str {
        self.schema
    }

    pub fn describe(&self) -> String {
        format!("{} (schema {})", self.pool.where_, self.schema)
    }

    fn take(&self) -> Result<PgConn, DbError> {
        let mut conn = self.pool.take().map_err(DbError::Postgres)?;
        if conn.search_path != self.schema {
            // the schema is a constant of this crate, never a peer's word
            let set = format!("SET search_path = {}", self.schema);
            if let Err(e) = off_runtime(|| conn.client.batch_execute(&set)) {
                // a connection the server has dropped (restarted, say) is closed and not counted again
                let error = pg_error(&self.pool, &e);
                self.pool.discard(conn);
                return Err(error);
            }
            conn.search_path = self.schema.to_owned();
        }
        Ok(conn)
    }

    /// A write transaction, this store's advisory lock held until it ends.
    pub fn begin(&self) -> Result<PgTx<'_>, DbError> {
        self.begin_with(&format!(
            "BEGIN; SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('{}'))",
            self.schema
        ))
    }

    /// A read-only transaction whose statements all see one snapshot; it
    /// takes no lock.
    pub fn begin_read(&self) -> Result<PgTx<'_>, DbError> {
        self.begin_with("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ")
    }

    fn begin_with(&self, begin: &str) -> Result<PgTx<'_>, DbError> {
        let mut conn = self.take()?;
        let began = off_runtime(|| conn.client.batch_execute(begin));
        if let Err(e) = began {
            let error = pg_error(&self.pool, &e);
            self.pool.discard(conn);
            return Err(error);
        }
        Ok(PgTx { pool: &self.pool, conn: RefCell::new(Some(Box::new(conn))), failed: std::cell::Cell::new(false) })
    }

    pub fn has_column(&self, table: &str, column: &str) -> Result<bool, DbError> {
        let found = self.query(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = ?1 AND table_name = ?2 AND column_name = ?3",
            &[Value::Text(self.schema.into()), Value::Text(table.into()), Value::Text(column.into())],
            |_| Ok(()),
        )?;
        Ok(!found.is_empty())
    }
}

/// Runs a statement on a connection: a store's, taken from the pool and
/// given back, or a transaction's own.
pub trait PgRun {
    fn run(&self, f: &mut dyn FnMut(&PgPool, &mut PgConn) -> Result<usize, DbError>) -> Result<usize, DbError>;
}

impl PgRun for PgStore {
    fn run(&self, f: &mut dyn FnMut(&PgPool, &mut PgConn) -> Result<usize, DbError>) -> Result<usize, DbError> {
        let mut conn = self.take()?;
        let out = f(&self.pool, &mut conn);
        self.pool.give_back(conn);
        out
    }
}

impl PgRun for PgTx<'_> {
    fn run(&self, f: &mut dyn FnMut(&PgPool, &mut PgConn) -> Result<usize, DbError>) -> Result<usize, DbError> {
        let mut conn = self.conn.borrow_mut();
        let conn = conn.as_mut().ok_or_else(|| DbError::Postgres("the transaction has ended".into()))?;
        let out = f(self.pool, conn);
        if out.is_err() {
            self.failed.set(true);
        }
        out
    }
}

impl Engine for PgStore {
    fn on(&self) -> On<'_> {
        On::Postgres(self)
    }
}

impl Engine for PgTx<'_> {
    fn on(&self) -> On<'_> {
        On::Postgres(self)
    }
}

/// A transaction on PostgreSQL (a write one, or a read-only snapshot);
/// rolled back when dropped uncommitted.
pub struct PgTx<'a> {
    pool: &'a PgPool,
    conn: RefCell<Option<Box<PgConn>>>,
    /// A statement in it failed: PostgreSQL has aborted it, and would answer
    /// a COMMIT by rolling back without an error.
    failed: std::cell::Cell<bool>,
}

impl PgTx<'_> {
    /// Commits; when the commit's answer is lost the connection is closed
    /// (PostgreSQL has then either committed all of it or none).
    pub fn commit(self) -> Result<(), DbError> {
        let Some(mut conn) = self.conn.borrow_mut().take().map(|c| *c) else { return Ok(()) };
        if self.failed.get() {
            // never reported as committed: a failure inside was passed over
            let rolled_back = off_runtime(|| conn.client.batch_execute("ROLLBACK"));
            match rolled_back {
                Ok(()) => self.pool.give_back(conn),
                Err(_) => self.pool.discard(conn),
            }
            return Err(DbError::Postgres(format!(
                "{}: a statement of the transaction failed, so nothing of it was stored",
                self.pool.where_
            )));
        }
        match off_runtime(|| conn.client.batch_execute("COMMIT")) {
            Ok(()) => {
                self.pool.give_back(conn);
                Ok(())
            }
            Err(e) => {
                let error = pg_error(self.pool, &e);
                self.pool.discard(conn);
                Err(error)
            }
        }
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.get_mut().take().map(|c| *c) {
            match off_runtime(|| conn.client.batch_execute("ROLLBACK")) {
                Ok(()) => self.pool.give_back(conn),
                Err(_) => self.pool.discard(conn),
            }
        }
    }
}

fn prepared(pool: &PgPool, conn: &mut PgConn, sql: &str) -> Result<postgres::Statement, DbError> {
    if let Some(s) = conn.statements.get(sql) {
        return Ok(s.clone());
    }
    if conn.statements.len() >= PREPARED {
        conn.statements.clear();
    }
    let text = placeholders(sql);
    let statement = off_runtime(|| conn.client.prepare(&text)).map_err(|e| pg_error(pool, &e))?;
    conn.statements.insert(sql.to_owned(), statement.clone());
    Ok(statement)
}

pub(super) fn execute(pool: &PgPool, conn: &mut PgConn, sql: &str, args: &[Value]) -> Result<usize, DbError> {
    let statement = prepared(pool, conn, sql)?;
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
    let n = off_runtime(|| conn.client.execute(&statement, &params)).map_err(|e| pg_error(pool, &e))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Every row a query answers, as [`Row`]s.
pub(super) fn query(pool: &PgPool, conn: &mut PgConn, sql: &str, args: &[Value]) -> Result<Vec<Row>, DbError> {
    let statement = prepared(pool, conn, sql)?;
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
    let rows = off_runtime(|| conn.client.query(&statement, &params)).map_err(|e| pg_error(pool, &e))?;
    rows.iter()
        .map(|r| {
            let values = (0..r.len())
                .map(|i| r.try_get::<_, Value>(i).map_err(|e| pg_error(pool, &e)))
                .collect::<Result<_, _>>()?;
            Ok(Row { values })
        })
        .collect()
}

/// Statements without parameters, separated by `;`.
pub(super) fn batch(pool: &PgPool, conn: &mut PgConn, sql: &str) -> Result<(), DbError> {
    off_runtime(|| conn.client.batch_execute(sql)).map_err(|e| pg_error(pool, &e))
}

/// `?N` (and a bare `?`, numbered in order) as PostgreSQL's `$N`,
/// outside quoted text and names.
pub fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut next = 0usize;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// Tables written in SQLite's words, in PostgreSQL's: `INTEGER` is
/// `BIGINT` (SQLite's integers are 64-bit), `BLOB` is `BYTEA`, `REAL` is
/// `DOUBLE PRECISION`, a row number `INTEGER PRIMARY KEY [AUTOINCREMENT]`
/// an identity column; `WITHOUT ROWID` is dropped.
pub fn ddl_for_postgres(sql: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // words, and what lies between them (quoted text whole, never a word)
    let mut tokens: Vec<(&str, bool)> = Vec::new();
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let mut end = i + c.len_utf8();
        if c == '-' && sql[end..].starts_with('-') {
            // a comment, to the end of its line (an apostrophe in it quotes nothing)
            while let Some(&(j, d)) = chars.peek() {
                if d == '\n' {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            tokens.push((&sql[i..end], false));
            continue;
        }
        if c == '\'' || c == '"' {
            for (j, d) in chars.by_ref() {
                end = j + d.len_utf8();
                if d == c {
                    break;
                }
            }
            tokens.push((&sql[i..end], false));
            continue;
        }
        while let Some(&(j, d)) = chars.peek() {
            if is_word(d) != is_word(c) || matches!(d, '\'' | '"' | '-') {
                break;
            }
            end = j + d.len_utf8();
            chars.next();
        }
        tokens.push((&sql[i..end], is_word(c)));
    }
    let upper = |k: usize| tokens.get(k).filter(|t| t.1).map(|t| t.0.to_ascii_uppercase());
    // the word after the one at `k`, when only white space is between
    let after = |k: usize| tokens.get(k + 1).filter(|t| t.0.trim().is_empty()).and_then(|_| upper(k + 2));
    let mut out = String::with_capacity(sql.len() + 64);
    let mut i = 0;
    while i < tokens.len() {
        let (text, word) = tokens[i];
        let w = if word { text.to_ascii_uppercase() } else { String::new() };
        if w == "INTEGER" && after(i).as_deref() == Some("PRIMARY") && after(i + 2).as_deref() == Some("KEY") {
            let mut last = i + 4;
            if after(last).as_deref() == Some("AUTOINCREMENT") {
                last += 2;
            }
            out.push_str("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY");
            i = last + 1;
            continue;
        }
        if w == "WITHOUT" && after(i).as_deref() == Some("ROWID") {
            i += 3;
            continue;
        }
        out.push_str(match w.as_str() {
            "INTEGER" => "BIGINT",
            "BLOB" => "BYTEA",
            "REAL" => "DOUBLE PRECISION",
            _ => text,
        });
        i += 1;
    }
    out
}

/// A value sent as the type PostgreSQL inferred for its parameter.
impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let text_like = matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN);
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ if text_like => i.to_string().to_sql(ty, out),
                _ => Err(format!("an integer cannot be sent as {ty}").into()),
            },
            Value::Real(r) => match *ty {
                Type::FLOAT8 => r.to_sql(ty, out),
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                _ if text_like => r.to_string().to_sql(ty, out),
                _ => Err(format!("a real number cannot be sent as {ty}").into()),
            },
            Value::Text(t) if text_like || *ty == Type::JSON || *ty == Type::JSONB => t.to_sql(ty, out),
            Value::Text(_) => Err(format!("text cannot be sent as {ty}").into()),
            Value::Blob(b) if *ty == Type::BYTEA => b.to_sql(ty, out),
            Value::Blob(_) => Err(format!("bytes cannot be sent as {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column read as the SQLite kind its type holds.
impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::OID => Value::Integer(i64::from(u32::from_sql(ty, raw)?)),
            Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            Type::NUMERIC => numeric(raw)?,
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT8
                | Type::INT4
                | Type::INT2
                | Type::OID
                | Type::BOOL
                | Type::FLOAT8
                | Type::FLOAT4
                | Type::BYTEA
                | Type::NUMERIC
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::UNKNOWN
                | Type::JSON
        )
    }
}

/// A `numeric` (what `sum` of integers gives) in its binary form: an
/// integer when it has no fraction and fits, else a real number.
fn numeric(raw: &[u8]) -> Result<Value, Box<dyn Error + Sync + Send>> {
    let word = |k: usize| -> Result<u16, Box<dyn Error + Sync + Send>> {
        raw.get(2 * k..2 * k + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "a numeric cut short".into())
    };
    let (ndigits, weight, sign, scale) = (word(0)? as usize, word(1)? as i16, word(2)?, word(3)?);
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut whole: i128 = 0;
    let mut real = 0f64;
    let mut fits = scale == 0;
    for k in 0..ndigits {
        let d = word(4 + k)?;
        let power = i32::from(weight) - k as i32;
        real += f64::from(d) * 10000f64.powi(power);
        if power >= 0 && fits {
            whole = whole.checked_mul(10000).and_then(|w| w.checked_add(i128::from(d))).unwrap_or_else(|| {
                fits = false;
                0
            });
        } else if power < 0 && d != 0 {
            fits = false;
        }
    }
    if fits && ndigits > 0 {
        // the trailing zero groups the digits leave out
        let last = i32::from(weight) - (ndigits as i32 - 1);
        for _ in 0..last.max(0) {
            whole = whole.checked_mul(10000).unwrap_or_else(|| {
                fits = false;
                0
            });
        }
    }
    let negative = sign == 0x4000;
    match i64::try_from(whole) {
        Ok(w) if fits => Ok(Value::Integer(if negative { -w } else { w })),
        _ => Ok(Value::Real(if negative { -real } else { real })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(placeholders("SELECT a FROM t WHERE b = ?2 AND c = ?1"), "SELECT a FROM t WHERE b = $2 AND c = $1");
        assert_eq!(placeholders("SELECT '?1', \"a?\" FROM t WHERE b = ?"), "SELECT '?1', \"a?\" FROM t WHERE b = $1");
        assert_eq!(placeholders("VALUES (?, ?, ?12)"), "VALUES ($1, $2, $12)");
    }

    #[test]
    fn tables_are_translated_word_by_word() {
        let ddl = "CREATE TABLE IF NOT EXISTS t (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    n     INTEGER NOT NULL DEFAULT 0,
    blobby BLOB,
    r     REAL DEFAULT 'real',
    -- the provider's INTEGER
    integer_count TEXT
);
CREATE TABLE u (k INTEGER PRIMARY KEY, v BLOB) WITHOUT ROWID;";
        assert_eq!(
            ddl_for_postgres(ddl),
            "CREATE TABLE IF NOT EXISTS t (
    id    BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    n     BIGINT NOT NULL DEFAULT 0,
    blobby BYTEA,
    r     DOUBLE PRECISION DEFAULT 'real',
    -- the provider's INTEGER
    integer_count TEXT
);
CREATE TABLE u (k BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v BYTEA) ;"
        );
    }

    #[test]
    fn numerics_become_integers_when_whole() {
        // 12345678 = [1234, 5678], weight 1
        let raw = [2u16, 1, 0, 0, 1234, 5678].iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<_>>();
        assert_eq!(numeric(&raw).unwrap(), Value::Integer(12_345_678));
        // 20000 = [2], weight 1 (the trailing zero group left out), negative
        let raw = [1u16, 1, 0x4000, 0, 2].iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<_>>();
        assert_eq!(numeric(&raw).unwrap(), Value::Integer(-20_000));
        // 1.5 = [1, 5000], weight 0, scale 1
        let raw = [2u16, 0, 0, 1, 1, 5000].iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<_>>();
        assert_eq!(numeric(&raw).unwrap(), Value::Real(1.5));
    }
}
