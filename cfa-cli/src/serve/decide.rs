//! The decision service both long-running faces share (`cfa mcp` and `cfa serve`):
//! the configured bundle, catalog and audit log, bundle overrides by built-in name (never
//! by path: a request cannot make the server read a file), and the JSON shapes of
//! decisions, rules, audit checks and backends. Everything here is synchronous and pure
//! except the audit append.

use crate::load::{self, LoadedCatalog, LoadedPolicy};
use cfa::audit::{
    AuditStore, Clock, Durability, JsonlStore, PolicyCheckRecord, SystemClock, VerifyOptions,
};
use cfa::codegen::BackendRegistry;
use cfa::types::validate::ParseError;
use cfa::{PolicyAction, PolicyResult, StateSignature};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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

/// The audit log a face appends decisions to (one store held open: appends from
/// concurrent requests serialise through its lock, so the chain stays linear).
pub struct AuditLog {
    store: Arc<JsonlStore>,
    path: PathBuf,
    chain_length: AtomicU64,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish()
    }
}

impl AuditLog {
    /// Opens (or creates) the JSONL log at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, FaceError> {
        let store = JsonlStore::open(path, durability).map_err(|e| {
            FaceError::new(
                "audit_error",
                format!("cannot open audit log {}: {e}", path.display()),
            )
        })?;
        let len = store.len().map_err(|e| {
            FaceError::new(
                "audit_error",
                format!("cannot read audit log {}: {e}", path.display()),
            )
        })?;
        Ok(Self {
            store: Arc::new(store),
            path: path.to_path_buf(),
            chain_length: AtomicU64::new(len),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store, for the kernel to write its events into.
    pub fn store(&self) -> Arc<dyn AuditStore> {
        Arc::clone(&self.store) as Arc<dyn AuditStore>
    }

    /// Counts `n` events appended through [`AuditLog::store`].
    pub fn note_appended(&self, n: u64) {
        self.chain_length.fetch_add(n, Ordering::Relaxed);
    }

    /// Events in the chain (at open, plus what this process appended).
    pub fn chain_length(&self) -> u64 {
        self.chain_length.load(Ordering::Relaxed)
    }

    fn append(&self, record: &PolicyCheckRecord) -> Result<String, FaceError> {
        let event = record.to_event(&SystemClock.now_isoformat());
        let sealed = self.store.append(event).map_err(|e| {
            FaceError::new(
                "audit_error",
                format!("cannot record the decision in {}: {e}", self.path.display()),
            )
        })?;
        self.chain_length.fetch_add(1, Ordering::Relaxed);
        Ok(sealed.event_hash)
    }

    /// The torn tails the store moved aside (when the log was opened, or later before
    /// an append), each recorded in the chain as an `audit_repair` event.
    pub fn repairs(&self) -> Vec<cfa::audit::jsonl::TornRepair> {
        self.store.repairs()
    }

    /// `{file, status: "ok" | "repaired", repairs: [{offset, bytes, sidecar,
    /// event_hash, message}]}` for health reports.
    pub fn health_json(&self) -> Value {
        let repairs: Vec<Value> = self
            .repairs()
            .iter()
            .map(|r| {
                json!({
                    "offset": r.offset,
                    "bytes": r.bytes,
                    "sidecar": r.sidecar.display().to_string(),
                    "event_hash": r.event_hash,
                    "message": format!("audit: {r}"),
                })
            })
            .collect();
        json!({
            "file": self.path.display().to_string(),
            "status": if repairs.is_empty() { "ok" } else { "repaired" },
            "repairs": repairs,
        })
    }

    /// Forces pending appends to disk.
    pub fn flush(&self) -> Result<(), FaceError> {
        self.store
            .flush()
            .map_err(|e| FaceError::new("audit_error", e.to_string()))
    }
}

/// Whether a request may name a bundle by file path. Both faces (`cfa serve`,
/// `cfa mcp`) accept built-in names only: a request never makes the server read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleAccess {
    /// Built-in names only.
    NamesOnly,
}

/// The configured governance artifacts of a face.
#[derive(Debug)]
pub struct Governance {
    active: Arc<LoadedPolicy>,
    named: Mutex<HashMap<String, Arc<LoadedPolicy>>>,
    catalog: Option<LoadedCatalog>,
    audit: Option<AuditLog>,
    access: BundleAccess,
}

/// A decision with what identifies it.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The policy result.
    pub result: PolicyResult,
    /// The evaluated signature.
    pub signature: StateSignature,
    /// Random id of this decision (generated by the face, not on the decision path).
    pub decision_id: String,
    /// Bundle version.
    pub policy_bundle: String,
    /// Bundle hash (`""` for the default rules).
    pub policy_bundle_hash: String,
    /// Catalog hash (`""` without a catalog).
    pub catalog_hash: String,
    /// Audit event hash (`""` when not audited).
    pub audit_event_hash: String,
}

impl Decision {
    /// The decision document: `decision` holds the [`PolicyResult`] exactly as
    /// `cfa schema decision` describes it; the rest identifies it.
    pub fn to_json(&self) -> Value {
        json!({
            "decision_id": self.decision_id,
            "action": self.result.action,
            "passed": self.result.passed(),
            "decision": self.result,
            "signature_hash": self.signature.signature_hash(),
            "content_hash": self.signature.content_hash(),
            "intent_id": self.signature.intent_id,
            "policy_bundle": self.policy_bundle,
            "policy_bundle_hash": self.policy_bundle_hash,
            "catalog_hash": self.catalog_hash,
            "audit_event_hash": self.audit_event_hash,
        })
    }
}

impl Governance {
    /// Loads the active bundle (`None`: `CFA_POLICY_BUNDLE` is read by the caller;
    /// absent means the default rules), the catalog and the audit log.
    pub fn load(
        policy_bundle: Option<&str>,
        catalog: Option<&Path>,
        audit_log: Option<&Path>,
        durability: Durability,
        access: BundleAccess,
    ) -> Result<Self, miette::Report> {
        let active = Arc::new(load::policy(policy_bundle)?);
        let catalog = catalog.map(load::catalog).transpose()?;
        let audit = audit_log
            .map(|p| AuditLog::open(p, durability))
            .transpose()
            .map_err(|e| miette::Report::msg(e.message))?;
        Ok(Self {
            active,
            named: Mutex::new(HashMap::new()),
            catalog,
            audit,
            access,
        })
    }

    /// The active bundle.
    pub fn active(&self) -> &LoadedPolicy {
        &self.active
    }

    /// The catalog, if configured.
    pub fn catalog(&self) -> Option<&LoadedCatalog> {
        self.catalog.as_ref()
    }

    /// The audit log, if configured.
    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// The bundle a request names, or the active one. Built-ins are loaded once.
    pub fn policy(&self, name: Option<&str>) -> Result<Arc<LoadedPolicy>, FaceError> {
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(Arc::clone(&self.active));
        };
        // A built-in name is always the built-in (a file of that name never shadows
        // it); anything else, a file path included, is refused.
        match (load::classify(name), self.access) {
            (Ok(load::BundleSpec::Default | load::BundleSpec::Builtin(_)), _) => {}
            (Ok(load::BundleSpec::File(_)) | Err(_), BundleAccess::NamesOnly) => {
                return Err(names_only(name));
            }
        }
        let mut named = self.named.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = named.get(name) {
            return Ok(Arc::clone(p));
        }
        let loaded = Arc::new(load_named(name)?);
        named.insert(name.to_owned(), Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Strict parse of signature JSON text (optionally wrapped in `signature`).
    pub fn parse_signature_text(text: &str) -> Result<StateSignature, FaceError> {
        StateSignature::parse_validated(text, false).map_err(signature_error)
    }

    /// Strict read of an already parsed signature value.
    pub fn parse_signature_value(value: &Value) -> Result<StateSignature, FaceError> {
        StateSignature::from_validated_value(value, false).map_err(signature_error)
    }

    /// Evaluates `signature` against the named (or active) bundle and the catalog,
    /// and records the decision when an audit log is configured.
    pub fn decide(
        &self,
        signature: StateSignature,
        bundle: Option<&str>,
        replan_count: u32,
    ) -> Result<Decision, FaceError> {
        let policy = self.policy(bundle)?;
        let result = policy.engine.evaluate_with_catalog(
            &signature,
            self.catalog.as_ref().map(|c| &c.catalog),
            replan_count,
        );
        self.finish(signature, result, &policy)
    }

    /// Identifies (and audits, when configured) a finished policy result.
    pub fn finish(
        &self,
        signature: StateSignature,
        result: PolicyResult,
        policy: &LoadedPolicy,
    ) -> Result<Decision, FaceError> {
        let catalog_hash = self
            .catalog
            .as_ref()
            .map(|c| c.catalog.hash())
            .unwrap_or_default();
        let mut decision = Decision {
            decision_id: uuid::Uuid::new_v4().to_string(),
            policy_bundle: policy.engine.version().to_owned(),
            policy_bundle_hash: policy.hash.clone(),
            catalog_hash,
            audit_event_hash: String::new(),
            result,
            signature,
        };
        if let Some(audit) = &self.audit {
            let record = PolicyCheckRecord {
                intent_id: decision.signature.intent_id.clone(),
                action: decision.result.action.as_str().to_owned(),
                policy_bundle_version: decision.policy_bundle.clone(),
                decision_id: decision.decision_id.clone(),
                signature_hash: decision.signature.signature_hash(),
                catalog_hash: decision.catalog_hash.clone(),
                policy_bundle_hash: decision.policy_bundle_hash.clone(),
                faults: decision
                    .result
                    .faults
                    .iter()
                    .map(|f| f.code.clone())
                    .collect(),
                interventions: decision.result.interventions.clone(),
                reasoning: decision.result.reasoning.clone(),
                content_hash: decision.signature.content_hash(),
            };
            decision.audit_event_hash = audit.append(&record)?;
        }
        Ok(decision)
    }

    /// `{policy_bundle, source, rule_count, rules: [{name, action, fault_code, severity, family, …}]}`.
    pub fn describe_rules(&self, bundle: Option<&str>) -> Result<Value, FaceError> {
        let policy = self.policy(bundle)?;
        let rules = policy.engine.describe_rules();
        Ok(json!({
            "policy_bundle": policy.engine.version(),
            "policy_bundle_version": policy.engine.version(),
            "source": policy.source,
            "rule_count": rules.len(),
            "rules": rules,
        }))
    }

    /// The rule behind `code` in the named (or active) bundle.
    pub fn explain(&self, code: &str, bundle: Option<&str>) -> Result<Value, FaceError> {
        let policy = self.policy(bundle)?;
        match policy.engine.explain(code.trim()) {
            Some(rule) => Ok(json!({
                "fault_code": rule.fault_code,
                "rule_name": rule.name,
                "action": rule.action,
                "severity": rule.severity,
                "family": rule.family,
                "condition": rule.condition,
                "target_layer": rule.target_layer,
                "message": rule.message,
                "remediation": rule.remediation,
                "policy_bundle": policy.engine.version(),
            })),
            None => Err(FaceError::new(
                "unknown_fault_code",
                format!(
                    "Unknown fault code: {code} (bundle {})",
                    policy.engine.version()
                ),
            )),
        }
    }

    /// Verifies the configured audit log (the whole chain, in one pass); with
    /// `intent_id`, also counts that intent's events.
    pub fn audit_check(&self, intent_id: Option<&str>) -> Result<Value, FaceError> {
        let Some(audit) = &self.audit else {
            return Err(FaceError::new(
                "no_audit_log",
                "no audit log is configured (start the server with --audit-log FILE)",
            ));
        };
        audit.flush()?;
        let opts = VerifyOptions {
            intent_id: intent_id.map(str::to_owned),
            ..VerifyOptions::default()
        };
        let report = cfa::audit::verify_file(audit.path(), &opts, &mut |_| {}).map_err(|e| {
            FaceError::new(
                "audit_error",
                format!("cannot verify {}: {e}", audit.path().display()),
            )
        })?;
        Ok(report.to_json(&audit.path().display().to_string(), intent_id))
    }

    /// `{backends: [capabilities…]}` from the code-generation registry.
    pub fn list_backends() -> Value {
        let registry = BackendRegistry::with_builtins();
        let backends: Vec<Value> = registry
            .iter()
            .map(|b| {
                let c = b.capabilities();
                let mut v = serde_json::to_value(&c).unwrap_or(Value::Null);
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("cost_model_available".into(), Value::Bool(c.cost_model));
                    obj.insert(
                        "supported_languages".into(),
                        Value::from(c.languages.clone()),
                    );
                }
                v
            })
            .collect();
        json!({"backends": backends})
    }
}

fn names_only(name: &str) -> FaceError {
    FaceError::new(
        "unknown_policy_bundle",
        format!(
            "unknown policy bundle '{name}': this server accepts built-in bundle names only ({}, default)",
            load::builtin_list()
        ),
    )
}

fn load_named(name: &str) -> Result<LoadedPolicy, FaceError> {
    load::policy(Some(name)).map_err(|e| {
        FaceError::new(
            "invalid_policy_bundle",
            format!("cannot load policy bundle '{name}': {e}"),
        )
    })
}

fn signature_error(e: ParseError) -> FaceError {
    match e {
        ParseError::Syntax(s) => FaceError::new("invalid_json", s.to_string()),
        ParseError::Invalid(inv) => FaceError::new("invalid_signature", inv.to_string()),
    }
}

/// Whether an action counts as an error result for tool callers (replan and block).
pub fn is_refusal(action: PolicyAction) -> bool {
    action != PolicyAction::Approve
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn gov(access: BundleAccess) -> Governance {
        Governance::load(None, None, None, Durability::Never, access).unwrap()
    }

    #[test]
    fn http_callers_cannot_name_files() {
        let g = gov(BundleAccess::NamesOnly);
        let e = g.policy(Some("/etc/passwd")).unwrap_err();
        assert_eq!(e.code, "unknown_policy_bundle");
        assert!(g.policy(Some("prod-v1")).is_ok());
        assert_eq!(
            g.policy(Some("/nonexistent/x.yaml")).unwrap_err().code,
            "unknown_policy_bundle"
        );
    }

    #[test]
    fn builtins_are_cached_and_distinct() {
        let g = gov(BundleAccess::NamesOnly);
        let a = g.policy(Some("finops-strict-v1")).unwrap();
        let b = g.policy(Some("finops-strict-v1")).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.engine.version(), b.engine.version());
        assert_ne!(a.engine.version(), g.active().engine.version());
    }

    #[test]
    fn audit_check_without_log_is_an_error() {
        let g = gov(BundleAccess::NamesOnly);
        assert_eq!(g.audit_check(None).unwrap_err().code, "no_audit_log");
    }
}
