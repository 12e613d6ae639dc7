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
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::config::{BaseConfig, BasesConfig, Source};
use super::{Row, member_name, member_row, member_table_exists, open, quote, text_of};
use crate::store::vault::Vaults;

/// What a spatial base publishes beside its geometry field: the geodesic
/// area in square metres, the centroid (WKT point) and the bounding box
/// (`west,south,east,north`), which box queries at the consumer's hub use.
const MEASURE_COLUMNS: [(&str, &str); 3] = [("__area_m2", "REAL"), ("__centroid", "TEXT"), ("__bbox", "TEXT")];

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

fn db(e: rusqlite::Error) -> String {
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
    let sources = base.sources()?;
    let mut conn = open(hub_dir, base)?;
    let shared = cx.publisher.filter(|_| base.catalog.is_some());
    {
        let tx = conn.transaction().map_err(db)?;
        if shared.is_some() {
            start_publishing(&tx, base, now)?;
        }
        note_staleness(&tx, base, cx)?;
        tx.commit().map_err(db)?;
    }
    let stale: BTreeSet<String> = conn
        .prepare("SELECT member FROM stale")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(db)?;
    let mut done = Merged::default();
    for m in &base.members {
        let name = member_name(m);
        let from: i64 = conn
            .query_row("SELECT log_id FROM progress WHERE member = ?1", [&name], |r| r.get(0))
            .optional()
            .map_err(db)?
            .unwrap_or(0);
        let entries: Vec<(i64, i64, i64, Option<String>)> = {
            let vault = vaults.open(&m.node).map_err(|e| e.to_string())?;
            let vault = vault.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut stmt = vault
                .prepare_cached(
                    "SELECT id, seq, at, key FROM _gdx_base_log WHERE resource = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                )
                .map_err(db)?;
            stmt.query_map(params![m.resource, from, BATCH], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect())
                .map_err(db)?
        };
        let Some(last) = entries.last().map(|e| e.0) else { continue };
        // the keys to recompute, and the member's row versions they were at
        let mut touched: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let mut all = false;
        for (_, seq, at, key) in &entries {
            match key {
                Some(k) => {
                    touched.insert(k.clone(), (*seq, *at));
                }
                None => all = true,
            }
        }
        let tx = conn.transaction().map_err(db)?;
        if all {
            // a new epoch replaced the resource: everything it gave is recomputed
            tx.execute("INSERT OR IGNORE INTO todo (key) SELECT key FROM member_rows WHERE member = ?1", [&name])
                .map_err(db)?;
            tx.execute(
                "UPDATE member_rows SET seq = ?2, at = ?3 WHERE member = ?1",
                params![name, entries[0].1, entries[0].2],
            )
            .map_err(db)?;
        }
        let fallback = (entries[0].1, entries[0].2);
        let mut version = |key: &str| touched.get(key).copied().unwrap_or(fallback);
        let keys: Vec<String> = touched.keys().cloned().collect();
        let changes = recompute(&tx, vaults, base, &sources, &stale, &keys, Some((&name, &mut version)), now)?;
        tx.execute(
            "INSERT INTO progress (member, log_id) VALUES (?1, ?2) ON CONFLICT(member) DO UPDATE SET log_id = excluded.log_id",
            params![name, last],
        )
        .map_err(db)?;
        if let Some(p) = shared {
            publish(&tx, base, p, changes, &[(name.clone(), entries.last().map_or(0, |e| e.1))], now)?;
        }
        tx.commit().map_err(db)?;
        // taken: the log may shrink (a kill before this only means reading it again)
        if let Ok(vault) = vaults.open(&m.node) {
            let vault = vault.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ =
                vault.execute("DELETE FROM _gdx_base_log WHERE resource = ?1 AND id <= ?2", params![m.resource, last]);
        }
        done.entries += entries.len();
        done.keys += keys.len();
    }
    // the queued keys
    let queued: Vec<String> = conn
        .prepare("SELECT key FROM todo ORDER BY key LIMIT ?1")
        .and_then(|mut s| s.query_map([BATCH], |r| r.get(0))?.collect())
        .map_err(db)?;
    if !queued.is_empty() {
        let tx = conn.transaction().map_err(db)?;
        let changes = recompute(&tx, vaults, base, &sources, &stale, &queued, None, now)?;
        for k in &queued {
            tx.prepare_cached("DELETE FROM todo WHERE key = ?1").and_then(|mut s| s.execute([k])).map_err(db)?;
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

/// The first pass of a shared base: its resource starts (epoch: now), and
/// every record merged so far is queued to go out.
fn start_publishing(tx: &Transaction<'_>, base: &BaseConfig, now: i64) -> Result<(), String> {
    let started: Option<i64> = tx
        .query_row("SELECT epoch FROM _gdx_resources WHERE resource = ?1", [&base.name], |r| r.get(0))
        .optional()
        .map_err(db)?;
    if started.is_none() {
        tx.execute(
            "INSERT INTO _gdx_resources (resource, epoch, last_seq, updated_at) VALUES (?1, ?2, 0, ?3)",
            params![base.name, now.max(1), now],
        )
        .map_err(db)?;
        tx.execute("INSERT OR IGNORE INTO todo (key) SELECT key FROM base", []).map_err(db)?;
    }
    Ok(())
}

/// Keeps `stale` equal to the members whose department is revoked, and
/// queues the keys of a member that became stale or fresh again, so the
/// provenance it publishes says so.
fn note_staleness(tx: &Transaction<'_>, base: &BaseConfig, cx: &Context<'_>) -> Result<(), String> {
    for m in &base.members {
        let name = member_name(m);
        let now_stale = (cx.revoked)(&m.node);
        let was_stale: bool = tx
            .query_row("SELECT count(*) FROM stale WHERE member = ?1", [&name], |r| r.get::<_, i64>(0))
            .map_err(db)?
            > 0;
        if now_stale == was_stale {
            continue;
        }
        match now_stale {
            true => tx.execute("INSERT INTO stale (member) VALUES (?1)", [&name]),
            false => tx.execute("DELETE FROM stale WHERE member = ?1", [&name]),
        }
        .map_err(db)?;
        tx.execute("INSERT OR IGNORE INTO todo (key) SELECT key FROM member_rows WHERE member = ?1", [&name])
            .map_err(db)?;
    }
    Ok(())
}

/// The version of the logging member's row of a key: (changeset, time).
type Versions<'a> = (&'a str, &'a mut dyn FnMut(&str) -> (i64, i64));

/// Recomputes `keys` from the members' current rows; `logging`: the member
/// whose log named them, with the version of its row of each. Returns the
/// changes to publish.
#[allow(clippy::too_many_arguments)]
fn recompute(
    tx: &Transaction<'_>,
    vaults: &Vaults,
    base: &BaseConfig,
    sources: &[Vec<Source>],
    stale: &BTreeSet<String>,
    keys: &[String],
    mut logging: Option<Versions<'_>>,
    now: i64,
) -> Result<Vec<Change>, String> {
    let exists: Vec<bool> = base.members.iter().map(|mm| member_table_exists(vaults, mm)).collect::<Result<_, _>>()?;
    let names: Vec<String> = base.members.iter().map(member_name).collect();
    let mut changes = Vec::new();
    for key in keys {
        let rows: Vec<Option<Row>> = base
            .members
            .iter()
            .zip(&exists)
            .map(|(mm, there)| if *there { member_row(vaults, mm, key) } else { Ok(None) })
            .collect::<Result<_, _>>()?;
        for (name, row) in names.iter().zip(&rows) {
            match (row, logging.as_mut()) {
                (None, _) => {
                    tx.prepare_cached("DELETE FROM member_rows WHERE member = ?1 AND key = ?2")
                        .and_then(|mut s| s.execute(params![name, key]))
                        .map_err(db)?;
                }
                (Some(_), Some((logger, version))) if logger == name => {
                    let (seq, at) = version(key);
                    tx.prepare_cached(
                        "INSERT INTO member_rows (member, key, seq, at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(member, key) DO UPDATE SET seq = excluded.seq, at = excluded.at",
                    )
                    .and_then(|mut s| s.execute(params![name, key, seq, at]))
                    .map_err(db)?;
                }
                (Some(_), _) => {}
            }
        }
        if let Some(change) = write_key(tx, base, sources, stale, key, &rows, now)? {
            changes.push(change);
        }
    }
    Ok(changes)
}

/// Where a published field came from, as its `FIELD__source` column says.
#[derive(Serialize)]
struct SourceNote<'a> {
    from: &'a str,
    changeset: i64,
    at: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stale: bool,
}

/// Writes the merged row of `key` from the members' current `rows`: each
/// field from its authority, or the first filler holding a value; its
/// provenance; the disagreements between its sources. Returns the change
/// that publishes it: its row with each field's source, or its deletion.
fn write_key(
    tx: &Transaction<'_>,
    base: &BaseConfig,
    sources: &[Vec<Source>],
    stale: &BTreeSet<String>,
    key: &str,
    rows: &[Option<Row>],
    now: i64,
) -> Result<Option<Change>, String> {
    let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| tx.prepare_cached(sql).and_then(|mut s| s.execute(p)).map_err(db);
    run("DELETE FROM conflicts WHERE key = ?1", &[&key])?;
    let valid = base.key.is_none_or(|kind| check_value(kind, key, false, now.div_euclid(86_400)).is_ok());
    if !valid || rows.iter().all(Option::is_none) {
        let held = run("DELETE FROM base WHERE key = ?1", &[&key])?;
        run("DELETE FROM provenance WHERE key = ?1", &[&key])?;
        run("DELETE FROM invalid WHERE key = ?1", &[&key])?;
        if base.geometry.is_some() {
            set_spatial(tx, key, None)?;
        }
        return Ok((held > 0).then(|| Change::Delete(vec![Value::Text(key.to_owned())])));
    }
    // the version of each member's row of the key, as merged so far
    let versions: HashMap<String, (i64, i64)> = tx
        .prepare_cached("SELECT member, seq, at FROM member_rows WHERE key = ?1")
        .and_then(|mut s| s.query_map([key], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?.collect())
        .map_err(db)?;
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let mut published: Vec<Value> = vec![Value::Text(key.to_owned())];
    for (f, srcs) in base.fields.iter().zip(sources) {
        let found: Vec<(&Source, &rusqlite::types::Value)> = srcs
            .iter()
            .filter_map(|s| rows[s.member].as_ref().and_then(|r| r.get(&s.column)).map(|v| (s, v)))
            .filter(|(_, v)| text_of(v).is_some_and(|t| !t.trim().is_empty()))
            .collect();
        // until a member's own log is merged, its version is not known: no provenance yet
        let mut chosen = found.first().map(|(s, v)| (member_name(&base.members[s.member]), *v));
        // a spatial base's geometry: checked and measured, or not merged
        let geometry = base.geometry.as_deref() == Some(f.name.as_str());
        let mut measures = None;
        if geometry {
            run("DELETE FROM invalid WHERE key = ?1 AND field = ?2", &[&key, &f.name])?;
            if let Some((m, v)) = &chosen {
                match gdx_common::geometry::parse(&text_of(v).unwrap_or_default()) {
                    Ok(g) => measures = Some(gdx_common::geometry::measure(&g)),
                    Err(why) => {
                        run(
                            "INSERT INTO invalid (key, field, member, reason) VALUES (?1, ?2, ?3, ?4)",
                            &[&key, &f.name, m, &why],
                        )?;
                        chosen = None;
                    }
                }
            }
            set_spatial(tx, key, measures.as_ref())?;
        }
        let value = chosen.as_ref().map_or(rusqlite::types::Value::Null, |(_, v)| (*v).clone());
        published.push(to_value(&value));
        values.push(value);
        let note = match chosen.as_ref().and_then(|(m, _)| versions.get(m).map(|ver| (m, ver))) {
            Some((m, (seq, at))) => {
                run(
                    "INSERT OR REPLACE INTO provenance (key, field, member, seq, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    &[&key, &f.name, m, seq, at],
                )?;
                let note = SourceNote { from: m, changeset: *seq, at: *at, stale: stale.contains(m) };
                Value::Text(serde_json::to_string(&note).map_err(|e| e.to_string())?)
            }
            None => {
                run("DELETE FROM provenance WHERE key = ?1 AND field = ?2", &[&key, &f.name])?;
                Value::Null
            }
        };
        published.push(note);
        if geometry {
            published.extend(match measures {
                Some(m) => [
                    Value::Real(m.area_m2),
                    Value::Text(format!("POINT({} {})", m.centroid.0, m.centroid.1)),
                    Value::Text(m.bbox.to_string()),
                ],
                None => [Value::Null, Value::Null, Value::Null],
            });
        }
        // every pair of sources that disagree
        for (i, (a, av)) in found.iter().enumerate() {
            for (b, bv) in &found[i + 1..] {
                let (at, bt) = (text_of(av).unwrap_or_default(), text_of(bv).unwrap_or_default());
                if at.trim() != bt.trim() {
                    let (am, bm) = (member_name(&base.members[a.member]), member_name(&base.members[b.member]));
                    run(
                        "INSERT OR REPLACE INTO conflicts (key, field, a, a_value, b, b_value, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        &[&key, &f.name, &am, &at, &bm, &bt, &now],
                    )?;
                }
            }
        }
    }
    let cols: Vec<String> = base.fields.iter().map(|f| quote(&f.name)).collect();
    let marks: Vec<String> = (2..=cols.len() + 1).map(|i| format!("?{i}")).collect();
    let sql = format!("INSERT OR REPLACE INTO base (key, {}) VALUES (?1, {})", cols.join(", "), marks.join(", "));
    let mut all: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Text(key.to_owned())];
    all.extend(values);
    tx.prepare_cached(&sql).and_then(|mut s| s.execute(rusqlite::params_from_iter(all))).map_err(db)?;
    Ok(Some(Change::Upsert(published)))
}

/// Keeps a record's measures and its place in the box index.
fn set_spatial(tx: &Transaction<'_>, key: &str, m: Option<&gdx_common::geometry::Measures>) -> Result<(), String> {
    let id: Option<i64> = tx
        .prepare_cached("SELECT id FROM spatial WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(db)?;
    if let Some(id) = id {
        tx.prepare_cached("DELETE FROM spatial_index WHERE id = ?1").and_then(|mut s| s.execute([id])).map_err(db)?;
        tx.prepare_cached("DELETE FROM spatial WHERE id = ?1").and_then(|mut s| s.execute([id])).map_err(db)?;
    }
    if let Some(m) = m {
        let b = m.bbox;
        tx.prepare_cached(
            "INSERT INTO spatial (key, west, south, east, north, area_m2, cx, cy) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| s.execute(params![key, b.west, b.south, b.east, b.north, m.area_m2, m.centroid.0, m.centroid.1]))
        .map_err(db)?;
        let id = tx.last_insert_rowid();
        tx.prepare_cached("INSERT INTO spatial_index (id, west, east, south, north) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut s| s.execute(params![id, b.west, b.east, b.south, b.north]))
            .map_err(db)?;
    }
    Ok(())
}

fn to_value(v: &rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as V;
    match v {
        V::Null => Value::Null,
        V::Integer(i) => Value::Integer(*i),
        V::Real(f) => Value::Real(*f),
        V::Text(t) => Value::Text(t.clone()),
        V::Blob(b) => Value::Blob(b.clone()),
    }
}

/// The columns a shared base publishes: its key, then each field and its source.
pub fn published_columns(base: &BaseConfig) -> Vec<Column> {
    let column = |name: String, decl: &str| Column { name, decl_type: decl.to_owned() };
    std::iter::once(column(base.key_column().to_owned(), "TEXT"))
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
    tx: &Transaction<'_>,
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
        .query_row("SELECT epoch, last_seq FROM _gdx_resources WHERE resource = ?1", [&base.name], |r| {
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
        params![base.name, last + 1, frame],
    )
    .map_err(db)?;
    tx.execute(
        "UPDATE _gdx_resources SET last_seq = ?2, updated_at = ?3 WHERE resource = ?1",
        params![base.name, last + 1, now],
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

/// Merges every base until their logs and queues are read, in passes; for `gdx-hub run`.
pub fn merge_all(
    hub_dir: &Path,
    vaults: &Vaults,
    config: &BasesConfig,
    cx: &Context<'_>,
    now: i64,
) -> Result<usize, String> {
    let mut total = 0;
    for b in &config.bases {
        loop {
            let m = merge_once(hub_dir, vaults, b, cx, now)?;
            total += m.entries;
            if m.entries == 0 {
                break;
            }
        }
    }
    Ok(total)
}
