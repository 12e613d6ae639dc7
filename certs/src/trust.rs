//! The roots a node trusts, and how a new one joins them in a root
//! rollover.
//!
//! A node's trust file (`ca.crt` at an agent, `root.crt` at a hub) holds
//! one or more root certificates, PEM. A root is known by its name and key
//! (what TLS anchors on), so a cross-certificate — a new root's name and
//! key, issued by the old root ([`crate::pki::Ca::next_root`]) — stands for
//! the new root itself. A node takes a certificate its hub offers as a new
//! root only when it is a CA of the same division as a root it already
//! trusts and that root issued it: a hub can pass on what the province's
//! root signed, never add a root of its own.

use x509_parser::prelude::*;

use crate::pki::{self, Identity};

/// Most roots a trust file or an offer may hold.
pub const MAX_ROOTS: usize = 16;

/// Whether two certificates name the same root: the same subject and key.
pub fn same_anchor(a: &[u8], b: &[u8]) -> bool {
    match (X509Certificate::from_der(a), X509Certificate::from_der(b)) {
        (Ok((_, a)), Ok((_, b))) => {
            a.subject().as_raw() == b.subject().as_raw() && a.public_key().raw == b.public_key().raw
        }
        _ => false,
    }
}

/// Whether `issuer` issued `cert`: `cert` names it as issuer and its
/// signature verifies with `issuer`'s key.
pub fn issued_by(cert: &[u8], issuer: &[u8]) -> bool {
    let (Ok((_, c)), Ok((_, i))) = (X509Certificate::from_der(cert), X509Certificate::from_der(issuer)) else {
        return false;
    };
    c.issuer().as_raw() == i.subject().as_raw()
        && pki::verify_signature(issuer, c.tbs_certificate.as_ref(), &c.signature_value.data).is_ok()
}

/// A certificate's validity, Unix seconds: (not before, not after).
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, c)| (c.validity().not_before.timestamp(), c.validity().not_after.timestamp()))
}

/// A certificate's subject, as text (`CN=GDX CA 630000 2026-12, O=…`).
pub fn subject(der: &[u8]) -> String {
    X509Certificate::from_der(der).map(|(_, c)| c.subject().to_string()).unwrap_or_default()
}

/// The division a root certificate is the CA of.
fn ca_division(der: &[u8]) -> Option<gdx_common::DivisionCode> {
    match Identity::of(der) {
        Ok(Identity::Ca { division, .. }) => Some(division),
        _ => None,
    }
}

/// Of the certificates `offered`, those to trust besides `trusted`, in the
/// order found: a CA certificate of a trusted root's division, valid at
/// `now`, issued by a trusted root (or by one taken before it, so a node
/// that missed a rollover catches up through the chain of
/// cross-certificates), and not already trusted under the same name and key.
pub fn accept(trusted: &[Vec<u8>], offered: &[Vec<u8>], now: i64) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = trusted.to_vec();
    let mut taken = Vec::new();
    loop {
        let before = taken.len();
        for cert in offered.iter().take(MAX_ROOTS) {
            if all.iter().any(|t| same_anchor(t, cert)) {
                continue;
            }
            let Some(division) = ca_division(cert) else { continue };
            let valid = validity(cert).is_some_and(|(from, to)| from <= now && now <= to);
            let vouched = all.iter().any(|t| ca_division(t) == Some(division) && issued_by(cert, t));
            if valid && vouched {
                all.push(cert.clone());
                taken.push(cert.clone());
            }
        }
        if taken.len() == before {
            return taken;
        }
    }
}

/// The PEM certificates of a trust file, DER.
pub fn read(pem: &str) -> Vec<Vec<u8>> {
    pki::pem_blocks(pem, "CERTIFICATE").into_iter().take(MAX_ROOTS).collect()
}

/// A trust file holding `roots`.
pub fn write(roots: &[Vec<u8>]) -> String {
    roots.iter().map(|r| pki::der_to_pem(r, "CERTIFICATE")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::Ca;
    use gdx_common::DivisionCode;

    const NOW: i64 = 1_800_000_000;

    fn province() -> Ca {
        Ca::create_root(DivisionCode::parse("630000").unwrap(), "青海省", NOW).unwrap()
    }

    #[test]
    fn a_cross_certificate_of_the_trusted_root_is_taken_once() {
        let old = province();
        let (new, cross) = old.next_root("青海省", NOW).unwrap();
        assert!(same_anchor(&cross, &new.cert_der), "the cross-certificate stands for the new root");
        assert!(!same_anchor(&cross, &old.cert_der));
        assert!(issued_by(&cross, &old.cert_der) && !issued_by(&cross, &new.cert_der));
        let trusted = vec![old.cert_der.to_vec()];
        assert_eq!(accept(&trusted, &[cross.to_vec(), old.cert_der.to_vec()], NOW), vec![cross.to_vec()]);
        // the new root's own certificate is not vouched for by the old root; once the
        // cross-certificate is trusted it is the same root and adds nothing
        assert!(accept(&trusted, &[new.cert_der.to_vec()], NOW).is_empty());
        let both = vec![old.cert_der.to_vec(), cross.to_vec()];
        assert!(accept(&both, &[cross.to_vec(), new.cert_der.to_vec()], NOW).is_empty());
        // after the switch the new root certifies the old one: a node that trusts only the new root takes it
        let back = new.cross_certify(&old).unwrap();
        assert!(same_anchor(&back, &old.cert_der) && issued_by(&back, &new.cert_der));
        assert_eq!(accept(&[new.cert_der.to_vec()], &[back.to_vec()], NOW), vec![back.to_vec()]);
        // a node two rollovers behind catches up through both cross-certificates, in any order
        let (_, cross2) = new.next_root("青海省", NOW + 1).unwrap();
        assert_eq!(accept(&trusted, &[cross2.to_vec(), cross.to_vec()], NOW + 1).len(), 2);
    }

    #[test]
    fn a_root_no_trusted_root_issued_is_refused() {
        let old = province();
        let stranger = province();
        let (_, cross) = stranger.next_root("青海省", NOW).unwrap();
        assert!(accept(&[old.cert_der.to_vec()], &[cross.to_vec(), stranger.cert_der.to_vec()], NOW).is_empty());
        // an intermediate the root issued is a CA of another division: not a root
        let key = pki::new_key().unwrap();
        let csr = pki::make_ca_csr(&key, "GDX CA 632500").unwrap();
        let intermediate = old.issue_intermediate(&csr, DivisionCode::parse("632500").unwrap(), "海南州", NOW).unwrap();
        assert!(accept(&[old.cert_der.to_vec()], &[intermediate.to_vec()], NOW).is_empty());
        // nor a cross-certificate out of its validity
        let (_, cross) = old.next_root("青海省", NOW).unwrap();
        assert!(accept(&[old.cert_der.to_vec()], &[cross.to_vec()], NOW - 7200).is_empty());
        assert!(accept(&[old.cert_der.to_vec()], &[b"junk".to_vec()], NOW).is_empty());
    }
}
