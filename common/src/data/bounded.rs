//! Decoding the changes of a changeset within [`MAX_CHANGESET_ROWS`] and
//! [`MAX_CHANGESET_CELLS`], counted as they arrive: a small body that
//! claims millions of rows or cells fails before they are held in memory.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, SeqAccess, VariantAccess, Visitor};

use super::{Change, MAX_CHANGESET_CELLS, MAX_CHANGESET_ROWS, Value};

pub(super) fn changes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Change>, D::Error> {
    d.deserialize_seq(Changes)
}

struct Changes;

impl<'de> Visitor<'de> for Changes {
    type Value = Vec<Change>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at most {MAX_CHANGESET_ROWS} changes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Change>, A::Error> {
        if seq.size_hint().is_some_and(|n| n > MAX_CHANGESET_ROWS) {
            return Err(de::Error::custom(format!("more than {MAX_CHANGESET_ROWS} changes")));
        }
        // a claimed length is no reason to reserve: the vector grows as elements arrive
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        let mut cells = MAX_CHANGESET_CELLS;
        while let Some(change) = seq.next_element_seed(OneChange { cells: &mut cells })? {
            if out.len() == MAX_CHANGESET_ROWS {
                return Err(de::Error::custom(format!("more than {MAX_CHANGESET_ROWS} changes")));
            }
            out.push(change);
        }
        Ok(out)
    }
}

#[derive(serde::Deserialize)]
enum Kind {
    Upsert,
    Delete,
}

struct OneChange<'a> {
    cells: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for OneChange<'_> {
    type Value = Change;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Change, D::Error> {
        d.deserialize_enum("Change", &["Upsert", "Delete"], self)
    }
}

impl<'de> Visitor<'de> for OneChange<'_> {
    type Value = Change;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an upsert or a delete")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Change, A::Error> {
        let (kind, variant) = data.variant::<Kind>()?;
        let values = variant.newtype_variant_seed(Values { cells: self.cells })?;
        Ok(match kind {
            Kind::Upsert => Change::Upsert(values),
            Kind::Delete => Change::Delete(values),
        })
    }
}

struct Values<'a> {
    cells: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for Values<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Values<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the values of a row")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let too_many = || de::Error::custom(format!("more than {MAX_CHANGESET_CELLS} cells"));
        if seq.size_hint().is_some_and(|n| n > *self.cells) {
            return Err(too_many());
        }
        // a claimed length is no reason to reserve: the vector grows as elements arrive
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element::<Value>()? {
            *self.cells = self.cells.checked_sub(1).ok_or_else(too_many)?;
            out.push(v);
        }
        Ok(out)
    }
}
