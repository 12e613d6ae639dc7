//! `gdx-hub pair`: the data directory of a second process of this hub, for
//! another machine. Both processes share the stores on PostgreSQL and hold
//! the same identity: the CA, the hub's certificate and key, the audit key
//! (one audit identity, whichever process signs), the HTTPS certificate and
//! the configuration files. Only `listen` and `http` are the new process's
//! own, and `advertise` lists both processes' addresses in both
//! directories, so that tokens made from now on let nodes dial either.
//!
//! Nothing is copied that holds records (the SQLite files, the vaults'
//! folder, logs): with PostgreSQL there are none that matter, and a copy
//! would only mislead.

use std::path::{Path, PathBuf};

use crate::config::{HubConfig, StoreConfig};
use crate::store::HubPaths;

/// What `pair` did: the new directory, the addresses both now advertise,
/// and the files outside the data directory the second machine needs at
/// the same paths.
pub struct Paired {
    pub dir: PathBuf,
    pub advertise: String,
    pub outside: Vec<PathBuf>,
}

/// Makes `to` (absent or empty) the data directory of a second process of
/// the hub in `paths`, listening on `listen` (UDP) and `http` (TCP), and
/// reached by nodes at `advertise` (by default the listen address).
pub fn pair(paths: &HubPaths, to: &Path, listen: &str, http: &str, advertise: Option<&str>) -> Result<Paired, String> {
    let config = HubConfig::load(paths).map_err(|e| e.to_string())?;
    let Some(StoreConfig::Postgres { url_file, ca_file }) = config.postgres().cloned() else {
        return Err(format!(
            "the stores of {} are SQLite files, which one process keeps; move them to PostgreSQL first \
             (docs/operator.md, \"Moving a hub to PostgreSQL\")",
            paths.dir.display()
        ));
    };
    if config.parent.is_some() {
        return Err("a prefecture hub renews its certificates and CA over its parent link, into one data directory; \
             only a hub without a parent runs as two processes"
            .into());
    }
    listen.parse::<std::net::SocketAddr>().map_err(|_| format!("--listen {listen:?} is not an IP:PORT address"))?;
    http.parse::<std::net::SocketAddr>().map_err(|_| format!("--http {http:?} is not an IP:PORT address"))?;
    let own = advertise.map_or_else(|| listen.to_owned(), str::to_owned);
    if own.contains(',') || own.trim().is_empty() {
        return Err(format!("--advertise {own:?} must be one host:port, the new process's own"));
    }
    if to.exists() && std::fs::read_dir(to).map_err(|e| format!("cannot read {}: {e}", to.display()))?.next().is_some()
    {
        return Err(format!("{} is not empty; give a new or empty folder for the second process", to.display()));
    }
    // the audit key is made now if the hub never ran: two processes must not each make their own
    crate::audit::AuditLog::open(&paths.dir, &config.hub_id().to_string())
        .map_err(|e| format!("cannot open the audit log to settle its key: {e}"))?;
    gdx_files::create_private_dir(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    // an empty folder that existed is made private too: it is about to hold the hub's keys
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| format!("cannot make {} private: {e}", to.display()))?;
    for entry in std::fs::read_dir(&paths.dir).map_err(|e| format!("cannot read {}: {e}", paths.dir.display()))? {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", paths.dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type().is_ok_and(|t| t.is_file()) || holds_records(&name) || name == "hub.toml" {
            continue;
        }
        copy_keeping_mode(&entry.path(), &to.join(&name))?;
    }
    // a URL or CA file kept in the data directory moves with it
    let moved = |p: &Path| match p.strip_prefix(&paths.dir) {
        Ok(rest) => to.join(rest),
        Err(_) => p.to_owned(),
    };
    let advertised: Vec<String> = gdx_link::client::addresses(&config.advertise)
        .into_iter()
        .map(str::to_owned)
        .chain(std::iter::once(own.clone()))
        .fold(Vec::new(), |mut all, a| {
            if !all.contains(&a) {
                all.push(a);
            }
            all
        });
    let advertise = advertised.join(",");
    let second = HubConfig {
        listen: listen.to_owned(),
        http: http.to_owned(),
        advertise: advertise.clone(),
        store: Some(StoreConfig::Postgres { url_file: moved(&url_file), ca_file: ca_file.as_deref().map(moved) }),
        ..config.clone()
    };
    write_config(&HubPaths::new(to).config(), &second)?;
    let outside: Vec<PathBuf> = [Some(url_file.clone()), ca_file.clone(), config.at_rest_key.clone()]
        .into_iter()
        .flatten()
        .filter(|p| p.is_absolute() && !p.starts_with(&paths.dir))
        .collect();
    let first = HubConfig { advertise: advertise.clone(), ..config };
    write_config(&paths.config(), &first)?;
    Ok(Paired { dir: to.to_owned(), advertise, outside })
}

/// True for files that hold records or logs, which stay with their process.
fn holds_records(name: &str) -> bool {
    [".db", ".db-wal", ".db-shm", ".db-journal", ".migrated", ".log"].iter().any(|end| name.ends_with(end))
}

/// Copies `from` to the new file `to`: 0644 when everyone may read `from`,
/// else 0600.
fn copy_keeping_mode(from: &Path, to: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let cannot = |e: std::io::Error| format!("cannot copy {} to {}: {e}", from.display(), to.display());
    let private = std::fs::metadata(from).map_err(cannot)?.permissions().mode() & 0o004 == 0;
    let bytes = std::fs::read(from).map_err(cannot)?;
    gdx_files::write_new(to, &bytes, private).map_err(cannot)
}

/// Writes hub.toml whole: a kill leaves the old file or the new one.
fn write_config(path: &Path, config: &HubConfig) -> Result<(), String> {
    gdx_files::replace(path, config.to_commented_toml().as_bytes(), false)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
