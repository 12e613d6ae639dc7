//! The merge: each member's logged keys recomputed into the base, and what
//! changed published as the base's own changeset, in one transaction.
//!
//! A pass takes, per member, one batch of `_gdx_base_log` and recomputes
//! those keys; then one batch of `todo`, the keys queued for recomputing as
//! a whole (everything a member gave when it starts a new epoch or its
//! department is revoked or restored, everything merged when a base is
//! first shared). When the base is shared, the rows it recomputed go out
//! as the next changeset of the base's resource (`_gdx_resources`,
//! `_gdx_changesets`, the layout of a vault, which the exchange reads to
//! deliver it), signed by this hub, with a `merged` event in the audit
//! outbox, all in the pass's transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use gdx_common::NodeId;
use gdx_common::catalog::kinds::check_value;
use gdx_common::data::{Change, Changeset, Column, ResourceCode, Value, encode_changeset};
use gdx_common::grant::PROVENANCE_SUFFIX;
use gdx_common::wire::{Message, SignedChangeset, encode_frame};
use gdx_files::quote_ident;
use serde::Serialize;

use super::config::{BaseConfig, BasesConfig, Source};
use super::{Fetched, fetch_rows, member_name, open, text_of};
use crate::args;
use crate::store::db::{Db, DbError, Sql, Tx, Value as Stored, in_list};
use crate::store::vault::Vaults;

mod keys;
use keys::recompute;

/// What a spatial base publishes beside its geometry field: the geodesic
/// area in square metres, the centroid (WKT point) and the bounding box
/// (`west,south,east,north`), which box queries at the consumer's hub use.
const MEASURE_COLUMNS: [(&str, &str); 3] = [("__area_m2", "REAL"), ("__centroid", "TEXT"), ("__bbox", "TEXT")];

/// The companion of an identity-number key naming its document
/// (居民身份证, 港澳台居民居住证（香港居民）, 外国人永久居留身份证, …).
pub const KIND_SUFFIX: &str = "__kind";

/// Log entries (or queued keys) taken per member per pass.
const BATCH: i64 = 5_000;

/// What one merge pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Merged {
    pub entries: usize,
    pub keys: usize,
}

/// Signs what the shared bases publish: this hub's node, key and chain.
pub struct Publisher {
    pub hub: NodeId,
    pub key: rcgen::KeyPair,
    pub chain: Vec<Vec<u8>>,
}

/// What a merge needs beyond the stores: the publisher (None: nothing is
/// shared) and which nodes' departments are revoked now.
pub struct Context<'a> {
    pub publisher: Option<&'a Publisher>,
    pub revoked: &'a dyn Fn(&NodeId) -> bool,
}

fn db(e: DbError) -> String {
    e.to_string()
}

/// Takes one batch of every member's log, and of the queued keys, into the
/// base; returns what it did.
pub fn merge_once(
    hub_dir: &Path,
    vaults: &Vaults,
    base: &BaseConfig,
    cx: &Context<'_>,
    now: i64,
) -> Result<Merged, String> {
    merge_pass(&open(hub_dir, base)?, vaults, base, cx, now)
}

/// [`merge_once`] on the base's open store (whose page cache stays warm from pass to pass).
fn merge_pass(conn: &Db, vaults: &Vaults, base: &BaseConfig, cx: &Context<'_>, now: i64) -> Result<Merged, String> {
    let sources = base.sources()?;
    let shared = cx.publisher.filter(|_| base.catalog.is_some());
    {
        let tx = conn.begin().map_err(db)?;
        if shared.is_some() {
            start_publishing(&tx, base, now)?;
        }
        note_staleness(&tx, base, cx)?;
        tx.commit().map_err(db)?;
    }
    let stale: BTreeSet<String> =
        conn.query("SELECT member FROM stale", args![], |r| r.get(0)).map_err(db)?.into_iter().collect();
    // columns of fields no longer declared are emptied as each record is recomputed
    let declared = super::field_columns(base);
    let undeclared: Vec<String> =
        super::columns_of_base(conn).map_err(db)?.into_iter().filter(|c| c != "key" && !declared.contains(c)).collect();
    let pass = Pass::new(base, &sources, &stale, &undeclared, shared.is_some());
    let mut done = Merged::default();
    // one batch of every member's log, recomputed together: a key several members changed is recomputed once
    let mut logged: Vec<Logged> = Vec::new();
    for (i, m) in base.members.iter().enumerate() {
        let name = member_name(m);
        let from: i64 = conn
            .query_opt("SELECT log_id FROM progress WHERE member = ?1", args![name], |r| r.get(0))
            .map_err(db)?
            .unwrap_or(0);
        let entries =
            vaults.base_log(&m.node, &m.resource, from, BATCH).map_err(|e| format!("{}: {e}", member_name(m)))?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else { continue };
        let mut l = Logged {
            member: i,
            last: last.0,
            last_seq: last.1,
            entries: entries.len(),
            all: false,
            fallback: (first.1, first.2),
            versions: BTreeMap::new(),
        };
        for (_, seq, at, key) in &entries {
            match key {
                Some(k) => {
                    l.versions.insert(k.clone(), (*seq, *at));
                }
                None => {
                    // a new epoch: its rows are as of its first changeset, whatever was logged before it
                    l.all = true;
                    l.fallback = (*seq, *at);
                    for v in l.versions.values_mut() {
                        *v = (*seq, *at);
                    }
                }
            }
        }
        logged.push(l);
    }
    if !logged.is_empty() {
        let keys: Vec<String> =
            logged.iter().flat_map(|l| l.versions.keys().cloned()).collect::<BTreeSet<String>>().into_iter().collect();
        let tx = conn.begin().map_err(db)?;
        for l in logged.iter().filter(|l| l.all) {
            // a new epoch replaced the resource: everything it gave is recomputed
            let name = member_name(&base.members[l.member]);
            tx.execute(
                "INSERT INTO todo (key) SELECT key FROM member_rows WHERE member = ?1 ON CONFLICT DO NOTHING",
                args![name],
            )
            .map_err(db)?;
            tx.execute(
                "UPDATE member_rows SET seq = ?2, at = ?3 WHERE member = ?1",
                args![name, l.fallback.0, l.fallback.1],
            )
            .map_err(db)?;
        }
        let changes = recompute(&tx, vaults, &pass, &keys, &logged, now)?;
        for l in &logged {
            tx.execute(
                "INSERT INTO progress (member, log_id) VALUES (?1, ?2) ON CONFLICT(member) DO UPDATE SET
                 -- never backwards, should two merges ever overlap
                 log_id = CASE WHEN excluded.log_id > progress.log_id THEN excluded.log_id ELSE progress.log_id END",
                args![member_name(&base.members[l.member]), l.last],
            )
            .map_err(db)?;
        }
        if let Some(p) = shared {
            let from: Vec<(String, i64)> =
                logged.iter().map(|l| (member_name(&base.members[l.member]), l.last_seq)).collect();
            publish(&tx, base, p, changes, &from, now)?;
        }
        tx.commit().map_err(db)?;
        // taken: the logs may shrink (a kill before this only means reading them again)
        for l in &logged {
            let m = &base.members[l.member];
            if let Err(e) = vaults.trim_base_log(&m.node, &m.resource, l.last) {
                tracing::warn!(member = %member_name(m), error = %e, "the merged log cannot be trimmed now; it is read again");
            }
            done.entries += l.entries;
        }
        done.keys += keys.len();
    }
    // the queued keys
    let queued: Vec<String> =
        conn.query("SELECT key FROM todo ORDER BY key LIMIT ?1", args![BATCH], |r| r.get(0)).map_err(db)?;
    if !queued.is_empty() {
        let tx = conn.begin().map_err(db)?;
        let changes = recompute(&tx, vaults, &pass, &queued, &[], now)?;
        for k in &queued {
            tx.execute("DELETE FROM todo WHERE key = ?1", args![k]).map_err(db)?;
        }
        if let Some(p) = shared {
            publish(&tx, base, p, changes, &[], now)?;
        }
        tx.commit().map_err(db)?;
        done.entries += queued.len();
        done.keys += queued.len();
    }
    Ok(done)
}

/// One member's batch of its log: how far it reaches, and the version
/// (changeset, time) of each key's row it names.
struct Logged {
    member: usize,
    last: i64,
    last_seq: i64,
    entries: usize,
    /// A new epoch: everything the member gave is recomputed.
    all: bool,
    /// The version of rows a new epoch gave without naming them.
    fallback: (i64, i64),
    versions: BTreeMap<String, (i64, i64)>,
}

/// The first pass of a shared base: its resource starts (epoch: now), and
/// every record merged so far is queued to go out.
fn start_publishing(tx: &Tx<'_>, base: &BaseConfig, now: i64) -> Result<(), String> {
    let started: Option<i64> = tx
        .query_opt("SELECT epoch FROM _gdx_resources WHERE resource = ?1", args![base.name], |r| r.get(0))
        .map_err(db)?;
    if started.is_none() {
        tx.execute(
            "INSERT INTO _gdx_resources (resource, epoch, last_seq, updated_at) VALUES (?1, ?2, 0, ?3)",
            args![base.name, now.max(1), now],
        )
        .map_err(db)?;
        tx.execute("INSERT INTO todo (key) SELECT key FROM base WHERE true ON CONFLICT DO NOTHING", args![])
            .map_err(db)?;
    }
    Ok(())
}

/// Keeps `stale` equal to the members whose department is revoked, and
/// queues the keys of a member that became stale or fresh again, so the
/// provenance it publishes says so.
fn note_staleness(tx: &Tx<'_>, base: &BaseConfig, cx: &Context<'_>) -> Result<(), String> {
    for m in &base.members {
        let name = member_name(m);
        let now_stale = (cx.revoked)(&m.node);
        let was_stale: bool = tx
            .query_row("SELECT count(*) FROM stale WHERE member = ?1", args![name], |r| r.get::<i64>(0))
            .map_err(db)?
            > 0;
        if now_stale == was_stale {
            continue;
        }
        match now_stale {
            true => tx.execute("INSERT INTO stale (member) VALUES (?1)", args![name]),
            false => tx.execute("DELETE FROM stale WHERE member = ?1", args![name]),
        }
        .map_err(db)?;
        tx.execute(
            "INSERT INTO todo (key) SELECT key FROM member_rows WHERE member = ?1 ON CONFLICT DO NOTHING",
            args![name],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// What stays the same through a merge pass.
struct Pass<'a> {
    base: &'a BaseConfig,
    sources: &'a [Vec<Source>],
    /// Each member's `NODE/RESOURCE`, and whether its department is revoked.
    names: Vec<String>,
    stale: Vec<bool>,
    /// The statement that writes a merged row.
    insert: String,
    /// The base is shared: build the changes to publish.
    publishing: bool,
}

impl<'a> Pass<'a> {
    fn new(
        base: &'a BaseConfig,
        sources: &'a [Vec<Source>],
        stale: &BTreeSet<String>,
        undeclared: &[String],
        publishing: bool,
    ) -> Self {
        let names: Vec<String> = base.members.iter().map(member_name).collect();
        let cols: Vec<String> = base
            .fields
            .iter()
            .flat_map(|f| [quote_ident(&f.name), quote_ident(&super::from_column(&f.name))])
            .collect();
        let marks: Vec<String> = (3..=cols.len() + 2).map(|i| format!("?{i}")).collect();
        let set: Vec<String> = std::iter::once("key__kind".to_owned())
            .chain(cols.iter().cloned())
            .map(|c| format!("{c} = excluded.{c}"))
            .chain(undeclared.iter().map(|c| format!("{} = NULL", quote_ident(c))))
            .collect();
        Self {
            base,
            sources,
            stale: names.iter().map(|n| stale.contains(n)).collect(),
            names,
            insert: format!(
                "INSERT INTO base (key, key__kind, {}) VALUES (?1, ?2, {}) ON CONFLICT (key) DO UPDATE SET {}",
                cols.join(", "),
                marks.join(", "),
                set.join(", ")
            ),
            publishing,
        }
    }
}

/// The columns a shared base publishes: its key, then each field and its source.
pub fn published_columns(base: &BaseConfig) -> Vec<Column> {
    let column = |name: String, decl: &str| Column { name, decl_type: decl.to_owned() };
    let kind = (base.key == Some(gdx_common::catalog::ValueKind::IdNumber))
        .then(|| column(format!("{}{KIND_SUFFIX}", base.key_column()), "TEXT"));
    std::iter::once(column(base.key_column().to_owned(), "TEXT"))
        .chain(kind)
        .chain(base.fields.iter().flat_map(|f| {
            let mut cols = vec![column(f.name.clone(), ""), column(format!("{}{PROVENANCE_SUFFIX}", f.name), "TEXT")];
            if base.geometry.as_deref() == Some(f.name.as_str()) {
                for (suffix, decl) in MEASURE_COLUMNS {
                    cols.push(column(format!("{}{suffix}", f.name), decl));
                }
            }
            cols
        }))
        .collect()
}

/// Appends `changes` as the base's next changeset, signed by this hub, with
/// its audit event; `from`: the member changesets it takes in.
fn publish(
    tx: &Tx<'_>,
    base: &BaseConfig,
    p: &Publisher,
    changes: Vec<Change>,
    from: &[(String, i64)],
    now: i64,
) -> Result<(), String> {
    if changes.is_empty() {
        return Ok(());
    }
    let (epoch, last): (i64, i64) = tx
        .query_row("SELECT epoch, last_seq FROM _gdx_resources WHERE resource = ?1", args![base.name], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(db)?;
    let resource = ResourceCode::parse(&base.name).map_err(|e| e.to_string())?;
    let cs = Changeset {
        origin: p.hub.clone(),
        resource: resource.clone(),
        seq: (last + 1) as u64,
        epoch: epoch as u64,
        columns: published_columns(base),
        key: vec![0],
        changes,
        created_at: now,
    };
    let rows = cs.changes.len();
    let body = encode_changeset(&cs).map_err(|e| e.to_string())?;
    let signature = gdx_certs::pki::sign(&p.key, &body).map_err(|e| e.to_string())?;
    let frame = encode_frame(&Message::Upload(SignedChangeset {
        origin: p.hub.clone(),
        resource,
        seq: cs.seq,
        rows: rows as u32,
        body,
        signature,
        signer_chain: p.chain.clone(),
    }))
    .map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT INTO _gdx_changesets (resource, seq, frame) VALUES (?1, ?2, ?3)",
        args![base.name, last + 1, frame],
    )
    .map_err(db)?;
    tx.execute(
        "UPDATE _gdx_resources SET last_seq = ?2, updated_at = ?3 WHERE resource = ?1",
        args![base.name, last + 1, now],
    )
    .map_err(db)?;
    let from: Vec<serde_json::Value> =
        from.iter().map(|(m, seq)| serde_json::json!({ "member": m, "changeset": seq })).collect();
    crate::store::outbox::note(
        tx,
        &gdx_common::audit::Event {
            kind: "merged".into(),
            at: now,
            node: Some(p.hub.to_string()),
            resource: Some(base.name.clone()),
            detail: serde_json::json!({ "base": base.title, "seq": last + 1, "rows": rows, "from": from }),
            ..Default::default()
        },
    )
    .map_err(db)?;
    Ok(())
}

/// Merges every base until their logs and queues are read, in passes,
/// while `go_on` says so (the lease still held); for `gdx-hub run`.
pub fn merge_all(
    hub_dir: &Path,
    vaults: &Vaults,
    config: &BasesConfig,
    cx: &Context<'_>,
    now: i64,
    go_on: &dyn Fn() -> bool,
) -> Result<usize, String> {
    let mut total = 0;
    for b in &config.bases {
        let conn = open(hub_dir, b)?;
        while go_on() {
            let m = merge_pass(&conn, vaults, b, cx, now)?;
            total += m.entries;
            if m.entries == 0 {
                break;
            }
        }
    }
    Ok(total)
}
