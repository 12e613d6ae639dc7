//! `postgres` and `mysql`: a department's table in a real server (started
//! by the harness), read by GDX against the engine's own fastest export of
//! the same table in the same process (`COPY … TO STDOUT`; a plain
//! streaming read for MySQL), then again after 1 % of the rows changed.

use std::time::Instant;

use gdx_common::generate::Generator;
use gdx_tests::servers::{ADMIN, ADMIN_PASSWORD, Mariadb, Postgres};

use super::{SEED, hub_and_agent, timed_sync, write_json};

/// Which engine.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Engine {
    Postgres,
    Mysql,
}

/// The generated people as rows of text: id, 公民身份号码, name, sex, 民族, birth, address, phone.
fn people(rows: i64) -> Vec<[String; 8]> {
    let mut generator = Generator::new(SEED);
    (1..=rows)
        .map(|i| {
            let p = generator.person();
            let sex = if p.male { "男" } else { "女" };
            [i.to_string(), p.id_number, p.name, sex.to_owned(), p.ethnicity.to_owned(), p.birth, p.address, p.phone]
        })
        .collect()
}

const CREATE: &str = "CREATE TABLE people (id BIGINT PRIMARY KEY, id_number CHAR(18), name VARCHAR(64), sex VARCHAR(4), \
     ethnicity VARCHAR(16), birth DATE, address VARCHAR(200), phone VARCHAR(20))";

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
    let (baseline_s, source, _pg, _my): (f64, String, Option<Postgres>, Option<Mariadb>) = match engine {
        Engine::Postgres => {
            let pg = Postgres::start().expect("PostgreSQL is not installed (apt-get install postgresql)");
            pg.sql("postgres", "CREATE DATABASE dept");
            let mut admin = pg.admin("dept");
            admin.batch_execute(CREATE).expect("create");
            let mut w = admin.copy_in("COPY people FROM STDIN").expect("copy in");
            for r in &data {
                use std::io::Write;
                writeln!(w, "{}", r.join("\t")).expect("copy row");
            }
            w.finish().expect("copy");
            admin.batch_execute("VACUUM ANALYZE people").expect("vacuum");
            let t = Instant::now();
            let mut out = admin.copy_out("COPY people TO STDOUT").expect("copy out");
            let bytes = std::io::copy(&mut out, &mut std::io::sink()).expect("copy read");
            let s = t.elapsed().as_secs_f64();
            println!("baseline COPY people TO STDOUT: {s:.2} s, {:.0} rows/s, {bytes} bytes", rows as f64 / s);
            let source = format!(
                "source = {{ kind = \"postgres\", host = \"127.0.0.1\", port = {}, database = \"dept\", user = \"{ADMIN}\", password_file = \"{}\", table = \"people\" }}",
                pg.port,
                password.display()
            );
            (s, source, Some(pg), None)
        }
        Engine::Mysql => {
            use mysql::prelude::Queryable;
            let my = Mariadb::start().expect("MariaDB is not installed (apt-get install mariadb-server)");
            my.sql("CREATE DATABASE dept CHARACTER SET utf8mb4;\n");
            let mut admin = my.admin();
            admin.query_drop("USE dept").expect("use");
            admin.query_drop(CREATE).expect("create");
            for chunk in data.chunks(5_000) {
                let values: Vec<String> = chunk
                    .iter()
                    .map(|r| {
                        format!(
                            "({},'{}','{}','{}','{}','{}','{}','{}')",
                            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]
                        )
                    })
                    .collect();
                admin.query_drop(format!("INSERT INTO people VALUES {}", values.join(","))).expect("insert");
            }
            let t = Instant::now();
            let mut n = 0u64;
            for row in admin.query_iter("SELECT * FROM people").expect("read") {
                row.expect("row");
                n += 1;
            }
            let s = t.elapsed().as_secs_f64();
            println!("baseline streaming SELECT * FROM people: {s:.2} s, {:.0} rows/s ({n} rows)", rows as f64 / s);
            let source = format!(
                "source = {{ kind = \"mysql\", host = \"127.0.0.1\", port = {}, database = \"dept\", user = \"{ADMIN}\", password_file = \"{}\", table = \"people\" }}",
                my.port,
                password.display()
            );
            (s, source, None, Some(my))
        }
    };
    let (_hub, agent) = hub_and_agent(&format!("[[resource]]\ncode = \"people\"\nkey = [\"id\"]\n{source}\n"), false);
    let (gdx_s, bytes, sent, rss) = timed_sync(&agent);
    println!(
        "gdx initial sync: {gdx_s:.2} s, {:.0} rows/s, {sent} rows and {bytes} bytes sent, agent peak RSS {rss:.0} MiB ({:.2}x the baseline's time)",
        rows as f64 / gdx_s,
        gdx_s / baseline_s
    );
    // 1 %: every 100th person renamed
    let change = "UPDATE people SET name = CONCAT(name, '改') WHERE id % 100 = 0";
    match (&_pg, &_my) {
        (Some(pg), _) => pg.sql("dept", &change.replace("CONCAT(name, '改')", "name || '改'")),
        (_, Some(my)) => my.sql(&format!("{};\n", change.replace("people", "dept.people"))),
        _ => {}
    }
    let (inc_s, inc_bytes, inc_rows, inc_rss) = timed_sync(&agent);
    println!(
        "gdx incremental sync after 1 % changed: {inc_s:.2} s, {inc_rows} rows and {inc_bytes} bytes sent, agent peak RSS {inc_rss:.0} MiB (no watermark: the whole table is read)"
    );
    write_json(
        name,
        &serde_json::json!({
            "rows": rows, "baseline_s": baseline_s, "gdx_s": gdx_s, "gdx_rows_per_s": rows as f64 / gdx_s,
            "ratio_to_baseline": gdx_s / baseline_s, "gdx_bytes": bytes, "agent_peak_rss_mib": rss,
            "incremental_s": inc_s, "incremental_rows": inc_rows, "incremental_bytes": inc_bytes,
        }),
    );
}
