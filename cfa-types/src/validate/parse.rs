//! The strict fast path: JSON text → strict validation → typed signature.

use super::Issue;
use super::sig::{signature, unwrap_signature};
use crate::signature::{SignatureError, StateSignature};
use serde_json::Value;
use std::fmt;

/// Why [`StateSignature::parse_validated`] rejected its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not JSON.
    #[error(transparent)]
    Syntax(#[from] JsonSyntaxError),
    /// The JSON is not a valid signature.
    #[error(transparent)]
    Invalid(#[from] InvalidSignature),
}

impl ParseError {
    /// The validation issues, or none for a syntax error.
    pub fn issues(&self) -> &[Issue] {
        match self {
            ParseError::Syntax(_) => &[],
            ParseError::Invalid(inv) => &inv.issues,
        }
    }
}

/// A JSON syntax error, with its 1-based position in the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature is not valid JSON: {message} at line {line}, column {column}")]
pub struct JsonSyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (0 when the error is at the very end of a line).
    pub column: usize,
    /// What the parser expected or found, e.g. `expected value`.
    pub message: String,
}

impl From<serde_json::Error> for JsonSyntaxError {
    fn from(e: serde_json::Error) -> Self {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        JsonSyntaxError {
            line,
            column,
            message,
        }
    }
}

/// Strict validation failed; `issues` is in the reference's order and never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidSignature {
    /// Every issue, rendered `{path}: {message}` by [`Issue`]'s `Display`.
    pub issues: Vec<Issue>,
}

impl fmt::Display for InvalidSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid signature: ")?;
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl StateSignature {
    /// Parses JSON text, validates it strictly ([`crate::validate::signature`], with
    /// the `signature`/`state_signature` unwrapping) and reads the unwrapped object.
    ///
    /// Text that is empty or only whitespace gives the issue `signature: file is
    /// empty`, like a `null` document. A signature that passes here always reads:
    /// every field the typed reader needs is covered by validation.
    pub fn parse_validated(text: &str, require_datasets: bool) -> Result<Self, ParseError> {
        if text.trim().is_empty() {
            return Err(InvalidSignature {
                issues: vec![Issue::new("signature", "file is empty")],
            }
            .into());
        }
        let value: Value = serde_json::from_str(text).map_err(JsonSyntaxError::from)?;
        Self::from_validated_value(&value, require_datasets)
    }

    /// [`StateSignature::parse_validated`] for an already parsed value.
    pub fn from_validated_value(value: &Value, require_datasets: bool) -> Result<Self, ParseError> {
        let issues = signature(value, require_datasets);
        if !issues.is_empty() {
            return Err(InvalidSignature { issues }.into());
        }
        StateSignature::from_value(unwrap_signature(value)).map_err(|e| {
            let issue = match e {
                SignatureError::Field(f) => Issue::new(f.path, f.message),
                other => Issue::new("signature", other.to_string()),
            };
            InvalidSignature {
                issues: vec![issue],
            }
            .into()
        })
    }
}
