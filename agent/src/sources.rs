//! Reading a resource's rows from its source: a SQLite table or query, or a
//! drop folder of CSV files.
//!
//! A source opens as a [`Reader`]: the columns and the files set aside,
//! then the rows one at a time as borrowed cells, so a scan of a large table
//! copies only the rows that changed; the bad rows are set aside with the
//! reason each was. A bad row or file never stops the
//! rows around it; only a source that cannot be read at all is an error.
//! CSV follows RFC 4180 (quoted fields with commas, quotes and newlines),
//! with a header row, in UTF-8 (with or without BOM) or GBK.

use std::path::{Path, PathBuf};

use gdx_common::data::{Cell, Column, Value, check_column_name};
use rusqlite::OpenFlags;
use rusqlite::types::ValueRef;

use crate::config::{Encoding, SourceConfig};

/// What a source holds right now.
#[derive(Debug, Default)]
pub struct Extract {
    pub columns: Vec<Column>,
    pub rows: Vec<SourceRow>,
    pub quarantine: Vec<Quarantined>,
    /// A whole file was set aside: its rows are missing from `rows`, so
    /// rows absent from this extract must not be taken for deletions.
    pub partial: bool,
}

/// One good row and where it came from (`people.csv line 7`, `row 12`).
#[derive(Debug)]
pub struct SourceRow {
    pub place: String,
    pub values: Vec<Value>,
}

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
    /// Rows and files set aside while opening (CSV: parse errors).
    pub quarantine: Vec<Quarantined>,
    /// See [`Extract::partial`].
    pub partial: bool,
    rows: Rows,
}

enum Rows {
    /// Read by [`Reader::for_each`], straight from SQLite's pages; `table`
    /// when `sql` reads a whole table (so it can be ordered).
    Sqlite { conn: rusqlite::Connection, sql: String, table: bool },
    /// Already parsed.
    Parsed(Vec<SourceRow>),
}

/// Opens the source and reads its columns.
pub fn open(source: &SourceConfig) -> Result<Reader, SourceError> {
    match source {
        SourceConfig::Sqlite { path, table, query } => open_sqlite(path, table.as_deref(), query.as_deref()),
        SourceConfig::Csv { dir, encoding } => {
            let e = read_csv_dir(dir, *encoding)?;
            Ok(Reader { columns: e.columns, quarantine: e.quarantine, partial: e.partial, rows: Rows::Parsed(e.rows) })
        }
    }
}

impl Reader {
    /// Calls `each(ordinal, cells)` for every row, in source order, with the
    /// cells in the order of [`Reader::columns`]; `ordinal` counts from 0.
    /// Returns the number of rows.
    pub fn for_each(&self, mut each: impl FnMut(usize, &[Cell<'_>])) -> Result<usize, SourceError> {
        let read = |e: rusqlite::Error| SourceError::Read(e.to_string());
        match &self.rows {
            Rows::Parsed(rows) => {
                for (n, row) in rows.iter().enumerate() {
                    let cells: Vec<Cell<'_>> = row.values.iter().map(Cell::from).collect();
                    each(n, &cells);
                }
                Ok(rows.len())
            }
            Rows::Sqlite { conn, sql, .. } => {
                let mut stmt = conn.prepare(sql).map_err(read)?;
                let names: Vec<&str> = stmt.column_names().collect();
                if names.len() != self.columns.len() || names.iter().zip(&self.columns).any(|(a, b)| *a != b.name) {
                    return Err(SourceError::Read(
                        "the table's columns changed while it was being read; the next scan reads it again".into(),
                    ));
                }
                let width = self.columns.len();
                let mut rows = stmt.query([]).map_err(read)?;
                let mut n = 0;
                while let Some(row) = rows.next().map_err(read)? {
                    let mut cells = Vec::with_capacity(width);
                    for i in 0..width {
                        cells.push(match row.get_ref(i).map_err(read)? {
                            ValueRef::Null => Cell::Null,
                            ValueRef::Integer(i) => Cell::Integer(i),
                            ValueRef::Real(f) => Cell::Real(f),
                            ValueRef::Text(t) => std::str::from_utf8(t).map_or(Cell::Blob(t), Cell::Text),
                            ValueRef::Blob(b) => Cell::Blob(b),
                        });
                    }
                    each(n, &cells);
                    n += 1;
                }
                Ok(n)
            }
        }
    }

    /// Makes [`Reader::for_each`] read the rows in ascending order of the
    /// `key` columns where the source can do so itself (a SQLite table that
    /// has them); returns whether it will.
    pub fn order_by(&mut self, key: &[String]) -> bool {
        let Reader { columns, rows, .. } = self;
        match rows {
            Rows::Sqlite { sql, table: true, .. } if key.iter().all(|k| columns.iter().any(|c| &c.name == k)) => {
                let cols: Vec<String> = key.iter().map(|k| format!("\"{}\"", k.replace('"', "\"\""))).collect();
                sql.push_str(&format!(" ORDER BY {}", cols.join(", ")));
                true
            }
            _ => false,
        }
    }

    /// Where row `ordinal` is, for people: `row 12`, or `file.csv line 12`.
    pub fn place(&self, ordinal: usize) -> String {
        match &self.rows {
            Rows::Parsed(rows) => rows.get(ordinal).map_or_else(|| format!("row {}", ordinal + 1), |r| r.place.clone()),
            Rows::Sqlite { .. } => format!("row {}", ordinal + 1),
        }
    }
}

/// The file whose changes should trigger a sync (the database, or the folder).
pub fn watched_path(source: &SourceConfig) -> &Path {
    match source {
        SourceConfig::Sqlite { path, .. } => path,
        SourceConfig::Csv { dir, .. } => dir,
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
    let rows = Rows::Sqlite { conn, sql, table: table.is_some() };
    Ok(Reader { columns, quarantine: Vec::new(), partial: false, rows })
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

fn read_csv_dir(dir: &Path, encoding: Encoding) -> Result<Extract, SourceError> {
    let open_err = |reason: String| SourceError::Open { path: dir.display().to_string(), reason };
    let canonical_dir = dir.canonicalize().map_err(|e| open_err(format!("{e}; check dir in agent.toml")))?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut out = Extract::default();
    for entry in std::fs::read_dir(&canonical_dir).map_err(|e| open_err(e.to_string()))? {
        let entry = entry.map_err(|e| open_err(e.to_string()))?;
        let raw_name = entry.file_name();
        let Some(name) = raw_name.to_str().map(str::to_owned) else {
            out.partial = true;
            out.quarantine.push(Quarantined {
                place: raw_name.to_string_lossy().into_owned(),
                reason: "the file name is not valid UTF-8; rename the file".into(),
                content: String::new(),
            });
            continue;
        };
        if name.starts_with('.') || !name.to_ascii_lowercase().ends_with(".csv") {
            continue; // partial uploads (.tmp, .part) and other files are not extracts
        }
        let path = entry.path();
        let before = out.quarantine.len();
        match path.canonicalize() {
            Ok(real) if real.starts_with(&canonical_dir) && real.is_file() => files.push((name, real)),
            Ok(real) if !real.starts_with(&canonical_dir) => out.quarantine.push(Quarantined {
                place: name,
                reason: format!(
                    "the file escapes the drop folder (it leads to {}); drop real files, not links",
                    real.display()
                ),
                content: String::new(),
            }),
            Ok(_) => {}
            Err(e) => out.quarantine.push(Quarantined {
                place: name,
                reason: format!("cannot open: {e}"),
                content: String::new(),
            }),
        }
        out.partial |= out.quarantine.len() > before;
    }
    files.sort();
    let mut header: Option<(String, Vec<String>)> = None;
    for (name, path) in files {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                out.partial = true;
                out.quarantine.push(Quarantined {
                    place: name,
                    reason: format!("cannot read: {e}"),
                    content: String::new(),
                });
                continue;
            }
        };
        let file = parse_csv_file(&name, &bytes, encoding);
        let whole_file_refused = file.header.is_none() && !file.quarantine.is_empty();
        out.partial |= whole_file_refused;
        out.quarantine.extend(file.quarantine);
        let Some(cols) = file.header else { continue };
        let order: Vec<usize> = match &header {
            None => {
                out.columns = cols.iter().map(|c| Column { name: c.clone(), decl_type: String::new() }).collect();
                header = Some((name.clone(), cols.clone()));
                (0..cols.len()).collect()
            }
            Some((first, first_cols)) => {
                let mut sorted_a = cols.clone();
                let mut sorted_b = first_cols.clone();
                sorted_a.sort();
                sorted_b.sort();
                if sorted_a != sorted_b {
                    out.partial = true;
                    out.quarantine.push(Quarantined {
                        place: name.clone(),
                        reason: format!(
                            "its columns differ from those of {first}; every file of a resource needs the same header"
                        ),
                        content: cols.join(","),
                    });
                    continue;
                }
                first_cols.iter().filter_map(|c| cols.iter().position(|x| x == c)).collect()
            }
        };
        for (place, values) in file.rows {
            let values = order.iter().map(|&i| values[i].clone()).collect();
            out.rows.push(SourceRow { place, values });
        }
    }
    Ok(out)
}

/// One CSV file, parsed.
#[derive(Debug, Default)]
pub struct CsvFile {
    pub header: Option<Vec<String>>,
    pub rows: Vec<(String, Vec<Value>)>,
    pub quarantine: Vec<Quarantined>,
}

/// Parses one CSV file: header row, RFC 4180 records, in `encoding`
/// (`Auto`: UTF-8 when the whole file is valid UTF-8, otherwise GBK).
/// Unquoted empty fields are NULL; quoted empty fields are empty text.
pub fn parse_csv_file(name: &str, bytes: &[u8], encoding: Encoding) -> CsvFile {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let encoding = match encoding {
        Encoding::Auto => detect(bytes),
        e => e,
    };
    let mut out = CsvFile::default();
    let mut records = Records { b: bytes, i: 0, line: 1 };
    let quarantine_file = |out: &mut CsvFile, reason: String, content: String| {
        out.quarantine.push(Quarantined { place: name.to_owned(), reason, content: shorten(&content) });
    };
    // header
    let header = loop {
        match records.next() {
            None => return out, // empty file: no rows
            Some(Err((line, reason, raw))) => {
                quarantine_file(
                    &mut out,
                    format!("the header (line {line}) is malformed: {reason}"),
                    lossy(&raw, encoding),
                );
                return out;
            }
            Some(Ok((_, fields))) if fields.len() == 1 && fields[0].0.is_empty() => continue,
            Some(Ok((line, fields))) => {
                let mut names = Vec::new();
                for (raw, _) in &fields {
                    match decode(raw, encoding) {
                        Some(s) => names.push(s.trim().to_owned()),
                        None => {
                            quarantine_file(
                                &mut out,
                                format!("the header (line {line}) has bytes that are not valid {}", enc_name(encoding)),
                                lossy(raw, encoding),
                            );
                            return out;
                        }
                    }
                }
                break names;
            }
        }
    };
    for n in &header {
        if let Err(e) = check_column_name(n) {
            quarantine_file(&mut out, format!("{e}; fix the header row"), header.join(","));
            return out;
        }
    }
    if let Some(dup) =
        header.iter().enumerate().find(|(i, h)| header[..*i].iter().any(|x| x.to_lowercase() == h.to_lowercase()))
    {
        quarantine_file(&mut out, format!("column {:?} appears twice in the header", dup.1), header.join(","));
        return out;
    }
    for rec in records.by_ref() {
        match rec {
            Err((line, reason, raw)) => out.quarantine.push(Quarantined {
                place: format!("{name} line {line}"),
                reason: format!("malformed CSV: {reason}"),
                content: shorten(&lossy(&raw, encoding)),
            }),
            Ok((_, fields)) if fields.len() == 1 && fields[0].0.is_empty() => {} // blank line
            Ok((line, fields)) => {
                let place = format!("{name} line {line}");
                if fields.len() != header.len() {
                    out.quarantine.push(Quarantined {
                        place,
                        reason: format!("malformed CSV: {} fields, the header has {}", fields.len(), header.len()),
                        content: shorten(&fields.iter().map(|f| lossy(&f.0, encoding)).collect::<Vec<_>>().join(",")),
                    });
                    continue;
                }
                let mut values = Vec::with_capacity(fields.len());
                let mut bad = false;
                for (raw, quoted) in &fields {
                    if raw.is_empty() && !quoted {
                        values.push(Value::Null);
                        continue;
                    }
                    match decode(raw, encoding) {
                        Some(s) => values.push(Value::Text(s)),
                        None => {
                            bad = true;
                            break;
                        }
                    }
                }
                if bad {
                    out.quarantine.push(Quarantined {
                        place,
                        reason: format!(
                            "bytes that are not valid {}; save the file as UTF-8 or GBK",
                            enc_name(encoding)
                        ),
                        content: shorten(&fields.iter().map(|f| lossy(&f.0, encoding)).collect::<Vec<_>>().join(",")),
                    });
                } else {
                    out.rows.push((place, values));
                }
            }
        }
    }
    out.header = Some(header);
    out
}

/// UTF-8 when the bytes are UTF-8 (or only end in the middle of a
/// character, as a file still being copied does); GBK when every byte
/// decodes as GBK; otherwise UTF-8, so that the bad bytes quarantine their
/// rows instead of the whole file being read as garbled GBK.
fn detect(bytes: &[u8]) -> Encoding {
    match std::str::from_utf8(bytes) {
        Ok(_) => Encoding::Utf8,
        Err(e) if e.error_len().is_none() => Encoding::Utf8,
        Err(_) if encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(bytes).is_some() => {
            Encoding::Gbk
        }
        Err(_) => Encoding::Utf8,
    }
}

fn enc_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Gbk => "GBK",
        _ => "UTF-8",
    }
}

fn decode(raw: &[u8], encoding: Encoding) -> Option<String> {
    match encoding {
        Encoding::Gbk => {
            encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(raw).map(|s| s.into_owned())
        }
        _ => std::str::from_utf8(raw).ok().map(str::to_owned),
    }
}

/// Bytes for display: decoded in the file's encoding, bad bytes replaced.
fn lossy(raw: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Gbk => encoding_rs::GBK.decode_without_bom_handling(raw).0.into_owned(),
        _ => String::from_utf8_lossy(raw).into_owned(),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 200 { s.chars().take(200).collect::<String>() + "…" } else { s.to_owned() }
}

/// A record: its first line and fields (bytes, was-quoted); or an error with
/// the line, the reason and the raw bytes skipped.
type Record = Result<(usize, Vec<(Vec<u8>, bool)>), (usize, String, Vec<u8>)>;

/// RFC 4180 records over bytes. Only `,` `"` `\r` `\n` are structural; they
/// are ASCII and never occur inside a GBK double-byte character, so parsing
/// bytes before decoding is safe for both encodings.
struct Records<'a> {
    b: &'a [u8],
    i: usize,
    line: usize,
}

impl Records<'_> {
    fn skip_line(&mut self, start: usize, first_line: usize, reason: String) -> Record {
        while self.i < self.b.len() && self.b[self.i] != b'\n' {
            self.i += 1;
        }
        let raw = self.b[start..self.i].to_vec();
        if self.i < self.b.len() {
            self.i += 1;
            self.line += 1;
        }
        Err((first_line, reason, raw))
    }
}

impl Iterator for Records<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.i >= self.b.len() {
            return None;
        }
        let start = self.i;
        let first_line = self.line;
        let mut fields = Vec::new();
        loop {
            let mut field = Vec::new();
            let quoted = self.b.get(self.i) == Some(&b'"');
            if quoted {
                self.i += 1;
                let mut closed = false;
                while self.i < self.b.len() {
                    let c = self.b[self.i];
                    if c == b'"' {
                        if self.b.get(self.i + 1) == Some(&b'"') {
                            field.push(b'"');
                            self.i += 2;
                            continue;
                        }
                        self.i += 1;
                        closed = true;
                        break;
                    }
                    if c == b'\n' {
                        self.line += 1;
                    }
                    field.push(c);
                    self.i += 1;
                }
                if !closed {
                    let raw = self.b[start..].to_vec();
                    return Some(Err((first_line, "a quoted field is never closed".into(), raw)));
                }
                match self.b.get(self.i) {
                    None | Some(b',' | b'\n' | b'\r') => {}
                    Some(_) => return Some(self.skip_line(start, first_line, "text after a closing quote".into())),
                }
            } else {
                while let Some(&c) = self.b.get(self.i) {
                    if c == b',' || c == b'\n' || c == b'\r' {
                        break;
                    }
                    if c == b'"' {
                        return Some(self.skip_line(start, first_line, "a quote inside an unquoted field".into()));
                    }
                    field.push(c);
                    self.i += 1;
                }
            }
            fields.push((field, quoted));
            match self.b.get(self.i) {
                None => return Some(Ok((first_line, fields))),
                Some(b',') => self.i += 1,
                Some(b'\r') if self.b.get(self.i + 1) == Some(&b'\n') => {
                    self.i += 2;
                    self.line += 1;
                    return Some(Ok((first_line, fields)));
                }
                Some(b'\n') => {
                    self.i += 1;
                    self.line += 1;
                    return Some(Ok((first_line, fields)));
                }
                Some(_) => return Some(self.skip_line(start, first_line, "a stray carriage return".into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn rfc4180_quoting_and_newlines() {
        let csv = "id,name,note\r\n1,\"Zhang, San\",\"said \"\"hi\"\"\"\r\n2,李四,\"two\nlines\"\n3,,\"\"\n";
        let f = parse_csv_file("a.csv", csv.as_bytes(), Encoding::Auto);
        assert!(f.quarantine.is_empty(), "{:?}", f.quarantine);
        assert_eq!(f.header.unwrap(), vec!["id", "name", "note"]);
        assert_eq!(f.rows[0].1, vec![text("1"), text("Zhang, San"), text("said \"hi\"")]);
        assert_eq!(f.rows[1].1, vec![text("2"), text("李四"), text("two\nlines")]);
        assert_eq!(f.rows[2], ("a.csv line 5".into(), vec![text("3"), Value::Null, text("")]));
    }

    #[test]
    fn bom_and_gbk() {
        let mut utf8 = b"\xEF\xBB\xBF".to_vec();
        utf8.extend_from_slice("证件号码,姓名\n1,卓玛\n".as_bytes());
        let f = parse_csv_file("u.csv", &utf8, Encoding::Auto);
        assert_eq!(f.header.unwrap(), vec!["证件号码", "姓名"]);
        assert_eq!(f.rows[0].1[1], text("卓玛"));
        let (gbk, _, _) = encoding_rs::GBK.encode("证件号码,姓名\n1,马晓明\n2,\"韩, 撒拉\"\n");
        let f = parse_csv_file("g.csv", &gbk, Encoding::Auto);
        assert!(f.quarantine.is_empty());
        assert_eq!(f.rows[0].1[1], text("马晓明"));
        assert_eq!(f.rows[1].1[1], text("韩, 撒拉"));
        // the same bytes read as UTF-8 by configuration: rows quarantined, not garbled
        let f = parse_csv_file("g.csv", &gbk, Encoding::Utf8);
        assert!(f.rows.is_empty());
        assert!(f.quarantine[0].reason.contains("not valid UTF-8"), "{:?}", f.quarantine);
    }

    #[test]
    fn malformed_lines_are_quarantined_and_neighbours_kept() {
        let csv = "id,name\n1,a\n2,b,extra\n3,\"c\"x\n4,d\"e\n5,e\n6,\"never closed\n7,f\n";
        let f = parse_csv_file("m.csv", csv.as_bytes(), Encoding::Utf8);
        let ids: Vec<_> = f.rows.iter().map(|r| r.1[0].clone()).collect();
        assert_eq!(ids, vec![text("1"), text("5")]);
        let reasons: Vec<_> = f.quarantine.iter().map(|q| (q.place.as_str(), q.reason.as_str())).collect();
        assert_eq!(reasons[0], ("m.csv line 3", "malformed CSV: 3 fields, the header has 2"));
        assert_eq!(reasons[1], ("m.csv line 4", "malformed CSV: text after a closing quote"));
        assert_eq!(reasons[2], ("m.csv line 5", "malformed CSV: a quote inside an unquoted field"));
        assert_eq!(reasons[3], ("m.csv line 7", "malformed CSV: a quoted field is never closed"));
    }

    #[test]
    fn bad_headers_quarantine_the_file() {
        for (csv, needle) in [
            ("id,na me\n1,2\n", "not a plain identifier"),
            ("id,\"x;DROP\"\n1,2\n", "not a plain identifier"),
            ("id,id\n1,2\n", "appears twice"),
        ] {
            let f = parse_csv_file("h.csv", csv.as_bytes(), Encoding::Utf8);
            assert!(f.rows.is_empty() && f.header.is_none());
            assert!(f.quarantine[0].reason.contains(needle), "{csv}: {:?}", f.quarantine);
        }
        assert!(parse_csv_file("e.csv", b"", Encoding::Auto).quarantine.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 42;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..(x % 80))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"a,\"\r\n\xff\xd6"[(x % 7) as usize]
                })
                .collect();
            let _ = parse_csv_file("f.csv", &bytes, Encoding::Auto);
        }
    }
}
