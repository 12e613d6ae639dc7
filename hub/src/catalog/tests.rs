//! Unit tests of the hub's catalogue: recording versions, search, filters,
//! freshness, forwarding and display.

use gdx_certs::Ca;
use gdx_common::Role;

use super::*;

const NOW: i64 = 1_795_800_000; // 2026-11-27

struct Provider {
    node: NodeId,
    key: rcgen::KeyPair,
    cert: Vec<u8>,
}

fn provider(ca: &Ca, node: &str) -> Provider {
    let node = NodeId::parse(node).unwrap();
    let key = pki::new_key().unwrap();
    let cert = ca.issue_for_key(&key, &node, Role::Agent, NOW - 60, NOW + 86_400).unwrap().to_vec();
    Provider { node, key, cert }
}

fn entry(code: &str, provider: &NodeId, resource: &str) -> CatalogEntry {
    serde_json::from_value(serde_json::json!({
        "code": code, "resource": resource, "class": "部门信息资源", "classification": ["社会保障"],
        "name": "城乡低保对象信息", "provider": provider.to_string(), "provider_name": "青海省民政厅",
        "provider_code": "11630000015600017P", "abstract": "低保对象", "format": "数据库",
        "format_type": "sqlite", "items": [{ "name": "证件号码", "data_type": "C", "length": 18 }],
        "sharing_type": "无条件共享", "sharing_method": "接口", "open_to_public": false,
        "update_cycle": "每月", "published": "2026-11-01"
    }))
    .unwrap()
}

fn signed(p: &Provider, version: u64, withdrawn: bool, entry: CatalogEntry) -> SignedEntry {
    let body =
        gdx_common::catalog::encode_publication(&Publication { version, withdrawn, entry: entry.clone() }).unwrap();
    SignedEntry {
        origin: p.node.clone(),
        code: entry.code,
        version,
        signature: pki::sign(&p.key, &body).unwrap(),
        body,
        signer_chain: vec![p.cert.clone()],
    }
}

fn send(c: &mut Catalog, p: &Provider, env: SignedEntry) -> Result<(u64, bool), String> {
    match accept(c, Ok(p.cert.clone()), None, env, NOW) {
        Message::Catalogued(a) => Ok((a.held, a.recorded)),
        Message::CatalogRefused(r) => Err(r.reason),
        other => panic!("{other:?}"),
    }
}

#[test]
fn versions_move_forward_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Catalog::open(dir.path()).unwrap();
    let ca = Ca::create_root(DivisionCode::parse("630000").unwrap(), "测试", NOW - 3600).unwrap();
    let p = provider(&ca, "630000/minzheng");
    let e = entry("301001/000001", &p.node, "dibao");
    assert_eq!(send(&mut c, &p, signed(&p, 1, false, e.clone())), Ok((1, true)));
    assert_eq!(send(&mut c, &p, signed(&p, 1, false, e.clone())), Ok((1, true)), "a resend is a duplicate");
    let mut e2 = e.clone();
    e2.summary = "城乡低保对象的证件号码".into();
    assert_eq!(send(&mut c, &p, signed(&p, 2, false, e2.clone())), Ok((2, true)));
    assert_eq!(send(&mut c, &p, signed(&p, 1, false, e.clone())), Ok((2, false)), "older: not recorded");
    let mut e3 = e2.clone();
    e3.name = "另一个名称".into();
    assert_eq!(send(&mut c, &p, signed(&p, 2, false, e3)), Ok((2, false)), "same number, other contents");
    let got = c.get("301001/000001", NOW).unwrap().unwrap();
    assert_eq!((got.version, got.entry.summary.as_str()), (2, "城乡低保对象的证件号码"));
    assert!(send(&mut c, &p, signed(&p, 0, false, e)).unwrap_err().contains("start at 1"));
}

#[test]
fn forged_foreign_and_invalid_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Catalog::open(dir.path()).unwrap();
    let ca = Ca::create_root(DivisionCode::parse("630000").unwrap(), "测试", NOW - 3600).unwrap();
    let p = provider(&ca, "630000/minzheng");
    let q = provider(&ca, "632522/minzheng");
    let e = entry("301001/000001", &p.node, "dibao");

    let mut tampered = signed(&p, 1, false, e.clone());
    let at = tampered.body.len() / 2;
    tampered.body[at] ^= 1;
    assert!(send(&mut c, &p, tampered).unwrap_err().contains("altered after signing"));
    // signed by another key than the one established, or naming another provider
    let env = signed(&p, 1, false, e.clone());
    assert!(matches!(accept(&mut c, Ok(q.cert.clone()), None, env, NOW), Message::CatalogRefused(_)));
    let env = signed(&p, 1, false, e.clone());
    assert!(matches!(accept(&mut c, Err("no".into()), None, env, NOW), Message::CatalogRefused(_)));
    let stolen = signed(&q, 1, false, e.clone());
    assert!(send(&mut c, &q, stolen).unwrap_err().contains("do not match its envelope"));
    let mut invalid = entry("301001/000001", &p.node, "dibao");
    invalid.sharing_type = SharingType::Conditional;
    invalid.items.clear();
    let why = send(&mut c, &p, signed(&p, 1, false, invalid)).unwrap_err();
    assert!(why.contains("items:") && why.contains("sharing_condition:"), "{why}");
    assert!(c.list(&Filter::default(), NOW).unwrap().is_empty(), "nothing recorded");

    // a code belongs to its first provider
    assert_eq!(send(&mut c, &p, signed(&p, 1, false, e)), Ok((1, true)));
    let theirs = entry("301001/000001", &q.node, "dibao");
    assert!(
        send(&mut c, &q, signed(&q, 1, false, theirs)).unwrap_err().contains("already catalogued by 630000/minzheng")
    );
}

#[test]
fn one_live_entry_per_resource() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Catalog::open(dir.path()).unwrap();
    let ca = Ca::create_root(DivisionCode::parse("630000").unwrap(), "测试", NOW - 3600).unwrap();
    let p = provider(&ca, "630000/minzheng");
    let first = entry("301001/000001", &p.node, "dibao");
    let second = entry("301001/000002", &p.node, "dibao");
    assert_eq!(send(&mut c, &p, signed(&p, 1, false, first.clone())), Ok((1, true)));
    assert!(send(&mut c, &p, signed(&p, 1, false, second.clone())).unwrap_err().contains("withdraw that entry first"));
    assert_eq!(send(&mut c, &p, signed(&p, 2, true, first)), Ok((2, true)));
    assert_eq!(send(&mut c, &p, signed(&p, 1, false, second)), Ok((1, true)));
    let live = c.list(&Filter::default(), NOW).unwrap();
    assert_eq!(live.iter().map(|l| l.entry.code.as_str()).collect::<Vec<_>>(), ["301001/000002"]);
    let all = c.list(&Filter { withdrawn: true, ..Filter::default() }, NOW).unwrap();
    assert_eq!(all.len(), 2);
}
