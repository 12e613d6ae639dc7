//! Files GDX processes share: key material and certificates written
//! create-only and synced, SQLite databases opened for use by several
//! processes at once (the daemons and the operator's commands), and
//! [`tables`]: SQLite tables mirroring a resource, changed by changesets
//! (the hub's vaults and the agent's received database).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

pub mod tables;

/// Creates `path` with `contents` and syncs it, refusing to overwrite an
/// existing file. `private` files are readable by their owner only.
pub fn write_new(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Syncs a directory so that the files just created in it survive a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Opens a SQLite file shared between processes: WAL, `synchronous=FULL`,
/// a busy timeout, and `schema` applied in a write-locked transaction.
/// Switching a new file to WAL needs an exclusive lock and does not wait
/// for one, so that step is retried: two processes may open a new file at once.
pub fn open_sqlite(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mode: rusqlite::Result<String> = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0));
        let result = match mode {
            Ok(m) if m.eq_ignore_ascii_case("wal") => break,
            Ok(_) => conn.pragma_update(None, "journal_mode", "WAL"),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {schema}; COMMIT;"))?;
    Ok(conn)
}
