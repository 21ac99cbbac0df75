//! What the pages show, computed from the events alone: runs (one per intent id and
//! decision id), decision counts by outcome and by rule per day, replan loops, blocked
//! reasons, PII incidents and sandbox metrics. Pure: no I/O, no clock.

use cfa_audit::AuditEvent;
use jiff::Timestamp;
use serde_json::Value;
use std::collections::BTreeMap;

/// Sandbox metrics of one executed run (`execution_completed` details).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SandboxRun {
    /// The sandbox or executor name.
    pub sandbox: String,
    /// The publish state (`published`, `rolled_back`, ...).
    pub publish_state: String,
    /// Step retries.
    pub retries: Option<u64>,
    /// Output rows.
    pub rows_output: Option<f64>,
    /// Cost, DBU.
    pub cost_dbu: Option<f64>,
    /// Duration, seconds.
    pub duration_seconds: Option<f64>,
    /// Shuffle, MB.
    pub shuffle_mb: Option<f64>,
}

/// One governed run: the events of one intent id and decision id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// The intent id.
    pub intent_id: String,
    /// The decision id (`""` when the events carry none).
    pub decision_id: String,
    /// Indices of its events in the period's event list.
    pub events: Vec<usize>,
    /// Time of its first and last event.
    pub first: Option<Timestamp>,
    /// Time of its last event.
    pub last: Option<Timestamp>,
    /// `final_decision` outcome, when the run logged one.
    pub final_state: Option<String>,
    /// `policy_evaluation` outcomes, in order.
    pub policy_outcomes: Vec<String>,
    /// `replan_applied` events.
    pub replans: u64,
    /// Fault codes raised by its policy evaluations, each once, in order.
    pub faults: Vec<String>,
    /// Why it was blocked, when it was.
    pub blocked_reason: Option<String>,
    /// The signature hash (the skill), when logged.
    pub signature_hash: Option<String>,
    /// `policy_bundle_version` of its last event.
    pub bundle: String,
    /// The sandbox run, when it executed.
    pub sandbox: Option<SandboxRun>,
}

impl Run {
    /// The state shown for the run: the final decision, else `policy:<outcome>` of the
    /// last policy evaluation, else `in progress`.
    pub fn state(&self) -> String {
        match (&self.final_state, self.policy_outcomes.last()) {
            (Some(s), _) => s.clone(),
            (None, Some(o)) => format!("policy:{o}"),
            (None, None) => "in progress".into(),
        }
    }

    /// Blocked: a final `blocked`, or (no final decision) a last policy outcome `block`.
    pub fn blocked(&self) -> bool {
        match &self.final_state {
            Some(s) => s == "blocked",
            None => self.policy_outcomes.last().is_some_and(|o| o == "block"),
        }
    }

    /// The fault codes that name PII (the lifecycle's `pii_exposure` test).
    pub fn pii_codes(&self) -> Vec<&str> {
        self.faults
            .iter()
            .filter(|c| c.contains("PII"))
            .map(String::as_str)
            .collect()
    }
}

/// Everything the pages count, over the events of one period.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The events in the period, in log order.
    pub events: Vec<AuditEvent>,
    /// Events whose timestamp could not be read (kept, but not placed on a day).
    pub undated: u64,
    /// Events per stage.
    pub by_stage: BTreeMap<String, u64>,
    /// Events per event type.
    pub by_type: BTreeMap<String, u64>,
    /// `policy_evaluation` events per outcome.
    pub policy_outcomes: BTreeMap<String, u64>,
    /// `final_decision` events per state.
    pub final_states: BTreeMap<String, u64>,
    /// Fault codes raised by `policy_evaluation` events (one per event that raised it).
    pub rule_hits: BTreeMap<String, u64>,
    /// Per day (`YYYY-MM-DD`, UTC): policy outcomes.
    pub outcomes_per_day: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per day: rule hits.
    pub rules_per_day: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per day: events.
    pub events_per_day: BTreeMap<String, u64>,
    /// The runs, in order of their first event.
    pub runs: Vec<Run>,
}

impl Summary {
    /// Runs that were blocked.
    pub fn blocked_runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| r.blocked())
    }

    /// Runs whose faults name PII.
    pub fn pii_runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| !r.pii_codes().is_empty())
    }

    /// Runs with at least one replan.
    pub fn replanned_runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| r.replans > 0)
    }

    /// Blocked reasons and how many runs gave each, most frequent first.
    pub fn blocked_reasons(&self) -> Vec<(String, u64)> {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for r in self.blocked_runs() {
            let reason = r.blocked_reason.clone().unwrap_or_else(|| {
                if r.faults.is_empty() {
                    "blocked (no reason logged)".into()
                } else {
                    format!("faults: {}", r.faults.join(", "))
                }
            });
            *m.entry(reason).or_default() += 1;
        }
        sorted_desc(m)
    }
}

/// `(key, count)` pairs, highest count first, then by key.
pub fn sorted_desc(m: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// The time of an event, when its timestamp reads as ISO 8601 (naive = UTC).
pub fn event_time(e: &AuditEvent) -> Option<Timestamp> {
    cfa_lifecycle::time::parse(&e.timestamp)
}

/// `YYYY-MM-DD` (UTC) of `ts`.
pub fn day(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d").to_string()
}

/// The latest readable timestamp among `events`.
pub fn last_time(events: &[AuditEvent]) -> Option<Timestamp> {
    events.iter().filter_map(event_time).max()
}

fn str_detail<'a>(e: &'a AuditEvent, key: &str) -> Option<&'a str> {
    e.details.get(key).and_then(Value::as_str)
}

fn codes(e: &AuditEvent) -> Vec<String> {
    e.details
        .get("faults")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| match f {
                    Value::String(s) => Some(s.clone()),
                    // a fault object: its code
                    Value::Object(o) => o.get("code").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn sandbox(e: &AuditEvent) -> SandboxRun {
    let m = e.details.get("metrics");
    let num = |k: &str| m.and_then(|m| m.get(k)).and_then(Value::as_f64);
    SandboxRun {
        sandbox: str_detail(e, "sandbox")
            .or_else(|| str_detail(e, "executor"))
            .unwrap_or_default()
            .to_owned(),
        publish_state: str_detail(e, "publish_state")
            .unwrap_or(e.outcome.as_str())
            .to_owned(),
        retries: e.details.get("retries").and_then(Value::as_u64),
        rows_output: num("rows_output"),
        cost_dbu: num("cost_dbu"),
        duration_seconds: num("duration_seconds"),
        shuffle_mb: num("shuffle_mb"),
    }
}

/// Summarises the events with `from <= timestamp <= to` (both optional; undated
/// events are always kept).
pub fn summarise(all: &[AuditEvent], from: Option<Timestamp>, to: Option<Timestamp>) -> Summary {
    let mut s = Summary::default();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in all {
        let t = event_time(e);
        if let Some(t) = t
            && (from.is_some_and(|f| t < f) || to.is_some_and(|to| t > to))
        {
            continue;
        }
        let i = s.events.len();
        s.events.push(e.clone());
        *s.by_stage.entry(e.stage.clone()).or_default() += 1;
        *s.by_type.entry(e.event_type.clone()).or_default() += 1;
        let d = t.map(day);
        match &d {
            Some(d) => *s.events_per_day.entry(d.clone()).or_default() += 1,
            None => s.undated += 1,
        }
        let decision_id = str_detail(e, "decision_id").unwrap_or_default().to_owned();
        let key = (e.intent_id.clone(), decision_id.clone());
        let run_index = *index.entry(key).or_insert_with(|| {
            s.runs.push(Run {
                intent_id: e.intent_id.clone(),
                decision_id,
                ..Run::default()
            });
            s.runs.len().saturating_sub(1)
        });
        let Some(run) = s.runs.get_mut(run_index) else {
            continue;
        };
        run.events.push(i);
        if run.first.is_none() {
            run.first = t;
        }
        if t.is_some() {
            run.last = t;
        }
        run.bundle.clone_from(&e.policy_bundle_version);
        if let Some(h) = str_detail(e, "signature_hash").filter(|h| !h.is_empty()) {
            run.signature_hash = Some(h.to_owned());
        }
        match e.event_type.as_str() {
            "policy_evaluation" => {
                *s.policy_outcomes.entry(e.outcome.clone()).or_default() += 1;
                if let Some(d) = &d {
                    *s.outcomes_per_day
                        .entry(d.clone())
                        .or_default()
                        .entry(e.outcome.clone())
                        .or_default() += 1;
                }
                let cs = codes(e);
                for c in &cs {
                    *s.rule_hits.entry(c.clone()).or_default() += 1;
                    if let Some(d) = &d {
                        *s.rules_per_day
                            .entry(d.clone())
                            .or_default()
                            .entry(c.clone())
                            .or_default() += 1;
                    }
                    if !run.faults.contains(c) {
                        run.faults.push(c.clone());
                    }
                }
                run.policy_outcomes.push(e.outcome.clone());
                if e.outcome == "block"
                    && run.blocked_reason.is_none()
                    && let Some(r) = str_detail(e, "reasoning").filter(|r| !r.is_empty())
                {
                    run.blocked_reason = Some(r.to_owned());
                }
            }
            "replan_applied" => run.replans += 1,
            "final_decision" => {
                *s.final_states.entry(e.outcome.clone()).or_default() += 1;
                run.final_state = Some(e.outcome.clone());
                if let Some(r) = str_detail(e, "blocked_reason").filter(|r| !r.is_empty()) {
                    run.blocked_reason = Some(r.to_owned());
                }
            }
            "execution_completed" => run.sandbox = Some(sandbox(e)),
            _ => {}
        }
    }
    s
}
