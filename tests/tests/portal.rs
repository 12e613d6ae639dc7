//! The portal end to end, in a real headless Chromium: a department logs
//! in through the link `gdx-agent login` printed, searches 人口, files a
//! request; the provider logs in and approves it narrowed; the consumer
//! sees its grant and the rows delivered; the operator sees the tree and
//! verifies the audit log. Also refused: a form without the session's CSRF
//! token, a login link used twice or expired, an auditor's decision, a
//! department reading another's requests, a revoked department's session.
//! Screenshots of the main pages land in `target/tmp/portal/` (those in
//! docs/portal/ come from there).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gdx_tests::browser::{Browser, Tab};
use gdx_tests::{Agent, Hub, wait_until};

const PROVIDER: &str = "630000/gongan";
const CONSUMER: &str = "630000/minzheng";
const OTHER: &str = "630000/jiaoyu";

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("portal")
}

/// The population table and its catalogue entry (有条件共享), at the provider.
fn publish(provider: &Agent, dir: &Path) {
    let db = dir.join("hukou.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE people (id_number TEXT PRIMARY KEY, name TEXT, minzu TEXT, phone TEXT);
         INSERT INTO people VALUES ('632522198001010012', '卓玛', '藏族', '13800000001'),
                                   ('630102199002020023', '马丽', '回族', '13800000002'),
                                   ('630121197503030034', '李国强', '土族', '13800000003');",
    )
    .unwrap();
    provider.add_config(&format!(
        r#"[[resource]]
code = "hukou"
key = ["id_number"]
source = {{ kind = "sqlite", path = "{}", table = "people" }}

[resource.catalog]
code = "301001/000001"
class = "部门信息资源"
classification = ["人口", "户籍人口"]
name = "人口基本信息"
provider_name = "青海省公安厅"
provider_code = "11632522015603015M"
abstract = "全省户籍人口的公民身份号码、姓名、民族和联系电话"
format = "数据库"
format_type = "sqlite"
sharing_type = "有条件共享"
sharing_condition = "仅限社会救助审核使用"
legal_basis = "《社会救助暂行办法》第六十一条"
sharing_method = "接口"
open_to_public = false
update_cycle = "每日"
published = "2026-11-01"
items = [
  {{ name = "公民身份号码", column = "id_number", data_type = "C", length = 18, sensitive = true }},
  {{ name = "姓名", column = "name", data_type = "C", length = 50 }},
  {{ name = "民族", column = "minzu", data_type = "C", length = 20 }},
  {{ name = "联系电话", column = "phone", data_type = "C", length = 11, sensitive = true }},
]
"#,
        db.display()
    ));
    let (code, out, err) = provider.sync(&[]);
    assert_eq!(code, 0, "{out} {err}");
}

fn login(agent: &Agent, base: &str) -> String {
    agent.cmd(&["login", "--portal", base]).ok().trim().to_owned()
}

/// `fetch` a POST from the page with `fields` (and the page's CSRF token
/// unless `csrf` names another) and returns the status.
fn post(tab: &mut Tab<'_>, path: &str, fields: &str, csrf: Option<&str>) -> u64 {
    let token = match csrf {
        Some(t) => format!("'{t}'"),
        None => "document.querySelector('input[name=csrf]').value".into(),
    };
    let js = format!(
        "(async () => {{ const f = new URLSearchParams({fields}); f.set('csrf', {token}); \
         const r = await fetch('{path}', {{ method: 'POST', body: f, redirect: 'manual' }}); return r.status; }})()"
    );
    tab.eval(&js).as_u64().unwrap()
}

#[test]
fn a_request_filed_and_approved_in_the_portal_with_its_refusals() {
    gdx_tests::files_only("it writes hub.db itself");
    let Some(mut browser) = Browser::start() else { return };
    let mut hub = Hub::init("630000");
    hub.start();
    let base = format!("https://{}", hub.http);
    let tmp = tempfile::tempdir().unwrap();
    let provider = Agent::new();
    provider.enroll(&hub.token(PROVIDER, "1h")).ok();
    publish(&provider, tmp.path());
    let consumer = Agent::new();
    consumer.enroll(&hub.token(CONSUMER, "1h")).ok();
    let other = Agent::new();
    other.enroll(&hub.token(OTHER, "1h")).ok();

    // the consumer's data officer: log in, search 人口, file a request
    let request_id = {
        let mut tab = browser.tab();
        let link = login(&consumer, &base);
        tab.open(&link);
        assert!(tab.url().ends_with("/requests"), "{}", tab.url());
        assert!(tab.text().contains(CONSUMER), "{}", tab.text());
        // the link works once
        tab.open(&link);
        assert!(tab.text().contains("used already"), "{}", tab.text());
        tab.open(&format!("{base}/catalog?q=人口"));
        let text = tab.text();
        assert!(text.contains("人口基本信息") && text.contains("1 条资源"), "{text}");
        tab.screenshot(&shots().join("catalogue.png"));
        tab.act("document.querySelector('a[href=\"/catalog/301001/000001\"]').click()");
        assert!(tab.text().contains("申请使用"), "{}", tab.text());
        tab.screenshot(&shots().join("entry.png"));
        // a form without this session's token is refused
        assert_eq!(
            post(&mut tab, "/requests", "{code: '301001/000001', fields: '姓名', purpose: 'x'}", Some("forged")),
            403
        );
        tab.act(
            "document.querySelector('textarea[name=purpose]').value = '低保资格比对'; \
             document.querySelector('form[action=\"/requests\"]').submit()",
        );
        let text = tab.text();
        assert!(text.contains("已提交申请") && text.contains("待答复") && text.contains("答复期限"), "{text}");
        let id = tab.eval("document.querySelector('tbody td').innerText").as_str().unwrap().to_owned();
        assert!(id.starts_with("630000-"), "{id}");
        id
    };

    // the provider: approve it narrowed (no phone numbers)
    {
        let mut tab = browser.tab();
        tab.open(&login(&provider, &base));
        let text = tab.text();
        assert!(text.contains("向我申请的") && text.contains(&request_id), "{text}");
        tab.act(
            "const f = document.querySelector('form input[name=verdict][value=approve]').form; \
             f.querySelector('input[name=fields][value=phone]').checked = false; f.submit()",
        );
        let text = tab.text();
        assert!(text.contains("已授权"), "{text}");
        assert!(text.contains("id_number, name, minzu"), "narrowed to three fields: {text}");
        assert!(text.contains("脱敏: id_number"), "the ID numbers masked, not ticked to travel in clear: {text}");
        tab.screenshot(&shots().join("requests.png"));
    }

    // the rows arrive, and the consumer sees its grant and what was delivered
    wait_until(Duration::from_secs(30), "the consumer receives the granted rows", || {
        consumer.cmd(&["receive"]).ok().contains("3 row")
    });
    {
        let mut tab = browser.tab();
        tab.open(&login(&consumer, &base));
        let row = tab.eval("document.querySelector('tbody tr').innerText").as_str().unwrap().to_owned();
        assert!(row.contains("已授权") && row.contains("/ 3"), "granted, 3 rows delivered: {row}");
    }

    // another department sees none of it
    {
        let mut tab = browser.tab();
        tab.open(&login(&other, &base));
        assert!(!tab.text().contains(&request_id), "{}", tab.text());
        let count = tab.eval("fetch('/api/v1/requests').then(r => r.json()).then(j => j.count)");
        assert_eq!(count, 0);
        // and its session ends when it is revoked
        hub.cmd(&["revoke", OTHER]).ok();
        tab.open(&format!("{base}/requests"));
        assert!(tab.text().contains("请先登录"), "{}", tab.text());
    }

    // the operator: the tree, the audit log verified, the charts, in English too (once the hub has signed
    // a checkpoint: a log without one vouches for nothing, and this scenario can be done within a second)
    wait_until(Duration::from_secs(20), "the hub's first signed checkpoint", || {
        hub.cmd(&["audit", "verify"]).code == 0
    });
    {
        let mut tab = browser.tab();
        tab.open(hub.cmd(&["login"]).ok().trim());
        assert!(tab.url().ends_with("/tree"));
        let text = tab.text();
        assert!(text.contains(PROVIDER) && text.contains(CONSUMER), "{text}");
        tab.screenshot(&shots().join("tree.png"));
        tab.open(&format!("{base}/audit?kind=login"));
        assert!(tab.text().contains("\"role\":\"department\""), "{}", tab.text());
        tab.act("document.querySelector('form[action=\"/audit/verify\"]').submit()");
        let verdict = tab.eval("document.querySelector('.verdict').innerText").as_str().unwrap().to_owned();
        assert!(verdict.contains("verif") && !verdict.contains("does not verify"), "{verdict}");
        tab.screenshot(&shots().join("audit.png"));
        tab.open(&format!("{base}/charts"));
        assert_eq!(tab.eval("document.querySelectorAll('figure svg').length"), 5);
        tab.screenshot(&shots().join("charts.png"));
        tab.act("document.querySelector('a[href=\"/lang?to=en\"]').click()");
        assert!(tab.text().contains("Rows changed per department"), "{}", tab.text());
    }

    // an auditor reads, and cannot decide
    {
        let mut tab = browser.tab();
        tab.open(hub.cmd(&["login", "--auditor"]).ok().trim());
        assert!(tab.url().ends_with("/audit"));
        let path = format!("/requests/{request_id}/decide");
        assert_eq!(post(&mut tab, &path, "{verdict: 'revoke', reason: 'x'}", None), 403);
    }

    // a login link past its ten minutes is refused
    {
        let store = rusqlite::Connection::open(hub.dir.path().join("hub.db")).unwrap();
        let nonce = "ab".repeat(32);
        store
            .execute("INSERT INTO portal_logins (nonce, role, expires_at) VALUES (?1, 'operator', 1)", [&nonce])
            .unwrap();
        let mut tab = browser.tab();
        tab.open(&format!("{base}/login?t=H.{nonce}"));
        assert!(tab.text().contains("expired"), "{}", tab.text());
    }

    // every login is in the audit log; the grant stands
    let logins = || hub.cmd(&["audit", "list", "--kind", "login"]).ok();
    wait_until(Duration::from_secs(10), "six logins in the audit log", || {
        logins().lines().filter(|l| l.contains(" login ")).count() == 6
    });
    assert!(logins().contains("\"from\":\"127.0.0.1\""), "{}", logins());
    let portal = hub.cmd(&["audit", "list", "--kind", "portal"]).ok();
    assert!(portal.contains("verify"), "{portal}");
}

/// Without a browser: the session cookie's attributes, and a POST without
/// a session.
#[test]
fn the_session_cookie_is_secure_httponly_strict_and_forms_need_a_session() {
    let mut hub = Hub::init("630000");
    hub.start();
    let link = hub.cmd(&["login"]).ok();
    let path = link.trim().split_once("://").unwrap().1.split_once('/').unwrap().1;
    let (status, head, _) = hub.https(&format!("GET /{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    assert_eq!(status, 303);
    let cookie = head.lines().find(|l| l.starts_with("set-cookie: gdx_session=")).unwrap();
    for attr in ["secure", "httponly", "samesite=strict", "path=/", "max-age=28800"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let body = "csrf=x&verdict=deny&reason=y";
    let (status, _, page) = hub.https(&format!(
        "POST /requests/630000-1/decide HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&page).contains("未登录或会话已过期"));
    // visitors see only the public catalogue, and no tree
    let (status, _, _) = hub.https("GET /tree HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 401);
}
