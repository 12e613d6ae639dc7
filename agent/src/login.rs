//! `gdx-agent login`: a one-time link to the hub's portal for this
//! department, its claim ([`gdx_common::login::Claim`]) signed with the
//! agent's key, which the hub checks against the certificate it issued.

use anyhow::Context;
use gdx_common::login::{Claim, LOGIN_VALIDITY, encode, signed_bytes};

use crate::config::{AgentConfig, AgentPaths};
use crate::identity::Credentials;

/// The portal's port when agent.toml names no portal.
const PORTAL_PORT: u16 = 8443;

/// The login URL, valid for ten minutes from `now`.
pub fn url(paths: &AgentPaths, portal: Option<&str>, now: i64) -> anyhow::Result<String> {
    let config = AgentConfig::load(paths)?;
    let creds = Credentials::load(paths)?;
    let key =
        rcgen::KeyPair::try_from(creds.key_der.as_slice()).context("agent.key holds no usable key; enrol again")?;
    let claim = Claim {
        node: config.node.clone(),
        hub: config.hub.clone(),
        nonce: gdx_common::token::hex(&gdx_certs::pki::random_bytes::<16>()),
        expires: now + LOGIN_VALIDITY,
    };
    let json = serde_json::to_vec(&claim)?;
    let signature = gdx_certs::pki::sign(&key, &signed_bytes(&json))?;
    let base = match portal.or(config.portal.as_deref()) {
        Some(p) => {
            if !p.starts_with("https://") {
                anyhow::bail!("the portal address {p:?} must start with https://; for example https://10.63.0.1:8443");
            }
            p.trim_end_matches('/').to_owned()
        }
        None => {
            // the first of the hub's addresses, when it has several
            let first = gdx_link::client::addresses(&config.hub_addr).first().copied().unwrap_or_default();
            let host = first.rsplit_once(':').map_or(first, |(h, _)| h);
            format!("https://{host}:{PORTAL_PORT}")
        }
    };
    Ok(format!("{base}/login?t={}", encode(&json, &signature)))
}
