//! The five pages. Each shows what its data says and, for every section without data,
//! says what is missing.

use crate::data::{BundleInfo, LifecycleData, LogData, Signature};
use crate::html::{self, Cell, badge, card, cards, empty, esc, num, section, table};
use crate::summary::{Run, Summary, day, event_time, sorted_desc};
use crate::svg;
use cfa_lifecycle::IndexCalculator;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What every page is built from.
pub(crate) struct Ctx<'a> {
    pub log: Option<&'a LogData>,
    pub lifecycle: Option<&'a LifecycleData>,
    pub bundle: Option<&'a BundleInfo>,
    pub summary: Summary,
    pub now: Option<Timestamp>,
    pub period_days: u32,
    pub index_window_days: u32,
}

impl Ctx<'_> {
    fn period_text(&self) -> String {
        match self.now {
            Some(_) => format!("the last {} days", self.period_days),
            None => "the log".into(),
        }
    }

    fn no_log(&self) -> Option<String> {
        self.log.is_none().then(|| {
            empty("no audit log was given (--audit-file or --db, or the config's storage)")
        })
    }
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

fn hash_html(h: &str) -> String {
    format!("<code title=\"{}\">{}</code>", esc(h), esc(short(h)))
}

fn opt_num(x: Option<f64>, d: usize) -> String {
    x.map_or_else(|| "—".into(), |v| num(v, d))
}

fn count_table(name: &str, head: &str, m: &[(String, u64)]) -> String {
    let rows: Vec<(String, Vec<Cell>)> = m
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                vec![Cell::Code(k.clone()), Cell::Num(v.to_string())],
            )
        })
        .collect();
    table(name, &[head, "count"], &rows)
}

fn map_pairs(m: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    m.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

// ---- shared sections ----------------------------------------------------------------

fn decisions_section(c: &Ctx<'_>) -> String {
    if let Some(e) = c.no_log() {
        return section("decisions", "Decisions", &e);
    }
    let s = &c.summary;
    let mut inner = String::new();
    if s.policy_outcomes.is_empty() {
        inner.push_str(&empty(&format!(
            "no policy_evaluation events in {}",
            c.period_text()
        )));
    } else {
        inner.push_str("<h3>Policy evaluations by outcome</h3>\n");
        inner.push_str(&count_table(
            "policy-outcomes",
            "outcome",
            &map_pairs(&s.policy_outcomes),
        ));
        if s.outcomes_per_day.is_empty() {
            inner.push_str(&empty("no dated policy evaluations to plot"));
        } else {
            inner.push_str("<h3>Per day (UTC)</h3>\n");
            inner.push_str(&svg::stacked_days(
                "Policy evaluations per day by outcome",
                &s.outcomes_per_day,
            ));
        }
    }
    if s.final_states.is_empty() {
        inner.push_str(&empty(&format!(
            "no final_decision events in {}",
            c.period_text()
        )));
    } else {
        inner.push_str("<h3>Final decisions by state</h3>\n");
        inner.push_str(&count_table(
            "final-states",
            "state",
            &map_pairs(&s.final_states),
        ));
    }
    section("decisions", "Decisions", &inner)
}

fn rule_name(c: &Ctx<'_>, code: &str) -> String {
    c.bundle
        .and_then(|b| b.rule_for(code))
        .map_or_else(|| "—".into(), |r| r.name.clone())
}

fn rules_section(c: &Ctx<'_>, with_time: bool) -> String {
    if let Some(e) = c.no_log() {
        return section("rules", "Rule hits", &e);
    }
    let s = &c.summary;
    if s.rule_hits.is_empty() {
        return section(
            "rules",
            "Rule hits",
            &empty(&format!(
                "no policy evaluation raised a fault in {}",
                c.period_text()
            )),
        );
    }
    let hits = sorted_desc(s.rule_hits.clone());
    let rows: Vec<(String, Vec<Cell>)> = hits
        .iter()
        .map(|(code, n)| {
            let action = c
                .bundle
                .and_then(|b| b.rule_for(code))
                .map_or_else(|| "—".into(), |r| r.action.clone());
            (
                code.clone(),
                vec![
                    Cell::Code(code.clone()),
                    Cell::Text(rule_name(c, code)),
                    Cell::Text(action),
                    Cell::Num(n.to_string()),
                ],
            )
        })
        .collect();
    let mut inner = String::new();
    if c.bundle.is_none() {
        inner.push_str(
            "<p class=\"empty\">Rule names need a policy bundle (--policy-bundle).</p>\n",
        );
    }
    inner.push_str(&svg::hbars("Rule hits by fault code", &hits));
    inner.push_str(&table(
        "rule-hits",
        &["fault code", "rule", "action", "hits"],
        &rows,
    ));
    if with_time && !s.rules_per_day.is_empty() {
        inner.push_str("<h3>Rule hits per day (UTC)</h3>\n");
        inner.push_str(&svg::stacked_days(
            "Rule hits per day by fault code",
            &s.rules_per_day,
        ));
    }
    section("rules", "Rule hits", &inner)
}

fn replans_section(c: &Ctx<'_>) -> String {
    if let Some(e) = c.no_log() {
        return section("replans", "Replan loops", &e);
    }
    let runs: Vec<&Run> = c.summary.replanned_runs().collect();
    if runs.is_empty() {
        return section(
            "replans",
            "Replan loops",
            &empty(&format!("no run was replanned in {}", c.period_text())),
        );
    }
    let rows: Vec<(String, Vec<Cell>)> = runs
        .iter()
        .map(|r| {
            (
                r.intent_id.clone(),
                vec![
                    Cell::Code(r.intent_id.clone()),
                    Cell::Num(r.replans.to_string()),
                    Cell::Text(r.policy_outcomes.join(" → ")),
                    Cell::Html(badge(&r.state())),
                ],
            )
        })
        .collect();
    section(
        "replans",
        "Replan loops",
        &table(
            "replans",
            &["intent", "replans", "policy outcomes", "state"],
            &rows,
        ),
    )
}

fn blocked_section(c: &Ctx<'_>) -> String {
    if let Some(e) = c.no_log() {
        return section("blocked", "Blocked reasons", &e);
    }
    let reasons = c.summary.blocked_reasons();
    if reasons.is_empty() {
        return section(
            "blocked",
            "Blocked reasons",
            &empty(&format!("no run was blocked in {}", c.period_text())),
        );
    }
    let rows: Vec<(String, Vec<Cell>)> = reasons
        .iter()
        .map(|(r, n)| {
            (
                r.clone(),
                vec![Cell::Text(r.clone()), Cell::Num(n.to_string())],
            )
        })
        .collect();
    section(
        "blocked",
        "Blocked reasons",
        &table("blocked-reasons", &["reason", "runs"], &rows),
    )
}

fn pii_section(c: &Ctx<'_>) -> String {
    if let Some(e) = c.no_log() {
        return section("pii", "PII incidents", &e);
    }
    let runs: Vec<&Run> = c.summary.pii_runs().collect();
    if runs.is_empty() {
        return section(
            "pii",
            "PII incidents",
            &empty(&format!("no run raised a PII fault in {}", c.period_text())),
        );
    }
    let rows: Vec<(String, Vec<Cell>)> = runs
        .iter()
        .map(|r| {
            (
                r.intent_id.clone(),
                vec![
                    Cell::Text(
                        r.first
                            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_default(),
                    ),
                    Cell::Code(r.intent_id.clone()),
                    Cell::Code(r.pii_codes().join(", ")),
                    Cell::Html(badge(&r.state())),
                ],
            )
        })
        .collect();
    section(
        "pii",
        "PII incidents",
        &table(
            "pii-incidents",
            &["time (UTC)", "intent", "PII faults", "state"],
            &rows,
        ),
    )
}

fn runs_section(c: &Ctx<'_>, limit: usize) -> String {
    if let Some(e) = c.no_log() {
        return section("runs", "Runs", &e);
    }
    let runs = &c.summary.runs;
    if runs.is_empty() {
        return section(
            "runs",
            "Runs",
            &empty(&format!("no events in {}", c.period_text())),
        );
    }
    let rows: Vec<(String, Vec<Cell>)> = runs
        .iter()
        .rev()
        .take(limit)
        .map(|r| {
            let sb = r.sandbox.clone().unwrap_or_default();
            let has = r.sandbox.is_some();
            let dash = |s: String| if has { s } else { "—".into() };
            (
                r.intent_id.clone(),
                vec![
                    Cell::Text(
                        r.last
                            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_default(),
                    ),
                    Cell::Code(r.intent_id.clone()),
                    Cell::Html(badge(&r.state())),
                    Cell::Num(r.replans.to_string()),
                    Cell::Num(r.faults.len().to_string()),
                    Cell::Text(dash(sb.sandbox.clone())),
                    Cell::Text(dash(sb.publish_state.clone())),
                    Cell::Num(opt_num(sb.rows_output, 0)),
                    Cell::Num(opt_num(sb.cost_dbu, 2)),
                    Cell::Num(opt_num(sb.duration_seconds, 2)),
                    Cell::Num(sb.retries.map_or_else(|| "—".into(), |n| n.to_string())),
                ],
            )
        })
        .collect();
    let mut inner = String::new();
    if runs.len() > limit {
        let _ = writeln!(inner, "<p>The latest {limit} of {} runs.</p>", runs.len());
    }
    inner.push_str(&table(
        "runs",
        &[
            "last event (UTC)",
            "intent",
            "state",
            "replans",
            "faults",
            "sandbox",
            "publish",
            "rows",
            "cost DBU",
            "duration s",
            "retries",
        ],
        &rows,
    ));
    section("runs", "Runs and sandbox metrics", &inner)
}

fn integrity_section(c: &Ctx<'_>) -> String {
    let Some(log) = c.log else {
        return section(
            "integrity",
            "Chain integrity",
            &c.no_log().unwrap_or_default(),
        );
    };
    let i = &log.integrity;
    let status = if i.first_bad.is_none() {
        "INTACT"
    } else {
        "BROKEN"
    };
    let mut inner = format!(
        "<p class=\"callout {}\">Chain <strong data-k=\"chain_status\">{status}</strong>: <span data-k=\"chain_events\">{}</span> events verified in {}.</p>\n",
        html::state_class(status),
        i.events,
        esc(&log.source)
    );
    match &i.first_bad {
        Some(b) => {
            let _ = writeln!(
                inner,
                "<p>First bad event: index <strong data-k=\"first_bad_index\">{}</strong> (line {}): <span data-k=\"first_bad_reason\">{}</span></p>",
                b.index,
                b.line,
                esc(&b.reason)
            );
        }
        None => {
            let _ = writeln!(
                inner,
                "<p>Tail hash: <code data-k=\"tail_hash\">{}</code></p>",
                esc(&i.tail_hash)
            );
        }
    }
    if let Some(e) = &log.read_error {
        let _ = writeln!(
            inner,
            "<p class=\"callout b-bad\">Reading stopped early: {}</p>",
            esc(e)
        );
    }
    inner.push_str("<h3>Last checkpoint</h3>\n");
    match &i.checkpoint {
        None => inner.push_str(&empty(
            "no checkpoint was given or found beside the log (<log>.checkpoint); sign one with `cfa audit checkpoint`",
        )),
        Some(cp) => {
            let sig = match cp.signature {
                Signature::Verified => "signature verified",
                Signature::NotChecked => "signature NOT checked (no --pubkey)",
            };
            let state = match &cp.problem {
                None if cp.signature == Signature::Verified => "the log extends it (consistency proof checked)".to_owned(),
                None => "the log is at least as long (consistency not proven without the key)".to_owned(),
                Some(p) => format!("PROBLEM: {p}"),
            };
            let rows = vec![
                ("file".to_owned(), vec![Cell::Text("file".into()), Cell::Code(cp.file.clone())]),
                ("origin".to_owned(), vec![Cell::Text("origin".into()), Cell::Code(cp.origin.clone())]),
                ("size".to_owned(), vec![Cell::Text("size".into()), Cell::Code(cp.size.to_string())]),
                ("root".to_owned(), vec![Cell::Text("root".into()), Cell::Code(cp.root_hex.clone())]),
                ("signature".to_owned(), vec![Cell::Text("signature".into()), Cell::Text(sig.into())]),
                ("status".to_owned(), vec![Cell::Text("status".into()), Cell::Text(state)]),
            ];
            inner.push_str(&table("checkpoint", &["", ""], &rows));
        }
    }
    section("integrity", "Chain integrity", &inner)
}

fn overview_cards(c: &Ctx<'_>) -> String {
    let s = &c.summary;
    let outcome = |k: &str| s.policy_outcomes.get(k).copied().unwrap_or(0).to_string();
    let mut items = vec![
        card("events_total", "events", &s.events.len().to_string()),
        card("runs_total", "runs", &s.runs.len().to_string()),
        card("approve", "policy approve", &outcome("approve")),
        card("replan", "policy replan", &outcome("replan")),
        card("block", "policy block", &outcome("block")),
        card(
            "blocked_runs",
            "blocked runs",
            &s.blocked_runs().count().to_string(),
        ),
        card(
            "pii_incidents",
            "PII incidents",
            &s.pii_runs().count().to_string(),
        ),
        card(
            "replans_total",
            "replans",
            &s.runs.iter().map(|r| r.replans).sum::<u64>().to_string(),
        ),
    ];
    if let Some(log) = c.log {
        let st = if log.integrity.intact() {
            "INTACT"
        } else {
            "BROKEN"
        };
        items.push(card("chain", "chain", st));
    }
    cards(&items)
}

fn footer(c: &Ctx<'_>) -> String {
    let at = c.now.map_or_else(
        || "— (no dated data)".into(),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    );
    let mut f = format!(
        "cfa-report {} · generated at {at}",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(l) = c.log {
        let _ = write!(f, " · audit log {}", l.source);
    }
    if let Some(l) = c.lifecycle {
        let _ = write!(f, " · lifecycle {}", l.source);
    }
    if let Some(b) = c.bundle {
        let _ = write!(f, " · policy bundle {}", b.version);
    }
    f
}

fn subtitle(c: &Ctx<'_>) -> String {
    let source = c.log.map_or("no audit log", |l| l.source.as_str());
    format!("{source} · {}", c.period_text())
}

// ---- lifecycle -----------------------------------------------------------------------

fn lifecycle_sections(c: &Ctx<'_>, trend: bool) -> String {
    let Some(lc) = c.lifecycle else {
        return section(
            "lifecycle",
            "Skills (IFo/IFs/IFg/IDI)",
            &empty(
                "no lifecycle database was given (--lifecycle-db, or the config's sqlite storage)",
            ),
        );
    };
    let mut hashes: Vec<String> = lc.skills.iter().map(|s| s.signature_hash.clone()).collect();
    for r in &lc.records {
        if !hashes.contains(&r.signature_hash) {
            hashes.push(r.signature_hash.clone());
        }
    }
    if hashes.is_empty() {
        return section(
            "lifecycle",
            "Skills (IFo/IFs/IFg/IDI)",
            &empty(&format!(
                "{} holds no execution records and no skills",
                lc.source
            )),
        );
    }
    let now = c
        .now
        .or_else(|| lc.records.iter().map(|r| r.timestamp).max())
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let calc = IndexCalculator::new(c.index_window_days);
    let mut rows = Vec::new();
    let mut trends = String::new();
    for h in &hashes {
        let skill = lc.skills.iter().find(|s| &s.signature_hash == h);
        let s = calc.compute(h, &lc.records, now);
        let total = lc.records.iter().filter(|r| &r.signature_hash == h).count();
        let mut flags = Vec::new();
        if s.promotion_eligible() {
            flags.push("PROMOTE");
        }
        if s.execution_count > 0 && s.drift_detected() {
            flags.push("DRIFT");
        }
        let state = skill.map_or("candidate (not evaluated)", |s| s.state.as_str());
        let reason = skill
            .and_then(|s| s.history.last())
            .map(|t| format!("{} → {}: {}", t.from.as_str(), t.to.as_str(), t.reason))
            .unwrap_or_else(|| "—".into());
        rows.push((
            h.clone(),
            vec![
                Cell::Html(hash_html(h)),
                Cell::Html(badge(state)),
                Cell::Num(s.execution_count.to_string()),
                Cell::Num(total.to_string()),
                Cell::Num(num(s.ifo, 3)),
                Cell::Num(num(s.ifs, 3)),
                Cell::Num(num(s.ifg, 3)),
                Cell::Num(num(s.idi, 3)),
                Cell::Text(flags.join(", ")),
                Cell::Text(reason),
            ],
        ));
        if trend {
            trends.push_str(&trend_chart(c, lc, h, now, &calc));
        }
    }
    let mut inner = format!(
        "<p>Indices over a {}-day window ending {}.</p>\n",
        c.index_window_days,
        esc(&now.strftime("%Y-%m-%d %H:%M UTC").to_string())
    );
    inner.push_str(&table(
        "skills",
        &[
            "skill",
            "state",
            "runs in window",
            "runs",
            "IFo",
            "IFs",
            "IFg",
            "IDI",
            "flags",
            "last transition",
        ],
        &rows,
    ));
    let mut out = section("lifecycle", "Skills (IFo/IFs/IFg/IDI)", &inner);
    if trend {
        out.push_str(&section(
            "trends",
            "Index trend per skill (end of each UTC day)",
            &trends,
        ));
    }
    out
}

fn trend_chart(
    c: &Ctx<'_>,
    lc: &LifecycleData,
    h: &str,
    now: Timestamp,
    calc: &IndexCalculator,
) -> String {
    let own: Vec<Timestamp> = lc
        .records
        .iter()
        .filter(|r| r.signature_hash == h)
        .map(|r| r.timestamp)
        .collect();
    let Some(first) = own.iter().min().copied() else {
        return format!(
            "<h3>{}</h3>\n{}",
            hash_html(h),
            empty("no execution records for this skill")
        );
    };
    let start = first.max(cfa_lifecycle::time::minus_days(now, c.period_days));
    let mut labels = Vec::new();
    let mut series: [(String, Vec<(usize, f64)>); 4] = [
        ("IFo".into(), Vec::new()),
        ("IFs".into(), Vec::new()),
        ("IFg".into(), Vec::new()),
        ("IDI".into(), Vec::new()),
    ];
    let mut d = start.strftime("%Y-%m-%d").to_string();
    let last_day = day(now);
    for i in 0..=c.period_days.min(366) as usize {
        let Some(date) = d.parse::<jiff::civil::Date>().ok() else {
            break;
        };
        let next = date.tomorrow().unwrap_or(date);
        let end = next
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(now)
            .min(now);
        let s = calc.compute(h, &lc.records, end);
        labels.push(d.clone());
        if s.execution_count > 0 {
            for (j, v) in [s.ifo, s.ifs, s.ifg, s.idi].into_iter().enumerate() {
                if let Some(x) = series.get_mut(j) {
                    x.1.push((i, v));
                }
            }
        }
        if d == last_day {
            break;
        }
        d = next.to_string();
    }
    format!(
        "<h3>{}</h3>\n{}",
        hash_html(h),
        svg::unit_lines(&format!("Indices of {}", short(h)), &labels, &series)
    )
}

// ---- the pages -----------------------------------------------------------------------

/// The dashboard: overview cards, decisions, rules, chain, recent runs, skills.
pub(crate) fn dashboard(c: &Ctx<'_>, refresh: Option<u32>) -> String {
    let mut body = overview_cards(c);
    body.push_str(&decisions_section(c));
    body.push_str(&rules_section(c, false));
    body.push_str(&integrity_section(c));
    body.push_str(&runs_section(c, 20));
    body.push_str(&lifecycle_sections(c, false));
    html::page("CFA dashboard", &subtitle(c), &body, &footer(c), refresh)
}

/// The compliance report: blocked reasons, PII incidents, rule hits over time.
pub(crate) fn compliance(c: &Ctx<'_>) -> String {
    let mut body = overview_cards(c);
    body.push_str(&blocked_section(c));
    body.push_str(&pii_section(c));
    body.push_str(&rules_section(c, true));
    body.push_str(&replans_section(c));
    html::page(
        "CFA compliance report",
        &subtitle(c),
        &body,
        &footer(c),
        None,
    )
}

/// The lifecycle report: indices per skill and their trend.
pub(crate) fn lifecycle(c: &Ctx<'_>) -> String {
    let source = c
        .lifecycle
        .map_or("no lifecycle database", |l| l.source.as_str());
    let sub = format!("{source} · {}", c.period_text());
    let body = lifecycle_sections(c, true);
    html::page("CFA lifecycle report", &sub, &body, &footer(c), None)
}

/// The audit report: integrity, events per stage and per type, events per day.
pub(crate) fn audit(c: &Ctx<'_>) -> String {
    let s = &c.summary;
    let mut body = cards(&[
        card(
            "events_total",
            "events in period",
            &s.events.len().to_string(),
        ),
        card("runs_total", "runs", &s.runs.len().to_string()),
        card("stages", "stages", &s.by_stage.len().to_string()),
    ]);
    body.push_str(&integrity_section(c));
    let mut inner = String::new();
    if s.events.is_empty() {
        inner.push_str(&empty(&format!("no events in {}", c.period_text())));
    } else {
        inner.push_str("<h3>Per stage</h3>\n");
        inner.push_str(&count_table(
            "events-by-stage",
            "stage",
            &map_pairs(&s.by_stage),
        ));
        inner.push_str("<h3>Per event type</h3>\n");
        inner.push_str(&count_table(
            "events-by-type",
            "event type",
            &map_pairs(&s.by_type),
        ));
        if !s.events_per_day.is_empty() {
            let per_day: BTreeMap<String, BTreeMap<String, u64>> = s
                .events_per_day
                .iter()
                .map(|(d, n)| (d.clone(), BTreeMap::from([("events".to_owned(), *n)])))
                .collect();
            inner.push_str("<h3>Per day (UTC)</h3>\n");
            inner.push_str(&svg::stacked_days("Events per day", &per_day));
        }
        if s.undated > 0 {
            let _ = writeln!(
                inner,
                "<p>{} events have no readable timestamp.</p>",
                s.undated
            );
        }
    }
    body.push_str(&section("events", "Events", &inner));
    html::page("CFA audit report", &subtitle(c), &body, &footer(c), None)
}

/// The execution report of one run.
pub(crate) fn execution(c: &Ctx<'_>, run: &Run, same_intent: usize) -> String {
    let s = &c.summary;
    let state = run.state();
    let mut body = format!(
        "<section id=\"hero\"><h2>Intent <code data-k=\"intent_id\">{}</code></h2><p><span class=\"badge {}\" data-k=\"state\">{}</span></p>",
        esc(&run.intent_id),
        html::state_class(&state),
        esc(&state)
    );
    if same_intent > 1 {
        let _ = write!(
            body,
            "<p>{same_intent} runs carry this intent id; this is the latest.</p>"
        );
    }
    body.push_str("</section>\n");
    body.push_str(&cards(&[
        card(
            "signature_hash",
            "signature hash",
            run.signature_hash.as_deref().map_or("—", short),
        ),
        card(
            "bundle",
            "policy bundle",
            if run.bundle.is_empty() {
                "—"
            } else {
                &run.bundle
            },
        ),
        card("replans", "replans", &run.replans.to_string()),
        card("run_events", "events", &run.events.len().to_string()),
    ]));
    let rows: Vec<(String, Vec<Cell>)> = run
        .events
        .iter()
        .filter_map(|i| s.events.get(*i))
        .map(|e| {
            let t = event_time(e).map_or_else(
                || e.timestamp.clone(),
                |t| t.strftime("%H:%M:%S%.6f").to_string(),
            );
            (
                e.event_type.clone(),
                vec![
                    Cell::Text(t),
                    Cell::Text(e.stage.clone()),
                    Cell::Code(e.event_type.clone()),
                    Cell::Html(badge(&e.outcome)),
                ],
            )
        })
        .collect();
    body.push_str(&section(
        "phases",
        "Pipeline phases",
        &table(
            "timeline",
            &["time (UTC)", "stage", "event", "outcome"],
            &rows,
        ),
    ));
    let violations = if run.faults.is_empty() {
        empty("the policy raised no fault in this run")
    } else {
        let rows: Vec<(String, Vec<Cell>)> = run
            .faults
            .iter()
            .map(|code| {
                (
                    code.clone(),
                    vec![Cell::Code(code.clone()), Cell::Text(rule_name(c, code))],
                )
            })
            .collect();
        table("violations", &["fault code", "rule"], &rows)
    };
    body.push_str(&section("violations", "Policy violations", &violations));
    let metrics = match &run.sandbox {
        None => empty("the run was not executed in a sandbox"),
        Some(sb) => {
            let kv = [
                ("sandbox", sb.sandbox.clone()),
                ("publish_state", sb.publish_state.clone()),
                ("rows_output", opt_num(sb.rows_output, 0)),
                ("cost_dbu", opt_num(sb.cost_dbu, 2)),
                ("duration_seconds", opt_num(sb.duration_seconds, 2)),
                ("shuffle_mb", opt_num(sb.shuffle_mb, 1)),
                (
                    "retries",
                    sb.retries.map_or_else(|| "—".into(), |n| n.to_string()),
                ),
            ];
            let rows: Vec<(String, Vec<Cell>)> = kv
                .into_iter()
                .map(|(k, v)| (k.to_owned(), vec![Cell::Text(k.to_owned()), Cell::Num(v)]))
                .collect();
            table("sandbox", &["metric", "value"], &rows)
        }
    };
    body.push_str(&section("sandbox", "Execution metrics", &metrics));
    let callout = if run.blocked() {
        format!(
            "<p class=\"callout b-bad\">Blocked: {}</p>\n",
            esc(run.blocked_reason.as_deref().unwrap_or("no reason logged"))
        )
    } else if run.final_state.is_some() {
        format!(
            "<p class=\"callout {}\">Final decision: {}</p>\n",
            html::state_class(&state),
            esc(&state)
        )
    } else {
        format!(
            "<p class=\"callout b-info\">No final decision logged (last policy outcome: {}).</p>\n",
            esc(&state)
        )
    };
    body.push_str(&section("decision", "Decision", &callout));
    let source = c.log.map_or("", |l| l.source.as_str());
    html::page("CFA execution report", source, &body, &footer(c), None)
}
