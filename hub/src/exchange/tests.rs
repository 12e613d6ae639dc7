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
        changes: vec![Change::Upsert(vec![Value::Text(format!("row{n}"))])],
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
            record("630100-7", "632522/minzheng", "630100/weijian", 2),
            // a decision of its own provider: accepted
            record("630100-8", "630102/minzheng", "632522/minzheng", 2),
        ],
        deliveries: vec![delivery("632500-1", 1), delivery("630100-8", 1)],
        progress: vec![],
        upto: 9,
    };
    x.merge(&batch, hainan, &|_| None, None).unwrap();
    assert_eq!(ids(&x), [("630100-8".to_owned(), 2), ("632500-1".to_owned(), 1)]);
    let held: Vec<(String, i64)> = {
        let mut s = x.conn.prepare("SELECT grant_id, n FROM deliveries").unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(held, [("630100-8".to_owned(), 1)], "only deliveries of its own providers' grants");
}

#[test]
fn merging_twice_or_older_versions_changes_nothing() {
    let (_dir, mut x) = province();
    let batch = ExchangeBatch {
        records: vec![record("630100-8", "630102/minzheng", "632522/minzheng", 2)],
        deliveries: vec![delivery("630100-8", 1), delivery("630100-8", 2)],
        progress: vec![],
        upto: 3,
    };
    x.merge(&batch, None, &|_| None, Some("pulled")).unwrap();
    let rev = x.meta("rev").unwrap();
    x.merge(&batch, None, &|_| None, Some("pulled")).unwrap();
    assert_eq!(x.meta("rev").unwrap(), rev, "a repeated pull stores nothing");
    assert_eq!(x.meta("pulled").unwrap(), 3);
    let older = ExchangeBatch { records: vec![record("630100-8", "630102/minzheng", "632522/minzheng", 1)], ..batch };
    x.merge(&older, None, &|_| None, None).unwrap();
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
    };
    x.merge(&granted, None, &|_| None, None).unwrap();
    // revoked afterwards: the record's newest version now comes after its deliveries
    let revoked = ExchangeBatch {
        records: vec![record("632500-1", "632522/minzheng", "630100/weijian", 3)],
        ..ExchangeBatch::default()
    };
    x.merge(&revoked, None, &|_| None, None).unwrap();
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
    let held: i64 = hainan.conn.query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0)).unwrap();
    assert_eq!(held, 2, "both deliveries arrived");
}

#[test]
fn each_child_is_sent_only_what_concerns_its_subtree() {
    let (_dir, mut x) = province();
    let batch = ExchangeBatch {
        records: vec![
            record("632500-1", "632522/minzheng", "630100/weijian", 2),
            record("630000-1", "630000/gongan", "630000/minzheng", 2),
        ],
        deliveries: vec![delivery("632500-1", 1), delivery("630000-1", 1)],
        progress: vec![],
        upto: 0,
    };
    x.merge(&batch, None, &|_| None, None).unwrap();
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
