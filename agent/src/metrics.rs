//! What a running agent tells Prometheus (`metrics = "127.0.0.1:9465"` in
//! agent.toml, local addresses only, scraped at `GET /metrics`): the same
//! facts as `gdx-agent status`, read at each scrape — whether it is
//! connected, each resource's outbox backlog, acknowledged number, hold,
//! quarantined rows and last scan, catalogue declarations with a problem,
//! and the certificate's days left. Names are `gdx_agent_*`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::report::Status;

type Labels = Vec<(&'static str, String)>;

/// The text exposition of `s` at `now`.
pub fn render(s: &Status, now: i64) -> String {
    let mut r = Registry::with_prefix("gdx_agent");
    let one = |r: &mut Registry, name: &str, help: &str, v: i64| {
        let g = Gauge::<i64>::default();
        g.set(v);
        r.register(name, help, g);
    };
    let per_resource =
        |r: &mut Registry, name: &str, help: &str, f: &dyn Fn(&crate::state::ResourceState) -> Option<i64>| {
            let family = Family::<Labels, Gauge>::default();
            for res in &s.resources {
                if let Some(v) = f(res) {
                    family.get_or_create(&vec![("resource", res.code.clone())]).set(v);
                }
            }
            r.register(name, help, family);
        };
    one(
        &mut r,
        "connected",
        "1 while the daemon holds a live connection to its hub",
        i64::from(s.daemon_running && s.link.state == "connected"),
    );
    per_resource(&mut r, "outbox_changesets", "Changesets waiting for the hub's acknowledgement", &|x| {
        Some(x.backlog_changesets)
    });
    per_resource(&mut r, "outbox_rows", "Row changes waiting for the hub's acknowledgement", &|x| Some(x.backlog_rows));
    per_resource(&mut r, "acked_seq", "The highest changeset number the hub acknowledged", &|x| Some(x.acked_seq));
    per_resource(&mut r, "held", "1 when the hub rejected a changeset and uploads of the resource are held", &|x| {
        Some(i64::from(x.held.is_some()))
    });
    per_resource(&mut r, "quarantined_rows", "Rows the last scan set aside", &|x| Some(x.quarantined));
    per_resource(&mut r, "last_scan_age_seconds", "Seconds since the resource was last scanned", &|x| {
        x.last_scan.map(|t| now - t)
    });
    one(
        &mut r,
        "catalogue_problems",
        "Catalogue declarations unusable or refused by the hub",
        s.catalog.iter().filter(|c| c.problem.is_some()).count() as i64,
    );
    if let Some(t) = s.cert_not_after {
        let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        g.set((t - now) as f64 / 86_400.0);
        r.register("certificate_days_left", "Days until this agent's certificate expires", g);
    }
    let mut out = String::new();
    // writing into a String cannot fail
    let _ = encode(&mut out, &r);
    out
}
