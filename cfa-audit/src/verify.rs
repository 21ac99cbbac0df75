//! One-pass chain verification: constant memory, both cores, first bad event reported.
//!
//! Each line is checked on its own (parse + hash, in parallel over halves of a chunk);
//! links are then checked in order. Lines are cut, stripped and skipped exactly like
//! the reference's `read_text().strip().splitlines()` + `json.loads` (see [`crate::lines`]).

use crate::event::{AuditEvent, EventShapeError, FieldMismatch};
use crate::fastline;
use crate::lines::{self, Shape};
use crate::merkle::{self, CompactRange, Hash};
use std::borrow::Cow;
use std::io::Read;

/// What to check and collect.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Accept legacy 16-hex `event_hash` values (the reference's pre-3.1 form).
    pub allow_legacy: bool,
    /// Count the events of this intent (the whole chain is still verified).
    pub intent_id: Option<String>,
    /// Maintain the Merkle tree over event hashes (needed for roots and checkpoints).
    pub merkle: bool,
    /// Also record the Merkle root when the tree reaches this size.
    pub root_at: Option<u64>,
    /// Keep every leaf hash (needed to build proofs; 32 bytes per event).
    pub collect_leaves: bool,
    /// Start from an anchor instead of genesis (see [`crate::retain`]).
    pub start: Option<ChainStart>,
    /// Worker threads for hashing (0 or 1: single-threaded; default 2).
    pub threads: usize,
}

/// Where a chain starts when its prefix was dropped.
#[derive(Debug, Clone, Default)]
pub struct ChainStart {
    /// The `event_hash` of the last dropped event (the first kept event's `previous_hash`).
    pub previous_hash: String,
    /// Merkle state of the dropped prefix (its size is the index of the first kept event).
    pub tree: CompactRange,
}

/// Why an event is bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadReason {
    /// `previous_hash` is not the prior event's `event_hash`.
    LinkBroken {
        /// The prior event's hash (`""` at genesis).
        expected: String,
        /// What the event says.
        found: String,
    },
    /// `event_hash` is not the hash of the event's content.
    HashMismatch {
        /// Stored hash.
        stored: String,
        /// Recomputed hash.
        computed: String,
    },
    /// A legacy 16-hex hash, rejected without `allow_legacy`.
    LegacyHash {
        /// Stored hash.
        stored: String,
    },
    /// The line is not JSON (or not an object).
    Unparsable {
        /// Parser message.
        message: String,
    },
    /// A top-level key the reference does not know.
    UnknownKey {
        /// The key.
        key: String,
    },
    /// One of the nine keys is missing.
    MissingKey {
        /// The key.
        key: String,
    },
    /// A key holds the wrong JSON type.
    InvalidField {
        /// The key.
        key: String,
        /// Expected type.
        expected: String,
    },
    /// The last line is incomplete (crash during append); see `repair`.
    TornTail {
        /// Byte offset where the torn line starts.
        offset: u64,
    },
    /// An object has the same key twice.
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// The object holding it (`""`: the event itself).
        path: String,
    },
    /// A string holds a lone UTF-16 surrogate escape.
    LoneSurrogate {
        /// The escape as written (`\ud800`).
        escape: String,
        /// 1-based column.
        column: usize,
    },
    /// A top-level value the hash does not cover differs from its hashed copy in details.
    FieldMismatch {
        /// The field.
        field: String,
        /// The top-level value.
        top_level: String,
        /// The hashed copy in details (JSON text).
        in_details: String,
    },
    /// Whitespace the reference's reader does not accept here (a whitespace-only line
    /// between events, or Unicode padding around an event that is not the first or last).
    Whitespace {
        /// What is wrong.
        message: String,
    },
}

impl BadReason {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::LinkBroken { .. } => "link_broken",
            Self::HashMismatch { .. } => "hash_mismatch",
            Self::LegacyHash { .. } => "legacy_hash",
            Self::Unparsable { .. } => "unparsable_line",
            Self::UnknownKey { .. } => "unknown_key",
            Self::MissingKey { .. } => "missing_key",
            Self::InvalidField { .. } => "invalid_field",
            Self::TornTail { .. } => "torn_tail",
            Self::DuplicateKey { .. } => "duplicate_key",
            Self::LoneSurrogate { .. } => "lone_surrogate",
            Self::FieldMismatch { .. } => "field_mismatch",
            Self::Whitespace { .. } => "invalid_whitespace",
        }
    }
}

impl std::fmt::Display for BadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LinkBroken { expected, found } => write!(
                f,
                "link broken: previous_hash {found:?} is not the prior event_hash {expected:?}"
            ),
            Self::HashMismatch { stored, computed } => write!(
                f,
                "hash mismatch: event_hash {stored:?} but the content hashes to {computed:?}"
            ),
            Self::LegacyHash { stored } => write!(
                f,
                "legacy 16-hex event_hash {stored:?} (accepted only with --allow-legacy)"
            ),
            Self::Unparsable { message } => write!(f, "unparsable line: {message}"),
            Self::UnknownKey { key } => write!(f, "unknown key {key:?}"),
            Self::MissingKey { key } => write!(f, "missing key {key:?}"),
            Self::InvalidField { key, expected } => write!(f, "key {key:?} must be {expected}"),
            Self::TornTail { offset } => write!(
                f,
                "torn tail: incomplete last line at byte offset {offset} (run `cfa audit repair`)"
            ),
            Self::DuplicateKey { key, path } if path.is_empty() => {
                write!(f, "duplicate key {key:?} (a JSON key may appear only once)")
            }
            Self::DuplicateKey { key, path } => write!(
                f,
                "duplicate key {key:?} in {path} (a JSON key may appear only once)"
            ),
            Self::LoneSurrogate { escape, column } => write!(
                f,
                "lone UTF-16 surrogate escape {escape} at column {column}: it is not a Unicode \
                 character, so the event cannot be read or hashed faithfully"
            ),
            Self::FieldMismatch {
                field,
                top_level,
                in_details,
            } => write!(
                f,
                "field mismatch: top-level {field} {top_level:?} is not covered by the hash and \
                 differs from its hashed copy in details ({in_details})"
            ),
            Self::Whitespace { message } => write!(f, "invalid whitespace: {message}"),
        }
    }
}

impl From<FieldMismatch> for BadReason {
    fn from(m: FieldMismatch) -> Self {
        Self::FieldMismatch {
            field: m.field.to_owned(),
            top_level: m.top_level,
            in_details: m.in_details,
        }
    }
}

impl From<EventShapeError> for BadReason {
    fn from(e: EventShapeError) -> Self {
        match e {
            EventShapeError::Unparsable(message) => Self::Unparsable { message },
            EventShapeError::UnknownKey(key) => Self::UnknownKey { key },
            EventShapeError::MissingKey(key) => Self::MissingKey {
                key: key.to_owned(),
            },
            EventShapeError::InvalidField { key, expected } => Self::InvalidField {
                key: key.to_owned(),
                expected: expected.to_owned(),
            },
            EventShapeError::DuplicateKey { key, path } => Self::DuplicateKey { key, path },
            EventShapeError::LoneSurrogate { escape, column } => {
                Self::LoneSurrogate { escape, column }
            }
        }
    }
}

/// The first bad event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEvent {
    /// 0-based index among events (non-blank lines; rows for SQLite).
    pub index: u64,
    /// 1-based physical line number (row id for SQLite).
    pub line: u64,
    /// Byte offset of the line (0 for SQLite).
    pub offset: u64,
    /// Why.
    pub reason: BadReason,
}

/// The outcome of a verification pass.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Events seen (non-blank lines / rows), bad ones included.
    pub events: u64,
    /// Events of the requested intent (before the first bad event).
    pub intent_events: Option<u64>,
    /// The first bad event; `None` means the chain is intact.
    pub first_bad: Option<BadEvent>,
    /// `event_hash` of the last good event (`""` if none).
    pub tail_hash: String,
    /// Legacy 16-hex hashes accepted (only with `allow_legacy`).
    pub legacy_events: u64,
    /// Merkle tree over the verified events (with `merkle`).
    pub tree: Option<CompactRange>,
    /// The root when the tree had `root_at` leaves (with `merkle`).
    pub root_at: Option<Hash>,
    /// The leaf hashes of the events read in this pass (with `collect_leaves`);
    /// an anchored prefix's leaves are not included.
    pub leaves: Vec<Hash>,
}

impl VerifyReport {
    /// `true` when no bad event was found.
    pub fn intact(&self) -> bool {
        self.first_bad.is_none()
    }

    /// The verification report as JSON, the one shape every face emits
    /// (`cfa audit verify -f json`, `GET /v1/audit/verify`, the `cfa_audit_check` tool).
    /// Names follow the reference's `cfa_audit_check` result: `chain_intact`,
    /// `total_events`, and with an intent `intent_id` and `event_count`; then
    /// `file`, `tail_hash`, `legacy_events` and `first_bad`
    /// (`{index, line, offset, code, reason}` or `null`).
    pub fn to_json(&self, file: &str, intent_id: Option<&str>) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        out.insert("file".into(), file.into());
        out.insert("chain_intact".into(), self.intact().into());
        out.insert("total_events".into(), self.events.into());
        if let Some(id) = intent_id {
            out.insert("intent_id".into(), id.into());
            out.insert("event_count".into(), self.intent_events.unwrap_or(0).into());
        }
        out.insert("tail_hash".into(), self.tail_hash.clone().into());
        out.insert("legacy_events".into(), self.legacy_events.into());
        out.insert(
            "first_bad".into(),
            self.first_bad
                .as_ref()
                .map_or(serde_json::Value::Null, BadEvent::to_json),
        );
        serde_json::Value::Object(out)
    }
}

impl BadEvent {
    /// `{index, line, offset, code, reason}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "index": self.index,
            "line": self.line,
            "offset": self.offset,
            "code": self.reason.code(),
            "reason": self.reason.to_string(),
        })
    }
}

/// The per-event result that does not depend on other events.
#[derive(Debug, Clone)]
pub(crate) struct Checked<'a> {
    pub event_hash: Cow<'a, str>,
    pub previous_hash: Cow<'a, str>,
    pub hash: HashState,
    pub intent: bool,
    pub mismatch: Option<FieldMismatch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HashState {
    Full,
    Legacy,
    Mismatch(String),
}

fn hash_state(stored: &str, computed_hex: &str) -> HashState {
    if stored == computed_hex {
        HashState::Full
    } else if stored.len() == 16 && computed_hex.starts_with(stored) {
        HashState::Legacy
    } else {
        HashState::Mismatch(computed_hex.to_owned())
    }
}

/// Checks one event already in memory (SQLite and memory stores).
pub(crate) fn check_event<'a>(e: &'a AuditEvent, intent: Option<&str>) -> Checked<'a> {
    let computed = e.compute_hash();
    Checked {
        event_hash: Cow::Borrowed(&e.event_hash),
        previous_hash: Cow::Borrowed(&e.previous_hash),
        hash: hash_state(&e.event_hash, &computed),
        intent: intent.is_some_and(|id| id == e.intent_id),
        mismatch: e.unhashed_mismatch(),
    }
}

/// Checks one trimmed, non-blank line: fast path first, full parse as fallback.
pub(crate) fn check_line<'a>(
    line: &'a [u8],
    intent: Option<&str>,
    details_buf: &mut Vec<u8>,
) -> Result<Checked<'a>, BadReason> {
    if let Some(f) = fastline::parse(line, details_buf) {
        let mut hex_buf = [0u8; 64];
        if hex::encode_to_slice(f.digest(details_buf), &mut hex_buf).is_ok()
            && let Ok(computed) = std::str::from_utf8(&hex_buf)
        {
            let state = hash_state(f.event_hash, computed);
            if !matches!(state, HashState::Mismatch(_)) {
                let intent = match intent {
                    None => false,
                    Some(id) => match f.intent_plain() {
                        Some(s) => s == id,
                        None => {
                            serde_json::from_slice::<String>(f.intent_id).is_ok_and(|s| s == id)
                        }
                    },
                };
                // Both literals are canonical, so equal text means equal strings.
                let mismatch = f
                    .details_bundle_version
                    .filter(|d| *d != f.policy_bundle_version)
                    .map(|d| FieldMismatch {
                        field: "policy_bundle_version",
                        top_level: serde_json::from_slice::<String>(f.policy_bundle_version)
                            .unwrap_or_default(),
                        in_details: String::from_utf8_lossy(d).into_owned(),
                    });
                return Ok(Checked {
                    event_hash: Cow::Borrowed(f.event_hash),
                    previous_hash: Cow::Borrowed(f.previous_hash),
                    hash: state,
                    intent,
                    mismatch,
                });
            }
        }
    }
    // Slow path: full parse + canonical writer (also the fallback on a fast-path mismatch).
    let text = std::str::from_utf8(line).map_err(|e| BadReason::Unparsable {
        message: format!("invalid UTF-8: {e}"),
    })?;
    if text.starts_with('\u{feff}') {
        return Err(BadReason::Unparsable {
            message: "the line starts with a UTF-8 byte order mark (U+FEFF), which is not JSON"
                .to_owned(),
        });
    }
    let event = AuditEvent::from_jsonl_line(text)?;
    let computed = event.compute_hash();
    Ok(Checked {
        hash: hash_state(&event.event_hash, &computed),
        intent: intent.is_some_and(|id| id == event.intent_id),
        mismatch: event.unhashed_mismatch(),
        event_hash: Cow::Owned(event.event_hash),
        previous_hash: Cow::Owned(event.previous_hash),
    })
}

/// Sequential link checking over per-event results.
pub(crate) struct ChainState {
    allow_legacy: bool,
    count_intent: bool,
    prev: String,
    report: VerifyReport,
    merkle: Option<CompactRange>,
    root_at: Option<u64>,
    collect: bool,
    /// The second half of a split file: accept the first event's `previous_hash`
    /// and remember it (with its line and offset) for the join.
    open_start: bool,
    first_link: Option<(String, u64, u64)>,
    /// A line with content was fed (whitespace before the first one is stripped).
    seen_content: bool,
    /// Whitespace that is an error only if another event follows it.
    pending: Option<BadEvent>,
    /// Second half only: whitespace before its first event, an error only if the
    /// first half has events (decided when the halves are joined).
    lead_ws: Option<BadEvent>,
    lead_pending: Option<BadEvent>,
    /// The last line with content ended in a line break (a torn line does not).
    last_terminated: bool,
}

impl ChainState {
    pub(crate) fn new(opts: &VerifyOptions) -> Self {
        let (prev, tree) = match &opts.start {
            Some(s) => (s.previous_hash.clone(), s.tree.clone()),
            None => (String::new(), CompactRange::new()),
        };
        let merkle = (opts.merkle || opts.collect_leaves || opts.root_at.is_some()).then_some(tree);
        let mut st = Self {
            allow_legacy: opts.allow_legacy,
            count_intent: opts.intent_id.is_some(),
            prev,
            report: VerifyReport {
                intent_events: opts.intent_id.as_ref().map(|_| 0),
                ..VerifyReport::default()
            },
            merkle,
            root_at: opts.root_at,
            collect: opts.collect_leaves,
            open_start: false,
            first_link: None,
            seen_content: false,
            pending: None,
            lead_ws: None,
            lead_pending: None,
            last_terminated: false,
        };
        st.snapshot();
        st
    }

    pub(crate) fn broken(&self) -> bool {
        self.report.first_bad.is_some()
    }

    /// Counts an event that is not checked because the chain is already broken.
    pub(crate) fn skip(&mut self) {
        self.report.events += 1;
    }

    fn snapshot(&mut self) {
        if let (Some(tree), Some(at)) = (&self.merkle, self.root_at)
            && tree.size() == at
        {
            self.report.root_at = Some(tree.root());
        }
    }

    pub(crate) fn feed(&mut self, line: u64, offset: u64, result: Result<Checked<'_>, BadReason>) {
        let index = self.report.events;
        self.report.events += 1;
        if self.broken() {
            return;
        }
        let bad = |reason| {
            Some(BadEvent {
                index,
                line,
                offset,
                reason,
            })
        };
        let c = match result {
            Ok(c) => c,
            Err(reason) => {
                self.report.first_bad = bad(reason);
                return;
            }
        };
        if self.open_start && index == 0 {
            self.first_link = Some((c.previous_hash.to_string(), line, offset));
            self.prev.clear();
            self.prev.push_str(&c.previous_hash);
        }
        if *c.previous_hash != *self.prev {
            self.report.first_bad = bad(BadReason::LinkBroken {
                expected: self.prev.clone(),
                found: c.previous_hash.into_owned(),
            });
            return;
        }
        match c.hash {
            HashState::Full => {}
            HashState::Legacy if self.allow_legacy => self.report.legacy_events += 1,
            HashState::Legacy => {
                self.report.first_bad = bad(BadReason::LegacyHash {
                    stored: c.event_hash.into_owned(),
                });
                return;
            }
            HashState::Mismatch(computed) => {
                self.report.first_bad = bad(BadReason::HashMismatch {
                    stored: c.event_hash.into_owned(),
                    computed,
                });
                return;
            }
        }
        if self.count_intent
            && c.intent
            && let Some(n) = self.report.intent_events.as_mut()
        {
            *n += 1;
        }
        if let Some(m) = c.mismatch {
            self.report.first_bad = bad(m.into());
            return;
        }
        self.prev.clear();
        self.prev.push_str(&c.event_hash);
        if let Some(tree) = self.merkle.as_mut() {
            let leaf = merkle::event_leaf(&c.event_hash);
            tree.push(leaf);
            if self.collect {
                self.report.leaves.push(leaf);
            }
        }
        self.snapshot();
    }

    /// A non-empty line of only whitespace.
    fn feed_space_only(&mut self, line: u64, offset: u64) {
        if self.broken() {
            return;
        }
        let bad = BadEvent {
            index: self.report.events,
            line,
            offset,
            reason: BadReason::Whitespace {
                message: "a line of only whitespace between events (only empty lines may \
                          separate events)"
                    .to_owned(),
            },
        };
        if self.seen_content {
            self.pending.get_or_insert(bad);
        } else if self.open_start {
            self.lead_ws.get_or_insert(bad);
        }
    }

    /// A line with content; `bad_lead`/`bad_trail` name padding `json.loads` refuses.
    fn feed_content(
        &mut self,
        line: u64,
        offset: u64,
        result: Result<Checked<'_>, BadReason>,
        bad_lead: Option<String>,
        bad_trail: Option<String>,
        terminated: bool,
    ) {
        let index = self.report.events;
        self.last_terminated = terminated;
        let padding = |what: &str, c: &str| BadEvent {
            index,
            line,
            offset,
            reason: BadReason::Whitespace {
                message: format!(
                    "{c} {what} the event; only spaces and tabs may pad an event that is \
                     neither the first nor the last"
                ),
            },
        };
        if !self.broken()
            && let Some(p) = self.pending.take()
        {
            self.report.first_bad = Some(p);
        }
        if !self.broken() {
            if !self.seen_content && self.open_start {
                self.lead_pending = self
                    .lead_ws
                    .take()
                    .or_else(|| bad_lead.as_deref().map(|c| padding("before", c)));
            } else if self.seen_content
                && let Some(c) = bad_lead.as_deref()
            {
                self.report.first_bad = Some(padding("before", c));
            }
        }
        self.seen_content = true;
        self.feed(line, offset, result);
        if !self.broken()
            && let Some(c) = bad_trail.as_deref()
        {
            self.pending = Some(padding("after", c));
        }
    }

    pub(crate) fn finish(self, detect_torn: bool) -> VerifyReport {
        self.finish_at(detect_torn, true)
    }

    /// `at_eof`: nothing follows (else pending whitespace becomes the first bad event).
    pub(crate) fn finish_at(mut self, detect_torn: bool, at_eof: bool) -> VerifyReport {
        if !at_eof
            && !self.broken()
            && let Some(p) = self.pending.take()
        {
            self.report.first_bad = Some(p);
        }
        // An unparsable LAST line without a line break is a torn tail (a crash
        // during append); a complete line that is not JSON is just unparsable.
        if detect_torn
            && !self.last_terminated
            && let Some(bad) = self.report.first_bad.as_mut()
            && bad.index + 1 == self.report.events
            && matches!(bad.reason, BadReason::Unparsable { .. })
        {
            bad.reason = BadReason::TornTail { offset: bad.offset };
        }
        self.report.tail_hash = self.prev;
        self.report.tree = self.merkle;
        self.report
    }
}

enum LineKind<'a> {
    SpaceOnly,
    Content {
        result: Result<Checked<'a>, BadReason>,
        bad_lead: Option<String>,
        bad_trail: Option<String>,
        terminated: bool,
    },
}

struct LineCheck<'a> {
    line: u64,
    offset: u64,
    kind: LineKind<'a>,
}

impl ChainState {
    fn feed_check(&mut self, line: u64, lc: LineCheck<'_>) {
        match lc.kind {
            LineKind::SpaceOnly => self.feed_space_only(line, lc.offset),
            LineKind::Content {
                result,
                bad_lead,
                bad_trail,
                terminated,
            } => self.feed_content(line, lc.offset, result, bad_lead, bad_trail, terminated),
        }
    }
}

/// Checks every non-empty line of `slice` (which starts at file offset `base`).
fn check_lines<'a>(slice: &'a [u8], base: u64, intent: Option<&str>) -> (Vec<LineCheck<'a>>, u64) {
    let mut out = Vec::with_capacity(slice.len() / 400 + 1);
    let mut line = 0u64;
    let mut pos = 0usize;
    let mut details_buf = Vec::with_capacity(4096);
    while pos < slice.len() {
        let (end, next) = lines::line_end(slice, pos);
        let raw = slice.get(pos..end).unwrap_or_default();
        if !raw.is_empty() {
            let kind = match lines::shape(raw) {
                Shape::SpaceOnly => LineKind::SpaceOnly,
                Shape::Content {
                    core,
                    bad_lead,
                    bad_trail,
                    ..
                } => LineKind::Content {
                    result: check_line(core, intent, &mut details_buf),
                    bad_lead: bad_lead.map(lines::describe_char),
                    bad_trail: bad_trail.map(lines::describe_char),
                    terminated: next > end,
                },
            };
            out.push(LineCheck {
                line,
                offset: base + pos as u64,
                kind,
            });
        }
        line += 1;
        pos = next;
    }
    (out, line)
}

/// Counts events (lines with content) and lines (used once the chain is known to be broken).
fn count_lines(slice: &[u8]) -> (u64, u64) {
    let (mut events, mut count) = (0u64, 0u64);
    let mut pos = 0usize;
    while pos < slice.len() {
        let (end, next) = lines::line_end(slice, pos);
        count += 1;
        if !lines::is_space_only(slice.get(pos..end).unwrap_or_default()) {
            events += 1;
        }
        pos = next;
    }
    (events, count)
}

const CHUNK: usize = 4 << 20;
const PARALLEL_MIN: usize = 256 << 10;

/// Verifies a JSONL stream in one pass. `progress` receives the bytes consumed so far.
pub fn verify_reader(
    reader: impl Read,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<VerifyReport> {
    let mut st = ChainState::new(opts);
    let threads = if opts.threads == 0 { 2 } else { opts.threads };
    run_segment(
        reader,
        &mut st,
        0,
        opts.intent_id.as_deref(),
        threads,
        progress,
    )?;
    Ok(st.finish(true))
}

/// Feeds every line of `reader` (starting at file offset `base`) into `st`, in chunks;
/// returns the number of physical lines read.
fn run_segment(
    mut reader: impl Read,
    st: &mut ChainState,
    base: u64,
    intent: Option<&str>,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<u64> {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + (64 << 10));
    let mut base = base;
    let mut line_base = 0u64;
    let mut target = CHUNK;
    let mut eof = false;
    loop {
        while !eof && buf.len() < target {
            let want = (target - buf.len()) as u64;
            let n = (&mut reader).take(want).read_to_end(&mut buf)?;
            if n == 0 {
                eof = true;
            }
        }
        let end = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(i) => i + 1,
                None => {
                    target = target.saturating_mul(2);
                    continue;
                }
            }
        };
        target = CHUNK;
        let region = buf.get(..end).unwrap_or_default();
        if st.broken() {
            let (events, lines) = count_lines(region);
            for _ in 0..events {
                st.skip();
            }
            line_base += lines;
        } else if threads > 1 && region.len() >= PARALLEL_MIN {
            let mid = region.len() / 2;
            let split = memchr::memchr(b'\n', region.get(mid..).unwrap_or_default())
                .map_or(region.len(), |i| mid + i + 1);
            let (a, b) = region.split_at(split);
            let ((ra, la), (rb, lb)) = std::thread::scope(|s| {
                let hb = s.spawn(|| check_lines(b, base + split as u64, intent));
                let first = check_lines(a, base, intent);
                let second = hb.join().unwrap_or_else(|_| (Vec::new(), 0));
                (first, second)
            });
            for lc in ra {
                st.feed_check(line_base + lc.line + 1, lc);
            }
            for lc in rb {
                st.feed_check(line_base + la + lc.line + 1, lc);
            }
            line_base += la + lb;
        } else {
            let (rs, lines) = check_lines(region, base, intent);
            for lc in rs {
                st.feed_check(line_base + lc.line + 1, lc);
            }
            line_base += lines;
        }
        buf.drain(..end);
        base += end as u64;
        progress(base);
        if eof {
            break;
        }
    }
    Ok(line_base)
}

const SPLIT_MIN: u64 = 4 << 20;

/// Verifies a JSONL file using both cores end to end: each thread opens the file,
/// reads and checks its own half (split at a line boundary), and the halves are
/// joined by checking the one link across the split. Falls back to
/// [`verify_reader`] for small files, one thread, or Merkle/leaf collection.
pub fn verify_path(
    path: &std::path::Path,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<VerifyReport> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let sequential = opts.threads == 1
        || opts.merkle
        || opts.collect_leaves
        || opts.root_at.is_some()
        || len < SPLIT_MIN;
    let split = if sequential {
        None
    } else {
        find_split(&mut file, len / 2)?
    };
    let Some(split) = split else {
        return verify_reader(file, opts, progress);
    };
    let intent = opts.intent_id.as_deref();
    let mut a = ChainState::new(opts);
    let mut b = ChainState::new(opts);
    b.open_start = true;
    let (ra, rb) = std::thread::scope(|s| {
        let hb = s.spawn(|| -> std::io::Result<u64> {
            use std::io::{Seek, SeekFrom};
            let mut f = std::fs::File::open(path)?;
            f.seek(SeekFrom::Start(split))?;
            run_segment(f, &mut b, split, intent, 1, &mut |_| {})
        });
        let mut fa = &file;
        let ra = {
            use std::io::{Seek, SeekFrom};
            fa.seek(SeekFrom::Start(0)).and_then(|_| {
                run_segment(fa.take(split), &mut a, 0, intent, 1, &mut |n| {
                    progress(n * 2)
                })
            })
        };
        let rb = hb
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("verification thread panicked")));
        (ra, rb)
    });
    let a_lines = ra?;
    rb?;
    progress(len);
    let b_link = b.first_link.clone();
    let b_lead = b.lead_pending.take();
    let b_has_events = b.report.events > 0;
    let a_report = a.finish_at(!b_has_events, !b_has_events);
    let b_report = b.finish(true);
    Ok(join_halves(a_report, b_report, b_link, b_lead, a_lines))
}

/// Finds the first line start at or after `mid` (None: no newline after `mid`).
fn find_split(file: &mut std::fs::File, mid: u64) -> std::io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(mid))?;
    let mut pos = mid;
    let mut block = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = memchr::memchr(b'\n', block.get(..n).unwrap_or_default()) {
            return Ok(Some(pos + i as u64 + 1));
        }
        pos += n as u64;
    }
}

fn join_halves(
    a: VerifyReport,
    b: VerifyReport,
    b_link: Option<(String, u64, u64)>,
    b_lead: Option<BadEvent>,
    a_lines: u64,
) -> VerifyReport {
    let mut out = VerifyReport {
        events: a.events + b.events,
        ..VerifyReport::default()
    };
    if a.first_bad.is_some() || b.events == 0 {
        out.first_bad = a.first_bad;
        out.intent_events = a.intent_events;
        out.tail_hash = a.tail_hash;
        out.legacy_events = a.legacy_events;
        return out;
    }
    out.intent_events = match (a.intent_events, b.intent_events) {
        (Some(x), Some(y)) => Some(x + y),
        (x, _) => x,
    };
    out.legacy_events = a.legacy_events + b.legacy_events;
    // Whitespace before the second half's first event is an error only after events.
    if a.events > 0
        && let Some(mut bad) = b_lead
    {
        bad.index += a.events;
        bad.line += a_lines;
        out.first_bad = Some(bad);
        out.intent_events = a.intent_events;
        out.legacy_events = a.legacy_events;
        out.tail_hash = a.tail_hash;
        return out;
    }
    if let Some((found, line, offset)) = b_link
        && found != a.tail_hash
    {
        out.first_bad = Some(BadEvent {
            index: a.events,
            line: a_lines + line,
            offset,
            reason: BadReason::LinkBroken {
                expected: a.tail_hash.clone(),
                found,
            },
        });
        out.intent_events = a.intent_events;
        out.legacy_events = a.legacy_events;
        out.tail_hash = a.tail_hash;
        return out;
    }
    out.first_bad = b.first_bad.map(|mut bad| {
        bad.index += a.events;
        bad.line += a_lines;
        bad
    });
    out.tail_hash = b.tail_hash;
    out
}

/// Verifies events that are already parsed (SQLite rows, memory store).
/// Each item is `(line or row id, event or the reason it could not be read)`.
pub fn verify_events<I>(events: I, opts: &VerifyOptions) -> VerifyReport
where
    I: IntoIterator<Item = (u64, Result<AuditEvent, BadReason>)>,
{
    let mut st = ChainState::new(opts);
    let intent = opts.intent_id.as_deref();
    for (line, ev) in events {
        if st.broken() {
            st.skip();
            continue;
        }
        match ev {
            Ok(e) => {
                let c = check_event(&e, intent);
                st.feed(line, 0, Ok(c));
            }
            Err(r) => st.feed(line, 0, Err(r)),
        }
    }
    st.finish_at(false, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;

    #[test]
    fn fast_path_is_taken_for_reference_layout_and_unsorted_details() {
        let e = NewEvent::new("i", "policy_check", "policy_evaluation", "approve", "t")
            .detail("decision_id", "d")
            .detail("faults", serde_json::json!(["A"]))
            .with_bundle("v", "h")
            .seal("");
        let line = e.to_jsonl_line();
        let mut buf = Vec::new();
        let c = check_line(line.as_bytes(), None, &mut buf).unwrap();
        assert!(matches!(c.event_hash, Cow::Borrowed(_)), "fast path");
        assert_eq!(c.hash, HashState::Full);
        // A reserialised (compact) line takes the slow path and still verifies.
        let compact = serde_json::to_string(&e.to_value()).unwrap();
        let c = check_line(compact.as_bytes(), None, &mut buf).unwrap();
        assert!(matches!(c.event_hash, Cow::Owned(_)), "slow path");
        assert_eq!(c.hash, HashState::Full);
    }
}
