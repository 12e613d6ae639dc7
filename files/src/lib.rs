//! Files GDX processes share: key material and certificates written
//! create-only and synced, private keys refused when others can read them,
//! directories and databases created for their owner only (0700, 0600),
//! SQLite databases opened for use by several
//! processes at once (the daemons and the operator's commands), and
//! [`tables`]: SQLite tables mirroring a resource, changed by changesets
//! (the hub's vaults and the agent's received database); and
//! [`disk_full`], which tells a full disk from other storage failures.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

pub mod at_rest;
pub mod pair;
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

/// Replaces `path` with `contents` whole: written and synced beside it,
/// then renamed over it, so a kill leaves the old file or the new one.
pub fn replace(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or_default()));
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, contents, private)?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Opens an existing database to read and write, with its at-rest key if
/// one applies (no schema, no journal change: see [`open_sqlite`]).
pub fn open_existing(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    at_rest::unlock(conn, path, true)
}

/// Opens an existing database to write, with its at-rest key if one
/// applies, never converting a plain one (for a reader in another process
/// that must not race the owner's conversion).
pub fn open_existing_as_is(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    at_rest::unlock(conn, path, false)
}

/// Opens a database to read only, with its at-rest key if one applies.
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    at_rest::unlock(conn, path, false)
}

/// Creates directory `dir` (and its missing parents) readable by its owner
/// only (0700); an existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Reads a private key file, refusing it when other users can read or
/// write it: a key others can read is no longer this machine's alone.
pub fn read_private(path: &Path) -> std::io::Result<String> {
    check_private(path)?;
    std::fs::read_to_string(path)
}

/// Fails, saying what to do, when other users can read or write the file at `path`.
pub fn check_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} is open to other users (mode {mode:03o}); a file holding a key or password must be readable by its owner only: run `chmod 600 {}`, and replace the secret if others may have read it",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The text of a secret given on the command line: `-` reads it from
/// standard input, `@FILE` from a file, anything else is the secret itself
/// (which other users of the machine can see in the process list).
pub fn secret_arg(arg: &str) -> std::io::Result<String> {
    let text = match arg {
        "-" => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line
        }
        _ => match arg.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read the token file {file}: {e}")))?,
            None => arg.to_owned(),
        },
    };
    Ok(text.trim().to_owned())
}

/// Syncs a directory so that the files just created in it survive a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// An SQLite identifier (table, column, index name) quoted for SQL text:
/// in double quotes, a double quote inside doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Opens a SQLite file shared between processes: WAL, `synchronous=FULL`,
/// a busy timeout, and `schema` applied in a write-locked transaction.
/// Switching a new file to WAL needs an exclusive lock and does not wait
/// for one, so that step is retried: two processes may open a new file at once.
pub fn open_sqlite(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    // a new database is its owner's only (SQLite gives its -wal and -shm files the same mode)
    #[cfg(unix)]
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        let created = OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path);
        if let Err(e) = created {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("cannot create {}: {e}", path.display())),
            ));
        }
    }
    // a database made before files were created private is made private now
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
    let conn = at_rest::unlock(Connection::open(path)?, path, true)?;
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

/// True when `e`, or an error under it, says the disk is full: SQLite's
/// `SQLITE_FULL`, its shared-memory file unable to grow (which is how a
/// full disk shows under WAL), or the system's "no space left on device".
pub fn disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(rusqlite::Error::SqliteFailure(f, _)) = e.downcast_ref::<rusqlite::Error>()
            && (f.code == rusqlite::ErrorCode::DiskFull || f.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE)
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(ENOSPC))
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn databases_and_directories_are_their_owners_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("x.db");
        let conn = open_sqlite(&db, "CREATE TABLE t (x)").unwrap();
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.join("x.db-wal")), 0o600, "SQLite gives the WAL the database's mode");
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k.key");
        write_new(&key, b"secret", true).unwrap();
        assert_eq!(read_private(&key).unwrap(), "secret");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_private(&key).unwrap_err().to_string();
        assert!(e.contains("is open to other users (mode 644)") && e.contains("chmod 600"), "{e}");
    }
}
