//! The agent's link to its hub: dial, say hello, stay connected, and
//! reconnect with exponential backoff and jitter when the link drops.
//!
//! [`dial`] resolves the address and completes the QUIC handshake within a
//! deadline; [`connect`] adds the versioned hello. [`run`] keeps exactly one
//! connection and records every change of state in `state.db` for `status`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use gdx_certs::frames::{self, FrameError, describe_connection_error};
use gdx_certs::pki::{self, pem_blocks};
use gdx_certs::tls;
use gdx_common::Role;
use gdx_common::wire::{Hello, Message, Welcome, WireError};
use rustls::pki_types::CertificateDer;
use tracing::{info, warn};

use crate::config::{AgentConfig, AgentPaths};
use crate::now;
use crate::state::State;

/// First reconnect delay.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A connection that lasted this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Deadline for a handshake plus hello.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a connection attempt failed, in one sentence for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

/// An established, welcomed connection to the hub.
pub struct Session {
    pub endpoint: quinn::Endpoint,
    pub conn: quinn::Connection,
    pub control: (quinn::SendStream, quinn::RecvStream),
    pub welcome: Welcome,
}

/// Resolves `addr` and completes a QUIC handshake with `config` within `timeout`.
pub async fn dial(
    addr: &str,
    config: quinn::ClientConfig,
    timeout: Duration,
) -> Result<(quinn::Endpoint, quinn::Connection), LinkError> {
    gdx_certs::client::dial(addr, config, timeout).await.map_err(LinkError)
}

/// The node's TLS identity: certificate chain and key, and the root it trusts.
pub struct Credentials {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
    pub root: CertificateDer<'static>,
}

impl Credentials {
    /// Loads `agent.crt`, `agent.key` and `ca.crt`.
    pub fn load(paths: &AgentPaths) -> anyhow::Result<Self> {
        let read = |p: std::path::PathBuf| {
            std::fs::read_to_string(&p).with_context(|| {
                format!("cannot read {}; enrol again with `gdx-agent enroll --token TOKEN`", p.display())
            })
        };
        let chain: Vec<CertificateDer<'static>> =
            pem_blocks(&read(paths.cert())?, "CERTIFICATE").into_iter().map(CertificateDer::from).collect();
        let root = pem_blocks(&read(paths.ca())?, "CERTIFICATE").into_iter().next().map(CertificateDer::from);
        let (false, Some(root)) = (chain.is_empty(), root) else {
            anyhow::bail!("agent.crt or ca.crt in {} holds no certificate; enrol again", paths.dir.display());
        };
        let key = pki::key_from_pem(&read(paths.key())?, "agent.key")?;
        Ok(Self { chain, key_der: key.serialize_der(), root })
    }
}

/// Dials the hub and exchanges hello and welcome. A `probe` connection
/// (doctor) does not replace the daemon's connection at the hub.
pub async fn connect(
    config: &AgentConfig,
    creds: &Credentials,
    timeout: Duration,
    probe: bool,
) -> Result<Session, LinkError> {
    let tls = tls::node_client_config(Some((creds.chain.clone(), creds.key_der.clone())), creds.root.clone())
        .map_err(|e| LinkError(format!("{e}; enrol again")))?;
    let started = Instant::now();
    let (endpoint, conn) = dial(&config.hub_addr, tls, timeout).await?;
    let hello = Message::Hello(Hello {
        node: config.node.clone(),
        role: Role::Agent,
        software: concat!("gdx-agent ", env!("CARGO_PKG_VERSION")).to_owned(),
        probe,
    });
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| LinkError(describe_connection_error(&e)))?;
        frames::send(&mut send, &hello).await.map_err(|e| LinkError(e.to_string()))?;
        match frames::recv(&mut recv).await {
            Ok(Some(Message::Welcome(w))) => Ok(((send, recv), w)),
            Ok(Some(Message::Refused(r))) => Err(LinkError(r.message)),
            Ok(other) => Err(LinkError(format!("the hub answered the hello with {other:?}"))),
            Err(FrameError::Wire(WireError::Version { theirs, ours })) => Err(LinkError(format!(
                "hub {} speaks gdx protocol {theirs} and this agent speaks gdx protocol {ours}; upgrade the older of the two",
                config.hub
            ))),
            Err(FrameError::Closed(reason)) => Err(LinkError(reason)),
            Err(e) => Err(LinkError(format!("the hub's answer could not be read: {e}"))),
        }
    };
    let remaining = timeout.saturating_sub(started.elapsed());
    match tokio::time::timeout(remaining, exchange).await {
        Ok(Ok((control, welcome))) => Ok(Session { endpoint, conn, control, welcome }),
        Ok(Err(e)) => {
            // The hub may have closed with a more precise reason than the stream saw.
            Err(conn.close_reason().map(|r| LinkError(describe_connection_error(&r))).unwrap_or(e))
        }
        Err(_) => Err(LinkError(format!("the hub at {} did not answer the hello in time", config.hub_addr))),
    }
}

/// Keeps one connection to the hub until `shutdown` completes.
pub async fn run(dir: &Path, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let paths = AgentPaths::new(dir);
    let config = AgentConfig::load(&paths)?;
    let creds = Credentials::load(&paths)?;
    let state = State::open(&paths.state()).with_context(|| format!("cannot open {}", paths.state().display()))?;
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
    tokio::select! {
        () = keep_connected(&paths, &config, &creds, &state, &wake) => Ok(()),
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
    let mut backoff = BACKOFF_MIN;
    loop {
        let _ = state.set_link("connecting", now(), None, None);
        let error = match connect(config, creds, CONNECT_TIMEOUT, false).await {
            Ok(session) => {
                let since = Instant::now();
                let _ = state.set_link("connected", now(), None, None);
                let _ = state.set_hub_software(&session.welcome.software);
                let skew_ms = session.welcome.now_ms - now() * 1000;
                if skew_ms.abs() > 60_000 {
                    warn!(skew_s = skew_ms / 1000, "this machine's clock differs from the hub's by more than a minute");
                }
                info!(hub = %session.welcome.hub, "connected");
                println!("connected to {} ({})", session.welcome.hub, session.welcome.hub_name);
                let reason = tokio::select! {
                    r = wait_closed(&session, state) => r,
                    r = crate::syncer::upload_loop(&session.conn, state_path, wake) => {
                        session.conn.close(quinn::VarInt::from_u32(0), b"upload failed; reconnecting");
                        r
                    }
                    r = crate::exchange::receive_loop(&session.conn, paths, config, creds) => r,
                };
                if since.elapsed() >= STABLE_AFTER {
                    backoff = BACKOFF_MIN;
                }
                reason
            }
            Err(e) => e.0,
        };
        let delay = jitter(backoff);
        warn!(error = %error, retry_in_s = delay.as_secs_f32(), "not connected to the hub");
        let _ = state.set_link("disconnected", now(), Some(&error), Some(now() + delay.as_secs() as i64));
        let wake = Instant::now() + delay;
        while Instant::now() < wake {
            tokio::time::sleep(wake.saturating_duration_since(Instant::now()).min(Duration::from_secs(2))).await;
            let _ = state.heartbeat(now());
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn wait_closed(session: &Session, state: &State) -> String {
    let mut beat = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            reason = session.conn.closed() => return describe_connection_error(&reason),
            _ = beat.tick() => { let _ = state.heartbeat(now()); }
        }
    }
}

/// `base` ± 20 %, so that many agents do not reconnect in lockstep.
fn jitter(base: Duration) -> Duration {
    let r = u16::from_le_bytes(pki::random_bytes::<2>());
    let factor = 0.8 + 0.4 * (f64::from(r) / f64::from(u16::MAX));
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..200 {
            let d = jitter(Duration::from_secs(10));
            assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(12), "{d:?}");
        }
    }
}
