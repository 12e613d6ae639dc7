//! The handshake policy: which peers with a valid chain may connect (role,
//! division, the issuing CA of a child hub's agents, revocation).

use super::*;

/// Decides which peers with a valid chain may connect.
#[derive(Debug)]
pub struct Policy {
    division: DivisionCode,
    /// At a child hub: its own intermediate CA, which must have issued the
    /// certificates of the agents it serves.
    own_ca: Option<Vec<u8>>,
    revoked: RwLock<HashSet<String>>,
    /// Divisions of the child hubs enrolled here: their agents attach to them.
    children: RwLock<Vec<DivisionCode>>,
}

impl Policy {
    pub fn new(division: DivisionCode, own_ca: Option<Vec<u8>>, revoked: impl IntoIterator<Item = String>) -> Self {
        Self {
            division,
            own_ca,
            revoked: RwLock::new(revoked.into_iter().collect()),
            children: RwLock::new(Vec::new()),
        }
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
}

impl PeerPolicy for Policy {
    fn admit(&self, peer: &Identity, intermediates: &[&[u8]]) -> Result<(), String> {
        let Identity::Node { node, role, serial, .. } = peer else {
            return Err("a CA certificate cannot be used to connect; use a node certificate".into());
        };
        if self.is_revoked(serial) {
            return Err(format!(
                "the certificate of {role} {node} has been revoked; ask the hub operator for a new enrolment token"
            ));
        }
        let here = format!("{} ({})", self.division, self.division.name());
        let child = self.children.read().ok().and_then(|c| c.iter().copied().find(|d| d.contains(node.division())));
        match role {
            Role::Agent if !self.division.contains(node.division()) => Err(format!(
                "agent {node} is outside this hub's division {here}; it must connect to the hub of its own division"
            )),
            Role::Agent if let Some(child) = child => Err(format!(
                "agent {node} belongs under the hub of {child} ({}); enrol it there with a token from {child}/hub",
                child.name()
            )),
            // a prefecture hub serves the agents it enrolled, so that its
            // own revocations and listings cover every agent it serves
            Role::Agent if self.own_ca.as_ref().is_some_and(|ca| !intermediates.contains(&ca.as_slice())) => {
                Err(format!("agent {node} was not enrolled at this hub; enrol it here with a token from this hub"))
            }
            Role::Hub if !self.division.strictly_contains(node.division()) => Err(format!(
                "hub {node} is not below this hub's division {here}; a hub connects only to the hub above it"
            )),
            _ => Ok(()),
        }
    }
}
