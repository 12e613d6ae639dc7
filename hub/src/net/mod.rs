//! `gdx-hub run`: the QUIC endpoint, the handshake policy, the live
//! connections, and revocation.
//!
//! Each accepted connection is served by its own task inside a tracing span
//! that names the peer. On ALPN `gdx/3`, `gdx/2` or `gdx/1` (the protocol versions
//! this build speaks, `wire::ALPNS`) the peer must hold a certificate
//! that chains to this hub's CA ([`gdx_certs::tls`] checks that), has not
//! been revoked, and whose role and division this hub serves ([`Policy`]).
//! The first stream carries a versioned hello; the hub answers with a
//! welcome or a refusal that names both versions. On `gdx-enroll/1` the
//! peer has no certificate yet and may only enrol.
//!
//! A maintenance task re-reads revocations from `hub.db` every second, so a
//! `gdx-hub revoke` run by the operator refuses new handshakes at once and
//! closes the node's live connection within about a second.
//!
//! [`policy`] decides who may connect; `dispatch` answers what a connected
//! node's streams carry.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use gdx_certs::pki::{self, Identity};
use gdx_certs::tls::PeerPolicy;
use gdx_common::catalog::CatalogEntry;
use gdx_common::data::decode_changeset;
use gdx_common::units::format_time;
use gdx_common::wire::{self, Ack, Gap, Message, Refusal, RefusalCode, Rejected, SignedChangeset, Welcome, WireError};
use gdx_common::{DivisionCode, NodeId, Role};
use gdx_link::frames::{self, FrameError};
use rustls::pki_types::CertificateDer;
use tracing::{Instrument, info, info_span, warn};

use crate::catalog::{self, Catalog};
use crate::config::HubConfig;
use crate::enrol;
use crate::exchange::Exchange;
use crate::store::HubPaths;
use crate::store::Store;
use crate::store::vault::{Applied, VaultError, Vaults};
use crate::supervision::config::SupervisionConfig;
use crate::util::{now, now_ms};

mod background;
mod changesets;
mod credentials;
mod dispatch;
mod enrolment;
pub(crate) mod gate;
mod gauges;
pub mod lease;
pub mod parent;
mod policy;
mod upward;

pub use policy::Policy;

/// Application close codes sent to peers.
pub mod close_code {
    /// The hub is shutting down.
    pub const SHUTDOWN: u32 = 0;
    /// The peer did something the protocol forbids.
    pub const REFUSED: u32 = 1;
    /// The peer's certificate was revoked.
    pub const REVOKED: u32 = 2;
    /// A newer connection from the same node replaced this one.
    pub const REPLACED: u32 = 3;
}

/// How long a peer has to finish its QUIC handshake: as long as agents and
/// child hubs wait for it (15 s). On a county's 300 ms satellite link with
/// 5 % loss an enrolment took 5 to 10.5 s, and at 10 s some handshakes were
/// cut off (each lost handshake packet waits out a probe timeout that
/// doubles); the number of handshakes under way is bounded apart (`gate`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a peer has, once connected, to open its first stream and say
/// hello (or send its enrolment request), whole.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an upload stream may wait for its next message before the hub
/// ends it (the node opens a new one for its next pass).
const UPLOAD_IDLE: Duration = Duration::from_secs(120);
/// The receive and send buffers asked for the hub's UDP socket: every
/// agent's datagrams arrive on it, and a burst that overflows the kernel's
/// default (about 200 KiB) is dropped and waits for QUIC to resend it.
const UDP_BUFFER: usize = 8 << 20;

/// Threads for the hub's blocking work (applying changesets, the stores):
/// enough to wait on the disk and on locks, few enough that each one's
/// memory (its stack, its compression contexts) stays small beside the
/// connections (tokio's default is 512).
const BLOCKING_THREADS: usize = 64;

/// The runtime a hub serves on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(BLOCKING_THREADS).build()
}

/// Binds the hub's UDP socket with large buffers; says so when the kernel
/// gives less than half of [`UDP_BUFFER`] (its `net.core.rmem_max`).
fn bind_udp(listen: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(listen), Type::DGRAM, Some(Protocol::UDP))?;
    // what the kernel does not grant is capped, not refused
    let _ = socket.set_recv_buffer_size(UDP_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_BUFFER);
    // Linux reports twice what it grants (its bookkeeping)
    let granted = socket.recv_buffer_size().unwrap_or(0) / 2;
    if granted < UDP_BUFFER / 2 {
        warn!(
            granted_kib = granted / 1024,
            "the UDP receive buffer is small: bursts from many agents may be dropped and resent; raise it with `sysctl -w net.core.rmem_max={UDP_BUFFER}` (and in /etc/sysctl.d to keep it)"
        );
    }
    socket.bind(&listen.into())?;
    Ok(socket.into())
}

/// Answers of one stream waiting for their flush (an agent keeps up to 16
/// changesets in flight).
const ANSWERS_IN_FLIGHT: usize = 64;
/// One-shot (probe) connections one node may have open at once.
const MAX_PROBES_PER_NODE: usize = 4;
/// How often revocations are re-read and the heartbeat written.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);

struct Live {
    /// When the hub accepted the connection, in accept order: of two
    /// connections of one node the later accepted wins, whichever finishes
    /// its hello first.
    order: u64,
    node: NodeId,
    serial: String,
    /// When the certificate was issued: a revocation from above covers it when made after.
    not_before: i64,
    /// When the certificate expires: the connection is closed then.
    not_after: i64,
    /// A one-shot command's connection (doctor, request, …): it replaces
    /// no other and is replaced by none, but revocation and expiry close it.
    probe: bool,
    conn: quinn::Connection,
}

/// A connected node as its verified certificate names it.
struct Peer {
    node: NodeId,
    role: Role,
    serial: String,
    not_before: i64,
    not_after: i64,
    /// The certificate itself (DER).
    cert: Vec<u8>,
}

/// What answering one request on an upload stream takes, run on the blocking pool.
type Work = Box<dyn FnOnce(&Hub) -> Vec<Message> + Send>;

/// A running hub.
struct Hub {
    config: HubConfig,
    vaults: Arc<Vaults>,
    /// Certificates, keys and roots, switched when their files change.
    creds: RwLock<Arc<credentials::Credentials>>,
    /// The data directory.
    dir: PathBuf,
    /// The QUIC endpoint, whose server configuration follows `creds`.
    endpoint: quinn::Endpoint,
    store: Arc<Mutex<Store>>,
    catalog: Arc<Mutex<Catalog>>,
    exchange: Arc<Mutex<Exchange>>,
    /// Lookups, answered beside the exchange store's lock.
    lookups: Mutex<crate::exchange::Lookups>,
    audit: Arc<Mutex<crate::audit::AuditLog>>,
    policy: Arc<Policy>,
    live: Mutex<HashMap<usize, Live>>,
    /// Connections accepted so far (see [`Live::order`]).
    accepted: std::sync::atomic::AtomicU64,
    /// Caps on connections, in total and before they prove who they are.
    gate: gate::Gate,
    /// `supervision.toml`, read again when the operator changes it.
    supervision: Arc<RwLock<SupervisionConfig>>,
    /// Rung when a delivery is stored for an agent or a child hub (`Watch`).
    doorbell: Arc<crate::exchange::doorbell::Doorbell>,
}

/// Serves until `shutdown` completes. Prints one line when ready.
pub async fn run(dir: &Path, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let paths = HubPaths::new(dir);
    let config = HubConfig::load(&paths)?;
    // an older directory is backed up, then marked current; a newer one is refused
    if let Some(backup) = crate::store::format::migrate(dir, now())? {
        println!(
            "the data directory was of an older format; it was backed up to {} before this gdx-hub uses it",
            backup.display()
        );
    }
    // a renewal (of hub.crt, or of the CA) cut short settles before anything reads it
    credentials::settle(&paths)?;
    // a province hub renews its own certificate from its own CA when due
    if let Some(until) = crate::init::renew_own(&paths, &config, now())? {
        println!("this hub's certificate was renewed until {}", gdx_common::units::format_date(until));
    }
    let creds = credentials::Credentials::load(&paths)?;
    // before anything is written (the heartbeat would hold off the migrate this asks for)
    let left = crate::store::db::migrate::files_in(&paths.vaults());
    if config.postgres().is_some() && left > 0 {
        anyhow::bail!(
            "{} holds {left} departments' vault files, which would be left behind on PostgreSQL; \
             move them with `gdx-hub migrate --to postgres` first",
            paths.vaults().display()
        );
    }
    let bases_left = crate::store::db::migrate::files_in(&paths.bases());
    if config.postgres().is_some() && bases_left > 0 {
        anyhow::bail!(
            "{} holds {bases_left} base databases' files, which would be left behind on PostgreSQL; \
             move them with `gdx-hub migrate --to postgres` first",
            paths.bases().display()
        );
    }
    let store = Store::open(&paths)?;
    // with PostgreSQL another process of this hub may be running: the first to take the lease leads
    let (lease, keeper) = lease::Lease::start(&config).map_err(anyhow::Error::msg)?;
    match lease.clone().standing(Duration::from_secs(15)).await {
        // no other process runs: what was open ended when the last one stopped
        lease::Standing::Held => store.reset_connections()?,
        lease::Standing::Elsewhere => println!(
            "another gdx-hub process of {} holds the lease on background work; this one serves and takes over if it stops",
            config.hub_id()
        ),
        lease::Standing::Unreachable | lease::Standing::Unknown => println!(
            "the lease on background work cannot be asked for yet (the database does not answer); this process serves and takes it when it can"
        ),
    }
    store.heartbeat(now())?;
    let policy = Arc::new(Policy::new(config.division, creds.own_cas(), store.revoked_serials()?));
    policy.set_revoked_below(store.revoked_below_all()?);
    policy.set_children(store.child_hubs()?);
    policy.set_hub_serials(store.hub_serials()?);
    let server_config = creds.server_config(policy.clone())?;
    // the supervision rules: a mistake stops the start here (and later edits are read while serving)
    let supervision = Arc::new(std::sync::RwLock::new(SupervisionConfig::load(dir).map_err(anyhow::Error::msg)?));
    // the base databases, and the entries of those shared: a mistake stops the start here
    let bases = crate::base::BasesConfig::load(dir).map_err(anyhow::Error::msg)?;
    // the vaults: files here, or PostgreSQL (connected and checked before anything listens)
    let vaults = {
        let (dir, config) = (dir.to_owned(), config.clone());
        Arc::new(tokio::task::spawn_blocking(move || Vaults::for_hub(&dir, &config)).await??)
    };
    let mut base_entries = Vec::new();
    for b in &bases.bases {
        if let Some(entry) = b.entry(&config.hub_id(), now().div_euclid(86_400)).map_err(anyhow::Error::msg)? {
            base_entries.push((b.name.clone(), entry));
        }
    }
    let listen: SocketAddr = config
        .listen
        .parse()
        .with_context(|| format!("listen = {:?} in hub.toml is not an IP:PORT address", config.listen))?;
    let socket = bind_udp(listen).with_context(|| {
        format!("cannot listen on {listen}/udp; another gdx-hub may be running, or change listen in hub.toml")
    })?;
    let endpoint = quinn::Endpoint::new(
        gdx_certs::tls::hub_endpoint_config(&credentials::reset_key(&paths)?),
        Some(server_config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .with_context(|| format!("cannot serve QUIC on {listen}/udp"))?;
    let local = endpoint.local_addr().unwrap_or(listen);
    let catalog = Arc::new(Mutex::new(Catalog::with_vaults(dir, vaults.clone())?));
    let mut exchange = Exchange::open(dir, config.hub_id())?;
    // restored from a backup: child hubs may have pulled up to numbers handed out after it
    let restored = dir.join(crate::backup::RESTORED);
    if restored.exists() {
        let rev = exchange.leap_after_restore()?;
        info!(
            rev,
            "restored from a backup: the exchange's change numbers go on from here, past any a child hub pulled"
        );
        std::fs::remove_file(&restored).context("cannot remove the restore marker")?;
        gdx_files::sync_dir(dir)?;
    }
    exchange.set_children(store.child_hubs()?);
    exchange.set_signer(creds.signer()?);
    if let Some(pg) = vaults.postgres() {
        exchange.set_postgres(pg.clone());
    }
    let doorbell = exchange.doorbell.clone();
    let exchange = Arc::new(Mutex::new(exchange));
    let store = Arc::new(Mutex::new(store));
    let mut lookups = crate::exchange::Lookups::open(dir, config.hub_id(), store.clone())?;
    lookups.set_limit(config.lookups_per_minute);
    let audit = Arc::new(Mutex::new(crate::audit::AuditLog::open(dir, &config.hub_id().to_string())?));
    let portal = crate::portal::Shared {
        catalog: catalog.clone(),
        exchange: exchange.clone(),
        audit: audit.clone(),
        vaults: vaults.clone(),
    };
    let (http, api) = crate::api::bind(&paths, &config, creds.auth.ca.as_ref(), Some(portal)).await?;
    println!(
        "gdx-hub {} ({}) serving the portal on https://{http}/ and the HTTPS API on https://{http}/api/v1/",
        config.hub_id(),
        config.name
    );
    println!(
        "gdx-hub {} ({}) listening on {local}/udp (QUIC, gdx protocol {})",
        config.hub_id(),
        config.name,
        wire::versions_spoken()
    );

    let hub = Arc::new(Hub {
        config,
        vaults,
        creds: RwLock::new(Arc::new(creds)),
        dir: dir.to_owned(),
        endpoint: endpoint.clone(),
        store,
        catalog: catalog.clone(),
        exchange: exchange.clone(),
        lookups: Mutex::new(lookups),
        audit: audit.clone(),
        policy,
        live: Mutex::new(HashMap::new()),
        accepted: std::sync::atomic::AtomicU64::new(0),
        gate: gate::Gate::default(),
        supervision: supervision.clone(),
        doorbell,
    });
    hub.vaults.set_members(bases.members());
    let publisher = {
        let signer = hub.creds().signer()?;
        crate::base::Publisher { hub: hub.config.hub_id(), key: signer.key, chain: signer.chain }
    };
    for (b, entry) in &base_entries {
        let mut c = catalog.lock().map_err(|_| anyhow::anyhow!("the catalogue is unavailable"))?;
        match crate::catalog::publish_own(&mut c, entry, &publisher.key, &publisher.chain, now()) {
            Ok(Some(v)) => info!(base = %b, code = %entry.code, version = v, "base database catalogued"),
            Ok(None) => {}
            Err(e) => anyhow::bail!("bases.toml: base {b} cannot be catalogued as {}: {e}", entry.code),
        }
    }
    drop(publisher);
    let merger = tokio::spawn(background::merge_bases(hub.clone(), dir.to_owned(), bases, lease.clone()));
    let maintenance = tokio::spawn(background::maintain(hub.clone()));
    let producer = tokio::spawn(background::produce(
        exchange.clone(),
        hub.vaults.clone(),
        dir.to_owned(),
        supervision,
        lease.clone(),
    ));
    let auditor = tokio::spawn(background::keep_audit_log(audit.clone(), hub.vaults.clone(), lease.clone()));
    let parent = match (&hub.config.parent, &hub.config.parent_addr) {
        (Some(_), Some(_)) => Some(tokio::spawn(background::link_to_parent(
            parent::Link {
                paths: paths.clone(),
                config: hub.config.clone(),
                vaults: hub.vaults.clone(),
                catalog: catalog.clone(),
                exchange: exchange.clone(),
                audit: audit.clone(),
            },
            lease.clone(),
        ))),
        _ => None,
    };
    let api = tokio::spawn(api);
    let metrics = match &hub.config.metrics {
        Some(addr) => {
            let h = hub.clone();
            let (local, serve) = gdx_link::metrics::bind(addr, Arc::new(move || crate::metrics::render(&h.gauges())))
                .await
                .map_err(anyhow::Error::msg)?;
            if !local.ip().is_loopback() {
                warn!(%local, "metrics are served without authentication on a non-loopback address; keep it behind a firewall");
            }
            println!("gdx-hub {} serving metrics on http://{local}/metrics", hub.config.hub_id());
            Some(tokio::spawn(serve))
        }
        None => None,
    };
    let accept = {
        let endpoint = endpoint.clone();
        let hub = hub.clone();
        async move {
            while let Some(incoming) = endpoint.accept().await {
                let remote = incoming.remote_address();
                let Some((served, unproven)) = hub.gate.enter(remote.ip()) else {
                    crate::metrics::refused("too_many_connections");
                    warn!(%remote, "refused a connection: too many connections, or too many unproven from this address");
                    incoming.refuse();
                    continue;
                };
                let hub = hub.clone();
                // numbered here, in accept order, before tasks can overtake each other
                let order = hub.accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(
                    async move {
                        hub.serve(incoming, order, unproven).await;
                        drop(served);
                    }
                    .instrument(info_span!("conn", %remote)),
                );
            }
        }
    };
    tokio::select! {
        () = accept => {}
        () = shutdown => info!("shutting down"),
    }
    // the work the lease guards stops before the lease is let go: the parent link (its supervisor
    // aborts the link with it), then a production pass under way, waited for on the exchange's lock
    if let Some(p) = parent {
        p.abort();
    }
    maintenance.abort();
    merger.abort();
    producer.abort();
    auditor.abort();
    let x = exchange.clone();
    let _ = tokio::task::spawn_blocking(move || drop(x.lock())).await;
    // sign what was logged up to the last moment (the next start reads every vault anyway)
    let (log, vaults, leads) = (audit.clone(), hub.vaults.clone(), lease.held());
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(mut log) = log.lock() {
            let collected = log
                .collect_from_vaults(&vaults.take_written())
                .and_then(|_| background::collect_postgres(&mut log, &vaults, false));
            if collected.is_ok() && leads {
                let _ = log.checkpoint(now());
            }
        }
    })
    .await;
    // let go of the lease (joining its thread, off the runtime), and find whether another process runs on
    let config = hub.config.clone();
    let last = tokio::task::spawn_blocking(move || {
        drop(keeper);
        lease::alone(&config)
    })
    .await
    .unwrap_or(false);
    api.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    endpoint.close(quinn::VarInt::from_u32(close_code::SHUTDOWN), b"the hub is shutting down; the node will reconnect");
    if let Ok(store) = hub.store.lock()
        && last
    {
        let _ = store.reset_connections();
        // stopped: commands that need the hub stopped need not wait for the heartbeat to go stale
        let _ = store.heartbeat(0);
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    Ok(())
}

impl Hub {
    async fn serve(self: Arc<Self>, incoming: quinn::Incoming, order: u64, unproven: gate::Unproven) {
        // a peer may not stretch its handshake (QUIC's idle timer restarts with each of its packets)
        let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                crate::metrics::refused("handshake_failed");
                info!(error = %frames::describe_connection_error(&e), "handshake failed");
                return;
            }
            Err(_) => {
                crate::metrics::refused("handshake_timeout");
                info!(limit_s = HANDSHAKE_TIMEOUT.as_secs(), "handshake not finished in time");
                return;
            }
        };
        let alpn = conn
            .handshake_data()
            .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|h| h.protocol);
        let peer_cert = conn
            .peer_identity()
            .and_then(|p| p.downcast::<Vec<CertificateDer<'static>>>().ok())
            .and_then(|chain| chain.first().map(|c| c.to_vec()));
        let peer = peer_cert.as_deref().map(Identity::of);
        let protocol = alpn.as_deref().and_then(wire::alpn_version);
        match (alpn.as_deref(), protocol, peer) {
            // an enrolling peer stays unproven until it leaves
            (Some(wire::ALPN_ENROLL), _, _) => self.serve_enrolment(conn).await,
            (_, Some(protocol), Some(Ok(Identity::Node { node, role, serial, not_before, not_after }))) => {
                let span = info_span!("node", %node, %role, protocol);
                let peer = Peer { node, role, serial, not_before, not_after, cert: peer_cert.unwrap_or_default() };
                self.serve_node(conn, order, peer, unproven).instrument(span).await;
            }
            (_, Some(_), _) => {
                crate::metrics::refused("no_client_certificate");
                info!("refused a connection without a client certificate");
                conn.close(
                    quinn::VarInt::from_u32(close_code::REFUSED),
                    b"this hub requires a client certificate; enrol this node first with `gdx-agent enroll --token TOKEN`",
                );
            }
            _ => conn.close(quinn::VarInt::from_u32(close_code::REFUSED), b"unknown application protocol"),
        }
    }

    /// Records a node's connection, closing its older ones; false (and
    /// closed) when a connection the hub accepted later already serves it.
    fn register(&self, id: usize, live: Live) -> bool {
        let addr = live.conn.remote_address().to_string();
        let node = live.node.clone();
        if live.probe {
            if let Ok(mut map) = self.live.lock() {
                // at the limit the oldest goes: a one-shot command whose close was lost leaves its
                // connection until the idle timeout, and must not lock the node's next commands out
                let probes = map.iter().filter(|(_, l)| l.node == node && l.probe);
                if probes.clone().count() >= MAX_PROBES_PER_NODE
                    && let Some((&oldest, _)) = probes.min_by_key(|(_, l)| l.order)
                    && let Some(old) = map.remove(&oldest)
                {
                    old.conn.close(
                        quinn::VarInt::from_u32(close_code::REPLACED),
                        b"this node has too many one-shot connections open; the oldest is closed",
                    );
                }
                map.insert(id, live);
            }
            self.with_store(|s| s.touch_connected(std::slice::from_ref(&node), now()));
            return true;
        }
        let mut replaced = false;
        if let Ok(mut map) = self.live.lock() {
            let same = |l: &Live| l.node == node && !l.probe;
            if map.values().any(|l| same(l) && l.order > live.order) {
                live.conn.close(
                    quinn::VarInt::from_u32(close_code::REPLACED),
                    b"a newer connection from the same node replaced this one",
                );
                return false;
            }
            for old in map.values().filter(|l| same(l)) {
                old.conn.close(
                    quinn::VarInt::from_u32(close_code::REPLACED),
                    b"a newer connection from the same node replaced this one",
                );
                replaced = true;
            }
            map.retain(|_, l| !same(l));
            map.insert(id, live);
        }
        // the store is locked only once `live` is let go (the maintenance task takes them the other way round);
        // a node that restarted came back before its old connection timed out: the old one ends now
        self.with_store(|s| {
            if replaced {
                s.set_connected(&node, false, None, now())?;
            }
            s.set_connected(&node, true, Some(&addr), now())
        });
        true
    }

    fn unregister(&self, id: usize, node: &NodeId) {
        let (was_probe, still) = match self.live.lock() {
            Ok(mut map) => {
                let gone = map.remove(&id);
                (gone.is_some_and(|l| l.probe), map.values().any(|l| &l.node == node && !l.probe))
            }
            Err(_) => (false, false),
        };
        if !still && !was_probe {
            self.with_store(|s| s.set_connected(node, false, None, now()));
        }
    }

    fn with_store(&self, f: impl FnOnce(&Store) -> Result<(), crate::store::StoreError>) {
        match self.store.lock() {
            Ok(store) => {
                if let Err(e) = f(&store) {
                    warn!(error = %e, "hub database update failed");
                }
            }
            Err(_) => warn!("hub database lock poisoned"),
        }
    }
}

async fn accept_first_stream(conn: &quinn::Connection) -> Option<(quinn::SendStream, quinn::RecvStream)> {
    match tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(streams)) => Some(streams),
        Ok(Err(e)) => {
            info!(error = %frames::describe_connection_error(&e), "closed before its first message");
            None
        }
        Err(_) => {
            conn.close(quinn::VarInt::from_u32(close_code::REFUSED), b"no hello within 10 seconds");
            None
        }
    }
}

async fn refuse(conn: &quinn::Connection, send: &mut quinn::SendStream, code: RefusalCode, message: String) {
    let _ = frames::send(send, &Message::Refused(Refusal { code, message: message.clone() })).await;
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
    conn.close(quinn::VarInt::from_u32(close_code::REFUSED), message.as_bytes());
}

/// `read` within `limit`; a read that takes longer fails as stalled.
async fn within<T>(
    limit: Duration,
    read: impl std::future::Future<Output = Result<T, FrameError>>,
) -> Result<T, FrameError> {
    tokio::time::timeout(limit, read).await.unwrap_or(Err(FrameError::Stalled))
}

fn internal(message: &str) -> Message {
    Message::Refused(Refusal { code: RefusalCode::Internal, message: message.to_owned() })
}

/// A one-shot request (a lookup, a filing, a decision) the hub cannot
/// record for its full disk: nothing retries it, so the user is told when
/// to try again.
fn disk_full_now() -> Message {
    tracing::error!("the hub's disk is full: free space under its data folder");
    internal("the hub's disk is full, so it could not answer; try again once the hub's operator frees space")
}

/// The hub could not store `what` (a changeset, a report, a push): a
/// refusal its sender retries, which names a full disk as such, for the
/// sender and in the hub's log.
fn not_stored(what: &str, e: &(dyn std::error::Error + 'static)) -> Message {
    if gdx_files::disk_full(e) {
        tracing::error!(%what, "the hub's disk is full: free space under its data folder; senders retry until then");
        internal(&format!(
            "the hub's disk is full, so it could not store {what}; it will be retried once the hub's operator \
             frees space (nothing is lost)"
        ))
    } else {
        internal(&format!("the hub could not store {what} ({e}); it will be retried"))
    }
}
