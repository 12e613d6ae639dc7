//! Reading a resource's rows from its source: a SQLite table or query, a
//! drop folder of CSV files, or a table or query of a PostgreSQL or MySQL
//! server.
//!
//! A source opens as a [`Reader`]: the columns and the files set aside,
//! then the rows one at a time as borrowed cells, so a scan of a large table
//! copies only the rows that changed; the bad rows are set aside with the
//! reason each was. A bad row or file never stops the
//! rows around it; only a source that cannot be read at all is an error.
//! Both are streamed: the agent's memory does not grow with the size of a
//! table or of a drop (see [`csv`] for the CSV format).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use gdx_common::data::{Cell, Column, Value, check_column_name};
use rusqlite::OpenFlags;
use rusqlite::types::ValueRef;

use crate::config::{Encoding, SourceConfig};

mod ahead;
pub mod csv;
pub mod items;
mod mysql;
mod postgres;

/// A row or file set aside, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    pub place: String,
    pub reason: String,
    /// The offending content, shortened for display.
    pub content: String,
}

/// A source that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("cannot read the source: {0}")]
    Read(String),
    #[error("{0}")]
    Columns(String),
}

/// A source opened for one scan.
pub struct Reader {
    pub columns: Vec<Column>,
    /// Files set aside while opening (CSV: unreadable, bad header).
    pub quarantine: Vec<Quarantined>,
    /// A whole file was set aside: rows absent from this read must not be
    /// taken for deletions.
    pub partial: bool,
    rows: Rows,
}

/// Where a row is, as [`Reader::place`] tells it: the row's ordinal in a
/// database, or a drop's file (its index, shifted by [`FILE_SHIFT`]) and
/// line.
pub type Place = u64;
const FILE_SHIFT: u32 = 40;

/// How much of a SQLite file (a source, `state.db`) is read through a
/// memory map rather than copied page by page: SQLite's own ceiling.
pub const MMAP_BYTES: i64 = 0x7fff_0000;

#[allow(clippy::large_enum_variant)] // one per scan
enum Rows {
    /// Read by [`Reader::for_each`], straight from SQLite's pages; `table`
    /// when `sql` reads a whole table (so it can be ordered), `order` the
    /// `ORDER BY` clause when it is.
    Sqlite {
        /// Locked by the thread that reads ahead ([`ahead`]) while it reads.
        conn: std::sync::Mutex<rusqlite::Connection>,
        sql: String,
        /// The table `sql` reads whole, if it does.
        table: Option<String>,
        order: Option<String>,
        since: Option<(String, Value)>,
        /// The name its rowid answers to, when each read gives the rowids
        /// ([`Reader::with_rowids`]).
        rowid: Option<String>,
    },
    /// The files of a drop folder, in name order, past their headers, with
    /// the position of each of [`Reader::columns`] in each file's header.
    Csv { files: Vec<(csv::CsvFile, Vec<usize>)> },
    /// A PostgreSQL server, read in one read-only snapshot through a cursor.
    Postgres(Box<postgres::Rows>),
    /// A MySQL server, read in one consistent snapshot, streamed.
    Mysql(Box<mysql::Rows>),
    /// An `[[items]]` list, read whole and checked: each row with its row number.
    Items(items::ItemRows),
}

/// What one read of a source gave beside its rows.
#[derive(Debug, Default)]
pub struct Read {
    pub rows: usize,
    /// Rows set aside while reading (CSV: malformed lines).
    pub quarantine: Vec<Quarantined>,
    /// Rows were set aside without being read (see [`Reader::partial`]).
    pub partial: bool,
}

/// Opens the source and reads its columns.
pub fn open(source: &SourceConfig) -> Result<Reader, SourceError> {
    match source {
        SourceConfig::Sqlite { path, table, query } => open_sqlite(path, table.as_deref(), query.as_deref()),
        SourceConfig::Csv { dir, encoding } => open_csv_dir(dir, *encoding),
        SourceConfig::Postgres(db) => postgres::open(db),
        SourceConfig::Mysql(db) => mysql::open(db),
        SourceConfig::Items(list) => {
            let (columns, rows, quarantine) =
                items::read(&list.file, list.sheet.as_deref(), list.encoding, list.level, &list.department)?;
            Ok(Reader { columns, quarantine, partial: false, rows: Rows::Items(rows) })
        }
    }
}

impl Reader {
    /// Calls `each(place, cells)` for every row, in source order (or key
    /// order, see [`Reader::order_by`]), with the cells in the order of
    /// [`Reader::columns`].
    /// `each` may stop the read early.
    pub fn for_each(&self, mut each: impl FnMut(Place, &[Cell<'_>]) -> ControlFlow<()>) -> Result<Read, SourceError> {
        self.for_each_at(|place, _, cells| each(place, cells))
    }

    /// [`Reader::for_each`], with each row's rowid when the reader gives
    /// them ([`Reader::with_rowids`]).
    pub fn for_each_at(
        &self,
        mut each: impl FnMut(Place, Option<i64>, &[Cell<'_>]) -> ControlFlow<()>,
    ) -> Result<Read, SourceError> {
        let mut out = Read::default();
        match &self.rows {
            Rows::Csv { files } => {
                let mut stopped = false;
                for (n, (file, order)) in files.iter().enumerate() {
                    let base = (n as u64) << FILE_SHIFT;
                    let rest_set_aside = file
                        .for_each(&mut out.quarantine, |line, raw| {
                            let cells: Vec<Cell<'_>> = order.iter().map(|&i| raw[i]).collect();
                            out.rows += 1;
                            let flow = each(base | line as u64, None, &cells);
                            stopped = flow.is_break();
                            flow
                        })
                        .map_err(|e| SourceError::Read(format!("{}: {e}", file.name)))?;
                    out.partial |= rest_set_aside;
                    if stopped {
                        break;
                    }
                }
            }
            Rows::Items(rows) => {
                for (place, row) in rows {
                    let cells: Vec<Cell<'_>> = row
                        .iter()
                        .map(|v| match v {
                            Value::Text(t) => Cell::Text(t),
                            _ => Cell::Null,
                        })
                        .collect();
                    out.rows += 1;
                    if each(*place, None, &cells).is_break() {
                        break;
                    }
                }
            }
            Rows::Postgres(pg) => pg.for_each(self.columns.len(), &mut out, &mut |p, c| each(p, None, c))?,
            Rows::Mysql(my) => my.for_each(self.columns.len(), &mut out, &mut |p, c| each(p, None, c))?,
            Rows::Sqlite { conn, sql, order, since, rowid, .. } => {
                // the rowid first, when asked for: `SELECT rowid, * FROM "table"`
                let with_rowid = rowid.as_deref().zip(sql.strip_prefix("SELECT *"));
                let sql = match with_rowid {
                    Some((alias, rest)) => &format!("SELECT {alias}, *{rest}"),
                    None => sql,
                };
                let sql = match since {
                    Some((column, _)) => {
                        format!("SELECT * FROM ({sql}) WHERE \"{}\" >= ?1", column.replace('"', "\"\""))
                    }
                    None => sql.clone(),
                };
                let sql = match order {
                    Some(order) => format!("{sql} ORDER BY {order}"),
                    None => sql,
                };
                let from = since.as_ref().map(|(_, from)| from);
                out = ahead::read(conn, &sql, from, with_rowid.is_some(), &self.columns, &mut each)?;
            }
        }
        Ok(out)
    }

    /// For a SQLite table whose rows are unique by `key` (a unique index
    /// on some of its columns) and which a read in key order would take
    /// through an index, a page lookup per row: makes every read give each
    /// row's rowid ([`Reader::for_each_at`]) and returns true, so that the
    /// scan can keep a row map and read the table in rowid order next time
    /// ([`Reader::order_by_rowid`]). False for any other source.
    pub fn with_rowids(&mut self, key: &[String]) -> bool {
        let Reader { columns, rows, partial, .. } = self;
        let Rows::Sqlite { conn, sql, table: Some(table), since: None, rowid, .. } = rows else { return false };
        let conn = conn.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *partial || key.is_empty() || !key.iter().all(|k| columns.iter().any(|c| &c.name == k)) {
            return false;
        }
        let Some(alias) =
            ["_rowid_", "rowid", "oid"].into_iter().find(|a| !columns.iter().any(|c| c.name.eq_ignore_ascii_case(a)))
        else {
            return false;
        };
        let quoted = gdx_files::quote_ident(table);
        // a WITHOUT ROWID table (or a view) has no rowid to give
        if conn.prepare(&format!("SELECT {alias} FROM {quoted} LIMIT 0")).is_err() {
            return false;
        }
        let clause: Vec<String> = key.iter().map(|k| format!("{} COLLATE BINARY", gdx_files::quote_ident(k))).collect();
        if !walks_an_index(conn, &format!("{sql} ORDER BY {}", clause.join(", "))) || !unique_by(conn, &quoted, key) {
            return false;
        }
        *rowid = Some(alias.to_owned());
        true
    }

    /// Makes [`Reader::for_each`] read a table in rowid order (its stored
    /// order), after [`Reader::with_rowids`].
    pub fn order_by_rowid(&mut self) {
        if let Rows::Sqlite { order, rowid: Some(alias), .. } = &mut self.rows {
            *order = Some(alias.clone());
        }
    }

    /// Makes [`Reader::for_each`] read the rows in ascending order of the
    /// `key` columns, in the order of their encoded keys
    /// ([`gdx_common::key`]), where the source can do so itself: a SQLite
    /// table with an index that gives that order (SQLite walks it instead
    /// of sorting the table into temporary files). Returns whether it will.
    /// `None` reads in source order again.
    pub fn order_by(&mut self, key: Option<&[String]>) -> bool {
        let Reader { columns, rows, .. } = self;
        match (rows, key) {
            (Rows::Sqlite { conn, sql, table: Some(_), order, .. }, Some(key))
                if key.iter().all(|k| columns.iter().any(|c| &c.name == k)) =>
            {
                // BINARY: text by its bytes, as the encoded keys compare
                let cols: Vec<String> =
                    key.iter().map(|k| format!("\"{}\" COLLATE BINARY", k.replace('"', "\"\""))).collect();
                let clause = cols.join(", ");
                let conn = conn.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
                let sorts = sorts_into_temp(conn, &format!("{sql} ORDER BY {clause}"));
                *order = (!sorts).then_some(clause);
                !sorts
            }
            (Rows::Sqlite { order, .. }, None) => {
                *order = None;
                false
            }
            (Rows::Postgres(pg), key) => pg.order_by(&key_columns(columns, key)),
            (Rows::Mysql(my), key) => my.order_by(&key_columns(columns, key)),
            _ => false,
        }
    }

    /// The greatest value of `column` in the source now (None when it holds
    /// no value), for a read by watermark.
    pub fn max_of(&self, column: &str) -> Result<Option<Value>, SourceError> {
        let i = self.columns.iter().position(|c| c.name == column).ok_or_else(|| {
            SourceError::Columns(format!("the source has no column {column:?}; check changed in agent.toml"))
        })?;
        match &self.rows {
            Rows::Sqlite { conn, sql, .. } => {
                let q = format!("SELECT max(\"{}\") FROM ({sql})", column.replace('"', "\"\""));
                conn.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .query_row(&q, [], |r| {
                        Ok(match r.get_ref(0)? {
                            ValueRef::Null => None,
                            ValueRef::Integer(i) => Some(Value::Integer(i)),
                            ValueRef::Real(f) => Some(Value::Real(f)),
                            ValueRef::Text(t) => Some(Value::Text(String::from_utf8_lossy(t).into())),
                            ValueRef::Blob(b) => Some(Value::Blob(b.to_vec())),
                        })
                    })
                    .map_err(|e| SourceError::Read(e.to_string()))
            }
            Rows::Postgres(pg) => pg.max_of(i, column),
            Rows::Mysql(my) => my.max_of(i, column),
            Rows::Csv { .. } | Rows::Items(_) => {
                Err(SourceError::Columns("changed = … works for database sources only".into()))
            }
        }
    }

    /// Makes [`Reader::for_each`] read only the rows whose `column` is at or
    /// past `from`: not all the rows, so none absent is taken for deleted.
    pub fn since(&mut self, column: &str, from: Value) {
        self.partial = true;
        let filter = Some((column.to_owned(), from));
        match &mut self.rows {
            Rows::Sqlite { since, .. } => *since = filter,
            Rows::Postgres(pg) => pg.since = filter,
            Rows::Mysql(my) => my.since = filter,
            Rows::Csv { .. } | Rows::Items(_) => {}
        }
    }

    /// Where the row at `place` is, for people: `row 12`, or `file.csv line 12`.
    pub fn place(&self, place: Place) -> String {
        match &self.rows {
            Rows::Csv { files } => {
                let name = files.get((place >> FILE_SHIFT) as usize).map_or("?", |f| f.0.name.as_str());
                format!("{name} line {}", place & ((1 << FILE_SHIFT) - 1))
            }
            Rows::Items(_) => format!("row {place}"),
            Rows::Sqlite { .. } | Rows::Postgres(_) | Rows::Mysql(_) => format!("row {}", place + 1),
        }
    }
}

/// The lines of SQLite's plan for `sql` (`EXPLAIN QUERY PLAN`), or None
/// when it cannot be read.
fn plan_of(conn: &rusqlite::Connection, sql: &str) -> Option<Vec<String>> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).ok()?;
    stmt.query_map([], |r| r.get::<_, String>(3)).ok()?.collect::<Result<_, _>>().ok()
}

/// Whether SQLite would sort the rows of `sql` itself (its plan says
/// `USE TEMP B-TREE FOR ORDER BY`) rather than walk an index; a plan that
/// cannot be read counts as sorting.
fn sorts_into_temp(conn: &rusqlite::Connection, sql: &str) -> bool {
    plan_of(conn, sql).is_none_or(|plan| plan.iter().any(|d| d.contains("TEMP B-TREE")))
}

/// Whether SQLite reads `sql` by walking an index and looking each row up
/// in the table (not a covering index, not the table itself).
fn walks_an_index(conn: &rusqlite::Connection, sql: &str) -> bool {
    plan_of(conn, sql).is_some_and(|plan| {
        !plan.iter().any(|d| d.contains("TEMP B-TREE") || d.contains("COVERING INDEX"))
            && plan.iter().any(|d| d.contains("USING INDEX"))
    })
}

/// Whether `table` (quoted) holds at most one row for each value of `key`
/// without nulls: a unique index, not partial, on some of the key's columns.
fn unique_by(conn: &rusqlite::Connection, table: &str, key: &[String]) -> bool {
    let check = || -> rusqlite::Result<bool> {
        let mut indexes = conn.prepare(&format!("PRAGMA index_list({table})"))?;
        let unique: Vec<String> = indexes
            .query_map([], |r| {
                Ok((r.get::<_, String>("name")?, r.get::<_, bool>("unique")?, r.get::<_, bool>("partial")?))
            })?
            .filter_map(Result::ok)
            .filter(|(_, unique, partial)| *unique && !partial)
            .map(|(name, ..)| name)
            .collect();
        for index in unique {
            let mut info = conn.prepare(&format!("PRAGMA index_info({})", gdx_files::quote_ident(&index)))?;
            // an expression in the index has no name: not a column of the key
            let names: Vec<Option<String>> = info.query_map([], |r| r.get("name"))?.collect::<Result<_, _>>()?;
            if !names.is_empty() && names.iter().all(|n| n.as_ref().is_some_and(|n| key.contains(n))) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    check().unwrap_or(false)
}

/// For a database server: what its user may do beyond reading (None: only
/// read), for `gdx-agent doctor`; None for files.
pub fn write_access(source: &SourceConfig) -> Option<Result<Option<String>, SourceError>> {
    match source {
        SourceConfig::Postgres(db) => Some(postgres::write_access(db)),
        SourceConfig::Mysql(db) => Some(mysql::write_access(db)),
        SourceConfig::Sqlite { .. } | SourceConfig::Csv { .. } | SourceConfig::Items(_) => None,
    }
}

/// The file whose changes should trigger a sync (the database, or the
/// folder); none for a database server.
pub fn watched_path(source: &SourceConfig) -> Option<&Path> {
    match source {
        SourceConfig::Sqlite { path, .. } => Some(path),
        SourceConfig::Csv { dir, .. } => Some(dir),
        SourceConfig::Items(list) => Some(&list.file),
        SourceConfig::Postgres(_) | SourceConfig::Mysql(_) => None,
    }
}

fn open_sqlite(path: &Path, table: Option<&str>, query: Option<&str>) -> Result<Reader, SourceError> {
    let open_err = |reason: String| SourceError::Open { path: path.display().to_string(), reason };
    if !path.is_file() {
        return Err(open_err("no such file; check path in agent.toml".into()));
    }
    let conn =
        rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| open_err(e.to_string()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| open_err(e.to_string()))?;
    // read through a map of the file: a table read in key order through its
    // index visits its pages out of order, and each read() would copy one
    conn.pragma_update(None, "mmap_size", MMAP_BYTES).map_err(|e| open_err(e.to_string()))?;
    let sql = match (table, query) {
        (Some(t), _) => {
            let exists: bool = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type IN ('table','view') AND name = ?1",
                    [t],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n > 0)
                .map_err(|e| open_err(e.to_string()))?;
            if !exists {
                return Err(SourceError::Read(format!("the database has no table {t:?}; check table in agent.toml")));
            }
            format!("SELECT * FROM \"{t}\"")
        }
        (None, Some(q)) => q.to_owned(),
        (None, None) => return Err(SourceError::Read("no table or query configured".into())),
    };
    let columns: Vec<Column> = {
        let stmt = conn.prepare(&sql).map_err(|e| SourceError::Read(format!("the query does not prepare: {e}")))?;
        if !stmt.readonly() {
            return Err(SourceError::Read(
                "the query would modify the database; only SELECT queries are allowed".into(),
            ));
        }
        stmt.columns()
            .map(|c| Column { name: c.name().to_owned(), decl_type: c.decl_type().unwrap_or_default().to_uppercase() })
            .collect()
    };
    check_columns(&columns)?;
    let rows = Rows::Sqlite {
        conn: std::sync::Mutex::new(conn),
        sql,
        table: table.map(str::to_owned),
        order: None,
        since: None,
        rowid: None,
    };
    Ok(Reader { columns, quarantine: Vec::new(), partial: false, rows })
}

/// The SELECT a database source runs: its table (each part of
/// `schema.table` quoted by `quote`), or its query.
fn database_sql(db: &crate::config::DbSource, quote: fn(&str) -> String) -> Result<String, SourceError> {
    match (&db.table, &db.query) {
        (Some(t), _) => Ok(format!("SELECT * FROM {}", t.split('.').map(quote).collect::<Vec<_>>().join("."))),
        (None, Some(q)) => Ok(q.trim().trim_end_matches(';').to_owned()),
        (None, None) => Err(SourceError::Read("no table or query configured".into())),
    }
}

/// The key's columns as (index, name); none when there is no key, or a
/// key column is not among `columns`.
fn key_columns<'k>(columns: &[Column], key: Option<&'k [String]>) -> Vec<(usize, &'k str)> {
    let found: Option<Vec<(usize, &str)>> = key
        .unwrap_or_default()
        .iter()
        .map(|k| columns.iter().position(|c| &c.name == k).map(|i| (i, k.as_str())))
        .collect();
    found.unwrap_or_default()
}

/// `sql` narrowed to the rows whose column is at or past a watermark, the
/// name and value written into SQL by `quote` and `literal`.
fn since_sql(
    sql: &str,
    since: Option<&(String, Value)>,
    quote: fn(&str) -> String,
    literal: fn(&Value) -> String,
) -> String {
    match since {
        Some((column, from)) => format!("SELECT * FROM ({sql}) AS gdx_q WHERE {} >= {}", quote(column), literal(from)),
        None => sql.to_owned(),
    }
}

/// Converts one row of a database source, `width` values by `convert`,
/// into `buf` and hands it to `each`; `where_` names the source in errors.
fn emit_row(
    out: &mut Read,
    each: &mut dyn FnMut(Place, &[Cell<'_>]) -> ControlFlow<()>,
    buf: &mut Vec<Value>,
    width: usize,
    where_: &str,
    mut convert: impl FnMut(usize) -> Result<Value, String>,
) -> Result<ControlFlow<()>, SourceError> {
    buf.clear();
    for i in 0..width {
        buf.push(convert(i).map_err(|e| SourceError::Read(format!("{where_}: row {}: {e}", out.rows + 1)))?);
    }
    let cells: Vec<Cell<'_>> = buf.iter().map(Cell::from).collect();
    let flow = each(out.rows as Place, &cells);
    out.rows += 1;
    Ok(flow)
}

fn check_columns(columns: &[Column]) -> Result<(), SourceError> {
    let mut seen = std::collections::HashSet::new();
    for c in columns {
        check_column_name(&c.name)
            .map_err(|e| SourceError::Columns(format!("{e}; rename it in the source or select it AS another name")))?;
        if !seen.insert(c.name.to_lowercase()) {
            return Err(SourceError::Columns(format!(
                "column {:?} appears twice in the source (names that differ only in case count as the same)",
                c.name
            )));
        }
    }
    Ok(())
}

/// Opens the CSV files of a drop folder (those ending in `.csv`, not
/// hidden), in name order, and reads their headers: the first file's is the
/// resource's columns; a file whose columns differ, or that cannot be read,
/// is set aside whole.
fn open_csv_dir(dir: &Path, encoding: Encoding) -> Result<Reader, SourceError> {
    let open_err = |reason: String| SourceError::Open { path: dir.display().to_string(), reason };
    let canonical_dir = dir.canonicalize().map_err(|e| open_err(format!("{e}; check dir in agent.toml")))?;
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    let mut out =
        Reader { columns: Vec::new(), quarantine: Vec::new(), partial: false, rows: Rows::Csv { files: vec![] } };
    let set_aside = |out: &mut Reader, place: String, reason: String, content: String| {
        out.partial = true;
        out.quarantine.push(Quarantined { place, reason, content });
    };
    for entry in std::fs::read_dir(&canonical_dir).map_err(|e| open_err(e.to_string()))? {
        let entry = entry.map_err(|e| open_err(e.to_string()))?;
        let raw_name = entry.file_name();
        let Some(name) = raw_name.to_str().map(str::to_owned) else {
            let place = raw_name.to_string_lossy().into_owned();
            set_aside(&mut out, place, "the file name is not valid UTF-8; rename the file".into(), String::new());
            continue;
        };
        if name.starts_with('.') || !name.to_ascii_lowercase().ends_with(".csv") {
            continue; // partial uploads (.tmp, .part) and other files are not extracts
        }
        match entry.path().canonicalize() {
            Ok(real) if real.starts_with(&canonical_dir) && real.is_file() => names.push((name, real)),
            Ok(real) if !real.starts_with(&canonical_dir) => {
                let reason = format!(
                    "the file escapes the drop folder (it leads to {}); drop real files, not links",
                    real.display()
                );
                set_aside(&mut out, name, reason, String::new());
            }
            Ok(_) => {}
            Err(e) => set_aside(&mut out, name, format!("cannot open: {e}"), String::new()),
        }
    }
    names.sort();
    let mut files: Vec<(csv::CsvFile, Vec<usize>)> = Vec::new();
    for (name, path) in names {
        let opened = csv::CsvFile::open(&name, &path, encoding);
        let file = match opened {
            Err(e) => {
                set_aside(&mut out, name, format!("cannot read: {e}"), String::new());
                continue;
            }
            Ok(Err(refused)) => {
                set_aside(&mut out, name, refused.reason, refused.content);
                continue;
            }
            // 0 bytes, or blank lines only: an export that empties the file before writing it,
            // caught midway, is not taken for a file without rows (that has its header)
            Ok(Ok(None)) => {
                let reason = "the file holds not even a header row (still being written?); until it does, or is removed, no row of this resource is taken for deleted".into();
                set_aside(&mut out, name, reason, String::new());
                continue;
            }
            Ok(Ok(Some(file))) => file,
        };
        let order: Vec<usize> = match files.first() {
            None => {
                out.columns =
                    file.header.iter().map(|c| Column { name: c.clone(), decl_type: String::new() }).collect();
                (0..file.header.len()).collect()
            }
            Some((first, _)) => {
                let (mut a, mut b) = (file.header.clone(), first.header.clone());
                a.sort();
                b.sort();
                if a != b {
                    let reason = format!(
                        "its columns differ from those of {}; every file of a resource needs the same header",
                        first.name
                    );
                    let content = file.header.join(",");
                    set_aside(&mut out, name, reason, content);
                    continue;
                }
                first.header.iter().filter_map(|c| file.header.iter().position(|x| x == c)).collect()
            }
        };
        files.push((file, order));
    }
    out.rows = Rows::Csv { files };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table is read in key order only where an index gives that order;
    /// otherwise SQLite would sort the whole table into temporary files.
    #[test]
    fn key_order_only_where_an_index_gives_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(
                "CREATE TABLE by_rowid (id INTEGER PRIMARY KEY, x);
                 CREATE TABLE by_pk (a TEXT, b INTEGER, x, PRIMARY KEY (a, b));
                 CREATE TABLE no_index (id, x);
                 CREATE TABLE nocase (id TEXT COLLATE NOCASE PRIMARY KEY, x);",
            )
            .unwrap();
        let ordered = |table: &str, key: &[&str]| {
            let source = SourceConfig::Sqlite { path: db.clone(), table: Some(table.into()), query: None };
            let key: Vec<String> = key.iter().map(|k| (*k).to_owned()).collect();
            open(&source).unwrap().order_by(Some(&key))
        };
        assert!(ordered("by_rowid", &["id"]));
        assert!(ordered("by_pk", &["a", "b"]));
        assert!(!ordered("by_pk", &["b"]), "no index starts with b");
        assert!(!ordered("no_index", &["id"]));
        assert!(!ordered("nocase", &["id"]), "the index sorts without case, the keys by bytes");
    }

    /// A file of 0 bytes in a drop (an export that empties its file before
    /// writing it, caught midway) is set aside, so its rows are not taken
    /// for deletions; a file with only its header does hold no rows.
    #[test]
    fn an_empty_file_in_a_drop_is_set_aside_not_taken_for_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "id,name\n1,卓玛\n").unwrap();
        std::fs::write(dir.path().join("b.csv"), "").unwrap();
        let source = SourceConfig::Csv { dir: dir.path().to_owned(), encoding: Encoding::Auto };
        let reader = open(&source).unwrap();
        assert!(reader.partial);
        assert_eq!(reader.quarantine.len(), 1);
        assert!(reader.quarantine[0].place == "b.csv" && reader.quarantine[0].reason.contains("not even a header"));
        std::fs::write(dir.path().join("b.csv"), "id,name\n").unwrap();
        let reader = open(&source).unwrap();
        assert!(!reader.partial && reader.quarantine.is_empty());
    }
}
