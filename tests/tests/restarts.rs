//! A hub killed and started again: its agents and child hubs learn it at
//! their next packet (the restarted hub resets the connections it no
//! longer knows, with a reset key derived from its own key) instead of
//! sitting on a dead connection until the idle timeout, and dial again
//! after the first wait each time it restarts (five restarts in a row at
//! most, `Backoff::FRESH_STARTS`); a child hub's `gdx-hub nodes` dates its
//! link from the new connection.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use gdx_tests::*;

#[test]
fn a_restarted_hub_resets_the_connections_it_no_longer_knows() {
    gdx_tests::files_only("it reads hub.db's connections itself");
    let tmp = tempfile::tempdir().unwrap();
    let mut province = Hub::init("630000");
    province.start();
    let mut agent = people_agent(&province, "630000/gongan", &tmp.path().join("a.db"), &[("1", "卓玛")]);
    agent.start();
    let mut prefecture = Hub::join(&province.hub_token("632500/hub"));
    prefecture.start();
    wait_until(Duration::from_secs(30), "the agent connects", || agent.connected());
    wait_until(Duration::from_secs(30), "the prefecture connects", || {
        prefecture.proc.as_ref().unwrap().output().contains("connected to the parent hub")
    });

    province.stop();
    let restarted = now();
    province.start();
    // the agent's old connection ends by the province's reset, not by its idle timeout
    wait_until(Duration::from_secs(60), "the agent connects again", || {
        agent.proc.as_ref().unwrap().output().matches("connected to 630000/hub").count() >= 2
    });
    let log = agent.proc.as_ref().unwrap().output();
    assert!(log.contains("reset the connection"), "{log}");
    assert!(!log.contains("stopped answering"), "{log}");
    wait_until(Duration::from_secs(60), "the prefecture connects again", || {
        prefecture.proc.as_ref().unwrap().output().matches("connected to the parent hub").count() >= 2
    });
    let log = prefecture.proc.as_ref().unwrap().output();
    assert!(log.contains("reset the connection"), "{log}");

    // restarted again and again, a minute apart at most: each time the agent and the child hub dial
    // again after the first wait (about a second), not after a wait that doubles with each restart
    for round in 3..=5 {
        province.stop();
        province.start();
        wait_until(Duration::from_secs(60), "the agent connects after another restart", || {
            agent.proc.as_ref().unwrap().output().matches("connected to 630000/hub").count() >= round
        });
        wait_until(Duration::from_secs(60), "the prefecture connects after another restart", || {
            prefecture.proc.as_ref().unwrap().output().matches("connected to the parent hub").count() >= round
        });
    }
    for (who, log) in [
        ("the agent", agent.proc.as_ref().unwrap().output()),
        ("the prefecture", prefecture.proc.as_ref().unwrap().output()),
    ] {
        let waits: Vec<f64> = log
            .lines()
            .filter(|l| l.contains("retry_in_s="))
            .filter_map(|l| l.split("retry_in_s=").nth(1)?.split_whitespace().next()?.parse().ok())
            .collect();
        assert!(waits.len() >= 4, "{who}: {waits:?}\n{log}");
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("retry_in_s=") || l.contains("connected")).collect();
        assert!(
            waits.iter().all(|w| *w <= 1.2),
            "{who} waited longer after a restart: {waits:?}\n{}",
            lines.join("\n")
        );
    }

    // a child hub killed and started dates its link from the new connection
    prefecture.stop();
    let child_restarted = now();
    prefecture.start();
    wait_until(Duration::from_secs(60), "the prefecture connects after its restart", || {
        prefecture.proc.as_ref().unwrap().output().contains("connected to the parent hub")
    });
    let since: i64 = rusqlite::Connection::open(prefecture.dir.path().join("hub.db"))
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key = 'parent_since'", [], |r| r.get::<_, String>(0))
        .unwrap()
        .parse()
        .unwrap();
    assert!(since >= child_restarted, "connected since {since}, restarted at {child_restarted}");
    let line = prefecture.cmd(&["nodes"]).ok();
    assert!(line.contains("connected since"), "{line}");
    // and the province counts the child's new connection from when it came, not from the one before the kill
    wait_until(Duration::from_secs(30), "the province records the new connection", || {
        let c = rusqlite::Connection::open(province.dir.path().join("hub.db")).unwrap();
        let open: i64 = c
            .query_row("SELECT since FROM connections WHERE node = '632500/hub' AND until IS NULL", [], |r| r.get(0))
            .unwrap_or(0);
        open >= child_restarted
    });
    assert!(restarted <= child_restarted);
}
