//! The row map: for a SQLite table, where each row stood at the last sync
//! (its rowid), with its fingerprint and key, in rowid order, in a flat
//! file beside `state.db` (`rowmap-CODE.bin`).
//!
//! A table keyed by text is stored in rowid order, not key order: read in
//! key order it is read through its key's index, a page lookup per row. With
//! a row map the next sync reads the table straight, in rowid order, beside
//! the map read in the same order: a row whose rowid and fingerprint match
//! its entry is unchanged (the fingerprint covers the key too), and only the others
//! are looked up in the saved state by key. Entries the table no longer
//! matches give the deletions, without walking the saved state.
//!
//! The map is only a shortcut; the saved state (`rowstate`) stays the truth.
//! It is trusted only when it was written after every changeset of the
//! resource (the header holds the resource's next changeset number, which
//! each commit raises) under the same columns, key, epoch and state format
//! (the header's shape). It is written whole beside its old self, synced,
//! and renamed over it, so a kill leaves the old map (then stale by its
//! number, and ignored) or the new one. It is read sequentially rather than
//! memory-mapped: every crate here forbids `unsafe`, and a merge reads each
//! byte once, in order, so a buffered read costs the same.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use gdx_common::data::{Cell, cells_digest};

use crate::keys::KeyList;

const MAGIC: &[u8; 8] = b"GDXRMAP1";
const HEADER: usize = 8 + 16 + 8 + 8 + 8 + 8;
/// Entries are held in memory to be sorted only up to this many bytes (a
/// read in key order), and at most 2^32 of them; a larger table goes
/// without a map.
const MAX_SORTED_BYTES: usize = 256 << 20;

/// What a map must have been written under to be trusted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape([u8; 16]);

impl Shape {
    pub(super) fn new(code: &str, columns_json: &str, key_json: &str, epoch: u64, state_format: i64) -> Self {
        let (epoch, format) = (epoch.to_string(), state_format.to_string());
        let version = env!("CARGO_PKG_VERSION");
        let cells = [code, columns_json, key_json, &epoch, &format, version].map(Cell::Text);
        Self(cells_digest(&cells, &mut Vec::new()))
    }
}

/// A row's fingerprint in the map: 128 bits of two foldhash lanes over its
/// cells, seeded by the map's random seed (so rows cannot be made to
/// collide on purpose), several times faster than the saved state's digest
/// (the map is written and read by this build only: its version is in the
/// shape).
pub(super) fn fingerprint(seed: u64, cells: &[Cell<'_>]) -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let lane = |lane_seed: u64| {
        let seed = seed ^ lane_seed;
        let mut h = foldhash::fast::FixedState::with_seed(seed).build_hasher();
        h.write_usize(cells.len());
        for cell in cells {
            match *cell {
                Cell::Null => h.write_u8(0),
                Cell::Integer(i) => {
                    h.write_u8(1);
                    h.write_i64(i);
                }
                Cell::Real(f) => {
                    h.write_u8(2);
                    h.write_u64(f.to_bits());
                }
                Cell::Text(t) => {
                    h.write_u8(3);
                    h.write_usize(t.len());
                    h.write(t.as_bytes());
                }
                Cell::Blob(b) => {
                    h.write_u8(4);
                    h.write_usize(b.len());
                    h.write(b);
                }
            }
        }
        h.finish()
    };
    let (a, b) = (lane(0x6764_7872_6f77_6d61), lane(0x7169_6e67_6861_6932));
    ((u128::from(a) << 64) | u128::from(b)).to_le_bytes()
}

/// One row of the map: its rowid, fingerprint and key. `held`: the row was
/// set aside at that sync, its key may still be saved with an older digest
/// (it never matches).
#[derive(Default, Clone)]
pub(super) struct Entry {
    pub(super) rowid: i64,
    pub(super) held: bool,
    pub(super) digest: [u8; 16],
    pub(super) key: Vec<u8>,
}

/// The path of `code`'s map in `dir` (the folder of `state.db`).
pub(super) fn path(dir: &Path, code: &str) -> PathBuf {
    let name: String = code
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("_{b:02x}") })
        .collect();
    dir.join(format!("rowmap-{name}.bin"))
}

/// Removes `code`'s map (its saved state changed outside a changeset).
pub(super) fn forget(dir: &Path, code: &str) -> std::io::Result<()> {
    match std::fs::remove_file(path(dir, code)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A map being read, entry by entry, in rowid order.
pub(super) struct OldMap {
    file: BufReader<File>,
    left: u64,
    /// Bytes left past the header: no entry may claim more.
    bytes: u64,
    /// The seed of the fingerprints, kept by the map written next.
    pub(super) seed: u64,
}

impl OldMap {
    /// `code`'s map, if there is one written under `shape` at changeset
    /// number `seq` and whole; None otherwise (the sync reads in key order).
    pub(super) fn open(dir: &Path, code: &str, shape: Shape, seq: u64) -> Option<Self> {
        let file = File::open(path(dir, code)).ok()?;
        let len = file.metadata().ok()?.len();
        let mut file = BufReader::with_capacity(1 << 20, file);
        let mut head = [0u8; HEADER];
        file.read_exact(&mut head).ok()?;
        let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or_default());
        let whole = &head[..8] == MAGIC && head[8..24] == shape.0 && word(24) == seq && word(40) == len;
        whole.then_some(Self { file, left: word(32), bytes: len - HEADER as u64, seed: word(48) })
    }

    /// Reads the next entry into `e`; false at the end.
    pub(super) fn next(&mut self, e: &mut Entry) -> std::io::Result<bool> {
        if self.left == 0 {
            return Ok(false);
        }
        self.left -= 1;
        let mut fixed = [0u8; 8 + 1 + 16 + 4];
        self.file.read_exact(&mut fixed)?;
        e.rowid = i64::from_le_bytes(fixed[..8].try_into().unwrap_or_default());
        e.held = fixed[8] != 0;
        e.digest.copy_from_slice(&fixed[9..25]);
        let len = u32::from_le_bytes(fixed[25..29].try_into().unwrap_or_default()) as u64;
        self.bytes = self.bytes.checked_sub(fixed.len() as u64 + len).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "an entry runs past the end of the map")
        })?;
        e.key.resize(len as usize, 0);
        self.file.read_exact(&mut e.key)?;
        Ok(true)
    }
}

/// The old map walked beside a table read in rowid order.
pub(super) struct Beside {
    map: OldMap,
    at: Entry,
    more: bool,
    /// Keys of entries the table no longer matches: deleted, unless a row
    /// read elsewhere in this read holds them.
    pub(super) gone: KeyList,
    pub(super) error: Option<std::io::Error>,
}

impl Beside {
    pub(super) fn new(mut map: OldMap) -> Self {
        let mut at = Entry::default();
        let (more, error) = match map.next(&mut at) {
            Ok(more) => (more, None),
            Err(e) => (false, Some(e)),
        };
        Self { map, at, more, gone: KeyList::default(), error }
    }

    /// Moves the entry at `rowid`, if there is one, into `into`; the
    /// entries before it are gone.
    pub(super) fn take(&mut self, rowid: i64, into: &mut Entry) -> bool {
        while self.more && self.at.rowid <= rowid {
            let found = self.at.rowid == rowid;
            if found {
                std::mem::swap(into, &mut self.at);
            } else {
                self.gone.push(&self.at.key);
            }
            self.advance();
            if found {
                return true;
            }
        }
        false
    }

    fn advance(&mut self) {
        self.more = match self.map.next(&mut self.at) {
            Ok(more) => more,
            Err(e) => {
                self.error.get_or_insert(e);
                false
            }
        };
    }

    /// Once the whole table is read: the entries past its last row are gone.
    pub(super) fn finish(&mut self) -> Result<&KeyList, std::io::Error> {
        while self.more {
            self.gone.push(&self.at.key);
            self.advance();
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(&self.gone),
        }
    }
}

/// A map being written: when entries come in rowid order, encoded and
/// written by a thread of its own while the table is read; otherwise held
/// in memory and sorted at the end.
pub(super) struct NewMap {
    tmp: PathBuf,
    /// Rowid order: encoded entries not yet handed to the writer thread.
    buf: Vec<u8>,
    to_writer: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    writer: Option<std::thread::JoinHandle<std::io::Result<File>>>,
    count: u64,
    last: Option<i64>,
    /// Entries not in rowid order: (rowid, held, digest, end of key in `keys`).
    unsorted: Vec<(i64, bool, [u8; 16], usize)>,
    keys: Vec<u8>,
    /// Too many entries to sort in memory, a write failed, or the read
    /// found two rows with one key: no map.
    given_up: bool,
    /// The seed of this map's fingerprints.
    pub(super) seed: u64,
}

/// Encoded entries are handed to the writer thread in pieces of this size.
const PIECE: usize = 1 << 20;

impl NewMap {
    /// Starts `code`'s next map in `dir`, its fingerprints under `seed`
    /// (the old map's, or a new random one); `sorted`: entries come in
    /// rowid order.
    pub(super) fn create(dir: &Path, code: &str, sorted: bool, seed: Option<u64>) -> Self {
        let seed = seed
            .unwrap_or_else(|| std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), code));
        let tmp = path(dir, code).with_extension("bin.tmp");
        let mut map = Self {
            tmp,
            buf: Vec::new(),
            to_writer: None,
            writer: None,
            count: 0,
            last: None,
            unsorted: Vec::new(),
            keys: Vec::new(),
            given_up: false,
            seed,
        };
        if sorted {
            let file = create_private(&map.tmp).and_then(|mut f| f.write_all(&[0; HEADER]).map(|()| f));
            let spawned = file.and_then(|mut file| {
                let (to_writer, pieces) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
                let writer = std::thread::Builder::new().name("rowmap".into()).spawn(move || {
                    for piece in pieces {
                        file.write_all(&piece)?;
                    }
                    Ok(file)
                })?;
                Ok((to_writer, writer))
            });
            match spawned {
                Ok((to_writer, writer)) => (map.to_writer, map.writer) = (Some(to_writer), Some(writer)),
                Err(_) => map.given_up = true,
            }
        }
        map
    }

    pub(super) fn push(&mut self, rowid: i64, held: bool, digest: [u8; 16], key: &[u8]) {
        if self.given_up {
            return;
        }
        match &self.to_writer {
            Some(to_writer) => {
                let ordered = self.last.is_none_or(|last| rowid > last);
                self.last = Some(rowid);
                if !ordered || write_entry(&mut self.buf, rowid, held, &digest, key).is_err() {
                    self.given_up = true;
                } else if self.buf.len() >= PIECE
                    && to_writer.send(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE))).is_err()
                {
                    self.given_up = true; // the writer failed
                }
            }
            None => {
                self.keys.extend_from_slice(key);
                self.unsorted.push((rowid, held, digest, self.keys.len()));
                if self.keys.len() + self.unsorted.len() * 40 > MAX_SORTED_BYTES
                    || self.unsorted.len() > u32::MAX as usize
                {
                    self.given_up = true;
                    self.unsorted = Vec::new();
                    self.keys = Vec::new();
                }
            }
        }
        self.count += 1;
    }

    /// The read found something the map cannot stand for (two rows with
    /// one key): no map is written.
    pub(super) fn abandon(&mut self) {
        self.given_up = true;
        self.unsorted = Vec::new();
        self.keys = Vec::new();
    }

    /// Every entry is pushed: entries held to be sorted are sorted and
    /// written on a thread of their own from now on.
    pub(super) fn seal(&mut self) {
        if self.given_up || self.to_writer.is_some() || self.writer.is_some() {
            return;
        }
        let (tmp, unsorted, keys) =
            (self.tmp.clone(), std::mem::take(&mut self.unsorted), std::mem::take(&mut self.keys));
        let spawned = std::thread::Builder::new().name("rowmap".into()).spawn(move || {
            let mut f = BufWriter::with_capacity(PIECE, create_private(&tmp)?);
            f.write_all(&[0; HEADER])?;
            let mut order: Vec<(i64, u32)> = unsorted.iter().enumerate().map(|(i, e)| (e.0, i as u32)).collect();
            order.sort_unstable();
            for (_, i) in order {
                let i = i as usize;
                let (rowid, held, digest, end) = unsorted[i];
                let start = if i == 0 { 0 } else { unsorted[i - 1].3 };
                write_entry(&mut f, rowid, held, &digest, &keys[start..end])?;
            }
            f.into_inner().map_err(|e| e.into_error())
        });
        match spawned {
            Ok(writer) => self.writer = Some(writer),
            Err(_) => self.given_up = true,
        }
    }

    /// Writes the map under `shape` at changeset number `seq` (the
    /// resource's next one, read once every changeset of this sync is
    /// committed), synced, in place of the old one.
    pub(super) fn finish(mut self, dir: &Path, code: &str, shape: Shape, seq: u64) -> std::io::Result<()> {
        if let Some(to_writer) = self.to_writer.take()
            && !self.given_up
        {
            self.given_up = to_writer.send(std::mem::take(&mut self.buf)).is_err();
        }
        self.seal();
        let written = self.writer.take().map(|w| w.join().unwrap_or_else(|_| Err(std::io::Error::other("panicked"))));
        let mut file = match written {
            Some(Ok(file)) if !self.given_up => file,
            _ => {
                let _ = std::fs::remove_file(&self.tmp);
                return forget(dir, code);
            }
        };
        let len = file.stream_position()?;
        let mut head = Vec::with_capacity(HEADER);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&shape.0);
        for word in [seq, self.count, len, self.seed] {
            head.extend_from_slice(&word.to_le_bytes());
        }
        file.seek(std::io::SeekFrom::Start(0))?;
        file.write_all(&head)?;
        file.sync_data()?;
        std::fs::rename(&self.tmp, path(dir, code))?;
        gdx_files::sync_dir(dir)
    }
}

impl Drop for NewMap {
    /// A map not finished (its read failed) leaves no thread writing and no
    /// temporary file behind.
    fn drop(&mut self) {
        self.to_writer = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Creates `path` readable by its owner only: the map holds the keys.
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

fn write_entry(f: &mut impl Write, rowid: i64, held: bool, digest: &[u8; 16], key: &[u8]) -> std::io::Result<()> {
    f.write_all(&rowid.to_le_bytes())?;
    f.write_all(&[u8::from(held)])?;
    f.write_all(digest)?;
    let len = u32::try_from(key.len()).map_err(|_| std::io::Error::other("a key longer than 4 GiB"))?;
    f.write_all(&len.to_le_bytes())?;
    f.write_all(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn shape() -> Shape {
        Shape::new("r", "[]", "[\"id\"]", 7, 1)
    }

    fn read_all(dir: &Path, shape: Shape, seq: u64) -> Option<Vec<Entry>> {
        let mut map = OldMap::open(dir, "r", shape, seq)?;
        let (mut e, mut out) = (Entry::default(), Vec::new());
        while map.next(&mut e).unwrap() {
            out.push(e.clone());
        }
        Some(out)
    }

    #[test]
    fn a_map_reads_back_in_rowid_order_whichever_order_it_was_written_in() {
        for sorted in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let mut map = NewMap::create(dir.path(), "r", sorted, Some(5));
            let rows: Vec<i64> = if sorted { vec![1, 2, 5, 9] } else { vec![9, 1, 5, 2] };
            for r in &rows {
                map.push(*r, *r == 5, [*r as u8; 16], format!("key{r}").as_bytes());
            }
            map.finish(dir.path(), "r", shape(), 3).unwrap();
            let got = read_all(dir.path(), shape(), 3).unwrap();
            let ids: Vec<i64> = got.iter().map(|e| e.rowid).collect();
            assert_eq!(ids, vec![1, 2, 5, 9]);
            assert!(got[2].held && !got[0].held);
            assert_eq!(got[3].key, b"key9");
            assert_eq!(got[3].digest, [9; 16]);
        }
    }

    #[test]
    fn a_map_of_another_number_shape_or_length_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = NewMap::create(dir.path(), "r", true, None);
        map.push(1, false, [1; 16], b"a");
        map.finish(dir.path(), "r", shape(), 3).unwrap();
        assert!(read_all(dir.path(), shape(), 3).is_some());
        assert!(read_all(dir.path(), shape(), 4).is_none(), "a changeset was committed since");
        assert!(read_all(dir.path(), Shape::new("r", "[]", "[\"id\"]", 8, 1), 3).is_none(), "another epoch");
        let file = std::fs::OpenOptions::new().append(true).open(path(dir.path(), "r")).unwrap();
        file.set_len(HEADER as u64 + 3).unwrap();
        assert!(read_all(dir.path(), shape(), 3).is_none(), "a cut file");
        forget(dir.path(), "r").unwrap();
        forget(dir.path(), "r").unwrap();
        assert!(read_all(dir.path(), shape(), 3).is_none());
    }

    #[test]
    fn entries_out_of_order_in_a_sorted_map_give_no_map() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = NewMap::create(dir.path(), "r", true, None);
        map.push(2, false, [1; 16], b"a");
        map.push(1, false, [1; 16], b"b");
        map.finish(dir.path(), "r", shape(), 3).unwrap();
        assert!(read_all(dir.path(), shape(), 3).is_none());
    }
}
