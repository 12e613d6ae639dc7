//! Running syncs: `gdx-agent sync` (once, with a progress bar) and the
//! daemon's loop (each resource on its schedule, and whenever its source
//! changes on disk).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use gdx_link::Backoff;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::{AgentConfig, AgentPaths, ResourceConfig, SourceConfig};
use crate::identity::{Credentials, Signer, signer};
use crate::state::State;
use crate::sync::{self, ScanReport};
use crate::uplink;
use crate::{catalog, now, sources, upload};

/// The outcome of `gdx-agent sync`.
#[derive(Debug, Default)]
pub struct SyncOutcome {
    pub reports: Vec<ScanReport>,
    pub errors: Vec<String>,
    pub sent_rows: u64,
    pub sent_changesets: u64,
    /// Catalogue entry versions the hub recorded.
    pub published: u64,
    /// UDP bytes this sync sent to the hub, handshake included.
    pub sent_bytes: u64,
    /// Set when the upload could not finish.
    pub upload_error: Option<String>,
    /// Things the operator should know that are not failures.
    pub notes: Vec<String>,
    pub left: upload::Backlog,
}

/// Scans the selected resources and uploads their changesets as they are
/// made, until the hub has acknowledged everything.
pub async fn sync_once(
    dir: &Path,
    only: Option<&str>,
    accept_schema: bool,
    full: bool,
    show_progress: bool,
    timeout: Duration,
) -> anyhow::Result<SyncOutcome> {
    let paths = AgentPaths::new(dir);
    let config = AgentConfig::load(&paths)?;
    let selected: Vec<&ResourceConfig> = match only {
        Some(code) => vec![config.resource(code).with_context(|| {
            let all: Vec<&str> = config.resources.iter().map(|r| r.code.as_str()).collect();
            format!(
                "agent.toml declares no resource {code:?}; it declares: {}",
                if all.is_empty() { "none".into() } else { all.join(", ") }
            )
        })?],
        None => config.resources.iter().collect(),
    };
    if selected.is_empty() {
        anyhow::bail!(
            "agent.toml declares no resources yet; add a [[resource]] table (see the comments in agent.toml)"
        );
    }
    let creds = Credentials::load(&paths)?;
    let signer = Arc::new(signer(&config, &creds)?);
    let mut state = State::open(&paths.state())?;
    let mut out = SyncOutcome::default();
    if accept_schema {
        for res in &selected {
            sync::accept_schema(&mut state, res.code.as_str())?;
        }
    }
    if full {
        for res in &selected {
            sync::read_whole_next(&mut state, res.code.as_str())?;
        }
    }
    // The scan runs on a thread of its own and commits one changeset at a
    // time; this task uploads each as soon as it is in the outbox, so the
    // hub applies one while the agent makes the next.
    let wake = Arc::new(Notify::new());
    let scanner = {
        let (wake, signer, state_path) = (wake.clone(), signer.clone(), paths.state());
        let resources: Vec<ResourceConfig> = selected.iter().map(|r| (*r).clone()).collect();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Result<ScanReport, String>>> {
            let mut state = State::open(&state_path)?;
            let reports = resources
                .iter()
                .map(|res| {
                    sync::scan(&mut state, &signer, res, now(), || wake.notify_one()).map_err(|e| {
                        if gdx_files::disk_full(&e) {
                            format!("resource {}: {}", res.code.as_str(), crate::state::disk_full_sentence(None))
                        } else {
                            e.to_string()
                        }
                    })
                })
                .collect();
            wake.notify_one();
            Ok(reports)
        })
    };
    let bar = show_progress.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} sending [{bar:30}] {pos}/{len} rows {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut session: Option<uplink::Session> = None;
    loop {
        // Finished before the last look at the outbox: that drain sends everything.
        let finished = scanner.is_finished();
        let backlog = upload::backlog(&mut state, only)?;
        // and a scan's quality report, queued after the last changeset was sent, goes on the
        // connection that sent it (with nothing else to send it waits for the next upload)
        let waiting = backlog.changesets > 0
            || catalog::pending(&mut state)? > 0
            || (finished && session.is_some() && upload::quality_pending(&mut state)? > 0);
        if waiting && out.upload_error.is_none() {
            if session.is_none() {
                match uplink::connect(&config, &creds, timeout, true).await {
                    Ok(s) => session = Some(s),
                    Err(e) => out.upload_error = Some(e.0),
                }
            }
            if let Some(s) = &session {
                let sent_before = out.sent_rows;
                if let Some(b) = &bar {
                    b.set_length(sent_before + backlog.rows);
                }
                let drained = upload::drain(&s.conn, &mut state, only, |rows, waiting| {
                    if let Some(b) = &bar {
                        // what the scan commits while this drain runs is sent by it too:
                        // once what was known to wait is sent, look again
                        let at = sent_before + rows;
                        if b.length().is_some_and(|len| at >= len) {
                            b.set_length(at + waiting());
                        }
                        b.set_position(at);
                    }
                })
                .await;
                match drained {
                    Ok(d) => {
                        out.sent_rows += d.rows;
                        out.sent_changesets += d.acked;
                        out.published += d.catalog.recorded;
                        out.errors.extend(d.catalog.refused.iter().map(|r| format!("the hub refused {r}")));
                        out.errors.extend(d.rejected.iter().map(|r| {
                            format!("{r}; uploads of that resource are held: fix the cause, then run `gdx-agent sync --resource CODE --accept-schema`, which sends the resource again in full")
                        }));
                    }
                    Err(e) => out.upload_error = Some(e.to_string()),
                }
            }
        }
        if finished {
            break;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    let scans = scanner.await.context("the scan thread failed")??;
    let scan_errors: Vec<String> = scans.iter().filter_map(|r| r.as_ref().err().cloned()).collect();
    out.errors.splice(0..0, scan_errors);
    out.reports = scans.into_iter().filter_map(Result::ok).collect();
    // a resource held since an earlier sync sends nothing until it is fixed: said every time
    for code in selected.iter().map(|r| r.code.as_str()) {
        let Some(reason) = state.resource_state(code)?.held else { continue };
        if !out.errors.iter().any(|e| e.starts_with(&format!("{code}: "))) {
            out.errors.push(format!(
                "{code}: uploads are held since {reason}; fix the cause, then run `gdx-agent sync --resource {code} --accept-schema`, which sends the resource again in full"
            ));
        }
    }
    if only.is_none() {
        out.notes = undeclared_entries(&config, &signer, &mut state)?;
    }
    if let Some(s) = session {
        out.sent_bytes = s.conn.stats().udp_tx.bytes;
        s.close(b"sync done").await;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    out.left = upload::backlog(&mut state, only)?;
    Ok(out)
}

/// How long a watched drop folder must be left alone before it is scanned
/// (after a database's change the daemon waits half a second), and the
/// longest wait for that while it keeps changing (a scan then reads what
/// is there, and sets aside a file that changes under it).
const SETTLE: Duration = Duration::from_millis(1000);
const SETTLE_AT_MOST: Duration = Duration::from_secs(60);

/// Published entries that agent.toml no longer declares: they stay in the
/// catalogue until withdrawn explicitly.
fn undeclared_entries(config: &AgentConfig, signer: &Signer, state: &mut State) -> anyhow::Result<Vec<String>> {
    let declared: Vec<String> = config
        .resources
        .iter()
        .filter_map(|r| catalog::declared(r, &signer.node, now()).ok().flatten().map(|e| e.code))
        .collect();
    Ok(catalog::local_entries(state)?
        .into_iter()
        .filter(|e| !e.withdrawn && e.recorded > 0 && !declared.contains(&e.code))
        .map(|e| {
            format!(
                "catalogue entry {} ({}) is no longer declared in agent.toml but stays published; withdraw it with `gdx-agent catalog withdraw {}`",
                e.code, e.name, e.code
            )
        })
        .collect())
}

/// Withdraws the published entry `code`: records the withdrawal as the
/// entry's next version, then sends it. Returns the version; when the hub
/// cannot be reached the withdrawal waits in state.db for the next sync.
pub async fn withdraw(dir: &Path, code: &str, timeout: Duration) -> anyhow::Result<catalog::Withdrawal> {
    let paths = AgentPaths::new(dir);
    let config = AgentConfig::load(&paths)?;
    let creds = Credentials::load(&paths)?;
    let signer = signer(&config, &creds)?;
    let mut state = State::open(&paths.state())?;
    let withdrawal = catalog::withdraw(&mut state, &signer, &config, code, now()).map_err(anyhow::Error::msg)?;
    if withdrawal == catalog::Withdrawal::Forgotten {
        return Ok(withdrawal);
    }
    let session = uplink::connect(&config, &creds, timeout, true).await.map_err(|e| {
        anyhow::anyhow!("{}; the withdrawal is recorded and `gdx-agent run` or the next sync sends it", e.0)
    })?;
    let published = upload::publish_pending(&session.conn, &mut state).await;
    session.close(b"withdrawn").await;
    let published = published.map_err(|e| {
        anyhow::anyhow!("{e}; the withdrawal is recorded and `gdx-agent run` or the next sync sends it")
    })?;
    if let Some(r) = published.refused.iter().find(|r| r.starts_with(&format!("catalogue entry {code} "))) {
        anyhow::bail!("the hub refused {r}");
    }
    if published.stale.iter().any(|c| c == code) {
        anyhow::bail!(
            "the hub holds a newer version of {code} than this agent knew of, so the withdrawal was not recorded; run the same command again"
        );
    }
    Ok(withdrawal)
}

/// The daemon's scanner: scans each resource when due or when its source
/// changes, and wakes the uploader. Runs on its own thread.
pub fn scan_loop(dir: &Path, wake_uploader: Arc<Notify>) -> anyhow::Result<()> {
    let paths = AgentPaths::new(dir);
    let config = AgentConfig::load(&paths)?;
    if config.resources.is_empty() {
        return Ok(());
    }
    let mut signer = signer(&config, &Credentials::load(&paths)?)?;
    // a certificate renewed while the daemon runs signs from the next scan on
    let cert_changed = || std::fs::metadata(paths.cert()).and_then(|m| m.modified()).ok();
    let mut cert_at = cert_changed();
    let mut state = State::open(&paths.state())?;
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let mut watchers = Vec::new();
    for (i, res) in config.resources.iter().enumerate() {
        // a database server has no file to watch: it syncs on its schedule
        let Some(watched) = sources::watched_path(&res.source).map(Path::to_path_buf) else { continue };
        let tx = tx.clone();
        let target = if watched.is_dir() {
            watched.clone()
        } else {
            watched.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let name = watched.file_name().map(|n| n.to_string_lossy().into_owned());
        let is_dir = watched.is_dir();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev {
                let relevant = is_dir
                    || ev.paths.iter().any(|p| {
                        p.file_name()
                            .map(|f| f.to_string_lossy())
                            .is_some_and(|f| name.as_deref().is_some_and(|n| f.starts_with(n)))
                    });
                if relevant && !ev.kind.is_access() {
                    let _ = tx.send(i);
                }
            }
        });
        match watcher {
            Ok(mut w) => {
                use notify::Watcher;
                if let Err(e) = w.watch(&target, notify::RecursiveMode::NonRecursive) {
                    warn!(resource = %res.code, error = %e, "cannot watch the source; it syncs on its schedule only");
                }
                watchers.push(w);
            }
            Err(e) => warn!(error = %e, "file watching unavailable; resources sync on their schedule only"),
        }
    }
    let mut due: HashMap<usize, Instant> = (0..config.resources.len()).map(|i| (i, Instant::now())).collect();
    loop {
        let next = due.values().min().copied().unwrap_or_else(Instant::now);
        if let Ok(i) = rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            // let a burst of writes settle before scanning; a file copied into a drop folder is
            // written piece by piece for as long as the copy lasts, each piece an event: a drop
            // waits until it has been left alone a while
            due.insert(i, Instant::now());
            let is_drop = matches!(config.resources.get(i).map(|r| &r.source), Some(SourceConfig::Csv { .. }));
            if is_drop {
                let started = Instant::now();
                while let Ok(j) = rx.recv_timeout(SETTLE) {
                    due.insert(j, Instant::now());
                    if started.elapsed() > SETTLE_AT_MOST {
                        break;
                    }
                }
            } else {
                std::thread::sleep(Duration::from_millis(500));
                while let Ok(j) = rx.try_recv() {
                    due.insert(j, Instant::now());
                }
            }
        }
        if cert_changed() != cert_at
            && let Ok(s) = Credentials::load(&paths).and_then(|c| crate::identity::signer(&config, &c))
        {
            signer = s;
            cert_at = cert_changed();
        }
        for (i, res) in config.resources.iter().enumerate() {
            if due.get(&i).is_some_and(|t| *t <= Instant::now()) {
                match sync::scan(&mut state, &signer, res, now(), || wake_uploader.notify_one()) {
                    Ok(r) if r.paused.is_some() => warn!(resource = %r.resource, reason = ?r.paused, "resource paused"),
                    Ok(r) => {
                        if r.changesets > 0 || r.entry_version.is_some() {
                            info!(resource = %r.resource, inserted = r.inserted, updated = r.updated, deleted = r.deleted, quarantined = r.quarantined, "changes queued");
                        }
                    }
                    Err(e) => warn!(error = %e, "scan failed"),
                }
                // the scan's quality report waits in the outbox too
                wake_uploader.notify_one();
                let every = res.schedule_secs().unwrap_or(900).max(1) as u64;
                due.insert(i, Instant::now() + Duration::from_secs(every));
            }
        }
    }
}

/// The longest wait before sending again to a hub that could not store
/// (from 1 s, doubling): short, so that the outbox empties soon after the
/// hub's disk has room again.
const BUSY_RETRY_MAX: Duration = Duration::from_secs(8);
/// Answers "cannot store now" in a row (about 45 s) before the uploader
/// gives the connection up and the daemon's own backoff, and `status`,
/// take over: a hub whose store stays broken is reported, not retried
/// quietly.
const BUSY_RETRIES: u32 = 8;

/// The daemon's uploader on an established connection: drains the outbox
/// now, whenever the scanner queues changes, and every 30 s. Returns when
/// the link fails (the caller reconnects); a hub that answers but cannot
/// store for now is asked again on the same connection.
pub async fn upload_loop(conn: &quinn::Connection, state_path: &Path, wake: &Notify) -> String {
    let mut state = match State::open(state_path) {
        Ok(s) => s,
        Err(e) => return format!("cannot open the state database: {e}"),
    };
    let mut busy_wait = Backoff::up_to(BUSY_RETRY_MAX);
    let mut busy = 0;
    loop {
        match upload::drain(conn, &mut state, None, |_, _| {}).await {
            Ok(_) => (busy_wait, busy) = (Backoff::up_to(BUSY_RETRY_MAX), 0),
            // the hub is there but cannot store now (a full disk): try again on this connection, soon
            // after it frees space, rather than reconnecting with the daemon's growing backoff
            Err(upload::UploadError::HubBusy(why)) if busy < BUSY_RETRIES => {
                busy += 1;
                let wait = busy_wait.after(Duration::ZERO);
                warn!(error = %why, retry_in_s = wait.as_secs_f32(), "the hub could not take the changesets");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    reason = conn.closed() => return gdx_link::frames::describe_connection_error(&reason),
                }
                continue;
            }
            Err(e) => return e.to_string(),
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
            reason = conn.closed() => return gdx_link::frames::describe_connection_error(&reason),
        }
    }
}
