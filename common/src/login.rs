//! A department's one-time portal login (`gdx-agent login`): a claim — this
//! node, at this hub, this nonce, until this time — signed with the agent's
//! key and carried in the URL as `A.<claim>.<signature>` (base64url). The
//! hub checks the signature against the certificate it issued the node,
//! and [`check`] decides the rest; the hub spends the nonce once.
//! An operator's or auditor's login (`gdx-hub login`) is `H.<nonce>`, a
//! secret the hub recorded itself.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::NodeId;

/// How long a login URL may be used, in seconds.
pub const LOGIN_VALIDITY: i64 = 600;
/// Clock difference between agent and hub that is tolerated, in seconds.
pub const CLOCK_SKEW: i64 = 120;
/// Longest token accepted, in bytes, before anything is decoded.
pub const MAX_TOKEN: usize = 2048;

/// What a department's login claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub node: NodeId,
    pub hub: NodeId,
    /// 32 hex digits, fresh for each URL.
    pub nonce: String,
    /// Unix seconds after which the URL is refused.
    pub expires: i64,
}

/// A login token, decoded but not yet verified.
#[derive(Debug, PartialEq, Eq)]
pub enum Token {
    /// An agent's signed claim: the claim, the bytes signed, the signature.
    Department { claim: Claim, signed: Vec<u8>, signature: Vec<u8> },
    /// An operator's or auditor's nonce.
    Hub { nonce: String },
}

/// The bytes an agent signs for `claim_json`.
pub fn signed_bytes(claim_json: &[u8]) -> Vec<u8> {
    let mut out = b"gdx portal login v1\n".to_vec();
    out.extend_from_slice(claim_json);
    out
}

/// The token for a claim and the signature of [`signed_bytes`] of its JSON.
pub fn encode(claim_json: &[u8], signature: &[u8]) -> String {
    format!("A.{}.{}", B64.encode(claim_json), B64.encode(signature))
}

/// Reads a token, bounded before it is decoded.
pub fn decode(token: &str) -> Result<Token, String> {
    let bad = || "the login link is damaged or incomplete; copy the whole link, or print a new one".to_owned();
    if token.len() > MAX_TOKEN {
        return Err(bad());
    }
    if let Some(nonce) = token.strip_prefix("H.") {
        if nonce.len() == 64 && nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Token::Hub { nonce: nonce.to_owned() });
        }
        return Err(bad());
    }
    let mut parts = token.strip_prefix("A.").ok_or_else(bad)?.split('.');
    let (Some(claim), Some(sig), None) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
    let claim_json = B64.decode(claim).map_err(|_| bad())?;
    let signature = B64.decode(sig).map_err(|_| bad())?;
    let claim: Claim = serde_json::from_slice(&claim_json).map_err(|_| bad())?;
    if claim.nonce.len() != 32 || !claim.nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(Token::Department { signed: signed_bytes(&claim_json), claim, signature })
}

/// Whether a claim whose signature verified may log in at hub `hub` now.
pub fn check(claim: &Claim, hub: &NodeId, now: i64) -> Result<(), String> {
    if &claim.hub != hub {
        return Err(format!(
            "this login link is for the portal of {}, not of {hub}; open it there, or print one for this hub",
            claim.hub
        ));
    }
    if claim.expires <= now {
        return Err(format!(
            "this login link has expired (they last 10 minutes); run `gdx-agent login` again. Should a new link say so too, the clock of {}'s machine is behind this hub's: set it right (the hub's clock reads {})",
            claim.node,
            crate::units::format_time(now)
        ));
    }
    if claim.expires > now + LOGIN_VALIDITY + CLOCK_SKEW {
        return Err(format!(
            "this login link claims to last longer than 10 minutes; check the clock of {}'s machine and print a new one",
            claim.node
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(expires: i64) -> Claim {
        Claim {
            node: NodeId::parse("630000/gongan").unwrap(),
            hub: NodeId::parse("630000/hub").unwrap(),
            nonce: "0123456789abcdef0123456789abcdef".into(),
            expires,
        }
    }

    #[test]
    fn a_claim_round_trips_and_is_checked() {
        let json = serde_json::to_vec(&claim(1_000)).unwrap();
        let token = encode(&json, b"sig");
        let Ok(Token::Department { claim: c, signed, signature }) = decode(&token) else { panic!("{token}") };
        assert_eq!(c, claim(1_000));
        assert_eq!(signed, signed_bytes(&json));
        assert_eq!(signature, b"sig");
        let hub = NodeId::parse("630000/hub").unwrap();
        let cases: [(i64, i64, Result<(), &str>); 4] = [
            (1_000, 500, Ok(())),
            (1_000, 1_000, Err("expired")),
            (1_000, 1_001, Err("clock of 630000/gongan's machine is behind this hub's")),
            (1_000, 1_000 - LOGIN_VALIDITY - CLOCK_SKEW - 1, Err("longer than 10 minutes")),
        ];
        for (expires, now, want) in cases {
            let got = check(&claim(expires), &hub, now);
            match want {
                Ok(()) => assert_eq!(got, Ok(())),
                Err(part) => assert!(got.unwrap_err().contains(part), "{expires} at {now}"),
            }
        }
        let other = NodeId::parse("632500/hub").unwrap();
        assert!(check(&claim(1_000), &other, 500).unwrap_err().contains("not of 632500/hub"));
    }

    #[test]
    fn damaged_tokens_are_refused_in_one_sentence() {
        let nonce = "ab".repeat(32);
        assert_eq!(decode(&format!("H.{nonce}")), Ok(Token::Hub { nonce: nonce.clone() }));
        for bad in [
            String::new(),
            "H.short".into(),
            format!("H.{}", "zz".repeat(32)),
            "A.x".into(),
            "A.!!.!!".into(),
            "A.e30.c2ln".into(),
            format!("A.{}", "a".repeat(MAX_TOKEN)),
            "X.abc".into(),
        ] {
            assert!(decode(&bad).unwrap_err().contains("damaged"), "{bad}");
        }
    }
}
