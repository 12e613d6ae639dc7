//! This node's identity, as enrolment left it: its certificate chain and
//! key and the root it trusts ([`Credentials`], for TLS), and the same key
//! as a [`Signer`] of changesets and catalogue entries.

use anyhow::Context;
use gdx_certs::pki::{self, pem_blocks};
use gdx_common::NodeId;
use rustls::pki_types::CertificateDer;

use crate::config::{AgentConfig, AgentPaths};

/// The node's TLS identity: certificate chain and key, and the roots it
/// trusts (one, or more during a root rollover: `gdx_certs::trust`).
pub struct Credentials {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
    pub roots: Vec<CertificateDer<'static>>,
}

impl Credentials {
    /// Loads `agent.crt`, `agent.key` and `ca.crt`.
    pub fn load(paths: &AgentPaths) -> anyhow::Result<Self> {
        crate::renew::finish_switch(paths)?;
        let read = |p: std::path::PathBuf| {
            std::fs::read_to_string(&p).with_context(|| {
                format!("cannot read {}; enrol again with `gdx-agent enroll --token TOKEN`", p.display())
            })
        };
        let chain: Vec<CertificateDer<'static>> =
            pem_blocks(&read(paths.cert())?, "CERTIFICATE").into_iter().map(CertificateDer::from).collect();
        let roots: Vec<CertificateDer<'static>> =
            gdx_certs::trust::read(&read(paths.ca())?).into_iter().map(CertificateDer::from).collect();
        if chain.is_empty() || roots.is_empty() {
            anyhow::bail!("agent.crt or ca.crt in {} holds no certificate; enrol again", paths.dir.display());
        }
        let key = pki::key_from_pem(&gdx_files::read_private(&paths.key())?, "agent.key")?;
        Ok(Self { chain, key_der: key.serialize_der(), roots })
    }
}

/// The signer: this node, its key and its certificate chain.
pub struct Signer {
    pub node: NodeId,
    pub key: rcgen::KeyPair,
    pub chain: Vec<Vec<u8>>,
}

/// This node's signer, from the credentials already loaded.
pub fn signer(config: &AgentConfig, creds: &Credentials) -> anyhow::Result<Signer> {
    let key =
        rcgen::KeyPair::try_from(creds.key_der.as_slice()).context("agent.key holds no usable key; enrol again")?;
    Ok(Signer { node: config.node.clone(), key, chain: creds.chain.iter().map(|c| c.to_vec()).collect() })
}
