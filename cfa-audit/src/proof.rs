//! Self-contained offline proofs in the C2SP tlog-proof layout:
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the event's JSONL line>
//! index <N>
//! <base64 inclusion-proof hash>…
//!
//! <signed checkpoint note>
//! ```
//!
//! Checking needs only the proof and the log's verifier key, never the log.

use crate::error::{AuditError, NoteError, ProofError};
use crate::event::AuditEvent;
use crate::merkle::{self, Hash};
use crate::note::{Checkpoint, VerifierKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// An inclusion proof of one event in a checkpointed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineProof {
    /// The event's JSONL line (carried in the `extra` line).
    pub event_line: String,
    /// The event's 0-based index in the log.
    pub index: u64,
    /// The RFC 6962 audit path.
    pub path: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint_note: String,
}

impl OfflineProof {
    /// Builds a proof from the log's leaves (at least the checkpoint's size).
    pub fn build(
        leaves: &[Hash],
        index: u64,
        event_line: String,
        checkpoint_note: String,
    ) -> Result<Self, AuditError> {
        let checkpoint_note =
            crate::note::lf_line_endings("checkpoint", &checkpoint_note)?.into_owned();
        let cp = Checkpoint::parse_unverified(&checkpoint_note)?;
        let size = usize::try_from(cp.size).map_err(|_| ProofError::new("checkpoint too large"))?;
        let covered = leaves.get(..size).ok_or_else(|| {
            ProofError::new(format!(
                "the checkpoint covers {} events but the log has {}",
                cp.size,
                leaves.len()
            ))
        })?;
        if merkle::root(covered) != cp.root {
            return Err(ProofError::new("the log does not match the checkpoint root").into());
        }
        let path = merkle::inclusion_proof(covered, index)?;
        Ok(Self {
            event_line,
            index,
            path,
            checkpoint_note,
        })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{HEADER}\nextra {}\nindex {}\n",
            B64.encode(self.event_line.as_bytes()),
            self.index
        );
        for h in &self.path {
            s.push_str(&B64.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint_note);
        s
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, AuditError> {
        let bad = |m: &str| AuditError::from(NoteError::new("proof", m.to_owned()));
        let text = crate::note::lf_line_endings("proof", text)?;
        let (head, checkpoint_note) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad("first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut next = lines.next().unwrap_or_default();
        let mut event_line = None;
        if let Some(b64) = next.strip_prefix("extra ") {
            let raw = B64
                .decode(b64)
                .map_err(|e| bad(&format!("bad extra data: {e}")))?;
            event_line = Some(String::from_utf8(raw).map_err(|_| bad("extra data is not UTF-8"))?);
            next = lines.next().unwrap_or_default();
        }
        let index: u64 = next
            .strip_prefix("index ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("missing index line"))?;
        let mut path = Vec::new();
        for l in lines {
            let raw = B64
                .decode(l)
                .map_err(|e| bad(&format!("bad proof hash: {e}")))?;
            path.push(
                raw.as_slice()
                    .try_into()
                    .map_err(|_| bad("a proof hash has 32 bytes"))?,
            );
        }
        Ok(Self {
            event_line: event_line.ok_or_else(|| bad("missing extra line with the event"))?,
            index,
            path,
            checkpoint_note: checkpoint_note.to_owned(),
        })
    }

    /// Checks the proof offline: the checkpoint signature, the event's own hash, and
    /// its inclusion at `index` under the checkpoint root.
    pub fn verify(&self, key: &VerifierKey, allow_legacy: bool) -> Result<ProvenEvent, AuditError> {
        let checkpoint = Checkpoint::open(&self.checkpoint_note, key)?;
        let event = AuditEvent::from_jsonl_line(&self.event_line).map_err(|e| {
            AuditError::from(crate::error::InvalidEventError {
                source_name: "proof".into(),
                reason: e.to_string(),
            })
        })?;
        let computed = event.compute_hash();
        let legacy_ok =
            allow_legacy && event.event_hash.len() == 16 && computed.starts_with(&event.event_hash);
        if computed != event.event_hash && !legacy_ok {
            return Err(ProofError::new(format!(
                "the event's content hashes to {computed}, not its event_hash {}",
                event.event_hash
            ))
            .into());
        }
        if let Some(m) = event.unhashed_mismatch() {
            return Err(ProofError::new(format!(
                "the event's top-level {} {:?} is not covered by its hash and differs from \
                 the hashed copy in details ({})",
                m.field, m.top_level, m.in_details
            ))
            .into());
        }
        merkle::verify_inclusion(
            &merkle::event_leaf(&event.event_hash),
            self.index,
            checkpoint.size,
            &self.path,
            &checkpoint.root,
        )?;
        Ok(ProvenEvent {
            event,
            index: self.index,
            checkpoint,
        })
    }
}

/// A verified proof's content.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvenEvent {
    /// The event.
    pub event: AuditEvent,
    /// Its index.
    pub index: u64,
    /// The checkpoint it is included in.
    pub checkpoint: Checkpoint,
}
