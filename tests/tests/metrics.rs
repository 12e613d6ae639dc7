//! Operations: a hub and an agent serve Prometheus metrics on local
//! addresses — connected nodes, changesets and rows accepted, handshakes
//! refused by reason, the agent's outbox and acknowledged numbers — and
//! write JSON log lines with `--log-format json`.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::time::Duration;

use gdx_tests::{Agent, Hub, free_tcp_port, wait_until};

/// `GET /metrics` at `addr`, the body.
fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The value of the sample `name` (with its labels) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_hub_and_an_agent_tell_prometheus_what_operators_act_on() {
    gdx_tests::files_only("it reads the vault files' flush metrics");
    let mut hub = Hub::init("630000");
    let hub_metrics = format!("127.0.0.1:{}", free_tcp_port());
    let mut f = std::fs::OpenOptions::new().append(true).open(hub.dir.path().join("hub.toml")).unwrap();
    writeln!(f, "metrics = \"{hub_metrics}\"").unwrap();
    hub.start();

    let mut agent = Agent::new();
    agent.enroll(&hub.token("630000/gongan", "1h")).ok();
    let agent_metrics = format!("127.0.0.1:{}", free_tcp_port());
    agent.add_config(&format!("metrics = \"{agent_metrics}\""));
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("src.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT); INSERT INTO people VALUES ('1', '卓玛'), ('2', '才让');")
        .unwrap();
    agent.add_config(&format!(
        "[[resource]]\ncode = \"hukou\"\nkey = [\"id\"]\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"people\" }}\n",
        db.display()
    ));
    // a JSON object per log line
    let synced = agent.cmd(&["--log-format", "json", "sync"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    agent.start();
    wait_until(Duration::from_secs(30), "the agent's metrics", || {
        std::net::TcpStream::connect(&agent_metrics).is_ok()
            && sample(&scrape(&agent_metrics), "gdx_agent_connected") == Some(1.0)
    });
    let a = scrape(&agent_metrics);
    assert_eq!(sample(&a, "gdx_agent_acked_seq{resource=\"hukou\"}"), Some(1.0), "{a}");
    assert_eq!(sample(&a, "gdx_agent_outbox_changesets{resource=\"hukou\"}"), Some(0.0), "{a}");
    assert!(sample(&a, "gdx_agent_certificate_days_left").is_some_and(|d| d > 300.0), "{a}");

    let h = scrape(&hub_metrics);
    assert_eq!(sample(&h, "gdx_hub_nodes_connected{role=\"agent\"}"), Some(1.0), "{h}");
    assert_eq!(sample(&h, "gdx_hub_changesets_accepted_total"), Some(1.0), "{h}");
    assert_eq!(sample(&h, "gdx_hub_rows_accepted_total"), Some(2.0), "{h}");
    assert!(h.contains("gdx_hub_apply_seconds_count 1"), "{h}");
    // the changeset's vault was flushed before the acknowledgement, in one group
    assert!(sample(&h, "gdx_hub_vault_flush_seconds_count").is_some_and(|n| n >= 1.0), "{h}");
    assert!(sample(&h, "gdx_hub_vault_files_flushed_total").is_some_and(|n| n >= 1.0), "{h}");
    // the audit log takes the stores' entries twice a second
    wait_until(Duration::from_secs(10), "the audit log's size", || {
        sample(&scrape(&hub_metrics), "gdx_hub_audit_entries").is_some_and(|n| n >= 2.0)
    });

    // a revoked agent is refused, and counted under its reason
    agent.proc = None; // killed
    hub.cmd(&["revoke", "630000/gongan"]).ok();
    // the running hub reads the revocation within seconds
    wait_until(Duration::from_secs(30), "the revoked agent refused, and counted", || {
        agent.cmd(&["requests"]).code != 0
            && sample(&scrape(&hub_metrics), "gdx_hub_handshakes_refused_total{reason=\"revoked\"}")
                .is_some_and(|n| n >= 1.0)
    });
    // anything else is not found, and a stranger's garbage is dropped
    let mut s = std::net::TcpStream::connect(&hub_metrics).unwrap();
    s.write_all(b"GET /api HTTP/1.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
}

#[test]
fn log_lines_are_json_objects_with_log_format_json() {
    let hub = Hub::init("630000");
    let log = hub.dir.path().join("json.log");
    let mut run = std::process::Command::new(gdx_tests::bin("gdx-hub"))
        .args(["--data", hub.data(), "--log-format", "json", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // an agent that connects and is welcomed leaves log lines at the hub
    let agent = Agent::new();
    agent.enroll(&hub.token("630000/gongan", "1h")).ok();
    wait_until(Duration::from_secs(20), "the hub's log lines", || {
        let _ = agent.cmd(&["requests"]);
        std::fs::read_to_string(&log).unwrap().lines().count() >= 2
    });
    let _ = run.kill();
    let _ = run.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
}
