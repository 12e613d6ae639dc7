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

use gdx_certs::pki;
use gdx_common::catalog::{
    CatalogClass, CatalogEntry, Freshness, Publication, SharingType, UpdateCycle, decode_publication, freshness,
    search_terms,
};
use gdx_common::units::{format_date, format_time};
use gdx_common::wire::{CatalogRefused, Catalogued, Message, SignedEntry, encode_frame};
use gdx_common::{DivisionCode, NodeId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::nodes::render;
use crate::vault::last_changes;

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
    conn: Connection,
    vault_dir: std::path::PathBuf,
}

impl Catalog {
    /// Opens (creating if needed) `catalog.db` in the hub directory.
    pub fn open(hub_dir: &Path) -> Result<Self, CatalogError> {
        let conn = gdx_certs::files::open_sqlite(&hub_dir.join("catalog.db"), SCHEMA)?;
        conn.execute_batch(crate::audit::OUTBOX_SQL)?;
        Ok(Self { conn, vault_dir: hub_dir.join("vaults") })
    }

    /// Records a verified publication; `via` names the hub that relayed it.
    pub fn record(
        &mut self,
        env: &SignedEntry,
        p: &Publication,
        via: Option<&NodeId>,
        now: i64,
    ) -> Result<Recorded, CatalogError> {
        let e = &p.entry;
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let held: Option<(String, i64, Vec<u8>)> = tx
            .query_row("SELECT provider, version, signed FROM entries WHERE code = ?1", [&e.code], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let frame = encode_frame(&Message::Publish(env.clone())).map_err(|x| CatalogError::Damaged(x.to_string()))?;
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
            let other: Option<String> = tx
                .query_row(
                    "SELECT code FROM entries WHERE provider = ?1 AND resource = ?2 AND withdrawn = 0 AND code <> ?3",
                    params![e.provider.to_string(), e.resource.as_str(), e.code],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(other) = other {
                return Ok(Recorded::Refused(format!(
                    "resource {} of {} is already catalogued as {other}; withdraw that entry first",
                    e.resource, e.provider
                )));
            }
        }
        let entry_json = serde_json::to_string(e).map_err(|x| CatalogError::Damaged(x.to_string()))?;
        let rev: i64 = tx.query_row("SELECT coalesce(max(rev), 0) + 1 FROM entries", [], |r| r.get(0))?;
        tx.execute(
            "INSERT INTO entries (code, provider, division, resource, version, withdrawn, entry, signed, listed_at,
                                  updated_at, via, class, sharing_type, update_cycle, search_text, rev)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT(code) DO UPDATE SET resource = excluded.resource, version = excluded.version,
                withdrawn = excluded.withdrawn, entry = excluded.entry, signed = excluded.signed,
                updated_at = excluded.updated_at, via = excluded.via, class = excluded.class,
                sharing_type = excluded.sharing_type, update_cycle = excluded.update_cycle,
                search_text = excluded.search_text, rev = excluded.rev",
            params![
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
        crate::audit::note(
            &tx,
            &crate::audit::Event {
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
        tx.commit()?;
        Ok(Recorded::New)
    }

    /// The entries that pass `filter`, as of `now`, ordered by code (for a
    /// search, entries whose name matches come first).
    pub fn list(&self, filter: &Filter, now: i64) -> Result<Vec<Listed>, CatalogError> {
        let mut sql = String::from(
            "SELECT entry, version, withdrawn, listed_at, updated_at, data_changed_at FROM entries WHERE 1 = 1",
        );
        let mut args: Vec<String> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, value: String| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if !filter.withdrawn {
            sql.push_str(" AND withdrawn = 0");
        }
        for t in &filter.terms {
            bind(&mut sql, " AND search_text LIKE ? ESCAPE '\\'", format!("%{}%", escape_like(t)));
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
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })?;
        let mut changed: HashMap<NodeId, HashMap<String, i64>> = HashMap::new();
        let mut out = Vec::new();
        for row in rows {
            let (json, version, withdrawn, listed_at, version_at, relayed_change) = row?;
            let entry: CatalogEntry = serde_json::from_str(&json).map_err(|e| CatalogError::Damaged(e.to_string()))?;
            if filter.division.is_some_and(|d| !d.contains(entry.provider.division())) {
                continue;
            }
            let local = changed
                .entry(entry.provider.clone())
                .or_insert_with(|| last_changes(&self.vault_dir, &entry.provider))
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
        let mut stmt = self.conn.prepare(
            "SELECT code, version, signed FROM entries WHERE forwarded < version AND via IS NULL ORDER BY code",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The parent answered `version` of `code`.
    pub fn forwarded(&self, code: &str, version: u64) -> Result<(), CatalogError> {
        self.conn.execute(
            "UPDATE entries SET forwarded = max(forwarded, ?2) WHERE code = ?1",
            params![code, version as i64],
        )?;
        Ok(())
    }

    /// The live 基础信息资源 entries' (provider, resource): the data a
    /// child hub forwards to the province.
    pub fn base_resources(&self) -> Result<Vec<(NodeId, String)>, CatalogError> {
        let mut stmt = self.conn.prepare(
            "SELECT provider, resource FROM entries WHERE class = ?1 AND withdrawn = 0 ORDER BY provider, resource",
        )?;
        let rows =
            stmt.query_map([CatalogClass::Base.label()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (p, r) = row?;
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
        let upto: i64 = self.conn.query_row("SELECT coalesce(max(rev), 0) FROM entries", [], |r| r.get(0))?;
        let mut stmt = self.conn.prepare("SELECT code, division, signed FROM entries WHERE rev > ?1 ORDER BY rev")?;
        let rows =
            stmt.query_map([since as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))?;
        let mut frames = Vec::new();
        for row in rows {
            let (_code, division, frame) = row?;
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
        let own: Vec<String> = {
            let mut stmt = self.conn.prepare("SELECT code FROM entries WHERE via IS NULL")?;
            stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
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
                self.conn.query_row("SELECT division FROM entries WHERE code = ?1", [code], |r| r.get(0)).optional()?;
            if division.and_then(|d| DivisionCode::parse(&d).ok()).is_some_and(|d| within.contains(d)) {
                self.conn.execute(
                    "UPDATE entries SET data_changed_at = max(coalesce(data_changed_at, 0), ?2) WHERE code = ?1",
                    params![code, at],
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

/// The listing as a table.
pub fn table(entries: &[Listed]) -> String {
    if entries.is_empty() {
        return "no catalogue entries match\n".into();
    }
    let mut rows = vec![
        ["CODE", "NAME", "CLASS", "PROVIDER", "SHARING", "CYCLE", "VER", "DATA CHANGED", "FRESHNESS"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for l in entries {
        let e = &l.entry;
        rows.push(vec![
            e.code.clone(),
            e.name.clone(),
            e.class.label().trim_end_matches("信息资源").to_owned(),
            format!("{} {}", e.provider, e.provider_name),
            e.sharing_type.label().to_owned(),
            e.update_cycle.label().to_owned(),
            l.version.to_string(),
            l.freshness.last_change.map(format_time).unwrap_or_else(|| "never".into()),
            freshness_word(l),
        ]);
    }
    let mut out = render(&rows);
    out.push_str(&format!("{} entr{}\n", entries.len(), if entries.len() == 1 { "y" } else { "ies" }));
    out
}

fn freshness_word(l: &Listed) -> String {
    if l.withdrawn {
        "withdrawn".into()
    } else if l.freshness.overdue {
        "OVERDUE".into()
    } else {
        "ok".into()
    }
}

/// One entry in full, with the standard's field names.
pub fn show(l: &Listed) -> String {
    let e = &l.entry;
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let mut lines = vec![
        format!("信息资源代码    {}", e.code),
        format!("信息资源名称    {}", e.name),
        format!("信息资源分类    {} / {}", e.class, e.classification.join(" / ")),
        format!("信息资源提供方  {} {} (resource {})", e.provider_name, e.provider, e.resource),
        format!("提供方代码      {}", e.provider_code),
        format!("信息资源摘要    {}", e.summary),
        format!("信息资源格式    {} ({})", e.format, e.format_type),
        format!("共享类型        {}", e.sharing_type),
        format!("共享条件        {}", opt(&e.sharing_condition)),
        format!("共享方式        {}", e.sharing_method),
        format!("法律依据        {}", opt(&e.legal_basis)),
        format!("是否向社会开放  {}", if e.open_to_public { "是" } else { "否" }),
        format!("开放条件        {}", opt(&e.open_condition)),
        format!("更新周期        {}", e.update_cycle),
        format!("发布日期        {}", e.published),
        format!("关联资源代码    {}", if e.related.is_empty() { "-".into() } else { e.related.join(", ") }),
        format!(
            "version         {}{}, recorded {}",
            l.version,
            if l.withdrawn { " (withdrawn)" } else { "" },
            format_time(l.version_at)
        ),
        format!(
            "data changed    {}",
            l.freshness.last_change.map(format_time).unwrap_or_else(|| "never (no data received yet)".into())
        ),
        format!(
            "freshness       {}{}",
            freshness_word(l),
            match l.freshness.due_by {
                Some(t) if l.freshness.overdue => format!(" since {}", format_date(t)),
                Some(t) => format!(", due an update by {}", format_date(t)),
                None => " (不定时: never overdue)".into(),
            }
        ),
        String::new(),
        "信息项:".into(),
    ];
    let mut items = vec![["#", "名称", "COLUMN", "数据类型", "数据长度"].map(str::to_owned).to_vec()];
    for (i, item) in e.items.iter().enumerate() {
        items.push(vec![
            (i + 1).to_string(),
            item.name.clone(),
            item.column().to_owned(),
            item.data_type.label().to_owned(),
            item.length.to_string(),
        ]);
    }
    lines.push(render(&items));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use gdx_certs::Ca;
    use gdx_common::Role;

    use super::*;

    const NOW: i64 = 1_795_800_000; // 2026-11-27

    struct Provider {
        node: NodeId,
        key: rcgen::KeyPair,
        cert: Vec<u8>,
    }

    fn provider(ca: &Ca, node: &str) -> Provider {
        let node = NodeId::parse(node).unwrap();
        let key = pki::new_key().unwrap();
        let cert = ca.issue_for_key(&key, &node, Role::Agent, NOW - 60, NOW + 86_400).unwrap().to_vec();
        Provider { node, key, cert }
    }

    fn entry(code: &str, provider: &NodeId, resource: &str) -> CatalogEntry {
        serde_json::from_value(serde_json::json!({
            "code": code, "resource": resource, "class": "部门信息资源", "classification": ["社会保障"],
            "name": "城乡低保对象信息", "provider": provider.to_string(), "provider_name": "青海省民政厅",
            "provider_code": "11630000015600017P", "abstract": "低保对象", "format": "数据库",
            "format_type": "sqlite", "items": [{ "name": "证件号码", "data_type": "C", "length": 18 }],
            "sharing_type": "无条件共享", "sharing_method": "接口", "open_to_public": false,
            "update_cycle": "每月", "published": "2026-11-01"
        }))
        .unwrap()
    }

    fn signed(p: &Provider, version: u64, withdrawn: bool, entry: CatalogEntry) -> SignedEntry {
        let body = gdx_common::catalog::encode_publication(&Publication { version, withdrawn, entry: entry.clone() });
        SignedEntry {
            origin: p.node.clone(),
            code: entry.code,
            version,
            signature: pki::sign(&p.key, &body).unwrap(),
            body,
            signer_chain: vec![p.cert.clone()],
        }
    }

    fn send(c: &mut Catalog, p: &Provider, env: SignedEntry) -> Result<(u64, bool), String> {
        match accept(c, Ok(p.cert.clone()), None, env, NOW) {
            Message::Catalogued(a) => Ok((a.held, a.recorded)),
            Message::CatalogRefused(r) => Err(r.reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn versions_move_forward_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(dir.path()).unwrap();
        let ca = Ca::create_root(DivisionCode::parse("630000").unwrap(), "测试", NOW - 3600).unwrap();
        let p = provider(&ca, "630000/minzheng");
        let e = entry("301001/000001", &p.node, "dibao");
        assert_eq!(send(&mut c, &p, signed(&p, 1, false, e.clone())), Ok((1, true)));
        assert_eq!(send(&mut c, &p, signed(&p, 1, false, e.clone())), Ok((1, true)), "a resend is a duplicate");
        let mut e2 = e.clone();
        e2.summary = "城乡低保对象的证件号码".into();
        assert_eq!(send(&mut c, &p, signed(&p, 2, false, e2.clone())), Ok((2, true)));
        assert_eq!(send(&mut c, &p, signed(&p, 1, false, e.clone())), Ok((2, false)), "older: not recorded");
        let mut e3 = e2.clone();
        e3.name = "另一个名称".into();
        assert_eq!(send(&mut c, &p, signed(&p, 2, false, e3)), Ok((2, false)), "same number, other contents");
        let got = c.get("301001/000001", NOW).unwrap().unwrap();
        assert_eq!((got.version, got.entry.summary.as_str()), (2, "城乡低保对象的证件号码"));
        assert!(send(&mut c, &p, signed(&p, 0, false, e)).unwrap_err().contains("start at 1"));
    }

    #[test]
    fn forged_foreign_and_invalid_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(dir.path()).unwrap();
        let ca = Ca::create_root(DivisionCode::parse("630000").unwrap(), "测试", NOW - 3600).unwrap();
        let p = provider(&ca, "630000/minzheng");
        let q = provider(&ca, "632522/minzheng");
        let e = entry("301001/000001", &p.node, "dibao");

        let mut tampered = signed(&p, 1, false, e.clone());
        let at = tampered.body.len() / 2;
        tampered.body[at] ^= 1;
        assert!(send(&mut c, &p, tampered).unwrap_err().contains("altered after signing"));
        // signed by another key than the one established, or naming another provider
        let env = signed(&p, 1, false, e.clone());
        assert!(matches!(accept(&mut c, Ok(q.cert.clone()), None, env, NOW), Message::CatalogRefused(_)));
        let env = signed(&p, 1, false, e.clone());
        assert!(matches!(accept(&mut c, Err("no".into()), None, env, NOW), Message::CatalogRefused(_)));
        let stolen = signed(&q, 1, false, e.clone());
        assert!(send(&mut c, &q, stolen).unwrap_err().contains("do not match its envelope"));
        let mut invalid = entry("301001/000001", &p.node, "dibao");
        invalid.sharing_type = SharingType::Conditional;
        invalid.items.clear();
        let why = send(&mut c, &p, signed(&p, 1, false, invalid)).unwrap_err();
        assert!(why.contains("items:") && why.contains("sharing_condition:"), "{why}");
        assert!(c.list(&Filter::default(), NOW).unwrap().is_empty(), "nothing recorded");

        // a code belongs to its first provider
        assert_eq!(send(&mut c, &p, signed(&p, 1, false, e)), Ok((1, true)));
        let theirs = entry("301001/000001", &q.node, "dibao");
        assert!(
            send(&mut c, &q, signed(&q, 1, false, theirs))
                .unwrap_err()
                .contains("already catalogued by 630000/minzheng")
        );
    }

    #[test]
    fn one_live_entry_per_resource() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Catalog::open(dir.path()).unwrap();
        let ca = Ca::create_root(DivisionCode::parse("630000").unwrap(), "测试", NOW - 3600).unwrap();
        let p = provider(&ca, "630000/minzheng");
        let first = entry("301001/000001", &p.node, "dibao");
        let second = entry("301001/000002", &p.node, "dibao");
        assert_eq!(send(&mut c, &p, signed(&p, 1, false, first.clone())), Ok((1, true)));
        assert!(
            send(&mut c, &p, signed(&p, 1, false, second.clone())).unwrap_err().contains("withdraw that entry first")
        );
        assert_eq!(send(&mut c, &p, signed(&p, 2, true, first)), Ok((2, true)));
        assert_eq!(send(&mut c, &p, signed(&p, 1, false, second)), Ok((1, true)));
        let live = c.list(&Filter::default(), NOW).unwrap();
        assert_eq!(live.iter().map(|l| l.entry.code.as_str()).collect::<Vec<_>>(), ["301001/000002"]);
        let all = c.list(&Filter { withdrawn: true, ..Filter::default() }, NOW).unwrap();
        assert_eq!(all.len(), 2);
    }
}
