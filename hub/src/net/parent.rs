//! A child (prefecture) hub's link to its parent: one connection, kept
//! with backoff, over which the child forwards what the parent must hold.
//!
//! Forwarded, in this order on each pass: the catalogue entries of the
//! child's subtree (the Publish frames exactly as their providers signed
//! them), then the changesets of the 基础信息资源 (the Upload frames as the
//! origin agents signed them, kept in the vault with each applied
//! changeset). Nothing else leaves the prefecture, except through a grant:
//! each pass also pushes the subtree's requests, decisions, deliveries and
//! delivery progress, and pulls what concerns the subtree (see
//! [`crate::exchange`]); and about every 15 s it reports what it observed
//! of its departments for 考核 (counts and times, never rows; see
//! [`crate::evaluation::facts`]).
//!
//! The vault is the durable outbox: a changeset is stored with its frame in
//! the same transaction that applies it, and `forwarded_seq` advances only
//! on the parent's acknowledgement. While the parent is unreachable the
//! child keeps accepting from its agents; when the link returns everything
//! flows in order, and a resend after a kill is a duplicate the parent
//! acknowledges without applying.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gdx_certs::pki::{self, pem_blocks};
use gdx_certs::tls;
use gdx_common::relay::{self, Signer};
use gdx_common::wire::{self, CatalogPull, Hello, LENGTH_PREFIX, Message, NodeReport, ReportedNode};
use gdx_common::{NodeId, Role};
use gdx_link::frames::{self, describe_connection_error};
use rustls::pki_types::CertificateDer;
use tracing::{info, warn};

use crate::catalog::Catalog;
use crate::config::HubConfig;
use crate::exchange::Exchange;
use crate::store::HubPaths;
use crate::store::Store;
use crate::store::vault::Vaults;
use crate::util::now;

/// Changesets in flight before waiting for acknowledgements.
const WINDOW: usize = 32;
/// How often the child looks for something to forward.
const PASS_INTERVAL: Duration = Duration::from_secs(1);
/// Passes between two pulls of the parent's catalogue.
const PULL_EVERY: u64 = 5;
/// Passes between two reports of what this hub observed of its departments (考核).
const OBSERVE_EVERY: u64 = 15;
/// Passes between renewals and root updates besides the connection's start (about an hour).
const CREDENTIALS_EVERY: u64 = 3600;
/// How long to wait for an answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// The other side, in errors.
const PARENT: &str = "the parent hub";

/// Keeps the link to the parent until the task is aborted.
pub async fn run(
    paths: HubPaths,
    config: HubConfig,
    vaults: Arc<Vaults>,
    catalog: Arc<Mutex<Catalog>>,
    exchange: Arc<Mutex<Exchange>>,
    audit: Arc<Mutex<crate::audit::AuditLog>>,
) {
    let (Some(parent), Some(addr)) = (config.parent.clone(), config.parent_addr.clone()) else { return };
    let mut backoff = gdx_link::Backoff::default();
    loop {
        let started = std::time::Instant::now();
        let reason = match connect(&paths, &config, &addr).await {
            Ok((endpoint, conn)) => {
                set_state(&paths, "connected", None);
                info!(%parent, "connected to the parent hub");
                let reason = forward_loop(&conn, &paths, &config, &vaults, &catalog, &exchange, &audit).await;
                conn.close(quinn::VarInt::from_u32(0), b"reconnecting");
                endpoint.close(quinn::VarInt::from_u32(0), b"reconnecting");
                reason
            }
            Err(e) => e,
        };
        warn!(%parent, error = %reason, "link to the parent hub down; this hub keeps accepting and forwards later");
        set_state(&paths, "disconnected", Some(&reason));
        tokio::time::sleep(backoff.after(started.elapsed())).await;
    }
}

fn set_state(paths: &HubPaths, state: &str, error: Option<&str>) {
    if let Ok(store) = Store::open(paths) {
        // "since" is when the state changed, not the latest retry; each connection is connected anew
        if state == "connected" || store.meta("parent_state").ok().flatten().as_deref() != Some(state) {
            let _ = store.set_meta("parent_since", &now().to_string());
        }
        let _ = store.set_meta("parent_state", state);
        if let Some(e) = error {
            let _ = store.set_meta("parent_error", e);
        }
    }
}

/// Dials the parent with this hub's certificate and exchanges hello and welcome.
async fn connect(
    paths: &HubPaths,
    config: &HubConfig,
    addr: &str,
) -> Result<(quinn::Endpoint, quinn::Connection), String> {
    let read =
        |p: std::path::PathBuf| std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let chain: Vec<CertificateDer<'static>> =
        pem_blocks(&read(paths.hub_cert())?, "CERTIFICATE").into_iter().map(CertificateDer::from).collect();
    let key = gdx_files::read_private(&paths.hub_key())
        .map_err(|e| e.to_string())
        .and_then(|pem| pki::key_from_pem(&pem, "hub.key").map_err(|e| e.to_string()))?;
    let roots = super::upward::read_roots(paths)?;
    let tls = tls::node_client_config(Some((chain, key.serialize_der())), &roots, config.parent.as_ref())
        .map_err(|e| e.to_string())?;
    let (endpoint, conn) = gdx_link::client::dial(addr, tls, Duration::from_secs(15)).await?;
    let hello = Message::Hello(Hello {
        node: config.hub_id(),
        role: Role::Hub,
        software: concat!("gdx-hub ", env!("CARGO_PKG_VERSION")).to_owned(),
        probe: false,
    });
    let answer = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| describe_connection_error(&e))?;
        frames::send(&mut send, &hello).await.map_err(|e| e.to_string())?;
        let answer = frames::recv(&mut recv).await.map_err(|e| e.to_string());
        let _ = send.finish();
        answer
    };
    match tokio::time::timeout(Duration::from_secs(15), answer).await {
        Ok(Ok(Some(Message::Welcome(_)))) => Ok((endpoint, conn)),
        Ok(Ok(Some(Message::Refused(r)))) => Err(r.message),
        Ok(Ok(other)) => {
            Err(format!("the parent hub answered the hello with {}", other.as_ref().map_or("nothing", Message::kind)))
        }
        Ok(Err(e)) => Err(conn.close_reason().map(|r| describe_connection_error(&r)).unwrap_or(e)),
        Err(_) => Err("the parent hub did not answer the hello within 15 s".into()),
    }
}

/// Pulls what the parent recorded since the last pull (the rest of the
/// province's catalogue), verifying each entry against its provider's
/// chain, and tells the parent when this subtree's data last changed.
async fn pull_catalog(
    conn: &quinn::Connection,
    paths: &HubPaths,
    config: &HubConfig,
    chains: &tls::ChainVerifier,
    province: gdx_common::DivisionCode,
    catalog: &Mutex<Catalog>,
) -> Result<(), String> {
    let store = Store::open(paths).map_err(|e| e.to_string())?;
    let since: u64 = store.meta("parent_catalog_rev").ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
    let changed = {
        let c = catalog.lock().map_err(|_| "the catalogue is unavailable".to_owned())?;
        c.own_changes(now()).map_err(|e| e.to_string())?
    };
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| describe_connection_error(&e))?;
    frames::send(&mut send, &Message::CatalogPull(CatalogPull { since, changed })).await.map_err(|e| e.to_string())?;
    let _ = send.finish();
    let parent = config.parent.clone().unwrap_or_else(|| config.hub_id());
    loop {
        match frames::answer(conn, &mut recv, ANSWER_TIMEOUT, PARENT).await? {
            Message::Publish(env) => {
                // the parent vouched for revocation; the signer must be the origin agent
                let signer = chains.verify(&env.signer_chain, now()).and_then(|id| {
                    let signer = match id {
                        gdx_certs::Identity::Node { node, role, .. } => Signer::Node { node, role, revoked: false },
                        gdx_certs::Identity::Ca { .. } => Signer::Ca,
                    };
                    relay::check_signer(&env.origin, &signer).map_err(|e| e.to_string())?;
                    Ok(env.signer_chain.first().cloned().unwrap_or_default())
                });
                let mut c = catalog.lock().map_err(|_| "the catalogue is unavailable".to_owned())?;
                if let Message::CatalogRefused(r) = crate::catalog::accept(&mut c, signer, Some(&parent), env, now()) {
                    warn!(code = %r.code, reason = %r.reason, "an entry from the parent's catalogue was not recorded");
                }
            }
            Message::CatalogPulled(done) => {
                let c = catalog.lock().map_err(|_| "the catalogue is unavailable".to_owned())?;
                c.note_changes(&done.changed, province).map_err(|e| e.to_string())?;
                store.set_meta("parent_catalog_rev", &done.upto.to_string()).map_err(|e| e.to_string())?;
                return Ok(());
            }
            Message::Refused(r) => return Err(r.message),
            other => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
        }
    }
}

/// Reports this hub's subtree (nodes, revocations, forwarding backlog) and
/// applies the revocations the parent passes down.
async fn report(
    conn: &quinn::Connection,
    paths: &HubPaths,
    vaults: &Vaults,
    catalog: &Mutex<Catalog>,
) -> Result<(), String> {
    let store = Store::open(paths).map_err(|e| e.to_string())?;
    let listed = crate::nodes::list(&store, None, now()).map_err(|e| e.to_string())?;
    let nodes = listed
        .iter()
        .filter_map(|n| {
            Some(ReportedNode {
                node: NodeId::parse(&n.row.node).ok()?,
                role: n.row.role.parse().ok()?,
                serial: n.row.cert_serial.clone(),
                not_after: n.row.cert_not_after,
                revoked_at: n.row.revoked_at,
                state: n.state.clone(),
                last_seen: n.row.last_seen,
            })
        })
        .collect();
    let base = {
        let c = catalog.lock().map_err(|_| "the catalogue is unavailable".to_owned())?;
        c.base_resources().map_err(|e| e.to_string())?
    };
    let backlog = base
        .iter()
        .filter(|(n, _)| vaults.path(n).exists())
        .map(|(n, r)| vaults.forward_backlog(n, r).unwrap_or(0))
        .sum();
    let report = NodeReport { nodes, backlog };
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| describe_connection_error(&e))?;
    frames::send(&mut send, &Message::NodeReport(report)).await.map_err(|e| e.to_string())?;
    let _ = send.finish();
    match frames::answer(conn, &mut recv, ANSWER_TIMEOUT, PARENT).await? {
        Message::ReportAck(ack) => {
            for (node, at) in ack.revoke {
                if store.revoke_issued_before(&node, at, now()).map_err(|e| e.to_string())? > 0 {
                    warn!(%node, "revoked by the parent hub's operator");
                }
            }
            Ok(())
        }
        other => Err(format!("unexpected answer from the parent hub: {}", other.kind())),
    }
}

/// Forwards on every pass until the connection fails; returns why.
async fn forward_loop(
    conn: &quinn::Connection,
    paths: &HubPaths,
    config: &HubConfig,
    vaults: &Vaults,
    catalog: &Arc<Mutex<Catalog>>,
    exchange: &Arc<Mutex<Exchange>>,
    audit: &Arc<Mutex<crate::audit::AuditLog>>,
) -> String {
    // the roots the parent trusts, this hub's intermediate CA and its own certificate, renewed when due
    super::upward::credentials_pass(conn, paths, config).await;
    let roots = match super::upward::read_roots(paths) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let province = match roots.first().map(|r| gdx_certs::Identity::of(r)) {
        Some(Ok(gdx_certs::Identity::Ca { division, .. })) => division,
        _ => return "root.crt is not a GDX CA certificate".into(),
    };
    let mut chains = match tls::ChainVerifier::new(&roots) {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    let mut pass: u64 = 0;
    // deliveries for this subtree are pulled as soon as the parent rings, and
    // those for outside it pushed as soon as they are stored
    let watching = gdx_link::watch::watch(conn, PARENT);
    let doorbell = match exchange.lock() {
        Ok(x) => x.doorbell.clone(),
        Err(_) => return "the exchange store is unavailable".into(),
    };
    loop {
        // A changeset applied here is forwarded at once; the rest waits for the pass.
        let next_pass = tokio::time::Instant::now() + PASS_INTERVAL;
        if let Err(e) = forward_catalog(conn, catalog).await {
            return e;
        }
        if let Err(e) = forward_changesets(conn, vaults, catalog).await {
            return e;
        }
        if let Err(e) = exchange_pass(conn, catalog, exchange).await {
            return e;
        }
        if let Err(e) = cosign_pass(conn, audit).await {
            return e;
        }
        if pass > 0 && pass.is_multiple_of(CREDENTIALS_EVERY) {
            super::upward::credentials_pass(conn, paths, config).await;
            // a root taken now checks what the parent sends from now on
            if let Ok(c) =
                super::upward::read_roots(paths).and_then(|r| tls::ChainVerifier::new(&r).map_err(|e| e.to_string()))
            {
                chains = c;
            }
        }
        if pass.is_multiple_of(PULL_EVERY) {
            if let Err(e) = pull_catalog(conn, paths, config, &chains, province, catalog).await {
                return e;
            }
            if let Err(e) = report(conn, paths, vaults, catalog).await {
                return e;
            }
        }
        // a parent of protocol 1 does not know observations: they wait (their cursors stay) until it is upgraded
        if pass.is_multiple_of(OBSERVE_EVERY)
            && frames::protocol(conn) >= gdx_common::wire::OBSERVATIONS_AND_RENEWAL
            && let Err(e) = observations_pass(conn, paths).await
        {
            return e;
        }
        pass += 1;
        loop {
            tokio::select! {
                // the pass first, then deliveries rung: a stream of applied changesets holds neither back
                biased;
                () = tokio::time::sleep_until(next_pass) => break,
                () = async {
                    match &watching {
                        Some(w) => w.rung.notified().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Err(e) = exchange_pass(conn, catalog, exchange).await {
                        return e;
                    }
                }
                () = doorbell.up.notified() => {
                    if let Err(e) = exchange_pass(conn, catalog, exchange).await {
                        return e;
                    }
                }
                () = vaults.applied.notified() => {
                    if let Err(e) = forward_changesets(conn, vaults, catalog).await {
                        return e;
                    }
                }
                reason = conn.closed() => return describe_connection_error(&reason),
            }
        }
    }
}

async fn forward_catalog(conn: &quinn::Connection, catalog: &Mutex<Catalog>) -> Result<(), String> {
    let waiting = {
        let c = catalog.lock().map_err(|_| "the catalogue is unavailable".to_owned())?;
        c.to_forward().map_err(|e| e.to_string())?
    };
    if waiting.is_empty() {
        return Ok(());
    }
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| describe_connection_error(&e))?;
    for (_, _, frame) in &waiting {
        send.write_all(frame).await.map_err(|e| e.to_string())?;
    }
    for (code, version, _) in &waiting {
        match frames::answer(conn, &mut recv, ANSWER_TIMEOUT, PARENT).await? {
            Message::Catalogued(a) if &a.code == code => {}
            Message::CatalogRefused(r) if &r.code == code => {
                warn!(%code, version, reason = %r.reason, "the parent refused a catalogue entry");
            }
            other => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
        }
        let c = catalog.lock().map_err(|_| "the catalogue is unavailable".to_owned())?;
        c.forwarded(code, *version).map_err(|e| e.to_string())?;
    }
    let _ = send.finish();
    Ok(())
}

async fn forward_changesets(conn: &quinn::Connection, vaults: &Vaults, catalog: &Mutex<Catalog>) -> Result<(), String> {
    let base = {
        let c = catalog.lock().map_err(|_| "the catalogue is unavailable".to_owned())?;
        c.base_resources().map_err(|e| e.to_string())?
    };
    for (node, resource) in base {
        forward_resource(conn, vaults, &node, &resource).await?;
    }
    // and every department's 政务服务事项 lists, for the provincial library
    let dir = vaults.dir().to_owned();
    let lists = tokio::task::spawn_blocking(move || crate::items::lists(&dir)).await.unwrap_or_default();
    for (node, resource) in lists {
        forward_resource(conn, vaults, &node, &resource).await?;
    }
    Ok(())
}

/// Batches of one resource sent per pass, so that a large backlog does not
/// delay the catalogue, the report and revocations for long.
const BATCHES_PER_PASS: usize = 32;

/// Sends the stored frames of one resource above what the parent holds, in
/// order, until none are left or this pass's share is sent.
async fn forward_resource(
    conn: &quinn::Connection,
    vaults: &Vaults,
    node: &NodeId,
    resource: &str,
) -> Result<(), String> {
    if !vaults.path(node).exists() {
        return Ok(());
    }
    let mut expected: Option<u64> = None;
    for _ in 0..BATCHES_PER_PASS {
        let batch = vaults.to_forward(node, resource, WINDOW).map_err(|e| e.to_string())?;
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(e) = expected
            && batch[0].0 != e
        {
            let reason = format!("the parent expects changeset {e}, which this hub does not hold");
            warn!(%node, %resource, %reason, "forwarding of this resource is held");
            vaults.hold_forwarding(node, resource, &reason).map_err(|e| e.to_string())?;
            return Ok(());
        }
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| describe_connection_error(&e))?;
        for (_, frame) in &batch {
            if frame.len() < LENGTH_PREFIX {
                return Err(format!("a stored changeset of {node} {resource} is damaged"));
            }
            send.write_all(frame).await.map_err(|e| e.to_string())?;
        }
        let mut restart = false;
        for _ in &batch {
            match frames::answer(conn, &mut recv, ANSWER_TIMEOUT, PARENT).await? {
                Message::Ack(a) => vaults.forwarded(node, resource, a.seq).map_err(|e| e.to_string())?,
                Message::Gap(g) => {
                    // The parent holds everything below `expected`.
                    vaults.forwarded(node, resource, g.expected.saturating_sub(1)).map_err(|e| e.to_string())?;
                    expected = Some(g.expected);
                    restart = true;
                    break;
                }
                Message::Rejected(r) => {
                    let reason = format!("the parent rejected changeset {}: {}", r.seq, r.reason);
                    warn!(%node, %resource, %reason, "forwarding of this resource is held");
                    vaults.hold_forwarding(node, resource, &reason).map_err(|e| e.to_string())?;
                    restart = true;
                    break;
                }
                // the parent cannot store for now (a full disk): the link is sound; the next pass, a
                // second away, sends again what was not acknowledged, instead of a reconnection whose
                // backoff grows while the parent's operator frees space
                Message::Refused(r) if r.code == gdx_common::wire::RefusalCode::Internal => {
                    warn!(%node, %resource, reason = %r.message, "the parent hub could not store; sent again next pass");
                    return Ok(());
                }
                Message::Refused(r) => return Err(r.message),
                other => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
            }
        }
        let _ = send.finish();
        if !restart {
            expected = None;
        }
        // After a gap or a rejection, answers still in flight belong to the
        // abandoned stream; the next batch starts where the parent expects.
    }
    Ok(())
}

/// Runs `f` on the exchange on a blocking thread: the producer may hold
/// the exchange for a pass, which must not stall one of the runtime's
/// workers (and every connection they serve).
async fn with_exchange<T: Send + 'static>(
    exchange: &Arc<Mutex<Exchange>>,
    f: impl FnOnce(&mut Exchange) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let exchange = exchange.clone();
    tokio::task::spawn_blocking(move || f(&mut *exchange.lock().map_err(unavailable)?))
        .await
        .map_err(|_| "the exchange failed while the parent link used it".to_owned())?
}

/// Pushes what this subtree recorded for the exchange since the last push,
/// then pulls what the parent holds for this subtree. Each side stores an
/// item once (records by version, deliveries by grant and number), so a
/// pass repeated after a kill or a lost answer changes nothing.
async fn exchange_pass(
    conn: &quinn::Connection,
    catalog: &Arc<Mutex<Catalog>>,
    exchange: &Arc<Mutex<Exchange>>,
) -> Result<(), String> {
    loop {
        let batch = with_exchange(exchange, |x| {
            let since = x.meta("pushed").map_err(|e| e.to_string())?;
            x.batch_since(since, None).map_err(|e| e.to_string())
        })
        .await?;
        let since = batch.upto;
        let empty = batch.is_empty();
        if !empty {
            match frames::ask(conn, &Message::ExchangePush(batch), ANSWER_TIMEOUT, PARENT).await? {
                Message::ExchangePushed(upto) if upto == since => {}
                other => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
            }
        }
        let done = with_exchange(exchange, move |x| {
            if x.meta("pushed").map_err(|e| e.to_string())? == since {
                return Ok(true);
            }
            x.set_cursor("pushed", since).map_err(|e| e.to_string()).map(|()| false)
        })
        .await?;
        if done {
            break;
        }
    }
    loop {
        let since = with_exchange(exchange, |x| x.meta("pulled").map_err(|e| e.to_string())).await?;
        let batch = match frames::ask(conn, &Message::ExchangePull(since), ANSWER_TIMEOUT, PARENT).await? {
            Message::ExchangePulled(b) => b,
            other => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
        };
        if batch.upto == since {
            return Ok(());
        }
        let pieces = pieces_of(batch);
        let last = pieces.len() - 1;
        for (n, piece) in pieces.into_iter().enumerate() {
            let catalog = catalog.clone();
            let exchange = exchange.clone();
            tokio::task::spawn_blocking(move || {
                let entry = |code: &str| {
                    let c = catalog.lock().ok()?;
                    // a withdrawn entry grants nothing: refiled against it, a request is refused
                    c.get(code, now()).ok().flatten().filter(|l| !l.withdrawn).map(|l| l.entry)
                };
                let cursor = (n == last).then_some("pulled");
                exchange.lock().map_err(unavailable)?.merge(&piece, None, &entry, cursor).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())??;
        }
    }
}

/// Deliveries merged under one hold of the exchange: a lookup answered
/// here waits for one piece of a pulled batch, not the whole of it.
const DELIVERIES_PER_MERGE: usize = 1;

/// A pulled batch in pieces merged one after the other, each in its own
/// transaction: the records and everything else with the first, the
/// deliveries [`DELIVERIES_PER_MERGE`] at a time, the pull cursor with the
/// last. Killed between two, the batch is pulled again from the cursor
/// and what was merged is merged again as nothing (records by version,
/// deliveries by grant and number).
fn pieces_of(mut batch: wire::ExchangeBatch) -> Vec<wire::ExchangeBatch> {
    let upto = batch.upto;
    let mut deliveries = std::mem::take(&mut batch.deliveries).into_iter().peekable();
    batch.deliveries = deliveries.by_ref().take(DELIVERIES_PER_MERGE).collect();
    let mut pieces = vec![batch];
    while deliveries.peek().is_some() {
        pieces.push(wire::ExchangeBatch {
            records: Vec::new(),
            deliveries: deliveries.by_ref().take(DELIVERIES_PER_MERGE).collect(),
            progress: Vec::new(),
            notices: Vec::new(),
            checks: Vec::new(),
            upto,
        });
    }
    pieces
}

/// Sends the parent what this hub observed of its departments since the
/// last report (`crate::evaluation::facts`); the cursors move once the
/// parent answered every message. A parent that refuses is logged, and
/// asked again next time.
async fn observations_pass(conn: &quinn::Connection, paths: &HubPaths) -> Result<(), String> {
    let paths = paths.clone();
    // the log is read through a connection of its own: the audit log's lock is never held
    let gathered = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = Store::open(&paths)?;
        let log = crate::audit::Reader::open(&paths.dir)?;
        let pending = crate::evaluation::facts::pending(&store, &log, now())?;
        Ok((store, pending))
    })
    .await
    .map_err(|e| e.to_string())?;
    let (store, pending) = match gathered {
        Ok(x) => x,
        Err(e) => {
            warn!(error = %e, "cannot gather this hub's observations for the parent hub; trying again later");
            return Ok(());
        }
    };
    for chunk in chunks(&pending.days) {
        match frames::ask(conn, &Message::Observations(chunk.to_vec()), ANSWER_TIMEOUT, PARENT).await {
            Ok(Message::ObservationsTaken(n)) if n as usize == chunk.len() => {}
            Ok(Message::ObservationsTaken(n)) => {
                warn!(
                    taken = n,
                    sent = chunk.len(),
                    "the parent hub refused some of this hub's observations (its log says why)"
                );
            }
            Ok(other) => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
            Err(refused) => {
                warn!(error = %refused, "the parent hub did not take this hub's observations");
                return Ok(());
            }
        }
    }
    crate::evaluation::facts::sent(&store, &pending).map_err(|e| e.to_string())
}

/// The days in messages of at most `MAX_FACTS` days and about 4 MiB (a
/// day's JSON is longer than its frame), well within a frame's limit.
fn chunks(days: &[gdx_common::evaluation::DayFacts]) -> Vec<&[gdx_common::evaluation::DayFacts]> {
    const BYTES: usize = 4 << 20;
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, d) in days.iter().enumerate() {
        let size = serde_json::to_vec(d).map_or(BYTES, |v| v.len());
        if i > start && (i - start >= gdx_common::evaluation::MAX_FACTS || bytes + size > BYTES) {
            out.push(&days[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < days.len() {
        out.push(&days[start..]);
    }
    out
}

fn unavailable<T>(_: T) -> String {
    "the exchange store is unavailable".to_owned()
}

/// Sends this hub's newest audit checkpoint to the parent, with the proof
/// that it extends the last one the parent cosigned, and keeps the
/// cosignature if it verifies. A refusal (equivocation) or a cosignature
/// that is not kept is logged and retried later.
async fn cosign_pass(conn: &quinn::Connection, audit: &Arc<Mutex<crate::audit::AuditLog>>) -> Result<(), String> {
    let mut from = None;
    for _ in 0..2 {
        let req = audit.lock().map_err(unavailable)?.cosign_request(from).map_err(|e| e.to_string())?;
        let Some(req) = req else { return Ok(()) };
        match frames::ask(conn, &Message::Cosign(req), ANSWER_TIMEOUT, PARENT).await {
            Ok(Message::Cosigned(c)) => {
                let kept = audit.lock().map_err(unavailable)?.keep_cosignature(&c).map_err(|e| e.to_string())?;
                if let Err(refused) = kept {
                    warn!(error = %refused, "the parent hub's cosignature of this hub's audit checkpoint was not kept");
                }
                return Ok(());
            }
            Ok(Message::CosignFrom(size)) => from = Some(size),
            Ok(other) => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
            Err(refused) => {
                warn!(error = %refused, "the parent hub did not cosign this hub's audit checkpoint");
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(n: u64) -> wire::SignedDelivery {
        wire::SignedDelivery {
            grant: "630100-1".into(),
            n,
            replace: n == 1,
            rows: 1,
            body: Vec::new(),
            signature: Vec::new(),
            signer_chain: Vec::new(),
        }
    }

    #[test]
    fn a_pulled_batch_merges_in_pieces_of_one_delivery_with_everything_else_first() {
        let batch = wire::ExchangeBatch {
            records: Vec::new(),
            deliveries: (1..=3).map(delivery).collect(),
            progress: vec![wire::Progress { grant: "630100-1".into(), n: 0, rows: 0, at: 0 }],
            notices: Vec::new(),
            checks: Vec::new(),
            upto: 42,
        };
        let pieces = pieces_of(batch);
        let numbers: Vec<Vec<u64>> = pieces.iter().map(|p| p.deliveries.iter().map(|d| d.n).collect()).collect();
        assert_eq!(numbers, [vec![1], vec![2], vec![3]]);
        assert_eq!(pieces[0].progress.len(), 1);
        assert!(pieces[1..].iter().all(|p| p.progress.is_empty() && p.upto == 42));
        // a batch without deliveries is one piece, its cursor moving with it
        let empty = wire::ExchangeBatch { deliveries: Vec::new(), ..pieces[0].clone() };
        assert_eq!(pieces_of(empty).len(), 1);
    }
}
