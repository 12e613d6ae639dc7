//! What a running hub tells Prometheus (`metrics = "127.0.0.1:9464"` in
//! hub.toml, scraped at `GET /metrics`): counters kept as things happen
//! (handshakes refused by reason, changesets, rows and bytes accepted, the
//! time to apply a changeset) and gauges read from the stores at each
//! scrape ([`Gauges`]: nodes connected, forwarding backlog and holds,
//! quarantined rows, overdue catalogue entries and requests, the audit
//! log's size and last checkpoint, certificates' days left).
//!
//! Names are `gdx_hub_*`; labels carry node ids and resource codes, never
//! data. packaging/prometheus/ has the alert rules that use them.

use std::sync::LazyLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The counters, shared by the whole process.
pub struct Counters {
    pub handshakes_refused: Family<Labels, Counter>,
    pub changesets: Counter,
    pub rows: Counter,
    pub bytes: Counter,
    pub apply_seconds: Histogram,
    /// Group commits of the vaults (`crate::store::group_sync`): time to
    /// flush one group; its count is the number of flushes.
    pub flush_seconds: Histogram,
    pub flushed_files: Counter,
}

static COUNTERS: LazyLock<Counters> = LazyLock::new(|| Counters {
    handshakes_refused: Family::default(),
    changesets: Counter::default(),
    rows: Counter::default(),
    bytes: Counter::default(),
    // 1 ms to about 16 s
    apply_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
    // 0.25 ms to about 4 s
    flush_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 15)),
    flushed_files: Counter::default(),
});

pub fn counters() -> &'static Counters {
    &COUNTERS
}

/// Counts a refused handshake or connection under `reason` (a short word).
pub fn refused(reason: &str) {
    COUNTERS.handshakes_refused.get_or_create(&vec![("reason", reason.to_owned())]).inc();
}

/// What the stores say now.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    /// (role, nodes connected)
    pub connected: Vec<(String, i64)>,
    /// (node, resource, changesets the parent has not acknowledged)
    pub backlog: Vec<(String, String, i64)>,
    /// (node, resource) whose forwarding to the parent is held
    pub held: Vec<(String, String)>,
    /// (node, resource, rows its last scan set aside)
    pub quarantined: Vec<(String, String, i64)>,
    pub catalogue_entries: i64,
    pub catalogue_overdue: i64,
    pub requests_pending: i64,
    pub requests_overdue: i64,
    pub audit_entries: i64,
    /// Seconds since the last checkpoint was signed (None: none yet).
    pub checkpoint_age: Option<i64>,
    /// (certificate, days left): "hub", "ca", and the node whose certificate ends first.
    pub cert_days_left: Vec<(String, f64)>,
}

/// The text exposition of the counters and `g`.
pub fn render(g: &Gauges) -> String {
    let mut r = Registry::with_prefix("gdx_hub");
    let c = counters();
    r.register("handshakes_refused", "Connections and handshakes refused, by reason", c.handshakes_refused.clone());
    r.register("changesets_accepted", "Changesets applied (duplicates not counted)", c.changesets.clone());
    r.register("rows_accepted", "Row changes in the changesets applied", c.rows.clone());
    r.register("bytes_accepted", "Signed changeset bytes applied", c.bytes.clone());
    r.register("apply_seconds", "Time to verify and apply one changeset", c.apply_seconds.clone());
    r.register(
        "vault_flush_seconds",
        "Time to flush one group of vault commits to disk (count: groups flushed)",
        c.flush_seconds.clone(),
    );
    r.register("vault_files_flushed", "Vault files flushed, summed over the groups", c.flushed_files.clone());
    let family = |r: &mut Registry, name: &str, help: &str, rows: Vec<(Labels, i64)>| {
        let f = Family::<Labels, Gauge>::default();
        for (labels, v) in rows {
            f.get_or_create(&labels).set(v);
        }
        r.register(name, help, f);
    };
    let one = |r: &mut Registry, name: &str, help: &str, v: i64| {
        let g = Gauge::<i64>::default();
        g.set(v);
        r.register(name, help, g);
    };
    family(
        &mut r,
        "nodes_connected",
        "Nodes connected now, by role",
        g.connected.iter().map(|(role, n)| (vec![("role", role.clone())], *n)).collect(),
    );
    family(
        &mut r,
        "forward_backlog",
        "Changesets the parent hub has not acknowledged, by node and resource",
        g.backlog.iter().map(|(n, res, v)| (vec![("node", n.clone()), ("resource", res.clone())], *v)).collect(),
    );
    family(
        &mut r,
        "forward_held",
        "Resources whose forwarding to the parent is held (1)",
        g.held.iter().map(|(n, res)| (vec![("node", n.clone()), ("resource", res.clone())], 1)).collect(),
    );
    family(
        &mut r,
        "quarantined_rows",
        "Rows the last scan of a resource set aside, as its agent reported",
        g.quarantined.iter().map(|(n, res, v)| (vec![("node", n.clone()), ("resource", res.clone())], *v)).collect(),
    );
    one(&mut r, "catalogue_entries", "Catalogue entries held (not withdrawn)", g.catalogue_entries);
    one(
        &mut r,
        "catalogue_overdue",
        "Catalogue entries whose data is overdue against their update cycle",
        g.catalogue_overdue,
    );
    one(&mut r, "requests_pending", "Requests waiting for the provider's decision", g.requests_pending);
    one(&mut r, "requests_overdue", "Requests unanswered past 10 working days", g.requests_overdue);
    one(&mut r, "audit_entries", "Entries in the audit log", g.audit_entries);
    if let Some(age) = g.checkpoint_age {
        one(&mut r, "audit_checkpoint_age_seconds", "Seconds since the audit log's last signed checkpoint", age);
    }
    let days = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (cert, d) in &g.cert_days_left {
        days.get_or_create(&vec![("certificate", cert.clone())]).set(*d);
    }
    r.register("certificate_days_left", "Days until a certificate expires", days);
    let mut out = String::new();
    // writing into a String cannot fail
    let _ = encode(&mut out, &r);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_each_gauge_and_counter_with_its_labels() {
        counters().changesets.inc();
        refused("revoked");
        let g = Gauges {
            connected: vec![("agent".into(), 3)],
            backlog: vec![("632522/gongan".into(), "hukou".into(), 7)],
            checkpoint_age: Some(4),
            cert_days_left: vec![("hub".into(), 700.5)],
            ..Gauges::default()
        };
        let text = render(&g);
        for line in [
            "gdx_hub_nodes_connected{role=\"agent\"} 3",
            "gdx_hub_forward_backlog{node=\"632522/gongan\",resource=\"hukou\"} 7",
            "gdx_hub_handshakes_refused_total{reason=\"revoked\"}",
            "gdx_hub_changesets_accepted_total",
            "gdx_hub_audit_checkpoint_age_seconds 4",
            "gdx_hub_certificate_days_left{certificate=\"hub\"} 700.5",
            "# TYPE gdx_hub_apply_seconds histogram",
            "# TYPE gdx_hub_vault_flush_seconds histogram",
            "gdx_hub_vault_files_flushed_total",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
