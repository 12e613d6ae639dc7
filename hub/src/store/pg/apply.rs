//! Applying a changeset to a department's schema, inside the transaction
//! `PgVaults::apply` opened under the department's role: the rules of
//! exactly once (`super::super::vault::plan`), the rows (created and widened
//! tables, upserts and deletes in key order, long runs through `COPY`),
//! and the resource's number, digest, frame and audit event in one
//! statement; values converted as SQLite's affinities convert them.

use gdx_common::data::{Change, Changeset, Column, Value, cmp_change_keys};
use postgres::Transaction;
use postgres::types::{ToSql, Type};

use super::ident;
use crate::store::vault::{Applied, Head, Then, VaultError, changeset_event, duplicate, plan};

/// A run of upserts this long goes through `COPY` rather than statements.
const COPY_FROM: usize = 512;
/// Rows an upsert statement carries at most.
const UPSERT_ROWS: usize = 32;
/// PostgreSQL's limit on a statement's parameters is 65,535; kept below.
const MAX_PARAMETERS: usize = 60_000;

/// A failure inside a vault's transaction.
pub(super) enum Failed {
    Pg(postgres::Error),
    Vault(VaultError),
}

impl From<postgres::Error> for Failed {
    fn from(e: postgres::Error) -> Self {
        Failed::Pg(e)
    }
}

impl From<VaultError> for Failed {
    fn from(e: VaultError) -> Self {
        Failed::Vault(e)
    }
}

/// Applies `cs` in schema `s` (in `tx`, under the department's role and
/// the vault's lock); with [`Applied::Applied`], the resource's head as
/// written.
pub(super) fn apply(
    tx: &mut Transaction<'_>,
    s: &str,
    cs: &Changeset,
    digest: &[u8; 32],
    frame: Option<&[u8]>,
    member: bool,
    now: i64,
) -> Result<(Applied, Option<Head>), Failed> {
    let table = cs.resource.as_str();
    let meta = tx.query_typed_opt(
        &format!("SELECT columns, key, last_seq, epoch FROM {s}._gdx_resources WHERE resource = $1"),
        &[(&table, Type::TEXT)],
    )?;
    let meta: Option<Head> = meta.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)));
    let t = format!("{s}.{}", ident(table)?);
    let step = plan(meta.as_ref(), cs)?;
    if step.reset {
        tx.batch_execute(&format!("DELETE FROM {t}"))?;
        tx.execute(&format!("DELETE FROM {s}._gdx_changesets WHERE resource = $1"), &[&table])?;
        if member {
            // every key the base took from this resource is looked at again
            tx.batch_execute(&super::base_log_table(s))?;
            tx.execute(
                &format!("INSERT INTO {s}._gdx_base_log (resource, seq, at, key) VALUES ($1, $2, $3, NULL)"),
                &[&table, &(cs.seq as i64), &now],
            )?;
        }
    }
    let known = match step.then {
        Then::Apply { known } => known,
        Then::Gap { expected } => return Ok((Applied::Gap { expected }, None)),
        Then::Duplicate => {
            let seen = tx.query_opt(
                &format!("SELECT digest FROM {s}._gdx_changesets WHERE resource = $1 AND seq = $2"),
                &[&table, &(cs.seq as i64)],
            )?;
            return Ok((duplicate(seen.map(|r| r.get::<_, Vec<u8>>(0)).as_deref(), digest, cs)?, None));
        }
    };
    let key_names: Vec<String> = cs.key.iter().map(|&i| cs.columns[i].name.clone()).collect();
    let empty = known.is_none() || step.reset;
    let columns = apply_rows(tx, &t, known, cs, empty)?;
    if member {
        // the keys this changeset touched, for the base merge, committed with it (in a log
        // that a vault made before its resource became a member gains now)
        tx.batch_execute(&super::base_log_table(s))?;
        let first_key = cs.key.first().copied().unwrap_or(0);
        let keys: Vec<Option<String>> = cs
            .changes
            .iter()
            .map(|change| match change {
                Change::Upsert(values) => values.get(first_key),
                Change::Delete(values) => values.first(),
            })
            .map(|v| v.map(gdx_common::grant::value_text))
            .collect();
        tx.execute(
            &format!(
                "INSERT INTO {s}._gdx_base_log (resource, seq, at, key)
                 SELECT $1, $2, $3, k FROM unnest($4::text[]) WITH ORDINALITY AS u(k, n) ORDER BY n"
            ),
            &[&table, &(cs.seq as i64), &now, &keys],
        )?;
    }
    let json = |e: serde_json::Error| VaultError::Schema(format!("{table}: {e}"));
    let (columns_json, key_json) =
        (serde_json::to_string(&columns).map_err(json)?, serde_json::to_string(&key_names).map_err(json)?);
    let event = serde_json::to_string(&changeset_event(cs, digest, now)).map_err(json)?;
    // the resource's number, the changeset's digest and frame, and its audit event: one statement
    tx.execute_typed(
        &bookkeeping(s, ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9"]),
        &[
            (&table, Type::TEXT),
            (&columns_json, Type::TEXT),
            (&key_json, Type::TEXT),
            (&(cs.seq as i64), Type::INT8),
            (&now, Type::INT8),
            (&(cs.epoch as i64), Type::INT8),
            (&digest.as_slice(), Type::BYTEA),
            (&frame, Type::BYTEA),
            (&event, Type::TEXT),
        ],
    )?;
    Ok((Applied::Applied, Some((columns_json, key_json, cs.seq as i64, cs.epoch as i64))))
}

/// The statement that records an applied changeset in schema `s`: the
/// resource's columns, key, number, time and epoch, the changeset's digest
/// and frame, and its audit event, given as `v` (placeholders or literals,
/// in that order: resource, columns, key, number, time, epoch, digest,
/// frame, event).
pub(super) fn bookkeeping(s: &str, v: [&str; 9]) -> String {
    let [resource, columns, key, seq, now, epoch, digest, frame, event] = v;
    format!(
        "WITH resource AS (
             INSERT INTO {s}._gdx_resources AS r (resource, columns, key, last_seq, updated_at, epoch)
             VALUES ({resource}, {columns}, {key}, {seq}, {now}, {epoch})
             ON CONFLICT (resource) DO UPDATE SET columns = excluded.columns, last_seq = excluded.last_seq,
                 updated_at = excluded.updated_at, epoch = excluded.epoch,
                 forwarded_seq = CASE WHEN r.epoch <> excluded.epoch THEN 0 ELSE r.forwarded_seq END,
                 forward_error = CASE WHEN r.epoch <> excluded.epoch THEN NULL ELSE r.forward_error END
         ), changeset AS (
             INSERT INTO {s}._gdx_changesets (resource, seq, digest, frame) VALUES ({resource}, {seq}, {digest}, {frame})
             ON CONFLICT (resource, seq) DO UPDATE SET digest = excluded.digest, frame = excluded.frame
         )
         INSERT INTO {s}.audit_outbox (event) VALUES ({event})"
    )
}

/// How a column is kept in PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kept {
    Bigint,
    Double,
    Bytes,
    /// Everything else, dates and decimals too: as the text SQLite would
    /// give back, so that nothing the source sends is refused for its form.
    Text,
}

impl Kept {
    /// From a declared type, by SQLite's affinity.
    pub(super) fn of(decl: &str) -> Self {
        match gdx_files::tables::affinity(decl) {
            "INTEGER" => Kept::Bigint,
            "REAL" => Kept::Double,
            "BLOB" => Kept::Bytes,
            _ => Kept::Text,
        }
    }

    pub(super) fn sql(self) -> &'static str {
        match self {
            Kept::Bigint => "BIGINT",
            Kept::Double => "DOUBLE PRECISION",
            Kept::Bytes => "BYTEA",
            Kept::Text => "TEXT",
        }
    }

    /// The placeholder for parameter `n`: bytes as they are, everything
    /// else sent as text and converted by the server.
    fn placeholder(self, n: usize) -> String {
        match self {
            Kept::Bytes => format!("${n}"),
            Kept::Text => format!("${n}::text"),
            _ => format!("CAST(${n}::text AS {})", self.sql()),
        }
    }
}

/// A value made ready for its column: what is compared to find one key
/// twice in a statement, and what is sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Param {
    Null,
    Text(String),
    Bytes(Vec<u8>),
}

impl Param {
    fn boxed(&self) -> Box<dyn ToSql + Sync> {
        match self {
            Param::Null => Box::new(None::<String>),
            Param::Text(t) => Box::new(t.clone()),
            Param::Bytes(b) => Box::new(b.clone()),
        }
    }

    fn null_as(kept: Kept) -> Box<dyn ToSql + Sync> {
        if kept == Kept::Bytes { Box::new(None::<Vec<u8>>) } else { Box::new(None::<String>) }
    }
}

/// `v` made ready for column `name` kept as `kept`, converting as SQLite's
/// affinity does (an integral real or a numeric text into an integer
/// column becomes the integer, a number into a text column its text); a
/// value that has no form there refuses the changeset, saying which.
pub(super) fn param(v: &Value, kept: Kept, name: &str) -> Result<Param, VaultError> {
    let refused = |what: &str| {
        VaultError::Schema(format!(
            "column {name} is kept as {} but a value is {what}; declare the column's type at the source as what it holds",
            kept.sql()
        ))
    };
    Ok(match (kept, v) {
        (_, Value::Null) => Param::Null,
        (Kept::Bytes, Value::Blob(b)) => Param::Bytes(b.clone()),
        (Kept::Bytes, Value::Text(t)) => Param::Bytes(t.as_bytes().to_vec()),
        (Kept::Bytes, _) => return Err(refused("a number")),
        (_, Value::Blob(_)) => return Err(refused("binary")),
        (Kept::Text, Value::Text(t)) => Param::Text(t.to_string()),
        (Kept::Text, Value::Integer(i)) => Param::Text(i.to_string()),
        (Kept::Text, Value::Real(f)) => Param::Text(real_text(*f)),
        (Kept::Bigint, Value::Integer(i)) => Param::Text(i.to_string()),
        (Kept::Bigint, Value::Real(f)) => {
            Param::Text(integral(*f).ok_or_else(|| refused(&format!("{f}")))?.to_string())
        }
        (Kept::Bigint, Value::Text(t)) => {
            let t = t.trim();
            let n = t.parse::<i64>().ok().or_else(|| t.parse::<f64>().ok().and_then(integral));
            Param::Text(n.ok_or_else(|| refused(&format!("the text {t:?}")))?.to_string())
        }
        (Kept::Double, Value::Integer(i)) => Param::Text(real_text(*i as f64)),
        (Kept::Double, Value::Real(f)) => Param::Text(real_text(*f)),
        (Kept::Double, Value::Text(t)) => {
            Param::Text(real_text(t.trim().parse::<f64>().map_err(|_| refused(&format!("the text {t:?}")))?))
        }
    })
}

/// `row` as a line of `COPY`'s text format: tab-separated, `\N` for NULL,
/// backslash escapes, bytes as bytea's `\x` hex.
fn copy_line(row: &[Param], out: &mut Vec<u8>) {
    for (i, p) in row.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match p {
            Param::Null => out.extend_from_slice(b"\\N"),
            Param::Text(t) => {
                for &b in t.as_bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        _ => out.push(b),
                    }
                }
            }
            Param::Bytes(bytes) => {
                out.extend_from_slice(b"\\\\x");
                for b in bytes {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
            }
        }
    }
    out.push(b'\n');
}

/// Sends `rows` through `copy` (a `COPY … FROM STDIN`): the outer error is
/// the link's, the inner the server's answer at the end, which the caller
/// may take as "not this way".
fn copy_rows(tx: &mut Transaction<'_>, copy: &str, rows: &[Vec<Param>]) -> Result<Result<(), postgres::Error>, Failed> {
    let mut writer = match tx.copy_in(copy) {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    let mut line = Vec::new();
    for row in rows {
        line.clear();
        copy_line(row, &mut line);
        std::io::Write::write_all(&mut writer, &line).map_err(|e| VaultError::Postgres(e.to_string()))?;
    }
    Ok(writer.finish().map(drop))
}

/// Typed parameters as the client takes them.
fn refs(params: &[(Box<dyn ToSql + Sync>, Type)]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    params.iter().map(|(p, t)| (p.as_ref(), t.clone())).collect()
}

/// `f` as an integer, when it is one.
fn integral(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}

/// A real number as PostgreSQL reads it back exactly.
fn real_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == 0.0 {
        // -0 is 0, as a key and as SQLite keeps it
        "0.0".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        format!("{f:?}")
    }
}

/// Applies `cs`'s rows to table `t` (schema-qualified): creates it when
/// `known` is None, adds new columns (a name the table has in another case
/// is the same column, as in SQLite), upserts and deletes in key order;
/// `empty`: the table holds none of the changeset's keys (made or emptied
/// in this transaction, or being filled by a migration). Long runs of
/// upserts are copied straight into the table (otherwise in a savepoint,
/// undone when a key is there already, and then upserted from a scratch
/// table).
/// Returns the table's columns after it.
pub(super) fn apply_rows(
    tx: &mut Transaction<'_>,
    t: &str,
    known: Option<Vec<Column>>,
    cs: &Changeset,
    empty: bool,
) -> Result<Vec<Column>, Failed> {
    let kept: Vec<Kept> = cs.columns.iter().map(|c| Kept::of(&c.decl_type)).collect();
    let mut columns = match known {
        None => {
            let defs: Vec<String> = cs
                .columns
                .iter()
                .zip(&kept)
                .map(|(c, k)| Ok(format!("{} {}", ident(&c.name)?, k.sql())))
                .collect::<Result<_, VaultError>>()?;
            let pk: Vec<String> = cs.key.iter().map(|&i| ident(&cs.columns[i].name)).collect::<Result<_, _>>()?;
            tx.batch_execute(&format!("CREATE TABLE {t} ({}, PRIMARY KEY ({}))", defs.join(", "), pk.join(", ")))?;
            cs.columns.clone()
        }
        Some(columns) => columns,
    };
    // each of the changeset's columns by the table's own spelling
    let mut names: Vec<String> = Vec::with_capacity(cs.columns.len());
    for (c, k) in cs.columns.iter().zip(&kept) {
        match columns.iter().find(|x| x.name.to_lowercase() == c.name.to_lowercase()) {
            Some(x) => names.push(x.name.clone()),
            None => {
                tx.batch_execute(&format!("ALTER TABLE {t} ADD COLUMN {} {}", ident(&c.name)?, k.sql()))?;
                columns.push(c.clone());
                names.push(c.name.clone());
            }
        }
    }
    let (quoted, on_conflict) = conflict_clause(&columns, &names, cs)?;
    let n = cs.columns.len();
    let upsert_sql = |rows: usize| {
        let tuples: Vec<String> = (0..rows)
            .map(|r| {
                let cells: Vec<String> = kept.iter().enumerate().map(|(i, k)| k.placeholder(r * n + i + 1)).collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        format!("INSERT INTO {t} ({}) VALUES {} {on_conflict}", quoted.join(", "), tuples.join(", "))
    };
    let per_statement = (MAX_PARAMETERS / n.max(1)).clamp(1, UPSERT_ROWS);
    let many = upsert_sql(per_statement);
    let cond: Vec<String> =
        cs.key.iter().enumerate().map(|(i, &k)| format!("{} = {}", quoted[k], kept[k].placeholder(i + 1))).collect();
    let delete = format!("DELETE FROM {t} WHERE {}", cond.join(" AND "));
    // each value with its type on the wire: a statement is one round trip, nothing prepared
    let send = |row: &[Param], kept_of: &dyn Fn(usize) -> Kept| -> Vec<(Box<dyn ToSql + Sync>, Type)> {
        row.iter()
            .enumerate()
            .map(|(i, p)| {
                let k = kept_of(i);
                let ty = if k == Kept::Bytes { Type::BYTEA } else { Type::TEXT };
                (if *p == Param::Null { Param::null_as(k) } else { p.boxed() }, ty)
            })
            .collect()
    };
    let execute = |tx: &mut Transaction<'_>, sql: &str, params: &[(Box<dyn ToSql + Sync>, Type)]| {
        tx.execute_typed(sql, &refs(params))
    };
    let by_column = |i: usize| kept[i];
    let flush = |tx: &mut Transaction<'_>, rows: Vec<Vec<Param>>| -> Result<(), Failed> {
        if rows.len() >= COPY_FROM {
            let cols = quoted.join(", ");
            let straight = format!("COPY {t} ({cols}) FROM STDIN");
            // many rows (a first sync) that cannot meet a key already there: copied straight in
            if empty {
                copy_rows(tx, &straight, &rows)??;
                return Ok(());
            }
            // otherwise straight in too, in a savepoint that a key met there (an update) undoes
            let mut direct = tx.savepoint("gdx_direct")?;
            match copy_rows(&mut direct, &straight, &rows)? {
                Ok(()) => {
                    direct.commit()?;
                    return Ok(());
                }
                Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    direct.rollback()?;
                    tx.batch_execute("RELEASE SAVEPOINT gdx_direct")?;
                }
                Err(e) => return Err(e.into()),
            }
            // copied into a scratch table, then upserted in one statement
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS pg_temp._gdx_in; CREATE TEMP TABLE _gdx_in (LIKE {t}) ON COMMIT DROP"
            ))?;
            copy_rows(tx, &format!("COPY pg_temp._gdx_in ({cols}) FROM STDIN"), &rows)??;
            tx.batch_execute(&format!("INSERT INTO {t} ({cols}) SELECT {cols} FROM pg_temp._gdx_in {on_conflict}"))?;
            return Ok(());
        }
        let mut chunks = rows.chunks_exact(per_statement);
        for chunk in chunks.by_ref() {
            let params: Vec<_> = chunk.iter().flat_map(|r| send(r, &by_column)).collect();
            execute(tx, &many, &params)?;
        }
        // the rest in one statement of its own length
        let rest = chunks.remainder();
        if !rest.is_empty() {
            execute(tx, &upsert_sql(rest.len()), &rest.iter().flat_map(|r| send(r, &by_column)).collect::<Vec<_>>())?;
        }
        Ok(())
    };
    for run in row_runs(cs, &kept)? {
        match run {
            Rows::Upserts(rows) => flush(tx, rows)?,
            Rows::Delete(key) => drop(execute(tx, &delete, &send(&key, &|i| kept[cs.key[i]]))?),
        }
    }
    Ok(columns)
}

/// The changeset's columns quoted (as `names` spells them, the table's
/// spelling), and the `ON CONFLICT` clause of an upsert into a table of
/// `columns`: it replaces the whole row, as SQLite's INSERT OR REPLACE
/// does (columns the changeset does not carry become NULL).
pub(super) fn conflict_clause(
    columns: &[Column],
    names: &[String],
    cs: &Changeset,
) -> Result<(Vec<String>, String), VaultError> {
    let quoted: Vec<String> = names.iter().map(|n| ident(n)).collect::<Result<_, _>>()?;
    let keys: Vec<String> = cs.key.iter().map(|&i| quoted[i].clone()).collect();
    let key_lower: Vec<String> = cs.key.iter().map(|&i| names[i].to_lowercase()).collect();
    let others: Vec<String> = columns
        .iter()
        .filter(|c| !key_lower.contains(&c.name.to_lowercase()))
        .map(|c| ident(&c.name).map(|q| format!("{q} = excluded.{q}")))
        .collect::<Result<_, _>>()?;
    let on_conflict = if others.is_empty() {
        format!("ON CONFLICT ({}) DO NOTHING", keys.join(", "))
    } else {
        format!("ON CONFLICT ({}) DO UPDATE SET {}", keys.join(", "), others.join(", "))
    };
    Ok((quoted, on_conflict))
}

/// What a changeset does to its table, in order: runs of upserts and the
/// deletes between them.
pub(super) enum Rows {
    /// Rows (values ready for their columns), one per key as sent.
    Upserts(Vec<Vec<Param>>),
    /// A key's values.
    Delete(Vec<Param>),
}

/// `cs`'s changes in key order, as runs of upserts and deletes, each value
/// made ready for its column (`kept`). Of one key's upserts in a run only
/// the last, in the place of the first, since one statement may not touch
/// a row twice: the key compared as it is sent, so 1 and "1" in an integer
/// column, sorted apart, are one key.
pub(super) fn row_runs(cs: &Changeset, kept: &[Kept]) -> Result<Vec<Rows>, VaultError> {
    let mut changes: Vec<&Change> = cs.changes.iter().collect();
    changes.sort_by(|a, b| cmp_change_keys(a, b, &cs.key));
    let mut runs = Vec::new();
    let mut run: Vec<Vec<Param>> = Vec::new();
    let mut at: std::collections::HashMap<Vec<Param>, usize> = std::collections::HashMap::new();
    for change in changes {
        match change {
            Change::Upsert(row) => {
                let row: Vec<Param> = row
                    .iter()
                    .zip(cs.columns.iter().zip(kept))
                    .map(|(v, (c, k))| param(v, *k, &c.name))
                    .collect::<Result<_, _>>()?;
                let key: Vec<Param> = cs.key.iter().map(|&k| row[k].clone()).collect();
                match at.get(&key) {
                    Some(&i) => run[i] = row,
                    None => {
                        at.insert(key, run.len());
                        run.push(row);
                    }
                }
            }
            Change::Delete(key) => {
                // the upserts before it first: the changes apply in their order
                at.clear();
                if !run.is_empty() {
                    runs.push(Rows::Upserts(std::mem::take(&mut run)));
                }
                let key: Vec<Param> = key
                    .iter()
                    .zip(&cs.key)
                    .map(|(v, &k)| param(v, kept[k], &cs.columns[k].name))
                    .collect::<Result<_, _>>()?;
                runs.push(Rows::Delete(key));
            }
        }
    }
    if !run.is_empty() {
        runs.push(Rows::Upserts(run));
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_as_sqlite_affinities_do() {
        assert_eq!(Kept::of("VARCHAR(18)"), Kept::Text);
        assert_eq!(Kept::of("bigint"), Kept::Bigint);
        assert_eq!(Kept::of("DATE"), Kept::Text, "dates are kept as the text the source sent");
        assert_eq!(Kept::of("DECIMAL(10,2)"), Kept::Text);
        assert_eq!(Kept::of("BLOB"), Kept::Bytes);
        assert_eq!(Kept::Bigint.placeholder(3), "CAST($3::text AS BIGINT)");
        let int = |v: Value| param(&v, Kept::Bigint, "n");
        assert_eq!(int(Value::Real(3.0)).unwrap(), Param::Text("3".into()));
        assert_eq!(int(Value::Text(" 3.0".into())).unwrap(), Param::Text("3".into()));
        assert_eq!(int(Value::Text("1".into())).unwrap(), int(Value::Integer(1)).unwrap(), "one key");
        assert!(int(Value::Text("三".into())).unwrap_err().to_string().contains("column n is kept as BIGINT"));
        assert!(int(Value::Real(2.5)).is_err());
        let text = |v: Value| param(&v, Kept::Text, "t").unwrap();
        assert_ne!(text(Value::Integer(1)), text(Value::Real(1.0)), "1 and 1.0 are two texts, as in SQLite");
        assert_eq!(real_text(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(real_text(-0.0), real_text(0.0), "one key");
        assert_eq!(param(&Value::Null, Kept::Bytes, "b").unwrap(), Param::Null);
        let mut line = Vec::new();
        copy_line(&[Param::Text("a\tb\\c\n".into()), Param::Null, Param::Bytes(vec![0, 255])], &mut line);
        assert_eq!(line, b"a\\tb\\\\c\\n\t\\N\t\\\\x00ff\n");
    }
}
