//! Controlled exchange at a hub: requests and grants, deliveries, lookups,
//! and their store-and-forward through the hierarchy (`exchange.db`).
//!
//! A request is filed at the consumer's hub (id `DIVISION-N`) against that
//! hub's copy of the catalogue; the record then flows up to the province and
//! down to the provider's hub, which alone changes it afterwards (approve,
//! deny, revoke), each change one version up. Every hub keeps the highest
//! version of each record concerning its subtree.
//!
//! The provider's hub produces the deliveries of each live grant from the
//! changeset frames kept in the provider's vault: the granted columns of
//! each changeset, sensitive ones masked, numbered per grant without gaps
//! and signed by the hub. Deliveries flow like records (up when the consumer
//! is outside this hub's division, down to the child hub whose division
//! holds it) and wait at the consumer's hub, which also keeps the rows
//! delivered so far for lookups. Every stored item gets this hub's next
//! change number (`rev`); a link's cursor is the last number the other side
//! stored, so a pass repeated after a kill stores nothing twice (records by
//! version, deliveries by grant and number).
//!
//! This module files and decides requests; `delivery` produces and fetches
//! deliveries, `lookups` answers lookups from the copy kept here, `relay`
//! moves records and deliveries between hubs, `doorbell` tells the
//! consumer's side at once that a delivery was stored, `listing` is
//! `gdx-hub grants`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::args;
use crate::store::HubPaths;
use crate::store::db::{Db, OptionalExtension, Sql, Tx, Which};
use gdx_common::catalog::CatalogEntry;
use gdx_common::data::{Changeset, decode_changeset, encode_changeset};
use gdx_common::grant::{self, Request, RequestRecord, Status};
use gdx_common::route::{Place, Router};
use gdx_common::wire::{Decision, ExchangeBatch, Progress, RequestForm, SignedDelivery, Verdict};
use gdx_common::{DivisionCode, NodeId};

mod checks;
mod delivery;
pub mod doorbell;
mod listing;
mod lookups;
mod notices;
mod published;
mod refusal;
mod relay;
mod replica;

pub use listing::table;
pub use lookups::Lookups;
pub use refusal::Refusal;
pub use relay::{REQUEST_ID_GAP, RESTORE_GAP, parent_restored};

/// Largest batch of deliveries in one answer or push, in body bytes.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Items examined per push or pull.
const BATCH_ITEMS: i64 = 500;
/// Seconds added to the exchange's clock, from `GDX_CLOCK_OFFSET` (for
/// drills and tests: what happens when grants expire or answers are
/// overdue); 0 when unset. Only grant validity and answer deadlines use it.
pub fn clock_offset() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| std::env::var("GDX_CLOCK_OFFSET").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0))
}

/// The exchange's clock: Unix seconds plus [`clock_offset`].
pub fn clock() -> i64 {
    crate::util::now() + clock_offset()
}

/// Changesets turned into deliveries per grant per pass.
pub(crate) const PRODUCE_PER_PASS: u64 = 32;

/// Why the exchange store failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the exchange database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", crate::store::db::failed("exchange", .0))]
    Db(#[from] crate::store::db::DbError),
    #[error("{0}")]
    Damaged(String),
    /// The vaults' PostgreSQL store failed (unreachable, say): tried again.
    #[error("{0}")]
    Store(String),
    /// `hub.db`, where lookups are logged, failed.
    #[error("{0}")]
    Hub(#[from] crate::store::StoreError),
    /// A record could not be written as text: nothing was stored.
    #[error("a request record could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The exchange store's own tables.
const TABLES: &str = "CREATE TABLE IF NOT EXISTS requests (
    id       TEXT PRIMARY KEY,
    consumer TEXT NOT NULL,
    provider TEXT NOT NULL,
    code     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    record   TEXT NOT NULL,
    rev      INTEGER NOT NULL,
    -- the order requests were first stored in, newest last
    first_rev INTEGER
);
CREATE INDEX IF NOT EXISTS requests_rev ON requests (rev);
CREATE TABLE IF NOT EXISTS deliveries (
    grant_id TEXT NOT NULL,
    n        INTEGER NOT NULL,
    consumer TEXT NOT NULL,
    provider TEXT NOT NULL,
    rows     INTEGER NOT NULL,
    frame    BLOB NOT NULL,
    rev      INTEGER NOT NULL,
    PRIMARY KEY (grant_id, n)
);
CREATE INDEX IF NOT EXISTS deliveries_rev ON deliveries (rev);
-- at the provider's hub: where each grant's production stands
CREATE TABLE IF NOT EXISTS producers (
    grant_id TEXT PRIMARY KEY,
    epoch    INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    error    TEXT
);
-- how far each consumer applied its deliveries, as known here
CREATE TABLE IF NOT EXISTS progress (
    grant_id TEXT PRIMARY KEY,
    consumer TEXT NOT NULL,
    provider TEXT NOT NULL,
    n        INTEGER NOT NULL,
    rows     INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    rev      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS progress_rev ON progress (rev);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

/// Signs deliveries: this hub's key and certificate chain.
pub struct HubSigner {
    pub key: rcgen::KeyPair,
    pub chain: Vec<Vec<u8>>,
}

/// One grant or request as `gdx-hub grants` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub record: RequestRecord,
    /// pending, OVERDUE, granted, expired, refused, denied, revoked.
    pub state: String,
    /// Deliveries the consumer applied, and their rows, as known here.
    pub delivered: u64,
    pub rows_delivered: u64,
    /// Deliveries produced (at the provider's hub only).
    pub produced: u64,
    /// Why production stopped, if it did.
    pub error: Option<String>,
}

/// The exchange store of one hub.
pub struct Exchange {
    conn: Db,
    router: Router,
    vault_dir: PathBuf,
    /// The vaults on PostgreSQL, when they are there instead of in `vault_dir`.
    postgres: Option<std::sync::Arc<crate::store::pg::PgVaults>>,
    signer: Option<HubSigner>,
    /// Rung for the consumer of each delivery stored here.
    pub doorbell: std::sync::Arc<doorbell::Doorbell>,
}

impl Exchange {
    /// Opens (creating if needed) the exchange store of the hub in
    /// `hub_dir`: `exchange.db`, or the schema `gdx_exchange` on PostgreSQL.
    pub fn open(hub_dir: &Path, hub: NodeId) -> Result<Self, ExchangeError> {
        let mut conn = Db::open(&HubPaths::new(hub_dir), Which::Exchange, &Self::tables())?;
        upgrade(&mut conn, hub_dir)?;
        Ok(Self {
            conn,
            router: Router { division: hub.division(), children: Vec::new() },
            vault_dir: HubPaths::new(hub_dir).vaults(),
            postgres: None,
            signer: None,
            doorbell: std::sync::Arc::default(),
        })
    }

    /// Every table of the exchange store.
    pub(crate) fn tables() -> String {
        [TABLES, notices::NOTICES_SQL, checks::CHECKS_SQL, replica::REPLICA_SQL, crate::store::outbox::OUTBOX_SQL]
            .concat()
    }

    /// Reads the providers' changesets from the vaults on PostgreSQL.
    pub fn set_postgres(&mut self, pg: std::sync::Arc<crate::store::pg::PgVaults>) {
        self.postgres = Some(pg);
    }

    /// The key and chain deliveries produced here are signed with.
    pub fn set_signer(&mut self, signer: HubSigner) {
        self.signer = Some(signer);
    }

    /// The divisions of the child hubs joined below this one.
    pub fn set_children(&mut self, children: Vec<DivisionCode>) {
        self.router.children = children;
    }

    /// A change number of this hub, read by the link cursors.
    pub fn meta(&self, name: &str) -> Result<u64, ExchangeError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE name = ?1", args![name], |r| r.get::<i64>(0))
            .optional()?
            .unwrap_or(0) as u64)
    }

    fn set_meta(tx: &Tx<'_>, name: &str, value: u64) -> Result<(), ExchangeError> {
        tx.execute(
            "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            args![name, value as i64],
        )?;
        Ok(())
    }

    fn next(tx: &Tx<'_>, name: &str) -> Result<u64, ExchangeError> {
        let v: i64 =
            tx.query_row("SELECT coalesce(max(value), 0) FROM meta WHERE name = ?1", args![name], |r| r.get(0))?;
        Self::set_meta(tx, name, v as u64 + 1)?;
        Ok(v as u64 + 1)
    }

    /// One record by id.
    pub fn record(&self, id: &str) -> Result<Option<RequestRecord>, ExchangeError> {
        let json: Option<String> =
            self.conn.query_row("SELECT record FROM requests WHERE id = ?1", args![id], |r| r.get(0)).optional()?;
        json.map(|j| parse_record(&j)).transpose()
    }

    fn records_where(&self, sql_where: &str, arg: &str) -> Result<Vec<RequestRecord>, ExchangeError> {
        records_where(&self.conn, sql_where, arg)
    }

    /// The requests `node` filed or must decide, newest first, as it may see them.
    pub fn records_of(&self, node: &NodeId) -> Result<Vec<RequestRecord>, ExchangeError> {
        Ok(self
            .records_where("consumer = ?1 OR provider = ?1", &node.to_string())?
            .into_iter()
            .map(RequestRecord::for_agent)
            .collect())
    }

    /// Stores `r` if it is newer than what is held; true when stored.
    fn store(tx: &Tx<'_>, r: &RequestRecord) -> Result<bool, ExchangeError> {
        let held: Option<i64> =
            tx.query_row("SELECT version FROM requests WHERE id = ?1", args![&r.id], |x| x.get(0)).optional()?;
        if held.is_some_and(|v| v as u64 >= r.version) {
            return Ok(false);
        }
        let rev = Self::next(tx, "rev")?;
        tx.execute(
            "INSERT INTO requests (id, consumer, provider, code, version, record, rev, first_rev)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT(id) DO UPDATE SET version = excluded.version, record = excluded.record, rev = excluded.rev",
            args![
                r.id,
                r.consumer.to_string(),
                r.provider.to_string(),
                r.code,
                r.version as i64,
                serde_json::to_string(r)?,
                rev as i64
            ],
        )?;
        Ok(true)
    }

    /// Files a request from `consumer`, attached to this hub, against
    /// `entry` (this hub's copy of the catalogue).
    pub fn file(
        &mut self,
        consumer: &NodeId,
        form: &RequestForm,
        entry: Option<(CatalogEntry, bool)>,
        now: i64,
    ) -> Result<Result<RequestRecord, Refusal>, ExchangeError> {
        let Some((entry, withdrawn)) = entry else {
            return Ok(Err(Refusal::NoEntry { code: form.code.clone() }));
        };
        if withdrawn {
            return Ok(Err(Refusal::Withdrawn { code: entry.code, name: entry.name }));
        }
        let open = self
            .records_where("consumer = ?1", &consumer.to_string())?
            .into_iter()
            .find(|r| r.code == entry.code && (matches!(r.status, Status::Pending { .. }) || r.is_live(now)));
        if let Some(r) = open {
            return Ok(Err(Refusal::AlreadyOpen { id: r.id.clone(), code: r.code.clone(), state: r.state(now) }));
        }
        // Mistakes in the request are answered, not recorded.
        if let Err(e) = grant::resolve_fields(&entry, &form.fields) {
            return Ok(Err(e.into()));
        }
        let req = Request {
            consumer: consumer.clone(),
            code: entry.code.clone(),
            fields: form.fields.clone(),
            purpose: form.purpose.clone(),
            until: form.until,
            filed_at: now,
        };
        if let grant::Filing::Refused(why) = grant::file(&entry, &req, now.div_euclid(86_400))
            && entry.sharing_type != gdx_common::catalog::SharingType::NotShared
        {
            return Ok(Err(why.into()));
        }
        let tx = self.conn.begin()?;
        // an id already held (news of it came first, from a hub that should not have) is skipped
        let record = loop {
            let n = Self::next(&tx, "request_id")?;
            let mut record = RequestRecord::filed(format!("{}-{n}", self.router.division), &entry, &req, now);
            salted(&mut record);
            if Self::store(&tx, &record)? {
                break record;
            }
        };
        audit(
            &tx,
            "request",
            &record,
            serde_json::json!({
                "state": record.state(now), "provider": record.provider.to_string(), "fields": record.fields,
                "purpose": record.purpose, "until": record.until, "columns": record.columns, "masked": record.masked,
            }),
        )?;
        tx.commit()?;
        self.doorbell.record_stored();
        Ok(Ok(record))
    }

    /// The provider `node` decides on request `decision.id`; `entry` is the
    /// request's catalogue entry as this hub holds it.
    pub fn decide(
        &mut self,
        node: &NodeId,
        decision: &Decision,
        entry: impl FnOnce(&str) -> Option<CatalogEntry>,
        now: i64,
    ) -> Result<Result<RequestRecord, Refusal>, ExchangeError> {
        let Some(mut r) = self.record(&decision.id)? else {
            return Ok(Err(Refusal::NotArrived { id: decision.id.clone() }));
        };
        if &r.provider != node {
            return Ok(Err(Refusal::NotTheProvider { id: r.id, provider: r.provider, code: r.code }));
        }
        let state = r.state(now);
        if reason_of(&decision.verdict).is_some_and(|t| t.trim().is_empty()) {
            return Ok(Err(Refusal::NoReason));
        }
        match &decision.verdict {
            Verdict::Approve { fields, until, clear } => {
                if !matches!(r.status, Status::Pending { .. }) {
                    return Ok(Err(Refusal::NotPending { id: r.id, state, verb: "approved" }));
                }
                let Some(entry) = entry(&r.code) else {
                    return Ok(Err(Refusal::EntryGone { code: r.code }));
                };
                let columns = match fields {
                    Some(f) => match grant::resolve_fields(&entry, f).and_then(|c| grant::approve(&r.fields, Some(&c)))
                    {
                        Ok(c) => c,
                        Err(e) => return Ok(Err(e.into())),
                    },
                    None => r.fields.clone(),
                };
                let clear = match clear.is_empty() {
                    true => Vec::new(),
                    false => match grant::resolve_fields(&entry, clear) {
                        Ok(c) => c,
                        Err(e) => return Ok(Err(e.into())),
                    },
                };
                let today = now.div_euclid(86_400);
                if let Some(asked) = r.until.filter(|d| *d < today) {
                    return Ok(Err(Refusal::AskedUntilPassed { id: r.id, asked }));
                }
                if until.is_some_and(|d| d < today) {
                    return Ok(Err(Refusal::GrantEndsInPast));
                }
                if let (Some(asked), Some(given)) = (r.until, *until)
                    && given > asked
                {
                    return Ok(Err(Refusal::Extends { asked }));
                }
                let until = until.or(r.until);
                r.grant(&entry, columns, &clear, until, now);
                salted(&mut r);
            }
            Verdict::Deny { reason } => {
                if !matches!(r.status, Status::Pending { .. }) {
                    return Ok(Err(Refusal::NotPending { id: r.id, state, verb: "denied" }));
                }
                r.status = Status::Denied { reason: reason.clone() };
                r.decided_at = Some(now);
            }
            Verdict::Revoke { reason } => {
                if r.status != Status::Granted {
                    return Ok(Err(Refusal::NotAGrant { id: r.id, state }));
                }
                r.status = Status::Revoked { reason: reason.clone(), at: now };
            }
        }
        r.version += 1;
        let tx = self.conn.begin()?;
        Self::store(&tx, &r)?;
        let verdict = match &decision.verdict {
            Verdict::Approve { .. } => "approve",
            Verdict::Deny { .. } => "deny",
            Verdict::Revoke { .. } => "revoke",
        };
        audit(
            &tx,
            "decision",
            &r,
            serde_json::json!({
                "verdict": verdict, "consumer": r.consumer.to_string(), "columns": r.columns, "masked": r.masked,
                "until": r.granted_until, "reason": reason_of(&decision.verdict), "version": r.version,
            }),
        )?;
        tx.commit()?;
        self.doorbell.record_stored();
        Ok(Ok(r))
    }
}

/// Brings an exchange store made by an older gdx-hub to this layout.
pub(crate) fn upgrade(conn: &mut Db, hub_dir: &Path) -> Result<(), ExchangeError> {
    if let Db::Sqlite(file) = conn {
        file.busy_timeout(Duration::from_secs(10))?;
        // the old layout of the lookup copy is converted once `run` has backed the directory up
        if crate::store::format::is_current(hub_dir) {
            replica::migrate(file)?;
        }
    }
    if !conn.has_column("requests", "first_rev")? {
        // a store made before requests kept their first order: SQLite's row numbers are it
        // (looked for again under the lock: two processes opening it at once add it once)
        conn.write(|tx| {
            if !conn.has_column("requests", "first_rev")? {
                tx.execute_batch("ALTER TABLE requests ADD COLUMN first_rev INTEGER")?;
                tx.execute("UPDATE requests SET first_rev = rowid", args![])?;
            }
            Ok::<_, crate::store::db::DbError>(())
        })?;
    }
    Ok(())
}

/// Gives a record that becomes a grant its secret, if it has none yet.
fn salted(r: &mut RequestRecord) {
    if r.status == Status::Granted && r.salt.is_empty() {
        r.salt = gdx_common::token::hex(&gdx_certs::pki::random_bytes::<16>());
    }
}

/// The pseudonym of a key (its [`grant::key_text`]) under a grant's secret:
/// SHA-256 of the secret and the key, 32 hex digits. Hubs that know the
/// secret find a row by its key; the consumer's copy never shows the key.
pub fn pseudonym(salt: &str, key_text: &str) -> String {
    let mut input = Vec::with_capacity(salt.len() + key_text.len() + 1);
    input.extend_from_slice(salt.as_bytes());
    input.push(0);
    input.extend_from_slice(key_text.as_bytes());
    gdx_common::token::hex(&gdx_certs::pki::sha256(&input)[..16])
}

/// The records of the requests `WHERE sql_where` (with `?1` = `arg`), newest first.
fn records_where(conn: &impl Sql, sql_where: &str, arg: &str) -> Result<Vec<RequestRecord>, ExchangeError> {
    let mut stmt = conn.prepare(&format!("SELECT record FROM requests WHERE {sql_where} ORDER BY first_rev DESC"))?;
    let rows: Vec<String> = stmt.query_map(args![arg], |r| r.get(0))?.collect::<Result<_, _>>()?;
    rows.iter().map(|j| parse_record(j)).collect()
}

/// An exchange event about `r`. Its time is the real clock, even when the
/// exchange's clock is offset for a drill.
fn event(kind: &str, r: &RequestRecord, detail: serde_json::Value) -> gdx_common::audit::Event {
    gdx_common::audit::Event {
        kind: kind.into(),
        at: crate::util::now(),
        node: Some(if kind == "decision" { r.provider.to_string() } else { r.consumer.to_string() }),
        resource: Some(r.code.clone()),
        request: Some(r.id.clone()),
        detail,
    }
}

/// Records an exchange event about `r` in the audit outbox, in the caller's transaction.
fn audit(
    conn: &impl Sql,
    kind: &str,
    r: &RequestRecord,
    detail: serde_json::Value,
) -> Result<(), crate::store::db::DbError> {
    crate::store::outbox::note(conn, &event(kind, r, detail))
}

fn reason_of(v: &Verdict) -> Option<&str> {
    match v {
        Verdict::Deny { reason } | Verdict::Revoke { reason } => Some(reason),
        Verdict::Approve { .. } => None,
    }
}

fn parse_record(json: &str) -> Result<RequestRecord, ExchangeError> {
    serde_json::from_str(json).map_err(|e| ExchangeError::Damaged(format!("a stored request does not decode: {e}")))
}

#[cfg(test)]
mod tests;
