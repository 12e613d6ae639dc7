use super::*;
use gdx_common::data::{Change, Column, ResourceCode, Value};

fn cs(seq: u64, changes: Vec<Change>, extra_col: bool) -> Changeset {
    let mut columns = vec![
        Column { name: "id".into(), decl_type: "TEXT".into() },
        Column { name: "name".into(), decl_type: "TEXT".into() },
    ];
    if extra_col {
        columns.push(Column { name: "age".into(), decl_type: "INTEGER".into() });
    }
    Changeset {
        origin: NodeId::parse("632522/gongan").unwrap(),
        resource: ResourceCode::parse("hukou").unwrap(),
        seq,
        epoch: 7,
        columns,
        key: vec![0],
        changes,
        created_at: 0,
    }
}

fn t(s: &str) -> Value {
    Value::Text(s.into())
}

/// A vault folder that cannot be made (a full disk, a file in the way)
/// is this hub's trouble, to be retried: never a refusal of the changeset.
#[test]
fn a_folder_that_cannot_be_made_is_not_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vaults"), b"in the way").unwrap();
    let v = Vaults::new(dir.path());
    let err = v.apply(&cs(1, vec![Change::Upsert(vec![t("1"), t("a")])], false), &[1; 32], None, 10).unwrap_err();
    assert!(matches!(err, VaultError::Folder { .. }), "{err:?}");
}

/// Beyond the cap the least recently used vault is closed, never one in use.
#[test]
fn the_least_recently_used_idle_vault_is_closed() {
    let mut open = OpenVaults::default();
    let node = |i: usize| NodeId::parse(&format!("630000/org{i}")).unwrap();
    let conn = || Arc::new(Mutex::new(Connection::open_in_memory().unwrap()));
    for i in 0..4 {
        open.conns.insert(node(i), OpenVault { conn: conn(), used: i as u64, cooled: false });
    }
    // org0 is the oldest but in use
    let in_use = open.conns[&node(0)].conn.clone();
    assert_eq!(open.evict(2).len(), 2);
    let mut left: Vec<String> = open.conns.keys().map(|n| n.to_string()).collect();
    left.sort();
    assert_eq!(left, ["630000/org0", "630000/org3"]);
    // all in use: nothing more can close
    let _also = open.conns[&node(3)].conn.clone();
    assert!(open.evict(0).is_empty());
    drop(in_use);
    assert_eq!(open.evict(1).len(), 1);
    assert_eq!(open.conns.keys().next().unwrap().to_string(), "630000/org3");
}

/// More vaults than stay open, and vaults gone cold: each is closed or
/// gives its cache back, is opened again as used, and nothing is lost.
#[test]
fn more_vaults_than_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = Vaults::new(dir.path());
    v.max_open = 300;
    let n = v.max_open + 8;
    let apply = |org: usize, seq: u64| {
        let mut c = cs(seq, vec![Change::Upsert(vec![t("1"), t(&format!("r{seq}"))])], false);
        c.origin = NodeId::parse(&format!("630000/org{org}")).unwrap();
        assert_eq!(v.apply(&c, &[seq as u8; 32], None, 10).unwrap(), Applied::Applied);
    };
    (0..n).for_each(|i| apply(i, 1));
    // one busy vault while the others cool
    (2..(3 * HOT)).for_each(|seq| apply(0, seq));
    {
        let open = v.open.lock().unwrap();
        assert!(open.conns.len() <= v.max_open);
        assert!(open.conns.values().filter(|o| o.cooled).count() > 200);
        assert!(!open.conns[&NodeId::parse("630000/org0").unwrap()].cooled);
    }
    (1..n).for_each(|i| apply(i, 2));
    v.synced_blocking(v.ticket());
    for (org, last) in [(0, 3 * HOT - 1), (1, 2), (n - 1, 2)] {
        let s = summaries(&dir.path().join("vaults"), &NodeId::parse(&format!("630000/org{org}")).unwrap());
        assert_eq!((s[0].rows, s[0].last_seq as u64), (1, last));
    }
}

#[test]
fn exactly_once_with_duplicates_gaps_and_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vaults::new(dir.path());
    let up = |id: &str, name: &str| Change::Upsert(vec![t(id), t(name)]);
    assert_eq!(v.apply(&cs(1, vec![up("2", "b"), up("1", "a")], false), &[1; 32], None, 10).unwrap(), Applied::Applied);
    assert_eq!(v.apply(&cs(1, vec![up("3", "c")], false), &[1; 32], None, 11).unwrap(), Applied::Duplicate);
    assert_eq!(v.apply(&cs(3, vec![up("3", "c")], false), &[3; 32], None, 11).unwrap(), Applied::Gap { expected: 2 });
    let with_age =
        cs(2, vec![Change::Upsert(vec![t("1"), t("A"), Value::Integer(30)]), Change::Delete(vec![t("2")])], true);
    assert_eq!(v.apply(&with_age, &[2; 32], None, 12).unwrap(), Applied::Applied);
    let node = NodeId::parse("632522/gongan").unwrap();
    let s = summaries(&dir.path().join("vaults"), &node);
    assert_eq!((s[0].rows, s[0].last_seq, s[0].updated_at), (1, 2, 12));
    let conn = Connection::open(v.path(&node)).unwrap();
    let row: (String, i64) =
        conn.query_row("SELECT name, age FROM hukou WHERE id = '1'", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(row, ("A".into(), 30));
    // a different changeset under a used number: refused
    let e = v.apply(&cs(2, vec![up("5", "e")], false), &[9; 32], None, 13).unwrap_err().to_string();
    assert!(e.contains("restored from an older copy"), "{e}");
    // a new epoch starting at 1 replaces the contents
    let mut reset = cs(1, vec![up("9", "z")], false);
    reset.epoch = 8;
    assert_eq!(v.apply(&reset, &[1; 32], None, 13).unwrap(), Applied::Applied);
    assert_eq!(summaries(&dir.path().join("vaults"), &node)[0].rows, 1);
    let mut late = cs(3, vec![up("8", "y")], false);
    late.epoch = 9;
    assert!(v.apply(&late, &[1; 32], None, 14).is_err());
}
