//! The documents of a bundle, built from a run's events: export writes them, verify
//! builds them again from `audit/events.jsonl` and compares bytes.

use super::{
    CHECKPOINT, EVENTS, FORMAT, HUMAN_REVIEW, PROVENANCE, RUN_SUMMARY, STATEMENT, STATEMENT_TYPE,
    TOOLCHAIN, sha256_hex,
};
use cfa_audit::{AuditEvent, Checkpoint};
use serde_json::{Map, Value, json};

/// One event of the run: its index in the log, its exact line and the parsed event.
#[derive(Debug, Clone)]
pub(crate) struct RunEvent {
    pub index: u64,
    pub line: String,
    pub event: AuditEvent,
}

/// What a bundle carries that the events cannot say: the cfa version and platform of
/// the export, the audit store's kind, and the lifecycle database's records of the run.
#[derive(Debug, Clone)]
pub(crate) struct Carried {
    pub cfa_version: Value,
    pub platform: Value,
    pub audit_store: Value,
    pub lifecycle: Value,
}

/// Pretty JSON with a final newline (the bytes every document is written as).
pub(crate) fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// `audit/events.jsonl`: the lines, each ending in `\n`.
pub(crate) fn events_text(events: &[RunEvent]) -> String {
    let mut s = String::new();
    for e in events {
        s.push_str(&e.line);
        s.push('\n');
    }
    s
}

fn detail<'a>(e: &'a AuditEvent, key: &str) -> Option<&'a Value> {
    e.details.get(key)
}

fn str_detail<'a>(e: &'a AuditEvent, key: &str) -> Option<&'a str> {
    detail(e, key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn last<'a>(events: &'a [RunEvent], event_type: &str) -> Option<&'a AuditEvent> {
    events
        .iter()
        .rev()
        .map(|e| &e.event)
        .find(|e| e.event_type == event_type)
}

/// The last non-empty string `key` of any event's details.
fn last_str(events: &[RunEvent], key: &str) -> Value {
    events
        .iter()
        .rev()
        .find_map(|e| str_detail(&e.event, key))
        .map_or(Value::Null, |s| Value::String(s.to_owned()))
}

fn pick(e: Option<&AuditEvent>, keys: &[&str]) -> Value {
    match e {
        None => Value::Null,
        Some(e) => {
            let mut m = Map::new();
            for k in keys {
                m.insert(
                    (*k).to_owned(),
                    detail(e, k).cloned().unwrap_or(Value::Null),
                );
            }
            Value::Object(m)
        }
    }
}

fn decision(events: &[RunEvent]) -> Value {
    let policy = last(events, "policy_evaluation");
    let fin = last(events, "final_decision");
    let from_either = |k: &str| {
        fin.and_then(|e| detail(e, k))
            .or_else(|| policy.and_then(|e| detail(e, k)))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "policy_outcome": policy.map(|e| e.outcome.clone()),
        "final_state": fin.map(|e| e.outcome.clone()),
        "faults": from_either("faults"),
        "replan_count": from_either("replan_count"),
        "blocked_reason": fin.and_then(|e| detail(e, "blocked_reason")).cloned(),
        "warnings": fin.and_then(|e| detail(e, "warnings")).cloned(),
    })
}

fn sandbox(events: &[RunEvent]) -> Value {
    let exec = events
        .iter()
        .rev()
        .map(|e| &e.event)
        .find(|e| e.stage == "execute" && e.event_type.starts_with("execution_"));
    let mut v = pick(
        exec,
        &[
            "executor",
            "sandbox",
            "sandbox_status",
            "publish_state",
            "retries",
            "metrics",
        ],
    );
    if let (Some(e), Some(m)) = (exec, v.as_object_mut()) {
        m.insert("event_type".into(), Value::String(e.event_type.clone()));
        m.insert("outcome".into(), Value::String(e.outcome.clone()));
    }
    v
}

fn artifacts(events: &[RunEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|e| &e.event)
        .filter(|e| e.event_type == "code_generated")
        .map(|e| {
            json!({
                "language": detail(e, "language").cloned(),
                "artifact_hash": detail(e, "artifact_hash").cloned(),
                "line_count": detail(e, "line_count").cloned(),
            })
        })
        .collect()
}

fn human_review(intent_id: &str, events: &[RunEvent]) -> Value {
    let mut tickets: Vec<(String, Vec<&RunEvent>)> = Vec::new();
    for e in events {
        let ev = &e.event;
        if ev.stage != "control" || !ev.event_type.starts_with("approval_") {
            continue;
        }
        let id = str_detail(ev, "ticket_id").unwrap_or("").to_owned();
        match tickets.iter_mut().find(|(t, _)| *t == id) {
            Some((_, list)) => list.push(e),
            None => tickets.push((id, vec![e])),
        }
    }
    let tickets: Vec<Value> = tickets
        .into_iter()
        .map(|(id, list)| {
            let first = list.first().map(|e| &e.event);
            let lastev = list.last().map(|e| &e.event);
            let field = |k: &str| {
                list.iter()
                    .find_map(|e| str_detail(&e.event, k))
                    .map(str::to_owned)
            };
            json!({
                "ticket_id": id,
                "content_hash": field("content_hash"),
                "policy_bundle_hash": field("policy_bundle_hash"),
                "status": lastev.map(|e| e.event_type.trim_start_matches("approval_").to_owned()),
                "requested_at": first.map(|e| e.timestamp.clone()),
                "events": list.iter().map(|e| {
                    let ev = &e.event;
                    json!({
                        "index": e.index,
                        "event_type": ev.event_type,
                        "outcome": ev.outcome,
                        "by": detail(ev, "by").cloned(),
                        "reason": detail(ev, "reason").cloned(),
                        "note": detail(ev, "note").cloned(),
                        "expires_at": detail(ev, "expires_at").cloned(),
                        "timestamp": ev.timestamp,
                        "event_hash": ev.event_hash,
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"format": FORMAT, "intent_id": intent_id, "tickets": tickets})
}

fn unique<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in items {
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

/// The documents of the bundle, in the order they depend on each other (the statement
/// last, over the digests of the others).
pub(crate) fn documents(
    intent_id: &str,
    events: &[RunEvent],
    checkpoint: &Checkpoint,
    checkpoint_note: &str,
    carried: &Carried,
) -> Vec<(&'static str, String)> {
    let first = events.first().map(|e| &e.event);
    let lastev = events.last().map(|e| &e.event);
    let fin = last(events, "final_decision");
    let dec = decision(events);
    let run_summary = json!({
        "format": FORMAT,
        "intent_id": intent_id,
        "decision_ids": unique(events.iter().filter_map(|e| str_detail(&e.event, "decision_id"))),
        "final_state": fin.map(|e| e.outcome.clone()),
        "decision": dec.get("policy_outcome").cloned(),
        "replan_count": dec.get("replan_count").cloned(),
        "blocked_reason": dec.get("blocked_reason").cloned(),
        "started_at": first.map(|e| e.timestamp.clone()),
        "finished_at": lastev.map(|e| e.timestamp.clone()),
        "events": events.len(),
        "stages": unique(events.iter().map(|e| e.event.stage.as_str())),
    });
    let env = last(events, "environment_state_consulted");
    let events_text = events_text(events);
    let events_sha = sha256_hex(events_text.as_bytes());
    let root_hex = hex::encode(checkpoint.root);
    let artifacts = artifacts(events);
    let audit = json!({
        "events_file": EVENTS,
        "events_sha256": events_sha,
        "indices": events.iter().map(|e| e.index).collect::<Vec<_>>(),
        "event_hashes": events.iter().map(|e| e.event.event_hash.clone()).collect::<Vec<_>>(),
        "checkpoint": {"origin": checkpoint.origin, "size": checkpoint.size, "root_hex": root_hex},
    });
    let inputs = json!({
        "signature": {
            "signature_hash": last_str(events, "signature_hash"),
            "content_hash": last_str(events, "content_hash"),
        },
        "catalog": {
            "catalog_hash": env.and_then(|e| detail(e, "catalog_hash")).cloned(),
            "context_version_id": env.and_then(|e| detail(e, "version_id")).cloned(),
        },
        "policy_bundle": {
            "version": last_str(events, "policy_bundle_version"),
            "hash": last_str(events, "policy_bundle_hash"),
        },
    });
    let sandbox = sandbox(events);
    let state = pick(
        last(events, "state_projected"),
        &[
            "version_id",
            "projection_type",
            "target_scope",
            "audit_only",
        ],
    );
    let provenance = json!({
        "format": FORMAT,
        "intent_id": intent_id,
        "inputs": inputs,
        "artifacts": artifacts,
        "decision": dec,
        "sandbox": sandbox,
        "state_projected": state,
        "lifecycle": carried.lifecycle,
        "audit": audit,
    });
    let backend = artifacts
        .first()
        .and_then(|a| a.get("language"))
        .cloned()
        .unwrap_or(Value::Null);
    let sandbox_name = sandbox
        .get("sandbox")
        .filter(|v| !v.is_null())
        .or_else(|| sandbox.get("executor"))
        .cloned()
        .unwrap_or(Value::Null);
    let toolchain = json!({
        "format": FORMAT,
        "cfa_version": carried.cfa_version,
        "backend": backend,
        "sandbox": sandbox_name,
        "audit_store": carried.audit_store,
        "platform": carried.platform,
    });
    let review = human_review(intent_id, events);
    let docs = [
        (RUN_SUMMARY, pretty(&run_summary)),
        (PROVENANCE, pretty(&provenance)),
        (TOOLCHAIN, pretty(&toolchain)),
        (HUMAN_REVIEW, pretty(&review)),
    ];
    let tickets: Vec<Value> = review
        .get("tickets")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|x| json!({"ticket_id": x.get("ticket_id"), "status": x.get("status")}))
                .collect()
        })
        .unwrap_or_default();
    let mut subject: Vec<Value> = artifacts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let hash = a.get("artifact_hash")?.as_str()?;
            let lang = a
                .get("language")
                .and_then(Value::as_str)
                .unwrap_or("artifact");
            Some(json!({"name": format!("artifact/{i}.{lang}"), "digest": {"sha256": hash}}))
        })
        .collect();
    subject.push(json!({"name": EVENTS, "digest": {"sha256": events_sha}}));
    let mut file_digests = Map::new();
    for (name, text) in &docs {
        file_digests.insert((*name).to_owned(), json!(sha256_hex(text.as_bytes())));
    }
    file_digests.insert(
        CHECKPOINT.to_owned(),
        json!(sha256_hex(checkpoint_note.as_bytes())),
    );
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": FORMAT,
        "predicate": {
            "intent_id": intent_id,
            "run": {
                "decision_ids": run_summary.get("decision_ids").cloned(),
                "started_at": run_summary.get("started_at").cloned(),
                "finished_at": run_summary.get("finished_at").cloned(),
            },
            "inputs": provenance.get("inputs").cloned(),
            "decision": provenance.get("decision").cloned(),
            "sandbox": provenance.get("sandbox").cloned(),
            "state_projected": provenance.get("state_projected").cloned(),
            "human_review": tickets,
            "toolchain": {
                "cfa_version": carried.cfa_version,
                "backend": toolchain.get("backend").cloned(),
                "sandbox": toolchain.get("sandbox").cloned(),
            },
            "audit": provenance.get("audit").cloned(),
            "files": file_digests,
        },
    });
    let mut out: Vec<(&'static str, String)> = docs.into_iter().collect();
    out.push((STATEMENT, pretty(&statement)));
    out
}

/// The manifest over `files` (every file but the manifest itself).
pub(crate) fn manifest<'a>(
    intent_id: &str,
    files: impl Iterator<Item = (&'a String, &'a Vec<u8>)>,
) -> String {
    let list: Vec<Value> = files
        .filter(|(k, _)| k.as_str() != super::MANIFEST)
        .map(|(k, v)| json!({"path": k, "sha256": sha256_hex(v), "bytes": v.len()}))
        .collect();
    pretty(&json!({"format": FORMAT, "intent_id": intent_id, "files": list}))
}
