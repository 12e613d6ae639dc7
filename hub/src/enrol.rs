//! Enrolment: the tokens an operator prints, and the service that turns a
//! token and a CSR into a certificate.
//!
//! A token is one-time and expiring, bound to a node id and a role. The hub
//! stores only the SHA-256 of its secret. Spending a token, recording the
//! node and recording the certificate happen in one transaction. If the
//! answer is lost on the way, the node may present the same token with the
//! same key again and receives the same certificate; any other key is told
//! the token was used.

use gdx_certs::Ca;
use gdx_certs::pki::{self, Identity};
use gdx_common::token::EnrolmentToken;
use gdx_common::units::format_time;
use gdx_common::wire::{EnrollRequest, Enrolled, Refusal, RefusalCode, Renewed};
use gdx_common::{DivisionLevel, NodeId, Role};

use crate::config::HubConfig;
use crate::store::HubPaths;
use crate::store::{Store, StoreError};

/// What a hub issues with: its CA (the root at the province, an
/// intermediate limited to its division at a prefecture), the certificates
/// to hand out after each issued one, and the root every node trusts.
pub struct Authority {
    /// The CA with its key; `None` while `ca.key` is kept offline (then
    /// requests wait for `gdx-hub issue --ca-key FILE`).
    pub ca: Option<Ca>,
    /// The CA's certificate (DER).
    pub ca_der: Vec<u8>,
    /// This hub's intermediate CA at a child hub, appended to every chain it issues.
    pub intermediates: Vec<Vec<u8>>,
    /// The root enrolment tokens pin: the one of `roots` that issued this
    /// hub's certificate, so that it is in the chain the listener presents.
    pub root_der: Vec<u8>,
    /// Every root this hub trusts, the current one first (more than one
    /// during a root rollover: `crate::rollover`).
    pub roots: Vec<Vec<u8>>,
    /// The CA certificates this hub issued with before (`ca-previous.crt`).
    pub previous: Vec<Vec<u8>>,
}

impl Authority {
    /// Loads `ca.crt`, `ca.key` and, at a child hub, `root.crt`.
    pub fn load(paths: &HubPaths) -> anyhow::Result<Self> {
        use anyhow::Context;
        let read = |p: std::path::PathBuf| {
            std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}; the hub's data directory is incomplete", p.display()))
        };
        let ca_pem = read(paths.ca_cert())?;
        let ca_der = pki::pem_to_der(&ca_pem, "CERTIFICATE")
            .with_context(|| format!("{} holds no certificate", paths.ca_cert().display()))?;
        let ca = match paths.ca_key().exists() {
            true => Some(Ca::from_pem(&ca_pem, &gdx_files::read_private(&paths.ca_key())?)?),
            false => None,
        };
        let roots = crate::rollover::trusted_roots(paths)?;
        // tokens pin a root in the chain the listener presents: the one that issued hub.crt
        let hub_cert = crate::rollover::read_optional(&paths.hub_cert())?.into_iter().next().unwrap_or_default();
        let Some(root_der) =
            roots.iter().find(|r| gdx_certs::trust::issued_by(&hub_cert, r)).or(roots.first()).cloned()
        else {
            anyhow::bail!("{} holds no certificate", paths.root_cert().display());
        };
        let intermediates = if paths.root_cert().exists() { vec![ca_der.clone()] } else { Vec::new() };
        let previous = crate::rollover::read_optional(&paths.ca_previous())?;
        Ok(Self { ca, ca_der, intermediates, root_der, roots, previous })
    }

    /// SHA-256 of the root certificate: what enrolment tokens pin.
    pub fn root_fingerprint(&self) -> [u8; 32] {
        pki::fingerprint(&self.root_der)
    }
}

/// Failures making a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The node is outside this hub's division.
    #[error("{node} is outside this hub's division {division} ({name}); enrol it at the hub of its own division")]
    OutsideDivision { node: String, division: String, name: String },
    /// The division is not a current one.
    #[error("division {0} is not a current division code in the GB/T 2260 table; check the code")]
    UnknownDivision(String),
    /// Role and id do not fit together.
    #[error("{0}")]
    RoleMismatch(String),
    /// The node belongs under a child hub of this hub.
    #[error("{node} belongs under the prefecture hub {child}/hub, which has joined this hub; make its token there")]
    BelowChild { node: String, child: String },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes and records a token for `node` with `role`, valid for `ttl_secs`.
pub fn make_token(
    store: &Store,
    config: &HubConfig,
    root_fingerprint: [u8; 32],
    node: &NodeId,
    role: Role,
    ttl_secs: i64,
    now: i64,
) -> Result<EnrolmentToken, TokenError> {
    if !node.division().is_current() {
        return Err(TokenError::UnknownDivision(node.division().to_string()));
    }
    let outside = || TokenError::OutsideDivision {
        node: node.to_string(),
        division: config.division.to_string(),
        name: config.division.name(),
    };
    match role {
        Role::Agent => {
            if !config.division.contains(node.division()) {
                return Err(outside());
            }
            if node.is_hub_id() {
                return Err(TokenError::RoleMismatch(format!(
                    "{node} is the name reserved for a hub; give the agent a department name such as {}/gongan, or use --role hub",
                    node.division()
                )));
            }
            if let Some(child) = store.child_hubs()?.into_iter().find(|d| d.contains(node.division())) {
                return Err(TokenError::BelowChild { node: node.to_string(), child: child.to_string() });
            }
        }
        Role::Hub => {
            if !config.division.strictly_contains(node.division()) {
                return Err(outside());
            }
            if !node.is_hub_id() || node.division().level() == DivisionLevel::County {
                return Err(TokenError::RoleMismatch(format!(
                    "a child hub must be named PREFECTURE/hub, such as 632500/hub, not {node}"
                )));
            }
        }
    }
    let token = EnrolmentToken {
        hub_addr: config.advertise.clone(),
        hub: config.hub_id(),
        ca_fingerprint: root_fingerprint,
        node: node.clone(),
        role,
        id: pki::random_bytes(),
        secret: pki::random_bytes(),
        expires_at: now + ttl_secs,
    };
    store.add_token(&token.id_hex(), &pki::sha256(&token.secret), node, role, now, token.expires_at)?;
    Ok(token)
}

/// Answers an enrolment request: the certificate chain, or a refusal.
pub fn enrol(
    store: &mut Store,
    config: &HubConfig,
    auth: &Authority,
    req: &EnrollRequest,
    now: i64,
) -> Result<Enrolled, Refusal> {
    let public_key = pki::csr_public_key(&req.csr_der)
        .map_err(|e| refusal(RefusalCode::BadRequest, format!("{e}; run `gdx-agent enroll` again")))?;
    let token_id = gdx_common::token::hex(&req.token_id);
    let (cert_der, ca_der) = store
        .transaction(|tx| {
            let unknown = || Ok(Err(refusal(
                RefusalCode::TokenUnknown,
                format!("hub {} does not know this enrolment token; check that it was printed by this hub's `gdx-hub token`", config.hub_id()),
            )));
            let Some(row) = Store::token(tx, &token_id)? else { return unknown() };
            if !constant_time_eq(&row.secret_sha256, &pki::sha256(&req.secret)) {
                return unknown();
            }
            if let Some(used_at) = row.used_at {
                if let (Some(key), Some(cert)) = (&row.spent_key, &row.issued_cert)
                    && key == &public_key
                {
                    return Ok(Ok((cert.clone(), row.issued_ca.clone())));
                }
                return Ok(Err(refusal(
                    RefusalCode::TokenUsed,
                    format!("this enrolment token was already used at {}; ask the hub operator for a new token", format_time(used_at)),
                )));
            }
            if now >= row.expires_at {
                return Ok(Err(refusal(
                    RefusalCode::TokenExpired,
                    format!("this enrolment token expired at {}; ask the hub operator for a new token", format_time(row.expires_at)),
                )));
            }
            let Some(ca) = &auth.ca else {
                // the CA key is offline: an agent's request waits for `gdx-hub issue`
                if row.role == Role::Hub.as_str() {
                    return Ok(Err(refusal(
                        RefusalCode::Queued,
                        format!("hub {} keeps its CA key offline, and a hub joins only while the key is in place; ask the operator to put ca.key back for the join", config.hub_id()),
                    )));
                }
                Store::queue_request(tx, &token_id, &req.csr_der)?;
                return Ok(Err(refusal(
                    RefusalCode::Queued,
                    format!("hub {} keeps its CA key offline, so this request waits: ask the operator to run `gdx-hub issue --ca-key FILE`, then run this same `gdx-agent enroll` again (agent.key is kept)", config.hub_id()),
                )));
            };
            issue(tx, ca, config, &token_id, &row, &req.csr_der, req.ca_csr_der.as_deref(), &public_key, now)
        })
        .map_err(|e| refusal(RefusalCode::Internal, format!("the hub could not record the enrolment ({e}); try again in a minute")))??;
    let mut chain_der = vec![cert_der];
    chain_der.extend(auth.intermediates.iter().cloned());
    Ok(Enrolled {
        chain_der,
        root_der: auth.root_der.clone(),
        hub: config.hub_id(),
        hub_name: config.name.clone(),
        ca_der,
    })
}

/// Renews the certificate `current` that `node` (`role`) connected with,
/// for the key of `csr_der` (a key the node made for it): the identity is
/// the connection's; the hub renews only past half the certificate's life
/// (`gdx_common::renewal`), and the old certificate stays valid until it
/// expires, so the node keeps working across the switch.
#[allow(clippy::too_many_arguments)]
pub fn renew(
    store: &Store,
    config: &HubConfig,
    auth: &Authority,
    node: &NodeId,
    role: Role,
    current: &[u8],
    csr_der: &[u8],
    now: i64,
) -> Result<Renewed, Refusal> {
    let Ok(Identity::Node { not_before, not_after, serial: old, .. }) = Identity::of(current) else {
        return Err(refusal(RefusalCode::BadRequest, "the connection's certificate is not a node certificate".into()));
    };
    gdx_common::renewal::may_renew(not_before, not_after, now).map_err(|m| refusal(RefusalCode::BadRequest, m))?;
    let Some(ca) = &auth.ca else {
        return Err(refusal(
            RefusalCode::Queued,
            format!(
                "hub {} keeps its CA key offline; the certificate is renewed once the operator puts ca.key back",
                config.hub_id()
            ),
        ));
    };
    let public_key = pki::csr_public_key(csr_der)
        .map_err(|e| refusal(RefusalCode::BadRequest, format!("{e}; the renewal is asked again later")))?;
    let internal = |e: StoreError| {
        refusal(RefusalCode::Internal, format!("the hub could not record the renewal ({e}); it is asked again later"))
    };
    // one renewal per certificate, never of a revoked one; an answer lost on the way is given again
    let again = match store.renewal_check(node, &old, &public_key).map_err(internal)? {
        crate::store::RenewalCheck::Refused(why) => return Err(refusal(RefusalCode::NotAuthorized, why)),
        crate::store::RenewalCheck::Again(cert) => Some(cert),
        crate::store::RenewalCheck::New => None,
    };
    if let Some(cert) = again {
        let mut chain_der = vec![cert];
        chain_der.extend(auth.intermediates.iter().cloned());
        return Ok(Renewed { chain_der });
    }
    let days = if role == Role::Hub { crate::init::HUB_CERT_DAYS } else { config.cert_days };
    let new_after = now + days * 86_400;
    let cert = ca
        .issue_from_csr(csr_der, node, role, now - pki::BACKDATE_SECS, new_after)
        .map_err(|e| refusal(RefusalCode::BadRequest, format!("{e}; the renewal is asked again later")))?;
    let Ok(Identity::Node { serial, .. }) = Identity::of(&cert) else {
        return Err(refusal(RefusalCode::Internal, "the hub issued an unreadable certificate".into()));
    };
    store.record_renewal(node, role.as_str(), &serial, new_after, &old, &public_key, &cert, now).map_err(internal)?;
    let mut chain_der = vec![cert.to_vec()];
    chain_der.extend(auth.intermediates.iter().cloned());
    Ok(Renewed { chain_der })
}

/// A certificate issued (DER), with the intermediate CA of a joining hub.
type Issued = (Vec<u8>, Option<Vec<u8>>);
/// A waiting request's node, and whether it was issued or why not.
pub type IssuedFor = (String, Result<(), String>);

/// Issues the certificate (and, for a joining hub, the intermediate CA)
/// that token `token_id` (`row`) asks for, for the key of `csr_der`, and
/// records it, in `tx`.
#[allow(clippy::too_many_arguments)]
fn issue(
    tx: &crate::store::db::Tx<'_>,
    ca: &Ca,
    config: &HubConfig,
    token_id: &str,
    row: &crate::store::TokenRow,
    csr_der: &[u8],
    ca_csr_der: Option<&[u8]>,
    public_key: &[u8],
    now: i64,
) -> Result<Result<Issued, Refusal>, StoreError> {
    let (Ok(node), Ok(role)) = (NodeId::parse(&row.node), row.role.parse::<Role>()) else {
        return Ok(Err(refusal(
            RefusalCode::Internal,
            "the hub's token record is damaged; ask the hub operator for a new token".into(),
        )));
    };
    // a child hub's certificate lives as long as a root hub's own
    let days = if role == Role::Hub { crate::init::HUB_CERT_DAYS } else { config.cert_days };
    let not_after = now + days * 86_400;
    let cert = match ca.issue_from_csr(csr_der, &node, role, now - pki::BACKDATE_SECS, not_after) {
        Ok(c) => c,
        Err(e) => return Ok(Err(refusal(RefusalCode::BadRequest, format!("{e}; run `gdx-agent enroll` again")))),
    };
    let serial = match Identity::of(&cert) {
        Ok(Identity::Node { serial, .. }) => serial,
        _ => return Ok(Err(refusal(RefusalCode::Internal, "the hub issued an unreadable certificate".into()))),
    };
    // A joining hub also gets the intermediate CA of its division.
    let ca_der = match (role, ca_csr_der) {
        (Role::Hub, Some(csr)) => match ca.issue_intermediate(csr, node.division(), &node.division().name(), now) {
            Ok(c) => Some(c.to_vec()),
            Err(e) => {
                return Ok(Err(refusal(RefusalCode::BadRequest, format!("{e}; run `gdx-hub init --join` again"))));
            }
        },
        (Role::Hub, None) => {
            return Ok(Err(refusal(
                RefusalCode::BadRequest,
                "this token enrols a hub; use it with `gdx-hub init --join`, not `gdx-agent enroll`".into(),
            )));
        }
        (Role::Agent, _) => None,
    };
    Store::record_enrolment(tx, token_id, public_key, &cert, ca_der.as_deref(), &node, role, &serial, not_after, now)?;
    Ok(Ok((cert.to_vec(), ca_der)))
}

/// `gdx-hub issue`: issues, with `ca` (its key brought in for the purpose),
/// every request that waited while the key was offline; returns the nodes
/// issued for, or why one could not be.
pub fn issue_queued(store: &mut Store, config: &HubConfig, ca: &Ca, now: i64) -> Result<Vec<IssuedFor>, StoreError> {
    let mut done = Vec::new();
    for (token_id, csr) in store.queued_requests()? {
        let outcome = store.transaction(|tx| {
            let Some(row) = Store::token(tx, &token_id)? else { return Ok((String::new(), Ok(()))) };
            let public_key = match pki::csr_public_key(&csr) {
                Ok(k) => k,
                Err(e) => return Ok((row.node.clone(), Err(e.to_string()))),
            };
            let issued = issue(tx, ca, config, &token_id, &row, &csr, None, &public_key, now)?;
            Ok((row.node.clone(), issued.map(|_| ()).map_err(|r| r.message)))
        })?;
        done.push(outcome);
    }
    Ok(done)
}

fn refusal(code: RefusalCode, message: String) -> Refusal {
    Refusal { code, message }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdx_common::DivisionCode;

    const NOW: i64 = 1_800_000_000;

    fn setup() -> (tempfile::TempDir, Store, HubConfig, Authority) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_file(&dir.path().join("hub.db")).unwrap();
        let division = DivisionCode::parse("632500").unwrap();
        let config = HubConfig {
            division,
            name: "海南州".into(),
            listen: "127.0.0.1:7443".into(),
            advertise: "127.0.0.1:7443".into(),
            http: "127.0.0.1:8443".into(),
            cert_days: 10,
            parent: None,
            parent_addr: None,
            lookups_per_minute: crate::config::DEFAULT_LOOKUPS_PER_MINUTE,
            at_rest_key: None,
            metrics: None,
            congestion: None,
            store: None,
        };
        let ca = Ca::create_root(division, "海南州", NOW).unwrap();
        (dir, store, config, root_authority(ca))
    }

    /// What a province hub issues with: its root, trusted alone.
    fn root_authority(ca: Ca) -> Authority {
        let root_der = ca.cert_der.to_vec();
        Authority {
            ca: Some(ca),
            ca_der: root_der.clone(),
            intermediates: vec![],
            roots: vec![root_der.clone()],
            root_der,
            previous: vec![],
        }
    }

    fn county_token(store: &Store, config: &HubConfig, ca: &Authority) -> EnrolmentToken {
        let node = NodeId::parse("632522/gongan").unwrap();
        make_token(store, config, ca.root_fingerprint(), &node, Role::Agent, 60, NOW).unwrap()
    }

    fn request(token: &EnrolmentToken, key: &rcgen::KeyPair) -> EnrollRequest {
        EnrollRequest {
            token_id: token.id,
            secret: token.secret,
            csr_der: pki::make_csr(key, &token.node).unwrap(),
            ca_csr_der: None,
        }
    }

    #[test]
    fn tokens_respect_division_and_role() {
        let (_d, store, config, ca) = setup();
        let ok =
            |n: &str, r| make_token(&store, &config, ca.root_fingerprint(), &NodeId::parse(n).unwrap(), r, 60, NOW);
        assert!(ok("632522/gongan", Role::Agent).is_ok());
        assert!(ok("632500/gongan", Role::Agent).is_ok());
        assert!(
            ok("630102/gongan", Role::Agent).unwrap_err().to_string().contains("outside this hub's division 632500")
        );
        assert!(ok("632599/gongan", Role::Agent).unwrap_err().to_string().contains("not a current division"));
        assert!(ok("632522/hub", Role::Agent).is_err());
        assert!(ok("632500/hub", Role::Hub).is_err(), "a hub cannot enrol its own division as a child");
        assert!(ok("632522/hub", Role::Hub).is_err(), "no county hubs");
    }

    /// With the CA key offline, an agent's request waits; `gdx-hub issue`
    /// with the key issues it, and the same request then gets it.
    #[test]
    fn with_the_key_offline_requests_wait_for_the_operator() {
        let (_d, mut store, config, mut auth) = setup();
        let ca = auth.ca.take().unwrap();
        let token = county_token(&store, &config, &auth);
        let key = pki::new_key().unwrap();
        let waits = enrol(&mut store, &config, &auth, &request(&token, &key), NOW).unwrap_err();
        assert_eq!(waits.code, RefusalCode::Queued);
        assert!(waits.message.contains("keeps its CA key offline") && waits.message.contains("gdx-hub issue"));
        let done = issue_queued(&mut store, &config, &ca, NOW + 60).unwrap();
        assert_eq!(done, [("632522/gongan".to_owned(), Ok(()))]);
        assert!(issue_queued(&mut store, &config, &ca, NOW + 61).unwrap().is_empty(), "issued once");
        let got = enrol(&mut store, &config, &auth, &request(&token, &key), NOW + 120).unwrap();
        assert!(matches!(Identity::of(&got.chain_der[0]), Ok(Identity::Node { node, .. }) if node == token.node));
        // another key cannot take the certificate issued for the first
        let other = enrol(&mut store, &config, &auth, &request(&token, &pki::new_key().unwrap()), NOW + 130);
        assert_eq!(other.unwrap_err().code, RefusalCode::TokenUsed);
    }

    #[test]
    fn token_is_one_time_and_idempotent_for_the_same_key() {
        let (_d, mut store, config, ca) = setup();
        let token = county_token(&store, &config, &ca);
        let key = pki::new_key().unwrap();
        let first = enrol(&mut store, &config, &ca, &request(&token, &key), NOW).unwrap();
        let again = enrol(&mut store, &config, &ca, &request(&token, &key), NOW + 1).unwrap();
        assert_eq!(first.chain_der, again.chain_der);
        let other = pki::new_key().unwrap();
        let e = enrol(&mut store, &config, &ca, &request(&token, &other), NOW + 2).unwrap_err();
        assert_eq!(e.code, RefusalCode::TokenUsed);
        assert!(e.message.contains("already used"), "{}", e.message);
        match Identity::of(&first.chain_der[0]).unwrap() {
            Identity::Node { node, role, not_after, .. } => {
                assert_eq!(node.to_string(), "632522/gongan");
                assert_eq!(role, Role::Agent);
                assert_eq!(not_after, NOW + 10 * 86_400);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expired_unknown_and_wrong_secret_are_refused() {
        let (_d, mut store, config, ca) = setup();
        let token = county_token(&store, &config, &ca);
        let key = pki::new_key().unwrap();
        let e = enrol(&mut store, &config, &ca, &request(&token, &key), NOW + 60).unwrap_err();
        assert_eq!(e.code, RefusalCode::TokenExpired);
        let mut wrong = request(&token, &key);
        wrong.secret[0] ^= 1;
        assert_eq!(enrol(&mut store, &config, &ca, &wrong, NOW).unwrap_err().code, RefusalCode::TokenUnknown);
        let mut unknown = request(&token, &key);
        unknown.token_id[0] ^= 1;
        assert_eq!(enrol(&mut store, &config, &ca, &unknown, NOW).unwrap_err().code, RefusalCode::TokenUnknown);
        let mut bad_csr = request(&token, &key);
        bad_csr.csr_der.truncate(10);
        assert_eq!(enrol(&mut store, &config, &ca, &bad_csr, NOW).unwrap_err().code, RefusalCode::BadRequest);
        // the refusals did not spend the token
        assert!(enrol(&mut store, &config, &ca, &request(&token, &key), NOW + 1).is_ok());
    }

    #[test]
    fn a_child_hub_gets_an_intermediate_ca_for_its_own_division() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_file(&dir.path().join("hub.db")).unwrap();
        let division = DivisionCode::parse("630000").unwrap();
        let (_d, _s, mut config, _) = setup();
        config.division = division;
        let auth = root_authority(Ca::create_root(division, "青海省", NOW).unwrap());
        let child = NodeId::parse("632500/hub").unwrap();
        let token = make_token(&store, &config, auth.root_fingerprint(), &child, Role::Hub, 60, NOW).unwrap();
        let (key, ca_key) = (pki::new_key().unwrap(), pki::new_key().unwrap());
        let mut req = request(&token, &key);
        req.ca_csr_der = Some(pki::make_ca_csr(&ca_key, "GDX CA 632500").unwrap());
        let enrolled = enrol(&mut store, &config, &auth, &req, NOW).unwrap();
        match Identity::of(enrolled.ca_der.as_deref().unwrap()).unwrap() {
            Identity::Ca { division, .. } => assert_eq!(division.to_string(), "632500"),
            other => panic!("{other:?}"),
        }
        // the same token and key get the same certificates again
        let again = enrol(&mut store, &config, &auth, &req, NOW + 1).unwrap();
        assert_eq!((&again.chain_der, &again.ca_der), (&enrolled.chain_der, &enrolled.ca_der));
        // a hub token used without a CA request is refused with the right command
        let token = make_token(&store, &config, auth.root_fingerprint(), &child, Role::Hub, 60, NOW).unwrap();
        let e = enrol(&mut store, &config, &auth, &request(&token, &key), NOW).unwrap_err();
        assert!(e.message.contains("gdx-hub init --join"), "{}", e.message);

        // the intermediate is renewed past half its life, once per key, for that child only
        let current = again.ca_der.clone().unwrap();
        let year = 365 * 86_400;
        let renew = |key: &rcgen::KeyPair, role: Role, at: i64| {
            let req = gdx_common::wire::RenewCaRequest {
                csr_der: pki::make_ca_csr(key, "GDX CA 632500").unwrap(),
                current_der: current.clone(),
            };
            crate::rollover::renew_intermediate(&store, &config, &auth, &child, role, &req, at)
        };
        let new_key = pki::new_key().unwrap();
        assert!(!crate::rollover::intermediate_due(&current, &auth.ca_der, NOW + year));
        assert!(crate::rollover::intermediate_due(&current, &auth.ca_der, NOW + 14 * year));
        assert!(renew(&new_key, Role::Hub, NOW + year).unwrap_err().message.contains("half"));
        assert_eq!(renew(&new_key, Role::Agent, NOW + 11 * year).unwrap_err().code, RefusalCode::NotAuthorized);
        let renewed = renew(&new_key, Role::Hub, NOW + 11 * year).unwrap().chain_der.remove(0);
        assert!(gdx_certs::trust::issued_by(&renewed, &auth.ca_der) && pki::key_matches(&new_key, &renewed));
        assert_eq!(renew(&new_key, Role::Hub, NOW + 11 * year).unwrap().chain_der, vec![renewed]);
        assert_eq!(
            renew(&pki::new_key().unwrap(), Role::Hub, NOW + 11 * year).unwrap_err().code,
            RefusalCode::NotAuthorized
        );
        // under another root (after a rollover) it is due whatever its age
        let (next, _) = auth.ca.as_ref().unwrap().next_root("青海省", NOW).unwrap();
        assert!(crate::rollover::intermediate_due(&current, &next.cert_der, NOW + 1));
    }
}
