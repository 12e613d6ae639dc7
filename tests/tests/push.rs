//! Protocol 3's push: a delivery stored for a consumer rings its side at
//! once (the child hub on its way pulls, the consumer's running agent
//! receives), so a change arrives without waiting for a poll; the agent's
//! own poll, while it watches, comes only every 30 s.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use gdx_tests::exchange::*;
use gdx_tests::wait_until;

#[test]
fn a_change_reaches_a_watching_consumer_before_any_poll_would() {
    let (_province, _hainan, xining, provider, mut consumer) = two_prefectures();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("huji.db");
    many_people(&db, 50, "632522");
    share_huji(&provider, &consumer, &xining, &db);
    consumer.start();
    let table = "minzheng_huji_632522";
    let count = |sql: &str| {
        let db = received(&consumer);
        (db.exists() && columns(&db, table).len() == 3).then(|| rows(&db, sql)[0][0].clone())
    };
    wait_until(Duration::from_secs(60), "the first delivery", || {
        count(&format!("SELECT count(*) FROM {table}")).as_deref() == Some("50")
    });
    // the agent now waits on its Watch: only a ring brings the change within 15 s
    sql(&db, "UPDATE people SET name = '改名' WHERE rowid = 7");
    synced(&provider);
    wait_until(Duration::from_secs(15), "the change, rung through 海南州, the province and 西宁", || {
        count(&format!("SELECT count(*) FROM {table} WHERE name = '改名'")).as_deref() == Some("1")
    });
    // told, not polling: the agent and 西宁 watch their hubs, and no watch failed
    let logs = [consumer.proc.as_ref().unwrap().output(), xining.proc.as_ref().unwrap().output()];
    for (log, peer) in logs.iter().zip(["the hub", "the parent hub"]) {
        assert!(log.contains(&format!("watching {peer} for deliveries")), "{log}");
        assert!(!log.contains("for deliveries failed"), "{log}");
    }
}
