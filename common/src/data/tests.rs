//! Unit tests of rows, changesets, their bodies and schemas.

use super::*;

#[test]
fn resource_codes() {
    for (s, ok) in [
        ("hukou", true),
        ("630000-gongan/hukou", true),
        ("101/000123", true),
        ("", false),
        ("/x", false),
        ("x/", false),
        ("a//b", false),
        ("户口", false),
        ("a b", false),
        ("_gdx_resources", false),
        ("SQLITE_master", false),
        (&"x".repeat(65), false),
    ] {
        assert_eq!(ResourceCode::parse(s).is_ok(), ok, "{s}");
    }
}

#[test]
fn column_names() {
    for (s, ok) in [
        ("id_number", true),
        ("身份证号", true),
        ("姓名", true),
        ("_x", true),
        ("1st", false),
        ("a;b", false),
        ("a b", false),
        ("\"x\"", false),
        ("", false),
        ("_gdx_key", false),
        ("a-b", false),
    ] {
        assert_eq!(check_column_name(s).is_ok(), ok, "{s}");
    }
}

#[test]
fn value_order_is_total_and_numeric() {
    use Value::*;
    assert_eq!(cmp_values(&Integer(2), &Real(10.0)), Ordering::Less);
    assert_eq!(cmp_values(&Null, &Integer(-5)), Ordering::Less);
    assert_eq!(cmp_values(&Text("b".into()), &Text("a".into())), Ordering::Greater);
    let (a, b) =
        (Change::Upsert(vec![Integer(1), Text("a".into())]), Change::Upsert(vec![Integer(1), Text("b".into())]));
    assert_eq!(cmp_change_keys(&a, &b, &[0, 1]), Ordering::Less);
    assert_eq!(cmp_change_keys(&a, &Change::Delete(vec![Integer(1)]), &[0]), Ordering::Equal);
    // exact beyond 2^53, where f64 cannot tell the integers apart
    let big = 1i64 << 53;
    assert_eq!(cmp_values(&Integer(big + 1), &Real(big as f64)), Ordering::Greater);
    assert_eq!(cmp_values(&Real(big as f64), &Integer(big)), Ordering::Equal);
    assert_eq!(cmp_values(&Integer(2), &Real(2.5)), Ordering::Less);
    assert_eq!(cmp_values(&Integer(-2), &Real(-2.5)), Ordering::Greater);
    assert_eq!(cmp_values(&Integer(i64::MAX), &Real(1e300)), Ordering::Less);
    // sorting a mix never panics and is consistent
    let mut v = [Real(f64::NAN), Integer(big + 1), Real(big as f64), Integer(big), Integer(-1), Real(-f64::NAN)];
    v.sort_by(cmp_values);
    for w in v.windows(2) {
        assert_ne!(cmp_values(&w[0], &w[1]), Ordering::Greater);
    }
}

#[test]
fn body_round_trip_and_bombs() {
    let cs = Changeset {
        origin: NodeId::parse("632522/gongan").unwrap(),
        resource: ResourceCode::parse("hukou").unwrap(),
        seq: 7,
        epoch: 1,
        columns: vec![Column { name: "id".into(), decl_type: String::new() }],
        key: vec![0],
        changes: (0..100).map(|i| Change::Upsert(vec![Value::Integer(i)])).collect(),
        created_at: 1,
    };
    assert_eq!(decode_changeset(&encode_changeset(&cs).unwrap()).unwrap(), cs);
    assert!(decode_changeset(b"not zstd").is_err());
    let bomb = zstd::bulk::compress(&vec![0u8; MAX_CHANGESET_BYTES + 1], 1).unwrap();
    assert!(matches!(decode_changeset(&bomb), Err(BodyError::Compression(_))));
    // bodies made otherwise than by encode_changeset take the streamed path
    let raw = bincode::serde::encode_to_vec(&cs, bincode::config::standard()).unwrap();
    let unsized_frame = {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        std::io::Write::write_all(&mut e, &raw).unwrap();
        e.finish().unwrap()
    };
    assert_eq!(zstd::zstd_safe::get_frame_content_size(&unsized_frame).ok().flatten(), None);
    assert_eq!(decode_changeset(&unsized_frame).unwrap(), cs);
    let (half, rest) = raw.split_at(raw.len() / 2);
    let two_frames = [zstd::bulk::compress(half, 3).unwrap(), zstd::bulk::compress(rest, 3).unwrap()].concat();
    assert_eq!(decode_changeset(&two_frames).unwrap(), cs);
    // a frame cut short fails on either path
    let whole = encode_changeset(&cs).unwrap();
    assert!(matches!(decode_changeset(&whole[..whole.len() - 3]), Err(BodyError::Compression(_))));
    // a bomb in the second frame, behind a small first one
    let bomb2 = [zstd::bulk::compress(half, 3).unwrap(), bomb].concat();
    assert!(matches!(decode_changeset(&bomb2), Err(BodyError::Compression(_))));
}

/// A few KiB that claim millions of rows or cells fail as the count is
/// passed, before the rows are held (bincode: a length, then elements).
#[test]
fn rows_and_cells_are_counted_before_they_are_held() {
    let cs = |rows: usize, width: usize| Changeset {
        origin: NodeId::parse("630000/gongan").unwrap(),
        resource: ResourceCode::parse("hukou").unwrap(),
        seq: 1,
        epoch: 1,
        columns: vec![Column { name: "id".into(), decl_type: String::new() }],
        key: vec![0],
        changes: (0..rows).map(|_| Change::Upsert(vec![Value::Null; width])).collect(),
        created_at: 1,
    };
    let body = |c: &Changeset| {
        let raw = bincode::serde::encode_to_vec(c, bincode::config::standard()).unwrap();
        zstd::bulk::compress(&raw, 19).unwrap()
    };
    let fits = cs(MAX_CHANGESET_ROWS, MAX_CHANGESET_CELLS / MAX_CHANGESET_ROWS);
    assert_eq!(decode_changeset(&body(&fits)).unwrap(), fits);
    for (what, bomb, want) in [
        ("one row too many", cs(MAX_CHANGESET_ROWS + 1, 1), "more than 5000 changes"),
        ("one cell too many", cs(2, MAX_CHANGESET_CELLS / 2 + 1), "more than 2000000 cells"),
        ("millions of cells in one row", cs(1, 8_000_000), "more than 2000000 cells"),
    ] {
        let b = body(&bomb);
        assert!(b.len() < 64 * 1024, "{what}: {} bytes", b.len());
        let e = decode_changeset(&b).unwrap_err().to_string();
        assert!(e.contains(want), "{what}: {e}");
    }
}

#[test]
fn digests_tell_rows_apart() {
    use Value::*;
    let a = row_digest(&[Integer(1), Text("x".into())]);
    assert_eq!(a, row_digest(&[Integer(1), Text("x".into())]));
    assert_ne!(a, row_digest(&[Integer(1), Text("y".into())]));
    assert_ne!(a, row_digest(&[Integer(1), Text("x".into()), Null]));
    assert_ne!(row_digest(&[Text("1".into())]), row_digest(&[Integer(1)]));
}

#[test]
fn validate_catches_inconsistent_changesets() {
    let mut cs = Changeset {
        origin: NodeId::parse("632522/gongan").unwrap(),
        resource: ResourceCode::parse("hukou").unwrap(),
        seq: 1,
        epoch: 1,
        columns: vec![Column { name: "id".into(), decl_type: "TEXT".into() }],
        key: vec![0],
        changes: vec![Change::Upsert(vec![Value::Text("1".into())])],
        created_at: 0,
    };
    assert!(cs.validate().is_ok());
    cs.changes.push(Change::Delete(vec![Value::Null]));
    assert!(cs.validate().unwrap_err().contains("null key"));
    cs.changes.pop();
    cs.changes.push(Change::Upsert(vec![]));
    assert!(cs.validate().is_err());
    cs.changes.pop();
    cs.columns.push(Column { name: "ID".into(), decl_type: String::new() });
    assert!(cs.validate().unwrap_err().contains("differ only in case"));
    cs.columns.pop();
    cs.key = vec![3];
    assert!(cs.validate().is_err());
}

#[test]
fn cells_encode_like_values() {
    let mut row = vec![
        Value::Text("632522199001010011".into()),
        Value::Null,
        Value::Integer(-7),
        Value::Real(1.5),
        Value::Blob(vec![0, 255, 3]),
        Value::Text("藏族".into()),
        Value::Text("长".repeat(100).into()),
        Value::Blob(vec![9; 70_000]),
        Value::Text("".into()),
    ];
    for i in [0, 1, 250, 251, 65_535, 65_536, i64::MAX, i64::MIN, -1, -250, 1 << 40] {
        row.push(Value::Integer(i));
    }
    let cells: Vec<Cell<'_>> = row.iter().map(Cell::from).collect();
    let mut buf = Vec::new();
    assert_eq!(cells_digest(&cells, &mut buf), row_digest(&row));
    assert_eq!(buf, bincode::serde::encode_to_vec(&row, bincode::config::standard()).unwrap());
    assert_eq!(cells.iter().map(|c| c.to_value()).collect::<Vec<_>>(), row);
    // and decode back to the same values, from bincode and from JSON
    let config = bincode::config::standard();
    let (decoded, used): (Vec<Value>, usize) = bincode::serde::decode_from_slice(&buf, config).unwrap();
    assert_eq!((decoded, used), (row.clone(), buf.len()));
    assert_eq!(serde_json::from_str::<Vec<Value>>(&serde_json::to_string(&row).unwrap()).unwrap(), row);
    // text that is not UTF-8 is an error, not a value
    let mut bad = bincode::serde::encode_to_vec(Value::Text("ab".into()), config).unwrap();
    *bad.last_mut().unwrap() = 0xff;
    assert!(bincode::serde::decode_from_slice::<Value, _>(&bad, config).is_err());
}

/// A body made from changes encoded as rows are digested is the body made
/// from the values, byte for byte.
#[test]
fn changes_encoded_as_digested_make_the_same_body() {
    let row = |i: i64| {
        vec![
            Value::Integer(i),
            Value::Text("藏族".repeat(i as usize % 7).into()),
            Value::Null,
            Value::Real(i as f64 / 3.0),
            Value::Blob(vec![i as u8; (i % 300) as usize]),
        ]
    };
    let changes: Vec<Change> = (0..700)
        .map(|i| if i % 5 == 0 { Change::Delete(vec![Value::Integer(i)]) } else { Change::Upsert(row(i)) })
        .collect();
    let encoded: Vec<Vec<u8>> = changes
        .iter()
        .map(|c| {
            let mut out = Vec::new();
            match c {
                Change::Upsert(values) => {
                    let cells: Vec<Cell<'_>> = values.iter().map(Cell::from).collect();
                    let mut buf = Vec::new();
                    DigestKind::Xxh3.of(&cells, &mut buf);
                    Change::put_upsert(&buf, &mut out);
                }
                Change::Delete(key) => Change::put_delete(key, &mut out),
            }
            out
        })
        .collect();
    let mut cs = Changeset {
        origin: NodeId::parse("632522/gongan").unwrap(),
        resource: ResourceCode::parse("hukou").unwrap(),
        seq: 70_000,
        epoch: u64::MAX,
        columns: ["id", "name", "note", "amount", "photo"]
            .iter()
            .map(|n| Column { name: (*n).into(), decl_type: "TEXT".into() })
            .collect(),
        key: vec![0],
        changes,
        created_at: -5,
    };
    let slices: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
    let body = encode_changeset_of(&cs, &slices).unwrap();
    assert_eq!(body, encode_changeset(&cs).unwrap());
    assert_eq!(decode_changeset(&body).unwrap(), cs);
    cs.changes.clear();
    assert_eq!(encode_changeset_of(&cs, &[]).unwrap(), encode_changeset(&cs).unwrap());
}

#[test]
fn schema_merge_keeps_the_saved_order_and_names_drift() {
    let col = |n: &str, t: &str| Column { name: n.into(), decl_type: t.into() };
    let saved = vec![col("id", "TEXT"), col("name", "TEXT")];
    type Case<'a> = (&'a [Column], Result<Vec<&'a str>, &'a str>);
    let cases: [Case<'_>; 5] = [
        (&[col("name", "TEXT"), col("id", "TEXT"), col("age", "INTEGER")], Ok(vec!["id", "name", "age"])),
        (&[col("id", "TEXT"), col("name", "TEXT")], Ok(vec!["id", "name"])),
        (
            &[col("id", "TEXT"), col("full_name", "TEXT")],
            Err("column \"name\" is no longer in the source (dropped or renamed; the source now has id, full_name)"),
        ),
        (&[col("id", "INTEGER"), col("name", "TEXT")], Err("column \"id\" changed type from \"TEXT\" to \"INTEGER\"")),
        (
            &[col("name", "TEXT")],
            Err("column \"id\" is no longer in the source (dropped or renamed; the source now has name)"),
        ),
    ];
    for (source, want) in cases {
        let got = merge_schema(Some(&saved), source)
            .map(|m| m.into_iter().map(|c| c.name).collect::<Vec<_>>())
            .map_err(|e| e.to_string());
        let want = want.map(|w| w.into_iter().map(str::to_owned).collect::<Vec<_>>()).map_err(str::to_owned);
        assert_eq!(got, want);
    }
    assert_eq!(merge_schema(None, &saved), Ok(saved.clone()));
    assert_eq!(merge_schema(Some(&[]), &saved), Ok(saved.clone()));
}

/// The saved digests of every agent rest on these values: a build that
/// changed either kind would see every saved row as changed.
#[test]
fn digest_kinds_are_fixed() {
    let row = [Cell::Text("632522199001010011"), Cell::Integer(7), Cell::Null, Cell::Text("藏族")];
    let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut buf = Vec::new();
    let fnv = DigestKind::Fnv.of(&row, &mut buf);
    assert_eq!(fnv, cells_digest(&row, &mut buf));
    let xxh3 = DigestKind::Xxh3.of(&row, &mut buf);
    assert_eq!(hex(fnv), "90b8746417f1d207218c066dcd6135f8");
    assert_eq!(hex(xxh3), "3e34e17aabe60c2214c48b8c9a238a4c");
    // the XXH3 kind is XXH3-128 of the cells' encoding, as its published algorithm gives it
    assert_eq!(xxh3, twox_hash::XxHash3_128::oneshot(&buf).to_le_bytes());
    assert_ne!(DigestKind::Xxh3.of(&row[..3], &mut buf), xxh3);
    for kind in [DigestKind::Fnv, DigestKind::Xxh3] {
        assert_eq!(DigestKind::from_code(kind.code()), Some(kind));
    }
    assert_eq!(DigestKind::from_code(3), None);
}
