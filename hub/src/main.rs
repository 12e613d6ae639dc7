//! `gdx-hub`: parse arguments, start tracing, install the crypto provider,
//! call into the library, map errors to exit codes (0 ok, 1 failure with one
//! sentence on stderr, 2 bad usage).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gdx_hub::catalog::FilterArgs;
use gdx_hub::config::{DEFAULT_DATA_DIR, DEFAULT_HTTP, DEFAULT_LISTEN};
use gdx_hub::store::HubPaths;
use gdx_hub::supervision::listing::Listing;
use gdx_hub::{HubConfig, cli, init, net};

mod demo;

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
    /// Log lines for people (human), or one JSON object per line (json) for journald.
    #[arg(long, global = true, value_enum, default_value = "human")]
    log_format: gdx_link::logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a root (province) hub: CA, hub identity and hub.toml; or, with
    /// --join, a prefecture hub under its parent.
    #[command(
        after_help = "Examples:\n  gdx-hub init --division 630000 --name 青海省政务数据共享交换平台\n  gdx-hub --data /srv/gdx init --division 630000 --name 青海省政务数据共享交换平台 --listen 0.0.0.0:7443 --advertise hub.qh.gov.cn:7443\n  gdx-hub init --join @token.txt   (a prefecture hub, with a token from `gdx-hub token --node 632500/hub --role hub` at the province, kept in a file)"
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
        /// Join a parent hub as a prefecture hub, with a token from the parent: the token itself, `@FILE`, or `-` for standard input.
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
    /// Print a one-time link to this hub's portal for the centre's operator
    /// (or, with --auditor, a read-only auditor), valid 10 minutes, once.
    #[command(after_help = "Examples:\n  gdx-hub login\n  gdx-hub login --auditor")]
    Login {
        /// A read-only session: the audit pages and the listings.
        #[arg(long)]
        auditor: bool,
    },
    /// Revoke a node's certificates: new handshakes are refused at once and
    /// its live connection closes within seconds.
    #[command(after_help = "Example:\n  gdx-hub revoke 632522/gongan")]
    Revoke {
        /// The node id, DIVISION/ORG.
        node: String,
    },
    /// Issue, with the CA key brought in from where it is kept offline, the
    /// certificates that enrolments asked for while it was away (and
    /// https.crt if it is missing). The key is read, never copied.
    #[command(after_help = "Example:\n  gdx-hub issue --ca-key /media/usb/ca.key")]
    Issue {
        /// The CA's private key (PEM), readable by its owner only.
        #[arg(long)]
        ca_key: PathBuf,
    },
    /// The catalogue of this hub's subtree: list, show one entry, search.
    #[command(
        subcommand,
        after_help = "Examples:\n  gdx-hub catalog list\n  gdx-hub catalog list --class base --json\n  gdx-hub catalog list --overdue\n  gdx-hub catalog search 人口\n  gdx-hub catalog search 低保 --division 632500 --sharing conditional\n  gdx-hub catalog show 101001/000001"
    )]
    Catalog(CatalogCommand),
    /// The root rollover (at the province) and who trusts which root.
    #[command(
        subcommand,
        after_help = "Examples:\n  gdx-hub ca rollover     (the province, ca.key in place: prepare the next root)\n  gdx-hub ca status       (at each hub: the nodes that do not trust it yet)\n  gdx-hub ca switch       (the province, stopped: issue under the new root from now on)"
    )]
    Ca(CaCommand),
    /// Copy every store of this hub into a new directory while it runs: each
    /// database from one read transaction, the audit log last, and a
    /// manifest of SHA-256 digests. The copy holds the hub's keys: keep it so.
    #[command(after_help = "Example:\n  gdx-hub --data /var/lib/gdx-hub backup --out /srv/backup/gdx-hub-2026-12-05")]
    Backup {
        /// A new or empty directory.
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
    /// Make this data directory (new or empty) from a backup, once every
    /// digest matches and the audit log verifies; then `gdx-hub run`.
    #[command(after_help = "Example:\n  gdx-hub --data /var/lib/gdx-hub restore /srv/backup/gdx-hub-2026-12-05")]
    Restore {
        /// The directory `gdx-hub backup --out` wrote.
        from: std::path::PathBuf,
    },
    /// Move this hub's stores from their SQLite files into the PostgreSQL
    /// database hub.toml's `store` names, verified table by table; the
    /// files are set aside as NAME.migrated. The hub must be stopped.
    #[command(after_help = "Example:\n  gdx-hub --data /var/lib/gdx-hub migrate --to postgres")]
    Migrate {
        /// The engine to move to: postgres.
        #[arg(long, value_parser = ["postgres"])]
        to: String,
    },
    /// Make the data directory of a second process of this hub, for another
    /// machine sharing its stores on PostgreSQL; both then advertise both addresses.
    #[command(
        after_help = "Example:\n  gdx-hub --data /var/lib/gdx-hub pair --to /srv/gdx-hub-b --listen 0.0.0.0:7443 --http 0.0.0.0:8443 --advertise hub-b.qh.gov.cn:7443\n(copy /srv/gdx-hub-b to the second machine, start `gdx-hub run` there, and restart this one)"
    )]
    Pair {
        /// The new data directory (absent or empty).
        #[arg(long)]
        to: PathBuf,
        /// The second process's UDP address for QUIC.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: String,
        /// The second process's TCP address for the HTTPS portal and API.
        #[arg(long, default_value = DEFAULT_HTTP)]
        http: String,
        /// host:port that nodes dial for the second process (default: its listen address).
        #[arg(long)]
        advertise: Option<String>,
    },
    /// 考核督促: every department's indicators, score and rank for a month or
    /// a quarter, from what this hub observed; as a table, JSON, XLSX, HTML or PDF.
    #[command(
        after_help = "Examples:\n  gdx-hub report --period 2026-11\n  gdx-hub report --period 2026-Q4 --division 632500 --out 海南州.xlsx\n  gdx-hub report --period 2026-11 --out 2026-11.pdf"
    )]
    Report {
        /// A month (2026-11) or a quarter (2026-Q4).
        #[arg(long)]
        period: String,
        /// Departments in this division or below it.
        #[arg(long)]
        division: Option<String>,
        /// Write FILE.xlsx, FILE.html or FILE.pdf.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The 政务服务事项库: every department's 权责清单 kept here, and how the
    /// same item (基本编码) compares across province, prefecture and county.
    #[command(subcommand)]
    Items(ItemsCommand),
    /// The tamper-evident audit log: list, verify, prove inclusion, export.
    #[command(
        subcommand,
        after_help = "Examples:\n  gdx-hub audit list --kind lookup --since 2026-11-01\n  gdx-hub audit list --request 630100-3 --format jsonl\n  gdx-hub audit verify\n  gdx-hub audit prove --entry 42\n  gdx-hub audit export --out audit-630000.json\n  gdx-hub audit verify --bundle audit-630000.json --key KEY_HEX\n  gdx-hub audit verify --bundle audit-632500.json --key KEY_HEX --parent-key PARENT_KEY_HEX"
    )]
    Audit(AuditCommand),
    /// The base databases (基础信息资源库) declared in bases.toml: their
    /// members, coverage and conflicts, and one record with its provenance.
    #[command(
        subcommand,
        after_help = "Examples:\n  gdx-hub base list\n  gdx-hub base show renkou\n  gdx-hub base get renkou 632522199001010012\n  gdx-hub base conflicts renkou"
    )]
    Base(BaseCommand),
    /// Everything this hub keeps about one enterprise (监管信息共享), by its
    /// 统一社会信用代码: registration, licences and penalties, lists, with
    /// where each came from.
    #[command(after_help = "Example:\n  gdx-hub enterprise 91630100MA7G000123")]
    Enterprise {
        /// The 统一社会信用代码.
        code: String,
        #[arg(long)]
        json: bool,
    },
    /// The 双告知 notices this hub issued or carries: to whom, their state
    /// (pending, OVERDUE, claimed, claimed late, passed on).
    #[command(after_help = "Example:\n  gdx-hub notices")]
    Notices {
        #[arg(long)]
        json: bool,
    },
    /// The 联合惩戒 checks departments made here or below, with their feedback.
    #[command(after_help = "Example:\n  gdx-hub checks")]
    Checks {
        #[arg(long)]
        json: bool,
    },
    /// Per department: notices claimed in time, late, passed on, overdue;
    /// checks made and reported on.
    #[command(after_help = "Example:\n  gdx-hub supervision")]
    Supervision {
        #[arg(long)]
        json: bool,
    },
    /// Run a small province on this machine: the province hub, two prefecture
    /// hubs, twenty department agents at three levels, their data and catalogue.
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
enum BaseCommand {
    /// Every base: records, members, conflicts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One base: each member's rows and last merge, each field's coverage.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// One record, every field with the department, resource, changeset and time it came from.
    Get {
        name: String,
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Where the sources disagree, by department pair.
    Conflicts {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The records of a spatial base whose geometry's box meets a box
    /// (west,south,east,north in CGCS2000 degrees), with area and centroid.
    #[command(after_help = "Example:\n  gdx-hub base within kongjian 101.70,36.55,101.85,36.70")]
    Within {
        name: String,
        bbox: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Approve a request for a shared base, possibly for fewer fields or a shorter time.
    #[command(
        after_help = "Examples:\n  gdx-hub base approve 630100-3\n  gdx-hub base approve 630100-3 --fields name,marital --until 2027-06-30"
    )]
    Approve {
        /// The request id, as `gdx-hub grants` shows it.
        id: String,
        /// Grant only these of the requested fields (comma-separated).
        #[arg(long)]
        fields: Option<String>,
        /// Last day of the grant (YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// Sensitive fields to deliver in clear instead of masked.
        #[arg(long)]
        clear: Option<String>,
    },
    /// Deny a request for a shared base, saying why.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Revoke a grant of a shared base: delivery and lookups stop.
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Make the next root and its cross-certificate, signed by the current
    /// root; every node takes it at its next connection.
    Rollover,
    /// Once every node trusts the next root: issue under it from now on
    /// (the hub stopped; start it after).
    Switch,
    /// The roots this hub trusts, and each node enrolled here with whether
    /// it trusts them all.
    Status {
        #[arg(long)]
        json: bool,
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
        /// delivered, lookup, merged, refused, login, portal, cosigned,
        /// equivocation or unreadable.
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
    /// Re-hash every entry and check every checkpoint and cosignature;
    /// names the first problem.
    Verify {
        /// Verify an exported bundle offline instead of this hub's log.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// The hub's audit public key, 64 lowercase hex digits, as you
        /// obtained it independently; without it the key in the bundle is
        /// taken as given.
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
        /// The parent hub's audit public key, 64 lowercase hex digits, as
        /// you obtained it from the parent: every cosignature must be under
        /// it. Without it, all cosignatures must be under one key, which is
        /// printed for you to compare.
        #[arg(long, value_name = "HEX")]
        parent_key: Option<String>,
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

#[derive(Subcommand)]
enum ItemsCommand {
    /// List the items kept here.
    #[command(
        after_help = "Examples:\n  gdx-hub items list\n  gdx-hub items list --division 630100 --category 行政许可"
    )]
    List {
        #[command(flatten)]
        filter: gdx_hub::items::FilterArgs,
        #[arg(long)]
        json: bool,
    },
    /// Every department's item of one 基本编码, in full.
    #[command(after_help = "Example:\n  gdx-hub items show 0100101000")]
    Show {
        code: String,
        #[arg(long)]
        json: bool,
    },
    /// Search names, legal bases, codes and departments; every word must match.
    #[command(
        after_help = "Examples:\n  gdx-hub items search 食品\n  gdx-hub items search \"卫生 许可\" --division 632500"
    )]
    Search {
        query: String,
        #[command(flatten)]
        filter: gdx_hub::items::FilterArgs,
        #[arg(long)]
        json: bool,
    },
    /// Compare every item below the province with the province's item of the
    /// same 基本编码: name, category, legal basis; and the items without counterpart.
    #[command(
        after_help = "Examples:\n  gdx-hub items consistency\n  gdx-hub items consistency --division 632500 --out 海南州一致性报告.xlsx"
    )]
    Consistency {
        #[command(flatten)]
        filter: gdx_hub::items::FilterArgs,
        /// Write the report as an XLSX workbook (Excel, WPS).
        #[arg(long, value_name = "FILE.xlsx")]
        out: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if matches!(cli.command, Command::Run) { "info" } else { "warn" };
    gdx_link::logs::init(level, cli.log_format);
    gdx_certs::install_crypto_provider();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", told_once(&e));
            if e.downcast_ref::<cli::Usage>().is_some() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let paths = HubPaths::new(&cli.data);
    match cli.command {
        Command::Init { join: Some(token), listen, http, advertise, name, .. } => {
            let token = gdx_files::secret_arg(&token)?;
            cli::init_join(&cli.data, init::JoinOptions { token, name, listen, advertise, http })
        }
        Command::Init { division, name, listen, http, advertise, join: None } => {
            cli::init_root(&cli.data, division, name, listen, http, advertise)
        }
        Command::Token { node, role, ttl, json } => cli::token(&paths, &node, &role, &ttl, json),
        Command::Run => {
            HubConfig::load(&paths)?;
            let rt = net::runtime().context("cannot start the async runtime")?;
            rt.block_on(net::run(&cli.data, shutdown_signal()))
        }
        Command::Nodes { json } => cli::nodes(&paths, json),
        Command::Base(cmd) => match cmd {
            BaseCommand::List { json } => cli::base_list(&paths, json),
            BaseCommand::Show { name, json } => cli::base_show(&paths, &name, json),
            BaseCommand::Get { name, key, json } => cli::base_get(&paths, &name, &key, json),
            BaseCommand::Conflicts { name, json } => cli::base_conflicts(&paths, &name, json),
            BaseCommand::Within { name, bbox, limit, json } => cli::base_within(&paths, &name, &bbox, limit, json),
            BaseCommand::Approve { id, fields, until, clear } => {
                let until = until.as_deref().map(gdx_common::units::parse_date).transpose().map_err(cli::Usage)?;
                let split = |s: Option<String>| s.map(|s| cli::split_list(&s));
                let verdict = gdx_common::wire::Verdict::Approve {
                    fields: split(fields),
                    until,
                    clear: split(clear).unwrap_or_default(),
                };
                cli::base_decide(&paths, &id, verdict)
            }
            BaseCommand::Deny { id, reason } => {
                cli::base_decide(&paths, &id, gdx_common::wire::Verdict::Deny { reason })
            }
            BaseCommand::Revoke { id, reason } => {
                cli::base_decide(&paths, &id, gdx_common::wire::Verdict::Revoke { reason })
            }
        },
        Command::Audit(cmd) => match cmd {
            AuditCommand::List { node, resource, kind, since, until, request, format } => {
                cli::audit_list(&paths, node, resource, kind, since, until, request, &format)
            }
            AuditCommand::Verify { bundle, key, parent_key } => cli::audit_verify(&paths, bundle, key, parent_key),
            AuditCommand::Prove { entry } => cli::audit_prove(&paths, entry),
            AuditCommand::Export { out } => cli::audit_export(&paths, &out),
        },
        Command::Grants { json } => cli::grants(&paths, json),
        Command::Enterprise { code, json } => gdx_hub::supervision::print(&paths.dir, &code, json),
        Command::Notices { json } => cli::supervision(&paths, Listing::Notices, json),
        Command::Checks { json } => cli::supervision(&paths, Listing::Checks, json),
        Command::Supervision { json } => cli::supervision(&paths, Listing::Counts, json),
        Command::Revoke { node } => cli::revoke(&paths, &node),
        Command::Login { auditor } => cli::login(&paths, auditor),
        Command::Issue { ca_key } => cli::issue(&paths, &ca_key),
        Command::Ca(cmd) => {
            let config = HubConfig::load(&paths)?;
            let now = gdx_hub::util::now();
            match cmd {
                CaCommand::Rollover => gdx_hub::rollover::prepare(&paths, &config, now).map(|m| println!("{m}")),
                CaCommand::Switch => gdx_hub::rollover::switch(&paths, &config, now).map(|m| println!("{m}")),
                CaCommand::Status { json } => gdx_hub::rollover::print_status(&paths, json),
            }
        }
        Command::Backup { out } => gdx_hub::backup::backup(&paths.dir, &out, gdx_hub::util::now()).map(|m| {
            println!(
                "backed up {} files of {} to {} (audit log: {} entries); keep it as safe as the hub's keys",
                m.files.len(),
                m.hub,
                out.display(),
                m.audit_size
            );
        }),
        Command::Restore { from } => gdx_hub::backup::restore(&from, &paths.dir).map(|m| {
            println!(
                "restored {} files of {} into {}; the audit log verifies ({} entries)\nnext: gdx-hub --data {} run; agents and child hubs resend what was accepted after the backup",
                m.files.len(),
                m.hub,
                paths.dir.display(),
                m.audit_size,
                paths.dir.display()
            );
        }),
        Command::Pair { to, listen, http, advertise } => cli::pair(&paths, &to, &listen, &http, advertise.as_deref()),
        Command::Migrate { to: _ } => cli::migrate(&paths),
        Command::Report { period, division, out, json } => {
            gdx_hub::evaluation::print(&paths.dir, &period, division.as_deref(), out.as_deref(), json)
        }
        Command::Items(cmd) => {
            let filter = |f: &gdx_hub::items::FilterArgs, q: Option<String>| f.filter(q).map_err(cli::Usage);
            match cmd {
                ItemsCommand::List { filter: f, json } => filter(&f, None)
                    .map_err(anyhow::Error::from)
                    .and_then(|f| gdx_hub::items::print_list(&paths.dir, &f, json)),
                ItemsCommand::Search { query, filter: f, json } => filter(&f, Some(query))
                    .map_err(anyhow::Error::from)
                    .and_then(|f| gdx_hub::items::print_list(&paths.dir, &f, json)),
                ItemsCommand::Show { code, json } => gdx_hub::items::print_show(&paths.dir, &code, json),
                ItemsCommand::Consistency { filter: f, out, json } => filter(&f, None)
                    .map_err(anyhow::Error::from)
                    .and_then(|f| gdx_hub::items::print_consistency(&paths.dir, &f, out.as_deref(), json)),
            }
        }
        Command::Catalog(cmd) => match cmd {
            CatalogCommand::List { filter, json } => cli::catalog_list(&paths, filter, json),
            CatalogCommand::Search { query, filter, json } => {
                cli::catalog_list(&paths, FilterArgs { q: Some(query), ..filter }, json)
            }
            CatalogCommand::Show { code, as_of, json } => cli::catalog_show(&paths, &code, as_of, json),
        },
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

/// `e` and its causes, each cause said only when the words before do not
/// say it already (a store's refusal carries its cause's words).
fn told_once(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let said = cause.to_string();
        if !out.contains(&said) {
            out.push_str(": ");
            out.push_str(&said);
        }
    }
    out
}
