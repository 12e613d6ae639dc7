//! How a [`super::Value`]'s text and bytes are decoded: asked for as
//! borrowed (`deserialize_str`, `deserialize_bytes`) and copied once. Asked
//! for as owned, bincode fills a zeroed buffer and reads into it (`calloc`
//! alone was 5 % of the hub's work on a changeset).

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<super::Text, D::Error> {
    d.deserialize_str(Text)
}

pub(super) fn blob<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_bytes(Blob)
}

struct Text;

impl Visitor<'_> for Text {
    type Value = super::Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<super::Text, E> {
        Ok(v.into())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<super::Text, E> {
        Ok(v.into())
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
