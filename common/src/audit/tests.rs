//! Unit tests of reading entries, keys and bundles, and of offline verification.

use ring::signature::{Ed25519KeyPair, KeyPair};

use super::*;
use crate::merkle;
use crate::token::hex;

const CHILD: &str = "632500/hub";
const PARENT: &str = "630000/hub";

fn key(first: u8) -> Ed25519KeyPair {
    let seed: Vec<u8> = (first..first + 32).collect();
    Ed25519KeyPair::from_seed_unchecked(&seed).unwrap()
}

fn public(k: &Ed25519KeyPair) -> PublicKey {
    PublicKey::from_bytes(k.public_key().as_ref().try_into().unwrap())
}

fn sign(k: &Ed25519KeyPair, text: &str) -> String {
    hex(k.sign(text.as_bytes()).as_ref())
}

/// The bytes the hub writes for entry `index` after `prev`.
fn entry_text(index: u64, prev: &Hash) -> String {
    let event = Event {
        kind: "request".into(),
        at: 1_800_000_000 + index as i64,
        node: Some("632522/minzheng".into()),
        resource: Some("301001/000001".into()),
        request: Some(format!("632500-{index}")),
        detail: serde_json::json!({ "state": "pending", "fields": ["name"] }),
    };
    serde_json::to_string(&Entry { index, prev: hex(prev), event }).unwrap()
}

/// A child hub's bundle of `n` entries with checkpoints at `sizes`, the
/// first `cosigned` of them cosigned by the parent (format 2).
fn bundle(n: u64, sizes: &[u64], cosigned: usize) -> Bundle {
    let (child, parent) = (key(0), key(32));
    let mut entries = Vec::new();
    let mut leaves = Vec::new();
    let mut prev = [0u8; 32];
    for i in 0..n {
        let text = entry_text(i, &prev);
        prev = merkle::leaf_hash(text.as_bytes());
        leaves.push(prev);
        entries.push(text);
    }
    let checkpoints: Vec<Checkpoint> = sizes
        .iter()
        .map(|&size| {
            let root = hex(&merkle::root(&leaves[..size as usize]));
            let at = 1_800_001_000 + size as i64;
            let signature = sign(&child, &Checkpoint::note(CHILD, size, &root, at));
            Checkpoint { origin: CHILD.into(), size, root, at, signature }
        })
        .collect();
    let cosignatures = checkpoints.iter().take(cosigned).map(|cp| cosign(&parent, 2, PARENT, cp)).collect();
    Bundle { origin: CHILD.into(), public_key: public(&child).to_string(), entries, checkpoints, cosignatures }
}

fn cosign(by: &Ed25519KeyPair, version: u32, cosigner: &str, cp: &Checkpoint) -> BundleCosignature {
    let note = Checkpoint::note(&cp.origin, cp.size, &cp.root, cp.at);
    BundleCosignature {
        version,
        size: cp.size,
        cosigner: cosigner.into(),
        public_key: public(by).to_string(),
        signature: sign(by, &cosignature_note(version, cosigner, &note).unwrap()),
    }
}

fn pins(key: Option<u8>, parent: Option<u8>) -> Pins {
    Pins { key: key.map(|k| public(&self::key(k))), parent_key: parent.map(|k| public(&self::key(k))) }
}

#[test]
fn entries_are_read_strictly() {
    let good = entry_text(0, &[0; 32]);
    let zeros = "0".repeat(64);
    let with = |rest: &str| format!(r#"{{"index":0,"prev":"{zeros}",{rest}}}"#);
    // (what, text, None if it parses, or part of the error)
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("as the hub writes it", good.clone(), None),
        (
            "whitespace between tokens",
            with(r#" "kind" : "lookup", "at":1, "node":null,"resource":null,"request":null,"detail":{ }"#),
            None,
        ),
        (
            "an unknown kind",
            with(r#""kind":"looked","at":1,"node":null,"resource":null,"request":null,"detail":{}"#),
            Some(r#"the kind "looked" is not one of"#),
        ),
        (
            "a field after detail",
            with(r#""kind":"lookup","at":1,"node":null,"resource":null,"request":null,"detail":{},"x":1"#),
            Some("the field `x` follows `detail`"),
        ),
        (
            "a field inserted",
            with(r#""kind":"lookup","at":1,"x":1,"node":null,"resource":null,"request":null,"detail":{}"#),
            Some("found the field `x` where `node` belongs"),
        ),
        (
            "fields reordered",
            with(r#""at":1,"kind":"lookup","node":null,"resource":null,"request":null,"detail":{}"#),
            Some("found the field `at` where `kind` belongs"),
        ),
        (
            "a field missing",
            with(r#""kind":"lookup","at":1,"node":null,"resource":null,"detail":{}"#),
            Some("found the field `detail` where `request` belongs"),
        ),
        (
            "the object ends early",
            with(r#""kind":"lookup","at":1,"node":null,"resource":null"#),
            Some("the field `request` is missing"),
        ),
        (
            "a field twice",
            with(r#""kind":"lookup","kind":"lookup","at":1,"node":null,"resource":null,"request":null,"detail":{}"#),
            Some("found the field `kind` where `at` belongs"),
        ),
        (
            "a key twice in detail",
            with(
                r#""kind":"lookup","at":1,"node":null,"resource":null,"request":null,"detail":{"found":true,"found":false}"#,
            ),
            Some("the key `found` appears twice"),
        ),
        (
            "a key twice deeper in detail",
            with(r#""kind":"lookup","at":1,"node":null,"resource":null,"request":null,"detail":{"a":[{"b":1,"b":2}]}"#),
            Some("the key `b` appears twice"),
        ),
        (
            "detail not an object",
            with(r#""kind":"lookup","at":1,"node":null,"resource":null,"request":null,"detail":[]"#),
            Some("`detail` is not a JSON object"),
        ),
        ("prev in uppercase", good.replace(&zeros, &"0A".repeat(32)), Some("`prev` is not 64 lowercase hex digits")),
        ("not an object", "[0]".into(), Some("expected an audit entry")),
        ("a string for node", good.replace(r#""node":"632522/minzheng""#, r#""node":7"#), Some("invalid type")),
    ];
    for (what, text, expected) in cases {
        let got = serde_json::from_str::<Entry>(&text);
        match (expected, got) {
            (None, Ok(_)) => {}
            (Some(part), Err(e)) => assert!(e.to_string().contains(part), "{what}: {e}"),
            (expected, got) => panic!("{what}: expected {expected:?}, got {got:?}"),
        }
    }
    // what the hub writes reads back as what it wrote
    let entry: Entry = serde_json::from_str(&good).unwrap();
    assert_eq!(serde_json::to_string(&entry).unwrap(), good);
}

#[test]
fn outbox_events_of_unknown_shape_become_unreadable() {
    let cases = [
        (
            r#"{"kind":"lookup","at":5,"node":null,"resource":null,"request":null,"detail":{"found":true}}"#,
            "lookup",
            "",
        ),
        (
            r#"{"kind":"looked","at":5,"node":null,"resource":null,"request":null,"detail":{}}"#,
            "unreadable",
            "not an entry kind",
        ),
        (
            r#"{"kind":"lookup","at":5,"node":null,"resource":null,"request":null,"detail":null}"#,
            "unreadable",
            "not a JSON object",
        ),
        ("not json", "unreadable", "at line 1"),
    ];
    for (text, kind, error) in cases {
        let e = Event::from_outbox(text);
        assert_eq!(e.kind, kind, "{text}");
        if kind == "unreadable" {
            assert!(e.detail["error"].as_str().unwrap().contains(error), "{text}: {}", e.detail);
            assert_eq!(e.detail["text"], text);
            // and what the log makes of it parses as an entry
            let body = serde_json::to_string(&Entry { index: 0, prev: "0".repeat(64), event: e }).unwrap();
            serde_json::from_str::<Entry>(&body).unwrap();
        }
    }
}

#[test]
fn keys_are_given_in_lowercase_hex_only() {
    let k = public(&key(0)).to_string();
    assert_eq!(k, "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
    assert_eq!(PublicKey::parse(&k), Ok(public(&key(0))));
    let upper = k.to_uppercase();
    let cases = [
        (upper.as_str(), KeyError::Uppercase(upper.clone())),
        (&k[..62], KeyError::NotHex(k[..62].to_owned())),
        ("", KeyError::NotHex(String::new())),
        (" 03a1", KeyError::NotHex(" 03a1".into())),
    ];
    for (text, error) in cases {
        assert_eq!(PublicKey::parse(text), Err(error.clone()), "{text:?}");
    }
    let upper = PublicKey::parse(&upper).unwrap_err().to_string();
    assert!(upper.contains("lowercase only") && upper.contains("give it in lowercase"), "{upper}");
}

/// `openssl pkey -pubout` of the keys made from these seeds gives exactly these files.
#[test]
fn public_keys_are_written_as_openssl_writes_them() {
    assert_eq!(
        public(&key(0)).to_pem(),
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n-----END PUBLIC KEY-----\n"
    );
    assert_eq!(
        public(&key(32)).to_pem(),
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAKay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=\n-----END PUBLIC KEY-----\n"
    );
}

#[test]
fn a_clean_bundle_verifies_and_says_what_it_holds() {
    let b = bundle(25, &[10, 20], 2);
    let v = verify(&b, &pins(Some(0), Some(32))).unwrap();
    assert_eq!((v.entries, v.checkpoints, v.unsigned), (25, 2, 5));
    let c = v.cosigned.clone().unwrap();
    assert_eq!((c.checkpoints, c.last, c.pinned, c.cosigner.as_deref(), c.unnamed), (2, 20, true, Some(PARENT), 0));
    let parent = public(&key(32));
    assert_eq!(
        v.summary("b.json"),
        format!(
            "b.json: 25 entries and 2 checkpoints verify (origin {CHILD}, key {}); 2 checkpoints cosigned by {PARENT} (key {parent}, the parent key you gave), the last at size 20; the last 5 entries are not covered by a checkpoint yet",
            public(&key(0))
        )
    );
    // without --parent-key the one cosigner key is named, to compare
    let unpinned = verify(&b, &Pins::default()).unwrap().summary("b.json");
    assert!(unpinned.contains(&format!("(key {parent}, not pinned: compare it with the parent hub's audit key")));
    // cosignatures of the old format (the name not signed) still verify, and say so
    let mut old = bundle(20, &[10, 20], 0);
    old.cosignatures = old.checkpoints.iter().map(|cp| cosign(&key(32), 1, PARENT, cp)).collect();
    let s = verify(&old, &Pins::default()).unwrap().summary("old.json");
    assert!(s.contains(&format!("2 checkpoints cosigned under key {parent}")), "{s}");
    assert!(s.contains("format 1, which does not sign the cosigner's id") && !s.contains(PARENT), "{s}");
    old.cosignatures[0] = cosign(&key(32), 2, PARENT, &old.checkpoints[0]);
    let s = verify(&old, &Pins::default()).unwrap().summary("old.json");
    assert!(s.contains(&format!("cosigned by {PARENT}")) && s.contains("; 1 of them in cosignature format 1"), "{s}");
    // a bundle as `gdx-hub audit export` writes it reads back
    let text = serde_json::to_string(&b).unwrap();
    assert!(text.contains(r#""cosignatures":[{"version":2,"size":10,"cosigner":"630000/hub""#), "{text}");
    let again: Bundle = serde_json::from_str(&text).unwrap();
    assert_eq!(verify(&again, &Pins::default()), verify(&b, &Pins::default()));
}

/// Replaces cosignature `i` of `b` with one made by the key of seed `seed`, naming `cosigner`.
fn forge(b: &mut Bundle, i: usize, seed: u8, cosigner: &str) {
    let cp = b.checkpoints[i].clone();
    b.cosignatures[i] = cosign(&key(seed), 2, cosigner, &cp);
}

#[test]
fn verify_names_the_first_problem() {
    let clean = bundle(25, &[10, 20], 2);
    let (child, parent, fresh) = (key(0), key(32), key(64));
    let p = |k: &Ed25519KeyPair| public(k);
    type Edit = Box<dyn Fn(&mut Bundle)>;
    let cases: Vec<(&str, Pins, Edit, Problem)> = vec![
        (
            "a key in uppercase",
            Pins::default(),
            Box::new(|b| b.public_key = b.public_key.to_uppercase()),
            Problem::BundleKey,
        ),
        (
            "another key than pinned",
            pins(Some(64), None),
            Box::new(|_| {}),
            Problem::NotPinnedKey { key: p(&child).to_string(), pinned: p(&fresh) },
        ),
        (
            "an entry with an unknown kind",
            Pins::default(),
            Box::new(|b| b.entries[3] = b.entries[3].replace(r#""kind":"request""#, r#""kind":"requested""#)),
            Problem::Entry { index: 3, error: String::new() },
        ),
        (
            "an entry changed",
            Pins::default(),
            Box::new(|b| b.entries[12] = b.entries[12].replace("-12", "-92")),
            Problem::Chain { index: 13 },
        ),
        (
            "an entry deleted",
            Pins::default(),
            Box::new(|b| drop(b.entries.remove(7))),
            Problem::Index { index: 7, says: 8 },
        ),
        (
            "two entries swapped",
            Pins::default(),
            Box::new(|b| b.entries.swap(3, 4)),
            Problem::Index { index: 3, says: 4 },
        ),
        (
            "the log truncated",
            Pins::default(),
            Box::new(|b| b.entries.truncate(15)),
            Problem::Truncated { size: 20, entries: 15 },
        ),
        (
            "the last entry changed",
            Pins::default(),
            Box::new(|b| {
                b.entries.truncate(20);
                b.entries[19] = b.entries[19].replace("-19", "-99");
            }),
            Problem::Root { size: 20, from: 10 },
        ),
        (
            "nothing at all",
            Pins::default(),
            Box::new(|b| *b = Bundle { entries: vec![], checkpoints: vec![], cosignatures: vec![], ..b.clone() }),
            Problem::Empty,
        ),
        (
            "no checkpoint",
            Pins::default(),
            Box::new(|b| {
                b.checkpoints.clear();
                b.cosignatures.clear();
            }),
            Problem::NoCheckpoint { entries: 25 },
        ),
        (
            "a checkpoint of another origin",
            Pins::default(),
            Box::new(|b| b.checkpoints[1].origin = PARENT.into()),
            Problem::CheckpointOrigin { size: 20, origin: PARENT.into(), expected: CHILD.into() },
        ),
        (
            "a root in uppercase",
            Pins::default(),
            Box::new(|b| b.checkpoints[1].root = b.checkpoints[1].root.to_uppercase()),
            Problem::CheckpointHex { size: 20 },
        ),
        (
            "a signature in uppercase",
            Pins::default(),
            Box::new(|b| b.checkpoints[0].signature = b.checkpoints[0].signature.to_uppercase()),
            Problem::CheckpointHex { size: 10 },
        ),
        (
            "a checkpoint's root replaced",
            Pins::default(),
            Box::new(|b| b.checkpoints[0].root = b.checkpoints[1].root.clone()),
            Problem::Unsigned { size: 10 },
        ),
        (
            "checkpoints out of order",
            Pins::default(),
            Box::new(|b| b.checkpoints.swap(0, 1)),
            Problem::Order { size: 10 },
        ),
        (
            "a cosignature of no checkpoint",
            Pins::default(),
            Box::new(|b| b.cosignatures[1].size = 15),
            Problem::CosignatureOrphan { size: 15 },
        ),
        (
            "a cosignature format not known",
            Pins::default(),
            Box::new(|b| b.cosignatures[0].version = 3),
            Problem::CosignatureVersion { size: 10, version: 3 },
        ),
        (
            "a cosignature twice",
            Pins::default(),
            Box::new(|b| b.cosignatures.push(b.cosignatures[0].clone())),
            Problem::CosignatureTwice { size: 10 },
        ),
        (
            "a cosigner key in uppercase",
            Pins::default(),
            Box::new(|b| b.cosignatures[0].public_key = b.cosignatures[0].public_key.to_uppercase()),
            Problem::CosignatureHex { size: 10 },
        ),
        (
            "cosigned with the hub's own key",
            Pins::default(),
            Box::new(|b| forge(b, 0, 0, PARENT)),
            Problem::CosignedBySelf { size: 10 },
        ),
        (
            "an earlier cosignature forged under a fresh key, the parent pinned",
            pins(None, Some(32)),
            Box::new(|b| forge(b, 0, 64, PARENT)),
            Problem::NotParentKey { size: 10, key: p(&fresh), parent: p(&parent) },
        ),
        (
            "an earlier cosignature forged under a fresh key, nothing pinned",
            Pins::default(),
            Box::new(|b| forge(b, 0, 64, PARENT)),
            Problem::CosignerKeys { first: p(&fresh), other: p(&parent) },
        ),
        (
            "every cosignature forged under a fresh key, the parent pinned",
            pins(None, Some(32)),
            Box::new(|b| {
                let forged: Vec<_> = b.checkpoints.iter().map(|cp| cosign(&key(64), 2, PARENT, cp)).collect();
                b.cosignatures = forged;
            }),
            Problem::NotParentKey { size: 10, key: p(&fresh), parent: p(&parent) },
        ),
        (
            "the cosigner's id edited",
            Pins::default(),
            Box::new(|b| b.cosignatures[1].cosigner = "630100/hub".into()),
            Problem::CosignatureBad { size: 20, cosigner: "630100/hub".into(), key: p(&parent) },
        ),
        (
            "a cosignature's format lowered to escape its signed id",
            Pins::default(),
            Box::new(|b| {
                b.cosignatures[1].version = 1;
                b.cosignatures[1].cosigner = "630100/hub".into();
            }),
            Problem::CosignatureBad { size: 20, cosigner: "630100/hub".into(), key: p(&parent) },
        ),
        (
            "two cosigner ids signed under one key",
            Pins::default(),
            Box::new(|b| forge(b, 0, 32, "630100/hub")),
            Problem::CosignerIds { key: p(&parent), first: "630100/hub".into(), other: PARENT.into() },
        ),
        (
            "the parent pinned but nothing cosigned",
            pins(Some(0), Some(32)),
            Box::new(|b| b.cosignatures.clear()),
            Problem::NoCosignature,
        ),
    ];
    assert_eq!(verify(&clean, &pins(Some(0), Some(32))).map(|_| ()), Ok(()));
    for (what, pins, edit, expected) in cases {
        let mut b = clean.clone();
        edit(&mut b);
        match (verify(&b, &pins), &expected) {
            // the decoder's own words follow; the entry named is what matters
            (Err(Problem::Entry { index, .. }), Problem::Entry { index: want, .. }) => {
                assert_eq!(index, *want, "{what}")
            }
            (got, _) => assert_eq!(got, Err(expected.clone()), "{what}"),
        }
    }
}

#[test]
fn problems_read_as_one_sentence() {
    let cases = [
        (Problem::Chain { index: 0 }, "entry 0 was changed after it was logged (entry 0 records another hash for it)"),
        (Problem::Chain { index: 5 }, "entry 4 was changed after it was logged (entry 5 records another hash for it)"),
        (
            Problem::Root { size: 30, from: 20 },
            "the entries do not give the root signed at size 30: an entry between 20 and 29 was changed",
        ),
        (
            Problem::Empty,
            "it holds no entries and no checkpoint, so there is nothing to verify; let the hub run until it logs something and signs a checkpoint, then try again",
        ),
        (
            Problem::CosignatureTwice { size: 3 },
            "checkpoint 3 has two cosignatures, but `gdx-hub audit export` writes one per checkpoint: the bundle was edited",
        ),
    ];
    for (problem, text) in cases {
        assert_eq!(problem.to_string(), text);
    }
}

#[test]
fn proofs_are_checked_against_the_pinned_key_and_origin() {
    let b = bundle(7, &[7], 0);
    let leaves: Vec<Hash> = b.entries.iter().map(|e| merkle::leaf_hash(e.as_bytes())).collect();
    let cp = b.checkpoints[0].clone();
    let proof_of = |i: usize| Proof {
        entry: i as u64,
        body: b.entries[i].clone(),
        leaf: hex(&leaves[i]),
        proof: merkle::inclusion_proof(&leaves, i).unwrap().iter().map(|h| hex(h)).collect(),
        checkpoint: cp.clone(),
        public_key: b.public_key.clone(),
    };
    let (child, fresh) = (public(&key(0)), public(&key(64)));
    for i in 0..7 {
        assert_eq!(verify_proof(&proof_of(i), &child, CHILD), Ok(()), "entry {i}");
    }
    type Edit = Box<dyn Fn(&mut Proof)>;
    // (what, key pinned, origin pinned, edit, the problem or None when it verifies)
    let cases: Vec<(&str, PublicKey, &str, Edit, Option<Problem>)> = vec![
        ("another key pinned", fresh, CHILD, Box::new(|_| {}), Some(Problem::Unsigned { size: 7 })),
        (
            "another origin pinned",
            child,
            PARENT,
            Box::new(|_| {}),
            Some(Problem::CheckpointOrigin { size: 7, origin: CHILD.into(), expected: PARENT.into() }),
        ),
        (
            "the checkpoint's origin changed to the one pinned",
            child,
            PARENT,
            Box::new(|p| p.checkpoint.origin = PARENT.into()),
            Some(Problem::Unsigned { size: 7 }),
        ),
        (
            "the body of another entry",
            child,
            CHILD,
            Box::new(|p| p.entry = 3),
            Some(Problem::ProofEntry { entry: 3, says: 2 }),
        ),
        (
            "the body changed",
            child,
            CHILD,
            Box::new(|p| p.body = p.body.replace("-2", "-9")),
            Some(Problem::ProofPath { entry: 2, size: 7 }),
        ),
        (
            "a path hash in uppercase",
            child,
            CHILD,
            Box::new(|p| p.proof[0] = p.proof[0].to_uppercase()),
            Some(Problem::ProofHex),
        ),
        (
            "a printed leaf and key are not relied on",
            child,
            CHILD,
            Box::new(|p| {
                p.leaf = "00".repeat(32);
                p.public_key = "00".repeat(32);
            }),
            None,
        ),
    ];
    for (what, key, origin, edit, expected) in cases {
        let mut p = proof_of(2);
        edit(&mut p);
        assert_eq!(verify_proof(&p, &key, origin).err(), expected, "{what}");
    }
}
