//! The province's root rollover, as docs/operator.md tells the operator to
//! run it: `gdx-hub ca rollover` makes the next root and its
//! cross-certificate; agents and the prefecture hub (and the agents below
//! it) take it over their connections; `gdx-hub ca status` shows who does;
//! `gdx-hub ca switch` with the province stopped; then everything connects
//! as before, the prefecture's intermediate CA is renewed under the new
//! root over its link, new enrolments are under the new root, and a node
//! that missed the whole rollover still connects through the
//! cross-certificate and takes the new root.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use gdx_certs::pki::{self, Identity};
use gdx_certs::trust;
use gdx_tests::*;

fn certs(path: &Path) -> Vec<Vec<u8>> {
    trust::read(&std::fs::read_to_string(path).unwrap())
}

fn ca_status(hub: &Hub) -> serde_json::Value {
    serde_json::from_str(&hub.cmd(&["ca", "status", "--json"]).ok()).unwrap()
}

fn missing(status: &serde_json::Value, node: &str) -> serde_json::Value {
    status["nodes"].as_array().unwrap().iter().find(|n| n["node"] == node).unwrap()["missing"].clone()
}

fn syncs(agent: &Agent, db: &Path, rows: &[(&str, &str)]) {
    people_table(db, rows);
    let out = agent.cmd(&["sync"]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn the_root_rolls_over_and_every_node_carries_on() {
    let tmp = tempfile::tempdir().unwrap();
    let mut province = Hub::init("630000");
    province.start();
    let a1 = people_agent(&province, "630000/gongan", &tmp.path().join("a1.db"), &[("1", "卓玛")]);
    // enrolled, then offline for the whole rollover
    let late = people_agent(&province, "630000/minzheng", &tmp.path().join("late.db"), &[("1", "才让")]);
    let mut prefecture = Hub::join(&province.hub_token("632500/hub"));
    prefecture.start();
    let a2 = people_agent(&prefecture, "632522/gongan", &tmp.path().join("a2.db"), &[("1", "拉毛")]);
    syncs(&a1, &tmp.path().join("a1.db"), &[("1", "卓玛")]);
    syncs(&a2, &tmp.path().join("a2.db"), &[("1", "拉毛")]);
    let old_root = certs(&province.dir.path().join("ca.crt")).remove(0);
    let old_intermediate = certs(&prefecture.dir.path().join("ca.crt")).remove(0);

    // 1. prepare: nothing changes for anyone yet but the offer
    let prepared = province.cmd(&["ca", "rollover"]).ok();
    assert!(prepared.contains("prepared the next root"), "{prepared}");
    let again = province.cmd(&["ca", "rollover"]).fails();
    assert!(again.contains("prepared already"), "{again}");
    let cross = certs(&province.dir.path().join("ca-cross.crt")).remove(0);
    assert!(trust::issued_by(&cross, &old_root));
    let refused = prefecture.cmd(&["ca", "rollover"]).fails();
    assert!(refused.contains("only the province hub"), "{refused}");
    assert_eq!(missing(&ca_status(&province), "630000/gongan"), serde_json::Value::Null, "not told since");

    // 2. the nodes take it at their next connection: the prefecture hub reconnects when the province restarts
    province.stop();
    province.start();
    a1.cmd(&["renew"]).ok();
    wait_until(Duration::from_secs(30), "the prefecture hub takes the new root", || {
        certs(&prefecture.dir.path().join("root.crt")).len() == 2
    });
    a2.cmd(&["renew"]).ok();
    for agent in [&a1, &a2] {
        let roots = certs(&agent.dir.path().join("ca.crt"));
        assert_eq!(roots.len(), 2, "the agent trusts both roots");
        assert!(trust::same_anchor(&roots[1], &cross));
    }
    let status = ca_status(&province);
    assert_eq!(missing(&status, "630000/gongan"), 0);
    assert_eq!(missing(&status, "632500/hub"), 0);
    assert_eq!(missing(&status, "630000/minzheng"), serde_json::Value::Null, "the offline agent is shown as not told");
    assert_eq!(missing(&ca_status(&prefecture), "632522/gongan"), 0);

    // 3. switch, the province stopped
    let running = province.cmd(&["ca", "switch"]).fails();
    assert!(running.contains("the hub is running"), "{running}");
    province.terminate();
    let switched = province.cmd(&["ca", "switch"]).ok();
    assert!(switched.contains("now issues under the new root"), "{switched}");
    let new_root = certs(&province.dir.path().join("ca.crt")).remove(0);
    assert!(trust::same_anchor(&new_root, &cross) && pki::is_self_issued(&new_root));
    assert_eq!(certs(&province.dir.path().join("ca-previous.crt")), vec![old_root.clone()]);
    let hub_cert = certs(&province.dir.path().join("hub.crt")).remove(0);
    assert!(trust::issued_by(&hub_cert, &new_root), "the province hub's own certificate is under the new root");
    province.start();

    // 4. everyone carries on: the agent at the province, and through the prefecture
    syncs(&a1, &tmp.path().join("a1.db"), &[("1", "卓玛"), ("2", "次仁")]);
    syncs(&a2, &tmp.path().join("a2.db"), &[("1", "拉毛"), ("2", "才让")]);
    let cols = ["id", "name"];
    assert_eq!(
        table_checksum(&tmp.path().join("a1.db"), "people", &cols),
        table_checksum(&vault(&province, "630000/gongan"), "people", &cols)
    );
    // the prefecture's intermediate CA is renewed under the new root over its link, and taken without a restart
    wait_until(Duration::from_secs(60), "the intermediate CA renewed under the new root", || {
        let now = certs(&prefecture.dir.path().join("ca.crt")).remove(0);
        trust::issued_by(&now, &new_root)
    });
    assert_eq!(certs(&prefecture.dir.path().join("ca-previous.crt")), vec![old_intermediate.clone()]);
    wait_until(Duration::from_secs(20), "the renewal and the rollover in the audit log", || {
        let renewed = province.cmd(&["audit", "list", "--kind", "renewed", "--format", "jsonl"]).ok();
        let rollover = province.cmd(&["audit", "list", "--kind", "rollover", "--format", "jsonl"]).ok();
        renewed.contains("\"role\":\"ca\"") && rollover.contains("prepared") && rollover.contains("switched")
    });

    // 5. a department enrolled now at the prefecture is under the new intermediate, and syncs
    wait_until(Duration::from_secs(20), "the prefecture hub takes its renewed CA", || {
        let log = prefecture.proc.as_ref().unwrap().output();
        log.split("intermediate CA renewed")
            .nth(1)
            .is_some_and(|after| after.contains("the listener and the signer use them"))
    });
    let a3 = people_agent(&prefecture, "632522/minzheng", &tmp.path().join("a3.db"), &[("1", "德吉")]);
    let a3_chain = certs(&a3.dir.path().join("agent.crt"));
    assert!(matches!(Identity::of(&a3_chain[1]), Ok(Identity::Ca { .. })));
    assert!(trust::issued_by(&a3_chain[1], &new_root), "its chain ends under the new root");
    syncs(&a3, &tmp.path().join("a3.db"), &[("1", "德吉")]);
    // the department enrolled before, under the old intermediate, still syncs there
    syncs(&a2, &tmp.path().join("a2.db"), &[("1", "拉毛"), ("2", "才让"), ("3", "多杰")]);
    assert_eq!(
        table_checksum(&tmp.path().join("a2.db"), "people", &cols),
        table_checksum(&vault(&prefecture, "632522/gongan"), "people", &cols)
    );

    // 6. at the province, a new department pins the new root
    let a4 = people_agent(&province, "630000/jiaoyu", &tmp.path().join("a4.db"), &[("1", "尼玛")]);
    assert_eq!(certs(&a4.dir.path().join("ca.crt")), vec![new_root.clone()]);
    syncs(&a4, &tmp.path().join("a4.db"), &[("1", "尼玛")]);
    // and takes the old root, certified by the new one, to verify what it issued while that lasts
    a4.cmd(&["renew"]).ok();
    let a4_roots = certs(&a4.dir.path().join("ca.crt"));
    assert!(a4_roots.len() == 2 && trust::same_anchor(&a4_roots[1], &old_root), "{}", a4_roots.len());

    // 7. the agent that slept through it all trusts only the old root: it connects through the cross-certificate, and takes the new root
    assert_eq!(certs(&late.dir.path().join("ca.crt")), vec![old_root]);
    syncs(&late, &tmp.path().join("late.db"), &[("1", "才让")]);
    late.cmd(&["renew"]).ok();
    assert_eq!(certs(&late.dir.path().join("ca.crt")).len(), 2);
}

#[test]
fn a_rollover_or_a_switch_cut_short_is_finished_by_running_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let mut province = Hub::init("630000");
    province.start();
    let agent = people_agent(&province, "630000/gongan", &tmp.path().join("a.db"), &[("1", "卓玛")]);
    syncs(&agent, &tmp.path().join("a.db"), &[("1", "卓玛")]);
    province.terminate();
    let dir = province.dir.path().to_owned();
    let old_root = certs(&dir.join("ca.crt")).remove(0);

    // cut between the new root and its cross-certificate: nothing offered, the switch refused, the rollover finished
    province.cmd(&["ca", "rollover"]).ok();
    std::fs::remove_file(dir.join("ca-cross.crt")).unwrap();
    let refused = province.cmd(&["ca", "switch"]).fails();
    assert!(refused.contains("no cross-certificate yet"), "{refused}");
    let finished = province.cmd(&["ca", "rollover"]).ok();
    assert!(finished.contains("prepared the next root"), "{finished}");
    let next = certs(&dir.join("ca-next.crt")).remove(0);
    assert!(certs(&dir.join("ca-cross.crt")).iter().any(|c| trust::same_anchor(c, &next)));

    // cut after the old root was kept and the new one became ca.crt and ca.key, before anything else
    std::fs::write(dir.join("ca-previous.crt"), trust::write(std::slice::from_ref(&old_root))).unwrap();
    std::fs::copy(dir.join("ca-next.key"), dir.join("ca.key")).unwrap();
    std::fs::copy(dir.join("ca-next.crt"), dir.join("ca.crt")).unwrap();
    let switched = province.cmd(&["ca", "switch"]).ok();
    assert!(switched.contains("now issues under the new root"), "{switched}");
    assert!(!dir.join("ca-next.crt").exists() && !dir.join("ca-next.key").exists());
    let hub_cert = certs(&dir.join("hub.crt")).remove(0);
    assert!(trust::issued_by(&hub_cert, &next));
    let again = province.cmd(&["ca", "switch"]).fails();
    assert!(again.contains("no rollover is prepared"), "{again}");

    // the hub serves, and the agent that trusts only the old root connects through the cross-certificate
    province.start();
    assert_eq!(certs(&agent.dir.path().join("ca.crt")), vec![old_root]);
    syncs(&agent, &tmp.path().join("a.db"), &[("1", "卓玛"), ("2", "才让")]);
}
