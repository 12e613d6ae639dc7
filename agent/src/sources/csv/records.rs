//! RFC 4180 records over a file read a piece at a time: [`Records`] asks
//! for more bytes when a record runs past the bytes at hand, and starts the
//! record again once they are there; a long record grows the pieces.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::{CHUNK, MAX_RECORD_BYTES};

/// One record: its first line and its fields (bytes, with whether each was
/// quoted), held in buffers reused from record to record.
pub(super) struct Record<'a> {
    pub(super) line: usize,
    pub(super) bytes: &'a [u8],
    /// (end in `bytes`, quoted) of each field
    pub(super) ends: &'a [(usize, bool)],
}

impl Record<'_> {
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn fields(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&(end, _)| {
            let f = &self.bytes[start..end];
            start = end;
            f
        })
    }

    pub(super) fn quoted(&self) -> impl Iterator<Item = bool> + '_ {
        self.ends.iter().map(|&(_, q)| q)
    }

    /// An empty line; `""` alone is not one, but a row of empty text.
    pub(super) fn is_blank(&self) -> bool {
        self.ends == [(0, false)]
    }
}

/// A record that is not well-formed CSV: its first line, why, the raw
/// bytes skipped, and whether they are the rest of the file.
pub(super) struct Bad {
    pub(super) line: usize,
    pub(super) reason: String,
    pub(super) raw: Vec<u8>,
    pub(super) rest_of_file: bool,
}

/// What parsing the bytes at hand gave.
pub(super) enum Parsed {
    /// A record (or a bad one) that used this many bytes and newlines.
    Record {
        used: usize,
        newlines: usize,
        bad: Option<(String, bool)>,
    },
    /// The bytes at hand end inside a record: read more.
    NeedMore,
    End,
}

/// RFC 4180 records over a file, read a piece at a time.
pub(super) struct Records<R> {
    pub(super) input: R,
    pub(super) buf: Vec<u8>,
    /// Start of the unparsed bytes in `buf`.
    pub(super) pos: usize,
    pub(super) eof: bool,
    /// Byte offset in the file of `buf[pos]`, and its line number.
    pub(super) offset: u64,
    pub(super) line: usize,
    pub(super) fields: Vec<u8>,
    pub(super) ends: Vec<(usize, bool)>,
    /// Skip a UTF-8 byte order mark at the start of the file.
    pub(super) at_start: bool,
}

impl<'f> Records<&'f File> {
    pub(super) fn new(file: &'f File, offset: u64, line: usize) -> std::io::Result<Self> {
        let mut input = file;
        input.seek(SeekFrom::Start(offset))?;
        Ok(Self::from_reader(input, offset, line))
    }
}

impl<R: Read> Records<R> {
    pub(super) fn from_reader(input: R, offset: u64, line: usize) -> Self {
        let at_start = offset == 0;
        Self {
            input,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            offset,
            line,
            fields: Vec::new(),
            ends: Vec::new(),
            at_start,
        }
    }

    /// The next record, a bad one, or `None` at the end of the file.
    pub(super) fn next(&mut self) -> std::io::Result<Option<Result<Record<'_>, Bad>>> {
        loop {
            if self.at_start && (self.buf.len() - self.pos >= 3 || self.eof) {
                self.at_start = false;
                if self.buf[self.pos..].starts_with(b"\xEF\xBB\xBF") {
                    self.pos += 3;
                    self.offset += 3;
                }
            }
            let parsed = if self.at_start {
                Parsed::NeedMore
            } else {
                parse_record(&self.buf[self.pos..], self.eof, &mut self.fields, &mut self.ends)
            };
            match parsed {
                Parsed::End => return Ok(None),
                Parsed::NeedMore if self.buf.len() - self.pos > MAX_RECORD_BYTES => {
                    let bad = Bad {
                        line: self.line,
                        reason: format!(
                            "a record runs past {} MiB (a quoted field never closed?); the rest of the file is set aside",
                            MAX_RECORD_BYTES >> 20
                        ),
                        raw: self.buf[self.pos..self.pos + 400].to_vec(),
                        rest_of_file: true,
                    };
                    self.eof = true;
                    self.pos = self.buf.len();
                    return Ok(Some(Err(bad)));
                }
                Parsed::NeedMore => self.fill()?,
                Parsed::Record { used, newlines, bad } => {
                    let line = self.line;
                    let raw = &self.buf[self.pos..self.pos + used];
                    self.pos += used;
                    self.offset += used as u64;
                    self.line += newlines;
                    return Ok(Some(match bad {
                        None => Ok(Record { line, bytes: &self.fields, ends: &self.ends }),
                        Some((reason, rest_of_file)) => {
                            // enough to show (a quote never closed takes the rest of the file)
                            let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
                            let raw = raw[..raw.len().min(1024)].to_vec();
                            Err(Bad { line, reason, raw, rest_of_file })
                        }
                    }));
                }
            }
        }
    }

    /// Reads the next piece, dropping the bytes already parsed.
    fn fill(&mut self) -> std::io::Result<()> {
        self.buf.drain(..self.pos);
        self.pos = 0;
        // a record longer than a piece grows the pieces, so it is parsed
        // again a logarithmic number of times, not once per 64 KiB
        let have = self.buf.len();
        self.buf.resize(have + CHUNK.max(have), 0);
        let n = loop {
            match self.input.read(&mut self.buf[have..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        self.buf.truncate(have + n);
        self.eof = n == 0;
        Ok(())
    }
}

/// Parses one record at the start of `b` into `fields` and `ends`. `eof`:
/// `b` runs to the end of the file; otherwise running out of bytes asks
/// for more.
pub(super) fn parse_record(b: &[u8], eof: bool, fields: &mut Vec<u8>, ends: &mut Vec<(usize, bool)>) -> Parsed {
    if b.is_empty() {
        return if eof { Parsed::End } else { Parsed::NeedMore };
    }
    fields.clear();
    ends.clear();
    let (mut i, mut newlines) = (0, 0);
    // the rest of the line, set aside with `reason`
    let skip_line = |i: usize, newlines: usize, reason: &str| match b[i..].iter().position(|&c| c == b'\n') {
        Some(n) => Parsed::Record { used: i + n + 1, newlines: newlines + 1, bad: Some((reason.into(), false)) },
        None if eof => Parsed::Record { used: b.len(), newlines, bad: Some((reason.into(), false)) },
        None => Parsed::NeedMore,
    };
    loop {
        let quoted = match b.get(i) {
            Some(&c) => c == b'"',
            None if eof => false,
            None => return Parsed::NeedMore,
        };
        if quoted {
            i += 1;
            loop {
                match b.get(i) {
                    None if eof => {
                        let reason = "a quoted field is never closed".to_owned();
                        return Parsed::Record { used: b.len(), newlines, bad: Some((reason, true)) };
                    }
                    None => return Parsed::NeedMore,
                    Some(b'"') => match b.get(i + 1) {
                        Some(b'"') => {
                            fields.push(b'"');
                            i += 2;
                        }
                        None if !eof => return Parsed::NeedMore,
                        _ => {
                            i += 1;
                            break;
                        }
                    },
                    Some(&c) => {
                        if c == b'\n' {
                            newlines += 1;
                        }
                        fields.push(c);
                        i += 1;
                    }
                }
            }
            match b.get(i) {
                None | Some(b',' | b'\n' | b'\r') => {}
                Some(_) => return skip_line(i, newlines, "text after a closing quote"),
            }
        } else {
            while let Some(&c) = b.get(i) {
                if c == b',' || c == b'\n' || c == b'\r' {
                    break;
                }
                if c == b'"' {
                    return skip_line(i, newlines, "a quote inside an unquoted field");
                }
                fields.push(c);
                i += 1;
            }
        }
        ends.push((fields.len(), quoted));
        match b.get(i) {
            None if eof => return Parsed::Record { used: i, newlines, bad: None },
            None => return Parsed::NeedMore,
            Some(b',') => i += 1,
            Some(b'\n') => return Parsed::Record { used: i + 1, newlines: newlines + 1, bad: None },
            Some(b'\r') => match b.get(i + 1) {
                Some(b'\n') => return Parsed::Record { used: i + 2, newlines: newlines + 1, bad: None },
                None if !eof => return Parsed::NeedMore,
                _ => return skip_line(i, newlines, "a stray carriage return"),
            },
            Some(_) => unreachable!("a field ends at a comma, a line end or the end"),
        }
    }
}
