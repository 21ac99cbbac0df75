//! The built-in default ruleset (docs/compatibility.md#default-ruleset), text for text. Rule 3 looks at
//! high-volume datasets only, so it has a condition of its own. The rules' texts are
//! `'static`, so their faults are built on static strings: a decision clones them
//! without touching a reference count (docs/architecture.md#the-decision-path).

use crate::builtins::BuiltinCondition;
use crate::bundle::RuleSpec;
use crate::condition::RuleParams;
use crate::engine::STAGE;
use crate::registry::CompiledCondition;
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction, SharedList, SharedStr};

/// Version label of the default ruleset.
pub const DEFAULT_VERSION: &str = "v1.0";

/// A default rule, its compiled condition, its fault, and that fault's static parts.
pub(crate) type DefaultRule = (RuleSpec, CompiledCondition, Fault, StaticFault);

/// A fault whose texts are all `'static`, as the default rules' are: a decision builds
/// it from these fields instead of cloning the template field by field, asking each
/// text whether it is static or counted (docs/architecture.md#the-decision-path).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StaticFault {
    pub(crate) code: &'static str,
    pub(crate) family: FaultFamily,
    pub(crate) severity: FaultSeverity,
    pub(crate) message: &'static str,
    pub(crate) mandatory_action: PolicyAction,
    pub(crate) remediation: &'static [SharedStr],
}

impl StaticFault {
    /// The fault, equal to the rule's template.
    #[inline]
    pub(crate) fn fault(&self) -> Fault {
        Fault {
            code: s(self.code),
            family: self.family,
            severity: self.severity,
            stage: s(STAGE),
            message: s(self.message),
            mandatory_action: self.mandatory_action,
            remediation: SharedList::from_static(self.remediation),
            detected_before_execution: true,
        }
    }
}

const fn s(text: &'static str) -> SharedStr {
    SharedStr::from_static(text)
}

/// The remediation steps of each default rule, named after the rule.
const FORBID_RAW_PII_IN_SILVER_OR_GOLD: &[SharedStr] = &[
    s("Apply sha256() on PII columns before join"),
    s("Or use drop() to remove sensitive columns"),
];
const REQUIRE_PII_ANONYMIZATION_DECLARATION: &[SharedStr] = &[
    s("Set constraints.no_pii_raw=True explicitly"),
    s("Or add PII treatment justification to domain"),
];
const REQUIRE_PARTITION_FILTER_FOR_HIGH_VOLUME: &[SharedStr] = &[
    s("Add constraints.partition_by with temporal column"),
    s("Example: partition_by: [processing_date]"),
];
const WARN_ON_SENSITIVE_WITHOUT_PARTITION: &[SharedStr] =
    &[s("Add partition_by to limit processing scope.")];
const REQUIRE_MERGE_KEY_FOR_SILVER_GOLD: &[SharedStr] = &[
    s("Set constraints.merge_key_required=True"),
    s("Ensure the Planner uses merge, not append"),
];
const ENFORCE_TYPE_CHECKING: &[SharedStr] = &[
    s("Enable constraints.enforce_types=True"),
    s("Define expected schema in catalog"),
];
const ENFORCE_COST_CEILING: &[SharedStr] =
    &[s("Set constraints.max_cost_dbu with positive value.")];

fn rule(
    name: &str,
    condition: BuiltinCondition,
    action: PolicyAction,
    fault_code: &'static str,
    severity: FaultSeverity,
    message: &'static str,
    remediation: &'static [SharedStr],
) -> DefaultRule {
    let family = FaultFamily::Semantic;
    (
        RuleSpec {
            name: name.to_owned(),
            condition: condition.name().to_owned(),
            action,
            fault_code: fault_code.to_owned(),
            severity,
            family,
            message: message.to_owned(),
            remediation: remediation.iter().map(ToString::to_string).collect(),
            params: RuleParams::default(),
        },
        CompiledCondition::Builtin(condition),
        Fault {
            code: s(fault_code),
            family,
            severity,
            stage: s(STAGE),
            message: s(message),
            mandatory_action: action,
            remediation: SharedList::from_static(remediation),
            detected_before_execution: true,
        },
        StaticFault {
            code: fault_code,
            family,
            severity,
            message,
            mandatory_action: action,
            remediation,
        },
    )
}

/// The seven default rules with their compiled conditions and faults.
pub(crate) fn default_rules() -> Vec<DefaultRule> {
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
            FORBID_RAW_PII_IN_SILVER_OR_GOLD,
        ),
        rule(
            "require_pii_anonymization_declaration",
            C::PiiWithoutPolicy,
            Block,
            "GOVERNANCE_PII_WITHOUT_POLICY",
            Critical,
            "Datasets with PII present but no_pii_raw=False without justification.",
            REQUIRE_PII_ANONYMIZATION_DECLARATION,
        ),
        rule(
            "require_partition_filter_for_high_volume",
            C::HighVolumeWithoutPartition,
            Replan,
            "FINOPS_MISSING_TEMPORAL_PREDICATE",
            High,
            "High volume dataset without partition filter \u{2014} full scan risk.",
            REQUIRE_PARTITION_FILTER_FOR_HIGH_VOLUME,
        ),
        rule(
            "warn_on_sensitive_without_partition",
            C::SensitiveWithoutPartition,
            Replan,
            "FINOPS_SENSITIVE_WITHOUT_PARTITION",
            Warning,
            "Sensitive dataset without declared partitioning.",
            WARN_ON_SENSITIVE_WITHOUT_PARTITION,
        ),
        rule(
            "require_merge_key_for_silver_gold",
            C::MissingMergeKey,
            Block,
            "CONTRACT_MISSING_MERGE_KEY",
            Critical,
            "Write to Silver/Gold without merge_key \u{2014} direct append forbidden.",
            REQUIRE_MERGE_KEY_FOR_SILVER_GOLD,
        ),
        rule(
            "enforce_type_checking",
            C::EnforceTypesDisabled,
            Replan,
            "CONTRACT_TYPE_ENFORCEMENT_DISABLED",
            High,
            "enforce_types=False in write to protected layer.",
            ENFORCE_TYPE_CHECKING,
        ),
        rule(
            "enforce_cost_ceiling",
            C::CostBudgetExceeded { max_dbu: 0.0 },
            Block,
            "FINOPS_INVALID_COST_CEILING",
            High,
            "max_cost_dbu invalid (must be > 0).",
            ENFORCE_COST_CEILING,
        ),
    ]
}
