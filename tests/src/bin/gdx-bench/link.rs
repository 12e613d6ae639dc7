//! `link`: a county on a slow, lossy link (by default 1 Mbit/s, 300 ms
//! ± 50 ms each way, 5 % loss): the first sync of `--rows` generated
//! people and a 1 % change, GDX against rsync (`-z`, through an rsync
//! daemon) over the same link. The agent and the hub (and rsync's client
//! and daemon) run in network namespaces of their own, joined by a wire
//! that carries every IP packet through the impairment
//! (`gdx_tests::faults::netns`), so QUIC and TCP cross the same link. Root
//! only; elsewhere the bench says so and skips.

use std::time::Duration;

use gdx_tests::faults::netns::{Netns, Wire, agent_in, hub_at, unavailable};
use gdx_tests::faults::{Impairment, Way};

use super::sync::{KeyShape, RsyncDaemon, change_people, people_resource, rsync_present, write_people};
use super::*;

/// One transfer over the link: seconds, bytes the tool says it sent, and
/// bytes that crossed the wire both ways and towards the hub alone (IP
/// packets, retransmissions included).
#[derive(Clone, Copy)]
struct Transfer {
    secs: f64,
    sent: u64,
    wire: u64,
    up: u64,
}

impl Transfer {
    fn json(self, rate_bps: u64) -> serde_json::Value {
        serde_json::json!({ "s": self.secs, "sent_bytes": self.sent, "wire_bytes": self.wire, "wire_bytes_up": self.up,
            "link_use": self.link_use(rate_bps) })
    }

    /// The share of the link towards the hub that the transfer filled.
    fn link_use(self, rate_bps: u64) -> f64 {
        self.up as f64 * 8.0 / (self.secs * rate_bps as f64)
    }
}

/// Times `f` (which returns the bytes the tool says it sent) and counts the wire's bytes.
fn over(wire: &Wire, f: impl FnOnce() -> u64) -> Transfer {
    let (up, down) = (wire.bytes(Way::Up), wire.bytes(Way::Down));
    let t = Instant::now();
    let sent = f();
    let up = wire.bytes(Way::Up) - up;
    Transfer { secs: t.elapsed().as_secs_f64(), sent, wire: up + wire.bytes(Way::Down) - down, up }
}

/// Puts `line` at the top of a TOML file (where a top-level key must be).
fn prepend(path: &std::path::Path, line: &str) {
    let text = std::fs::read_to_string(path).expect("read the configuration");
    std::fs::write(path, format!("{line}\n{text}")).expect("write the configuration");
}

pub(super) fn link_bench(rows: i64, pct: f64, loss: f64, delay_ms: u64, rate_kbps: u64, congestion: &str) {
    if let Some(why) = unavailable() {
        println!("link: skipped, {why}; run the bench as root");
        return;
    }
    let rate_bps = rate_kbps * 1000;
    let impairment = Impairment {
        delay: Duration::from_millis(delay_ms),
        jitter: Duration::from_millis(delay_ms / 6),
        rate_bps: Some(rate_bps),
        ..Impairment::satellite(loss)
    };
    let changed = ((rows as f64) * pct / 100.0).round() as i64;
    println!(
        "gdx-bench link: {rows} generated people keyed by 公民身份号码 (seed {SEED}), then {changed} rows ({pct}%) changed, \
         over {rate_kbps} kbit/s, {delay_ms} ms ± {} ms each way, {:.0} % loss; QUIC congestion control {congestion}",
        delay_ms / 6,
        loss * 100.0
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("src.db");
    let mut generator = Generator::new(SEED);
    write_people(&src, rows, KeyShape::Text, &mut generator);
    println!("source: {:.1} MiB", std::fs::metadata(&src).map(|m| m.len()).unwrap_or(0) as f64 / (1 << 20) as f64);

    let (hub_ns, county) = (Netns::new().expect("a namespace"), Netns::new().expect("a namespace"));
    let wire = Wire::join(&county, &hub_ns, SEED).expect("a wire between the namespaces");
    let mut hub = hub_at(&hub_ns, "632500", wire.b_addr);
    let choose = format!("congestion = \"{congestion}\"");
    prepend(&hub.dir.path().join("hub.toml"), &choose);
    hub.start();
    wire.set(impairment);
    let agent = agent_in(&county);
    let token = hub.token("632522/gongan", "1h");
    agent.cmd(&["enroll", "--token", &token, "--timeout", "60s"]).ok();
    prepend(&agent.dir.path().join("agent.toml"), &choose);
    agent.add_config(&people_resource(&src, KeyShape::Text));
    let sync = || {
        let out = agent.cmd(&["sync", "--json"]);
        assert_eq!(out.code, 0, "sync over the link failed: {out:?}");
        let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("sync --json");
        json["sent_bytes"].as_u64().unwrap_or(0)
    };
    let daemon = rsync_present().then(|| RsyncDaemon::start_in(tmp.path(), Some(&hub_ns), &wire.b_addr.to_string()));
    let rsync = || daemon.as_ref().map(|d| over(&wire, || d.push_from(&src, Some(&county), &["-z"]).1));

    let gdx_first = over(&wire, sync);
    let rsync_first = rsync();
    change_people(&src, KeyShape::Text, rows, changed, &mut generator);
    let gdx_change = over(&wire, sync);
    let rsync_change = rsync();

    println!("\n| transfer | s | bytes sent | bytes on the wire | link use | × rsync's time |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, t, base) in [
        ("gdx first sync", Some(gdx_first), rsync_first),
        ("rsync -z first copy", rsync_first, None),
        ("gdx 1 % change", Some(gdx_change), rsync_change),
        ("rsync -z delta", rsync_change, None),
    ] {
        let Some(t) = t else { continue };
        let ratio = base.map_or("–".to_owned(), |b| format!("{:.2}", t.secs / b.secs));
        println!(
            "| {name} | {:.1} | {} | {} | {:.0} % | {ratio} |",
            t.secs,
            t.sent,
            t.wire,
            100.0 * t.link_use(rate_bps)
        );
    }
    write_json(
        "link",
        &serde_json::json!({
            "rows": rows, "change_pct": pct, "loss": loss, "delay_ms": delay_ms, "rate_kbps": rate_kbps, "congestion": congestion,
            "gdx_first": gdx_first.json(rate_bps), "gdx_change": gdx_change.json(rate_bps),
            "rsync_first": rsync_first.map(|t| t.json(rate_bps)), "rsync_change": rsync_change.map(|t| t.json(rate_bps)),
        }),
    );
    drop(daemon);
    drop(hub);
}
