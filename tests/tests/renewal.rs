//! Operations: an agent's certificate two thirds through its life is
//! renewed over its connection with a key made on its machine, in the
//! audit log; changesets signed before the switch are still taken; a
//! certificate not yet half way is refused renewal.
#![allow(clippy::unwrap_used)]

use gdx_certs::pki::{self, Identity};
use gdx_common::{NodeId, Role};
use gdx_tests::{Agent, Hub, table_checksum, vault};

fn cert_of(agent: &Agent) -> (String, i64, i64) {
    let pem = std::fs::read_to_string(agent.dir.path().join("agent.crt")).unwrap();
    match Identity::of(&pki::pem_blocks(&pem, "CERTIFICATE")[0]).unwrap() {
        Identity::Node { serial, not_before, not_after, .. } => (serial, not_before, not_after),
        Identity::Ca { .. } => panic!("a CA certificate"),
    }
}

#[test]
fn a_certificate_two_thirds_through_its_life_is_renewed_over_the_connection() {
    gdx_tests::files_only("it writes hub.db itself");
    let mut hub = Hub::init("630000");
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("src.db");
    let agent = gdx_tests::people_agent(&hub, "630000/gongan", &db, &[("1", "卓玛")]);
    assert_eq!(agent.cmd(&["sync"]).code, 0);
    // a fresh certificate is not due, and the hub would refuse it anyway
    assert!(agent.cmd(&["renew"]).ok().contains("not yet due"));

    // the agent's certificate, 500 of its 730 days gone (issued by the hub's CA, for the agent's own key)
    let now = gdx_tests::now();
    let ca = hub.ca();
    let key =
        pki::key_from_pem(&std::fs::read_to_string(agent.dir.path().join("agent.key")).unwrap(), "agent.key").unwrap();
    let node = NodeId::parse("630000/gongan").unwrap();
    let old = ca.issue_for_key(&key, &node, Role::Agent, now - 500 * 86_400, now + 230 * 86_400).unwrap();
    std::fs::write(agent.dir.path().join("agent.crt"), pki::der_to_pem(&old, "CERTIFICATE")).unwrap();
    let (old_serial, _, _) = cert_of(&agent);
    // as the hub recorded it then
    rusqlite::Connection::open(hub.dir.path().join("hub.db"))
        .unwrap()
        .execute(
            "INSERT INTO certs (serial, node, role, issued_at, not_after) VALUES (?1, '630000/gongan', 'agent', ?2, ?3)",
            rusqlite::params![old_serial, now - 500 * 86_400, now + 230 * 86_400],
        )
        .unwrap();

    // a change signed with it waits while the hub is down
    hub.stop();
    gdx_tests::people_table(&db, &[("1", "卓玛"), ("2", "才让")]);
    assert_ne!(agent.cmd(&["sync", "--timeout", "2s"]).code, 0);
    hub.start();

    let (old_key_pem, old_crt_pem) = (
        std::fs::read_to_string(agent.dir.path().join("agent.key")).unwrap(),
        std::fs::read_to_string(agent.dir.path().join("agent.crt")).unwrap(),
    );
    let renewed = agent.cmd(&["renew"]).ok();
    assert!(renewed.contains("certificate renewed, valid until"), "{renewed}");
    let (serial, not_before, not_after) = cert_of(&agent);
    assert!(!agent.dir.path().join("agent.key.pending").exists(), "the pending key is gone once switched");
    // the answer lost (killed before the switch): the same key, kept pending, is answered with the same certificate
    let new_key_pem = std::fs::read_to_string(agent.dir.path().join("agent.key")).unwrap();
    std::fs::write(agent.dir.path().join("agent.key.pending"), &new_key_pem).unwrap();
    std::fs::write(agent.dir.path().join("agent.key"), &old_key_pem).unwrap();
    std::fs::write(agent.dir.path().join("agent.crt"), &old_crt_pem).unwrap();
    let again = agent.cmd(&["renew"]).ok();
    assert!(again.contains("certificate renewed, valid until"), "{again}");
    assert_eq!(cert_of(&agent).0, serial, "the certificate issued the first time");
    assert_ne!(serial, old_serial);
    assert!(
        not_before <= gdx_tests::now() && not_after > gdx_tests::now() + 700 * 86_400,
        "a new two-year certificate"
    );
    let new_key = std::fs::read_to_string(agent.dir.path().join("agent.key")).unwrap();
    assert!(!new_key.contains(&key.serialize_pem()), "a new key, made on the agent's machine");
    assert!(!agent.dir.path().join("agent.crt.new").exists() && !agent.dir.path().join("agent.key.new").exists());

    // the change signed before the switch is taken over the new certificate's connection
    let sent = agent.cmd(&["sync"]).ok();
    assert!(sent.contains("all acknowledged by the hub"), "{sent}");
    let cols = ["id", "name"];
    assert_eq!(table_checksum(&db, "people", &cols), table_checksum(&vault(&hub, "630000/gongan"), "people", &cols));
    // in the audit log
    gdx_tests::wait_until(std::time::Duration::from_secs(10), "the renewal in the audit log", || {
        let log = hub.cmd(&["audit", "list", "--kind", "renewed", "--format", "jsonl"]).ok();
        log.contains(&serial) && log.contains(&old_serial)
    });
    // renewed again at once: the new certificate is not half way through its life
    assert!(agent.cmd(&["renew"]).ok().contains("not yet due"));
}

#[test]
fn a_child_hubs_certificate_is_renewed_by_its_parent_and_serves_after_a_restart() {
    gdx_tests::files_only("it writes hub.db itself");
    let mut province = Hub::init("630000");
    province.start();
    let mut prefecture = Hub::join(&province.hub_token("632500/hub"));
    // the prefecture's certificate, 1,300 of its 1,825 days gone, as the province once issued it
    let now = gdx_tests::now();
    let dir = prefecture.dir.path().to_path_buf();
    let key = pki::key_from_pem(&std::fs::read_to_string(dir.join("hub.key")).unwrap(), "hub.key").unwrap();
    let node = NodeId::parse("632500/hub").unwrap();
    let old = province.ca().issue_for_key(&key, &node, Role::Hub, now - 1_300 * 86_400, now + 525 * 86_400).unwrap();
    std::fs::write(dir.join("hub.crt"), pki::der_to_pem(&old, "CERTIFICATE")).unwrap();
    let Identity::Node { serial: old_serial, .. } = Identity::of(&old).unwrap() else { panic!() };
    rusqlite::Connection::open(province.dir.path().join("hub.db"))
        .unwrap()
        .execute(
            "INSERT INTO certs (serial, node, role, issued_at, not_after) VALUES (?1, '632500/hub', 'hub', ?2, ?3)",
            rusqlite::params![old_serial, now - 1_300 * 86_400, now + 525 * 86_400],
        )
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(6)); // the province reads its hub certificates again
    prefecture.start();
    let serial_now = || {
        let pem = std::fs::read_to_string(dir.join("hub.crt")).unwrap();
        match Identity::of(&pki::pem_blocks(&pem, "CERTIFICATE")[0]).unwrap() {
            Identity::Node { serial, .. } => serial,
            Identity::Ca { .. } => panic!(),
        }
    };
    gdx_tests::wait_until(std::time::Duration::from_secs(30), "the prefecture's certificate renewed", || {
        serial_now() != old_serial
    });
    // restarted, it connects with the new certificate
    prefecture.stop();
    prefecture.start();
    gdx_tests::wait_until(std::time::Duration::from_secs(30), "the prefecture connected again", || {
        prefecture.proc.as_ref().is_some_and(|p| p.output().contains("connected to the parent hub"))
    });
    gdx_tests::wait_until(std::time::Duration::from_secs(10), "the renewal in the province's audit log", || {
        let log = province.cmd(&["audit", "list", "--kind", "renewed", "--format", "jsonl"]).ok();
        log.contains("632500/hub") && log.contains(&serial_now())
    });
}

#[test]
fn a_province_hub_renews_its_own_certificate_from_its_own_ca_when_due() {
    let mut hub = Hub::init("630000");
    let dir = hub.dir.path().to_path_buf();
    let now = gdx_tests::now();
    let key = pki::key_from_pem(&std::fs::read_to_string(dir.join("hub.key")).unwrap(), "hub.key").unwrap();
    let ca = hub.ca();
    let node = NodeId::parse("630000/hub").unwrap();
    let old = ca.issue_for_key(&key, &node, Role::Hub, now - 1_300 * 86_400, now + 525 * 86_400).unwrap();
    std::fs::write(dir.join("hub.crt"), pki::der_to_pem(&old, "CERTIFICATE") + &ca.cert_pem()).unwrap();
    hub.start();
    let pem = std::fs::read_to_string(dir.join("hub.crt")).unwrap();
    let Identity::Node { not_after, .. } = Identity::of(&pki::pem_blocks(&pem, "CERTIFICATE")[0]).unwrap() else {
        panic!()
    };
    assert!(not_after > now + 1_800 * 86_400, "a new five-year certificate");
    assert!(std::fs::read_to_string(dir.join("run.log")).unwrap().contains("certificate was renewed until"));
    // it serves with it: an agent enrols (pinning the root) and syncs
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("src.db");
    let agent = gdx_tests::people_agent(&hub, "630000/gongan", &db, &[("1", "卓玛")]);
    assert!(agent.cmd(&["sync"]).ok().contains("all acknowledged by the hub"));
    gdx_tests::wait_until(std::time::Duration::from_secs(10), "the renewal in the audit log", || {
        hub.cmd(&["audit", "list", "--kind", "renewed", "--format", "jsonl"]).ok().contains("630000/hub")
    });
}
