//! Plain-text tables for terminals, aligned by display width: Chinese (and
//! other East Asian wide) characters take two columns, everything else one,
//! Tibetan and Mongolian script included. Every listing of the hub and the
//! agent goes through [`render`].

/// Columns aligned, two spaces apart; trailing spaces trimmed. A row's last
/// cell is never padded, so it does not widen its column: a short row can
/// end in a long text (a purpose, a reason) without pushing the table apart.
pub fn render(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter(|r| c + 1 < r.len()).map(|r| display_width(&r[c])).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - display_width(cell) + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Columns a text takes in a terminal.
pub fn display_width(s: &str) -> usize {
    s.chars().map(|c| if wide(c) { 2 } else { 1 }).sum()
}

/// East Asian Wide and Fullwidth characters (Unicode UAX #11), by block.
fn wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F          // Hangul Jamo
        | 0x2E80..=0x303E        // CJK radicals, Kangxi, CJK symbols and punctuation
        | 0x3041..=0x33FF        // kana, bopomofo, CJK compatibility
        | 0x3400..=0x4DBF        // CJK extension A
        | 0x4E00..=0x9FFF        // CJK unified ideographs
        | 0xA000..=0xA4CF        // Yi
        | 0xAC00..=0xD7A3        // Hangul syllables
        | 0xF900..=0xFAFF        // CJK compatibility ideographs
        | 0xFE30..=0xFE4F        // CJK compatibility forms
        | 0xFF00..=0xFF60        // fullwidth forms
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x3FFFD      // CJK extensions B and later
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        for (s, w) in [
            ("abc", 3),
            ("同德县", 6),
            ("（全角）", 8),
            ("卓玛 — 低保", 11),
            ("བོད་", 4),    // Tibetan is narrow
            ("ᠮᠣᠩᠭᠣᠯ", 6), // so is Mongolian
            ("…", 1),
            ("", 0),
        ] {
            assert_eq!(display_width(s), w, "{s}");
        }
    }

    #[test]
    fn columns_align_with_chinese_and_a_last_cell_is_free() {
        let t = render(&[
            vec!["ID".into(), "NAME".into(), "N".into()],
            vec!["a".into(), "同德县".into(), "1".into()],
            vec!["".into(), "a purpose far longer than any column above".into()],
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines, ["ID  NAME    N", "a   同德县  1", "    a purpose far longer than any column above"]);
        assert_eq!(render(&[]), "");
    }
}
