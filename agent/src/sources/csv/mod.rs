//! CSV drop folders, streamed: a file is read in 64 KiB pieces and its
//! rows handed on one at a time, so the agent's memory does not grow with
//! the size of a drop.
//!
//! RFC 4180 (quoted fields with commas, quotes and newlines), a header row,
//! UTF-8 (with or without BOM) or GBK. `auto` reads a file once to tell
//! which: UTF-8 when all of it is (or it only ends inside a character, as a
//! file still being copied does), GBK when all of it decodes as GBK,
//! otherwise UTF-8, so that bad bytes set their rows aside instead of the
//! whole file being read as garbled GBK. Only `,` `"` `\r` `\n` are
//! structural; they are ASCII and never occur inside a GBK double-byte
//! character, so the bytes are split into fields before they are decoded.
//! Unquoted empty fields are NULL; quoted empty fields are empty text.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use gdx_common::data::{Cell, check_column_name};

use super::Quarantined;
use crate::config::Encoding;

mod records;

use records::Records;

/// Bytes read from a file at a time.
const CHUNK: usize = 64 << 10;
/// A record longer than this is taken for a quote that is never closed.
const MAX_RECORD_BYTES: usize = 64 << 20;

/// One CSV file of a drop, its encoding told and its header read. The file
/// is opened again to read its rows (a drop may hold more files than a
/// process may keep open), and read only if its header is still the same.
pub struct CsvFile {
    pub name: String,
    path: PathBuf,
    encoding: Encoding,
    /// The header's column names.
    pub header: Vec<String>,
    /// Where the rows start: byte offset and line number.
    offset: u64,
    line: usize,
}

/// Why a file is set aside whole.
pub struct Refused {
    pub reason: String,
    pub content: String,
}

impl CsvFile {
    /// Opens the file at `path`, tells its encoding and reads its header.
    /// `Ok(None)`: the file holds no header (empty or only blank lines).
    pub fn open(name: &str, path: &Path, encoding: Encoding) -> std::io::Result<Result<Option<Self>, Refused>> {
        let file = File::open(path)?;
        let encoding = match encoding {
            Encoding::Auto => detect(&file)?,
            e => e,
        };
        Ok(Self::read_header(&file, encoding)?.map(|found| {
            found.map(|(header, offset, line)| Self {
                name: name.to_owned(),
                path: path.to_owned(),
                encoding,
                header,
                offset,
                line,
            })
        }))
    }

    /// The header of `file` in `encoding`: its names, and the byte offset and
    /// line number where the rows start; `Ok(None)` when it has none.
    #[allow(clippy::type_complexity)]
    fn read_header(
        file: &File,
        encoding: Encoding,
    ) -> std::io::Result<Result<Option<(Vec<String>, u64, usize)>, Refused>> {
        let mut records = Records::new(file, 0, 1)?;
        let header = loop {
            let refused =
                |reason: String, raw: &[u8]| Ok(Err(Refused { reason, content: shorten(&lossy(raw, encoding)) }));
            match records.next()? {
                None => return Ok(Ok(None)),
                Some(Err(bad)) => {
                    return refused(format!("the header (line {}) is malformed: {}", bad.line, bad.reason), &bad.raw);
                }
                Some(Ok(rec)) if rec.is_blank() => continue,
                Some(Ok(rec)) => {
                    let mut names = Vec::new();
                    for raw in rec.fields() {
                        match decode(raw, encoding) {
                            Some(s) => names.push(s.trim().to_owned()),
                            None => {
                                let reason = format!(
                                    "the header (line {}) has bytes that are not valid {}",
                                    rec.line,
                                    enc_name(encoding)
                                );
                                return refused(reason, raw);
                            }
                        }
                    }
                    break names;
                }
            }
        };
        let refused = |reason: String| Ok(Err(Refused { reason, content: shorten(&header.join(",")) }));
        for n in &header {
            if let Err(e) = check_column_name(n) {
                return refused(format!("{e}; fix the header row"));
            }
        }
        if let Some(dup) =
            header.iter().enumerate().find(|(i, h)| header[..*i].iter().any(|x| x.to_lowercase() == h.to_lowercase()))
        {
            return refused(format!("column {:?} appears twice in the header", dup.1));
        }
        Ok(Ok(Some((header, records.offset, records.line))))
    }

    /// Calls `each(line, cells)` for every good row (until it says stop), the cells in the
    /// header's order; sets aside the bad ones. Returns whether the rest of
    /// the file was set aside (a quote never closed), so that rows missing
    /// from this read are not taken for deletions (so is a file whose header
    /// changed since it was opened: it is set aside whole).
    pub fn for_each(
        &self,
        quarantine: &mut Vec<Quarantined>,
        mut each: impl FnMut(usize, &[Cell<'_>]) -> ControlFlow<()>,
    ) -> std::io::Result<bool> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                quarantine.push(Quarantined {
                    place: self.name.clone(),
                    reason: "the file disappeared while the drop was read; the next scan reads the folder again".into(),
                    content: String::new(),
                });
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        let before = file.metadata()?;
        let again = Self::read_header(&file, self.encoding)?;
        if !matches!(&again, Ok(Some((header, offset, _))) if *header == self.header && *offset == self.offset) {
            quarantine.push(Quarantined {
                place: self.name.clone(),
                reason: "the file changed while it was read; the next scan reads it again".into(),
                content: String::new(),
            });
            return Ok(true);
        }
        let mut records = Records::new(&file, self.offset, self.line)?;
        let mut text = String::new();
        let mut spans: Vec<Option<(usize, usize)>> = Vec::new();
        let width = self.header.len();
        while let Some(rec) = records.next()? {
            let rec = match rec {
                Ok(rec) => rec,
                Err(bad) => {
                    quarantine.push(Quarantined {
                        place: format!("{} line {}", self.name, bad.line),
                        reason: format!("malformed CSV: {}", bad.reason),
                        content: shorten(&lossy(&bad.raw, self.encoding)),
                    });
                    if bad.rest_of_file {
                        return Ok(true);
                    }
                    continue;
                }
            };
            if rec.is_blank() {
                continue;
            }
            let shown = || {
                let fields: Vec<String> = rec.fields().map(|f| lossy(f, self.encoding)).collect();
                shorten(&fields.join(","))
            };
            let place = || format!("{} line {}", self.name, rec.line);
            if rec.len() != width {
                let reason = format!("malformed CSV: {} fields, the header has {}", rec.len(), width);
                quarantine.push(Quarantined { place: place(), reason, content: shown() });
                continue;
            }
            text.clear();
            spans.clear();
            let mut bad = false;
            for (raw, quoted) in rec.fields().zip(rec.quoted()) {
                if raw.is_empty() && !quoted {
                    spans.push(None);
                    continue;
                }
                let start = text.len();
                match self.encoding {
                    Encoding::Gbk => match encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(raw) {
                        Some(s) => text.push_str(&s),
                        None => bad = true,
                    },
                    _ => match std::str::from_utf8(raw) {
                        Ok(s) => text.push_str(s),
                        Err(_) => bad = true,
                    },
                }
                if bad {
                    break;
                }
                spans.push(Some((start, text.len())));
            }
            if bad {
                let reason =
                    format!("bytes that are not valid {}; save the file as UTF-8 or GBK", enc_name(self.encoding));
                quarantine.push(Quarantined { place: place(), reason, content: shown() });
                continue;
            }
            let cells: Vec<Cell<'_>> =
                spans.iter().map(|s| s.map_or(Cell::Null, |(a, b)| Cell::Text(&text[a..b]))).collect();
            if each(rec.line, &cells).is_break() {
                break;
            }
        }
        // a file still being written (copied into the folder rather than renamed into it) grew
        // or was replaced while it was read: the rows it did not give yet are not deletions
        if !unchanged(&file, &self.path, &before) {
            quarantine.push(Quarantined {
                place: self.name.clone(),
                reason: "the file changed while it was read (still being written? write it under another name, then rename it into the folder); the next scan reads it again".into(),
                content: String::new(),
            });
            return Ok(true);
        }
        Ok(false)
    }
}

/// True when the file open as `file` still has the size and time it had
/// (`before`), and `path` still names it.
fn unchanged(file: &File, path: &Path, before: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(now), Ok(named)) = (file.metadata(), std::fs::metadata(path)) else { return false };
    now.len() == before.len()
        && now.modified().ok() == before.modified().ok()
        && (named.dev(), named.ino()) == (now.dev(), now.ino())
}

/// The encoding of a file read with `auto` (see the module's text).
fn detect(file: &File) -> std::io::Result<Encoding> {
    let mut input = file;
    input.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; CHUNK];
    let mut carry: Vec<u8> = Vec::new();
    let mut utf8 = true;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        carry.extend_from_slice(&buf[..n]);
        match std::str::from_utf8(&carry) {
            Ok(_) => carry.clear(),
            Err(e) if e.error_len().is_none() => {
                carry.drain(..e.valid_up_to());
            }
            Err(_) => {
                utf8 = false;
                break;
            }
        }
    }
    if utf8 {
        return Ok(Encoding::Utf8);
    }
    input.seek(SeekFrom::Start(0))?;
    let mut decoder = encoding_rs::GBK.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(2 * CHUNK + 16);
    loop {
        let n = input.read(&mut buf)?;
        let mut src = &buf[..n];
        loop {
            out.clear();
            let (result, read) = decoder.decode_to_string_without_replacement(src, &mut out, n == 0);
            src = &src[read..];
            match result {
                encoding_rs::DecoderResult::InputEmpty => break,
                encoding_rs::DecoderResult::OutputFull => continue,
                encoding_rs::DecoderResult::Malformed(..) => return Ok(Encoding::Utf8),
            }
        }
        if n == 0 {
            return Ok(Encoding::Gbk);
        }
    }
}

fn enc_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Gbk => "GBK",
        _ => "UTF-8",
    }
}

fn decode(raw: &[u8], encoding: Encoding) -> Option<String> {
    match encoding {
        Encoding::Gbk => {
            encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(raw).map(|s| s.into_owned())
        }
        _ => std::str::from_utf8(raw).ok().map(str::to_owned),
    }
}

/// Bytes for display: decoded in the file's encoding, bad bytes replaced.
fn lossy(raw: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Gbk => encoding_rs::GBK.decode_without_bom_handling(raw).0.into_owned(),
        _ => String::from_utf8_lossy(raw).into_owned(),
    }
}

pub fn shorten(s: &str) -> String {
    if s.chars().count() > 200 { s.chars().take(200).collect::<String>() + "…" } else { s.to_owned() }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    /// The header, the good rows (line, values; `None` for NULL) and the
    /// quarantine of `bytes` read as a file.
    #[allow(clippy::type_complexity)]
    fn read(bytes: &[u8], encoding: Encoding) -> (Vec<String>, Vec<(usize, Vec<Option<String>>)>, Vec<Quarantined>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, bytes).unwrap();
        let mut quarantine = Vec::new();
        let file = match CsvFile::open("f.csv", &path, encoding).unwrap() {
            Ok(Some(file)) => file,
            Ok(None) => return (vec![], vec![], quarantine),
            Err(r) => {
                quarantine.push(Quarantined { place: "f.csv".into(), reason: r.reason, content: r.content });
                return (vec![], vec![], quarantine);
            }
        };
        let mut rows = Vec::new();
        file.for_each(&mut quarantine, |line, cells| {
            let values = cells
                .iter()
                .map(|c| match c {
                    Cell::Text(t) => Some((*t).to_owned()),
                    _ => None,
                })
                .collect();
            rows.push((line, values));
            ControlFlow::Continue(())
        })
        .unwrap();
        (file.header, rows, quarantine)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn rfc4180_quoting_and_newlines() {
        let csv = "id,name,note\r\n1,\"Zhang, San\",\"said \"\"hi\"\"\"\r\n2,李四,\"two\nlines\"\n3,,\"\"\n";
        let (header, rows, q) = read(csv.as_bytes(), Encoding::Auto);
        assert!(q.is_empty(), "{q:?}");
        assert_eq!(header, vec!["id", "name", "note"]);
        assert_eq!(rows[0], (2, vec![s("1"), s("Zhang, San"), s("said \"hi\"")]));
        assert_eq!(rows[1], (3, vec![s("2"), s("李四"), s("two\nlines")]));
        assert_eq!(rows[2], (5, vec![s("3"), None, s("")]));
    }

    /// Found by the property tests (properties.rs): in a file of one
    /// column, a row of empty text (`""`) was skipped as a blank line.
    #[test]
    fn a_quoted_empty_field_alone_is_a_row_not_a_blank_line() {
        let (_, rows, q) = read(b"id\n\"\"\n\n2\r\n\"\"", Encoding::Utf8);
        assert!(q.is_empty(), "{q:?}");
        assert_eq!(rows, vec![(2, vec![s("")]), (4, vec![s("2")]), (5, vec![s("")])]);
    }

    #[test]
    fn bom_and_gbk() {
        let mut utf8 = b"\xEF\xBB\xBF".to_vec();
        utf8.extend_from_slice("证件号码,姓名\n1,卓玛\n".as_bytes());
        let (header, rows, _) = read(&utf8, Encoding::Auto);
        assert_eq!(header, vec!["证件号码", "姓名"]);
        assert_eq!(rows[0].1[1], s("卓玛"));
        let (gbk, _, _) = encoding_rs::GBK.encode("证件号码,姓名\n1,马晓明\n2,\"韩, 撒拉\"\n");
        let (_, rows, q) = read(&gbk, Encoding::Auto);
        assert!(q.is_empty());
        assert_eq!(rows[0].1[1], s("马晓明"));
        assert_eq!(rows[1].1[1], s("韩, 撒拉"));
        // the same bytes read as UTF-8 by configuration: the file is refused, not garbled
        let (_, rows, q) = read(&gbk, Encoding::Utf8);
        assert!(rows.is_empty());
        assert!(q[0].reason.contains("not valid UTF-8"), "{q:?}");
    }

    #[test]
    fn malformed_lines_are_quarantined_and_neighbours_kept() {
        let csv = "id,name\n1,a\n2,b,extra\n3,\"c\"x\n4,d\"e\n5,e\n6,\"never closed\n7,f\n";
        let (_, rows, q) = read(csv.as_bytes(), Encoding::Utf8);
        let ids: Vec<_> = rows.iter().map(|r| r.1[0].clone()).collect();
        assert_eq!(ids, vec![s("1"), s("5")]);
        let reasons: Vec<_> = q.iter().map(|q| (q.place.as_str(), q.reason.as_str())).collect();
        assert_eq!(reasons[0], ("f.csv line 3", "malformed CSV: 3 fields, the header has 2"));
        assert_eq!(reasons[1], ("f.csv line 4", "malformed CSV: text after a closing quote"));
        assert_eq!(reasons[2], ("f.csv line 5", "malformed CSV: a quote inside an unquoted field"));
        assert_eq!(reasons[3], ("f.csv line 7", "malformed CSV: a quoted field is never closed"));
        assert_eq!(q[3].content, "6,\"never closed\n7,f");
    }

    #[test]
    fn bad_headers_refuse_the_file() {
        for (csv, needle) in [
            ("id,na me\n1,2\n", "not a plain identifier"),
            ("id,\"x;DROP\"\n1,2\n", "not a plain identifier"),
            ("id,id\n1,2\n", "appears twice"),
            ("id,\"x\n", "is malformed"),
        ] {
            let (header, rows, q) = read(csv.as_bytes(), Encoding::Utf8);
            assert!(rows.is_empty() && header.is_empty());
            assert!(q[0].reason.contains(needle), "{csv}: {q:?}");
        }
        assert!(read(b"", Encoding::Auto).2.is_empty());
        assert!(read(b"\n\r\n", Encoding::Auto).0.is_empty());
    }

    /// Every way of cutting a file into pieces gives the same records as
    /// reading it whole: records, quotes, CRLF and multi-byte characters
    /// across piece boundaries.
    #[test]
    fn pieces_give_the_same_records_as_the_whole() {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(self.0.len()).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let collect = |input: &mut Records<Trickle<'_>>| {
            let mut out = Vec::new();
            while let Some(r) = input.next().unwrap() {
                out.push(match r {
                    Ok(rec) => Ok((rec.line, rec.fields().map(<[u8]>::to_vec).collect::<Vec<_>>())),
                    Err(bad) => Err((bad.line, bad.reason, bad.raw)),
                });
            }
            out
        };
        let csv = "\u{feff}id,name\r\n1,\"a,\"\"b\"\"\r\nc\"\r\n2,卓玛\r\n3,x\"y\n\n4,\"z\"q\r\n5,\r6\n7,\"open\n8";
        let whole = collect(&mut Records::from_reader(Trickle(csv.as_bytes(), usize::MAX), 0, 1));
        assert_eq!(whole.len(), 8, "{whole:?}");
        for piece in 1..12 {
            assert_eq!(collect(&mut Records::from_reader(Trickle(csv.as_bytes(), piece), 0, 1)), whole, "{piece}");
        }
    }

    /// A file rewritten with another header between opening and reading is
    /// set aside whole, so its rows are not taken for deletions.
    #[test]
    fn a_file_changed_before_it_is_read_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, "id,name\n1,a\n").unwrap();
        let file = CsvFile::open("f.csv", &path, Encoding::Auto).unwrap().ok().flatten().unwrap();
        std::fs::write(&path, "id,name,age\n1,a,3\n").unwrap();
        let mut quarantine = Vec::new();
        let mut rows = 0;
        let rest_set_aside = file
            .for_each(&mut quarantine, |_, _| {
                rows += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
        assert!(rest_set_aside && rows == 0);
        assert!(quarantine[0].reason.contains("changed while it was read"), "{quarantine:?}");
    }

    /// A file still being copied into the folder, which grows while it is
    /// read, is set aside once read: what it did not give yet is not deleted.
    #[test]
    fn a_file_that_grows_while_it_is_read_is_set_aside() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, "id,name\n1,a\n").unwrap();
        let file = CsvFile::open("f.csv", &path, Encoding::Auto).unwrap().ok().flatten().unwrap();
        let (mut quarantine, mut appended) = (Vec::new(), false);
        let rest_set_aside = file
            .for_each(&mut quarantine, |_, _| {
                if !std::mem::replace(&mut appended, true) {
                    let mut more = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
                    more.write_all(b"2,b\n").unwrap();
                }
                ControlFlow::Continue(())
            })
            .unwrap();
        assert!(rest_set_aside, "{quarantine:?}");
        assert!(quarantine[0].reason.contains("still being written"), "{quarantine:?}");
        // left alone, it reads whole
        let file = CsvFile::open("f.csv", &path, Encoding::Auto).unwrap().ok().flatten().unwrap();
        let (mut quarantine, mut rows) = (Vec::new(), 0);
        assert!(
            !file
                .for_each(&mut quarantine, |_, _| {
                    rows += 1;
                    ControlFlow::Continue(())
                })
                .unwrap()
        );
        assert_eq!((rows, quarantine.len()), (2, 0));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 42;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..(x % 80))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"a,\"\r\n\xff\xd6"[(x % 7) as usize]
                })
                .collect();
            let _ = read(&bytes, Encoding::Auto);
        }
    }
}
