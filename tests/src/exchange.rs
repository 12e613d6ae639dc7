//! The controlled-exchange scenario the end-to-end tests share: a people
//! register at a county of 海南州 shared with a department of 西宁市,
//! through the province, and the helpers that read what was received.

use std::path::Path;

use gdx_common::DivisionCode;
use gdx_common::generate::Generator;

use crate::{Agent, Hub, Run};

/// The provider: 同德县民政局, under 海南州.
pub const PROVIDER: &str = "632522/minzheng";
/// The consumer: a department of 西宁市.
pub const CONSUMER: &str = "630102/minzheng";

pub fn people<S: AsRef<str>>(db: &Path, rows: &[(S, S, i64, S)]) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS people (id_number TEXT PRIMARY KEY, name TEXT, amount INTEGER, phone TEXT)",
    )
    .unwrap();
    let tx = c.unchecked_transaction().unwrap();
    for (id, name, amount, phone) in rows {
        tx.execute(
            "INSERT OR REPLACE INTO people VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id.as_ref(), name.as_ref(), amount, phone.as_ref()],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

pub fn sql(db: &Path, statements: &str) {
    rusqlite::Connection::open(db).unwrap().execute_batch(statements).unwrap();
}

/// `n` people living in `division`, from the shared seeded generator, with
/// a monthly amount.
pub fn many_people(db: &Path, n: u32, division: &str) {
    let mut generator = Generator::within(2026, DivisionCode::parse(division).unwrap());
    let many: Vec<(String, String, i64, String)> = (0..n)
        .map(|_| {
            let p = generator.person();
            (p.id_number, p.name, generator.rng().range(300, 1200) as i64, p.phone)
        })
        .collect();
    people(db, &many);
}

/// The province, 海南州 (the provider's side) and 西宁市 (the consumer's
/// side), all started; the provider's agent enrolled at 海南州, the
/// consumer's at 西宁.
pub fn two_prefectures() -> (Hub, Hub, Hub, Agent, Agent) {
    let mut province = Hub::init("630000");
    province.start();
    let mut hainan = Hub::join(&province.hub_token("632500/hub"));
    hainan.start();
    let mut xining = Hub::join(&province.hub_token("630100/hub"));
    xining.start();
    let provider = Agent::new();
    provider.enroll(&hainan.token(PROVIDER, "1h")).ok();
    let consumer = Agent::new();
    consumer.enroll(&xining.token(CONSUMER, "1h")).ok();
    (province, hainan, xining, provider, consumer)
}

/// Declares resource `code` over `db`'s people table as entry `entry` with `sharing`.
pub fn declare(agent: &Agent, code: &str, entry: &str, sharing: &str, db: &Path) {
    agent.add_config(&format!(
        r#"[[resource]]
code = "{code}"
key = ["id_number"]
source = {{ kind = "sqlite", path = "{}", table = "people" }}

[resource.catalog]
code = "{entry}"
class = "部门信息资源"
classification = ["社会保障"]
name = "同德县低保对象{code}"
provider_name = "同德县民政局"
provider_code = "11632522015603015M"
abstract = "低保对象的身份号码、姓名、保障金额和电话"
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
  {{ name = "公民身份号码", column = "id_number", data_type = "C", length = 18, sensitive = true }},
  {{ name = "姓名", column = "name", data_type = "C", length = 50 }},
  {{ name = "月保障金额", column = "amount", data_type = "N", length = 10 }},
  {{ name = "联系电话", column = "phone", data_type = "C", length = 11, sensitive = true }},
]
"#,
        db.display()
    ));
}

pub fn synced(agent: &Agent) {
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{out} {err}");
}

pub fn json(run: Run) -> serde_json::Value {
    serde_json::from_str(&run.ok()).unwrap()
}

/// True once `consumer`, after a `receive`, holds the name of every person
/// in the people table of `db` in its table of a grant of a `minzheng`
/// department's `dibao`: every change of the source delivered.
pub fn received_every_name(consumer: &Agent, db: &Path) -> bool {
    consumer.cmd(&["receive"]);
    let got = received(consumer);
    let names = |db: &Path, table: &str| rows(db, &format!("SELECT name FROM \"{table}\" ORDER BY name"));
    got.exists()
        && rows(&got, "SELECT name FROM sqlite_master WHERE name LIKE 'minzheng_dibao%'")
            .first()
            .is_some_and(|t| names(&got, &t[0]) == names(db, "people"))
}

/// The state of request `id` as `agent` sees it, if it has arrived.
pub fn state_at(agent: &Agent, id: &str) -> Option<String> {
    let list = json(agent.cmd(&["requests", "--json"]));
    list.as_array().unwrap().iter().find(|r| r["id"] == id).map(state_of)
}

pub fn state_of(r: &serde_json::Value) -> String {
    let s = &r["status"];
    s.as_str().map(str::to_owned).or_else(|| s.as_object().map(|o| o.keys().next().unwrap().clone())).unwrap()
}

pub fn received(agent: &Agent) -> std::path::PathBuf {
    agent.dir.path().join("received.db")
}

pub fn rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = c.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                other => format!("{other:?}"),
            })
            .collect())
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

pub fn columns(db: &Path, table: &str) -> Vec<String> {
    rows(db, &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// 630000/minzheng (the provider) and 630000/weijian (the consumer)
/// enrolled at the province hub `hub`.
pub fn province_pair(hub: &Hub) -> (Agent, Agent) {
    let provider = Agent::new();
    provider.enroll(&hub.token("630000/minzheng", "1h")).ok();
    let consumer = Agent::new();
    consumer.enroll(&hub.token("630000/weijian", "1h")).ok();
    (provider, consumer)
}

/// `people` people in `dir`/dibao.db, shared by `provider` as `dibao`
/// (301001/000001, 无条件共享), synced, and granted to `consumer`; returns
/// the source's path.
pub fn granted_dibao(provider: &Agent, consumer: &Agent, dir: &Path, people: u32) -> std::path::PathBuf {
    let db = dir.join("dibao.db");
    many_people(&db, people, "630000");
    declare(provider, "dibao", "301001/000001", "无条件共享", &db);
    synced(provider);
    ask_granted(consumer, "301001/000001");
    db
}

/// `consumer` asks for 姓名 and 月保障金额 of `entry` (无条件共享) and is
/// granted them at once.
pub fn ask_granted(consumer: &Agent, entry: &str) {
    let granted = json(consumer.cmd(&[
        "request",
        "--resource",
        entry,
        "--fields",
        "姓名,月保障金额",
        "--purpose",
        "入户走访",
        "--json",
    ]));
    assert_eq!(state_of(&granted), "Granted");
}

/// The people of `db` declared by the provider as 户籍 (301001/000002)
/// 无条件共享 and synced; once the entry reaches 西宁, the consumer asks
/// for 姓名 and 月保障金额 and is granted them at once.
pub fn share_huji(provider: &Agent, consumer: &Agent, xining: &Hub, db: &Path) {
    declare(provider, "huji", "301001/000002", "无条件共享", db);
    synced(provider);
    crate::wait_until(std::time::Duration::from_secs(30), "the catalogue reaches 西宁", || {
        xining.cmd(&["catalog", "list"]).stdout.contains("301001/000002")
    });
    ask_granted(consumer, "301001/000002");
}
