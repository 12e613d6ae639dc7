//! Base databases at the province: the population base merged from 公安
//! (the authority for names and birth dates) and 民政 (filling in marital
//! status, and names 公安 does not have), each field with its provenance,
//! the sources' disagreements listed, a provider's update reflected, a
//! revoked member's fields marked stale, and a hub killed in the middle of
//! a merge losing and doubling nothing.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use gdx_common::DivisionCode;
use gdx_common::generate::Generator;
use gdx_tests::{Agent, Hub, wait_until};

const GONGAN: &str = "630000/gongan";
const MINZHENG: &str = "630000/minzheng";

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

[[base.field]]
name = "name"
from = ["630000/gongan/hukou.name", "630000/minzheng/hunyin.name"]

[[base.field]]
name = "birth"
from = ["630000/gongan/hukou.birth"]

[[base.field]]
name = "marital"
from = ["630000/minzheng/hunyin.status"]
"#;

fn table(db: &Path, create: &str, rows: &[Vec<String>]) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(create).unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for r in rows {
        let marks: Vec<String> = (1..=r.len()).map(|i| format!("?{i}")).collect();
        tx.execute(&format!("INSERT OR REPLACE INTO t VALUES ({})", marks.join(", ")), rusqlite::params_from_iter(r))
            .unwrap();
    }
    tx.commit().unwrap();
}

fn resource(code: &str, db: &Path) -> String {
    format!(
        "[[resource]]\ncode = \"{code}\"\nkey = [\"id_number\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"t\" }}\n",
        db.display()
    )
}

fn get(hub: &Hub, key: &str) -> Option<serde_json::Value> {
    let run = hub.cmd(&["base", "get", "renkou", key, "--json"]);
    (run.code == 0).then(|| serde_json::from_str(&run.stdout).unwrap())
}

fn field<'a>(record: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    record.as_array().unwrap().iter().find(|f| f["field"] == name).unwrap()
}

fn synced(agent: &Agent) {
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{out} {err}");
}

#[test]
fn a_base_merges_an_authority_and_a_filler_with_provenance_and_conflicts() {
    let mut hub = Hub::init("630000");
    std::fs::write(hub.dir.path().join("bases.toml"), BASES).unwrap();
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut generator = Generator::within(2026, DivisionCode::parse("630000").unwrap());
    let people: Vec<_> = (0..3).map(|_| generator.person()).collect();
    let gongan = Agent::new();
    gongan.enroll(&hub.token(GONGAN, "1h")).ok();
    let hukou = tmp.path().join("hukou.db");
    table(
        &hukou,
        "CREATE TABLE t (id_number TEXT PRIMARY KEY, name TEXT, birth TEXT)",
        &people.iter().map(|p| vec![p.id_number.clone(), p.name.clone(), p.birth.clone()]).collect::<Vec<_>>(),
    );
    gongan.add_config(&resource("hukou", &hukou));
    let minzheng = Agent::new();
    minzheng.enroll(&hub.token(MINZHENG, "1h")).ok();
    let hunyin = tmp.path().join("hunyin.db");
    let only_minzheng = generator.person();
    table(
        &hunyin,
        "CREATE TABLE t (id_number TEXT PRIMARY KEY, name TEXT, status TEXT)",
        &[
            // the same person, the name spelled another way
            vec![people[0].id_number.clone(), format!("{}（另写）", people[0].name), "已婚".into()],
            vec![people[1].id_number.clone(), people[1].name.clone(), "未婚".into()],
            vec![only_minzheng.id_number.clone(), only_minzheng.name.clone(), "离婚".into()],
        ],
    );
    minzheng.add_config(&resource("hunyin", &hunyin));
    synced(&gongan);
    synced(&minzheng);

    wait_until(Duration::from_secs(20), "the base takes both members", || {
        get(&hub, &only_minzheng.id_number).is_some()
            && get(&hub, &people[0].id_number).is_some_and(|r| field(&r, "marital")["value"] == "已婚")
    });
    let r = get(&hub, &people[0].id_number).unwrap();
    let name = field(&r, "name");
    assert_eq!(name["value"], people[0].name.as_str(), "the authority's name: {r}");
    assert_eq!((name["from"].as_str(), name["changeset"].as_i64()), (Some("630000/gongan/hukou"), Some(1)));
    assert_eq!(field(&r, "birth")["value"], people[0].birth.as_str());
    assert_eq!(field(&r, "marital")["from"], "630000/minzheng/hunyin");
    // 民政 fills in the name 公安 does not have
    let r = get(&hub, &only_minzheng.id_number).unwrap();
    assert_eq!(field(&r, "name")["value"], only_minzheng.name.as_str());
    assert_eq!(field(&r, "name")["from"], "630000/minzheng/hunyin");
    assert!(field(&r, "birth")["value"].is_null());
    // the disagreement is listed, per department pair
    let conflicts: serde_json::Value =
        serde_json::from_str(&hub.cmd(&["base", "conflicts", "renkou", "--json"]).ok()).unwrap();
    assert_eq!(conflicts.as_array().unwrap().len(), 1, "{conflicts}");
    assert_eq!(conflicts[0]["key"], people[0].id_number.as_str());
    assert_eq!(
        (conflicts[0]["a"].as_str(), conflicts[0]["b"].as_str()),
        (Some("630000/gongan/hukou"), Some("630000/minzheng/hunyin"))
    );
    let show = hub.cmd(&["base", "show", "renkou"]).ok();
    assert!(show.contains("4 records") && show.contains("1 conflicts"), "{show}");

    // the provider's update reaches the base, as changeset 2
    rusqlite::Connection::open(&hukou)
        .unwrap()
        .execute(
            "UPDATE t SET name = ?1 WHERE id_number = ?2",
            [&format!("{}（另写）", people[0].name), &people[0].id_number],
        )
        .unwrap();
    synced(&gongan);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(&hub, &people[0].id_number).unwrap();
        if field(&r, "name")["changeset"] == 2 {
            break;
        }
        let log = std::fs::read_to_string(hub.dir.path().join("run.log")).unwrap_or_default();
        assert!(std::time::Instant::now() < deadline, "the update did not reach the base: {r}\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let conflicts = hub.cmd(&["base", "conflicts", "renkou"]).ok();
    assert!(conflicts.contains("agree"), "the spellings now agree: {conflicts}");

    // a deleted row leaves the base when no member holds the key any more
    rusqlite::Connection::open(&hunyin)
        .unwrap()
        .execute("DELETE FROM t WHERE id_number = ?1", [&only_minzheng.id_number])
        .unwrap();
    synced(&minzheng);
    wait_until(Duration::from_secs(20), "the record leaves the base", || get(&hub, &only_minzheng.id_number).is_none());

    // the same through the portal's JSON twin, for the centre's operator only
    let link = hub.cmd(&["login"]).ok();
    let path = link.trim().split_once("://").unwrap().1.split_once('/').unwrap().1.to_owned();
    let (_, head, _) = hub.https(&format!("GET /{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    let cookie =
        head.lines().find_map(|l| l.strip_prefix("set-cookie: ")).unwrap().split(';').next().unwrap().to_owned();
    let ask = |cookie: &str| {
        hub.https(&format!(
            "GET /api/v1/bases/renkou/{} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n",
            people[1].id_number
        ))
    };
    let (status, _, body) = ask(&cookie);
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("630000/minzheng/hunyin") && body.contains("未婚"), "{body}");
    assert_eq!(ask("gdx_session=none").0, 403, "not for visitors");

    // a revoked member's fields are marked stale, not silently kept
    hub.cmd(&["revoke", MINZHENG]).ok();
    let r = get(&hub, &people[1].id_number).unwrap();
    assert_eq!(field(&r, "marital")["stale"], true, "{r}");
    assert_eq!(field(&r, "name")["stale"], false);
}

#[test]
fn a_hub_killed_during_a_merge_loses_and_doubles_nothing() {
    let mut hub = Hub::init("630000");
    std::fs::write(hub.dir.path().join("bases.toml"), BASES).unwrap();
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut generator = Generator::within(7, DivisionCode::parse("630000").unwrap());
    let n = 20_000;
    let mut rows: Vec<Vec<String>> =
        (0..n).map(|_| generator.person()).map(|p| vec![p.id_number, p.name, p.birth]).collect();
    rows.sort();
    rows.dedup_by(|a, b| a[0] == b[0]);
    let gongan = Agent::new();
    gongan.enroll(&hub.token(GONGAN, "1h")).ok();
    let hukou = tmp.path().join("hukou.db");
    table(&hukou, "CREATE TABLE t (id_number TEXT PRIMARY KEY, name TEXT, birth TEXT)", &rows);
    gongan.add_config(&resource("hukou", &hukou));
    synced(&gongan);
    // killed (SIGKILL) again and again while the merge runs: whatever a pass committed stands,
    // and the next start goes on from there
    for i in 0..6 {
        std::thread::sleep(Duration::from_millis(150 + 90 * i));
        hub.stop();
        hub.start();
    }
    let count = || {
        let show: serde_json::Value =
            serde_json::from_str(&hub.cmd(&["base", "show", "renkou", "--json"]).ok()).unwrap();
        show["records"].as_i64().unwrap()
    };
    wait_until(Duration::from_secs(60), "every person in the base", || count() == rows.len() as i64);
    let base = rusqlite::Connection::open(hub.dir.path().join("bases/renkou.db")).unwrap();
    let (records, named): (i64, i64) =
        base.query_row("SELECT count(*), count(name) FROM base", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((records, named), (rows.len() as i64, rows.len() as i64));
    let sample = &rows[rows.len() / 2];
    let r = get(&hub, &sample[0]).unwrap();
    assert_eq!(field(&r, "name")["value"], sample[1].as_str());
}
