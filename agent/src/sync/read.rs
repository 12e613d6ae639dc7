//! One read of a source against the saved state: a table in key order
//! walked beside the saved state read in the same order, any other source
//! by looking each key up in the saved state held in a [`KeyTable`], and a
//! read of part of a source (past a watermark) by looking each key up in
//! the saved state on disk, so its cost follows the rows read, not the
//! rows held. The
//! changed rows go to a [`Batcher`]; an encoder thread and a writer thread
//! turn them into committed changesets (while the source is read, when
//! they come in key order).

use std::ops::ControlFlow;

use gdx_common::catalog::ValueKind;
use gdx_common::catalog::kinds::check_value;
use gdx_common::data::{Cell, Column, DigestKind, Value};
use gdx_common::key::{decode_key, encode_cells_key};
use rusqlite::OptionalExtension;

use super::changeset::{Batcher, Made, Pending, Synced, commit_changeset, signed_frame};
use super::rowmap::{Beside, Entry, NewMap, fingerprint};
use super::spill::Spill;
use super::{MAX_ROW_BYTES, ScanError, cells_bytes, owned, row_bytes};
use crate::config::ResourceConfig;
use crate::identity::Signer;
use crate::keys::{KeyList, KeyTable};
use crate::sources::{Place, Quarantined, Reader};
use crate::state::State;

/// What one read of the source found and wrote.
#[derive(Default)]
pub(super) struct Outcome {
    pub(super) scanned: usize,
    pub(super) written: usize,
    pub(super) inserted: usize,
    pub(super) updated: usize,
    pub(super) deleted: usize,
    /// Rows the resource holds now.
    pub(super) rows: usize,
    /// Rows set aside: where, why (or where the first row with the same
    /// key is), and the row.
    pub(super) set_aside: Vec<(Place, Result<String, Place>, Vec<Value>)>,
    /// Rows the source itself set aside while it was read.
    pub(super) read_quarantine: Vec<Quarantined>,
    /// A read in key order met a key below the one before it: it stopped
    /// there, and the source must be read again in its own order.
    pub(super) disordered: bool,
}

impl Outcome {
    /// This read's outcome, counting the changes of an earlier read that
    /// stopped because its order was wrong.
    pub(super) fn after(mut self, earlier: Option<Outcome>) -> Self {
        if let Some(e) = earlier {
            self.written += e.written;
            self.inserted += e.inserted;
            self.updated += e.updated;
            self.deleted += e.deleted;
        }
        self
    }
}

/// A column whose values the catalogue entry declares a kind for.
pub(super) struct ValueCheck {
    /// Its place in the resource's columns.
    pub(super) at: usize,
    pub(super) kind: ValueKind,
    /// `信息项名称 (column)`, for the quarantine's reason.
    pub(super) item: String,
}

/// What every read of one scan shares.
pub(super) struct Pass<'a, F> {
    pub(super) signer: &'a Signer,
    pub(super) res: &'a ResourceConfig,
    pub(super) checks: &'a [ValueCheck],
    pub(super) columns: &'a [Column],
    pub(super) key_idx: &'a [usize],
    /// Where each of `columns` is in the source's row.
    pub(super) positions: &'a [Option<usize>],
    /// The source's columns are `columns`, in order.
    pub(super) identity: bool,
    pub(super) epoch: u64,
    /// How the resource's saved digests are made.
    pub(super) digest: DigestKind,
    pub(super) now: i64,
    pub(super) code: &'a str,
    pub(super) committed: &'a F,
}

/// The saved state in key order: the next key and its digest.
pub(super) type SavedWalk<'s> = Box<dyn FnMut() -> rusqlite::Result<Option<(Vec<u8>, [u8; 16])>> + 's>;

/// The saved digest of one key, looked up on disk.
pub(super) type SavedProbe<'s> = Box<dyn FnMut(&[u8]) -> rusqlite::Result<Option<[u8; 16]>> + 's>;

/// Where a changed row goes: a sorted source walks the saved state in the
/// same order; any other looks each key up in the saved state, held in a
/// table.
pub(super) enum Compare<'s> {
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
    /// A read of part of the source: it deletes nothing.
    Probe {
        saved: SavedProbe<'s>,
        /// Keys read so far, with the place of their row.
        seen: KeyTable<Place>,
        error: Option<rusqlite::Error>,
    },
}

impl Compare<'_> {
    /// The saved state could not be read: the read stops, and the scan fails.
    fn failed(&self) -> bool {
        matches!(self, Compare::Merge { error: Some(_), .. } | Compare::Probe { error: Some(_), .. })
    }

    fn take_error(&mut self) -> Option<rusqlite::Error> {
        match self {
            Compare::Merge { error, .. } | Compare::Probe { error, .. } => error.take(),
            Compare::Lookup { .. } => None,
        }
    }
}

impl<F: Fn() + Sync> Pass<'_, F> {
    /// Reads the source once and writes its changes, from changeset
    /// `first_seq` on: in key order against the saved state read in the
    /// same order, in source order against the saved state loaded by key,
    /// or (part of the source) against the saved state looked up on disk.
    pub(super) fn run(
        &self,
        state: &mut State,
        extract: &Reader,
        first_seq: u64,
        in_key_order: bool,
        mut map: Option<&mut Mapping>,
    ) -> Result<Outcome, ScanError> {
        let state_path = std::path::PathBuf::from(state.conn().path().unwrap_or_default());
        let spill_dir = super::state_dir(state);
        let conn = state.conn();
        let (mut walk_stmt, mut probe_stmt);
        let beside_map = map.as_ref().is_some_and(|m| m.old.is_some());
        let mut compare = if extract.partial || beside_map {
            probe_stmt = conn.prepare("SELECT digest FROM rowstate WHERE resource = ?1 AND key = ?2")?;
            let code = self.code;
            let saved: SavedProbe<'_> = Box::new(move |key| {
                probe_stmt.query_row(rusqlite::params![code, key], |r| Ok(digest_of(r.get_ref(0)?))).optional()
            });
            Compare::Probe { saved, seen: KeyTable::with_capacity(0), error: None }
        } else if in_key_order {
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
                    let seq = first_seq + n as u64;
                    let made =
                        signed_frame(self.signer, &self.res.code, self.epoch, columns, key_idx, seq, &batch, self.now)
                            .map(|frame| Made { seq, keys: Synced::of(&batch), frame });
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
            // changes not in key order are sorted through temporary files beside state.db
            let spill = (!in_key_order).then(|| Spill::new(&spill_dir));
            let mut batch = Batcher::new(to_encoder, spill);
            if beside_map {
                batch.hold();
            }
            let mut entry = Entry::default();
            let read = extract.for_each_at(|place, rowid, raw| {
                let reordered: Vec<Cell<'_>>;
                let cells: &[Cell<'_>] = if self.identity {
                    raw
                } else {
                    reordered = self.positions.iter().map(|p| p.map_or(Cell::Null, |i| raw[i])).collect();
                    &reordered
                };
                // values of a declared kind: checked, and sent as their standard writes them
                let (normalised, fixed): (Vec<Value>, Vec<Cell<'_>>);
                let (cells, invalid) = match self.check_values(cells) {
                    Ok(None) => (cells, None),
                    Ok(Some(values)) => {
                        normalised = values;
                        fixed = normalised.iter().map(Cell::from).collect();
                        (&fixed[..], None)
                    }
                    Err(reason) => (cells, Some(reason)),
                };
                // beside the old row map: a row at its rowid with its digest is unchanged
                if let (Some(m), Some(rowid)) = (map.as_deref_mut(), rowid)
                    && let Some(old) = m.old.as_mut()
                    && old.take(rowid, &mut entry)
                {
                    if !entry.held && invalid.is_none() && fingerprint(m.new.seed, cells) == entry.digest {
                        out.rows += 1;
                        m.new.push(rowid, false, entry.digest, &entry.key);
                        return ControlFlow::Continue(());
                    }
                    old.gone.push(&entry.key);
                }
                let inserted = out.inserted;
                let fate =
                    self.compare_row(&mut compare, &mut out, &mut batch, place, cells, invalid, &mut key, &mut row_buf);
                if let (Some(m), Some(rowid)) = (map.as_deref_mut(), rowid) {
                    match fate {
                        Fate::Kept => {
                            // a saved key read again must be one whose entry no row matched
                            if m.old.is_some() && out.inserted == inserted {
                                m.found.push(&key);
                            }
                            m.new.push(rowid, false, fingerprint(m.new.seed, cells), &key)
                        }
                        Fate::SetAside { keyed: true } => m.new.push(rowid, true, [0; 16], &key),
                        Fate::SetAside { keyed: false } | Fate::Stopped => {}
                    }
                }
                // a read that found its order wrong, or lost the saved state, stops here
                if out.disordered || compare.failed() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            });
            if let Ok(read) = &read
                && !out.disordered
                && !compare.failed()
            {
                let gone = match map.as_mut().and_then(|m| m.old.as_mut().map(|old| (old.finish(), &m.found))) {
                    // an unreadable map, or a saved key read again whose entry a row still
                    // matched (two values that give one key): the source is read again in its
                    // own order, against the saved state alone
                    Some((Err(e), _)) => {
                        tracing::warn!(resource = %self.code, error = %e, "the row map cannot be read; reading the table again without it");
                        out.disordered = true;
                        None
                    }
                    Some((Ok(gone), found)) if !all_in(found, gone) => {
                        out.disordered = true;
                        None
                    }
                    Some((Ok(gone), _)) => Some(gone),
                    None => None,
                };
                if !out.disordered {
                    self.send_deletions(&mut compare, &mut out, &mut batch, read.partial || extract.partial, gone)?;
                }
            }
            if let Some(m) = map {
                if out.disordered || out.set_aside.iter().any(|(_, why, _)| why.is_err()) {
                    // two rows with one key: a map could not tell them apart
                    m.new.abandon();
                } else {
                    // sorted and written while the last changesets commit
                    m.new.seal();
                }
            }
            // a read beside the map that must start again sends nothing of what it found
            let finished = if beside_map && out.disordered { Ok(()) } else { batch.finish() };
            drop(batch);
            out.written =
                writer.join().map_err(|_| ScanError::Key(format!("{}: the changeset writer failed", self.code)))??;
            let read = read.map_err(|source| ScanError::Source { resource: self.code.to_owned(), source })?;
            finished.map_err(|source| ScanError::Spill { resource: self.code.to_owned(), source })?;
            out.scanned = read.rows;
            out.read_quarantine = read.quarantine;
            Ok(out)
        })?;
        if let Some(e) = compare.take_error() {
            return Err(e.into());
        }
        Ok(streamed)
    }

    /// Checks the values of declared kinds: `Ok(None)` when every one is
    /// fine as it is, `Ok(Some(row))` when some are written otherwise by
    /// their standard (an ID number's `x`, a legacy number converted), the
    /// reason when one is bad.
    fn check_values(&self, cells: &[Cell<'_>]) -> Result<Option<Vec<Value>>, String> {
        let today = self.now.div_euclid(86_400);
        let mut fixed: Option<Vec<Value>> = None;
        for c in self.checks {
            let text = match cells.get(c.at) {
                None | Some(Cell::Null) => continue,
                Some(Cell::Text(t)) => std::borrow::Cow::Borrowed(*t),
                Some(Cell::Integer(i)) => std::borrow::Cow::Owned(i.to_string()),
                Some(Cell::Real(_) | Cell::Blob(_)) => {
                    return Err(format!("{}: a {} must be text, not a number or bytes", c.item, c.kind));
                }
            };
            let checked =
                check_value(c.kind, &text, self.res.legacy_ids, today).map_err(|e| format!("{}: {e}", c.item))?;
            if checked.value != text && matches!(cells[c.at], Cell::Text(_)) {
                let row = fixed.get_or_insert_with(|| owned(cells));
                row[c.at] = Value::Text(checked.value.into());
            }
        }
        Ok(fixed)
    }

    /// Compares one source row with the saved state and sends it on if it
    /// is new or changed; sets aside rows with a null or duplicate key, rows
    /// too large to send and rows with a bad value (`invalid`), keeping what
    /// was last sent of them.
    #[allow(clippy::too_many_arguments)]
    fn compare_row(
        &self,
        compare: &mut Compare<'_>,
        out: &mut Outcome,
        batch: &mut Batcher,
        place: Place,
        cells: &[Cell<'_>],
        invalid: Option<String>,
        key: &mut Vec<u8>,
        row_buf: &mut Vec<u8>,
    ) -> Fate {
        if out.disordered {
            return Fate::Stopped;
        }
        let (columns, key_idx) = (self.columns, self.key_idx);
        if let Some(pos) = key_idx.iter().position(|&i| matches!(cells[i], Cell::Null)) {
            let reason = format!("the key column {} is empty", columns[key_idx[pos]].name);
            out.set_aside.push((place, Ok(reason), owned(cells)));
            return Fate::SetAside { keyed: false };
        }
        encode_cells_key(cells, key_idx, key);
        let size = cells_bytes(cells.iter().copied());
        // a row that cannot be sent (too large, or a bad value): set aside, its last synced version kept
        let oversized = invalid.or_else(|| {
            (size > MAX_ROW_BYTES).then(|| {
                format!(
                    "the row is larger than {} MiB and cannot be sent; its last synced version stays at the hub",
                    MAX_ROW_BYTES >> 20
                )
            })
        });
        // the saved digest, if the key is saved
        let was: Option<[u8; 16]> = match compare {
            Compare::Merge { saved, at, prev, gone, error } => {
                if let Some((prev_key, prev_place)) = prev {
                    match key.as_slice().cmp(prev_key) {
                        std::cmp::Ordering::Less => {
                            out.disordered = true;
                            return Fate::Stopped;
                        }
                        std::cmp::Ordering::Equal => {
                            out.set_aside.push((place, Err(*prev_place), owned(cells)));
                            return Fate::SetAside { keyed: true };
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
                    return Fate::SetAside { keyed: true };
                }
                if let Some((digest, seen)) = saved.get_mut(key) {
                    if *seen != 0 {
                        out.set_aside.push((place, Err(*seen - 1), owned(cells)));
                        return Fate::SetAside { keyed: true };
                    }
                    *seen = place + 1;
                    Some(*digest)
                } else if let Some(first) = fresh.get_mut(key) {
                    out.set_aside.push((place, Err(*first), owned(cells)));
                    return Fate::SetAside { keyed: true };
                } else {
                    fresh.insert_new(key, place);
                    out.inserted += 1;
                    None
                }
            }
            Compare::Probe { saved, seen, error } => {
                if let Some(first) = seen.get_mut(key) {
                    out.set_aside.push((place, Err(*first), owned(cells)));
                    return Fate::SetAside { keyed: true };
                }
                seen.insert_new(key, place);
                if oversized.is_some() {
                    // set aside below; a part read deletes nothing, so its saved row stays
                    None
                } else {
                    match saved(key) {
                        Ok(None) => {
                            out.inserted += 1;
                            None
                        }
                        Ok(was) => was,
                        Err(e) => {
                            error.get_or_insert(e);
                            return Fate::Stopped;
                        }
                    }
                }
            }
        };
        if let Some(reason) = oversized {
            out.set_aside.push((place, Ok(reason), owned(cells)));
            return Fate::SetAside { keyed: true };
        }
        out.rows += 1;
        let digest = self.digest.of(cells, row_buf);
        if was == Some(digest) {
            return Fate::Kept;
        }
        if was.is_some() {
            out.updated += 1;
        }
        batch.push(Pending::upsert(key, row_buf, cells.len(), digest), size);
        Fate::Kept
    }

    /// Once the whole source is read: deletes the saved keys it no longer
    /// holds (none when rows were set aside without being read).
    fn send_deletions(
        &self,
        compare: &mut Compare<'_>,
        out: &mut Outcome,
        batch: &mut Batcher,
        partial: bool,
        gone_from_map: Option<&KeyList>,
    ) -> Result<(), ScanError> {
        let mut delete = |key: &[u8]| -> Result<(), ScanError> {
            let values = decode_key(key)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    let width = self.key_idx.len();
                    if v.len() == width { Ok(v) } else { Err(format!("{} values where the key has {width}", v.len())) }
                })
                .map_err(|e| {
                    ScanError::Key(format!(
                        "{}: the agent's saved state holds a key it cannot delete ({e}); restore state.db from a backup, or move it aside and sync again to send every row anew",
                        self.code
                    ))
                })?;
            out.deleted += 1;
            let size = row_bytes(&values);
            batch.push(Pending::delete(key, &values), size);
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
            // read beside the row map: the keys of its entries no row matched, unless read again
            Compare::Probe { saved, seen, .. } => {
                for key in gone_from_map.into_iter().flat_map(KeyList::iter) {
                    if !seen.contains(key) && saved(key)?.is_some() {
                        delete(key)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// What became of a row compared with the saved state.
enum Fate {
    /// It is saved as it is now (or will be, once this read's changesets commit).
    Kept,
    /// Set aside; `keyed` when its key was read (a saved version stays).
    SetAside { keyed: bool },
    /// The read stops (its order was wrong, or the saved state unreadable).
    Stopped,
}

/// A read that keeps a row map ([`super::rowmap`]): the map it writes, and
/// the old one it reads beside a table read in rowid order.
pub(super) struct Mapping {
    pub(super) old: Option<Beside>,
    pub(super) new: NewMap,
    /// Keys read beside the old map that the saved state held.
    pub(super) found: KeyList,
}

/// Whether every key of `keys` is in `of`.
fn all_in(keys: &KeyList, of: &KeyList) -> bool {
    if keys.is_empty() {
        return true;
    }
    let mut set = KeyTable::with_capacity(of.len());
    for key in of.iter() {
        if !set.contains(key) {
            set.insert_new(key, ());
        }
    }
    keys.iter().all(|k| set.contains(k))
}

/// A saved digest (16 bytes; anything else compares as changed).
pub(super) fn digest_of(v: rusqlite::types::ValueRef<'_>) -> [u8; 16] {
    v.as_blob().ok().and_then(|d| d.try_into().ok()).unwrap_or_default()
}
