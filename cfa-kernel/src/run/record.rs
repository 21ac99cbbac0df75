//! The run's bookkeeping shared by every phase: the event-details builder
//! ([`Details`]), queueing and writing audit events, and the one guarded plugin call
//! ([`Run::call`]) that turns an error or a panic into a blocking kernel fault and its
//! `error` event.

use super::{Run, Step, Stop};
use crate::faults::{self, guarded_try, kernel_fault};
use crate::result::{KernelResult, Phase};
use cfa_audit::{DetailKeys, DetailValue, EventBuilder, Head, QuotedDetails, QuotedStr};
use cfa_types::{DecisionState, Fault};
use serde_json::Value;
use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

/// The `details` of one audit event, in insertion order: keys are borrowed (static
/// names, a plugin's map) or already owned (a map handed over whole), and values are
/// kept as they are given (text, numbers, flags, borrowed or owned JSON) so that
/// [`Run::emit`] writes each one's canonical text straight into the event, with no
/// `serde_json::Value` built for it.
#[derive(Default)]
pub(super) struct Details<'a> {
    pairs: Vec<(Key<'a>, Dv<'a>)>,
    /// The keys of an event whose details are always the same (see [`known!`]):
    /// `pairs`' keys, then the four every event of a run ends with.
    known: Option<&'static DetailKeys>,
}

/// The most details of a step that [`known!`] takes (the run's events have at most
/// five of their own).
const KNOWN_MAX: usize = 8;

/// The keys `$key`s then the four of [`run_keys`], as a `&'static DetailKeys` built
/// the first time this call site runs, and the [`Details`] of the values `$value`s
/// under them: for an event whose details are always these keys, which
/// [`Run::emit`] then writes in the sorted order worked out once
/// ([`EventBuilder::finish_with_details`]) instead of sorting them for each event.
macro_rules! known {
    ($($key:literal => $value:expr),+ $(,)?) => {{
        static KEYS: std::sync::OnceLock<cfa_audit::DetailKeys> = std::sync::OnceLock::new();
        let keys = KEYS.get_or_init(|| $crate::run::record::known_keys(&[$($key),+]));
        $crate::run::record::Details::known(keys)$(.val($value))+
    }};
}
pub(super) use known;

/// The keys `step` then the four of [`run_keys`], for [`known!`].
pub(super) fn known_keys(step: &[&str]) -> DetailKeys {
    debug_assert!(
        step.len() <= KNOWN_MAX,
        "known! takes at most KNOWN_MAX keys"
    );
    let common = run_keys().iter().map(QuotedStr::as_str);
    DetailKeys::new(step.iter().copied().chain(common))
}

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

impl From<f64> for Dv<'_> {
    fn from(f: f64) -> Self {
        Dv::F64(f)
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
        Details {
            pairs: Vec::with_capacity(8),
            known: None,
        }
    }

    /// No details yet, of an event whose details are always `keys` (see [`known!`]),
    /// given in their order by [`Details::val`].
    pub(super) fn known(keys: &'static DetailKeys) -> Self {
        Details {
            pairs: Vec::with_capacity(keys.len()),
            known: Some(keys),
        }
    }

    /// Adds `value` under the next key of [`Details::known`]'s keys.
    pub(super) fn val(mut self, value: impl Into<Dv<'a>>) -> Self {
        let key = self.known.and_then(|keys| keys.key(self.pairs.len()));
        debug_assert!(key.is_some(), "a value for each known key");
        match key {
            Some(key) => self.pairs.push((Key::Quoted(key), value.into())),
            // Not reached (`known!` gives one value a key); written as an empty key.
            None => {
                self.known = None;
                self.pairs
                    .push((Key::Plain(Cow::Borrowed("")), value.into()));
            }
        }
        self
    }

    /// Adds `key` with `value`.
    pub(super) fn with(mut self, key: impl Into<Key<'a>>, value: impl Into<Dv<'a>>) -> Self {
        self.known = None;
        self.pairs.push((key.into(), value.into()));
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
        self.known = None;
        self.pairs.push((key.into(), Dv::Raw(text)));
        self
    }

    /// Adds every `(key, value)` of `map`, in its order, taking them over.
    pub(super) fn extend_owned(mut self, map: serde_json::Map<String, Value>) -> Self {
        self.known = None;
        self.pairs.extend(
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
    decision_id: QuotedStr,
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
            decision_id: QuotedStr::new(&r.decision_id),
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
            && self.decision_id.as_str() == r.decision_id
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

/// The most details (the run's four included) an event is written with through
/// [`EventBuilder::finish_with_details`]; one with more takes the general path.
const VALUES_MAX: usize = 32;

/// How many key sets of events without [`known!`] keys each thread remembers.
const SEEN_MAX: usize = 4;

thread_local! {
    /// The key sets (then the four of [`run_keys`]) of this thread's recent events
    /// without [`known!`] keys, newest last.
    static SEEN: RefCell<Vec<Rc<DetailKeys>>> = const { RefCell::new(Vec::new()) };
}

/// The [`DetailKeys`] of `pairs`' keys then the four of [`run_keys`]: one the thread
/// remembers when one has exactly those keys (compared in full), otherwise a new one,
/// remembered in place of the oldest. `None` for more than [`VALUES_MAX`] details.
fn seen_keys(pairs: &[(Key<'_>, Dv<'_>)]) -> Option<Rc<DetailKeys>> {
    if pairs.len() + 4 > VALUES_MAX {
        return None;
    }
    let same = |keys: &DetailKeys| {
        keys.len() == pairs.len() + 4
            && pairs
                .iter()
                .enumerate()
                .all(|(n, (k, _))| keys.key(n).map(QuotedStr::as_str) == Some(key(k)))
    };
    SEEN.with(|seen| {
        let mut seen = seen.try_borrow_mut().ok()?;
        if let Some(keys) = seen.iter().rev().find(|keys| same(keys)) {
            return Some(Rc::clone(keys));
        }
        let common = run_keys().iter().map(QuotedStr::as_str);
        let keys = Rc::new(DetailKeys::new(
            pairs.iter().map(|(k, _)| key(k)).chain(common),
        ));
        if seen.len() >= SEEN_MAX {
            seen.remove(0);
        }
        seen.push(Rc::clone(&keys));
        Some(keys)
    })
}

/// The text of `key`.
fn key<'k>(key: &'k Key<'_>) -> &'k str {
    match key {
        Key::Plain(k) => k,
        Key::Quoted(q) => q.as_str(),
    }
}

/// The [`DetailValue`] that writes `value`.
fn detail_value<'v>(value: &'v Dv<'_>) -> DetailValue<'v> {
    match value {
        Dv::Str(v) => DetailValue::Str(v),
        Dv::U64(v) => DetailValue::U64(*v),
        Dv::Bool(v) => DetailValue::Bool(*v),
        Dv::F64(v) => DetailValue::F64(*v),
        Dv::Raw(v) => DetailValue::Raw(v),
        Dv::Ref(v) => DetailValue::Json(v),
        Dv::Json(v) => DetailValue::Json(v),
    }
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
        // Keys known at the call site, or (the execution's details, whose keys come
        // from the plugins) the same keys as one of the thread's recent events.
        let seen;
        let keys = match details.known {
            Some(keys) => Some(keys),
            None => {
                seen = seen_keys(&details.pairs);
                seen.as_deref()
            }
        };
        if let Some(keys) = keys {
            let n = details.pairs.len();
            if n + 4 <= VALUES_MAX && keys.len() == n + 4 {
                // The step's values, then the run's four (`run_keys`' order): the same
                // pairs, in the same order, as the general path below writes.
                let [_, hash] = &self.k.quoted_bundle;
                let common = [
                    DetailValue::Quoted(&q.decision_id),
                    DetailValue::Quoted(&q.content_hash),
                    DetailValue::Quoted(&q.bundle),
                    DetailValue::Quoted(hash),
                ];
                let mut values = [DetailValue::Bool(false); VALUES_MAX];
                let given = details.pairs.iter().map(|(_, v)| detail_value(v));
                for (slot, value) in values.iter_mut().zip(given.chain(common)) {
                    *slot = value;
                }
                let values = values.get(..n + 4).unwrap_or_default();
                self.pending.push(ev.finish_with_details(keys, values));
                self.pending_meta.push((phase, event_type.as_str()));
                return Ok(());
            }
        }
        for (key, value) in &details.pairs {
            let value = detail_value(value);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of `keys`, in the line's order.
    fn names(keys: &DetailKeys) -> Vec<&str> {
        (0..keys.len())
            .filter_map(|n| keys.key(n).map(QuotedStr::as_str))
            .collect()
    }

    #[test]
    fn known_keys_are_the_steps_then_the_runs_four() {
        let keys = known_keys(&["b", "a"]);
        let want = [
            "b",
            "a",
            "decision_id",
            "content_hash",
            "policy_bundle_version",
            "policy_bundle_hash",
        ];
        assert_eq!(names(&keys), want);
        let d = Details::known(&*Box::leak(Box::new(keys)))
            .val("x")
            .val(2u32);
        assert!(d.known.is_some());
        let given: Vec<&str> = d.pairs.iter().map(|(k, _)| key(k)).collect();
        assert_eq!(given, ["b", "a"]);
        // A key added by name makes the details general again.
        assert!(d.with("c", true).known.is_none());
    }

    #[test]
    fn remembered_key_sets_are_the_events_own() {
        let details = |ks: &[&'static str]| {
            ks.iter()
                .fold(Details::new(), |d, k| d.with(*k, 1u32))
                .pairs
        };
        let first = details(&["x", "y"]);
        let a = seen_keys(&first).unwrap_or_else(|| Rc::new(DetailKeys::new([])));
        assert_eq!(
            names(&a),
            [
                "x",
                "y",
                "decision_id",
                "content_hash",
                "policy_bundle_version",
                "policy_bundle_hash"
            ]
        );
        // The same keys (one of them quoted) are the same set; another order, a prefix
        // or one more key are not.
        let quoted = Details::new().with(qkey!("x"), 1u32).with("y", 2u32).pairs;
        let again = seen_keys(&quoted);
        assert!(again.is_some_and(|b| Rc::ptr_eq(&a, &b)));
        for other in [&["y", "x"][..], &["x"], &["x", "y", "z"]] {
            let got = seen_keys(&details(other));
            assert!(got.as_ref().is_some_and(|b| !Rc::ptr_eq(&a, b)));
            let mut want = other.to_vec();
            want.extend(run_keys().iter().map(QuotedStr::as_str));
            assert!(got.is_some_and(|b| names(&b) == want));
        }
        // Four newer sets push the first out: it is written again, equal.
        let newer = details(&["w"]);
        assert!(seen_keys(&newer).is_some());
        let written = seen_keys(&first);
        assert!(written.is_some_and(|b| !Rc::ptr_eq(&a, &b) && *b == *a));
        // Too many details for the fast path: none.
        let many: Vec<String> = (0..VALUES_MAX).map(|n| format!("k{n}")).collect();
        let pairs: Vec<(Key<'_>, Dv<'_>)> = many
            .iter()
            .map(|k| (Key::from(k.as_str()), Dv::from(true)))
            .collect();
        assert!(seen_keys(&pairs).is_none());
    }
}
