//! The hub's HTTPS API: read-only JSON under `/api/v1`, served by
//! `gdx-hub run` on the `http` address of hub.toml.
//!
//! - `GET /api/v1/catalog`: the catalogue, with the filters of
//!   `gdx-hub catalog list` as query parameters (`q`, `class`, `provider`,
//!   `division`, `sharing`, `cycle`, `overdue`, `withdrawn`, `as_of`).
//! - `GET /api/v1/catalog/{前段码}/{后段码}`: one entry.
//!
//! The server certificate (`https.crt`, `https.key` in the data directory)
//! is issued by the hub's CA on first start for the names in
//! [`web_names`]; an operator may replace both files with a certificate of
//! the province's own PKI. Errors are `{"error": "one sentence"}` with status
//! 400 (a bad parameter), 404 (no such entry or path) or 500 (the hub's
//! database failed). No client certificate is asked for, so the API serves
//! only the entries open to the public (是否向社会开放 = 是).
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections ([`MAX_PER_ADDRESS`]
//! from one address), a TLS handshake and each request's headers within
//! [`HEADER_TIMEOUT`], a connection kept at most [`CONNECTION_LIFETIME`].
//! Listings read through connections of their own to `catalog.db`, never
//! holding the hub's catalogue while they run.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gdx_certs::Ca;
use gdx_certs::pki::{self, der_to_pem, pem_blocks};
use rustls::pki_types::CertificateDer;
use tracing::{info, warn};

use crate::catalog::{Catalog, FilterArgs};
use crate::config::HubConfig;
use crate::store::HubPaths;
use crate::util::now;

/// Days of validity of the web certificate the hub issues itself.
const WEB_CERT_DAYS: i64 = 825;

/// HTTPS connections at once.
pub const MAX_CONNECTIONS: usize = 256;
/// HTTPS connections at once from one address.
pub const MAX_PER_ADDRESS: usize = 32;
/// Time for the TLS handshake, and for each request's headers to arrive.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest an HTTPS connection is kept, however busy.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// What the handlers share: read connections to `catalog.db`, kept for
/// reuse, the hub's vaults (which tell each entry's freshness, files or
/// PostgreSQL), and the portal's session check.
#[derive(Clone)]
struct Api {
    dir: std::path::PathBuf,
    readers: Arc<Mutex<Vec<Catalog>>>,
    vaults: Arc<crate::store::vault::Vaults>,
    signed_in: Option<crate::portal::SignedIn>,
}

/// The address an HTTPS connection came from.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

/// Binds the API's TCP address and returns the server future.
/// With `portal`, the portal's pages are served too, and a signed-in
/// department, operator or auditor sees every catalogue entry.
pub async fn bind(
    paths: &HubPaths,
    config: &HubConfig,
    ca: Option<&Ca>,
    portal: Option<crate::portal::Shared>,
) -> anyhow::Result<(SocketAddr, impl std::future::Future<Output = ()> + use<>)> {
    let addr: SocketAddr = config
        .http
        .parse()
        .with_context(|| format!("http = {:?} in hub.toml is not an IP:PORT address", config.http))?;
    let tls = tls_config(paths, config, ca)?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}/tcp for the HTTPS API; another program uses it, or change http in hub.toml")
    })?;
    let local = listener.local_addr().unwrap_or(addr);
    let vaults = match &portal {
        Some(shared) => shared.vaults.clone(),
        None => Arc::new(crate::store::vault::Vaults::new(&paths.dir)),
    };
    let (pages, signed_in) = match portal {
        Some(shared) => {
            let (r, s) = crate::portal::router(&paths.dir, config.hub_id(), config.name.clone(), shared)?;
            (Some(r), Some(s))
        }
        None => (None, None),
    };
    let router = router(Api { dir: paths.dir.clone(), readers: Arc::default(), vaults, signed_in }, pages);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    // every HTTPS peer is unproven: the caps hold for the connection's whole life
    let gate = Arc::new(crate::net::gate::Gate::with_limits(MAX_CONNECTIONS, MAX_CONNECTIONS, MAX_PER_ADDRESS));
    let serve = async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "HTTPS accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(place) = gate.enter(peer.ip()) else {
                warn!(%peer, "refused an HTTPS connection: too many at once, or from this address");
                continue; // dropping the socket closes it
            };
            // the portal records where a login came from: the connection's address, not what a header says
            let (acceptor, router) = (acceptor.clone(), router.clone().layer(axum::Extension(PeerAddr(peer))));
            tokio::spawn(async move {
                let _place = place;
                let tls = match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return info!(%peer, error = %e, "HTTPS handshake failed"),
                    Err(_) => return info!(%peer, "HTTPS handshake timed out"),
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let io = hyper_util::rt::TokioIo::new(tls);
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(io, service);
                match tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => info!(%peer, error = %e, "HTTPS connection ended with an error"),
                    Err(_) => info!(%peer, "HTTPS connection closed after its lifetime"),
                }
            });
        }
    };
    Ok((local, serve))
}

fn router(api: Api, pages: Option<Router>) -> Router {
    let api = Router::new()
        .route("/api/v1/catalog", get(list))
        .route("/api/v1/catalog/{front}/{back}", get(show))
        .with_state(api);
    pages
        .map_or(api.clone(), |p| api.merge(p))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such API path or page; see docs/api.md".into()) })
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Runs a catalogue query on the blocking pool, on a read connection of
/// its own (SQLite's WAL lets it read while the hub writes).
async fn with_catalog<T: Send + 'static>(
    api: &Api,
    f: impl FnOnce(&Catalog) -> Result<T, String> + Send + 'static,
) -> Result<T, Response> {
    let api = api.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let taken = api.readers.lock().ok().and_then(|mut r| r.pop());
        let reader = match taken {
            Some(c) => c,
            None => Catalog::with_vaults(&api.dir, api.vaults.clone())
                .map_err(|e| format!("the catalogue is unavailable ({e})"))?,
        };
        let out = f(&reader);
        if let Ok(mut r) = api.readers.lock()
            && r.len() < 8
        {
            r.push(reader);
        }
        out
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn list(
    State(api): State<Api>,
    headers: axum::http::HeaderMap,
    query: Result<Query<FilterArgs>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(args)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "the query string holds an unknown or malformed parameter; use q, class, provider, division, sharing, cycle, overdue, withdrawn or as_of".into(),
        );
    };
    let (filter, at) = match args.to_filter(now()) {
        Ok(x) => x,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let signed_in = api.signed_in.clone();
    let public = move |c: &Catalog| {
        let mut entries = c.list(&filter, at).map_err(|e| e.to_string())?;
        if !signed_in.is_some_and(|s| s(&headers)) {
            entries.retain(|l| l.entry.open_to_public);
        }
        Ok(entries)
    };
    match with_catalog(&api, public).await {
        Ok(entries) => Json(serde_json::json!({ "count": entries.len(), "entries": entries })).into_response(),
        Err(r) => r,
    }
}

async fn show(
    State(api): State<Api>,
    headers: axum::http::HeaderMap,
    UrlPath((front, back)): UrlPath<(String, String)>,
) -> Response {
    let code = format!("{front}/{back}");
    if let Err(e) = gdx_common::catalog::check_code(&code) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let c2 = code.clone();
    let signed_in = api.signed_in.clone();
    let found = move |c: &Catalog| {
        let entry = c.get(&c2, now()).map_err(|e| e.to_string())?;
        Ok(entry.filter(|e| e.entry.open_to_public || signed_in.is_some_and(|s| s(&headers))))
    };
    match with_catalog(&api, found).await {
        Ok(Some(entry)) => Json(entry).into_response(),
        // not open to the public: answered as if absent, so the API does not tell which codes exist
        Ok(_) => error(
            StatusCode::NOT_FOUND,
            format!(
                "no catalogue entry open to the public has the code {code}; entries not open to the public are shown to departments through their hub"
            ),
        ),
        Err(r) => r,
    }
}

/// Issues `https.crt` and `https.key` with the hub's CA.
pub fn issue_web_cert(paths: &HubPaths, config: &HubConfig, ca: &Ca) -> anyhow::Result<()> {
    let (cert_path, key_path) = (paths.https_cert(), paths.https_key());
    let key = pki::new_key()?;
    let t = now();
    let cert = ca.issue_web(&key, &web_names(config), t - gdx_certs::pki::BACKDATE_SECS, t + WEB_CERT_DAYS * 86_400)?;
    // The key first: a kill in between leaves a key without a
    // certificate, which the next start replaces with a fresh pair.
    let _ = std::fs::remove_file(&key_path);
    gdx_files::write_new(&key_path, key.serialize_pem().as_bytes(), true)?;
    let pem = der_to_pem(&cert, "CERTIFICATE") + &ca.cert_pem();
    gdx_files::write_new(&cert_path, pem.as_bytes(), false)?;
    gdx_files::sync_dir(&paths.dir)?;
    Ok(())
}

/// The names the self-issued web certificate covers: loopback, the hub's
/// TLS name, the advertised host and the HTTPS listen address.
pub fn web_names(config: &HubConfig) -> Vec<String> {
    let mut names: Vec<String> =
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into(), pki::HUB_SERVER_NAME.into()];
    let host = |hp: &str| hp.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']']).to_owned());
    for h in [host(&config.advertise), host(&config.http)].into_iter().flatten() {
        if !h.is_empty() && h != "0.0.0.0" && h != "::" && !names.contains(&h) {
            names.push(h);
        }
    }
    names
}

fn tls_config(paths: &HubPaths, config: &HubConfig, ca: Option<&Ca>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let (cert_path, key_path) = (paths.https_cert(), paths.https_key());
    if !cert_path.exists() {
        let Some(ca) = ca else {
            anyhow::bail!(
                "{} is missing and the CA key is offline; issue it with `gdx-hub issue --ca-key FILE`, or put a certificate of the province's PKI there",
                cert_path.display()
            );
        };
        issue_web_cert(paths, config, ca)?;
    }

    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .with_context(|| format!("cannot read {}; delete https.crt to issue a new one", p.display()))
    };
    let chain: Vec<CertificateDer<'static>> =
        pem_blocks(&read(&cert_path)?, "CERTIFICATE").into_iter().map(CertificateDer::from).collect();
    let key = pki::pem_to_der(&gdx_files::read_private(&key_path)?, "PRIVATE KEY")
        .with_context(|| format!("{} holds no PKCS#8 private key (BEGIN PRIVATE KEY)", key_path.display()))?;
    Ok(gdx_certs::tls::https_server_config(chain, key)?)
}
