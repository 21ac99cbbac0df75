//! Retention that keeps verification possible: drop a prefix of a JSONL log but
//! write an anchor (the Merkle state and last hash of the dropped prefix, and
//! optionally a signed checkpoint at the cut) so the kept suffix still verifies.

use crate::error::{AuditError, IoError, NoteError};
use crate::jsonl::{self, lock_path};
use crate::merkle::{CompactRange, Hash};
use crate::note::{Checkpoint, SignerKey, VerifierKey};
use crate::verify::{BadReason, ChainStart, VerifyOptions, VerifyReport};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

/// What a verifier needs to start in the middle of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Number of dropped events (the first kept event's global index).
    pub size: u64,
    /// `event_hash` of the last dropped event.
    pub last_hash: String,
    /// Merkle peaks of the dropped prefix (largest subtree first).
    pub peaks: Vec<Hash>,
    /// A signed checkpoint at the cut, when a key was given.
    pub checkpoint: Option<String>,
}

impl Anchor {
    /// JSON text of the anchor file.
    pub fn to_json(&self) -> String {
        let v = json!({
            "format": "cfa-audit-anchor/v1",
            "size": self.size,
            "last_hash": self.last_hash,
            "peaks": self.peaks.iter().map(|p| B64.encode(p)).collect::<Vec<_>>(),
            "checkpoint": self.checkpoint,
        });
        cfa_types::canonical::to_string(&v, cfa_types::canonical::Style::InsertionAscii)
    }

    /// Parses an anchor file.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |m: &str| NoteError::new("anchor", m.to_owned());
        let v: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let field = |k: &str| v.get(k).unwrap_or(&Value::Null);
        if field("format") != "cfa-audit-anchor/v1" {
            return Err(bad("format must be cfa-audit-anchor/v1"));
        }
        let size = field("size")
            .as_u64()
            .ok_or_else(|| bad("size must be an integer"))?;
        let last_hash = field("last_hash")
            .as_str()
            .ok_or_else(|| bad("last_hash must be a string"))?
            .to_owned();
        let mut peaks = Vec::new();
        for p in field("peaks")
            .as_array()
            .ok_or_else(|| bad("peaks must be a list"))?
        {
            let raw = B64
                .decode(p.as_str().unwrap_or_default())
                .map_err(|e| bad(&e.to_string()))?;
            peaks.push(
                raw.as_slice()
                    .try_into()
                    .map_err(|_| bad("a peak has 32 bytes"))?,
            );
        }
        let checkpoint = field("checkpoint").as_str().map(str::to_owned);
        Ok(Self {
            size,
            last_hash,
            peaks,
            checkpoint,
        })
    }

    /// The chain start for [`VerifyOptions::start`]; with `key`, the anchor's signed
    /// checkpoint must verify and match the peaks.
    pub fn chain_start(&self, key: Option<&VerifierKey>) -> Result<ChainStart, AuditError> {
        let tree = CompactRange::from_parts(self.size, self.peaks.clone())?;
        if let Some(key) = key {
            let note = self
                .checkpoint
                .as_deref()
                .ok_or_else(|| NoteError::new("anchor", "no signed checkpoint in the anchor"))?;
            let cp = Checkpoint::open(note, key)?;
            if cp.size != self.size || cp.root != tree.root() {
                return Err(NoteError::new(
                    "anchor",
                    "checkpoint does not match the anchor's tree",
                )
                .into());
            }
        }
        Ok(ChainStart {
            previous_hash: self.last_hash.clone(),
            tree,
        })
    }
}

/// Drops the first `keep_from` events of the JSONL log at `log`, after checking that
/// the whole log verifies. The anchor is written (and synced) to `anchor_out` before
/// the log is replaced atomically (temp file + rename) under the append lock.
pub fn retain_suffix(
    log: &Path,
    keep_from: u64,
    anchor_out: &Path,
    signer: Option<(&SignerKey, &str)>,
) -> Result<Anchor, AuditError> {
    let lp = lock_path(log);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lp)
        .map_err(|e| IoError::new(&lp, "open", e))?;
    lock.lock().map_err(|e| IoError::new(&lp, "lock", e))?;
    let out = retain_locked(log, keep_from, anchor_out, signer);
    let _ = lock.unlock();
    out
}

fn retain_locked(
    log: &Path,
    keep_from: u64,
    anchor_out: &Path,
    signer: Option<(&SignerKey, &str)>,
) -> Result<Anchor, AuditError> {
    let opts = VerifyOptions {
        merkle: true,
        root_at: Some(keep_from),
        collect_leaves: true,
        ..VerifyOptions::default()
    };
    let report = jsonl::verify_file(log, &opts, &mut |_| {})?;
    if let Some(bad) = &report.first_bad {
        return Err(crate::error::InvalidEventError {
            source_name: log.display().to_string(),
            reason: format!(
                "refusing to drop events from a broken chain: event {}: {}",
                bad.index, bad.reason
            ),
        }
        .into());
    }
    if keep_from > report.events {
        return Err(crate::error::ProofError::new(format!(
            "cannot keep from event {keep_from}: the log has {} events",
            report.events
        ))
        .into());
    }
    let mut tree = CompactRange::new();
    for leaf in report
        .leaves
        .iter()
        .take(usize::try_from(keep_from).unwrap_or(usize::MAX))
    {
        tree.push(*leaf);
    }
    // Second pass: copy the kept lines and remember the last dropped hash.
    let f = File::open(log).map_err(|e| IoError::new(log, "open", e))?;
    let mut tmp_name = log.as_os_str().to_owned();
    tmp_name.push(".retain-tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    let mut w = BufWriter::new(File::create(&tmp).map_err(|e| IoError::new(&tmp, "create", e))?);
    let mut index = 0u64;
    let mut last_hash = String::new();
    for line in BufReader::new(f).split(b'\n') {
        let line = line.map_err(|e| IoError::new(log, "read", e))?;
        if line.trim_ascii().is_empty() {
            continue;
        }
        if index < keep_from {
            if index + 1 == keep_from {
                let text = String::from_utf8_lossy(&line);
                last_hash = crate::event::AuditEvent::from_jsonl_line(&text)
                    .map_err(|e| BadReason::from(e).to_string())
                    .map_err(|reason| crate::error::InvalidEventError {
                        source_name: log.display().to_string(),
                        reason,
                    })?
                    .event_hash;
            }
        } else {
            w.write_all(&line)
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|e| IoError::new(&tmp, "write", e))?;
        }
        index += 1;
    }
    let checkpoint = match signer {
        Some((key, origin)) => Some(
            Checkpoint {
                origin: origin.to_owned(),
                size: keep_from,
                root: tree.root(),
            }
            .sign(key)?,
        ),
        None => None,
    };
    let anchor = Anchor {
        size: keep_from,
        last_hash,
        peaks: tree.peaks().to_vec(),
        checkpoint,
    };
    let mut af = File::create(anchor_out).map_err(|e| IoError::new(anchor_out, "create", e))?;
    af.write_all(anchor.to_json().as_bytes())
        .and_then(|()| af.sync_all())
        .map_err(|e| IoError::new(anchor_out, "write", e))?;
    let wf = w
        .into_inner()
        .map_err(|e| IoError::new(&tmp, "write", e.into_error()))?;
    wf.sync_all().map_err(|e| IoError::new(&tmp, "fsync", e))?;
    std::fs::rename(&tmp, log).map_err(|e| IoError::new(log, "replace", e))?;
    Ok(anchor)
}

/// Verifies a retained log from its anchor.
pub fn verify_anchored(
    log: &Path,
    anchor: &Anchor,
    key: Option<&VerifierKey>,
    mut opts: VerifyOptions,
) -> Result<VerifyReport, AuditError> {
    opts.start = Some(anchor.chain_start(key)?);
    jsonl::verify_file(log, &opts, &mut |_| {})
}
