//! The one-time enrolment token an operator hands to a new node.
//!
//! A token carries everything the new node needs to enrol safely: the hub's
//! address, the SHA-256 fingerprint of the CA it must pin, the node id and
//! role it will be given, a random id and secret, and an expiry. The hub
//! keeps only the id and a hash of the secret. Text form:
//! `GDX1.` followed by base64url (no padding) of the bincode body.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::node::{NodeId, Role};

/// Prefix of every token's text form; the digit is the token format version.
pub const TOKEN_PREFIX: &str = "GDX1.";
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
    /// The text is damaged: bad base64, truncated, or trailing bytes.
    #[error(
        "the enrolment token is damaged or incomplete; copy the whole token that `gdx-hub token` printed, on one line"
    )]
    Damaged,
}

impl EnrolmentToken {
    /// The token's text form.
    pub fn encode(&self) -> String {
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default();
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(body))
    }

    /// Parses the text form; surrounding whitespace is ignored.
    pub fn decode(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        if text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Damaged);
        }
        let b64 = text.strip_prefix(TOKEN_PREFIX).ok_or(TokenError::Prefix)?;
        let body = URL_SAFE_NO_PAD.decode(b64).map_err(|_| TokenError::Damaged)?;
        // the limit refuses a length that claims more than the token holds
        // before anything is allocated for it (without one, a damaged
        // token could ask for exabytes and abort the process)
        let config = bincode::config::standard().with_limit::<MAX_TOKEN_LEN>();
        let (token, used): (Self, usize) =
            bincode::serde::decode_from_slice(&body, config).map_err(|_| TokenError::Damaged)?;
        if used != body.len() {
            return Err(TokenError::Damaged);
        }
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
        assert!(text.starts_with("GDX1."));
        assert_eq!(EnrolmentToken::decode(&format!("  {text}\n")).unwrap(), t);
    }

    #[test]
    fn damaged_tokens_are_refused() {
        let text = sample().encode();
        assert_eq!(EnrolmentToken::decode("hello"), Err(TokenError::Prefix));
        assert_eq!(EnrolmentToken::decode(&text[..text.len() - 10]), Err(TokenError::Damaged));
        assert_eq!(EnrolmentToken::decode(&format!("{text}AAAA")), Err(TokenError::Damaged));
        assert_eq!(EnrolmentToken::decode("GDX1.!!!"), Err(TokenError::Damaged));
        assert_eq!(EnrolmentToken::decode(&"GDX1.A".repeat(1000)), Err(TokenError::Damaged));
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
