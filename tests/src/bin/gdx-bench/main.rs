//! `gdx-bench`: extract-sync throughput and incremental cost, each against a
//! baseline run in the same process on the same data.
//!
//! Baselines: a local SQLite copy of the table (`INSERT … SELECT` across an
//! attached database: the fastest a full copy can be on this machine), and
//! rsync of the database file (a full copy, then its delta after the change),
//! when rsync is installed. GDX: `gdx-agent sync` of the same table through a
//! real hub on 127.0.0.1 (QUIC, mutual TLS, signatures, fsync'd commits).
//!
//! Usage: `cargo run --release -p gdx-tests --bin gdx-bench -- SCENARIO [options]`
//! (`--help` lists them). Each prints a table and writes
//! `gdx-bench-SCENARIO.json` in the current directory.
//!
//! `initial` and `incremental`: a table of generated people keyed the way
//! department tables are (`--key int,text,composite`: an integer id, the
//! 公民身份号码, or (county code, sequence number)), synced in full, then
//! after `--change-pct` % of its rows changed. `sweep`: the first sync and
//! a 1 % change of each key shape at each size (`--sizes`), time per row
//! and the agent's peak memory, so growth worse than linear shows. `csv`:
//! a GBK CSV export of `--rows` people dropped into a folder and synced,
//! with the agent's peak memory.
//!
//! `audit`: durable appends per second (one transaction each, and collected
//! from a store's outbox as the hub does), then the time to verify a log of
//! N entries.
//!
//! `relay`: N one-row changes of a county agent's base resource, each timed
//! from `gdx-agent sync` until the province's vault holds it (through the
//! prefecture hub); p50 and p99.
//!
//! `fanin`: N simulated agents, each with its own certificate from the
//! hub's CA, its own UDP socket and one QUIC connection, each sending one
//! changeset (its vault is created) and then 5 (`--per-agent`) timed
//! one-row changesets, each after the previous one's acknowledgement;
//! sustained changesets per second, p99 acknowledgement latency and the
//! hub's memory.
//!
//! `footprint`: binary sizes and the idle memory (RSS) of a hub and an agent.
//!
//! `exchange`: a register shared 无条件共享 and granted across two hubs:
//! delivery against the provider's sync, a change seen at the consumer,
//! lookups, the lookup copy's size (`exchange.rs`).
//!
//! `link`: a county on a 1 Mbit/s, 300 ms, 5 % loss link, the agent and
//! the hub in network namespaces of their own: the first sync and a 1 %
//! change against rsync -z over the same link (`link.rs`; root only).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use gdx_common::DivisionCode;
use gdx_common::generate::{Generator, Person};
use gdx_tests::{Agent, Hub, PEOPLE_COLUMNS};

mod base;
mod db;
mod exchange;
mod link;
mod load;
mod sync;

use exchange::exchange_bench;
use load::{audit_bench, fanin_bench, footprint_bench, relay_bench};
use sync::{KeyShape, csv_bench, sweep_bench, sync_bench};

#[derive(Parser)]
#[command(
    name = "gdx-bench",
    about = "Measures GDX against baselines run in the same process on the same data",
    after_help = "Examples:\n  gdx-bench initial --rows 1000000 --key int\n  gdx-bench sweep --sizes 100000,200000,400000,800000\n  gdx-bench csv --rows 1000000\n  gdx-bench fanin --agents 100,1000"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// First sync of a generated table against a local SQLite copy and rsync, then the incremental sync (as `incremental`)
    Initial(SyncArgs),
    /// A first sync, then the sync of a change of --change-pct % of the rows against rsync's delta; writes
    /// gdx-bench-initial.json and gdx-bench-incremental.json (as `initial`)
    Incremental(SyncArgs),
    /// First sync and a 1 % change of each key shape at each size: time per row and peak memory
    Sweep {
        /// Table sizes, in rows
        #[arg(long, value_delimiter = ',', default_value = "100000,200000,400000,800000")]
        sizes: Vec<i64>,
        /// Key shapes
        #[arg(long, value_delimiter = ',', default_value = "int,text,composite")]
        key: Vec<KeyShape>,
    },
    /// A GBK CSV export dropped into a folder and synced, with the agent's peak memory
    Csv {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
    },
    /// One-row changes from a county agent through its prefecture hub to the province: p50 and p99
    Relay {
        #[arg(long, default_value_t = 50)]
        changes: usize,
    },
    /// Many simulated agents sending changesets to one hub
    Fanin {
        /// Numbers of agents, one run each
        #[arg(long, value_delimiter = ',', default_value = "100,1000")]
        agents: Vec<usize>,
        /// Timed one-row changesets each agent sends, one after the other's acknowledgement
        #[arg(long, default_value_t = 5)]
        per_agent: u64,
        /// Changesets per second from all agents together, each agent at random moments (open loop); 0 sends each at once after the previous acknowledgement (closed loop, the most the hub takes)
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// A register shared 无条件共享 at the province and granted to a county under a prefecture: delivery against the provider's sync, how soon a 1 % change is seen, lookups, the lookup copy's size
    Exchange {
        #[arg(long, default_value_t = 500_000)]
        rows: i64,
        /// `gdx-agent lookup` commands timed
        #[arg(long, default_value_t = 100)]
        lookups: usize,
        /// The province's stores (its vaults and exchange store) on a real PostgreSQL; the prefecture
        /// stays on files, as prefecture hubs do
        #[arg(long)]
        postgres: bool,
    },
    /// What keeping the vaults and exchange.db encrypted at rest costs:
    /// initial and incremental sync, and fan-in, plain then encrypted.
    AtRest {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        #[arg(long, default_value_t = 1000)]
        agents: usize,
    },
    /// The population base merged from 公安's register and three partial members: the merge against
    /// the members' syncs, a 1 % change, `get` latency
    Base {
        #[arg(long, default_value_t = 6_000_000)]
        people: usize,
    },
    /// A table in a real PostgreSQL against `COPY … TO STDOUT`.
    Postgres {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
    },
    /// A table in a real MariaDB against a streaming read.
    Mysql {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
    },
    /// Binary sizes and idle memory of a hub and an agent
    Footprint,
    /// A county on a slow, lossy link: first sync and a change, GDX against rsync -z over the same link
    /// (root: network namespaces)
    Link {
        #[arg(long, default_value_t = 100_000)]
        rows: i64,
        #[arg(long, default_value_t = 1.0)]
        change_pct: f64,
        /// Share of packets lost each way
        #[arg(long, default_value_t = 0.05)]
        loss: f64,
        /// One-way delay (jitter is a sixth of it)
        #[arg(long, default_value_t = 300)]
        delay_ms: u64,
        /// Bandwidth each way
        #[arg(long, default_value_t = 1000)]
        rate_kbps: u64,
        /// QUIC congestion control of the agent and the hub
        #[arg(long, default_value = "bbr", value_parser = ["bbr", "cubic"])]
        congestion: String,
    },
    /// The vaults in SQLite files, then in a real PostgreSQL (fsync on), the same runs each: a first
    /// and an incremental sync, and fan-in (hub.toml `store`, docs/operator.md)
    Store {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        #[arg(long, default_value_t = 1000)]
        agents: usize,
        /// Changesets each agent sends in fan-in, after the one that makes its vault
        #[arg(long, default_value_t = 5)]
        per_agent: u64,
    },
    /// Audit log appends per second and verification time
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
    },
}

#[derive(clap::Args)]
struct SyncArgs {
    /// Rows in the generated table
    #[arg(long, default_value_t = 1_000_000)]
    rows: i64,
    /// Percentage of the rows changed before the incremental sync (80 % updated, 10 % deleted, 10 % new)
    #[arg(long, default_value_t = 1.0)]
    change_pct: f64,
    /// Key shapes, one run each
    #[arg(long, value_delimiter = ',', default_value = "int,text,composite")]
    key: Vec<KeyShape>,
    /// Times the local copy and the first sync are each run (the first sync on a new hub and agent
    /// each time); their medians are compared
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    repeat: u32,
}

fn main() {
    match Cli::parse().scenario {
        Scenario::Initial(a) | Scenario::Incremental(a) => {
            let runs: Vec<(serde_json::Value, serde_json::Value)> =
                a.key.iter().map(|&shape| sync_bench(shape, a.rows, a.change_pct, a.repeat, Vaults::Files)).collect();
            let (initial, incremental): (Vec<_>, Vec<_>) = runs.into_iter().unzip();
            write_json("initial", &serde_json::json!(initial));
            write_json("incremental", &serde_json::json!(incremental));
        }
        Scenario::Sweep { sizes, key } => sweep_bench(&sizes, &key),
        Scenario::Csv { rows } => csv_bench(rows),
        Scenario::Relay { changes } => relay_bench(changes),
        Scenario::Exchange { rows, lookups, postgres } => exchange_bench(rows, lookups, postgres),
        Scenario::Fanin { agents, per_agent, rate } => {
            fanin_bench(&agents, per_agent, rate, Vaults::Files);
        }
        Scenario::AtRest { rows, agents } => at_rest_bench(rows, agents),
        Scenario::Store { rows, agents, per_agent } => store_bench(rows, agents, per_agent),
        Scenario::Base { people } => base::base_bench(people),
        Scenario::Postgres { rows } => db::db_bench(db::Engine::Postgres, rows),
        Scenario::Mysql { rows } => db::db_bench(db::Engine::Mysql, rows),
        Scenario::Footprint => footprint_bench(),
        Scenario::Link { rows, change_pct, loss, delay_ms, rate_kbps, congestion } => {
            link::link_bench(rows, change_pct, loss, delay_ms, rate_kbps, &congestion)
        }
        Scenario::Audit { entries } => audit_bench(entries),
    }
}

/// The seed of the generated population (`gdx_common::generate`).
const SEED: u64 = 2026;

/// A hub on 127.0.0.1 and an agent enrolled at it, syncing `toml`'s resource.
/// Where a benchmark's hub keeps its vaults.
#[derive(Clone, Copy)]
enum Vaults<'a> {
    /// SQLite files, plain.
    Files,
    /// SQLite files encrypted at rest (exchange.db too).
    Encrypted,
    /// A real PostgreSQL server (hub.toml `store = { kind = "postgres" }`).
    Postgres(&'a gdx_tests::servers::Postgres),
}

impl Vaults<'_> {
    /// Makes `hub`, initialised and not yet started, keep its vaults so.
    fn prepare(self, hub: &Hub) {
        match self {
            Vaults::Files => {}
            Vaults::Encrypted => {
                hub.encrypt_at_rest();
            }
            Vaults::Postgres(pg) => {
                pg.hold_vaults_of(hub);
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Vaults::Files => "sqlite",
            Vaults::Encrypted => "sqlite encrypted",
            Vaults::Postgres(_) => "postgres",
        }
    }
}

fn hub_and_agent(resource_toml: &str, vaults: Vaults) -> (Hub, Agent) {
    let mut hub = Hub::init("630000");
    vaults.prepare(&hub);
    hub.start();
    let agent = Agent::new();
    agent.enroll(&hub.token("630000/gongan", "1h")).ok();
    agent.add_config(resource_toml);
    (hub, agent)
}

/// One `gdx-agent sync`: seconds, bytes and rows sent, the agent's peak RSS in MiB.
fn timed_sync(agent: &Agent) -> (f64, u64, u64, f64) {
    timed_sync_of(agent, None)
}

/// [`timed_sync`] of one resource, or of all.
fn timed_sync_of(agent: &Agent, resource: Option<&str>) -> (f64, u64, u64, f64) {
    let t = Instant::now();
    let args: Vec<&str> = resource.map(|r| vec!["--resource", r]).unwrap_or_default();
    let (code, out, err) = agent.sync(&args);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(code, 0, "sync failed: {err}");
    let mib = out["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0;
    (secs, out["sent_bytes"].as_u64().unwrap_or(0), out["sent_rows"].as_u64().unwrap_or(0), mib)
}

/// `store`: the same runs with the vaults in SQLite files and in a real
/// PostgreSQL, and PostgreSQL's time as a ratio.
fn store_bench(rows: i64, agents: usize, per_agent: u64) {
    let Some(pg) = gdx_tests::servers::Postgres::start() else {
        println!("gdx-bench store: PostgreSQL is not installed, so there is nothing to compare; skipped");
        return;
    };
    pg.restart_durable();
    compare("store", rows, agents, per_agent, ("sqlite", Vaults::Files), ("postgres", Vaults::Postgres(&pg)));
}

/// `at-rest`: the same runs on a plain hub and on one keeping its vaults
/// and exchange.db encrypted, and the encrypted one's time as a ratio.
fn at_rest_bench(rows: i64, agents: usize) {
    compare("at-rest", rows, agents, 5, ("plain", Vaults::Files), ("encrypted", Vaults::Encrypted));
}

/// A first and an incremental sync of `rows` integer-keyed rows, and
/// fan-in of `agents`, on a hub keeping its vaults as `a` says, then as
/// `b`: `b`'s figures as ratios of `a`'s, printed and in
/// gdx-bench-SCENARIO.json (each side under its name).
fn compare(scenario: &str, rows: i64, agents: usize, per_agent: u64, a: (&str, Vaults), b: (&str, Vaults)) {
    let runs = [a.1, b.1].map(|v| {
        let (initial, incremental) = sync_bench(sync::KeyShape::Int, rows, 1.0, 1, v);
        (initial, incremental, fanin_bench(&[agents], per_agent, 0.0, v).remove(0))
    });
    let [(a_initial, a_inc, a_fanin), (b_initial, b_inc, b_fanin)] = &runs;
    let ratio = |x: &serde_json::Value, y: &serde_json::Value, k: &str| {
        y[k].as_f64().unwrap_or(0.0) / x[k].as_f64().unwrap_or(1.0).max(1e-9)
    };
    let pair = |x: &serde_json::Value, y: &serde_json::Value, k: &str| serde_json::json!({ a.0: x[k], b.0: y[k], "ratio": ratio(x, y, k) });
    let summary = serde_json::json!({
        "rows": rows, "agents": agents, "per_agent": per_agent,
        "initial_s": pair(a_initial, b_initial, "gdx_s"),
        "incremental_s": pair(a_inc, b_inc, "gdx_s"),
        "fanin_changesets_per_s": pair(a_fanin, b_fanin, "changesets_per_s"),
        "fanin_p99_ack_ms": { a.0: a_fanin["p99_ack_ms"], b.0: b_fanin["p99_ack_ms"] },
    });
    println!(
        "{scenario}, {} / {}: initial sync {:.2}x the time, incremental {:.2}x, fan-in {:.2}x the changesets/s",
        b.0,
        a.0,
        summary["initial_s"]["ratio"].as_f64().unwrap_or(0.0),
        summary["incremental_s"]["ratio"].as_f64().unwrap_or(0.0),
        summary["fanin_changesets_per_s"]["ratio"].as_f64().unwrap_or(0.0)
    );
    write_json(scenario, &summary);
}

fn write_json(scenario: &str, value: &serde_json::Value) {
    let path = format!("gdx-bench-{scenario}.json");
    match std::fs::write(&path, format!("{value:#}\n")) {
        Ok(()) => println!("wrote {path}"),
        Err(e) => println!("could not write {path}: {e}"),
    }
}
