//! Faults of the machine rather than the network: a hub's vaults, or an
//! agent's own files, on a disk that fills up, and clocks minutes apart.
//!
//! The full disk is a small tmpfs mounted over a hub's `vaults/`, a hub's
//! whole data folder, or an agent's data folder (root
//! only, as CI runs; elsewhere the test says so and skips). The skewed
//! clocks come from libfaketime (the Debian package `faketime`), which
//! shifts the wall clock of one process and leaves its monotonic clock
//! alone, as a machine whose NTP is off would be.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gdx_tests::exchange::{ask_granted, declare, many_people, province_pair, received, rows, synced};
use gdx_tests::faults::machine::{Tmpfs, faketime_lib, running_as_root, skewed};
use gdx_tests::{
    Agent, Hub, Proc, bin, changeset_entries, have, people_agent, people_table, publish_people, table_checksum, vault,
    wait_until,
};

/// Rows `from..to` of generated people, with names long enough to need pages.
fn more_people(db: &Path, from: usize, to: usize) {
    let c = rusqlite::Connection::open(db).unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for i in from..to {
        tx.execute("INSERT INTO people VALUES (?1, ?2)", [format!("id{i:06}"), format!("人员{i}-{}", "名".repeat(40))])
            .unwrap();
    }
    tx.commit().unwrap();
}

/// The hub's vaults fill their disk: the changesets are refused as "retry
/// later" (never rejected, the resource never held), the hub keeps running,
/// and once space is freed the agent's next sync delivers everything,
/// exactly once.
#[test]
fn a_full_disk_under_the_vaults_refuses_cleanly_and_resumes() {
    gdx_tests::files_only(
        "the full disk is a small tmpfs under the hub's files (with PostgreSQL it is the database server's disk)",
    );
    if !have("mounting a tmpfs needs root", running_as_root()) {
        return;
    }
    let mut hub = Hub::init("630000");
    let tmpfs = Tmpfs::mount(&hub.dir.path().join("vaults"), "2m");
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("src.db");
    let agent = people_agent(&hub, "630000/gongan", &db, &[("1", "甲")]);
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");

    let filler = tmpfs.fill();
    more_people(&db, 2, 4_000);
    let (code, json, err) = agent.sync(&[]);
    assert_ne!(code, 0, "a sync onto a full disk cannot succeed: {json}");
    assert!(err.contains("could not store") && err.contains("retried"), "not a clear retry-later: {err}");
    let status = agent.status();
    assert_ne!(status["resources"][0]["held"], true, "a full disk held the resource: {status}");
    let hub_log = hub.proc.as_mut().unwrap();
    assert!(hub_log.child.try_wait().unwrap().is_none(), "the hub stopped on a full disk: {}", hub_log.output());
    assert!(hub_log.output().contains("vault write failed"), "{}", hub_log.output());

    // space comes back: everything arrives, once
    std::fs::remove_file(filler).unwrap();
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    let columns = ["id", "name"];
    assert_eq!(
        table_checksum(&vault(&hub, "630000/gongan"), "people", &columns),
        table_checksum(&db, "people", &columns)
    );
    let status = agent.status();
    let acked = status["resources"][0]["acked_seq"].as_u64().unwrap();
    wait_until(Duration::from_secs(20), "one audit entry per changeset", || {
        changeset_entries(&hub, "630000/gongan") == (1..=acked).collect::<Vec<_>>()
    });
    wait_until(Duration::from_secs(20), "the audit log verifies", || hub.cmd(&["audit", "verify"]).code == 0);
    // unmounted first, so that the hub's folder can be removed
    drop(tmpfs);
    drop(hub);
}

/// The hub's whole data folder fills its disk (hub.db with the audit log,
/// the catalogue and the nodes; exchange.db; the vaults) while a provider
/// syncs and a consumer receives under a grant: the provider is told to
/// retry later and nothing is held, the consumer's receive breaks nothing,
/// the hub keeps running and says why in its log, and once space is freed
/// everything converges: the vault equals the source, the consumer has its
/// grant's rows, one audit entry per changeset, and the log verifies.
#[test]
fn a_full_disk_under_the_whole_hub_refuses_cleanly_and_resumes() {
    gdx_tests::files_only(
        "the full disk is a small tmpfs under the hub's files (with PostgreSQL it is the database server's disk)",
    );
    if !have("mounting a tmpfs needs root", running_as_root()) {
        return;
    }
    let mut hub = Hub::init("630000");
    let disk = Tmpfs::try_mount_keeping(hub.dir.path(), "24m").expect("a tmpfs over the hub's data folder");
    hub.start();
    let (provider, consumer) = province_pair(&hub);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("dibao.db");
    many_people(&db, 300, "630000");
    declare(&provider, "dibao", "301001/000001", "无条件共享", &db);
    synced(&provider);
    ask_granted(&consumer, "301001/000001");
    let received_count = |agent: &Agent| -> Option<usize> {
        let db = received(agent);
        if !db.exists() {
            return None;
        }
        let c = rusqlite::Connection::open(&db).ok()?;
        let table: String =
            c.query_row("SELECT name FROM sqlite_master WHERE name LIKE 'minzheng_dibao%'", [], |r| r.get(0)).ok()?;
        c.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get::<_, i64>(0)).ok().map(|n| n as usize)
    };
    let source_count = || rows(&db, "SELECT count(*) FROM people")[0][0].parse::<usize>().unwrap();
    wait_until(Duration::from_secs(30), "the first delivery", || {
        consumer.cmd(&["receive"]);
        received_count(&consumer) == Some(source_count())
    });

    let filler = disk.fill();
    many_people(&db, 3_000, "630000");
    let (code, out, err) = provider.sync(&[]);
    assert_ne!(code, 0, "a sync onto the hub's full disk cannot succeed: {out}");
    eprintln!("provider: {err}");
    assert!(err.contains("could not store") && err.contains("retried"), "not a clear retry-later: {err}");
    assert!(err.contains("the hub's disk is full"), "the agent is not told the hub's disk is full: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let status = provider.status();
    assert_ne!(status["resources"][0]["held"], true, "a full disk held the resource: {status}");
    let receive = consumer.cmd(&["receive"]);
    eprintln!("consumer: {receive:?}");
    assert!(!receive.stderr.contains("panicked"), "{receive:?}");
    let hub_proc = hub.proc.as_mut().unwrap();
    assert!(hub_proc.child.try_wait().unwrap().is_none(), "the hub stopped on a full disk: {}", hub_proc.output());
    assert!(
        hub_proc.output().contains("the hub's disk is full"),
        "the hub's log does not say why: {}",
        hub_proc.output()
    );
    let nodes = hub.cmd(&["nodes"]);
    assert_eq!(nodes.code, 0, "gdx-hub nodes cannot read a hub whose disk is full: {nodes:?}");

    // space comes back: everything arrives, once
    std::fs::remove_file(filler).unwrap();
    let (code, _, err) = provider.sync(&[]);
    assert_eq!(code, 0, "the sync after space came back failed: {err}");
    let columns = ["id_number", "name", "amount", "phone"];
    assert_eq!(
        table_checksum(&vault(&hub, "630000/minzheng"), "dibao", &columns),
        table_checksum(&db, "people", &columns)
    );
    wait_until(Duration::from_secs(60), "every row delivered after space came back", || {
        consumer.cmd(&["receive"]);
        received_count(&consumer) == Some(source_count())
    });
    let acked = provider.status()["resources"][0]["acked_seq"].as_u64().unwrap();
    wait_until(Duration::from_secs(20), "one audit entry per changeset", || {
        changeset_entries(&hub, "630000/minzheng") == (1..=acked).collect::<Vec<_>>()
    });
    wait_until(Duration::from_secs(20), "the audit log verifies", || hub.cmd(&["audit", "verify"]).code == 0);
    let hub_proc = hub.proc.as_mut().unwrap();
    assert!(!hub_proc.output().contains("panicked"), "{}", hub_proc.output());
    hub.stop();
    drop(disk);
}

/// Runs `gdx-agent ARGS` on `agent`'s data with a skewed clock.
fn agent_skewed(agent: &Agent, env: &[(String, String)], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("gdx-agent"))
        .arg("--data")
        .arg(agent.data())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The agent's own disk fills (its `state.db`, outbox and row map on a
/// small tmpfs): the sync fails with one sentence that names the full disk,
/// nothing is half-kept, and once space is freed the next sync delivers
/// everything, each changeset stored once.
#[test]
fn a_full_disk_under_the_agent_fails_clearly_and_resumes() {
    if !have("mounting a tmpfs needs root", running_as_root()) {
        return;
    }
    let mut hub = Hub::init("630000");
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("src.db");
    let agent = Agent::new();
    let disk = Tmpfs::mount(agent.dir.path(), "3m");
    agent.enroll(&hub.token("630000/gongan", "1h")).ok();
    publish_people(&agent, &db, &[("1", "甲")]);
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");

    let filler = disk.fill();
    more_people(&db, 2, 6_000);
    let out = agent.cmd(&["sync"]);
    assert_ne!(out.code, 0, "a sync onto a full disk cannot succeed: {out:?}");
    let line =
        out.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {out:?}"));
    eprintln!("{line}");
    assert!(
        line.contains("the disk holding the agent's data folder") && line.contains("is full; free some space there"),
        "the error does not say the agent's disk is full in its own words: {line}"
    );
    assert!(!line.contains("database or disk is full"), "SQLite's words reached the user: {line}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");

    std::fs::remove_file(filler).unwrap();
    let (code, json, err) = agent.sync(&[]);
    assert_eq!(code, 0, "the sync after space came back failed: {err} {json}");
    let columns = ["id", "name"];
    assert_eq!(
        table_checksum(&vault(&hub, "630000/gongan"), "people", &columns),
        table_checksum(&db, "people", &columns)
    );
    let acked = agent.status()["resources"][0]["acked_seq"].as_u64().unwrap();
    wait_until(Duration::from_secs(20), "one audit entry per changeset", || {
        changeset_entries(&hub, "630000/gongan") == (1..=acked).collect::<Vec<_>>()
    });
    drop(disk);
}

/// A province, a prefecture whose clock is 10 minutes fast, and two county
/// agents 10 minutes slow, one of them enrolled while slow (its hub's
/// certificate, made seconds before by the hub's clock, is in the agent's
/// future): both sync, the prefecture's link to the province carries its
/// audit checkpoints, both logs verify, and `doctor` names the skew.
#[test]
fn clocks_ten_minutes_apart_still_sync_and_doctor_says_so() {
    let Some(lib) = faketime_lib() else {
        assert!(std::env::var_os("CI").is_none(), "CI must run this test: libfaketime (package faketime) is missing");
        eprintln!("skipped: libfaketime (Debian package faketime) is not installed");
        return;
    };
    let (fast, slow) = (skewed(&lib, "+10m"), skewed(&lib, "-10m"));
    let mut province = Hub::init("630000");
    province.start();
    let mut prefecture = Hub::join(&province.hub_token("632500/hub"));
    let env: Vec<(&str, &str)> = fast.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    prefecture.start_env(&env);

    let tmp = tempfile::tempdir().unwrap();
    let (db1, db2) = (tmp.path().join("a.db"), tmp.path().join("b.db"));
    // one enrolled with a true clock, then slow; one enrolled while slow
    let first = people_agent(&prefecture, "632522/gongan", &db1, &[("1", "甲"), ("2", "乙")]);
    let second = Agent::new();
    let token = prefecture.token("632523/gongan", "1h");
    let (code, out, err) = agent_skewed(&second, &slow, &["enroll", "--token", &token, "--timeout", "10s"]);
    assert_eq!(code, 0, "enrolment with a slow clock failed: {out}{err}");
    people_table(&db2, &[("3", "丙")]);
    second.add_config(&format!(
        "[[resource]]\ncode = \"people\"\nkey = [\"id\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"people\" }}\n",
        db2.display()
    ));
    for (agent, db, node) in [(&first, &db1, "632522/gongan"), (&second, &db2, "632523/gongan")] {
        more_people(db, 10, 200);
        let (code, out, err) = agent_skewed(agent, &slow, &["sync", "--json"]);
        assert_eq!(code, 0, "{node}: a sync 20 minutes behind its hub failed: {out}{err}");
        let columns = ["id", "name"];
        assert_eq!(
            table_checksum(&vault(&prefecture, node), "people", &columns),
            table_checksum(db, "people", &columns)
        );
        let (_, doctor, _) = agent_skewed(agent, &slow, &["doctor"]);
        assert!(doctor.contains("off the hub's"), "doctor does not name a 20-minute skew: {doctor}");
    }
    // the prefecture (10 minutes fast) forwards its audit checkpoints to the province
    // for cosigning and keeps its own log verifiable
    wait_until(Duration::from_secs(30), "both audit logs verify", || {
        prefecture.cmd(&["audit", "verify"]).code == 0 && province.cmd(&["audit", "verify"]).code == 0
    });
    let log = prefecture.proc.as_ref().map(Proc::output).unwrap_or_default();
    assert!(!log.contains("not yet valid") && !log.contains("NotValidYet"), "{log}");
}
