//! End-to-end tests of the agent's row map: a text-keyed SQLite table read
//! in rowid order beside the map of the last sync, through every change
//! that moves a row or its key (updates, deletions, inserts, a key changed
//! in place, a row deleted and inserted again, VACUUM renumbering rowids),
//! rows set aside, and maps that must not be trusted (stale after a kill,
//! emptied digests after `--accept-schema`).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use gdx_tests::{Agent, Hub, table_checksum, vault};

const NODE: &str = "630000/minzheng";
const COLS: &[&str] = &["id", "name", "note"];

fn setup() -> (Hub, Agent, tempfile::TempDir) {
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token(NODE, "1h")).ok();
    (hub, agent, tempfile::tempdir().unwrap())
}

/// The resource `code`: table `table` of `db`, keyed by `id`.
fn resource(code: &str, db: &Path, table: &str) -> String {
    format!(
        "[[resource]]\ncode = \"{code}\"\nkey = [\"id\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"{table}\" }}\n",
        db.display()
    )
}

fn sql(db: &Path, statements: &str) {
    rusqlite::Connection::open(db).unwrap().execute_batch(statements).unwrap();
}

/// The vault holds the source's rows with a key (`keyed`, a view).
fn same(hub: &Hub, db: &Path, round: &str) {
    let vault = vault(hub, NODE);
    assert_eq!(table_checksum(db, "keyed", COLS), table_checksum(&vault, "people", COLS), "{round}: vault differs");
}

/// One sync: its exit code checked, its resource's report returned.
fn sync(agent: &Agent, args: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let (code, out, err) = agent.sync(args);
    assert_eq!(code, 0, "{out} {err}");
    (out["resources"][0].clone(), out)
}

fn counts(r: &serde_json::Value) -> (u64, u64, u64) {
    (r["inserted"].as_u64().unwrap(), r["updated"].as_u64().unwrap(), r["deleted"].as_u64().unwrap())
}

#[test]
fn a_table_read_beside_its_row_map_syncs_exactly_through_every_move() {
    let (hub, agent, tmp) = setup();
    let db = tmp.path().join("people.db");
    let n: i64 = 20_000;
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT, note BLOB);
             CREATE VIEW keyed AS SELECT * FROM people WHERE id IS NOT NULL;",
        )
        .unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for j in 0..n {
            let i = (j * 7_919) % n; // keys out of rowid order
            tx.execute(
                "INSERT INTO people VALUES (?1, ?2, NULL)",
                rusqlite::params![format!("k{i:06}"), format!("名{i}")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    agent.add_config(&resource("people", &db, "people"));
    let map = Path::new(agent.data()).join("rowmap-people.bin");

    let (r, _) = sync(&agent, &[]);
    assert_eq!((r["read"].as_str(), r["inserted"].as_i64()), (Some("key_order"), Some(n)), "{r}");
    assert!(map.is_file(), "the first read in key order writes the map");
    same(&hub, &db, "first sync");

    // updates, deletions, new keys, a key changed in place (same rowid), a
    // row deleted and inserted again unchanged (new rowid), a null key
    sql(
        &db,
        "UPDATE people SET name = name || '改' WHERE rowid % 97 = 3;
         DELETE FROM people WHERE rowid % 89 = 5;
         INSERT INTO people VALUES ('a-new', '新', NULL), ('k999999', '新', NULL);
         UPDATE people SET id = 'moved-' || id WHERE rowid IN (10, 11);
         DELETE FROM people WHERE id = 'k000100';
         INSERT INTO people VALUES ('k000100', '名100', NULL);
         INSERT INTO people VALUES (NULL, '无号', NULL);",
    );
    let want_updated = (1..=n).filter(|r| r % 97 == 3 && r % 89 != 5).count() as u64;
    let want_deleted = (1..=n).filter(|r| r % 89 == 5).count() as u64 + 2;
    let (r, out) = sync(&agent, &[]);
    assert_eq!(r["read"], "row_map", "{r}");
    assert_eq!(counts(&r), (4, want_updated, want_deleted), "{r}");
    assert_eq!(r["quarantined"], 1, "the null key is set aside: {r}");
    assert_eq!(out["sent_rows"].as_u64(), Some(4 + want_updated + want_deleted), "only the changes travel");
    same(&hub, &db, "after the changes");

    // VACUUM renumbers every row: nothing is sent but what changed
    sql(&db, "VACUUM; UPDATE people SET name = '才让' WHERE id = 'k000007'; DELETE FROM people WHERE id IS NULL;");
    let (r, out) = sync(&agent, &[]);
    assert_eq!(
        (r["read"].as_str(), counts(&r), r["quarantined"].as_u64()),
        (Some("row_map"), (0, 1, 0), Some(0)),
        "{r}"
    );
    assert_eq!(out["sent_rows"], 1, "{out}");
    same(&hub, &db, "after VACUUM");

    // a row too large to send is set aside (its last version stays); once
    // deleted from the source it is deleted at the hub
    sql(&db, "UPDATE people SET note = zeroblob(5 * 1024 * 1024) WHERE id = 'k000008';");
    let (r, _) = sync(&agent, &[]);
    assert_eq!(
        (r["read"].as_str(), counts(&r), r["quarantined"].as_u64()),
        (Some("row_map"), (0, 0, 0), Some(1)),
        "{r}"
    );
    let (r, _) = sync(&agent, &[]);
    assert_eq!((counts(&r), r["quarantined"].as_u64()), ((0, 0, 0), Some(1)), "set aside again, not deleted: {r}");
    sql(&db, "DELETE FROM people WHERE id = 'k000008';");
    let (r, _) = sync(&agent, &[]);
    assert_eq!((r["read"].as_str(), counts(&r)), (Some("row_map"), (0, 0, 1)), "{r}");
    same(&hub, &db, "after the large row");

    // a map older than the last changeset (a kill before its rename) is not
    // trusted: the table is read in key order, and the map written again
    let old_map = std::fs::read(&map).unwrap();
    sql(&db, "UPDATE people SET name = '卓玛' WHERE id = 'k000009';");
    let (r, _) = sync(&agent, &[]);
    assert_eq!((r["read"].as_str(), counts(&r)), (Some("row_map"), (0, 1, 0)), "{r}");
    std::fs::write(&map, old_map).unwrap();
    sql(&db, "UPDATE people SET name = '拉毛' WHERE id = 'k000009'; DELETE FROM people WHERE id = 'k000012';");
    let (r, _) = sync(&agent, &[]);
    assert_eq!((r["read"].as_str(), counts(&r)), (Some("key_order"), (0, 1, 1)), "{r}");
    same(&hub, &db, "after a stale map");
    let (r, out) = sync(&agent, &[]);
    assert_eq!((r["read"].as_str(), out["sent_rows"].as_u64()), (Some("row_map"), Some(0)), "{r}");

    // --accept-schema sends every row again: the map, vouching for the old
    // digests, is dropped
    let rows = r["scanned"].as_u64().unwrap();
    let (r, out) = sync(&agent, &["--resource", "people", "--accept-schema"]);
    assert_eq!((r["read"].as_str(), out["sent_rows"].as_u64()), (Some("key_order"), Some(rows)), "{r}");
    same(&hub, &db, "after --accept-schema");
}

#[test]
fn tables_without_a_unique_key_or_a_rowid_keep_no_map() {
    let (_hub, agent, tmp) = setup();
    let db = tmp.path().join("t.db");
    sql(
        &db,
        "CREATE TABLE plain (id TEXT, name TEXT, note BLOB);
         CREATE INDEX plain_id ON plain (id);
         CREATE TABLE norowid (id TEXT PRIMARY KEY, name TEXT, note BLOB) WITHOUT ROWID;
         CREATE TABLE intkey (id INTEGER PRIMARY KEY, name TEXT, note BLOB);
         INSERT INTO plain VALUES ('b', '1', NULL), ('a', '2', NULL), ('a', '3', NULL);
         INSERT INTO norowid VALUES ('b', '1', NULL), ('a', '2', NULL);
         INSERT INTO intkey VALUES (2, '1', NULL), (1, '2', NULL);",
    );
    for table in ["plain", "norowid", "intkey"] {
        agent.add_config(&resource(table, &db, table));
    }
    for round in 0..2 {
        let (_, out) = sync(&agent, &[]);
        for r in out["resources"].as_array().unwrap() {
            assert_eq!(r["read"], "key_order", "round {round}: {r}");
        }
        let plain = out["resources"].as_array().unwrap().iter().find(|r| r["resource"] == "plain").unwrap().clone();
        assert_eq!(plain["quarantined"], 1, "the duplicate key is still found: {plain}");
    }
    for table in ["plain", "norowid", "intkey"] {
        assert!(!Path::new(agent.data()).join(format!("rowmap-{table}.bin")).exists(), "{table}");
    }
}

/// A BLOB key and a TEXT key of the same bytes that are not UTF-8 are two
/// rows to SQLite's unique index but one key to the agent: the row read
/// beside the map is found to clash, and the table is read again in its
/// own order, which sets the second row aside.
#[test]
fn two_stored_values_with_one_key_are_caught_beside_the_map() {
    gdx_tests::files_only("binary keys: a text column on PostgreSQL refuses bytes");
    let (hub, agent, tmp) = setup();
    let db = tmp.path().join("t.db");
    sql(
        &db,
        "CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT, note BLOB);
         INSERT INTO people VALUES ('b', '1', NULL), ('a', '2', NULL), (x'78ff', '3', NULL);",
    );
    agent.add_config(&resource("people", &db, "people"));
    let (r, _) = sync(&agent, &[]);
    assert_eq!((r["read"].as_str(), r["inserted"].as_u64()), (Some("key_order"), Some(3)), "{r}");
    sync(&agent, &[]);
    sql(&db, "INSERT INTO people VALUES (CAST(x'78ff' AS TEXT), '4', NULL);");
    let (r, out) = sync(&agent, &[]);
    assert_eq!((r["read"].as_str(), r["quarantined"].as_u64()), (Some("source_order"), Some(1)), "{r}");
    assert_eq!(out["sent_rows"], 0, "the row first stored keeps the key: {out}");
    let names: Vec<String> = rusqlite::Connection::open(vault(&hub, NODE))
        .unwrap()
        .prepare("SELECT name FROM people ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(names, ["1", "2", "3"]);
}
