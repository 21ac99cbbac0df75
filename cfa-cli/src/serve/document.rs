//! The response body of `POST /v1/decisions`: the decision document
//! ([`Decision::document`]) written straight from the decision as JSON bytes, without
//! building it as a `serde_json::Value` tree first (an `IndexMap` per object and a copy
//! of every string fewer per request; docs/development.md, "fourth round: `cfa
//! serve`'s per-request CPU"). The keys come in the document's order and
//! every nested value goes through its own `Serialize`, as `document()` does, so the
//! bytes are the same (the tests compare both over the policy conformance cases).

use cfa::kernel::Decision;

/// Writes `s` as a JSON string the way serde_json's compact writer does. A string
/// with nothing to escape (no `"`, `\\` or control character: the ids, hashes and
/// bundle names of a decision) is copied in one piece after one scan the compiler can
/// vectorise, instead of serde_json's byte-by-byte escape table walk; any other string
/// goes through serde_json.
fn write_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, s)
    }
}

/// [`Decision::document`]'s JSON text written into `out`: the keys in the document's
/// order (constants, none needing an escape), the decision's strings through
/// [`write_str`], every nested value (the action, the `PolicyResult`, the control
/// outcome) through its own `Serialize`, as `document()` does.
fn write_document(out: &mut Vec<u8>, d: &Decision) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"decision_id\":");
    write_str(out, &d.decision_id)?;
    out.extend_from_slice(b",\"action\":");
    serde_json::to_writer(&mut *out, &d.result.action)?;
    out.extend_from_slice(if d.result.passed() {
        b",\"passed\":true,\"decision\":"
    } else {
        b",\"passed\":false,\"decision\":"
    });
    serde_json::to_writer(&mut *out, &d.result)?;
    for (key, value) in [
        (&b",\"signature_hash\":"[..], &d.signature_hash),
        (b",\"content_hash\":", &d.content_hash),
        (b",\"intent_id\":", &d.intent_id),
        (b",\"policy_bundle\":", &d.policy_bundle),
        (b",\"policy_bundle_hash\":", &d.policy_bundle_hash),
        (b",\"catalog_hash\":", &d.catalog_hash),
        (b",\"audit_event_hash\":", &d.audit_event_hash),
    ] {
        out.extend_from_slice(key);
        write_str(out, value)?;
    }
    if let Some(control) = &d.control {
        out.extend_from_slice(b",\"control\":");
        serde_json::to_writer(&mut *out, control)?;
    }
    out.push(b'}');
    Ok(())
}

/// The JSON text of `decision`'s document, the bytes `serde_json::to_vec(&
/// decision.document())` gives. Should a nested value refuse to serialise (none of
/// the decision's types does), the document is built the old way, where such a
/// `control` value becomes `null`.
pub fn document_bytes(decision: &Decision) -> Vec<u8> {
    // An approving document is ~700 bytes, one with faults and patches a few KiB.
    let mut out = Vec::with_capacity(1024);
    match write_document(&mut out, decision) {
        Ok(()) => out,
        Err(_) => serde_json::to_vec(&decision.document()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use cfa::audit::FixedClock;
    use cfa::kernel::{PolicyCheck, SequentialIds};
    use cfa::types::StateSignature;
    use cfa::{PolicyAction, PolicyEngine};
    use cfa_control::{ControlOutcome, ControlStatus, KillSwitch, Scope, Ticket, TicketStatus};
    use serde_json::Value;
    use std::collections::BTreeMap;

    fn engine_for(bundle: &Value, cache: &mut BTreeMap<String, PolicyEngine>) -> PolicyEngine {
        let Some(file) = bundle.as_str() else {
            return PolicyEngine::default();
        };
        cache
            .entry(file.to_owned())
            .or_insert_with(|| {
                let path = cfa_test_support::conformance("policy/bundles").join(file);
                let text = std::fs::read_to_string(path).unwrap();
                let format = cfa_policy::BundleFormat::from_path_str(file);
                let b = cfa_policy::load_bundle(&text, format, file).unwrap();
                PolicyEngine::from_bundle(b).unwrap()
            })
            .clone()
    }

    fn ticket(n: usize) -> Ticket {
        Ticket {
            id: format!("ticket-{n}"),
            status: if n.is_multiple_of(2) {
                TicketStatus::Pending
            } else {
                TicketStatus::Spent
            },
            intent_id: "i-\"quoted\"\u{e7}".into(),
            content_hash: "c".repeat(64),
            policy_bundle_hash: String::new(),
            policy_bundle: "prod-v1.0".into(),
            requester: "agent\\7".into(),
            reason: "PII_RAW_EXPOSURE: raw\ncolumns".into(),
            fault_codes: vec!["PII_RAW_EXPOSURE".into(), "MERGE_KEY_MISSING".into()],
            created_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-01-02T00:00:00Z".into(),
            decided_by: (n % 2 == 1).then(|| "ops".to_owned()),
            decided_at: (n % 2 == 1).then(|| "2026-01-01T00:01:00Z".to_owned()),
            note: (n % 4 == 1).then(|| "ok \u{1F600}".to_owned()),
            spent_at: (n % 2 == 1).then(|| "2026-01-01T00:02:00Z".to_owned()),
        }
    }

    /// A control outcome of every status, with and without its optional parts.
    fn control(n: usize, decision: &Decision) -> Option<ControlOutcome> {
        let status = match n % 6 {
            0 => return None,
            1 => ControlStatus::PendingApproval,
            2 => ControlStatus::Approved,
            3 => ControlStatus::ApprovalRefused,
            4 => ControlStatus::Killed,
            _ => ControlStatus::Error,
        };
        Some(ControlOutcome {
            status,
            fault_code: (status != ControlStatus::Approved).then(|| "CONTROL_HELD".to_owned()),
            ticket_id: matches!(n % 6, 1..=3).then(|| format!("ticket-{n}")),
            ticket: matches!(n % 6, 1 | 2).then(|| ticket(n)),
            kill: (status == ControlStatus::Killed).then(|| KillSwitch {
                scope: match n % 4 {
                    0 => Scope::All,
                    1 => Scope::Domain("fiscal".into()),
                    2 => Scope::Target("silver".into()),
                    _ => Scope::Agent("agent-1".into()),
                },
                reason: "incident \"42\"".into(),
                by: "ops".into(),
                engaged_at: "2026-01-01T00:00:00Z".into(),
            }),
            bundle_result: decision.result.clone(),
        })
    }

    /// The 1,500 policy conformance cases (approve, replan with patches and
    /// interventions, block, manual fixes; five bundles, replan counts, non-ASCII and
    /// escaped strings), each also with a control outcome of another status and an
    /// audit event hash: the bytes are the old document's.
    #[test]
    fn the_written_document_is_the_value_documents_bytes() {
        let text = std::fs::read_to_string(cfa_test_support::conformance("policy/cases.jsonl"))
            .expect("the policy conformance cases are required");
        let (ids, clock) = (
            SequentialIds::new(),
            FixedClock("2026-01-01T00:00:00+00:00".into()),
        );
        let mut cache = BTreeMap::new();
        let mut seen = BTreeMap::new();
        let (mut cases, mut with_patches, mut with_manual_fixes) = (0, 0, 0);
        for (n, line) in text.lines().enumerate() {
            let case: Value = serde_json::from_str(line).unwrap();
            let engine = engine_for(&case["bundle"], &mut cache);
            let signature = StateSignature::from_value(&case["signature"]).unwrap();
            let replan = u32::try_from(case["replan_count"].as_u64().unwrap()).unwrap();
            let mut decision = PolicyCheck::new(&engine, &ids, &clock)
                .bundle_hash(if n.is_multiple_of(2) {
                    ""
                } else {
                    "b\u{fc}ndle-hash"
                })
                .replan_count(replan)
                .decide(&signature)
                .unwrap();
            *seen.entry(decision.result.action).or_insert(0) += 1;
            with_patches += usize::from(!decision.result.patches.is_empty());
            with_manual_fixes += usize::from(!decision.result.manual_fixes.is_empty());
            for variant in 0..3 {
                match variant {
                    1 => decision.audit_event_hash = format!("{n:064x}"),
                    2 => decision.control = control(n, &decision),
                    _ => {}
                }
                let old = serde_json::to_vec(&decision.document()).unwrap();
                assert_eq!(
                    String::from_utf8(document_bytes(&decision)).unwrap(),
                    String::from_utf8(old).unwrap(),
                    "case {}, variant {variant}",
                    case["id"]
                );
                cases += 1;
            }
        }
        assert_eq!(cases, 4500);
        assert!(
            with_patches > 100 && with_manual_fixes > 0,
            "{with_patches} {with_manual_fixes}"
        );
        for action in [
            PolicyAction::Approve,
            PolicyAction::Replan,
            PolicyAction::Block,
        ] {
            assert!(seen.get(&action).copied().unwrap_or(0) > 100, "{seen:?}");
        }
    }

    /// The decision's own strings (ids, hashes, bundle names) with what JSON must escape
    /// (quotes, backslashes, every control character) or may leave alone (DEL,
    /// non-ASCII, `/`): written through serde_json's escaping, the bytes the old
    /// document's; a plain one is copied as is, at its key.
    #[test]
    fn the_decisions_strings_are_escaped_as_serde_json_escapes_them() {
        let text = std::fs::read_to_string(cfa_test_support::conformance("policy/cases.jsonl"))
            .expect("the policy conformance cases are required");
        let case: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let signature = StateSignature::from_value(&case["signature"]).unwrap();
        let (ids, clock) = (
            SequentialIds::new(),
            FixedClock("2026-01-01T00:00:00+00:00".into()),
        );
        let base = PolicyCheck::new(&PolicyEngine::default(), &ids, &clock)
            .decide(&signature)
            .unwrap();
        let controls: String = (0u8..0x20).map(char::from).collect();
        let strings = [
            String::new(),
            "plain-id_0.9".to_owned(),
            "quote\"in".to_owned(),
            "back\\slash".to_owned(),
            "\"".to_owned(),
            "\\".to_owned(),
            controls,
            "tab\tnew\nline\r".to_owned(),
            "del\u{7f} slash/ \u{e7}\u{1F600}".to_owned(),
            "\u{2028}\u{2029}".to_owned(),
        ];
        for (n, s) in strings.iter().enumerate() {
            for field in 0..8 {
                let mut d = base.clone();
                let slot = match field {
                    0 => &mut d.decision_id,
                    1 => &mut d.signature_hash,
                    2 => &mut d.content_hash,
                    3 => &mut d.intent_id,
                    4 => &mut d.policy_bundle,
                    5 => &mut d.policy_bundle_hash,
                    6 => &mut d.catalog_hash,
                    _ => &mut d.audit_event_hash,
                };
                slot.clone_from(s);
                let old = serde_json::to_vec(&d.document()).unwrap();
                assert_eq!(
                    String::from_utf8(document_bytes(&d)).unwrap(),
                    String::from_utf8(old).unwrap(),
                    "string {n}, field {field}"
                );
            }
        }
        let mut d = base;
        d.decision_id = "d-1".into();
        let bytes = String::from_utf8(document_bytes(&d)).unwrap();
        let action = serde_json::to_string(&d.result.action).unwrap();
        assert!(
            bytes.starts_with(&format!(
                "{{\"decision_id\":\"d-1\",\"action\":{action},\"passed\":{},\"decision\":{{",
                d.result.passed()
            )),
            "{bytes}"
        );
        assert!(
            bytes.ends_with('}') && !bytes.contains(",\"control\":"),
            "{bytes}"
        );
    }
}
