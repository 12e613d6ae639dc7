//! Caps on connections: how many a hub serves at once, and how many may be
//! unproven (in the handshake, before a welcomed hello, or enrolling) in
//! total and from one address, so that peers that never finish cannot
//! exhaust the hub. A connection holds an [`Unproven`] until it proves
//! itself, and a [`Connection`] for as long as it is served.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 20_000;
/// Unproven connections at once, from everywhere.
pub const MAX_UNPROVEN: usize = 1_024;
/// Unproven connections at once from one address (a county office behind
/// one NAT address enrols and reconnects a few machines at a time).
pub const MAX_UNPROVEN_PER_ADDRESS: usize = 128;

#[derive(Debug)]
pub struct Gate {
    inner: Arc<Counts>,
    limits: (usize, usize, usize),
}

impl Default for Gate {
    /// The QUIC endpoint's limits.
    fn default() -> Self {
        Self::with_limits(MAX_CONNECTIONS, MAX_UNPROVEN, MAX_UNPROVEN_PER_ADDRESS)
    }
}

#[derive(Debug, Default)]
struct Counts {
    served: AtomicUsize,
    unproven: Mutex<HashMap<IpAddr, usize>>,
    unproven_total: AtomicUsize,
}

/// Held while a connection is served; its drop makes room.
#[derive(Debug)]
pub struct Connection {
    counts: Arc<Counts>,
}

/// Held while a connection has not proven who it is; dropped once it has.
#[derive(Debug)]
pub struct Unproven {
    counts: Arc<Counts>,
    from: IpAddr,
}

impl Gate {
    /// Places for a new connection from `from` among those served and the
    /// unproven, or None when it must be refused.
    pub fn enter(&self, from: IpAddr) -> Option<(Connection, Unproven)> {
        let (served, total, per_address) = self.limits;
        self.enter_within(from, served, total, per_address)
    }

    /// A gate that serves at most `served` connections, of which at most
    /// `unproven` (and `per_address` from one address) are unproven.
    pub fn with_limits(served: usize, unproven: usize, per_address: usize) -> Self {
        Self { inner: Arc::default(), limits: (served, unproven, per_address) }
    }

    fn enter_within(
        &self,
        from: IpAddr,
        served: usize,
        total: usize,
        per_address: usize,
    ) -> Option<(Connection, Unproven)> {
        let counts = &self.inner;
        let mut map = counts.unproven.lock().ok()?;
        let here = map.get(&from).copied().unwrap_or(0);
        if counts.served.load(Ordering::Acquire) >= served
            || counts.unproven_total.load(Ordering::Acquire) >= total
            || here >= per_address
        {
            return None;
        }
        map.insert(from, here + 1);
        counts.unproven_total.fetch_add(1, Ordering::AcqRel);
        counts.served.fetch_add(1, Ordering::AcqRel);
        Some((Connection { counts: counts.clone() }, Unproven { counts: counts.clone(), from }))
    }
}

impl Drop for Unproven {
    fn drop(&mut self) {
        if let Ok(mut map) = self.counts.unproven.lock()
            && let Some(n) = map.get_mut(&self.from)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.from);
            }
        }
        self.counts.unproven_total.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.counts.served.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unproven_connections_are_capped_per_address_and_in_total() {
        let gate = Gate::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let enter = |ip| gate.enter_within(ip, 4, 3, 2);
        let a1 = enter(a).unwrap();
        let a2 = enter(a).unwrap();
        assert!(enter(a).is_none(), "two unproven from one address at most");
        let b1 = enter(b).unwrap();
        assert!(enter(c).is_none(), "three unproven in total");
        // proving frees the unproven place but keeps the place among those served
        let (proven, unproven) = a1;
        drop(unproven);
        let c1 = enter(c).unwrap();
        drop((a2, b1));
        let (b2, b3) = (enter(b).unwrap(), enter(b).unwrap());
        let also = (b2.0, b3.0);
        drop((b2.1, b3.1));
        assert!(enter(a).is_none(), "four served at most, proven or not");
        drop(proven);
        assert!(enter(a).is_some());
        drop((c1, also));
    }
}
