//! Unit tests of the audit log: appends, collection, checkpoints, proofs,
//! verification, cosigning.

use super::*;

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
    let v = verify(&log.bundle().unwrap());
    assert_eq!(v, Verified { entries: 37, checkpoints: 4, cosigned: 0, problem: None });
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
    assert_eq!(verify(&again.bundle().unwrap()).problem, None);
}

#[test]
fn verify_names_what_was_tampered_with() {
    let (_dir, log) = log_with(30);
    let clean = log.bundle().unwrap();
    let problem = |f: &dyn Fn(&mut Bundle)| {
        let mut b = clean.clone();
        f(&mut b);
        verify(&b).problem.unwrap_or_default()
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
    assert!(truncated.contains("truncated after entry 24"), "{truncated}");
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
    child.keep_cosignature(&c).unwrap();
    assert!(child.cosign_request(None).unwrap().is_none(), "nothing new to cosign");
    for i in 5..12 {
        child.append(&format!("test#{i}"), &event(i)).unwrap();
    }
    child.checkpoint(1_800_000_300).unwrap();
    // a proof from the wrong size is answered with the size the parent holds
    assert_eq!(cosign(&mut parent, &child, Some(3)).unwrap(), Message::CosignFrom(5));
    let Ok(Message::Cosigned(c)) = cosign(&mut parent, &child, None) else { panic!("extension") };
    child.keep_cosignature(&c).unwrap();
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
    assert!(refused.contains("does not extend the last one cosigned"), "{refused}");
    assert_eq!(parent.evidence().unwrap().len(), 1);
    let logged = parent.list(&Filter { kind: Some("equivocation".into()), ..Filter::default() }).unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(verify(&parent.bundle().unwrap()).problem, None, "the parent's own log stays valid");
    // the child's bundle carries the parent's cosignatures, which verify offline
    let mut b = child.bundle().unwrap();
    assert_eq!(verify(&b).cosigned, 2);
    b.cosignatures[1].signature = b.cosignatures[0].signature.clone();
    assert!(verify(&b).problem.unwrap().contains("cosignature by 630000/root of checkpoint 12 does not verify"));
    drop(child_dir);
}

/// The test vector of docs/auditor-guide.md (computed there with an
/// independent implementation) gives the same leaves, root and signature here.
#[test]
fn the_auditor_guide_test_vector_holds() {
    let guide = include_str!("../../../docs/auditor-guide.md");
    let at = guide.find("## Appendix A").unwrap();
    let block = &guide[at..];
    let start = block.find("```\n").unwrap() + 4;
    let end = start + block[start..].find("```").unwrap();
    let entries: Vec<&str> = block[start..end].lines().collect();
    assert_eq!(entries.len(), 3);
    for line in &entries {
        let entry: Entry = serde_json::from_str(line).unwrap();
        assert_eq!(&serde_json::to_string(&entry).unwrap(), line, "this hub writes exactly these bytes");
    }
    let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e.as_bytes())).collect();
    assert_eq!(hex(&leaves[0]), "3cc377892e5b8773c114d4d101ee8b3e61fb33eff16fd2985c03c427b0ef44c0");
    assert_eq!(hex(&leaves[2]), "41e89a8c949e30f78f54014c199bb2bc0e953576e4180008503593207e2ee45b");
    let root = hex(&merkle::root(&leaves));
    assert_eq!(root, "3b0ab8a36cc716681a1aac200e74d113522df68dc319dc7f7a42fab5999a800a");
    let seed: Vec<u8> = (0u8..32).collect();
    let key = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    assert_eq!(hex(key.public_key().as_ref()), "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
    let note = Checkpoint::note("630000/hub", 3, &root, 1_795_767_302);
    assert_eq!(note.len(), 112);
    assert_eq!(
        hex(key.sign(note.as_bytes()).as_ref()),
        "45d4fe1cd7c0c6c395936fd3510db5ea94a48ee5a1c52a232f1483c2848da6407e882d9966687e51b242c8ca213dabc9902096358e498267fc2b110b93c6ca0b"
    );
    // and the bundle of these entries and that checkpoint verifies
    let bundle = Bundle {
        origin: "630000/hub".into(),
        public_key: hex(key.public_key().as_ref()),
        entries: entries.iter().map(|e| (*e).to_owned()).collect(),
        checkpoints: vec![Checkpoint {
            origin: "630000/hub".into(),
            size: 3,
            root,
            at: 1_795_767_302,
            signature: hex(key.sign(note.as_bytes()).as_ref()),
        }],
        cosignatures: vec![],
    };
    assert_eq!(verify(&bundle).problem, None);
}
