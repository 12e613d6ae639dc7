//! `gdx-agent enroll`: make a key here, pin the hub's CA by the token's
//! fingerprint, send a CSR, and store the certificate.
//!
//! The private key never leaves this machine. Files are written in an order
//! that survives a kill at any point: the key first (kept and reused if the
//! enrolment is retried, so a hub that already answered returns the same
//! certificate), then the certificates, then `agent.toml` last as the mark
//! of a completed enrolment.

use std::path::Path;
use std::time::Duration;

use gdx_certs::Identity;
use gdx_certs::pki::{self, der_to_pem, fingerprint};
use gdx_common::token::{EnrolmentToken, TokenError};
use gdx_common::wire::{EnrollRequest, Message};
use gdx_common::{NodeId, Role};
use gdx_files::{sync_dir, write_new};

use crate::config::{AgentConfig, AgentPaths};
use crate::uplink::LinkError;

/// What a successful enrolment produced.
#[derive(Debug)]
pub struct Enrolment {
    pub node: NodeId,
    pub hub: NodeId,
    pub hub_name: String,
    pub hub_addr: String,
    pub not_after: i64,
}

/// Failures of enrolment, each one sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// The token text is not a token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// This data directory already holds an enrolled agent.
    #[error(
        "{dir} already holds an enrolled agent ({node}); nothing was changed. To enrol another node, use another --data directory"
    )]
    AlreadyEnrolled { dir: String, node: String },
    /// agent.toml is there but does not load: enrolled, with a mistake in it.
    #[error(
        "{dir} already holds an agent, whose agent.toml does not load ({reason}); nothing was changed and the token is unused. Correct agent.toml, or enrol into another --data directory"
    )]
    Unreadable { dir: String, reason: String },
    /// The token is for a hub, not an agent.
    #[error("this token enrols a hub ({0}), not an agent; use it with `gdx-hub init --join`")]
    NotAnAgentToken(String),
    /// The hub could not be reached or refused the handshake.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The hub refused the enrolment (token used, expired or unknown).
    #[error("{0}")]
    Refused(String),
    /// The hub's answer does not match the token.
    #[error("the hub's answer does not match the token ({0}); enrolment stopped and nothing was stored")]
    Mismatch(String),
    /// A local file could not be written.
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    /// Key generation failed.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
}

/// Enrols this machine as the node named in `token_text`.
pub async fn enroll(dir: &Path, token_text: &str, timeout: Duration) -> Result<Enrolment, EnrolError> {
    let token = EnrolmentToken::decode(token_text)?;
    let paths = AgentPaths::new(dir);
    match AgentConfig::load(&paths) {
        Ok(existing) => {
            return Err(EnrolError::AlreadyEnrolled {
                dir: dir.display().to_string(),
                node: existing.node.to_string(),
            });
        }
        Err(crate::config::ConfigError::Missing(_)) => {}
        // a typo, or its at-rest key unreadable: the certificate and CA beside it are kept as they are
        Err(e) => return Err(EnrolError::Unreadable { dir: dir.display().to_string(), reason: e.to_string() }),
    }
    if token.role != Role::Agent {
        return Err(EnrolError::NotAnAgentToken(token.node.to_string()));
    }
    let write_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| EnrolError::Write { path, source }
    };
    gdx_files::create_private_dir(dir).map_err(write_err(dir))?;
    // Reuse a key from an interrupted enrolment: the hub returns the same
    // certificate for the same token and key.
    let key = match gdx_files::read_private(&paths.key()) {
        Ok(pem) => pki::key_from_pem(&pem, "agent.key")?,
        Err(_) => {
            let key = pki::new_key()?;
            write_new(&paths.key(), key.serialize_pem().as_bytes(), true).map_err(write_err(&paths.key()))?;
            key
        }
    };
    let csr_der = pki::make_csr(&key, &token.node)?;

    let req = EnrollRequest { token_id: token.id, secret: token.secret, csr_der, ca_csr_der: None };
    let answer =
        gdx_link::client::enrol_exchange(&token.hub_addr, &token.hub, token.ca_fingerprint, req, "agent", timeout)
            .await
            .map_err(LinkError)?;
    let enrolled = match answer {
        Message::Enrolled(e) => e,
        Message::Refused(r) => return Err(EnrolError::Refused(r.message)),
        other => return Err(EnrolError::Mismatch(format!("unexpected answer {}", other.kind()))),
    };

    // Check the answer against what the token promised before storing it.
    if enrolled.hub != token.hub {
        return Err(EnrolError::Mismatch(format!(
            "the hub calls itself {}, the token names {}",
            enrolled.hub, token.hub
        )));
    }
    if fingerprint(&enrolled.root_der) != token.ca_fingerprint {
        return Err(EnrolError::Mismatch("the root CA differs from the pinned fingerprint".into()));
    }
    let leaf = enrolled.chain_der.first().ok_or_else(|| EnrolError::Mismatch("no certificate".into()))?;
    let not_after = match Identity::of(leaf) {
        Ok(Identity::Node { node, role: Role::Agent, not_after, .. }) if node == token.node => not_after,
        other => {
            return Err(EnrolError::Mismatch(format!("the certificate names {other:?}, not agent {}", token.node)));
        }
    };
    let chain_pem: String = enrolled.chain_der.iter().map(|c| der_to_pem(c, "CERTIFICATE")).collect();
    replace_file(&paths.cert(), chain_pem.as_bytes()).map_err(write_err(&paths.cert()))?;
    replace_file(&paths.ca(), der_to_pem(&enrolled.root_der, "CERTIFICATE").as_bytes())
        .map_err(write_err(&paths.ca()))?;
    let config = AgentConfig {
        node: token.node.clone(),
        hub: enrolled.hub.clone(),
        hub_addr: token.hub_addr.clone(),
        portal: None,
        received: "received.db".into(),
        at_rest_key: None,
        metrics: None,
        congestion: None,
        resources: Vec::new(),
        items: Vec::new(),
    };
    write_new(&paths.config(), config.to_commented_toml().as_bytes(), false).map_err(write_err(&paths.config()))?;
    sync_dir(dir).map_err(write_err(dir))?;
    Ok(Enrolment {
        node: token.node,
        hub: enrolled.hub,
        hub_name: enrolled.hub_name,
        hub_addr: token.hub_addr,
        not_after,
    })
}

/// Writes `path` atomically (temp file, sync, rename).
fn replace_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, data, false)?;
    std::fs::rename(&tmp, path)
}
