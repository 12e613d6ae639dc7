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
//! and catalogue entry, a last one the row count and the quarantine. On a
//! first sync a table is read in key order, so changesets leave while it is
//! read; otherwise the changes are sorted once the source has been read
//! (deletions are only known then). Killed before a changeset's commit, its
//! rows still carry their old digests, so the next scan finds and sends
//! them again; after it, the changeset waits in the outbox until the hub
//! acknowledges it.
//!
//! Schema drift: a new column flows through (its rows become updates). A
//! column that disappears (dropped or renamed) or whose declared type
//! changes pauses the resource with a reason; other resources carry on.

use std::collections::HashMap;

use gdx_certs::pki;
use gdx_common::catalog::CatalogEntry;
use gdx_common::data::{
    Cell, Change, Changeset, Column, MAX_CHANGESET_ROWS, ResourceCode, Value, cells_digest, cmp_change_keys,
    encode_cells_key, encode_changeset,
};
use gdx_common::wire::SignedChangeset;
use gdx_common::{NodeId, wire};
use rusqlite::{OptionalExtension, params};

use crate::catalog;
use crate::config::ResourceConfig;
use crate::sources::{self, Quarantined};
use crate::state::State;

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
    #[error("cannot take the scan lock (scan.lock beside state.db): {0}")]
    Lock(#[from] std::io::Error),
    #[error("signing failed: {0}")]
    Sign(#[from] pki::PkiError),
    /// The declared catalogue entry is invalid or does not match the source.
    #[error("{0}")]
    Catalog(String),
}

/// The signer: this node, its key and its certificate chain.
pub struct Signer {
    pub node: NodeId,
    pub key: rcgen::KeyPair,
    pub chain: Vec<Vec<u8>>,
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
        report.quarantined = save_quarantine(&tx, &code, &extract.quarantine, now)?;
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
    let (columns, drift) = merge_schema(saved_columns.as_deref(), &extract.columns);
    if let Some(reason) = drift {
        let reason = format!(
            "{reason}; the resource is paused and its other data stays as last synced. Restore the column in the source, or run `gdx-agent sync --resource {code} --accept-schema` to publish the new shape"
        );
        conn.execute(
            "INSERT INTO resources (code, columns, key, paused, last_scan) VALUES (?1, '[]', '[]', ?2, ?3)
             ON CONFLICT(code) DO UPDATE SET paused = excluded.paused, last_scan = excluded.last_scan",
            params![code, reason, now],
        )?;
        report.paused = Some(reason);
        return Ok(report);
    }
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

    // The saved state: digest by key, and the ordinal of the row that
    // matched it in this scan (0: not seen yet). Only scans write it, and
    // they hold the scan lock.
    let known: i64 =
        conn.query_row("SELECT rows FROM resources WHERE code = ?1", [&code], |r| r.get(0)).optional()?.unwrap_or(0);
    let mut saved: KeyMap<([u8; 16], usize)> = KeyMap::with_capacity_and_hasher(known as usize, Default::default());
    {
        let mut stmt = conn.prepare("SELECT key, digest FROM rowstate WHERE resource = ?1")?;
        let mut rows = stmt.query([&code])?;
        while let Some(r) = rows.next()? {
            let digest: [u8; 16] = r.get_ref(1)?.as_blob().ok().and_then(|d| d.try_into().ok()).unwrap_or_default();
            saved.insert(r.get(0)?, (digest, 0));
        }
    }

    // First transaction: the resource's columns and key, and its catalogue
    // entry (published before the data).
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO resources (code, columns, key, last_scan) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(code) DO UPDATE SET columns = excluded.columns, key = excluded.key, paused = NULL,
             last_scan = excluded.last_scan, last_error = NULL",
        params![
            code,
            serde_json::to_string(&columns).unwrap_or_default(),
            serde_json::to_string(&res.key).unwrap_or_default(),
            now
        ],
    )?;
    let (first_seq, epoch): (i64, i64) =
        tx.query_row("SELECT next_seq, epoch FROM resources WHERE code = ?1", [&code], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (first_seq, epoch) = (first_seq as u64, epoch as u64);
    if let Some(entry) = &entry {
        report.entry_version = catalog::stage(&tx, signer, entry).map_err(ScanError::Catalog)?;
    }
    tx.commit()?;
    if report.entry_version.is_some() {
        committed();
    }
    let state_path = std::path::PathBuf::from(state.conn().path().unwrap_or_default());
    // With nothing saved yet (a first sync), a table is read in key order, so
    // changesets can leave while it is read; otherwise the changes (usually
    // few) are sorted once the whole source is read.
    let in_key_order = saved.is_empty() && extract.order_by(&res.key);

    // Stream the source: a row whose digest matches the saved one is never
    // copied; new and changed rows go, a changeset's worth at a time, to a
    // thread that encodes, compresses and signs them, then to one that
    // commits each changeset with its rows' new digests in one transaction
    // and wakes the uploader. Null and duplicate keys and oversized rows are
    // set aside.
    let mut quarantine: Vec<Quarantined> = std::mem::take(&mut extract.quarantine);
    let identity = positions.iter().enumerate().all(|(i, p)| *p == Some(i)) && positions.len() == extract.columns.len();
    // ordinal + 1 of the first row of each new key
    let mut fresh: KeyMap<usize> = KeyMap::default();
    // Keys present in the source but not sent this time: never deletions.
    let mut held: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let (mut key_buf, mut row_buf) = (Vec::new(), Vec::new());
    // (ordinal, the reason or the ordinal of the first row with the same key, the row)
    let mut set_aside: Vec<(usize, Result<String, usize>, Vec<Value>)> = Vec::new();
    let (columns, key_idx, committed) = (&columns, &key_idx, &committed);
    let streamed = std::thread::scope(|scope| -> Result<(usize, usize), ScanError> {
        let (to_encoder, batches) = std::sync::mpsc::sync_channel::<Vec<Pending>>(2);
        let (to_writer, made) = std::sync::mpsc::sync_channel::<Result<Made, ScanError>>(2);
        scope.spawn(move || {
            for (n, batch) in batches.into_iter().enumerate() {
                let (keys, chunk): (Vec<Synced>, Vec<Change>) = batch
                    .into_iter()
                    .map(|(key, change, digest)| {
                        let digest = matches!(change, Change::Upsert(_)).then_some(digest);
                        ((key, digest), change)
                    })
                    .unzip();
                let seq = first_seq + n as u64;
                let made = signed_frame(signer, &res.code, epoch, columns, key_idx, seq, chunk, now)
                    .map(|frame| Made { seq, keys, frame });
                if to_writer.send(made).is_err() {
                    return; // the writer stopped on an error
                }
            }
        });
        let code = code.as_str();
        let writer = scope.spawn(move || -> Result<usize, ScanError> {
            let mut state = State::open(&state_path)?;
            let mut written = 0;
            for made in made {
                commit_changeset(&mut state, code, made?)?;
                written += 1;
                committed();
            }
            Ok(written)
        });
        let mut batch = Batcher { to_encoder, in_key_order, rows: Vec::new(), bytes: 0 };
        let scanned = extract.for_each(|ordinal, raw| {
            let reordered: Vec<Cell<'_>>;
            let cells: &[Cell<'_>] = if identity {
                raw
            } else {
                reordered = positions.iter().map(|p| p.map_or(Cell::Null, |i| raw[i])).collect();
                &reordered
            };
            if let Some(pos) = key_idx.iter().position(|&i| matches!(cells[i], Cell::Null)) {
                let reason = format!("the key column {} is empty", columns[key_idx[pos]].name);
                set_aside.push((ordinal, Ok(reason), owned(cells)));
                return;
            }
            encode_cells_key(cells, key_idx, &mut key_buf);
            let size = cells_bytes(cells.iter().copied());
            if size > MAX_ROW_BYTES {
                let reason = format!(
                    "the row is larger than {} MiB and cannot be sent; its last synced version stays at the hub",
                    MAX_ROW_BYTES >> 20
                );
                set_aside.push((ordinal, Ok(reason), owned(cells)));
                held.insert(key_buf.clone());
                return;
            }
            let digest = cells_digest(cells, &mut row_buf);
            if let Some((was, seen)) = saved.get_mut(key_buf.as_slice()) {
                if *seen != 0 {
                    set_aside.push((ordinal, Err(*seen - 1), owned(cells)));
                    return;
                }
                *seen = ordinal + 1;
                if *was != digest {
                    report.updated += 1;
                    batch.push((key_buf.clone(), Change::Upsert(owned(cells)), digest), size);
                }
                return;
            }
            if let Some(first) = fresh.get(key_buf.as_slice()) {
                set_aside.push((ordinal, Err(*first - 1), owned(cells)));
                return;
            }
            fresh.insert(key_buf.clone(), ordinal + 1);
            batch.push((key_buf.clone(), Change::Upsert(owned(cells)), digest), size);
        });
        if scanned.is_ok() {
            // saved keys the source no longer holds
            for (key, (_, seen)) in &saved {
                if *seen == 0 && !held.contains(key) && !extract.partial {
                    let kv: Vec<Value> = bincode::serde::decode_from_slice(key, bincode::config::standard())
                        .map(|(v, _)| v)
                        .unwrap_or_default();
                    report.deleted += 1;
                    let size = row_bytes(&kv);
                    batch.push((key.clone(), Change::Delete(kv), [0; 16]), size);
                }
            }
            batch.finish(key_idx);
        }
        drop(batch);
        let written = writer.join().map_err(|_| ScanError::Key(format!("{code}: the changeset writer failed")))?;
        let scanned = scanned.map_err(|source| ScanError::Source { resource: code.to_owned(), source });
        Ok((scanned?, written?))
    });
    let (scanned, written) = match streamed {
        Ok(done) => done,
        Err(err) => {
            record_error(state, &code, &err.to_string());
            return Err(err);
        }
    };
    report.scanned = scanned;
    report.changesets = written;
    report.inserted = fresh.len();
    for (ordinal, reason, values) in set_aside {
        let reason = reason.unwrap_or_else(|first| {
            format!("duplicate key: the same key was first seen at {}; that row is kept", extract.place(first))
        });
        quarantine.push(Quarantined { place: extract.place(ordinal), reason, content: describe(&values) });
    }
    // Last transaction: the row count and the quarantine.
    let row_count = saved.values().filter(|(_, seen)| *seen != 0).count() + fresh.len();
    let tx = state.conn().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute("UPDATE resources SET rows = ?2 WHERE code = ?1", params![code, row_count as i64])?;
    report.quarantined = save_quarantine(&tx, &code, &quarantine, now)?;
    tx.commit()?;
    Ok(report)
}

/// A change on its way into a changeset: encoded key, change, new digest.
type Pending = (Vec<u8>, Change, [u8; 16]);

/// Gathers changes into changesets of at most [`MAX_CHANGESET_ROWS`] rows
/// and [`MAX_CHUNK_BYTES`] bytes (so every frame fits the wire limit) for
/// the encoder: each as soon as it is full when the changes come in key
/// order, otherwise all at [`Batcher::finish`], sorted.
struct Batcher {
    to_encoder: std::sync::mpsc::SyncSender<Vec<Pending>>,
    in_key_order: bool,
    rows: Vec<(Pending, usize)>,
    bytes: usize,
}

impl Batcher {
    fn push(&mut self, change: Pending, size: usize) {
        if self.in_key_order && self.full(size) {
            let full = std::mem::take(&mut self.rows);
            self.send(full);
        }
        self.bytes += size;
        self.rows.push((change, size));
    }

    fn full(&self, size: usize) -> bool {
        !self.rows.is_empty() && (self.rows.len() >= MAX_CHANGESET_ROWS || self.bytes + size > MAX_CHUNK_BYTES)
    }

    fn send(&mut self, rows: Vec<(Pending, usize)>) {
        self.bytes = 0;
        if !rows.is_empty() {
            // a send fails only when the writer stopped on an error, which the scan returns
            let _ = self.to_encoder.send(rows.into_iter().map(|(change, _)| change).collect());
        }
    }

    /// Sends what is left: the last changeset, or (not in key order) all of
    /// them, sorted by key so the state and the hub's vault are written in
    /// index order: by encoded key (a byte comparison), then stably by the
    /// keys' values, which finds few runs left to merge.
    fn finish(&mut self, key_idx: &[usize]) {
        let mut rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        if !self.in_key_order {
            rows.sort_unstable_by(|a, b| a.0.0.cmp(&b.0.0));
            rows.sort_by(|a, b| cmp_change_keys(&a.0.1, &b.0.1, key_idx));
            self.in_key_order = true;
            for (change, size) in rows {
                self.push(change, size);
            }
            rows = std::mem::take(&mut self.rows);
        }
        self.send(rows);
    }
}

/// Commits one changeset: its rows' new digests, the outbox entry and the
/// next number, in one transaction.
fn commit_changeset(state: &mut State, code: &str, made: Made) -> Result<(), ScanError> {
    let Made { seq, keys, frame } = made;
    let tx = state.conn().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut up =
            tx.prepare_cached("INSERT OR REPLACE INTO rowstate (resource, key, digest) VALUES (?1, ?2, ?3)")?;
        let mut del = tx.prepare_cached("DELETE FROM rowstate WHERE resource = ?1 AND key = ?2")?;
        for (key, digest) in &keys {
            match digest {
                Some(d) => up.execute(params![code, key, d.as_slice()])?,
                None => del.execute(params![code, key])?,
            };
        }
    }
    tx.execute(
        "INSERT INTO outbox (resource, seq, rows, envelope) VALUES (?1, ?2, ?3, ?4)",
        params![code, seq as i64, keys.len() as i64, frame],
    )?;
    tx.execute("UPDATE resources SET next_seq = ?2 WHERE code = ?1", params![code, seq as i64 + 1])?;
    tx.commit()?;
    Ok(())
}

/// A changeset ready for the outbox: its number, its rows' keys with their
/// new digests (`None`: deleted), and the signed upload frame.
struct Made {
    seq: u64,
    keys: Vec<Synced>,
    frame: Vec<u8>,
}

/// A row's encoded key and its new digest (`None`: deleted).
type Synced = (Vec<u8>, Option<[u8; 16]>);

/// Changeset `seq` of `chunk`, encoded, compressed, signed and framed for upload.
#[allow(clippy::too_many_arguments)]
fn signed_frame(
    signer: &Signer,
    resource: &ResourceCode,
    epoch: u64,
    columns: &[Column],
    key_idx: &[usize],
    seq: u64,
    chunk: Vec<Change>,
    now: i64,
) -> Result<Vec<u8>, ScanError> {
    let rows = chunk.len() as u32;
    let cs = Changeset {
        origin: signer.node.clone(),
        resource: resource.clone(),
        seq,
        epoch,
        columns: columns.to_vec(),
        key: key_idx.to_vec(),
        changes: chunk,
        created_at: now,
    };
    let body = encode_changeset(&cs);
    let envelope = SignedChangeset {
        origin: signer.node.clone(),
        resource: resource.clone(),
        seq,
        rows,
        signature: pki::sign(&signer.key, &body)?,
        body,
        signer_chain: signer.chain.clone(),
    };
    wire::encode_frame(&wire::Message::Upload(envelope)).map_err(|e| ScanError::Key(format!("{resource}: {e}")))
}

/// A map by encoded key, hashed with foldhash: fast, and every input bit
/// reaches the low bits the table picks buckets by. The FxHash-style hash
/// used before this did not: the encoded integer keys of a table begin with
/// the same bytes, so they all landed in a few buckets and a sync's time
/// grew with the square of the table (see the test below).
type KeyMap<V> = HashMap<Vec<u8>, V, foldhash::fast::RandomState>;

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
fn save_quarantine(
    tx: &rusqlite::Transaction<'_>,
    code: &str,
    items: &[Quarantined],
    now: i64,
) -> rusqlite::Result<usize> {
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
pub fn accept_schema(state: &mut State, code: &str) -> rusqlite::Result<()> {
    let tx = state.conn().transaction()?;
    tx.execute("UPDATE resources SET columns = '[]', paused = NULL, held = NULL WHERE code = ?1", [code])?;
    // Every saved row compares as changed, so all rows travel again under the
    // new columns, and rows gone from the source are still deleted.
    tx.execute("UPDATE rowstate SET digest = x'' WHERE resource = ?1", [code])?;
    tx.commit()
}

/// Merges the saved schema with the source's: saved order first, new columns
/// appended. Returns a drift reason when a saved column is gone or retyped.
fn merge_schema(saved: Option<&[Column]>, source: &[Column]) -> (Vec<Column>, Option<String>) {
    let Some(saved) = saved.filter(|s| !s.is_empty()) else { return (source.to_vec(), None) };
    for c in saved {
        match source.iter().find(|s| s.name == c.name) {
            None => {
                let now: Vec<&str> = source.iter().map(|c| c.name.as_str()).collect();
                return (
                    vec![],
                    Some(format!(
                        "column {:?} is no longer in the source (dropped or renamed; the source now has {})",
                        c.name,
                        now.join(", ")
                    )),
                );
            }
            Some(s) if s.decl_type != c.decl_type => {
                return (
                    vec![],
                    Some(format!("column {:?} changed type from {:?} to {:?}", c.name, c.decl_type, s.decl_type)),
                );
            }
            Some(_) => {}
        }
    }
    let mut out = saved.to_vec();
    out.extend(source.iter().filter(|s| !saved.iter().any(|c| c.name == s.name)).cloned());
    (out, None)
}

fn describe(values: &[Value]) -> String {
    let s: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::Null => String::new(),
            Value::Integer(i) => i.to_string(),
            Value::Real(f) => f.to_string(),
            Value::Text(t) => t.clone(),
            Value::Blob(b) => format!("<{} bytes>", b.len()),
        })
        .collect();
    let s = s.join(",");
    if s.chars().count() > 200 { s.chars().take(200).collect::<String>() + "…" } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_rows_and_bytes_and_key_order() {
        let batches = |rows: Vec<Value>, n: i64, in_key_order: bool| {
            let (tx, rx) = std::sync::mpsc::sync_channel(100);
            let mut batcher = Batcher { to_encoder: tx, in_key_order, rows: Vec::new(), bytes: 0 };
            for i in (0..n).rev() {
                let mut row = vec![Value::Integer(i)];
                row.extend(rows.iter().cloned());
                let key = gdx_common::data::encode_key(&[&row[0]]);
                let size = row_bytes(&row);
                batcher.push((key, Change::Upsert(row), [0; 16]), size);
            }
            batcher.finish(&[0]);
            drop(batcher);
            rx.into_iter().collect::<Vec<_>>()
        };
        let sizes = |b: &Vec<Vec<Pending>>| b.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(&batches(vec![], 12_001, true)), [5_000, 5_000, 2_001]);
        assert_eq!(sizes(&batches(vec![Value::Blob(vec![0; 3 << 20])], 5, true)), [2, 2, 1]);
        assert!(batches(vec![], 0, false).is_empty());
        // not in key order: everything is sorted first, then cut
        let sorted = batches(vec![], 12_001, false);
        assert_eq!(sizes(&sorted), [5_000, 5_000, 2_001]);
        let first: Vec<&Change> = sorted[0].iter().take(3).map(|p| &p.1).collect();
        assert_eq!(
            first,
            [
                &Change::Upsert(vec![Value::Integer(0)]),
                &Change::Upsert(vec![Value::Integer(1)]),
                &Change::Upsert(vec![Value::Integer(2)])
            ]
        );
    }

    /// The low bits pick a bucket: for every key shape, 100,000 keys must
    /// spread over (nearly) all 2^16 values of the low 16 bits, as random
    /// hashes do (about 51,000 distinct). The FxHash-style hash used before
    /// gave integer keys 1 value, and reals 5,300.
    #[test]
    fn key_hash_spreads_the_low_bits_for_every_key_shape() {
        use std::hash::BuildHasher;
        let n = 100_000i64;
        let shapes: Vec<(&str, Box<dyn Fn(i64) -> Vec<Value>>)> = vec![
            ("integer", Box::new(|i| vec![Value::Integer(i)])),
            ("negative integer", Box::new(|i| vec![Value::Integer(-i)])),
            ("large integer", Box::new(|i| vec![Value::Integer(1 << 40 | i)])),
            ("spaced integer", Box::new(|i| vec![Value::Integer(i << 16)])),
            ("text", Box::new(|i| vec![Value::Text(format!("{i:09}"))])),
            ("real", Box::new(|i| vec![Value::Real(i as f64 / 4.0)])),
            ("text and integer", Box::new(|i| vec![Value::Text(format!("g{}", i % 100)), Value::Integer(i)])),
            ("integer and text", Box::new(|i| vec![Value::Integer(i % 7), Value::Text(format!("{i}"))])),
        ];
        let build = KeyMap::<()>::default().hasher().clone();
        for (shape, key) in shapes {
            let low: std::collections::HashSet<u64> = (0..n)
                .map(|i| {
                    let row = key(i);
                    let refs: Vec<&Value> = row.iter().collect();
                    build.hash_one(gdx_common::data::encode_key(&refs)) & 0xffff
                })
                .collect();
            assert!(low.len() > 45_000, "{shape} keys hit only {} of 65,536 low-bit values", low.len());
        }
    }

    fn col(n: &str, t: &str) -> Column {
        Column { name: n.into(), decl_type: t.into() }
    }

    #[test]
    fn schema_merge() {
        let saved = vec![col("id", "TEXT"), col("name", "TEXT")];
        let (m, d) = merge_schema(Some(&saved), &[col("name", "TEXT"), col("id", "TEXT"), col("age", "INTEGER")]);
        assert!(d.is_none());
        assert_eq!(m.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["id", "name", "age"]);
        let (_, d) = merge_schema(Some(&saved), &[col("id", "TEXT"), col("full_name", "TEXT")]);
        assert!(d.unwrap().contains("\"name\" is no longer in the source"));
        let (_, d) = merge_schema(Some(&saved), &[col("id", "INTEGER"), col("name", "TEXT")]);
        assert!(d.unwrap().contains("changed type"));
        assert!(merge_schema(None, &saved).1.is_none());
    }
}
