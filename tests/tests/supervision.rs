//! Supervision information sharing (监管信息共享): an enterprise's profile
//! gathered at the province by its 统一社会信用代码 from every resource that
//! holds credit codes (市场监管's register, 发改's 双公示 decisions), each
//! section with where it came from; the centre sees everything, a
//! department only what it provides or holds a grant for, the rest listed
//! as restricted; a department's look is in the audit log.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use gdx_tests::{Agent, Hub};

/// Two enterprises registered in 西宁 (valid credit codes).
const FIRM: &str = "91630100MA7G00012C";
const OTHER: &str = "91630100MA7G000207";

fn sql(db: &Path, statements: &str) {
    rusqlite::Connection::open(db).unwrap().execute_batch(statements).unwrap();
}

/// Declares `table` of `db` as resource `code` with catalogue entry `entry`.
#[allow(clippy::too_many_arguments)]
fn declare(agent: &Agent, code: &str, entry: &str, name: &str, sharing: &str, key: &str, db: &Path, items: &str) {
    agent.add_config(&format!(
        r#"[[resource]]
code = "{code}"
key = ["{key}"]
source = {{ kind = "sqlite", path = "{}", table = "t" }}

[resource.catalog]
code = "{entry}"
class = "部门信息资源"
classification = ["市场监管"]
name = "{name}"
provider_name = "青海省市场监督管理局"
provider_code = "11630000015600025J"
abstract = "{name}"
format = "数据库"
format_type = "sqlite"
sharing_type = "{sharing}"
sharing_condition = "仅限市场监管和信用监管使用"
sharing_method = "接口"
open_to_public = false
update_cycle = "每日"
published = "2026-11-01"
items = [{items}]
"#,
        db.display()
    ));
}

fn synced(agent: &Agent) {
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{out} {err}");
}

/// A session cookie for the portal from a one-time login link.
fn session(hub: &Hub, link: &str) -> String {
    let path = link.trim().split_once("://").unwrap().1.split_once('/').unwrap().1.to_owned();
    let (_, head, _) = hub.https(&format!("GET /{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    head.lines().find_map(|l| l.strip_prefix("set-cookie: ")).unwrap().split(';').next().unwrap().to_owned()
}

fn profile(hub: &Hub, cookie: &str, code: &str) -> (u16, serde_json::Value) {
    let (status, _, body) = hub.https(&format!(
        "GET /api/v1/enterprises/{code} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    ));
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

gdx_tests::on_both_stores! {
    an_enterprise_profile_gathers_every_resource_by_credit_code_under_the_readers_rights_in: an_enterprise_profile_gathers_every_resource_by_credit_code_under_the_readers_rights, on_postgres_an_enterprise_profile_gathers_every_resource_by_credit_code_under_the_readers_rights;
}

/// Run twice: the province with its stores in SQLite files, then on PostgreSQL.
fn an_enterprise_profile_gathers_every_resource_by_credit_code_under_the_readers_rights_in(
    pg: Option<&gdx_tests::servers::Postgres>,
) {
    let mut province = gdx_tests::servers::hub_on(pg, "630000");
    province.start();
    let tmp = tempfile::tempdir().unwrap();
    // 市场监管's register (有条件共享) and 发改's 双公示 decisions (无条件共享), keyed by decision number
    let register = tmp.path().join("register.db");
    sql(
        &register,
        &format!(
            "CREATE TABLE t (credit_code TEXT PRIMARY KEY, org_name TEXT, legal_rep TEXT, scope TEXT);
             INSERT INTO t VALUES ('{FIRM}', '青海昆仑食品有限公司', '马秀兰', '预包装食品销售；道路普通货物运输'),
                                  ('{OTHER}', '青海湟水商贸有限公司', '韩永福', '日用百货销售');"
        ),
    );
    let decisions = tmp.path().join("decisions.db");
    sql(
        &decisions,
        &format!(
            "CREATE TABLE t (decision_no TEXT PRIMARY KEY, credit_code TEXT, subject TEXT, kind TEXT, decided TEXT);
             INSERT INTO t VALUES ('青市监罚〔2026〕1号', '{FIRM}', '青海昆仑食品有限公司', '行政处罚', '2026-10-12'),
                                  ('青市监许〔2026〕7号', '{FIRM}', '青海昆仑食品有限公司', '行政许可', '2026-03-02'),
                                  ('青市监许〔2026〕8号', '{OTHER}', '青海湟水商贸有限公司', '行政许可', '2026-04-02');"
        ),
    );
    let scjg = Agent::new();
    scjg.enroll(&province.token("630000/scjg", "1h")).ok();
    declare(
        &scjg,
        "faren",
        "102001/000001",
        "企业登记信息",
        "有条件共享",
        "credit_code",
        &register,
        r#"{ name = "统一社会信用代码", column = "credit_code", data_type = "C", length = 18, kind = "统一社会信用代码" },
           { name = "企业名称", column = "org_name", data_type = "C", length = 100 },
           { name = "法定代表人", column = "legal_rep", data_type = "C", length = 50, sensitive = true },
           { name = "经营范围", column = "scope", data_type = "C", length = 500 }"#,
    );
    synced(&scjg);
    let fgw = Agent::new();
    fgw.enroll(&province.token("630000/fgw", "1h")).ok();
    declare(
        &fgw,
        "shuanggongshi",
        "104001/000001",
        "行政许可和行政处罚信息",
        "无条件共享",
        "decision_no",
        &decisions,
        r#"{ name = "决定文书号", column = "decision_no", data_type = "C", length = 50 },
           { name = "统一社会信用代码", column = "credit_code", data_type = "C", length = 18 },
           { name = "主体名称", column = "subject", data_type = "C", length = 100 },
           { name = "决定类型", column = "kind", data_type = "C", length = 10 },
           { name = "决定日期", column = "decided", data_type = "D", length = 8 }"#,
    );
    synced(&fgw);

    // the centre's operator: both resources, each with its provider and changeset
    let all = province.cmd(&["enterprise", FIRM, "--json"]).ok();
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["name"], "青海昆仑食品有限公司");
    let sections = all["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 2, "{all}");
    let register_section = sections.iter().find(|s| s["code"] == "102001/000001").unwrap();
    assert_eq!(
        (register_section["provider"].as_str(), register_section["changeset"].as_i64()),
        (Some("630000/scjg"), Some(1))
    );
    assert_eq!(register_section["rows"][0]["legal_rep"], "马秀兰");
    let decided = sections.iter().find(|s| s["code"] == "104001/000001").unwrap();
    assert_eq!(decided["rows"].as_array().unwrap().len(), 2, "both decisions, not the other firm's");
    let table = province.cmd(&["enterprise", FIRM]).ok();
    assert!(table.contains("青市监罚〔2026〕1号") && table.contains("630000/scjg 青海省市场监督管理局"), "{table}");
    let bad = province.cmd(&["enterprise", "91630100MA7G000128"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("check character") && bad.stderr.contains("18-character 统一社会信用代码"),
        "{}",
        bad.stderr
    );

    // a department with a grant of the 双公示 only: those rows, its register listed as restricted
    let jiaotong = Agent::new();
    jiaotong.enroll(&province.token("630000/jiaotong", "1h")).ok();
    let granted = jiaotong
        .cmd(&[
            "request",
            "--resource",
            "104001/000001",
            "--fields",
            "统一社会信用代码,主体名称,决定类型",
            "--purpose",
            "道路运输许可核查",
        ])
        .ok();
    assert!(granted.contains("granted") || granted.contains("Granted"), "{granted}");
    let http = format!("https://{}", province.http);
    let cookie = session(&province, &jiaotong.cmd(&["login", "--portal", &http]).ok());
    let (status, seen) = profile(&province, &cookie, FIRM);
    assert_eq!(status, 200, "{seen}");
    let sections = seen["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 1, "{seen}");
    assert_eq!(sections[0]["code"], "104001/000001");
    assert!(sections[0]["seen_under"].as_str().unwrap().starts_with("grant 630000-"), "{seen}");
    let row = sections[0]["rows"][0].as_object().unwrap();
    let mut columns: Vec<&str> = row.keys().map(String::as_str).collect();
    columns.sort_unstable();
    assert_eq!(columns, ["credit_code", "kind", "subject"], "only the granted columns: {seen}");
    assert_eq!(seen["restricted"][0]["code"], "102001/000001");
    assert!(seen["restricted"][0]["why"].as_str().unwrap().contains("request it"), "{seen}");
    assert!(!seen.to_string().contains("马秀兰"), "the legal representative stays behind: {seen}");
    // the provider itself sees its own register in full
    let own = session(&province, &scjg.cmd(&["login", "--portal", &http]).ok());
    let (_, mine) = profile(&province, &own, FIRM);
    let codes: Vec<&str> = mine["sections"].as_array().unwrap().iter().map(|s| s["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["102001/000001"], "its own resource; the 双公示 is not granted to it: {mine}");
    // visitors get nothing, a bad code a sentence
    assert_eq!(profile(&province, "gdx_session=none", FIRM).0, 401);
    let (status, bad) = profile(&province, &cookie, "123");
    assert_eq!(status, 400);
    assert!(bad.to_string().contains("统一社会信用代码"), "{bad}");
    // the department's look is in the audit log
    gdx_tests::wait_until(std::time::Duration::from_secs(20), "the look in the audit log", || {
        let logged = province.cmd(&["audit", "list", "--kind", "portal", "--format", "jsonl"]).ok();
        logged.contains("\"action\":\"enterprise\"") && logged.contains(FIRM) && logged.contains("630000/jiaotong")
    });
}
