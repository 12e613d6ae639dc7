//! A MySQL source (and the engines that speak its protocol: MariaDB, TiDB,
//! OceanBase in MySQL mode, GoldenDB): a table or a SELECT, read in one
//! `REPEATABLE READ` transaction `WITH CONSISTENT SNAPSHOT, READ ONLY`,
//! the result streamed row by row from the server, so the agent's memory
//! does not grow with the table.
//!
//! The session is set to utf8mb4 (so GBK and GB18030 columns arrive as
//! UTF-8, converted by the server) and to UTC. Values travel as text and
//! become cells by the column's type: integers (BIT as its number), floats,
//! DECIMAL as exact text, dates and times as ISO text (`TIMESTAMP` as
//! `YYYY-MM-DD HH:MM:SS[.ffffff]+00:00`), binary strings and blobs as
//! bytes, and text, ENUM, SET, JSON and UUID as text. A column of any other
//! type is refused by name, with the cast that reads it.

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::time::Duration;

use gdx_common::data::{Cell, Column, Value};
use mysql::consts::{ColumnFlags, ColumnType};
use mysql::prelude::Queryable;

use super::{Place, Read, Reader, SourceError, check_columns, database_sql, emit_row, since_sql};
use crate::config::{DbSource, DbTls};

/// The character set number of binary strings.
const BINARY: u16 = 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Integer,
    Bit,
    Real,
    Text,
    /// `TIMESTAMP`, in UTC: `+00:00` appended.
    Zoned,
    Bytes,
}

/// An open connection and what to read.
pub(super) struct Rows {
    conn: RefCell<mysql::Conn>,
    sql: String,
    kinds: Vec<Kind>,
    where_: String,
    db: DbSource,
    /// Read only rows whose column is at or past this value (a watermark).
    pub(super) since: Option<(String, Value)>,
    /// The ORDER BY that reads in key order.
    order: Option<String>,
}

/// Connects, checks the table or query and reads its columns.
pub(super) fn open(db: &DbSource) -> Result<Reader, SourceError> {
    let (mut conn, where_) = connect(db)?;
    let sql = database_sql(db, quote)?;
    let stmt = conn.prep(&sql).map_err(|e| SourceError::Read(format!("{where_}: {}", explain(&e, db))))?;
    let mut columns = Vec::new();
    let mut kinds = Vec::new();
    for c in stmt.columns().iter() {
        let name = c.name_str().into_owned();
        let (kind, decl) = kind_of(c).ok_or_else(|| {
            SourceError::Columns(format!(
                "column {name} has type {:?}, which GDX does not read; cast it in a query, such as SELECT …, CAST({name} AS CHAR) AS {name} FROM …",
                c.column_type()
            ))
        })?;
        columns.push(Column { name, decl_type: decl.to_owned() });
        kinds.push(kind);
    }
    let _ = conn.close(stmt);
    check_columns(&columns)?;
    let rows = Rows { conn: RefCell::new(conn), sql, kinds, where_, db: db.clone(), since: None, order: None };
    Ok(Reader { columns, quarantine: Vec::new(), partial: false, rows: super::Rows::Mysql(Box::new(rows)) })
}

/// What the source's user may do beyond reading (None: only read).
pub(super) fn write_access(db: &DbSource) -> Result<Option<String>, SourceError> {
    let (mut conn, where_) = connect(db)?;
    let grants: Vec<String> = conn
        .query("SHOW GRANTS FOR CURRENT_USER()")
        .map_err(|e| SourceError::Read(format!("{where_}: {}", explain(&e, db))))?;
    let writes: Vec<String> = grants
        .into_iter()
        .filter(|g| {
            let on = g.split(" ON ").next().unwrap_or_default().to_uppercase();
            ["ALL PRIVILEGES", "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "CREATE", "SUPER"]
                .iter()
                .any(|p| on.contains(p))
        })
        .map(|g| g.split(" IDENTIFIED").next().unwrap_or_default().to_owned())
        .collect();
    Ok((!writes.is_empty()).then(|| format!("{} holds {}", db.user, writes.join("; "))))
}

/// A session in UTF-8 and UTC, and where it is, for messages.
fn connect(db: &DbSource) -> Result<(mysql::Conn, String), SourceError> {
    let port = db.port.unwrap_or(3306);
    let where_ = format!("MySQL {}@{}:{port}/{}", db.user, db.host, db.database);
    let open_err = |reason: String| SourceError::Open { path: where_.clone(), reason };
    let password = db.password().map_err(&open_err)?;
    let ssl = match (db.tls, &db.ca_file) {
        (DbTls::Off, _) => None,
        (DbTls::Required, _) => Some(mysql::SslOpts::default().with_danger_accept_invalid_certs(true)),
        (DbTls::Verify, ca) => Some(mysql::SslOpts::default().with_root_cert_path(ca.clone())),
    };
    let opts = mysql::OptsBuilder::new()
        .ip_or_hostname(Some(db.host.clone()))
        .tcp_port(port)
        .user(Some(db.user.clone()))
        .pass(Some(password))
        .db_name(Some(db.database.clone()))
        .prefer_socket(false)
        .tcp_connect_timeout(Some(Duration::from_secs(10)))
        .ssl_opts(ssl)
        .init(vec![
            "SET NAMES utf8mb4",
            "SET time_zone = '+00:00'",
            // literals are written with backslashes escaped
            "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
        ]);
    let conn = mysql::Conn::new(opts).map_err(|e| open_err(explain(&e, db)))?;
    Ok((conn, where_))
}

impl Rows {
    /// Reads every row in one consistent, read-only snapshot, streamed.
    pub(super) fn for_each(
        &self,
        width: usize,
        out: &mut Read,
        each: &mut dyn FnMut(Place, &[Cell<'_>]) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let read = |e: mysql::Error| SourceError::Read(format!("{}: {}", self.where_, explain(&e, &self.db)));
        let mut conn = self.conn.borrow_mut();
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ").map_err(read)?;
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").map_err(read)?;
        let mut owned: Vec<Value> = Vec::with_capacity(width);
        {
            let mut sql = since_sql(&self.sql, self.since.as_ref(), quote, literal);
            if let Some(order) = &self.order {
                sql = format!("{sql} ORDER BY {order}");
            }
            let result = conn.query_iter(&sql).map_err(read)?;
            for row in result {
                let row = row.map_err(read)?;
                let convert = |i: usize| convert(self.kinds[i], row.as_ref(i).unwrap_or(&mysql::Value::NULL));
                if emit_row(out, each, &mut owned, self.kinds.len(), &self.where_, convert)?.is_break() {
                    break;
                }
            }
        }
        conn.query_drop("ROLLBACK").map_err(read)?;
        Ok(())
    }
}

impl Rows {
    /// Reads in the order of the key columns (index, name) from now on, when
    /// every one is an integer (text is compared by the column's collation,
    /// not by its bytes as the encoded keys are) and the server need not
    /// sort for it (the primary key, or another index, gives that order).
    pub(super) fn order_by(&mut self, key: &[(usize, &str)]) -> bool {
        self.order = None;
        if key.is_empty() {
            return false;
        }
        if !key.iter().all(|&(i, _)| self.kinds.get(i) == Some(&Kind::Integer)) {
            return false;
        }
        let clause = key.iter().map(|&(_, name)| quote(name)).collect::<Vec<_>>().join(", ");
        let sql = since_sql(&self.sql, self.since.as_ref(), quote, literal);
        let plan: Result<Vec<mysql::Row>, _> = self.conn.borrow_mut().query(format!("EXPLAIN {sql} ORDER BY {clause}"));
        let sorts = plan.map_or(true, |rows| {
            rows.iter().any(|r| {
                (0..r.len()).any(|i| matches!(r.as_ref(i), Some(mysql::Value::Bytes(b)) if String::from_utf8_lossy(b).contains("filesort")))
            })
        });
        if !sorts {
            self.order = Some(clause);
        }
        !sorts
    }

    /// The greatest value of column `i` (`name`) now.
    pub(super) fn max_of(&self, i: usize, name: &str) -> Result<Option<Value>, SourceError> {
        let read = |e: mysql::Error| SourceError::Read(format!("{}: {}", self.where_, explain(&e, &self.db)));
        let q = format!("SELECT max({}) FROM ({}) AS gdx_q", quote(name), self.sql);
        let row: Option<mysql::Row> = self.conn.borrow_mut().query_first(&q).map_err(read)?;
        let value = row.and_then(|r| r.as_ref(0).cloned()).unwrap_or(mysql::Value::NULL);
        let kind = self.kinds.get(i).copied().unwrap_or(Kind::Text);
        let owned = convert(kind, &value).map_err(|e| SourceError::Read(format!("{}: {e}", self.where_)))?;
        Ok(match owned {
            Value::Null => None,
            Value::Integer(i) => Some(Value::Integer(i)),
            Value::Real(f) => Some(Value::Real(f)),
            // a TIMESTAMP's watermark is compared as the server writes it
            Value::Text(t) if kind == Kind::Zoned => Some(Value::Text(t.trim_end_matches("+00:00").into())),
            Value::Text(t) => Some(Value::Text(t)),
            Value::Blob(b) => Some(Value::Blob(b)),
        })
    }
}

/// `v` as an SQL literal.
fn literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => format!("{f:?}"),
        Value::Text(t) => format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''")),
        Value::Blob(b) => format!("X'{}'", gdx_common::token::hex(b)),
    }
}

fn convert(kind: Kind, value: &mysql::Value) -> Result<Value, String> {
    let bytes = match value {
        mysql::Value::NULL => return Ok(Value::Null),
        mysql::Value::Bytes(b) => b.as_slice(),
        mysql::Value::Int(i) => return Ok(Value::Integer(*i)),
        mysql::Value::UInt(u) => {
            return i64::try_from(*u).map(Value::Integer).map_err(|_| format!("{u} is beyond a signed 64-bit integer"));
        }
        mysql::Value::Float(f) => return Ok(Value::Real(f64::from(*f))),
        mysql::Value::Double(d) => return Ok(Value::Real(*d)),
        other => return Err(format!("an unexpected value {other:?}")),
    };
    let text = || std::str::from_utf8(bytes).map_err(|_| "a text value is not UTF-8".to_owned());
    Ok(match kind {
        Kind::Integer => {
            let t = text()?;
            match t.parse::<i64>() {
                Ok(i) => Value::Integer(i),
                Err(_) => return Err(format!("{t} is beyond a signed 64-bit integer; cast it to CHAR in a query")),
            }
        }
        Kind::Bit => Value::Integer(bytes.iter().fold(0i64, |n, b| (n << 8) | i64::from(*b))),
        Kind::Real => Value::Real(text()?.parse().map_err(|_| "a float does not read as a number".to_owned())?),
        Kind::Text => Value::Text(text()?.into()),
        Kind::Zoned => Value::Text(format!("{}+00:00", text()?).into()),
        Kind::Bytes => Value::Blob(bytes.to_vec()),
    })
}

/// How a column is read, and the type the vault declares for it.
fn kind_of(c: &mysql::Column) -> Option<(Kind, &'static str)> {
    use ColumnType::*;
    let binary = c.character_set() == BINARY;
    Some(match c.column_type() {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_LONG | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONGLONG
        | MYSQL_TYPE_YEAR => (Kind::Integer, "INTEGER"),
        MYSQL_TYPE_BIT => (Kind::Bit, "INTEGER"),
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => (Kind::Real, "REAL"),
        // exact: DECIMAL is kept as text, never as a float
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => (Kind::Text, "TEXT"),
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE | MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 | MYSQL_TYPE_DATETIME
        | MYSQL_TYPE_DATETIME2 => (Kind::Text, "TEXT"),
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => (Kind::Zoned, "TEXT"),
        MYSQL_TYPE_JSON | MYSQL_TYPE_ENUM | MYSQL_TYPE_SET => (Kind::Text, "TEXT"),
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_STRING
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB => {
            // ENUM and SET travel as strings; binary strings and blobs have the binary character set
            match binary && !c.flags().intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG) {
                true => (Kind::Bytes, "BLOB"),
                false => (Kind::Text, "TEXT"),
            }
        }
        _ => return None,
    })
}

/// `` `name` ``, with embedded backquotes doubled.
fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// What went wrong, and what the county IT worker can do about it.
fn explain(e: &mysql::Error, db: &DbSource) -> String {
    let said = e.to_string();
    let advice = match e {
        mysql::Error::MySqlError(m) => match m.code {
            1045 => "the user or password is wrong; check user and the password file (or variable) in agent.toml".to_owned(),
            1049 => format!("there is no database {:?}; check database in agent.toml", db.database),
            1146 => "the table does not exist; check table (or the query) in agent.toml".to_owned(),
            1142 | 1143 | 1044 => format!(
                "user {} may not read it, or it does not exist (MySQL tells such a user no more); check table in agent.toml, and the database administrator runs GRANT SELECT ON … TO {} (see docs/installer.md)",
                db.user, db.user
            ),
            _ => String::new(),
        },
        _ if said.contains("certificate") => {
            "the server's certificate does not verify against ca_file for this host; check ca_file and host".to_owned()
        }
        _ if said.contains("TLS") || said.contains("SSL") || said.contains("Tls") => {
            "the server does not accept TLS; ask its administrator to turn ssl on, or set tls = \"off\" on a trusted network".to_owned()
        }
        mysql::Error::IoError(_) | mysql::Error::DriverError(_) | mysql::Error::CodecError(_) => format!(
            "the server at {}:{} cannot be reached; check host and port, that the server is running and listens there, and the firewall",
            db.host,
            db.port.unwrap_or(3306)
        ),
        _ => String::new(),
    };
    if advice.is_empty() { said } else { format!("{said}; {advice}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_become_cells() {
        let b = |s: &str| mysql::Value::Bytes(s.as_bytes().to_vec());
        assert!(matches!(convert(Kind::Integer, &b("-9223372036854775808")).unwrap(), Value::Integer(i64::MIN)));
        assert!(convert(Kind::Integer, &b("18446744073709551615")).is_err());
        assert!(matches!(convert(Kind::Bit, &mysql::Value::Bytes(vec![1, 2])).unwrap(), Value::Integer(258)));
        assert!(
            matches!(convert(Kind::Zoned, &b("2026-12-05 01:02:03")).unwrap(), Value::Text(t) if t == "2026-12-05 01:02:03+00:00")
        );
        assert!(matches!(convert(Kind::Text, &mysql::Value::NULL).unwrap(), Value::Null));
        assert_eq!(quote("a`b"), "`a``b`");
    }
}
