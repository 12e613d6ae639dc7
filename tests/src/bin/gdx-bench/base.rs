//! `base`: the population base merged from 公安's register of N generated
//! people and three member resources covering parts of them (民政 30 %,
//! 卫健 20 %, 人社 40 %): the members' initial syncs, then the merge, timed
//! against them; a 1 % change of names merged; and `get` latency.

use std::path::Path;
use std::time::{Duration, Instant};

use gdx_common::DivisionCode;
use gdx_common::generate::Generator;
use gdx_tests::{Agent, Hub};

use super::{SEED, timed_sync_of, write_json};

const BASES: &str = r#"
[[base]]
name = "renkou"
title = "人口基础信息库"
key = "公民身份号码"

[[base.member]]
node = "630000/gongan"
resource = "hukou"
key = "id_number"

[[base.member]]
node = "630000/minzheng"
resource = "hunyin"
key = "id_number"

[[base.member]]
node = "630000/weijian"
resource = "yibao"
key = "id_number"

[[base.member]]
node = "630000/renshe"
resource = "shebao"
key = "id_number"

[[base.field]]
name = "name"
from = ["630000/gongan/hukou.name", "630000/minzheng/hunyin.name", "630000/renshe/shebao.name"]

[[base.field]]
name = "birth"
from = ["630000/gongan/hukou.birth"]

[[base.field]]
name = "address"
from = ["630000/gongan/hukou.address"]

[[base.field]]
name = "marital"
from = ["630000/minzheng/hunyin.status"]

[[base.field]]
name = "insured"
from = ["630000/weijian/yibao.insured", "630000/renshe/shebao.insured"]

[[base.field]]
name = "employer"
from = ["630000/renshe/shebao.employer"]
"#;

fn write(db: &Path, create: &str, rows: impl Iterator<Item = Vec<String>>) {
    let c = rusqlite::Connection::open(db).expect("open");
    c.execute_batch(&format!("PRAGMA journal_mode=WAL; {create}")).expect("create");
    let tx = c.unchecked_transaction().expect("tx");
    {
        let mut stmt = None;
        for r in rows {
            let s = stmt.get_or_insert_with(|| {
                let marks: Vec<String> = (1..=r.len()).map(|i| format!("?{i}")).collect();
                tx.prepare(&format!("INSERT OR REPLACE INTO t VALUES ({})", marks.join(", "))).expect("prepare")
            });
            s.execute(rusqlite::params_from_iter(&r)).expect("insert");
        }
    }
    tx.commit().expect("commit");
}

fn resource(code: &str, db: &Path) -> String {
    format!(
        "[[resource]]\ncode = \"{code}\"\nkey = [\"id_number\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"t\" }}\n",
        db.display()
    )
}

/// Records in the base now (read-only, from its file).
fn records(hub: &Hub) -> i64 {
    let path = hub.dir.path().join("bases/renkou.db");
    rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT count(*) FROM base", [], |r| r.get(0)))
        .unwrap_or(0)
}

fn name_in_base(hub: &Hub, key: &str) -> Option<String> {
    let path = hub.dir.path().join("bases/renkou.db");
    rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT name FROM base WHERE key = ?1", [key], |r| r.get(0)))
        .ok()
}

fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> f64 {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    t.elapsed().as_secs_f64()
}

pub(super) fn base_bench(people: usize) {
    println!(
        "gdx-bench base: {people} generated people (seed {SEED}) in 公安's register; 民政 30 %, 卫健 20 %, 人社 40 % of them"
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut generator = Generator::within(SEED, DivisionCode::parse("630000").expect("division"));
    let mut ids: Vec<(String, String, String, String)> = Vec::with_capacity(people);
    let mut seen = std::collections::HashSet::new();
    while ids.len() < people {
        let p = generator.person();
        if seen.insert(p.id_number.clone()) {
            ids.push((p.id_number, p.name, p.birth, p.address));
        }
    }
    drop(seen);
    let dbs: Vec<(&str, &str, std::path::PathBuf)> = vec![
        ("630000/gongan", "hukou", tmp.path().join("hukou.db")),
        ("630000/minzheng", "hunyin", tmp.path().join("hunyin.db")),
        ("630000/weijian", "yibao", tmp.path().join("yibao.db")),
        ("630000/renshe", "shebao", tmp.path().join("shebao.db")),
    ];
    write(
        &dbs[0].2,
        "CREATE TABLE t (id_number TEXT PRIMARY KEY, name TEXT, birth TEXT, address TEXT)",
        ids.iter().map(|p| vec![p.0.clone(), p.1.clone(), p.2.clone(), p.3.clone()]),
    );
    // 民政 30 %: of every ten people, the first three
    write(
        &dbs[1].2,
        "CREATE TABLE t (id_number TEXT PRIMARY KEY, name TEXT, status TEXT)",
        ids.iter()
            .enumerate()
            .filter(|(i, _)| i % 10 < 3)
            .map(|(i, p)| vec![p.0.clone(), p.1.clone(), ["已婚", "未婚", "离婚"][i % 3].to_owned()]),
    );
    write(
        &dbs[2].2,
        "CREATE TABLE t (id_number TEXT PRIMARY KEY, insured TEXT)",
        ids.iter().enumerate().filter(|(i, _)| i % 5 == 0).map(|(_, p)| vec![p.0.clone(), "城乡居民医保".to_owned()]),
    );
    write(
        &dbs[3].2,
        "CREATE TABLE t (id_number TEXT PRIMARY KEY, name TEXT, insured TEXT, employer TEXT)",
        ids.iter()
            .enumerate()
            .filter(|(i, _)| i % 5 < 2)
            .map(|(i, p)| vec![p.0.clone(), p.1.clone(), "职工养老保险".to_owned(), format!("单位{}", i % 1000)]),
    );
    let mut hub = Hub::init("630000");
    std::fs::write(hub.dir.path().join("bases.toml"), BASES).expect("bases.toml");
    hub.start();
    let agents: Vec<Agent> = dbs
        .iter()
        .map(|(node, code, db)| {
            let a = Agent::new();
            a.enroll(&hub.token(node, "1h")).ok();
            a.add_config(&resource(code, db));
            a
        })
        .collect();
    // the members' initial syncs, one after the other; the merge runs as they land
    let t = Instant::now();
    let mut syncs = 0.0;
    for (a, (_, code, _)) in agents.iter().zip(&dbs) {
        let (s, _, rows, _) = timed_sync_of(a, Some(code));
        println!("initial sync of {code}: {s:.2} s, {rows} rows");
        syncs += s;
    }
    let limit = Duration::from_secs(3600);
    // counting a million records every 50 ms would take the merge's CPU: the last key (公安's
    // register is read in key order) first, then the count
    let last_key = ids.iter().map(|p| p.0.clone()).max().expect("people");
    let tail =
        wait("the initial merge", limit, || name_in_base(&hub, &last_key).is_some() && records(&hub) == people as i64);
    let merge_total = t.elapsed().as_secs_f64();
    println!(
        "members' initial syncs {syncs:.2} s; base complete {merge_total:.2} s after the first sync began ({tail:.2} s after the last sync ended): {:.2}x the syncs' time",
        merge_total / syncs
    );
    // 1 %: every hundredth person renamed at 公安
    let changed: Vec<&(String, String, String, String)> = ids.iter().step_by(100).collect();
    {
        let c = rusqlite::Connection::open(&dbs[0].2).expect("open");
        let tx = c.unchecked_transaction().expect("tx");
        for p in &changed {
            tx.execute("UPDATE t SET name = name || '改' WHERE id_number = ?1", [&p.0]).expect("update");
        }
        tx.commit().expect("commit");
    }
    let t = Instant::now();
    let (s, _, rows, _) = timed_sync_of(&agents[0], Some("hukou"));
    let last = changed.last().expect("changed");
    let want = format!("{}改", last.1);
    wait("the 1 % merge", limit, || name_in_base(&hub, &last.0).as_deref() == Some(want.as_str()));
    let first = changed.first().expect("changed");
    assert_eq!(name_in_base(&hub, &first.0), Some(format!("{}改", first.1)));
    let change_total = t.elapsed().as_secs_f64();
    println!("1 % changed ({rows} rows): sync {s:.2} s, merged {change_total:.2} s after the sync began");
    // get latency: the operator's lookup, with every field's provenance
    let config = gdx_hub::base::BasesConfig::load(hub.dir.path()).expect("bases.toml");
    let base = &config.bases[0];
    let store = gdx_hub::store::Store::open_file(&hub.dir.path().join("hub.db")).expect("hub.db");
    let mut lat: Vec<f64> = Vec::new();
    for i in 0..1000 {
        let key = &ids[(i * 7919) % ids.len()].0;
        let t = Instant::now();
        let got = gdx_hub::base::get(hub.dir.path(), base, key, &store, gdx_tests::now()).expect("get");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(got.is_some(), "{key} is in the base");
    }
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (lat[lat.len() / 2], lat[lat.len() * 99 / 100]);
    println!("get, 1,000 keys: p50 {p50:.2} ms, p99 {p99:.2} ms");
    write_json(
        "base",
        &serde_json::json!({
            "people": people, "member_syncs_s": syncs, "base_complete_s": merge_total, "ratio_to_syncs": merge_total / syncs,
            "change_rows": rows, "change_sync_s": s, "change_merged_s": change_total, "get_p50_ms": p50, "get_p99_ms": p99,
        }),
    );
}
