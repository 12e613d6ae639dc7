//! End-to-end tests of the foundation: init, tokens, enrolment, the
//! mutually authenticated QUIC link, the handshake policy and revocation.
//! Every test starts real `gdx-hub` / `gdx-agent` processes on 127.0.0.1
//! and asserts both the outcome and the sentence the user sees.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use gdx_common::Role;
use gdx_common::token::EnrolmentToken;
use gdx_common::wire::{Message, PROTOCOL_VERSION, RefusalCode};
use gdx_tests::rawclient::{self, Outcome};
use gdx_tests::{Agent, Hub, free_udp_port, issue_pem, now, run, wait_until};

const LINK: Duration = Duration::from_secs(20);

fn enrolled(hub: &Hub, node: &str) -> Agent {
    let agent = Agent::new();
    agent.enroll(&hub.token(node, "1h")).ok();
    agent
}

fn read(dir: &tempfile::TempDir, file: &str) -> String {
    std::fs::read_to_string(dir.path().join(file)).unwrap()
}

#[test]
fn happy_path_enrol_connect_status_and_nodes() {
    let mut hub = Hub::init("630000");
    hub.start();
    let token = hub.token("632522/gongan", "72h");
    assert!(token.starts_with("GDX2."));

    let mut agent = Agent::new();
    let out = agent.enroll(&token).ok();
    assert!(out.contains("enrolled 632522/gongan with hub 630000/hub"), "{out}");
    // the key stays private and agent.toml has a comment on every key
    let toml = read(&agent.dir, "agent.toml");
    assert!(toml.contains("node = \"632522/gongan\"") && toml.contains("# host:port of the hub"), "{toml}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(agent.dir.path().join("agent.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "agent.key is readable by others");
    }

    agent.start();
    wait_until(LINK, "the agent reports connected", || agent.connected());
    wait_until(LINK, "the hub lists the node as connected", || {
        hub.node_state("632522/gongan").as_deref() == Some("connected")
    });

    let nodes = hub.nodes();
    let n = nodes.iter().find(|n| n["node"] == "632522/gongan").unwrap();
    assert_eq!(n["role"], "agent");
    assert_eq!(n["division"], "632522");
    assert!(n["cert_not_after"].as_i64().unwrap() > now() + 700 * 86_400);
    assert!(n["last_seen"].as_i64().is_some());
    let table = hub.cmd(&["nodes"]).ok();
    assert!(table.contains("632522/gongan") && table.contains("connected") && table.contains("同德县"), "{table}");

    let status = agent.cmd(&["status"]).ok();
    assert!(status.contains("632522/gongan (agent, 同德县)"), "{status}");
    assert!(status.contains("connected since"), "{status}");
    assert!(status.contains("certificate: valid until"), "{status}");
    let doctor = agent.cmd(&["doctor"]).ok();
    assert!(doctor.contains("reached 630000/hub"), "{doctor}");

    // the doctor's probe did not replace the daemon's connection
    assert!(agent.connected());

    // the hub keeps only a hash of the token's secret
    let decoded = EnrolmentToken::decode(&token).unwrap();
    let db = std::fs::read(hub.dir.path().join("hub.db")).unwrap();
    assert!(!db.windows(32).any(|w| w == decoded.secret), "the token secret is stored in clear");

    // stopping the hub is seen by the agent, which reconnects when it returns
    hub.terminate();
    wait_until(LINK, "the agent notices the hub is gone", || !agent.connected());
    let error = agent.status()["link"]["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("the hub is shutting down"), "{error}");
    hub.start();
    wait_until(Duration::from_secs(60), "the agent reconnects", || agent.connected());
}

#[test]
fn init_twice_refuses_and_overwrites_nothing() {
    let hub = Hub::init("630000");
    let before: Vec<String> =
        ["ca.key", "ca.crt", "hub.key", "hub.crt", "hub.toml"].iter().map(|f| read(&hub.dir, f)).collect();
    let err = hub.cmd(&["init", "--division", "630000", "--name", "另一个"]).fails();
    assert!(err.contains("already holds a GDX hub") && err.contains("nothing was changed"), "{err}");
    let after: Vec<String> =
        ["ca.key", "ca.crt", "hub.key", "hub.crt", "hub.toml"].iter().map(|f| read(&hub.dir, f)).collect();
    assert_eq!(before, after);
    let toml = read(&hub.dir, "hub.toml");
    for line in toml.lines().collect::<Vec<_>>().windows(2) {
        if line[1].contains(" = ") {
            assert!(line[0].starts_with('#'), "key without a comment: {}", line[1]);
        }
    }

    // bad input gets one clear sentence, never a panic
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let err = run("gdx-hub", &["--data", d, "init", "--division", "632599", "--name", "x"]).fails();
    assert!(err.contains("632599 is not a current division"), "{err}");
    let err = run("gdx-hub", &["--data", d, "init", "--division", "632522", "--name", "x"]).fails();
    assert!(err.contains("is a county"), "{err}");
    let err = run("gdx-hub", &["--data", d, "init", "--division", "63", "--name", "x"]).fails();
    assert!(err.contains("six digits"), "{err}");
    let err = run("gdx-hub", &["--data", d, "nodes"]).fails();
    assert!(err.contains("gdx-hub init"), "{err}");
    // bad usage is exit 2; --help has examples
    assert_eq!(run("gdx-hub", &["init", "--bogus"]).code, 2);
    assert!(run("gdx-hub", &["token", "--help"]).ok().contains("Examples"));
    assert!(run("gdx-agent", &["enroll", "--help"]).ok().contains("Example"));
}

#[test]
fn token_rules() {
    let hub = Hub::init("632500");
    let err = hub.cmd(&["token", "--node", "630102/gongan", "--role", "agent"]).fails();
    assert!(err.contains("630102/gongan is outside this hub's division 632500"), "{err}");
    let err = hub.cmd(&["token", "--node", "632522/GongAn"]).fails();
    assert!(err.contains("lowercase"), "{err}");
    let err = hub.cmd(&["token", "--node", "632522/gongan", "--ttl", "forever"]).fails();
    assert!(err.contains("not a duration"), "{err}");
    let err = hub.cmd(&["token", "--node", "632522/gongan", "--role", "admin"]).fails();
    assert!(err.contains("agent or hub"), "{err}");
    let json: serde_json::Value =
        serde_json::from_str(&hub.cmd(&["token", "--node", "632522/gongan", "--json"]).ok()).unwrap();
    assert_eq!(json["node"], "632522/gongan");
    assert_eq!(json["hub_addr"], hub.addr.as_str());
}

#[test]
fn token_used_twice_expired_unknown_or_damaged() {
    let mut hub = Hub::init("630000");
    hub.start();
    let token = hub.token("630000/gongan", "1h");
    enrolled_with(&token);
    let second = Agent::new();
    let err = second.enroll(&token).fails();
    assert!(err.contains("this enrolment token was already used at"), "{err}");
    assert!(!second.dir.path().join("agent.toml").exists());

    let short = hub.token("630000/minzheng", "1s");
    let expires = EnrolmentToken::decode(&short).unwrap().expires_at;
    wait_until(Duration::from_secs(5), "the token expires", || now() > expires);
    let err = Agent::new().enroll(&short).fails();
    assert!(err.contains("this enrolment token expired at"), "{err}");

    let mut forged = EnrolmentToken::decode(&hub.token("630000/weijian", "1h")).unwrap();
    forged.secret[0] ^= 1;
    let err = Agent::new().enroll(&forged.encode()).fails();
    assert!(err.contains("does not know this enrolment token"), "{err}");

    let err = Agent::new().enroll("GDX2.garbage!").fails();
    assert!(err.contains("damaged or incomplete"), "{err}");
    let err = Agent::new().enroll("hello").fails();
    assert!(err.contains("not a GDX enrolment token"), "{err}");
}

fn enrolled_with(token: &str) -> Agent {
    let agent = Agent::new();
    agent.enroll(token).ok();
    let err = agent.enroll(token).fails();
    assert!(err.contains("already holds an enrolled agent"), "{err}");
    // a mistake in agent.toml is not taken for "not enrolled": refused before the hub is asked
    let toml = agent.dir.path().join("agent.toml");
    let (text, cert) =
        (std::fs::read_to_string(&toml).unwrap(), std::fs::read(agent.dir.path().join("agent.crt")).unwrap());
    std::fs::write(&toml, format!("{text}hubaddr = \"typo\"\n")).unwrap();
    let err = agent.enroll(token).fails();
    assert!(err.contains("whose agent.toml does not load") && err.contains("hubaddr"), "{err}");
    assert_eq!(std::fs::read(agent.dir.path().join("agent.crt")).unwrap(), cert, "the certificate is kept");
    std::fs::write(&toml, text).unwrap();
    agent
}

#[test]
fn enrolment_pins_the_ca_and_names_an_unreachable_hub() {
    let mut hub = Hub::init("630000");
    hub.start();
    let mut wrong_ca = EnrolmentToken::decode(&hub.token("630000/gongan", "1h")).unwrap();
    wrong_ca.ca_fingerprint[0] ^= 0xff;
    let agent = Agent::new();
    let err = agent.enroll(&wrong_ca.encode()).fails();
    assert!(err.contains("the hub's CA does not match the fingerprint in the token"), "{err}");
    assert!(!agent.dir.path().join("agent.crt").exists());

    let mut nowhere = EnrolmentToken::decode(&hub.token("630000/gongan", "1h")).unwrap();
    nowhere.hub_addr = format!("127.0.0.1:{}", free_udp_port());
    let err = Agent::new().cmd(&["enroll", "--token", &nowhere.encode(), "--timeout", "2s"]).fails();
    assert!(err.contains("cannot reach the hub at 127.0.0.1:") && err.contains("no answer within 2 s"), "{err}");
}

#[test]
fn no_client_certificate_is_refused() {
    let mut hub = Hub::init("630000");
    hub.start();
    let root = read(&hub.dir, "ca.crt");
    match rawclient::exchange(&hub.addr, &root, None, rawclient::hello_frame("630000/gongan", PROTOCOL_VERSION)) {
        Outcome::Closed(reason) => assert!(reason.contains("requires a client certificate"), "{reason}"),
        other => panic!("a client without a certificate was answered: {other:?}"),
    }
}

#[test]
fn a_late_hello_on_an_older_connection_does_not_replace_the_newer() {
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = enrolled(&hub, "630000/gongan");
    let root = read(&hub.dir, "ca.crt");
    let (older, newer_open) = rawclient::late_hello(&hub.addr, &root, agent.dir.path(), "630000/gongan");
    assert!(older.contains("newer connection"), "{older}");
    assert!(newer_open, "the newer connection keeps serving");
}

#[test]
fn incompatible_protocol_version_names_both_versions() {
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = enrolled(&hub, "630000/gongan");
    let root = read(&hub.dir, "ca.crt");
    match rawclient::exchange(&hub.addr, &root, Some(agent.dir.path()), rawclient::hello_frame("630000/gongan", 99)) {
        Outcome::Answer(Message::Refused(r)) => {
            assert_eq!(r.code, RefusalCode::VersionMismatch);
            assert!(r.message.contains("gdx protocol 1") && r.message.contains("gdx protocol 99"), "{}", r.message);
        }
        other => panic!("expected a version refusal, got {other:?}"),
    }
    // an oversized frame is refused and the hub keeps serving
    let mut huge = (64u32 * 1024 * 1024).to_be_bytes().to_vec();
    huge.extend_from_slice(&[0; 16]);
    assert!(matches!(
        rawclient::exchange(&hub.addr, &root, Some(agent.dir.path()), huge),
        Outcome::Answer(Message::Refused(_)) | Outcome::Closed(_)
    ));
    match rawclient::exchange(
        &hub.addr,
        &root,
        Some(agent.dir.path()),
        rawclient::hello_frame("630000/gongan", PROTOCOL_VERSION),
    ) {
        Outcome::Answer(Message::Welcome(w)) => assert_eq!(w.hub.to_string(), "630000/hub"),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

#[test]
fn certificate_from_another_ca_is_refused_both_ways() {
    let mut hub_a = Hub::init("630000");
    hub_a.start();
    let mut hub_b = Hub::init("630000");
    hub_b.start();
    let agent = enrolled(&hub_b, "630000/gongan");
    // the agent, pointed at hub A, refuses A's certificate
    agent.set_config("hub_addr", &hub_a.addr);
    let out = agent.cmd(&["doctor", "--timeout", "5s"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("the certificate of hub 630000/hub was not issued by the CA this node trusts"),
        "{}",
        out.stdout
    );
    // trusting A's CA, the agent presents B's certificate, and hub A refuses it
    std::fs::write(agent.dir.path().join("ca.crt"), read(&hub_a.dir, "ca.crt")).unwrap();
    let out = agent.cmd(&["doctor", "--timeout", "5s"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("the certificate of agent 630000/gongan was not issued by this hub's certificate authority"),
        "{}",
        out.stdout
    );
}

#[test]
fn expired_certificate_is_refused() {
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = enrolled(&hub, "630000/gongan");
    let pem = issue_pem(&hub.ca(), &agent.key(), "630000/gongan", Role::Agent, now() - 10 * 86_400, now() - 86_400);
    agent.replace_cert(&pem);
    let out = agent.cmd(&["doctor", "--timeout", "5s"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("FAIL  certificate  the certificate expired on"), "{}", out.stdout);
    assert!(
        out.stdout.contains("the certificate of agent 630000/gongan has expired; enrol it again"),
        "{}",
        out.stdout
    );
    let status = agent.cmd(&["status"]).ok();
    assert!(status.contains("EXPIRED on"), "{status}");
}

#[test]
fn revoked_certificate_is_refused_and_live_connection_closed() {
    let mut hub = Hub::init("630000");
    hub.start();
    let mut agent = enrolled(&hub, "630000/gongan");
    let mut other = enrolled(&hub, "630000/minzheng");
    agent.start();
    other.start();
    wait_until(LINK, "both agents connect", || agent.connected() && other.connected());

    let out = hub.cmd(&["revoke", "630000/gongan"]).ok();
    assert!(out.contains("revoked 630000/gongan (1 certificate)"), "{out}");
    // the live connection closes within 5 seconds, with the reason
    wait_until(Duration::from_secs(5), "the revoked agent is disconnected", || !agent.connected());
    let status = agent.status();
    let error = status["link"]["last_error"].as_str().unwrap().to_owned();
    assert!(error.contains("revoked"), "{error}");
    assert_eq!(hub.node_state("630000/gongan").as_deref(), Some("revoked"));
    // new handshakes are refused
    let out = agent.cmd(&["doctor", "--timeout", "5s"]);
    assert!(out.stdout.contains("the certificate of agent 630000/gongan has been revoked"), "{}", out.stdout);
    // the other node is untouched
    assert!(other.connected());
    // unknown nodes and repeats are clear
    assert!(hub.cmd(&["revoke", "630000/nobody"]).fails().contains("no node 630000/nobody is enrolled"));
    assert!(hub.cmd(&["revoke", "630000/gongan"]).ok().contains("already revoked"));
}

#[test]
fn node_outside_the_hubs_division_is_refused() {
    let mut hub = Hub::init("632500");
    hub.start();
    let agent = enrolled(&hub, "632522/gongan");
    // a certificate from this hub's CA, but for a node in 西宁 (630102)
    let pem = issue_pem(&hub.ca(), &agent.key(), "630102/gongan", Role::Agent, now() - 60, now() + 86_400);
    agent.replace_cert(&pem);
    agent.set_config("node", "630102/gongan");
    let out = agent.cmd(&["doctor", "--timeout", "5s"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("agent 630102/gongan is outside this hub's division 632500"), "{}", out.stdout);
}

#[test]
fn agent_certificate_where_a_hub_is_expected_is_refused() {
    let mut hub = Hub::init("630000");
    hub.start();
    let agent = enrolled(&hub, "630000/gongan");
    hub.stop();
    // the hub presents an agent certificate (same CA, same key)
    let hub_key = gdx_certs::pki::key_from_pem(&read(&hub.dir, "hub.key"), "hub.key").unwrap();
    let pem = issue_pem(&hub.ca(), &hub_key, "630000/fake", Role::Agent, now() - 60, now() + 86_400);
    std::fs::write(hub.dir.path().join("hub.crt"), pem + &read(&hub.dir, "ca.crt")).unwrap();
    hub.start();
    let out = agent.cmd(&["doctor", "--timeout", "5s"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("the server presented the certificate of agent 630000/fake, not a hub's"),
        "{}",
        out.stdout
    );
}

#[test]
fn demo_shows_a_hub_its_agents_and_the_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = gdx_tests::Proc::start("gdx-hub", &["demo"], dir.path().join("demo.log"));
    wait_until(Duration::from_secs(60), "the demo reports its agents connected", || {
        demo.output().contains("20 of 20 agents connected")
    });
    wait_until(Duration::from_secs(60), "the demo shows its resources synced", || {
        demo.output().contains("Where to look")
    });
    let out = demo.output();
    assert!(out.contains("gdx-hub --data"), "the demo says where to look: {out}");
    let line =
        |res: &str| out.lines().find(|l| l.contains(res) && l.starts_with("630000/")).unwrap_or_default().to_owned();
    assert!(line(" hukou ").contains(" 300 "), "{out}");
    assert!(line(" dibao ").contains(" 120 "), "{out}");
    assert!(
        out.contains("28 entries"),
        "seven base and seventeen theme and department entries, and the province's three base databases: {out}"
    );
    for hub in ["prefecture hub 630100/hub", "prefecture hub 632500/hub"] {
        assert!(out.contains(hub), "{hub}: {out}");
    }
    assert!(
        out.lines().any(|l| l.starts_with("632522/minzheng") && l.contains("632500/hub") && l.contains("connected")),
        "the province sees the county agent through its prefecture: {out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("630100/zrgh") && l.contains(" zongdi ") && l.contains(" 150 ")),
        "西宁's base resource was forwarded to the province: {out}"
    );
    for base in [
        "人口基本信息",
        "法人单位基本信息",
        "社会组织登记信息",
        "事业单位登记信息",
        "不动产宗地信息",
        "行政许可和行政处罚信用信息",
        "电子证照目录信息",
        "人口基础信息库",
        "法人单位基础信息库",
        "不动产宗地空间库",
    ] {
        assert!(out.lines().any(|l| l.contains(base) && l.contains("基础")), "{base}: {out}");
    }
    // controlled exchange across prefectures: the request, the narrowed approval, masked delivered rows
    assert!(out.contains("is pending (有条件共享: 西宁 must answer by"), "{out}");
    assert!(
        out.contains(
            "granted 202001/000001 to 632522/minzheng (no end date): cert_no, born, mother_id (mother_id masked)"
        ),
        "{out}"
    );
    assert!(out.contains("150 birth certificates, 300 residents"), "{out}");
    // one-time portal links for the operator, an auditor and two departments
    assert!(out.contains("province operator (tree, audit, charts): https://127.0.0.1:"), "{out}");
    assert_eq!(out.matches("/login?t=H.").count(), 2, "{out}");
    assert_eq!(out.matches("/login?t=A.").count(), 2, "{out}");
    // three departments publish from real database servers the demo started
    for (dept, engine) in
        [("630100/weijian", "PostgreSQL"), ("632500/renshe", "PostgreSQL"), ("630000/scjg", "MariaDB")]
    {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("enrolled {dept} ")) && l.ends_with(&format!(" from {engine}"))),
            "{dept} from {engine}: {out}"
        );
    }
    assert!(
        out.lines().any(|l| l.starts_with("630000/scjg") && l.contains(" faren ") && l.contains(" 200 ")),
        "the MariaDB table synced (the PostgreSQL births were delivered above): {out}"
    );
    assert!(out.lines().any(|l| l.starts_with("    Q63") && l.contains("********")), "masked ID numbers: {out}");
    // Ctrl-C (SIGTERM here) stops everything and leaves nothing behind
    let root = out.lines().find_map(|l| l.strip_prefix("GDX demo in ")).unwrap().to_owned();
    // the population base: 公安's 300 people, 民政's 120 (40 of them registered, one name written
    // otherwise) and 卫健's 80 (60 registered, one birth date otherwise)
    let province = format!("{root}/hub-630000");
    wait_until(Duration::from_secs(30), "the population base is merged", || {
        let show = gdx_tests::run("gdx-hub", &["--data", &province, "base", "show", "renkou", "--json"]).ok();
        let show: serde_json::Value = serde_json::from_str(&show).unwrap();
        show["records"] == 400 && show["conflicts"] == 2
    });
    // the legal-person base: 市场监管's 200 enterprises, 民政's 60 social organisations, 编办's 80 institutions;
    // the spatial base: 西宁's 150 parcels, every boundary valid and measured
    wait_until(Duration::from_secs(30), "the legal-person and spatial bases are merged", || {
        let records = |name: &str| {
            let show = gdx_tests::run("gdx-hub", &["--data", &province, "base", "show", name, "--json"]).ok();
            serde_json::from_str::<serde_json::Value>(&show).unwrap()["records"].as_i64()
        };
        records("faren") == Some(340) && records("kongjian") == Some(150)
    });
    let parcels = gdx_tests::run(
        "gdx-hub",
        &["--data", &province, "base", "within", "kongjian", "101.5,36.4,102.1,36.8", "--limit", "1000", "--json"],
    )
    .ok();
    let parcels: serde_json::Value = serde_json::from_str(&parcels).unwrap();
    assert_eq!(parcels["records"].as_array().unwrap().len(), 150, "every parcel lies around 西宁");
    let catalogued = gdx_tests::run("gdx-hub", &["--data", &province, "catalog", "list"]).ok();
    for code in ["101001/900001", "102001/900001", "103001/900001"] {
        assert!(catalogued.contains(code), "the base {code} is catalogued: {catalogued}");
    }
    wait_until(Duration::from_secs(30), "公安's two bad rows reported to the province", || {
        let nodes = gdx_tests::run("gdx-hub", &["--data", &province, "nodes"]).ok();
        nodes.lines().any(|l| l.starts_with("630000/gongan") && l.contains(" hukou ") && l.trim_end().ends_with(" 2"))
    });
    demo.terminate();
    wait_until(Duration::from_secs(30), "the demo removes its files", || !std::path::Path::new(&root).exists());
    assert!(demo.output().contains("stopping the demo"));
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&root))
        .collect();
    assert!(left.is_empty(), "the demo's hubs, agents and database servers have stopped: {left:?}");
    // --dir keeps them, and must not overwrite anything
    std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
    let busy = gdx_tests::run("gdx-hub", &["demo", "--dir", dir.path().to_str().unwrap()]).fails();
    assert!(busy.contains("is not empty; give --dir a new or empty directory"), "{busy}");
}

/// Peers that never prove who they are cannot pile up: at most 128 at once
/// from one address, and one that stalls in the middle of its first message
/// is cut off within seconds; the hub then enrols as usual.
#[test]
fn unproven_connections_are_capped_and_stalled_ones_cut_off() {
    let mut hub = Hub::init("630000");
    hub.start();
    let root = read(&hub.dir, "ca.crt");
    let (refused, ended) = rawclient::stall_unproven(&hub.addr, &root, 130, Duration::from_secs(30));
    assert_eq!(refused, 2, "128 unproven connections from one address at most");
    assert_eq!(ended.len(), 128);
    assert!(
        ended.iter().all(|e| e.contains("the enrolment request did not arrive within 10 s")),
        "every stalled connection is cut off: {:?}",
        ended.iter().find(|e| !e.contains("did not arrive"))
    );
    enrolled(&hub, "630000/gongan");
}

/// Revocation and expiry close every connection of a node, the one-shot
/// (probe) connections of `doctor` and the exchange commands too.
#[test]
fn revocation_and_expiry_close_probe_connections_too() {
    let mut hub = Hub::init("630000");
    hub.start();
    let root = read(&hub.dir, "ca.crt");
    let revoked = enrolled(&hub, "630000/gongan");
    let ended = rawclient::probe_until_closed(
        &hub.addr,
        &root,
        revoked.dir.path(),
        "630000/gongan",
        || {
            hub.cmd(&["revoke", "630000/gongan"]).ok();
        },
        Duration::from_secs(10),
    );
    assert!(ended.contains("the certificate of 630000/gongan was revoked"), "{ended}");

    let expiring = enrolled(&hub, "630000/minzheng");
    let now = now();
    expiring.replace_cert(&issue_pem(
        &hub.ca(),
        &expiring.key(),
        "630000/minzheng",
        gdx_common::Role::Agent,
        now - 60,
        now + 3,
    ));
    let ended = rawclient::probe_until_closed(
        &hub.addr,
        &root,
        expiring.dir.path(),
        "630000/minzheng",
        || {},
        Duration::from_secs(10),
    );
    assert!(ended.contains("the certificate of 630000/minzheng expired at"), "{ended}");
}

/// A token can stay out of the process list (`@FILE`, or `-` for standard
/// input); the directories and databases a node makes are its owner's only;
/// and a key that others can read is refused.
#[test]
fn tokens_kept_out_of_argv_private_files_and_keys() {
    gdx_tests::files_only("it checks the modes of the hub's files");
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let mut hub = Hub::init("630000");
    hub.start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("token.txt");
    std::fs::write(&file, hub.token("630000/gongan", "1h")).unwrap();
    let dir = tmp.path().join("new/agent");
    let from_file =
        run("gdx-agent", &["--data", dir.to_str().unwrap(), "enroll", "--token", &format!("@{}", file.display())]);
    assert!(from_file.ok().contains("enrolled 630000/gongan"));
    assert_eq!(mode(&dir), 0o700, "the agent's directory");
    assert_eq!(mode(&dir.join("agent.key")), 0o600);

    let other = Agent::new();
    let mut child = std::process::Command::new(gdx_tests::bin("gdx-agent"))
        .args(["--data", other.data(), "enroll", "--token", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{}", hub.token("630000/minzheng", "1h")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("enrolled 630000/minzheng"),
        "{out:?}"
    );

    for db in ["hub.db", "catalog.db", "exchange.db"] {
        assert_eq!(mode(&hub.dir.path().join(db)), 0o600, "{db}");
    }
    for key in ["ca.key", "hub.key"] {
        assert_eq!(mode(&hub.dir.path().join(key)), 0o600, "{key}");
    }

    std::fs::set_permissions(other.dir.path().join("agent.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = other.cmd(&["doctor"]);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.code != 0 && said.contains("is open to other users (mode 644)") && said.contains("chmod 600"),
        "{said}"
    );
}

/// The CA key can stay offline: with ca.key moved away the hub serves and
/// prints tokens; an enrolment waits until `gdx-hub issue --ca-key` is run
/// where the key is, then the same `gdx-agent enroll` completes.
#[test]
fn the_ca_key_can_stay_offline() {
    let mut hub = Hub::init("630000");
    hub.start();
    hub.stop();
    let vault = tempfile::tempdir().unwrap();
    let offline = vault.path().join("ca.key");
    std::fs::rename(hub.dir.path().join("ca.key"), &offline).unwrap();
    hub.start();
    let agent = Agent::new();
    let token = hub.token("630000/gongan", "1h");
    let waits = agent.enroll(&token).fails();
    assert!(waits.contains("keeps its CA key offline") && waits.contains("gdx-hub issue --ca-key"), "{waits}");
    let issued = hub.cmd(&["issue", "--ca-key", offline.to_str().unwrap()]).ok();
    assert!(issued.contains("issued 630000/gongan"), "{issued}");
    assert!(!hub.dir.path().join("ca.key").exists(), "the key was read, not copied");
    agent.enroll(&token).ok();
    agent.cmd(&["doctor"]).ok();
}
