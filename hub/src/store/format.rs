//! The data directory's format: `FORMAT` in it names the format its stores
//! are in and the gdx-hub that wrote it. A gdx-hub refuses a directory of
//! a newer format (a downgrade) with a sentence saying what to install; a
//! directory of an older format is backed up whole (`crate::backup`, into
//! `backups/` beside the stores) before `gdx-hub run` migrates it forward.
//!
//! Format 1 is a directory from before this file existed; format 2 adds
//! what child hubs observed (`remote_days`), the audit log's index by kind,
//! and the encryption-aware backup; the stores create their new tables
//! when they open, so the migration is the backup and the new `FORMAT`.
//! Format 3 keeps the lookup copy compact (`replica_grants`,
//! `replica_rows`): the exchange store converts the old `replica` table
//! when it opens a directory marked 3, that is once `gdx-hub run` has made
//! the backup, never from another command on a directory still marked 2.

use std::path::{Path, PathBuf};

/// The format this gdx-hub writes.
pub const CURRENT: u32 = 3;

/// True when the directory `dir` is marked [`CURRENT`] (its stores may be
/// converted: the backup before the migration is made).
pub fn is_current(dir: &Path) -> bool {
    matches!(of(dir), Ok(Some((CURRENT, _))))
}

const FILE: &str = "FORMAT";

/// The format of the data directory `dir`: its `FORMAT`, or 1 for a
/// directory made before it existed, or None for one with no hub yet.
pub fn of(dir: &Path) -> Result<Option<(u32, String)>, String> {
    match std::fs::read_to_string(dir.join(FILE)) {
        Ok(text) => {
            let mut words = text.split_whitespace();
            let format = words.next().and_then(|w| w.parse().ok()).ok_or_else(|| {
                format!(
                    "{} is damaged; it holds the data format number and the gdx-hub that wrote it",
                    dir.join(FILE).display()
                )
            })?;
            Ok(Some((format, words.next().unwrap_or("an unknown version").to_owned())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(dir.join("hub.toml").exists().then(|| (1, "an earlier gdx-hub".to_owned())))
        }
        Err(e) => Err(format!("cannot read {}: {e}", dir.join(FILE).display())),
    }
}

/// Refuses a directory written by a newer gdx-hub (a downgrade).
pub fn check(dir: &Path) -> Result<(), String> {
    match of(dir)? {
        Some((format, by)) if format > CURRENT => Err(format!(
            "{} was written by gdx-hub {by} (data format {format}), newer than this gdx-hub {} (format {CURRENT}); downgrades are refused: install gdx-hub {by} or later, or restore a backup made by this version",
            dir.display(),
            env!("CARGO_PKG_VERSION")
        )),
        _ => Ok(()),
    }
}

/// Brings the directory to [`CURRENT`] at `gdx-hub run`: an older one is
/// backed up first (the path is returned), then marked current.
pub fn migrate(dir: &Path, now: i64) -> anyhow::Result<Option<PathBuf>> {
    check(dir).map_err(anyhow::Error::msg)?;
    let backup = match of(dir).map_err(anyhow::Error::msg)? {
        Some((format, _)) if format < CURRENT => {
            let to = dir.join("backups").join(format!("before-format-{CURRENT}-{now}"));
            gdx_files::create_private_dir(&dir.join("backups"))?;
            crate::backup::backup(dir, &to, now)?;
            Some(to)
        }
        Some((CURRENT, _)) => return Ok(None),
        _ => None,
    };
    mark_current(dir)?;
    Ok(backup)
}

/// Writes `FORMAT` for this gdx-hub (a new directory, or one migrated).
pub fn mark_current(dir: &Path) -> std::io::Result<()> {
    let text = format!("{CURRENT} {}\n", env!("CARGO_PKG_VERSION"));
    let tmp = dir.join("FORMAT.partial");
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    gdx_files::sync_dir(dir)
}
