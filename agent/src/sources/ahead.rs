//! A SQLite source read ahead on a thread of its own: SQLite steps through
//! the rows and copies each one's cells into a chunk, while the scan's
//! thread takes the rows of the chunk before (checks that each text is
//! UTF-8, fingerprints the row and compares it with the saved state). A
//! whole read of a large table then takes about the time of the slower
//! half, not of both: SQLite's own reading was about half of the scan
//! thread's work in a sync of a 1 % change.
//!
//! At most [`CHUNKS`] chunks of at most [`CHUNK_BYTES`] wait between the two
//! threads, so the agent's memory does not grow with the table. When the
//! scan stops reading (a read in key order that finds its order wrong),
//! the reading thread stops at its next row; when the reading fails, the
//! scan takes every row read before the failure, and the error is the
//! read's.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use gdx_common::data::{Cell, Column, Value};
use rusqlite::types::ValueRef;

use super::{Place, Read, SourceError};

/// Bytes of rows gathered before they are handed to the scan, at most: the
/// first chunk is the first row, and each one after may be twice the one
/// before, so a read whose rows come slowly (few match its filter) hands
/// them on as they come, and a large table goes in large chunks.
const CHUNK_BYTES: usize = 256 << 10;
/// Chunks read ahead of the scan at most.
const CHUNKS: usize = 4;

const NULL: u8 = 0;
const INTEGER: u8 = 1;
const REAL: u8 = 2;
const TEXT: u8 = 3;
const BLOB: u8 = 4;

/// What the scan does with each row: its place, its rowid, its cells.
pub(super) type Each<'e> = dyn FnMut(Place, Option<i64>, &[Cell<'_>]) -> ControlFlow<()> + 'e;

/// One read of `sql` (with `since`'s value as its parameter, if given),
/// each row's rowid first when `with_rowid`, its other columns `columns`:
/// calls `each` with every row, in order, until it stops the read.
pub(super) fn read(
    conn: &Mutex<rusqlite::Connection>,
    sql: &str,
    since: Option<&Value>,
    with_rowid: bool,
    columns: &[Column],
    each: &mut Each<'_>,
) -> Result<Read, SourceError> {
    let width = columns.len();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (to_scan, chunks) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS);
        let stop_reading = &stop;
        let reader = scope.spawn(move || read_rows(conn, sql, since, with_rowid, columns, &to_scan, stop_reading));
        let mut out = Read::default();
        let mut damaged = false;
        'read: for chunk in chunks.iter() {
            let mut rest = chunk.as_slice();
            let mut cells = Vec::with_capacity(width);
            while !rest.is_empty() {
                let Some(at) = take_rowid(&mut rest) else {
                    damaged = true;
                    break 'read;
                };
                cells.clear();
                for _ in 0..width {
                    let Some(cell) = take_cell(&mut rest) else {
                        damaged = true;
                        break 'read;
                    };
                    cells.push(cell);
                }
                let flow = each(out.rows as Place, at, &cells);
                out.rows += 1;
                if flow.is_break() {
                    break 'read;
                }
            }
        }
        // the reading thread stops at its next row, or its next chunk if it waits on a full channel
        stop.store(true, Ordering::Relaxed);
        drop(chunks);
        let read = reader.join().map_err(|_| SourceError::Read("the thread reading the source failed".into()))?;
        read?;
        if damaged {
            // this process wrote the chunk: it cannot be, but it is no reason to stop with a panic
            return Err(SourceError::Read("a row read ahead did not come back whole".into()));
        }
        Ok(out)
    })
}

/// The reading thread: every row of `sql`, as chunks sent to the scan,
/// until the scan says `stop`.
fn read_rows(
    conn: &Mutex<rusqlite::Connection>,
    sql: &str,
    since: Option<&Value>,
    with_rowid: bool,
    columns: &[Column],
    to_scan: &std::sync::mpsc::SyncSender<Vec<u8>>,
    stop: &AtomicBool,
) -> Result<(), SourceError> {
    let failed = |e: rusqlite::Error| SourceError::Read(e.to_string());
    let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    let mut stmt = conn.prepare(sql).map_err(failed)?;
    let skip = usize::from(with_rowid);
    let names: Vec<&str> = stmt.column_names().skip(skip).collect();
    if names.len() != columns.len() || names.iter().zip(columns).any(|(a, b)| *a != b.name) {
        return Err(SourceError::Read(
            "the table's columns changed while it was being read; the next scan reads it again".into(),
        ));
    }
    let mut rows = match since {
        Some(from) => stmt.query([gdx_files::tables::Sql(from)]),
        None => stmt.query([]),
    }
    .map_err(failed)?;
    let mut chunk = Vec::new();
    let mut limit = 1;
    let read = loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break Ok(()),
            Err(e) => break Err(failed(e)),
        };
        // a row is put whole or not at all: the rows before a failure still reach the scan
        let start = chunk.len();
        if let Err(e) = put_row(&mut chunk, row, with_rowid, columns.len()) {
            chunk.truncate(start);
            break Err(failed(e));
        }
        if chunk.len() >= limit {
            limit = (chunk.len() * 2).min(CHUNK_BYTES);
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(limit + 4096));
            if to_scan.send(full).is_err() {
                return Ok(()); // the scan stopped reading
            }
        }
    };
    if !chunk.is_empty() {
        let _ = to_scan.send(chunk);
    }
    read
}

/// Puts one row into `chunk`: whether a rowid comes first (and it), then
/// each of its `width` cells, a tag and the value.
fn put_row(chunk: &mut Vec<u8>, row: &rusqlite::Row<'_>, with_rowid: bool, width: usize) -> rusqlite::Result<()> {
    let skip = usize::from(with_rowid);
    if with_rowid {
        chunk.push(1);
        chunk.extend_from_slice(&row.get::<_, i64>(0)?.to_le_bytes());
    } else {
        chunk.push(0);
    }
    for i in skip..width + skip {
        match row.get_ref(i)? {
            ValueRef::Null => chunk.push(NULL),
            ValueRef::Integer(v) => {
                chunk.push(INTEGER);
                chunk.extend_from_slice(&v.to_le_bytes());
            }
            ValueRef::Real(f) => {
                chunk.push(REAL);
                chunk.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            ValueRef::Text(t) => put_bytes(chunk, TEXT, t),
            ValueRef::Blob(b) => put_bytes(chunk, BLOB, b),
        }
    }
    Ok(())
}

/// A text or blob: its tag, its length (SQLite's values are below 2 GiB),
/// its bytes.
fn put_bytes(chunk: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    chunk.push(tag);
    chunk.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    chunk.extend_from_slice(bytes);
}

fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

/// The rowid a row starts with, if it has one; `None` when the chunk is cut.
fn take_rowid(rest: &mut &[u8]) -> Option<Option<i64>> {
    match take::<1>(rest)? {
        [0] => Some(None),
        _ => Some(Some(i64::from_le_bytes(take(rest)?))),
    }
}

/// The next cell; a text that is not UTF-8 is the bytes it is, as when
/// read straight from SQLite.
fn take_cell<'a>(rest: &mut &'a [u8]) -> Option<Cell<'a>> {
    Some(match take::<1>(rest)?[0] {
        NULL => Cell::Null,
        INTEGER => Cell::Integer(i64::from_le_bytes(take(rest)?)),
        REAL => Cell::Real(f64::from_bits(u64::from_le_bytes(take(rest)?))),
        tag => {
            let len = u32::from_le_bytes(take(rest)?) as usize;
            let bytes = rest.get(..len)?;
            *rest = &rest[len..];
            match tag {
                TEXT => std::str::from_utf8(bytes).map_or(Cell::Blob(bytes), Cell::Text),
                _ => Cell::Blob(bytes),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of value comes back as SQLite gave it, with its rowid,
    /// across chunks; a scan that stops reading stops the reading thread.
    #[test]
    fn rows_come_back_whole_and_a_stop_stops_the_reader() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB)").unwrap();
        let n = 20_000;
        for k in 0..n {
            conn.execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    k,
                    k as f64 / 3.0,
                    if k % 7 == 0 { None } else { Some(format!("藏{k}").repeat(k as usize % 13)) },
                    vec![k as u8; k as usize % 40],
                ],
            )
            .unwrap();
        }
        // a text that is not UTF-8 stays bytes
        conn.execute("INSERT INTO t VALUES (-1, 0.5, CAST(x'ff00' AS TEXT), NULL)", []).unwrap();
        let columns: Vec<Column> =
            ["i", "r", "s", "b"].iter().map(|c| Column { name: (*c).into(), decl_type: String::new() }).collect();
        let conn = Mutex::new(conn);
        let mut seen = 0;
        let read = read(&conn, "SELECT rowid, * FROM t ORDER BY rowid", None, true, &columns, &mut |place, at, c| {
            let k = place as i64;
            assert_eq!(at, Some(k + 1));
            if k < n {
                assert_eq!(c[0], Cell::Integer(k));
                assert_eq!(c[1], Cell::Real(k as f64 / 3.0));
                let text = format!("藏{k}").repeat(k as usize % 13);
                assert_eq!(c[2], if k % 7 == 0 { Cell::Null } else { Cell::Text(&text) });
                assert_eq!(c[3], Cell::Blob(&vec![k as u8; k as usize % 40]));
            } else {
                assert_eq!(c[2], Cell::Blob(&[0xff, 0x00]));
                assert_eq!(c[3], Cell::Null);
            }
            seen += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!((read.rows, seen), (n as usize + 1, n + 1));
        let stopped = super::read(&conn, "SELECT * FROM t", None, false, &columns, &mut |place, at, _| {
            assert_eq!(at, None);
            if place == 10 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
        assert_eq!(stopped.rows, 11);
        // a read the scan stops ends though its rows would never fill a chunk: this one has no end
        let endless =
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x AS i FROM c WHERE x % 100000 = 0";
        let first = super::read(&conn, endless, None, false, &columns[..1], &mut |_, _, c| {
            assert_eq!(c, [Cell::Integer(100_000)]);
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(first.rows, 1);
        // columns that are not the ones expected: the read's error, no rows
        let err = super::read(&conn, "SELECT i, s FROM t", None, false, &columns, &mut |_, _, _| {
            panic!("no row should be read")
        })
        .unwrap_err();
        assert!(err.to_string().contains("columns changed"), "{err}");
        // a row that fails to read (SQLite's integer overflow, at i = 15000): every row before it
        // reaches the scan, in order, and the error is the read's
        let failing = "SELECT CASE WHEN i = 15000 THEN abs(i - i - 9223372036854775807 - 1) ELSE i END AS i
                       FROM t ORDER BY rowid";
        let mut before = 0;
        let err = super::read(&conn, failing, None, false, &columns[..1], &mut |place, _, c| {
            assert_eq!(c, [Cell::Integer(place as i64)]);
            before += 1;
            ControlFlow::Continue(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("integer overflow"), "{err}");
        assert_eq!(before, 15_000);
    }
}
