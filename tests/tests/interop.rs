//! Adjacent versions interoperate. The frames here were recorded from the
//! previous version's own binaries (gdx protocol 1, commit ab12f6e; see
//! tests/fixtures/protocol-1/record.sh): every frame its hubs read and
//! wrote in the demo, and one agent's two syncs against a province hub
//! whose data directory is kept as that version left it. This build must
//! read them all, write back what that version reads, and serve that agent.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gdx_common::wire::{self, Message};
use gdx_tests::replay::{self, Recorded};
use gdx_tests::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/protocol-1").join(name)
}

fn decode(frame: &[u8]) -> Message {
    let (msg, used) = wire::decode_frame(frame).unwrap().unwrap();
    assert_eq!(used, frame.len());
    msg
}

/// Every kind of message protocol 1 has, by the name `Message::kind` gives.
const PROTOCOL_1_KINDS: usize = 43;

#[test]
fn every_frame_protocol_1_wrote_is_read_and_written_back_byte_for_byte() {
    let records = replay::read(&fixture("demo-frames.txt"));
    let mut kinds = std::collections::BTreeSet::new();
    for Recorded { frame, .. } in &records {
        assert_eq!(&frame[4..6], &1u16.to_be_bytes(), "protocol 1 stamps every frame 1");
        let msg = decode(frame);
        assert_eq!(msg.since(), 1, "{} is a kind of protocol 1", msg.kind());
        // the same bytes: what this build sends of that kind, protocol 1 reads
        assert_eq!(
            &wire::encode_frame(&msg).unwrap(),
            frame,
            "{} is written otherwise than protocol 1 wrote it",
            msg.kind()
        );
        kinds.insert(msg.kind());
    }
    println!("{} frames of {} kinds: {kinds:?}", records.len(), kinds.len());
    assert_eq!(kinds.len(), PROTOCOL_1_KINDS, "the recording holds every kind of protocol 1");
}

/// Unpacks the recorded hub's data directory (made by protocol 1's
/// `gdx-hub init` and one enrolment) onto free ports.
fn recorded_hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("tar")
        .args(["-xzf", fixture("hub-before.tar.gz").to_str().unwrap(), "--strip-components=1", "-C"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let addr = format!("127.0.0.1:{}", free_udp_port());
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let config = dir.path().join("hub.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| match l.split(" = ").next() {
            Some("listen") => format!("listen = \"{addr}\""),
            Some("http") => format!("http = \"{http}\""),
            _ => l.to_owned(),
        })
        .collect();
    std::fs::write(&config, text.join("\n") + "\n").unwrap();
    Hub { dir, addr, http, proc: None, netns: None, pg: None }
}

#[test]
fn an_agent_of_protocol_1_syncs_with_a_hub_of_this_version() {
    let mut hub = recorded_hub();
    // its stores are of the previous version's format: the first run backs them up, then migrates
    hub.start();
    let started = hub.proc.as_ref().unwrap().output();
    assert!(started.contains("backed up"), "{started}");
    assert!(std::fs::read_dir(hub.dir.path().join("backups")).unwrap().next().is_some());

    let records = replay::read(&fixture("session.txt"));
    let agent = fixture("agent");
    let root = std::fs::read_to_string(agent.join("ca.crt")).unwrap();
    let (versions, answers) =
        replay::replay(&hub.addr, &root, (&agent.join("agent.crt"), &agent.join("agent.key")), &[b"gdx/1"], &records);
    assert_eq!(versions, vec![1, 1], "two connections (two syncs), both of protocol 1");
    assert!(!answers.is_empty());
    for a in &answers {
        assert_eq!(&a.got[4..6], &1u16.to_be_bytes(), "every answer is a frame protocol 1 reads");
        let (mut got, recorded) = (decode(&a.got), decode(&a.recorded));
        if let (Message::Welcome(g), Message::Welcome(r)) = (&mut got, &recorded) {
            g.now_ms = r.now_ms;
            g.software = r.software.clone();
        }
        assert_eq!(got, recorded, "this hub answers as protocol 1's hub did");
    }
    let kinds: Vec<&str> = answers.iter().map(|a| decode(&a.got).kind()).collect();
    for kind in ["Welcome", "Catalogued", "Ack", "QualityNoted"] {
        assert!(kinds.contains(&kind), "{kind} among the answers: {kinds:?}");
    }

    // what the agent sent is in the vault, the catalogue and the nodes, and the log verifies
    let vault = vault(&hub, "630000/gongan");
    wait_until(Duration::from_secs(10), "the vault holds the rows", || rows_now(&vault, "people") == 2);
    let names: Vec<String> = rusqlite::Connection::open(&vault)
        .unwrap()
        .prepare("SELECT name FROM people ORDER BY id_number")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(names, ["韩梅", "才让卓玛"]);
    let catalogue = hub.cmd(&["catalog", "list", "--json"]).ok();
    assert!(catalogue.contains("301001/000001"), "{catalogue}");
    let nodes = hub.cmd(&["nodes", "--json"]).ok();
    assert!(nodes.contains("\"quarantined\": 1"), "the quality report was taken: {nodes}");
    // a log vouches for nothing until the hub's first checkpoint, which may be a second away
    wait_until(Duration::from_secs(20), "the audit log verifies", || hub.cmd(&["audit", "verify"]).code == 0);
}
