//! The decision service both long-running faces share (`cfa mcp` and `cfa serve`):
//! the configured bundle, catalog and audit log, bundle overrides by built-in name (never
//! by path: a request cannot make the server read a file), signature decisions through
//! the kernel's [`PolicyCheck`] (audited into the face's log when one is configured), and
//! the JSON shapes of decisions, rules, audit checks and backends. Everything here is
//! synchronous and pure except the audit append.

use super::audit_log::AuditLog;
use super::control::ControlFace;
use super::error::FaceError;
use super::ids::BufferedUuids;
use super::shadow::{self, Enforced, Shadow};
use crate::load::{self, LoadedCatalog, LoadedPolicy};
use cfa::audit::NewEvent;
use cfa::codegen::BackendRegistry;
use cfa::kernel::{Decision, IdSource, PolicyCheck};
use cfa::types::validate::ParseError;
use cfa::{Clock, Durability, SystemClock, VerifyOptions};
use cfa::{PolicyAction, StateSignature};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

/// Whether a request may name a bundle by file path. Both faces (`cfa serve`,
/// `cfa mcp`) accept built-in names only: a request never makes the server read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleAccess {
    /// Built-in names only.
    NamesOnly,
}

/// The configured governance artifacts of a face.
pub struct Governance {
    active: Arc<LoadedPolicy>,
    named: Mutex<HashMap<String, Arc<LoadedPolicy>>>,
    catalog: Option<LoadedCatalog>,
    audit: Option<AuditLog>,
    access: BundleAccess,
    ids: Box<dyn IdSource>,
    clock: Box<dyn Clock>,
    shadow: Option<Shadow>,
    control: Option<ControlFace>,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("active", &self.active)
            .field("catalog", &self.catalog)
            .field("audit", &self.audit)
            .field("access", &self.access)
            .finish_non_exhaustive()
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
            ids: Box::new(BufferedUuids),
            clock: Box::new(SystemClock),
            shadow: None,
            control: None,
        })
    }

    /// The same governance recording into `audit` instead (the PostgreSQL chain a
    /// replica shares).
    #[must_use]
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Puts every decision through the control plane of `control` (kill switches,
    /// approval tickets); `None` leaves decisions as the policy makes them.
    #[must_use]
    pub fn with_control(mut self, control: Option<ControlFace>) -> Self {
        self.control = control;
        self
    }

    /// The control plane, if configured.
    pub fn control(&self) -> Option<&ControlFace> {
        self.control.as_ref()
    }

    /// Evaluates `shadow`'s candidate bundle beside every decision from now on.
    pub fn set_shadow(&mut self, shadow: Shadow) {
        self.shadow = Some(shadow);
    }

    /// The shadow candidate, if any.
    pub fn shadow(&self) -> Option<&Shadow> {
        self.shadow.as_ref()
    }

    /// The candidate's view of a governed run's last policy evaluation (when a shadow is
    /// set and the run reached the policy): counted, a flip appended to the audit log.
    pub fn shadow_run(&self, run: &cfa::KernelResult, catalog: &cfa::Catalog) {
        let (Some(shadow), Some(signature), Some(result)) =
            (&self.shadow, &run.signature, run.bundle_policy_result())
        else {
            return;
        };
        let enforced = Enforced {
            intent_id: &run.intent_id,
            decision_id: &run.decision_id,
            content_hash: &run.content_hash,
            bundle: &run.policy_bundle,
            bundle_hash: &run.policy_bundle_hash,
            result,
        };
        let flip = shadow
            .observe(enforced, signature, Some(catalog), || {
                self.clock.now_isoformat()
            })
            .and_then(|o| o.flip);
        if let (Some(flip), Some(audit)) = (flip, &self.audit) {
            match audit.store().append(flip) {
                Ok(_) => audit.note_appended(1),
                Err(e) => shadow::unrecorded(&e),
            }
        }
    }

    /// The candidate's view of `decision` (when a shadow is set): counted, and its
    /// flip event to record, if any. Never changes `decision`.
    fn shadow_flip(&self, decision: &Decision, signature: &StateSignature) -> Option<NewEvent> {
        let shadow = self.shadow.as_ref()?;
        let enforced = Enforced {
            intent_id: &decision.intent_id,
            decision_id: &decision.decision_id,
            content_hash: &decision.content_hash,
            bundle: &decision.policy_bundle,
            bundle_hash: &decision.policy_bundle_hash,
            result: decision.policy_result(),
        };
        let catalog = self.catalog.as_ref().map(|c| &c.catalog);
        shadow
            .observe(enforced, signature, catalog, || self.clock.now_isoformat())?
            .flip
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
        signature: &StateSignature,
        bundle: Option<&str>,
        replan_count: u32,
    ) -> Result<Decision, FaceError> {
        let policy = self.policy(bundle)?;
        let check = PolicyCheck::new(&policy.engine, &*self.ids, &*self.clock)
            .bundle_hash(&policy.hash)
            .catalog(self.catalog.as_ref().map(|c| &c.catalog))
            .replan_count(replan_count)
            .control(self.control.as_ref().map(ControlFace::plane));
        let decision = match &self.audit {
            Some(audit) => audit.decide(check, signature),
            // Unaudited, a check cannot fail.
            None => check.decide(signature).map_err(|e| {
                FaceError::new("audit_error", format!("cannot record the decision: {e}"))
            }),
        }?;
        if let (Some(flip), Some(audit)) = (self.shadow_flip(&decision, signature), &self.audit) {
            match audit.store().append(flip) {
                Ok(_) => audit.note_appended(1),
                Err(e) => shadow::unrecorded(&e),
            }
        }
        Ok(decision)
    }

    /// [`Governance::decide`] for a caller on an async runtime: the decision is made on
    /// the calling task and, when an audit log is configured, its `policy_check` event
    /// (the record `PolicyCheck` appends, stamped by the same clock) joins the log's group
    /// commit; the decision comes back only once the event is appended.
    pub async fn decide_async(
        &self,
        signature: &StateSignature,
        bundle: Option<&str>,
        replan_count: u32,
    ) -> Result<Decision, FaceError> {
        let policy = self.policy(bundle)?;
        let unaudited = PolicyCheck::new(&policy.engine, &*self.ids, &*self.clock)
            .bundle_hash(&policy.hash)
            .catalog(self.catalog.as_ref().map(|c| &c.catalog))
            .replan_count(replan_count)
            .control(self.control.as_ref().map(ControlFace::plane))
            .decide(signature)
            .map_err(|e| FaceError::new("audit_error", format!("cannot record the decision: {e}")));
        let Some(audit) = &self.audit else {
            if let Ok(d) = &unaudited {
                // Counted; there is no log to record a flip in.
                let _ = self.shadow_flip(d, signature);
            }
            return unaudited;
        };
        let mut decision = unaudited?;
        // What a backtest replays this decision from, stored before its event.
        if let Some(inputs) = audit.inputs() {
            cfa::kernel::replay::record_inputs(
                inputs,
                signature,
                &decision.content_hash,
                self.catalog.as_ref().map(|c| &c.catalog),
            )
            .map_err(|e| {
                FaceError::new("audit_error", format!("cannot record the decision: {e}"))
            })?;
        }
        let ts = self.clock.now_isoformat();
        decision.audit_event_hash = audit.append_decision_async(&decision, &ts).await?;
        // The control plane's events (a ticket opened or spent) follow the decision's.
        for event in decision.control_events(&ts) {
            audit.append_async(event).await?;
        }
        if let Some(flip) = self.shadow_flip(&decision, signature)
            && let Err(e) = audit.append_async(flip).await
        {
            shadow::unrecorded(&e.message);
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
        let report = audit.verify(&opts).map_err(|e| {
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

    fn signature() -> StateSignature {
        Governance::parse_signature_value(&json!({
            "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
            "datasets": [{"name": "nfe", "classification": "high_volume", "size_gb": 4000,
                          "pii_columns": [], "partition_column": "processing_date",
                          "merge_keys": ["nfe_id"]}],
            "constraints": {"no_pii_raw": true, "merge_key_required": true,
                            "enforce_types": true, "partition_by": ["processing_date"],
                            "max_cost_dbu": 20.0, "custom": {}},
            "execution_context": {"policy_bundle_version": "prod-v1.0",
                                  "catalog_snapshot_version": "cat-2026-01",
                                  "context_registry_version_id": "v_initial"},
            "intent_id": "11111111-2222-3333-4444-555555555555",
            "source_intent_raw": "Reconcile NFe into Silver"
        }))
        .unwrap()
    }

    #[test]
    fn decisions_are_audited_into_the_open_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let g = Governance::load(
            None,
            None,
            Some(&log),
            Durability::Always,
            BundleAccess::NamesOnly,
        )
        .unwrap();
        let sig = signature();
        let a = g.decide(&sig, None, 0).unwrap();
        let b = g.decide(&sig, Some("prod-v1"), 0).unwrap();
        assert_ne!(a.decision_id, b.decision_id);
        assert_eq!(g.audit().unwrap().chain_length(), 2);
        let report = g.audit_check(None).unwrap();
        assert_eq!(report["chain_intact"], json!(true), "{report}");
        assert_eq!(report["total_events"], json!(2));
        let store = g.audit().unwrap().store();
        assert_eq!(store.tail_hash().unwrap(), b.audit_event_hash);
        let doc = b.document();
        assert_eq!(doc["intent_id"], json!(sig.intent_id));
        assert_eq!(doc["signature_hash"], json!(sig.signature_hash()));
        assert_eq!(doc["audit_event_hash"], json!(b.audit_event_hash));
        assert_eq!(doc["policy_bundle"], json!(b.policy_bundle));
    }

    fn audited(log: &Path) -> Governance {
        let mut g = Governance::load(
            None,
            None,
            Some(log),
            Durability::Batch(4),
            BundleAccess::NamesOnly,
        )
        .unwrap();
        g.ids = Box::new(cfa::kernel::SequentialIds::new());
        g.clock = Box::new(cfa::audit::FixedClock(
            "2026-01-01T00:00:00.000000+00:00".into(),
        ));
        g
    }

    #[test]
    fn async_decisions_write_exactly_what_blocking_ones_write() {
        let dir = tempfile::tempdir().unwrap();
        let (sync_log, async_log) = (
            dir.path().join("sync.jsonl"),
            dir.path().join("async.jsonl"),
        );
        let (gs, ga) = (audited(&sync_log), audited(&async_log));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let sig = signature();
        for bundle in [None, Some("prod-v1"), Some("finops-strict-v1")] {
            let s = gs.decide(&sig, bundle, 1).unwrap();
            let a = rt.block_on(ga.decide_async(&sig, bundle, 1)).unwrap();
            assert_eq!(s.document(), a.document());
            assert!(!a.audit_event_hash.is_empty());
        }
        gs.audit().unwrap().flush().unwrap();
        ga.audit().unwrap().flush().unwrap();
        assert_eq!(
            std::fs::read(&sync_log).unwrap(),
            std::fs::read(&async_log).unwrap()
        );
        assert_eq!(ga.audit().unwrap().chain_length(), 3);
    }

    #[test]
    fn concurrent_async_decisions_form_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let g = Arc::new(
            Governance::load(
                None,
                None,
                Some(&log),
                Durability::Batch(8),
                BundleAccess::NamesOnly,
            )
            .unwrap(),
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let hashes: Vec<String> = rt.block_on(async {
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let g = Arc::clone(&g);
                    tokio::spawn(async move {
                        let mut out = Vec::new();
                        for _ in 0..10 {
                            out.push(g.decide_async(&signature(), None, 0).await.unwrap());
                        }
                        out
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap().into_iter().map(|d| d.audit_event_hash));
            }
            all
        });
        let report = g.audit_check(None).unwrap();
        assert_eq!(report["chain_intact"], json!(true), "{report}");
        assert_eq!(report["total_events"], json!(640));
        assert_eq!(g.audit().unwrap().chain_length(), 640);
        let text = std::fs::read_to_string(&log).unwrap();
        for h in &hashes {
            assert!(
                text.contains(h.as_str()),
                "every returned event is in the log"
            );
        }
    }

    #[test]
    fn unaudited_decisions_carry_no_event_hash() {
        let g = gov(BundleAccess::NamesOnly);
        let d = g.decide(&signature(), None, 0).unwrap();
        assert_eq!(d.audit_event_hash, "");
        assert!(!d.decision_id.is_empty());
    }

    #[test]
    fn audit_check_without_log_is_an_error() {
        let g = gov(BundleAccess::NamesOnly);
        assert_eq!(g.audit_check(None).unwrap_err().code, "no_audit_log");
    }
}
