//! Unit tests of the audit log: appends, collection, checkpoints, proofs,
//! verification, cosigning, the public key file, and the examples of
//! docs/auditor-guide.md.

use super::*;
use rusqlite::{Connection, params};

fn event(i: usize) -> Event {
    Event {
        kind: "request".into(),
        at: 1_800_000_000 + i as i64,
        node: Some("630102/minzheng".into()),
        resource: Some("301001/000001".into()),
        request: Some(format!("630100-{i}")),
        detail: serde_json::json!({ "n": i }),
    }
}

fn log_with(n: usize) -> (tempfile::TempDir, AuditLog) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::open(dir.path(), "630000/hub").unwrap();
    for i in 0..n {
        log.append(&format!("test#{i}"), &event(i)).unwrap();
        if i % 10 == 9 {
            log.checkpoint(1_800_000_000 + i as i64).unwrap();
        }
    }
    log.checkpoint(1_800_000_100).unwrap();
    (dir, log)
}

#[test]
fn a_clean_log_verifies_and_proves_inclusion() {
    let (dir, log) = log_with(37);
    let v = verify(&log.bundle().unwrap(), &Pins::default()).unwrap();
    assert_eq!((v.entries, v.checkpoints, v.unsigned, v.cosigned), (37, 4, 0, None));
    let p = log.prove(20).unwrap();
    let proof: Vec<Hash> = p.proof.iter().map(|h| hash_of(h).unwrap()).collect();
    assert!(merkle::verify_inclusion(
        20,
        37,
        &merkle::leaf_hash(p.body.as_bytes()),
        &proof,
        &hash_of(&p.checkpoint.root).unwrap()
    ));
    // reopened, the frontier is rebuilt and appends continue the same tree
    drop(log);
    let mut again = AuditLog::open(dir.path(), "630000/hub").unwrap();
    assert!(!again.append("test#3", &event(3)).unwrap(), "a source appends once");
    again.append("test#37", &event(37)).unwrap();
    again.checkpoint(1_800_000_200).unwrap();
    assert_eq!(verify(&again.bundle().unwrap(), &Pins::default()).err(), None);
}

#[test]
fn verify_names_what_was_tampered_with() {
    let (_dir, log) = log_with(30);
    let clean = log.bundle().unwrap();
    let problem = |f: &dyn Fn(&mut Bundle)| {
        let mut b = clean.clone();
        f(&mut b);
        verify(&b, &Pins::default()).err().map(|p| p.to_string()).unwrap_or_default()
    };
    // one byte of an entry changed
    let changed = problem(&|b| b.entries[12] = b.entries[12].replace("630100-12", "630100-92"));
    assert!(changed.contains("entry 12 was changed"), "{changed}");
    // the last entry changed: no entry follows it, the checkpoint catches it
    let last = problem(&|b| b.entries[29] = b.entries[29].replace("630100-29", "630100-99"));
    assert!(last.contains("root signed at size 30") && last.contains("between 20 and 29"), "{last}");
    // an entry deleted
    let deleted = problem(&|b| {
        b.entries.remove(7);
    });
    assert!(deleted.contains("entry 7 says it is entry 8"), "{deleted}");
    // two entries swapped
    let swapped = problem(&|b| b.entries.swap(3, 4));
    assert!(swapped.contains("entry 3 says it is entry 4"), "{swapped}");
    // truncated
    let truncated = problem(&|b| b.entries.truncate(25));
    assert!(truncated.contains("the log holds only 25 entries, so it was truncated"), "{truncated}");
    // a checkpoint replaced (root of another log, or re-signed by another key)
    let replaced = problem(&|b| b.checkpoints[1].root = b.checkpoints[2].root.clone());
    assert!(replaced.contains("checkpoint of size 20 is not signed"), "{replaced}");
    let other = log_with(30).1.bundle().unwrap();
    let foreign = problem(&|b| b.checkpoints[2] = other.checkpoints[2].clone());
    assert!(foreign.contains("checkpoint of size 30 is not signed"), "{foreign}");
}

#[test]
fn a_parent_cosigns_consistent_checkpoints_and_keeps_evidence_of_a_fork() {
    use gdx_common::wire::Message;
    let parent_dir = tempfile::tempdir().unwrap();
    let mut parent = AuditLog::open(parent_dir.path(), "630000/root").unwrap();
    let (child_dir, mut child) = log_with(5);
    let cosign = |parent: &mut AuditLog, child: &AuditLog, from: Option<u64>| {
        let req = child.cosign_request(from).unwrap().unwrap();
        parent.cosign("630000/hub", &req, 1_900_000_000).unwrap()
    };
    let Ok(Message::Cosigned(c)) = cosign(&mut parent, &child, None) else { panic!("first checkpoint") };
    child.keep_cosignature(&c).unwrap().unwrap();
    assert!(child.cosign_request(None).unwrap().is_none(), "nothing new to cosign");
    for i in 5..12 {
        child.append(&format!("test#{i}"), &event(i)).unwrap();
    }
    child.checkpoint(1_800_000_300).unwrap();
    // a proof from the wrong size is answered with the size the parent holds
    assert_eq!(cosign(&mut parent, &child, Some(3)).unwrap(), Message::CosignFrom(5));
    let Ok(Message::Cosigned(c)) = cosign(&mut parent, &child, None) else { panic!("extension") };
    child.keep_cosignature(&c).unwrap().unwrap();
    // the parent logged what it cosigned
    let cosigned = parent.list(&Filter { kind: Some("cosigned".into()), ..Filter::default() }).unwrap();
    assert_eq!(cosigned.iter().map(|e| e.event.detail["size"].as_u64().unwrap()).collect::<Vec<_>>(), [5, 12]);
    // a fork: the same key, another history of the same length and beyond
    let fork_dir = tempfile::tempdir().unwrap();
    std::fs::copy(child_dir.path().join("audit.key"), fork_dir.path().join("audit.key")).unwrap();
    let mut fork = AuditLog::open(fork_dir.path(), "630000/hub").unwrap();
    for i in 0..14 {
        fork.append(&format!("fork#{i}"), &Event { kind: "lookup".into(), ..event(i) }).unwrap();
    }
    fork.checkpoint(1_800_000_400).unwrap();
    let refused = cosign(&mut parent, &fork, Some(12)).unwrap_err();
    assert!(matches!(refused, CosignRefused::Conflict { .. }), "{refused}");
    assert!(refused.to_string().contains("does not extend the last one cosigned"), "{refused}");
    // the fork grows on (a child restored from a backup): each new checkpoint is refused, the conflict kept once
    for i in 14..20 {
        fork.append(&format!("fork#{i}"), &Event { kind: "lookup".into(), ..event(i) }).unwrap();
        fork.checkpoint(1_800_000_400 + i as i64).unwrap();
        assert!(matches!(cosign(&mut parent, &fork, Some(12)), Err(CosignRefused::Conflict { .. })));
    }
    assert_eq!(parent.evidence().unwrap().len(), 1);
    let logged = parent.list(&Filter { kind: Some("equivocation".into()), ..Filter::default() }).unwrap();
    assert_eq!(logged.len(), 1);
    parent.checkpoint(1_900_000_001).unwrap();
    assert_eq!(verify(&parent.bundle().unwrap(), &Pins::default()).err(), None, "the parent's own log stays valid");
    // the child's bundle carries the parent's cosignatures, which verify offline
    let mut b = child.bundle().unwrap();
    let parent_key = PublicKey::parse(&parent.public_key()).unwrap();
    let v = verify(&b, &Pins { key: None, parent_key: Some(parent_key) }).unwrap().cosigned.unwrap();
    assert_eq!((v.checkpoints, v.last, v.cosigner.as_deref(), v.unnamed), (2, 12, Some("630000/root"), 0));
    assert!(b.cosignatures.iter().all(|c| c.version == COSIGNATURE_VERSION));
    // the parent signed its id: editing it fails
    b.cosignatures[0].cosigner = "630100/hub".into();
    let edited = verify(&b, &Pins::default()).unwrap_err().to_string();
    assert!(edited.contains("cosignature by 630100/hub of checkpoint 5 does not verify"), "{edited}");
    b.cosignatures[1].signature = b.cosignatures[0].signature.clone();
    b.cosignatures[0].cosigner = "630000/root".into();
    let swapped = verify(&b, &Pins::default()).unwrap_err().to_string();
    assert!(swapped.contains("cosignature by 630000/root of checkpoint 12 does not verify"), "{swapped}");
    drop(child_dir);
}

#[test]
fn the_child_keeps_only_cosignatures_that_verify_under_one_key() {
    use gdx_common::wire::{Cosignature, Message};
    let parent_dir = tempfile::tempdir().unwrap();
    let mut parent = AuditLog::open(parent_dir.path(), "630000/hub").unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = AuditLog::open(other_dir.path(), "630000/hub").unwrap();
    let (_child_dir, child) = log_with(5);
    let req = child.cosign_request(None).unwrap().unwrap();
    let Ok(Message::Cosigned(good)) = parent.cosign("630000/hub", &req, 1_900_000_000).unwrap() else { panic!() };
    let Ok(Message::Cosigned(foreign)) = other.cosign("630000/hub", &req, 1_900_000_000).unwrap() else { panic!() };
    // the parent's key signs the bare checkpoint text, as parents did before format 2
    let parent_key = Ed25519KeyPair::from_pkcs8(&std::fs::read(parent_dir.path().join("audit.key")).unwrap()).unwrap();
    let cp = child.last_checkpoint().unwrap().unwrap();
    let note = Checkpoint::note("630000/hub", cp.size, &cp.root, cp.at);
    let old = Cosignature { signature: parent_key.sign(note.as_bytes()).as_ref().to_vec(), ..good.clone() };
    let edit = |f: &dyn Fn(&mut Cosignature)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    // (what, cosignature, None when kept or part of why not)
    let cases: Vec<(&str, Cosignature, Option<&str>)> = vec![
        ("the signature altered", edit(&|c| c.signature[3] ^= 1), Some("does not verify under the key")),
        (
            "the cosigner's id altered",
            edit(&|c| c.cosigner = gdx_common::NodeId::parse("630100/hub").unwrap()),
            Some("does not verify"),
        ),
        ("a checkpoint never signed", edit(&|c| c.size = 4), Some("which this hub never signed")),
        ("a key of 31 bytes", edit(&|c| c.public_key.truncate(31)), Some("not 32 bytes")),
        ("format 2 from the parent", good.clone(), None),
        ("format 1 from the same parent", old, None),
        ("another key than before", foreign, Some("the cosignatures kept before are under key")),
    ];
    for (what, c, expected) in cases {
        let kept = child.keep_cosignature(&c).unwrap();
        match expected {
            None => assert_eq!(kept, Ok(()), "{what}"),
            Some(part) => assert!(kept.as_ref().is_err_and(|e| e.to_string().contains(part)), "{what}: {kept:?}"),
        }
    }
    // the last one kept was of format 1; it verifies, its id not shown as signed
    let b = child.bundle().unwrap();
    assert_eq!(b.cosignatures.iter().map(|c| c.version).collect::<Vec<_>>(), [1]);
    let v = verify(&b, &Pins { key: None, parent_key: PublicKey::parse(&parent.public_key()).ok() }).unwrap();
    assert_eq!(v.cosigned.map(|c| (c.cosigner, c.unnamed)), Some((None, 1)));
}

/// An `audit.db` made before cosignatures had a format: they are of format 1.
#[test]
fn an_older_audit_db_keeps_its_cosignatures_as_format_1() {
    let (dir, log) = log_with(3);
    let cp = log.last_checkpoint().unwrap().unwrap();
    drop(log);
    let parent = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let note = Checkpoint::note("630000/hub", cp.size, &cp.root, cp.at);
    let conn = Connection::open(dir.path().join("audit.db")).unwrap();
    conn.execute_batch(
        "DROP TABLE cosignatures;
         CREATE TABLE cosignatures (size INTEGER PRIMARY KEY, cosigner TEXT NOT NULL, public_key TEXT NOT NULL, signature TEXT NOT NULL);",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO cosignatures VALUES (?1, '630000/root', ?2, ?3)",
        params![cp.size as i64, hex(parent.public_key().as_ref()), hex(parent.sign(note.as_bytes()).as_ref())],
    )
    .unwrap();
    drop(conn);
    let log = AuditLog::open(dir.path(), "630000/hub").unwrap();
    let b = log.bundle().unwrap();
    assert_eq!(b.cosignatures.iter().map(|c| c.version).collect::<Vec<_>>(), [1]);
    let v = verify(&b, &Pins::default()).unwrap();
    assert_eq!(v.cosigned.map(|c| (c.checkpoints, c.unnamed)), Some((1, 1)));
    // and opening it again changes nothing
    drop(log);
    assert_eq!(AuditLog::open(dir.path(), "630000/hub").unwrap().bundle().unwrap().cosignatures, b.cosignatures);
}

/// Every entry the hub writes parses as an entry: an outbox event of an
/// unknown kind is logged as `unreadable`, and appending one is refused.
#[test]
fn events_of_unknown_kinds_are_logged_as_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::open(dir.path(), "630000/hub").unwrap();
    let store = Connection::open(HubPaths::new(dir.path()).db()).unwrap();
    store.execute_batch(crate::store::outbox::OUTBOX_SQL).unwrap();
    let texts = [
        r#"{"kind":"lookup","at":5,"node":null,"resource":null,"request":null,"detail":{"found":true}}"#,
        r#"{"kind":"throttled","at":5,"node":null,"resource":null,"request":null,"detail":{}}"#,
        r#"{"kind":"lookup","at":5,"node":null,"resource":null,"request":null,"detail":7}"#,
    ];
    for t in texts {
        store.execute("INSERT INTO audit_outbox (event) VALUES (?1)", [t]).unwrap();
    }
    assert_eq!(log.collect().unwrap(), 3);
    let kinds: Vec<String> = log.list(&Filter::default()).unwrap().into_iter().map(|e| e.event.kind).collect();
    assert_eq!(kinds, ["lookup", "unreadable", "unreadable"]);
    log.checkpoint(1_800_000_000).unwrap();
    assert_eq!(verify(&log.bundle().unwrap(), &Pins::default()).err(), None);
    let refused = log.append("test#x", &Event { kind: "throttled".into(), ..event(1) }).unwrap_err();
    assert!(refused.to_string().contains("cannot be logged"), "{refused}");
    assert_eq!(log.size(), 3);
}

/// `audit.pub` holds the public key as openssl reads it, and is put back
/// when it does not match `audit.key`.
#[test]
fn the_public_key_is_kept_for_standard_tools() {
    let dir = tempfile::tempdir().unwrap();
    let path = HubPaths::new(dir.path()).audit_pub();
    let log = AuditLog::open(dir.path(), "630000/hub").unwrap();
    let pem = PublicKey::parse(&log.public_key()).unwrap().to_pem();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
    drop(log);
    for damage in ["", "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAKay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=\n"] {
        std::fs::write(&path, damage).unwrap();
        drop(AuditLog::open(dir.path(), "630000/hub").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
    }
    std::fs::remove_file(&path).unwrap();
    drop(AuditLog::open(dir.path(), "630000/hub").unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
}

/// The guide: docs/auditor-guide.md, whose examples are checked below.
const GUIDE: &str = include_str!("../../../docs/auditor-guide.md");

/// The first fenced block after `marker` in the guide.
fn block_after(marker: &str) -> &'static str {
    let at = GUIDE.find(marker).unwrap_or_else(|| panic!("{marker:?} is in the guide"));
    let rest = &GUIDE[at..];
    let open = rest.find("```").unwrap();
    let start = open + rest[open..].find('\n').unwrap() + 1;
    let end = start + rest[start..].find("```").unwrap();
    &rest[start..end]
}

/// The key of the test vector made from the seed `first`, `first + 1`, ….
fn vector_key(first: u8) -> Ed25519KeyPair {
    let seed: Vec<u8> = (first..first + 32).collect();
    Ed25519KeyPair::from_seed_unchecked(&seed).unwrap()
}

/// The bundles of Appendix A: the province's (A.1) and the prefecture's,
/// cosigned by the province (A.2), as `gdx-hub audit export` writes them.
fn vector_bundles() -> (Bundle, Bundle) {
    let entries: Vec<String> = block_after("Entries (one per line").lines().map(str::to_owned).collect();
    let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e.as_bytes())).collect();
    let root = hex(&merkle::root(&leaves));
    let (province, prefecture) = (vector_key(0), vector_key(32));
    let checkpoint = |origin: &str, key: &Ed25519KeyPair| Checkpoint {
        origin: origin.into(),
        size: 3,
        root: root.clone(),
        at: 1_795_767_302,
        signature: hex(key.sign(Checkpoint::note(origin, 3, &root, 1_795_767_302).as_bytes()).as_ref()),
    };
    let a1 = Bundle {
        origin: "630000/hub".into(),
        public_key: hex(province.public_key().as_ref()),
        entries: entries.clone(),
        checkpoints: vec![checkpoint("630000/hub", &province)],
        cosignatures: vec![],
    };
    let note = Checkpoint::note("632500/hub", 3, &root, 1_795_767_302);
    let cosigned = cosignature_note(2, "630000/hub", &note).unwrap();
    let a2 = Bundle {
        origin: "632500/hub".into(),
        public_key: hex(prefecture.public_key().as_ref()),
        entries,
        checkpoints: vec![checkpoint("632500/hub", &prefecture)],
        cosignatures: vec![BundleCosignature {
            version: 2,
            size: 3,
            cosigner: "630000/hub".into(),
            public_key: hex(province.public_key().as_ref()),
            signature: hex(province.sign(cosigned.as_bytes()).as_ref()),
        }],
    };
    (a1, a2)
}

/// The test vector of docs/auditor-guide.md (computed there with
/// independent implementations) gives the same leaves, root and signatures
/// here, and its bundles verify.
#[test]
fn the_auditor_guide_test_vector_holds() {
    let entries: Vec<&str> = block_after("Entries (one per line").lines().collect();
    assert_eq!(entries.len(), 3);
    for line in &entries {
        let entry: Entry = serde_json::from_str(line).unwrap();
        assert_eq!(&serde_json::to_string(&entry).unwrap(), line, "this hub writes exactly these bytes");
    }
    let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e.as_bytes())).collect();
    assert_eq!(hex(&leaves[0]), "3cc377892e5b8773c114d4d101ee8b3e61fb33eff16fd2985c03c427b0ef44c0");
    assert_eq!(hex(&leaves[1]), "b5a23322a7da62fd7200b05f95d8275f10a6fbd6306d09c47f9761dbb48d83f8");
    assert_eq!(hex(&leaves[2]), "41e89a8c949e30f78f54014c199bb2bc0e953576e4180008503593207e2ee45b");
    assert_eq!(
        hex(&merkle::node_hash(&leaves[0], &leaves[1])),
        "652e604e2dd55839d1832a9ae4b7ef30b8fb58e83c2a762255dca08a0a126441"
    );
    let root = hex(&merkle::root(&leaves));
    assert_eq!(root, "3b0ab8a36cc716681a1aac200e74d113522df68dc319dc7f7a42fab5999a800a");
    let key = vector_key(0);
    assert_eq!(hex(key.public_key().as_ref()), "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
    let note = Checkpoint::note("630000/hub", 3, &root, 1_795_767_302);
    assert_eq!(note.len(), 112);
    assert_eq!(block_after("The signed text (origin `630000/hub`"), note);
    let pem = PublicKey::parse(&hex(key.public_key().as_ref())).unwrap().to_pem();
    assert_eq!(block_after("`audit.pub` holds it:"), pem);
    assert_eq!(
        hex(key.sign(note.as_bytes()).as_ref()),
        "45d4fe1cd7c0c6c395936fd3510db5ea94a48ee5a1c52a232f1483c2848da6407e882d9966687e51b242c8ca213dabc9902096358e498267fc2b110b93c6ca0b"
    );
    // A.2: the prefecture's checkpoint and the province's cosignature (computed with openssl)
    let prefecture = vector_key(32);
    assert_eq!(
        hex(prefecture.public_key().as_ref()),
        "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"
    );
    let note = Checkpoint::note("632500/hub", 3, &root, 1_795_767_302);
    assert_eq!(
        hex(prefecture.sign(note.as_bytes()).as_ref()),
        "b6298317356d80ba51b9080f826a1b4fa4dd16301e29b2e64fa1e336dee72651ec6915afdaef8749b99e19ad5252df7275b13b5107e72f1b2aaee5691f927804"
    );
    let cosigned = cosignature_note(2, "630000/hub", &note).unwrap();
    assert_eq!(cosigned.len(), 147);
    assert_eq!(block_after("The cosigned text (cosigner `630000/hub`"), cosigned);
    assert_eq!(
        hex(key.sign(cosigned.as_bytes()).as_ref()),
        "aa3a96fbd97ccf806ca93cab9eff4a81e3fe6404cad88fec47f064c4f5488b68a35d47938f96f952a9be57b6f4fc16d54668dc44ec4ead1c6e2fb32d3fcea906"
    );
    // the bundles, as the guide gives them, are what export writes, and verify
    let (a1, a2) = vector_bundles();
    for (marker, bundle, pins) in [
        ("The province's bundle (one line", &a1, Pins { key: PublicKey::parse(&a1.public_key).ok(), parent_key: None }),
        (
            "The prefecture's bundle (one line",
            &a2,
            Pins { key: PublicKey::parse(&a2.public_key).ok(), parent_key: PublicKey::parse(&a1.public_key).ok() },
        ),
    ] {
        let text = serde_json::to_string(bundle).unwrap();
        let given = block_after(marker).trim();
        assert_eq!(given, text, "{marker}: the guide gives another bundle than export writes");
        let parsed: Bundle = serde_json::from_str(given).unwrap();
        assert!(verify(&parsed, &pins).is_ok(), "{marker}: {:?}", verify(&parsed, &pins));
    }
}

/// The outputs shown in the guide are what the code prints for the test vector.
#[test]
fn the_auditor_guide_examples_are_what_the_code_prints() {
    let (a1, a2) = vector_bundles();
    let pinned = |b: &Bundle, parent: Option<&Bundle>| Pins {
        key: PublicKey::parse(&b.public_key).ok(),
        parent_key: parent.and_then(|p| PublicKey::parse(&p.public_key).ok()),
    };
    let province = verify(&a1, &pinned(&a1, None)).unwrap();
    let prefecture = verify(&a2, &pinned(&a2, Some(&a1))).unwrap();
    let unpinned = verify(&a2, &Pins::default()).unwrap();
    let mut tampered = a1.clone();
    tampered.entries[1] = tampered.entries[1].replace("城乡低保对象信息", "城乡低保对象");
    let tampered = verify(&tampered, &Pins::default()).unwrap_err();
    let expected = [
        province.summary("the audit log of 630000/hub"),
        province.summary("audit-630000-20261127.json"),
        prefecture.summary("audit-632500-20261127.json"),
        unpinned.summary("audit-632500-20261127.json"),
        format!("error: tampered.json does not verify: {tampered}"),
    ];
    for line in expected {
        assert!(GUIDE.contains(&format!("\n{line}\n")), "the guide does not show:\n{line}");
    }
    // `audit list` of the test vector, as a table and as CSV
    let entries: Vec<Entry> = a1.entries.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let table = render(&entries, "table").unwrap();
    assert!(GUIDE.contains(&format!("$ gdx-hub audit list\n{table}")), "the guide does not show:\n{table}");
    let csv = render(&entries[2..], "csv").unwrap();
    assert!(GUIDE.contains(&format!("$ gdx-hub audit list --kind request --format csv\n{csv}")), "{csv}");
    // `audit prove --entry 1` of the test vector verifies against the key and origin pinned
    let proof: Proof = serde_json::from_str(block_after("### `gdx-hub audit prove --entry N`")).unwrap();
    let key = PublicKey::parse(&a1.public_key).unwrap();
    assert_eq!(gdx_common::audit::verify_proof(&proof, &key, "630000/hub"), Ok(()));
    let leaves: Vec<Hash> = a1.entries.iter().map(|e| merkle::leaf_hash(e.as_bytes())).collect();
    let path: Vec<String> = merkle::inclusion_proof(&leaves, 1).unwrap().iter().map(|h| hex(h)).collect();
    assert_eq!((&proof.body, &proof.leaf, &proof.proof), (&a1.entries[1], &hex(&leaves[1]), &path));
    assert_eq!((&proof.checkpoint, &proof.public_key), (&a1.checkpoints[0], &a1.public_key));
}
