//! Bar charts drawn as SVG on the server: no script, no library, readable
//! by a screen reader (each chart has a title and a description, and the
//! figures are also in the page's JSON twin).

use super::html::esc;

/// One bar: its label, its value, and an optional second (stacked) value.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub second: f64,
}

/// Colours of the first and second part of a bar (AA contrast on white).
const FIRST: &str = "#0b5cad";
const SECOND: &str = "#a4161a";

/// A horizontal bar chart of `bars`, `legend` naming the two parts.
pub fn hbars(title: &str, bars: &[Bar], legend: Option<(&str, &str)>) -> String {
    let label_w = 150.0;
    let (width, row) = (520.0, 24.0);
    let top = if legend.is_some() { 24.0 } else { 4.0 };
    let height = top + row * bars.len().max(1) as f64 + 8.0;
    let max = bars.iter().map(|b| b.value + b.second).fold(0.0, f64::max).max(1.0);
    let scale = (width - label_w - 60.0) / max;
    let mut svg =
        format!("<svg viewBox=\"0 0 {width} {height}\" width=\"100%\" role=\"img\"><title>{}</title>", esc(title));
    if let Some((a, b)) = legend {
        svg.push_str(&format!(
            "<rect x=\"{label_w}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{FIRST}\"/><text x=\"{}\" y=\"13\">{}</text>\
             <rect x=\"{}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{SECOND}\"/><text x=\"{}\" y=\"13\">{}</text>",
            label_w + 14.0,
            esc(a),
            label_w + 120.0,
            label_w + 134.0,
            esc(b)
        ));
    }
    if bars.is_empty() {
        svg.push_str(&format!("<text x=\"4\" y=\"{}\">–</text>", top + 16.0));
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let (w1, w2) = (b.value * scale, b.second * scale);
        let label: String = b.label.chars().take(14).collect();
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{label_w}\" y=\"{}\" width=\"{w1:.1}\" height=\"16\" fill=\"{FIRST}\"/>",
            label_w - 6.0,
            y + 13.0,
            esc(&label),
            y + 1.0
        ));
        if b.second > 0.0 {
            svg.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{}\" width=\"{w2:.1}\" height=\"16\" fill=\"{SECOND}\"/>",
                label_w + w1,
                y + 1.0
            ));
        }
        let total = b.value + b.second;
        let shown = if total.fract() == 0.0 { format!("{total:.0}") } else { format!("{total:.1}") };
        svg.push_str(&format!("<text x=\"{:.1}\" y=\"{}\">{shown}</text>", label_w + w1 + w2 + 4.0, y + 13.0));
    }
    svg.push_str("</svg>");
    format!("<figure><figcaption>{}</figcaption>{svg}</figure>", esc(title))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let bars = vec![
            Bar { label: "<公安>".into(), value: 10.0, second: 0.0 },
            Bar { label: "民政".into(), value: 5.0, second: 5.0 },
        ];
        let svg = hbars("每日变更", &bars, Some(("a", "b")));
        assert!(svg.contains("&lt;公安&gt;") && !svg.contains("<公安>"));
        // both bars are as long as the longest: 10 in all
        assert_eq!(svg.matches(">10</text>").count(), 2, "{svg}");
        assert!(hbars("空", &[], None).contains("–"));
    }
}
