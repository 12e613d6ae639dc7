//! Rows, changes and changesets: what an extract is made of.
//!
//! A resource's rows all have the same columns; some of them form the key.
//! A [`Changeset`] is one numbered step of a resource's history at its
//! origin: upserts and deletes, never more than [`MAX_CHANGESET_ROWS`] rows.
//! It travels compressed and signed inside a [`crate::wire::SignedChangeset`]:
//! `body` encodes and decodes it (`bounded` counts rows and cells while
//! decoding), `schema` merges a source's columns into a resource's.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::node::NodeId;

mod body;
mod bounded;
mod owned;
mod schema;

pub use body::{BodyError, MAX_CHANGESET_BYTES, decode_changeset, encode_changeset, encode_changeset_of};
pub use schema::{SchemaDrift, merge_schema};

/// Most rows in one changeset; a large extract is cut into many.
pub const MAX_CHANGESET_ROWS: usize = 5_000;
/// Most cells (values of all its rows) in one changeset: what a decoded
/// changeset may hold in memory is bounded by this, not by what a peer claims.
pub const MAX_CHANGESET_CELLS: usize = 2_000_000;
/// Longest column or resource-code text accepted.
pub const MAX_NAME_LEN: usize = 64;

/// A cell's text: up to 24 bytes held in place, longer on the heap. Most
/// cells of a department's rows are short (names, codes, dates, phone
/// numbers), and a changeset of them is decoded, stored and freed without
/// an allocation for each (a third of a hub's work storing a first sync
/// went to allocating and freeing cells' text).
pub type Text = compact_str::CompactString;

/// One cell. It encodes as it would with a `String` for text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    // decoded from the borrowed bytes: one copy, not a zero-filled buffer read into
    Text(#[serde(deserialize_with = "owned::text")] Text),
    Blob(#[serde(deserialize_with = "owned::blob")] Vec<u8>),
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
            Cell::Text(t) => Value::Text(t.into()),
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

impl Change {
    /// Appends the bytes bincode gives `Change::Upsert` of a row, from the
    /// bytes it gives the row's values (as [`DigestKind::of`] leaves them
    /// in its buffer): a changed row is encoded once, when it is digested.
    pub fn put_upsert(values: &[u8], out: &mut Vec<u8>) {
        out.push(0);
        out.extend_from_slice(values);
    }

    /// Appends the bytes bincode gives `Change::Delete(key)`.
    pub fn put_delete(key: &[Value], out: &mut Vec<u8>) {
        out.push(1);
        put_varint(out, key.len() as u64);
        for v in key {
            put_cell(out, Cell::from(v));
        }
    }
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

/// A stable 16-byte digest of a row, for change detection.
pub fn row_digest(row: &[Value]) -> [u8; 16] {
    let cells: Vec<Cell<'_>> = row.iter().map(Cell::from).collect();
    cells_digest(&cells, &mut Vec::new())
}

/// [`row_digest`] of borrowed cells, encoding into `buf` (reused between rows).
pub fn cells_digest(row: &[Cell<'_>], buf: &mut Vec<u8>) -> [u8; 16] {
    DigestKind::Fnv.of(row, buf)
}

/// How the digests of a resource's saved rows are computed: the agent's
/// saved state records one kind per resource, fixed while it holds rows.
/// Both digest the cells' encoding (the bytes bincode gives their values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestKind {
    /// Two FNV-style lanes, a byte at a time: resources first synced before XXH3.
    Fnv,
    /// XXH3-128, eight bytes at a time: about ten times faster on a row.
    Xxh3,
}

impl DigestKind {
    /// The digest of `row`, encoding it into `buf` (reused between rows).
    pub fn of(self, row: &[Cell<'_>], buf: &mut Vec<u8>) -> [u8; 16] {
        buf.clear();
        put_varint(buf, row.len() as u64);
        for cell in row {
            put_cell(buf, *cell);
        }
        match self {
            DigestKind::Fnv => digest128(buf),
            DigestKind::Xxh3 => twox_hash::XxHash3_128::oneshot(buf),
        }
        .to_le_bytes()
    }

    /// Its number in `state.db`.
    pub fn code(self) -> i64 {
        match self {
            DigestKind::Fnv => 1,
            DigestKind::Xxh3 => 2,
        }
    }

    /// The kind numbered `code`, if this build knows it.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(DigestKind::Fnv),
            2 => Some(DigestKind::Xxh3),
            _ => None,
        }
    }
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

#[cfg(test)]
mod tests;
