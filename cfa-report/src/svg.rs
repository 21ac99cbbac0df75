//! Inline SVG charts drawn by hand: stacked bars per day, horizontal bars, and lines
//! over days. Every label is escaped; colours come from a fixed palette, never from
//! the data.

use crate::html::esc;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The series palette (colour-blind friendly).
const PALETTE: [&str; 8] = [
    "#2f855a", "#b7791f", "#c53030", "#2b6cb0", "#6b46c1", "#319795", "#d53f8c", "#718096",
];

/// The fixed colour of a known outcome, else the palette's `i`-th.
fn colour(series: &str, i: usize) -> &'static str {
    match series {
        "approve" | "approved" | "IFo" => "#2f855a",
        "replan" | "approved_with_warnings" | "IFs" => "#b7791f",
        "block" | "blocked" | "IFg" => "#c53030",
        "IDI" => "#2b6cb0",
        _ => PALETTE.get(i % PALETTE.len()).copied().unwrap_or("#718096"),
    }
}

fn legend(s: &mut String, series: &[String], x0: f64, y: f64) {
    let mut x = x0;
    for (i, name) in series.iter().enumerate() {
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y - 9.0,
            colour(name, i),
            x + 14.0,
            y,
            esc(name)
        );
        x += 24.0 + 6.5 * name.chars().count() as f64;
    }
}

/// Stacked bars, one per day (`YYYY-MM-DD` keys, in order), one colour per series.
pub fn stacked_days(title: &str, days: &BTreeMap<String, BTreeMap<String, u64>>) -> String {
    let mut series: Vec<String> = days.values().flat_map(|m| m.keys().cloned()).collect();
    series.sort();
    series.dedup();
    let (w, h, left, top, bottom) = (680.0_f64, 240.0_f64, 40.0_f64, 28.0_f64, 36.0_f64);
    let plot_h = h - top - bottom;
    let max = days
        .values()
        .map(|m| m.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = days.len().max(1) as f64;
    let slot = (w - left - 10.0) / n;
    let bar = (slot * 0.7).clamp(2.0, 40.0);
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" data-chart=\"stacked\"><title>{}</title>",
        esc(title)
    );
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#9aa3ae\"/>",
        h - bottom,
        w - 10.0,
        h - bottom
    );
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text>",
        left - 4.0,
        top + 4.0,
        max as u64,
        left - 4.0,
        h - bottom
    );
    for (i, (d, m)) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = h - bottom;
        for (si, name) in series.iter().enumerate() {
            let v = m.get(name).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let bh = plot_h * v as f64 / max;
            y -= bh;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}: {v}</title></rect>",
                colour(name, si),
                esc(d),
                esc(name)
            );
        }
        let label_every = (days.len() / 8).max(1);
        if i % label_every == 0 || i + 1 == days.len() {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                h - bottom + 14.0,
                esc(d.get(5..).unwrap_or(d))
            );
        }
    }
    legend(&mut s, &series, left, 14.0);
    s.push_str("</svg>\n");
    s
}

/// Horizontal bars, one per item, longest first as given.
pub fn hbars(title: &str, items: &[(String, u64)]) -> String {
    let row = 22.0_f64;
    let label_w = 330.0_f64;
    let w = 680.0_f64;
    let h = row * items.len() as f64 + 10.0;
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1) as f64;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" data-chart=\"hbars\"><title>{}</title>",
        esc(title)
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let bw = (w - label_w - 50.0) * *v as f64 / max;
        let shown: String = label.chars().take(52).collect();
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{label_w}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {v}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{v}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(&shown),
            y + 3.0,
            row - 6.0,
            colour("", 3),
            esc(label),
            label_w + bw + 4.0,
            y + 14.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Lines in `[0, 1]` over `x_labels`; each series is `(name, points)` with points
/// `(x index, value)`, drawn as a polyline with dots.
pub fn unit_lines(
    title: &str,
    x_labels: &[String],
    series: &[(String, Vec<(usize, f64)>)],
) -> String {
    let (w, h, left, top, bottom) = (680.0_f64, 200.0_f64, 40.0_f64, 26.0_f64, 30.0_f64);
    let plot_h = h - top - bottom;
    let n = x_labels.len().max(2) as f64 - 1.0;
    let px = |i: usize| left + (w - left - 16.0) * i as f64 / n;
    let py = |v: f64| top + plot_h * (1.0 - v.clamp(0.0, 1.0));
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" data-chart=\"lines\"><title>{}</title>",
        esc(title)
    );
    for v in [0.0, 0.5, 1.0] {
        let _ = write!(
            s,
            "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e2e6eb\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v:.1}</text>",
            py(v),
            w - 16.0,
            py(v),
            left - 4.0,
            py(v) + 4.0
        );
    }
    let every = (x_labels.len() / 8).max(1);
    for (i, l) in x_labels.iter().enumerate() {
        if i % every == 0 || i + 1 == x_labels.len() {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                px(i),
                h - bottom + 16.0,
                esc(l.get(5..).unwrap_or(l))
            );
        }
    }
    let names: Vec<String> = series.iter().map(|x| x.0.clone()).collect();
    for (si, (name, pts)) in series.iter().enumerate() {
        let c = colour(name, si);
        let path: Vec<String> = pts
            .iter()
            .map(|(i, v)| format!("{:.1},{:.1}", px(*i), py(*v)))
            .collect();
        if path.len() > 1 {
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
        }
        for (i, v) in pts {
            let label = x_labels.get(*i).map(String::as_str).unwrap_or_default();
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"><title>{} {}: {v:.3}</title></circle>",
                px(*i),
                py(*v),
                esc(label),
                esc(name)
            );
        }
    }
    legend(&mut s, &names, left, 14.0);
    s.push_str("</svg>\n");
    s
}
