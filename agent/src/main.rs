//! `gdx-agent`: parse arguments, start tracing, install the crypto provider,
//! call into the library, map errors to exit codes (0 ok, 1 failure with one
//! sentence on stderr, 2 bad usage).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gdx_agent::config::{AgentPaths, DEFAULT_DATA_DIR};
use gdx_agent::report::{self, Verdict};
use gdx_agent::{enrol, now, uplink};
use gdx_common::units::{format_date, parse_duration};

#[derive(Parser)]
#[command(name = "gdx-agent", version, about = "GDX agent: syncs a department's data with its hub")]
struct Cli {
    /// Data directory of this agent.
    #[arg(long, global = true, default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol this machine: make a key, get a certificate, write agent.toml.
    #[command(after_help = "Example:\n  gdx-agent enroll --token GDX1.AbC…   (the token printed by `gdx-hub token`)")]
    Enroll {
        /// The one-time token from the hub operator.
        #[arg(long)]
        token: String,
        /// How long to wait for the hub (s, m, h).
        #[arg(long, default_value = "15s")]
        timeout: String,
    },
    /// Run the daemon: keep one connection to the hub, reconnecting with backoff.
    #[command(after_help = "Example:\n  gdx-agent --data /var/lib/gdx-agent run")]
    Run,
    /// Show identity, hub, connection state and certificate expiry.
    #[command(after_help = "Examples:\n  gdx-agent status\n  gdx-agent status --json")]
    Status {
        #[arg(long)]
        json: bool,
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
        Ok(code) => code,
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
        Command::Run => runtime()?.block_on(uplink::run(&cli.data, shutdown_signal()))?,
        Command::Status { json } => {
            let s = report::status(&paths, now())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", report::status_text(&s, now()));
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
