//! The one-time enrolment token an operator hands to a new node.
//!
//! A token carries everything the new node needs to enrol safely: the hub's
//! address, the SHA-256 fingerprint of the CA it must pin, the node id and
//! role it will be given, a random id and secret, and an expiry. The hub
//! keeps only the id and a hash of the secret. Text form: `GDX2.` followed
//! by base64url (no padding) of the bincode body and its seal, an
//! HMAC-SHA256 of the body under the secret: a token whose address, hub or
//! CA fingerprint was changed fails to decode, before anything is sent. (A
//! node also pins the token's hub and CA in the handshake, so the secret
//! goes to no other server.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::node::{NodeId, Role};

/// Prefix of every token's text form; the digit is the token format version.
pub const TOKEN_PREFIX: &str = "GDX2.";
/// The prefix of tokens without a seal, printed by gdx-hub before 0.2.
const OLD_TOKEN_PREFIX: &str = "GDX1.";
/// Bytes of the seal after the body.
const SEAL_LEN: usize = 32;
/// A token longer than this is not one of ours.
const MAX_TOKEN_LEN: usize = 2048;

/// The contents of an enrolment token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentToken {
    /// `host:port` of the hub's QUIC endpoint.
    pub hub_addr: String,
    /// The hub's own node id.
    pub hub: NodeId,
    /// SHA-256 of the DER of the root CA certificate the node must pin.
    pub ca_fingerprint: [u8; 32],
    /// The node id the certificate will bind.
    pub node: NodeId,
    /// The role the certificate will bind.
    pub role: Role,
    /// Public id under which the hub stores the hash of the secret.
    pub id: [u8; 16],
    /// The secret proving possession of the token.
    pub secret: [u8; 32],
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Why a string is not a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Wrong prefix: not a GDX token, or a newer format.
    #[error(
        "this is not a GDX enrolment token (it should start with {TOKEN_PREFIX}); copy the whole token that `gdx-hub token` printed"
    )]
    Prefix,
    /// A token of the format without a seal.
    #[error("this enrolment token was printed by an older gdx-hub; ask the hub operator for a new one")]
    Old,
    /// The seal does not match: the contents were changed after printing.
    #[error(
        "this enrolment token was changed after `gdx-hub token` printed it (its hub address, hub or CA no longer match its seal); nothing was sent, ask the hub operator for a new token"
    )]
    Altered,
    /// The text is damaged: bad base64, truncated, or trailing bytes.
    #[error(
        "the enrolment token is damaged or incomplete; copy the whole token that `gdx-hub token` printed, on one line"
    )]
    Damaged,
}

impl EnrolmentToken {
    /// The token's text form.
    pub fn encode(&self) -> String {
        let mut body = bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default();
        let seal = self.seal(&body);
        body.extend_from_slice(&seal);
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(body))
    }

    fn seal(&self, body: &[u8]) -> [u8; SEAL_LEN] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.secret);
        let mut out = [0u8; SEAL_LEN];
        out.copy_from_slice(ring::hmac::sign(&key, body).as_ref());
        out
    }

    /// Parses the text form; surrounding whitespace is ignored.
    pub fn decode(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        if text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Damaged);
        }
        if text.starts_with(OLD_TOKEN_PREFIX) {
            return Err(TokenError::Old);
        }
        let b64 = text.strip_prefix(TOKEN_PREFIX).ok_or(TokenError::Prefix)?;
        let sealed = URL_SAFE_NO_PAD.decode(b64).map_err(|_| TokenError::Damaged)?;
        let (body, seal) = sealed.split_at_checked(sealed.len().saturating_sub(SEAL_LEN)).ok_or(TokenError::Damaged)?;
        // the limit refuses a length that claims more than the token holds
        // before anything is allocated for it (without one, a damaged
        // token could ask for exabytes and abort the process)
        let config = bincode::config::standard().with_limit::<MAX_TOKEN_LEN>();
        let (token, used): (Self, usize) =
            bincode::serde::decode_from_slice(body, config).map_err(|_| TokenError::Damaged)?;
        if used != body.len() || seal.len() != SEAL_LEN {
            return Err(TokenError::Damaged);
        }
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &token.secret);
        ring::hmac::verify(&key, body, seal).map_err(|_| TokenError::Altered)?;
        Ok(token)
    }

    /// The token id as lowercase hex, as the hub stores it.
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    /// True once `now` (Unix seconds) has reached the expiry.
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A SHA-256 fingerprint in the `AB:CD:…` form operators compare by eye.
pub fn fingerprint_text(fp: &[u8; 32]) -> String {
    fp.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EnrolmentToken {
        EnrolmentToken {
            hub_addr: "10.63.0.1:7443".into(),
            hub: NodeId::parse("630000/hub").unwrap(),
            ca_fingerprint: [7; 32],
            node: NodeId::parse("632522/gongan").unwrap(),
            role: Role::Agent,
            id: [1; 16],
            secret: [2; 32],
            expires_at: 1_800_000_000,
        }
    }

    #[test]
    fn round_trip() {
        let t = sample();
        let text = t.encode();
        assert!(text.starts_with("GDX2."));
        assert_eq!(EnrolmentToken::decode(&format!("  {text}\n")).unwrap(), t);
    }

    /// Changing what a token says of its hub, without its secret, breaks
    /// the seal; an old unsealed token is named as such.
    #[test]
    fn altered_tokens_are_refused() {
        let t = sample();
        let sealed = URL_SAFE_NO_PAD.decode(t.encode().strip_prefix(TOKEN_PREFIX).unwrap()).unwrap();
        let body = &sealed[..sealed.len() - SEAL_LEN];
        let seal = &sealed[sealed.len() - SEAL_LEN..];
        for (what, edit) in [
            ("the address", EnrolmentToken { hub_addr: "10.66.6.6:7443".into(), ..t.clone() }),
            ("the hub", EnrolmentToken { hub: NodeId::parse("632500/hub").unwrap(), ..t.clone() }),
            ("the CA", EnrolmentToken { ca_fingerprint: [8; 32], ..t.clone() }),
            ("the expiry", EnrolmentToken { expires_at: t.expires_at + 86_400, ..t.clone() }),
        ] {
            let mut forged = bincode::serde::encode_to_vec(&edit, bincode::config::standard()).unwrap();
            assert_ne!(forged, body);
            forged.extend_from_slice(seal);
            let text = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(forged));
            assert_eq!(EnrolmentToken::decode(&text), Err(TokenError::Altered), "{what}");
        }
        let old = format!("GDX1.{}", URL_SAFE_NO_PAD.encode(body));
        assert_eq!(EnrolmentToken::decode(&old), Err(TokenError::Old));
    }

    #[test]
    fn damaged_tokens_are_refused() {
        let text = sample().encode();
        assert_eq!(EnrolmentToken::decode("hello"), Err(TokenError::Prefix));
        assert_eq!(EnrolmentToken::decode(&text[..text.len() - 10]), Err(TokenError::Damaged));
        assert_eq!(EnrolmentToken::decode(&format!("{text}AAAA")), Err(TokenError::Damaged));
        assert_eq!(EnrolmentToken::decode("GDX2.!!!"), Err(TokenError::Damaged));
        assert_eq!(EnrolmentToken::decode("GDX2.AAAA"), Err(TokenError::Damaged));
        assert_eq!(EnrolmentToken::decode(&"GDX2.A".repeat(1000)), Err(TokenError::Damaged));
    }

    /// Found by the property tests (common/tests/fuzz_token.rs): a length
    /// claiming more bytes than the token holds was allocated before being
    /// read, which panicked (2^63 bytes) or aborted the process (a failed
    /// allocation of some exabytes) instead of refusing the token.
    #[test]
    fn a_huge_length_is_refused_not_allocated() {
        // the hub address claims 2^63 bytes
        let mut body = vec![253];
        body.extend_from_slice(&(1u64 << 63).to_le_bytes());
        body.extend_from_slice(&[0; SEAL_LEN]);
        let text = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(&body));
        assert_eq!(EnrolmentToken::decode(&text), Err(TokenError::Damaged));
    }

    #[test]
    fn expiry() {
        let t = sample();
        assert!(!t.is_expired(t.expires_at - 1));
        assert!(t.is_expired(t.expires_at));
    }

    #[test]
    fn fingerprint_form() {
        assert_eq!(fingerprint_text(&[0xab; 32]).len(), 32 * 3 - 1);
        assert!(fingerprint_text(&[0xab; 32]).starts_with("AB:AB"));
    }
}
