//! Real database servers for the tests: PostgreSQL and MariaDB from the
//! Debian packages, started by [`gdx_hub::dbservers`] (which the demo uses
//! too) in a temporary directory, with the superuser's client connections
//! the tests and gdx-bench query through. A test skips, loudly, only when a
//! server is not installed and this is not CI.

use std::ops::Deref;

use gdx_hub::dbservers;
pub use gdx_hub::dbservers::{ADMIN, ADMIN_PASSWORD};

/// True when a test that needs `what` may skip: its programs are missing and
/// this is not CI (where .ci/run installs them, and skipping would hide a gap).
pub fn may_skip(what: &str, found: bool) -> bool {
    if found {
        return false;
    }
    assert!(std::env::var_os("CI").is_none(), "{what} is not installed, and in CI every test runs: install it");
    eprintln!("\n!!! SKIPPED: {what} is not installed ({}); this test did not run\n", dbservers::INSTALL);
    true
}

/// A running PostgreSQL server in a temporary directory.
pub struct Postgres {
    server: dbservers::Postgres,
    // dropped after the server has stopped
    _dir: tempfile::TempDir,
}

impl Deref for Postgres {
    type Target = dbservers::Postgres;
    fn deref(&self) -> &Self::Target {
        &self.server
    }
}

impl Postgres {
    /// Starts a server with TLS on, or None (after a loud message) when
    /// PostgreSQL is not installed outside CI.
    pub fn start() -> Option<Self> {
        if may_skip("PostgreSQL", dbservers::Postgres::installed()) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let server = dbservers::Postgres::start(dir.path()).unwrap();
        Some(Self { server, _dir: dir })
    }

    /// A superuser connection to `database`.
    pub fn admin(&self, database: &str) -> postgres::Client {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user(ADMIN)
            .password(ADMIN_PASSWORD)
            .dbname(database)
            .connect(postgres::NoTls)
            .unwrap()
    }

    /// Runs SQL statements as the superuser in `database`.
    pub fn sql(&self, database: &str, statements: &str) {
        self.admin(database).batch_execute(statements).unwrap();
    }

    /// Stops the server at once, as a crash would.
    pub fn kill(&self) {
        self.server.kill().unwrap();
    }

    /// Starts the server again after [`Postgres::kill`].
    pub fn restart(&self) {
        self.server.restart().unwrap();
    }

    /// Starts the server again after [`Postgres::kill`], refusing TLS.
    pub fn restart_without_tls(&self) {
        self.server.restart_without_tls().unwrap();
    }

    /// Restarts the server flushing every commit to disk, as in production.
    pub fn restart_durable(&self) {
        self.server.restart_durable().unwrap();
    }

    /// A streaming-replication standby of this server, following it until
    /// [`Postgres::promote`]d.
    pub fn standby(&self) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let server = self.server.standby(dir.path()).unwrap();
        Postgres { server, _dir: dir }
    }

    /// Promotes this standby to the primary.
    pub fn promote(&self) {
        self.server.promote().unwrap();
    }

    /// Gives `hub` a database of its own here for its vaults, owned by the
    /// hubs' role [`HUB_ROLE`] (made once: NOINHERIT CREATEROLE), and points
    /// its hub.toml at it; returns the database's name.
    pub fn hold_vaults_of(&self, hub: &crate::Hub) -> String {
        let database = self.hub_database();
        self.point_hub_at(hub, HUB_ROLE, &database);
        database
    }

    /// A new database owned by the hubs' role [`HUB_ROLE`] (made once:
    /// NOINHERIT CREATEROLE); returns its name.
    pub fn hub_database(&self) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let database = format!("gdx_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.sql(
            "postgres",
            &format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{HUB_ROLE}') THEN
                     CREATE ROLE {HUB_ROLE} LOGIN PASSWORD '{HUB_PASSWORD}' NOINHERIT CREATEROLE;
                   END IF;
                 END $$"
            ),
        );
        self.sql("postgres", &format!("CREATE DATABASE {database} OWNER {HUB_ROLE}"));
        database
    }

    /// Writes `store = { kind = "postgres", … }` into `hub`'s hub.toml: the
    /// URL of `database` as `role` (password [`HUB_PASSWORD`]) in a 0600
    /// file, and this server's CA to verify it by.
    pub fn point_hub_at(&self, hub: &crate::Hub, role: &str, database: &str) {
        self.point_hub_at_servers(hub, role, database, &[self.port]);
    }

    /// [`Postgres::point_hub_at`], naming the servers on `ports` in the URL
    /// (a primary and its standbys): the hub uses the one that takes writes.
    pub fn point_hub_at_servers(&self, hub: &crate::Hub, role: &str, database: &str, ports: &[u16]) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let url = hub.dir.path().join("db.url");
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&url).unwrap();
        let hosts: Vec<String> = ports.iter().map(|p| format!("localhost:{p}")).collect();
        let hosts = hosts.join(",");
        writeln!(
            f,
            "postgresql://{role}:{HUB_PASSWORD}@{hosts}/{database}?sslmode=require&target_session_attrs=read-write"
        )
        .unwrap();
        let ca = hub.dir.path().join("db-ca.pem");
        std::fs::write(&ca, &self.ca_pem).unwrap();
        let mut toml = std::fs::OpenOptions::new().append(true).open(hub.dir.path().join("hub.toml")).unwrap();
        writeln!(toml, "store = {{ kind = \"postgres\", url_file = {url:?}, ca_file = {ca:?} }}").unwrap();
    }
}

/// `gdx-hub init` for `division`, its stores in SQLite files, or with `pg`
/// all of them in a database of their own there (the second configuration
/// of the tests run by [`crate::on_both_stores`]).
pub fn hub_on(pg: Option<&Postgres>, division: &str) -> crate::Hub {
    let hub = crate::Hub::init_sqlite(division);
    if let Some(pg) = pg {
        pg.hold_vaults_of(&hub);
    }
    hub
}

/// A SQLite copy, made now, of `node`'s vault schema in the PostgreSQL
/// database the hub at `hub_dir` keeps its stores in (read from its URL
/// file; the test's server, as its superuser): every table with its
/// columns as a vault file keeps them (`bigint` INTEGER, `double
/// precision` REAL, `bytea` BLOB, the rest TEXT). It is
/// `HUB/vault-copies/DIVISION-ORG.db`, a path that does not exist while
/// there is no such schema.
pub fn copy_of_vault(hub_dir: &std::path::Path, node: &str) -> std::path::PathBuf {
    let (division, org) = node.split_once('/').unwrap();
    let dir = hub_dir.join("vault-copies");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{division}-{org}.db"));
    let _ = std::fs::remove_file(&file);
    let url = std::fs::read_to_string(hub_dir.join("db.url")).unwrap();
    let (hosts, rest) = url.trim().split_once('@').unwrap().1.split_once('/').unwrap();
    let port: u16 = hosts.split(',').next().unwrap().rsplit(':').next().unwrap().parse().unwrap();
    let database = rest.split('?').next().unwrap();
    let mut admin = postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user(ADMIN)
        .password(ADMIN_PASSWORD)
        .dbname(database)
        .connect(postgres::NoTls)
        .unwrap();
    let schema = format!("v_{division}_{org}");
    let tables: Vec<String> = admin
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1", &[&schema])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    if tables.is_empty() {
        return file;
    }
    let copy = rusqlite::Connection::open(&file).unwrap();
    let tx = copy.unchecked_transaction().unwrap();
    for table in tables {
        let columns: Vec<(String, String)> = admin
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&schema, &table],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let q = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
        let kind = |t: &str| match t {
            "bigint" | "integer" | "smallint" => "INTEGER",
            "double precision" | "real" => "REAL",
            "bytea" => "BLOB",
            _ => "TEXT",
        };
        let declared: Vec<String> = columns.iter().map(|(n, t)| format!("{} {}", q(n), kind(t))).collect();
        tx.execute_batch(&format!("CREATE TABLE {} ({})", q(&table), declared.join(", "))).unwrap();
        let names: Vec<String> = columns.iter().map(|(n, _)| q(n)).collect();
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let insert = format!("INSERT INTO {} VALUES ({})", q(&table), marks.join(", "));
        let select = format!("SELECT {} FROM {}.{}", names.join(", "), q(&schema), q(&table));
        for row in admin.query(select.as_str(), &[]).unwrap() {
            let values: Vec<rusqlite::types::Value> = columns
                .iter()
                .enumerate()
                .map(|(i, (_, t))| {
                    use rusqlite::types::Value as V;
                    match kind(t) {
                        "INTEGER" => row.get::<_, Option<i64>>(i).map_or(V::Null, V::Integer),
                        "REAL" => row.get::<_, Option<f64>>(i).map_or(V::Null, V::Real),
                        "BLOB" => row.get::<_, Option<Vec<u8>>>(i).map_or(V::Null, V::Blob),
                        _ => row.get::<_, Option<String>>(i).map_or(V::Null, V::Text),
                    }
                })
                .collect();
            tx.execute(&insert, rusqlite::params_from_iter(values)).unwrap();
        }
    }
    tx.commit().unwrap();
    file
}

/// The role hubs log in as to keep their vaults in a test's PostgreSQL.
pub const HUB_ROLE: &str = "gdx_hub";
/// Its password.
pub const HUB_PASSWORD: &str = "hub-secret";

/// A running MariaDB server in a temporary directory.
pub struct Mariadb {
    server: dbservers::Mariadb,
    _dir: tempfile::TempDir,
}

impl Deref for Mariadb {
    type Target = dbservers::Mariadb;
    fn deref(&self) -> &Self::Target {
        &self.server
    }
}

impl Mariadb {
    /// Starts a server with TLS on and an administrator [`ADMIN`], or None
    /// (after a loud message) when MariaDB is not installed outside CI.
    pub fn start() -> Option<Self> {
        if may_skip("MariaDB", dbservers::Mariadb::installed()) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let server = dbservers::Mariadb::start(dir.path()).unwrap();
        Some(Self { server, _dir: dir })
    }

    /// An administrator's connection over TCP.
    pub fn admin(&self) -> mysql::Conn {
        let opts = mysql::OptsBuilder::new()
            .ip_or_hostname(Some("127.0.0.1"))
            .tcp_port(self.port)
            .user(Some(ADMIN))
            .pass(Some(ADMIN_PASSWORD))
            .prefer_socket(false);
        mysql::Conn::new(opts).unwrap()
    }

    /// Runs SQL statements (each ending with `;` at a line's end) as the administrator.
    pub fn sql(&self, statements: &str) {
        use mysql::prelude::Queryable;
        let mut conn = self.admin();
        for s in statements.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            conn.query_drop(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }

    /// Starts the server again after [`dbservers::Mariadb::kill`], on the same port.
    pub fn restart(&self) {
        self.server.restart().unwrap();
    }
}
