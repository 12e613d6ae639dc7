//! Group commit for the vaults: many commits, one flush.
//!
//! A vault commits a changeset with `synchronous=NORMAL`: the transaction
//! is in its WAL file, in the kernel's page cache, safe from a killed
//! process but not yet from a power cut. Before a changeset is
//! acknowledged, its vault's WAL file must be on disk. [`GroupSync`] does
//! that for every changeset committed meanwhile at once: commits mark
//! their WAL file, a flusher thread takes all the marked files as one
//! batch, flushes them in parallel (`fdatasync`, plus the vaults folder
//! for files just created), and then every waiter of that batch is
//! answered. While one batch flushes the next one gathers, so under load
//! one flush covers the changesets of many departments and the
//! consecutive changesets of one agent. This is what `synchronous=FULL`
//! does at each commit (SQLite then syncs the WAL file), done once for
//! many.
//!
//! Crash at any line: a commit not yet flushed may be lost by a power cut
//! (never by a killed process), but it was never acknowledged, so the
//! sender sends it again; what reads the vaults for others (the audit
//! collector, the base merge, the delivery producer) first waits for the
//! flush too. A flush that
//! fails leaves the hub unable to say what is on disk: it logs the error
//! and exits rather than acknowledge more. (After a failed flush Linux may
//! keep the unwritten pages in its cache as if written, so a restart does
//! not prove they reached the disk: `synchronous=FULL` has the same limit.)

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Duration;

/// Files flushed at once by one thread of a batch.
const THREADS: usize = 8;

/// Flushes the WAL files of committed vault transactions in batches.
pub struct GroupSync {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Wakes the flusher when a file is marked.
    marked: Condvar,
    /// Wakes blocking waiters when a batch is flushed.
    flushed_cv: Condvar,
    /// The highest batch flushed, for async waiters.
    flushed: tokio::sync::watch::Sender<u64>,
    /// The folder of the files, flushed with each batch (a new vault's entry).
    dir: PathBuf,
}

#[derive(Default)]
struct State {
    /// WAL files committed to since the open batch began.
    files: HashSet<PathBuf>,
    /// The number of the batch being gathered (batches flush in order).
    open: u64,
    /// The highest batch flushed.
    flushed: u64,
    flusher: bool,
}

impl GroupSync {
    /// Group commit for the files in `dir`.
    pub fn new(dir: &Path) -> Self {
        let (flushed, _) = tokio::sync::watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State { open: 1, ..Default::default() }),
                marked: Condvar::new(),
                flushed_cv: Condvar::new(),
                flushed,
                dir: dir.to_path_buf(),
            }),
        }
    }

    /// Marks the database at `db` as committed to: its WAL file joins the
    /// open batch.
    pub fn mark(&self, db: &Path) {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let mut state = self.inner.lock();
        state.files.insert(PathBuf::from(wal));
        if !state.flusher {
            state.flusher = true;
            let weak = Arc::downgrade(&self.inner);
            let spawned = std::thread::Builder::new().name("gdx-group-sync".into()).spawn(move || flusher(weak));
            if let Err(e) = spawned {
                fail(&format!("cannot start the thread that flushes the vaults: {e}"));
            }
        }
        self.inner.marked.notify_one();
    }

    /// The batch that holds every commit marked so far.
    pub fn ticket(&self) -> u64 {
        let state = self.inner.lock();
        if state.files.is_empty() { state.open - 1 } else { state.open }
    }

    /// Waits until batch `ticket` is on disk.
    pub async fn wait(&self, ticket: u64) {
        let mut rx = self.inner.flushed.subscribe();
        // the sender lives as long as `self`: an error cannot happen while we wait
        let _ = rx.wait_for(|&flushed| flushed >= ticket).await;
    }

    /// Waits, blocking the thread, until batch `ticket` is on disk.
    pub fn wait_blocking(&self, ticket: u64) {
        let mut state = self.inner.lock();
        while state.flushed < ticket {
            state = self.inner.flushed_cv.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Takes the marked files batch by batch and flushes them, until the
/// [`GroupSync`] is dropped.
fn flusher(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let (batch, files) = {
            let mut state = inner.lock();
            while state.files.is_empty() {
                let (s, _) =
                    inner.marked.wait_timeout(state, Duration::from_secs(1)).unwrap_or_else(PoisonError::into_inner);
                state = s;
                if state.files.is_empty() && Arc::strong_count(&inner) == 1 {
                    return; // dropped: nobody can mark a file any more
                }
            }
            let batch = state.open;
            state.open += 1;
            (batch, std::mem::take(&mut state.files).into_iter().collect::<Vec<_>>())
        };
        let started = std::time::Instant::now();
        // a panic here would leave every waiter hanging: it stops the hub instead
        match std::panic::catch_unwind(|| flush(&files, &inner.dir)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fail(&e),
            Err(_) => fail("the thread that flushes the vaults failed"),
        }
        let m = crate::metrics::counters();
        m.flush_seconds.observe(started.elapsed().as_secs_f64());
        m.flushed_files.inc_by(files.len() as u64);
        inner.lock().flushed = batch;
        inner.flushed_cv.notify_all();
        inner.flushed.send_replace(batch);
    }
}

/// `fdatasync` of every file (on up to [`THREADS`] threads), then of the folder.
fn flush(files: &[PathBuf], dir: &Path) -> Result<(), String> {
    let sync = |path: &Path| -> Result<(), String> {
        let f = match open_retrying(path) {
            Ok(f) => f,
            // gone: its last connection closed, which checkpointed it and synced the database
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("cannot open {} to flush it: {e}", path.display())),
        };
        f.sync_data().map_err(|e| format!("flushing {} failed: {e}", path.display()))
    };
    if files.len() <= 1 {
        files.iter().try_for_each(|f| sync(f))?;
    } else {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = Mutex::new(None);
        let work = || {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(f) = files.get(i) else { break };
                if let Err(e) = sync(f) {
                    *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                }
            }
        };
        std::thread::scope(|s| {
            // a helper the system refuses leaves its share to the others and to this thread
            for _ in 1..THREADS.min(files.len()) {
                let _ = std::thread::Builder::new().name("gdx-group-sync".into()).spawn_scoped(s, work);
            }
            work();
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
            return Err(e);
        }
    }
    // a vault (and its WAL file) created since the last batch is found after a power cut
    match std::fs::File::open(dir) {
        Ok(d) => d.sync_all().map_err(|e| format!("flushing the folder {} failed: {e}", dir.display())),
        // removed with its files: nothing of it is left to keep
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot open the folder {} to flush it: {e}", dir.display())),
    }
}

/// Opens `path` to flush it, waiting out a lack of file descriptors (the
/// hub's other connections give theirs back) for up to ten seconds.
fn open_retrying(path: &Path) -> std::io::Result<std::fs::File> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::File::open(path) {
            // EMFILE, ENFILE, EINTR
            Err(e) if matches!(e.raw_os_error(), Some(24 | 23 | 4)) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// A flush failed: what the disk holds is unknown, so nothing more may be
/// acknowledged. The hub stops; its service manager starts it again.
fn fail(why: &str) -> ! {
    tracing::error!(
        error = %why,
        "the vaults cannot be flushed to disk; the hub stops so that nothing unwritten is acknowledged (check the disk, then start it again)"
    );
    eprintln!(
        "gdx-hub: the vaults cannot be flushed to disk ({why}); the hub stops so that nothing unwritten is acknowledged. Check the disk, then start it again."
    );
    std::process::exit(74)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_waits_for_the_batch_that_holds_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        std::fs::write(dir.path().join("a.db-wal"), b"x").unwrap();
        let g = GroupSync::new(dir.path());
        // nothing marked: nothing to wait for
        assert_eq!(g.ticket(), 0);
        g.wait_blocking(g.ticket());
        g.mark(&db);
        let t = g.ticket();
        assert_eq!(t, 1);
        g.wait_blocking(t);
        // a missing WAL file (checkpointed and removed) counts as flushed
        g.mark(&dir.path().join("gone.db"));
        g.mark(&db);
        let t = g.ticket();
        assert!(t >= 2);
        g.wait_blocking(t);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(g.wait(t));
        assert!(g.inner.lock().flushed >= t);
    }

    #[test]
    fn many_files_flush_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..40).map(|i| dir.path().join(format!("v{i}.db"))).collect();
        for f in &files {
            std::fs::write(format!("{}-wal", f.display()), b"x").unwrap();
        }
        let g = GroupSync::new(dir.path());
        for f in &files {
            g.mark(f);
        }
        let t = g.ticket();
        g.wait_blocking(t);
        // fewer batches than files: one flush covers many commits
        assert!(t < 40, "{t} batches for 40 files marked at once");
    }
}
