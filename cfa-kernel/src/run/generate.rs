//! Π generate: plan, code generation and static validation.

use super::record::{Failure, reason_details};
use super::record::{known, qkey};
use super::{Run, Step, codes, joined_codes};
use crate::faults;
use crate::result::{ArtifactSummary, Phase};
use cfa_codegen::GeneratedArtifact;
use cfa_plan::ExecutionPlan;
use cfa_types::{Fault, StateSignature};
use std::convert::Infallible;
use std::sync::Arc;

const PLAN: Failure = Failure {
    event_type: "plan_generated",
    code: faults::PLANNER_FAILED,
    what: "Planning failed",
    remediation: "Make the intent plannable (datasets, keys, catalog columns) and retry.",
};

const BACKEND: Failure = Failure {
    event_type: "code_generated",
    code: faults::CODEGEN_FAILED,
    what: "Code generation failed",
    remediation: "Configure a registered backend.",
};

const CODE: Failure = Failure {
    event_type: "code_generated",
    code: faults::CODEGEN_FAILED,
    what: "Code generation failed",
    remediation: "Fix the dataset or column names the backend refused, or choose another backend.",
};

const VALIDATION: Failure = Failure {
    event_type: "static_validation",
    code: faults::CODEGEN_FAILED,
    what: "Static validation failed to run",
    remediation: "Fix the backend's validator and retry.",
};

/// `text.lines().count()`, counted a byte at a time (the compiler vectorises it): one
/// line per `\n`, plus a last line without one.
fn count_lines(text: &str) -> usize {
    let breaks = text.bytes().filter(|b| *b == b'\n').count();
    breaks + usize::from(!text.is_empty() && !text.ends_with('\n'))
}

/// Texts longer than this are counted without the memo of [`line_count`].
const MAX_COUNTED_TEXT: usize = 64 * 1024;

/// Texts [`line_count`] remembers per thread.
const COUNTED_TEXTS: usize = 4;

/// The thread's last counted texts and their counts (on the heap, so that the thread
/// local itself stays small: the Python extension's thread locals share the small
/// static TLS block of a `dlopen`ed library), and the slot the next one takes.
type Counted = (Vec<(String, usize)>, usize);

thread_local! {
    /// The last [`COUNTED_TEXTS`] texts [`line_count`] counted on this thread (each at
    /// most [`MAX_COUNTED_TEXT`] bytes), replaced round robin.
    static COUNTED: std::cell::RefCell<Counted> =
        const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// [`count_lines`], remembered for the thread's last few texts: a cached artifact
/// hands the same script to every run of a signature, and comparing it costs a
/// fraction of counting it. The count is a pure function of the text, which is the
/// key, compared in full; memory is bounded by [`COUNTED_TEXTS`] ×
/// [`MAX_COUNTED_TEXT`] per thread.
fn line_count(text: &str) -> usize {
    if text.len() > MAX_COUNTED_TEXT {
        return count_lines(text);
    }
    COUNTED
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut counted) => {
                let (texts, next) = &mut *counted;
                if let Some((_, n)) = texts.iter().find(|(t, _)| t == text) {
                    return *n;
                }
                let n = count_lines(text);
                if texts.len() < COUNTED_TEXTS {
                    texts.push((text.to_owned(), n));
                } else {
                    if let Some(slot) = texts.get_mut(*next) {
                        slot.0.clear();
                        slot.0.push_str(text);
                        slot.1 = n;
                    }
                    *next = (*next + 1) % COUNTED_TEXTS;
                }
                n
            }
            Err(_) => count_lines(text),
        })
        .unwrap_or_else(|_| count_lines(text))
}

/// An artifact, its hash and its main file's line count.
type HashedArtifact = (Arc<GeneratedArtifact>, String, usize);

/// Artifacts [`hash_and_lines`] remembers per thread.
const HASHED_ARTIFACTS: usize = 4;

thread_local! {
    /// The last [`HASHED_ARTIFACTS`] artifacts [`hash_and_lines`] read on this thread
    /// (held, so that each stays the same allocation) with their hash and line count,
    /// replaced round robin, and the slot the next one takes; on the heap, so that the
    /// thread local stays small (see [`COUNTED`]).
    static HASHED: std::cell::RefCell<(Vec<HashedArtifact>, usize)> =
        const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// `artifact`'s hash and its main file's line count. A backend that caches its
/// artifacts (cfa-codegen's `generate_shared`) hands every run of a plan the same
/// `Arc`, never changed once shared, so a recent one is recognised by its address
/// (the memo holds a handle, so the address cannot be reused for another artifact
/// while it is remembered) and its two figures are not computed again.
fn hash_and_lines(artifact: &Arc<GeneratedArtifact>) -> (String, usize) {
    let compute = || {
        let lines = artifact.main_file().map_or(0, |f| line_count(&f.content));
        (artifact.artifact_hash(), lines)
    };
    HASHED
        .try_with(|cell| {
            let Ok(mut recent) = cell.try_borrow_mut() else {
                return compute();
            };
            let (entries, next) = &mut *recent;
            if let Some((_, hash, lines)) =
                entries.iter().find(|(a, _, _)| Arc::ptr_eq(a, artifact))
            {
                return (hash.clone(), *lines);
            }
            let (hash, lines) = compute();
            let entry = (Arc::clone(artifact), hash.clone(), lines);
            if entries.len() < HASHED_ARTIFACTS {
                entries.push(entry);
            } else {
                if let Some(slot) = entries.get_mut(*next) {
                    *slot = entry;
                }
                *next = (*next + 1) % HASHED_ARTIFACTS;
            }
            (hash, lines)
        })
        .unwrap_or_else(|_| compute())
}

impl Run<'_> {
    pub(super) fn generate(
        &mut self,
        sig: &StateSignature,
    ) -> Step<Option<(Arc<ExecutionPlan>, Arc<GeneratedArtifact>)>> {
        let k = self.k;
        let phase = Phase::Generate;
        if !k.config.phases.generate {
            self.skip(phase, "disabled in the kernel config");
            self.skip(
                Phase::Execute,
                "generation is disabled, so there is nothing to run",
            );
            return Ok(None);
        }
        self.r.phases_run.push(phase);
        // The run only reads the plan: the planner may hand out the one it remembers
        // (cfa-plan's memo; docs/architecture.md#performance-gates).
        let plan = self.call(phase, &PLAN, reason_details(&PLAN), || {
            k.planner.plan_shared(sig, Some(&k.config.catalog))
        })?;
        self.emit(
            phase,
            qkey!("plan_generated"),
            qkey!("ok"),
            // The serialised values (`serde_json::to_value` of either is this string).
            known!(
                "step_count" => plan.steps.len(),
                "consistency_unit" => plan.consistency_unit.as_str(),
                "write_mode" => plan.write_mode.as_str(),
            ),
        )?;
        let backend = k.backends.get(&k.config.backend).map_err(|e| e.to_string());
        let backend = self.checked(phase, &BACKEND, reason_details(&BACKEND), backend)?;
        let artifact = self.call(phase, &CODE, reason_details(&CODE), || {
            // Read only, like the plan: the backend may hand out the artifact it
            // caches (cfa-codegen's `generate_shared`).
            backend.generate_shared(&plan, sig)
        })?;
        let (artifact_hash, line_count) = hash_and_lines(&artifact);
        self.r.artifact = Some(ArtifactSummary {
            backend: artifact.backend.clone(),
            language: artifact.language.as_str().to_owned(),
            target: artifact.target.clone(),
            artifact_hash: artifact_hash.clone(),
            file_count: artifact.files.len(),
            line_count,
        });
        self.emit(
            phase,
            qkey!("code_generated"),
            qkey!("ok"),
            known!(
                "language" => artifact.language.as_str(),
                "line_count" => line_count,
                "artifact_hash" => artifact_hash,
            ),
        )?;
        let validated = self.call(phase, &VALIDATION, reason_details(&VALIDATION), || {
            Ok::<_, Infallible>(backend.validate_shared(&artifact, sig))
        })?;
        let all: Vec<Fault> = validated
            .faults
            .iter()
            .chain(&validated.warnings)
            .cloned()
            .collect();
        let all_codes = codes(&all);
        self.r.faults.extend(all);
        let passed = validated.passed && validated.faults.is_empty();
        self.emit(
            phase,
            qkey!("static_validation"),
            if passed {
                qkey!("passed")
            } else {
                qkey!("blocked")
            },
            known!(
                "checks" => validated.checks_performed,
                "faults" => all_codes,
            ),
        )?;
        if !passed {
            let reason = format!(
                "Static validation failed: {}",
                joined_codes(&validated.faults)
            );
            return Err(self.block(phase, reason, Vec::new()));
        }
        Ok(Some((plan, artifact)))
    }
}

#[cfg(test)]
mod tests {
    use super::{Arc, GeneratedArtifact, count_lines, hash_and_lines, line_count};

    fn artifact(script: &str) -> GeneratedArtifact {
        let files = if script.is_empty() {
            Vec::new()
        } else {
            vec![cfa_codegen::GeneratedFile {
                path: "main.py".into(),
                content: script.into(),
            }]
        };
        GeneratedArtifact {
            backend: "pyspark".into(),
            language: cfa_codegen::Language::Pyspark,
            target: "silver_t".into(),
            plan_signature_hash: "h".into(),
            write_mode: "merge".into(),
            consistency_unit: "dataset".into(),
            step_count: 1,
            files,
            step_code: std::collections::BTreeMap::new(),
        }
    }

    #[test]
    fn remembered_hashes_and_line_counts_are_the_artifacts_own() {
        let direct = |a: &GeneratedArtifact| {
            let lines = a.main_file().map_or(0, |f| f.content.lines().count());
            (a.artifact_hash(), lines)
        };
        // More artifacts than the memo keeps, each asked twice in a row and again
        // after the others; equal artifacts behind other handles; one held handle
        // asked after all of them.
        let held = Arc::new(artifact("x = 1\n"));
        assert_eq!(hash_and_lines(&held), direct(&held));
        let scripts: Vec<String> = (0..super::HASHED_ARTIFACTS * 2)
            .map(|n| "line\n".repeat(n) + "last")
            .collect();
        for _ in 0..2 {
            for script in &scripts {
                let a = Arc::new(artifact(script));
                assert_eq!(hash_and_lines(&a), direct(&a));
                assert_eq!(hash_and_lines(&a), direct(&a));
                let equal = Arc::new(artifact(script));
                assert_eq!(hash_and_lines(&equal), direct(&a));
            }
        }
        assert_eq!(hash_and_lines(&held), direct(&held));
        let empty = Arc::new(artifact(""));
        assert_eq!(hash_and_lines(&empty), (empty.artifact_hash(), 0));
        assert_ne!(hash_and_lines(&empty).0, hash_and_lines(&held).0);
    }

    #[test]
    fn line_count_is_what_lines_counts() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "\n\n",
            "a\n\nb\n\n",
            "ü\nß",
        ] {
            assert_eq!(line_count(text), text.lines().count(), "{text:?}");
            assert_eq!(count_lines(text), text.lines().count(), "{text:?}");
            // Again (the memo's hit), then after another text.
            assert_eq!(line_count(text), text.lines().count(), "{text:?}");
        }
        // More texts than the memo keeps, twice over: each count is still its own.
        let texts: Vec<String> = (0..super::COUNTED_TEXTS * 2)
            .map(|n| "line\n".repeat(n + 1))
            .collect();
        for _ in 0..2 {
            for (n, text) in texts.iter().enumerate() {
                assert_eq!(line_count(text), n + 1);
            }
        }
        let long = "x\n".repeat(super::MAX_COUNTED_TEXT);
        assert_eq!(line_count(&long), super::MAX_COUNTED_TEXT);
    }
}
