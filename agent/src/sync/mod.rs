//! Change detection: compare a resource's source with the state saved at
//! the last sync, and write the difference as signed, numbered changesets
//! into the outbox.
//!
//! The saved state is one digest per row, by key. Rows whose key is new are
//! inserts, rows whose digest changed are updates, saved keys no longer in
//! the source are deletes; nothing else travels. The source is streamed: a
//! row whose digest matches is never copied.
//!
//! Three threads: this one streams the source and gathers the changes, a
//! second encodes, compresses and signs each changeset, a third
//! commits each in **one transaction** with its rows' new digests and the
//! next number, and calls `committed` so the uploader sends it while the
//! next ones are made. A first transaction records the resource's columns
//! and catalogue entry, a last one the row count and the quarantine. A
//! table with an index on its key is read in key order beside the saved
//! state read in the same order (`read`); other sources look keys up in
//! the saved state. Changes that arrive in key order leave as changesets
//! while the source is read; others are sorted through temporary files
//! (`spill`) and leave once it is read. Each changeset is sorted by key;
//! deletions follow once the whole source is read. Killed
//! before a changeset's commit, its
//! rows still carry their old digests, so the next scan finds and sends
//! them again; after it, the changeset waits in the outbox until the hub
//! acknowledges it.
//!
//! Schema drift: a new column flows through (its rows become updates). A
//! column that disappears (dropped or renamed) or whose declared type
//! changes pauses the resource with a reason; other resources carry on.

use gdx_certs::pki;
use gdx_common::catalog::CatalogEntry;
use gdx_common::data::{Cell, Column, DigestKind, Value, merge_schema};
use rusqlite::{OptionalExtension, params};

use crate::catalog;
use crate::config::ResourceConfig;
use crate::identity::Signer;
use crate::sources::{self, Quarantined};
use crate::state::State;

mod changeset;
mod read;
mod rowmap;
mod spill;

use read::Pass;

/// What one scan of one resource did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ScanReport {
    pub resource: String,
    pub scanned: usize,
    pub inserted: usize,
    pub updated: usize,
    pub deleted: usize,
    pub quarantined: usize,
    pub changesets: usize,
    /// Set when the resource is paused (schema drift) instead of synced.
    pub paused: Option<String>,
    /// The new version of the resource's catalogue entry this scan staged.
    pub entry_version: Option<u64>,
    /// How the source was read.
    pub read: ReadOrder,
}

/// How a scan read its source: whole in key order beside the saved state,
/// whole in rowid order beside the row map (a SQLite table keyed through
/// an index, after its first sync), whole in its own order (its changes
/// sorted through temporary files), or only the rows past its watermark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadOrder {
    #[default]
    KeyOrder,
    SourceOrder,
    Watermark,
    /// In rowid order (the table's stored order) beside the row map.
    RowMap,
}

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("resource {resource}: {source}")]
    Source {
        resource: String,
        #[source]
        source: sources::SourceError,
    },
    #[error("resource {0}")]
    Key(String),
    #[error("the agent's state database failed: {0}")]
    State(#[from] rusqlite::Error),
    /// A resource's columns or watermark could not be written as text.
    #[error("a resource's columns or watermark could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(
        "resource {resource}: sorting its changes through temporary files beside state.db failed ({source}); check the free space there"
    )]
    Spill {
        resource: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "resource {resource}: its row map beside state.db (rowmap-*.bin) cannot be read or removed ({source}); check that folder's permissions and free space"
    )]
    RowMap {
        resource: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot take the scan lock (scan.lock beside state.db): {0}")]
    Lock(#[from] std::io::Error),
    #[error("signing failed: {0}")]
    Sign(#[from] pki::PkiError),
    /// The declared catalogue entry is invalid or does not match the source.
    #[error("{0}")]
    Catalog(String),
    #[error(
        "resource {resource}: state.db says its rows' digests are of kind {kind}, which this gdx-agent does not know; a newer gdx-agent wrote it: install that version again"
    )]
    NewerState { resource: String, kind: i64 },
}

/// Keeps why the last scan of `code` failed, for `status` and `doctor`.
fn record_error(state: &mut State, code: &str, error: &str) {
    let _ = state.conn().execute(
        "INSERT INTO resources (code, columns, key, last_error) VALUES (?1, '[]', '[]', ?2)
         ON CONFLICT(code) DO UPDATE SET last_error = excluded.last_error",
        params![code, error],
    );
}

/// The resource's declared catalogue entry, checked against the rules, the
/// source's columns and the entries already published.
fn checked_entry(
    state: &mut State,
    signer: &Signer,
    res: &ResourceConfig,
    columns: &[Column],
    now: i64,
) -> Result<Option<CatalogEntry>, String> {
    let Some(entry) = catalog::declared(res, &signer.node, now)? else { return Ok(None) };
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    entry.check_columns(&names).map_err(|e| format!("resource {}: {e}", res.code))?;
    catalog::check_conflict(state.conn(), &entry)?;
    Ok(Some(entry))
}

/// Scans one resource and writes its changes to the outbox, calling
/// What a read by watermark does: the greatest value now (taken before the
/// read), and whether the read is whole.
pub(crate) struct WatermarkPlan {
    now_max: Option<Value>,
    whole: bool,
}

/// Decides whether this read of a resource with `changed` is whole (first
/// read, reconcile due, or `--full`) or from the watermark, and sets the
/// source up for it.
fn plan_watermark(
    state: &mut State,
    res: &ResourceConfig,
    column: &str,
    extract: &mut sources::Reader,
    now: i64,
) -> Result<WatermarkPlan, ScanError> {
    let code = res.code.as_str();
    let held: Option<(Option<String>, Option<String>, Option<i64>)> = state
        .conn()
        .query_row("SELECT watermark, previous, reconciled_at FROM watermarks WHERE code = ?1", [code], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let every = res.reconcile.as_deref().map_or(Ok(86_400), gdx_common::units::parse_duration).unwrap_or(86_400);
    let now_max = extract.max_of(column).map_err(|source| ScanError::Source { resource: code.to_owned(), source })?;
    let parse = |t: &Option<String>| t.as_deref().and_then(|j| serde_json::from_str::<Value>(j).ok());
    let from = match &held {
        Some((watermark, previous, Some(at))) if now - at < every => parse(previous).or_else(|| parse(watermark)),
        _ => None,
    };
    if let Some(Value::Real(f)) = &from
        && !f.is_finite()
    {
        return Err(ScanError::Key(format!(
            "{code}: the watermark column {column} holds {f}; name in changed a column that grows with each change (a timestamp or a counter)"
        )));
    }
    let whole = from.is_none();
    if let Some(from) = from {
        extract.since(column, from);
    }
    Ok(WatermarkPlan { now_max, whole })
}

/// Remembers the watermark of a read that completed.
fn save_watermark(state: &mut State, code: &str, plan: WatermarkPlan, now: i64) -> Result<(), ScanError> {
    let json = plan.now_max.as_ref().map(serde_json::to_string).transpose()?;
    state.conn().execute(
        // a read that was not whole never counts as one, not even where no row was (a `--full` since)
        "INSERT INTO watermarks (code, watermark, previous, reconciled_at) VALUES (?1, ?2, NULL, CASE WHEN ?4 THEN ?3 END)
         ON CONFLICT(code) DO UPDATE SET previous = watermarks.watermark, watermark = excluded.watermark,
             reconciled_at = CASE WHEN ?4 THEN excluded.reconciled_at ELSE watermarks.reconciled_at END",
        params![code, json, now, plan.whole],
    )?;
    Ok(())
}

/// Makes the next scan of `code` read its source whole (`gdx-agent sync --full`).
pub fn read_whole_next(state: &mut State, code: &str) -> Result<(), ScanError> {
    // after a scan under way (the daemon's) has saved its watermark, not before
    let _lock = state.scan_lock()?;
    state.conn().execute("DELETE FROM watermarks WHERE code = ?1", [code])?;
    Ok(())
}

/// `committed` each time something new waits there for the uploader.
pub fn scan(
    state: &mut State,
    signer: &Signer,
    res: &ResourceConfig,
    now: i64,
    committed: impl Fn() + Sync,
) -> Result<ScanReport, ScanError> {
    // One scan at a time per agent (the daemon and `gdx-agent sync` may both
    // run): a scan that read the source earlier must not commit after one
    // that read it later. The lock is released when the file is dropped.
    let _lock = state.scan_lock()?;
    let code = res.code.as_str().to_owned();
    let mut report = ScanReport { resource: code.clone(), ..ScanReport::default() };
    let mut extract = match sources::open(&res.source) {
        Ok(e) => e,
        Err(source) => {
            let err = ScanError::Source { resource: code.clone(), source };
            record_error(state, &code, &err.to_string());
            return Err(err);
        }
    };
    let conn = state.conn();
    if extract.columns.is_empty() {
        // An empty drop folder (or one holding only quarantined files) is
        // "nothing dropped yet", not "delete everything": a header-only
        // file is how a provider empties a resource.
        let tx = conn.transaction()?;
        report.quarantined = save_quarantine(&tx, &code, &extract.quarantine, 0, now)?;
        tx.execute("UPDATE resources SET last_scan = ?2, last_error = NULL WHERE code = ?1", params![code, now])?;
        tx.commit()?;
        return Ok(report);
    }
    // The catalogue entry must hold and match the source's columns before
    // any data moves; a new version of it is staged with the data below.
    let entry = match checked_entry(state, signer, res, &extract.columns, now) {
        Ok(e) => e,
        Err(e) => {
            record_error(state, &code, &e);
            return Err(ScanError::Catalog(e));
        }
    };
    let conn = state.conn();
    let saved: Option<(String, Option<String>)> = conn
        .query_row("SELECT columns, paused FROM resources WHERE code = ?1", [&code], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let saved_columns: Option<Vec<Column>> = saved.as_ref().and_then(|(c, _)| serde_json::from_str(c).ok());

    // Schema: keep the saved order, append new columns; pause on drift.
    let columns = match merge_schema(saved_columns.as_deref(), &extract.columns) {
        Ok(columns) => columns,
        Err(drift) => {
            let reason = format!(
                "{drift}; the resource is paused and its other data stays as last synced. Restore the column in the source, or run `gdx-agent sync --resource {code} --accept-schema` to publish the new shape"
            );
            conn.execute(
                "INSERT INTO resources (code, columns, key, paused, last_scan) VALUES (?1, '[]', '[]', ?2, ?3)
             ON CONFLICT(code) DO UPDATE SET paused = excluded.paused, last_scan = excluded.last_scan",
                params![code, reason, now],
            )?;
            report.paused = Some(reason);
            return Ok(report);
        }
    };
    let positions: Vec<Option<usize>> =
        columns.iter().map(|c| extract.columns.iter().position(|x| x.name == c.name)).collect();
    let key_idx: Vec<usize> = res
        .key
        .iter()
        .map(|k| {
            columns.iter().position(|c| &c.name == k).ok_or_else(|| {
                let names: Vec<&str> = extract.columns.iter().map(|c| c.name.as_str()).collect();
                ScanError::Key(format!(
                    "{code}: key column {k:?} is not among the source's columns ({})",
                    names.join(", ")
                ))
            })
        })
        .collect::<Result<_, _>>()?;

    // First transaction: the resource's columns and key, and its catalogue
    // entry (published before the data).
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO resources (code, columns, key, last_scan) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(code) DO UPDATE SET columns = excluded.columns, key = excluded.key, paused = NULL,
             last_scan = excluded.last_scan, last_error = NULL",
        params![code, serde_json::to_string(&columns)?, serde_json::to_string(&res.key)?, now],
    )?;
    // a resource holding no saved rows takes the newest digest kind; one that does keeps its own
    tx.execute(
        "UPDATE resources SET digest = ?2
         WHERE code = ?1 AND digest <> ?2 AND NOT EXISTS (SELECT 1 FROM rowstate WHERE resource = ?1)",
        params![code, DigestKind::Xxh3.code()],
    )?;
    let (first_seq, epoch, digest): (i64, i64, i64) =
        tx.query_row("SELECT next_seq, epoch, digest FROM resources WHERE code = ?1", [&code], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let (first_seq, epoch) = (first_seq as u64, epoch as u64);
    let Some(digest) = DigestKind::from_code(digest) else {
        drop(tx);
        let err = ScanError::NewerState { resource: code.clone(), kind: digest };
        record_error(state, &code, &err.to_string());
        return Err(err);
    };
    if let Some(entry) = &entry {
        report.entry_version = catalog::stage(&tx, signer, entry).map_err(ScanError::Catalog)?;
    }
    tx.commit()?;
    if report.entry_version.is_some() {
        committed();
    }

    // the values the catalogue entry declares a kind for, checked row by row
    let checks: Vec<read::ValueCheck> = entry
        .as_ref()
        .map(|e| {
            e.items
                .iter()
                .filter_map(|i| {
                    let at = columns.iter().position(|c| c.name.eq_ignore_ascii_case(i.column()))?;
                    Some(read::ValueCheck { at, kind: i.kind?, item: format!("{} ({})", i.name, i.column()) })
                })
                .collect()
        })
        .unwrap_or_default();
    let pass = Pass {
        signer,
        res,
        checks: &checks,
        columns: &columns,
        key_idx: &key_idx,
        positions: &positions,
        identity: positions.iter().enumerate().all(|(i, p)| *p == Some(i)) && positions.len() == extract.columns.len(),
        epoch,
        digest,
        now,
        code: &code,
        committed: &committed,
    };
    // A table read in key order is walked side by side with the saved state,
    // read in the same order: nothing is held in memory. Should its order
    // turn out not to be the keys' (text that is not UTF-8 in a key), what
    // was sent stands, and the source is read again in its own order
    // against the saved state held in a table by key.
    // A resource with `changed` reads only the rows at or past the watermark
    // of the sync before last (the overlap takes in rows committed late),
    // except when its reconcile is due: then it is read whole.
    let watermark = match &res.changed {
        Some(column) => match plan_watermark(state, res, column, &mut extract, now) {
            Ok(plan) => Some(plan),
            Err(err) => {
                record_error(state, &code, &err.to_string());
                return Err(err);
            }
        },
        None => None,
    };
    // A table read through its key's index keeps a row map: with one
    // written after the last changeset, it is read in rowid order beside it.
    let state_dir = state_dir(state);
    let shape = rowmap::Shape::new(
        &code,
        &serde_json::to_string(&columns)?,
        &serde_json::to_string(&res.key)?,
        epoch,
        crate::state::ROWSTATE_FORMAT,
    );
    // a map not written after the last changeset is removed at once: a
    // state.db restored from a backup must not make an old one current again
    let old = rowmap::OldMap::open(&state_dir, &code, shape, first_seq);
    if old.is_none() {
        rowmap::forget(&state_dir, &code).map_err(|source| ScanError::RowMap { resource: code.clone(), source })?;
    }
    // values the catalogue entry's kinds rewrite could make two stored keys one
    let key_rewritten = checks.iter().any(|c| key_idx.contains(&c.at));
    let mut map = (!key_rewritten && extract.with_rowids(&res.key)).then(|| {
        let seed = old.as_ref().map(|o| o.seed);
        let old = old.map(rowmap::Beside::new);
        read::Mapping {
            new: rowmap::NewMap::create(&state_dir, &code, old.is_some(), seed),
            old,
            found: crate::keys::KeyList::default(),
        }
    });
    // a part read looks its keys up in the saved state, in any order
    let in_key_order = match &map {
        Some(read::Mapping { old: Some(_), .. }) => {
            extract.order_by_rowid();
            false
        }
        _ => !extract.partial && extract.order_by(Some(&res.key)),
    };
    report.read = match (extract.partial, in_key_order, &map) {
        (true, ..) => ReadOrder::Watermark,
        (false, _, Some(read::Mapping { old: Some(_), .. })) => ReadOrder::RowMap,
        (false, true, _) => ReadOrder::KeyOrder,
        (false, false, _) => ReadOrder::SourceOrder,
    };
    let mut outcome = pass.run(state, &extract, first_seq, in_key_order, map.as_mut());
    if let Ok(o) = &outcome
        && o.disordered
    {
        report.read = ReadOrder::SourceOrder;
        if map.take().is_some_and(|m| m.old.is_some()) {
            rowmap::forget(&state_dir, &code).map_err(|source| ScanError::RowMap { resource: code.clone(), source })?;
        }
        extract.order_by(None);
        let first = outcome.as_ref().map_or(first_seq, |o| first_seq + o.written as u64);
        outcome = pass.run(state, &extract, first, false, None).map(|again| again.after(outcome.ok()));
    }
    // the map is written once every changeset of this read is committed
    // (under the next number, which the next changeset raises); without one
    // the next read is in key order, as it was before maps
    if let (Ok(_), Some(read::Mapping { new, .. })) = (&outcome, map) {
        let next: i64 =
            state.conn().query_row("SELECT next_seq FROM resources WHERE code = ?1", [&code], |r| r.get(0))?;
        if let Err(e) = new.finish(&state_dir, &code, shape, next as u64) {
            tracing::warn!(resource = %code, error = %e, "could not write the row map beside state.db; the next sync reads in key order");
        }
    }
    let outcome = match outcome {
        Ok(o) => o,
        Err(err) => {
            record_error(state, &code, &err.to_string());
            return Err(err);
        }
    };
    if let Some(plan) = watermark {
        save_watermark(state, &code, plan, now)?;
    }
    report.scanned = outcome.scanned;
    report.changesets = outcome.written;
    report.inserted = outcome.inserted;
    report.updated = outcome.updated;
    report.deleted = outcome.deleted;
    let mut quarantine: Vec<Quarantined> = std::mem::take(&mut extract.quarantine);
    quarantine.extend(outcome.read_quarantine);
    for (place, reason, values) in outcome.set_aside {
        let reason = reason.unwrap_or_else(|first| {
            format!("duplicate key: the same key was first seen at {}; that row is kept", extract.place(first))
        });
        quarantine.push(Quarantined { place: extract.place(place), reason, content: describe(&values) });
    }
    // Last transaction: the row count and the quarantine.
    let tx = state.conn().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // a read of part of the source (past a watermark) deletes nothing: the
    // resource holds what it held and the keys new in this read
    let rows: i64 = match extract.partial {
        true => {
            let held: i64 = tx.query_row("SELECT rows FROM resources WHERE code = ?1", [&code], |r| r.get(0))?;
            held + outcome.inserted as i64
        }
        false => outcome.rows as i64,
    };
    tx.execute("UPDATE resources SET rows = ?2 WHERE code = ?1", params![code, rows])?;
    report.quarantined = save_quarantine(&tx, &code, &quarantine, outcome.scanned, now)?;
    tx.commit()?;
    Ok(report)
}

/// Largest row sent, in bytes of values; larger rows are quarantined.
pub const MAX_ROW_BYTES: usize = 4 << 20;
/// A changeset is cut when its rows reach this many bytes of values.
const MAX_CHUNK_BYTES: usize = 8 << 20;

/// The cells as values, for a changeset or the quarantine.
fn owned(cells: &[Cell<'_>]) -> Vec<Value> {
    cells.iter().map(|c| c.to_value()).collect()
}

/// The bytes of a row's values, as changesets are cut and rows refused.
fn cells_bytes<'a>(cells: impl IntoIterator<Item = Cell<'a>>) -> usize {
    cells
        .into_iter()
        .map(|c| match c {
            Cell::Text(t) => t.len() + 2,
            Cell::Blob(b) => b.len() + 2,
            _ => 9,
        })
        .sum()
}

fn row_bytes(values: &[Value]) -> usize {
    cells_bytes(values.iter().map(Cell::from))
}

/// Replaces the quarantine list of `code`; returns its length.
/// Keeps what a scan set aside, and queues the news for the hub (sent with
/// the next upload, [`crate::upload::publish_quality`]).
fn save_quarantine(
    tx: &rusqlite::Transaction<'_>,
    code: &str,
    items: &[Quarantined],
    scanned: usize,
    now: i64,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT OR REPLACE INTO quality_outbox (resource, at, scanned) VALUES (?1, ?2, ?3)",
        params![code, now, scanned as i64],
    )?;
    tx.execute("DELETE FROM quarantine WHERE resource = ?1", [code])?;
    let mut q =
        tx.prepare_cached("INSERT INTO quarantine (resource, place, reason, content, at) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for item in items {
        q.execute(params![code, item.place, item.reason, item.content, now])?;
    }
    Ok(items.len())
}

/// Lifts the pause of a resource and accepts the source's current columns
/// as its new shape: every row is sent again under the new columns.
///
/// A resource the hub rejected (held) starts over instead: the changeset
/// the hub rejected, and those made after it, can never be applied (the hub
/// takes numbers in order), so the resource's numbering, saved rows and
/// outbox go, and the next scan sends every row from 1 under a new epoch,
/// which the hub takes as the resource's whole new contents. Killed at any
/// point, the transaction leaves the state as it was.
pub fn accept_schema(state: &mut State, code: &str) -> Result<(), ScanError> {
    // not while a scan writes a map under the number this leaves unchanged
    let _lock = state.scan_lock()?;
    // the row map vouches for digests about to be emptied
    rowmap::forget(&state_dir(state), code)
        .map_err(|source| ScanError::RowMap { resource: code.to_owned(), source })?;
    let tx = state.conn().transaction()?;
    let held: bool = tx
        .query_row("SELECT held IS NOT NULL FROM resources WHERE code = ?1", [code], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    if held {
        for table in ["outbox", "acks", "rowstate"] {
            tx.execute(&format!("DELETE FROM {table} WHERE resource = ?1"), [code])?;
        }
        tx.execute("DELETE FROM watermarks WHERE code = ?1", [code])?;
        tx.execute("DELETE FROM resources WHERE code = ?1", [code])?;
        return Ok(tx.commit()?);
    }
    tx.execute("UPDATE resources SET columns = '[]', paused = NULL, held = NULL WHERE code = ?1", [code])?;
    // Every saved row compares as changed, so all rows travel again under the
    // new columns, and rows gone from the source are still deleted.
    tx.execute("UPDATE rowstate SET digest = x'' WHERE resource = ?1", [code])?;
    Ok(tx.commit()?)
}

/// The folder of `state.db`.
fn state_dir(state: &mut State) -> std::path::PathBuf {
    match std::path::Path::new(state.conn().path().unwrap_or_default()).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

fn describe(values: &[Value]) -> String {
    let s: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::Null => String::new(),
            Value::Integer(i) => i.to_string(),
            Value::Real(f) => f.to_string(),
            Value::Text(t) => t.to_string(),
            Value::Blob(b) => format!("<{} bytes>", b.len()),
        })
        .collect();
    sources::csv::shorten(&s.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--full` asked while a scan by watermark was under way: that scan's
    /// watermark, saved after, does not count as a whole read, so the next
    /// scan reads whole.
    #[test]
    fn a_full_read_asked_during_a_partial_one_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(&dir.path().join("state.db")).unwrap();
        let partial = || WatermarkPlan { now_max: Some(Value::Integer(7)), whole: false };
        save_watermark(&mut state, "r", WatermarkPlan { now_max: Some(Value::Integer(5)), whole: true }, 100).unwrap();
        read_whole_next(&mut state, "r").unwrap();
        save_watermark(&mut state, "r", partial(), 200).unwrap();
        let reconciled: Option<i64> =
            state.conn().query_row("SELECT reconciled_at FROM watermarks WHERE code = 'r'", [], |r| r.get(0)).unwrap();
        assert_eq!(reconciled, None, "the next scan reads whole");
    }
}
