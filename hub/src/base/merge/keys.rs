//! One key of a base recomputed from its members' current rows: each field
//! taken from the first member by priority that fills it, checked against
//! its kind, with the member it came from (withheld from departments not
//! allowed to know it), and its spatial measures.

use super::*;

/// Recomputes `keys` from the members' current rows; `logged`: the
/// members' batches that named them, with the version of each row. Returns
/// the changes to publish.
pub(super) fn recompute(
    tx: &Tx<'_>,
    vaults: &Vaults,
    pass: &Pass<'_>,
    keys: &[String],
    logged: &[Logged],
    now: i64,
) -> Result<Vec<Change>, String> {
    let members = pass.base.members.len();
    // each member's rows of these keys, and the versions merged so far, read once for the batch
    let fetched: Vec<Fetched> =
        pass.base.members.iter().map(|m| fetch_rows(vaults, m, keys)).collect::<Result<_, _>>()?;
    let mut versions: HashMap<String, Vec<Option<(i64, i64)>>> = HashMap::with_capacity(keys.len());
    {
        let list = serde_json::to_string(keys).map_err(|e| e.to_string())?;
        let rows: Vec<(String, String, i64, i64)> = tx
            .query(
                &format!("SELECT member, key, seq, at FROM member_rows WHERE {}", in_list(tx, "key", 1)),
                args![list],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(db)?;
        for (member, key, seq, at) in rows {
            let Some(i) = pass.names.iter().position(|n| *n == member) else { continue };
            let slot = versions.entry(key).or_insert_with(|| vec![None; members]);
            slot[i] = Some((seq, at));
        }
    }
    // the keys with disagreements listed now (few): only those need clearing
    let conflicted: BTreeSet<String> = {
        let list = serde_json::to_string(keys).map_err(|e| e.to_string())?;
        tx.query(&format!("SELECT DISTINCT key FROM conflicts WHERE {}", in_list(tx, "key", 1)), args![list], |r| {
            r.get(0)
        })
        .map_err(db)?
        .into_iter()
        .collect()
    };
    let logged_by: Vec<Option<&Logged>> = (0..members).map(|i| logged.iter().find(|l| l.member == i)).collect();
    let mut changes = Vec::new();
    for key in keys {
        let rows: Vec<Option<&Vec<Stored>>> = fetched.iter().map(|f| f.rows.get(key)).collect();
        let held = versions.entry(key.clone()).or_insert_with(|| vec![None; members]);
        for i in 0..members {
            match (rows[i], logged_by[i].and_then(|l| l.versions.get(key))) {
                (None, _) => {
                    if held[i].take().is_some() {
                        tx.execute("DELETE FROM member_rows WHERE member = ?1 AND key = ?2", args![pass.names[i], key])
                            .map_err(db)?;
                    }
                }
                (Some(_), Some(&(seq, at))) => {
                    tx.execute(
                        "INSERT INTO member_rows (member, key, seq, at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(member, key) DO UPDATE SET seq = excluded.seq, at = excluded.at",
                        args![pass.names[i], key, seq, at],
                    )
                    .map_err(db)?;
                    held[i] = Some((seq, at));
                }
                (Some(_), None) => {}
            }
        }
        let at_key = KeyRows { rows: &rows, fetched: &fetched };
        if conflicted.contains(key) {
            tx.execute("DELETE FROM conflicts WHERE key = ?1", args![key]).map_err(db)?;
        }
        if let Some(change) = write_key(tx, pass, key, &at_key, held, now)? {
            changes.push(change);
        }
    }
    Ok(changes)
}

/// The members' rows of one key, by member.
struct KeyRows<'a> {
    rows: &'a [Option<&'a Vec<Stored>>],
    fetched: &'a [Fetched],
}

impl KeyRows<'_> {
    fn get(&self, member: usize, column: &str) -> Option<&Stored> {
        let at = *self.fetched[member].index.get(column)?;
        self.rows[member].and_then(|r| r.get(at))
    }

    fn none(&self) -> bool {
        self.rows.iter().all(Option::is_none)
    }
}

/// What a published source says of a member that does not disclose itself.
const WITHHELD: &str = "another department";

/// Where a published field came from, as its `FIELD__source` column says.
#[derive(Serialize)]
struct SourceNote<'a> {
    from: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    changeset: Option<i64>,
    at: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stale: bool,
}

/// True for a value that says something (not NULL, not blank text).
fn filled(v: &Stored) -> bool {
    match v {
        Stored::Null => false,
        Stored::Text(t) => !t.trim().is_empty(),
        _ => true,
    }
}

/// Writes the merged row of `key` from the members' current `rows`: each
/// field from its authority, or the first filler holding a value; its
/// provenance (`versions`: of each member's row, as merged); the
/// disagreements between its sources (those listed before are cleared by
/// the caller). Returns the change that publishes it
/// (its row with each field's source, or its deletion) when the base is
/// shared.
fn write_key(
    tx: &Tx<'_>,
    pass: &Pass<'_>,
    key: &str,
    rows: &KeyRows<'_>,
    versions: &[Option<(i64, i64)>],
    now: i64,
) -> Result<Option<Change>, String> {
    let base = pass.base;
    let run = |sql: &str, p: &[Stored]| tx.execute(sql, p).map_err(db);
    let checked = base.key.map(|kind| check_value(kind, key, false, now.div_euclid(86_400)));
    let valid = checked.as_ref().is_none_or(Result::is_ok);
    // the document an identity number belongs to (居民身份证, 港澳台居民居住证, …) is kept with it
    let key_kind = checked.and_then(|c| c.ok()).and_then(|c| c.id_kind).map(|k| k.label());
    if !valid || rows.none() {
        let held = run("DELETE FROM base WHERE key = ?1", args![key])?;
        if base.geometry.is_some() {
            run("DELETE FROM invalid WHERE key = ?1", args![key])?;
            set_spatial(tx, key, None)?;
        }
        let gone = held > 0 && pass.publishing;
        return Ok(gone.then(|| Change::Delete(vec![Value::Text(key.into())])));
    }
    let mut values: Vec<Stored> = Vec::with_capacity(2 * base.fields.len() + 1);
    values.push(Stored::Text(key.to_owned()));
    values.push(key_kind.map_or(Stored::Null, |k| Stored::Text(k.to_owned())));
    let mut published: Vec<Value> = Vec::new();
    if pass.publishing {
        published.push(Value::Text(key.into()));
        if base.key == Some(gdx_common::catalog::ValueKind::IdNumber) {
            published.push(key_kind.map_or(Value::Null, |k| Value::Text(k.into())));
        }
    }
    for (f, srcs) in base.fields.iter().zip(pass.sources) {
        let found: Vec<(&Source, &Stored)> = srcs
            .iter()
            .filter_map(|s| rows.get(s.member, &s.column).map(|v| (s, v)))
            .filter(|(_, v)| filled(v))
            .collect();
        // until a member's own log is merged, its version is not known: no provenance yet
        let mut chosen = found.first().map(|(s, v)| (s.member, *v));
        // a spatial base's geometry: checked and measured, or not merged
        let geometry = base.geometry.as_deref() == Some(f.name.as_str());
        let mut measures = None;
        if geometry {
            run("DELETE FROM invalid WHERE key = ?1 AND field = ?2", args![key, f.name])?;
            if let Some((m, v)) = chosen {
                match gdx_common::geometry::parse(&text_of(v).unwrap_or_default()) {
                    Ok(g) => measures = Some(gdx_common::geometry::measure(&g)),
                    Err(why) => {
                        run(
                            "INSERT INTO invalid (key, field, member, reason) VALUES (?1, ?2, ?3, ?4)",
                            args![key, f.name, pass.names[m], why],
                        )?;
                        chosen = None;
                    }
                }
            }
            set_spatial(tx, key, measures.as_ref())?;
        }
        let value = chosen.map_or(Stored::Null, |(_, v)| v.clone());
        if pass.publishing {
            published.push(to_value(&value));
        }
        // on PostgreSQL a field's column holds text, whatever kind each member gave
        values.push(match (tx.postgres(), text_of(&value)) {
            (true, Some(text)) => Stored::Text(text),
            (true, None) => Stored::Null,
            (false, _) => value,
        });
        // the field's provenance: the member it came from (its changeset and time are the
        // version of that member's row, in member_rows)
        let from = chosen.and_then(|(m, _)| versions[m].map(|ver| (m, ver)));
        values.push(from.map_or(Stored::Null, |(m, _)| Stored::Text(pass.names[m].clone())));
        let note = match (from, pass.publishing) {
            (Some((m, (seq, at))), true) => {
                // a member that does not disclose is not named, nor its changeset numbers
                let note = match base.members[m].disclose {
                    true => SourceNote { from: &pass.names[m], changeset: Some(seq), at, stale: pass.stale[m] },
                    false => SourceNote { from: WITHHELD, changeset: None, at, stale: pass.stale[m] },
                };
                Value::Text(serde_json::to_string(&note).map_err(|e| e.to_string())?.into())
            }
            _ => Value::Null,
        };
        if pass.publishing {
            published.push(note);
            if geometry {
                published.extend(match measures {
                    Some(m) => [
                        Value::Real(m.area_m2),
                        Value::Text(format!("POINT({} {})", m.centroid.0, m.centroid.1).into()),
                        Value::Text(m.bbox.to_string().into()),
                    ],
                    None => [Value::Null, Value::Null, Value::Null],
                });
            }
        }
        // every pair of sources that disagree
        for (i, (a, av)) in found.iter().enumerate() {
            for (b, bv) in &found[i + 1..] {
                let (at, bt) = (text_of(av).unwrap_or_default(), text_of(bv).unwrap_or_default());
                if at.trim() != bt.trim() {
                    run(
                        "INSERT INTO conflicts (key, field, a, a_value, b, b_value, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (key, field, a, b) DO UPDATE SET
                             a_value = excluded.a_value, b_value = excluded.b_value, seen_at = excluded.seen_at",
                        args![key, f.name, pass.names[a.member], at, pass.names[b.member], bt, now],
                    )?;
                }
            }
        }
    }
    tx.execute(&pass.insert, &values).map_err(db)?;
    Ok(pass.publishing.then_some(Change::Upsert(published)))
}

/// Keeps a record's measures and its place in the box index (on SQLite an
/// R-tree; on PostgreSQL the table's own rows).
fn set_spatial(tx: &Tx<'_>, key: &str, m: Option<&gdx_common::geometry::Measures>) -> Result<(), String> {
    let rtree = !tx.postgres();
    let id: Option<i64> =
        tx.query_opt("SELECT id FROM spatial WHERE key = ?1", args![key], |r| r.get(0)).map_err(db)?;
    if let Some(id) = id {
        if rtree {
            tx.execute("DELETE FROM spatial_index WHERE id = ?1", args![id]).map_err(db)?;
        }
        tx.execute("DELETE FROM spatial WHERE id = ?1", args![id]).map_err(db)?;
    }
    if let Some(m) = m {
        let b = m.bbox;
        let id: i64 = tx
            .query_row(
                "INSERT INTO spatial (key, west, south, east, north, area_m2, cx, cy) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 RETURNING id",
                args![key, b.west, b.south, b.east, b.north, m.area_m2, m.centroid.0, m.centroid.1],
                |r| r.get(0),
            )
            .map_err(db)?;
        if rtree {
            tx.execute(
                "INSERT INTO spatial_index (id, west, east, south, north) VALUES (?1, ?2, ?3, ?4, ?5)",
                args![id, b.west, b.east, b.south, b.north],
            )
            .map_err(db)?;
        }
    }
    Ok(())
}

fn to_value(v: &Stored) -> Value {
    match v {
        Stored::Null => Value::Null,
        Stored::Integer(i) => Value::Integer(*i),
        Stored::Real(f) => Value::Real(*f),
        Stored::Text(t) => Value::Text(t.as_str().into()),
        Stored::Blob(b) => Value::Blob(b.clone()),
    }
}
