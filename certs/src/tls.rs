//! rustls and quinn configurations for hubs and agents.
//!
//! Every handshake is mutual TLS 1.3 over QUIC, ring provider, no 0-RTT and
//! no session resumption (a resumed session would skip the certificate
//! checks, and with them revocation). The hub's client verifier checks the
//! chain to its roots, then hands the peer's [`Identity`] to a
//! [`PeerPolicy`] that decides role, division and revocation. Refusals carry
//! a sentence for the user inside the TLS error, which quinn sends to the
//! peer as the close reason; `gdx_link::frames::describe_connection_error`
//! takes it back out.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use gdx_common::token::fingerprint_text;
use gdx_common::wire::{ALPN_ENROLL, ALPNS};
use gdx_common::{NodeId, Role};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore, SignatureScheme};

use crate::pki::{HUB_SERVER_NAME, Identity, fingerprint};

/// How long a silent connection stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often an idle connection is pinged to keep NAT bindings alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Marks a refusal sentence inside TLS error texts.
pub const REFUSAL_OPEN: &str = "<<gdx: ";
pub const REFUSAL_CLOSE: &str = " >>";

/// Failures building a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the key, chain or roots.
    #[error("the TLS configuration is invalid: {0}")]
    Rustls(#[from] rustls::Error),
    /// The root certificate cannot be used as a trust anchor.
    #[error("the CA certificate cannot be used as a trust anchor: {0}")]
    Root(String),
    /// quinn refused the rustls configuration.
    #[error("the QUIC configuration is invalid: {0}")]
    Quic(String),
}

/// Decides whether a peer whose chain is valid may connect.
pub trait PeerPolicy: Send + Sync + fmt::Debug {
    /// `Err` holds one sentence for the refused peer.
    /// `intermediates` are the CA certificates the peer presented with its own (DER).
    fn admit(&self, peer: &Identity, intermediates: &[&[u8]]) -> Result<(), String>;
}

/// The QUIC server configuration of a hub: `chain` is the hub's certificate
/// followed by its CA certificates, `roots` the CAs whose subtrees may
/// connect. Client certificates are optional at the TLS level so that
/// [`ALPN_ENROLL`] works without one; the hub refuses certificate-less
/// connections on [`ALPNS`] right after the handshake.
pub fn hub_server_config(
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
    roots: &[CertificateDer<'static>],
    policy: Arc<dyn PeerPolicy>,
) -> Result<quinn::ServerConfig, TlsError> {
    let provider = provider();
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(roots)?), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Root(e.to_string()))?;
    let verifier = Arc::new(NodeClientVerifier { inner, policy });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private_key(key_der))?;
    tls.alpn_protocols = ALPNS.iter().chain([&ALPN_ENROLL]).map(|a| a.to_vec()).collect();
    tls.max_early_data_size = 0;
    tls.session_storage = Arc::new(NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = transport();
    // a node's passes use a handful of streams at once; what a peer may
    // hold unread is bounded per stream and per connection
    transport
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_STREAMS_PER_CONNECTION))
        .receive_window(quinn::VarInt::from_u32(CONNECTION_RECEIVE_WINDOW));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// A hub's QUIC endpoint configuration, with the stateless-reset key
/// `reset_key` (the hub's own, kept across restarts) instead of one made at
/// random, and random 16-byte connection ids that any later instance
/// accepts as possibly its own: restarted on the same address, the hub
/// answers a packet of a connection it no longer knows with a reset its
/// peer recognises, so agents and child hubs learn it at their next packet
/// (a keep-alive within 5 s) instead of waiting out the 20 s idle timeout.
pub fn hub_endpoint_config(reset_key: &[u8; 32]) -> quinn::EndpointConfig {
    let mut config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset_key)));
    config.cid_generator(|| Box::new(quinn_proto::RandomConnectionIdGenerator::new(16)));
    config
}

/// The TLS configuration of a hub's HTTPS API: `chain` is the web
/// certificate followed by the CA, ALPN `http/1.1`, no client certificate
/// (the API serves catalogue metadata, which travels freely).
pub fn https_server_config(
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private_key(key_der))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// A TLS client configuration for a hub's HTTPS API that trusts `root`
/// (the hub's CA), for tools and tests.
pub fn https_client_config(root: CertificateDer<'static>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(&[root])?)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// The QUIC client configuration of a node with a certificate (`identity`
/// is its chain and key) or, for tests and diagnostics, without one.
/// The server must chain to one of `roots` and hold a hub certificate.
/// The server must also be hub `hub` (the one the node enrolled with);
/// `None` accepts any hub, for tests and diagnostics only.
pub fn node_client_config(
    identity: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
    roots: &[CertificateDer<'static>],
    hub: Option<&NodeId>,
) -> Result<quinn::ClientConfig, TlsError> {
    node_client_config_speaking(identity, roots, hub, &ALPNS)
}

/// [`node_client_config`] offering only the protocol versions in `alpns`
/// (`gdx/N`): a node of an older version, for interoperability tests.
pub fn node_client_config_speaking(
    identity: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
    roots: &[CertificateDer<'static>],
    hub: Option<&NodeId>,
    alpns: &[&[u8]],
) -> Result<quinn::ClientConfig, TlsError> {
    let verifier = HubVerifier::new(Trust::Roots(roots.to_vec()), hub)?;
    client_config(identity, verifier, alpns)
}

/// The QUIC client configuration for enrolment: no client certificate; the
/// server's chain must contain a CA whose SHA-256 is `ca_fingerprint`, and
/// it must be hub `hub` (both from the token), so that the token's secret
/// goes to no other server.
pub fn enrol_client_config(ca_fingerprint: [u8; 32], hub: &NodeId) -> Result<quinn::ClientConfig, TlsError> {
    let verifier = HubVerifier::new(Trust::Pinned(ca_fingerprint), Some(hub))?;
    client_config(None, verifier, &[ALPN_ENROLL])
}

/// The TLS server name every hub certificate carries.
pub fn hub_server_name() -> &'static str {
    HUB_SERVER_NAME
}

fn client_config(
    identity: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
    verifier: HubVerifier,
    alpn: &[&[u8]],
) -> Result<quinn::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut tls = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, private_key(key))?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    tls.enable_early_data = false;
    tls.resumption = Resumption::disabled();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = transport();
    // a hub never opens streams towards the node that dialled it
    transport.max_concurrent_bidi_streams(quinn::VarInt::from_u32(0));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Streams a node may have open at once on its connection to a hub.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 32;
/// Bytes a peer may have in flight, unread, over all streams of a connection.
const CONNECTION_RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;

/// How QUIC paces what it sends: `congestion` in agent.toml and hub.toml.
///
/// BBR by default: Cubic (quinn's default) cuts its window at each loss, so
/// on a county's 1 Mbit/s, 300 ms link with 5 % random loss it filled 14-31 %
/// of the link and took 1.2-2.8x rsync's time for a first sync of 100,000
/// rows; BBR paces to the bandwidth it measures, filled 70-83 % and took
/// 0.48-0.55x (`gdx-bench link`, docs/performance.md). Its price: it probes
/// past the link, and much of what it sends there is dropped, which a link
/// shared with an office's other traffic feels; `cubic` is the gentler
/// neighbour. quinn calls its BBR experimental. On loopback the two are alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Congestion {
    Bbr = 0,
    Cubic = 1,
}

impl Congestion {
    /// `"bbr"` or `"cubic"`; otherwise a sentence saying what to give.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "bbr" => Ok(Self::Bbr),
            "cubic" => Ok(Self::Cubic),
            other => Err(format!(
                "congestion = {other:?} is not known; give \"bbr\" (the default, which fills a lossy link) or \"cubic\" (gentler on a link shared with other traffic)"
            )),
        }
    }
}

static CONGESTION: AtomicU8 = AtomicU8::new(Congestion::Bbr as u8);

/// Chooses the congestion control of every QUIC connection this process
/// makes or accepts from now on (the configuration's `congestion`).
pub fn use_congestion(c: Congestion) {
    CONGESTION.store(c as u8, Ordering::Relaxed);
}

fn transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    // no stream in this protocol is one-way
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // 20 s always fits in a VarInt; the fallback is never taken.
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    if CONGESTION.load(Ordering::Relaxed) == Congestion::Bbr as u8 {
        t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    }
    t
}

/// The handshake-signature methods of a server certificate verifier that
/// holds its crypto provider in `self.provider`: checked the usual way,
/// whatever the verifier decides of the certificate itself.
macro_rules! handshake_signatures_by_provider {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider.signature_verification_algorithms.supported_schemes()
        }
    };
}

/// A TLS client configuration for a department's database server: with
/// `roots`, the server's certificate must chain to them and name the host
/// dialled (`verify`); without, the connection is encrypted but the
/// server not authenticated (`required`, as libpq's `sslmode=require`).
pub fn database_client_config(roots: Option<&[CertificateDer<'static>]>) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    Ok(match roots {
        Some(roots) => builder.with_root_certificates(root_store(roots)?).with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly { provider: provider() }))
            .with_no_client_auth(),
    })
}

/// Accepts any server certificate, still checking the handshake's
/// signatures: encryption without authentication, asked for by name.
#[derive(Debug)]
struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures_by_provider!();
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn private_key(der: Vec<u8>) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))
}

fn root_store(roots: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).map_err(|e| TlsError::Root(e.to_string()))?;
    }
    Ok(store)
}

/// A refusal sentence carried through rustls to the peer.
struct Refusal(String);

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{REFUSAL_OPEN}{}{REFUSAL_CLOSE}", self.0)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Refusal {}

fn refuse(sentence: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refusal(sentence)))))
}

/// Describes a failed chain check in words, naming the certificate's holder.
fn chain_failure(holder: &str, err: &rustls::Error, issuer_hint: &str) -> String {
    let reason = match err {
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            return format!("the certificate of {holder} has expired; enrol it again with a new token");
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => {
            return format!("the certificate of {holder} is not valid yet; check the clocks of both machines");
        }
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            return format!(
                "the certificate of {holder} was not issued by {issuer_hint}; enrol it with a token from this hub"
            );
        }
        other => other.to_string(),
    };
    format!("the certificate of {holder} is not acceptable ({reason})")
}

fn holder_of(der: &[u8]) -> String {
    match Identity::of(der) {
        Ok(Identity::Node { node, role, .. }) => format!("{role} {node}"),
        Ok(Identity::Ca { division, .. }) => format!("CA {division}"),
        Err(_) => "the peer (it carries no GDX identity)".to_owned(),
    }
}

/// A CA vouches only for its own division: every intermediate CA on the
/// chain must contain the node's division (a prefecture CA cannot issue a
/// certificate for another prefecture's node).
fn issuers_cover(identity: &Identity, intermediates: &[CertificateDer<'_>]) -> Result<(), String> {
    let Identity::Node { node, role, .. } = identity else { return Ok(()) };
    for der in intermediates {
        // an intermediate CA cannot mint its own division's hub certificate
        // (only the root, or its cross-certificate in a rollover, issues
        // the hub of its own division)
        if let Ok(Identity::Ca { division, .. }) = Identity::of(der)
            && (!division.contains(node.division())
                || (*role == Role::Hub && !crate::pki::is_root_ca(der) && !division.strictly_contains(node.division())))
        {
            return Err(format!(
                "the certificate of {role} {node} was issued by the CA of division {division}, which may issue only for its own division"
            ));
        }
    }
    Ok(())
}

/// Verifies certificate chains that arrive inside messages (the signer of a
/// changeset relayed by a child hub) exactly as a handshake would: to the
/// root, valid now, for client authentication, each CA within its division.
#[derive(Debug)]
pub struct ChainVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ChainVerifier {
    pub fn new(roots: &[CertificateDer<'static>]) -> Result<Self, TlsError> {
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(roots)?), provider())
            .build()
            .map_err(|e| TlsError::Root(e.to_string()))?;
        Ok(Self { inner })
    }

    /// The identity of `chain[0]` once the chain checks out, at Unix time `now`.
    pub fn verify(&self, chain: &[Vec<u8>], now: i64) -> Result<Identity, String> {
        let (leaf, rest) = chain.split_first().ok_or("the signer's certificate chain is empty")?;
        let leaf = CertificateDer::from(leaf.as_slice());
        let rest: Vec<CertificateDer<'_>> = rest.iter().map(|c| CertificateDer::from(c.as_slice())).collect();
        let holder = holder_of(&leaf);
        let at = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64));
        self.inner
            .verify_client_cert(&leaf, &rest, at)
            .map_err(|e| chain_failure(&holder, &e, "the province's certificate authority"))?;
        let identity = Identity::of(&leaf).map_err(|e| e.to_string())?;
        issuers_cover(&identity, &rest)?;
        Ok(identity)
    }
}

#[derive(Debug)]
struct NodeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    policy: Arc<dyn PeerPolicy>,
}

impl ClientCertVerifier for NodeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let holder = holder_of(end_entity);
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| refuse(chain_failure(&holder, &e, "this hub's certificate authority")))?;
        let identity = Identity::of(end_entity).map_err(|_| {
            refuse("the client certificate carries no GDX identity; enrol the node with `gdx-agent enroll`".into())
        })?;
        issuers_cover(&identity, intermediates).map_err(refuse)?;
        let presented: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        self.policy.admit(&identity, &presented).map_err(refuse)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
enum Trust {
    /// The roots of the node's trust file (more than one during a rollover).
    Roots(Vec<CertificateDer<'static>>),
    Pinned([u8; 32]),
}

/// Verifies that the server is a GDX hub under the trusted (or pinned) CA.
#[derive(Debug)]
struct HubVerifier {
    trust: Trust,
    /// The hub this node knows from enrolment; any other is refused.
    expected: Option<NodeId>,
    provider: Arc<CryptoProvider>,
}

impl HubVerifier {
    fn new(trust: Trust, expected: Option<&NodeId>) -> Result<Self, TlsError> {
        if let Trust::Roots(roots) = &trust {
            root_store(roots)?;
        }
        Ok(Self { trust, expected: expected.cloned(), provider: provider() })
    }
}

impl ServerCertVerifier for HubVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let roots = match &self.trust {
            Trust::Roots(roots) => roots.clone(),
            Trust::Pinned(pin) => {
                let found = std::iter::once(end_entity).chain(intermediates).find(|c| &fingerprint(c) == pin);
                match found {
                    Some(c) => vec![c.clone().into_owned()],
                    None => {
                        let presented = intermediates.last().unwrap_or(end_entity);
                        return Err(refuse(format!(
                            "the hub's CA does not match the fingerprint in the token (expected {}, the hub presented {}); check that the token was made by this hub",
                            fingerprint_text(pin),
                            fingerprint_text(&fingerprint(presented))
                        )));
                    }
                }
            }
        };
        let holder = holder_of(end_entity);
        if let Ok(Identity::Node { role: Role::Agent, node, .. }) = Identity::of(end_entity) {
            return Err(refuse(format!(
                "the server presented the certificate of agent {node}, not a hub's; check the hub address in agent.toml"
            )));
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(
            Arc::new(root_store(&roots).map_err(|e| refuse(e.to_string()))?),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| refuse(e.to_string()))?;
        let name = ServerName::try_from(HUB_SERVER_NAME).map_err(|e| refuse(e.to_string()))?;
        webpki
            .verify_server_cert(end_entity, intermediates, &name, ocsp, now)
            .map_err(|e| refuse(chain_failure(&holder, &e, "the CA this node trusts")))?;
        match Identity::of(end_entity) {
            Ok(Identity::Node { role: Role::Hub, node, .. })
                if self.expected.as_ref().is_some_and(|expected| expected != &node) =>
            {
                Err(refuse(format!(
                    "the server is hub {node}, not hub {} that this node enrolled with; check the hub address (a token or agent.toml pointing elsewhere)",
                    self.expected.as_ref().map(ToString::to_string).unwrap_or_default()
                )))
            }
            Ok(identity @ Identity::Node { role: Role::Hub, .. }) => {
                issuers_cover(&identity, intermediates).map_err(refuse)?;
                Ok(ServerCertVerified::assertion())
            }
            _ => Err(refuse(format!("the server's certificate ({holder}) is not a GDX hub certificate"))),
        }
    }

    handshake_signatures_by_provider!();
}
