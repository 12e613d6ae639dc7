//! Sorting the changes of a source that is not read in key order (a CSV
//! drop, a query) with bounded memory: changes gather in memory up to
//! [`RUN_BYTES`], are sorted by key and written as a run to an unnamed
//! temporary file beside `state.db`; once the source is read, the runs and
//! what is left in memory are merged, so changesets leave in key order and
//! the agent's state and the hub's vault are written in index order (in
//! source order a first sync of 1,000,000 CSV rows took five times as long).
//! Killed at any point, the runs vanish with the process and nothing of
//! them was committed: the next scan finds the same changes again.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::changeset::Pending;

/// Bytes of values gathered before a run is written (held in memory they
/// take some five times as much), or rows, whichever comes first.
pub(super) const RUN_BYTES: usize = 4 << 20;
const RUN_ROWS: usize = 100_000;
/// Runs kept at once: when there are this many, they are merged into one,
/// so open files and read buffers stay bounded however large the source.
const MAX_RUNS: usize = 32;
/// Read buffer per run while merging.
const READ_BUFFER: usize = 64 << 10;

/// Changes gathered for sorting.
pub(super) struct Spill {
    dir: PathBuf,
    rows: Vec<(Pending, usize)>,
    bytes: usize,
    runs: Vec<File>,
}

impl Spill {
    /// A spill whose runs go to temporary files in `dir`.
    pub(super) fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), rows: Vec::new(), bytes: 0, runs: Vec::new() }
    }

    pub(super) fn push(&mut self, change: Pending, size: usize) -> std::io::Result<()> {
        self.bytes += size;
        self.rows.push((change, size));
        if self.bytes >= RUN_BYTES || self.rows.len() >= RUN_ROWS {
            self.write_run()?;
        }
        Ok(())
    }

    fn write_run(&mut self) -> std::io::Result<()> {
        let mut rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        rows.sort_unstable_by(|a, b| a.0.key().cmp(b.0.key()));
        let mut file = tempfile::tempfile_in(&self.dir)?;
        {
            let mut out = BufWriter::with_capacity(1 << 20, &mut file);
            for (pending, size) in &rows {
                pending.write_to(&mut out, *size)?;
            }
            out.flush()?;
        }
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        if self.runs.len() >= MAX_RUNS {
            // merge them into one run, a pass over what was written so far
            let runs = std::mem::take(&mut self.runs);
            let mut merged = tempfile::tempfile_in(&self.dir)?;
            {
                let mut out = BufWriter::with_capacity(1 << 20, &mut merged);
                merge(runs, |pending, size| pending.write_to(&mut out, size))?;
                out.flush()?;
            }
            merged.seek(SeekFrom::Start(0))?;
            self.runs.push(merged);
        }
        Ok(())
    }

    /// Calls `each` for every change gathered, in key order.
    pub(super) fn drain(mut self, mut each: impl FnMut(Pending, usize)) -> std::io::Result<()> {
        if self.runs.is_empty() {
            self.rows.sort_unstable_by(|a, b| a.0.key().cmp(b.0.key()));
            for (pending, size) in self.rows {
                each(pending, size);
            }
            return Ok(());
        }
        if !self.rows.is_empty() {
            self.write_run()?;
        }
        merge(self.runs, |pending, size| {
            each(pending, size);
            Ok(())
        })
    }
}

/// Merges sorted runs, calling `each` in key order.
fn merge(runs: Vec<File>, mut each: impl FnMut(Pending, usize) -> std::io::Result<()>) -> std::io::Result<()> {
    let mut readers: Vec<BufReader<File>> =
        runs.into_iter().map(|f| BufReader::with_capacity(READ_BUFFER, f)).collect();
    let mut heads: Vec<Option<(Pending, usize)>> = Vec::with_capacity(readers.len());
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        let head = Pending::read_from(r)?;
        if let Some((p, _)) = &head {
            heap.push(Reverse((p.key().to_vec(), i)));
        }
        heads.push(head);
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let Some((pending, size)) = heads[i].take() else { continue };
        let next = Pending::read_from(&mut readers[i])?;
        if let Some((p, _)) = &next {
            heap.push(Reverse((p.key().to_vec(), i)));
        }
        heads[i] = next;
        each(pending, size)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gdx_common::data::Value;

    use super::*;

    /// Many runs and a rest in memory come out as one sequence in key order,
    /// every change once.
    #[test]
    fn runs_merge_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(dir.path());
        let n = 300_000u64;
        let mut x: u64 = 7;
        let mut want = Vec::new();
        for i in 0..n {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = gdx_common::key::encode_key(&[&Value::Integer((x >> 20) as i64), &Value::Integer(i as i64)]);
            want.push(key.clone());
            // big enough that several runs are written
            let size = RUN_BYTES / 7_000; // a run every 7,000 changes: 42 runs
            spill.push(Pending::delete(&key, &[Value::Integer(i as i64)]), size).unwrap();
        }
        // more runs than are kept at once: some were merged on the way
        assert!(!spill.runs.is_empty() && spill.runs.len() < MAX_RUNS, "{} runs", spill.runs.len());
        want.sort();
        let mut got = Vec::new();
        spill.drain(|p, _| got.push(p.key().to_vec())).unwrap();
        assert_eq!(got, want);
        // few changes never touch the disk
        let mut small = Spill::new(dir.path());
        small.push(Pending::delete(&[2], &[]), 10).unwrap();
        small.push(Pending::delete(&[1], &[]), 10).unwrap();
        assert!(small.runs.is_empty());
        let mut got = Vec::new();
        small.drain(|p, _| got.push(p.key().to_vec())).unwrap();
        assert_eq!(got, [vec![1], vec![2]]);
    }
}
