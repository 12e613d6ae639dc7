//! `gdx-hub backup` and `gdx-hub restore`: a consistent copy of every store
//! of a running hub, and a new data directory made from it.
//!
//! A backup is a directory (0700: it holds the hub's keys) with the hub's
//! files under their own names and `manifest.json` last, naming each file
//! with its SHA-256 and the audit log's size, root and key. Each database
//! is copied from one read transaction (SQLite's `VACUUM INTO`, or
//! SQLCipher's export under the same key for an encrypted store), the
//! audit log last: an event that left a store's outbox before that store
//! was copied is already in the copied log, and one still in a copied
//! outbox is taken again on the restored hub under the same source, once.
//!
//! A restore stages the files in the target directory, checks every digest
//! and verifies the audit log, then moves them into place, `hub.toml` last:
//! a restore killed at any point leaves a directory `gdx-hub run` refuses
//! (no hub.toml) and that `restore` begins again. Agents and child hubs then resend what
//! the hub accepted after the backup (the agent keeps what its hub
//! acknowledged for 14 days; a child hub keeps every changeset it
//! forwarded), and the vaults apply it once, by sequence number.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::store::HubPaths;

/// The manifest, written last.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub hub: String,
    pub made_at: i64,
    pub software: String,
    /// The audit log copied: entries, Merkle root, the key that signs its checkpoints.
    pub audit_size: u64,
    pub audit_key: String,
    pub files: Vec<FileDigest>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

const MANIFEST: &str = "manifest.json";
/// Where a restore stages the files inside the target directory.
const STAGING: &str = ".restoring";
/// Left by `restore` for the restored hub's first start, which makes its
/// exchange's change numbers leap ([`crate::exchange::RESTORE_GAP`]).
pub const RESTORED: &str = "restored-from-backup";
/// A manifest larger than this is not one `backup` wrote.
const MAX_MANIFEST: u64 = 64 << 20;

/// The files of a data directory to copy: (relative path, is a database),
/// databases ordered so that the audit log comes last.
fn files(dir: &Path) -> anyhow::Result<Vec<(PathBuf, bool)>> {
    let mut plain = Vec::new();
    let mut dbs = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let name = PathBuf::from(entry.file_name());
        let text = name.to_string_lossy().to_string();
        // through symbolic links (a vaults folder on another disk, say)
        let kind = std::fs::metadata(entry.path())?.file_type();
        if kind.is_dir() && (text == "vaults" || text == "bases") {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(entry.path())?
                .filter_map(|e| e.ok())
                .map(|e| name.join(e.file_name()))
                .filter(|p| p.extension().is_some_and(|x| x == "db"))
                .collect();
            inner.sort();
            dbs.extend(inner);
        } else if kind.is_file() {
            // SQLite's own side files, logs and half-written files are not the hub's state
            let skip = [".db-wal", ".db-shm", ".db-journal", ".partial", ".log"].iter().any(|s| text.ends_with(s))
                || text.contains(".encrypting-");
            if skip {
                continue;
            }
            if text.ends_with(".db") {
                if text != "audit.db" {
                    dbs.insert(0, name);
                }
            } else {
                plain.push(name);
            }
        }
    }
    plain.sort();
    let mut out: Vec<(PathBuf, bool)> = plain.into_iter().map(|p| (p, false)).collect();
    out.extend(dbs.into_iter().map(|p| (p, true)));
    if dir.join("audit.db").exists() {
        out.push((PathBuf::from("audit.db"), true));
    }
    Ok(out)
}

/// SHA-256 and size of `path`, read in pieces (a vault may be larger than memory);
/// with `copy_to`, the bytes read are written there too, so what is hashed is what was written.
fn digest_copy(path: &Path, copy_to: Option<&Path>) -> anyhow::Result<(String, u64)> {
    use std::io::{Read, Write};
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = match copy_to {
        Some(to) => Some(std::fs::File::create(to).with_context(|| format!("cannot write {}", to.display()))?),
        None => None,
    };
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        if let Some(o) = out.as_mut() {
            o.write_all(&buf[..n])?;
        }
        total += n as u64;
    }
    Ok((gdx_common::token::hex(ctx.finish().as_ref()), total))
}

fn digest(path: &Path) -> anyhow::Result<(String, u64)> {
    digest_copy(path, None)
}

/// `gdx-hub backup --out DIR`, while the hub runs or not.
pub fn backup(hub_dir: &Path, out: &Path, now: i64) -> anyhow::Result<Manifest> {
    let paths = HubPaths::new(hub_dir);
    let config = crate::config::HubConfig::load(&paths)?;
    if config.postgres().is_some() {
        anyhow::bail!(
            "this hub keeps its vaults in PostgreSQL, which `gdx-hub backup` does not copy: back the database up \
             with pg_dump or the data centre's base backups, and this data folder with a file backup taken at the same time"
        );
    }
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(crate::cli::Usage(format!("--out {}: name a new or empty directory", out.display())).into());
    }
    gdx_files::create_private_dir(out)?;
    gdx_files::create_private_dir(&out.join("vaults"))?;
    gdx_files::create_private_dir(&out.join("bases"))?;
    let mut manifest = Manifest {
        format: 1,
        hub: config.hub_id().to_string(),
        made_at: now,
        software: env!("CARGO_PKG_VERSION").to_owned(),
        audit_size: 0,
        audit_key: String::new(),
        files: Vec::new(),
    };
    // the at-rest key stays out of the backup, even kept in the data directory: a backup and its key are
    // kept apart (compared as the files they are: --data may be named another way than at_rest_key)
    let key = config.at_rest_key.as_ref().and_then(|k| hub_dir.join(k).canonicalize().ok());
    for (rel, database) in files(hub_dir)? {
        let (from, to) = (hub_dir.join(&rel), out.join(&rel));
        if key.is_some() && from.canonicalize().ok() == key {
            continue;
        }
        if database {
            gdx_files::at_rest::copy_database(&from, &to).with_context(|| format!("cannot copy {}", from.display()))?;
        } else {
            std::fs::copy(&from, &to).with_context(|| format!("cannot copy {}", from.display()))?;
        }
        if rel == Path::new("audit.db") {
            // what the copied log holds, to check after a restore; opened before its digest is taken
            let log = crate::audit::AuditLog::open(out, &manifest.hub)?;
            manifest.audit_size = log.size();
            manifest.audit_key = log.public_key();
            drop(log);
            for side in ["audit.db-wal", "audit.db-shm"] {
                let _ = std::fs::remove_file(out.join(side));
            }
        }
        restrict(&to)?;
        let (sha256, bytes) = digest(&to)?;
        manifest.files.push(FileDigest { path: rel.to_string_lossy().into_owned(), sha256, bytes });
    }
    let text = serde_json::to_vec_pretty(&manifest)?;
    gdx_files::write_new(&out.join(MANIFEST), &text, true)?;
    gdx_files::sync_dir(out)?;
    Ok(manifest)
}

fn restrict(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::File::open(path)?.sync_all()
}

/// `gdx-hub restore DIR`: a new data directory at `hub_dir` (absent or
/// empty) from the backup in `from`, once every digest and the audit log check.
pub fn restore(from: &Path, hub_dir: &Path) -> anyhow::Result<Manifest> {
    let manifest_path = from.join(MANIFEST);
    let size = std::fs::metadata(&manifest_path)
        .with_context(|| {
            format!("{} holds no {MANIFEST}; name a directory written by `gdx-hub backup`", from.display())
        })?
        .len();
    if size > MAX_MANIFEST {
        anyhow::bail!("{} is too large to be a backup's manifest", manifest_path.display());
    }
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(&manifest_path)?)
        .with_context(|| format!("{} is not a manifest written by `gdx-hub backup`", manifest_path.display()))?;
    if manifest.format != 1 {
        anyhow::bail!(
            "{} is of format {}, which this gdx-hub does not know; restore it with a newer gdx-hub",
            manifest_path.display(),
            manifest.format
        );
    }
    // staged inside the target: a restore cut short leaves STAGING behind, and is begun again
    let staging = hub_dir.join(STAGING);
    if staging.exists() && hub_dir.join("hub.toml").exists() {
        return Err(crate::cli::Usage(format!(
            "{} holds a hub (hub.toml) and an earlier restore's {STAGING}; remove {STAGING} if the hub is whole, or restore into an empty directory",
            hub_dir.display()
        ))
        .into());
    }
    if staging.exists() {
        for e in std::fs::read_dir(hub_dir)?.filter_map(|e| e.ok()) {
            let p = e.path();
            let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        }
    } else if hub_dir.exists() && std::fs::read_dir(hub_dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(crate::cli::Usage(format!(
            "{} is not empty; restore into a new or empty data directory (--data DIR)",
            hub_dir.display()
        ))
        .into());
    }
    gdx_files::create_private_dir(hub_dir)?;
    gdx_files::create_private_dir(&staging)?;
    let result = (|| -> anyhow::Result<()> {
        for f in &manifest.files {
            let rel = Path::new(&f.path);
            // only names a backup writes: no absolute paths, no way out of the directory
            if rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                anyhow::bail!("the manifest names {:?}, which is not a file of a hub's data directory", f.path);
            }
            let to = staging.join(rel);
            if let Some(parent) = to.parent() {
                gdx_files::create_private_dir(parent)?;
            }
            // hashed as it is written: what is checked is what was restored
            let (sha256, _) = digest_copy(&from.join(rel), Some(&to))?;
            if sha256 != f.sha256 {
                anyhow::bail!("{} does not match the manifest's digest: the backup is damaged or was altered", f.path);
            }
            restrict(&to)?;
        }
        // the audit log: every entry chained and every checkpoint signed by the key the backup recorded
        let log = crate::audit::AuditLog::open(&staging, &manifest.hub)?;
        if log.size() != manifest.audit_size || log.public_key() != manifest.audit_key {
            anyhow::bail!("the backup's audit log is not the one its manifest describes");
        }
        // a log with no checkpoint yet (a new hub) has nothing signed to verify; its digest matched
        if log.last_checkpoint()?.is_some() {
            let key = crate::audit::PublicKey::parse(&manifest.audit_key).map_err(anyhow::Error::msg)?;
            let pins = crate::audit::Pins { key: Some(key), parent_key: None };
            crate::audit::verify(&log.bundle()?, &pins)
                .map_err(|p| anyhow::anyhow!("the backup's audit log does not verify: {p}"))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    // the hub's exchange numbers leap at its first start (`crate::net`): marked before hub.toml goes in
    gdx_files::write_new(&staging.join(RESTORED), b"", true)?;
    // into place, hub.toml last: until it is there `gdx-hub run` refuses the directory
    let mut names: Vec<std::ffi::OsString> =
        std::fs::read_dir(&staging)?.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    names.sort_by_key(|n| n == "hub.toml");
    for name in names {
        std::fs::rename(staging.join(&name), hub_dir.join(&name)).with_context(|| {
            format!("cannot move the restored {} into {}", name.to_string_lossy(), hub_dir.display())
        })?;
        gdx_files::sync_dir(hub_dir)?;
    }
    std::fs::remove_dir(&staging)?;
    gdx_files::sync_dir(hub_dir)?;
    Ok(manifest)
}
