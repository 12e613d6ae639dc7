//! Controlled exchange at the agent: filing requests, deciding them as a
//! provider, looking records up, and receiving granted data.
//!
//! Received data goes to the SQLite database named by `received` in
//! agent.toml, one table per grant (`ORG_RESOURCE_DIVISION` of the
//! provider). `_gdx_received` in the same database holds, per grant, the
//! number of the last delivery applied, and each delivery is applied in one
//! transaction with that number: a kill at any point leaves either the
//! delivery applied and counted or neither, and the next fetch asks from
//! the number held, so nothing is lost or applied twice.

use std::path::Path;
use std::time::Duration;

use gdx_certs::{Identity, pki, tls};
use gdx_common::Role;
use gdx_common::data::{Column, decode_changeset};
use gdx_common::grant::RequestRecord;
use gdx_common::wire::{Fetch, LookupAnswer, Message, SignedDelivery};
use gdx_files::tables;
use gdx_link::frames;
use rusqlite::{Connection, OptionalExtension, params};
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use tracing::{info, warn};

use crate::config::{AgentConfig, AgentPaths};
use crate::identity::Credentials;
use crate::now;
use crate::uplink;

/// How often the daemon asks its hub for new deliveries, when the hub
/// cannot tell it (protocol older than 3).
pub const RECEIVE_INTERVAL: Duration = Duration::from_secs(2);
/// How often it asks all the same while the hub tells it (`Watch`).
const RECEIVE_WATCHED: Duration = Duration::from_secs(30);

/// Sends `msg` to the hub on a connection of its own and returns the answer;
/// a refusal becomes the error, in the hub's words.
pub async fn ask(dir: &Path, msg: Message, timeout: Duration) -> anyhow::Result<Message> {
    let (_, _, _, session) = probe(dir, timeout).await?;
    let answer = ask_on(&session.conn, &msg).await.map_err(anyhow::Error::msg);
    close(session).await;
    answer
}

/// The agent's files and a probe connection to its hub (the daemon's own
/// connection stays).
async fn probe(
    dir: &Path,
    timeout: Duration,
) -> anyhow::Result<(AgentPaths, AgentConfig, Credentials, uplink::Session)> {
    let paths = AgentPaths::new(dir);
    let config = AgentConfig::load(&paths)?;
    let creds = Credentials::load(&paths)?;
    let session = uplink::connect(&config, &creds, timeout, true).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((paths, config, creds, session))
}

async fn close(session: uplink::Session) {
    session.close(b"done").await;
}

/// One message to the hub and its answer, on a stream of its own.
async fn ask_on(conn: &quinn::Connection, msg: &Message) -> Result<Message, String> {
    frames::ask(conn, msg, Duration::from_secs(60), "the hub").await
}

/// The answer as a record, or why not.
pub fn record(answer: Message) -> anyhow::Result<RequestRecord> {
    match answer {
        Message::RequestAnswer(r) => Ok(*r),
        other => anyhow::bail!("the hub answered with {}", other.kind()),
    }
}

/// The answer as a lookup result, or why not.
pub fn looked_up(answer: Message) -> anyhow::Result<LookupAnswer> {
    match answer {
        Message::LookupAnswer(a) => Ok(a),
        other => anyhow::bail!("the hub answered with {}", other.kind()),
    }
}

/// What `gdx-agent within` prints of the hub's answer: each record, its
/// geometry's area and centroid first; or JSON.
pub fn within_report(answer: Message, json: bool) -> anyhow::Result<String> {
    let a = match answer {
        Message::WithinAnswer(a) => a,
        other => anyhow::bail!("the hub answered with {}", other.kind()),
    };
    let rows: Vec<serde_json::Value> = a.rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect();
    if json {
        let all = serde_json::json!({
            "grant": a.id, "served_by": a.served_by.to_string(), "as_of_delivery": a.as_of, "more": a.more, "records": rows,
        });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&all)?));
    }
    let mut out = String::new();
    for row in &rows {
        let Some(map) = row.as_object() else { continue };
        let text = |v: &serde_json::Value| v.as_str().map_or(v.to_string(), str::to_owned);
        let fields: Vec<String> = map
            .iter()
            .filter(|(k, _)| {
                !k.contains(gdx_common::grant::COMPANION) && k.as_str() != gdx_common::grant::PSEUDONYM_COLUMN
            })
            // the geometry itself (the field measured beside it) is in --json
            .filter(|(k, _)| !map.contains_key(&format!("{k}__bbox")))
            .map(|(k, v)| format!("{k}: {}", text(v)))
            .collect();
        let measured: Vec<String> = map
            .iter()
            .filter(|(k, _)| k.ends_with("__area_m2") || k.ends_with("__centroid"))
            .map(|(k, v)| format!("{}: {}", k.rsplit(gdx_common::grant::COMPANION).next().unwrap_or(k), text(v)))
            .collect();
        out.push_str(&format!("{}   [{}]\n", fields.join(", "), measured.join(", ")));
    }
    out.push_str(&format!(
        "{} record(s) (grant {}, from hub {}, as of delivery {}){}\n",
        rows.len(),
        a.id,
        a.served_by,
        a.as_of,
        if a.more { "; more lie in the box: narrow it, or raise --limit" } else { "" }
    ));
    Ok(out)
}

/// The requests this agent filed or must decide.
pub async fn requests(dir: &Path, timeout: Duration) -> anyhow::Result<Vec<RequestRecord>> {
    match ask(dir, Message::ListRequests, timeout).await? {
        Message::Requests(r) => Ok(r),
        other => anyhow::bail!("the hub answered with {}", other.kind()),
    }
}

/// A `gdx-agent requests` table.
pub fn requests_table(me: &gdx_common::NodeId, list: &[RequestRecord], now: i64) -> String {
    use gdx_common::units::format_date;
    if list.is_empty() {
        return "no requests filed by or addressed to this department\n".into();
    }
    let head = ["ID", "DIR", "STATE", "OTHER PARTY", "CODE", "FIELDS", "DUE/UNTIL"];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|h| (*h).to_owned()).collect()];
    for r in list {
        let (dir, other) = if &r.consumer == me { ("out", &r.provider) } else { ("in", &r.consumer) };
        let fields = if r.columns.is_empty() { &r.fields } else { &r.columns };
        let when = match &r.status {
            gdx_common::grant::Status::Pending { answer_by_day } => {
                format!("due {}", format_date(answer_by_day * 86_400))
            }
            _ => r.granted_until.map_or("-".into(), |d| format_date(d * 86_400)),
        };
        rows.push(vec![
            r.id.clone(),
            dir.into(),
            r.state(now).to_string(),
            other.to_string(),
            r.code.clone(),
            fields.join(","),
            when,
        ]);
        rows.push(vec![String::new(), format!("{} — {}", r.name, r.purpose)]);
        if let Some(why) = r.refusal(now).filter(|_| r.state(now) != "pending") {
            rows.push(vec![String::new(), why.to_string()]);
        }
    }
    gdx_common::table::render(&rows)
}

/// What one receive pass did, per grant.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub grant: String,
    pub code: String,
    pub table: String,
    pub deliveries: u64,
    pub rows: u64,
    /// The last delivery applied.
    pub applied: u64,
    /// Why nothing more can be received, if so (revoked, expired…).
    pub stopped: Option<String>,
}

/// `gdx-agent receive`: one pass over every grant, on a connection of its own.
pub async fn receive_now(dir: &Path, timeout: Duration) -> anyhow::Result<Vec<Received>> {
    let (paths, config, creds, session) = probe(dir, timeout).await?;
    let out = receive_pass(&session.conn, &paths, &config, &creds).await.map_err(anyhow::Error::msg);
    close(session).await;
    out
}

/// The daemon's loop: a receive pass each time the hub rings (a delivery
/// stored for this agent), at least every [`RECEIVE_WATCHED`]; every
/// [`RECEIVE_INTERVAL`] with a hub that cannot ring. Returns why the
/// connection closed.
pub async fn receive_loop(
    conn: &quinn::Connection,
    paths: &AgentPaths,
    config: &AgentConfig,
    creds: &Credentials,
) -> String {
    let watching = gdx_link::watch::watch(conn, "the hub");
    loop {
        let failed = match receive_pass(conn, paths, config, creds).await {
            Ok(list) => {
                for r in list.iter().filter(|r| r.deliveries > 0) {
                    info!(grant = %r.grant, code = %r.code, rows = r.rows, applied = r.applied, "received");
                }
                false
            }
            Err(e) => {
                warn!(error = %e, "receiving granted data failed; retrying");
                true
            }
        };
        // a failed pass is tried again soon: the ring that started it is spent
        let (every, rung) = match &watching {
            Some(w) if w.alive() && !failed => (RECEIVE_WATCHED, Some(w.rung.clone())),
            _ => (RECEIVE_INTERVAL, None),
        };
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = async { if let Some(r) = &rung { r.notified().await } else { std::future::pending().await } } => {}
            reason = conn.closed() => return frames::describe_connection_error(&reason),
        }
    }
}

/// Asks for the deliveries of every grant to this agent and applies them.
pub async fn receive_pass(
    conn: &quinn::Connection,
    paths: &AgentPaths,
    config: &AgentConfig,
    creds: &Credentials,
) -> Result<Vec<Received>, String> {
    let records = match ask_on(conn, &Message::ListRequests).await? {
        Message::Requests(r) => r,
        other => return Err(format!("the hub answered with {}", other.kind())),
    };
    // the roots as they are now: a root taken during this connection (a rollover) counts at once; only
    // ca.crt is read (loading the key pair would settle a renewal's switch while it is being made)
    let roots: Vec<CertificateDer<'static>> = match std::fs::read_to_string(paths.ca()) {
        Ok(pem) => gdx_certs::trust::read(&pem).into_iter().map(CertificateDer::from).collect(),
        Err(_) => creds.roots.clone(),
    };
    let verifier = tls::ChainVerifier::new(&roots).map_err(|e| e.to_string())?;
    let db = paths.received(config);
    let mut conn_db = open_received(&db).map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    let mut out = Vec::new();
    let now = now();
    for r in records.iter().filter(|r| {
        r.consumer == config.node
            && !matches!(
                r.status,
                gdx_common::grant::Status::Pending { .. }
                    | gdx_common::grant::Status::Refused { .. }
                    | gdx_common::grant::Status::Denied { .. }
            )
    }) {
        let table = table_name(r);
        let mut got = Received {
            grant: r.id.clone(),
            code: r.code.clone(),
            table: table.clone(),
            deliveries: 0,
            rows: 0,
            applied: applied(&conn_db, &r.id).map_err(|e| e.to_string())?,
            stopped: r.refusal(now).map(|c| c.to_string()),
        };
        if got.stopped.is_some() {
            note_stopped(&conn_db, r, got.stopped.as_deref()).map_err(|e| e.to_string())?;
            out.push(got);
            continue;
        }
        loop {
            let batch = match ask_on(conn, &Message::Fetch(Fetch { id: r.id.clone(), after: got.applied })).await {
                Ok(Message::Deliveries(d)) => d,
                Ok(other) => return Err(format!("the hub answered with {}", other.kind())),
                Err(e) => {
                    got.stopped = Some(e.clone());
                    note_stopped(&conn_db, r, Some(&e)).map_err(|e| e.to_string())?;
                    break;
                }
            };
            if batch.is_empty() {
                // tells the hub how far this agent got
                break;
            }
            let mut failed = None;
            for d in batch {
                // A delivery that fails its checks stops this grant only; the
                // others are received, and this one is asked for again.
                let applied = verify(&verifier, r, &d, now).and_then(|()| {
                    apply(&mut conn_db, r, &table, &d)
                        .map_err(|e| format!("cannot apply delivery {} of {}: {e}", d.n, r.id))
                });
                match applied {
                    Ok(rows) => {
                        got.deliveries += 1;
                        got.rows += rows;
                        got.applied = d.n;
                    }
                    Err(e) => {
                        warn!(grant = %r.id, error = %e, "a delivery was refused");
                        failed = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                got.stopped = Some(e);
                break;
            }
        }
        out.push(got);
    }
    Ok(out)
}

/// Checks a delivery's signature: made by the hub of the provider's division, chained to the root.
fn verify(verifier: &tls::ChainVerifier, r: &RequestRecord, d: &SignedDelivery, now: i64) -> Result<(), String> {
    let what = format!("delivery {} of {}", d.n, r.id);
    match verifier.verify(&d.signer_chain, now) {
        Ok(Identity::Node { node, role: Role::Hub, .. }) if node.division().contains(r.provider.division()) => {}
        Ok(other) => return Err(format!("{what} is signed by {other:?}, not by the hub of {}", r.provider)),
        Err(e) => return Err(format!("{what}: its signer's certificate does not verify: {e}")),
    }
    if d.grant != r.id {
        return Err(format!("{what} names grant {}", d.grant));
    }
    let cert = d.signer_chain.first().map(Vec::as_slice).unwrap_or_default();
    pki::verify_signature(cert, &SignedDelivery::signed_bytes(&d.grant, d.n, d.replace, &d.body), &d.signature)
        .map_err(|e| format!("{what} was altered after its hub signed it: {e}"))
}

/// A base database field's `FIELD__source` value as people read it:
/// `from 630000/gongan/hukou, changeset 12, 2026-12-05 06:00:00 UTC`, and
/// `STALE` when its department was revoked.
pub fn source_note(v: &serde_json::Value) -> Option<String> {
    let note: serde_json::Value = serde_json::from_str(v.as_str()?).ok()?;
    let from = note.get("from")?.as_str()?;
    // a member that does not disclose itself gives no changeset number
    let changeset = note.get("changeset").and_then(serde_json::Value::as_i64).map(|c| format!(", changeset {c}"));
    let at = note.get("at")?.as_i64()?;
    let stale = note.get("stale").and_then(serde_json::Value::as_bool).unwrap_or(false);
    Some(format!(
        "from {from}{}, {}{}",
        changeset.unwrap_or_default(),
        gdx_common::units::format_time(at),
        if stale { ", STALE: its department was revoked" } else { "" }
    ))
}

/// The table a grant's rows go to: `ORG_RESOURCE_DIVISION` of the provider
/// (`minzheng_dibao_632522`), a plain SQL name.
pub fn table_name(r: &RequestRecord) -> String {
    let name: String = format!("{}_{}_{}", r.provider.org(), r.resource, r.provider.division())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) { format!("t_{name}") } else { name }
}

fn open_received(path: &Path) -> anyhow::Result<Connection> {
    Ok(gdx_files::open_sqlite(
        path,
        "CREATE TABLE IF NOT EXISTS _gdx_received (
            grant_id   TEXT PRIMARY KEY,
            code       TEXT NOT NULL,
            name       TEXT NOT NULL,
            provider   TEXT NOT NULL,
            table_name TEXT NOT NULL,
            columns    TEXT,
            n          INTEGER NOT NULL DEFAULT 0,
            rows       INTEGER NOT NULL DEFAULT 0,
            updated_at INTEGER,
            stopped    TEXT
        )",
    )?)
}

/// What the received database holds, per grant, for `gdx-agent status`.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedGrant {
    pub grant: String,
    pub code: String,
    pub name: String,
    pub provider: String,
    pub table: String,
    /// The last delivery applied and the rows received in all.
    pub applied: u64,
    /// Row changes received in all, and rows the table holds now.
    pub rows: u64,
    pub held: u64,
    pub updated_at: Option<i64>,
    /// Why receiving stopped (revoked, expired), if it did.
    pub stopped: Option<String>,
}

/// Reads the received database's record of each grant (none when it does not exist yet).
pub fn received_grants(path: &Path) -> anyhow::Result<Vec<ReceivedGrant>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let db = gdx_files::open_read_only(path)?;
    db.busy_timeout(Duration::from_secs(5))?;
    let mut stmt = db.prepare(
        "SELECT grant_id, code, name, provider, table_name, n, rows, updated_at, stopped FROM _gdx_received ORDER BY grant_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(ReceivedGrant {
            grant: r.get(0)?,
            code: r.get(1)?,
            name: r.get(2)?,
            provider: r.get(3)?,
            table: r.get(4)?,
            applied: r.get::<_, i64>(5)? as u64,
            rows: r.get::<_, i64>(6)? as u64,
            held: 0,
            updated_at: r.get(7)?,
            stopped: r.get(8)?,
        })
    })?;
    let mut list: Vec<ReceivedGrant> = rows.collect::<Result<_, _>>()?;
    for g in &mut list {
        g.held = db.query_row(&format!("SELECT count(*) FROM \"{}\"", g.table), [], |r| r.get::<_, i64>(0)).unwrap_or(0)
            as u64;
    }
    Ok(list)
}

fn applied(db: &Connection, grant: &str) -> rusqlite::Result<u64> {
    Ok(db
        .query_row("SELECT n FROM _gdx_received WHERE grant_id = ?1", [grant], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0) as u64)
}

fn note_stopped(db: &Connection, r: &RequestRecord, why: Option<&str>) -> rusqlite::Result<()> {
    db.execute("UPDATE _gdx_received SET stopped = ?2 WHERE grant_id = ?1", params![r.id, why])?;
    Ok(())
}

/// Applies one delivery and counts it, in one transaction; returns its rows
/// (0 for a delivery applied before).
fn apply(db: &mut Connection, r: &RequestRecord, table: &str, d: &SignedDelivery) -> anyhow::Result<u64> {
    let cs = decode_changeset(&d.body)?;
    cs.validate().map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        cs.origin == r.provider && cs.resource.as_str() == r.resource,
        "it carries {} of {}, not {} of {}",
        cs.resource,
        cs.origin,
        r.resource,
        r.provider
    );
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let held: Option<(i64, Option<String>)> = tx
        .query_row("SELECT n, columns FROM _gdx_received WHERE grant_id = ?1", [&r.id], |x| Ok((x.get(0)?, x.get(1)?)))
        .optional()?;
    let n = held.as_ref().map_or(0, |h| h.0 as u64);
    if d.n <= n {
        return Ok(0);
    }
    anyhow::ensure!(d.n == n + 1, "delivery {} arrived before {}", d.n, n + 1);
    let mut known: Option<Vec<Column>> =
        held.and_then(|h| h.1).and_then(|c| serde_json::from_str(&c).ok()).filter(|_| !d.replace);
    if d.replace || known.is_none() {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS \"{table}\""))?;
        known = None;
    }
    let columns = tables::apply(&tx, table, known, &cs)?;
    tx.execute(
        "INSERT INTO _gdx_received (grant_id, code, name, provider, table_name, columns, n, rows, updated_at, stopped)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)
         ON CONFLICT(grant_id) DO UPDATE SET columns = excluded.columns, n = excluded.n,
             rows = rows + excluded.rows, updated_at = excluded.updated_at, stopped = NULL",
        params![
            r.id,
            r.code,
            r.name,
            r.provider.to_string(),
            table,
            serde_json::to_string(&columns)?,
            d.n as i64,
            i64::from(d.rows),
            now()
        ],
    )?;
    tx.commit()?;
    Ok(u64::from(d.rows))
}

/// Parses `--fields a,b` (commas or 、) into field names.
pub fn split_fields(s: &str) -> Vec<String> {
    s.split([',', '、', '，']).map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect()
}

/// Reads an optional `--until YYYY-MM-DD` into a day number.
pub fn until_day(s: Option<&str>) -> anyhow::Result<Option<i64>> {
    s.map(|d| gdx_common::units::parse_date(d).map_err(|e| anyhow::anyhow!("--until: {e}"))).transpose()
}
