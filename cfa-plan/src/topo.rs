//! Topological ordering of plan steps (Kahn's algorithm, ties broken by step order, so
//! the order is deterministic).

use crate::model::{ExecutionPlan, PlanStep};
use std::collections::{HashMap, HashSet};

/// Why the steps cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CycleError {
    /// The dependencies form a cycle through these steps.
    #[error("cyclic dependency detected in execution plan between steps {steps:?}")]
    Cycle {
        /// Ids of the steps left unordered (the cycle and everything behind it).
        steps: Vec<String>,
    },
    /// A step depends on an id no step has.
    #[error("step '{step}' depends on unknown step '{dependency}'")]
    UnknownDependency {
        /// The step.
        step: String,
        /// The missing id.
        dependency: String,
    },
    /// Two steps share an id.
    #[error("duplicate step id '{step}' in execution plan")]
    DuplicateStep {
        /// The id.
        step: String,
    },
}

impl ExecutionPlan {
    /// The steps in an order where every step comes after all of its dependencies;
    /// among ready steps, the earlier one in `steps` goes first. Errors on a cycle, an
    /// unknown dependency or a duplicate id.
    pub fn topological_order(&self) -> Result<Vec<&PlanStep>, CycleError> {
        order_steps(&self.steps)
    }
}

/// Orders `steps` topologically (see [`ExecutionPlan::topological_order`]).
pub(crate) fn order_steps(steps: &[PlanStep]) -> Result<Vec<&PlanStep>, CycleError> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        if index.insert(s.id.as_str(), i).is_some() {
            return Err(CycleError::DuplicateStep { step: s.id.clone() });
        }
    }
    let mut remaining: Vec<usize> = vec![0; steps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        let mut seen = HashSet::new();
        for d in &s.depends_on {
            let Some(&j) = index.get(d.as_str()) else {
                return Err(CycleError::UnknownDependency {
                    step: s.id.clone(),
                    dependency: d.clone(),
                });
            };
            if seen.insert(j) {
                if let Some(r) = remaining.get_mut(i) {
                    *r += 1;
                }
                if let Some(list) = dependents.get_mut(j) {
                    list.push(i);
                }
            }
        }
    }
    let mut done = vec![false; steps.len()];
    let mut out = Vec::with_capacity(steps.len());
    // Repeatedly take the first ready step: O(n^2) on tiny plans, and the tie-break is
    // simply "earliest in `steps`".
    while out.len() < steps.len() {
        let next = (0..steps.len()).find(|&i| {
            !done.get(i).copied().unwrap_or(true) && remaining.get(i).copied() == Some(0)
        });
        let Some(i) = next else {
            let left = steps
                .iter()
                .zip(&done)
                .filter(|(_, d)| !**d)
                .map(|(s, _)| s.id.clone())
                .collect();
            return Err(CycleError::Cycle { steps: left });
        };
        if let Some(d) = done.get_mut(i) {
            *d = true;
        }
        if let Some(s) = steps.get(i) {
            out.push(s);
        }
        for &k in dependents.get(i).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(r) = remaining.get_mut(k) {
                *r = r.saturating_sub(1);
            }
        }
    }
    Ok(out)
}
