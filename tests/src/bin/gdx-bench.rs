//! `gdx-bench`: extract-sync throughput and incremental cost, each against a
//! baseline run in the same process on the same data.
//!
//! Baselines: a local SQLite copy of the table (`INSERT … SELECT` across an
//! attached database: the fastest a full copy can be on this machine), and
//! rsync of the database file (a full copy, then its delta after the change),
//! when rsync is installed. GDX: `gdx-agent sync` of the same table through a
//! real hub on 127.0.0.1 (QUIC, mutual TLS, signatures, fsync'd commits).
//!
//! Usage: `cargo run --release -p gdx-tests --bin gdx-bench -- SCENARIO [options]`
//! (`--help` lists them). Each prints a table and writes
//! `gdx-bench-SCENARIO.json` in the current directory.
//!
//! `initial` and `incremental`: a table of generated people keyed the way
//! department tables are (`--key int,text,composite`: an integer id, the
//! 公民身份号码, or (county code, sequence number)), synced in full, then
//! after `--change-pct` % of its rows changed. `sweep`: the first sync and
//! a 1 % change of each key shape at each size (`--sizes`), time per row
//! and the agent's peak memory, so growth worse than linear shows. `csv`:
//! a GBK CSV export of `--rows` people dropped into a folder and synced,
//! with the agent's peak memory.
//!
//! `audit`: durable appends per second (one transaction each, and collected
//! from a store's outbox as the hub does), then the time to verify a log of
//! N entries.
//!
//! `relay`: N one-row changes of a county agent's base resource, each timed
//! from `gdx-agent sync` until the province's vault holds it (through the
//! prefecture hub); p50 and p99.
//!
//! `fanin`: N simulated agents, each with its own certificate from the
//! hub's CA, its own UDP socket and one QUIC connection, each sending one
//! changeset (its vault is created) and then 5 timed one-row changesets;
//! sustained changesets per second, p99 acknowledgement latency and the
//! hub's memory.
//!
//! `footprint`: binary sizes and the idle memory (RSS) of a hub and an agent.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use gdx_common::DivisionCode;
use gdx_common::generate::{Generator, Person};
use gdx_tests::{Agent, Hub, PEOPLE_COLUMNS};

#[derive(Parser)]
#[command(
    name = "gdx-bench",
    about = "Measures GDX against baselines run in the same process on the same data",
    after_help = "Examples:\n  gdx-bench initial --rows 1000000 --key int\n  gdx-bench sweep --sizes 100000,200000,400000,800000\n  gdx-bench csv --rows 1000000\n  gdx-bench fanin --agents 100,1000"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// First sync of a generated table, against a local SQLite copy and rsync (then the incremental sync too)
    Initial(SyncArgs),
    /// A first sync, then the sync of a change of --change-pct % of the rows, against rsync's delta
    Incremental(SyncArgs),
    /// First sync and a 1 % change of each key shape at each size: time per row and peak memory
    Sweep {
        /// Table sizes, in rows
        #[arg(long, value_delimiter = ',', default_value = "100000,200000,400000,800000")]
        sizes: Vec<i64>,
        /// Key shapes
        #[arg(long, value_delimiter = ',', default_value = "int,text,composite")]
        key: Vec<KeyShape>,
    },
    /// A GBK CSV export dropped into a folder and synced, with the agent's peak memory
    Csv {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
    },
    /// One-row changes from a county agent through its prefecture hub to the province: p50 and p99
    Relay {
        #[arg(long, default_value_t = 50)]
        changes: usize,
    },
    /// Many simulated agents sending changesets to one hub
    Fanin {
        /// Numbers of agents, one run each
        #[arg(long, value_delimiter = ',', default_value = "100,1000")]
        agents: Vec<usize>,
    },
    /// Binary sizes and idle memory of a hub and an agent
    Footprint,
    /// Audit log appends per second and verification time
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
    },
}

#[derive(clap::Args)]
struct SyncArgs {
    /// Rows in the generated table
    #[arg(long, default_value_t = 1_000_000)]
    rows: i64,
    /// Percentage of the rows changed before the incremental sync (80 % updated, 10 % deleted, 10 % new)
    #[arg(long, default_value_t = 1.0)]
    change_pct: f64,
    /// Key shapes, one run each
    #[arg(long, value_delimiter = ',', default_value = "int,text,composite")]
    key: Vec<KeyShape>,
}

/// How the generated people table is keyed, as department tables are.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KeyShape {
    /// `id INTEGER PRIMARY KEY`, numbered in insertion order
    Int,
    /// the 公民身份号码, `TEXT PRIMARY KEY`, in generation (random) order
    Text,
    /// (county code TEXT, sequence number INTEGER), in generation order
    Composite,
}

impl KeyShape {
    fn name(self) -> &'static str {
        match self {
            KeyShape::Int => "int",
            KeyShape::Text => "text",
            KeyShape::Composite => "composite",
        }
    }

    fn key_columns(self) -> &'static str {
        match self {
            KeyShape::Int => "\"id\"",
            KeyShape::Text => "\"id_number\"",
            KeyShape::Composite => "\"county\", \"seq\"",
        }
    }

    fn create_sql(self) -> &'static str {
        match self {
            KeyShape::Int => {
                "CREATE TABLE people (id INTEGER PRIMARY KEY, id_number TEXT, name TEXT, sex TEXT, ethnicity TEXT, birth TEXT, address TEXT, phone TEXT)"
            }
            KeyShape::Text => {
                "CREATE TABLE people (id_number TEXT PRIMARY KEY, name TEXT, sex TEXT, ethnicity TEXT, birth TEXT, address TEXT, phone TEXT)"
            }
            KeyShape::Composite => {
                "CREATE TABLE people (county TEXT, seq INTEGER, id_number TEXT, name TEXT, sex TEXT, ethnicity TEXT, birth TEXT, address TEXT, phone TEXT, PRIMARY KEY (county, seq))"
            }
        }
    }

    /// Adds person number `n` (from 1).
    fn insert(self, conn: &rusqlite::Connection, n: i64, p: &Person) {
        let cols = rusqlite::params![p.id_number, p.name, p.sex(), p.ethnicity, p.birth, p.address, p.phone];
        let (sql, prefix): (&str, Vec<rusqlite::types::Value>) = match self {
            KeyShape::Int => ("INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?, ?)", vec![n.into()]),
            KeyShape::Text => ("INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?)", vec![]),
            KeyShape::Composite => (
                "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                vec![p.id_number[..6].to_owned().into(), n.into()],
            ),
        };
        let mut stmt = conn.prepare_cached(sql).expect("prepare insert");
        let mut params: Vec<&dyn rusqlite::ToSql> = prefix.iter().map(|v| v as &dyn rusqlite::ToSql).collect();
        params.extend_from_slice(cols);
        stmt.execute(params.as_slice()).expect("insert person");
    }
}

fn main() {
    match Cli::parse().scenario {
        Scenario::Initial(a) | Scenario::Incremental(a) => {
            let runs: Vec<serde_json::Value> =
                a.key.iter().map(|&shape| sync_bench(shape, a.rows, a.change_pct, true)).collect();
            write_json("initial", &serde_json::json!(runs));
        }
        Scenario::Sweep { sizes, key } => sweep_bench(&sizes, &key),
        Scenario::Csv { rows } => csv_bench(rows),
        Scenario::Relay { changes } => relay_bench(changes),
        Scenario::Fanin { agents } => fanin_bench(&agents),
        Scenario::Footprint => footprint_bench(),
        Scenario::Audit { entries } => audit_bench(entries),
    }
}

/// The seed of the generated population (`gdx_common::generate`).
const SEED: u64 = 2026;

/// `rows` generated people in table `people` of `db`, keyed as `shape` says.
fn write_people(db: &Path, rows: i64, shape: KeyShape, generator: &mut Generator) {
    let c = rusqlite::Connection::open(db).expect("open source");
    c.execute_batch(shape.create_sql()).expect("create people");
    let tx = c.unchecked_transaction().expect("tx");
    for n in 1..=rows {
        shape.insert(&tx, n, &generator.person());
    }
    tx.commit().expect("commit");
}

/// A hub on 127.0.0.1 and an agent enrolled at it, syncing `toml`'s resource.
fn hub_and_agent(resource_toml: &str) -> (Hub, Agent) {
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token("630000/gongan", "1h")).ok();
    agent.add_config(resource_toml);
    (hub, agent)
}

/// One `gdx-agent sync`: seconds, bytes and rows sent, the agent's peak RSS in MiB.
fn timed_sync(agent: &Agent) -> (f64, u64, u64, f64) {
    let t = Instant::now();
    let (code, out, err) = agent.sync(&[]);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(code, 0, "sync failed: {err}");
    let mib = out["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0;
    (secs, out["sent_bytes"].as_u64().unwrap_or(0), out["sent_rows"].as_u64().unwrap_or(0), mib)
}

/// The SQLite resource of `src`'s people table keyed as `shape`.
fn people_resource(src: &Path, shape: KeyShape) -> String {
    format!(
        "[[resource]]\ncode = \"hukou\"\nkey = [{}]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"people\" }}",
        shape.key_columns(),
        src.display()
    )
}

/// `initial` and `incremental` for one key shape: a generated population
/// table synced in full, then after `pct` % of its rows changed (80 % of
/// them updated, 10 % deleted, 10 % new people), against a local SQLite
/// copy and (with `rsync`) rsync through an rsync daemon on 127.0.0.1.
fn sync_bench(shape: KeyShape, rows: i64, pct: f64, rsync: bool) -> serde_json::Value {
    let changed = ((rows as f64) * pct / 100.0).round() as i64;
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("src.db");
    println!(
        "gdx-bench: {rows} generated people keyed by {} (seed {SEED}), then {changed} rows ({pct}%) changed",
        shape.name()
    );
    let mut generator = Generator::new(SEED);
    write_people(&src, rows, shape, &mut generator);
    let src_bytes = std::fs::metadata(&src).map(|m| m.len()).unwrap_or(0);
    println!("source: {} MiB", src_bytes / (1 << 20));

    // Baseline: local SQLite copy.
    let t = Instant::now();
    let dst = tmp.path().join("copy.db");
    let c = rusqlite::Connection::open(&dst).expect("open copy");
    c.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-262144; {};
         ATTACH '{}' AS s; INSERT INTO people SELECT * FROM s.people; DETACH s;",
        shape.create_sql(),
        src.display()
    ))
    .expect("copy");
    let copy_s = t.elapsed().as_secs_f64();
    println!("baseline sqlite copy: {:.2} s, {:.0} rows/s", copy_s, rows as f64 / copy_s);

    // Baseline: rsync full, then delta, to an rsync daemon on 127.0.0.1.
    let daemon = (rsync && rsync_present()).then(|| RsyncDaemon::start(tmp.path()));
    let rsync_full = daemon.as_ref().map(|d| {
        let (s, b) = d.push(&src);
        println!("baseline rsync full copy (rsync daemon on 127.0.0.1): {s:.2} s, {b} bytes sent");
        (s, b)
    });

    // GDX initial sync.
    let (_hub, agent) = hub_and_agent(&people_resource(&src, shape));
    let (gdx_s, full_bytes, _, rss) = timed_sync(&agent);
    println!(
        "gdx initial sync: {:.2} s, {:.0} rows/s, {} bytes sent, agent peak RSS {rss:.0} MiB ({:.2}x the SQLite copy's time)",
        gdx_s,
        rows as f64 / gdx_s,
        full_bytes,
        gdx_s / copy_s
    );

    // Change P% and sync again.
    let changed_rows = change_people(&src, shape, rows, changed, &mut generator);
    let (inc_s, inc_bytes, inc_rows, inc_rss) = timed_sync(&agent);
    // the floor for bytes: the changed rows alone, as text, zstd-compressed
    let zstd_bytes = zstd::bulk::compress(changed_rows.as_bytes(), 3).map(|z| z.len()).unwrap_or(0);
    println!(
        "changed rows alone, zstd level 3: {zstd_bytes} bytes; gdx sent {:.1}x that",
        inc_bytes as f64 / zstd_bytes.max(1) as f64
    );
    println!(
        "gdx incremental sync: {inc_s:.2} s, {inc_rows} rows, {inc_bytes} bytes sent ({:.1}% of the initial sync's bytes), agent peak RSS {inc_rss:.0} MiB",
        100.0 * inc_bytes as f64 / full_bytes.max(1) as f64
    );
    let rsync_delta = daemon.as_ref().map(|d| {
        let (s, b) = d.push(&src);
        println!(
            "baseline rsync delta: {s:.2} s, {b} bytes sent; rsync sent {:.0}x the bytes gdx sent, gdx took {:.2}x rsync's time",
            b as f64 / inc_bytes.max(1) as f64,
            inc_s / s
        );
        (s, b)
    });
    if let Some((_, b)) = rsync_full {
        println!("initial bytes: rsync sent {:.1}x the bytes gdx sent", b as f64 / full_bytes.max(1) as f64);
    }
    serde_json::json!({ "key": shape.name(), "rows": rows,
        "initial": { "gdx_s": gdx_s, "gdx_rows_per_s": rows as f64 / gdx_s, "gdx_bytes": full_bytes, "agent_peak_rss_mib": rss,
            "sqlite_copy_s": copy_s, "ratio_to_copy": gdx_s / copy_s,
            "rsync_s": rsync_full.map(|r| r.0), "rsync_bytes": rsync_full.map(|r| r.1) },
        "incremental": { "rows_changed": inc_rows, "gdx_s": inc_s, "gdx_bytes": inc_bytes, "agent_peak_rss_mib": inc_rss,
            "zstd_changed_rows_bytes": zstd_bytes, "rsync_s": rsync_delta.map(|r| r.0), "rsync_bytes": rsync_delta.map(|r| r.1),
            "ratio_to_rsync_s": rsync_delta.map(|r| inc_s / r.0), "rsync_bytes_per_gdx_byte": rsync_delta.map(|r| r.1 as f64 / inc_bytes.max(1) as f64) } })
}

/// `sweep`: every key shape at every size, first sync and a 1 % change;
/// time per row, the ratio to the text key at the same size, peak RSS.
fn sweep_bench(sizes: &[i64], shapes: &[KeyShape]) {
    let mut runs = Vec::new();
    for &rows in sizes {
        for &shape in shapes {
            let tmp = tempfile::tempdir().expect("temp dir");
            let src = tmp.path().join("src.db");
            let mut generator = Generator::new(SEED);
            write_people(&src, rows, shape, &mut generator);
            let (_hub, agent) = hub_and_agent(&people_resource(&src, shape));
            let (initial_s, _, _, initial_rss) = timed_sync(&agent);
            change_people(&src, shape, rows, rows / 100, &mut generator);
            let (inc_s, _, _, inc_rss) = timed_sync(&agent);
            println!(
                "{:>9} rows {:<9} first sync {initial_s:6.2} s ({:.2} µs/row, peak RSS {initial_rss:.0} MiB), 1% change {inc_s:5.2} s (peak RSS {inc_rss:.0} MiB)",
                rows,
                shape.name(),
                initial_s * 1e6 / rows as f64
            );
            runs.push((rows, shape, initial_s, initial_rss, inc_s, inc_rss));
        }
    }
    println!("\n| rows | key | first sync s | µs/row | × text | peak RSS MiB | 1% change s | × text | peak RSS MiB |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for &(rows, shape, s, rss, inc, inc_rss) in &runs {
        let text = runs.iter().find(|r| r.0 == rows && r.1 == KeyShape::Text);
        let ratio = |x: f64, t: Option<f64>| t.map_or("–".to_owned(), |t| format!("{:.2}", x / t));
        println!(
            "| {rows} | {} | {s:.2} | {:.2} | {} | {rss:.0} | {inc:.2} | {} | {inc_rss:.0} |",
            shape.name(),
            s * 1e6 / rows as f64,
            ratio(s, text.map(|t| t.2)),
            ratio(inc, text.map(|t| t.4))
        );
        json.push(
            serde_json::json!({ "rows": rows, "key": shape.name(), "initial_s": s, "us_per_row": s * 1e6 / rows as f64,
            "initial_peak_rss_mib": rss, "incremental_s": inc, "incremental_peak_rss_mib": inc_rss }),
        );
    }
    for &shape in shapes {
        let per_row: Vec<f64> = runs.iter().filter(|r| r.1 == shape).map(|r| r.2 * 1e6 / r.0 as f64).collect();
        let mean = per_row.iter().sum::<f64>() / per_row.len().max(1) as f64;
        let spread = per_row.iter().map(|x| (x / mean - 1.0).abs()).fold(0.0, f64::max);
        println!("{}: time per row within ±{:.0}% of its mean across the sweep", shape.name(), spread * 100.0);
    }
    write_json("sweep", &serde_json::json!(json));
}

/// `csv`: `rows` generated people written as one GBK CSV export (as a
/// county system exports them), dropped into a folder and synced.
fn csv_bench(rows: i64) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let folder = tmp.path().join("drop");
    std::fs::create_dir_all(&folder).expect("drop folder");
    let mut generator = Generator::new(SEED);
    let mut text = String::from("证件号码,姓名,性别,民族,出生日期,住址,联系电话\r\n");
    for _ in 0..rows {
        let p = generator.person();
        let address = if p.address.contains(',') { format!("\"{}\"", p.address) } else { p.address.clone() };
        text.push_str(&format!(
            "{},{},{},{},{},{address},{}\r\n",
            p.id_number,
            p.name,
            p.sex(),
            p.ethnicity,
            p.birth,
            p.phone
        ));
    }
    let gbk = encoding_rs::GBK.encode(&text).0.into_owned();
    let path = folder.join("export.csv");
    std::fs::write(&path, &gbk).expect("write the export");
    let mib = gbk.len() as f64 / f64::from(1 << 20);
    drop(text);
    println!("gdx-bench csv: {rows} generated people as one GBK CSV export of {mib:.0} MiB");
    let (_hub, agent) = hub_and_agent(&format!(
        "[[resource]]\ncode = \"dibao\"\nkey = [\"证件号码\"]\nsource = {{ kind = \"csv\", dir = \"{}\", encoding = \"auto\" }}",
        folder.display()
    ));
    let (s, bytes, sent, rss) = timed_sync(&agent);
    println!(
        "gdx sync of the drop: {s:.2} s, {:.0} rows/s, {sent} rows and {bytes} bytes sent, agent peak RSS {rss:.0} MiB",
        rows as f64 / s
    );
    // a 1 % change: the county exports again with every 100th row renamed
    let (s2, bytes2, sent2, rss2) = {
        let decoded = encoding_rs::GBK.decode(&gbk).0.into_owned();
        let mut out = String::with_capacity(decoded.len());
        for (i, line) in decoded.split_inclusive("\r\n").enumerate() {
            if i > 0 && i % 100 == 0 {
                let mut fields: Vec<&str> = line.trim_end().splitn(3, ',').collect();
                let renamed = format!("{}改", fields[1]);
                fields[1] = &renamed;
                out.push_str(&fields.join(","));
                out.push_str("\r\n");
            } else {
                out.push_str(line);
            }
        }
        let (again, _, _) = encoding_rs::GBK.encode(&out);
        std::fs::write(folder.join(".export.csv.part"), &again).expect("write");
        std::fs::rename(folder.join(".export.csv.part"), &path).expect("rename");
        timed_sync(&agent)
    };
    println!(
        "gdx sync of a new export with 1% of the rows changed: {s2:.2} s, {sent2} rows and {bytes2} bytes sent, agent peak RSS {rss2:.0} MiB"
    );
    write_json(
        "csv",
        &serde_json::json!({ "rows": rows, "file_mib": mib, "gdx_s": s, "gdx_rows_per_s": rows as f64 / s, "gdx_bytes": bytes,
            "agent_peak_rss_mib": rss, "incremental_s": s2, "incremental_rows": sent2, "incremental_bytes": bytes2, "incremental_peak_rss_mib": rss2 }),
    );
}

/// Changes `changed` rows of the people table: 80 % updated (new address and
/// phone), 10 % deleted, 10 % new people. Returns the changed rows as text
/// (deleted ones as their key), the floor any sync has to send.
fn change_people(db: &Path, shape: KeyShape, rows: i64, changed: i64, generator: &mut Generator) -> String {
    let deletes = changed / 10;
    let inserts = changed / 10;
    let updates = changed - deletes - inserts;
    let mut picked = std::collections::BTreeSet::new();
    while (picked.len() as i64) < (updates + deletes).min(rows) {
        picked.insert(1 + generator.rng().below(rows as u64) as i64);
    }
    let c = rusqlite::Connection::open(db).expect("open source");
    let tx = c.unchecked_transaction().expect("tx");
    let mut text = String::new();
    let key_of = |rowid: i64| -> String {
        tx.query_row("SELECT id_number FROM people WHERE rowid = ?1", [rowid], |r| r.get(0)).expect("a row")
    };
    let mut touched = Vec::new();
    for (i, rowid) in picked.into_iter().enumerate() {
        let key = key_of(rowid);
        if (i as i64) < updates {
            let p = generator.person();
            tx.execute(
                "UPDATE people SET address = ?1, phone = ?2 WHERE rowid = ?3",
                rusqlite::params![p.address, p.phone, rowid],
            )
            .expect("update");
            touched.push(key);
        } else {
            tx.execute("DELETE FROM people WHERE rowid = ?1", [rowid]).expect("delete");
            text.push_str(&format!("-{key}\n"));
        }
    }
    let next: i64 = tx.query_row("SELECT max(rowid) FROM people", [], |r| r.get(0)).expect("max rowid");
    for k in 0..inserts {
        let p = generator.person();
        shape.insert(&tx, next + 1 + k, &p);
        touched.push(p.id_number);
    }
    let as_text = format!("SELECT {} FROM people WHERE id_number = ?1", PEOPLE_COLUMNS.join(" || char(9) || "));
    for key in touched {
        let line: String = tx.query_row(&as_text, [&key], |r| r.get(0)).expect("changed row");
        text.push_str(&line);
        text.push('\n');
    }
    tx.commit().expect("commit");
    text
}

/// True when rsync is installed; otherwise says how to install it (the
/// bench never installs system packages) and the rsync baseline is skipped.
fn rsync_present() -> bool {
    let present = Command::new("rsync").arg("--version").output().is_ok_and(|o| o.status.success());
    if !present {
        println!(
            "baseline rsync: skipped, rsync is not installed (as root: apt-get install rsync, then run the bench again)"
        );
    }
    present
}

/// An rsync daemon on 127.0.0.1 serving one writable module, so the
/// baseline runs rsync's network protocol and delta algorithm (as a copy
/// between two machines would), not its local whole-file shortcut.
struct RsyncDaemon {
    child: std::process::Child,
    port: u16,
}

impl RsyncDaemon {
    fn start(tmp: &Path) -> Self {
        let module = tmp.join("rsync-module");
        std::fs::create_dir_all(&module).expect("rsync module dir");
        let id = |flag: &str| {
            Command::new("id").arg(flag).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let (uid, gid) = (id("-u").expect("id -u"), id("-g").expect("id -g"));
        let conf = tmp.join("rsyncd.conf");
        std::fs::write(
            &conf,
            format!(
                "use chroot = no\nuid = {uid}\ngid = {gid}\npid file = {}\n[bench]\npath = {}\nread only = no\n",
                tmp.join("rsyncd.pid").display(),
                module.display()
            ),
        )
        .expect("rsyncd.conf");
        let port = gdx_tests::free_tcp_port();
        let log = tmp.join("rsyncd.log");
        let child = Command::new("rsync")
            .args(["--daemon", "--no-detach", "--address", "127.0.0.1", "--port", &port.to_string(), "--config"])
            .arg(&conf)
            .arg("--log-file")
            .arg(&log)
            .spawn()
            .expect("start the rsync daemon");
        // owned first: a failure below still stops it (Drop)
        let mut daemon = Self { child, port };
        gdx_tests::wait_until(std::time::Duration::from_secs(10), "the rsync daemon listens", || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                let why = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("the rsync daemon exited ({status}): {why}");
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        daemon
    }

    /// (seconds, bytes sent) of one rsync of `src` into the module.
    fn push(&self, src: &Path) -> (f64, u64) {
        let t = Instant::now();
        let out = Command::new("rsync")
            .env("LC_ALL", "C")
            .args(["--stats", "--inplace"])
            .arg(src)
            .arg(format!("rsync://127.0.0.1:{}/bench/", self.port))
            .output()
            .expect("rsync");
        let secs = t.elapsed().as_secs_f64();
        assert!(out.status.success(), "rsync failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let bytes = text
            .lines()
            .find(|l| l.starts_with("Total bytes sent:"))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().replace(',', ""))
            .and_then(|v| v.parse().ok());
        let Some(bytes) = bytes else { panic!("rsync --stats printed no \"Total bytes sent\" line:\n{text}") };
        (secs, bytes)
    }
}

impl Drop for RsyncDaemon {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Durable appends per second and the time to verify `entries` entries.
fn audit_bench(entries: u64) {
    use gdx_hub::audit::{AuditLog, Event, OUTBOX_SQL, note, verify};
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut log = AuditLog::open(tmp.path(), "630000/hub").expect("audit log");
    let event = |i: u64| Event {
        kind: "lookup".into(),
        at: 1_800_000_000 + i as i64,
        node: Some("630102/minzheng".into()),
        resource: Some("301001/000001".into()),
        request: Some("630100-3".into()),
        detail: serde_json::json!({ "consumer": "630102/minzheng", "key": format!("{i:032x}"), "found": true }),
    };
    let single = 2_000u64;
    let t = Instant::now();
    for i in 0..single {
        log.append(&format!("bench#{i}"), &event(i)).expect("append");
    }
    let s = t.elapsed().as_secs_f64();
    println!("audit: {single} appends, one durable transaction each: {s:.2} s = {:.0} appends/s", single as f64 / s);
    // the hub's path: events noted in a store's outbox, collected in batches
    let outbox = rusqlite::Connection::open(tmp.path().join("exchange.db")).expect("outbox");
    outbox.execute_batch(OUTBOX_SQL).expect("outbox table");
    let mut collected = 0u64;
    let mut collect_s = 0.0;
    let mut i = single;
    while i < entries {
        let batch = (entries - i).min(50_000);
        let tx = outbox.unchecked_transaction().expect("tx");
        for j in i..i + batch {
            note(&tx, &event(j)).expect("note");
        }
        tx.commit().expect("commit");
        let t = Instant::now();
        while log.size() < i + batch {
            collected += log.collect().expect("collect") as u64;
        }
        collect_s += t.elapsed().as_secs_f64();
        i += batch;
    }
    log.checkpoint(1_900_000_000).expect("checkpoint");
    if collected > 0 {
        println!(
            "audit: {collected} entries collected from an outbox in batches of up to 5,000: {collect_s:.2} s = {:.0} appends/s",
            collected as f64 / collect_s
        );
    }
    let t = Instant::now();
    let bundle = log.bundle().expect("bundle");
    let read_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v = verify(&bundle);
    let verify_s = t.elapsed().as_secs_f64();
    assert_eq!(v.problem, None, "the benchmark's log verifies");
    println!(
        "audit: verify {} entries and {} checkpoint(s): read {read_s:.2} s, verify {verify_s:.2} s",
        v.entries, v.checkpoints
    );
}

fn write_json(scenario: &str, value: &serde_json::Value) {
    let path = format!("gdx-bench-{scenario}.json");
    match std::fs::write(&path, format!("{value:#}\n")) {
        Ok(()) => println!("wrote {path}"),
        Err(e) => println!("could not write {path}: {e}"),
    }
}

/// One-row changes from a county agent through its prefecture hub to the
/// province: latency from the start of `gdx-agent sync` until the row is in
/// the province's vault.
fn relay_bench(changes: usize) {
    let mut province = Hub::init("630000");
    province.start();
    let mut prefecture = Hub::join(&province.hub_token("632500/hub"));
    prefecture.start();
    let agent = Agent::new();
    agent.enroll(&prefecture.token("632522/gongan", "1h")).ok();
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("src.db");
    write_people(
        &src,
        1_000,
        KeyShape::Text,
        &mut Generator::within(SEED, DivisionCode::parse("632522").expect("同德县")),
    );
    agent.add_config(&format!(
        r#"[[resource]]
code = "hukou"
key = ["id_number"]
source = {{ kind = "sqlite", path = "{}", table = "people" }}

[resource.catalog]
code = "101002/000001"
class = "基础信息资源"
classification = ["人口"]
name = "同德县人口信息"
provider_name = "同德县公安局"
provider_code = "11632522015603015M"
abstract = "同德县户籍人口"
format = "数据库"
format_type = "sqlite"
sharing_type = "无条件共享"
sharing_method = "接口"
open_to_public = false
update_cycle = "实时"
published = "2026-11-01"
items = [ {{ name = "公民身份号码", column = "id_number", data_type = "C", length = 18 }}, {{ name = "姓名", column = "name", data_type = "C", length = 50 }}, {{ name = "性别", column = "sex", data_type = "C", length = 2 }}, {{ name = "民族", column = "ethnicity", data_type = "C", length = 20 }}, {{ name = "出生日期", column = "birth", data_type = "D", length = 8 }}, {{ name = "住址", column = "address", data_type = "C", length = 100 }}, {{ name = "联系电话", column = "phone", data_type = "C", length = 11 }} ]
"#,
        src.display()
    ));
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 0, "first sync failed: {err}");
    let vault = gdx_tests::vault(&province, "632522/gongan");
    let at_province = |name: &str| -> bool {
        rusqlite::Connection::open_with_flags(&vault, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT count(*) FROM hukou WHERE name = ?1", [name], |r| r.get::<_, i64>(0)))
            .is_ok_and(|n| n > 0)
    };
    let src_conn = rusqlite::Connection::open(&src).expect("open source");
    let first: String = src_conn.query_row("SELECT id_number FROM people LIMIT 1", [], |r| r.get(0)).expect("a row");
    let mut latencies = Vec::new();
    for i in 0..changes {
        let name = format!("relay-{i}");
        src_conn.execute("UPDATE people SET name = ?1 WHERE id_number = ?2", [&name, &first]).expect("update");
        let t = Instant::now();
        let (code, _, err) = agent.sync(&[]);
        assert_eq!(code, 0, "sync failed: {err}");
        // polled every 5 ms (wait_until's 50 ms would blur latencies of ~0.1 s)
        while !at_province(&name) {
            assert!(t.elapsed().as_secs() < 60, "change {i} did not reach the province within 60 s");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        latencies.push(t.elapsed().as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| percentile(&latencies, p);
    println!("relay: {changes} one-row changes, county agent → 海南州 hub → province");
    println!("{:<8} {:>10}", "", "seconds");
    println!("{:<8} {:>10.3}\n{:<8} {:>10.3}\n{:<8} {:>10.3}", "p50", pct(0.5), "p99", pct(0.99), "max", pct(1.0));
    write_json(
        "relay",
        &serde_json::json!({ "changes": changes, "p50_s": pct(0.5), "p99_s": pct(0.99), "max_s": pct(1.0) }),
    );
}

/// The value at fraction `p` of sorted `values` (0 when there are none).
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() { 0.0 } else { values[((values.len() as f64 - 1.0) * p).round() as usize] }
}

/// Resident memory of a process, KiB (0 when it cannot be read).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Binary sizes, and the resident memory of an idle hub and an idle agent.
fn footprint_bench() {
    let size = |name: &str| std::fs::metadata(gdx_tests::bin(name)).map(|m| m.len()).unwrap_or(0);
    let (agent_size, hub_size) = (size("gdx-agent"), size("gdx-hub"));
    let mut hub = Hub::init("630000");
    hub.start();
    let mut agent = Agent::new();
    agent.enroll(&hub.token("630000/gongan", "1h")).ok();
    agent.start();
    gdx_tests::wait_until(std::time::Duration::from_secs(30), "the agent connects", || agent.connected());
    std::thread::sleep(std::time::Duration::from_secs(5));
    let hub_rss = hub.proc.as_ref().map_or(0, |p| rss_kib(p.child.id()));
    let agent_rss = agent.proc.as_ref().map_or(0, |p| rss_kib(p.child.id()));
    println!("{:<24} {:>12}", "footprint", "");
    println!("{:<24} {:>9.1} MiB", "gdx-agent binary", agent_size as f64 / 1048576.0);
    println!("{:<24} {:>9.1} MiB", "gdx-hub binary", hub_size as f64 / 1048576.0);
    println!("{:<24} {:>9.1} MiB", "agent idle RSS", agent_rss as f64 / 1024.0);
    println!("{:<24} {:>9.1} MiB", "hub idle RSS (1 agent)", hub_rss as f64 / 1024.0);
    write_json(
        "footprint",
        &serde_json::json!({ "agent_binary_bytes": agent_size, "hub_binary_bytes": hub_size,
            "agent_idle_rss_kib": agent_rss, "hub_idle_rss_kib": hub_rss }),
    );
}

/// Sends changesets `seqs` (one row each) on an upload stream, each after
/// the previous one's acknowledgement; returns each one's latency.
async fn send_changesets(
    up: &mut quinn::SendStream,
    down: &mut quinn::RecvStream,
    node: &gdx_common::NodeId,
    key: &rcgen::KeyPair,
    cert: &[u8],
    seqs: std::ops::RangeInclusive<u64>,
) -> Result<Vec<f64>, String> {
    use gdx_common::data::{Change, Changeset, Column, ResourceCode, Value, encode_changeset};
    use gdx_common::wire::{Message, SignedChangeset};
    let mut lat = Vec::new();
    for seq in seqs {
        let cs = Changeset {
            origin: node.clone(),
            resource: ResourceCode::parse("fanin").map_err(|e| e.to_string())?,
            seq,
            epoch: 7,
            columns: vec![
                Column { name: "id".into(), decl_type: "TEXT".into() },
                Column { name: "v".into(), decl_type: "TEXT".into() },
            ],
            key: vec![0],
            changes: vec![Change::Upsert(vec![Value::Text("row".into()), Value::Text(format!("v{seq}"))])],
            created_at: 0,
        };
        let body = encode_changeset(&cs);
        let signature = gdx_certs::pki::sign(key, &body).map_err(|e| e.to_string())?;
        let env = SignedChangeset {
            origin: node.clone(),
            resource: cs.resource.clone(),
            seq,
            rows: 1,
            body,
            signature,
            signer_chain: vec![cert.to_vec()],
        };
        let t = Instant::now();
        gdx_certs::frames::send(up, &Message::Upload(env)).await.map_err(|e| e.to_string())?;
        match tokio::time::timeout(std::time::Duration::from_secs(120), gdx_certs::frames::recv(down)).await {
            Ok(Ok(Some(Message::Ack(_)))) => lat.push(t.elapsed().as_secs_f64()),
            other => return Err(format!("changeset {seq}: {other:?}")),
        }
    }
    Ok(lat)
}

/// N simulated agents send small changesets to one hub at once.
fn fanin_bench(ns: &[usize]) {
    use gdx_common::wire::{Hello, Message};
    use gdx_common::{NodeId, Role};
    const PER_AGENT: u64 = 5;
    gdx_certs::install_crypto_provider();
    let mut results = Vec::new();
    println!(
        "{:>6} {:>10} {:>14} {:>12} {:>12} {:>10}",
        "agents", "connected", "changesets/s", "p50 ack ms", "p99 ack ms", "hub MiB"
    );
    for &n in ns {
        let mut hub = Hub::init("630000");
        hub.start();
        let ca = hub.ca();
        let root_der = gdx_certs::pki::pem_to_der(
            &std::fs::read_to_string(hub.dir.path().join("ca.crt")).expect("ca.crt"),
            "CERTIFICATE",
        )
        .expect("root");
        let now = gdx_tests::now();
        let agents: Vec<(NodeId, rcgen::KeyPair, Vec<u8>)> = (0..n)
            .map(|i| {
                let node = NodeId::parse(&format!("630000/fan{i}")).expect("node id");
                let key = gdx_certs::pki::new_key().expect("key");
                let cert = ca.issue_for_key(&key, &node, Role::Agent, now - 60, now + 3600).expect("cert");
                (node, key, cert.to_vec())
            })
            .collect();
        let addr: std::net::SocketAddr = hub.addr.parse().expect("hub address");
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        // the sending phase starts when every agent is connected
        let go: std::sync::Arc<std::sync::OnceLock<Instant>> = std::sync::Arc::new(std::sync::OnceLock::new());
        let connecting = Instant::now();
        let outcomes: Vec<Result<Vec<f64>, String>> = rt.block_on(async {
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
            let mut tasks = Vec::new();
            for (node, key, cert) in agents {
                let (root_der, barrier, go) = (root_der.clone(), barrier.clone(), go.clone());
                tasks.push(tokio::spawn(async move {
                    // Like a real agent, retry a handshake that timed out
                    // in the burst of thousands, with a growing pause.
                    let connect = async || {
                        let root = rustls::pki_types::CertificateDer::from(root_der.clone());
                        let chain = vec![rustls::pki_types::CertificateDer::from(cert.clone())];
                        let config = gdx_certs::tls::node_client_config(Some((chain, key.serialize_der())), root)
                            .map_err(|e| e.to_string())?;
                        let mut endpoint = quinn::Endpoint::client(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                            .map_err(|e| e.to_string())?;
                        endpoint.set_default_client_config(config);
                        let conn = endpoint
                            .connect(addr, gdx_certs::tls::hub_server_name())
                            .map_err(|e| e.to_string())?
                            .await
                            .map_err(|e| e.to_string())?;
                        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
                        let hello = Message::Hello(Hello {
                            node: node.clone(),
                            role: Role::Agent,
                            software: "gdx-bench".into(),
                            probe: false,
                        });
                        gdx_certs::frames::send(&mut send, &hello).await.map_err(|e| e.to_string())?;
                        match gdx_certs::frames::recv(&mut recv).await {
                            Ok(Some(Message::Welcome(_))) => {}
                            other => return Err(format!("hello: {other:?}")),
                        }
                        Ok::<_, String>((endpoint, conn))
                    };
                    let mut attempt = 0;
                    let connected = loop {
                        match connect().await {
                            Ok(c) => break Ok(c),
                            Err(e) if attempt >= 4 => break Err(e),
                            Err(_) => {
                                attempt += 1;
                                tokio::time::sleep(std::time::Duration::from_secs(attempt)).await;
                            }
                        }
                    };
                    // Phases, each ended by a barrier every agent reaches
                    // (an agent that failed passes through): all connected;
                    // each sends one changeset, which creates its vault at
                    // the hub; then the timed sending; then all close.
                    barrier.wait().await;
                    let mut streams = None;
                    let mut result: Result<Vec<f64>, String> = match &connected {
                        Ok((_, conn)) => match conn.open_bi().await {
                            Ok((mut up, mut down)) => {
                                let first = send_changesets(&mut up, &mut down, &node, &key, &cert, 1..=1).await;
                                streams = Some((up, down));
                                first
                            }
                            Err(e) => Err(e.to_string()),
                        },
                        Err(e) => Err(format!("connect: {e}")),
                    };
                    barrier.wait().await;
                    go.get_or_init(Instant::now);
                    if let (Some((up, down)), Ok(_)) = (&mut streams, &result) {
                        result = send_changesets(up, down, &node, &key, &cert, 2..=PER_AGENT + 1).await;
                    }
                    // stay connected until everyone is done, as agents would
                    barrier.wait().await;
                    if let Ok((endpoint, conn)) = connected {
                        conn.close(0u32.into(), b"done");
                        endpoint.wait_idle().await;
                    }
                    result
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
            }
            out
        });
        let started = go.get().copied().unwrap_or(connecting);
        let connect_s = started.duration_since(connecting).as_secs_f64();
        let wall = started.elapsed().as_secs_f64();
        let hub_rss = hub.proc.as_ref().map_or(0, |p| rss_kib(p.child.id()));
        let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        let mut lat: Vec<f64> = outcomes.iter().filter_map(|o| o.as_ref().ok()).flatten().copied().collect();
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| percentile(&lat, p);
        let rate = lat.len() as f64 / wall;
        println!(
            "{:>6} {:>10} {:>14.0} {:>12.1} {:>12.1} {:>10.1}",
            n,
            n - failed.len(),
            rate,
            pct(0.5) * 1000.0,
            pct(0.99) * 1000.0,
            hub_rss as f64 / 1024.0
        );
        println!(
            "       ({} of {n} connected, each with its vault, in {connect_s:.1} s before sending)",
            n - failed.len()
        );
        if let Some(e) = failed.first() {
            println!("  {} agents failed, e.g.: {e}", failed.len());
        }
        results.push(serde_json::json!({ "agents": n, "connected": n - failed.len(), "changesets": lat.len(),
            "connect_s": connect_s, "send_wall_s": wall, "changesets_per_s": rate, "p50_ack_ms": pct(0.5) * 1000.0, "p99_ack_ms": pct(0.99) * 1000.0,
            "hub_rss_kib": hub_rss }));
        hub.terminate();
    }
    write_json("fanin", &serde_json::Value::Array(results));
}
