//! Asking for a renewed certificate over a live connection, the same way
//! for agents and child hubs (`gdx_common::renewal`): once two thirds of
//! the certificate's life have passed, a new key is made here, the hub
//! above certifies it, and the answer is checked — this node, this key, a
//! chain to the root trusted here — before the caller switches files
//! (`gdx_files::pair`).

use std::path::Path;
use std::time::Duration;

use gdx_certs::pki::{self, Identity};
use gdx_certs::tls;
use gdx_common::NodeId;
use gdx_common::wire::{Message, RenewRequest};
use rcgen::KeyPair;
use rustls::pki_types::CertificateDer;

/// A renewed identity: the new key, its chain (PEM, the node's certificate
/// first) and when it ends.
pub struct Renewed {
    pub key: KeyPair,
    pub chain_pem: String,
    pub not_after: i64,
}

/// Renews `current` (this node's certificate, DER) over `conn` if it is due
/// at `now`, for the key kept in `pending` ([`pending_key`]); the caller
/// removes `pending` once it has switched to the answer.
pub async fn if_due(
    conn: &quinn::Connection,
    node: &NodeId,
    current: &[u8],
    roots: &[CertificateDer<'static>],
    pending: &Path,
    now: i64,
    peer: &str,
) -> Result<Option<Renewed>, String> {
    let Ok(Identity::Node { not_before, not_after, .. }) = Identity::of(current) else {
        return Err("this node's certificate is not a node certificate; enrol again".into());
    };
    if !gdx_common::renewal::due(not_before, not_after, now) {
        // what a renewal finished before a kill left behind
        let _ = std::fs::remove_file(pending);
        return Ok(None);
    }
    if crate::frames::protocol(conn) < gdx_common::wire::OBSERVATIONS_AND_RENEWAL {
        return Err(format!(
            "{peer} speaks gdx protocol {}, which cannot renew certificates; this node renews once {peer} is upgraded",
            crate::frames::protocol(conn)
        ));
    }
    let key = pending_key(pending)?;
    let csr_der = pki::make_csr(&key, node).map_err(|e| e.to_string())?;
    let answer =
        crate::frames::ask(conn, &Message::Renew(RenewRequest { csr_der }), Duration::from_secs(60), peer).await?;
    let Message::Renewed(renewed) = answer else {
        return Err(format!("{peer} answered the renewal with {}", answer.kind()));
    };
    let chain = renewed.chain_der;
    let verified = tls::ChainVerifier::new(roots)
        .map_err(|e| e.to_string())?
        .verify(&chain, now)
        .map_err(|e| format!("the renewed certificate does not verify: {e}"))?;
    match verified {
        Identity::Node { node: n, not_after, .. } if &n == node && pki::key_matches(&key, &chain[0]) => {
            let chain_pem = chain.iter().map(|c| pki::der_to_pem(c, "CERTIFICATE")).collect();
            Ok(Some(Renewed { key, chain_pem, not_after }))
        }
        _ => Err(format!("{peer} renewed another node's certificate or another key; the old certificate is kept")),
    }
}

/// The key a renewal asks to certify: made once and kept in `pending`
/// (0600, synced) until the switch, so that a renewal whose answer was lost
/// (a kill, a cut link) is asked again for the same key, and the hub, which
/// renews a certificate once, answers with the same certificate.
pub fn pending_key(pending: &Path) -> Result<KeyPair, String> {
    if let Ok(pem) = std::fs::read_to_string(pending) {
        match pki::key_from_pem(&pem, "pending key") {
            Ok(key) => return Ok(key),
            // half written when a kill came: made again
            Err(_) => std::fs::remove_file(pending).map_err(|e| format!("cannot remove {}: {e}", pending.display()))?,
        }
    }
    let key = pki::new_key().map_err(|e| e.to_string())?;
    gdx_files::write_new(pending, key.serialize_pem().as_bytes(), true)
        .map_err(|e| format!("cannot write {}: {e}", pending.display()))?;
    Ok(key)
}

/// Where a renewal keeps the key it asks for, beside `key_path`.
pub fn pending_path(key_path: &Path) -> std::path::PathBuf {
    key_path.with_extension("key.pending")
}

/// Whether the PEM key is the one the PEM certificate (its first) certifies.
pub fn pem_pair_matches(key_pem: &str, cert_pem: &str) -> bool {
    match (pki::key_from_pem(key_pem, "key"), pki::pem_blocks(cert_pem, "CERTIFICATE").first()) {
        (Ok(key), Some(cert)) => pki::key_matches(&key, cert),
        _ => false,
    }
}
