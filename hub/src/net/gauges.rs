//! The hub's gauges for a metrics scrape (`crate::metrics`), read from its
//! stores and its live connections.

use std::collections::BTreeMap;

use super::*;

impl Hub {
    /// What the stores say now, for a metrics scrape (a store that cannot be
    /// read leaves its gauges out rather than failing the scrape).
    pub(super) fn gauges(&self) -> crate::metrics::Gauges {
        let now = now();
        let mut g = crate::metrics::Gauges::default();
        let days = |not_after: i64| (not_after - now) as f64 / 86_400.0;
        let cert = |der: &[u8]| match Identity::of(der) {
            Ok(Identity::Node { not_after, .. } | Identity::Ca { not_after, .. }) => Some(not_after),
            Err(_) => None,
        };
        let creds = self.creds();
        if let Some(t) = cert(&creds.auth.ca_der) {
            g.cert_days_left.push(("ca".into(), days(t)));
        }
        if let Some(t) = creds.chain.first().and_then(|c| cert(c)) {
            g.cert_days_left.push(("hub".into(), days(t)));
        }
        if let Ok(store) = self.store.lock()
            && let Ok(nodes) = crate::nodes::list(&store, None, now)
        {
            let mut connected: BTreeMap<String, i64> = BTreeMap::new();
            for n in nodes.iter().filter(|n| n.via.is_none()) {
                *connected.entry(n.row.role.clone()).or_default() += i64::from(n.state == "connected");
                for q in &n.quality {
                    g.quarantined.push((n.row.node.clone(), q.resource.clone(), q.quarantined as i64));
                }
            }
            g.connected = connected.into_iter().collect();
            let soonest = nodes
                .iter()
                .filter(|n| n.via.is_none() && n.row.revoked_at.is_none())
                .filter_map(|n| n.row.cert_not_after.map(|t| (t, n.row.node.clone())))
                .min();
            if let Some((t, _)) = soonest {
                g.cert_days_left.push(("node_soonest".into(), days(t)));
            }
        }
        let base = match self.catalog.lock() {
            Ok(c) => {
                if let Ok(list) = c.list(&crate::catalog::Filter::default(), now) {
                    let live: Vec<_> = list.iter().filter(|l| !l.withdrawn).collect();
                    g.catalogue_entries = live.len() as i64;
                    g.catalogue_overdue = live.iter().filter(|l| l.freshness.overdue).count() as i64;
                }
                c.base_resources().unwrap_or_default()
            }
            Err(_) => Vec::new(),
        };
        // forwarding is a child hub's (the catalogue's lock released first)
        if self.config.parent.is_some() {
            for (node, resource) in base.iter().filter(|(n, _)| self.vaults.path(n).exists()) {
                if let Ok(n) = self.vaults.forward_backlog(node, resource) {
                    g.backlog.push((node.to_string(), resource.to_string(), n as i64));
                }
                if let Ok(Some(_)) = self.vaults.forward_error(node, resource) {
                    g.held.push((node.to_string(), resource.to_string()));
                }
            }
        }
        if let Ok(x) = self.exchange.lock()
            && let Ok(list) = x.list(crate::exchange::clock())
        {
            g.requests_pending = list.iter().filter(|l| l.state == "pending" || l.state == "OVERDUE").count() as i64;
            g.requests_overdue = list.iter().filter(|l| l.state == "OVERDUE").count() as i64;
        }
        if let Ok(a) = self.audit.lock() {
            g.audit_entries = a.size() as i64;
            g.checkpoint_age = a.last_checkpoint().ok().flatten().map(|c| now - c.at);
        }
        g
    }
}
