//! A PostgreSQL source (and the engines that speak its protocol:
//! KingbaseES, openGauss/GaussDB, Highgo): a table or a SELECT, read in one
//! `REPEATABLE READ READ ONLY` transaction, so a scan sees one consistent
//! snapshot, through a cursor fetched 5,000 rows at a time, so the agent's
//! memory does not grow with the table.
//!
//! Values travel as PostgreSQL's text output, under a session set to UTC
//! and ISO dates, and become cells by the column's type ([`Kind`]):
//! integers, floats (shortest exact text), numeric as its exact text,
//! booleans as 1/0, dates and times as ISO text (`timestamptz` as
//! `YYYY-MM-DD HH:MM:SS[.ffffff]+00:00`), bytea as bytes, and json, uuid,
//! enums and other text as text. A column of any other type is refused by
//! name, with the cast that reads it.

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::time::Duration;

use gdx_common::data::{Cell, Column, Value};
use postgres::types::{Kind as PgKind, Type};
use postgres::{Client, IsolationLevel, SimpleQueryMessage};

use super::{Place, Read, Reader, SourceError, check_columns, database_sql, emit_row, since_sql};
use crate::config::{DbSource, DbTls};

/// Rows fetched per round trip.
const FETCH: usize = 5_000;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a column's text becomes a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Integer,
    Real,
    Bool,
    Text,
    /// `timestamptz`/`timetz`: PostgreSQL's `+00` made `+00:00`.
    Zoned,
    Bytes,
}

/// An open connection and what to read.
pub(super) struct Rows {
    client: RefCell<Client>,
    sql: String,
    kinds: Vec<Kind>,
    where_: String,
    db: DbSource,
    /// Read only rows whose column is at or past this value (a watermark).
    pub(super) since: Option<(String, Value)>,
    /// Each column's type name, and the ORDER BY that reads in key order.
    types: Vec<String>,
    order: Option<String>,
}

/// Connects, checks the table or query and reads its columns.
pub(super) fn open(db: &DbSource) -> Result<Reader, SourceError> {
    let (mut client, where_) = connect(db)?;
    let sql = database_sql(db, quote)?;
    let stmt = client.prepare(&sql).map_err(|e| SourceError::Read(explain(&e, db)))?;
    let mut columns = Vec::new();
    let mut kinds = Vec::new();
    let mut types = Vec::new();
    for c in stmt.columns() {
        let (kind, decl) = kind_of(c.type_()).ok_or_else(|| {
            SourceError::Columns(format!(
                "column {} has type {}, which GDX does not read; cast it in a query, such as SELECT …, {}::text AS {} FROM …",
                c.name(),
                c.type_().name(),
                c.name(),
                c.name()
            ))
        })?;
        columns.push(Column { name: c.name().to_owned(), decl_type: decl.to_owned() });
        kinds.push(kind);
        types.push(c.type_().name().to_owned());
    }
    check_columns(&columns)?;
    let rows =
        Rows { client: RefCell::new(client), sql, kinds, where_, db: db.clone(), since: None, types, order: None };
    Ok(Reader { columns, quarantine: Vec::new(), partial: false, rows: super::Rows::Postgres(Box::new(rows)) })
}

/// What the source's user may do beyond reading: None when it may only
/// read; otherwise the privileges, for `gdx-agent doctor`.
pub(super) fn write_access(db: &DbSource) -> Result<Option<String>, SourceError> {
    let (mut client, where_) = connect(db)?;
    let read = |e: postgres::Error| SourceError::Read(format!("{where_}: {}", explain(&e, db)));
    let row = client
        .query_one(
            "SELECT (SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user),
                    (SELECT string_agg(DISTINCT privilege_type || ' on ' || table_schema || '.' || table_name, ', ')
                       FROM information_schema.role_table_grants
                      WHERE grantee = current_user
                        AND privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'))",
            &[],
        )
        .map_err(read)?;
    let (admin, writes): (Option<bool>, Option<String>) = (row.get(0), row.get(1));
    Ok(match (admin.unwrap_or(false), writes) {
        (true, _) => Some(format!("{} is a superuser or may create roles or databases", db.user)),
        (false, Some(w)) => Some(format!("{} holds {w}", db.user)),
        (false, None) => None,
    })
}

/// A session in UTC with ISO dates, and where it is, for messages.
fn connect(db: &DbSource) -> Result<(Client, String), SourceError> {
    let port = db.port.unwrap_or(5432);
    let where_ = format!("PostgreSQL {}@{}:{port}/{}", db.user, db.host, db.database);
    let open_err = |reason: String| SourceError::Open { path: where_.clone(), reason };
    let password = db.password().map_err(&open_err)?;
    let mut config = postgres::Config::new();
    config
        .host(&db.host)
        .port(port)
        .dbname(&db.database)
        .user(&db.user)
        .password(password)
        .application_name("gdx-agent")
        .connect_timeout(CONNECT_TIMEOUT);
    let connected = match db.tls {
        DbTls::Off => config.ssl_mode(postgres::config::SslMode::Disable).connect(postgres::NoTls),
        DbTls::Required | DbTls::Verify => {
            let roots = match (&db.tls, &db.ca_file) {
                (DbTls::Verify, Some(ca)) => Some(read_ca(ca).map_err(&open_err)?),
                _ => None,
            };
            let tls = gdx_certs::tls::database_client_config(roots.as_deref()).map_err(|e| open_err(e.to_string()))?;
            config
                .ssl_mode(postgres::config::SslMode::Require)
                .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        }
    };
    let mut client = connected.map_err(|e| open_err(explain(&e, db)))?;
    client
        .batch_execute(
            "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601';
             SET extra_float_digits = 1; SET client_encoding = 'UTF8';
             SET standard_conforming_strings = on",
        )
        .map_err(|e| open_err(explain(&e, db)))?;
    Ok((client, where_))
}

impl Rows {
    /// Reads every row in one read-only snapshot, through a cursor.
    pub(super) fn for_each(
        &self,
        width: usize,
        out: &mut Read,
        each: &mut dyn FnMut(Place, &[Cell<'_>]) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let read = |e: postgres::Error| SourceError::Read(format!("{}: {}", self.where_, explain(&e, &self.db)));
        let mut client = self.client.borrow_mut();
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(read)?;
        let mut sql = since_sql(&self.sql, self.since.as_ref(), quote, literal);
        if let Some(order) = &self.order {
            sql = format!("{sql} ORDER BY {order}");
        }
        tx.batch_execute(&format!("DECLARE gdx_scan NO SCROLL CURSOR FOR {sql}")).map_err(read)?;
        let fetch = format!("FETCH {FETCH} FROM gdx_scan");
        let mut owned: Vec<Value> = Vec::with_capacity(width);
        'fetch: loop {
            let mut fetched = 0;
            for message in tx.simple_query(&fetch).map_err(read)? {
                let SimpleQueryMessage::Row(row) = message else { continue };
                fetched += 1;
                let convert = |i: usize| convert(self.kinds[i], row.get(i));
                if emit_row(out, each, &mut owned, self.kinds.len(), &self.where_, convert)?.is_break() {
                    break 'fetch;
                }
            }
            if fetched < FETCH {
                break;
            }
        }
        // read-only: nothing to keep, the snapshot ends here
        tx.rollback().map_err(read)?;
        Ok(())
    }
}

impl Rows {
    /// Reads in the order of the key columns (index, name) from now on, when
    /// the server can do it without sorting (an index gives that order) and
    /// its order is the encoded keys': integers, and text compared by its
    /// bytes (a database created with the C locale, or an index made
    /// `COLLATE "C"`); otherwise the rows come in the server's own order.
    /// Should the order still turn out wrong, the scan finds it and reads
    /// again in the server's order.
    pub(super) fn order_by(&mut self, key: &[(usize, &str)]) -> bool {
        self.order = None;
        if key.is_empty() {
            return false;
        }
        let mut client = self.client.borrow_mut();
        // a database created with the C locale compares text by its bytes
        // already, and its indexes are in that order; elsewhere ask for it
        let bytewise = client.simple_query("SELECT 'B' < 'a' AND 'é' > 'z'").is_ok_and(|messages| {
            messages.iter().any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("t")))
        });
        let mut clause = Vec::new();
        for &(i, name) in key {
            match self.types.get(i).map(String::as_str) {
                Some("int2" | "int4" | "int8") => clause.push(quote(name)),
                Some("text" | "varchar") if bytewise => clause.push(quote(name)),
                Some("text" | "varchar") => clause.push(format!("{} COLLATE \"C\"", quote(name))),
                _ => return false,
            }
        }
        let clause = clause.join(", ");
        let sql = since_sql(&self.sql, self.since.as_ref(), quote, literal);
        let plan = client.simple_query(&format!("EXPLAIN {sql} ORDER BY {clause}"));
        let sorts = plan.map_or(true, |messages| {
            messages
                .iter()
                .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0).is_some_and(|l| l.contains("Sort"))))
        });
        drop(client);
        if !sorts {
            self.order = Some(clause);
        }
        !sorts
    }

    /// The greatest value of column `i` (`name`) now.
    pub(super) fn max_of(&self, i: usize, name: &str) -> Result<Option<Value>, SourceError> {
        let read = |e: postgres::Error| SourceError::Read(format!("{}: {}", self.where_, explain(&e, &self.db)));
        let q = format!("SELECT max({}) FROM ({}) AS gdx_q", quote(name), self.sql);
        let messages = self.client.borrow_mut().simple_query(&q).map_err(read)?;
        let text = messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
            _ => None,
        });
        let kind = self.kinds.get(i).copied().unwrap_or(Kind::Text);
        let owned =
            convert(kind, text.flatten().as_deref()).map_err(|e| SourceError::Read(format!("{}: {e}", self.where_)))?;
        Ok(Some(owned).filter(|v| *v != Value::Null))
    }
}

/// `v` as an SQL literal.
fn literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => format!("{f:?}"),
        Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
        Value::Blob(b) => format!("'\\x{}'::bytea", gdx_common::token::hex(b)),
    }
}

fn convert(kind: Kind, text: Option<&str>) -> Result<Value, String> {
    let Some(t) = text else { return Ok(Value::Null) };
    Ok(match kind {
        Kind::Integer => Value::Integer(t.parse().map_err(|_| format!("{t:?} is not an integer"))?),
        Kind::Real => Value::Real(t.parse().map_err(|_| format!("{t:?} is not a number"))?),
        Kind::Bool => Value::Integer(i64::from(t == "t")),
        Kind::Text => Value::Text(t.into()),
        Kind::Zoned => Value::Text(zoned(t).into()),
        Kind::Bytes => Value::Blob(unhex(t).ok_or_else(|| "a bytea value is not in hex form".to_owned())?),
    })
}

/// `…+00` as `…+00:00` (the session is in UTC).
fn zoned(t: &str) -> String {
    let tail = t.rfind(['+', '-']).map(|i| &t[i..]).unwrap_or_default();
    if tail.len() == 3 { format!("{t}:00") } else { t.to_owned() }
}

/// PostgreSQL's `\x…` bytea output.
fn unhex(t: &str) -> Option<Vec<u8>> {
    gdx_common::audit::unhex(t.strip_prefix("\\x")?)
}

/// How a column of type `ty` is read, and the type the vault declares for
/// it; None for a type GDX does not read.
fn kind_of(ty: &Type) -> Option<(Kind, &'static str)> {
    if matches!(ty.kind(), PgKind::Enum(_)) {
        return Some((Kind::Text, "TEXT"));
    }
    Some(match ty.name() {
        "int2" | "int4" | "int8" | "oid" => (Kind::Integer, "INTEGER"),
        "float4" | "float8" => (Kind::Real, "REAL"),
        // exact: the vault keeps numeric as text, never as a float
        "numeric" => (Kind::Text, "TEXT"),
        "bool" => (Kind::Bool, "BOOLEAN"),
        "text" | "varchar" | "bpchar" | "char" | "name" | "json" | "jsonb" | "uuid" | "xml" | "citext" | "inet"
        | "cidr" | "macaddr" => (Kind::Text, "TEXT"),
        "date" | "time" | "timestamp" | "interval" => (Kind::Text, "TEXT"),
        "timestamptz" | "timetz" => (Kind::Zoned, "TEXT"),
        "bytea" => (Kind::Bytes, "BLOB"),
        _ => return None,
    })
}

/// `"name"`, with embedded quotes doubled.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn read_ca(path: &std::path::Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
    let certs: Vec<_> = gdx_certs::pki::pem_blocks(&pem, "CERTIFICATE")
        .into_iter()
        .map(rustls::pki_types::CertificateDer::from)
        .collect();
    if certs.is_empty() {
        return Err(format!("ca_file {} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The server's message, or the client's, in one line.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

/// What went wrong, and what the county IT worker can do about it.
fn explain(e: &postgres::Error, db: &DbSource) -> String {
    use postgres::error::SqlState;
    let said = describe(e);
    let advice = match e.code() {
        Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            "the user or password is wrong; check user and the password file (or variable) in agent.toml".to_owned()
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => {
            format!("there is no database {:?}; check database in agent.toml", db.database)
        }
        Some(c) if *c == SqlState::UNDEFINED_TABLE => {
            "the table does not exist; check table (or the query) in agent.toml".to_owned()
        }
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => format!(
            "user {} may not read it; the database administrator runs GRANT SELECT ON … TO {} (see docs/installer.md)",
            db.user, db.user
        ),
        Some(_) => String::new(),
        None if said.contains("server does not support TLS") || said.contains("TLS") && said.contains("not support") => {
            "the server does not accept TLS; ask its administrator to turn ssl on, or set tls = \"off\" on a trusted network".to_owned()
        }
        None if said.contains("certificate") || said.contains("UnknownIssuer") || said.contains("invalid peer") => {
            "the server's certificate does not verify against ca_file for this host; check ca_file and host".to_owned()
        }
        None if said.contains("timed out") || said.contains("refused") || said.contains("No route") || said.contains("resolve")
            || said.contains("failed to lookup") =>
        {
            format!(
                "the server at {}:{} cannot be reached; check host and port, that PostgreSQL is running and listens there, and the firewall",
                db.host,
                db.port.unwrap_or(5432)
            )
        }
        None => String::new(),
    };
    if advice.is_empty() { said } else { format!("{said}; {advice}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_output_becomes_cells() {
        let cell = |k, t| convert(k, Some(t)).unwrap();
        assert!(matches!(cell(Kind::Integer, "-9223372036854775808"), Value::Integer(i64::MIN)));
        assert!(matches!(cell(Kind::Real, "0.1"), Value::Real(f) if f == 0.1));
        assert!(matches!(cell(Kind::Real, "-Infinity"), Value::Real(f) if f == f64::NEG_INFINITY));
        assert!(matches!(cell(Kind::Bool, "t"), Value::Integer(1)));
        assert!(matches!(cell(Kind::Bytes, "\\x00ff10"), Value::Blob(b) if b == [0, 255, 16]));
        assert!(
            matches!(cell(Kind::Zoned, "2026-12-05 01:02:03.5+00"), Value::Text(t) if t == "2026-12-05 01:02:03.5+00:00")
        );
        assert!(matches!(cell(Kind::Zoned, "01:02:03+05:30"), Value::Text(t) if t == "01:02:03+05:30"));
        assert!(matches!(convert(Kind::Integer, None).unwrap(), Value::Null));
        assert!(convert(Kind::Integer, Some("x")).is_err());
        assert!(convert(Kind::Bytes, Some("\\x0")).is_err());
    }

    #[test]
    fn names_are_quoted() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
