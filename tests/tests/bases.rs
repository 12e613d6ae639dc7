//! Base databases at the province: the population base merged from 公安
//! (the authority for names and birth dates) and 民政 (filling in marital
//! status, and names 公安 does not have), each field with its provenance,
//! the sources' disagreements listed, a provider's update reflected, a
//! revoked member's fields marked stale, and a hub killed in the middle of
//! a merge losing and doubling nothing; and the base shared like any
//! resource: catalogued by the province, requested from a prefecture,
//! granted by the operator, delivered and looked up with each field's
//! source, a provider's update following it to the consumer. Each runs
//! twice: the province's stores in SQLite files, then all on PostgreSQL
//! (its vaults, base databases, exchange and audit log; the prefecture
//! stays on SQLite).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use gdx_common::DivisionCode;
use gdx_common::generate::Generator;
use gdx_tests::servers::Postgres;
use gdx_tests::{Agent, Hub, wait_until};

const GONGAN: &str = "630000/gongan";
const CONSUMER: &str = "630102/weijian";
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

/// The base's catalogue entry, for sharing it: as a theme resource under
/// conditions (a base resource proper is shared unconditionally, and would
/// be granted at once without the operator's decision).
const CATALOG: &str = r#"
key_column = "id_number"

[base.catalog]
code = "201001/900001"
class = "主题信息资源"
classification = ["婚育"]
name = "婚育服务主题信息库"
provider_name = "青海省政务服务监督管理局"
provider_code = "11630000MB1234562X"
abstract = "全省人口的公民身份号码、姓名、出生日期和婚姻状况，合并自公安和民政"
format = "数据库"
format_type = "sqlite"
sharing_type = "有条件共享"
sharing_condition = "仅限人口信息核验使用"
sharing_method = "接口"
open_to_public = false
update_cycle = "实时"
published = "2026-12-01"
items = [
  { name = "公民身份号码", column = "id_number", data_type = "C", length = 18, sensitive = true, kind = "公民身份号码" },
  { name = "姓名", column = "name", data_type = "C", length = 50 },
  { name = "出生日期", column = "birth", data_type = "C", length = 10 },
  { name = "婚姻状况", column = "marital", data_type = "C", length = 10 },
]
"#;

/// The province hub, its stores in SQLite files or on PostgreSQL.
fn province_hub(pg: Option<&Postgres>) -> Hub {
    gdx_tests::servers::hub_on(pg, "630000")
}

/// The base of `hub` is in PostgreSQL, and no file of it beside (one set
/// aside by migrate aside).
fn held_in_postgres(pg: &Postgres, hub: &Hub) {
    let files: Vec<_> = std::fs::read_dir(hub.dir.path().join("bases"))
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "db")).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "no base file: {files:?}");
    let url = std::fs::read_to_string(hub.dir.path().join("db.url")).unwrap();
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let merged: i64 = pg
        .admin(database)
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema LIKE 'gdx_base_%' AND table_name = 'base'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(merged, 1, "the base's schema is in {database}");
}

gdx_tests::on_both_stores! {
    a_base_merges_an_authority_and_a_filler_with_provenance_and_conflicts_in:
        a_base_merges_an_authority_and_a_filler_with_provenance_and_conflicts,
        on_postgres_a_base_merges_an_authority_and_a_filler_with_provenance_and_conflicts;
    a_hub_killed_during_a_merge_loses_and_doubles_nothing_in:
        a_hub_killed_during_a_merge_loses_and_doubles_nothing,
        on_postgres_a_hub_killed_during_a_merge_loses_and_doubles_nothing;
    a_shared_base_is_requested_granted_delivered_and_looked_up_with_each_fields_source_in:
        a_shared_base_is_requested_granted_delivered_and_looked_up_with_each_fields_source,
        on_postgres_a_shared_base_is_requested_granted_delivered_and_looked_up_with_each_fields_source;
    a_spatial_base_checks_measures_and_answers_box_queries_under_a_grant_in:
        a_spatial_base_checks_measures_and_answers_box_queries_under_a_grant,
        on_postgres_a_spatial_base_checks_measures_and_answers_box_queries_under_a_grant;
}

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

/// 公安 (its register of `people`: id, name, birth) and 民政 (`hunyin` rows:
/// id, name, status) enrolled at `hub` with their tables in `tmp`; returns
/// each agent with its database.
fn members(
    hub: &Hub,
    tmp: &Path,
    people: &[gdx_common::generate::Person],
    hunyin: &[Vec<String>],
) -> ((Agent, std::path::PathBuf), (Agent, std::path::PathBuf)) {
    let gongan = Agent::new();
    gongan.enroll(&hub.token(GONGAN, "1h")).ok();
    let hukou = tmp.join("hukou.db");
    table(
        &hukou,
        "CREATE TABLE t (id_number TEXT PRIMARY KEY, name TEXT, birth TEXT)",
        &people.iter().map(|p| vec![p.id_number.clone(), p.name.clone(), p.birth.clone()]).collect::<Vec<_>>(),
    );
    gongan.add_config(&resource("hukou", &hukou));
    let minzheng = Agent::new();
    minzheng.enroll(&hub.token(MINZHENG, "1h")).ok();
    let db = tmp.join("hunyin.db");
    table(&db, "CREATE TABLE t (id_number TEXT PRIMARY KEY, name TEXT, status TEXT)", hunyin);
    minzheng.add_config(&resource("hunyin", &db));
    ((gongan, hukou), (minzheng, db))
}

fn a_base_merges_an_authority_and_a_filler_with_provenance_and_conflicts_in(pg: Option<&Postgres>) {
    let mut hub = province_hub(pg);
    std::fs::write(hub.dir.path().join("bases.toml"), BASES).unwrap();
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut generator = Generator::within(2026, DivisionCode::parse("630000").unwrap());
    let people: Vec<_> = (0..3).map(|_| generator.person()).collect();
    let only_minzheng = generator.person();
    let ((gongan, hukou), (minzheng, hunyin)) = members(
        &hub,
        tmp.path(),
        &people,
        &[
            // the same person, the name spelled another way
            vec![people[0].id_number.clone(), format!("{}（另写）", people[0].name), "已婚".into()],
            vec![people[1].id_number.clone(), people[1].name.clone(), "未婚".into()],
            vec![only_minzheng.id_number.clone(), only_minzheng.name.clone(), "离婚".into()],
        ],
    );
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
    assert_eq!(field(&r, "key__kind")["value"], "居民身份证", "the document the number belongs to is kept");
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
    if let Some(pg) = pg {
        held_in_postgres(pg, &hub);
    }
}

fn a_hub_killed_during_a_merge_loses_and_doubles_nothing_in(pg: Option<&Postgres>) {
    let mut hub = province_hub(pg);
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
    // every record once, every one named
    let show: serde_json::Value = serde_json::from_str(&hub.cmd(&["base", "show", "renkou", "--json"]).ok()).unwrap();
    assert_eq!(show["records"], rows.len() as i64);
    let named = show["coverage"].as_array().unwrap().iter().find(|c| c[0] == "name").unwrap()[1].as_f64().unwrap();
    assert_eq!(named, 1.0, "{show}");
    let sample = &rows[rows.len() / 2];
    let r = get(&hub, &sample[0]).unwrap();
    assert_eq!(field(&r, "name")["value"], sample[1].as_str());
    if let Some(pg) = pg {
        held_in_postgres(pg, &hub);
    }
}

/// The value and the `__source` note of `field` in the consumer's delivered copy of `key`.
fn delivered(consumer: &Agent, key_masked: &str, field: &str) -> Option<(String, serde_json::Value)> {
    let db = consumer.dir.path().join("received.db");
    let c = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.query_row(
        &format!("SELECT {field}, {field}__source FROM hub_renkou_630000 WHERE id_number = ?1"),
        [key_masked],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
    )
    .ok()
    .map(|(v, s)| (v, s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()))
}

fn a_shared_base_is_requested_granted_delivered_and_looked_up_with_each_fields_source_in(pg: Option<&Postgres>) {
    let mut province = province_hub(pg);
    // 民政's marriage records: that a person is in them is not told to consumers
    let bases = BASES.replacen("key = \"公民身份号码\"\n", &format!("key = \"公民身份号码\"\n{CATALOG}"), 1).replacen(
        "resource = \"hunyin\"\nkey = \"id_number\"\n",
        "resource = \"hunyin\"\nkey = \"id_number\"\ndisclose = false\n",
        1,
    );
    std::fs::write(province.dir.path().join("bases.toml"), bases).unwrap();
    province.start();
    let mut xining = Hub::join(&province.hub_token("630100/hub"));
    xining.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut generator = Generator::within(2026, DivisionCode::parse("630000").unwrap());
    let people: Vec<_> = (0..3).map(|_| generator.person()).collect();
    let ((gongan, hukou), (minzheng, _)) = members(
        &province,
        tmp.path(),
        &people,
        &[vec![people[0].id_number.clone(), people[0].name.clone(), "已婚".into()]],
    );
    synced(&gongan);
    synced(&minzheng);

    // the province catalogues the base as its own resource, and the prefecture receives the entry
    let entry = province.cmd(&["catalog", "show", "201001/900001"]).ok();
    assert!(entry.contains("婚育服务主题信息库") && entry.contains("630000/hub"), "{entry}");
    wait_until(Duration::from_secs(30), "the base's entry reaches 西宁", || {
        xining.cmd(&["catalog", "list"]).stdout.contains("201001/900001")
    });

    // a department under 西宁 asks for it; 有条件共享, so the province's operator decides
    let consumer = Agent::new();
    consumer.enroll(&xining.token(CONSUMER, "1h")).ok();
    let filed = consumer
        .cmd(&[
            "request",
            "--resource",
            "201001/900001",
            "--fields",
            "公民身份号码,姓名,婚姻状况",
            "--purpose",
            "出生医学证明核验",
            "--json",
        ])
        .ok();
    let id = serde_json::from_str::<serde_json::Value>(&filed).unwrap()["id"].as_str().unwrap().to_owned();
    wait_until(Duration::from_secs(30), "the request reaches the province", || {
        province.cmd(&["grants"]).stdout.contains(&id)
    });
    let stranger = consumer.cmd(&["approve", &id]);
    assert_ne!(stranger.code, 0, "only the provider decides: {}", stranger.stdout);
    let approved = province.cmd(&["base", "approve", &id]).ok();
    assert!(approved.contains("granted") || approved.contains("Granted"), "{approved}");

    // delivered with each field's source beside it; the ID number masked, as the entry says
    let masked = |id: &str| format!("{}********{}", &id[..6], &id[14..]);
    let key0 = masked(&people[0].id_number);
    wait_until(Duration::from_secs(30), "the base delivered", || {
        consumer.cmd(&["receive"]);
        delivered(&consumer, &key0, "marital").is_some()
    });
    let (marital, source) = delivered(&consumer, &key0, "marital").unwrap();
    assert_eq!(marital, "已婚");
    assert_eq!((source["from"].as_str(), source.get("changeset")), (Some("another department"), None), "{source}");
    let (name, source) = delivered(&consumer, &key0, "name").unwrap();
    assert_eq!((name.as_str(), source["from"].as_str()), (people[0].name.as_str(), Some("630000/gongan/hukou")));
    let db = consumer.dir.path().join("received.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    let cols: Vec<String> = c
        .prepare("SELECT name FROM pragma_table_info('hub_renkou_630000') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!cols.iter().any(|c| c.starts_with("birth")), "birth was not asked for, nor its source: {cols:?}");
    drop(c);

    // a lookup from the consumer's hub shows each field with where it came from
    let pseudonym: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT gdx_key FROM hub_renkou_630000 WHERE id_number = ?1", [&key0], |r| r.get(0))
        .unwrap();
    let found = consumer.cmd(&["lookup", "--resource", "201001/900001", &pseudonym]).ok();
    assert!(found.contains("marital: 已婚   (from another department, 20"), "{found}");
    assert!(found.contains("(from 630000/gongan/hukou, changeset 1,"), "{found}");

    // the provider's update follows: into the base, then to the consumer, as 公安's changeset 2
    rusqlite::Connection::open(&hukou)
        .unwrap()
        .execute("UPDATE t SET name = '改名' WHERE id_number = ?1", [&people[0].id_number])
        .unwrap();
    synced(&gongan);
    wait_until(Duration::from_secs(30), "the update delivered", || {
        consumer.cmd(&["receive"]);
        delivered(&consumer, &key0, "name").is_some_and(|(v, s)| v == "改名" && s["changeset"] == 2)
    });

    // 民政 revoked: the fields it gave go out marked stale
    province.cmd(&["revoke", MINZHENG]).ok();
    wait_until(Duration::from_secs(30), "the staleness delivered", || {
        consumer.cmd(&["receive"]);
        delivered(&consumer, &key0, "marital").is_some_and(|(_, s)| s["stale"] == true)
    });
    let found = consumer.cmd(&["lookup", "--resource", "201001/900001", &pseudonym]).ok();
    assert!(found.contains("STALE"), "{found}");
    assert_eq!(delivered(&consumer, &key0, "name").unwrap().1.get("stale"), None, "公安's fields are current");

    // every merge the province published is in its audit log
    let merged = province.cmd(&["audit", "list", "--kind", "merged", "--format", "jsonl"]).ok();
    assert!(merged.lines().count() >= 3 && merged.contains("630000/gongan/hukou"), "{merged}");
    if let Some(pg) = pg {
        held_in_postgres(pg, &province);
    }
}

const SPATIAL: &str = r#"
[[base]]
name = "kongjian"
title = "不动产宗地空间库"
geometry = "boundary"
crs = "EPSG:4490"
key_column = "parcel_code"

[base.catalog]
code = "103001/900001"
class = "基础信息资源"
classification = ["自然资源和空间地理", "不动产"]
name = "不动产宗地空间库"
provider_name = "青海省政务服务监督管理局"
provider_code = "11630000MB1234562X"
abstract = "全省不动产宗地的界址（CGCS2000）、坐落、用途，计算面积与中心点"
format = "数据库"
format_type = "sqlite"
sharing_type = "无条件共享"
sharing_method = "接口"
open_to_public = false
update_cycle = "每月"
published = "2026-12-01"
items = [
  { name = "宗地代码", column = "parcel_code", data_type = "C", length = 19 },
  { name = "宗地界址", column = "boundary", data_type = "M", length = 4000, kind = "空间几何" },
  { name = "坐落", column = "location", data_type = "C", length = 100 },
]

[[base.member]]
node = "630000/zrzy"
resource = "zongdi"
key = "parcel_code"

[[base.field]]
name = "boundary"
from = ["630000/zrzy/zongdi.boundary"]

[[base.field]]
name = "location"
from = ["630000/zrzy/zongdi.location"]
"#;

/// A rectangle of `w` × `h` degrees from (`lon`, `lat`), as WKT.
fn rect(lon: f64, lat: f64, w: f64, h: f64) -> String {
    let (e, n) = (lon + w, lat + h);
    format!("POLYGON(({lon} {lat},{e} {lat},{e} {n},{lon} {n},{lon} {lat}))")
}

fn a_spatial_base_checks_measures_and_answers_box_queries_under_a_grant_in(pg: Option<&Postgres>) {
    let mut province = province_hub(pg);
    std::fs::write(province.dir.path().join("bases.toml"), SPATIAL).unwrap();
    province.start();
    let tmp = tempfile::tempdir().unwrap();
    let zongdi = tmp.path().join("zongdi.db");
    let parcels = [
        ("630102001001GB00001", rect(101.77, 36.61, 0.001, 0.001), "城西区五四大街"),
        ("630102001001GB00002", r#"{"type":"Polygon","coordinates":[[[101.80,36.63],[101.802,36.63],[101.802,36.632],[101.80,36.632],[101.80,36.63]]]}"#.to_owned(), "城西区海湖路"),
        ("632801001001GB00001", rect(94.90, 36.40, 0.002, 0.001), "格尔木市昆仑路"),
        // a ring that crosses itself, and projected metres: not merged, each with its reason
        ("630102001001GB00003", "POLYGON((101.7 36.6,101.8 36.7,101.8 36.6,101.7 36.7,101.7 36.6))".to_owned(), "城西区"),
        ("630102001001GB00004", "POINT(431234.5 4051234.2)".to_owned(), "城西区"),
    ];
    table(
        &zongdi,
        "CREATE TABLE t (parcel_code TEXT PRIMARY KEY, boundary TEXT, location TEXT)",
        &parcels.iter().map(|(k, g, l)| vec![(*k).to_owned(), g.clone(), (*l).to_owned()]).collect::<Vec<_>>(),
    );
    let zrzy = Agent::new();
    zrzy.enroll(&province.token("630000/zrzy", "1h")).ok();
    zrzy.add_config(&format!(
        "[[resource]]\ncode = \"zongdi\"\nkey = [\"parcel_code\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"t\" }}\n",
        zongdi.display()
    ));
    synced(&zrzy);

    // measured: a 0.001° square at 36.61° N is 111.0 m × 89.4 m
    wait_until(Duration::from_secs(20), "the parcels merged", || {
        province.cmd(&["base", "show", "kongjian"]).stdout.contains("5 records")
    });
    // the two bad geometries are not merged (their records keep the rest), each with its reason
    let show = province.cmd(&["base", "show", "kongjian"]).ok();
    assert!(show.contains("boundary  60.0%") && show.contains("not merged, 2 value(s)"), "{show}");
    assert!(show.contains("self-intersection") && show.contains("looks projected"), "{show}");
    let got = province.cmd(&["base", "get", "kongjian", "630102001001GB00001", "--json"]).ok();
    let got: serde_json::Value = serde_json::from_str(&got).unwrap();
    let m = &field(&got, "boundary")["measures"];
    let area = m["area_m2"].as_f64().unwrap();
    assert!((area - 9_925.0).abs() < 25.0, "{area}");
    assert!((m["centroid"][0].as_f64().unwrap() - 101.7705).abs() < 1e-9, "{m}");
    let near = province.cmd(&["base", "within", "kongjian", "101.7,36.5,101.9,36.7", "--json"]).ok();
    let near: serde_json::Value = serde_json::from_str(&near).unwrap();
    let keys: Vec<&str> = near["records"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["630102001001GB00001", "630102001001GB00002"]);
    let bad_box = province.cmd(&["base", "within", "kongjian", "101.9,36.5,101.7,36.7"]);
    assert_eq!(bad_box.code, 2, "{}", bad_box.stderr);
    assert!(bad_box.stderr.contains("is not a box: write west,south,east,north"), "{}", bad_box.stderr);

    // a department with a grant asks its hub for the parcels in a box, each with area and centroid
    let consumer = Agent::new();
    consumer.enroll(&province.token("630000/fgw", "1h")).ok();
    let filed = consumer
        .cmd(&[
            "request",
            "--resource",
            "103001/900001",
            "--fields",
            "宗地代码,宗地界址,坐落",
            "--purpose",
            "项目选址",
            "--json",
        ])
        .ok();
    assert!(filed.contains("Granted"), "a base resource is shared unconditionally: {filed}");
    let ask = |bbox: &str| consumer.cmd(&["within", "--resource", "103001/900001", bbox, "--json"]);
    wait_until(Duration::from_secs(30), "the parcels delivered to the hub's copy", || {
        ask("101.7,36.5,101.9,36.7").code == 0
    });
    let found: serde_json::Value = serde_json::from_str(&ask("101.7,36.5,101.9,36.7").ok()).unwrap();
    let records = found["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{found}");
    assert_eq!(records[0]["parcel_code"], "630102001001GB00001");
    assert!((records[0]["boundary__area_m2"].as_f64().unwrap() - area).abs() < 1e-6);
    assert_eq!(records[0]["boundary__source"].as_str().map(|s| s.contains("630000/zrzy/zongdi")), Some(true));
    let golmud: serde_json::Value = serde_json::from_str(&ask("94,36,95,37").ok()).unwrap();
    assert_eq!(golmud["records"][0]["location"], "格尔木市昆仑路");
    let table = consumer.cmd(&["within", "--resource", "103001/900001", "94,36,95,37"]).ok();
    assert!(table.contains("location: 格尔木市昆仑路") && table.contains("area_m2: "), "{table}");
    let nothing = consumer.cmd(&["within", "--resource", "103001/900001", "80,30,81,31"]).ok();
    assert!(nothing.contains("0 record(s)"), "{nothing}");
    // a department without a grant gets nothing
    let other = Agent::new();
    other.enroll(&province.token("630000/jiaotong", "1h")).ok();
    let refused = other.cmd(&["within", "--resource", "103001/900001", "101.7,36.5,101.9,36.7"]);
    assert!(refused.code != 0 && refused.stderr.contains("holds no grant for 103001/900001"), "{}", refused.stderr);
    // the log takes the stores' events twice a second
    wait_until(Duration::from_secs(10), "the box query in the audit log", || {
        province
            .cmd(&["audit", "list", "--kind", "lookup", "--format", "jsonl"])
            .ok()
            .contains("\"bbox\":\"94,36,95,37\"")
    });
    if let Some(pg) = pg {
        held_in_postgres(pg, &province);
    }
}

/// A province with a merged base moves to PostgreSQL: the base's file goes
/// into its schema (records, provenance, how far each member's log was
/// read), the members' vaults with their logs; after the move a member's
/// change is merged, which it would not be if the log's numbers had started
/// again below what the base had read.
#[test]
fn a_base_moves_to_postgres_with_its_provenance_and_goes_on_merging() {
    let Some(pg) = Postgres::start() else { return };
    let mut hub = province_hub(None);
    std::fs::write(hub.dir.path().join("bases.toml"), BASES).unwrap();
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut generator = Generator::within(11, DivisionCode::parse("630000").unwrap());
    let people: Vec<_> = (0..50).map(|_| generator.person()).collect();
    let married = vec![people[0].id_number.clone(), people[0].name.clone(), "已婚".into()];
    let ((gongan, hukou), (minzheng, _)) = members(&hub, tmp.path(), &people, &[married]);
    synced(&gongan);
    synced(&minzheng);
    let key = people[0].id_number.as_str();
    let merged = || get(&hub, key).is_some_and(|r| field(&r, "marital")["value"] == "已婚");
    wait_until(Duration::from_secs(30), "the base merged", merged);
    let before = get(&hub, key).unwrap();
    hub.terminate();

    pg.hold_vaults_of(&hub);
    let out = hub.cmd(&["migrate", "--to", "postgres"]).ok();
    assert!(out.contains("bases/renkou.db"), "{out}");
    assert!(hub.dir.path().join("bases/renkou.db.migrated").exists());
    hub.start();
    assert_eq!(get(&hub, key).unwrap(), before, "the same record, field by field, with its provenance");
    // a change after the move is merged from the vault's log
    let c = rusqlite::Connection::open(&hukou).unwrap();
    c.execute("UPDATE t SET name = '改名后' WHERE id_number = ?1", [key]).unwrap();
    synced(&gongan);
    let renamed = || get(&hub, key).is_some_and(|r| field(&r, "name")["value"] == "改名后");
    wait_until(Duration::from_secs(30), "the change after the move merged", renamed);
    assert_eq!(field(&get(&hub, key).unwrap(), "name")["changeset"], 2, "公安's second changeset");
    let show: serde_json::Value = serde_json::from_str(&hub.cmd(&["base", "show", "renkou", "--json"]).ok()).unwrap();
    assert_eq!(show["records"], people.len(), "{show}");
    held_in_postgres(&pg, &hub);
    hub.cmd(&["audit", "verify"]).ok();
}

/// at_rest_key turned on for a province whose base is plain: the base is
/// encrypted in place at the next start (the R-tree beside it too); its
/// file then shows no name and opens under the key only, while the base
/// goes on merging, answering and logging.
#[test]
fn a_base_is_encrypted_at_rest_and_goes_on_merging() {
    gdx_tests::files_only("at_rest_key encrypts SQLite files");
    let mut hub = province_hub(None);
    std::fs::write(hub.dir.path().join("bases.toml"), BASES).unwrap();
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let mut generator = Generator::within(7, DivisionCode::parse("630000").unwrap());
    let people: Vec<_> = (0..20).map(|_| generator.person()).collect();
    let ((gongan, hukou), (minzheng, _)) = members(&hub, tmp.path(), &people, &[]);
    synced(&gongan);
    synced(&minzheng);
    let key = people[0].id_number.as_str();
    wait_until(Duration::from_secs(30), "the base merged", || get(&hub, key).is_some());
    let file = hub.dir.path().join("bases/renkou.db");
    let plain = |p: &Path| std::fs::read(p).unwrap().starts_with(b"SQLite format 3\0");
    assert!(plain(&file));

    hub.stop();
    let key_file = hub.encrypt_at_rest();
    hub.start();
    let c = rusqlite::Connection::open(&hukou).unwrap();
    c.execute("UPDATE t SET name = '加密后' WHERE id_number = ?1", [key]).unwrap();
    synced(&gongan);
    let renamed = || get(&hub, key).is_some_and(|r| field(&r, "name")["value"] == "加密后");
    wait_until(Duration::from_secs(30), "the change merged into the encrypted base", renamed);
    let bytes = std::fs::read(&file).unwrap();
    assert!(!plain(&file), "the base is encrypted");
    assert!(!bytes.windows(people[1].name.len()).any(|w| w == people[1].name.as_bytes()), "no name shows");
    let bare = rusqlite::Connection::open(&file).unwrap();
    assert!(bare.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).is_err());
    let keyed = rusqlite::Connection::open(&file).unwrap();
    let hex = std::fs::read_to_string(&key_file).unwrap();
    keyed.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex.trim())).unwrap();
    assert_eq!(keyed.query_row("SELECT count(*) FROM base", [], |r| r.get::<_, i64>(0)).unwrap(), 20);
    let show = hub.cmd(&["base", "show", "renkou"]).ok();
    assert!(show.contains("20 records"), "{show}");
    // the audit log's collector reads the encrypted base's outbox like the others
    wait_until(Duration::from_secs(30), "a signed checkpoint", || hub.cmd(&["audit", "verify"]).code == 0);
    let log = std::fs::read_to_string(hub.dir.path().join("run.log")).unwrap();
    assert!(!log.contains("cannot read this store"), "{log}");
    // a backup keeps it encrypted, and a hub restored from it reads it under the key
    let backup = tmp.path().join("backup");
    hub.cmd(&["backup", "--out", backup.to_str().unwrap()]).ok();
    assert!(!plain(&backup.join("bases/renkou.db")), "the backup's copy is encrypted");
    assert!(key_file.starts_with(hub.dir.path()) && !backup.join("at-rest.key").exists(), "the key is kept apart");
    let restored = tmp.path().join("restored").display().to_string();
    gdx_tests::run("gdx-hub", &["--data", &restored, "restore", backup.to_str().unwrap()]).ok();
    let got = gdx_tests::run("gdx-hub", &["--data", &restored, "base", "get", "renkou", key]).ok();
    assert!(got.contains("加密后"), "{got}");
}
