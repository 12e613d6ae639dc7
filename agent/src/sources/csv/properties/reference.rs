//! The reference the CSV reader is tested against: RFC 4180 as a state
//! machine over the whole input, one byte at a time, with the reader's rules
//! for what is malformed, and the whole file's outcome (header, rows,
//! quarantine) as the reader should give it.

use super::*;

// The reference: RFC 4180 as a state machine over the whole input, one
// byte at a time, with the reader's rules for what is malformed.

/// A record as the reference reads it: the fields with whether each was
/// quoted, or why it is malformed with the bytes set aside.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Rec {
    Good { line: usize, fields: Vec<(Vec<u8>, bool)> },
    Bad { line: usize, reason: String, raw: Vec<u8>, rest_of_file: bool },
}

#[derive(Clone, Copy)]
pub(super) enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the end of the field, or the first
    /// of two.
    QuoteInQuoted,
    /// A carriage return that must be followed by a line feed.
    CarriageReturn,
}

/// The records of a whole file.
pub(super) fn reference(input: &[u8]) -> Vec<Rec> {
    let body = input.strip_prefix(BOM).unwrap_or(input);
    let mut out = Vec::new();
    let mut start = 0;
    while start < body.len() {
        // a record's line: one more than the line feeds before it
        let line = 1 + body[..start].iter().filter(|&&c| c == b'\n').count();
        let (used, rec) = reference_record(&body[start..], line);
        out.push(rec);
        start += used;
    }
    out
}

/// The record at the start of `b` (not empty), and the bytes it takes.
pub(super) fn reference_record(b: &[u8], line: usize) -> (usize, Rec) {
    let shown = |raw: &[u8]| {
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        raw[..raw.len().min(1024)].to_vec()
    };
    // malformed from `at`: set aside up to and with the next line feed
    let bad = |at: usize, reason: &str| {
        let used = b[at..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| at + n + 1);
        (used, Rec::Bad { line, reason: reason.into(), raw: shown(&b[..used]), rest_of_file: false })
    };
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut state = State::FieldStart;
    for (i, &c) in b.iter().enumerate() {
        use State::*;
        let quoted = matches!(state, QuoteInQuoted);
        state = match (state, c) {
            (FieldStart, b'"') => Quoted,
            (Unquoted, b'"') => return bad(i, "a quote inside an unquoted field"),
            (Quoted, b'"') => QuoteInQuoted,
            (Quoted, c) => {
                field.push(c);
                Quoted
            }
            (QuoteInQuoted, b'"') => {
                field.push(b'"');
                Quoted
            }
            (FieldStart | Unquoted | QuoteInQuoted, b',') => {
                fields.push((std::mem::take(&mut field), quoted));
                FieldStart
            }
            (FieldStart | Unquoted | QuoteInQuoted, b'\n') => {
                fields.push((std::mem::take(&mut field), quoted));
                return (i + 1, Rec::Good { line, fields });
            }
            (FieldStart | Unquoted | QuoteInQuoted, b'\r') => {
                fields.push((std::mem::take(&mut field), quoted));
                CarriageReturn
            }
            (QuoteInQuoted, _) => return bad(i, "text after a closing quote"),
            (FieldStart | Unquoted, c) => {
                field.push(c);
                Unquoted
            }
            (CarriageReturn, b'\n') => return (i + 1, Rec::Good { line, fields }),
            (CarriageReturn, _) => return bad(i, "a stray carriage return"),
        };
    }
    match state {
        State::Quoted => {
            let reason = "a quoted field is never closed".into();
            (b.len(), Rec::Bad { line, reason, raw: shown(b), rest_of_file: true })
        }
        State::CarriageReturn => bad(b.len(), "a stray carriage return"),
        State::FieldStart | State::Unquoted | State::QuoteInQuoted => {
            fields.push((field, matches!(state, State::QuoteInQuoted)));
            (b.len(), Rec::Good { line, fields })
        }
    }
}

pub(super) fn is_blank(fields: &[(Vec<u8>, bool)]) -> bool {
    matches!(fields, [(f, false)] if f.is_empty())
}

/// The encoding `auto` should tell (see the module `csv`): UTF-8 when the
/// file is, or only ends inside a character; GBK when all of it is;
/// otherwise UTF-8.
pub(super) fn reference_detect(bytes: &[u8]) -> Encoding {
    match std::str::from_utf8(bytes) {
        Ok(_) => Encoding::Utf8,
        Err(e) if e.error_len().is_none() => Encoding::Utf8,
        Err(_) if encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(bytes).is_some() => {
            Encoding::Gbk
        }
        Err(_) => Encoding::Utf8,
    }
}

pub(super) fn reference_decode(raw: &[u8], encoding: Encoding) -> Option<String> {
    match encoding {
        Encoding::Gbk => encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(raw).map(Cow::into_owned),
        _ => String::from_utf8(raw.to_vec()).ok(),
    }
}

pub(super) fn enc_name(encoding: Encoding) -> &'static str {
    if encoding == Encoding::Gbk { "GBK" } else { "UTF-8" }
}

/// What reading a file gives: its header (`None`: there is none;
/// `Some(None)`: the file is set aside whole), its good rows (line, cells,
/// `None` for NULL), the rows set aside (place, reason), and whether the
/// rest of the file was set aside.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Outcome {
    pub(super) header: Option<Option<Vec<String>>>,
    pub(super) rows: Vec<(usize, Vec<Option<String>>)>,
    pub(super) quarantine: Vec<(String, String)>,
    pub(super) rest_set_aside: bool,
}

/// What [`CsvFile`] should make of `bytes` named `f.csv`, in `encoding`
/// (already told from `auto`).
pub(super) fn reference_read(bytes: &[u8], encoding: Encoding) -> Outcome {
    let mut records = reference(bytes).into_iter();
    let set_aside = Outcome { header: Some(None), ..Outcome::default() };
    let header = loop {
        match records.next() {
            None => return Outcome::default(),
            Some(Rec::Bad { .. }) => return set_aside,
            Some(Rec::Good { fields, .. }) if is_blank(&fields) => continue,
            Some(Rec::Good { fields, .. }) => {
                let names: Option<Vec<String>> =
                    fields.iter().map(|(f, _)| reference_decode(f, encoding).map(|n| n.trim().to_owned())).collect();
                let Some(names) = names else { return set_aside };
                let lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
                let unique = lower.iter().enumerate().all(|(i, n)| !lower[..i].contains(n));
                if !unique || names.iter().any(|n| check_column_name(n).is_err()) {
                    return set_aside;
                }
                break names;
            }
        }
    };
    let width = header.len();
    let mut out = Outcome { header: Some(Some(header)), ..Outcome::default() };
    for rec in records {
        match rec {
            Rec::Bad { line, reason, rest_of_file, .. } => {
                out.quarantine.push((format!("f.csv line {line}"), format!("malformed CSV: {reason}")));
                if rest_of_file {
                    out.rest_set_aside = true;
                    break;
                }
            }
            Rec::Good { fields, .. } if is_blank(&fields) => {}
            Rec::Good { line, fields } if fields.len() != width => {
                let reason = format!("malformed CSV: {} fields, the header has {width}", fields.len());
                out.quarantine.push((format!("f.csv line {line}"), reason));
            }
            Rec::Good { line, fields } => {
                let cells: Option<Vec<Option<String>>> = fields
                    .iter()
                    .map(|(f, quoted)| match (f.is_empty(), quoted) {
                        (true, false) => Some(None),
                        _ => reference_decode(f, encoding).map(Some),
                    })
                    .collect();
                match cells {
                    Some(cells) => out.rows.push((line, cells)),
                    None => {
                        let reason =
                            format!("bytes that are not valid {}; save the file as UTF-8 or GBK", enc_name(encoding));
                        out.quarantine.push((format!("f.csv line {line}"), reason));
                    }
                }
            }
        }
    }
    out
}
