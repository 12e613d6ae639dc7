//! Who is told at once that something arrived for them: a count per
//! attached agent, per child hub (by division) and one for the parent link,
//! raised once a delivery for them is committed here, and watched by their
//! `Watch` requests (protocol 3). A count, not a one-shot signal: a watcher
//! that was busy, or on a connection that has since been replaced, sees a
//! count other than the one it last saw and looks at once, so no arrival is
//! missed; a ring with nobody watching costs one map entry. Two more bells
//! wake this hub's own tasks: `up`, the parent link, when something must go
//! up, and `produce`, the delivery producer, when a request record was
//! stored (a grant may have become live).

use std::collections::HashMap;
use std::sync::Mutex;

use gdx_common::route::Place;
use gdx_common::{DivisionCode, NodeId};
use tokio::sync::watch;

/// The hub's doorbells.
#[derive(Default)]
pub struct Doorbell {
    agents: Mutex<HashMap<NodeId, watch::Sender<u64>>>,
    hubs: Mutex<HashMap<DivisionCode, watch::Sender<u64>>>,
    /// Rung when something must go up to the parent hub.
    pub up: tokio::sync::Notify,
    /// Rung when a request record was stored here: the producer looks for
    /// live grants at once instead of at its next second.
    pub produce: tokio::sync::Notify,
}

/// Whose count a watcher follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watcher {
    Agent(NodeId),
    ChildHub(DivisionCode),
}

impl Doorbell {
    /// Something for `consumer`, which sits at `place` from this hub, was stored.
    pub fn ring(&self, consumer: &NodeId, place: &Place) {
        match place {
            Place::Here => raise(&self.agents, consumer),
            Place::Child(division) => raise(&self.hubs, division),
            Place::Outside => self.up.notify_one(),
        }
    }

    /// A request filed or decided here was stored: it goes up at once (the
    /// parent link's next push, when there is a parent), and the producer
    /// looks at once for a grant to deliver.
    pub fn record_stored(&self) {
        self.up.notify_one();
        self.produce.notify_one();
    }

    /// `who`'s count now, and a receiver that sees it change.
    pub fn watch(&self, who: &Watcher) -> watch::Receiver<u64> {
        match who {
            Watcher::Agent(node) => subscribe(&self.agents, node),
            Watcher::ChildHub(division) => subscribe(&self.hubs, division),
        }
    }
}

fn raise<K: std::hash::Hash + Eq + Clone>(bells: &Mutex<HashMap<K, watch::Sender<u64>>>, key: &K) {
    let Ok(mut bells) = bells.lock() else { return };
    bells.entry(key.clone()).or_insert_with(|| watch::Sender::new(0)).send_modify(|n| *n = n.wrapping_add(1));
}

fn subscribe<K: std::hash::Hash + Eq + Clone>(
    bells: &Mutex<HashMap<K, watch::Sender<u64>>>,
    key: &K,
) -> watch::Receiver<u64> {
    match bells.lock() {
        Ok(mut bells) => bells.entry(key.clone()).or_insert_with(|| watch::Sender::new(0)).subscribe(),
        // a poisoned map: a receiver that never changes (the watch answers at its time limit)
        Err(_) => watch::Sender::new(0).subscribe(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_ring_reaches_the_consumer_or_the_child_hub_on_its_way_and_nobody_else() {
        let bell = Doorbell::default();
        let agent = NodeId::parse("632521/gongan").unwrap();
        let other = NodeId::parse("632521/minzheng").unwrap();
        let hainan = DivisionCode::parse("632500").unwrap();
        let a = bell.watch(&Watcher::Agent(agent.clone()));
        let o = bell.watch(&Watcher::Agent(other));
        let h = bell.watch(&Watcher::ChildHub(hainan));
        bell.ring(&agent, &Place::Here);
        assert_eq!((*a.borrow(), *o.borrow(), *h.borrow()), (1, 0, 0));
        bell.ring(&agent, &Place::Child(hainan));
        bell.ring(&agent, &Place::Child(hainan));
        assert_eq!((*a.borrow(), *o.borrow(), *h.borrow()), (1, 0, 2));
        // a watcher that comes later sees the count so far
        assert_eq!(*bell.watch(&Watcher::Agent(agent)).borrow(), 1);
    }
}
