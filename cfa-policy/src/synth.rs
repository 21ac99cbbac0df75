//! Synthetic bundles for benchmarks and load tests.

use crate::builtins::BUILTIN_NAMES;
use crate::bundle::{PolicyBundle, RuleSpec};
use crate::condition::RuleParams;
use cfa_types::{FaultFamily, FaultSeverity, PolicyAction, TargetLayer};

/// A valid bundle of `n` rules cycling through the built-in conditions (except
/// `schema_mismatch`, which fires without a catalog), with rising thresholds and
/// alternating layer narrowing, so that a typical approved signature fires none.
pub fn generated_bundle(n: usize) -> PolicyBundle {
    let names: Vec<&str> = BUILTIN_NAMES
        .iter()
        .copied()
        .filter(|c| *c != "schema_mismatch")
        .collect();
    let rules = (0..n)
        .map(|i| {
            let condition = names
                .get(i % names.len())
                .copied()
                .unwrap_or("missing_merge_key");
            let mut params = RuleParams::default();
            match condition {
                "missing_partition" => params.min_size_gb = Some(1.0 + i as f64),
                "cost_budget_exceeded" => params.max_dbu = Some(50.0 + i as f64),
                "shuffle_budget_exceeded" => params.max_shuffle_gb = Some(100.0 + i as f64),
                _ => {}
            }
            if i % 3 == 1 {
                params.target_layer = Some(
                    TargetLayer::ALL
                        .get((i / 3) % 3)
                        .copied()
                        .unwrap_or(TargetLayer::Silver),
                );
            }
            RuleSpec {
                name: format!("rule_{i}_{condition}"),
                condition: condition.to_owned(),
                action: [
                    PolicyAction::Replan,
                    PolicyAction::Block,
                    PolicyAction::Approve,
                ]
                .get(i % 3)
                .copied()
                .unwrap_or(PolicyAction::Block),
                fault_code: format!("SYNTH_{i:04}_{}", condition.to_ascii_uppercase()),
                severity: FaultSeverity::ALL
                    .get(i % 4)
                    .copied()
                    .unwrap_or(FaultSeverity::High),
                family: FaultFamily::ALL
                    .get(i % 4)
                    .copied()
                    .unwrap_or(FaultFamily::Semantic),
                message: format!("Synthetic rule {i} ({condition})."),
                remediation: vec![format!("Fix synthetic rule {}", i % 17)],
                params,
            }
        })
        .collect();
    PolicyBundle {
        version: format!("synthetic-{n}"),
        description: Some("generated for benchmarks".into()),
        rules,
    }
}
