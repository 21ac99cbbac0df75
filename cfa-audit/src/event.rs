//! The audit event: the reference's nine fields, its JSONL line and its hash recipe.

use cfa_types::canonical::{self, Style};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::ops::Range;

/// The nine JSONL keys, in the reference's dataclass order.
pub const FIELDS: [&str; 9] = [
    "intent_id",
    "stage",
    "event_type",
    "outcome",
    "policy_bundle_version",
    "details",
    "timestamp",
    "event_hash",
    "previous_hash",
];

/// One audit event, field for field the reference's `AuditEvent` dataclass.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// The intent this event belongs to.
    pub intent_id: String,
    /// Kernel stage (`policy_check`, `formalize`, …).
    pub stage: String,
    /// Event type (`policy_evaluation`, …).
    pub event_type: String,
    /// Outcome (`approve`, `replan`, …).
    pub outcome: String,
    /// Bundle version as the reference writes it: NOT covered by the hash (see details).
    pub policy_bundle_version: String,
    /// Free-form details, covered by the hash. Insertion order is kept in the JSONL line.
    pub details: Map<String, Value>,
    /// Python `isoformat()` timestamp, injected by the caller.
    pub timestamp: String,
    /// SHA-256 hex of the canonical payload (see [`AuditEvent::compute_hash`]).
    pub event_hash: String,
    /// The previous event's `event_hash`; `""` for the genesis event.
    pub previous_hash: String,
}

/// Why a JSON value is not an audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventShapeError {
    /// The text is not JSON.
    Unparsable(String),
    /// A top-level key the reference does not know.
    UnknownKey(String),
    /// One of the nine keys is absent.
    MissingKey(&'static str),
    /// A key holds the wrong JSON type.
    InvalidField {
        /// The key.
        key: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// An object has the same key twice (a reader would see only one of the values).
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where the object is (`""` for the event itself, else e.g. `details.a`).
        path: String,
    },
    /// A string escape is a lone UTF-16 surrogate (`"\ud800"`), which is not a
    /// Unicode character: the event cannot be read or hashed faithfully.
    LoneSurrogate {
        /// The escape as written.
        escape: String,
        /// 1-based column (in characters) where it starts.
        column: usize,
    },
}

impl std::fmt::Display for EventShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unparsable(m) => write!(f, "line is not valid JSON: {m}"),
            Self::UnknownKey(k) => write!(f, "unknown key {k:?}"),
            Self::MissingKey(k) => write!(f, "missing key {k:?}"),
            Self::InvalidField { key, expected } => write!(f, "key {key:?} must be {expected}"),
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
        }
    }
}

/// A top-level value that the hash does not cover and that disagrees with its hashed
/// copy inside `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMismatch {
    /// The top-level key (and the key of its copy in `details`).
    pub field: &'static str,
    /// The top-level value.
    pub top_level: String,
    /// The hashed copy in `details`, as JSON text.
    pub in_details: String,
}

/// Top-level keys NOT covered by the event hash whose value a reader shows. Our writers
/// put a copy of each inside `details` (hashed) under the same key; where that copy is
/// present the two must agree. (`event_hash` is not listed: it is checked against the
/// recomputed hash itself.)
pub const UNHASHED_FIELDS: [&str; 1] = ["policy_bundle_version"];

/// JSON parsing that refuses duplicate keys at any depth and reports lone surrogates.
mod strict {
    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};
    use std::cell::RefCell;

    /// Path (innermost first) of a duplicated key, filled while the error unwinds.
    #[derive(Default)]
    pub(super) struct Dup(pub RefCell<Option<Vec<String>>>);

    pub(super) struct Seed<'a>(pub &'a Dup);

    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Value;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            loop {
                match seq.next_element_seed(Seed(self.0)) {
                    Ok(Some(v)) => out.push(v),
                    Ok(None) => return Ok(Value::Array(out)),
                    Err(e) => {
                        if let Some(path) = self.0.0.borrow_mut().as_mut() {
                            path.push(format!("[{}]", out.len()));
                        }
                        return Err(e);
                    }
                }
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    *self.0.0.borrow_mut() = Some(vec![key]);
                    return Err(de::Error::custom("duplicate key"));
                }
                match map.next_value_seed(Seed(self.0)) {
                    Ok(v) => {
                        out.insert(key, v);
                    }
                    Err(e) => {
                        if let Some(path) = self.0.0.borrow_mut().as_mut() {
                            path.push(key);
                        }
                        return Err(e);
                    }
                }
            }
            Ok(Value::Object(out))
        }
    }
}

/// The first `\uXXXX` escape in `text` that is a lone UTF-16 surrogate, with its
/// 1-based character column.
fn find_lone_surrogate(text: &str) -> Option<(String, usize)> {
    let b = text.as_bytes();
    let hex_at = |i: usize| -> Option<u32> {
        let h = b.get(i..i + 4)?;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    };
    let mut i = 0usize;
    while i < b.len() {
        if b.get(i) == Some(&b'\\') {
            if b.get(i + 1) == Some(&b'u')
                && let Some(cp) = hex_at(i + 2)
            {
                let escape = || text.get(i..i + 6).unwrap_or_default().to_owned();
                let column = || text.get(..i).map_or(0, |s| s.chars().count()) + 1;
                if (0xd800..=0xdbff).contains(&cp) {
                    let paired = b.get(i + 6) == Some(&b'\\')
                        && b.get(i + 7) == Some(&b'u')
                        && hex_at(i + 8).is_some_and(|lo| (0xdc00..=0xdfff).contains(&lo));
                    if !paired {
                        return Some((escape(), column()));
                    }
                    i += 12;
                    continue;
                }
                if (0xdc00..=0xdfff).contains(&cp) {
                    return Some((escape(), column()));
                }
                i += 6;
                continue;
            }
            i += 2;
            continue;
        }
        i += 1;
    }
    None
}

/// Parses JSON text like `serde_json::from_str`, but a key repeated in any object is
/// an error ([`EventShapeError::DuplicateKey`]) and a lone surrogate escape gets its
/// own error ([`EventShapeError::LoneSurrogate`]).
pub fn parse_json_strict(text: &str) -> Result<Value, EventShapeError> {
    use serde::de::DeserializeSeed;
    let dup = strict::Dup::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = strict::Seed(&dup)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => {
            if let Some(mut path) = dup.0.into_inner() {
                let key = if path.is_empty() {
                    String::new()
                } else {
                    path.remove(0)
                };
                path.reverse();
                let mut p = String::new();
                for part in path {
                    if !p.is_empty() && !part.starts_with('[') {
                        p.push('.');
                    }
                    p.push_str(&part);
                }
                return Err(EventShapeError::DuplicateKey { key, path: p });
            }
            // A line cut inside a surrogate pair is torn (EOF), not a lone surrogate.
            if !e.is_eof()
                && let Some((escape, column)) = find_lone_surrogate(text)
            {
                return Err(EventShapeError::LoneSurrogate { escape, column });
            }
            Err(EventShapeError::Unparsable(e.to_string()))
        }
    }
}

/// `true` when `v` holds an object at any depth (its sorted and insertion-order
/// texts may then differ).
pub(crate) fn has_object(v: &Value) -> bool {
    match v {
        Value::Object(_) => true,
        Value::Array(items) => items.iter().any(has_object),
        _ => false,
    }
}

/// Writes `, "key": "value"` (ASCII escapes, Python's default separators).
fn push_field(out: &mut String, key: &str, value: &str) {
    out.push_str(", ");
    canonical::write_str(out, key, true);
    out.push_str(": ");
    canonical::write_str(out, value, true);
}

/// Writes `map` as a JSON object in `style` (keys sorted when the style sorts), the
/// same bytes as `canonical::write_value` of the object, without cloning it.
fn write_map(out: &mut String, map: &Map<String, Value>, style: Style) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if matches!(style, Style::SortedAscii | Style::SortedCompactUnicode) {
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    let (item_sep, key_sep, ascii) = match style {
        Style::SortedCompactUnicode => (",", ":", false),
        Style::SortedAscii | Style::InsertionAscii => (", ", ": ", true),
    };
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(item_sep);
        }
        canonical::write_str(out, k, ascii);
        out.push_str(key_sep);
        canonical::write_value(out, v, style);
    }
    out.push('}');
}

impl AuditEvent {
    /// The reference's `_compute_hash`: SHA-256 of `json.dumps(payload, sort_keys=True)`
    /// over `intent_id, stage, event_type, outcome, timestamp, previous_hash, details`.
    pub fn compute_hash(&self) -> String {
        with_scratch(|scratch| {
            let mut payload = std::mem::take(&mut scratch.payload);
            payload.clear();
            self.write_payload(&mut payload, scratch);
            let hash = hash_hex(&payload);
            scratch.payload = payload;
            hash
        })
    }

    /// The exact text that is hashed (written field by field, the same bytes as
    /// `canonical_string` of the payload object, without cloning `details`).
    pub fn canonical_payload(&self) -> String {
        let mut out = String::with_capacity(512);
        with_scratch(|scratch| self.write_payload(&mut out, scratch));
        out
    }

    /// Appends [`AuditEvent::canonical_payload`] to `out`.
    fn write_payload(&self, out: &mut String, scratch: &mut Scratch) {
        out.push_str("{\"details\": {");
        scratch.clear();
        for (k, v) in &self.details {
            let start = scratch.texts.len();
            canonical::write_str(&mut scratch.texts, k, true);
            scratch.texts.push_str(": ");
            canonical::write_value(&mut scratch.texts, v, Style::SortedAscii);
            scratch.push_entry(k, Text::Scratch(start..scratch.texts.len()));
        }
        scratch.write_sorted(out, "");
        out.push('}');
        // The other keys, already in sorted order.
        for (key, value) in [
            ("event_type", &self.event_type),
            ("intent_id", &self.intent_id),
            ("outcome", &self.outcome),
            ("previous_hash", &self.previous_hash),
            ("stage", &self.stage),
            ("timestamp", &self.timestamp),
        ] {
            push_field(out, key, value);
        }
        out.push('}');
    }

    /// The first top-level value the hash does not cover that differs from its hashed
    /// copy in `details` (events without the copy, like the reference's, never differ).
    pub fn unhashed_mismatch(&self) -> Option<FieldMismatch> {
        UNHASHED_FIELDS.iter().find_map(|&field| {
            let top = match field {
                "policy_bundle_version" => &self.policy_bundle_version,
                _ => return None,
            };
            let copy = self.details.get(field)?;
            (copy.as_str() != Some(top.as_str())).then(|| FieldMismatch {
                field,
                top_level: top.clone(),
                in_details: copy.to_string(),
            })
        })
    }

    /// The nine fields as a JSON object in dataclass order.
    pub fn to_value(&self) -> Value {
        Value::Object(Map::from_iter([
            (
                "intent_id".to_owned(),
                Value::String(self.intent_id.clone()),
            ),
            ("stage".to_owned(), Value::String(self.stage.clone())),
            (
                "event_type".to_owned(),
                Value::String(self.event_type.clone()),
            ),
            ("outcome".to_owned(), Value::String(self.outcome.clone())),
            (
                "policy_bundle_version".to_owned(),
                Value::String(self.policy_bundle_version.clone()),
            ),
            ("details".to_owned(), Value::Object(self.details.clone())),
            (
                "timestamp".to_owned(),
                Value::String(self.timestamp.clone()),
            ),
            (
                "event_hash".to_owned(),
                Value::String(self.event_hash.clone()),
            ),
            (
                "previous_hash".to_owned(),
                Value::String(self.previous_hash.clone()),
            ),
        ]))
    }

    /// The JSONL line (without the newline), byte-identical to the reference's
    /// `json.dumps(asdict(event), default=str)`.
    pub fn to_jsonl_line(&self) -> String {
        let mut out = String::with_capacity(768);
        out.push_str("{\"intent_id\": ");
        canonical::write_str(&mut out, &self.intent_id, true);
        for (key, value) in [
            ("stage", &self.stage),
            ("event_type", &self.event_type),
            ("outcome", &self.outcome),
            ("policy_bundle_version", &self.policy_bundle_version),
        ] {
            push_field(&mut out, key, value);
        }
        out.push_str(", \"details\": ");
        write_map(&mut out, &self.details, Style::InsertionAscii);
        for (key, value) in [
            ("timestamp", &self.timestamp),
            ("event_hash", &self.event_hash),
            ("previous_hash", &self.previous_hash),
        ] {
            push_field(&mut out, key, value);
        }
        out.push('}');
        out
    }

    /// `json.dumps(details, default=str)`: the SQLite `details_json` column.
    pub fn details_json(&self) -> String {
        canonical::to_string(&Value::Object(self.details.clone()), Style::InsertionAscii)
    }

    /// Reads one JSONL line strictly: all nine keys, no others, strings and an object.
    pub fn from_jsonl_line(line: &str) -> Result<Self, EventShapeError> {
        Self::from_value(parse_json_strict(line)?)
    }

    /// Reads an already parsed JSON object strictly.
    pub fn from_value(value: Value) -> Result<Self, EventShapeError> {
        let Value::Object(mut map) = value else {
            return Err(EventShapeError::Unparsable(
                "the line is not a JSON object".to_owned(),
            ));
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(EventShapeError::UnknownKey(unknown.clone()));
        }
        if let Some(missing) = FIELDS.iter().find(|k| !map.contains_key(**k)) {
            return Err(EventShapeError::MissingKey(missing));
        }
        let mut take = |key: &'static str| -> Result<String, EventShapeError> {
            match map.remove(key) {
                Some(Value::String(s)) => Ok(s),
                _ => Err(EventShapeError::InvalidField {
                    key,
                    expected: "a string",
                }),
            }
        };
        let intent_id = take("intent_id")?;
        let stage = take("stage")?;
        let event_type = take("event_type")?;
        let outcome = take("outcome")?;
        let policy_bundle_version = take("policy_bundle_version")?;
        let timestamp = take("timestamp")?;
        let event_hash = take("event_hash")?;
        let previous_hash = take("previous_hash")?;
        let details = match map.remove("details") {
            Some(Value::Object(d)) => d,
            _ => {
                return Err(EventShapeError::InvalidField {
                    key: "details",
                    expected: "an object",
                });
            }
        };
        Ok(Self {
            intent_id,
            stage,
            event_type,
            outcome,
            policy_bundle_version,
            details,
            timestamp,
            event_hash,
            previous_hash,
        })
    }
}

/// An event that is not yet chained: everything but the two hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The intent this event belongs to.
    pub intent_id: String,
    /// Kernel stage.
    pub stage: String,
    /// Event type.
    pub event_type: String,
    /// Outcome.
    pub outcome: String,
    /// Bundle version (top-level, unhashed, as the reference writes it).
    pub policy_bundle_version: String,
    /// Details (hashed).
    pub details: Map<String, Value>,
    /// Injected timestamp (see [`crate::time::Clock`]).
    pub timestamp: String,
}

impl NewEvent {
    /// A new event with empty details and bundle version.
    pub fn new(
        intent_id: impl Into<String>,
        stage: impl Into<String>,
        event_type: impl Into<String>,
        outcome: impl Into<String>,
        timestamp: impl Into<String>,
    ) -> Self {
        Self {
            intent_id: intent_id.into(),
            stage: stage.into(),
            event_type: event_type.into(),
            outcome: outcome.into(),
            policy_bundle_version: String::new(),
            details: Map::new(),
            timestamp: timestamp.into(),
        }
    }

    /// [`NewEvent::new`] with room for `details` details, so that adding them never
    /// grows the map (a builder that knows its detail count, like the kernel's
    /// per-phase events, saves the map's reallocations).
    pub fn with_capacity(
        intent_id: impl Into<String>,
        stage: impl Into<String>,
        event_type: impl Into<String>,
        outcome: impl Into<String>,
        timestamp: impl Into<String>,
        details: usize,
    ) -> Self {
        let mut event = Self::new(intent_id, stage, event_type, outcome, timestamp);
        event.details = Map::with_capacity(details);
        event
    }

    /// Adds (or replaces) every `(key, value)` of `details`, in order, as
    /// [`NewEvent::detail`] would one by one.
    #[must_use]
    pub fn details_from<K: Into<String>>(
        mut self,
        details: impl IntoIterator<Item = (K, Value)>,
    ) -> Self {
        for (key, value) in details {
            self.details.insert(key.into(), value);
        }
        self
    }

    /// Adds (or replaces) one detail, keeping insertion order.
    #[must_use]
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Sets the top-level `policy_bundle_version` and ALSO writes
    /// `policy_bundle_version` and `policy_bundle_hash` inside `details`, so both are
    /// covered by the event hash (docs/differences.md#b3-audit-chain-integrity). Existing detail keys keep their position.
    #[must_use]
    pub fn with_bundle(mut self, version: impl Into<String>, hash: impl Into<String>) -> Self {
        let version = version.into();
        self.policy_bundle_version.clone_from(&version);
        self.details
            .insert("policy_bundle_version".to_owned(), Value::String(version));
        self.details
            .insert("policy_bundle_hash".to_owned(), Value::String(hash.into()));
        self
    }

    /// Chains the event after `previous_hash` and computes its hash.
    pub fn seal(self, previous_hash: &str) -> AuditEvent {
        let mut event = AuditEvent {
            intent_id: self.intent_id,
            stage: self.stage,
            event_type: self.event_type,
            outcome: self.outcome,
            policy_bundle_version: self.policy_bundle_version,
            details: self.details,
            timestamp: self.timestamp,
            event_hash: String::new(),
            previous_hash: previous_hash.to_owned(),
        };
        event.event_hash = event.compute_hash();
        event
    }

    /// [`NewEvent::seal`] plus the event's JSONL line (without the newline), escaping
    /// each string once for both the hashed payload and the line. Same bytes as
    /// `seal(previous_hash)` followed by [`AuditEvent::to_jsonl_line`].
    pub fn seal_with_line(self, previous_hash: &str) -> (AuditEvent, String) {
        // The line is written into a reused buffer and copied out at its exact size:
        // cheaper than guessing a capacity and growing it.
        let (event_hash, line) = with_scratch(|scratch| {
            let mut line = std::mem::take(&mut scratch.line);
            line.clear();
            let hash = self.write_line(previous_hash, &mut line, scratch);
            let out = line.as_str().to_owned();
            scratch.line = line;
            (hash, out)
        });
        (self.into_sealed(event_hash, previous_hash), line)
    }

    /// [`NewEvent::seal_with_line`] that appends the line (without the newline) to
    /// `line` instead of returning a new `String`, so a store can write a batch of
    /// events into one buffer it reuses. What `line` held before is left as it was.
    ///
    /// One pass writes the line; each detail's text is written once and shared by the
    /// line and the hashed payload (only a value holding an object, whose keys the
    /// payload sorts, is written a second time), and the payload is assembled in a
    /// per-thread buffer that is reused from call to call.
    pub fn seal_into(self, previous_hash: &str, line: &mut String) -> AuditEvent {
        let event_hash = with_scratch(|scratch| self.write_line(previous_hash, line, scratch));
        self.into_sealed(event_hash, previous_hash)
    }

    /// The sealed event, given its hash.
    pub(crate) fn into_sealed(self, event_hash: String, previous_hash: &str) -> AuditEvent {
        AuditEvent {
            intent_id: self.intent_id,
            stage: self.stage,
            event_type: self.event_type,
            outcome: self.outcome,
            policy_bundle_version: self.policy_bundle_version,
            details: self.details,
            timestamp: self.timestamp,
            event_hash,
            previous_hash: previous_hash.to_owned(),
        }
    }

    /// Appends the JSONL line to `line` and returns the event hash.
    fn write_line(&self, previous_hash: &str, line: &mut String, scratch: &mut Scratch) -> String {
        let field = |line: &mut String, key: &str, value: &str| -> Range<usize> {
            line.push_str(key);
            let start = line.len();
            canonical::write_str(line, value, true);
            start..line.len()
        };
        let intent_id = field(line, "{\"intent_id\": ", &self.intent_id);
        let stage = field(line, ", \"stage\": ", &self.stage);
        let event_type = field(line, ", \"event_type\": ", &self.event_type);
        let outcome = field(line, ", \"outcome\": ", &self.outcome);
        field(
            line,
            ", \"policy_bundle_version\": ",
            &self.policy_bundle_version,
        );
        line.push_str(", \"details\": {");
        scratch.clear();
        for (n, (k, v)) in self.details.iter().enumerate() {
            if n > 0 {
                line.push_str(", ");
            }
            let start = line.len();
            canonical::write_str(line, k, true);
            line.push_str(": ");
            if has_object(v) {
                // The line keeps the object's insertion order, the payload sorts it.
                let key_end = line.len();
                canonical::write_value(line, v, Style::InsertionAscii);
                let sorted = scratch.texts.len();
                scratch
                    .texts
                    .push_str(line.get(start..key_end).unwrap_or_default());
                canonical::write_value(&mut scratch.texts, v, Style::SortedAscii);
                scratch.push_entry(k, Text::Scratch(sorted..scratch.texts.len()));
            } else {
                canonical::write_value(line, v, Style::SortedAscii);
                scratch.push_entry(k, Text::Line(start..line.len()));
            }
        }
        line.push('}');
        let timestamp = field(line, ", \"timestamp\": ", &self.timestamp);

        let mut payload = std::mem::take(&mut scratch.payload);
        payload.clear();
        payload.push_str("{\"details\": {");
        scratch.write_sorted(&mut payload, line);
        payload.push('}');
        let text = |r: &Range<usize>| line.get(r.clone()).unwrap_or_default();
        for (key, value) in [
            (", \"event_type\": ", text(&event_type)),
            (", \"intent_id\": ", text(&intent_id)),
            (", \"outcome\": ", text(&outcome)),
        ] {
            payload.push_str(key);
            payload.push_str(value);
        }
        let previous = field(&mut payload, ", \"previous_hash\": ", previous_hash);
        for (key, value) in [
            (", \"stage\": ", text(&stage)),
            (", \"timestamp\": ", text(&timestamp)),
        ] {
            payload.push_str(key);
            payload.push_str(value);
        }
        payload.push('}');

        let mut hex = [0u8; 64];
        canonical::hex_lower_into(&Sha256::digest(payload.as_bytes()), &mut hex);
        let event_hash = std::str::from_utf8(&hex).unwrap_or_default();
        // Hex digits need no escaping: the quoted digits are `write_str`'s output.
        line.push_str(", \"event_hash\": \"");
        line.push_str(event_hash);
        line.push_str("\", \"previous_hash\": ");
        line.push_str(payload.get(previous).unwrap_or_default());
        line.push('}');
        let event_hash = event_hash.to_owned();
        scratch.payload = payload;
        event_hash
    }
}

/// Lowercase hex SHA-256 of `text`.
fn hash_hex(text: &str) -> String {
    let mut hex = [0u8; 64];
    canonical::hex_lower_into(&Sha256::digest(text.as_bytes()), &mut hex);
    std::str::from_utf8(&hex).unwrap_or_default().to_owned()
}

/// Where one detail's `"key": value` text (sorted style) is.
#[derive(Debug, Clone)]
pub(crate) enum Text {
    /// In the line being written (no object inside, so both styles agree).
    Line(Range<usize>),
    /// In [`Scratch::texts`].
    Scratch(Range<usize>),
}

/// One detail: its raw key (in [`Scratch::keys`], for sorting) and its text.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The key's first eight bytes, big-endian, zero-padded: comparing two of these
    /// orders keys like comparing the keys, except that equal prefixes need the keys.
    pub(crate) prefix: u64,
    pub(crate) key: Range<usize>,
    pub(crate) text: Text,
}

/// [`Entry::prefix`] of `key`.
pub(crate) fn key_prefix(key: &str) -> u64 {
    if let Some(first) = key.as_bytes().first_chunk::<8>() {
        return u64::from_be_bytes(*first);
    }
    let mut first = [0u8; 8];
    for (slot, b) in first.iter_mut().zip(key.bytes()) {
        *slot = b;
    }
    u64::from_be_bytes(first)
}

/// Buffers reused by every seal on a thread, so sealing allocates only what it
/// returns once they have grown to an event's size.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The line of [`NewEvent::seal_with_line`] before it is copied out.
    pub(crate) line: String,
    /// The hashed payload.
    pub(crate) payload: String,
    /// Sorted-style detail texts that are not in the line.
    pub(crate) texts: String,
    /// The raw detail keys, back to back.
    pub(crate) keys: String,
    /// The details in insertion order (sorted by key before the payload is written).
    pub(crate) entries: Vec<Entry>,
    /// Where each detail's text is in the line, in insertion order
    /// ([`crate::prepared::EventBuilder`]).
    pub(crate) spans: Vec<Range<usize>>,
}

impl Scratch {
    const fn new() -> Self {
        Self {
            line: String::new(),
            payload: String::new(),
            texts: String::new(),
            keys: String::new(),
            entries: Vec::new(),
            spans: Vec::new(),
        }
    }

    /// Forgets the previous event's details (keeping the capacity).
    pub(crate) fn clear(&mut self) {
        self.texts.clear();
        self.keys.clear();
        self.entries.clear();
    }

    pub(crate) fn push_entry(&mut self, key: &str, text: Text) {
        self.push_entry_prefixed(key, key_prefix(key), text);
    }

    /// [`Scratch::push_entry`] with the key's [`key_prefix`] already at hand.
    pub(crate) fn push_entry_prefixed(&mut self, key: &str, prefix: u64, text: Text) {
        let start = self.keys.len();
        self.keys.push_str(key);
        self.entries.push(Entry {
            prefix,
            key: start..self.keys.len(),
            text,
        });
    }

    /// Appends the entries' texts to `out` in key order (code point order, which for
    /// `str` is byte order, as `json.dumps(sort_keys=True)` sorts), `", "`-separated;
    /// [`Text::Line`] ranges are read from `line`.
    pub(crate) fn write_sorted(&mut self, out: &mut String, line: &str) {
        let keys = self.keys.as_str();
        let key = |e: &Entry| keys.get(e.key.clone()).unwrap_or_default();
        // Map keys are distinct, so an unstable sort gives the one sorted order.
        self.entries
            .sort_unstable_by(|a, b| a.prefix.cmp(&b.prefix).then_with(|| key(a).cmp(key(b))));
        for (n, e) in self.entries.iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            let text = match &e.text {
                Text::Line(r) => line.get(r.clone()),
                Text::Scratch(r) => self.texts.get(r.clone()),
            };
            out.push_str(text.unwrap_or_default());
        }
    }
}

thread_local! {
    /// This thread's [`Scratch`]; taken out while in use, so a nested use (there is
    /// none today) would start from empty buffers instead of sharing them.
    static SCRATCH: Cell<Scratch> = const { Cell::new(Scratch::new()) };
}

/// Scratch buffers that grew past this many bytes (an unusually large event) are
/// dropped after use instead of being kept for the thread's lifetime.
const SCRATCH_KEEP_BYTES: usize = 64 * 1024;

/// Runs `f` with this thread's scratch buffers (fresh ones while the thread-local is
/// being torn down).
fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    let mut scratch = take_scratch();
    let out = f(&mut scratch);
    give_back_scratch(scratch);
    out
}

/// Takes this thread's scratch buffers out (fresh ones while the thread-local is being
/// torn down, or while another user holds them); [`give_back_scratch`] returns them.
pub(crate) fn take_scratch() -> Scratch {
    SCRATCH.try_with(Cell::take).unwrap_or_default()
}

/// Keeps `scratch` for this thread's next seal, unless it grew unusually large.
pub(crate) fn give_back_scratch(scratch: Scratch) {
    let kept = scratch.line.capacity()
        + scratch.payload.capacity()
        + scratch.texts.capacity()
        + scratch.keys.capacity();
    if kept <= SCRATCH_KEEP_BYTES {
        let _ = SCRATCH.try_with(|cell| cell.set(scratch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"intent_id": "11111111-2222-3333-4444-555555555555", "stage": "policy_check", "event_type": "policy_evaluation", "outcome": "approve", "policy_bundle_version": "prod-v1.0", "details": {"decision_id": "35324dcc-4335-455e-bce2-bd72f68a6f0c", "signature_hash": "e1fc764a6d33a9efc69ddaae611407ccef2ff5ddb0e3d9969b0df69422907649", "catalog_hash": "195b9fb1afa73b94aef907c6a0522d7f3a631e8c39dd04abe7ac3f04b205c347", "policy_bundle_hash": "795df3d823b924c84b48818773b865f57cb69c724ffa9a6c89f165ce1a9c8eb8", "faults": [], "interventions": [], "reasoning": "All rules passed. Execution approved."}, "timestamp": "2026-11-21T20:02:57.918912+00:00", "event_hash": "fa3bb99408fb34d268cd8b0c4a6db554c2b3404de9a0d0c94dafb07c539a9c17", "previous_hash": ""}"#;

    #[test]
    fn direct_writers_match_the_generic_canonical_forms() {
        let mut e = AuditEvent::from_jsonl_line(SAMPLE).unwrap();
        e.details.insert(
            "zeta é\u{1F600}\n\"q\"".to_owned(),
            serde_json::json!({"b": [1, 2.5, null, true], "a": {"y": "ü", "x": -3}}),
        );
        e.details
            .insert("alpha".to_owned(), Value::from("\u{7f}\t"));
        e.outcome = "ok \u{e9}".to_owned();
        let payload = Value::Object(Map::from_iter([
            ("intent_id".to_owned(), Value::from(e.intent_id.clone())),
            ("stage".to_owned(), Value::from(e.stage.clone())),
            ("event_type".to_owned(), Value::from(e.event_type.clone())),
            ("outcome".to_owned(), Value::from(e.outcome.clone())),
            ("timestamp".to_owned(), Value::from(e.timestamp.clone())),
            (
                "previous_hash".to_owned(),
                Value::from(e.previous_hash.clone()),
            ),
            ("details".to_owned(), Value::Object(e.details.clone())),
        ]));
        assert_eq!(e.canonical_payload(), canonical::canonical_string(&payload));
        assert_eq!(
            e.to_jsonl_line(),
            canonical::to_string(&e.to_value(), Style::InsertionAscii)
        );
        let fresh = NewEvent {
            intent_id: e.intent_id.clone(),
            stage: e.stage.clone(),
            event_type: e.event_type.clone(),
            outcome: e.outcome.clone(),
            policy_bundle_version: "v\u{e9}".to_owned(),
            details: e.details.clone(),
            timestamp: e.timestamp.clone(),
        };
        let (sealed, line) = fresh.clone().seal_with_line("prev\u{1F600}");
        let reference = fresh.seal("prev\u{1F600}");
        assert_eq!(sealed, reference);
        assert_eq!(line, reference.to_jsonl_line());
    }

    /// The payload object the reference hashes, built as a `Value`.
    fn payload_value(e: &AuditEvent) -> Value {
        Value::Object(Map::from_iter([
            ("intent_id".to_owned(), Value::from(e.intent_id.clone())),
            ("stage".to_owned(), Value::from(e.stage.clone())),
            ("event_type".to_owned(), Value::from(e.event_type.clone())),
            ("outcome".to_owned(), Value::from(e.outcome.clone())),
            ("timestamp".to_owned(), Value::from(e.timestamp.clone())),
            (
                "previous_hash".to_owned(),
                Value::from(e.previous_hash.clone()),
            ),
            ("details".to_owned(), Value::Object(e.details.clone())),
        ]))
    }

    /// Checks every fast writer of `fresh` sealed after `prev` against the generic
    /// canonical forms of the same data.
    fn assert_fast_paths_agree(fresh: &NewEvent, prev: &str) {
        let (sealed, line) = fresh.clone().seal_with_line(prev);
        let reference = fresh.clone().seal(prev);
        assert_eq!(sealed, reference);
        let payload = canonical::canonical_string(&payload_value(&sealed));
        assert_eq!(sealed.canonical_payload(), payload);
        assert_eq!(sealed.event_hash, canonical::sha256_hex(payload.as_bytes()));
        assert_eq!(sealed.compute_hash(), sealed.event_hash);
        let generic_line = canonical::to_string(&sealed.to_value(), Style::InsertionAscii);
        assert_eq!(line, generic_line);
        assert_eq!(reference.to_jsonl_line(), generic_line);
        let mut appended = String::from("earlier\n");
        let again = fresh.clone().seal_into(prev, &mut appended);
        assert_eq!(again, sealed);
        assert_eq!(appended, format!("earlier\n{generic_line}"));
        assert_eq!(AuditEvent::from_jsonl_line(&line).as_ref(), Ok(&sealed));
    }

    mod generated {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        /// Text with the characters that need escaping, unicode and astral planes.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-d]{0,3}",
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
                    vec((text(), inner), 0..5)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        fn event() -> impl Strategy<Value = NewEvent> {
            (
                [text(), text(), text(), text(), text(), text()],
                vec((text(), value()), 0..10),
            )
                .prop_map(
                    |([intent, stage, event_type, outcome, bundle, ts], details)| {
                        let mut e = NewEvent::new(intent, stage, event_type, outcome, ts);
                        e.policy_bundle_version = bundle;
                        e.details = details.into_iter().collect();
                        e
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1500))]

            #[test]
            fn one_pass_seal_matches_the_generic_forms(fresh in event(), prev in text()) {
                assert_fast_paths_agree(&fresh, &prev);
            }
        }
    }

    #[test]
    fn scratch_reuse_after_a_large_event_gives_the_small_events_own_answer() {
        let big = (0..40).fold(NewEvent::new("i", "s", "e", "ok", "t"), |e, n| {
            e.detail(
                format!("k{n:02}\u{e9}"),
                serde_json::json!({"z": [n, {"y": "\u{1F600}", "x": n}], "a": "q\"\\"}),
            )
        });
        let big_hex = "b".repeat(64);
        assert_fast_paths_agree(&big, &big_hex);
        // Larger than the buffers the thread keeps: they are dropped, not kept.
        let huge = NewEvent::new("i", "s", "e", "ok", "t").detail("blob", "x".repeat(100_000));
        assert_fast_paths_agree(&huge, "");
        let small = NewEvent::new("i2", "s", "e", "ok", "t2")
            .detail("b", 1)
            .detail("a", 2.5);
        assert_fast_paths_agree(&small, "");
        assert_fast_paths_agree(&small, &big_hex);
        // A different input is a different answer, not the last one reused.
        let other = small.clone().detail("c", Value::Null);
        assert_ne!(
            small.clone().seal_with_line("").1,
            other.clone().seal_with_line("").1
        );
        assert_ne!(small.seal("").event_hash, other.seal("").event_hash);
    }

    #[test]
    fn keys_sharing_their_first_bytes_sort_by_the_whole_key() {
        let keys = [
            "policy_bundle_version",
            "policy_bundle_hash",
            "policy_b",
            "policy_",
            "policy",
            "a",
            "a\u{0}",
            "a\u{0}b",
            "ab",
            "",
            "\u{e9}t\u{e9}",
            "\u{e9}",
            "z\u{1F600}",
            "zz",
            "abcdefgh",
            "abcdefgh\u{0}",
            "abcdefgg\u{ff}",
        ];
        let fresh = keys
            .iter()
            .fold(NewEvent::new("i", "s", "e", "ok", "t"), |e, k| {
                e.detail(*k, *k)
            });
        assert_fast_paths_agree(&fresh, "");
        for (a, b) in keys.iter().flat_map(|a| keys.iter().map(move |b| (a, b))) {
            assert_eq!(
                key_prefix(a).cmp(&key_prefix(b)).then_with(|| a.cmp(b)),
                a.cmp(b),
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn sample_line_round_trips_and_hashes() {
        let e = AuditEvent::from_jsonl_line(SAMPLE).unwrap();
        assert_eq!(e.compute_hash(), e.event_hash);
        assert_eq!(e.to_jsonl_line(), SAMPLE);
    }

    #[test]
    fn synthetic_vector() {
        let e = NewEvent::new("i", "s", "e", "ok", "2026-01-01T00:00:00+00:00")
            .detail("b", 1.5)
            .detail("a", "é—")
            .detail("z", serde_json::json!([1, null, true]))
            .seal("");
        assert_eq!(
            e.event_hash,
            "3b69998684daee0e632ea8bc5f8c513797582da3414f9748653ff1b7f0ab3f6e"
        );
    }

    #[test]
    fn capacity_and_bulk_details_build_the_same_event() {
        let one_by_one = NewEvent::new("i", "s", "e", "ok", "t")
            .detail("b", 1)
            .detail("a", "x")
            .detail("b", 2)
            .with_bundle("v1", "h");
        let bulk = NewEvent::with_capacity("i", "s", "e", "ok", "t", 8)
            .details_from([("b", Value::from(1)), ("a", Value::from("x"))])
            .details_from([("b".to_owned(), Value::from(2))])
            .with_bundle("v1", "h");
        assert_eq!(bulk, one_by_one);
        assert_eq!(
            bulk.details.keys().collect::<Vec<_>>(),
            ["b", "a", "policy_bundle_version", "policy_bundle_hash"]
        );
        assert_eq!(bulk.seal_with_line("p"), one_by_one.seal_with_line("p"));
        assert_ne!(
            NewEvent::with_capacity("i", "s", "e", "ok", "t", 0).details_from([("a", Value::Null)]),
            NewEvent::with_capacity("i", "s", "e", "ok", "t", 0)
        );
    }

    #[test]
    fn bundle_goes_into_details() {
        let e = NewEvent::new("i", "s", "e", "ok", "t")
            .with_bundle("prod-v1", "abc")
            .seal("");
        assert_eq!(e.policy_bundle_version, "prod-v1");
        assert_eq!(e.details["policy_bundle_version"], "prod-v1");
        assert_eq!(e.details["policy_bundle_hash"], "abc");
    }

    #[test]
    fn strict_keys() {
        let extra = SAMPLE.replacen("{\"intent_id\"", "{\"x\": 1, \"intent_id\"", 1);
        assert_eq!(
            AuditEvent::from_jsonl_line(&extra),
            Err(EventShapeError::UnknownKey("x".into()))
        );
        let missing = SAMPLE.replacen("\"stage\": \"policy_check\", ", "", 1);
        assert_eq!(
            AuditEvent::from_jsonl_line(&missing),
            Err(EventShapeError::MissingKey("stage"))
        );
    }
}
