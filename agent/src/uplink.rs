//! The agent's link to its hub: dial and say hello. The daemon keeps the
//! link and reconnects with `gdx_link::Backoff`.
//!
//! [`dial`] resolves the address and completes the QUIC handshake within a
//! deadline; [`connect`] adds the versioned hello. The daemon keeps the
//! connection, with `gdx_link::Backoff` between attempts.

use std::time::{Duration, Instant};

use gdx_certs::tls;
use gdx_common::Role;
use gdx_common::wire::{Hello, Message, Welcome, WireError};
use gdx_link::frames::{self, FrameError, describe_connection_error};

use crate::config::AgentConfig;
use crate::identity::Credentials;

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

impl Session {
    /// Closes the connection with `reason` and returns once the close has
    /// left ([`gdx_link::client::close_sent`]).
    pub async fn close(self, reason: &[u8]) {
        gdx_link::client::close_sent(&self.conn, reason, gdx_link::client::CLOSE_LIMIT).await;
    }
}

/// Resolves `addr` and completes a QUIC handshake with `config` within `timeout`.
pub async fn dial(
    addr: &str,
    config: quinn::ClientConfig,
    timeout: Duration,
) -> Result<(quinn::Endpoint, quinn::Connection), LinkError> {
    gdx_link::client::dial(addr, config, timeout).await.map_err(LinkError)
}

/// Dials the hub and exchanges hello and welcome. A `probe` connection
/// (doctor) does not replace the daemon's connection at the hub.
pub async fn connect(
    config: &AgentConfig,
    creds: &Credentials,
    timeout: Duration,
    probe: bool,
) -> Result<Session, LinkError> {
    let tls =
        tls::node_client_config(Some((creds.chain.clone(), creds.key_der.clone())), &creds.roots, Some(&config.hub))
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
            Ok(other) => Err(LinkError(format!(
                "the hub answered the hello with {}",
                other.as_ref().map_or("nothing", Message::kind)
            ))),
            Err(FrameError::Wire(WireError::Version { theirs, .. })) => Err(LinkError(format!(
                "hub {} speaks gdx protocol {theirs} and this agent speaks gdx protocol {}; upgrade the older of the two",
                config.hub,
                gdx_common::wire::versions_spoken()
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
