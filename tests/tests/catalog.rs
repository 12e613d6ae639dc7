//! End-to-end tests of the catalogue: agents declare entries, publish,
//! change and withdraw them; the hub refuses entries that break the rules
//! before any data moves; search in Chinese, filters, freshness and the
//! HTTPS API.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gdx_common::units::format_date;
use gdx_tests::{Agent, Hub, rows_now, vault};

const GONGAN: &str = "630000/gongan";
const MINZHENG: &str = "632522/minzheng";
const HUKOU: &str = "101001/000001";
const DIBAO: &str = "301001/000001";
const TEKUN: &str = "301002/000001";

/// A valid entry; tests change fields to break it.
fn entry(
    code: &str,
    name: &str,
    class: &str,
    classification: &[&str],
    summary: &str,
    items: &[(&str, &str)],
) -> toml::Table {
    let mut t = toml::Table::new();
    let s = |v: &str| toml::Value::String(v.to_owned());
    t.insert("code".into(), s(code));
    t.insert("class".into(), s(class));
    t.insert("classification".into(), toml::Value::Array(classification.iter().map(|c| s(c)).collect()));
    t.insert("name".into(), s(name));
    t.insert("provider_name".into(), s("青海省公安厅"));
    t.insert("provider_code".into(), s("11630000015600017P"));
    t.insert("abstract".into(), s(summary));
    t.insert("format".into(), s("数据库"));
    t.insert("format_type".into(), s("sqlite"));
    t.insert("sharing_type".into(), s("无条件共享"));
    t.insert("sharing_method".into(), s("接口"));
    t.insert("open_to_public".into(), toml::Value::Boolean(true));
    t.insert("update_cycle".into(), s("每日"));
    t.insert("published".into(), s("2026-11-01"));
    let items = items
        .iter()
        .map(|(name, column)| {
            let mut i = toml::Table::new();
            i.insert("name".into(), s(name));
            if name != column {
                i.insert("column".into(), s(column));
            }
            i.insert("data_type".into(), s("C"));
            i.insert("length".into(), toml::Value::Integer(50));
            toml::Value::Table(i)
        })
        .collect();
    t.insert("items".into(), toml::Value::Array(items));
    t
}

fn hukou_entry() -> toml::Table {
    entry(
        HUKOU,
        "人口基本信息",
        "基础信息资源",
        &["人口", "户籍人口"],
        "全省户籍人口的公民身份号码和姓名",
        &[("公民身份号码", "id_number"), ("姓名", "name")],
    )
}

fn set(t: &mut toml::Table, key: &str, value: &str) {
    t.insert(key.into(), toml::Value::String(value.to_owned()));
}

fn people_db(path: &Path, table: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(&format!("CREATE TABLE {table} (id_number TEXT PRIMARY KEY, name TEXT)")).unwrap();
    c.execute_batch(&format!(
        "INSERT INTO {table} VALUES ('11010519491231002X', '卓玛'), ('440524188001010014', '才让'), ('11010219840406970X', '马秀兰')"
    ))
    .unwrap();
}

/// Declares a SQLite resource whose entry lives in `<agent dir>/<code>.toml`.
fn declare(agent: &Agent, code: &str, db: &Path, table: &str, entry: &toml::Table) {
    write_entry(agent, code, entry);
    agent.add_config(&format!(
        "[[resource]]\ncode = \"{code}\"\nkey = [\"id_number\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"{table}\" }}\ncatalog = \"{code}.toml\"",
        db.display()
    ));
}

fn write_entry(agent: &Agent, code: &str, entry: &toml::Table) {
    std::fs::write(agent.dir.path().join(format!("{code}.toml")), toml::to_string(entry).unwrap()).unwrap();
}

fn listed(hub: &Hub, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["catalog"];
    all.extend_from_slice(args);
    all.push("--json");
    serde_json::from_str(&hub.cmd(&all).ok()).unwrap()
}

fn codes(entries: &[serde_json::Value]) -> Vec<String> {
    entries.iter().map(|e| e["code"].as_str().unwrap().to_owned()).collect()
}

fn setup(node: &str) -> (Hub, Agent, tempfile::TempDir) {
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token(node, "1h")).ok();
    (hub, agent, tempfile::tempdir().unwrap())
}

fn day(offset: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    format_date(now + offset * 86_400)
}

#[test]
fn publish_change_and_withdraw() {
    let (hub, agent, tmp) = setup(GONGAN);
    let db = tmp.path().join("hukou.db");
    people_db(&db, "people");
    declare(&agent, "hukou", &db, "people", &hukou_entry());

    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["published"], 1);
    let list = listed(&hub, &["list"]);
    assert_eq!(codes(&list), [HUKOU]);
    assert_eq!(list[0]["version"], 1);
    assert_eq!(list[0]["provider"], GONGAN);
    assert_eq!(list[0]["resource"], "hukou");
    let shown: serde_json::Value = serde_json::from_str(&hub.cmd(&["catalog", "show", HUKOU, "--json"]).ok()).unwrap();
    assert_eq!(shown["items"][0]["column"], "id_number");
    assert!(shown["freshness"]["last_change"].is_i64(), "the vault's last change is shown: {shown}");
    // the HTTPS API tells it from the same vaults (on PostgreSQL too, in the second configuration)
    let (status, api) = hub.api_get(&format!("/api/v1/catalog/{HUKOU}"));
    assert_eq!((status, &api["freshness"]["last_change"]), (200, &shown["freshness"]["last_change"]), "{api}");
    let text = hub.cmd(&["catalog", "show", HUKOU]).ok();
    assert!(text.contains("信息资源名称    人口基本信息") && text.contains("公民身份号码  id_number"), "{text}");

    // unchanged: no new version
    let (code, out, _) = agent.sync(&[]);
    assert_eq!((code, out["published"].as_u64()), (0, Some(0)));
    // changed: version 2 with the new abstract
    let mut changed = hukou_entry();
    set(&mut changed, "abstract", "全省户籍人口的公民身份号码、姓名，每日更新");
    write_entry(&agent, "hukou", &changed);
    let (code, out, err) = agent.sync(&[]);
    assert_eq!((code, out["published"].as_u64()), (0, Some(1)), "{err}");
    let list = listed(&hub, &["list"]);
    assert_eq!(list[0]["version"], 2);
    assert_eq!(codes(&listed(&hub, &["search", "每日更新"])), [HUKOU]);

    // withdrawal is explicit, and refused while agent.toml still declares it
    let e = agent.cmd(&["catalog", "withdraw", HUKOU]).fails();
    assert!(e.contains("still declares catalogue entry 101001/000001"), "{e}");
    let config = agent.dir.path().join("agent.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("catalog = \"hukou.toml\"", "")).unwrap();
    let (code, out, _) = agent.sync(&[]);
    assert_eq!(code, 0);
    assert!(out["notes"][0].as_str().unwrap().contains("no longer declared"), "{out}");
    assert_eq!(codes(&listed(&hub, &["list"])), [HUKOU], "an undeclared entry stays published");

    let ok = agent.cmd(&["catalog", "withdraw", HUKOU]).ok();
    assert!(ok.contains("withdrew catalogue entry 101001/000001 (version 3)"), "{ok}");
    assert!(listed(&hub, &["list"]).is_empty());
    let all = listed(&hub, &["list", "--withdrawn"]);
    assert_eq!((all[0]["version"].as_u64(), all[0]["withdrawn"].as_bool()), (Some(3), Some(true)));
    let (status, body) = hub.api_get("/api/v1/catalog");
    assert_eq!((status, body["count"].as_u64()), (200, Some(0)));
    let (status, body) = hub.api_get("/api/v1/catalog/101001/000001");
    assert_eq!((status, body["withdrawn"].as_bool()), (200, Some(true)));
    let e = agent.cmd(&["catalog", "withdraw", HUKOU]).fails();
    assert!(e.contains("already withdrawn"), "{e}");
    // the data kept syncing all along
    assert_eq!(rows_now(&vault(&hub, GONGAN), "hukou"), 3);

    // declared again: published as the next version
    std::fs::write(&config, text).unwrap();
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    let list = listed(&hub, &["list"]);
    assert_eq!((list[0]["version"].as_u64(), list[0]["withdrawn"].as_bool()), (Some(4), Some(false)));
    let local: Vec<serde_json::Value> = serde_json::from_str(&agent.cmd(&["catalog", "list", "--json"]).ok()).unwrap();
    assert_eq!(local[0]["version"], 4);
}

#[test]
fn entries_that_break_rules_or_miss_columns_move_no_data() {
    let (hub, agent, tmp) = setup(GONGAN);
    let db = tmp.path().join("hukou.db");
    people_db(&db, "people");
    let mut bad = hukou_entry();
    set(&mut bad, "code", "10/1");
    set(&mut bad, "sharing_type", "有条件共享");
    set(&mut bad, "published", "2099-01-01");
    set(&mut bad, "provider_code", "91350100M000100Y44");
    declare(&agent, "hukou", &db, "people", &bad);
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 1);
    for field in [
        "code:",
        "provider_code:",
        "sharing_condition: 共享条件 is required",
        "published: 发布日期 2099-01-01 is in the future",
    ] {
        assert!(err.contains(field), "the message names {field}: {err}");
    }
    assert_eq!(rows_now(&vault(&hub, GONGAN), "hukou"), 0, "no data moved");
    assert!(listed(&hub, &["list"]).is_empty());

    // valid, but the items do not match the source's columns
    let mismatched = entry(
        HUKOU,
        "人口基本信息",
        "基础信息资源",
        &["人口"],
        "全省户籍人口",
        &[("公民身份号码", "id_number"), ("住址", "address")],
    );
    write_entry(&agent, "hukou", &mismatched);
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("信息项 with no source column: address") && err.contains("source columns with no 信息项: name"),
        "{err}"
    );
    assert_eq!(rows_now(&vault(&hub, GONGAN), "hukou"), 0, "no data moved");
    let status = agent.cmd(&["status"]).ok();
    assert!(
        status.contains("ERROR: resource hukou: catalogue entry 101001/000001 does not match the source"),
        "{status}"
    );
    let doctor = agent.cmd(&["doctor"]);
    assert!(doctor.stdout.contains("does not match the source") || doctor.stdout.contains("PROBLEM"), "{doctor:?}");

    write_entry(&agent, "hukou", &hukou_entry());
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rows_now(&vault(&hub, GONGAN), "hukou"), 3);
    assert_eq!(codes(&listed(&hub, &["list"])), [HUKOU]);

    // another department cannot take a code that is already catalogued
    let other = Agent::new();
    other.enroll(&hub.token("630000/minzheng", "1h")).ok();
    let db2 = tmp.path().join("other.db");
    people_db(&db2, "people");
    let mut taken = hukou_entry();
    set(&mut taken, "provider_name", "青海省民政厅");
    declare(&other, "renkou", &db2, "people", &taken);
    let (code, out, err) = other.sync(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("already catalogued by 630000/gongan"), "{err}");
    let local = other.cmd(&["catalog", "list"]).ok();
    assert!(local.contains("PROBLEM") && local.contains("already catalogued"), "{local}");
    // given a code of its own, the refused one is forgotten
    set(&mut taken, "code", "101001/000002");
    write_entry(&other, "renkou", &taken);
    let (code, _, err) = other.sync(&[]);
    assert_eq!(code, 0, "{err}");
    let local = other.cmd(&["catalog", "list"]).ok();
    assert_eq!(local.trim(), "101001/000002 人口基本信息 (resource renkou): version 1 published", "{local}");
    assert_eq!(codes(&listed(&hub, &["list"])), [HUKOU, "101001/000002"]);
}

/// Percent-encodes a query value.
fn q(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn search_filters_freshness_and_api() {
    let (hub, gongan, tmp) = setup(GONGAN);
    let db = tmp.path().join("hukou.db");
    people_db(&db, "people");
    declare(&gongan, "hukou", &db, "people", &hukou_entry());
    assert_eq!(gongan.sync(&[]).0, 0);

    let minzheng = Agent::new();
    minzheng.enroll(&hub.token(MINZHENG, "1h")).ok();
    let db2 = tmp.path().join("jiuzhu.db");
    people_db(&db2, "dibao");
    people_db(&db2, "tekun");
    let provider = gdx_common::creditcode::CreditCode::compose("11632522", "01560301").unwrap();
    let mut dibao = entry(
        DIBAO,
        "城乡最低生活保障对象信息",
        "部门信息资源",
        &["社会保障", "社会救助"],
        "低保对象的证件号码和姓名",
        &[("证件号码", "id_number"), ("姓名", "name")],
    );
    let mut tekun = entry(
        TEKUN,
        "特困人员供养信息",
        "部门信息资源",
        &["社会保障", "社会救助", "特困人员"],
        "特困供养对象的证件号码和姓名",
        &[("证件号码", "id_number"), ("姓名", "name")],
    );
    for (e, cycle) in [(&mut dibao, "每月"), (&mut tekun, "yearly")] {
        set(e, "provider_name", "同德县民政局");
        set(e, "provider_code", provider.as_str());
        set(e, "sharing_type", "有条件共享");
        set(e, "sharing_condition", "仅限社会救助审核比对使用");
        set(e, "update_cycle", cycle);
        e.insert("open_to_public".into(), toml::Value::Boolean(false));
    }
    declare(&minzheng, "dibao", &db2, "dibao", &dibao);
    declare(&minzheng, "tekun", &db2, "tekun", &tekun);
    let (code, _, err) = minzheng.sync(&[]);
    assert_eq!(code, 0, "{err}");

    // search: two-character Chinese terms, several terms, columns, no hits
    assert_eq!(codes(&listed(&hub, &["search", "人口"])), [HUKOU]);
    assert_eq!(codes(&listed(&hub, &["search", "低保"])), [DIBAO]);
    assert_eq!(codes(&listed(&hub, &["search", "救助"])), [DIBAO, TEKUN]);
    assert_eq!(codes(&listed(&hub, &["search", "救助 特困"])), [TEKUN]);
    assert_eq!(codes(&listed(&hub, &["search", "ID_NUMBER"])), [HUKOU, DIBAO, TEKUN]);
    assert!(listed(&hub, &["search", "法人"]).is_empty());
    assert_eq!(hub.cmd(&["catalog", "search", "法人"]).ok(), "no catalogue entries match\n");
    assert!(listed(&hub, &["search", "100%"]).is_empty(), "LIKE wildcards in a term are literal");

    // filters
    assert_eq!(codes(&listed(&hub, &["list", "--class", "base"])), [HUKOU]);
    assert_eq!(codes(&listed(&hub, &["list", "--class", "部门信息资源"])), [DIBAO, TEKUN]);
    assert_eq!(codes(&listed(&hub, &["list", "--provider", MINZHENG])), [DIBAO, TEKUN]);
    assert_eq!(codes(&listed(&hub, &["list", "--division", "632500"])), [DIBAO, TEKUN]);
    assert_eq!(codes(&listed(&hub, &["list", "--division", "630000"])), [HUKOU, DIBAO, TEKUN]);
    assert!(listed(&hub, &["list", "--division", "630100"]).is_empty());
    assert_eq!(codes(&listed(&hub, &["list", "--sharing", "无条件共享"])), [HUKOU]);
    assert_eq!(codes(&listed(&hub, &["search", "救助", "--sharing", "conditional", "--cycle", "每年"])), [TEKUN]);
    assert_eq!(codes(&listed(&hub, &["list", "--cycle", "daily"])), [HUKOU]);
    let bad = hub.cmd(&["catalog", "list", "--class", "foo"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("\"foo\" is not a catalogue class"), "{bad:?}");
    let table = hub.cmd(&["catalog", "list", "--provider", MINZHENG]).ok();
    assert!(table.contains("城乡最低生活保障对象信息") && table.contains("2 entries"), "{table}");

    // freshness: a 每日 entry is overdue after 3 days without a change
    assert!(listed(&hub, &["list", "--overdue"]).is_empty());
    assert!(listed(&hub, &["list", "--overdue", "--as-of", &day(2)]).is_empty());
    assert_eq!(codes(&listed(&hub, &["list", "--overdue", "--as-of", &day(3)])), [HUKOU]);
    assert_eq!(codes(&listed(&hub, &["list", "--overdue", "--as-of", &day(40)])), [HUKOU, DIBAO]);
    let table = hub.cmd(&["catalog", "list", "--as-of", &day(40)]).ok();
    assert_eq!(table.matches("OVERDUE").count(), 2, "{table}");

    // the HTTPS API serves the same catalogue
    let (status, body) = hub.api_get(&format!("/api/v1/catalog?q={}", q("人口")));
    assert_eq!(status, 200);
    assert_eq!(codes(body["entries"].as_array().unwrap()), [HUKOU]);
    // entries not open to the public are not served to anonymous clients, listed or by code
    let (_, body) = hub.api_get("/api/v1/catalog?division=630000");
    assert_eq!(codes(body["entries"].as_array().unwrap()), [HUKOU]);
    let (_, body) = hub.api_get("/api/v1/catalog?class=department&sharing=conditional&division=632522");
    assert!(body["entries"].as_array().unwrap().is_empty(), "{body}");
    let (_, body) = hub.api_get(&format!("/api/v1/catalog?overdue=true&as_of={}", day(3)));
    assert_eq!(codes(body["entries"].as_array().unwrap()), [HUKOU]);
    let (status, body) = hub.api_get("/api/v1/catalog/301001/000001");
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("no catalogue entry open to the public has the code 301001/000001")
    );
    let (status, body) = hub.api_get("/api/v1/catalog/101001/000001");
    assert_eq!((status, body["name"].as_str()), (200, Some("人口基本信息")));
    let (status, body) = hub.api_get("/api/v1/catalog?class=nope");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("not a catalogue class"), "{body}");
    let (status, _) = hub.api_get("/api/v1/catalog?colour=red");
    assert_eq!(status, 400);
    let (status, body) = hub.api_get("/api/v1/catalog/999/1");
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("no catalogue entry open to the public has the code 999/1"));
    assert_eq!(hub.api_get("/api/v1/elsewhere").0, 404);
}

#[test]
fn an_entry_published_while_the_hub_is_down_arrives_later() {
    let (mut hub, mut agent, tmp) = setup(GONGAN);
    let db = tmp.path().join("hukou.db");
    people_db(&db, "people");
    declare(&agent, "hukou", &db, "people", &hukou_entry());
    hub.terminate();
    let (code, out, _) = agent.sync(&["--timeout", "2s"]);
    assert_eq!(code, 1, "{out}");
    let local = agent.cmd(&["catalog", "list"]).ok();
    assert!(local.contains("version 1 waiting to be sent"), "{local}");
    let doctor = agent.cmd(&["doctor", "--timeout", "2s"]);
    assert!(doctor.stdout.contains("waiting to be sent"), "{doctor:?}");

    hub.start();
    agent.start();
    gdx_tests::wait_until(std::time::Duration::from_secs(30), "the daemon publishes the waiting entry", || {
        codes(&listed(&hub, &["list"])) == [HUKOU]
    });
    gdx_tests::wait_until(std::time::Duration::from_secs(30), "the data follows", || {
        rows_now(&vault(&hub, GONGAN), "hukou") == 3
    });
    let local: Vec<serde_json::Value> = serde_json::from_str(&agent.cmd(&["catalog", "list", "--json"]).ok()).unwrap();
    assert_eq!((local[0]["version"].as_u64(), local[0]["pending"].as_bool()), (Some(1), Some(false)));
}

/// The HTTPS API bounds what strangers can hold: at most 32 connections
/// from one address, and a connection that never finishes its handshake is
/// closed within seconds; the API then answers as before.
#[test]
fn the_https_api_caps_and_times_out_idle_strangers() {
    use std::io::Read;
    let mut hub = Hub::init("630000");
    hub.start();
    let addr: std::net::SocketAddr = hub.http.parse().unwrap();
    let stalled: Vec<std::net::TcpStream> = (0..32).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
    // the 33rd is closed at once, without a byte
    let mut extra = std::net::TcpStream::connect(addr).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(extra.read(&mut buf), Ok(0) | Err(_)), "the 33rd connection is refused");
    // the stalled ones are cut off after the handshake deadline (10 s)
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        assert!(matches!(s.read(&mut buf), Ok(0)), "a stalled handshake is closed");
    }
    let (status, _) = hub.api_get("/api/v1/catalog");
    assert_eq!(status, 200);
}
