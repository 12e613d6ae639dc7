//! Encryption at rest (GB/T 39477): the databases that hold departments'
//! data (a hub's vaults, base databases and `exchange.db`, an agent's
//! `received.db`) can be kept encrypted with SQLCipher (AES-256,
//! HMAC-SHA512 per page), under a 256-bit key kept in a file of its own,
//! 0600, apart from the data.
//!
//! A program says once, at its start, which files are encrypted and under
//! which key ([`encrypt_under`]); every database opened through this crate
//! under that path then gets the key before its first statement. A database
//! found plain where a key applies is encrypted in place on a writer's first
//! open: exported into a new file beside it, which replaces it in one
//! rename, so a kill at any point leaves either the plain file or the
//! encrypted one; a lock file beside it lets one process at a time do it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rusqlite::Connection;

/// A 256-bit at-rest key.
#[derive(Clone)]
pub struct AtRestKey([u8; 32]);

impl std::fmt::Debug for AtRestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtRestKey(…)")
    }
}

/// Paths (a directory or a file) whose databases are encrypted, and their key.
static UNDER: RwLock<Vec<(PathBuf, Arc<AtRestKey>)>> = RwLock::new(Vec::new());

impl AtRestKey {
    /// Reads a key file: 64 hex digits on one line, readable by its owner only.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let text = crate::read_private(path).map_err(|e| match e.kind() {
            // not "make one": a new key opens none of the stores the lost one encrypted
            std::io::ErrorKind::NotFound => std::io::Error::new(
                e.kind(),
                format!(
                    "the at-rest key file {} does not exist; put the key back there, or name the right file in at_rest_key",
                    path.display()
                ),
            ),
            _ => e,
        })?;
        let bad = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold an at-rest key (64 hex digits on one line); make one with `openssl rand -hex 32 > {}` and chmod 600",
                    path.display(),
                    path.display()
                ),
            )
        };
        let hex = text.trim();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
        }
        Ok(Self(key))
    }

    fn pragma(&self) -> String {
        let hex = gdx_common::token::hex(&self.0);
        format!("PRAGMA key = \"x'{hex}'\";")
    }
}

/// Encrypts every database opened through this crate at `path` or below it
/// under `key`, from now on in this process.
pub fn encrypt_under(path: &Path, key: AtRestKey) {
    if let Ok(mut under) = UNDER.write() {
        under.retain(|(p, _)| p != path);
        under.push((path.to_path_buf(), Arc::new(key)));
    }
}

fn key_for(path: &Path) -> Option<Arc<AtRestKey>> {
    let under = UNDER.read().ok()?;
    under.iter().find(|(p, _)| path.starts_with(p)).map(|(_, k)| k.clone())
}

/// True when the database at `path` is kept encrypted.
pub fn is_encrypted(path: &Path) -> bool {
    key_for(path).is_some()
}

/// Gives `conn`, just opened on `path`, its key if one applies, and checks
/// that the key opens it; a plain database is encrypted in place first (when
/// `may_convert`: a writer's open). Must run before any other statement.
pub(crate) fn unlock(conn: Connection, path: &Path, may_convert: bool) -> rusqlite::Result<Connection> {
    let Some(key) = key_for(path) else { return Ok(conn) };
    // a wrong key or a plain file is answered here in a sentence; SQLCipher's own log would only alarm
    conn.execute_batch(&format!("PRAGMA cipher_log_level = NONE; {}", key.pragma()))?;
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => Ok(conn),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::NotADatabase => {
            drop(conn);
            if !may_convert && is_plain(path) {
                return Err(refused(
                    path,
                    "it is not encrypted yet although at_rest_key is set; start the service once \
                     (systemctl start gdx-hub or gdx-agent, or `gdx-hub run`, `gdx-agent run`) to encrypt it, then try again",
                ));
            }
            // one conversion at a time, across processes: two openers of the same plain file (the
            // daemon and a command run beside it, say) would otherwise each rewrite it, and the
            // first one's writes would go to the file the second one's rename replaced
            let _converting = if may_convert { Some(ConvertLock::take(path)?) } else { None };
            if may_convert && is_plain(path) {
                encrypt_in_place(path, &key)?;
            } else if !is_keyed(path, &key) {
                return Err(refused(path, "it is encrypted under another key; check at_rest_key"));
            }
            let conn = Connection::open(path)?;
            conn.execute_batch(&key.pragma())?;
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?;
            Ok(conn)
        }
        Err(e) => Err(e),
    }
}

/// The lock taken to encrypt (or copy) a store that may still be plain: a
/// file beside it (`NAME.encrypting-lock`, kept: removing a lock file
/// another process waits on would let a third take a new one), locked by
/// this process until dropped; other processes wait for it, and so do this
/// one's other threads.
struct ConvertLock {
    _file: std::fs::File,
}

impl ConvertLock {
    fn take(store: &Path) -> rusqlite::Result<Self> {
        let path = store.with_extension("encrypting-lock");
        let failed =
            |e: std::io::Error| refused(store, &format!("its lock file {} cannot be used ({e})", path.display()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(&path).map_err(failed)?;
        file.lock().map_err(failed)?;
        Ok(Self { _file: file })
    }
}

/// Writes a consistent copy of the database at `src` (taken while others
/// write to it: one read transaction) to the new file `dest`, encrypted
/// under the same key as `src` if one applies to `src` and `src` is
/// encrypted already, else plain (a store not yet converted is copied as
/// it is, no conversion replacing it meanwhile).
pub fn copy_database(src: &Path, dest: &Path) -> rusqlite::Result<()> {
    // made here, empty and the owner's only: an attached file is opened with the flags of `src`'s
    // connection, which do not create, and an empty file is a database SQLite may write into
    crate::write_new(dest, b"", true).map_err(|e| {
        refused(dest, &format!("it cannot be created ({e}); name a new file in a folder you can write"))
    })?;
    let copied = copy_into(src, dest);
    if copied.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    copied
}

fn copy_into(src: &Path, dest: &Path) -> rusqlite::Result<()> {
    let key = key_for(src);
    let _converting = match key.is_some() && is_plain(src) {
        true => Some(ConvertLock::take(src)?),
        false => None,
    };
    let key = key.filter(|_| !is_plain(src));
    // a writer's connection (attaching the copy needs one); nothing of `src` is written, nor converted
    let conn = match key {
        Some(_) => crate::open_existing_as_is(src)?,
        None => Connection::open_with_flags(
            src,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
    };
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = dest.display().to_string().replace('\'', "''");
    match key {
        // VACUUM INTO reads one snapshot and writes a compact copy
        None => conn.execute_batch(&format!("VACUUM INTO '{target}'")),
        Some(key) => {
            let hex = key.pragma();
            let hex = hex.trim_start_matches("PRAGMA key = ").trim_end_matches(';');
            conn.execute_batch(&format!(
                "ATTACH DATABASE '{target}' AS copy KEY {hex}; BEGIN; SELECT sqlcipher_export('copy'); COMMIT; DETACH DATABASE copy;"
            ))
        }
    }
}

/// True when `key` opens the database at `path` (converted meanwhile by
/// another opener).
fn is_keyed(path: &Path, key: &AtRestKey) -> bool {
    Connection::open(path)
        .and_then(|c| {
            c.execute_batch(&format!("PRAGMA cipher_log_level = NONE; {}", key.pragma()))?;
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
        })
        .is_ok()
}

/// A plain SQLite file starts with this header; an encrypted one does not.
fn is_plain(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok()
        && &head == b"SQLite format 3\0"
}

fn refused(path: &Path, why: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
        Some(format!("cannot open {}: {why}", path.display())),
    )
}

/// Replaces the plain database at `path` by an encrypted copy.
fn encrypt_in_place(path: &Path, key: &AtRestKey) -> rusqlite::Result<()> {
    // a name of this process's own, though the lock keeps two from converting at once
    let tmp = path.with_extension(format!("encrypting-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let made = export_encrypted(path, &tmp, key);
    if made.is_err() {
        // a full disk, say: the half-made copy goes, the plain store stays
        let _ = std::fs::remove_file(&tmp);
    }
    made
}

/// The plain database at `path` exported to `tmp` under `key`, synced, and
/// renamed over `path`.
fn export_encrypted(path: &Path, tmp: &Path, key: &AtRestKey) -> rusqlite::Result<()> {
    {
        let plain = Connection::open(path)?;
        // everything into the main file, so that the copy and the rename see it all
        plain.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let hex = key.pragma();
        let hex = hex.trim_start_matches("PRAGMA key = ").trim_end_matches(';');
        plain.execute_batch(&format!(
            "ATTACH DATABASE '{}' AS encrypted KEY {hex}; SELECT sqlcipher_export('encrypted'); DETACH DATABASE encrypted;",
            tmp.display().to_string().replace('\'', "''")
        ))?;
    }
    let io = |e: std::io::Error| refused(path, &format!("encrypting it failed ({e})"));
    std::fs::File::open(tmp).and_then(|f| f.sync_all()).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        crate::sync_dir(dir).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(path: &Path, hex: &str) -> AtRestKey {
        crate::write_new(path, hex.as_bytes(), true).unwrap();
        AtRestKey::load(path).unwrap()
    }

    #[test]
    fn databases_under_a_key_are_unreadable_without_it_and_plain_ones_are_converted() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("vaults");
        crate::create_private_dir(&data).unwrap();
        // a plain database from before encryption was turned on
        let old = data.join("old.db");
        crate::open_sqlite(&old, "CREATE TABLE t (x TEXT)")
            .unwrap()
            .execute("INSERT INTO t VALUES ('卓玛')", [])
            .unwrap();
        assert!(is_plain(&old));
        let k = key(&tmp.path().join("k.key"), &"ab".repeat(32));
        encrypt_under(&data, k);
        let conn = crate::open_sqlite(&old, "CREATE TABLE IF NOT EXISTS t (x TEXT)").unwrap();
        let x: String = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, "卓玛", "converted with its rows");
        drop(conn);
        assert!(!is_plain(&old), "the file no longer shows its contents");
        let raw = std::fs::read(&old).unwrap();
        assert!(!raw.windows("卓玛".len()).any(|w| w == "卓玛".as_bytes()));
        // without the key it is not a database
        let bare = Connection::open(&old).unwrap();
        assert!(bare.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).is_err());
        // read-only opens get the key too
        let ro = crate::open_read_only(&old).unwrap();
        assert_eq!(ro.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
        // a new database is encrypted from its first page
        let new = data.join("new.db");
        crate::open_sqlite(&new, "CREATE TABLE t (x)").unwrap();
        assert!(!is_plain(&new));
        // another key is refused with a sentence, and nothing is converted
        encrypt_under(&data, key(&tmp.path().join("k2.key"), &"cd".repeat(32)));
        let e = crate::open_sqlite(&old, "SELECT 1").unwrap_err().to_string();
        assert!(e.contains("encrypted under another key"), "{e}");
        // outside the path, nothing changes
        let plain = tmp.path().join("catalog.db");
        crate::open_sqlite(&plain, "CREATE TABLE t (x)").unwrap();
        assert!(is_plain(&plain));
    }

    #[test]
    fn a_copy_of_an_encrypted_database_is_encrypted_under_the_same_key() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("bases");
        crate::create_private_dir(&data).unwrap();
        encrypt_under(&data, key(&tmp.path().join("k.key"), &"ef".repeat(32)));
        let src = data.join("renkou.db");
        crate::open_sqlite(&src, "CREATE TABLE t (x TEXT)")
            .unwrap()
            .execute("INSERT INTO t VALUES ('才让')", [])
            .unwrap();
        let copy = tmp.path().join("backup").join("renkou.db");
        crate::create_private_dir(copy.parent().unwrap()).unwrap();
        copy_database(&src, &copy).unwrap();
        assert!(!is_plain(&copy), "the copy shows nothing");
        let bare = Connection::open(&copy).unwrap();
        assert!(bare.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).is_err());
        // read back where the same key applies
        encrypt_under(copy.parent().unwrap(), key(&tmp.path().join("k2.key"), &"ef".repeat(32)));
        let x: String = crate::open_read_only(&copy).unwrap().query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, "才让");
        // a plain database's copy is plain, and neither overwrites a file
        let plain = tmp.path().join("catalog.db");
        crate::open_sqlite(&plain, "CREATE TABLE t (x)").unwrap();
        let plain_copy = tmp.path().join("catalog-copy.db");
        copy_database(&plain, &plain_copy).unwrap();
        assert!(is_plain(&plain_copy));
        let e = copy_database(&plain, &plain_copy).unwrap_err().to_string();
        assert!(e.contains("cannot be created"), "{e}");
        // a store not yet encrypted where a key applies (a backup before the daemon started) is copied as it is
        let waiting = data.join("shared.db");
        encrypt_under(&waiting, key(&tmp.path().join("k3.key"), &"ef".repeat(32)));
        std::fs::copy(&plain, &waiting).unwrap();
        let waiting_copy = tmp.path().join("backup").join("shared.db");
        copy_database(&waiting, &waiting_copy).unwrap();
        assert!(is_plain(&waiting) && is_plain(&waiting_copy));
    }

    /// Openers racing to convert one plain store (threads here, processes in
    /// service: the lock is a file's) convert it once, and no write is lost
    /// to a copy another one replaced.
    #[test]
    fn openers_racing_to_convert_a_store_convert_it_once_and_lose_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("exchange");
        crate::create_private_dir(&data).unwrap();
        let store = data.join("exchange.db");
        {
            let c = crate::open_sqlite(&store, "CREATE TABLE t (x INTEGER)").unwrap();
            let tx = c.unchecked_transaction().unwrap();
            for x in 0..20_000 {
                tx.execute("INSERT INTO t VALUES (?1)", [x]).unwrap();
            }
            tx.commit().unwrap();
        }
        encrypt_under(&data, key(&tmp.path().join("k.key"), &"12".repeat(32)));
        // a reader does not convert, and says so
        let e = crate::open_read_only(&store).unwrap_err().to_string();
        assert!(e.contains("not encrypted yet") && e.contains("gdx-hub run"), "{e}");
        std::thread::scope(|s| {
            for n in 0..4 {
                let store = &store;
                s.spawn(move || {
                    let c = crate::open_sqlite(store, "CREATE TABLE IF NOT EXISTS t (x INTEGER)").unwrap();
                    c.execute("INSERT INTO t VALUES (?1)", [-1 - n]).unwrap();
                });
            }
        });
        let c = crate::open_read_only(&store).unwrap();
        assert_eq!(c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap(), 20_004);
        assert!(!is_plain(&store));
        let left: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
        let half_made = |f: &std::ffi::OsString| {
            f.to_string_lossy().contains("encrypting-") && !f.to_string_lossy().ends_with("-lock")
        };
        assert!(!left.iter().any(half_made), "{left:?}");
    }

    #[test]
    fn a_bad_key_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("k.key");
        crate::write_new(&p, b"not hex", true).unwrap();
        let e = AtRestKey::load(&p).unwrap_err().to_string();
        assert!(e.contains("does not hold an at-rest key") && e.contains("openssl rand -hex 32"), "{e}");
    }
}
