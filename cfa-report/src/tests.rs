#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use cfa_audit::{AuditEvent, AuditStore as _, Durability, JsonlStore, NewEvent};
use cfa_lifecycle::ExecutionRecord;
use serde_json::json;

fn ev(
    intent: &str,
    stage: &str,
    ty: &str,
    outcome: &str,
    ts: &str,
    details: serde_json::Value,
) -> NewEvent {
    let mut e = NewEvent::new(intent, stage, ty, outcome, ts);
    if let serde_json::Value::Object(m) = details {
        for (k, v) in m {
            e = e.detail(k, v);
        }
    }
    e
}

/// A small log: one approved executed run, one replanned run, one PII block, one
/// standalone policy check with a hostile intent id.
fn sample() -> Vec<NewEvent> {
    vec![
        ev(
            "run-a",
            "govern",
            "policy_evaluation",
            "approve",
            "2026-03-01T10:00:00+00:00",
            json!({"decision_id": "d1", "faults": []}),
        ),
        ev(
            "run-a",
            "execute",
            "execution_completed",
            "published",
            "2026-03-01T10:00:01+00:00",
            json!({"decision_id": "d1", "sandbox": "mock", "publish_state": "published", "retries": 0,
                  "metrics": {"rows_output": 100000, "cost_dbu": 5.0, "duration_seconds": 17.5}}),
        ),
        ev(
            "run-a",
            "validate",
            "final_decision",
            "approved",
            "2026-03-01T10:00:02+00:00",
            json!({"decision_id": "d1", "signature_hash": "aaaaaaaaaaaaaaaaaaaa", "blocked_reason": ""}),
        ),
        ev(
            "run-b",
            "govern",
            "policy_evaluation",
            "replan",
            "2026-03-02T09:00:00+00:00",
            json!({"decision_id": "d2", "faults": ["FINOPS_MISSING_TEMPORAL_PREDICATE"]}),
        ),
        ev(
            "run-b",
            "govern",
            "replan_applied",
            "replanned",
            "2026-03-02T09:00:01+00:00",
            json!({"decision_id": "d2", "replan_count": 1}),
        ),
        ev(
            "run-b",
            "govern",
            "policy_evaluation",
            "approve",
            "2026-03-02T09:00:02+00:00",
            json!({"decision_id": "d2", "faults": []}),
        ),
        ev(
            "run-b",
            "validate",
            "final_decision",
            "approved_with_warnings",
            "2026-03-02T09:00:03+00:00",
            json!({"decision_id": "d2", "blocked_reason": ""}),
        ),
        ev(
            "run-c",
            "govern",
            "policy_evaluation",
            "block",
            "2026-03-03T08:00:00+00:00",
            json!({"decision_id": "d3", "faults": ["GOVERNANCE_PII_WITHOUT_POLICY", "FINOPS_MISSING_TEMPORAL_PREDICATE"]}),
        ),
        ev(
            "run-c",
            "govern",
            "final_decision",
            "blocked",
            "2026-03-03T08:00:01+00:00",
            json!({"decision_id": "d3", "blocked_reason": "action=block | faults=[GOVERNANCE_PII_WITHOUT_POLICY] | TERMINAL"}),
        ),
        ev(
            "<script>alert('x')</script>",
            "policy_check",
            "policy_evaluation",
            "block",
            "2026-03-04T07:00:00+00:00",
            json!({"decision_id": "d4", "faults": ["<b>EVIL</b>"], "reasoning": "a \"quoted\" <reason> & more"}),
        ),
    ]
}

fn sealed(events: Vec<NewEvent>) -> Vec<AuditEvent> {
    let mut prev = String::new();
    events
        .into_iter()
        .map(|e| {
            let s = e.seal(&prev);
            prev = s.event_hash.clone();
            s
        })
        .collect()
}

fn log() -> LogData {
    let events = sealed(sample());
    LogData::from_events(
        "audit.jsonl",
        events,
        Integrity {
            events: 10,
            first_bad: None,
            tail_hash: "t".into(),
            checkpoint: None,
        },
    )
}

fn render_log(kind: ReportKind, log: &LogData) -> String {
    render(
        kind,
        &ReportInput {
            log: Some(log),
            ..ReportInput::default()
        },
        &ReportOptions::default(),
    )
    .unwrap()
}

fn k(html: &str, key: &str) -> Option<String> {
    let pat = format!("data-k=\"{key}\">");
    let i = html.find(&pat)? + pat.len();
    Some(html[i..].split('<').next()?.to_owned())
}

#[test]
fn counts_come_from_the_log() {
    let l = log();
    let html = render_log(ReportKind::Dashboard, &l);
    assert_eq!(k(&html, "events_total").as_deref(), Some("10"));
    assert_eq!(k(&html, "runs_total").as_deref(), Some("4"));
    assert_eq!(k(&html, "approve").as_deref(), Some("2"));
    assert_eq!(k(&html, "replan").as_deref(), Some("1"));
    assert_eq!(k(&html, "block").as_deref(), Some("2"));
    assert_eq!(k(&html, "blocked_runs").as_deref(), Some("2"));
    assert_eq!(k(&html, "pii_incidents").as_deref(), Some("1"));
    assert_eq!(k(&html, "replans_total").as_deref(), Some("1"));
    assert_eq!(k(&html, "chain").as_deref(), Some("INTACT"));
    // rule hits: one per policy evaluation that raised the code
    assert!(html.contains("<tr data-key=\"FINOPS_MISSING_TEMPORAL_PREDICATE\"><td><code>FINOPS_MISSING_TEMPORAL_PREDICATE</code></td><td>—</td><td>—</td><td class=\"num\">2</td></tr>"), "{html}");
    // per-day chart: 4 days of policy evaluations
    assert_eq!(
        html.matches("<title>2026-03-0").count(),
        5,
        "5 outcome bars over 4 days"
    );
}

#[test]
fn every_log_value_is_escaped() {
    let l = log();
    for kind in [
        ReportKind::Dashboard,
        ReportKind::Compliance,
        ReportKind::Audit,
    ] {
        let html = render_log(kind, &l);
        assert!(!html.contains("<script"), "{kind:?}");
        assert!(!html.contains("<b>EVIL"), "{kind:?}");
    }
    let html = render_log(ReportKind::Dashboard, &l);
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    let html = render_log(ReportKind::Compliance, &l);
    assert!(html.contains("a &quot;quoted&quot; &lt;reason&gt; &amp; more"));
    assert_eq!(
        html::esc("<a href=\"x\">'&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}

#[test]
fn nothing_is_fetched_from_anywhere() {
    let l = log();
    let lc = LifecycleData {
        source: "cfa.db".into(),
        records: vec![ExecutionRecord::new(
            "h1",
            "2026-03-01T10:00:00Z".parse().unwrap(),
        )],
        skills: vec![],
    };
    for kind in ReportKind::ALL {
        let html = render(
            kind,
            &ReportInput {
                log: Some(&l),
                lifecycle: Some(&lc),
                bundle: None,
            },
            &ReportOptions::default(),
        )
        .unwrap();
        for attr in [
            "src=", "href=", "url(", "@import", "<script", "<link", "<iframe", "<img",
        ] {
            assert!(!html.contains(attr), "{kind:?} has {attr}");
        }
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{kind:?}"
        );
        assert!(html.contains(html::CSP));
    }
}

#[test]
fn empty_data_says_so() {
    let empty_log = LogData::from_events(
        "empty.jsonl",
        vec![],
        Integrity {
            events: 0,
            first_bad: None,
            tail_hash: String::new(),
            checkpoint: None,
        },
    );
    let html = render_log(ReportKind::Dashboard, &empty_log);
    assert_eq!(k(&html, "events_total").as_deref(), Some("0"));
    assert!(html.contains("No data: no policy_evaluation events in the log"));
    assert!(html.contains("No data: no lifecycle database was given"));
    assert!(html.contains("generated at — (no dated data)"));
    assert!(!html.contains("<svg"), "no chart of nothing");
    let html = render(
        ReportKind::Compliance,
        &ReportInput::default(),
        &ReportOptions::default(),
    )
    .unwrap();
    assert!(html.contains("No data: no audit log was given"));
    let html = render(
        ReportKind::Lifecycle,
        &ReportInput::default(),
        &ReportOptions::default(),
    )
    .unwrap();
    assert!(html.contains("No data: no lifecycle database was given"));
    assert!(matches!(
        render(
            ReportKind::Execution,
            &ReportInput {
                log: Some(&empty_log),
                ..ReportInput::default()
            },
            &ReportOptions::default()
        ),
        Err(ReportError::NoRun { .. })
    ));
}

#[test]
fn output_is_deterministic_and_the_period_filters() {
    let l = log();
    let a = render_log(ReportKind::Dashboard, &l);
    assert_eq!(a, render_log(ReportKind::Dashboard, &l));
    assert!(a.contains("generated at 2026-03-04 07:00 UTC"));
    let opts = ReportOptions {
        period_days: 1,
        ..ReportOptions::default()
    };
    let b = render(
        ReportKind::Dashboard,
        &ReportInput {
            log: Some(&l),
            ..ReportInput::default()
        },
        &opts,
    )
    .unwrap();
    // 2026-03-03T07:00 .. 2026-03-04T07:00: run-c and the policy check
    assert_eq!(k(&b, "events_total").as_deref(), Some("3"));
    assert_eq!(k(&b, "runs_total").as_deref(), Some("2"));
}

#[test]
fn execution_reports_one_run() {
    let l = log();
    let opts = ReportOptions {
        intent_id: Some("run-b".into()),
        ..ReportOptions::default()
    };
    let html = render(
        ReportKind::Execution,
        &ReportInput {
            log: Some(&l),
            ..ReportInput::default()
        },
        &opts,
    )
    .unwrap();
    assert_eq!(k(&html, "state").as_deref(), Some("approved_with_warnings"));
    assert_eq!(k(&html, "replans").as_deref(), Some("1"));
    assert_eq!(k(&html, "run_events").as_deref(), Some("4"));
    assert!(html.contains("No data: the run was not executed in a sandbox"));
    let latest = render_log(ReportKind::Execution, &l);
    assert!(latest.contains("Blocked: a &quot;quoted&quot;"));
    let a = render(
        ReportKind::Execution,
        &ReportInput {
            log: Some(&l),
            ..ReportInput::default()
        },
        &ReportOptions {
            intent_id: Some("run-a".into()),
            ..ReportOptions::default()
        },
    )
    .unwrap();
    assert!(a.contains(
        "<tr data-key=\"rows_output\"><td>rows_output</td><td class=\"num\">100000</td></tr>"
    ));
    let err = render(
        ReportKind::Execution,
        &ReportInput {
            log: Some(&l),
            ..ReportInput::default()
        },
        &ReportOptions {
            intent_id: Some("nope".into()),
            ..ReportOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "intent nope has no events in audit.jsonl in the last 90 days"
    );
}

#[test]
fn rule_names_come_from_the_bundle() {
    let l = log();
    let b = BundleInfo {
        version: "prod-v1.0".into(),
        rules: vec![RuleInfo {
            name: "temporal_predicate".into(),
            fault_code: "FINOPS_MISSING_TEMPORAL_PREDICATE".into(),
            action: "replan".into(),
        }],
    };
    let html = render(
        ReportKind::Compliance,
        &ReportInput {
            log: Some(&l),
            bundle: Some(&b),
            ..ReportInput::default()
        },
        &ReportOptions::default(),
    )
    .unwrap();
    assert!(html.contains("<td>temporal_predicate</td><td>replan</td><td class=\"num\">2</td>"));
    assert!(html.contains("policy bundle prod-v1.0"));
}

#[test]
fn a_real_log_loads_with_its_chain_check_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let store = JsonlStore::open(&path, Durability::Never).unwrap();
    for e in sample() {
        store.append(e).unwrap();
    }
    store.flush().unwrap();
    drop(store);
    let target = cfa_audit::AuditTarget::Jsonl(path.clone());
    let key = cfa_audit::SignerKey::from_seed("example.com/log", [3u8; 32]).unwrap();
    let (_, note) =
        cfa_audit::checkpoint::create_checkpoint(&target, "example.com/log", &key, false).unwrap();
    std::fs::write(default_checkpoint_path(&path), &note).unwrap();
    let l = LogData::load(&target, &LoadOptions::default()).unwrap();
    assert_eq!(l.events.len(), 10);
    assert!(l.integrity.intact());
    let cp = l.integrity.checkpoint.clone().unwrap();
    assert_eq!((cp.size, cp.signature.clone()), (10, Signature::NotChecked));
    let vkey = dir.path().join("log.vkey");
    std::fs::write(&vkey, key.verifier().to_text()).unwrap();
    let opts = LoadOptions {
        pubkey: Some(vkey),
        ..LoadOptions::default()
    };
    let l = LogData::load(&target, &opts).unwrap();
    assert_eq!(
        l.integrity.checkpoint.as_ref().map(|c| c.signature.clone()),
        Some(Signature::Verified)
    );
    let html = render_log(ReportKind::Audit, &l);
    assert_eq!(k(&html, "chain_status").as_deref(), Some("INTACT"));
    assert!(html.contains("the log extends it (consistency proof checked)"));
    // Tamper with event 3's outcome: the report names it.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(&if i == 3 {
            line.replace("\"replan\"", "\"approve\"")
        } else {
            (*line).to_owned()
        });
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap();
    let l = LogData::load(&target, &opts).unwrap();
    assert!(!l.integrity.intact());
    let html = render_log(ReportKind::Audit, &l);
    assert_eq!(k(&html, "chain_status").as_deref(), Some("BROKEN"));
    assert_eq!(k(&html, "first_bad_index").as_deref(), Some("3"));
    // Truncation below the checkpoint is caught even without the key.
    std::fs::write(&path, lines[..5].join("\n") + "\n").unwrap();
    let l = LogData::load(&target, &LoadOptions::default()).unwrap();
    assert!(!l.integrity.intact());
    assert!(
        l.integrity
            .checkpoint
            .unwrap()
            .problem
            .unwrap()
            .contains("events were removed")
    );
    assert!(matches!(
        LogData::load(
            &cfa_audit::AuditTarget::Jsonl(dir.path().join("missing")),
            &LoadOptions::default()
        ),
        Err(ReportError::Audit { .. })
    ));
}

#[test]
fn lifecycle_indices_and_trend() {
    let mut recs = Vec::new();
    for d in 1..=3 {
        let mut r = ExecutionRecord::new("h1", format!("2026-03-0{d}T10:00:00Z").parse().unwrap());
        r.duration_seconds = 12.5;
        r.cost_dbu = 5.0;
        recs.push(r);
    }
    let lc = LifecycleData {
        source: "cfa.db".into(),
        records: recs,
        skills: vec![],
    };
    let html = render(
        ReportKind::Lifecycle,
        &ReportInput {
            lifecycle: Some(&lc),
            ..ReportInput::default()
        },
        &ReportOptions::default(),
    )
    .unwrap();
    // the reference's mock-sandbox value: (1 - 12.5/300) * (1 - 5/50) = 0.8625
    assert!(html.contains("<td class=\"num\">0.863</td><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">1</td><td>PROMOTE</td>"), "{html}");
    assert_eq!(html.matches("<circle").count(), 12, "3 days x 4 indices");
    assert!(html.contains("generated at 2026-03-03 10:00 UTC"));
}

#[test]
fn write_atomic_replaces_or_leaves_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.html");
    write_atomic(&p, "one").unwrap();
    write_atomic(&p, "two").unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary left"
    );
    assert!(write_atomic(&dir.path().join("no/such/dir/r.html"), "x").is_err());
}
