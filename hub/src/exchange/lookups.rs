//! Lookups at the consumer's hub: one record of a grant's copy kept here
//! by its key, or the records whose geometry meets a box.
//!
//! A lookup never waits for the exchange store's lock, which a delivery
//! being merged holds for tens of milliseconds at a time. It reads in a
//! snapshot ([`Db::snapshot`]) through a connection of its own (on
//! PostgreSQL, the shared pool): the grant, how far its deliveries got and
//! the row all as one commit left them, while a merge writes. Its audit
//! event goes to `hub.db`'s outbox, through the hub's connection to it, not
//! to `exchange.db`'s. The event is committed before the answer is sent:
//! killed in between, the lookup is logged and not answered, never the
//! other way round. It names the version of the grant it was answered
//! under (`version`): the log takes `hub.db`'s and `exchange.db`'s events
//! pass by pass, so a lookup and the grant's own entries need not be in
//! the order they were committed in.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::args;
use crate::store::HubPaths;
use crate::store::Store;
use crate::store::db::{Db, Sql, Tx, Which};
use gdx_common::NodeId;
use gdx_common::grant::RequestRecord;
use gdx_common::wire;

use super::{Exchange, ExchangeError, Refusal, event, pseudonym, records_where, replica};

/// The lookups of one hub process.
pub struct Lookups {
    /// The exchange store, read only.
    read: Db,
    /// `hub.db`, whose outbox takes the lookups' audit events.
    log: Arc<Mutex<Store>>,
    hub: NodeId,
    /// Lookups each grant may make a minute, and those made this minute.
    limit: u32,
    made: RefCell<HashMap<String, (i64, u32)>>,
}

impl Lookups {
    /// Opens the exchange store of the hub in `hub_dir` for reading; `log`
    /// is its hub database.
    pub fn open(hub_dir: &Path, hub: NodeId, log: Arc<Mutex<Store>>) -> Result<Self, ExchangeError> {
        let paths = HubPaths::new(hub_dir);
        let read = Db::open(&paths, Which::Exchange, &Exchange::tables())?;
        if let Db::Sqlite(file) = &read {
            // this connection only reads: a write through it would be a mistake here
            file.pragma_update(None, "query_only", true)?;
        }
        Ok(Self { read, log, hub, limit: crate::config::DEFAULT_LOOKUPS_PER_MINUTE, made: RefCell::default() })
    }

    /// Lookups a grant may make each minute (hub.toml `lookups_per_minute`).
    pub fn set_limit(&mut self, per_minute: u32) {
        self.limit = per_minute;
    }

    /// Records a lookup's event about `r` in `hub.db`'s outbox (committed on its own).
    fn audit(&self, r: &RequestRecord, mut detail: serde_json::Value) -> Result<(), ExchangeError> {
        detail["version"] = r.version.into();
        // the time it was answered, not the time the hub database was free
        let event = event("lookup", r, detail);
        let log = self.log.lock().map_err(|_| ExchangeError::Damaged("the hub database is unavailable".into()))?;
        Ok(log.note(&event)?)
    }

    /// The live grant `consumer` (attached here) holds for `code`, within its
    /// lookups per minute, and the delivery its copy here is at; or why not.
    fn admit(
        &self,
        read: &Tx<'_>,
        consumer: &NodeId,
        code: &str,
        now: i64,
    ) -> Result<Result<(RequestRecord, i64), Refusal>, ExchangeError> {
        let mine = records_where(read, "consumer = ?1", &consumer.to_string())?;
        let of_code: Vec<&RequestRecord> = mine.iter().filter(|r| r.code == code).collect();
        let Some(r) = of_code.iter().find(|r| r.is_live(now)).or(of_code.first()) else {
            return Ok(Err(Refusal::NoGrant { consumer: consumer.clone(), code: code.to_owned() }));
        };
        let r = (*r).clone();
        if let Some(why) = r.refusal(now) {
            return Ok(Err(why.into()));
        }
        // at most `limit` a minute under one grant; each minute's first refusal is logged
        let minute = crate::util::now().div_euclid(60);
        let made = {
            let mut all = self.made.borrow_mut();
            let count = all.entry(r.id.clone()).or_insert((minute, 0));
            if count.0 != minute {
                *count = (minute, 0);
            }
            count.1 = count.1.saturating_add(1);
            count.1
        };
        if made > self.limit {
            if made == self.limit + 1 {
                self.audit(
                    &r,
                    serde_json::json!({
                        "consumer": consumer.to_string(), "refused": "rate limit", "limit_per_minute": self.limit,
                    }),
                )?;
            }
            return Ok(Err(Refusal::RateLimited {
                id: r.id,
                limit: self.limit,
                hub: self.hub.clone(),
                wait: 60 - crate::util::now().rem_euclid(60),
            }));
        }
        let as_of: i64 =
            read.query_row("SELECT coalesce(max(n), 0) FROM deliveries WHERE grant_id = ?1", args![&r.id], |x| {
                x.get(0)
            })?;
        if as_of == 0 {
            return Ok(Err(Refusal::NothingYet { code: code.to_owned(), id: r.id }));
        }
        Ok(Ok((r, as_of)))
    }

    /// The records of grant's copy kept here whose geometry's box meets
    /// `bbox`, for `consumer` attached here; at most `limit` (1 to 1,000).
    pub fn within(
        &mut self,
        consumer: &NodeId,
        code: &str,
        bbox: &str,
        limit: u32,
        now: i64,
    ) -> Result<Result<wire::WithinAnswer, Refusal>, ExchangeError> {
        let b = match gdx_common::geometry::BBox::parse(bbox) {
            Ok(b) => b,
            Err(e) => return Ok(Err(Refusal::Question(e))),
        };
        let read = self.read.snapshot()?;
        let (r, as_of) = match self.admit(&read, consumer, code, now)? {
            Ok(x) => x,
            Err(why) => return Ok(Err(why)),
        };
        let limit = limit.clamp(1, 1_000);
        let mut rows = replica::rows_in_box(&read, &r.id, &b, limit as i64 + 1)?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let spatial = !rows.is_empty() || replica::spatial(&read, &r.id)?;
        drop(read);
        if !spatial {
            return Ok(Err(Refusal::NotSpatial { code: code.to_owned(), id: r.id }));
        }
        self.audit(
            &r,
            serde_json::json!({ "consumer": consumer.to_string(), "bbox": b.to_string(), "found": rows.len(), "more": more }),
        )?;
        Ok(Ok(wire::WithinAnswer { id: r.id.clone(), rows, more, served_by: self.hub.clone(), as_of: as_of as u64 }))
    }

    /// One record of grant's copy kept here, for `consumer` attached here.
    pub fn lookup(
        &mut self,
        consumer: &NodeId,
        code: &str,
        key: &[String],
        now: i64,
    ) -> Result<Result<wire::LookupAnswer, Refusal>, ExchangeError> {
        let read = self.read.snapshot()?;
        let (r, as_of) = match self.admit(&read, consumer, code, now)? {
            Ok(x) => x,
            Err(why) => return Ok(Err(why)),
        };
        let r = &r;
        // Rows travel under their key, or under its pseudonym when the key is
        // masked: then only the pseudonym finds them, and a real key finds
        // nothing, so that lookups cannot tell which real keys exist.
        let typed = key.join("\u{1f}");
        let row = replica::row(&read, &r.id, &typed)?;
        let refused = row.is_none() && !is_pseudonym(&typed) && replica::pseudonymised(&read, &r.id)?;
        drop(read);
        // the key itself is personal data: the log keeps its pseudonym under this hub's secret of the grant
        let hidden = pseudonym(&r.salt, &typed);
        if refused {
            self.audit(
                r,
                serde_json::json!({ "consumer": consumer.to_string(), "key": hidden, "found": false, "refused": "not a pseudonym" }),
            )?;
            return Ok(Err(Refusal::NotAPseudonym {
                id: r.id.clone(),
                code: code.to_owned(),
                provider: r.provider.clone(),
            }));
        }
        self.audit(r, serde_json::json!({ "consumer": consumer.to_string(), "key": hidden, "found": row.is_some() }))?;
        Ok(Ok(wire::LookupAnswer { id: r.id.clone(), row, served_by: self.hub.clone(), as_of: as_of as u64 }))
    }
}

/// True when `key` has the form of a [`pseudonym`]: 32 lowercase hex digits.
fn is_pseudonym(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
