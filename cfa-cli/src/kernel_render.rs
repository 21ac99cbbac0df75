//! Human renderings of kernel results: an aligned box whose width comes from its
//! content (long values wrap; the reference's misaligned border, B11, is fixed), a
//! short summary, and the `cfa resolve` summary.

use cfa::DecisionState;
use cfa::KernelResult;
use cfa::resolve::Resolution;

/// Widest content column before values wrap.
const MAX_INNER: usize = 96;
const TITLE: &str = " CFA Evaluation Result ";

/// The status icon of a state (Unicode, or its ASCII pair: `crate::out`).
pub fn icon(state: DecisionState) -> &'static str {
    use crate::out;
    match state {
        DecisionState::Approved => out::icon_ok(),
        DecisionState::ApprovedWithWarnings => out::icon_warn(),
        DecisionState::Blocked => out::icon_fail(),
        DecisionState::RolledBack => out::icon_rollback(),
        DecisionState::Quarantined => out::icon_quarantine(),
        DecisionState::PartiallyCommitted | DecisionState::Degraded => out::icon_partial(),
        DecisionState::Replanned => out::icon_replan(),
        DecisionState::PromotionCandidate => out::icon_star(),
    }
}

/// The colour of a state's icon on a terminal.
pub fn tone(state: DecisionState) -> crate::out::Tone {
    use crate::out::Tone;
    match state {
        DecisionState::Approved => Tone::Good,
        DecisionState::Blocked => Tone::Bad,
        _ => Tone::Caution,
    }
}

/// The icon of a state, coloured when colour is on (not for the box, whose widths
/// count characters).
pub fn painted_icon(state: DecisionState) -> String {
    crate::out::paint(icon(state), tone(state))
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Splits `text` into lines of at most `max` chars, breaking at spaces when possible
/// (longer words are cut); continuation lines are indented by `indent` spaces.
fn wrap(text: &str, max: usize, indent: usize) -> Vec<String> {
    let max = max.max(indent + 8);
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let room = if out.is_empty() { max } else { max - indent };
            let used = width(&line);
            let sep = usize::from(used > 0);
            if used + sep + word.len() <= room {
                if sep == 1 {
                    line.push(' ');
                }
                line.extend(word);
                break;
            }
            if used > 0 {
                out.push(std::mem::take(&mut line));
                continue;
            }
            out.push(word.drain(..room).collect());
        }
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l
            } else {
                format!("{}{l}", " ".repeat(indent))
            }
        })
        .collect()
}

/// One line on the execute phase: `mock → published (rows 100000, cost 5.00 DBU, 0 retries)`,
/// or why it did not run.
pub fn execution_line(r: &KernelResult) -> Option<String> {
    if let Some(e) = &r.execution {
        let d = &e.details;
        if e.publish_state == cfa::kernel::PublishState::NotExecuted {
            let why = match d.get("lease_holder").and_then(serde_json::Value::as_str) {
                Some(holder) => format!("target leased by '{holder}'"),
                None => "refused".to_owned(),
            };
            return Some(format!("{}: not executed ({why})", e.executor));
        }
        let m = d.get("metrics");
        let num = |k: &str| m.and_then(|m| m.get(k)).and_then(serde_json::Value::as_f64);
        let mut parts = Vec::new();
        if let Some(rows) = m
            .and_then(|m| m.get("rows_output"))
            .and_then(serde_json::Value::as_u64)
        {
            parts.push(format!("rows {rows}"));
        }
        if let Some(cost) = num("cost_dbu") {
            parts.push(format!("cost {cost:.2} DBU"));
        }
        if let Some(retries) = d.get("retries").and_then(serde_json::Value::as_u64) {
            parts.push(format!("{retries} retries"));
        }
        let extra = if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        };
        return Some(format!(
            "{} {} {}{extra}",
            e.executor,
            crate::out::arrow(),
            e.publish_state.as_str()
        ));
    }
    r.phases_skipped
        .iter()
        .find(|s| s.phase == cfa::kernel::Phase::Execute)
        .map(|s| format!("skipped ({})", s.reason))
}

/// `lifecycle.skill_state` of the run (`None` when no execution or no lifecycle database).
pub fn skill_state(r: &KernelResult) -> Option<&str> {
    r.execution
        .as_ref()?
        .details
        .get("lifecycle")?
        .get("skill_state")?
        .as_str()
}

/// The box: every row padded to the same width, borders aligned.
pub fn table(intent: &str, r: &KernelResult) -> String {
    let mut rows: Vec<(String, usize)> = vec![
        (format!("Intent:  {intent}"), 9),
        // The id `cfa audit show -i` finds this run's events by.
        (format!("ID:      {}", dash(&r.intent_id)), 9),
        (format!("State:   {} {}", icon(r.state), r.state), 9),
        (format!("Hash:    {}", dash(&r.signature_hash)), 9),
        (
            format!(
                "Policy:  {}  |  Replans: {}",
                r.policy_bundle, r.replan_count
            ),
            9,
        ),
    ];
    if !r.blocked_reason.is_empty() {
        rows.push((format!("Reason:  {}", r.blocked_reason), 9));
    }
    if let Some(line) = execution_line(r) {
        rows.push((format!("Execute: {line}"), 9));
    }
    if let Some(skill) = skill_state(r) {
        rows.push((
            format!("Skill:   {skill} (lifecycle; the decision is unchanged)"),
            9,
        ));
    }
    for h in &r.replan_history {
        for p in &h.applied_patches {
            rows.push((format!("Patched: {} = {}", p.path, p.value), 9));
        }
    }
    if !r.faults.is_empty() {
        rows.push((String::new(), 0));
        rows.push(("Faults".to_owned(), 0));
        for f in &r.faults {
            rows.push((
                format!(" {}  {}", f.severity.as_str().to_uppercase(), f.code),
                3,
            ));
            rows.push((format!("      {}", f.message), 6));
            for (i, rem) in f.remediation.iter().take(3).enumerate() {
                rows.push((format!("      {}. {rem}", i + 1), 9));
            }
        }
    }
    let natural = rows.iter().map(|(s, _)| width(s)).max().unwrap_or(0);
    let inner = natural.clamp(width(TITLE) + 4, MAX_INNER);
    let mut lines: Vec<String> = vec![String::new()];
    for (row, indent) in rows {
        lines.extend(wrap(&row, inner, indent));
    }
    lines.push(String::new());
    let total = inner + 2;
    let left = (total - width(TITLE)) / 2;
    let right = total - width(TITLE) - left;
    use crate::out as sym;
    let h = sym::box_horizontal();
    let v = sym::box_vertical();
    let mut out = format!(
        "{}{}{TITLE}{}{}\n",
        sym::box_top_left(),
        h.repeat(left),
        h.repeat(right),
        sym::box_top_right()
    );
    for l in lines {
        let pad = inner.saturating_sub(width(&l));
        out.push_str(&format!("{v} {l}{} {v}\n", " ".repeat(pad)));
    }
    out.push_str(&format!(
        "{}{}{}\n",
        sym::box_bottom_left(),
        h.repeat(total),
        sym::box_bottom_right()
    ));
    out
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// The short summary.
pub fn summary(intent: &str, r: &KernelResult) -> String {
    let mut out = format!(
        "{}  CFA: {}\nIntent: {intent}\nID:     {}\nHash:   {}\nPolicy: {}\nReplans: {}\n",
        icon(r.state),
        r.state.as_str().to_uppercase(),
        dash(&r.intent_id),
        dash(&r.signature_hash),
        r.policy_bundle,
        r.replan_count
    );
    if !r.blocked_reason.is_empty() {
        out.push_str(&format!("Reason: {}\n", r.blocked_reason));
    }
    if let Some(line) = execution_line(r) {
        out.push_str(&format!("Execute: {line}\n"));
    }
    if let Some(skill) = skill_state(r) {
        out.push_str(&format!("Skill:  {skill}\n"));
    }
    if !r.faults.is_empty() {
        out.push_str(&format!("Faults: {}\n", r.faults.len()));
        for f in &r.faults {
            out.push_str(&format!(
                "  [{}] {}\n",
                f.severity.as_str().to_uppercase(),
                f.code
            ));
        }
    }
    out
}

/// [`summary`] for stdout: the leading icon coloured when colour is on.
pub fn painted_summary(intent: &str, r: &KernelResult) -> String {
    let plain = summary(intent, r);
    match plain.strip_prefix(icon(r.state)) {
        Some(rest) => format!("{}{rest}", painted_icon(r.state)),
        None => plain,
    }
}

/// `cfa resolve --format summary`.
pub fn resolution_summary(res: &Resolution) -> String {
    let s = &res.signature;
    let datasets: Vec<&str> = s.datasets.iter().map(|d| d.name.as_str()).collect();
    format!(
        "Intent:      {}\nLayer:       {}\nDatasets:    {}\nOperation:   {}\nConfidence:  {:.2} ({} ambiguity)\nConfirm:     {}\nReasoning:   {}\n",
        s.source_intent_raw,
        s.target_layer,
        if datasets.is_empty() {
            "(none)".to_owned()
        } else {
            datasets.join(", ")
        },
        s.intent,
        res.confidence,
        res.ambiguity,
        res.confirmation_mode,
        res.reasoning
    )
}

/// Makes a block for want of any catalog say so. With no catalog loaded every
/// intent is ungrounded and blocks (`NORMALIZATION_NO_CATALOG_DATASET_MATCH`), which
/// otherwise reads like a policy decision about the intent. The decision and the
/// audit record are unchanged; only the rendered reason gains `hint` in front.
pub fn explain_missing_catalog(r: &mut cfa::KernelResult, hint: &str) {
    let ungrounded = r
        .faults
        .iter()
        .any(|f| f.code == cfa::resolve::faults::NO_CATALOG_DATASET_MATCH);
    if ungrounded && !r.blocked_reason.is_empty() && !r.blocked_reason.starts_with("no catalog") {
        r.blocked_reason = format!("no catalog loaded ({hint}): {}", r.blocked_reason);
    }
}

/// The CLI's hint when no catalog was loaded.
pub const CLI_NO_CATALOG_HINT: &str = "pass -c/--catalog CATALOG or run `cfa init`";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_splits_long_words() {
        assert_eq!(wrap("aaa bbb ccc", 9, 1), ["aaa bbb", " ccc"]);
        assert_eq!(
            wrap("abcdefghijklmnopqrst", 8, 0),
            ["abcdefgh", "ijklmnop", "qrst"]
        );
        assert_eq!(wrap("ab abcdefghijkl", 8, 0), ["ab", "abcdefgh", "ijkl"]);
        assert_eq!(wrap("", 4, 0), [""]);
    }
}
