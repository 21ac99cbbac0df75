//! State projection (docs/compatibility.md#state-projection): what an execution outcome writes into the
//! context registry. Version ids and timestamps are injected.

use crate::error::LifecycleError;
use crate::store::StateStore;
use cfa_sandbox::{PublishState, RunOutcome};
use serde::{Deserialize, Serialize};

/// Metrics kept with a dataset's state.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DatasetMetrics {
    /// Rows written.
    pub rows_output: u64,
    /// Cost, DBU.
    pub cost_dbu: f64,
    /// Duration, seconds.
    pub duration_seconds: f64,
}

/// The state of one dataset in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetState {
    /// `published`, `degraded`, `committed_not_published` or `quarantined`.
    pub state: String,
    /// Signature hash of the run that wrote it.
    pub signature_hash: String,
    /// Target layer value.
    pub target_layer: String,
    /// When (ISO, injected).
    pub last_updated: String,
    /// Metrics of the run.
    pub metrics: DatasetMetrics,
    /// Quarantined steps (degraded, quarantined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined_steps: Option<Vec<String>>,
    /// Committed steps (degraded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_steps: Option<Vec<String>>,
}

/// One entry of the bounded execution history.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Intent id.
    pub intent_id: String,
    /// Publish state value.
    pub outcome: String,
    /// Signature hash.
    pub signature_hash: String,
    /// When (ISO).
    pub timestamp: String,
    /// Registry version after the run.
    pub version_id: String,
}

impl Clone for HistoryEntry {
    fn clone(&self) -> Self {
        HistoryEntry {
            intent_id: self.intent_id.clone(),
            outcome: self.outcome.clone(),
            signature_hash: self.signature_hash.clone(),
            timestamp: self.timestamp.clone(),
            version_id: self.version_id.clone(),
        }
    }

    /// Field by field, keeping `self`'s buffers where they are large enough (the
    /// history ring reuses the entry it drops).
    fn clone_from(&mut self, source: &Self) {
        self.intent_id.clone_from(&source.intent_id);
        self.outcome.clone_from(&source.outcome);
        self.signature_hash.clone_from(&source.signature_hash);
        self.timestamp.clone_from(&source.timestamp);
        self.version_id.clone_from(&source.version_id);
    }
}

/// How an outcome was projected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionType {
    /// Published.
    Full,
    /// Degraded.
    Degraded,
    /// Committed, not published.
    Partial,
    /// Quarantined.
    Quarantine,
    /// Rolled back: audit only, registry unchanged.
    Rollback,
}

impl ProjectionType {
    /// The serialised value (`full`, `degraded`, `partial`, `quarantine`, `rollback`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ProjectionType::Full => "full",
            ProjectionType::Degraded => "degraded",
            ProjectionType::Partial => "partial",
            ProjectionType::Quarantine => "quarantine",
            ProjectionType::Rollback => "rollback",
        }
    }
}

/// What one run contributes to the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionInput<'a> {
    /// Intent id.
    pub intent_id: &'a str,
    /// Target dataset (`sig.target_dataset_name()`).
    pub target: &'a str,
    /// Signature hash.
    pub signature_hash: &'a str,
    /// Target layer value.
    pub target_layer: &'a str,
    /// The execution outcome.
    pub outcome: &'a RunOutcome,
}

/// The result of [`project`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// Projection type.
    pub projection_type: ProjectionType,
    /// False for rollbacks.
    pub projected: bool,
    /// True for rollbacks.
    pub audit_only: bool,
    /// Target scope (`[target]`).
    pub target_scope: Vec<String>,
    /// Registry version after the projection.
    pub version_id: String,
    /// The dataset state written, if any.
    pub dataset_state: Option<DatasetState>,
}

/// Projects `input` into `store` with the injected `version_id` and `timestamp` (ISO),
/// and appends the run to the bounded history.
pub fn project(
    store: &dyn StateStore,
    input: &ProjectionInput<'_>,
    version_id: &str,
    timestamp: &str,
) -> Result<Projection, LifecycleError> {
    let o = input.outcome;
    let (ptype, quarantined, committed) = match &o.publish_state {
        PublishState::Published => (ProjectionType::Full, None, None),
        PublishState::Degraded { .. } => (
            ProjectionType::Degraded,
            Some(o.quarantined_steps.clone()),
            Some(o.committed_steps.clone()),
        ),
        PublishState::CommittedNotPublished => (ProjectionType::Partial, None, None),
        PublishState::Quarantined { .. } => (
            ProjectionType::Quarantine,
            Some(o.quarantined_steps.clone()),
            None,
        ),
        // A run that never started keeps nothing, like a rolled-back one.
        PublishState::RolledBack | PublishState::NotExecuted => {
            (ProjectionType::Rollback, None, None)
        }
    };
    let dataset_state = if ptype == ProjectionType::Rollback {
        None
    } else {
        let st = DatasetState {
            state: o.publish_state.as_str().to_owned(),
            signature_hash: input.signature_hash.to_owned(),
            target_layer: input.target_layer.to_owned(),
            last_updated: timestamp.to_owned(),
            metrics: DatasetMetrics {
                rows_output: o.metrics.rows_output,
                cost_dbu: o.metrics.cost_dbu,
                duration_seconds: o.metrics.duration_seconds,
            },
            quarantined_steps: quarantined,
            committed_steps: committed,
        };
        store.set_dataset_state(input.target, &st, version_id)?;
        Some(st)
    };
    // The version this projection wrote, not the store's read back: another connection
    // to the same database may write its own version between the two calls, and the
    // history entry would then name that run's version (a duplicate in the history). A
    // run that projects nothing keeps the store's version.
    let current = if dataset_state.is_some() {
        version_id.to_owned()
    } else {
        store.version_id()?
    };
    store.record_execution(&HistoryEntry {
        intent_id: input.intent_id.to_owned(),
        outcome: o.publish_state.as_str().to_owned(),
        signature_hash: input.signature_hash.to_owned(),
        timestamp: timestamp.to_owned(),
        version_id: current.clone(),
    })?;
    Ok(Projection {
        projection_type: ptype,
        projected: dataset_state.is_some(),
        audit_only: dataset_state.is_none(),
        target_scope: vec![input.target.to_owned()],
        version_id: current,
        dataset_state,
    })
}

#[cfg(test)]
mod tests {
    use super::ProjectionType;

    #[test]
    fn projection_type_names_are_the_serialised_values() {
        for t in [
            ProjectionType::Full,
            ProjectionType::Degraded,
            ProjectionType::Partial,
            ProjectionType::Quarantine,
            ProjectionType::Rollback,
        ] {
            assert_eq!(serde_json::to_value(t).ok(), Some(t.as_str().into()));
        }
    }
}
