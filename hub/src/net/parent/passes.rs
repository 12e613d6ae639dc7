//! The passes of the link besides forwarding: the exchange's push and pull
//! (a pulled batch merged in pieces), the observations for 考核, and the
//! cosigning of this hub's audit checkpoints.

use super::*;

/// Runs `f` on the exchange on a blocking thread: the producer may hold
/// the exchange for a pass, which must not stall one of the runtime's
/// workers (and every connection they serve).
async fn with_exchange<T: Send + 'static>(
    exchange: &Arc<Mutex<Exchange>>,
    f: impl FnOnce(&mut Exchange) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let exchange = exchange.clone();
    tokio::task::spawn_blocking(move || f(&mut *exchange.lock().map_err(unavailable)?))
        .await
        .map_err(|_| "the exchange failed while the parent link used it".to_owned())?
}

/// Pushes what this subtree recorded for the exchange since the last push,
/// then pulls what the parent holds for this subtree. Each side stores an
/// item once (records by version, deliveries by grant and number), so a
/// pass repeated after a kill or a lost answer changes nothing.
pub(super) async fn exchange_pass(
    conn: &quinn::Connection,
    catalog: &Arc<Mutex<Catalog>>,
    exchange: &Arc<Mutex<Exchange>>,
) -> Result<(), String> {
    loop {
        let batch = with_exchange(exchange, |x| {
            let since = x.meta("pushed").map_err(|e| e.to_string())?;
            x.batch_since(since, None).map_err(|e| e.to_string())
        })
        .await?;
        let since = batch.upto;
        let empty = batch.is_empty();
        if !empty {
            match frames::ask(conn, &Message::ExchangePush(batch), ANSWER_TIMEOUT, PARENT).await? {
                Message::ExchangePushed(upto) if upto == since => {}
                other => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
            }
        }
        let done = with_exchange(exchange, move |x| {
            if x.meta("pushed").map_err(|e| e.to_string())? == since {
                return Ok(true);
            }
            x.set_cursor("pushed", since).map_err(|e| e.to_string()).map(|()| false)
        })
        .await?;
        if done {
            break;
        }
    }
    loop {
        let since = with_exchange(exchange, |x| x.meta("pulled").map_err(|e| e.to_string())).await?;
        let batch = match frames::ask(conn, &Message::ExchangePull(since), ANSWER_TIMEOUT, PARENT).await? {
            Message::ExchangePulled(b) => b,
            other => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
        };
        if batch.upto == since {
            return Ok(());
        }
        if crate::exchange::parent_restored(since, batch.upto) {
            let again = with_exchange(exchange, |x| x.push_all_again(now()).map_err(|e| e.to_string())).await?;
            match again {
                true => warn!(
                    since,
                    upto = batch.upto,
                    "the parent hub was restored from a backup: pushing the exchange's records and deliveries to it again"
                ),
                false => warn!(
                    since,
                    upto = batch.upto,
                    "the parent hub's change numbers leapt again within the hour; not pushing everything again before the hour is out"
                ),
            }
        }
        let pieces = pieces_of(batch);
        let last = pieces.len() - 1;
        for (n, piece) in pieces.into_iter().enumerate() {
            let catalog = catalog.clone();
            let exchange = exchange.clone();
            tokio::task::spawn_blocking(move || {
                let entry = |code: &str| {
                    let c = catalog.lock().ok()?;
                    // a withdrawn entry grants nothing: refiled against it, a request is refused
                    c.get(code, now()).ok().flatten().filter(|l| !l.withdrawn).map(|l| l.entry)
                };
                let cursor = (n == last).then_some("pulled");
                exchange.lock().map_err(unavailable)?.merge(&piece, None, &entry, cursor).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())??;
        }
    }
}

/// Deliveries merged under one hold of the exchange: a lookup answered
/// here waits for one piece of a pulled batch, not the whole of it.
const DELIVERIES_PER_MERGE: usize = 1;

/// A pulled batch in pieces merged one after the other, each in its own
/// transaction: the records and everything else with the first, the
/// deliveries [`DELIVERIES_PER_MERGE`] at a time, the pull cursor with the
/// last. Killed between two, the batch is pulled again from the cursor
/// and what was merged is merged again as nothing (records by version,
/// deliveries by grant and number).
fn pieces_of(mut batch: wire::ExchangeBatch) -> Vec<wire::ExchangeBatch> {
    let upto = batch.upto;
    let mut deliveries = std::mem::take(&mut batch.deliveries).into_iter().peekable();
    batch.deliveries = deliveries.by_ref().take(DELIVERIES_PER_MERGE).collect();
    let mut pieces = vec![batch];
    while deliveries.peek().is_some() {
        pieces.push(wire::ExchangeBatch {
            records: Vec::new(),
            deliveries: deliveries.by_ref().take(DELIVERIES_PER_MERGE).collect(),
            progress: Vec::new(),
            notices: Vec::new(),
            checks: Vec::new(),
            upto,
        });
    }
    pieces
}

/// Sends the parent what this hub observed of its departments since the
/// last report (`crate::evaluation::facts`); the cursors move once the
/// parent answered every message. A parent that refuses is logged, and
/// asked again next time.
pub(super) async fn observations_pass(conn: &quinn::Connection, paths: &HubPaths) -> Result<(), String> {
    let paths = paths.clone();
    // the log is read through a connection of its own: the audit log's lock is never held
    let gathered = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = Store::open(&paths)?;
        let log = crate::audit::Reader::open(&paths.dir)?;
        let pending = crate::evaluation::facts::pending(&store, &log, now())?;
        Ok((store, pending))
    })
    .await
    .map_err(|e| e.to_string())?;
    let (store, pending) = match gathered {
        Ok(x) => x,
        Err(e) => {
            warn!(error = %e, "cannot gather this hub's observations for the parent hub; trying again later");
            return Ok(());
        }
    };
    for chunk in chunks(&pending.days) {
        match frames::ask(conn, &Message::Observations(chunk.to_vec()), ANSWER_TIMEOUT, PARENT).await {
            Ok(Message::ObservationsTaken(n)) if n as usize == chunk.len() => {}
            Ok(Message::ObservationsTaken(n)) => {
                warn!(
                    taken = n,
                    sent = chunk.len(),
                    "the parent hub refused some of this hub's observations (its log says why)"
                );
            }
            Ok(other) => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
            Err(refused) => {
                warn!(error = %refused, "the parent hub did not take this hub's observations");
                return Ok(());
            }
        }
    }
    crate::evaluation::facts::sent(&store, &pending).map_err(|e| e.to_string())
}

/// The days in messages of at most `MAX_FACTS` days and about 4 MiB (a
/// day's JSON is longer than its frame), well within a frame's limit.
fn chunks(days: &[gdx_common::evaluation::DayFacts]) -> Vec<&[gdx_common::evaluation::DayFacts]> {
    const BYTES: usize = 4 << 20;
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, d) in days.iter().enumerate() {
        let size = serde_json::to_vec(d).map_or(BYTES, |v| v.len());
        if i > start && (i - start >= gdx_common::evaluation::MAX_FACTS || bytes + size > BYTES) {
            out.push(&days[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < days.len() {
        out.push(&days[start..]);
    }
    out
}

fn unavailable<T>(_: T) -> String {
    "the exchange store is unavailable".to_owned()
}

/// Sends this hub's newest audit checkpoint to the parent, with the proof
/// that it extends the last one the parent cosigned, and keeps the
/// cosignature if it verifies. A refusal (equivocation) or a cosignature
/// that is not kept is logged and retried later.
pub(super) async fn cosign_pass(
    conn: &quinn::Connection,
    audit: &Arc<Mutex<crate::audit::AuditLog>>,
) -> Result<(), String> {
    let mut from = None;
    for _ in 0..2 {
        let req = audit.lock().map_err(unavailable)?.cosign_request(from).map_err(|e| e.to_string())?;
        let Some(req) = req else { return Ok(()) };
        match frames::ask(conn, &Message::Cosign(req), ANSWER_TIMEOUT, PARENT).await {
            Ok(Message::Cosigned(c)) => {
                let kept = audit.lock().map_err(unavailable)?.keep_cosignature(&c).map_err(|e| e.to_string())?;
                if let Err(refused) = kept {
                    warn!(error = %refused, "the parent hub's cosignature of this hub's audit checkpoint was not kept");
                }
                return Ok(());
            }
            Ok(Message::CosignFrom(size)) => from = Some(size),
            Ok(other) => return Err(format!("unexpected answer from the parent hub: {}", other.kind())),
            Err(refused) => {
                warn!(error = %refused, "the parent hub did not cosign this hub's audit checkpoint");
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(n: u64) -> wire::SignedDelivery {
        wire::SignedDelivery {
            grant: "630100-1".into(),
            n,
            replace: n == 1,
            rows: 1,
            body: Vec::new(),
            signature: Vec::new(),
            signer_chain: Vec::new(),
        }
    }

    #[test]
    fn a_pulled_batch_merges_in_pieces_of_one_delivery_with_everything_else_first() {
        let batch = wire::ExchangeBatch {
            records: Vec::new(),
            deliveries: (1..=3).map(delivery).collect(),
            progress: vec![wire::Progress { grant: "630100-1".into(), n: 0, rows: 0, at: 0 }],
            notices: Vec::new(),
            checks: Vec::new(),
            upto: 42,
        };
        let pieces = pieces_of(batch);
        let numbers: Vec<Vec<u64>> = pieces.iter().map(|p| p.deliveries.iter().map(|d| d.n).collect()).collect();
        assert_eq!(numbers, [vec![1], vec![2], vec![3]]);
        assert_eq!(pieces[0].progress.len(), 1);
        assert!(pieces[1..].iter().all(|p| p.progress.is_empty() && p.upto == 42));
        // a batch without deliveries is one piece, its cursor moving with it
        let empty = wire::ExchangeBatch { deliveries: Vec::new(), ..pieces[0].clone() };
        assert_eq!(pieces_of(empty).len(), 1);
    }
}
