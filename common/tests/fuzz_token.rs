//! Property tests of the enrolment token parser
//! (`gdx_common::token::EnrolmentToken::decode`), which reads text an
//! operator pasted.
//!
//! Whatever the text, it returns a token or says why not and never panics;
//! every token survives a round trip, with whitespace around it; a token
//! cut short or with more text after it is refused. `PROPTEST_CASES` scales
//! the run (see docs/security.md).
#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gdx_common::token::{EnrolmentToken, TOKEN_PREFIX, TokenError};
use proptest::prelude::*;
use support::{config, mutation, node_id, role};

fn token() -> impl Strategy<Value = EnrolmentToken> {
    (
        "[a-z0-9.-]{1,30}:[0-9]{1,5}|\\[[0-9a-f:]{2,39}\\]:[0-9]{1,5}|(?s).{0,40}",
        node_id(),
        any::<[u8; 32]>(),
        node_id(),
        role(),
        any::<[u8; 16]>(),
        any::<[u8; 32]>(),
        any::<i64>(),
    )
        .prop_map(|(hub_addr, hub, ca_fingerprint, node, role, id, secret, expires_at)| EnrolmentToken {
            hub_addr,
            hub,
            ca_fingerprint,
            node,
            role,
            id,
            secret,
            expires_at,
        })
}

/// Decodes `text`; a token that decodes must encode to text that decodes
/// to it again.
fn check_decoded(text: &str) -> Result<(), TestCaseError> {
    if let Ok(token) = EnrolmentToken::decode(text) {
        prop_assert_eq!(EnrolmentToken::decode(&token.encode()), Ok(token));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    /// Arbitrary text, with and without the prefix.
    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,300}", prefixed in any::<bool>()) {
        let text = if prefixed { format!("{TOKEN_PREFIX}{text}") } else { text };
        check_decoded(&text)?;
        if !text.trim().starts_with(TOKEN_PREFIX) {
            prop_assert!(EnrolmentToken::decode(&text).is_err());
        }
    }

    /// Arbitrary bytes in valid base64 reach the token's decoder.
    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..1600)) {
        let text = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(&body));
        check_decoded(&text)?;
        if text.len() > 2048 {
            prop_assert_eq!(EnrolmentToken::decode(&text), Err(TokenError::Damaged));
        }
    }

    /// Every token survives a round trip, whitespace around it ignored.
    #[test]
    fn tokens_round_trip(token in token(), before in "[ \t\r\n]{0,3}", after in "[ \t\r\n]{0,3}") {
        let text = token.encode();
        prop_assert!(text.starts_with(TOKEN_PREFIX));
        prop_assert_eq!(EnrolmentToken::decode(&format!("{before}{text}{after}")), Ok(token));
    }

    /// A token cut short, or with more text after it, is refused: the
    /// prefix cut names a foreign token, anything else a damaged one.
    #[test]
    fn cut_or_extended_tokens_are_refused(
        token in token(),
        cut in any::<prop::sample::Index>(),
        more in "[A-Za-z0-9_=.+/-]{1,8}",
    ) {
        let text = token.encode();
        let cut = &text[..cut.index(text.len())];
        let want = if cut.len() < TOKEN_PREFIX.len() { TokenError::Prefix } else { TokenError::Damaged };
        prop_assert_eq!(EnrolmentToken::decode(cut), Err(want));
        prop_assert_eq!(EnrolmentToken::decode(&format!("{text}{more}")), Err(TokenError::Damaged));
    }

    /// Damage anywhere in a token's text (bytes flipped, cut short, more
    /// bytes after it), kept where it is still text, never panics.
    #[test]
    fn damaged_tokens_never_panic(token in token(), damage in mutation()) {
        let damaged = damage.apply(token.encode().as_bytes());
        check_decoded(&String::from_utf8_lossy(&damaged))?;
    }
}
