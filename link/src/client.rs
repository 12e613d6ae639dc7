//! The dialling side of a connection, shared by agents and child hubs:
//! resolve, handshake within a deadline, the one-shot enrolment exchange,
//! and a close that returns once it has left. Errors are one sentence for
//! the user.

use std::net::SocketAddr;
use std::time::Duration;

use gdx_common::NodeId;
use gdx_common::wire::{self, EnrollRequest, Message, WireError};

use crate::frames::{self, FrameError, describe_connection_error};
use gdx_certs::tls;

/// The longest a one-shot exchange waits for its close to leave ([`close_sent`]).
pub const CLOSE_LIMIT: Duration = Duration::from_millis(50);

/// How long a dial waits on one of a hub's addresses before it tries the next as well.
pub const NEXT_ADDRESS_AFTER: Duration = Duration::from_millis(500);

/// Completes a QUIC handshake with `config` within `timeout` to the hub at
/// `addrs`: one `host:port`, or several separated by commas (the processes
/// of one hub on several machines). Several are tried in their order, each
/// next one [`NEXT_ADDRESS_AFTER`] after the one before or as soon as it
/// failed; the first handshake to complete wins and the others are dropped.
pub async fn dial(
    addrs: &str,
    config: quinn::ClientConfig,
    timeout: Duration,
) -> Result<(quinn::Endpoint, quinn::Connection), String> {
    let list = addresses(addrs);
    if list.len() <= 1 {
        return dial_one(list.first().copied().unwrap_or(addrs.trim()), config, timeout).await;
    }
    let mut dialling = tokio::task::JoinSet::new();
    let mut next = list.iter();
    let mut failed = Vec::new();
    loop {
        if dialling.is_empty()
            && let Some(a) = next.next()
        {
            dialling.spawn(dial_one_owned(a.to_string(), config.clone(), timeout));
        }
        let more = next.len() > 0;
        tokio::select! {
            done = dialling.join_next() => match done {
                Some(Ok(Ok(conn))) => return Ok(conn),
                Some(Ok(Err(e))) => failed.push(e),
                Some(Err(_)) => failed.push("a dial stopped".to_owned()),
                None if !more => break,
                None => {}
            },
            () = tokio::time::sleep(NEXT_ADDRESS_AFTER), if more => {
                if let Some(a) = next.next() {
                    dialling.spawn(dial_one_owned(a.to_string(), config.clone(), timeout));
                }
            }
        }
        if dialling.is_empty() && next.len() == 0 {
            break;
        }
    }
    Err(format!("no address of the hub answers: {}", failed.join("; ")))
}

/// The addresses in `addrs`, separated by commas, without blanks.
pub fn addresses(addrs: &str) -> Vec<&str> {
    addrs.split(',').map(str::trim).filter(|a| !a.is_empty()).collect()
}

async fn dial_one_owned(
    addr: String,
    config: quinn::ClientConfig,
    timeout: Duration,
) -> Result<(quinn::Endpoint, quinn::Connection), String> {
    dial_one(&addr, config, timeout).await
}

/// Resolves `addr` and completes a QUIC handshake with `config` within `timeout`.
async fn dial_one(
    addr: &str,
    config: quinn::ClientConfig,
    timeout: Duration,
) -> Result<(quinn::Endpoint, quinn::Connection), String> {
    let target: SocketAddr = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| format!("cannot resolve the hub address {addr} ({e}); check the address"))?
        .next()
        .ok_or_else(|| format!("the hub address {addr} resolves to nothing; check the address"))?;
    let bind: SocketAddr = if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| format!("cannot open a UDP socket ({e})"))?;
    endpoint.set_default_client_config(config);
    let connecting =
        endpoint.connect(target, tls::hub_server_name()).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let unreachable = || {
        format!(
            "cannot reach the hub at {addr}: no answer within {} s; check the address, that the hub is running, and that UDP port {} is open",
            timeout.as_secs(),
            target.port()
        )
    };
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(conn)) => Ok((endpoint, conn)),
        Ok(Err(quinn::ConnectionError::TimedOut)) | Err(_) => Err(unreachable()),
        Ok(Err(e)) => Err(describe_connection_error(&e)),
    }
}

/// Closes `conn` with `reason` and returns as soon as the close has left
/// (the connection sent a datagram after it), or after `limit`.
///
/// A one-shot command need not sit out QUIC's draining period (three probe
/// timeouts, about 90 ms even on loopback): the close needs no answer, and
/// draining only absorbs stray packets. It must only not exit before the
/// connection's task has sent the close, which takes microseconds on an
/// idle machine and more when the cores are busy. A close lost anyway costs
/// nothing: the hub drops the connection at its idle timeout.
pub async fn close_sent(conn: &quinn::Connection, reason: &[u8], limit: Duration) {
    if conn.close_reason().is_some() {
        // closed already (by the hub, or lost): nothing more will be sent
        return;
    }
    let before = conn.stats().udp_tx.datagrams;
    conn.close(quinn::VarInt::from_u32(0), reason);
    let sent = async {
        let mut polls = 0u32;
        while conn.stats().udp_tx.datagrams == before {
            // the connection's task runs on another worker: yield a while, then sleep
            polls += 1;
            if polls < 64 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    let _ = tokio::time::timeout(limit, sent).await;
}

/// Sends one enrolment request to the hub at `addr`, whose chain must hold
/// the CA pinned by `ca_fingerprint`, and returns its answer (`Enrolled` or
/// `Refused`). `what` names the enrolling program in version errors.
pub async fn enrol_exchange(
    addr: &str,
    hub: &NodeId,
    ca_fingerprint: [u8; 32],
    req: EnrollRequest,
    what: &str,
    timeout: Duration,
) -> Result<Message, String> {
    let config = tls::enrol_client_config(ca_fingerprint, hub).map_err(|e| e.to_string())?;
    let (endpoint, conn) = dial(addr, config, timeout).await?;
    let answer = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| describe_connection_error(&e))?;
        frames::send(&mut send, &Message::EnrollRequest(req)).await.map_err(|e| e.to_string())?;
        frames::recv(&mut recv).await.map_err(|e| match e {
            FrameError::Wire(WireError::Version { theirs, .. }) => format!(
                "hub {hub} speaks gdx protocol {theirs} and this {what} speaks gdx protocol {}; install the version that matches the hub",
                wire::versions_spoken()
            ),
            other => other.to_string(),
        })
    };
    let answer = tokio::time::timeout(timeout, answer).await;
    close_sent(&conn, b"enrolment done", CLOSE_LIMIT).await;
    drop(endpoint);
    match answer {
        Err(_) => Err(format!("the hub at {addr} did not answer the enrolment in time; try again")),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Some(m))) => Ok(m),
        Ok(Ok(None)) => Err(format!("the hub at {addr} closed the enrolment without an answer; try again")),
    }
}
