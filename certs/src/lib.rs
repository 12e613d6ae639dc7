//! GDX's public-key infrastructure and the one place that builds TLS and QUIC
//! configurations.
//!
//! - [`pki`]: keys, CAs, CSRs, issuing, and reading a node's identity back out
//!   of its certificate.
//! - [`tls`]: rustls/quinn configs for hubs and agents, with the verifiers
//!   that enforce chain, role, division and revocation at every handshake.
//! - [`tables`]: SQLite tables mirroring a resource, changed by changesets
//!   (the hub's vaults and the agent's received database).
//! - [`frames`]: sending and receiving [`gdx_common::wire`] frames on QUIC
//!   streams, and turning QUIC errors into sentences for users.
//!
//! Only the ring crypto provider is used; call [`install_crypto_provider`]
//! once at start-up.
#![forbid(unsafe_code)]

pub mod client;
pub mod files;
pub mod frames;
pub mod pki;
pub mod tables;
pub mod tls;

pub use pki::{Ca, Identity, PkiError};

/// Installs ring as the process-wide rustls crypto provider. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
