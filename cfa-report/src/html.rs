//! Hand-written HTML: [`esc`] for every value that comes from a log, the page shell
//! (inline CSS, a Content-Security-Policy that forbids every fetch) and small builders.

use std::fmt::Write as _;

/// Escapes text for HTML content and for double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's Content-Security-Policy: nothing may be fetched (no scripts at all,
/// styles inline, images only as `data:`), so a report opens offline as it does online.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const CSS: &str = "\
:root{--ink:#1d2430;--mute:#5b6472;--line:#d9dee5;--bg:#f6f7f9;--card:#fff;\
--ok:#2f855a;--warn:#b7791f;--bad:#c53030;--info:#2b6cb0}\
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--ink);background:var(--bg)}\
header{background:#1d2430;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}\
header p{margin:4px 0 0;color:#c9d1dc;font-size:13px}main{padding:20px 28px;max-width:1200px}\
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 18px;margin:0 0 16px}\
h2{font-size:16px;margin:0 0 10px}h3{font-size:14px;margin:12px 0 6px}\
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 16px;padding:0}\
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:150px;list-style:none}\
.card .k{color:var(--mute);font-size:12px;display:block}.card .v{font-size:22px;font-weight:600;display:block}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}\
th{color:var(--mute);font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}\
.empty{color:var(--mute);font-style:italic;margin:4px 0}\
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;font-size:12px;color:#fff;background:var(--mute)}\
.b-ok{background:var(--ok)}.b-warn{background:var(--warn)}.b-bad{background:var(--bad)}.b-info{background:var(--info)}\
.callout{border-left:4px solid var(--mute);padding:8px 12px;background:#f1f3f6}\
.callout.b-ok{border-color:var(--ok);background:#eef8f2;color:var(--ink)}.callout.b-bad{border-color:var(--bad);background:#fcefef;color:var(--ink)}\
.callout.b-warn{border-color:var(--warn);background:#fdf6ea;color:var(--ink)}\
svg{max-width:100%;height:auto;display:block}svg text{font:11px system-ui,sans-serif;fill:#3c4450}\
footer{color:var(--mute);font-size:12px;padding:0 28px 24px}nav a{color:#c9d1dc;margin-right:12px}";

/// A whole page: `title` (escaped here), the subtitle line (escaped here), the body
/// (already HTML), the footer line (escaped here) and an optional self-refresh.
pub fn page(title: &str, subtitle: &str, body: &str, footer: &str, refresh: Option<u32>) -> String {
    let mut s = String::with_capacity(body.len() + CSS.len() + 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        s,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
    );
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    if let Some(secs) = refresh {
        let _ = writeln!(s, "<meta http-equiv=\"refresh\" content=\"{secs}\">");
    }
    let _ = writeln!(s, "<title>{}</title>", esc(title));
    let _ = writeln!(s, "<style>{CSS}</style>\n</head>\n<body>");
    let _ = writeln!(
        s,
        "<header><h1>{}</h1><p>{}</p></header>\n<main>",
        esc(title),
        esc(subtitle)
    );
    s.push_str(body);
    let _ = writeln!(
        s,
        "</main>\n<footer>{}</footer>\n</body>\n</html>",
        esc(footer)
    );
    s
}

/// `<section id=..><h2>..</h2>` + inner + `</section>`; `id` is a fixed identifier.
pub fn section(id: &str, heading: &str, inner: &str) -> String {
    format!(
        "<section id=\"{}\">\n<h2>{}</h2>\n{inner}</section>\n",
        esc(id),
        esc(heading)
    )
}

/// A "no data" line saying what is missing.
pub fn empty(what: &str) -> String {
    format!(
        "<p class=\"empty\" data-empty=\"true\">No data: {}</p>\n",
        esc(what)
    )
}

/// One summary card whose value is a count tests can read (`data-k`).
pub fn card(key: &str, label: &str, value: &str) -> String {
    format!(
        "<li class=\"card\"><span class=\"k\">{}</span><span class=\"v\" data-k=\"{}\">{}</span></li>\n",
        esc(label),
        esc(key),
        esc(value)
    )
}

/// A row of cards.
pub fn cards(items: &[String]) -> String {
    format!("<ul class=\"cards\">\n{}</ul>\n", items.concat())
}

/// A table cell kind.
pub enum Cell {
    /// Text (escaped).
    Text(String),
    /// Monospace text (escaped).
    Code(String),
    /// A right-aligned number.
    Num(String),
    /// Already-built HTML.
    Html(String),
}

/// A table; `data_table` names it for tests (`data-table`), `row_key` gives each row's
/// `data-key` (escaped).
pub fn table(data_table: &str, head: &[&str], rows: &[(String, Vec<Cell>)]) -> String {
    let mut s = format!("<table data-table=\"{}\">\n<thead><tr>", esc(data_table));
    for (i, h) in head.iter().enumerate() {
        let num = rows
            .first()
            .and_then(|r| r.1.get(i))
            .is_some_and(|c| matches!(c, Cell::Num(_)));
        let _ = write!(
            s,
            "<th{}>{}</th>",
            if num { " class=\"num\"" } else { "" },
            esc(h)
        );
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for (key, cells) in rows {
        let _ = write!(s, "<tr data-key=\"{}\">", esc(key));
        for c in cells {
            match c {
                Cell::Text(t) => {
                    let _ = write!(s, "<td>{}</td>", esc(t));
                }
                Cell::Code(t) => {
                    let _ = write!(s, "<td><code>{}</code></td>", esc(t));
                }
                Cell::Num(t) => {
                    let _ = write!(s, "<td class=\"num\">{}</td>", esc(t));
                }
                Cell::Html(h) => {
                    let _ = write!(s, "<td>{h}</td>");
                }
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

/// The badge class of a decision state or outcome.
pub fn state_class(state: &str) -> &'static str {
    match state {
        "approved"
        | "approve"
        | "published"
        | "promotion_candidate"
        | "active"
        | "ok"
        | "passed"
        | "INTACT" => "b-ok",
        "approved_with_warnings"
        | "replan"
        | "replanned"
        | "watchlist"
        | "partially_committed"
        | "degraded"
        | "candidate" => "b-warn",
        "blocked" | "block" | "rolled_back" | "quarantined" | "demoted" | "deprecated"
        | "retired" | "BROKEN" => "b-bad",
        _ => "b-info",
    }
}

/// A state badge (escaped).
pub fn badge(state: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        state_class(state),
        esc(state)
    )
}

/// A number with at most `decimals` decimals, trailing zeros dropped.
pub fn num(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}
