//! Routing through the hierarchy: where a node sits as seen from a hub
//! (attached to it, below one of its child hubs, or outside its division),
//! which decides whether the hub serves it, hands its traffic down to a
//! child hub, or up to its parent.

use crate::{DivisionCode, NodeId};

/// Where a node sits as seen from this hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Attached to this hub.
    Here,
    /// Below the child hub of this division.
    Child(DivisionCode),
    /// Outside this hub's division.
    Outside,
}

/// This hub's division and its children's: where a node sits.
#[derive(Debug, Clone)]
pub struct Router {
    pub division: DivisionCode,
    pub children: Vec<DivisionCode>,
}

impl Router {
    /// Where `node` sits as seen from this hub.
    pub fn place(&self, node: &NodeId) -> Place {
        if !self.division.contains(node.division()) {
            return Place::Outside;
        }
        match self.children.iter().find(|c| c.contains(node.division())) {
            Some(c) => Place::Child(*c),
            None => Place::Here,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_a_node_sits() {
        let d = |c: &str| DivisionCode::parse(c).unwrap();
        let province = Router { division: d("630000"), children: vec![d("630100"), d("632500")] };
        let prefecture = Router { division: d("632500"), children: vec![] };
        for (router, node, want) in [
            (&province, "630000/gongan", Place::Here),
            (&province, "632522/gongan", Place::Child(d("632500"))),
            (&province, "630102/minzheng", Place::Child(d("630100"))),
            (&province, "632300/gongan", Place::Here),
            (&province, "620000/gongan", Place::Outside),
            (&prefecture, "632522/gongan", Place::Here),
            (&prefecture, "632500/renshe", Place::Here),
            (&prefecture, "630102/minzheng", Place::Outside),
            (&prefecture, "630000/gongan", Place::Outside),
        ] {
            assert_eq!(router.place(&NodeId::parse(node).unwrap()), want, "{node}");
        }
    }
}
