//! End-to-end tests of database sources against real servers started by
//! the harness ([`gdx_tests::servers`]): every common column type reaches
//! the vault exactly, over TLS verified against the server's CA, read by a
//! user that may only SELECT; and each thing a county IT worker can get
//! wrong is answered with what to do.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use gdx_tests::servers::{Mariadb, Postgres};
use gdx_tests::{Agent, Hub, vault};

const NODE: &str = "630000/gongan";

/// The department's database: a reader role that may only SELECT, a table
/// of every common type, and one it may not read.
fn department(pg: &Postgres) {
    pg.sql("postgres", "CREATE DATABASE dept");
    pg.sql("postgres", "CREATE ROLE gdx_reader LOGIN PASSWORD 'reader-secret'");
    pg.sql(
        "dept",
        r#"CREATE TYPE mood AS ENUM ('happy', 'sad');
        CREATE TABLE people (
            id bigint PRIMARY KEY, small smallint, mid integer, amount numeric(14,2), ratio double precision,
            r4 real, name text, code varchar(18), flag boolean, born date, at_time time, at_ts timestamp,
            at_tz timestamptz, photo bytea, doc jsonb, uid uuid, feeling mood);
        INSERT INTO people VALUES
            (9223372036854775807, -32768, 2147483647, 12345678901.10, 0.1, 1.5, '卓玛 བཀྲ་ཤིས', '632522198001010012',
             true, '2026-12-05', '01:02:03.25', '2026-12-05 01:02:03.123456', '2026-12-05 09:02:03+08', '\x00ff',
             '{"a": 1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        CREATE TABLE secret (id int PRIMARY KEY, x text);
        CREATE TABLE shapes (id int PRIMARY KEY, at point);
        GRANT SELECT ON people, shapes TO gdx_reader;"#,
    );
}

fn password_file(dir: &Path, password: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("pg.password");
    std::fs::write(&file, password).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    file
}

/// A resource `code` reading `table` from the test server, with `extra` source keys.
fn resource(pg: &Postgres, code: &str, table: &str, password: &Path, extra: &str) -> String {
    format!(
        "[[resource]]\ncode = \"{code}\"\nkey = [\"id\"]\nsource = {{ kind = \"postgres\", host = \"127.0.0.1\", port = {}, database = \"dept\", user = \"gdx_reader\", password_file = \"{}\", table = \"{table}\"{extra} }}\n",
        pg.port,
        password.display()
    )
}

fn rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = c.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                rusqlite::types::ValueRef::Integer(i) => format!("int {i}"),
                rusqlite::types::ValueRef::Real(f) => format!("real {f}"),
                rusqlite::types::ValueRef::Text(t) => format!("text {}", String::from_utf8_lossy(t)),
                rusqlite::types::ValueRef::Blob(b) => format!("blob {b:?}"),
            })
            .collect())
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Each case is a resource declared by an agent of its own (`630000/{prefix}N`):
/// its sync fails, saying `want`.
fn each_fails_saying(hub: &Hub, prefix: &str, cases: Vec<(&str, String, &str)>) {
    for (i, (what, toml, want)) in cases.into_iter().enumerate() {
        let one = Agent::new();
        one.enroll(&hub.token(&format!("630000/{prefix}{i}"), "1h")).ok();
        one.add_config(&toml);
        let (code, out) = said(&one);
        assert_ne!(code, 0, "{what}: {out}");
        assert!(out.contains(want), "{what}: {out}");
    }
}

/// Syncs and returns what the sync said, whether it succeeded or not.
fn said(agent: &Agent) -> (i32, String) {
    let (code, out, err) = agent.sync(&[]);
    (code, format!("{out} {err}"))
}

#[test]
fn postgres_every_type_over_verified_tls_and_errors_a_worker_can_act_on() {
    gdx_tests::files_only(
        "it compares each column's stored kind in the vault file with SQLite's affinities (on PostgreSQL dates and decimals are text, as operator.md says)",
    );
    let Some(pg) = Postgres::start() else { return };
    department(&pg);
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token(NODE, "1h")).ok();
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("db-ca.pem");
    std::fs::write(&ca, &pg.ca_pem).unwrap();
    let password = password_file(tmp.path(), "reader-secret");
    agent.add_config(&resource(
        &pg,
        "people",
        "people",
        &password,
        &format!(", tls = \"verify\", ca_file = \"{}\"", ca.display()),
    ));
    let (code, out) = said(&agent);
    assert_eq!(code, 0, "{out}");

    let v = vault(&hub, NODE);
    let got = rows(&v, "SELECT * FROM people ORDER BY id DESC");
    let want: Vec<&str> = vec![
        "int 9223372036854775807",
        "int -32768",
        "int 2147483647",
        "text 12345678901.10",
        "real 0.1",
        "real 1.5",
        "text 卓玛 བཀྲ་ཤིས",
        "text 632522198001010012",
        "int 1",
        "text 2026-12-05",
        "text 01:02:03.25",
        "text 2026-12-05 01:02:03.123456",
        "text 2026-12-05 01:02:03+00:00",
        "blob [0, 255]",
        "text {\"a\": 1}",
        "text a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "text happy",
    ];
    assert_eq!(got[0], want, "every type, exactly");
    assert_eq!(got[1][1..].iter().filter(|c| *c == "NULL").count(), 16, "NULLs stay NULL");
    let decl = rows(&v, "SELECT type FROM pragma_table_info('people') ORDER BY cid");
    assert_eq!(decl[0], ["text INTEGER"]);
    assert_eq!(decl[3], ["text TEXT"], "numeric is kept as exact text");

    // doctor says whether the database user may only read
    let doctor = agent.cmd(&["doctor"]).stdout;
    assert!(doctor.contains("people: the database user may only read"), "{doctor}");
    let admin = Agent::new();
    admin.enroll(&hub.token("630000/admin", "1h")).ok();
    std::fs::create_dir_all(tmp.path().join("admin")).unwrap();
    let admin_password = password_file(&tmp.path().join("admin"), gdx_tests::servers::ADMIN_PASSWORD);
    admin.add_config(
        &resource(&pg, "people", "people", &admin_password, "").replace("gdx_reader", gdx_tests::servers::ADMIN),
    );
    let doctor = admin.cmd(&["doctor"]).stdout;
    assert!(doctor.contains("the database user can write (gdx_admin is a superuser"), "{doctor}");

    // a change is found like any other source's
    pg.sql("dept", "UPDATE people SET name = '才让' WHERE id = 2; DELETE FROM people WHERE id <> 2");
    let (code, out) = said(&agent);
    assert_eq!(code, 0, "{out}");
    assert_eq!(rows(&v, "SELECT id, name FROM people"), [["int 2", "text 才让"]]);

    // a text key and a composite key, read in key order (by the bytes of
    // the text, COLLATE "C"): keys that sort differently by bytes and by
    // dictionary, and deletions found beside the saved state
    pg.sql(
        "dept",
        "CREATE TABLE texts (id text PRIMARY KEY, n int);
         INSERT INTO texts VALUES ('b', 1), ('B', 2), ('a', 3), ('é', 4), ('卓玛', 5), ('Z', 6), ('a b', 7), ('ab', 8), ('', 9);
         CREATE TABLE pairs (division int, id varchar(20), n int, PRIMARY KEY (division, id));
         INSERT INTO pairs SELECT d, 'k' || i, i FROM generate_series(1, 3) d, generate_series(1, 10000) i
             ORDER BY d, ('k' || i) COLLATE \"C\";
         ANALYZE pairs;
         GRANT SELECT ON texts, pairs TO gdx_reader;",
    );
    agent.add_config(&resource(&pg, "texts", "texts", &password, ""));
    agent.add_config(
        &resource(&pg, "pairs", "pairs", &password, "").replace("key = [\"id\"]", "key = [\"division\", \"id\"]"),
    );
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{out} {err}");
    let read = |out: &serde_json::Value, code: &str| {
        out["resources"].as_array().unwrap().iter().find(|r| r["resource"] == code).unwrap()["read"].clone()
    };
    assert_eq!(read(&out, "pairs"), "key_order", "an index gives the key order: {out}");
    pg.sql("dept", "DELETE FROM texts WHERE id IN ('B', '卓玛', ''); UPDATE texts SET n = 0 WHERE id = 'ab'; DELETE FROM pairs WHERE id LIKE 'k1%';");
    let (code, out) = said(&agent);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        rows(&v, "SELECT id, n FROM texts ORDER BY n"),
        [
            ["text ab", "int 0"],
            ["text b", "int 1"],
            ["text a", "int 3"],
            ["text é", "int 4"],
            ["text Z", "int 6"],
            ["text a b", "int 7"]
        ]
    );
    assert_eq!(rows(&v, "SELECT count(*), sum(n) FROM pairs"), [["int 26664", "int 145441212"]]);

    // what a county IT worker can get wrong, each answered with what to do
    std::fs::create_dir_all(tmp.path().join("wrong")).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong password",
            resource(&pg, "w1", "people", &password_file(&tmp.path().join("wrong"), "nope"), ""),
            "the user or password is wrong",
        ),
        ("no such table", resource(&pg, "w2", "nowhere", &password, ""), "the table does not exist"),
        (
            "no SELECT granted",
            resource(&pg, "w3", "secret", &password, ""),
            "may not read it; the database administrator runs GRANT SELECT",
        ),
        (
            "a type GDX does not read",
            resource(&pg, "w4", "shapes", &password, ""),
            "column at has type point, which GDX does not read; cast it in a query",
        ),
        (
            "the server's certificate from another CA",
            resource(
                &pg,
                "w5",
                "people",
                &password,
                &format!(", tls = \"verify\", ca_file = \"{}\"", tmp.path().join("other-ca.pem").display()),
            ),
            "ca_file",
        ),
    ];
    let other = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    std::fs::write(tmp.path().join("other-ca.pem"), other.pem()).unwrap();
    each_fails_saying(&hub, "case", cases);

    // unreachable: nothing listens on the port
    let nowhere = Agent::new();
    nowhere.enroll(&hub.token("630000/nowhere", "1h")).ok();
    let toml = resource(&pg, "gone", "people", &password, "")
        .replace(&pg.port.to_string(), &gdx_tests::free_tcp_port().to_string());
    nowhere.add_config(&toml);
    let (code, out) = said(&nowhere);
    assert!(code != 0 && out.contains("cannot be reached; check host and port"), "{out}");

    // a password file others can read is refused
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out) = said(&agent);
    assert!(code != 0 && out.contains("is open to other users (mode 644)"), "{out}");
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();

    // TLS asked for, and a server that does not speak it
    pg.kill();
    pg.restart_without_tls();
    let plain = Agent::new();
    plain.enroll(&hub.token("630000/plain", "1h")).ok();
    plain.add_config(&resource(&pg, "people", "people", &password, ", tls = \"required\""));
    let (code, out) = said(&plain);
    assert!(code != 0 && out.contains("the server does not accept TLS"), "{out}");
    pg.kill();
    pg.restart();

    // reads by watermark over a timestamptz
    pg.sql(
        "dept",
        "CREATE TABLE wm (id int PRIMARY KEY, name text, updated_at timestamptz);
         INSERT INTO wm SELECT i, 'n' || i, '2026-01-01 00:00:00+08' FROM generate_series(1, 100) i;
         GRANT SELECT ON wm TO gdx_reader;",
    );
    let by_mark = Agent::new();
    by_mark.enroll(&hub.token("630000/pgwm", "1h")).ok();
    by_mark.add_config(
        &resource(&pg, "wm", "wm", &password, "").replace("key = [\"id\"]", "key = [\"id\"]\nchanged = \"updated_at\""),
    );
    let scanned = |agent: &Agent| agent.sync(&[]).1["resources"][0]["scanned"].as_u64();
    assert_eq!(scanned(&by_mark), Some(100));
    pg.sql("dept", "UPDATE wm SET name = '卓玛', updated_at = '2026-06-01 00:00:00+00' WHERE id = 5");
    assert_eq!(scanned(&by_mark), Some(100));
    assert_eq!(scanned(&by_mark), Some(100), "the overlap");
    assert_eq!(scanned(&by_mark), Some(1), "from the watermark: only the changed row");

    // a column whose type changed is schema drift, as for SQLite
    pg.sql("dept", "ALTER TABLE people ALTER COLUMN small TYPE text");
    let (_, out) = said(&agent);
    assert!(out.contains("small"), "the drift names the column: {out}");
}

/// A resource `code` reading `dept.table` from the test MariaDB, with `extra` source keys.
fn mysql_resource(db: &Mariadb, code: &str, table: &str, password: &Path, extra: &str) -> String {
    format!(
        "[[resource]]\ncode = \"{code}\"\nkey = [\"id\"]\nsource = {{ kind = \"mysql\", host = \"127.0.0.1\", port = {}, database = \"dept\", user = \"gdx_reader\", password_file = \"{}\", table = \"{table}\"{extra} }}\n",
        db.port,
        password.display()
    )
}

#[test]
fn mysql_every_type_gbk_columns_over_verified_tls_and_errors() {
    gdx_tests::files_only(
        "it compares each column's stored kind in the vault file with SQLite's affinities (on PostgreSQL dates and decimals are text, as operator.md says)",
    );
    let Some(my) = Mariadb::start() else { return };
    my.sql(
        "CREATE DATABASE dept;
        CREATE USER gdx_reader@'%' IDENTIFIED BY 'reader-secret';
        SET time_zone = '+00:00';
        CREATE TABLE dept.people (
            id BIGINT PRIMARY KEY, small SMALLINT, u BIGINT UNSIGNED, amount DECIMAL(14,2), ratio DOUBLE,
            r4 FLOAT, name VARCHAR(50) CHARACTER SET gbk, code CHAR(18), flag BOOLEAN, born DATE, at_time TIME(2),
            at_dt DATETIME(6), at_ts TIMESTAMP NULL, photo VARBINARY(10), doc JSON, uid UUID,
            feeling ENUM('happy', 'sad'), bits BIT(8), txt TEXT CHARACTER SET gbk);
        INSERT INTO dept.people VALUES
            (9223372036854775807, -32768, 4294967295, 12345678901.10, 0.1, 1.5, '卓玛', '632522198001010012', TRUE,
             '2026-12-05', '01:02:03.25', '2026-12-05 01:02:03.123456', '2026-12-05 01:02:03', x'00ff', '{\"a\": 1}',
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', b'101', '长文本'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        CREATE TABLE dept.secret (id INT PRIMARY KEY, x TEXT);
        GRANT SELECT ON dept.people TO gdx_reader@'%';
        ",
    );
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token(NODE, "1h")).ok();
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("db-ca.pem");
    std::fs::write(&ca, &my.ca_pem).unwrap();
    let password = password_file(tmp.path(), "reader-secret");
    agent.add_config(&mysql_resource(
        &my,
        "people",
        "people",
        &password,
        &format!(", tls = \"verify\", ca_file = \"{}\"", ca.display()),
    ));
    let (code, out) = said(&agent);
    assert_eq!(code, 0, "{out}");
    let v = vault(&hub, NODE);
    let got = rows(&v, "SELECT * FROM people ORDER BY id DESC");
    let want: Vec<&str> = vec![
        "int 9223372036854775807",
        "int -32768",
        "int 4294967295",
        "text 12345678901.10",
        "real 0.1",
        "real 1.5",
        "text 卓玛",
        "text 632522198001010012",
        "int 1",
        "text 2026-12-05",
        "text 01:02:03.25",
        "text 2026-12-05 01:02:03.123456",
        "text 2026-12-05 01:02:03+00:00",
        "blob [0, 255]",
        "text {\"a\": 1}",
        "text a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "text happy",
        "int 5",
        "text 长文本",
    ];
    assert_eq!(got[0], want, "every type, exactly; GBK columns as UTF-8");
    assert_eq!(got[1][1..].iter().filter(|c| *c == "NULL").count(), 18, "NULLs stay NULL");
    let doctor = agent.cmd(&["doctor"]).stdout;
    assert!(doctor.contains("people: the database user may only read"), "{doctor}");
    let admin = Agent::new();
    admin.enroll(&hub.token("630000/myadmin", "1h")).ok();
    std::fs::create_dir_all(tmp.path().join("admin")).unwrap();
    let admin_password = password_file(&tmp.path().join("admin"), gdx_tests::servers::ADMIN_PASSWORD);
    admin.add_config(
        &mysql_resource(&my, "people", "people", &admin_password, "").replace("gdx_reader", gdx_tests::servers::ADMIN),
    );
    let doctor = admin.cmd(&["doctor"]).stdout;
    assert!(doctor.contains("the database user can write (gdx_admin holds GRANT ALL PRIVILEGES"), "{doctor}");

    my.sql("UPDATE dept.people SET name = '才让' WHERE id = 2;\nDELETE FROM dept.people WHERE id <> 2;\n");
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out["resources"][0]["read"], "key_order", "by the primary key, beside the saved state: {out}");
    assert_eq!(rows(&v, "SELECT id, name FROM people"), [["int 2", "text 才让"]]);

    // reads by watermark over a TIMESTAMP
    my.sql(
        "USE dept;
        SET time_zone = '+00:00';
        CREATE TABLE dept.wm (id INT PRIMARY KEY, name VARCHAR(20), updated_at TIMESTAMP(3) NULL);
        INSERT INTO dept.wm SELECT seq, CONCAT('n', seq), '2026-01-01 00:00:00' FROM seq_1_to_100;
        GRANT SELECT ON dept.wm TO gdx_reader@'%';
        ",
    );
    let by_mark = Agent::new();
    by_mark.enroll(&hub.token("630000/mywm", "1h")).ok();
    by_mark.add_config(
        &mysql_resource(&my, "wm", "wm", &password, "")
            .replace("key = [\"id\"]", "key = [\"id\"]\nchanged = \"updated_at\""),
    );
    let scanned = |agent: &Agent| agent.sync(&[]).1["resources"][0]["scanned"].as_u64();
    assert_eq!(scanned(&by_mark), Some(100));
    my.sql("SET time_zone = '+00:00';\nUPDATE dept.wm SET name = 'zhuoma', updated_at = '2026-06-01 00:00:00.5' WHERE id = 5;\n");
    assert_eq!(scanned(&by_mark), Some(100));
    assert_eq!(scanned(&by_mark), Some(100), "the overlap");
    assert_eq!(scanned(&by_mark), Some(1), "from the watermark: only the changed row");

    std::fs::create_dir_all(tmp.path().join("wrong")).unwrap();
    let other = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    std::fs::write(tmp.path().join("other-ca.pem"), other.pem()).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong password",
            mysql_resource(&my, "w1", "people", &password_file(&tmp.path().join("wrong"), "nope"), ""),
            "the user or password is wrong",
        ),
        ("no such table", mysql_resource(&my, "w2", "nowhere", &password, ""), "or it does not exist"),
        ("no SELECT granted", mysql_resource(&my, "w3", "secret", &password, ""), "may not read it"),
        (
            "the server's certificate from another CA",
            mysql_resource(
                &my,
                "w5",
                "people",
                &password,
                &format!(", tls = \"verify\", ca_file = \"{}\"", tmp.path().join("other-ca.pem").display()),
            ),
            "ca_file",
        ),
    ];
    each_fails_saying(&hub, "my", cases);
    let nowhere = Agent::new();
    nowhere.enroll(&hub.token("630000/mynowhere", "1h")).ok();
    let port = my.port.to_string();
    nowhere.add_config(
        &mysql_resource(&my, "gone", "people", &password, "")
            .replace(&format!("port = {port}"), &format!("port = {}", gdx_tests::free_tcp_port())),
    );
    let (code, out) = said(&nowhere);
    assert!(code != 0 && out.contains("cannot be reached; check host and port"), "{out}");
}

/// Starts a sync, kills its server (`kill`) three seconds in, while the
/// read waits in the middle, and checks the sync fails saying why.
fn sync_fails_when_killed(agent: &Agent, kill: impl FnOnce()) {
    let sync = std::process::Command::new(gdx_tests::bin("gdx-agent"))
        .args(["--data", agent.data(), "sync", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    kill();
    let out = sync.wait_with_output().unwrap();
    let told = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the sync fails: {told}");
    assert!(told.contains("resource many: cannot read the source"), "{told}");
}

/// The server is killed in the middle of a sync's read: the sync fails
/// cleanly, saying so, nothing is taken for deleted, and once the server is
/// back the next sync completes and the vault equals the table.
#[test]
fn a_postgres_server_killed_mid_read_leaves_nothing_half_done() {
    gdx_tests::files_only(
        "it compares each column's stored kind in the vault file with SQLite's affinities (on PostgreSQL dates and decimals are text, as operator.md says)",
    );
    let Some(pg) = Postgres::start() else { return };
    department(&pg);
    pg.sql(
        "dept",
        "CREATE TABLE many (id int PRIMARY KEY, name text);
         INSERT INTO many SELECT i, 'name ' || i FROM generate_series(1, 20000) i;
         CREATE TABLE slow_flag (on_ boolean);
         INSERT INTO slow_flag VALUES (true);
         -- row 12000 waits while the flag is up: the read is mid-way, for certain, when the server dies
         CREATE FUNCTION slow(i int) RETURNS int AS $$
         BEGIN
             IF i = 12000 AND EXISTS (SELECT 1 FROM slow_flag) THEN PERFORM pg_sleep(30); END IF;
             RETURN i;
         END $$ LANGUAGE plpgsql;
         GRANT SELECT ON many, slow_flag TO gdx_reader;",
    );
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token(NODE, "1h")).ok();
    let tmp = tempfile::tempdir().unwrap();
    let password = password_file(tmp.path(), "reader-secret");
    agent.add_config(
        &resource(&pg, "many", "many", &password, "")
            .replace("table = \"many\"", "query = \"SELECT slow(id) AS id, name FROM many ORDER BY id\""),
    );
    sync_fails_when_killed(&agent, || pg.kill());
    pg.restart();
    pg.sql("dept", "DELETE FROM slow_flag");
    let (code, out) = said(&agent);
    assert_eq!(code, 0, "{out}");
    let v = vault(&hub, NODE);
    assert_eq!(rows(&v, "SELECT count(*), sum(id) FROM many"), [["int 20000", "int 200010000"]]);
}

/// The same against MariaDB: the server is killed while a sync streams its
/// result, the sync fails saying so, and after a restart the next sync
/// completes with the vault equal to the table.
#[test]
fn a_mariadb_server_killed_mid_read_leaves_nothing_half_done() {
    gdx_tests::files_only(
        "it compares each column's stored kind in the vault file with SQLite's affinities (on PostgreSQL dates and decimals are text, as operator.md says)",
    );
    let Some(my) = Mariadb::start() else { return };
    my.sql(
        "CREATE DATABASE dept;
        CREATE USER gdx_reader@'%' IDENTIFIED BY 'reader-secret';
        USE dept;
        CREATE TABLE dept.many (id INT PRIMARY KEY, name VARCHAR(40));
        INSERT INTO dept.many SELECT seq, CONCAT('name ', seq) FROM seq_1_to_20000;
        CREATE TABLE dept.slow_flag (on_ BOOLEAN);
        CREATE FUNCTION dept.slow(i INT) RETURNS INT NOT DETERMINISTIC READS SQL DATA BEGIN IF i = 12000 AND (SELECT COUNT(*) FROM dept.slow_flag) > 0 THEN DO SLEEP(30); END IF; RETURN i; END;
        GRANT SELECT ON dept.many TO gdx_reader@'%';
        GRANT SELECT ON dept.slow_flag TO gdx_reader@'%';
        GRANT EXECUTE ON FUNCTION dept.slow TO gdx_reader@'%';
        ",
    );
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token(NODE, "1h")).ok();
    let tmp = tempfile::tempdir().unwrap();
    let password = password_file(tmp.path(), "reader-secret");
    // row 12000 waits while the flag is up: the result is mid-stream, for certain, when the server dies
    agent.add_config(
        &mysql_resource(&my, "many", "many", &password, "")
            .replace("table = \"many\"", "query = \"SELECT dept.slow(id) AS id, name FROM dept.many\""),
    );
    let (code, out) = said(&agent);
    assert_eq!(code, 0, "{out}");
    my.sql("UPDATE dept.many SET name = 'changed' WHERE id % 100 = 0;\nINSERT INTO dept.slow_flag VALUES (TRUE);\n");
    sync_fails_when_killed(&agent, || my.kill());
    let v = vault(&hub, NODE);
    assert_eq!(rows(&v, "SELECT count(*) FROM many"), [["int 20000"]], "the rows not read are not taken for deleted");
    my.restart();
    my.sql("DELETE FROM dept.slow_flag;\n");
    let (code, out) = said(&agent);
    assert_eq!(code, 0, "{out}");
    assert_eq!(rows(&v, "SELECT count(*), sum(id) FROM many"), [["int 20000", "int 200010000"]]);
    assert_eq!(rows(&v, "SELECT count(*) FROM many WHERE name = 'changed'"), [["int 200"]]);
}

/// `changed = "updated_at"`: a sync reads only the rows at or past the
/// greatest value seen before the read before last (so a change committed
/// late is still found), deletions wait for the reconcile or `sync --full`,
/// and after it the vault equals the source. SQLite here; the same reads run against
/// PostgreSQL and MySQL through their own SQL.
#[test]
fn watermark_reads_take_only_changed_rows_and_reconcile_finds_deletions() {
    gdx_tests::files_only(
        "it compares each column's stored kind in the vault file with SQLite's affinities (on PostgreSQL dates and decimals are text, as operator.md says)",
    );
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token(NODE, "1h")).ok();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("src.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, updated_at INTEGER);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
         INSERT INTO people SELECT i, 'name ' || i, 100 FROM n;",
    )
    .unwrap();
    agent.add_config(&format!(
        "[[resource]]\ncode = \"people\"\nkey = [\"id\"]\nchanged = \"updated_at\"\nreconcile = \"30d\"\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"people\" }}\n",
        db.display()
    ));
    let scanned = |agent: &Agent| {
        let (code, out, err) = agent.sync(&[]);
        assert_eq!(code, 0, "{out} {err}");
        out["resources"][0]["scanned"].as_u64().unwrap()
    };
    assert_eq!(scanned(&agent), 1000, "the first read is whole");
    c.execute_batch("UPDATE people SET name = '卓玛', updated_at = 200 WHERE id = 7; DELETE FROM people WHERE id = 9;")
        .unwrap();
    // from the watermark 100 taken before the first read: every row
    assert_eq!(scanned(&agent), 999);
    c.execute_batch("UPDATE people SET name = '才让', updated_at = 300 WHERE id = 8;").unwrap();
    // from the watermark of the read before last (100): the overlap re-reads what the last read might have missed
    assert_eq!(scanned(&agent), 999);
    // a change committed late, stamped before the last watermark (300) but after the one before (200): still found
    c.execute_batch("UPDATE people SET name = '拉毛', updated_at = 250 WHERE id = 10;").unwrap();
    assert_eq!(scanned(&agent), 3, "rows 7, 8 and 10, from 200");
    assert_eq!(scanned(&agent), 1, "row 8, from 300");
    // a new row is counted among those the resource holds (row 9 is still held: its deletion waits)
    c.execute_batch("INSERT INTO people VALUES (1001, 'new', 400);").unwrap();
    assert_eq!(scanned(&agent), 2, "row 8 and the new row 1001, from 300");
    let status = agent.cmd(&["status"]).stdout;
    assert!(status.contains("rows 1001,"), "{status}");
    let v = vault(&hub, NODE);
    let names = |v: &Path| rows(v, "SELECT name FROM people WHERE id IN (7, 8, 9, 10) ORDER BY id");
    assert_eq!(names(&v), [["text 卓玛"], ["text 才让"], ["text name 9"], ["text 拉毛"]], "row 9's deletion waits");
    // the reconcile, asked for now, reads whole and finds the deletion
    let (code, out, err) = agent.sync(&["--full"]);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out["resources"][0]["scanned"].as_u64(), Some(1000));
    assert_eq!(names(&v), [["text 卓玛"], ["text 才让"], ["text 拉毛"]]);
    assert_eq!(rows(&v, "SELECT count(*) FROM people"), [["int 1000"]]);
    let status = agent.cmd(&["status"]).stdout;
    assert!(status.contains("rows 1000,"), "{status}");
}
