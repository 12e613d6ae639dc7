//! Unit tests of the grant rules.

use super::*;
use crate::DivisionCode;
use crate::data::{Change, Changeset, Column, Value};
use crate::route::Router;
use crate::units::parse_date;

fn entry(sharing: &str) -> CatalogEntry {
    serde_json::from_value(serde_json::json!({
        "code": "301001/000001", "resource": "dibao", "class": "部门信息资源", "classification": ["社会保障"],
        "name": "城乡低保对象信息", "provider": "630000/minzheng", "provider_name": "青海省民政厅",
        "provider_code": "11630000015600017P", "abstract": "低保对象", "format": "数据库", "format_type": "sqlite",
        "items": [
            { "name": "证件号码", "column": "id_number", "data_type": "C", "length": 18, "sensitive": true },
            { "name": "姓名", "column": "name", "data_type": "C", "length": 50 },
            { "name": "月保障金额", "column": "amount", "data_type": "Y", "length": 10 }
        ],
        "sharing_type": sharing, "sharing_condition": "仅限社会救助审核", "legal_basis": "《社会救助暂行办法》",
        "sharing_method": "接口", "open_to_public": false, "update_cycle": "每月", "published": "2026-11-01"
    }))
    .unwrap()
}

fn request(fields: &[&str]) -> Request {
    Request {
        consumer: NodeId::parse("632522/minzheng").unwrap(),
        code: "301001/000001".into(),
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        purpose: "特困人员认定比对".into(),
        until: None,
        filed_at: 0,
    }
}

#[test]
fn hubs_take_records_only_from_the_side_that_may_say_them() {
    let d = |c: &str| DivisionCode::parse(c).unwrap();
    let n = |s: &str| NodeId::parse(s).unwrap();
    let province = Router { division: d("630000"), children: vec![d("632500"), d("630100")] };
    let prefecture = Router { division: d("632500"), children: vec![] };
    let other_hub = Router { division: d("630100"), children: vec![] };
    // 632522/minzheng (below 632500) asks 630000/minzheng (at the province)
    let filed = RequestRecord::filed("632500-7".into(), &entry("无条件共享"), &request(&["姓名"]), 0);
    let with = |f: &dyn Fn(&mut RequestRecord)| {
        let mut r = filed.clone();
        f(&mut r);
        r
    };
    let decided = with(&|r| r.version = 2);
    let other_prefecture = with(&|r| r.provider = n("630102/minzheng"));
    let refused = |r: Result<Taken, RecordRefused>| {
        r.map_err(|e| format!("{e:?}").split([' ', '{', '(']).next().unwrap().to_owned())
    };
    type Case<'a> = (&'a str, &'a Router, Side, Option<&'a RequestRecord>, RequestRecord, Result<Taken, &'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "a filing from the consumer's prefecture",
            &province,
            Side::Child(d("632500")),
            None,
            filed.clone(),
            Ok(Taken::Refile),
        ),
        (
            "a filing for a provider in another prefecture",
            &province,
            Side::Child(d("632500")),
            None,
            other_prefecture.clone(),
            Ok(Taken::Keep),
        ),
        (
            "that filing at the provider's prefecture",
            &other_hub,
            Side::Parent,
            None,
            other_prefecture.clone(),
            Ok(Taken::Refile),
        ),
        (
            "a filing news of which reaches the consumer's hub back",
            &prefecture,
            Side::Parent,
            Some(&filed),
            filed.clone(),
            Ok(Taken::Keep),
        ),
        (
            "a filing in the name of the consumer's hub, from above",
            &prefecture,
            Side::Parent,
            None,
            filed.clone(),
            Err("IdOfAnotherHub"),
        ),
        (
            "a decision by the provider's hub, at the consumer's hub",
            &prefecture,
            Side::Parent,
            Some(&filed),
            decided.clone(),
            Ok(Taken::Keep),
        ),
        (
            "a prefecture deciding for the province's provider",
            &province,
            Side::Child(d("632500")),
            Some(&filed),
            decided.clone(),
            Err("DecidedByAnotherHub"),
        ),
        (
            "a prefecture deciding for another prefecture's provider",
            &province,
            Side::Child(d("632500")),
            None,
            with(&|r| {
                r.version = 2;
                r.provider = n("630102/minzheng")
            }),
            Err("DecidedByAnotherHub"),
        ),
        (
            "the parent deciding for a provider below",
            &other_hub,
            Side::Parent,
            None,
            with(&|r| {
                r.version = 2;
                r.provider = n("630102/minzheng")
            }),
            Err("DecidedByAnotherHub"),
        ),
        (
            "a prefecture taking the province's ids",
            &province,
            Side::Child(d("632500")),
            None,
            with(&|r| r.id = "630000-7".into()),
            Err("IdOfAnotherHub"),
        ),
        (
            "a prefecture filing for a consumer outside it",
            &province,
            Side::Child(d("632500")),
            None,
            with(&|r| r.consumer = n("630102/gongan")),
            Err("ConsumerOutsideItsHub"),
        ),
        (
            "an id of the other prefecture",
            &province,
            Side::Child(d("632500")),
            None,
            with(&|r| {
                r.id = "630100-1".into();
                r.consumer = n("630102/gongan")
            }),
            Err("IdOfAnotherHub"),
        ),
        (
            "a consumer of the prefecture with a county's id",
            &province,
            Side::Child(d("632500")),
            None,
            with(&|r| r.id = "632522-1".into()),
            Ok(Taken::Refile),
        ),
        ("a malformed id", &province, Side::Child(d("632500")), None, with(&|r| r.id = "632500".into()), Err("BadId")),
        ("a zero id", &province, Side::Child(d("632500")), None, with(&|r| r.id = "632500-0".into()), Err("BadId")),
        ("version 0", &province, Side::Child(d("632500")), None, with(&|r| r.version = 0), Err("NoVersion")),
        (
            "a decision under another hub's id, never filed here",
            &province,
            Side::Child(d("632500")),
            None,
            with(&|r| {
                r.version = 2;
                r.id = "630100-1".into();
                r.consumer = n("630102/gongan");
                r.provider = n("632501/minzheng");
            }),
            Err("DecidedUnfiled"),
        ),
        (
            "a decision for a filing this hub made and lost",
            &prefecture,
            Side::Parent,
            None,
            decided.clone(),
            Ok(Taken::Keep),
        ),
        (
            "a later version that changes the fields",
            &prefecture,
            Side::Parent,
            Some(&filed),
            with(&|r| {
                r.version = 2;
                r.fields = vec!["id_number".into()]
            }),
            Err("Rewritten"),
        ),
        (
            "a later version that changes the consumer",
            &prefecture,
            Side::Parent,
            Some(&filed),
            with(&|r| {
                r.version = 2;
                r.consumer = n("632522/gongan")
            }),
            Err("Rewritten"),
        ),
    ];
    for (what, here, from, held, r, want) in cases {
        assert_eq!(refused(take_record(here, from, held, &r)), want.map_err(str::to_owned), "{what}");
    }
    let e = take_record(&province, Side::Child(d("632500")), Some(&filed), &decided).unwrap_err().to_string();
    assert_eq!(
        e,
        "version 2 of request 632500-7 decides for provider 630000/minzheng, whose hub is not on the side it came from"
    );
}

#[test]
fn a_provider_hub_files_again_and_refuses_what_it_does_not_catalogue() {
    let e = entry("有条件共享");
    let mut forged = RequestRecord::filed("632500-7".into(), &e, &request(&["姓名"]), 0);
    forged.grant(&e, vec!["id_number".into(), "name".into()], &["id_number".into()], None, 0);
    let again = refile(&forged, Some(&e));
    assert!(matches!(again.status, Status::Pending { .. }), "{again:?}");
    assert!(again.columns.is_empty() && again.fields == forged.fields && again.id == forged.id);
    let mut other = e.clone();
    other.provider = NodeId::parse("630000/gongan").unwrap();
    for entry in [None, Some(&other)] {
        let r = refile(&forged, entry);
        assert!(
            matches!(&r.status, Status::Refused { reason } if reason.contains("has no entry 301001/000001")),
            "{r:?}"
        );
        assert!(r.columns.is_empty() && r.masked.is_empty() && !r.is_live(0));
    }
}

#[test]
fn the_sharing_type_decides_on_filing() {
    let today = parse_date("2026-11-27").unwrap(); // a Friday
    assert_eq!(
        file(&entry("无条件共享"), &request(&["证件号码", "name"]), today),
        Filing::Granted { columns: vec!["id_number".into(), "name".into()] }
    );
    // 10 working days from Friday 2026-11-27: Friday 2026-12-11
    assert_eq!(
        file(&entry("有条件共享"), &request(&["姓名"]), today),
        Filing::Pending { answer_by_day: parse_date("2026-12-11").unwrap() }
    );
    match file(&entry("不予共享"), &request(&["姓名"]), today) {
        Filing::Refused(r @ Refused::NotShared { .. }) => {
            let r = r.to_string();
            assert!(r.contains("不予共享") && r.contains("《社会救助暂行办法》"), "{r}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_requests_are_refused_with_the_reason() {
    let today = parse_date("2026-11-27").unwrap();
    let e = entry("无条件共享");
    let refused = |r: &Request| match file(&e, r, today) {
        Filing::Refused(why) => why,
        other => panic!("{other:?}"),
    };
    assert!(
        refused(&request(&["住址", "姓名"]))
            .to_string()
            .contains("has no field 住址; its fields are 证件号码, 姓名, 月保障金额")
    );
    assert_eq!(refused(&request(&[])), Refused::NoFields);
    let mut r = request(&["姓名"]);
    r.purpose = " ".into();
    assert!(refused(&r).to_string().contains("--purpose"));
    let mut r = request(&["姓名"]);
    r.until = Some(today - 1);
    assert_eq!(refused(&r), Refused::EndInPast);
    let mut r = request(&["姓名"]);
    r.consumer = NodeId::parse("630000/minzheng").unwrap();
    assert!(matches!(refused(&r), Refused::OwnData { .. }));
    assert!(refused(&r).to_string().contains("needs no grant"));
}

#[test]
fn approvals_narrow_but_never_widen() {
    let asked = vec!["id_number".to_owned(), "name".to_owned()];
    assert_eq!(approve(&asked, None), Ok(asked.clone()));
    assert_eq!(approve(&asked, Some(&["name".to_owned()])), Ok(vec!["name".to_owned()]));
    assert!(approve(&asked, Some(&["amount".to_owned()])).unwrap_err().to_string().contains("only narrow"));
    assert_eq!(approve(&asked, Some(&[])), Err(Refused::NoneApproved));
}

#[test]
fn records_expire_are_revoked_and_cover_only_their_columns() {
    let now = parse_date("2026-11-27").unwrap() * 86_400;
    let mut req = request(&["证件号码", "姓名"]);
    req.until = Some(parse_date("2026-12-31").unwrap());
    let mut g = RequestRecord::filed("630000-1".into(), &entry("无条件共享"), &req, now);
    assert_eq!(g.status, Status::Granted);
    assert_eq!(g.masked, vec!["id_number".to_owned()], "sensitive items are masked by default");
    let end_of_day = parse_date("2026-12-31").unwrap() * 86_400 + 86_399;
    assert!(g.is_live(end_of_day) && g.refuse("NAME", end_of_day).is_none());
    assert!(g.refuse("amount", end_of_day).unwrap().to_string().contains("not among the fields"));
    assert!(!g.is_live(end_of_day + 1));
    assert_eq!(g.state(end_of_day + 1), "expired");
    let expired = g.refuse("name", end_of_day + 1).unwrap();
    assert!(matches!(expired, Closed::Expired { .. }) && expired.to_string().contains("expired after 2026-12-31"));
    g.status = Status::Revoked { reason: "审核结束".into(), at: now };
    assert!(!g.is_live(now) && g.refuse("name", now).unwrap().to_string().contains("revoked"));
    let pending = RequestRecord::filed("630000-2".into(), &entry("有条件共享"), &req, now);
    assert_eq!(pending.state(now), "pending");
    assert_eq!(pending.state(now + 15 * 86_400), "OVERDUE");
    let mut approved = pending.clone();
    approved.grant(&entry("有条件共享"), vec!["id_number".into()], &["ID_NUMBER".into()], None, now);
    assert!(approved.masked.is_empty() && approved.is_live(now + 1000 * 86_400));
    let refused = RequestRecord::filed("630000-3".into(), &entry("不予共享"), &req, now);
    assert!(refused.refusal(now).unwrap().to_string().contains("不予共享"));
}

#[test]
fn only_key_and_granted_columns_travel_and_sensitive_ones_are_masked() {
    let now = parse_date("2026-11-27").unwrap() * 86_400;
    let mut g =
        RequestRecord::filed("630000-1".into(), &entry("无条件共享"), &request(&["证件号码", "月保障金额"]), now);
    g.columns.push("phone".into());
    g.masked.push("phone".into());
    let col = |n: &str| Column { name: n.into(), decl_type: "TEXT".into() };
    let t = |s: &str| Value::Text(s.into());
    let cs = Changeset {
        origin: NodeId::parse("630000/minzheng").unwrap(),
        resource: crate::data::ResourceCode::parse("dibao").unwrap(),
        seq: 9,
        epoch: 1,
        columns: vec![col("case_no"), col("id_number"), col("name"), col("amount"), col("phone")],
        key: vec![0],
        changes: vec![
            Change::Upsert(vec![t("A1"), t("63252219800101001X"), t("卓玛"), Value::Integer(640), Value::Null]),
            Change::Upsert(vec![t("A2"), Value::Null, t("马秀兰"), Value::Integer(700), t("13907012345")]),
            Change::Delete(vec![t("A3")]),
        ],
        created_at: 5,
    };
    // the key case_no was not granted: rows travel under a pseudonym
    let d = deliverable(&cs, &g, 1, &|k| format!("p{k}"));
    let names: Vec<&str> = d.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["gdx_key", "id_number", "amount", "phone"], "name was not granted");
    assert_eq!((d.seq, d.key.clone()), (1, vec![0]));
    assert_eq!(d.changes[0], Change::Upsert(vec![t("pA1"), t("632522********001X"), Value::Integer(640), Value::Null]));
    assert_eq!(d.changes[1], Change::Upsert(vec![t("pA2"), Value::Null, Value::Integer(700), t("139****2345")]));
    assert_eq!(d.changes[2], Change::Delete(vec![t("pA3")]));
    assert!(d.validate().is_ok());
    // granted in clear, the key addresses the rows itself
    g.columns.push("case_no".into());
    let c = deliverable(&cs, &g, 2, &|k| format!("p{k}"));
    assert_eq!(c.columns[0].name, "case_no");
    assert_eq!(c.changes[2], Change::Delete(vec![t("A3")]));
    // granted but masked: masked, and rows travel under the pseudonym
    g.masked.push("case_no".into());
    let p = deliverable(&cs, &g, 3, &|k| format!("p{k}"));
    let names: Vec<&str> = p.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["gdx_key", "case_no", "id_number", "amount", "phone"]);
    assert_eq!(
        p.changes[0],
        Change::Upsert(vec![t("pA1"), t("**"), t("632522********001X"), Value::Integer(640), Value::Null])
    );
    assert!(p.validate().is_ok());
    assert_eq!(key_text(&[&t("A1"), &Value::Integer(7)]), "A1\u{1f}7");
    assert_eq!(row_json(&d.columns, &[t("A1"), Value::Null, Value::Integer(1), t("x")])["amount"], 1);
}

#[test]
fn a_fields_provenance_travels_with_it_in_clear_and_never_alone() {
    let now = parse_date("2026-11-27").unwrap() * 86_400;
    let mut g = RequestRecord::filed("630000-1".into(), &entry("无条件共享"), &request(&["证件号码", "姓名"]), now);
    g.masked.push("name".into());
    let col = |n: &str| Column { name: n.into(), decl_type: "TEXT".into() };
    let t = |s: &str| Value::Text(s.into());
    let cs = Changeset {
        origin: NodeId::parse("630000/hub").unwrap(),
        resource: crate::data::ResourceCode::parse("renkou").unwrap(),
        seq: 1,
        epoch: 1,
        columns: vec![
            col("id_number"),
            col("name"),
            col("name__source"),
            col("name__length"),
            col("amount"),
            col("amount__source"),
        ],
        key: vec![0],
        changes: vec![Change::Upsert(vec![
            t("63252219800101001X"),
            t("马秀兰"),
            t("{}"),
            Value::Integer(3),
            Value::Integer(1),
            t("{}"),
        ])],
        created_at: 5,
    };
    let d = deliverable(&cs, &g, 1, &|k| format!("p{k}"));
    let names: Vec<&str> = d.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["gdx_key", "id_number", "name", "name__source"],
        "amount was not granted, nor its source; what is computed of a masked name stays behind"
    );
    assert_eq!(
        d.changes[0],
        Change::Upsert(vec![t("p63252219800101001X"), t("632522********001X"), t("马*兰"), t("{}")])
    );
    // in the clear, the computed companion travels too
    g.masked.clear();
    let names: Vec<String> = deliverable(&cs, &g, 2, &|k| k.to_owned()).columns.into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["id_number", "name", "name__source", "name__length"]);
    // a department's changeset has no companions: a__b is a column like any other
    let dept = Changeset { origin: NodeId::parse("630000/minzheng").unwrap(), ..cs };
    let names: Vec<String> = deliverable(&dept, &g, 3, &|k| k.to_owned()).columns.into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["id_number", "name"]);
}

#[test]
fn working_days_skip_weekends() {
    let fri = parse_date("2026-11-27").unwrap();
    assert!(is_working_day(fri));
    assert!(!is_working_day(fri + 1) && !is_working_day(fri + 2));
    assert_eq!(add_working_days(fri, 1), fri + 3);
    assert_eq!(add_working_days(fri + 1, 1), fri + 3, "from a Saturday, Monday is the first working day");
}

#[test]
fn sensitive_values_are_masked() {
    assert_eq!(mask("11010519491231002X"), "110105********002X");
    assert_eq!(mask("13907012345"), "139****2345");
    assert_eq!(mask("卓玛"), "**");
    assert_eq!(mask("马秀兰"), "马*兰");
    assert_eq!(mask(""), "");
}
