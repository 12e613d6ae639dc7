//! The hub's catalogue: every entry of its subtree, as its providers signed
//! it, in `catalog.db`; search, filters and freshness over it.
//!
//! An entry arrives as a [`SignedEntry`] and is recorded only after its
//! signature, its envelope and every rule of the guide check out. It is kept
//! with the exact bytes its provider signed, so that the hierarchy can pass
//! it up and down unchanged and every hub can verify it. Versions only move
//! forward: a resend of the version held is acknowledged as a duplicate, an
//! older one as already superseded, and the same version with other contents
//! is refused. A 信息资源代码 belongs to the provider that first published
//! it, and a provider's resource has at most one live entry.
//!
//! Each publication is recorded in one transaction, so a kill leaves the old
//! or the new version, never a mixture.

use std::collections::HashMap;
use std::path::Path;

use crate::args;
use crate::store::HubPaths;
use crate::store::db::{Db, Sql, Which};
use gdx_certs::pki;
use gdx_common::catalog::{
    CatalogClass, CatalogEntry, Freshness, Publication, SharingType, UpdateCycle, decode_publication, freshness,
    search_terms,
};
use gdx_common::table::render;
use gdx_common::units::{format_date, format_time};
use gdx_common::wire::{CatalogRefused, Catalogued, Message, SignedEntry, encode_frame};
use gdx_common::{DivisionCode, NodeId};

mod display;

pub use display::{show, table};

const SCHEMA: &str = "
-- one row per 信息资源代码: its newest version, as signed by its provider
CREATE TABLE IF NOT EXISTS entries (
    code          TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    division      TEXT NOT NULL,
    resource      TEXT NOT NULL,
    version       INTEGER NOT NULL,
    withdrawn     INTEGER NOT NULL,
    entry         TEXT NOT NULL,
    -- the Publish frame exactly as received, signature and chain included
    signed        BLOB NOT NULL,
    listed_at     INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- NULL: from the provider's own agent; else the hub it was relayed by
    via           TEXT,
    -- last change of the data, for entries whose vault is at another hub
    data_changed_at INTEGER,
    -- at a child hub: the version the parent has recorded
    forwarded     INTEGER NOT NULL DEFAULT 0,
    -- order of recording, for child hubs pulling the catalogue
    rev           INTEGER NOT NULL DEFAULT 0,
    class         TEXT NOT NULL,
    sharing_type  TEXT NOT NULL,
    update_cycle  TEXT NOT NULL,
    search_text   TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_live_resource ON entries(provider, resource) WHERE withdrawn = 0;
";

/// Failures of the catalogue database.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalogue database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", crate::store::db::failed("catalogue", .0))]
    Db(#[from] crate::store::db::DbError),
    #[error("a stored catalogue entry is damaged: {0}")]
    Damaged(String),
}

/// What recording a publication did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new version is now the entry's newest.
    New,
    /// This version was held already.
    Duplicate,
    /// A newer version, or this version with other contents, was held
    /// already; nothing changed.
    Stale { held: u64 },
    /// It breaks a rule and will never be recorded.
    Refused(String),
}

/// An entry as listed: the entry, its version and state, and its freshness.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub version: u64,
    pub withdrawn: bool,
    /// When this hub first recorded the entry (Unix seconds).
    pub catalogued_at: i64,
    /// When this hub recorded the current version.
    pub version_at: i64,
    pub freshness: Freshness,
}

/// What to list. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Search terms; every one must occur in the entry's text.
    pub terms: Vec<String>,
    pub class: Option<CatalogClass>,
    pub provider: Option<NodeId>,
    /// Providers in this division or below it.
    pub division: Option<DivisionCode>,
    pub sharing: Option<SharingType>,
    pub cycle: Option<UpdateCycle>,
    /// Only entries overdue for an update.
    pub overdue: bool,
    /// Include withdrawn entries.
    pub withdrawn: bool,
    /// Only the entry with this 信息资源代码.
    pub code: Option<String>,
}

/// Filters as people type them (`gdx-hub catalog list --class base`) and as
/// the API takes them (`?class=基础信息资源`). Values are the standard's
/// Chinese or the English aliases.
#[derive(Debug, Default, Clone, serde::Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct FilterArgs {
    /// Search text (API only; the CLI takes it as an argument).
    #[arg(skip)]
    #[serde(default)]
    pub q: Option<String>,
    /// 信息资源分类: 基础信息资源|base, 主题信息资源|theme, 部门信息资源|department.
    #[arg(long)]
    pub class: Option<String>,
    /// The providing node, DIVISION/ORG.
    #[arg(long)]
    pub provider: Option<String>,
    /// Providers in this division or below it (GB/T 2260 code).
    #[arg(long)]
    pub division: Option<String>,
    /// 共享类型: 无条件共享|unconditional, 有条件共享|conditional, 不予共享|none.
    #[arg(long)]
    pub sharing: Option<String>,
    /// 更新周期: 实时, 每日, 每周, 每月, 每季度, 每半年, 每年, 不定时 (or daily, weekly, …).
    #[arg(long)]
    pub cycle: Option<String>,
    /// Only entries whose data is overdue for an update.
    #[arg(long)]
    #[serde(default)]
    pub overdue: bool,
    /// Include withdrawn entries.
    #[arg(long)]
    #[serde(default)]
    pub withdrawn: bool,
    /// Judge freshness as of this day (YYYY-MM-DD) instead of now.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
}

impl FilterArgs {
    /// The filter, and the moment freshness is judged at.
    pub fn to_filter(&self, now: i64) -> Result<(Filter, i64), String> {
        fn parsed<T: std::str::FromStr<Err = String>>(v: &Option<String>) -> Result<Option<T>, String> {
            v.as_deref().map(str::parse).transpose()
        }
        let provider = match &self.provider {
            Some(p) => Some(NodeId::parse(p).map_err(|e| e.to_string())?),
            None => None,
        };
        let division = match &self.division {
            Some(d) => Some(DivisionCode::parse(d).map_err(|e| e.to_string())?),
            None => None,
        };
        let at = match &self.as_of {
            // the end of that day
            Some(d) => gdx_common::units::parse_date(d)? * 86_400 + 86_399,
            None => now,
        };
        let filter = Filter {
            terms: self.q.as_deref().map(search_terms).unwrap_or_default(),
            class: parsed(&self.class)?,
            provider,
            division,
            sharing: parsed(&self.sharing)?,
            cycle: parsed(&self.cycle)?,
            overdue: self.overdue,
            withdrawn: self.withdrawn,
            code: None,
        };
        Ok((filter, at))
    }
}

/// The catalogue database of a hub.
pub struct Catalog {
    db: Db,
    /// Where the providers' data last changed (the vaults, files or PostgreSQL).
    vaults: std::sync::Arc<crate::store::vault::Vaults>,
}

impl Catalog {
    /// Opens (creating if needed) the catalogue where hub.toml keeps the
    /// hub's stores: `catalog.db` in the hub directory, or PostgreSQL.
    pub fn open(hub_dir: &Path) -> Result<Self, CatalogError> {
        Self::with_vaults(hub_dir, std::sync::Arc::new(crate::store::vault::Vaults::new(hub_dir)))
    }

    /// Opens `catalog.db`, telling freshness from `vaults`.
    pub fn with_vaults(
        hub_dir: &Path,
        vaults: std::sync::Arc<crate::store::vault::Vaults>,
    ) -> Result<Self, CatalogError> {
        let db = Db::open(&HubPaths::new(hub_dir), Which::Catalog, &Self::tables())?;
        Ok(Self { db, vaults })
    }

    /// Every table of the catalogue.
    pub(crate) fn tables() -> String {
        [SCHEMA, crate::store::outbox::OUTBOX_SQL].concat()
    }

    /// Opens `catalog.db` with the vaults hub.toml names (connecting to
    /// PostgreSQL if they are there), for a command outside `gdx-hub run`.
    pub fn open_as_configured(hub_dir: &Path) -> anyhow::Result<Self> {
        let config = crate::config::HubConfig::load(&HubPaths::new(hub_dir))?;
        let vaults = crate::store::vault::Vaults::for_hub(hub_dir, &config)?;
        Ok(Self::with_vaults(hub_dir, std::sync::Arc::new(vaults))?)
    }

    /// Records a verified publication; `via` names the hub that relayed it.
    pub fn record(
        &self,
        env: &SignedEntry,
        p: &Publication,
        via: Option<&NodeId>,
        now: i64,
    ) -> Result<Recorded, CatalogError> {
        let e = &p.entry;
        self.db.write(|tx| {
            let held: Option<(String, i64, Vec<u8>)> =
                tx.query_opt("SELECT provider, version, signed FROM entries WHERE code = ?1", args![e.code], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            let frame =
                encode_frame(&Message::Publish(env.clone())).map_err(|x| CatalogError::Damaged(x.to_string()))?;
            if let Some((provider, version, signed)) = &held {
                if provider != &e.provider.to_string() {
                    return Ok(Recorded::Refused(format!(
                        "信息资源代码 {} is already catalogued by {provider}; give this entry a code of its own",
                        e.code
                    )));
                }
                let held = *version as u64;
                if held == p.version && held_body(signed)? == env.body {
                    return Ok(Recorded::Duplicate);
                }
                if held >= p.version {
                    return Ok(Recorded::Stale { held });
                }
            }
            if !p.withdrawn {
                let other: Option<String> = tx.query_opt(
                    "SELECT code FROM entries WHERE provider = ?1 AND resource = ?2 AND withdrawn = 0 AND code <> ?3",
                    args![e.provider.to_string(), e.resource.as_str(), e.code],
                    |r| r.get(0),
                )?;
                if let Some(other) = other {
                    return Ok(Recorded::Refused(format!(
                        "resource {} of {} is already catalogued as {other}; withdraw that entry first",
                        e.resource, e.provider
                    )));
                }
            }
            let entry_json = serde_json::to_string(e).map_err(|x| CatalogError::Damaged(x.to_string()))?;
            let rev: i64 = tx.query_row("SELECT coalesce(max(rev), 0) + 1 FROM entries", args![], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO entries (code, provider, division, resource, version, withdrawn, entry, signed, listed_at,
                                  updated_at, via, class, sharing_type, update_cycle, search_text, rev)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT(code) DO UPDATE SET resource = excluded.resource, version = excluded.version,
                withdrawn = excluded.withdrawn, entry = excluded.entry, signed = excluded.signed,
                updated_at = excluded.updated_at, via = excluded.via, class = excluded.class,
                sharing_type = excluded.sharing_type, update_cycle = excluded.update_cycle,
                search_text = excluded.search_text, rev = excluded.rev",
                args![
                    e.code,
                    e.provider.to_string(),
                    e.provider.division().to_string(),
                    e.resource.as_str(),
                    p.version as i64,
                    p.withdrawn,
                    entry_json,
                    frame,
                    now,
                    via.map(ToString::to_string),
                    e.class.label(),
                    e.sharing_type.label(),
                    e.update_cycle.label(),
                    e.search_text(),
                    rev,
                ],
            )?;
            crate::store::outbox::note(
                tx,
                &gdx_common::audit::Event {
                    kind: "catalogued".into(),
                    at: now,
                    node: Some(e.provider.to_string()),
                    resource: Some(e.code.clone()),
                    detail: serde_json::json!({
                        "version": p.version, "withdrawn": p.withdrawn, "name": e.name,
                        "sharing_type": e.sharing_type.label(), "via": via.map(ToString::to_string),
                    }),
                    ..Default::default()
                },
            )?;
            Ok(Recorded::New)
        })
    }

    /// The entries that pass `filter`, as of `now`, ordered by code (for a
    /// search, entries whose name matches come first).
    pub fn list(&self, filter: &Filter, now: i64) -> Result<Vec<Listed>, CatalogError> {
        let mut sql = String::from(
            "SELECT entry, version, withdrawn, listed_at, updated_at, data_changed_at FROM entries WHERE 1 = 1",
        );
        let mut args: Vec<crate::store::db::Value> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, value: String| {
            args.push(crate::store::db::Value::Text(value));
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if !filter.withdrawn {
            sql.push_str(" AND withdrawn = 0");
        }
        for t in &filter.terms {
            // case-blind for Latin letters on both engines (PostgreSQL's LIKE is not)
            bind(&mut sql, " AND lower(search_text) LIKE lower(?) ESCAPE '\\'", format!("%{}%", escape_like(t)));
        }
        if let Some(c) = filter.class {
            bind(&mut sql, " AND class = ?", c.label().to_owned());
        }
        if let Some(p) = &filter.provider {
            bind(&mut sql, " AND provider = ?", p.to_string());
        }
        if let Some(s) = filter.sharing {
            bind(&mut sql, " AND sharing_type = ?", s.label().to_owned());
        }
        if let Some(c) = filter.cycle {
            bind(&mut sql, " AND update_cycle = ?", c.label().to_owned());
        }
        if let Some(c) = &filter.code {
            bind(&mut sql, " AND code = ?", c.clone());
        }
        sql.push_str(" ORDER BY code");
        let rows = self.db.query(&sql, &args, |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<i64>(1)?,
                r.get::<bool>(2)?,
                r.get::<i64>(3)?,
                r.get::<i64>(4)?,
                r.get::<Option<i64>>(5)?,
            ))
        })?;
        let mut changed: HashMap<NodeId, HashMap<String, i64>> = HashMap::new();
        let mut out = Vec::new();
        for (json, version, withdrawn, listed_at, version_at, relayed_change) in rows {
            let entry: CatalogEntry = serde_json::from_str(&json).map_err(|e| CatalogError::Damaged(e.to_string()))?;
            if filter.division.is_some_and(|d| !d.contains(entry.provider.division())) {
                continue;
            }
            let local = changed
                .entry(entry.provider.clone())
                .or_insert_with(|| self.vaults.last_changes(&entry.provider))
                .get(entry.resource.as_str())
                .copied();
            let last_change = local.into_iter().chain(relayed_change).max();
            let fresh = freshness(entry.update_cycle, last_change, listed_at, now);
            if filter.overdue && (!fresh.overdue || withdrawn) {
                continue;
            }
            out.push(Listed {
                entry,
                version: version as u64,
                withdrawn,
                catalogued_at: listed_at,
                version_at,
                freshness: fresh,
            });
        }
        if let Some(first) = filter.terms.first() {
            let first = first.to_lowercase();
            out.sort_by_key(|l| !l.entry.name.to_lowercase().contains(&first));
        }
        Ok(out)
    }

    /// Publications of this hub's own subtree the parent has not recorded
    /// yet: (code, version, the Publish frame as signed).
    pub fn to_forward(&self) -> Result<Vec<(String, u64, Vec<u8>)>, CatalogError> {
        Ok(self.db.query(
            "SELECT code, version, signed FROM entries WHERE forwarded < version AND via IS NULL ORDER BY code",
            args![],
            |r| Ok((r.get(0)?, r.get::<i64>(1)? as u64, r.get(2)?)),
        )?)
    }

    /// The parent answered `version` of `code`.
    pub fn forwarded(&self, code: &str, version: u64) -> Result<(), CatalogError> {
        self.db.execute(
            "UPDATE entries SET forwarded = ?2 WHERE code = ?1 AND forwarded < ?2",
            args![code, version as i64],
        )?;
        Ok(())
    }

    /// The live 基础信息资源 entries' (provider, resource): the data a
    /// child hub forwards to the province.
    pub fn base_resources(&self) -> Result<Vec<(NodeId, String)>, CatalogError> {
        let rows = self.db.query(
            "SELECT provider, resource FROM entries WHERE class = ?1 AND withdrawn = 0 ORDER BY provider, resource",
            args![CatalogClass::Base.label()],
            |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
        )?;
        let mut out = Vec::new();
        for (p, r) in rows {
            if let Ok(p) = NodeId::parse(&p) {
                out.push((p, r));
            }
        }
        Ok(out)
    }

    /// For a child hub of `child` pulling from `since`: the Publish frames
    /// recorded after it that do not come from the child's own subtree, the
    /// position to continue from, and the last data change of those entries.
    #[allow(clippy::type_complexity)]
    pub fn pull(
        &self,
        since: u64,
        child: DivisionCode,
        now: i64,
    ) -> Result<(Vec<Vec<u8>>, u64, Vec<(String, i64)>), CatalogError> {
        let upto: i64 = self.db.query_row("SELECT coalesce(max(rev), 0) FROM entries", args![], |r| r.get(0))?;
        let rows = self.db.query(
            "SELECT division, signed FROM entries WHERE rev > ?1 AND rev <= ?2 ORDER BY rev",
            args![since as i64, upto],
            |r| Ok((r.get::<String>(0)?, r.get::<Vec<u8>>(1)?)),
        )?;
        let mut frames = Vec::new();
        for (division, frame) in rows {
            if DivisionCode::parse(&division).is_ok_and(|d| child.contains(d)) {
                continue;
            }
            frames.push(frame);
        }
        // the last data change of every entry from elsewhere, not only of
        // those sent now, so the child's freshness stays current
        let all = self.list(&Filter { withdrawn: true, ..Filter::default() }, now)?;
        let changed = all
            .iter()
            .filter(|l| !child.contains(l.entry.provider.division()))
            .filter_map(|l| l.freshness.last_change.map(|t| (l.entry.code.clone(), t)))
            .collect();
        Ok((frames, upto as u64, changed))
    }

    /// When the data of this hub's own subtree's entries last changed.
    pub fn own_changes(&self, now: i64) -> Result<Vec<(String, i64)>, CatalogError> {
        let own: Vec<String> = self.db.query("SELECT code FROM entries WHERE via IS NULL", args![], |r| r.get(0))?;
        let all = self.list(&Filter { withdrawn: true, ..Filter::default() }, now)?;
        Ok(all
            .iter()
            .filter(|l| own.contains(&l.entry.code))
            .filter_map(|l| l.freshness.last_change.map(|t| (l.entry.code.clone(), t)))
            .collect())
    }

    /// Records when the data of entries held elsewhere last changed; only
    /// entries of providers within `within` are touched.
    pub fn note_changes(&self, changed: &[(String, i64)], within: DivisionCode) -> Result<(), CatalogError> {
        for (code, at) in changed {
            let division: Option<String> =
                self.db.query_opt("SELECT division FROM entries WHERE code = ?1", args![code], |r| r.get(0))?;
            if division.and_then(|d| DivisionCode::parse(&d).ok()).is_some_and(|d| within.contains(d)) {
                self.db.execute(
                    "UPDATE entries SET data_changed_at = ?2 WHERE code = ?1 AND coalesce(data_changed_at, 0) < ?2",
                    args![code, at],
                )?;
            }
        }
        Ok(())
    }

    /// One entry by its 信息资源代码, withdrawn or not.
    pub fn get(&self, code: &str, now: i64) -> Result<Option<Listed>, CatalogError> {
        let one = Filter { withdrawn: true, code: Some(code.to_owned()), ..Filter::default() };
        Ok(self.list(&one, now)?.into_iter().next())
    }
}

/// The body of a stored Publish frame.
fn held_body(frame: &[u8]) -> Result<Vec<u8>, CatalogError> {
    match gdx_common::wire::decode_frame(frame) {
        Ok(Some((Message::Publish(e), _))) => Ok(e.body),
        _ => Err(CatalogError::Damaged("a stored publication does not decode".into())),
    }
}

fn escape_like(term: &str) -> String {
    term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Checks a publication whose signer's certificate the server established
/// (`signer`: the connection's own, or a relayed origin's verified chain;
/// `Err` says why there is none), records it (`via`: the child hub that
/// relayed it), and returns the answer for the sender.
pub fn accept(
    catalog: &mut Catalog,
    signer: Result<Vec<u8>, String>,
    via: Option<&NodeId>,
    env: SignedEntry,
    now: i64,
) -> Message {
    let refuse = |reason: String| {
        tracing::warn!(code = %env.code, version = env.version, origin = %env.origin, %reason, "catalogue entry refused");
        Message::CatalogRefused(CatalogRefused { code: env.code.clone(), version: env.version, reason })
    };
    let cert = match signer {
        Ok(c) => c,
        Err(e) => return refuse(format!("entry from {}: {e}", env.origin)),
    };
    if let Err(e) = pki::verify_signature(&cert, &env.body, &env.signature) {
        return refuse(format!("{e}; it was altered after signing"));
    }
    let p = match decode_publication(&env.body) {
        Ok(p) => p,
        Err(e) => return refuse(e),
    };
    if p.entry.code != env.code || p.version != env.version || p.entry.provider != env.origin {
        return refuse("the entry's contents do not match its envelope".into());
    }
    if p.version == 0 {
        return refuse("entry versions start at 1".into());
    }
    if !p.withdrawn
        && let Err(errors) = p.entry.validate(now.div_euclid(86_400))
    {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return refuse(format!("the entry breaks the catalogue rules: {}", list.join("; ")));
    }
    match catalog.record(&env, &p, via, now) {
        Ok(Recorded::Refused(reason)) => refuse(reason),
        Ok(r) => {
            let (held, recorded) = match r {
                Recorded::Stale { held } => (held, false),
                _ => (env.version, true),
            };
            if r == Recorded::New {
                tracing::info!(code = %env.code, version = env.version, withdrawn = p.withdrawn, "catalogue entry recorded");
            }
            Message::Catalogued(Catalogued { code: env.code, version: env.version, held, recorded })
        }
        Err(e) => {
            tracing::warn!(error = %e, "catalogue write failed");
            Message::Refused(gdx_common::wire::Refusal {
                code: gdx_common::wire::RefusalCode::Internal,
                message: format!("the hub could not record the catalogue entry ({e}); it will be retried"),
            })
        }
    }
}

/// Publishes `entry`, provided by this hub itself (a shared base
/// database), signed with the hub's key: a new version when it differs from
/// the one held, nothing otherwise. Returns the version recorded, if any,
/// or the catalogue's refusal.
pub fn publish_own(
    catalog: &mut Catalog,
    entry: &CatalogEntry,
    key: &rcgen::KeyPair,
    chain: &[Vec<u8>],
    now: i64,
) -> Result<Option<u64>, String> {
    let held = catalog.get(&entry.code, now).map_err(|e| e.to_string())?;
    if let Some(h) = &held
        && !h.withdrawn
        && &h.entry == entry
    {
        return Ok(None);
    }
    let version = held.map_or(1, |h| h.version + 1);
    let body =
        gdx_common::catalog::encode_publication(&Publication { version, withdrawn: false, entry: entry.clone() })?;
    let signature = pki::sign(key, &body).map_err(|e| e.to_string())?;
    let env = SignedEntry {
        origin: entry.provider.clone(),
        code: entry.code.clone(),
        version,
        body,
        signature,
        signer_chain: chain.to_vec(),
    };
    let cert = chain.first().cloned().unwrap_or_default();
    match accept(catalog, Ok(cert), None, env, now) {
        Message::Catalogued(c) if c.recorded => Ok(Some(version)),
        Message::Catalogued(c) => Err(format!("the catalogue holds version {} of {} already", c.held, entry.code)),
        Message::CatalogRefused(r) => Err(r.reason),
        other => Err(format!("the catalogue answered {}", other.kind())),
    }
}

#[cfg(test)]
mod tests;
