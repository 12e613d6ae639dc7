//! What of a changeset travels under a grant: the granted columns, the
//! sensitive ones masked, rows addressed by their key or by its pseudonym;
//! and the text forms of values and rows that deliveries and lookups use.

use super::RequestRecord;
use crate::data::{Change, Changeset, Column, Value};

/// The column that addresses delivered rows when a key column is masked.
pub const PSEUDONYM_COLUMN: &str = "gdx_key";

/// The suffix of the column that tells where a field of a hub's base
/// database came from (`name__source` beside `name`): it travels whenever
/// its field does, and is never masked.
pub const PROVENANCE_SUFFIX: &str = "__source";

/// What joins a field to its companion columns in a hub's base database
/// (`parcel__source`, `parcel__area_m2`, `parcel__bbox`). Only changesets a
/// hub publishes (origin `DIVISION/hub`) have companions; in a department's
/// changeset `a__b` is a column like any other.
pub const COMPANION: &str = "__";

/// The part of changeset `cs` that `record` lets travel, numbered `n`: the
/// granted columns, the sensitive ones masked; every other column stays
/// behind. Rows are addressed by their key when every key column is granted
/// in clear; otherwise by [`PSEUDONYM_COLUMN`], which `pseudonym` makes from
/// the key's text ([`key_text`]), so that the same row always gets the same
/// value without the key leaving the vault.
pub fn deliverable(cs: &Changeset, record: &RequestRecord, n: u64, pseudonym: &dyn Fn(&str) -> String) -> Changeset {
    let has = |list: &[String], name: &str| list.iter().any(|c| c.eq_ignore_ascii_case(name));
    // a companion travels with its field: its source always, what is computed of it only in clear
    let companions = cs.origin.is_hub_id();
    let granted = |name: &str| match name.split_once(COMPANION).filter(|(of, _)| companions && !of.is_empty()) {
        Some((of, _)) if name.ends_with(PROVENANCE_SUFFIX) => has(&record.columns, of),
        Some((of, _)) => has(&record.columns, of) && !has(&record.masked, of),
        None => has(&record.columns, name),
    };
    let keep: Vec<usize> = (0..cs.columns.len()).filter(|i| granted(&cs.columns[*i].name)).collect();
    let masked: Vec<bool> = keep.iter().map(|i| has(&record.masked, &cs.columns[*i].name)).collect();
    let hide_key = cs.key.iter().any(|k| !keep.contains(k) || has(&record.masked, &cs.columns[*k].name));
    let project = |row: &[Value]| -> Vec<Value> {
        keep.iter()
            .zip(&masked)
            .map(|(&i, &m)| match (&row[i], m) {
                (Value::Null, _) | (_, false) => row[i].clone(),
                (v, true) => Value::Text(mask(&value_text(v)).into()),
            })
            .collect()
    };
    let changes = cs
        .changes
        .iter()
        .map(|c| {
            let key = || Value::Text(pseudonym(&key_text(&cs.key_of(c))).into());
            match (c, hide_key) {
                (Change::Upsert(row), false) => Change::Upsert(project(row)),
                (Change::Upsert(row), true) => Change::Upsert(std::iter::once(key()).chain(project(row)).collect()),
                (Change::Delete(k), false) => Change::Delete(k.clone()),
                (Change::Delete(_), true) => Change::Delete(vec![key()]),
            }
        })
        .collect();
    let mut columns: Vec<Column> = keep
        .iter()
        .zip(&masked)
        .map(|(&i, &m)| {
            let c = &cs.columns[i];
            Column { name: c.name.clone(), decl_type: if m { "TEXT".into() } else { c.decl_type.clone() } }
        })
        .collect();
    let key = if hide_key {
        columns.insert(0, Column { name: PSEUDONYM_COLUMN.into(), decl_type: "TEXT".into() });
        vec![0]
    } else {
        cs.key.iter().filter_map(|k| keep.iter().position(|i| i == k)).collect()
    };
    Changeset {
        origin: cs.origin.clone(),
        resource: cs.resource.clone(),
        seq: n,
        epoch: cs.epoch,
        columns,
        key,
        changes,
        created_at: cs.created_at,
    }
}

/// A value as text, for masking, key matching and listings.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => s.to_string(),
        Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// Key values joined as text, so that a key typed by a person matches.
pub fn key_text(values: &[&Value]) -> String {
    values.iter().map(|v| value_text(v)).collect::<Vec<_>>().join("\u{1f}")
}

/// A row as a JSON object of its columns.
pub fn row_json(columns: &[Column], row: &[Value]) -> serde_json::Value {
    let map = columns.iter().zip(row).map(|(c, v)| (c.name.clone(), value_json(v))).collect();
    serde_json::Value::Object(map)
}

/// One value as JSON: numbers as numbers, the rest as text.
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => (*i).into(),
        Value::Real(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
        other => value_text(other).into(),
    }
}

/// Masks a sensitive value for delivery: an 18-character ID number keeps its
/// first 6 and last 4 characters, a phone number its first 3 and last 4,
/// anything else its first and last character.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let (head, tail) = match chars.len() {
        18 | 15 => (6, 4),
        11 => (3, 4),
        0..=2 => return "*".repeat(chars.len()),
        _ => (1, 1),
    };
    let stars = chars.len() - head - tail;
    chars[..head].iter().collect::<String>()
        + &"*".repeat(stars)
        + &chars[chars.len() - tail..].iter().collect::<String>()
}
