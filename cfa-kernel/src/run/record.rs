//! The run's bookkeeping shared by every phase: the event-details builder
//! ([`Details`]), queueing and writing audit events, and the one guarded plugin call
//! ([`Run::call`]) that turns an error or a panic into a blocking kernel fault and its
//! `error` event.

use super::{Run, Step, Stop};
use crate::faults::{self, guarded_try, kernel_fault};
use crate::result::{KernelResult, Phase};
use cfa_audit::{DetailValue, EventBuilder, Head, QuotedDetails, QuotedStr};
use cfa_types::{DecisionState, Fault};
use serde_json::Value;
use std::borrow::Cow;

/// The `details` of one audit event, in insertion order: keys are borrowed (static
/// names, a plugin's map) or already owned (a map handed over whole), and values are
/// kept as they are given (text, numbers, flags, borrowed or owned JSON) so that
/// [`Run::emit`] writes each one's canonical text straight into the event, with no
/// `serde_json::Value` built for it.
#[derive(Default)]
pub(super) struct Details<'a>(Vec<(Key<'a>, Dv<'a>)>);

/// One detail's key: as given, or (for the kernel's own static keys, see [`qkey!`])
/// already quoted, so that its event copies it instead of escaping it again.
pub(super) enum Key<'a> {
    /// A key as given.
    Plain(Cow<'a, str>),
    /// A key's canonical text, written once per process.
    Quoted(&'static QuotedStr),
}

impl<'a> From<&'a str> for Key<'a> {
    fn from(key: &'a str) -> Self {
        Key::Plain(Cow::Borrowed(key))
    }
}

impl From<&'static QuotedStr> for Key<'_> {
    fn from(key: &'static QuotedStr) -> Self {
        Key::Quoted(key)
    }
}

/// The static string `$key` (a detail key, an event type, a stage or an outcome) as a
/// `&'static QuotedStr`, quoted the first time
/// this call site runs (the same text [`cfa_audit::EventBuilder`] writes for the
/// plain key).
macro_rules! qkey {
    ($key:literal) => {{
        static KEY: std::sync::OnceLock<cfa_audit::QuotedStr> = std::sync::OnceLock::new();
        KEY.get_or_init(|| cfa_audit::QuotedStr::new($key))
    }};
}
pub(super) use qkey;

/// One detail's value, as [`Details`] keeps it until the event is written.
pub(super) enum Dv<'a> {
    /// A JSON string.
    Str(Cow<'a, str>),
    /// A JSON integer.
    U64(u64),
    /// A JSON boolean.
    Bool(bool),
    /// A JSON float (`null` when not finite, as `serde_json::to_value` gives).
    F64(f64),
    /// The canonical text of a value holding no object (see
    /// [`cfa_audit::EventBuilder::detail_raw`]).
    Raw(String),
    /// A JSON value, borrowed.
    Ref(&'a Value),
    /// A JSON value.
    Json(Value),
}

impl<'a> From<&'a str> for Dv<'a> {
    fn from(s: &'a str) -> Self {
        Dv::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Dv<'_> {
    fn from(s: String) -> Self {
        Dv::Str(Cow::Owned(s))
    }
}

impl From<bool> for Dv<'_> {
    fn from(b: bool) -> Self {
        Dv::Bool(b)
    }
}

impl From<u32> for Dv<'_> {
    fn from(n: u32) -> Self {
        Dv::U64(u64::from(n))
    }
}

impl From<usize> for Dv<'_> {
    fn from(n: usize) -> Self {
        // `usize` is at most 64 bits on every supported target; saturate otherwise.
        Dv::U64(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

impl From<Value> for Dv<'_> {
    fn from(v: Value) -> Self {
        Dv::Json(v)
    }
}

impl<'a> From<&'a Value> for Dv<'a> {
    fn from(v: &'a Value) -> Self {
        Dv::Ref(v)
    }
}

impl<'a> Details<'a> {
    /// No details.
    pub(super) fn new() -> Self {
        Details(Vec::with_capacity(8))
    }

    /// Adds `key` with `value`.
    pub(super) fn with(mut self, key: impl Into<Key<'a>>, value: impl Into<Dv<'a>>) -> Self {
        self.0.push((key.into(), value.into()));
        self
    }

    /// Adds `key` with the float `value` (what `serde_json::to_value` gives for an `f64`).
    pub(super) fn float(mut self, key: impl Into<Key<'a>>, value: f64) -> Self {
        self.0.push((key.into(), Dv::F64(value)));
        self
    }

    /// Adds `key` with the JSON array of `items` (strings).
    pub(super) fn strs<'s>(
        mut self,
        key: impl Into<Key<'a>>,
        items: impl IntoIterator<Item = &'s str>,
    ) -> Self {
        let mut text = String::with_capacity(64);
        cfa_audit::write_str_array(&mut text, items);
        self.0.push((key.into(), Dv::Raw(text)));
        self
    }

    /// Adds `key` with `canonical_text`, the canonical text of a value holding no
    /// object (see [`cfa_audit::EventBuilder::detail_raw`]).
    pub(super) fn raw(mut self, key: impl Into<Key<'a>>, canonical_text: String) -> Self {
        self.0.push((key.into(), Dv::Raw(canonical_text)));
        self
    }

    /// Adds every `(key, value)` of `map`, in its order, taking them over.
    pub(super) fn extend_owned(mut self, map: serde_json::Map<String, Value>) -> Self {
        self.0.extend(
            map.into_iter()
                .map(|(key, value)| (Key::Plain(Cow::Owned(key)), Dv::Json(value))),
        );
        self
    }
}

/// The canonical text of the strings every event of a run carries: its intent id,
/// decision id, content hash, bundle version and bundle hash, written when the run
/// starts ([`Quoted::of`]); the content hash, the only one that changes during a run,
/// is written again by [`Run::set_signature_hashes`], the only place that sets it.
/// [`Run::emit_in`] checks (in debug builds) that each is the result's field.
pub(super) struct Quoted {
    intent_id: QuotedStr,
    content_hash: QuotedStr,
    bundle: QuotedStr,
    /// The four details every event of the run ends with, in the order
    /// `NewEvent::detail` and `NewEvent::with_bundle` give them: `decision_id`,
    /// `content_hash`, `policy_bundle_version`, `policy_bundle_hash` (the content
    /// hash's value rewritten in place whenever it changes).
    common: QuotedDetails,
}

/// Where `content_hash` is in [`Quoted::common`].
const CONTENT_HASH_AT: usize = 1;

impl Quoted {
    /// The texts of `r`'s fields.
    /// `[version, hash]` is the kernel's bundle, quoted once ([`crate::Kernel`]'s
    /// `quoted_bundle`), which is `r`'s.
    pub(super) fn of(r: &KernelResult, [version, hash]: &[QuotedStr; 2]) -> Self {
        let content_hash = QuotedStr::new(&r.content_hash);
        let bundle = version.clone();
        // Room for the four keys (~70 bytes) and values (two 64-digit hashes, an id
        // and a version), so that neither this nor `set_content_hash` reallocates.
        let mut common = QuotedDetails::with_capacity(4, 384);
        write_common(&mut common, r, &content_hash, &bundle, hash);
        Quoted {
            intent_id: QuotedStr::new(&r.intent_id),
            content_hash,
            bundle,
            common,
        }
    }

    /// Makes the content hash `content_hash` (the only one of these strings that
    /// changes during a run).
    pub(super) fn set_content_hash(&mut self, content_hash: &str) {
        if self.content_hash.as_str() != content_hash {
            self.content_hash.set(content_hash);
            let in_place = self.common.set_value(CONTENT_HASH_AT, &self.content_hash);
            debug_assert!(in_place, "the common details hold the content hash");
        }
    }

    /// Whether these are the texts of `r`'s fields.
    fn describe(&self, r: &KernelResult) -> bool {
        let mut common = QuotedDetails::new();
        let bundle_hash = QuotedStr::new(&r.policy_bundle_hash);
        write_common(
            &mut common,
            r,
            &self.content_hash,
            &self.bundle,
            &bundle_hash,
        );
        self.intent_id.as_str() == r.intent_id
            && self.content_hash.as_str() == r.content_hash
            && self.bundle.as_str() == r.policy_bundle
            && self.common == common
    }
}

/// Writes the four common details of `r` ([`Quoted::common`]) into `common`, with
/// `r`'s content hash, bundle version and bundle hash already quoted.
fn write_common(
    common: &mut QuotedDetails,
    r: &KernelResult,
    content_hash: &QuotedStr,
    bundle: &QuotedStr,
    bundle_hash: &QuotedStr,
) {
    let [decision_key, content_key, version_key, hash_key] = run_keys();
    common
        .push_str(decision_key, &r.decision_id)
        .push(content_key, content_hash)
        .push(version_key, bundle)
        .push(hash_key, bundle_hash);
}

/// The keys `decision_id`, `content_hash`, `policy_bundle_version` and
/// `policy_bundle_hash` that every event of a run carries, as their canonical texts,
/// written once per process (see [`Quoted`]).
fn run_keys() -> &'static [QuotedStr; 4] {
    static KEYS: std::sync::OnceLock<[QuotedStr; 4]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        [
            QuotedStr::new("decision_id"),
            QuotedStr::new("content_hash"),
            QuotedStr::new("policy_bundle_version"),
            QuotedStr::new("policy_bundle_hash"),
        ]
    })
}

/// How a failed plugin call is recorded by [`Run::call`].
pub(super) struct Failure {
    /// The event recorded with outcome `error`.
    pub event_type: &'static str,
    /// The kernel fault code.
    pub code: &'static str,
    /// The reason's start: the reason is `"{what}: {error}"`.
    pub what: &'static str,
    /// The fault's remediation.
    pub remediation: &'static str,
}

/// A static string of an event's head (its stage, event type or outcome): as given,
/// or already quoted (see [`qkey!`]) so that the event copies its text.
#[derive(Clone, Copy)]
pub(super) enum Name<'a> {
    /// The string as given.
    Plain(&'a str),
    /// Its canonical text, written once per process.
    Quoted(&'static QuotedStr),
}

impl<'a> Name<'a> {
    /// The string.
    pub(super) fn as_str(self) -> &'a str {
        match self {
            Name::Plain(s) => s,
            Name::Quoted(q) => q.as_str(),
        }
    }

    fn head(self) -> Head<'a> {
        match self {
            Name::Plain(s) => Head::Plain(s),
            Name::Quoted(q) => Head::Quoted(q),
        }
    }
}

impl<'a> From<&'a str> for Name<'a> {
    fn from(s: &'a str) -> Self {
        Name::Plain(s)
    }
}

impl From<&'static QuotedStr> for Name<'_> {
    fn from(q: &'static QuotedStr) -> Self {
        Name::Quoted(q)
    }
}

/// The stage of `phase`'s events, quoted once per process.
fn stage_of(phase: Phase) -> &'static QuotedStr {
    match phase {
        Phase::Formalize => qkey!("formalize"),
        Phase::Govern => qkey!("govern"),
        Phase::Generate => qkey!("generate"),
        Phase::Execute => qkey!("execute"),
        Phase::Validate => qkey!("validate"),
    }
}

impl Run<'_> {
    /// Queues one audit event (written by [`Run::write_audit`] before any side effect
    /// and at the end of the run). Fails only when an earlier write already failed.
    pub(super) fn emit<'o>(
        &mut self,
        phase: Phase,
        event_type: impl Into<Name<'static>>,
        outcome: impl Into<Name<'o>>,
        details: Details<'_>,
    ) -> Step<()> {
        self.emit_in(phase, stage_of(phase), event_type, outcome, details)
    }

    /// [`Run::emit`] with the event's `stage` given (the control plane's `control`
    /// events are recorded during `phase`).
    pub(super) fn emit_in<'s, 'o>(
        &mut self,
        phase: Phase,
        stage: impl Into<Name<'s>>,
        event_type: impl Into<Name<'static>>,
        outcome: impl Into<Name<'o>>,
        details: Details<'_>,
    ) -> Step<()> {
        let event_type = event_type.into();
        if self.audit_failed {
            return Err(Stop(phase));
        }
        // The event is written as text while the run's data is at hand (no details map,
        // no copies), prepared up to its previous hash so the store only finishes it.
        // Details come in the order `NewEvent::detail` and `NewEvent::with_bundle` would
        // give them: the step's, then the run's `decision_id` and `content_hash`, then
        // the bundle's version and hash (a repeated key keeps its position and takes the
        // later value, as the map's `insert` does).
        let r = &self.r;
        let q = &self.quoted;
        debug_assert!(q.describe(r), "the run's quoted strings are its result's");
        debug_assert_eq!(stage_of(phase).as_str(), phase.as_str());
        let mut ev = EventBuilder::with_heads(
            Head::Quoted(&q.intent_id),
            stage.into().head(),
            event_type.head(),
            outcome.into().head(),
            Head::Quoted(&q.bundle),
            self.k.clock.now_isoformat(),
        );
        for (key, value) in &details.0 {
            let value = match value {
                Dv::Str(v) => DetailValue::Str(v),
                Dv::U64(v) => DetailValue::U64(*v),
                Dv::Bool(v) => DetailValue::Bool(*v),
                Dv::F64(v) => DetailValue::F64(*v),
                Dv::Raw(v) => DetailValue::Raw(v),
                Dv::Ref(v) => DetailValue::Json(v),
                Dv::Json(v) => DetailValue::Json(v),
            };
            match key {
                Key::Plain(key) => ev.detail_value(key, value),
                Key::Quoted(key) => ev.detail_value_quoted_key(key, value),
            };
        }
        // The four are one block of text written when the run starts (and again when
        // its content hash changes): one copy, unless a step's own detail has one of
        // their keys, which then takes the later value in its place as before.
        ev.details_quoted(&q.common);
        self.pending.push(ev.finish());
        self.pending_meta.push((phase, event_type.as_str()));
        Ok(())
    }

    /// Writes the queued events in one batch. A failed (or panicking) store blocks the
    /// run: nothing unaudited is approved, and the fault names the first event that
    /// did not reach the log.
    pub(super) fn write_audit(&mut self) -> Step<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.pending);
        let store = &self.k.audit;
        let hashes = &mut self.r.audit_event_hashes;
        let before = hashes.len();
        let res = guarded_try(|| store.append_prepared(events, hashes));
        let done = self.r.audit_event_hashes.len().saturating_sub(before);
        let failed_at = self.pending_meta.get(done).copied();
        self.pending_meta.clear();
        let Err(e) = res else {
            return Ok(());
        };
        let (phase, event_type) = failed_at.unwrap_or((Phase::Validate, "final_decision"));
        self.audit_failed = true;
        self.r.state = DecisionState::Blocked;
        let what = format!("Audit write failed ({event_type}): {e}");
        self.r.blocked_reason = if self.r.blocked_reason.is_empty() {
            what.clone()
        } else {
            format!("{}; {what}", self.r.blocked_reason)
        };
        self.r.faults.push(kernel_fault(
            faults::AUDIT_WRITE_FAILED,
            phase,
            what,
            "Make the audit log writable (disk space, permissions, a torn tail to repair) and retry.",
        ));
        Err(Stop(phase))
    }

    /// Calls a plugin, catching a panic. On an error or a panic it blocks with the
    /// kernel fault of `on` and records `on.event_type` with outcome `error` and
    /// `details(error)` (the details get the plugin's own message, not the reason).
    pub(super) fn call<'d, T, E: std::fmt::Display>(
        &mut self,
        phase: Phase,
        on: &Failure,
        details: impl FnOnce(Details<'d>, String) -> Details<'d>,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Step<T> {
        self.checked(phase, on, details, guarded_try(f))
    }

    /// [`Run::call`] for a result already at hand.
    pub(super) fn checked<'d, T>(
        &mut self,
        phase: Phase,
        on: &Failure,
        details: impl FnOnce(Details<'d>, String) -> Details<'d>,
        res: Result<T, String>,
    ) -> Step<T> {
        res.map_err(|e| {
            let reason = format!("{}: {e}", on.what);
            let fault = kernel_fault(on.code, phase, reason.clone(), on.remediation);
            let details = details(Details::new(), e);
            self.block_recorded(
                phase,
                reason,
                vec![fault],
                (on.event_type, "error"),
                details,
            )
        })
    }

    /// Blocks with `reason` and `new_faults`, then records the `(event type, outcome)`
    /// event with `details`; when recording fails, the audit failure's stop wins.
    pub(super) fn block_recorded(
        &mut self,
        phase: Phase,
        reason: String,
        new_faults: Vec<Fault>,
        (event_type, outcome): (&'static str, &str),
        details: Details<'_>,
    ) -> Stop {
        let stop = self.block(phase, reason, new_faults);
        match self.emit(phase, event_type, outcome, details) {
            Ok(()) => stop,
            Err(s) => s,
        }
    }
}

/// The details of a failure event whose `error` is the whole reason
/// (`"{what}: {error}"`, as the reference writes plan, code and execution errors).
pub(super) fn reason_details<'d>(on: &Failure) -> impl FnOnce(Details<'d>, String) -> Details<'d> {
    let what = on.what;
    move |d, e| d.with(qkey!("error"), format!("{what}: {e}"))
}
