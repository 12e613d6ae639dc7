//! Lookups at the consumer's hub: one record of a grant's copy kept here
//! by its key, or the records whose geometry meets a box.
//!
//! A lookup never waits for the exchange store's lock, which a delivery
//! being merged holds for tens of milliseconds at a time: it reads through
//! a connection of its own (SQLite's WAL lets it read the last commit while
//! a merge writes; on PostgreSQL a pool of its own), and its audit event
//! goes to `hub.db`'s outbox (through the hub's own connection to it, so
//! that no two writers of this process meet there), not `exchange.db`'s.
//! The event is committed
//! before the answer is sent: killed in between, the lookup is logged and
//! not answered, never the other way round. It names the version of the
//! grant it was answered under (`version`), since a lookup answered while
//! a revoke commits may be logged just after the revoke.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::args;
use crate::store::HubPaths;
use crate::store::Store;
use crate::store::db::{Db, Sql, Which};
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
    made: HashMap<String, (i64, u32)>,
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
        Ok(Self { read, log, hub, limit: crate::config::DEFAULT_LOOKUPS_PER_MINUTE, made: HashMap::new() })
    }

    /// Lookups a grant may make each minute (hub.toml `lookups_per_minute`).
    pub fn set_limit(&mut self, per_minute: u32) {
        self.limit = per_minute;
    }

    /// Records a lookup's event about `r` in `hub.db`'s outbox (committed on its own).
    fn audit(&self, r: &RequestRecord, mut detail: serde_json::Value) -> Result<(), ExchangeError> {
        detail["version"] = r.version.into();
        let log = self.log.lock().map_err(|_| ExchangeError::Damaged("the hub database is unavailable".into()))?;
        log.note(&event("lookup", r, detail)).map_err(|crate::store::StoreError::Db(e)| e)?;
        Ok(())
    }

    /// The live grant `consumer` (attached here) holds for `code`, within its
    /// lookups per minute, and the delivery its copy here is at; or why not.
    fn admit(
        &mut self,
        consumer: &NodeId,
        code: &str,
        now: i64,
    ) -> Result<Result<(RequestRecord, i64), Refusal>, ExchangeError> {
        let mine = records_where(&self.read, "consumer = ?1", &consumer.to_string())?;
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
        let count = self.made.entry(r.id.clone()).or_insert((minute, 0));
        if count.0 != minute {
            *count = (minute, 0);
        }
        count.1 = count.1.saturating_add(1);
        if count.1 > self.limit {
            if count.1 == self.limit + 1 {
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
        let as_of: i64 = self.read.query_row(
            "SELECT coalesce(max(n), 0) FROM deliveries WHERE grant_id = ?1",
            args![&r.id],
            |x| x.get(0),
        )?;
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
        let (r, as_of) = match self.admit(consumer, code, now)? {
            Ok(x) => x,
            Err(why) => return Ok(Err(why)),
        };
        let limit = limit.clamp(1, 1_000);
        let mut rows = replica::rows_in_box(&self.read, &r.id, &b, limit as i64 + 1)?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        if rows.is_empty() && !replica::spatial(&self.read, &r.id)? {
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
        let (r, as_of) = match self.admit(consumer, code, now)? {
            Ok(x) => x,
            Err(why) => return Ok(Err(why)),
        };
        let r = &r;
        // Rows travel under their key, or under its pseudonym when the key is
        // masked: then only the pseudonym finds them, and a real key finds
        // nothing, so that lookups cannot tell which real keys exist.
        let typed = key.join("\u{1f}");
        let row = replica::row(&self.read, &r.id, &typed)?;
        // the key itself is personal data: the log keeps its pseudonym under this hub's secret of the grant
        let hidden = pseudonym(&r.salt, &typed);
        if row.is_none() && !is_pseudonym(&typed) && replica::pseudonymised(&self.read, &r.id)? {
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
