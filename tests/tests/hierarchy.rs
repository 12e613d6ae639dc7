//! End-to-end tests of the hub hierarchy: a prefecture hub joins the
//! province, county agents attach to the prefecture, and what the province
//! must hold (catalogue entries, base-resource changesets) flows up with
//! the origin's signature, through cuts and kills, exactly once.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use gdx_common::data::{Value, decode_changeset, encode_changeset};
use gdx_common::wire::{Message, decode_frame, encode_frame};
use gdx_common::{NodeId, Role};
use gdx_tests::{Agent, Hub, rawclient, rows_now, table_checksum, vault, wait_until};

const COUNTY: &str = "632522/gongan";
const COLS: &[&str] = &["id_number", "name"];

/// A started province hub, a started prefecture hub (632500) joined to it,
/// and an agent of 同德县 enrolled at the prefecture.
fn tree() -> (Hub, Hub, Agent, tempfile::TempDir) {
    let mut province = Hub::init("630000");
    province.start();
    let mut prefecture = Hub::join(&province.hub_token("632500/hub"));
    prefecture.start();
    let agent = Agent::new();
    agent.enroll(&prefecture.token(COUNTY, "1h")).ok();
    (province, prefecture, agent, tempfile::tempdir().unwrap())
}

fn people(db: &Path, rows: &[(&str, &str)]) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("CREATE TABLE IF NOT EXISTS people (id_number TEXT PRIMARY KEY, name TEXT)").unwrap();
    for (id, name) in rows {
        c.execute("INSERT OR REPLACE INTO people VALUES (?1, ?2)", [id, name]).unwrap();
    }
}

/// Declares `code` from `db`, catalogued as `class` (基础信息资源 or 部门信息资源).
fn declare(agent: &Agent, code: &str, entry: &str, class: &str, db: &Path) {
    let classification = if class == "基础信息资源" { "人口" } else { "社会保障" };
    agent.add_config(&format!(
        r#"[[resource]]
code = "{code}"
key = ["id_number"]
source = {{ kind = "sqlite", path = "{}", table = "people" }}

[resource.catalog]
code = "{entry}"
class = "{class}"
classification = ["{classification}"]
name = "同德县{code}"
provider_name = "同德县公安局"
provider_code = "11632522015603015M"
abstract = "同德县的公民身份号码和姓名"
format = "数据库"
format_type = "sqlite"
sharing_type = "无条件共享"
sharing_method = "接口"
open_to_public = false
update_cycle = "每日"
published = "2026-11-01"
items = [ {{ name = "公民身份号码", column = "id_number", data_type = "C", length = 18 }}, {{ name = "姓名", column = "name", data_type = "C", length = 50 }} ]
"#,
        db.display()
    ));
}

fn synced(agent: &Agent) {
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{out} {err}");
}

fn catalog_codes(hub: &Hub) -> Vec<String> {
    let list: Vec<serde_json::Value> = serde_json::from_str(&hub.cmd(&["catalog", "list", "--json"]).ok()).unwrap();
    list.iter().map(|e| e["code"].as_str().unwrap().to_owned()).collect()
}

/// The last changeset number a vault applied to `hukou`.
fn last_seq(vault: &Path) -> i64 {
    rusqlite::Connection::open(vault)
        .unwrap()
        .query_row("SELECT last_seq FROM _gdx_resources WHERE resource = 'hukou'", [], |r| r.get(0))
        .unwrap()
}

fn has_table(db: &Path, table: &str) -> bool {
    db.exists()
        && rusqlite::Connection::open(db)
            .unwrap()
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = ?1", [table], |r| r.get::<_, i64>(0))
            .unwrap()
            > 0
}

#[test]
fn a_county_change_reaches_the_province_through_its_prefecture() {
    let (province, prefecture, agent, tmp) = tree();
    let db = tmp.path().join("src.db");
    people(&db, &[("11010519491231002X", "卓玛"), ("440524188001010014", "才让")]);
    let db2 = tmp.path().join("other.db");
    people(&db2, &[("11010219840406970X", "马秀兰")]);
    declare(&agent, "hukou", "101001/000022", "基础信息资源", &db);
    declare(&agent, "jiuzhu", "301001/000022", "部门信息资源", &db2);
    synced(&agent);

    let at_province = vault(&province, COUNTY);
    wait_until(Duration::from_secs(30), "the base resource reaches the province", || {
        rows_now(&at_province, "hukou") == 2
    });
    wait_until(Duration::from_secs(30), "both entries reach the province catalogue", || {
        catalog_codes(&province) == ["101001/000022", "301001/000022"]
    });
    assert!(!has_table(&at_province, "jiuzhu"), "a department resource nobody upstream needs stays in the prefecture");
    assert_eq!(rows_now(&vault(&prefecture, COUNTY), "jiuzhu"), 1);

    // a later change follows
    people(&db, &[("440524188001010014", "才让加"), ("11010219840406970X", "马秀兰")]);
    synced(&agent);
    wait_until(Duration::from_secs(30), "the change reaches the province", || {
        table_checksum(&db, "people", COLS) == table_checksum(&at_province, "hukou", COLS)
    });
    let nodes = province.nodes();
    let child = nodes.iter().find(|n| n["node"] == "632500/hub").unwrap();
    assert_eq!((child["role"].as_str(), child["state"].as_str()), (Some("hub"), Some("connected")));
    // through its child hub the province sees the whole tree, and the backlog
    wait_until(Duration::from_secs(30), "the prefecture reports its subtree", || {
        let nodes = province.nodes();
        let county = nodes.iter().find(|n| n["node"] == COUNTY);
        let child = nodes.iter().find(|n| n["node"] == "632500/hub").unwrap();
        county.is_some_and(|c| c["via"] == "632500/hub" && c["state"] == "offline") && child["backlog"] == 0
    });
    let table = province.cmd(&["nodes"]).ok();
    assert!(table.lines().any(|l| l.starts_with(COUNTY) && l.contains("632500/hub")), "{table}");

    // the province knows when the department data it does not hold last changed
    wait_until(Duration::from_secs(30), "the prefecture reports its data changes", || {
        let shown: serde_json::Value =
            serde_json::from_str(&province.cmd(&["catalog", "show", "301001/000022", "--json"]).ok()).unwrap();
        shown["freshness"]["last_change"].is_i64()
    });

    // a department of the prefecture's own division is relayed too
    let prefectural = Agent::new();
    prefectural.enroll(&prefecture.token("632500/renshe", "1h")).ok();
    let db4 = tmp.path().join("renshe.db");
    people(&db4, &[("11010519491231002X", "卓玛")]);
    declare(&prefectural, "canbao", "101001/000023", "基础信息资源", &db4);
    synced(&prefectural);
    wait_until(Duration::from_secs(30), "a prefecture department's base data reaches the province", || {
        rows_now(&vault(&province, "632500/renshe"), "canbao") == 1
    });

    // and the province's own entries flow down to the prefecture
    let provincial = Agent::new();
    provincial.enroll(&province.token("630000/minzheng", "1h")).ok();
    let db3 = tmp.path().join("prov.db");
    people(&db3, &[("11010519491231002X", "卓玛")]);
    declare(&provincial, "dibao", "301001/000001", "部门信息资源", &db3);
    synced(&provincial);
    wait_until(Duration::from_secs(30), "the province's catalogue reaches the prefecture", || {
        catalog_codes(&prefecture) == ["101001/000022", "101001/000023", "301001/000001", "301001/000022"]
    });
    let shown: serde_json::Value =
        serde_json::from_str(&prefecture.cmd(&["catalog", "show", "301001/000001", "--json"]).ok()).unwrap();
    assert_eq!(shown["provider"], "630000/minzheng");
    assert!(!has_table(&vault(&prefecture, "630000/minzheng"), "dibao"), "entries flow down, data does not");
}

#[test]
fn a_changeset_altered_at_the_prefecture_is_rejected_at_the_province() {
    let (mut province, prefecture, agent, tmp) = tree();
    province.terminate();
    let db = tmp.path().join("src.db");
    people(&db, &[("11010519491231002X", "卓玛"), ("440524188001010014", "才让")]);
    declare(&agent, "hukou", "101001/000022", "基础信息资源", &db);
    synced(&agent);

    // the prefecture's operator edits the stored changeset before it is forwarded
    let at_prefecture = vault(&prefecture, COUNTY);
    let c = rusqlite::Connection::open(&at_prefecture).unwrap();
    let frame: Vec<u8> = c.query_row("SELECT frame FROM _gdx_changesets WHERE seq = 1", [], |r| r.get(0)).unwrap();
    let Some((Message::Upload(mut env), _)) = decode_frame(&frame).unwrap() else { panic!("not an upload") };
    let mut cs = decode_changeset(&env.body).unwrap();
    let gdx_common::data::Change::Upsert(row) = &mut cs.changes[0] else { panic!() };
    row[1] = Value::Text("篡改".into());
    env.body = encode_changeset(&cs).unwrap();
    let forged = encode_frame(&Message::Upload(env)).unwrap();
    c.execute("UPDATE _gdx_changesets SET frame = ?1 WHERE seq = 1", [forged]).unwrap();

    province.start();
    wait_until(Duration::from_secs(30), "the province rejects the altered changeset", || {
        province.proc.as_ref().is_some_and(|p| p.output().contains("altered after 632522/gongan signed it"))
    });
    assert_eq!(rows_now(&vault(&province, COUNTY), "hukou"), 0, "nothing of it was applied");
    wait_until(Duration::from_secs(10), "the prefecture holds forwarding of that resource", || {
        rusqlite::Connection::open(&at_prefecture)
            .unwrap()
            .query_row("SELECT forward_error FROM _gdx_resources WHERE resource = 'hukou'", [], |r| {
                r.get::<_, Option<String>>(0)
            })
            .unwrap()
            .is_some_and(|e| e.contains("the parent rejected changeset 1"))
    });
}

#[test]
fn the_province_converges_after_a_cut_with_nothing_lost_or_doubled() {
    let (mut province, mut prefecture, agent, tmp) = tree();
    let db = tmp.path().join("src.db");
    people(&db, &[("11010519491231002X", "卓玛")]);
    declare(&agent, "hukou", "101001/000022", "基础信息资源", &db);
    synced(&agent);
    let at_province = vault(&province, COUNTY);
    wait_until(Duration::from_secs(30), "the first sync reaches the province", || rows_now(&at_province, "hukou") == 1);

    // the link to the province is cut; the county keeps syncing
    province.terminate();
    wait_until(Duration::from_secs(30), "the prefecture shows the link down", || {
        prefecture.cmd(&["nodes"]).ok().contains("parent hub 630000/hub at")
            && prefecture.cmd(&["nodes"]).ok().contains(": disconnected since")
    });
    for i in 0..3 {
        let rows: Vec<(String, String)> =
            (0..200).map(|j| (format!("6325221990{:02}{:04}", i + 1, j), format!("牧民{i}-{j}"))).collect();
        let refs: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        people(&db, &refs);
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute("DELETE FROM people WHERE id_number LIKE '%0007'", [])
            .unwrap();
        synced(&agent);
    }
    // back, with the prefecture killed once while it forwards
    province.start();
    std::thread::sleep(Duration::from_millis(300));
    prefecture.stop();
    prefecture.start();
    wait_until(Duration::from_secs(60), "the province converges", || {
        table_checksum(&db, "people", COLS) == table_checksum(&at_province, "hukou", COLS)
    });
    assert!(prefecture.cmd(&["nodes"]).ok().contains(": connected since"));
    assert_eq!(last_seq(&at_province), last_seq(&vault(&prefecture, COUNTY)), "the same changesets, each once");
}

#[test]
fn a_revoked_county_agent_can_no_longer_connect_to_its_prefecture() {
    let (_province, prefecture, agent, _tmp) = tree();
    let before = agent.cmd(&["doctor", "--timeout", "5s"]);
    assert!(before.stdout.contains("ok    hub"), "{}", before.stdout);
    prefecture.cmd(&["revoke", COUNTY]).ok();
    // the running hub re-reads revocations every second
    wait_until(Duration::from_secs(10), "the prefecture refuses the revoked agent", || {
        let out = agent.cmd(&["doctor", "--timeout", "5s"]);
        out.code == 1 && out.stdout.contains("has been revoked")
    });
}

#[test]
fn a_revocation_at_the_province_reaches_the_prefecture() {
    let (province, prefecture, agent, tmp) = tree();
    agent.cmd(&["doctor", "--timeout", "5s"]).ok();
    wait_until(Duration::from_secs(30), "the province learns of the county agent", || {
        province.nodes().iter().any(|n| n["node"] == COUNTY)
    });
    let out = province.cmd(&["revoke", COUNTY]).ok();
    assert!(out.contains("which 632500/hub serves"), "{out}");
    wait_until(Duration::from_secs(30), "the prefecture refuses the agent revoked above it", || {
        let out = agent.cmd(&["doctor", "--timeout", "5s"]);
        out.code == 1 && out.stdout.contains("has been revoked")
    });
    let e = province.cmd(&["revoke", "632523/nobody"]).fails();
    assert!(e.contains("no node 632523/nobody is enrolled at this hub or reported by its child hubs"), "{e}");

    // enrolled again below the prefecture with a new token: the new certificate is revoked neither
    // there nor at the province, which takes its 基础信息资源 again and shows the node enrolled
    let again = Agent::new();
    again.enroll(&prefecture.token(COUNTY, "1h")).ok();
    let db = tmp.path().join("src.db");
    people(&db, &[("11010519491231002X", "卓玛")]);
    declare(&again, "hukou", "101001/000022", "基础信息资源", &db);
    synced(&again);
    wait_until(Duration::from_secs(60), "the province takes the new enrolment's changeset", || {
        rows_now(&vault(&province, COUNTY), "hukou") == 1
    });
    wait_until(Duration::from_secs(30), "the province shows the node enrolled again", || {
        province.nodes().iter().any(|n| n["node"] == COUNTY && n["revoked_at"].is_null())
    });
    // and once the prefecture has reported the new certificate, goes on taking its changesets
    people(&db, &[("440524188001010014", "才让")]);
    synced(&again);
    wait_until(Duration::from_secs(60), "the province takes the next changeset", || {
        rows_now(&vault(&province, COUNTY), "hukou") == 2
    });
    // the old certificate stays refused
    let out = agent.cmd(&["doctor", "--timeout", "5s"]);
    assert!(out.code == 1 && out.stdout.contains("has been revoked"), "{}", out.stdout);
}

#[test]
fn a_prefecture_hub_cannot_enrol_or_vouch_for_a_node_outside_its_division() {
    let (province, prefecture, agent, _tmp) = tree();
    let e = prefecture.cmd(&["token", "--node", "630102/gongan"]).fails();
    assert!(e.contains("outside this hub's division 632500"), "{e}");
    let e = prefecture.cmd(&["token", "--node", "632500/hub", "--role", "hub"]).fails();
    assert!(e.contains("outside this hub's division"), "{e}");
    let e = province.cmd(&["token", "--node", "632523/gongan"]).fails();
    assert!(e.contains("belongs under the prefecture hub 632500/hub"), "{e}");

    // a certificate the prefecture's CA signs for a 西宁 node is refused at the province
    let read = |f: &str| std::fs::read_to_string(prefecture.dir.path().join(f)).unwrap();
    let ca = gdx_certs::Ca::from_pem(&read("ca.crt"), &read("ca.key")).unwrap();
    let key = gdx_certs::pki::new_key().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let node = NodeId::parse("630102/evil").unwrap();
    let cert = ca.issue_for_key(&key, &node, Role::Agent, now - 60, now + 3600).unwrap();
    let forged = tempfile::tempdir().unwrap();
    let pem = gdx_certs::pki::der_to_pem(&cert, "CERTIFICATE") + &read("ca.crt");
    std::fs::write(forged.path().join("agent.crt"), pem).unwrap();
    std::fs::write(forged.path().join("agent.key"), key.serialize_pem()).unwrap();
    let root = std::fs::read_to_string(province.dir.path().join("ca.crt")).unwrap();
    // a county agent enrolled at its prefecture may not bypass it
    let county = agent.dir.path();
    match rawclient::exchange(&province.addr, &root, Some(county), rawclient::hello_frame(COUNTY, 1)) {
        rawclient::Outcome::Closed(why) => assert!(why.contains("belongs under the hub of 632500"), "{why}"),
        other => panic!("the province accepted it: {other:?} {:?}", province.nodes()),
    }
    match rawclient::exchange(&province.addr, &root, Some(forged.path()), rawclient::hello_frame("630102/evil", 1)) {
        rawclient::Outcome::Closed(why) => assert!(why.contains("may issue only for its own division"), "{why}"),
        other => panic!("the province accepted it: {other:?}"),
    }
    // the prefecture serves only agents it enrolled: a province-issued certificate is refused there
    let province_made = province
        .ca()
        .issue_for_key(&key, &NodeId::parse("632522/other").unwrap(), Role::Agent, now - 60, now + 3600)
        .unwrap();
    std::fs::write(forged.path().join("agent.crt"), gdx_certs::pki::der_to_pem(&province_made, "CERTIFICATE")).unwrap();
    let pref_root = std::fs::read_to_string(prefecture.dir.path().join("root.crt")).unwrap();
    match rawclient::exchange(
        &prefecture.addr,
        &pref_root,
        Some(forged.path()),
        rawclient::hello_frame("632522/other", 1),
    ) {
        rawclient::Outcome::Closed(why) => assert!(why.contains("was not enrolled at this hub"), "{why}"),
        other => panic!("the prefecture accepted an agent it did not enrol: {other:?}"),
    }
    // nor can it mint the certificate of its own hub (a stolen ca.key is not a hub identity)
    let minted =
        ca.issue_for_key(&key, &NodeId::parse("632500/hub").unwrap(), Role::Hub, now - 60, now + 3600).unwrap();
    let pem = gdx_certs::pki::der_to_pem(&minted, "CERTIFICATE") + &read("ca.crt");
    std::fs::write(forged.path().join("agent.crt"), pem).unwrap();
    match rawclient::exchange(&province.addr, &root, Some(forged.path()), rawclient::hello_frame("632500/hub", 1)) {
        rawclient::Outcome::Closed(why) => assert!(why.contains("may issue only for its own division"), "{why}"),
        other => panic!("the province accepted a hub certificate minted by the prefecture's CA: {other:?}"),
    }
}

/// SIGKILL the province or the prefecture right after each of several
/// syncs, while the prefecture forwards; the province must end equal to the
/// source, each changeset applied once.
#[test]
fn kills_while_forwarding_lose_and_double_nothing() {
    let (mut province, mut prefecture, agent, tmp) = tree();
    let db = tmp.path().join("src.db");
    people(&db, &[("11010519491231002X", "卓玛")]);
    declare(&agent, "hukou", "101001/000022", "基础信息资源", &db);
    synced(&agent);
    for round in 0..6u32 {
        let rows: Vec<(String, String)> =
            (0..300).map(|j| (format!("632522198{round}01{j:04}"), format!("牧民{round}-{j}"))).collect();
        let refs: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        people(&db, &refs);
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute("UPDATE people SET name = name || '改' WHERE id_number LIKE '%3'", []).unwrap();
        c.execute("DELETE FROM people WHERE id_number LIKE '%7'", []).unwrap();
        synced(&agent);
        std::thread::sleep(Duration::from_millis(u64::from(round) * 150));
        if round % 2 == 0 {
            province.stop();
            province.start();
        } else {
            prefecture.stop();
            prefecture.start();
        }
    }
    let at_province = vault(&province, COUNTY);
    wait_until(Duration::from_secs(90), "the province converges after the kills", || {
        table_checksum(&db, "people", COLS) == table_checksum(&at_province, "hukou", COLS)
    });
    assert_eq!(last_seq(&at_province), last_seq(&vault(&prefecture, COUNTY)));
}

/// Every party pins the hub it talks to: a token whose address now points
/// at another hub (whose chain holds the same root) fails before the secret
/// is sent, and so does an agent pointed elsewhere; a county has no hub;
/// and revoking a child hub revokes its CA, so what it issued is refused.
#[test]
fn nodes_pin_their_hub_and_a_revoked_child_takes_its_ca_along() {
    let (province, prefecture, agent, _tmp) = tree();
    let mut token = gdx_common::token::EnrolmentToken::decode(&province.token("630000/weijian", "1h")).unwrap();
    token.hub_addr = prefecture.addr.clone();
    let e = Agent::new().enroll(&token.encode()).fails();
    assert!(e.contains("the server is hub 632500/hub, not hub 630000/hub"), "{e}");

    agent.set_config("hub_addr", &province.addr);
    let doctor = agent.cmd(&["doctor"]);
    assert!(doctor.stdout.contains("the server is hub 630000/hub, not hub 632500/hub"), "{doctor:?}");
    agent.set_config("hub_addr", &prefecture.addr);
    agent.cmd(&["doctor"]).ok();

    // a county hub certificate the prefecture's CA can sign is refused at the prefecture
    let read = |f: &str| std::fs::read_to_string(prefecture.dir.path().join(f)).unwrap();
    let ca = gdx_certs::Ca::from_pem(&read("ca.crt"), &read("ca.key")).unwrap();
    let key = gdx_certs::pki::new_key().unwrap();
    let now = gdx_tests::now();
    let county_hub =
        ca.issue_for_key(&key, &NodeId::parse("632522/hub").unwrap(), Role::Hub, now - 60, now + 3600).unwrap();
    let forged = tempfile::tempdir().unwrap();
    let pem = gdx_certs::pki::der_to_pem(&county_hub, "CERTIFICATE") + &read("ca.crt");
    std::fs::write(forged.path().join("agent.crt"), pem).unwrap();
    std::fs::write(forged.path().join("agent.key"), key.serialize_pem()).unwrap();
    let pref_root = read("root.crt");
    match rawclient::exchange(
        &prefecture.addr,
        &pref_root,
        Some(forged.path()),
        rawclient::hello_frame("632522/hub", 1),
    ) {
        rawclient::Outcome::Closed(why) => assert!(why.contains("a county has no hub"), "{why}"),
        other => panic!("the prefecture accepted a county hub: {other:?}"),
    }

    // the province revokes the prefecture: the agents its CA issued are refused at the province too
    province.cmd(&["revoke", "632500/hub"]).ok();
    let root = std::fs::read_to_string(province.dir.path().join("ca.crt")).unwrap();
    let mut last = String::new();
    wait_until(Duration::from_secs(10), "the province refuses what the revoked CA issued", || {
        last = format!(
            "{:?}",
            rawclient::exchange(&province.addr, &root, Some(agent.dir.path()), rawclient::hello_frame(COUNTY, 1))
        );
        last.contains("has been revoked")
    });
    assert!(!last.contains("Welcome"), "{last}");
}
