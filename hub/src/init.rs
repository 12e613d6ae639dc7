//! `gdx-hub init`: creating a root (province) hub, or a child (prefecture)
//! hub that joins its parent with a token (`--join`).
//!
//! Creates, in the data directory: the CA key and certificate, the hub's own
//! key and certificate (signed by the CA), an empty `hub.db`, and `hub.toml`
//! last. Every file is created with `create_new`, so nothing that exists is
//! ever overwritten; `hub.toml` is the commit marker, and an init killed
//! half-way is reported as incomplete rather than taken for a hub.

use std::net::SocketAddr;
use std::path::Path;

use gdx_certs::Ca;
use gdx_certs::pki::{self, der_to_pem};
use gdx_common::{DivisionCode, Role};
use gdx_files::{sync_dir, write_new};

use crate::config::HubConfig;
use crate::store::HubPaths;
use crate::store::Store;
use crate::util::now;

/// Validity of the hub's own certificate, in days.
pub const HUB_CERT_DAYS: i64 = 5 * 365;

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
        "{dir} holds an unfinished hub ({file} exists but hub.toml does not); nothing was changed. Move the directory aside and run init again (for --join, with a new token: the old one was spent)"
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
    /// Joining the parent failed (token, network, refusal, answer).
    #[error("{0}")]
    Join(String),
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
    let (listen, advertise) = addresses(&opts.listen, &opts.http, opts.advertise.as_deref())?;
    gdx_files::create_private_dir(dir)
        .map_err(|source| InitError::Write { path: dir.display().to_string(), source })?;

    let now = now();
    let ca = Ca::create_root(opts.division, opts.name.trim(), now)?;
    let hub_key = pki::new_key()?;
    let hub_id = gdx_common::NodeId::hub(opts.division);
    let hub_cert =
        ca.issue_for_key(&hub_key, &hub_id, Role::Hub, now - pki::BACKDATE_SECS, now + HUB_CERT_DAYS * 86_400)?;
    let config = HubConfig {
        division: opts.division,
        name: opts.name.trim().to_owned(),
        listen: listen.to_string(),
        advertise,
        http: opts.http.clone(),
        cert_days: gdx_certs::pki::NODE_VALIDITY_DAYS,
        parent: None,
        parent_addr: None,
        lookups_per_minute: crate::config::DEFAULT_LOOKUPS_PER_MINUTE,
        at_rest_key: None,
        metrics: None,
        congestion: None,
        store: None,
    };

    let write = |path: std::path::PathBuf, data: &[u8], private: bool| {
        write_new(&path, data, private).map_err(|source| InitError::Write { path: path.display().to_string(), source })
    };
    write(paths.ca_key(), ca.key_pem().as_bytes(), true)?;
    write(paths.ca_cert(), ca.cert_pem().as_bytes(), false)?;
    write(paths.hub_key(), hub_key.serialize_pem().as_bytes(), true)?;
    let chain = der_to_pem(&hub_cert, "CERTIFICATE") + &ca.cert_pem();
    write(paths.hub_cert(), chain.as_bytes(), false)?;
    Store::open(&paths)?;
    crate::store::format::mark_current(dir)
        .map_err(|source| InitError::Write { path: dir.join("FORMAT").display().to_string(), source })?;
    write(paths.config(), config.to_commented_toml().as_bytes(), false)?;
    sync_dir(dir).map_err(|source| InitError::Write { path: dir.display().to_string(), source })?;
    Ok(config)
}

/// At a province hub (no hub above it, `ca.key` in place): renews its own
/// certificate from its own CA once two thirds of its life have passed,
/// with a new key, switching the pair together (`gdx_files::pair`); the
/// renewal is an audit entry. Returns the new end, if renewed.
pub fn renew_own(paths: &HubPaths, config: &HubConfig, now: i64) -> anyhow::Result<Option<i64>> {
    if config.parent.is_some() || !paths.ca_key().exists() {
        return Ok(None);
    }
    let pem = std::fs::read_to_string(paths.hub_cert())?;
    let Some(current) = gdx_certs::pki::pem_blocks(&pem, "CERTIFICATE").into_iter().next() else { return Ok(None) };
    let Ok(pki::Identity::Node { not_before, not_after, .. }) = pki::Identity::of(&current) else {
        return Ok(None);
    };
    if !gdx_common::renewal::due(not_before, not_after, now) {
        return Ok(None);
    }
    let ca = Ca::from_pem(&std::fs::read_to_string(paths.ca_cert())?, &gdx_files::read_private(&paths.ca_key())?)?;
    issue_own(paths, config, &ca, now).map(Some)
}

/// Issues the province hub a new key and certificate under `ca`, switching
/// the pair together (`gdx_files::pair`), as an audit entry (`renewed`,
/// with the serial it replaces); returns the new end.
pub fn issue_own(paths: &HubPaths, config: &HubConfig, ca: &Ca, now: i64) -> anyhow::Result<i64> {
    let pem = std::fs::read_to_string(paths.hub_cert())?;
    let old =
        gdx_certs::pki::pem_blocks(&pem, "CERTIFICATE").into_iter().next().and_then(|c| match pki::Identity::of(&c) {
            Ok(pki::Identity::Node { serial, .. }) => Some(serial),
            _ => None,
        });
    let key = pki::new_key()?;
    let new_after = now + HUB_CERT_DAYS * 86_400;
    let cert = ca.issue_for_key(&key, &config.hub_id(), Role::Hub, now - pki::BACKDATE_SECS, new_after)?;
    let Ok(pki::Identity::Node { serial, .. }) = pki::Identity::of(&cert) else {
        anyhow::bail!("the renewed certificate cannot be read");
    };
    let chain = der_to_pem(&cert, "CERTIFICATE") + &ca.cert_pem();
    gdx_files::pair::switch(&paths.hub_key(), &key.serialize_pem(), &paths.hub_cert(), &chain)?;
    Store::open(paths)?.note(&gdx_common::audit::Event {
        kind: "renewed".into(),
        at: now,
        node: Some(config.hub_id().to_string()),
        detail: serde_json::json!({ "role": "hub", "serial": serial, "not_after": new_after, "replaces": old }),
        ..Default::default()
    })?;
    Ok(new_after)
}

/// What `init --join` needs to know.
pub struct JoinOptions {
    pub token: String,
    pub name: Option<String>,
    pub listen: String,
    pub advertise: Option<String>,
    pub http: String,
}

/// Creates a child (prefecture) hub in `dir`, enrolled under the parent
/// named in the token: its key and an intermediate CA key are made here,
/// the parent certifies both (the CA limited to this hub's division), and
/// the province root is pinned by the token's fingerprint.
pub async fn init_join(dir: &Path, opts: &JoinOptions, timeout: std::time::Duration) -> Result<HubConfig, InitError> {
    use gdx_common::wire::{EnrollRequest, Message};
    let paths = HubPaths::new(dir);
    check_empty(&paths)?;
    let token = gdx_common::token::EnrolmentToken::decode(&opts.token).map_err(|e| InitError::Join(e.to_string()))?;
    if token.role != Role::Hub {
        return Err(InitError::Join(format!(
            "this token enrols agent {}, not a hub; use it with `gdx-agent enroll`",
            token.node
        )));
    }
    let division = token.node.division();
    let (listen, advertise) = addresses(&opts.listen, &opts.http, opts.advertise.as_deref())?;
    let name = match &opts.name {
        Some(n) if !n.trim().is_empty() => n.trim().to_owned(),
        Some(_) => return Err(InitError::EmptyName),
        None => format!("{}政务数据共享交换平台", division.name()),
    };
    let hub_key = pki::new_key()?;
    let ca_key = pki::new_key()?;
    let req = EnrollRequest {
        token_id: token.id,
        secret: token.secret,
        csr_der: pki::make_csr(&hub_key, &token.node)?,
        ca_csr_der: Some(pki::make_ca_csr(&ca_key, &format!("GDX CA {division}"))?),
    };
    let answer =
        gdx_link::client::enrol_exchange(&token.hub_addr, &token.hub, token.ca_fingerprint, req, "hub", timeout)
            .await
            .map_err(InitError::Join)?;
    let enrolled = match answer {
        Message::Enrolled(e) => e,
        Message::Refused(r) => return Err(InitError::Join(r.message)),
        other => return Err(InitError::Join(format!("the parent hub answered {}", other.kind()))),
    };
    // Check the answer against the token before storing anything.
    let mismatch = |what: String| {
        InitError::Join(format!("the parent's answer does not match the token ({what}); nothing was stored"))
    };
    if enrolled.hub != token.hub {
        return Err(mismatch(format!("the parent hub calls itself {}, the token names {}", enrolled.hub, token.hub)));
    }
    if pki::fingerprint(&enrolled.root_der) != token.ca_fingerprint {
        return Err(mismatch("the root CA differs from the pinned fingerprint".into()));
    }
    let leaf = enrolled.chain_der.first().ok_or_else(|| mismatch("no certificate".into()))?;
    match gdx_certs::Identity::of(leaf) {
        Ok(gdx_certs::Identity::Node { node, role: Role::Hub, .. }) if node == token.node => {}
        other => return Err(mismatch(format!("the certificate names {other:?}"))),
    }
    let ca_der = enrolled.ca_der.as_deref().ok_or_else(|| mismatch("no CA certificate".into()))?;
    match gdx_certs::Identity::of(ca_der) {
        Ok(gdx_certs::Identity::Ca { division: d, .. }) if d == division => {}
        other => return Err(mismatch(format!("the CA certificate names {other:?}"))),
    }

    gdx_files::create_private_dir(dir)
        .map_err(|source| InitError::Write { path: dir.display().to_string(), source })?;
    let config = HubConfig {
        division,
        name,
        listen: listen.to_string(),
        advertise,
        http: opts.http.clone(),
        cert_days: gdx_certs::pki::NODE_VALIDITY_DAYS,
        parent: Some(enrolled.hub.clone()),
        parent_addr: Some(token.hub_addr.clone()),
        lookups_per_minute: crate::config::DEFAULT_LOOKUPS_PER_MINUTE,
        at_rest_key: None,
        metrics: None,
        congestion: None,
        store: None,
    };
    let write = |path: std::path::PathBuf, data: &[u8], private: bool| {
        write_new(&path, data, private).map_err(|source| InitError::Write { path: path.display().to_string(), source })
    };
    let root_pem = der_to_pem(&enrolled.root_der, "CERTIFICATE");
    write(paths.ca_key(), ca_key.serialize_pem().as_bytes(), true)?;
    write(paths.ca_cert(), der_to_pem(ca_der, "CERTIFICATE").as_bytes(), false)?;
    write(paths.root_cert(), root_pem.as_bytes(), false)?;
    write(paths.hub_key(), hub_key.serialize_pem().as_bytes(), true)?;
    // The hub's chain ends with the root, which enrolling agents pin.
    let chain: String = enrolled.chain_der.iter().map(|c| der_to_pem(c, "CERTIFICATE")).collect::<String>() + &root_pem;
    write(paths.hub_cert(), chain.as_bytes(), false)?;
    Store::open(&paths)?;
    crate::store::format::mark_current(dir)
        .map_err(|source| InitError::Write { path: dir.join("FORMAT").display().to_string(), source })?;
    write(paths.config(), config.to_commented_toml().as_bytes(), false)?;
    sync_dir(dir).map_err(|source| InitError::Write { path: dir.display().to_string(), source })?;
    Ok(config)
}

/// Checks `--listen` and `--http`, and works out the advertised address
/// (the listen address, or this host's name when listening on all addresses).
fn addresses(listen: &str, http: &str, advertise: Option<&str>) -> Result<(SocketAddr, String), InitError> {
    let listen_addr: SocketAddr =
        listen.parse().map_err(|_| InitError::Address { what: "--listen", value: listen.to_owned() })?;
    http.parse::<SocketAddr>().map_err(|_| InitError::Address { what: "--http", value: http.to_owned() })?;
    let advertise = match advertise {
        Some(a) => a.to_owned(),
        None if listen_addr.ip().is_unspecified() => format!("{}:{}", hostname(), listen_addr.port()),
        None => listen_addr.to_string(),
    };
    Ok((listen_addr, advertise))
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
