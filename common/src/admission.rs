//! Handshake admission: whether a peer whose certificate chain has been
//! verified may connect to this hub, decided over the facts read from its
//! certificate (role, node, revocation of it or of a CA of its chain,
//! validity, issuing CA, whether this hub issued it at enrolment) and
//! the hub's own (division, child hubs, whether it issues its agents'
//! certificates itself). The TLS layer checks the chain and calls this.

use crate::route::{Place, Router};
use crate::{DivisionCode, NodeId, Role};

/// What a peer's certificate says, and what the hub knows of its serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCert {
    /// A node (agent or hub) certificate.
    Node {
        node: NodeId,
        role: Role,
        /// The certificate, or a CA of the chain it came with, was revoked.
        revoked: bool,
        not_before: i64,
        not_after: i64,
        /// The chain the peer presented holds the CA of this hub.
        issued_here: bool,
        /// This hub issued this very certificate when the peer enrolled
        /// here (what a child hub must present).
        enrolled_here: bool,
    },
    /// A CA certificate.
    Ca,
}

/// The hub deciding.
#[derive(Debug, Clone, Copy)]
pub struct Hub<'a> {
    /// Its division and its child hubs' (their agents attach to them).
    pub router: &'a Router,
    /// A prefecture hub serves only the agents it enrolled itself (so that
    /// its own revocations and listings cover every agent it serves).
    pub serves_only_its_own_agents: bool,
}

/// Why a peer may not connect, in the words it is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("a CA certificate cannot be used to connect; use a node certificate")]
    CaCertificate,
    #[error("the certificate of {role} {node} has been revoked; ask the hub operator for a new enrolment token")]
    Revoked { node: NodeId, role: Role },
    #[error(
        "the certificate of {role} {node} is not valid now (valid from {not_before} to {not_after}, Unix seconds); check this machine's clock, or enrol again"
    )]
    NotValidNow { node: NodeId, role: Role, not_before: i64, not_after: i64 },
    #[error("agent {node} is outside this hub's division {here} ({}); it must connect to the hub of its own division", .here.name())]
    AgentOutside { node: NodeId, here: DivisionCode },
    #[error("agent {node} belongs under the hub of {child} ({}); enrol it there with a token from {child}/hub", .child.name())]
    AgentOfChild { node: NodeId, child: DivisionCode },
    #[error("agent {node} was not enrolled at this hub; enrol it here with a token from this hub")]
    AgentNotEnrolledHere { node: NodeId },
    #[error("hub {node} is not below this hub's division {here} ({}); a hub connects only to the hub above it", .here.name())]
    HubNotBelow { node: NodeId, here: DivisionCode },
    #[error("{node} names a county, and a county has no hub; its departments enrol at the prefecture's hub")]
    CountyHub { node: NodeId },
    #[error(
        "this hub certificate of {node} was not issued when {node} joined this hub; join it with `gdx-hub init --join` and a token from this hub"
    )]
    HubNotEnrolledHere { node: NodeId },
}

impl Refused {
    /// A short word for the reason, for counting refusals (metrics).
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::CaCertificate => "ca_certificate",
            Refused::Revoked { .. } => "revoked",
            Refused::NotValidNow { .. } => "expired_or_not_yet_valid",
            Refused::AgentOutside { .. } => "outside_division",
            Refused::AgentOfChild { .. } => "belongs_to_child_hub",
            Refused::AgentNotEnrolledHere { .. } | Refused::HubNotEnrolledHere { .. } => "not_enrolled_here",
            Refused::HubNotBelow { .. } => "hub_not_below",
            Refused::CountyHub { .. } => "county_hub",
        }
    }
}

/// Admits `peer` to `hub` at `now`, or says why not.
pub fn admit(hub: &Hub<'_>, peer: &PeerCert, now: i64) -> Result<(), Refused> {
    let PeerCert::Node { node, role, revoked, not_before, not_after, issued_here, enrolled_here } = peer else {
        return Err(Refused::CaCertificate);
    };
    let (node, role) = (node.clone(), *role);
    if *revoked {
        return Err(Refused::Revoked { node, role });
    }
    if now < *not_before || now > *not_after {
        return Err(Refused::NotValidNow { node, role, not_before: *not_before, not_after: *not_after });
    }
    let here = hub.router.division;
    match (role, hub.router.place(&node)) {
        (Role::Agent, Place::Outside) => Err(Refused::AgentOutside { node, here }),
        (Role::Agent, Place::Child(child)) => Err(Refused::AgentOfChild { node, child }),
        (Role::Agent, Place::Here) if hub.serves_only_its_own_agents && !issued_here => {
            Err(Refused::AgentNotEnrolledHere { node })
        }
        (Role::Hub, _) if !here.strictly_contains(node.division()) => Err(Refused::HubNotBelow { node, here }),
        (Role::Hub, _) if node.division().level() == crate::DivisionLevel::County => Err(Refused::CountyHub { node }),
        (Role::Hub, _) if !enrolled_here => Err(Refused::HubNotEnrolledHere { node }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn div(code: &str) -> DivisionCode {
        DivisionCode::parse(code).unwrap()
    }

    fn peer(node: &str, role: Role) -> PeerCert {
        let node = NodeId::parse(node).unwrap();
        PeerCert::Node {
            node,
            role,
            revoked: false,
            not_before: 100,
            not_after: 200,
            issued_here: true,
            enrolled_here: role == Role::Hub,
        }
    }

    fn with(p: PeerCert, f: impl FnOnce(&mut bool, &mut i64, &mut bool)) -> PeerCert {
        let mut p = p;
        if let PeerCert::Node { revoked, not_after, issued_here, .. } = &mut p {
            f(revoked, not_after, issued_here);
        }
        p
    }

    #[test]
    fn admission_table() {
        let province_router = Router { division: div("630000"), children: vec![div("632500")] };
        let prefecture_router = Router { division: div("632500"), children: vec![] };
        let province = Hub { router: &province_router, serves_only_its_own_agents: false };
        let prefecture = Hub { router: &prefecture_router, serves_only_its_own_agents: true };
        let refused =
            |r: Result<(), Refused>| r.err().map(|e| format!("{e:?}").split([' ', '{']).next().unwrap().to_owned());
        let cases: Vec<(&str, &Hub<'_>, PeerCert, i64, Option<&str>)> = vec![
            ("a province agent", &province, peer("630000/gongan", Role::Agent), 150, None),
            ("a prefecture hub", &province, peer("632500/hub", Role::Hub), 150, None),
            (
                "a county agent under the province's own prefecture",
                &province,
                peer("630102/gongan", Role::Agent),
                150,
                None,
            ),
            ("a CA certificate", &province, PeerCert::Ca, 150, Some("CaCertificate")),
            ("revoked", &province, with(peer("630000/gongan", Role::Agent), |r, _, _| *r = true), 150, Some("Revoked")),
            ("before its validity", &province, peer("630000/gongan", Role::Agent), 99, Some("NotValidNow")),
            ("after its validity", &province, peer("630000/gongan", Role::Agent), 201, Some("NotValidNow")),
            ("an agent of another province", &province, peer("620000/gongan", Role::Agent), 150, Some("AgentOutside")),
            (
                "an agent of a child hub's division",
                &province,
                peer("632522/minzheng", Role::Agent),
                150,
                Some("AgentOfChild"),
            ),
            ("a county agent at its prefecture", &prefecture, peer("632522/minzheng", Role::Agent), 150, None),
            (
                "an agent another CA issued",
                &prefecture,
                with(peer("632522/minzheng", Role::Agent), |_, _, i| *i = false),
                150,
                Some("AgentNotEnrolledHere"),
            ),
            (
                "an agent of the other prefecture",
                &prefecture,
                peer("630102/gongan", Role::Agent),
                150,
                Some("AgentOutside"),
            ),
            ("the province hub dialling in", &prefecture, peer("630000/hub", Role::Hub), 150, Some("HubNotBelow")),
            ("a hub of the same division", &prefecture, peer("632500/hub", Role::Hub), 150, Some("HubNotBelow")),
            ("a county hub", &prefecture, peer("632522/hub", Role::Hub), 150, Some("CountyHub")),
            (
                "a hub certificate no enrolment here made",
                &province,
                {
                    let mut p = peer("632500/hub", Role::Hub);
                    if let PeerCert::Node { enrolled_here, .. } = &mut p {
                        *enrolled_here = false;
                    }
                    p
                },
                150,
                Some("HubNotEnrolledHere"),
            ),
        ];
        for (what, hub, p, now, want) in cases {
            assert_eq!(refused(admit(hub, &p, now)).as_deref(), want, "{what}");
        }
        let e = admit(&province, &peer("632522/minzheng", Role::Agent), 150).unwrap_err().to_string();
        assert_eq!(
            e,
            "agent 632522/minzheng belongs under the hub of 632500 (海南藏族自治州); enrol it there with a token from 632500/hub"
        );
    }
}
