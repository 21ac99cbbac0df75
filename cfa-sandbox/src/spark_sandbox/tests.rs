//! The spark sandbox without Spark: a stand-in `python` (a shell script) plays the
//! generated script — it writes a stage and prints a `cfa_metrics` line, or fails with a
//! Python traceback pointing at a line — so the run, the step metrics, the failure
//! attribution, retries, the commit and the rollback are checked in milliseconds. The
//! real script on real Spark is `cargo xtask spark` (cfa-cli's `spark_run` tests).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::{ExecutionConfig, PublishState, RetryPolicy, RuntimeThresholds, RuntimeValidator};
use cfa_codegen::{Backend, GeneratedArtifact, PySparkBackend};
use cfa_plan::{ExecutionPlanner, Planner};
use cfa_types::{Catalog, StateSignature};
use std::os::unix::fs::PermissionsExt;

fn catalog() -> Catalog {
    Catalog::from_value(&serde_json::json!({"datasets": {
      "nfe": {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date",
              "merge_keys": ["nfe_id"], "columns": ["nfe_id", "cliente_id", "valor", "processing_date"]},
      "clientes": {"classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"], "partition_column": "processing_date",
                   "merge_keys": ["cliente_id"], "columns": ["cliente_id", "nome", "cpf", "email", "processing_date"]}
    }}))
    .unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    sig: StateSignature,
    plan: ExecutionPlan,
    artifact: GeneratedArtifact,
}

impl Fixture {
    fn new(mode: PySparkMode) -> Self {
        let sig = StateSignature::from_value(&cfa_test_support::ok_signature_without(&[
            "execution_context",
        ]))
        .unwrap();
        let plan = ExecutionPlanner::default()
            .plan(&sig, Some(&catalog()))
            .unwrap();
        let artifact = PySparkBackend::with_mode(mode)
            .generate(&plan, &sig)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("wh")).unwrap();
        Fixture {
            dir,
            sig,
            plan,
            artifact,
        }
    }

    fn warehouse(&self) -> PathBuf {
        self.dir.path().join("wh")
    }

    fn target(&self) -> PathBuf {
        self.warehouse().join(&self.plan.target)
    }

    /// The stand-in python: `ok` writes one staged partition and the metrics line;
    /// `fail LINE` prints a traceback whose outermost frame in the script is LINE.
    /// Every start appends a line to `starts`.
    fn python(&self, behaviour: &str) -> PathBuf {
        let cols: Vec<String> = self.plan.output_columns.clone().unwrap();
        let nulls: serde_json::Map<String, serde_json::Value> =
            cols.iter().map(|c| (c.clone(), 0.into())).collect();
        let metrics = serde_json::json!({"sources": {"nfe": 5, "clientes": 4}, "rows_written": 3,
            "output_schema": cols, "null_counts": nulls});
        let fake = self.dir.path().join("python");
        let body = format!(
            r#"#!/bin/sh
script="$1"; shift
echo "$*" >> "{starts}"
stage=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--stage" ]; then stage="$2"; fi
  shift
done
set -- {behaviour}
if [ "$1" = ok ]; then
  mkdir -p "$stage/processing_date=2026-01-02"
  echo new > "$stage/processing_date=2026-01-02/part-00000-new.parquet"
  touch "$stage/_SUCCESS"
  echo "some log line"
  echo 'cfa_metrics {metrics}'
  exit 0
fi
echo 'Traceback (most recent call last):' >&2
echo "  File \"$script\", line $2, in <module>" >&2
echo '  File "/venv/lib/pyspark/sql/readwriter.py", line 1, in parquet' >&2
echo 'ValueError: merge keys nfe_id repeat in the source' >&2
exit 1
"#,
            starts = self.dir.path().join("starts").display(),
        );
        std::fs::write(&fake, body).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        fake
    }

    fn starts(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("starts"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn sandbox(&self, behaviour: &str) -> SparkSandbox {
        let mut c = SparkConfig::new(self.python(behaviour), self.warehouse());
        c.partition_start = Some("2026-01-01".into());
        SparkSandbox::new(c).unwrap()
    }

    fn run(&self, sb: &SparkSandbox, config: &ExecutionConfig) -> crate::RunOutcome {
        crate::execute(
            sb,
            &RunContext {
                plan: &self.plan,
                artifact: Some(&self.artifact),
                signature: &self.sig,
            },
            config,
        )
        .unwrap()
    }

    /// The line of the load step's code in the script.
    fn load_line(&self) -> usize {
        let lines = step_lines(&self.artifact.files[0].content, &self.artifact.step_code);
        lines
            .iter()
            .find(|(id, _, _)| id == "load_target")
            .unwrap()
            .1
            + 1
    }
}

fn runs_left(f: &Fixture) -> usize {
    std::fs::read_dir(f.warehouse().join(".cfa-runs"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_passing_run_is_measured_and_committed_into_the_target() {
    let f = Fixture::new(PySparkMode::Spark);
    // An older partition of the target is kept; the written one is replaced.
    let old = f.target().join("processing_date=2026-01-01");
    let replaced = f.target().join("processing_date=2026-01-02");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&replaced).unwrap();
    std::fs::write(old.join("part-old.parquet"), "old").unwrap();
    std::fs::write(replaced.join("part-old.parquet"), "old").unwrap();
    let sb = f.sandbox("ok");
    assert!(sb.check_environment().is_empty() || !java_found());
    let o = f.run(&sb, &ExecutionConfig::default());
    assert_eq!(o.publish_state, PublishState::Published, "{o:#?}");
    assert_eq!(o.metrics.rows_output, 3);
    assert_eq!(
        *o.metrics.output_schema,
        *f.plan.output_columns.clone().unwrap()
    );
    let extract = o
        .step_results
        .iter()
        .find(|r| r.step_id == "extract_nfe")
        .unwrap();
    assert_eq!(extract.metrics.rows_output, 5);
    assert!(o.metrics.duration_seconds > 0.0);
    // One script start for the whole run, with every location on its command line.
    let starts = f.starts();
    assert_eq!(starts.len(), 1, "{starts:?}");
    let wh = f.warehouse().display().to_string();
    assert!(
        starts[0].contains(&format!("--source nfe={wh}/nfe"))
            && starts[0].contains(&format!("--source clientes={wh}/clientes"))
            && starts[0].contains(&format!("--target {wh}/silver_fiscal"))
            && starts[0].contains("--metrics")
            && starts[0].contains("--partition-start 2026-01-01"),
        "{starts:?}"
    );
    let r = sb.last_report().unwrap();
    assert!(r.committed);
    assert_eq!(r.partitions, ["processing_date=2026-01-02"]);
    assert_eq!(r.rows_written, 3);
    assert_eq!(r.sources.get("clientes"), Some(&4));
    assert_eq!(
        std::fs::read_to_string(old.join("part-old.parquet")).unwrap(),
        "old"
    );
    assert!(!replaced.join("part-old.parquet").exists());
    assert_eq!(
        std::fs::read_to_string(replaced.join("part-00000-new.parquet")).unwrap(),
        "new\n"
    );
    assert_eq!(runs_left(&f), 0, "the run directory is removed");
}

#[test]
fn a_run_failing_runtime_validation_never_touches_the_target() {
    let f = Fixture::new(PySparkMode::Spark);
    let sb = f.sandbox("ok");
    let config = ExecutionConfig {
        validator: RuntimeValidator::new(RuntimeThresholds {
            max_rows: 1,
            ..RuntimeThresholds::default()
        }),
        ..ExecutionConfig::default()
    };
    let o = f.run(&sb, &config);
    assert_eq!(o.runtime_validation, Some(false));
    assert_ne!(o.publish_state, PublishState::Published);
    assert!(!f.target().exists(), "nothing may reach the target");
    assert!(!sb.last_report().unwrap().committed);
    assert_eq!(runs_left(&f), 0);
}

#[test]
fn a_failing_script_fails_the_step_its_traceback_points_at_and_is_retried() {
    let f = Fixture::new(PySparkMode::Spark);
    let sb = f.sandbox(&format!("fail {}", f.load_line()));
    let config = ExecutionConfig {
        retry: RetryPolicy { max_attempts: 2 },
        ..ExecutionConfig::default()
    };
    let o = f.run(&sb, &config);
    assert_ne!(o.publish_state, PublishState::Published);
    let failed: Vec<&StepResult> = o
        .step_results
        .iter()
        .filter(|r| r.status != StepStatus::Succeeded)
        .collect();
    assert_eq!(failed.len(), 1, "{o:#?}");
    assert_eq!(failed[0].step_id, "load_target");
    assert_eq!(failed[0].attempt, 2);
    let msg = failed[0].fault.as_ref().unwrap().message.to_string();
    assert!(
        msg.contains("ValueError: merge keys nfe_id repeat"),
        "{msg}"
    );
    assert_eq!(o.retries, 1);
    assert_eq!(f.starts().len(), 2, "the retry runs the script again");
    assert!(!f.target().exists());
    assert_eq!(runs_left(&f), 0);
}

#[test]
fn delta_scripts_a_missing_partition_start_and_a_missing_python_are_refused() {
    let f = Fixture::new(PySparkMode::Delta);
    let sb = f.sandbox("ok");
    let ctx = RunContext {
        plan: &f.plan,
        artifact: Some(&f.artifact),
        signature: &f.sig,
    };
    let e = sb.begin(&ctx).err().unwrap().to_string();
    assert!(e.contains("Delta Lake") && e.contains("mode: spark"), "{e}");
    let f = Fixture::new(PySparkMode::Spark);
    let sb = SparkSandbox::new(SparkConfig::new(f.python("ok"), f.warehouse())).unwrap();
    let ctx = RunContext {
        plan: &f.plan,
        artifact: Some(&f.artifact),
        signature: &f.sig,
    };
    let e = sb.begin(&ctx).err().unwrap().to_string();
    assert!(e.contains("--partition-start"), "{e}");
    let e = sb
        .begin(&RunContext {
            artifact: None,
            ..ctx
        })
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("needs the generated PySpark artifact"), "{e}");
    let none =
        SparkSandbox::new(SparkConfig::new(f.dir.path().join("nope"), f.warehouse())).unwrap();
    let faults = none.check_environment();
    assert_eq!(faults[0].code, "ENVIRONMENTAL_SPARK_UNAVAILABLE");
    assert!(faults[0].message.to_string().contains("no python at"));
    let e = SparkSandbox::new(SparkConfig::new("python", f.dir.path().join("absent")))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is not a directory"), "{e}");
}

#[test]
fn the_registry_builds_spark_from_options_and_says_what_is_missing() {
    let f = Fixture::new(PySparkMode::Spark);
    let reg = crate::SandboxRegistry::with_builtins();
    assert!(reg.names().contains(&"spark".to_owned()));
    let opts = crate::SandboxOptions {
        spark: crate::SparkOptions {
            python: Some(f.python("ok")),
            warehouse: Some(f.warehouse()),
        },
        ..crate::SandboxOptions::default()
    };
    assert_eq!(reg.create("spark", &opts).unwrap().name(), "spark");
    let no_warehouse = crate::SandboxOptions {
        spark: crate::SparkOptions {
            python: Some(f.python("ok")),
            warehouse: None,
        },
        ..crate::SandboxOptions::default()
    };
    let e = reg
        .create("spark", &no_warehouse)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--spark-warehouse"), "{e}");
}

fn tree(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    data_files(root, Path::new(""), &mut files).unwrap();
    let mut out: Vec<String> = files
        .iter()
        .map(|f| {
            format!(
                "{}={}",
                f.display(),
                std::fs::read_to_string(root.join(f)).unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

fn put(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn commit_replaces_partitions_appends_files_and_renames_first_writes() {
    let d = tempfile::tempdir().unwrap();
    let (stage, target, trash) = (d.path().join("s"), d.path().join("t"), d.path().join("x"));
    // Partitioned merge: p=1 replaced, p=2 kept, p=3 added.
    put(&target, "p=1/a.parquet", "old1");
    put(&target, "p=2/a.parquet", "old2");
    put(&stage, "p=1/b.parquet", "new1");
    put(&stage, "p=3/b.parquet", "new3");
    put(&stage, "_SUCCESS", "");
    commit_stage(&stage, &target, WriteMode::Merge, 1, &trash).unwrap();
    assert_eq!(
        tree(&target),
        [
            "p=1/b.parquet=new1",
            "p=2/a.parquet=old2",
            "p=3/b.parquet=new3"
        ]
    );
    assert!(!trash.exists());
    // Append: new files move in, a taken name is an error.
    std::fs::remove_dir_all(&stage).unwrap();
    put(&stage, "p=2/c.parquet", "more");
    put(&stage, "p=2/.c.parquet.crc", "crc");
    commit_stage(&stage, &target, WriteMode::Append, 1, &trash).unwrap();
    assert_eq!(
        tree(&target),
        [
            "p=1/b.parquet=new1",
            "p=2/a.parquet=old2",
            "p=2/c.parquet=more",
            "p=3/b.parquet=new3"
        ]
    );
    put(&stage, "p=2/c.parquet", "again");
    let e = commit_stage(&stage, &target, WriteMode::Append, 1, &trash).unwrap_err();
    assert!(e.contains("exists already"), "{e}");
    // Unpartitioned rewrite: the whole table is replaced.
    std::fs::remove_dir_all(&stage).unwrap();
    put(&stage, "z.parquet", "whole");
    commit_stage(&stage, &target, WriteMode::Merge, 0, &trash).unwrap();
    assert_eq!(tree(&target), ["z.parquet=whole"]);
    // A first write renames the stage; no stage, nothing to do.
    let fresh = d.path().join("fresh");
    put(&stage, "q=1/a.parquet", "first");
    commit_stage(&stage, &fresh, WriteMode::Merge, 1, &trash).unwrap();
    assert_eq!(tree(&fresh), ["q=1/a.parquet=first"]);
    assert!(!stage.exists());
    commit_stage(&stage, &fresh, WriteMode::Merge, 1, &trash).unwrap();
    assert_eq!(leaf_dirs(&fresh, 1).unwrap(), ["q=1"]);
    assert!(leaf_dirs(&fresh, 0).unwrap().is_empty());
}

#[test]
fn tracebacks_name_the_outermost_script_line_and_the_exception() {
    let err = "26/12/01 WARN something\nTraceback (most recent call last):\n  File \"/r/job.py\", line 142, in <module>\n    .execute()\n  File \"/r/job.py\", line 120, in execute\n    raise ValueError(...)\nValueError: merge keys nfe_id repeat\n";
    assert_eq!(traceback_line(err, "/r/job.py"), Some(142));
    assert_eq!(traceback_line(err, "/other.py"), None);
    assert_eq!(failure_reason(err), "ValueError: merge keys nfe_id repeat");
    assert_eq!(
        failure_reason("usage: job.py ...\njob.py: error: missing --source for nfe\n"),
        "job.py: error: missing --source for nfe"
    );
    assert_eq!(failure_reason(""), "the script failed without a message");
    let lines = step_lines(
        "a\n# step s1\nx = 1\ny = 2\n# step s2\nz = 3\n",
        &BTreeMap::from([
            ("s1".to_owned(), "# step s1\nx = 1\ny = 2".to_owned()),
            ("s2".to_owned(), "# step s2\nz = 3".to_owned()),
        ]),
    );
    assert_eq!(lines, [("s1".to_owned(), 2, 4), ("s2".to_owned(), 5, 6)]);
}

#[test]
fn a_failed_commit_leaves_the_target_and_the_stage_as_they_were() {
    let d = tempfile::tempdir().unwrap();
    let (stage, target, trash) = (d.path().join("s"), d.path().join("t"), d.path().join("x"));
    put(&target, "p=1/a.parquet", "old1");
    put(&target, "p=2/a.parquet", "old2");
    put(&stage, "p=1/b.parquet", "new1");
    put(&stage, "p=2/b.parquet", "new2");
    put(&stage, "p=3/b.parquet", "new3");
    // The third rename (p=2 out of the target, into the trash's slot 1) fails: the
    // slot is a directory that is not empty.
    put(&trash, "1/in-the-way", "");
    let e = commit_stage(&stage, &target, WriteMode::Merge, 1, &trash).unwrap_err();
    assert!(e.contains("nothing was committed"), "{e}");
    assert_eq!(tree(&target), ["p=1/a.parquet=old1", "p=2/a.parquet=old2"]);
    assert_eq!(
        tree(&stage),
        [
            "p=1/b.parquet=new1",
            "p=2/b.parquet=new2",
            "p=3/b.parquet=new3"
        ]
    );
    assert!(!d.path().join(commit::JOURNAL).exists());
    // With the way clear, the same commit goes through.
    std::fs::remove_dir_all(&trash).unwrap();
    commit_stage(&stage, &target, WriteMode::Merge, 1, &trash).unwrap();
    assert_eq!(
        tree(&target),
        [
            "p=1/b.parquet=new1",
            "p=2/b.parquet=new2",
            "p=3/b.parquet=new3"
        ]
    );
    assert!(!d.path().join(commit::JOURNAL).exists() && !trash.exists());
}

#[test]
fn a_commit_a_dead_process_left_half_done_is_undone_by_the_next_run() {
    let d = tempfile::tempdir().unwrap();
    let runs = d.path().join(".cfa-runs");
    let target = d.path().join("t");
    let journal = |dir: &str, target: &Path, pid: u32, moves: &[[&Path; 2]]| {
        let run = runs.join(dir);
        std::fs::create_dir_all(&run).unwrap();
        let j = commit::Journal {
            target: target.to_str().unwrap().to_owned(),
            pid,
            moves: moves
                .iter()
                .map(|[f, t]| {
                    [
                        f.to_str().unwrap().to_owned(),
                        t.to_str().unwrap().to_owned(),
                    ]
                })
                .collect(),
        };
        std::fs::write(run.join(commit::JOURNAL), serde_json::to_vec(&j).unwrap()).unwrap();
        run
    };
    // The dead run had replaced p=1 (old moved out, new moved in) and not yet p=2.
    let dead = runs.join("t-4294967295-0");
    put(&dead, "replaced/0/a.parquet", "old1");
    put(&target, "p=1/b.parquet", "new1");
    put(&target, "p=2/a.parquet", "old2");
    put(&dead, "stage/p=2/b.parquet", "new2");
    let (t1, t2) = (target.join("p=1"), target.join("p=2"));
    let (x0, x1) = (dead.join("replaced/0"), dead.join("replaced/1"));
    let (s1, s2) = (dead.join("stage/p=1"), dead.join("stage/p=2"));
    journal(
        "t-4294967295-0",
        &target,
        u32::MAX,
        &[[&t1, &x0], [&s1, &t1], [&t2, &x1], [&s2, &t2]],
    );
    // A live process's commit, and another target's, are left alone.
    let live = journal("t-1-0", &target, 1, &[[&t2, &x1]]);
    let other = journal(
        "u-4294967295-0",
        &d.path().join("u"),
        u32::MAX,
        &[[&t2, &x1]],
    );
    let current = runs.join("t-me-0");
    assert_eq!(commit::recover(&runs, &target, &current).unwrap(), 1);
    assert_eq!(tree(&target), ["p=1/a.parquet=old1", "p=2/a.parquet=old2"]);
    assert!(!dead.exists(), "the dead run's directory is removed");
    assert!(live.join(commit::JOURNAL).exists() && other.join(commit::JOURNAL).exists());
    // Run again: nothing left to undo.
    assert_eq!(commit::recover(&runs, &target, &current).unwrap(), 0);
    // A journal that does not read is an error naming it; nothing is guessed.
    std::fs::create_dir_all(runs.join("t-5-0")).unwrap();
    std::fs::write(runs.join("t-5-0").join(commit::JOURNAL), "{not json").unwrap();
    let e = commit::recover(&runs, &target, &current).unwrap_err();
    assert!(e.contains("t-5-0") && e.contains("does not read"), "{e}");
    // No runs directory at all: nothing to do.
    assert_eq!(
        commit::recover(&d.path().join("none"), &target, &current).unwrap(),
        0
    );
}
