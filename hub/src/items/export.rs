//! The consistency report as an XLSX workbook a department opens in Excel
//! or WPS: the deviations (what the province says in one column, what the
//! department says highlighted beside it), the items without a provincial
//! counterpart, the provincial items no lower level lists, and the summary
//! per department.

use gdx_common::items::Consistency;
use rust_xlsxwriter::{Color, Format, FormatBorder, Workbook, Worksheet, XlsxError};

use super::Summary;

/// The sheets' names, in order.
pub const SHEETS: [&str; 4] = ["偏差", "无省级对应事项", "下级未实施", "各部门汇总"];

/// The workbook's bytes.
pub fn workbook(report: &Consistency, summary: &[Summary], title: &str) -> Result<Vec<u8>, String> {
    build(report, summary, title).map_err(|e| format!("the workbook cannot be written: {e}"))
}

fn build(report: &Consistency, summary: &[Summary], title: &str) -> Result<Vec<u8>, XlsxError> {
    let head = Format::new().set_bold().set_background_color(Color::RGB(0xD9E1F2)).set_border(FormatBorder::Thin);
    let cell = Format::new().set_text_wrap().set_border(FormatBorder::Thin);
    let bad = Format::new()
        .set_text_wrap()
        .set_border(FormatBorder::Thin)
        .set_background_color(Color::RGB(0xFFC7CE))
        .set_font_color(Color::RGB(0x9C0006));
    let titled = Format::new().set_bold().set_font_size(14);
    let mut book = Workbook::new();

    let sheet = book.add_worksheet();
    sheet.set_name(SHEETS[0])?;
    sheet.write_string_with_format(0, 0, title, &titled)?;
    header(sheet, &head, &["基本编码", "部门", "不一致的字段", "省级事项", "本级事项"], &[14, 20, 14, 48, 48])?;
    for (i, d) in report.deviations.iter().enumerate() {
        let r = i as u32 + 2;
        sheet.write_string_with_format(r, 0, &d.basic_code, &cell)?;
        sheet.write_string_with_format(r, 1, d.node.to_string(), &cell)?;
        sheet.write_string_with_format(r, 2, &d.field, &cell)?;
        sheet.write_string_with_format(r, 3, fit(&d.province), &cell)?;
        sheet.write_string_with_format(r, 4, fit(&d.theirs), &bad)?;
    }

    for (name, list) in [(SHEETS[1], &report.without_province), (SHEETS[2], &report.not_below)] {
        let sheet = book.add_worksheet();
        sheet.set_name(name)?;
        sheet.write_string_with_format(0, 0, title, &titled)?;
        header(sheet, &head, &["基本编码", "部门", "事项名称", "类别", "实施依据", "层级"], &[14, 20, 30, 14, 48, 18])?;
        for (i, h) in list.iter().enumerate() {
            let r = i as u32 + 2;
            for (c, v) in [
                h.item.basic_code.clone(),
                h.node.to_string(),
                h.item.name.clone(),
                h.item.category.clone(),
                h.item.basis.clone(),
                h.item.levels.label(),
            ]
            .iter()
            .enumerate()
            {
                sheet.write_string_with_format(r, c as u16, fit(v), &cell)?;
            }
        }
    }

    let sheet = book.add_worksheet();
    sheet.set_name(SHEETS[3])?;
    sheet.write_string_with_format(0, 0, title, &titled)?;
    header(sheet, &head, &["部门", "事项数", "与省级比对", "一致", "一致率(%)"], &[20, 10, 12, 10, 12])?;
    for (i, s) in summary.iter().enumerate() {
        let r = i as u32 + 2;
        sheet.write_string_with_format(r, 0, &s.node, &cell)?;
        sheet.write_number_with_format(r, 1, s.items as f64, &cell)?;
        sheet.write_number_with_format(r, 2, s.compared as f64, &cell)?;
        sheet.write_number_with_format(r, 3, s.consistent as f64, &cell)?;
        match s.consistent_pct {
            Some(p) => sheet.write_number_with_format(r, 4, p, if p < 100.0 { &bad } else { &cell })?,
            None => sheet.write_string_with_format(r, 4, "省级基准", &cell)?,
        };
    }
    book.save_to_buffer()
}

/// Excel's limit on a cell's text, with room for the mark of a cut.
const CELL_CHARS: usize = 32_000;

/// `text` cut to what a cell holds.
fn fit(text: &str) -> String {
    match text.char_indices().nth(CELL_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Row 2 of a sheet: the column names, frozen, with the columns' widths.
fn header(sheet: &mut Worksheet, head: &Format, names: &[&str], widths: &[u16]) -> Result<(), XlsxError> {
    for (c, (name, width)) in names.iter().zip(widths).enumerate() {
        sheet.write_string_with_format(1, c as u16, *name, head)?;
        sheet.set_column_width(c as u16, *width)?;
    }
    sheet.set_freeze_panes(2, 0)?;
    Ok(())
}
