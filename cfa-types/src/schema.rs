//! Published JSON Schemas (draft 2020-12) for the signature callers send and the
//! decision CFA returns. Enum values come from the Rust enums' `ALL` lists, so the
//! schemas cannot drift from the types.

use crate::enums::{DatasetClassification, FaultFamily, FaultSeverity, PolicyAction, TargetLayer};
use serde_json::{Value, json};

/// The JSON Schema dialect both schemas declare.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// A string with at least one char that is not Python whitespace (`str.strip()` leaves
/// something): the "non-empty string" of strict validation.
const NON_BLANK_PATTERN: &str = "[^\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

fn values<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Value {
    Value::Array(all.iter().map(|v| Value::from(as_str(*v))).collect())
}

/// JSON Schema of a `StateSignature` as strict validation accepts it
/// ([`crate::validate::signature`] with `require_datasets = false`, after unwrapping a
/// `signature`/`state_signature` wrapper): `domain`, `intent`, `target_layer` and
/// `execution_context` are required; everything else takes the reference defaults;
/// unknown keys are allowed (and ignored). Numbers may be integers or floats.
pub fn signature_schema() -> Value {
    json!({
        "$schema": DIALECT,
        "$id": "urn:cfa:schema:state-signature",
        "title": "StateSignature",
        "description": "The typed form of an intent (cfa-kernel 1.1.0 shape). Strict validation also requires non-empty datasets when the caller asks for it.",
        "type": "object",
        "required": ["domain", "intent", "target_layer", "execution_context"],
        "properties": {
            "domain": {"$ref": "#/$defs/nonBlankString", "description": "Business domain."},
            "intent": {"$ref": "#/$defs/nonBlankString", "description": "Operation label."},
            "target_layer": {
                "description": "Layer written to.",
                "enum": values(TargetLayer::ALL, TargetLayer::as_str)
            },
            "datasets": {
                "description": "Datasets read; null means none.",
                "type": ["array", "null"],
                "items": {"$ref": "#/$defs/dataset"}
            },
            "constraints": {"$ref": "#/$defs/constraints"},
            "execution_context": {"$ref": "#/$defs/executionContext"},
            "intent_id": {"type": "string", "description": "Opaque id of the intent."},
            "source_intent_raw": {"type": "string", "description": "The raw intent text."}
        },
        "$defs": {
            "nonBlankString": {
                "type": "string",
                "pattern": NON_BLANK_PATTERN,
                "description": "A string that is not empty after Python str.strip()."
            },
            "nonBlankStringList": {
                "type": "array",
                "items": {"$ref": "#/$defs/nonBlankString"}
            },
            "nonNegativeNumber": {"type": "number", "minimum": 0},
            "dataset": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"$ref": "#/$defs/nonBlankString", "description": "Catalog name."},
                    "classification": {
                        "description": "Classification; default internal.",
                        "enum": values(DatasetClassification::ALL, DatasetClassification::as_str)
                    },
                    "size_gb": {"$ref": "#/$defs/nonNegativeNumber", "description": "Size in GB; default 0.0."},
                    "pii_columns": {"$ref": "#/$defs/nonBlankStringList", "description": "Columns holding PII."},
                    "partition_column": {"type": ["string", "null"]},
                    "merge_keys": {"type": ["array", "null"], "items": {"type": "string"}}
                }
            },
            "constraints": {
                "type": "object",
                "description": "Declared constraints; missing keys take the defaults.",
                "properties": {
                    "no_pii_raw": {"type": "boolean", "default": true},
                    "merge_key_required": {"type": "boolean", "default": true},
                    "enforce_types": {"type": "boolean", "default": true},
                    "partition_by": {"$ref": "#/$defs/nonBlankStringList"},
                    "max_cost_dbu": {
                        "description": "Cost ceiling in DBU, or null for none.",
                        "anyOf": [{"$ref": "#/$defs/nonNegativeNumber"}, {"type": "null"}]
                    },
                    "custom": {"type": ["object", "null"], "description": "Free-form extra constraints."}
                }
            },
            "executionContext": {
                "type": "object",
                "required": ["policy_bundle_version", "catalog_snapshot_version", "context_registry_version_id"],
                "properties": {
                    "policy_bundle_version": {"$ref": "#/$defs/nonBlankString"},
                    "catalog_snapshot_version": {"$ref": "#/$defs/nonBlankString"},
                    "context_registry_version_id": {"$ref": "#/$defs/nonBlankString"}
                }
            }
        }
    })
}

/// JSON Schema of a decision ([`crate::PolicyResult`] as serialised): the reference's
/// `PolicyResult.to_dict()` keys plus `patches` (absent in reference output, always
/// written by CFA) and `manual_fixes` (written only when non-empty).
pub fn decision_schema() -> Value {
    json!({
        "$schema": DIALECT,
        "$id": "urn:cfa:schema:policy-decision",
        "title": "PolicyResult",
        "description": "The result of one policy evaluation.",
        "type": "object",
        "required": ["action", "faults", "interventions", "replan_count", "reasoning"],
        "additionalProperties": false,
        "properties": {
            "action": {"$ref": "#/$defs/action"},
            "faults": {"type": "array", "items": {"$ref": "#/$defs/fault"}},
            "interventions": {"type": "array", "items": {"type": "string"}},
            "replan_count": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
            "reasoning": {"type": "string"},
            "patches": {"type": "array", "items": {"$ref": "#/$defs/patch"}},
            "manual_fixes": {"type": "array", "items": {"$ref": "#/$defs/manualFix"}}
        },
        "$defs": {
            "action": {"enum": values(PolicyAction::ALL, PolicyAction::as_str)},
            "fault": {
                "type": "object",
                "required": ["code", "family", "severity", "stage", "message", "mandatory_action", "remediation"],
                "additionalProperties": false,
                "properties": {
                    "code": {"type": "string"},
                    "family": {"enum": values(FaultFamily::ALL, FaultFamily::as_str)},
                    "severity": {"enum": values(FaultSeverity::ALL, FaultSeverity::as_str)},
                    "stage": {"type": "string"},
                    "message": {"type": "string"},
                    "mandatory_action": {"$ref": "#/$defs/action"},
                    "remediation": {"type": "array", "items": {"type": "string"}},
                    "detected_before_execution": {"type": "boolean", "default": true}
                }
            },
            "patch": {
                "type": "object",
                "required": ["op", "path", "value"],
                "additionalProperties": false,
                "properties": {
                    "op": {"const": "set"},
                    "path": {"type": "string"},
                    "value": {}
                }
            },
            "manualFix": {
                "type": "object",
                "required": ["code", "reason"],
                "additionalProperties": false,
                "properties": {
                    "code": {"type": "string"},
                    "reason": {"type": "string"}
                }
            }
        }
    })
}
