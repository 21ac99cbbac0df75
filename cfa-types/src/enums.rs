//! The string enums of the reference (docs/compatibility.md#signature-json), serialised as their values.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $value:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $value)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The serialised value, e.g. `"silver"`.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $value),+ }
            }

            /// Parses the serialised value exactly (case-sensitive), as the reference does.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($value => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// Final state of a governed run.
    DecisionState {
        /// Approved with no warnings.
        Approved = "approved",
        /// Approved, but warnings were raised or a replan happened.
        ApprovedWithWarnings = "approved_with_warnings",
        /// Kept for shape compatibility; the reference never produces it.
        Replanned = "replanned",
        /// Blocked before or during execution.
        Blocked = "blocked",
        /// Some steps committed but nothing was published.
        PartiallyCommitted = "partially_committed",
        /// Failed steps were quarantined.
        Quarantined = "quarantined",
        /// Everything was rolled back.
        RolledBack = "rolled_back",
        /// Reference-only state (bug B1); this implementation reports promotion beside the decision.
        PromotionCandidate = "promotion_candidate",
        /// Published with failed steps (docs/differences.md#b6-degraded-is-its-own-final-state): a final state of its own.
        Degraded = "degraded",
    }
}

string_enum! {
    /// How much confirmation an intent needs before it is governed.
    ConfirmationMode {
        /// No confirmation.
        Auto = "auto",
        /// Soft confirmation (logged).
        Soft = "soft",
        /// Explicit confirmation by the handler.
        Hard = "hard",
        /// Escalation to a human.
        HumanEscalation = "human_escalation",
    }
}

string_enum! {
    /// Ambiguity of a resolved intent.
    AmbiguityLevel {
        /// Low ambiguity.
        Low = "low",
        /// Medium ambiguity.
        Medium = "medium",
        /// High ambiguity.
        High = "high",
    }
}

string_enum! {
    /// Which family of the fault taxonomy a fault belongs to.
    FaultFamily {
        /// Meaning of the intent (policy rules).
        Semantic = "semantic_faults",
        /// Static analysis of generated code.
        StaticSafety = "static_safety_faults",
        /// Behaviour at run time.
        RuntimeBehavioral = "runtime_behavioral_faults",
        /// The environment (cluster, network).
        Environmental = "environmental_faults",
    }
}

impl FaultFamily {
    /// The short name used in bundle files (`semantic`, `static`, `runtime`, `environment`).
    pub const fn short_name(self) -> &'static str {
        match self {
            FaultFamily::Semantic => "semantic",
            FaultFamily::StaticSafety => "static",
            FaultFamily::RuntimeBehavioral => "runtime",
            FaultFamily::Environmental => "environment",
        }
    }

    /// Parses a bundle file's short family name.
    pub fn from_short_name(s: &str) -> Option<Self> {
        match s {
            "semantic" => Some(FaultFamily::Semantic),
            "static" => Some(FaultFamily::StaticSafety),
            "runtime" => Some(FaultFamily::RuntimeBehavioral),
            "environment" => Some(FaultFamily::Environmental),
            _ => None,
        }
    }
}

string_enum! {
    /// Severity of a fault.
    FaultSeverity {
        /// Informational.
        Info = "info",
        /// A warning.
        Warning = "warning",
        /// High.
        High = "high",
        /// Critical.
        Critical = "critical",
    }
}

string_enum! {
    /// What a rule (and the decision) demands.
    PolicyAction {
        /// Go ahead.
        Approve = "approve",
        /// Change the signature and try again.
        Replan = "replan",
        /// Stop.
        Block = "block",
    }
}

string_enum! {
    /// Classification of a dataset.
    DatasetClassification {
        /// Public data.
        Public = "public",
        /// Internal data (the default).
        Internal = "internal",
        /// Sensitive data.
        Sensitive = "sensitive",
        /// High-volume data.
        HighVolume = "high_volume",
    }
}

string_enum! {
    /// Medallion layer a job writes to.
    TargetLayer {
        /// Raw layer.
        Bronze = "bronze",
        /// Refined layer.
        Silver = "silver",
        /// Curated layer.
        Gold = "gold",
    }
}

impl TargetLayer {
    /// Silver and gold are protected layers.
    pub const fn is_protected(self) -> bool {
        matches!(self, TargetLayer::Silver | TargetLayer::Gold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for l in TargetLayer::ALL {
            assert_eq!(TargetLayer::parse(l.as_str()), Some(*l));
        }
        assert_eq!(TargetLayer::parse("Silver"), None);
        assert_eq!(
            FaultFamily::from_short_name("runtime"),
            Some(FaultFamily::RuntimeBehavioral)
        );
        assert_eq!(
            serde_json::to_string(&DatasetClassification::HighVolume).unwrap(),
            "\"high_volume\""
        );
    }
}
