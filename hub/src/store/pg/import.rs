//! A department's vault file moved into its schema (`gdx-hub migrate --to
//! postgres`): in one transaction under the department's role, each
//! resource's rows through the same conversions a changeset's rows take
//! (`apply::param`), the resources' numbers, epochs and every changeset's
//! digest and frame as they are, then every table verified, rows and an
//! order-free digest of each row's values as PostgreSQL keeps them, before
//! the commit. A schema that holds rows already is only verified.

use gdx_common::data::{Change, Column, ResourceCode, Value};
use gdx_files::quote_ident;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;

use super::apply::{Kept, Param, apply_rows, param};
use super::*;

/// Rows sent to `apply_rows` at a time.
const BATCH: usize = 5_000;

/// What moving one vault file did.
pub struct Imported {
    /// False when the schema held the rows already (a run before was cut short).
    pub copied: bool,
    /// Each table with its rows, resources first.
    pub tables: Vec<(String, u64)>,
}

/// A resource of a vault file: its table's columns and its key's positions.
pub struct FileResource {
    name: String,
    columns: Vec<Column>,
    key: Vec<usize>,
}

/// The resources of the vault file `file`, checked to be movable: every
/// table a resource's or the vault's own, and names PostgreSQL can hold.
/// Reads only.
pub fn file_resources(file: &rusqlite::Connection) -> Result<Vec<FileResource>, VaultError> {
    let listed: Vec<(String, String, String)> = file
        .prepare("SELECT resource, columns, key FROM _gdx_resources ORDER BY resource")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (name, columns, key) in listed {
        let bad = |what: String| VaultError::Schema(format!("resource {name}: {what}"));
        let columns: Vec<Column> =
            serde_json::from_str(&columns).map_err(|e| bad(format!("its columns cannot be read ({e})")))?;
        let key_names: Vec<String> =
            serde_json::from_str(&key).map_err(|e| bad(format!("its key cannot be read ({e})")))?;
        let key = key_names
            .iter()
            .map(|k| columns.iter().position(|c| c.name.eq_ignore_ascii_case(k)))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad("its key is not among its columns".into()))?;
        ident(&name)?;
        for c in &columns {
            ident(&c.name)?;
        }
        out.push(FileResource { name, columns, key });
    }
    let tables: Vec<String> = file
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let own = ["_gdx_resources", "_gdx_changesets", "_gdx_base_log", "audit_outbox"];
    if let Some(stray) = tables.iter().find(|t| !own.contains(&t.as_str()) && !out.iter().any(|r| &r.name == *t)) {
        return Err(VaultError::Schema(format!("it holds a table {stray} that no resource names")));
    }
    Ok(out)
}

/// Refuses the vault file `file` unless every value has a form in its
/// PostgreSQL column, no two keys become one there, every text is UTF-8,
/// and every resource's name is one. Reads the whole file; writes nothing.
pub fn check_file(file: &rusqlite::Connection) -> Result<(), VaultError> {
    for r in file_resources(file)? {
        ResourceCode::try_from(r.name.clone()).map_err(|e| VaultError::Schema(format!("resource {}: {e}", r.name)))?;
        let kept: Vec<Kept> = r.columns.iter().map(|c| Kept::of(&c.decl_type)).collect();
        let cols: Vec<String> = r.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let mut keys = std::collections::HashSet::new();
        let mut stmt = file.prepare(&format!("SELECT {} FROM {}", cols.join(", "), quote_ident(&r.name)))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let mut key = Digest::default();
            let mut key_text = Vec::new();
            let mut ps = Vec::with_capacity(kept.len());
            for (i, (k, c)) in kept.iter().zip(&r.columns).enumerate() {
                let raw = row.get_ref(i)?;
                if let rusqlite::types::ValueRef::Text(t) = raw
                    && std::str::from_utf8(t).is_err()
                {
                    return Err(VaultError::Schema(format!(
                        "resource {}: a value of column {} is not UTF-8 text; correct it at the source and sync the resource again",
                        r.name, c.name
                    )));
                }
                let v = value(raw);
                if r.key.contains(&i) {
                    key_text.push(gdx_common::grant::value_text(&v));
                }
                ps.push(param(&v, *k, &c.name).map_err(|e| {
                    VaultError::Schema(format!("resource {}, the row of key {}: {e}", r.name, key_text.join(", ")))
                })?);
            }
            let key_params: Vec<Param> = r.key.iter().map(|&i| ps[i].clone()).collect();
            key.add(&key_params);
            if !keys.insert(key.sum) {
                return Err(VaultError::Schema(format!(
                    "resource {}: two rows have keys that are one and the same in PostgreSQL (one of them: {}); \
                     declare the key column's type at the source so that its values keep one form",
                    r.name,
                    key_text.join(", ")
                )));
            }
        }
    }
    Ok(())
}

impl PgVaults {
    /// Makes the next number of `node`'s base log follow `upto`, the last a
    /// base read of it: a log made after the base (its vault moved, or made
    /// again, after the base's progress was recorded) would otherwise number
    /// new entries below it, and the merge would pass them by.
    pub fn base_log_past(&self, node: &NodeId, upto: i64) -> Result<(), VaultError> {
        let names = self.names(node)?;
        self.as_department(&names, |tx, s| {
            let pg = |e| self.error(e);
            tx.batch_execute(&super::base_log_table(s)).map_err(pg)?;
            let sequence: String = tx
                .query_one("SELECT pg_catalog.pg_get_serial_sequence($1, 'id')", &[&format!("{s}._gdx_base_log")])
                .map_err(pg)?
                .get(0);
            // the sequence's name as the server quotes it
            let row = tx.query_one(&format!("SELECT last_value, is_called FROM {sequence}"), &[]).map_err(pg)?;
            let (last, called): (i64, bool) = (row.get(0), row.get(1));
            let next = if called { last + 1 } else { last };
            if next <= upto {
                tx.execute("SELECT pg_catalog.setval($1::regclass, $2, false)", &[&sequence, &(upto + 1)])
                    .map_err(pg)?;
            }
            Ok(())
        })
    }

    /// Copies the vault file `file` of `node` into its schema and verifies
    /// it, in one transaction; nothing is committed unless every table
    /// agrees. `file` is read in a read transaction of the caller's.
    pub fn import(&self, node: &NodeId, file: &rusqlite::Connection) -> Result<Imported, VaultError> {
        let resources = file_resources(file)?;
        // events left in the outbox would stay in the set-aside file, never logged
        let waiting: i64 = file.query_row("SELECT count(*) FROM audit_outbox", [], |r| r.get(0))?;
        if waiting > 0 {
            return Err(VaultError::Schema(format!(
                "{waiting} audit events still wait in its outbox, which the audit log could not take; run migrate again"
            )));
        }
        let names = self.names(node)?;
        self.as_department(&names, |tx, s| {
            let held: i64 = tx
                .query_one(
                    &format!(
                        "SELECT (SELECT count(*) FROM {s}._gdx_resources) + (SELECT count(*) FROM {s}._gdx_changesets)"
                    ),
                    &[],
                )
                .map_err(|e| self.error(e))?
                .get(0);
            let copied = held == 0;
            if copied {
                for r in &resources {
                    copy_rows(tx, s, node, file, r).map_err(|e| self.failed(e))?;
                }
                copy_own(tx, s, file).map_err(|e| self.failed(e))?;
            }
            let tables = verify(tx, s, file, &resources).map_err(|e| match (copied, self.failed(e)) {
                (false, VaultError::Schema(why)) => VaultError::Schema(format!(
                    "{why}. The schema {s} held rows before this run (an earlier run, or the hub on PostgreSQL); \
                     to move the file again from the start, the database's administrator runs \
                     DROP SCHEMA {s} CASCADE and DELETE FROM gdx_hub.vaults WHERE node = '{node}'"
                )),
                (_, e) => e,
            })?;
            Ok(Imported { copied, tables })
        })
    }
}

/// A value read from a vault file.
fn value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => Value::Null,
        V::Integer(i) => Value::Integer(i),
        V::Real(f) => Value::Real(f),
        V::Text(t) => Value::Text(String::from_utf8_lossy(t).into()),
        V::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// The rows of resource `r` into its table, made as a changeset's first rows make it.
fn copy_rows(
    tx: &mut Transaction<'_>,
    s: &str,
    node: &NodeId,
    file: &rusqlite::Connection,
    r: &FileResource,
) -> Result<(), Failed> {
    let t = format!("{s}.{}", ident(&r.name)?);
    let resource =
        ResourceCode::try_from(r.name.clone()).map_err(|e| VaultError::Schema(format!("resource {}: {e}", r.name)))?;
    let cols: Vec<String> = r.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let mut stmt =
        file.prepare(&format!("SELECT {} FROM {}", cols.join(", "), quote_ident(&r.name))).map_err(VaultError::from)?;
    let mut rows = stmt.query([]).map_err(VaultError::from)?;
    let mut known = None;
    loop {
        let mut changes = Vec::with_capacity(BATCH);
        while changes.len() < BATCH {
            let Some(row) = rows.next().map_err(VaultError::from)? else { break };
            let values: Vec<Value> = (0..r.columns.len())
                .map(|i| row.get_ref(i).map(value))
                .collect::<Result<_, _>>()
                .map_err(VaultError::from)?;
            changes.push(Change::Upsert(values));
        }
        let last = changes.len() < BATCH;
        if !changes.is_empty() || known.is_none() {
            let cs = gdx_common::data::Changeset {
                origin: node.clone(),
                resource: resource.clone(),
                seq: 0,
                epoch: 0,
                columns: r.columns.clone(),
                key: r.key.clone(),
                changes,
                created_at: 0,
            };
            // a table this migration made, filled from a file's rows (unique keys)
            known = Some(apply_rows(tx, &t, known, &cs, true)?);
        }
        if last {
            return Ok(());
        }
    }
}

/// The vault's own tables: each resource's number, epoch and forwarding,
/// and every changeset's digest and frame, as they are.
fn copy_own(tx: &mut Transaction<'_>, s: &str, file: &rusqlite::Connection) -> Result<(), Failed> {
    let mut stmt = file
        .prepare("SELECT resource, columns, key, last_seq, updated_at, epoch, forwarded_seq, forward_error FROM _gdx_resources")
        .map_err(VaultError::from)?;
    let mut rows = stmt.query([]).map_err(VaultError::from)?;
    while let Some(r) = rows.next().map_err(VaultError::from)? {
        let (resource, columns, key): (String, String, String) = (
            r.get(0).map_err(VaultError::from)?,
            r.get(1).map_err(VaultError::from)?,
            r.get(2).map_err(VaultError::from)?,
        );
        let numbers: [i64; 4] = [
            r.get(3).map_err(VaultError::from)?,
            r.get(4).map_err(VaultError::from)?,
            r.get(5).map_err(VaultError::from)?,
            r.get(6).map_err(VaultError::from)?,
        ];
        let error: Option<String> = r.get(7).map_err(VaultError::from)?;
        tx.execute(
            &format!(
                "INSERT INTO {s}._gdx_resources (resource, columns, key, last_seq, updated_at, epoch, forwarded_seq, forward_error)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            &[&resource, &columns, &key, &numbers[0], &numbers[1], &numbers[2], &numbers[3], &error],
        )?;
    }
    let mut stmt =
        file.prepare("SELECT resource, seq, digest, frame FROM _gdx_changesets").map_err(VaultError::from)?;
    let mut rows = stmt.query([]).map_err(VaultError::from)?;
    let insert = format!("INSERT INTO {s}._gdx_changesets (resource, seq, digest, frame) VALUES ($1, $2, $3, $4)");
    while let Some(r) = rows.next().map_err(VaultError::from)? {
        let resource: String = r.get(0).map_err(VaultError::from)?;
        let seq: i64 = r.get(1).map_err(VaultError::from)?;
        let digest: Vec<u8> = r.get(2).map_err(VaultError::from)?;
        let frame: Option<Vec<u8>> = r.get(3).map_err(VaultError::from)?;
        tx.execute_typed(
            &insert,
            &[(&resource, Type::TEXT), (&seq, Type::INT8), (&digest, Type::BYTEA), (&frame, Type::BYTEA)],
        )?;
    }
    // the keys waiting for a base's merge, under their ids (the base's progress names them), and the
    // next id after the highest the file ever gave (AUTOINCREMENT: ids never return)
    tx.batch_execute(&super::base_log_table(s))?;
    let mut stmt = file.prepare("SELECT id, resource, seq, at, key FROM _gdx_base_log").map_err(VaultError::from)?;
    let mut rows = stmt.query([]).map_err(VaultError::from)?;
    let insert = format!("INSERT INTO {s}._gdx_base_log (id, resource, seq, at, key) VALUES ($1, $2, $3, $4, $5)");
    while let Some(r) = rows.next().map_err(VaultError::from)? {
        let (id, resource, seq, at, key): (i64, String, i64, i64, Option<String>) = (
            r.get(0).map_err(VaultError::from)?,
            r.get(1).map_err(VaultError::from)?,
            r.get(2).map_err(VaultError::from)?,
            r.get(3).map_err(VaultError::from)?,
            r.get(4).map_err(VaultError::from)?,
        );
        tx.execute(&insert, &[&id, &resource, &seq, &at, &key])?;
    }
    let given: i64 = file
        .query_row(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '_gdx_base_log'), 0),
                        coalesce((SELECT max(id) FROM _gdx_base_log), 0))",
            [],
            |r| r.get(0),
        )
        .map_err(VaultError::from)?;
    tx.execute(
        "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence($1, 'id'), $2, false)",
        &[&format!("{s}._gdx_base_log"), &(given + 1)],
    )?;
    Ok(())
}

/// An order-free digest of rows: the count, and the wrapping sum of each
/// row's hash.
#[derive(Default, PartialEq, Eq, Debug)]
struct Digest {
    rows: u64,
    sum: u128,
}

impl Digest {
    fn add(&mut self, row: &[Param]) {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for p in row {
            match p {
                Param::Null => ctx.update(&[0]),
                Param::Text(t) => {
                    ctx.update(&[1]);
                    ctx.update(&(t.len() as u64).to_le_bytes());
                    ctx.update(t.as_bytes());
                }
                Param::Bytes(b) => {
                    ctx.update(&[2]);
                    ctx.update(&(b.len() as u64).to_le_bytes());
                    ctx.update(b);
                }
            }
        }
        let h = ctx.finish();
        let mut first = [0u8; 16];
        first.copy_from_slice(&h.as_ref()[..16]);
        self.rows += 1;
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
    }
}

/// A value of the vault's own tables as it is compared.
fn own(v: &Value) -> Param {
    match v {
        Value::Null => Param::Null,
        Value::Integer(i) => Param::Text(i.to_string()),
        Value::Real(f) => Param::Text(format!("{f:?}")),
        Value::Text(t) => Param::Text(t.to_string()),
        Value::Blob(b) => Param::Bytes(b.clone()),
    }
}

/// Every table compared on both sides: the resources' rows as PostgreSQL
/// keeps them (the file's values through `param`, the schema's read back
/// through it), the vault's own tables value for value.
fn verify(
    tx: &mut Transaction<'_>,
    s: &str,
    file: &rusqlite::Connection,
    resources: &[FileResource],
) -> Result<Vec<(String, u64)>, Failed> {
    let mut tables = Vec::new();
    for r in resources {
        let kept: Vec<Kept> = r.columns.iter().map(|c| Kept::of(&c.decl_type)).collect();
        let cols: Vec<String> = r.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let mut here = Digest::default();
        let mut stmt = file
            .prepare(&format!("SELECT {} FROM {}", cols.join(", "), quote_ident(&r.name)))
            .map_err(VaultError::from)?;
        let mut rows = stmt.query([]).map_err(VaultError::from)?;
        while let Some(row) = rows.next().map_err(VaultError::from)? {
            let mut ps = Vec::with_capacity(kept.len());
            for (i, (k, c)) in kept.iter().zip(&r.columns).enumerate() {
                ps.push(param(&value(row.get_ref(i).map_err(VaultError::from)?), *k, &c.name)?);
            }
            here.add(&ps);
        }
        let t = format!("{s}.{}", ident(&r.name)?);
        let pg_cols: Vec<String> = r.columns.iter().map(|c| ident(&c.name)).collect::<Result<_, _>>()?;
        let mut there = Digest::default();
        let sql = format!("SELECT {} FROM {t}", pg_cols.join(", "));
        // streamed, not loaded whole: a department's table can be large
        let mut streamed = tx.query_raw(sql.as_str(), std::iter::empty::<i64>())?;
        while let Some(row) = streamed.next()? {
            let mut ps = Vec::with_capacity(kept.len());
            for (i, (k, c)) in kept.iter().zip(&r.columns).enumerate() {
                let v = match k {
                    Kept::Bigint => row.get::<_, Option<i64>>(i).map_or(Value::Null, Value::Integer),
                    Kept::Double => row.get::<_, Option<f64>>(i).map_or(Value::Null, Value::Real),
                    Kept::Bytes => row.get::<_, Option<Vec<u8>>>(i).map_or(Value::Null, Value::Blob),
                    Kept::Text => row.get::<_, Option<String>>(i).map_or(Value::Null, |t| Value::Text(t.into())),
                };
                ps.push(param(&v, *k, &c.name)?);
            }
            there.add(&ps);
        }
        compare(&r.name, &here, &there)?;
        tables.push((r.name.clone(), here.rows));
    }
    let own_tables = [
        ("_gdx_resources", "resource, columns, key, last_seq, updated_at, epoch, forwarded_seq, forward_error"),
        ("_gdx_changesets", "resource, seq, digest, frame"),
        ("_gdx_base_log", "id, resource, seq, at, key"),
    ];
    for (table, columns) in own_tables {
        let mut here = Digest::default();
        let mut stmt = file.prepare(&format!("SELECT {columns} FROM {table}")).map_err(VaultError::from)?;
        let width = stmt.column_count();
        let mut rows = stmt.query([]).map_err(VaultError::from)?;
        while let Some(row) = rows.next().map_err(VaultError::from)? {
            let ps: Vec<Param> = (0..width)
                .map(|i| row.get_ref(i).map(|v| own(&value(v))))
                .collect::<Result<_, _>>()
                .map_err(VaultError::from)?;
            here.add(&ps);
        }
        let mut there = Digest::default();
        let sql = format!("SELECT {columns} FROM {s}.{table}");
        // streamed: every changeset's frame is here
        let mut streamed = tx.query_raw(sql.as_str(), std::iter::empty::<i64>())?;
        while let Some(row) = streamed.next()? {
            let ps: Vec<Param> = (0..row.len())
                .map(|i| {
                    let t = row.columns()[i].type_();
                    let v = if *t == Type::INT8 {
                        row.get::<_, Option<i64>>(i).map_or(Value::Null, Value::Integer)
                    } else if *t == Type::BYTEA {
                        row.get::<_, Option<Vec<u8>>>(i).map_or(Value::Null, Value::Blob)
                    } else {
                        row.get::<_, Option<String>>(i).map_or(Value::Null, |t| Value::Text(t.into()))
                    };
                    own(&v)
                })
                .collect();
            there.add(&ps);
        }
        compare(table, &here, &there)?;
        tables.push((table.to_owned(), here.rows));
    }
    Ok(tables)
}

fn compare(table: &str, here: &Digest, there: &Digest) -> Result<(), Failed> {
    if here == there {
        return Ok(());
    }
    Err(Failed::Vault(VaultError::Schema(format!(
        "table {table} differs in PostgreSQL ({} rows there, {} in the file); nothing of this run was committed",
        there.rows, here.rows
    ))))
}
