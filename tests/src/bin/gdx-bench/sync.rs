//! The sync scenarios: `initial`, `incremental`, `sweep` and `csv`, on a
//! generated people table keyed as department tables are, against a local
//! SQLite copy and rsync through an rsync daemon on 127.0.0.1.

use super::*;
use gdx_tests::faults::netns::Netns;

/// How the generated people table is keyed, as department tables are.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum KeyShape {
    /// `id INTEGER PRIMARY KEY`, numbered in insertion order
    Int,
    /// the 公民身份号码, `TEXT PRIMARY KEY`, in generation (random) order
    Text,
    /// (county code TEXT, sequence number INTEGER), in generation order
    Composite,
}

impl KeyShape {
    pub(super) fn name(self) -> &'static str {
        match self {
            KeyShape::Int => "int",
            KeyShape::Text => "text",
            KeyShape::Composite => "composite",
        }
    }

    pub(super) fn key_columns(self) -> &'static str {
        match self {
            KeyShape::Int => "\"id\"",
            KeyShape::Text => "\"id_number\"",
            KeyShape::Composite => "\"county\", \"seq\"",
        }
    }

    pub(super) fn create_sql(self) -> &'static str {
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

    /// [`Self::create_sql`] as a hub's vault keeps it: `WITHOUT ROWID`, keyed.
    pub(super) fn vault_shaped_sql(self) -> String {
        let columns = match self {
            KeyShape::Int => "id INTEGER, id_number TEXT",
            KeyShape::Text => "id_number TEXT",
            KeyShape::Composite => "county TEXT, seq INTEGER, id_number TEXT",
        };
        format!(
            "CREATE TABLE people ({columns}, name TEXT, sex TEXT, ethnicity TEXT, birth TEXT, address TEXT, phone TEXT, PRIMARY KEY ({})) WITHOUT ROWID",
            self.key_columns()
        )
    }

    /// Adds person number `n` (from 1).
    pub(super) fn insert(self, conn: &rusqlite::Connection, n: i64, p: &Person) {
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

/// How a benchmark catalogues the people table of [`write_people`].
pub(super) struct PeopleEntry<'a> {
    pub code: &'a str,
    pub class: &'a str,
    pub classification: &'a str,
    pub name: &'a str,
    pub provider_name: &'a str,
    pub provider_code: &'a str,
    pub summary: &'a str,
}

/// The `[[resource]]` of agent.toml publishing table `people` of `src`
/// (made by [`write_people`]) as `code`, keyed by 公民身份号码, catalogued
/// as `entry` and shared 无条件共享.
pub(super) fn catalogued_people(code: &str, src: &Path, entry: &PeopleEntry<'_>) -> String {
    format!(
        r#"[[resource]]
code = "{code}"
key = ["id_number"]
source = {{ kind = "sqlite", path = "{}", table = "people" }}

[resource.catalog]
code = "{}"
class = "{}"
classification = ["{}"]
name = "{}"
provider_name = "{}"
provider_code = "{}"
abstract = "{}"
format = "数据库"
format_type = "sqlite"
sharing_type = "无条件共享"
sharing_method = "接口"
open_to_public = false
update_cycle = "实时"
published = "2026-11-01"
items = [ {{ name = "公民身份号码", column = "id_number", data_type = "C", length = 18 }}, {{ name = "姓名", column = "name", data_type = "C", length = 50 }}, {{ name = "性别", column = "sex", data_type = "C", length = 2 }}, {{ name = "民族", column = "ethnicity", data_type = "C", length = 20 }}, {{ name = "出生日期", column = "birth", data_type = "D", length = 8 }}, {{ name = "住址", column = "address", data_type = "C", length = 100 }}, {{ name = "联系电话", column = "phone", data_type = "C", length = 11 }} ]
"#,
        src.display(),
        entry.code,
        entry.class,
        entry.classification,
        entry.name,
        entry.provider_name,
        entry.provider_code,
        entry.summary,
    )
}

/// `rows` generated people in table `people` of `db`, keyed as `shape` says.
pub(super) fn write_people(db: &Path, rows: i64, shape: KeyShape, generator: &mut Generator) {
    let c = rusqlite::Connection::open(db).expect("open source");
    c.execute_batch(shape.create_sql()).expect("create people");
    let tx = c.unchecked_transaction().expect("tx");
    for n in 1..=rows {
        shape.insert(&tx, n, &generator.person());
    }
    tx.commit().expect("commit");
}

/// The SQLite resource of `src`'s people table keyed as `shape`.
pub(super) fn people_resource(src: &Path, shape: KeyShape) -> String {
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
/// The copy and the first sync run `repeat` times each; their medians count.
pub(super) fn sync_bench(
    shape: KeyShape,
    rows: i64,
    pct: f64,
    repeat: u32,
    vaults: Vaults,
) -> (serde_json::Value, serde_json::Value) {
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
    let copies: Vec<f64> = (0..repeat)
        .map(|n| timed_copy(&src, &tmp.path().join(format!("copy{n}.db")), shape.create_sql(), ""))
        .collect();
    let copy_s = median(&copies);
    println!("baseline sqlite copy: {:.2} s, {:.0} rows/s{}", copy_s, rows as f64 / copy_s, runs_of(&copies));
    // For scale, not a goal: the same rows copied into a table shaped as a
    // hub's vault (`WITHOUT ROWID`, keyed), in key order: SQLite cannot copy
    // records byte for byte there, so each row is decoded and inserted.
    let order = format!(" ORDER BY {}", shape.key_columns());
    let vault_copy_s = timed_copy(&src, &tmp.path().join("vault-shaped.db"), &shape.vault_shaped_sql(), &order);
    println!("the same rows into a table shaped as a vault (WITHOUT ROWID, in key order): {vault_copy_s:.2} s");

    // Baseline: rsync full, then delta, to an rsync daemon on 127.0.0.1.
    let daemon = rsync_present().then(|| RsyncDaemon::start(tmp.path()));
    let rsync_full = daemon.as_ref().map(|d| {
        let (s, b) = d.push(&src);
        println!("baseline rsync full copy (rsync daemon on 127.0.0.1): {s:.2} s, {b} bytes sent");
        (s, b)
    });

    // GDX initial sync.
    println!("the hub keeps its vaults in {}", vaults.name());
    // the runs before the last on a hub and agent of their own; the last one's go on to the change
    // and the processor time each side took, far steadier than the
    // elapsed time on a machine where the two share two cores
    let mut cpus: Vec<(f64, f64)> = Vec::new();
    let mut first_sync = || {
        let (hub, agent) = hub_and_agent(&people_resource(&src, shape), vaults);
        let cpu = CpuUse::start(&hub);
        let synced = timed_sync(&agent);
        cpus.push(cpu.taken(&hub));
        (hub, agent, synced)
    };
    let mut firsts: Vec<f64> = (1..repeat).map(|_| first_sync().2.0).collect();
    let (_hub, agent, (last_s, full_bytes, _, rss)) = first_sync();
    firsts.push(last_s);
    let gdx_s = median(&firsts);
    let agent_cpu = median(&cpus.iter().map(|c| c.0).collect::<Vec<_>>());
    let hub_cpu = median(&cpus.iter().map(|c| c.1).collect::<Vec<_>>());
    println!(
        "gdx initial sync: {:.2} s, {:.0} rows/s, {} bytes sent, agent peak RSS {rss:.0} MiB ({:.2}x the SQLite copy's time, {:.2}x the vault-shaped copy's){}",
        gdx_s,
        rows as f64 / gdx_s,
        full_bytes,
        gdx_s / copy_s,
        gdx_s / vault_copy_s,
        runs_of(&firsts)
    );
    println!("processor time of the first sync: agent {agent_cpu:.2} s, hub {hub_cpu:.2} s (medians)");

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
    let initial = serde_json::json!({ "key": shape.name(), "rows": rows, "vaults": vaults.name(), "gdx_s": gdx_s, "gdx_rows_per_s": rows as f64 / gdx_s, "vault_shaped_copy_s": vault_copy_s, "ratio_to_vault_shaped_copy": gdx_s / vault_copy_s,
        "gdx_bytes": full_bytes, "agent_peak_rss_mib": rss, "sqlite_copy_s": copy_s, "ratio_to_copy": gdx_s / copy_s, "gdx_runs_s": firsts, "sqlite_copy_runs_s": copies,
        "rsync_s": rsync_full.map(|r| r.0), "rsync_bytes": rsync_full.map(|r| r.1),
        "agent_cpu_s": agent_cpu, "hub_cpu_s": hub_cpu });
    let incremental = serde_json::json!({ "key": shape.name(), "rows": rows, "rows_changed": inc_rows, "gdx_s": inc_s,
        "gdx_bytes": inc_bytes, "agent_peak_rss_mib": inc_rss, "zstd_changed_rows_bytes": zstd_bytes,
        "rsync_s": rsync_delta.map(|r| r.0), "rsync_bytes": rsync_delta.map(|r| r.1),
        "ratio_to_rsync_s": rsync_delta.map(|r| inc_s / r.0), "rsync_bytes_per_gdx_byte": rsync_delta.map(|r| r.1 as f64 / inc_bytes.max(1) as f64) });
    (initial, incremental)
}

/// `sweep`: every key shape at every size, first sync and a 1 % change;
/// time per row, the ratio to the text key at the same size, peak RSS.
pub(super) fn sweep_bench(sizes: &[i64], shapes: &[KeyShape]) {
    let mut runs = Vec::new();
    for &rows in sizes {
        for &shape in shapes {
            let tmp = tempfile::tempdir().expect("temp dir");
            let src = tmp.path().join("src.db");
            let mut generator = Generator::new(SEED);
            write_people(&src, rows, shape, &mut generator);
            let (_hub, agent) = hub_and_agent(&people_resource(&src, shape), Vaults::Files);
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
pub(super) fn csv_bench(rows: i64) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let folder = tmp.path().join("drop");
    std::fs::create_dir_all(&folder).expect("drop folder");
    let mut generator = Generator::new(SEED);
    let mut text = String::from("证件号码,姓名,性别,民族,出生日期,住址,联系电话\r\n");
    for _ in 0..rows {
        let p = generator.person();
        let address = if p.address.contains([',', '"']) {
            format!("\"{}\"", p.address.replace('"', "\"\""))
        } else {
            p.address.clone()
        };
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
    let (_hub, agent) = hub_and_agent(
        &format!(
            "[[resource]]\ncode = \"dibao\"\nkey = [\"证件号码\"]\nsource = {{ kind = \"csv\", dir = \"{}\", encoding = \"auto\" }}",
            folder.display()
        ),
        Vaults::Files,
    );
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
pub(super) fn change_people(db: &Path, shape: KeyShape, rows: i64, changed: i64, generator: &mut Generator) -> String {
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
        if (i as i64) < updates {
            let p = generator.person();
            tx.execute(
                "UPDATE people SET address = ?1, phone = ?2 WHERE rowid = ?3",
                rusqlite::params![p.address, p.phone, rowid],
            )
            .expect("update");
            touched.push(rowid);
        } else {
            let key = key_of(rowid);
            tx.execute("DELETE FROM people WHERE rowid = ?1", [rowid]).expect("delete");
            text.push_str(&format!("-{key}\n"));
        }
    }
    let next: i64 = tx.query_row("SELECT max(rowid) FROM people", [], |r| r.get(0)).expect("max rowid");
    for k in 0..inserts {
        let p = generator.person();
        shape.insert(&tx, next + 1 + k, &p);
        touched.push(tx.last_insert_rowid());
    }
    // by rowid: the integer and composite shapes have no index on id_number
    let as_text = format!("SELECT {} FROM people WHERE rowid = ?1", PEOPLE_COLUMNS.join(" || char(9) || "));
    for rowid in touched {
        let line: String = tx.query_row(&as_text, [rowid], |r| r.get(0)).expect("changed row");
        text.push_str(&line);
        text.push('\n');
    }
    tx.commit().expect("commit");
    text
}

/// True when rsync is installed; otherwise says how to install it (the
/// bench never installs system packages) and the rsync baseline is skipped.
pub(super) fn rsync_present() -> bool {
    let present = Command::new("rsync").arg("--version").output().is_ok_and(|o| o.status.success());
    if !present {
        println!(
            "baseline rsync: skipped, rsync is not installed (as root: apt-get install rsync, then run the bench again)"
        );
    }
    present
}

/// An rsync daemon serving one writable module, so the baseline runs
/// rsync's network protocol and delta algorithm (as a copy between two
/// machines would), not its local whole-file shortcut.
pub(super) struct RsyncDaemon {
    child: std::process::Child,
    address: String,
    port: u16,
}

/// `program`, inside `ns` if given.
fn command_in(ns: Option<&Netns>, program: &str) -> Command {
    ns.map_or_else(|| Command::new(program), |ns| ns.command(program))
}

impl RsyncDaemon {
    /// A daemon on 127.0.0.1.
    pub(super) fn start(tmp: &Path) -> Self {
        Self::start_in(tmp, None, "127.0.0.1")
    }

    /// A daemon on `address`, inside `ns` if given.
    pub(super) fn start_in(tmp: &Path, ns: Option<&Netns>, address: &str) -> Self {
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
        let child = command_in(ns, "rsync")
            .args(["--daemon", "--no-detach", "--address", address, "--port", &port.to_string(), "--config"])
            .arg(&conf)
            .arg("--log-file")
            .arg(&log)
            .spawn()
            .expect("start the rsync daemon");
        // owned first: a failure below still stops it (Drop)
        let mut daemon = Self { child, address: address.to_owned(), port };
        gdx_tests::wait_until(std::time::Duration::from_secs(10), "the rsync daemon listens", || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                let why = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("the rsync daemon exited ({status}): {why}");
            }
            std::fs::read_to_string(&log).unwrap_or_default().contains("listening on port")
        });
        daemon
    }

    /// (seconds, bytes sent) of one rsync of `src` into the module.
    pub(super) fn push(&self, src: &Path) -> (f64, u64) {
        self.push_from(src, None, &[])
    }

    /// [`RsyncDaemon::push`] from inside `ns` if given, with `extra` options.
    pub(super) fn push_from(&self, src: &Path, ns: Option<&Netns>, extra: &[&str]) -> (f64, u64) {
        let t = Instant::now();
        let out = command_in(ns, "rsync")
            .env("LC_ALL", "C")
            .args(["--stats", "--inplace"])
            .args(extra)
            .arg(src)
            .arg(format!("rsync://{}:{}/bench/", self.address, self.port))
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

/// The median of `runs` (not empty).
fn median(runs: &[f64]) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 }
}

/// The processor time (user and system) a sync takes in the agent and in
/// the hub, from Linux's /proc: the agent's as this process's waited-for
/// children's, the hub's from its own.
struct CpuUse {
    children: f64,
    hub: f64,
}

impl CpuUse {
    fn start(hub: &Hub) -> Self {
        Self { children: cpu_secs("self", 15), hub: hub_cpu(hub) }
    }

    /// (agent, hub) seconds since [`CpuUse::start`].
    fn taken(&self, hub: &Hub) -> (f64, f64) {
        (cpu_secs("self", 15) - self.children, hub_cpu(hub) - self.hub)
    }
}

fn hub_cpu(hub: &Hub) -> f64 {
    hub.proc.as_ref().map_or(0.0, |p| cpu_secs(&p.child.id().to_string(), 13))
}

/// Seconds in fields `at` and `at + 1` (from 0) of /proc/`pid`/stat: user
/// and system time (13), or waited-for children's (15); 0 when unreadable.
fn cpu_secs(pid: &str, at: usize) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // the command name, in parentheses, may hold spaces: count after it
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let tick = |i: usize| fields.get(i - 2).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // clock ticks, 100 a second on Linux
    (tick(at) + tick(at + 1)) / 100.0
}

/// `" (median of 1.02 0.98 1.10 s)"`, or nothing for one run.
fn runs_of(runs: &[f64]) -> String {
    if runs.len() < 2 {
        return String::new();
    }
    let each: Vec<String> = runs.iter().map(|s| format!("{s:.2}")).collect();
    format!(" (median of {} s)", each.join(" "))
}

/// Seconds to copy the people of `src` into a new database `dst` whose
/// table `create` makes (with a vault's pragmas), read in `order`; `dst`
/// is removed after.
fn timed_copy(src: &Path, dst: &Path, create: &str, order: &str) -> f64 {
    let t = Instant::now();
    let c = rusqlite::Connection::open(dst).expect("open copy");
    c.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-262144; {create};
         ATTACH '{}' AS s; INSERT INTO people SELECT * FROM s.people{order}; DETACH s;",
        src.display()
    ))
    .expect("copy");
    let secs = t.elapsed().as_secs_f64();
    drop(c);
    for file in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{file}", dst.display()));
    }
    secs
}
