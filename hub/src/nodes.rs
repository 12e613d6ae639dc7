//! `gdx-hub nodes`: every enrolled node with role, division, certificate
//! expiry, connection state and last contact, as a table or JSON.

use std::path::Path;

use gdx_common::NodeId;
use gdx_common::table::render;
use gdx_common::units::{format_date, format_time};

use crate::store::vault::{ResourceSummary, Vaults};
use crate::store::{NodeRow, Store, StoreError};

/// One line of the listing, as printed with `--json`.
#[derive(Debug, serde::Serialize)]
pub struct NodeStatus {
    #[serde(flatten)]
    pub row: NodeRow,
    /// `connected`, `offline`, `revoked` or `expired`.
    pub state: String,
    /// The node's resources in its vault at this hub.
    pub resources: Vec<ResourceSummary>,
    /// For a node below a child hub: that hub, which reported it.
    pub via: Option<String>,
    /// For a child hub: changesets it accepted that this hub has not yet
    /// acknowledged, as it last reported.
    pub backlog: Option<u64>,
    /// For an agent: what the last scan of each resource set aside, as it reported.
    pub quality: Vec<crate::store::Quality>,
}

/// Reads the listing: the nodes enrolled here, then those child hubs
/// reported (the whole tree below). A node counts as connected only while
/// `gdx-hub run` is alive (its heartbeat is fresh), and a node below a child
/// hub only while that hub is connected and its report is recent.
/// `vaults` adds each node's resources (row counts: not free on large vaults).
pub fn list(store: &Store, vaults: Option<&Vaults>, now: i64) -> Result<Vec<NodeStatus>, StoreError> {
    let running = store.hub_running(now)?;
    let mut out = local(store, vaults, now, running)?;
    for n in &mut out {
        if n.row.role == "hub" {
            n.backlog = store.meta(&format!("backlog {}", n.row.node))?.and_then(|v| v.parse().ok());
        }
    }
    let connected: Vec<String> = out.iter().filter(|n| n.state == "connected").map(|n| n.row.node.clone()).collect();
    for r in store.remote_nodes()? {
        let division = r.node.split('/').next().unwrap_or_default().to_owned();
        let state = if r.revoked_at.is_some() {
            "revoked".to_owned()
        } else if !connected.contains(&r.via) || now - r.reported_at > REPORT_STALE_SECS {
            format!("unknown ({} not connected)", r.via)
        } else {
            r.state.clone()
        };
        // base resources forwarded by the child hub are held here too
        let resources = resources_of(vaults, &r.node);
        out.push(NodeStatus {
            row: NodeRow {
                division_name: gdx_common::DivisionCode::parse(&division).map(|d| d.name()).unwrap_or_default(),
                division,
                node: r.node,
                role: r.role,
                enrolled_at: 0,
                cert_serial: r.serial,
                cert_not_after: r.not_after,
                revoked_at: r.revoked_at,
                connected: state == "connected",
                peer_addr: None,
                last_seen: r.last_seen,
            },
            state,
            resources,
            via: Some(r.via),
            backlog: None,
            // reported to the child hub the node attaches to (`gdx-hub nodes` there)
            quality: Vec::new(),
        });
    }
    Ok(out)
}

/// A child hub's report older than this no longer says who is connected.
const REPORT_STALE_SECS: i64 = 30;

fn resources_of(vaults: Option<&Vaults>, node: &str) -> Vec<ResourceSummary> {
    match (vaults, NodeId::parse(node)) {
        (Some(vaults), Ok(n)) => vaults.summaries(&n),
        _ => Vec::new(),
    }
}

fn local(store: &Store, vaults: Option<&Vaults>, now: i64, running: bool) -> Result<Vec<NodeStatus>, StoreError> {
    Ok(store
        .nodes()?
        .into_iter()
        .map(|mut row| {
            row.connected &= running;
            let state = if row.revoked_at.is_some() {
                "revoked"
            } else if row.cert_not_after.is_some_and(|t| t <= now) {
                "expired"
            } else if row.connected {
                "connected"
            } else {
                "offline"
            };
            let resources = resources_of(vaults, &row.node);
            let quality = store.quality_of(&row.node).unwrap_or_default();
            NodeStatus { row, state: state.to_owned(), resources, via: None, backlog: None, quality }
        })
        .collect())
}

/// At a child hub: one line on the link to the parent.
pub fn parent_line(config: &crate::HubConfig, store: &Store, now: i64) -> Result<Option<String>, StoreError> {
    let (Some(parent), Some(addr)) = (&config.parent, &config.parent_addr) else { return Ok(None) };
    let running = store.hub_running(now)?;
    let state = store.meta("parent_state")?;
    let since = store.meta("parent_since")?.and_then(|v| v.parse().ok()).map(format_time).unwrap_or_default();
    let link = match state.as_deref() {
        _ if !running => "not connected: gdx-hub run is not running".to_owned(),
        Some("connected") => format!("connected since {since}"),
        Some(other) => format!(
            "{other} since {since}: {}; accepted data waits in the vaults and is forwarded when the link returns",
            store.meta("parent_error")?.unwrap_or_default()
        ),
        None => "not connected yet".to_owned(),
    };
    Ok(Some(format!("parent hub {parent} at {addr}: {link}")))
}

/// The listing as an aligned text table.
pub fn table(nodes: &[NodeStatus]) -> String {
    let mut rows = vec![
        ["NODE", "ROLE", "DIVISION", "VIA", "CERT EXPIRES", "STATE", "BACKLOG", "LAST SEEN"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for n in nodes {
        rows.push(vec![
            n.row.node.clone(),
            n.row.role.clone(),
            format!("{} {}", n.row.division, n.row.division_name),
            n.via.clone().unwrap_or_else(|| "-".into()),
            n.row.cert_not_after.map(format_date).unwrap_or_else(|| "-".into()),
            n.state.clone(),
            n.backlog.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
            n.row.last_seen.map(format_time).unwrap_or_else(|| "never".into()),
        ]);
    }
    let mut out = render(&rows);
    let mut res =
        vec![["NODE", "RESOURCE", "ROWS", "LAST CHANGESET", "UPDATED", "QUARANTINED"].map(str::to_owned).to_vec()];
    for n in nodes {
        for r in &n.resources {
            let q = n.quality.iter().find(|q| q.resource == r.resource).map(|q| q.quarantined);
            res.push(vec![
                n.row.node.clone(),
                r.resource.clone(),
                r.rows.to_string(),
                r.last_seq.to_string(),
                format_time(r.updated_at),
                q.map(|q| q.to_string()).unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    if res.len() > 1 {
        out.push('\n');
        out.push_str(&render(&res));
    }
    out
}

/// Certificates within `gdx_common::renewal::WARN_DAYS` of their end: those
/// of the nodes enrolled here (each renews by itself over its connection
/// after two thirds of its life, so one this close to its end has not
/// managed to) and this hub's own (`hub_cert`).
pub fn expiring(list: &[NodeStatus], hub_cert: &Path, now: i64) -> Vec<String> {
    use gdx_common::renewal::{WARN_DAYS, days_left};
    let mut out = Vec::new();
    for n in list.iter().filter(|n| n.via.is_none() && n.row.revoked_at.is_none()) {
        if let Some(t) = n.row.cert_not_after.filter(|t| *t > now && days_left(*t, now) < WARN_DAYS) {
            out.push(format!(
                "the certificate of {} ends on {} ({} days) and was not renewed; it renews over its connection when it connects (`gdx-agent renew` on its machine), else enrol it again",
                n.row.node,
                gdx_common::units::format_date(t),
                days_left(t, now)
            ));
        }
    }
    let own = std::fs::read_to_string(hub_cert).ok().and_then(|pem| {
        gdx_certs::pki::pem_blocks(&pem, "CERTIFICATE").first().and_then(|d| match gdx_certs::pki::Identity::of(d) {
            Ok(gdx_certs::pki::Identity::Node { not_after, .. }) => Some(not_after),
            _ => None,
        })
    });
    if let Some(t) = own.filter(|t| days_left(*t, now) < WARN_DAYS) {
        out.push(format!(
            "this hub's certificate ends on {} ({} days): a prefecture hub renews it over its link to the province, a province hub when `gdx-hub run` starts with ca.key in place (docs/operator.md, \"Certificate renewal\")",
            gdx_common::units::format_date(t),
            days_left(t, now)
        ));
    }
    out
}
