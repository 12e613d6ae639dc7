//! Unit tests of the exchange store: filing, decisions, routing between
//! hubs, deliveries, lookups.

use super::*;

fn node(s: &str) -> NodeId {
    NodeId::parse(s).unwrap()
}

fn record(id: &str, consumer: &str, provider: &str, version: u64) -> RequestRecord {
    RequestRecord {
        id: id.into(),
        consumer: node(consumer),
        provider: node(provider),
        code: "301001/000001".into(),
        name: "低保".into(),
        resource: "dibao".into(),
        fields: vec!["name".into()],
        purpose: "比对".into(),
        until: None,
        filed_at: 0,
        status: if version == 1 { Status::Pending { answer_by_day: 10 } } else { Status::Granted },
        columns: vec!["name".into()],
        masked: vec![],
        granted_until: None,
        decided_at: None,
        version,
        salt: String::new(),
    }
}

fn delivery(grant: &str, n: u64) -> SignedDelivery {
    use gdx_common::data::{Change, Column, ResourceCode, Value};
    let cs = Changeset {
        origin: node("630000/minzheng"),
        resource: ResourceCode::parse("dibao").unwrap(),
        seq: n,
        epoch: 1,
        columns: vec![Column { name: "id".into(), decl_type: "TEXT".into() }],
        key: vec![0],
        changes: vec![Change::Upsert(vec![Value::Text(format!("row{n}").into())])],
        created_at: 0,
    };
    SignedDelivery {
        grant: grant.into(),
        n,
        replace: n == 1,
        rows: 1,
        body: encode_changeset(&cs).unwrap(),
        signature: vec![],
        signer_chain: vec![],
    }
}

fn province() -> (tempfile::TempDir, Exchange) {
    let dir = tempfile::tempdir().unwrap();
    let mut x = Exchange::open(dir.path(), node("630000/hub")).unwrap();
    x.set_children(vec![DivisionCode::parse("632500").unwrap(), DivisionCode::parse("630100").unwrap()]);
    (dir, x)
}

fn ids(x: &Exchange) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = x.list(0).unwrap().into_iter().map(|l| (l.record.id, l.record.version)).collect();
    v.sort();
    v
}

/// Stores records and deliveries as this hub's own, bypassing the rules for records from elsewhere.
fn put(x: &mut Exchange, records: &[RequestRecord], deliveries: &[SignedDelivery]) {
    let router = x.router.clone();
    let tx = x.conn.begin().unwrap();
    for r in records {
        Exchange::store(&tx, r).unwrap();
    }
    for d in deliveries {
        let r = records.iter().find(|r| r.id == d.grant).unwrap();
        Exchange::store_delivery(&router, &tx, r, d, &super::delivery::encode_delivery(d).unwrap()).unwrap();
    }
    tx.commit().unwrap();
}

fn lookups(dir: &Path) -> Lookups {
    let log = crate::store::Store::open(&HubPaths::new(dir)).unwrap();
    Lookups::open(dir, node("630000/hub"), std::sync::Arc::new(std::sync::Mutex::new(log))).unwrap()
}

/// A grant of 海南州's data for the province's consumer 630000/gongan,
/// with its first delivery stored here, and the lookups that answer it.
fn delivered_here() -> (tempfile::TempDir, Exchange, RequestRecord, Lookups) {
    let (dir, mut x) = province();
    let granted = record("630000-1", "630000/gongan", "632522/minzheng", 2);
    put(&mut x, std::slice::from_ref(&granted), &[delivery("630000-1", 1)]);
    let l = lookups(dir.path());
    (dir, x, granted, l)
}

fn outbox(conn: &impl Sql, kind: &str) -> Vec<serde_json::Value> {
    let mut s = conn.prepare("SELECT event FROM audit_outbox ORDER BY id").unwrap();
    let all: Vec<String> = s.query_map(args![], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    all.iter().map(|j| serde_json::from_str::<serde_json::Value>(j).unwrap()).filter(|e| e["kind"] == kind).collect()
}

#[test]
fn a_child_hub_speaks_only_for_its_subtree() {
    let (_dir, mut x) = province();
    let hainan = Some(DivisionCode::parse("632500").unwrap());
    let batch = ExchangeBatch {
        records: vec![
            // filed below 海南州 for its own consumer: accepted
            record("632500-1", "632522/minzheng", "630100/weijian", 1),
            // a "request" of a 西宁 consumer: not 海南州's to file
            record("632500-2", "630102/minzheng", "630000/gongan", 1),
            // a decision on 西宁's data: not 海南州's to make
            record("632500-7", "632522/minzheng", "630100/weijian", 2),
            // a decision of its own provider: accepted
            record("630100-8", "630102/minzheng", "632522/minzheng", 2),
            // an id of the province's own
            record("630000-3", "632522/minzheng", "630100/weijian", 1),
        ],
        deliveries: vec![delivery("632500-1", 1), delivery("630100-8", 1)],
        progress: vec![],
        upto: 9,
        ..ExchangeBatch::default()
    };
    // 630100-8 was filed at 西宁 and reached the province before its decision
    put(&mut x, &[record("630100-8", "630102/minzheng", "632522/minzheng", 1)], &[]);
    x.merge(&batch, hainan, &|_| None, None).unwrap();
    assert_eq!(ids(&x), [("630100-8".to_owned(), 2), ("632500-1".to_owned(), 1)]);
    let held: Vec<(String, i64)> = {
        let mut s = x.conn.prepare("SELECT grant_id, n FROM deliveries").unwrap();
        s.query_map(args![], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(held, [("630100-8".to_owned(), 1)], "only deliveries of its own providers' grants");
    let refused = outbox(&x.conn, "refused");
    let of: Vec<&str> = refused.iter().map(|e| e["request"].as_str().unwrap()).collect();
    assert_eq!(of, ["632500-2", "632500-7", "630000-3"], "each refused record is evidence in the log");
    assert!(refused[1]["detail"]["reason"].as_str().unwrap().contains("decides for provider 630100/weijian"));
    assert_eq!(refused[1]["detail"]["from"], "632500/hub");
}

#[test]
fn a_filing_for_a_provider_here_is_filed_again_whatever_it_claims() {
    let (_dir, mut x) = province();
    let hainan = Some(DivisionCode::parse("632500").unwrap());
    let entry: CatalogEntry = serde_json::from_value(serde_json::json!({
        "code": "301001/000001", "resource": "dibao", "class": "部门信息资源", "classification": ["社会保障"],
        "name": "低保", "provider": "630000/minzheng", "provider_name": "青海省民政厅",
        "provider_code": "11630000015600017P", "abstract": "低保对象", "format": "数据库", "format_type": "sqlite",
        "items": [
            { "name": "证件号码", "column": "id_number", "data_type": "C", "length": 18, "sensitive": true },
            { "name": "姓名", "column": "name", "data_type": "C", "length": 50 }
        ],
        "sharing_type": "有条件共享", "sharing_condition": "审核", "legal_basis": "《社会救助暂行办法》",
        "sharing_method": "接口", "open_to_public": false, "update_cycle": "每月", "published": "2026-11-01"
    }))
    .unwrap();
    // 海南州 claims the province's 民政 granted every column in clear at filing
    let mut forged = record("632500-4", "632522/minzheng", "630000/minzheng", 1);
    forged.fields = vec!["id_number".into(), "name".into()];
    forged.columns = forged.fields.clone();
    forged.status = Status::Granted;
    forged.salt = "00".repeat(16);
    let mut unknown = forged.clone();
    unknown.id = "632500-5".into();
    unknown.code = "301001/999999".into();
    let batch = ExchangeBatch { records: vec![forged, unknown], ..ExchangeBatch::default() };
    x.merge(&batch, hainan, &|code| (code == entry.code).then(|| entry.clone()), None).unwrap();
    let pending = x.record("632500-4").unwrap().unwrap();
    assert!(matches!(pending.status, Status::Pending { .. }) && pending.columns.is_empty(), "{pending:?}");
    assert_eq!(pending.version, 2);
    let refused = x.record("632500-5").unwrap().unwrap();
    assert!(matches!(&refused.status, Status::Refused { reason } if reason.contains("has no entry 301001/999999")));
    assert!(x.produce(0).unwrap() == 0, "nothing is delivered");
    // the secret a child sent is not taken; the records sent on carry none
    assert!(x.batch_since(0, None).unwrap().records.iter().all(|r| r.salt.is_empty()));
    let decisions = outbox(&x.conn, "decision");
    assert_eq!(decisions.len(), 2, "both refilings are logged");
}

#[test]
fn merging_twice_or_older_versions_changes_nothing() {
    let (_dir, mut x) = province();
    let batch = ExchangeBatch {
        records: vec![record("630100-8", "630102/minzheng", "632522/minzheng", 2)],
        deliveries: vec![delivery("630100-8", 1), delivery("630100-8", 2)],
        progress: vec![],
        upto: 3,
        ..ExchangeBatch::default()
    };
    let hainan = Some(DivisionCode::parse("632500").unwrap());
    put(&mut x, &[record("630100-8", "630102/minzheng", "632522/minzheng", 1)], &[]);
    x.merge(&batch, hainan, &|_| None, Some("pulled")).unwrap();
    let rev = x.meta("rev").unwrap();
    x.merge(&batch, hainan, &|_| None, Some("pulled")).unwrap();
    assert_eq!(x.meta("rev").unwrap(), rev, "a repeated pull stores nothing");
    assert_eq!(x.meta("pulled").unwrap(), 3);
    let older = ExchangeBatch { records: vec![record("630100-8", "630102/minzheng", "632522/minzheng", 1)], ..batch };
    x.merge(&older, Some(DivisionCode::parse("630100").unwrap()), &|_| None, None).unwrap();
    assert!(outbox(&x.conn, "refused").is_empty(), "old news is no evidence of anything");
    assert_eq!(ids(&x), [("630100-8".to_owned(), 2)]);
}

#[test]
fn a_delivery_travels_with_its_record_when_the_record_changed_later() {
    let (_dir, mut x) = province();
    let granted = ExchangeBatch {
        records: vec![record("632500-1", "632522/minzheng", "630100/weijian", 2)],
        deliveries: vec![delivery("632500-1", 1), delivery("632500-1", 2)],
        progress: vec![],
        upto: 0,
        ..ExchangeBatch::default()
    };
    let xining = Some(DivisionCode::parse("630100").unwrap());
    put(&mut x, &[record("632500-1", "632522/minzheng", "630100/weijian", 1)], &[]);
    x.merge(&granted, xining, &|_| None, None).unwrap();
    // revoked afterwards: the record's newest version now comes after its deliveries
    let revoked = ExchangeBatch {
        records: vec![record("632500-1", "632522/minzheng", "630100/weijian", 3)],
        ..ExchangeBatch::default()
    };
    x.merge(&revoked, xining, &|_| None, None).unwrap();
    // 海南州 pulls one item at a time, from the start
    let child_dir = tempfile::tempdir().unwrap();
    let mut hainan = Exchange::open(child_dir.path(), node("632500/hub")).unwrap();
    let (mut since, end) = (0, x.meta("rev").unwrap());
    while since < end {
        let batch = x.batch(since, Some(DivisionCode::parse("632500").unwrap()), 1).unwrap();
        hainan.merge(&batch, None, &|_| None, Some("pulled")).unwrap();
        assert!(batch.upto > since, "every pull moves on");
        since = batch.upto;
    }
    assert_eq!(ids(&hainan), [("632500-1".to_owned(), 3)]);
    let held: i64 = hainan.conn.query_row("SELECT count(*) FROM deliveries", args![], |r| r.get(0)).unwrap();
    assert_eq!(held, 2, "both deliveries arrived");
}

#[test]
fn each_child_is_sent_only_what_concerns_its_subtree() {
    let (_dir, mut x) = province();
    put(
        &mut x,
        &[
            record("632500-1", "632522/minzheng", "630100/weijian", 2),
            record("630000-1", "630000/gongan", "630000/minzheng", 2),
        ],
        &[delivery("632500-1", 1), delivery("630000-1", 1)],
    );
    let to = |d: &str| x.batch_since(0, Some(DivisionCode::parse(d).unwrap())).unwrap();
    let xining = to("630100");
    assert_eq!(xining.records.len(), 1, "西宁 provides 632500-1");
    assert!(xining.deliveries.is_empty(), "its consumer is in 海南州");
    let hainan = to("632500");
    assert_eq!((hainan.records.len(), hainan.deliveries.len()), (1, 1));
    assert_eq!(hainan.upto, xining.upto, "both reach the end");
    // the province's own consumers' deliveries go to no child
    assert!(to("632500").deliveries.iter().all(|d| d.grant == "632500-1"));
}

#[test]
fn lookups_are_limited_per_grant_and_find_pseudonymised_rows_only_by_pseudonym() {
    // a grant of 海南州's data for the province's consumer, delivered here
    let (dir, mut x, _, mut l) = delivered_here();
    let consumer = node("630000/gongan");
    let look = |l: &mut Lookups, key: &str| l.lookup(&consumer, "301001/000001", &[key.to_owned()], 0).unwrap();
    l.set_limit(2);
    assert!(look(&mut l, "row1").unwrap().row.is_some());
    assert!(look(&mut l, "row9").unwrap().row.is_none());
    let e = look(&mut l, "row1").unwrap_err();
    assert!(matches!(e, Refusal::RateLimited { limit: 2, .. }), "{e}");
    assert!(e.to_string().contains("grant 630000-1 allows 2 lookups a minute at 630000/hub"), "{e}");
    let _ = look(&mut l, "row1").unwrap_err();
    // lookups are logged in hub.db's outbox, under the grant's version
    let hub_db = Db::open(&HubPaths::new(dir.path()), Which::Hub, &crate::store::Store::schema()).unwrap();
    let logged = outbox(&hub_db, "lookup");
    assert_eq!(logged.len(), 3, "two answered and the first refusal: {logged:?}");
    assert!(logged.iter().all(|e| e["detail"]["version"] == 2 && e["request"] == "630000-1"), "{logged:?}");
    assert!(outbox(&x.conn, "lookup").is_empty(), "exchange.db's outbox keeps no lookup");
    let limited: Vec<&serde_json::Value> = logged.iter().filter(|e| e["detail"]["refused"] == "rate limit").collect();
    assert_eq!(limited.len(), 1, "the first refusal of the minute is logged");
    assert_eq!(limited[0]["detail"]["limit_per_minute"], 2);

    // rows that travel under a pseudonym are found by it, never by a real key
    use gdx_common::data::{Change, Column, ResourceCode, Value};
    let mut pseudonymised = record("630000-2", "630000/gongan", "632522/minzheng", 2);
    pseudonymised.code = "301001/000002".into();
    let cs = Changeset {
        origin: node("632522/minzheng"),
        resource: ResourceCode::parse("dibao").unwrap(),
        seq: 1,
        epoch: 1,
        columns: vec![
            Column { name: grant::PSEUDONYM_COLUMN.into(), decl_type: "TEXT".into() },
            Column { name: "name".into(), decl_type: "TEXT".into() },
        ],
        key: vec![0],
        changes: vec![Change::Upsert(vec![
            Value::Text(pseudonym("s", "632522198001010012").into()),
            Value::Text("卓玛".into()),
        ])],
        created_at: 0,
    };
    let d =
        SignedDelivery { grant: "630000-2".into(), body: encode_changeset(&cs).unwrap(), ..delivery("630000-2", 1) };
    put(&mut x, &[pseudonymised], &[d]);
    l.set_limit(100);
    let by = |l: &mut Lookups, key: &str| l.lookup(&consumer, "301001/000002", &[key.to_owned()], 0).unwrap();
    assert!(by(&mut l, &pseudonym("s", "632522198001010012")).unwrap().row.unwrap().contains("卓玛"));
    let e = by(&mut l, "632522198001010012").unwrap_err();
    assert!(matches!(e, Refusal::NotAPseudonym { .. }) && e.code() == gdx_common::wire::RefusalCode::NotAuthorized);
    assert!(e.to_string().contains("under a pseudonym of each row's key (gdx_key)"), "{e}");
    assert!(
        by(&mut l, &pseudonym("s", "632522198001010023")).unwrap().row.is_none(),
        "an unknown pseudonym finds nothing"
    );
}

#[test]
fn a_lookup_is_answered_while_a_delivery_is_merged() {
    let (_dir, x, granted, mut l) = delivered_here();
    // a merge holds the exchange store's writer (and its lock) while it applies a delivery
    let tx = x.conn.begin().unwrap();
    let router = x.router.clone();
    Exchange::store_delivery(&router, &tx, &granted, &delivery("630000-1", 2), &[]).unwrap();
    let started = std::time::Instant::now();
    let a = l.lookup(&node("630000/gongan"), "301001/000001", &["row1".to_owned()], 0).unwrap().unwrap();
    // the store waits 10 s for a writer: an answer well before that did not wait for this one
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the lookup waited for the merge");
    assert!(a.row.is_some() && a.as_of == 1, "the last commit is read: {a:?}");
    tx.commit().unwrap();
    let a = l.lookup(&node("630000/gongan"), "301001/000001", &["row2".to_owned()], 0).unwrap().unwrap();
    assert!(a.row.is_some() && a.as_of == 2, "and the merge once committed: {a:?}");
}

#[test]
fn a_lookup_that_cannot_be_logged_is_not_answered() {
    let (dir, _x, _, mut l) = delivered_here();
    // hub.db refuses the entry (its outbox gone, as a full or broken disk would refuse it)
    let hub_db = Db::open(&HubPaths::new(dir.path()), Which::Hub, &crate::store::Store::schema()).unwrap();
    hub_db.execute_batch("DROP TABLE audit_outbox").unwrap();
    let answer = l.lookup(&node("630000/gongan"), "301001/000001", &["row1".to_owned()], 0);
    let Err(e) = answer else { panic!("a lookup was answered without its entry: {answer:?}") };
    assert!(matches!(e, ExchangeError::Hub(_)) && e.to_string().contains("hub"), "{e}");
}

#[test]
fn a_child_hub_notifies_only_for_enterprises_of_its_area_and_claims_only_for_its_departments() {
    use gdx_common::creditcode::CreditCode;
    use gdx_common::notice::{Matter, Notice};
    let (_dir, mut x) = province();
    let hainan = Some(DivisionCode::parse("632500").unwrap());
    let matter = Matter {
        name: "食品经营许可".into(),
        keywords: vec!["食品".into()],
        licensing: "scjg".into(),
        level: Default::default(),
    };
    let now = clock();
    let notice = |id: &str, registered: &str, to: &str, source: &str| {
        let code = CreditCode::compose(&format!("91{registered}"), "MA7G0001").unwrap();
        let mut n = Notice::issued(id.into(), &code, "青海某食品店", &matter, node(to), now);
        n.source = format!("{source} faren changeset 1");
        n
    };
    let batch = ExchangeBatch {
        notices: vec![
            // an enterprise of 海南州 registered there: taken
            notice("632500-1", "632522", "632522/scjg", "632500/scjg"),
            // in the province's name: refused
            notice("630000-9", "632522", "632522/scjg", "632500/scjg"),
            // an enterprise of 西宁: not 海南州's to notify
            notice("632500-2", "630121", "630121/scjg", "632500/scjg"),
        ],
        upto: 3,
        ..ExchangeBatch::default()
    };
    x.merge(&batch, hainan, &|_| None, None).unwrap();
    let held: Vec<String> = x.notices(None).unwrap().into_iter().map(|n| n.id).collect();
    assert_eq!(held, ["632500-1"]);
    // a province notice for 西宁's department, claimed in 海南州's name: refused
    let mut ours = notice("630000-1", "630121", "630121/scjg", "630000/scjg");
    let tx = x.conn.begin().unwrap();
    Exchange::store_notice(&tx, &ours).unwrap();
    tx.commit().unwrap();
    ours.claim(&node("630121/scjg"), now).unwrap();
    let claim = ExchangeBatch { notices: vec![ours], upto: 4, ..ExchangeBatch::default() };
    x.merge(&claim, hainan, &|_| None, None).unwrap();
    assert_eq!(x.notice("630000-1").unwrap().unwrap().state_at(now), "pending");
    let refused = outbox(&x.conn, "refused");
    let of: Vec<&str> = refused.iter().map(|e| e["request"].as_str().unwrap()).collect();
    assert_eq!(of, ["630000-9", "632500-2", "630000-1"], "each refused notice is evidence in the log");
}

/// A hub restored from a backup: a child hub that had pulled past the
/// backup's last change number (numbers lost with the restore) still pulls
/// what is recorded after it, and sees the leap; the next request number
/// is one no request filed after the backup can hold.
#[test]
fn after_a_restore_numbers_leap_past_what_children_saw() {
    let (_dir, mut x) = province();
    put(&mut x, &[record("630100-1", "630102/minzheng", "632522/minzheng", 1)], &[]);
    let backup_rev = x.meta("rev").unwrap();
    let child_pulled = backup_rev + 3;
    x.leap_after_restore().unwrap();
    put(&mut x, &[record("630100-2", "630102/minzheng", "632522/minzheng", 1)], &[]);
    let batch = x.batch_since(child_pulled, Some(DivisionCode::parse("630100").unwrap())).unwrap();
    assert_eq!(batch.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["630100-2"]);
    assert!(super::parent_restored(child_pulled, batch.upto));
    assert!(!super::parent_restored(0, backup_rev), "an ordinary first pull is no restore");
    let tx = x.conn.begin().unwrap();
    assert_eq!(Exchange::next(&tx, "request_id").unwrap(), super::REQUEST_ID_GAP + 1);
}
