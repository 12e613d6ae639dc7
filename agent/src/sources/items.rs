//! 政务服务事项 lists (`[[items]]` in agent.toml): an XLSX workbook as Excel
//! or WPS export it (the first sheet or a named one) or a CSV file (UTF-8
//! or GBK). The header row is found by the names of its fields
//! (`gdx_common::items::FIELDS`), below any title rows, and may continue
//! on the next row under merged cells (责任清单 over 责任事项 and 追责情形).
//! Each row is checked as an item; a row at fault is set aside with its
//! row number and every field's reason, as for data; empty rows are
//! skipped. The rows are read whole (a list holds hundreds of items, not
//! millions) as the columns of [`COLUMNS`], keyed by 基本编码.

use std::path::Path;

use gdx_common::DivisionLevel;
use gdx_common::data::{Column, Value};
use gdx_common::items::{FIELDS, RawItem, field_of_header};

use super::{Quarantined, SourceError};
use crate::config::Encoding;

pub use gdx_common::items::COLUMNS;

/// How many rows from the top the header may be found in.
const HEADER_WITHIN: usize = 20;

/// The rows of one list: (its row number in the file, the values of [`COLUMNS`]).
pub type ItemRows = Vec<(u64, Vec<Value>)>;

/// Reads and checks the list in `file`; `own`: the level of the department
/// keeping it, `department`: its name (for an empty 实施主体).
pub fn read(
    file: &Path,
    sheet: Option<&str>,
    encoding: Encoding,
    own: DivisionLevel,
    department: &str,
) -> Result<(Vec<Column>, ItemRows, Vec<Quarantined>), SourceError> {
    let open_err = |reason: String| SourceError::Open { path: file.display().to_string(), reason };
    if !file.is_file() {
        return Err(open_err("no such file; check file in [[items]] of agent.toml".into()));
    }
    let is_csv = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let grid =
        if is_csv { csv_grid(file, encoding).map_err(open_err)? } else { xlsx_grid(file, sheet).map_err(open_err)? };
    let (fields, data_from) = header(&grid).ok_or_else(|| {
        let required: Vec<&str> = FIELDS.iter().filter(|f| f.2).map(|f| f.0).collect();
        SourceError::Columns(format!(
            "{}: no header row in the first {HEADER_WITHIN} rows names {}; name the columns as the national 清单 does",
            file.display(),
            required.join(", ")
        ))
    })?;
    let mut rows = Vec::new();
    let mut quarantine = Vec::new();
    for (n, cells) in grid.iter().enumerate().skip(data_from) {
        let row_no = n as u64 + 1;
        let mut raw = RawItem::default();
        // two columns of one field (设定依据 and 实施依据): the first that is not empty
        for (col, field) in &fields {
            let value = cells.get(*col).map(String::as_str).unwrap_or_default();
            if !value.trim().is_empty() && raw.get(*field).is_empty() {
                raw.set(*field, value);
            }
        }
        if raw.is_empty() {
            continue;
        }
        let place = format!("row {row_no}");
        let shown = || gdx_agent_shorten(&cells.join(" | "));
        match raw.check(own, department) {
            Err(faults) => quarantine.push(Quarantined { place, reason: faults.join("; "), content: shown() }),
            // a 基本编码 listed twice is set aside by the sync, as any duplicate key
            Ok(item) => {
                let text = |s: String| if s.is_empty() { Value::Null } else { Value::Text(s.into()) };
                rows.push((
                    row_no,
                    vec![
                        Value::Text(item.basic_code.into()),
                        Value::Text(item.name.into()),
                        Value::Text(item.category.into()),
                        Value::Text(item.basis.into()),
                        Value::Text(item.subject.into()),
                        Value::Text(item.levels.label().into()),
                        text(item.time_limit.map(|t| t.label()).unwrap_or_default()),
                        text(item.duties),
                        text(item.accountability),
                    ],
                ));
            }
        }
    }
    let columns = COLUMNS.iter().map(|c| Column { name: (*c).to_owned(), decl_type: "TEXT".into() }).collect();
    Ok((columns, rows, quarantine))
}

fn gdx_agent_shorten(s: &str) -> String {
    super::csv::shorten(s)
}

/// The header: which column holds which field, and the first data row.
/// The row naming the most required fields wins; the next row may name
/// more (a two-row header under merged cells).
fn header(grid: &[Vec<String>]) -> Option<(Vec<(usize, usize)>, usize)> {
    let named = |row: &Vec<String>| -> Vec<(usize, usize)> {
        row.iter().enumerate().filter_map(|(col, cell)| field_of_header(cell).map(|f| (col, f))).collect()
    };
    let required = FIELDS.iter().filter(|f| f.2).count();
    let at = grid.iter().take(HEADER_WITHIN).position(|row| {
        let found = named(row);
        FIELDS.iter().enumerate().filter(|(_, f)| f.2).all(|(i, _)| found.iter().any(|(_, f)| *f == i))
    });
    let at = match at {
        Some(at) => at,
        // the required names may be split over two rows
        None => (0..grid.len().min(HEADER_WITHIN).saturating_sub(1)).find(|&r| {
            let mut found = named(&grid[r]);
            found.extend(named(&grid[r + 1]));
            (0..FIELDS.len()).filter(|i| FIELDS[*i].2 && found.iter().any(|(_, f)| f == i)).count() == required
        })?,
    };
    let mut fields = named(&grid[at]);
    let next: Vec<(usize, usize)> = grid.get(at + 1).map(&named).unwrap_or_default();
    // a second header row names new fields and has nothing under the columns the first row named
    let continues = !next.is_empty()
        && next.iter().all(|(_, f)| fields.iter().all(|(_, g)| g != f))
        && fields.iter().all(|(c, _)| grid[at + 1].get(*c).is_none_or(|v| v.trim().is_empty()));
    if continues {
        fields.extend(next);
    }
    Some((fields, at + 1 + usize::from(continues)))
}

/// Rows and columns of a sheet read at most: a list holds hundreds of
/// items; a stray cell far out must not make the agent allocate the sheet.
const MAX_ROWS: u32 = 100_000;
const MAX_COLUMNS: u32 = 100;

/// Every cell of the sheet as text, streamed (cells past [`MAX_ROWS`] or
/// [`MAX_COLUMNS`] make the file an error); a number without a fraction as
/// an integer (a 基本编码 typed as a number lost its leading zero: it is
/// restored to 10 digits when it has 9).
fn xlsx_grid(file: &Path, sheet: Option<&str>) -> Result<Vec<Vec<String>>, String> {
    use calamine::{DataRef, Reader, Xlsx, open_workbook};
    let mut book: Xlsx<_> =
        open_workbook(file).map_err(|e| format!("not an XLSX workbook Excel or WPS can open ({e})"))?;
    let names = book.sheet_names().to_vec();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| n.as_str() == s)
            .cloned()
            .ok_or_else(|| format!("the workbook has no sheet {s:?}; its sheets are {}", names.join(", ")))?,
        None => names.first().cloned().ok_or("the workbook has no sheet")?,
    };
    let mut cells = book.worksheet_cells_reader(&name).map_err(|e| format!("sheet {name:?} cannot be read ({e})"))?;
    let mut grid: Vec<Vec<String>> = Vec::new();
    while let Some(cell) = cells.next_cell().map_err(|e| format!("sheet {name:?} cannot be read ({e})"))? {
        let (row, col) = cell.get_position();
        if row >= MAX_ROWS || col >= MAX_COLUMNS {
            return Err(format!(
                "sheet {name:?} has a cell at row {} column {}, beyond the {MAX_ROWS} rows and {MAX_COLUMNS} columns a list may use; clear the cells outside the list",
                row + 1,
                col + 1
            ));
        }
        let text = match cell.get_value() {
            DataRef::Empty => continue,
            DataRef::String(s) => s.trim().to_owned(),
            DataRef::SharedString(s) => s.trim().to_owned(),
            DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => padded(*f as i64),
            DataRef::Float(f) => f.to_string(),
            DataRef::Int(i) => padded(*i),
            DataRef::Bool(b) => b.to_string(),
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
            DataRef::DateTime(d) => d.to_string(),
            DataRef::Error(e) => format!("#{e:?}"),
        };
        let (row, col) = (row as usize, col as usize);
        if grid.len() <= row {
            grid.resize(row + 1, Vec::new());
        }
        if grid[row].len() <= col {
            grid[row].resize(col + 1, String::new());
        }
        grid[row][col] = text;
    }
    Ok(grid)
}

/// A whole number as text; 9 digits read as a 基本编码 whose leading 0 was lost.
fn padded(n: i64) -> String {
    if (100_000_000..1_000_000_000).contains(&n) { format!("{n:010}") } else { n.to_string() }
}

/// Every line of the CSV file as cells, in its encoding (UTF-8 or GBK); a
/// quote never closed is an error (the rest of the file would be one cell).
fn csv_grid(file: &Path, encoding: Encoding) -> Result<Vec<Vec<String>>, String> {
    let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(&bytes);
    let text = match (encoding, std::str::from_utf8(bytes)) {
        (Encoding::Utf8, Ok(t)) | (Encoding::Auto, Ok(t)) => t.to_owned(),
        (Encoding::Utf8, Err(_)) => return Err("the file is not UTF-8; set encoding = \"gbk\" or \"auto\"".into()),
        (Encoding::Gbk | Encoding::Auto, _) => {
            let (t, _, bad) = encoding_rs::GBK.decode(bytes);
            if bad {
                return Err("the file is neither UTF-8 nor GBK".into());
            }
            t.into_owned()
        }
    };
    parse_csv(&text)
}

/// RFC 4180 records: quoted fields may hold commas, quotes ("") and line breaks.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err(format!("a quote opened on line {} is never closed", rows.len() + 1));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_with_quotes_and_a_header_below_a_title() {
        let grid = parse_csv(
            "青海省某局权责清单,,,\n事项名称,类别,基本编码,实施依据\n\"食品经营许可\",行政许可,0100101000,\"《食品安全法》第三十五条，第三十六条\"\r\n",
        )
        .unwrap();
        assert!(parse_csv("a,\"b\n").unwrap_err().contains("never closed"));
        assert_eq!(grid.len(), 3);
        assert_eq!(grid[2][3], "《食品安全法》第三十五条，第三十六条");
        let (fields, from) = header(&grid).unwrap();
        assert_eq!((fields.len(), from), (4, 2));
        assert_eq!(padded(100_101_000), "0100101000");
    }

    #[test]
    fn a_header_continued_under_merged_cells() {
        let row = |cells: &[&str]| cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        let grid = vec![
            row(&["权责清单", "", "", "", "", ""]),
            row(&["事项名称", "类别", "基本编码", "实施依据", "责任清单", ""]),
            row(&["", "", "", "", "责任事项", "追责情形"]),
            row(&["食品经营许可", "行政许可", "0100101000", "《食品安全法》第三十五条", "审查", "违法许可"]),
        ];
        let (fields, from) = header(&grid).unwrap();
        assert_eq!(from, 3);
        assert!(fields.contains(&(5, 8)), "追责情形 in column 6: {fields:?}");
    }

    #[test]
    fn a_data_row_with_a_fields_name_in_another_column_is_data() {
        let row = |cells: &[&str]| cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        let grid = vec![
            row(&["事项名称", "类别", "基本编码", "实施依据", "备注"]),
            row(&["食品经营许可", "行政许可", "0100101000", "《食品安全法》第三十五条", "时限"]),
        ];
        let (fields, from) = header(&grid).unwrap();
        assert_eq!((fields.len(), from), (4, 1), "the row below is data, not a second header");
    }
}
