//! The portal's pages, each with its JSON twin, one file per capability:
//! [`catalog`] (the catalogue and an entry, with the request form),
//! [`requests`] (requests and decisions), [`tree`] (the nodes, problems
//! first), [`audit`] (filters, the latest checkpoint, verification, the
//! bundle), [`charts`], [`bases`] (the base databases), [`enterprise`] (企业信息),
//! [`supervision`] (双告知 and 联合惩戒), [`items`] (the 政务服务事项库), [`evaluation`] (考核). Who sees what:
//! visitors the entries open to the public; a department the whole
//! catalogue and its own requests and grants; operators and auditors
//! everything of this hub's subtree, and only operators and departments
//! act. This file holds what the pages share: query parameters, selects,
//! the sign-in checks and the JSON errors.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gdx_common::NodeId;
use gdx_common::catalog::{CatalogClass, SharingType, UpdateCycle};
use gdx_common::wire::{Decision, RequestForm, Verdict};

use super::charts::{Bar, hbars};
use super::html::{badge, csrf_field, date, esc, notice, table, time, url};
use super::{Form, Lang, Portal, Viewer, blocking, checked_form, error_page, page_response, redirect, refused_page};
use crate::catalog::{FilterArgs, Listed};
use crate::store::{HubPaths, Role, Store};
use crate::util::now;

mod audit;
mod bases;
mod catalog;
mod charts;
mod enterprise;
mod evaluation;
mod items;
mod requests;
mod supervision;
mod tree;

pub use audit::{audit_json, audit_page, bundle, verify};
pub use bases::{base_conflicts_json, base_record_json, bases_json, bases_page};
pub use catalog::{catalog_page, entry_page};
pub use charts::{charts_json, charts_page};
pub use enterprise::{enterprise_json, enterprise_page};
pub use evaluation::{evaluation_json, evaluation_page};
pub use items::{consistency_json, consistency_page, consistency_xlsx, items_json, items_page};
pub use requests::{decide, file_request, requests_json, requests_page};
pub use supervision::{act_on_notice, check, feedback, supervision_json, supervision_page};
pub use tree::{tree_json, tree_page};

/// The query string's pairs, empty values dropped.
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn select(name: &str, label: &str, options: &[&str], chosen: Option<&str>, any: &str) -> String {
    let mut out = format!("<label>{}<select name=\"{name}\"><option value=\"\">{}</option>", esc(label), esc(any));
    for o in options {
        let sel = if Some(*o) == chosen { " selected" } else { "" };
        out.push_str(&format!("<option{sel}>{}</option>", esc(o)));
    }
    out.push_str("</select></label>");
    out
}

fn need_session(v: &Viewer) -> Option<Response> {
    v.session.is_none().then(|| {
        error_page(
            StatusCode::UNAUTHORIZED,
            v,
            v.lang.t(
                "请先登录：部门在前置机上运行 gdx-agent login，运维和审计人员在平台上运行 gdx-hub login。",
                "Sign in first: departments with `gdx-agent login` on their agent, the centre with `gdx-hub login`.",
            ),
        )
    })
}

fn need_staff(v: &Viewer) -> Option<Response> {
    need_session(v).or_else(|| {
        (!v.is_staff()).then(|| {
            error_page(
                StatusCode::FORBIDDEN,
                v,
                v.lang.t("此页面仅供平台运维和审计人员使用。", "This page is for the centre's operators and auditors."),
            )
        })
    })
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// The JSON refusal of a viewer who is not an operator or auditor.
fn staff_only(v: &Viewer, what: &str) -> Option<Response> {
    (!v.is_staff()).then(|| {
        let why = format!("{what} is for the centre's operators and auditors; sign in with `gdx-hub login`");
        json_error(StatusCode::FORBIDDEN, &why)
    })
}

/// A JSON twin for operators and auditors only: `what`, made by `f`.
async fn staff_json<T: serde::Serialize + 'static>(
    p: Arc<Portal>,
    headers: HeaderMap,
    what: &'static str,
    f: fn(&Portal) -> Result<T, String>,
) -> Response {
    blocking(p, headers, move |p, v| {
        if let Some(r) = staff_only(&v, what) {
            return r;
        }
        match f(p) {
            Ok(x) => Json(x).into_response(),
            Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    })
    .await
}
