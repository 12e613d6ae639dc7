//! What the property tests of the decoders share: how many cases a run
//! tries, and generators of the domain's parsed values. Each test file uses
//! some of it.
#![allow(dead_code)]

use gdx_common::data::ResourceCode;
use gdx_common::{NodeId, Role};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Province prefixes of GB/T 2260, as `DivisionCode::parse` accepts them.
const PROVINCES: &[u32] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65, 71, 81, 82,
];

/// `default` cases per property, so that CI stays bounded; `PROPTEST_CASES`
/// (the variable proptest itself reads) overrides it for long runs.
pub fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default);
    Config::with_cases(cases)
}

/// Any valid node id: a province, prefecture or county, and an org part.
pub fn node_id() -> impl Strategy<Value = NodeId> {
    (prop::sample::select(PROVINCES), 0u32..100, 0u32..100, "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?").prop_map(
        |(province, prefecture, county, org)| {
            // a county part needs a prefecture part
            let county = if prefecture == 0 { 0 } else { county };
            NodeId::parse(&format!("{province:02}{prefecture:02}{county:02}/{org}")).expect("a valid node id")
        },
    )
}

pub fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Agent), Just(Role::Hub)]
}

/// Any valid resource code, in the configuration form or the catalogue form.
pub fn resource_code() -> impl Strategy<Value = ResourceCode> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,20}(/[A-Za-z0-9._-]{1,20}){0,2}"
        .prop_filter_map("a reserved prefix", |s| ResourceCode::parse(&s).ok())
}

/// Short text of any Unicode scalar values.
pub fn text() -> impl Strategy<Value = String> {
    prop::string::string_regex("(?s).{0,12}").expect("a valid regex")
}

/// Short bytes.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..48)
}

/// A valid encoding changed in one of the ways damage takes: bytes
/// flipped, cut short, or more bytes after it.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// XOR the byte at (index modulo the length) with a non-zero mask.
    Flip(Vec<(prop::sample::Index, u8)>),
    /// Keep only the first (index modulo the length) bytes.
    Truncate(prop::sample::Index),
    /// Append these bytes.
    Extend(Vec<u8>),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6).prop_map(Mutation::Flip),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Extend),
    ]
}

impl Mutation {
    /// The mutated copy of `valid` (which must not be empty).
    pub fn apply(&self, valid: &[u8]) -> Vec<u8> {
        let mut out = valid.to_vec();
        match self {
            Mutation::Flip(flips) => {
                for (at, mask) in flips {
                    out[at.index(valid.len())] ^= mask;
                }
            }
            Mutation::Truncate(at) => out.truncate(at.index(valid.len())),
            Mutation::Extend(more) => out.extend_from_slice(more),
        }
        out
    }
}
