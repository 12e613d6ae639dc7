//! Real database servers for the tests: PostgreSQL and MariaDB from the
//! Debian packages, each started in a temporary directory on a free port
//! with a CA and server certificate of its own, and stopped when dropped.
//! Run as root (as CI does), a server runs as its package's user
//! (`postgres`, `mysql`), since neither runs as root.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The superuser's name and password in every test server.
pub const ADMIN: &str = "gdx_admin";
pub const ADMIN_PASSWORD: &str = "admin-secret";

/// A running PostgreSQL server.
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    /// The user the server runs as, when the tests run as root.
    run_as: Option<String>,
    /// The PEM of the CA that issued the server's certificate.
    pub ca_pem: String,
}

/// The directory of the PostgreSQL server programs, newest version first;
/// None when PostgreSQL is not installed.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// True when a test that needs `what` may skip: its programs are missing and
/// this is not CI (where .ci/run installs them, and skipping would hide a gap).
pub fn may_skip(what: &str, found: bool) -> bool {
    if found {
        return false;
    }
    assert!(std::env::var_os("CI").is_none(), "{what} is not installed, and in CI every test runs: install it");
    eprintln!(
        "\n!!! SKIPPED: {what} is not installed (apt-get install postgresql mariadb-server); this test did not run\n"
    );
    true
}

/// Writes `server.crt` and `server.key` (for 127.0.0.1 and localhost) into
/// `dir`, issued by a CA of the test's own; returns that CA's PEM.
fn server_certificate(dir: &Path) -> String {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test database CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("server.crt"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::set_permissions(dir.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    ca.pem()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

/// uid and gid of `user` from /etc/passwd.
fn ids_of(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user)).then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))).flatten()
    })
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

impl Postgres {
    /// Starts a server with TLS on, or None (after a loud message) when
    /// PostgreSQL is not installed outside CI.
    pub fn start() -> Option<Self> {
        let bin = postgres_bin();
        if may_skip("PostgreSQL", bin.is_some()) {
            return None;
        }
        let bin = bin?;
        let dir = tempfile::tempdir().unwrap();
        let run_as = is_root().then(|| "postgres".to_owned());
        let data = dir.path().join("data");
        std::fs::write(dir.path().join("pw"), ADMIN_PASSWORD).unwrap();
        let ca_pem = server_certificate(dir.path());
        if let Some(user) = &run_as {
            let (uid, gid) = ids_of(user).expect("the postgres user (from the postgresql package)");
            chown_tree(dir.path(), uid, gid);
        }
        let port = crate::free_tcp_port();
        let pg = Self { dir, port, bin, run_as, ca_pem };
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                ADMIN,
                "--pwfile",
                pg.dir.path().join("pw").to_str().unwrap(),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        );
        pg.launch(true);
        Some(pg)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let out = match &self.run_as {
            Some(user) => Command::new("runuser").arg("-u").arg(user).arg("--").arg(&exe).args(args).output(),
            None => Command::new(&exe).args(args).output(),
        }
        .unwrap();
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
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
        let data = self.dir.path().join("data");
        self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }

    /// Starts the server again after [`Postgres::kill`].
    pub fn restart(&self) {
        self.launch(true);
    }

    /// Starts the server again after [`Postgres::kill`], refusing TLS.
    pub fn restart_without_tls(&self) {
        self.launch(false);
    }

    fn launch(&self, tls: bool) {
        let data = self.dir.path().join("data");
        let ssl = match tls {
            true => format!(
                "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                self.dir.path().join("server.crt").display(),
                self.dir.path().join("server.key").display()
            ),
            false => "-c ssl=off".to_owned(),
        };
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 {ssl} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-t", "60", "-o", &options, "start"],
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "stop"];
        let _ = match &self.run_as {
            Some(user) => Command::new("runuser").arg("-u").arg(user).arg("--").arg(&exe).args(args).output(),
            None => Command::new(&exe).args(args).output(),
        };
    }
}

/// A running MariaDB server.
pub struct Mariadb {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: std::process::Child,
    /// The PEM of the CA that issued the server's certificate.
    pub ca_pem: String,
}

impl Mariadb {
    /// Starts a server with TLS on and an administrator [`ADMIN`], or None
    /// (after a loud message) when MariaDB is not installed outside CI.
    pub fn start() -> Option<Self> {
        let (server, install) = (Path::new("/usr/sbin/mariadbd"), Path::new("/usr/bin/mariadb-install-db"));
        if may_skip("MariaDB", server.exists() && install.exists()) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let ca_pem = server_certificate(dir.path());
        let user = if is_root() { "mysql".to_owned() } else { std::env::var("USER").unwrap_or_default() };
        if is_root() {
            let (uid, gid) = ids_of("mysql").expect("the mysql user (from the mariadb-server package)");
            chown_tree(dir.path(), uid, gid);
        }
        let out = Command::new(install)
            .args(["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "mariadb-install-db failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = crate::free_tcp_port();
        let socket = dir.path().join("sock");
        let child = Command::new(server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--user={user}"))
            .arg(format!("--ssl-cert={}", dir.path().join("server.crt").display()))
            .arg(format!("--ssl-key={}", dir.path().join("server.key").display()))
            .arg(format!("--log-error={}", dir.path().join("error.log").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg("--innodb-flush-log-at-trx-commit=0")
            .spawn()
            .unwrap();
        let db = Self { dir, port, child, ca_pem };
        // as root through the socket, once it answers
        let root = mysql::OptsBuilder::new().socket(Some(socket.display().to_string())).user(Some("root"));
        let started = std::time::Instant::now();
        let mut conn = loop {
            match mysql::Conn::new(root.clone()) {
                Ok(c) => break c,
                Err(e) if started.elapsed() > std::time::Duration::from_secs(60) => {
                    let log = std::fs::read_to_string(db.dir.path().join("error.log")).unwrap_or_default();
                    panic!("MariaDB did not start: {e}; {log}")
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
            }
        };
        use mysql::prelude::Queryable;
        conn.query_drop(format!("CREATE USER {ADMIN}@'%' IDENTIFIED BY '{ADMIN_PASSWORD}'")).unwrap();
        conn.query_drop(format!("GRANT ALL PRIVILEGES ON *.* TO {ADMIN}@'%' WITH GRANT OPTION")).unwrap();
        Some(db)
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
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
