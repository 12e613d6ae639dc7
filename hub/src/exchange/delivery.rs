//! Deliveries: produced at the provider's hub from the changeset frames in
//! the provider's vault (granted columns, masked, numbered per grant,
//! signed), fetched by the consumer's agent, and kept at the consumer's hub
//! for lookups (`lookups`).

use super::replica;
use super::*;

impl Exchange {
    /// Deliveries of grant `id` numbered above `after`, for `consumer`
    /// attached here; records that the consumer applied up to `after`.
    pub fn fetch(
        &mut self,
        consumer: &NodeId,
        id: &str,
        after: u64,
        now: i64,
    ) -> Result<Result<Vec<SignedDelivery>, Refusal>, ExchangeError> {
        let Some(r) = self.record(id)? else {
            return Ok(Err(Refusal::UnknownRequest { id: id.to_owned() }));
        };
        if &r.consumer != consumer {
            return Ok(Err(Refusal::NotTheConsumer { id: r.id, filed_by: r.consumer, consumer: consumer.clone() }));
        }
        if let Some(why) = r.refusal(now) {
            return Ok(Err(why.into()));
        }
        let tx = self.conn.begin()?;
        let held: Option<i64> =
            tx.query_row("SELECT n FROM progress WHERE grant_id = ?1", args![id], |x| x.get(0)).optional()?;
        if after > 0 && held.is_none_or(|h| (h as u64) < after) {
            let rows: i64 = tx.query_row(
                "SELECT CAST(coalesce(sum(rows), 0) AS BIGINT) FROM deliveries WHERE grant_id = ?1 AND n <= ?2",
                args![id, after as i64],
                |x| x.get(0),
            )?;
            let p = Progress { grant: id.to_owned(), n: after, rows: rows as u64, at: now };
            Self::store_progress(&tx, &r, &p)?;
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        // at most 64 a batch, read in fours so that a batch stops near BATCH_BYTES without reading past it
        let mut expect = after + 1;
        'batch: while out.len() < 64 && bytes <= BATCH_BYTES {
            let rows: Vec<(i64, Vec<u8>)> = tx.query(
                "SELECT n, frame FROM deliveries WHERE grant_id = ?1 AND n >= ?2 ORDER BY n LIMIT 4",
                args![id, expect as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if rows.is_empty() {
                break;
            }
            for (n, frame) in rows {
                if n as u64 != expect || bytes > BATCH_BYTES || out.len() >= 64 {
                    break 'batch;
                }
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

    pub(super) fn store_progress(tx: &Tx<'_>, r: &RequestRecord, p: &Progress) -> Result<bool, ExchangeError> {
        let held: Option<i64> =
            tx.query_row("SELECT n FROM progress WHERE grant_id = ?1", args![&p.grant], |x| x.get(0)).optional()?;
        if held.is_some_and(|h| h as u64 >= p.n) {
            return Ok(false);
        }
        let rev = Self::next(tx, "rev")?;
        tx.execute(
            "INSERT INTO progress (grant_id, consumer, provider, n, rows, at, rev) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (grant_id) DO UPDATE SET consumer = excluded.consumer, provider = excluded.provider,
                n = excluded.n, rows = excluded.rows, at = excluded.at, rev = excluded.rev",
            args![p.grant, r.consumer.to_string(), r.provider.to_string(), p.n as i64, p.rows as i64, p.at, rev as i64],
        )?;
        Ok(true)
    }

    /// Stores a delivery (and, when its consumer is attached here, applies
    /// it to the copy kept for lookups), in `tx`; false when already held.
    pub(super) fn store_delivery(
        router: &Router,
        tx: &Tx<'_>,
        r: &RequestRecord,
        d: &SignedDelivery,
        frame: &[u8],
    ) -> Result<bool, ExchangeError> {
        let held: Option<i64> = tx
            .query_row("SELECT 1 FROM deliveries WHERE grant_id = ?1 AND n = ?2", args![d.grant, d.n as i64], |x| {
                x.get(0)
            })
            .optional()?;
        if held.is_some() {
            return Ok(false);
        }
        let rev = Self::next(tx, "rev")?;
        tx.execute(
            "INSERT INTO deliveries (grant_id, n, consumer, provider, rows, frame, rev) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![d.grant, d.n as i64, r.consumer.to_string(), r.provider.to_string(), d.rows, frame, rev as i64],
        )?;
        if router.place(&r.consumer) == Place::Here {
            // A body that does not decode is stored all the same (the
            // consumer's agent checks the signature and refuses it); only
            // lookups miss its rows.
            match decode_changeset(&d.body) {
                Ok(cs) => replica::apply(tx, &d.grant, d.replace, &cs)?,
                Err(e) => tracing::warn!(grant = %d.grant, n = d.n, error = %e, "a delivery does not decode"),
            }
        }
        Ok(true)
    }

    /// Rings the doorbell for the deliveries stored after change number
    /// `after` (by another process of this hub, which cannot ring the
    /// agents connected to this one); returns the newest number seen. A
    /// negative `after` only reads where the deliveries are now.
    pub fn ring_stored_since(&self, after: i64) -> Result<i64, ExchangeError> {
        if after < 0 {
            let now: i64 =
                self.conn
                    .query_row("SELECT CAST(coalesce(max(rev), 0) AS BIGINT) FROM deliveries", args![], |r| r.get(0))?;
            return Ok(now);
        }
        let stored: Vec<(String, i64)> = self.conn.query(
            "SELECT consumer, max(rev) FROM deliveries WHERE rev > ?1 GROUP BY consumer",
            args![after],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut newest = after;
        for (consumer, rev) in stored {
            if let Ok(node) = NodeId::parse(&consumer) {
                self.doorbell.ring(&node, &self.router.place(&node));
            }
            newest = newest.max(rev);
        }
        Ok(newest)
    }

    /// Turns new changesets of the providers attached here into deliveries
    /// for every live grant; returns how many were made.
    pub fn produce(&mut self, now: i64) -> Result<usize, ExchangeError> {
        let mut made = 0;
        let here: Vec<RequestRecord> = {
            let mut stmt = self.conn.prepare("SELECT record FROM requests")?;
            let all: Vec<String> = stmt.query_map(args![], |r| r.get(0))?.collect::<Result<_, _>>()?;
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
                        args![r.id, e.to_string()],
                    )?;
                }
            }
        }
        Ok(made)
    }

    pub(super) fn produce_one(&mut self, r: &RequestRecord) -> Result<usize, ExchangeError> {
        let Some(vault) = super::published::Published::open(
            self.postgres.as_ref(),
            &self.vault_dir,
            &r.provider,
            r.resource.as_str(),
        )?
        else {
            return Ok(0);
        };
        let Some((epoch, last)) = vault.head(r.resource.as_str())? else {
            return Ok(0);
        };
        let held: Option<(i64, i64, i64)> = self
            .conn
            .query_row("SELECT epoch, seq, n FROM producers WHERE grant_id = ?1", args![&r.id], |x| {
                Ok((x.get(0)?, x.get(1)?, x.get(2)?))
            })
            .optional()?;
        let (p_epoch, mut seq, mut n) = held.unwrap_or((0, 0, 0));
        // the producer's position as this pass expects to find it in each transaction
        let mut expected = held;
        let mut replace = n == 0;
        if p_epoch != epoch {
            // first delivery, or the provider sent the resource again in full
            seq = 0;
            replace = true;
        }
        let mut made = 0;
        while seq < last && (made as u64) < PRODUCE_PER_PASS {
            let Some(cs) = vault.changeset(r.resource.as_str(), seq + 1)? else {
                return Err(ExchangeError::Damaged(format!(
                    "changeset {} of {} is not kept in the vault; the provider must send the resource again in full",
                    seq + 1,
                    r.resource
                )));
            };
            if cs.epoch as i64 != epoch {
                return Ok(made); // the vault is being replaced; next pass
            }
            let part = grant::deliverable(&cs, r, (n + 1) as u64, &|key| pseudonym(&r.salt, key));
            let delivery = self.sign(r, (n + 1) as u64, replace, &part)?;
            let frame = encode_delivery(&delivery)?;
            let tx = self.conn.begin()?;
            // another process of this hub moved the producer on (it held the lease a moment ago):
            // nothing is stored twice, and the next pass starts from where it got to
            let now_held: Option<(i64, i64, i64)> = tx
                .query_row("SELECT epoch, seq, n FROM producers WHERE grant_id = ?1", args![&r.id], |x| {
                    Ok((x.get(0)?, x.get(1)?, x.get(2)?))
                })
                .optional()?;
            if now_held != expected || !Self::store_delivery(&self.router, &tx, r, &delivery, &frame)? {
                return Ok(made);
            }
            tx.execute(
                "INSERT INTO producers (grant_id, epoch, seq, n, error) VALUES (?1, ?2, ?3, ?4, NULL)
                 ON CONFLICT (grant_id) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq, n = excluded.n,
                    error = NULL",
                args![r.id, epoch, seq + 1, n + 1],
            )?;
            tx.commit()?;
            expected = Some((epoch, seq + 1, n + 1));
            // once committed: the watcher's fetch finds it
            self.doorbell.ring(&r.consumer, &self.router.place(&r.consumer));
            seq += 1;
            n += 1;
            replace = false;
            made += 1;
        }
        Ok(made)
    }

    pub(super) fn sign(
        &self,
        r: &RequestRecord,
        n: u64,
        replace: bool,
        cs: &Changeset,
    ) -> Result<SignedDelivery, ExchangeError> {
        let Some(signer) = &self.signer else {
            return Err(ExchangeError::Damaged("this hub has no signing key loaded".into()));
        };
        let body = encode_changeset(cs).map_err(|e| ExchangeError::Damaged(e.to_string()))?;
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
}

pub(super) fn encode_delivery(d: &SignedDelivery) -> Result<Vec<u8>, ExchangeError> {
    bincode::serde::encode_to_vec(d, bincode::config::standard())
        .map_err(|e| ExchangeError::Damaged(format!("a delivery cannot be encoded: {e}")))
}

pub(super) fn decode_delivery(frame: &[u8]) -> Result<SignedDelivery, ExchangeError> {
    bincode::serde::decode_from_slice(frame, bincode::config::standard())
        .map(|(d, _)| d)
        .map_err(|e| ExchangeError::Damaged(format!("a stored delivery does not decode: {e}")))
}
