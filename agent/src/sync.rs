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

use gdx_certs::pki;
use gdx_common::catalog::CatalogEntry;
use gdx_common::data::{
    Cell, Change, Changeset, Column, MAX_CHANGESET_ROWS, ResourceCode, Value, cells_digest, encode_changeset,
};
use gdx_common::key::{decode_key, encode_cells_key};
use gdx_common::wire::SignedChangeset;
use gdx_common::{NodeId, wire};
use rusqlite::{OptionalExtension, params};

use crate::catalog;
use crate::config::ResourceConfig;
use crate::keys::{KeyList, KeyTable};
use crate::sources::{self, Place, Quarantined, Reader};
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

    let pass = Pass {
        signer,
        res,
        columns: &columns,
        key_idx: &key_idx,
        positions: &positions,
        identity: positions.iter().enumerate().all(|(i, p)| *p == Some(i)) && positions.len() == extract.columns.len(),
        epoch,
        now,
        code: &code,
        committed: &committed,
    };
    // A table read in key order is walked side by side with the saved state,
    // read in the same order: nothing is held in memory. Should its order
    // turn out not to be the keys' (text that is not UTF-8 in a key), what
    // was sent stands, and the source is read again in its own order
    // against the saved state held in a table by key.
    let in_key_order = extract.order_by(Some(&res.key));
    let mut outcome = pass.run(state, &extract, first_seq, in_key_order);
    if let Ok(o) = &outcome
        && o.disordered
    {
        extract.order_by(None);
        let first = outcome.as_ref().map_or(first_seq, |o| first_seq + o.written as u64);
        outcome = pass.run(state, &extract, first, false).map(|again| again.after(outcome.ok()));
    }
    let outcome = match outcome {
        Ok(o) => o,
        Err(err) => {
            record_error(state, &code, &err.to_string());
            return Err(err);
        }
    };
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
    tx.execute("UPDATE resources SET rows = ?2 WHERE code = ?1", params![code, outcome.rows as i64])?;
    report.quarantined = save_quarantine(&tx, &code, &quarantine, now)?;
    tx.commit()?;
    Ok(report)
}

/// What one read of the source found and wrote.
#[derive(Default)]
struct Outcome {
    scanned: usize,
    written: usize,
    inserted: usize,
    updated: usize,
    deleted: usize,
    /// Rows the resource holds now.
    rows: usize,
    /// Rows set aside: where, why (or where the first row with the same
    /// key is), and the row.
    set_aside: Vec<(Place, Result<String, Place>, Vec<Value>)>,
    /// Rows the source itself set aside while it was read.
    read_quarantine: Vec<Quarantined>,
    /// A read in key order met a key below the one before it: it stopped
    /// there, and the source must be read again in its own order.
    disordered: bool,
}

impl Outcome {
    /// This read's outcome, counting the changes of an earlier read that
    /// stopped because its order was wrong.
    fn after(mut self, earlier: Option<Outcome>) -> Self {
        if let Some(e) = earlier {
            self.written += e.written;
            self.inserted += e.inserted;
            self.updated += e.updated;
            self.deleted += e.deleted;
        }
        self
    }
}

/// What every read of one scan shares.
struct Pass<'a, F> {
    signer: &'a Signer,
    res: &'a ResourceConfig,
    columns: &'a [Column],
    key_idx: &'a [usize],
    /// Where each of `columns` is in the source's row.
    positions: &'a [Option<usize>],
    /// The source's columns are `columns`, in order.
    identity: bool,
    epoch: u64,
    now: i64,
    code: &'a str,
    committed: &'a F,
}

/// The saved state in key order: the next key and its digest.
type SavedWalk<'s> = Box<dyn FnMut() -> rusqlite::Result<Option<(Vec<u8>, [u8; 16])>> + 's>;

/// Where a changed row goes: a sorted source walks the saved state in the
/// same order; any other looks each key up in the saved state, held in a
/// table.
enum Compare<'s> {
    Merge {
        saved: SavedWalk<'s>,
        /// The saved row the walk stands on.
        at: Option<(Vec<u8>, [u8; 16])>,
        /// The previous row's key and place.
        prev: Option<(Vec<u8>, Place)>,
        /// Saved keys the source no longer holds (sent once the whole
        /// source is read, so a read that stops sends none).
        gone: KeyList,
        error: Option<rusqlite::Error>,
    },
    Lookup {
        /// Digest by key, and the place + 1 of the row that matched it in
        /// this read (0: not seen yet).
        saved: KeyTable<([u8; 16], Place)>,
        /// Keys new in this read, with the place of their first row.
        fresh: KeyTable<Place>,
        /// Keys present in the source but not sent this time: never deletions.
        held: KeyTable<()>,
    },
}

impl<F: Fn() + Sync> Pass<'_, F> {
    /// Reads the source once and writes its changes, from changeset
    /// `first_seq` on: in key order against the saved state read in the
    /// same order, or in source order against the saved state loaded by key.
    fn run(
        &self,
        state: &mut State,
        extract: &Reader,
        first_seq: u64,
        in_key_order: bool,
    ) -> Result<Outcome, ScanError> {
        let state_path = std::path::PathBuf::from(state.conn().path().unwrap_or_default());
        let conn = state.conn();
        let mut walk_stmt;
        let mut compare = if in_key_order {
            // Only scans write the saved state, and they hold the scan lock;
            // this read's snapshot does not see the changesets it commits.
            walk_stmt = conn.prepare("SELECT key, digest FROM rowstate WHERE resource = ?1 ORDER BY key")?;
            let mut rows = walk_stmt.query([self.code])?;
            let mut saved: SavedWalk<'_> = Box::new(move || match rows.next()? {
                Some(r) => Ok(Some((r.get(0)?, digest_of(r.get_ref(1)?)))),
                None => Ok(None),
            });
            let at = saved()?;
            Compare::Merge { saved, at, prev: None, gone: KeyList::default(), error: None }
        } else {
            let known: i64 = conn
                .query_row("SELECT rows FROM resources WHERE code = ?1", [self.code], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let mut saved = KeyTable::with_capacity(known as usize);
            let mut stmt = conn.prepare("SELECT key, digest FROM rowstate WHERE resource = ?1")?;
            let mut rows = stmt.query([self.code])?;
            while let Some(r) = rows.next()? {
                let key = r.get_ref(0)?.as_blob().unwrap_or_default();
                saved.insert_new(key, (digest_of(r.get_ref(1)?), 0));
            }
            Compare::Lookup { saved, fresh: KeyTable::with_capacity(0), held: KeyTable::with_capacity(0) }
        };
        let (columns, key_idx) = (self.columns, self.key_idx);
        let mut out = Outcome::default();
        let (mut key, mut row_buf) = (Vec::new(), Vec::new());
        let streamed = std::thread::scope(|scope| -> Result<Outcome, ScanError> {
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
                    let made =
                        signed_frame(self.signer, &self.res.code, self.epoch, columns, key_idx, seq, chunk, self.now)
                            .map(|frame| Made { seq, keys, frame });
                    if to_writer.send(made).is_err() {
                        return; // the writer stopped on an error
                    }
                }
            });
            let writer = scope.spawn(move || -> Result<usize, ScanError> {
                let mut state = State::open(&state_path)?;
                let mut written = 0;
                for made in made {
                    commit_changeset(&mut state, self.code, made?)?;
                    written += 1;
                    (self.committed)();
                }
                Ok(written)
            });
            let mut batch = Batcher { to_encoder, rows: Vec::new(), bytes: 0 };
            let read = extract.for_each(|place, raw| {
                let reordered: Vec<Cell<'_>>;
                let cells: &[Cell<'_>] = if self.identity {
                    raw
                } else {
                    reordered = self.positions.iter().map(|p| p.map_or(Cell::Null, |i| raw[i])).collect();
                    &reordered
                };
                self.compare_row(&mut compare, &mut out, &mut batch, place, cells, &mut key, &mut row_buf);
            });
            if let Ok(read) = &read
                && !out.disordered
            {
                self.send_deletions(&mut compare, &mut out, &mut batch, read.partial || extract.partial)?;
            }
            batch.finish();
            drop(batch);
            out.written =
                writer.join().map_err(|_| ScanError::Key(format!("{}: the changeset writer failed", self.code)))??;
            let read = read.map_err(|source| ScanError::Source { resource: self.code.to_owned(), source })?;
            out.scanned = read.rows;
            out.read_quarantine = read.quarantine;
            Ok(out)
        })?;
        if let Compare::Merge { error: Some(e), .. } = compare {
            return Err(e.into());
        }
        Ok(streamed)
    }

    /// Compares one source row with the saved state and sends it on if it
    /// is new or changed; sets aside rows with a null or duplicate key and
    /// rows too large to send.
    #[allow(clippy::too_many_arguments)]
    fn compare_row(
        &self,
        compare: &mut Compare<'_>,
        out: &mut Outcome,
        batch: &mut Batcher,
        place: Place,
        cells: &[Cell<'_>],
        key: &mut Vec<u8>,
        row_buf: &mut Vec<u8>,
    ) {
        if out.disordered {
            return;
        }
        let (columns, key_idx) = (self.columns, self.key_idx);
        if let Some(pos) = key_idx.iter().position(|&i| matches!(cells[i], Cell::Null)) {
            let reason = format!("the key column {} is empty", columns[key_idx[pos]].name);
            out.set_aside.push((place, Ok(reason), owned(cells)));
            return;
        }
        encode_cells_key(cells, key_idx, key);
        let size = cells_bytes(cells.iter().copied());
        let oversized = (size > MAX_ROW_BYTES).then(|| {
            format!(
                "the row is larger than {} MiB and cannot be sent; its last synced version stays at the hub",
                MAX_ROW_BYTES >> 20
            )
        });
        // the saved digest, if the key is saved
        let was: Option<[u8; 16]> = match compare {
            Compare::Merge { saved, at, prev, gone, error } => {
                if let Some((prev_key, prev_place)) = prev {
                    match key.as_slice().cmp(prev_key) {
                        std::cmp::Ordering::Less => {
                            out.disordered = true;
                            return;
                        }
                        std::cmp::Ordering::Equal => {
                            out.set_aside.push((place, Err(*prev_place), owned(cells)));
                            return;
                        }
                        std::cmp::Ordering::Greater => {}
                    }
                }
                let prev = prev.get_or_insert_with(|| (Vec::new(), place));
                prev.0.clear();
                prev.0.extend_from_slice(key);
                prev.1 = place;
                // saved keys below this one are gone from the source
                let mut was = None;
                while let Some((at_key, digest)) = at.as_ref() {
                    match at_key.as_slice().cmp(key) {
                        std::cmp::Ordering::Greater => break,
                        std::cmp::Ordering::Equal => was = Some(*digest),
                        std::cmp::Ordering::Less => gone.push(at_key),
                    }
                    *at = saved().unwrap_or_else(|e| {
                        error.get_or_insert(e);
                        None
                    });
                    if was.is_some() {
                        break;
                    }
                }
                if oversized.is_some() {
                    // set aside below; a saved row stays as it was (not gone)
                } else if was.is_none() {
                    out.inserted += 1;
                }
                was
            }
            Compare::Lookup { saved, fresh, held } => {
                if let Some(reason) = oversized {
                    out.set_aside.push((place, Ok(reason), owned(cells)));
                    if !held.contains(key) {
                        held.insert_new(key, ());
                    }
                    return;
                }
                if let Some((digest, seen)) = saved.get_mut(key) {
                    if *seen != 0 {
                        out.set_aside.push((place, Err(*seen - 1), owned(cells)));
                        return;
                    }
                    *seen = place + 1;
                    Some(*digest)
                } else if let Some(first) = fresh.get_mut(key) {
                    out.set_aside.push((place, Err(*first), owned(cells)));
                    return;
                } else {
                    fresh.insert_new(key, place);
                    out.inserted += 1;
                    None
                }
            }
        };
        if let Some(reason) = oversized {
            out.set_aside.push((place, Ok(reason), owned(cells)));
            return;
        }
        out.rows += 1;
        let digest = cells_digest(cells, row_buf);
        if was == Some(digest) {
            return;
        }
        if was.is_some() {
            out.updated += 1;
        }
        batch.push((key.clone(), Change::Upsert(owned(cells)), digest), size);
    }

    /// Once the whole source is read: deletes the saved keys it no longer
    /// holds (none when rows were set aside without being read).
    fn send_deletions(
        &self,
        compare: &mut Compare<'_>,
        out: &mut Outcome,
        batch: &mut Batcher,
        partial: bool,
    ) -> Result<(), ScanError> {
        let mut delete = |key: &[u8]| -> Result<(), ScanError> {
            let values = decode_key(key).map_err(|e| {
                ScanError::Key(format!("{}: the saved state holds a damaged key ({e}); run the sync again", self.code))
            })?;
            out.deleted += 1;
            let size = row_bytes(&values);
            batch.push((key.to_vec(), Change::Delete(values), [0; 16]), size);
            Ok(())
        };
        if partial {
            return Ok(());
        }
        match compare {
            Compare::Merge { saved, at, gone, error, .. } => {
                for key in gone.iter() {
                    delete(key)?;
                }
                while let Some((key, _)) = at.take() {
                    delete(&key)?;
                    *at = saved()?;
                }
                if let Some(e) = error.take() {
                    return Err(e.into());
                }
            }
            Compare::Lookup { saved, held, .. } => {
                for (key, (_, seen)) in saved.iter() {
                    if *seen == 0 && !held.contains(key) {
                        delete(key)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A saved digest (16 bytes; anything else compares as changed).
fn digest_of(v: rusqlite::types::ValueRef<'_>) -> [u8; 16] {
    v.as_blob().ok().and_then(|d| d.try_into().ok()).unwrap_or_default()
}

/// A change on its way into a changeset: encoded key, change, new digest.
type Pending = (Vec<u8>, Change, [u8; 16]);

/// Gathers changes into changesets of at most [`MAX_CHANGESET_ROWS`] rows
/// and [`MAX_CHUNK_BYTES`] bytes (so every frame fits the wire limit), and
/// sends each to the encoder as soon as it is full, sorted by key so that
/// the state and the hub's vault are written in index order.
struct Batcher {
    to_encoder: std::sync::mpsc::SyncSender<Vec<Pending>>,
    rows: Vec<(Pending, usize)>,
    bytes: usize,
}

impl Batcher {
    fn push(&mut self, change: Pending, size: usize) {
        if !self.rows.is_empty() && (self.rows.len() >= MAX_CHANGESET_ROWS || self.bytes + size > MAX_CHUNK_BYTES) {
            self.send();
        }
        self.bytes += size;
        self.rows.push((change, size));
    }

    fn send(&mut self) {
        let mut rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        if !rows.is_empty() {
            // encoded keys sort like the keys' values (a sorted run costs one pass)
            rows.sort_unstable_by(|a, b| a.0.0.cmp(&b.0.0));
            // a send fails only when the writer stopped on an error, which the scan returns
            let _ = self.to_encoder.send(rows.into_iter().map(|(change, _)| change).collect());
        }
    }

    /// Sends the last changeset.
    fn finish(&mut self) {
        self.send();
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
        let batches = |rows: Vec<Value>, n: i64| {
            let (tx, rx) = std::sync::mpsc::sync_channel(100);
            let mut batcher = Batcher { to_encoder: tx, rows: Vec::new(), bytes: 0 };
            for i in (0..n).rev() {
                let mut row = vec![Value::Integer(i)];
                row.extend(rows.iter().cloned());
                let key = gdx_common::key::encode_key(&[&row[0]]);
                let size = row_bytes(&row);
                batcher.push((key, Change::Upsert(row), [0; 16]), size);
            }
            batcher.finish();
            drop(batcher);
            rx.into_iter().collect::<Vec<_>>()
        };
        let sizes = |b: &Vec<Vec<Pending>>| b.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(&batches(vec![], 12_001)), [5_000, 5_000, 2_001]);
        assert_eq!(sizes(&batches(vec![Value::Blob(vec![0; 3 << 20])], 5)), [2, 2, 1]);
        assert!(batches(vec![], 0).is_empty());
        // each changeset is sorted by key (they came in descending order)
        let sorted = batches(vec![], 12_001);
        let first: Vec<&Change> = sorted[0].iter().take(2).map(|p| &p.1).collect();
        assert_eq!(first, [&Change::Upsert(vec![Value::Integer(7_001)]), &Change::Upsert(vec![Value::Integer(7_002)])]);
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
