//! The data sharing portal (政务数据共享门户), served by every hub on its
//! HTTPS port beside the API: the catalogue, requests and decisions, the
//! tree of nodes, the audit log and charts, in Chinese with English a click
//! away. Pages are rendered on the server and work without JavaScript;
//! every page has a JSON twin under `/api/v1/` (docs/api.md).
//!
//! Who is who, without passwords: a department's data officer opens the
//! one-time link `gdx-agent login` printed (its claim signed with the
//! agent's key, checked here against the certificate this hub issued it,
//! [`gdx_common::login`]); the centre's operator and auditors open the link
//! `gdx-hub login [--auditor]` printed (a secret this hub recorded). A link
//! works once, for ten minutes, and starts a session: a random cookie
//! (Secure, HttpOnly, SameSite=Strict, eight hours) known to `hub.db` only
//! by its SHA-256. Every form carries the session's CSRF token and is
//! refused without it. A department whose certificates are all revoked
//! loses its sessions at its next request. Every login, and every action
//! taken here, is an audit entry.
//!
//! - [`html`]: escaping, the layout, the two languages.
//! - [`pages`]: each page and its JSON twin.
//! - [`charts`]: bar charts drawn as SVG on the server.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use gdx_common::NodeId;
use gdx_common::login::{Token, decode};

use crate::audit::AuditLog;
use crate::catalog::Catalog;
use crate::exchange::Exchange;
use crate::store::{HubPaths, LoginRefused, Role, Session, Store};
use crate::util::now;

mod charts;
pub mod html;
mod pages;

/// How long a session lasts, in seconds.
pub const SESSION_LIFETIME: i64 = 8 * 3600;
/// Largest form accepted, in bytes.
const MAX_FORM: usize = 64 * 1024;
/// The session cookie's name.
const COOKIE: &str = "gdx_session";

/// What the running hub shares with the portal: the stores its other
/// parts write, so a decision here and one over QUIC are the same act.
#[derive(Clone)]
pub struct Shared {
    pub catalog: Arc<Mutex<Catalog>>,
    pub exchange: Arc<Mutex<Exchange>>,
    pub audit: Arc<Mutex<AuditLog>>,
    /// The hub's vaults (files, or PostgreSQL).
    pub vaults: Arc<crate::store::vault::Vaults>,
}

/// The portal's state.
struct Portal {
    dir: PathBuf,
    hub: NodeId,
    hub_name: String,
    store: Mutex<Store>,
    shared: Shared,
}

/// The page's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// Who is looking, in which language.
pub struct Viewer {
    pub lang: Lang,
    pub session: Option<Session>,
    session_id: Option<String>,
    pub hub: NodeId,
    pub hub_name: String,
}

impl Viewer {
    /// An operator or an auditor.
    pub fn is_staff(&self) -> bool {
        matches!(self.session.as_ref().map(|s| s.role), Some(Role::Operator | Role::Auditor))
    }

    pub fn role(&self) -> Option<Role> {
        self.session.as_ref().map(|s| s.role)
    }

    /// The department's node, for a department's session.
    pub fn department(&self) -> Option<&NodeId> {
        self.session.as_ref().filter(|s| s.role == Role::Department).and_then(|s| s.node.as_ref())
    }
}

/// Tells whether a request carries a live session (for the catalogue's
/// JSON, which shows visitors only the entries open to the public).
pub type SignedIn = Arc<dyn Fn(&HeaderMap) -> bool + Send + Sync>;

/// The portal's routes, merged into the HTTPS server's router, and its
/// session check for the API.
pub fn router(
    dir: &std::path::Path,
    hub: NodeId,
    hub_name: String,
    shared: Shared,
) -> anyhow::Result<(Router, SignedIn)> {
    let store = Store::open(&HubPaths::new(dir))?;
    let portal = Arc::new(Portal { dir: dir.to_owned(), hub, hub_name, store: Mutex::new(store), shared });
    let checker = portal.clone();
    let signed_in: SignedIn = Arc::new(move |headers: &HeaderMap| viewer(&checker, headers).session.is_some());
    let router = Router::new()
        .route("/", get(|| async { redirect("/catalog") }))
        .route("/assets/portal.css", get(css))
        .route("/login", get(login))
        .route("/logout", post(logout))
        .route("/lang", get(lang))
        .route("/catalog", get(pages::catalog_page))
        .route("/catalog/{front}/{back}", get(pages::entry_page))
        .route("/requests", get(pages::requests_page).post(pages::file_request))
        .route("/requests/{id}/decide", post(pages::decide))
        .route("/tree", get(pages::tree_page))
        .route("/audit", get(pages::audit_page))
        .route("/audit/verify", post(pages::verify))
        .route("/audit/bundle", get(pages::bundle))
        .route("/charts", get(pages::charts_page))
        .route("/bases", get(pages::bases_page))
        .route("/enterprise", get(pages::enterprise_page))
        .route("/api/v1/enterprises/{code}", get(pages::enterprise_json))
        .route("/evaluation", get(pages::evaluation_page))
        .route("/api/v1/evaluation", get(pages::evaluation_json))
        .route("/items", get(pages::items_page))
        .route("/items/consistency", get(pages::consistency_page))
        .route("/items/consistency.xlsx", get(pages::consistency_xlsx))
        .route("/api/v1/items", get(pages::items_json))
        .route("/api/v1/items/consistency", get(pages::consistency_json))
        .route("/supervision", get(pages::supervision_page))
        .route("/supervision/notices/{id}", post(pages::act_on_notice))
        .route("/supervision/check", post(pages::check))
        .route("/supervision/checks/{id}/feedback", post(pages::feedback))
        .route("/api/v1/notices", get(|s, h| pages::supervision_json(s, h, "notices")))
        .route("/api/v1/checks", get(|s, h| pages::supervision_json(s, h, "checks")))
        .route("/api/v1/supervision", get(|s, h| pages::supervision_json(s, h, "counts")))
        .route("/api/v1/bases", get(pages::bases_json))
        .route("/api/v1/bases/{name}/conflicts", get(pages::base_conflicts_json))
        .route("/api/v1/bases/{name}/{key}", get(pages::base_record_json))
        .route("/api/v1/requests", get(pages::requests_json))
        .route("/api/v1/tree", get(pages::tree_json))
        .route("/api/v1/audit", get(pages::audit_json))
        .route("/api/v1/charts", get(pages::charts_json))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM))
        .with_state(portal);
    Ok((router, signed_in))
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], html::CSS)
        .into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// The cookies of a request.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The viewer of a request (runs on the blocking pool: it reads `hub.db`).
fn viewer(p: &Portal, headers: &HeaderMap) -> Viewer {
    let lang = match cookie(headers, "lang") {
        Some("en") => Lang::En,
        _ => Lang::Zh,
    };
    // a session id is 64 hex digits; anything else is not looked up
    let session_id = cookie(headers, COOKIE).filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    let session = session_id.and_then(|id| p.store.lock().ok().and_then(|s| s.session(id, now()).ok().flatten()));
    Viewer {
        lang,
        session_id: session.as_ref().and(session_id.map(str::to_owned)),
        session,
        hub: p.hub.clone(),
        hub_name: p.hub_name.clone(),
    }
}

/// A page with a status: its HTML in the layout.
fn page_response(status: StatusCode, v: &Viewer, here: &str, title: &str, body: &str) -> Response {
    (status, Html(html::page(v, here, title, body))).into_response()
}

/// A refusal or failure as a page: one sentence saying what to do.
fn error_page(status: StatusCode, v: &Viewer, message: &str) -> Response {
    let title = v.lang.t("无法完成", "Cannot do that");
    page_response(status, v, "", title, &html::notice("error", message))
}

/// The exchange's refusal as a page: 403 when the department may not have
/// what it asked for, 400 when the question was wrong.
fn refused_page(v: &Viewer, why: &crate::exchange::Refusal) -> Response {
    let status = match why.code() {
        gdx_common::wire::RefusalCode::NotAuthorized => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    error_page(status, v, &why.to_string())
}

/// Runs `f` with the viewer on the blocking pool (the stores are SQLite).
async fn blocking(
    p: Arc<Portal>,
    headers: HeaderMap,
    f: impl FnOnce(&Portal, Viewer) -> Response + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || {
        let v = viewer(&p, &headers);
        f(&p, v)
    })
    .await
    {
        Ok(r) => r,
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the portal failed; see the hub's log").into_response(),
    }
}

/// A posted form's fields, in order (a name may repeat).
pub struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Form(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
}

/// The form of a POST, if its session's CSRF token is in it; else the refusal.
fn checked_form(v: &Viewer, body: &[u8]) -> Result<Form, Box<Response>> {
    let form = Form::parse(body);
    let Some(session) = &v.session else {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            v,
            v.lang.t(
                "未登录或会话已过期；请用 gdx-agent login 或 gdx-hub login 打印的链接重新登录。",
                "You are not signed in, or your session ended; open a new link from `gdx-agent login` or `gdx-hub login`.",
            ),
        )));
    };
    let sent = form.get("csrf").unwrap_or_default();
    // compared in time that does not depend on where they differ
    let same = sent.len() == session.csrf.len()
        && sent.bytes().zip(session.csrf.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            v,
            v.lang.t(
                "表单缺少有效的安全令牌，已拒绝；请从门户页面重新提交。",
                "The form did not carry this session's security token and was refused; submit it again from the portal's page.",
            ),
        )));
    }
    Ok(form)
}

/// A query string's value of `name`.
fn query_value(raw: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// `GET /login?t=TOKEN`: spends a one-time link and starts a session.
async fn login(
    State(p): State<Arc<Portal>>,
    peer: Option<axum::Extension<crate::api::PeerAddr>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let token = query_value(raw.as_deref(), "t").unwrap_or_default();
    let from = peer.map(|axum::Extension(a)| a.0.ip().to_string()).unwrap_or_default();
    blocking(p, headers, move |p, v| match start_session(p, &token, &from) {
        Ok(Ok((session_id, session))) => {
            let to = match session.role {
                Role::Department => "/requests",
                Role::Operator => "/tree",
                Role::Auditor => "/audit",
            };
            let cookie =
                format!("{COOKIE}={session_id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={SESSION_LIFETIME}");
            (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned()), (header::SET_COOKIE, cookie)]).into_response()
        }
        Ok(Err(why)) => error_page(StatusCode::FORBIDDEN, &v, &why.to_string()),
        Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &format!("the hub's database failed: {e}")),
    })
    .await
}

/// Checks a login token and starts its session: (cookie value, session),
/// or why not, in one sentence.
fn start_session(p: &Portal, token: &str, from: &str) -> Result<Result<(String, Session), LoginRefused>, String> {
    let now = now();
    let token = match decode(token) {
        Ok(t) => t,
        Err(e) => return Ok(Err(LoginRefused::Malformed(e))),
    };
    let store = p.store.lock().map_err(|_| "the session store is unavailable".to_owned())?;
    let (nonce, signed) = match &token {
        Token::Hub { nonce } => (nonce.clone(), None),
        Token::Department { claim, signed, signature } => {
            if let Err(e) = gdx_common::login::check(claim, &p.hub, now) {
                return Ok(Err(LoginRefused::Malformed(e)));
            }
            let Some(cert) = store.issued_cert(&claim.node).map_err(|e| e.to_string())? else {
                return Ok(Err(LoginRefused::NotHere { node: claim.node.clone(), hub: p.hub.clone() }));
            };
            if gdx_certs::pki::verify_signature(&cert, signed, signature).is_err() {
                return Ok(Err(LoginRefused::BadSignature { node: claim.node.clone() }));
            }
            let live = match gdx_certs::Identity::of(&cert) {
                Ok(gdx_certs::Identity::Node { serial, node, role: gdx_common::Role::Agent, .. })
                    if node == claim.node =>
                {
                    store.serial_live(&serial, now).map_err(|e| e.to_string())?
                }
                _ => false,
            };
            if !live {
                return Ok(Err(LoginRefused::NotLive { node: claim.node.clone() }));
            }
            (claim.nonce.clone(), Some((claim.node.clone(), claim.expires)))
        }
    };
    let session_id = gdx_common::token::hex(&gdx_certs::pki::random_bytes::<32>());
    let csrf = gdx_common::token::hex(&gdx_certs::pki::random_bytes::<16>());
    let started = store
        .start_session(&nonce, signed.as_ref().map(|(n, e)| (n, *e)), &session_id, &csrf, SESSION_LIFETIME, from, now)
        .map_err(|e| e.to_string())?;
    Ok(started.map(|s| (session_id, s)))
}

/// `POST /logout`: ends the session (with the form's CSRF token).
async fn logout(State(p): State<Arc<Portal>>, headers: HeaderMap, body: Bytes) -> Response {
    blocking(p, headers, move |p, v| {
        if let Err(r) = checked_form(&v, &body) {
            return *r;
        }
        if let (Some(id), Ok(store)) = (&v.session_id, p.store.lock()) {
            let _ = store.end_session(id);
            let _ = store.note_portal(&v, "logout", serde_json::json!({}), now());
        }
        let clear = format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
        (StatusCode::SEE_OTHER, [(header::LOCATION, "/catalog".to_owned()), (header::SET_COOKIE, clear)])
            .into_response()
    })
    .await
}

/// `GET /lang?to=en|zh`: remembers the language, back to where the visitor was.
async fn lang(headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let to = match query_value(raw.as_deref(), "to").as_deref() {
        Some("en") => "en",
        _ => "zh",
    };
    // back to the page the visitor came from, if it is one of ours
    let back = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
        // only a path of this site: not `//host`, nor `/\host`, which browsers read as another site
        .filter(|path| {
            path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') && !path.starts_with("/login")
        })
        .unwrap_or_else(|| "/catalog".into());
    let cookie = format!("lang={to}; Path=/; Secure; SameSite=Lax; Max-Age=31536000");
    (StatusCode::SEE_OTHER, [(header::LOCATION, back), (header::SET_COOKIE, cookie)]).into_response()
}

impl Store {
    /// Records an action taken through the portal in the audit outbox.
    fn note_portal(&self, v: &Viewer, action: &str, detail: serde_json::Value, now: i64) -> Result<(), String> {
        let mut detail = detail;
        if let Some(obj) = detail.as_object_mut() {
            obj.insert("action".into(), action.into());
            obj.insert("role".into(), v.role().map(Role::as_str).unwrap_or("visitor").into());
        }
        self.note(&gdx_common::audit::Event {
            kind: "portal".into(),
            at: now,
            node: v.session.as_ref().and_then(|s| s.node.as_ref()).map(|n| n.to_string()),
            detail,
            ..Default::default()
        })
        .map_err(|e| e.to_string())
    }
}
