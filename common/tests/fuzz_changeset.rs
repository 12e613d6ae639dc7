//! Property tests of the changeset body decoder
//! (`gdx_common::data::decode_changeset`), which reads `zstd(bincode)`
//! bodies that came from another node.
//!
//! Whatever the bytes, it returns a changeset or a typed error and never
//! panics; every changeset, with cells of every kind (NaN and infinities,
//! empty and CJK text, blobs), survives a round trip bit for bit; damaged
//! bodies, compressed or not, are refused or decode to something that
//! encodes again. `PROPTEST_CASES` scales the run (see docs/security.md).
#![allow(clippy::unwrap_used)]

mod support;

use gdx_common::data::*;
use proptest::prelude::*;
use support::{config, mutation, node_id, resource_code};

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0)
        ]
        .prop_map(Value::Real),
        "(?s).{0,16}|[0-9]{18}|[\u{4e00}-\u{9fa5}]{1,8}".prop_map(|t| Value::Text(t.into())),
        prop::collection::vec(any::<u8>(), 0..32).prop_map(Value::Blob),
    ]
}

fn column() -> impl Strategy<Value = Column> {
    ("[a-z_\u{4e00}-\u{9fa5}][a-z0-9_\u{4e00}-\u{9fa5}]{0,10}", "|INTEGER|TEXT|REAL|BLOB")
        .prop_map(|(name, decl_type)| Column { name, decl_type })
}

/// Any changeset: its columns, key and changes need not be consistent
/// (the body decoder does not check that; `Changeset::validate` does).
fn changeset() -> impl Strategy<Value = Changeset> {
    let change = prop_oneof![
        prop::collection::vec(value(), 0..6).prop_map(Change::Upsert),
        prop::collection::vec(value(), 0..3).prop_map(Change::Delete),
    ];
    (
        (node_id(), resource_code(), any::<u64>(), any::<u64>(), any::<i64>()),
        prop::collection::vec(column(), 0..6),
        prop::collection::vec(0usize..8, 0..3),
        prop::collection::vec(change, 0..12),
    )
        .prop_map(|((origin, resource, seq, epoch, created_at), columns, key, changes)| Changeset {
            origin,
            resource,
            seq,
            epoch,
            columns,
            key,
            changes,
            created_at,
        })
}

/// The bincode of a changeset: equal bytes mean equal changesets, NaN
/// payloads and the sign of zero included (which `==` on f64 cannot tell).
fn raw(cs: &Changeset) -> Vec<u8> {
    bincode::serde::encode_to_vec(cs, bincode::config::standard()).unwrap()
}

/// Decodes `body`; a changeset that decodes must encode to a body that
/// decodes to it again.
fn check_decoded(body: &[u8]) -> Result<(), TestCaseError> {
    match decode_changeset(body) {
        Ok(cs) => {
            let again = decode_changeset(&encode_changeset(&cs).unwrap()).unwrap();
            prop_assert_eq!(raw(&again), raw(&cs));
        }
        Err(BodyError::Compression(_) | BodyError::Decode(_)) => {}
        Err(e @ BodyError::Encode(_)) => prop_assert!(false, "decoding said {e}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    /// Arbitrary bytes, mostly not zstd at all.
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        check_decoded(&body)?;
    }

    /// Arbitrary bytes inside a valid zstd frame reach the bincode decoder.
    #[test]
    fn arbitrary_compressed_bytes_never_panic(inner in prop::collection::vec(any::<u8>(), 0..512)) {
        check_decoded(&zstd::bulk::compress(&inner, 1).unwrap())?;
    }

    /// Every changeset survives a round trip, bit for bit.
    #[test]
    fn changesets_round_trip(cs in changeset()) {
        let body = encode_changeset(&cs).unwrap();
        let back = decode_changeset(&body).unwrap();
        prop_assert_eq!(raw(&back), raw(&cs));
        if !format!("{cs:?}").contains("NaN") {
            prop_assert_eq!(back, cs);
        }
    }

    /// A damaged body (bytes flipped, cut short, more bytes after it)
    /// never panics, and a cut body is refused.
    #[test]
    fn damaged_bodies_never_panic(cs in changeset(), damage in mutation()) {
        let body = encode_changeset(&cs).unwrap();
        let damaged = damage.apply(&body);
        check_decoded(&damaged)?;
        if damaged.len() < body.len() {
            prop_assert!(decode_changeset(&damaged).is_err());
        }
    }

    /// A changeset's bincode damaged before compression, as a signer with a
    /// bug (or an attacker with a key) would send it, never panics; cut
    /// short or followed by other bytes, it is refused.
    #[test]
    fn damaged_encodings_never_panic(cs in changeset(), damage in mutation()) {
        let valid = raw(&cs);
        let damaged = damage.apply(&valid);
        let body = zstd::bulk::compress(&damaged, 1).unwrap();
        check_decoded(&body)?;
        if damaged.len() != valid.len() {
            prop_assert!(matches!(decode_changeset(&body), Err(BodyError::Decode(_))));
        }
    }
}
