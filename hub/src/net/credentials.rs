//! The hub's certificates, keys and roots while it runs: loaded at the
//! start and again whenever one of their files changes (a renewal over the
//! parent link, a renewed intermediate CA, a root taken in a rollover), so
//! the listener, the CA that issues, the chains checked and the signer of
//! deliveries switch without a restart. Connections already open keep the
//! certificate they were made with; both stay valid.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use gdx_certs::pki::{self, pem_blocks};
use gdx_certs::tls;
use gdx_certs::trust;
use rustls::pki_types::CertificateDer;
use tracing::{info, warn};

use super::Hub;
use super::policy::Policy;
use crate::enrol::Authority;
use crate::exchange::HubSigner;
use crate::store::HubPaths;

/// What the hub holds of its identity and trust.
pub(super) struct Credentials {
    pub auth: Authority,
    /// Checks the certificate chains of changesets and entries relayed by child hubs.
    pub chains: tls::ChainVerifier,
    /// The chain the listener presents: hub.crt, then every root trusted
    /// here (with a rollover's cross-certificate, a node that trusts only
    /// the old root still verifies a certificate under the new one).
    pub chain: Vec<CertificateDer<'static>>,
    pub key: rcgen::KeyPair,
    /// Files as they were when read ([`Stamp`]).
    stamp: Stamp,
}

/// The files credentials are read from, with their size and time of change.
#[derive(PartialEq, Eq)]
struct Stamp(Vec<Option<(u64, SystemTime)>>);

fn files(paths: &HubPaths) -> [PathBuf; 7] {
    [
        paths.hub_cert(),
        paths.hub_key(),
        paths.ca_cert(),
        paths.ca_key(),
        paths.root_cert(),
        paths.ca_cross(),
        paths.ca_previous(),
    ]
}

impl Stamp {
    fn now(paths: &HubPaths) -> Self {
        Self(
            files(paths)
                .iter()
                .map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.len(), m.modified().ok()?))))
                .collect(),
        )
    }
}

/// The QUIC stateless-reset key, made at the first start (0600) and kept.
pub(super) fn reset_key(paths: &HubPaths) -> anyhow::Result<[u8; 32]> {
    let path = paths.quic_reset_key();
    if !path.exists() {
        // written beside and renamed: a kill leaves no file or a whole one
        let key: [u8; 32] = pki::random_bytes();
        gdx_files::replace(&path, gdx_common::token::hex(&key).as_bytes(), true)?;
    }
    let text = gdx_files::read_private(&path)?;
    gdx_common::audit::hash_of(text.trim()).ok_or_else(|| {
        anyhow::anyhow!("{} is damaged; remove it and start the hub again (a new one is made)", path.display())
    })
}

/// Settles a key and certificate switch a kill cut short (`gdx_files::pair`),
/// for this hub's own pair and its CA's; called before anything reads them.
pub(super) fn settle(paths: &HubPaths) -> anyhow::Result<()> {
    gdx_files::pair::finish(&paths.hub_key(), &paths.hub_cert(), gdx_link::renew::pem_pair_matches)?;
    gdx_files::pair::finish(&paths.ca_key(), &paths.ca_cert(), gdx_link::renew::pem_pair_matches)?;
    Ok(())
}

impl Credentials {
    /// Reads the files as they are; a switch cut short by a kill is settled
    /// once, at the start (`settle`), never while the hub runs, when a
    /// switch in progress is not to be undone.
    pub fn load(paths: &HubPaths) -> anyhow::Result<Self> {
        let stamp = Stamp::now(paths);
        let auth = Authority::load(paths)?;
        let roots = Self::roots_of(&auth);
        let text = std::fs::read_to_string(paths.hub_cert())
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", paths.hub_cert().display()))?;
        let mut chain: Vec<CertificateDer<'static>> =
            pem_blocks(&text, "CERTIFICATE").into_iter().map(CertificateDer::from).collect();
        if chain.is_empty() {
            anyhow::bail!("{} holds no certificate; restore it from backup", paths.hub_cert().display());
        }
        // the roots that issued this hub's certificate (with a rollover's
        // cross-certificate, a node that trusts only the old root still
        // builds a path; nothing more, so that nodes of protocol 1 see the
        // chain they know until the switch)
        let issuers: Vec<CertificateDer<'static>> =
            roots.iter().filter(|r| trust::issued_by(&chain[0], r) && !chain.contains(r)).cloned().collect();
        chain.extend(issuers);
        let key = pki::key_from_pem(&gdx_files::read_private(&paths.hub_key())?, "hub.key")?;
        Ok(Self { chains: tls::ChainVerifier::new(&roots)?, auth, chain, key, stamp })
    }

    pub fn roots_of(auth: &Authority) -> Vec<CertificateDer<'static>> {
        auth.roots.iter().cloned().map(CertificateDer::from).collect()
    }

    /// The intermediate CAs certificates issued here chain through: at a
    /// child hub the current one and those before it; none at the province.
    pub fn own_cas(&self) -> Vec<Vec<u8>> {
        match self.auth.intermediates.is_empty() {
            true => Vec::new(),
            false => self.auth.intermediates.iter().chain(&self.auth.previous).cloned().collect(),
        }
    }

    /// The QUIC server configuration for these credentials.
    pub fn server_config(&self, policy: Arc<Policy>) -> Result<quinn::ServerConfig, tls::TlsError> {
        tls::hub_server_config(self.chain.clone(), self.key.serialize_der(), &Self::roots_of(&self.auth), policy)
    }

    /// The signer of deliveries: this hub's key and chain.
    pub fn signer(&self) -> anyhow::Result<HubSigner> {
        let key = rcgen::KeyPair::try_from(self.key.serialize_der().as_slice())?;
        Ok(HubSigner { key, chain: self.chain.iter().map(|c| c.to_vec()).collect() })
    }
}

impl Hub {
    /// The credentials in force.
    pub(super) fn creds(&self) -> Arc<Credentials> {
        match self.creds.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the credentials again if one of their files changed, and
    /// switches the listener, the policy and the signer to them; a file
    /// that cannot be read is logged and the credentials in force serve on.
    pub(super) fn reload_if_changed(&self) {
        let paths = HubPaths::new(&self.dir);
        if Stamp::now(&paths) == self.creds().stamp {
            return;
        }
        let fresh = match Credentials::load(&paths) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "the hub's certificates changed but cannot be read; the ones in force serve on");
                return;
            }
        };
        self.policy.set_own_cas(fresh.own_cas());
        match fresh.server_config(self.policy.clone()) {
            Ok(config) => self.endpoint.set_server_config(Some(config)),
            Err(e) => {
                warn!(error = %e, "the hub's new certificates do not make a listener; the ones in force serve on");
                return;
            }
        }
        match (fresh.signer(), self.exchange.lock()) {
            (Ok(signer), Ok(mut x)) => x.set_signer(signer),
            _ => warn!("the exchange's signer could not be switched; deliveries are signed with the previous key"),
        }
        info!("the hub's certificates, keys or roots changed; the listener and the signer use them from now on");
        if let Ok(mut c) = self.creds.write() {
            *c = Arc::new(fresh);
        }
    }
}
