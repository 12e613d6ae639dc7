//! The other scenarios: `audit` (durable appends, verification), `relay`
//! (county to province latency), `footprint` (binary sizes, idle memory)
//! and `fanin` (many agents, one hub).

use super::sync::{KeyShape, PeopleEntry, catalogued_people, write_people};
use super::*;

/// Durable appends per second and the time to verify `entries` entries.
pub(super) fn audit_bench(entries: u64) {
    use gdx_hub::audit::{AuditLog, Event, Pins, verify};
    use gdx_hub::store::outbox::{OUTBOX_SQL, note};
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut log = AuditLog::open(tmp.path(), "630000/hub").expect("audit log");
    let event = |i: u64| Event {
        kind: "lookup".into(),
        at: 1_800_000_000 + i as i64,
        node: Some("630102/minzheng".into()),
        resource: Some("301001/000001".into()),
        request: Some("630100-3".into()),
        detail: serde_json::json!({ "consumer": "630102/minzheng", "key": format!("{i:032x}"), "found": true }),
    };
    let single = 2_000u64;
    let t = Instant::now();
    for i in 0..single {
        log.append(&format!("bench#{i}"), &event(i)).expect("append");
    }
    let s = t.elapsed().as_secs_f64();
    println!("audit: {single} appends, one durable transaction each: {s:.2} s = {:.0} appends/s", single as f64 / s);
    // the hub's path: events noted in a store's outbox, collected in batches
    let outbox = rusqlite::Connection::open(tmp.path().join("exchange.db")).expect("outbox");
    outbox.execute_batch(OUTBOX_SQL).expect("outbox table");
    let mut collected = 0u64;
    let mut collect_s = 0.0;
    let mut i = single;
    while i < entries {
        let batch = (entries - i).min(50_000);
        let tx = outbox.unchecked_transaction().expect("tx");
        for j in i..i + batch {
            note(&tx, &event(j)).expect("note");
        }
        tx.commit().expect("commit");
        let t = Instant::now();
        while log.size() < i + batch {
            collected += log.collect().expect("collect") as u64;
        }
        collect_s += t.elapsed().as_secs_f64();
        i += batch;
    }
    log.checkpoint(1_900_000_000).expect("checkpoint");
    if collected > 0 {
        println!(
            "audit: {collected} entries collected from an outbox in batches of up to 5,000: {collect_s:.2} s = {:.0} appends/s",
            collected as f64 / collect_s
        );
    }
    let t = Instant::now();
    let bundle = log.bundle().expect("bundle");
    let read_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v = verify(&bundle, &Pins::default());
    let verify_s = t.elapsed().as_secs_f64();
    let v = v.expect("the benchmark's log verifies");
    println!(
        "audit: verify {} entries and {} checkpoint(s): read {read_s:.2} s, verify {verify_s:.2} s",
        v.entries, v.checkpoints
    );
}

/// One-row changes from a county agent through its prefecture hub to the
/// province: latency from the start of `gdx-agent sync` until the row is in
/// the province's vault.
pub(super) fn relay_bench(changes: usize) {
    let mut province = Hub::init("630000");
    province.start();
    let mut prefecture = Hub::join(&province.hub_token("632500/hub"));
    prefecture.start();
    let agent = Agent::new();
    agent.enroll(&prefecture.token("632522/gongan", "1h")).ok();
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("src.db");
    write_people(
        &src,
        1_000,
        KeyShape::Text,
        &mut Generator::within(SEED, DivisionCode::parse("632522").expect("同德县")),
    );
    agent.add_config(&catalogued_people(
        "hukou",
        &src,
        &PeopleEntry {
            code: "101002/000001",
            class: "基础信息资源",
            classification: "人口",
            name: "同德县人口信息",
            provider_name: "同德县公安局",
            provider_code: "11632522015603015M",
            summary: "同德县户籍人口",
        },
    ));
    let (code, _, err) = agent.sync(&[]);
    assert_eq!(code, 0, "first sync failed: {err}");
    let vault = gdx_tests::vault(&province, "632522/gongan");
    let at_province = |name: &str| -> bool {
        rusqlite::Connection::open_with_flags(&vault, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT count(*) FROM hukou WHERE name = ?1", [name], |r| r.get::<_, i64>(0)))
            .is_ok_and(|n| n > 0)
    };
    let src_conn = rusqlite::Connection::open(&src).expect("open source");
    let first: String = src_conn.query_row("SELECT id_number FROM people LIMIT 1", [], |r| r.get(0)).expect("a row");
    let mut latencies = Vec::new();
    for i in 0..changes {
        let name = format!("relay-{i}");
        src_conn.execute("UPDATE people SET name = ?1 WHERE id_number = ?2", [&name, &first]).expect("update");
        let t = Instant::now();
        let (code, _, err) = agent.sync(&[]);
        assert_eq!(code, 0, "sync failed: {err}");
        // polled every 5 ms (wait_until's 50 ms would blur latencies of ~0.1 s)
        while !at_province(&name) {
            assert!(t.elapsed().as_secs() < 60, "change {i} did not reach the province within 60 s");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        latencies.push(t.elapsed().as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| percentile(&latencies, p);
    println!("relay: {changes} one-row changes, county agent → 海南州 hub → province");
    println!("{:<8} {:>10}", "", "seconds");
    println!("{:<8} {:>10.3}\n{:<8} {:>10.3}\n{:<8} {:>10.3}", "p50", pct(0.5), "p99", pct(0.99), "max", pct(1.0));
    write_json(
        "relay",
        &serde_json::json!({ "changes": changes, "p50_s": pct(0.5), "p99_s": pct(0.99), "max_s": pct(1.0) }),
    );
}

/// The value at fraction `p` of sorted `values` (0 when there are none).
pub(super) fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() { 0.0 } else { values[((values.len() as f64 - 1.0) * p).round() as usize] }
}

/// Resident memory of a process, KiB (0 when it cannot be read).
pub(super) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Binary sizes, and the resident memory of an idle hub and an idle agent.
pub(super) fn footprint_bench() {
    let size = |name: &str| std::fs::metadata(gdx_tests::bin(name)).map(|m| m.len()).unwrap_or(0);
    let (agent_size, hub_size) = (size("gdx-agent"), size("gdx-hub"));
    let mut hub = Hub::init("630000");
    hub.start();
    let mut agent = Agent::new();
    agent.enroll(&hub.token("630000/gongan", "1h")).ok();
    agent.start();
    gdx_tests::wait_until(std::time::Duration::from_secs(30), "the agent connects", || agent.connected());
    std::thread::sleep(std::time::Duration::from_secs(5));
    let hub_rss = hub.proc.as_ref().map_or(0, |p| rss_kib(p.child.id()));
    let agent_rss = agent.proc.as_ref().map_or(0, |p| rss_kib(p.child.id()));
    println!("{:<24} {:>12}", "footprint", "");
    println!("{:<24} {:>9.1} MiB", "gdx-agent binary", agent_size as f64 / 1048576.0);
    println!("{:<24} {:>9.1} MiB", "gdx-hub binary", hub_size as f64 / 1048576.0);
    println!("{:<24} {:>9.1} MiB", "agent idle RSS", agent_rss as f64 / 1024.0);
    println!("{:<24} {:>9.1} MiB", "hub idle RSS (1 agent)", hub_rss as f64 / 1024.0);
    write_json(
        "footprint",
        &serde_json::json!({ "agent_binary_bytes": agent_size, "hub_binary_bytes": hub_size,
            "agent_idle_rss_kib": agent_rss, "hub_idle_rss_kib": hub_rss }),
    );
}

/// Sends changesets `seqs` (one row each) on an upload stream, each after
/// the previous one's acknowledgement; returns each one's latency. With
/// `pace` (mean seconds between changesets, seed), each waits first for a
/// random time drawn from an exponential distribution of that mean.
pub(super) async fn send_changesets(
    up: &mut quinn::SendStream,
    down: &mut quinn::RecvStream,
    node: &gdx_common::NodeId,
    key: &rcgen::KeyPair,
    cert: &[u8],
    seqs: std::ops::RangeInclusive<u64>,
    pace: Option<(f64, usize)>,
) -> Result<Vec<f64>, String> {
    use gdx_common::data::{Change, Changeset, Column, ResourceCode, Value, encode_changeset};
    use gdx_common::wire::{Message, SignedChangeset};
    let mut lat = Vec::new();
    // a small generator of its own per agent (splitmix64), for the pauses
    let mut state = pace.map_or(0, |p| p.1 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x2026;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    for seq in seqs {
        if let Some((mean, _)) = pace {
            let pause = -mean * (1.0 - uniform()).ln();
            tokio::time::sleep(std::time::Duration::from_secs_f64(pause)).await;
        }
        let cs = Changeset {
            origin: node.clone(),
            resource: ResourceCode::parse("fanin").map_err(|e| e.to_string())?,
            seq,
            epoch: 7,
            columns: vec![
                Column { name: "id".into(), decl_type: "TEXT".into() },
                Column { name: "v".into(), decl_type: "TEXT".into() },
            ],
            key: vec![0],
            changes: vec![Change::Upsert(vec![Value::Text("row".into()), Value::Text(format!("v{seq}").into())])],
            created_at: 0,
        };
        let body = encode_changeset(&cs).expect("a changeset encodes");
        let signature = gdx_certs::pki::sign(key, &body).map_err(|e| e.to_string())?;
        let env = SignedChangeset {
            origin: node.clone(),
            resource: cs.resource.clone(),
            seq,
            rows: 1,
            body,
            signature,
            signer_chain: vec![cert.to_vec()],
        };
        let t = Instant::now();
        gdx_link::frames::send(up, &Message::Upload(env)).await.map_err(|e| e.to_string())?;
        match tokio::time::timeout(std::time::Duration::from_secs(120), gdx_link::frames::recv(down)).await {
            Ok(Ok(Some(Message::Ack(_)))) => lat.push(t.elapsed().as_secs_f64()),
            other => return Err(format!("changeset {seq}: {other:?}")),
        }
    }
    Ok(lat)
}

/// N simulated agents send small changesets to one hub at once.
/// Each sends `per_agent` timed changesets, one after the other's
/// acknowledgement: at once (closed loop, the hub's throughput), or when
/// `rate` is above 0 at random moments that add up to `rate` changesets a
/// second from all agents (open loop, the latency at that load). Returns
/// the results it also writes (fan-in with the hub's vaults kept as
/// `vaults` says).
pub(super) fn fanin_bench(ns: &[usize], per_agent: u64, rate: f64, vaults: Vaults) -> Vec<serde_json::Value> {
    use gdx_common::wire::{Hello, Message};
    use gdx_common::{NodeId, Role};
    gdx_certs::install_crypto_provider();
    let mut results = Vec::new();
    println!(
        "{:>6} {:>10} {:>14} {:>12} {:>12} {:>10}",
        "agents", "connected", "changesets/s", "p50 ack ms", "p99 ack ms", "hub MiB"
    );
    for &n in ns {
        let mut hub = Hub::init("630000");
        vaults.prepare(&hub);
        hub.start();
        let ca = hub.ca();
        let root_der = gdx_certs::pki::pem_to_der(
            &std::fs::read_to_string(hub.dir.path().join("ca.crt")).expect("ca.crt"),
            "CERTIFICATE",
        )
        .expect("root");
        let now = gdx_tests::now();
        let agents: Vec<(NodeId, rcgen::KeyPair, Vec<u8>)> = (0..n)
            .map(|i| {
                let node = NodeId::parse(&format!("630000/fan{i}")).expect("node id");
                let key = gdx_certs::pki::new_key().expect("key");
                let cert = ca.issue_for_key(&key, &node, Role::Agent, now - 60, now + 3600).expect("cert");
                (node, key, cert.to_vec())
            })
            .collect();
        let addr: std::net::SocketAddr = hub.addr.parse().expect("hub address");
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        // the sending phase starts when every agent is connected
        let go: std::sync::Arc<std::sync::OnceLock<Instant>> = std::sync::Arc::new(std::sync::OnceLock::new());
        let connecting = Instant::now();
        let outcomes: Vec<Result<Vec<f64>, String>> = rt.block_on(async {
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
            let mut tasks = Vec::new();
            for (seed, (node, key, cert)) in agents.into_iter().enumerate() {
                let (root_der, barrier, go) = (root_der.clone(), barrier.clone(), go.clone());
                tasks.push(tokio::spawn(async move {
                    // Like a real agent, retry a handshake that timed out
                    // in the burst of thousands, with a growing pause.
                    let connect = async || {
                        let root = rustls::pki_types::CertificateDer::from(root_der.clone());
                        let chain = vec![rustls::pki_types::CertificateDer::from(cert.clone())];
                        let config =
                            gdx_certs::tls::node_client_config(Some((chain, key.serialize_der())), &[root], None)
                                .map_err(|e| e.to_string())?;
                        let mut endpoint = quinn::Endpoint::client(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                            .map_err(|e| e.to_string())?;
                        endpoint.set_default_client_config(config);
                        let conn = endpoint
                            .connect(addr, gdx_certs::tls::hub_server_name())
                            .map_err(|e| e.to_string())?
                            .await
                            .map_err(|e| e.to_string())?;
                        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
                        let hello = Message::Hello(Hello {
                            node: node.clone(),
                            role: Role::Agent,
                            software: "gdx-bench".into(),
                            probe: false,
                        });
                        gdx_link::frames::send(&mut send, &hello).await.map_err(|e| e.to_string())?;
                        match gdx_link::frames::recv(&mut recv).await {
                            Ok(Some(Message::Welcome(_))) => {}
                            other => return Err(format!("hello: {other:?}")),
                        }
                        Ok::<_, String>((endpoint, conn))
                    };
                    // (the hub lets 128 handshakes from one address run at
                    // once and refuses the others, and every simulated
                    // agent comes from 127.0.0.1), for up to 5 minutes
                    let mut attempt = 0u64;
                    let connected = loop {
                        match connect().await {
                            Ok(c) => break Ok(c),
                            Err(e) if connecting.elapsed().as_secs() >= 300 => break Err(e),
                            Err(_) => {
                                attempt += 1;
                                // 1, 2, 3, 4, 5, 5, … s, and up to a second more, spread by agent
                                let jitter = (seed as u64 * 7919 + attempt * 104_729) % 1000;
                                let pause = attempt.min(5) * 1000 + jitter;
                                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                            }
                        }
                    };
                    // Phases, each ended by a barrier every agent reaches
                    // (an agent that failed passes through): all connected;
                    // each sends one changeset, which creates its vault at
                    // the hub; then the timed sending; then all close.
                    barrier.wait().await;
                    let mut streams = None;
                    let mut result: Result<Vec<f64>, String> = match &connected {
                        Ok((_, conn)) => match conn.open_bi().await {
                            Ok((mut up, mut down)) => {
                                let first = send_changesets(&mut up, &mut down, &node, &key, &cert, 1..=1, None).await;
                                streams = Some((up, down));
                                first
                            }
                            Err(e) => Err(e.to_string()),
                        },
                        Err(e) => Err(format!("connect: {e}")),
                    };
                    barrier.wait().await;
                    go.get_or_init(Instant::now);
                    if let (Some((up, down)), Ok(_)) = (&mut streams, &result) {
                        let pace = (rate > 0.0).then(|| (n as f64 / rate, seed));
                        result = send_changesets(up, down, &node, &key, &cert, 2..=per_agent + 1, pace).await;
                    }
                    // stay connected until everyone is done, as agents would
                    barrier.wait().await;
                    if let Ok((endpoint, conn)) = connected {
                        conn.close(0u32.into(), b"done");
                        endpoint.wait_idle().await;
                    }
                    result
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
            }
            out
        });
        let started = go.get().copied().unwrap_or(connecting);
        let connect_s = started.duration_since(connecting).as_secs_f64();
        let wall = started.elapsed().as_secs_f64();
        let hub_rss = hub.proc.as_ref().map_or(0, |p| rss_kib(p.child.id()));
        let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        let mut lat: Vec<f64> = outcomes.iter().filter_map(|o| o.as_ref().ok()).flatten().copied().collect();
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| percentile(&lat, p);
        let rate = lat.len() as f64 / wall;
        println!(
            "{:>6} {:>10} {:>14.0} {:>12.1} {:>12.1} {:>10.1}",
            n,
            n - failed.len(),
            rate,
            pct(0.5) * 1000.0,
            pct(0.99) * 1000.0,
            hub_rss as f64 / 1024.0
        );
        println!(
            "       ({} of {n} connected, each with its vault, in {connect_s:.1} s before sending)",
            n - failed.len()
        );
        if let Some(e) = failed.first() {
            println!("  {} agents failed, e.g.: {e}", failed.len());
        }
        results.push(serde_json::json!({ "agents": n, "vaults": vaults.name(), "offered_rate": rate, "connected": n - failed.len(), "changesets": lat.len(),
            "connect_s": connect_s, "send_wall_s": wall, "changesets_per_s": rate, "p50_ack_ms": pct(0.5) * 1000.0, "p99_ack_ms": pct(0.99) * 1000.0,
            "hub_rss_kib": hub_rss }));
        hub.terminate();
    }
    let name = match vaults {
        Vaults::Files => "fanin",
        Vaults::Encrypted => "fanin-at-rest",
        Vaults::Postgres(_) => "fanin-postgres",
    };
    write_json(name, &serde_json::Value::Array(results.clone()));
    results
}
