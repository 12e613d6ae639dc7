//! 双告知 and 联合惩戒 end to end, over a province and the 西宁 prefecture
//! hub: 市场监管's registration at the province brings notices to the
//! licensing departments of the enterprise's county, below the prefecture
//! hub, which claim them or pass them on (and the centre sees it); a
//! notice unclaimed for 5 working days is overdue; a kill of either hub
//! loses or doubles none. A department checks a subject against the
//! dishonest lists it may read (its own, or another's under a grant) for
//! a kind of matter, and reports what it did. Everything is in the audit log.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gdx_common::creditcode::CreditCode;
use gdx_tests::{Agent, Hub, wait_until};

const SHIXIN: &str = "关于对失信被执行人实施联合惩戒的合作备忘录";

const RULES: &str = r#"
[registration]
provider = "630000/scjg"
resource = "faren"
credit_code = "credit_code"
name = "org_name"
scope = "scope"

[[matter]]
name = "食品经营许可"
keywords = ["食品销售", "预包装食品", "餐饮服务"]
licensing = "scjg"

[[matter]]
name = "道路运输经营许可"
keywords = ["道路普通货物运输", "道路旅客运输"]
licensing = "jiaotong"

[[list]]
name = "严重失信主体名单"
code = "104002/000001"
subject = "credit_code"
memorandum = "memorandum"
until = "until"
reason = "reason"

[[measure]]
memorandum = "关于对失信被执行人实施联合惩戒的合作备忘录"
matter = "政府采购"
measure = "限制参加政府采购活动"

[[measure]]
memorandum = "关于对失信被执行人实施联合惩戒的合作备忘录"
matter = "财政资金"
measure = "限制申请财政性资金项目"
"#;

/// A valid credit code of an enterprise registered at `division`, number `n`.
fn firm(division: &str, n: u32) -> String {
    CreditCode::compose(&format!("91{division}"), &format!("MA7G{n:04}")).unwrap().as_str().to_owned()
}

fn sql(db: &Path, statements: &str) {
    rusqlite::Connection::open(db).unwrap().execute_batch(statements).unwrap();
}

fn declare(agent: &Agent, code: &str, entry: &str, name: &str, key: &str, db: &Path, items: &str) {
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
sharing_type = "无条件共享"
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

fn json(out: String) -> serde_json::Value {
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The province (with `supervision.toml`), 西宁 below it (with the same
/// lists and measures), and 市场监管 at the province keeping the register
/// `register.db` in the returned directory.
fn province_and_xining(pg: Option<&gdx_tests::servers::Postgres>) -> (Hub, Hub, Agent, tempfile::TempDir) {
    let mut province = gdx_tests::servers::hub_on(pg, "630000");
    std::fs::write(province.dir.path().join("supervision.toml"), RULES).unwrap();
    province.start();
    let mut xining = Hub::join(&province.hub_token("630100/hub"));
    std::fs::write(xining.dir.path().join("supervision.toml"), RULES).unwrap();
    xining.start();
    let tmp = tempfile::tempdir().unwrap();
    let register = tmp.path().join("register.db");
    let scjg = Agent::new();
    scjg.enroll(&province.token("630000/scjg", "1h")).ok();
    declare_register(&scjg, &register);
    (province, xining, scjg, tmp)
}

/// 市场监管's register in `db` as resource `faren` (102001/000001).
fn declare_register(scjg: &Agent, db: &Path) {
    sql(db, "CREATE TABLE t (credit_code TEXT PRIMARY KEY, org_name TEXT, legal_rep TEXT, scope TEXT);");
    declare(
        scjg,
        "faren",
        "102001/000001",
        "企业登记信息",
        "credit_code",
        db,
        r#"{ name = "统一社会信用代码", column = "credit_code", data_type = "C", length = 18, kind = "统一社会信用代码" },
           { name = "企业名称", column = "org_name", data_type = "C", length = 100 },
           { name = "法定代表人", column = "legal_rep", data_type = "C", length = 50 },
           { name = "经营范围", column = "scope", data_type = "C", length = 500 }"#,
    );
}

fn register(db: &Path, code: &str, name: &str, scope: &str) {
    sql(db, &format!("INSERT OR REPLACE INTO t VALUES ('{code}', '{name}', '马秀兰', '{scope}')"));
}

/// An agent of `node` enrolled at `hub`.
fn department(hub: &Hub, node: &str) -> Agent {
    let a = Agent::new();
    a.enroll(&hub.token(node, "1h")).ok();
    a
}

fn notices_of(agent: &Agent) -> Vec<serde_json::Value> {
    json(agent.cmd(&["notices", "--json"]).ok()).as_array().unwrap().clone()
}

fn hub_notices(hub: &Hub) -> Vec<serde_json::Value> {
    json(hub.cmd(&["notices", "--json"]).ok()).as_array().unwrap().clone()
}

#[test]
fn notices_reach_the_licensing_department_of_the_county_and_are_claimed_or_passed_on() {
    let (province, xining, scjg, tmp) = province_and_xining(None);
    let db = tmp.path().join("register.db");
    let datong = firm("630121", 1); // 大通县: food and road transport
    let xining_shop = firm("630100", 2); // 西宁市: nothing licensed, at first
    register(&db, &datong, "青海昆仑食品有限公司", "预包装食品销售；道路普通货物运输（不含危险货物）");
    register(&db, &xining_shop, "青海湟水商贸有限公司", "日用百货销售");
    synced(&scjg);
    let county_scjg = department(&xining, "630121/scjg");
    let county_jiaotong = department(&xining, "630121/jiaotong");

    // each licensing department of 大通县 gets its notice, through the prefecture hub
    wait_until(Duration::from_secs(30), "the notices reach 大通县", || {
        notices_of(&county_scjg).len() == 1 && notices_of(&county_jiaotong).len() == 1
    });
    let food = notices_of(&county_scjg).remove(0);
    assert_eq!((food["matter"].as_str(), food["credit_code"].as_str()), (Some("食品经营许可"), Some(datong.as_str())));
    assert_eq!(food["enterprise"], "青海昆仑食品有限公司");
    assert!(food["source"].as_str().unwrap().starts_with("630000/scjg faren changeset 1"), "{food}");
    let food_id = food["id"].as_str().unwrap().to_owned();
    let road_id = notices_of(&county_jiaotong)[0]["id"].as_str().unwrap().to_owned();
    let listed = county_scjg.cmd(&["notices"]).ok();
    assert!(listed.contains("pending") && listed.contains("gdx-agent claim ID"), "{listed}");
    assert_eq!(hub_notices(&province).len(), 2, "the West Ning shop needs no licence");

    // only the department named claims, once
    let stranger = county_jiaotong.cmd(&["claim", &food_id]).fails();
    assert!(stranger.contains("only that department can claim or pass it on"), "{stranger}");
    let claimed = county_scjg.cmd(&["claim", &food_id]).ok();
    assert!(claimed.contains("is claimed"), "{claimed}");
    assert!(county_scjg.cmd(&["claim", &food_id]).fails().contains("already claimed"));
    // passed on with a reason, to the prefecture's transport bureau
    assert!(
        county_jiaotong
            .cmd(&["pass", &road_id, "--to", "630100/jiaotong", "--reason", " "])
            .fails()
            .contains("--reason")
    );
    let passed =
        county_jiaotong.cmd(&["pass", &road_id, "--to", "630100/jiaotong", "--reason", "道路旅客运输由市级许可"]).ok();
    assert!(passed.contains("on to 630100/jiaotong"), "{passed}");

    // the centre sees the claim, the pass-on and the notice that continues it
    wait_until(Duration::from_secs(30), "the claim and the pass-on reach the province", || {
        let all = hub_notices(&province);
        let state = |id: &str| all.iter().find(|n| n["id"] == id).map(|n| n["state"].clone());
        state(&food_id).is_some_and(|s| s.get("Claimed").is_some())
            && state(&road_id).is_some_and(|s| s.get("Passed").is_some())
            && all.iter().any(|n| n["passed_from"] == road_id.as_str() && n["to"] == "630100/jiaotong")
    });
    let counts = json(province.cmd(&["supervision", "--json"]).ok());
    let of = |node: &str| counts.as_array().unwrap().iter().find(|c| c["node"] == node).unwrap().clone();
    assert_eq!(
        (of("630121/scjg")["claimed_in_time"].as_u64(), of("630121/jiaotong")["passed_on"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(of("630100/jiaotong")["pending"], 1);

    // a widened scope brings only the matter it newly names; another change none
    register(&db, &xining_shop, "青海湟水商贸有限公司", "日用百货销售；餐饮服务");
    sql(&db, &format!("UPDATE t SET legal_rep = '韩永福' WHERE credit_code = '{datong}'"));
    synced(&scjg);
    wait_until(Duration::from_secs(30), "the widened scope's notice at 西宁", || {
        hub_notices(&xining).iter().any(|n| n["credit_code"] == xining_shop.as_str() && n["to"] == "630100/scjg")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hub_notices(&province).len(), 4, "two first, one passed on, one for the wider scope");

    // unclaimed for 5 working days it is overdue; a claim after that is late
    let later = std::process::Command::new(gdx_tests::bin("gdx-hub"))
        .args(["--data", xining.data(), "notices"])
        .env("GDX_CLOCK_OFFSET", (10 * 86_400).to_string())
        .output()
        .unwrap();
    let later = String::from_utf8_lossy(&later.stdout);
    assert!(later.lines().any(|l| l.contains("630100/jiaotong") && l.contains("OVERDUE")), "{later}");
    assert!(
        later.lines().any(|l| l.contains(&food_id) && l.contains(" claimed ")),
        "claimed in time stays so: {later}"
    );

    // every notice, claim and pass-on is in the audit log of the hub where it happened
    wait_until(Duration::from_secs(20), "the notices in the audit logs", || {
        let p = province.cmd(&["audit", "list", "--kind", "notice", "--format", "jsonl"]).ok();
        let x = xining.cmd(&["audit", "list", "--kind", "notice", "--format", "jsonl"]).ok();
        p.matches("\"action\":\"issued\"").count() == 3
            && x.contains("\"action\":\"claimed\"")
            && x.contains("道路旅客运输由市级许可")
    });
    for hub in [&province, &xining] {
        assert!(hub.cmd(&["audit", "verify"]).ok().contains("checkpoints verify"));
    }
}

#[test]
fn no_notice_is_lost_or_sent_twice_when_hubs_are_killed() {
    let (mut province, mut xining, scjg, tmp) = province_and_xining(None);
    let db = tmp.path().join("register.db");
    let county_scjg = department(&xining, "630121/scjg");
    let mut n = 0;
    for round in 0..6u64 {
        for _ in 0..3 {
            n += 1;
            register(&db, &firm("630121", n), &format!("大通食品店{n}"), "预包装食品销售");
        }
        synced(&scjg);
        // SIGKILL the hub issuing notices, then the one carrying them, at varying moments
        std::thread::sleep(Duration::from_millis(150 * round));
        let hub = if round % 2 == 0 { &mut province } else { &mut xining };
        hub.stop();
        hub.start();
    }
    wait_until(Duration::from_secs(60), "every notice at 大通县", || notices_of(&county_scjg).len() == n as usize);
    std::thread::sleep(Duration::from_secs(3));
    for (hub, list) in [
        ("the province", hub_notices(&province)),
        ("西宁", hub_notices(&xining)),
        ("the department", notices_of(&county_scjg)),
    ] {
        let mut firms: Vec<&str> = list.iter().map(|x| x["credit_code"].as_str().unwrap()).collect();
        firms.sort_unstable();
        firms.dedup();
        assert_eq!((list.len(), firms.len()), (n as usize, n as usize), "{hub}: one notice per enterprise");
    }
    let issued = province.cmd(&["audit", "list", "--kind", "notice", "--format", "jsonl"]).ok();
    wait_until(Duration::from_secs(20), "one audit entry per notice", || {
        province.cmd(&["audit", "list", "--kind", "notice", "--format", "jsonl"]).ok().lines().count() == n as usize
    });
    drop(issued);
}

gdx_tests::on_both_stores! {
    a_check_finds_a_listed_enterprise_from_own_data_or_a_grant_and_feedback_is_recorded_in:
        a_check_finds_a_listed_enterprise_from_own_data_or_a_grant_and_feedback_is_recorded,
        on_postgres_a_check_finds_a_listed_enterprise_from_own_data_or_a_grant_and_feedback_is_recorded;
}

/// Run twice: the province's stores in SQLite files, then on PostgreSQL.
fn a_check_finds_a_listed_enterprise_from_own_data_or_a_grant_and_feedback_is_recorded_in(
    pg: Option<&gdx_tests::servers::Postgres>,
) {
    let (province, xining, _scjg, tmp) = province_and_xining(pg);
    let listed = firm("630121", 7);
    let expired = firm("630121", 8);
    let clean = firm("630100", 9);
    let lists = tmp.path().join("lists.db");
    sql(
        &lists,
        &format!(
            "CREATE TABLE t (entry_no TEXT PRIMARY KEY, credit_code TEXT, name TEXT, memorandum TEXT, reason TEXT, until TEXT);
             INSERT INTO t VALUES ('SX0001', '{listed}', '青海某建设工程有限公司', '{SHIXIN}', '拒不履行生效判决', '2099-12-31'),
                                  ('SX0002', '{expired}', '青海某商贸有限公司', '{SHIXIN}', '已履行', '2020-01-01');"
        ),
    );
    let fgw = department(&province, "630000/fgw");
    declare(
        &fgw,
        "shixin",
        "104002/000001",
        "严重失信主体名单",
        "entry_no",
        &lists,
        r#"{ name = "名单编号", column = "entry_no", data_type = "C", length = 20 },
           { name = "统一社会信用代码", column = "credit_code", data_type = "C", length = 18, kind = "统一社会信用代码" },
           { name = "主体名称", column = "name", data_type = "C", length = 100 },
           { name = "联合惩戒备忘录", column = "memorandum", data_type = "C", length = 200 },
           { name = "列入原因", column = "reason", data_type = "C", length = 200 },
           { name = "有效期至", column = "until", data_type = "D", length = 8 }"#,
    );
    synced(&fgw);

    // 发改 checks a bidder during a procurement: restricted, under which memorandum and measure, until when
    let hit = json(fgw.cmd(&["check", &listed, "--matter", "政府采购", "--json"]).ok());
    assert_eq!(hit["finding"]["hits"][0]["measure"], "限制参加政府采购活动", "{hit}");
    assert_eq!(hit["finding"]["hits"][0]["listing"]["memorandum"], SHIXIN);
    let text = fgw.cmd(&["check", &listed, "--matter", "政府采购"]).ok();
    assert!(
        text.contains("RESTRICTED") && text.contains("until 2099-12-31") && text.contains("拒不履行生效判决"),
        "{text}"
    );
    let id = hit["id"].as_str().unwrap().to_owned();
    // one that is not listed, and one whose listing has ended
    assert!(fgw.cmd(&["check", &clean, "--matter", "政府采购"]).ok().contains("not restricted"));
    let ended = fgw.cmd(&["check", &expired, "--matter", "政府采购"]).ok();
    assert!(ended.contains("not restricted") && ended.contains("2020-01-01, which has passed"), "{ended}");
    // mistakes are said in a sentence
    assert!(fgw.cmd(&["check", &listed, "--matter", "工程招标"]).fails().contains("give one of: 政府采购, 财政资金"));
    assert!(
        fgw.cmd(&["check", "9163012", "--matter", "政府采购"]).fails().contains("统一社会信用代码 or 公民身份号码")
    );

    // feedback: once, by the department that checked
    assert!(fgw.cmd(&["feedback", &id, "--action", "警告", "--reason", "x"]).fails().contains("not 限制 or 未限制"));
    let done = fgw.cmd(&["feedback", &id, "--action", "限制", "--reason", "已取消其本次投标资格"]).ok();
    assert!(done.contains("feedback: 限制 — 已取消其本次投标资格"), "{done}");
    assert!(
        fgw.cmd(&["feedback", &id, "--action", "限制", "--reason", "again"]).fails().contains("already has feedback")
    );

    // a county department below 西宁 cannot read the list without a grant: no answer it could rely on
    let caizheng = department(&xining, "630121/caizheng");
    wait_until(Duration::from_secs(30), "the list's entry reaches 西宁", || {
        xining.cmd(&["catalog", "list"]).stdout.contains("104002/000001")
    });
    let blind = caizheng.cmd(&["check", &listed, "--matter", "财政资金"]).ok();
    assert!(blind.contains("UNKNOWN") && blind.contains("you hold no live grant"), "{blind}");
    assert!(caizheng.cmd(&["feedback", &id, "--action", "未限制", "--reason", "x"]).fails().contains("no check"));
    // with a grant, its hub answers from the rows delivered to it
    let granted = caizheng
        .cmd(&[
            "request",
            "--resource",
            "104002/000001",
            "--fields",
            "统一社会信用代码,联合惩戒备忘录,列入原因,有效期至",
            "--purpose",
            "财政资金项目申报审核",
        ])
        .ok();
    assert!(granted.to_lowercase().contains("granted"), "{granted}");
    wait_until(Duration::from_secs(30), "the list delivered to 西宁", || {
        caizheng.cmd(&["check", &listed, "--matter", "财政资金"]).ok().contains("RESTRICTED")
    });
    let seen = json(caizheng.cmd(&["check", &listed, "--matter", "财政资金", "--json"]).ok());
    assert_eq!(seen["finding"]["hits"][0]["measure"], "限制申请财政性资金项目");
    assert!(seen["finding"]["hits"][0]["listing"]["source"].as_str().unwrap().starts_with("grant 630100-"), "{seen}");
    let county_id = seen["id"].as_str().unwrap().to_owned();
    assert!(county_id.starts_with("630100-C"), "{county_id}");
    caizheng.cmd(&["feedback", &county_id, "--action", "限制", "--reason", "不予受理其财政资金申请"]).ok();

    // the checks travel up: the centre counts every department's
    wait_until(Duration::from_secs(30), "the county's check counted at the province", || {
        let counts = json(province.cmd(&["supervision", "--json"]).ok());
        counts.as_array().unwrap().iter().any(|c| c["node"] == "630121/caizheng" && c["with_feedback"] == 1)
    });
    let counts = json(province.cmd(&["supervision", "--json"]).ok());
    let fgw_counts = counts.as_array().unwrap().iter().find(|c| c["node"] == "630000/fgw").unwrap().clone();
    assert_eq!(
        (fgw_counts["checks"].as_u64(), fgw_counts["restricted"].as_u64(), fgw_counts["with_feedback"].as_u64()),
        (Some(4), Some(2), Some(1)),
        "{fgw_counts}"
    );
    // every check and feedback is in the audit log
    wait_until(Duration::from_secs(20), "the checks in the audit log", || {
        let log = province.cmd(&["audit", "list", "--kind", "check", "--format", "jsonl"]).ok();
        log.matches("\"action\":\"check\"").count() == 4 && log.contains("已取消其本次投标资格")
    });
}

/// `fetch` a POST from the page with `fields` and the page's CSRF token; the
/// status (0 for the redirect that follows success, not followed).
fn post(tab: &mut gdx_tests::browser::Tab<'_>, path: &str, fields: &str) -> u64 {
    let js = format!(
        "(async () => {{ const f = new URLSearchParams({fields}); f.set('csrf', document.querySelector('input[name=csrf]').value); \
         const r = await fetch('{path}', {{ method: 'POST', body: f, redirect: 'manual' }}); return r.status; }})()"
    );
    tab.eval(&js).as_u64().unwrap()
}

#[test]
fn a_department_claims_checks_and_reports_in_the_portal() {
    let Some(mut browser) = gdx_tests::browser::Browser::start() else { return };
    let mut province = Hub::init("630000");
    std::fs::write(province.dir.path().join("supervision.toml"), RULES).unwrap();
    province.start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("register.db");
    let scjg = department(&province, "630000/scjg");
    declare_register(&scjg, &db);
    // registered by 西宁's office: the food licence is 西宁市市场监管局's
    let shop = firm("630100", 11);
    register(&db, &shop, "青海湟源餐饮有限公司", "餐饮服务");
    synced(&scjg);
    let xining_scjg = department(&province, "630100/scjg");
    let base = format!("https://{}", province.http);
    wait_until(Duration::from_secs(20), "the notice", || notices_of(&xining_scjg).len() == 1);
    let id = notices_of(&xining_scjg)[0]["id"].as_str().unwrap().to_owned();

    let mut tab = browser.tab();
    tab.open(xining_scjg.cmd(&["login", "--portal", &base]).ok().trim());
    tab.open(&format!("{base}/supervision"));
    let page = tab.text();
    assert!(page.contains("待认领") && page.contains("青海湟源餐饮有限公司") && page.contains("认领"), "{page}");
    assert_eq!(post(&mut tab, &format!("/supervision/notices/{id}"), "{act: 'claim'}"), 0, "a redirect");
    tab.open(&format!("{base}/supervision"));
    assert!(tab.text().contains("已认领"), "{}", tab.text());
    // a second claim is refused in a sentence
    assert_eq!(post(&mut tab, &format!("/supervision/notices/{id}"), "{act: 'claim'}"), 400);
    // the check form: the shop is not listed (the list is not catalogued here: the answer is UNKNOWN)
    assert_eq!(
        post(&mut tab, "/supervision/check", &format!("{{subject: '{shop}', matter: '政府采购'}}")),
        0,
        "a redirect"
    );
    tab.open(&format!("{base}/supervision"));
    let page = tab.text();
    assert!(page.contains("无法确定") && page.contains("630000-C1"), "{page}");
    tab.open(&format!("{base}/supervision?check=630000-C1"));
    assert!(tab.text().contains("未能读取"), "{}", tab.text());
    assert_eq!(
        post(
            &mut tab,
            "/supervision/checks/630000-C1/feedback",
            "{action: '未限制', reason: '名单尚未接入，已人工核实'}"
        ),
        0,
        "a redirect"
    );
    tab.open(&format!("{base}/supervision?check=630000-C1"));
    assert!(tab.text().contains("未限制 — 名单尚未接入，已人工核实"), "{}", tab.text());
    tab.screenshot(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("portal").join("supervision.png"));

    // the JSON twins: a department sees its own, the centre all and the counts
    let own = tab.eval("(async () => (await (await fetch('/api/v1/notices')).json()).length)()");
    assert_eq!(own, 1);
    let other = department(&province, "630000/jiaotong");
    let mut tab2 = browser.tab();
    tab2.open(other.cmd(&["login", "--portal", &base]).ok().trim());
    let theirs = tab2.eval("(async () => (await (await fetch('/api/v1/notices')).json()).length)()");
    assert_eq!(theirs, 0, "another department's notices are not shown");
    // another department may not claim it: forbidden, not a mistake in the form
    assert_eq!(post(&mut tab2, &format!("/supervision/notices/{id}"), "{act: 'claim'}"), 403);
    assert_eq!(post(&mut tab2, &format!("/supervision/notices/{id}"), "{act: 'fly'}"), 400);
    let mut op = browser.tab();
    op.open(province.cmd(&["login"]).ok().trim());
    let counts = op.eval("(async () => JSON.stringify(await (await fetch('/api/v1/supervision')).json()))()");
    let counts = json(counts.as_str().unwrap().to_owned());
    let row = counts.as_array().unwrap().iter().find(|c| c["node"] == "630100/scjg").unwrap().clone();
    assert_eq!(
        (row["claimed_in_time"].as_u64(), row["checks"].as_u64(), row["with_feedback"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    op.open(&format!("{base}/supervision"));
    assert!(op.text().contains("各部门情况"), "{}", op.text());
}
