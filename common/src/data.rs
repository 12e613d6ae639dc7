//! Rows, changes and changesets: what an extract is made of.
//!
//! A resource's rows all have the same columns; some of them form the key.
//! A [`Changeset`] is one numbered step of a resource's history at its
//! origin: upserts and deletes, never more than [`MAX_CHANGESET_ROWS`] rows.
//! It travels compressed and signed inside a [`crate::wire::SignedChangeset`].

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::node::NodeId;

/// Most rows in one changeset; a large extract is cut into many.
pub const MAX_CHANGESET_ROWS: usize = 5_000;
/// Most cells (values of all its rows) in one changeset: what a decoded
/// changeset may hold in memory is bounded by this, not by what a peer claims.
pub const MAX_CHANGESET_CELLS: usize = 2_000_000;
/// Longest column or resource-code text accepted.
pub const MAX_NAME_LEN: usize = 64;

/// One cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A cell borrowed from a source row. It encodes (and so digests and keys)
/// exactly like the [`Value`] it becomes, so a scan can compare a row with
/// its saved digest without copying it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Cell<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl Cell<'_> {
    pub fn to_value(self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Integer(i) => Value::Integer(i),
            Cell::Real(f) => Value::Real(f),
            Cell::Text(t) => Value::Text(t.to_owned()),
            Cell::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

impl<'a> From<&'a Value> for Cell<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => Cell::Null,
            Value::Integer(i) => Cell::Integer(*i),
            Value::Real(f) => Cell::Real(*f),
            Value::Text(t) => Cell::Text(t),
            Value::Blob(b) => Cell::Blob(b),
        }
    }
}

/// A column of a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The declared type at the source (`INTEGER`, `TEXT`, …), empty when none.
    pub decl_type: String,
}

/// One row-level change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// Insert or replace the whole row (all columns, in schema order).
    Upsert(Vec<Value>),
    /// Delete the row with these key values (key columns, in key order).
    Delete(Vec<Value>),
}

/// One numbered step of a resource's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Changeset {
    pub origin: NodeId,
    pub resource: ResourceCode,
    /// 1, 2, 3, … per (origin, resource), without gaps.
    pub seq: u64,
    /// Random number fixed when the agent first synced the resource. A new
    /// epoch with old sequence numbers means the agent's state was reset;
    /// the receiver refuses it rather than mistaking new changes for duplicates.
    pub epoch: u64,
    pub columns: Vec<Column>,
    /// Indices into `columns` of the key columns.
    pub key: Vec<usize>,
    #[serde(deserialize_with = "bounded::changes")]
    pub changes: Vec<Change>,
    /// When the agent produced it, Unix seconds.
    pub created_at: i64,
}

/// A resource code: letters, digits, `.`, `_`, `-` and `/`, 1–64 characters,
/// not starting or ending with `/` (for example `630000-gongan/hukou` or the
/// catalogue form `101/000123`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceCode(String);

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "resource code {0:?} must be 1-64 letters, digits, '.', '_', '-' or '/', not starting or ending with '/' nor with _gdx or sqlite_"
    )]
    ResourceCode(String),
    #[error("column name {0:?} is not a plain identifier: use 1-64 letters, digits or '_', not starting with a digit")]
    Column(String),
}

impl ResourceCode {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_NAME_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
            && !s.starts_with('/')
            && !s.ends_with('/')
            && !s.contains("//")
            && !s.to_ascii_lowercase().starts_with("_gdx")
            && !s.to_ascii_lowercase().starts_with("sqlite_");
        if ok { Ok(Self(s.to_owned())) } else { Err(NameError::ResourceCode(s.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceCode({})", self.0)
    }
}

impl TryFrom<String> for ResourceCode {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ResourceCode> for String {
    fn from(r: ResourceCode) -> String {
        r.0
    }
}

/// Checks that a column name is a plain identifier: Unicode letters, digits
/// and `_`, not starting with a digit, at most 64 bytes. Chinese names such
/// as 身份证号 are plain identifiers; `a;b`, `"x"` and `a b` are not.
pub fn check_column_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_lowercase().starts_with("_gdx");
    if ok { Ok(()) } else { Err(NameError::Column(name.to_owned())) }
}

/// A total order over values, used to sort changes by key: Null < numbers <
/// text < blobs; integers and reals compare numerically.
pub fn cmp_values(a: &Value, b: &Value) -> Ordering {
    use Value::*;
    fn rank(v: &Value) -> u8 {
        match v {
            Null => 0,
            Integer(_) | Real(_) => 1,
            Text(_) => 2,
            Blob(_) => 3,
        }
    }
    match (a, b) {
        (Integer(x), Integer(y)) => x.cmp(y),
        (Integer(x), Real(y)) => cmp_int_real(*x, *y),
        (Real(x), Integer(y)) => cmp_int_real(*y, *x).reverse(),
        (Real(x), Real(y)) => x.total_cmp(y),
        (Text(x), Text(y)) => x.cmp(y),
        (Blob(x), Blob(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Compares an integer with a real exactly (no rounding through f64), so
/// that the order stays total for integers beyond 2^53. NaN sorts by its
/// sign, as `f64::total_cmp` does.
fn cmp_int_real(x: i64, y: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if y.is_nan() {
        return if y.is_sign_negative() { Ordering::Greater } else { Ordering::Less };
    }
    if y >= TWO_63 {
        return Ordering::Less;
    }
    if y < -TWO_63 {
        return Ordering::Greater;
    }
    let t = y.trunc();
    match x.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.total_cmp(&(y - t)),
        o => o,
    }
}

/// Compares two changes by key without copying anything; `key` holds the
/// key columns' indices into an upsert's row (a delete holds the key itself).
pub fn cmp_change_keys(a: &Change, b: &Change, key: &[usize]) -> Ordering {
    fn part<'a>(c: &'a Change, key: &[usize], j: usize) -> Option<&'a Value> {
        match c {
            Change::Upsert(row) => key.get(j).and_then(|&i| row.get(i)),
            Change::Delete(k) => k.get(j),
        }
    }
    for j in 0..key.len() {
        let o = match (part(a, key, j), part(b, key, j)) {
            (Some(x), Some(y)) => cmp_values(x, y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        };
        if o.is_ne() {
            return o;
        }
    }
    Ordering::Equal
}

impl Changeset {
    /// The key values of a change.
    pub fn key_of<'a>(&self, change: &'a Change) -> Vec<&'a Value> {
        match change {
            Change::Upsert(row) => self.key.iter().filter_map(|&i| row.get(i)).collect(),
            Change::Delete(key) => key.iter().collect(),
        }
    }

    /// Checks the internal consistency a receiver relies on: key indices in
    /// range, column names plain, every upsert as wide as the columns, every
    /// delete as wide as the key, no null key.
    pub fn validate(&self) -> Result<(), String> {
        if self.key.is_empty() {
            return Err("the changeset has no key columns".into());
        }
        if self.key.iter().any(|&k| k >= self.columns.len()) {
            return Err("a key column index is out of range".into());
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.columns {
            check_column_name(&c.name).map_err(|e| e.to_string())?;
            // SQLite names are case-insensitive
            if !seen.insert(c.name.to_lowercase()) {
                return Err(format!("column {:?} appears twice (names differ only in case)", c.name));
            }
        }
        for change in &self.changes {
            let width_ok = match change {
                Change::Upsert(row) => row.len() == self.columns.len(),
                Change::Delete(key) => key.len() == self.key.len(),
            };
            if !width_ok {
                return Err("a change does not have as many values as its columns".into());
            }
            if self.key_of(change).iter().any(|v| matches!(v, Value::Null)) {
                return Err("a change has a null key".into());
            }
        }
        Ok(())
    }
}

/// Largest decompressed changeset accepted, in bytes (an agent's are at
/// most 8 MiB of rows plus one row of up to 4 MiB).
pub const MAX_CHANGESET_BYTES: usize = 16 * 1024 * 1024;

/// Why a changeset body does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the changeset body does not decompress: {0}")]
    Compression(String),
    #[error("the changeset body does not decode: {0}")]
    Decode(String),
    #[error("the changeset cannot be encoded: {0}")]
    Encode(String),
}

/// `zstd(bincode(changeset))`, the body that is signed and sent. An error,
/// never empty bytes: what is returned gets signed.
pub fn encode_changeset(cs: &Changeset) -> Result<Vec<u8>, BodyError> {
    let raw =
        bincode::serde::encode_to_vec(cs, bincode::config::standard()).map_err(|e| BodyError::Encode(e.to_string()))?;
    zstd::bulk::compress(&raw, 3).map_err(|e| BodyError::Encode(e.to_string()))
}

/// Decodes a body made by [`encode_changeset`], refusing anything that
/// decompresses beyond [`MAX_CHANGESET_BYTES`].
pub fn decode_changeset(body: &[u8]) -> Result<Changeset, BodyError> {
    // streamed, so the buffer grows with what the body really holds, up to the limit
    let mut raw = Vec::new();
    let decoder = zstd::stream::read::Decoder::new(body).map_err(|e| BodyError::Compression(e.to_string()))?;
    std::io::Read::read_to_end(&mut std::io::Read::take(decoder, MAX_CHANGESET_BYTES as u64 + 1), &mut raw)
        .map_err(|e| BodyError::Compression(e.to_string()))?;
    if raw.len() > MAX_CHANGESET_BYTES {
        return Err(BodyError::Compression(format!("it decompresses to more than {MAX_CHANGESET_BYTES} bytes")));
    }
    let config = bincode::config::standard().with_limit::<MAX_CHANGESET_BYTES>();
    let (cs, used): (Changeset, usize) =
        bincode::serde::decode_from_slice(&raw, config).map_err(|e| BodyError::Decode(e.to_string()))?;
    if used != raw.len() {
        return Err(BodyError::Decode("bytes left over".into()));
    }
    Ok(cs)
}

/// Decoding the changes of a changeset within [`MAX_CHANGESET_ROWS`] and
/// [`MAX_CHANGESET_CELLS`], counted as they arrive: a small body that
/// claims millions of rows or cells fails before they are held in memory.
mod bounded {
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
}

/// A stable 16-byte digest of a row, for change detection.
pub fn row_digest(row: &[Value]) -> [u8; 16] {
    let raw = bincode::serde::encode_to_vec(row, bincode::config::standard()).unwrap_or_default();
    let h = digest128(&raw);
    h.to_le_bytes()
}

/// [`row_digest`] of borrowed cells, encoding into `buf` (reused between rows).
pub fn cells_digest(row: &[Cell<'_>], buf: &mut Vec<u8>) -> [u8; 16] {
    buf.clear();
    put_varint(buf, row.len() as u64);
    for cell in row {
        put_cell(buf, *cell);
    }
    digest128(buf).to_le_bytes()
}

/// Appends `n` as bincode's standard configuration writes integers.
fn put_varint(buf: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => buf.push(n as u8),
        251..=0xffff => {
            buf.push(251);
            buf.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            buf.push(252);
            buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            buf.push(253);
            buf.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends one cell exactly as bincode (standard configuration) encodes the
/// [`Value`] it becomes: the variant's index, then its content.
fn put_cell(buf: &mut Vec<u8>, cell: Cell<'_>) {
    match cell {
        Cell::Null => buf.push(0),
        Cell::Integer(i) => {
            buf.push(1);
            put_varint(buf, ((i << 1) ^ (i >> 63)) as u64);
        }
        Cell::Real(f) => {
            buf.push(2);
            buf.extend_from_slice(&f.to_le_bytes());
        }
        Cell::Text(t) => {
            buf.push(3);
            put_varint(buf, t.len() as u64);
            buf.extend_from_slice(t.as_bytes());
        }
        Cell::Blob(b) => {
            buf.push(4);
            put_varint(buf, b.len() as u64);
            buf.extend_from_slice(b);
        }
    }
}

/// Two 64-bit FNV-style lanes: enough to
/// detect changes (not an integrity check: signatures do that).
fn digest128(data: &[u8]) -> u128 {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4 ^ data.len() as u64;
    for &byte in data {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
    (u128::from(a) << 64) | u128::from(b)
}

/// Why a source's columns no longer fit a resource's saved schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaDrift {
    #[error("column {column:?} is no longer in the source (dropped or renamed; the source now has {})", .now.join(", "))]
    Gone { column: String, now: Vec<String> },
    #[error("column {column:?} changed type from {from:?} to {to:?}")]
    Retyped { column: String, from: String, to: String },
}

/// Merges a resource's saved schema with its source's columns: the saved
/// order first, new columns appended (they flow through). A saved column
/// that is gone or whose declared type changed is drift. No saved schema:
/// the source's.
pub fn merge_schema(saved: Option<&[Column]>, source: &[Column]) -> Result<Vec<Column>, SchemaDrift> {
    let Some(saved) = saved.filter(|s| !s.is_empty()) else { return Ok(source.to_vec()) };
    for c in saved {
        match source.iter().find(|s| s.name == c.name) {
            None => {
                let now = source.iter().map(|c| c.name.clone()).collect();
                return Err(SchemaDrift::Gone { column: c.name.clone(), now });
            }
            Some(s) if s.decl_type != c.decl_type => {
                return Err(SchemaDrift::Retyped {
                    column: c.name.clone(),
                    from: c.decl_type.clone(),
                    to: s.decl_type.clone(),
                });
            }
            Some(_) => {}
        }
    }
    let mut out = saved.to_vec();
    out.extend(source.iter().filter(|s| !saved.iter().any(|c| c.name == s.name)).cloned());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_codes() {
        for (s, ok) in [
            ("hukou", true),
            ("630000-gongan/hukou", true),
            ("101/000123", true),
            ("", false),
            ("/x", false),
            ("x/", false),
            ("a//b", false),
            ("户口", false),
            ("a b", false),
            ("_gdx_resources", false),
            ("SQLITE_master", false),
            (&"x".repeat(65), false),
        ] {
            assert_eq!(ResourceCode::parse(s).is_ok(), ok, "{s}");
        }
    }

    #[test]
    fn column_names() {
        for (s, ok) in [
            ("id_number", true),
            ("身份证号", true),
            ("姓名", true),
            ("_x", true),
            ("1st", false),
            ("a;b", false),
            ("a b", false),
            ("\"x\"", false),
            ("", false),
            ("_gdx_key", false),
            ("a-b", false),
        ] {
            assert_eq!(check_column_name(s).is_ok(), ok, "{s}");
        }
    }

    #[test]
    fn value_order_is_total_and_numeric() {
        use Value::*;
        assert_eq!(cmp_values(&Integer(2), &Real(10.0)), Ordering::Less);
        assert_eq!(cmp_values(&Null, &Integer(-5)), Ordering::Less);
        assert_eq!(cmp_values(&Text("b".into()), &Text("a".into())), Ordering::Greater);
        let (a, b) =
            (Change::Upsert(vec![Integer(1), Text("a".into())]), Change::Upsert(vec![Integer(1), Text("b".into())]));
        assert_eq!(cmp_change_keys(&a, &b, &[0, 1]), Ordering::Less);
        assert_eq!(cmp_change_keys(&a, &Change::Delete(vec![Integer(1)]), &[0]), Ordering::Equal);
        // exact beyond 2^53, where f64 cannot tell the integers apart
        let big = 1i64 << 53;
        assert_eq!(cmp_values(&Integer(big + 1), &Real(big as f64)), Ordering::Greater);
        assert_eq!(cmp_values(&Real(big as f64), &Integer(big)), Ordering::Equal);
        assert_eq!(cmp_values(&Integer(2), &Real(2.5)), Ordering::Less);
        assert_eq!(cmp_values(&Integer(-2), &Real(-2.5)), Ordering::Greater);
        assert_eq!(cmp_values(&Integer(i64::MAX), &Real(1e300)), Ordering::Less);
        // sorting a mix never panics and is consistent
        let mut v = [Real(f64::NAN), Integer(big + 1), Real(big as f64), Integer(big), Integer(-1), Real(-f64::NAN)];
        v.sort_by(cmp_values);
        for w in v.windows(2) {
            assert_ne!(cmp_values(&w[0], &w[1]), Ordering::Greater);
        }
    }

    #[test]
    fn body_round_trip_and_bombs() {
        let cs = Changeset {
            origin: NodeId::parse("632522/gongan").unwrap(),
            resource: ResourceCode::parse("hukou").unwrap(),
            seq: 7,
            epoch: 1,
            columns: vec![Column { name: "id".into(), decl_type: String::new() }],
            key: vec![0],
            changes: (0..100).map(|i| Change::Upsert(vec![Value::Integer(i)])).collect(),
            created_at: 1,
        };
        assert_eq!(decode_changeset(&encode_changeset(&cs).unwrap()).unwrap(), cs);
        assert!(decode_changeset(b"not zstd").is_err());
        let bomb = zstd::bulk::compress(&vec![0u8; MAX_CHANGESET_BYTES + 1], 1).unwrap();
        assert!(matches!(decode_changeset(&bomb), Err(BodyError::Compression(_))));
    }

    /// A few KiB that claim millions of rows or cells fail as the count is
    /// passed, before the rows are held (bincode: a length, then elements).
    #[test]
    fn rows_and_cells_are_counted_before_they_are_held() {
        let cs = |rows: usize, width: usize| Changeset {
            origin: NodeId::parse("630000/gongan").unwrap(),
            resource: ResourceCode::parse("hukou").unwrap(),
            seq: 1,
            epoch: 1,
            columns: vec![Column { name: "id".into(), decl_type: String::new() }],
            key: vec![0],
            changes: (0..rows).map(|_| Change::Upsert(vec![Value::Null; width])).collect(),
            created_at: 1,
        };
        let body = |c: &Changeset| {
            let raw = bincode::serde::encode_to_vec(c, bincode::config::standard()).unwrap();
            zstd::bulk::compress(&raw, 19).unwrap()
        };
        let fits = cs(MAX_CHANGESET_ROWS, MAX_CHANGESET_CELLS / MAX_CHANGESET_ROWS);
        assert_eq!(decode_changeset(&body(&fits)).unwrap(), fits);
        for (what, bomb, want) in [
            ("one row too many", cs(MAX_CHANGESET_ROWS + 1, 1), "more than 5000 changes"),
            ("one cell too many", cs(2, MAX_CHANGESET_CELLS / 2 + 1), "more than 2000000 cells"),
            ("millions of cells in one row", cs(1, 8_000_000), "more than 2000000 cells"),
        ] {
            let b = body(&bomb);
            assert!(b.len() < 64 * 1024, "{what}: {} bytes", b.len());
            let e = decode_changeset(&b).unwrap_err().to_string();
            assert!(e.contains(want), "{what}: {e}");
        }
    }

    #[test]
    fn digests_tell_rows_apart() {
        use Value::*;
        let a = row_digest(&[Integer(1), Text("x".into())]);
        assert_eq!(a, row_digest(&[Integer(1), Text("x".into())]));
        assert_ne!(a, row_digest(&[Integer(1), Text("y".into())]));
        assert_ne!(a, row_digest(&[Integer(1), Text("x".into()), Null]));
        assert_ne!(row_digest(&[Text("1".into())]), row_digest(&[Integer(1)]));
    }

    #[test]
    fn validate_catches_inconsistent_changesets() {
        let mut cs = Changeset {
            origin: NodeId::parse("632522/gongan").unwrap(),
            resource: ResourceCode::parse("hukou").unwrap(),
            seq: 1,
            epoch: 1,
            columns: vec![Column { name: "id".into(), decl_type: "TEXT".into() }],
            key: vec![0],
            changes: vec![Change::Upsert(vec![Value::Text("1".into())])],
            created_at: 0,
        };
        assert!(cs.validate().is_ok());
        cs.changes.push(Change::Delete(vec![Value::Null]));
        assert!(cs.validate().unwrap_err().contains("null key"));
        cs.changes.pop();
        cs.changes.push(Change::Upsert(vec![]));
        assert!(cs.validate().is_err());
        cs.changes.pop();
        cs.columns.push(Column { name: "ID".into(), decl_type: String::new() });
        assert!(cs.validate().unwrap_err().contains("differ only in case"));
        cs.columns.pop();
        cs.key = vec![3];
        assert!(cs.validate().is_err());
    }

    #[test]
    fn cells_encode_like_values() {
        let mut row = vec![
            Value::Text("632522199001010011".into()),
            Value::Null,
            Value::Integer(-7),
            Value::Real(1.5),
            Value::Blob(vec![0, 255, 3]),
            Value::Text("藏族".into()),
            Value::Text("长".repeat(100)),
            Value::Blob(vec![9; 70_000]),
            Value::Text(String::new()),
        ];
        for i in [0, 1, 250, 251, 65_535, 65_536, i64::MAX, i64::MIN, -1, -250, 1 << 40] {
            row.push(Value::Integer(i));
        }
        let cells: Vec<Cell<'_>> = row.iter().map(Cell::from).collect();
        let mut buf = Vec::new();
        assert_eq!(cells_digest(&cells, &mut buf), row_digest(&row));
        assert_eq!(buf, bincode::serde::encode_to_vec(&row, bincode::config::standard()).unwrap());
        assert_eq!(cells.iter().map(|c| c.to_value()).collect::<Vec<_>>(), row);
    }

    #[test]
    fn schema_merge_keeps_the_saved_order_and_names_drift() {
        let col = |n: &str, t: &str| Column { name: n.into(), decl_type: t.into() };
        let saved = vec![col("id", "TEXT"), col("name", "TEXT")];
        type Case<'a> = (&'a [Column], Result<Vec<&'a str>, &'a str>);
        let cases: [Case<'_>; 5] = [
            (&[col("name", "TEXT"), col("id", "TEXT"), col("age", "INTEGER")], Ok(vec!["id", "name", "age"])),
            (&[col("id", "TEXT"), col("name", "TEXT")], Ok(vec!["id", "name"])),
            (
                &[col("id", "TEXT"), col("full_name", "TEXT")],
                Err(
                    "column \"name\" is no longer in the source (dropped or renamed; the source now has id, full_name)",
                ),
            ),
            (
                &[col("id", "INTEGER"), col("name", "TEXT")],
                Err("column \"id\" changed type from \"TEXT\" to \"INTEGER\""),
            ),
            (
                &[col("name", "TEXT")],
                Err("column \"id\" is no longer in the source (dropped or renamed; the source now has name)"),
            ),
        ];
        for (source, want) in cases {
            let got = merge_schema(Some(&saved), source)
                .map(|m| m.into_iter().map(|c| c.name).collect::<Vec<_>>())
                .map_err(|e| e.to_string());
            let want = want.map(|w| w.into_iter().map(str::to_owned).collect::<Vec<_>>()).map_err(str::to_owned);
            assert_eq!(got, want);
        }
        assert_eq!(merge_schema(None, &saved), Ok(saved.clone()));
        assert_eq!(merge_schema(Some(&[]), &saved), Ok(saved.clone()));
    }
}
