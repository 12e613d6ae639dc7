//! The hub's data directory: the one owner of its layout ([`HubPaths`]:
//! nobody else spells a file name) and of the databases that are not a
//! capability's own: `hub.db` ([`Store`]: tokens, nodes, certificates, the
//! portal's logins and sessions, agents' quality reports, what child hubs
//! observed of their departments) and
//! the departments' vault files ([`vault`]), or their schemas on PostgreSQL
//! ([`pg`], when hub.toml's `store` says so). The catalogue, the exchange
//! and the audit log keep their own databases, at the paths named here.

use std::path::{Path, PathBuf};

pub mod db;
pub mod format;
pub mod group_sync;
mod nodes_db;
mod observations;
pub mod outbox;
pub mod pg;
mod quality;
mod renewals;
mod sessions;
pub mod vault;

pub use nodes_db::*;
pub use quality::Quality;
pub use renewals::RenewalCheck;
pub use sessions::{LoginRefused, Role, Session};

/// Where a hub keeps its files.
#[derive(Clone, Debug)]
pub struct HubPaths {
    pub dir: PathBuf,
}

impl HubPaths {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("hub.toml")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn hub_cert(&self) -> PathBuf {
        self.dir.join("hub.crt")
    }
    pub fn hub_key(&self) -> PathBuf {
        self.dir.join("hub.key")
    }
    pub fn db(&self) -> PathBuf {
        self.dir.join("hub.db")
    }
    /// The province's root certificate, kept by a child hub (a root hub's
    /// root is its own `ca.crt`); during a rollover, the roots
    /// (`gdx_certs::trust`).
    pub fn root_cert(&self) -> PathBuf {
        self.dir.join("root.crt")
    }
    /// The CA certificates this hub issued with before (the old root at the
    /// province after a rollover, old intermediates at a prefecture).
    pub fn ca_previous(&self) -> PathBuf {
        self.dir.join("ca-previous.crt")
    }
    /// At the province during a rollover: the new root's cross-certificates.
    pub fn ca_cross(&self) -> PathBuf {
        self.dir.join("ca-cross.crt")
    }
    /// At the province during a rollover: the new root, prepared.
    pub fn ca_next_cert(&self) -> PathBuf {
        self.dir.join("ca-next.crt")
    }
    pub fn ca_next_key(&self) -> PathBuf {
        self.dir.join("ca-next.key")
    }
    /// The QUIC stateless-reset key (32 random bytes, hex), made at the
    /// first start and kept, so a restarted hub resets its peers' old
    /// connections (`gdx_certs::tls::hub_endpoint_config`).
    pub fn quic_reset_key(&self) -> PathBuf {
        self.dir.join("quic-reset.key")
    }
    /// The HTTPS API's certificate and key.
    pub fn https_cert(&self) -> PathBuf {
        self.dir.join("https.crt")
    }
    pub fn https_key(&self) -> PathBuf {
        self.dir.join("https.key")
    }
    pub fn catalog_db(&self) -> PathBuf {
        self.dir.join("catalog.db")
    }
    pub fn exchange_db(&self) -> PathBuf {
        self.dir.join("exchange.db")
    }
    pub fn audit_db(&self) -> PathBuf {
        self.dir.join("audit.db")
    }
    pub fn audit_key(&self) -> PathBuf {
        self.dir.join("audit.key")
    }
    /// The public half of `audit.key`, as SubjectPublicKeyInfo PEM.
    pub fn audit_pub(&self) -> PathBuf {
        self.dir.join("audit.pub")
    }
    /// The folder of the departments' vault files.
    pub fn vaults(&self) -> PathBuf {
        self.dir.join("vaults")
    }
    /// The folder of the base databases' files (`crate::base`).
    pub fn bases(&self) -> PathBuf {
        self.dir.join("bases")
    }
    /// The 监管 rules the operator edits: the registration resource, the
    /// matters of 双告知, the dishonest lists and the measures table.
    pub fn supervision_toml(&self) -> PathBuf {
        self.dir.join("supervision.toml")
    }
    /// Every file `init` creates, the config last.
    pub fn init_files(&self) -> [PathBuf; 6] {
        [self.ca_key(), self.ca_cert(), self.hub_key(), self.hub_cert(), self.db(), self.config()]
    }
}
