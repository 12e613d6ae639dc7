//! `gdx-hub`: parse arguments, start tracing, install the crypto provider,
//! call into the library, map errors to exit codes (0 ok, 1 failure with one
//! sentence on stderr, 2 bad usage).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gdx_common::units::{format_time, parse_duration};
use gdx_common::{DivisionCode, NodeId, Role};
use gdx_hub::catalog::{self, Catalog, FilterArgs};
use gdx_hub::config::{DEFAULT_DATA_DIR, DEFAULT_HTTP, DEFAULT_LISTEN};
use gdx_hub::store::HubPaths;
use gdx_hub::{HubConfig, demo, enrol, init, net, nodes, store::Store, util::now};

#[derive(Parser)]
#[command(
    name = "gdx-hub",
    version,
    about = "GDX hub: the province or prefecture node of the government data exchange"
)]
struct Cli {
    /// Data directory of this hub.
    #[arg(long, global = true, default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a root (province) hub: CA, hub identity and hub.toml; or, with
    /// --join, a prefecture hub under its parent.
    #[command(
        after_help = "Examples:\n  gdx-hub init --division 630000 --name 青海省政务数据共享交换平台\n  gdx-hub --data /srv/gdx init --division 630000 --name 青海省政务数据共享交换平台 --listen 0.0.0.0:7443 --advertise hub.qh.gov.cn:7443\n  gdx-hub init --join GDX1.…   (a prefecture hub, with a token from `gdx-hub token --node 632500/hub --role hub` at the province)"
    )]
    Init {
        /// Division code (GB/T 2260) this hub serves, such as 630000.
        #[arg(long, required_unless_present = "join")]
        division: Option<String>,
        /// Display name of the platform.
        #[arg(long, required_unless_present = "join")]
        name: Option<String>,
        /// UDP address for QUIC.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: String,
        /// TCP address for the HTTPS portal and API.
        #[arg(long, default_value = DEFAULT_HTTP)]
        http: String,
        /// host:port that nodes dial, written into tokens (default: the listen address, or this host's name).
        #[arg(long)]
        advertise: Option<String>,
        /// Join a parent hub as a prefecture hub, with a token from the parent.
        #[arg(long, conflicts_with = "division")]
        join: Option<String>,
    },
    /// Print a one-time enrolment token for a node.
    #[command(
        after_help = "Examples:\n  gdx-hub token --node 632522/gongan --role agent\n  gdx-hub token --node 630000/weijian --role agent --ttl 24h"
    )]
    Token {
        /// The node id to enrol, DIVISION/ORG.
        #[arg(long)]
        node: String,
        /// agent or hub.
        #[arg(long, default_value = "agent")]
        role: String,
        /// How long the token stays valid (s, m, h, d).
        #[arg(long, default_value = "72h")]
        ttl: String,
        /// Print JSON with the token and its details.
        #[arg(long)]
        json: bool,
    },
    /// Serve QUIC for agents and child hubs.
    #[command(after_help = "Example:\n  gdx-hub --data /var/lib/gdx-hub run")]
    Run,
    /// List enrolled nodes with role, division, certificate expiry and state.
    #[command(after_help = "Examples:\n  gdx-hub nodes\n  gdx-hub nodes --json")]
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// The requests and grants of this hub's subtree: who receives what,
    /// which fields, why, until when, and the rows delivered.
    #[command(after_help = "Examples:\n  gdx-hub grants\n  gdx-hub grants --json")]
    Grants {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a node's certificates: new handshakes are refused at once and
    /// its live connection closes within seconds.
    #[command(after_help = "Example:\n  gdx-hub revoke 632522/gongan")]
    Revoke {
        /// The node id, DIVISION/ORG.
        node: String,
    },
    /// The catalogue of this hub's subtree: list, show one entry, search.
    #[command(
        subcommand,
        after_help = "Examples:\n  gdx-hub catalog list\n  gdx-hub catalog list --class base --json\n  gdx-hub catalog list --overdue\n  gdx-hub catalog search 人口\n  gdx-hub catalog search 低保 --division 632500 --sharing conditional\n  gdx-hub catalog show 101001/000001"
    )]
    Catalog(CatalogCommand),
    /// The tamper-evident audit log: list, verify, prove inclusion, export.
    #[command(
        subcommand,
        after_help = "Examples:\n  gdx-hub audit list --kind lookup --since 2026-11-01\n  gdx-hub audit list --request 630100-3 --format jsonl\n  gdx-hub audit verify\n  gdx-hub audit prove --entry 42\n  gdx-hub audit export --out audit-630000.json\n  gdx-hub audit verify --bundle audit-630000.json"
    )]
    Audit(AuditCommand),
    /// Run a small province on this machine: the province hub, two prefecture
    /// hubs, eighteen department agents at three levels, their data and catalogue.
    #[command(after_help = "Example:\n  gdx-hub demo")]
    Demo {
        /// Keep the demo's hubs and agents in this directory (new or empty)
        /// after it stops; without it everything is removed at Ctrl-C.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Seed of the generated people and enterprises (the same seed gives
        /// the same data)
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// List entries, filtered; as a table, JSON lines or CSV.
    List {
        #[arg(long)]
        node: Option<String>,
        /// Resource or 信息资源代码.
        #[arg(long)]
        resource: Option<String>,
        /// enrolled, revoked, changeset, catalogued, request, decision,
        /// delivered, lookup, cosigned, equivocation or unreadable.
        #[arg(long)]
        kind: Option<String>,
        /// First day (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Last day (YYYY-MM-DD, UTC), inclusive.
        #[arg(long)]
        until: Option<String>,
        /// Request (grant) id.
        #[arg(long)]
        request: Option<String>,
        /// table, jsonl or csv.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Re-hash every entry and check every checkpoint; names the first bad entry.
    Verify {
        /// Verify an exported bundle offline instead of this hub's log.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// The hub's audit public key (hex) as you obtained it independently;
        /// without it the key in the bundle is taken as given.
        #[arg(long)]
        key: Option<String>,
    },
    /// Print the inclusion proof of an entry against the latest checkpoint.
    Prove {
        #[arg(long)]
        entry: u64,
    },
    /// Write a bundle (entries, checkpoints, public key) that verifies offline.
    Export {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// List catalogue entries, optionally filtered.
    #[command(
        after_help = "Examples:\n  gdx-hub catalog list\n  gdx-hub catalog list --overdue\n  gdx-hub catalog list --overdue --as-of 2026-12-31\n  gdx-hub catalog list --provider 630000/gongan --json"
    )]
    List {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show one entry in full: every field, its information items, its freshness.
    #[command(after_help = "Example:\n  gdx-hub catalog show 101001/000001")]
    Show {
        /// The entry's 信息资源代码, 前段码/后段码.
        code: String,
        /// Judge freshness as of this day (YYYY-MM-DD) instead of now.
        #[arg(long, value_name = "DATE")]
        as_of: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Search names, abstracts and information items (Chinese terms of two
    /// characters match, such as 人口); every term must match.
    #[command(
        after_help = "Examples:\n  gdx-hub catalog search 人口\n  gdx-hub catalog search \"低保 救助\" --class department\n  gdx-hub catalog search 法人 --json"
    )]
    Search {
        /// Search text; separate terms with spaces.
        query: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        json: bool,
    },
}

/// Bad usage the parser could not catch (an unknown filter value): exit 2.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if matches!(cli.command, Command::Run) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GDX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .init();
    gdx_certs::install_crypto_provider();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<Usage>().is_some() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let paths = HubPaths::new(&cli.data);
    match cli.command {
        Command::Init { join: Some(token), listen, http, advertise, name, .. } => {
            let opts = init::JoinOptions { token, name, listen, advertise, http };
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let config = rt.block_on(init::init_join(&cli.data, &opts, std::time::Duration::from_secs(15)))?;
            println!(
                "created hub {} ({}) in {}, joined to {} at {}\nnodes will dial {}; next: gdx-hub --data {} run",
                config.hub_id(),
                config.name,
                cli.data.display(),
                config.parent.as_ref().map(ToString::to_string).unwrap_or_default(),
                config.parent_addr.as_deref().unwrap_or_default(),
                config.advertise,
                cli.data.display()
            );
            Ok(())
        }
        Command::Init { division, name, listen, http, advertise, join: None } => {
            let division = DivisionCode::parse(division.as_deref().unwrap_or_default())?;
            let opts = init::InitOptions { division, name: name.unwrap_or_default(), listen, advertise, http };
            let config = init::init_root(&cli.data, &opts)?;
            println!(
                "created hub {} ({}) in {}\nnodes will dial {}; next: gdx-hub --data {} run",
                config.hub_id(),
                config.name,
                cli.data.display(),
                config.advertise,
                cli.data.display()
            );
            Ok(())
        }
        Command::Token { node, role, ttl, json } => {
            let node = NodeId::parse(&node)?;
            let role: Role = role.parse()?;
            let ttl = parse_duration(&ttl).map_err(anyhow::Error::msg)?;
            let config = HubConfig::load(&paths)?;
            let fingerprint = enrol::Authority::load(&paths)?.root_fingerprint();
            let store = Store::open(&paths.db())?;
            let token = enrol::make_token(&store, &config, fingerprint, &node, role, ttl, now())?;
            if json {
                let v = serde_json::json!({
                    "token": token.encode(),
                    "node": node.to_string(),
                    "role": role.as_str(),
                    "hub": config.hub_id().to_string(),
                    "hub_addr": token.hub_addr,
                    "expires_at": token.expires_at,
                });
                println!("{v}");
            } else {
                println!("{}", token.encode());
                let next = match role {
                    Role::Agent => "gdx-agent enroll --token <the token above>",
                    Role::Hub => "gdx-hub init --join <the token above> --listen … --http …",
                };
                eprintln!(
                    "one-time token for {role} {node}, valid until {}; on that machine run: {next}",
                    format_time(token.expires_at)
                );
            }
            Ok(())
        }
        Command::Run => {
            HubConfig::load(&paths)?;
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(net::run(&cli.data, shutdown_signal()))
        }
        Command::Nodes { json } => {
            let config = HubConfig::load(&paths)?;
            let store = Store::open(&paths.db())?;
            let list = nodes::list(&store, Some(&paths.vaults()), now())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            if let Some(line) = nodes::parent_line(&config, &store, now())? {
                println!("{line}\n");
            }
            if list.is_empty() {
                println!("no nodes enrolled yet; make a token with: gdx-hub token --node DIVISION/ORG --role agent");
            } else {
                print!("{}", nodes::table(&list));
            }
            Ok(())
        }
        Command::Audit(cmd) => {
            // an offline bundle needs no hub directory
            let open = || -> anyhow::Result<gdx_hub::audit::AuditLog> {
                let config = HubConfig::load(&paths)?;
                Ok(gdx_hub::audit::AuditLog::open(&paths.dir, &config.hub_id().to_string())?)
            };
            match cmd {
                AuditCommand::List { node, resource, kind, since, until, request, format } => {
                    let day = |d: Option<String>, end: bool| -> anyhow::Result<Option<i64>> {
                        d.map(|d| {
                            gdx_common::units::parse_date(&d)
                                .map(|day| (day + i64::from(end)) * 86_400)
                                .map_err(|e| anyhow::Error::new(Usage(e)))
                        })
                        .transpose()
                    };
                    if let Some(k) = kind.as_deref().filter(|k| !gdx_hub::audit::KINDS.contains(k)) {
                        return Err(Usage(format!(
                            "--kind {k:?} is not an entry kind; use one of {}",
                            gdx_hub::audit::KINDS.join(", ")
                        ))
                        .into());
                    }
                    let filter = gdx_hub::audit::Filter {
                        node,
                        resource,
                        kind,
                        since: day(since, false)?,
                        until: day(until, true)?,
                        request,
                    };
                    let entries = open()?.list(&filter)?;
                    let text = gdx_hub::audit::render(&entries, &format).map_err(|e| anyhow::Error::new(Usage(e)))?;
                    print!("{text}");
                }
                AuditCommand::Verify { bundle, key } => {
                    let (b, what) = match bundle {
                        Some(path) => {
                            let text = std::fs::read_to_string(&path)
                                .with_context(|| format!("cannot read the bundle {}", path.display()))?;
                            let b: gdx_hub::audit::Bundle = serde_json::from_str(&text).with_context(|| {
                                format!("{} is not an audit bundle written by `gdx-hub audit export`", path.display())
                            })?;
                            (b, path.display().to_string())
                        }
                        None => {
                            let b = open()?.bundle()?;
                            let what = format!("the audit log of {}", b.origin);
                            (b, what)
                        }
                    };
                    if let Some(k) = key.filter(|k| !k.eq_ignore_ascii_case(&b.public_key)) {
                        anyhow::bail!(
                            "{what} is signed with key {}, not with the key {k} you expect: it does not come from that hub",
                            b.public_key
                        );
                    }
                    let v = gdx_hub::audit::verify(&b);
                    let unsigned = v.entries.saturating_sub(b.checkpoints.last().map_or(0, |c| c.size));
                    match v.problem {
                        None if b.checkpoints.is_empty() => anyhow::bail!(
                            "{what} has {} entries but no signed checkpoint, so nothing in it is vouched for; let the hub run a few seconds and export again",
                            v.entries
                        ),
                        None => {
                            let by =
                                b.cosignatures.last().map(|c| format!(" by {} (key {})", c.cosigner, c.public_key));
                            let tail = (unsigned > 0)
                                .then(|| format!("; the last {unsigned} entries are not covered by a checkpoint yet"));
                            println!(
                                "{what}: {} entries and {} checkpoints verify (origin {}, key {}); {} checkpoints cosigned{}{}",
                                v.entries,
                                v.checkpoints,
                                b.origin,
                                b.public_key,
                                v.cosigned,
                                by.unwrap_or_default(),
                                tail.unwrap_or_default()
                            );
                        }
                        Some(p) => anyhow::bail!("{what} does not verify: {p}"),
                    }
                }
                AuditCommand::Prove { entry } => {
                    println!("{}", serde_json::to_string_pretty(&open()?.prove(entry)?)?);
                }
                AuditCommand::Export { out } => {
                    let b = open()?.bundle()?;
                    std::fs::write(&out, serde_json::to_vec(&b)?)
                        .with_context(|| format!("cannot write {}", out.display()))?;
                    println!(
                        "wrote {} entries and {} checkpoints of {} to {}; verify anywhere with `gdx-hub audit verify --bundle {}`",
                        b.entries.len(),
                        b.checkpoints.len(),
                        b.origin,
                        out.display(),
                        out.display()
                    );
                }
            }
            Ok(())
        }
        Command::Grants { json } => {
            let config = HubConfig::load(&paths)?;
            let x = gdx_hub::exchange::Exchange::open(&paths.dir, config.hub_id())?;
            let list = x.list(gdx_hub::exchange::clock())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!(
                    "no requests yet; a department files one with `gdx-agent request --resource CODE --fields … --purpose …`"
                );
            } else {
                print!("{}", gdx_hub::exchange::table(&list));
            }
            Ok(())
        }
        Command::Revoke { node } => {
            let node = NodeId::parse(&node)?;
            HubConfig::load(&paths)?;
            let store = Store::open(&paths.db())?;
            if !store.knows_node(&node)? {
                let Some(via) = store.remote_via(&node)? else {
                    anyhow::bail!(
                        "no node {node} is enrolled at this hub or reported by its child hubs; `gdx-hub nodes` lists them"
                    );
                };
                if store.revoke_below(&node, now())? {
                    println!(
                        "revoked {node}, which {via} serves: this hub refuses its certificate now, and {via} refuses it within seconds of its next report"
                    );
                } else {
                    println!("{node} was already revoked; nothing changed");
                }
                return Ok(());
            }
            let n = store.revoke(&node, now())?;
            if n == 0 {
                println!("{node} was already revoked; nothing changed");
            } else {
                println!(
                    "revoked {node} ({n} certificate{}); a running hub refuses its new handshakes now and closes its live connection within seconds",
                    if n == 1 { "" } else { "s" }
                );
            }
            Ok(())
        }
        Command::Catalog(cmd) => {
            HubConfig::load(&paths)?;
            let catalog = Catalog::open(&paths.dir)?;
            let (args, json) = match &cmd {
                CatalogCommand::List { filter, json } => (filter.clone(), *json),
                CatalogCommand::Search { query, filter, json } => {
                    (FilterArgs { q: Some(query.clone()), ..filter.clone() }, *json)
                }
                CatalogCommand::Show { code, as_of, json } => {
                    gdx_common::catalog::check_code(code).map_err(Usage)?;
                    let args = FilterArgs { as_of: as_of.clone(), ..FilterArgs::default() };
                    let (_, at) = args.to_filter(now()).map_err(Usage)?;
                    let Some(entry) = catalog.get(code, at)? else {
                        anyhow::bail!("no catalogue entry has the code {code}; `gdx-hub catalog list` shows them");
                    };
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&entry)?);
                    } else {
                        println!("{}", catalog::show(&entry));
                    }
                    return Ok(());
                }
            };
            let (filter, at) = args.to_filter(now()).map_err(Usage)?;
            let list = catalog.list(&filter, at)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", catalog::table(&list));
            }
            Ok(())
        }
        Command::Demo { dir, seed } => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(demo::run(dir, seed, shutdown_signal()))
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
