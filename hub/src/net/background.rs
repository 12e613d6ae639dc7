//! The hub's background loops while it runs: the audit log kept from the
//! stores' events, the base databases merged, and deliveries and notices
//! produced from new changesets.

use super::*;

/// Moves the stores' audit events into the log twice a second, and signs a
/// checkpoint at least every [`crate::audit::CHECKPOINT_EVERY`] while entries arrive.
/// Of the vaults it opens all until one pass over them succeeds (whatever an
/// earlier run left behind), then those written since its last look; a vault
/// with events left, or not read because of an error, is looked at again.
pub(super) async fn keep_audit_log(log: Arc<Mutex<crate::audit::AuditLog>>, vaults: Arc<Vaults>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_checkpoint = std::time::Instant::now();
    let mut swept = false;
    loop {
        tick.tick().await;
        let sign = last_checkpoint.elapsed() >= crate::audit::CHECKPOINT_EVERY;
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
/// changesets applied since (`crate::base`).
pub(super) async fn merge_bases(hub: Arc<Hub>, dir: std::path::PathBuf, bases: crate::base::BasesConfig) {
    if bases.bases.is_empty() {
        return;
    }
    let bases = Arc::new(bases);
    // signed with the hub's key and certificate in force, made again when they change (a renewal while it runs)
    let mut publisher: Option<(Arc<super::credentials::Credentials>, Arc<crate::base::Publisher>)> = None;
    loop {
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
        let (hub, dir, bases) = (hub.clone(), dir.clone(), bases.clone());
        let merged = tokio::task::spawn_blocking(move || {
            // a base is published only from member rows on disk
            hub.vaults.synced_blocking(hub.vaults.ticket());
            let at = now();
            let revoked = |node: &NodeId| hub.store.lock().is_ok_and(|s| s.revoked_node(node, at).unwrap_or(false));
            let cx = crate::base::Context { publisher: Some(&current), revoked: &revoked };
            crate::base::merge_all(&dir, &hub.vaults, &bases, &cx, at)
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
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = SupervisionConfig::modified(&dir);
    let mut more = false;
    let mut last_second = std::time::Instant::now();
    let Ok(doorbell) = exchange.lock().map(|x| x.doorbell.clone()) else { return };
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
