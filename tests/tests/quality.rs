//! Values checked by the kind their 信息项 declares (值类型): a row with a bad
//! identity number, credit code, date or mobile number is quarantined with
//! the reason, the rows around it sync, every document of the GB 11643
//! layout is accepted, values are sent as their standard writes them, and a
//! row that turns bad keeps its last good version at the hub.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use gdx_tests::{Agent, Hub, vault};

const NODE: &str = "630000/gongan";

fn with_check(first17: &str) -> String {
    format!("{first17}{}", gdx_common::idnumber::check_char(first17.as_bytes()).unwrap())
}

fn resource(db: &Path, legacy: bool) -> String {
    format!(
        r#"[[resource]]
code = "renkou"
key = ["id_number"]
legacy_ids = {legacy}
source = {{ kind = "sqlite", path = "{}", table = "people" }}

[resource.catalog]
code = "301001/000002"
class = "部门信息资源"
classification = ["人口"]
name = "人口信息"
provider_name = "青海省公安厅"
provider_code = "11632522015603015M"
abstract = "人口的证件号码、姓名、出生日期、手机号码和就业单位"
format = "数据库"
format_type = "sqlite"
sharing_type = "有条件共享"
sharing_condition = "仅限社会救助审核使用"
sharing_method = "接口"
open_to_public = false
update_cycle = "每日"
published = "2026-11-01"
items = [
  {{ name = "公民身份号码", column = "id_number", data_type = "C", length = 18, sensitive = true, kind = "公民身份号码" }},
  {{ name = "姓名", column = "name", data_type = "C", length = 50 }},
  {{ name = "出生日期", column = "birth", data_type = "D", length = 10, kind = "日期" }},
  {{ name = "手机号码", column = "phone", data_type = "C", length = 11, kind = "手机号码" }},
  {{ name = "就业单位", column = "employer", data_type = "C", length = 18, kind = "统一社会信用代码" }},
]
"#,
        db.display()
    )
}

#[test]
fn bad_values_are_quarantined_with_their_reason_and_every_document_kind_syncs() {
    gdx_tests::files_only("it reads hub.db itself");
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token(NODE, "1h")).ok();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("people.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE people (id_number TEXT PRIMARY KEY, name TEXT, birth TEXT, phone TEXT, employer TEXT)",
    )
    .unwrap();
    let good = [
        ("11010219840406970x", "lower x"),
        (&*with_check("81000019900101001"), "香港居民"),
        (&*with_check("82000019851231002"), "澳门居民"),
        (&*with_check("83000020000229003"), "台湾居民"),
        (&*with_check("91115619900101001"), "永久居留"),
        (&*with_check("63252219900101001"), "卓玛"),
    ];
    for (id, name) in good {
        c.execute("INSERT INTO people VALUES (?1, ?2, '1990-01-01', '13800000001', '91350100M000100Y43')", [id, name])
            .unwrap();
    }
    for (id, name, birth, phone, employer) in [
        ("110105194912310021", "bad check", "1949-12-31", None, None),
        ("110105491231002", "legacy", "1949-12-31", None, None),
        (&*with_check("63252219900101003"), "bad date", "1990-02-30", None, None),
        (&*with_check("63252219900101005"), "bad phone", "1990-01-01", Some("12345"), None),
        (&*with_check("63252219900101007"), "bad employer", "1990-01-01", None, Some("91350100M000100Y44")),
    ] {
        c.execute(
            "INSERT INTO people VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![id, name, birth, phone, employer],
        )
        .unwrap();
    }
    agent.add_config(&resource(&db, false));
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "bad values do not fail the sync: {out} {err}");
    let r = &out["resources"][0];
    assert_eq!((r["inserted"].as_u64(), r["quarantined"].as_u64()), (Some(6), Some(5)), "{out}");
    let status = agent.cmd(&["status"]).ok();
    for reason in [
        "公民身份号码 (id_number): ID number 110105194912310021 has a bad check character: expected X",
        "公民身份号码 (id_number): \"110105491231002\" is a legacy 15-digit ID number; convert it in the source, or set legacy_ids = true on the resource",
        "出生日期 (birth): \"1990-02-30\" is not a real date",
        "手机号码 (phone): \"12345\" is not a mainland mobile number",
        "就业单位 (employer): credit code 91350100M000100Y44 has a bad check character",
    ] {
        assert!(status.contains(reason), "status lacks {reason:?}:\n{status}");
    }
    let v = vault(&hub, NODE);
    let conn = rusqlite::Connection::open(&v).unwrap();
    let count: i64 = conn.query_row("SELECT count(*) FROM renkou", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 6, "every document kind, the rows around the bad ones");
    let x: String = conn.query_row("SELECT id_number FROM renkou WHERE name = 'lower x'", [], |r| r.get(0)).unwrap();
    assert_eq!(x, "11010219840406970X", "sent as the standard writes it");

    // the provider's hub knows too: how many, and why (never the rows)
    let node = hub.nodes().into_iter().find(|n| n["node"] == NODE).unwrap();
    let q = &node["quality"][0];
    assert_eq!(
        (q["resource"].as_str(), q["quarantined"].as_u64(), q["scanned"].as_u64()),
        (Some("renkou"), Some(5), Some(11)),
        "{node}"
    );
    let samples = q["samples"].to_string();
    assert!(samples.contains("is not a real date") && !samples.contains("bad date"), "reasons, not rows: {samples}");
    let table = hub.cmd(&["nodes"]).ok();
    assert!(table.contains("QUARANTINED"), "{table}");

    // a row that turns bad keeps its last good version at the hub
    c.execute_batch("UPDATE people SET phone = 'none', name = '卓玛改' WHERE name = '卓玛'").unwrap();
    let (code, out, _) = agent.sync(&[]);
    assert_eq!(code, 0);
    assert_eq!(out["resources"][0]["deleted"].as_u64(), Some(0), "{out}");
    let kept: String = conn
        .query_row("SELECT name FROM renkou WHERE phone = '13800000001' AND name LIKE '卓玛%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, "卓玛");

    // legacy numbers, once the resource allows them, travel converted
    let text = std::fs::read_to_string(agent.dir.path().join("agent.toml")).unwrap();
    std::fs::write(agent.dir.path().join("agent.toml"), text.replace("legacy_ids = false", "legacy_ids = true"))
        .unwrap();
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{out} {err}");
    let legacy: String =
        conn.query_row("SELECT id_number FROM renkou WHERE name = 'legacy'", [], |r| r.get(0)).unwrap();
    assert_eq!(legacy, "11010519491231002X");
}
