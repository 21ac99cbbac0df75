//! Confirmation: modes, handlers and outcomes (docs/compatibility.md#confirmation-mode).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use cfa_resolve::{
    AlwaysReject, AutoApprove, ConfirmationAnswer, ConfirmationHandler, ConfirmationRequest,
    NormalizerInput, Resolution, RuleBasedNormalizer, TerminalHandler, confirm, confirmation_mode,
    handler_reason,
};
use cfa_types::{
    AmbiguityLevel, Catalog, ConfirmationMode, FaultFamily, FaultSeverity, PolicyAction,
};
use serde_json::json;
use std::cell::RefCell;
use std::io::Cursor;

fn catalog() -> Catalog {
    Catalog::from_value(&json!({"datasets": {
        "nfe":      {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
        "clientes": {"classification": "sensitive",   "size_gb": 0.5,  "pii_columns": ["cpf","email"], "partition_column": "processing_date", "merge_keys": ["cliente_id"]},
        "produtos": {"classification": "internal",    "size_gb": 0.1,  "pii_columns": [], "merge_keys": ["produto_id"]}
    }}))
    .unwrap()
}

fn resolve(text: &str) -> Resolution {
    let cat = catalog();
    RuleBasedNormalizer::default().resolve(&NormalizerInput::new(text, &cat, "id-1"))
}

/// Records the requests it sees and answers as told.
struct Recorder {
    answer: ConfirmationAnswer,
    seen: RefCell<Vec<ConfirmationRequest>>,
}

impl ConfirmationHandler for Recorder {
    fn confirm(&self, request: &ConfirmationRequest) -> ConfirmationAnswer {
        self.seen.borrow_mut().push(request.clone());
        self.answer.clone()
    }
}

#[test]
fn mode_rules_in_order() {
    let silver_pii = resolve("join nfe with clientes").signature;
    let gold_no_pii = resolve("load nfe into gold").signature;
    let silver_no_pii = resolve("load nfe").signature;
    use AmbiguityLevel::*;
    use ConfirmationMode::*;
    assert_eq!(
        confirmation_mode(&gold_no_pii, 0.99, Low, 0),
        HumanEscalation
    );
    assert_eq!(
        confirmation_mode(&silver_pii, 0.64, Medium, 0),
        HumanEscalation
    );
    assert_eq!(
        confirmation_mode(&silver_no_pii, 0.99, Low, 2),
        HumanEscalation
    );
    assert_eq!(confirmation_mode(&silver_pii, 0.75, Medium, 1), Hard);
    assert_eq!(confirmation_mode(&silver_no_pii, 0.79, Low, 1), Soft);
    assert_eq!(confirmation_mode(&silver_no_pii, 0.85, Medium, 0), Soft);
    assert_eq!(confirmation_mode(&silver_no_pii, 0.85, Low, 1), Auto);
}

#[test]
fn auto_and_soft_do_not_ask() {
    let rec = Recorder {
        answer: ConfirmationAnswer::reject("no"),
        seen: RefCell::new(vec![]),
    };
    let auto = confirm(&resolve("aggregate produtos monthly"), &rec);
    assert!(auto.approved && auto.fault.is_none());
    assert_eq!(auto.reason, "Auto-confirmed: low risk.");
    let soft = confirm(&resolve("do something with unknown table"), &rec);
    assert!(soft.approved);
    assert_eq!(soft.reason, "Soft-confirmed: confidence=0.30");
    assert!(rec.seen.borrow().is_empty());
}

#[test]
fn hard_and_escalation_ask_the_handler() {
    let hard = resolve("Join NFe with Clientes and persist to Silver");
    assert_eq!(hard.confirmation_mode, ConfirmationMode::Hard);
    let ok = confirm(&hard, &AutoApprove);
    assert!(ok.approved && ok.fault.is_none());
    assert_eq!(ok.reason, "Hard approved.");

    let rec = Recorder {
        answer: ConfirmationAnswer::approve(),
        seen: RefCell::new(vec![]),
    };
    let gold = resolve("Join NFe with Clientes and persist to Gold");
    let out = confirm(&gold, &rec);
    assert_eq!(out.reason, "Human escalation approved.");
    let seen = rec.seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].mode, ConfirmationMode::HumanEscalation);
    assert_eq!(
        seen[0].reason,
        "gold-layer write; protected-layer write with PII"
    );
    assert_eq!(seen[0].datasets, ["nfe", "clientes"]);
    assert_eq!(seen[0].intent_id, "id-1");

    let bad = confirm(&hard, &AlwaysReject);
    assert!(!bad.approved);
    let f = bad.fault.unwrap();
    assert_eq!(f.code, "CONFIRMATION_HARD_REJECTED");
    assert_eq!(f.severity, FaultSeverity::High);
    assert_eq!(f.family, FaultFamily::Semantic);
    assert_eq!(f.stage, "confirmation_orchestrator");
    assert_eq!(f.mandatory_action, PolicyAction::Block);
    assert_eq!(f.remediation.len(), 1);
    assert!(f.message.contains("hard"));

    let f = confirm(&gold, &AlwaysReject).fault.unwrap();
    assert_eq!(f.code, "CONFIRMATION_HUMAN_ESCALATION_REJECTED");
    assert_eq!(f.severity, FaultSeverity::Critical);
}

#[test]
fn handler_reason_parts() {
    let mut r = resolve("load nfe into silver");
    assert_eq!(handler_reason(&r), "elevated risk");
    r.confidence = 0.5;
    r.competing_interpretations = vec!["a".into(), "b".into()];
    assert_eq!(
        handler_reason(&r),
        "low confidence (0.50); 2 competing interpretation(s)"
    );
}

#[test]
fn terminal_handler_reads_an_answer() {
    let gold = resolve("Join NFe with Clientes and persist to Gold");
    for (input, approved) in [
        ("y\n", true),
        ("YES\n", true),
        ("sim\n", true),
        ("n\n", false),
        ("\n", false),
        ("", false),
    ] {
        let h = TerminalHandler::new(Cursor::new(input.as_bytes().to_vec()), Vec::new(), true);
        let out = confirm(&gold, &h);
        assert_eq!(out.approved, approved, "{input:?}");
        let (_, written) = h.into_inner().unwrap();
        let prompt = String::from_utf8(written).unwrap();
        assert!(
            prompt.contains("human_escalation") && prompt.contains("Approve? [y/N]"),
            "{prompt}"
        );
        assert!(prompt.contains("gold-layer write"));
    }
}

#[test]
fn terminal_handler_refuses_without_a_terminal() {
    let gold = resolve("Join NFe with Clientes and persist to Gold");
    let h = TerminalHandler::new(Cursor::new(b"y\n".to_vec()), Vec::new(), false);
    let out = confirm(&gold, &h);
    assert!(!out.approved);
    assert!(out.reason.contains("not a terminal"), "{}", out.reason);
    assert!(out.fault.unwrap().message.contains("not a terminal"));
    let (_, written) = h.into_inner().unwrap();
    assert!(written.is_empty(), "nothing is prompted when refusing");
}
