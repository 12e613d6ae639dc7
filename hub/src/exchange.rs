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

use std::path::{Path, PathBuf};
use std::time::Duration;

use gdx_common::catalog::CatalogEntry;
use gdx_common::data::{Changeset, decode_changeset, encode_changeset};
use gdx_common::grant::{self, Request, RequestRecord, Status};
use gdx_common::wire::{self, Decision, ExchangeBatch, Message, Progress, RequestForm, SignedDelivery, Verdict};
use gdx_common::{DivisionCode, NodeId};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

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
const PRODUCE_PER_PASS: u64 = 32;

/// Why the exchange store failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the exchange database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Damaged(String),
}

/// Where a node sits as seen from this hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Attached to this hub.
    Here,
    /// Below the child hub of this division.
    Child(DivisionCode),
    /// Outside this hub's division.
    Outside,
}

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

/// This hub's division and its children's: where a node sits.
#[derive(Debug, Clone)]
pub struct Router {
    pub division: DivisionCode,
    pub children: Vec<DivisionCode>,
}

impl Router {
    /// Where `node` sits as seen from this hub.
    pub fn place(&self, node: &NodeId) -> Place {
        if !self.division.contains(node.division()) {
            return Place::Outside;
        }
        match self.children.iter().find(|c| c.contains(node.division())) {
            Some(c) => Place::Child(*c),
            None => Place::Here,
        }
    }
}

/// The exchange store of one hub.
pub struct Exchange {
    conn: Connection,
    router: Router,
    hub: NodeId,
    vault_dir: PathBuf,
    signer: Option<HubSigner>,
}

impl Exchange {
    /// Opens (creating if needed) `exchange.db` of the hub in `hub_dir`.
    pub fn open(hub_dir: &Path, hub: NodeId) -> Result<Self, ExchangeError> {
        let conn = gdx_certs::files::open_sqlite(
            &hub_dir.join("exchange.db"),
            "CREATE TABLE IF NOT EXISTS requests (
                id       TEXT PRIMARY KEY,
                consumer TEXT NOT NULL,
                provider TEXT NOT NULL,
                code     TEXT NOT NULL,
                version  INTEGER NOT NULL,
                record   TEXT NOT NULL,
                rev      INTEGER NOT NULL
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
            -- at the consumer's hub: the rows delivered so far, for lookups
            CREATE TABLE IF NOT EXISTS replica (
                grant_id TEXT NOT NULL,
                key      TEXT NOT NULL,
                row      TEXT NOT NULL,
                PRIMARY KEY (grant_id, key)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch(crate::audit::OUTBOX_SQL)?;
        Ok(Self {
            conn,
            router: Router { division: hub.division(), children: Vec::new() },
            hub,
            vault_dir: hub_dir.join("vaults"),
            signer: None,
        })
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
            .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0) as u64)
    }

    fn set_meta(tx: &Transaction<'_>, name: &str, value: u64) -> Result<(), ExchangeError> {
        tx.execute(
            "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![name, value as i64],
        )?;
        Ok(())
    }

    fn next(tx: &Transaction<'_>, name: &str) -> Result<u64, ExchangeError> {
        let v: i64 = tx.query_row("SELECT coalesce(max(value), 0) FROM meta WHERE name = ?1", [name], |r| r.get(0))?;
        Self::set_meta(tx, name, v as u64 + 1)?;
        Ok(v as u64 + 1)
    }

    /// One record by id.
    pub fn record(&self, id: &str) -> Result<Option<RequestRecord>, ExchangeError> {
        let json: Option<String> =
            self.conn.query_row("SELECT record FROM requests WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        json.map(|j| parse_record(&j)).transpose()
    }

    fn records_where(&self, sql_where: &str, arg: &str) -> Result<Vec<RequestRecord>, ExchangeError> {
        let mut stmt =
            self.conn.prepare(&format!("SELECT record FROM requests WHERE {sql_where} ORDER BY rowid DESC"))?;
        let rows: Vec<String> = stmt.query_map([arg], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows.iter().map(|j| parse_record(j)).collect()
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
    fn store(tx: &Transaction<'_>, r: &RequestRecord) -> Result<bool, ExchangeError> {
        let held: Option<i64> =
            tx.query_row("SELECT version FROM requests WHERE id = ?1", [&r.id], |x| x.get(0)).optional()?;
        if held.is_some_and(|v| v as u64 >= r.version) {
            return Ok(false);
        }
        let rev = Self::next(tx, "rev")?;
        tx.execute(
            "INSERT INTO requests (id, consumer, provider, code, version, record, rev) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(id) DO UPDATE SET version = excluded.version, record = excluded.record, rev = excluded.rev",
            params![
                r.id,
                r.consumer.to_string(),
                r.provider.to_string(),
                r.code,
                r.version as i64,
                serde_json::to_string(r).unwrap_or_default(),
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
    ) -> Result<Result<RequestRecord, String>, ExchangeError> {
        let Some((entry, withdrawn)) = entry else {
            return Ok(Err(format!(
                "the catalogue has no entry {}; search it with `gdx-hub catalog search` or GET /api/v1/catalog",
                form.code
            )));
        };
        if withdrawn {
            return Ok(Err(format!("catalogue entry {} {} was withdrawn by its provider", entry.code, entry.name)));
        }
        let open = self
            .records_where("consumer = ?1", &consumer.to_string())?
            .into_iter()
            .find(|r| r.code == entry.code && (matches!(r.status, Status::Pending { .. }) || r.is_live(now)));
        if let Some(r) = open {
            return Ok(Err(format!(
                "request {} for {} is already {}; see `gdx-agent requests`",
                r.id,
                r.code,
                r.state(now)
            )));
        }
        // Mistakes in the request are answered, not recorded.
        if let Err(e) = grant::resolve_fields(&entry, &form.fields) {
            return Ok(Err(e));
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
            return Ok(Err(why));
        }
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = Self::next(&tx, "request_id")?;
        let mut record = RequestRecord::filed(format!("{}-{n}", self.router.division), &entry, &req, now);
        salted(&mut record);
        Self::store(&tx, &record)?;
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
    ) -> Result<Result<RequestRecord, String>, ExchangeError> {
        let Some(mut r) = self.record(&decision.id)? else {
            return Ok(Err(format!(
                "no request {} has reached this hub; `gdx-agent requests` lists the requests you can decide",
                decision.id
            )));
        };
        if &r.provider != node {
            return Ok(Err(format!(
                "request {} asks {} for {}; only that provider can decide it",
                r.id, r.provider, r.code
            )));
        }
        let state = r.state(now);
        if reason_of(&decision.verdict).is_some_and(|t| t.trim().is_empty()) {
            return Ok(Err("say why with --reason".into()));
        }
        match &decision.verdict {
            Verdict::Approve { fields, until, clear } => {
                if !matches!(r.status, Status::Pending { .. }) {
                    return Ok(Err(format!("request {} is {state}; only a pending request can be approved", r.id)));
                }
                let Some(entry) = entry(&r.code) else {
                    return Ok(Err(format!("the catalogue here has no entry {} any more", r.code)));
                };
                let columns = match fields {
                    Some(f) => match grant::resolve_fields(&entry, f).and_then(|c| grant::approve(&r.fields, Some(&c)))
                    {
                        Ok(c) => c,
                        Err(e) => return Ok(Err(e)),
                    },
                    None => r.fields.clone(),
                };
                let clear = match clear.is_empty() {
                    true => Vec::new(),
                    false => match grant::resolve_fields(&entry, clear) {
                        Ok(c) => c,
                        Err(e) => return Ok(Err(e)),
                    },
                };
                let today = now.div_euclid(86_400);
                if let Some(asked) = r.until.filter(|d| *d < today) {
                    return Ok(Err(format!(
                        "request {} asked for data until {}, which has passed; deny it and let the consumer file a new one",
                        r.id,
                        gdx_common::units::format_date(asked * 86_400)
                    )));
                }
                if until.is_some_and(|d| d < today) {
                    return Ok(Err("the end date of the grant is in the past".into()));
                }
                if let (Some(asked), Some(given)) = (r.until, *until)
                    && given > asked
                {
                    return Ok(Err(format!(
                        "the request asked for data until {}; an approval can shorten that, not extend it",
                        gdx_common::units::format_date(asked * 86_400)
                    )));
                }
                let until = until.or(r.until);
                r.grant(&entry, columns, &clear, until, now);
                salted(&mut r);
            }
            Verdict::Deny { reason } => {
                if !matches!(r.status, Status::Pending { .. }) {
                    return Ok(Err(format!("request {} is {state}; only a pending request can be denied", r.id)));
                }
                r.status = Status::Denied { reason: reason.clone() };
                r.decided_at = Some(now);
            }
            Verdict::Revoke { reason } => {
                if r.status != Status::Granted {
                    return Ok(Err(format!("request {} is {state}; only a grant can be revoked", r.id)));
                }
                r.status = Status::Revoked { reason: reason.clone(), at: now };
            }
        }
        r.version += 1;
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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
        Ok(Ok(r))
    }

    /// Deliveries of grant `id` numbered above `after`, for `consumer`
    /// attached here; records that the consumer applied up to `after`.
    pub fn fetch(
        &mut self,
        consumer: &NodeId,
        id: &str,
        after: u64,
        now: i64,
    ) -> Result<Result<Vec<SignedDelivery>, String>, ExchangeError> {
        let Some(r) = self.record(id)? else {
            return Ok(Err(format!("no request {id} is known at this hub")));
        };
        if &r.consumer != consumer {
            return Ok(Err(format!("request {id} was filed by {}, not by {consumer}", r.consumer)));
        }
        if let Some(why) = r.refusal(now) {
            return Ok(Err(why));
        }
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let held: Option<i64> =
            tx.query_row("SELECT n FROM progress WHERE grant_id = ?1", [id], |x| x.get(0)).optional()?;
        if after > 0 && held.is_none_or(|h| (h as u64) < after) {
            let rows: i64 = tx.query_row(
                "SELECT coalesce(sum(rows), 0) FROM deliveries WHERE grant_id = ?1 AND n <= ?2",
                params![id, after as i64],
                |x| x.get(0),
            )?;
            let p = Progress { grant: id.to_owned(), n: after, rows: rows as u64, at: now };
            Self::store_progress(&tx, &r, &p)?;
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        {
            let mut stmt = tx.prepare("SELECT n, frame FROM deliveries WHERE grant_id = ?1 AND n > ?2 ORDER BY n")?;
            let mut rows = stmt.query(params![id, after as i64])?;
            let mut expect = after + 1;
            while let Some(row) = rows.next()? {
                let n = row.get::<_, i64>(0)? as u64;
                if n != expect || bytes > BATCH_BYTES || out.len() >= 64 {
                    break;
                }
                let frame: Vec<u8> = row.get(1)?;
                bytes += frame.len();
                out.push(decode_delivery(&frame)?);
                expect += 1;
            }
        }
        if let (Some(first), Some(last)) = (out.first(), out.last()) {
            let rows: u64 = out.iter().map(|d| u64::from(d.rows)).sum();
            audit(
                &tx,
                "delivered",
                &r,
                serde_json::json!({
                    "consumer": r.consumer.to_string(), "from": first.n, "to": last.n, "rows": rows,
                }),
            )?;
        }
        tx.commit()?;
        Ok(Ok(out))
    }

    fn store_progress(tx: &Transaction<'_>, r: &RequestRecord, p: &Progress) -> Result<bool, ExchangeError> {
        let held: Option<i64> =
            tx.query_row("SELECT n FROM progress WHERE grant_id = ?1", [&p.grant], |x| x.get(0)).optional()?;
        if held.is_some_and(|h| h as u64 >= p.n) {
            return Ok(false);
        }
        let rev = Self::next(tx, "rev")?;
        tx.execute(
            "INSERT OR REPLACE INTO progress (grant_id, consumer, provider, n, rows, at, rev) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![p.grant, r.consumer.to_string(), r.provider.to_string(), p.n as i64, p.rows as i64, p.at, rev as i64],
        )?;
        Ok(true)
    }

    /// One record of grant's copy kept here, for `consumer` attached here.
    pub fn lookup(
        &self,
        consumer: &NodeId,
        code: &str,
        key: &[String],
        now: i64,
    ) -> Result<Result<wire::LookupAnswer, String>, ExchangeError> {
        let mine = self.records_where("consumer = ?1", &consumer.to_string())?;
        let of_code: Vec<&RequestRecord> = mine.iter().filter(|r| r.code == code).collect();
        let Some(r) = of_code.iter().find(|r| r.is_live(now)).or(of_code.first()) else {
            return Ok(Err(format!(
                "{consumer} holds no grant for {code}; file a request with `gdx-agent request --resource {code} --fields … --purpose …`"
            )));
        };
        if let Some(why) = r.refusal(now) {
            return Ok(Err(why));
        }
        let as_of: i64 =
            self.conn
                .query_row("SELECT coalesce(max(n), 0) FROM deliveries WHERE grant_id = ?1", [&r.id], |x| x.get(0))?;
        if as_of == 0 {
            return Ok(Err(format!(
                "nothing of {code} has been delivered to this hub under grant {} yet; try again in a few seconds",
                r.id
            )));
        }
        // rows travel under their key, or under its pseudonym when the key is masked
        let typed = key.join("\u{1f}");
        let hidden = pseudonym(&r.salt, &typed);
        let mut row: Option<String> = None;
        for k in [&typed, &hidden] {
            row = self
                .conn
                .query_row("SELECT row FROM replica WHERE grant_id = ?1 AND key = ?2", params![r.id, k], |x| x.get(0))
                .optional()?;
            if row.is_some() {
                break;
            }
        }
        // the key itself is personal data: the log keeps its pseudonym under the grant
        audit(
            &self.conn,
            "lookup",
            r,
            serde_json::json!({
                "consumer": consumer.to_string(), "key": hidden, "found": row.is_some(),
            }),
        )?;
        Ok(Ok(wire::LookupAnswer { id: r.id.clone(), row, served_by: self.hub.clone(), as_of: as_of as u64 }))
    }

    /// Stores a delivery (and, when its consumer is attached here, applies
    /// it to the copy kept for lookups), in `tx`; false when already held.
    fn store_delivery(
        router: &Router,
        tx: &Transaction<'_>,
        r: &RequestRecord,
        d: &SignedDelivery,
        frame: &[u8],
    ) -> Result<bool, ExchangeError> {
        let held: Option<i64> = tx
            .query_row("SELECT 1 FROM deliveries WHERE grant_id = ?1 AND n = ?2", params![d.grant, d.n as i64], |x| {
                x.get(0)
            })
            .optional()?;
        if held.is_some() {
            return Ok(false);
        }
        let rev = Self::next(tx, "rev")?;
        tx.execute(
            "INSERT INTO deliveries (grant_id, n, consumer, provider, rows, frame, rev) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![d.grant, d.n as i64, r.consumer.to_string(), r.provider.to_string(), d.rows, frame, rev as i64],
        )?;
        if router.place(&r.consumer) == Place::Here {
            // A body that does not decode is stored all the same (the
            // consumer's agent checks the signature and refuses it); only
            // lookups miss its rows.
            match decode_changeset(&d.body) {
                Ok(cs) => apply_to_replica(tx, &d.grant, d.replace, &cs)?,
                Err(e) => tracing::warn!(grant = %d.grant, n = d.n, error = %e, "a delivery does not decode"),
            }
        }
        Ok(true)
    }

    /// Turns new changesets of the providers attached here into deliveries
    /// for every live grant; returns how many were made.
    pub fn produce(&mut self, now: i64) -> Result<usize, ExchangeError> {
        let mut made = 0;
        let here: Vec<RequestRecord> = {
            let mut stmt = self.conn.prepare("SELECT record FROM requests")?;
            let all: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            all.iter().map(|j| parse_record(j)).collect::<Result<Vec<_>, _>>()?
        };
        let router = self.router.clone();
        for r in here.iter().filter(|r| r.is_live(now) && router.place(&r.provider) == Place::Here) {
            match self.produce_one(r) {
                Ok(n) => made += n,
                Err(e) => {
                    tracing::warn!(grant = %r.id, error = %e, "cannot deliver");
                    self.conn.execute(
                        "INSERT INTO producers (grant_id, epoch, seq, n, error) VALUES (?1, 0, 0, 0, ?2)
                         ON CONFLICT(grant_id) DO UPDATE SET error = excluded.error",
                        params![r.id, e.to_string()],
                    )?;
                }
            }
        }
        Ok(made)
    }

    fn produce_one(&mut self, r: &RequestRecord) -> Result<usize, ExchangeError> {
        let path = crate::vault::vault_path(&self.vault_dir, &r.provider);
        if !path.exists() {
            return Ok(0);
        }
        let vault = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        vault.busy_timeout(Duration::from_secs(5))?;
        let Some((epoch, last)) = vault
            .query_row("SELECT epoch, last_seq FROM _gdx_resources WHERE resource = ?1", [&r.resource], |x| {
                Ok((x.get::<_, i64>(0)?, x.get::<_, i64>(1)?))
            })
            .optional()?
        else {
            return Ok(0);
        };
        let (p_epoch, mut seq, mut n): (i64, i64, i64) = self
            .conn
            .query_row("SELECT epoch, seq, n FROM producers WHERE grant_id = ?1", [&r.id], |x| {
                Ok((x.get(0)?, x.get(1)?, x.get(2)?))
            })
            .optional()?
            .unwrap_or((0, 0, 0));
        let mut replace = n == 0;
        if p_epoch != epoch {
            // first delivery, or the provider sent the resource again in full
            seq = 0;
            replace = true;
        }
        let mut made = 0;
        while seq < last && (made as u64) < PRODUCE_PER_PASS {
            let frame: Option<Option<Vec<u8>>> = vault
                .query_row(
                    "SELECT frame FROM _gdx_changesets WHERE resource = ?1 AND seq = ?2",
                    params![r.resource, seq + 1],
                    |x| x.get(0),
                )
                .optional()?;
            let Some(Some(frame)) = frame else {
                return Err(ExchangeError::Damaged(format!(
                    "changeset {} of {} is not kept in the vault (it was applied by an older version of gdx-hub); the provider must send the resource again in full",
                    seq + 1,
                    r.resource
                )));
            };
            let cs = match wire::decode_frame(&frame) {
                Ok(Some((Message::Upload(env), _))) => {
                    decode_changeset(&env.body).map_err(|e| ExchangeError::Damaged(e.to_string()))?
                }
                _ => {
                    return Err(ExchangeError::Damaged(format!(
                        "changeset {} of {} does not decode",
                        seq + 1,
                        r.resource
                    )));
                }
            };
            if cs.epoch as i64 != epoch {
                return Ok(made); // the vault is being replaced; next pass
            }
            let part = grant::deliverable(&cs, r, (n + 1) as u64, &|key| pseudonym(&r.salt, key));
            let delivery = self.sign(r, (n + 1) as u64, replace, &part)?;
            let frame = encode_delivery(&delivery);
            let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            Self::store_delivery(&self.router, &tx, r, &delivery, &frame)?;
            tx.execute(
                "INSERT OR REPLACE INTO producers (grant_id, epoch, seq, n, error) VALUES (?1, ?2, ?3, ?4, NULL)",
                params![r.id, epoch, seq + 1, n + 1],
            )?;
            tx.commit()?;
            seq += 1;
            n += 1;
            replace = false;
            made += 1;
        }
        Ok(made)
    }

    fn sign(&self, r: &RequestRecord, n: u64, replace: bool, cs: &Changeset) -> Result<SignedDelivery, ExchangeError> {
        let Some(signer) = &self.signer else {
            return Err(ExchangeError::Damaged("this hub has no signing key loaded".into()));
        };
        let body = encode_changeset(cs);
        let signature = gdx_certs::pki::sign(&signer.key, &SignedDelivery::signed_bytes(&r.id, n, replace, &body))
            .map_err(|e| ExchangeError::Damaged(e.to_string()))?;
        Ok(SignedDelivery {
            grant: r.id.clone(),
            n,
            replace,
            rows: cs.changes.len() as u32,
            body,
            signature,
            signer_chain: signer.chain.clone(),
        })
    }

    /// What this hub recorded after change number `since` for the other end
    /// of a link: the parent (`to` = None: everything of this subtree whose
    /// consumer or provider is elsewhere) or the child hub of division `to`.
    pub fn batch_since(&self, since: u64, to: Option<DivisionCode>) -> Result<ExchangeBatch, ExchangeError> {
        self.batch(since, to, BATCH_ITEMS)
    }

    /// [`Exchange::batch_since`] with at most `items` items read. A delivery
    /// goes with its record's current version when that is not already in
    /// the batch: a record changed later (a revocation) moves after its
    /// deliveries, and the other end refuses a delivery without its record.
    fn batch(&self, since: u64, to: Option<DivisionCode>, items: i64) -> Result<ExchangeBatch, ExchangeError> {
        let mut out = ExchangeBatch { upto: since, ..ExchangeBatch::default() };
        let mut stmt = self.conn.prepare(
            "SELECT rev, 0, id, 0, consumer, provider FROM requests WHERE rev > ?1
             UNION ALL SELECT rev, 1, grant_id, n, consumer, provider FROM deliveries WHERE rev > ?1
             UNION ALL SELECT rev, 2, grant_id, n, consumer, provider FROM progress WHERE rev > ?1
             ORDER BY 1 LIMIT ?2",
        )?;
        let items: Vec<(i64, i64, String, i64, String, String)> = stmt
            .query_map(params![since as i64, items], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut bytes = 0;
        for (rev, kind, id, n, consumer, provider) in items {
            let (Ok(consumer), Ok(provider)) = (NodeId::parse(&consumer), NodeId::parse(&provider)) else {
                out.upto = rev as u64;
                continue;
            };
            let within = |node: &NodeId| match to {
                Some(child) => child.contains(node.division()),
                None => !self.router.division.contains(node.division()),
            };
            match kind {
                0 if within(&consumer) || within(&provider) || to.is_none() => {
                    if let Some(r) = self.record(&id)? {
                        out.records.push(r);
                    }
                }
                1 if within(&consumer) => {
                    if bytes > BATCH_BYTES {
                        break;
                    }
                    let frame: Vec<u8> = self.conn.query_row(
                        "SELECT frame FROM deliveries WHERE grant_id = ?1 AND n = ?2",
                        params![id, n],
                        |r| r.get(0),
                    )?;
                    bytes += frame.len();
                    if !out.records.iter().any(|r| r.id == id)
                        && let Some(r) = self.record(&id)?
                    {
                        out.records.push(r);
                    }
                    out.deliveries.push(decode_delivery(&frame)?);
                }
                2 if within(&provider) || to.is_none() => {
                    let p =
                        self.conn.query_row("SELECT n, rows, at FROM progress WHERE grant_id = ?1", [&id], |r| {
                            Ok(Progress {
                                grant: id.clone(),
                                n: r.get::<_, i64>(0)? as u64,
                                rows: r.get::<_, i64>(1)? as u64,
                                at: r.get(2)?,
                            })
                        })?;
                    out.progress.push(p);
                }
                _ => {}
            }
            out.upto = rev as u64;
        }
        Ok(out)
    }

    /// Stores what the other end of a link sent: the parent (`from` = None)
    /// or the child hub of division `from`, which may only speak for its
    /// subtree. `entry` gives this hub's catalogue entry for a code, to
    /// check again a request filed elsewhere for a provider attached here.
    /// `cursor` names the link cursor set to the batch's `upto` in the same
    /// transaction (a pull), so a kill repeats the pull and stores nothing twice.
    pub fn merge(
        &mut self,
        batch: &ExchangeBatch,
        from: Option<DivisionCode>,
        entry: &dyn Fn(&str) -> Option<CatalogEntry>,
        cursor: Option<&str>,
    ) -> Result<(), ExchangeError> {
        let router = self.router.clone();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for r in &batch.records {
            let speaks = match from {
                None => true,
                Some(child) => {
                    child.contains(r.provider.division()) || (r.version == 1 && child.contains(r.consumer.division()))
                }
            };
            if !speaks {
                continue;
            }
            let mut r = r.clone();
            // The provider's hub files a request filed elsewhere again against its own entry.
            if r.version == 1
                && router.place(&r.provider) == Place::Here
                && let Some(e) = entry(&r.code)
            {
                let req = Request {
                    consumer: r.consumer.clone(),
                    code: r.code.clone(),
                    fields: r.fields.clone(),
                    purpose: r.purpose.clone(),
                    until: r.until,
                    filed_at: r.filed_at,
                };
                let mut again = RequestRecord::filed(r.id.clone(), &e, &req, r.filed_at);
                again.salt.clone_from(&r.salt);
                if again != r {
                    tracing::warn!(id = %r.id, "a request filed elsewhere was filed again here with another outcome");
                    r = RequestRecord { version: 2, ..again };
                    r.salt.clear();
                    salted(&mut r);
                    if !Self::store(&tx, &r)? {
                        continue; // refiled before: logged then
                    }
                    audit(
                        &tx,
                        "decision",
                        &r,
                        serde_json::json!({
                            "verdict": "refiled", "consumer": r.consumer.to_string(), "state": r.state(r.filed_at),
                            "columns": r.columns, "masked": r.masked, "version": r.version,
                        }),
                    )?;
                    continue;
                }
            }
            Self::store(&tx, &r)?;
        }
        for d in &batch.deliveries {
            let Some(r) = tx
                .query_row("SELECT record FROM requests WHERE id = ?1", [&d.grant], |x| x.get::<_, String>(0))
                .optional()?
                .map(|j| parse_record(&j))
                .transpose()?
            else {
                // A record always travels before its deliveries; without it
                // the batch is refused whole (and sent again), leaving no gap.
                return Err(ExchangeError::Damaged(format!(
                    "delivery {} of {} arrived before its request record",
                    d.n, d.grant
                )));
            };
            if from.is_some_and(|child| !child.contains(r.provider.division())) {
                continue;
            }
            Self::store_delivery(&router, &tx, &r, d, &encode_delivery(d))?;
        }
        for p in &batch.progress {
            if let Some(j) = tx
                .query_row("SELECT record FROM requests WHERE id = ?1", [&p.grant], |x| x.get::<_, String>(0))
                .optional()?
            {
                let r = parse_record(&j)?;
                if from.is_none_or(|child| child.contains(r.consumer.division())) {
                    Self::store_progress(&tx, &r, p)?;
                }
            }
        }
        if let Some(name) = cursor {
            Self::set_meta(&tx, name, batch.upto)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets a link cursor once the other end stored everything up to `upto`.
    pub fn set_cursor(&mut self, name: &str, upto: u64) -> Result<(), ExchangeError> {
        let tx = self.conn.transaction()?;
        Self::set_meta(&tx, name, upto)?;
        tx.commit()?;
        Ok(())
    }

    /// Every request and grant this hub knows, newest first, with delivery figures.
    pub fn list(&self, now: i64) -> Result<Vec<Listed>, ExchangeError> {
        let mut stmt = self.conn.prepare(
            "SELECT r.record, coalesce(p.n, 0), coalesce(p.rows, 0), coalesce(x.n, 0), x.error
             FROM requests r LEFT JOIN progress p ON p.grant_id = r.id LEFT JOIN producers x ON x.grant_id = r.id
             ORDER BY r.rowid DESC",
        )?;
        let rows: Vec<(String, i64, i64, i64, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(j, n, rows, produced, error)| {
                let record = parse_record(&j)?.for_agent();
                Ok(Listed {
                    state: record.state(now).to_owned(),
                    record,
                    delivered: n as u64,
                    rows_delivered: rows as u64,
                    produced: produced as u64,
                    error,
                })
            })
            .collect()
    }
}

/// The `gdx-hub grants` table: one line per request, then its purpose and,
/// when it was refused, denied or revoked, why.
pub fn table(list: &[Listed]) -> String {
    use gdx_common::units::format_date;
    let mut out = format!(
        "{:<12} {:<9} {:<22} {:<22} {:<14} {:<34} {:<14} {:>9}\n",
        "ID", "STATE", "CONSUMER", "PROVIDER", "CODE", "FIELDS", "UNTIL", "ROWS"
    );
    for l in list {
        let r = &l.record;
        let fields = if r.columns.is_empty() { &r.fields } else { &r.columns };
        let fields: Vec<String> =
            fields.iter().map(|f| if r.masked.contains(f) { format!("{f}(masked)") } else { f.clone() }).collect();
        let until = match (&r.status, r.granted_until.or(r.until)) {
            (Status::Pending { answer_by_day }, _) => format!("due {}", format_date(answer_by_day * 86_400)),
            (_, Some(d)) => format_date(d * 86_400),
            (_, None) => "-".into(),
        };
        out += &format!(
            "{:<12} {:<9} {:<22} {:<22} {:<14} {:<34} {:<14} {:>9}\n",
            r.id,
            l.state,
            r.consumer.to_string(),
            r.provider.to_string(),
            r.code,
            fields.join(","),
            until,
            l.rows_delivered
        );
        out += &format!("{:<12} {} — {}\n", "", r.name, r.purpose);
        let why = match &r.status {
            Status::Refused { reason } | Status::Denied { reason } | Status::Revoked { reason, .. } => Some(reason),
            _ => None,
        };
        if let Some(why) = why.or(l.error.as_ref()) {
            out += &format!("{:<12} {why}\n", "");
        }
    }
    out
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

/// Records an exchange event about `r` in the audit outbox, in the caller's transaction.
/// Its time is the real clock, even when the exchange's clock is offset for a drill.
fn audit(conn: &Connection, kind: &str, r: &RequestRecord, detail: serde_json::Value) -> rusqlite::Result<()> {
    crate::audit::note(
        conn,
        &crate::audit::Event {
            kind: kind.into(),
            at: crate::util::now(),
            node: Some(if kind == "decision" { r.provider.to_string() } else { r.consumer.to_string() }),
            resource: Some(r.code.clone()),
            request: Some(r.id.clone()),
            detail,
        },
    )
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

fn encode_delivery(d: &SignedDelivery) -> Vec<u8> {
    bincode::serde::encode_to_vec(d, bincode::config::standard()).unwrap_or_default()
}

fn decode_delivery(frame: &[u8]) -> Result<SignedDelivery, ExchangeError> {
    bincode::serde::decode_from_slice(frame, bincode::config::standard())
        .map(|(d, _)| d)
        .map_err(|e| ExchangeError::Damaged(format!("a stored delivery does not decode: {e}")))
}

fn apply_to_replica(tx: &Transaction<'_>, grant_id: &str, replace: bool, cs: &Changeset) -> Result<(), ExchangeError> {
    if replace {
        tx.execute("DELETE FROM replica WHERE grant_id = ?1", [grant_id])?;
    }
    let mut upsert = tx.prepare_cached("INSERT OR REPLACE INTO replica (grant_id, key, row) VALUES (?1, ?2, ?3)")?;
    let mut delete = tx.prepare_cached("DELETE FROM replica WHERE grant_id = ?1 AND key = ?2")?;
    for c in &cs.changes {
        let key = grant::key_text(&cs.key_of(c));
        match c {
            gdx_common::data::Change::Upsert(row) => {
                upsert.execute(params![grant_id, key, grant::row_json(&cs.columns, row).to_string()])?;
            }
            gdx_common::data::Change::Delete(_) => {
                delete.execute(params![grant_id, key])?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    fn record(id: &str, consumer: &str, provider: &str, version: u64) -> RequestRecord {
        RequestRecord {
            id: id.into(),
            consumer: node(consumer),
            provider: node(provider),
            code: "301001/000001".into(),
            name: "低保".into(),
            resource: "dibao".into(),
            fields: vec!["name".into()],
            purpose: "比对".into(),
            until: None,
            filed_at: 0,
            status: if version == 1 { Status::Pending { answer_by_day: 10 } } else { Status::Granted },
            columns: vec!["name".into()],
            masked: vec![],
            granted_until: None,
            decided_at: None,
            version,
            salt: String::new(),
        }
    }

    fn delivery(grant: &str, n: u64) -> SignedDelivery {
        use gdx_common::data::{Change, Column, ResourceCode, Value};
        let cs = Changeset {
            origin: node("630000/minzheng"),
            resource: ResourceCode::parse("dibao").unwrap(),
            seq: n,
            epoch: 1,
            columns: vec![Column { name: "id".into(), decl_type: "TEXT".into() }],
            key: vec![0],
            changes: vec![Change::Upsert(vec![Value::Text(format!("row{n}"))])],
            created_at: 0,
        };
        SignedDelivery {
            grant: grant.into(),
            n,
            replace: n == 1,
            rows: 1,
            body: encode_changeset(&cs),
            signature: vec![],
            signer_chain: vec![],
        }
    }

    fn province() -> (tempfile::TempDir, Exchange) {
        let dir = tempfile::tempdir().unwrap();
        let mut x = Exchange::open(dir.path(), node("630000/hub")).unwrap();
        x.set_children(vec![DivisionCode::parse("632500").unwrap(), DivisionCode::parse("630100").unwrap()]);
        (dir, x)
    }

    fn ids(x: &Exchange) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> =
            x.list(0).unwrap().into_iter().map(|l| (l.record.id, l.record.version)).collect();
        v.sort();
        v
    }

    #[test]
    fn a_child_hub_speaks_only_for_its_subtree() {
        let (_dir, mut x) = province();
        let hainan = Some(DivisionCode::parse("632500").unwrap());
        let batch = ExchangeBatch {
            records: vec![
                // filed below 海南州 for its own consumer: accepted
                record("632500-1", "632522/minzheng", "630100/weijian", 1),
                // a "request" of a 西宁 consumer: not 海南州's to file
                record("632500-2", "630102/minzheng", "630000/gongan", 1),
                // a decision on 西宁's data: not 海南州's to make
                record("630100-7", "632522/minzheng", "630100/weijian", 2),
                // a decision of its own provider: accepted
                record("630100-8", "630102/minzheng", "632522/minzheng", 2),
            ],
            deliveries: vec![delivery("632500-1", 1), delivery("630100-8", 1)],
            progress: vec![],
            upto: 9,
        };
        x.merge(&batch, hainan, &|_| None, None).unwrap();
        assert_eq!(ids(&x), [("630100-8".to_owned(), 2), ("632500-1".to_owned(), 1)]);
        let held: Vec<(String, i64)> = {
            let mut s = x.conn.prepare("SELECT grant_id, n FROM deliveries").unwrap();
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(held, [("630100-8".to_owned(), 1)], "only deliveries of its own providers' grants");
    }

    #[test]
    fn merging_twice_or_older_versions_changes_nothing() {
        let (_dir, mut x) = province();
        let batch = ExchangeBatch {
            records: vec![record("630100-8", "630102/minzheng", "632522/minzheng", 2)],
            deliveries: vec![delivery("630100-8", 1), delivery("630100-8", 2)],
            progress: vec![],
            upto: 3,
        };
        x.merge(&batch, None, &|_| None, Some("pulled")).unwrap();
        let rev = x.meta("rev").unwrap();
        x.merge(&batch, None, &|_| None, Some("pulled")).unwrap();
        assert_eq!(x.meta("rev").unwrap(), rev, "a repeated pull stores nothing");
        assert_eq!(x.meta("pulled").unwrap(), 3);
        let older =
            ExchangeBatch { records: vec![record("630100-8", "630102/minzheng", "632522/minzheng", 1)], ..batch };
        x.merge(&older, None, &|_| None, None).unwrap();
        assert_eq!(ids(&x), [("630100-8".to_owned(), 2)]);
    }

    #[test]
    fn a_delivery_travels_with_its_record_when_the_record_changed_later() {
        let (_dir, mut x) = province();
        let granted = ExchangeBatch {
            records: vec![record("632500-1", "632522/minzheng", "630100/weijian", 2)],
            deliveries: vec![delivery("632500-1", 1), delivery("632500-1", 2)],
            progress: vec![],
            upto: 0,
        };
        x.merge(&granted, None, &|_| None, None).unwrap();
        // revoked afterwards: the record's newest version now comes after its deliveries
        let revoked = ExchangeBatch {
            records: vec![record("632500-1", "632522/minzheng", "630100/weijian", 3)],
            ..ExchangeBatch::default()
        };
        x.merge(&revoked, None, &|_| None, None).unwrap();
        // 海南州 pulls one item at a time, from the start
        let child_dir = tempfile::tempdir().unwrap();
        let mut hainan = Exchange::open(child_dir.path(), node("632500/hub")).unwrap();
        let (mut since, end) = (0, x.meta("rev").unwrap());
        while since < end {
            let batch = x.batch(since, Some(DivisionCode::parse("632500").unwrap()), 1).unwrap();
            hainan.merge(&batch, None, &|_| None, Some("pulled")).unwrap();
            assert!(batch.upto > since, "every pull moves on");
            since = batch.upto;
        }
        assert_eq!(ids(&hainan), [("632500-1".to_owned(), 3)]);
        let held: i64 = hainan.conn.query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0)).unwrap();
        assert_eq!(held, 2, "both deliveries arrived");
    }

    #[test]
    fn each_child_is_sent_only_what_concerns_its_subtree() {
        let (_dir, mut x) = province();
        let batch = ExchangeBatch {
            records: vec![
                record("632500-1", "632522/minzheng", "630100/weijian", 2),
                record("630000-1", "630000/gongan", "630000/minzheng", 2),
            ],
            deliveries: vec![delivery("632500-1", 1), delivery("630000-1", 1)],
            progress: vec![],
            upto: 0,
        };
        x.merge(&batch, None, &|_| None, None).unwrap();
        let to = |d: &str| x.batch_since(0, Some(DivisionCode::parse(d).unwrap())).unwrap();
        let xining = to("630100");
        assert_eq!(xining.records.len(), 1, "西宁 provides 632500-1");
        assert!(xining.deliveries.is_empty(), "its consumer is in 海南州");
        let hainan = to("632500");
        assert_eq!((hainan.records.len(), hainan.deliveries.len()), (1, 1));
        assert_eq!(hainan.upto, xining.upto, "both reach the end");
        // the province's own consumers' deliveries go to no child
        assert!(to("632500").deliveries.iter().all(|d| d.grant == "632500-1"));
    }
}
