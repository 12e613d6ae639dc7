//! The agent's side of the catalogue: reading each resource's declared
//! entry, checking it against the rules and the source's columns before any
//! data moves, numbering its versions, and publishing (or withdrawing) it.
//!
//! A declared entry that differs from the one last published becomes a new
//! version: signed, framed and kept in `state.db` until the hub answers, so a
//! kill or a cut link only delays it. Withdrawal is explicit (`gdx-agent
//! catalog withdraw CODE`), never a side effect of editing agent.toml: an
//! entry that is no longer declared stays published until withdrawn.

use gdx_certs::pki;
use gdx_common::catalog::{CatalogEntry, Publication, encode_publication};
use gdx_common::wire::{Message, SignedEntry, encode_frame};
use rusqlite::{OptionalExtension, params};

use crate::config::{AgentConfig, CatalogDecl, ResourceConfig};
use crate::identity::Signer;
use crate::state::State;

/// The entry `res` declares, with its provider and resource filled in and
/// every rule checked; `Ok(None)` when it declares none. The error lists
/// every field at fault.
pub fn declared(res: &ResourceConfig, node: &gdx_common::NodeId, now: i64) -> Result<Option<CatalogEntry>, String> {
    let what = format!("resource {}: catalogue entry", res.code);
    let mut table = match &res.catalog {
        None => return Ok(None),
        Some(CatalogDecl::Inline(t)) => t.clone(),
        Some(CatalogDecl::File(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))?;
            toml::from_str::<toml::Table>(&text)
                .map_err(|e| format!("{what} in {} is not valid TOML: {}", path.display(), e.message()))?
        }
    };
    for (key, value) in [("provider", node.to_string()), ("resource", res.code.to_string())] {
        match table.get(key).and_then(toml::Value::as_str) {
            Some(v) if v != value => {
                return Err(format!("{what}: {key} is {v:?} but this is {value}; leave {key} out, it is filled in"));
            }
            _ => {
                table.insert(key.to_owned(), toml::Value::String(value));
            }
        }
    }
    let entry: CatalogEntry = table.try_into().map_err(|e: toml::de::Error| format!("{what}: {}", e.message()))?;
    if let Err(errors) = entry.validate(now.div_euclid(86_400)) {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(format!("{what} {} breaks the catalogue rules: {}", entry.code, list.join("; ")));
    }
    Ok(Some(entry))
}

/// Refuses an entry whose resource the hub already lists under another
/// code: that one must be withdrawn first. Entries the hub never recorded
/// (refused, say) do not count; [`stage`] drops them.
pub fn check_conflict(conn: &rusqlite::Connection, entry: &CatalogEntry) -> Result<(), String> {
    let other: Option<String> = conn
        .query_row(
            "SELECT code FROM catalog WHERE resource = ?1 AND code <> ?2 AND withdrawn = 0
               AND (recorded > 0 OR envelope IS NOT NULL)",
            params![entry.resource.as_str(), entry.code],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_text)?;
    match other {
        Some(other) => Err(format!(
            "resource {} is already published as catalogue entry {other}; withdraw it first with `gdx-agent catalog withdraw {other}`, then sync again",
            entry.resource
        )),
        None => Ok(()),
    }
}

/// Records `entry` as the newest version of its code if it differs from the
/// one last published, inside the caller's transaction (the scan's, so the
/// entry, the state and the outbox change together); returns the new
/// version, if any.
pub fn stage(tx: &rusqlite::Connection, signer: &Signer, entry: &CatalogEntry) -> Result<Option<u64>, String> {
    check_conflict(tx, entry)?;
    tx.execute(
        "DELETE FROM catalog WHERE resource = ?1 AND code <> ?2 AND recorded = 0 AND envelope IS NULL",
        params![entry.resource.as_str(), entry.code],
    )
    .map_err(db_text)?;
    let held: Option<(i64, bool, String, bool)> = tx
        .query_row("SELECT version, withdrawn, entry, restage FROM catalog WHERE code = ?1", [&entry.code], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()
        .map_err(db_text)?;
    let json = serde_json::to_string(entry).map_err(|e| e.to_string())?;
    if let Some((_, false, held_json, false)) = &held
        && held_json == &json
    {
        return Ok(None);
    }
    let version = held.map_or(1, |h| h.0 as u64 + 1);
    let frame = sign(signer, Publication { version, withdrawn: false, entry: entry.clone() })?;
    tx.execute(
        "INSERT INTO catalog (code, resource, version, withdrawn, entry, envelope, refused, restage)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, NULL, 0)
         ON CONFLICT(code) DO UPDATE SET resource = excluded.resource, version = excluded.version, withdrawn = 0,
            entry = excluded.entry, envelope = excluded.envelope, refused = NULL, restage = 0",
        params![entry.code, entry.resource.as_str(), version as i64, json, frame],
    )
    .map_err(db_text)?;
    Ok(Some(version))
}

fn db_text(e: rusqlite::Error) -> String {
    format!("the agent's state database failed: {e}")
}

/// What `withdraw` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// The withdrawal is this version, to be sent to the hub.
    Staged(u64),
    /// The hub never recorded the entry: it was only forgotten here.
    Forgotten,
}

/// Records the withdrawal of the published entry `code` as its next version.
pub fn withdraw(
    state: &mut State,
    signer: &Signer,
    config: &AgentConfig,
    code: &str,
    now: i64,
) -> Result<Withdrawal, String> {
    for res in &config.resources {
        if let Ok(Some(e)) = declared(res, &signer.node, now)
            && e.code == code
        {
            return Err(format!(
                "resource {} still declares catalogue entry {code} in agent.toml; remove its catalog first, or the next sync would publish it again",
                res.code
            ));
        }
    }
    let db = db_text;
    let tx = state.conn().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
    let held: Option<(i64, bool, String, i64)> = tx
        .query_row("SELECT version, withdrawn, entry, recorded FROM catalog WHERE code = ?1", [code], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()
        .map_err(db)?;
    if held.as_ref().is_some_and(|h| h.3 == 0) {
        tx.execute("DELETE FROM catalog WHERE code = ?1", [code]).map_err(db)?;
        tx.commit().map_err(db)?;
        return Ok(Withdrawal::Forgotten);
    }
    let Some((version, withdrawn, json, _)) = held else {
        return Err(format!(
            "this agent never published a catalogue entry {code}; `gdx-agent catalog list` shows its entries"
        ));
    };
    if withdrawn {
        return Err(format!("catalogue entry {code} is already withdrawn"));
    }
    let entry: CatalogEntry =
        serde_json::from_str(&json).map_err(|e| format!("the stored entry {code} is damaged: {e}"))?;
    let version = version as u64 + 1;
    let frame = sign(signer, Publication { version, withdrawn: true, entry })?;
    tx.execute(
        "UPDATE catalog SET version = ?2, withdrawn = 1, envelope = ?3, refused = NULL WHERE code = ?1",
        params![code, version as i64, frame],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok(Withdrawal::Staged(version))
}

fn sign(signer: &Signer, p: Publication) -> Result<Vec<u8>, String> {
    let body = encode_publication(&p)?;
    let signature = pki::sign(&signer.key, &body).map_err(|e| format!("signing failed: {e}"))?;
    let env = SignedEntry {
        origin: signer.node.clone(),
        code: p.entry.code.clone(),
        version: p.version,
        body,
        signature,
        signer_chain: signer.chain.clone(),
    };
    encode_frame(&Message::Publish(env)).map_err(|e| e.to_string())
}

/// Publications waiting for the hub.
pub fn pending(state: &mut State) -> rusqlite::Result<u64> {
    state
        .conn()
        .query_row("SELECT count(*) FROM catalog WHERE envelope IS NOT NULL", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// One entry as this agent last published it, for `catalog list` and `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LocalEntry {
    pub code: String,
    pub resource: String,
    pub name: String,
    pub version: u64,
    pub withdrawn: bool,
    /// Waiting for the hub's answer.
    pub pending: bool,
    /// Why the hub refused the current version.
    pub refused: Option<String>,
    /// The highest version the hub recorded (0: never).
    pub recorded: u64,
    /// The hub held a newer version; the next sync publishes above it.
    pub restage: bool,
}

/// Every entry this agent has published.
pub fn local_entries(state: &mut State) -> rusqlite::Result<Vec<LocalEntry>> {
    let mut stmt = state.conn().prepare(
        "SELECT code, resource, entry, version, withdrawn, envelope IS NOT NULL, refused, recorded, restage
         FROM catalog ORDER BY code",
    )?;
    let rows = stmt.query_map([], |r| {
        let json: String = r.get(2)?;
        let name = serde_json::from_str::<CatalogEntry>(&json).map(|e| e.name).unwrap_or_default();
        Ok(LocalEntry {
            code: r.get(0)?,
            resource: r.get(1)?,
            name,
            version: r.get::<_, i64>(3)? as u64,
            withdrawn: r.get(4)?,
            pending: r.get(5)?,
            refused: r.get(6)?,
            recorded: r.get::<_, i64>(7)? as u64,
            restage: r.get(8)?,
        })
    })?;
    rows.collect()
}
