//! The log of a running hub or agent, on standard error: lines for people
//! by default, or one JSON object per line (`--log-format json`) for
//! journald and log shippers. `GDX_LOG` overrides the level (`info`,
//! `gdx_hub=debug`, …). A line that cannot be written (standard error
//! redirected to a file on a full disk) is dropped: the process goes on.

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people (colours on a terminal only).
    #[default]
    Human,
    /// One JSON object per line: time, level, target, fields, spans.
    Json,
}

/// Installs the log writer at `level` unless `GDX_LOG` says otherwise.
pub fn init(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GDX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // the subscriber's own report of a failed write would go to the same full
    // disk through eprintln!, which panics: drop the line instead
    let builder =
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).log_internal_errors(false);
    match format {
        LogFormat::Human => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
    }
}
