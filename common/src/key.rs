//! A row's key as bytes that sort like its values.
//!
//! The agent keeps the digest of every synced row by its encoded key, and a
//! scan of a table read in key order walks that saved state side by side
//! with the source. For that, comparing two encoded keys byte by byte must
//! give the order SQLite's `ORDER BY` gives (and [`crate::data::cmp_values`]):
//! NULL, then numbers by value (integers and reals together), then text by
//! its UTF-8 bytes, then blobs by their bytes; a composite key compares
//! column by column. Two keys encode to the same bytes exactly when SQLite
//! holds them equal, so the integer 2 and the real 2.0 are one key, and so
//! are the reals -0.0 and 0.0 (which `cmp_values`, by `f64::total_cmp`,
//! puts in order).
//!
//! Each value is a tag byte and a self-delimiting body:
//! - NULL: `05`;
//! - a number `n` with `-2^63 <= n < 2^63`: `15`, `floor(n)` as 8 bytes
//!   big-endian with the sign bit flipped, then `00` when `n` is whole, or
//!   `01` and the fraction's IEEE bits (8 bytes big-endian);
//! - a real below that range (or a NaN with its sign bit set): `14` and the
//!   real's order-preserving bits; above it (or another NaN): `16` and the
//!   same bits;
//! - text: `20`, the bytes with `00` written as `00 FF`, then `00 00`;
//! - a blob: `30`, the same escaping and terminator.

use crate::data::{Cell, Value};

const NULL: u8 = 0x05;
const BELOW: u8 = 0x14;
const NUMBER: u8 = 0x15;
const ABOVE: u8 = 0x16;
const TEXT: u8 = 0x20;
const BLOB: u8 = 0x30;

/// Why bytes are not an encoded key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an encoded key: {0}")]
pub struct KeyError(&'static str);

/// The key values as ordered bytes.
pub fn encode_key(key: &[&Value]) -> Vec<u8> {
    let mut buf = Vec::new();
    for v in key {
        put(&mut buf, Cell::from(*v));
    }
    buf
}

/// [`encode_key`] of the cells of `row` at `key` (column indexes), into
/// `buf` (cleared first).
pub fn encode_cells_key(row: &[Cell<'_>], key: &[usize], buf: &mut Vec<u8>) {
    buf.clear();
    for &i in key {
        put(buf, row.get(i).copied().unwrap_or(Cell::Null));
    }
}

/// The values of an encoded key. A whole real comes back as the integer it
/// equals (they are one key).
pub fn decode_key(mut b: &[u8]) -> Result<Vec<Value>, KeyError> {
    let mut out = Vec::new();
    while let Some((&tag, rest)) = b.split_first() {
        b = rest;
        out.push(match tag {
            NULL => Value::Null,
            NUMBER => {
                let floor = (take8(&mut b)? ^ (1 << 63)) as i64;
                match take(&mut b, 1)?[0] {
                    0 => Value::Integer(floor),
                    1 => Value::Real(floor as f64 + f64::from_bits(take8(&mut b)?)),
                    _ => return Err(KeyError("a number's marker is neither 00 nor 01")),
                }
            }
            BELOW | ABOVE => Value::Real(from_ordered_bits(take8(&mut b)?)),
            TEXT => {
                Value::Text(String::from_utf8(unescape(&mut b)?).map_err(|_| KeyError("text is not UTF-8"))?.into())
            }
            BLOB => Value::Blob(unescape(&mut b)?),
            _ => return Err(KeyError("unknown tag")),
        });
    }
    Ok(out)
}

fn put(buf: &mut Vec<u8>, cell: Cell<'_>) {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    match cell {
        Cell::Null => buf.push(NULL),
        Cell::Integer(i) => put_number(buf, i, None),
        Cell::Real(r) if r.is_nan() => {
            buf.push(if r.is_sign_negative() { BELOW } else { ABOVE });
            buf.extend_from_slice(&ordered_bits(r).to_be_bytes());
        }
        Cell::Real(r) if !(-TWO_63..TWO_63).contains(&r) => {
            buf.push(if r < 0.0 { BELOW } else { ABOVE });
            buf.extend_from_slice(&ordered_bits(r).to_be_bytes());
        }
        Cell::Real(r) => {
            let floor = r.floor();
            let fraction = r - floor;
            put_number(buf, floor as i64, (fraction != 0.0).then_some(fraction));
        }
        Cell::Text(t) => put_escaped(buf, TEXT, t.as_bytes()),
        Cell::Blob(b) => put_escaped(buf, BLOB, b),
    }
}

fn put_number(buf: &mut Vec<u8>, floor: i64, fraction: Option<f64>) {
    buf.push(NUMBER);
    buf.extend_from_slice(&((floor as u64) ^ (1 << 63)).to_be_bytes());
    match fraction {
        None => buf.push(0),
        Some(f) => {
            buf.push(1);
            // a fraction in (0, 1) is positive: its bits grow with it
            buf.extend_from_slice(&f.to_bits().to_be_bytes());
        }
    }
}

fn put_escaped(buf: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    buf.push(tag);
    for &b in bytes {
        buf.push(b);
        if b == 0 {
            buf.push(0xff);
        }
    }
    buf.extend_from_slice(&[0, 0]);
}

/// A real's bits, made to compare as unsigned integers in the real's order
/// (`f64::total_cmp`'s order).
fn ordered_bits(r: f64) -> u64 {
    let b = r.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

fn from_ordered_bits(b: u64) -> f64 {
    f64::from_bits(if b >> 63 == 1 { b & !(1 << 63) } else { !b })
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], KeyError> {
    if b.len() < n {
        return Err(KeyError("it ends inside a value"));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn take8(b: &mut &[u8]) -> Result<u64, KeyError> {
    let mut w = [0u8; 8];
    w.copy_from_slice(take(b, 8)?);
    Ok(u64::from_be_bytes(w))
}

fn unescape(b: &mut &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::new();
    loop {
        match take(b, 1)?[0] {
            0 => match take(b, 1)?[0] {
                0 => return Ok(out),
                0xff => out.push(0),
                _ => return Err(KeyError("a zero byte is neither escaped nor the end")),
            },
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;
    use crate::data::cmp_values;

    fn values() -> Vec<Value> {
        use Value::*;
        let mut v = vec![
            Null,
            Text("".into()),
            Text("a".into()),
            Text("a\0".into()),
            Text("a\0b".into()),
            Text("a\u{1}".into()),
            Text("ab".into()),
            Text("卓玛".into()),
            Text("632522199001010011".into()),
            Blob(vec![]),
            Blob(vec![0]),
            Blob(vec![0, 0]),
            Blob(vec![0, 255]),
            Blob(vec![255]),
            Real(f64::INFINITY),
            Real(f64::NEG_INFINITY),
            Real(f64::NAN),
            Real(-f64::NAN),
            Real(1e300),
            Real(-1e300),
            Real(9_223_372_036_854_775_808.0),
            Real(-9_223_372_036_854_775_808.0),
            Real(0.5),
            Real(-0.5),
            Real(2.5),
            Real(-2.5),
            Real(1e-300),
            Real(4_503_599_627_370_495.5),
            Real(-4_503_599_627_370_495.5),
            Real(f64::MIN_POSITIVE),
        ];
        for i in [0, 1, -1, 2, 3, -3, 250, 251, 65_535, 65_536, 1 << 40, i64::MAX, i64::MIN, i64::MIN + 1] {
            v.push(Integer(i));
        }
        v
    }

    /// Byte order is value order, and equal bytes mean equal values, for
    /// every pair of the values above and of two-column keys made of them.
    #[test]
    fn bytes_sort_like_values() {
        let vs = values();
        for a in &vs {
            for b in &vs {
                let (ea, eb) = (encode_key(&[a]), encode_key(&[b]));
                assert_eq!(ea.cmp(&eb), cmp_values(a, b), "{a:?} vs {b:?}");
                for c in [&vs[0], &vs[6], &vs[40]] {
                    let (ka, kb) = (encode_key(&[a, c]), encode_key(&[b, c]));
                    assert_eq!(ka.cmp(&kb), cmp_values(a, b), "({a:?}, {c:?}) vs ({b:?}, {c:?})");
                    let (ka, kb) = (encode_key(&[c, a]), encode_key(&[c, b]));
                    assert_eq!(ka.cmp(&kb), cmp_values(a, b), "({c:?}, {a:?}) vs ({c:?}, {b:?})");
                }
            }
        }
        // a whole real is the integer it equals
        assert_eq!(encode_key(&[&Value::Real(2.0)]), encode_key(&[&Value::Integer(2)]));
        assert_eq!(encode_key(&[&Value::Real(-0.0)]), encode_key(&[&Value::Integer(0)]));
        assert_eq!(encode_key(&[&Value::Real(-0.0)]), encode_key(&[&Value::Real(0.0)]));
    }

    #[test]
    fn keys_decode_to_their_values() {
        for a in values() {
            for b in [Value::Null, Value::Text("x\0".into()), Value::Integer(-7), Value::Real(0.25)] {
                let back = decode_key(&encode_key(&[&a, &b])).unwrap();
                assert_eq!(back.len(), 2);
                let same = |x: &Value, y: &Value| match (x, y) {
                    (Value::Real(p), Value::Real(q)) => p.to_bits() == q.to_bits(),
                    // a whole real comes back as its integer
                    (Value::Integer(_), Value::Real(_)) => cmp_values(x, y) == Ordering::Equal,
                    _ => x == y,
                };
                assert!(same(&back[0], &a), "{a:?} came back as {:?}", back[0]);
                assert!(same(&back[1], &b), "{b:?} came back as {:?}", back[1]);
            }
        }
        assert_eq!(decode_key(&encode_key(&[&Value::Real(3.0)])).unwrap(), [Value::Integer(3)]);
        assert_eq!(decode_key(&[]).unwrap(), Vec::<Value>::new());
        for bad in [&[0x15, 0, 0][..], &[0x20, b'a'], &[0x20, 0, 7], &[0x99], &[0x15, 0, 0, 0, 0, 0, 0, 0, 0, 2]] {
            assert!(decode_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cells_encode_like_values() {
        let row = values();
        let cells: Vec<Cell<'_>> = row.iter().map(Cell::from).collect();
        let mut buf = Vec::new();
        encode_cells_key(&cells, &[0, 2, 7, 12, 30], &mut buf);
        assert_eq!(buf, encode_key(&[&row[0], &row[2], &row[7], &row[12], &row[30]]));
    }
}
