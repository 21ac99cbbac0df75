//! Why an event is bad: [`BadReason`], its stable codes and its messages.

use crate::event::{EventShapeError, FieldMismatch};

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
