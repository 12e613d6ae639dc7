//! 考核督促 end to end: a province where 民政 shares a daily resource
//! (有条件共享), 卫健 asks for it and is answered the same day, 公安 has
//! enrolled but published nothing; the month's report gives exact
//! indicators, scores and ranks, says what it did not observe instead of
//! scoring it, links each figure to its audit entries, and is written as
//! XLSX (read back) and HTML; a weight changed in evaluation.toml re-ranks.
//! Below a prefecture hub: the province scores a county department on what
//! the prefecture observed and reported, citing the prefecture's entries.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use gdx_tests::{Agent, Hub};

fn declare(agent: &Agent, db: &Path) {
    people(db);
    agent.add_config(&resource("dibao", "301001/000001", "有条件共享", "青海省民政厅", "11630000015600017P", db));
}

fn people(db: &Path) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE people (id_number TEXT PRIMARY KEY, name TEXT, amount INTEGER);
             INSERT INTO people VALUES ('630000198001010012', '卓玛', 640), ('630000199002020023', '马秀兰', 700);",
        )
        .unwrap();
}

/// A daily resource of `db`'s people table, catalogued as `entry`.
fn resource(code: &str, entry: &str, sharing: &str, provider: &str, credit: &str, db: &Path) -> String {
    format!(
        r#"[[resource]]
code = "{code}"
key = ["id_number"]
source = {{ kind = "sqlite", path = "{}", table = "people" }}

[resource.catalog]
code = "{entry}"
class = "部门信息资源"
classification = ["社会保障"]
name = "低保对象"
provider_name = "{provider}"
provider_code = "{credit}"
abstract = "低保对象的身份号码、姓名和保障金额"
format = "数据库"
format_type = "sqlite"
sharing_type = "{sharing}"
sharing_condition = "仅限社会救助审核使用"
legal_basis = "《社会救助暂行办法》第六十一条"
sharing_method = "接口"
open_to_public = false
update_cycle = "每日"
published = "2026-11-01"
items = [
  {{ name = "公民身份号码", column = "id_number", data_type = "C", length = 18 }},
  {{ name = "姓名", column = "name", data_type = "C", length = 50 }},
  {{ name = "月保障金额", column = "amount", data_type = "N", length = 10 }},
]
"#,
        db.display()
    )
}

fn json(out: String) -> serde_json::Value {
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn line<'a>(report: &'a serde_json::Value, node: &str) -> &'a serde_json::Value {
    report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["node"] == node)
        .unwrap_or_else(|| panic!("{node} in {report}"))
}

#[test]
fn a_months_report_gives_exact_indicators_ranks_and_the_events_behind_them() {
    let mut hub = Hub::init("630000");
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let minzheng = Agent::new();
    minzheng.enroll(&hub.token("630000/minzheng", "1h")).ok();
    declare(&minzheng, &tmp.path().join("dibao.db"));
    let (code, out, err) = minzheng.sync(&[]);
    assert_eq!(code, 0, "{out} {err}");
    let weijian = Agent::new();
    weijian.enroll(&hub.token("630000/weijian", "1h")).ok();
    let gongan = Agent::new();
    gongan.enroll(&hub.token("630000/gongan", "1h")).ok();
    let filed = json(
        weijian
            .cmd(&["request", "--resource", "301001/000001", "--fields", "姓名", "--purpose", "救助资格核验", "--json"])
            .ok(),
    );
    let id = filed["id"].as_str().unwrap().to_owned();
    minzheng.cmd(&["approve", &id]).ok();

    let month = {
        let (y, m, _) = gdx_common::units::civil_from_days(gdx_tests::now().div_euclid(86_400));
        format!("{y}-{m:02}")
    };
    // the audit log collects the vaults' and the exchange's entries as it runs
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = json(hub.cmd(&["report", "--period", &month, "--json"]).ok());
        let mz = line(&r, "630000/minzheng");
        let i = &mz["indicators"];
        if !i["freshness"].is_null()
            && !i["quality"].is_null()
            && !i["responsiveness"].is_null()
            && mz["events"]["responsiveness"].as_array().is_some_and(|e| e.len() == 2)
        {
            break;
        }
        // what was missing, and what the hub said, to tell a slow log from a stuck one
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after 30 s waiting until the changeset and the decision are in the audit log: {mz}\naudit log: {}\nhub: {}",
            hub.cmd(&["audit", "list", "--format", "jsonl"]).ok(),
            hub.proc.as_ref().map(|p| p.output()).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let report = json(hub.cmd(&["report", "--period", &month, "--json"]).ok());
    let mz = line(&report, "630000/minzheng");
    let i = &mz["indicators"];
    assert_eq!(i["resources_declared"], 1);
    assert_eq!(i["freshness"], 1.0, "synced today, daily: fresh every day since: {mz}");
    assert_eq!(i["quality"], 1.0);
    assert_eq!(i["responsiveness"], 1.0, "answered the same day");
    assert_eq!(i["grants_served"], 1);
    assert!(i["median_answer_days"].as_f64().unwrap() < 0.1);
    assert!(i["notices_in_time"].is_null() && i["items_consistent"].is_null(), "nothing observed is not 0: {mz}");
    assert!(mz["not_observed"].as_array().unwrap().iter().any(|n| n == "notices"));
    assert!(mz["coverage"].as_f64().unwrap() < 1.0, "enrolled during the month: partial");
    // each figure names its audit entries: the request and the decision for responsiveness
    let behind: Vec<u64> =
        mz["events"]["responsiveness"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(behind.len(), 2, "{mz}");
    let listed = hub.cmd(&["audit", "list", "--request", &id, "--format", "jsonl"]).ok();
    for index in &behind {
        assert!(listed.contains(&format!("\"index\":{index}")), "entry {index} is the request's: {listed}");
    }
    // 公安 published nothing: not scored, not ranked, not zero
    let ga = line(&report, "630000/gongan");
    assert!(ga["score"].is_null() && ga["rank_in_level"].is_null(), "{ga}");
    assert_eq!(line(&report, "630000/minzheng")["rank_in_level"], 1);

    // the workbook reads back; the HTML is a page
    let xlsx = tmp.path().join("report.xlsx");
    hub.cmd(&["report", "--period", &month, "--out", xlsx.to_str().unwrap()]).ok();
    {
        use calamine::{Data, Reader, open_workbook_auto};
        let mut wb = open_workbook_auto(&xlsx).unwrap();
        assert_eq!(wb.sheet_names(), ["排名", "依据"]);
        let sheet = wb.worksheet_range("排名").unwrap();
        let cell = |r: u32, c: u32| sheet.get_value((r, c)).cloned().unwrap_or(Data::Empty).to_string();
        assert_eq!(
            (cell(1, 0), cell(1, 2), cell(1, 7)),
            ("部门".to_owned(), "得分".to_owned(), "数据及时率".to_owned())
        );
        let row = (2..sheet.height() as u32).find(|r| cell(*r, 0) == "630000/minzheng").unwrap();
        assert_eq!((cell(row, 7), cell(row, 10)), ("100.0%".to_owned(), "100.0%".to_owned()));
        assert!(cell(row, 16).contains("期中接入"), "{}", cell(row, 16));
    }
    let html = tmp.path().join("report.html");
    hub.cmd(&["report", "--period", &month, "--out", html.to_str().unwrap()]).ok();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<h1>考核督促报告") && page.contains("630000/minzheng"));

    // responsiveness weighs nothing now, freshness everything: the report follows the file
    std::fs::write(
        hub.dir.path().join("evaluation.toml"),
        "[weights]\nfreshness = 1\nquality = 0\navailability = 0\nresponsiveness = 0\nnotices = 0\nchecks = 0\nitems = 0\n",
    )
    .unwrap();
    let reweighed = json(hub.cmd(&["report", "--period", &month, "--json"]).ok());
    assert_eq!(line(&reweighed, "630000/minzheng")["score"], 100.0);
    std::fs::write(hub.dir.path().join("evaluation.toml"), "[weights]\nfreshness = -1\n").unwrap();
    let bad = hub.cmd(&["report", "--period", &month]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("evaluation.toml"), "{}", bad.stderr);
    let bad = hub.cmd(&["report", "--period", "2026-13"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("not a month"), "{}", bad.stderr);
}

#[test]
fn the_province_scores_a_county_department_on_what_its_prefecture_observed() {
    let mut province = Hub::init("630000");
    province.start();
    let mut prefecture = Hub::join(&province.hub_token("632500/hub"));
    prefecture.start();
    let tmp = tempfile::tempdir().unwrap();
    // 民政 at the province shares; 同德县公安 shares a resource kept at the prefecture
    let minzheng = Agent::new();
    minzheng.enroll(&province.token("630000/minzheng", "1h")).ok();
    declare(&minzheng, &tmp.path().join("dibao.db"));
    assert_eq!(minzheng.sync(&[]).0, 0);
    let mut gongan = Agent::new();
    gongan.enroll(&prefecture.token("632522/gongan", "1h")).ok();
    let db = tmp.path().join("hukou.db");
    people(&db);
    gongan.add_config(&resource("renkou", "301001/000022", "无条件共享", "同德县公安局", "11632522015603015M", &db));
    assert_eq!(gongan.sync(&[]).0, 0);
    gongan.start(); // connected from now on: availability
    // 同德县卫健 receives 民政's rows through the prefecture: the deliveries are logged there
    let weijian = Agent::new();
    weijian.enroll(&prefecture.token("632522/weijian", "1h")).ok();
    let mut filed = serde_json::Value::Null;
    gdx_tests::wait_until(std::time::Duration::from_secs(30), "the province's entry at the prefecture", || {
        let run = weijian.cmd(&[
            "request",
            "--resource",
            "301001/000001",
            "--fields",
            "姓名",
            "--purpose",
            "救助资格核验",
            "--json",
        ]);
        if run.code == 0 {
            filed = json(run.stdout);
        }
        run.code == 0
    });
    let id = filed["id"].as_str().unwrap().to_owned();
    gdx_tests::wait_until(std::time::Duration::from_secs(30), "the request at the province", || {
        minzheng.cmd(&["approve", &id]).code == 0
    });
    gdx_tests::wait_until(std::time::Duration::from_secs(60), "the rows delivered to the county", || {
        weijian.cmd(&["receive"]).ok().contains("2 row changes")
    });

    let month = {
        let (y, m, _) = gdx_common::units::civil_from_days(gdx_tests::now().div_euclid(86_400));
        format!("{y}-{m:02}")
    };
    // the prefecture reports what it observed every 15 s
    let mut report = serde_json::Value::Null;
    gdx_tests::wait_until(std::time::Duration::from_secs(90), "the prefecture's observations at the province", || {
        report = json(province.cmd(&["report", "--period", &month, "--json"]).ok());
        let (ga, mz) = (line(&report, "632522/gongan"), line(&report, "630000/minzheng"));
        let i = &ga["indicators"];
        i["freshness"] == 1.0 && i["availability"].is_number() && mz["indicators"]["rows_delivered"] == 2
    });
    let ga = line(&report, "632522/gongan");
    let i = &ga["indicators"];
    assert_eq!(i["quality"], 1.0, "{ga}");
    assert!(i["availability"].as_f64().is_some_and(|a| a > 0.0), "connected since it started: {ga}");
    assert!(ga["score"].is_number() && ga["rank_in_level"] == 1, "{ga}");
    // the figure cites the prefecture's log, and the entry there is the county's changeset
    let cited = ga["elsewhere"]["freshness"][0].as_str().unwrap_or_else(|| panic!("{ga}"));
    let index = cited.strip_prefix("632500/hub#").unwrap_or_else(|| panic!("{cited}"));
    let listed = prefecture.cmd(&["audit", "list", "--node", "632522/gongan", "--format", "jsonl"]).ok();
    let entry =
        listed.lines().find(|l| l.contains(&format!("\"index\":{index},"))).unwrap_or_else(|| panic!("{listed}"));
    assert!(entry.contains("\"kind\":\"changeset\"") && entry.contains("renkou"), "{entry}");
    let mz = line(&report, "630000/minzheng");
    assert!(mz["elsewhere"]["sharing"].as_array().is_some_and(|e| !e.is_empty()), "{mz}");
    // the prefecture's own report says the same of its department
    let at_prefecture = json(prefecture.cmd(&["report", "--period", &month, "--json"]).ok());
    assert_eq!(line(&at_prefecture, "632522/gongan")["indicators"]["freshness"], 1.0);
}
