//! Real database servers from the Debian packages: a PostgreSQL and a
//! MariaDB, each started in a directory of its own on a free port of
//! 127.0.0.1, with TLS by a CA of its own, and stopped when dropped. The
//! demo's departments keep their data in them, and the tests and gdx-bench
//! read them (`gdx_tests::servers` adds client connections).
//!
//! Run as root (as CI does), a server runs as its package's user
//! (`postgres`, `mysql`), since neither runs as root; its directory is then
//! given to that user, and every directory above it must let others pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The superuser's name and password in every server started here.
pub const ADMIN: &str = "gdx_admin";
pub const ADMIN_PASSWORD: &str = "admin-secret";

/// How to install the servers, for messages.
pub const INSTALL: &str = "apt-get install postgresql mariadb-server";

/// The directory of the PostgreSQL server programs, newest version first;
/// None when PostgreSQL is not installed.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("psql").exists())
        .collect();
    versions.sort();
    versions.pop()
}

const MARIADBD: &str = "/usr/sbin/mariadbd";
const MARIADB_INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
const MARIADB_CLIENT: &str = "/usr/bin/mariadb";

/// A free TCP port of 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// uid and gid of `user` from /etc/passwd.
fn ids_of(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user)).then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))).flatten()
    })
}

/// Gives `path` and everything below it to `user` (when running as root).
fn give_to(path: &Path, user: &str) -> anyhow::Result<()> {
    let (uid, gid) =
        ids_of(user).with_context(|| format!("there is no user {user}; reinstall the server's package"))?;
    fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        if path.is_dir() {
            for e in std::fs::read_dir(path)? {
                chown_tree(&e?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    chown_tree(path, uid, gid).with_context(|| format!("cannot give {} to {user}", path.display()))
}

/// Creates `dir` (new or empty) for a server.
fn server_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!("{} is not empty; a database server needs a new directory", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes `server.crt` and `server.key` (for 127.0.0.1 and localhost) into
/// `dir`, issued by a CA made here; returns that CA's PEM.
fn server_certificate(dir: &Path) -> anyhow::Result<String> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "GDX database server CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?
        .signed_by(&key, &issuer)?;
    std::fs::write(dir.join("server.crt"), leaf.pem())?;
    std::fs::write(dir.join("server.key"), key.serialize_pem())?;
    std::fs::set_permissions(dir.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    std::fs::write(dir.join("ca.crt"), ca.pem())?;
    Ok(ca.pem())
}

/// Runs `cmd`, failing with its output when it fails.
fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Runs `cmd` with `script` on its standard input.
fn run_script(mut cmd: Command, script: &str, what: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    // the client reads as it runs; write from a thread so a long script cannot block on a full pipe
    let script = script.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if !out.status.success() {
        bail!("{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A running PostgreSQL server.
pub struct Postgres {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    /// The user the server runs as, when started by root.
    run_as: Option<String>,
    /// The PEM of the CA that issued the server's certificate (also `ca.crt` in `dir`).
    pub ca_pem: String,
    /// Whether commits are flushed to disk (`fsync`), off unless asked:
    /// a test's crash is of the server's process, which loses nothing the
    /// kernel holds, while a benchmark measures the flushes.
    durable: std::sync::atomic::AtomicBool,
}

impl Postgres {
    /// True when the PostgreSQL server programs are installed.
    pub fn installed() -> bool {
        postgres_bin().is_some()
    }

    /// Starts a server with TLS on in `dir` (new or empty), with the superuser [`ADMIN`].
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let bin = postgres_bin().with_context(|| format!("PostgreSQL is not installed; install it with {INSTALL}"))?;
        server_dir(dir)?;
        let run_as = is_root().then(|| "postgres".to_owned());
        std::fs::write(dir.join("pw"), ADMIN_PASSWORD)?;
        let ca_pem = server_certificate(dir)?;
        if let Some(user) = &run_as {
            give_to(dir, user)?;
        }
        let pg = Self {
            dir: dir.to_owned(),
            port: free_port()?,
            bin,
            run_as,
            ca_pem,
            durable: std::sync::atomic::AtomicBool::new(false),
        };
        let (data, pw) = (pg.path("data"), pg.path("pw"));
        let args = ["-D", &data, "-U", ADMIN, "--pwfile", &pw, "--auth-local=trust", "--auth-host=scram-sha-256"];
        run(pg.server_program("initdb", &args).args(["-E", "UTF8", "--no-locale"]), "initdb")?;
        pg.launch(true)?;
        Ok(pg)
    }

    /// `name` in the server's directory, as text for an argument.
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A server program, run as the server's user.
    fn server_program(&self, program: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.args(args);
        cmd
    }

    /// Runs an SQL script in `database` as the superuser, through `psql`;
    /// the first failing statement stops it.
    pub fn script(&self, database: &str, sql: &str) -> anyhow::Result<()> {
        let mut psql = Command::new(self.bin.join("psql"));
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", ADMIN, "-d", database, "-f", "-"])
            .arg("-p")
            .arg(self.port.to_string())
            .env("PGPASSWORD", ADMIN_PASSWORD);
        run_script(psql, sql, "psql")
    }

    /// Stops the server at once, as a crash would.
    pub fn kill(&self) -> anyhow::Result<()> {
        run(
            &mut self.server_program("pg_ctl", &["-D", &self.path("data"), "-m", "immediate", "-w", "stop"]),
            "pg_ctl stop",
        )
    }

    /// Starts the server again after [`Postgres::kill`].
    pub fn restart(&self) -> anyhow::Result<()> {
        self.launch(true)
    }

    /// Starts the server again after [`Postgres::kill`], refusing TLS.
    pub fn restart_without_tls(&self) -> anyhow::Result<()> {
        self.launch(false)
    }

    /// Restarts the server flushing every commit to disk (`fsync = on`),
    /// as a production server does.
    pub fn restart_durable(&self) -> anyhow::Result<()> {
        self.durable.store(true, std::sync::atomic::Ordering::Relaxed);
        run(
            &mut self.server_program("pg_ctl", &["-D", &self.path("data"), "-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        )?;
        self.launch(true)
    }

    /// Starts a streaming-replication standby of this server in `dir` (new
    /// or empty): a base backup taken over the replication protocol, with
    /// the same server certificate, following this server until promoted.
    pub fn standby(&self, dir: &Path) -> anyhow::Result<Self> {
        server_dir(dir)?;
        for f in ["server.crt", "server.key", "ca.crt", "pw"] {
            if self.dir.join(f).exists() {
                std::fs::copy(self.dir.join(f), dir.join(f)).with_context(|| format!("cannot copy {f}"))?;
            }
        }
        if let Some(user) = &self.run_as {
            give_to(dir, user)?;
        }
        let standby = Self {
            dir: dir.to_owned(),
            port: free_port()?,
            bin: self.bin.clone(),
            run_as: self.run_as.clone(),
            ca_pem: self.ca_pem.clone(),
            durable: std::sync::atomic::AtomicBool::new(false),
        };
        let port = self.port.to_string();
        let data = standby.path("data");
        // -R writes standby.signal and the connection to follow, password included
        let args = ["-h", "127.0.0.1", "-p", &port, "-U", ADMIN, "-D", &data, "-R", "-X", "stream", "-c", "fast"];
        run(standby.server_program("pg_basebackup", &args).env("PGPASSWORD", ADMIN_PASSWORD), "pg_basebackup")?;
        standby.launch(true)?;
        Ok(standby)
    }

    /// Promotes this standby to a primary, waiting until it takes writes.
    pub fn promote(&self) -> anyhow::Result<()> {
        run(&mut self.server_program("pg_ctl", &["-D", &self.path("data"), "-w", "promote"]), "pg_ctl promote")
    }

    fn launch(&self, tls: bool) -> anyhow::Result<()> {
        let ssl = match tls {
            true => format!(
                "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                self.dir.join("server.crt").display(),
                self.dir.join("server.key").display()
            ),
            false => "-c ssl=off".to_owned(),
        };
        let fsync = if self.durable.load(std::sync::atomic::Ordering::Relaxed) { "on" } else { "off" };
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 {ssl} -c fsync={fsync}", self.port, self.dir.display());
        let args = ["-D", &self.path("data"), "-l", &self.path("log"), "-w", "-t", "60", "-o", &options, "start"];
        run(&mut self.server_program("pg_ctl", &args), "pg_ctl start")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.server_program("pg_ctl", &["-D", &self.path("data"), "-m", "immediate", "stop"]).output();
    }
}

/// A running MariaDB server.
pub struct Mariadb {
    pub dir: PathBuf,
    pub port: u16,
    child: std::sync::Mutex<std::process::Child>,
    user: String,
    /// The PEM of the CA that issued the server's certificate (also `ca.crt` in `dir`).
    pub ca_pem: String,
}

impl Mariadb {
    /// True when the MariaDB server programs are installed.
    pub fn installed() -> bool {
        [MARIADBD, MARIADB_INSTALL_DB, MARIADB_CLIENT].iter().all(|p| Path::new(p).exists())
    }

    /// Starts a server with TLS on in `dir` (new or empty), with an administrator [`ADMIN`].
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        if !Self::installed() {
            bail!("MariaDB is not installed; install it with {INSTALL}");
        }
        server_dir(dir)?;
        let ca_pem = server_certificate(dir)?;
        let user = if is_root() { "mysql".to_owned() } else { std::env::var("USER").unwrap_or_default() };
        if is_root() {
            give_to(dir, &user)?;
        }
        let mut install = Command::new(MARIADB_INSTALL_DB);
        install
            .args(["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--user={user}"));
        run(&mut install, "mariadb-install-db")?;
        let port = free_port()?;
        let child = Self::spawn(dir, port, &user)?;
        let db = Self { dir: dir.to_owned(), port, child: std::sync::Mutex::new(child), user, ca_pem };
        db.wait_until_up()?;
        db.as_root(&format!(
            "CREATE USER {ADMIN}@'%' IDENTIFIED BY '{ADMIN_PASSWORD}';\n\
             GRANT ALL PRIVILEGES ON *.* TO {ADMIN}@'%' WITH GRANT OPTION;\n"
        ))?;
        Ok(db)
    }

    fn spawn(dir: &Path, port: u16, user: &str) -> anyhow::Result<std::process::Child> {
        Command::new(MARIADBD)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--user={user}"))
            .arg(format!("--ssl-cert={}", dir.join("server.crt").display()))
            .arg(format!("--ssl-key={}", dir.join("server.key").display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg("--innodb-flush-log-at-trx-commit=0")
            // room for gdx-bench's million-row tables, as a department's server has for its data
            .arg("--innodb-buffer-pool-size=1G")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start mariadbd")
    }

    /// The client, as root through the server's socket.
    fn client(&self) -> Command {
        let mut c = Command::new(MARIADB_CLIENT);
        c.arg("--no-defaults").arg(format!("--socket={}", self.dir.join("sock").display())).args(["-u", "root"]);
        c
    }

    fn as_root(&self, sql: &str) -> anyhow::Result<()> {
        run_script(self.client(), sql, "mariadb")
    }

    /// Waits (up to a minute) until the server answers on its socket.
    fn wait_until_up(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let mut ping = self.client();
            ping.args(["-e", "SELECT 1"]).stdout(Stdio::null()).stderr(Stdio::null());
            if ping.status().is_ok_and(|s| s.success()) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                bail!("MariaDB did not start within a minute: {log}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs an SQL script as the administrator, through the `mariadb`
    /// client; the first failing statement stops it.
    pub fn script(&self, sql: &str) -> anyhow::Result<()> {
        self.as_root(sql)
    }

    /// Stops the server at once, as a crash would.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again after [`Mariadb::kill`], on the same port.
    pub fn restart(&self) -> anyhow::Result<()> {
        let fresh = Self::spawn(&self.dir, self.port, &self.user)?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        self.wait_until_up()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.kill();
    }
}
