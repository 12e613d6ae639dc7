//! The hub's background loops while it runs: the audit log kept from the
//! stores' events, the base databases merged, deliveries and notices
//! produced from new changesets, and the once-a-second maintenance. What
//! must run in one process of the hub at a time waits for the [`Lease`].

use super::*;
use lease::Lease;

/// How often the holder of the lease looks at every vault for audit events.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Moves the stores' audit events into the log twice a second, and, while
/// this process holds the lease, signs a checkpoint at least every
/// [`crate::audit::CHECKPOINT_EVERY`] while entries arrive.
/// Of the vaults it opens all until one pass over them succeeds (whatever an
/// earlier run left behind), then those written since its last look; a vault
/// with events left, or not read because of an error, is looked at again.
/// The holder of the lease looks at every vault again when it takes the
/// lease and each [`SWEEP_EVERY`]: another process of the hub that died
/// may have left events behind.
pub(super) async fn keep_audit_log(log: Arc<Mutex<crate::audit::AuditLog>>, vaults: Arc<Vaults>, lease: Lease) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_checkpoint = std::time::Instant::now();
    let mut last_sweep = std::time::Instant::now();
    let mut swept = false;
    let mut taken = lease.taken();
    loop {
        tick.tick().await;
        let leads = lease.held();
        // (with files there is one process, which sweeps once)
        if leads && vaults.postgres().is_some() && (lease.taken() != taken || last_sweep.elapsed() >= SWEEP_EVERY) {
            swept = false;
        }
        taken = lease.taken();
        if !swept {
            last_sweep = std::time::Instant::now();
        }
        let sign = leads && last_checkpoint.elapsed() >= crate::audit::CHECKPOINT_EVERY;
        if sign {
            last_checkpoint = std::time::Instant::now();
        }
        let (log, vaults) = (log.clone(), vaults.clone());
        let done = tokio::task::spawn_blocking(move || -> Result<(), crate::audit::AuditError> {
            // only what is on disk is logged: a commit lost with the machine must not leave an entry
            vaults.synced_blocking(vaults.ticket());
            let mut log = log.lock().map_err(|_| crate::audit::AuditError::Other("poisoned".into()))?;
            let mut todo = if swept { vaults.take_written() } else { log.vault_files() };
            // passes one after the other while stores are left, for up to a second
            let started = std::time::Instant::now();
            loop {
                match log.collect_from_vaults(&todo) {
                    Ok((_, more)) if !more.is_empty() && started.elapsed() < Duration::from_secs(1) => todo = more,
                    Ok((_, more)) => break vaults.mark_written(more),
                    Err(e) => {
                        vaults.mark_written(todo);
                        return Err(e);
                    }
                }
            }
            // a PostgreSQL that cannot be read now holds back neither the other stores nor the checkpoint
            if let Err(e) = collect_postgres(&mut log, &vaults, !swept) {
                warn!(error = %e, "the audit log cannot read the vaults on PostgreSQL now; their events wait there");
            }
            if sign {
                log.checkpoint(now())?;
            }
            Ok(())
        })
        .await;
        match done {
            Ok(Ok(())) => swept = true,
            Ok(Err(e)) => {
                warn!(error = %e, "the audit log could not take new entries; they wait in the stores' outboxes");
            }
            Err(_) => {}
        }
    }
}

/// The audit events of the vaults on PostgreSQL, if they are there: of
/// every vault (`all`), or of those written since the last look; a vault
/// with events left, or not read, is looked at again. Blocking.
pub(super) fn collect_postgres(
    log: &mut crate::audit::AuditLog,
    vaults: &Vaults,
    all: bool,
) -> Result<(), crate::audit::AuditError> {
    let Some(pg) = vaults.postgres() else { return Ok(()) };
    let mut todo = match all {
        true => pg.nodes().map_err(|e| crate::audit::AuditError::Other(e.to_string()))?,
        false => vaults.take_written_pg(),
    };
    let started = std::time::Instant::now();
    loop {
        match log.collect_from_postgres(pg, &todo) {
            Ok((_, more)) if !more.is_empty() && started.elapsed() < Duration::from_secs(1) => todo = more,
            Ok((_, more)) => break vaults.mark_written_pg(more),
            Err(e) => {
                vaults.mark_written_pg(todo);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Keeps the base databases merged: every half second, the member
/// changesets applied since (`crate::base`), by the process holding the
/// lease (one merge, one publisher of each base's changesets).
pub(super) async fn merge_bases(hub: Arc<Hub>, dir: std::path::PathBuf, bases: crate::base::BasesConfig, lease: Lease) {
    if bases.bases.is_empty() {
        return;
    }
    let bases = Arc::new(bases);
    // signed with the hub's key and certificate in force, made again when they change (a renewal while it runs)
    let mut publisher: Option<(Arc<super::credentials::Credentials>, Arc<crate::base::Publisher>)> = None;
    loop {
        if !lease.held() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let creds = hub.creds();
        let current = match &publisher {
            Some((made_from, p)) if Arc::ptr_eq(made_from, &creds) => p.clone(),
            _ => match creds.signer() {
                Ok(s) => {
                    let p = Arc::new(crate::base::Publisher { hub: hub.config.hub_id(), key: s.key, chain: s.chain });
                    publisher = Some((creds, p.clone()));
                    p
                }
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "the base databases cannot be signed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
        };
        let (hub, dir, bases, held) = (hub.clone(), dir.clone(), bases.clone(), lease.clone());
        let merged = tokio::task::spawn_blocking(move || {
            // a base is published only from member rows on disk
            hub.vaults.synced_blocking(hub.vaults.ticket());
            let at = now();
            let revoked = |node: &NodeId| hub.store.lock().is_ok_and(|s| s.revoked_node(node, at).unwrap_or(false));
            let cx = crate::base::Context { publisher: Some(&current), revoked: &revoked };
            crate::base::merge_all(&dir, &hub.vaults, &bases, &cx, at, &|| held.held())
        })
        .await;
        if let Ok(Err(e)) = merged {
            warn!(error = %e, "the base databases could not be merged; retrying");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Turns new changesets into deliveries for every live grant: when a
/// changeset is applied, when a request record is stored (a grant may be
/// live), and each second; while a pass made a full batch
/// (a backlog), the next follows at once (each pass makes at most
/// `PRODUCE_PER_PASS` per grant and lets go of the exchange between
/// passes, so lookups are not held up). Each second also the
/// registration's 双告知 notices, and `supervision.toml` read again when
/// it changes (a mistake in it is logged and the rules before it kept).
/// Deliveries are made only from vault commits on disk.
pub(super) async fn produce(
    exchange: Arc<Mutex<Exchange>>,
    vaults: Arc<Vaults>,
    dir: PathBuf,
    supervision: Arc<RwLock<SupervisionConfig>>,
    lease: Lease,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = SupervisionConfig::modified(&dir);
    let mut more = false;
    let mut last_second = std::time::Instant::now();
    let Ok(doorbell) = exchange.lock().map(|x| x.doorbell.clone()) else { return };
    // the change number of the newest delivery this process has rung for (-1: not read yet)
    let mut rung = -1;
    loop {
        if more {
            tokio::task::yield_now().await;
        } else {
            tokio::select! {
                _ = tick.tick() => {}
                () = vaults.deliverable.notified() => {}
                () = doorbell.produce.notified() => {}
            }
        }
        // the once-a-second work, however busy the deliveries keep this loop
        let second = last_second.elapsed() >= Duration::from_secs(1);
        if second {
            last_second = std::time::Instant::now();
            let modified = SupervisionConfig::modified(&dir);
            if modified != seen {
                seen = modified;
                match SupervisionConfig::load(&dir) {
                    Ok(c) => {
                        info!("supervision.toml read again");
                        if let Ok(mut held) = supervision.write() {
                            *held = c;
                        }
                    }
                    Err(e) => warn!(error = %e, "supervision.toml changed but is not valid; the rules before it stay"),
                }
            }
        }
        // deliveries and notices are made by the process that holds the lease; another rings
        // its own agents and child hubs for what that one stored
        if !lease.held() {
            more = false;
            if second {
                let x = exchange.clone();
                let after = rung;
                let seen =
                    tokio::task::spawn_blocking(move || x.lock().map_err(|_| ()).map(|x| x.ring_stored_since(after)))
                        .await;
                if let Ok(Ok(Ok(newest))) = seen {
                    rung = newest;
                }
            }
            continue;
        }
        let rules =
            second.then(|| supervision.read().map(|c| (c.registration.clone(), c.rules.clone())).ok()).flatten();
        let (x, v) = (exchange.clone(), vaults.clone());
        let made = tokio::task::spawn_blocking(move || {
            v.synced_blocking(v.ticket());
            x.lock().map_err(|_| ()).map(|mut x| {
                let now = crate::exchange::clock();
                if let Some((Some(reg), rules)) = &rules
                    && let Err(e) = x.issue_notices(reg, rules, now)
                {
                    warn!(error = %e, "cannot issue 双告知 notices");
                }
                x.produce(now)
            })
        })
        .await;
        more = matches!(made, Ok(Ok(Ok(n))) if n as u64 >= crate::exchange::PRODUCE_PER_PASS);
        if let Ok(Ok(Err(e))) = made {
            warn!(error = %e, "cannot produce deliveries");
        }
    }
}

/// Runs the link to the parent while this process holds the lease: started
/// when it is taken, stopped when it is lost, started again a second after
/// it ended by itself. Aborting this task aborts the link with it.
pub(super) async fn link_to_parent(link: parent::Link, mut lease: Lease) {
    /// Aborts the task when dropped, so that the link never outlives its supervisor.
    struct Running(tokio::task::JoinHandle<()>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    loop {
        let taken = lease.acquired().await;
        let mut running = Running(tokio::spawn(parent::run(link.clone())));
        tokio::select! {
            () = lease.lost(taken) => {}
            _ = &mut running.0 => {
                warn!("the link to the parent hub stopped by itself; it starts again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Once a second: the heartbeat, revocations and expiries (closing the
/// connections they end), the child hubs, and hub.toml read again when changed.
pub(super) async fn maintain(hub: Arc<Hub>) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        if n.is_multiple_of(5) {
            hub.reload_if_changed();
        }
        let revoked = match hub.store.lock() {
            Ok(store) => {
                let _ = store.heartbeat(now());
                if n.is_multiple_of(10) {
                    let nodes: Vec<NodeId> = hub
                        .live
                        .lock()
                        .map(|m| m.values().filter(|l| !l.probe).map(|l| l.node.clone()).collect())
                        .unwrap_or_default();
                    let _ = store.touch_connected(&nodes, now());
                }
                if let Ok(serials) = store.hub_serials() {
                    hub.policy.set_hub_serials(serials);
                }
                if let Ok(children) = store.child_hubs() {
                    hub.policy.set_children(children.clone());
                    // not waited for on this worker (the producer may hold it for a pass): the next tick sets it
                    if let Ok(mut x) = hub.exchange.try_lock() {
                        x.set_children(children);
                    }
                }
                if let Ok(below) = store.revoked_below_all() {
                    hub.policy.set_revoked_below(below);
                }
                store.revoked_serials()
            }
            Err(_) => continue,
        };
        let Ok(revoked) = revoked else { continue };
        hub.policy.set_revoked(revoked);
        if let Ok(map) = hub.live.lock() {
            let now = now();
            for live in map.values() {
                let reason = if hub.policy.node_revoked(&live.node, &live.serial, live.not_before) {
                    warn!(node = %live.node, probe = live.probe, "closing the connection of a revoked node");
                    format!(
                        "the certificate of {} was revoked at {}; ask the hub operator for a new enrolment token",
                        live.node,
                        format_time(now)
                    )
                } else if live.not_after < now {
                    warn!(node = %live.node, probe = live.probe, "closing the connection of an expired certificate");
                    format!(
                        "the certificate of {} expired at {}; enrol again with a token from the hub operator",
                        live.node,
                        format_time(live.not_after)
                    )
                } else {
                    continue;
                };
                live.conn.close(quinn::VarInt::from_u32(close_code::REVOKED), reason.as_bytes());
            }
        }
    }
}
