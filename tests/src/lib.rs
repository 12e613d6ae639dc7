//! The end-to-end test harness: real `gdx-hub` and `gdx-agent` processes on
//! 127.0.0.1, each in its own temporary directory, on free ports.
//!
//! [`bin`] builds the binaries once per test run. [`Proc`] kills its child
//! when dropped, so a failing test leaves nothing running. [`wait_until`]
//! polls a condition against a deadline instead of sleeping. [`Hub`] and
//! [`Agent`] wrap the commands people type.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use gdx_certs::Ca;
use gdx_common::{NodeId, Role};

pub mod browser;
pub mod exchange;
pub mod faults;
pub mod rawclient;
pub mod replay;
pub mod servers;

/// Each scenario (a function of `Option<&servers::Postgres>`) as two tests:
/// the hub's stores in SQLite files, and all of them on a real PostgreSQL
/// (skipped, loudly, only where PostgreSQL is not installed outside CI).
#[macro_export]
macro_rules! on_both_stores {
    ($($scenario:ident: $sqlite:ident, $postgres:ident;)*) => {$(
        #[test]
        fn $sqlite() {
            $scenario(None);
        }
        #[test]
        fn $postgres() {
            let Some(pg) = $crate::servers::Postgres::start() else { return };
            $scenario(Some(&pg));
        }
    )*};
}

/// Path of a workspace binary, building the binaries on first use.
pub fn bin(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    // Tests live in target/<profile>/deps/, gdx-bench in target/<profile>/.
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap().to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut args = vec!["build", "--quiet", "--bins", "-p", "gdx-hub", "-p", "gdx-agent"];
        if dir.ends_with("release") {
            args.push("--release");
        }
        // Without the variables `cargo test` sets for this process: build
        // scripts (ring's) record them, and a difference would make this
        // build and the next `cargo test` rebuild each other's dependencies.
        let mut build = Command::new(cargo);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key == "OUT_DIR"
                || key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_")
                || key.starts_with("CARGO_MANIFEST_")
                || ["CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"].contains(&key.as_str())
            {
                build.env_remove(&key);
            }
        }
        let status = build.args(&args).current_dir(workspace_root()).status().expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
    });
    dir.join(name)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A TCP port that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `cond` every 50 ms until it holds, panicking with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The result of a finished command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self.stdout
    }

    /// Asserts exit 1 with a one-line `error:` sentence, and returns it.
    pub fn fails(self) -> String {
        assert_eq!(self.code, 1, "command should fail with exit 1: {self:?}");
        let line =
            self.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {self:?}"));
        line.to_owned()
    }
}

/// Runs a binary to completion.
pub fn run(binary: &str, args: &[&str]) -> Run {
    Run::from(Command::new(bin(binary)).args(args).stdin(Stdio::null()).output().unwrap())
}

/// The workspace binary `binary`, run in the network namespace `netns`
/// (`ip netns exec`, which execs it: the child's pid is the binary's, so a
/// SIGKILL reaches it) or in this process's.
pub fn command_in(binary: &str, netns: Option<&str>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin(binary));
            c
        }
        None => Command::new(bin(binary)),
    }
}

/// A child process that is killed when dropped.
pub struct Proc {
    pub child: Child,
    /// The log file, appended to: a restarted process keeps the output of
    /// the runs before it (for a post-mortem), and [`Proc::output`] shows
    /// this run's.
    pub log: PathBuf,
    /// Where this run's output starts in `log`.
    from: u64,
}

impl Proc {
    /// Starts `binary args`, with stdout and stderr going to `log`.
    pub fn start(binary: &str, args: &[&str], log: PathBuf) -> Self {
        Self::start_env(binary, args, log, &[])
    }

    /// Like [`Proc::start`], with extra environment variables.
    pub fn start_env(binary: &str, args: &[&str], log: PathBuf, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(bin(binary));
        command.args(args).envs(env.iter().copied());
        Self::spawn(command, log)
    }

    /// Starts `command` (made by the caller: in a network namespace, say),
    /// with stdout and stderr going to `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> Self {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let from = out.metadata().map(|m| m.len()).unwrap_or(0);
        let child = command.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out).spawn().unwrap();
        Self { child, log, from }
    }

    /// This run's output so far.
    pub fn output(&self) -> String {
        let all = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(all.get(self.from as usize..).unwrap_or_default()).into_owned()
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status();
    }

    /// Asks the process to stop (SIGTERM), then kills it if it has not
    /// exited within 5 seconds.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for Proc {
    /// Terminates rather than kills, so that a process with children of its
    /// own (the demo) can stop them.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// A hub in a temporary directory.
pub struct Hub {
    pub dir: tempfile::TempDir,
    pub addr: String,
    /// The HTTPS API's address.
    pub http: String,
    pub proc: Option<Proc>,
    /// The network namespace `gdx-hub run` starts in, if not this process's.
    pub netns: Option<String>,
    /// In the second configuration ([`second_configuration`]), the
    /// PostgreSQL server holding this hub's stores (stopped when it drops).
    pub pg: Option<servers::Postgres>,
}

/// True for the end-to-end suite's second configuration,
/// `GDX_TEST_STORE=postgres`: every hub [`Hub::init`] makes keeps all its
/// stores on a PostgreSQL server of its own, started for it (prefecture
/// hubs, which stay on SQLite, and the tests that set the store up
/// themselves are as they are).
pub fn second_configuration() -> bool {
    !FILES_ONLY.with(std::cell::Cell::get) && std::env::var("GDX_TEST_STORE").is_ok_and(|v| v == "postgres")
}

thread_local! {
    static FILES_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called first by a test whose hubs keep their stores in SQLite files
/// in the [`second_configuration`] too, saying why: it reads or writes a
/// hub's files itself, or shows what only files do.
pub fn files_only(_why: &str) {
    FILES_ONLY.with(|f| f.set(true));
}

impl Hub {
    /// `gdx-hub init` for `division` on a free port; in the
    /// [`second_configuration`] its stores on a PostgreSQL of its own.
    pub fn init(division: &str) -> Self {
        let mut hub = Self::init_sqlite(division);
        if second_configuration() {
            let pg = servers::Postgres::start().expect("the second configuration needs PostgreSQL installed");
            pg.hold_vaults_of(&hub);
            hub.pg = Some(pg);
        }
        hub
    }

    /// `gdx-hub init` for `division` on a free port, its stores in SQLite
    /// files whatever the configuration (a test that moves them itself).
    pub fn init_sqlite(division: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_udp_port());
        let http = format!("127.0.0.1:{}", free_tcp_port());
        let out = run(
            "gdx-hub",
            &[
                "--data",
                dir.path().to_str().unwrap(),
                "init",
                "--division",
                division,
                "--name",
                "测试平台",
                "--listen",
                &addr,
                "--http",
                &http,
            ],
        );
        out.ok();
        Self { dir, addr, http, proc: None, netns: None, pg: None }
    }

    /// `gdx-hub init --join TOKEN` on free ports: a child hub.
    pub fn join(token: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_udp_port());
        let http = format!("127.0.0.1:{}", free_tcp_port());
        let d = dir.path().to_str().unwrap();
        run("gdx-hub", &["--data", d, "init", "--join", token, "--listen", &addr, "--http", &http]).ok();
        Self { dir, addr, http, proc: None, netns: None, pg: None }
    }

    /// A token for the child hub `node` (`DIVISION/hub`).
    pub fn hub_token(&self, node: &str) -> String {
        self.cmd(&["token", "--node", node, "--role", "hub", "--ttl", "1h"]).ok().trim().to_owned()
    }

    pub fn data(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// Runs a `gdx-hub` subcommand on this hub's data.
    pub fn cmd(&self, args: &[&str]) -> Run {
        let mut all = vec!["--data", self.data()];
        all.extend_from_slice(args);
        run("gdx-hub", &all)
    }

    /// Starts `gdx-hub run` and waits until it listens.
    pub fn start(&mut self) {
        self.start_env(&[]);
    }

    /// Starts `gdx-hub run` (in its namespace, if it has one) with extra
    /// environment variables.
    pub fn start_env(&mut self, env: &[(&str, &str)]) {
        let mut command = command_in("gdx-hub", self.netns.as_deref());
        command.args(["--data", self.data(), "run"]).envs(env.iter().copied());
        let p = Proc::spawn(command, self.dir.path().join("run.log"));
        let started = std::time::Instant::now();
        while !p.output().contains("listening on") {
            // what the hub said is the first thing to read when it does not come up
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the hub did not listen within 20 s; it said:\n{}",
                p.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.proc = Some(p);
    }

    /// Stops `gdx-hub run` gracefully (SIGTERM).
    pub fn terminate(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate();
        }
    }

    /// Stops `gdx-hub run` with SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// A fresh token for `node`.
    pub fn token(&self, node: &str, ttl: &str) -> String {
        self.cmd(&["token", "--node", node, "--role", "agent", "--ttl", ttl]).ok().trim().to_owned()
    }

    /// `gdx-hub nodes --json`.
    pub fn nodes(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.cmd(&["nodes", "--json"]).ok()).unwrap()
    }

    /// The state column of `node` in `gdx-hub nodes`.
    pub fn node_state(&self, node: &str) -> Option<String> {
        self.nodes().into_iter().find(|n| n["node"] == node).map(|n| n["state"].as_str().unwrap().to_owned())
    }

    /// `GET path` on the hub's HTTPS API, trusting only the hub's CA and
    /// checking its certificate for `localhost`: the status and the JSON body.
    pub fn api_get(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, _, body) =
            self.https(&format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
        let text = String::from_utf8(body).unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
    }

    /// Sends one raw HTTP/1.1 request to the hub's HTTPS port (trusting
    /// only the hub's CA, checking its certificate for `localhost`): the
    /// status, the head (lower case) and the body.
    pub fn https(&self, request: &str) -> (u16, String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let root = self.ca().cert_der.clone();
        let port = self.http.rsplit_once(':').unwrap().1.to_owned();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let raw = rt.block_on(async {
            let config = gdx_certs::tls::https_client_config(root).unwrap();
            let tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.unwrap();
            tls.write_all(request.as_bytes()).await.unwrap();
            let mut buf = Vec::new();
            let _ = tls.read_to_end(&mut buf).await;
            buf
        });
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let mut body = raw[split + 4..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            body = unchunk(&body);
        }
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head, body)
    }

    /// Keeps this hub's vaults and exchange.db encrypted at rest from its
    /// next start, under a new key; returns the key file.
    pub fn encrypt_at_rest(&self) -> PathBuf {
        at_rest_key(self.dir.path(), "hub.toml")
    }

    /// This hub's CA, loaded from its data directory.
    pub fn ca(&self) -> Ca {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap();
        Ca::from_pem(&read("ca.crt"), &read("ca.key")).unwrap()
    }
}

/// An agent in a temporary directory.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub proc: Option<Proc>,
    /// The network namespace its commands and daemon run in, if not this
    /// process's.
    pub netns: Option<String>,
}

impl Default for Agent {
    fn default() -> Self {
        Self::new()
    }
}

impl Agent {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), proc: None, netns: None }
    }

    pub fn data(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// Runs a `gdx-agent` subcommand on this agent's data (in its namespace,
    /// if it has one).
    pub fn cmd(&self, args: &[&str]) -> Run {
        let mut command = command_in("gdx-agent", self.netns.as_deref());
        command.args(["--data", self.data()]).args(args).stdin(Stdio::null());
        Run::from(command.output().unwrap())
    }

    /// `gdx-agent enroll --token TOKEN`.
    pub fn enroll(&self, token: &str) -> Run {
        self.cmd(&["enroll", "--token", token, "--timeout", "10s"])
    }

    /// Starts `gdx-agent run`.
    pub fn start(&mut self) {
        self.start_env(&[]);
    }

    /// Starts `gdx-agent run` with extra environment variables.
    pub fn start_env(&mut self, env: &[(&str, &str)]) {
        let mut command = command_in("gdx-agent", self.netns.as_deref());
        command.args(["--data", self.data(), "run"]).envs(env.iter().copied());
        self.proc = Some(Proc::spawn(command, self.dir.path().join("run.log")));
    }

    /// `gdx-agent status --json`.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.cmd(&["status", "--json"]).ok()).unwrap()
    }

    /// True while the daemon reports a live connection.
    pub fn connected(&self) -> bool {
        let s = self.status();
        s["daemon_running"] == true && s["link"]["state"] == "connected"
    }

    /// Keeps this agent's received.db encrypted at rest (it must declare no
    /// resource yet: the key goes at the end of agent.toml); returns the key file.
    pub fn encrypt_at_rest(&self) -> PathBuf {
        at_rest_key(self.dir.path(), "agent.toml")
    }

    /// Replaces the agent's certificate with one the test made.
    pub fn replace_cert(&self, pem: &str) {
        std::fs::write(self.dir.path().join("agent.crt"), pem).unwrap();
    }

    /// The agent's key.
    pub fn key(&self) -> rcgen::KeyPair {
        gdx_certs::pki::key_from_pem(&std::fs::read_to_string(self.dir.path().join("agent.key")).unwrap(), "agent.key")
            .unwrap()
    }

    /// Appends TOML (a `[[resource]]` table) to agent.toml.
    pub fn add_config(&self, toml: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(self.dir.path().join("agent.toml")).unwrap();
        writeln!(f, "\n{toml}").unwrap();
    }

    /// `gdx-agent sync --json` with extra args; returns the exit code and the JSON.
    pub fn sync(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        let mut all = vec!["sync", "--json"];
        all.extend_from_slice(args);
        let out = self.cmd(&all);
        let json = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("sync printed no JSON ({e}): {out:?}"));
        (out.code, json, out.stderr)
    }

    /// Rewrites a key of agent.toml.
    pub fn set_config(&self, key: &str, value: &str) {
        let path = self.dir.path().join("agent.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let out: Vec<String> = text
            .lines()
            .map(|l| if l.starts_with(&format!("{key} = ")) { format!("{key} = \"{value}\"") } else { l.to_owned() })
            .collect();
        std::fs::write(path, out.join("\n") + "\n").unwrap();
    }
}

/// An order-independent checksum of a table: (row count, wrapping sum of a
/// digest of each row's values taken by column name). Equal checksums mean
/// the same rows, none missing and none doubled.
pub fn table_checksum(db: &Path, table: &str, columns: &[&str]) -> (u64, u128) {
    try_table_checksum(db, table, columns)
        .unwrap_or_else(|| panic!("cannot read {} of table {table} in {}", columns.join(", "), db.display()))
}

/// [`table_checksum`], or `None` while the file or the table cannot be read
/// (for polling a copy that is still being made).
pub fn try_table_checksum(db: &Path, table: &str, columns: &[&str]) -> Option<(u64, u128)> {
    let db = &fresh(db);
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let cols: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let mut stmt = conn.prepare(&format!("SELECT {} FROM \"{table}\"", cols.join(", "))).ok()?;
    let mut rows = stmt.query([]).ok()?;
    let (mut n, mut sum) = (0u64, 0u128);
    while let Some(r) = rows.next().ok()? {
        let mut text = String::new();
        for i in 0..columns.len() {
            let v: rusqlite::types::Value = r.get(i).ok()?;
            text.push_str(&format!("{v:?}\u{1f}"));
        }
        let d = gdx_certs::pki::sha256(text.as_bytes());
        sum = sum.wrapping_add(u128::from_le_bytes(d[..16].try_into().ok()?));
        n += 1;
    }
    Some((n, sum))
}

/// Makes table `people` (id, name) of the SQLite file `db` hold exactly `rows`.
pub fn people_table(db: &Path, rows: &[(&str, &str)]) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("CREATE TABLE IF NOT EXISTS people (id TEXT PRIMARY KEY, name TEXT); DELETE FROM people;").unwrap();
    for (id, name) in rows {
        c.execute("INSERT INTO people VALUES (?1, ?2)", [id, name]).unwrap();
    }
}

/// An agent enrolled at `hub` as `node`, publishing table `people` of `db` (made with `rows`) as resource `people`.
pub fn people_agent(hub: &Hub, node: &str, db: &Path, rows: &[(&str, &str)]) -> Agent {
    let agent = Agent::new();
    agent.enroll(&hub.token(node, "1h")).ok();
    publish_people(&agent, db, rows);
    agent
}

/// Makes `agent` publish table `people` of `db` (made with `rows`) as resource `people`.
pub fn publish_people(agent: &Agent, db: &Path, rows: &[(&str, &str)]) {
    people_table(db, rows);
    agent.add_config(&format!(
        "[[resource]]\ncode = \"people\"\nkey = [\"id\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"people\" }}\n",
        db.display()
    ));
}

/// How many rows `table` of the SQLite file `db` holds; 0 while the file or
/// the table does not exist yet (for polling a vault that is still being made).
pub fn rows_now(db: &Path, table: &str) -> u64 {
    let db = &fresh(db);
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get::<_, i64>(0)).map_or(0, |n| n as u64)
}

/// Decodes an HTTP/1.1 chunked body.
fn unchunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&body[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + n]);
        body = &body[eol + 4 + n..];
    }
    out
}

/// The vault file of `node` at a hub.
///
/// In the [`second_configuration`] the vault is a schema on the hub's
/// PostgreSQL: this is then a SQLite copy of it made now, as a vault file
/// holds the same values (a path that does not exist while it has none).
pub fn vault(hub: &Hub, node: &str) -> PathBuf {
    let file = hub.dir.path().join("vaults").join(format!("{}.db", node.replace('/', "-")));
    match &hub.pg {
        Some(_) => servers::copy_of_vault(hub.dir.path(), node),
        None => file,
    }
}

/// `path` to read now: a copy of a vault on PostgreSQL ([`vault`]) is made
/// again, so that a test polling it sees what the hub holds now.
fn fresh(path: &Path) -> PathBuf {
    let copies = path.parent().filter(|d| d.file_name().is_some_and(|n| n == "vault-copies"));
    let node = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.split_once('-'));
    match (copies.and_then(Path::parent), node) {
        (Some(hub_dir), Some((division, org))) => servers::copy_of_vault(hub_dir, &format!("{division}/{org}")),
        _ => path.to_path_buf(),
    }
}

/// Issues a certificate with `ca` for `key`, valid over `[not_before, not_after]`, as PEM.
pub fn issue_pem(ca: &Ca, key: &rcgen::KeyPair, node: &str, role: Role, not_before: i64, not_after: i64) -> String {
    let cert = ca.issue_for_key(key, &NodeId::parse(node).unwrap(), role, not_before, not_after).unwrap();
    gdx_certs::pki::der_to_pem(&cert, "CERTIFICATE")
}

/// Writes a new at-rest key (0600) into `dir` and names it at the end of its `config` file.
fn at_rest_key(dir: &Path, config: &str) -> PathBuf {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = dir.join("at-rest.key");
    let hex: String = gdx_certs::pki::random_bytes::<32>().iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&key).unwrap();
    f.write_all(hex.as_bytes()).unwrap();
    let mut toml = std::fs::OpenOptions::new().append(true).open(dir.join(config)).unwrap();
    writeln!(toml, "at_rest_key = {:?}", key.display().to_string()).unwrap();
    key
}

/// The numbers of the `changeset` entries of `node` in `hub`'s audit log, sorted.
pub fn changeset_entries(hub: &Hub, node: &str) -> Vec<u64> {
    let out = hub.cmd(&["audit", "list", "--kind", "changeset", "--node", node, "--format", "jsonl"]).ok();
    let mut seqs: Vec<u64> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["detail"]["seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    seqs
}

/// Waits until `agent` (a daemon of node `node`) has every changeset it
/// made of its first resource acknowledged and `hub`'s audit log holds one
/// entry for each, numbered 1 to the last: exactly once. Returns how many
/// it made.
pub fn one_entry_per_changeset(hub: &Hub, agent: &Agent, node: &str) -> u64 {
    let made = || agent.status()["resources"][0]["last_seq"].as_u64().unwrap_or(0);
    wait_until(Duration::from_secs(30), "one audit entry per changeset", || {
        let m = made();
        m > 0
            && agent.status()["resources"][0]["acked_seq"].as_u64() == Some(m)
            && changeset_entries(hub, node) == (1..=m).collect::<Vec<_>>()
    });
    made()
}

/// True when a test may go on; false (after saying why) when this
/// machine lacks what it needs (root, a package), which CI never does.
pub fn have(what: &str, ok: bool) -> bool {
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must run this test: {what}");
        eprintln!("skipped: {what}");
    }
    ok
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The person columns of the generated people tables (all of the text-keyed
/// table's, 公民身份号码 first).
pub const PEOPLE_COLUMNS: &[&str] = &["id_number", "name", "sex", "ethnicity", "birth", "address", "phone"];
