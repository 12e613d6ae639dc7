//! `gdx-faults`: the reliability soak (`gdx_tests::faults::soak`): the
//! demo's province and two prefecture hubs and its twenty departments'
//! agents behind impaired links, the
//! sources changing and a grant delivering, while N seeded faults are
//! injected; then every copy is checked against its source and every audit
//! log verified. Prints the faults by kind and the checks, and writes
//! `gdx-faults.json`. The same seed makes the same faults.
//!
//! Usage: `cargo run --release -p gdx-tests --bin gdx-faults -- --faults 1000 --seed 7`

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Inject seeded network and process faults into a small GDX hierarchy and check that it converges")]
struct Args {
    /// How many faults to inject, one after another.
    #[arg(long, default_value_t = 40)]
    faults: usize,
    /// The seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rows in each source at the start.
    #[arg(long, default_value_t = 200)]
    rows: usize,
    /// Longest a fault is held, in seconds (partitions up to three times that).
    #[arg(long, default_value_t = 3)]
    max_hold: u64,
    /// How many of the demo's twenty departments take part (at least 4).
    #[arg(long, default_value_t = 20)]
    departments: usize,
    /// Draw only these kinds of fault (comma-separated; `--only list` names them).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Keep every hub's and agent's folder (stores and logs) when the run passes too.
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.only.iter().any(|k| k == "list") {
        for (short, name) in gdx_tests::faults::soak::kind_names() {
            println!("{short:<18} {name}");
        }
        return ExitCode::SUCCESS;
    }
    let options = gdx_tests::faults::soak::Options {
        faults: args.faults,
        seed: args.seed,
        rows: args.rows,
        max_hold: Duration::from_secs(args.max_hold.max(1)),
        departments: args.departments,
        only: args.only,
        progress: true,
        keep: args.keep,
        ..Default::default()
    };
    match gdx_tests::faults::soak::run(&options) {
        Ok(report) => {
            println!(
                "{} faults, seed {}, {:.0} s, {} source changes",
                report.faults, report.seed, report.elapsed_s, report.source_changes
            );
            // the names are ASCII: their length is their width
            let w = report.by_kind.keys().map(String::len).max().unwrap_or(0).max("FAULT".len());
            println!("{:<w$} {:>6} {:>9} {:>14} {:>14}", "FAULT", "COUNT", "HELD s", "RECOVERED max", "RECOVERED mean");
            for (kind, r) in &report.by_kind {
                println!(
                    "{kind:<w$} {:>6} {:>9.1} {:>14.1} {:>14.1}",
                    r.count, r.held_s, r.recovered_max_s, r.recovered_mean_s
                );
            }
            let slow: Vec<String> = report
                .each
                .iter()
                .enumerate()
                .filter(|(_, f)| f.recovered_s > 5.0)
                .map(|(i, f)| {
                    format!("  fault {i}: {} on {}, held {:.1} s: {:.1} s", f.kind, f.at, f.held_s, f.recovered_s)
                })
                .collect();
            if !slow.is_empty() {
                println!("recovered after more than 5 s:\n{}", slow.join("\n"));
            }
            println!("converged {:.1} s after the faults ended and the sources stopped; checked:", report.converged_s);
            for c in &report.checks {
                println!("  {c}");
            }
            if let Ok(json) = serde_json::to_string_pretty(&report) {
                let _ = std::fs::write("gdx-faults.json", json);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
