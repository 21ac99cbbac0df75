//! Φ formalize: catalog validation (strict mode), the environment consulted,
//! normalisation, grounding and confirmation.

use super::record::{Details, Failure};
use super::record::{known, qkey};
use super::{Run, Step};
use crate::config::Grounding;
use crate::faults;
use crate::result::{Phase, ResolutionSummary};
use cfa_resolve::{NormalizerInput, Resolution};
use cfa_types::{ExecutionContext, StateSignature};
use serde_json::Value;
use std::convert::Infallible;

const NORMALIZATION: Failure = Failure {
    event_type: "normalization_error",
    code: faults::NORMALIZER_FAILED,
    what: "Normalization failed",
    remediation: "Check the normaliser (model endpoint, keyword packs) and retry.",
};

const CONFIRMATION: Failure = Failure {
    event_type: "confirmation",
    code: faults::CONFIRMATION_FAILED,
    what: "Confirmation failed",
    remediation: "Fix the confirmation handler and resubmit the intent.",
};

impl Run<'_> {
    pub(super) fn formalize(&mut self, intent: &str) -> Step<StateSignature> {
        let k = self.k;
        let phase = Phase::Formalize;
        self.r.phases_run.push(phase);
        let strict = k.config.grounding == Grounding::Strict;
        if strict && !k.catalog_issues.is_empty() {
            let issues: Vec<Value> = k
                .catalog_issues
                .iter()
                .map(|i| Value::from(i.to_string()))
                .collect();
            return Err(self.block_recorded(
                phase,
                "Catalog validation failed.".to_owned(),
                vec![faults::catalog_invalid(&k.catalog_issues)],
                ("catalog_validation", "blocked"),
                Details::new().with(qkey!("issues"), Value::Array(issues)),
            ));
        }
        self.emit(
            phase,
            qkey!("environment_state_consulted"),
            qkey!("ok"),
            known!(
                "version_id" => k.config.context_registry_version_id.as_str(),
                "catalog_hash" => k.catalog_hash.as_str(),
            ),
        )?;

        let ctx = ExecutionContext {
            policy_bundle_version: k.config.policy.version().to_owned(),
            catalog_snapshot_version: k.config.catalog_snapshot_version.clone(),
            context_registry_version_id: k.config.context_registry_version_id.clone(),
        };
        let mut input =
            NormalizerInput::new(intent, &k.config.catalog, &self.r.intent_id).with_context(ctx);
        if strict {
            input = input.strict(k.config.min_confidence);
        }
        // The input borrows the result's intent id: call first, then record.
        let resolved = faults::guarded_try(|| k.normalizer.normalize(&input));
        let resolution = self.checked(
            phase,
            &NORMALIZATION,
            |d, e| d.with(qkey!("error"), e),
            resolved,
        )?;
        self.r.resolution = Some(ResolutionSummary::from(&resolution));
        self.set_signature_hashes(&resolution.signature);
        // The signature moves out of the resolution once it has been read: to the
        // caller, or into the result when the run stops here.
        match self.ground_and_confirm(phase, &resolution) {
            Ok(()) => Ok(resolution.signature),
            Err(stop) => {
                self.r.signature = Some(resolution.signature);
                Err(stop)
            }
        }
    }

    /// The resolution's event, its grounding and its confirmation.
    fn ground_and_confirm(&mut self, phase: Phase, resolution: &Resolution) -> Step<()> {
        let k = self.k;
        self.emit(
            phase,
            qkey!("semantic_resolution"),
            qkey!("resolved"),
            known!(
                "confidence" => resolution.confidence,
                "confirmation_mode" => resolution.confirmation_mode.as_str(),
                "signature_hash" => self.r.signature_hash.clone(),
            ),
        )?;

        let grounding = match k.config.grounding {
            Grounding::Strict => {
                cfa_resolve::faults::grounding_fault(resolution, Some(k.config.min_confidence))
            }
            Grounding::DatasetsOnly => cfa_resolve::faults::grounding_fault(resolution, None),
            Grounding::Lenient => None,
        };
        if let Some(fault) = grounding {
            let code = fault.code.clone();
            let reason = format!("{}: {}", fault.code, fault.message);
            return Err(self.block_recorded(
                phase,
                reason,
                vec![fault],
                ("strict_normalization", "blocked"),
                Details::new().with(qkey!("fault"), String::from(code)),
            ));
        }

        let mode = resolution.confirmation_mode.as_str();
        let outcome = self.call(
            phase,
            &CONFIRMATION,
            |d, e| d.with(qkey!("mode"), mode).with(qkey!("error"), e),
            || Ok::<_, Infallible>(cfa_resolve::confirm(resolution, k.confirmation.as_ref())),
        )?;
        let label = if outcome.approved {
            qkey!("approved")
        } else {
            qkey!("rejected")
        };
        self.emit(
            phase,
            qkey!("confirmation"),
            label,
            known!(
                "mode" => mode,
                "reason" => outcome.reason.as_str(),
            ),
        )?;
        if !outcome.approved {
            let reason = format!(
                "Confirmation rejected ({}): {}",
                resolution.confirmation_mode, outcome.reason
            );
            return Err(self.block(phase, reason, outcome.fault.into_iter().collect()));
        }
        Ok(())
    }
}
