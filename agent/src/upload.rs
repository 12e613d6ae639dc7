//! Draining the outbox to the hub, exactly once.
//!
//! Changesets go out in order per resource on one stream, up to [`WINDOW`]
//! ahead of their acknowledgements, read from the outbox a window at a
//! time; what a running scan commits goes on the same stream. The hub
//! acknowledges each one only after committing it; the agent marks it
//! acknowledged (its resource's `acked_seq`) only after the
//! acknowledgement, and keeps it a while for a hub restored from an older
//! backup. A kill on either side in between means the changeset is sent
//! again and the hub acknowledges it as a duplicate. When the hub reports
//! a gap, the agent drops what the hub already holds and resends from the
//! number the hub expects.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use gdx_common::wire::{LENGTH_PREFIX, Message, Refusal, RefusalCode};
use gdx_link::frames::{self, describe_connection_error};
use rusqlite::{OptionalExtension, params};
use tracing::warn;

use crate::state::State;
use crate::uplink::LinkError;

/// Why an upload stopped.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The link failed, or the hub refused for good: the caller reconnects
    /// (the daemon, with its backoff) or reports it.
    #[error("{0}")]
    Link(#[from] LinkError),
    /// The hub answered but could not take it now (its store failed: a full
    /// disk): the connection is sound, and the same upload is tried again
    /// on it after a short wait.
    #[error("{0}")]
    HubBusy(String),
}

/// The hub's refusal as an upload error: `Internal` is its store failing
/// for now, anything else stands.
fn refused(r: Refusal) -> UploadError {
    if r.code == RefusalCode::Internal {
        UploadError::HubBusy(r.message)
    } else {
        UploadError::Link(LinkError(r.message))
    }
}

/// What publishing achieved.
#[derive(Debug, Default, Clone)]
pub struct Published {
    pub recorded: u64,
    /// `code vN: reason` for each version the hub refused.
    pub refused: Vec<String>,
    /// Codes whose version the hub did not record because it held a newer one.
    pub stale: Vec<String>,
}

/// Sends every waiting publication on one stream and records the answers.
pub async fn publish_pending(conn: &quinn::Connection, state: &mut State) -> Result<Published, UploadError> {
    let db = |e: rusqlite::Error| LinkError(format!("the agent's state database failed: {e}"));
    let waiting: Vec<(String, i64, Vec<u8>)> = {
        let mut stmt = state
            .conn()
            .prepare("SELECT code, version, envelope FROM catalog WHERE envelope IS NOT NULL ORDER BY code")
            .map_err(db)?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?
    };
    let mut out = Published::default();
    if waiting.is_empty() {
        return Ok(out);
    }
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| LinkError(describe_connection_error(&e)))?;
    for (_, _, frame) in &waiting {
        send.write_all(frame).await.map_err(|e| LinkError(e.to_string()))?;
    }
    for (code, version, _) in &waiting {
        let answer = frames::answer(conn, &mut recv, ACK_TIMEOUT, "the hub").await.map_err(LinkError)?;
        match answer {
            Message::Catalogued(a) if &a.code == code && a.version as i64 == *version => {
                if a.recorded {
                    state
                        .conn()
                        .execute(
                            "UPDATE catalog SET envelope = NULL, refused = NULL, recorded = max(recorded, ?2)
                             WHERE code = ?1 AND version = ?2",
                            params![code, version],
                        )
                        .map_err(db)?;
                    out.recorded += 1;
                } else {
                    // The hub holds a newer version (this agent's state was
                    // lost or restored): number on above it. A declared entry
                    // goes out again with the next scan; a withdrawal must be
                    // asked for again.
                    state
                        .conn()
                        .execute(
                            "UPDATE catalog SET envelope = NULL, version = ?2, recorded = ?2,
                                restage = 1 - withdrawn, withdrawn = 0,
                                refused = CASE WHEN withdrawn = 1 THEN ?3 ELSE NULL END
                             WHERE code = ?1",
                            params![
                                code,
                                a.held as i64,
                                format!(
                                    "the hub holds a newer version ({}) than this withdrawal; withdraw it again",
                                    a.held
                                )
                            ],
                        )
                        .map_err(db)?;
                    out.stale.push(code.clone());
                }
            }
            Message::CatalogRefused(r) if &r.code == code => {
                state
                    .conn()
                    .execute(
                        "UPDATE catalog SET envelope = NULL, refused = ?3 WHERE code = ?1 AND version = ?2",
                        params![code, version, r.reason],
                    )
                    .map_err(db)?;
                out.refused.push(format!("catalogue entry {code} version {version}: {}", r.reason));
            }
            Message::Refused(r) => return Err(refused(r)),
            other => return Err(LinkError(format!("unexpected answer from the hub: {}", other.kind())).into()),
        }
    }
    let _ = send.finish();
    Ok(out)
}

/// Quality reports waiting to be sent.
pub fn quality_pending(state: &mut State) -> rusqlite::Result<u64> {
    state.conn().query_row("SELECT count(*) FROM quality_outbox", [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
}

/// Tells the hub what the last scan of each resource set aside (how many,
/// the first places and reasons; never the rows), so its operator sees
/// data-quality problems per department. A report the hub did not confirm
/// is sent again with the next upload.
pub async fn publish_quality(conn: &quinn::Connection, state: &mut State) -> Result<u64, UploadError> {
    use gdx_common::wire::{QUALITY_SAMPLES, QUALITY_TEXT, QualityReport};
    let db = |e: rusqlite::Error| LinkError(format!("the agent's state database failed: {e}"));
    let waiting: Vec<(String, i64, i64)> = {
        let mut stmt =
            state.conn().prepare("SELECT resource, at, scanned FROM quality_outbox ORDER BY resource").map_err(db)?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?
    };
    if waiting.is_empty() {
        return Ok(0);
    }
    let cut = |s: String| s.chars().take(QUALITY_TEXT).collect::<String>();
    let mut reports = Vec::new();
    for (resource, at, scanned) in &waiting {
        let Ok(code) = gdx_common::data::ResourceCode::parse(resource) else { continue };
        let quarantined: i64 = state
            .conn()
            .query_row("SELECT count(*) FROM quarantine WHERE resource = ?1", [resource], |r| r.get(0))
            .map_err(db)?;
        let samples: Vec<(String, String)> = {
            let mut stmt = state
                .conn()
                .prepare("SELECT place, reason FROM quarantine WHERE resource = ?1 ORDER BY rowid LIMIT ?2")
                .map_err(db)?;
            stmt.query_map(params![resource, QUALITY_SAMPLES as i64], |r| Ok((cut(r.get(0)?), cut(r.get(1)?))))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?
        };
        reports.push(QualityReport {
            resource: code,
            at: *at,
            quarantined: quarantined as u64,
            scanned: *scanned as u64,
            samples,
        });
    }
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| LinkError(describe_connection_error(&e)))?;
    for r in &reports {
        frames::send(&mut send, &Message::Quality(r.clone())).await.map_err(|e| LinkError(e.to_string()))?;
    }
    let mut noted = 0;
    for r in &reports {
        match frames::answer(conn, &mut recv, ACK_TIMEOUT, "the hub").await.map_err(LinkError)? {
            Message::QualityNoted(n) if n.resource == r.resource && n.at == r.at => {
                // a newer scan's report, queued meanwhile, stays queued
                state
                    .conn()
                    .execute(
                        "DELETE FROM quality_outbox WHERE resource = ?1 AND at = ?2",
                        params![r.resource.as_str(), r.at],
                    )
                    .map_err(db)?;
                noted += 1;
            }
            Message::Refused(x) => return Err(refused(x)),
            other => return Err(LinkError(format!("unexpected answer from the hub: {}", other.kind())).into()),
        }
    }
    let _ = send.finish();
    Ok(noted)
}

/// Changesets in flight before waiting for acknowledgements.
pub const WINDOW: usize = 16;
/// How long to wait for an acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(120);

/// What waits in the outbox.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Backlog {
    pub changesets: u64,
    pub rows: u64,
}

/// What waits in the outbox for `only` (all resources when `None`).
pub fn backlog(state: &mut State, only: Option<&str>) -> rusqlite::Result<Backlog> {
    let (changesets, rows) = state.waiting(only)?;
    Ok(Backlog { changesets: changesets as u64, rows: rows as u64 })
}

/// What a drain achieved.
#[derive(Debug, Default, Clone)]
pub struct Drained {
    /// Resources held because the hub rejected one of their changesets.
    pub rejected: Vec<String>,
    pub acked: u64,
    pub duplicates: u64,
    pub rows: u64,
    /// Catalogue publications the hub recorded, and those it refused.
    pub catalog: Published,
}

/// Sends the waiting catalogue publications, then every outbox entry (of
/// `only`, if given), and waits for the acknowledgements. `progress` is
/// called with the rows acknowledged so far, and a count of the rows still
/// waiting (which grow while a scan commits) that reads `state.db` only
/// when called.
pub async fn drain(
    conn: &quinn::Connection,
    state: &mut State,
    only: Option<&str>,
    mut progress: impl FnMut(u64, &dyn Fn() -> u64),
) -> Result<Drained, UploadError> {
    let mut total = Drained { catalog: publish_pending(conn, state).await?, ..Drained::default() };
    publish_quality(conn, state).await?;
    // A gap makes us restart from what the hub expects; a restart that makes
    // no progress twice in a row is an error, not a loop.
    let mut stalls = 0;
    loop {
        let before = (total.acked, total.rejected.len());
        let Some(restart) = drain_once(conn, state, only, &mut total, &mut progress).await? else {
            return Ok(total);
        };
        if !restart {
            continue;
        }
        stalls = if (total.acked, total.rejected.len()) == before { stalls + 1 } else { 0 };
        if stalls >= 2 {
            return Err(LinkError(
                "the hub keeps asking for changesets this agent no longer holds; run `gdx-agent doctor` and contact the hub operator".into(),
            )
            .into());
        }
    }
}

/// (resource, seq, rows, frame)
type Pending = Vec<(String, u64, u64, Vec<u8>)>;

/// The last number a pass has sent of each resource.
type Sent = HashMap<String, u64>;

/// Up to `limit` changesets waiting (of `only`, if given) past what the
/// hub acknowledged and what this pass has `sent`, in order by resource.
fn load_pending(state: &mut State, only: Option<&str>, sent: &Sent, limit: usize) -> rusqlite::Result<Pending> {
    let conn = state.conn();
    let resources: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT code, acked_seq FROM resources WHERE (?1 IS NULL OR code = ?1) AND held IS NULL ORDER BY code",
        )?
        .query_map([only], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    // one resource at a time, so that the outbox's index gives the order
    let mut stmt = conn.prepare_cached(
        "SELECT seq, rows, envelope FROM outbox WHERE resource = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let mut pending = Pending::new();
    for (code, acked) in resources {
        let left = limit - pending.len();
        if left == 0 {
            break;
        }
        let after = acked.max(sent.get(&code).map_or(0, |&s| s as i64));
        let rows = stmt.query_map(params![code, after, left as i64], |r| {
            Ok((code.clone(), r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, Vec<u8>>(2)?))
        })?;
        for row in rows {
            pending.push(row?);
        }
    }
    Ok(pending)
}

/// One pass on one stream: sends what waits in the outbox, and what the
/// scan commits meanwhile, [`WINDOW`] ahead of the acknowledgements, until
/// nothing is left to send or answer. `None` when nothing waited; true when
/// a gap or a rejection asks for a new pass.
async fn drain_once(
    conn: &quinn::Connection,
    state: &mut State,
    only: Option<&str>,
    total: &mut Drained,
    progress: &mut impl FnMut(u64, &dyn Fn() -> u64),
) -> Result<Option<bool>, UploadError> {
    let mut sent = Sent::new();
    // frames are read from the outbox a window at a time: a backlog of
    // large changesets is never all in memory
    let mut queue: VecDeque<_> = load_pending(state, only, &sent, WINDOW).map_err(db_err)?.into();
    if queue.is_empty() {
        return Ok(None);
    }
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| LinkError(describe_connection_error(&e)))?;
    let mut rows_of: HashMap<(String, u64), u64> = HashMap::new();
    let mut in_flight = 0;
    let mut restart = false;
    let mut look_again = false;
    loop {
        while in_flight < WINDOW && !restart {
            if queue.is_empty() && look_again {
                // what the scan committed since goes on this stream: the hub
                // is not left idle between one look at the outbox and the next
                queue = load_pending(state, only, &sent, WINDOW).map_err(db_err)?.into();
                look_again = false;
            }
            let Some((resource, seq, rows, frame)) = queue.pop_front() else { break };
            if frame.len() < LENGTH_PREFIX {
                return Err(LinkError("a damaged changeset is in the outbox".into()).into());
            }
            send.write_all(&frame).await.map_err(|e| LinkError(e.to_string()))?;
            rows_of.insert((resource.clone(), seq), rows);
            sent.insert(resource, seq);
            in_flight += 1;
        }
        if in_flight == 0 {
            break;
        }
        let answer = frames::answer(conn, &mut recv, ACK_TIMEOUT, "the hub").await.map_err(LinkError)?;
        in_flight -= 1;
        look_again = true;
        match answer {
            Message::Ack(ack) => {
                record_ack(state, ack.resource.as_str(), ack.seq).map_err(db_err)?;
                total.acked += 1;
                total.duplicates += u64::from(ack.duplicate);
                total.rows += rows_of.remove(&(ack.resource.as_str().to_owned(), ack.seq)).unwrap_or(0);
                // an estimate for a progress bar: unreadable, it is nothing
                progress(total.rows, &|| state.waiting(only).map_or(0, |(_, rows)| rows as u64));
            }
            Message::Gap(gap) => {
                let resource = gap.resource.as_str();
                let acked = acked_seq(state, resource).map_err(db_err)?;
                if gap.expected >= 1 && gap.expected <= acked {
                    // it acknowledged them before: the hub was restored from a backup
                    match take_back(state, resource, gap.expected, acked).map_err(db_err)? {
                        Ok(n) => warn!(
                            %resource, from = gap.expected, changesets = n,
                            "the hub lost changesets it had acknowledged (restored from a backup); sending them again"
                        ),
                        Err(reason) => {
                            warn!(%resource, %reason, "uploads of this resource are held");
                            state
                                .conn()
                                .execute(
                                    "UPDATE resources SET held = ?2 WHERE code = ?1",
                                    params![resource, reason.to_string()],
                                )
                                .map_err(db_err)?;
                            total.rejected.push(format!("{resource}: {reason}"));
                        }
                    }
                } else if gap.expected > 0 {
                    // The hub holds everything below `expected`.
                    record_ack(state, resource, gap.expected - 1).map_err(db_err)?;
                }
                restart = true;
            }
            Message::Rejected(r) => {
                // Hold this resource (its later changesets depend on this
                // one) and carry on with the others.
                let reason = format!("the hub rejected changeset {}: {}", r.seq, r.reason);
                warn!(resource = %r.resource, %reason, "uploads of this resource are held");
                state
                    .conn()
                    .execute("UPDATE resources SET held = ?2 WHERE code = ?1", params![r.resource.as_str(), reason])
                    .map_err(db_err)?;
                total.rejected.push(format!("{}: {reason}", r.resource));
                restart = true;
            }
            Message::Refused(r) => return Err(refused(r)),
            other => return Err(LinkError(format!("unexpected answer from the hub: {}", other.kind())).into()),
        }
    }
    let _ = send.finish();
    Ok(Some(restart))
}

/// How long, and how many a resource, acknowledged changesets are kept to
/// send again to a hub restored from an older backup.
const KEEP_ACKED_SECS: i64 = 14 * 86_400;
const KEEP_ACKED: i64 = 2_000;

/// Records that the hub holds the changesets of `resource` up to and
/// including `seq`: they stay in the outbox, below `acked_seq`, and those
/// acknowledged longer ago than the keeping are deleted.
fn record_ack(state: &mut State, resource: &str, seq: u64) -> rusqlite::Result<()> {
    let now = crate::now();
    // it reads before it writes: take the write lock first, or a scan's
    // commit in between would fail it
    let tx = state.conn().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let acked: i64 = tx
        .query_row("SELECT acked_seq FROM resources WHERE code = ?1", [resource], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if seq as i64 <= acked {
        return Ok(());
    }
    tx.execute("UPDATE resources SET acked_seq = ?2 WHERE code = ?1", params![resource, seq as i64])?;
    tx.execute(
        "INSERT OR REPLACE INTO acks (resource, seq, at) VALUES (?1, ?2, ?3)",
        params![resource, seq as i64, now],
    )?;
    // the oldest acknowledgement first: most of the time it is recent, and
    // nothing is scanned
    let oldest: i64 = tx.query_row(
        "SELECT coalesce((SELECT at FROM acks WHERE resource = ?1 ORDER BY seq LIMIT 1), ?2)",
        params![resource, now],
        |r| r.get(0),
    )?;
    let mut keep_above = seq as i64 - KEEP_ACKED;
    if oldest < now - KEEP_ACKED_SECS {
        let old: i64 = tx.query_row(
            "SELECT coalesce(max(seq), 0) FROM acks WHERE resource = ?1 AND at < ?2",
            params![resource, now - KEEP_ACKED_SECS],
            |r| r.get(0),
        )?;
        keep_above = keep_above.max(old);
    }
    tx.execute("DELETE FROM outbox WHERE resource = ?1 AND seq <= ?2", params![resource, keep_above])?;
    tx.execute("DELETE FROM acks WHERE resource = ?1 AND seq <= ?2", params![resource, keep_above])?;
    tx.commit()
}

fn acked_seq(state: &mut State, resource: &str) -> rusqlite::Result<u64> {
    let n: Option<i64> = state
        .conn()
        .query_row("SELECT acked_seq FROM resources WHERE code = ?1", [resource], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// The hub expects `expected` although it acknowledged up to `acked`: the
/// acknowledged changesets from `expected` go back into the outbox, to be
/// sent again as they were signed (the hub applies each once, by number).
/// Err, with what to do, when this agent no longer keeps all of them.
fn take_back(state: &mut State, resource: &str, expected: u64, acked: u64) -> rusqlite::Result<Result<u64, NotKept>> {
    // it reads before it writes: take the write lock first, or a scan's
    // commit in between would fail it
    let tx = state.conn().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let kept: i64 = tx.query_row(
        "SELECT count(*) FROM outbox WHERE resource = ?1 AND seq >= ?2 AND seq <= ?3",
        params![resource, expected as i64, acked as i64],
        |r| r.get(0),
    )?;
    if kept as u64 != acked - expected + 1 {
        return Ok(Err(NotKept { expected, acked }));
    }
    tx.execute("DELETE FROM acks WHERE resource = ?1 AND seq >= ?2", params![resource, expected as i64])?;
    tx.execute("UPDATE resources SET acked_seq = ?2 WHERE code = ?1", params![resource, expected as i64 - 1])?;
    tx.commit()?;
    Ok(Ok(acked - expected + 1))
}

/// The hub lost acknowledged changesets this agent no longer keeps.
#[derive(Debug, thiserror::Error)]
#[error(
    "the hub lost changesets {expected} to {acked} that it had acknowledged (restored from an older backup), and this agent keeps acknowledged changesets only 14 days; stop the agent and delete state.db: the next sync sends every row again and the hub replaces the resource's contents"
)]
struct NotKept {
    expected: u64,
    acked: u64,
}

fn db_err(e: rusqlite::Error) -> LinkError {
    if gdx_files::disk_full(&e) {
        return LinkError(crate::state::disk_full_sentence(None));
    }
    LinkError(format!("the agent's state database failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with changesets 1 to `n` of resource `r` in its outbox.
    fn state_with(n: u64) -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(&dir.path().join("state.db")).unwrap();
        s.conn().execute("INSERT INTO resources (code, columns, key) VALUES ('r', '[]', '[]')", []).unwrap();
        for seq in 1..=n {
            s.conn()
                .execute(
                    "INSERT INTO outbox (resource, seq, rows, envelope) VALUES ('r', ?1, 10, ?2)",
                    params![seq as i64, vec![seq as u8; LENGTH_PREFIX + 1]],
                )
                .unwrap();
        }
        (dir, s)
    }

    fn seqs(p: &Pending) -> Vec<u64> {
        p.iter().map(|x| x.1).collect()
    }

    /// Acknowledged changesets leave the backlog but stay in the outbox,
    /// and a hub restored from an older backup gets them back as signed.
    #[test]
    fn acknowledged_changesets_are_kept_and_taken_back() {
        let (_dir, mut s) = state_with(5);
        record_ack(&mut s, "r", 3).unwrap();
        assert_eq!(seqs(&load_pending(&mut s, None, &Sent::new(), 100).unwrap()), [4, 5]);
        // a pass reads on past what it sent, a window at a time
        assert_eq!(seqs(&load_pending(&mut s, None, &Sent::new(), 1).unwrap()), [4]);
        assert_eq!(seqs(&load_pending(&mut s, None, &Sent::from([("r".to_owned(), 4)]), 100).unwrap()), [5]);
        assert_eq!(seqs(&load_pending(&mut s, None, &Sent::from([("r".to_owned(), 2)]), 100).unwrap()), [4, 5]);
        assert_eq!(backlog(&mut s, Some("r")).unwrap().changesets, 2);
        assert_eq!(s.resource_state("r").unwrap().backlog_rows, 20);
        // an older acknowledgement changes nothing
        record_ack(&mut s, "r", 2).unwrap();
        assert_eq!(acked_seq(&mut s, "r").unwrap(), 3);
        assert_eq!(take_back(&mut s, "r", 2, 3).unwrap().unwrap(), 2);
        let pending = load_pending(&mut s, Some("r"), &Sent::new(), 100).unwrap();
        assert_eq!(seqs(&pending), [2, 3, 4, 5]);
        assert_eq!(pending[0].3, vec![2u8; LENGTH_PREFIX + 1]);
        assert_eq!(acked_seq(&mut s, "r").unwrap(), 1);
        let acks: i64 = s.conn().query_row("SELECT count(*) FROM acks", [], |r| r.get(0)).unwrap();
        assert_eq!(acks, 0, "the acknowledgement of 3 is undone");
        // held resources send nothing
        s.conn().execute("UPDATE resources SET held = 'x'", []).unwrap();
        assert!(load_pending(&mut s, None, &Sent::new(), 100).unwrap().is_empty());
    }

    /// At most KEEP_ACKED acknowledged changesets a resource are kept, and
    /// none acknowledged more than KEEP_ACKED_SECS ago.
    #[test]
    fn acknowledged_changesets_are_kept_for_a_while() {
        let n = KEEP_ACKED as u64 + 10;
        let (_dir, mut s) = state_with(n);
        for seq in 1..=n {
            record_ack(&mut s, "r", seq).unwrap();
        }
        let kept = |s: &mut State| -> (i64, i64) {
            s.conn().query_row("SELECT count(*), min(seq) FROM outbox", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
        };
        assert_eq!(kept(&mut s), (KEEP_ACKED, 11));
        assert!(matches!(take_back(&mut s, "r", 10, n).unwrap(), Err(NotKept { .. })));
        assert_eq!(take_back(&mut s, "r", n, n).unwrap().unwrap(), 1);
        // acknowledgements up to 2,000 older than the keeping
        s.conn().execute("UPDATE acks SET at = at - ?1 WHERE seq <= 2000", [KEEP_ACKED_SECS + 1]).unwrap();
        record_ack(&mut s, "r", n).unwrap();
        assert_eq!(kept(&mut s), (i64::try_from(n).unwrap() - 2000, 2001));
        assert!(load_pending(&mut s, None, &Sent::new(), 100).unwrap().is_empty());
    }
}
