//! `gdx-hub init`: creating a root (province) hub.
//!
//! Creates, in the data directory: the CA key and certificate, the hub's own
//! key and certificate (signed by the CA), an empty `hub.db`, and `hub.toml`
//! last. Every file is created with `create_new`, so nothing that exists is
//! ever overwritten; `hub.toml` is the commit marker, and an init killed
//! half-way is reported as incomplete rather than taken for a hub.

use std::net::SocketAddr;
use std::path::Path;

use gdx_certs::Ca;
use gdx_certs::files::{sync_dir, write_new};
use gdx_certs::pki::{self, der_to_pem};
use gdx_common::{DivisionCode, Role};

use crate::config::{HubConfig, HubPaths};
use crate::store::Store;
use crate::util::now;

/// Validity of the hub's own certificate, in days.
const HUB_CERT_DAYS: i64 = 5 * 365;

/// What `init` needs to know.
pub struct InitOptions {
    pub division: DivisionCode,
    pub name: String,
    pub listen: String,
    pub advertise: Option<String>,
    pub http: String,
}

/// Failures of `init`.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The directory already holds a hub.
    #[error("{0} already holds a GDX hub (hub.toml exists); nothing was changed. Use another --data directory")]
    Exists(String),
    /// A previous init stopped half-way.
    #[error(
        "{dir} holds an unfinished hub ({file} exists but hub.toml does not); nothing was changed. Move the directory aside and run init again"
    )]
    Incomplete { dir: String, file: String },
    /// The division is not a current Qinghai division.
    #[error(
        "division {0} is not a current division code in the GB/T 2260 table; check the code (for example 630000 for 青海省)"
    )]
    UnknownDivision(String),
    /// The division is a county; hubs serve provinces and prefectures.
    #[error(
        "division {0} is a county; a hub serves a province (XX0000) or a prefecture (XXYY00), and county departments attach to their prefecture's hub"
    )]
    CountyHub(String),
    /// An address does not parse.
    #[error("{what} {value:?} is not an address; write it as IP:PORT, such as 0.0.0.0:7443")]
    Address { what: &'static str, value: String },
    /// The name is empty.
    #[error("the hub name is empty; pass --name, such as --name 青海省政务数据共享交换平台")]
    EmptyName,
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    /// Key or certificate generation failed.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// The database could not be created.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Creates a root hub in `dir`.
pub fn init_root(dir: &Path, opts: &InitOptions) -> Result<HubConfig, InitError> {
    let paths = HubPaths::new(dir);
    check_empty(&paths)?;
    if !opts.division.is_current() {
        return Err(InitError::UnknownDivision(opts.division.to_string()));
    }
    if opts.division.level() == gdx_common::DivisionLevel::County {
        return Err(InitError::CountyHub(opts.division.to_string()));
    }
    if opts.name.trim().is_empty() {
        return Err(InitError::EmptyName);
    }
    let listen: SocketAddr =
        opts.listen.parse().map_err(|_| InitError::Address { what: "--listen", value: opts.listen.clone() })?;
    opts.http.parse::<SocketAddr>().map_err(|_| InitError::Address { what: "--http", value: opts.http.clone() })?;
    let advertise = match &opts.advertise {
        Some(a) => a.clone(),
        None if listen.ip().is_unspecified() => format!("{}:{}", hostname(), listen.port()),
        None => listen.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|source| InitError::Write { path: dir.display().to_string(), source })?;

    let now = now();
    let ca = Ca::create_root(opts.division, opts.name.trim(), now)?;
    let hub_key = pki::new_key()?;
    let hub_id = gdx_common::NodeId::hub(opts.division);
    let hub_cert = ca.issue_for_key(&hub_key, &hub_id, Role::Hub, now - 300, now + HUB_CERT_DAYS * 86_400)?;
    let config = HubConfig {
        division: opts.division,
        name: opts.name.trim().to_owned(),
        listen: listen.to_string(),
        advertise,
        http: opts.http.clone(),
        cert_days: gdx_certs::pki::NODE_VALIDITY_DAYS,
    };

    let write = |path: std::path::PathBuf, data: &[u8], private: bool| {
        write_new(&path, data, private).map_err(|source| InitError::Write { path: path.display().to_string(), source })
    };
    write(paths.ca_key(), ca.key_pem().as_bytes(), true)?;
    write(paths.ca_cert(), ca.cert_pem().as_bytes(), false)?;
    write(paths.hub_key(), hub_key.serialize_pem().as_bytes(), true)?;
    let chain = der_to_pem(&hub_cert, "CERTIFICATE") + &ca.cert_pem();
    write(paths.hub_cert(), chain.as_bytes(), false)?;
    Store::open(&paths.db())?;
    write(paths.config(), config.to_commented_toml().as_bytes(), false)?;
    sync_dir(dir).map_err(|source| InitError::Write { path: dir.display().to_string(), source })?;
    Ok(config)
}

fn check_empty(paths: &HubPaths) -> Result<(), InitError> {
    if paths.config().exists() {
        return Err(InitError::Exists(paths.dir.display().to_string()));
    }
    for f in paths.init_files() {
        if f.exists() {
            return Err(InitError::Incomplete {
                dir: paths.dir.display().to_string(),
                file: f.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            });
        }
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
