//! Prepared events: everything of an event's JSONL line and hash that does not depend
//! on its predecessor, computed before a store takes its lock, so that chaining it
//! (docs/architecture.md#the-audit-chain) only finishes the hash and copies the line.
//!
//! The hashed payload is `{"details": {…}, "event_type": …, "intent_id": …, "outcome":
//! …, "previous_hash": …, "stage": …, "timestamp": …}` and the line ends in
//! `"event_hash": "…", "previous_hash": …}`: a [`PreparedEvent`] holds the line up to
//! its event hash and a SHA-256 state fed with the payload up to the previous hash, so
//! [`PreparedEvent::finish_into`] hashes the last ~150 bytes (two or three SHA-256
//! blocks) and appends the line. Lines and hashes are byte for byte those of
//! [`NewEvent::seal_into`].

use crate::event::{self, AuditEvent, EventShapeError, NewEvent, Scratch, Text};
use cfa_types::canonical::{self, Style};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::ops::Range;

/// An event whose line and hash are computed up to the parts that depend on the
/// previous event's hash. Built by [`NewEvent::prepare`] (which keeps the event's
/// fields, so the sealed [`AuditEvent`] costs nothing more) or by an
/// [`EventBuilder`] (details written as text, no map; the sealed event is read back
/// from its line when someone asks for it).
#[derive(Clone)]
pub struct PreparedEvent {
    /// The JSONL line up to and including `"event_hash": "`, followed by the hashed
    /// payload after the previous hash: `, "stage": …, "timestamp": …}`.
    text: String,
    /// Where the line ends in `text`.
    line_len: usize,
    /// Where the `details` object is in `text` (`json.dumps(details)`).
    details: Range<usize>,
    /// SHA-256 fed with the payload up to and including `"previous_hash": `.
    hasher: Sha256,
    /// The event itself, when it was prepared from a [`NewEvent`].
    fields: Option<NewEvent>,
    /// A detail was given as raw text ([`EventBuilder::detail_raw`]), which nothing
    /// checked to be JSON.
    raw: bool,
}

impl std::fmt::Debug for PreparedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedEvent")
            .field("line", &self.line_prefix())
            .field("has_fields", &self.fields.is_some())
            .finish_non_exhaustive()
    }
}

/// What a store hands back for one chained prepared event: the whole event when the
/// prepared event kept its fields, else only its hash (what the kernel asks for).
// Boxed: a request of one event keeps its sealed event inline through the queue's
// slot (no list), and an unboxed event would be copied at every step there; the
// whole-event appends (already a map and several strings per event) pay one box.
#[derive(Debug)]
pub(crate) enum Sealed {
    /// The sealed event.
    Event(Box<AuditEvent>),
    /// The event's hash.
    Hash(SealedHash),
}

impl Sealed {
    /// The event's hash. Called on the appender's thread: the prepared event's text
    /// buffer is kept there for the thread's next event (see [`recycle_text`]).
    pub(crate) fn into_hash(self) -> String {
        match self {
            Self::Event(e) => e.event_hash,
            Self::Hash(h) => h.into_hash(),
        }
    }

    /// The event's hash (lowercase hex).
    pub(crate) fn hash(&self) -> &str {
        match self {
            Self::Event(e) => &e.event_hash,
            Self::Hash(h) => h.as_str(),
        }
    }
}

/// The hash of a chained event built as text, written into that event's text buffer:
/// the leader that chained it neither allocates the hash's `String` nor frees the
/// buffer (memory the appender's thread allocated); the appender does both on its
/// own thread ([`SealedHash::into_hash`]).
#[derive(Debug)]
pub(crate) struct SealedHash(String);

impl SealedHash {
    /// The hash (lowercase hex).
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The hash as a `String`; the text buffer is kept for this thread's next event.
    pub(crate) fn into_hash(self) -> String {
        let hash = self.0.as_str().to_owned();
        recycle_text(self.0);
        hash
    }
}

/// How many spare text buffers a thread keeps: about one group's worth of its
/// appenders (64 KiB at most per thread at the ~1 KiB of a `policy_check` event).
const SPARE_TEXTS: usize = 64;

/// Spare buffers bigger than this are dropped instead of kept.
const SPARE_TEXT_MAX: usize = 4 * 1024;

thread_local! {
    /// Text buffers of this thread's chained events, for its next events' lines
    /// (taken out while in use).
    static SPARE: std::cell::Cell<Vec<String>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Keeps `text` (a chained prepared event's buffer) for one of this thread's next
/// events, unless the thread keeps enough spares or the buffer is unusually large.
pub(crate) fn recycle_text(mut text: String) {
    if text.capacity() == 0 || text.capacity() > SPARE_TEXT_MAX {
        return;
    }
    text.clear();
    let _ = SPARE.try_with(|cell| {
        let mut spare = cell.take();
        if spare.len() < SPARE_TEXTS {
            if spare.capacity() == 0 {
                spare.reserve_exact(SPARE_TEXTS);
            }
            spare.push(text);
        }
        cell.set(spare);
    });
}

/// A cleared buffer for a line of about `capacity` bytes: a spare of this thread when
/// one is big enough, else a new one.
fn next_text(capacity: usize) -> String {
    let spare = SPARE
        .try_with(|cell| {
            let mut spare = cell.take();
            let s = spare.pop();
            cell.set(spare);
            s
        })
        .ok()
        .flatten();
    match spare {
        Some(s) if s.capacity() >= capacity => s,
        _ => String::with_capacity(capacity),
    }
}

/// Bytes of the common case of a quoted previous hash plus the payload's end, hashed
/// from a stack buffer in one update.
const FINISH_STACK: usize = 256;

impl PreparedEvent {
    /// True when a detail was given as raw text ([`EventBuilder::detail_raw`]): only
    /// then can the details be other than JSON.
    pub(crate) fn has_raw_details(&self) -> bool {
        self.raw
    }

    /// The line up to and including `"event_hash": "`.
    pub fn line_prefix(&self) -> &str {
        self.text.get(..self.line_len).unwrap_or_default()
    }

    /// `json.dumps(details)`: the details object as the line writes it (the SQLite
    /// `details_json` column), the same text as [`AuditEvent::details_json`].
    pub fn details_json(&self) -> &str {
        self.text.get(self.details.clone()).unwrap_or_default()
    }

    /// The payload's end after the previous hash.
    fn payload_tail(&self) -> &str {
        self.text.get(self.line_len..).unwrap_or_default()
    }

    /// The event hash of this event chained after `previous_hash` (lowercase hex).
    pub fn event_hash(&self, previous_hash: &str) -> String {
        let plain = canonical::is_plain(previous_hash, true);
        let hex = self.finish_hash(self.hasher.clone(), previous_hash, plain);
        std::str::from_utf8(&hex).unwrap_or_default().to_owned()
    }

    /// Chains this event after `previous_hash`: appends its JSONL line (without the
    /// newline) to `line`, leaving what `line` held before as it was, and returns its
    /// hash. The same line and hash as [`NewEvent::seal_into`] of the same event.
    pub fn finish_into(&self, previous_hash: &str, line: &mut String) -> String {
        self.finish_with(self.hasher.clone(), previous_hash, line)
    }

    /// [`PreparedEvent::finish_into`] that consumes the SHA-256 state instead of
    /// copying it.
    fn finish_with(&self, hasher: Sha256, previous_hash: &str, line: &mut String) -> String {
        let hex = self.finish_hex(hasher, previous_hash, line);
        std::str::from_utf8(&hex).unwrap_or_default().to_owned()
    }

    /// [`PreparedEvent::finish_with`] handing back the hash's hex digits.
    fn finish_hex(&self, hasher: Sha256, previous_hash: &str, line: &mut String) -> [u8; 64] {
        // Every hash this crate writes (and `""`) is its own text between quotes.
        let plain = canonical::is_plain(previous_hash, true);
        let hex = self.finish_hash(hasher, previous_hash, plain);
        let hash = std::str::from_utf8(&hex).unwrap_or_default();
        let prefix = self.line_prefix();
        line.reserve(prefix.len() + hash.len() + previous_hash.len() + 24);
        line.push_str(prefix);
        // Hex digits need no escaping: the quoted digits are `write_str`'s output.
        line.push_str(hash);
        if plain {
            line.push_str("\", \"previous_hash\": \"");
            line.push_str(previous_hash);
            line.push_str("\"}");
        } else {
            line.push_str("\", \"previous_hash\": ");
            canonical::write_str(line, previous_hash, true);
            line.push('}');
        }
        hex
    }

    /// The hex hash: the state fed with the quoted previous hash and the payload's end.
    fn finish_hash(&self, mut hasher: Sha256, previous_hash: &str, plain: bool) -> [u8; 64] {
        let tail = self.payload_tail().as_bytes();
        let mut stack = [0u8; FINISH_STACK];
        let needed = previous_hash.len() + 2 + tail.len();
        match stack.get_mut(..needed) {
            Some(buf) if plain => {
                let (open, rest) = buf.split_at_mut(1);
                let (prev, rest) = rest.split_at_mut(previous_hash.len());
                let (close, end) = rest.split_at_mut(1);
                open.copy_from_slice(b"\"");
                prev.copy_from_slice(previous_hash.as_bytes());
                close.copy_from_slice(b"\"");
                end.copy_from_slice(tail);
                hasher.update(&*buf);
            }
            _ => {
                let mut quoted = String::with_capacity(needed + 8);
                canonical::write_str(&mut quoted, previous_hash, true);
                quoted.push_str(self.payload_tail());
                hasher.update(quoted.as_bytes());
            }
        }
        let mut hex = [0u8; 64];
        canonical::hex_lower_into(&hasher.finalize(), &mut hex);
        hex
    }

    /// [`PreparedEvent::finish_into`], then the sealed event (see
    /// [`PreparedEvent::into_event`]).
    pub fn seal_into(
        self,
        previous_hash: &str,
        line: &mut String,
    ) -> Result<AuditEvent, EventShapeError> {
        let hash = self.finish_into(previous_hash, line);
        self.into_event(hash, previous_hash)
    }

    /// What a store keeps of this event chained after `previous_hash` with the line
    /// appended to `line`: the event when its fields were kept, else its hash.
    pub(crate) fn seal_line(mut self, previous_hash: &str, line: &mut String) -> Sealed {
        self.seal_line_in_place(previous_hash, line)
    }

    /// [`PreparedEvent::seal_line`] without moving the event: its text and fields are
    /// taken out (what is left is an empty event, to be dropped).
    pub(crate) fn seal_line_in_place(&mut self, previous_hash: &str, line: &mut String) -> Sealed {
        let hasher = std::mem::replace(&mut self.hasher, Sha256::new());
        let hex = self.finish_hex(hasher, previous_hash, line);
        let hash = std::str::from_utf8(&hex).unwrap_or_default();
        match self.fields.take() {
            Some(fields) => {
                Sealed::Event(Box::new(fields.into_sealed(hash.to_owned(), previous_hash)))
            }
            None => {
                let mut text = std::mem::take(&mut self.text);
                text.clear();
                text.push_str(hash);
                Sealed::Hash(SealedHash(text))
            }
        }
    }

    /// The sealed event with `event_hash` (the lowercase hex that
    /// [`PreparedEvent::finish_into`] returned) after `previous_hash`: the kept fields, or
    /// (for an event built as text) the event read back from its line, which is the
    /// event the line describes.
    pub fn into_event(
        self,
        event_hash: String,
        previous_hash: &str,
    ) -> Result<AuditEvent, EventShapeError> {
        if let Some(fields) = self.fields {
            return Ok(fields.into_sealed(event_hash, previous_hash));
        }
        let mut line = String::with_capacity(self.line_len + previous_hash.len() + 96);
        line.push_str(self.line_prefix());
        // Hex digits need no escaping (the prefix holds the opening quote).
        line.push_str(&event_hash);
        line.push_str("\", \"previous_hash\": ");
        canonical::write_str(&mut line, previous_hash, true);
        line.push('}');
        AuditEvent::from_jsonl_line(&line)
    }

    /// The event before chaining (the kept fields, or the event read back from its
    /// line), for stores that only take [`NewEvent`]s.
    pub fn into_new_event(self) -> Result<NewEvent, EventShapeError> {
        let e = self.into_event(String::new(), "")?;
        Ok(NewEvent {
            intent_id: e.intent_id,
            stage: e.stage,
            event_type: e.event_type,
            outcome: e.outcome,
            policy_bundle_version: e.policy_bundle_version,
            details: e.details,
            timestamp: e.timestamp,
        })
    }
}

impl NewEvent {
    /// Writes everything of the event's line and hash that does not depend on the
    /// previous event (see [`PreparedEvent`]), keeping the event's fields. Chaining it
    /// with [`PreparedEvent::finish_into`] gives the line and hash of
    /// [`NewEvent::seal_into`].
    pub fn prepare(mut self) -> PreparedEvent {
        // The timestamp is lent to the builder and taken back (no copy).
        let timestamp = std::mem::take(&mut self.timestamp);
        let mut b = EventBuilder::new(
            &self.intent_id,
            &self.stage,
            &self.event_type,
            &self.outcome,
            &self.policy_bundle_version,
            timestamp,
        );
        // Map keys are distinct: no key can repeat.
        b.check_duplicates = false;
        for (k, v) in &self.details {
            b.detail(k, v);
        }
        let (mut prepared, timestamp) = b.finish_parts();
        self.timestamp = timestamp;
        prepared.fields = Some(self);
        prepared
    }
}

/// One detail's value.
enum Val<'a> {
    Json(&'a Value),
    Str(&'a str),
    /// A string's canonical text, quotes included ([`QuotedStr`]).
    Quoted(&'a str),
    /// Canonical text of a value without objects (the same in the line and the
    /// payload).
    Raw(&'a str),
    U64(u64),
    I64(i64),
    Bool(bool),
    F64(f64),
}

/// One detail's value for [`EventBuilder::detail_value`] and
/// [`EventBuilder::detail_value_quoted_key`]: each variant is written as the
/// `detail_*` method of its name writes it.
#[derive(Debug, Clone, Copy)]
pub enum DetailValue<'a> {
    /// A string ([`EventBuilder::detail_str`]).
    Str(&'a str),
    /// A string already quoted ([`EventBuilder::detail_quoted`]).
    Quoted(&'a QuotedStr),
    /// An unsigned integer ([`EventBuilder::detail_u64`]).
    U64(u64),
    /// A signed integer ([`EventBuilder::detail_i64`]).
    I64(i64),
    /// A boolean ([`EventBuilder::detail_bool`]).
    Bool(bool),
    /// A float ([`EventBuilder::detail_f64`]).
    F64(f64),
    /// Canonical text of a value holding no object ([`EventBuilder::detail_raw`]).
    Raw(&'a str),
    /// A JSON value ([`EventBuilder::detail`]).
    Json(&'a Value),
}

/// Writes a [`PreparedEvent`] directly from borrowed data: no `details` map, no key
/// or value copies. Details keep insertion order, and a repeated key replaces the
/// earlier value in its place, exactly as [`NewEvent::detail`] does, so the event is
/// the one `NewEvent::new(…).detail(…)…` would give.
#[derive(Debug)]
pub struct EventBuilder {
    /// The line being written (from the thread's scratch buffers).
    line: String,
    scratch: Scratch,
    /// Each detail's `"key": value` text in `line`, in insertion order.
    spans: Vec<Range<usize>>,
    /// The escaped `intent_id`, `stage`, `event_type` and `outcome` in `line`.
    heads: [Range<usize>; 4],
    /// Where the details start in `line` (after `{`).
    details_start: usize,
    timestamp: String,
    /// Look for a repeated key (off for a map's keys).
    check_duplicates: bool,
    /// The [`prefix_bit`] of every detail's key, or-ed together: a key whose bit is
    /// not here is not repeated.
    key_mask: u64,
    /// A repeated key was given: the details text in `line` must be put back together.
    rewritten: bool,
    /// A detail was given as raw text.
    raw: bool,
}

/// A string's canonical JSON text (quoted, ASCII escapes: what the line and the
/// payload both hold for it), written once for a string that many events carry (a
/// run's intent id, decision id, content hash, bundle version and hash), so that
/// [`EventBuilder::detail_quoted`] and [`EventBuilder::new_quoted`] copy it instead of
/// escaping it again. Only [`QuotedStr::new`] makes one, so its text is always a JSON
/// string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedStr {
    /// The string as given.
    raw: String,
    /// Its canonical text.
    json: String,
}

impl Default for QuotedStr {
    /// The empty string's text, `""`.
    fn default() -> Self {
        QuotedStr::new("")
    }
}

impl QuotedStr {
    /// `value`'s canonical text.
    pub fn new(value: &str) -> Self {
        let mut json = String::with_capacity(value.len() + 2);
        canonical::write_str(&mut json, value, true);
        QuotedStr {
            raw: value.to_owned(),
            json,
        }
    }

    /// The string as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Its canonical text, quotes included.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Makes this the text of `value`, writing it again only when `value` is another
    /// string.
    pub fn set(&mut self, value: &str) {
        if self.raw != value {
            self.raw.clear();
            self.raw.push_str(value);
            self.json.clear();
            canonical::write_str(&mut self.json, value, true);
        }
    }
}

/// String details that many events carry, in order (a run's decision id, content hash
/// and bundle version and hash), written once as the canonical text of their
/// `"key": value` pairs, so that [`EventBuilder::details_quoted`] copies them in with
/// one copy instead of writing each pair again. Built from [`QuotedStr`]s only, so
/// its text is always JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotedDetails {
    /// The pairs' text, `", "`-separated: `"k1": "v1", "k2": "v2"`.
    text: String,
    /// The raw keys, back to back.
    keys: String,
    /// Each pair in order.
    items: Vec<QuotedItem>,
    /// A key was given twice.
    repeated: bool,
    /// The [`prefix_bit`] of every key, or-ed together.
    mask: u64,
}

/// One of 64 bits picked by a key's [`event::key_prefix`]: a detail whose bit is not
/// in a [`QuotedDetails::mask`] has none of its keys.
fn prefix_bit(prefix: u64) -> u64 {
    1 << (prefix.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
}

/// One pair of a [`QuotedDetails`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct QuotedItem {
    /// The raw key in [`QuotedDetails::keys`].
    key: Range<usize>,
    /// The key's [`event::key_prefix`].
    prefix: u64,
    /// The pair's `"key": value` in [`QuotedDetails::text`].
    pair: Range<usize>,
    /// How long the key's canonical text is (the value starts two bytes later).
    key_json_len: usize,
}

impl QuotedDetails {
    /// No details.
    pub fn new() -> Self {
        Self::default()
    }

    /// No details, with room for `pairs` pairs whose text takes up to `bytes` bytes.
    pub fn with_capacity(pairs: usize, bytes: usize) -> Self {
        QuotedDetails {
            text: String::with_capacity(bytes),
            keys: String::with_capacity(pairs * 24),
            items: Vec::with_capacity(pairs),
            repeated: false,
            mask: 0,
        }
    }

    /// Forgets every pair (keeping the capacity).
    pub fn clear(&mut self) {
        self.text.clear();
        self.keys.clear();
        self.items.clear();
        self.repeated = false;
        self.mask = 0;
    }

    /// Appends the string detail `key` with `value`.
    pub fn push(&mut self, key: &QuotedStr, value: &QuotedStr) -> &mut Self {
        self.push_with(key, |text| text.push_str(value.json()))
    }

    /// Appends the string detail `key` with `value`, escaping `value` here (the same
    /// as `push(key, &QuotedStr::new(value))`).
    pub fn push_str(&mut self, key: &QuotedStr, value: &str) -> &mut Self {
        self.push_with(key, |text| canonical::write_str(text, value, true))
    }

    /// Appends the pair of `key` whose value's text `write_value` appends.
    fn push_with(&mut self, key: &QuotedStr, write_value: impl FnOnce(&mut String)) -> &mut Self {
        let raw = key.as_str();
        let prefix = event::key_prefix(raw);
        let keys = self.keys.as_str();
        if self
            .items
            .iter()
            .any(|i| i.prefix == prefix && keys.get(i.key.clone()) == Some(raw))
        {
            self.repeated = true;
        }
        if !self.items.is_empty() {
            self.text.push_str(", ");
        }
        self.mask |= prefix_bit(prefix);
        let start = self.text.len();
        self.text.push_str(key.json());
        self.text.push_str(": ");
        write_value(&mut self.text);
        let key_start = self.keys.len();
        self.keys.push_str(raw);
        self.items.push(QuotedItem {
            key: key_start..self.keys.len(),
            prefix,
            pair: start..self.text.len(),
            key_json_len: key.json().len(),
        });
        self
    }

    /// Makes `value` the value of the pair at `index` (in the order they were pushed),
    /// keeping its key and place; false (and nothing changed) when there is no such
    /// pair.
    pub fn set_value(&mut self, index: usize, value: &QuotedStr) -> bool {
        let Some(item) = self.items.get(index) else {
            return false;
        };
        let (start, end) = (item.pair.start + item.key_json_len + 2, item.pair.end);
        if start > end || !self.text.is_char_boundary(start) || !self.text.is_char_boundary(end) {
            return false;
        }
        let new = value.json();
        // Two moves of the text after the value (`replace_range` splices through an
        // iterator, several times slower for these ~150 bytes).
        self.text.drain(start..end);
        self.text.insert_str(start, new);
        let old_len = end - start;
        if let Some(item) = self.items.get_mut(index) {
            item.pair.end = start + new.len();
        }
        for later in self.items.iter_mut().skip(index + 1) {
            later.pair =
                later.pair.start - old_len + new.len()..later.pair.end - old_len + new.len();
        }
        true
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The raw key, the key's canonical text and the value's canonical text of `item`.
    fn parts(&self, item: &QuotedItem) -> (&str, &str, &str) {
        let key = self.keys.get(item.key.clone()).unwrap_or_default();
        let pair = self.text.get(item.pair.clone()).unwrap_or_default();
        let key_json = pair.get(..item.key_json_len).unwrap_or_default();
        let value_json = pair.get(item.key_json_len + 2..).unwrap_or_default();
        (key, key_json, value_json)
    }
}

/// The keys of a kind of event whose details are always the same keys in the same
/// order (every `policy_check` event's nine), each with its canonical text and their
/// sorted order worked out once, for [`EventBuilder::finish_with_details`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailKeys {
    /// The keys in the order the line writes them.
    keys: Vec<QuotedStr>,
    /// Indices into `keys` in the payload's order (code point order of the keys).
    sorted: Vec<usize>,
    /// A key was given twice.
    repeated: bool,
}

impl DetailKeys {
    /// The keys `keys`, in the order the line writes them.
    pub fn new<'k>(keys: impl IntoIterator<Item = &'k str>) -> Self {
        let keys: Vec<QuotedStr> = keys.into_iter().map(QuotedStr::new).collect();
        let mut sorted: Vec<usize> = (0..keys.len()).collect();
        let key = |at: &usize| keys.get(*at).map(QuotedStr::as_str).unwrap_or_default();
        sorted.sort_by(|a, b| key(a).cmp(key(b)));
        let repeated = sorted.windows(2).any(|w| match w {
            [a, b] => key(a) == key(b),
            _ => false,
        });
        DetailKeys {
            keys,
            sorted,
            repeated,
        }
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key at `index`, in the order the line writes them.
    pub fn key(&self, index: usize) -> Option<&QuotedStr> {
        self.keys.get(index)
    }
}

/// Appends the canonical text of the JSON array of `items` (`["a", "b"]`, ASCII
/// escapes) to `out`: the text [`EventBuilder::detail_raw`] takes for an array of
/// strings.
pub fn write_str_array<'s>(out: &mut String, items: impl IntoIterator<Item = &'s str>) {
    out.push('[');
    for (n, item) in items.into_iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        canonical::write_str(out, item, true);
    }
    out.push(']');
}

/// The keys of [`EventBuilder::bundle`] and their canonical texts (each is its key
/// between quotes: no character of either needs escaping), written into every event
/// of a run without escaping them again.
const BUNDLE_KEYS: [(&str, &str); 2] = [
    ("policy_bundle_version", "\"policy_bundle_version\""),
    ("policy_bundle_hash", "\"policy_bundle_hash\""),
];

/// The capacity of the next line's buffer after an event whose text took `len`
/// bytes: room for it and a little more, in 256-byte steps.
fn line_capacity(len: usize) -> usize {
    (len.saturating_add(64) | 255).saturating_add(1)
}

/// Appends `key` and the escaped `value` to `line`, returning where the value is.
fn field(line: &mut String, key: &str, value: &str) -> Range<usize> {
    line.push_str(key);
    let start = line.len();
    canonical::write_str(line, value, true);
    start..line.len()
}

/// Appends `key` and the already quoted `value` to `line`, returning where the value
/// is.
fn quoted_field(line: &mut String, key: &str, value: &QuotedStr) -> Range<usize> {
    line.push_str(key);
    let start = line.len();
    line.push_str(value.json());
    start..line.len()
}

/// One string of an event's head (its intent id, stage, event type, outcome or
/// bundle version) for [`EventBuilder::with_heads`]: as given, or already quoted (the
/// same text, not escaped again).
#[derive(Debug, Clone, Copy)]
pub enum Head<'a> {
    /// The string as given.
    Plain(&'a str),
    /// The string's canonical text.
    Quoted(&'a QuotedStr),
}

impl Head<'_> {
    fn write(&self, line: &mut String, key: &str) -> Range<usize> {
        match self {
            Head::Plain(s) => field(line, key, s),
            Head::Quoted(q) => quoted_field(line, key, q),
        }
    }
}

impl EventBuilder {
    /// Starts an event (see [`NewEvent::new`]); `policy_bundle_version` is the
    /// top-level, unhashed copy (use [`EventBuilder::bundle`] for the hashed one).
    pub fn new(
        intent_id: &str,
        stage: &str,
        event_type: &str,
        outcome: &str,
        policy_bundle_version: &str,
        timestamp: impl Into<String>,
    ) -> Self {
        Self::with_heads(
            Head::Plain(intent_id),
            Head::Plain(stage),
            Head::Plain(event_type),
            Head::Plain(outcome),
            Head::Plain(policy_bundle_version),
            timestamp,
        )
    }

    /// [`EventBuilder::new`] with the intent id and the bundle version already quoted:
    /// the same event.
    pub fn new_quoted(
        intent_id: &QuotedStr,
        stage: &str,
        event_type: &str,
        outcome: &str,
        policy_bundle_version: &QuotedStr,
        timestamp: impl Into<String>,
    ) -> Self {
        Self::with_heads(
            Head::Quoted(intent_id),
            Head::Plain(stage),
            Head::Plain(event_type),
            Head::Plain(outcome),
            Head::Quoted(policy_bundle_version),
            timestamp,
        )
    }

    /// [`EventBuilder::new`] with each of the head's strings as given or already
    /// quoted: the same event.
    pub fn with_heads(
        intent_id: Head<'_>,
        stage: Head<'_>,
        event_type: Head<'_>,
        outcome: Head<'_>,
        policy_bundle_version: Head<'_>,
        timestamp: impl Into<String>,
    ) -> Self {
        let timestamp = timestamp.into();
        let mut scratch = event::take_scratch();
        scratch.clear();
        let mut spans = std::mem::take(&mut scratch.spans);
        spans.clear();
        let mut line = std::mem::take(&mut scratch.line);
        line.clear();
        let heads = [
            intent_id.write(&mut line, "{\"intent_id\": "),
            stage.write(&mut line, ", \"stage\": "),
            event_type.write(&mut line, ", \"event_type\": "),
            outcome.write(&mut line, ", \"outcome\": "),
        ];
        policy_bundle_version.write(&mut line, ", \"policy_bundle_version\": ");
        line.push_str(", \"details\": {");
        Self {
            details_start: line.len(),
            line,
            scratch,
            spans,
            heads,
            timestamp,
            check_duplicates: true,
            key_mask: 0,
            rewritten: false,
            raw: false,
        }
    }

    /// Adds (or replaces) one detail.
    pub fn detail(&mut self, key: &str, value: &Value) -> &mut Self {
        self.put(key, Val::Json(value))
    }

    /// Adds (or replaces) one string detail (the same as `detail(key,
    /// &Value::String(value))`, without building the value).
    pub fn detail_str(&mut self, key: &str, value: &str) -> &mut Self {
        self.put(key, Val::Str(value))
    }

    /// Adds (or replaces) one string detail already quoted (the same as
    /// `detail_str(key, value.as_str())`, without escaping it again).
    pub fn detail_quoted(&mut self, key: &str, value: &QuotedStr) -> &mut Self {
        self.put(key, Val::Quoted(value.json()))
    }

    /// Adds (or replaces) one unsigned integer detail (the same as `detail(key,
    /// &Value::from(value))`).
    pub fn detail_u64(&mut self, key: &str, value: u64) -> &mut Self {
        self.put(key, Val::U64(value))
    }

    /// Adds (or replaces) one signed integer detail (the same as `detail(key,
    /// &Value::from(value))`).
    pub fn detail_i64(&mut self, key: &str, value: i64) -> &mut Self {
        self.put(key, Val::I64(value))
    }

    /// Adds (or replaces) one boolean detail (the same as `detail(key,
    /// &Value::Bool(value))`).
    pub fn detail_bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.put(key, Val::Bool(value))
    }

    /// Adds (or replaces) one float detail: the same as `detail(key,
    /// &serde_json::to_value(value)?)`, i.e. Python's `repr(float)` for a finite value
    /// and `null` for NaN and the infinities (which JSON cannot hold).
    pub fn detail_f64(&mut self, key: &str, value: f64) -> &mut Self {
        self.put(key, Val::F64(value))
    }

    /// Adds (or replaces) one detail given as its canonical text: what
    /// `canonical::write_value(_, v, Style::SortedAscii)` writes for a value `v` that
    /// holds no object (a scalar, or arrays of them), e.g. from
    /// [`write_str_array`]. The text is taken as it is: text that is not such a value
    /// makes a line that does not describe its event.
    pub fn detail_raw(&mut self, key: &str, canonical_text: &str) -> &mut Self {
        self.raw = true;
        self.put(key, Val::Raw(canonical_text))
    }

    /// [`NewEvent::with_bundle`]'s hashed copies: `policy_bundle_version` and
    /// `policy_bundle_hash` in `details` (the top-level copy is given to
    /// [`EventBuilder::new`]).
    pub fn bundle(&mut self, version: &str, hash: &str) -> &mut Self {
        let [(version_key, version_json), (hash_key, hash_json)] = BUNDLE_KEYS;
        self.put_keyed(version_key, Some(version_json), Val::Str(version))
            .put_keyed(hash_key, Some(hash_json), Val::Str(hash))
    }

    /// [`EventBuilder::bundle`] with both already quoted.
    pub fn bundle_quoted(&mut self, version: &QuotedStr, hash: &QuotedStr) -> &mut Self {
        let [(version_key, version_json), (hash_key, hash_json)] = BUNDLE_KEYS;
        self.put_keyed(version_key, Some(version_json), Val::Quoted(version.json()))
            .put_keyed(hash_key, Some(hash_json), Val::Quoted(hash.json()))
    }

    /// Adds (or replaces) one string detail whose key and value are both already
    /// quoted (the same as `detail_str(key.as_str(), value.as_str())`, escaping
    /// neither again): for a key that many events carry.
    pub fn detail_quoted_key(&mut self, key: &QuotedStr, value: &QuotedStr) -> &mut Self {
        self.put_keyed(key.as_str(), Some(key.json()), Val::Quoted(value.json()))
    }

    /// Adds (or replaces) every string detail of `block`, in its order: the same as
    /// `detail_quoted_key` for each of its pairs. When none of its keys is here yet
    /// (and none repeats), its text is copied in at once.
    pub fn details_quoted(&mut self, block: &QuotedDetails) -> &mut Self {
        if block.items.is_empty() {
            return self;
        }
        if block.repeated
            || (self.check_duplicates
                && self.key_mask & block.mask != 0
                && self.holds_any_of(block))
        {
            for item in &block.items {
                let (key, key_json, value_json) = block.parts(item);
                self.put_keyed(key, Some(key_json), Val::Quoted(value_json));
            }
            return self;
        }
        if !self.spans.is_empty() {
            self.line.push_str(", ");
        }
        let base = self.line.len();
        self.line.push_str(&block.text);
        self.key_mask |= block.mask;
        for item in &block.items {
            let span = base + item.pair.start..base + item.pair.end;
            let key = block.keys.get(item.key.clone()).unwrap_or_default();
            self.scratch
                .push_entry_prefixed(key, item.prefix, Text::Line(span.clone()));
            self.spans.push(span);
        }
        self
    }

    /// Whether a detail given so far has one of `block`'s keys.
    fn holds_any_of(&self, block: &QuotedDetails) -> bool {
        let keys = self.scratch.keys.as_str();
        self.scratch.entries.iter().any(|e| {
            block.mask & prefix_bit(e.prefix) != 0
                && block.items.iter().any(|item| {
                    item.prefix == e.prefix
                        && keys.get(e.key.clone()) == block.keys.get(item.key.clone())
                })
        })
    }

    /// Where the detail `key` (whose [`event::key_prefix`] is `prefix`) is among the
    /// details given so far.
    fn position_of(&self, prefix: u64, key: &str) -> Option<usize> {
        let keys = self.scratch.keys.as_str();
        self.scratch
            .entries
            .iter()
            .position(|e| e.prefix == prefix && keys.get(e.key.clone()) == Some(key))
    }

    /// Adds (or replaces) one detail of any kind (see [`DetailValue`]).
    pub fn detail_value(&mut self, key: &str, value: DetailValue<'_>) -> &mut Self {
        self.put_value(key, None, value)
    }

    /// [`EventBuilder::detail_value`] with the key already quoted (the same as
    /// `detail_value(key.as_str(), value)`, without escaping the key again): for keys
    /// that many events carry.
    pub fn detail_value_quoted_key(
        &mut self,
        key: &QuotedStr,
        value: DetailValue<'_>,
    ) -> &mut Self {
        self.put_value(key.as_str(), Some(key.json()), value)
    }

    fn put_value(
        &mut self,
        key: &str,
        key_json: Option<&str>,
        value: DetailValue<'_>,
    ) -> &mut Self {
        let value = match value {
            DetailValue::Str(s) => Val::Str(s),
            DetailValue::Quoted(q) => Val::Quoted(q.json()),
            DetailValue::U64(u) => Val::U64(u),
            DetailValue::I64(i) => Val::I64(i),
            DetailValue::Bool(b) => Val::Bool(b),
            DetailValue::F64(f) => Val::F64(f),
            DetailValue::Raw(text) => {
                self.raw = true;
                Val::Raw(text)
            }
            DetailValue::Json(v) => Val::Json(v),
        };
        self.put_keyed(key, key_json, value)
    }

    fn put(&mut self, key: &str, value: Val<'_>) -> &mut Self {
        self.put_keyed(key, None, value)
    }

    /// [`EventBuilder::put`] with the key's canonical text (`key_json`, quotes included)
    /// when the caller has it, copied in instead of escaping `key` again.
    fn put_keyed(&mut self, key: &str, key_json: Option<&str>, value: Val<'_>) -> &mut Self {
        let prefix = event::key_prefix(key);
        let bit = prefix_bit(prefix);
        let repeated = if self.check_duplicates && self.key_mask & bit != 0 {
            self.position_of(prefix, key)
        } else {
            None
        };
        if repeated.is_none() && !self.spans.is_empty() {
            self.line.push_str(", ");
        }
        let start = self.line.len();
        match key_json {
            Some(json) => self.line.push_str(json),
            None => canonical::write_str(&mut self.line, key, true),
        }
        self.line.push_str(": ");
        let text = match value {
            Val::Str(s) => {
                canonical::write_str(&mut self.line, s, true);
                Text::Line(start..self.line.len())
            }
            Val::Raw(raw) | Val::Quoted(raw) => {
                self.line.push_str(raw);
                Text::Line(start..self.line.len())
            }
            Val::U64(u) => {
                canonical::write_number(&mut self.line, &u.into());
                Text::Line(start..self.line.len())
            }
            Val::I64(i) => {
                canonical::write_number(&mut self.line, &i.into());
                Text::Line(start..self.line.len())
            }
            Val::Bool(b) => {
                self.line.push_str(if b { "true" } else { "false" });
                Text::Line(start..self.line.len())
            }
            Val::F64(f) => {
                if f.is_finite() {
                    canonical::write_py_float(&mut self.line, f);
                } else {
                    self.line.push_str("null");
                }
                Text::Line(start..self.line.len())
            }
            Val::Json(v) if event::has_object(v) => {
                // The line keeps the object's insertion order, the payload sorts it.
                let key_end = self.line.len();
                canonical::write_value(&mut self.line, v, Style::InsertionAscii);
                let texts = &mut self.scratch.texts;
                let sorted = texts.len();
                texts.push_str(self.line.get(start..key_end).unwrap_or_default());
                canonical::write_value(texts, v, Style::SortedAscii);
                Text::Scratch(sorted..texts.len())
            }
            Val::Json(v) => {
                canonical::write_value(&mut self.line, v, Style::SortedAscii);
                Text::Line(start..self.line.len())
            }
        };
        let span = start..self.line.len();
        match repeated {
            Some(at) => {
                // The new text went to the end of the line; `finish` puts the details
                // back together in insertion order.
                if let (Some(e), Some(s)) =
                    (self.scratch.entries.get_mut(at), self.spans.get_mut(at))
                {
                    e.text = text;
                    *s = span;
                }
                self.rewritten = true;
            }
            None => {
                self.scratch.push_entry_prefixed(key, prefix, text);
                self.key_mask |= bit;
                self.spans.push(span);
            }
        }
        self
    }

    /// Puts the details text back together from the spans, in insertion order.
    fn rewrite_details(&mut self) {
        let old = self.line.split_off(self.details_start);
        let base = self.details_start;
        for (n, (span, entry)) in self
            .spans
            .iter_mut()
            .zip(self.scratch.entries.iter_mut())
            .enumerate()
        {
            if n > 0 {
                self.line.push_str(", ");
            }
            let start = self.line.len();
            self.line.push_str(
                old.get(span.start - base..span.end - base)
                    .unwrap_or_default(),
            );
            *span = start..self.line.len();
            if let Text::Line(r) = &mut entry.text {
                *r = span.clone();
            }
        }
    }

    /// The prepared event.
    pub fn finish(self) -> PreparedEvent {
        self.finish_parts().0
    }

    /// [`EventBuilder::finish`], handing back the timestamp.
    fn finish_parts(mut self) -> (PreparedEvent, String) {
        if self.rewritten {
            self.rewrite_details();
        }
        self.finish_sorted_by(|scratch, _, line, payload| scratch.write_sorted(payload, line))
    }

    /// The event whose details are exactly `values` under `keys`, pair by pair in
    /// that order: the same line and hash as [`EventBuilder::detail_value`] for each
    /// pair, then [`EventBuilder::finish`]. When no detail was given before, the keys
    /// repeat nowhere and there are at most 64 of them, the pairs are written without a
    /// look for a repeated key, and the hashed payload takes them in the sorted order
    /// `keys` worked out once, without sorting them again (a JSON value holding an
    /// object is written in insertion order in the line and again, sorted, in the
    /// payload, as [`EventBuilder::detail`] does). Pairs beyond the shorter of `keys`
    /// and `values` are not written.
    pub fn finish_with_details(
        mut self,
        keys: &DetailKeys,
        values: &[DetailValue<'_>],
    ) -> PreparedEvent {
        let fast = self.spans.is_empty()
            && !keys.repeated
            && keys.keys.len() == values.len()
            && values.len() <= 64;
        if !fast {
            for (key, value) in keys.keys.iter().zip(values) {
                self.detail_value_quoted_key(key, *value);
            }
            return self.finish();
        }
        // Bit `n`: the `n`th value holds an object (its payload text is not the line's).
        let mut objects = 0u64;
        for (n, (key, value)) in keys.keys.iter().zip(values).enumerate() {
            if n > 0 {
                self.line.push_str(", ");
            }
            let start = self.line.len();
            self.line.push_str(key.json());
            self.line.push_str(": ");
            match value {
                DetailValue::Json(v) if event::has_object(v) => {
                    objects |= 1 << n;
                    canonical::write_value(&mut self.line, v, Style::InsertionAscii);
                }
                _ => self.write_value(value),
            }
            self.spans.push(start..self.line.len());
        }
        self.finish_sorted_by(|_, spans, line, payload| {
            for (n, at) in keys.sorted.iter().enumerate() {
                if n > 0 {
                    payload.push_str(", ");
                }
                match (values.get(*at), keys.keys.get(*at)) {
                    (Some(DetailValue::Json(v)), Some(key)) if objects & (1 << *at) != 0 => {
                        payload.push_str(key.json());
                        payload.push_str(": ");
                        canonical::write_value(payload, v, Style::SortedAscii);
                    }
                    _ => {
                        let text = spans.get(*at).and_then(|span| line.get(span.clone()));
                        payload.push_str(text.unwrap_or_default());
                    }
                }
            }
        })
        .0
    }

    /// Appends the text of `value` (one holding no object: the same in the line and
    /// the payload) to the line.
    fn write_value(&mut self, value: &DetailValue<'_>) {
        let line = &mut self.line;
        match value {
            DetailValue::Str(s) => canonical::write_str(line, s, true),
            DetailValue::Quoted(q) => line.push_str(q.json()),
            DetailValue::U64(u) => canonical::write_number(line, &(*u).into()),
            DetailValue::I64(i) => canonical::write_number(line, &(*i).into()),
            DetailValue::Bool(b) => line.push_str(if *b { "true" } else { "false" }),
            DetailValue::F64(f) if f.is_finite() => canonical::write_py_float(line, *f),
            DetailValue::F64(_) => line.push_str("null"),
            DetailValue::Raw(text) => {
                self.raw = true;
                line.push_str(text);
            }
            DetailValue::Json(v) => canonical::write_value(line, v, Style::SortedAscii),
        }
    }

    /// The prepared event, its details object closed and the payload's details
    /// written by `write_details` (given the scratch buffers, each detail's span in
    /// the line in insertion order, the line and the payload), handing back the
    /// timestamp.
    fn finish_sorted_by(
        mut self,
        write_details: impl FnOnce(&mut Scratch, &[Range<usize>], &str, &mut String),
    ) -> (PreparedEvent, String) {
        let mut line = std::mem::take(&mut self.line);
        let mut scratch = std::mem::take(&mut self.scratch);
        line.push('}');
        let details = self.details_start - 1..line.len();
        let timestamp = field(&mut line, ", \"timestamp\": ", &self.timestamp);
        line.push_str(", \"event_hash\": \"");
        let line_len = line.len();

        let text = |r: &Range<usize>| line.get(r.clone()).unwrap_or_default();
        let [intent_id, stage, event_type, outcome] = &self.heads;
        let mut payload = std::mem::take(&mut scratch.payload);
        payload.clear();
        payload.push_str("{\"details\": {");
        write_details(&mut scratch, &self.spans, &line, &mut payload);
        payload.push('}');
        for (key, value) in [
            (", \"event_type\": ", text(event_type)),
            (", \"intent_id\": ", text(intent_id)),
            (", \"outcome\": ", text(outcome)),
        ] {
            payload.push_str(key);
            payload.push_str(value);
        }
        payload.push_str(", \"previous_hash\": ");
        let mut hasher = Sha256::new();
        hasher.update(payload.as_bytes());

        // The payload's end goes after the line in the same buffer, which becomes the
        // prepared event's text (no copy); the thread's next line starts in a fresh
        // buffer sized for an event like this one.
        let stage = stage.clone();
        let mut out = line;
        out.push_str(", \"stage\": ");
        out.extend_from_within(stage);
        out.push_str(", \"timestamp\": ");
        out.extend_from_within(timestamp);
        out.push('}');
        scratch.payload = payload;
        scratch.line = next_text(line_capacity(out.len()));
        scratch.spans = std::mem::take(&mut self.spans);
        event::give_back_scratch(scratch);
        let prepared = PreparedEvent {
            text: out,
            line_len,
            details,
            hasher,
            fields: None,
            raw: self.raw,
        };
        (prepared, self.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use serde_json::{Map, json};

    /// Checks the prepared forms of `fresh` (from the event, and written by a builder
    /// from `pairs`, which `fresh` holds after inserting them in order) against
    /// [`NewEvent::seal_into`], the oracle, chained after `prev`.
    fn assert_prepared_agree(fresh: &NewEvent, pairs: &[(String, Value)], prev: &str) {
        let mut want_line = String::from("earlier\n");
        let want = fresh.clone().seal_into(prev, &mut want_line);
        let line_only = want_line.get("earlier\n".len()..).unwrap_or_default();
        let mut builder = EventBuilder::new(
            &fresh.intent_id,
            &fresh.stage,
            &fresh.event_type,
            &fresh.outcome,
            &fresh.policy_bundle_version,
            fresh.timestamp.clone(),
        );
        for (k, v) in pairs {
            match v {
                Value::String(s) => builder.detail_str(k, s),
                other => builder.detail(k, other),
            };
        }
        for prepared in [fresh.clone().prepare(), builder.finish()] {
            assert_eq!(prepared.details_json(), want.details_json());
            assert_eq!(prepared.event_hash(prev), want.event_hash);
            let mut line = String::from("earlier\n");
            let hash = prepared.finish_into(prev, &mut line);
            assert_eq!(hash, want.event_hash);
            assert_eq!(line, want_line);
            // Finishing again (the state is copied, not used up) gives the same.
            let mut again = String::new();
            assert_eq!(prepared.finish_into(prev, &mut again), hash);
            assert_eq!(again, line_only);
            let mut stored = String::new();
            match prepared.clone().seal_line(prev, &mut stored) {
                Sealed::Event(e) => assert_eq!(*e, want),
                Sealed::Hash(h) => assert_eq!(h.as_str(), want.event_hash),
            }
            assert_eq!(stored, line_only);
            assert_eq!(prepared.clone().into_new_event().as_ref(), Ok(fresh));
            let mut sealed_line = String::new();
            let sealed = prepared.seal_into(prev, &mut sealed_line);
            assert_eq!(sealed.as_ref(), Ok(&want));
            assert_eq!(sealed_line, line_only);
            if let Ok(e) = sealed {
                assert_eq!(e.compute_hash(), e.event_hash);
            }
        }
    }

    #[test]
    fn quoted_keys_write_what_escaped_keys_write() {
        assert!(
            BUNDLE_KEYS
                .iter()
                .all(|(key, json)| QuotedStr::new(key).json() == *json)
        );
        let head = [
            "i\"1",
            "stage",
            "type",
            "ok",
            "v\u{e9}",
            "2026-01-01T00:00:00+00:00",
        ];
        let [intent, stage, event_type, outcome, bundle, ts] = head;
        let (id, hash) = (QuotedStr::new("d-\u{1}\"1"), QuotedStr::new("h\\x"));
        let odd_key = QuotedStr::new("k\"\u{2014}\n");
        // Keys given before (replaced in place) and after, by either path.
        let mut escaped = EventBuilder::new(intent, stage, event_type, outcome, bundle, ts);
        escaped
            .detail_str("policy_bundle_hash", "early")
            .detail_str(odd_key.as_str(), "x")
            .detail_str("decision_id", id.as_str())
            .bundle(bundle, hash.as_str())
            .detail_str(odd_key.as_str(), "y");
        let mut quoted = EventBuilder::new(intent, stage, event_type, outcome, bundle, ts);
        let decision_key = QuotedStr::new("decision_id");
        quoted
            .detail_str("policy_bundle_hash", "early")
            .detail_quoted_key(&odd_key, &QuotedStr::new("x"))
            .detail_quoted_key(&decision_key, &id)
            .bundle_quoted(&QuotedStr::new(bundle), &hash)
            .detail_quoted_key(&odd_key, &QuotedStr::new("y"));
        let mut plain = EventBuilder::new(intent, stage, event_type, outcome, bundle, ts);
        plain
            .detail_str("policy_bundle_hash", "early")
            .detail_str(odd_key.as_str(), "x")
            .detail_str("decision_id", id.as_str())
            .detail_str("policy_bundle_version", bundle)
            .detail_str("policy_bundle_hash", hash.as_str())
            .detail_str(odd_key.as_str(), "y");
        let want = plain.finish();
        for got in [escaped.finish(), quoted.finish()] {
            for prev in ["", "abc", "q\"\\"] {
                assert_eq!(got.event_hash(prev), want.event_hash(prev));
                let (mut a, mut b) = (String::new(), String::new());
                got.finish_into(prev, &mut a);
                want.finish_into(prev, &mut b);
                assert_eq!(a, b);
            }
            assert_eq!(got.details_json(), want.details_json());
        }
    }

    /// `NewEvent::new(…).detail(k, v)…` over `pairs`.
    fn inserted(head: [&str; 6], pairs: &[(String, Value)]) -> NewEvent {
        let [intent, stage, event_type, outcome, bundle, ts] = head;
        let mut e = NewEvent::new(intent, stage, event_type, outcome, ts);
        e.policy_bundle_version = bundle.to_owned();
        for (k, v) in pairs {
            e = e.detail(k.clone(), v.clone());
        }
        e
    }

    /// Text with the characters that need escaping, unicode and astral planes, and
    /// keys that share their first eight bytes.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-d]{0,3}",
            "policy_[a-c]{0,3}",
            "abcdefgh[a\u{0}\u{ff}]{0,2}",
            "[ -~]{0,12}",
            "[a\"\\\\\n\t\u{1}\u{7f}\u{e9}\u{2014}\u{ffff}\u{1F600}]{0,10}",
            any::<String>(),
        ]
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| {
                serde_json::Number::from_f64(f).map(Value::Number)
            }),
            (-4000i32..4000).prop_map(|i| Value::from(f64::from(i) / 8.0)),
            text().prop_map(Value::String),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 32, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(Value::Array),
                vec((text(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// Details as pairs; keys are drawn from a small set too, so some repeat.
    fn pairs() -> impl Strategy<Value = Vec<(String, Value)>> {
        vec(
            (
                prop_oneof![text(), "[ab]", Just("policy_bundle_version".to_owned())],
                value(),
            ),
            0..12,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        #[test]
        fn prepared_events_seal_like_new_events(
            head in [text(), text(), text(), text(), text(), text()],
            pairs in pairs(),
            prev in prop_oneof![Just(String::new()), "[0-9a-f]{64}", text()],
        ) {
            let head_refs = [
                head[0].as_str(), head[1].as_str(), head[2].as_str(),
                head[3].as_str(), head[4].as_str(), head[5].as_str(),
            ];
            let fresh = inserted(head_refs, &pairs);
            assert_prepared_agree(&fresh, &pairs, &prev);
        }
    }

    #[test]
    fn repeated_keys_replace_in_place_and_bundle_matches_with_bundle() {
        let pairs: Vec<(String, Value)> = vec![
            ("b".into(), json!({"z": 1, "a": [2, {"y": null, "x": "é"}]})),
            ("a".into(), json!("first")),
            ("b".into(), json!(3.5)),
            ("c".into(), json!({"k": "v"})),
            ("a".into(), json!({"n": {"m": 1, "l": 2}})),
        ];
        let head = ["i", "s", "e", "ok", "v1", "2026-01-01T00:00:00+00:00"];
        let fresh = inserted(head, &pairs);
        assert_eq!(fresh.details.keys().collect::<Vec<_>>(), ["b", "a", "c"]);
        assert_prepared_agree(&fresh, &pairs, "");
        assert_prepared_agree(&fresh, &pairs, &"f".repeat(64));
        // `bundle` is `with_bundle`'s hashed copies.
        let with_bundle = NewEvent::new("i", "s", "e", "ok", "t")
            .detail("policy_bundle_hash", "old")
            .detail("x", 1)
            .with_bundle("v2", "h2");
        let mut b = EventBuilder::new("i", "s", "e", "ok", "v2", "t");
        b.detail_str("policy_bundle_hash", "old")
            .detail("x", &json!(1))
            .bundle("v2", "h2");
        let mut want = String::new();
        let sealed = with_bundle.seal_into("p", &mut want);
        let mut got = String::new();
        assert_eq!(b.finish().finish_into("p", &mut got), sealed.event_hash);
        assert_eq!(got, want);
    }

    #[test]
    fn empty_details_and_long_or_escaped_previous_hashes() {
        let fresh = NewEvent::new("i", "s", "e", "ok", "t");
        assert_prepared_agree(&fresh, &[], "");
        // Longer than the stack buffer of the finish, and one that needs escaping.
        assert_prepared_agree(&fresh, &[], &"x".repeat(400));
        assert_prepared_agree(&fresh, &[], "a\"b\\c\u{e9}\n");
        let big: Map<String, Value> = (0..40)
            .map(|n| (format!("k{n:02}"), json!({"z": [n, "\u{1F600}"], "a": n})))
            .collect();
        let pairs: Vec<(String, Value)> = big.into_iter().collect();
        let fresh = inserted(["i", "s", "e", "ok", "", "t"], &pairs);
        assert_prepared_agree(&fresh, &pairs, "");
    }

    /// One typed detail and the `Value` the typed method stands for.
    #[derive(Debug, Clone)]
    enum Typed {
        U64(u64),
        I64(i64),
        Bool(bool),
        F64(f64),
        Strs(Vec<String>),
    }

    impl Typed {
        fn value(&self) -> Value {
            match self {
                Typed::U64(u) => Value::from(*u),
                Typed::I64(i) => Value::from(*i),
                Typed::Bool(b) => Value::Bool(*b),
                Typed::F64(f) => serde_json::to_value(f).unwrap_or(Value::Null),
                Typed::Strs(items) => Value::from(items.clone()),
            }
        }

        fn put(&self, b: &mut EventBuilder, key: &str) {
            match self {
                Typed::U64(u) => b.detail_u64(key, *u),
                Typed::I64(i) => b.detail_i64(key, *i),
                Typed::Bool(v) => b.detail_bool(key, *v),
                Typed::F64(f) => b.detail_f64(key, *f),
                Typed::Strs(items) => {
                    let mut raw = String::new();
                    write_str_array(&mut raw, items.iter().map(String::as_str));
                    b.detail_raw(key, &raw)
                }
            };
        }
    }

    fn typed() -> impl Strategy<Value = Typed> {
        prop_oneof![
            any::<u64>().prop_map(Typed::U64),
            any::<i64>().prop_map(Typed::I64),
            any::<bool>().prop_map(Typed::Bool),
            any::<f64>().prop_map(Typed::F64),
            (-4000i32..4000).prop_map(|i| Typed::F64(f64::from(i) / 8.0)),
            prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(-0.0),
                Just(1e16),
                Just(1e-5),
                Just(0.1),
            ]
            .prop_map(Typed::F64),
            vec(text(), 0..4).prop_map(Typed::Strs),
        ]
    }

    /// Seals a builder given `pairs` through the typed methods (`typed`) or through
    /// `detail(&Value)`, after `prev`.
    fn typed_line(pairs: &[(String, Typed)], typed: bool, prev: &str) -> (String, String) {
        let mut b = EventBuilder::new("i", "s", "e", "ok", "v", "t");
        for (k, v) in pairs {
            if typed {
                v.put(&mut b, k);
            } else {
                b.detail(k, &v.value());
            }
        }
        let mut line = String::new();
        let hash = b.finish().finish_into(prev, &mut line);
        (line, hash)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(800))]

        #[test]
        fn typed_details_write_the_bytes_of_their_values(
            pairs in vec((prop_oneof![text(), "[ab]"], typed()), 0..8),
            prev in prop_oneof![Just(String::new()), "[0-9a-f]{64}"],
        ) {
            let by_value: Vec<(String, Value)> =
                pairs.iter().map(|(k, v)| (k.clone(), v.value())).collect();
            let fresh = inserted(["i", "s", "e", "ok", "v", "t"], &by_value);
            let mut want = String::new();
            let sealed = fresh.seal_into(&prev, &mut want);
            let got = typed_line(&pairs, true, &prev);
            prop_assert_eq!(&got, &typed_line(&pairs, false, &prev));
            prop_assert_eq!(got, (want, sealed.event_hash));
        }
    }

    #[test]
    fn typed_details_escape_and_format_floats_canonically() {
        let pairs = vec![
            ("n".to_owned(), Typed::U64(u64::MAX)),
            ("m".to_owned(), Typed::I64(i64::MIN)),
            ("f".to_owned(), Typed::F64(1.0)),
            ("g".to_owned(), Typed::F64(1e-7)),
            ("h".to_owned(), Typed::F64(f64::NAN)),
            ("b".to_owned(), Typed::Bool(false)),
            (
                "s".to_owned(),
                Typed::Strs(vec!["a\"b".into(), "\u{e9}\n".into(), String::new()]),
            ),
        ];
        let (line, _) = typed_line(&pairs, true, "");
        assert!(line.contains(
            r#""details": {"n": 18446744073709551615, "m": -9223372036854775808, "f": 1.0, "g": 1e-07, "h": null, "b": false, "s": ["a\"b", "\u00e9\n", ""]}"#
        ), "{line}");
        assert_eq!(line, typed_line(&pairs, false, "").0);
        // A different value is a different line.
        let other = vec![("n".to_owned(), Typed::U64(7))];
        assert_ne!(
            typed_line(&other, true, ""),
            typed_line(&pairs[..1], true, "")
        );
    }

    /// The event of `head` and `pairs` (string details) written with plain strings or
    /// with quoted ones, chained after `prev`.
    fn quoted_line(
        head: [&str; 5],
        pairs: &[(String, String)],
        quoted: bool,
        prev: &str,
    ) -> (String, String) {
        let [intent, stage, event_type, outcome, bundle] = head;
        let mut b = if quoted && pairs.len() % 2 == 1 {
            EventBuilder::with_heads(
                Head::Quoted(&QuotedStr::new(intent)),
                Head::Quoted(&QuotedStr::new(stage)),
                Head::Quoted(&QuotedStr::new(event_type)),
                Head::Quoted(&QuotedStr::new(outcome)),
                Head::Quoted(&QuotedStr::new(bundle)),
                "t",
            )
        } else if quoted {
            EventBuilder::new_quoted(
                &QuotedStr::new(intent),
                stage,
                event_type,
                outcome,
                &QuotedStr::new(bundle),
                "t",
            )
        } else {
            EventBuilder::new(intent, stage, event_type, outcome, bundle, "t")
        };
        for (k, v) in pairs {
            if quoted {
                b.detail_quoted(k, &QuotedStr::new(v));
            } else {
                b.detail_str(k, v);
            }
        }
        if quoted {
            b.bundle_quoted(&QuotedStr::new(bundle), &QuotedStr::new(intent));
        } else {
            b.bundle(bundle, intent);
        }
        let prepared = b.finish();
        assert!(!prepared.has_raw_details());
        let mut line = String::new();
        let hash = prepared.finish_into(prev, &mut line);
        (line, hash)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn quoted_strings_write_the_bytes_of_plain_ones(
            head in [text(), text(), text(), text(), text()],
            pairs in vec((prop_oneof![text(), "[ab]"], text()), 0..6),
            prev in prop_oneof![Just(String::new()), "[0-9a-f]{64}"],
        ) {
            let head = [head[0].as_str(), head[1].as_str(), head[2].as_str(), head[3].as_str(), head[4].as_str()];
            prop_assert_eq!(quoted_line(head, &pairs, true, &prev), quoted_line(head, &pairs, false, &prev));
        }
    }

    /// The line and hash of an event whose step details are `before`, then the block
    /// `block`, then `after` (all string details), with the block written by
    /// `details_quoted` or pair by pair with `detail_quoted_key`.
    fn block_line(
        before: &[(&str, &str)],
        block: &[(&str, &str)],
        after: &[(&str, &str)],
        as_block: bool,
    ) -> (String, String) {
        let mut b = EventBuilder::new("i", "s", "e", "ok", "v", "t");
        for (k, v) in before {
            b.detail_str(k, v);
        }
        if as_block {
            let mut d = QuotedDetails::new();
            for (k, v) in block {
                d.push(&QuotedStr::new(k), &QuotedStr::new(v));
            }
            assert_eq!(d.len(), block.len());
            assert_eq!(d.is_empty(), block.is_empty());
            b.details_quoted(&d);
        } else {
            for (k, v) in block {
                b.detail_quoted_key(&QuotedStr::new(k), &QuotedStr::new(v));
            }
        }
        for (k, v) in after {
            b.detail_str(k, v);
        }
        let prepared = b.finish();
        let mut line = String::new();
        let hash = prepared.finish_into("ab", &mut line);
        (line, hash)
    }

    #[test]
    fn a_quoted_block_writes_what_its_pairs_write() {
        let block = [
            ("decision_id", "d-1"),
            ("content_hash", "c\"h"),
            ("policy_bundle_version", "v\u{e9}"),
            ("policy_bundle_hash", ""),
        ];
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Pairs<'_>, Pairs<'_>, Pairs<'_>); 8] = [
            (&[], &block, &[]),
            (&[("step", "1"), ("zeta", "z")], &block, &[]),
            // A step's own detail with a block key: the block's value replaces it in place.
            (&[("content_hash", "old"), ("a", "b")], &block, &[]),
            // A later detail with a block key replaces the block's value in place.
            (
                &[("a", "b")],
                &block,
                &[("decision_id", "later"), ("b", "c")],
            ),
            // A key repeated inside the block.
            (&[("a", "b")], &[("k", "1"), ("j", "2"), ("k", "3")], &[]),
            (&[("a", "b")], &[], &[("c", "d")]),
            (&[], &[], &[]),
            (
                &[("\u{1F600}\n", "x")],
                &[("\u{1F600}\n", "y"), ("q\"", "r")],
                &[],
            ),
        ];
        for (before, block, after) in cases {
            assert_eq!(
                block_line(before, block, after, true),
                block_line(before, block, after, false),
                "{before:?} {block:?} {after:?}"
            );
        }
        // A value set in place is the block pushed with it, escaped or not.
        let mut set = QuotedDetails::new();
        let mut pushed = QuotedDetails::new();
        for (k, v) in block {
            set.push(&QuotedStr::new(k), &QuotedStr::new(v));
        }
        for (n, (k, v)) in block.iter().enumerate() {
            let v = if n == 1 { "new \u{e9} value" } else { v };
            pushed.push_str(&QuotedStr::new(k), v);
        }
        assert!(set.set_value(1, &QuotedStr::new("new \u{e9} value")));
        assert_eq!(set, pushed);
        assert!(set.set_value(3, &QuotedStr::new("")));
        assert!(set.set_value(0, &QuotedStr::new("d-1")));
        assert!(!set.set_value(4, &QuotedStr::new("x")));
        let mut line = EventBuilder::new("i", "s", "e", "ok", "v", "t");
        line.details_quoted(&set);
        let mut want = EventBuilder::new("i", "s", "e", "ok", "v", "t");
        for (k, v) in [
            ("decision_id", "d-1"),
            ("content_hash", "new \u{e9} value"),
            ("policy_bundle_version", "v\u{e9}"),
            ("policy_bundle_hash", ""),
        ] {
            want.detail_str(k, v);
        }
        assert_eq!(
            line.finish().finish_into("", &mut String::new()),
            want.finish().finish_into("", &mut String::new())
        );
        // A block can be cleared and written again.
        let mut d = QuotedDetails::with_capacity(2, 64);
        d.push(&QuotedStr::new("k"), &QuotedStr::new("1"))
            .push(&QuotedStr::new("k"), &QuotedStr::new("2"));
        d.clear();
        d.push(&QuotedStr::new("k"), &QuotedStr::new("3"));
        let mut fresh = QuotedDetails::new();
        fresh.push(&QuotedStr::new("k"), &QuotedStr::new("3"));
        assert_eq!(d, fresh);
    }

    #[test]
    fn detail_values_write_what_the_typed_methods_write() {
        let json = json!({"b": [1, "\u{e9}"], "a": null});
        let quoted = QuotedStr::new("q\"\u{1F600}");
        let values = [
            ("s\u{e9}", DetailValue::Str("x\ny")),
            ("q", DetailValue::Quoted(&quoted)),
            ("u", DetailValue::U64(u64::MAX)),
            ("i", DetailValue::I64(-7)),
            ("b", DetailValue::Bool(true)),
            ("f", DetailValue::F64(0.1)),
            ("n", DetailValue::F64(f64::NAN)),
            ("r", DetailValue::Raw("[\"a\", 1]")),
            ("j", DetailValue::Json(&json)),
            // A repeated key replaces the earlier value in place.
            ("u", DetailValue::U64(3)),
        ];
        let mut typed = EventBuilder::new("i", "s", "e", "ok", "v", "t");
        for (key, value) in values {
            match value {
                DetailValue::Str(v) => typed.detail_str(key, v),
                DetailValue::Quoted(v) => typed.detail_quoted(key, v),
                DetailValue::U64(v) => typed.detail_u64(key, v),
                DetailValue::I64(v) => typed.detail_i64(key, v),
                DetailValue::Bool(v) => typed.detail_bool(key, v),
                DetailValue::F64(v) => typed.detail_f64(key, v),
                DetailValue::Raw(v) => typed.detail_raw(key, v),
                DetailValue::Json(v) => typed.detail(key, v),
            };
        }
        let typed = typed.finish();
        for quoted_keys in [false, true] {
            let mut b = EventBuilder::new("i", "s", "e", "ok", "v", "t");
            for (key, value) in values {
                if quoted_keys {
                    b.detail_value_quoted_key(&QuotedStr::new(key), value);
                } else {
                    b.detail_value(key, value);
                }
            }
            let b = b.finish();
            assert!(b.has_raw_details());
            let (mut want, mut got) = (String::new(), String::new());
            assert_eq!(
                b.finish_into("ab", &mut got),
                typed.finish_into("ab", &mut want)
            );
            assert_eq!(got, want);
        }
    }

    /// The line, hash and raw flag of `event` chained after a previous hash.
    fn chained(event: &PreparedEvent) -> (String, String, bool) {
        let mut line = String::new();
        let hash = event.finish_into("ab\"c", &mut line);
        (line, hash, event.has_raw_details())
    }

    #[test]
    fn details_of_known_keys_write_what_pair_by_pair_writes() {
        let object = json!({"b": [1, "\u{e9}"], "a": null});
        let array = json!([1, "x", null, 2.5]);
        let quoted = QuotedStr::new("q\"\u{1F600}");
        let keys = [
            "policy_bundle_version",
            "s\u{e9}",
            "policy_bundle_hash",
            "q",
            "",
            "u",
            "i",
            "b\"",
            "f",
            "n",
            "r",
            "j",
            "decision",
            "decision_id",
        ];
        let values = [
            DetailValue::Str("x\ny"),
            DetailValue::Str("\u{1F600}"),
            DetailValue::Str(""),
            DetailValue::Quoted(&quoted),
            DetailValue::Str("empty key"),
            DetailValue::U64(u64::MAX),
            DetailValue::I64(-7),
            DetailValue::Bool(false),
            DetailValue::F64(0.1),
            DetailValue::F64(f64::NAN),
            DetailValue::Raw("[\"a\", 1]"),
            DetailValue::Json(&array),
            DetailValue::Str("d"),
            DetailValue::Str("d-1"),
        ];
        let start = || EventBuilder::new("i\u{2014}", "s", "e", "ok", "v", "t");
        let pairwise = |keys: &[&str], values: &[DetailValue<'_>]| {
            let mut b = start();
            for (key, value) in keys.iter().zip(values) {
                b.detail_value(key, *value);
            }
            b.finish()
        };
        let known = DetailKeys::new(keys);
        assert_eq!((known.len(), known.is_empty()), (keys.len(), false));
        let fast = start().finish_with_details(&known, &values);
        let want = pairwise(&keys, &values);
        assert_eq!(fast.details_json(), want.details_json());
        assert_eq!(chained(&fast), chained(&want));
        // Without a raw value the event says so.
        let plain = start().finish_with_details(&DetailKeys::new(["b", "a"]), &values[..2]);
        assert!(!plain.has_raw_details());
        assert_eq!(
            chained(&plain),
            chained(&pairwise(&["b", "a"], &values[..2]))
        );

        // Values holding an object (sorted in the payload, not in the line): one
        // alone, one inside an array, both in one event, first and last.
        let nested = json!([{"z": 1, "y": {"d": [], "c": "\u{e9}"}}, "x"]);
        for slots in [&[11][..], &[0], &[13], &[0, 6, 13]] {
            let mut with_object = values;
            for (n, at) in slots.iter().enumerate() {
                if let Some(v) = with_object.get_mut(*at) {
                    *v = DetailValue::Json(if n % 2 == 0 { &object } else { &nested });
                }
            }
            let fast = start().finish_with_details(&known, &with_object);
            let want = pairwise(&keys, &with_object);
            assert_eq!(fast.details_json(), want.details_json());
            assert_eq!(chained(&fast), chained(&want));
        }
        let mut with_object = values;
        if let Some(v) = with_object.get_mut(11) {
            *v = DetailValue::Json(&object);
        }
        let line = start().finish_with_details(&known, &with_object);
        assert!(
            line.details_json()
                .contains("\"j\": {\"b\": [1, \"\\u00e9\"], \"a\": null}")
        );
        // More than 64 keys: pair by pair.
        let many: Vec<String> = (0..70).rev().map(|n| format!("k{n}")).collect();
        let many_values: Vec<DetailValue<'_>> = (0..70)
            .map(|n| {
                if n == 69 {
                    DetailValue::Json(&object)
                } else {
                    DetailValue::U64(n)
                }
            })
            .collect();
        let many_keys = DetailKeys::new(many.iter().map(String::as_str));
        let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            chained(&start().finish_with_details(&many_keys, &many_values)),
            chained(&pairwise(&many_refs, &many_values))
        );
        // A key given twice: the later value in the earlier place.
        let twice = ["x", "y", "x"];
        let three = [
            DetailValue::U64(1),
            DetailValue::U64(2),
            DetailValue::U64(3),
        ];
        let repeated = start().finish_with_details(&DetailKeys::new(twice), &three);
        assert_eq!(chained(&repeated), chained(&pairwise(&twice, &three)));
        assert!(repeated.details_json().ends_with("{\"x\": 3, \"y\": 2}"));
        // A detail given before, replaced by the block's value in its place.
        let mut before = start();
        before.detail_str("u", "early").detail_str("zz", "kept");
        let mut want_before = start();
        want_before
            .detail_str("u", "early")
            .detail_str("zz", "kept");
        for (key, value) in keys.iter().zip(values) {
            want_before.detail_value(key, value);
        }
        assert_eq!(
            chained(&before.finish_with_details(&known, &values)),
            chained(&want_before.finish())
        );
        // Fewer values than keys, or none: the pairs there are.
        assert_eq!(
            chained(&start().finish_with_details(&known, &values[..3])),
            chained(&pairwise(&keys, &values[..3]))
        );
        let none = DetailKeys::new([]);
        assert!(none.is_empty());
        assert_eq!(
            chained(&start().finish_with_details(&none, &[])),
            chained(&start().finish())
        );
    }

    #[test]
    fn a_quoted_string_is_rewritten_only_when_it_changes() {
        let mut q = QuotedStr::default();
        assert_eq!((q.as_str(), q.json()), ("", "\"\""));
        q.set("");
        assert_eq!(q.json(), "\"\"");
        q.set("a\"\u{e9}");
        assert_eq!((q.as_str(), q.json()), ("a\"\u{e9}", r#""a\"\u00e9""#));
        assert_eq!(q, QuotedStr::new("a\"\u{e9}"));
        q.set("b");
        assert_eq!(q, QuotedStr::new("b"));
    }

    #[test]
    fn a_different_previous_hash_or_event_is_a_different_answer() {
        let a = NewEvent::new("i", "s", "e", "ok", "t")
            .detail("k", 1)
            .prepare();
        let b = NewEvent::new("i", "s", "e", "ok", "t")
            .detail("k", 2)
            .prepare();
        assert_ne!(a.event_hash(""), a.event_hash("00"));
        assert_ne!(a.event_hash(""), b.event_hash(""));
        let (mut la, mut lb) = (String::new(), String::new());
        a.finish_into("", &mut la);
        b.finish_into("", &mut lb);
        assert_ne!(la, lb);
        assert!(format!("{a:?}").contains("has_fields: true"));
    }
}
