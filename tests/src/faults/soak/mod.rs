//! The soak: the demo's hierarchy (the province hub, the 海南州 and 西宁
//! prefecture hubs) and the demo's twenty departments at province,
//! prefecture and county level (or the first N of them, four at least),
//! every link impaired ([`super::Impairment`]),
//! the sources changing all the time and two grants delivering, one from
//! the province down to 海南州 and one from 海南州 across the province to
//! 西宁, while `--faults N` faults chosen by `--seed S` are injected one
//! after another: loss, delay with jitter, a 1 Mbit/s limit, reordering and
//! duplication, partitions, a flapping link, one way cut, a path MTU black
//! hole, agents and hubs SIGKILLed and started again, a hub restarting
//! while a link is impaired, two links at fault at once, and (as root, with
//! libfaketime) a hub's disk full under its whole data folder, a hub killed
//! while its disk is full, and an agent's clock ten minutes off.
//! As root, every hub and agent runs in a network namespace of its own and
//! each link is a wire the kernel sees ([`super::netns::Wire`]), impaired
//! the same way, which can also be pulled out (both ends down) or drop one
//! way in the kernel; elsewhere the processes share loopback and each link
//! is a relay.
//! Then every link heals, the sources stop, and the run checks that
//! everything converged: each vault equals its source by digest at every
//! level, each consumer's received table equals its grant's projection of
//! the source, and every audit log verifies with one `changeset` entry per
//! changeset the agent sent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::net::Ipv4Addr;

use super::machine::{Tmpfs, faketime_lib, running_as_root, skewed};
use super::netns::{self, Netns, Wire};
use super::{Impairment, Relay, Rng, Way};
use crate::{Agent, Hub};

mod kinds;
mod setup;
pub use kinds::kind_names;
use kinds::{KINDS, Kind, Link};
use setup::{StopOnDrop, change, declare, keep_folders, set_toml, within};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub faults: usize,
    pub seed: u64,
    /// Rows in each source at the start.
    pub rows: usize,
    /// Longest a fault is held (a flap up to twice that, a partition three times).
    pub max_hold: Duration,
    /// Longest the system may take to converge once everything healed.
    pub converge_limit: Duration,
    /// How many of the demo's departments take part (4 to 20).
    pub departments: usize,
    /// The kinds of fault drawn, by [`kind_names`]; empty: every kind this machine can make.
    pub only: Vec<String>,
    /// Print each fault on standard error as it ends.
    pub progress: bool,
    /// Keep the hubs' and agents' folders when the run passes too ([`setup::keep_folders`]).
    pub keep: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            faults: 40,
            seed: 1,
            rows: 200,
            max_hold: Duration::from_secs(3),
            converge_limit: Duration::from_secs(180),
            departments: 20,
            only: Vec::new(),
            progress: false,
            keep: false,
        }
    }
}

/// How the faults of one kind went.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct KindReport {
    pub count: usize,
    /// Seconds held in all.
    pub held_s: f64,
    /// Seconds from the heal until a row written then at the source of the
    /// department behind the fault was in the vault it reaches last (the
    /// longest, and the mean): the time to converge after the fault.
    pub recovered_max_s: f64,
    pub recovered_mean_s: f64,
}

/// One fault injected.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultRecord {
    pub kind: String,
    /// What it acted on: a hub, an agent, or a link by the department or prefecture behind it.
    pub at: String,
    pub held_s: f64,
    /// Seconds from the heal until a change made then arrived where it arrives last.
    pub recovered_s: f64,
}

/// What a run did and found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub seed: u64,
    pub faults: usize,
    pub by_kind: BTreeMap<String, KindReport>,
    /// Rows inserted, updated and deleted at the sources during the run.
    pub source_changes: u64,
    /// Seconds from the end of the faults (the sources stopped) until
    /// every copy equalled its source.
    pub converged_s: f64,
    /// Every fault, in the order injected.
    pub each: Vec<FaultRecord>,
    pub elapsed_s: f64,
    /// What was checked at the end, each as it was found.
    pub checks: Vec<String>,
}

/// The address of hub `h` in its namespace, which every namespace joined
/// to it routes through their wire.
fn service_address(h: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 80, h as u8, 1)
}

/// One department: its agent, its source and the link to its hub.
struct Department {
    agent: Agent,
    db: PathBuf,
    link: Link,
    node: String,
    /// The resource, and so its vault table.
    code: &'static str,
    /// Index into the hubs: 0 the province, 1 海南州, 2 西宁.
    hub: usize,
}

/// The hubs' names, by index, for the report.
const HUB_NAMES: [&str; 3] = ["the province", "海南州", "西宁"];

/// The department behind each hub, whose changes a fault of that hub delays.
const HUB_DEPARTMENT: [usize; 3] = [0, 1, 3];

/// The grants: (provider, consumer, the provider's catalogue entry, the consumer's received table), by
/// department.
const GRANTS: [(usize, usize, &str, &str); 2] =
    [(0, 2, "301001/000101", "gongan_huji_630000"), (2, 3, "301001/000102", "minzheng_jiuzhu_632522")];

/// Where a change written at a department's source arrives last.
enum Farthest {
    /// Its vault at this hub (the province's, for the base resource).
    Vault(usize),
    /// The received table of this consumer, under its grant (by 姓名).
    Received(usize, &'static str),
}

/// Runs the soak; an error says which check failed and how.
pub fn run(o: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    for name in &o.only {
        anyhow::ensure!(
            kind_names().iter().any(|(short, _)| short == name),
            "no fault is named {name}; the names are {}",
            kind_names().iter().map(|(short, _)| *short).collect::<Vec<_>>().join(", ")
        );
    }
    gdx_certs::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new()?;
    let tmp = tempfile::tempdir()?;
    let mut rng = Rng::new(o.seed);

    // as root, each hub's whole data folder (stores, audit log, vaults, its log) on a small disk of
    // its own, to fill: room for what the run itself writes (a 1,000-fault run's prefecture holds
    // about 64 MiB at the end with two departments, and each vault's WAL file grows to 4 MiB before
    // it is checkpointed), so that only the faults fill it
    let root = running_as_root();
    let mut disks: Vec<Tmpfs> = Vec::new();
    let disk_size = format!("{}m", 64 + 4 * o.departments + o.faults / 4);
    let mut disk_for = |hub: &Hub| {
        if root && let Some(disk) = Tmpfs::try_mount_keeping(hub.dir.path(), &disk_size) {
            disks.push(disk);
        }
    };
    // as root, a network namespace for each hub and each agent (removed after the processes in them)
    let spaces = netns::unavailable().is_none();
    let make = |n: usize| (0..n).map(|_| Netns::new()).collect::<std::io::Result<Vec<Netns>>>();
    let specs = setup::departments(o.departments)?;
    let (hub_spaces, agent_spaces) = if spaces { (make(3)?, make(specs.len())?) } else { (Vec::new(), Vec::new()) };
    for (h, ns) in hub_spaces.iter().enumerate() {
        ns.service_address(service_address(h))?;
    }
    let mut province = match hub_spaces.first() {
        Some(ns) => netns::hub_at(ns, "630000", service_address(0)),
        None => Hub::init("630000"),
    };
    disk_for(&province);
    province.start();
    let mut hubs = vec![province];
    // each prefecture reaches the province through a link of its own
    let mut uplinks = Vec::new();
    for (h, division) in [(1, "632500"), (2, "630100")] {
        let token = hubs[0].hub_token(&format!("{division}/hub"));
        let (mut prefecture, uplink) = match hub_spaces.get(h) {
            Some(ns) => {
                let wire = Wire::join(ns, &hub_spaces[0], rng.next_u64())?;
                wire.route(Way::Up, service_address(0))?;
                (netns::hub_joining_at(ns, &token, service_address(h)), Link::Wire(Box::new(wire)))
            }
            None => {
                let prefecture = Hub::join(&token);
                let relay = rt.block_on(Relay::start(hubs[0].addr.parse()?, rng.next_u64()))?;
                set_toml(&prefecture.dir.path().join("hub.toml"), "parent_addr", &relay.addr.to_string())?;
                (prefecture, Link::Relay(relay))
            }
        };
        disk_for(&prefecture);
        prefecture.start();
        hubs.push(prefecture);
        uplinks.push(uplink);
    }
    let faketime = faketime_lib();
    let mut kinds = KINDS.to_vec();
    // every hub's or none (a mount refused leaves the kind out)
    if disks.len() == hubs.len() {
        kinds.extend([Kind::DiskFull, Kind::KillWhileDiskFull]);
    }
    kinds.extend(faketime.as_ref().map(|_| Kind::ClockSkew));
    if spaces {
        kinds.extend([Kind::Unplug, Kind::KernelDrop]);
    }
    if !o.only.is_empty() {
        for name in &o.only {
            anyhow::ensure!(
                kinds.iter().any(|k| k.short() == name),
                "no fault {name} here: this machine can make {}",
                kinds.iter().map(|k| k.short()).collect::<Vec<_>>().join(", ")
            );
        }
        kinds.retain(|k| o.only.iter().any(|name| name == k.short()));
    }
    // unmounted before the hubs' folders are removed (bound after them, dropped before)
    let disks = disks;

    let mut departments = Vec::new();
    for (j, setup::Spec { node, hub, code, entry, class }) in specs.into_iter().enumerate() {
        let (agent, wire) = match agent_spaces.get(j) {
            Some(ns) => {
                let wire = Wire::join(ns, &hub_spaces[hub], rng.next_u64())?;
                wire.route(Way::Up, service_address(hub))?;
                (netns::agent_in(ns), Some(wire))
            }
            None => (Agent::new(), None),
        };
        agent.enroll(&hubs[hub].token(&node, "1h")).ok();
        let db = tmp.path().join(format!("{}.db", node.replace('/', "-")));
        let rows: Vec<(String, String)> = (0..o.rows).map(|i| (format!("r{i}"), format!("姓名{i}"))).collect();
        crate::people_table(&db, &rows.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
        declare(&agent, code, &entry, class, &db);
        let link = match wire {
            Some(wire) => Link::Wire(Box::new(wire)),
            None => {
                let relay = rt.block_on(Relay::start(hubs[hub].addr.parse()?, rng.next_u64()))?;
                agent.set_config("hub_addr", &relay.addr.to_string());
                Link::Relay(relay)
            }
        };
        departments.push(Department { agent, db, link, node, code, hub });
    }
    for d in &mut departments {
        d.agent.start();
    }
    // longer than an agent's longest backoff (60 s ± 20 %) after a connect attempt that timed out (15 s)
    let deadline = Duration::from_secs(120);
    for d in &departments {
        within(deadline, || d.agent.connected()).ok_or_else(|| anyhow::anyhow!("{} never connected", d.node))?;
    }
    // the grants (无条件共享: granted at once): 同德 民政 asks for the province's register, 城东区 民政 for
    // 同德 民政's
    for (_, consumer, entry, _) in GRANTS {
        let hub = &hubs[departments[consumer].hub];
        let catalogued = within(deadline, || hub.cmd(&["catalog", "list"]).stdout.contains(entry));
        catalogued
            .ok_or_else(|| anyhow::anyhow!("{entry} never reached the catalogue of {}", departments[consumer].node))?;
        let request = departments[consumer].agent.cmd(&[
            "request",
            "--resource",
            entry,
            "--fields",
            "姓名",
            "--purpose",
            "故障演练",
        ]);
        anyhow::ensure!(request.code == 0, "the request of {} failed: {}", departments[consumer].node, request.stderr);
    }

    // the sources change all the time
    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU64::new(0));
    let changer = {
        let (stop, changes) = (stop.clone(), changes.clone());
        let dbs: Vec<PathBuf> = departments.iter().map(|d| d.db.clone()).collect();
        let mut rng = Rng::new(o.seed ^ 0x5eed);
        std::thread::spawn(move || {
            let next_id = AtomicU64::new(0);
            while !stop.load(Ordering::Relaxed) {
                let db = &dbs[rng.below(dbs.len() as u64) as usize];
                change(db, &mut rng, &next_id);
                changes.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50 + rng.below(200)));
            }
        })
    };
    // the changer stops however the run ends
    let _stopping = StopOnDrop(stop.clone());

    let mut by_kind: BTreeMap<Kind, (KindReport, Vec<f64>)> = BTreeMap::new();
    let mut each = Vec::new();
    // the links: the departments' (0..n), then each prefecture's to the province (n: 海南州, n + 1: 西宁)
    let n = departments.len();
    let link_name = |link: usize, departments: &[Department]| match link.checked_sub(n) {
        None => format!("the link of {}", departments[link].node),
        Some(0) => "the link 海南州 → the province".to_owned(),
        Some(_) => "the link 西宁 → the province".to_owned(),
    };
    let hold =
        |rng: &mut Rng, scale: u64| Duration::from_millis(200 + rng.below(o.max_hold.as_millis() as u64 * scale));
    for i in 0..o.faults {
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let link = rng.below(n as u64 + 2) as usize;
        let at = if link >= n { &uplinks[link - n] } else { &departments[link].link };
        let held = Instant::now();
        // the department behind the fault, when not the link's, and what the fault acted on
        let mut behind = None;
        let mut acted_on = link_name(link, &departments);
        match kind {
            Kind::Loss | Kind::Delay | Kind::Bandwidth | Kind::ReorderDuplicate => {
                at.set(match kind {
                    Kind::Loss => Impairment { loss: 0.05 + rng.unit() * 0.15, ..Impairment::default() },
                    Kind::Delay => Impairment {
                        delay: Duration::from_millis(300),
                        jitter: Duration::from_millis(50),
                        ..Impairment::default()
                    },
                    Kind::Bandwidth => Impairment::satellite(0.05),
                    _ => Impairment {
                        reorder: 0.1,
                        duplicate: 0.05,
                        delay: Duration::from_millis(20),
                        jitter: Duration::from_millis(20),
                        ..Impairment::default()
                    },
                });
                std::thread::sleep(hold(&mut rng, 1));
                at.set(Impairment::default());
            }
            Kind::Partition => {
                at.set(Impairment { down: true, ..Impairment::default() });
                std::thread::sleep(hold(&mut rng, 3));
                at.set(Impairment::default());
            }
            Kind::Flap => {
                let until = Instant::now() + hold(&mut rng, 2);
                let mut down = false;
                while Instant::now() < until {
                    down = !down;
                    at.set(Impairment { down, ..Impairment::default() });
                    std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
                }
                at.set(Impairment::default());
            }
            Kind::KillAgent => {
                let d = &mut departments[link % n];
                if let Some(mut p) = d.agent.proc.take() {
                    p.kill();
                }
                std::thread::sleep(hold(&mut rng, 1));
                d.agent.start();
                behind = Some(link % n);
                acted_on = format!("the agent of {}", departments[link % n].node);
            }
            Kind::KillHub => {
                let h = link % 3;
                hubs[h].stop();
                std::thread::sleep(hold(&mut rng, 1));
                hubs[h].start();
                behind = Some(HUB_DEPARTMENT[h]);
                acted_on = format!("the hub of {}", HUB_NAMES[h]);
            }
            Kind::OneWay => {
                let way = if rng.below(2) == 0 { Way::Up } else { Way::Down };
                at.set_way(way, Impairment { down: true, ..Impairment::default() });
                std::thread::sleep(hold(&mut rng, 3));
                at.set(Impairment::default());
            }
            Kind::MtuBlackHole => {
                at.set(Impairment { mtu: Some(1280), ..Impairment::default() });
                std::thread::sleep(hold(&mut rng, 2));
                at.set(Impairment::default());
            }
            Kind::Overlap => {
                let h = rng.below(3) as usize;
                at.set(Impairment { loss: 0.1 + rng.unit() * 0.1, ..Impairment::satellite(0.0) });
                hubs[h].stop();
                std::thread::sleep(hold(&mut rng, 1));
                hubs[h].start();
                std::thread::sleep(hold(&mut rng, 1));
                at.set(Impairment::default());
                acted_on = format!("the hub of {} and {acted_on}", HUB_NAMES[h]);
            }
            Kind::TwoLinks => {
                // this link cut, and another one lossy at the same time
                let other = (link + 1 + rng.below(n as u64 + 1) as usize) % (n + 2);
                let other = if other >= n { &uplinks[other - n] } else { &departments[other].link };
                at.set(Impairment { down: true, ..Impairment::default() });
                other.set(Impairment { loss: 0.1 + rng.unit() * 0.1, ..Impairment::default() });
                std::thread::sleep(hold(&mut rng, 2));
                at.set(Impairment::default());
                other.set(Impairment::default());
            }
            Kind::KillWhileDiskFull => {
                // killed while its writes fail for want of space, started again once there is room
                let h = link % 3;
                let filler = disks[h].fill();
                std::thread::sleep(hold(&mut rng, 1));
                hubs[h].stop();
                std::fs::remove_file(filler)?;
                hubs[h].start();
                behind = Some(HUB_DEPARTMENT[h]);
                acted_on = format!("the hub of {}", HUB_NAMES[h]);
            }
            Kind::DiskFull => {
                let h = link % 3;
                let filler = disks[h].fill();
                std::thread::sleep(hold(&mut rng, 1));
                std::fs::remove_file(filler)?;
                behind = Some(HUB_DEPARTMENT[h]);
                acted_on = format!("the hub of {}", HUB_NAMES[h]);
            }
            Kind::Unplug => {
                if let Link::Wire(wire) = at {
                    wire.unplug(true)?;
                    std::thread::sleep(hold(&mut rng, 3));
                    wire.unplug(false)?;
                }
            }
            Kind::KernelDrop => {
                if let Link::Wire(wire) = at {
                    let way = if rng.below(2) == 0 { Way::Up } else { Way::Down };
                    wire.blackhole(way, true)?;
                    std::thread::sleep(hold(&mut rng, 3));
                    wire.blackhole(way, false)?;
                }
            }
            Kind::ClockSkew => {
                let d = &mut departments[link % n];
                if let (Some(mut p), Some(lib)) = (d.agent.proc.take(), faketime.as_ref()) {
                    p.kill();
                    let offset = if rng.below(2) == 0 { "-10m" } else { "+10m" };
                    let env = skewed(lib, offset);
                    d.agent.start_env(&env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
                    std::thread::sleep(hold(&mut rng, 2));
                    if let Some(mut p) = d.agent.proc.take() {
                        p.kill();
                    }
                    d.agent.start();
                }
                behind = Some(link % n);
                acted_on = format!("the agent of {}", departments[link % n].node);
            }
        }
        let entry = by_kind.entry(kind).or_default();
        entry.0.count += 1;
        let held_secs = held.elapsed().as_secs_f64();
        entry.0.held_s += held_secs;
        // recovered: a row written at the source of the department behind the fault after the heal is
        // where it arrives last: the province's vault for the base resource behind 海南州's link, and
        // 城东区 民政's received table for 同德 民政's register behind 西宁's
        let (d, farthest) = match behind {
            Some(d) => (d, None),
            None if link == n => (1, Some(Farthest::Vault(0))),
            None if link == n + 1 => (2, Some(Farthest::Received(3, GRANTS[1].3))),
            None => (link, None),
        };
        let dept = &departments[d];
        let farthest = farthest.unwrap_or(Farthest::Vault(if dept.code == "renkou" { 0 } else { dept.hub }));
        let (marker, name) = (format!("m{i}"), format!("标记{i}"));
        {
            let c = rusqlite::Connection::open(&dept.db)?;
            c.busy_timeout(Duration::from_secs(5))?;
            c.execute("INSERT INTO people VALUES (?1, ?2)", [&marker, &name])?;
        }
        let (at, query, value) = match farthest {
            Farthest::Vault(h) => (
                crate::vault(&hubs[h], &dept.node),
                format!("SELECT count(*) FROM \"{}\" WHERE id = ?1", dept.code),
                &marker,
            ),
            Farthest::Received(consumer, table) => (
                departments[consumer].agent.dir.path().join("received.db"),
                format!("SELECT count(*) FROM \"{table}\" WHERE name = ?1"),
                &name,
            ),
        };
        let took = within(deadline, || {
            rusqlite::Connection::open_with_flags(&at, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|c| c.query_row(&query, [value], |r| r.get::<_, i64>(0)))
                .is_ok_and(|n| n == 1)
        })
        .ok_or_else(|| {
            let kept = keep_folders(&hubs, &departments, o.seed);
            // a disk that filled by itself is the run's trouble, not the fault's
            let disks: Vec<String> =
                disks.iter().zip(HUB_NAMES).map(|(d, name)| format!("{name}'s disk {}", d.usage())).collect();
            anyhow::anyhow!(
                "fault {i} ({}, link {link}): a change made after the heal never reached {}{}; the hubs' and agents' \
                 folders and logs are kept in {}",
                kind.name(),
                dept.node,
                if disks.is_empty() { String::new() } else { format!(" ({})", disks.join(", ")) },
                kept.display()
            )
        })?;
        entry.1.push(took);
        if o.progress {
            eprintln!("fault {i}: {} on {acted_on}, held {held_secs:.1} s, recovered in {took:.1} s", kind.name());
        }
        each.push(FaultRecord { kind: kind.name().to_owned(), at: acted_on, held_s: held_secs, recovered_s: took });
        std::thread::sleep(Duration::from_millis(100 + rng.below(300)));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = changer.join();

    // everything converges: vaults at every level, the grant, the audit logs
    let cols = ["id", "name"];
    let vault = |h: usize, node: &str| crate::vault(&hubs[h], node);
    let mut checks = Vec::new();
    let converged = within(o.converge_limit, || {
        departments.iter().all(|d| {
            let source = crate::try_table_checksum(&d.db, "people", &cols);
            source.is_some() && source == crate::try_table_checksum(&vault(d.hub, &d.node), d.code, &cols)
        }) && crate::try_table_checksum(&departments[1].db, "people", &cols)
            == crate::try_table_checksum(&vault(0, "632522/gongan"), "renkou", &cols)
            && GRANTS.iter().all(|&(provider, consumer, _, table)| {
                crate::try_table_checksum(&departments[provider].db, "people", &["name"])
                    == crate::try_table_checksum(
                        &departments[consumer].agent.dir.path().join("received.db"),
                        table,
                        &["name"],
                    )
            })
    });
    let converged_s = converged.ok_or_else(|| {
        let kept = keep_folders(&hubs, &departments, o.seed);
        anyhow::anyhow!(
            "not converged within {:?} of the last heal; the hubs' and agents' folders and logs are kept in {}",
            o.converge_limit,
            kept.display()
        )
    })?;
    for d in &departments {
        checks.push(format!(
            "{}: its hub's vault equals the source ({:?} rows)",
            d.node,
            crate::try_table_checksum(&d.db, "people", &cols).map(|c| c.0)
        ));
    }
    checks.push("632522/gongan: the province's copy of the base resource equals the source".into());
    for (provider, consumer, _, _) in GRANTS {
        checks.push(format!(
            "{}: the received table equals the grant's projection (姓名) of {}'s source",
            departments[consumer].node, departments[provider].node
        ));
    }
    for (hub, name) in hubs.iter().zip(HUB_NAMES) {
        let verified = hub.cmd(&["audit", "verify"]);
        if verified.code != 0 {
            let kept = keep_folders(&hubs, &departments, o.seed);
            anyhow::bail!(
                "the audit log of {name} does not verify: {}; the folders are kept in {}",
                verified.stderr,
                kept.display()
            );
        }
        checks.push(format!("the audit log of {name} verifies"));
    }
    // one changeset entry per changeset the agent sent, numbered 1 to the last, at its own hub (and at the
    // province for the base resource): waited for, since the log takes what the vaults noted every half second
    for d in &departments {
        let mut hubs_to_check = vec![d.hub];
        if d.code == "renkou" {
            hubs_to_check.push(0);
        }
        for h in hubs_to_check {
            let mut last = String::new();
            let matched = within(o.converge_limit, || {
                let Ok(status) = serde_json::from_str::<serde_json::Value>(&d.agent.cmd(&["status", "--json"]).stdout)
                else {
                    return false;
                };
                let r = &status["resources"][0];
                let (acked, made) = (r["acked_seq"].as_u64().unwrap_or(0), r["last_seq"].as_u64().unwrap_or(0));
                let entries =
                    hubs[h].cmd(&["audit", "list", "--kind", "changeset", "--node", &d.node, "--format", "jsonl"]);
                let mut seqs: Vec<u64> = entries
                    .stdout
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter_map(|e| e["detail"]["seq"].as_u64())
                    .collect();
                seqs.sort_unstable();
                last = format!("{} entries for {acked} acknowledged of {made} made", seqs.len());
                acked == made && seqs == (1..=acked).collect::<Vec<u64>>()
            });
            if matched.is_none() {
                let kept = keep_folders(&hubs, &departments, o.seed);
                anyhow::bail!(
                    "{} at {}: the changeset entries are not one per changeset: {last}; the folders are kept in {}",
                    d.node,
                    HUB_NAMES[h],
                    kept.display()
                );
            }
            checks.push(format!(
                "{}: at {}, one changeset entry per changeset, numbered 1 to the last ({last})",
                d.node, HUB_NAMES[h]
            ));
        }
    }
    let by_kind = by_kind
        .into_iter()
        .map(|(k, (mut r, times))| {
            if !times.is_empty() {
                r.recovered_max_s = times.iter().copied().fold(0.0, f64::max);
                r.recovered_mean_s = times.iter().sum::<f64>() / times.len() as f64;
            }
            (k.name().to_owned(), r)
        })
        .collect();
    if o.keep {
        checks.push(format!(
            "the hubs' and agents' folders are kept in {}",
            keep_folders(&hubs, &departments, o.seed).display()
        ));
    }
    Ok(Report {
        seed: o.seed,
        faults: o.faults,
        by_kind,
        source_changes: changes.load(Ordering::Relaxed),
        converged_s,
        each,
        elapsed_s: started.elapsed().as_secs_f64(),
        checks,
    })
}
