//! Topological ordering of plan steps (Kahn's algorithm, ties broken by step order, so
//! the order is deterministic).

use crate::model::{ExecutionPlan, PlanStep};

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
    // Plans are small and the ordering below is quadratic anyway: ids are looked up
    // by scanning, which beats hashing them (no map, no per-step set).
    for (i, s) in steps.iter().enumerate() {
        if steps.iter().take(i).any(|e| e.id == s.id) {
            return Err(CycleError::DuplicateStep { step: s.id.clone() });
        }
    }
    // Plans come ordered already (every dependency an earlier step): the loop below then
    // takes each step in turn (it is the first not taken, and ready), so that order is
    // the answer, without the counts and lists. Anything else (an unknown dependency, a
    // step depending on itself or a later one) goes the general way.
    let ordered = steps.iter().enumerate().all(|(i, s)| {
        s.depends_on
            .iter()
            .all(|d| steps.iter().take(i).any(|e| e.id == *d))
    });
    if ordered {
        return Ok(steps.iter().collect());
    }
    in_dependency_order(steps)
}

/// [`order_steps`] for steps with unique ids, by counting each step's dependencies left.
fn in_dependency_order(steps: &[PlanStep]) -> Result<Vec<&PlanStep>, CycleError> {
    let mut remaining: Vec<usize> = vec![0; steps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for (n, d) in s.depends_on.iter().enumerate() {
            // Ids are unique (checked above), so the position is the step.
            let Some(j) = steps.iter().position(|e| e.id == *d) else {
                return Err(CycleError::UnknownDependency {
                    step: s.id.clone(),
                    dependency: d.clone(),
                });
            };
            // A dependency listed twice counts once.
            let first = !s.depends_on.iter().take(n).any(|e| e == d);
            if first {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExtractConfig, StepConfig, StepKind};

    fn step(id: &str, deps: &[&str]) -> PlanStep {
        PlanStep {
            id: id.into(),
            kind: StepKind::Extract,
            source: None,
            target: None,
            config: StepConfig::Extract(ExtractConfig {
                dataset: id.into(),
                columns: None,
            }),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn ids(steps: &[PlanStep]) -> Result<Vec<&str>, CycleError> {
        order_steps(steps).map(|o| o.iter().map(|s| s.id.as_str()).collect())
    }

    /// Every order of `steps`, each with every step's dependencies (ids of other steps).
    fn permutations(steps: &[PlanStep]) -> Vec<Vec<PlanStep>> {
        if steps.is_empty() {
            return vec![Vec::new()];
        }
        let mut out = Vec::new();
        for i in 0..steps.len() {
            let mut rest = steps.to_vec();
            let first = rest.remove(i);
            for mut tail in permutations(&rest) {
                tail.insert(0, first.clone());
                out.push(tail);
            }
        }
        out
    }

    #[test]
    fn an_ordered_plan_takes_the_same_order_the_general_way_gives() {
        // A diamond with a tail and a free step, in every order of its five steps: the
        // answer (ordered or not, an error or not) is the general way's.
        let steps = [
            step("a", &[]),
            step("b", &["a"]),
            step("c", &["a", "a"]),
            step("d", &["c", "b"]),
            step("e", &[]),
        ];
        let mut ordered = 0;
        for p in permutations(&steps) {
            let general =
                in_dependency_order(&p).map(|o| o.iter().map(|s| s.id.clone()).collect::<Vec<_>>());
            let fast = ids(&p).map(|o| o.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            assert_eq!(fast, general);
            let as_given: Vec<String> = p.iter().map(|s| s.id.clone()).collect();
            if fast.as_ref() == Ok(&as_given) {
                ordered += 1;
            }
        }
        assert!(ordered > 0);
        // A self-dependency and an unknown or later dependency still fail as before.
        assert!(matches!(
            ids(&[step("a", &["a"])]),
            Err(CycleError::Cycle { .. })
        ));
        assert!(matches!(
            ids(&[step("a", &[]), step("b", &["z"])]),
            Err(CycleError::UnknownDependency { .. })
        ));
        assert_eq!(
            ids(&[step("b", &["a"]), step("a", &[])]),
            Ok(vec!["a", "b"])
        );
    }

    #[test]
    fn ties_go_to_the_earlier_step_and_repeated_dependencies_count_once() {
        let steps = [
            step("c", &["a", "a", "b"]),
            step("b", &[]),
            step("a", &["b", "b"]),
        ];
        assert_eq!(ids(&steps), Ok(vec!["b", "a", "c"]));
        let steps = [step("x", &[]), step("y", &[]), step("z", &["y", "x"])];
        assert_eq!(ids(&steps), Ok(vec!["x", "y", "z"]));
    }

    #[test]
    fn errors_name_the_offending_step() {
        let dup = [step("a", &[]), step("b", &[]), step("a", &["b"])];
        assert_eq!(
            ids(&dup),
            Err(CycleError::DuplicateStep { step: "a".into() })
        );
        let unknown = [step("a", &[]), step("b", &["a", "q"])];
        assert_eq!(
            ids(&unknown),
            Err(CycleError::UnknownDependency {
                step: "b".into(),
                dependency: "q".into(),
            })
        );
        let cycle = [step("a", &["b"]), step("b", &["a"]), step("c", &[])];
        assert_eq!(
            ids(&cycle),
            Err(CycleError::Cycle {
                steps: vec!["a".into(), "b".into()],
            })
        );
        assert_eq!(ids(&[]), Ok(Vec::new()));
    }
}
