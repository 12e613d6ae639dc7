//! `exchange`: a register of ROWS people shared 无条件共享 by a department
//! of the province, granted to a county department under a prefecture:
//! the delivery against the provider's own sync, how soon a 1 % change is
//! seen at the consumer, `gdx-agent lookup` per command (process included),
//! alone and while a second consumer receives the whole register, and the
//! size of the consumer hub's lookup copy. With `--postgres` the province
//! (the provider's hub, which makes the deliveries) keeps its stores on a
//! real PostgreSQL.

use std::time::Duration;

use super::load::percentile;
use super::sync::{KeyShape, PeopleEntry, catalogued_people, write_people};
use super::*;

/// The entry the register is catalogued as.
const ENTRY: &str = "301001/000201";

pub(super) fn exchange_bench(rows: i64, lookups: usize, postgres: bool) {
    let pg = match postgres {
        true => match gdx_tests::servers::Postgres::start() {
            Some(pg) => Some(pg),
            None => {
                println!("gdx-bench exchange --postgres: PostgreSQL is not installed; skipped");
                return;
            }
        },
        false => None,
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("src.db");
    write_people(&src, rows, KeyShape::Text, &mut Generator::new(SEED));
    let mut province = Hub::init("630000");
    if let Some(pg) = &pg {
        pg.hold_vaults_of(&province);
    }
    province.start();
    let mut prefecture = Hub::join(&province.hub_token("632500/hub"));
    prefecture.start();
    let provider = Agent::new();
    provider.enroll(&province.token("630000/gongan", "1h")).ok();
    provider.add_config(&catalogued_people(
        "huji",
        &src,
        &PeopleEntry {
            code: ENTRY,
            class: "部门信息资源",
            classification: "社会保障",
            name: "青海省户籍人口",
            provider_name: "青海省公安厅",
            provider_code: "116300000156030157",
            summary: "户籍人口登记信息",
        },
    ));
    let t = Instant::now();
    let (code, _, err) = provider.sync(&[]);
    assert_eq!(code, 0, "the provider's sync failed: {err}");
    let provider_s = t.elapsed().as_secs_f64();

    let mut consumer = Agent::new();
    consumer.enroll(&prefecture.token("632522/minzheng", "1h")).ok();
    consumer.start();
    gdx_tests::wait_until(Duration::from_secs(60), "the entry reaches the prefecture", || {
        prefecture.cmd(&["catalog", "list"]).stdout.contains(ENTRY)
    });
    let received = consumer.dir.path().join("received.db");
    let table = "gongan_huji_630000";
    let t = Instant::now();
    let asked =
        consumer.cmd(&["request", "--resource", ENTRY, "--fields", "公民身份号码,姓名,住址", "--purpose", "测量交换"]);
    assert_eq!(asked.code, 0, "the request failed: {}", asked.stderr);
    gdx_tests::wait_until(Duration::from_secs(600), "the whole register delivered", || {
        gdx_tests::rows_now(&received, table) == rows as u64
    });
    let delivery_s = t.elapsed().as_secs_f64();

    // 1 %: a new address, synced by the provider; seen when the last changed row arrives
    let changed = (rows / 100).max(1);
    let src_conn = rusqlite::Connection::open(&src).expect("source");
    src_conn
        .execute(
            "UPDATE people SET address = address || '（已迁）' WHERE rowid IN (SELECT rowid FROM people ORDER BY rowid LIMIT ?1)",
            [changed],
        )
        .expect("change");
    let t = Instant::now();
    let (code, _, err) = provider.sync(&[]);
    assert_eq!(code, 0, "the provider's sync failed: {err}");
    let change_sync_s = t.elapsed().as_secs_f64();
    let synced = Instant::now();
    let moved = || -> i64 {
        rusqlite::Connection::open_with_flags(&received, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.query_row(&format!("SELECT count(*) FROM \"{table}\" WHERE address LIKE '%（已迁）'"), [], |r| {
                    r.get(0)
                })
            })
            .unwrap_or(0)
    };
    while moved() < changed {
        assert!(synced.elapsed().as_secs() < 120, "the change did not reach the consumer within 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let visible_s = synced.elapsed().as_secs_f64();

    // lookups, each a `gdx-agent lookup` process
    let ids: Vec<String> = {
        let mut stmt = src_conn.prepare("SELECT id_number FROM people ORDER BY random() LIMIT ?1").expect("ids");
        stmt.query_map([lookups as i64], |r| r.get(0)).expect("ids").filter_map(Result::ok).collect()
    };
    let mut lat = Vec::new();
    for id in &ids {
        let t = Instant::now();
        let out = consumer.cmd(&["lookup", "--resource", ENTRY, id]);
        lat.push(t.elapsed().as_secs_f64());
        assert_eq!(out.code, 0, "lookup {id} failed: {}", out.stderr);
    }
    lat.sort_by(f64::total_cmp);

    // the lookup copy at the consumer's hub against the granted columns at the source
    let granted: i64 = src_conn
        .query_row("SELECT sum(length(CAST(id_number AS BLOB)) + length(CAST(name AS BLOB)) + length(CAST(address AS BLOB))) FROM people", [], |r| r.get(0))
        .expect("granted size");
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let ex = prefecture.dir.path().join("exchange.db");
    let file = size(&ex) + size(&ex.with_file_name("exchange.db-wal"));
    // the lookup copy alone: the pages of the replica tables and their indexes (SQLite's dbstat)
    let copy: u64 = rusqlite::Connection::open_with_flags(&ex, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| {
            c.query_row(
                "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name LIKE 'replica%')",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as u64)
        .unwrap_or(file);

    // the same lookups while a second consumer receives the whole register
    let mut second = Agent::new();
    second.enroll(&prefecture.token("632521/minzheng", "1h")).ok();
    second.start();
    let second_received = second.dir.path().join("received.db");
    let asked =
        second.cmd(&["request", "--resource", ENTRY, "--fields", "公民身份号码,姓名,住址", "--purpose", "测量交换"]);
    assert_eq!(asked.code, 0, "the second request failed: {}", asked.stderr);
    let mut busy = Vec::new();
    for (n, id) in ids.iter().cycle().enumerate() {
        if n % 10 == 0 && gdx_tests::rows_now(&second_received, table) == rows as u64 {
            break;
        }
        assert!(n < 100_000, "the second delivery did not finish");
        let t = Instant::now();
        let out = consumer.cmd(&["lookup", "--resource", ENTRY, id]);
        busy.push(t.elapsed().as_secs_f64());
        assert_eq!(out.code, 0, "lookup {id} failed: {}", out.stderr);
    }
    busy.sort_by(f64::total_cmp);
    second.proc = None;

    let store = if pg.is_some() { "postgres" } else { "sqlite" };
    println!("exchange: {rows} rows granted 无条件共享, province provider (stores on {store}) → 海南州 consumer");
    println!("{:<44} {:>10}", "", "value");
    println!("{:<44} {:>9.2}s", "provider's initial sync", provider_s);
    println!("{:<44} {:>9.2}s", "delivery of the whole register", delivery_s);
    println!("{:<44} {:>9.2}×", "delivery ÷ provider's sync", delivery_s / provider_s);
    println!("{:<44} {:>9.2}s", "provider's sync of a 1 % change", change_sync_s);
    println!("{:<44} {:>9.2}s", "the change seen at the consumer after it", visible_s);
    println!("{:<44} {:>8.1}ms", "lookup p50 (process included)", percentile(&lat, 0.5) * 1000.0);
    println!("{:<44} {:>8.1}ms", "lookup p99", percentile(&lat, 0.99) * 1000.0);
    println!(
        "{:<44} {:>8.1}ms",
        format!("lookup p99 during a whole delivery ({} made)", busy.len()),
        percentile(&busy, 0.99) * 1000.0
    );
    println!("{:<44} {:>8.1}MiB", "granted columns at the source", granted as f64 / 1048576.0);
    println!("{:<44} {:>8.1}MiB", "the consumer hub's exchange.db (all of it)", file as f64 / 1048576.0);
    println!("{:<44} {:>8.1}MiB", "of which the lookup copy (replica + indexes)", copy as f64 / 1048576.0);
    println!("{:<44} {:>9.2}×", "lookup copy ÷ granted columns", copy as f64 / granted as f64);
    write_json(
        "exchange",
        &serde_json::json!({ "rows": rows, "province_store": store, "provider_sync_s": provider_s, "delivery_s": delivery_s,
            "change_sync_s": change_sync_s, "change_visible_s": visible_s,
            "lookup_p50_ms": percentile(&lat, 0.5) * 1000.0, "lookup_p99_ms": percentile(&lat, 0.99) * 1000.0,
            "lookup_busy_p50_ms": percentile(&busy, 0.5) * 1000.0,
            "lookup_busy_p99_ms": percentile(&busy, 0.99) * 1000.0, "lookups_busy": busy.len(),
            "granted_bytes": granted, "exchange_db_bytes": file, "copy_bytes": copy }),
    );
    consumer.proc = None;
}
