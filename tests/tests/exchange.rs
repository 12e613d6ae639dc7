//! End-to-end tests of controlled exchange: requests filed at the
//! consumer's hub reach the provider through the province, decisions come
//! back, granted columns (masked where sensitive) are delivered exactly once
//! into the consumer's received database, lookups answer under a grant, and
//! revocation, denial and expiry stop everything.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use gdx_tests::{Agent, Hub, table_checksum, wait_until};

use gdx_tests::exchange::*;

/// Runs `gdx-agent receive` until `cond` holds on the received database.
fn receive_until(agent: &Agent, what: &str, cond: impl Fn(&Path) -> bool) {
    wait_until(Duration::from_secs(30), what, || {
        agent.cmd(&["receive"]);
        received(agent).exists() && cond(&received(agent))
    });
}

const TABLE_COND: &str = "minzheng_dibao_632522";
const TABLE_FREE: &str = "minzheng_huji_632522";

#[test]
fn requests_decisions_and_deliveries_across_two_prefectures() {
    let (province, _hainan, xining, provider, consumer) = two_prefectures();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("dibao.db");
    people(
        &db,
        &[
            ("632522198001010012", "卓玛", 640, "13907012345"),
            ("632522199002020023", "马秀兰", 700, "13897654321"),
            ("632522197503030034", "韩永福", 580, "13500001111"),
        ],
    );
    declare(&provider, "dibao", "301001/000001", "有条件共享", &db);
    declare(&provider, "huji", "301001/000002", "无条件共享", &db);
    declare(&provider, "jiating", "301001/000003", "不予共享", &db);
    synced(&provider);
    // the consumer's hub knows the whole catalogue once the province shared it down
    wait_until(Duration::from_secs(30), "the catalogue reaches 西宁", || {
        xining.cmd(&["catalog", "list"]).stdout.contains("301001/000003")
    });

    // 无条件共享: granted at once, sensitive fields masked
    let free = json(consumer.cmd(&[
        "request",
        "--resource",
        "301001/000002",
        "--fields",
        "姓名,联系电话",
        "--purpose",
        "走访核对",
        "--json",
    ]));
    assert_eq!(state_of(&free), "Granted");
    assert_eq!(free["masked"], serde_json::json!(["phone"]));
    // 不予共享: refused, citing the legal basis
    let none = consumer.cmd(&["request", "--resource", "301001/000003", "--fields", "姓名", "--purpose", "核对"]);
    assert_eq!(none.code, 1, "{none:?}");
    assert!(none.stdout.contains("不予共享") && none.stdout.contains("《社会救助暂行办法》第六十一条"), "{none:?}");
    // bad requests: an unknown field, an unknown entry, no purpose
    let bad = consumer.cmd(&["request", "--resource", "301001/000001", "--fields", "住址", "--purpose", "核对"]);
    let e = bad.fails();
    assert!(e.contains("has no field 住址; its fields are 公民身份号码, 姓名, 月保障金额, 联系电话"), "{e}");
    let unknown = consumer.cmd(&["request", "--resource", "999001/000001", "--fields", "姓名", "--purpose", "核对"]);
    assert!(unknown.fails().contains("the catalogue has no entry 999001/000001"));
    let aimless = consumer.cmd(&["request", "--resource", "301001/000001", "--fields", "姓名", "--purpose", " "]);
    assert!(aimless.fails().contains("--purpose"));

    // 有条件共享: pending until the provider decides, with the answer date
    let cond = json(consumer.cmd(&[
        "request",
        "--resource",
        "301001/000001",
        "--fields",
        "公民身份号码,姓名,月保障金额",
        "--purpose",
        "特困人员认定比对",
        "--json",
    ]));
    let id = cond["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("630100-"), "{id}");
    assert_eq!(state_of(&cond), "Pending");
    let again = consumer.cmd(&["request", "--resource", "301001/000001", "--fields", "姓名", "--purpose", "x"]);
    assert!(again.fails().contains(&format!("request {id} for 301001/000001 is already pending")));
    wait_until(Duration::from_secs(30), "the request reaches the provider", || {
        state_at(&provider, &id).as_deref() == Some("Pending")
    });
    let grants = province.cmd(&["grants"]).ok();
    assert!(grants.contains(&id) && grants.contains("pending") && grants.contains("特困人员认定比对"), "{grants}");
    // nothing is delivered before the decision
    let early = consumer.cmd(&["lookup", "--resource", "301001/000001", "632522198001010012"]);
    assert!(early.fails().contains("waits for the provider's decision"));

    // the provider narrows: no names; an approval cannot widen
    let wider = provider.cmd(&["approve", &id, "--fields", "联系电话"]);
    let e = wider.fails();
    assert!(e.contains("an approval can only narrow"), "{e}");
    let stranger = consumer.cmd(&["approve", &id]);
    assert!(stranger.fails().contains("only that provider can decide it"));
    let approved = provider.cmd(&["approve", &id, "--fields", "公民身份号码,月保障金额"]).ok();
    assert!(approved.contains("granted 301001/000001 to 630102/minzheng"), "{approved}");

    // delivery across the two prefectures, through the province
    receive_until(&consumer, "both grants delivered", |db| {
        columns(db, TABLE_COND).len() == 3 && columns(db, TABLE_FREE).len() == 3
    });
    // name was not granted; the ID number is sensitive: masked, and rows are keyed by a pseudonym
    assert_eq!(columns(&received(&consumer), TABLE_COND), ["gdx_key", "id_number", "amount"]);
    assert_eq!(
        rows(&received(&consumer), &format!("SELECT id_number, amount FROM {TABLE_COND} ORDER BY id_number")),
        [["632522********0012", "640"], ["632522********0023", "700"], ["632522********0034", "580"]]
    );
    // the key was not asked for here: it stays behind entirely; the phone number is masked
    assert_eq!(columns(&received(&consumer), TABLE_FREE), ["gdx_key", "name", "phone"]);
    assert_eq!(
        rows(&received(&consumer), &format!("SELECT phone FROM {TABLE_FREE} WHERE name = '韩永福'")),
        [["135****1111"]]
    );

    // changes at the source follow: an update, an insert, a delete
    people(
        &db,
        &[("632522198001010012", "卓玛", 660, "13907012345"), ("632522200104040045", "才让", 520, "13611112222")],
    );
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM people WHERE id_number = '632522197503030034'", [])
        .unwrap();
    synced(&provider);
    receive_until(&consumer, "the changes delivered", |db| {
        rows(db, &format!("SELECT count(*), sum(amount) FROM {TABLE_COND}")) == [["3", "1880"]]
    });

    // lookups from the consumer's own hub, under the grant, granted columns only; the key
    // is masked, so a row is found by its pseudonym, and a real key finds nothing
    let pseudonym = &rows(
        &received(&consumer),
        &format!("SELECT gdx_key FROM {TABLE_COND} WHERE id_number = '632522********0012'"),
    )[0][0];
    let found = consumer.cmd(&["lookup", "--resource", "301001/000001", pseudonym]).ok();
    assert!(
        found.contains("amount: 660") && !found.contains("卓玛") && found.contains("from hub 630100/hub"),
        "{found}"
    );
    let enumerate = consumer.cmd(&["lookup", "--resource", "301001/000001", "632522198001010012"]);
    let e = enumerate.fails();
    assert!(e.contains("under a pseudonym of each row's key (gdx_key)") && e.contains("grant the key in clear"), "{e}");
    let missing = consumer.cmd(&["lookup", "--resource", "301001/000001", "0123456789abcdef0123456789abcdef"]);
    assert!(missing.fails().contains("has no record with key 0123456789abcdef0123456789abcdef"));
    let ungranted = consumer.cmd(&["lookup", "--resource", "301001/000003", "632522198001010012"]);
    let e = ungranted.fails();
    assert!(e.contains("was refused") && e.contains("不予共享"), "{e}");
    // another department of the same hub gets nothing of it
    let other = Agent::new();
    other.enroll(&xining.token("630102/gongan", "1h")).ok();
    let nosy = other.cmd(&["lookup", "--resource", "301001/000001", "632522198001010012"]);
    assert!(nosy.fails().contains("630102/gongan holds no grant for 301001/000001"));

    // the province lists the grant with the rows delivered
    wait_until(Duration::from_secs(30), "delivery progress reaches the province", || {
        let list = json(province.cmd(&["grants", "--json"]));
        list.as_array().unwrap().iter().any(|g| g["id"] == id && g["rows_delivered"].as_u64() == Some(6))
    });

    // revocation: lookups and deliveries stop
    provider.cmd(&["revoke", &id, "--reason", "比对工作已结束"]).ok();
    wait_until(Duration::from_secs(30), "the revocation reaches the consumer's hub", || {
        consumer.cmd(&["lookup", "--resource", "301001/000001", "632522198001010012"]).stderr.contains("was revoked")
    });
    people(&db, &[("632522198001010012", "卓玛措", 999, "13907012345")]);
    synced(&provider);
    std::thread::sleep(Duration::from_secs(3));
    let after = consumer.cmd(&["receive"]).ok();
    assert!(after.contains("was revoked") && after.contains("比对工作已结束"), "{after}");
    assert_eq!(
        rows(&received(&consumer), &format!("SELECT amount FROM {TABLE_COND} WHERE id_number LIKE '%0012'")),
        [["660"]],
        "nothing after the revocation"
    );
    let status = consumer.cmd(&["status"]).ok();
    assert!(status.contains("received 301001/000001") && status.contains("STOPPED: the grant of request"), "{status}");
    // the free grant still flows
    receive_until(&consumer, "the unrevoked grant keeps flowing", |db| {
        rows(db, &format!("SELECT count(*) FROM {TABLE_FREE} WHERE name = '卓玛措'")) == [["1"]]
    });

    // a new request may be filed, and denied
    let second = json(consumer.cmd(&[
        "request",
        "--resource",
        "301001/000001",
        "--fields",
        "月保障金额",
        "--purpose",
        "复核",
        "--json",
    ]));
    let id2 = second["id"].as_str().unwrap().to_owned();
    wait_until(Duration::from_secs(30), "the second request reaches the provider", || {
        state_at(&provider, &id2).is_some()
    });
    provider.cmd(&["deny", &id2, "--reason", "用途与共享条件不符"]).ok();
    wait_until(Duration::from_secs(30), "the denial reaches the consumer", || {
        consumer.cmd(&["requests"]).stdout.contains("用途与共享条件不符")
    });
}

#[test]
fn expired_grants_stop_and_a_disconnected_consumer_resumes_exactly_once() {
    let mut hub = Hub::init("630000");
    hub.start();
    let provider = Agent::new();
    provider.enroll(&hub.token("630000/minzheng", "1h")).ok();
    let mut consumer = Agent::new();
    consumer.enroll(&hub.token("630000/weijian", "1h")).ok();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("dibao.db");
    many_people(&db, 15_000, "630000");
    declare(&provider, "dibao", "301001/000001", "无条件共享", &db);
    synced(&provider);
    let today = gdx_common::units::format_date(gdx_tests::now());
    let granted = json(consumer.cmd(&[
        "request",
        "--resource",
        "301001/000001",
        "--fields",
        "姓名,月保障金额",
        "--purpose",
        "健康档案比对",
        "--until",
        &today,
        "--json",
    ]));
    assert_eq!(state_of(&granted), "Granted");
    // the daemon receives; kill it again and again while it does, with the source changing
    let table = "minzheng_dibao_630000";
    for round in 0..6 {
        consumer.start();
        std::thread::sleep(Duration::from_millis(700 + 300 * round));
        consumer.proc.take().unwrap().kill();
        if round == 2 {
            sql(&db, "UPDATE people SET name = '改名' WHERE rowid = 1");
            people(&db, &[("630000199912319996", "新人", 2, "13900000002")]);
            synced(&provider);
        }
    }
    consumer.start();
    let expected = {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row("SELECT count(*) FROM people", [], |r| r.get::<_, i64>(0)).unwrap() as u64
    };
    wait_until(Duration::from_secs(60), "every row delivered", || {
        received(&consumer).exists() && columns(&received(&consumer), table).len() == 3 && {
            let n = rows(&received(&consumer), &format!("SELECT count(*) FROM {table}"));
            n == [[expected.to_string()]]
        }
    });
    consumer.proc.take().unwrap().kill();
    // the key was not granted, so rows are compared by their granted columns
    let cols = ["name", "amount"];
    assert_eq!(table_checksum(&received(&consumer), table, &cols), table_checksum(&db, "people", &cols));
    // one delivery per changeset of the provider's vault, each applied once
    let last_seq = rows(&gdx_tests::vault(&hub, "630000/minzheng"), "SELECT last_seq FROM _gdx_resources");
    assert_eq!(rows(&received(&consumer), "SELECT n FROM _gdx_received"), last_seq);
    assert_eq!(last_seq, [["4"]], "three changesets of 5,000 rows, then the change");

    // two days later the grant has expired: no delivery, no lookup
    hub.stop();
    hub.start_env(&[("GDX_CLOCK_OFFSET", "172800")]);
    let someone: String =
        rusqlite::Connection::open(&db).unwrap().query_row("SELECT id_number FROM people", [], |r| r.get(0)).unwrap();
    let expired = consumer.cmd(&["lookup", "--resource", "301001/000001", &someone]);
    let e = expired.fails();
    assert!(e.contains(&format!("expired after {today}")), "{e}");
    assert!(consumer.cmd(&["receive"]).ok().contains("expired after"));
}

#[test]
fn delivery_through_the_hierarchy_survives_kills_of_every_hub() {
    let (mut province, mut hainan, mut xining, provider, mut consumer) = two_prefectures();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("dibao.db");
    many_people(&db, 12_000, "632522");
    share_huji(&provider, &consumer, &xining, &db);
    consumer.start();
    // SIGKILL each hub in turn while the rows travel, with the source changing
    for round in 0..6u64 {
        std::thread::sleep(Duration::from_millis(400 + 250 * round));
        let hub = match round % 3 {
            0 => &mut province,
            1 => &mut hainan,
            _ => &mut xining,
        };
        hub.stop();
        if round == 3 {
            sql(&db, "UPDATE people SET name = '改名' WHERE rowid = 7");
            people(&db, &[("632522199912319993", "新人", 2, "1")]);
            synced(&provider);
        }
        hub.start();
    }
    let table = TABLE_FREE;
    wait_until(Duration::from_secs(90), "every row delivered through the hierarchy", || {
        received(&consumer).exists()
            && columns(&received(&consumer), table).len() == 3
            && rows(&received(&consumer), &format!("SELECT count(*) FROM {table}")) == [["12001"]]
            && rows(&received(&consumer), &format!("SELECT count(*) FROM {table} WHERE name = '改名'")) == [["1"]]
    });
    consumer.proc.take().unwrap().kill();
    // the key was not granted, so rows are compared by their granted columns
    let cols = ["name", "amount"];
    assert_eq!(table_checksum(&received(&consumer), table, &cols), table_checksum(&db, "people", &cols));
    let last_seq = rows(&gdx_tests::vault(&hainan, PROVIDER), "SELECT last_seq FROM _gdx_resources");
    assert_eq!(rows(&received(&consumer), "SELECT n FROM _gdx_received"), last_seq, "one delivery per changeset");
    // through the kills, every accepted changeset has exactly one audit entry at 海南州
    let n: usize = last_seq[0][0].parse().unwrap();
    wait_until(Duration::from_secs(20), "every changeset in 海南州's audit log", || {
        let out = hainan.cmd(&["audit", "list", "--kind", "changeset", "--resource", "huji", "--format", "jsonl"]).ok();
        let seqs: Vec<u64> = out
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["detail"]["seq"].as_u64().unwrap())
            .collect();
        seqs == (1..=n as u64).collect::<Vec<_>>()
    });
    // both prefectures' audit checkpoints are cosigned by the province, and every log verifies
    wait_until(Duration::from_secs(20), "the province cosigns both prefectures", || {
        let out = province.cmd(&["audit", "list", "--kind", "cosigned"]).ok();
        out.contains("632500/hub") && out.contains("630100/hub")
    });
    for hub in [&province, &hainan, &xining] {
        let v = hub.cmd(&["audit", "verify"]).ok();
        assert!(v.contains("checkpoints verify"), "{v}");
    }
    for hub in [&hainan, &xining] {
        wait_until(Duration::from_secs(20), "the prefecture holds the province's cosignature", || {
            hub.cmd(&["audit", "verify"]).ok().contains("cosigned by 630000/hub")
        });
    }
}

/// The province restored from a backup while deliveries flow through it
/// from 海南州 to 西宁: its change numbers leap past those handed out after
/// the backup, so 西宁 pulls what it records from then on, and 海南州, seeing
/// the leap, pushes again what the restore lost; the consumer's table
/// converges with the source, each delivery once.
#[test]
fn a_province_restored_from_a_backup_goes_on_delivering_between_prefectures() {
    gdx_tests::files_only("gdx-hub backup copies SQLite files");
    let (mut province, _hainan, xining, provider, consumer) = two_prefectures();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("dibao.db");
    many_people(&db, 100, "632522");
    share_huji(&provider, &consumer, &xining, &db);
    // the consumer's table holds as many rows as the source
    let count = |r: &Path| {
        let made = rows(r, &format!("SELECT count(*) FROM sqlite_master WHERE name = '{TABLE_FREE}'")) == [["1"]];
        made && rows(r, &format!("SELECT count(*) FROM {TABLE_FREE}")) == rows(&db, "SELECT count(*) FROM people")
    };
    receive_until(&consumer, "the first delivery", |r| count(r));
    let backup = tmp.path().join("backup");
    province.cmd(&["backup", "--out", backup.to_str().unwrap()]).ok();
    // a delivery after the backup, which the restore loses at the province
    people(&db, &[("632522199912319993", "新人", 2, "1")]);
    synced(&provider);
    receive_until(&consumer, "the delivery after the backup", |r| count(r));

    province.stop();
    for e in std::fs::read_dir(province.dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { std::fs::remove_dir_all(p).unwrap() } else { std::fs::remove_file(p).unwrap() }
    }
    province.cmd(&["restore", backup.to_str().unwrap()]).ok();
    province.start();
    // deliveries after the restore reach the consumer, in order
    people(&db, &[("632522199912319994", "新人二", 2, "1")]);
    synced(&provider);
    sql(&db, "UPDATE people SET name = '改名' WHERE rowid = 7");
    synced(&provider);
    wait_until(Duration::from_secs(60), "every delivery after the restore", || {
        consumer.cmd(&["receive"]);
        count(&received(&consumer))
            && rows(&received(&consumer), &format!("SELECT count(*) FROM {TABLE_FREE} WHERE name = '改名'")) == [["1"]]
    });
    let cols = ["name", "amount"];
    assert_eq!(table_checksum(&received(&consumer), TABLE_FREE, &cols), table_checksum(&db, "people", &cols));
}

/// A started province hub; 630000/minzheng sharing two people as 301001/000001
/// (无条件共享) from `dibao.db` in the returned directory, synced; and
/// 630000/weijian enrolled to ask for it.
fn one_hub_sharing_dibao() -> (Hub, Agent, Agent, tempfile::TempDir) {
    let mut hub = Hub::init("630000");
    hub.start();
    let (provider, consumer) = province_pair(&hub);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("dibao.db");
    people(&db, &[("630000198001010012", "卓玛", 640, "13907012345"), ("630000199002020023", "马秀兰", 700, "1")]);
    declare(&provider, "dibao", "301001/000001", "无条件共享", &db);
    synced(&provider);
    (hub, provider, consumer, tmp)
}

/// Every exchange leaves its trace in the hub's audit log, which verifies,
/// proves inclusion, exports a bundle that verifies offline, and names what
/// was tampered with.
#[test]
fn the_audit_log_records_the_exchange_and_catches_tampering() {
    gdx_tests::files_only("it tampers with audit.db itself");
    let (mut hub, _provider, consumer, tmp) = one_hub_sharing_dibao();
    let granted = json(consumer.cmd(&[
        "request",
        "--resource",
        "301001/000001",
        "--fields",
        "姓名",
        "--purpose",
        "核对",
        "--json",
    ]));
    let id = granted["id"].as_str().unwrap().to_owned();
    receive_until(&consumer, "the rows delivered", |db| rows(db, "SELECT rows FROM _gdx_received") == [["2"]]);
    let pseudonym = &rows(&received(&consumer), "SELECT gdx_key FROM minzheng_dibao_630000 WHERE name = '卓玛'")[0][0];
    consumer.cmd(&["lookup", "--resource", "301001/000001", pseudonym]).ok();
    hub.cmd(&["revoke", "630000/weijian"]).ok();
    let kinds = ["enrolled", "changeset", "catalogued", "request", "delivered", "lookup", "revoked"];
    wait_until(Duration::from_secs(20), "every event in the audit log", || {
        let out = hub.cmd(&["audit", "list", "--format", "jsonl"]).ok();
        kinds.iter().all(|k| out.contains(&format!("\"kind\":\"{k}\"")))
    });
    // filters: by request, by kind and node; CSV
    let by_request = hub.cmd(&["audit", "list", "--request", &id, "--format", "jsonl"]).ok();
    assert!(by_request.lines().count() >= 3 && by_request.lines().all(|l| l.contains(&id)), "{by_request}");
    let lookups = hub.cmd(&["audit", "list", "--kind", "lookup", "--node", "630000/weijian"]).ok();
    assert!(
        lookups.contains("\"found\":true") && !lookups.contains("630000198001010012"),
        "the key is pseudonymised: {lookups}"
    );
    assert!(hub.cmd(&["audit", "list", "--format", "csv"]).ok().starts_with("index,time,kind"));
    // a checkpoint follows within seconds; then everything verifies and proves
    wait_until(Duration::from_secs(10), "a checkpoint covering every entry", || {
        hub.cmd(&["audit", "verify"]).stdout.contains("checkpoints verify")
            && hub.cmd(&["audit", "prove", "--entry", "0"]).code == 0
    });
    let proof = json(hub.cmd(&["audit", "prove", "--entry", "0"]));
    assert!(proof["body"].as_str().unwrap().contains("\"kind\":\"enrolled\""), "{proof}");
    let bundle = tmp.path().join("bundle.json");
    hub.cmd(&["audit", "export", "--out", bundle.to_str().unwrap()]).ok();
    // offline: no hub directory at all; pinned to the key obtained independently
    let key = json(hub.cmd(&["audit", "prove", "--entry", "0"]))["public_key"].as_str().unwrap().to_owned();
    let b = bundle.to_str().unwrap();
    let ok =
        gdx_tests::run("gdx-hub", &["--data", "/nonexistent", "audit", "verify", "--bundle", b, "--key", &key]).ok();
    assert!(ok.contains("entries and"), "{ok}");
    let other_key = "00".repeat(32);
    let wrong = gdx_tests::run("gdx-hub", &["audit", "verify", "--bundle", b, "--key", &other_key]).fails();
    assert!(wrong.contains("not with the key"), "{wrong}");
    // one byte changed in the exported bundle
    let text = std::fs::read_to_string(&bundle).unwrap();
    std::fs::write(&bundle, text.replacen("630000/weijian", "630000/weijiam", 1)).unwrap();
    let bad = hub.cmd(&["audit", "verify", "--bundle", bundle.to_str().unwrap()]).fails();
    assert!(bad.contains("was changed after it was logged") || bad.contains("root signed"), "{bad}");
    // an entry deleted from the hub's own log
    hub.stop();
    let audit_db = hub.dir.path().join("audit.db");
    rusqlite::Connection::open(&audit_db).unwrap().execute("DELETE FROM entries WHERE idx = 1", []).unwrap();
    let deleted = hub.cmd(&["audit", "verify"]).fails();
    assert!(deleted.contains("entry 1 says it is entry 2"), "{deleted}");
}

/// A lookup is logged before it is answered: with the hub SIGKILLed again
/// and again while a consumer keeps looking up, every lookup the consumer
/// got an answer to is in the audit log, and nothing more than was asked.
#[test]
fn every_lookup_answered_is_logged_though_the_hub_is_killed() {
    let (mut hub, _provider, consumer, _tmp) = one_hub_sharing_dibao();
    consumer.cmd(&["request", "--resource", "301001/000001", "--fields", "姓名", "--purpose", "核对"]).ok();
    receive_until(&consumer, "the rows delivered", |db| rows(db, "SELECT rows FROM _gdx_received") == [["2"]]);
    let pseudonym =
        rows(&received(&consumer), "SELECT gdx_key FROM minzheng_dibao_630000 WHERE name = '卓玛'")[0][0].clone();
    let (answered, asked) = std::thread::scope(|s| {
        let looking = s.spawn(|| {
            let (mut answered, mut asked) = (0, 0);
            while asked < 150 {
                asked += 1;
                let out = consumer.cmd(&["lookup", "--timeout", "3s", "--resource", "301001/000001", &pseudonym]);
                if out.code == 0 {
                    assert!(out.stdout.contains("卓玛"), "{}", out.stdout);
                    answered += 1;
                }
            }
            (answered, asked)
        });
        let mut kills = 0;
        while !looking.is_finished() {
            std::thread::sleep(Duration::from_millis(150 + 70 * (kills % 5)));
            hub.stop();
            hub.start();
            kills += 1;
        }
        assert!(kills >= 3, "the hub was killed only {kills} times while the lookups ran");
        looking.join().unwrap()
    });
    assert!(answered > 0, "none of {asked} lookups was answered");
    // every answered lookup is logged once; a lookup cut after its entry is logged but not answered
    let logged = || {
        let out = hub.cmd(&["audit", "list", "--kind", "lookup", "--format", "jsonl"]).ok();
        out.lines().filter(|l| l.contains("\"found\":true") && l.contains("\"version\"")).count()
    };
    wait_until(Duration::from_secs(20), "every answered lookup in the audit log", || logged() >= answered);
    std::thread::sleep(Duration::from_secs(1));
    let n = logged();
    assert!(answered <= n && n <= asked, "{answered} answered, {n} logged, {asked} asked");
}

/// A prefecture hub that pushes a grant of the province's data for its own
/// consumer, marked granted in clear, and a decision in the province's
/// name, gets nothing: the province files the request again against its
/// own catalogue entry, refuses the decision, and logs both.
#[test]
fn a_prefecture_hub_cannot_grant_itself_the_provinces_data() {
    use gdx_common::grant::{RequestRecord, Status};
    use gdx_common::wire::{ExchangeBatch, Message, encode_frame};
    let mut province = Hub::init("630000");
    province.start();
    let hainan = Hub::join(&province.hub_token("632500/hub"));
    let provider = Agent::new();
    provider.enroll(&province.token("630000/minzheng", "1h")).ok();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("dibao.db");
    people(&db, &[("630000198001010012", "卓玛", 640, "13907012345")]);
    declare(&provider, "dibao", "301001/000001", "有条件共享", &db);
    synced(&provider);

    let forged = |id: &str, version: u64| RequestRecord {
        id: id.into(),
        consumer: gdx_common::NodeId::parse("632522/minzheng").unwrap(),
        provider: gdx_common::NodeId::parse("630000/minzheng").unwrap(),
        code: "301001/000001".into(),
        name: "低保".into(),
        resource: "dibao".into(),
        fields: vec!["id_number".into(), "name".into(), "phone".into()],
        purpose: "核对".into(),
        until: None,
        filed_at: gdx_tests::now(),
        status: Status::Granted,
        columns: vec!["id_number".into(), "name".into(), "phone".into()],
        masked: vec![],
        granted_until: None,
        decided_at: Some(gdx_tests::now()),
        version,
        salt: "00".repeat(16),
    };
    let push = Message::ExchangePush(ExchangeBatch {
        // a filing of a code the province does not catalogue, naming the resource all the same
        records: vec![
            forged("632500-1", 1),
            forged("632500-2", 2),
            RequestRecord { code: "301001/999999".into(), ..forged("632500-3", 1) },
        ],
        upto: 2,
        ..ExchangeBatch::default()
    });
    let root = std::fs::read_to_string(province.dir.path().join("ca.crt")).unwrap();
    let identity = (hainan.dir.path().join("hub.crt"), hainan.dir.path().join("hub.key"));
    let answers = gdx_tests::rawclient::upload_as(
        &province.addr,
        &root,
        identity,
        "632500/hub",
        gdx_common::Role::Hub,
        vec![encode_frame(&push).unwrap()],
    );
    assert!(matches!(answers[..], [Message::ExchangePushed(2)]), "{answers:?}");

    let grants = json(province.cmd(&["grants", "--json"]));
    let mut held: Vec<(&str, &str)> =
        grants.as_array().unwrap().iter().map(|g| (g["id"].as_str().unwrap(), g["state"].as_str().unwrap())).collect();
    held.sort();
    assert_eq!(
        held,
        [("632500-1", "pending"), ("632500-3", "refused")],
        "filed again as the province's entry says; the decision is not taken"
    );
    std::thread::sleep(Duration::from_secs(3));
    let after = json(province.cmd(&["grants", "--json"]));
    assert!(after.as_array().unwrap().iter().all(|g| g["produced"] == 0), "nothing is delivered: {after}");
    wait_until(Duration::from_secs(20), "the refusal and the refiling in the audit log", || {
        let refused = province.cmd(&["audit", "list", "--kind", "refused", "--format", "jsonl"]).ok();
        let refiled = province.cmd(&["audit", "list", "--kind", "decision", "--format", "jsonl"]).ok();
        refused.contains("632500-2")
            && refused.contains("decides for provider 630000/minzheng")
            && refused.contains("632500/hub")
            && refiled.contains("632500-1")
            && refiled.contains("refiled")
    });
}

/// With `at_rest_key` set, a hub keeps its vaults and exchange.db, and an
/// agent its received.db, encrypted (a plain vault from before is converted
/// when the hub starts again); without the key the files are not even
/// databases, and everything reads as before through the programs.
#[test]
fn stores_can_be_kept_encrypted_at_rest() {
    gdx_tests::files_only("at_rest_key encrypts SQLite files");
    let (mut hub, provider, consumer, tmp) = one_hub_sharing_dibao();
    let db = tmp.path().join("dibao.db");
    let vault = gdx_tests::vault(&hub, "630000/minzheng");
    let plain = |p: &Path| std::fs::read(p).unwrap().starts_with(b"SQLite format 3\0");
    assert!(plain(&vault));

    // turned on: the plain vault is encrypted when the hub starts again
    hub.stop();
    let hub_key = hub.encrypt_at_rest();
    hub.start();
    let key_file = consumer.encrypt_at_rest();
    people(&db, &[("630000200101010034", "才让", 520, "2")]);
    synced(&provider);
    json(consumer.cmd(&["request", "--resource", "301001/000001", "--fields", "姓名", "--purpose", "核对", "--json"]));
    wait_until(Duration::from_secs(30), "three rows received", || {
        consumer.cmd(&["receive"]).ok().contains("3 rows") || received_rows(&consumer, &key_file) == Some(3)
    });
    assert_eq!(received_rows(&consumer, &key_file), Some(3));

    for (what, file) in [
        ("the vault", vault.clone()),
        ("exchange.db", hub.dir.path().join("exchange.db")),
        ("received.db", received(&consumer)),
    ] {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.starts_with(b"SQLite format 3\0"), "{what} is encrypted");
        assert!(!bytes.windows("卓玛".len()).any(|w| w == "卓玛".as_bytes()), "{what} shows no name");
        let bare = rusqlite::Connection::open(&file).unwrap();
        assert!(bare.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).is_err(), "{what}");
    }
    // the hub reads its encrypted vault: three rows, under the key only
    let nodes = hub.cmd(&["nodes"]).ok();
    let line = nodes.lines().find(|l| l.contains("dibao")).unwrap_or_default();
    assert!(line.split_whitespace().any(|w| w == "3"), "{nodes}");
    let hex = std::fs::read_to_string(&hub_key).unwrap();
    let keyed = rusqlite::Connection::open(&vault).unwrap();
    keyed.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex.trim())).unwrap();
    assert_eq!(keyed.query_row("SELECT count(*) FROM dibao", [], |r| r.get::<_, i64>(0)).unwrap(), 3);
}

/// A hub whose exchange.db is encrypted, with no vault yet, asked to move
/// to PostgreSQL (at_rest_key taken out for it, as the two cannot go
/// together): refused before anything moves, every store left in its file.
#[test]
fn an_encrypted_exchange_store_stops_a_move_to_postgres_before_anything_moves() {
    let Some(pg) = gdx_tests::servers::Postgres::start() else { return };
    let mut hub = Hub::init_sqlite("630000");
    hub.encrypt_at_rest();
    hub.start();
    wait_until(Duration::from_secs(10), "exchange.db made", || hub.dir.path().join("exchange.db").exists());
    hub.terminate();
    let toml = hub.dir.path().join("hub.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.lines().filter(|l| !l.starts_with("at_rest_key")).collect::<Vec<_>>().join("\n"))
        .unwrap();
    pg.hold_vaults_of(&hub);
    let refused = hub.cmd(&["migrate", "--to", "postgres"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("exchange.db") && refused.stderr.contains("encrypted"), "{}", refused.stderr);
    assert!(refused.stderr.contains("nothing was moved"), "{}", refused.stderr);
    for kept in ["hub.db", "catalog.db", "audit.db", "exchange.db"] {
        assert!(hub.dir.path().join(kept).exists(), "{kept} stays");
        assert!(!hub.dir.path().join(format!("{kept}.migrated")).exists(), "{kept} is not set aside");
    }
}

/// Rows of the one table in the consumer's encrypted received.db, read with its key.
fn received_rows(consumer: &Agent, key_file: &Path) -> Option<i64> {
    let c = rusqlite::Connection::open(received(consumer)).ok()?;
    c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", std::fs::read_to_string(key_file).ok()?.trim())).ok()?;
    c.query_row("SELECT rows FROM _gdx_received", [], |r| r.get(0)).ok()
}
