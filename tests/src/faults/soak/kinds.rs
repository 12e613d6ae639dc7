//! The kinds of fault the soak draws, and the links they act on.

use super::super::netns::Wire;
use super::super::{Impairment, Relay, Way};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Loss,
    Delay,
    Bandwidth,
    ReorderDuplicate,
    Partition,
    Flap,
    KillAgent,
    KillHub,
    OneWay,
    MtuBlackHole,
    Overlap,
    TwoLinks,
    DiskFull,
    KillWhileDiskFull,
    ClockSkew,
    Unplug,
    KernelDrop,
}

/// The faults every machine can make (the first of [`ALL`]); a full disk
/// needs root (a tmpfs), a skewed clock libfaketime, a wire's own faults
/// network namespaces.
pub(super) const KINDS: &[Kind] = ALL.split_at(12).0;

impl Kind {
    /// The name `gdx-faults --only` takes.
    pub(super) fn short(self) -> &'static str {
        match self {
            Kind::Loss => "loss",
            Kind::Delay => "delay",
            Kind::Bandwidth => "satellite",
            Kind::ReorderDuplicate => "reorder",
            Kind::Partition => "partition",
            Kind::Flap => "flap",
            Kind::KillAgent => "kill-agent",
            Kind::KillHub => "kill-hub",
            Kind::OneWay => "one-way",
            Kind::MtuBlackHole => "mtu",
            Kind::Overlap => "restart-impaired",
            Kind::TwoLinks => "two-links",
            Kind::KillWhileDiskFull => "kill-disk-full",
            Kind::DiskFull => "disk-full",
            Kind::ClockSkew => "clock",
            Kind::Unplug => "unplug",
            Kind::KernelDrop => "kernel-drop",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Loss => "loss (5-20 %)",
            Kind::Delay => "delay 300 ms ± 50 ms",
            Kind::Bandwidth => "1 Mbit/s, 300 ms, 5 % loss",
            Kind::ReorderDuplicate => "reordering and duplication",
            Kind::Partition => "partition",
            Kind::Flap => "flapping link",
            Kind::KillAgent => "agent SIGKILLed",
            Kind::KillHub => "hub SIGKILLed",
            Kind::OneWay => "one way cut",
            Kind::MtuBlackHole => "path MTU black hole (1280)",
            Kind::Overlap => "link impaired while a hub restarts",
            Kind::TwoLinks => "two links at once (one cut, one lossy)",
            Kind::KillWhileDiskFull => "hub SIGKILLed while its disk is full",
            Kind::DiskFull => "hub's disk full (its whole data folder)",
            Kind::ClockSkew => "agent's clock 10 min off",
            Kind::Unplug => "cable pulled (both ends down)",
            Kind::KernelDrop => "one way dropped by the kernel",
        }
    }
}

/// Every kind's name for `gdx-faults --only`, with what it is.
pub fn kind_names() -> Vec<(&'static str, &'static str)> {
    ALL.iter().map(|k| (k.short(), k.name())).collect()
}

/// Every kind: first those every machine can make, then those that need
/// root, libfaketime or network namespaces.
const ALL: [Kind; 17] = [
    Kind::Loss,
    Kind::Delay,
    Kind::Bandwidth,
    Kind::ReorderDuplicate,
    Kind::Partition,
    Kind::Flap,
    Kind::KillAgent,
    Kind::KillHub,
    Kind::OneWay,
    Kind::MtuBlackHole,
    Kind::Overlap,
    Kind::TwoLinks,
    Kind::DiskFull,
    Kind::KillWhileDiskFull,
    Kind::ClockSkew,
    Kind::Unplug,
    Kind::KernelDrop,
];

/// A link the faults act on: a relay on loopback in front of a hub, or (as
/// root) a wire between two network namespaces.
pub(super) enum Link {
    Relay(Relay),
    Wire(Box<Wire>),
}

impl Link {
    pub(super) fn set(&self, impairment: Impairment) {
        match self {
            Link::Relay(r) => r.set(impairment),
            Link::Wire(w) => w.set(impairment),
        }
    }

    pub(super) fn set_way(&self, way: Way, impairment: Impairment) {
        match self {
            Link::Relay(r) => r.set_way(way, impairment),
            Link::Wire(w) => w.set_way(way, impairment),
        }
    }
}
