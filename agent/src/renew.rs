//! Renewing this agent's certificate with no person involved: once two
//! thirds of its life have passed, `gdx-agent run` (at each connection) or
//! `gdx-agent renew` asks its hub over the live connection for a
//! certificate of a key made here (`gdx_link::renew`), then switches
//! `agent.key` and `agent.crt` together (`gdx_files::pair`: a kill at any
//! line leaves one whole pair). Changesets signed before the switch stay
//! valid: the hub takes any valid certificate of the same node.

use std::path::Path;
use std::time::Duration;

use crate::config::{AgentConfig, AgentPaths};
use crate::identity::Credentials;

/// Renews the certificate over `conn` if it is due; Some(new expiry) when renewed.
pub async fn if_due(conn: &quinn::Connection, paths: &AgentPaths, config: &AgentConfig) -> anyhow::Result<Option<i64>> {
    let creds = Credentials::load(paths)?;
    let Some(current) = creds.chain.first() else { anyhow::bail!("agent.crt holds no certificate; enrol again") };
    let pending = gdx_link::renew::pending_path(&paths.key());
    let renewed = gdx_link::renew::if_due(conn, &config.node, current, &creds.roots, &pending, crate::now(), "the hub")
        .await
        .map_err(anyhow::Error::msg)?;
    let Some(r) = renewed else { return Ok(None) };
    gdx_files::pair::switch(&paths.key(), &r.key.serialize_pem(), &paths.cert(), &r.chain_pem)?;
    let _ = std::fs::remove_file(&pending);
    Ok(Some(r.not_after))
}

/// Takes the roots the hub offers that a root this agent trusts vouches
/// for (`gdx_link::roots`), adding them to `ca.crt` (replaced whole);
/// returns how many.
pub async fn take_roots(conn: &quinn::Connection, paths: &AgentPaths) -> anyhow::Result<usize> {
    let creds = Credentials::load(paths)?;
    let trusted: Vec<Vec<u8>> = creds.roots.iter().map(|r| r.to_vec()).collect();
    let (_, taken) =
        gdx_link::roots::refresh(conn, &trusted, crate::now(), "the hub").await.map_err(anyhow::Error::msg)?;
    if !taken.is_empty() {
        let all: Vec<Vec<u8>> = trusted.into_iter().chain(taken.iter().cloned()).collect();
        gdx_files::replace(&paths.ca(), gdx_certs::trust::write(&all).as_bytes(), false)?;
    }
    Ok(taken.len())
}

/// `gdx-agent renew`: connects, renews if due, and leaves.
pub async fn now_if_due(dir: &Path, timeout: Duration) -> anyhow::Result<Option<i64>> {
    let paths = AgentPaths::new(dir);
    let config = AgentConfig::load(&paths)?;
    let creds = Credentials::load(&paths)?;
    let session = crate::uplink::connect(&config, &creds, timeout, true).await.map_err(|e| anyhow::anyhow!(e.0))?;
    // the roots first: a certificate renewed under a new root verifies only once it is trusted
    if let Err(e) = take_roots(&session.conn, &paths).await {
        eprintln!("the hub's roots could not be taken: {e:#}");
    }
    let renewed = if_due(&session.conn, &paths, &config).await;
    session.close(b"renewed").await;
    renewed
}

/// Settles a switch a kill interrupted.
pub fn finish_switch(paths: &AgentPaths) -> anyhow::Result<()> {
    gdx_files::pair::finish(&paths.key(), &paths.cert(), gdx_link::renew::pem_pair_matches)?;
    Ok(())
}
