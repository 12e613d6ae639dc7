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

mod passes;
use passes::{cosign_pass, exchange_pass, observations_pass};

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

/// What the link to the parent works with.
#[derive(Clone)]
pub struct Link {
    pub paths: HubPaths,
    pub config: HubConfig,
    pub vaults: Arc<Vaults>,
    pub catalog: Arc<Mutex<Catalog>>,
    pub exchange: Arc<Mutex<Exchange>>,
    pub audit: Arc<Mutex<crate::audit::AuditLog>>,
}

/// Keeps the link to the parent until the task is aborted.
pub async fn run(link: Link) {
    let Link { paths, config, vaults, catalog, exchange, audit } = link;
    let (Some(parent), Some(addr)) = (config.parent.clone(), config.parent_addr.clone()) else { return };
    let mut backoff = gdx_link::Backoff::default();
    loop {
        let started = std::time::Instant::now();
        let reason = match connect(&paths, &config, &addr).await {
            Ok((endpoint, conn)) => {
                set_state(&paths, "connected", None);
                info!(%parent, "connected to the parent hub");
                let reason = forward_loop(&conn, &paths, &config, &vaults, &catalog, &exchange, &audit).await;
                if gdx_link::backoff::restarted(&conn) {
                    backoff.start_over();
                }
                conn.close(quinn::VarInt::from_u32(0), b"reconnecting");
                endpoint.close(quinn::VarInt::from_u32(0), b"reconnecting");
                reason
            }
            Err(e) => e,
        };
        let delay = backoff.after(started.elapsed());
        warn!(
            %parent, error = %reason, retry_in_s = delay.as_secs_f32(),
            "link to the parent hub down; this hub keeps accepting and forwards later"
        );
        set_state(&paths, "disconnected", Some(&reason));
        tokio::time::sleep(delay).await;
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
