//! [`verify`]: every check an auditor needs, offline, on a bundle's files alone (and the
//! verifier keys of the signers).

use super::docs::{self, Carried, RunEvent};
use super::{
    Bundle, CHECKPOINT, DSSE, DSSE_PAYLOAD_TYPE, EVENTS, MANIFEST, PROVENANCE, STATEMENT,
    TOOLCHAIN, sha256_hex,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cfa_audit::{AuditEvent, Checkpoint, OfflineProof, VerifierKey, merkle};
use serde_json::{Value, json};

/// One check of a bundle: the file it is about, whether it passed, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The bundle file (relative path).
    pub file: String,
    /// Whether the check passed.
    pub ok: bool,
    /// What was checked, or what differs.
    pub what: String,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// The intent id the manifest names.
    pub intent_id: Option<String>,
    /// Whether signatures were checked (a verifier key was given).
    pub signatures_checked: bool,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl VerifyReport {
    /// `true` when every check passed.
    pub fn ok(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }

    /// `{ok, intent_id, signatures_checked, checks: [{file, ok, what}], failures: n}`.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "intent_id": self.intent_id,
            "signatures_checked": self.signatures_checked,
            "failures": self.failures().count(),
            "checks": self.checks.iter().map(|c| json!({"file": c.file, "ok": c.ok, "what": c.what})).collect::<Vec<_>>(),
        })
    }

    fn pass(&mut self, file: &str, what: impl Into<String>) {
        self.checks.push(Check {
            file: file.to_owned(),
            ok: true,
            what: what.into(),
        });
    }

    fn fail(&mut self, file: &str, what: impl Into<String>) {
        self.checks.push(Check {
            file: file.to_owned(),
            ok: false,
            what: what.into(),
        });
    }
}

fn short(v: Option<&Value>) -> String {
    match v {
        None => "nothing".into(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 80 {
                format!("{}…", s.chars().take(80).collect::<String>())
            } else {
                s
            }
        }
    }
}

/// The first JSON path where `have` and `want` differ.
fn first_diff(path: &str, have: Option<&Value>, want: Option<&Value>) -> Option<String> {
    match (have, want) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            for (k, bv) in b {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(d) = first_diff(&p, a.get(k), Some(bv)) {
                    return Some(d);
                }
            }
            a.keys().find(|k| !b.contains_key(*k)).map(|k| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                format!("{p}: unexpected key (the events give none)")
            })
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for (i, bv) in b.iter().enumerate() {
                if let Some(d) = first_diff(&format!("{path}[{i}]"), a.get(i), Some(bv)) {
                    return Some(d);
                }
            }
            (a.len() > b.len())
                .then(|| format!("{path}: {} items, the events give {}", a.len(), b.len()))
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!(
            "{}: the bundle has {}, the events give {}",
            if path.is_empty() { "(document)" } else { path },
            short(a),
            short(b)
        )),
    }
}

fn parse_json(bytes: Option<&Vec<u8>>) -> Option<Value> {
    bytes.and_then(|b| serde_json::from_slice(b).ok())
}

/// Checks a bundle: every file against `manifest.json` (missing, edited and extra files
/// fail), each event's own hash and the chain between consecutive events, each event's
/// inclusion proof against `audit/checkpoint`, the checkpoint's and the DSSE envelope's
/// signatures with `keys` (not checked when `keys` is empty), and every document against
/// the one rebuilt from the events. Never fails early: every problem is a failed
/// [`Check`] naming the file.
pub fn verify(bundle: &Bundle, keys: &[VerifierKey]) -> VerifyReport {
    let mut r = VerifyReport {
        signatures_checked: !keys.is_empty(),
        ..VerifyReport::default()
    };
    check_manifest(bundle, &mut r);
    let Some(events) = check_events(bundle, &mut r) else {
        return r;
    };
    let note = check_checkpoint(bundle, keys, &mut r);
    let events = check_proofs(bundle, events, note.as_ref(), &mut r);
    if let (Some(events), Some((cp, text))) = (events, note) {
        check_documents(bundle, &events, &cp, &text, &mut r);
    }
    check_dsse(bundle, keys, &mut r);
    r
}

fn check_manifest(bundle: &Bundle, r: &mut VerifyReport) {
    let Some(m) = parse_json(bundle.files.get(MANIFEST)) else {
        r.fail(
            MANIFEST,
            if bundle.files.contains_key(MANIFEST) {
                "not valid JSON"
            } else {
                "missing"
            },
        );
        return;
    };
    r.intent_id = m
        .get("intent_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(list) = m.get("files").and_then(Value::as_array) else {
        r.fail(MANIFEST, "no `files` list");
        return;
    };
    let mut listed = std::collections::BTreeSet::new();
    let mut bad = 0usize;
    for entry in list {
        let path = entry
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let want = entry
            .get("sha256")
            .and_then(Value::as_str)
            .unwrap_or_default();
        listed.insert(path.to_owned());
        match bundle.files.get(path) {
            None => {
                bad += 1;
                r.fail(path, "missing (listed in manifest.json)");
            }
            Some(bytes) => {
                let have = sha256_hex(bytes);
                if have != want {
                    bad += 1;
                    r.fail(
                        path,
                        format!("edited: hashes to sha256 {have}, manifest.json says {want}"),
                    );
                }
            }
        }
    }
    for path in bundle.files.keys() {
        if path != MANIFEST && !listed.contains(path) {
            bad += 1;
            r.fail(path, "extra file, not listed in manifest.json");
        }
    }
    if bad == 0 {
        r.pass(
            MANIFEST,
            format!(
                "{} files, every SHA-256 matches, nothing missing or extra",
                list.len()
            ),
        );
    }
}

fn check_events(bundle: &Bundle, r: &mut VerifyReport) -> Option<Vec<(String, AuditEvent)>> {
    let Some(text) = bundle.text(EVENTS) else {
        r.fail(
            EVENTS,
            "missing or not UTF-8: nothing else can be checked against the log",
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let line_no = n + 1;
        let e = match AuditEvent::from_jsonl_line(line) {
            Ok(e) => e,
            Err(err) => {
                ok = false;
                r.fail(EVENTS, format!("line {line_no}: not an audit event: {err}"));
                continue;
            }
        };
        let computed = e.compute_hash();
        if computed != e.event_hash {
            ok = false;
            r.fail(
                EVENTS,
                format!(
                    "line {line_no}: the event's content hashes to {computed}, not its event_hash {} (the event was edited)",
                    e.event_hash
                ),
            );
        } else if let Some(m) = e.unhashed_mismatch() {
            ok = false;
            r.fail(
                EVENTS,
                format!(
                    "line {line_no}: top-level {} {:?} differs from the hashed copy in details ({})",
                    m.field, m.top_level, m.in_details
                ),
            );
        }
        if let Some(id) = &r.intent_id
            && &e.intent_id != id
        {
            ok = false;
            r.fail(
                EVENTS,
                format!(
                    "line {line_no}: intent_id {} is not the bundle's {id}",
                    e.intent_id
                ),
            );
        }
        out.push((line.to_owned(), e));
    }
    if out.is_empty() {
        r.fail(EVENTS, "no events");
        return None;
    }
    if ok {
        r.pass(
            EVENTS,
            format!("{} events, each hashes to its event_hash", out.len()),
        );
    }
    Some(out)
}

fn check_checkpoint(
    bundle: &Bundle,
    keys: &[VerifierKey],
    r: &mut VerifyReport,
) -> Option<(Checkpoint, String)> {
    let Some(text) = bundle.text(CHECKPOINT) else {
        r.fail(CHECKPOINT, "missing or not UTF-8");
        return None;
    };
    let cp = match Checkpoint::parse_unverified(text) {
        Ok(cp) => cp,
        Err(e) => {
            r.fail(CHECKPOINT, format!("not a checkpoint: {e}"));
            return None;
        }
    };
    if keys.is_empty() {
        r.pass(
            CHECKPOINT,
            format!(
                "{} events, origin {}; signature not checked (no verifier key given)",
                cp.size, cp.origin
            ),
        );
        return Some((cp, text.to_owned()));
    }
    let mut last_err = String::new();
    for k in keys {
        match Checkpoint::open(text, k) {
            Ok(opened) => {
                r.pass(
                    CHECKPOINT,
                    format!(
                        "{} events, origin {}; signature verified ({})",
                        opened.size,
                        opened.origin,
                        k.key_label()
                    ),
                );
                return Some((opened, text.to_owned()));
            }
            Err(e) => last_err = e.to_string(),
        }
    }
    r.fail(
        CHECKPOINT,
        format!("signature does not verify with the given key(s): {last_err}"),
    );
    // The proofs are still checked against its root, so a bad event is named too.
    Some((cp, text.to_owned()))
}

fn proof_index(name: &str) -> Option<u64> {
    name.strip_prefix("audit/proofs/")?
        .strip_suffix(".proof")?
        .parse()
        .ok()
}

/// Checks each proof against its event line and the checkpoint; returns the events with
/// their log indices when every event has a proof.
fn check_proofs(
    bundle: &Bundle,
    events: Vec<(String, AuditEvent)>,
    checkpoint: Option<&(Checkpoint, String)>,
    r: &mut VerifyReport,
) -> Option<Vec<RunEvent>> {
    let mut proofs: Vec<(u64, &String)> = bundle
        .files
        .keys()
        .filter(|k| k.starts_with("audit/proofs/"))
        .filter_map(|k| match proof_index(k) {
            Some(i) => Some((i, k)),
            None => {
                r.fail(k, "not a proof file name (audit/proofs/<index>.proof)");
                None
            }
        })
        .collect();
    proofs.sort_by_key(|(i, _)| *i);
    if proofs.len() != events.len() {
        r.fail(
            "audit/proofs/",
            format!(
                "{} proofs for {} events: every event needs exactly one",
                proofs.len(),
                events.len()
            ),
        );
        return None;
    }
    let mut out = Vec::with_capacity(events.len());
    let mut all_ok = true;
    for ((index, name), (line, event)) in proofs.into_iter().zip(events) {
        let ok = check_one_proof(bundle, name, index, &line, &event, checkpoint, r);
        all_ok &= ok;
        out.push(RunEvent { index, line, event });
    }
    // The chain between events next to each other in the log.
    let mut chain_ok = true;
    for w in out.windows(2) {
        if let [a, b] = w {
            if b.index <= a.index {
                chain_ok = false;
                r.fail(
                    EVENTS,
                    format!(
                        "events out of log order (index {} after {})",
                        b.index, a.index
                    ),
                );
            } else if b.index == a.index + 1 && b.event.previous_hash != a.event.event_hash {
                chain_ok = false;
                r.fail(
                    EVENTS,
                    format!(
                        "the chain breaks between log events {} and {}: previous_hash {} is not {}",
                        a.index, b.index, b.event.previous_hash, a.event.event_hash
                    ),
                );
            }
        }
    }
    if chain_ok {
        r.pass(
            EVENTS,
            "events are in log order and chain where they are adjacent",
        );
    }
    if all_ok {
        r.pass(
            "audit/proofs/",
            format!(
                "{} inclusion proofs verify against the checkpoint",
                out.len()
            ),
        );
    }
    Some(out)
}

fn check_one_proof(
    bundle: &Bundle,
    name: &str,
    index: u64,
    line: &str,
    event: &AuditEvent,
    checkpoint: Option<&(Checkpoint, String)>,
    r: &mut VerifyReport,
) -> bool {
    let Some(text) = bundle.text(name) else {
        r.fail(name, "not UTF-8");
        return false;
    };
    let proof = match OfflineProof::parse(text) {
        Ok(p) => p,
        Err(e) => {
            r.fail(name, format!("not a proof: {e}"));
            return false;
        }
    };
    if proof.index != index {
        r.fail(
            name,
            format!("says index {}, its name says {index}", proof.index),
        );
        return false;
    }
    if proof.event_line != line {
        r.fail(
            name,
            format!("its event is not line of {EVENTS} for log index {index}"),
        );
        return false;
    }
    let Some((cp, cp_text)) = checkpoint else {
        r.fail(name, "no checkpoint to check it against");
        return false;
    };
    if &proof.checkpoint_note != cp_text {
        r.fail(name, format!("its checkpoint is not {CHECKPOINT}"));
        return false;
    }
    // The proof's checkpoint is the bundle's (whose signature is checked once, above);
    // what is left is the audit path from the event to the checkpoint's root.
    match merkle::verify_inclusion(
        &merkle::event_leaf(&event.event_hash),
        index,
        cp.size,
        &proof.path,
        &cp.root,
    ) {
        Ok(()) => true,
        Err(e) => {
            r.fail(
                name,
                format!("the event is not included under the checkpoint root: {e}"),
            );
            false
        }
    }
}

fn check_documents(
    bundle: &Bundle,
    events: &[RunEvent],
    cp: &Checkpoint,
    cp_text: &str,
    r: &mut VerifyReport,
) {
    let intent_id = r
        .intent_id
        .clone()
        .or_else(|| events.first().map(|e| e.event.intent_id.clone()))
        .unwrap_or_default();
    let toolchain = parse_json(bundle.files.get(TOOLCHAIN)).unwrap_or(Value::Null);
    let provenance = parse_json(bundle.files.get(PROVENANCE)).unwrap_or(Value::Null);
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let carried = Carried {
        cfa_version: field(&toolchain, "cfa_version"),
        platform: field(&toolchain, "platform"),
        audit_store: field(&toolchain, "audit_store"),
        lifecycle: field(&provenance, "lifecycle"),
    };
    for (name, want) in docs::documents(&intent_id, events, cp, cp_text, &carried) {
        match bundle.files.get(name) {
            None => r.fail(name, "missing"),
            Some(have) if have.as_slice() == want.as_bytes() => {
                r.pass(name, "matches the document rebuilt from the events");
            }
            Some(have) => {
                let want_v: Option<Value> = serde_json::from_str(&want).ok();
                let what = match serde_json::from_slice::<Value>(have) {
                    Err(e) => format!("not valid JSON: {e}"),
                    Ok(have_v) => first_diff("", Some(&have_v), want_v.as_ref())
                        .unwrap_or_else(|| "same content, different bytes (reformatted)".into()),
                };
                r.fail(name, format!("differs from the events: {what}"));
            }
        }
    }
}

fn check_dsse(bundle: &Bundle, keys: &[VerifierKey], r: &mut VerifyReport) {
    let Some(bytes) = bundle.files.get(DSSE) else {
        if !keys.is_empty() {
            r.pass(
                DSSE,
                "absent: the statement is unsigned, so what the events cannot say (the cfa \
                 version and platform, the lifecycle records) rests on the manifest alone",
            );
        }
        return;
    };
    let Ok(env) = serde_json::from_slice::<Value>(bytes) else {
        r.fail(DSSE, "not valid JSON");
        return;
    };
    let s = |k: &str| env.get(k).and_then(Value::as_str).unwrap_or_default();
    if s("payloadType") != DSSE_PAYLOAD_TYPE {
        r.fail(
            DSSE,
            format!(
                "payloadType is {:?}, not {DSSE_PAYLOAD_TYPE}",
                s("payloadType")
            ),
        );
        return;
    }
    let Ok(payload) = B64.decode(s("payload")) else {
        r.fail(DSSE, "payload is not base64");
        return;
    };
    if Some(&payload) != bundle.files.get(STATEMENT) {
        r.fail(DSSE, format!("its payload is not {STATEMENT}"));
        return;
    }
    if keys.is_empty() {
        r.pass(
            DSSE,
            format!("payload is {STATEMENT}; signature not checked (no verifier key given)"),
        );
        return;
    }
    let pae = super::dsse_pae(DSSE_PAYLOAD_TYPE, &payload);
    let sigs = env
        .get("signatures")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for sig in &sigs {
        let keyid = sig.get("keyid").and_then(Value::as_str).unwrap_or_default();
        let Ok(raw) = B64.decode(sig.get("sig").and_then(Value::as_str).unwrap_or_default()) else {
            continue;
        };
        for k in keys {
            if k.key_label() == keyid && k.verify_bytes(&pae, &raw).is_ok() {
                r.pass(
                    DSSE,
                    format!("payload is {STATEMENT}; signature verified ({keyid})"),
                );
                return;
            }
        }
    }
    r.fail(DSSE, "no signature verifies with the given key(s) (the statement or envelope was altered, or another key signed it)");
}
