//! Store-and-forward between hubs: what a link's other end has not stored
//! yet, in batches by change number, and merging what it sends.

use super::delivery::{decode_delivery, encode_delivery};
use super::*;
use gdx_common::grant::{Side, Taken};

impl Exchange {
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
    pub(super) fn batch(
        &self,
        since: u64,
        to: Option<DivisionCode>,
        items: i64,
    ) -> Result<ExchangeBatch, ExchangeError> {
        let mut out = ExchangeBatch { upto: since, ..ExchangeBatch::default() };
        let mut stmt = self.conn.prepare(
            "SELECT rev, 0, id, 0, consumer, provider FROM requests WHERE rev > ?1
             UNION ALL SELECT rev, 1, grant_id, n, consumer, provider FROM deliveries WHERE rev > ?1
             UNION ALL SELECT rev, 2, grant_id, n, consumer, provider FROM progress WHERE rev > ?1
             UNION ALL SELECT rev, 3, id, 0, to_node, to_node FROM notices WHERE rev > ?1
             UNION ALL SELECT rev, 4, id, 0, node, node FROM checks WHERE rev > ?1
             ORDER BY 1 LIMIT ?2",
        )?;
        let items: Vec<(i64, i64, String, i64, String, String)> = stmt
            .query_map(args![since as i64, items], |r| {
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
                        out.records.push(r.for_agent());
                    }
                }
                1 if within(&consumer) => {
                    if bytes > BATCH_BYTES {
                        break;
                    }
                    let frame: Vec<u8> = self.conn.query_row(
                        "SELECT frame FROM deliveries WHERE grant_id = ?1 AND n = ?2",
                        args![id, n],
                        |r| r.get(0),
                    )?;
                    bytes += frame.len();
                    if !out.records.iter().any(|r| r.id == id)
                        && let Some(r) = self.record(&id)?
                    {
                        out.records.push(r.for_agent());
                    }
                    out.deliveries.push(decode_delivery(&frame)?);
                }
                2 if within(&provider) || to.is_none() => {
                    let p = self.conn.query_row(
                        "SELECT n, rows, at FROM progress WHERE grant_id = ?1",
                        args![&id],
                        |r| {
                            Ok(Progress {
                                grant: id.clone(),
                                n: r.get::<i64>(0)? as u64,
                                rows: r.get::<i64>(1)? as u64,
                                at: r.get(2)?,
                            })
                        },
                    )?;
                    out.progress.push(p);
                }
                // a notice goes towards its department, and its claim back towards its issuer
                3 => {
                    if bytes > BATCH_BYTES {
                        break;
                    }
                    if let Some(n) = self.notice(&id)? {
                        bytes += n.scope.len() + n.enterprise.len() + 512;
                        let issuer_within = n.issuer().is_some_and(|d| match to {
                            Some(child) => child.contains(d),
                            None => !self.router.division.contains(d),
                        });
                        if to.is_none() || within(&n.to) || issuer_within {
                            out.notices.push(n);
                        }
                    }
                }
                // checks go up only, for the centre's counts
                4 if to.is_none() => {
                    if bytes > BATCH_BYTES {
                        break;
                    }
                    if let Some(c) = self.check(&id)? {
                        bytes += serde_json::to_vec(&c).map_or(0, |j| j.len());
                        out.checks.push(checks::travelling(c));
                    }
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
        let side = from.map_or(Side::Parent, Side::Child);
        // the side a node's news comes from: below the child, or outside this division
        let on_side = |node: &NodeId| match from {
            Some(child) => child.contains(node.division()),
            None => !router.division.contains(node.division()),
        };
        let tx = self.conn.begin()?;
        // consumers of the deliveries stored, rung once the batch is committed
        let mut stored_for: Vec<NodeId> = Vec::new();
        for sent in &batch.records {
            // the grant's secret never travels: each hub keeps its own
            let mut r = RequestRecord { salt: String::new(), ..sent.clone() };
            let held: Option<RequestRecord> = tx
                .query_row("SELECT record FROM requests WHERE id = ?1", args![&r.id], |x| x.get::<String>(0))
                .optional()?
                .map(|j| parse_record(&j))
                .transpose()?;
            match grant::take_record(&router, side, held.as_ref(), &r) {
                Err(refused) => {
                    tracing::warn!(id = %r.id, from = ?side, reason = %refused, "refused a request record");
                    refuse_record(&tx, side, &r, &refused.to_string())?;
                }
                Ok(Taken::Keep) => {
                    salted(&mut r);
                    Self::store(&tx, &r)?;
                }
                Ok(Taken::Refile) => {
                    // the provider's hub files a request filed elsewhere again against its own entry
                    let again = grant::refile(&r, entry(&r.code).as_ref());
                    if again == r {
                        salted(&mut r);
                        Self::store(&tx, &r)?;
                        continue;
                    }
                    tracing::warn!(id = %r.id, "a request filed elsewhere was filed again here with another outcome");
                    let mut r = RequestRecord { version: 2, ..again };
                    salted(&mut r);
                    if Self::store(&tx, &r)? {
                        audit(
                            &tx,
                            "decision",
                            &r,
                            serde_json::json!({
                                "verdict": "refiled", "consumer": r.consumer.to_string(), "state": r.state(r.filed_at),
                                "columns": r.columns, "masked": r.masked, "version": r.version,
                            }),
                        )?;
                    }
                }
            }
        }
        for d in &batch.deliveries {
            let Some(r) = tx
                .query_row("SELECT record FROM requests WHERE id = ?1", args![&d.grant], |x| x.get::<String>(0))
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
            // deliveries come from the provider's side only: elsewhere nobody produces them
            if !on_side(&r.provider) {
                tracing::warn!(grant = %d.grant, n = d.n, from = ?side, "refused a delivery from the consumer's side");
                continue;
            }
            if Self::store_delivery(&router, &tx, &r, d, &encode_delivery(d)?)? && !stored_for.contains(&r.consumer) {
                stored_for.push(r.consumer.clone());
            }
        }
        for p in &batch.progress {
            if let Some(j) = tx
                .query_row("SELECT record FROM requests WHERE id = ?1", args![&p.grant], |x| x.get::<String>(0))
                .optional()?
            {
                let r = parse_record(&j)?;
                if on_side(&r.consumer) {
                    Self::store_progress(&tx, &r, p)?;
                }
            }
        }
        for n in &batch.notices {
            Self::merge_notice(&tx, &router, side, n)?;
        }
        for c in &batch.checks {
            Self::merge_check(&tx, from, c)?;
        }
        if let Some(name) = cursor {
            Self::set_meta(&tx, name, batch.upto)?;
        }
        tx.commit()?;
        for consumer in &stored_for {
            self.doorbell.ring(consumer, &router.place(consumer));
        }
        if !batch.records.is_empty() {
            // a grant may have become live here: make its deliveries now, not at the next second
            self.doorbell.produce.notify_one();
        }
        Ok(())
    }

    /// Sets a link cursor once the other end stored everything up to `upto`.
    pub fn set_cursor(&mut self, name: &str, upto: u64) -> Result<(), ExchangeError> {
        let tx = self.conn.begin()?;
        Self::set_meta(&tx, name, upto)?;
        tx.commit()?;
        Ok(())
    }

    /// After a restore from backup, the next change number leaps
    /// [`RESTORE_GAP`] past the backup's: the numbers handed out after the
    /// backup were lost with it, and a child hub that pulled up to one of
    /// them would never pull what is recorded now under the same numbers.
    /// The next request number leaps too ([`REQUEST_ID_GAP`]): a request
    /// filed here after the backup is still known above under its id, and a
    /// new one under the same id would be taken there for old news.
    /// Returns the new last change number.
    pub fn leap_after_restore(&mut self) -> Result<u64, ExchangeError> {
        let tx = self.conn.begin()?;
        let rev = self.meta("rev")?.saturating_add(RESTORE_GAP);
        Self::set_meta(&tx, "rev", rev)?;
        let id = self.meta("request_id")?.saturating_add(REQUEST_ID_GAP);
        Self::set_meta(&tx, "request_id", id)?;
        tx.commit()?;
        Ok(rev)
    }

    /// The parent was restored from a backup ([`parent_restored`]): push
    /// everything to it again, in one transaction with the time, at most
    /// once an hour (a parent answering every pull with a leap would
    /// otherwise have the whole exchange pushed on every pass). Returns
    /// whether it will be.
    pub fn push_all_again(&mut self, now: i64) -> Result<bool, ExchangeError> {
        let last = self.meta("parent_restored_at")?;
        let now = now.max(0) as u64;
        if last > 0 && now.saturating_sub(last) < 3600 {
            return Ok(false);
        }
        let tx = self.conn.begin()?;
        Self::set_meta(&tx, "parent_restored_at", now)?;
        Self::set_meta(&tx, "pushed", 0)?;
        tx.commit()?;
        Ok(true)
    }
}

/// How far a hub's request numbers leap after a restore from backup: more
/// requests than are filed at one hub between a backup and its restore.
pub const REQUEST_ID_GAP: u64 = 1_000_000;

/// How far a hub's change numbers leap after a restore from backup: more
/// than a hub hands out between a backup and its restore, and far more than
/// one pull ever spans otherwise.
pub const RESTORE_GAP: u64 = 1 << 32;

/// True when a pull from `since` answered up to `upto` went over the leap
/// of a parent restored from backup (or was the first pull from such a
/// parent): what this hub pushed to it after its backup was lost, and is
/// pushed again (each item is stored once, so what it kept is unchanged).
pub fn parent_restored(since: u64, upto: u64) -> bool {
    upto.saturating_sub(since) >= RESTORE_GAP / 2
}

/// Keeps a record another hub sent and this hub refused as evidence, in
/// the audit log: what it claimed, who sent it, and why it was refused.
fn refuse_record(tx: &Tx<'_>, side: Side, r: &RequestRecord, reason: &str) -> Result<(), crate::store::db::DbError> {
    let from = match side {
        Side::Parent => "the parent hub".to_owned(),
        Side::Child(d) => format!("{d}/hub"),
    };
    audit(
        tx,
        "refused",
        r,
        serde_json::json!({
            "from": from, "reason": reason, "provider": r.provider.to_string(), "version": r.version,
            "state": r.state(r.filed_at), "columns": r.columns, "masked": r.masked,
        }),
    )
}
