//! Property tests of the CSV reader: the streaming record parser
//! ([`Records`]) against a reference that reads the whole input at once,
//! and [`CsvFile`] (header, encodings, rows, quarantine) and drop folders
//! read through [`crate::sources::open`] against what was written.
//!
//! Whatever a file holds, each record gives a row of exactly the fields
//! written, or a quarantine entry naming its line and why; a file whose
//! header is bad is set aside whole; nothing panics. `PROPTEST_CASES`
//! scales the run (see docs/security.md).

use std::borrow::Cow;
use std::io::Read;
use std::ops::{ControlFlow, Range};
use std::path::Path;

use gdx_common::data::{Cell, check_column_name};
use proptest::prelude::*;
use proptest::test_runner::Config;

use super::records::Records;
use super::{CHUNK, CsvFile};
use crate::config::{Encoding, SourceConfig};

const BOM: &[u8] = b"\xEF\xBB\xBF";

mod reference;
use reference::*;

/// `default` cases per property, so that CI stays bounded; `PROPTEST_CASES`
/// (the variable proptest itself reads) overrides it for long runs.
fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default);
    Config::with_cases(cases)
}

// The real reader.

/// Reads `bytes` as the file `f.csv` with [`CsvFile`]: what it gives, and
/// the encoding it read the file in.
fn read(bytes: &[u8], encoding: Encoding) -> (Outcome, Option<Encoding>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.csv");
    std::fs::write(&path, bytes).unwrap();
    let file = match CsvFile::open("f.csv", &path, encoding).unwrap() {
        Ok(Some(file)) => file,
        Ok(None) => return (Outcome::default(), None),
        Err(refused) => {
            assert!(!refused.reason.is_empty());
            return (Outcome { header: Some(None), ..Outcome::default() }, None);
        }
    };
    let mut out = Outcome { header: Some(Some(file.header.clone())), ..Outcome::default() };
    let mut quarantine = Vec::new();
    out.rest_set_aside = file
        .for_each(&mut quarantine, |line, cells| {
            out.rows.push((line, cells.iter().map(text_of).collect()));
            ControlFlow::Continue(())
        })
        .unwrap();
    out.quarantine = quarantine.into_iter().map(|q| (q.place, q.reason)).collect();
    (out, Some(file.encoding))
}

fn text_of(cell: &Cell<'_>) -> Option<String> {
    match cell {
        Cell::Null => None,
        Cell::Text(t) => Some((*t).to_owned()),
        other => panic!("a CSV cell is text or NULL, not {other:?}"),
    }
}

/// A reader that hands out at most `.1` bytes at a time.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(self.0.len()).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// The records [`Records`] reads from `bytes` handed out `piece` bytes at a time.
fn streamed(bytes: &[u8], piece: usize) -> Vec<Rec> {
    let mut records = Records::from_reader(Trickle(bytes, piece), 0, 1);
    let mut out = Vec::new();
    while let Some(r) = records.next().unwrap() {
        out.push(match r {
            Ok(rec) => {
                Rec::Good { line: rec.line, fields: rec.fields().map(<[u8]>::to_vec).zip(rec.quoted()).collect() }
            }
            Err(bad) => Rec::Bad { line: bad.line, reason: bad.reason, raw: bad.raw, rest_of_file: bad.rest_of_file },
        });
    }
    out
}

// Generators.

/// Bytes that look like CSV more often than not: structure, text in both
/// encodings, pieces of a BOM, bytes valid in neither.
fn csv_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => prop::sample::select(vec![
            &b"a"[..], b"1", b"id", b"x_1", b" ", b",", b",", b"\"", b"\"", b"\"\"", b"\n", b"\n", b"\r\n", b"\r",
        ])
        .prop_map(<[u8]>::to_vec),
        2 => prop::sample::select(vec![
            "中".as_bytes(), "卓玛".as_bytes(), b"\xD6\xD0", b"\xC2\xED\xCF\xFE", b"\xFF", b"\x80", BOM, b"\xEF", b"\xBB",
        ])
        .prop_map(<[u8]>::to_vec),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    (any::<bool>(), prop::collection::vec(piece, 0..max)).prop_map(|(bom, pieces)| {
        let mut out = if bom { BOM.to_vec() } else { Vec::new() };
        pieces.iter().for_each(|p| out.extend_from_slice(p));
        out
    })
}

/// A column name: ASCII or Chinese, both of which GBK can hold.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z_\u{4e00}-\u{9fa5}][a-zA-Z0-9_\u{4e00}-\u{9fa5}]{0,6}"
        .prop_filter("reserved", |n| check_column_name(n).is_ok())
}

/// Text of a cell: structure to quote, ASCII, Chinese and its punctuation;
/// in UTF-8 also Tibetan, accents, emoji and a BOM inside the text.
fn cell_text(gbk: bool) -> BoxedStrategy<String> {
    if gbk {
        "[a-zA-Z0-9 ,\"\r\n\u{4e00}-\u{9fa5}，。“”]{0,8}".boxed()
    } else {
        "[a-zA-Z0-9 ,\"\r\n\u{4e00}-\u{9fa5}\u{0f40}-\u{0f6c}é😀\u{feff}]{0,8}".boxed()
    }
}

/// A way a row can be wrong.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// One field more than the header.
    ExtraField,
    /// One field fewer (one more if there is only one).
    MissingField,
    /// A byte valid in neither encoding, appended to a cell.
    InvalidByte(prop::sample::Index),
    /// `"text"x`: the first cell.
    TextAfterQuote,
    /// `a"b`: the first cell.
    QuoteInUnquoted,
    /// `a\rb`: the first cell.
    StrayCarriageReturn,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::ExtraField),
        Just(Fault::MissingField),
        any::<prop::sample::Index>().prop_map(Fault::InvalidByte),
        Just(Fault::TextAfterQuote),
        Just(Fault::QuoteInUnquoted),
        Just(Fault::StrayCarriageReturn),
    ]
}

/// A cell: `None` for NULL, and whether to quote it when it need not be.
type TableCell = (Option<String>, bool);

#[derive(Clone, Debug)]
struct Row {
    cells: Vec<TableCell>,
    crlf: bool,
    fault: Option<Fault>,
}

/// A table to write as a CSV file.
#[derive(Clone, Debug)]
struct Table {
    gbk: bool,
    bom: bool,
    /// Names, with whether each is quoted and padded with spaces.
    header: Vec<(String, bool, bool)>,
    header_crlf: bool,
    rows: Vec<Row>,
    final_newline: bool,
}

/// A table in one encoding; `faults`: how likely each row is wrong.
fn table(faults: f64) -> impl Strategy<Value = Table> {
    (any::<bool>(), prop::collection::vec(name(), 1..5)).prop_flat_map(move |(gbk, names)| {
        // names differ (without regard to case) as a valid header's do
        let mut unique: Vec<String> = Vec::new();
        for n in names {
            if !unique.iter().any(|u| u.to_lowercase() == n.to_lowercase()) {
                unique.push(n);
            }
        }
        let width = unique.len();
        let header =
            unique.into_iter().map(|n| (Just(n), any::<bool>(), prop::bool::weighted(0.2))).collect::<Vec<_>>();
        let fault = if faults > 0.0 { prop::option::weighted(faults, fault()).boxed() } else { Just(None).boxed() };
        let row = (
            prop::collection::vec((prop::option::weighted(0.85, cell_text(gbk)), any::<bool>()), width),
            any::<bool>(),
            fault,
        )
            .prop_map(|(cells, crlf, fault)| Row { cells, crlf, fault });
        (Just(gbk), any::<bool>(), header, any::<bool>(), prop::collection::vec(row, 0..10), prop::bool::weighted(0.8))
            .prop_map(|(gbk, bom, header, header_crlf, rows, final_newline)| Table {
                gbk,
                bom: bom && !gbk,
                header,
                header_crlf,
                rows,
                final_newline,
            })
    })
}

impl Table {
    fn encoding(&self) -> Encoding {
        if self.gbk { Encoding::Gbk } else { Encoding::Utf8 }
    }

    fn encode(&self, text: &str) -> Vec<u8> {
        if self.gbk {
            let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
            assert!(!unmappable, "{text:?} is not GBK");
            bytes.into_owned()
        } else {
            text.as_bytes().to_vec()
        }
    }

    /// One field, quoted when it must be (or when asked to).
    fn field(&self, text: &str, quote: bool) -> Vec<u8> {
        if quote || text.is_empty() || text.contains([',', '"', '\r', '\n']) {
            let mut out = b"\"".to_vec();
            out.extend_from_slice(&self.encode(&text.replace('"', "\"\"")));
            out.push(b'"');
            out
        } else {
            self.encode(text)
        }
    }

    /// The table with only `rows`, its columns in `order` (indexes into these).
    fn with_columns(&self, order: &[usize], rows: Range<usize>) -> Table {
        let mut out = self.clone();
        out.header = order.iter().map(|&i| self.header[i].clone()).collect();
        out.rows = self.rows[rows]
            .iter()
            .map(|row| Row { cells: order.iter().map(|&i| row.cells[i].clone()).collect(), ..row.clone() })
            .collect();
        out
    }

    /// The file's bytes and what reading it should give.
    fn write(&self) -> (Vec<u8>, Outcome) {
        let mut out = if self.bom { BOM.to_vec() } else { Vec::new() };
        let names: Vec<Vec<u8>> = self
            .header
            .iter()
            .map(|(n, quote, pad)| self.field(&if *pad { format!(" {n} ") } else { n.clone() }, *quote))
            .collect();
        out.extend_from_slice(&names.join(&b","[..]));
        let width = self.header.len();
        let mut want =
            Outcome { header: Some(Some(self.header.iter().map(|h| h.0.clone()).collect())), ..Outcome::default() };
        let mut crlf = self.header_crlf;
        for row in &self.rows {
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            crlf = row.crlf;
            let line = 1 + out.iter().filter(|&&c| c == b'\n').count();
            let place = format!("f.csv line {line}");
            let mut fields: Vec<Vec<u8>> = row
                .cells
                .iter()
                .map(|(text, quote)| text.as_ref().map_or_else(Vec::new, |t| self.field(t, *quote)))
                .collect();
            // a fault that sets aside the rest of a line only where the row is one line
            let one_line = row.cells.iter().all(|c| !c.0.as_ref().is_some_and(|t| t.contains('\n')));
            let reason = match row.fault {
                None => None,
                Some(Fault::ExtraField) => {
                    fields.push(b"x".to_vec());
                    Some(format!("malformed CSV: {} fields, the header has {width}", width + 1))
                }
                Some(Fault::MissingField) if width > 1 => {
                    fields.pop();
                    if fields == [b""] {
                        // not a blank line, which would be skipped
                        fields[0] = b"x".to_vec();
                    }
                    Some(format!("malformed CSV: {} fields, the header has {width}", width - 1))
                }
                Some(Fault::MissingField) => {
                    fields.push(Vec::new());
                    Some(format!("malformed CSV: {} fields, the header has {width}", width + 1))
                }
                Some(Fault::InvalidByte(at)) => {
                    let f = &mut fields[at.index(width)];
                    match f.last() {
                        Some(b'"') => f.insert(f.len() - 1, 0xFF),
                        _ => f.push(0xFF),
                    }
                    let name = enc_name(self.encoding());
                    Some(format!("bytes that are not valid {name}; save the file as UTF-8 or GBK"))
                }
                Some(Fault::TextAfterQuote) if one_line => {
                    fields[0] = b"\"t\"x".to_vec();
                    Some("malformed CSV: text after a closing quote".to_owned())
                }
                Some(Fault::QuoteInUnquoted) if one_line => {
                    fields[0] = b"a\"b".to_vec();
                    Some("malformed CSV: a quote inside an unquoted field".to_owned())
                }
                Some(Fault::StrayCarriageReturn) if one_line => {
                    fields[0] = b"a\rb".to_vec();
                    Some("malformed CSV: a stray carriage return".to_owned())
                }
                Some(_) => None,
            };
            out.extend_from_slice(&fields.join(&b","[..]));
            match reason {
                Some(reason) => want.quarantine.push((place, reason)),
                // a single NULL is a blank line, which is skipped
                None if width == 1 && row.cells[0].0.is_none() => {}
                None => want.rows.push((line, row.cells.iter().map(|c| c.0.clone()).collect())),
            }
        }
        if self.final_newline {
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        (out, want)
    }
}

/// Writes `files` (name, bytes) into a fresh drop folder.
fn drop_folder(files: &[(String, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

/// The rows of a drop folder read through [`crate::sources::open`]: the
/// columns, then (place, cells) of every row.
#[allow(clippy::type_complexity)]
fn read_folder(dir: &Path, encoding: Encoding) -> (Vec<String>, Vec<(String, Vec<Option<String>>)>) {
    let source = SourceConfig::Csv { dir: dir.to_owned(), encoding };
    let reader = crate::sources::open(&source).unwrap();
    assert!(reader.quarantine.is_empty() && !reader.partial, "{:?}", reader.quarantine);
    let mut rows = Vec::new();
    let read = reader
        .for_each(|place, cells| {
            rows.push((reader.place(place), cells.iter().map(text_of).collect()));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(read.quarantine.is_empty() && !read.partial, "{:?}", read.quarantine);
    assert_eq!(read.rows, rows.len());
    (reader.columns.iter().map(|c| c.name.clone()).collect(), rows)
}

proptest! {
    #![proptest_config(config(1000))]

    /// The streaming parser, handed the bytes in pieces of any size, reads
    /// the same records (fields, lines, reasons, bytes set aside) as the
    /// reference reading them whole.
    #[test]
    fn streaming_matches_the_reference(bytes in csv_bytes(120), piece in prop_oneof![1usize..17, Just(usize::MAX)]) {
        prop_assert_eq!(streamed(&bytes, piece), reference(&bytes));
    }

    /// A well-formed file (quotes, commas, CR/LF inside fields, CRLF or LF
    /// line ends, BOM, Chinese in UTF-8 or GBK, NULL and empty text) reads
    /// back exactly as written, with the right line numbers.
    #[test]
    fn well_formed_files_read_back_exactly(table in table(0.0), auto in any::<bool>()) {
        let (bytes, want) = table.write();
        // `auto` tells GBK only from bytes that are not UTF-8 (nor UTF-8 cut
        // inside a character at the end, as GBK ending in 0xE4 0xB8 is)
        let auto = auto && reference_detect(&bytes) == table.encoding();
        let (got, encoding) = read(&bytes, if auto { Encoding::Auto } else { table.encoding() });
        prop_assert_eq!(got, want);
        prop_assert_eq!(encoding, Some(table.encoding()));
    }

    /// Rows with too many or too few fields, bytes of no encoding or
    /// misplaced quotes and carriage returns are each set aside with their
    /// line and the reason; the rows around them read back exactly.
    #[test]
    fn faulty_rows_are_set_aside_and_their_neighbours_kept(table in table(0.3), auto in any::<bool>()) {
        let (bytes, want) = table.write();
        let auto = auto && !table.gbk;
        let (got, _) = read(&bytes, if auto { Encoding::Auto } else { table.encoding() });
        prop_assert_eq!(got, want);
    }

    /// Any bytes, with or without a valid header before them, read in any
    /// encoding: the header, rows, quarantine and encoding the reference
    /// says, and no panic.
    #[test]
    fn arbitrary_files_read_as_the_reference_says(
        header in prop::sample::select(vec![
            Vec::new(),
            b"id,name\n".to_vec(),
            "\u{feff}证件号码,姓名\r\n".as_bytes().to_vec(),
            b"\xD6\xA4\xBC\xFE\xBA\xC5\xC2\xEB,\xD0\xD5\xC3\xFB\n".to_vec(), // 证件号码,姓名 in GBK
            b"a\n".to_vec(),
        ]),
        body in csv_bytes(60),
        encoding in prop::sample::select(vec![Encoding::Auto, Encoding::Utf8, Encoding::Gbk]),
    ) {
        let mut bytes = header;
        bytes.extend_from_slice(&body);
        let told = match encoding {
            Encoding::Auto => reference_detect(&bytes),
            e => e,
        };
        let (got, read_as) = read(&bytes, encoding);
        let want = reference_read(&bytes, told);
        if want.header.as_ref().is_some_and(Option::is_some) {
            prop_assert_eq!(read_as, Some(told));
        }
        prop_assert_eq!(got, want);
    }

    /// A drop folder of several files, each with the columns in its own
    /// order: the rows of every file, in name order, with the cells in the
    /// order of the first file's header.
    #[test]
    fn drop_folders_read_every_file_in_the_first_files_order(
        table in table(0.0),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        shifts in prop::collection::vec(any::<prop::sample::Index>(), 3),
    ) {
        let width = table.header.len();
        // each file's columns are the header rotated by its own shift; the
        // reader's are the first file's
        let rotated = |shift: &prop::sample::Index| -> Vec<usize> {
            (0..width).map(|i| (i + shift.index(width)) % width).collect()
        };
        let columns = rotated(&shifts[0]);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(table.rows.len() + 1)).collect();
        cuts.sort();
        cuts.insert(0, 0);
        cuts.push(table.rows.len());
        let mut files = Vec::new();
        let mut want = Vec::new();
        for (n, part) in cuts.windows(2).enumerate() {
            let order = rotated(&shifts[n]);
            let name = format!("{n}.csv");
            let (bytes, outcome) = table.with_columns(&order, part[0]..part[1]).write();
            for (line, cells) in outcome.rows {
                // cells[j] is column order[j]
                let cells = columns.iter().map(|c| cells[order.iter().position(|o| o == c).unwrap()].clone());
                want.push((format!("{name} line {line}"), cells.collect()));
            }
            files.push((name, bytes));
        }
        let dir = drop_folder(&files);
        let (got_columns, rows) = read_folder(dir.path(), table.encoding());
        prop_assert_eq!(got_columns, columns.iter().map(|&i| table.header[i].0.clone()).collect::<Vec<_>>());
        prop_assert_eq!(rows, want);
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// `auto` tells the encoding from the whole file, read in 64 KiB
    /// pieces: a character cut by a piece boundary is still one character.
    #[test]
    fn auto_tells_the_encoding_across_piece_boundaries(
        pad in (CHUNK - 4)..(CHUNK + 2),
        text in "[a-z,\n\u{4e00}-\u{9fa5}]{1,6}",
        gbk in any::<bool>(),
        damage in prop::option::weighted(0.3, any::<prop::sample::Index>()),
    ) {
        let mut bytes = b"id\n".to_vec();
        bytes.resize(pad, b'a');
        if gbk {
            bytes.extend_from_slice(&encoding_rs::GBK.encode(&text).0);
        } else {
            bytes.extend_from_slice(text.as_bytes());
        }
        if let Some(at) = damage {
            let at = pad + at.index(bytes.len() - pad);
            bytes[at] = 0xFF;
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &bytes).unwrap();
        prop_assert_eq!(super::detect(file.as_file()).unwrap(), reference_detect(&bytes));
    }
}
