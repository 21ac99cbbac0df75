//! The built-in default ruleset (docs/compatibility.md#default-ruleset), text for text. Rule 3 looks at
//! high-volume datasets only, so it has a condition of its own.

use crate::builtins::BuiltinCondition;
use crate::bundle::RuleSpec;
use crate::condition::RuleParams;
use crate::registry::CompiledCondition;
use cfa_types::{FaultFamily, FaultSeverity, PolicyAction};

/// Version label of the default ruleset.
pub const DEFAULT_VERSION: &str = "v1.0";

fn rule(
    name: &str,
    condition: BuiltinCondition,
    action: PolicyAction,
    fault_code: &str,
    severity: FaultSeverity,
    message: &str,
    remediation: &[&str],
) -> (RuleSpec, CompiledCondition) {
    (
        RuleSpec {
            name: name.to_owned(),
            condition: condition.name().to_owned(),
            action,
            fault_code: fault_code.to_owned(),
            severity,
            family: FaultFamily::Semantic,
            message: message.to_owned(),
            remediation: remediation.iter().map(|s| (*s).to_owned()).collect(),
            params: RuleParams::default(),
        },
        CompiledCondition::Builtin(condition),
    )
}

/// The seven default rules with their compiled conditions.
pub(crate) fn default_rules() -> Vec<(RuleSpec, CompiledCondition)> {
    use BuiltinCondition as C;
    use FaultSeverity::{Critical, High, Warning};
    use PolicyAction::{Block, Replan};
    vec![
        rule(
            "forbid_raw_pii_in_silver_or_gold",
            C::PiiInProtectedLayer,
            Replan,
            "GOVERNANCE_RAW_PII_IN_PROTECTED_LAYER",
            Critical,
            "PII detected without treatment in write to protected layer.",
            &[
                "Apply sha256() on PII columns before join",
                "Or use drop() to remove sensitive columns",
            ],
        ),
        rule(
            "require_pii_anonymization_declaration",
            C::PiiWithoutPolicy,
            Block,
            "GOVERNANCE_PII_WITHOUT_POLICY",
            Critical,
            "Datasets with PII present but no_pii_raw=False without justification.",
            &[
                "Set constraints.no_pii_raw=True explicitly",
                "Or add PII treatment justification to domain",
            ],
        ),
        rule(
            "require_partition_filter_for_high_volume",
            C::HighVolumeWithoutPartition,
            Replan,
            "FINOPS_MISSING_TEMPORAL_PREDICATE",
            High,
            "High volume dataset without partition filter \u{2014} full scan risk.",
            &[
                "Add constraints.partition_by with temporal column",
                "Example: partition_by: [processing_date]",
            ],
        ),
        rule(
            "warn_on_sensitive_without_partition",
            C::SensitiveWithoutPartition,
            Replan,
            "FINOPS_SENSITIVE_WITHOUT_PARTITION",
            Warning,
            "Sensitive dataset without declared partitioning.",
            &["Add partition_by to limit processing scope."],
        ),
        rule(
            "require_merge_key_for_silver_gold",
            C::MissingMergeKey,
            Block,
            "CONTRACT_MISSING_MERGE_KEY",
            Critical,
            "Write to Silver/Gold without merge_key \u{2014} direct append forbidden.",
            &[
                "Set constraints.merge_key_required=True",
                "Ensure the Planner uses merge, not append",
            ],
        ),
        rule(
            "enforce_type_checking",
            C::EnforceTypesDisabled,
            Replan,
            "CONTRACT_TYPE_ENFORCEMENT_DISABLED",
            High,
            "enforce_types=False in write to protected layer.",
            &[
                "Enable constraints.enforce_types=True",
                "Define expected schema in catalog",
            ],
        ),
        rule(
            "enforce_cost_ceiling",
            C::CostBudgetExceeded { max_dbu: 0.0 },
            Block,
            "FINOPS_INVALID_COST_CEILING",
            High,
            "max_cost_dbu invalid (must be > 0).",
            &["Set constraints.max_cost_dbu with positive value."],
        ),
    ]
}
