//! A small changeset into a vault on PostgreSQL in one round trip.
//!
//! The ordinary path ([`super::apply`]) reads the resource's head, then
//! writes the rows and the bookkeeping: six round trips for a one-row
//! changeset, each parsed, planned and answered on its own. When this hub
//! process holds the head it last wrote for the resource, it plans the
//! changeset on that head ([`plan`], the same rules) and sends the whole
//! transaction as one string of statements, the values as literals:
//! the department's role and the vault's lock, a guard that fails the
//! transaction unless the head in the database is the one planned on
//! (columns, key, number and epoch), the rows, the bookkeeping, `COMMIT`.
//! Both paths take the same lock of the vault ([`super::as_writer`]), so
//! the head cannot change between the guard and the commit. A guard that
//! fails (another hub process wrote since, a vault was moved in) or any
//! other error rolls it all back, and the ordinary path decides; so this
//! path decides nothing the ordinary path would not, and a kill at any
//! point leaves all or nothing, as there.
//!
//! Group commit ([`Batches`]): a department's writes go through the one
//! connection of the pool its schema names. Changesets planned while that
//! connection is busy wait for it together; whichever of their threads
//! takes it sends all of them as one transaction, each under its own
//! department's role and vault lock, the vaults locked in the order of
//! their schemas' names so that two transactions never wait for each
//! other. One failure rolls the whole group back, and each of its
//! changesets then takes the ordinary path alone.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use gdx_common::data::Changeset;

use super::apply::{Kept, Param, Rows, bookkeeping, conflict_clause, row_runs};
use super::pool::PgPool;
use super::{Names, as_writer, ident};
use crate::store::vault::{Head, Then, changeset_event, plan};

/// Changes a changeset may carry to go in one round trip.
const MAX_CHANGES: usize = 64;
/// The statements' text, at most (of one changeset, and of a group).
const MAX_TEXT: usize = 1 << 20;
/// Changesets committed together, at most.
const MAX_GROUP: usize = 64;

/// The statements applying `cs` on top of `head` (the head this process
/// last wrote) in the vault of `names`, as one string to run in a
/// transaction ([`Batches::commit`]), and the head they leave. None when `cs` takes the ordinary path: not the
/// next number, a new table or column, a new epoch, many changes, a text
/// holding NUL, or anything the ordinary path refuses with a reason.
pub(super) fn statements(
    names: &Names,
    head: &Head,
    cs: &Changeset,
    digest: &[u8; 32],
    frame: Option<&[u8]>,
    now: i64,
) -> Option<(String, Head)> {
    if cs.changes.len() > MAX_CHANGES || literal_bytes(cs, frame) > MAX_TEXT {
        return None;
    }
    let step = plan(Some(head), cs).ok()?;
    let known = match step.then {
        Then::Apply { known: Some(known) } if !step.reset => known,
        _ => return None,
    };
    // each of the changeset's columns by the table's spelling (a new one is the ordinary path's)
    let spelled: Vec<String> = cs
        .columns
        .iter()
        .map(|c| known.iter().find(|x| x.name.to_lowercase() == c.name.to_lowercase()).map(|x| x.name.clone()))
        .collect::<Option<_>>()?;
    let kept: Vec<Kept> = cs.columns.iter().map(|c| Kept::of(&c.decl_type)).collect();
    let (quoted, on_conflict) = conflict_clause(&known, &spelled, cs).ok()?;
    let runs = row_runs(cs, &kept).ok()?;
    let s = ident(&names.schema).ok()?;
    let t = format!("{s}.{}", ident(cs.resource.as_str()).ok()?);
    let (columns, key, last, epoch) = head;
    let (resource, columns_text, key_text) = (text(cs.resource.as_str())?, text(columns)?, text(key)?);
    let mut sql = format!("{};\n", as_writer(names).ok()?);
    // the guard: a division by zero unless the head is the one planned on
    sql += &format!(
        "SELECT 1 / count(*) FROM {s}._gdx_resources WHERE resource = {resource} AND columns = {columns_text} \
         AND key = {key_text} AND last_seq = {last} AND epoch = {epoch};\n"
    );
    for run in runs {
        match run {
            Rows::Upserts(rows) => {
                let tuples: Vec<String> = rows
                    .iter()
                    .map(|row| {
                        let cells: Vec<String> =
                            row.iter().zip(&kept).map(|(p, k)| value(p, *k)).collect::<Option<_>>()?;
                        Some(format!("({})", cells.join(", ")))
                    })
                    .collect::<Option<_>>()?;
                sql +=
                    &format!("INSERT INTO {t} ({}) VALUES {} {on_conflict};\n", quoted.join(", "), tuples.join(", "));
            }
            Rows::Delete(values) => {
                let cond: Vec<String> = values
                    .iter()
                    .zip(&cs.key)
                    .map(|(p, &k)| Some(format!("{} = {}", quoted[k], value(p, kept[k])?)))
                    .collect::<Option<_>>()?;
                sql += &format!("DELETE FROM {t} WHERE {};\n", cond.join(" AND "));
            }
        }
    }
    let event = serde_json::to_string(&changeset_event(cs, digest, now)).ok()?;
    let frame = frame.map_or_else(|| "NULL".to_owned(), bytes);
    sql += &bookkeeping(
        &s,
        [
            &resource,
            &columns_text,
            &key_text,
            &(cs.seq as i64).to_string(),
            &now.to_string(),
            &(cs.epoch as i64).to_string(),
            &bytes(digest),
            &frame,
            &text(&event)?,
        ],
    );
    sql += ";\n";
    (sql.len() <= MAX_TEXT).then(|| (sql, (columns.clone(), key.clone(), cs.seq as i64, cs.epoch as i64)))
}

/// Changesets waiting for their slot's connection, for each slot of the pool.
pub(super) struct Batches {
    waiting: Vec<Mutex<Vec<Arc<Planned>>>>,
    /// Transactions sent.
    sent: std::sync::atomic::AtomicU64,
}

/// One changeset's statements, waiting to be sent.
struct Planned {
    schema: String,
    sql: String,
    /// Set by the thread that sent it (holding the slot's connection):
    /// whether its transaction committed.
    committed: Mutex<Option<bool>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Batches {
    pub(super) fn new(pool: &PgPool) -> Self {
        Self { waiting: (0..pool.slots()).map(|_| Mutex::new(Vec::new())).collect(), sent: Default::default() }
    }

    /// How many transactions were sent, and how many changesets wait.
    pub(super) fn counts(&self) -> (u64, usize) {
        let waiting = self.waiting.iter().map(|q| lock(q).len()).sum();
        (self.sent.load(std::sync::atomic::Ordering::Relaxed), waiting)
    }

    /// Commits `sql` (of [`statements`]) for the vault of `schema`, with
    /// the others waiting for the same connection; true when it committed,
    /// false when it did not or whether it did is unknown (the ordinary
    /// path then decides, as for any failure here).
    pub(super) fn commit(&self, pool: &PgPool, schema: &str, sql: String) -> bool {
        let slot = pool.slot_of(schema);
        let me = Arc::new(Planned { schema: schema.to_owned(), sql, committed: Mutex::new(None) });
        lock(&self.waiting[slot]).push(me.clone());
        // a group is taken out of the queue and answered while its sender holds the connection
        let Ok(mut conn) = pool.take_slot(slot) else {
            lock(&self.waiting[slot]).retain(|p| !Arc::ptr_eq(p, &me));
            return false;
        };
        loop {
            if let Some(committed) = *lock(&me.committed) {
                pool.give_back(conn);
                return committed;
            }
            let mut group: Vec<Arc<Planned>> = {
                let mut queue = lock(&self.waiting[slot]);
                let (mut n, mut size) = (0, 0);
                while n < queue.len() && n < MAX_GROUP && (n == 0 || size + queue[n].sql.len() <= MAX_TEXT) {
                    size += queue[n].sql.len();
                    n += 1;
                }
                queue.drain(..n).collect()
            };
            // a stable sort: one vault's changesets keep their order
            group.sort_by(|a, b| a.schema.cmp(&b.schema));
            let mut sql = String::from("BEGIN;\n");
            group.iter().for_each(|p| sql += &p.sql);
            sql += "COMMIT";
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let committed = match conn.client.simple_query(&sql) {
                Ok(_) => true,
                // a failed statement leaves the transaction open and aborted
                Err(_) => match conn.client.batch_execute("ROLLBACK") {
                    Ok(()) => false,
                    Err(_) => {
                        // whether it committed is unknown: the connection is never reused
                        group.iter().for_each(|p| *lock(&p.committed) = Some(false));
                        pool.discard(conn);
                        lock(&self.waiting[slot]).retain(|p| !Arc::ptr_eq(p, &me));
                        return false;
                    }
                },
            };
            group.iter().for_each(|p| *lock(&p.committed) = Some(committed));
        }
    }
}

/// `p` as a literal for a column kept as `kept`, typed and converted by
/// the server as the ordinary path's typed parameters and placeholders are
/// (a NULL too: text, or bytes, cast as the column is).
fn value(p: &Param, kept: Kept) -> Option<String> {
    let sent = match p {
        Param::Null if kept == Kept::Bytes => return Some("NULL::bytea".to_owned()),
        Param::Null => "NULL".to_owned(),
        Param::Bytes(b) => return (kept == Kept::Bytes).then(|| bytes(b)),
        Param::Text(_) if kept == Kept::Bytes => return None,
        Param::Text(t) => text(t)?,
    };
    Some(match kept {
        Kept::Text => format!("{sent}::text"),
        k => format!("CAST({sent}::text AS {})", k.sql()),
    })
}

/// About how long `cs`'s values and `frame` are as literals.
fn literal_bytes(cs: &Changeset, frame: Option<&[u8]>) -> usize {
    use gdx_common::data::{Change, Value};
    let values = cs.changes.iter().flat_map(|c| match c {
        Change::Upsert(v) | Change::Delete(v) => v.iter(),
    });
    let sizes = values.map(|v| match v {
        Value::Text(t) => t.len() + 16,
        Value::Blob(b) => 2 * b.len() + 24,
        _ => 32,
    });
    sizes.sum::<usize>() + 2 * frame.map_or(0, <[u8]>::len)
}

/// `t` as an escape string literal (`E'…'`, read the same whatever
/// `standard_conforming_strings` says); None if it holds NUL, which no
/// text in PostgreSQL can (the ordinary path says so).
fn text(t: &str) -> Option<String> {
    if t.contains('\0') {
        return None;
    }
    Some(format!("E'{}'", t.replace('\\', "\\\\").replace('\'', "''")))
}

/// `b` as a bytea expression (hex digits only).
fn bytes(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("decode('{hex}', 'hex')")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_cannot_leave_their_quotes() {
        assert_eq!(text("a'b\\c").unwrap(), "E'a''b\\\\c'");
        assert_eq!(text("'; DROP SCHEMA x; --").unwrap(), "E'''; DROP SCHEMA x; --'");
        assert_eq!(text("\\'").unwrap(), "E'\\\\'''", "a backslash before a quote escapes neither");
        assert!(text("a\0b").is_none());
        assert_eq!(bytes(&[0, 255]), "decode('00ff', 'hex')");
        assert_eq!(value(&Param::Text("7".into()), Kept::Bigint).unwrap(), "CAST(E'7'::text AS BIGINT)");
        assert_eq!(value(&Param::Null, Kept::Bytes).unwrap(), "NULL::bytea");
        assert_eq!(value(&Param::Null, Kept::Double).unwrap(), "CAST(NULL::text AS DOUBLE PRECISION)");
    }
}
