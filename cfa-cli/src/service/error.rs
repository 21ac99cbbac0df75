//! The face-level error both faces answer with.

use serde_json::{Value, json};

/// A face-level error with a stable machine code (`{"error": {"code", "message"}}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FaceError {
    /// Stable code, e.g. `invalid_signature`.
    pub code: &'static str,
    /// Human-readable message naming the input.
    pub message: String,
}

impl FaceError {
    /// A new error.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `{"error": {"code", "message"}}`.
    pub fn to_json(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}
