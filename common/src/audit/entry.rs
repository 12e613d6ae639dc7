//! How an entry is read: strictly, so that every verifier that follows
//! docs/auditor-guide.md agrees on what parses. Exactly the fields of
//! [`ENTRY_FIELDS`], each once and in that order; `prev` 64 lowercase hex
//! digits; `kind` one of [`KINDS`]; `detail` an object in which no key
//! appears twice, at any depth (two parsers could read a doubled key
//! differently).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{ENTRY_FIELDS, Entry, Event, KINDS, hash_of};

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EntryVisitor)
    }
}

struct EntryVisitor;

/// The next field of `map`, which must be `name`.
fn field<'de, A: MapAccess<'de>, T: Deserialize<'de>>(map: &mut A, name: &str) -> Result<T, A::Error> {
    let fields = ENTRY_FIELDS.join(", ");
    match map.next_key::<String>()? {
        Some(k) if k == name => map.next_value(),
        Some(k) => Err(de::Error::custom(format_args!(
            "found the field `{k}` where `{name}` belongs; an entry has exactly the fields {fields}, in this order"
        ))),
        None => Err(de::Error::custom(format_args!(
            "the field `{name}` is missing; an entry has exactly the fields {fields}, in this order"
        ))),
    }
}

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an audit entry: a JSON object with the fields {}, in this order", ENTRY_FIELDS.join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let index: u64 = field(&mut map, "index")?;
        let prev: String = field(&mut map, "prev")?;
        if hash_of(&prev).is_none() {
            return Err(de::Error::custom("`prev` is not 64 lowercase hex digits"));
        }
        let kind: String = field(&mut map, "kind")?;
        if !KINDS.contains(&kind.as_str()) {
            return Err(de::Error::custom(format_args!(
                "the kind {kind:?} is not one of {}; a newer gdx-hub may know it",
                KINDS.join(", ")
            )));
        }
        let at: i64 = field(&mut map, "at")?;
        let node: Option<String> = field(&mut map, "node")?;
        let resource: Option<String> = field(&mut map, "resource")?;
        let request: Option<String> = field(&mut map, "request")?;
        let Unique(detail) = field(&mut map, "detail")?;
        if !detail.is_object() {
            return Err(de::Error::custom("`detail` is not a JSON object"));
        }
        if let Some(k) = map.next_key::<String>()? {
            return Err(de::Error::custom(format_args!(
                "the field `{k}` follows `detail`; an entry has exactly the fields {}, in this order",
                ENTRY_FIELDS.join(", ")
            )));
        }
        Ok(Entry { index, prev, event: Event { kind, at, node, resource, request, detail } })
    }
}

/// A JSON value in which no object has a key twice.
struct Unique(serde_json::Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .ok_or_else(|| E::custom("a number is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Unique(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(serde_json::Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format_args!("the key `{k}` appears twice in one object of `detail`")));
            }
            let Unique(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(serde_json::Value::Object(out))
    }
}
