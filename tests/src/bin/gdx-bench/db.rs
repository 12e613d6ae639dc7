//! `postgres` and `mysql`: a department's table in a real server (started
//! by the harness), read by GDX against the engine's own fastest export of
//! the same table in the same process (`COPY … TO STDOUT`; a plain
//! streaming read for MySQL); then 1 % of the rows change, and GDX reads
//! the table whole and by its watermark (`changed = "updated_at"`), against
//! rsync (through an rsync daemon on 127.0.0.1) of the same table exported
//! as a file.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use gdx_common::generate::Generator;
use gdx_tests::servers::{ADMIN, ADMIN_PASSWORD, Mariadb, Postgres};

use super::sync::{RsyncDaemon, rsync_present};
use super::{SEED, Vaults, hub_and_agent, timed_sync_of, write_json};

/// Which engine.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Engine {
    Postgres,
    Mysql,
}

/// A started server with the bench's table.
enum Server {
    Postgres(Postgres),
    Mysql(Mariadb),
}

impl Server {
    /// Writes the table, as the engine exports it, to `file`; returns the seconds it took.
    fn export(&self, file: &Path) -> f64 {
        let t = Instant::now();
        let mut out = std::io::BufWriter::new(std::fs::File::create(file).expect("export file"));
        match self {
            Server::Postgres(pg) => {
                let mut admin = pg.admin("dept");
                let mut copy = admin.copy_out("COPY people TO STDOUT").expect("copy out");
                std::io::copy(&mut copy, &mut out).expect("copy read");
            }
            Server::Mysql(my) => {
                use mysql::prelude::Queryable;
                let mut admin = my.admin();
                for row in admin.query_iter("SELECT * FROM dept.people").expect("read") {
                    let row = row.expect("row");
                    let cells: Vec<String> = (0..row.len())
                        .map(|i| match &row[i] {
                            mysql::Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                            v => v.as_sql(true),
                        })
                        .collect();
                    writeln!(out, "{}", cells.join("\t")).expect("write");
                }
            }
        }
        out.flush().expect("flush");
        t.elapsed().as_secs_f64()
    }

    /// 1 %: every 100th person renamed, stamped with the time of the change.
    fn change(&self) {
        match self {
            Server::Postgres(pg) => {
                pg.sql("dept", "UPDATE people SET name = name || '改', updated_at = now() WHERE id % 100 = 0")
            }
            Server::Mysql(my) => {
                my.sql("UPDATE dept.people SET name = CONCAT(name, '改'), updated_at = NOW(6) WHERE id % 100 = 0;\n")
            }
        }
    }
}

/// The generated people as rows of text: id, 公民身份号码, name, sex, 民族,
/// birth, address, phone, and when the row last changed (a second apart,
/// from 2025-01-01).
fn people(rows: i64) -> Vec<[String; 9]> {
    let mut generator = Generator::new(SEED);
    (1..=rows)
        .map(|i| {
            let p = generator.person();
            let sex = if p.male { "男" } else { "女" };
            let changed = gdx_common::units::format_time(1_735_689_600 + i).trim_end_matches(" UTC").to_owned();
            let (id, ethnicity) = (i.to_string(), p.ethnicity.to_owned());
            [id, p.id_number, p.name, sex.to_owned(), ethnicity, p.birth, p.address, p.phone, changed]
        })
        .collect()
}

const CREATE: &str = "CREATE TABLE people (id BIGINT PRIMARY KEY, id_number CHAR(18), name VARCHAR(64), sex VARCHAR(4), \
     ethnicity VARCHAR(16), birth DATE, address VARCHAR(200), phone VARCHAR(20), updated_at TIMESTAMP(6) NULL)";

pub(super) fn db_bench(engine: Engine, rows: i64) {
    let name = match engine {
        Engine::Postgres => "postgres",
        Engine::Mysql => "mysql",
    };
    println!("gdx-bench {name}: {rows} generated people (seed {SEED}) in a real server on 127.0.0.1");
    let data = people(rows);
    let tmp = tempfile::tempdir().expect("temp dir");
    let password = tmp.path().join("password");
    std::fs::write(&password, ADMIN_PASSWORD).expect("password file");
    std::fs::set_permissions(&password, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let (baseline_s, source, server): (f64, String, Server) = match engine {
        Engine::Postgres => {
            let pg = Postgres::start().expect("PostgreSQL is not installed (apt-get install postgresql)");
            pg.sql("postgres", "CREATE DATABASE dept");
            let mut admin = pg.admin("dept");
            admin.batch_execute(CREATE).expect("create");
            let mut w = admin.copy_in("COPY people FROM STDIN").expect("copy in");
            for r in &data {
                writeln!(w, "{}", r.join("\t")).expect("copy row");
            }
            w.finish().expect("copy");
            // the watermark column is indexed, as a column a department reads changes by should be
            admin.batch_execute("CREATE INDEX people_updated_at ON people (updated_at)").expect("index");
            admin.batch_execute("VACUUM ANALYZE people").expect("vacuum");
            let t = Instant::now();
            let mut out = admin.copy_out("COPY people TO STDOUT").expect("copy out");
            let bytes = std::io::copy(&mut out, &mut std::io::sink()).expect("copy read");
            let s = t.elapsed().as_secs_f64();
            println!("baseline COPY people TO STDOUT: {s:.2} s, {:.0} rows/s, {bytes} bytes", rows as f64 / s);
            let source = format!(
                "{{ kind = \"postgres\", host = \"127.0.0.1\", port = {}, database = \"dept\", user = \"{ADMIN}\", password_file = \"{}\", table = \"people\" }}",
                pg.port,
                password.display()
            );
            (s, source, Server::Postgres(pg))
        }
        Engine::Mysql => {
            use mysql::prelude::Queryable;
            let my = Mariadb::start().expect("MariaDB is not installed (apt-get install mariadb-server)");
            my.sql("CREATE DATABASE dept CHARACTER SET utf8mb4;\n");
            let mut admin = my.admin();
            admin.query_drop("USE dept").expect("use");
            admin.query_drop("SET time_zone = '+00:00'").expect("time zone");
            admin.query_drop(CREATE).expect("create");
            for chunk in data.chunks(5_000) {
                let values: Vec<String> =
                    chunk.iter().map(|r| format!("({},'{}')", r[0], r[1..].join("','"))).collect();
                admin.query_drop(format!("INSERT INTO people VALUES {}", values.join(","))).expect("insert");
            }
            admin.query_drop("CREATE INDEX people_updated_at ON people (updated_at)").expect("index");
            let t = Instant::now();
            let mut n = 0u64;
            for row in admin.query_iter("SELECT * FROM people").expect("read") {
                row.expect("row");
                n += 1;
            }
            let s = t.elapsed().as_secs_f64();
            println!("baseline streaming SELECT * FROM people: {s:.2} s, {:.0} rows/s ({n} rows)", rows as f64 / s);
            let source = format!(
                "{{ kind = \"mysql\", host = \"127.0.0.1\", port = {}, database = \"dept\", user = \"{ADMIN}\", password_file = \"{}\", table = \"people\" }}",
                my.port,
                password.display()
            );
            (s, source, Server::Mysql(my))
        }
    };
    // the same table twice: read whole each time, and by its watermark
    let (_hub, agent) = hub_and_agent(
        &format!(
            "[[resource]]\ncode = \"people\"\nkey = [\"id\"]\nsource = {source}\n\n\
             [[resource]]\ncode = \"people_wm\"\nkey = [\"id\"]\nchanged = \"updated_at\"\nsource = {source}\n"
        ),
        Vaults::Files,
    );
    let (gdx_s, bytes, sent, rss) = timed_sync_of(&agent, Some("people"));
    println!(
        "gdx initial sync: {gdx_s:.2} s, {:.0} rows/s, {sent} rows and {bytes} bytes sent, agent peak RSS {rss:.0} MiB ({:.2}x the baseline's time)",
        rows as f64 / gdx_s,
        gdx_s / baseline_s
    );
    let (wm_initial_s, ..) = timed_sync_of(&agent, Some("people_wm"));
    println!("gdx initial sync of the same table with changed = \"updated_at\": {wm_initial_s:.2} s");

    // rsync's baseline: the table exported as a file, copied whole, then its delta after the change
    let daemon = rsync_present().then(|| RsyncDaemon::start(tmp.path()));
    let export = tmp.path().join("people.tsv");
    let rsync_full = daemon.as_ref().map(|d| {
        let export_s = server.export(&export);
        let (s, b) = d.push(&export);
        println!("baseline rsync of the exported table (rsync daemon on 127.0.0.1): export {export_s:.2} s, rsync {s:.2} s, {b} bytes sent");
        (s, b)
    });

    server.change();
    let (inc_s, inc_bytes, inc_rows, inc_rss) = timed_sync_of(&agent, Some("people"));
    println!(
        "gdx incremental sync after 1 % changed, table read whole: {inc_s:.2} s, {inc_rows} rows and {inc_bytes} bytes sent, agent peak RSS {inc_rss:.0} MiB"
    );
    let (wm_s, wm_bytes, wm_rows, wm_rss) = timed_sync_of(&agent, Some("people_wm"));
    println!(
        "gdx incremental sync after 1 % changed, by watermark: {wm_s:.2} s, {wm_rows} rows and {wm_bytes} bytes sent, agent peak RSS {wm_rss:.0} MiB"
    );
    let rsync_delta = daemon.as_ref().map(|d| {
        let export_s = server.export(&export);
        let (s, b) = d.push(&export);
        println!(
            "baseline rsync delta of the exported table: export {export_s:.2} s, rsync {s:.2} s, {b} bytes sent; \
             gdx by watermark took {:.2}x rsync's time ({:.2}x with the export), read whole {:.2}x",
            wm_s / s,
            wm_s / (s + export_s),
            inc_s / s
        );
        (s, b, export_s)
    });
    write_json(
        name,
        &serde_json::json!({
            "rows": rows, "baseline_s": baseline_s, "gdx_s": gdx_s, "gdx_rows_per_s": rows as f64 / gdx_s,
            "ratio_to_baseline": gdx_s / baseline_s, "gdx_bytes": bytes, "agent_peak_rss_mib": rss,
            "watermark_initial_s": wm_initial_s,
            "incremental_s": inc_s, "incremental_rows": inc_rows, "incremental_bytes": inc_bytes,
            "watermark_s": wm_s, "watermark_rows": wm_rows, "watermark_bytes": wm_bytes, "watermark_rss_mib": wm_rss,
            "rsync_full_s": rsync_full.map(|r| r.0), "rsync_full_bytes": rsync_full.map(|r| r.1),
            "rsync_delta_s": rsync_delta.map(|r| r.0), "rsync_delta_bytes": rsync_delta.map(|r| r.1),
            "export_s": rsync_delta.map(|r| r.2),
            "watermark_ratio_to_rsync": rsync_delta.map(|r| wm_s / r.0),
        }),
    );
}
