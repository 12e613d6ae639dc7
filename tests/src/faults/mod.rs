//! Faults for the reliability harness (`gdx-faults`, docs/reliability.md):
//! a UDP impairment relay that stands in for netem on a stock kernel
//! ([`relay`]), real links between network namespaces impaired the same
//! way ([`netns`]), and a seeded soak over a province, a prefecture and their
//! agents while sources change and a grant delivers ([`soak`]).

pub mod machine;
pub mod netns;
pub mod relay;
pub mod soak;

pub use relay::{Impairer, Impairment, Relay, Rng, Way};
