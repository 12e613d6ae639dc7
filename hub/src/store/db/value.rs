//! Values as both engines carry them: SQLite's five kinds. A store binds
//! [`ToValue`]s and reads a [`Row`]'s columns as any [`FromValue`].

use rusqlite::types::{ToSqlOutput, ValueRef};

use super::DbError;

/// One value: SQLite's storage classes, which PostgreSQL's columns map to.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Integer(_) => "an integer",
            Value::Real(_) => "a real number",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }
}

/// What can be bound to a statement's parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for gdx_common::data::Text {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
macro_rules! integer_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                // every count and time the stores keep fits; a larger one is kept at the limit
                Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
integer_to_value!(i64, i32, i16, u8, u16, u32, u64, usize);
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(v: &Value, column: usize) -> Result<Self, DbError>;
}

fn wrong<T>(v: &Value, column: usize, wanted: &'static str) -> Result<T, DbError> {
    Err(DbError::Kind { column, wanted, found: v.kind() })
}

impl FromValue for Value {
    fn from_value(v: &Value, _: usize) -> Result<Self, DbError> {
        Ok(v.clone())
    }
}
impl FromValue for String {
    fn from_value(v: &Value, column: usize) -> Result<Self, DbError> {
        match v {
            Value::Text(t) => Ok(t.clone()),
            _ => wrong(v, column, "text"),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value, column: usize) -> Result<Self, DbError> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(t) => Ok(t.as_bytes().to_vec()),
            _ => wrong(v, column, "bytes"),
        }
    }
}
impl<const N: usize> FromValue for [u8; N] {
    fn from_value(v: &Value, column: usize) -> Result<Self, DbError> {
        match v {
            Value::Blob(b) => b.as_slice().try_into().or_else(|_| wrong(v, column, "bytes of the right length")),
            _ => wrong(v, column, "bytes"),
        }
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value, column: usize) -> Result<Self, DbError> {
        match v {
            Value::Real(r) => Ok(*r),
            Value::Integer(i) => Ok(*i as f64),
            _ => wrong(v, column, "a number"),
        }
    }
}
impl FromValue for bool {
    fn from_value(v: &Value, column: usize) -> Result<Self, DbError> {
        match v {
            Value::Integer(i) => Ok(*i != 0),
            _ => wrong(v, column, "a truth value"),
        }
    }
}
macro_rules! integer_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value, column: usize) -> Result<Self, DbError> {
                match v {
                    Value::Integer(i) => <$t>::try_from(*i).or_else(|_| wrong(v, column, stringify!($t))),
                    _ => wrong(v, column, "an integer"),
                }
            }
        }
    )*};
}
integer_from_value!(i64, i32, i16, u8, u16, u32, u64, usize);
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value, column: usize) -> Result<Self, DbError> {
        match v {
            Value::Null => Ok(None),
            _ => T::from_value(v, column).map(Some),
        }
    }
}

/// One row of a query's answer.
#[derive(Clone, Debug)]
pub struct Row {
    pub(super) values: Vec<Value>,
}

impl Row {
    /// Column `i` (from 0) as a `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, DbError> {
        let v = self.values.get(i).ok_or(DbError::Kind { column: i, wanted: "a column", found: "nothing" })?;
        T::from_value(v, i)
    }

    /// How many columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the row has no column.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn from_sqlite(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Runs a query on a SQLite connection, row by row.
pub(super) fn query_sqlite<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Value],
    mut f: impl FnMut(&Row) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let n = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let values = (0..n).map(|i| r.get_ref(i).map(from_sqlite)).collect::<Result<_, _>>()?;
        out.push(f(&Row { values })?);
    }
    Ok(out)
}
