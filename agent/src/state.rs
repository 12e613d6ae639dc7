//! `state.db`: what the running agent reports about itself.
//!
//! The daemon writes its connection state and a heartbeat here; `status`
//! and `doctor` read them from another process. WAL mode and a busy
//! timeout let both sides work at once. Later issues add the sync state and
//! the outbox to the same file, so that state and outbox change in one
//! transaction.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

/// What the agent says, in place of SQLite's words, when its disk is full.
pub fn disk_full_sentence(data: Option<&Path>) -> String {
    let folder = data
        .map_or_else(|| "the agent's data folder".to_owned(), |d| format!("the agent's data folder {}", d.display()));
    format!(
        "the disk holding {folder} is full; free some space there, then run the command again \
         (nothing is lost: the source keeps its rows, and what was not yet sent waits in the outbox)"
    )
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS status (key TEXT PRIMARY KEY, value TEXT);
-- one row per resource: its schema as last synced, numbering, pause reason
CREATE TABLE IF NOT EXISTS resources (
    code       TEXT PRIMARY KEY,
    columns    TEXT NOT NULL,
    key        TEXT NOT NULL,
    next_seq   INTEGER NOT NULL DEFAULT 1,
    acked_seq  INTEGER NOT NULL DEFAULT 0,
    paused     TEXT,
    -- set when the hub rejected a changeset: uploads of this resource stop
    held       TEXT,
    -- random, fixed at the first scan; see gdx_common::data::Changeset::epoch
    epoch      INTEGER NOT NULL DEFAULT (abs(random())),
    last_scan  INTEGER,
    last_error TEXT,
    rows       INTEGER NOT NULL DEFAULT 0,
    -- how its rows' digests are made (gdx_common::data::DigestKind): set
    -- when it holds no saved rows, fixed while it does
    digest     INTEGER NOT NULL DEFAULT 1
);
-- reads by watermark (resources with `changed`): the greatest value seen
-- before the last read and before the one ahead of it (JSON of a Value),
-- and when the resource was last read whole
CREATE TABLE IF NOT EXISTS watermarks (
    code          TEXT PRIMARY KEY,
    watermark     TEXT,
    previous      TEXT,
    reconciled_at INTEGER
);
-- the digest of every row as last synced, by encoded key
CREATE TABLE IF NOT EXISTS rowstate (
    resource TEXT NOT NULL,
    key      BLOB NOT NULL,
    digest   BLOB NOT NULL,
    PRIMARY KEY (resource, key)
) WITHOUT ROWID;
-- signed changesets: those numbered above their resource's acked_seq wait
-- for the hub; those at or below it were acknowledged, and are kept 14 days
-- (at most 2,000 a resource) to send again to a hub restored from an older
-- backup
CREATE TABLE IF NOT EXISTS outbox (
    resource TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    rows     INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (resource, seq)
);
-- when the hub acknowledged each resource's changesets up to seq
CREATE TABLE IF NOT EXISTS acks (
    resource TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (resource, seq)
) WITHOUT ROWID;
-- catalogue entries as last published, and the signed version awaiting the hub
CREATE TABLE IF NOT EXISTS catalog (
    code      TEXT PRIMARY KEY,
    resource  TEXT NOT NULL,
    version   INTEGER NOT NULL,
    withdrawn INTEGER NOT NULL DEFAULT 0,
    entry     TEXT NOT NULL,
    envelope  BLOB,
    refused   TEXT,
    -- the highest version the hub recorded (0: it never did)
    recorded  INTEGER NOT NULL DEFAULT 0,
    -- the hub held a newer version: the next scan publishes above it
    restage   INTEGER NOT NULL DEFAULT 0
);
-- resources whose last scan's quarantine the hub has not been told of yet
CREATE TABLE IF NOT EXISTS quality_outbox (
    resource TEXT PRIMARY KEY,
    at       INTEGER NOT NULL,
    scanned  INTEGER NOT NULL
);
-- rows and files set aside by the last scan of each resource
CREATE TABLE IF NOT EXISTS quarantine (
    resource TEXT NOT NULL,
    place    TEXT NOT NULL,
    reason   TEXT NOT NULL,
    content  TEXT NOT NULL,
    at       INTEGER NOT NULL
);
";

/// A daemon heartbeat older than this means `gdx-agent run` is not running.
pub const HEARTBEAT_STALE_SECS: i64 = 30;

/// The daemon's view of its link to the hub.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkState {
    /// `connecting`, `connected` or `disconnected`.
    pub state: String,
    /// When the state last changed, Unix seconds.
    pub since: Option<i64>,
    /// Why the last attempt or connection failed.
    pub last_error: Option<String>,
    /// When the next attempt is due, while disconnected.
    pub next_retry: Option<i64>,
    /// The hub's software, from its welcome.
    pub hub_software: Option<String>,
    /// The daemon's last heartbeat.
    pub heartbeat: Option<i64>,
}

/// The agent's state database.
pub struct State {
    conn: Connection,
}

impl State {
    /// Opens (creating if needed) `state.db`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let mut conn = gdx_files::open_sqlite(path, SCHEMA)?;
        // Scans write `rowstate` in key order, a changeset at a time.
        conn.pragma_update(None, "cache_size", -16 * 1024)?;
        // the saved digests are read beside the source through a map of the file
        conn.pragma_update(None, "mmap_size", crate::sources::MMAP_BYTES)?;
        upgrade(&mut conn)?;
        Ok(Self { conn })
    }

    /// Takes the agent's scan lock (`scan.lock` beside `state.db`), waiting
    /// for another process's scan to finish.
    pub fn scan_lock(&self) -> std::io::Result<std::fs::File> {
        let path = self.conn.path().map(|p| std::path::Path::new(p).with_file_name("scan.lock")).unwrap_or_default();
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        file.lock()?;
        Ok(file)
    }

    /// The underlying connection, for the sync and upload modules.
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    fn set(&self, pairs: &[(&str, Option<String>)]) -> rusqlite::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for (k, v) in pairs {
            tx.execute(
                "INSERT INTO status (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )?;
        }
        tx.commit()
    }

    fn get(&self, key: &str) -> rusqlite::Result<Option<String>> {
        Ok(self.conn.query_row("SELECT value FROM status WHERE key = ?1", [key], |r| r.get(0)).optional()?.flatten())
    }

    /// Records a state change.
    pub fn set_link(
        &self,
        state: &str,
        now: i64,
        error: Option<&str>,
        next_retry: Option<i64>,
    ) -> rusqlite::Result<()> {
        let mut pairs = vec![
            ("state", Some(state.to_owned())),
            ("since", Some(now.to_string())),
            ("next_retry", next_retry.map(|t| t.to_string())),
            ("heartbeat", Some(now.to_string())),
        ];
        if let Some(e) = error {
            pairs.push(("last_error", Some(e.to_owned())));
        }
        self.set(&pairs)
    }

    /// Records the hub's software after a welcome.
    pub fn set_hub_software(&self, software: &str) -> rusqlite::Result<()> {
        self.set(&[("hub_software", Some(software.to_owned()))])
    }

    /// Writes the daemon's heartbeat.
    pub fn heartbeat(&self, now: i64) -> rusqlite::Result<()> {
        self.set(&[("heartbeat", Some(now.to_string()))])
    }

    /// Reads the link state.
    pub fn link(&self) -> rusqlite::Result<LinkState> {
        let num = |k| -> rusqlite::Result<Option<i64>> { Ok(self.get(k)?.and_then(|v| v.parse().ok())) };
        Ok(LinkState {
            state: self.get("state")?.unwrap_or_else(|| "never started".into()),
            since: num("since")?,
            last_error: self.get("last_error")?,
            next_retry: num("next_retry")?,
            hub_software: self.get("hub_software")?,
            heartbeat: num("heartbeat")?,
        })
    }

    /// Changesets waiting for the hub, and their rows, of `only` (every
    /// resource when `None`): those numbered above their resource's
    /// `acked_seq`.
    pub fn waiting(&self, only: Option<&str>) -> rusqlite::Result<(i64, i64)> {
        self.conn.query_row(
            "SELECT count(*), coalesce(sum(o.rows), 0) FROM resources r CROSS JOIN outbox o ON o.resource = r.code
             WHERE (?1 IS NULL OR r.code = ?1) AND o.seq > r.acked_seq",
            [only],
            |x| Ok((x.get(0)?, x.get(1)?)),
        )
    }
}

/// One resource as the agent last saw it, for `status` and `doctor`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResourceState {
    pub code: String,
    pub rows: i64,
    /// Changesets acknowledged by the hub (highest number).
    pub acked_seq: i64,
    /// Changesets produced (highest number).
    pub last_seq: i64,
    pub paused: Option<String>,
    /// Why uploads of this resource are held (the hub rejected a changeset).
    pub held: Option<String>,
    pub last_scan: Option<i64>,
    pub last_error: Option<String>,
    pub backlog_changesets: i64,
    pub backlog_rows: i64,
    pub quarantined: i64,
    /// The first quarantined rows or files, with their reasons.
    pub quarantine: Vec<QuarantineEntry>,
}

/// A row or file set aside by the last scan.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QuarantineEntry {
    pub place: String,
    pub reason: String,
    pub content: String,
}

/// How many quarantine entries `status` lists per resource.
pub const QUARANTINE_SHOWN: i64 = 20;

impl State {
    /// The saved state of `code` (defaults when it was never scanned).
    pub fn resource_state(&self, code: &str) -> rusqlite::Result<ResourceState> {
        let mut r = self
            .conn
            .query_row(
                "SELECT rows, acked_seq, next_seq - 1, paused, last_scan, last_error, held FROM resources WHERE code = ?1",
                [code],
                |r| {
                    Ok(ResourceState {
                        code: code.to_owned(),
                        rows: r.get(0)?,
                        acked_seq: r.get(1)?,
                        last_seq: r.get(2)?,
                        paused: r.get(3)?,
                        last_scan: r.get(4)?,
                        last_error: r.get(5)?,
                        held: r.get(6)?,
                        ..ResourceState::default()
                    })
                },
            )
            .optional()?
            .unwrap_or_else(|| ResourceState { code: code.to_owned(), ..ResourceState::default() });
        (r.backlog_changesets, r.backlog_rows) = self.waiting(Some(code))?;
        r.quarantined =
            self.conn.query_row("SELECT count(*) FROM quarantine WHERE resource = ?1", [code], |x| x.get(0))?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT place, reason, content FROM quarantine WHERE resource = ?1 ORDER BY rowid LIMIT ?2",
        )?;
        r.quarantine = stmt
            .query_map(params![code, QUARANTINE_SHOWN], |x| {
                Ok(QuarantineEntry { place: x.get(0)?, reason: x.get(1)?, content: x.get(2)? })
            })?
            .collect::<Result<_, _>>()?;
        Ok(r)
    }
}

/// The format of `state.db`, in its `user_version`: 1 since the keys of
/// `rowstate` sort like their values ([`gdx_common::key`]); 0 before, when
/// they were bincode; 2 since each resource records its rows' digest kind
/// (`resources.digest`; resources saved before keep the first kind); 3
/// since acknowledged changesets stay in `outbox`, below `acked_seq`, with
/// their times in `acks` (before, they were copied to `acked_outbox`).
pub(crate) const FORMAT: i64 = 3;

/// The last format that changed how `rowstate`'s keys and digests are
/// made: a row map written beside them names it, and stays usable through
/// later formats that leave them as they are (3 changed only the outbox).
pub(crate) const ROWSTATE_FORMAT: i64 = 2;

/// Brings a `state.db` of an earlier format up to [`FORMAT`], in one
/// transaction: killed at any point, the file stays as it was and the next
/// open does it again. A key that does not decode is dropped (its row is
/// sent again as new, which the hub applies as an upsert).
fn upgrade(conn: &mut Connection) -> rusqlite::Result<()> {
    // read first: every open (status, doctor) would otherwise take the write lock
    let format: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    // an older agent run on this file since has made `acked_outbox` again and
    // moved frames there: they come back whatever the format says
    if format >= FORMAT && !has_acked_outbox(conn)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let format: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if format >= FORMAT {
        keep_acked_in_outbox(&tx)?;
        return tx.commit();
    }
    if format < 1 {
        order_keys(&tx)?;
    }
    // a file made by this build has the column already
    let has_digest: bool =
        tx.query_row("SELECT count(*) FROM pragma_table_info('resources') WHERE name = 'digest'", [], |r| r.get(0))?;
    if !has_digest {
        tx.execute_batch("ALTER TABLE resources ADD COLUMN digest INTEGER NOT NULL DEFAULT 1")?;
    }
    keep_acked_in_outbox(&tx)?;
    tx.execute_batch(&format!("PRAGMA user_version = {FORMAT};"))?;
    tx.commit()
}

/// Format 2 to 3, and again after an older agent ran on the file: the
/// acknowledged changesets kept in `acked_outbox` move back to `outbox`
/// (their numbers are at or below `acked_seq`), their times to `acks`.
fn keep_acked_in_outbox(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    if !has_acked_outbox(tx)? {
        return Ok(());
    }
    tx.execute_batch(
        "INSERT OR IGNORE INTO outbox (resource, seq, rows, envelope)
             SELECT resource, seq, rows, envelope FROM acked_outbox;
         INSERT OR REPLACE INTO acks (resource, seq, at) SELECT resource, seq, acked_at FROM acked_outbox;
         DROP TABLE acked_outbox;",
    )
}

fn has_acked_outbox(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'acked_outbox'", [], |r| {
        r.get(0)
    })
}

/// Format 0 to 1: `rowstate`'s keys re-encoded to sort like their values.
fn order_keys(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE rowstate_ordered (resource TEXT NOT NULL, key BLOB NOT NULL, digest BLOB NOT NULL,
             PRIMARY KEY (resource, key)) WITHOUT ROWID;",
    )?;
    {
        let mut read = tx.prepare("SELECT resource, key, digest FROM rowstate")?;
        let mut write =
            tx.prepare("INSERT OR REPLACE INTO rowstate_ordered (resource, key, digest) VALUES (?1, ?2, ?3)")?;
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let old = r.get_ref(1)?.as_blob().unwrap_or_default();
            let Ok((values, _)) =
                bincode::serde::decode_from_slice::<Vec<gdx_common::data::Value>, _>(old, bincode::config::standard())
            else {
                continue;
            };
            let refs: Vec<&gdx_common::data::Value> = values.iter().collect();
            let key = gdx_common::key::encode_key(&refs);
            write.execute(params![r.get_ref(0)?.as_str()?, key, r.get_ref(2)?.as_blob()?])?;
        }
    }
    tx.execute_batch("DROP TABLE rowstate; ALTER TABLE rowstate_ordered RENAME TO rowstate;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state written before keys were ordered: its keys are re-encoded
    /// once, on open.
    #[test]
    fn an_earlier_state_is_upgraded_once() {
        use gdx_common::data::Value;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let old_key = |v: &[Value]| bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap();
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            let mut ins = c.prepare("INSERT INTO rowstate VALUES ('r', ?1, x'01')").unwrap();
            ins.execute([old_key(&[Value::Integer(300)])]).unwrap();
            ins.execute([old_key(&[Value::Text("a".into()), Value::Integer(-1)])]).unwrap();
            ins.execute([vec![0xffu8, 0xff]]).unwrap();
        }
        let mut s = State::open(&path).unwrap();
        let keys: Vec<Vec<u8>> = {
            let mut q = s.conn().prepare("SELECT key FROM rowstate ORDER BY key").unwrap();
            q.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        };
        let a = Value::Text("a".into());
        let want = [
            gdx_common::key::encode_key(&[&Value::Integer(300)]),
            gdx_common::key::encode_key(&[&a, &Value::Integer(-1)]),
        ];
        assert_eq!(keys, want);
        let format: i64 = s.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(format, FORMAT);
        drop(s);
        // opening again changes nothing
        let mut s = State::open(&path).unwrap();
        let n: i64 = s.conn().query_row("SELECT count(*) FROM rowstate", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2);
    }

    /// A state of format 1 (no digest kinds): its resources keep the first
    /// kind, which their saved digests were made with.
    #[test]
    fn a_state_without_digest_kinds_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute_batch(
                "ALTER TABLE resources DROP COLUMN digest; PRAGMA user_version = 1;
                 INSERT INTO resources (code, columns, key) VALUES ('r', '[]', '[]');",
            )
            .unwrap();
        }
        let mut s = State::open(&path).unwrap();
        let digest: i64 =
            s.conn().query_row("SELECT digest FROM resources WHERE code = 'r'", [], |r| r.get(0)).unwrap();
        assert_eq!(gdx_common::data::DigestKind::from_code(digest), Some(gdx_common::data::DigestKind::Fnv));
        let format: i64 = s.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(format, FORMAT);
    }

    /// The table of acknowledged changesets before format 3.
    const ACKED_OUTBOX: &str = "CREATE TABLE acked_outbox (resource TEXT NOT NULL, seq INTEGER NOT NULL,
        rows INTEGER NOT NULL, envelope BLOB NOT NULL, acked_at INTEGER NOT NULL, PRIMARY KEY (resource, seq))";

    /// A state of format 2: acknowledged changesets move from `acked_outbox`
    /// back to `outbox`, below `acked_seq`, their times to `acks`.
    #[test]
    fn a_state_with_acked_outbox_keeps_what_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute_batch(ACKED_OUTBOX).unwrap();
            c.execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO resources (code, columns, key, next_seq, acked_seq) VALUES ('r', '[]', '[]', 4, 2);
                 INSERT INTO acked_outbox VALUES ('r', 1, 5, x'01', 100), ('r', 2, 5, x'02', 200);
                 INSERT INTO outbox VALUES ('r', 3, 5, x'03');",
            )
            .unwrap();
        }
        let mut s = State::open(&path).unwrap();
        let outbox: Vec<(i64, Vec<u8>)> = {
            let mut q = s.conn().prepare("SELECT seq, envelope FROM outbox ORDER BY seq").unwrap();
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
        };
        assert_eq!(outbox, [(1, vec![1]), (2, vec![2]), (3, vec![3])]);
        let acks: Vec<(i64, i64)> = {
            let mut q = s.conn().prepare("SELECT seq, at FROM acks ORDER BY seq").unwrap();
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
        };
        assert_eq!(acks, [(1, 100), (2, 200)]);
        let r = s.resource_state("r").unwrap();
        assert_eq!((r.backlog_changesets, r.backlog_rows), (1, 5));
        assert!(!has_acked_outbox(s.conn()).unwrap());
        // an older agent ran on it since: made acked_outbox again, moved 3 there
        s.conn().execute_batch(ACKED_OUTBOX).unwrap();
        s.conn()
            .execute_batch(
                "INSERT INTO acked_outbox SELECT resource, seq, rows, envelope, 300 FROM outbox WHERE seq = 3;
                 DELETE FROM outbox WHERE seq = 3; UPDATE resources SET acked_seq = 3;",
            )
            .unwrap();
        drop(s);
        let mut s = State::open(&path).unwrap();
        let seqs: Vec<i64> = {
            let mut q = s.conn().prepare("SELECT seq FROM outbox ORDER BY seq").unwrap();
            q.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        };
        assert_eq!(seqs, [1, 2, 3]);
        assert!(!has_acked_outbox(s.conn()).unwrap());
    }

    #[test]
    fn link_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(&dir.path().join("state.db")).unwrap();
        assert_eq!(s.link().unwrap().state, "never started");
        s.set_link("disconnected", 10, Some("boom"), Some(15)).unwrap();
        s.set_link("connected", 20, None, None).unwrap();
        let l = s.link().unwrap();
        assert_eq!(l.state, "connected");
        assert_eq!(l.since, Some(20));
        assert_eq!(l.last_error.as_deref(), Some("boom"));
        assert_eq!(l.next_retry, None);
        assert_eq!(l.heartbeat, Some(20));
    }
}
