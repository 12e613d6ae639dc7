//! Keys, certificate authorities, CSRs and node identities.
//!
//! Every certificate GDX issues binds a node's identity in a URI subject
//! alternative name: `gdx://agent/632522/gongan` or `gdx://hub/632500/hub`;
//! CA certificates carry `gdx://ca/DIVISION`, the subtree they may issue for.
//! Hub certificates also carry the DNS name [`HUB_SERVER_NAME`] so that
//! standard server-name checks pass. The identity is taken from the token at
//! enrolment, never from the CSR, so a node cannot ask for another's name.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gdx_common::{DivisionCode, NodeId, Role};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer};
use time::OffsetDateTime;

/// DNS name in every hub certificate, used as the TLS server name.
pub const HUB_SERVER_NAME: &str = "hub.gdx";
/// Validity of a root or intermediate CA certificate.
pub const CA_VALIDITY_DAYS: i64 = 20 * 365;
/// Validity of a node certificate.
pub const NODE_VALIDITY_DAYS: i64 = 2 * 365;
const URI_PREFIX: &str = "gdx://";

/// Failures of PKI operations.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Key generation, signing or encoding failed inside rcgen.
    #[error("certificate operation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A PEM file does not hold what it should.
    #[error("{0} is not a valid PEM file; restore it from backup or enrol again")]
    Pem(String),
    /// The certificate signing request is malformed or its signature is bad.
    #[error("the certificate signing request is invalid: {0}")]
    Csr(String),
    /// A certificate does not parse as X.509.
    #[error("the certificate cannot be read: {0}")]
    Certificate(String),
    /// A signature does not match the data and the signer's certificate.
    #[error("the signature does not match the data and the signer's certificate")]
    Signature,
    /// A CA key that is not the key of the CA certificate.
    #[error("the CA key does not belong to the CA certificate (ca.crt); bring the key made with this hub's CA")]
    KeyMismatch,
    /// A certificate carries no GDX identity, or a malformed one.
    #[error("the certificate carries no GDX identity (expected a gdx:// URI name)")]
    NoIdentity,
}

/// What a certificate says about its holder.
#[derive(Clone, PartialEq, Eq)]
pub enum Identity {
    /// A node (agent or hub) certificate.
    Node { node: NodeId, role: Role, serial: String, not_before: i64, not_after: i64 },
    /// A CA certificate limited to a division subtree.
    Ca { division: DivisionCode, serial: String, not_after: i64 },
}

impl Identity {
    /// Reads the identity from a DER certificate.
    pub fn of(der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::Certificate(e.to_string()))?;
        let not_before = cert.validity().not_before.timestamp();
        let not_after = cert.validity().not_after.timestamp();
        let serial = gdx_common::token::hex(cert.raw_serial());
        let san = cert
            .subject_alternative_name()
            .map_err(|e| PkiError::Certificate(e.to_string()))?
            .ok_or(PkiError::NoIdentity)?;
        for name in &san.value.general_names {
            let x509_parser::extensions::GeneralName::URI(uri) = name else { continue };
            let Some(rest) = uri.strip_prefix(URI_PREFIX) else { continue };
            let (kind, id) = rest.split_once('/').ok_or(PkiError::NoIdentity)?;
            return match kind {
                "ca" => Ok(Identity::Ca {
                    division: DivisionCode::parse(id).map_err(|_| PkiError::NoIdentity)?,
                    serial,
                    not_after,
                }),
                role => Ok(Identity::Node {
                    node: NodeId::parse(id).map_err(|_| PkiError::NoIdentity)?,
                    role: role.parse().map_err(|_| PkiError::NoIdentity)?,
                    serial,
                    not_before,
                    not_after,
                }),
            };
        }
        Err(PkiError::NoIdentity)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Node { node, role, serial, .. } => write!(f, "{role} {node} (serial {serial})"),
            Identity::Ca { division, .. } => write!(f, "CA for {division}"),
        }
    }
}

/// A certificate authority: its certificate and signing key.
pub struct Ca {
    pub cert_der: CertificateDer<'static>,
    key: KeyPair,
    division: DivisionCode,
}

impl Ca {
    /// Creates a self-signed root CA for a province-level hub.
    pub fn create_root(division: DivisionCode, name: &str, now: i64) -> Result<Self, PkiError> {
        let key = new_key()?;
        let params = ca_params(division, name, now)?;
        let cert = params.self_signed(&key)?;
        Ok(Self { cert_der: cert.der().clone(), key, division })
    }

    /// Loads a CA from its PEM certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let cert_der = pem_to_der(cert_pem, "CERTIFICATE").ok_or_else(|| PkiError::Pem("the CA certificate".into()))?;
        let key = KeyPair::from_pem(key_pem).map_err(|_| PkiError::Pem("the CA key".into()))?;
        let division = match Identity::of(&cert_der)? {
            Identity::Ca { division, .. } => division,
            Identity::Node { .. } => return Err(PkiError::NoIdentity),
        };
        // a key brought in from elsewhere (the offline CA key) must be this certificate's
        let (_, cert) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|e| PkiError::Certificate(e.to_string()))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(PkiError::KeyMismatch);
        }
        Ok(Self { cert_der: CertificateDer::from(cert_der), key, division })
    }

    /// The division subtree this CA may issue for.
    pub fn division(&self) -> DivisionCode {
        self.division
    }

    pub fn cert_pem(&self) -> String {
        der_to_pem(&self.cert_der, "CERTIFICATE")
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// SHA-256 of the CA certificate, the value tokens pin.
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint(&self.cert_der)
    }

    /// Issues a node certificate for the public key in a CSR. The identity
    /// comes from the arguments (the token), not from the CSR's subject.
    pub fn issue_from_csr(
        &self,
        csr_der: &[u8],
        node: &NodeId,
        role: Role,
        not_before: i64,
        not_after: i64,
    ) -> Result<CertificateDer<'static>, PkiError> {
        let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
            .map_err(|e| PkiError::Csr(e.to_string()))?;
        let params = node_params(node, role, not_before, not_after)?;
        let cert = params.signed_by(&csr.public_key, &self.issuer()?)?;
        Ok(cert.der().clone())
    }

    /// Issues the intermediate CA of a joining child hub, for the public key
    /// in `csr_der`, limited to `division` (which must lie strictly below
    /// this CA's): it may issue only for nodes of its division and cannot
    /// create further CAs.
    pub fn issue_intermediate(
        &self,
        csr_der: &[u8],
        division: DivisionCode,
        name: &str,
        now: i64,
    ) -> Result<CertificateDer<'static>, PkiError> {
        if !self.division.strictly_contains(division) {
            return Err(PkiError::Csr(format!(
                "division {division} is not below this CA's division {}",
                self.division
            )));
        }
        let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
            .map_err(|e| PkiError::Csr(e.to_string()))?;
        // each intermediate has a name of its own, so that a renewed one never stands for the one it replaces
        let mut params = ca_params_named(division, &format!("GDX CA {division} {}", month(now)), name, now)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.use_authority_key_identifier_extension = true;
        Ok(params.signed_by(&csr.public_key, &self.issuer()?)?.der().clone())
    }

    /// Makes the root that succeeds this one, for a root rollover: a new key
    /// and a name of its own (`GDX CA 630000 2026-12`), self-signed, and its
    /// cross-certificate — the same name and key, issued by this root — so
    /// that a node trusting only this root verifies the new one's chains and
    /// takes it as a root of its own ([`crate::trust`]).
    pub fn next_root(&self, name: &str, now: i64) -> Result<(Ca, CertificateDer<'static>), PkiError> {
        let key = new_key()?;
        let cn = format!("GDX CA {} {}", self.division, month(now));
        let own = ca_params_named(self.division, &cn, name, now)?.self_signed(&key)?;
        let next = Ca { cert_der: own.der().clone(), key, division: self.division };
        let cross = self.cross_certify(&next)?;
        Ok((next, cross))
    }

    /// A cross-certificate of `other`, a root of the same division: its
    /// name, key and validity, issued by this CA (the new root's by the old
    /// one, or the old root's by the new one after a switch).
    pub fn cross_certify(&self, other: &Ca) -> Result<CertificateDer<'static>, PkiError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(&other.cert_der).map_err(|e| PkiError::Certificate(e.to_string()))?;
        let text = |oid| {
            cert.subject().iter_by_oid(oid).next().and_then(|a| a.as_str().ok()).map(str::to_owned).unwrap_or_default()
        };
        let (cn, org) = (
            text(&x509_parser::oid_registry::OID_X509_COMMON_NAME),
            text(&x509_parser::oid_registry::OID_X509_ORGANIZATION_NAME),
        );
        let mut params = ca_params_named(other.division, &cn, &org, 0)?;
        params.not_before = at(cert.validity().not_before.timestamp());
        params.not_after = at(cert.validity().not_after.timestamp());
        params.use_authority_key_identifier_extension = true;
        Ok(params.signed_by(&other.key, &self.issuer()?)?.der().clone())
    }

    /// Issues a node certificate for a key held here (the hub's own
    /// certificate, and test fixtures).
    pub fn issue_for_key(
        &self,
        key: &KeyPair,
        node: &NodeId,
        role: Role,
        not_before: i64,
        not_after: i64,
    ) -> Result<CertificateDer<'static>, PkiError> {
        let params = node_params(node, role, not_before, not_after)?;
        Ok(params.signed_by(key, &self.issuer()?)?.der().clone())
    }

    /// Issues the certificate of a hub's HTTPS API for `names` (host names
    /// and IP addresses that browsers and `curl` will use).
    pub fn issue_web(
        &self,
        key: &KeyPair,
        names: &[String],
        not_before: i64,
        not_after: i64,
    ) -> Result<CertificateDer<'static>, PkiError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names.first().cloned().unwrap_or_else(|| "gdx-hub".into()));
        params.distinguished_name = dn;
        for n in names {
            params.subject_alt_names.push(match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(n.as_str().try_into()?),
            });
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = at(not_before);
        params.not_after = at(not_after);
        params.serial_number = Some(random_serial());
        Ok(params.signed_by(key, &self.issuer()?)?.der().clone())
    }

    fn issuer(&self) -> Result<Issuer<'_, &KeyPair>, PkiError> {
        Ok(Issuer::from_ca_cert_der(&self.cert_der, &self.key)?)
    }
}

/// Generates a fresh ECDSA P-256 key.
pub fn new_key() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?)
}

/// The public key (SubjectPublicKeyInfo, DER) a certificate certifies.
pub fn cert_public_key(der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::Certificate(e.to_string()))?;
    Ok(cert.tbs_certificate.subject_pki.raw.to_vec())
}

/// Whether `key` is the key certificate `der` certifies.
pub fn key_matches(key: &KeyPair, der: &[u8]) -> bool {
    use rcgen::PublicKeyData;
    cert_public_key(der).is_ok_and(|spki| spki == key.subject_public_key_info())
}

/// Loads a key from PEM.
pub fn key_from_pem(pem: &str, what: &str) -> Result<KeyPair, PkiError> {
    KeyPair::from_pem(pem).map_err(|_| PkiError::Pem(what.to_owned()))
}

/// Makes a CSR for `key` with `common_name` in its subject (informational only).
pub fn make_ca_csr(key: &KeyPair, common_name: &str) -> Result<Vec<u8>, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    Ok(params.serialize_request(key)?.der().to_vec())
}

/// Makes a CSR for `key`, naming `node` in its subject (informational only).
pub fn make_csr(key: &KeyPair, node: &NodeId) -> Result<Vec<u8>, PkiError> {
    make_ca_csr(key, &node.to_string())
}

/// The public key a CSR asks to certify, after checking its signature.
pub fn csr_public_key(csr_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    use rcgen::PublicKeyData;
    let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
        .map_err(|e| PkiError::Csr(e.to_string()))?;
    Ok(csr.public_key.der_bytes().to_vec())
}

/// Signs `msg` with `key` (ECDSA P-256 SHA-256, ASN.1 DER signature).
pub fn sign(key: &KeyPair, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
    use rcgen::SigningKey;
    Ok(key.sign(msg)?)
}

/// Checks an ECDSA P-256 SHA-256 signature by the key in certificate `cert_der`.
pub fn verify_signature(cert_der: &[u8], msg: &[u8], signature: &[u8]) -> Result<(), PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|e| PkiError::Certificate(e.to_string()))?;
    let point = cert.public_key().subject_public_key.data.as_ref();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(msg, signature)
        .map_err(|_| PkiError::Signature)
}

/// True when the certificate is its own issuer (a root CA).
pub fn is_self_issued(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| c.issuer() == c.subject())
}

/// True for a root: self-issued, or a root's cross-certificate (a CA that
/// may issue CAs, which only a root can make: every intermediate GDX
/// issues is limited to path length 0).
pub fn is_root_ca(der: &[u8]) -> bool {
    is_self_issued(der)
        || x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| {
            c.basic_constraints()
                .ok()
                .flatten()
                .is_some_and(|b| b.value.ca && b.value.path_len_constraint.is_none_or(|n| n >= 1))
        })
}

/// SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// PEM-encodes DER bytes under `label`.
pub fn der_to_pem(der: &[u8], label: &str) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every PEM block labelled `label`, decoded, in order.
pub fn pem_blocks(pem: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let body: String = after[..stop].chars().filter(|c| !c.is_whitespace()).collect();
        match STANDARD.decode(body) {
            Ok(der) => out.push(der),
            Err(_) => return Vec::new(),
        }
        rest = &after[stop + end.len()..];
    }
    out
}

/// The first PEM block labelled `label`.
pub fn pem_to_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    pem_blocks(pem, label).into_iter().next()
}

fn ca_params(division: DivisionCode, name: &str, now: i64) -> Result<CertificateParams, PkiError> {
    ca_params_named(division, &format!("GDX CA {division}"), name, now)
}

/// `YYYY-MM` of a Unix time, for the names of CA certificates.
fn month(unix: i64) -> String {
    let t = at(unix);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

fn ca_params_named(
    division: DivisionCode,
    common_name: &str,
    name: &str,
    now: i64,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.subject_alt_names = vec![SanType::URI(format!("{URI_PREFIX}ca/{division}").try_into()?)];
    params.not_before = at(now - BACKDATE_SECS);
    params.not_after = at(now + CA_VALIDITY_DAYS * 86_400);
    params.serial_number = Some(random_serial());
    Ok(params)
}

/// How long before its issue a certificate is valid from, so that a
/// machine whose clock is behind the issuer's (by up to this much) accepts
/// a certificate made a moment ago.
pub const BACKDATE_SECS: i64 = 3600;

fn node_params(node: &NodeId, role: Role, not_before: i64, not_after: i64) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, node.to_string());
    dn.push(DnType::OrganizationalUnitName, role.as_str());
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::URI(format!("{URI_PREFIX}{role}/{node}").try_into()?)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if role == Role::Hub {
        params.subject_alt_names.push(SanType::DnsName(HUB_SERVER_NAME.try_into()?));
        params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    params.use_authority_key_identifier_extension = true;
    params.not_before = at(not_before);
    params.not_after = at(not_after);
    params.serial_number = Some(random_serial());
    Ok(params)
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn random_serial() -> SerialNumber {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // The system RNG does not fail on supported platforms; a zero serial
    // would still be unique enough to be caught by the node table's key.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// Random bytes from the system RNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes
}

/// SHA-256 of arbitrary bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    fingerprint(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn issue_and_read_back_identity() {
        let ca = Ca::create_root(DivisionCode::parse("630000").unwrap(), "青海省", NOW).unwrap();
        assert!(
            matches!(Identity::of(&ca.cert_der).unwrap(), Identity::Ca { division, .. } if division.to_string() == "630000")
        );
        let key = new_key().unwrap();
        let node = NodeId::parse("632522/gongan").unwrap();
        let csr = make_csr(&key, &node).unwrap();
        // the identity comes from the arguments, not the CSR subject
        let other = NodeId::parse("632522/minzheng").unwrap();
        let cert = ca.issue_from_csr(&csr, &other, Role::Agent, NOW, NOW + 100).unwrap();
        match Identity::of(&cert).unwrap() {
            Identity::Node { node, role, not_after, .. } => {
                assert_eq!(node, other);
                assert_eq!(role, Role::Agent);
                assert_eq!(not_after, NOW + 100);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ca_round_trips_through_pem() {
        let ca = Ca::create_root(DivisionCode::parse("630000").unwrap(), "青海省", NOW).unwrap();
        let again = Ca::from_pem(&ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(again.cert_der, ca.cert_der);
        assert_eq!(again.fingerprint(), ca.fingerprint());
        assert!(Ca::from_pem("junk", &ca.key_pem()).is_err());
        let other = Ca::create_root(DivisionCode::parse("630000").unwrap(), "青海省", NOW).unwrap();
        assert!(matches!(Ca::from_pem(&ca.cert_pem(), &other.key_pem()), Err(PkiError::KeyMismatch)));
    }

    #[test]
    fn bad_csr_is_an_error() {
        let ca = Ca::create_root(DivisionCode::parse("630000").unwrap(), "x", NOW).unwrap();
        let node = NodeId::parse("632522/gongan").unwrap();
        let key = new_key().unwrap();
        let mut csr = make_csr(&key, &node).unwrap();
        let last = csr.len() - 1;
        csr[last] ^= 1;
        assert!(matches!(ca.issue_from_csr(&csr, &node, Role::Agent, NOW, NOW + 1), Err(PkiError::Csr(_))));
        assert!(matches!(ca.issue_from_csr(b"nonsense", &node, Role::Agent, NOW, NOW + 1), Err(PkiError::Csr(_))));
    }

    #[test]
    fn signatures_verify_against_the_certificate() {
        let ca = Ca::create_root(DivisionCode::parse("630000").unwrap(), "x", NOW).unwrap();
        let key = new_key().unwrap();
        let cert = ca.issue_for_key(&key, &NodeId::parse("630000/a").unwrap(), Role::Agent, NOW, NOW + 9).unwrap();
        let sig = sign(&key, b"changeset").unwrap();
        assert!(verify_signature(&cert, b"changeset", &sig).is_ok());
        assert!(matches!(verify_signature(&cert, b"changesex", &sig), Err(PkiError::Signature)));
        let other = ca
            .issue_for_key(&new_key().unwrap(), &NodeId::parse("630000/b").unwrap(), Role::Agent, NOW, NOW + 9)
            .unwrap();
        assert!(verify_signature(&other, b"changeset", &sig).is_err());
    }

    #[test]
    fn pem_round_trip() {
        let pem = der_to_pem(&[1, 2, 3, 250], "X");
        assert_eq!(pem_to_der(&pem, "X").unwrap(), vec![1, 2, 3, 250]);
        assert!(pem_to_der("-----BEGIN X-----\n!!\n-----END X-----", "X").is_none());
    }
}
