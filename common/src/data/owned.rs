//! How a [`super::Value`]'s text and bytes are decoded: asked for as
//! borrowed (`deserialize_str`, `deserialize_bytes`) and copied once. Asked
//! for as owned, bincode fills a zeroed buffer and reads into it, which
//! was a tenth of the hub's work on a changeset. From bincode, text is
//! taken as bytes and its UTF-8 checked with SIMD.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    if d.is_human_readable() {
        d.deserialize_str(Text)
    } else {
        // bincode writes text as it writes bytes: taken as bytes, checked with SIMD, not byte by byte
        d.deserialize_bytes(TextBytes)
    }
}

pub(super) fn blob<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_bytes(Blob)
}

struct Text;

impl Visitor<'_> for Text {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

struct TextBytes;

impl Visitor<'_> for TextBytes {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UTF-8 text")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<String, E> {
        simdutf8::basic::from_utf8(v).map(str::to_owned).map_err(|_| E::custom("text that is not UTF-8"))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<String, E> {
        String::from_utf8(v).map_err(|_| E::custom("text that is not UTF-8"))
    }
}

struct Blob;

impl<'de> Visitor<'de> for Blob {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    // as serde's own Vec<u8> accepts it, from formats that write bytes as a list (JSON)
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}
