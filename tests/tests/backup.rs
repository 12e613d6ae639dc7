//! Operations: a hub backed up while it runs and agents keep syncing, then
//! destroyed and restored from the backup, converges with its agents (they
//! send again what the restored hub lost, applied once), and its audit log
//! verifies; a damaged backup or a used directory is refused. `gdx-hub
//! backup` copies a hub whose stores are files (a hub on PostgreSQL is
//! backed up with the database's own tools), so these hubs stay on SQLite
//! in the second configuration too.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use gdx_tests::{Agent, Hub, table_checksum, vault};

const COLS: &[&str] = &["id", "name"];

fn synced(agent: &Agent) -> String {
    let run = agent.cmd(&["sync"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("all acknowledged by the hub"), "{run:?}");
    run.stdout
}

fn changesets(vault: &Path) -> (i64, i64) {
    rusqlite::Connection::open(vault)
        .unwrap()
        .query_row("SELECT count(*), max(seq) FROM _gdx_changesets WHERE resource = 'people'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
}

#[test]
fn a_hub_restored_from_a_backup_converges_with_its_agents_and_its_log_verifies() {
    let mut hub = Hub::init_sqlite("630000");
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("src.db");
    let agent = gdx_tests::people_agent(&hub, "630000/gongan", &db, &[("1", "卓玛"), ("2", "才让")]);
    synced(&agent);

    // backed up while it runs, once the log has signed what it holds
    gdx_tests::wait_until(std::time::Duration::from_secs(30), "a checkpoint of the audit log", || {
        hub.cmd(&["audit", "verify"]).code == 0
    });
    let backup = tmp.path().join("backup");
    let out = hub.cmd(&["backup", "--out", backup.to_str().unwrap()]).ok();
    assert!(out.contains("backed up") && out.contains("630000/hub"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap()).unwrap();
    let names: Vec<&str> = manifest["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(names.contains(&"hub.key") && names.contains(&"vaults/630000-gongan.db"), "{names:?}");
    assert_eq!(names.last(), Some(&"audit.db"), "the audit log is copied last");
    let again = hub.cmd(&["backup", "--out", backup.to_str().unwrap()]);
    assert!(again.code != 0 && again.stderr.contains("new or empty directory"), "{again:?}");

    // the agent goes on: two more changesets the backup does not hold
    gdx_tests::people_table(&db, &[("1", "卓玛"), ("2", "才让措"), ("3", "马秀兰")]);
    synced(&agent);
    gdx_tests::people_table(&db, &[("2", "才让措"), ("3", "马秀兰"), ("4", "韩永福")]);
    synced(&agent);
    assert_eq!(changesets(&vault(&hub, "630000/gongan")), (3, 3));

    // a damaged backup is refused, whole
    let damaged = tmp.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    for f in manifest["files"].as_array().unwrap() {
        let p = f["path"].as_str().unwrap();
        std::fs::create_dir_all(damaged.join(p).parent().unwrap()).unwrap();
        std::fs::copy(backup.join(p), damaged.join(p)).unwrap();
    }
    std::fs::copy(backup.join("manifest.json"), damaged.join("manifest.json")).unwrap();
    let v = damaged.join("vaults/630000-gongan.db");
    let mut bytes = std::fs::read(&v).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&v, bytes).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    let refused =
        gdx_tests::run("gdx-hub", &["--data", elsewhere.to_str().unwrap(), "restore", damaged.to_str().unwrap()]);
    assert!(refused.code != 0 && refused.stderr.contains("does not match the manifest"), "{refused:?}");
    assert!(!elsewhere.join("hub.toml").exists(), "nothing restored");

    // the machine is lost: the hub's directory is gone
    hub.stop();
    let dir = hub.dir.path().to_path_buf();
    let used = hub.cmd(&["restore", backup.to_str().unwrap()]);
    assert!(used.code != 0 && used.stderr.contains("is not empty"), "{used:?}");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { std::fs::remove_dir_all(p).unwrap() } else { std::fs::remove_file(p).unwrap() }
    }
    let restored = hub.cmd(&["restore", backup.to_str().unwrap()]).ok();
    assert!(restored.contains("the audit log verifies"), "{restored}");
    assert_eq!(changesets(&vault(&hub, "630000/gongan")), (1, 1), "the restored vault is the backup's");
    hub.start();

    // the agent's next change finds the hub behind what it acknowledged, and sends it all again
    gdx_tests::people_table(&db, &[("3", "马秀兰"), ("4", "韩永福"), ("5", "卓玛措")]);
    synced(&agent);
    let at_hub = vault(&hub, "630000/gongan");
    assert_eq!(changesets(&at_hub), (4, 4), "each changeset applied once");
    assert_eq!(table_checksum(&db, "people", COLS), table_checksum(&at_hub, "people", COLS));
    let status = agent.cmd(&["status"]).ok();
    assert!(!status.contains("HELD"), "{status}");
    // a log vouches for nothing until the hub's first checkpoint, which may be a second away
    gdx_tests::wait_until(std::time::Duration::from_secs(20), "the audit log verifies", || {
        hub.cmd(&["audit", "verify"]).code == 0
    });
    let verified = hub.cmd(&["audit", "verify"]).ok();
    assert!(verified.contains("verif"), "{verified}");
}

#[test]
fn an_older_data_directory_is_backed_up_before_use_and_a_newer_one_is_refused() {
    let mut hub = Hub::init_sqlite("630000");
    let dir = hub.dir.path().to_path_buf();
    assert!(std::fs::read_to_string(dir.join("FORMAT")).unwrap().starts_with("3 "), "init writes the format");
    // a directory of format 2, its lookup copy in the old layout (one JSON object a row):
    // backed up whole, converted, then marked current
    std::fs::write(dir.join("FORMAT"), "2 0.1.0\n").unwrap();
    let old_copy = "CREATE TABLE replica (grant_id TEXT NOT NULL, key TEXT NOT NULL, row TEXT NOT NULL, PRIMARY KEY (grant_id, key)) WITHOUT ROWID;
                    INSERT INTO replica VALUES ('630000-G1', 'a', '{\"姓名\":\"甲\",\"编号\":\"a\"}');";
    rusqlite::Connection::open(dir.join("exchange.db")).unwrap().execute_batch(old_copy).unwrap();
    // a command other than `run` leaves it as it is
    hub.cmd(&["grants"]).ok();
    let tables = |db: &std::path::Path| -> Vec<String> {
        let c = rusqlite::Connection::open(db).unwrap();
        let mut stmt = c.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert!(tables(&dir.join("exchange.db")).contains(&"replica".to_owned()), "converted before the backup");
    hub.start();
    let backups: Vec<_> = std::fs::read_dir(dir.join("backups")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(backups[0].join("manifest.json").exists() && backups[0].join("hub.key").exists());
    assert!(std::fs::read_to_string(dir.join("FORMAT")).unwrap().starts_with("3 "));
    assert!(tables(&backups[0].join("exchange.db")).contains(&"replica".to_owned()), "the backup holds the old layout");
    let now = tables(&dir.join("exchange.db"));
    assert!(!now.contains(&"replica".to_owned()) && now.contains(&"replica_rows".to_owned()), "{now:?}");
    let rows: String = rusqlite::Connection::open(dir.join("exchange.db"))
        .unwrap()
        .query_row("SELECT row FROM replica_rows WHERE key = 'a'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, r#"["甲","a"]"#);
    hub.stop();
    // written by a newer gdx-hub: refused, by every command, in a sentence
    std::fs::write(dir.join("FORMAT"), "9 9.9.9\n").unwrap();
    let refused = hub.cmd(&["nodes"]);
    assert!(refused.code != 0 && refused.stderr.contains("downgrades are refused"), "{refused:?}");
    assert!(refused.stderr.contains("install gdx-hub 9.9.9 or later"), "{refused:?}");
}
