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
//! Group commit ([`Batches`]): a department's small changesets go through
//! the one connection of the pool its schema names. Those planned while
//! that connection is busy wait for it together, and one of their threads
//! sends them all as one transaction, each under its own department's role
//! and vault lock, the vaults locked in the order of their schemas' names
//! (so two groups never wait for each other in a cycle; two schemas whose
//! lock keys collide could, and the server's deadlock detector then rolls
//! one back). One failure rolls the whole group back, and each of its
//! changesets then takes the ordinary path alone; a vault whose lock is
//! held elsewhere for long does so too, after [`LOCK_WAIT`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gdx_common::data::Changeset;

use super::apply::{Kept, Param, Rows, bookkeeping, conflict_clause, row_runs};
use super::pool::{POOL_WAIT, PgConn, PgPool};
use super::{Names, as_writer, ident};
use crate::store::vault::{Head, Then, changeset_event, plan};

/// Changes a changeset may carry to go in one round trip.
const MAX_CHANGES: usize = 64;
/// The statements' text, at most (of one changeset, and of a group).
const MAX_TEXT: usize = 1 << 20;
/// Changesets committed together, at most: each holds its vault's lock
/// and a few table locks until the commit, out of the server's shared
/// lock table (`max_locks_per_transaction` times the connections).
const MAX_GROUP: usize = 16;
/// How long a group waits for any one lock (a vault's, held by another
/// hub process's long write or by a long read) before it rolls back: the
/// departments behind it on the same connection wait no longer.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// How long a changeset taken into a group waits for its answer beyond
/// the pool's wait: the group's lock waits, and then some.
const IN_A_GROUP: Duration = Duration::from_secs(LOCK_WAIT.as_secs() * MAX_GROUP as u64 + 30);

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
    slots: Vec<Queue>,
    /// Transactions sent.
    sent: std::sync::atomic::AtomicU64,
}

/// The changesets waiting for one slot's connection, and whether one of
/// their threads holds it (or waits for it) to send them.
#[derive(Default)]
struct Queue {
    state: Mutex<Waiting>,
    /// Wakes the waiting threads: answers came, or no one leads.
    changed: Condvar,
}

#[derive(Default)]
struct Waiting {
    planned: Vec<Arc<Planned>>,
    leading: bool,
}

/// One changeset's statements, waiting to be sent.
struct Planned {
    schema: String,
    sql: String,
    /// Set (under its queue's lock) by the thread that sent it: whether its transaction committed.
    committed: Mutex<Option<bool>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Batches {
    pub(super) fn new(pool: &PgPool) -> Self {
        Self { slots: (0..pool.slots()).map(|_| Queue::default()).collect(), sent: Default::default() }
    }

    /// How many transactions were sent (committed or not), and how many
    /// changesets wait.
    pub(super) fn counts(&self) -> (u64, usize) {
        let waiting = self.slots.iter().map(|q| lock(&q.state).planned.len()).sum();
        (self.sent.load(std::sync::atomic::Ordering::Relaxed), waiting)
    }

    /// Commits `sql` (of [`statements`]) for the vault of `schema`, with
    /// the others waiting for the same connection; true when it committed,
    /// false when it did not or whether it did is unknown (the ordinary
    /// path then decides, as for any failure here).
    ///
    /// One thread of a slot leads at a time: it takes the connection and
    /// sends what waits, group after group, until its own changeset is
    /// answered; then the next waiting thread leads. The others wait for
    /// their answers.
    pub(super) fn commit(&self, pool: &PgPool, schema: &str, sql: String) -> bool {
        let slot = pool.slot_of(schema);
        let queue = &self.slots[slot];
        let me = Arc::new(Planned { schema: schema.to_owned(), sql, committed: Mutex::new(None) });
        let mut waiting = lock(&queue.state);
        waiting.planned.push(me.clone());
        let deadline = Instant::now() + POOL_WAIT;
        loop {
            if let Some(committed) = *lock(&me.committed) {
                return committed;
            }
            let queued = waiting.planned.iter().any(|p| Arc::ptr_eq(p, &me));
            // still queued at the pool's deadline: given up; once in a group, answered within the
            // group's time (should it never be, the ordinary path decides: the guard keeps it once)
            let limit = if queued { deadline } else { deadline + IN_A_GROUP };
            let left = limit.saturating_duration_since(Instant::now());
            if left.is_zero() {
                waiting.planned.retain(|p| !Arc::ptr_eq(p, &me));
                return false;
            }
            if queued && !waiting.leading {
                waiting.leading = true;
                break;
            }
            waiting = queue.changed.wait_timeout(waiting, left).map(|(w, _)| w).unwrap_or_else(|e| e.into_inner().0);
        }
        drop(waiting);
        let (committed, conn) = self.lead(pool, slot, &me, deadline);
        let mut waiting = lock(&queue.state);
        waiting.leading = false;
        if !committed {
            waiting.planned.retain(|p| !Arc::ptr_eq(p, &me));
        }
        drop(waiting);
        // the next leader, woken first, waits for the connection as its slot's (not any use's)
        queue.changed.notify_all();
        if let Some(conn) = conn {
            pool.give_back(conn);
        }
        committed
    }

    /// Sends the groups waiting in `slot` until `me` is answered: its answer,
    /// and the connection to give back (none when it was not taken, or was
    /// closed because whether its transaction committed is unknown).
    fn lead(&self, pool: &PgPool, slot: usize, me: &Arc<Planned>, deadline: Instant) -> (bool, Option<PgConn>) {
        let queue = &self.slots[slot];
        let Ok(Ok(mut conn)) = catch_unwind(AssertUnwindSafe(|| pool.take_slot(slot, deadline))) else {
            return (false, None);
        };
        loop {
            let mut group: Vec<Arc<Planned>> = {
                let mut waiting = lock(&queue.state);
                let (mut n, mut size) = (0, 0);
                let planned = &waiting.planned;
                while n < planned.len() && n < MAX_GROUP && (n == 0 || size + planned[n].sql.len() <= MAX_TEXT) {
                    size += planned[n].sql.len();
                    n += 1;
                }
                waiting.planned.drain(..n).collect()
            };
            // a stable sort: one vault's changesets keep their order
            group.sort_by(|a, b| a.schema.cmp(&b.schema));
            // each wait for a lock ends after LOCK_WAIT, rolling the group back
            let mut sql = format!("BEGIN;\nSET LOCAL lock_timeout = '{}ms';\n", LOCK_WAIT.as_millis());
            group.iter().for_each(|p| sql += &p.sql);
            sql += "COMMIT";
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let committed = match catch_unwind(AssertUnwindSafe(|| conn.client.simple_query(&sql))) {
                Ok(Ok(_)) => Some(true),
                // a failed statement leaves the transaction open and aborted
                Ok(Err(_)) => match catch_unwind(AssertUnwindSafe(|| conn.client.batch_execute("ROLLBACK"))) {
                    Ok(Ok(())) => Some(false),
                    _ => None,
                },
                // whether it committed is unknown: the connection is never reused
                Err(_) => None,
            };
            {
                let _waiting = lock(&queue.state);
                group.iter().for_each(|p| *lock(&p.committed) = Some(committed.unwrap_or(false)));
            }
            queue.changed.notify_all();
            let Some(committed) = committed else {
                pool.discard(conn);
                return (lock(&me.committed).unwrap_or(false), None);
            };
            if group.iter().any(|p| Arc::ptr_eq(p, me)) {
                return (committed, Some(conn));
            }
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
