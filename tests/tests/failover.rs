//! A province hub run as two processes sharing its stores on a real
//! PostgreSQL server (`gdx-hub pair`): both serve, one holds the lease on
//! background work. The process that leads is SIGKILLed while a department's
//! changes flow and a grant delivers; the agents move to the other address,
//! the other process takes the lease, and nothing is lost or doubled: the
//! vault equals the source, the consumer receives every change, the audit
//! log has one entry per changeset and verifies. Then the database itself
//! fails over: its primary crashes and its streaming-replication standby is
//! promoted, and the hub goes on with nothing acknowledged lost.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use gdx_tests::exchange::{granted_dibao, province_pair, received_every_name, rows, sql};
use gdx_tests::servers::{HUB_ROLE, Postgres};
use gdx_tests::{Hub, free_tcp_port, free_udp_port, people_agent, wait_until};

/// `gdx-hub pair` on `first`: the second process's hub, not started.
fn second_process(first: &Hub) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_udp_port());
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let to = dir.path().to_str().unwrap();
    let paired = first.cmd(&["pair", "--to", to, "--listen", &addr, "--http", &http]);
    assert_eq!(paired.code, 0, "{}", paired.stderr);
    Hub { dir, addr, http, proc: None, netns: None, pg: None }
}

/// The people of `db` ordered by id: (id_number, name).
fn source_people(db: &Path) -> Vec<Vec<String>> {
    rows(db, "SELECT id_number, name FROM people ORDER BY id_number")
}

#[test]
fn the_other_process_takes_over_when_the_leading_one_is_killed() {
    let Some(pg) = Postgres::start() else { return };
    let mut first = Hub::init_sqlite("630000");
    let database = pg.hold_vaults_of(&first);
    let mut second = second_process(&first);
    // both advertise both addresses: tokens made from now on name them
    for hub in [&first, &second] {
        let toml = std::fs::read_to_string(hub.dir.path().join("hub.toml")).unwrap();
        assert!(toml.contains(&format!("advertise = \"{},{}\"", first.addr, second.addr)), "{toml}");
    }
    assert_eq!(
        std::fs::read(first.dir.path().join("audit.key")).unwrap(),
        std::fs::read(second.dir.path().join("audit.key")).unwrap(),
        "one audit key for both"
    );
    first.start();
    second.start();
    let said = second.proc.as_ref().unwrap().output();
    assert!(said.contains("holds the lease on background work"), "{said}");

    let (provider, consumer) = province_pair(&first);
    let agent_toml = std::fs::read_to_string(provider.dir.path().join("agent.toml")).unwrap();
    assert!(agent_toml.contains(&second.addr), "the agent knows both addresses: {agent_toml}");
    let tmp = tempfile::tempdir().unwrap();
    let db = granted_dibao(&provider, &consumer, tmp.path(), 2_000);

    // the department's daemon syncs while the leading process is SIGKILLed in the middle of it
    let mut provider = provider;
    provider.start();
    let mut killed = std::time::Instant::now();
    for round in 0..8 {
        sql(&db, &format!("UPDATE people SET name = name || '{round}' WHERE rowid % 4 = {}", round % 4));
        std::thread::sleep(Duration::from_millis(300));
        if round == 3 {
            first.stop();
            killed = std::time::Instant::now();
        }
    }
    let vault = || {
        let admin = &mut pg.admin(&database);
        let found = admin
            .query("SELECT id_number, name FROM v_630000_minzheng.dibao ORDER BY id_number COLLATE \"C\"", &[])
            .unwrap_or_default();
        found.iter().map(|r| vec![r.get::<_, String>(0), r.get::<_, String>(1)]).collect::<Vec<_>>()
    };
    wait_until(Duration::from_secs(120), "the vault equals the source through the other process", || {
        vault() == source_people(&db)
    });
    eprintln!("the vault equals the source {:.1} s after the kill", killed.elapsed().as_secs_f64());
    let log = second.proc.as_ref().unwrap().output();
    assert!(log.contains("this process holds the lease"), "the second process took the lease: {log}");

    // the other process produces the grant's deliveries now: the consumer receives every change
    wait_until(Duration::from_secs(90), "every change delivered after the takeover", || {
        received_every_name(&consumer, &db)
    });

    eprintln!("every change delivered {:.1} s after the kill", killed.elapsed().as_secs_f64());
    // exactly once: one audit entry per changeset, numbered 1 to the last, none twice
    let made = gdx_tests::one_entry_per_changeset(&second, &provider, "630000/minzheng");
    assert!(made >= 3, "the daemon made changesets through the failover ({})", made);

    // the first process comes back as the one waiting, and serves
    first.start();
    let said = first.proc.as_ref().unwrap().output();
    assert!(said.contains("holds the lease on background work"), "{said}");
    let listed = consumer.cmd(&["requests", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    first.terminate();
    second.terminate();
    let verified = second.cmd(&["audit", "verify"]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
}

#[test]
fn a_hub_on_sqlite_files_is_not_paired() {
    let hub = Hub::init_sqlite("630000");
    let to = tempfile::tempdir().unwrap();
    let out =
        hub.cmd(&["pair", "--to", to.path().to_str().unwrap(), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("move them to PostgreSQL first"), "{}", out.stderr);
    assert!(std::fs::read_dir(to.path()).unwrap().next().is_none(), "nothing was copied");
}

/// `rows` rows `p{i}` of `people` in `db`, each named `tag` and its number.
fn change_people(db: &Path, rows: std::ops::Range<usize>, tag: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for i in rows {
        tx.execute("INSERT OR REPLACE INTO people VALUES (?1, ?2)", [format!("p{i:05}"), format!("{tag}{i}")]).unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn the_hub_survives_the_loss_of_its_database_primary() {
    let Some(primary) = Postgres::start() else { return };
    let database = primary.hub_database();
    let standby = primary.standby();
    // a commit returns once the standby holds it too: nothing acknowledged is lost with the primary
    primary.sql("postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'");
    primary.sql("postgres", "SELECT pg_reload_conf()");
    let mut hub = Hub::init_sqlite("630000");
    primary.point_hub_at_servers(&hub, HUB_ROLE, &database, &[primary.port, standby.port]);
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("gongan.db");
    let mut gongan = people_agent(&hub, "630000/gongan", &db, &[("p00000", "张三")]);
    change_people(&db, 1..2_000, "户籍");
    gongan.start();
    let mut promoted = std::time::Instant::now();
    for round in 0..8 {
        change_people(&db, round * 250..round * 250 + 400, &format!("第{round}轮"));
        std::thread::sleep(Duration::from_millis(300));
        if round == 3 {
            let sync: String =
                primary.admin("postgres").query_one("SELECT sync_state FROM pg_stat_replication", &[]).unwrap().get(0);
            assert_eq!(sync, "sync", "every commit is on the standby before it returns");
            primary.kill();
            standby.promote();
            promoted = std::time::Instant::now();
        }
    }
    let source = rows(&db, "SELECT id, name FROM people ORDER BY id");
    let vault = || {
        let found = standby
            .admin(&database)
            .query("SELECT id, name FROM v_630000_gongan.people ORDER BY id COLLATE \"C\"", &[])
            .unwrap_or_default();
        found.iter().map(|r| vec![r.get::<_, String>(0), r.get::<_, String>(1)]).collect::<Vec<_>>()
    };
    wait_until(Duration::from_secs(120), "the vault on the promoted standby equals the source", || vault() == source);
    eprintln!("the vault equals the source {:.1} s after the promotion", promoted.elapsed().as_secs_f64());
    let made = gdx_tests::one_entry_per_changeset(&hub, &gongan, "630000/gongan");
    assert!(made >= 3, "the daemon made changesets through the promotion ({})", made);
    // nothing acknowledged was lost with the primary: the hub never asked for a changeset again
    let said = gongan.proc.as_ref().unwrap().output();
    assert!(!said.contains("the hub lost changesets it had acknowledged"), "{said}");
    hub.terminate();
    let verified = hub.cmd(&["audit", "verify"]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
}

/// The sessions that hold `hub`'s lease, as the database server sees them.
fn lease_holders(pg: &Postgres, database: &str) -> i64 {
    pg.admin(database)
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = $1",
            &[&(0x6764_6c65_u32)],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_process_that_stops_answering_loses_the_lease_to_the_other() {
    let Some(pg) = Postgres::start() else { return };
    let mut first = Hub::init_sqlite("630000");
    let database = pg.hold_vaults_of(&first);
    let mut second = second_process(&first);
    first.start();
    second.start();
    assert_eq!(lease_holders(&pg, &database), 1);
    // a machine that stops (here: the process, frozen) never closes its connection; the server gives up on it
    first.proc.as_ref().unwrap().signal("STOP");
    let stopped = std::time::Instant::now();
    wait_until(Duration::from_secs(60), "the other process takes the lease", || {
        second.proc.as_ref().unwrap().output().contains("this process holds the lease")
    });
    eprintln!("the other process took the lease {:.1} s after the first stopped", stopped.elapsed().as_secs_f64());
    assert_eq!(lease_holders(&pg, &database), 1, "one holder at a time");
    // woken, the first finds it lost the lease and does not take it back
    first.proc.as_ref().unwrap().signal("CONT");
    wait_until(Duration::from_secs(30), "the woken process knows it lost the lease", || {
        first.proc.as_ref().unwrap().output().contains("lease on background work is lost")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lease_holders(&pg, &database), 1, "one holder at a time");
    assert_eq!(
        first.proc.as_ref().unwrap().output().matches("this process holds the lease").count(),
        1,
        "the woken process did not take the lease back"
    );
}
