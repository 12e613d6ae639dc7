//! End-to-end tests of extract sync: SQLite and CSV sources into the
//! provider's vault at the hub, incremental changes, quarantine, schema
//! drift, duplicates and gaps, and SIGKILL at random points.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use gdx_common::NodeId;
use gdx_common::data::{Change, Changeset, Column, ResourceCode, Value, encode_changeset};
use gdx_common::wire::{self, Message, SignedChangeset};
use gdx_tests::rawclient;
use gdx_tests::{Agent, Hub, Proc, rows_now, table_checksum, vault, wait_until};

const NODE: &str = "630000/gongan";
const COLS: &[&str] = &["id", "name", "age"];

fn setup() -> (Hub, Agent, tempfile::TempDir) {
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token(NODE, "1h")).ok();
    (hub, agent, tempfile::tempdir().unwrap())
}

fn make_people(db: &Path, n: i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT, age INTEGER)").unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for i in 0..n {
        tx.execute(
            "INSERT INTO people VALUES (?1, ?2, ?3)",
            rusqlite::params![format!("{i:08}"), format!("才让{i}"), i % 90],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn sql(db: &Path, statements: &str) {
    rusqlite::Connection::open(db).unwrap().execute_batch(statements).unwrap();
}

fn sqlite_resource(code: &str, db: &Path) -> String {
    format!(
        "[[resource]]\ncode = \"{code}\"\nkey = [\"id\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"people\" }}",
        db.display()
    )
}

fn csv_resource(code: &str, dir: &Path, key: &str, encoding: &str) -> String {
    format!(
        "[[resource]]\ncode = \"{code}\"\nkey = [\"{key}\"]\nsource = {{ kind = \"csv\", dir = \"{}\", encoding = \"{encoding}\" }}",
        dir.display()
    )
}

fn same(hub: &Hub, source: &Path, table: &str, resource: &str, cols: &[&str]) {
    assert_eq!(
        table_checksum(source, table, cols),
        table_checksum(&vault(hub, NODE), resource, cols),
        "vault differs from source"
    );
}

#[test]
fn sqlite_initial_then_only_changes_travel() {
    gdx_tests::files_only("it checks the vault folder's mode");
    let (hub, agent, tmp) = setup();
    let db = tmp.path().join("hukou.db");
    make_people(&db, 12_345);
    agent.add_config(&sqlite_resource("hukou", &db));

    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["resources"][0]["inserted"], 12_345);
    assert_eq!(out["sent_rows"], 12_345);
    assert_eq!(out["sent_changesets"], 3, "12 345 rows are cut into changesets of at most 5 000");
    same(&hub, &db, "people", "hukou", COLS);

    sql(
        &db,
        "INSERT INTO people VALUES ('x1', '马福祥', 40), ('x2', '韩撒拉', 41);
         UPDATE people SET age = age + 1 WHERE id IN ('00000001', '00000002', '00000003');
         DELETE FROM people WHERE id IN ('00000010', '00000011');",
    );
    let (code, out, _) = agent.sync(&[]);
    assert_eq!(code, 0);
    let r = &out["resources"][0];
    assert_eq!((r["inserted"].as_u64(), r["updated"].as_u64(), r["deleted"].as_u64()), (Some(2), Some(3), Some(2)));
    assert_eq!(out["sent_rows"], 7, "only the changed rows travel");
    same(&hub, &db, "people", "hukou", COLS);

    // nothing changed: nothing travels
    let (_, out, _) = agent.sync(&[]);
    assert_eq!(out["sent_rows"], 0);

    // the hub is down: the change waits in the outbox, the exit code says so
    let mut hub = hub;
    hub.stop();
    sql(&db, "UPDATE people SET name = '离线' WHERE id = '00000005';");
    let (code, out, err) = agent.sync(&["--timeout", "2s"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the hub") && err.contains("1 changesets (1 rows) wait in the outbox"), "{err}");
    assert_eq!(out["waiting"]["rows"], 1);
    assert!(agent.cmd(&["status"]).ok().contains("waiting to send 1 changesets (1 rows)"));
    hub.start();
    let (code, out, _) = agent.sync(&[]);
    assert_eq!(code, 0);
    assert_eq!(out["sent_rows"], 1);
    same(&hub, &db, "people", "hukou", COLS);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(hub.dir.path().join("vaults")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the vault directory is private");
    }

    let nodes = hub.nodes();
    let res = &nodes[0]["resources"][0];
    assert_eq!(
        (res["resource"].as_str(), res["rows"].as_i64(), res["last_seq"].as_i64()),
        (Some("hukou"), Some(12_345), Some(5))
    );
    let status = agent.cmd(&["status"]).ok();
    assert!(status.contains("resource hukou:") && status.contains("rows 12345"), "{status}");
    assert!(hub.cmd(&["nodes"]).ok().contains("hukou"));
}

#[test]
fn csv_in_utf8_with_bom_and_in_gbk() {
    gdx_tests::files_only("it reads the vault file through one connection kept open");
    let (hub, agent, tmp) = setup();
    let utf = tmp.path().join("utf");
    let gbk = tmp.path().join("gbk");
    std::fs::create_dir_all(&utf).unwrap();
    std::fs::create_dir_all(&gbk).unwrap();
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice("证件号码,姓名,住址\r\n632522199001011234,卓玛,\"同德县\r\n尕巴松多镇\"\r\n632522199202021111,\"马, 明\",河北乡\r\n".as_bytes());
    std::fs::write(utf.join("a.csv"), bytes).unwrap();
    let (gbk_bytes, _, bad) =
        encoding_rs::GBK.encode("证件号码,姓名\n630102198503031234,韩梅梅\n630102198504041234,\"拉毛\"\"才让\"\"\"\n");
    assert!(!bad);
    std::fs::write(gbk.join("b.csv"), gbk_bytes).unwrap();
    let (more, _, _) = encoding_rs::GBK.encode("证件号码,姓名\n632801197001011234,乌兰\n");
    std::fs::write(gbk.join("c.csv"), more).unwrap();
    agent.add_config(&csv_resource("dibao", &utf, "证件号码", "auto"));
    agent.add_config(&csv_resource("yibao", &gbk, "证件号码", "auto"));

    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["sent_rows"], 5);
    let v = rusqlite::Connection::open(vault(&hub, NODE)).unwrap();
    let addr: String =
        v.query_row("SELECT 住址 FROM dibao WHERE 证件号码 = '632522199001011234'", [], |r| r.get(0)).unwrap();
    assert_eq!(addr, "同德县\r\n尕巴松多镇");
    let name: String =
        v.query_row("SELECT 姓名 FROM dibao WHERE 证件号码 = '632522199202021111'", [], |r| r.get(0)).unwrap();
    assert_eq!(name, "马, 明");
    let name: String =
        v.query_row("SELECT 姓名 FROM yibao WHERE 证件号码 = '630102198504041234'", [], |r| r.get(0)).unwrap();
    assert_eq!(name, "拉毛\"才让\"");

    // a file set aside as a whole (bad header) is not taken for deleted rows
    std::fs::write(gbk.join("c.csv"), "证件号码,姓 名\n632801197001011234,乌兰\n").unwrap();
    let (_, out, _) = agent.sync(&["--resource", "yibao"]);
    assert_eq!(
        (out["resources"][0]["deleted"].as_u64(), out["resources"][0]["quarantined"].as_u64()),
        (Some(0), Some(1))
    );
    let count = || -> i64 { v.query_row("SELECT count(*) FROM yibao", [], |r| r.get(0)).unwrap() };
    assert_eq!(count(), 3);

    // a file removed from the drop folder deletes its rows
    std::fs::remove_file(gbk.join("c.csv")).unwrap();
    let (_, out, _) = agent.sync(&["--resource", "yibao"]);
    assert_eq!(out["resources"][0]["deleted"], 1);
    assert_eq!(count(), 2);
    // an empty folder is "nothing dropped yet"; a header-only file empties the resource
    std::fs::remove_file(gbk.join("b.csv")).unwrap();
    let (_, out, _) = agent.sync(&["--resource", "yibao"]);
    assert_eq!(out["resources"][0]["deleted"], 0);
    std::fs::write(gbk.join("b.csv"), "证件号码,姓名\n").unwrap();
    let (_, out, _) = agent.sync(&["--resource", "yibao"]);
    assert_eq!(out["resources"][0]["deleted"], 2);
    assert_eq!(count(), 0);
}

#[test]
fn bad_input_is_quarantined_and_good_rows_still_sync() {
    let (hub, agent, tmp) = setup();
    let drop = tmp.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let mut rows = b"id,name\n1,good\n,null key\n2,good two\n2,duplicate key\n3,\"broken\"quote\n4,too,many\n".to_vec();
    rows.extend_from_slice(b"5,\xff\xfe not utf-8\n6,good six\n");
    std::fs::write(drop.join("a.csv"), rows).unwrap();
    std::fs::write(drop.join("b.csv"), "id,\"na;me\"\n7,x\n").unwrap();
    std::fs::write(tmp.path().join("secret.csv"), "id,name\n99,outside\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.path().join("secret.csv"), drop.join("escape.csv")).unwrap();
    agent.add_config(&csv_resource("dibao", &drop, "id", "utf-8"));

    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "quarantine does not fail the sync: {err}");
    assert_eq!(out["resources"][0]["inserted"], 3);
    let v = rusqlite::Connection::open(vault(&hub, NODE)).unwrap();
    let ids: Vec<String> = v
        .prepare("SELECT id FROM dibao ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, ["1", "2", "6"]);
    let name: String = v.query_row("SELECT name FROM dibao WHERE id = '2'", [], |r| r.get(0)).unwrap();
    assert_eq!(name, "good two", "the first of two rows with the same key is kept");

    let status = agent.cmd(&["status"]).ok();
    for needle in [
        "quarantine: 7 rows or files",
        "a.csv line 3: the key column id is empty",
        "a.csv line 5: duplicate key: the same key was first seen at a.csv line 4",
        "a.csv line 6: malformed CSV: text after a closing quote",
        "a.csv line 7: malformed CSV: 3 fields, the header has 2",
        "a.csv line 8: bytes that are not valid UTF-8",
        "b.csv: column name \"na;me\" is not a plain identifier",
        "escape.csv: the file escapes the drop folder",
    ] {
        assert!(status.contains(needle), "status lacks {needle:?}:\n{status}");
    }
    let json = agent.status();
    assert_eq!(json["resources"][0]["quarantined"], 7);
    assert!(!status.contains("outside"), "content from outside the drop folder was read");
}

#[test]
fn schema_drift_adds_columns_and_pauses_on_drops() {
    gdx_tests::files_only("it reads the vault file through one connection kept open");
    let (hub, agent, tmp) = setup();
    let a = tmp.path().join("a.db");
    let b = tmp.path().join("b.db");
    make_people(&a, 100);
    make_people(&b, 50);
    agent.add_config(&sqlite_resource("hukou", &a));
    agent.add_config(&sqlite_resource("minzu", &b));
    assert_eq!(agent.sync(&[]).0, 0);

    // a new column flows through
    sql(&a, "ALTER TABLE people ADD COLUMN minzu TEXT; UPDATE people SET minzu = '藏族' WHERE id = '00000007';");
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    let v = rusqlite::Connection::open(vault(&hub, NODE)).unwrap();
    let m: String = v.query_row("SELECT minzu FROM hukou WHERE id = '00000007'", [], |r| r.get(0)).unwrap();
    assert_eq!(m, "藏族");
    same(&hub, &a, "people", "hukou", &["id", "name", "age", "minzu"]);

    // a dropped column pauses that resource only
    sql(&a, "ALTER TABLE people DROP COLUMN age; UPDATE people SET name = 'x' WHERE id = '00000001';");
    sql(&b, "UPDATE people SET name = '更新' WHERE id = '00000001';");
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 1);
    assert!(err.contains("paused by a schema change"), "{err}");
    let paused = out["resources"][0]["paused"].as_str().unwrap();
    assert!(paused.contains("column \"age\" is no longer in the source"), "{paused}");
    assert_eq!(out["resources"][1]["updated"], 1, "the other resource keeps syncing");
    let name: String = v.query_row("SELECT name FROM minzu WHERE id = '00000001'", [], |r| r.get(0)).unwrap();
    assert_eq!(name, "更新");
    assert!(agent.cmd(&["status"]).ok().contains("PAUSED: column \"age\" is no longer in the source"));
    let doctor = agent.cmd(&["doctor", "--timeout", "5s"]);
    assert!(doctor.stdout.contains("FAIL  resource     hukou is paused"), "{}", doctor.stdout);

    // a retyped column pauses too; accepting the new shape resumes
    let (code, out, _) = agent.sync(&["--resource", "hukou", "--accept-schema"]);
    assert_eq!(code, 0);
    assert_eq!(out["resources"][0]["updated"], 100, "every row travels again under the new shape");
    let name: String = v.query_row("SELECT name FROM hukou WHERE id = '00000001'", [], |r| r.get(0)).unwrap();
    assert_eq!(name, "x");

    // a source that cannot be read is one clear error; the others sync
    agent.add_config(&format!(
        "[[resource]]\ncode = \"gone\"\nkey = [\"id\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"people\" }}",
        tmp.path().join("missing.db").display()
    ));
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 1);
    assert!(err.contains("resource gone: cannot open") && err.contains("no such file"), "{err}");
    assert_eq!(out["resources"].as_array().unwrap().len(), 2);
}

/// A resource's saved digests are compared by the kind `state.db` records
/// for it: the newest for a resource first synced now, the first kind kept
/// by one synced before (its digests were made so) for as long as it holds
/// saved rows.
#[test]
fn saved_digests_keep_their_kind() {
    let (hub, agent, tmp) = setup();
    let db = tmp.path().join("dengji.db");
    // an INTEGER PRIMARY KEY is read straight in key order, beside the saved digests
    sql(
        &db,
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, age INTEGER);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
         INSERT INTO people SELECT i, '卓玛' || i, i % 90 FROM n;",
    );
    agent.add_config(&sqlite_resource("dengji", &db));
    let state = agent.dir.path().join("state.db");
    let kind = || -> i64 {
        rusqlite::Connection::open(&state)
            .unwrap()
            .query_row("SELECT digest FROM resources WHERE code = 'dengji'", [], |r| r.get(0))
            .unwrap()
    };
    let sync = |what: &str| {
        let (code, out, err) = agent.sync(&[]);
        assert_eq!(code, 0, "{err}");
        let r = &out["resources"][0];
        let counts = [&r["inserted"], &r["updated"], &r["deleted"]].map(|v| v.as_u64().unwrap());
        println!("{what}: {counts:?}");
        counts
    };
    assert_eq!(sync("first"), [300, 0, 0]);
    assert_eq!(kind(), 2, "a first sync takes the newest kind");

    // as if first synced before the newest kind: the rows' digests do not
    // match the first kind's, so every row is sent again (the hub applies
    // them as upserts), and then matches
    sql(&state, "UPDATE resources SET digest = 1 WHERE code = 'dengji'");
    assert_eq!(sync("under the first kind"), [0, 300, 0]);
    assert_eq!(kind(), 1, "a resource holding saved rows keeps its kind");
    assert_eq!(sync("unchanged"), [0, 0, 0]);
    sql(&db, "UPDATE people SET age = 99 WHERE id = 7; DELETE FROM people WHERE id = 8;");
    assert_eq!(sync("one changed, one gone"), [0, 1, 1]);
    same(&hub, &db, "people", "dengji", COLS);

    // every row gone: the resource holds no saved rows, and its next rows take the newest kind
    sql(&db, "DELETE FROM people;");
    assert_eq!(sync("emptied"), [0, 0, 299]);
    sql(&db, "INSERT INTO people VALUES (1, '才让', 30), (2, '拉毛', 31);");
    assert_eq!(sync("refilled"), [2, 0, 0]);
    assert_eq!(kind(), 2);
    assert_eq!(sync("unchanged again"), [0, 0, 0]);
    same(&hub, &db, "people", "dengji", COLS);
}

#[test]
fn oversized_rows_lost_state_and_restored_state() {
    let (hub, agent, tmp) = setup();
    let a = tmp.path().join("a.db");
    let b = tmp.path().join("b.db");
    make_people(&a, 30);
    make_people(&b, 30);
    // a 5 MiB value cannot travel; its neighbours do
    let c = rusqlite::Connection::open(&a).unwrap();
    c.execute("UPDATE people SET name = ?1 WHERE id = '00000003'", ["藏".repeat(2 << 20)]).unwrap();
    agent.add_config(&sqlite_resource("hukou", &a));
    agent.add_config(&sqlite_resource("minzu", &b));
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["resources"][0]["inserted"], 29);
    assert!(agent.cmd(&["status"]).ok().contains("row 4: the row is larger than 4 MiB"));

    // state.db lost: the agent starts a new epoch and sends everything; the
    // hub replaces the resource's contents, so nothing stale survives
    let state_files = ["state.db", "state.db-wal", "state.db-shm"];
    for f in state_files {
        let _ = std::fs::remove_file(agent.dir.path().join(f));
    }
    sql(&b, "DELETE FROM people WHERE id = '00000001';");
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    same(&hub, &b, "people", "minzu", COLS);

    // state.db restored from an older copy: its numbers were used already;
    // the hub refuses the different changeset instead of calling it a
    // duplicate, and uploads of that resource are held
    let backup = tmp.path().join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    for f in state_files {
        let _ = std::fs::copy(agent.dir.path().join(f), backup.join(f));
    }
    sql(&b, "UPDATE people SET name = '一' WHERE id = '00000002';");
    assert_eq!(agent.sync(&[]).0, 0);
    for f in state_files {
        let _ = std::fs::remove_file(agent.dir.path().join(f));
        let _ = std::fs::copy(backup.join(f), agent.dir.path().join(f));
    }
    sql(&b, "UPDATE people SET name = '二' WHERE id = '00000003';");
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 1);
    assert!(err.contains("restored from an older copy") && err.contains("uploads of that resource are held"), "{err}");
    let status = agent.cmd(&["status"]).ok();
    assert!(status.contains("HELD: the hub rejected changeset"), "{status}");
    let v = rusqlite::Connection::open(vault(&hub, NODE)).unwrap();
    let name: String = v.query_row("SELECT name FROM minzu WHERE id = '00000002'", [], |r| r.get(0)).unwrap();
    assert_eq!(name, "一", "the vault kept what it had");
    drop(v);
    // every later sync says so; the documented remedy starts the resource over and it converges
    let (code, _, err) = agent.sync(&[]);
    assert!(code == 1 && err.contains("minzu: uploads are held since the hub rejected"), "{err}");
    let (code, out, err) = agent.sync(&["--resource", "minzu", "--accept-schema"]);
    assert_eq!(code, 0, "{out} {err}");
    same(&hub, &b, "people", "minzu", COLS);
}

fn signed(agent: &Agent, seq: u64, rows: &[(&str, &str)], tamper: bool) -> Vec<u8> {
    let key = agent.key();
    let chain = gdx_certs::pki::pem_blocks(
        &std::fs::read_to_string(agent.dir.path().join("agent.crt")).unwrap(),
        "CERTIFICATE",
    );
    let cs = Changeset {
        origin: NodeId::parse(NODE).unwrap(),
        resource: ResourceCode::parse("manual").unwrap(),
        seq,
        epoch: 42,
        columns: vec![
            Column { name: "id".into(), decl_type: "TEXT".into() },
            Column { name: "v".into(), decl_type: String::new() },
        ],
        key: vec![0],
        changes: rows
            .iter()
            .map(|(k, v)| Change::Upsert(vec![Value::Text((*k).into()), Value::Text((*v).into())]))
            .collect(),
        created_at: 0,
    };
    let body = encode_changeset(&cs).unwrap();
    let signature = gdx_certs::pki::sign(&key, &body).unwrap();
    let mut env = SignedChangeset {
        origin: cs.origin,
        resource: cs.resource,
        seq,
        rows: rows.len() as u32,
        body,
        signature,
        signer_chain: chain,
    };
    if tamper {
        let other = encode_changeset(&Changeset {
            changes: vec![Change::Upsert(vec![Value::Text("1".into()), Value::Text("forged".into())])],
            ..decode(&env.body)
        })
        .unwrap();
        env.body = other;
    }
    wire::encode_frame(&Message::Upload(env)).unwrap()
}

fn decode(body: &[u8]) -> Changeset {
    gdx_common::data::decode_changeset(body).unwrap()
}

#[test]
fn duplicates_are_acknowledged_gaps_refused_and_tampering_rejected() {
    let (hub, agent, _tmp) = setup();
    let root = std::fs::read_to_string(hub.dir.path().join("ca.crt")).unwrap();
    let answers = rawclient::upload(
        &hub.addr,
        &root,
        agent.dir.path(),
        NODE,
        vec![
            signed(&agent, 1, &[("1", "a")], false),
            signed(&agent, 1, &[("1", "a")], false),
            signed(&agent, 1, &[("1", "changed")], false),
            signed(&agent, 3, &[("3", "c")], false),
            signed(&agent, 2, &[("1", "b")], true),
            signed(&agent, 2, &[("2", "b")], false),
        ],
    );
    assert!(matches!(&answers[0], Message::Ack(a) if a.seq == 1 && !a.duplicate), "{:?}", answers[0]);
    assert!(matches!(&answers[1], Message::Ack(a) if a.seq == 1 && a.duplicate), "{:?}", answers[1]);
    // another changeset under a used number is not a duplicate
    match &answers[2] {
        Message::Rejected(r) => assert!(r.reason.contains("differs from the one applied before"), "{}", r.reason),
        other => panic!("a different changeset under a used number was accepted: {other:?}"),
    }
    assert!(matches!(&answers[3], Message::Gap(g) if g.got == 3 && g.expected == 2), "{:?}", answers[3]);
    match &answers[4] {
        Message::Rejected(r) => assert!(r.reason.contains("altered after 630000/gongan signed it"), "{}", r.reason),
        other => panic!("tampered changeset accepted: {other:?}"),
    }
    assert!(matches!(&answers[5], Message::Ack(a) if a.seq == 2), "{:?}", answers[5]);
    let v = rusqlite::Connection::open(vault(&hub, NODE)).unwrap();
    let rows: Vec<(String, String)> = v
        .prepare("SELECT id, v FROM manual ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [("1".to_owned(), "a".to_owned()), ("2".to_owned(), "b".to_owned())],
        "applied once, nothing forged"
    );
}

#[test]
fn daemon_syncs_a_csv_dropped_into_the_folder() {
    let (hub, mut agent, tmp) = setup();
    let drop = tmp.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    agent.add_config(&format!(
        "[[resource]]\ncode = \"dibao\"\nkey = [\"id\"]\nschedule = \"1d\"\nsource = {{ kind = \"csv\", dir = \"{}\" }}",
        drop.display()
    ));
    agent.start();
    wait_until(Duration::from_secs(20), "the agent connects", || agent.connected());
    // written aside, then renamed in, as a drop should be
    std::fs::write(drop.join("new.csv.part"), "id,name\n1,卓玛\n2,才让\n").unwrap();
    std::fs::rename(drop.join("new.csv.part"), drop.join("new.csv")).unwrap();
    let v = vault(&hub, NODE);
    wait_until(Duration::from_secs(20), "the dropped file reaches the vault", || rows_now(&v, "dibao") == 2);
}

/// At 24 random points during a large sync, SIGKILL the agent or the hub,
/// restart, and carry on; the vault must end equal to the source.
#[test]
fn kill_test_vault_equals_source_after_sigkills() {
    let (mut hub, agent, tmp) = setup();
    let db = tmp.path().join("big.db");
    make_people(&db, 40_000);
    agent.add_config(&sqlite_resource("hukou", &db));
    let mut rng: u64 = 0x5eed_1234_abcd_9876 ^ u64::from(std::process::id());
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut kills = 0;
    for round in 0..24 {
        if round % 4 == 1 {
            // keep the source moving so later rounds have changes in flight
            let r = next() % 40_000;
            sql(
                &db,
                &format!(
                    "UPDATE people SET age = age + 1 WHERE id >= '{r:08}' AND id < '{:08}';
                 DELETE FROM people WHERE id = '{:08}';
                 INSERT OR REPLACE INTO people VALUES ('k{round}', '新{round}', {round});",
                    r + 3000,
                    (r + 7) % 40_000
                ),
            );
        }
        let mut sync =
            Proc::start("gdx-agent", &["--data", agent.data(), "sync"], tmp.path().join(format!("sync{round}.log")));
        std::thread::sleep(Duration::from_millis(next() % 900));
        if next() % 2 == 0 {
            sync.kill();
        } else {
            hub.stop();
            sync.kill();
            hub.start();
        }
        kills += 1;
    }
    assert!(kills >= 20);
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 0, "the final sync completes: {err}");
    same(&hub, &db, "people", "hukou", COLS);
    let (_, out, _) = agent.sync(&[]);
    assert_eq!(out["sent_rows"], 0, "nothing left to send");
}

/// Every shape of key a department table has syncs into the vault the
/// source holds, first in full and then by its changes: one integer (a
/// rowid table and a WITHOUT ROWID one), negative and large integers,
/// text stored out of key order, reals, composite keys mixing types, a
/// column mixing every type (whose encoded order is not bincode's), and
/// text that is not UTF-8 (read in an order that is not its keys', so the
/// agent reads it again by lookup).
#[test]
fn every_key_shape_syncs_to_the_same_vault() {
    gdx_tests::files_only("binary keys: a text column on PostgreSQL refuses bytes");
    let (hub, agent, tmp) = setup();
    let db = tmp.path().join("shapes.db");
    let n: i64 = 6_000;
    let tables: [(&str, &str, &[&str]); 8] = [
        ("int_key", "id INTEGER PRIMARY KEY, name TEXT, amt REAL", &["id"]),
        ("int_norowid", "id INTEGER PRIMARY KEY, name TEXT, amt REAL) WITHOUT ROWID; --", &["id"]),
        ("neg_key", "id INTEGER PRIMARY KEY, name TEXT, amt REAL", &["id"]),
        ("text_key", "id TEXT PRIMARY KEY, name TEXT, amt REAL", &["id"]),
        ("real_key", "id REAL PRIMARY KEY, name TEXT, amt REAL", &["id"]),
        ("comp_key", "region TEXT, id INTEGER, name TEXT, amt REAL, PRIMARY KEY (region, id)", &["region", "id"]),
        ("mixed_key", "id PRIMARY KEY, name TEXT, amt REAL", &["id"]),
        ("latin1_key", "id TEXT PRIMARY KEY, name TEXT, amt REAL", &["id"]),
    ];
    // the key of row i of each table; i runs over a shuffled range so
    // rowid order is not key order
    let key_sql = |table: &str, i: i64| -> String {
        match table {
            "int_key" | "int_norowid" => format!("{}", i * 7),
            "neg_key" => format!("{}", (i - n / 2) * 1_000_003 + if i % 3 == 0 { 1 << 53 } else { 0 }),
            "text_key" => format!("'{:06}-{}'", (i * 7919) % 1_000_003, i),
            "real_key" => format!("{}", (i as f64 - n as f64 / 2.0) / 8.0),
            "comp_key" => format!("'g{}', {}", i % 13, i - 200),
            "mixed_key" => match i % 5 {
                0 => format!("{}", i - 3_000),
                1 => format!("{}.5", i - 3_000),
                2 => format!("'t{i}'"),
                3 => format!("x'{i:06x}00'"),
                _ => format!("'{}'", 300 - i),
            },
            // SQLite sorts these texts by their bytes, the agent's keys put
            // the ones that are not UTF-8 (read as blobs) after the others
            _ if i % 2 == 0 => format!("CAST(x'{:04x}ff{:02x}' AS TEXT)", i, i % 251),
            _ => format!("'v{i}'"),
        }
    };
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for (table, columns, _) in &tables {
            tx.execute_batch(&format!("CREATE TABLE {table} ({columns})")).unwrap();
            for j in 0..n {
                let i = (j * 4_099) % n; // a permutation of 0..n
                let sql = format!("INSERT INTO {table} VALUES ({}, '名{i}', {})", key_sql(table, i), i as f64 * 1.5);
                tx.execute(&sql, []).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    for (table, _, key) in &tables {
        let key: Vec<String> = key.iter().map(|k| format!("\"{k}\"")).collect();
        agent.add_config(&format!(
            "[[resource]]\ncode = \"{table}\"\nkey = [{}]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"{table}\" }}",
            key.join(", "),
            db.display()
        ));
    }
    let check = |round: &str| {
        for (table, _, key) in &tables {
            let mut cols: Vec<&str> = key.to_vec();
            cols.extend(["name", "amt"].iter().filter(|c| !key.contains(c)));
            if *table == "latin1_key" {
                // not UTF-8: compared by count and by the bytes of the keys
                let keys = |path: &Path, t: &str| -> Vec<Vec<u8>> {
                    let c = rusqlite::Connection::open(path).unwrap();
                    let mut q = c.prepare(&format!("SELECT CAST(id AS BLOB) FROM \"{t}\" ORDER BY 1")).unwrap();
                    q.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
                };
                assert_eq!(keys(&db, table), keys(&vault(&hub, NODE), table), "{round}: {table}");
                continue;
            }
            assert_eq!(
                table_checksum(&db, table, &cols),
                table_checksum(&vault(&hub, NODE), table, &cols),
                "{round}: the vault of {table} differs from the source"
            );
        }
    };
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["sent_rows"], 8 * n, "every row of every table once");
    for r in out["resources"].as_array().unwrap() {
        assert_eq!((r["inserted"].as_i64(), r["quarantined"].as_i64()), (Some(n), Some(0)), "{r}");
    }
    check("first sync");

    // change some rows of each table: updates, deletions and new keys
    // between and around the old ones
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for (table, _, key) in &tables {
            let first = key[0];
            tx.execute_batch(&format!(
                "UPDATE {table} SET name = name || '改' WHERE rowid % 97 = 3;
                 DELETE FROM {table} WHERE rowid % 89 = 5;"
            ))
            .or_else(|_| {
                // WITHOUT ROWID: by key instead
                tx.execute_batch(&format!(
                    "UPDATE {table} SET name = name || '改' WHERE {first} % 97 = 3;
                     DELETE FROM {table} WHERE {first} % 89 = 5;"
                ))
            })
            .unwrap();
            for i in n..n + 50 {
                let sql = format!("INSERT INTO {table} VALUES ({}, '新{i}', 0.25)", key_sql(table, i));
                tx.execute(&sql, []).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    for r in out["resources"].as_array().unwrap() {
        assert_eq!(r["inserted"], 50, "{r}");
        assert!(r["updated"].as_i64() > Some(0) && r["deleted"].as_i64() > Some(0), "{r}");
    }
    check("after the changes");
    let (_, out, _) = agent.sync(&[]);
    assert_eq!(out["sent_rows"], 0, "nothing left to send");
}
