//! Confirmation (docs/compatibility.md#confirmation-mode and ConfirmationOrchestrator):
//! how much confirmation a resolution needs, the handlers that give it, and the
//! outcome with the reference's reasons and rejection faults.

use crate::normalizer::{DEFAULT_MIN_CONFIDENCE, Resolution};
use crate::pyfmt::fmt2;
use cfa_types::{
    AmbiguityLevel, ConfirmationMode, Fault, FaultFamily, FaultSeverity, PolicyAction,
    StateSignature, TargetLayer,
};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::sync::Mutex;

/// The stage named in rejection faults.
pub const CONFIRMATION_STAGE: &str = "confirmation_orchestrator";
/// Fault code when a hard confirmation is rejected.
pub const HARD_REJECTED: &str = "CONFIRMATION_HARD_REJECTED";
/// Fault code when a human escalation is rejected.
pub const HUMAN_ESCALATION_REJECTED: &str = "CONFIRMATION_HUMAN_ESCALATION_REJECTED";

/// The mode a resolution needs: the first matching rule of docs/compatibility.md#confirmation-mode wins.
///
/// 1. gold layer → human escalation;
/// 2. confidence < 0.65 with PII → human escalation;
/// 3. more than one competing interpretation → human escalation;
/// 4. protected layer with PII → hard;
/// 5. confidence < 0.80 or medium ambiguity → soft;
/// 6. otherwise auto.
pub fn confirmation_mode(
    signature: &StateSignature,
    confidence: f64,
    ambiguity: AmbiguityLevel,
    competing_interpretations: usize,
) -> ConfirmationMode {
    let pii = signature.contains_pii();
    if signature.target_layer == TargetLayer::Gold
        || (confidence < DEFAULT_MIN_CONFIDENCE && pii)
        || competing_interpretations > 1
    {
        ConfirmationMode::HumanEscalation
    } else if signature.writes_to_protected_layer() && pii {
        ConfirmationMode::Hard
    } else if confidence < 0.80 || ambiguity == AmbiguityLevel::Medium {
        ConfirmationMode::Soft
    } else {
        ConfirmationMode::Auto
    }
}

/// What a handler is asked to confirm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmationRequest {
    /// `hard` or `human_escalation`.
    pub mode: ConfirmationMode,
    /// Why confirmation is needed (parts joined with `; `).
    pub reason: String,
    /// The intent id.
    pub intent_id: String,
    /// The raw intent text.
    pub intent: String,
    /// The target layer.
    pub target_layer: TargetLayer,
    /// Matched dataset names.
    pub datasets: Vec<String>,
    /// The resolution's confidence.
    pub confidence: f64,
}

/// A handler's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationAnswer {
    /// True when approved.
    pub approved: bool,
    /// Why (mostly for rejections).
    pub reason: Option<String>,
}

impl ConfirmationAnswer {
    /// An approval.
    pub fn approve() -> Self {
        ConfirmationAnswer {
            approved: true,
            reason: None,
        }
    }

    /// A rejection with a reason.
    pub fn reject(reason: impl Into<String>) -> Self {
        ConfirmationAnswer {
            approved: false,
            reason: Some(reason.into()),
        }
    }
}

/// Gives or refuses confirmation for hard and human-escalation intents.
pub trait ConfirmationHandler {
    /// Answers one request.
    fn confirm(&self, request: &ConfirmationRequest) -> ConfirmationAnswer;
}

/// Approves everything (the reference default; for demos).
#[derive(Debug, Clone, Copy, Default)]
pub struct AutoApprove;

impl ConfirmationHandler for AutoApprove {
    fn confirm(&self, _request: &ConfirmationRequest) -> ConfirmationAnswer {
        ConfirmationAnswer::approve()
    }
}

/// Rejects everything (unattended runs that must not pass risky intents).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysReject;

impl ConfirmationHandler for AlwaysReject {
    fn confirm(&self, request: &ConfirmationRequest) -> ConfirmationAnswer {
        ConfirmationAnswer::reject(format!(
            "{} confirmation is rejected by policy (always-reject handler)",
            request.mode
        ))
    }
}

/// Longest answer line read from the terminal.
const MAX_ANSWER_BYTES: u64 = 1024;

/// Asks a person at a terminal: prints the request and reads `y`/`N`. Refuses (rejects)
/// when input is not a terminal, so a pipe or CI can never approve by accident.
pub struct TerminalHandler<R, W> {
    io: Mutex<(R, W)>,
    is_terminal: bool,
}

impl TerminalHandler<std::io::BufReader<std::io::Stdin>, std::io::Stderr> {
    /// Reads stdin, writes the prompt to stderr (stdout stays clean for JSON). Stdin
    /// is locked only while reading, never for the handler's lifetime.
    pub fn stdio() -> Self {
        let stdin = std::io::stdin();
        let is_terminal = stdin.is_terminal();
        TerminalHandler::new(
            std::io::BufReader::new(stdin),
            std::io::stderr(),
            is_terminal,
        )
    }
}

impl<R: BufRead, W: Write> TerminalHandler<R, W> {
    /// A handler over any reader and writer; `is_terminal` says whether the reader is
    /// a person at a terminal.
    pub fn new(reader: R, writer: W, is_terminal: bool) -> Self {
        TerminalHandler {
            io: Mutex::new((reader, writer)),
            is_terminal,
        }
    }

    /// Gives back the reader and writer.
    pub fn into_inner(self) -> Option<(R, W)> {
        self.io.into_inner().ok()
    }
}

impl<R: BufRead, W: Write> ConfirmationHandler for TerminalHandler<R, W> {
    fn confirm(&self, request: &ConfirmationRequest) -> ConfirmationAnswer {
        if !self.is_terminal {
            return ConfirmationAnswer::reject(format!(
                "stdin is not a terminal, so nobody can confirm this {} intent; refusing",
                request.mode
            ));
        }
        let Ok(mut guard) = self.io.lock() else {
            return ConfirmationAnswer::reject("terminal handler is unusable after a failure");
        };
        let (reader, writer) = &mut *guard;
        let prompt = format!(
            "CFA confirmation required ({})\n  intent:   {}\n  layer:    {}\n  datasets: {}\n  reason:   {}\nApprove? [y/N] ",
            request.mode,
            request.intent,
            request.target_layer,
            if request.datasets.is_empty() {
                "(none)".to_owned()
            } else {
                request.datasets.join(", ")
            },
            request.reason
        );
        if writer
            .write_all(prompt.as_bytes())
            .and_then(|()| writer.flush())
            .is_err()
        {
            return ConfirmationAnswer::reject("could not write the confirmation prompt");
        }
        let mut line = String::new();
        match reader.by_ref().take(MAX_ANSWER_BYTES).read_line(&mut line) {
            Ok(0) => ConfirmationAnswer::reject("no answer at the terminal (end of input)"),
            Ok(_) => match line.trim().to_lowercase().as_str() {
                "y" | "yes" | "s" | "sim" => ConfirmationAnswer::approve(),
                _ => ConfirmationAnswer::reject("declined at the terminal"),
            },
            Err(e) => ConfirmationAnswer::reject(format!("could not read the answer: {e}")),
        }
    }
}

/// The result of confirming a resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmationOutcome {
    /// True when the intent may go on.
    pub approved: bool,
    /// The reason recorded in the `confirmation` audit event.
    pub reason: String,
    /// The rejection fault (block), when rejected.
    pub fault: Option<Fault>,
}

/// The reason handed to the handler: gold-layer write; protected-layer write with PII;
/// low confidence; competing interpretations — joined with `; `, or `elevated risk`.
pub fn handler_reason(resolution: &Resolution) -> String {
    let sig = &resolution.signature;
    let mut parts = Vec::new();
    if sig.target_layer == TargetLayer::Gold {
        parts.push("gold-layer write".to_owned());
    }
    if sig.writes_to_protected_layer() && sig.contains_pii() {
        parts.push("protected-layer write with PII".to_owned());
    }
    if resolution.confidence < DEFAULT_MIN_CONFIDENCE {
        parts.push(format!("low confidence ({})", fmt2(resolution.confidence)));
    }
    let n = resolution.competing_interpretations.len();
    if n > 0 {
        parts.push(format!("{n} competing interpretation(s)"));
    }
    if parts.is_empty() {
        "elevated risk".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Confirms a resolution: auto and soft pass without asking; hard and human
/// escalation ask `handler`, and a rejection yields a blocking fault.
pub fn confirm(resolution: &Resolution, handler: &dyn ConfirmationHandler) -> ConfirmationOutcome {
    let (label, approved_reason, code, severity) = match resolution.confirmation_mode {
        ConfirmationMode::Auto => {
            return ConfirmationOutcome {
                approved: true,
                reason: "Auto-confirmed: low risk.".to_owned(),
                fault: None,
            };
        }
        ConfirmationMode::Soft => {
            return ConfirmationOutcome {
                approved: true,
                reason: format!("Soft-confirmed: confidence={}", fmt2(resolution.confidence)),
                fault: None,
            };
        }
        ConfirmationMode::Hard => ("Hard", "Hard approved.", HARD_REJECTED, FaultSeverity::High),
        ConfirmationMode::HumanEscalation => (
            "Human escalation",
            "Human escalation approved.",
            HUMAN_ESCALATION_REJECTED,
            FaultSeverity::Critical,
        ),
    };
    let sig = &resolution.signature;
    let request = ConfirmationRequest {
        mode: resolution.confirmation_mode,
        reason: handler_reason(resolution),
        intent_id: sig.intent_id.clone(),
        intent: sig.source_intent_raw.clone(),
        target_layer: sig.target_layer,
        datasets: sig.datasets.iter().map(|d| d.name.clone()).collect(),
        confidence: resolution.confidence,
    };
    let answer = handler.confirm(&request);
    if answer.approved {
        return ConfirmationOutcome {
            approved: true,
            reason: approved_reason.to_owned(),
            fault: None,
        };
    }
    let why = answer
        .reason
        .unwrap_or_else(|| "rejected by the confirmation handler".to_owned());
    ConfirmationOutcome {
        approved: false,
        reason: format!("{label} rejected: {why}"),
        fault: Some(Fault {
            code: code.into(),
            family: FaultFamily::Semantic,
            severity,
            stage: CONFIRMATION_STAGE.into(),
            message: format!(
                "Confirmation rejected (mode: {}): {why}",
                resolution.confirmation_mode
            )
            .into(),
            mandatory_action: PolicyAction::Block,
            remediation: vec![
                "Review the intent and resubmit it with explicit datasets, target layer and operation."
                    .to_owned(),
            ].into(),
            detected_before_execution: true,
        }),
    }
}
