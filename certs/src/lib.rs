//! GDX's public-key infrastructure and the one place that builds TLS and QUIC
//! configurations.
//!
//! - [`pki`]: keys, CAs, CSRs, issuing, and reading a node's identity back out
//!   of its certificate.
//! - [`trust`]: the roots a node trusts, and taking a new one in a rollover.
//! - [`tls`]: rustls/quinn configs for hubs and agents, with the verifiers
//!   that enforce chain, role, division and revocation at every handshake.
//!
//! Only the ring crypto provider is used; call [`install_crypto_provider`]
//! once at start-up.
#![forbid(unsafe_code)]

pub mod pki;
pub mod tls;
pub mod trust;

pub use pki::{Ca, Identity, PkiError};

/// Installs ring as the process-wide rustls crypto provider. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
