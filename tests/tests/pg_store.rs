//! Vaults on PostgreSQL: a province hub whose hub.toml says
//! `store = { kind = "postgres", … }`, against a real PostgreSQL server
//! started here. Two departments sync into schemas of their own, each owned
//! by its own role; the hub's own role reaches neither, nor does one
//! department's role the other's. Every changeset is applied exactly once
//! through a SIGKILL of the hub while changes flow and a crash of the
//! database server, and the audit log verifies with one entry per
//! changeset. A grant is delivered from a vault on PostgreSQL to its
//! consumer. A role that would reach every vault is refused at start.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use gdx_tests::exchange::{granted_dibao, many_people, province_pair, received_every_name, rows, synced};
use gdx_tests::servers::{HUB_PASSWORD, HUB_ROLE, Postgres};
use gdx_tests::{Hub, changeset_entries, people_agent, wait_until};

/// The rows of `people` in `db`, ordered.
fn source_rows(db: &Path) -> Vec<(String, String)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut stmt = c.prepare("SELECT id, name FROM people ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

/// The rows of `people` in `schema` of `database`, read as the superuser, ordered as SQLite orders them.
fn vault_rows(pg: &Postgres, database: &str, schema: &str) -> Vec<(String, String)> {
    let rows = pg
        .admin(database)
        .query(&format!("SELECT id, name FROM {schema}.people ORDER BY id COLLATE \"C\""), &[])
        .unwrap_or_default();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn change(db: &Path, from: usize, to: usize, tag: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for i in from..to {
        tx.execute("INSERT OR REPLACE INTO people VALUES (?1, ?2)", [format!("p{i:05}"), format!("{tag}{i}")]).unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn vaults_on_postgres_keep_departments_apart_and_apply_exactly_once() {
    let Some(pg) = Postgres::start() else { return };
    let mut hub = Hub::init_sqlite("630000");
    let database = pg.hold_vaults_of(&hub);
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let (db_a, db_b) = (tmp.path().join("gongan.db"), tmp.path().join("minzheng.db"));
    let gongan = people_agent(&hub, "630000/gongan", &db_a, &[("p00000", "张三"), ("p00001", "李四")]);
    let minzheng = people_agent(&hub, "630000/minzheng", &db_b, &[("m1", "王五")]);
    change(&db_a, 2, 3000, "户籍");
    for agent in [&gongan, &minzheng] {
        let (code, json, stderr) = agent.sync(&[]);
        assert_eq!(code, 0, "{json} {stderr}");
    }
    assert_eq!(vault_rows(&pg, &database, "v_630000_gongan"), source_rows(&db_a));
    assert_eq!(vault_rows(&pg, &database, "v_630000_minzheng"), source_rows(&db_b));
    assert!(!gdx_tests::vault(&hub, "630000/gongan").exists(), "no vault file beside PostgreSQL");
    // a long run of new keys whose last key is there already: copied straight into the table, that
    // copy undone at the key it meets, and the whole run upserted
    {
        let c = rusqlite::Connection::open(&db_a).unwrap();
        let tx = c.unchecked_transaction().unwrap();
        for i in 0..1000 {
            tx.execute("INSERT INTO people VALUES (?1, ?2)", [format!("a{i:05}"), format!("新{i}")]).unwrap();
        }
        tx.execute("UPDATE people SET name = '李四改' WHERE id = 'p00001'", []).unwrap();
        tx.commit().unwrap();
    }
    let (code, json, stderr) = gongan.sync(&[]);
    assert_eq!(code, 0, "{json} {stderr}");
    assert_eq!(json["sent_rows"], 1001, "{json}");
    assert_eq!(vault_rows(&pg, &database, "v_630000_gongan"), source_rows(&db_a));
    // `gdx-hub nodes` lists each department's resources from its schema
    let listed = hub.nodes();
    let gongan_row = listed.iter().find(|n| n["node"] == "630000/gongan").unwrap();
    assert_eq!(gongan_row["resources"][0]["rows"], 4000, "{gongan_row}");
    // the hub's own records (tokens, nodes, certificates) are in PostgreSQL too, none in hub.db
    let enrolled: Vec<String> = pg
        .admin(&database)
        .query("SELECT node FROM gdx_hub.nodes ORDER BY node", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(enrolled, ["630000/gongan", "630000/minzheng"]);
    let in_file: i64 = rusqlite::Connection::open(hub.dir.path().join("hub.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(in_file, 0, "hub.db keeps nothing beside PostgreSQL");

    // each vault a schema owned by the department's role; the hub's role reaches none, nor one department another's
    let admin = &mut pg.admin(&database);
    let owner: String = admin
        .query_one("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'v_630000_gongan'", &[])
        .unwrap()
        .get(0);
    assert_eq!(owner, "gdx_630000_630000_gongan");
    let mut as_hub = postgres::Config::new()
        .host("127.0.0.1")
        .port(pg.port)
        .user(HUB_ROLE)
        .password(HUB_PASSWORD)
        .dbname(&database)
        .connect(postgres::NoTls)
        .unwrap();
    let e = as_hub.query("SELECT * FROM v_630000_gongan.people", &[]).unwrap_err();
    assert!(e.as_db_error().unwrap().message().contains("permission denied"), "{e}");
    as_hub.batch_execute("SET ROLE gdx_630000_630000_minzheng").unwrap();
    let e = as_hub.query("SELECT * FROM v_630000_gongan.people", &[]).unwrap_err();
    assert!(e.as_db_error().unwrap().message().contains("permission denied"), "{e}");
    as_hub.batch_execute("RESET ROLE").unwrap();

    // the daemon syncs while the hub is SIGKILLed and started again, and while the database server crashes
    let mut gongan = gongan;
    gongan.start();
    let mut round = 0;
    let mut next = 3000;
    for fault in ["hub", "database", "hub"] {
        for _ in 0..4 {
            round += 1;
            change(&db_a, next - 500, next + 300, &format!("第{round}轮"));
            next += 300;
            std::thread::sleep(Duration::from_millis(300));
        }
        match fault {
            "hub" => {
                hub.stop();
                hub.start();
            }
            _ => {
                pg.kill();
                std::thread::sleep(Duration::from_secs(1));
                pg.restart();
            }
        }
    }
    wait_until(Duration::from_secs(90), "the vault on PostgreSQL equals the source", || {
        vault_rows(&pg, &database, "v_630000_gongan") == source_rows(&db_a)
    });
    // one audit entry per changeset the agent made, numbered 1 to the last
    let made = gdx_tests::one_entry_per_changeset(&hub, &gongan, "630000/gongan");
    assert!(made >= 5, "the daemon made changesets through the faults ({})", made);
    assert_eq!(changeset_entries(&hub, "630000/minzheng"), vec![1]);
    // a connection of after the server's crash
    let last_seq: i64 = pg
        .admin(&database)
        .query_one("SELECT last_seq FROM v_630000_gongan._gdx_resources WHERE resource = 'people'", &[])
        .unwrap()
        .get(0);
    assert_eq!(last_seq as u64, made);
    // the hub's own events (enrolments), kept in gdx_hub's outbox, reach the log on PostgreSQL too
    wait_until(Duration::from_secs(10), "both enrolments in the audit log", || {
        let listed = hub.cmd(&["audit", "list", "--kind", "enrolled", "--format", "jsonl"]).stdout;
        listed.contains("630000/gongan") && listed.contains("630000/minzheng")
    });
    hub.terminate();
    let verified = hub.cmd(&["audit", "verify"]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    let entries: i64 = pg.admin(&database).query_one("SELECT count(*) FROM gdx_audit.entries", &[]).unwrap().get(0);
    assert!(entries > made as i64, "the log is in PostgreSQL ({entries} entries)");
}

#[test]
fn a_grant_is_delivered_from_a_vault_on_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let mut hub = Hub::init_sqlite("630000");
    let database = pg.hold_vaults_of(&hub);
    hub.start();
    let (provider, consumer) = province_pair(&hub);
    let tmp = tempfile::tempdir().unwrap();
    let db = granted_dibao(&provider, &consumer, tmp.path(), 2_000);
    // the grant's projection (姓名, 月保障金额) arrives, then a change of the source follows it
    let delivered = || received_every_name(&consumer, &db);
    wait_until(Duration::from_secs(60), "the delivery from PostgreSQL", delivered);
    many_people(&db, 500, "630000");
    synced(&provider);
    wait_until(Duration::from_secs(60), "the change delivered from PostgreSQL", delivered);
    // the grant, its deliveries and the lookup copy are kept in PostgreSQL, no exchange.db beside it
    let admin = &mut pg.admin(&database);
    let mut count = |sql: &str| -> i64 { admin.query_one(sql, &[]).unwrap().get(0) };
    assert_eq!(count("SELECT count(*) FROM gdx_exchange.requests"), 1);
    let deliveries = count("SELECT count(*) FROM gdx_exchange.deliveries");
    assert!(deliveries >= 1, "{deliveries} deliveries");
    let source: i64 = rows(&db, "SELECT count(*) FROM people")[0][0].parse().unwrap();
    assert_eq!(count("SELECT count(*) FROM gdx_exchange.replica_rows"), source, "the lookup copy holds every row");
    assert!(!hub.dir.path().join("exchange.db").exists());
}

#[test]
fn a_database_role_that_would_reach_every_vault_is_refused() {
    let Some(pg) = Postgres::start() else { return };
    pg.sql("postgres", &format!("CREATE ROLE gdx_inheriting LOGIN PASSWORD '{HUB_PASSWORD}' INHERIT CREATEROLE"));
    pg.sql("postgres", "CREATE DATABASE gdx OWNER gdx_inheriting");
    let hub = Hub::init_sqlite("630000");
    pg.point_hub_at(&hub, "gdx_inheriting", "gdx");
    let out = hub.cmd(&["run"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("ALTER ROLE gdx_inheriting NOINHERIT"), "{}", out.stderr);
    // a URL file others may read is refused too, saying what to do
    let url = hub.dir.path().join("db.url");
    std::fs::set_permissions(&url, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = hub.cmd(&["run"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("db.url"), "{}", out.stderr);
}

/// A hub that ran on SQLite moves its records to PostgreSQL with `gdx-hub
/// migrate --to postgres`: refused while it runs, every row verified, the
/// file set aside; the department enrolled before, and a token made
/// before, work against PostgreSQL after. Until then, commands refuse to
/// leave the file's records behind.
#[test]
fn a_hub_on_sqlite_moves_its_records_to_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let mut hub = Hub::init_sqlite("630000");
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("gongan.db");
    let gongan = people_agent(&hub, "630000/gongan", &db, &[("p1", "张三")]);
    let token = hub.token("630000/minzheng", "1h");
    let database = pg.hold_vaults_of(&hub);
    let running = hub.cmd(&["migrate", "--to", "postgres"]);
    assert_ne!(running.code, 0);
    assert!(running.stderr.contains("stop it first"), "{}", running.stderr);
    hub.terminate();

    let left = hub.cmd(&["nodes"]);
    assert_ne!(left.code, 0, "records in hub.db are not left behind");
    assert!(left.stderr.contains("migrate --to postgres"), "{}", left.stderr);
    let moved = hub.cmd(&["migrate", "--to", "postgres"]);
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    assert!(moved.stdout.contains("hub.db: moved"), "{}", moved.stdout);
    assert!(!hub.dir.path().join("hub.db").exists());
    assert!(hub.dir.path().join("hub.db.migrated").exists());
    assert!(moved.stdout.contains("catalog.db: moved"), "{}", moved.stdout);
    assert!(moved.stdout.contains("audit.db: moved"), "{}", moved.stdout);
    assert!(moved.stdout.contains("exchange.db: moved"), "{}", moved.stdout);
    assert!(!hub.dir.path().join("catalog.db").exists());
    let tokens: i64 = pg.admin(&database).query_one("SELECT count(*) FROM gdx_hub.tokens", &[]).unwrap().get(0);
    assert_eq!(tokens, 2);
    let again = hub.cmd(&["migrate", "--to", "postgres"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("nothing to move"), "{}", again.stdout);

    hub.start();
    let (code, json, stderr) = gongan.sync(&[]);
    assert_eq!(code, 0, "the department enrolled on SQLite syncs: {json} {stderr}");
    let minzheng = gdx_tests::Agent::new();
    let enrolled = minzheng.enroll(&token);
    assert_eq!(enrolled.code, 0, "the token made on SQLite is spent on PostgreSQL: {}", enrolled.stderr);
    let listed: Vec<String> = hub.nodes().iter().map(|n| n["node"].as_str().unwrap_or("").to_owned()).collect();
    assert!(
        listed.contains(&"630000/gongan".to_owned()) && listed.contains(&"630000/minzheng".to_owned()),
        "{listed:?}"
    );
    assert_eq!(vault_rows(&pg, &database, "v_630000_gongan"), source_rows(&db));
    // the log moved with its entries and goes on from them: the enrolment before and the changeset after
    wait_until(Duration::from_secs(10), "the changeset logged after the move", || {
        changeset_entries(&hub, "630000/gongan") == [1]
    });
    hub.terminate();
    let verified = hub.cmd(&["audit", "verify"]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    let enrolled = hub.cmd(&["audit", "list", "--kind", "enrolled", "--format", "jsonl"]).stdout;
    assert!(enrolled.contains("630000/gongan") && enrolled.contains("630000/minzheng"), "{enrolled}");
}

/// A transaction on PostgreSQL in which a statement failed is never
/// reported as committed, even when the failure was passed over: nothing
/// of it is stored and the commit says so.
#[test]
fn a_transaction_with_a_failed_statement_is_not_reported_committed() {
    use gdx_hub::store::db::{Db, Sql, Which};
    let Some(pg) = Postgres::start() else { return };
    let hub = Hub::init_sqlite("630000");
    pg.hold_vaults_of(&hub);
    let paths = gdx_hub::store::HubPaths::new(hub.dir.path());
    let db = Db::open(&paths, Which::Hub, &Which::Hub.tables()).unwrap();
    assert!(db.postgres());
    let tx = db.begin().unwrap();
    tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", gdx_hub::args!["k", "v"]).unwrap();
    assert!(tx.execute("INSERT INTO no_such_table VALUES (1)", gdx_hub::args![]).is_err());
    let committed = tx.commit();
    assert!(committed.is_err(), "a failed transaction answered as committed");
    let kept = db.query("SELECT value FROM meta WHERE key = 'k'", gdx_hub::args![], |r| r.get::<String>(0)).unwrap();
    assert!(kept.is_empty(), "{kept:?}");
    // the connection it used serves the next transaction
    db.write(|tx| tx.execute("INSERT INTO meta (key, value) VALUES ('k', 'w')", gdx_hub::args![])).unwrap();
    let kept = db.query("SELECT value FROM meta WHERE key = 'k'", gdx_hub::args![], |r| r.get::<String>(0)).unwrap();
    assert_eq!(kept, ["w"]);
}

/// A hub whose departments synced into vault files on SQLite moves them
/// too: each file into its department's schema, every row, resource
/// number, epoch and changeset frame, verified and set aside. Afterwards
/// the departments' next changesets follow on without a gap, the grant
/// delivers from the schema, and the log verifies with one entry per
/// changeset.
#[test]
fn vault_files_move_to_postgres_with_their_history() {
    let Some(pg) = Postgres::start() else { return };
    let mut hub = Hub::init_sqlite("630000");
    hub.start();
    let (provider, consumer) = province_pair(&hub);
    let tmp = tempfile::tempdir().unwrap();
    let db = granted_dibao(&provider, &consumer, tmp.path(), 1_500);
    gdx_tests::exchange::sql(&db, "UPDATE people SET amount = amount + 1 WHERE rowid % 3 = 0");
    synced(&provider);
    let db_b = tmp.path().join("gongan.db");
    let gongan = people_agent(&hub, "630000/gongan", &db_b, &[("p00000", "张三"), ("p00001", "O'Brien \"引号\"")]);
    let (code, json, stderr) = gongan.sync(&[]);
    assert_eq!(code, 0, "{json} {stderr}");
    hub.terminate();

    let database = pg.hold_vaults_of(&hub);
    let moved = hub.cmd(&["migrate", "--to", "postgres"]);
    assert_eq!(moved.code, 0, "{}", moved.stderr);
    assert!(moved.stdout.contains("vaults/630000-minzheng.db: moved"), "{}", moved.stdout);
    assert!(moved.stdout.contains("vaults/630000-gongan.db: moved"), "{}", moved.stdout);
    assert!(!gdx_tests::vault(&hub, "630000/minzheng").exists());
    let admin = &mut pg.admin(&database);
    let in_schema: Vec<Vec<String>> = admin
        .query(
            "SELECT id_number, name, amount::text FROM v_630000_minzheng.dibao ORDER BY id_number COLLATE \"C\"",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| vec![r.get(0), r.get(1), r.get(2)])
        .collect();
    assert_eq!(in_schema, rows(&db, "SELECT id_number, name, amount FROM people ORDER BY id_number"));
    let numbered: i64 = admin
        .query_one("SELECT last_seq FROM v_630000_minzheng._gdx_resources WHERE resource = 'dibao'", &[])
        .unwrap()
        .get(0);
    assert_eq!(numbered, 2);
    assert_eq!(vault_rows(&pg, &database, "v_630000_gongan"), source_rows(&db_b));
    let again = hub.cmd(&["migrate", "--to", "postgres"]);
    assert!(again.stdout.contains("nothing to move"), "{}", again.stdout);
    // a file put back (a run cut short before it was set aside) is verified, not copied again;
    // a row changed on either side since is found, and nothing is set aside
    let file = gdx_tests::vault(&hub, "630000/gongan");
    let aside = file.with_extension("db.migrated");
    std::fs::rename(&aside, &file).unwrap();
    admin.execute("UPDATE v_630000_gongan.people SET name = '改' WHERE id = 'p00000'", &[]).unwrap();
    let differs = hub.cmd(&["migrate", "--to", "postgres"]);
    assert_ne!(differs.code, 0);
    assert!(differs.stderr.contains("table people differs"), "{}", differs.stderr);
    assert!(file.exists(), "nothing set aside");
    admin.execute("UPDATE v_630000_gongan.people SET name = '张三' WHERE id = 'p00000'", &[]).unwrap();
    let verified = hub.cmd(&["migrate", "--to", "postgres"]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(
        verified.stdout.contains("vaults/630000-gongan.db: already in PostgreSQL, verified"),
        "{}",
        verified.stdout
    );

    // the history goes on from the schema: the next changeset is number 3, and the grant delivers it
    hub.start();
    gdx_tests::exchange::sql(&db, "UPDATE people SET name = name || '新' WHERE rowid % 5 = 0");
    synced(&provider);
    wait_until(Duration::from_secs(60), "every change delivered from the moved vault", || {
        received_every_name(&consumer, &db)
    });
    wait_until(Duration::from_secs(10), "one audit entry per changeset, before and after the move", || {
        changeset_entries(&hub, "630000/minzheng") == [1, 2, 3]
    });
    hub.terminate();
    let verified = hub.cmd(&["audit", "verify"]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
}

/// A vault file that cannot move (a value with no form in its PostgreSQL
/// column) refuses the whole run before anything moves: every store stays
/// in its file, and the hub runs on SQLite as before.
#[test]
fn a_vault_that_cannot_move_leaves_every_store_in_place() {
    let Some(pg) = Postgres::start() else { return };
    let mut hub = Hub::init_sqlite("630000");
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("gongan.db");
    let gongan = people_agent(&hub, "630000/gongan", &db, &[("p1", "张三")]);
    gdx_tests::exchange::sql(
        &db,
        "CREATE TABLE counted (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO counted VALUES (1, 5), (2, 'many');",
    );
    gongan.add_config(&format!(
        "[[resource]]\ncode = \"counted\"\nkey = [\"id\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"counted\" }}\n",
        db.display()
    ));
    let (code, json, stderr) = gongan.sync(&[]);
    assert_eq!(code, 0, "{json} {stderr}");
    hub.terminate();
    pg.hold_vaults_of(&hub);
    let refused = hub.cmd(&["migrate", "--to", "postgres"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("resource counted"), "{}", refused.stderr);
    assert!(refused.stderr.contains("nothing was moved"), "{}", refused.stderr);
    for kept in ["hub.db", "catalog.db", "audit.db", "exchange.db"] {
        let file = hub.dir.path().join(kept);
        assert!(!file.exists() || !file.with_extension("db.migrated").exists(), "{kept} stays");
    }
    assert!(hub.dir.path().join("hub.db").exists());
    assert!(gdx_tests::vault(&hub, "630000/gongan").exists());
    // the hub goes on on SQLite once the store line is taken out again
    let toml = hub.dir.path().join("hub.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.lines().filter(|l| !l.starts_with("store =")).collect::<Vec<_>>().join("\n")).unwrap();
    hub.start();
    let (code, json, stderr) = gongan.sync(&[]);
    assert_eq!(code, 0, "{json} {stderr}");
}

/// Changeset `seq` of `node`'s resource `kinds`: values of every kept type (texts that try to
/// leave their quotes, numbers as texts, bytes with 0x00), a key upserted twice, a delete.
fn kinds_changeset(node: &str, seq: u64, name: Option<&str>) -> gdx_common::data::Changeset {
    use gdx_common::data::{Change, Changeset, Column, ResourceCode, Value};
    const TRICKY: [&str; 7] = [
        "O'Brien",
        "back\\slash\\",
        "\\'; DROP SCHEMA v_630000_a CASCADE; --",
        "$$ $gdx$ 多行\n\t文本",
        "E'x'",
        "",
        "零😀",
    ];
    let n = seq as usize;
    let column = |name: &str, decl: &str| Column { name: name.into(), decl_type: decl.into() };
    let text = |t: &str| Value::Text(t.into());
    let mut changes = vec![
        Change::Upsert(vec![
            Value::Integer((n % 5) as i64),
            text(TRICKY[n % 7]),
            Value::Real(n as f64 / 3.0),
            Value::Blob(vec![0, n as u8, 255]),
        ]),
        Change::Upsert(vec![
            text(&format!("{}", 10 + n % 3)),
            text(TRICKY[(n + 1) % 7]),
            Value::Integer(n as i64),
            Value::Null,
        ]),
        Change::Upsert(vec![
            text(&format!("{}", 10 + n % 3)),
            text(name.unwrap_or("again")),
            text(" 2.5"),
            Value::Null,
        ]),
        Change::Delete(vec![Value::Integer(((n + 2) % 5) as i64)]),
        // the first row's key as a text: sorted apart from it, one key as sent
        Change::Upsert(vec![text(&format!("{}", n % 5)), text(TRICKY[(n + 3) % 7]), Value::Null, Value::Null]),
    ];
    if seq == 1 {
        changes.push(Change::Upsert(vec![
            Value::Real(20.0),
            Value::Null,
            Value::Real(f64::INFINITY),
            Value::Blob(vec![]),
        ]));
    }
    Changeset {
        origin: gdx_common::NodeId::parse(node).unwrap(),
        resource: ResourceCode::parse("kinds").unwrap(),
        seq,
        epoch: 9,
        columns: vec![
            column("id", "INTEGER"),
            column("name", "TEXT"),
            column("score", "REAL"),
            column("photo", "BLOB"),
        ],
        key: vec![0],
        changes,
        created_at: 0,
    }
}

/// Applies [`kinds_changeset`] `seq` of `node` with `vaults`.
fn apply_kinds(
    vaults: &gdx_hub::store::vault::Vaults,
    node: &str,
    seq: u64,
) -> Result<gdx_hub::store::vault::Applied, gdx_hub::store::vault::VaultError> {
    let cs = kinds_changeset(node, seq, None);
    let digest = gdx_certs::pki::sha256(&gdx_common::data::encode_changeset(&cs).unwrap());
    vaults.apply(&cs, &digest, None, 1_800_000_000 + seq as i64)
}

#[test]
fn a_small_changeset_in_one_round_trip_does_what_the_ordinary_path_does_and_never_twice() {
    use gdx_hub::store::vault::{Applied, Vaults};
    let Some(pg) = Postgres::start() else { return };
    let hub = Hub::init_sqlite("630000");
    let database = pg.hold_vaults_of(&hub);
    // two hub processes (each with the heads it wrote), and for department b a new one for every
    // changeset: holding no head, it takes the ordinary path every time
    let (one, two) = (Vaults::at(hub.dir.path()).unwrap(), Vaults::at(hub.dir.path()).unwrap());
    let apply = apply_kinds;
    let ordinary = |seq: u64| {
        assert_eq!(apply(&Vaults::at(hub.dir.path()).unwrap(), "630000/b", seq).unwrap(), Applied::Applied);
    };
    let trips = |v: &Vaults| v.postgres().unwrap().applied_in_one_round_trip();
    for seq in 1..=6 {
        assert_eq!(apply(&one, "630000/a", seq).unwrap(), Applied::Applied);
        ordinary(seq);
    }
    assert_eq!(trips(&one), 5, "the first made the table; the next five went in one round trip each");
    // the other process applies 7; sent again to the first (its answer lost in a failover), 7 is
    // planned on the head the first wrote (6), and the guard finds 7 there: a duplicate
    assert_eq!(apply(&two, "630000/a", 7).unwrap(), Applied::Applied);
    ordinary(7);
    assert_eq!(apply(&one, "630000/a", 7).unwrap(), Applied::Duplicate);
    assert_eq!(trips(&one), 5);
    for seq in 8..=12 {
        assert_eq!(apply(&one, "630000/a", seq).unwrap(), Applied::Applied);
        ordinary(seq);
    }
    assert_eq!(trips(&one), 9, "8 read the head again; 9 to 12 in one round trip");
    assert_eq!(apply(&two, "630000/a", 14).unwrap(), Applied::Gap { expected: 13 });
    // the vault's lock held elsewhere (as another hub process's ordinary path holds it) holds the
    // one round trip back until it is let go
    let mut admin = pg.admin(&database);
    let mut holder = admin.transaction().unwrap();
    holder.batch_execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('\"v_630000_a\"'))").unwrap();
    let first = &one;
    std::thread::scope(|scope| {
        let (done, answer) = std::sync::mpsc::channel();
        scope.spawn(move || done.send(apply(first, "630000/a", 13)).unwrap());
        assert!(
            answer.recv_timeout(Duration::from_millis(500)).is_err(),
            "applied while another writer held the vault"
        );
        holder.commit().unwrap();
        assert_eq!(answer.recv_timeout(Duration::from_secs(30)).unwrap().unwrap(), Applied::Applied);
    });
    ordinary(13);
    assert_eq!(trips(&one), 10);
    // a text PostgreSQL cannot hold is refused with the ordinary path's reason, and nothing moves
    let cs = kinds_changeset("630000/a", 14, Some("a\0b"));
    let digest = gdx_certs::pki::sha256(&gdx_common::data::encode_changeset(&cs).unwrap());
    let refused = one.apply(&cs, &digest, None, 0).unwrap_err().to_string();
    assert!(refused.contains("cannot hold this changeset"), "{refused}");

    let one_way = |a: &str, b: &str| -> i64 {
        let sql = format!(
            "SELECT count(*) FROM (SELECT * FROM v_630000_{a}.kinds EXCEPT ALL SELECT * FROM v_630000_{b}.kinds) d"
        );
        pg.admin(&database).query_one(&sql, &[]).unwrap().get(0)
    };
    assert_eq!((one_way("a", "b"), one_way("b", "a")), (0, 0), "the same rows, value for value");
    for s in ["v_630000_a", "v_630000_b"] {
        let row = admin
            .query_one(
                &format!(
                    "SELECT (SELECT last_seq FROM {s}._gdx_resources), (SELECT count(*) FROM {s}._gdx_changesets),
                            (SELECT count(*) FROM {s}.audit_outbox), (SELECT count(*) FROM {s}.kinds)"
                ),
                &[],
            )
            .unwrap();
        let (last, changesets, events, rows): (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!((last, changesets, events), (13, 13, 13), "{s}: each changeset once, one event each");
        assert!(rows >= 4, "{s}: {rows} rows");
    }
    let names: Vec<String> = admin
        .query("SELECT name FROM v_630000_a.kinds WHERE name IS NOT NULL ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // the texts of the last changesets (13 in one round trip), as sent: the ordinary path sends them as parameters
    for sent in ["\\'; DROP SCHEMA v_630000_a CASCADE; --", "back\\slash\\"] {
        assert!(names.iter().any(|n| n == sent), "{sent:?} in {names:?}");
    }
}

#[test]
fn changesets_waiting_for_one_connection_commit_together_and_a_failed_group_loses_none() {
    use gdx_hub::store::vault::{Applied, Vaults};
    let Some(pg) = Postgres::start() else { return };
    let hub = Hub::init_sqlite("630000");
    let database = pg.hold_vaults_of(&hub);
    let (one, two) = (Vaults::at(hub.dir.path()).unwrap(), Vaults::at(hub.dir.path()).unwrap());
    let apply = apply_kinds;
    let pgv = one.postgres().unwrap();
    let node = |n: &str| gdx_common::NodeId::parse(n).unwrap();
    // three departments whose writes go through the same connection as the first's
    let lead = "630000/g0".to_owned();
    let slot = pgv.connection_of(&node(&lead)).unwrap();
    let mates: Vec<String> = (1..200)
        .map(|i| format!("630000/g{i}"))
        .filter(|n| pgv.connection_of(&node(n)).unwrap() == slot)
        .take(3)
        .collect();
    assert_eq!(mates.len(), 3);
    let all: Vec<&str> = std::iter::once(lead.as_str()).chain(mates.iter().map(String::as_str)).collect();
    // department b gets the same changesets by the ordinary path (a new `Vaults` each time holds no head)
    let ordinary = |seq: u64| {
        assert_eq!(apply(&Vaults::at(hub.dir.path()).unwrap(), "630000/b", seq).unwrap(), Applied::Applied);
    };
    for seq in 1..=2 {
        for n in &all {
            assert_eq!(apply(&one, n, seq).unwrap(), Applied::Applied);
        }
        ordinary(seq);
    }
    let wait_until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // The lead's changeset holds the connection, waiting for its vault's lock held elsewhere; the
    // others wait for the connection, then go as one transaction. `stale`: `two` applied this
    // number of the last mate first, so its guard fails the whole group.
    let round = |seq: u64, stale: bool| -> Vec<Applied> {
        if stale {
            assert_eq!(apply(&two, &mates[2], seq).unwrap(), Applied::Applied);
        }
        let mut admin = pg.admin(&database);
        let (sent, _) = pgv.group_commits();
        std::thread::scope(|scope| {
            // held inside the scope: should an assertion fail, it is let go before the threads are joined
            let mut holder = admin.transaction().unwrap();
            holder
                .batch_execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('\"v_630000_g0\"'))")
                .unwrap();
            let first = scope.spawn(|| apply(&one, &lead, seq).unwrap());
            wait_until("the lead's transaction is sent", &|| pgv.group_commits().0 == sent + 1);
            let others: Vec<_> = mates.iter().map(|m| scope.spawn(|| apply(&one, m, seq).unwrap())).collect();
            wait_until("three changesets wait for the connection", &|| pgv.group_commits().1 == 3);
            holder.commit().unwrap();
            let answers: Vec<Applied> = std::iter::once(first).chain(others).map(|t| t.join().unwrap()).collect();
            assert_eq!(pgv.group_commits(), (sent + 2, 0), "the lead's transaction, then the three's");
            answers
        })
    };
    let trips = pgv.applied_in_one_round_trip();
    assert_eq!(round(3, false), vec![Applied::Applied; 4]);
    assert_eq!(pgv.applied_in_one_round_trip(), trips + 4);
    ordinary(3);
    // the group fails and each of its changesets takes the ordinary path: applied, or found there
    let answers = round(4, true);
    assert_eq!(answers, vec![Applied::Applied, Applied::Applied, Applied::Applied, Applied::Duplicate]);
    assert_eq!(pgv.applied_in_one_round_trip(), trips + 5, "only the lead's went in one round trip");
    ordinary(4);
    // the lead's vault locked elsewhere for longer than a group waits: the departments behind it on
    // the connection commit meanwhile, and the lead's changeset waits for the lock on the ordinary path
    for n in &all {
        assert_eq!(apply(&one, n, 5).unwrap(), Applied::Applied);
    }
    ordinary(5);
    let (sent, _) = pgv.group_commits();
    let trips = pgv.applied_in_one_round_trip();
    let mut admin = pg.admin(&database);
    std::thread::scope(|scope| {
        let mut holder = admin.transaction().unwrap();
        holder
            .batch_execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('\"v_630000_g0\"'))")
            .unwrap();
        let first = scope.spawn(|| apply(&one, &lead, 6).unwrap());
        wait_until("the lead's transaction is sent", &|| pgv.group_commits().0 == sent + 1);
        let others: Vec<_> = mates.iter().map(|m| scope.spawn(|| apply(&one, m, 6).unwrap())).collect();
        let answers: Vec<Applied> = others.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(answers, vec![Applied::Applied; 3], "committed while the lead's vault stays locked");
        assert!(!first.is_finished(), "applied while another writer held the vault");
        holder.commit().unwrap();
        assert_eq!(first.join().unwrap(), Applied::Applied);
    });
    assert_eq!(pgv.applied_in_one_round_trip(), trips + 3, "the lead's took the ordinary path");
    ordinary(6);

    let mut admin = pg.admin(&database);
    for n in &all {
        let s = format!("v_{}", n.replace('/', "_"));
        let differ: i64 = admin
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM (SELECT * FROM {s}.kinds EXCEPT ALL SELECT * FROM v_630000_b.kinds) d)
                          + (SELECT count(*) FROM (SELECT * FROM v_630000_b.kinds EXCEPT ALL SELECT * FROM {s}.kinds) d)"
                ),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(differ, 0, "{s} holds what the ordinary path wrote, value for value");
        let row = admin
            .query_one(
                &format!(
                    "SELECT (SELECT last_seq FROM {s}._gdx_resources), (SELECT count(*) FROM {s}._gdx_changesets),
                            (SELECT count(*) FROM {s}.audit_outbox)"
                ),
                &[],
            )
            .unwrap();
        let counts: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(counts, (6, 6, 6), "{s}: each changeset once, one event each");
    }
}
