//! `gdx-agent`: parse arguments, start tracing, install the crypto provider,
//! call into the library, map errors to exit codes (0 ok, 1 failure with one
//! sentence on stderr, 2 bad usage).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gdx_agent::catalog::Withdrawal;
use gdx_agent::config::{AgentPaths, DEFAULT_DATA_DIR};
use gdx_agent::report::{self, Verdict};
use gdx_agent::supervision;
use gdx_agent::{daemon, enrol, exchange, now, syncer};
use gdx_common::grant::{RequestRecord as Record, Status};
use gdx_common::units::{format_date, parse_duration};
use gdx_common::wire::{Decision, LookupQuery, Message, RequestForm, Verdict as Decided};

#[derive(Parser)]
#[command(name = "gdx-agent", version, about = "GDX agent: syncs a department's data with its hub")]
struct Cli {
    /// Data directory of this agent.
    #[arg(long, global = true, default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    data: PathBuf,
    /// Log lines for people (human), or one JSON object per line (json) for journald.
    #[arg(long, global = true, value_enum, default_value = "human")]
    log_format: gdx_link::logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol this machine: make a key, get a certificate, write agent.toml.
    #[command(
        after_help = "Examples:\n  gdx-agent enroll --token @/root/token.txt   (the token printed by `gdx-hub token`, in a file)\n  gdx-agent enroll --token -   (read it from standard input)\n  gdx-agent enroll --token GDX2.AbC…   (on the command line, where other users can see it)"
    )]
    Enroll {
        /// The one-time token from the hub operator: the token itself, `@FILE`, or `-` for standard input.
        #[arg(long)]
        token: String,
        /// How long to wait for the hub (s, m, h).
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Run the daemon: keep one connection to the hub, reconnecting with backoff.
    #[command(after_help = "Example:\n  gdx-agent --data /var/lib/gdx-agent run")]
    Run,
    /// Sync now: scan the resources, then send the changes and wait until the
    /// hub has acknowledged them all.
    #[command(
        after_help = "Examples:\n  gdx-agent sync\n  gdx-agent sync --resource hukou\n  gdx-agent sync --resource hukou --accept-schema   (after a column was dropped or renamed on purpose)\n  gdx-agent sync --full   (read resources with `changed` whole now, finding deletions)"
    )]
    Sync {
        /// Only this resource.
        #[arg(long)]
        resource: Option<String>,
        /// Accept the source's current columns after schema drift paused the resource.
        #[arg(long, requires = "resource")]
        accept_schema: bool,
        /// Read resources with `changed` whole now (finding deletions), not from their watermark.
        #[arg(long)]
        full: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// How long to wait for the hub (s, m, h).
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// The catalogue entries this agent declares and publishes.
    #[command(
        subcommand,
        after_help = "Examples:\n  gdx-agent catalog list\n  gdx-agent catalog withdraw 101001/000001"
    )]
    Catalog(CatalogCommand),
    /// Ask for another department's data: the fields of a catalogued resource, and why.
    #[command(
        after_help = "Examples:\n  gdx-agent request --resource 101001/000001 --fields 姓名,民族 --purpose \"低保资格比对\"\n  gdx-agent request --resource 301001/000002 --fields name,amount --purpose \"特困认定\" --until 2027-06-30"
    )]
    Request {
        /// The entry's 信息资源代码, 前段码/后段码.
        #[arg(long)]
        resource: String,
        /// 信息项 by name or column, separated by commas.
        #[arg(long)]
        fields: String,
        /// What the data is for, in a sentence.
        #[arg(long)]
        purpose: String,
        /// Last day the grant should last (YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// The requests this department filed, and those it must decide as a provider.
    #[command(after_help = "Examples:\n  gdx-agent requests\n  gdx-agent requests --json")]
    Requests {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Approve a request for your data, possibly for fewer fields or a shorter time.
    #[command(
        after_help = "Examples:\n  gdx-agent approve 630100-3\n  gdx-agent approve 630100-3 --fields name --until 2027-06-30\n  gdx-agent approve 630100-3 --clear id_number   (deliver the ID number unmasked)"
    )]
    Approve {
        /// The request id, as `gdx-agent requests` shows it.
        id: String,
        /// Grant only these of the requested fields.
        #[arg(long)]
        fields: Option<String>,
        /// Last day of the grant (YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// Sensitive fields to deliver in clear instead of masked.
        #[arg(long)]
        clear: Option<String>,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Deny a request for your data, saying why.
    #[command(after_help = "Example:\n  gdx-agent deny 630100-3 --reason \"用途与共享条件不符\"")]
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Revoke a grant of your data: delivery and lookups stop.
    #[command(after_help = "Example:\n  gdx-agent revoke 630100-3 --reason \"比对工作已结束\"")]
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// The 双告知 notices sent to this department: enterprises newly
    /// registered, or whose business scope changed, with a matter it licenses.
    #[command(after_help = "Example:\n  gdx-agent notices")]
    Notices {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Claim a 双告知 notice: this department takes up the enterprise's licensing.
    #[command(after_help = "Example:\n  gdx-agent claim 630000-12")]
    Claim {
        id: String,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Pass a 双告知 notice on to the department that licenses the matter, saying why.
    #[command(
        after_help = "Example:\n  gdx-agent pass 630000-12 --to 630121/jiaotong --reason \"经营范围属道路运输，非本部门许可事项\""
    )]
    Pass {
        id: String,
        /// The department to pass it to, DIVISION/ORG.
        #[arg(long)]
        to: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// 联合惩戒: is this enterprise (统一社会信用代码) or person (公民身份号码)
    /// restricted for this kind of matter, under which memorandum and measure, until when?
    #[command(after_help = "Example:\n  gdx-agent check 91630100MA7G00012C --matter 政府采购")]
    Check {
        subject: String,
        /// The kind of matter: 政府采购, 财政资金, 行政许可, … (the hub's measures table).
        #[arg(long)]
        matter: String,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Report what this department did after a check: 限制 or 未限制, and why.
    #[command(
        after_help = "Example:\n  gdx-agent feedback 630000-C3 --action 限制 --reason \"已取消其本次政府采购投标资格\""
    )]
    Feedback {
        id: String,
        #[arg(long)]
        action: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Look one record up under a grant, from your hub.
    #[command(after_help = "Example:\n  gdx-agent lookup --resource 101001/000001 632522198001010012")]
    Lookup {
        /// The entry's 信息资源代码.
        #[arg(long)]
        resource: String,
        /// The record's key (several values for a composite key).
        #[arg(required = true)]
        key: Vec<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// The records of a granted spatial resource (a base of the province)
    /// whose geometry's box meets a box, from your hub.
    #[command(after_help = "Example:\n  gdx-agent within --resource 106001/900001 101.70,36.55,101.85,36.70")]
    Within {
        /// The entry's 信息资源代码.
        #[arg(long)]
        resource: String,
        /// west,south,east,north in CGCS2000 degrees (EPSG:4490).
        bbox: String,
        /// At most this many records (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Receive the data granted to this department now, into the received
    /// database (`gdx-agent run` does this as soon as its hub rings, and
    /// every 30 seconds).
    #[command(after_help = "Example:\n  gdx-agent receive")]
    Receive {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Print a one-time link to the hub's portal for this department (valid
    /// 10 minutes, once), signed with this agent's key.
    #[command(
        after_help = "Examples:\n  gdx-agent login\n  gdx-agent login --portal https://10.63.0.1:8443   (when the portal is not on the hub's host at port 8443)"
    )]
    Login {
        /// The hub's portal address (by default `portal` in agent.toml, else the hub's host on port 8443).
        #[arg(long)]
        portal: Option<String>,
    },
    /// Show identity, hub, connection state and certificate expiry.
    #[command(after_help = "Examples:\n  gdx-agent status\n  gdx-agent status --json")]
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Renew this agent's certificate now if two thirds of its life have
    /// passed (`gdx-agent run` does it by itself at each connection).
    #[command(after_help = "Example:\n  gdx-agent renew")]
    Renew {
        /// How long to wait for the hub (s, m, h).
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Diagnose configuration, certificate, connectivity, clock and daemon.
    #[command(after_help = "Example:\n  gdx-agent doctor")]
    Doctor {
        #[arg(long)]
        json: bool,
        /// How long to wait for the hub (s, m, h).
        #[arg(long, default_value = "10s")]
        timeout: String,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// List the entries declared in agent.toml and those published, with
    /// their versions and the hub's answer.
    #[command(after_help = "Examples:\n  gdx-agent catalog list\n  gdx-agent catalog list --json")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a published entry from the catalogue; its data keeps syncing.
    /// Remove the entry from agent.toml first.
    #[command(after_help = "Example:\n  gdx-agent catalog withdraw 101001/000001")]
    Withdraw {
        /// The entry's 信息资源代码, 前段码/后段码.
        code: String,
        /// How long to wait for the hub (s, m, h).
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if matches!(cli.command, Command::Run) { "info" } else { "warn" };
    gdx_link::logs::init(level, cli.log_format);
    gdx_certs::install_crypto_provider();
    let data = cli.data.clone();
    match run(cli) {
        Ok(code) => code,
        Err(e) if gdx_files::disk_full(e.as_ref()) => {
            eprintln!("error: {}", gdx_agent::state::disk_full_sentence(Some(&data)));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let paths = AgentPaths::new(&cli.data);
    let runtime = || tokio::runtime::Runtime::new().context("cannot start the async runtime");
    match cli.command {
        Command::Enroll { token, timeout } => {
            let timeout = Duration::from_secs(parse_duration(&timeout).map_err(anyhow::Error::msg)? as u64);
            let token = gdx_files::secret_arg(&token)?;
            let e = runtime()?.block_on(enrol::enroll(&cli.data, &token, timeout))?;
            println!(
                "enrolled {} with hub {} ({}) at {}; certificate valid until {}\nstart the agent with: gdx-agent --data {} run",
                e.node,
                e.hub,
                e.hub_name,
                e.hub_addr,
                format_date(e.not_after),
                cli.data.display()
            );
        }
        Command::Run => runtime()?.block_on(daemon::run(&cli.data, shutdown_signal()))?,
        Command::Sync { resource, accept_schema, full, json, timeout } => {
            let progress = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
            let timeout = Duration::from_secs(parse_duration(&timeout).map_err(anyhow::Error::msg)? as u64);
            let only = resource.as_deref();
            let out =
                runtime()?.block_on(syncer::sync_once(&cli.data, only, accept_schema, full, progress, timeout))?;
            return Ok(report_sync(&out, json));
        }
        Command::Catalog(CatalogCommand::List { json }) => {
            let config = gdx_agent::config::AgentConfig::load(&paths)?;
            let mut state = gdx_agent::state::State::open(&paths.state())?;
            let list = report::catalog_overview(&config, &mut state, now())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", report::catalog_text(&list));
            }
        }
        Command::Catalog(CatalogCommand::Withdraw { code, timeout }) => {
            let timeout = Duration::from_secs(parse_duration(&timeout).map_err(anyhow::Error::msg)? as u64);
            match runtime()?.block_on(syncer::withdraw(&cli.data, &code, timeout))? {
                Withdrawal::Staged(version) => {
                    println!("withdrew catalogue entry {code} (version {version}); the hub no longer lists it")
                }
                Withdrawal::Forgotten => {
                    println!("catalogue entry {code} was never recorded by the hub; this agent forgot it")
                }
            }
        }
        Command::Request { resource, fields, purpose, until, json, timeout } => {
            let form = RequestForm {
                code: resource,
                fields: exchange::split_fields(&fields),
                purpose,
                until: exchange::until_day(until.as_deref())?,
            };
            let answer = runtime()?.block_on(exchange::ask(&cli.data, Message::FileRequest(form), secs(&timeout)?))?;
            let r = exchange::record(answer)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("request {} for {} {} from {}: {}", r.id, r.code, r.name, r.provider, r.state(now()));
                match r.refusal(now()) {
                    None => println!(
                        "granted fields: {}; the data arrives in {}",
                        r.columns.join(", "),
                        exchange::table_name(&r)
                    ),
                    Some(why) => println!("{why}"),
                }
            }
            if matches!(r.status, Status::Refused { .. }) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Requests { json, timeout } => {
            let config = gdx_agent::config::AgentConfig::load(&paths)?;
            let list = runtime()?.block_on(exchange::requests(&cli.data, secs(&timeout)?))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", exchange::requests_table(&config.node, &list, now()));
            }
        }
        Command::Approve { id, fields, until, clear, timeout } => {
            let verdict = Decided::Approve {
                fields: fields.as_deref().map(exchange::split_fields),
                until: exchange::until_day(until.as_deref())?,
                clear: clear.as_deref().map(exchange::split_fields).unwrap_or_default(),
            };
            let r = decide(&cli.data, id, verdict, &timeout)?;
            println!(
                "granted {} to {} ({}): {}{}",
                r.code,
                r.consumer,
                r.granted_until.map_or("no end date".into(), |d| format!("until {}", format_date(d * 86_400))),
                r.columns.join(", "),
                if r.masked.is_empty() { String::new() } else { format!(" ({} masked)", r.masked.join(", ")) }
            );
        }
        Command::Deny { id, reason, timeout } => {
            let r = decide(&cli.data, id, Decided::Deny { reason }, &timeout)?;
            println!("denied request {} of {} for {}", r.id, r.consumer, r.code);
        }
        Command::Revoke { id, reason, timeout } => {
            let r = decide(&cli.data, id, Decided::Revoke { reason }, &timeout)?;
            println!("revoked the grant {} of {} to {}; its deliveries and lookups stop", r.id, r.code, r.consumer);
        }
        Command::Notices { json, timeout } => {
            let list = runtime()?.block_on(supervision::notices(&cli.data, secs(&timeout)?))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", supervision::notices_table(&list, now()));
            }
        }
        Command::Claim { id, timeout } => {
            let n = runtime()?.block_on(supervision::act(&cli.data, id, None, secs(&timeout)?))?;
            print!("{}", supervision::acted(&n, now()));
        }
        Command::Pass { id, to, reason, timeout } => {
            let pass = supervision::pass_on(&to, reason)?;
            let n = runtime()?.block_on(supervision::act(&cli.data, id, Some(pass), secs(&timeout)?))?;
            print!("{}", supervision::acted(&n, now()));
        }
        Command::Check { subject, matter, json, timeout } => {
            let c = runtime()?.block_on(supervision::check(&cli.data, subject, matter, secs(&timeout)?))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!("{}", supervision::check_report(&c));
            }
        }
        Command::Feedback { id, action, reason, timeout } => {
            let c = runtime()?.block_on(supervision::feedback(&cli.data, id, &action, reason, secs(&timeout)?))?;
            print!("{}", supervision::check_report(&c));
        }
        Command::Within { resource, bbox, limit, json, timeout } => {
            let q = Message::Within(gdx_common::wire::WithinQuery { code: resource, bbox, limit });
            let answer = runtime()?.block_on(exchange::ask(&cli.data, q, secs(&timeout)?))?;
            print!("{}", exchange::within_report(answer, json)?);
        }
        Command::Lookup { resource, key, json, timeout } => {
            let q = LookupQuery { code: resource.clone(), key: key.clone() };
            let a = exchange::looked_up(runtime()?.block_on(exchange::ask(
                &cli.data,
                Message::Lookup(q),
                secs(&timeout)?,
            ))?)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "grant": a.id, "served_by": a.served_by.to_string(), "as_of_delivery": a.as_of,
                        "row": a.row.as_deref().and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()),
                    }))?
                );
            } else {
                match &a.row {
                    Some(row) => {
                        let v: serde_json::Value = serde_json::from_str(row)?;
                        if let Some(map) = v.as_object() {
                            // a base database's field comes with where it came from (FIELD__source)
                            let suffix = gdx_common::grant::PROVENANCE_SUFFIX;
                            for (k, v) in map.iter().filter(|(k, _)| !k.ends_with(suffix)) {
                                let source = map.get(&format!("{k}{suffix}")).and_then(exchange::source_note);
                                let value = v.as_str().map_or(v.to_string(), str::to_owned);
                                match source {
                                    Some(note) => println!("{k}: {value}   ({note})"),
                                    None => println!("{k}: {value}"),
                                }
                            }
                        }
                        println!("(grant {}, from hub {}, as of delivery {})", a.id, a.served_by, a.as_of);
                    }
                    None => {
                        eprintln!(
                            "error: {resource} has no record with key {} (grant {}, hub {})",
                            key.join(" "),
                            a.id,
                            a.served_by
                        );
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            if a.row.is_none() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Receive { json, timeout } => {
            let list = runtime()?.block_on(exchange::receive_now(&cli.data, secs(&timeout)?))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("nothing is granted to this department yet; file a request with `gdx-agent request`");
            }
            for r in list.iter().filter(|_| !json) {
                match &r.stopped {
                    Some(why) => println!("{}: {} (kept: {} deliveries in table {})", r.grant, why, r.applied, r.table),
                    None if r.applied == 0 => println!("{} {}: nothing delivered yet", r.grant, r.code),
                    None => println!(
                        "{} {}: {} row changes in {} new deliveries; table {} is at delivery {}",
                        r.grant, r.code, r.rows, r.deliveries, r.table, r.applied
                    ),
                }
            }
        }
        Command::Login { portal } => {
            println!("{}", gdx_agent::login::url(&paths, portal.as_deref(), now())?);
            eprintln!("open it in a browser within 10 minutes; it works once");
        }
        Command::Status { json } => {
            let s = report::status(&paths, now())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", report::status_text(&s, now()));
            }
        }
        Command::Renew { timeout } => {
            let timeout = Duration::from_secs(parse_duration(&timeout).map_err(anyhow::Error::msg)? as u64);
            match runtime()?.block_on(gdx_agent::renew::now_if_due(&cli.data, timeout))? {
                Some(until) => println!("certificate renewed, valid until {}", format_date(until)),
                None => println!("the certificate is not yet due for renewal (after two thirds of its life)"),
            }
        }
        Command::Doctor { json, timeout } => {
            let timeout = Duration::from_secs(parse_duration(&timeout).map_err(anyhow::Error::msg)? as u64);
            let checks = runtime()?.block_on(report::doctor(&paths, now(), timeout));
            if json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                print!("{}", report::doctor_text(&checks));
            }
            if checks.iter().any(|c| c.verdict == Verdict::Fail) {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn secs(text: &str) -> anyhow::Result<Duration> {
    Ok(Duration::from_secs(parse_duration(text).map_err(anyhow::Error::msg)? as u64))
}

/// Sends a provider's decision and returns the record as it now stands.
fn decide(dir: &std::path::Path, id: String, verdict: Decided, timeout: &str) -> anyhow::Result<Record> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    exchange::record(rt.block_on(exchange::ask(dir, Message::Decide(Decision { id, verdict }), secs(timeout)?))?)
}

/// This process's peak resident memory (Linux's VmHWM), for `sync --json`.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn report_sync(out: &syncer::SyncOutcome, json: bool) -> ExitCode {
    let paused: Vec<&str> = out.reports.iter().filter_map(|r| r.paused.as_deref()).collect();
    let failed = !out.errors.is_empty() || !paused.is_empty() || out.upload_error.is_some() || out.left.changesets > 0;
    if json {
        let v = serde_json::json!({
            "resources": out.reports,
            "errors": out.errors,
            "sent_rows": out.sent_rows,
            "sent_changesets": out.sent_changesets,
            "sent_bytes": out.sent_bytes,
            "published": out.published,
            "notes": out.notes,
            "upload_error": out.upload_error,
            "waiting": out.left,
            "peak_rss_kib": peak_rss_kib(),
        });
        println!("{v:#}");
    } else {
        for r in &out.reports {
            match &r.paused {
                Some(reason) => println!("{}: PAUSED: {reason}", r.resource),
                None => println!(
                    "{}: {} rows scanned, {} inserted, {} updated, {} deleted, {} quarantined",
                    r.resource, r.scanned, r.inserted, r.updated, r.deleted, r.quarantined
                ),
            }
        }
        if out.reports.iter().any(|r| r.quarantined > 0) {
            println!("quarantined rows are listed by `gdx-agent status`; the other rows were synced");
        }
        if out.published > 0 {
            println!("published {} catalogue entry version(s), recorded by the hub", out.published);
        }
        if out.upload_error.is_none() && out.left.changesets == 0 {
            println!("sent {} changesets ({} rows), all acknowledged by the hub", out.sent_changesets, out.sent_rows);
        } else if out.upload_error.is_none() {
            println!(
                "sent {} changesets ({} rows), acknowledged by the hub; {} changesets ({} rows) still wait in the outbox",
                out.sent_changesets, out.sent_rows, out.left.changesets, out.left.rows
            );
        }
        for n in &out.notes {
            println!("note: {n}");
        }
    }
    for e in &out.errors {
        eprintln!("error: {e}");
    }
    if let Some(e) = &out.upload_error {
        eprintln!(
            "error: {e}; {} changesets ({} rows) wait in the outbox and will be sent by `gdx-agent run` or the next sync",
            out.left.changesets, out.left.rows
        );
    } else if !paused.is_empty() {
        eprintln!("error: {} resource(s) paused by a schema change; see above", paused.len());
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        let _ = ctrl_c.await;
        return;
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
