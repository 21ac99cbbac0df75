//! The `spark` sandbox: runs the PySpark backend's `spark`-mode artifact (plain Spark,
//! parquet) for real, with a virtualenv's python on a local Spark session (`local[2]`
//! by default). Sources are the parquet directories `<warehouse>/<dataset>`, the target
//! is `<warehouse>/<target>`.
//!
//! A run gets its own directory `<warehouse>/.cfa-runs/<target>-<pid>-<n>/` holding the
//! script, the stage the script writes to (`--stage`), Spark's scratch and metastore
//! directories and the process's logs. The script runs once, at the run's first step,
//! with `--metrics`; every step then takes its metrics from the script's `cfa_metrics`
//! line (extract: rows read; load: rows written, output columns, nulls per column, and
//! the process's wall time); filter, anonymize, join and aggregate are fused into the
//! script and measure nothing of their own. A failure is charged to the step whose code
//! the outermost traceback frame in the script points at (else to the step running),
//! and a retry of that step runs the script again into a fresh stage.
//!
//! [`crate::execute`] commits only when the outcome keeps data and runtime validation
//! passed: the commit then moves the staged output into the target (each written
//! partition directory replaces the target's by rename; an append moves the new files
//! in; a first write or an unpartitioned rewrite renames the whole stage) as one unit,
//! journalled (`commit`): a failed rename undoes those before it, and a commit a process
//! died in is undone by the next run on the target; otherwise the run directory is
//! deleted and the target is never touched.

use crate::error::SandboxError;
use crate::metrics::StepMetrics;
use crate::sandbox::{RunContext, Sandbox, SandboxRun, StepResult, StepStatus, step_failed_fault};
use cfa_codegen::ident::check_identifier;
use cfa_codegen::pyspark::{METRICS_PREFIX, PySparkMode};
use cfa_plan::{ExecutionPlan, PlanStep, StepConfig, StepKind, WriteMode};
use cfa_types::{Fault, FaultFamily, FaultSeverity, PolicyAction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The environment variable naming the python of the Spark virtualenv, read when the
/// options name none (scripts/spark-setup.sh prints it).
pub const SPARK_PYTHON_ENV: &str = "CFA_SPARK_PYTHON";

/// Configuration of [`SparkSandbox`].
#[derive(Debug, Clone, PartialEq)]
pub struct SparkConfig {
    /// The python that has `pyspark` installed (a virtualenv's `bin/python`).
    pub python: PathBuf,
    /// The directory holding the source tables (`<warehouse>/<dataset>/`) and the target
    /// (`<warehouse>/<target>/`), parquet.
    pub warehouse: PathBuf,
    /// The partition start passed as `--partition-start`, when the plan filters.
    pub partition_start: Option<String>,
    /// Spark master (`local[2]`).
    pub master: String,
    /// `spark.sql.shuffle.partitions` (2: small local runs).
    pub shuffle_partitions: u32,
    /// Longest a script may run before it is killed and the step fails.
    pub timeout: Duration,
}

impl SparkConfig {
    /// A configuration with the defaults (`local[2]`, 2 shuffle partitions, 10 minutes).
    pub fn new(python: impl Into<PathBuf>, warehouse: impl Into<PathBuf>) -> Self {
        SparkConfig {
            python: python.into(),
            warehouse: warehouse.into(),
            partition_start: None,
            master: "local[2]".into(),
            shuffle_partitions: 2,
            timeout: Duration::from_secs(600),
        }
    }
}

/// What the last run of a [`SparkSandbox`] measured and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparkReport {
    /// Rows read per source dataset.
    pub sources: BTreeMap<String, u64>,
    /// Rows the load wrote (the new rows; for a merge, the rows merged).
    pub rows_written: u64,
    /// Wall time of the script, seconds (Spark's start-up included).
    pub duration_seconds: f64,
    /// Partition directories written, relative to the target (`processing_date=2026-01-01`);
    /// empty for an unpartitioned target.
    pub partitions: Vec<String>,
    /// Whether the staged output was moved into the target.
    pub committed: bool,
}

/// The Spark sandbox.
#[derive(Debug)]
pub struct SparkSandbox {
    config: SparkConfig,
    last: Mutex<Option<SparkReport>>,
}

fn fail(op: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::failure("spark", op, e.to_string())
}

fn env_fault(reason: &str) -> Fault {
    Fault {
        code: "ENVIRONMENTAL_SPARK_UNAVAILABLE".into(),
        family: FaultFamily::Environmental,
        severity: FaultSeverity::Critical,
        stage: "sandbox".into(),
        message: format!("Spark is not available: {reason}").into(),
        mandatory_action: PolicyAction::Block,
        remediation: vec![
            "Create the Spark virtualenv (scripts/spark-setup.sh) and name its python in $CFA_SPARK_PYTHON; Spark needs Java 17",
        ]
        .into(),
        detected_before_execution: false,
    }
}

/// Whether `java` can be started: `$JAVA_HOME/bin/java`, else `java` on `PATH`.
fn java_found() -> bool {
    if let Some(home) = std::env::var_os("JAVA_HOME")
        && Path::new(&home).join("bin").join("java").is_file()
    {
        return true;
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("java").is_file()))
}

impl SparkSandbox {
    /// A sandbox over `config`; the warehouse must be a directory.
    pub fn new(config: SparkConfig) -> Result<Self, SandboxError> {
        if !config.warehouse.is_dir() {
            return Err(fail(
                "start",
                format!(
                    "the warehouse {} is not a directory",
                    config.warehouse.display()
                ),
            ));
        }
        Ok(SparkSandbox {
            config,
            last: Mutex::new(None),
        })
    }

    /// Its configuration.
    pub fn config(&self) -> &SparkConfig {
        &self.config
    }

    /// What the last run measured and whether it was committed (`None` before a run).
    pub fn last_report(&self) -> Option<SparkReport> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    fn remember(&self, report: SparkReport) {
        if let Ok(mut l) = self.last.lock() {
            *l = Some(report);
        }
    }
}

/// A location for `PYSPARK_SUBMIT_ARGS` (split by Python's `shlex`), to be written
/// inside quotes: UTF-8, without quotes or backslashes.
fn submit_path(p: &Path) -> Result<&str, String> {
    let s = p.to_str().ok_or("a path of the run is not UTF-8")?;
    if s.contains(['\'', '"', '\\']) {
        return Err(format!("a path of the run holds a quote or backslash: {s}"));
    }
    Ok(s)
}

/// The run's script result.
#[derive(Debug, Clone)]
enum Outcome {
    /// The script finished: its metrics and wall time.
    Finished(Box<Metrics>, f64),
    /// The script failed in `step` (a step id), for `reason`.
    Failed { step: String, reason: String },
}

/// The `cfa_metrics` line.
#[derive(Debug, Clone, Default, Deserialize)]
struct Metrics {
    #[serde(default)]
    sources: BTreeMap<String, u64>,
    #[serde(default)]
    rows_written: u64,
    #[serde(default)]
    output_schema: Vec<String>,
    #[serde(default)]
    null_counts: BTreeMap<String, u64>,
}

struct SparkRun<'a> {
    sandbox: &'a SparkSandbox,
    plan: ExecutionPlan,
    /// (step id, first line, last line) of each step's code in the script.
    lines: Vec<(String, usize, usize)>,
    dir: PathBuf,
    script: PathBuf,
    outcome: Option<Outcome>,
    /// Whether the script takes `--partition-start` (its plan filters on partitions).
    takes_partition_start: bool,
    finished: bool,
}

/// Run directories of this process get distinct names.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Where each step's code sits in `content` (1-based lines, inclusive).
fn step_lines(content: &str, step_code: &BTreeMap<String, String>) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (id, code) in step_code {
        if let Some(at) = content.find(code.as_str()) {
            let first = content.get(..at).map_or(0, |p| p.matches('\n').count()) + 1;
            let last = first + code.matches('\n').count();
            out.push((id.clone(), first, last));
        }
    }
    out
}

/// The line of the outermost frame in `script` of a Python traceback in `stderr`.
fn traceback_line(stderr: &str, script: &str) -> Option<usize> {
    let start = stderr.rfind("Traceback (most recent call last):")?;
    let tail = stderr.get(start..)?;
    let needle = format!("File \"{script}\", line ");
    tail.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix(needle.as_str())?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

/// The exception line of the last traceback in `stderr`, else its last non-empty line.
fn failure_reason(stderr: &str) -> String {
    let from_traceback = stderr
        .rfind("Traceback (most recent call last):")
        .and_then(|i| stderr.get(i..))
        .and_then(|t| {
            t.lines()
                .skip(1)
                .find(|l| !l.starts_with(' ') && !l.trim().is_empty())
        });
    let line = from_traceback
        .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("the script failed without a message")
        .trim();
    let mut out: String = line.chars().take(600).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

impl SparkRun<'_> {
    fn source(&self, dataset: &str) -> PathBuf {
        self.sandbox.config.warehouse.join(dataset)
    }

    fn target(&self) -> PathBuf {
        self.sandbox.config.warehouse.join(&self.plan.target)
    }

    fn stage(&self) -> PathBuf {
        self.dir.join("stage")
    }

    /// Runs the script into a fresh stage; `current` is the step running.
    fn run_script(&mut self, current: &str) -> Outcome {
        match self.try_run_script(current) {
            Ok(o) => o,
            Err(reason) => Outcome::Failed {
                step: current.to_owned(),
                reason,
            },
        }
    }

    fn try_run_script(&mut self, current: &str) -> Result<Outcome, String> {
        let c = &self.sandbox.config;
        let stage = self.stage();
        if stage.exists() {
            std::fs::remove_dir_all(&stage).map_err(|e| format!("cannot clear the stage: {e}"))?;
        }
        let scratch = self.dir.join("spark");
        std::fs::create_dir_all(scratch.join("tmp"))
            .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
        let submit = format!(
            "--master {} --conf spark.ui.enabled=false --conf spark.ui.showConsoleProgress=false --conf spark.driver.host=127.0.0.1 --conf spark.sql.shuffle.partitions={} --conf spark.sql.warehouse.dir='{}' --conf spark.local.dir='{}' --driver-java-options \"-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dderby.system.home={}\" pyspark-shell",
            c.master,
            c.shuffle_partitions,
            submit_path(&scratch.join("warehouse"))?,
            submit_path(&scratch.join("tmp"))?,
            submit_path(&scratch)?,
        );
        let out_log = self.dir.join("stdout.log");
        let err_log = self.dir.join("stderr.log");
        let file = |p: &Path| {
            std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
        };
        let mut cmd = Command::new(&c.python);
        cmd.arg(&self.script);
        for d in &self.plan.datasets {
            let mut arg = std::ffi::OsString::from(format!("{}=", d.name));
            arg.push(self.source(&d.name));
            cmd.arg("--source").arg(arg);
        }
        cmd.arg("--target")
            .arg(self.target())
            .arg("--stage")
            .arg(&stage)
            .arg("--metrics");
        if let Some(p) = &c.partition_start
            && self.takes_partition_start
        {
            cmd.arg("--partition-start").arg(p);
        }
        cmd.current_dir(&scratch)
            .env("PYSPARK_SUBMIT_ARGS", submit)
            .env("PYSPARK_PYTHON", &c.python)
            .stdin(Stdio::null())
            .stdout(file(&out_log)?)
            .stderr(file(&err_log)?);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", c.python.display()))?;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if started.elapsed() > c.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the script ran longer than {} s and was stopped",
                        c.timeout.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(format!("cannot wait for the script: {e}")),
            }
        };
        let elapsed = started.elapsed().as_secs_f64();
        let stdout = std::fs::read_to_string(&out_log).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_log).unwrap_or_default();
        if !status.success() {
            let script = self.script.to_string_lossy();
            let step = traceback_line(&stderr, &script)
                .and_then(|n| {
                    self.lines
                        .iter()
                        .find(|(_, a, b)| (*a..=*b).contains(&n))
                        .map(|(id, _, _)| id.clone())
                })
                .unwrap_or_else(|| current.to_owned());
            return Ok(Outcome::Failed {
                step,
                reason: format!("{} ({status})", failure_reason(&stderr)),
            });
        }
        let line = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(METRICS_PREFIX))
            .ok_or("the script finished without its cfa_metrics line")?;
        let metrics: Metrics = serde_json::from_str(line)
            .map_err(|e| format!("the script's cfa_metrics line is not valid: {e}"))?;
        Ok(Outcome::Finished(Box::new(metrics), elapsed))
    }

    fn report(&self, committed: bool) -> SparkReport {
        let mut r = SparkReport {
            committed,
            ..SparkReport::default()
        };
        if let Some(Outcome::Finished(m, secs)) = &self.outcome {
            r.sources.clone_from(&m.sources);
            r.rows_written = m.rows_written;
            r.duration_seconds = *secs;
            r.partitions =
                leaf_dirs(&self.stage(), partition_depth(&self.plan)).unwrap_or_default();
        }
        r
    }

    fn remove_dir(&self) -> Result<(), SandboxError> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(fail(
                "clean up",
                format!("cannot remove {}: {e}", self.dir.display()),
            )),
        }
    }
}

/// The number of partition columns of the plan's load.
fn partition_depth(plan: &ExecutionPlan) -> usize {
    plan.steps
        .iter()
        .find_map(|s| match &s.config {
            StepConfig::Load(l) => Some(l.partition_by.len()),
            _ => None,
        })
        .unwrap_or(0)
}

impl SandboxRun for SparkRun<'_> {
    fn execute_step(&mut self, step: &PlanStep, attempt: u32) -> StepResult {
        let rerun = match &self.outcome {
            None => true,
            Some(Outcome::Failed { step: s, .. }) => *s == step.id && attempt > 1,
            Some(Outcome::Finished(..)) => false,
        };
        if rerun {
            let o = self.run_script(&step.id);
            self.outcome = Some(o);
        }
        match &self.outcome {
            Some(Outcome::Finished(m, secs)) => {
                let metrics = match step.kind {
                    StepKind::Extract => StepMetrics {
                        rows_output: step
                            .source
                            .as_deref()
                            .and_then(|d| m.sources.get(d))
                            .copied()
                            .unwrap_or(0),
                        ..StepMetrics::default()
                    },
                    StepKind::Load => StepMetrics {
                        rows_output: m.rows_written,
                        duration_seconds: *secs,
                        null_counts: Arc::new(m.null_counts.clone()),
                        output_schema: Arc::from(m.output_schema.as_slice()),
                        ..StepMetrics::default()
                    },
                    StepKind::Filter
                    | StepKind::Anonymize
                    | StepKind::Join
                    | StepKind::Aggregate => StepMetrics::default(),
                };
                StepResult::succeeded(&step.id, metrics, attempt)
            }
            Some(Outcome::Failed { step: s, reason }) if *s == step.id => StepResult::failed(
                &step.id,
                StepStatus::Failed,
                step_failed_fault(&step.id, reason),
                attempt,
            ),
            // A step before the one that failed: its code ran.
            Some(Outcome::Failed { .. }) => {
                StepResult::succeeded(&step.id, StepMetrics::default(), attempt)
            }
            None => StepResult::failed(
                &step.id,
                StepStatus::Failed,
                step_failed_fault(&step.id, "the script did not run"),
                attempt,
            ),
        }
    }

    fn commit(mut self: Box<Self>) -> Result<(), SandboxError> {
        self.finished = true;
        let finished = matches!(self.outcome, Some(Outcome::Finished(..)));
        let mut report = self.report(false);
        if finished {
            let trash = self.dir.join("replaced");
            commit_stage(
                &self.stage(),
                &self.target(),
                self.plan.write_mode,
                partition_depth(&self.plan),
                &trash,
            )
            .map_err(|e| fail("commit", e))?;
            report.committed = true;
        }
        self.sandbox.remember(report);
        self.remove_dir()
    }

    fn rollback(mut self: Box<Self>) -> Result<(), SandboxError> {
        self.finished = true;
        self.sandbox.remember(self.report(false));
        self.remove_dir()
    }
}

impl Drop for SparkRun<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Relative paths of the directories `depth` levels below `root` whose every level is
/// `column=value` (Spark's partition directories), sorted.
fn leaf_dirs(root: &Path, depth: usize) -> std::io::Result<Vec<String>> {
    let mut level = vec![String::new()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for rel in &level {
            let dir = if rel.is_empty() {
                root.to_path_buf()
            } else {
                root.join(rel)
            };
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.file_type()?.is_dir() && name.contains('=') && !name.starts_with('.') {
                    next.push(if rel.is_empty() {
                        name
                    } else {
                        format!("{rel}/{name}")
                    });
                }
            }
        }
        level = next;
    }
    level.sort();
    Ok(if depth == 0 { Vec::new() } else { level })
}

/// Whether `name` is one of Spark's bookkeeping files (`_SUCCESS`, `.part-….crc`).
fn bookkeeping(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
}

/// Data files under `root` (recursive), relative, skipping bookkeeping files.
fn data_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if bookkeeping(&name) {
            continue;
        }
        let child = rel.join(&name);
        if entry.file_type()?.is_dir() {
            data_files(root, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// Moves the staged output of a run into `target`, as one unit ([`commit`]: journalled
/// beside `trash`, all moves or none): a first write (no target yet) or an unpartitioned
/// merge/overwrite renames the stage to the target (the target moved to `trash` first);
/// a partitioned merge/overwrite renames each staged partition directory over the
/// target's (each replaced one moved to `trash` first); an append moves the new data
/// files in (a name taken in the target is an error, before anything moves). `trash` is
/// removed at the end.
pub(crate) fn commit_stage(
    stage: &Path,
    target: &Path,
    mode: WriteMode,
    depth: usize,
    trash: &Path,
) -> Result<(), String> {
    if !stage.exists() {
        return Ok(());
    }
    let mut moves: Vec<[PathBuf; 2]> = Vec::new();
    if !target.exists() {
        moves.push([stage.to_path_buf(), target.to_path_buf()]);
    } else {
        match (mode, depth) {
            (WriteMode::Append, _) => {
                let mut files = Vec::new();
                data_files(stage, Path::new(""), &mut files)
                    .map_err(|e| format!("cannot list the stage: {e}"))?;
                for f in &files {
                    let to = target.join(f);
                    if to.exists() {
                        return Err(format!("{} exists already", to.display()));
                    }
                    moves.push([stage.join(f), to]);
                }
            }
            (WriteMode::Merge | WriteMode::OverwritePartition, 0) => {
                moves.push([target.to_path_buf(), trash.join("table")]);
                moves.push([stage.to_path_buf(), target.to_path_buf()]);
            }
            (WriteMode::Merge | WriteMode::OverwritePartition, _) => {
                let parts =
                    leaf_dirs(stage, depth).map_err(|e| format!("cannot list the stage: {e}"))?;
                for (i, p) in parts.iter().enumerate() {
                    let to = target.join(p);
                    if to.exists() {
                        moves.push([to.clone(), trash.join(i.to_string())]);
                    }
                    moves.push([stage.join(p), to]);
                }
            }
        }
    }
    commit::apply(&trash.with_file_name(commit::JOURNAL), target, moves)?;
    if trash.exists() {
        std::fs::remove_dir_all(trash)
            .map_err(|e| format!("cannot remove {}: {e}", trash.display()))?;
    }
    Ok(())
}

impl Sandbox for SparkSandbox {
    fn name(&self) -> &str {
        "spark"
    }

    fn check_environment(&self) -> Vec<Fault> {
        let c = &self.config;
        if !c.python.is_file() {
            return vec![env_fault(&format!(
                "no python at {} (create the virtualenv with scripts/spark-setup.sh)",
                c.python.display()
            ))];
        }
        if !java_found() {
            return vec![env_fault("no java on PATH or in $JAVA_HOME/bin")];
        }
        if !c.warehouse.is_dir() {
            return vec![env_fault(&format!(
                "the warehouse {} is not a directory",
                c.warehouse.display()
            ))];
        }
        Vec::new()
    }

    fn begin<'s>(&'s self, ctx: &RunContext<'_>) -> Result<Box<dyn SandboxRun + 's>, SandboxError> {
        let artifact = ctx.artifact.ok_or_else(|| {
            fail(
                "begin",
                "the spark sandbox needs the generated PySpark artifact",
            )
        })?;
        if let Some(wanted) = crate::execution::artifact_requirement(self.name())
            && artifact.language != wanted.language
        {
            return Err(fail(
                "begin",
                format!(
                    "artifact language is {}, expected {}",
                    artifact.language.as_str(),
                    wanted.language.as_str()
                ),
            ));
        }
        let main = artifact
            .main_file()
            .ok_or_else(|| fail("begin", "the artifact has no files"))?;
        if PySparkMode::of_script(&main.content) != PySparkMode::Spark {
            return Err(fail(
                "begin",
                "the artifact is a Delta Lake script; the spark sandbox runs the pyspark backend's spark mode (backends.pyspark.mode: spark)",
            ));
        }
        check_identifier(&ctx.plan.target, "plan target").map_err(|e| fail("begin", e))?;
        for d in &ctx.plan.datasets {
            check_identifier(&d.name, "plan dataset").map_err(|e| fail("begin", e))?;
        }
        let takes_partition_start = main.content.contains("--partition-start");
        if takes_partition_start && self.config.partition_start.is_none() {
            return Err(fail(
                "begin",
                "the script filters on the partition start, which is not set: give a partition start (cfa evaluate --partition-start DATE)",
            ));
        }
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = self.config.warehouse.join(".cfa-runs").join(format!(
            "{}-{}-{n}",
            ctx.plan.target,
            std::process::id()
        ));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| fail("begin", e))?;
        }
        // A commit on this target that a process died in the middle of is undone first.
        let target = self.config.warehouse.join(&ctx.plan.target);
        let runs = self.config.warehouse.join(".cfa-runs");
        commit::recover(&runs, &target, &dir).map_err(|e| fail("begin", e))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail("begin", format!("cannot create {}: {e}", dir.display())))?;
        let script = dir.join("job.py");
        std::fs::write(&script, &main.content)
            .map_err(|e| fail("begin", format!("cannot write {}: {e}", script.display())))?;
        Ok(Box::new(SparkRun {
            sandbox: self,
            plan: ctx.plan.clone(),
            lines: step_lines(&main.content, &artifact.step_code),
            dir,
            script,
            outcome: None,
            takes_partition_start,
            finished: false,
        }))
    }
}

mod commit;
#[cfg(test)]
mod tests;
