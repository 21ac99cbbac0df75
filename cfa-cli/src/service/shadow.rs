//! Shadow mode (`--shadow-bundle B` on `cfa serve`, `cfa evaluate` and `cfa policy
//! check`): a candidate bundle decides beside the enforcing one on every decision and
//! never changes the answer. Each flip (a different action or different fault codes) is
//! recorded as one `shadow_flip` event (stage `shadow`) in the audit log when one is
//! configured, and counted (`cfa_shadow_decisions_total`, `cfa_shadow_flips_total{from,to}`
//! on `cfa serve`'s `/metrics`). Bundle is compared with bundle: the enforcing side is
//! the bundle's own result before the control plane, so a kill switch or an approval
//! ticket is never a flip. A candidate that fails (a plugin that panics) or whose
//! flip cannot be recorded is reported on stderr and never touches the enforced answer.

use crate::load::{self, LoadedPolicy};
use cfa::audit::NewEvent;
use cfa::kernel::replay::flipped;
use cfa::{Catalog, PolicyResult, StateSignature};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::Value;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Prometheus labels (`from`, `to`).
pub type Labels = Vec<(String, String)>;

/// The enforcing side of one decision, as the shadow compares it.
#[derive(Debug, Clone, Copy)]
pub struct Enforced<'a> {
    /// The signature's intent id.
    pub intent_id: &'a str,
    /// The decision id (`""` when there is none).
    pub decision_id: &'a str,
    /// The signature's content hash.
    pub content_hash: &'a str,
    /// The enforcing bundle's version.
    pub bundle: &'a str,
    /// The enforcing bundle's hash.
    pub bundle_hash: &'a str,
    /// The enforcing bundle's own result, before the control plane
    /// (`Decision::policy_result`, `KernelResult::bundle_policy_result`): a kill
    /// switch or an approval ticket changes the enforced answer, not the bundle's, so
    /// only a difference between the two bundles is a flip.
    pub result: &'a PolicyResult,
}

/// A candidate bundle evaluated beside the enforcing one, with its counters.
#[derive(Debug)]
pub struct Shadow {
    policy: LoadedPolicy,
    /// Decisions the candidate evaluated.
    pub decisions: Counter,
    /// Flips, by enforcing (`from`) and candidate (`to`) action.
    pub flips: Family<Labels, Counter>,
}

/// What the candidate decided on one decision.
#[derive(Debug, Clone)]
pub struct ShadowOutcome {
    /// The candidate's result.
    pub candidate: PolicyResult,
    /// The `shadow_flip` event to record, when the candidate differs.
    pub flip: Option<NewEvent>,
}

fn codes(r: &PolicyResult) -> Value {
    Value::Array(
        r.faults
            .iter()
            .map(|f| Value::String(f.code.to_string()))
            .collect(),
    )
}

impl Shadow {
    /// Loads the candidate (a bundle file or a built-in name).
    pub fn load(spec: &str) -> miette::Result<Self> {
        Ok(Self::new(load::policy(Some(spec))?))
    }

    /// A shadow of `policy`.
    pub fn new(policy: LoadedPolicy) -> Self {
        Shadow {
            policy,
            decisions: Counter::default(),
            flips: Family::default(),
        }
    }

    /// The candidate bundle.
    pub fn policy(&self) -> &LoadedPolicy {
        &self.policy
    }

    /// Evaluates the candidate on what the enforcing bundle decided, counts it, and
    /// builds the `shadow_flip` event (stamped `timestamp`) when the two differ. `None`
    /// when the candidate failed: the enforcing answer stands either way.
    pub fn observe(
        &self,
        enforced: Enforced<'_>,
        signature: &StateSignature,
        catalog: Option<&Catalog>,
        timestamp: impl FnOnce() -> String,
    ) -> Option<ShadowOutcome> {
        let replan_count = enforced.result.replan_count;
        let candidate = match catch_unwind(AssertUnwindSafe(|| {
            self.policy
                .engine
                .evaluate_with_catalog(signature, catalog, replan_count)
        })) {
            Ok(r) => r,
            Err(_) => {
                eprintln!(
                    "cfa: shadow bundle {} failed on intent {}; the enforced decision stands",
                    self.policy.engine.version(),
                    enforced.intent_id
                );
                return None;
            }
        };
        self.decisions.inc();
        if !flipped(enforced.result, &candidate) {
            return Some(ShadowOutcome {
                candidate,
                flip: None,
            });
        }
        let (from, to) = (enforced.result.action.as_str(), candidate.action.as_str());
        self.flips
            .get_or_create(&vec![
                ("from".to_owned(), from.to_owned()),
                ("to".to_owned(), to.to_owned()),
            ])
            .inc();
        let event = NewEvent::new(
            enforced.intent_id.to_owned(),
            "shadow",
            "shadow_flip",
            to.to_owned(),
            timestamp(),
        )
        .detail("decision_id", enforced.decision_id.to_owned())
        .detail("content_hash", enforced.content_hash.to_owned())
        .detail("enforcing_action", from.to_owned())
        .detail("enforcing_faults", codes(enforced.result))
        .detail("enforcing_bundle", enforced.bundle.to_owned())
        .detail("enforcing_bundle_hash", enforced.bundle_hash.to_owned())
        .detail("candidate_action", to.to_owned())
        .detail("candidate_faults", codes(&candidate))
        .detail("candidate_bundle", self.policy.engine.version().to_owned())
        .detail("candidate_bundle_hash", self.policy.hash.clone());
        Some(ShadowOutcome {
            candidate,
            flip: Some(event),
        })
    }
}

/// For the one-shot commands (`cfa policy check`, `cfa evaluate`): observes one
/// decision, says on stderr when the candidate differs, and appends the flip event to
/// `store` when given. Never fails: the enforced answer stands.
pub fn observe_once(
    shadow: &Shadow,
    enforced: Enforced<'_>,
    signature: &StateSignature,
    catalog: Option<&Catalog>,
    store: Option<&dyn cfa::AuditStore>,
    clock: &dyn cfa::Clock,
) {
    let Some(outcome) = shadow.observe(enforced, signature, catalog, || clock.now_isoformat())
    else {
        return;
    };
    let Some(flip) = outcome.flip else {
        return;
    };
    let codes: Vec<&str> = outcome
        .candidate
        .faults
        .iter()
        .map(|f| f.code.as_str())
        .collect();
    eprintln!(
        "shadow: {} would {} [{}] where the enforcing bundle decided {}",
        shadow.policy().engine.version(),
        outcome.candidate.action.as_str(),
        codes.join(", "),
        enforced.result.action.as_str()
    );
    if let Some(store) = store
        && let Err(e) = store.append(flip)
    {
        unrecorded(&e);
    }
}

/// Says on stderr that a flip could not be recorded (the enforced answer stands).
pub fn unrecorded(e: &dyn std::fmt::Display) {
    eprintln!("cfa: cannot record a shadow flip in the audit log: {e}");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use cfa::PolicyAction;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;
    use serde_json::json;

    fn sig(partition: &[&str]) -> StateSignature {
        StateSignature::from_value(&json!({
            "domain": "fiscal", "intent": "ingest", "target_layer": "silver",
            "datasets": [{"name": "nfe", "classification": "high_volume", "size_gb": 4000,
                          "pii_columns": [], "partition_column": "processing_date",
                          "merge_keys": ["nfe_id"]}],
            "constraints": {"partition_by": partition, "merge_key_required": true},
            "intent_id": "i-1"
        }))
        .unwrap()
    }

    #[test]
    fn flips_are_counted_and_become_events() {
        let enforcing = load::policy(None).unwrap();
        let shadow = Shadow::load("finops-strict-v1").unwrap();
        let mut registry = Registry::default();
        registry.register("cfa_shadow_decisions", "d", shadow.decisions.clone());
        registry.register("cfa_shadow_flips", "f", shadow.flips.clone());
        let mut flips = 0;
        for s in [sig(&[]), sig(&["processing_date"])] {
            let r = enforcing.engine.evaluate(&s, 0);
            let e = Enforced {
                intent_id: "i-1",
                decision_id: "d-1",
                content_hash: "c",
                bundle: "v1.0",
                bundle_hash: "",
                result: &r,
            };
            let out = shadow.observe(e, &s, None, || "t".into()).unwrap();
            assert_eq!(out.flip.is_some(), flipped(&r, &out.candidate));
            if let Some(ev) = out.flip {
                flips += 1;
                let ev = ev.seal("");
                assert_eq!(
                    (ev.stage.as_str(), ev.event_type.as_str()),
                    ("shadow", "shadow_flip")
                );
                assert_eq!(ev.details["enforcing_action"], json!(r.action));
                assert_eq!(ev.details["candidate_action"], json!(out.candidate.action));
                assert_eq!(
                    ev.details["candidate_bundle_hash"],
                    json!(shadow.policy().hash)
                );
            }
        }
        assert_eq!(shadow.decisions.get(), 2);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(text.contains("cfa_shadow_decisions_total 2"), "{text}");
        let counted: u64 = shadow
            .flips
            .get_or_create(&vec![
                ("from".into(), "approve".into()),
                ("to".into(), "approve".into()),
            ])
            .get();
        assert_eq!(counted, 0);
        assert!(
            flips > 0,
            "finops-strict-v1 differs from the default rules on one of them"
        );
        // The same bundle as candidate never flips.
        let same = Shadow::new(load::policy(None).unwrap());
        let s = sig(&[]);
        let r = enforcing.engine.evaluate(&s, 0);
        assert_eq!(r.action, PolicyAction::Replan);
        let e = Enforced {
            intent_id: "i",
            decision_id: "",
            content_hash: "",
            bundle: "",
            bundle_hash: "",
            result: &r,
        };
        assert!(
            same.observe(e, &s, None, || "t".into())
                .unwrap()
                .flip
                .is_none()
        );
    }
}
