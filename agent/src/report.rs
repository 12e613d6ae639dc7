//! `gdx-agent status` and `gdx-agent doctor`.
//!
//! `status` reads what the daemon recorded and the certificate on disk; it
//! never dials. `doctor` checks each thing that can go wrong in turn (files,
//! certificate, reaching the hub, the clock, the daemon) and says for each
//! one what is wrong and what to do.

use std::time::{Duration, Instant};

use gdx_certs::Identity;
use gdx_common::units::{format_date, format_time};
use serde::Serialize;

use crate::config::{AgentConfig, AgentPaths};
use crate::identity::Credentials;
use crate::state::{HEARTBEAT_STALE_SECS, LinkState, ResourceState, State};
use crate::uplink;

/// Certificates closer than this to expiry get a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// Everything `status` shows.
#[derive(Debug, Serialize)]
pub struct Status {
    pub node: String,
    pub role: String,
    pub division_name: String,
    pub hub: String,
    pub hub_addr: String,
    pub daemon_running: bool,
    pub link: LinkState,
    pub cert_serial: Option<String>,
    pub cert_not_after: Option<i64>,
    pub resources: Vec<ResourceState>,
    /// Catalogue entries: declared, published, withdrawn.
    pub catalog: Vec<CatalogLine>,
    /// Data received under grants, per grant.
    pub received: Vec<crate::exchange::ReceivedGrant>,
}

/// One catalogue entry as this agent sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogLine {
    /// The resource declaring it, if agent.toml still does.
    pub resource: Option<String>,
    pub code: Option<String>,
    pub name: Option<String>,
    /// Version last published (0: never).
    pub version: u64,
    pub withdrawn: bool,
    /// A version waits for the hub's answer.
    pub pending: bool,
    /// Why the declaration is unusable, or why the hub refused it.
    pub problem: Option<String>,
    /// The hub held a newer version; the next sync publishes above it.
    pub restage: bool,
}

/// Declared entries (checked against the rules) joined with what was published.
pub fn catalog_overview(config: &AgentConfig, state: &mut State, now: i64) -> anyhow::Result<Vec<CatalogLine>> {
    let mut published = crate::catalog::local_entries(state)?;
    let mut out = Vec::new();
    for res in &config.resources {
        match crate::catalog::declared(res, &config.node, now) {
            Ok(None) => {}
            Ok(Some(e)) => {
                let p = published.iter().position(|p| p.code == e.code).map(|i| published.remove(i));
                out.push(CatalogLine {
                    resource: Some(res.code.to_string()),
                    code: Some(e.code.clone()),
                    name: Some(e.name.clone()),
                    version: p.as_ref().map_or(0, |p| p.version),
                    withdrawn: p.as_ref().is_some_and(|p| p.withdrawn),
                    pending: p.as_ref().is_some_and(|p| p.pending),
                    restage: p.as_ref().is_some_and(|p| p.restage),
                    problem: p.and_then(|p| p.refused),
                });
            }
            Err(problem) => out.push(CatalogLine {
                resource: Some(res.code.to_string()),
                code: None,
                name: None,
                version: 0,
                withdrawn: false,
                pending: false,
                restage: false,
                problem: Some(problem),
            }),
        }
    }
    out.extend(published.into_iter().map(|p| CatalogLine {
        resource: None,
        code: Some(p.code),
        name: Some(p.name),
        version: p.version,
        withdrawn: p.withdrawn,
        pending: p.pending,
        restage: p.restage,
        problem: p.refused,
    }));
    Ok(out)
}

/// The state of one catalogue line in words.
fn catalog_state(l: &CatalogLine) -> String {
    if let Some(p) = &l.problem {
        format!("PROBLEM: {p}")
    } else if l.version == 0 {
        "not published yet (the next sync publishes it)".into()
    } else if l.restage {
        format!("the hub holds version {}; the next sync publishes this entry above it", l.version)
    } else if l.pending {
        format!("version {} waiting to be sent", l.version)
    } else if l.withdrawn {
        format!("withdrawn (version {})", l.version)
    } else if l.resource.is_none() {
        format!(
            "version {} published but no longer declared; withdraw it with `gdx-agent catalog withdraw CODE`",
            l.version
        )
    } else {
        format!("version {} published", l.version)
    }
}

/// The catalogue overview as text.
pub fn catalog_text(lines: &[CatalogLine]) -> String {
    if lines.is_empty() {
        return "no catalogue entries declared; add a [resource.catalog] table to a resource in agent.toml (see docs/catalogue.md)\n".into();
    }
    let mut out = String::new();
    for l in lines {
        out.push_str(&format!(
            "{} {} (resource {}): {}\n",
            l.code.as_deref().unwrap_or("-"),
            l.name.as_deref().unwrap_or(""),
            l.resource.as_deref().unwrap_or("-"),
            catalog_state(l)
        ));
    }
    out
}

/// Collects the status of the agent in `paths`.
pub fn status(paths: &AgentPaths, now: i64) -> anyhow::Result<Status> {
    let config = AgentConfig::load(paths)?;
    let creds = Credentials::load(paths)?;
    let (serial, not_after) = match creds.chain.first().map(|c| Identity::of(c)) {
        Some(Ok(Identity::Node { serial, not_after, .. })) => (Some(serial), Some(not_after)),
        _ => (None, None),
    };
    let mut state = State::open(&paths.state())?;
    let link = state.link()?;
    let resources = config.resources.iter().map(|r| state.resource_state(r.code.as_str())).collect::<Result<_, _>>()?;
    let catalog = catalog_overview(&config, &mut state, now)?;
    Ok(Status {
        division_name: config.node.division().name(),
        node: config.node.to_string(),
        role: "agent".into(),
        hub: config.hub.to_string(),
        hub_addr: config.hub_addr.clone(),
        daemon_running: link.heartbeat.is_some_and(|h| now - h <= HEARTBEAT_STALE_SECS),
        link,
        cert_serial: serial,
        cert_not_after: not_after,
        resources,
        catalog,
        received: crate::exchange::received_grants(&paths.received(&config)).unwrap_or_default(),
    })
}

/// The status as text.
pub fn status_text(s: &Status, now: i64) -> String {
    let connection = if !s.daemon_running {
        "not connected: the agent daemon is not running; start it with `gdx-agent run` (or systemctl start gdx-agent)"
            .to_owned()
    } else {
        let since = s.link.since.map(format_time).unwrap_or_default();
        match s.link.state.as_str() {
            "connected" => format!("connected since {since}"),
            "connecting" => "connecting…".to_owned(),
            other => {
                let retry =
                    s.link.next_retry.map(|t| format!("; next attempt in {} s", (t - now).max(0))).unwrap_or_default();
                let why = s.link.last_error.as_deref().unwrap_or("unknown reason");
                format!("{other} since {since}: {why}{retry}")
            }
        }
    };
    let cert = match s.cert_not_after {
        Some(t) if t <= now => format!("EXPIRED on {}; enrol again with a new token", format_date(t)),
        Some(t) => format!("valid until {} ({} days left)", format_date(t), (t - now) / 86_400),
        None => "unreadable; enrol again".to_owned(),
    };
    let mut out = format!(
        "node:        {} ({}, {})\nhub:         {} at {}\nconnection:  {connection}\ncertificate: {cert}{}\n",
        s.node,
        s.role,
        s.division_name,
        s.hub,
        s.hub_addr,
        s.cert_serial.as_deref().map(|x| format!(", serial {x}")).unwrap_or_default(),
    );
    if s.resources.is_empty() {
        out.push_str("resources:   none declared in agent.toml\n");
    }
    for r in &s.resources {
        out.push_str(&resource_text(r));
    }
    if !s.catalog.is_empty() {
        out.push_str("catalogue:\n");
        for line in catalog_text(&s.catalog).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    for g in &s.received {
        let when = g.updated_at.map(format_time).unwrap_or_else(|| "never".into());
        out.push_str(&format!(
            "received {} {} from {} (grant {}): table {} holds {} rows ({} row changes in {} deliveries, last {when})\n",
            g.code, g.name, g.provider, g.grant, g.table, g.held, g.rows, g.applied
        ));
        if let Some(why) = &g.stopped {
            out.push_str(&format!("  STOPPED: {why}\n"));
        }
    }
    out
}

fn resource_text(r: &ResourceState) -> String {
    let mut out = format!("resource {}:\n", r.code);
    let scanned = r.last_scan.map(format_time).unwrap_or_else(|| "never".into());
    out.push_str(&format!(
        "  rows {}, last scan {scanned}, changesets acknowledged {}/{}",
        r.rows, r.acked_seq, r.last_seq
    ));
    if r.backlog_changesets > 0 {
        out.push_str(&format!(", waiting to send {} changesets ({} rows)", r.backlog_changesets, r.backlog_rows));
    }
    out.push('\n');
    if let Some(p) = &r.paused {
        out.push_str(&format!("  PAUSED: {p}\n"));
    }
    if let Some(h) = &r.held {
        out.push_str(&format!("  HELD: {h}; uploads of this resource stop until the cause is fixed\n"));
    }
    if let Some(e) = &r.last_error {
        out.push_str(&format!("  ERROR: {e}\n"));
    }
    if r.quarantined > 0 {
        out.push_str(&format!("  quarantine: {} rows or files set aside by the last scan\n", r.quarantined));
        for q in &r.quarantine {
            out.push_str(&format!("    {}: {}", q.place, q.reason));
            if !q.content.is_empty() {
                out.push_str(&format!(" [{}]", q.content));
            }
            out.push('\n');
        }
        if r.quarantined > r.quarantine.len() as i64 {
            out.push_str(&format!(
                "    … and {} more (gdx-agent status --json lists the first {})\n",
                r.quarantined - r.quarantine.len() as i64,
                crate::state::QUARANTINE_SHOWN
            ));
        }
    }
    out
}

/// The outcome of one doctor check.
#[derive(Debug, Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One line of the doctor's report.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

/// Runs every check; the hub check dials with `timeout`.
pub async fn doctor(paths: &AgentPaths, now: i64, timeout: Duration) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut push = |name, verdict, detail: String| checks.push(Check { name, verdict, detail });
    let config = match AgentConfig::load(paths) {
        Ok(c) => {
            push(
                "config",
                Verdict::Ok,
                format!("{} is valid: node {}, hub {} at {}", paths.config().display(), c.node, c.hub, c.hub_addr),
            );
            c
        }
        Err(e) => {
            push("config", Verdict::Fail, e.to_string());
            return checks;
        }
    };
    let creds = match Credentials::load(paths) {
        Ok(c) => c,
        Err(e) => {
            push("certificate", Verdict::Fail, format!("{e:#}"));
            return checks;
        }
    };
    match creds.chain.first().map(|c| Identity::of(c)) {
        Some(Ok(Identity::Node { node, not_after, .. })) => {
            if node != config.node {
                push(
                    "certificate",
                    Verdict::Fail,
                    format!(
                        "agent.crt is for {node} but agent.toml says {}; restore agent.toml or enrol again",
                        config.node
                    ),
                );
            } else if not_after <= now {
                push(
                    "certificate",
                    Verdict::Fail,
                    format!(
                        "the certificate expired on {}; ask the hub operator for a token and enrol again",
                        format_date(not_after)
                    ),
                );
            } else if not_after - now < EXPIRY_WARNING_DAYS * 86_400 {
                push(
                    "certificate",
                    Verdict::Warn,
                    format!(
                        "the certificate expires on {} and was not renewed (it renews by itself over the connection after two thirds of its life): run `gdx-agent renew`; if the hub refuses, ask its operator for a token and enrol again",
                        format_date(not_after)
                    ),
                );
            } else {
                push("certificate", Verdict::Ok, format!("valid until {}", format_date(not_after)));
            }
        }
        _ => push("certificate", Verdict::Fail, "agent.crt holds no GDX node certificate; enrol again".into()),
    }
    let started = Instant::now();
    match uplink::connect(&config, &creds, timeout, true).await {
        Ok(session) => {
            push(
                "hub",
                Verdict::Ok,
                format!(
                    "reached {} ({}) at {} in {} ms",
                    session.welcome.hub,
                    session.welcome.hub_name,
                    config.hub_addr,
                    started.elapsed().as_millis()
                ),
            );
            let skew = (session.welcome.now_ms / 1000 - now).abs();
            let (verdict, detail) = match skew {
                0..=60 => (Verdict::Ok, format!("this machine's clock is within {skew} s of the hub's")),
                // certificates are valid from an hour before they are made (gdx_certs::pki::BACKDATE_SECS)
                61..=1800 => (
                    Verdict::Warn,
                    format!("this machine's clock is {skew} s off the hub's; enable NTP (timedatectl set-ntp true)"),
                ),
                _ => (
                    Verdict::Fail,
                    format!(
                        "this machine's clock is {skew} s off the hub's, near the hour that breaks new certificates; enable NTP (timedatectl set-ntp true)"
                    ),
                ),
            };
            push("clock", verdict, detail);
            session.close(b"doctor done").await;
        }
        Err(e) => push("hub", Verdict::Fail, e.0),
    }
    // a database source is read by a user that may only read
    for res in &config.resources {
        // the database clients block: off the async threads
        let source = res.source.clone();
        let access = tokio::task::spawn_blocking(move || crate::sources::write_access(&source)).await.ok().flatten();
        let Some(access) = access else { continue };
        match access {
            Ok(None) => push("source", Verdict::Ok, format!("{}: the database user may only read", res.code)),
            Ok(Some(more)) => push(
                "source",
                Verdict::Warn,
                format!(
                    "{}: the database user can write ({more}); give the agent a user with only SELECT on what it publishes (docs/installer.md)",
                    res.code
                ),
            ),
            Err(e) => push("source", Verdict::Fail, format!("{}: {e}", res.code)),
        }
    }
    let mut state = State::open(&paths.state()).ok();
    if let Some(state) = &state {
        for res in &config.resources {
            let Ok(r) = state.resource_state(res.code.as_str()) else { continue };
            if let Some(p) = &r.paused {
                push("resource", Verdict::Fail, format!("{} is paused: {p}", r.code));
            } else if let Some(h) = &r.held {
                push("resource", Verdict::Fail, format!("{}: uploads held: {h}", r.code));
            } else if let Some(e) = &r.last_error {
                push("resource", Verdict::Fail, e.clone());
            } else if r.quarantined > 0 {
                push(
                    "resource",
                    Verdict::Warn,
                    format!("{}: {} rows or files in quarantine; `gdx-agent status` lists them", r.code, r.quarantined),
                );
            } else {
                push(
                    "resource",
                    Verdict::Ok,
                    format!("{}: {} rows, {} changesets waiting", r.code, r.rows, r.backlog_changesets),
                );
            }
        }
    }
    if let Some(Ok(lines)) = state.as_mut().map(|s| catalog_overview(&config, s, now)) {
        for l in &lines {
            let what = format!("{} {}", l.code.as_deref().unwrap_or("entry"), l.name.as_deref().unwrap_or(""));
            let verdict = if l.problem.is_some() {
                Verdict::Fail
            } else if l.pending || l.version == 0 || (l.resource.is_none() && !l.withdrawn) {
                Verdict::Warn
            } else {
                Verdict::Ok
            };
            push("catalogue", verdict, format!("{}: {}", what.trim(), catalog_state(l)));
        }
    }
    let link = State::open(&paths.state()).and_then(|s| s.link());
    match link {
        Ok(l) if l.heartbeat.is_some_and(|h| now - h <= HEARTBEAT_STALE_SECS) => {
            push("daemon", Verdict::Ok, format!("gdx-agent run is running ({})", l.state))
        }
        Ok(_) => push(
            "daemon",
            Verdict::Warn,
            "gdx-agent run is not running; start it with `gdx-agent run` (or systemctl start gdx-agent)".into(),
        ),
        Err(e) => push("daemon", Verdict::Warn, format!("cannot read {}: {e}", paths.state().display())),
    }
    checks
}

/// The doctor's report as text.
pub fn doctor_text(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| {
            let v = match c.verdict {
                Verdict::Ok => "ok  ",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
            };
            format!("{v}  {:<12} {}\n", c.name, c.detail)
        })
        .collect()
}
