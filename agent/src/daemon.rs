//! `gdx-agent run`: the daemon. A scanner thread syncs each resource on
//! its schedule and whenever its source changes; the link to the hub is
//! kept open, reconnecting with backoff and jitter, and while it is up the
//! outbox is uploaded and deliveries received. Every change of the link's
//! state, and a heartbeat, is recorded in `state.db` for `status`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use gdx_link::frames::describe_connection_error;
use tracing::{info, warn};

use crate::config::{AgentConfig, AgentPaths};
use crate::identity::Credentials;
use crate::now;
use crate::state::State;
use gdx_link::Backoff;

use crate::uplink::{CONNECT_TIMEOUT, Session, connect};

/// Keeps one connection to the hub until `shutdown` completes.
pub async fn run(dir: &Path, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let paths = AgentPaths::new(dir);
    let config = AgentConfig::load(&paths)?;
    let creds = Credentials::load(&paths)?;
    let state = State::open(&paths.state()).with_context(|| format!("cannot open {}", paths.state().display()))?;
    // the metrics, read from the same state as `gdx-agent status`, on a loopback address only
    let metrics = match &config.metrics {
        Some(addr) => {
            if !addr.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback()) {
                anyhow::bail!("metrics = {addr:?} in agent.toml is not a loopback IP:PORT; use 127.0.0.1:9465");
            }
            let p = paths.clone();
            let render = std::sync::Arc::new(move || match crate::report::status(&p, now()) {
                Ok(s) => crate::metrics::render(&s, now()),
                Err(e) => format!("# the agent's state cannot be read: {e}\n"),
            });
            let (local, serve) = gdx_link::metrics::bind(addr, render).await.map_err(anyhow::Error::msg)?;
            println!("serving metrics on http://{local}/metrics");
            Some(serve)
        }
        None => None,
    };
    println!("gdx-agent {} starting; hub {} at {}", config.node, config.hub, config.hub_addr);
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    {
        let (dir, wake) = (dir.to_path_buf(), wake.clone());
        std::thread::Builder::new().name("scanner".into()).spawn(move || {
            if let Err(e) = crate::syncer::scan_loop(&dir, wake) {
                warn!(error = %format!("{e:#}"), "the scanner stopped; no resource will sync until the agent restarts");
            }
        })?;
    }
    let metrics = async {
        match metrics {
            Some(serve) => serve.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = keep_connected(&paths, &config, &creds, &state, &wake) => Ok(()),
        () = metrics => Ok(()),
        () = shutdown => {
            let _ = state.set_link("stopped", now(), None, None);
            Ok(())
        }
    }
}

async fn keep_connected(
    paths: &AgentPaths,
    config: &AgentConfig,
    creds: &Credentials,
    state: &State,
    wake: &tokio::sync::Notify,
) {
    let state_path = paths.state();
    let state_path = state_path.as_path();
    let mut backoff = Backoff::default();
    let mut loaded;
    let mut creds = creds;
    loop {
        // a renewed certificate is used from the next connection on
        if let Ok(c) = Credentials::load(paths) {
            loaded = c;
            creds = &loaded;
        }
        let _ = state.set_link("connecting", now(), None, None);
        // how long the link lasted once welcomed (a failed attempt: not at all)
        let (error, lasted) = match connect(config, creds, CONNECT_TIMEOUT, false).await {
            Ok(session) => {
                let since = Instant::now();
                let _ = state.set_link("connected", now(), None, None);
                let _ = state.set_hub_software(&session.welcome.software);
                let skew_ms = session.welcome.now_ms - now() * 1000;
                if skew_ms.abs() > 60_000 {
                    warn!(skew_s = skew_ms / 1000, "this machine's clock differs from the hub's by more than a minute");
                }
                info!(hub = %session.welcome.hub, "connected");
                // not println!: standard output on a full disk must not stop the daemon
                let _ =
                    writeln!(std::io::stdout(), "connected to {} ({})", session.welcome.hub, session.welcome.hub_name);
                let reason = tokio::select! {
                    r = credentials_loop(&session.conn, paths, config) => r,
                    r = wait_closed(&session, state) => r,
                    r = crate::syncer::upload_loop(&session.conn, state_path, wake) => r,
                    r = crate::exchange::receive_loop(&session.conn, paths, config, creds) => r,
                };
                // asked before closing: a close of our own replaces the reason
                if gdx_link::backoff::restarted(&session.conn) {
                    backoff.start_over();
                }
                session.conn.close(quinn::VarInt::from_u32(0), b"reconnecting");
                (reason, since.elapsed())
            }
            Err(e) => (e.0, Duration::ZERO),
        };
        let delay = backoff.after(lasted);
        warn!(error = %error, retry_in_s = delay.as_secs_f32(), "not connected to the hub");
        let _ = state.set_link("disconnected", now(), Some(&error), Some(now() + delay.as_secs() as i64));
        let wake = Instant::now() + delay;
        while Instant::now() < wake {
            tokio::time::sleep(wake.saturating_duration_since(Instant::now()).min(Duration::from_secs(2))).await;
            let _ = state.heartbeat(now());
        }
    }
}

/// At the connection and every six hours while it lasts: renews the
/// certificate when due, and takes the roots the hub offers (a root
/// rollover); a failure is logged and tried again next time, the current
/// certificate and roots serving on. Never ends.
async fn credentials_loop(conn: &quinn::Connection, paths: &AgentPaths, config: &AgentConfig) -> String {
    loop {
        // the roots first: a certificate renewed under a new root verifies only once it is trusted
        match crate::renew::take_roots(conn, paths).await {
            Ok(0) => {}
            Ok(n) => info!(roots = n, "took the new root the hub passed on (a root rollover)"),
            Err(e) => warn!(error = %format!("{e:#}"), "the hub's roots could not be taken; asked again later"),
        }
        match crate::renew::if_due(conn, paths, config).await {
            Ok(Some(until)) => info!(until = %gdx_common::units::format_date(until), "certificate renewed"),
            Ok(None) => {}
            Err(e) => warn!(error = %format!("{e:#}"), "certificate renewal failed; asked again later"),
        }
        tokio::time::sleep(CREDENTIALS_EVERY).await;
    }
}

/// How often a long connection renews and takes roots besides its start.
const CREDENTIALS_EVERY: Duration = Duration::from_secs(6 * 3600);

async fn wait_closed(session: &Session, state: &State) -> String {
    let mut beat = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            reason = session.conn.closed() => return describe_connection_error(&reason),
            _ = beat.tick() => { let _ = state.heartbeat(now()); }
        }
    }
}
