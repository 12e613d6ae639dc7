//! Feeds arbitrary bytes to the frame decoder and the token parser: neither
//! may panic, and whatever decodes must re-encode to a frame that decodes
//! to the same message.
#![no_main]

use gdx_common::token::EnrolmentToken;
use gdx_common::wire::{decode_frame, encode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((msg, _))) = decode_frame(data) {
        let again = encode_frame(&msg).expect("a decoded message re-encodes");
        let (back, _) = decode_frame(&again).expect("re-encoded frame decodes").expect("complete");
        assert_eq!(back, msg);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = EnrolmentToken::decode(text);
    }
});
