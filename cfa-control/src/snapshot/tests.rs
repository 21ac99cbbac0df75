#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use super::*;
use crate::kill::Scope;
use serde_json::json;

const NOW: &str = "2026-01-01T01:00:00+00:00";

fn sig(approval: Option<&str>, partition: &str) -> StateSignature {
    let mut custom = serde_json::Map::new();
    if let Some(a) = approval {
        custom.insert("approval_id".into(), json!(a));
    }
    StateSignature::from_value(&json!({
        "domain": "fiscal", "intent": "publish", "target_layer": "gold",
        "datasets": [{"name": "nfe", "classification": "internal", "size_gb": 1,
                      "pii_columns": [], "partition_column": "d", "merge_keys": ["id"]}],
        "constraints": {"partition_by": [partition], "custom": custom},
        "intent_id": "i-1"
    }))
    .unwrap()
}

fn fault(code: &str, action: PolicyAction) -> Fault {
    Fault {
        mandatory_action: action,
        ..control_fault(code, "m".into(), vec![])
    }
}

fn result(action: PolicyAction, faults: Vec<Fault>) -> PolicyResult {
    PolicyResult {
        action,
        faults: faults.into(),
        interventions: cfa_types::SharedList::new(),
        replan_count: 0,
        reasoning: cfa_types::SharedStr::default(),
        patches: vec![],
        manual_fixes: vec![],
    }
}

fn gold(code: &str) -> bool {
    code == "GOLD"
}

fn granted(s: &StateSignature) -> Ticket {
    Ticket {
        id: "t1".into(),
        status: TicketStatus::Granted,
        intent_id: "i-1".into(),
        content_hash: bound_content_hash(s),
        policy_bundle_hash: "bh".into(),
        policy_bundle: "v".into(),
        requester: "r".into(),
        reason: "GOLD: m".into(),
        fault_codes: vec!["GOLD".into()],
        created_at: "2026-01-01T00:00:00+00:00".into(),
        expires_at: "2026-01-02T00:00:00+00:00".into(),
        decided_by: Some("ana".into()),
        decided_at: Some(NOW.into()),
        note: None,
        spent_at: None,
    }
}

fn refusal(v: &ControlVerdict) -> &'static str {
    match v {
        ControlVerdict::Refuse { code, .. } => code,
        other => panic!("not a refusal: {other:?}"),
    }
}

#[test]
fn the_approval_id_is_left_out_of_the_bound_hash() {
    let held = sig(None, "d");
    assert_eq!(bound_content_hash(&held), held.content_hash());
    assert_eq!(
        bound_content_hash(&sig(Some("t1"), "d")),
        held.content_hash()
    );
    assert_ne!(
        bound_content_hash(&sig(Some("t1"), "e")),
        held.content_hash()
    );
}

#[test]
fn a_block_only_by_approvable_faults_is_held() {
    let s = sig(None, "d");
    let req = ControlRequest::of(&s, "bh", &gold);
    let snap = ControlSnapshot::default();
    let r = result(
        PolicyAction::Block,
        vec![fault("GOLD", PolicyAction::Block)],
    );
    match gate(&r, &req, &snap, NOW) {
        ControlVerdict::Hold { codes, reason } => {
            assert_eq!(codes, ["GOLD"]);
            assert_eq!(reason, "GOLD: m");
        }
        other => panic!("{other:?}"),
    }
    // another blocking fault: the policy's block stands
    let r = result(
        PolicyAction::Block,
        vec![
            fault("GOLD", PolicyAction::Block),
            fault("PII", PolicyAction::Block),
        ],
    );
    assert_eq!(gate(&r, &req, &snap, NOW), ControlVerdict::Pass);
    // approve and replan pass
    assert_eq!(
        gate(&result(PolicyAction::Approve, vec![]), &req, &snap, NOW),
        ControlVerdict::Pass
    );
    let r = result(PolicyAction::Replan, vec![fault("X", PolicyAction::Replan)]);
    assert_eq!(gate(&r, &req, &snap, NOW), ControlVerdict::Pass);
}

#[test]
fn a_granted_bound_ticket_is_spent_and_every_other_is_refused() {
    let held = sig(None, "d");
    let s = sig(Some("t1"), "d");
    let req = ControlRequest::of(&s, "bh", &gold);
    let ok = result(PolicyAction::Approve, vec![]);
    let snap = |t: Ticket| ControlSnapshot {
        kills: vec![],
        tickets: vec![t],
    };
    assert!(matches!(
        gate(&ok, &req, &snap(granted(&held)), NOW),
        ControlVerdict::Spend(_)
    ));
    // a require_approval block lifted by the ticket
    let r = result(
        PolicyAction::Block,
        vec![fault("GOLD", PolicyAction::Block)],
    );
    assert!(matches!(
        gate(&r, &req, &snap(granted(&held)), NOW),
        ControlVerdict::Spend(_)
    ));

    assert_eq!(
        refusal(&gate(&ok, &req, &ControlSnapshot::default(), NOW)),
        approval::APPROVAL_UNKNOWN
    );
    let other = sig(None, "e");
    assert_eq!(
        refusal(&gate(&ok, &req, &snap(granted(&other)), NOW)),
        approval::APPROVAL_MISMATCH
    );
    let bundle = Ticket {
        policy_bundle_hash: "other".into(),
        ..granted(&held)
    };
    assert_eq!(
        refusal(&gate(&ok, &req, &snap(bundle), NOW)),
        approval::APPROVAL_MISMATCH
    );
    let late = "2026-01-02T00:00:00+00:00";
    assert_eq!(
        refusal(&gate(&ok, &req, &snap(granted(&held)), late)),
        approval::APPROVAL_EXPIRED
    );
    for (status, code) in [
        (TicketStatus::Spent, approval::APPROVAL_SPENT),
        (TicketStatus::Denied, approval::APPROVAL_DENIED),
        (TicketStatus::Pending, approval::APPROVAL_PENDING),
    ] {
        let t = Ticket {
            status,
            ..granted(&held)
        };
        assert_eq!(refusal(&gate(&ok, &req, &snap(t), NOW)), code);
    }
    // an unreadable clock fails closed
    assert_eq!(
        refusal(&gate(&ok, &req, &snap(granted(&held)), "soon")),
        approval::APPROVAL_EXPIRED
    );
}

#[test]
fn the_kill_switch_comes_first() {
    let s = sig(Some("t1"), "d");
    let req = ControlRequest::of(&s, "bh", &gold);
    let kill = KillSwitch {
        scope: Scope::Target("gold".into()),
        reason: "incident 42".into(),
        by: "ana".into(),
        engaged_at: NOW.into(),
    };
    let snap = ControlSnapshot {
        kills: vec![kill.clone()],
        tickets: vec![granted(&sig(None, "d"))],
    };
    let ok = result(PolicyAction::Approve, vec![]);
    assert_eq!(
        gate(&ok, &req, &snap, NOW),
        ControlVerdict::Killed(kill.clone())
    );
    let b = blocked(&ok, kill_fault(&kill));
    assert_eq!(b.action, PolicyAction::Block);
    assert_eq!(
        b.reasoning,
        "action=block | faults=[KILL_SWITCH_ENGAGED] | TERMINAL"
    );
    assert!(b.faults[0].message.contains("by ana"));
    assert!(b.faults[0].message.contains("incident 42"));
    let other = KillSwitch {
        scope: Scope::Domain("hr".into()),
        ..kill
    };
    let snap = ControlSnapshot {
        kills: vec![other],
        tickets: vec![],
    };
    assert_eq!(
        refusal(&gate(&ok, &req, &snap, NOW)),
        approval::APPROVAL_UNKNOWN
    );
}

#[test]
fn an_approved_block_keeps_its_faults_on_record() {
    let r = result(
        PolicyAction::Block,
        vec![fault("GOLD", PolicyAction::Block)],
    );
    let a = approved(&r);
    assert_eq!(a.action, PolicyAction::Approve);
    assert_eq!(a.reasoning, "action=approve | faults=[GOLD]");
    assert_eq!(
        approved(&result(PolicyAction::Approve, vec![])).reasoning,
        "All rules passed. Execution approved."
    );
}
