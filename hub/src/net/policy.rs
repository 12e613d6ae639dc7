//! The handshake policy: which peers with a valid chain may connect (role,
//! division, the issuing CA of a child hub's agents, revocation).

use gdx_common::admission;

use super::*;

/// Decides which peers with a valid chain may connect.
#[derive(Debug)]
pub struct Policy {
    division: DivisionCode,
    /// At a child hub: its own intermediate CA, which must have issued the
    /// certificates of the agents it serves.
    /// This hub's intermediate CAs at a child hub, the current one and
    /// those it issued under before (empty at the province).
    own_cas: RwLock<Vec<Vec<u8>>>,
    revoked: RwLock<HashSet<String>>,
    /// Nodes of child hubs' subtrees revoked here, with when.
    below: RwLock<HashMap<NodeId, i64>>,
    /// Divisions of the child hubs enrolled here: their agents attach to them.
    children: RwLock<Vec<DivisionCode>>,
    /// Serials of the unrevoked hub certificates issued here at enrolment.
    hub_serials: RwLock<HashSet<String>>,
}

impl Policy {
    pub fn new(division: DivisionCode, own_cas: Vec<Vec<u8>>, revoked: impl IntoIterator<Item = String>) -> Self {
        Self {
            division,
            own_cas: RwLock::new(own_cas),
            revoked: RwLock::new(revoked.into_iter().collect()),
            below: RwLock::new(HashMap::new()),
            children: RwLock::new(Vec::new()),
            hub_serials: RwLock::new(HashSet::new()),
        }
    }

    /// After this hub's intermediate CA was renewed.
    pub(super) fn set_own_cas(&self, own_cas: Vec<Vec<u8>>) {
        if let Ok(mut o) = self.own_cas.write() {
            *o = own_cas;
        }
    }

    pub(super) fn set_hub_serials(&self, serials: Vec<String>) {
        if let Ok(mut h) = self.hub_serials.write() {
            *h = serials.into_iter().collect();
        }
    }

    /// True when a CA certificate among `chain` (DER) was revoked: what a
    /// revoked child hub's intermediate CA issued is refused everywhere.
    pub(super) fn chain_revoked<'a>(&self, chain: impl IntoIterator<Item = &'a [u8]>) -> bool {
        chain.into_iter().any(|der| match Identity::of(der) {
            Ok(Identity::Ca { serial, .. } | Identity::Node { serial, .. }) => self.is_revoked(&serial),
            Err(_) => false,
        })
    }

    pub(super) fn set_children(&self, children: Vec<DivisionCode>) {
        if let Ok(mut c) = self.children.write() {
            *c = children;
        }
    }

    pub(super) fn set_revoked(&self, serials: Vec<String>) {
        if let Ok(mut r) = self.revoked.write() {
            *r = serials.into_iter().collect();
        }
    }

    pub(super) fn is_revoked(&self, serial: &str) -> bool {
        self.revoked.read().map(|r| r.contains(serial)).unwrap_or(true)
    }

    /// The nodes of child hubs' subtrees revoked here, with when.
    pub(super) fn set_revoked_below(&self, below: Vec<(NodeId, i64)>) {
        if let Ok(mut b) = self.below.write() {
            *b = below.into_iter().collect();
        }
    }

    /// True when the certificate `serial` of `node`, valid from
    /// `not_before`, is revoked: by its serial, or because `node` was
    /// revoked here for a child hub's subtree after it was issued (a new
    /// enrolment at the child since is not). Certificates are valid from
    /// [`gdx_certs::pki::BACKDATE_SECS`] before they are issued.
    pub(super) fn node_revoked(&self, node: &NodeId, serial: &str, not_before: i64) -> bool {
        let issued = not_before.saturating_add(gdx_certs::pki::BACKDATE_SECS);
        self.is_revoked(serial)
            || self.below.read().map(|b| b.get(node).is_some_and(|&at| issued <= at)).unwrap_or(true)
    }
}

impl PeerPolicy for Policy {
    fn admit(&self, peer: &Identity, intermediates: &[&[u8]]) -> Result<(), String> {
        let cert = match peer {
            Identity::Node { node, role, serial, not_before, not_after } => admission::PeerCert::Node {
                node: node.clone(),
                role: *role,
                revoked: self.node_revoked(node, serial, *not_before)
                    || self.chain_revoked(intermediates.iter().copied()),
                not_before: *not_before,
                not_after: *not_after,
                issued_here: self
                    .own_cas
                    .read()
                    .is_ok_and(|own| own.iter().any(|ca| intermediates.contains(&ca.as_slice()))),
                enrolled_here: self.hub_serials.read().is_ok_and(|h| h.contains(serial)),
            },
            Identity::Ca { .. } => admission::PeerCert::Ca,
        };
        let children = self.children.read().map(|c| c.clone()).unwrap_or_default();
        let router = gdx_common::route::Router { division: self.division, children };
        let child = self.own_cas.read().is_ok_and(|own| !own.is_empty());
        let hub = admission::Hub { router: &router, serves_only_its_own_agents: child };
        admission::admit(&hub, &cert, now()).map_err(|refused| {
            crate::metrics::refused(refused.reason());
            refused.to_string()
        })
    }
}
