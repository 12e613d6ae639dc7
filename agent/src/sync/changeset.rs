//! Changesets: gathered from the changed rows, cut by rows and bytes,
//! encoded, compressed and signed, then committed to the outbox with their
//! rows' new digests in one transaction.

use gdx_certs::pki;
use gdx_common::data::{
    Change, Changeset, Column, MAX_CHANGESET_CELLS, MAX_CHANGESET_ROWS, ResourceCode, Value, encode_changeset_of,
};
use gdx_common::wire::{self, SignedChangeset};
use rusqlite::params;

use super::spill::Spill;
use super::{MAX_CHUNK_BYTES, ScanError};
use crate::identity::Signer;
use crate::state::State;

/// A change on its way into a changeset, in one allocation: its encoded
/// key (the order of `rowstate` and of the hub's vault), then the change as
/// the changeset's body encodes it ([`Change::put_upsert`]); with its count
/// of values and its row's new digest. A changed row is never held as
/// values: each would be an allocation, made on the reading thread and
/// freed on another.
#[derive(Debug)]
pub(super) struct Pending {
    bytes: Vec<u8>,
    key_len: u32,
    cells: u32,
    /// `None`: a delete.
    digest: Option<[u8; 16]>,
}

impl Pending {
    /// An upsert of the row whose values encode as `values` (what
    /// [`gdx_common::data::DigestKind::of`] leaves in its buffer).
    pub(super) fn upsert(key: &[u8], values: &[u8], cells: usize, digest: [u8; 16]) -> Self {
        let mut bytes = Vec::with_capacity(key.len() + 1 + values.len());
        bytes.extend_from_slice(key);
        Change::put_upsert(values, &mut bytes);
        Self { bytes, key_len: key.len() as u32, cells: cells as u32, digest: Some(digest) }
    }

    /// A delete of the row keyed `key`, whose values are `values`.
    pub(super) fn delete(key: &[u8], values: &[Value]) -> Self {
        let mut bytes = Vec::with_capacity(key.len() + 1 + values.len() * 10);
        bytes.extend_from_slice(key);
        Change::put_delete(values, &mut bytes);
        Self { bytes, key_len: key.len() as u32, cells: values.len() as u32, digest: None }
    }

    pub(super) fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len as usize]
    }

    /// The change, as the changeset's body holds it.
    fn change(&self) -> &[u8] {
        &self.bytes[self.key_len as usize..]
    }

    /// Writes it to a spill's run, with `size`: its length, its counts and
    /// digest, then its bytes as they are.
    pub(super) fn write_to(&self, out: &mut impl std::io::Write, size: usize) -> std::io::Result<()> {
        let mut head = [0u8; HEAD];
        head[..8].copy_from_slice(&(self.bytes.len() as u64).to_le_bytes());
        head[8..16].copy_from_slice(&(size as u64).to_le_bytes());
        head[16..20].copy_from_slice(&self.key_len.to_le_bytes());
        head[20..24].copy_from_slice(&self.cells.to_le_bytes());
        if let Some(d) = self.digest {
            head[24] = 1;
            head[25..41].copy_from_slice(&d);
        }
        out.write_all(&head)?;
        out.write_all(&self.bytes)
    }

    /// Reads back what [`Pending::write_to`] wrote, and its size; `None` at
    /// the end of the run.
    pub(super) fn read_from(r: &mut impl std::io::Read) -> std::io::Result<Option<(Self, usize)>> {
        let mut head = [0u8; HEAD];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or_default());
        let half = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().unwrap_or_default());
        let (len, size, key_len, cells) = (word(0) as usize, word(8) as usize, half(16), half(20));
        // what this process wrote: more means the file was damaged
        if key_len as usize > len || len > 4 * super::MAX_ROW_BYTES {
            return Err(std::io::Error::other("a spilled change is damaged"));
        }
        let digest = (head[24] == 1).then(|| head[25..41].try_into().unwrap_or_default());
        let mut bytes = vec![0u8; len];
        r.read_exact(&mut bytes)?;
        Ok(Some((Self { bytes, key_len, cells, digest }, size)))
    }
}

/// Bytes before a spilled change's own: its length and size, key length,
/// values, whether it has a digest, and the digest.
const HEAD: usize = 8 + 8 + 4 + 4 + 1 + 16;

/// Gathers changes into changesets of at most [`MAX_CHANGESET_ROWS`] rows,
/// [`MAX_CHANGESET_CELLS`] values and [`MAX_CHUNK_BYTES`] bytes (so every frame fits the wire limit), and
/// sends each to the encoder as soon as it is full, sorted by key so that
/// the state and the hub's vault are written in index order. Changes that
/// do not come in key order go through a [`Spill`] first and leave, merged
/// in key order, at [`Batcher::finish`].
pub(super) struct Batcher {
    to_encoder: std::sync::mpsc::SyncSender<Vec<Pending>>,
    rows: Vec<(Pending, usize)>,
    bytes: usize,
    /// Values in `rows`: a changeset holds at most [`MAX_CHANGESET_CELLS`].
    cells: usize,
    spill: Option<Spill>,
    /// The key of the last change cut while changes still came in key
    /// order: a source already sorted streams without a spill.
    last: Option<Vec<u8>>,
    error: Option<std::io::Error>,
}

impl Batcher {
    pub(super) fn new(to_encoder: std::sync::mpsc::SyncSender<Vec<Pending>>, spill: Option<Spill>) -> Self {
        Self { to_encoder, rows: Vec::new(), bytes: 0, cells: 0, spill, last: Some(Vec::new()), error: None }
    }

    /// Holds every change in the spill until [`Batcher::finish`], even
    /// changes that come in key order: a read beside the row map may find,
    /// at its end, that it must not send what it found.
    pub(super) fn hold(&mut self) {
        if self.spill.is_some() {
            self.last = None;
        }
    }

    pub(super) fn push(&mut self, change: Pending, size: usize) {
        match &mut self.spill {
            Some(_) if self.last.as_ref().is_some_and(|last| last.is_empty() || last.as_slice() < change.key()) => {
                // still in key order: straight on
                let last = self.last.get_or_insert_with(Vec::new);
                last.clear();
                last.extend_from_slice(change.key());
                self.cut(change, size);
            }
            Some(spill) if self.error.is_none() => {
                self.last = None;
                if let Err(e) = spill.push(change, size) {
                    self.error = Some(e);
                }
            }
            Some(_) => {} // the scan fails at finish
            None => self.cut(change, size),
        }
    }

    fn cut(&mut self, change: Pending, size: usize) {
        let cells = change.cells as usize;
        if !self.rows.is_empty()
            && (self.rows.len() >= MAX_CHANGESET_ROWS
                || self.bytes + size > MAX_CHUNK_BYTES
                || self.cells + cells > MAX_CHANGESET_CELLS)
        {
            self.send();
        }
        self.bytes += size;
        self.cells += cells;
        self.rows.push((change, size));
    }

    fn send(&mut self) {
        let mut rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        self.cells = 0;
        if !rows.is_empty() {
            // encoded keys sort like the keys' values (a sorted run costs one pass)
            rows.sort_unstable_by(|a, b| a.0.key().cmp(b.0.key()));
            // a send fails only when the writer stopped on an error, which the scan returns
            let _ = self.to_encoder.send(rows.into_iter().map(|(change, _)| change).collect());
        }
    }

    /// Sends what is left (all of it, merged, from a spill), then the last
    /// changeset. An error writing or reading the spill fails the scan.
    pub(super) fn finish(&mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some(spill) = self.spill.take() {
            spill.drain(|change, size| self.cut(change, size))?;
        }
        self.send();
        Ok(())
    }
}

/// New digests written to the saved state in one statement.
const STATE_ROWS: usize = 32;

/// Commits one changeset: its rows' new digests, the outbox entry and the
/// next number, in one transaction.
pub(super) fn commit_changeset(state: &mut State, code: &str, made: Made) -> Result<(), ScanError> {
    let Made { seq, keys, frame } = made;
    let tx = state.conn().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let upsert = |rows: usize| {
            let tuples: Vec<String> = (0..rows).map(|i| format!("(?1, ?{}, ?{})", 2 * i + 2, 2 * i + 3)).collect();
            format!("INSERT OR REPLACE INTO rowstate (resource, key, digest) VALUES {}", tuples.join(", "))
        };
        // runs of new digests go STATE_ROWS to a statement (one statement's overhead for many rows)
        let mut up = tx.prepare_cached(&upsert(1))?;
        let mut up_many = tx.prepare_cached(&upsert(STATE_ROWS))?;
        let mut del = tx.prepare_cached("DELETE FROM rowstate WHERE resource = ?1 AND key = ?2")?;
        let mut run: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(1 + 2 * STATE_ROWS);
        run.push(&code);
        let pairs: Vec<(&[u8], Option<[u8; 16]>)> = keys.iter().collect();
        for (key, digest) in &pairs {
            match digest {
                Some(d) => {
                    run.extend([key as &dyn rusqlite::ToSql, d as &dyn rusqlite::ToSql]);
                    if run.len() == 1 + 2 * STATE_ROWS {
                        up_many.execute(run.as_slice())?;
                        run.truncate(1);
                    }
                }
                None => {
                    // the new digests before it first: the changes apply in their order
                    upsert_each(&mut up, &mut run)?;
                    del.execute(params![code, key])?;
                }
            }
        }
        upsert_each(&mut up, &mut run)?;
    }
    tx.execute(
        "INSERT INTO outbox (resource, seq, rows, envelope) VALUES (?1, ?2, ?3, ?4)",
        params![code, seq as i64, keys.rows.len() as i64, frame],
    )?;
    tx.execute("UPDATE resources SET next_seq = ?2 WHERE code = ?1", params![code, seq as i64 + 1])?;
    tx.commit()?;
    Ok(())
}

/// Writes the new digests of `run` (the resource, then key and digest
/// pairs) one statement each, and empties it back to the resource.
fn upsert_each(up: &mut rusqlite::CachedStatement<'_>, run: &mut Vec<&dyn rusqlite::ToSql>) -> rusqlite::Result<()> {
    for pair in run[1..].chunks(2) {
        up.execute([run[0], pair[0], pair[1]].as_slice())?;
    }
    run.truncate(1);
    Ok(())
}

/// A changeset ready for the outbox: its number, its rows' keys and new
/// digests, and the signed upload frame.
pub(super) struct Made {
    pub(super) seq: u64,
    pub(super) keys: Synced,
    pub(super) frame: Vec<u8>,
}

/// The keys of a changeset's rows one after another, each with where it
/// ends and its row's new digest (`None`: deleted): what the saved state
/// needs of them, in two allocations, while the rows' values are freed.
pub(super) struct Synced {
    bytes: Vec<u8>,
    rows: Vec<(usize, Option<[u8; 16]>)>,
}

impl Synced {
    pub(super) fn of(rows: &[Pending]) -> Self {
        let mut bytes = Vec::with_capacity(rows.iter().map(|p| p.key_len as usize).sum());
        let rows = rows
            .iter()
            .map(|p| {
                bytes.extend_from_slice(p.key());
                (bytes.len(), p.digest)
            })
            .collect();
        Self { bytes, rows }
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], Option<[u8; 16]>)> {
        let starts = std::iter::once(0).chain(self.rows.iter().map(|r| r.0));
        starts.zip(&self.rows).map(|(start, &(end, digest))| (&self.bytes[start..end], digest))
    }
}

/// Changeset `seq` of `chunk`, encoded, compressed, signed and framed for upload.
#[allow(clippy::too_many_arguments)]
pub(super) fn signed_frame(
    signer: &Signer,
    resource: &ResourceCode,
    epoch: u64,
    columns: &[Column],
    key_idx: &[usize],
    seq: u64,
    chunk: &[Pending],
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
        changes: Vec::new(),
        created_at: now,
    };
    let changes: Vec<&[u8]> = chunk.iter().map(Pending::change).collect();
    let body = encode_changeset_of(&cs, &changes).map_err(|e| ScanError::Key(format!("{resource}: {e}")))?;
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

#[cfg(test)]
mod tests {
    use gdx_common::data::Value;

    use super::*;
    use crate::sync::row_bytes;

    #[test]
    fn batches_respect_rows_and_bytes_and_key_order() {
        let batches = |rows: Vec<Value>, n: i64| {
            let (tx, rx) = std::sync::mpsc::sync_channel(100);
            let mut batcher = Batcher::new(tx, None);
            for i in (0..n).rev() {
                let mut row = vec![Value::Integer(i)];
                row.extend(rows.iter().cloned());
                let key = gdx_common::key::encode_key(&[&row[0]]);
                let size = row_bytes(&row);
                let values = bincode::serde::encode_to_vec(&row, bincode::config::standard()).unwrap();
                batcher.push(Pending::upsert(&key, &values, row.len(), [0; 16]), size);
            }
            batcher.finish().unwrap();
            drop(batcher);
            rx.into_iter().collect::<Vec<_>>()
        };
        let sizes = |b: &Vec<Vec<Pending>>| b.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(&batches(vec![], 12_001)), [5_000, 5_000, 2_001]);
        assert_eq!(sizes(&batches(vec![Value::Blob(vec![0; 3 << 20])], 5)), [2, 2, 1]);
        assert!(batches(vec![], 0).is_empty());
        // each changeset is sorted by key (they came in descending order)
        let sorted = batches(vec![], 12_001);
        let first: Vec<&[u8]> = sorted[0].iter().take(2).map(Pending::change).collect();
        let upsert = |i: i64| {
            let mut out = Vec::new();
            let values = bincode::serde::encode_to_vec(vec![Value::Integer(i)], bincode::config::standard()).unwrap();
            Change::put_upsert(&values, &mut out);
            out
        };
        assert_eq!(first, [upsert(7_001), upsert(7_002)]);
    }

    /// A change written to a spill's run reads back as it was.
    #[test]
    fn spilled_changes_read_back_whole() {
        let values =
            bincode::serde::encode_to_vec(vec![Value::Text("拉毛".into())], bincode::config::standard()).unwrap();
        let changes = [Pending::upsert(b"k1", &values, 1, [7; 16]), Pending::delete(b"k22", &[Value::Integer(-3)])];
        let mut run = Vec::new();
        for (i, p) in changes.iter().enumerate() {
            p.write_to(&mut run, 100 + i).unwrap();
        }
        let mut r = run.as_slice();
        for (i, want) in changes.iter().enumerate() {
            let (got, size) = Pending::read_from(&mut r).unwrap().unwrap();
            assert_eq!(
                (got.key(), got.change(), got.cells, got.digest, size),
                (want.key(), want.change(), want.cells, want.digest, 100 + i)
            );
        }
        assert!(Pending::read_from(&mut r).unwrap().is_none());
        // cut short in its bytes: an error, not a change
        assert!(Pending::read_from(&mut &run[..HEAD + 2]).is_err());
    }

    /// A source in key order streams; from its first key out of order on,
    /// the rest goes through the spill; every change comes out once.
    #[test]
    fn sorted_changes_stream_and_the_rest_are_spilled() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(100);
        let mut batcher = Batcher::new(tx, Some(Spill::new(dir.path())));
        let key = |i: i64| gdx_common::key::encode_key(&[&Value::Integer(i)]);
        for i in (0..6_000).chain([-5, 9_000, 3]) {
            batcher.push(Pending::delete(&key(i), &[Value::Integer(i)]), 10);
        }
        // the first 5,000 in order left as a changeset while the source was read
        assert_eq!(rx.try_iter().map(|b| b.len()).collect::<Vec<_>>(), [5_000]);
        batcher.finish().unwrap();
        drop(batcher);
        let rest: Vec<Vec<u8>> = rx.into_iter().flatten().map(|p| p.key().to_vec()).collect();
        let mut want: Vec<Vec<u8>> = (5_000..6_000).chain([-5, 9_000, 3]).map(key).collect();
        want.sort();
        assert_eq!(rest, want);
    }
}
