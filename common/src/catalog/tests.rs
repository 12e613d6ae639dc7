//! Table tests of the catalogue rules: entries, codes, items, freshness,
//! publications.

use super::*;

const TODAY: i64 = 20_784; // 2026-11-27

pub(crate) fn entry() -> CatalogEntry {
    serde_json::from_str(
        r#"{
            "code": "101001/000001",
            "resource": "hukou",
            "class": "基础信息资源",
            "classification": ["人口", "户籍人口"],
            "name": "人口基本信息",
            "provider": "630000/gongan",
            "provider_name": "青海省公安厅",
            "provider_code": "11630000015600017P",
            "abstract": "全省户籍人口的身份证号码、姓名、性别、民族、出生日期和住址",
            "format": "数据库",
            "format_type": "sqlite",
            "items": [
                { "name": "公民身份号码", "column": "id_number", "data_type": "C", "length": 18 },
                { "name": "姓名", "data_type": "C", "length": 50 }
            ],
            "sharing_type": "无条件共享",
            "sharing_method": "接口",
            "open_to_public": false,
            "update_cycle": "每日",
            "published": "2026-11-01"
        }"#,
    )
    .unwrap()
}

fn fields(e: &CatalogEntry) -> Vec<String> {
    e.validate(TODAY).err().unwrap_or_default().into_iter().map(|f| f.field).collect()
}

#[test]
fn unknown_fields_and_values_are_refused() {
    let mut v: serde_json::Value = serde_json::to_value(entry()).unwrap();
    v["sharing_type"] = "随便共享".into();
    assert!(serde_json::from_value::<CatalogEntry>(v.clone()).is_err());
    v["sharing_type"] = "conditional".into();
    assert_eq!(serde_json::from_value::<CatalogEntry>(v.clone()).unwrap().sharing_type, SharingType::Conditional);
    v["colour"] = "red".into();
    assert!(serde_json::from_value::<CatalogEntry>(v).is_err());
}

#[test]
fn chinese_keys_are_accepted() {
    let mut v: serde_json::Value = serde_json::to_value(entry()).unwrap();
    let name = v.as_object_mut().unwrap().remove("name").unwrap();
    v["信息资源名称"] = name;
    assert_eq!(serde_json::from_value::<CatalogEntry>(v).unwrap(), entry());
}

#[test]
fn a_good_entry_passes() {
    assert_eq!(entry().validate(TODAY), Ok(()));
}

#[test]
fn codes() {
    for (c, ok) in [
        ("1/1", true),
        ("101/000123", true),
        ("101001/1", true),
        ("1010012/9", true),
        ("10/1", false),
        ("1010/1", false),
        ("10100/1", false),
        ("101", false),
        ("a01/1", false),
        ("101/", false),
        ("/1", false),
        ("101/1/2", false),
        ("１01/1", false),
    ] {
        assert_eq!(check_code(c).is_ok(), ok, "{c}");
    }
}

#[test]
fn sharing_rules() {
    let mut e = entry();
    e.sharing_type = SharingType::Conditional;
    assert_eq!(fields(&e), ["sharing_condition", "sharing_type"], "base resources are unconditional");
    e.class = CatalogClass::Theme;
    e.classification = vec!["社会保障".into()];
    assert_eq!(fields(&e), ["sharing_condition"]);
    e.sharing_condition = Some("仅限社会救助审核使用".into());
    assert_eq!(fields(&e), Vec::<String>::new());
    e.sharing_type = SharingType::NotShared;
    assert_eq!(fields(&e), ["legal_basis"]);
    e.class = CatalogClass::Base;
    e.classification = vec!["人口".into()];
    assert_eq!(fields(&e), ["legal_basis", "sharing_type"]);
    e.class = CatalogClass::Department;
    e.legal_basis = Some("《中华人民共和国居民身份证法》第十九条".into());
    assert_eq!(fields(&e), Vec::<String>::new());
    e.open_to_public = true;
    assert_eq!(fields(&e), ["open_to_public"]);
}

#[test]
fn classification_rules() {
    let mut e = entry();
    e.classification = vec![];
    assert_eq!(fields(&e), ["classification"]);
    e.classification = vec!["人口".into(), "a".into(), "b".into(), "c".into(), "d".into()];
    assert_eq!(fields(&e), ["classification"]);
    e.classification = vec!["社会保障".into()];
    assert_eq!(fields(&e), ["classification"], "a base entry outside the five base resources");
    e.class = CatalogClass::Theme;
    assert_eq!(fields(&e), Vec::<String>::new());
}

#[test]
fn item_rules_name_the_item() {
    let mut e = entry();
    e.items.push(InfoItem {
        name: "姓名".into(),
        column: Some("xm".into()),
        data_type: DataType::C,
        length: 0,
        sensitive: false,
        kind: None,
    });
    e.items.push(InfoItem {
        name: "住址".into(),
        column: Some("ID_NUMBER".into()),
        data_type: DataType::C,
        length: 9,
        sensitive: false,
        kind: None,
    });
    e.items.push(InfoItem {
        name: "bad name".into(),
        column: None,
        data_type: DataType::N,
        length: 3,
        sensitive: false,
        kind: None,
    });
    let errs = e.validate(TODAY).unwrap_err();
    let f: Vec<&str> = errs.iter().map(|x| x.field.as_str()).collect();
    assert_eq!(f, ["items[3]", "items[4]", "items[5]"]);
    assert!(errs[0].message.contains("appears twice") && errs[0].message.contains("数据长度 0"), "{}", errs[0]);
    assert!(errs[1].message.contains("used by two"));
    e.items.clear();
    assert_eq!(fields(&e), ["items"]);
}

#[test]
fn one_message_per_field_at_fault() {
    let mut e = entry();
    e.code = "10/1".into();
    e.name = " ".into();
    e.summary = String::new();
    e.provider_code = "91350100M000100Y44".into();
    e.provider_name = String::new();
    e.format_type = " ".into();
    e.published = "2026-02-30".into();
    e.related = vec!["x".into(), "101001/000001".into()];
    assert_eq!(
        fields(&e),
        ["code", "name", "provider_name", "provider_code", "abstract", "format_type", "published", "related"]
    );
    e.published = "2099-01-01".into();
    assert!(e.validate(TODAY).unwrap_err().iter().any(|f| f.message.contains("future")));
}

#[test]
fn items_are_matched_against_the_source() {
    let e = entry();
    assert_eq!(e.check_columns(&["ID_NUMBER", "姓名"]), Ok(()));
    let err = e.check_columns(&["id_number", "xm", "address"]).unwrap_err();
    assert!(err.contains("no source column: 姓名") && err.contains("no 信息项: xm, address"), "{err}");
}

#[test]
fn search_terms_and_two_character_chinese() {
    assert_eq!(search_terms(" 人口  户籍，法人、 人口"), ["人口", "户籍", "法人"]);
    assert_eq!(search_terms("人口\u{3000}基本"), ["人口", "基本"]);
    // what the hub's search looks in: names, abstract, items, columns, codes
    let text = entry().search_text();
    for found in ["人口", "身份", "姓名", "id_number", "户籍人口", "hukou", "101001/000001", "630000/gongan"]
    {
        assert!(text.contains(found), "{found}");
    }
    assert!(!text.contains("法人"));
}

#[test]
fn labels_parse_in_chinese_and_english() {
    assert_eq!("每日".parse::<UpdateCycle>(), Ok(UpdateCycle::Daily));
    assert_eq!("Daily".parse::<UpdateCycle>(), Ok(UpdateCycle::Daily));
    assert_eq!("base".parse::<CatalogClass>(), Ok(CatalogClass::Base));
    let e = "sometimes".parse::<UpdateCycle>().unwrap_err();
    assert!(e.contains("每日") && e.contains("不定时"), "{e}");
}

#[test]
fn overdue_after_the_cycle() {
    let day = 86_400;
    let f = freshness(UpdateCycle::Daily, Some(10 * day), 0, 12 * day + 1);
    assert!(!f.overdue);
    assert_eq!(f.due_by, Some(13 * day));
    assert!(freshness(UpdateCycle::Daily, Some(10 * day), 0, 13 * day).overdue);
    // never changed: counted from when it was catalogued
    assert!(freshness(UpdateCycle::Weekly, None, 0, 10 * day).overdue);
    assert!(!freshness(UpdateCycle::Weekly, None, 0, 9 * day).overdue);
    assert!(!freshness(UpdateCycle::Irregular, None, 0, 10_000 * day).overdue);
}

#[test]
fn publications_round_trip_and_bad_bytes_are_errors() {
    let p = Publication { version: 3, withdrawn: false, entry: entry() };
    assert_eq!(decode_publication(&encode_publication(&p).unwrap()), Ok(p));
    assert!(decode_publication(b"{").is_err());
    assert!(decode_publication(&vec![b' '; MAX_PUBLICATION_BYTES + 1]).is_err());
}
