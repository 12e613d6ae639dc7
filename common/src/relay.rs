//! Relay trust: who may hand a hub something that another node signed (a
//! changeset, a catalogue entry), and which signer it must carry. The node
//! that signed it may send it itself, signed with the certificate of its
//! own connection; otherwise only the hub of a division holding the
//! origin's may relay it, and the signer's chain (verified by the caller)
//! must name that very agent and not be revoked. A hub may also be the
//! origin itself: what it publishes as its own node (`DIVISION/hub`, such
//! as the province's base databases) carries its own hub certificate.

use crate::{NodeId, Role};

/// How the sender of something `origin` signed must be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The origin sent it: the chain it carries must begin with the
    /// certificate of the connection.
    Origin,
    /// A child hub relayed it: the carried chain must verify to the root
    /// and name the origin ([`check_signer`]).
    ChildHub,
}

/// Why what was sent is not taken, in the words the sender is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayRefused {
    #[error("{origin}'s data may be relayed only by the hub of its division, not by {role} {sender}")]
    NotItsHub { origin: NodeId, sender: NodeId, role: Role },
    #[error("it is not signed with the certificate of the connection")]
    NotTheConnectionsCertificate,
    #[error("the certificate of {origin} has been revoked")]
    SignerRevoked { origin: NodeId },
    #[error("its signer's certificate names {role} {signer}, not agent {origin}")]
    OtherSigner { origin: NodeId, signer: NodeId, role: Role },
    #[error("its signer's certificate names a CA, not agent {origin}")]
    CaSigner { origin: NodeId },
}

/// Whether `sender` (of `role`) may hand over what `origin` signed, and how
/// the signer must then be checked.
pub fn via(sender: &NodeId, role: Role, origin: &NodeId) -> Result<Via, RelayRefused> {
    if origin == sender {
        return Ok(Via::Origin);
    }
    if role != Role::Hub || !sender.division().contains(origin.division()) {
        return Err(RelayRefused::NotItsHub { origin: origin.clone(), sender: sender.clone(), role });
    }
    Ok(Via::ChildHub)
}

/// What a relayed item's verified signer chain says of its leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    Node { node: NodeId, role: Role, revoked: bool },
    Ca,
}

/// Whether a relayed item's verified signer is the origin, not revoked: an
/// agent, or a hub publishing as its own `DIVISION/hub` node.
pub fn check_signer(origin: &NodeId, signer: &Signer) -> Result<(), RelayRefused> {
    match signer {
        Signer::Node { node, role: Role::Agent, revoked: false } if node == origin && !origin.is_hub_id() => Ok(()),
        Signer::Node { node, role: Role::Hub, revoked: false } if node == origin && origin.is_hub_id() => Ok(()),
        Signer::Node { node, role: Role::Agent | Role::Hub, revoked: true } if node == origin => {
            Err(RelayRefused::SignerRevoked { origin: origin.clone() })
        }
        Signer::Node { node, role, .. } => {
            Err(RelayRefused::OtherSigner { origin: origin.clone(), signer: node.clone(), role: *role })
        }
        Signer::Ca => Err(RelayRefused::CaSigner { origin: origin.clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    #[test]
    fn who_may_relay() {
        let cases: [(&str, Role, &str, Result<Via, &str>); 7] = [
            ("632522/gongan", Role::Agent, "632522/gongan", Ok(Via::Origin)),
            ("632500/hub", Role::Hub, "632522/gongan", Ok(Via::ChildHub)),
            ("632500/hub", Role::Hub, "632500/renshe", Ok(Via::ChildHub)),
            ("630100/hub", Role::Hub, "632522/gongan", Err("only by the hub of its division, not by hub 630100/hub")),
            ("632522/minzheng", Role::Agent, "632522/gongan", Err("not by agent 632522/minzheng")),
            ("632500/hub", Role::Hub, "630000/gongan", Err("not by hub 632500/hub")),
            ("632522/hub", Role::Hub, "632500/renshe", Err("not by hub 632522/hub")),
        ];
        for (sender, role, origin, want) in cases {
            let got = via(&n(sender), role, &n(origin)).map_err(|e| e.to_string());
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{sender} {origin}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{sender} {origin}: {g}"),
                (g, w) => panic!("{sender} {origin}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn which_signer_a_relayed_item_must_carry() {
        let origin = n("632522/gongan");
        let agent = |node: &str, revoked| Signer::Node { node: n(node), role: Role::Agent, revoked };
        assert_eq!(check_signer(&origin, &agent("632522/gongan", false)), Ok(()));
        assert!(matches!(
            check_signer(&origin, &agent("632522/gongan", true)),
            Err(RelayRefused::SignerRevoked { .. })
        ));
        assert!(matches!(
            check_signer(&origin, &agent("632522/minzheng", false)),
            Err(RelayRefused::OtherSigner { .. })
        ));
        let hub = Signer::Node { node: n("632522/gongan"), role: Role::Hub, revoked: false };
        assert!(matches!(check_signer(&origin, &hub), Err(RelayRefused::OtherSigner { .. })));
        assert!(matches!(check_signer(&origin, &Signer::Ca), Err(RelayRefused::CaSigner { .. })));
        // a hub signs for its own node only
        let province = n("630000/hub");
        let hub = |node: &str, revoked| Signer::Node { node: n(node), role: Role::Hub, revoked };
        assert_eq!(check_signer(&province, &hub("630000/hub", false)), Ok(()));
        assert!(matches!(check_signer(&province, &hub("630000/hub", true)), Err(RelayRefused::SignerRevoked { .. })));
        assert!(matches!(check_signer(&province, &hub("632500/hub", false)), Err(RelayRefused::OtherSigner { .. })));
        assert!(matches!(check_signer(&province, &agent("630000/hub", false)), Err(RelayRefused::OtherSigner { .. })));
    }
}
